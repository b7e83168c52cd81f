/* server.c - listener, connection list, shared scratch buffer, deadline sweep, ready queue. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uthash.h>

#include "core/budget.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/quota.h"
#include "tls.h"

static void sweep_cb(uv_timer_t *t);
static void ready_cb(uv_idle_t *idle);

static void hold_timer_cb(uv_timer_t *t)
{
    struct hr_server *srv = t->data;
    srv->hold_over = 1; /* this turn's prepare flushes */
}

/* Whether this turn's flush waits: while output for many connections is about to be added to
 * (the hold), for at most HR_HOLD_MS from the first turn that waited. */
static int flush_held(struct hr_server *srv)
{
    if (srv->ndirty < srv->hold_conns || !srv->hold || srv->hold_over || !srv->hold(srv->hold_ud))
        return 0;
    if (!uv_is_active((uv_handle_t *)&srv->hold_timer)) {
        uv_update_time(srv->loop); /* the turn's work may have taken a while: from now */
        uv_timer_start(&srv->hold_timer, hold_timer_cb, HR_HOLD_MS, 0);
    }
    return 1;
}

/* The end of a loop turn's work: send what it produced, free what it closed (a flush can
 * close, and a protocol's on_free can write). */
static void turn_end(struct hr_server *srv)
{
    if (flush_held(srv)) {
        hr_conn_finish_closed(srv);
        return;
    }
    uv_timer_stop(&srv->hold_timer);
    srv->hold_over = 0;
    do {
        hr_server_flush(srv);
        hr_conn_finish_closed(srv);
    } while (srv->dirty);
}

static void flush_prepare_cb(uv_prepare_t *p)
{
    turn_end(p->data);
}

static void flush_check_cb(uv_check_t *ch)
{
    turn_end(ch->data);
}

/* Sockets with events: one epoll_wait for all of them (the loop saw the set readable). */
#define HR_EVENTS_BATCH 256
static void events_cb(uv_poll_t *p, int status, int events)
{
    struct hr_server *srv = p->data;
    (void)events;
    if (status < 0)
        return;
    struct epoll_event ev[HR_EVENTS_BATCH];
    int n = epoll_wait(srv->epfd, ev, HR_EVENTS_BATCH, 0);
    for (int i = 0; i < n; i++)
        hr_conn_events(ev[i].data.ptr, ev[i].events);
}
static void budget_over_cb(void *ud);

/* While over the memory budget, a shed pass runs this often (the first one on the next loop
 * turn): soon enough that queues cannot grow far past it, rarely enough that a soft-shed
 * queue gets its grace before the next pass would drop it. */
#define SHED_INTERVAL_MS 50

/* Output slices the table keeps (24 KiB) when nothing is queued; a larger one is freed. */
#define HR_OUTS_KEEP 1024

uint32_t hr_server_fit_connections(uint32_t max_connections, uint64_t nofile)
{
    if (nofile == 0)
        return max_connections;
    uint64_t reserve = HR_FD_RESERVE_FIXED + nofile / HR_FD_RESERVE_DIV;
    uint64_t fit = nofile > reserve + 1 ? nofile - reserve : 1;
    return fit < max_connections ? (uint32_t)fit : max_connections;
}

/* Every connection is a file descriptor: use all the process may have, and accept no more
 * connections than fit beside the reserve, so the store and static files can still open
 * theirs and refusing a new connection (accept, then close) never fails for want of one. */
static void fit_fd_limit(struct hr_limits *l, int tell)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit up = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return;
    /* servers sharing the process (workers) share its descriptors, and count their
     * connections together (hr_server_group) */
    uint64_t total = l->max_connections;
    uint32_t fit = hr_server_fit_connections(total > UINT32_MAX ? UINT32_MAX : (uint32_t)total,
                                             (uint64_t)rl.rlim_cur);
    if (fit < total) {
        if (tell)
            hr_warn("--max-connections %llu lowered to %u: the open-file limit is %llu (raise "
                    "it with ulimit -n or LimitNOFILE=)",
                    (unsigned long long)total, fit, (unsigned long long)rl.rlim_cur);
        l->max_connections = fit;
    }
}

