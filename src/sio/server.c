/* server.c - Socket.IO protocol v5 server (docs/socket.io-protocol/v5-current.md) behind the
 * public API in include/herald.h: namespaces, CONNECT with auth and middleware, events and
 * acks both ways, binary attachments, rooms and broadcasts encoded once per wire format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "core/json.h"
#include "sio.h"

static void wait_remove(struct hr_sio_client *c);

struct herald_args {
    const char *raw;
    size_t raw_len;
    json_t *parsed;          /* lazily */
    struct hr_buf **bins;
    size_t nbins;
};

struct herald_ack {
    herald_socket *s;        /* NULL once the socket is gone */
    uint64_t id;
    uint8_t kept;
    uint8_t done;
};

/* ---- sending ------------------------------------------------------------------------------ */

/* Encode "<type>[<n>-][<nsp>,][<id>]" + payload into one Engine.IO message and the binary
 * attachments into their own, then hand them to each target's session. */
struct outgoing {
    struct hr_eio_msg text;
    struct hr_eio_msg *bins;
    size_t nbins;
};

static int out_init(struct outgoing *o, int type, const herald_nsp *nsp, int64_t ack_id,
                    const char *event, const char *raw, size_t len,
                    const struct herald_bin *bins, size_t nbins)
{
    memset(o, 0, sizeof(*o));
    /* more than a client's socket.io-parser takes ("too many attachments") */
    if (nbins > HR_SIO_MAX_ATTACHMENTS)
        return HR_EINVAL;
    if (nbins)
        type = type == HR_SIO_EVENT ? HR_SIO_BINARY_EVENT : HR_SIO_BINARY_ACK;
    struct hr_buf *b = hr_sio_encode(type, nsp->name, strlen(nsp->name), ack_id, (uint32_t)nbins, NULL, 0);
    if (!b)
        return HR_ENOMEM;
    uint32_t head = b->len;
    int rc = 0;
    if (event)
        rc = hr_sio_append_event(&b, event, raw, len);
    else if ((rc = hr_buf_append(&b, "[", 1)) == 0 && (rc = hr_buf_append(&b, raw, len)) == 0)
        rc = hr_buf_append(&b, "]", 1);
    /* Never send what the receiver's parser must refuse: a placeholder naming an attachment
     * that is not there fails the whole packet ("illegal attachments") and makes the client
     * reconnect. What clients sent was checked as it came; this also holds for what the
     * application built, and for recovery replays. Without attachments placeholders are
     * plain objects to the receiver. */
    if (rc == 0 && nbins &&
        hr_sio_check_placeholders(b->data + head, b->len - head, (uint32_t)nbins, 0))
        rc = HR_EINVAL;
    if (rc == 0)
        rc = hr_eio_msg_init(&o->text, 0, b->data, b->len);
    hr_buf_unref(b);
    if (rc)
        return rc;
    if (nbins) {
        o->bins = calloc(nbins, sizeof(*o->bins));
        if (!o->bins)
            return HR_ENOMEM;
        for (size_t i = 0; i < nbins; i++, o->nbins++)
            if ((rc = hr_eio_msg_init(&o->bins[i], 1, bins[i].data, bins[i].len)))
                return rc;
    }
    return 0;
}

static void out_release(struct outgoing *o)
{
    if (o->text.frame)
        hr_eio_msg_release(&o->text);
    for (size_t i = 0; i < o->nbins; i++)
        hr_eio_msg_release(&o->bins[i]);
    free(o->bins);
}

static int out_send(const struct outgoing *o, herald_socket *s)
{
    if (!s->connected || !s->client->eio)
        return HR_ECLOSED;
    int rc = hr_eio_send(s->client->eio, &o->text);
    for (size_t i = 0; i < o->nbins && rc == 0; i++)
        rc = hr_eio_send(s->client->eio, &o->bins[i]);
    return rc;
}

/* Plain control packets to one client: CONNECT answers, CONNECT_ERROR. */
static void send_packet(struct hr_sio_client *c, int type, const char *nsp, const char *data)
{
    if (!c->eio)
        return;
    struct hr_buf *b = hr_sio_encode(type, nsp, strlen(nsp), -1, 0, data, data ? strlen(data) : 0);
    struct hr_eio_msg m;
    if (b && hr_eio_msg_init(&m, 0, b->data, b->len) == 0) {
        hr_eio_send(c->eio, &m);
        hr_eio_msg_release(&m);
    }
    hr_buf_unref(b);
}

/* json array -> raw argument text without brackets, as JSON.stringify would write it. */
static char *args_text(json_t *args, size_t *len)
{
    struct hr_buf *b = hr_buf_new(256);
    if (!b)
        return NULL;
    int rc = 0;
    if (json_is_array(args)) {
        for (size_t i = 0; i < json_array_size(args) && rc == 0; i++)
            if (!(i && (rc = hr_buf_append(&b, ",", 1))))
                rc = hr_json_dump(json_array_get(args, i), &b);
    } else if (args) {
        rc = hr_json_dump(args, &b);
    }
    char *s = rc == 0 ? malloc((size_t)b->len + 1) : NULL;
    if (s) {
        memcpy(s, b->data, b->len);
        s[b->len] = '\0';
        *len = b->len;
    }
    hr_buf_unref(b);
    return s;
}

static int emit_raw(herald_socket *s, const char *event, const char *raw, size_t len,
                    const struct herald_bin *bins, size_t nbins)
{
    struct outgoing o;
    int rc = out_init(&o, HR_SIO_EVENT, s->nsp, -1, event, raw, len, bins, nbins);
    if (rc == 0)
        rc = out_send(&o, s);
    out_release(&o);
    return rc;
}

static struct hr_sio_kept *keep(herald_nsp *nsp, const char *room, herald_socket *except,
                                const char *event, const char *raw, size_t len,
                                const struct herald_bin *bins, size_t nbins, const char *offset,
                                uint64_t chan_id);

int herald_emit_raw(herald_socket *s, const char *event, const char *raw, size_t len,
                    const struct herald_bin *bins, size_t nbins)
{
    /* with recovery on, an emit to one socket is kept like a broadcast to its own room, with
     * an offset (Socket.IO does the same), so a socket that drops gets it back; that holds
     * too for what is emitted to it while it is going away (its pid was saved) */
    if (s->nsp->io->opts.recovery_window_ms && s->pid[0]) {
        struct hr_sio_kept *k = keep(s->nsp, s->id, NULL, event, raw, len, bins, nbins, NULL, 0);
        if (k) {
            raw = k->raw;
            len = k->raw_len;
        }
    }
    return emit_raw(s, event, raw, len, bins, nbins);
}

