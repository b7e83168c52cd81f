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

#include "core/budget.h"
#include "core/error.h"
#include "core/log.h"
#include "eio/eio.h"
#include "hub/hub.h"

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
 * several arguments) that came after it waits for it; and a channel message that came after
 * a waiting relay waits behind it, so that every worker (--workers) sees the sender's order:
 * the relay reaches the others before the publish reaches the sequencer. */
struct relay {
    struct relay *next;
    uint64_t after; /* channel publishes to deliver first */
    herald_nsp *nsp;
    herald_io *io; /* a channel message to publish (raw), rather than a relay */
    char *raw;
    size_t len, n;
    struct herald_bin bins[MAX_BINS]; /* copies */
};

/* The chat app's state, one per worker (herald_worker): each orders its own relays. */
struct chat {
    uint64_t published, delivered; /* channel publishes made, and committed */
    struct relay *head, *tail;     /* relays waiting for those publishes */
};

struct chats {
    unsigned n;
    struct chat w[];
};

static void relay_free(struct relay *r)
{
    for (size_t i = 0; i < r->n; i++)
        free((void *)r->bins[i].data);
    free(r->raw);
    free(r);
}

static void chat_published_cb(int status, uint64_t id, void *ud);

static void relay_flush(struct chat *chat)
{
    while (chat->head && chat->head->after <= chat->delivered) {
        struct relay *r = chat->head;
        chat->head = r->next;
        if (!chat->head)
            chat->tail = NULL;
        if (!r->io) {
            herald_broadcast_raw(r->nsp, NULL, NULL, "message", r->raw, r->len, r->bins, r->n);
        } else if (herald_publish_raw(r->io, CHAT_CHANNEL, r->raw, r->len, chat_published_cb,
                                      chat) == 0) {
            /* what comes after it waits for it in turn */
            for (struct relay *q = chat->head; q; q = q->next)
                q->after = chat->published + 1;
            chat->published++;
        } else {
            /* admitted when it came (the budget had room); gone since */
            hr_warn("chat: a message waiting behind a relay could not be stored");
        }
        relay_free(r);
    }
}

static void chat_published_cb(int status, uint64_t id, void *ud)
{
    struct chat *chat = ud;
    chat->delivered++;
    relay_flush(chat);
}

/* Queue a relay (io NULL) or a channel message (io) behind the publishes made so far. */
static int relay(struct chat *chat, herald_nsp *nsp, herald_io *io, const char *raw, size_t len,
                 const struct herald_bin *bins, size_t n)
{
    if (!io && chat->delivered == chat->published) {
        herald_broadcast_raw(nsp, NULL, NULL, "message", raw, len, bins, n);
        return 0;
    }
    struct relay *r = calloc(1, sizeof(*r));
    if (!r || !(r->raw = malloc(len ? len : 1))) {
        free(r);
        return HR_ENOMEM;
    }
    memcpy(r->raw, raw, len);
    r->len = len;
    r->nsp = nsp;
    r->io = io;
    r->after = chat->published;
    for (; r->n < n; r->n++) {
        void *copy = malloc(bins[r->n].len ? bins[r->n].len : 1);
        if (!copy)
            break;
        memcpy(copy, bins[r->n].data, bins[r->n].len);
        r->bins[r->n] = (struct herald_bin){copy, bins[r->n].len};
    }
    if (chat->tail)
        chat->tail->next = r;
    else
        chat->head = r;
    chat->tail = r;
    return 0;
}

/* A message neither stored nor relayed: the sender is told (and its ack, if it asked for one). */
static void refuse(herald_socket *s, herald_ack *ack, json_t *why)
{
    if (ack)
        herald_ack_send(ack, json_pack("[O]", why));
    herald_emit(s, "herald:error", json_pack("[O]", why));
    json_decref(why);
}

static void over_budget(herald_socket *s, herald_ack *ack)
{
    refuse(s, ack,
           json_pack("{s:s,s:i}", "error", "over the memory budget: try again later", "retry_after",
                     1));
}

static void chat_message_cb(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    struct chat *chat = &((struct chats *)ud)->w[herald_worker(herald_socket_io(s))];
    size_t len;
    const char *raw = herald_args_raw(a, &len);
    struct herald_bin bins[MAX_BINS];
    size_t n = bins_of(a, bins, MAX_BINS);
    const char *refusal = herald_may(s, CHAT_CHANNEL, HERALD_PUBLISH);
    if (refusal) {
        refuse(s, ack, json_pack("{s:s}", "error", refusal));
        return;
    }
    if (n == 0 && herald_args_count(a) == 1) {
        /* a channel publish: the sender's --publish-rate (over it, it was told) */
        if (herald_publish_quota(s, ack) < 0)
            return;
        if (chat->head) {
            /* behind a relay that waits: published when its turn comes */
            if (!hr_budget_admit(len))
                over_budget(s, ack);
            else
                relay(chat, herald_socket_nsp(s), herald_socket_io(s), raw, len, NULL, 0);
            return;
        }
        int rc = herald_publish_arg(herald_socket_io(s), CHAT_CHANNEL, a, chat_published_cb, chat);
        if (rc == 0) {
            chat->published++;
            return;
        }
        if (rc == HR_EBUSY) {
            over_budget(s, ack);
            return;
        }
    }
    /* several arguments or binary ones are not a channel message: relay them as they are */
    relay(chat, herald_socket_nsp(s), NULL, raw, len, bins, n);
}

