/* admin.c - the server side of the Socket.IO Admin UI, written from the protocol of
 * @socket.io/admin-ui 0.5 (its dist/index.js and typed-events.d.ts): the UI connects to the
 * namespace /admin with auth {username, password} (or {sessionId} from an earlier login) and
 * gets "config", "all_sockets", then "server_stats" every two seconds and, as they happen,
 * socket_connected / socket_updated / socket_disconnected / room_joined / room_left /
 * event_received / event_sent. It may ask for "emit", "join", "leave" and "_disconnect".
 *
 * With several workers each one is a server of the UI (serverId "host#pid/worker"): its
 * events are broadcasts to /admin, which reach the admin sockets of every worker; at login the
 * other workers are asked for their sockets (relayed, "herald:admin-list"), and the
 * operations are relayed to them too. */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "core/text.h"
#include "internal.h"
#include "net/conn.h"
#include "net/server.h"

static const char *const count_names[HR_ADMIN_COUNTS] = {
    "rawConnection", "packetsIn", "packetsOut", "bytesIn", "bytesOut",
};

/* new Date() as JSON.stringify writes it */
static void iso_date(uint64_t ms, char out[64])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
}

static json_t *now_date(void)
{
    char d[64];
    iso_date(hr_wall_ms(), d);
    return json_string(d);
}

static int watched(const struct hr_sio_admin *a)
{
    return atomic_load(a->watchers) > 0;
}

static void flush_cb(uv_timer_t *t)
{
    struct hr_sio_admin *a = t->data;
    struct hr_sio_admin_event *e = a->head;
    a->head = a->tail = NULL;
    while (e) {
        struct hr_sio_admin_event *next = e->next;
        herald_broadcast(a->nsp, NULL, NULL, e->event, e->args);
        free(e);
        e = next;
    }
}

/* An event to every admin socket (every worker's), after this loop turn. args: stolen. */
static void tell(struct hr_sio_admin *a, const char *event, json_t *args)
{
    struct hr_sio_admin_event *e = args ? malloc(sizeof(*e)) : NULL;
    if (!e) {
        json_decref(args);
        return;
    }
    *e = (struct hr_sio_admin_event){NULL, event, args};
    if (a->tail)
        a->tail->next = e;
    else
        a->head = e;
    a->tail = e;
    if (!uv_is_active((uv_handle_t *)&a->flush))
        uv_timer_start(&a->flush, flush_cb, 0, 0);
}

/* ---- sockets as the UI lists them --------------------------------------------------------- */

static const char *transport_of(const herald_socket *s)
{
    const struct hr_eio_session *es = s->client ? s->client->eio : NULL;
    return es && es->transport == HR_EIO_WEBSOCKET ? "websocket" : "polling";
}

static json_t *rooms_of(const herald_socket *s)
{
    json_t *rooms = json_array();
    if (!rooms)
        return NULL;
    if (s->own_room)
        json_array_append_new(rooms, json_string(s->id));
    for (const struct hr_sio_member *m = s->rooms; m; m = m->next_room)
        json_array_append_new(rooms, json_string(m->room->name));
    return rooms;
}

/* handshake.query: the handshake URL's parameters, decoded */
static json_t *query_of(const char *url)
{
    json_t *q = json_object();
    const char *p = strchr(url, '?');
    while (q && p && *++p) {
        size_t n = strcspn(p, "&#");
        const char *eq = memchr(p, '=', n);
        size_t klen = eq ? (size_t)(eq - p) : n;
        char k[128], v[256];
        long kl = hr_percent_decode(p, klen, k, sizeof k - 1, HR_PCT_PLUS);
        long vl = eq ? hr_percent_decode(eq + 1, n - klen - 1, v, sizeof v - 1, HR_PCT_PLUS) : 0;
        if (kl > 0 && vl >= 0) {
            k[kl] = v[vl] = '\0';
            json_object_set_new(q, k, json_stringn(v, (size_t)vl));
        }
        p += n;
        if (*p != '&')
            break;
    }
    return q;
}

