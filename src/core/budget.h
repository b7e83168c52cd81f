/* budget.h - the process's memory budget (--max-memory; Redis's maxmemory idea): what herald
 * holds on behalf of its clients is charged here by category, so that one total can be held
 * under one limit however the memory is spread over connections.
 *
 * Two kinds of memory are charged:
 *   - output queues (HR_MEM_QUEUED): what a peer has not read yet. Each queue is a struct
 *     hr_budget_queue (a connection's write queue, an Engine.IO polling queue) that can be
 *     shed: over the budget, the largest queues are handed to their slow-consumer policy
 *     (hr_budget_shed), and cut for good if that did not free them in time;
 *   - everything else (message assembly, history cache, request bodies, publishes waiting for
 *     their commit): it cannot be shed, so a publish that would take it past the budget is
 *     refused (hr_budget_admit) instead of being acknowledged unstored.
 *
 * A shared broadcast frame is charged once per queue that holds it (the cost as if each had
 * its own copy): the sum is an upper bound of what the queues pin, never an underestimate.
 * The counters and the limit are the process's: every worker (--workers) charges the same
 * ones (atomics). The list of queues, the shed pass and the over hook are each event loop's
 * own: a loop sheds only its own queues (its share of what must go), from its own thread. */
#ifndef HR_CORE_BUDGET_H
#define HR_CORE_BUDGET_H

#include <stddef.h>
#include <stdint.h>

enum hr_mem_cat {
    HR_MEM_QUEUED,     /* output queued for peers beyond what the kernel took */
    HR_MEM_WS_MESSAGE, /* WebSocket messages being assembled from fragments / partial reads */
    HR_MEM_HISTORY,    /* the in-memory history cache (charged by its owner) */
    HR_MEM_BODY,       /* HTTP request bodies being received */
    HR_MEM_PUBLISH,    /* published messages waiting for their commit */
    HR_MEM_COUNT
};

/* The state of a queue as the budget sees it. */
enum { HR_BQ_OK, HR_BQ_SHED, HR_BQ_DROPPED };

/* An output queue the budget may shed; embedded in its owner, zeroed, then give it .shed. */
struct hr_budget_queue {
    struct hr_budget_queue *prev, *next; /* on the list of non-empty queues */
    size_t bytes;                        /* charged as HR_MEM_QUEUED */
    size_t low;                          /* after a soft shed: drained once bytes <= low */
    uint64_t shed_at;                    /* when the policy was applied (the caller's clock) */
    uint8_t state;                       /* HR_BQ_* */
    uint8_t linked;
    /* hard == 0: apply the owner's slow-consumer policy (disconnect with a notice, or hold
     * back messages until the queue drains); hard == 1: the policy did not free the queue in
     * time and the budget is still over: drop it now (close without flushing). */
    void (*shed)(struct hr_budget_queue *q, int hard);
};

/* The limit in bytes; 0 means unlimited. */
void hr_budget_set_max(uint64_t max);
uint64_t hr_budget_max(void);

/* The default limit: half of the physical memory, or of the cgroup's memory limit when one is
 * set and lower (a container), so herald leaves room for the kernel's socket buffers, the
 * store and other processes. 0 if neither can be read (then: unlimited). */
uint64_t hr_budget_default(void);

/* Charge / release n bytes of a category other than HR_MEM_QUEUED. */
void hr_budget_charge(int cat, size_t n);
void hr_budget_release(int cat, size_t n);

/* Charge / release n bytes of a queue (category HR_MEM_QUEUED). */
void hr_budget_queue_charge(struct hr_budget_queue *q, size_t n);
void hr_budget_queue_release(struct hr_budget_queue *q, size_t n);
/* The queue's owner goes away: whatever it still holds is released. */
void hr_budget_queue_forget(struct hr_budget_queue *q);

size_t hr_budget_used(int cat);
size_t hr_budget_total(void);
/* Whether n more bytes of memory that cannot be shed (a publish) fit: what cannot be shed
 * (every category but queued output) plus n stays within the limit. */
int hr_budget_admit(size_t n);
/* The total is over the limit (always 0 when unlimited). */
int hr_budget_over(void);

/* Called when a charge takes the total over the limit (the server schedules a shed pass on
 * its loop: a pass must not run inside the caller, which may be fanning out). */
void hr_budget_on_over(void (*fn)(void *ud), void *ud);

/* A queue that was soft-shed and not freed within this time is dropped (ms). */
#define HR_BUDGET_GRACE_MS 100
/* Queues smaller than this are never shed: a reader that keeps up has a little in flight. */
#define HR_BUDGET_SHED_MIN (64 * 1024)

/* One shed pass at time now (ms): when over the limit, shed the largest queues until the total
 * would be under the low-water mark (7/8 of the limit), counting what is already being freed
 * (dropped queues, soft-shed ones still within their grace). Returns how many queues it acted
 * on. */
size_t hr_budget_shed(uint64_t now);

/* Counters for logs and tests. */
struct hr_budget_stats {
    uint64_t shed_soft, shed_hard; /* queues handed to their policy / dropped */
    uint64_t refused;              /* publishes refused by hr_budget_admit */
    size_t peak;                   /* highest total seen */
};
void hr_budget_stats(struct hr_budget_stats *out);
/* Count a refused publish (for the stats and a rate-limited log line). */
void hr_budget_refused(size_t n);

#endif
