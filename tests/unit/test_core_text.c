/* test_core_text.c - core/text.c: hex digits and the one percent-decoder the query, static
 * path and channel name decoders share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/text.h"

static void test_hex_value(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        int want = c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : HR_EINVAL;
        assert_int_equal(hr_hex_value((char)c), want);
    }
}

#define Q HR_PCT_PLUS
#define P (HR_PCT_STRICT | HR_PCT_NO_NUL)
#define C HR_PCT_STRICT

static void test_percent_decode(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len; /* 0: strlen(in) */
        unsigned flags;
        size_t outsz; /* 0: 64 */
        long want;    /* length, or an HR code */
        const char *out;
    } t[] = {
        {"", 0, 0, 0, 0, ""},
        {"abc", 0, 0, 0, 3, "abc"},
        {"%41%42%43", 0, 0, 0, 3, "ABC"},
        {"%4a%4A", 0, 0, 0, 2, "JJ"},
        {"%2b%2B", 0, Q, 0, 2, "++"}, /* an escaped '+' stays a '+' */
        {"x+y%20z", 0, Q, 0, 5, "x y z"},
        {"x+y", 0, 0, 0, 3, "x+y"}, /* '+' is a space only in a query */
        {"%2F", 0, 0, 0, 1, "/"},
        {"%252F", 0, 0, 0, 3, "%2F"}, /* decoded once */
        /* a bad escape is kept as it is, unless strict */
        {"%", 0, 0, 0, 1, "%"},
        {"%4", 0, 0, 0, 2, "%4"},
        {"%zz", 0, 0, 0, 3, "%zz"},
        {"%4g", 0, 0, 0, 3, "%4g"},
        {"a%", 0, Q, 0, 2, "a%"},
        {"%", 0, C, 0, HR_EINVAL, NULL},
        {"%4", 0, C, 0, HR_EINVAL, NULL},
        {"%zz", 0, C, 0, HR_EINVAL, NULL},
        {"%g4", 0, P, 0, HR_EINVAL, NULL},
        /* the escape must lie inside len: "%41" cut to "%4" is bad */
        {"%41", 2, 0, 0, 2, "%4"},
        {"%41", 2, C, 0, HR_EINVAL, NULL},
        /* %00: a byte like any other, unless refused */
        {"a%00b", 0, 0, 0, 3, "a\0b"},
        {"a%00b", 0, C, 0, 3, "a\0b"},
        {"a%00b", 0, P, 0, HR_EINVAL, NULL},
        /* out: outsz - 1 bytes and a NUL */
        {"abc", 0, 0, 4, 3, "abc"},
        {"abc", 0, 0, 3, HR_ETOOBIG, NULL},
        {"%41%42%43", 0, 0, 4, 3, "ABC"},
        {"%41%42%43", 0, 0, 3, HR_ETOOBIG, NULL},
        {"", 0, 0, 1, 0, ""},
        {"a", 0, 0, 1, HR_ETOOBIG, NULL},
        /* the first problem in input order decides */
        {"abc%zz", 0, P, 3, HR_ETOOBIG, NULL},
        {"%zzabc", 0, P, 3, HR_EINVAL, NULL},
        {"ab%00", 0, P, 3, HR_EINVAL, NULL},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[64 + 8];
        size_t len = t[i].len ? t[i].len : strlen(t[i].in);
        size_t outsz = t[i].outsz ? t[i].outsz : 64;
        memset(out, '#', sizeof out);
        long n = hr_percent_decode(t[i].in, len, out, outsz, t[i].flags);
        if (n != t[i].want)
            fail_msg("case %zu \"%s\" flags %u: %ld, want %ld", i, t[i].in, t[i].flags, n,
                     t[i].want);
        if (n >= 0) {
            assert_int_equal(out[n], '\0');
            assert_memory_equal(out, t[i].out, (size_t)n);
        }
        for (size_t k = outsz; k < sizeof out; k++)
            assert_int_equal(out[k], '#');
    }
}

/* Every pair of bytes after '%': decoded exactly when both are hex digits. */
static void test_percent_decode_all_pairs(void **state)
{
    (void)state;
    for (int a = 1; a < 256; a++) {
        for (int b = 1; b < 256; b++) {
            char in[3] = {'%', (char)a, (char)b}, out[4];
            int hex = hr_hex_value((char)a) >= 0 && hr_hex_value((char)b) >= 0;
            long n = hr_percent_decode(in, 3, out, sizeof out, 0);
            if (hex) {
                assert_int_equal(n, 1);
                assert_int_equal((unsigned char)out[0],
                                 hr_hex_value((char)a) * 16 + hr_hex_value((char)b));
            } else {
                assert_int_equal(n, 3);
                assert_memory_equal(out, in, 3);
            }
            assert_int_equal(hr_percent_decode(in, 3, out, sizeof out, HR_PCT_STRICT),
                             hex ? 1 : HR_EINVAL);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_value),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_percent_decode_all_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
