/* quota.h - per-client quotas: a token bucket small enough to sit in every connection's state
 * (no timer: it refills by the loop time it is given), a process-wide table of buckets keyed
 * by publisher ("ip:<addr>", later "sub:<subject>") shared by the workers under a mutex and
 * bounded in size, and the quota hits' log lines (at most one a second per kind, with counts,
 * like the refused-connection warnings of net/server.c). */
#ifndef HR_CORE_QUOTA_H
#define HR_CORE_QUOTA_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A rate: `rate` messages a second on average, `burst` at once; rate 0 = no limit. */
struct hr_rate {
    uint32_t rate, burst;
};

/* A bucket, zeroed = full. It holds its debt rather than its tokens (in thousandths of a
 * message), so a zeroed one needs no set-up. Times are loop milliseconds (low 32 bits:
 * differences wrap correctly). A run of refusals (each less than HR_QUOTA_RUN_GAP_MS after
 * the one before) that lasts HR_QUOTA_PERSIST_MS is a persisting violation. */
struct hr_bucket {
    uint32_t debt;       /* thousandths of a message owed; refused when a whole one would
                          * take it past burst */
    uint32_t last;       /* when debt was last paid down */
    uint32_t run_start;  /* the first refusal of the current run */
    uint32_t refused_at; /* the last refusal (0 with run_start 0: none yet) */
};

#define HR_QUOTA_PERSIST_MS 3000
#define HR_QUOTA_RUN_GAP_MS 1000
#define HR_RATE_MAX 1000000u /* rate and burst at most this (debt fits 32 bits) */

enum {
    HR_QUOTA_OK = 0,    /* taken */
    HR_QUOTA_OVER = 1,  /* refused: tell the client */
    HR_QUOTA_CLOSE = 2, /* refused, and refusals have lasted HR_QUOTA_PERSIST_MS: close */
};

/* Take one message from b at loop time now_ms: HR_QUOTA_OK, HR_QUOTA_OVER or HR_QUOTA_CLOSE.
 * A rate of 0 always gives HR_QUOTA_OK. */
int hr_bucket_take(struct hr_bucket *b, const struct hr_rate *r, uint64_t now_ms);
/* Whether b has paid all its debt by now (an entry of the table that can go). */
int hr_bucket_full(const struct hr_bucket *b, const struct hr_rate *r, uint64_t now_ms);
/* Milliseconds until one message would be taken (for Retry-After), at least 1. */
uint32_t hr_bucket_wait_ms(const struct hr_bucket *b, const struct hr_rate *r, uint64_t now_ms);

/* Buckets by key, shared by every worker of the process (a mutex), at most max entries: an
 * entry whose bucket has refilled is as good as none and goes first; at the cap the least
 * recently used goes (its debt is forgiven: whoever can rotate more keys than the cap gets
 * that much, and no memory). */
struct hr_quota_entry;
struct hr_quota {
    uv_mutex_t lock;
    struct hr_rate rate;
    uint32_t max, count;
    struct hr_quota_entry *table;     /* uthash by key */
    struct hr_quota_entry *lru, *mru; /* least / most recently used */
};

#define HR_QUOTA_KEY_MAX 200
#define HR_QUOTA_TABLE_DEFAULT 65536

/* rate.rate 0: hr_quota_take always answers HR_QUOTA_OK and keeps nothing. */
int hr_quota_init(struct hr_quota *q, const struct hr_rate *rate, uint32_t max_entries);
void hr_quota_free(struct hr_quota *q);
/* One message for key (keylen bytes, at most HR_QUOTA_KEY_MAX; longer keys are cut) at loop
 * time now_ms: HR_QUOTA_OK, HR_QUOTA_OVER (with *retry_ms, if given, the wait before one
 * would be taken), or HR_QUOTA_OK when out of memory (a quota never refuses for want of a
 * table entry). Thread-safe. */
int hr_quota_take(struct hr_quota *q, const char *key, size_t keylen, uint64_t now_ms,
                  uint32_t *retry_ms);
/* Entries held now (tests, and the log). */
uint32_t hr_quota_count(struct hr_quota *q);

/* Quota hits, logged at most once a second per kind with how many there were. */
enum hr_quota_kind {
    HR_QUOTA_MSG,        /* a client's message over --max-msg-rate: dropped */
    HR_QUOTA_MSG_CLOSED, /* a client closed: still over --max-msg-rate */
    HR_QUOTA_PUBLISH,    /* a publish over --publish-rate: refused */
    HR_QUOTA_CHANNELS,   /* a join over --max-channels: refused */
    HR_QUOTA_LP,         /* a long-poll over --max-lp-per-ip: refused */
    HR_QUOTA_KINDS
};
/* Count one hit; logs the kind's count when its last line is a second old. Thread-safe. */
void hr_quota_hit(enum hr_quota_kind kind, uint32_t limit, uint64_t now_ms);
/* Log the counts not logged yet once their kind's last line is a second old (the servers'
 * sweep timer calls it, so the last hits of a burst are told too). */
void hr_quota_log_flush(uint64_t now_ms);
/* Hits counted since start, by kind (tests). */
uint64_t hr_quota_hits(enum hr_quota_kind kind);

#endif
