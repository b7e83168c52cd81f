/* eio.h - Engine.IO protocol v4 server (docs/engine.io-protocol/v4-current.md): sessions over
 * HTTP long-polling and WebSocket, the upgrade between them, the heartbeat, CORS, and the
 * reference server's error answers. The layer above (Socket.IO) sees sessions and messages. */
#ifndef HR_EIO_EIO_H
#define HR_EIO_EIO_H

#include <stdint.h>
#include <uthash.h>

#include "http/http.h"
#include "http/origin.h"
#include "packet.h"
#include "ws/ws.h"

struct hr_eio;
struct hr_eio_session;

struct hr_eio_opts {
    const char *path;          /* "/socket.io/" or "/engine.io/" */
    uint32_t ping_interval_ms; /* 25000 */
    uint32_t ping_timeout_ms;  /* 20000 */
    uint32_t max_payload;      /* 1000000: a POST body, or one WebSocket message */
    /* the pages that may make requests (others get 403 {"code":4,"message":"Forbidden"}) and
     * read the answers (CORS); NULL: any, answered "Access-Control-Allow-Origin: *" */
    const struct hr_origins *origins;
    uint8_t allow_upgrades; /* offer "websocket" to polling sessions */
    /* workers: a session id's first character names the worker that holds it (0..63, an
     * index into HR_EIO_SID_ALPHABET), so its requests can be taken there; -1: not tagged */
    int8_t worker;
};

#define HR_EIO_SID_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
/* The worker that holds session sid (tagged as above), or -1. */
int hr_eio_sid_worker(const char *sid, size_t len);

#define HR_EIO_OPTS_DEFAULT                                                                        \
    {                                                                                              \
        .path = "/engine.io/", .ping_interval_ms = 25000, .ping_timeout_ms = 20000,                \
        .max_payload = 1000000, .origins = NULL, .allow_upgrades = 1, .worker = -1                 \
    }

struct hr_eio_handler {
    /* A new session; return 0 to keep it. */
    int (*on_open)(struct hr_eio_session *s, const struct hr_http_request *req, void *ud);
    /* A message packet (text is not NUL-terminated; valid during the call). */
    void (*on_message)(struct hr_eio_session *s, int binary, const uint8_t *data, size_t len,
                       void *ud);
    /* The session is gone (reason as the reference server names it: "transport close",
     * "ping timeout", "parse error", "forced close", "transport error", "server shutting down").
     * s->user must be released here. */
    void (*on_close)(struct hr_eio_session *s, const char *reason, void *ud);
    /* Optional: the session's output drained (the WebSocket's fell below its low watermark,
     * or a poll took the queue): what was held back for a slow reader may go on. */
    void (*on_drain)(struct hr_eio_session *s, void *ud);
    /* Optional: the session moved from polling to its WebSocket (the admin UI shows it). */
    void (*on_upgrade)(struct hr_eio_session *s, void *ud);
};

enum { HR_EIO_POLLING = 0, HR_EIO_WEBSOCKET = 1 };

/* One message encoded for both transports, shared by every session it is sent to: the
 * WebSocket frame, and the polling record (for text the frame's payload itself). */
struct hr_eio_msg {
    struct hr_buf *frame;
    struct hr_slice record;
};
/* Build a message (binary: raw bytes; text: UTF-8). Release with hr_eio_msg_release. */
int hr_eio_msg_init(struct hr_eio_msg *m, int binary, const void *data, size_t len);
void hr_eio_msg_release(struct hr_eio_msg *m);
/* A text message built in place, so its payload is copied once: the frame for a payload of
 * len bytes with its header and type written; the caller writes the len bytes at *payload. */
struct hr_buf *hr_eio_text_frame(size_t len, char **payload);
/* The message of such a frame; m takes the caller's reference (hr_eio_msg_release). */
void hr_eio_msg_of_frame(struct hr_eio_msg *m, struct hr_buf *frame);

/* A session's polling state (and an upgrade's): a session has it while it polls, and gives
 * it up once it runs over WebSocket; one opened over WebSocket never has it. */
struct hr_eio_poll {
    struct hr_eio_session *s;
    struct hr_conn *get;    /* a held polling GET */
    struct hr_ws *probe;    /* a WebSocket being upgraded to */
    struct hr_slice *queue; /* packets waiting for the next GET */
    uint32_t queue_len, queue_cap;
    size_t queue_bytes;
    struct hr_budget_queue bq; /* the queue, charged to the memory budget */
};

