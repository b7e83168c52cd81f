/* error.c - names for HR_E* codes. */
#include "error.h"

const char *hr_strerror(int err)
{
    switch (err) {
    case HR_OK: return "ok";
    case HR_AGAIN: return "need more input";
    case HR_ENOMEM: return "out of memory";
    case HR_EINVAL: return "invalid input";
    case HR_ETOOBIG: return "limit exceeded";
    case HR_ECLOSED: return "connection closed";
    case HR_EIO: return "i/o error";
    case HR_ENOTFOUND: return "not found";
    case HR_EBUSY: return "over the memory budget";
    default: return "unknown error";
    }
}
