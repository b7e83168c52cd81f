/* ws.c - WebSocket channel subscribers: GET /ws/{channel}?since=CURSOR. Each message is
 * one text frame {"id","cursor","time","data"} (the poll answers' form, encoded once per
 * message and shared); a resume that cannot be complete first gets {"gap":reason,"first":N}.
 * A text frame from the client holding a JSON value publishes it to the channel; the client
 * gets {"ack":id,"cursor":...} once it is committed, or {"error":...}. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"
#include "core/error.h"
#include "core/json.h"
#include "core/metrics.h"
#include "push.h"
#include "stream.h"
#include "ws/ws.h"

/* A subscriber's state: the socket's data (hr_ws_data), one block with the socket. */
struct ws_sub {
    struct hr_chan_stream st; /* first */
    uint32_t pending;         /* publishes awaiting their commit (the block outlives the
                               * socket until they are answered: hr_ws_keep) */
    struct hr_bucket rate;    /* --max-msg-rate */
    struct hr_push *push;
    uint8_t closed;
    int8_t may_publish;  /* 0, or why its token may not publish here (HR_EUNAUTH, ...) */
    uint8_t publish_key; /* it holds the publish key: no --publish-rate */
    uint64_t exp_ms;     /* its token's expiry (Unix ms), 0: none */
    char *sub;           /* its token's user (the publish rate's key), or NULL */
};

static struct ws_sub *ws_of(const struct hr_chan_stream *st)
{
    return (struct ws_sub *)st;
}

static struct hr_ws *sock_of(const struct ws_sub *w)
{
    return hr_ws_of_data((void *)w);
}

static struct hr_buf *make_frame(const struct hr_hub_msg *m, void *ud)
{
    struct hr_buf *json = hr_msg_json(m, ud);
    if (!json)
        return NULL;
    struct hr_buf *f = hr_ws_frame_new(HR_WS_OP_TEXT, json->data, json->len);
    hr_buf_unref(json);
    return f;
}

static struct hr_buf *encode(struct hr_chan_stream *st, struct hr_hub_msg *m)
{
    return hr_hub_encoding(m, HR_FMT_WS, make_frame, st->sub.ch->epoch);
}

/* The stream checked the limit before (over); a replay stops at full; notices may take the
 * output a little past it. */
static int write_frame(struct hr_chan_stream *st, struct hr_buf *f, uint64_t id)
{
    return hr_ws_queue_frame(sock_of(ws_of(st)), f);
}

static void write_gap(struct hr_chan_stream *st, const char *reason, uint64_t first,
                      uint64_t missed_from, uint64_t missed_to)
{
    char g[128];
    int n = missed_from
                ? snprintf(g, sizeof g,
                           "{\"gap\":\"%s\",\"first\":%" PRIu64 ",\"missed\":[%" PRIu64 ",%" PRIu64
                           "]}",
                           reason, first, missed_from, missed_to)
                : snprintf(g, sizeof g, "{\"gap\":\"%s\",\"first\":%" PRIu64 "}", reason, first);
    hr_ws_send(sock_of(ws_of(st)), HR_WS_OP_TEXT, g, (size_t)n);
}

static void close_slow(struct hr_chan_stream *st)
{
    hr_ws_close(sock_of(ws_of(st)), HR_WS_CLOSE_POLICY, "slow consumer");
}

static void close_error(struct hr_chan_stream *st, int status, const char *what)
{
    hr_ws_close(sock_of(ws_of(st)), 1011, what);
}

static int closing(const struct hr_chan_stream *st)
{
    struct ws_sub *w = ws_of(st);
    return w->closed || sock_of(w)->state != HR_WS_OPEN;
}

static int full(const struct hr_chan_stream *st)
{
    return hr_conn_full(sock_of(ws_of(st))->conn);
}

static int over(const struct hr_chan_stream *st)
{
    return hr_conn_over(sock_of(ws_of(st))->conn);
}

static const struct hr_chan_stream_ops ws_stream_ops = {
    .sub = HR_CHAN_STREAM_SUB_OPS,
    .fmt = HR_FMT_WS,
    .encode = encode,
    .write = write_frame,
    .write_gap = write_gap,
    .close_slow = close_slow,
    .close_error = close_error,
    .closing = closing,
    .full = full,
    .over = over,
};

static void drain_cb(struct hr_ws *ws)
{
    struct ws_sub *w = hr_ws_data(ws);
    if (!w->closed)
        hr_chan_stream_drained(&w->st);
}

/* The memory budget picked this socket among the largest queues: its channel's policy now. */
static void shed_cb(struct hr_ws *ws)
{
    struct ws_sub *w = hr_ws_data(ws);
    if (w->closed)
        hr_ws_close(ws, HR_WS_CLOSE_POLICY, "slow consumer");
    else
        hr_chan_stream_shed(&w->st);
}

static void published_cb(void *ud, int status, uint64_t id)
{
    struct ws_sub *w = ud;
    w->pending--;
    if (!w->closed) {
        char reply[160];
        int n = status < 0
                    ? snprintf(reply, sizeof reply, "{\"error\":\"could not store the message\"}")
                    : snprintf(reply, sizeof reply,
                               "{\"ack\":%" PRIu64 ",\"cursor\":\"%s:%" PRIu64 "\"}", id,
                               w->st.sub.ch->epoch, id);
        hr_ws_send(sock_of(w), HR_WS_OP_TEXT, reply, (size_t)n);
    } else if (w->pending == 0) {
        hr_ws_free(sock_of(w)); /* the last answer of a socket that went away */
    }
}

