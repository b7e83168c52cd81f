/* emit.c - outgoing Socket.IO packets (docs/socket.io-protocol/v5-current.md): events to a
 * socket, broadcasts encoded once per wire format, acks both ways, and the arguments the
 * application reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "core/error.h"
#include "core/json.h"
#include "internal.h"
#include "recovery.h"

/* ---- sending ------------------------------------------------------------------------------ */

/* Encode "<type>[<n>-][<nsp>,][<id>]" + payload into one Engine.IO message and the binary
 * attachments into their own, then hand them to each target's session. */
struct outgoing {
    struct hr_eio_msg text;
    struct hr_eio_msg *bins;
    size_t nbins;
};

static int out_init(struct outgoing *o, int type, const herald_nsp *nsp, int64_t ack_id,
                    const char *event, const char *raw, size_t len, const struct herald_bin *bins,
                    size_t nbins)
{
    memset(o, 0, sizeof(*o));
    /* more than a client's socket.io-parser takes ("too many attachments") */
    if (nbins > HR_SIO_MAX_ATTACHMENTS)
        return HR_EINVAL;
    if (nbins)
        type = type == HR_SIO_EVENT ? HR_SIO_BINARY_EVENT : HR_SIO_BINARY_ACK;
    /* the head and the event's name first (a few bytes), then the Engine.IO frame itself, the
     * arguments copied straight into it: one copy, one buffer every target shares */
    struct hr_buf *b =
        hr_sio_encode(type, nsp->name, strlen(nsp->name), ack_id, (uint32_t)nbins, NULL, 0);
    if (!b)
        return HR_ENOMEM;
    uint32_t head = b->len;
    int rc = 0;
    if (event) {
        /* '["<event>"]', checked and escaped; its bracket closes after the arguments */
        if ((rc = hr_sio_append_event(&b, event, NULL, 0)) == 0)
            b->len--;
    } else {
        rc = hr_buf_append(&b, "[", 1);
    }
    int comma = event && len;
    size_t total = b->len + (size_t)comma + len + 1;
    char *p;
    struct hr_buf *f = rc == 0 ? hr_eio_text_frame(total, &p) : NULL;
    if (rc == 0 && !f)
        rc = HR_ENOMEM;
    if (rc == 0) {
        size_t at = b->len;
        memcpy(p, b->data, at);
        if (comma)
            p[at++] = ',';
        if (len)
            memcpy(p + at, raw, len);
        p[at + len] = ']';
        /* Never send what the receiver's parser must refuse: a placeholder naming an
         * attachment that is not there fails the whole packet ("illegal attachments") and
         * makes the client reconnect. What clients sent was checked as it came; this also
         * holds for what the application built, and for recovery replays. Without
         * attachments placeholders are plain objects to the receiver. */
        if (nbins && hr_sio_check_placeholders(p + head, total - head, (uint32_t)nbins, 0)) {
            hr_buf_unref(f);
            rc = HR_EINVAL;
        } else {
            hr_eio_msg_of_frame(&o->text, f);
        }
    }
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
    if (rc == 0 && s->nsp->io->admin)
        hr_sio_admin_count(s->nsp->io, HR_ADMIN_PACKETS_OUT, o->text.frame->len);
    return rc;
}

/* An event to one socket queued whatever its output holds (a notice; the caller bounds it),
 * and never closing the session inside the call. */
int hr_sio_emit_queued(herald_socket *s, const char *event, const char *raw, size_t len)
{
    struct outgoing o;
    int rc = out_init(&o, HR_SIO_EVENT, s->nsp, -1, event, raw, len, NULL, 0);
    if (rc == 0)
        rc = s->connected && s->client->eio ? hr_eio_queue_frame(s->client->eio, o.text.frame)
                                            : HR_ECLOSED;
    out_release(&o);
    return rc;
}

/* Plain control packets to one client: CONNECT answers, CONNECT_ERROR. */
void hr_sio_send_packet(struct hr_sio_client *c, int type, const char *nsp, const char *data)
{
    if (!c->eio)
        return;
    struct hr_buf *b = hr_sio_encode(type, nsp, strlen(nsp), -1, 0, data, data ? strlen(data) : 0);
    struct hr_eio_msg m;
    if (b && hr_eio_msg_init(&m, 0, b->data, b->len) == 0) {
        if (c->io->admin)
            hr_sio_admin_count(c->io, HR_ADMIN_PACKETS_OUT, b->len);
        hr_eio_send(c->eio, &m);
        hr_eio_msg_release(&m);
    }
    hr_buf_unref(b);
}

/* json array -> raw argument text without brackets, as JSON.stringify would write it. */
char *hr_sio_args_text(json_t *args, size_t *len)
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

