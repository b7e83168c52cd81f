/* test_sio_emit.c - an event's arguments as the handlers see them: herald_args_count counts the
 * checked raw text without parsing it, and must agree with the parsed array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "sio/internal.h"

/* parse: the handler read the parsed array first (herald_args_json), so the count is its size */
static size_t count(const char *raw, int parse)
{
    herald_args a = {.raw = raw, .raw_len = strlen(raw)};
    if (parse)
        assert_non_null(herald_args_json(&a));
    size_t n = herald_args_count(&a);
    json_decref(a.parsed);
    return n;
}

static void count_agrees_with_the_parse(void **state)
{
    static const struct {
        const char *raw;
        size_t n;
    } t[] = {
        {"", 0},
        {"  ", 0},
        {"1", 1},
        {"\"a,b\"", 1},
        {"\"a\\\",\\\\\",2", 2},
        {"[1,2,[3,4]],{\"k\":[5,6],\"l\":\"]\"}", 2},
        {" 1 , \"x\" , null , true , {} , [] ", 6},
        {"\"\\u005d,\\\\\"", 1},
        {"{\"a\":\"{[\"}", 1},
        {"-1.5e3,\"\xe4\xbd\xa0,\xe5\xa5\xbd\"", 2},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char arr[128];
        snprintf(arr, sizeof arr, "[%s]", t[i].raw); /* what the decoder checked */
        assert_int_equal(hr_json_check(arr, strlen(arr)), '[');
        if (count(t[i].raw, 0) != t[i].n)
            fail_msg("'%s': counted %zu, want %zu", t[i].raw, count(t[i].raw, 0), t[i].n);
        assert_int_equal(count(t[i].raw, 1), t[i].n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(count_agrees_with_the_parse)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
