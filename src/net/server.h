/* server.h - the listener, the list of connections, the per-loop scratch read buffer and the
 * sweep timer that enforces every connection's deadline (uSockets style: one timer, not one
 * per connection). The limits it enforces are set by the caller (src/server/ from the flags). */
#ifndef HR_NET_SERVER_H
#define HR_NET_SERVER_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uthash.h>
#include <uv.h>

#include "conn.h"
#include "core/quota.h"

struct hr_limits {
    uint32_t max_head;               /* request line + headers, bytes (431 over it) */
    uint64_t max_body;               /* request body, bytes (413 over it) */
    uint64_t header_timeout_ms;      /* a request head must arrive within this (slowloris) */
    uint64_t body_timeout_ms;        /* a request body must arrive within this */
    uint64_t idle_timeout_ms;        /* keep-alive connection with no request */
    uint64_t ws_max_message;         /* one WebSocket message, bytes (1009 over it) */
    uint64_t ws_message_timeout_ms;  /* a begun WebSocket message must be complete by then (1008) */
    uint64_t close_timeout_ms;       /* wait for the peer to finish closing */
    uint64_t max_queued;             /* output bytes queued per connection (backpressure cap) */
    uint32_t max_connections;        /* accepted at once; further ones are closed at accept */
    uint64_t max_memory;             /* the memory budget (core/budget.h); 0 = unlimited,
                                      * HR_MEMORY_AUTO = hr_budget_default() */
    uint32_t max_connections_per_ip; /* from one client address at once; 0: no limit */
    uint32_t max_lp_per_ip;          /* long-polls held at once per client address; 0: none */
    /* messages a client may send per connection (Engine.IO session): a token bucket of
     * max_msg_rate a second and max_msg_burst at once (core/quota.h); rate 0: no limit */
    uint32_t max_msg_rate, max_msg_burst;
    int io_uring; /* send with io_uring: one submission per loop turn */
};

#define HR_MEMORY_AUTO UINT64_MAX

/* herald's defaults (the table in src/server/config.c; tests/unit/test_server_options.c keeps
 * them equal), for library users and tests. */
#define HR_LIMITS_DEFAULT                                                                          \
    {                                                                                              \
        .max_head = 16 * 1024, .max_body = 1024 * 1024, .header_timeout_ms = 10000,                \
        .body_timeout_ms = 30000, .idle_timeout_ms = 30000, .ws_max_message = 16 * 1024 * 1024,    \
        .ws_message_timeout_ms = 30000, .close_timeout_ms = 5000, .max_queued = 4 * 1024 * 1024,   \
        .max_connections = 100000, .max_memory = HR_MEMORY_AUTO, .max_connections_per_ip = 256,    \
        .max_lp_per_ip = 32, .max_msg_rate = 100, .max_msg_burst = 200,                            \
    }

#define HR_SCRATCH_SIZE (64 * 1024)
/* The most plaintext one TLS record carries: small output slices are copied together up to
 * this, so that a burst of small frames is not a record each. */
#define HR_TLS_RECORD (16 * 1024)

/* File descriptors kept out of --max-connections: the listener, the loop's own (epoll,
 * signal pipe, async handles, libuv's spare fd for EMFILE), stdio, the store (SQLite's
 * database, journal/WAL and shared-memory files, temporary files) and the thread pool's
 * file operations: a fixed 64, plus 1/32 of the limit for static files open while they
 * are sent (one per connection receiving a file, a fraction of all connections). */
#define HR_FD_RESERVE_FIXED 64
#define HR_FD_RESERVE_DIV 32

/* Internal to net/: connections from one client address. IPv6 clients are counted per /64, the
 * block one subscriber is usually given (any of its 2^64 addresses costs them nothing); an
 * IPv4-mapped IPv6 address counts as its IPv4 address. */
struct hr_ip_count {
    uint8_t key[9]; /* 4: IPv4 address + 5 zero bytes; 6: the /64 prefix */
    uint32_t n;
    uint32_t polls; /* long-polls held by its connections (--max-lp-per-ip) */
    UT_hash_handle hh;
};

/* Internal to net/: the count key of a peer address, or 0 when it has none we can count. */
int hr_net_ip_key(const struct sockaddr_storage *ss, uint8_t key[9]);
struct hr_tls;