int herald_emit(herald_socket *s, const char *event, json_t *args)
{
    size_t len;
    char *raw = args_text(args, &len);
    json_decref(args);
    if (!raw)
        return HR_ENOMEM;
    int rc = herald_emit_raw(s, event, raw, len, NULL, 0);
    free(raw);
    return rc;
}

int herald_send(herald_socket *s, json_t *value)
{
    return herald_emit(s, "message", json_pack("[o]", value));
}

static int in_room(const herald_socket *s, const char *room)
{
    for (uint32_t i = 0; i < s->nrooms; i++)
        if (strcmp(s->rooms[i], room) == 0)
            return 1;
    return 0;
}

/* ---- connection state recovery ----------------------------------------------------------- */

static void kept_free(struct hr_sio_kept *k)
{
    for (size_t i = 0; i < k->nbins; i++)
        free((void *)k->bins[i].data);
    free(k->bins);
    free(k->event);
    free(k->raw);
    free(k->room);
    free(k);
}

/* Drop kept broadcasts older than the window, or beyond the memory budget. */
static void kept_prune(herald_nsp *nsp, uint64_t now)
{
    uint64_t window = nsp->io->opts.recovery_window_ms;
    while (nsp->kept_head && (now - nsp->kept_head->at > window || nsp->kept_bytes > HR_SIO_KEPT_MAX)) {
        struct hr_sio_kept *k = nsp->kept_head;
        nsp->kept_head = k->next;
        if (!nsp->kept_head)
            nsp->kept_tail = NULL;
        nsp->kept_bytes -= k->bytes;
        kept_free(k);
    }
}

static void kept_append(herald_nsp *nsp, struct hr_sio_kept *k)
{
    if (nsp->kept_tail)
        nsp->kept_tail->next = k;
    else
        nsp->kept_head = k;
    nsp->kept_tail = k;
    nsp->kept_bytes += k->bytes;
    kept_prune(nsp, k->at);
}

/* Append the broadcast's offset to its arguments and keep it for returning sockets. Returns
 * the entry (its raw text is what to send), or NULL to send the packet as it was. A channel's
 * message (chan_id, its cursor as offset) is only marked: returns NULL. */
static struct hr_sio_kept *keep(herald_nsp *nsp, const char *room, herald_socket *except,
                                const char *event, const char *raw, size_t len,
                                const struct herald_bin *bins, size_t nbins, const char *offset,
                                uint64_t chan_id)
{
    herald_io *io = nsp->io;
    struct hr_sio_kept *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->at = uv_now(io->loop);
    if (chan_id) {
        snprintf(k->offset, sizeof k->offset, "%s", offset);
        k->chan_id = chan_id;
        if (!(k->room = strdup(room))) {
            free(k);
            return NULL;
        }
        k->bytes = sizeof(*k) + strlen(room) + 1;
        kept_append(nsp, k);
        return NULL;
    }
    snprintf(k->offset, sizeof k->offset, "%llu", (unsigned long long)++io->next_offset);
    char off[48];
    int n = snprintf(off, sizeof off, "%s\"%s\"", len ? "," : "", k->offset);
    k->raw = malloc(len + (size_t)n + 1);
    k->event = strdup(event);
    k->room = room ? strdup(room) : NULL;
    if (!k->raw || !k->event || (room && !k->room)) {
        kept_free(k);
        return NULL;
    }
    memcpy(k->raw, raw, len);
    memcpy(k->raw + len, off, (size_t)n + 1);
    k->raw_len = len + (size_t)n;
    size_t bin_bytes = 0;
    if (nbins) {
        k->bins = calloc(nbins, sizeof(*k->bins));
        if (!k->bins) {
            kept_free(k);
            return NULL;
        }
        for (; k->nbins < nbins; k->nbins++) {
            void *copy = malloc(bins[k->nbins].len ? bins[k->nbins].len : 1);
            if (!copy) {
                kept_free(k);
                return NULL;
            }
            memcpy(copy, bins[k->nbins].data, bins[k->nbins].len);
            k->bins[k->nbins] = (struct herald_bin){copy, bins[k->nbins].len};
            bin_bytes += bins[k->nbins].len;
        }
    }
    if (except)
        snprintf(k->except, sizeof k->except, "%s", except->id);
    k->bytes = k->raw_len + bin_bytes + sizeof(*k);
    kept_append(nsp, k);
    return k;
}

static void saved_free(herald_io *io, struct hr_sio_saved *sv)
{
    HASH_DEL(io->saved, sv);
    for (uint32_t i = 0; i < sv->nrooms; i++)
        free(sv->rooms[i]);
    free(sv->rooms);
    free(sv->chan_last);
    free(sv);
}

static void saved_prune(herald_io *io, uint64_t now)
{
    /* uthash iterates in insertion order: the oldest come first */
    struct hr_sio_saved *sv, *tmp;
    HASH_ITER(hh, io->saved, sv, tmp) {
        if (now - sv->at <= io->opts.recovery_window_ms)
            break;
        saved_free(io, sv);
    }
}

/* A socket that dropped (not one that left on purpose) may come back within the window. */
static void save_session(herald_socket *s, const char *reason)
{
    herald_io *io = s->nsp->io;
    if (!io->opts.recovery_window_ms || !s->pid[0] || strcmp(reason, "client namespace disconnect") == 0 ||
        strcmp(reason, "server namespace disconnect") == 0 || strcmp(reason, "server shutting down") == 0)
        return;
    struct hr_sio_saved *sv = calloc(1, sizeof(*sv));
    if (!sv)
        return;
    memcpy(sv->pid, s->pid, sizeof sv->pid);
    memcpy(sv->sid, s->id, sizeof sv->sid);
    sv->nsp = s->nsp;
    sv->at = uv_now(io->loop);
    sv->rooms = calloc(s->nrooms ? s->nrooms : 1, sizeof(char *));
    sv->chan_last = calloc(s->nrooms ? s->nrooms : 1, sizeof(uint64_t));
    for (uint32_t i = 0; sv->rooms && sv->chan_last && i < s->nrooms; i++) {
        if (!(sv->rooms[sv->nrooms] = strdup(s->rooms[i])))
            continue;
        struct hr_sio_room *r;
        HASH_FIND_STR(s->nsp->rooms, s->rooms[i], r);
        if (r && r->sub.ch)
            sv->chan_last[sv->nrooms] = r->sub.ch->last_id;
        sv->nrooms++;
    }
    HASH_ADD_STR(io->saved, pid, sv);
    saved_prune(io, sv->at);
}

static int saved_in_room(const struct hr_sio_saved *sv, const char *room)
{
    for (uint32_t i = 0; i < sv->nrooms; i++)
        if (strcmp(sv->rooms[i], room) == 0)
            return 1;
    return 0;
}

