/* error.c - names for HR_E* codes. */
#include "error.h"

#include <string.h>
#include <uv.h>

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
    case HR_ENOTSUP: return "not supported";
    case HR_EUNAUTH: return "not authenticated";
    case HR_EFORBIDDEN: return "not allowed";
    case HR_EQUOTA: return "quota exceeded";
    default:
        /* any other -errno (a system call's, or libuv's on Unix) */
        return err < 0 && err > -3000 ? strerror(-err) : "unknown error";
    }
}

int hr_error_from_uv(int uv_err)
{
    if (uv_err >= 0)
        return uv_err;
    if (uv_err == UV_EOF)
        return HR_ECLOSED;
    /* libuv's own codes lie below -3000 on Unix; errno values are small */
    return uv_err > -3000 ? uv_err : HR_EIO;
}