int hr_sio_emit_raw(herald_socket *s, const char *event, const char *raw, size_t len,
                    const struct herald_bin *bins, size_t nbins)
{
    struct outgoing o;
    int rc = out_init(&o, HR_SIO_EVENT, s->nsp, -1, event, raw, len, bins, nbins);
    if (rc == 0)
        rc = out_send(&o, s);
    out_release(&o);
    return rc;
}

int herald_emit_raw(herald_socket *s, const char *event, const char *raw, size_t len,
                    const struct herald_bin *bins, size_t nbins)
{
    /* with recovery on, an emit to one socket is kept like a broadcast to its own room, with
     * an offset (Socket.IO does the same), so a socket that drops gets it back; that holds
     * too for what is emitted to it while it is going away (its pid was saved) */
    struct hr_sio_kept *k = NULL;
    if (s->nsp->io->admin)
        hr_sio_admin_sent(s, event, raw, len);
    if (s->nsp->io->opts.recovery_window_ms && s->pid[0] &&
        (k = hr_sio_keep(s->nsp, s->id, NULL, event, raw, len, bins, nbins, NULL, 0))) {
        raw = k->raw;
        len = k->raw_len;
    }
    struct outgoing o;
    int rc = out_init(&o, HR_SIO_EVENT, s->nsp, -1, event, raw, len, bins, nbins);
    if (rc == 0) {
        if (k)
            hr_sio_kept_encoded(s->nsp, k, o.text.frame); /* raw is k's: used up now */
        rc = out_send(&o, s);
    }
    out_release(&o);
    return rc;
}

int hr_sio_emit_kept(herald_socket *s, struct hr_sio_kept *k)
{
    if (!k->frame)
        return hr_sio_emit_raw(s, k->event, k->raw, k->raw_len, k->bins, k->nbins);
    if (k->nbins && !k->bin_msgs) {
        struct hr_eio_msg *m = calloc(k->nbins, sizeof(*m));
        size_t cost = 0;
        for (size_t i = 0; m && i < k->nbins; i++) {
            if (hr_eio_msg_init(&m[i], 1, k->bins[i].data, k->bins[i].len) < 0) {
                for (size_t j = 0; j < i; j++)
                    hr_eio_msg_release(&m[j]);
                free(m);
                return HR_ENOMEM;
            }
            cost += 2 * sizeof(struct hr_buf) + m[i].frame->cap + m[i].record.buf->cap;
        }
        if (!m)
            return HR_ENOMEM;
        k->bin_msgs = m;
        k->bytes += cost;
        s->nsp->kept_bytes += cost;
    }
    struct outgoing o = {.bins = k->bin_msgs, .nbins = k->nbins};
    hr_eio_msg_of_frame(&o.text, k->frame); /* borrowed: k keeps its references */
    return out_send(&o, s);
}

