/* conn.c - connection lifecycle, reads through the shared scratch buffer, write queue with
 * backpressure, graceful end (flush, shutdown, linger), deferred free. */
#include "conn.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "server.h"

#define HR_CONN_CLOSED (1 << 7)   /* close_cb ran; memory waits for the last hold */
#define HR_CONN_SHUTDOWN (1 << 8) /* uv_shutdown started */
#define HR_MAX_SLICES 8

struct hr_write_req {
    uv_write_t req;
    uint32_t charged; /* bytes charged to the memory budget for this write */
    uint8_t n;
    struct hr_buf *bufs[HR_MAX_SLICES];
};

static void close_cb(uv_handle_t *h);
static void start_reading(struct hr_conn *c);
static void conn_shed_cb(struct hr_budget_queue *q, int hard);

struct hr_conn *hr_conn_new(struct hr_server *srv)
{
    struct hr_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = srv;
    c->bq.shed = conn_shed_cb;
    return c;
}

int hr_conn_over(const struct hr_conn *c)
{
    return hr_conn_queued(c) > c->srv->limits.max_queued || c->bq.state != HR_BQ_OK;
}

/* The memory budget picked this connection's queue (budget.h): soft, its protocol applies the
 * slow-consumer policy (it is "full" until its output drains to half of what it is now); hard,
 * the policy did not free it in time: close without flushing. */
static void conn_shed_cb(struct hr_budget_queue *q, int hard)
{
    struct hr_conn *c = (struct hr_conn *)((char *)q - offsetof(struct hr_conn, bq));
    if (c->flags & HR_CONN_CLOSING)
        return;
    /* an ending connection only flushes what it holds: nothing to apply a policy to */
    if (hard || (c->flags & HR_CONN_ENDING) || !c->proto || !c->proto->on_shed) {
        hr_warn("%s connection: %zu bytes queued while over the memory budget; dropped",
                c->proto ? c->proto->name : "?", q->bytes);
        q->state = HR_BQ_DROPPED;
        hr_conn_close(c);
        return;
    }
    c->flags |= HR_CONN_FULL;
    c->proto->on_shed(c);
}

void hr_conn_set_timeout(struct hr_conn *c, uint64_t ms)
{
    c->deadline = ms ? uv_now(c->srv->loop) + ms : 0;
}

/* Keep the unconsumed tail of the input for the next read. */
static int keep_pending(struct hr_conn *c, const char *data, size_t len, int from_pending)
{
    if (from_pending) {
        if (len && data != c->pending)
            memmove(c->pending, data, len);
        c->pending_len = (uint32_t)len;
    } else if (len) {
        if (len > c->pending_cap) {
            char *p = realloc(c->pending, len);
            if (!p)
                return HR_ENOMEM;
            c->pending = p;
            c->pending_cap = (uint32_t)len;
        }
        memcpy(c->pending, data, len);
        c->pending_len = (uint32_t)len;
    }
    if (c->pending_len == 0 && c->pending) {
        free(c->pending);
        c->pending = NULL;
        c->pending_cap = 0;
    }
    return 0;
}

/* Hand input to the protocol until it stops making progress; a protocol may switch to
 * another (an upgrade) part-way, so it is called again with what is left. */
static void run_input(struct hr_conn *c, char *data, size_t len, int from_pending)
{
    while (len > 0 && !(c->flags & (HR_CONN_PAUSED | HR_CONN_CLOSING | HR_CONN_ENDING))) {
        c->flags |= HR_CONN_IN_READ;
        ssize_t used = c->proto->on_read(c, data, len);
        c->flags &= ~HR_CONN_IN_READ;
        if (used < 0)
            return;
        if (used == 0)
            break;
        data += used;
        len -= (size_t)used;
    }
    if (c->flags & (HR_CONN_CLOSING | HR_CONN_ENDING)) {
        c->pending_len = 0;
        return;
    }
    if (keep_pending(c, data, len, from_pending) < 0) {
        hr_conn_close(c);
        return;
    }
    /* A protocol that stops consuming (one request at a time) must not make us buffer
     * without bound: stop reading until it resumes. */
    if (c->pending_len > c->srv->limits.max_head + HR_SCRATCH_SIZE &&
        (c->flags & HR_CONN_READING)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->flags &= ~HR_CONN_READING;
    }
}

