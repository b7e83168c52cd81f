/* poll.c - short polling (GET /poll/{channel}?since=CURSOR: answers at once) and long polling
 * (GET /lp/{channel}?since=CURSOR: answers at once if anything is newer, else holds the request
 * until a message comes or the long-poll timeout passes, then answers empty). Both answer
 *   {"channel":..,"epoch":..,"gap":null|"trimmed"|"epoch"|"unknown","messages":[...],
 *    "next":"<cursor to send next time>","more":bool}
 * with messages in the JSON form of chan/wire.h, each encoding built once and shared. Each
 * answer is a short-lived subscriber stream (poll.h): the history, gaps and going live are
 * chan/stream.c's. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/metrics.h"
#include "poll.h"
#include "push.h"
#include "wire.h"

/* ---- the clock: the long polls' timeouts, and the polls' deferred free ---------------------- */

static void finish(struct hr_poll *p, int status);
static void clock_cb(uv_timer_t *t);
static void clock_unlink(struct hr_poll *p);

void hr_poll_clock_init(struct hr_poll_clock *k, uv_loop_t *loop)
{
    memset(k, 0, sizeof(*k));
    k->loop = loop;
}

void hr_poll_clock_release(struct hr_poll_clock *k)
{
    while (k->head) {
        struct hr_poll *p = k->head;
        clock_unlink(p);
        finish(p, 0);
    }
}

static void free_dead(struct hr_poll *p)
{
    while (p) {
        struct hr_poll *next = p->lnext;
        free(p);
        p = next;
    }
}

static void clock_closed_cb(uv_handle_t *h)
{
    free(h);
}

/* Set the timer for what is due first, or let it go when nothing is left. */
static void clock_arm(struct hr_poll_clock *k)
{
    if (!k->timer)
        return;
    uint64_t now = uv_now(k->loop);
    if (!k->dead && !k->head) {
        uv_close((uv_handle_t *)k->timer, clock_closed_cb);
        k->timer = NULL;
        return;
    }
    uint64_t due = k->dead ? now : k->head->deadline;
    if (uv_is_active((uv_handle_t *)k->timer) && k->due <= due)
        return;
    k->due = due;
    uv_timer_start(k->timer, clock_cb, due > now ? due - now : 0, 0);
}

/* The clock's timer, made when a poll needs it. 0 or HR_ENOMEM. */
static int clock_need(struct hr_poll_clock *k)
{
    if (k->timer)
        return 0;
    if (!(k->timer = malloc(sizeof(*k->timer))))
        return HR_ENOMEM;
    uv_timer_init(k->loop, k->timer);
    k->timer->data = k;
    return 0;
}

static void clock_unlink(struct hr_poll *p)
{
    struct hr_poll_clock *k = p->clock;
    if (!p->timed)
        return;
    if (p->lprev)
        p->lprev->lnext = p->lnext;
    else
        k->head = p->lnext;
    if (p->lnext)
        p->lnext->lprev = p->lprev;
    else
        k->tail = p->lprev;
    p->lprev = p->lnext = NULL;
    p->timed = 0;
}

static void clock_cb(uv_timer_t *t)
{
    struct hr_poll_clock *k = t->data;
    uint64_t now = uv_now(k->loop);
    struct hr_poll *dead = k->dead;
    k->dead = NULL;
    free_dead(dead); /* ended before this turn */
    while (k->head && k->head->deadline <= now) {
        struct hr_poll *p = k->head;
        clock_unlink(p);
        finish(p, 0);
    }
    clock_arm(k);
}

/* ---- the answer as a stream: its ops write into the batch ---------------------------------- */

static struct hr_poll *poll_of(const struct hr_chan_stream *st)
{
    return (struct hr_poll *)st;
}

/* The poll leaves its channel now (it may be inside one of its ops: freed on the clock's next
 * turn). */
static void end(struct hr_poll *p)
{
    struct hr_poll_clock *k = p->clock;
    HR_METRIC_INC(closed[p->timeout_ms ? HR_MT_LONGPOLL : HR_MT_POLL]);
    for (uint32_t i = 0; i < p->n; i++)
        hr_buf_unref(p->items[i].buf);
    HR_ARRAY_FREE(p->items, p->n, p->cap);
    hr_chan_stream_stop(&p->st);
    clock_unlink(p);
    p->lnext = k->dead;
    k->dead = p;
    clock_arm(k);
}

static void finish(struct hr_poll *p, int status)
{
    if (p->done)
        return;
    p->done = 1;
    /* nothing sent: the reader's position (past a gap, the first kept id - 1) */
    if (!p->n)
        p->next = p->st.sub.last;
    p->more = p->next < p->st.sub.ch->last_id;
    p->answer_cb(p, status);
    end(p);
}

static struct hr_buf *make_json_cb(const struct hr_hub_msg *m, void *ud)
{
    return hr_msg_json(m, ud);
}