/* A broadcast; a channel's message has its cursor as offset and its id as chan_id. */
static size_t broadcast(herald_nsp *nsp, const char *room, herald_socket *except,
                        const char *event, const char *raw, size_t len,
                        const struct herald_bin *bins, size_t nbins, const char *offset,
                        uint64_t chan_id)
{
    struct outgoing o;
    size_t n = 0;
    char *with_offset = NULL;
    /* with recovery on, a broadcast carries its offset as a last argument (as Socket.IO's
     * session-aware adapter does) and is kept for sockets that come back */
    if (nsp->io->opts.recovery_window_ms) {
        struct hr_sio_kept *k = keep(nsp, room, except, event, raw, len, bins, nbins, offset, chan_id);
        if (k) {
            raw = k->raw;
            len = k->raw_len;
        } else if (chan_id && (with_offset = malloc(len + strlen(offset) + 4))) {
            memcpy(with_offset, raw, len);
            int m = snprintf(with_offset + len, strlen(offset) + 4, "%s\"%s\"", len ? "," : "", offset);
            raw = with_offset;
            len += (size_t)m;
        }
    }
    if (out_init(&o, HR_SIO_EVENT, nsp, -1, event, raw, len, bins, nbins) == 0) {
        if (room) {
            struct hr_sio_room *r;
            HASH_FIND_STR(nsp->rooms, room, r);
            struct hr_sio_member *m, *tmp;
            if (r)
                HASH_ITER(hh, r->members, m, tmp)
                    if (m->s != except && out_send(&o, m->s) == 0)
                        n++;
        } else {
            herald_socket *s, *tmp;
            HASH_ITER(hh, nsp->sockets, s, tmp)
                if (s != except && out_send(&o, s) == 0)
                    n++;
        }
    }
    out_release(&o);
    free(with_offset);
    return n;
}

size_t herald_broadcast_raw(herald_nsp *nsp, const char *room, herald_socket *except,
                            const char *event, const char *raw, size_t len,
                            const struct herald_bin *bins, size_t nbins)
{
    return broadcast(nsp, room, except, event, raw, len, bins, nbins, NULL, 0);
}

size_t herald_broadcast(herald_nsp *nsp, const char *room, herald_socket *except,
                        const char *event, json_t *args)
{
    size_t len;
    char *raw = args_text(args, &len);
    json_decref(args);
    if (!raw)
        return 0;
    size_t n = herald_broadcast_raw(nsp, room, except, event, raw, len, NULL, 0);
    free(raw);
    return n;
}

static void ack_timer_cb(uv_timer_t *t)
{
    hr_sio_expire_acks(t->data);
}

int herald_emit_ack_raw(herald_socket *s, const char *event, const char *raw, size_t len,
                        const struct herald_bin *bins, size_t nbins, uint32_t timeout_ms,
                        herald_reply_cb cb, void *ud)
{
    if (!s->connected)
        return HR_ECLOSED;
    if (s->nacks == s->cap_acks) {
        uint32_t cap = s->cap_acks ? s->cap_acks * 2 : 4;
        struct hr_sio_pending_ack *a = realloc(s->acks, cap * sizeof(*a));
        if (!a)
            return HR_ENOMEM;
        s->acks = a;
        s->cap_acks = cap;
    }
    uint64_t id = s->next_ack_id++;
    struct outgoing o;
    int rc = out_init(&o, HR_SIO_EVENT, s->nsp, (int64_t)id, event, raw, len, bins, nbins);
    if (rc == 0)
        rc = out_send(&o, s);
    out_release(&o);
    if (rc)
        return rc;
    uint64_t deadline = timeout_ms ? uv_now(s->nsp->io->loop) + timeout_ms : 0;
    s->acks[s->nacks++] = (struct hr_sio_pending_ack){id, cb, ud, deadline};
    if (deadline && !uv_is_active((uv_handle_t *)&s->nsp->io->ack_timer))
        uv_timer_start(&s->nsp->io->ack_timer, ack_timer_cb, 100, 100);
    return 0;
}

int herald_emit_ack(herald_socket *s, const char *event, json_t *args, uint32_t timeout_ms,
                    herald_reply_cb cb, void *ud)
{
    size_t len;
    char *raw = args_text(args, &len);
    json_decref(args);
    if (!raw)
        return HR_ENOMEM;
    int rc = herald_emit_ack_raw(s, event, raw, len, NULL, 0, timeout_ms, cb, ud);
    free(raw);
    return rc;
}

static int ack_reply(herald_ack *ack, const char *raw, size_t len, const struct herald_bin *bins,
                     size_t nbins)
{
    if (ack->done)
        return HR_EINVAL;
    ack->done = 1;
    herald_socket *s = ack->s;
    int rc = HR_ECLOSED;
    if (s && s->connected) {
        struct outgoing o;
        rc = out_init(&o, HR_SIO_ACK, s->nsp, (int64_t)ack->id, NULL, raw, len, bins, nbins);
        if (rc == 0)
            rc = out_send(&o, s);
        out_release(&o);
    }
    if (ack->kept)
        free(ack);
    return rc;
}

int herald_ack_send_raw(herald_ack *ack, const char *raw, size_t len,
                        const struct herald_bin *bins, size_t nbins)
{
    return ack_reply(ack, raw, len, bins, nbins);
}

int herald_ack_send(herald_ack *ack, json_t *args)
{
    size_t len;
    char *raw = args_text(args, &len);
    json_decref(args);
    if (!raw)
        return HR_ENOMEM;
    int rc = ack_reply(ack, raw, len, NULL, 0);
    free(raw);
    return rc;
}

herald_ack *herald_ack_keep(herald_ack *ack)
{
    herald_ack *k = malloc(sizeof(*k));
    if (!k)
        return NULL;
    *k = *ack;
    k->kept = 1;
    ack->done = 1; /* the stack copy is spent; the kept one answers */
    return k;
}

void herald_ack_drop(herald_ack *ack)
{
    if (ack->kept)
        free(ack);
    else
        ack->done = 1;
}

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