void hr_conn_process_pending(struct hr_conn *c)
{
    if (c->pending_len &&
        !(c->flags & (HR_CONN_PAUSED | HR_CONN_CLOSING | HR_CONN_ENDING | HR_CONN_IN_READ)))
        run_input(c, c->pending, c->pending_len, 1);
    if (!(c->flags & (HR_CONN_PAUSED | HR_CONN_CLOSING)))
        start_reading(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct hr_conn *c = (struct hr_conn *)h;
    /* libuv calls alloc then read, one pair at a time, and read_cb consumes or copies
     * everything, so a single buffer per loop serves every connection. */
    buf->base = c->srv->scratch;
    buf->len = HR_SCRATCH_SIZE;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct hr_conn *c = (struct hr_conn *)s;
    if (nread == 0 || (c->flags & HR_CONN_CLOSING))
        return;
    if (nread < 0) {
        if (nread == UV_EOF && !(c->flags & HR_CONN_ENDING) && c->proto->on_eof)
            c->proto->on_eof(c);
        else
            hr_conn_close(c);
        return;
    }
    if (c->flags & HR_CONN_ENDING)
        return; /* lingering: discard until the peer closes */
    if (c->pending_len) {
        size_t need = (size_t)c->pending_len + (size_t)nread;
        if (need > c->pending_cap) {
            char *p = realloc(c->pending, need);
            if (!p) {
                hr_conn_close(c);
                return;
            }
            c->pending = p;
            c->pending_cap = (uint32_t)need;
        }
        memcpy(c->pending + c->pending_len, buf->base, (size_t)nread);
        c->pending_len = (uint32_t)need;
        run_input(c, c->pending, c->pending_len, 1);
    } else {
        run_input(c, buf->base, (size_t)nread, 0);
    }
}

static void start_reading(struct hr_conn *c)
{
    if (c->flags & (HR_CONN_READING | HR_CONN_CLOSING))
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
        c->flags |= HR_CONN_READING;
}

void hr_conn_start(struct hr_conn *c)
{
    start_reading(c);
}

void hr_conn_pause(struct hr_conn *c)
{
    c->flags |= HR_CONN_PAUSED;
    if (c->flags & HR_CONN_READING) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->flags &= ~HR_CONN_READING;
    }
}

void hr_conn_resume(struct hr_conn *c)
{
    if (c->flags & HR_CONN_CLOSING)
        return;
    c->flags &= ~HR_CONN_PAUSED;
    /* Pending input runs from the loop, not from here: the caller may be deep in a
     * callback of this very connection. */
    if (c->pending_len)
        hr_server_mark_ready(c->srv, c);
    else
        start_reading(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct hr_conn *c = (struct hr_conn *)req->handle;
    free(req);
    if (status < 0 && !(c->flags & HR_CONN_CLOSING))
        hr_conn_close(c);
}

static void start_shutdown(struct hr_conn *c)
{
    if (c->flags & (HR_CONN_SHUTDOWN | HR_CONN_CLOSING))
        return;
    c->flags |= HR_CONN_SHUTDOWN;
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_cb) < 0) {
        free(req);
        hr_conn_close(c);
        return;
    }
    /* Keep reading so the peer's EOF ends the linger early. */
    c->flags &= ~HR_CONN_PAUSED;
    start_reading(c);
}

void hr_conn_end(struct hr_conn *c, uint64_t linger_ms)
{
    if (c->flags & (HR_CONN_ENDING | HR_CONN_CLOSING))
        return;
    c->flags |= HR_CONN_ENDING;
    /* pending input is dropped by run_input; it may be the buffer our caller is parsing */
    hr_conn_set_timeout(c, linger_ms ? linger_ms : 1);
    if (hr_conn_queued(c) == 0)
        start_shutdown(c);
}