/* The UI's SerializedSocket, from what its client was at the handshake. */
static json_t *serialize(const herald_socket *s)
{
    const struct hr_sio_admin_client *ac = s->client ? s->client->admin : NULL;
    const struct hr_eio_session *es = s->client ? s->client->eio : NULL;
    char client_id[13] = "";
    if (es)
        snprintf(client_id, sizeof client_id, "%.12s", es->sid);
    char date[64];
    uint64_t issued = ac ? ac->issued : hr_wall_ms();
    iso_date(issued, date);
    json_t *headers = ac && ac->headers ? json_loads(ac->headers, 0, NULL) : NULL;
    const char *origin = json_string_value(json_object_get(headers, "origin"));
    const char *host = json_string_value(json_object_get(headers, "host"));
    /* as Node's engine.io: a request from another origin than the host's is cross-domain */
    const char *ohost = origin ? strstr(origin, "://") : NULL;
    int xdomain = origin && host && !(ohost && strcmp(ohost + 3, host) == 0);
    return json_pack("{s:s, s:s, s:s, s:s, s:{}, s:{s:s, s:o, s:o, s:I, s:b, s:s, s:s, s:b}, "
                     "s:o*}",
                     "id", s->id, "clientId", client_id, "transport", transport_of(s), "nsp",
                     s->nsp->name, "data", "handshake", "address", ac ? ac->address : "", "headers",
                     headers ? headers : json_object(), "query", query_of(ac ? ac->url : ""),
                     "issued", (json_int_t)issued, "secure", ac && ac->secure, "time", date, "url",
                     ac ? ac->url : "", "xdomain", xdomain, "rooms", rooms_of(s));
}

static json_t *all_sockets(herald_io *io)
{
    json_t *list = json_array();
    for (herald_nsp *nsp = io->nsps; nsp && list; nsp = nsp->hh.next)
        for (herald_socket *s = nsp->sockets; s; s = s->hh.next)
            if (s->connected)
                json_array_append_new(list, serialize(s));
    return list;
}

/* ---- server_stats ------------------------------------------------------------------------- */

/* The counts of the second that just ended, as Node's EventBuffer would have them. */
static void fold_counts(struct hr_sio_admin *a, uint64_t second)
{
    if (!a->events)
        a->events = json_array();
    for (int i = 0; i < HR_ADMIN_COUNTS && a->events; i++) {
        if (a->counts[i])
            json_array_append_new(a->events, json_pack("{s:I, s:s, s:I}", "timestamp",
                                                       (json_int_t)second, "type", count_names[i],
                                                       "count", (json_int_t)a->counts[i]));
        a->counts[i] = 0;
    }
    for (int i = 0; i < HR_ADMIN_REASONS && a->gone[i].reason[0]; i++) {
        if (a->events && a->gone[i].count)
            json_array_append_new(
                a->events, json_pack("{s:I, s:s, s:s, s:I}", "timestamp", (json_int_t)second,
                                     "type", "rawDisconnection", "subType", a->gone[i].reason,
                                     "count", (json_int_t)a->gone[i].count));
        a->gone[i].count = 0;
        a->gone[i].reason[0] = '\0';
    }
}

static json_t *server_stats(struct hr_sio_admin *a, json_t *events)
{
    json_t *nsps = json_array();
    for (herald_nsp *nsp = a->io->nsps; nsp && nsps; nsp = nsp->hh.next)
        json_array_append_new(nsps, json_pack("{s:s, s:I}", "name", nsp->name, "socketsCount",
                                              (json_int_t)HASH_COUNT(nsp->sockets)));
    double uptime = (double)(uv_now(a->io->loop) - a->started) / 1000.0;
    return json_pack("{s:s, s:s, s:I, s:f, s:I, s:I, s:o, s:o*}", "serverId", a->server_id,
                     "hostname", a->hostname, "pid", (json_int_t)getpid(), "uptime", uptime,
                     "clientsCount", (json_int_t)a->clients, "pollingClientsCount",
                     (json_int_t)a->polling, "aggregatedEvents", events ? events : json_array(),
                     "namespaces", nsps);
}

static void timer_cb(uv_timer_t *t)
{
    struct hr_sio_admin *a = t->data;
    fold_counts(a, hr_wall_ms() / 1000 * 1000 - 1000);
    if (++a->ticks % 2)
        return;
    json_t *events = a->events;
    a->events = NULL;
    if (!watched(a)) {
        json_decref(events);
        return;
    }
    json_t *stats = server_stats(a, events);
    if (stats)
        tell(a, "server_stats", json_pack("[o]", stats));
}

/* ---- login -------------------------------------------------------------------------------- */

