/* test_core_quota.c - src/core/quota.c: the token bucket (burst, refill, a persisting run of
 * refusals, the wait before the next message, loop times past 32 bits), the shared table of
 * publishers' buckets (one bucket per key, bounded: idle entries go first, the least recently
 * used at the cap; one count under concurrent takes) and the hit counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "core/quota.h"

static int take_n(struct hr_bucket *b, const struct hr_rate *r, uint64_t now, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += hr_bucket_take(b, r, now) == HR_QUOTA_OK;
    return ok;
}

static void bucket_burst_then_rate(void **state)
{
    struct hr_bucket b = {0};
    struct hr_rate r = {10, 5};
    uint64_t t = 1000000;
    /* a zeroed bucket is full: the burst passes at once, the next is refused */
    assert_int_equal(take_n(&b, &r, t, 5), 5);
    assert_int_equal(hr_bucket_take(&b, &r, t), HR_QUOTA_OVER);
    assert_int_equal(hr_bucket_wait_ms(&b, &r, t), 100);
    /* 10 a second: one more every 100 ms, not before */
    assert_int_equal(hr_bucket_take(&b, &r, t + 99), HR_QUOTA_OVER);
    assert_int_equal(hr_bucket_take(&b, &r, t + 100), HR_QUOTA_OK);
    assert_int_equal(hr_bucket_take(&b, &r, t + 100), HR_QUOTA_OVER);
    assert_false(hr_bucket_full(&b, &r, t + 100));
    /* half a second refills 5, never more than the burst */
    assert_int_equal(take_n(&b, &r, t + 600, 10), 5);
    assert_true(hr_bucket_full(&b, &r, t + 100000));
    assert_int_equal(take_n(&b, &r, t + 100000, 10), 5);
    /* rate 0: no limit */
    struct hr_rate off = {0, 0};
    struct hr_bucket z = {0};
    assert_int_equal(take_n(&z, &off, t, 100000), 100000);
}

static void bucket_persisting_run_closes(void **state)
{
    struct hr_bucket b = {0};
    struct hr_rate r = {10, 5};
    uint64_t t = 5000;
    take_n(&b, &r, t, 5);
    /* a message every 20 ms (50/s): refused but for one in five; closed 3 s after the first
     * refusal, not before */
    uint64_t first = 0, closed = 0;
    for (uint64_t now = t; now < t + 10000 && !closed; now += 20) {
        int q = hr_bucket_take(&b, &r, now);
        if (q != HR_QUOTA_OK && !first)
            first = now;
        if (q == HR_QUOTA_CLOSE)
            closed = now;
    }
    assert_true(first);
    assert_true(closed - first >= HR_QUOTA_PERSIST_MS);
    assert_true(closed - first < HR_QUOTA_PERSIST_MS + 100); /* the first refusal after it */
}

static void bucket_pause_ends_the_run(void **state)
{
    struct hr_bucket b = {0};
    struct hr_rate r = {1, 1};
    uint64_t t = 7000;
    /* a message every 200 ms at 1 a second: one in five passes, and the refusals, 200 ms
     * apart, are one run from the first (t + 200): the first refusal 3 s after it closes */
    uint64_t closed = 0;
    int ok = 0;
    for (uint64_t now = t; now < t + 5000 && !closed; now += 200) {
        int q = hr_bucket_take(&b, &r, now);
        ok += q == HR_QUOTA_OK;
        if (q == HR_QUOTA_CLOSE)
            closed = now;
    }
    assert_int_equal(closed, t + 200 + HR_QUOTA_PERSIST_MS);
    assert_int_equal(ok, 4); /* t, t + 1000, t + 2000, t + 3000 */
    /* a second without a refusal ends a run: a new one starts: a new run starts */
    struct hr_bucket c = {0};
    assert_int_equal(hr_bucket_take(&c, &r, t), HR_QUOTA_OK);
    assert_int_equal(hr_bucket_take(&c, &r, t + 10), HR_QUOTA_OVER);
    assert_int_equal(hr_bucket_take(&c, &r, t + 1500), HR_QUOTA_OK);
    assert_int_equal(hr_bucket_take(&c, &r, t + 3100), HR_QUOTA_OK);
    assert_int_equal(hr_bucket_take(&c, &r, t + 3200), HR_QUOTA_OVER);
}

static void bucket_wraps_32_bits(void **state)
{
    struct hr_bucket b = {0};
    struct hr_rate r = {10, 2};
    uint64_t t = UINT32_MAX - 50; /* the loop clock crosses 2^32 ms between two takes */
    assert_int_equal(take_n(&b, &r, t, 3), 2);
    assert_int_equal(hr_bucket_take(&b, &r, t + 100), HR_QUOTA_OK);
    assert_int_equal(hr_bucket_take(&b, &r, t + 100), HR_QUOTA_OVER);
    assert_int_equal(take_n(&b, &r, t + 100 + 200, 5), 2);
}

