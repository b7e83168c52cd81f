/* sse.c - Server-Sent Events on channels (HTML Living Standard §9.2 "Server-sent events"):
 * GET /sse/{channel}, resumed from Last-Event-ID (or ?lastEventId=), each message one event
 * whose id: is its cursor and whose data: is its JSON value, a comment heartbeat, and an
 * explicit "event: gap" before a replay that cannot be complete. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "push.h"
#include "wire.h"

struct sse_stream {
    struct hr_sub sub;      /* first: the hub hands it back */
    struct hr_conn *c;
    struct hr_push *push;
    struct hr_channel *ch;
    uint64_t replay_after;  /* while resuming: the last id sent from history */
    struct hr_hub_read *req; /* a page being read from the store */
};

/* "id: E:N\ndata: <line>\n...\n" - the value's lines each become a data: line (a JSON value
 * from a publisher may contain newlines; EventSource joins data lines with \n again). */
static struct hr_buf *make_event(const struct hr_hub_msg *m, void *ud)
{
    const char *epoch = ud;
    struct hr_buf *b = hr_buf_new(m->data->len + 64);
    if (!b || hr_buf_printf(&b, "id: %s:%" PRIu64 "\n", epoch, m->id) < 0)
        goto fail;
    const char *p = m->data->data, *end = p + m->data->len;
    do {
        const char *eol = p;
        while (eol < end && *eol != '\n' && *eol != '\r')
            eol++;
        if (hr_buf_append(&b, "data: ", 6) < 0 || hr_buf_append(&b, p, (size_t)(eol - p)) < 0 ||
            hr_buf_append(&b, "\n", 1) < 0)
            goto fail;
        if (eol < end && *eol == '\r' && eol + 1 < end && eol[1] == '\n')
            eol++;
        p = eol + 1;
    } while (p < end);
    if (hr_buf_append(&b, "\n", 1) < 0)
        goto fail;
    return b;
fail:
    hr_buf_unref(b);
    return NULL;
}

static int send_msg(struct sse_stream *st, struct hr_hub_msg *m)
{
    struct hr_buf *e = hr_hub_encoding(m, HR_FMT_SSE, make_event, st->ch->epoch);
    if (!e)
        return HR_ENOMEM;
    st->sub.last = m->id;
    return hr_http_send(st->c, e, 0, e->len);
}

static void send_text(struct sse_stream *st, const char *text, int n)
{
    struct hr_buf *b = n > 0 ? hr_buf_from(text, (size_t)n) : NULL;
    if (b) {
        hr_http_send(st->c, b, 0, b->len);
        hr_buf_unref(b);
    }
}

/* A lagging reader caught up (its output drained, or a message found it below the limit):
 * skip says what it missed; coalesce sends the newest message unless next is newer. */
static void catch_up(struct sse_stream *st, struct hr_channel *ch, uint64_t next)
{
    st->sub.lagging = 0;
    if (ch->policy == HR_POLICY_SKIP) {
        char ev[160];
        int n = snprintf(ev, sizeof ev,
                         "event: gap\ndata: {\"reason\":\"slow\",\"first\":%" PRIu64 ",\"missed\":[%" PRIu64
                         ",%" PRIu64 "]}\n\n",
                         next, st->sub.lag_from, next - 1);
        send_text(st, ev, n);
    } else if (st->sub.owed) {
        struct hr_buf *e = st->sub.owed;
        st->sub.owed = NULL;
        if (st->sub.owed_id > st->sub.last && st->sub.owed_id < next) {
            st->sub.last = st->sub.owed_id;
            hr_http_send(st->c, e, 0, e->len);
        }
        hr_buf_unref(e);
    }
}

static void drained(struct hr_conn *c, void *ud)
{
    struct sse_stream *st = ud;
    hr_http_on_drain(c, NULL, NULL);
    if (st->sub.lagging && st->sub.ch && !hr_conn_closing(c))
        catch_up(st, st->sub.ch, st->sub.ch->last_id + 1);
}

/* Policy "disconnect": its EventSource reconnects with Last-Event-ID and resumes from history. */
static void disconnect_slow(struct sse_stream *st, struct hr_channel *ch)
{
    hr_warn("sse %s: slow consumer, %zu bytes queued; disconnecting", ch->name, hr_conn_queued(st->c));
    send_text(st, "event: close\ndata: {\"reason\":\"slow consumer\"}\n\n", 47);
    hr_conn_end(st->c, st->c->srv->limits.close_timeout_ms);
}

