/* conn.c - connection lifecycle, reads through the shared scratch buffer, corked output (one
 * sendmsg per dirty connection per loop turn) with backpressure, graceful end (flush, shutdown,
 * linger), deferred free; the same over TLS (a non-blocking handshake, SSL_read into the
 * scratch buffer, the corked slices gathered into records for SSL_write, close_notify). */
#include "conn.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "server.h"

#define HR_CONN_CLOSED (1 << 7)    /* its protocol is gone; memory waits for the last hold */
#define HR_CONN_SHUTDOWN (1 << 8)  /* shutdown(SHUT_WR) done */
#define HR_CONN_DIRTY (1 << 9)     /* on the server's dirty list (holding a hold) */
#define HR_CONN_WANT_OUT (1 << 10) /* the kernel refused output: waiting to be writable */
/* TLS: the session's next step goes the other way than the call that needs it */
#define HR_CONN_TLS_RD_WR (1 << 12) /* the handshake or a read waits for writability */
#define HR_CONN_TLS_WR_RD (1 << 13) /* a write waits for input */
#define HR_MAX_SLICES 8
#define HR_SEND_IOV 64          /* slices per sendmsg (more are sent by further calls) */
#define HR_READS_PER_EVENT 4    /* full reads of one socket before others get their turn */
#define HR_CORK_MAX (64 * 1024) /* corked bytes sent at once rather than at the loop turn's end */

static void start_reading(struct hr_conn *c);
static void read_some(struct hr_conn *c);
static void flush(struct hr_conn *c);
static void conn_shed_cb(struct hr_budget_queue *q, int hard);

static inline int conn_fd(const struct hr_conn *c)
{
    return c->fd;
}

static inline int bq_state(const struct hr_conn *c)
{
    return c->bq ? c->bq->q.state : HR_BQ_OK;
}

/* Ask the epoll set for the events the connection waits for now: input while reading,
 * writability while the kernel holds back output; with TLS, what the session's next step
 * needs. (Level-triggered: an event not handled in full comes back on the next turn.) */
static void arm(struct hr_conn *c)
{
    if (c->flags & HR_CONN_CLOSING)
        return;
    uint32_t f = c->flags;
    uint32_t ev =
        ((f & (HR_CONN_READING | HR_CONN_TLS_WR_RD)) ? EPOLLIN : 0) |
        ((f & (HR_CONN_WANT_OUT | HR_CONN_TLS_WR_RD)) == HR_CONN_WANT_OUT || (f & HR_CONN_TLS_RD_WR)
             ? EPOLLOUT
             : 0);
    if (ev == c->armed)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(c->srv->epfd, EPOLL_CTL_MOD, c->fd, &e) < 0) {
        hr_conn_close(c);
        return;
    }
    c->armed = ev;
}

struct hr_conn *hr_conn_new(struct hr_server *srv)
{
    struct hr_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = srv;
    c->fd = -1;
    return c;
}

int hr_conn_over(const struct hr_conn *c)
{
    return hr_conn_queued(c) > c->srv->limits.max_queued || bq_state(c) != HR_BQ_OK;
}

/* The memory budget picked this connection's queue (budget.h): soft, its protocol applies the
 * slow-consumer policy (it is "full" until its output drains to half of what it is now); hard,
 * the policy did not free it in time: close without flushing. */
static void conn_shed_cb(struct hr_budget_queue *q, int hard)
{
    struct hr_conn *c = ((struct hr_conn_bq *)q)->c;
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
        c->flags &= ~HR_CONN_READING;
        arm(c);
    }
}

/* TLS: input the session holds that the socket will not signal (decrypted and not read yet,
 * or the peer's close_notify). */
static int tls_has_input(const struct hr_conn *c)
{
    return SSL_pending(c->ssl) > 0 || (SSL_get_shutdown(c->ssl) & SSL_RECEIVED_SHUTDOWN);
}

