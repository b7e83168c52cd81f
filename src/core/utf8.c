/* utf8.c - UTF-8 validation (RFC 3629 §4), incremental so a WebSocket text message can be
 * checked frame by frame (RFC 6455 §8.1). */
#include "utf8.h"

#include <string.h>

/* UTF-8 (RFC 3629 §4). States other than ACCEPT/REJECT say how many continuation bytes are
 * still due and which range the next one must fall in: the narrowed ranges after E0, ED,
 * F0 and F4 are what exclude overlongs, surrogates and code points above U+10FFFF. */
enum {
    U8_NEED1 = 2,    /* one more byte, 80..BF */
    U8_NEED2 = 3,    /* two more, the next 80..BF */
    U8_NEED2_E0 = 4, /* two more, the next A0..BF (no overlong 3-byte forms) */
    U8_NEED2_ED = 5, /* two more, the next 80..9F (no surrogates D800..DFFF) */
    U8_NEED3 = 6,    /* three more, the next 80..BF */
    U8_NEED3_F0 = 7, /* three more, the next 90..BF (no overlong 4-byte forms) */
    U8_NEED3_F4 = 8, /* three more, the next 80..8F (nothing above U+10FFFF) */
};

static const uint8_t u8_lo[9] = {0, 0, 0x80, 0x80, 0xA0, 0x80, 0x80, 0x90, 0x80};
static const uint8_t u8_hi[9] = {0, 0, 0xBF, 0xBF, 0xBF, 0x9F, 0xBF, 0xBF, 0x8F};
static const uint8_t u8_next[9] = {0,        0,        HR_UTF8_ACCEPT, U8_NEED1, U8_NEED1,
                                   U8_NEED1, U8_NEED2, U8_NEED2,       U8_NEED2};

static uint32_t utf8_lead(uint8_t b)
{
    if (b < 0x80)
        return HR_UTF8_ACCEPT;
    if (b < 0xC2) /* stray continuation byte, or C0/C1 (always overlong) */
        return HR_UTF8_REJECT;
    if (b < 0xE0)
        return U8_NEED1;
    if (b == 0xE0)
        return U8_NEED2_E0;
    if (b == 0xED)
        return U8_NEED2_ED;
    if (b < 0xF0)
        return U8_NEED2;
    if (b == 0xF0)
        return U8_NEED3_F0;
    if (b < 0xF4)
        return U8_NEED3;
    if (b == 0xF4)
        return U8_NEED3_F4;
    return HR_UTF8_REJECT; /* F5..FF never appear in UTF-8 */
}

uint32_t hr_utf8_validate(uint32_t state, const uint8_t *s, size_t len)
{
    size_t i = 0;

    if (state > U8_NEED3_F4)
        return HR_UTF8_REJECT;
    while (i < len) {
        if (state == HR_UTF8_REJECT)
            return HR_UTF8_REJECT;
        if (state == HR_UTF8_ACCEPT) {
            /* Chat traffic is mostly ASCII: skip it eight bytes at a time. */
            while (len - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & UINT64_C(0x8080808080808080))
                    break;
                i += 8;
            }
            if (i == len)
                break;
            state = utf8_lead(s[i++]);
            continue;
        }
        uint8_t b = s[i++];
        if (b < u8_lo[state] || b > u8_hi[state])
            return HR_UTF8_REJECT;
        state = u8_next[state];
    }
    return state;
}