struct hr_eio_session {
    char sid[24];
    UT_hash_handle hh;
    struct hr_eio *eio;
    void *user;               /* the layer above's (a Socket.IO client) */
    struct hr_ws *ws;         /* the WebSocket transport, once it is the transport */
    struct hr_eio_poll *poll; /* while polling or upgrading (server.c) */
    struct hr_eio_session *hb_prev, *hb_next; /* its heartbeat list (server.c) */
    uint64_t deadline;                        /* loop time (ms) its next ping or pong is due */
    uint8_t hb_list;                          /* which list; 0: none */
    uint8_t transport;
    uint8_t upgrading; /* probe answered; waiting for the upgrade packet (polls
                        * are answered with a noop meanwhile) */
    uint8_t awaiting_pong;
    uint8_t slow; /* closing as a slow consumer (hr_eio_close_slow) */
    uint8_t closed;
};

struct hr_eio {
    struct hr_server *srv;
    struct hr_eio_opts opts;
    const struct hr_eio_handler *h;
    void *ud;
    struct hr_eio_session *sessions; /* by sid */
    struct hr_buf *sep;              /* the record separator, shared by every poll answer */
    struct hr_ws_handler ws_handler; /* its max_message is opts.max_payload */
    uint32_t count;
    /* the sessions' heartbeats: one timer (while there are sessions) and deadline-ordered
     * lists of sessions (server.c); closed sessions wait on dead to be freed */
    uv_timer_t *hb;
    uint64_t hb_due;
    struct hr_eio_session *hb_head[4], *hb_tail[4];
    struct hr_eio_session *dead;
    /* the polling POST whose packets are being handled, or NULL (hr_eio_message_conn) */
    struct hr_conn *post;
};

int hr_eio_init(struct hr_eio *eio, struct hr_server *srv, const struct hr_eio_opts *opts,
                const struct hr_eio_handler *h, void *ud);
/* Add the routes (GET, POST, OPTIONS on opts.path) to a router. */
int hr_eio_route(struct hr_eio *eio, struct hr_router *router);
/* Close every session ("server shutting down"); call when the server stops. */
void hr_eio_shutdown(struct hr_eio *eio);
void hr_eio_free(struct hr_eio *eio);

/* The connection the message being handled (on_message) came on: the session's WebSocket's,
 * or the polling POST's; NULL outside on_message while polling. */
struct hr_conn *hr_eio_message_conn(const struct hr_eio_session *s);

/* Send a message packet to one session. */
int hr_eio_send(struct hr_eio_session *s, const struct hr_eio_msg *m);
/* Bytes waiting to reach the client (the polling queue, or the WebSocket's output). */
size_t hr_eio_queued(const struct hr_eio_session *s);

/* A text message frame (hr_eio_text_frame) shared by many sessions: each takes a reference
 * (a slice of it while polling), nothing is copied. hr_eio_send_frame applies Engine.IO's
 * slow-consumer cap as hr_eio_send does, except that the close comes after the current loop
 * turn (hr_eio_close_slow), so a caller inside a fan-out never sees the session freed;
 * hr_eio_queue_frame queues whatever the output holds (the caller bounds it: hr_eio_over). */
int hr_eio_send_frame(struct hr_eio_session *s, struct hr_buf *frame);
int hr_eio_queue_frame(struct hr_eio_session *s, struct hr_buf *frame);
/* The output is over --max-queued (or the memory budget picked it): a slow reader. */
int hr_eio_over(const struct hr_eio_session *s);
/* The output holds enough for now (a replay waits for on_drain). */
int hr_eio_full(const struct hr_eio_session *s);
/* The session is closed or closing: nothing more reaches the client. */
int hr_eio_closing(const struct hr_eio_session *s);
/* Close a slow consumer as hr_eio_send would (WebSocket: 1008 "slow consumer"; polling:
 * "transport error"), never inside the call: the session stays valid until the loop turns. */
void hr_eio_close_slow(struct hr_eio_session *s);
/* Close a session from the server side (sends a close packet first). */
void hr_eio_close(struct hr_eio_session *s, const char *reason);

#endif