static int session_known(struct hr_sio_admin *a, const char *id)
{
    if (!id || strlen(id) != 20)
        return 0;
    int known = 0;
    uv_mutex_lock(&a->sessions->lock);
    for (unsigned i = 0; i < HR_ADMIN_SESSIONS && !known; i++)
        known = a->sessions->ids[i][0] && hr_auth_secret_equal(id, 20, a->sessions->ids[i], 20);
    uv_mutex_unlock(&a->sessions->lock);
    return known;
}

/* What Node's admin-ui answers a wrong login: connect_error "invalid credentials". The
 * password is compared in constant time and never logged. */
static const char *login_cb(herald_socket *s, const json_t *auth, void *ud)
{
    (void)ud;
    struct hr_sio_admin *a = s->nsp->io->admin;
    if (!a)
        return "invalid credentials";
    if (session_known(a, json_string_value(json_object_get(auth, "sessionId"))))
        return NULL;
    const json_t *user = json_object_get(auth, "username");
    const json_t *pass = json_object_get(auth, "password");
    int user_ok = json_is_string(user) &&
                  hr_auth_secret_equal(json_string_value(user), json_string_length(user), a->user,
                                       a->user_len);
    int pass_ok = json_is_string(pass) &&
                  hr_auth_secret_equal(json_string_value(pass), json_string_length(pass),
                                       a->password, a->password_len);
    if (!user_ok || !pass_ok)
        return "invalid credentials";
    /* a session the UI keeps (localStorage) to come back without the password, on any
     * worker; the oldest of the table gives way */
    hr_random_id(a->new_session);
    uv_mutex_lock(&a->sessions->lock);
    memcpy(a->sessions->ids[a->sessions->next++ % HR_ADMIN_SESSIONS], a->new_session,
           sizeof a->new_session);
    uv_mutex_unlock(&a->sessions->lock);
    herald_set_data(s, a->new_session); /* the connection handler runs next, in this call */
    return NULL;
}

/* ---- what the UI asks ----------------------------------------------------------------------- */

/* The ids of the sockets of namespace name in room filter (NULL or "": all), so that acting on
 * them (a disconnect) cannot disturb the walk. */
static size_t matching(herald_io *io, const json_t *name, const json_t *filter, herald_nsp **out,
                       char (**ids)[24])
{
    herald_nsp *nsp = NULL;
    *ids = NULL;
    if (json_is_string(name))
        HASH_FIND_STR(io->nsps, json_string_value(name), nsp);
    *out = nsp;
    if (!nsp)
        return 0;
    const char *room =
        json_is_string(filter) && json_string_length(filter) ? json_string_value(filter) : NULL;
    size_t n = 0, cap = HASH_COUNT(nsp->sockets);
    if (!cap || !(*ids = malloc(cap * sizeof **ids)))
        return 0;
    for (herald_socket *s = nsp->sockets; s; s = s->hh.next)
        if (s->connected && (!room || herald_in(s, room)))
            memcpy((*ids)[n++], s->id, 24);
    return n;
}

enum { OP_JOIN, OP_LEAVE, OP_DISCONNECT };

/* Between workers only (relayed, never sent to a client): a new admin socket wants the other
 * workers' sockets, and the operations reach theirs. */
#define RELAY_PREFIX "herald:admin-"
static const char *const op_events[] = {RELAY_PREFIX "join", RELAY_PREFIX "leave",
                                        RELAY_PREFIX "disconnect"};
#define LIST_EVENT RELAY_PREFIX "list"

/* An operation on this worker's sockets (admin: the socket that asked, left alone; NULL when
 * another worker's admin socket asked). */
static void act_local(herald_io *io, herald_socket *admin, const herald_args *args, int op)
{
    /* join/leave: (nsp, room, filter); _disconnect: (nsp, close, filter) */
    const json_t *room = herald_arg(args, 1);
    if (op != OP_DISCONNECT && !json_is_string(room))
        return;
    herald_nsp *nsp;
    char(*ids)[24];
    size_t n = matching(io, herald_arg(args, 0), herald_arg(args, 2), &nsp, &ids);
    for (size_t i = 0; i < n; i++) {
        herald_socket *s;
        HASH_FIND_STR(nsp->sockets, ids[i], s);
        if (!s || !s->connected || s == admin)
            continue;
        if (op == OP_JOIN)
            herald_join(s, json_string_value(room));
        else if (op == OP_LEAVE)
            herald_leave(s, json_string_value(room));
        else
            herald_disconnect(s, json_is_true(room));
    }
    free(ids);
}

