/* text.h - small text helpers shared by the parsers: hex digits and percent-decoding. */
#ifndef HR_CORE_TEXT_H
#define HR_CORE_TEXT_H

#include <stddef.h>

/* The value of one hex digit (0-9, a-f, A-F), or HR_EINVAL. */
int hr_hex_value(char c);

/* How hr_percent_decode treats what differs between URL parts (RFC 3986 §2.1). */
enum {
    HR_PCT_PLUS = 1 << 0,   /* '+' is a space (application/x-www-form-urlencoded query values) */
    HR_PCT_STRICT = 1 << 1, /* a '%' without two hex digits is an error (else kept as it is) */
    HR_PCT_NO_NUL = 1 << 2, /* "%00" is an error (a C string must not end early) */
};

/* Percent-decode in[0, len) into out, at most outsz - 1 bytes followed by a NUL (outsz >= 1).
 * Returns the decoded length; HR_EINVAL for an escape that flags refuse; HR_ETOOBIG when out
 * is too small. Errors are found in input order, so the first problem decides. */
long hr_percent_decode(const char *in, size_t len, char *out, size_t outsz, unsigned flags);

#endif
