/* quota.c - token buckets, the shared table of publishers' buckets, and the quota log. */
#include "quota.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "error.h"
#include "log.h"

/* ---- the bucket --------------------------------------------------------------------------- */

/* Pay the debt down by the time passed since b->last. */
static void refill(struct hr_bucket *b, const struct hr_rate *r, uint32_t now32)
{
    uint64_t paid = (uint64_t)(uint32_t)(now32 - b->last) * r->rate;
    b->debt = paid >= b->debt ? 0 : b->debt - (uint32_t)paid;
    b->last = now32;
}

static uint32_t cap_of(const struct hr_rate *r)
{
    uint32_t burst = r->burst ? r->burst : 1;
    return (burst > HR_RATE_MAX ? HR_RATE_MAX : burst) * 1000u;
}

int hr_bucket_take(struct hr_bucket *b, const struct hr_rate *r, uint64_t now_ms)
{
    if (!r->rate)
        return HR_QUOTA_OK;
    uint32_t now32 = (uint32_t)now_ms;
    refill(b, r, now32);
    if (b->debt + 1000u <= cap_of(r)) {
        b->debt += 1000u;
        return HR_QUOTA_OK;
    }
    /* refused: a run goes on while refusals come less than HR_QUOTA_RUN_GAP_MS apart */
    if (!b->refused_at || (uint32_t)(now32 - b->refused_at) > HR_QUOTA_RUN_GAP_MS)
        b->run_start = now32;
    b->refused_at = now32 ? now32 : 1;
    return (uint32_t)(now32 - b->run_start) >= HR_QUOTA_PERSIST_MS ? HR_QUOTA_CLOSE : HR_QUOTA_OVER;
}

int hr_bucket_full(const struct hr_bucket *b, const struct hr_rate *r, uint64_t now_ms)
{
    struct hr_bucket c = *b;
    if (!r->rate)
        return 1;
    refill(&c, r, (uint32_t)now_ms);
    return c.debt == 0;
}

