/* test_core_array.c - core/array.h: growth by doubling, push, and failure leaving the array
 * as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "core/error.h"

struct item {
    uint64_t id;
    char tag[12];
};

static void test_push_grows_by_doubling(void **state)
{
    (void)state;
    struct item *a = NULL;
    uint32_t n = 0, cap = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        uint32_t before = cap;
        struct item *it = HR_ARRAY_PUSH(a, n, cap, 8);
        assert_non_null(it);
        assert_ptr_equal(it, &a[i]);
        assert_int_equal(n, i + 1);
        if (before != cap)
            assert_int_equal(cap, before ? before * 2 : 8); /* 8, 16, 32, ... */
        it->id = i;
        memcpy(it->tag, "item", 5);
    }
    assert_int_equal(cap, 1024);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(a[i].id, i);
        assert_string_equal(a[i].tag, "item");
    }
    HR_ARRAY_FREE(a, n, cap);
    assert_null(a);
    assert_int_equal(n, 0);
    assert_int_equal(cap, 0);
}

static void test_reserve(void **state)
{
    (void)state;
    int *a = NULL;
    uint32_t cap = 0;
    assert_int_equal(HR_ARRAY_RESERVE(a, cap, 0, 16), 0); /* nothing needed: no allocation */
    assert_null(a);
    assert_int_equal(HR_ARRAY_RESERVE(a, cap, 5, 16), 0);
    assert_int_equal(cap, 16);
    int *first = a;
    assert_int_equal(HR_ARRAY_RESERVE(a, cap, 16, 16), 0);
    assert_ptr_equal(a, first);                             /* room already there */
    assert_int_equal(HR_ARRAY_RESERVE(a, cap, 100, 16), 0); /* doubles past need at once */
    assert_int_equal(cap, 128);
    a[99] = 7;
    /* a request that cannot be met leaves the array and its capacity alone */
    assert_int_equal(HR_ARRAY_RESERVE(a, cap, (size_t)UINT32_MAX + 1, 16), HR_ENOMEM);
    assert_int_equal(HR_ARRAY_RESERVE(a, cap, SIZE_MAX / 2, 16), HR_ENOMEM);
    assert_int_equal(cap, 128);
    assert_int_equal(a[99], 7);
    /* min 0 starts at one element */
    uint32_t n = 0;
    HR_ARRAY_FREE(a, n, cap);
    assert_int_equal(HR_ARRAY_RESERVE(a, cap, 1, 0), 0);
    assert_int_equal(cap, 1);
    HR_ARRAY_FREE(a, n, cap);
    assert_int_equal(n + cap, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_grows_by_doubling),
        cmocka_unit_test(test_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
