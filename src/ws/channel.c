/* channel.c - WebSocket channel subscribers: GET /ws/{channel}?since=CURSOR. Each message is
 * one text frame {"id","cursor","time","data"} (the poll answers' form, encoded once per
 * message and shared); a resume that cannot be complete first gets {"gap":reason,"first":N}.
 * A text frame from the client holding a JSON value publishes it to the channel; the client
 * gets {"ack":id,"cursor":...} once it is committed, or {"error":...}. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../hub/push.h"
#include "../hub/wire.h"
#include "../sio/packet.h"
#include "ws.h"

struct ws_sub {
    struct hr_sub sub;      /* first */
    struct hr_ws *ws;
    struct hr_push *push;
    uint32_t pending;       /* publishes awaiting their commit */
    uint8_t closed;
};

static struct hr_buf *make_frame(const struct hr_hub_msg *m, void *ud)
{
    struct hr_buf *json = hr_msg_json(m, ud);
    if (!json)
        return NULL;
    struct hr_buf *f = hr_ws_frame_new(HR_WS_OP_TEXT, json->data, json->len);
    hr_buf_unref(json);
    return f;
}

static int send_msg(struct ws_sub *w, struct hr_hub_msg *m)
{
    struct hr_buf *f = hr_hub_encoding(m, HR_FMT_WS, make_frame, w->sub.ch->epoch);
    w->sub.last = m->id;
    return f ? hr_ws_send_frame(w->ws, f) : HR_ENOMEM;
}

/* A lagging reader caught up (hub.h, slow consumers): skip says what it missed; coalesce
 * sends the newest message unless next is newer. */
static void catch_up(struct ws_sub *w, struct hr_channel *ch, uint64_t next)
{
    w->sub.lagging = 0;
    if (ch->policy == HR_POLICY_SKIP) {
        char g[128];
        int n = snprintf(g, sizeof g, "{\"gap\":\"slow\",\"first\":%" PRIu64 ",\"missed\":[%" PRIu64 ",%" PRIu64 "]}",
                         next, w->sub.lag_from, next - 1);
        hr_ws_send(w->ws, HR_WS_OP_TEXT, g, (size_t)n);
    } else {
        struct hr_hub_msg *m = hr_hub_newest(ch);
        if (m && m->id > w->sub.last && m->id < next)
            send_msg(w, m);
    }
}

static int deliver(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m)
{
    struct ws_sub *w = (struct ws_sub *)sub;
    if (w->closed)
        return HR_ECLOSED;
    /* over the limit: disconnect is hr_ws_send_frame's 1008 "slow consumer"; skip and
     * coalesce hold the message back until the output drains */
    if (ch->policy != HR_POLICY_DISCONNECT &&
        hr_conn_queued(w->ws->conn) > w->ws->conn->srv->limits.max_queued) {
        if (!sub->lagging) {
            sub->lagging = 1;
            sub->lag_from = m->id;
        }
        return 0;
    }
    if (sub->lagging)
        catch_up(w, ch, m->id);
    return send_msg(w, m) < 0 ? HR_ECLOSED : 0;
}

static void on_drain(struct hr_ws *ws)
{
    struct ws_sub *w = ws->user;
    if (w && !w->closed && w->sub.lagging && w->sub.ch)
        catch_up(w, w->sub.ch, w->sub.ch->last_id + 1);
}

static const struct hr_sub_ops ws_sub_ops = {.deliver = deliver};

static int replay_one(void *ud, struct hr_hub_msg *m)
{
    return send_msg(ud, m) < 0;
}

static void release(struct ws_sub *w)
{
    if (w->closed && w->pending == 0)
        free(w);
}