static void act(herald_socket *admin, const herald_args *args, int op)
{
    herald_io *io = admin->nsp->io;
    size_t len;
    const char *raw = herald_args_raw(args, &len);
    if (io->relay)
        io->relay(io->relay_ud, admin->nsp->name, NULL, op_events[op], raw, len, NULL, 0);
    act_local(io, admin, args, op);
}

int hr_sio_admin_relayed(herald_io *io, const char *nsp, const char *room, const char *event,
                         const char *raw, size_t len)
{
    struct hr_sio_admin *a = io->admin;
    if (strcmp(nsp, a->nsp->name) != 0 || strncmp(event, RELAY_PREFIX, strlen(RELAY_PREFIX)) != 0)
        return 0;
    if (strcmp(event, LIST_EVENT) == 0 && room) {
        /* this worker's sockets to the new admin socket (its own room; it is on another
         * worker, which the broadcast reaches), each as it connected */
        for (herald_nsp *n = io->nsps; n; n = n->hh.next)
            for (herald_socket *s = n->sockets; s; s = s->hh.next) {
                json_t *js = s->connected ? serialize(s) : NULL;
                if (!js)
                    continue;
                char date[64];
                iso_date(s->client && s->client->admin ? s->client->admin->issued : hr_wall_ms(),
                         date);
                herald_broadcast(a->nsp, room, NULL, "socket_connected",
                                 json_pack("[o, s]", js, date));
            }
        return 1;
    }
    for (int op = 0; op < (int)(sizeof op_events / sizeof op_events[0]); op++) {
        if (strcmp(event, op_events[op]) == 0) {
            herald_args args = {raw, len, NULL, NULL, 0};
            act_local(io, NULL, &args, op);
            json_decref(args.parsed);
        }
    }
    return 1;
}

static void join_cb(herald_socket *s, const herald_args *args, herald_ack *ack, void *ud)
{
    (void)ack, (void)ud;
    act(s, args, OP_JOIN);
}

static void leave_cb(herald_socket *s, const herald_args *args, herald_ack *ack, void *ud)
{
    (void)ack, (void)ud;
    act(s, args, OP_LEAVE);
}

static void disconnect_cb(herald_socket *s, const herald_args *args, herald_ack *ack, void *ud)
{
    (void)ack, (void)ud;
    act(s, args, OP_DISCONNECT);
}

/* emit: (nsp, filter, event, ...args) to the namespace, or to a room of it */
static void emit_cb(herald_socket *s, const herald_args *args, herald_ack *ack, void *ud)
{
    (void)ack, (void)ud;
    const json_t *name = herald_arg(args, 0), *filter = herald_arg(args, 1),
                 *event = herald_arg(args, 2);
    herald_nsp *nsp = NULL;
    if (json_is_string(name))
        HASH_FIND_STR(s->nsp->io->nsps, json_string_value(name), nsp);
    if (!nsp || !json_is_string(event))
        return;
    json_t *rest = json_array();
    for (size_t i = 3; rest && i < herald_args_count(args); i++)
        json_array_append(rest, herald_arg(args, i));
    const char *room =
        json_is_string(filter) && json_string_length(filter) ? json_string_value(filter) : NULL;
    herald_broadcast(nsp, room, NULL, json_string_value(event), rest);
}

static const char *const features[] = {
    "EMIT",       "JOIN",   "LEAVE",       "DISCONNECT",
    "MJOIN",      "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS",
    "ALL_EVENTS",
};

static void admin_connection_cb(herald_socket *s, void *ud)
{
    (void)ud;
    struct hr_sio_admin *a = s->nsp->io->admin;
    if (!a)
        return;
    const char *session = herald_data(s);
    herald_set_data(s, NULL);
    if (session)
        herald_emit(s, "session", json_pack("[s]", session));
    herald_on(s, "emit", emit_cb, NULL);
    herald_on(s, "join", join_cb, NULL);
    herald_on(s, "leave", leave_cb, NULL);
    herald_on(s, "_disconnect", disconnect_cb, NULL);
    json_t *list = json_array();
    for (size_t i = 0; list && i < sizeof features / sizeof features[0]; i++)
        json_array_append_new(list, json_string(features[i]));
    herald_emit(s, "config", json_pack("[{s:o*}]", "supportedFeatures", list));
    herald_emit(s, "all_sockets", json_pack("[o*]", all_sockets(s->nsp->io)));
    /* and the other workers' sockets, which they send as socket_connected events */
    if (s->nsp->io->relay)
        s->nsp->io->relay(s->nsp->io->relay_ud, s->nsp->name, s->id, LIST_EVENT, "", 0, NULL, 0);
    /* this worker's figures now rather than in up to two seconds (no events: they go to
     * every admin socket with the next server_stats) */
    json_t *stats = server_stats(a, NULL);
    if (stats)
        herald_emit(s, "server_stats", json_pack("[o]", stats));
}

