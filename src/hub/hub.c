/* hub.c - channels, ids, bounded history and fan-out (see hub.h for the rules). */
#include "hub.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "core/array.h"
#include "core/budget.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"

int hr_channel_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > HR_CHANNEL_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == ':' || ch == '@' || ch == '-'))
            return 0;
    }
    return 1;
}

static const char *const policy_names[] = {"disconnect", "skip", "coalesce"};

int hr_policy_parse(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, policy_names[i]) == 0)
            return i;
    return HR_EINVAL;
}

const char *hr_policy_name(int policy)
{
    return policy >= 0 && policy < 3 ? policy_names[policy] : "?";
}

static int64_t wall_ms(void)
{
    return (int64_t)hr_wall_ms();
}

/* ---- the cache's bytes: every change goes through this pair, so that a global memory
 * budget can account for the cache in one place ---- */

static void cache_charge(struct hr_hub *hub, size_t n)
{
    hub->cache_bytes += n;
    hr_budget_charge(HR_MEM_HISTORY, n);
}

static void cache_release(struct hr_hub *hub, size_t n)
{
    n = n < hub->cache_bytes ? n : hub->cache_bytes;
    hub->cache_bytes -= n;
    hr_budget_release(HR_MEM_HISTORY, n);
}

static size_t buf_cost(const struct hr_buf *b)
{
    return b ? sizeof(*b) + b->cap : 0;
}

/* What a cached message holds: its payload and the encodings built so far. */
static size_t msg_cost(const struct hr_hub_msg *m)
{
    size_t n = buf_cost(m->data);
    for (int f = 0; f < HR_HUB_FORMATS; f++)
        n += buf_cost(m->enc[f]);
    return n;
}

static void msg_release(struct hr_hub_msg *m)
{
    if (m->hub)
        cache_release(m->hub, msg_cost(m));
    hr_buf_unref(m->data);
    for (int f = 0; f < HR_HUB_FORMATS; f++)
        hr_buf_unref(m->enc[f]);
    memset(m, 0, sizeof(*m));
}

static struct hr_hub_msg *ring_at(struct hr_channel *ch, uint32_t i)
{
    return &ch->ring[(ch->head + i) % ch->cap];
}

/* The oldest cached id (last_id + 1 when nothing is cached). */
static uint64_t first_cached(const struct hr_channel *ch)
{
    return ch->cached ? ch->ring[ch->head].id : ch->last_id + 1;
}

static void lru_unlink(struct hr_channel *ch)
{
    struct hr_hub *hub = ch->hub;
    if (ch->lru_prev)
        ch->lru_prev->lru_next = ch->lru_next;
    else if (hub->lru_head == ch)
        hub->lru_head = ch->lru_next;
    if (ch->lru_next)
        ch->lru_next->lru_prev = ch->lru_prev;
    else if (hub->lru_tail == ch)
        hub->lru_tail = ch->lru_prev;
    ch->lru_prev = ch->lru_next = NULL;
}

/* ch was used: it goes last in the eviction order. */
static void lru_touch(struct hr_channel *ch)
{
    struct hr_hub *hub = ch->hub;
    if (!ch->cached || hub->lru_tail == ch)
        return;
    lru_unlink(ch);
    ch->lru_prev = hub->lru_tail;
    if (hub->lru_tail)
        hub->lru_tail->lru_next = ch;
    else
        hub->lru_head = ch;
    hub->lru_tail = ch;
}

/* Resize the ring to cap slots (cap >= cached; 0 frees it). Slots are charged as they are
 * allocated, so a ring that once held many messages does not stay large for free. */
