/* connect.c - namespaces and CONNECT (docs/socket.io-protocol/v5-current.md): auth,
 * middleware, recovery of a dropped session, and the connect timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/id.h"
#include "internal.h"
#include "recovery.h"

/* ---- namespaces --------------------------------------------------------------------------- */

herald_nsp *herald_of(herald_io *io, const char *name)
{
    herald_nsp *nsp;
    HASH_FIND_STR(io->nsps, name, nsp);
    if (nsp)
        return nsp;
    nsp = calloc(1, sizeof(*nsp));
    if (!nsp || !(nsp->name = strdup(name))) {
        free(nsp);
        return NULL;
    }
    nsp->io = io;
    HASH_ADD_KEYPTR(hh, io->nsps, nsp->name, strlen(nsp->name), nsp);
    return nsp;
}

int hr_sio_copy_handlers(herald_io *dst, const herald_io *src)
{
    dst->allow = src->allow;
    dst->setup = src->setup;
    dst->allow_ud = src->allow_ud;
    for (const herald_nsp *n = src->nsps; n; n = n->hh.next) {
        herald_nsp *d = herald_of(dst, n->name);
        if (!d)
            return HR_ENOMEM;
        d->on_connection = n->on_connection;
        d->conn_ud = n->conn_ud;
        memcpy(d->mw, n->mw, sizeof d->mw);
        d->nmw = n->nmw;
    }
    return 0;
}

unsigned herald_workers(herald_io *io)
{
    return io->workers ? io->workers : 1;
}

unsigned herald_worker(herald_io *io)
{
    return io->worker;
}

herald_io *herald_nsp_io(herald_nsp *nsp)
{
    return nsp->io;
}
const char *herald_nsp_name(const herald_nsp *nsp)
{
    return nsp->name;
}

void herald_allow_namespaces(herald_io *io, int (*allow)(const char *name, void *ud),
                             void (*setup)(herald_nsp *nsp, void *ud), void *ud)
{
    io->allow = allow;
    io->setup = setup;
    io->allow_ud = ud;
}

void herald_on_connection(herald_nsp *nsp, herald_connection_cb cb, void *ud)
{
    nsp->on_connection = cb;
    nsp->conn_ud = ud;
}

void herald_use(herald_nsp *nsp, herald_middleware_cb cb, void *ud)
{
    if (nsp->nmw < sizeof nsp->mw / sizeof nsp->mw[0]) {
        nsp->mw[nsp->nmw].cb = cb;
        nsp->mw[nsp->nmw].ud = ud;
        nsp->nmw++;
    }
}