/* ---- what the Socket.IO layer tells ------------------------------------------------------- */

void hr_sio_admin_client_open(struct hr_sio_client *c, struct hr_eio_session *es,
                              const struct hr_http_request *req)
{
    struct hr_sio_admin *a = c->io->admin;
    a->counts[HR_ADMIN_RAW_CONNECTION]++;
    a->clients++;
    struct hr_sio_admin_client *ac = calloc(1, sizeof(*ac));
    if (!ac)
        return;
    ac->issued = hr_wall_ms();
    if (req) {
        const char *t = hr_http_path(req);
        snprintf(ac->url, sizeof ac->url, "%s", t);
        /* header names in lower case, as Node gives them */
        json_t *h = json_object();
        for (unsigned i = 0; h && i < req->nheaders; i++) {
            const struct hr_http_header *f = &req->headers[i];
            char name[64];
            if (f->name_len >= sizeof name)
                continue;
            for (uint32_t j = 0; j < f->name_len; j++) {
                char ch = req->head[f->name_off + j];
                name[j] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
            }
            name[f->name_len] = '\0';
            if (strcmp(name, "cookie") == 0 || strcmp(name, "authorization") == 0)
                continue;
            json_object_set_new(h, name, json_stringn(req->head + f->value_off, f->value_len));
        }
        ac->headers = h ? json_dumps(h, JSON_COMPACT) : NULL;
        json_decref(h);
    }
    ac->polling = es->transport == HR_EIO_POLLING;
    a->polling += ac->polling;
    c->admin = ac;
}

void hr_sio_admin_client_close(struct hr_sio_client *c, const char *reason)
{
    struct hr_sio_admin *a = c->io->admin;
    a->clients--;
    for (int i = 0; i < HR_ADMIN_REASONS; i++) {
        if (!a->gone[i].reason[0] || strcmp(a->gone[i].reason, reason) == 0) {
            snprintf(a->gone[i].reason, sizeof a->gone[i].reason, "%s", reason);
            a->gone[i].count++;
            break;
        }
    }
    if (c->admin && c->admin->polling)
        a->polling--;
    if (c->admin)
        free(c->admin->headers);
    free(c->admin);
    c->admin = NULL;
}

void hr_sio_admin_upgraded(struct hr_sio_client *c)
{
    struct hr_sio_admin *a = c->io->admin;
    if (c->admin && c->admin->polling) {
        c->admin->polling = 0;
        a->polling--;
    }
    if (!watched(a))
        return;
    for (herald_socket *s = c->sockets; s; s = s->next_in_client)
        if (s->connected)
            tell(a, "socket_updated",
                 json_pack("[{s:s, s:s, s:s}]", "id", s->id, "nsp", s->nsp->name, "transport",
                           "websocket"));
}

void hr_sio_admin_connecting(struct hr_sio_client *c)
{
    struct hr_sio_admin_client *ac = c->admin;
    struct hr_conn *conn = c->eio ? hr_eio_message_conn(c->eio) : NULL;
    if (!ac || ac->address[0] || !conn)
        return;
    ac->secure = conn->srv->tls != NULL;
    hr_conn_peer_addr(conn, ac->address, sizeof ac->address);
}

void hr_sio_admin_connected(herald_socket *s)
{
    struct hr_sio_admin *a = s->nsp->io->admin;
    if (s->nsp == a->nsp)
        atomic_fetch_add(a->watchers, 1);
    if (!watched(a) || !s->connected)
        return;
    json_t *js = serialize(s);
    if (js)
        tell(a, "socket_connected", json_pack("[o, o*]", js, now_date()));
}

void hr_sio_admin_disconnected(herald_socket *s, const char *reason)
{
    struct hr_sio_admin *a = s->nsp->io->admin;
    if (s->nsp == a->nsp)
        atomic_fetch_sub(a->watchers, 1);
    if (watched(a))
        tell(a, "socket_disconnected",
             json_pack("[s, s, s, o*]", s->nsp->name, s->id, reason, now_date()));
}