static int ring_resize(struct hr_channel *ch, uint32_t cap)
{
    struct hr_hub_msg *r = NULL;
    if (cap) {
        r = calloc(cap, sizeof(*r));
        if (!r)
            return HR_ENOMEM;
        for (uint32_t i = 0; i < ch->cached; i++)
            r[i] = *ring_at(ch, i);
    }
    cache_release(ch->hub, (size_t)ch->cap * sizeof(*r));
    cache_charge(ch->hub, (size_t)cap * sizeof(*r));
    free(ch->ring);
    ch->ring = r;
    ch->cap = cap;
    ch->head = 0;
    return 0;
}

/* Drop the oldest cached message. When the cache is the history (the memory store), or the
 * message is the oldest kept, the history loses it too. */
static void drop_oldest(struct hr_channel *ch, int from_history)
{
    struct hr_hub_msg *m = ring_at(ch, 0);
    if (from_history && m->id == ch->first_id) {
        ch->kept--;
        ch->kept_bytes -= m->data->len < ch->kept_bytes ? m->data->len : ch->kept_bytes;
    }
    msg_release(m);
    ch->head = (ch->head + 1) % ch->cap;
    ch->cached--;
    if (from_history) {
        ch->first_id = first_cached(ch);
        ch->first_time = ch->cached ? ring_at(ch, 0)->time_ms : 0;
        if (!ch->cached)
            ch->kept = ch->kept_bytes = 0;
    }
    if (!ch->cached) {
        lru_unlink(ch);
        ring_resize(ch, 0);
    } else if (ch->cap > 16 && ch->cached < ch->cap / 4) {
        ring_resize(ch, ch->cap / 2); /* on failure it simply stays larger */
    }
}

static int cache_is_history(const struct hr_hub *hub)
{
    return !hub->store || !hub->store->ops->read;
}

/* Over target: the least recently used channels lose their oldest cached messages. */
static void evict_to(struct hr_hub *hub, size_t target)
{
    if (hub->busy)
        return;
    int history = cache_is_history(hub);
    while (hub->cache_bytes > target && hub->lru_head) {
        struct hr_channel *ch = hub->lru_head;
        drop_oldest(ch, history);
        if (history && ch->hub->store && ch->hub->store->ops->trim)
            ch->hub->store->ops->trim(ch->hub->store, ch->name, ch->first_id);
    }
}

/* The cache keeps within --history-cache, and within half of the memory budget: the budget
 * counts the cache against publishes and never sheds it, so a cache allowed to fill the whole
 * budget would refuse every publish for good. */
static void evict(struct hr_hub *hub)
{
    size_t target = hub->limits.cache_bytes;
    uint64_t budget = hr_budget_max();
    if (budget && target > budget / 2)
        target = (size_t)(budget / 2);
    evict_to(hub, target);
}

void hr_hub_cache_shrink(struct hr_hub *hub, size_t target)
{
    evict_to(hub, target);
}

static int over_limits(const struct hr_channel *ch, int64_t now)
{
    const struct hr_hub_limits *l = &ch->hub->limits;
    return ch->kept > 0 &&
           (ch->kept > l->max_messages || ch->kept_bytes > l->max_bytes ||
            (l->max_age_ms && ch->first_time && now - ch->first_time > (int64_t)l->max_age_ms));
}

static void trim(struct hr_channel *ch, int64_t now);

/* The history's metadata as the store (or the sequencer, on a replica) has it; the cache loses
 * what it no longer holds. */
static void take_meta(struct hr_channel *ch, const struct hr_store_meta *m)
{
    ch->first_id = m->first_id > ch->last_id + 1 ? ch->last_id + 1 : m->first_id;
    ch->kept = m->count;
    ch->kept_bytes = m->bytes;
    ch->first_time = m->first_time;
    while (ch->cached && ring_at(ch, 0)->id < ch->first_id)
        drop_oldest(ch, 0);
}

/* The store trimmed by limits: its metadata is the truth (it is ordered with the appends, so
 * it counts exactly the ones acknowledged so far); the cache loses what the store dropped. */