void hr_conn_process_pending(struct hr_conn *c)
{
    if (c->pending_len &&
        !(c->flags & (HR_CONN_PAUSED | HR_CONN_CLOSING | HR_CONN_ENDING | HR_CONN_IN_READ)))
        run_input(c, c->pending, c->pending_len, 1);
    if (!(c->flags & (HR_CONN_PAUSED | HR_CONN_CLOSING))) {
        start_reading(c);
        if (c->ssl && !(c->flags & HR_CONN_IN_READ) && tls_has_input(c))
            read_some(c);
    }
}

/* Bytes arrived (nread > 0), the peer finished sending (0) or the socket failed (< 0). */
static void on_input(struct hr_conn *c, ssize_t nread, char *data)
{
    if (nread <= 0) {
        if (nread == 0 && !(c->flags & HR_CONN_ENDING) && c->proto->on_eof)
            c->proto->on_eof(c);
        else
            hr_conn_close(c);
        return;
    }
    HR_METRIC_ADD(bytes_in, (uint64_t)nread);
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
        memcpy(c->pending + c->pending_len, data, (size_t)nread);
        c->pending_len = (uint32_t)need;
        run_input(c, c->pending, c->pending_len, 1);
    } else {
        run_input(c, data, (size_t)nread, 0);
    }
}

/* TLS: decrypt what the socket holds into the scratch buffer, filled before the protocol sees
 * it (a record is at most 16 KB), a few buffers' worth at most; what the session still holds
 * then is read on a later turn (the socket would not say so). */
static void tls_read_some(struct hr_conn *c)
{
    char *scratch = c->srv->scratch;
    c->flags &= ~HR_CONN_TLS_RD_WR;
    for (int i = 0; i < HR_READS_PER_EVENT; i++) {
        if ((c->flags & (HR_CONN_CLOSING | HR_CONN_READING)) != HR_CONN_READING)
            goto out;
        size_t got = 0;
        int err = SSL_ERROR_NONE;
        while (got < HR_SCRATCH_SIZE) {
            size_t n;
            ERR_clear_error();
            int r = SSL_read_ex(c->ssl, scratch + got, HR_SCRATCH_SIZE - got, &n);
            if (r <= 0) {
                err = SSL_get_error(c->ssl, r);
                break;
            }
            got += n;
        }
        if (got) {
            on_input(c, (ssize_t)got, scratch);
            if (c->flags & HR_CONN_CLOSING)
                return;
        }
        switch (err) {
        case SSL_ERROR_NONE: continue; /* the buffer is full: there may be more */
        case SSL_ERROR_WANT_READ: goto out;
        case SSL_ERROR_WANT_WRITE: c->flags |= HR_CONN_TLS_RD_WR; goto out;
        case SSL_ERROR_ZERO_RETURN:
            /* close_notify (or the TCP EOF): the EOF of a plain socket; a protocol that paused
             * meanwhile sees it when it resumes */
            if (!(c->flags & HR_CONN_READING))
                goto out;
            c->flags &= ~HR_CONN_READING;
            arm(c);
            on_input(c, 0, scratch);
            return;
        default: /* a bad record, or the socket's error */
            ERR_clear_error();
            hr_conn_close(c);
            return;
        }
    }
    if ((c->flags & (HR_CONN_CLOSING | HR_CONN_READING)) == HR_CONN_READING &&
        SSL_pending(c->ssl) > 0)
        hr_server_mark_ready(c->srv, c);
out:
    arm(c);
}

/* The handshake's next step (a client's hello, our answer, its finish), as the socket allows.
 * Until it is done the protocol sees nothing; the connection's deadline bounds it. */
