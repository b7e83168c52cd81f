/* test_server_ops.c - src/server/ops.c's allow-list (--metrics-allow) and core/metrics.c's
 * counting: which addresses may scrape, what a list refuses, per-worker blocks that add up, the
 * refusal reasons of HTTP statuses and the latency buckets. The exposition itself is checked
 * against the real binary with promtool (tests/e2e/metrics.test.mjs). */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/metrics.h"
#include "server/ops.h"

static int has(const struct hr_ops_allow *a, const char *addr)
{
    uint8_t b[16];
    if (strchr(addr, ':')) {
        assert_int_equal(inet_pton(AF_INET6, addr, b), 1);
        return hr_ops_allow_has(a, b, 16);
    }
    assert_int_equal(inet_pton(AF_INET, addr, b), 1);
    return hr_ops_allow_has(a, b, 4);
}

static void allow_lists(void **state)
{
    struct hr_ops_allow a;
    char err[160];
    assert_int_equal(hr_ops_allow_parse(&a, "loopback", err, sizeof err), 0);
    assert_true(has(&a, "127.0.0.1"));
    assert_true(has(&a, "127.255.0.9"));
    assert_true(has(&a, "::1"));
    assert_true(has(&a, "::ffff:127.0.0.1")); /* a dual-stack listener's IPv4 client */
    assert_false(has(&a, "10.0.0.1"));
    assert_false(has(&a, "::2"));
    assert_false(has(&a, "::ffff:10.0.0.1"));

    assert_int_equal(hr_ops_allow_parse(&a, " 10.0.0.0/8 , 192.168.1.7, fd00::/8", err, sizeof err),
                     0);
    assert_true(has(&a, "10.1.2.3"));
    assert_true(has(&a, "192.168.1.7"));
    assert_false(has(&a, "192.168.1.8"));
    assert_true(has(&a, "fd12::1"));
    assert_false(has(&a, "fe80::1"));
    assert_false(has(&a, "127.0.0.1"));

    assert_int_equal(hr_ops_allow_parse(&a, "172.16.0.0/12", err, sizeof err), 0);
    assert_true(has(&a, "172.31.255.255"));
    assert_false(has(&a, "172.32.0.0"));

    assert_int_equal(hr_ops_allow_parse(&a, "any", err, sizeof err), 0);
    assert_true(has(&a, "203.0.113.9"));
    assert_true(has(&a, "2001:db8::1"));

    assert_int_equal(hr_ops_allow_parse(&a, "none", err, sizeof err), 0);
    assert_false(has(&a, "127.0.0.1"));
    assert_false(has(&a, "::1"));
}

static void allow_refuses(void **state)
{
    struct hr_ops_allow a;
    char err[160];
    const char *bad[] = {"10.0.0.0/33", "::/129", "example.com",   "10.0.0.1/",
                         "10.0.0.1/x",  "",       "loopback,,any", "1.2.3.4/-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (hr_ops_allow_parse(&a, bad[i], err, sizeof err) != HR_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(err[0] != '\0');
    }
}

/* Each thread counts into its own block; the sum is every block's. */
static void *count_in(void *arg)
{
    hr_metrics_self = &hr_metrics_blocks[(size_t)arg];
    for (int i = 0; i < 100000; i++)
        HR_METRIC_INC(msgs_out);
    return NULL;
}

static void blocks_add_up(void **state)
{
    uint64_t before = HR_METRICS_SUM(msgs_out);
    pthread_t t[3];
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(pthread_create(&t[k], NULL, count_in, (void *)(k + 1)), 0);
    for (size_t k = 0; k < 3; k++)
        pthread_join(t[k], NULL);
    assert_int_equal(HR_METRICS_SUM(msgs_out) - before, 300000);
}

static void refusals_and_latency(void **state)
{
    assert_int_equal(hr_metrics_refusal_of(200), -1);
    assert_int_equal(hr_metrics_refusal_of(101), -1);
    assert_int_equal(hr_metrics_refusal_of(403), HR_MR_FORBIDDEN);
    assert_int_equal(hr_metrics_refusal_of(431), HR_MR_TOO_LARGE);
    assert_int_equal(hr_metrics_refusal_of(418), HR_MR_OTHER);
    assert_string_equal(hr_metrics_refusal_name(HR_MR_RATE), "rate_limited");
    uint64_t f = HR_METRICS_SUM(refused[HR_MR_FORBIDDEN]);
    hr_metrics_refused(403);
    hr_metrics_refused(200);
    assert_int_equal(HR_METRICS_SUM(refused[HR_MR_FORBIDDEN]), f + 1);

    uint64_t b0 = HR_METRICS_SUM(lat[0]), b1 = HR_METRICS_SUM(lat[1]);
    uint64_t inf = HR_METRICS_SUM(lat[HR_MT_LAT_BUCKETS]), n = HR_METRICS_SUM(lat_count);
    hr_metrics_publish_latency(400000);      /* 0.4 ms: le 0.0005 */
    hr_metrics_publish_latency(500000);      /* exactly 0.5 ms: le is inclusive */
    hr_metrics_publish_latency(700000);      /* le 0.001 */
    hr_metrics_publish_latency(60000000000); /* a minute: +Inf only */
    assert_int_equal(HR_METRICS_SUM(lat[0]) - b0, 2);
    assert_int_equal(HR_METRICS_SUM(lat[1]) - b1, 1);
    assert_int_equal(HR_METRICS_SUM(lat[HR_MT_LAT_BUCKETS]) - inf, 1);
    assert_int_equal(HR_METRICS_SUM(lat_count) - n, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allow_lists),
        cmocka_unit_test(allow_refuses),
        cmocka_unit_test(blocks_add_up),
        cmocka_unit_test(refusals_and_latency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