static void trimmed_cb(void *ud, int status, const struct hr_store_meta *m)
{
    struct hr_channel *ch = ud;
    ch->trimming = 0;
    if (status < 0)
        return;
    take_meta(ch, m);
    if (ch->hub->committed)
        ch->hub->committed(ch->hub->relay_ud, ch, 0, 0, NULL);
    trim(ch, wall_ms());
}

/* Drop the oldest messages while the history is over a limit: at once from the cache when
 * it holds them (the store is told which ids go), else by the store, which alone knows their
 * sizes and times. */
static void trim(struct hr_channel *ch, int64_t now)
{
    struct hr_hub *hub = ch->hub;
    struct hr_store *st = hub->forward ? NULL : hub->store; /* a replica never writes it */
    uint64_t before = ch->first_id;
    while (over_limits(ch, now) && ch->cached && ring_at(ch, 0)->id == ch->first_id)
        drop_oldest(ch, 1);
    /* the sequencer tells the replicas of a trim that is not a commit's (those carry it) */
    if (ch->first_id != before && hub->committed && !hub->committing)
        hub->committed(hub->relay_ud, ch, 0, 0, NULL);
    if (ch->first_id != before && st && st->ops->trim)
        st->ops->trim(st, ch->name, ch->first_id);
    if (over_limits(ch, now) && !ch->trimming && st && st->ops->trim_limits) {
        const struct hr_hub_limits *l = &ch->hub->limits;
        if (st->ops->trim_limits(st, ch->name, l->max_messages, l->max_bytes,
                                 l->max_age_ms ? now - (int64_t)l->max_age_ms : 0, trimmed_cb,
                                 ch) == 0)
            ch->trimming = 1;
    }
}

/* Append a committed message to the cache (and the history's metadata). */
static int cache_push(struct hr_channel *ch, uint64_t id, int64_t time_ms, struct hr_buf *data)
{
    if (ch->cached == ch->cap && ring_resize(ch, ch->cap ? ch->cap * 2 : 1) < 0)
        return HR_ENOMEM;
    struct hr_hub_msg *m = ring_at(ch, ch->cached);
    memset(m, 0, sizeof(*m));
    m->id = id;
    m->time_ms = time_ms;
    m->data = hr_buf_ref(data);
    m->hub = ch->hub;
    cache_charge(ch->hub, msg_cost(m));
    ch->cached++;
    lru_touch(ch);
    if (!ch->kept) {
        ch->first_id = id;
        ch->first_time = time_ms;
    }
    ch->kept++;
    ch->kept_bytes += data->len;
    ch->last_id = id;
    return 0;
}

uint64_t hr_hub_first_id(const struct hr_channel *ch)
{
    return ch->kept ? ch->first_id : ch->last_id + 1;
}

void hr_hub_epoch(const struct hr_hub *hub, const char *name, size_t len,
                  char out[HR_EPOCH_LEN + 1])
{
    const char *se = hub->store ? hub->store->epoch : "";
    size_t slen = strnlen(se, sizeof hub->store->epoch);
    unsigned char in[sizeof hub->store->epoch + 1 + HR_CHANNEL_NAME_MAX], md[SHA256_DIGEST_LENGTH];
    if (len > HR_CHANNEL_NAME_MAX)
        len = HR_CHANNEL_NAME_MAX;
    memcpy(in, se, slen);
    in[slen] = 0;
    memcpy(in + slen + 1, name, len);
    SHA256(in, slen + 1 + len, md);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < HR_EPOCH_LEN / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[HR_EPOCH_LEN] = 0;
}