static void tls_handshake(struct hr_conn *c)
{
    c->flags &= ~HR_CONN_TLS_RD_WR;
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->flags &= ~HR_CONN_HANDSHAKE;
        arm(c);
        if (c->out_head)
            flush(c);
        if (!(c->flags & HR_CONN_CLOSING))
            read_some(c); /* the first request may have come with the client's finish */
        return;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ: break; /* EPOLLIN is armed: the connection is reading */
    case SSL_ERROR_WANT_WRITE: c->flags |= HR_CONN_TLS_RD_WR; break;
    default:
        /* not TLS (plain HTTP), too old a version, no common cipher, or the client refused
         * our certificate: nothing to answer with */
        ERR_clear_error();
        hr_conn_close(c);
        return;
    }
    arm(c);
}

static void tls_events(struct hr_conn *c, uint32_t events)
{
    if (c->flags & HR_CONN_HANDSHAKE) {
        tls_handshake(c); /* an error or a hang-up shows as the handshake's failure */
        return;
    }
    int broken = (events & (EPOLLERR | EPOLLHUP)) != 0;
    if (((events & EPOLLIN) || broken) && (c->flags & HR_CONN_TLS_WR_RD))
        flush(c); /* the write waited for input */
    else if ((events & EPOLLOUT) || (broken && (c->flags & HR_CONN_WANT_OUT)))
        flush(c);
    if (c->flags & HR_CONN_CLOSING)
        return;
    if (((events & EPOLLOUT) || broken) && (c->flags & HR_CONN_TLS_RD_WR))
        tls_read_some(c); /* the read waited for writability */
    else if ((events & EPOLLIN) || (broken && (c->flags & HR_CONN_READING)))
        read_some(c);
    else if (broken && !(c->flags & (HR_CONN_READING | HR_CONN_WANT_OUT)))
        hr_conn_close(c);
}

/* Read what the socket holds into the loop's scratch buffer (every read is consumed or copied
 * before the next, so one buffer serves every connection), a few buffers' worth at most. */
static void read_some(struct hr_conn *c)
{
    /* TLS until close_notify went out; then the linger discards the raw bytes */
    if (c->ssl && !(c->flags & HR_CONN_SHUTDOWN)) {
        tls_read_some(c);
        return;
    }
    char *scratch = c->srv->scratch;
    for (int i = 0; i < HR_READS_PER_EVENT; i++) {
        if ((c->flags & (HR_CONN_CLOSING | HR_CONN_READING)) != HR_CONN_READING)
            return;
        ssize_t n = recv(conn_fd(c), scratch, HR_SCRATCH_SIZE, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
        }
        if (n == 0) {
            /* the peer sent all it will: stop watching for input (it would stay readable) */
            c->flags &= ~HR_CONN_READING;
            arm(c);
        }
        on_input(c, n < 0 ? -1 : n, scratch);
        if (n < HR_SCRATCH_SIZE)
            return;
    }
}

void hr_conn_events(struct hr_conn *c, uint32_t events)
{
    if (c->flags & HR_CONN_CLOSING)
        return;
    if (c->ssl) {
        tls_events(c, events);
        return;
    }
    int broken = (events & (EPOLLERR | EPOLLHUP)) != 0;
    if ((events & EPOLLOUT) || (broken && (c->flags & HR_CONN_WANT_OUT)))
        flush(c); /* an error shows up as the send's */
    if ((events & EPOLLIN) || (broken && (c->flags & HR_CONN_READING)))
        read_some(c); /* and as the read's: EOF or the socket's error */
    else if (broken && !(c->flags & (HR_CONN_READING | HR_CONN_WANT_OUT)))
        hr_conn_close(c); /* reset, or shut both ways, while paused: nothing more to do */
}

static void start_reading(struct hr_conn *c)
{
    if (c->flags & (HR_CONN_READING | HR_CONN_CLOSING))
        return;
    c->flags |= HR_CONN_READING;
    arm(c);
}

void hr_conn_start(struct hr_conn *c)
{
    start_reading(c);
}

