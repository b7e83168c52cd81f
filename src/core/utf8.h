/* utf8.h - UTF-8 validation (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF. */
#ifndef HR_CORE_UTF8_H
#define HR_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 * state starts at HR_UTF8_ACCEPT; returns the new state, HR_UTF8_REJECT at the first bad
 * byte (sticky). A complete text is valid iff the final state is HR_UTF8_ACCEPT. */
#define HR_UTF8_ACCEPT 0u
#define HR_UTF8_REJECT 1u
uint32_t hr_utf8_validate(uint32_t state, const uint8_t *s, size_t len);

/* Whether s[0..len) is complete, valid UTF-8. */
static inline int hr_utf8_valid(const void *s, size_t len)
{
    return hr_utf8_validate(HR_UTF8_ACCEPT, (const uint8_t *)s, len) == HR_UTF8_ACCEPT;
}

#endif