uint32_t hr_bucket_wait_ms(const struct hr_bucket *b, const struct hr_rate *r, uint64_t now_ms)
{
    struct hr_bucket c = *b;
    if (!r->rate)
        return 1;
    refill(&c, r, (uint32_t)now_ms);
    uint32_t cap = cap_of(r);
    if (c.debt + 1000u <= cap)
        return 1;
    uint64_t need = (uint64_t)c.debt + 1000u - cap;
    uint64_t ms = (need + r->rate - 1) / r->rate;
    return ms < 1 ? 1 : ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* ---- the shared table --------------------------------------------------------------------- */

struct hr_quota_entry {
    UT_hash_handle hh;
    struct hr_quota_entry *prev, *next; /* toward the least / most recently used */
    struct hr_bucket b;
    uint64_t seen; /* the latest time given (workers' loop clocks differ by a little) */
    char key[];
};

int hr_quota_init(struct hr_quota *q, const struct hr_rate *rate, uint32_t max_entries)
{
    memset(q, 0, sizeof(*q));
    q->rate = *rate;
    q->max = max_entries ? max_entries : 1;
    return uv_mutex_init(&q->lock) == 0 ? 0 : HR_ENOMEM;
}

static void unlink_entry(struct hr_quota *q, struct hr_quota_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        q->lru = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        q->mru = e->prev;
    e->prev = e->next = NULL;
}

static void append_entry(struct hr_quota *q, struct hr_quota_entry *e)
{
    e->prev = q->mru;
    e->next = NULL;
    if (q->mru)
        q->mru->next = e;
    else
        q->lru = e;
    q->mru = e;
}

static void drop_entry(struct hr_quota *q, struct hr_quota_entry *e)
{
    unlink_entry(q, e);
    HASH_DEL(q->table, e);
    q->count--;
    free(e);
}

void hr_quota_free(struct hr_quota *q)
{
    while (q->lru)
        drop_entry(q, q->lru);
    uv_mutex_destroy(&q->lock);
}

int hr_quota_take(struct hr_quota *q, const char *key, size_t keylen, uint64_t now_ms,
                  uint32_t *retry_ms)
{
    if (!q || !q->rate.rate)
        return HR_QUOTA_OK;
    if (keylen > HR_QUOTA_KEY_MAX)
        keylen = HR_QUOTA_KEY_MAX;
    uv_mutex_lock(&q->lock);
    /* entries that have paid their debt are as good as none: a couple go at each take, so
     * idle ones do not wait for the cap */
    for (int i = 0; i < 2 && q->lru; i++) {
        uint64_t t = q->lru->seen > now_ms ? q->lru->seen : now_ms;
        if (!hr_bucket_full(&q->lru->b, &q->rate, t))
            break;
        drop_entry(q, q->lru);
    }
    struct hr_quota_entry *e;
    HASH_FIND(hh, q->table, key, keylen, e);
    if (e) {
        unlink_entry(q, e);
        append_entry(q, e);
    } else {
        if (q->count >= q->max)
            drop_entry(q, q->lru);
        if (!(e = calloc(1, sizeof(*e) + keylen + 1))) {
            uv_mutex_unlock(&q->lock);
            return HR_QUOTA_OK;
        }
        memcpy(e->key, key, keylen);
        HASH_ADD_KEYPTR(hh, q->table, e->key, keylen, e);
        append_entry(q, e);
        q->count++;
    }
    if (now_ms < e->seen)
        now_ms = e->seen;
    e->seen = now_ms;
    int rc = hr_bucket_take(&e->b, &q->rate, now_ms) == HR_QUOTA_OK ? HR_QUOTA_OK : HR_QUOTA_OVER;
    if (rc != HR_QUOTA_OK && retry_ms)
        *retry_ms = hr_bucket_wait_ms(&e->b, &q->rate, now_ms);
    uv_mutex_unlock(&q->lock);
    return rc;
}

uint32_t hr_quota_count(struct hr_quota *q)
{
    uv_mutex_lock(&q->lock);
    uint32_t n = q->count;
    uv_mutex_unlock(&q->lock);
    return n;
}

/* ---- the log ------------------------------------------------------------------------------ */

static uv_once_t log_once = UV_ONCE_INIT;
static uv_mutex_t log_lock;
static struct {
    uint64_t total;   /* since start */
    uint32_t pending; /* not logged yet */
    uint32_t limit;   /* at the last hit */
    uint64_t logged_ms;
} hits[HR_QUOTA_KINDS];

static void log_init(void)
{
    uv_mutex_init(&log_lock);
}

static void log_kind(int k)
{
    uint32_t n = hits[k].pending, l = hits[k].limit;
    const char *s = n == 1 ? "" : "s";
    switch (k) {
    case HR_QUOTA_MSG:
        hr_warn("quota: dropped %u message%s over --max-msg-rate %u/s", n, s, l);
        break;
    case HR_QUOTA_MSG_CLOSED:
        hr_warn("quota: closed %u connection%s still over --max-msg-rate %u/s", n, s, l);
        break;
    case HR_QUOTA_PUBLISH:
        hr_warn("quota: refused %u publish%s over --publish-rate %u/s", n, n == 1 ? "" : "es", l);
        break;
    case HR_QUOTA_CHANNELS:
        hr_warn("quota: refused %u join%s over --max-channels %u", n, s, l);
        break;
    case HR_QUOTA_LP:
        hr_warn("quota: refused %u long-poll%s over --max-lp-per-ip %u", n, s, l);
        break;
    default: break;
    }
}

static void flush_kind(int k, uint64_t now_ms)
{
    if (!hits[k].pending || (hits[k].logged_ms && now_ms - hits[k].logged_ms < 1000))
        return;
    log_kind(k);
    hits[k].pending = 0;
    hits[k].logged_ms = now_ms ? now_ms : 1;
}

void hr_quota_hit(enum hr_quota_kind kind, uint32_t limit, uint64_t now_ms)
{
    uv_once(&log_once, log_init);
    uv_mutex_lock(&log_lock);
    hits[kind].total++;
    hits[kind].pending++;
    hits[kind].limit = limit;
    /* another worker's clock may be a little behind the one that logged last */
    if (now_ms < hits[kind].logged_ms)
        now_ms = hits[kind].logged_ms;
    flush_kind(kind, now_ms);
    uv_mutex_unlock(&log_lock);
}

void hr_quota_log_flush(uint64_t now_ms)
{
    uv_once(&log_once, log_init);
    uv_mutex_lock(&log_lock);
    for (int k = 0; k < HR_QUOTA_KINDS; k++)
        if (now_ms >= hits[k].logged_ms)
            flush_kind(k, now_ms);
    uv_mutex_unlock(&log_lock);
}

uint64_t hr_quota_hits(enum hr_quota_kind kind)
{
    uv_once(&log_once, log_init);
    uv_mutex_lock(&log_lock);
    uint64_t n = hits[kind].total;
    uv_mutex_unlock(&log_lock);
    return n;
}
