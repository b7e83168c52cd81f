/* test_budget.c - src/core/budget.c: charges by category, the admission of publishes (only
 * memory that cannot be shed counts), the list of non-empty queues, the over-budget hook, and
 * the shed pass: largest queues first, down to the low-water mark, soft before hard, small
 * queues spared, what is already being freed counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/budget.h"

#define MiB (1024u * 1024u)

/* A fake owner: records what the budget asked; a hard shed frees the queue (a close). */
struct owner {
    struct hr_budget_queue q;
    int soft, hard;
};

static void shed(struct hr_budget_queue *q, int hard)
{
    struct owner *o = (struct owner *)q;
    if (hard) {
        o->hard++;
        hr_budget_queue_forget(q);
    } else {
        o->soft++;
    }
}

static int overs;
static void on_over(void *ud)
{
    (void)ud;
    overs++;
}

static int setup(void **state)
{
    (void)state;
    hr_budget_set_max(0);
    hr_budget_on_over(on_over, NULL);
    overs = 0;
    return 0;
}

/* Every test gives back what it charged. */
static int teardown(void **state)
{
    (void)state;
    assert_int_equal(hr_budget_total(), 0);
    for (int c = 0; c < HR_MEM_COUNT; c++)
        assert_int_equal(hr_budget_used(c), 0);
    hr_budget_on_over(NULL, NULL);
    return 0;
}

static void test_categories(void **state)
{
    (void)state;
    hr_budget_charge(HR_MEM_WS_MESSAGE, 100);
    hr_budget_charge(HR_MEM_BODY, 20);
    hr_budget_charge(HR_MEM_HISTORY, 3);
    hr_budget_charge(HR_MEM_QUEUED, 999); /* queues are charged through their queue only */
    assert_int_equal(hr_budget_used(HR_MEM_WS_MESSAGE), 100);
    assert_int_equal(hr_budget_used(HR_MEM_QUEUED), 0);
    assert_int_equal(hr_budget_total(), 123);
    hr_budget_release(HR_MEM_WS_MESSAGE, 40);
    assert_int_equal(hr_budget_total(), 83);
    /* a release past the charge cannot wrap the counters */
    hr_budget_release(HR_MEM_BODY, 1000);
    assert_int_equal(hr_budget_used(HR_MEM_BODY), 0);
    assert_int_equal(hr_budget_total(), 63);
    hr_budget_release(HR_MEM_WS_MESSAGE, 60);
    hr_budget_release(HR_MEM_HISTORY, 3);
    assert_int_equal(overs, 0); /* unlimited: never over */
    assert_int_equal(hr_budget_over(), 0);
    assert_true(hr_budget_admit(SIZE_MAX));
}

static void test_admit_counts_what_cannot_be_shed(void **state)
{
    (void)state;
    hr_budget_set_max(10 * MiB);
    struct owner o = {.q.shed = shed};
    hr_budget_queue_charge(&o.q, 9 * MiB);
    /* queued output can be shed: a publish still fits */
    assert_true(hr_budget_admit(5 * MiB));
    hr_budget_charge(HR_MEM_WS_MESSAGE, 6 * MiB);
    assert_true(hr_budget_admit(4 * MiB));
    assert_false(hr_budget_admit(4 * MiB + 1));
    hr_budget_charge(HR_MEM_PUBLISH, 5 * MiB);
    assert_false(hr_budget_admit(0)); /* 11 MiB that cannot be shed: over already */
    hr_budget_release(HR_MEM_PUBLISH, 5 * MiB);
    hr_budget_release(HR_MEM_WS_MESSAGE, 6 * MiB);
    hr_budget_queue_forget(&o.q);
    assert_true(hr_budget_admit(10 * MiB));
    assert_false(hr_budget_admit(10 * MiB + 1));
    struct hr_budget_stats st;
    hr_budget_stats(&st);
    uint64_t before = st.refused;
    hr_budget_refused(10);
    hr_budget_stats(&st);
    assert_int_equal(st.refused, before + 1);
}

static void test_over_hook_once_per_crossing(void **state)
{
    (void)state;
    hr_budget_set_max(1 * MiB);
    hr_budget_charge(HR_MEM_BODY, MiB);
    assert_int_equal(overs, 0); /* at the limit is not over it */
    hr_budget_charge(HR_MEM_BODY, 1);
    assert_int_equal(overs, 1);
    hr_budget_charge(HR_MEM_BODY, 100);
    assert_int_equal(overs, 1);
    assert_true(hr_budget_over());
    hr_budget_release(HR_MEM_BODY, 101);
    assert_false(hr_budget_over());
    hr_budget_charge(HR_MEM_BODY, 1);
    assert_int_equal(overs, 2);
    hr_budget_release(HR_MEM_BODY, MiB + 1);
}

