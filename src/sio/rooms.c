/* rooms.c - rooms of a namespace, and the bridge to channels: a room of "/" named like a
 * channel receives its messages, replays what a socket missed, and publishes to it. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "core/budget.h"
#include "core/error.h"
#include "core/json.h"
#include "core/quota.h"
#include "internal.h"
#include "recovery.h"

/* ---- channels ----------------------------------------------------------------------------- */

struct publish_req {
    herald_publish_cb cb;
    void *ud;
};

static void publish_done(void *ud, int status, uint64_t id)
{
    struct publish_req *p = ud;
    if (p->cb)
        p->cb(status, id, p->ud);
    free(p);
}

/* json is one valid JSON value (checked by the caller). */
static int publish(herald_io *io, const char *channel, const char *json, size_t len,
                   herald_publish_cb cb, void *ud)
{
    if (!hr_channel_name_valid(channel, strlen(channel)))
        return HR_EINVAL;
    if (!hr_budget_admit(len)) {
        hr_budget_refused(len);
        return HR_EBUSY; /* over the memory budget: nothing is stored, nothing acknowledged */
    }
    struct hr_channel *ch = hr_hub_channel(io->hub, channel, strlen(channel), 1);
    if (!ch)
        return HR_ENOMEM;
    struct publish_req *p = malloc(sizeof(*p));
    if (!p)
        return HR_ENOMEM;
    p->cb = cb;
    p->ud = ud;
    int rc = hr_hub_publish(io->hub, ch, json, len, publish_done, p);
    if (rc < 0)
        free(p);
    return rc;
}

int herald_publish_raw(herald_io *io, const char *channel, const char *json, size_t len,
                       herald_publish_cb cb, void *ud)
{
    if (!hr_json_check(json, len))
        return HR_EINVAL;
    return publish(io, channel, json, len, cb, ud);
}

int herald_publish_arg(herald_io *io, const char *channel, const herald_args *a,
                       herald_publish_cb cb, void *ud)
{
    /* the packet decoder proved the arguments valid JSON: one argument is one JSON value */
    if (a->nbins || herald_args_count(a) != 1)
        return HR_EINVAL;
    return publish(io, channel, a->raw, a->raw_len, cb, ud);
}

int herald_publish(herald_io *io, const char *channel, json_t *value, herald_publish_cb cb,
                   void *ud)
{
    size_t len;
    char *raw = hr_sio_args_text(value, &len);
    json_decref(value);
    if (!raw)
        return HR_ENOMEM;
    int rc = herald_publish_raw(io, channel, raw, len, cb, ud);
    free(raw);
    return rc;
}

/* s's membership of room (not its own room), or NULL. */
static struct hr_sio_member *membership(const herald_socket *s, const char *room)
{
    for (struct hr_sio_member *m = s->rooms; m; m = m->next_room)
        if (strcmp(m->room->name, room) == 0)
            return m;
    return NULL;
}

static int in_room(const herald_socket *s, const char *room)
{
    return strcmp(room, s->id) == 0 ? s->own_room : membership(s, room) != NULL;
}

/* ---- rooms -------------------------------------------------------------------------------- */

/* Rooms and channels are one space: a room of the main namespace whose name is a channel
 * name receives that channel's messages as "message" events (see README, "Channels"); with
 * recovery on, a message's offset is its channel cursor, the one every transport resumes
 * from. Each socket of such a room reads the channel through a subscriber stream of its own
 * (chan/stream.h), so the channel's slow-consumer policy holds per socket, as for SSE and
 * WebSocket readers; the message is encoded once, and that Engine.IO frame is shared by every
 * socket's queue. The room's own subscriber only marks, for recovery, where each message
 * fell among the other packets kept. */
static int room_deliver(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m)
{
    struct hr_sio_room *r = (struct hr_sio_room *)sub;
    if (r->nsp->io->opts.recovery_window_ms) {
        char cursor[HR_EPOCH_LEN + 24];
        snprintf(cursor, sizeof cursor, "%s:%llu", ch->epoch, (unsigned long long)m->id);
        hr_sio_keep(r->nsp, r->name, NULL, "message", NULL, 0, NULL, 0, cursor, m->id);
    }
    return 0;
}