struct hr_channel *hr_hub_channel(struct hr_hub *hub, const char *name, size_t len, int create)
{
    if (!hr_channel_name_valid(name, len))
        return NULL;
    struct hr_channel *ch;
    HASH_FIND(hh, hub->channels, name, len, ch);
    if (ch) {
        /* history past its age goes when someone looks, not only when someone publishes */
        if (hub->limits.max_age_ms)
            trim(ch, wall_ms());
        return ch;
    }
    if (!create)
        return ch;
    /* the name lives in the same allocation: one block per channel */
    ch = calloc(1, sizeof(*ch) + len + 1);
    if (!ch)
        return NULL;
    memcpy(ch->name, name, len);
    ch->hub = hub;
    ch->next_id = 1;
    ch->first_id = 1;
    hr_hub_epoch(hub, name, len, ch->epoch);
    ch->policy = HR_POLICY_DISCONNECT;
    for (uint32_t i = 0; i < hub->limits.nrules; i++)
        if (fnmatch(hub->limits.rules[i].pattern, ch->name, 0) == 0) {
            ch->policy = hub->limits.rules[i].policy;
            break;
        }
    HASH_ADD_KEYPTR(hh, hub->channels, ch->name, len, ch);
    return ch;
}

static void load_meta_cb(void *ud, const char *channel, const struct hr_store_meta *m)
{
    struct hr_hub *hub = ud;
    struct hr_channel *ch = hr_hub_channel(hub, channel, strlen(channel), 1);
    if (!ch)
        return;
    ch->last_id = m->last_id;
    ch->next_id = m->last_id + 1;
    ch->kept = m->count;
    ch->kept_bytes = m->bytes;
    ch->first_id = m->count ? m->first_id : m->last_id + 1;
    ch->first_time = m->count ? m->first_time : 0;
}

int hr_hub_init(struct hr_hub *hub, uv_loop_t *loop, struct hr_store *store,
                const struct hr_hub_limits *limits)
{
    memset(hub, 0, sizeof(*hub));
    hub->loop = loop;
    hub->store = store;
    hub->limits = *limits;
    if (!hub->limits.cache_bytes)
        hub->limits.cache_bytes = HR_HUB_CACHE_DEFAULT;
    /* only the metadata: the cache fills from publishes */
    if (store && store->ops->meta) {
        int rc = store->ops->meta(store, load_meta_cb, hub);
        if (rc < 0)
            return rc;
        /* what was kept may be more than the limits allow now */
        struct hr_channel *ch, *tmp;
        int64_t now = wall_ms();
        HASH_ITER(hh, hub->channels, ch, tmp)
        trim(ch, now);
    }
    return 0;
}

static void channel_free(struct hr_channel *ch)
{
    while (ch->subs) {
        struct hr_sub *sub = ch->subs;
        hr_hub_unsubscribe(sub);
        sub->ch = NULL; /* its owner must not find the channel afterwards */
    }
    for (uint32_t i = 0; i < ch->cached; i++)
        msg_release(ring_at(ch, i));
    ch->cached = 0;
    lru_unlink(ch);
    ring_resize(ch, 0);
    free(ch);
}

/* A store read under way, or a wait for the sequencer (hr_hub_sync). It outlives a cancel
 * (and the hub): the store's answer, or the owner's hr_hub_synced, frees it. */
struct hr_hub_read {
    struct hr_hub_read *prev, *next;
    struct hr_hub *hub;
    struct hr_channel *ch;
    uint64_t since;
    uint32_t max;
    hr_hub_page_cb cb; /* NULL once cancelled */
    void *ud;
};

void hr_hub_forget_unused(struct hr_channel *ch)
{
    /* next_id > 1: a publish was taken (in flight, or its id is spent) */
    if (!ch || ch->subs || ch->kept || ch->cached || ch->last_id || ch->next_id != 1)
        return;
    for (struct hr_hub_read *r = ch->hub->reads; r; r = r->next)
        if (r->ch == ch)
            return; /* a reader waits for it (hr_hub_sync) */
    HASH_DEL(ch->hub->channels, ch);
    channel_free(ch);
}

/* ---- reads ---- */