static void test_queue_list_and_drain(void **state)
{
    (void)state;
    hr_budget_set_max(4 * MiB);
    struct owner a = {.q.shed = shed};
    hr_budget_queue_charge(&a.q, 100);
    assert_true(a.q.linked);
    assert_int_equal(hr_budget_used(HR_MEM_QUEUED), 100);
    hr_budget_queue_release(&a.q, 100);
    assert_false(a.q.linked);
    /* a soft-shed queue is "drained" once it falls to half of what it held when shed */
    hr_budget_queue_charge(&a.q, 5 * MiB);
    assert_int_equal(hr_budget_shed(0), 1);
    assert_int_equal(a.soft, 1);
    assert_int_equal(a.q.state, HR_BQ_SHED);
    hr_budget_queue_release(&a.q, 2 * MiB);
    assert_int_equal(a.q.state, HR_BQ_SHED);
    hr_budget_queue_release(&a.q, MiB / 2);
    assert_int_equal(a.q.state, HR_BQ_OK);
    hr_budget_queue_forget(&a.q);
    assert_false(a.q.linked);
}

static void test_shed_largest_first_to_low_water(void **state)
{
    (void)state;
    hr_budget_set_max(16 * MiB); /* low water: 14 MiB */
    /* ten queues of 1..10 MiB (55 MiB) and one small one that keeps up */
    struct owner q[10], small = {.q.shed = shed};
    for (int i = 0; i < 10; i++) {
        q[i] = (struct owner){.q.shed = shed};
        hr_budget_queue_charge(&q[i].q, (size_t)(i + 1) * MiB);
    }
    hr_budget_queue_charge(&small.q, HR_BUDGET_SHED_MIN - 1);
    assert_int_equal(overs, 1);
    /* need 41 MiB + a little: 10 + 9 + 8 + 7 + 6 = 40 is not enough, 10..5 = 45 is */
    assert_int_equal(hr_budget_shed(1000), 6);
    for (int i = 0; i < 10; i++)
        assert_int_equal(q[i].soft, i >= 4 ? 1 : 0);
    /* within the grace nothing more: the soft-shed queues are on their way out */
    assert_int_equal(hr_budget_shed(1000 + HR_BUDGET_GRACE_MS - 1), 0);
    /* after it, the ones that did not drain are dropped, largest first, as many as needed (the
     * same six: 55 - 45 = 10 MiB left, under the 14 MiB low-water mark) */
    assert_int_equal(hr_budget_shed(1000 + HR_BUDGET_GRACE_MS), 6);
    for (int i = 0; i < 10; i++)
        assert_int_equal(q[i].hard, i >= 4 ? 1 : 0);
    assert_int_equal(hr_budget_used(HR_MEM_QUEUED), 10 * MiB + HR_BUDGET_SHED_MIN - 1);
    assert_false(hr_budget_over());
    assert_int_equal(hr_budget_shed(5000), 0);
    /* a queue that drained after a soft shed is not dropped later */
    hr_budget_queue_charge(&q[3].q, 20 * MiB); /* q[3] holds 24 MiB now; total 34 MiB */
    assert_int_equal(hr_budget_shed(6000), 1);
    assert_int_equal(q[3].soft, 1);
    hr_budget_queue_release(&q[3].q, 20 * MiB); /* drained to 4 MiB <= 12 */
    assert_int_equal(q[3].q.state, HR_BQ_OK);
    assert_int_equal(hr_budget_shed(9000), 0);
    assert_int_equal(q[3].hard, 0);
    /* small queues are never shed, even when nothing else is left */
    hr_budget_charge(HR_MEM_WS_MESSAGE, 20 * MiB);
    for (int i = 0; i < 4; i++)
        hr_budget_queue_forget(&q[i].q);
    assert_int_equal(hr_budget_shed(10000), 0);
    assert_int_equal(small.soft, 0);
    hr_budget_release(HR_MEM_WS_MESSAGE, 20 * MiB);
    hr_budget_queue_forget(&small.q);
    struct hr_budget_stats st;
    hr_budget_stats(&st);
    assert_true(st.shed_soft >= 7 && st.shed_hard >= 6);
    assert_true(st.peak >= 55 * MiB);
}

static void test_dropped_queues_count_as_relief(void **state)
{
    (void)state;
    hr_budget_set_max(8 * MiB);
    struct owner a = {.q.shed = shed}, b = {.q.shed = shed};
    hr_budget_queue_charge(&a.q, 6 * MiB);
    hr_budget_queue_charge(&b.q, 5 * MiB);
    /* a was closed by its owner (its bytes go when the close completes) */
    a.q.state = HR_BQ_DROPPED;
    /* 11 MiB, low water 7: a's 6 MiB on its way out is enough */
    assert_int_equal(hr_budget_shed(0), 0);
    assert_int_equal(b.soft, 0);
    hr_budget_queue_forget(&a.q);
    hr_budget_queue_forget(&b.q);
}

static void test_default(void **state)
{
    (void)state;
    uint64_t d = hr_budget_default();
    /* half of something: at least some memory, and not more than the address space allows */
    assert_true(d >= 16 * MiB);
    assert_true(d < (1ull << 50));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_categories, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admit_counts_what_cannot_be_shed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_hook_once_per_crossing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_list_and_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shed_largest_first_to_low_water, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_queues_count_as_relief, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
