/* server.c - listener, connection list, shared scratch buffer, deadline sweep, ready queue. */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#include "../core/error.h"
#include "../core/log.h"

static void sweep_cb(uv_timer_t *t);
static void ready_cb(uv_idle_t *idle);

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
    return 0;
}

/* The sweep runs often enough for the shortest timeout to be honoured within ~25%. */
static uint64_t sweep_interval(const struct hr_limits *l)
{
    uint64_t m = l->header_timeout_ms;
    uint64_t t[] = {l->body_timeout_ms, l->idle_timeout_ms, l->close_timeout_ms, l->ws_message_timeout_ms};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i] && t[i] < m)
            m = t[i];
    m /= 4;
    return m < 20 ? 20 : m > 1000 ? 1000 : m;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct hr_server *srv = listener->data;
    if (status < 0) {
        hr_warn("accept: %s", uv_strerror(status));
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
    if (srv->stopping || srv->nconns >= srv->limits.max_connections) {
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
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc < 0)
        return rc;
    rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0);
    if (rc < 0)
        return rc;
    rc = uv_listen((uv_stream_t *)&srv->listener, 1024, on_connection);
    if (rc < 0)
        return rc;
    uint64_t iv = sweep_interval(&srv->limits);
    uv_timer_start(&srv->sweep, sweep_cb, iv, iv);
    return 0;
}

int hr_server_port(struct hr_server *srv)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void sweep_cb(uv_timer_t *t)
{
    struct hr_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
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
    free(srv->scratch);
    srv->scratch = NULL;
}