/* ---- a socket's stream of a channel room ---- */

static struct hr_sio_member *member_of(const struct hr_chan_stream *st)
{
    return (struct hr_sio_member *)((char *)st - offsetof(struct hr_sio_member, st));
}

static struct hr_eio_session *session_of(const struct hr_chan_stream *st)
{
    herald_socket *s = member_of(st)->s;
    return s->client ? s->client->eio : NULL;
}

/* 42["message",<data>,"<cursor>"] (the cursor as the recovery offset while recovery is on;
 * byte for byte what an emit of it would be) as one Engine.IO text frame: the payload is
 * copied once, here, and shared by every socket (and every replay) reading the channel. */
static struct hr_buf *make_packet(const struct hr_hub_msg *m, void *ud)
{
    struct hr_chan_stream *st = ud;
    static const char head[] = "2[\"message\",";
    char off[HR_EPOCH_LEN + 32];
    int n = 0;
    if (member_of(st)->s->nsp->io->opts.recovery_window_ms)
        n = snprintf(off, sizeof off, ",\"%s:%llu\"", st->sub.ch->epoch, (unsigned long long)m->id);
    size_t len = sizeof head - 1 + m->data->len + (size_t)n + 1;
    char *p;
    struct hr_buf *f = hr_eio_text_frame(len, &p);
    if (!f)
        return NULL;
    memcpy(p, head, sizeof head - 1);
    p += sizeof head - 1;
    memcpy(p, m->data->data, m->data->len);
    p += m->data->len;
    memcpy(p, off, (size_t)n);
    p[n] = ']';
    return f;
}

static struct hr_buf *stream_encode(struct hr_chan_stream *st, struct hr_hub_msg *m)
{
    return hr_hub_encoding(m, HR_FMT_SIO, make_packet, st);
}

static int stream_write(struct hr_chan_stream *st, struct hr_buf *enc, uint64_t id)
{
    herald_socket *s = member_of(st)->s;
    struct hr_eio_session *es = session_of(st);
    if (!es)
        return HR_ECLOSED;
    if (!s->connected)
        return 0; /* joined before its CONNECT was answered (middleware): as for a broadcast */
    /* "disconnect": Engine.IO's cap, as for any packet; skip and coalesce looked at over()
     * first, so the output stays within about --max-queued and a message */
    return st->sub.ch->policy == HR_POLICY_DISCONNECT ? hr_eio_send_frame(es, enc)
                                                      : hr_eio_queue_frame(es, enc);
}

/* "herald:gap" {"channel","reason","first"[,"missed":[a,b]]}: history after the socket's
 * cursor is gone, a replay was cut (reason "replay limit"), or the skip policy dropped
 * messages while the socket was behind ("slow"). */
static void stream_write_gap(struct hr_chan_stream *st, const char *reason, uint64_t first,
                             uint64_t missed_from, uint64_t missed_to)
{
    char g[HR_CHANNEL_NAME_MAX + 160];
    int n =
        missed_from
            ? snprintf(
                  g, sizeof g,
                  "{\"channel\":\"%s\",\"reason\":\"%s\",\"first\":%llu,\"missed\":[%llu,%llu]}",
                  st->sub.ch->name, reason, (unsigned long long)first,
                  (unsigned long long)missed_from, (unsigned long long)missed_to)
            : snprintf(g, sizeof g, "{\"channel\":\"%s\",\"reason\":\"%s\",\"first\":%llu}",
                       st->sub.ch->name, reason, (unsigned long long)first);
    hr_sio_emit_queued(member_of(st)->s, "herald:gap", g, (size_t)n);
}

/* Too slow under "disconnect" (or out of memory): the Engine.IO session closes as Engine.IO
 * closes a slow consumer, after this loop turn (the hub is handing out a message); the
 * client reconnects and resumes (recovery, or auth.offset). */
static void stream_close_slow(struct hr_chan_stream *st)
{
    struct hr_eio_session *es = session_of(st);
    if (es)
        hr_eio_close_slow(es);
}

static void stream_close_error(struct hr_chan_stream *st, int status, const char *what)
{
    stream_close_slow(st);
}

static int stream_closing(const struct hr_chan_stream *st)
{
    struct hr_eio_session *es = session_of(st);
    return !es || hr_eio_closing(es);
}

