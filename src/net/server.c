/* server.c - listener, connection list, shared scratch buffer, deadline sweep, ready queue. */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uthash.h>

#include "core/budget.h"
#include "core/error.h"
#include "core/log.h"

/* Connections from one client address. IPv6 clients are counted per /64, the block one
 * subscriber is usually given (any of its 2^64 addresses costs them nothing); an
 * IPv4-mapped IPv6 address counts as its IPv4 address. */
struct hr_ip_count {
    uint8_t key[9]; /* 4: IPv4 address + 5 zero bytes; 6: the /64 prefix */
    uint32_t n;
    UT_hash_handle hh;
};

static void sweep_cb(uv_timer_t *t);
static void ready_cb(uv_idle_t *idle);
static void budget_over_cb(void *ud);

/* While over the memory budget, a shed pass runs this often (the first one on the next loop
 * turn): soon enough that queues cannot grow far past it, rarely enough that a soft-shed
 * queue gets its grace before the next pass would drop it. */
#define SHED_INTERVAL_MS 50

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
static void fit_fd_limit(struct hr_limits *l)
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
    uint32_t fit = hr_server_fit_connections(l->max_connections, (uint64_t)rl.rlim_cur);
    if (fit < l->max_connections) {
        hr_warn("--max-connections %u lowered to %u: the open-file limit is %llu (raise it with "
                "ulimit -n or LimitNOFILE=)",
                l->max_connections, fit, (unsigned long long)rl.rlim_cur);
        l->max_connections = fit;
    }
}

int hr_server_init(struct hr_server *srv, uv_loop_t *loop, const struct hr_limits *limits)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->limits = *limits;
    srv->scratch = malloc(HR_SCRATCH_SIZE);
    if (!srv->scratch)
        return HR_ENOMEM;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    uv_timer_init(loop, &srv->sweep);
    srv->sweep.data = srv;
    uv_idle_init(loop, &srv->ready_idle);
    srv->ready_idle.data = srv;
    uv_timer_init(loop, &srv->shed);
    srv->shed.data = srv;
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

/* The count key of a peer address, or 0 when it has none we can count. */
static int ip_key(uv_tcp_t *tcp, uint8_t key[9])
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    memset(key, 0, 9);
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        return 1;
    }
    if (ss.ss_family != AF_INET6)
        return 0;
    const uint8_t *a = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, 12) == 0) {
        key[0] = 4;
        memcpy(key + 1, a + 12, 4);
    } else {
        key[0] = 6;
        memcpy(key + 1, a, 8);
    }
    return 1;
}

/* Count c against its address; 0 if over the per-address limit (or out of memory). */
static int ip_take(struct hr_server *srv, struct hr_conn *c)
{
    uint8_t key[9];
    struct hr_ip_count *e;
    if (srv->limits.max_connections_per_ip == 0 || !ip_key(&c->tcp, key))
        return 1;
    HASH_FIND(hh, srv->per_ip, key, sizeof key, e);
    if (!e) {
        if (!(e = calloc(1, sizeof(*e))))
            return 0;
        memcpy(e->key, key, sizeof key);
        HASH_ADD(hh, srv->per_ip, key, sizeof e->key, e);
    }
    if (e->n >= srv->limits.max_connections_per_ip)
        return 0;
    e->n++;
    c->ip = e;
    return 1;
}

static void ip_release(struct hr_server *srv, struct hr_conn *c)
{
    struct hr_ip_count *e = c->ip;
    c->ip = NULL;
    if (e && --e->n == 0) {
        HASH_DEL(srv->per_ip, e);
        free(e);
    }
}

static void connection_cb(uv_stream_t *listener, int status)
{
    struct hr_server *srv = listener->data;
    if (status < 0) {
        /* libuv already closed the connection it could not take (its spare-fd trick for
         * EMFILE); established connections are untouched */
        srv->accept_errors++;
        srv->last_accept_error = status;
        log_refusals(srv);
        return;
    }
    struct hr_conn *c = hr_conn_new(srv);
    if (!c)
        return; /* the connection stays in the backlog; we retry on the next event */
    uv_tcp_init(srv->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    /* Refuse by closing at once: the fd is given back within this loop turn, and every
     * connection already open goes on as before. */
    if (srv->stopping || srv->nconns >= srv->limits.max_connections || !ip_take(srv, c)) {
        if (!srv->stopping) {
            if (srv->nconns >= srv->limits.max_connections)
                srv->refused_max++;
            else
                srv->refused_ip++;
            log_refusals(srv);
        }
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    srv->on_accept(c);
    hr_conn_start(c);
}

int hr_server_listen(struct hr_server *srv, const char *host, int port)
{
    struct sockaddr_storage addr;
    int rc;
    fit_fd_limit(&srv->limits);
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc < 0)
        return hr_error_from_uv(rc);
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0);
    if (rc < 0)
        return hr_error_from_uv(rc);
    rc = uv_listen((uv_stream_t *)&srv->listener, 1024, connection_cb);
    if (rc < 0)
        return hr_error_from_uv(rc);
    uint64_t iv = sweep_interval(&srv->limits);
    uv_timer_start(&srv->sweep, sweep_cb, iv, iv);
    return 0;
}

int hr_server_port(struct hr_server *srv)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return hr_error_from_uv(rc);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void sweep_cb(uv_timer_t *t)
{
    struct hr_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    log_refusals(srv);
    for (struct hr_conn *c = srv->conns; c; c = c->next) {
        if (!c->deadline || now < c->deadline || (c->flags & HR_CONN_CLOSING))
            continue;
        c->deadline = 0;
        if ((c->flags & HR_CONN_ENDING) || !c->proto->on_timeout)
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

static void finish_stop(struct hr_server *srv)
{
    uv_timer_stop(&srv->sweep);
    uv_close((uv_handle_t *)&srv->sweep, NULL);
    uv_timer_stop(&srv->shed);
    uv_close((uv_handle_t *)&srv->shed, NULL);
    hr_budget_on_over(NULL, NULL);
    uv_idle_stop(&srv->ready_idle);
    uv_close((uv_handle_t *)&srv->ready_idle, NULL);
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
    srv->nconns--;
    if (srv->stopping && srv->nconns == 0)
        finish_stop(srv);
}

void hr_server_stop(struct hr_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    if (!uv_is_closing((uv_handle_t *)&srv->listener))
        uv_close((uv_handle_t *)&srv->listener, NULL);
    if (srv->nconns == 0) {
        finish_stop(srv);
        return;
    }
    for (struct hr_conn *c = srv->conns; c; c = c->next) {
        if (c->flags & HR_CONN_CLOSING)
            continue;
        if (c->proto && c->proto->on_shutdown)
            c->proto->on_shutdown(c);
        else
            hr_conn_close(c);
    }
}

void hr_server_free(struct hr_server *srv)
{
    struct hr_ip_count *e, *tmp;
    HASH_ITER(hh, srv->per_ip, e, tmp)
    {
        HASH_DEL(srv->per_ip, e);
        free(e);
    }
    free(srv->scratch);
    srv->scratch = NULL;
}
