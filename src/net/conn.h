/* conn.h - one TCP connection on its own socket, watched by the server's epoll set (no libuv
 * handle per connection): reads through the loop's shared scratch buffer; output is corked: a write
 * chains slices of refcounted buffers to the connection and marks it dirty, and once per loop turn
 * each dirty connection sends all it holds with one sendmsg (the rest waits for the socket to be
 * writable, with backpressure); a coarse deadline checked by the server's sweep timer; and a
 * protocol function table (HTTP, WebSocket) that can be swapped on upgrade. With TLS (net/tls.h)
 * the same connection holds an OpenSSL session: a non-blocking handshake first, then reads and the
 * flush go through it (a branch on c->ssl; the plain path is unchanged). */
#ifndef HR_NET_CONN_H
#define HR_NET_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "core/budget.h"
#include "core/buf.h"

struct hr_server;
struct hr_conn;
struct ssl_st;

/* What a protocol does with a connection (Redis ConnectionType / h2o handlers style). */
struct hr_proto {
    const char *name;
    /* Input arrived. Return bytes consumed; bytes not consumed are kept and presented again,
     * followed by new input, on the next call. Return < 0 once the connection was closed or
     * ended by the protocol. data is writable and valid only during the call. */
    ssize_t (*on_read)(struct hr_conn *c, char *data, size_t len);
    void (*on_eof)(struct hr_conn *c);      /* the peer finished sending; default: close */
    void (*on_timeout)(struct hr_conn *c);  /* the deadline passed; default: close */
    void (*on_drain)(struct hr_conn *c);    /* output queue fell below the low watermark */
    void (*on_shutdown)(struct hr_conn *c); /* the server is stopping; default: close */
    void (*on_free)(struct hr_conn *c);     /* free protocol state (always called once) */
    /* The memory budget is over and this connection's output queue is among the largest:
     * apply the slow-consumer policy now (disconnect with a notice, or hold messages back;
     * hr_conn_over() is true until the queue drains to half). Default: close. */
    void (*on_shed)(struct hr_conn *c);
};

enum {
    HR_CONN_READING = 1 << 0,    /* uv_read_start is active */
    HR_CONN_PAUSED = 1 << 1,     /* protocol asked not to read (hr_conn_pause) */
    HR_CONN_ENDING = 1 << 2,     /* flushing output, then shutdown and linger */
    HR_CONN_CLOSING = 1 << 3,    /* uv_close called */
    HR_CONN_READY = 1 << 4,      /* on the server's list of connections with input to process */
    HR_CONN_FULL = 1 << 5,       /* output queue went over the high watermark */
    HR_CONN_IN_READ = 1 << 6,    /* inside on_read (re-entrancy guard) */
    HR_CONN_POLL = 1 << 7,       /* holds a long-poll of its address (hr_conn_poll_take) */
    HR_CONN_HANDSHAKE = 1 << 11, /* TLS: the handshake is not finished (no input yet) */
};

/* The budget's view of one connection's refused output (core/budget.h). */
struct hr_conn_bq {
    struct hr_budget_queue q;
    struct hr_conn *c;
};

/* Output waiting for the kernel: a slice of a shared buffer, holding a reference. The slices of
 * every connection live in one table per server (struct hr_server outs), chained per
 * connection by index, so that queueing output allocates nothing per delivery. */
struct hr_out {
    struct hr_buf *buf;
    uint32_t off, len;
    uint32_t next; /* the connection's next slice: its index + 1; 0 for none */
};

struct hr_conn_bq;

/* A socket between two servers (hr_conn_detach, hr_server_adopt): its descriptor and, with
 * TLS, its session (which may hold input already decrypted and not read yet). One thread uses
 * it at a time. */
struct hr_sock {
    int fd;
    struct ssl_st *ssl;
};
/* Close a socket no server took (frees its session). */
void hr_sock_close(struct hr_sock *s);