static void read_unlink(struct hr_hub_read *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else if (r->hub->reads == r)
        r->hub->reads = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

void hr_hub_read_cancel(struct hr_hub_read *r)
{
    if (!r || !r->cb)
        return;
    read_unlink(r);
    r->cb = NULL;
}

void hr_hub_free(struct hr_hub *hub)
{
    while (hub->reads)
        hr_hub_read_cancel(hub->reads);
    struct hr_channel *ch, *tmp;
    HASH_ITER(hh, hub->channels, ch, tmp)
    {
        HASH_DEL(hub->channels, ch);
        channel_free(ch);
    }
}

int hr_hub_cached(const struct hr_channel *ch, uint64_t since)
{
    uint64_t fc = first_cached(ch);
    /* up to date; the cache is the history; the cache holds what comes after since; or the
     * cache holds all that is kept (a reader from before it is told of a gap) */
    return since >= ch->last_id || cache_is_history(ch->hub) || since + 1 >= fc ||
           fc <= hr_hub_first_id(ch);
}

static void page_done(struct hr_hub *hub)
{
    if (--hub->busy == 0)
        evict(hub);
}

/* A page from the store: its rows become messages for the callback, then go. Rows the loop
 * has not acknowledged yet (committed a moment ago) are left out: the reader gets them live. */
static void store_page_cb(void *ud, const struct hr_store_page *sp)
{
    struct hr_hub_read *r = ud;
    if (!r->cb) {
        free(r);
        return;
    }
    read_unlink(r);
    struct hr_channel *ch = r->ch;
    struct hr_hub *hub = r->hub;
    struct hr_hub_msg *msgs = sp->n ? calloc(sp->n, sizeof(*msgs)) : NULL;
    struct hr_hub_msg **ptrs = sp->n ? calloc(sp->n, sizeof(*ptrs)) : NULL;
    struct hr_hub_page pg = {.status = sp->status, .m = ptrs};
    if (sp->n && (!msgs || !ptrs))
        pg.status = HR_ENOMEM;
    for (uint32_t i = 0; pg.status == 0 && i < sp->n && pg.n < r->max; i++) {
        const struct hr_store_row *row = &sp->rows[i];
        if (row->id <= r->since || row->id > ch->last_id)
            continue;
        struct hr_hub_msg *m = &msgs[pg.n];
        m->id = row->id;
        m->time_ms = row->time_ms;
        if (!(m->data = hr_buf_from(row->data, row->len))) {
            pg.status = HR_ENOMEM;
            break;
        }
        ptrs[pg.n++] = m;
    }
    uint64_t first = sp->first ? sp->first : ch->last_id + 1;
    if (first < hr_hub_first_id(ch))
        first = hr_hub_first_id(ch);
    /* nothing found after since though the loop knows of later messages: they are gone from
     * the store (trimmed meanwhile), so the reader is sent on to what is cached */
    if (pg.status == 0 && pg.n == 0 && r->since < ch->last_id && first <= r->since + 1)
        first = first_cached(ch);
    pg.first = first;
    if (pg.status < 0)
        pg.n = 0;
    hr_hub_page_cb cb = r->cb;
    void *cud = r->ud;
    free(r);
    hub->busy++;
    cb(cud, ch, &pg);
    for (uint32_t i = 0; i < sp->n && msgs; i++)
        msg_release(&msgs[i]);
    free(msgs);
    free(ptrs);
    page_done(hub);
}

static struct hr_hub_read *read_new(struct hr_hub *hub, struct hr_channel *ch, hr_hub_page_cb cb,
                                    void *ud)
{
    struct hr_hub_read *r = calloc(1, sizeof(*r));
    if (r)
        *r = (struct hr_hub_read){.hub = hub, .ch = ch, .cb = cb, .ud = ud};
    return r;
}

/* r is under way: hr_hub_free cancels it if it is still then. */
static void read_link(struct hr_hub_read *r)
{
    struct hr_hub *hub = r->hub;
    r->next = hub->reads;
    if (hub->reads)
        hub->reads->prev = r;
    hub->reads = r;
}

int hr_hub_sync(struct hr_hub *hub, struct hr_channel *ch, hr_hub_page_cb cb, void *ud,
                struct hr_hub_read **req)
{
    *req = NULL;
    if (!hub->sync)
        return 0;
    struct hr_hub_read *r = read_new(hub, ch, cb, ud);
    if (!r)
        return HR_ENOMEM;
    int rc = hub->sync(hub->relay_ud, r);
    if (rc < 0) {
        free(r);
        return rc;
    }
    read_link(r); /* its channel is kept meanwhile (hr_hub_forget_unused) */
    *req = r;
    return 1;
}

void hr_hub_synced(struct hr_hub_read *r, int here)
{
    if (!r->cb) {
        free(r);
        return;
    }
    if (!here)
        return; /* not cancelled, so its hub is alive and freeing r is its owner's */
    read_unlink(r);
    hr_hub_page_cb cb = r->cb;
    void *ud = r->ud;
    struct hr_channel *ch = r->ch;
    free(r);
    struct hr_hub_page pg = {.first = ch ? hr_hub_first_id(ch) : 0};
    cb(ud, ch, &pg);
}

int hr_hub_read(struct hr_channel *ch, uint64_t since, uint32_t max, hr_hub_page_cb cb, void *ud,
                struct hr_hub_read **req)
{
    struct hr_hub *hub = ch->hub;
    if (req)
        *req = NULL;
    if (max == 0 || max > HR_HUB_PAGE_MAX)
        max = HR_HUB_PAGE_MAX;
    if (!hr_hub_cached(ch, since)) {
        struct hr_hub_read *r = read_new(hub, ch, cb, ud);
        if (!r)
            return HR_ENOMEM;
        r->since = since;
        r->max = max;
        int rc = hub->store->ops->read(hub->store, ch->name, since, max, HR_HUB_PAGE_BYTES,
                                       store_page_cb, r);
        if (rc < 0) {
            free(r);
            return rc;
        }
        read_link(r);
        if (req)
            *req = r;
        return 1;
    }
    /* from the cache: ids grow along the ring, so the first one after since is found by
     * bisection (a reader catching up asks page after page) */
    struct hr_hub_msg *ptrs[HR_HUB_PAGE_MAX];
    struct hr_hub_page pg = {.first = hr_hub_first_id(ch), .m = ptrs};
    uint32_t lo = 0, hi = ch->cached;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ring_at(ch, mid)->id > since)
            hi = mid;
        else
            lo = mid + 1;
    }
    for (uint32_t i = lo; i < ch->cached && pg.n < max; i++)
        ptrs[pg.n++] = ring_at(ch, i);
    if (pg.n)
        lru_touch(ch);
    hub->busy++;
    cb(ud, ch, &pg);
    page_done(hub);
    return 0;
}

