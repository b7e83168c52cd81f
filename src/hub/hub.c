/* hub.c - channels, ids, bounded history and fan-out (see hub.h for the rules). */
#include "hub.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "../core/budget.h"
#include "../core/error.h"
#include "../core/log.h"

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
    return -1;
}

const char *hr_policy_name(int policy)
{
    return policy >= 0 && policy < 3 ? policy_names[policy] : "?";
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void msg_release(struct hr_hub_msg *m)
{
    hr_buf_unref(m->data);
    for (int f = 0; f < HR_FMT_COUNT; f++)
        hr_buf_unref(m->enc[f]);
    memset(m, 0, sizeof(*m));
}

static struct hr_hub_msg *ring_at(struct hr_channel *ch, uint32_t i)
{
    return &ch->ring[(ch->head + i) % ch->cap];
}

/* Drop the oldest messages while the history is over a limit. */
static void trim(struct hr_channel *ch, int64_t now)
{
    const struct hr_hub_limits *l = &ch->hub->limits;
    uint64_t before = hr_hub_first_id(ch);
    while (ch->count > 0) {
        struct hr_hub_msg *m = ring_at(ch, 0);
        int over = ch->count > l->max_messages || ch->bytes > l->max_bytes ||
                   (l->max_age_ms && now - m->time_ms > (int64_t)l->max_age_ms);
        if (!over)
            break;
        ch->bytes -= m->data->len;
        msg_release(m);
        ch->head = (ch->head + 1) % ch->cap;
        ch->count--;
    }
    uint64_t after = hr_hub_first_id(ch);
    if (after != before && ch->hub->store && ch->hub->store->ops->trim)
        ch->hub->store->ops->trim(ch->hub->store, ch->name, after);
}

/* Append a committed message to the history. */
static int ring_push(struct hr_channel *ch, uint64_t id, int64_t time_ms, struct hr_buf *data)
{
    if (ch->count == ch->cap) {
        uint32_t cap = ch->cap ? ch->cap * 2 : 16;
        struct hr_hub_msg *r = calloc(cap, sizeof(*r));
        if (!r)
            return HR_ENOMEM;
        for (uint32_t i = 0; i < ch->count; i++)
            r[i] = *ring_at(ch, i);
        free(ch->ring);
        ch->ring = r;
        ch->cap = cap;
        ch->head = 0;
    }
    struct hr_hub_msg *m = ring_at(ch, ch->count);
    memset(m, 0, sizeof(*m));
    m->id = id;
    m->time_ms = time_ms;
    m->data = hr_buf_ref(data);
    ch->count++;
    ch->bytes += data->len;
    ch->last_id = id;
    return 0;
}

uint64_t hr_hub_first_id(const struct hr_channel *ch)
{
    return ch->count ? ch->ring[ch->head].id : ch->last_id + 1;
}

void hr_hub_epoch(const struct hr_hub *hub, const char *name, size_t len, char out[HR_EPOCH_LEN + 1])
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
    ch = calloc(1, sizeof(*ch));
    if (!ch || !(ch->name = strndup(name, len))) {
        free(ch);
        return NULL;
    }
    ch->hub = hub;
    ch->next_id = 1;
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

static void load_one(void *ud, const char *channel, uint64_t id, int64_t time_ms, const void *data,
                     size_t len)
{
    struct hr_hub *hub = ud;
    struct hr_channel *ch = hr_hub_channel(hub, channel, strlen(channel), 1);
    struct hr_buf *b = hr_buf_from(data, len);
    if (ch && b && id > ch->last_id && ring_push(ch, id, time_ms, b) == 0)
        ch->next_id = id + 1;
    hr_buf_unref(b);
}

int hr_hub_init(struct hr_hub *hub, uv_loop_t *loop, struct hr_store *store,
                const struct hr_hub_limits *limits)
{
    memset(hub, 0, sizeof(*hub));
    hub->loop = loop;
    hub->store = store;
    hub->limits = *limits;
    if (store && store->ops->load) {
        int rc = store->ops->load(store, load_one, hub);
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
    while (ch->subs)
        hr_hub_unsubscribe(ch->subs);
    for (uint32_t i = 0; i < ch->count; i++)
        msg_release(ring_at(ch, i));
    free(ch->ring);
    free(ch->name);
    free(ch);
}

void hr_hub_forget_unused(struct hr_channel *ch)
{
    /* next_id > 1: a publish was taken (in flight, or its id is spent) */
    if (!ch || ch->subs || ch->count || ch->last_id || ch->next_id != 1)
        return;
    HASH_DEL(ch->hub->channels, ch);
    channel_free(ch);
}

void hr_hub_free(struct hr_hub *hub)
{
    struct hr_channel *ch, *tmp;
    HASH_ITER(hh, hub->channels, ch, tmp) {
        HASH_DEL(hub->channels, ch);
        channel_free(ch);
    }
}

/* A publish between its append and its commit. */
struct pending {
    struct hr_channel *ch;
    uint64_t id;
    int64_t time_ms;
    struct hr_buf *data;
    hr_hub_ack_cb ack;
    void *ud;
};

static void fan_out(struct hr_channel *ch, struct hr_hub_msg *m)
{
    for (struct hr_sub *s = ch->subs, *next; s; s = next) {
        next = s->next;
        if (s->ops->deliver(s, ch, m) < 0)
            hr_hub_unsubscribe(s);
    }
}

static void committed(void *ud, int status)
{
    struct pending *p = ud;
    struct hr_channel *ch = p->ch;
    if (status == 0 && ring_push(ch, p->id, p->time_ms, p->data) == 0) {
        ch->hub->published++;
        fan_out(ch, ring_at(ch, ch->count - 1));
        trim(ch, p->time_ms);
        if (p->ack)
            p->ack(p->ud, 0, p->id);
    } else if (p->ack) {
        p->ack(p->ud, status ? status : HR_ENOMEM, 0);
    }
    hr_budget_release(HR_MEM_PUBLISH, p->data->len);
    hr_buf_unref(p->data);
    free(p);
}

int hr_hub_publish(struct hr_hub *hub, struct hr_channel *ch, const void *data, size_t len,
                   hr_hub_ack_cb ack, void *ud)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p || !(p->data = hr_buf_from(data, len))) {
        free(p);
        return HR_ENOMEM;
    }
    p->ch = ch;
    p->id = ch->next_id++;
    p->time_ms = wall_ms();
    p->ack = ack;
    p->ud = ud;
    /* the copy waiting for its commit counts in the memory budget (core/budget.h) */
    hr_budget_charge(HR_MEM_PUBLISH, len);
    int rc = hub->store->ops->append(hub->store, ch->name, p->id, p->time_ms, data, len, committed, p);
    if (rc < 0) {
        /* nothing was stored: the id stays unused, which readers see as no gap since no one
         * could have seen it */
        ch->next_id--;
        hr_budget_release(HR_MEM_PUBLISH, len);
        hr_buf_unref(p->data);
        free(p);
    }
    return rc;
}