static void table_one_bucket_per_key(void **state)
{
    struct hr_quota q;
    struct hr_rate r = {1, 3};
    assert_int_equal(hr_quota_init(&q, &r, 100), 0);
    uint32_t retry = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(hr_quota_take(&q, "ip:1.2.3.4", 10, 1000, NULL), HR_QUOTA_OK);
    assert_int_equal(hr_quota_take(&q, "ip:1.2.3.4", 10, 1000, &retry), HR_QUOTA_OVER);
    assert_int_equal(retry, 1000);
    assert_int_equal(hr_quota_take(&q, "ip:1.2.3.5", 10, 1000, NULL), HR_QUOTA_OK);
    assert_int_equal(hr_quota_count(&q), 2);
    /* a later worker's slightly earlier clock does not refill the bucket */
    assert_int_equal(hr_quota_take(&q, "ip:1.2.3.4", 10, 990, NULL), HR_QUOTA_OVER);
    assert_int_equal(hr_quota_take(&q, "ip:1.2.3.4", 10, 2000, NULL), HR_QUOTA_OK);
    hr_quota_free(&q);
    /* rate 0: nothing kept */
    struct hr_rate off = {0, 0};
    assert_int_equal(hr_quota_init(&q, &off, 100), 0);
    assert_int_equal(hr_quota_take(&q, "k", 1, 1, NULL), HR_QUOTA_OK);
    assert_int_equal(hr_quota_count(&q), 0);
    hr_quota_free(&q);
}

static void table_bounded(void **state)
{
    struct hr_quota q;
    struct hr_rate r = {1, 2};
    assert_int_equal(hr_quota_init(&q, &r, 8), 0);
    char key[32];
    /* a flood of distinct keys: never more than the cap */
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(key, sizeof key, "ip:10.0.%d.%d", i / 256, i % 256);
        assert_int_equal(hr_quota_take(&q, key, (size_t)n, 1000, NULL), HR_QUOTA_OK);
        assert_true(hr_quota_count(&q) <= 8);
    }
    assert_int_equal(hr_quota_count(&q), 8);
    /* idle entries (their debt paid: 1 s at 1/s) go as others take: two a take */
    for (int i = 0; i < 4; i++)
        hr_quota_take(&q, "ip:192.0.2.1", 12, 5000, NULL);
    assert_int_equal(hr_quota_count(&q), 1);
    hr_quota_free(&q);

    /* at the cap, the least recently used goes (its debt forgiven), not a recent one */
    assert_int_equal(hr_quota_init(&q, &r, 2), 0);
    hr_quota_take(&q, "a", 1, 100, NULL);
    hr_quota_take(&q, "a", 1, 100, NULL);
    hr_quota_take(&q, "b", 1, 100, NULL);
    assert_int_equal(hr_quota_take(&q, "a", 1, 101, NULL), HR_QUOTA_OVER); /* a: most recent */
    assert_int_equal(hr_quota_take(&q, "c", 1, 102, NULL), HR_QUOTA_OK);   /* b goes */
    assert_int_equal(hr_quota_count(&q), 2);
    assert_int_equal(hr_quota_take(&q, "a", 1, 103, NULL), HR_QUOTA_OVER); /* a kept its debt */
    hr_quota_free(&q);

    /* long keys are cut, not refused */
    assert_int_equal(hr_quota_init(&q, &r, 4), 0);
    char longkey[HR_QUOTA_KEY_MAX + 50];
    memset(longkey, 'k', sizeof longkey);
    assert_int_equal(hr_quota_take(&q, longkey, sizeof longkey, 1, NULL), HR_QUOTA_OK);
    assert_int_equal(hr_quota_take(&q, longkey, HR_QUOTA_KEY_MAX, 1, NULL), HR_QUOTA_OK);
    assert_int_equal(hr_quota_take(&q, longkey, sizeof longkey - 1, 1, NULL), HR_QUOTA_OVER);
    assert_int_equal(hr_quota_count(&q), 1);
    hr_quota_free(&q);
}

struct racer {
    struct hr_quota *q;
    int ok;
};

static void race_cb(void *arg)
{
    struct racer *r = arg;
    for (int i = 0; i < 20000; i++)
        r->ok += hr_quota_take(r->q, "ip:127.0.0.1", 12, 42, NULL) == HR_QUOTA_OK;
}

/* Workers take from one table at once: the burst is shared, never exceeded. */
static void table_shared_by_threads(void **state)
{
    struct hr_quota q;
    struct hr_rate r = {1, 1000};
    assert_int_equal(hr_quota_init(&q, &r, 16), 0);
    struct racer a = {&q, 0}, b = {&q, 0};
    uv_thread_t ta, tb;
    assert_int_equal(uv_thread_create(&ta, race_cb, &a), 0);
    assert_int_equal(uv_thread_create(&tb, race_cb, &b), 0);
    uv_thread_join(&ta);
    uv_thread_join(&tb);
    assert_int_equal(a.ok + b.ok, 1000);
    hr_quota_free(&q);
}

static void hits_counted(void **state)
{
    uint64_t before = hr_quota_hits(HR_QUOTA_PUBLISH);
    for (int i = 0; i < 5; i++)
        hr_quota_hit(HR_QUOTA_PUBLISH, 3, 1000 + (uint64_t)i);
    hr_quota_log_flush(5000);
    assert_int_equal(hr_quota_hits(HR_QUOTA_PUBLISH), before + 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bucket_burst_then_rate),    cmocka_unit_test(bucket_persisting_run_closes),
        cmocka_unit_test(bucket_pause_ends_the_run), cmocka_unit_test(bucket_wraps_32_bits),
        cmocka_unit_test(table_one_bucket_per_key),  cmocka_unit_test(table_bounded),
        cmocka_unit_test(table_shared_by_threads),   cmocka_unit_test(hits_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
