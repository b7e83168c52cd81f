/* error.h - herald's error codes: 0 or a negative HR_E* value, named by hr_strerror(). */
#ifndef HR_CORE_ERROR_H
#define HR_CORE_ERROR_H

enum {
    HR_OK = 0,
    HR_AGAIN = -1,     /* need more input (parsers) */
    HR_ENOMEM = -2,    /* allocation failed */
    HR_EINVAL = -3,    /* invalid argument or malformed input */
    HR_ETOOBIG = -4,   /* a configured limit was exceeded */
    HR_ECLOSED = -5,   /* the connection is closing or closed */
    HR_EIO = -6,       /* a system call failed */
    HR_ENOTFOUND = -7, /* no such route, file or object */
    HR_EBUSY = -8,     /* over the memory budget: try again later */
};

const char *hr_strerror(int err);

#endif