/* Servers of one process that count their connections together (workers): --max-connections
 * and --max-connections-per-ip are then the process's limits, not each server's. Counted on
 * accept and close only, never per message. */
struct hr_server_group {
    atomic_uint nconns;
    uv_mutex_t lock;            /* for per_ip */
    struct hr_ip_count *per_ip; /* connections per client address (uthash) */
};
int hr_server_group_init(struct hr_server_group *g);
void hr_server_group_free(struct hr_server_group *g);

struct hr_server {
    uv_loop_t *loop;
    uv_poll_t listener; /* the listening socket (its fd), when listening */
    uv_poll_t events;   /* the epoll set of every connection's socket, watched by the loop */
    int epfd;
    int spare_fd; /* kept open to accept-and-close when out of descriptors; -1: none */
    uv_timer_t sweep;
    uv_timer_t shed;            /* memory budget passes, running only while over it */
    uv_idle_t ready_idle;       /* runs input left pending by paused connections */
    uv_prepare_t flush_prepare; /* output of this loop turn goes out before the loop waits */
    uv_check_t flush_check;     /* and right after the events that made it */
    uv_timer_t hold_timer;      /* bounds a hold on the flush (hr_server_set_hold) */
    int (*hold)(void *ud);      /* more output about to be made: the flush may wait for it */
    void *hold_ud;
    uint32_t hold_conns; /* held only with this many dirty (HR_HOLD_CONNS) */
    uint8_t hold_over;   /* hold_timer fired: flush whatever comes */
    struct hr_limits limits;
    struct hr_conn *conns;  /* doubly linked list of live connections */
    struct hr_conn *ready;  /* connections with pending input to process */
    struct hr_conn *dirty;  /* connections with output to send this loop turn */
    uint32_t ndirty;        /* how many */
    struct hr_conn *closed; /* connections closed this loop turn, to free at its end */
    struct hr_out *outs;    /* every connection's output slices (conn.h) */
    uint32_t nouts, outs_cap, outs_used, out_free; /* out_free: a free slice's index + 1 */
    struct hr_uring *uring;                        /* with limits.io_uring (conn.c) */
    uint64_t sends; /* sendmsg calls made: with corking, at most one per dirty connection and
                     * loop turn while the kernel takes everything */
    uint32_t nconns;
    struct hr_ip_count *per_ip;    /* connections per client address (uthash) */
    struct hr_server_group *group; /* counts shared with other servers, or NULL: alone */
    /* refusals since the last log line (at most one line a second) */
    uint64_t refused_log_ms;
    uint32_t refused_max, refused_ip, accept_errors;
    int last_accept_error;
    uint8_t stopping;
    uint8_t scratch_busy;
    uint8_t reuseport; /* hr_server_share_port: 1, or 2 for the first */
    uint8_t takeover;  /* another process's listener may hold the port (hr_server_takeover) */
    int bound_fd;      /* hr_server_bind's socket, not yet watched (hr_server_listen); -1 */
    char *scratch;     /* HR_SCRATCH_SIZE bytes shared by every read */
    void (*on_accept)(struct hr_conn *c);      /* sets the initial protocol (HTTP) */
    void *app;                                 /* the HTTP router */
    void *app_data;                            /* the application that owns this server */
    void (*on_stopped)(struct hr_server *srv); /* every connection is gone after a stop */
    struct hr_tls *tls; /* set before listening: every connection speaks TLS (net/tls.h);
                         * shared by the servers of a process, owned by the caller */
    char *tls_out;      /* HR_TLS_RECORD bytes: small slices gathered into one record */
};

/* Also raises the soft open-file limit to the hard one and lowers max_connections (with a
 * warning) to what that limit can hold beside HR_FD_RESERVE. */
int hr_server_init(struct hr_server *srv, uv_loop_t *loop, const struct hr_limits *limits);
/* The max_connections that an open-file limit of nofile can hold; nofile 0: no limit. */
uint32_t hr_server_fit_connections(uint32_t max_connections, uint64_t nofile);
/* Bind and listen; host may be an IPv4 or IPv6 literal. Returns 0 or an HR code (the
 * system's -errno, e.g. -EADDRINUSE: uv_strerror() names it too). */
int hr_server_listen(struct hr_server *srv, const char *host, int port);
/* Bind and listen without accepting yet: connections wait in the backlog until
 * hr_server_listen (called with the same host and port) starts taking them. 0 or an HR code. */