static void write_cb(uv_write_t *req, int status)
{
    struct hr_write_req *w = (struct hr_write_req *)req;
    struct hr_conn *c = (struct hr_conn *)req->handle;
    for (unsigned i = 0; i < w->n; i++)
        hr_buf_unref(w->bufs[i]);
    int was_shed = c->bq.state == HR_BQ_SHED;
    hr_budget_queue_release(&c->bq, w->charged);
    free(w);
    if (c->flags & HR_CONN_CLOSING)
        return;
    if (status < 0) {
        hr_conn_close(c);
        return;
    }
    size_t q = hr_conn_queued(c);
    if (c->flags & HR_CONN_ENDING) {
        if (q == 0)
            start_shutdown(c);
        return;
    }
    /* drained: below half the cap, or (shed by the budget) below half of what it was */
    size_t cap = c->srv->limits.max_queued;
    if ((c->flags & HR_CONN_FULL) && c->bq.state == HR_BQ_OK &&
        (q <= cap / 2 || (was_shed && q <= cap))) {
        c->flags &= ~HR_CONN_FULL;
        if (c->proto->on_drain)
            c->proto->on_drain(c);
    }
}

int hr_conn_writev(struct hr_conn *c, const struct hr_slice *s, unsigned n)
{
    if (c->flags & (HR_CONN_CLOSING | HR_CONN_ENDING))
        return HR_ECLOSED;
    if (n > HR_MAX_SLICES)
        return HR_EINVAL;
    uv_buf_t bufs[HR_MAX_SLICES];
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        bufs[i] = uv_buf_init(s[i].buf->data + s[i].off, s[i].len);
        total += s[i].len;
    }
    if (total == 0)
        return 0;
    size_t done = 0;
    if (hr_conn_queued(c) == 0) {
        int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (r >= 0) {
            done = (size_t)r;
        } else if (r != UV_EAGAIN) {
            hr_conn_close(c);
            return HR_ECLOSED;
        }
    }
    if (done == total)
        return 0;

    struct hr_write_req *w = malloc(sizeof(*w));
    if (!w) {
        hr_conn_close(c);
        return HR_ENOMEM;
    }
    unsigned k = 0;
    w->n = 0;
    for (unsigned i = 0; i < n; i++) {
        if (done >= s[i].len) {
            done -= s[i].len;
            continue;
        }
        bufs[k++] = uv_buf_init(s[i].buf->data + s[i].off + done, s[i].len - (uint32_t)done);
        w->bufs[w->n++] = hr_buf_ref(s[i].buf);
        done = 0;
    }
    size_t left = 0;
    for (unsigned i = 0; i < k; i++)
        left += bufs[i].len;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, k, write_cb) < 0) {
        for (unsigned i = 0; i < w->n; i++)
            hr_buf_unref(w->bufs[i]);
        free(w);
        hr_conn_close(c);
        return HR_ECLOSED;
    }
    /* what the kernel did not take is ours to hold until write_cb: charge it */
    w->charged = (uint32_t)left;
    hr_budget_queue_charge(&c->bq, left);
    if (hr_conn_queued(c) > c->srv->limits.max_queued)
        c->flags |= HR_CONN_FULL;
    return 0;
}

void hr_conn_close(struct hr_conn *c)
{
    if (c->flags & HR_CONN_CLOSING)
        return;
    c->flags |= HR_CONN_CLOSING;
    c->flags &= ~HR_CONN_READING;
    uv_close((uv_handle_t *)&c->tcp, close_cb);
}

static void conn_free(struct hr_conn *c)
{
    hr_budget_queue_forget(&c->bq);
    free(c->pending);
    free(c);
}

static void close_cb(uv_handle_t *h)
{
    struct hr_conn *c = (struct hr_conn *)h;
    if (c->proto && c->proto->on_free)
        c->proto->on_free(c);
    c->proto = NULL;
    c->flags |= HR_CONN_CLOSED;
    hr_server_conn_gone(c->srv, c);
    if (c->holds == 0)
        conn_free(c);
}

int hr_conn_release(struct hr_conn *c)
{
    c->holds--;
    if (!(c->flags & HR_CONN_CLOSING))
        return 1;
    if ((c->flags & HR_CONN_CLOSED) && c->holds == 0)
        conn_free(c);
    return 0;
}