void hr_conn_pause(struct hr_conn *c)
{
    c->flags |= HR_CONN_PAUSED;
    c->flags &= ~HR_CONN_READING;
    arm(c);
}

void hr_conn_resume(struct hr_conn *c)
{
    if (c->flags & HR_CONN_CLOSING)
        return;
    c->flags &= ~HR_CONN_PAUSED;
    /* Pending input runs from the loop, not from here: the caller may be deep in a
     * callback of this very connection. */
    if (c->pending_len || (c->ssl && tls_has_input(c)))
        hr_server_mark_ready(c->srv, c);
    else
        start_reading(c);
}

static void start_shutdown(struct hr_conn *c)
{
    if (c->flags & (HR_CONN_SHUTDOWN | HR_CONN_CLOSING))
        return;
    c->flags |= HR_CONN_SHUTDOWN;
    if (c->ssl && !(c->flags & HR_CONN_HANDSHAKE)) {
        /* close_notify, then the TCP FIN: the peer knows the stream was not cut. Best effort:
         * the socket took everything else, so it has room for these few bytes */
        ERR_clear_error();
        SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    if (shutdown(conn_fd(c), SHUT_WR) < 0) {
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
    if (c->flags & HR_CONN_HANDSHAKE) {
        hr_conn_close(c); /* no session yet: nothing to finish */
        return;
    }
    c->flags |= HR_CONN_ENDING;
    /* pending input is dropped by run_input; it may be the buffer our caller is parsing */
    hr_conn_set_timeout(c, linger_ms ? linger_ms : 1);
    if (c->queued == 0)
        start_shutdown(c);
}

/* ---- the slice table ---- */

static uint32_t out_take(struct hr_server *srv)
{
    if (!srv->out_free) {
        if (srv->nouts == srv->outs_cap) {
            uint32_t cap = srv->outs_cap ? srv->outs_cap * 2 : 1024;
            struct hr_out *o = realloc(srv->outs, (size_t)cap * sizeof(*o));
            if (!o)
                return 0;
            srv->outs = o;
            srv->outs_cap = cap;
        }
        srv->outs[srv->nouts].next = 0;
        srv->out_free = ++srv->nouts;
    }
    uint32_t i = srv->out_free;
    srv->out_free = srv->outs[i - 1].next;
    srv->outs[i - 1].next = 0;
    srv->outs_used++;
    return i;
}

/* Give back the connection's first slice. */
static void out_pop(struct hr_conn *c)
{
    struct hr_server *srv = c->srv;
    uint32_t i = c->out_head;
    struct hr_out *o = &srv->outs[i - 1];
    hr_buf_unref(o->buf);
    c->out_head = o->next;
    if (!c->out_head)
        c->out_tail = 0;
    o->buf = NULL;
    o->next = srv->out_free;
    srv->out_free = i;
    srv->outs_used--;
}

static void drop_output(struct hr_conn *c)
{
    while (c->out_head)
        out_pop(c);
    c->queued = 0;
}

/* Charge the budget with exactly the output the kernel refused. The budget's record exists
 * only while there is some, or while a slow-consumer policy applies to the connection. */
static void charge(struct hr_conn *c)
{
    size_t want = (c->flags & HR_CONN_WANT_OUT) ? c->queued : 0;
    if (!c->bq) {
        if (!want)
            return;
        if (!(c->bq = calloc(1, sizeof(*c->bq))))
            return; /* not counted: the connection itself still works */
        c->bq->q.shed = conn_shed_cb;
        c->bq->c = c;
    }
    struct hr_budget_queue *q = &c->bq->q;
    if (want > q->bytes)
        hr_budget_queue_charge(q, want - q->bytes);
    else if (want < q->bytes)
        hr_budget_queue_release(q, q->bytes - want);
    if (q->bytes == 0 && q->state == HR_BQ_OK && !(c->flags & HR_CONN_CLOSING)) {
        hr_budget_queue_forget(q);
        free(c->bq);
        c->bq = NULL;
    }
}

/* The connection's first slices, at most max, as an iovec; *total gets their bytes. */
static int fill_iov(const struct hr_conn *c, struct iovec *iov, int max, size_t *total)
{
    const struct hr_out *outs = c->srv->outs;
    int n = 0;
    *total = 0;
    for (uint32_t i = c->out_head; i && n < max; i = outs[i - 1].next) {
        const struct hr_out *o = &outs[i - 1];
        iov[n].iov_base = o->buf->data + o->off;
        iov[n].iov_len = o->len;
        *total += o->len;
        n++;
    }
    return n;
}

/* The kernel answered a send of offered bytes: res taken, or -errno. Returns 1 if more can go
 * now (all was taken and more is left), 0 if not, HR_ECLOSED if the socket failed. */
static int took(struct hr_conn *c, ssize_t res, size_t offered)
{
    if (res < 0) {
        if (res == -EINTR)
            return 1;
        if (res == -EAGAIN || res == -EWOULDBLOCK)
            return 0;
        hr_conn_close(c);
        return HR_ECLOSED;
    }
    c->queued -= (size_t)res;
    HR_METRIC_ADD(bytes_out, (uint64_t)res);
    size_t left = (size_t)res;
    while (c->out_head) {
        struct hr_out *o = &c->srv->outs[c->out_head - 1];
        if (left < o->len) {
            o->off += (uint32_t)left;
            o->len -= (uint32_t)left;
            break;
        }
        left -= o->len;
        out_pop(c);
    }
    return (size_t)res == offered && c->out_head;
}

/* After the sends: wait for writability while output is left, and charge it. */
static void settle(struct hr_conn *c)
{
    if (c->out_head)
        c->flags |= HR_CONN_WANT_OUT;
    else
        c->flags &= ~HR_CONN_WANT_OUT;
    charge(c);
    arm(c);
}

/* TLS: the connection's first slices copied into one record's worth of dst. */
static size_t gather(const struct hr_conn *c, char *dst, size_t max)
{
    const struct hr_out *outs = c->srv->outs;
    size_t n = 0;
    for (uint32_t i = c->out_head; i && n < max; i = outs[i - 1].next) {
        const struct hr_out *o = &outs[i - 1];
        size_t k = o->len < max - n ? o->len : max - n;
        memcpy(dst + n, o->buf->data + o->off, k);
        n += k;
    }
    return n;
}

/* TLS: send what the connection holds through its session, one record per SSL_write (partial
 * writes): a slice of a record or more goes from its buffer, smaller ones are gathered into
 * one record first. A write the socket refused must be retried with the same bytes first and
 * at least as many: the slices it came from stay at the head of the queue until it is done,
 * and the queue only grows behind them, so the retry offers that and more. */
static int tls_send_out(struct hr_conn *c)
{
    struct hr_server *srv = c->srv;
    if (c->flags & HR_CONN_HANDSHAKE)
        return 0; /* sent when the handshake is done */
    c->flags &= ~HR_CONN_TLS_WR_RD;
    while (c->out_head) {
        const struct hr_out *o = &srv->outs[c->out_head - 1];
        const char *p = o->buf->data + o->off;
        size_t len = o->len, w = 0;
        if (len < HR_TLS_RECORD && o->next &&
            (srv->tls_out || (srv->tls_out = malloc(HR_TLS_RECORD)))) {
            len = gather(c, srv->tls_out, HR_TLS_RECORD);
            p = srv->tls_out;
        }
        ERR_clear_error();
        int r = SSL_write_ex(c->ssl, p, len, &w);
        srv->sends++;
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_WRITE)
                break;
            if (e == SSL_ERROR_WANT_READ) {
                c->flags |= HR_CONN_TLS_WR_RD;
                break;
            }
            ERR_clear_error();
            hr_conn_close(c);
            return HR_ECLOSED;
        }
        took(c, (ssize_t)w, len);
    }
    settle(c);
    return 0;
}

