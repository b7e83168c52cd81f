/* fake_conn.h - connections without a socket for the unit tests of what runs on them (HTTP,
 * WebSocket, the channel transports, Engine.IO and Socket.IO): it defines the functions of
 * net/conn.h, so src/net/conn.c is not linked into the test that includes it (one file per
 * test program). Input is handed to the connection's protocol as a read would; every write is
 * recorded with a reference on each buffer, so a test sees exactly which buffers a connection
 * was given: a frame shared by every subscriber is the same buffer on each of them. Keep it in
 * step with net/conn.h. */
#ifndef HR_TEST_FAKE_CONN_H
#define HR_TEST_FAKE_CONN_H

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "net/server.h"

#define FAKE_CONN_WRITES 64

struct fake_conn {
    struct hr_conn c; /* first */
    struct hr_slice w[FAKE_CONN_WRITES];
    unsigned nw;
};

static inline struct fake_conn *fake_of(struct hr_conn *c)
{
    return (struct fake_conn *)c;
}

int hr_conn_writev(struct hr_conn *c, const struct hr_slice *s, unsigned n)
{
    struct fake_conn *f = fake_of(c);
    if (hr_conn_closing(c))
        return HR_ECLOSED;
    for (unsigned i = 0; i < n; i++) {
        if (f->nw == FAKE_CONN_WRITES)
            return HR_ENOMEM;
        f->w[f->nw++] = (struct hr_slice){hr_buf_ref(s[i].buf), s[i].off, s[i].len};
    }
    return 0;
}

void hr_conn_close(struct hr_conn *c)
{
    c->flags |= HR_CONN_CLOSING;
}

void hr_conn_end(struct hr_conn *c, uint64_t linger_ms)
{
    if (!(c->flags & HR_CONN_CLOSING))
        c->flags |= HR_CONN_ENDING;
}

void hr_conn_pause(struct hr_conn *c)
{
    c->flags |= HR_CONN_PAUSED;
}

void hr_conn_resume(struct hr_conn *c)
{
    c->flags &= ~HR_CONN_PAUSED;
}

void hr_conn_set_timeout(struct hr_conn *c, uint64_t ms)
{
    c->deadline = ms ? uv_now(c->srv->loop) + ms : 0;
}

int hr_conn_release(struct hr_conn *c)
{
    c->holds--;
    return !(c->flags & HR_CONN_CLOSING);
}

int hr_conn_over(const struct hr_conn *c)
{
    return hr_conn_queued(c) > c->srv->limits.max_queued || (c->bq && c->bq->q.state != HR_BQ_OK);
}

/* A connection of srv, accepted (srv->on_accept: HTTP). */
static inline struct hr_conn *fake_conn_new(struct hr_server *srv)
{
    struct fake_conn *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->c.srv = srv;
    srv->on_accept(&f->c);
    return &f->c;
}

/* len bytes arrive: the protocol reads them as the connection would (all of them, unless it
 * stops consuming or the connection closes). */
static inline void fake_conn_input(struct hr_conn *c, const void *data, size_t len)
{
    char *buf = malloc(len ? len : 1), *p = buf;
    memcpy(buf, data, len);
    while (len && c->proto && !(c->flags & (HR_CONN_CLOSING | HR_CONN_ENDING | HR_CONN_PAUSED))) {
        c->flags |= HR_CONN_IN_READ;
        ssize_t used = c->proto->on_read(c, p, len);
        c->flags &= ~HR_CONN_IN_READ;
        if (used <= 0)
            break;
        p += used;
        len -= (size_t)used;
    }
    free(buf);
}

static inline void fake_conn_text(struct hr_conn *c, const char *text)
{
    fake_conn_input(c, text, strlen(text));
}

/* Writes recorded so far, and the buffer of write i (i < 0: from the end). */
static inline unsigned fake_conn_writes(struct hr_conn *c)
{
    return fake_of(c)->nw;
}

static inline struct hr_buf *fake_conn_buf(struct hr_conn *c, int i)
{
    struct fake_conn *f = fake_of(c);
    unsigned k = i < 0 ? f->nw - (unsigned)-i : (unsigned)i;
    return k < f->nw ? f->w[k].buf : NULL;
}

/* The bytes written from write `from` on, NUL-terminated, into out (cut at outsz - 1). */
static inline size_t fake_conn_output(struct hr_conn *c, unsigned from, char *out, size_t outsz)
{
    struct fake_conn *f = fake_of(c);
    size_t n = 0;
    for (unsigned i = from; i < f->nw; i++) {
        size_t k = f->w[i].len < outsz - 1 - n ? f->w[i].len : outsz - 1 - n;
        memcpy(out + n, f->w[i].buf->data + f->w[i].off, k);
        n += k;
    }
    out[n] = '\0';
    return n;
}

/* Forget what was written (the buffers are released). */
static inline void fake_conn_clear(struct hr_conn *c)
{
    struct fake_conn *f = fake_of(c);
    for (unsigned i = 0; i < f->nw; i++)
        hr_buf_unref(f->w[i].buf);
    f->nw = 0;
}

/* The connection goes: its protocol frees its state (on_free), then the connection. */
static inline void fake_conn_free(struct hr_conn *c)
{
    c->flags |= HR_CONN_CLOSING;
    if (c->proto && c->proto->on_free)
        c->proto->on_free(c);
    c->proto = NULL;
    fake_conn_clear(c);
    if (c->bq)
        hr_budget_queue_forget(&c->bq->q);
    free(c->bq);
    free(c->pending);
    free(fake_of(c));
}

/* A masked client frame (RFC 6455 §5.3) of a text message shorter than 126 bytes. */
static inline void fake_conn_ws_text(struct hr_conn *c, const char *text)
{
    size_t len = strlen(text);
    uint8_t frame[2 + 4 + 125];
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    frame[0] = 0x81;
    frame[1] = (uint8_t)(0x80 | len);
    memcpy(frame + 2, mask, 4);
    for (size_t i = 0; i < len && i < 125; i++)
        frame[6 + i] = (uint8_t)text[i] ^ mask[i & 3];
    fake_conn_input(c, frame, 6 + len);
}

#endif