int hr_server_bind(struct hr_server *srv, const char *host, int port);
/* Share the port with a listener another process holds (a herald being replaced: both have
 * SO_REUSEPORT, the kernel spreads new connections over both until the old one closes). Without
 * it a port someone holds is refused. Before hr_server_bind / hr_server_listen. */
void hr_server_takeover(struct hr_server *srv);
/* Bind to a port other servers of this process share (SO_REUSEPORT: the kernel spreads
 * connections over them): before hr_server_listen, on every one of them; the first to listen
 * (first set) still refuses a port someone else holds. */
void hr_server_share_port(struct hr_server *srv, int first);
/* Take over a socket another server detached (hr_conn_detach), with the input it had not
 * consumed (len bytes, copied), as if just accepted (a TLS session goes on where it was).
 * Returns 0, or HR_EBUSY when it cannot (stopping, full, out of memory): the socket is
 * closed. */
int hr_server_adopt(struct hr_server *srv, struct hr_sock s, const char *data, size_t len);
/* Connections open: this server's, or all its group's (the workers of a process). */
uint32_t hr_server_open_count(const struct hr_server *srv);
/* The port actually bound (for --port 0), or an HR code. */
int hr_server_port(struct hr_server *srv);
/* Stop accepting, ask every connection to finish (protocol on_shutdown), close the server's
 * handles once the last connection is gone. */
void hr_server_stop(struct hr_server *srv);
/* Stop accepting at once (hr_server_stop does it first; workers close every listener before
 * any of them tells its clients to go). */
void hr_server_close_listener(struct hr_server *srv);
/* Internal to net/ (conn.c): the io_uring of --io-uring; HR_ENOTSUP when not built with it, or
 * the kernel's -errno. */
int hr_server_uring_init(struct hr_server *srv);
void hr_server_uring_free(struct hr_server *srv);

/* Close the server's handles when it never ran (init succeeded, the loop was not started). */
void hr_server_close_handles(struct hr_server *srv);

/* Corked output for at least hold_conns (HR_HOLD_CONNS) connections (a fan-out) may wait, at most
 * HR_HOLD_MS, while hold(ud) says more is about to be written (a publish being committed, to be
 * delivered to the same connections): one send then carries both instead of a pass over every
 * connection for each. A few replies are never held. NULL: no hold. */
#define HR_HOLD_MS 2
#define HR_HOLD_CONNS 64
void hr_server_set_hold(struct hr_server *srv, int (*hold)(void *ud), void *ud);
/* Free memory after the loop has finished running. */
void hr_server_free(struct hr_server *srv);

/* A long-poll held on c (a channel long-poll, an Engine.IO polling GET) counts against its
 * client address's --max-lp-per-ip, process-wide, until its answer is finished (hr_http_finish
 * calls hr_conn_poll_release) or c closes; a connection holds one at most (HTTP/1.1 answers
 * one request at a time). Returns 1 when taken (or nothing to count: no limit, no address),
 * 0 when the address is at the limit (counted and logged: the caller answers 429). */
int hr_conn_poll_take(struct hr_conn *c);
/* One message from a client against its server's --max-msg-rate (b: the connection's or the
 * session's bucket): HR_QUOTA_OK, HR_QUOTA_OVER (drop it and tell the client) or
 * HR_QUOTA_CLOSE (close it: the refusals persist); hits are counted and logged. */
int hr_server_msg_take(struct hr_server *srv, struct hr_bucket *b);
void hr_conn_poll_release(struct hr_conn *c);
/* The publisher key of c's client: "ip:<address>" (IPv6 by its /64, as the per-address
 * connection count), NUL-terminated in out (at least 64 bytes). Returns its length, or 0 when
 * the peer has no address to name. */
size_t hr_conn_peer_key(const struct hr_conn *c, char *out, size_t outlen);
/* c's client address as text (IPv4 or IPv6, in full), NUL-terminated in out (at least 46
 * bytes). Returns its length, or 0 when it has none. */
size_t hr_conn_peer_addr(const struct hr_conn *c, char *out, size_t outlen);

/* Internal to net/. */
void hr_server_conn_gone(struct hr_server *srv, struct hr_conn *c);
void hr_server_mark_ready(struct hr_server *srv, struct hr_conn *c);
/* Send the output every connection was given since the last flush (conn.c). */
void hr_server_flush(struct hr_server *srv);

#endif