int hr_server_init(struct hr_server *srv, uv_loop_t *loop, const struct hr_limits *limits)
{
    memset(srv, 0, sizeof(*srv));
    srv->bound_fd = -1;
    srv->loop = loop;
    srv->limits = *limits;
    srv->scratch = malloc(HR_SCRATCH_SIZE);
    if (!srv->scratch)
        return HR_ENOMEM;
    if (limits->io_uring) {
        int rc = hr_server_uring_init(srv);
        if (rc < 0) {
            hr_error("--io-uring: %s",
                     rc == HR_ENOTSUP ? "herald was built without liburing" : hr_strerror(rc));
            free(srv->scratch);
            return rc;
        }
    }
    srv->spare_fd = -1;
    srv->listener.data = srv;
    /* Every connection's socket is in one epoll set of ours, which the loop watches as one
     * descriptor: a connection costs no libuv handle, and its events come in one call. */
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (srv->epfd < 0 || uv_poll_init(loop, &srv->events, srv->epfd) < 0) {
        if (srv->epfd >= 0)
            close(srv->epfd);
        hr_server_uring_free(srv);
        free(srv->scratch);
        return HR_ENOMEM;
    }
    srv->events.data = srv;
    uv_poll_start(&srv->events, UV_READABLE, events_cb);
    uv_unref((uv_handle_t *)&srv->events);
    uv_timer_init(loop, &srv->sweep);
    srv->sweep.data = srv;
    uv_idle_init(loop, &srv->ready_idle);
    srv->ready_idle.data = srv;
    uv_timer_init(loop, &srv->shed);
    srv->shed.data = srv;
    uv_timer_init(loop, &srv->hold_timer);
    srv->hold_timer.data = srv;
    srv->hold_conns = HR_HOLD_CONNS;
    uv_unref((uv_handle_t *)&srv->hold_timer);
    /* corked output: flushed after the events of a loop turn (check) and before the loop
     * waits (prepare: output made by timers and idle work); neither keeps the loop alive */
    uv_prepare_init(loop, &srv->flush_prepare);
    uv_check_init(loop, &srv->flush_check);
    srv->flush_prepare.data = srv->flush_check.data = srv;
    uv_prepare_start(&srv->flush_prepare, flush_prepare_cb);
    uv_check_start(&srv->flush_check, flush_check_cb);
    uv_unref((uv_handle_t *)&srv->flush_prepare);
    uv_unref((uv_handle_t *)&srv->flush_check);
    hr_budget_set_max(limits->max_memory == HR_MEMORY_AUTO ? hr_budget_default()
                                                           : limits->max_memory);
    srv->limits.max_memory = hr_budget_max();
    hr_budget_on_over(budget_over_cb, srv);
    return 0;
}

static void shed_cb(uv_timer_t *t)
{
    hr_budget_shed(uv_now(t->loop));
    if (!hr_budget_over())
        uv_timer_stop(t);
}

/* A charge took the total over the budget. Not shed here: the charge may come from inside a
 * fan-out, where closing another subscriber would change the list being walked. */
static void budget_over_cb(void *ud)
{
    struct hr_server *srv = ud;
    if (!srv->stopping && !uv_is_active((uv_handle_t *)&srv->shed))
        uv_timer_start(&srv->shed, shed_cb, 0, SHED_INTERVAL_MS);
}

/* The sweep runs often enough for the shortest timeout to be honoured within ~25%. */
static uint64_t sweep_interval(const struct hr_limits *l)
{
    uint64_t m = l->header_timeout_ms;
    uint64_t t[] = {l->body_timeout_ms, l->idle_timeout_ms, l->close_timeout_ms,
                    l->ws_message_timeout_ms};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i] && t[i] < m)
            m = t[i];
    m /= 4;
    return m < 20 ? 20 : m > 1000 ? 1000 : m;
}

/* One line a second at most, however many connections are refused (a flood must not turn
 * into a flood of log lines); the sweep flushes the count of a burst that stopped. */
