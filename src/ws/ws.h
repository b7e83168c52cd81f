/* ws.h - WebSocket connections (RFC 6455) on top of net/conn: the upgrade, message assembly,
 * control frames, the close handshake, and sending (one frame shared by many sockets). */
#ifndef HR_WS_WS_H
#define HR_WS_WS_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "http/http.h"
#include "http/origin.h"

struct hr_ws;

struct hr_ws_handler {
    uint64_t max_message; /* one message's limit for these sockets; 0: --ws-max-message */
    /* Messages are request bodies (a publish): limit them to --max-body as well, so a
     * declared frame over it is refused at its header, before any payload is buffered. */
    uint8_t max_message_is_body;
    /* Bytes of state the handler keeps per socket, allocated zeroed with the socket itself
     * (hr_ws_data): one block per connection instead of two. */
    uint32_t data_size;
    /* Optional: pick one of the subprotocols the client offered in Sec-WebSocket-Protocol
     * (offered: the comma-separated list as sent). Copy the chosen token into out (NUL-
     * terminated, < outsz) and return 1, or return 0 for none. A token that was not offered
     * is ignored (RFC 6455 §4.2.2). */
    int (*subprotocol)(const struct hr_http_request *req, const char *offered, char *out,
                       size_t outsz, void *ud);
    void (*on_open)(struct hr_ws *ws);
    /* Optional: our output to the peer drained below half of max_queued after being full. */
    void (*on_drain)(struct hr_ws *ws);
    /* A complete message; data is valid only during the call (text is valid UTF-8). */
    void (*on_message)(struct hr_ws *ws, int opcode, const uint8_t *data, size_t len);
    /* Optional: the memory budget is over and our output to this peer is among the largest
     * queues: apply the slow-consumer policy now. Default: close with 1008 "slow consumer". */
    void (*on_shed)(struct hr_ws *ws);
    /* The connection is gone; code is the close code received, or 1006 if none. The socket
     * (and its data) is freed when this returns, unless it calls hr_ws_keep. */
    void (*on_close)(struct hr_ws *ws, uint16_t code);
};

enum { HR_WS_OPEN, HR_WS_CLOSING, HR_WS_CLOSED };

struct hr_ws_partial;

/* An open WebSocket holds only this (and its handler's data): the frame parser's state and a
 * message being assembled exist only while a frame or a message spans reads (part). */
struct hr_ws {
    struct hr_conn *conn;
    const struct hr_ws_handler *h;
    struct hr_ws_partial *part; /* conn.c's; NULL between messages */
    uint16_t close_code;        /* received from the peer; 1006 until then */
    uint8_t state;
    uint8_t paused;     /* reading paused because our output is full */
    uint8_t assembling; /* a message began and is not complete: its deadline runs */
    uint8_t kept;       /* on_close kept the memory (hr_ws_keep) */
    /* followed by h->data_size bytes (hr_ws_data) */
};
_Static_assert(sizeof(struct hr_ws) % _Alignof(uint64_t) == 0 &&
                   sizeof(struct hr_ws) % _Alignof(void *) == 0,
               "a handler's data follows the socket, aligned");

/* The handler's per-socket state (h->data_size zeroed bytes, from the accept on). */
static inline void *hr_ws_data(struct hr_ws *ws)
{
    return ws + 1;
}
/* The socket whose data is d. */
static inline struct hr_ws *hr_ws_of_data(void *d)
{
    return (struct hr_ws *)d - 1;
}
/* From on_close: keep the socket's memory (its data outlives the connection, e.g. for
 * answers still under way); free it later with hr_ws_free. */
void hr_ws_keep(struct hr_ws *ws);
void hr_ws_free(struct hr_ws *ws);

/* Before a route's hr_ws_accept: a handshake whose Origin the list does not allow (cross-site
 * WebSocket hijacking: a browser sends the site's cookies whichever page opens the socket) is
 * answered 403 {"error":"origin not allowed"}, no upgrade; returns 1 then, else 0. origins
 * NULL: any. */
int hr_ws_origin_refused(struct hr_conn *c, const struct hr_http_request *req,
                         const struct hr_origins *origins);
/* Route handler helper: validate the handshake and switch c to WebSocket, or answer the
 * request with the error (426 / 400 / 405, JSON body). Returns 0 when upgraded. */
int hr_ws_upgrade(struct hr_conn *c, struct hr_http_request *req, const struct hr_ws_handler *h,
                  void *ud);
/* The same, returning the new socket (NULL when the handshake was refused and answered). ud
 * goes to h->subprotocol. */
struct hr_ws *hr_ws_accept(struct hr_conn *c, struct hr_http_request *req,
                           const struct hr_ws_handler *h, void *ud);

/* A reply to this peer (echo, acks): when our output to it is over max_queued, reading from
 * it pauses until the output drains, so a peer that does not read cannot grow our memory. */
int hr_ws_send(struct hr_ws *ws, int opcode, const void *data, size_t len);

/* A reply already framed (shared by other sockets): as hr_ws_send, reading pauses while our
 * output to this peer is over max_queued. */
int hr_ws_reply_frame(struct hr_ws *ws, struct hr_buf *frame);

/* Queue a shared frame whatever the output holds (the caller bounds it). */
int hr_ws_queue_frame(struct hr_ws *ws, struct hr_buf *frame);

/* One frame for many sockets: build it once, send it to each with hr_ws_send_frame. */
struct hr_buf *hr_ws_frame_new(int opcode, const void *data, size_t len);
/* Send a shared frame. Slow-consumer policy: a socket whose queued output is already over
 * max_queued does not get it; it is closed with 1008 "slow consumer" instead (the close frame
 * is queued and the TCP connection dropped after close_timeout). Returns 0 or HR_ECLOSED. */
int hr_ws_send_frame(struct hr_ws *ws, struct hr_buf *frame);
/* Broadcast to n sockets: framed once, shared by every write queue. Returns how many got it. */
size_t hr_ws_broadcast(struct hr_ws *const *list, size_t n, int opcode, const void *data,
                       size_t len);

/* Tell the peer a message of its was dropped, over --max-msg-rate: the text frame
 * {"error":"rate limit exceeded","limit":N} (the channel routes' error form). */
void hr_ws_rate_error(struct hr_ws *ws);

/* Start the close handshake with a code and reason (<= 123 bytes). */
void hr_ws_close(struct hr_ws *ws, uint16_t code, const char *reason);

#endif