/* Send what the connection holds: one sendmsg per HR_SEND_IOV slices, until the kernel stops
 * taking it (then wait for the socket to be writable) or nothing is left. Returns 0, or
 * HR_ECLOSED if the socket failed (the connection is closed). */
static int send_out(struct hr_conn *c)
{
    if (c->ssl)
        return tls_send_out(c);
    int more = 1;
    while (more > 0 && c->out_head) {
        struct iovec iov[HR_SEND_IOV];
        size_t total;
        int n = fill_iov(c, iov, HR_SEND_IOV, &total);
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t sent = sendmsg(conn_fd(c), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        c->srv->sends++;
        if ((more = took(c, sent < 0 ? -errno : sent, total)) < 0)
            return HR_ECLOSED;
    }
    settle(c);
    return 0;
}

/* Output went (or not): finish an ending connection, or report that its output drained. */
static void sent_out(struct hr_conn *c, int was_shed)
{
    if (c->flags & HR_CONN_ENDING) {
        if (c->queued == 0)
            start_shutdown(c);
        return;
    }
    /* drained: below half the cap, or (shed by the budget) below half of what it was */
    size_t q = c->queued, cap = c->srv->limits.max_queued;
    if ((c->flags & HR_CONN_FULL) && bq_state(c) == HR_BQ_OK &&
        (q <= cap / 2 || (was_shed && q <= cap))) {
        c->flags &= ~HR_CONN_FULL;
        if (c->proto->on_drain)
            c->proto->on_drain(c);
    }
}

static void flush(struct hr_conn *c)
{
    int was_shed = bq_state(c) == HR_BQ_SHED;
    if (send_out(c) == 0)
        sent_out(c, was_shed);
}

#ifdef HERALD_IO_URING
/* io_uring (--io-uring): the sends of every dirty connection of a loop turn go to the kernel
 * in one submission (MSG_DONTWAIT: each completes inline or says EAGAIN), instead of one
 * system call each. */
#include <liburing.h>

#define HR_URING_SQ 256

struct hr_uring {
    struct io_uring ring;
    struct iovec iov[HR_URING_SQ][HR_SEND_IOV];
    struct msghdr msg[HR_URING_SQ];
    struct hr_conn *conn[HR_URING_SQ];
    size_t offered[HR_URING_SQ];
    uint8_t was_shed[HR_URING_SQ];
};

int hr_server_uring_init(struct hr_server *srv)
{
    struct hr_uring *u = calloc(1, sizeof(*u));
    if (!u)
        return HR_ENOMEM;
    struct io_uring_params prm = {0};
#if defined(IORING_SETUP_SINGLE_ISSUER) && defined(IORING_SETUP_COOP_TASKRUN)
    prm.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
#endif
    int r = io_uring_queue_init_params(HR_URING_SQ, &u->ring, &prm);
    if (r == -EINVAL) { /* an older kernel: no setup flags */
        memset(&prm, 0, sizeof prm);
        r = io_uring_queue_init_params(HR_URING_SQ, &u->ring, &prm);
    }
    if (r < 0) {
        free(u);
        return r;
    }
    srv->uring = u;
    return 0;
}

void hr_server_uring_free(struct hr_server *srv)
{
    if (!srv->uring)
        return;
    io_uring_queue_exit(&srv->uring->ring);
    free(srv->uring);
    srv->uring = NULL;
}

/* Up to HR_URING_SQ connections of the dirty list in one submission; each holds its hold until
 * its completion is handled. */
static void uring_flush_some(struct hr_server *srv)
{
    struct hr_uring *u = srv->uring;
    unsigned k = 0;
    while (srv->dirty && k < HR_URING_SQ) {
        struct hr_conn *c = srv->dirty;
        srv->dirty = c->dirty_next;
        srv->ndirty--;
        c->dirty_next = NULL;
        c->flags &= ~HR_CONN_DIRTY;
        if ((c->flags & (HR_CONN_CLOSING | HR_CONN_WANT_OUT)) || !c->out_head) {
            hr_conn_release(c);
            continue;
        }
        if (c->ssl) { /* TLS output is sent by OpenSSL */
            flush(c);
            hr_conn_release(c);
            continue;
        }
        int n = fill_iov(c, u->iov[k], HR_SEND_IOV, &u->offered[k]);
        u->msg[k] = (struct msghdr){.msg_iov = u->iov[k], .msg_iovlen = (size_t)n};
        struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
        io_uring_prep_sendmsg(sqe, c->fd, &u->msg[k], MSG_DONTWAIT | MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, k);
        u->was_shed[k] = bq_state(c) == HR_BQ_SHED;
        u->conn[k++] = c;
    }
    if (k == 0)
        return;
    srv->sends += k;
    int r;
    do
        r = io_uring_submit_and_wait(&u->ring, k);
    while (r == -EINTR);
    unsigned got = 0;
    while (r >= 0 && got < k) {
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&u->ring, head, cqe)
        {
            unsigned i = (unsigned)cqe->user_data;
            struct hr_conn *c = u->conn[i];
            u->conn[i] = NULL;
            /* all of it went and more is left: the rest by plain sends */
            int more = took(c, cqe->res, u->offered[i]);
            if (more >= 0 && (more == 0 || send_out(c) == 0)) {
                if (more == 0)
                    settle(c);
                sent_out(c, u->was_shed[i]);
            }
            hr_conn_release(c);
            seen++;
        }
        io_uring_cq_advance(&u->ring, seen);
        got += seen;
        if (got < k && (r = io_uring_wait_cqe(&u->ring, &cqe)) == -EINTR)
            r = 0;
    }
    if (r < 0) {
        /* the ring failed: what it did not answer goes by plain sends */
        hr_warn("io_uring: %s; sending without it", strerror(-r));
        for (unsigned i = 0; i < k; i++)
            if (u->conn[i]) {
                struct hr_conn *c = u->conn[i];
                if (!(c->flags & HR_CONN_CLOSING))
                    flush(c);
                hr_conn_release(c);
            }
        hr_server_uring_free(srv);
    }
}
#else
int hr_server_uring_init(struct hr_server *srv)
{
    (void)srv;
    return HR_ENOTSUP;
}