static int stream_full(const struct hr_chan_stream *st)
{
    struct hr_eio_session *es = session_of(st);
    return !es || hr_eio_full(es);
}

static int stream_over(const struct hr_chan_stream *st)
{
    struct hr_eio_session *es = session_of(st);
    return !es || hr_eio_over(es);
}

static const struct hr_chan_stream_ops room_stream_ops = {
    .sub = HR_CHAN_STREAM_SUB_OPS,
    .fmt = HR_FMT_SIO,
    .encode = stream_encode,
    .write = stream_write,
    .write_gap = stream_write_gap,
    .close_slow = stream_close_slow,
    .close_error = stream_close_error,
    .closing = stream_closing,
    .full = stream_full,
    .over = stream_over,
};

/* s's stream of channel ch (NULL: s is not in that room). */
static struct hr_chan_stream *stream_of(herald_socket *s, const struct hr_channel *ch)
{
    for (struct hr_sio_member *m = s->rooms; m; m = m->next_room)
        if (m->chan && m->room->sub.ch == ch)
            return m->st;
    return NULL;
}

void hr_sio_client_drain_cb(struct hr_eio_session *es, void *ud)
{
    struct hr_sio_client *c = es->user;
    for (herald_socket *s = c ? c->sockets : NULL; s; s = s->next_in_client)
        for (struct hr_sio_member *m = s->rooms, *next; m; m = next) {
            next = m->next_room;
            if (m->chan)
                hr_chan_stream_drained(m->st);
        }
}

/* A socket that connected with a channel cursor as auth.offset (a client coming from another
 * transport, or back after a restart) gets what it missed of each channel room it joins
 * while connecting: a "herald:gap" event first if some of it is gone, then the messages.
 * The replay is sent at once, among the packets of the CONNECT, in order with them (the
 * recovery's kept packets) - not paged as the output drains - but as the stream's packets:
 * the same shared encoding, the same writes and notices. */
struct replay {
    herald_socket *s;
    struct hr_chan_stream *st;
    uint64_t upto; /* the last id to send */
    uint64_t sent; /* the last id sent */
    int cut;       /* stopped: the client's output holds enough */
    int stop;      /* past upto, or the socket's output failed */
};

static int replay_one(void *ud, struct hr_hub_msg *m)
{
    struct replay *rp = ud;
    herald_socket *s = rp->s;
    if (m->id > rp->upto || !s->connected)
        return 1;
    /* a replay is sent at once: past half the output cap it stops, so that the session is
     * not closed as a slow consumer and reconnects to the same replay again and again */
    if (s->client && s->client->eio && hr_eio_queued(s->client->eio) > s->nsp->io->max_queued / 2) {
        rp->cut = 1;
        return 1;
    }
    rp->sent = m->id;
    struct hr_buf *enc = stream_encode(rp->st, m);
    return !enc || stream_write(rp->st, enc, m->id) < 0;
}

/* ---- history older than the cache: a replay is sent at once, among the other packets of the
 * connect, so what it needs from the store is read first (off the loop) and the CONNECT is
 * handled once it is there: nothing reaches the socket out of order meanwhile, since it does
 * not exist yet. The read stops at about half the output cap, where the replay stops too. */

struct hr_sio_need {
    struct hr_channel *ch;
    uint64_t since;
    struct hr_hub_span span;
};

struct hr_sio_prefetch {
    struct hr_sio_client *c;
    char *nsp, *data; /* the CONNECT's, copied */
    size_t nsp_len, data_len;
    int has_data;
    struct hr_sio_need *need;
    uint32_t n, i; /* needs; the one being read */
    struct hr_hub_read *req;
    int ready; /* read: the CONNECT is being handled */
};

static void prefetch_destroy(struct hr_sio_prefetch *pf)
{
    hr_hub_read_cancel(pf->req);
    for (uint32_t i = 0; i < pf->n; i++)
        hr_hub_span_free(&pf->need[i].span);
    free(pf->need);
    free(pf->nsp);
    free(pf->data);
    free(pf);
}

/* The client goes: a read under way is dropped; a CONNECT being handled (the client closed
 * from inside it) lets prefetch_next free the prefetch once it returns. */