int hr_hub_since(struct hr_channel *ch, uint64_t since, hr_hub_each_cb fn, void *ud)
{
    uint64_t first = hr_hub_first_id(ch);
    int gap = since + 1 < first;
    /* ids grow along the ring: find the first one after since by bisection (a reader
     * catching up asks page after page) */
    uint32_t lo = 0, hi = ch->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ring_at(ch, mid)->id > since)
            hi = mid;
        else
            lo = mid + 1;
    }
    for (uint32_t i = lo; i < ch->count; i++)
        if (fn(ud, ring_at(ch, i)))
            break;
    return gap;
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
    ch->nsubs[sub->fmt]++;
}

void hr_sub_owe(struct hr_sub *sub, struct hr_buf *enc, uint64_t id)
{
    if (!enc)
        return;
    hr_buf_unref(sub->owed);
    sub->owed = hr_buf_ref(enc);
    sub->owed_id = id;
}

void hr_hub_readers(struct hr_sub *sub, uint32_t n)
{
    if (!sub->ch)
        return;
    sub->ch->nsubs[sub->fmt] = sub->ch->nsubs[sub->fmt] - sub->readers + n;
    sub->readers = n;
}

void hr_hub_unsubscribe(struct hr_sub *sub)
{
    struct hr_channel *ch = sub->ch;
    if (!ch)
        return;
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        ch->subs = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    ch->nsubs[sub->fmt] -= sub->readers;
    sub->readers = 0;
    hr_buf_unref(sub->owed);
    sub->owed = NULL;
    sub->ch = NULL;
    sub->prev = sub->next = NULL;
}

struct hr_buf *hr_hub_encoding(struct hr_hub_msg *m, int fmt,
                               struct hr_buf *(*make)(const struct hr_hub_msg *m, void *ud), void *ud)
{
    if (!m->enc[fmt])
        m->enc[fmt] = make(m, ud);
    return m->enc[fmt];
}