static void log_refusals(struct hr_server *srv)
{
    uint32_t total = srv->refused_max + srv->refused_ip + srv->accept_errors;
    uint64_t now = uv_now(srv->loop);
    if (total == 0 || now - srv->refused_log_ms < 1000)
        return;
    if (srv->refused_max)
        hr_warn("refused %u connection%s: %u open, the limit (--max-connections)", srv->refused_max,
                srv->refused_max == 1 ? "" : "s", srv->limits.max_connections);
    if (srv->refused_ip)
        hr_warn("refused %u connection%s: over --max-connections-per-ip %u", srv->refused_ip,
                srv->refused_ip == 1 ? "" : "s", srv->limits.max_connections_per_ip);
    if (srv->accept_errors)
        hr_warn("accept failed %u time%s: %s%s", srv->accept_errors,
                srv->accept_errors == 1 ? "" : "s", uv_strerror(srv->last_accept_error),
                srv->last_accept_error == UV_EMFILE || srv->last_accept_error == UV_ENFILE
                    ? " (out of file descriptors: new connections are closed, open ones go on)"
                    : "");
    srv->refused_max = srv->refused_ip = srv->accept_errors = 0;
    srv->refused_log_ms = now;
}

/* Count c against its address; 0 if over the per-address limit (or out of memory). */
static int ip_count(struct hr_ip_count **per_ip, uint32_t max, struct hr_conn *c,
                    const uint8_t key[9])
{
    struct hr_ip_count *e;
    HASH_FIND(hh, *per_ip, key, 9, e);
    if (!e) {
        if (!(e = calloc(1, sizeof(*e))))
            return 0;
        memcpy(e->key, key, 9);
        HASH_ADD(hh, *per_ip, key, sizeof e->key, e);
    }
    if (max && e->n >= max)
        return 0;
    e->n++;
    c->ip = e;
    return 1;
}

static int ip_take(struct hr_server *srv, struct hr_conn *c, const struct sockaddr_storage *peer)
{
    uint8_t key[9];
    /* counted for either limit; a connection limit of 0 refuses none */
    if ((srv->limits.max_connections_per_ip == 0 && srv->limits.max_lp_per_ip == 0) ||
        !hr_net_ip_key(peer, key))
        return 1;
    struct hr_server_group *g = srv->group;
    if (!g)
        return ip_count(&srv->per_ip, srv->limits.max_connections_per_ip, c, key);
    uv_mutex_lock(&g->lock);
    int ok = ip_count(&g->per_ip, srv->limits.max_connections_per_ip, c, key);
    uv_mutex_unlock(&g->lock);
    return ok;
}

static void ip_release(struct hr_server *srv, struct hr_conn *c)
{
    struct hr_ip_count *e = c->ip;
    struct hr_server_group *g = srv->group;
    struct hr_ip_count **per_ip = g ? &g->per_ip : &srv->per_ip;
    c->ip = NULL;
    if (!e)
        return;
    if (g)
        uv_mutex_lock(&g->lock);
    if (c->flags & HR_CONN_POLL)
        e->polls--;
    c->flags &= ~HR_CONN_POLL;
    if (--e->n == 0) {
        HASH_DEL(*per_ip, e);
        free(e);
    }
    if (g)
        uv_mutex_unlock(&g->lock);
}

static void free_counts(struct hr_ip_count **per_ip)
{
    struct hr_ip_count *e, *tmp;
    HASH_ITER(hh, *per_ip, e, tmp)
    {
        HASH_DEL(*per_ip, e);
        free(e);
    }
}

int hr_server_group_init(struct hr_server_group *g)
{
    memset(g, 0, sizeof(*g));
    atomic_init(&g->nconns, 0);
    return uv_mutex_init(&g->lock);
}

void hr_server_group_free(struct hr_server_group *g)
{
    free_counts(&g->per_ip);
    uv_mutex_destroy(&g->lock);
}

/* Connections open: this server's, or its group's. */
uint32_t hr_server_open_count(const struct hr_server *srv)
{
    return srv->group ? atomic_load_explicit(&srv->group->nconns, memory_order_relaxed)
                      : srv->nconns;
}