int hr_hub_span_add(struct hr_hub_span *sp, const struct hr_hub_page *pg)
{
    if (!sp->n && !sp->first)
        sp->first = pg->first;
    if (HR_ARRAY_RESERVE(sp->m, sp->cap, (size_t)sp->n + pg->n, 16) < 0)
        return HR_ENOMEM;
    for (uint32_t i = 0; i < pg->n; i++) {
        struct hr_hub_msg *m = &sp->m[sp->n++];
        memset(m, 0, sizeof(*m));
        m->id = pg->m[i]->id;
        m->time_ms = pg->m[i]->time_ms;
        m->data = hr_buf_ref(pg->m[i]->data);
        sp->bytes += m->data->len;
    }
    return 0;
}

void hr_hub_span_free(struct hr_hub_span *sp)
{
    for (uint32_t i = 0; i < sp->n; i++)
        msg_release(&sp->m[i]);
    free(sp->m);
    memset(sp, 0, sizeof(*sp));
}

/* ---- publishing ---- */

/* A publish between its append and its commit. */
struct pending {
    struct hr_channel *ch;
    uint64_t id;
    int64_t time_ms;
    uint64_t t0; /* uv_hrtime at publish: the latency histogram; 0: timed elsewhere */
    struct hr_buf *data;
    hr_hub_ack_cb ack;
    void *ud;
    int shown; /* 1: cached and delivered; -1: could not be cached (out of memory) */
};

