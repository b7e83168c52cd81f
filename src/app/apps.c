/* apps.c - the applications the herald binary serves.
 *
 * chat: the tutorial's Express + Socket.IO server, written with herald's C API: every new
 *   client gets {"type":"init","message":"欢迎连接"} as a "message" event, and every "message"
 *   event reaches everyone, sender included, byte for byte - through the channel "chat", so
 *   it is kept in history and shared with the SSE, polling and WebSocket channel readers.
 * conformance-sio / conformance-eio: the servers the official Socket.IO v5 and Engine.IO v4
 *   test suites (in the socket.io repository, docs/engine.io-protocol and
 *   docs/socket.io-protocol) are written against. */
#include "apps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "hub/hub.h"
#include "sio/sio.h"

/* The attachments of received arguments, to relay them as they came. */
static size_t bins_of(const herald_args *a, struct herald_bin *out, size_t max)
{
    size_t n = herald_args_binaries(a);
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        out[i].data = herald_args_binary(a, i, &out[i].len);
    return n;
}

#define MAX_BINS 64

/* ---- chat --------------------------------------------------------------------------------- */

/* The room everyone joins is the channel "chat": a message goes into its history (so a
 * client that reconnects, or reads /sse/chat or /poll/chat, gets it too) and reaches every
 * socket in the room, sender included, as io.emit('message', msg) did in the tutorial. */
#define CHAT_CHANNEL "chat"

/* Messages leave in the order they came. A channel message reaches the room once it is
 * stored (a loop turn later, or more with SQLite), so a message relayed directly (binary, or
 * several arguments) that came after it waits for it. */
struct relay {
    struct relay *next;
    uint64_t after;              /* channel publishes to deliver first */
    herald_nsp *nsp;
    char *raw;
    size_t len, n;
    struct herald_bin bins[MAX_BINS]; /* copies */
};

static uint64_t chat_published_seq, chat_delivered_seq;
static struct relay *relay_head, *relay_tail;

static void relay_flush(void)
{
    while (relay_head && relay_head->after <= chat_delivered_seq) {
        struct relay *r = relay_head;
        relay_head = r->next;
        if (!relay_head)
            relay_tail = NULL;
        herald_broadcast_raw(r->nsp, NULL, NULL, "message", r->raw, r->len, r->bins, r->n);
        for (size_t i = 0; i < r->n; i++)
            free((void *)r->bins[i].data);
        free(r->raw);
        free(r);
    }
}

static void chat_published(int status, uint64_t id, void *ud)
{
    chat_delivered_seq++;
    relay_flush();
}

static void relay(herald_nsp *nsp, const char *raw, size_t len, const struct herald_bin *bins, size_t n)
{
    if (chat_delivered_seq == chat_published_seq) {
        herald_broadcast_raw(nsp, NULL, NULL, "message", raw, len, bins, n);
        return;
    }
    struct relay *r = calloc(1, sizeof(*r));
    if (!r || !(r->raw = malloc(len ? len : 1))) {
        free(r);
        return;
    }
    memcpy(r->raw, raw, len);
    r->len = len;
    r->nsp = nsp;
    r->after = chat_published_seq;
    for (; r->n < n; r->n++) {
        void *copy = malloc(bins[r->n].len ? bins[r->n].len : 1);
        if (!copy)
            break;
        memcpy(copy, bins[r->n].data, bins[r->n].len);
        r->bins[r->n] = (struct herald_bin){copy, bins[r->n].len};
    }
    if (relay_tail)
        relay_tail->next = r;
    else
        relay_head = r;
    relay_tail = r;
}

static void chat_message(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    size_t len;
    const char *raw = herald_args_raw(a, &len);
    struct herald_bin bins[MAX_BINS];
    size_t n = bins_of(a, bins, MAX_BINS);
    if (n == 0 && herald_args_count(a) == 1) {
        int rc = herald_publish_raw(herald_socket_io(s), CHAT_CHANNEL, raw, len, chat_published, NULL);
        if (rc == 0) {
            chat_published_seq++;
            return;
        }
        if (rc == HR_EBUSY) {
            /* over the memory budget: neither stored nor relayed; the sender is told (and its
             * ack, if it asked for one, says so) */
            json_t *why = json_pack("{s:s,s:i}", "error", "over the memory budget: try again later", "retry_after", 1);
            if (ack)
                herald_ack_send(ack, json_pack("[O]", why));
            herald_emit(s, "herald:error", json_pack("[O]", why));
            json_decref(why);
            return;
        }
    }
    /* several arguments or binary ones are not a channel message: relay them as they are */
    relay(herald_socket_nsp(s), raw, len, bins, n);
}

