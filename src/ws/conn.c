/* conn.c - WebSocket connection state machine (RFC 6455 §5-§7): upgrade, message assembly,
 * ping/pong, the close handshake, and the failure paths with their close codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"
#include "core/error.h"
#include "core/log.h"
#include "handshake.h"
#include "ws.h"

static const struct hr_proto ws_proto;

/* What a socket remembers between reads only while a frame or a message spans them: the
 * parser's state, and the message being assembled. An idle socket has none (its next read
 * starts from a fresh parser), so thousands of idle sockets cost no parser state. */
struct hr_ws_partial {
    struct hr_ws_parser parser;
    struct hr_buf *msg; /* the message so far, when it spans reads; charged by its capacity */
};

/* This socket's message limit (the parser's max_message). */
static uint64_t max_message(const struct hr_ws *ws)
{
    const struct hr_limits *l = &ws->conn->srv->limits;
    uint64_t max = ws->h->max_message ? ws->h->max_message : l->ws_max_message;
    if (ws->h->max_message_is_body && l->max_body < max)
        max = l->max_body ? l->max_body : 1; /* 0 would mean no limit */
    return max;
}

struct hr_buf *hr_ws_frame_new(int opcode, const void *data, size_t len)
{
    struct hr_buf *b = hr_buf_new(len + 10);
    if (!b)
        return NULL;
    b->len = (uint32_t)hr_ws_frame_header((uint8_t *)b->data, 1, opcode, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += (uint32_t)len;
    return b;
}

/* Write one frame built for this socket alone. */
static int write_frame(struct hr_ws *ws, int opcode, const void *data, size_t len)
{
    struct hr_buf *b = hr_ws_frame_new(opcode, data, len);
    if (!b) {
        hr_conn_close(ws->conn);
        return HR_ENOMEM;
    }
    int rc = hr_conn_write(ws->conn, b);
    hr_buf_unref(b);
    return rc;
}

/* A reply went out: a peer that does not read what it asked for is not read from either. */
static int replied(struct hr_ws *ws, int rc)
{
    if (rc == 0 && hr_conn_full(ws->conn) && !ws->paused) {
        ws->paused = 1;
        hr_conn_pause(ws->conn);
    }
    return rc;
}

int hr_ws_send(struct hr_ws *ws, int opcode, const void *data, size_t len)
{
    if (ws->state != HR_WS_OPEN)
        return HR_ECLOSED;
    return replied(ws, write_frame(ws, opcode, data, len));
}

int hr_ws_reply_frame(struct hr_ws *ws, struct hr_buf *frame)
{
    if (ws->state != HR_WS_OPEN)
        return HR_ECLOSED;
    return replied(ws, hr_conn_write(ws->conn, frame));
}

int hr_ws_send_frame(struct hr_ws *ws, struct hr_buf *frame)
{
    if (ws->state != HR_WS_OPEN)
        return HR_ECLOSED;
    if (hr_conn_queued(ws->conn) > ws->conn->srv->limits.max_queued) {
        hr_ws_close(ws, HR_WS_CLOSE_POLICY, "slow consumer");
        return HR_ECLOSED;
    }
    return hr_conn_write(ws->conn, frame);
}

int hr_ws_queue_frame(struct hr_ws *ws, struct hr_buf *frame)
{
    return ws->state == HR_WS_OPEN ? hr_conn_write(ws->conn, frame) : HR_ECLOSED;
}

size_t hr_ws_broadcast(struct hr_ws *const *list, size_t n, int opcode, const void *data,
                       size_t len)
{
    struct hr_buf *frame = hr_ws_frame_new(opcode, data, len);
    if (!frame)
        return 0;
    size_t sent = 0;
    for (size_t i = 0; i < n; i++)
        if (hr_ws_send_frame(list[i], frame) == 0)
            sent++;
    hr_buf_unref(frame);
    return sent;
}

static void send_close(struct hr_ws *ws, uint16_t code, const char *reason)
{
    uint8_t payload[125];
    size_t n = code == HR_WS_CLOSE_NO_STATUS ? 0 : hr_ws_close_payload(payload, code, reason);
    write_frame(ws, HR_WS_OP_CLOSE, payload, n);
}

void hr_ws_rate_error(struct hr_ws *ws)
{
    char msg[64];
    int n = snprintf(msg, sizeof msg, "{\"error\":\"rate limit exceeded\",\"limit\":%u}",
                     ws->conn->srv->limits.max_msg_rate);
    hr_ws_send(ws, HR_WS_OP_TEXT, msg, (size_t)n);
}

void hr_ws_close(struct hr_ws *ws, uint16_t code, const char *reason)
{
    if (ws->state != HR_WS_OPEN)
        return;
    ws->state = HR_WS_CLOSING;
    send_close(ws, code, reason);
    /* wait for the peer's close frame, but not forever */
    hr_conn_set_timeout(ws->conn, ws->conn->srv->limits.close_timeout_ms);
    if (ws->paused) {
        ws->paused = 0;
        hr_conn_resume(ws->conn);
    }
}

/* RFC 6455 §7.1.7: fail the connection: a close frame with the reason, then close TCP. */
static void fail(struct hr_ws *ws, uint16_t code, const char *reason)
{
    if (ws->state == HR_WS_OPEN)
        send_close(ws, code, reason);
    ws->state = HR_WS_CLOSED;
    hr_conn_end(ws->conn, ws->conn->srv->limits.close_timeout_ms);
}

static void deliver(struct hr_ws *ws, int opcode, const uint8_t *data, size_t len)
{
    if (ws->state == HR_WS_OPEN && ws->h->on_message)
        ws->h->on_message(ws, opcode, data, len);
}

/* Message assembly memory: a message that spans reads is copied into ws->msg, which grows
 * as its bytes arrive (never to the length a frame header declares: the codec has already
 * refused any declared length over the limit, and a peer may stall after declaring). These
 * two functions are the only places that memory is taken and given back, and the memory budget
 * (HR_MEM_WS_MESSAGE) is charged here by the buffer's capacity. */
static int msg_append(struct hr_ws *ws, const uint8_t *data, size_t len)
{
    struct hr_ws_partial *pt = ws->part;
    size_t before = pt->msg ? pt->msg->cap : 0;
    if (!pt->msg && !(pt->msg = hr_buf_new(len > 1024 ? len : 1024)))
        return HR_ENOMEM;
    int rc = hr_buf_append(&pt->msg, data, len);
    if (pt->msg->cap > before)
        hr_budget_charge(HR_MEM_WS_MESSAGE, pt->msg->cap - before);
    return rc;
}

/* Take the assembled message (the caller unrefs it) and release its charge. */
static struct hr_buf *msg_take(struct hr_ws *ws)
{
    struct hr_buf *m = ws->part ? ws->part->msg : NULL;
    if (!m)
        return NULL;
    ws->part->msg = NULL;
    hr_budget_release(HR_MEM_WS_MESSAGE, m->cap);
    return m;
}

/* The parser state to carry to the next read, or none when the parser is idle. 0, or
 * HR_ENOMEM. */
static int part_keep(struct hr_ws *ws, const struct hr_ws_parser *p)
{
    if (ws->part) {
        if (hr_ws_parser_idle(&ws->part->parser) && !ws->part->msg) {
            free(ws->part);
            ws->part = NULL;
        }
        return 0;
    }
    if (hr_ws_parser_idle(p))
        return 0;
    if (!(ws->part = malloc(sizeof(*ws->part))))
        return HR_ENOMEM;
    ws->part->parser = *p;
    ws->part->msg = NULL;
    return 0;
}

static void part_free(struct hr_ws *ws)
{
    hr_buf_unref(msg_take(ws));
    free(ws->part);
    ws->part = NULL;
}

/* A message that began must complete within --ws-message-timeout: the connection's one
 * deadline (checked by the server's sweep timer, no timer per socket) is armed while a
 * message is unfinished at the end of a read, and disarmed when it completes. An open
 * WebSocket has no other deadline; closing ones use it for the close handshake. */
static void msg_deadline(struct hr_ws *ws)
{
    if (ws->state != HR_WS_OPEN || ws->assembling || !ws->part || !ws->part->parser.msg_opcode)
        return;
    ws->assembling = 1;
    hr_conn_set_timeout(ws->conn, ws->conn->srv->limits.ws_message_timeout_ms);
}

static void msg_done(struct hr_ws *ws)
{
    if (!ws->assembling)
        return;
    ws->assembling = 0;
    if (ws->state == HR_WS_OPEN)
        hr_conn_set_timeout(ws->conn, 0);
}

static ssize_t ws_read(struct hr_conn *c, char *data, size_t len)
{
    struct hr_ws *ws = c->pdata;
    uint8_t *p = (uint8_t *)data;
    size_t left = len;
    /* between messages a fresh parser on the stack; the state is kept only if this input
     * ends inside a frame or a message (part_keep) */
    struct hr_ws_parser fresh, *ps = &fresh;
    if (ws->part)
        ps = &ws->part->parser;
    else
        hr_ws_parser_init(&fresh, max_message(ws));
    /* A message that is whole inside this input is delivered from it without a copy. */
    const uint8_t *direct = NULL;
    size_t direct_len = 0;
    int have_direct = 0;

    while (left > 0 && ws->state != HR_WS_CLOSED && !(c->flags & HR_CONN_PAUSED)) {
        struct hr_ws_event ev;
        size_t used;
        int t = hr_ws_parse(ps, p, left, &used, &ev);
        p += used;
        left -= used;
        switch (t) {
        case HR_WS_NEED_MORE: goto out;
        case HR_WS_EV_DATA:
            if (!(ws->part && ws->part->msg) && !have_direct) {
                direct = ev.data;
                direct_len = ev.len;
                have_direct = 1;
            } else {
                if (ps == &fresh) {
                    /* the message spans frames of this input: it is assembled */
                    if (part_keep(ws, ps) < 0)
                        goto nomem;
                    ps = &ws->part->parser;
                }
                if (have_direct) {
                    have_direct = 0;
                    if (msg_append(ws, direct, direct_len) < 0)
                        goto nomem;
                }
                if (msg_append(ws, ev.data, ev.len) < 0)
                    goto nomem;
            }
            break;
        case HR_WS_EV_MESSAGE_END:
            msg_done(ws); /* before delivering: a handler that closes sets its own deadline */
            if (have_direct) {
                have_direct = 0;
                deliver(ws, ev.opcode, direct, direct_len);
            } else if (ws->part && ws->part->msg) {
                struct hr_buf *m = msg_take(ws);
                deliver(ws, ev.opcode, (const uint8_t *)m->data, m->len);
                hr_buf_unref(m);
            } else {
                deliver(ws, ev.opcode, (const uint8_t *)"", 0);
            }
            break;
        case HR_WS_EV_PING:
            /* a reply like any other: a peer that pings without reading gets paused */
            hr_ws_send(ws, HR_WS_OP_PONG, ev.data, ev.len);
            break;
        case HR_WS_EV_PONG: break; /* unsolicited pongs are allowed and ignored (§5.5.3) */
        case HR_WS_EV_CLOSE:
            ws->close_code = ev.close_code;
            if (ws->state == HR_WS_OPEN) {
                /* echo the peer's close payload (§5.5.1): its code and reason, or nothing */
                uint8_t reply[125];
                size_t n = 0;
                if (ev.close_code != HR_WS_CLOSE_NO_STATUS) {
                    reply[0] = (uint8_t)(ev.close_code >> 8);
                    reply[1] = (uint8_t)ev.close_code;
                    n = 2 + (ev.len < sizeof reply - 2 ? ev.len : sizeof reply - 2);
                    if (n > 2)
                        memcpy(reply + 2, ev.data, n - 2);
                }
                write_frame(ws, HR_WS_OP_CLOSE, reply, n);
            }
            ws->state = HR_WS_CLOSED;
            /* the server closes the TCP connection first (§7.1.1) */
            hr_conn_end(c, c->srv->limits.close_timeout_ms);
            return HR_ECLOSED;
        case HR_WS_ERROR:
        default: fail(ws, ev.close_code, ev.reason); return HR_ECLOSED;
        }
    }
out:
    if (ps == &fresh && part_keep(ws, ps) < 0)
        goto nomem;
    if (have_direct && msg_append(ws, direct, direct_len) < 0)
        goto nomem;
    if (ws->part && ps == &ws->part->parser)
        part_keep(ws, ps);
    msg_deadline(ws);
    return (ssize_t)(len - left);
nomem:
    fail(ws, HR_WS_CLOSE_INTERNAL, "out of memory");
    return HR_ECLOSED;
}

static void ws_eof(struct hr_conn *c)
{
    hr_conn_close(c);
}

static void ws_timeout(struct hr_conn *c)
{
    struct hr_ws *ws = c->pdata;
    /* An open socket's deadline is a message's: 1008 (policy violation, RFC 6455 §7.4.1)
     * rather than 1002, since the frames themselves were well formed. */
    if (ws->state == HR_WS_OPEN && ws->assembling) {
        ws->assembling = 0;
        hr_buf_unref(msg_take(ws));
        fail(ws, HR_WS_CLOSE_POLICY, "message not completed in time");
        return;
    }
    hr_conn_close(c); /* the peer did not finish the close handshake */
}

static void ws_drain(struct hr_conn *c)
{
    struct hr_ws *ws = c->pdata;
    if (ws->paused) {
        ws->paused = 0;
        hr_conn_resume(c);
    }
    if (ws->state == HR_WS_OPEN && ws->h->on_drain)
        ws->h->on_drain(ws);
}

static void ws_shutdown(struct hr_conn *c)
{
    struct hr_ws *ws = c->pdata;
    if (ws->state == HR_WS_OPEN)
        hr_ws_close(ws, HR_WS_CLOSE_GOING_AWAY, "server shutting down");
    else
        hr_conn_close(c);
}

/* Over the memory budget, this socket's output is among the largest (struct hr_proto). */
static void ws_shed(struct hr_conn *c)
{
    struct hr_ws *ws = c->pdata;
    if (ws->state != HR_WS_OPEN)
        hr_conn_close(c); /* closing already: its output is only the close frame's way out */
    else if (ws->h->on_shed)
        ws->h->on_shed(ws);
    else
        hr_ws_close(ws, HR_WS_CLOSE_POLICY, "slow consumer");
}

void hr_ws_keep(struct hr_ws *ws)
{
    ws->kept = 1;
}

void hr_ws_free(struct hr_ws *ws)
{
    free(ws);
}

static void ws_free(struct hr_conn *c)
{
    struct hr_ws *ws = c->pdata;
    part_free(ws);
    c->pdata = NULL;
    if (ws->h->on_close)
        ws->h->on_close(ws, ws->close_code);
    if (!ws->kept)
        free(ws);
}

static const struct hr_proto ws_proto = {
    .name = "ws",
    .on_read = ws_read,
    .on_eof = ws_eof,
    .on_timeout = ws_timeout,
    .on_drain = ws_drain,
    .on_shutdown = ws_shutdown,
    .on_free = ws_free,
    .on_shed = ws_shed,
};

/* Whether token appears in a comma-separated list. */
static int list_has(const char *list, const char *token)
{
    const char *p = list, *end = list + strlen(list), *tok;
    size_t n, tlen = strlen(token);
    while (hr_list_next(&p, end, &tok, &n))
        if (n == tlen && memcmp(tok, token, n) == 0)
            return 1;
    return 0;
}

int hr_ws_origin_refused(struct hr_conn *c, const struct hr_http_request *req,
                         const struct hr_origins *origins)
{
    char cors[HR_ORIGIN_CORS_MAX];
    if (hr_origins_cors(origins, req, cors, sizeof cors) != HR_ORIGIN_REFUSED)
        return 0;
    hr_http_error(c, 403, cors, "origin not allowed");
    return 1;
}

int hr_ws_upgrade(struct hr_conn *c, struct hr_http_request *req, const struct hr_ws_handler *h,
                  void *ud)
{
    return hr_ws_accept(c, req, h, ud) ? 0 : HR_EINVAL;
}

struct hr_ws *hr_ws_accept(struct hr_conn *c, struct hr_http_request *req,
                           const struct hr_ws_handler *h, void *ud)
{
    struct hr_ws_handshake hs;
    hr_ws_handshake_check(req, &hs);
    if (hs.status) {
        const char *extra = hs.status == 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                            : hs.status == 405 ? "Allow: GET\r\n"
                                               : NULL;
        hr_http_error(c, hs.status, extra, hs.error);
        return NULL;
    }
    const char *proto = NULL;
    char chosen[128];
    const char *offered = hr_http_header_get(req, "Sec-WebSocket-Protocol", NULL);
    if (offered && h->subprotocol && h->subprotocol(req, offered, chosen, sizeof chosen, ud) &&
        chosen[0] && list_has(offered, chosen))
        proto = chosen; /* a server may only pick what was offered (§4.2.2) */
    struct hr_ws *ws = calloc(1, sizeof(*ws) + h->data_size);
    if (!ws) {
        hr_http_error(c, 503, NULL, "out of memory");
        return NULL;
    }
    ws->conn = c;
    ws->h = h;
    ws->close_code = HR_WS_CLOSE_ABNORMAL;

    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                     hs.accept, proto ? "Sec-WebSocket-Protocol: " : "", proto ? proto : "",
                     proto ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head ||
        hr_http_switch(c, head, (size_t)n, &ws_proto, ws) < 0) {
        free(ws);
        hr_conn_close(c);
        return NULL;
    }
    hr_conn_set_timeout(c, 0); /* an open WebSocket may be idle for as long as it likes */
    if (h->on_open)
        h->on_open(ws);
    return ws;
}