void hr_sio_prefetch_free(struct hr_sio_client *c)
{
    struct hr_sio_prefetch *pf = c->prefetch;
    if (!pf)
        return;
    c->prefetch = NULL;
    if (pf->ready)
        pf->c = NULL;
    else
        prefetch_destroy(pf);
}

/* What was read of ch for the replay being sent (NULL: nothing). */
static struct hr_hub_span *prefetched(herald_socket *s, struct hr_channel *ch)
{
    struct hr_sio_prefetch *pf = s->client ? s->client->prefetch : NULL;
    for (uint32_t i = 0; pf && pf->ready && i < pf->n; i++)
        if (pf->need[i].ch == ch)
            return &pf->need[i].span;
    return NULL;
}

static void prefetch_next(struct hr_sio_prefetch *pf);

static void prefetch_page(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg)
{
    struct hr_sio_prefetch *pf = ud;
    struct hr_sio_need *nd = &pf->need[pf->i];
    pf->req = NULL;
    size_t budget = pf->c->io->max_queued / 2;
    uint64_t last = nd->span.n ? nd->span.m[nd->span.n - 1].id : nd->since;
    if (pg->status < 0 || pg->n == 0 || hr_hub_span_add(&nd->span, pg) < 0 ||
        nd->span.bytes >= budget || hr_hub_cached(ch, pg->m[pg->n - 1]->id) ||
        pg->m[pg->n - 1]->id <= last)
        pf->i++; /* enough for this channel (or nothing more can be read) */
    prefetch_next(pf);
}

/* Read the next page, or handle the CONNECT once all are read. */
static void prefetch_next(struct hr_sio_prefetch *pf)
{
    while (pf->i < pf->n) {
        struct hr_sio_need *nd = &pf->need[pf->i];
        uint64_t after = nd->span.n ? nd->span.m[nd->span.n - 1].id : nd->since;
        if (hr_hub_cached(nd->ch, after)) {
            pf->i++;
            continue;
        }
        int rc = hr_hub_read(nd->ch, after, HR_HUB_PAGE_MAX, prefetch_page, pf, &pf->req);
        if (rc == 1)
            return; /* prefetch_page goes on */
        if (rc < 0)
            pf->i++;
        /* rc == 0: answered at once, prefetch_page has moved on (it calls back in here, but
         * only for a page read later: a page from the cache ends the channel's need) */
        return;
    }
    struct hr_sio_client *c = pf->c;
    struct hr_sio_packet p = {.type = HR_SIO_CONNECT,
                              .ack_id = -1,
                              .nsp = pf->nsp,
                              .nsp_len = pf->nsp_len,
                              .data = pf->has_data ? pf->data : NULL,
                              .data_len = pf->data_len};
    pf->ready = 1;
    hr_sio_on_connect(c, &p);
    if (pf->c)
        pf->c->prefetch = NULL;
    prefetch_destroy(pf);
}

/* A prefetch holding a copy of the CONNECT p (NULL: out of memory). */
static struct hr_sio_prefetch *prefetch_new(struct hr_sio_client *c, const struct hr_sio_packet *p)
{
    struct hr_sio_prefetch *pf = calloc(1, sizeof(*pf));
    if (!pf)
        return NULL;
    pf->nsp = malloc(p->nsp_len + 1);
    pf->data = malloc(p->data_len + 1);
    if (!pf->nsp || !pf->data) {
        prefetch_destroy(pf);
        return NULL;
    }
    memcpy(pf->nsp, p->nsp, p->nsp_len);
    pf->nsp_len = p->nsp_len;
    memcpy(pf->data, p->data, p->data_len);
    pf->data_len = p->data_len;
    pf->has_data = 1;
    pf->c = c;
    return pf;
}

/* The commits on their way to this worker when the CONNECT came are applied: it is handled
 * again, its resume now judged against them (and its history read, if need be). */
static void prefetch_synced(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg)
{
    (void)ch;
    (void)pg;
    struct hr_sio_prefetch *pf = ud;
    struct hr_sio_client *c = pf->c;
    pf->req = NULL;
    c->prefetch = NULL;
    c->synced = 1;
    struct hr_sio_packet p = {.type = HR_SIO_CONNECT,
                              .ack_id = -1,
                              .nsp = pf->nsp,
                              .nsp_len = pf->nsp_len,
                              .data = pf->data,
                              .data_len = pf->data_len};
    hr_sio_on_connect(c, &p); /* c may be gone afterwards */
    prefetch_destroy(pf);
}

