/* test_buf.c - src/core/buf.c: reference counts and the live-buffer count, appends that grow
 * the buffer while it has one owner and are refused once it is shared, printf. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"

/* Every test must give back what it took. */
static long live_at_start;

static int setup(void **state)
{
    (void)state;
    live_at_start = hr_buf_live;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    assert_int_equal(hr_buf_live, live_at_start);
    return 0;
}

static void test_new_and_unref(void **state)
{
    (void)state;
    static const size_t caps[] = {0, 1, 7, 64, 4096, 1 << 20};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        long before = hr_buf_live;
        struct hr_buf *b = hr_buf_new(caps[i]);
        assert_non_null(b);
        assert_int_equal(b->refs, 1);
        assert_int_equal(b->len, 0);
        assert_int_equal(b->cap, caps[i]);
        assert_int_equal(hr_buf_live, before + 1);
        if (caps[i])
            memset(b->data, 0xAB, caps[i]); /* the whole capacity is usable */
        hr_buf_unref(b);
        assert_int_equal(hr_buf_live, before);
    }
    hr_buf_unref(NULL); /* no-op */
}

static void test_new_too_big(void **state)
{
    (void)state;
    long before = hr_buf_live;
    assert_null(hr_buf_new(UINT32_MAX));
    assert_null(hr_buf_new((size_t)UINT32_MAX + 1));
    assert_null(hr_buf_new(SIZE_MAX));
    assert_null(hr_buf_from("x", (size_t)UINT32_MAX + 1));
    assert_int_equal(hr_buf_live, before);
}

static void test_from(void **state)
{
    (void)state;
    static const struct {
        const char *data;
        size_t len;
    } t[] = {
        {"", 0},
        {"a", 1},
        {"hello world", 11},
        {"with\0nul", 8},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct hr_buf *b = hr_buf_from(t[i].data, t[i].len);
        assert_non_null(b);
        assert_int_equal(b->refs, 1);
        assert_int_equal(b->len, t[i].len);
        assert_true(b->cap >= t[i].len);
        if (t[i].len)
            assert_memory_equal(b->data, t[i].data, t[i].len);
        hr_buf_unref(b);
    }
    struct hr_buf *b = hr_buf_from(NULL, 0);
    assert_non_null(b);
    assert_int_equal(b->len, 0);
    hr_buf_unref(b);
}

/* Only the last unref frees (ASan would see a use after free otherwise). */
static void test_refcount(void **state)
{
    (void)state;
    long before = hr_buf_live;
    struct hr_buf *b = hr_buf_from("frame", 5);
    assert_ptr_equal(hr_buf_ref(b), b);
    assert_ptr_equal(hr_buf_ref(b), b);
    assert_int_equal(b->refs, 3);
    assert_int_equal(hr_buf_live, before + 1);
    hr_buf_unref(b);
    assert_int_equal(b->refs, 2);
    assert_memory_equal(b->data, "frame", 5);
    hr_buf_unref(b);
    assert_int_equal(b->refs, 1);
    assert_int_equal(hr_buf_live, before + 1);
    hr_buf_unref(b);
    assert_int_equal(hr_buf_live, before);

    /* many holders, released in any order */
    struct hr_buf *bufs[3];
    for (int i = 0; i < 3; i++)
        bufs[i] = hr_buf_new(16);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 1000; k++)
            hr_buf_ref(bufs[i]);
    assert_int_equal(hr_buf_live, before + 3);
    for (int k = 0; k < 1001; k++)
        for (int i = 2; i >= 0; i--)
            hr_buf_unref(bufs[i]);
    assert_int_equal(hr_buf_live, before);
}

/* Appends of these sizes, in order, starting from these capacities. */
static void test_append_growth(void **state)
{
    (void)state;
    static const struct {
        size_t cap;
        size_t sizes[6];
    } t[] = {
        {0, {1, 0, 1, 62, 1, 0}},      {0, {64, 1, 0, 0, 0, 0}},  {1, {1, 1, 1, 1, 1, 1}},
        {8, {8, 0, 0, 0, 0, 0}},       {8, {9, 0, 0, 0, 0, 0}},   {10, {3, 1000, 3, 70000, 1, 0}},
        {0, {1 << 20, 1, 0, 0, 0, 0}}, {100, {0, 0, 0, 0, 0, 0}},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct hr_buf *b = hr_buf_new(t[i].cap);
        size_t total = 0;
        unsigned char seed = 0;
        assert_non_null(b);
        for (int k = 0; k < 6; k++) {
            size_t n = t[i].sizes[k];
            unsigned char *chunk = malloc(n ? n : 1);
            assert_non_null(chunk);
            for (size_t j = 0; j < n; j++)
                chunk[j] = (unsigned char)(seed + j * 31);
            long before = hr_buf_live;
            assert_int_equal(hr_buf_append(&b, chunk, n), 0);
            assert_int_equal(hr_buf_live, before); /* growing is not a new buffer */
            assert_int_equal(b->refs, 1);
            assert_true(b->cap >= b->len);
            assert_int_equal(b->len, total + n);
            if (n)
                assert_memory_equal(b->data + total, chunk, n);
            total += n;
            seed = (unsigned char)(seed + 7);
            free(chunk);
        }
        /* the earlier bytes survived every move */
        seed = 0;
        size_t off = 0;
        for (int k = 0; k < 6; k++) {
            for (size_t j = 0; j < t[i].sizes[k]; j++)
                assert_int_equal((unsigned char)b->data[off + j], (unsigned char)(seed + j * 31));
            off += t[i].sizes[k];
            seed = (unsigned char)(seed + 7);
        }
        hr_buf_unref(b);
    }
}

