/* poll.c - short polling (GET /poll/{channel}?since=CURSOR: answers at once) and long polling
 * (GET /lp/{channel}?since=CURSOR: answers at once if anything is newer, else holds the request
 * until a message comes or the long-poll timeout passes, then answers empty). Both answer
 *   {"channel":..,"epoch":..,"gap":null|"trimmed"|"epoch"|"unknown","messages":[...],
 *    "next":"<cursor to send next time>","more":bool}
 * with messages in the JSON form of hub/wire.h, each encoding built once and shared. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "push.h"
#include "wire.h"

/* An answer being made: a page of history is read (from the cache at once, or from the
 * store later), then written. */
struct poll_answer {
    struct hr_conn *c;
    struct hr_push *push;
    struct hr_channel *ch;
    const char *gap;
    struct hr_hub_read *req;
    struct hr_slice items[HR_HUB_PAGE_MAX];  /* at most max_batch (clamped to this) */
    uint32_t n, max;
    uint64_t since, next;
    int more;
};

static struct hr_buf *make_json_cb(const struct hr_hub_msg *m, void *ud)
{
    return hr_msg_json(m, ud);
}

static void write_answer(struct poll_answer *a);

static void collect_page_cb(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg)
{
    struct poll_answer *a = ud;
    int later = a->req != NULL;
    a->req = NULL;
    if (pg->status < 0) {
        a->n = 0;
        a->more = -1;
    } else {
        /* messages trimmed away after the cursor: said, and the answer goes on from there */
        if (!a->gap && a->since + 1 < pg->first)
            a->gap = "trimmed";
        for (uint32_t i = 0; i < pg->n && a->n < a->max; i++) {
            struct hr_buf *e = hr_hub_encoding(pg->m[i], HR_FMT_POLL, make_json_cb, ch->epoch);
            if (!e)
                break;
            a->items[a->n++] = (struct hr_slice){hr_buf_ref(e), 0, e->len};
            a->next = pg->m[i]->id;
        }
        /* more after this batch (a page from the store may also stop short of it) */
        a->more = a->next < ch->last_id;
    }
    if (later)
        write_answer(a);
}

static void answer_free(struct poll_answer *a)
{
    hr_hub_read_cancel(a->req);
    for (uint32_t i = 0; i < a->n; i++)
        hr_buf_unref(a->items[i].buf);
    free(a);
}

/* A poll whose page is being read from the store, and the connection goes away. */
static void answer_aborted_cb(struct hr_conn *c, void *ud)
{
    struct poll_answer *a = ud;
    struct hr_channel *ch = a->ch;
    answer_free(a);
    hr_hub_forget_unused(ch);
}

/* Answer: read a page after since; the answer is written when it is there. */
static void answer(struct hr_conn *c, struct hr_push *push, struct hr_channel *ch, uint64_t since,
                   const char *gap)
{
    struct poll_answer *a = calloc(1, sizeof(*a));
    if (!a) {
        hr_http_error(c, 503, NULL, "out of memory");
        return;
    }
    a->c = c;
    a->push = push;
    a->ch = ch;
    a->gap = gap;
    a->since = since;
    a->max = push->max_batch < HR_HUB_PAGE_MAX ? push->max_batch : HR_HUB_PAGE_MAX;
    a->next = since;
    int rc = hr_hub_read(ch, since, a->max, collect_page_cb, a, &a->req);
    if (rc < 0) {
        answer_free(a);
        hr_http_error(c, 503, NULL, "could not read the history");
        return;
    }
    if (rc == 1) {
        hr_http_on_abort(c, answer_aborted_cb, a);
        return;
    }
    write_answer(a);
}

