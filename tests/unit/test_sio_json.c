/* test_sio_json.c - values herald serialises read exactly as JSON.stringify would write them
 * (the expected strings are what node prints for the same values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "core/json.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