int herald_publish_raw(herald_io *io, const char *channel, const char *json, size_t len,
                       herald_publish_cb cb, void *ud)
{
    if (!hr_channel_name_valid(channel, strlen(channel)) || !hr_json_check(json, len))
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

int herald_publish(herald_io *io, const char *channel, json_t *value, herald_publish_cb cb, void *ud)
{
    size_t len;
    char *raw = args_text(value, &len);
    json_decref(value);
    if (!raw)
        return HR_ENOMEM;
    int rc = herald_publish_raw(io, channel, raw, len, cb, ud);
    free(raw);
    return rc;
}

herald_io *herald_socket_io(herald_socket *s)
{
    return s->nsp->io;
}

/* ---- rooms -------------------------------------------------------------------------------- */

/* Rooms and channels are one space: a room of the main namespace whose name is a channel
 * name receives that channel's messages as "message" events (see README, "Channels"); with
 * recovery on, a message's offset is its channel cursor, the one every transport resumes
 * from. */
static int room_deliver(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m)
{
    struct hr_sio_room *r = (struct hr_sio_room *)sub;
    char cursor[HR_EPOCH_LEN + 24];
    snprintf(cursor, sizeof cursor, "%s:%llu", ch->epoch, (unsigned long long)m->id);
    broadcast(r->nsp, r->name, NULL, "message", m->data->data, m->data->len, NULL, 0, cursor, m->id);
    return 0;
}

/* A socket that connected with a channel cursor as auth.offset (a client coming from another
 * transport, or back after a restart) gets what it missed of each channel room it joins
 * while connecting: a "herald:gap" event first if some of it is gone, then the messages. */
struct replay {
    herald_socket *s;
    struct hr_channel *ch;
    uint64_t upto;                   /* the last id to send */
    uint64_t sent;                   /* the last id sent */
    int cut;                         /* stopped: the client's output holds enough */
    int stop;                        /* past upto, or the socket's output failed */
};

static int replay_one(void *ud, struct hr_hub_msg *m)
{
    struct replay *rp = ud;
    herald_socket *s = rp->s;
    if (m->id > rp->upto)
        return 1;
    /* a replay is sent at once (Engine.IO has no drain to wait on): past half the output cap
     * it stops, so that the session is not closed as a slow consumer and reconnects to the
     * same replay again and again */
    if (s->client && s->client->eio &&
        hr_eio_queued(s->client->eio) > s->nsp->io->max_queued / 2) {
        rp->cut = 1;
        return 1;
    }
    rp->sent = m->id;
    if (!s->nsp->io->opts.recovery_window_ms)
        return emit_raw(s, "message", m->data->data, m->data->len, NULL, 0) < 0;
    char *raw = malloc(m->data->len + HR_EPOCH_LEN + 32);
    if (!raw)
        return 1;
    memcpy(raw, m->data->data, m->data->len);
    int n = snprintf(raw + m->data->len, HR_EPOCH_LEN + 32, ",\"%s:%llu\"", rp->ch->epoch,
                     (unsigned long long)m->id);
    int rc = emit_raw(s, "message", raw, m->data->len + (size_t)n, NULL, 0);
    free(raw);
    return rc < 0;
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
    char *nsp, *data;                /* the CONNECT's, copied */
    size_t nsp_len, data_len;
    int has_data;
    struct hr_sio_need *need;
    uint32_t n, i;                   /* needs; the one being read */
    struct hr_hub_read *req;
    int ready;                       /* read: the CONNECT is being handled */
};

static void on_connect(struct hr_sio_client *c, const struct hr_sio_packet *p);

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
static void prefetch_free(struct hr_sio_client *c)
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
    if (pg->status < 0 || pg->n == 0 || hr_hub_span_add(&nd->span, pg) < 0 || nd->span.bytes >= budget ||
        hr_hub_cached(ch, pg->m[pg->n - 1]->id) || pg->m[pg->n - 1]->id <= last)
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
    struct hr_sio_packet p = {.type = HR_SIO_CONNECT, .ack_id = -1, .nsp = pf->nsp, .nsp_len = pf->nsp_len,
                              .data = pf->has_data ? pf->data : NULL, .data_len = pf->data_len};
    pf->ready = 1;
    on_connect(c, &p);
    if (pf->c)
        pf->c->prefetch = NULL;
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

/* Whether the CONNECT p to nsp replays history that is not cached: then it is held (1) while
 * that is read. Its auth is looked at as on_connect will: a recovery (pid and offset of a
 * saved session) or a channel cursor. */
static int prefetch_start(struct hr_sio_client *c, herald_nsp *nsp, const struct hr_sio_packet *p)
{
    herald_io *io = c->io;
    if (c->prefetch || !p->data || !io->store || !io->store->ops->read)
        return 0;
    json_t *auth = json_loadb(p->data, p->data_len, 0, NULL);
    const char *pid = json_string_value(json_object_get(auth, "pid"));
    const char *offset = json_string_value(json_object_get(auth, "offset"));
    struct hr_sio_need *need = NULL;
    uint32_t n = 0;
    struct hr_sio_saved *sv = NULL;
    struct hr_sio_kept *from = NULL;
    if (offset && io->opts.recovery_window_ms && pid) {
        HASH_FIND_STR(io->saved, pid, sv);
        from = sv && sv->nsp == nsp ? nsp->kept_head : NULL;
        while (from && strcmp(from->offset, offset) != 0)
            from = from->next;
    }
    if (from && (need = calloc(sv->nrooms ? sv->nrooms : 1, sizeof(*need)))) {
        for (uint32_t i = 0; i < sv->nrooms; i++) {
            uint64_t since = sv->chan_last[i];
            for (struct hr_sio_kept *k = from->next; k; k = k->next)
                if (k->chan_id && strcmp(k->room, sv->rooms[i]) == 0) {
                    if (k->chan_id - 1 < since)
                        since = k->chan_id - 1;
                    break;
                }
            need_add(need, &n, hr_hub_channel(io->hub, sv->rooms[i], strlen(sv->rooms[i]), 0), since);
        }
    } else if (offset && (need = calloc(1, sizeof(*need)))) {
        struct hr_cursor cur;
        if (hr_cursor_parse(offset, strlen(offset), &cur) == 0)
            need_add(need, &n, channel_of_cursor(io, &cur), cur.id);
    }
    json_decref(auth);
    struct hr_sio_prefetch *pf = n ? calloc(1, sizeof(*pf)) : NULL;
    if (pf) {
        pf->nsp = malloc(p->nsp_len + 1);
        pf->data = malloc(p->data_len + 1);
    }
    if (!pf || !pf->nsp || !pf->data) {
        if (pf) {
            free(pf->nsp);
            free(pf->data);
            free(pf);
        }
        free(need);
        return 0;
    }
    memcpy(pf->nsp, p->nsp, p->nsp_len);
    pf->nsp_len = p->nsp_len;
    memcpy(pf->data, p->data, p->data_len);
    pf->data_len = p->data_len;
    pf->has_data = 1;
    pf->c = c;
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
static void replay_channel(herald_socket *s, struct hr_channel *ch, struct hr_cursor *cur, uint64_t upto,
                           int gap_told)
{
    uint64_t since;
    const char *gap = hr_cursor_start(cur, ch, &since);
    if (gap && !gap_told) {
        char g[HR_CHANNEL_NAME_MAX + 96];
        int n = snprintf(g, sizeof g, "{\"channel\":\"%s\",\"reason\":\"%s\",\"first\":%llu}", ch->name,
                         gap, (unsigned long long)hr_hub_first_id(ch));
        emit_raw(s, "herald:gap", g, (size_t)n, NULL, 0);
    }
    struct replay rp = {s, ch, upto, since, 0, 0};
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
        if (hr_hub_read(ch, rp.sent, HR_HUB_PAGE_MAX, replay_page, &rp, NULL) != 0 || rp.sent == before)
            break;
    }
    *cur = (struct hr_cursor){.id = rp.sent};
    if (rp.cut) {
        /* said, never silent: what was not sent can be read from the channel's history */
        char g[HR_CHANNEL_NAME_MAX + 160];
        int n = snprintf(g, sizeof g,
                         "{\"channel\":\"%s\",\"reason\":\"replay limit\",\"first\":%llu,\"missed\":[%llu,%llu]}",
                         ch->name, (unsigned long long)ch->last_id + 1, (unsigned long long)rp.sent + 1,
                         (unsigned long long)ch->last_id);
        emit_raw(s, "herald:gap", g, (size_t)n, NULL, 0);
        *cur = (struct hr_cursor){.id = ch->last_id};
    }
}

static const struct hr_sub_ops room_sub_ops = {.deliver = room_deliver};

static void room_free(struct hr_sio_room *r)
{
    struct hr_channel *ch = r->sub.ch;
    hr_hub_unsubscribe(&r->sub);
    hr_hub_forget_unused(ch);
    free(r->name);
    free(r);
}

int herald_join(herald_socket *s, const char *room)
{
    if (in_room(s, room))
        return 0;
    herald_nsp *nsp = s->nsp;
    struct hr_sio_room *r;
    HASH_FIND_STR(nsp->rooms, room, r);
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r || !(r->name = strdup(room))) {
            free(r);
            return HR_ENOMEM;
        }
        r->nsp = nsp;
        HASH_ADD_KEYPTR(hh, nsp->rooms, r->name, strlen(r->name), r);
        /* a socket's own room is not a channel */
        if (strcmp(nsp->name, "/") == 0 && strcmp(room, s->id) != 0 && nsp->io->hub) {
            struct hr_channel *ch = hr_hub_channel(nsp->io->hub, room, strlen(room), 1);
            if (ch) {
                r->sub.ops = &room_sub_ops;
                r->sub.fmt = HR_FMT_SIO;
                hr_hub_subscribe(ch, &r->sub);
            }
        }
    }
    struct hr_sio_member *m = calloc(1, sizeof(*m));
    if (s->nrooms == s->cap_rooms) {
        uint32_t cap = s->cap_rooms ? s->cap_rooms * 2 : 2;
        char **rooms = realloc(s->rooms, cap * sizeof(*rooms));
        if (rooms) {
            s->rooms = rooms;
            s->cap_rooms = cap;
        }
    }
    char *name = strdup(room);
    if (!m || !name || s->nrooms == s->cap_rooms) {
        free(m);
        free(name);
        return HR_ENOMEM;
    }
    m->s = s;
    HASH_ADD_PTR(r->members, s, m);
    r->count++;
    s->rooms[s->nrooms++] = name;
    if (r->sub.ch) {
        hr_hub_readers(&r->sub, r->count);
        if (s->resume && s->resume->epoch[0] && hr_cursor_of(s->resume, r->sub.ch)) {
            struct hr_cursor cur = *s->resume;
            replay_channel(s, r->sub.ch, &cur, UINT64_MAX, 0);
        }
    }
    return 0;
}

