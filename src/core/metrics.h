/* metrics.h - the counters behind GET /metrics: one block per worker thread, written only by
 * that thread (a relaxed load and store: a plain increment, no lock, no atomic read-modify-write
 * on the hot path) and summed over every block when scraped (server/metrics.c). The layers
 * below server/ count into the block of the thread they run on (hr_metrics_self); names and
 * the exposition format are the server's business. */
#ifndef HR_CORE_METRICS_H
#define HR_CORE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* What a client connected with (a label value each: hr_metrics_transport_name). */
enum {
    HR_MT_WEBSOCKET, /* /ws/{channel} */
    HR_MT_SSE,       /* /sse/{channel} */
    HR_MT_LONGPOLL,  /* /lp/{channel}: a request held open */
    HR_MT_POLL,      /* /poll/{channel}: answered at once */
    HR_MT_SOCKETIO,  /* an Engine.IO session (Socket.IO), on any of its transports */
    HR_MT_ECHO,      /* /echo */
    HR_MT_TRANSPORTS
};

/* Why a request or a connection was refused (hr_metrics_refusal_name). */
enum {
    HR_MR_BAD_REQUEST,  /* 400 */
    HR_MR_UNAUTHORIZED, /* 401: no token, or a bad one */
    HR_MR_FORBIDDEN,    /* 403: an origin, a channel rule, a scrape from elsewhere */
    HR_MR_NOT_FOUND,    /* 404 */
    HR_MR_METHOD,       /* 405 */
    HR_MR_TOO_LARGE,    /* 413, 431 */
    HR_MR_RATE,         /* 429: a quota */
    HR_MR_UNAVAILABLE,  /* 503: the memory budget, the store, stopping */
    HR_MR_OTHER,        /* any other 4xx/5xx */
    HR_MR_CONN_LIMIT,   /* a connection closed on accept: --max-connections, per address */
    HR_MR_REASONS
};

/* The slow-consumer policies of hub.h, in their order (HR_POLICY_*). */
#define HR_MT_POLICIES 3

/* Publish latency buckets, seconds (upper bounds; +Inf is implicit): from a publish entering
 * the hub of the worker that took it to its acknowledgement, the store's commit (and the hops to
 * the sequencer and back: server/workers.c times those) included. */
#define HR_MT_LAT_BUCKETS 14
extern const double hr_metrics_lat_bounds[HR_MT_LAT_BUCKETS];

typedef _Atomic uint64_t hr_counter;

struct hr_metrics {
    hr_counter opened[HR_MT_TRANSPORTS], closed[HR_MT_TRANSPORTS];
    hr_counter refused[HR_MR_REASONS];
    hr_counter msgs_in;  /* publishes committed and acknowledged */
    hr_counter msgs_out; /* channel messages written to readers (one per reader) */
    hr_counter bytes_in, bytes_out;
    hr_counter drops[HR_MT_POLICIES];
    hr_counter lat[HR_MT_LAT_BUCKETS + 1]; /* not cumulative; the last is +Inf */
    hr_counter lat_sum_ns, lat_count;
    char pad[64]; /* the next worker's block on another cache line */
};

#define HR_METRICS_BLOCKS 64 /* HR_WORKERS_MAX or more */
extern struct hr_metrics hr_metrics_blocks[HR_METRICS_BLOCKS];
/* The calling thread's block: worker k's thread sets &hr_metrics_blocks[k]; any other thread
 * counts into block 0 (the main loop's). */
extern _Thread_local struct hr_metrics *hr_metrics_self;

static inline void hr_counter_add(hr_counter *c, uint64_t n)
{
    /* one writer per block: no read-modify-write needed, only no torn values for the scrape */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline uint64_t hr_counter_get(hr_counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#define HR_METRIC_ADD(field, n) hr_counter_add(&hr_metrics_self->field, (n))
#define HR_METRIC_INC(field) hr_counter_add(&hr_metrics_self->field, 1)

/* An HTTP status's refusal reason (HR_MR_*), or -1 when it is no refusal (< 400). */
int hr_metrics_refusal_of(int status);
void hr_metrics_refused(int status);
/* One publish acknowledged after ns nanoseconds. */
void hr_metrics_publish_latency(uint64_t ns);
const char *hr_metrics_transport_name(int t);
const char *hr_metrics_refusal_name(int r);

/* The sum of one counter over every block: field is an offsetof into struct hr_metrics. */
uint64_t hr_metrics_sum(size_t offset);
#define HR_METRICS_SUM(field) hr_metrics_sum(offsetof(struct hr_metrics, field))

#endif