/* Write the answer: a head, the shared message encodings separated by commas, a tail. */
static void write_answer(struct poll_answer *a)
{
    struct hr_conn *c = a->c;
    struct hr_channel *ch = a->ch;
    const char *gap = a->gap;
    hr_http_on_abort(c, NULL, NULL);
    if (a->more < 0) {
        answer_free(a);
        hr_http_error(c, 503, NULL, "could not read the history");
        return;
    }
    char head[HR_CHANNEL_NAME_MAX + 200], tail[160];
    int hn = snprintf(head, sizeof head, "{\"channel\":\"%s\",\"epoch\":\"%s\",\"gap\":%s%s%s,\"messages\":[",
                      ch->name, ch->epoch, gap ? "\"" : "", gap ? gap : "null", gap ? "\"" : "");
    int tn = snprintf(tail, sizeof tail, "],\"next\":\"%s:%" PRIu64 "\",\"more\":%s}\n", ch->epoch,
                      a->next, a->more ? "true" : "false");
    uint64_t total = (uint64_t)hn + (uint64_t)tn + (a->n ? a->n - 1 : 0);
    for (uint32_t i = 0; i < a->n; i++)
        total += a->items[i].len;
    struct hr_buf *hb = hr_buf_from(head, (size_t)hn), *tb = hr_buf_from(tail, (size_t)tn),
                  *comma = hr_buf_from(",", 1);
    if (hb && tb && comma &&
        hr_http_begin(c, 200, "application/json", "Cache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\n",
                      total) == 0) {
        struct hr_slice batch[8];
        unsigned k = 0;
        batch[k++] = (struct hr_slice){hb, 0, hb->len};
        for (uint32_t i = 0; i < a->n; i++) {
            if (i)
                batch[k++] = (struct hr_slice){comma, 0, 1};
            batch[k++] = a->items[i];
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
    answer_free(a);
}

/* Parse the channel and since; answer 400 on bad input. Returns the channel or NULL. */
static struct hr_channel *request(struct hr_conn *c, struct hr_http_request *req, struct hr_push *push,
                                  const char *prefix, uint64_t *since, const char **gap, int *given)
{
    struct hr_chan_request r;
    if (hr_chan_open_request(c, req, push, prefix, HR_CHAN_CURSOR_SINCE, 0, &r) < 0)
        return NULL;
    struct hr_channel *ch = r.ch;
    *given = r.has_cursor;
    *since = 0;
    *gap = NULL;
    if (*given)
        *gap = hr_cursor_start(&r.cursor, ch, since);
    else if (hr_hub_first_id(ch) > 1)
        *gap = "trimmed"; /* from the start, but the start is gone */
    return ch;
}

void hr_poll_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct hr_push *push = ud;
    uint64_t since;
    const char *gap;
    int given;
    struct hr_channel *ch = request(c, req, push, HR_PUSH_PREFIX_POLL, &since, &gap, &given);
    if (ch) {
        answer(c, push, ch, since, gap);
        /* a channel with a read under way has history: it is not forgotten */
        hr_hub_forget_unused(ch);
    }
}

/* ---- long polling ------------------------------------------------------------------------ */

struct lp_wait {
    struct hr_sub sub;      /* first */
    struct hr_conn *c;
    struct hr_push *push;
    uint64_t since;
    uv_timer_t timer;
};

static void wait_free_cb(uv_handle_t *h)
{
    free(h->data);
}

static void wait_end(struct lp_wait *w)
{
    hr_hub_unsubscribe(&w->sub);
    hr_http_on_abort(w->c, NULL, NULL);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, wait_free_cb);
}

static int lp_deliver(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m)
{
    struct lp_wait *w = (struct lp_wait *)sub;
    struct hr_conn *c = w->c;
    struct hr_push *push = w->push;
    uint64_t since = w->since;
    wait_end(w);
    if (!hr_conn_closing(c))
        answer(c, push, ch, since, NULL);
    return 0; /* already unsubscribed */
}

static const struct hr_sub_ops lp_ops = {.deliver = lp_deliver};

static void lp_timeout_cb(uv_timer_t *t)
{
    struct lp_wait *w = t->data;
    struct hr_channel *ch = w->sub.ch;
    struct hr_conn *c = w->c;
    struct hr_push *push = w->push;
    uint64_t since = w->since;
    wait_end(w);
    if (ch && !hr_conn_closing(c))
        answer(c, push, ch, since, NULL);
    hr_hub_forget_unused(ch);
}

static void lp_aborted_cb(struct hr_conn *c, void *ud)
{
    struct lp_wait *w = ud;
    struct hr_channel *ch = w->sub.ch;
    wait_end(w);
    hr_hub_forget_unused(ch);
}

void hr_lp_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct hr_push *push = ud;
    uint64_t since;
    const char *gap;
    int given;
    struct hr_channel *ch = request(c, req, push, HR_PUSH_PREFIX_LP, &since, &gap, &given);
    if (!ch)
        return;
    if (gap || ch->last_id > since) {
        answer(c, push, ch, since, gap);
        return;
    }
    struct lp_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        hr_http_error(c, 503, NULL, "out of memory");
        hr_hub_forget_unused(ch);
        return;
    }
    w->sub.ops = &lp_ops;
    w->sub.fmt = HR_FMT_POLL;
    w->c = c;
    w->push = push;
    w->since = since;
    uv_timer_init(c->srv->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, lp_timeout_cb, push->lp_timeout_ms, 0);
    hr_hub_subscribe(ch, &w->sub);
    hr_http_on_abort(c, lp_aborted_cb, w);
}
