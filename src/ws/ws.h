/* ws.h - WebSocket connections (RFC 6455) on top of net/conn: the upgrade, message assembly,
 * control frames, the close handshake, and sending (one frame shared by many sockets). */
#ifndef HR_WS_WS_H
#define HR_WS_WS_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "http/http.h"

struct hr_ws;

struct hr_ws_handler {
    uint64_t max_message; /* one message's limit for these sockets; 0: --ws-max-message */
    /* Messages are request bodies (a publish): limit them to --max-body as well, so a
     * declared frame over it is refused at its header, before any payload is buffered. */
    uint8_t max_message_is_body;
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
    /* The connection is gone; code is the close code received, or 1006 if none. Free user data. */
    void (*on_close)(struct hr_ws *ws, uint16_t code);
};

enum { HR_WS_OPEN, HR_WS_CLOSING, HR_WS_CLOSED };

struct hr_ws {
    struct hr_conn *conn;
    const struct hr_ws_handler *h;
    void *ud;           /* the handler's (from hr_ws_upgrade) */
    void *user;         /* free for the application, per socket */
    struct hr_buf *msg; /* the message being assembled, only while one spans reads */
    size_t msg_charged; /* msg's capacity, charged to the memory budget */
    struct hr_ws_parser parser;
    uint8_t state;
    uint8_t paused;      /* reading paused because our output is full */
    uint8_t assembling;  /* a message began and is not complete: its deadline runs */
    uint16_t close_code; /* received from the peer; 1006 until then */
};

/* Route handler helper: validate the handshake and switch c to WebSocket, or answer the
 * request with the error (426 / 400 / 405, JSON body). Returns 0 when upgraded. */
int hr_ws_upgrade(struct hr_conn *c, struct hr_http_request *req, const struct hr_ws_handler *h,
                  void *ud);
/* The same, returning the new socket (NULL when the handshake was refused and answered). */
struct hr_ws *hr_ws_accept(struct hr_conn *c, struct hr_http_request *req,
                           const struct hr_ws_handler *h, void *ud);

/* A reply to this peer (echo, acks): when our output to it is over max_queued, reading from
 * it pauses until the output drains, so a peer that does not read cannot grow our memory. */
int hr_ws_send(struct hr_ws *ws, int opcode, const void *data, size_t len);

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

/* Start the close handshake with a code and reason (<= 123 bytes). */
void hr_ws_close(struct hr_ws *ws, uint16_t code, const char *reason);

#endif