int herald_leave(herald_socket *s, const char *room)
{
    for (uint32_t i = 0; i < s->nrooms; i++) {
        if (strcmp(s->rooms[i], room) != 0)
            continue;
        struct hr_sio_room *r;
        HASH_FIND_STR(s->nsp->rooms, room, r);
        if (r) {
            struct hr_sio_member *m;
            HASH_FIND_PTR(r->members, &s, m);
            if (m) {
                HASH_DEL(r->members, m);
                free(m);
                r->count--;
                if (r->sub.ch && r->count)
                    hr_hub_readers(&r->sub, r->count);
            }
            if (r->count == 0) {
                HASH_DEL(s->nsp->rooms, r);
                room_free(r);
            }
        }
        free(s->rooms[i]);
        s->rooms[i] = s->rooms[--s->nrooms];
        return 0;
    }
    return HR_ENOTFOUND;
}

int herald_in(const herald_socket *s, const char *room)
{
    return in_room(s, room);
}

size_t herald_rooms(const herald_socket *s, const char **out, size_t max)
{
    size_t n = 0;
    for (uint32_t i = 0; i < s->nrooms && n < max; i++)
        out[n++] = s->rooms[i];
    return n;
}

size_t herald_room_size(herald_nsp *nsp, const char *room)
{
    struct hr_sio_room *r;
    HASH_FIND_STR(nsp->rooms, room, r);
    return r ? r->count : 0;
}

/* ---- sockets ------------------------------------------------------------------------------ */

const char *herald_id(const herald_socket *s) { return s->id; }
herald_nsp *herald_socket_nsp(herald_socket *s) { return s->nsp; }
const json_t *herald_auth(const herald_socket *s) { return s->auth; }
void herald_set_data(herald_socket *s, void *data) { s->data = data; }
void *herald_data(const herald_socket *s) { return s->data; }
int herald_recovered(const herald_socket *s) { return s->recovered; }

void herald_on(herald_socket *s, const char *event, herald_event_cb cb, void *ud)
{
    if (s->nhandlers == s->cap_handlers) {
        uint32_t cap = s->cap_handlers ? s->cap_handlers * 2 : 4;
        struct hr_sio_handler *h = realloc(s->handlers, cap * sizeof(*h));
        if (!h)
            return;
        s->handlers = h;
        s->cap_handlers = cap;
    }
    char *name = strdup(event);
    if (name)
        s->handlers[s->nhandlers++] = (struct hr_sio_handler){name, cb, ud};
}

void herald_on_any(herald_socket *s, herald_any_cb cb, void *ud)
{
    s->any_cb = cb;
    s->any_ud = ud;
}

void herald_on_disconnect(herald_socket *s, herald_disconnect_cb cb, void *ud)
{
    s->disconnect_cb = cb;
    s->disconnect_ud = ud;
}

/* Remove the socket from its namespace and client and free it, telling the application. */
static void save_session(herald_socket *s, const char *reason);

static void socket_gone(herald_socket *s, const char *reason)
{
    if (s->connected) {
        save_session(s, reason);
        s->connected = 0;
        if (s->disconnect_cb)
            s->disconnect_cb(s, reason, s->disconnect_ud);
        HASH_DEL(s->nsp->sockets, s);
    }
    while (s->nrooms)
        herald_leave(s, s->rooms[s->nrooms - 1]);
    for (uint32_t i = 0; i < s->nacks; i++)
        if (s->acks[i].cb)
            s->acks[i].cb(s, NULL, s->acks[i].ud);
    herald_socket **pp = &s->client->sockets;
    while (*pp && *pp != s)
        pp = &(*pp)->next_in_client;
    if (*pp)
        *pp = s->next_in_client;
    for (uint32_t i = 0; i < s->nhandlers; i++)
        free(s->handlers[i].event);
    free(s->handlers);
    free(s->rooms);
    free(s->acks);
    json_decref(s->auth);
    free(s->resume);
    free(s);
}