static void message_cb(struct hr_ws *ws, int opcode, const uint8_t *data, size_t len)
{
    struct ws_sub *w = hr_ws_data(ws);
    static const char not_json[] = "{\"error\":\"a message must be one JSON value (text frame)\"}";
    /* every message counts against --max-msg-rate; over it, dropped and told; if that
     * persists, closed (1008) */
    int q = hr_server_msg_take(ws->conn->srv, &w->rate);
    if (q == HR_QUOTA_CLOSE) {
        hr_ws_close(ws, HR_WS_CLOSE_POLICY, "rate limit exceeded");
        return;
    }
    if (q == HR_QUOTA_OVER) {
        hr_ws_rate_error(ws);
        return;
    }
    if (opcode != HR_WS_OP_TEXT || !hr_json_check((const char *)data, len)) {
        hr_ws_send(ws, HR_WS_OP_TEXT, not_json, sizeof not_json - 1);
        return;
    }
    if (w->may_publish < 0) {
        char e[96];
        int n = snprintf(e, sizeof e, "{\"error\":\"%s\"}",
                         hr_auth_refusal(w->may_publish, HR_ACCESS_PUBLISH));
        hr_ws_send(ws, HR_WS_OP_TEXT, e, (size_t)n);
        return;
    }
    if (len > ws->conn->srv->limits.max_body) {
        static const char too_big[] = "{\"error\":\"a message may hold at most --max-body bytes\"}";
        hr_ws_send(ws, HR_WS_OP_TEXT, too_big, sizeof too_big - 1);
        return;
    }
    /* --publish-rate, the publisher's across its connections and transports */
    uint32_t retry_s;
    if (hr_chan_publish_take(w->push->publish, ws->conn, w->sub, w->publish_key, &retry_s) !=
        HR_QUOTA_OK) {
        char e[128];
        int n = snprintf(e, sizeof e,
                         "{\"error\":\"publish rate exceeded\",\"limit\":%u,\"retry_after\":%u}",
                         w->push->publish->rate.rate, retry_s);
        hr_ws_send(ws, HR_WS_OP_TEXT, e, (size_t)n);
        return;
    }
    /* the frame's bytes sit in the shared read buffer: this is the one copy; the hub and
     * the store keep this very buffer */
    struct hr_buf *value = hr_msg_json_copy((const char *)data, len);
    if (!value)
        goto fail;
    if (!hr_budget_admit(value->len)) {
        /* never acknowledged unstored: refused, the socket stays open (README "Memory") */
        hr_budget_refused(value->len);
        hr_buf_unref(value);
        static const char busy[] =
            "{\"error\":\"over the memory budget: try again later\",\"retry_after\":1}";
        hr_ws_send(ws, HR_WS_OP_TEXT, busy, sizeof busy - 1);
        return;
    }
    w->pending++;
    if (hr_hub_publish_buf(w->st.sub.ch->hub, w->st.sub.ch, value, published_cb, w) < 0) {
        w->pending--;
        goto fail;
    }
    hr_buf_unref(value);
    return;
fail:
    hr_buf_unref(value);
    hr_ws_send(ws, HR_WS_OP_TEXT, "{\"error\":\"could not store the message\"}", 39);
}

static void close_cb(struct hr_ws *ws, uint16_t code)
{
    struct ws_sub *w = hr_ws_data(ws);
    HR_METRIC_INC(closed[HR_MT_WEBSOCKET]);
    hr_chan_stream_stop(&w->st);
    w->closed = 1;
    free(w->sub);
    w->sub = NULL;
    if (w->pending)
        hr_ws_keep(ws);
}

static const struct hr_ws_handler channel_ws = {
    .max_message_is_body = 1, /* a message is a publish: --max-body, refused at its header */
    .data_size = sizeof(struct ws_sub),
    .on_drain = drain_cb,
    .on_shed = shed_cb,
    .on_message = message_cb,
    .on_close = close_cb,
};

void hr_chan_ws_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct hr_push *push = ud;
    struct hr_chan_request r;
    if (hr_ws_origin_refused(c, req, push->origins) ||
        hr_chan_open_request(c, req, push, HR_PUSH_PREFIX_WS, HR_CHAN_CURSOR_SINCE, 0, &r) < 0)
        return;
    struct hr_ws *ws = hr_ws_accept(c, req, &channel_ws, push);
    if (!ws) {
        hr_hub_forget_unused(r.ch);
        return;
    }
    HR_METRIC_INC(opened[HR_MT_WEBSOCKET]);
    struct ws_sub *w = hr_ws_data(ws);
    w->may_publish = r.may_publish;
    w->exp_ms = r.exp_ms;
    w->publish_key = r.publish_key;
    w->sub = r.sub[0] ? strdup(r.sub) : NULL;
    w->push = push;
    hr_chan_stream_init(&w->st, &ws_stream_ops, r.ch);
    hr_chan_stream_start(&w->st, r.has_cursor ? &r.cursor : NULL);
}

static void expire_one(struct hr_chan_stream *st, void *ud)
{
    struct ws_sub *w = ws_of(st);
    if (w->exp_ms && *(const uint64_t *)ud >= w->exp_ms && !closing(st))
        hr_ws_close(sock_of(w), HR_WS_CLOSE_POLICY, "token expired");
}

void hr_chan_ws_expire(struct hr_push *p, uint64_t now_ms)
{
    hr_chan_stream_each(p->hub, &ws_stream_ops, expire_one, &now_ms);
}
