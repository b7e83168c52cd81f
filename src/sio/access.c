/* access.c - Socket.IO's side of access control (docs/security.md): the token a client
 * connects with (auth.token), checked at CONNECT; whom a socket speaks for (herald_user) and
 * what it may do (herald_may, the decision every transport makes); a socket whose token
 * expires is told and disconnected unless the client sent a fresh one ("herald:refresh"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "internal.h"

static void expiry_cb(uv_timer_t *t);

void hr_sio_set_auth(herald_io *io, const struct hr_auth *auth)
{
    io->auth = auth;
    if (auth && auth->alg != HR_AUTH_ALG_NONE)
        uv_timer_start(&io->expiry_timer, expiry_cb, 1000, 1000);
}

/* The client's auth.token, if any: 0 and *who (NULL when none), or HR_EUNAUTH with *why. */
static int verify(herald_io *io, const json_t *auth, struct hr_principal **who, const char **why)
{
    *who = NULL;
    json_t *t = json_object_get(auth, "token");
    if (!t || !io->auth || !io->auth->enabled)
        return 0;
    if (!json_is_string(t)) {
        *why = "auth.token must be a string";
        return HR_EUNAUTH;
    }
    struct hr_principal p;
    if (hr_auth_verify(io->auth, json_string_value(t), json_string_length(t), hr_wall_ms(), &p,
                       why) < 0)
        return HR_EUNAUTH;
    *who = malloc(sizeof(**who));
    if (!*who) {
        hr_principal_clear(&p);
        *why = "out of memory";
        return HR_EUNAUTH;
    }
    **who = p;
    return 0;
}

int hr_sio_auth_connect(herald_socket *s, const char **why)
{
    return verify(s->nsp->io, s->auth, &s->who, why);
}

void hr_sio_auth_free(herald_socket *s)
{
    if (s->who) {
        hr_principal_clear(s->who);
        free(s->who);
        s->who = NULL;
    }
}

const char *herald_user(const herald_socket *s)
{
    return s->who && s->who->kind == HR_PRINCIPAL_TOKEN && s->who->sub[0] ? s->who->sub : NULL;
}

const char *herald_may(const herald_socket *s, const char *channel, int what)
{
    const struct hr_auth *a = s->nsp->io->auth;
    enum hr_access acc = what == HERALD_PUBLISH ? HR_ACCESS_PUBLISH : HR_ACCESS_READ;
    if (!a)
        return NULL;
    int rc = hr_auth_allow(a, s->who, channel, strlen(channel), acc);
    return rc < 0 ? hr_auth_refusal(rc, acc) : NULL;
}

static void answer(herald_ack *ack, const char *error, uint64_t exp_ms)
{
    if (!ack)
        return;
    json_t *r = error ? json_pack("[{s:s}]", "error", error)
                      : json_pack("[{s:b,s:I}]", "ok", 1, "exp", (json_int_t)(exp_ms / 1000));
    herald_ack_send(ack, r);
}

void hr_sio_auth_refresh(herald_socket *s, const herald_args *args, herald_ack *ack)
{
    json_t *arg = herald_arg(args, 0);
    json_t *holder = arg ? json_pack("{s:O}", "token", arg) : NULL;
    struct hr_principal *who = NULL;
    const char *why = "herald:refresh wants a token";
    if (!s->who || s->who->kind != HR_PRINCIPAL_TOKEN)
        why = "this socket connected without a token: reconnect with one";
    else if (holder && verify(s->nsp->io, holder, &who, &why) == 0 && who &&
             who->kind == HR_PRINCIPAL_TOKEN && strcmp(who->sub, s->who->sub) == 0) {
        /* the rooms it joined stay: the same user, for longer */
        json_decref(holder);
        hr_sio_auth_free(s);
        s->who = who;
        answer(ack, NULL, who->exp_ms);
        return;
    } else if (who) {
        why = "a refreshed token must name the same user";
    }
    json_decref(holder);
    if (who) {
        hr_principal_clear(who);
        free(who);
    }
    answer(ack, why, 0);
}

/* Once a second: sockets whose token expired are told why, then leave their namespace (the
 * client reconnects with a new token and recovers what it missed). */
static void expire_nsp(herald_nsp *nsp, uint64_t now)
{
    herald_socket *s, *tmp;
    HASH_ITER(hh, nsp->sockets, s, tmp)
    {
        if (!s->who || !s->who->exp_ms || now < s->who->exp_ms || !s->connected)
            continue;
        static const char reason[] = "{\"error\":\"token expired\"}";
        hr_sio_emit_raw(s, "herald:error", reason, sizeof reason - 1, NULL, 0);
        hr_info("socket %s: token expired", s->id);
        herald_disconnect(s, 0);
    }
}

static void expiry_cb(uv_timer_t *t)
{
    herald_io *io = t->data;
    uint64_t now = hr_wall_ms();
    herald_nsp *nsp, *tmp;
    HASH_ITER(hh, io->nsps, nsp, tmp)
    expire_nsp(nsp, now);
}