static struct hr_channel *channel_of_cursor(herald_io *io, const struct hr_cursor *cur)
{
    struct hr_channel *ch, *tmp;
    if (!cur->epoch[0])
        return NULL;
    HASH_ITER(hh, io->hub->channels, ch, tmp)
    if (strcmp(ch->epoch, cur->epoch) == 0)
        return ch;
    return NULL;
}

static void need_add(struct hr_sio_need *need, uint32_t *n, struct hr_channel *ch, uint64_t since)
{
    if (ch && since < ch->last_id && !hr_hub_cached(ch, since))
        need[(*n)++] = (struct hr_sio_need){.ch = ch, .since = since};
}

/* Whether the CONNECT p to nsp replays history that is not cached, or waits for commits on
 * their way here: then it is held (1). Its auth is looked at as on_connect will: a recovery
 * (pid and offset of a saved session) or a channel cursor. */
int hr_sio_prefetch_start(struct hr_sio_client *c, herald_nsp *nsp, const struct hr_sio_packet *p)
{
    herald_io *io = c->io;
    if (c->prefetch || !p->data)
        return 0;
    json_t *auth = json_loadb(p->data, p->data_len, 0, NULL);
    const char *pid = json_string_value(json_object_get(auth, "pid"));
    const char *offset = json_string_value(json_object_get(auth, "offset"));
    /* On a replica the ids a resume names (a cursor, a saved session's) may be commits another
     * worker delivered a moment ago, still on their way here: the CONNECT waits for them once,
     * then is handled again (prefetch_synced). */
    int synced = c->synced;
    c->synced = 0;
    if (offset && !synced && io->hub && io->hub->sync) {
        struct hr_sio_prefetch *pf = prefetch_new(c, p);
        if (pf && hr_hub_sync(io->hub, NULL, prefetch_synced, pf, &pf->req) == 1) {
            json_decref(auth);
            c->prefetch = pf;
            return 1;
        }
        if (pf)
            prefetch_destroy(pf);
    }
    if (!io->store || !io->store->ops->read) {
        json_decref(auth);
        return 0;
    }
    struct hr_sio_need *need = NULL;
    uint32_t n = 0;
    struct hr_sio_saved *sv = NULL;
    struct hr_sio_kept *from = NULL;
    if (offset && pid)
        sv = hr_sio_recovery_find(c, nsp, pid, offset, &from);
    if (from && (need = calloc(sv->nrooms ? sv->nrooms : 1, sizeof(*need)))) {
        for (uint32_t i = 0; i < sv->nrooms; i++) {
            uint64_t since = sv->chan_last[i];
            for (struct hr_sio_kept *k = from->next; k; k = k->next)
                if (k->chan_id && strcmp(k->room, sv->rooms[i]) == 0) {
                    if (k->chan_id - 1 < since)
                        since = k->chan_id - 1;
                    break;
                }
            need_add(need, &n, hr_hub_channel(io->hub, sv->rooms[i], strlen(sv->rooms[i]), 0),
                     since);
        }
    } else if (offset && (need = calloc(1, sizeof(*need)))) {
        struct hr_cursor cur;
        if (hr_cursor_parse(offset, strlen(offset), &cur) == 0)
            need_add(need, &n, channel_of_cursor(io, &cur), cur.id);
    }
    json_decref(auth);
    struct hr_sio_prefetch *pf = n ? prefetch_new(c, p) : NULL;
    if (!pf) {
        free(need);
        return 0;
    }
    pf->need = need;
    pf->n = n;
    c->prefetch = pf;
    prefetch_next(pf);
    return 1;
}

/* A page of the cache, in a replay. */
static void replay_page(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg)
{
    struct replay *rp = ud;
    for (uint32_t i = 0; i < pg->n; i++) {
        if (pg->m[i]->id <= rp->sent)
            continue;
        if (replay_one(rp, pg->m[i])) {
            rp->stop = 1;
            return;
        }
    }
    if (!pg->n)
        rp->stop = 1;
}