static void count_conn(struct hr_server *srv, int delta)
{
    srv->nconns += (uint32_t)delta;
    if (srv->group)
        atomic_fetch_add_explicit(&srv->group->nconns, (unsigned)delta, memory_order_relaxed);
}

/* Out of file descriptors: the pending connection cannot be accepted, and would make the
 * listener readable forever. Give up the spare descriptor, take the connection and close it
 * (the client sees a close instead of hanging in the backlog), then take the spare again. */
static void refuse_without_fd(struct hr_server *srv)
{
    if (srv->spare_fd < 0)
        return;
    close(srv->spare_fd);
    int fd = accept4(srv->listener.io_watcher.fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* A connection on socket s joins the server: in the epoll set, the list, its protocol. */
static int attach(struct hr_server *srv, struct hr_conn *c, struct hr_sock s)
{
    c->fd = s.fd;
    c->ssl = s.ssl;
    c->flags |= HR_CONN_READING;
    c->armed = EPOLLIN;
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, s.fd, &e) < 0) {
        ip_release(srv, c);
        free(c->pending);
        free(c);
        hr_sock_close(&s);
        return HR_EBUSY;
    }
    int one = 1;
    setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    count_conn(srv, 1);
    srv->on_accept(c);
    hr_conn_start(c);
    return 0;
}

/* Take one connection from the backlog; 0 when there was none (or no memory to take it). */
static int accept_one(struct hr_server *srv)
{
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int fd = accept4(srv->listener.io_watcher.fd, (struct sockaddr *)&peer, &plen,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno == EINTR || errno == ECONNABORTED)
            return 1;
        /* established connections are untouched */
        srv->accept_errors++;
        srv->last_accept_error = -errno;
        if (errno == EMFILE || errno == ENFILE)
            refuse_without_fd(srv);
        log_refusals(srv);
        return errno == EMFILE || errno == ENFILE;
    }
    /* Refuse by closing at once: the fd is given back within this loop turn, and every
     * connection already open goes on as before. */
    struct hr_conn *c = NULL;
    if (srv->stopping) {
        close(fd);
        return 1;
    }
    if (hr_server_open_count(srv) >= srv->limits.max_connections) {
        srv->refused_max++;
        HR_METRIC_INC(refused[HR_MR_CONN_LIMIT]);
        log_refusals(srv);
        close(fd);
        return 1;
    }
    if (!(c = hr_conn_new(srv))) {
        close(fd);
        return 0; /* out of memory: try again on the next event */
    }
    if (!ip_take(srv, c, &peer)) {
        srv->refused_ip++;
        HR_METRIC_INC(refused[HR_MR_CONN_LIMIT]);
        log_refusals(srv);
        free(c);
        close(fd);
        return 1;
    }
    struct hr_sock s = {fd, NULL};
    if (srv->tls) {
        /* a TLS session from the process's current certificate; the handshake comes first */
        if (!(s.ssl = hr_tls_session(srv->tls, fd))) {
            ip_release(srv, c);
            free(c);
            close(fd);
            return 0;
        }
        c->flags |= HR_CONN_HANDSHAKE;
    }
    attach(srv, c, s);
    return 1;
}

int hr_server_adopt(struct hr_server *srv, struct hr_sock s, const char *data, size_t len)
{
    struct hr_conn *c = NULL;
    if (srv->stopping || hr_server_open_count(srv) >= srv->limits.max_connections ||
        !(c = hr_conn_new(srv)) || (len && !(c->pending = malloc(len)))) {
        free(c);
        hr_sock_close(&s);
        return HR_EBUSY;
    }
    memcpy(c->pending, data, len);
    c->pending_len = c->pending_cap = (uint32_t)len;
    /* counted as the client's, without refusing it: it was let in once already */
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    if (getpeername(s.fd, (struct sockaddr *)&peer, &plen) == 0 && !ip_take(srv, c, &peer))
        c->ip = NULL;
    if (attach(srv, c, s) < 0)
        return HR_EBUSY;
    if (!hr_conn_closing(c))
        hr_server_mark_ready(srv, c); /* the input it came with (and what its session holds) */
    return 0;
}