void hr_server_uring_free(struct hr_server *srv)
{
    (void)srv;
}
#endif

void hr_server_flush(struct hr_server *srv)
{
    /* a drain callback may write again (the list grows while we walk it); each pass sends
     * or finds the kernel full, so it ends */
#ifdef HERALD_IO_URING
    if (srv->uring) {
        while (srv->dirty && srv->uring)
            uring_flush_some(srv);
        return;
    }
#endif
    while (srv->dirty) {
        struct hr_conn *c = srv->dirty;
        srv->dirty = c->dirty_next;
        srv->ndirty--;
        c->dirty_next = NULL;
        c->flags &= ~HR_CONN_DIRTY;
        if (!(c->flags & (HR_CONN_CLOSING | HR_CONN_WANT_OUT)))
            flush(c);
        hr_conn_release(c);
    }
}

int hr_conn_writev(struct hr_conn *c, const struct hr_slice *s, unsigned n)
{
    if (c->flags & (HR_CONN_CLOSING | HR_CONN_ENDING))
        return HR_ECLOSED;
    if (n > HR_MAX_SLICES)
        return HR_EINVAL;
    struct hr_server *srv = c->srv;
    for (unsigned k = 0; k < n; k++) {
        if (s[k].len == 0)
            continue;
        uint32_t i = out_take(srv);
        if (!i) {
            hr_conn_close(c);
            return HR_ENOMEM;
        }
        struct hr_out *o = &srv->outs[i - 1];
        o->buf = hr_buf_ref(s[k].buf);
        o->off = s[k].off;
        o->len = s[k].len;
        if (c->out_tail)
            srv->outs[c->out_tail - 1].next = i;
        else
            c->out_head = i;
        c->out_tail = i;
        c->queued += s[k].len;
    }
    /* waiting for writability: the poll sends it; otherwise this loop turn's flush does */
    if (c->out_head && !(c->flags & (HR_CONN_DIRTY | HR_CONN_WANT_OUT))) {
        c->flags |= HR_CONN_DIRTY;
        hr_conn_hold(c);
        c->dirty_next = srv->dirty;
        srv->dirty = c;
        srv->ndirty++;
    }
    /* Corked output is not a backlog: past HR_CORK_MAX it goes now, so that what counts
     * against max_queued is only what the kernel refused (the flush still reports drains). */
    if (c->queued >= HR_CORK_MAX && !(c->flags & HR_CONN_WANT_OUT) && send_out(c) < 0)
        return HR_ECLOSED;
    /* output the kernel refuses is memory we hold: the budget sees it at once (corked output
     * leaves this loop turn and shares its buffers with every other reader) */
    if (c->flags & HR_CONN_WANT_OUT)
        charge(c);
    if (c->queued > srv->limits.max_queued)
        c->flags |= HR_CONN_FULL;
    return 0;
}