/* Send s the messages of ch after cursor *cur up to id upto (a gap notice first when some of
 * them are gone, unless told one was given); cur then names the last one sent. */
void hr_sio_replay_channel(herald_socket *s, struct hr_channel *ch, struct hr_cursor *cur,
                           uint64_t upto, int gap_told)
{
    struct hr_chan_stream *st = stream_of(s, ch);
    if (!st)
        return;
    uint64_t since;
    const char *gap = hr_cursor_start(cur, ch, &since);
    if (gap && !gap_told)
        stream_write_gap(st, gap, hr_hub_first_id(ch), 0, 0);
    struct replay rp = {s, st, upto, since, 0, 0};
    /* what was read from the store first, then the cache; what is neither was not read in
     * time (the read stopped at the output's budget): a "replay limit" notice says so */
    struct hr_hub_span *sp = prefetched(s, ch);
    for (uint32_t i = 0; sp && i < sp->n && !rp.stop; i++)
        if (sp->m[i].id > rp.sent && replay_one(&rp, &sp->m[i]))
            rp.stop = 1;
    while (!rp.stop && !rp.cut && rp.sent < upto && rp.sent < ch->last_id) {
        if (!hr_hub_cached(ch, rp.sent)) {
            rp.cut = 1;
            break;
        }
        uint64_t before = rp.sent;
        if (hr_hub_read(ch, rp.sent, HR_HUB_PAGE_MAX, replay_page, &rp, NULL) != 0 ||
            rp.sent == before)
            break;
    }
    *cur = (struct hr_cursor){.id = rp.sent};
    if (rp.cut) {
        /* said, never silent: what was not sent can be read from the channel's history */
        stream_write_gap(st, "replay limit", ch->last_id + 1, rp.sent + 1, ch->last_id);
        *cur = (struct hr_cursor){.id = ch->last_id};
    }
}

static const struct hr_sub_ops room_sub_ops = {.deliver = room_deliver};

static void room_free(struct hr_sio_room *r)
{
    struct hr_channel *ch = r->sub.ch;
    hr_hub_unsubscribe(&r->sub);
    hr_hub_forget_unused(ch);
    free(r);
}

/* The room called name of nsp, made when absent (NULL: out of memory). A room of "/" named
 * like a channel is that channel, unless a socket has that id (its own room, which is not:
 * that room is made only when another socket joins it). */
/* Whether joining room name of nsp would make the socket a reader of a channel (room_get). */
static int would_be_channel(herald_nsp *nsp, const char *name)
{
    struct hr_sio_room *r;
    HASH_FIND_STR(nsp->rooms, name, r);
    if (r)
        return r->sub.ch != NULL;
    herald_socket *owner;
    HASH_FIND_STR(nsp->sockets, name, owner);
    return strcmp(nsp->name, "/") == 0 && !owner && nsp->io->hub &&
           hr_channel_name_valid(name, strlen(name));
}

static struct hr_sio_room *room_get(herald_nsp *nsp, const char *name)
{
    struct hr_sio_room *r;
    HASH_FIND_STR(nsp->rooms, name, r);
    if (r)
        return r;
    size_t len = strlen(name);
    if (!(r = calloc(1, sizeof(*r) + len + 1)))
        return NULL;
    memcpy(r->name, name, len + 1);
    r->nsp = nsp;
    HASH_ADD_KEYPTR(hh, nsp->rooms, r->name, len, r);
    herald_socket *owner;
    HASH_FIND_STR(nsp->sockets, name, owner);
    if (strcmp(nsp->name, "/") == 0 && !owner && nsp->io->hub) {
        struct hr_channel *ch = hr_hub_channel(nsp->io->hub, name, len, 1);
        if (ch) {
            r->sub.ops = &room_sub_ops;
            r->sub.fmt = HR_FMT_SIO;
            hr_hub_subscribe(ch, &r->sub);
            hr_hub_readers(&r->sub, 0); /* its sockets' streams are the readers */
        }
    }
    return r;
}