static void published(void *ud, int status, uint64_t id)
{
    struct ws_sub *w = ud;
    w->pending--;
    if (!w->closed) {
        char reply[160];
        int n = status < 0 ? snprintf(reply, sizeof reply, "{\"error\":\"could not store the message\"}")
                           : snprintf(reply, sizeof reply, "{\"ack\":%" PRIu64 ",\"cursor\":\"%s:%" PRIu64 "\"}",
                                      id, w->sub.ch ? w->sub.ch->epoch : "", id);
        hr_ws_send(w->ws, HR_WS_OP_TEXT, reply, (size_t)n);
    }
    release(w);
}

static void on_message(struct hr_ws *ws, int opcode, const uint8_t *data, size_t len)
{
    struct ws_sub *w = ws->user;
    static const char not_json[] = "{\"error\":\"a message must be one JSON value (text frame)\"}";
    if (opcode != HR_WS_OP_TEXT || !hr_json_check((const char *)data, len)) {
        hr_ws_send(ws, HR_WS_OP_TEXT, not_json, sizeof not_json - 1);
        return;
    }
    const char *err;
    struct hr_buf *value = hr_msg_value((const char *)data, len, 1, &err);
    if (!value || !w->sub.ch)
        goto fail;
    w->pending++;
    if (hr_hub_publish(w->push->hub, w->sub.ch, value->data, value->len, published, w) < 0) {
        w->pending--;
        goto fail;
    }
    hr_buf_unref(value);
    return;
fail:
    hr_buf_unref(value);
    hr_ws_send(ws, HR_WS_OP_TEXT, "{\"error\":\"could not store the message\"}", 39);
}

static void on_close(struct hr_ws *ws, uint16_t code)
{
    struct ws_sub *w = ws->user;
    struct hr_channel *ch = w->sub.ch;
    hr_hub_unsubscribe(&w->sub);
    hr_hub_forget_unused(ch);
    w->closed = 1;
    release(w);
}

static const struct hr_ws_handler channel_ws = {
    .on_drain = on_drain,
    .on_message = on_message,
    .on_close = on_close,
};

void hr_ws_channel_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct hr_push *push = ud;
    size_t nlen;
    char nbuf[HR_CHANNEL_NAME_MAX + 1];
    const char *name = hr_channel_from_path(hr_http_path(req), HR_PUSH_PREFIX_WS, nbuf, &nlen);
    if (!name) {
        hr_http_error(c, 400, NULL, "invalid channel name");
        return;
    }
    char buf[1024];
    long l = hr_http_query(req, "since", buf, sizeof buf);
    struct hr_cursor cur = {0};
    if (l == -2 || (l >= 0 && hr_cursor_parse(buf, (size_t)l, &cur) < 0)) {
        hr_http_error(c, 400, NULL, "invalid cursor in since");
        return;
    }
    struct hr_channel *ch = hr_hub_channel(push->hub, name, nlen, 1);
    struct ws_sub *w = calloc(1, sizeof(*w));
    if (!ch || !w) {
        free(w);
        hr_hub_forget_unused(ch);
        hr_http_error(c, 503, NULL, "out of memory");
        return;
    }
    struct hr_ws *ws = hr_ws_accept(c, req, &channel_ws, push);
    if (!ws) {
        free(w);
        hr_hub_forget_unused(ch);
        return;
    }
    w->sub.ops = &ws_sub_ops;
    w->sub.fmt = HR_FMT_WS;
    w->ws = ws;
    w->push = push;
    ws->user = w;
    /* subscribed first: the replay reads the channel (and its epoch) through sub.ch */
    hr_hub_subscribe(ch, &w->sub);
    if (l >= 0) {
        uint64_t since;
        const char *gap = hr_cursor_start(&cur, ch, &since);
        if (gap) {
            char g[128];
            int n = snprintf(g, sizeof g, "{\"gap\":\"%s\",\"first\":%" PRIu64 "}", gap, hr_hub_first_id(ch));
            hr_ws_send(ws, HR_WS_OP_TEXT, g, (size_t)n);
        }
        hr_hub_since(ch, since, replay_one, w);
    }
}
