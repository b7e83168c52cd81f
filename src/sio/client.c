/* client.c - a Socket.IO client (one per Engine.IO session) and its sockets: their lifecycle,
 * and the packets that come from it (events, acks, binary attachments). */
#include <stdlib.h>
#include <string.h>

#include "chan/push.h"
#include "core/array.h"
#include "core/error.h"
#include "internal.h"
#include "recovery.h"

/* ---- sockets ------------------------------------------------------------------------------ */

const char *herald_id(const herald_socket *s)
{
    return s->id;
}
herald_nsp *herald_socket_nsp(herald_socket *s)
{
    return s->nsp;
}
const json_t *herald_auth(const herald_socket *s)
{
    return s->auth;
}
void herald_set_data(herald_socket *s, void *data)
{
    s->data = data;
}
void *herald_data(const herald_socket *s)
{
    return s->data;
}
int herald_recovered(const herald_socket *s)
{
    return s->recovered;
}

void herald_on(herald_socket *s, const char *event, herald_event_cb cb, void *ud)
{
    size_t len = strlen(event);
    struct hr_sio_handler *h = malloc(sizeof(*h) + len + 1);
    if (!h)
        return;
    *h = (struct hr_sio_handler){.cb = cb, .ud = ud};
    memcpy(h->event, event, len + 1);
    struct hr_sio_handler **tail = &s->handlers;
    while (*tail)
        tail = &(*tail)->next;
    *tail = h;
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
void hr_sio_socket_gone(herald_socket *s, const char *reason)
{
    if (s->connected) {
        hr_sio_save_session(s, reason);
        s->connected = 0;
        if (s->disconnect_cb)
            s->disconnect_cb(s, reason, s->disconnect_ud);
        HASH_DEL(s->nsp->sockets, s);
        if (s->nsp->io->admin)
            hr_sio_admin_disconnected(s, reason);
    }
    while (s->rooms)
        herald_leave(s, s->rooms->room->name);
    s->own_room = 0;
    for (uint32_t i = 0; s->acks && i < s->acks->n; i++)
        if (s->acks->a[i].cb)
            s->acks->a[i].cb(s, NULL, s->acks->a[i].ud);
    herald_socket **pp = &s->client->sockets;
    while (*pp && *pp != s)
        pp = &(*pp)->next_in_client;
    if (*pp)
        *pp = s->next_in_client;
    while (s->handlers) {
        struct hr_sio_handler *h = s->handlers;
        s->handlers = h->next;
        free(h);
    }
    if (s->acks)
        free(s->acks->a);
    free(s->acks);
    json_decref(s->auth);
    hr_sio_auth_free(s);
    if (s->nsp->io->resume_for == s)
        s->nsp->io->resume_for = NULL;
    free(s);
}

void herald_disconnect(herald_socket *s, int close)
{
    struct hr_sio_client *c = s->client;
    if (s->connected)
        hr_sio_send_packet(c, HR_SIO_DISCONNECT, s->nsp->name, NULL);
    hr_sio_socket_gone(s, "server namespace disconnect");
    if (close && c->eio)
        hr_eio_close(c->eio, "forced close");
}

herald_socket *hr_sio_client_socket(struct hr_sio_client *c, const char *nsp, size_t len)
{
    for (herald_socket *s = c->sockets; s; s = s->next_in_client)
        if (strlen(s->nsp->name) == len && memcmp(s->nsp->name, nsp, len) == 0)
            return s;
    return NULL;
}

herald_io *herald_socket_io(herald_socket *s)
{
    return s->nsp->io;
}

/* ---- packets from a client ---------------------------------------------------------------- */

static void dispatch_event(herald_socket *s, const struct hr_sio_packet *p, herald_args *args)
{
    herald_ack ack = {s, (uint64_t)p->ack_id, 0, 0};
    herald_ack *ackp = p->ack_id >= 0 ? &ack : NULL;
    int handled = 0;
    if (strcmp(p->name, "herald:refresh") == 0) {
        hr_sio_auth_refresh(s, args, ackp);
        return;
    }
    if (s->nsp->io->admin)
        hr_sio_admin_event(s, p->name, args);
    for (struct hr_sio_handler *h = s->handlers; h && s->connected; h = h->next) {
        if (strcmp(h->event, p->name) == 0) {
            h->cb(s, args, ackp, h->ud);
            handled = 1;
            break;
        }
    }
    if (!handled && s->any_cb && s->connected)
        s->any_cb(s, p->name, args, ackp, s->any_ud);
}

static void dispatch_ack(herald_socket *s, const struct hr_sio_packet *p, herald_args *args)
{
    struct hr_sio_acks *acks = s->acks;
    for (uint32_t i = 0; acks && i < acks->n; i++) {
        if (acks->a[i].id != (uint64_t)p->ack_id)
            continue;
        struct hr_sio_pending_ack a = acks->a[i];
        acks->a[i] = acks->a[--acks->n];
        if (a.cb)
            a.cb(s, args, a.ud);
        return;
    }
}

/* Tell s that something it sent was refused: its ack if the packet asked for one, else the
 * event herald:error (herald's error event: "error" is no reserved name of socket.io-client 4,
 * but an app may well use it for its own), with {"error":what,"limit":limit} and, when given,
 * "retry_after" (seconds). */
static void tell_refused(herald_socket *s, herald_ack *ack, const char *what, uint32_t limit,
                         uint32_t retry_s)
{
    json_t *why = json_pack("{s:s,s:i}", "error", what, "limit", (json_int_t)limit);
    if (why && retry_s)
        json_object_set_new(why, "retry_after", json_integer(retry_s));
    if (!why)
        return;
    if (ack && !ack->done) {
        herald_ack_send(ack, json_pack("[O]", why));
    } else {
        herald_emit(s, "herald:error", json_pack("[O]", why));
    }
    json_decref(why);
}

/* An event against the client's --max-msg-rate: 1 to handle it; 0 when it was dropped (the
 * socket told) or, the refusals persisting, the socket disconnected (DISCONNECT, then the
 * Engine.IO session closed: the client sees "io server disconnect"). */
static int rate_take(struct hr_sio_client *c, herald_socket *s, const struct hr_sio_packet *p)
{
    struct hr_server *srv = c->eio->eio->srv;
    int q = hr_server_msg_take(srv, &c->rate);
    if (q == HR_QUOTA_OK)
        return 1;
    if (q == HR_QUOTA_CLOSE)
        herald_disconnect(s, 1);
    else {
        herald_ack ack = {s, (uint64_t)p->ack_id, 0, 0};
        tell_refused(s, p->ack_id >= 0 ? &ack : NULL, "rate limit exceeded",
                     srv->limits.max_msg_rate, 0);
    }
    return 0;
}

int herald_publish_quota(herald_socket *s, herald_ack *ack)
{
    herald_io *io = s->nsp->io;
    struct hr_conn *conn = s->client && s->client->eio ? hr_eio_message_conn(s->client->eio) : NULL;
    uint32_t retry_s = 0;
    if (!io->publish || !conn ||
        hr_chan_publish_take(io->publish, conn, herald_user(s),
                             s->who && s->who->kind == HR_PRINCIPAL_KEY, &retry_s) == HR_QUOTA_OK)
        return 0;
    tell_refused(s, ack, "publish rate exceeded", io->publish->rate.rate, retry_s);
    return HR_AGAIN;
}

/* A complete packet (attachments collected). Returns 0 or HR_EINVAL (close the client). */
static int on_packet(struct hr_sio_client *c, const struct hr_sio_packet *p, struct hr_buf **bins,
                     size_t nbins)
{
    switch (p->type) {
    case HR_SIO_CONNECT: hr_sio_on_connect(c, p); return 0;
    case HR_SIO_DISCONNECT: {
        herald_socket *s = hr_sio_client_socket(c, p->nsp, p->nsp_len);
        if (s)
            hr_sio_socket_gone(s, "client namespace disconnect");
        return 0;
    }
    case HR_SIO_EVENT:
    case HR_SIO_BINARY_EVENT:
    case HR_SIO_ACK:
    case HR_SIO_BINARY_ACK: {
        herald_socket *s = hr_sio_client_socket(c, p->nsp, p->nsp_len);
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
        if ((p->type == HR_SIO_EVENT || p->type == HR_SIO_BINARY_EVENT) && !rate_take(c, s, p))
            return 0;
        if (p->type == HR_SIO_EVENT || p->type == HR_SIO_BINARY_EVENT)
            dispatch_event(s, p, &args);
        else
            dispatch_ack(s, p, &args);
        json_decref(args.parsed);
        return 0;
    }
    default: return HR_EINVAL; /* CONNECT_ERROR never comes from a client */
    }
}

/* A binary packet and the attachments it got (it exists only while they are due). */
static void partial_free(struct hr_sio_partial *pp)
{
    if (!pp)
        return;
    for (uint32_t i = 0; i < pp->got; i++)
        hr_buf_unref(pp->bins[i]);
    free(pp->bins);
    free(pp->text);
    free(pp);
}

static void client_message_cb(struct hr_eio_session *es, int binary, const uint8_t *data,
                              size_t len, void *ud)
{
    struct hr_sio_client *c = es->user;
    if (!c)
        return;
    if (c->io->admin)
        hr_sio_admin_count(c->io, HR_ADMIN_PACKETS_IN, len);
    struct hr_sio_partial *pp = c->partial;
    if (binary) {
        if (!pp) {
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
        /* complete: the packet is this call's now (a handler may close the client) */
        c->partial = NULL;
        struct hr_sio_packet p;
        int rc = hr_sio_decode(pp->text, pp->text_len, &p);
        if (rc == 0)
            rc = on_packet(c, &p, pp->bins, pp->got);
        partial_free(pp);
        if (rc < 0)
            hr_eio_close(es, "parse error");
        return;
    }
    if (pp) {
        hr_eio_close(es, "parse error"); /* text while attachments were due */
        return;
    }
    struct hr_sio_packet p;
    if (hr_sio_decode((const char *)data, len, &p) < 0) {
        hr_eio_close(es, "parse error");
        return;
    }
    if ((p.type == HR_SIO_BINARY_EVENT || p.type == HR_SIO_BINARY_ACK) && p.attachments > 0) {
        pp = calloc(1, sizeof(*pp));
        if (pp) {
            pp->text = malloc(len);
            pp->bins = calloc(p.attachments, sizeof(*pp->bins));
        }
        if (!pp || !pp->text || !pp->bins) {
            partial_free(pp);
            hr_eio_close(es, "transport error");
            return;
        }
        memcpy(pp->text, data, len);
        pp->text_len = len;
        pp->expected = p.attachments;
        c->partial = pp;
        return;
    }
    if (on_packet(c, &p, NULL, 0) < 0)
        hr_eio_close(es, "parse error");
}

static int client_open_cb(struct hr_eio_session *es, const struct hr_http_request *req, void *ud)
{
    struct hr_sio_client *c = calloc(1, sizeof(*c));
    if (!c)
        return HR_ENOMEM;
    c->eio = es;
    c->io = ud;
    es->user = c;
    hr_sio_wait_add(c);
    if (c->io->admin)
        hr_sio_admin_client_open(c, es, req);
    return 0;
}

static void client_upgrade_cb(struct hr_eio_session *es, void *ud)
{
    struct hr_sio_client *c = es->user;
    (void)ud;
    if (c && c->io->admin)
        hr_sio_admin_upgraded(c);
}

static void client_close_cb(struct hr_eio_session *es, const char *reason, void *ud)
{
    struct hr_sio_client *c = es->user;
    if (!c)
        return;
    es->user = NULL;
    c->eio = NULL;
    hr_sio_wait_remove(c);
    hr_sio_prefetch_free(c);
    hr_sio_moving_free(c);
    while (c->sockets)
        hr_sio_socket_gone(c->sockets, reason);
    if (c->io->admin)
        hr_sio_admin_client_close(c, reason);
    partial_free(c->partial);
    free(c);
}

const struct hr_eio_handler hr_sio_eio_handler = {
    .on_open = client_open_cb,
    .on_message = client_message_cb,
    .on_close = client_close_cb,
    .on_drain = hr_sio_client_drain_cb,
    .on_upgrade = client_upgrade_cb,
};