static void chat_disconnect_cb(herald_socket *s, const char *reason, void *ud)
{
    hr_info("user disconnected: %s (%s)", herald_id(s), reason);
}

static void chat_connection_cb(herald_socket *s, void *ud)
{
    hr_info("user connected: %s", herald_id(s));
    herald_send(s, json_pack("{s:s,s:s}", "type", "init", "message", "欢迎连接"));
    const char *refusal = herald_may(s, CHAT_CHANNEL, HERALD_READ);
    if (!refusal)
        herald_join(s, CHAT_CHANNEL);
    else
        herald_emit(s, "herald:error",
                    json_pack("[{s:s,s:s}]", "error", refusal, "channel", CHAT_CHANNEL));
    /* the user's channel, "user:{name}" (the unread counter of the mail page): the token's
     * user; with no token key configured, the name the client gives in auth.user (anyone may
     * read user:* then, on every transport) */
    const char *user = herald_user(s);
    if (!user)
        user = json_string_value(json_object_get(herald_auth(s), "user"));
    char room[HR_CHANNEL_NAME_MAX + 1];
    int n = user ? snprintf(room, sizeof room, "user:%s", user) : -1;
    if (n > 0 && (size_t)n < sizeof room && hr_channel_name_valid(room, (size_t)n)) {
        if ((refusal = herald_may(s, room, HERALD_READ)))
            herald_emit(s, "herald:error",
                        json_pack("[{s:s,s:s}]", "error", refusal, "channel", room));
        else if (herald_join(s, room) == HR_EQUOTA)
            /* over --max-channels: the client learns that its user channel is not read */
            herald_emit(s, "herald:error",
                        json_pack("[{s:s,s:s}]", "error", "too many channels", "channel", room));
    }
    herald_on(s, "message", chat_message_cb, ud);
    herald_on_disconnect(s, chat_disconnect_cb, NULL);
}

/* ---- conformance-sio ---------------------------------------------------------------------- */

static void sio_message_cb(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    size_t len;
    const char *raw = herald_args_raw(a, &len);
    struct herald_bin bins[MAX_BINS];
    herald_emit_raw(s, "message-back", raw, len, bins, bins_of(a, bins, MAX_BINS));
}

static void sio_message_ack_cb(herald_socket *s, const herald_args *a, herald_ack *ack, void *ud)
{
    size_t len;
    const char *raw = herald_args_raw(a, &len);
    struct herald_bin bins[MAX_BINS];
    if (ack)
        herald_ack_send_raw(ack, raw, len, bins, bins_of(a, bins, MAX_BINS));
}

static void sio_connection_cb(herald_socket *s, void *ud)
{
    herald_emit(s, "auth", json_pack("[O]", herald_auth(s)));
    herald_on(s, "message", sio_message_cb, NULL);
    herald_on(s, "message-with-ack", sio_message_ack_cb, NULL);
}

/* ---- conformance-eio ---------------------------------------------------------------------- */

static int eio_open_cb(struct hr_eio_session *s, const struct hr_http_request *req, void *ud)
{
    return 0;
}

static void eio_echo_cb(struct hr_eio_session *s, int binary, const uint8_t *data, size_t len,
                        void *ud)
{
    struct hr_eio_msg m;
    if (hr_eio_msg_init(&m, binary, data, len) == 0) {
        hr_eio_send(s, &m);
        hr_eio_msg_release(&m);
    }
}

static const struct hr_eio_handler eio_app = {.on_open = eio_open_cb, .on_message = eio_echo_cb};

static int chat_start(herald_io *io, void **state)
{
    unsigned n = herald_workers(io);
    struct chats *chats = calloc(1, sizeof(*chats) + n * sizeof(chats->w[0]));
    if (!chats)
        return HR_ENOMEM;
    chats->n = n;
    herald_on_connection(herald_of(io, "/"), chat_connection_cb, chats);
    *state = chats;
    return 0;
}

static void chat_stop(void *state)
{
    struct chats *chats = state;
    for (unsigned i = 0; i < chats->n; i++) {
        while (chats->w[i].head) {
            struct relay *r = chats->w[i].head;
            chats->w[i].head = r->next;
            relay_free(r);
        }
    }
    free(chats);
}

static int sio_start(herald_io *io, void **state)
{
    herald_on_connection(herald_of(io, "/"), sio_connection_cb, NULL);
    herald_on_connection(herald_of(io, "/custom"), sio_connection_cb, NULL);
    return 0;
}

/* The suites' timings: a ping every 300 ms, and a CONNECT answer with "sid" only. */
static void conformance_defaults(struct herald_options *o)
{
    o->ping_interval_ms = 300;
    o->ping_timeout_ms = 200;
    o->recovery_window_ms = 0;
}

static void eio_defaults(struct herald_options *o)
{
    conformance_defaults(o);
    o->path = "/engine.io/";
}

static const struct hr_app apps[] = {
    {.name = "chat", .start = chat_start, .stop = chat_stop},
    {.name = "conformance-eio", .defaults = eio_defaults, .eio = &eio_app},
    {.name = "conformance-sio", .defaults = conformance_defaults, .start = sio_start},
};

const struct hr_app *hr_app_find(const char *name)
{
    for (size_t i = 0; i < sizeof apps / sizeof apps[0]; i++)
        if (strcmp(apps[i].name, name) == 0)
            return &apps[i];
    return NULL;
}

int hr_app_known(const char *name)
{
    return hr_app_find(name) != NULL;
}