/* Amortised growth: appending a byte at a time does not reallocate every time. */
static void test_append_amortised(void **state)
{
    (void)state;
    struct hr_buf *b = hr_buf_new(0);
    uint32_t last_cap = b->cap;
    int grew = 0;
    for (int i = 0; i < 100000; i++) {
        char ch = (char)('a' + i % 26);
        assert_int_equal(hr_buf_append(&b, &ch, 1), 0);
        if (b->cap != last_cap) {
            assert_true(b->cap >= 2 * (uint64_t)last_cap);
            last_cap = b->cap;
            grew++;
        }
    }
    assert_int_equal(b->len, 100000);
    assert_true(grew <= 12);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(b->data[i], 'a' + i % 26);
    hr_buf_unref(b);
}

/* Once shared, a buffer never moves: growing would leave the other holders with a dangling
 * pointer, so it is refused and nothing changes. Within its capacity it may still be
 * written (buf.h: "grows only while refs == 1"); the bytes others hold stay as they were. */
static void test_append_shared(void **state)
{
    (void)state;
    static const struct {
        size_t cap, len, add;
        int rc;
    } t[] = {
        {16, 5, 12, HR_ETOOBIG}, /* one byte over */
        {16, 5, 100, HR_ETOOBIG},
        {5, 5, 1, HR_ETOOBIG},
        {0, 0, 1, HR_ETOOBIG},
        {16, 5, 11, 0}, /* exactly fits */
        {16, 5, 1, 0},
        {16, 5, 0, 0},
        {0, 0, 0, 0},
    };
    char add[128];
    memset(add, 'z', sizeof add);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct hr_buf *b = hr_buf_new(t[i].cap);
        memset(b->data, 'a', t[i].len);
        b->len = (uint32_t)t[i].len;
        struct hr_buf *other = hr_buf_ref(b);
        struct hr_buf *bp = b;
        int rc = hr_buf_append(&bp, add, t[i].add);
        if (rc != t[i].rc)
            fail_msg("case %zu: append %zu to %zu/%zu shared: %d, want %d", i, t[i].add, t[i].len,
                     t[i].cap, rc, t[i].rc);
        assert_ptr_equal(bp, b);
        assert_ptr_equal(other, b);
        assert_int_equal(b->cap, t[i].cap);
        assert_int_equal(b->len, t[i].len + (rc ? 0 : t[i].add));
        for (size_t k = 0; k < t[i].len; k++)
            assert_int_equal(b->data[k], 'a');
        assert_int_equal(b->refs, 2);
        hr_buf_unref(other);
        /* back to one owner: growing works again */
        assert_int_equal(hr_buf_append(&bp, add, 100), 0);
        assert_int_equal(bp->len, t[i].len + (rc ? 0 : t[i].add) + 100);
        hr_buf_unref(bp);
    }
}

static void test_printf(void **state)
{
    (void)state;
    struct hr_buf *b = hr_buf_new(0);
    assert_int_equal(hr_buf_printf(&b, "HTTP/1.1 %d %s\r\n", 200, "OK"), 0);
    assert_int_equal(b->len, 17);
    assert_memory_equal(b->data, "HTTP/1.1 200 OK\r\n", 17);
    assert_int_equal(hr_buf_printf(&b, "Content-Length: %zu\r\n\r\n", (size_t)12345), 0);
    assert_int_equal(b->len, 17 + 25);
    assert_memory_equal(b->data + 17, "Content-Length: 12345\r\n\r\n", 25);
    /* an empty format adds nothing */
    assert_int_equal(hr_buf_printf(&b, "%s", ""), 0);
    assert_int_equal(b->len, 42);
    /* the NUL is written past len, not counted */
    assert_int_equal(b->data[b->len], '\0');
    /* mixed with append */
    assert_int_equal(hr_buf_append(&b, "body", 4), 0);
    assert_int_equal(hr_buf_printf(&b, "%c%5.2f|%-3s|%03u", '!', 3.14159, "x", 7u), 0);
    assert_int_equal(b->len, 42 + 4 + 14);
    assert_memory_equal(b->data + 42, "body! 3.14|x  |007", 4 + 14);
    hr_buf_unref(b);

    /* longer than any initial capacity */
    b = hr_buf_new(4);
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(hr_buf_printf(&b, "<%s>", big), 0);
    assert_int_equal(b->len, 5000 + 1);
    assert_int_equal(b->data[0], '<');
    assert_int_equal(b->data[5000], '>');
    hr_buf_unref(b);

    /* shared: refused when it would have to grow, nothing written */
    b = hr_buf_from("abc", 3);
    struct hr_buf *other = hr_buf_ref(b);
    assert_int_equal(hr_buf_printf(&b, "%d", 12345), HR_ETOOBIG);
    assert_ptr_equal(b, other);
    assert_int_equal(b->len, 3);
    assert_memory_equal(b->data, "abc", 3);
    hr_buf_unref(other);
    hr_buf_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_and_unref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_from, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refcount, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_amortised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_printf, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