static void fan_out(struct hr_channel *ch, struct hr_hub_msg *m)
{
    ch->hub->busy++;
    for (struct hr_sub *s = ch->subs, *next; s; s = next) {
        next = s->next;
        if (s->ops->deliver(s, ch, m) < 0)
            hr_hub_unsubscribe(s);
    }
    ch->hub->busy--;
}

/* The message is in the store: into the cache, out to the subscribers and the other
 * workers. */
static void show(struct pending *p)
{
    struct hr_channel *ch = p->ch;
    struct hr_hub *hub = ch->hub;
    hub->unshown--;
    if (cache_push(ch, p->id, p->time_ms, p->data) < 0) {
        p->shown = -1;
        return;
    }
    p->shown = 1;
    hub->published++;
    fan_out(ch, ring_at(ch, ch->cached - 1));
    hub->committing = 1;
    trim(ch, p->time_ms);
    hub->committing = 0;
    if (hub->committed)
        hub->committed(hub->relay_ud, ch, p->id, p->time_ms, p->data);
    evict(hub);
    HR_METRIC_INC(msgs_in);
}

/* The store shows a message once it is committed (HR_STORE_SHOWN, --store-sync full: before
 * its fsync) and acknowledges it once durable: subscribers get it without waiting for the
 * disk, the publisher's acknowledgement waits for it. */
static void committed_cb(void *ud, int status)
{
    struct pending *p = ud;
    if (status == HR_STORE_SHOWN) {
        show(p);
        return;
    }
    if (!p->shown) {
        if (status == 0)
            show(p);
        else
            p->ch->hub->unshown--;
    }
    if (status == 0 && p->shown > 0) {
        if (p->t0)
            hr_metrics_publish_latency(uv_hrtime() - p->t0);
        if (p->ack)
            p->ack(p->ud, 0, p->id);
    } else if (p->ack) {
        /* failed, or shown and then not made durable (the fsync failed): the publisher is
         * told, though subscribers may have it */
        p->ack(p->ud, status ? status : HR_ENOMEM, 0);
    }
    hr_budget_release(HR_MEM_PUBLISH, p->data->len);
    hr_buf_unref(p->data);
    free(p);
}

int hr_hub_publish_buf(struct hr_hub *hub, struct hr_channel *ch, struct hr_buf *data,
                       hr_hub_ack_cb ack, void *ud)
{
    if (hub->forward)
        return hub->forward(hub->relay_ud, ch, data, ack, ud);
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return HR_ENOMEM;
    p->data = hr_buf_ref(data);
    p->ch = ch;
    p->id = ch->next_id++;
    p->time_ms = wall_ms();
    p->t0 = hub->untimed ? 0 : uv_hrtime();
    p->ack = ack;
    p->ud = ud;
    /* the payload waiting for its commit counts in the memory budget (core/budget.h), once:
     * the store's reference to the same buffer is not charged again */
    hr_budget_charge(HR_MEM_PUBLISH, data->len);
    int rc =
        hub->store->ops->append(hub->store, ch->name, p->id, p->time_ms, data, committed_cb, p);
    if (rc == 0)
        hub->unshown++;
    if (rc < 0) {
        /* nothing was stored: the id stays unused, which readers see as no gap since no one
         * could have seen it */
        ch->next_id--;
        hr_budget_release(HR_MEM_PUBLISH, data->len);
        hr_buf_unref(p->data);
        free(p);
    }
    return rc;
}

int hr_hub_publish(struct hr_hub *hub, struct hr_channel *ch, const void *data, size_t len,
                   hr_hub_ack_cb ack, void *ud)
{
    struct hr_buf *b = hr_buf_from(data, len);
    if (!b)
        return HR_ENOMEM;
    int rc = hr_hub_publish_buf(hub, ch, b, ack, ud);
    hr_buf_unref(b);
    return rc;
}