static struct hr_buf *encode(struct hr_chan_stream *st, struct hr_hub_msg *m)
{
    struct hr_buf *e = hr_hub_encoding(m, HR_FMT_POLL, make_json_cb, st->sub.ch->epoch);
    if (!e)
        poll_of(st)->oom = 1;
    return e;
}

static int add(struct hr_chan_stream *st, struct hr_buf *enc, uint64_t id)
{
    struct hr_poll *p = poll_of(st);
    struct hr_slice *sl = HR_ARRAY_PUSH(p->items, p->n, p->cap, 16);
    if (!sl) {
        finish(p, 0); /* what it has, as when an encoding cannot be made */
        return HR_ENOMEM;
    }
    *sl = (struct hr_slice){hr_buf_ref(enc), 0, enc->len};
    p->next = id;
    /* a held long poll is answered by the message that comes (one: each commit is fanned out
     * before the next enters the history) */
    if (p->waiting)
        finish(p, 0);
    return 0;
}

/* An answer has one gap, the first found (at its start, or a trim met while reading). */
static void write_gap(struct hr_chan_stream *st, const char *reason, uint64_t first,
                      uint64_t missed_from, uint64_t missed_to)
{
    struct hr_poll *p = poll_of(st);
    if (!p->gap)
        p->gap = reason;
}

/* Not reached: a poll's output is never over (it answers at max messages). */
static void close_slow(struct hr_chan_stream *st)
{
    finish(poll_of(st), 0);
}

static void close_error(struct hr_chan_stream *st, int status, const char *what)
{
    struct hr_poll *p = poll_of(st);
    /* a message that cannot be encoded ends the batch; it is in the next answer */
    finish(p, p->oom ? 0 : status);
}

static int closing(const struct hr_chan_stream *st)
{
    return poll_of(st)->done;
}

static int full(const struct hr_chan_stream *st)
{
    const struct hr_poll *p = poll_of(st);
    return p->n >= p->max;
}

static int over(const struct hr_chan_stream *st)
{
    return 0;
}

/* One page per answer: more=true sends the reader back for the next. */
static void page_done(struct hr_chan_stream *st)
{
    finish(poll_of(st), 0);
}

/* Up to date: a short poll answers; so does a long poll with a gap to tell; else it waits. */
static void caught_up(struct hr_chan_stream *st)
{
    struct hr_poll *p = poll_of(st);
    if (!p->timeout_ms || p->gap || p->n) {
        finish(p, 0);
        return;
    }
    /* held: on the clock's list, at its place by deadline (from the tail: with one timeout
     * for every long poll, the tail) */
    struct hr_poll_clock *k = p->clock;
    p->waiting = 1;
    p->deadline = uv_now(k->loop) + p->timeout_ms;
    struct hr_poll *after = k->tail;
    while (after && after->deadline > p->deadline)
        after = after->lprev;
    p->lprev = after;
    p->lnext = after ? after->lnext : k->head;
    if (p->lnext)
        p->lnext->lprev = p;
    else
        k->tail = p;
    if (after)
        after->lnext = p;
    else
        k->head = p;
    p->timed = 1;
    clock_arm(k);
}

static const struct hr_chan_stream_ops poll_ops = {
    .sub = HR_CHAN_STREAM_SUB_OPS,
    .fmt = HR_FMT_POLL,
    .encode = encode,
    .write = add,
    .write_gap = write_gap,
    .close_slow = close_slow,
    .close_error = close_error,
    .closing = closing,
    .full = full,
    .over = over,
    .page_done = page_done,
    .caught_up = caught_up,
};

struct hr_poll *hr_poll_new(struct hr_poll_clock *clock, struct hr_channel *ch, uint32_t max,
                            uint32_t timeout_ms, hr_poll_answer_cb cb, void *ud)
{
    struct hr_poll *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (clock_need(clock) < 0) {
        free(p);
        return NULL;
    }
    hr_chan_stream_init(&p->st, &poll_ops, ch);
    p->clock = clock;
    p->answer_cb = cb;
    p->ud = ud;
    p->max = max < HR_HUB_PAGE_MAX ? max : HR_HUB_PAGE_MAX;
    p->timeout_ms = timeout_ms;
    HR_METRIC_INC(opened[timeout_ms ? HR_MT_LONGPOLL : HR_MT_POLL]);
    return p;
}

void hr_poll_start(struct hr_poll *p, const struct hr_cursor *cur)
{
    /* no cursor: from the start of the history (a gap "trimmed" when the start is gone) */
    static const struct hr_cursor start = {0};
    hr_chan_stream_start(&p->st, cur ? cur : &start);
}

void hr_poll_cancel(struct hr_poll *p)
{
    if (p->done)
        return;
    p->done = 1;
    end(p);
}

