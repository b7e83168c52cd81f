/* text.c - small text helpers shared by the parsers: hex digits and percent-decoding. */
#include "text.h"

#include "error.h"

int hr_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return HR_EINVAL;
}

long hr_percent_decode(const char *in, size_t len, char *out, size_t outsz, unsigned flags)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = in[i];
        if (ch == '%') {
            int hi = i + 2 < len ? hr_hex_value(in[i + 1]) : HR_EINVAL;
            int lo = hi >= 0 ? hr_hex_value(in[i + 2]) : HR_EINVAL;
            if (lo >= 0) {
                ch = (char)(hi * 16 + lo);
                i += 2;
                if (ch == '\0' && (flags & HR_PCT_NO_NUL))
                    return HR_EINVAL;
            } else if (flags & HR_PCT_STRICT) {
                return HR_EINVAL;
            }
        } else if (ch == '+' && (flags & HR_PCT_PLUS)) {
            ch = ' ';
        }
        if (n + 1 >= outsz)
            return HR_ETOOBIG;
        out[n++] = ch;
    }
    out[n] = '\0';
    return (long)n;
}