static void listener_cb(uv_poll_t *p, int status, int events)
{
    struct hr_server *srv = p->data;
    (void)events;
    if (status < 0)
        return;
    /* a burst of connections is taken in one go, a bounded one: others have events too */
    for (int i = 0; i < 128 && !srv->stopping; i++)
        if (!accept_one(srv))
            break;
}

void hr_server_close_listener(struct hr_server *srv)
{
    if (srv->bound_fd >= 0)
        close(srv->bound_fd); /* bound, never listened on */
    srv->bound_fd = -1;
    if (srv->listener.type != UV_POLL || uv_is_closing((uv_handle_t *)&srv->listener))
        return;
    int fd = srv->listener.io_watcher.fd;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    close(fd);
    if (srv->spare_fd >= 0)
        close(srv->spare_fd);
    srv->spare_fd = -1;
}

/* A port in use by anyone else (another herald sharing its own port with SO_REUSEPORT too)
 * is refused, as it is without sharing: a plain bind tells. */
static int port_free(const struct sockaddr_storage *addr, socklen_t alen)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, rc = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)addr, alen) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int hr_server_bind(struct hr_server *srv, const char *host, int port)
{
    struct sockaddr_storage addr;
    socklen_t alen;
    int rc;
    if (srv->bound_fd >= 0)
        return 0;
    fit_fd_limit(&srv->limits, srv->reuseport != 1);
    memset(&addr, 0, sizeof addr);
    if (strchr(host, ':')) {
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
        alen = sizeof(struct sockaddr_in6);
    } else {
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
        alen = sizeof(struct sockaddr_in);
    }
    if (rc < 0)
        return hr_error_from_uv(rc);
    /* Every listener has SO_REUSEPORT, so that the next herald can take the port over
     * (--takeover) while this one still listens; without being asked to, the first listener
     * of a process still refuses a port anyone holds. */
    if (srv->reuseport != 1 && !srv->takeover && port != 0 && (rc = port_free(&addr, alen)) < 0)
        return rc;
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (bind(fd, (struct sockaddr *)&addr, alen) < 0 || listen(fd, SOMAXCONN) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    srv->bound_fd = fd;
    return 0;
}

int hr_server_listen(struct hr_server *srv, const char *host, int port)
{
    int rc = hr_server_bind(srv, host, port);
    if (rc < 0)
        return rc;
    int fd = srv->bound_fd;
    rc = uv_poll_init_socket(srv->loop, &srv->listener, fd);
    if (rc < 0)
        return hr_error_from_uv(rc); /* the socket is closed with the server */
    srv->bound_fd = -1;
    srv->listener.data = srv;
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    uv_poll_start(&srv->listener, UV_READABLE, listener_cb);
    uint64_t iv = sweep_interval(&srv->limits);
    uv_timer_start(&srv->sweep, sweep_cb, iv, iv);
    return 0;
}

void hr_server_takeover(struct hr_server *srv)
{
    srv->takeover = 1;
}

void hr_server_share_port(struct hr_server *srv, int first)
{
    srv->reuseport = first ? 2 : 1;
}

int hr_server_port(struct hr_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (srv->listener.type != UV_POLL)
        return HR_EINVAL;
    if (getsockname(srv->listener.io_watcher.fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void free_outs(struct hr_server *srv)
{
    free(srv->outs);
    srv->outs = NULL;
    srv->nouts = srv->outs_cap = srv->outs_used = srv->out_free = 0;
}

static void sweep_cb(uv_timer_t *t)
{
    struct hr_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    log_refusals(srv);
    hr_quota_log_flush(now);
    /* the budget is the process's: another worker's charge may have taken it over */
    if (hr_budget_over())
        budget_over_cb(srv);
    /* a burst (a slow reader's backlog) grew the slice table: give it back once it is empty */
    if (srv->outs_used == 0 && srv->outs_cap > HR_OUTS_KEEP)
        free_outs(srv);
    for (struct hr_conn *c = srv->conns; c; c = c->next) {
        if (!c->deadline || now < c->deadline || (c->flags & HR_CONN_CLOSING))
            continue;
        c->deadline = 0;
        /* a TLS handshake not done in time (the first request's deadline) gets no answer */
        if ((c->flags & (HR_CONN_ENDING | HR_CONN_HANDSHAKE)) || !c->proto->on_timeout)
            hr_conn_close(c);
        else
            c->proto->on_timeout(c);
    }
}

void hr_server_mark_ready(struct hr_server *srv, struct hr_conn *c)
{
    if (c->flags & HR_CONN_READY)
        return;
    c->flags |= HR_CONN_READY;
    c->ready_next = srv->ready;
    srv->ready = c;
    uv_idle_start(&srv->ready_idle, ready_cb);
}

static void ready_cb(uv_idle_t *idle)
{
    struct hr_server *srv = idle->data;
    struct hr_conn *list = srv->ready;
    srv->ready = NULL;
    uv_idle_stop(idle);
    while (list) {
        struct hr_conn *c = list;
        list = c->ready_next;
        c->ready_next = NULL;
        c->flags &= ~HR_CONN_READY;
        hr_conn_process_pending(c);
    }
}

void hr_server_set_hold(struct hr_server *srv, int (*hold)(void *ud), void *ud)
{
    srv->hold = hold;
    srv->hold_ud = ud;
}

void hr_server_close_handles(struct hr_server *srv)
{
    hr_server_close_listener(srv);
    hr_server_flush(srv); /* gives back the holds of connections that closed with output */
    uv_timer_stop(&srv->sweep);
    uv_close((uv_handle_t *)&srv->sweep, NULL);
    uv_timer_stop(&srv->shed);
    uv_close((uv_handle_t *)&srv->shed, NULL);
    uv_timer_stop(&srv->hold_timer);
    uv_close((uv_handle_t *)&srv->hold_timer, NULL);
    srv->hold = NULL;
    hr_budget_on_over(NULL, NULL);
    uv_idle_stop(&srv->ready_idle);
    uv_close((uv_handle_t *)&srv->ready_idle, NULL);
    uv_close((uv_handle_t *)&srv->flush_prepare, NULL);
    uv_close((uv_handle_t *)&srv->flush_check, NULL);
    uv_close((uv_handle_t *)&srv->events, NULL);
}

static void finish_stop(struct hr_server *srv)
{
    hr_server_close_handles(srv);
    if (srv->on_stopped)
        srv->on_stopped(srv);
}

void hr_server_conn_gone(struct hr_server *srv, struct hr_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (srv->conns == c)
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    ip_release(srv, c);
    if (c->flags & HR_CONN_READY) {
        struct hr_conn **pp = &srv->ready;
        while (*pp && *pp != c)
            pp = &(*pp)->ready_next;
        if (*pp)
            *pp = c->ready_next;
        c->flags &= ~HR_CONN_READY;
    }
    count_conn(srv, -1);
    if (srv->stopping && srv->nconns == 0)
        finish_stop(srv);
}

void hr_server_stop(struct hr_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    hr_server_close_listener(srv);
    if (srv->nconns == 0) {
        finish_stop(srv);
        return;
    }
    for (struct hr_conn *c = srv->conns; c; c = c->next) {
        /* one already ending (an event stream told to reconnect) finishes sending first */
        if (c->flags & (HR_CONN_CLOSING | HR_CONN_ENDING))
            continue;
        if (c->proto && c->proto->on_shutdown && !(c->flags & HR_CONN_HANDSHAKE))
            c->proto->on_shutdown(c);
        else
            hr_conn_close(c);
    }
}

void hr_server_free(struct hr_server *srv)
{
    if (srv->bound_fd >= 0)
        close(srv->bound_fd);
    srv->bound_fd = -1;
    free_counts(&srv->per_ip);
    free(srv->scratch);
    srv->scratch = NULL;
    free(srv->tls_out);
    srv->tls_out = NULL;
    free_outs(srv);
    if (srv->epfd >= 0)
        close(srv->epfd);
    srv->epfd = -1;
    hr_server_uring_free(srv);
}