int herald_emit(herald_socket *s, const char *event, json_t *args)
{
    size_t len;
    char *raw = hr_sio_args_text(args, &len);
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

/* A broadcast, encoded once: every target's queue shares the one frame. */
size_t hr_sio_broadcast(herald_nsp *nsp, const char *room, herald_socket *except, const char *event,
                        const char *raw, size_t len, const struct herald_bin *bins, size_t nbins)
{
    struct outgoing o;
    size_t n = 0;
    /* with recovery on, a broadcast carries its offset as a last argument (as Socket.IO's
     * session-aware adapter does) and is kept for sockets that come back */
    struct hr_sio_kept *k = NULL;
    if (nsp->io->opts.recovery_window_ms && !nsp->no_recovery &&
        (k = hr_sio_keep(nsp, room, except, event, raw, len, bins, nbins, NULL, 0))) {
        raw = k->raw;
        len = k->raw_len;
    }
    if (out_init(&o, HR_SIO_EVENT, nsp, -1, event, raw, len, bins, nbins) == 0) {
        if (k)
            hr_sio_kept_encoded(nsp, k, o.text.frame); /* replays send this very frame */
        if (room) {
            /* a socket's own room first (it is not a room struct), then the room's members;
             * a send that closes its session (a slow consumer while polling) takes only that
             * socket's membership away */
            herald_socket *own = hr_sio_room_owner(nsp, room);
            if (own && own != except && out_send(&o, own) == 0)
                n++;
            struct hr_sio_room *r;
            HASH_FIND_STR(nsp->rooms, room, r);
            for (struct hr_sio_member *m = r ? r->members : NULL, *next; m; m = next) {
                next = m->next;
                if (m->s != except && out_send(&o, m->s) == 0)
                    n++;
            }
        } else {
            herald_socket *s, *tmp;
            HASH_ITER(hh, nsp->sockets, s, tmp)
            if (s != except && out_send(&o, s) == 0)
                n++;
        }
    }
    out_release(&o);
    return n;
}

size_t herald_broadcast_raw(herald_nsp *nsp, const char *room, herald_socket *except,
                            const char *event, const char *raw, size_t len,
                            const struct herald_bin *bins, size_t nbins)
{
    herald_io *io = nsp->io;
    if (io->relay)
        io->relay(io->relay_ud, nsp->name, room, event, raw, len, bins, nbins);
    return hr_sio_broadcast(nsp, room, except, event, raw, len, bins, nbins);
}

void hr_sio_relayed(herald_io *io, const char *nsp_name, const char *room, const char *event,
                    const char *raw, size_t len, const struct herald_bin *bins, size_t nbins)
{
    herald_nsp *nsp;
    if (io->admin && hr_sio_admin_relayed(io, nsp_name, room, event, raw, len))
        return;
    HASH_FIND_STR(io->nsps, nsp_name, nsp);
    if (nsp)
        hr_sio_broadcast(nsp, room, NULL, event, raw, len, bins, nbins);
}

size_t herald_broadcast(herald_nsp *nsp, const char *room, herald_socket *except, const char *event,
                        json_t *args)
{
    size_t len;
    char *raw = hr_sio_args_text(args, &len);
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
    if (!s->acks && !(s->acks = calloc(1, sizeof(*s->acks))))
        return HR_ENOMEM;
    struct hr_sio_acks *acks = s->acks;
    if (HR_ARRAY_RESERVE(acks->a, acks->cap, (size_t)acks->n + 1, 4) < 0)
        return HR_ENOMEM;
    uint64_t id = acks->next_id++;
    struct outgoing o;
    int rc = out_init(&o, HR_SIO_EVENT, s->nsp, (int64_t)id, event, raw, len, bins, nbins);
    if (rc == 0)
        rc = out_send(&o, s);
    out_release(&o);
    if (rc)
        return rc;
    uint64_t deadline = timeout_ms ? uv_now(s->nsp->io->loop) + timeout_ms : 0;
    acks->a[acks->n++] = (struct hr_sio_pending_ack){id, cb, ud, deadline};
    if (deadline && !uv_is_active((uv_handle_t *)&s->nsp->io->ack_timer))
        uv_timer_start(&s->nsp->io->ack_timer, ack_timer_cb, 100, 100);
    return 0;
}

int herald_emit_ack(herald_socket *s, const char *event, json_t *args, uint32_t timeout_ms,
                    herald_reply_cb cb, void *ud)
{
    size_t len;
    char *raw = hr_sio_args_text(args, &len);
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

int herald_ack_send_raw(herald_ack *ack, const char *raw, size_t len, const struct herald_bin *bins,
                        size_t nbins)
{
    return ack_reply(ack, raw, len, bins, nbins);
}

int herald_ack_send(herald_ack *ack, json_t *args)
{
    size_t len;
    char *raw = hr_sio_args_text(args, &len);
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

/* The arguments were checked when the packet was decoded: counting them needs only the commas
 * outside strings and containers, no parse (the chat room asks for every message). */
size_t herald_args_count(const herald_args *a)
{
    if (a->parsed)
        return json_array_size(a->parsed);
    size_t n = 0, depth = 0;
    int any = 0;
    for (size_t i = 0; i < a->raw_len; i++) {
        char c = a->raw[i];
        switch (c) {
        case '"':
            for (i++; i < a->raw_len && a->raw[i] != '"'; i++)
                if (a->raw[i] == '\\')
                    i++;
            any = 1;
            break;
        case '[':
        case '{': depth++, any = 1; break;
        case ']':
        case '}': depth--; break;
        case ',': n += depth == 0; break;
        case ' ':
        case '\t':
        case '\n':
        case '\r': break;
        default: any = 1; break;
        }
    }
    return any ? n + 1 : 0;
}

size_t herald_args_binaries(const herald_args *a)
{
    return a->nbins;
}

const uint8_t *herald_args_binary(const herald_args *a, size_t i, size_t *len)
{
    if (i >= a->nbins)
        return NULL;
    if (len)
        *len = a->bins[i]->len;
    return (const uint8_t *)a->bins[i]->data;
}

/* Server-to-client acks with a timeout: one timer for all, checked every 100 ms. */
void hr_sio_expire_acks(herald_io *io)
{
    uint64_t now = uv_now(io->loop);
    int pending = 0;
    herald_nsp *nsp, *ntmp;
    HASH_ITER(hh, io->nsps, nsp, ntmp)
    {
        herald_socket *s, *stmp;
        HASH_ITER(hh, nsp->sockets, s, stmp)
        {
            struct hr_sio_acks *acks = s->acks;
            for (uint32_t i = 0; acks && i < acks->n;) {
                if (acks->a[i].deadline && now >= acks->a[i].deadline) {
                    struct hr_sio_pending_ack a = acks->a[i];
                    acks->a[i] = acks->a[--acks->n];
                    if (a.cb)
                        a.cb(s, NULL, a.ud);
                    continue;
                }
                pending |= acks->a[i].deadline != 0;
                i++;
            }
        }
    }
    if (!pending)
        uv_timer_stop(&io->ack_timer);
}