/* CONNECT: find or allow the namespace, run its middleware, answer, then tell the app. */
void hr_sio_on_connect(struct hr_sio_client *c, const struct hr_sio_packet *p)
{
    herald_io *io = c->io;
    char name[256];
    if (p->nsp_len >= sizeof name) {
        hr_eio_close(c->eio, "parse error");
        return;
    }
    memcpy(name, p->nsp, p->nsp_len);
    name[p->nsp_len] = '\0';
    if (hr_sio_client_socket(c, name, p->nsp_len))
        return; /* already connected there: ignore, as the reference server does */
    if (io->admin)
        hr_sio_admin_connecting(c);
    herald_nsp *nsp;
    HASH_FIND_STR(io->nsps, name, nsp);
    if (!nsp && io->allow && io->allow(name, io->allow_ud)) {
        nsp = herald_of(io, name);
        if (nsp && io->setup)
            io->setup(nsp, io->allow_ud);
    }
    if (!nsp) {
        hr_sio_send_packet(c, HR_SIO_CONNECT_ERROR, name, "{\"message\":\"Invalid namespace\"}");
        return;
    }
    if (hr_sio_recovery_ask(c, nsp, p))
        return; /* handled again once the other workers answered */
    if (hr_sio_prefetch_start(c, nsp, p))
        return; /* handled again once the history it replays is read */
    herald_socket *s = calloc(1, sizeof(*s));
    if (!s)
        return;
    s->nsp = nsp;
    s->client = c;
    s->auth = p->data ? json_loadb(p->data, p->data_len, 0, NULL) : NULL;
    const char *why = NULL;
    if (hr_sio_auth_connect(s, &why) < 0) {
        /* a token that is not valid is refused, never taken for no token */
        json_t *err = json_pack("{s:s}", "message", why);
        size_t tlen;
        char *text = err ? hr_sio_args_text(err, &tlen) : NULL;
        hr_sio_send_packet(c, HR_SIO_CONNECT_ERROR, name,
                           text ? text : "{\"message\":\"refused\"}");
        free(text);
        json_decref(err);
        json_decref(s->auth);
        free(s);
        return;
    }
    /* the client's recovery fields are not part of the application's auth */
    const char *pid = json_string_value(json_object_get(s->auth, "pid"));
    const char *offset = json_string_value(json_object_get(s->auth, "offset"));
    struct hr_sio_kept *from_k = NULL;
    struct hr_sio_saved *sv = hr_sio_recovery_find(c, nsp, pid, offset, &from_k);
    if (!sv && offset) {
        /* not a recovery, but a channel cursor: what the socket's channel rooms missed is
         * replayed as it joins them (herald_join) */
        struct hr_cursor cur;
        if (hr_cursor_parse(offset, strlen(offset), &cur) == 0 && cur.epoch[0]) {
            io->resume_for = s;
            io->resume = cur;
        }
    }
    json_object_del(s->auth, "pid");
    json_object_del(s->auth, "offset");
    /* no auth (or only the recovery fields): the io's empty object, shared */
    if (!s->auth || (json_is_object(s->auth) && json_object_size(s->auth) == 0)) {
        json_decref(s->auth);
        if (!io->empty_auth)
            io->empty_auth = json_object();
        s->auth = json_incref(io->empty_auth);
    }
    if (sv) {
        memcpy(s->id, sv->sid, sizeof s->id);
        memcpy(s->pid, sv->pid, sizeof s->pid);
        s->recovered = 1;
        s->next_in_client = c->sockets;
        c->sockets = s;
        HASH_ADD_STR(nsp->sockets, id, s);
        s->connected = 1;
        hr_sio_wait_remove(c);
        for (uint32_t i = 0; i < sv->nrooms; i++)
            herald_join(s, sv->rooms[i]);
        char ok[96];
        snprintf(ok, sizeof ok, "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id, s->pid);
        hr_sio_send_packet(c, HR_SIO_CONNECT, name, ok);
        /* what it missed, in order, then the application */
        hr_sio_recovery_replay(s, sv, from_k);
        hr_sio_recovery_done(c, sv);
        /* the admin UI hears of it before the app, which may disconnect it */
        if (io->admin)
            hr_sio_admin_connected(s);
        if (nsp->on_connection)
            nsp->on_connection(s, nsp->conn_ud);
        return;
    }
    for (herald_socket *other = s; other;) {
        hr_random_id(s->id);
        HASH_FIND_STR(nsp->sockets, s->id, other);
    }
    s->next_in_client = c->sockets;
    c->sockets = s;
    for (uint32_t i = 0; i < nsp->nmw; i++) {
        const char *refusal = nsp->mw[i].cb(s, s->auth, nsp->mw[i].ud);
        if (refusal) {
            json_t *err = json_pack("{s:s}", "message", refusal);
            size_t tlen;
            char *text = err ? hr_sio_args_text(err, &tlen) : NULL;
            hr_sio_send_packet(c, HR_SIO_CONNECT_ERROR, name,
                               text ? text : "{\"message\":\"refused\"}");
            free(text);
            json_decref(err);
            hr_sio_socket_gone(s, "server namespace disconnect");
            return;
        }
    }
    HASH_ADD_STR(nsp->sockets, id, s);
    s->connected = 1;
    hr_sio_wait_remove(c);
    herald_join(s, s->id);
    char ok[96];
    if (io->opts.recovery_window_ms && !nsp->no_recovery) {
        hr_random_id(s->pid);
        snprintf(ok, sizeof ok, "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id, s->pid);
    } else {
        snprintf(ok, sizeof ok, "{\"sid\":\"%s\"}", s->id);
    }
    hr_sio_send_packet(c, HR_SIO_CONNECT, name, ok);
    if (io->admin)
        hr_sio_admin_connected(s);
    if (nsp->on_connection)
        nsp->on_connection(s, nsp->conn_ud);
    /* the cursor applies to the rooms joined while connecting, not to later joins */
    if (io->resume_for == s)
        io->resume_for = NULL;
}

/* ---- connect timeout: an Engine.IO session must join a namespace within connect_timeout_ms
 * (Socket.IO's connectTimeout), or it is closed. The waiting clients form a list in the order
 * they opened, so one timer set for the oldest serves them all. */

void hr_sio_wait_remove(struct hr_sio_client *c)
{
    herald_io *io = c->io;
    if (!c->waiting)
        return;
    c->waiting = 0;
    if (c->wait_prev)
        c->wait_prev->wait_next = c->wait_next;
    else
        io->wait_head = c->wait_next;
    if (c->wait_next)
        c->wait_next->wait_prev = c->wait_prev;
    else
        io->wait_tail = c->wait_prev;
    c->wait_prev = c->wait_next = NULL;
}

static void connect_timer_cb(uv_timer_t *t)
{
    herald_io *io = t->data;
    uint64_t now = uv_now(io->loop), limit = io->opts.connect_timeout_ms;
    while (io->wait_head && now - io->wait_head->opened >= limit) {
        struct hr_sio_client *c = io->wait_head;
        hr_sio_wait_remove(c);
        hr_eio_close(c->eio, "connect timeout");
    }
    if (io->wait_head)
        uv_timer_start(&io->connect_timer, connect_timer_cb, io->wait_head->opened + limit - now,
                       0);
}

void hr_sio_wait_add(struct hr_sio_client *c)
{
    herald_io *io = c->io;
    if (io->opts.connect_timeout_ms) {
        c->opened = uv_now(io->loop);
        c->waiting = 1;
        c->wait_prev = io->wait_tail;
        if (io->wait_tail)
            io->wait_tail->wait_next = c;
        else
            io->wait_head = c;
        io->wait_tail = c;
        if (!uv_is_active((uv_handle_t *)&io->connect_timer))
            uv_timer_start(&io->connect_timer, connect_timer_cb, io->opts.connect_timeout_ms, 0);
    }
}

void hr_sio_free_namespaces(herald_io *io)
{
    json_decref(io->empty_auth);
    io->empty_auth = NULL;
    hr_sio_admin_free(io);
    while (io->saved)
        hr_sio_saved_free(io, io->saved);
    while (io->moving) {
        struct hr_sio_moving *mv = io->moving;
        io->moving = mv->next;
        if (mv->c)
            mv->c->moving = NULL;
        hr_sio_moved_free(mv->sv, mv->head.next);
        free(mv->nsp);
        free(mv->data);
        free(mv);
    }
    herald_nsp *nsp, *tmp;
    HASH_ITER(hh, io->nsps, nsp, tmp)
    {
        while (nsp->kept_head) {
            struct hr_sio_kept *k = nsp->kept_head;
            nsp->kept_head = k->next;
            hr_sio_kept_free(k);
        }
        HASH_DEL(io->nsps, nsp);
        free(nsp->name);
        free(nsp);
    }
}
