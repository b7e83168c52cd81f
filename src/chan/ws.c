/* channel.c - WebSocket channel subscribers: GET /ws/{channel}?since=CURSOR. Each message is
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
#include "push.h"
#include "wire.h"
#include "core/json.h"
#include "ws/ws.h"

struct ws_sub {
    struct hr_sub sub;      /* first */
    struct hr_ws *ws;
    struct hr_push *push;
    struct hr_channel *ch;
    uint64_t replay_after;  /* while resuming: the last id sent from history */
    uint8_t replaying;
    struct hr_hub_read *req; /* a page being read from the store */
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
    struct hr_buf *f = hr_hub_encoding(m, HR_FMT_WS, make_frame, w->ch->epoch);
    w->sub.last = m->id;
    if (!f)
        return HR_ENOMEM;
    /* under disconnect, a socket over the limit is closed (1008); skip and coalesce checked
     * the limit before, and their own notices may take it a little past */
    return w->ch->policy == HR_POLICY_DISCONNECT ? hr_ws_send_frame(w->ws, f) : hr_ws_queue_frame(w->ws, f);
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
    } else if (w->sub.owed) {
        struct hr_buf *f = w->sub.owed;
        w->sub.owed = NULL;
        if (w->sub.owed_id > w->sub.last && w->sub.owed_id < next) {
            w->sub.last = w->sub.owed_id;
            hr_ws_queue_frame(w->ws, f);
        }
        hr_buf_unref(f);
    }
}

static int deliver(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m)
{
    struct ws_sub *w = (struct ws_sub *)sub;
    if (w->closed)
        return HR_ECLOSED;
    /* over the limit: disconnect is hr_ws_send_frame's 1008 "slow consumer"; skip and
     * coalesce hold the message back until the output drains */
    if (ch->policy != HR_POLICY_DISCONNECT && hr_conn_over(w->ws->conn)) {
        if (!sub->lagging) {
            sub->lagging = 1;
            sub->lag_from = m->id;
        }
        if (ch->policy == HR_POLICY_COALESCE)
            hr_sub_owe(sub, hr_hub_encoding(m, HR_FMT_WS, make_frame, ch->epoch), m->id);
        return 0;
    }
    if (sub->lagging)
        catch_up(w, ch, m->id);
    return send_msg(w, m) < 0 ? HR_ECLOSED : 0;
}

static void send_gap(struct ws_sub *w, const char *reason, uint64_t first)
{
    char g[128];
    int n = snprintf(g, sizeof g, "{\"gap\":\"%s\",\"first\":%" PRIu64 "}", reason, first);
    hr_ws_send(w->ws, HR_WS_OP_TEXT, g, (size_t)n);
}

/* ---- resuming: history is sent a page at a time, as the reader's output drains, then the
 * socket goes live; so a long replay holds at most about --max-queued of memory and is not
 * mistaken for a slow consumer. */

static void pump(struct ws_sub *w);

/* A page of history: sent until the output is full (the rest is read again later). A page
 * from the store arrives later: the replay goes on from here. */
static void replay_page(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg)
{
    struct ws_sub *w = ud;
    int later = w->req != NULL;
    w->req = NULL;
    if (w->closed || w->ws->state != HR_WS_OPEN)
        return;
    if (pg->status < 0) {
        hr_ws_close(w->ws, 1011, "history read failed");
        return;
    }
    /* history may have been trimmed while this reader was catching up */
    if (w->replay_after + 1 < pg->first) {
        send_gap(w, "trimmed", pg->first);
        w->replay_after = pg->first - 1;
    }
    for (uint32_t i = 0; i < pg->n && w->ws->state == HR_WS_OPEN; i++) {
        if (pg->m[i]->id <= w->replay_after)
            continue;
        w->replay_after = pg->m[i]->id;
        if (send_msg(w, pg->m[i]) < 0 || hr_conn_full(w->ws->conn))
            break;
    }
    if (later)
        pump(w);
}

static void pump(struct ws_sub *w)
{
    struct hr_channel *ch = w->ch;
    while (!w->closed && !w->req && w->ws->state == HR_WS_OPEN) {
        if (w->replay_after >= ch->last_id) {
            w->replaying = 0;
            hr_hub_subscribe(ch, &w->sub);
            return;
        }
        if (hr_conn_full(w->ws->conn))
            return; /* on_drain goes on */
        uint64_t before = w->replay_after;
        int rc = hr_hub_read(ch, w->replay_after, HR_HUB_PAGE_MAX, replay_page, w, &w->req);
        if (rc < 0) {
            hr_ws_close(w->ws, 1011, "history read failed");
            return;
        }
        if (rc == 0 && w->replay_after == before && !hr_conn_full(w->ws->conn))
            w->replay_after = ch->last_id; /* nothing more to read: live (guards the loop) */
    }
}

static void on_drain(struct hr_ws *ws)
{
    struct ws_sub *w = ws->user;
    if (!w || w->closed)
        return;
    if (w->replaying && !w->req)
        pump(w);
    else if (w->sub.lagging && w->sub.ch)
        catch_up(w, w->sub.ch, w->sub.ch->last_id + 1);
}

static const struct hr_sub_ops ws_sub_ops = {.deliver = deliver};

/* The memory budget picked this socket among the largest queues: its channel's policy now.
 * Skip and coalesce need nothing more: hr_conn_over() holds messages back until it drains. */
static void on_shed(struct hr_ws *ws)
{
    struct ws_sub *w = ws->user;
    if (!w || w->closed || w->ch->policy == HR_POLICY_DISCONNECT)
        hr_ws_close(ws, HR_WS_CLOSE_POLICY, "slow consumer");
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
                                      id, w->ch->epoch, id);
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
    if (len > ws->conn->srv->limits.max_body) {
        static const char too_big[] = "{\"error\":\"a message may hold at most --max-body bytes\"}";
        hr_ws_send(ws, HR_WS_OP_TEXT, too_big, sizeof too_big - 1);
        return;
    }
    const char *err;
    struct hr_buf *value = hr_msg_value((const char *)data, len, 1, &err);
    if (!value)
        goto fail;
    if (!hr_budget_admit(value->len)) {
        /* never acknowledged unstored: refused, the socket stays open (README "Memory") */
        hr_budget_refused(value->len);
        hr_buf_unref(value);
        static const char busy[] = "{\"error\":\"over the memory budget: try again later\",\"retry_after\":1}";
        hr_ws_send(ws, HR_WS_OP_TEXT, busy, sizeof busy - 1);
        return;
    }
    w->pending++;
    if (hr_hub_publish(w->push->hub, w->ch, value->data, value->len, published, w) < 0) {
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
    hr_hub_read_cancel(w->req);
    w->req = NULL;
    hr_hub_unsubscribe(&w->sub);
    hr_hub_forget_unused(w->ch);
    w->closed = 1;
    release(w);
}

static const struct hr_ws_handler channel_ws = {
    .max_message_is_body = 1, /* a message is a publish: --max-body, refused at its header */
    .on_drain = on_drain,
    .on_shed = on_shed,
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
    w->ch = ch;
    ws->user = w;
    w->replay_after = ch->last_id; /* no cursor: live from the next message */
    if (l >= 0) {
        const char *gap = hr_cursor_start(&cur, ch, &w->replay_after);
        if (gap) {
            send_gap(w, gap, hr_hub_first_id(ch));
            w->replay_after = hr_hub_first_id(ch) - 1;
        }
    }
    w->replaying = 1;
    pump(w);
}