void hr_sio_admin_room(herald_socket *s, const char *room, int joined)
{
    struct hr_sio_admin *a = s->nsp->io->admin;
    if (watched(a))
        tell(a, joined ? "room_joined" : "room_left",
             json_pack("[s, s, s, o*]", s->nsp->name, room, s->id, now_date()));
}

void hr_sio_admin_event(herald_socket *s, const char *event, const herald_args *args)
{
    struct hr_sio_admin *a = s->nsp->io->admin;
    if (s->nsp == a->nsp || !watched(a))
        return;
    json_t *list = json_pack("[s]", event);
    json_t *parsed = herald_args_json(args);
    if (list && parsed)
        json_array_extend(list, parsed);
    tell(a, "event_received", json_pack("[s, s, o*, o*]", s->nsp->name, s->id, list, now_date()));
}

void hr_sio_admin_sent(herald_socket *s, const char *event, const char *raw, size_t len)
{
    struct hr_sio_admin *a = s->nsp->io->admin;
    if (s->nsp == a->nsp || !watched(a))
        return;
    json_t *list = json_pack("[s]", event);
    herald_args args = {.raw = raw, .raw_len = len}; /* parsed as an event's arguments are */
    json_t *parsed = herald_args_json(&args);
    if (list && parsed)
        json_array_extend(list, parsed);
    json_decref(args.parsed);
    tell(a, "event_sent", json_pack("[s, s, o*, o*]", s->nsp->name, s->id, list, now_date()));
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int hr_sio_admin_init(herald_io *io, const char *user, const char *password)
{
    struct hr_sio_admin *a = calloc(1, sizeof(*a));
    if (!a || !(a->user = strdup(user)) || !(a->password = strdup(password)) ||
        !(a->nsp = herald_of(io, "/admin"))) {
        if (a) {
            free(a->user);
            free(a->password);
        }
        free(a);
        return HR_ENOMEM;
    }
    a->io = io;
    a->user_len = strlen(user);
    a->password_len = strlen(password);
    atomic_init(&a->own_watchers, 0);
    a->watchers = &a->own_watchers;
    if (uv_mutex_init(&a->own_sessions.lock) < 0) {
        free(a->user);
        free(a->password);
        free(a);
        return HR_ENOMEM;
    }
    a->sessions = &a->own_sessions;
    a->started = uv_now(io->loop);
    if (gethostname(a->hostname, sizeof a->hostname - 1) < 0)
        snprintf(a->hostname, sizeof a->hostname, "herald");
    /* as Node's admin-ui names a cluster's workers: host#pid, here with the worker too */
    if (io->workers > 1)
        snprintf(a->server_id, sizeof a->server_id, "%s#%d/%u", a->hostname, (int)getpid(),
                 io->worker);
    else
        snprintf(a->server_id, sizeof a->server_id, "%s", a->hostname);
    a->nsp->no_recovery = 1;
    herald_use(a->nsp, login_cb, NULL);
    herald_on_connection(a->nsp, admin_connection_cb, NULL);
    uv_timer_init(io->loop, &a->timer);
    a->timer.data = a;
    uv_timer_init(io->loop, &a->flush);
    a->flush.data = a;
    uv_timer_start(&a->timer, timer_cb, 1000, 1000);
    io->admin = a;
    return 0;
}

void hr_sio_admin_share(herald_io *io, herald_io *first)
{
    if (io->admin && first->admin) {
        io->admin->watchers = first->admin->watchers;
        io->admin->sessions = first->admin->sessions;
    }
}

void hr_sio_admin_close(herald_io *io)
{
    if (!io->admin)
        return;
    uv_timer_stop(&io->admin->timer);
    uv_close((uv_handle_t *)&io->admin->timer, NULL);
    uv_timer_stop(&io->admin->flush);
    uv_close((uv_handle_t *)&io->admin->flush, NULL);
}

void hr_sio_admin_free(herald_io *io)
{
    struct hr_sio_admin *a = io->admin;
    if (!a)
        return;
    io->admin = NULL;
    json_decref(a->events);
    while (a->head) {
        struct hr_sio_admin_event *e = a->head;
        a->head = e->next;
        json_decref(e->args);
        free(e);
    }
    uv_mutex_destroy(&a->own_sessions.lock);
    free(a->user);
    free(a->password);
    free(a);
}