int hr_poll_frame(const struct hr_poll *p, struct hr_buf **head, struct hr_buf **tail)
{
    const struct hr_channel *ch = p->st.sub.ch;
    const char *gap = p->gap;
    char h[HR_CHANNEL_NAME_MAX + 200], t[160];
    int hn =
        snprintf(h, sizeof h, "{\"channel\":\"%s\",\"epoch\":\"%s\",\"gap\":%s%s%s,\"messages\":[",
                 ch->name, ch->epoch, gap ? "\"" : "", gap ? gap : "null", gap ? "\"" : "");
    int tn = snprintf(t, sizeof t, "],\"next\":\"%s:%" PRIu64 "\",\"more\":%s}\n", ch->epoch,
                      p->next, p->more ? "true" : "false");
    *head = hr_buf_from(h, (size_t)hn);
    *tail = hr_buf_from(t, (size_t)tn);
    if (*head && *tail)
        return 0;
    hr_buf_unref(*head);
    hr_buf_unref(*tail);
    *head = *tail = NULL;
    return HR_ENOMEM;
}

/* ---- HTTP: GET /poll/{ch} and GET /lp/{ch} ------------------------------------------------ */

/* Write the answer: a head, the shared message encodings separated by commas, a tail. */
static void write_answer(struct hr_conn *c, const struct hr_poll *p)
{
    /* an HTTP poll runs on its transports' clock (handle) */
    const struct hr_push *push =
        (const struct hr_push *)((const char *)p->clock - offsetof(struct hr_push, lp_clock));
    char cors[HR_ORIGIN_CORS_MAX], hdr[HR_ORIGIN_CORS_MAX + 32];
    hr_chan_cors(push, c, cors, sizeof cors);
    snprintf(hdr, sizeof hdr, "Cache-Control: no-store\r\n%s", cors);
    struct hr_buf *hb = NULL, *tb = NULL, *comma = hr_buf_from(",", 1);
    hr_poll_frame(p, &hb, &tb);
    uint64_t total = (hb ? hb->len : 0) + (tb ? tb->len : 0) + (p->n ? p->n - 1 : 0);
    for (uint32_t i = 0; i < p->n; i++)
        total += p->items[i].len;
    if (hb && tb && comma && hr_http_begin(c, 200, "application/json", hdr, total) == 0) {
        struct hr_slice batch[8];
        unsigned k = 0;
        batch[k++] = (struct hr_slice){hb, 0, hb->len};
        for (uint32_t i = 0; i < p->n; i++) {
            if (i)
                batch[k++] = (struct hr_slice){comma, 0, 1};
            batch[k++] = p->items[i];
            if (k >= 7) {
                hr_http_sendv(c, batch, k);
                k = 0;
            }
        }
        batch[k++] = (struct hr_slice){tb, 0, tb->len};
        hr_http_sendv(c, batch, k);
        hr_http_finish(c);
    } else if (!hr_conn_closing(c)) {
        hr_conn_close(c);
    }
    hr_buf_unref(hb);
    hr_buf_unref(tb);
    hr_buf_unref(comma);
}

static void answered_cb(struct hr_poll *p, int status)
{
    struct hr_conn *c = p->ud;
    hr_http_on_abort(c, NULL, NULL);
    if (hr_conn_closing(c))
        return;
    if (status < 0)
        hr_http_error(c, 503, NULL, "could not read the history");
    else
        write_answer(c, p);
}

/* The client went away before its answer (a long poll waiting, a page read from the store). */
static void aborted_cb(struct hr_conn *c, void *ud)
{
    hr_poll_cancel(ud);
}

static void handle(struct hr_conn *c, struct hr_http_request *req, struct hr_push *push,
                   const char *prefix, uint32_t timeout_ms)
{
    struct hr_chan_request r;
    if (hr_chan_open_request(c, req, push, prefix, HR_CHAN_CURSOR_SINCE, 0, &r) < 0)
        return;
    if (timeout_ms && r.exp_ms) {
        /* a long poll held past its token's expiry answers empty then; the next is refused */
        uint64_t now = hr_wall_ms(), left = r.exp_ms > now ? r.exp_ms - now : 1;
        if (left < timeout_ms)
            timeout_ms = (uint32_t)left;
    }
    struct hr_poll *p =
        hr_poll_new(&push->lp_clock, r.ch, push->max_batch, timeout_ms, answered_cb, c);
    if (!p) {
        hr_http_error(c, 503, NULL, "out of memory");
        hr_hub_forget_unused(r.ch);
        return;
    }
    hr_http_on_abort(c, aborted_cb, p);
    hr_poll_start(p, r.has_cursor ? &r.cursor : NULL);
}

void hr_chan_poll_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    handle(c, req, ud, HR_PUSH_PREFIX_POLL, 0);
}

void hr_chan_lp_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct hr_push *push = ud;
    /* counted from now until answered (hr_http_finish) against --max-lp-per-ip */
    if (!hr_conn_poll_take(c)) {
        char cors[HR_ORIGIN_CORS_MAX], hdr[HR_ORIGIN_CORS_MAX + 32];
        hr_chan_cors(push, c, cors, sizeof cors);
        snprintf(hdr, sizeof hdr, "Retry-After: 1\r\n%s", cors);
        hr_http_error(c, 429, hdr, "too many pending long-polls");
        return;
    }
    handle(c, req, push, HR_PUSH_PREFIX_LP, push->lp_timeout_ms);
}