void hr_conn_close(struct hr_conn *c)
{
    if (c->flags & HR_CONN_CLOSING)
        return;
    c->flags |= HR_CONN_CLOSING;
    c->flags &= ~(HR_CONN_READING | HR_CONN_WANT_OUT);
    drop_output(c);
    if (c->bq)
        hr_budget_queue_release(&c->bq->q, c->bq->q.bytes);
    if (c->ssl)
        SSL_free(c->ssl); /* sends nothing: a close is abrupt, an end sent close_notify */
    c->ssl = NULL;
    /* closing the socket takes it out of the epoll set; events already fetched for it in this
     * turn find it CLOSING, its memory stays until hr_conn_finish_closed */
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->closed_next = c->srv->closed;
    c->srv->closed = c;
}

void hr_sock_close(struct hr_sock *s)
{
    if (s->ssl)
        SSL_free(s->ssl);
    s->ssl = NULL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

int hr_conn_detach(struct hr_conn *c, struct hr_sock *s)
{
    if ((c->flags & (HR_CONN_CLOSING | HR_CONN_ENDING)) || c->fd < 0)
        return HR_ECLOSED;
    if (c->out_head && !(c->flags & HR_CONN_WANT_OUT))
        send_out(c); /* an answer corked this turn goes first */
    if (c->out_head || (c->flags & HR_CONN_CLOSING))
        return HR_EBUSY;
    epoll_ctl(c->srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    /* the session goes with the socket, with whatever it decrypted and was not read yet */
    s->fd = c->fd;
    s->ssl = c->ssl;
    c->fd = -1;
    c->ssl = NULL;
    c->pending_len = 0;
    hr_conn_close(c);
    return 0;
}

static void conn_free(struct hr_conn *c)
{
    if (c->bq) {
        hr_budget_queue_forget(&c->bq->q);
        free(c->bq);
    }
    free(c->pending);
    free(c);
}

void hr_conn_finish_closed(struct hr_server *srv)
{
    /* a protocol's on_free may close other connections: they join the list */
    while (srv->closed) {
        struct hr_conn *c = srv->closed;
        srv->closed = c->closed_next;
        if (c->proto && c->proto->on_free)
            c->proto->on_free(c);
        c->proto = NULL;
        /* not yet CLOSED: the last connection's exit may flush the dirty list, which must not
         * free this one under us */
        hr_server_conn_gone(srv, c);
        c->flags |= HR_CONN_CLOSED;
        if (c->holds == 0)
            conn_free(c);
    }
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