void herald_disconnect(herald_socket *s, int close)
{
    struct hr_sio_client *c = s->client;
    if (s->connected)
        send_packet(c, HR_SIO_DISCONNECT, s->nsp->name, NULL);
    socket_gone(s, "server namespace disconnect");
    if (close && c->eio)
        hr_eio_close(c->eio, "forced close");
}

static herald_socket *client_socket(struct hr_sio_client *c, const char *nsp, size_t len)
{
    for (herald_socket *s = c->sockets; s; s = s->next_in_client)
        if (strlen(s->nsp->name) == len && memcmp(s->nsp->name, nsp, len) == 0)
            return s;
    return NULL;
}

/* ---- namespaces --------------------------------------------------------------------------- */

herald_nsp *herald_of(herald_io *io, const char *name)
{
    herald_nsp *nsp;
    HASH_FIND_STR(io->nsps, name, nsp);
    if (nsp)
        return nsp;
    nsp = calloc(1, sizeof(*nsp));
    if (!nsp || !(nsp->name = strdup(name))) {
        free(nsp);
        return NULL;
    }
    nsp->io = io;
    HASH_ADD_KEYPTR(hh, io->nsps, nsp->name, strlen(nsp->name), nsp);
    return nsp;
}

herald_io *herald_nsp_io(herald_nsp *nsp) { return nsp->io; }
const char *herald_nsp_name(const herald_nsp *nsp) { return nsp->name; }

void herald_allow_namespaces(herald_io *io, int (*allow)(const char *name, void *ud),
                             void (*setup)(herald_nsp *nsp, void *ud), void *ud)
{
    io->allow = allow;
    io->setup = setup;
    io->allow_ud = ud;
}

void herald_on_connection(herald_nsp *nsp, herald_connection_cb cb, void *ud)
{
    nsp->on_connection = cb;
    nsp->conn_ud = ud;
}

void herald_use(herald_nsp *nsp, herald_middleware_cb cb, void *ud)
{
    if (nsp->nmw < sizeof nsp->mw / sizeof nsp->mw[0]) {
        nsp->mw[nsp->nmw].cb = cb;
        nsp->mw[nsp->nmw].ud = ud;
        nsp->nmw++;
    }
}