static int deliver(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m)
{
    struct sse_stream *st = (struct sse_stream *)sub;
    if (hr_conn_closing(st->c))
        return HR_ECLOSED;
    /* a reader that does not keep up is never buffered for without bound (hub.h); nor is one
     * the memory budget picked among the largest queues (shed) */
    if (hr_conn_over(st->c)) {
        if (ch->policy == HR_POLICY_DISCONNECT) {
            disconnect_slow(st, ch);
            return HR_ECLOSED;
        }
        if (!sub->lagging) {
            sub->lagging = 1;
            sub->lag_from = m->id;
            hr_http_on_drain(st->c, drained, st);
        }
        if (ch->policy == HR_POLICY_COALESCE)
            hr_sub_owe(sub, hr_hub_encoding(m, HR_FMT_SSE, make_event, ch->epoch), m->id);
        return 0;
    }
    if (sub->lagging) {
        hr_http_on_drain(st->c, NULL, NULL);
        catch_up(st, ch, m->id);
    }
    return send_msg(st, m) < 0 ? HR_ECLOSED : 0;
}

static const struct hr_sub_ops sse_ops = {.deliver = deliver};

/* The memory budget picked this stream among the largest queues: its channel's policy now.
 * Skip and coalesce need nothing more: hr_conn_over() holds messages back until it drains. */
static void shed(struct hr_conn *c, void *ud)
{
    struct sse_stream *st = ud;
    if (st->ch->policy == HR_POLICY_DISCONNECT)
        disconnect_slow(st, st->ch);
}

static void aborted(struct hr_conn *c, void *ud)
{
    struct sse_stream *st = ud;
    hr_hub_read_cancel(st->req);
    hr_hub_unsubscribe(&st->sub);
    hr_hub_forget_unused(st->ch);
    free(st);
}

static void send_gap(struct sse_stream *st, const char *reason, uint64_t first)
{
    char ev[160];
    int n = snprintf(ev, sizeof ev, "event: gap\ndata: {\"reason\":\"%s\",\"first\":%" PRIu64 "}\n\n", reason, first);
    send_text(st, ev, n);
}

/* ---- resuming: history is sent a page at a time, as the reader's output drains, then the
 * stream goes live; so a long replay holds at most about --max-queued of memory. */

static void replay_drained(struct hr_conn *c, void *ud);
static void pump(struct sse_stream *st);

/* A page of history: sent until the output is full (the rest is read again later). A page
 * from the store arrives later: the replay goes on from here. */
static void replay_page(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg)
{
    struct sse_stream *st = ud;
    int later = st->req != NULL;
    st->req = NULL;
    if (hr_conn_closing(st->c))
        return;
    if (pg->status < 0) {
        hr_warn("sse %s: history read failed: %s", ch->name, hr_strerror(pg->status));
        hr_conn_end(st->c, st->c->srv->limits.close_timeout_ms);
        return;
    }
    /* history may have been trimmed while this reader was catching up */
    if (st->replay_after + 1 < pg->first) {
        send_gap(st, "trimmed", pg->first);
        st->replay_after = pg->first - 1;
    }
    for (uint32_t i = 0; i < pg->n && !hr_conn_closing(st->c); i++) {
        if (pg->m[i]->id <= st->replay_after)
            continue;
        st->replay_after = pg->m[i]->id;
        if (send_msg(st, pg->m[i]) < 0 || hr_conn_full(st->c))
            break;
    }
    if (later)
        pump(st);
}

