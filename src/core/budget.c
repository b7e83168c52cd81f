/* budget.c - the process's memory budget: counters by category, the list of non-empty output
 * queues, and the shed pass that hands the largest ones to their slow-consumer policy. */
#include "budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static _Thread_local struct {
    uint64_t max;
    size_t used[HR_MEM_COUNT];
    size_t total;
    struct hr_budget_queue *queues; /* non-empty queues, unordered */
    size_t nqueues;
    void (*on_over)(void *ud);
    void *over_ud;
    struct hr_budget_stats stats;
} B;

void hr_budget_set_max(uint64_t max)
{
    B.max = max;
}
uint64_t hr_budget_max(void)
{
    return B.max;
}
size_t hr_budget_used(int cat)
{
    return cat >= 0 && cat < HR_MEM_COUNT ? B.used[cat] : 0;
}
size_t hr_budget_total(void)
{
    return B.total;
}
int hr_budget_over(void)
{
    return B.max && B.total > B.max;
}

void hr_budget_on_over(void (*fn)(void *ud), void *ud)
{
    B.on_over = fn;
    B.over_ud = ud;
}

static void add(int cat, size_t n)
{
    int was_over = hr_budget_over();
    B.used[cat] += n;
    B.total += n;
    if (B.total > B.stats.peak)
        B.stats.peak = B.total;
    if (!was_over && hr_budget_over() && B.on_over)
        B.on_over(B.over_ud);
}

static void sub(int cat, size_t n)
{
    /* a release never takes more than was charged; clamp so a bug cannot wrap the total */
    if (n > B.used[cat])
        n = B.used[cat];
    B.used[cat] -= n;
    B.total -= n;
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
    add(HR_MEM_QUEUED, n);
}

void hr_budget_queue_release(struct hr_budget_queue *q, size_t n)
{
    if (n > q->bytes)
        n = q->bytes;
    q->bytes -= n;
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
    if (!B.max)
        return 1;
    size_t fixed = B.total - B.used[HR_MEM_QUEUED];
    return fixed <= B.max && n <= B.max - fixed;
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
            n, B.total, (unsigned long long)B.max, B.used[HR_MEM_QUEUED], B.used[HR_MEM_WS_MESSAGE],
            B.used[HR_MEM_HISTORY], B.used[HR_MEM_BODY], B.used[HR_MEM_PUBLISH],
            (unsigned long long)B.stats.refused);
    }
}

void hr_budget_stats(struct hr_budget_stats *out)
{
    *out = B.stats;
}

static int by_size_desc(const void *a, const void *b)
{
    size_t x = (*(struct hr_budget_queue *const *)a)->bytes,
           y = (*(struct hr_budget_queue *const *)b)->bytes;
    return x < y ? 1 : x > y ? -1 : 0;
}

size_t hr_budget_shed(uint64_t now)
{
    if (!hr_budget_over() || B.nqueues == 0)
        return 0;
    uint64_t low = B.max - B.max / 8;
    /* only queued output can be shed: aim for the low-water mark, or as near as queues allow */
    size_t need = B.total - (size_t)low;
    if (need > B.used[HR_MEM_QUEUED])
        need = B.used[HR_MEM_QUEUED];
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
                B.total, (unsigned long long)B.max, B.used[HR_MEM_QUEUED], acted);
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