int herald_join(herald_socket *s, const char *room)
{
    if (strcmp(room, s->id) == 0) {
        s->own_room = 1;
        return 0;
    }
    if (membership(s, room))
        return 0;
    if (s->nsp->io->max_channels && would_be_channel(s->nsp, room)) {
        uint32_t n = 0;
        for (struct hr_sio_member *m = s->rooms; m; m = m->next_room)
            n += m->chan;
        if (n >= s->nsp->io->max_channels) {
            hr_quota_hit(HR_QUOTA_CHANNELS, s->nsp->io->max_channels, uv_now(s->nsp->io->loop));
            return HR_EQUOTA;
        }
    }
    struct hr_sio_room *r = room_get(s->nsp, room);
    if (!r)
        return HR_ENOMEM;
    struct hr_channel *ch = r->sub.ch;
    struct hr_sio_member *m = calloc(1, sizeof(*m) + (ch ? sizeof(struct hr_chan_stream) : 0));
    if (!m) {
        if (r->count == 0 && r->held == 0) {
            HASH_DEL(s->nsp->rooms, r);
            room_free(r);
        }
        return HR_ENOMEM;
    }
    m->s = s;
    m->room = r;
    m->next = r->members;
    if (r->members)
        r->members->prev = m;
    r->members = m;
    r->count++;
    struct hr_sio_member **tail = &s->rooms;
    while (*tail)
        tail = &(*tail)->next_room;
    *tail = m;
    if (ch) {
        m->chan = 1;
        hr_chan_stream_init(m->st, &room_stream_ops, ch);
        herald_io *io = s->nsp->io;
        if (io->resume_for == s && io->resume.epoch[0] && hr_cursor_of(&io->resume, ch)) {
            struct hr_cursor cur = io->resume;
            hr_sio_replay_channel(s, ch, &cur, UINT64_MAX, 0);
        }
        hr_chan_stream_start(m->st, NULL); /* live from the next message */
    }
    if (s->nsp->io->admin)
        hr_sio_admin_room(s, room, 1);
    return 0;
}

int herald_leave(herald_socket *s, const char *room)
{
    if (strcmp(room, s->id) == 0) {
        int was = s->own_room;
        s->own_room = 0;
        if (was)
            return 0;
    }
    struct hr_sio_member **pp = &s->rooms;
    while (*pp && strcmp((*pp)->room->name, room) != 0)
        pp = &(*pp)->next_room;
    struct hr_sio_member *m = *pp;
    if (!m)
        return HR_ENOTFOUND;
    *pp = m->next_room;
    struct hr_sio_room *r = m->room;
    if (m->prev)
        m->prev->next = m->next;
    else
        r->members = m->next;
    if (m->next)
        m->next->prev = m->prev;
    if (m->chan)
        hr_chan_stream_stop(m->st);
    free(m);
    if (s->nsp->io->admin)
        hr_sio_admin_room(s, room, 0);
    if (--r->count == 0 && r->held == 0) {
        HASH_DEL(s->nsp->rooms, r);
        room_free(r);
    }
    return 0;
}

void hr_sio_room_release(herald_nsp *nsp, const char *name)
{
    struct hr_sio_room *r;
    HASH_FIND_STR(nsp->rooms, name, r);
    if (!r || r->held == 0)
        return;
    if (--r->held == 0 && r->count == 0) {
        HASH_DEL(nsp->rooms, r);
        room_free(r);
    }
}

int herald_in(const herald_socket *s, const char *room)
{
    return in_room(s, room);
}

size_t herald_rooms(const herald_socket *s, const char **out, size_t max)
{
    size_t n = 0;
    if (s->own_room && n < max)
        out[n++] = s->id;
    for (const struct hr_sio_member *m = s->rooms; m && n < max; m = m->next_room)
        out[n++] = m->room->name;
    return n;
}

/* The socket whose own room this is, when it is in it. */
herald_socket *hr_sio_room_owner(herald_nsp *nsp, const char *room)
{
    herald_socket *s;
    HASH_FIND_STR(nsp->sockets, room, s);
    return s && s->own_room ? s : NULL;
}

size_t herald_room_size(herald_nsp *nsp, const char *room)
{
    struct hr_sio_room *r;
    HASH_FIND_STR(nsp->rooms, room, r);
    return (r ? r->count : 0) + (hr_sio_room_owner(nsp, room) != NULL);
}