int hr_hub_apply(struct hr_hub *hub, const char *name, size_t len, uint64_t id, int64_t time_ms,
                 struct hr_buf *data, const struct hr_store_meta *meta)
{
    struct hr_channel *ch = hr_hub_channel(hub, name, len, !!data);
    if (!ch)
        return data ? HR_ENOMEM : 0;
    if (!data) {
        take_meta(ch, meta); /* the sequencer trimmed (by the store, or by age) */
        return 0;
    }
    if (id <= ch->last_id)
        return 0;
    /* the cache holds a contiguous tail: a message that cannot join it empties it */
    if (ch->cached && ring_at(ch, ch->cached - 1)->id != id - 1)
        while (ch->cached)
            drop_oldest(ch, 0);
    int rc = cache_push(ch, id, time_ms, data);
    ch->last_id = id;
    ch->next_id = id + 1;
    hub->published++;
    if (rc == 0)
        fan_out(ch, ring_at(ch, ch->cached - 1));
    take_meta(ch, meta);
    evict(hub);
    return rc;
}

/* The channel's subscriber count for one wire format, and the hubs' census (workers). */
static void count_subs(struct hr_channel *ch, int fmt, int32_t delta)
{
    ch->nsubs[fmt] += (uint32_t)delta;
    if (ch->hub->census && delta)
        ch->hub->census(ch->hub->relay_ud, ch->name, fmt, delta);
}

void hr_hub_subscribers(struct hr_hub *hub, struct hr_channel *ch, const char *name, size_t len,
                        uint32_t out[HR_HUB_FORMATS])
{
    if (hub->count)
        hub->count(hub->relay_ud, name, len, out);
    else
        for (int f = 0; f < HR_HUB_FORMATS; f++)
            out[f] = ch ? ch->nsubs[f] : 0;
}

void hr_hub_subscribe(struct hr_channel *ch, struct hr_sub *sub)
{
    sub->ch = ch;
    sub->prev = NULL;
    sub->next = ch->subs;
    if (ch->subs)
        ch->subs->prev = sub;
    ch->subs = sub;
    sub->readers = 1;
    sub->subscribed = 1;
    count_subs(ch, sub->fmt, 1);
}

void hr_sub_owe(struct hr_sub *sub, struct hr_buf *enc, uint64_t id)
{
    if (!enc)
        return;
    hr_buf_unref(sub->owed);
    sub->owed = hr_buf_ref(enc);
    sub->lag = id;
}

void hr_hub_readers(struct hr_sub *sub, uint32_t n)
{
    if (!sub->subscribed)
        return;
    count_subs(sub->ch, sub->fmt, (int32_t)n - (int32_t)sub->readers);
    sub->readers = n;
}

void hr_hub_unsubscribe(struct hr_sub *sub)
{
    struct hr_channel *ch = sub->ch;
    if (!sub->subscribed)
        return;
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        ch->subs = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    count_subs(ch, sub->fmt, -(int32_t)sub->readers);
    sub->readers = 0;
    hr_buf_unref(sub->owed);
    sub->owed = NULL;
    sub->subscribed = 0;
    sub->prev = sub->next = NULL;
}

struct hr_buf *hr_hub_encoding(struct hr_hub_msg *m, int fmt,
                               struct hr_buf *(*make)(const struct hr_hub_msg *m, void *ud),
                               void *ud)
{
    if (!m->enc[fmt]) {
        m->enc[fmt] = make(m, ud);
        /* charged now, evicted (if over the bound) once no page or fan-out is being handed
         * out: at the next publish or read */
        if (m->enc[fmt] && m->hub)
            cache_charge(m->hub, buf_cost(m->enc[fmt]));
    }
    return m->enc[fmt];
}
