/* budget.c - the process's memory budget: counters by category, the list of non-empty output
 * queues, and the shed pass that hands the largest ones to their slow-consumer policy. */
#include "budget.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* The process's counters: every event loop (--workers) charges the same ones, so one limit
 * holds for the whole process however its connections are spread over the workers. */
static struct {
    _Atomic uint64_t max;
    atomic_size_t used[HR_MEM_COUNT];
    atomic_size_t total;
    atomic_size_t peak;
} G;

/* Each event loop's own: the queues it may shed, and its pass. */
static _Thread_local struct {
    struct hr_budget_queue *queues; /* non-empty queues, unordered */
    size_t nqueues;
    size_t queued; /* what this loop's queues hold */
    void (*on_over)(void *ud);
    void *over_ud;
    int armed; /* on_over was called: not again until this loop saw the total back under */
    struct hr_budget_stats stats;
} B;

#define RELAXED memory_order_relaxed

void hr_budget_set_max(uint64_t max)
{
    atomic_store(&G.max, max);
}
uint64_t hr_budget_max(void)
{
    return atomic_load_explicit(&G.max, RELAXED);
}
size_t hr_budget_used(int cat)
{
    return cat >= 0 && cat < HR_MEM_COUNT ? atomic_load_explicit(&G.used[cat], RELAXED) : 0;
}
size_t hr_budget_total(void)
{
    return atomic_load_explicit(&G.total, RELAXED);
}
int hr_budget_over(void)
{
    uint64_t max = hr_budget_max();
    return max && hr_budget_total() > max;
}

void hr_budget_on_over(void (*fn)(void *ud), void *ud)
{
    B.on_over = fn;
    B.over_ud = ud;
    B.armed = 0;
}

static void add(int cat, size_t n)
{
    atomic_fetch_add_explicit(&G.used[cat], n, RELAXED);
    size_t total = atomic_fetch_add_explicit(&G.total, n, RELAXED) + n;
    size_t peak = atomic_load_explicit(&G.peak, RELAXED);
    while (total > peak &&
           !atomic_compare_exchange_weak_explicit(&G.peak, &peak, total, RELAXED, RELAXED))
        ;
    uint64_t max = hr_budget_max();
    if (max && total > max && !B.armed && B.on_over) {
        B.armed = 1;
        B.on_over(B.over_ud);
    }
}

static void sub(int cat, size_t n)
{
    /* a release never takes more than was charged; clamp so a bug cannot wrap the total */
    size_t have = atomic_load_explicit(&G.used[cat], RELAXED);
    do {
        if (n > have)
            n = have;
    } while (
        !atomic_compare_exchange_weak_explicit(&G.used[cat], &have, have - n, RELAXED, RELAXED));
    size_t total = atomic_fetch_sub_explicit(&G.total, n, RELAXED) - n;
    if (B.armed && total <= hr_budget_max())
        B.armed = 0;
}

void hr_budget_charge(int cat, size_t n)
{
    if (cat >= 0 && cat < HR_MEM_COUNT && cat != HR_MEM_QUEUED && n)
        add(cat, n);
}

void hr_budget_release(int cat, size_t n)
{
    if (cat >= 0 && cat < HR_MEM_COUNT && cat != HR_MEM_QUEUED && n)
        sub(cat, n);
}

static void link_queue(struct hr_budget_queue *q)
{
    q->prev = NULL;
    q->next = B.queues;
    if (B.queues)
        B.queues->prev = q;
    B.queues = q;
    q->linked = 1;
    B.nqueues++;
}

static void unlink_queue(struct hr_budget_queue *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        B.queues = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
    q->linked = 0;
    B.nqueues--;
}

void hr_budget_queue_charge(struct hr_budget_queue *q, size_t n)
{
    if (!n)
        return;
    if (!q->linked)
        link_queue(q);
    q->bytes += n;
    B.queued += n;
    add(HR_MEM_QUEUED, n);
}

void hr_budget_queue_release(struct hr_budget_queue *q, size_t n)
{
    if (n > q->bytes)
        n = q->bytes;
    q->bytes -= n;
    B.queued -= n;
    sub(HR_MEM_QUEUED, n);
    if (q->state == HR_BQ_SHED && q->bytes <= q->low)
        q->state = HR_BQ_OK; /* it drained: the policy let it go on */
    if (q->bytes == 0 && q->linked) {
        unlink_queue(q);
        if (q->state == HR_BQ_SHED)
            q->state = HR_BQ_OK;
    }
}

void hr_budget_queue_forget(struct hr_budget_queue *q)
{
    hr_budget_queue_release(q, q->bytes);
    if (q->linked)
        unlink_queue(q);
}

int hr_budget_admit(size_t n)
{
    uint64_t max = hr_budget_max();
    if (!max)
        return 1;
    size_t total = hr_budget_total(), queued = hr_budget_used(HR_MEM_QUEUED);
    size_t fixed = total > queued ? total - queued : 0;
    return fixed <= max && n <= max - fixed;
}

