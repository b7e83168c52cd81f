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
#include "core/metrics.h"
#include "push.h"
#include "stream.h"

struct sse_stream {
    struct hr_chan_stream st; /* first */
    struct hr_conn *c;
    uint64_t exp_ms; /* its token's expiry (Unix ms), 0: none */
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

static struct sse_stream *sse_of(const struct hr_chan_stream *st)
{
    return (struct sse_stream *)st;
}

static struct hr_buf *encode(struct hr_chan_stream *st, struct hr_hub_msg *m)
{
    return hr_hub_encoding(m, HR_FMT_SSE, make_event, st->sub.ch->epoch);
}

static int write_event(struct hr_chan_stream *st, struct hr_buf *e, uint64_t id)
{
    return hr_http_send(sse_of(st)->c, e, 0, e->len);
}

static void send_text(struct sse_stream *st, const char *text, int n)
{
    struct hr_buf *b = n > 0 ? hr_buf_from(text, (size_t)n) : NULL;
    if (b) {
        hr_http_send(st->c, b, 0, b->len);
        hr_buf_unref(b);
    }
}

static void write_gap(struct hr_chan_stream *st, const char *reason, uint64_t first,
                      uint64_t missed_from, uint64_t missed_to)
{
    char ev[160];
    int n = missed_from
                ? snprintf(ev, sizeof ev,
                           "event: gap\ndata: {\"reason\":\"%s\",\"first\":%" PRIu64
                           ",\"missed\":[%" PRIu64 ",%" PRIu64 "]}\n\n",
                           reason, first, missed_from, missed_to)
                : snprintf(ev, sizeof ev,
                           "event: gap\ndata: {\"reason\":\"%s\",\"first\":%" PRIu64 "}\n\n",
                           reason, first);
    send_text(sse_of(st), ev, n);
}

/* Policy "disconnect": its EventSource reconnects with Last-Event-ID and resumes from history. */
static void close_slow(struct hr_chan_stream *st)
{
    struct sse_stream *s = sse_of(st);
    hr_warn("sse %s: slow consumer, %zu bytes queued; disconnecting", st->sub.ch->name,
            hr_conn_queued(s->c));
    send_text(s, "event: close\ndata: {\"reason\":\"slow consumer\"}\n\n", 47);
    hr_conn_end(s->c, s->c->srv->limits.close_timeout_ms);
}

static void close_error(struct hr_chan_stream *st, int status, const char *what)
{
    struct sse_stream *s = sse_of(st);
    hr_warn("sse %s: %s: %s", st->sub.ch->name, what, hr_strerror(status));
    hr_conn_end(s->c, s->c->srv->limits.close_timeout_ms);
}

static int closing(const struct hr_chan_stream *st)
{
    return hr_conn_closing(sse_of(st)->c);
}

static int full(const struct hr_chan_stream *st)
{
    return hr_conn_full(sse_of(st)->c);
}

static int over(const struct hr_chan_stream *st)
{
    return hr_conn_over(sse_of(st)->c);
}

static const struct hr_chan_stream_ops sse_ops = {
    .sub = HR_CHAN_STREAM_SUB_OPS,
    .fmt = HR_FMT_SSE,
    .encode = encode,
    .write = write_event,
    .write_gap = write_gap,
    .close_slow = close_slow,
    .close_error = close_error,
    .closing = closing,
    .full = full,
    .over = over,
};

static void drained_cb(struct hr_conn *c, void *ud)
{
    hr_chan_stream_drained(ud);
}

static void shed_cb(struct hr_conn *c, void *ud)
{
    hr_chan_stream_shed(ud);
}

static void aborted_cb(struct hr_conn *c, void *ud)
{
    struct sse_stream *s = ud;
    HR_METRIC_INC(closed[HR_MT_SSE]);
    hr_chan_stream_stop(&s->st);
    free(s);
}

void hr_chan_sse_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct hr_push *push = ud;
    struct hr_chan_request r;
    if (hr_chan_open_request(c, req, push, HR_PUSH_PREFIX_SSE, HR_CHAN_CURSOR_LAST_EVENT_ID,
                             sizeof(struct sse_stream), &r) < 0)
        return;
    struct hr_channel *ch = r.ch;
    struct sse_stream *s = r.state;
    s->c = c;
    s->exp_ms = r.exp_ms;
    hr_chan_stream_init(&s->st, &sse_ops, ch);
    char cors[HR_ORIGIN_CORS_MAX], hdr[HR_ORIGIN_CORS_MAX + 64];
    hr_chan_cors(push, c, cors, sizeof cors);
    snprintf(hdr, sizeof hdr, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n%s", cors);
    if (hr_http_begin(c, 200, "text/event-stream; charset=utf-8", hdr, HR_HTTP_UNTIL_CLOSE) < 0) {
        free(s);
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
    HR_METRIC_INC(opened[HR_MT_SSE]);
    hr_http_on_abort(c, aborted_cb, s);
    hr_http_on_shed(c, shed_cb, s);
    hr_http_on_drain(c, drained_cb, s);
    hr_chan_stream_start(&s->st, r.has_cursor ? &r.cursor : NULL);
}

static void heartbeat_one(struct hr_chan_stream *st, void *ud)
{
    struct hr_buf *ping = ud;
    if (!closing(st) && !over(st))
        hr_http_send(sse_of(st)->c, ping, 0, ping->len);
}

/* Every SSE stream of every channel gets the same comment line. */
void hr_chan_sse_heartbeat(struct hr_push *p)
{
    hr_chan_stream_each(p->hub, &sse_ops, heartbeat_one, p->ping);
}

static void expire_one(struct hr_chan_stream *st, void *ud)
{
    struct sse_stream *s = sse_of(st);
    if (!s->exp_ms || *(const uint64_t *)ud < s->exp_ms || closing(st))
        return;
    /* EventSource would reconnect with the same (expired) token: the page gets a new one and
     * opens a new stream from its last id (docs/security.md "Tokens") */
    send_text(s, "event: error\ndata: {\"error\":\"token expired\"}\n\n", 46);
    hr_conn_end(s->c, s->c->srv->limits.close_timeout_ms);
}

void hr_chan_sse_expire(struct hr_push *p, uint64_t now_ms)
{
    hr_chan_stream_each(p->hub, &sse_ops, expire_one, &now_ms);
}

/* The hint's range: soon enough that a restart (or the herald taking over) is hardly noticed,
 * spread so that a server's readers do not all come back in the same instant, and not sooner
 * than a new herald takes to load its store. */
#define SSE_SHUTDOWN_RETRY_MIN_MS 500
#define SSE_SHUTDOWN_RETRY_SPREAD_MS 1000

static void shutdown_one(struct hr_chan_stream *st, void *ud)
{
    struct sse_stream *s = sse_of(st);
    unsigned *seed = ud;
    if (closing(st))
        return;
    /* a cheap spread (an LCG): the values need not be unpredictable, only different */
    *seed = *seed * 1103515245u + 12345u;
    char text[96];
    int n = snprintf(text, sizeof text, ": server shutting down\nretry: %u\n\n",
                     SSE_SHUTDOWN_RETRY_MIN_MS + (*seed >> 8) % SSE_SHUTDOWN_RETRY_SPREAD_MS);
    send_text(s, text, n);
    /* the end of the response: EventSource reconnects after retry with Last-Event-ID */
    hr_conn_end(s->c, s->c->srv->limits.close_timeout_ms);
}

void hr_chan_sse_shutdown(struct hr_push *p)
{
    unsigned seed = (unsigned)uv_hrtime();
    hr_chan_stream_each(p->hub, &sse_ops, shutdown_one, &seed);
}