static void pump(struct sse_stream *st)
{
    struct hr_channel *ch = st->ch;
    while (!hr_conn_closing(st->c) && !st->req) {
        if (st->replay_after >= ch->last_id) {
            hr_http_on_drain(st->c, NULL, NULL);
            hr_hub_subscribe(ch, &st->sub);
            return;
        }
        if (hr_conn_full(st->c)) {
            hr_http_on_drain(st->c, replay_drained, st);
            return;
        }
        uint64_t before = st->replay_after;
        int rc = hr_hub_read(ch, st->replay_after, HR_HUB_PAGE_MAX, replay_page, st, &st->req);
        if (rc < 0) {
            hr_warn("sse %s: history read failed: %s", ch->name, hr_strerror(rc));
            hr_conn_end(st->c, st->c->srv->limits.close_timeout_ms);
            return;
        }
        if (rc == 0 && st->replay_after == before && !hr_conn_full(st->c) && !hr_conn_closing(st->c)) {
            /* nothing more to read though last_id is ahead: go live (cannot happen while
             * ids are dense; guards the loop) */
            st->replay_after = ch->last_id;
        }
    }
}

static void replay_drained(struct hr_conn *c, void *ud)
{
    pump(ud);
}

void hr_sse_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct hr_push *push = ud;
    size_t nlen;
    char nbuf[HR_CHANNEL_NAME_MAX + 1];
    const char *name = hr_channel_from_path(hr_http_path(req), HR_PUSH_PREFIX_SSE, nbuf, &nlen);
    if (!name) {
        hr_http_error(c, 400, NULL, "invalid channel name");
        return;
    }
    /* EventSource sends Last-Event-ID when it reconnects; a first visit may pass lastEventId */
    char qbuf[96];
    size_t clen = 0;
    const char *cur = hr_http_header_get(req, "Last-Event-ID", &clen);
    if (!cur) {
        long q = hr_http_query(req, "lastEventId", qbuf, sizeof qbuf);
        if (q == -2) {
            hr_http_error(c, 400, NULL, "invalid cursor in Last-Event-ID or lastEventId");
            return;
        }
        if (q >= 0) {
            cur = qbuf;
            clen = (size_t)q;
        }
    }
    struct hr_cursor cursor = {0};
    int resume = cur && clen > 0;
    if (resume && hr_cursor_parse(cur, clen, &cursor) < 0) {
        hr_http_error(c, 400, NULL, "invalid cursor in Last-Event-ID or lastEventId");
        return;
    }
    struct hr_channel *ch = hr_hub_channel(push->hub, name, nlen, 1);
    struct sse_stream *st = calloc(1, sizeof(*st));
    if (!ch || !st) {
        free(st);
        hr_hub_forget_unused(ch);
        hr_http_error(c, 503, NULL, "out of memory");
        return;
    }
    st->sub.ops = &sse_ops;
    st->sub.fmt = HR_FMT_SSE;
    st->c = c;
    st->push = push;
    st->ch = ch;
    if (hr_http_begin(c, 200, "text/event-stream; charset=utf-8",
                      "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
                      "Access-Control-Allow-Origin: *\r\n",
                      HR_HTTP_UNTIL_CLOSE) < 0) {
        free(st);
        hr_hub_forget_unused(ch);
        return;
    }
    char head[HR_CHANNEL_NAME_MAX + 64];
    int n = snprintf(head, sizeof head, ": herald %s\nretry: %u\n\n", ch->name, push->sse_retry_ms);
    struct hr_buf *hb = n > 0 && (size_t)n < sizeof head ? hr_buf_from(head, (size_t)n) : NULL;
    if (hb) {
        hr_http_send(c, hb, 0, hb->len);
        hr_buf_unref(hb);
    }
    hr_http_on_abort(c, aborted, st);
    hr_http_on_shed(c, shed, st);
    st->replay_after = ch->last_id; /* no cursor: live from the next message */
    if (resume) {
        const char *gap = hr_cursor_start(&cursor, ch, &st->replay_after);
        if (gap) {
            send_gap(st, gap, hr_hub_first_id(ch));
            st->replay_after = hr_hub_first_id(ch) - 1;
        }
    }
    pump(st);
}

/* Every SSE stream of every channel gets the same comment line. */
void hr_sse_heartbeat(struct hr_push *p)
{
    struct hr_channel *ch, *tmp;
    HASH_ITER(hh, p->hub->channels, ch, tmp) {
        for (struct hr_sub *s = ch->subs; s; s = s->next) {
            if (s->fmt != HR_FMT_SSE)
                continue;
            struct sse_stream *st = (struct sse_stream *)s;
            if (!hr_conn_closing(st->c) && !hr_conn_over(st->c))
                hr_http_send(st->c, p->ping, 0, p->ping->len);
        }
    }
}