/* CONNECT: find or allow the namespace, run its middleware, answer, then tell the app. */
static void on_connect(struct hr_sio_client *c, const struct hr_sio_packet *p)
{
    herald_io *io = c->io;
    char name[256];
    if (p->nsp_len >= sizeof name) {
        hr_eio_close(c->eio, "parse error");
        return;
    }
    memcpy(name, p->nsp, p->nsp_len);
    name[p->nsp_len] = '\0';
    if (client_socket(c, name, p->nsp_len))
        return; /* already connected there: ignore, as the reference server does */
    herald_nsp *nsp;
    HASH_FIND_STR(io->nsps, name, nsp);
    if (!nsp && io->allow && io->allow(name, io->allow_ud)) {
        nsp = herald_of(io, name);
        if (nsp && io->setup)
            io->setup(nsp, io->allow_ud);
    }
    if (!nsp) {
        send_packet(c, HR_SIO_CONNECT_ERROR, name, "{\"message\":\"Invalid namespace\"}");
        return;
    }
    if (prefetch_start(c, nsp, p))
        return; /* handled again once the history it replays is read */
    herald_socket *s = calloc(1, sizeof(*s));
    if (!s)
        return;
    s->nsp = nsp;
    s->client = c;
    s->auth = p->data ? json_loadb(p->data, p->data_len, 0, NULL) : json_object();
    if (!s->auth)
        s->auth = json_object();
    /* the client's recovery fields are not part of the application's auth */
    const char *pid = json_string_value(json_object_get(s->auth, "pid"));
    const char *offset = json_string_value(json_object_get(s->auth, "offset"));
    struct hr_sio_saved *sv = NULL;
    if (io->opts.recovery_window_ms && pid && offset) {
        saved_prune(io, uv_now(io->loop));
        HASH_FIND_STR(io->saved, pid, sv);
        if (sv && sv->nsp != nsp)
            sv = NULL;
    }
    struct hr_sio_kept *from_k = NULL;
    if (sv) {
        /* the offset must still be kept, or what came after it cannot be replayed */
        struct hr_sio_kept *k = nsp->kept_head;
        while (k && strcmp(k->offset, offset) != 0)
            k = k->next;
        if (!k)
            sv = NULL;
        else
            from_k = k;
    }
    if (!sv && offset) {
        /* not a recovery, but a channel cursor: what the socket's channel rooms missed is
         * replayed as it joins them (herald_join) */
        struct hr_cursor cur;
        if (hr_cursor_parse(offset, strlen(offset), &cur) == 0 && cur.epoch[0] &&
            (s->resume = malloc(sizeof(*s->resume))))
            *s->resume = cur;
    }
    json_object_del(s->auth, "pid");
    json_object_del(s->auth, "offset");
    if (sv) {
        memcpy(s->id, sv->sid, sizeof s->id);
        memcpy(s->pid, sv->pid, sizeof s->pid);
        s->recovered = 1;
        s->next_in_client = c->sockets;
        c->sockets = s;
        HASH_ADD_STR(nsp->sockets, id, s);
        s->connected = 1;
        wait_remove(c);
        for (uint32_t i = 0; i < sv->nrooms; i++)
            herald_join(s, sv->rooms[i]);
        char ok[96];
        snprintf(ok, sizeof ok, "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id, s->pid);
        send_packet(c, HR_SIO_CONNECT, name, ok);
        /* what it missed, in order, then the application. A channel room's messages come
         * from the channel's history: from the first one sent after the offset, or else from
         * what the channel had when the socket dropped; each where it was sent among the
         * other packets (a marker), the ones sent while nobody was in the room first. */
        struct hr_cursor *cur = calloc(sv->nrooms ? sv->nrooms : 1, sizeof(*cur));
        for (uint32_t i = 0; cur && i < sv->nrooms; i++) {
            cur[i].id = sv->chan_last[i];
            for (struct hr_sio_kept *k = from_k->next; k; k = k->next)
                if (k->chan_id && strcmp(k->room, sv->rooms[i]) == 0) {
                    if (k->chan_id - 1 < cur[i].id)
                        cur[i].id = k->chan_id - 1;
                    break;
                }
        }
        uint8_t *told = calloc(sv->nrooms ? sv->nrooms : 1, 1);
        for (struct hr_sio_kept *k = from_k->next; k; k = k->next) {
            if (k->chan_id) {
                for (uint32_t i = 0; cur && told && i < sv->nrooms; i++) {
                    struct hr_sio_room *r;
                    if (strcmp(k->room, sv->rooms[i]) != 0)
                        continue;
                    HASH_FIND_STR(nsp->rooms, sv->rooms[i], r);
                    if (r && r->sub.ch && cur[i].id < k->chan_id) {
                        replay_channel(s, r->sub.ch, &cur[i], k->chan_id, told[i]);
                        told[i] = 1;
                    }
                }
                continue;
            }
            if (strcmp(k->except, sv->sid) == 0 || (k->room && !saved_in_room(sv, k->room)))
                continue;
            emit_raw(s, k->event, k->raw, k->raw_len, k->bins, k->nbins);
        }
        for (uint32_t i = 0; cur && told && i < sv->nrooms; i++) {
            struct hr_sio_room *r;
            HASH_FIND_STR(nsp->rooms, sv->rooms[i], r);
            if (r && r->sub.ch)
                replay_channel(s, r->sub.ch, &cur[i], UINT64_MAX, told[i]);
        }
        free(cur);
        free(told);
        saved_free(io, sv);
        if (nsp->on_connection)
            nsp->on_connection(s, nsp->conn_ud);
        return;
    }
    for (herald_socket *other = s; other;) {
        hr_random_id(s->id);
        HASH_FIND_STR(nsp->sockets, s->id, other);
    }
    s->next_in_client = c->sockets;
    c->sockets = s;
    for (uint32_t i = 0; i < nsp->nmw; i++) {
        const char *refusal = nsp->mw[i].cb(s, s->auth, nsp->mw[i].ud);
        if (refusal) {
            json_t *err = json_pack("{s:s}", "message", refusal);
            size_t tlen;
            char *text = err ? args_text(err, &tlen) : NULL;
            send_packet(c, HR_SIO_CONNECT_ERROR, name, text ? text : "{\"message\":\"refused\"}");
            free(text);
            json_decref(err);
            socket_gone(s, "server namespace disconnect");
            return;
        }
    }
    HASH_ADD_STR(nsp->sockets, id, s);
    s->connected = 1;
    wait_remove(c);
    herald_join(s, s->id);
    char ok[96];
    if (io->opts.recovery_window_ms) {
        hr_random_id(s->pid);
        snprintf(ok, sizeof ok, "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id, s->pid);
    } else {
        snprintf(ok, sizeof ok, "{\"sid\":\"%s\"}", s->id);
    }
    send_packet(c, HR_SIO_CONNECT, name, ok);
    if (nsp->on_connection)
        nsp->on_connection(s, nsp->conn_ud);
    /* the cursor applies to the rooms joined while connecting, not to later joins */
    free(s->resume);
    s->resume = NULL;
}

/* ---- arguments ---------------------------------------------------------------------------- */

const char *herald_args_raw(const herald_args *a, size_t *len)
{
    if (len)
        *len = a->raw_len;
    return a->raw;
}

json_t *herald_arg(const herald_args *a, size_t i)
{
    return json_array_get(herald_args_json(a), i);
}

json_t *herald_args_json(const herald_args *a)
{
    herald_args *m = (herald_args *)a;
    if (!m->parsed) {
        /* the raw text was validated; wrap it back into its array */
        char *t = malloc(a->raw_len + 3);
        if (!t)
            return NULL;
        t[0] = '[';
        memcpy(t + 1, a->raw, a->raw_len);
        t[a->raw_len + 1] = ']';
        t[a->raw_len + 2] = '\0';
        m->parsed = json_loadb(t, a->raw_len + 2, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        free(t);
    }
    return m->parsed;
}

size_t herald_args_count(const herald_args *a)
{
    const json_t *j = herald_args_json(a);
    return j ? json_array_size(j) : 0;
}

size_t herald_args_binaries(const herald_args *a) { return a->nbins; }

const uint8_t *herald_args_binary(const herald_args *a, size_t i, size_t *len)
{
    if (i >= a->nbins)
        return NULL;
    if (len)
        *len = a->bins[i]->len;
    return (const uint8_t *)a->bins[i]->data;
}

/* ---- packets from a client ---------------------------------------------------------------- */

static void dispatch_event(herald_socket *s, const struct hr_sio_packet *p, herald_args *args)
{
    herald_ack ack = {s, (uint64_t)p->ack_id, 0, 0};
    herald_ack *ackp = p->ack_id >= 0 ? &ack : NULL;
    int handled = 0;
    for (uint32_t i = 0; i < s->nhandlers && s->connected; i++) {
        if (strcmp(s->handlers[i].event, p->name) == 0) {
            s->handlers[i].cb(s, args, ackp, s->handlers[i].ud);
            handled = 1;
            break;
        }
    }
    if (!handled && s->any_cb && s->connected)
        s->any_cb(s, p->name, args, ackp, s->any_ud);
}

static void dispatch_ack(herald_socket *s, const struct hr_sio_packet *p, herald_args *args)
{
    for (uint32_t i = 0; i < s->nacks; i++) {
        if (s->acks[i].id != (uint64_t)p->ack_id)
            continue;
        struct hr_sio_pending_ack a = s->acks[i];
        s->acks[i] = s->acks[--s->nacks];
        if (a.cb)
            a.cb(s, args, a.ud);
        return;
    }
}

/* A complete packet (attachments collected). Returns 0 or HR_EINVAL (close the client). */
static int on_packet(struct hr_sio_client *c, const struct hr_sio_packet *p, struct hr_buf **bins,
                     size_t nbins)
{
    switch (p->type) {
    case HR_SIO_CONNECT:
        on_connect(c, p);
        return 0;
    case HR_SIO_DISCONNECT: {
        herald_socket *s = client_socket(c, p->nsp, p->nsp_len);
        if (s)
            socket_gone(s, "client namespace disconnect");
        return 0;
    }
    case HR_SIO_EVENT:
    case HR_SIO_BINARY_EVENT:
    case HR_SIO_ACK:
    case HR_SIO_BINARY_ACK: {
        herald_socket *s = client_socket(c, p->nsp, p->nsp_len);
        if (!s || !s->connected)
            return 0; /* not connected to that namespace: dropped, as the reference does */
        const char *raw = p->args;
        size_t raw_len = p->args_len;
        if (p->type == HR_SIO_ACK || p->type == HR_SIO_BINARY_ACK) {
            /* an ACK's payload is the array of arguments: take what is inside the brackets */
            const char *open = memchr(p->data, '[', p->data_len);
            const char *close = p->data + p->data_len;
            while (close > open && close[-1] != ']')
                close--;
            raw = open + 1;
            raw_len = (size_t)(close - 1 - raw);
        }
        herald_args args = {raw, raw_len, NULL, bins, nbins};
        if (p->type == HR_SIO_EVENT || p->type == HR_SIO_BINARY_EVENT)
            dispatch_event(s, p, &args);
        else
            dispatch_ack(s, p, &args);
        json_decref(args.parsed);
        return 0;
    }
    default:
        return HR_EINVAL; /* CONNECT_ERROR never comes from a client */
    }
}

static void partial_clear(struct hr_sio_partial *pp)
{
    for (uint32_t i = 0; i < pp->got; i++)
        hr_buf_unref(pp->bins[i]);
    free(pp->bins);
    free(pp->text);
    memset(pp, 0, sizeof(*pp));
}

static void client_message(struct hr_eio_session *es, int binary, const uint8_t *data, size_t len, void *ud)
{
    struct hr_sio_client *c = es->user;
    if (!c)
        return;
    struct hr_sio_partial *pp = &c->partial;
    if (binary) {
        if (!pp->text) {
            hr_eio_close(es, "parse error"); /* an attachment nobody announced */
            return;
        }
        pp->bytes += len;
        if (pp->bytes > (size_t)c->io->opts.max_payload * HR_SIO_ATTACHMENTS_FACTOR) {
            hr_eio_close(es, "parse error"); /* many attachments must not add up without bound */
            return;
        }
        struct hr_buf *b = hr_buf_from(data, len);
        if (!b) {
            hr_eio_close(es, "transport error");
            return;
        }
        pp->bins[pp->got++] = b;
        if (pp->got < pp->expected)
            return;
        struct hr_sio_packet p;
        int rc = hr_sio_decode(pp->text, pp->text_len, &p);
        if (rc == 0)
            rc = on_packet(c, &p, pp->bins, pp->got);
        partial_clear(pp);
        if (rc < 0)
            hr_eio_close(es, "parse error");
        return;
    }
    if (pp->text) {
        hr_eio_close(es, "parse error"); /* text while attachments were due */
        return;
    }
    struct hr_sio_packet p;
    if (hr_sio_decode((const char *)data, len, &p) < 0) {
        hr_eio_close(es, "parse error");
        return;
    }
    if ((p.type == HR_SIO_BINARY_EVENT || p.type == HR_SIO_BINARY_ACK) && p.attachments > 0) {
        pp->text = malloc(len);
        pp->bins = calloc(p.attachments, sizeof(*pp->bins));
        if (!pp->text || !pp->bins) {
            partial_clear(pp);
            hr_eio_close(es, "transport error");
            return;
        }
        memcpy(pp->text, data, len);
        pp->text_len = len;
        pp->expected = p.attachments;
        return;
    }
    if (on_packet(c, &p, NULL, 0) < 0)
        hr_eio_close(es, "parse error");
}

/* ---- connect timeout: an Engine.IO session must join a namespace within connect_timeout_ms
 * (Socket.IO's connectTimeout), or it is closed. The waiting clients form a list in the order
 * they opened, so one timer set for the oldest serves them all. */

static void wait_remove(struct hr_sio_client *c)
{
    herald_io *io = c->io;
    if (!c->waiting)
        return;
    c->waiting = 0;
    if (c->wait_prev)
        c->wait_prev->wait_next = c->wait_next;
    else
        io->wait_head = c->wait_next;
    if (c->wait_next)
        c->wait_next->wait_prev = c->wait_prev;
    else
        io->wait_tail = c->wait_prev;
    c->wait_prev = c->wait_next = NULL;
}

static void connect_timer_cb(uv_timer_t *t)
{
    herald_io *io = t->data;
    uint64_t now = uv_now(io->loop), limit = io->opts.connect_timeout_ms;
    while (io->wait_head && now - io->wait_head->opened >= limit) {
        struct hr_sio_client *c = io->wait_head;
        wait_remove(c);
        hr_eio_close(c->eio, "connect timeout");
    }
    if (io->wait_head)
        uv_timer_start(&io->connect_timer, connect_timer_cb, io->wait_head->opened + limit - now, 0);
}

static int client_open(struct hr_eio_session *es, const struct hr_http_request *req, void *ud)
{
    struct hr_sio_client *c = calloc(1, sizeof(*c));
    if (!c)
        return HR_ENOMEM;
    c->eio = es;
    c->io = ud;
    es->user = c;
    herald_io *io = c->io;
    if (io->opts.connect_timeout_ms) {
        c->opened = uv_now(io->loop);
        c->waiting = 1;
        c->wait_prev = io->wait_tail;
        if (io->wait_tail)
            io->wait_tail->wait_next = c;
        else
            io->wait_head = c;
        io->wait_tail = c;
        if (!uv_is_active((uv_handle_t *)&io->connect_timer))
            uv_timer_start(&io->connect_timer, connect_timer_cb, io->opts.connect_timeout_ms, 0);
    }
    return 0;
}

static void client_close(struct hr_eio_session *es, const char *reason, void *ud)
{
    struct hr_sio_client *c = es->user;
    if (!c)
        return;
    es->user = NULL;
    c->eio = NULL;
    wait_remove(c);
    prefetch_free(c);
    while (c->sockets)
        socket_gone(c->sockets, reason);
    partial_clear(&c->partial);
    free(c);
}

const struct hr_eio_handler hr_sio_eio_handler = {
    .on_open = client_open,
    .on_message = client_message,
    .on_close = client_close,
};

/* Server-to-client acks with a timeout: one timer for all, checked every 100 ms. */
void hr_sio_expire_acks(herald_io *io)
{
    uint64_t now = uv_now(io->loop);
    int pending = 0;
    herald_nsp *nsp, *ntmp;
    HASH_ITER(hh, io->nsps, nsp, ntmp) {
        herald_socket *s, *stmp;
        HASH_ITER(hh, nsp->sockets, s, stmp) {
            for (uint32_t i = 0; i < s->nacks;) {
                if (s->acks[i].deadline && now >= s->acks[i].deadline) {
                    struct hr_sio_pending_ack a = s->acks[i];
                    s->acks[i] = s->acks[--s->nacks];
                    if (a.cb)
                        a.cb(s, NULL, a.ud);
                    continue;
                }
                pending |= s->acks[i].deadline != 0;
                i++;
            }
        }
    }
    if (!pending)
        uv_timer_stop(&io->ack_timer);
}

void hr_sio_free_namespaces(herald_io *io)
{
    while (io->saved)
        saved_free(io, io->saved);
    herald_nsp *nsp, *tmp;
    HASH_ITER(hh, io->nsps, nsp, tmp) {
        while (nsp->kept_head) {
            struct hr_sio_kept *k = nsp->kept_head;
            nsp->kept_head = k->next;
            kept_free(k);
        }
        HASH_DEL(io->nsps, nsp);
        free(nsp->name);
        free(nsp);
    }
}