struct hr_conn {
    struct hr_server *srv;
    const struct hr_proto *proto;
    void *pdata;                 /* protocol state, owned by proto */
    struct hr_conn *prev, *next; /* the server's connection list */
    struct hr_conn *ready_next;  /* the server's list of input to process */
    struct hr_conn *dirty_next;  /* the server's list of output to send this loop turn */
    struct hr_conn *closed_next; /* the server's list of connections to free */
    struct hr_ip_count *ip;      /* its client address's count (server.c), or NULL */
    char *pending;               /* unconsumed input: a partial frame or request */
    uint32_t pending_len, pending_cap;
    uint64_t deadline;           /* loop time in ms; 0 = none */
    size_t queued;               /* output bytes not yet taken by the kernel */
    uint32_t out_head, out_tail; /* its chain in the server's slice table (index + 1) */
    int fd;                      /* the socket */
    uint16_t holds;              /* async operations that still point at this conn */
    uint16_t flags;
    uint32_t armed;        /* the epoll events requested now */
    struct hr_conn_bq *bq; /* output the kernel refused, charged to the memory budget;
                            * allocated while there is some (or a policy applies) */
    struct ssl_st *ssl;    /* its TLS session, or NULL: plain TCP */
};

/* Bytes written but not yet accepted by the kernel (corked for this loop turn, or waiting for
 * the socket to be writable). */
static inline size_t hr_conn_queued(const struct hr_conn *c)
{
    return c->queued;
}

/* Write slices of shared buffers, in order: each is chained to the connection with a reference
 * on its buffer and leaves with the connection's other output of this loop turn in one send.
 * The caller keeps its own references. Returns 0, or HR_ECLOSED when the connection is closing
 * (nothing written), or HR_ENOMEM (the connection is closed). */
struct hr_slice {
    struct hr_buf *buf;
    uint32_t off, len;
};
int hr_conn_writev(struct hr_conn *c, const struct hr_slice *s, unsigned n);
static inline int hr_conn_write(struct hr_conn *c, struct hr_buf *b)
{
    struct hr_slice s = {b, 0, b->len};
    return hr_conn_writev(c, &s, 1);
}

/* Close now: queued output is dropped and the socket closed. Safe to call more than once and
 * from callbacks; the memory is freed at the end of the loop turn, never inside the caller. */
void hr_conn_close(struct hr_conn *c);
/* Close gracefully: flush queued output, shut down the write side, discard further input
 * and close when the peer closes or after the linger time (so the peer reads our last
 * bytes instead of a reset). */
void hr_conn_end(struct hr_conn *c, uint64_t linger_ms);

/* Hand the socket over (to another server, on another thread: hr_server_adopt): the
 * connection closes here without closing the socket, which goes to *s (with its TLS session);
 * input not consumed yet is the caller's to pass on. Only while no output is held back (what
 * is corked is sent first): HR_EBUSY otherwise, HR_ECLOSED when it is closing. */
int hr_conn_detach(struct hr_conn *c, struct hr_sock *s);

/* Stop / restart reading (backpressure, or one request at a time). */
void hr_conn_pause(struct hr_conn *c);
void hr_conn_resume(struct hr_conn *c);

/* Set the deadline ms from now (0 = none). */
void hr_conn_set_timeout(struct hr_conn *c, uint64_t ms);

/* Keep the connection's memory alive across an asynchronous operation (a file read). */
static inline void hr_conn_hold(struct hr_conn *c)
{
    c->holds++;
}
/* Returns 1 if the connection is still usable, 0 if it closed meanwhile (and may now be
 * freed: do not touch it after a 0). */
int hr_conn_release(struct hr_conn *c);

/* Output went over max_queued and has not drained below half of it yet (or the memory budget
 * shed this connection and its output has not drained to half of what it was). */
static inline int hr_conn_full(const struct hr_conn *c)
{
    return (c->flags & HR_CONN_FULL) != 0;
}

/* A reader of broadcasts is a slow consumer: its output is over max_queued, or the memory
 * budget shed it (see struct hr_proto on_shed) and its output has not drained yet. */
int hr_conn_over(const struct hr_conn *c);

static inline int hr_conn_closing(const struct hr_conn *c)
{
    return (c->flags & (HR_CONN_CLOSING | HR_CONN_ENDING)) != 0;
}

/* Internal to net/: start reading a newly accepted connection. */
struct hr_conn *hr_conn_new(struct hr_server *srv);
void hr_conn_start(struct hr_conn *c);
void hr_conn_process_pending(struct hr_conn *c);
/* The server's epoll set reported these events (EPOLLIN, EPOLLOUT, ...) for c. */
void hr_conn_events(struct hr_conn *c, uint32_t events);
/* After the events of a loop turn: free the connections closed during it. */
void hr_conn_finish_closed(struct hr_server *srv);

#endif