static void chat_disconnect(herald_socket *s, const char *reason, void *ud)
{
    hr_info("user disconnected: %s (%s)", herald_id(s), reason);
}

static void chat_connection(herald_socket *s, void *ud)
{
    hr_info("user connected: %s", herald_id(s));
    herald_send(s, json_pack("{s:s,s:s}", "type", "init", "message", "欢迎连接"));
    herald_join(s, CHAT_CHANNEL);
    /* a client that names its user also gets that user's channel, "user:{name}" (the unread
     * counter of the mail page); who may claim which name is the security layer's to decide */
    const char *user = json_string_value(json_object_get(herald_auth(s), "user"));
    char room[HR_CHANNEL_NAME_MAX + 1];
    int n = user ? snprintf(room, sizeof room, "user:%s", user) : -1;
    if (n > 0 && (size_t)n < sizeof room && hr_channel_name_valid(room, (size_t)n))
        herald_join(s, room);
    herald_on(s, "message", chat_message, NULL);
    herald_on_disconnect(s, chat_disconnect, NULL);
}

/* ---- conformance-sio ---------------------------------------------------------------------- */

static void sio_message(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    size_t len;
    const char *raw = herald_args_raw(a, &len);
    struct herald_bin bins[MAX_BINS];
    herald_emit_raw(s, "message-back", raw, len, bins, bins_of(a, bins, MAX_BINS));
}

static void sio_message_ack(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    size_t len;
    const char *raw = herald_args_raw(a, &len);
    struct herald_bin bins[MAX_BINS];
    if (ack)
        herald_ack_send_raw(ack, raw, len, bins, bins_of(a, bins, MAX_BINS));
}

static void sio_connection(herald_socket *s, void *ud)
{
    herald_emit(s, "auth", json_pack("[O]", herald_auth(s)));
    herald_on(s, "message", sio_message, NULL);
    herald_on(s, "message-with-ack", sio_message_ack, NULL);
}

/* ---- conformance-eio ---------------------------------------------------------------------- */

static int eio_open(struct hr_eio_session *s, const struct hr_http_request *req, void *ud)
{
    return 0;
}

static void eio_echo(struct hr_eio_session *s, int binary, const uint8_t *data, size_t len, void *ud)
{
    struct hr_eio_msg m;
    if (hr_eio_msg_init(&m, binary, data, len) == 0) {
        hr_eio_send(s, &m);
        hr_eio_msg_release(&m);
    }
}

static const struct hr_eio_handler eio_app = {.on_open = eio_open, .on_message = eio_echo};

herald_io *hr_app_create(const char *name, int argc, char **argv, int *status)
{
    struct herald_options o;
    herald_options_init(&o);
    int rc = herald_options_parse(&o, argc, argv);
    if (rc != 0) {
        *status = rc > 0 ? 0 : 2;
        return NULL;
    }
    if (!hr_sio_app_name)
        hr_sio_app_name = name;
    name = hr_sio_app_name;
    if (strncmp(name, "conformance-", 12) == 0) {
        /* the suites' timings, unless flags say otherwise (parsed again over these) */
        o.ping_interval_ms = 300;
        o.ping_timeout_ms = 200;
        o.recovery_window_ms = 0; /* the suites expect a CONNECT answer with "sid" only */
        if (strcmp(name, "conformance-eio") == 0)
            o.path = "/engine.io/";
        herald_options_parse(&o, argc, argv);
    }
    herald_io *io = strcmp(name, "conformance-eio") == 0 ? hr_sio_new_eio(&o, &eio_app) : herald_new(&o);
    if (!io) {
        *status = 1;
        return NULL;
    }
    if (strcmp(name, "chat") == 0) {
        herald_on_connection(herald_of(io, "/"), chat_connection, NULL);
    } else if (strcmp(name, "conformance-sio") == 0) {
        herald_on_connection(herald_of(io, "/"), sio_connection, NULL);
        herald_on_connection(herald_of(io, "/custom"), sio_connection, NULL);
    }
    return io;
}
