/* test_core_json.c - core/json.c: the validator (RFC 8259), string escaping, and values
 * herald serialises read exactly as JSON.stringify would write them (the expected strings
 * are what node prints for the same values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"

#define S(lit) lit, sizeof(lit) - 1

static void expect_buf(struct hr_buf *b, const char *want)
{
    assert_non_null(b);
    assert_int_equal(b->refs, 1);
    if (b->len != strlen(want) || memcmp(b->data, want, b->len) != 0)
        fail_msg("got \"%.*s\", want \"%s\"", (int)b->len, b->data, want);
    hr_buf_unref(b);
}

/* ---------------------------------------------------------------------------------------
 * JSON validator */

struct json_case {
    const char *in;
    size_t len;
    int kind; /* 0: invalid */
};

static const struct json_case json_cases[] = {
    /* kinds */
    {S("{}"), '{'},
    {S("[]"), '['},
    {S("\"\""), '"'},
    {S("0"), 'n'},
    {S("-1"), 'n'},
    {S("true"), 't'},
    {S("false"), 'f'},
    {S("null"), 'z'},
    /* whitespace around and inside (only space, tab, LF, CR) */
    {S(" \t\r\n[ 1 , 2 ]\n"), '['},
    {S("{ \"a\" : 1 , \"b\" : [ ] }"), '{'},
    {S("\f[]"), 0},
    {S("[]\v"), 0},
    {S("[\xc2\xa0]"), 0},
    {S("\xef\xbb\xbf[]"), 0},
    {S(""), 0},
    {S(" "), 0},
    {S("\n\t"), 0},
    /* numbers (RFC 8259 §6) */
    {S("0"), 'n'},
    {S("-0"), 'n'},
    {S("123"), 'n'},
    {S("1.5"), 'n'},
    {S("-0.0"), 'n'},
    {S("1e5"), 'n'},
    {S("1E+5"), 'n'},
    {S("1e-5"), 'n'},
    {S("0.5e005"), 'n'},
    {S("12345678901234567890123456789012345678901234567890"), 'n'},
    {S("1e99999"), 'n'},
    {S("01"), 0},
    {S("-01"), 0},
    {S("00"), 0},
    {S("+1"), 0},
    {S("-"), 0},
    {S("1."), 0},
    {S(".5"), 0},
    {S("1.e5"), 0},
    {S("1e"), 0},
    {S("1e+"), 0},
    {S("1e5.0"), 0},
    {S("0x10"), 0},
    {S("NaN"), 0},
    {S("Infinity"), 0},
    {S("-Infinity"), 0},
    {S("1 2"), 0},
    {S("- 1"), 0},
    {S("1_000"), 0},
    {S("[1,]"), 0},
    {S("[-]"), 0},
    /* literals */
    {S("tru"), 0},
    {S("truee"), 0},
    {S("True"), 0},
    {S("nul"), 0},
    {S("nulll"), 0},
    {S("fals"), 0},
    {S("undefined"), 0},
    /* strings (§7) */
    {S("\"abc\""), '"'},
    {S("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), '"'},
    {S("\"\\u0000\""), '"'},
    {S("\"\\uD83D\\uDE00\""), '"'},
    {S("\"\\ud800\""), '"'},
    {S("\"\\udc00\\ud800\""), '"'},
    {S("\"\\uABCD\\uabcd\""), '"'},
    {S("\"\x7f\""), '"'},
    {S("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""), '"'},
    {S("\"\xf4\x8f\xbf\xbf\""), '"'},
    {S("\"abc"), 0},
    {S("\"\\\""), 0},
    {S("\"\\"), 0},
    {S("'a'"), 0},
    {S("\"\\a\""), 0},
    {S("\"\\x41\""), 0},
    {S("\"\\U0041\""), 0},
    {S("\"\\u041\""), 0},
    {S("\"\\u004g\""), 0},
    {S("\"\\u\""), 0},
    {S("\"\\'\""), 0},
    {S("\"\\0\""), 0},
    {S("\"a\nb\""), 0},
    {S("\"a\tb\""), 0},
    {S("\"\x1f\""), 0},
    {S("\"\x00\""), 0},
    /* UTF-8 inside strings (RFC 3629) */
    {S("\"\xff\""), 0},
    {S("\"\x80\""), 0},
    {S("\"\xc3\""), 0},
    {S("\"\xc3\"\""), 0},
    {S("\"\xc0\xaf\""), 0},
    {S("\"\xe0\x80\xaf\""), 0},
    {S("\"\xed\xa0\x80\""), 0},
    {S("\"\xf4\x90\x80\x80\""), 0},
    {S("\"\xf5\x80\x80\x80\""), 0},
    {S("\"\xe2\x82\""), 0},
    {S("\"\xe2\x82\\n\""), 0},
    {S("{\"\xff\":1}"), 0},
    /* raw bytes outside strings */
    {S("[\xc3\xa9]"), 0},
    {S("[1]\xff"), 0},
    /* structure */
    {S("[1,2,[3,{\"a\":[{}]}]]"), '['},
    {S("{\"a\":{\"b\":{\"c\":null}}}"), '{'},
    {S("{\"a\":1,\"a\":2}"), '{'}, /* duplicate keys are valid JSON (JSON.parse keeps last) */
    {S("["), 0},
    {S("]"), 0},
    {S("[1"), 0},
    {S("[1,"), 0},
    {S("[,1]"), 0},
    {S("[1 2]"), 0},
    {S("[1,,2]"), 0},
    {S("[1}"), 0},
    {S("{]"), 0},
    {S("{"), 0},
    {S("{\"a\"}"), 0},
    {S("{\"a\":}"), 0},
    {S("{\"a\" 1}"), 0},
    {S("{\"a\":1,}"), 0},
    {S("{,}"), 0},
    {S("{1:2}"), 0},
    {S("{a:1}"), 0},
    {S("{\"a\":1 \"b\":2}"), 0},
    {S("{\"a\"::1}"), 0},
    {S("[]]"), 0},
    {S("{}}"), 0},
    {S("[][]"), 0},
    {S("1,2"), 0},
    {S("\"a\"\"b\""), 0},
    {S("[1]x"), 0},
    {S("[1] x"), 0},
    {S("[1]\x00"), 0},
    {S("[1]/**/"), 0},
    {S("//\n[1]"), 0},
    {S("[1]\x1e"), 0},
};

static void test_json_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
        const struct json_case *c = &json_cases[i];
        char *copy = malloc(c->len);
        assert_non_null(copy);
        memcpy(copy, c->in, c->len);
        int kind = hr_json_check(copy, c->len);
        if (kind != c->kind)
            fail_msg("case %zu \"%.*s\": %d, want %d", i, (int)c->len, c->in, kind, c->kind);
        free(copy);
    }
    assert_int_equal(hr_json_check(NULL, 0), 0);
}

/* Nesting: 128 containers deep is the limit, arrays and objects alike; far deeper input is
 * rejected without using stack. */
static void test_json_depth(void **state)
{
    (void)state;
    size_t big = 1000000;
    char *buf = malloc(2 * big + 16);
    assert_non_null(buf);

    for (size_t depth = 126; depth <= 130; depth++) {
        size_t n = 0;
        for (size_t i = 0; i < depth; i++)
            buf[n++] = '[';
        for (size_t i = 0; i < depth; i++)
            buf[n++] = ']';
        assert_int_equal(hr_json_check(buf, n), depth <= 128 ? '[' : 0);

        /* {"a":[{"a":[...1...]}]} mixing both kinds */
        n = 0;
        for (size_t i = 0; i < depth; i++) {
            if (i % 2 == 0) {
                memcpy(buf + n, "{\"a\":", 5);
                n += 5;
            } else {
                buf[n++] = '[';
            }
        }
        buf[n++] = '1';
        for (size_t i = depth; i-- > 0;)
            buf[n++] = i % 2 == 0 ? '}' : ']';
        assert_int_equal(hr_json_check(buf, n), depth <= 128 ? '{' : 0);
    }
    memset(buf, '[', big);
    memset(buf + big, ']', big);
    assert_int_equal(hr_json_check(buf, 2 * big), 0);
    for (size_t i = 0; i < big / 5; i++)
        memcpy(buf + i * 5, "{\"a\":", 5);
    assert_int_equal(hr_json_check(buf, big), 0);
    free(buf);
}

/* ---------------------------------------------------------------------------------------
 * Strings and values */

struct str_case {
    const char *in;
    size_t len;
    const char *out;
};

static const struct str_case str_cases[] = {
    {S(""), "\"\""},
    {S("hello"), "\"hello\""},
    {S("a\"b\\c/d"), "\"a\\\"b\\\\c/d\""},
    {S("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\""},
    {S("\x00\x01\x1f\x7f"), "\"\\u0000\\u0001\\u001f\x7f\""},
    {S("\x0b\x1e"), "\"\\u000b\\u001e\""},
    {S("\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80"), "\"\xc3\xa9\xe2\x80\xa8\xf0\x9f\x98\x80\""},
    {S("<script>&'"), "\"<script>&'\""},
};

static void test_json_append_string(void **state)
{
    (void)state;
    long live = hr_buf_live;
    for (size_t i = 0; i < sizeof(str_cases) / sizeof(str_cases[0]); i++) {
        struct hr_buf *b = hr_buf_new(0);
        assert_non_null(b);
        assert_int_equal(hr_json_append_string(&b, str_cases[i].in, str_cases[i].len), 0);
        expect_buf(b, str_cases[i].out);
    }
    /* invalid UTF-8 is refused and leaves the buffer as it was */
    static const char *bad[] = {"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf", "ok\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hr_buf *b = hr_buf_from("x", 1);
        assert_int_equal(hr_json_append_string(&b, bad[i], strlen(bad[i])), HR_EINVAL);
        expect_buf(b, "x");
    }
    assert_int_equal(hr_buf_live, live);
}

static void test_numbers_like_javascript(void **state)
{
    static const struct {
        double x;
        const char *js;
    } t[] = {
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.5, "1.5"},
        {-2.5, "-2.5"},
        {100, "100"},
        {1e20, "100000000000000000000"},
        {1e21, "1e+21"},
        {1.5e21, "1.5e+21"},
        {123456789012345680000.0, "123456789012345680000"},
        {1e-6, "0.000001"},
        {1.5e-7, "1.5e-7"},
        {1e-7, "1e-7"},
        {-0.0, "0"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {9007199254740992.0, "9007199254740992"},
        {123.456, "123.456"},
        {0.000123, "0.000123"},
        {1.0 / 3.0, "0.3333333333333333"},
        {2.0 / 3.0, "0.6666666666666666"},
        {NAN, "null"},
        {INFINITY, "null"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[32];
        int n = hr_json_number(t[i].x, out);
        assert_int_equal(n, (int)strlen(out));
        assert_string_equal(out, t[i].js);
    }
}

static void check_dump(json_t *v, const char *expect)
{
    struct hr_buf *b = hr_buf_new(16);
    assert_int_equal(hr_json_dump(v, &b), 0);
    assert_int_equal(b->len, strlen(expect));
    assert_memory_equal(b->data, expect, b->len);
    hr_buf_unref(b);
    json_decref(v);
}

static void test_values_like_json_stringify(void **state)
{
    /* insertion order of keys, compact, escapes as JSON.stringify */
    check_dump(json_pack("{s:s,s:s}", "type", "init", "message", "欢迎连接"),
               "{\"type\":\"init\",\"message\":\"欢迎连接\"}");
    check_dump(json_pack("{s:i,s:i,s:i}", "z", 1, "a", 2, "m", 3), "{\"z\":1,\"a\":2,\"m\":3}");
    check_dump(json_pack("[i,f,b,n,s]", -7, 0.5, 1, "q\"\\\n\t\x01<>"),
               "[-7,0.5,true,null,\"q\\\"\\\\\\n\\t\\u0001<>\"]");
    check_dump(json_pack("{s:[{s:[]}],s:{}}", "a", "b", "c"), "{\"a\":[{\"b\":[]}],\"c\":{}}");
    check_dump(json_integer(INT64_MAX), "9223372036854775807");
    check_dump(json_real(1e21), "1e+21");
}

static void test_depth_limit(void **state)
{
    json_t *v = json_array(), *inner = v;
    for (int i = 0; i < 200; i++) {
        json_t *a = json_array();
        json_array_append_new(inner, a);
        inner = a;
    }
    struct hr_buf *b = hr_buf_new(16);
    assert_true(hr_json_dump(v, &b) < 0);
    hr_buf_unref(b);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_like_javascript),
        cmocka_unit_test(test_values_like_json_stringify),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_json_table),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_json_append_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