void hr_budget_refused(size_t n)
{
    static _Thread_local uint64_t last_logged;
    B.stats.refused++;
    /* one line per 100 refusals at most: a flood of refused publishes must not flood the log */
    if (B.stats.refused - last_logged >= 100 || last_logged == 0) {
        last_logged = B.stats.refused;
        hr_warn(
            "memory budget: publish of %zu bytes refused (%zu of %llu bytes in use: queued %zu, "
            "messages %zu, history %zu, bodies %zu, publishes %zu; %llu refused so far)",
            n, hr_budget_total(), (unsigned long long)hr_budget_max(),
            hr_budget_used(HR_MEM_QUEUED), hr_budget_used(HR_MEM_WS_MESSAGE),
            hr_budget_used(HR_MEM_HISTORY), hr_budget_used(HR_MEM_BODY),
            hr_budget_used(HR_MEM_PUBLISH), (unsigned long long)B.stats.refused);
    }
}

void hr_budget_stats(struct hr_budget_stats *out)
{
    *out = B.stats;
    out->peak = atomic_load_explicit(&G.peak, RELAXED);
}

static int by_size_desc(const void *a, const void *b)
{
    size_t x = (*(struct hr_budget_queue *const *)a)->bytes,
           y = (*(struct hr_budget_queue *const *)b)->bytes;
    return x < y ? 1 : x > y ? -1 : 0;
}

size_t hr_budget_shed(uint64_t now)
{
    if (!hr_budget_over()) {
        B.armed = 0;
        return 0;
    }
    if (B.nqueues == 0)
        return 0;
    uint64_t max = hr_budget_max(), low = max - max / 8;
    size_t total = hr_budget_total(), queued = hr_budget_used(HR_MEM_QUEUED);
    /* only queued output can be shed: aim for the low-water mark, or as near as queues allow;
     * each event loop sheds its share, in proportion to what its own queues hold */
    size_t need = total > low ? total - (size_t)low : 0;
    if (need > queued)
        need = queued;
    if (queued > B.queued)
        need = (size_t)((double)need * ((double)B.queued / (double)queued));
    /* Candidates and what is already on its way out. The list holds only non-empty queues,
     * so this pass costs nothing for idle connections. */
    struct hr_budget_queue **v = malloc(B.nqueues * sizeof(*v));
    if (!v)
        return 0;
    size_t n = 0, relief = 0;
    for (struct hr_budget_queue *q = B.queues; q; q = q->next) {
        if (q->state == HR_BQ_DROPPED ||
            (q->state == HR_BQ_SHED && now - q->shed_at < HR_BUDGET_GRACE_MS))
            relief += q->bytes;
        else if (q->bytes >= HR_BUDGET_SHED_MIN)
            v[n++] = q;
    }
    size_t acted = 0;
    if (relief < need) {
        need -= relief;
        qsort(v, n, sizeof(*v), by_size_desc);
        for (size_t i = 0; i < n && need > 0; i++) {
            struct hr_budget_queue *q = v[i];
            size_t b = q->bytes;
            int hard = q->state == HR_BQ_SHED; /* its policy had its chance */
            if (hard) {
                q->state = HR_BQ_DROPPED;
                B.stats.shed_hard++;
            } else {
                q->state = HR_BQ_SHED;
                q->shed_at = now;
                q->low = b / 2;
                B.stats.shed_soft++;
            }
            acted++;
            /* q may be released or unlinked inside (it must stay allocated: owners free
             * their memory after the loop turn) */
            q->shed(q, hard);
            need = b >= need ? 0 : need - b;
        }
        if (acted)
            hr_warn(
                "memory budget: %zu of %llu bytes in use (%zu queued); %zu largest output queues "
                "handed to their slow-consumer policy",
                hr_budget_total(), (unsigned long long)max, hr_budget_used(HR_MEM_QUEUED), acted);
    }
    free(v);
    return acted;
}

/* ---- the default: half of physical memory or of the cgroup limit -------------------------- */

static uint64_t read_u64_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[64];
    uint64_t v = 0;
    if (fgets(buf, sizeof buf, f) && buf[0] >= '0' && buf[0] <= '9')
        v = strtoull(buf, NULL, 10); /* "max" (no limit) reads as 0 */
    fclose(f);
    return v;
}

/* The memory limit of this process's cgroup (v2, then v1), or 0 for none. */
static uint64_t cgroup_limit(void)
{
    char line[512], path[700];
    uint64_t lim = 0;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "0::", 3) == 0) { /* cgroup v2: "0::/path" */
                line[strcspn(line, "\n")] = 0;
                snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", line + 3);
                lim = read_u64_file(path);
                break;
            }
        }
        fclose(f);
    }
    if (!lim)
        lim = read_u64_file("/sys/fs/cgroup/memory.max");
    if (!lim) {
        /* v1 reports "no limit" as a huge number: ignore anything at or above 2^60 */
        uint64_t v1 = read_u64_file("/sys/fs/cgroup/memory/memory.limit_in_bytes");
        if (v1 && v1 < (1ull << 60))
            lim = v1;
    }
    return lim;
}

uint64_t hr_budget_default(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGE_SIZE);
    uint64_t phys = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    uint64_t cg = cgroup_limit();
    uint64_t m = phys;
    if (cg && (!m || cg < m))
        m = cg;
    return m / 2;
}
