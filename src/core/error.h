/* error.h - herald's error codes: 0 or a negative HR_E* value, named by hr_strerror().
 *
 * One code space, errno-style (libuv UV__ERR): every HR_E* is a negative errno value, so a
 * -errno from a system call and a libuv error (-errno on Unix) are valid HR codes and may be
 * returned as they are; hr_error_from_uv() maps the few libuv codes that are not an errno
 * (UV_EOF, getaddrinfo's UV_EAI_*). HTTP statuses are not error codes: a function whose
 * documented result is a status returns a positive status. */
#ifndef HR_CORE_ERROR_H
#define HR_CORE_ERROR_H

#include <errno.h>

enum {
    HR_OK = 0,
    /* Not an error: a parser needs more input (nginx NGX_AGAIN); the caller reads and calls
     * again. Distinct from every HR_E* below. */
    HR_AGAIN = -EAGAIN,
    HR_ENOMEM = -ENOMEM,     /* allocation failed */
    HR_EINVAL = -EINVAL,     /* invalid argument or malformed input */
    HR_ETOOBIG = -E2BIG,     /* a configured limit (or the caller's buffer) was exceeded */
    HR_ECLOSED = -EPIPE,     /* the connection is closing or closed */
    HR_EIO = -EIO,           /* a system call or the store failed */
    HR_ENOTFOUND = -ENOENT,  /* no such route, file, parameter or object */
    HR_EBUSY = -EBUSY,       /* over the memory budget: try again later */
    HR_ENOTSUP = -ENOTSUP,   /* not available in this build or on this system */
    HR_EUNAUTH = -EPERM,     /* no token, or one that is not valid (HTTP 401) */
    HR_EFORBIDDEN = -EACCES, /* a valid token that does not allow it (HTTP 403) */
    HR_EQUOTA = -EDQUOT,     /* a per-client quota is used up (--max-channels) */
};

/* A message for an HR code (or any negative errno); never NULL. */
const char *hr_strerror(int err);

/* A libuv error as an HR code: errno values pass through, UV_EOF is HR_ECLOSED, libuv's own
 * codes (UV_EAI_*, ...) are HR_EIO. */
int hr_error_from_uv(int uv_err);

#endif
