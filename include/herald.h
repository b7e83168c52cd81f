/* herald.h - herald's public C API: a Socket.IO v4 server (Engine.IO v4 transports:
 * long-polling, WebSocket and the upgrade) with the shape of Socket.IO's server API.
 *
 *     io.on("connection", socket => ...)      herald_on_connection(herald_of(io, "/"), cb, ud)
 *     socket.on("event", (...args, ack) => )  herald_on(socket, "event", cb, ud)
 *     socket.emit("event", ...args)           herald_emit(socket, "event", json_pack("[s]", "hi"))
 *     socket.send(x)                          herald_send(socket, x)          (event "message")
 *     io.emit / io.to(room).except(s).emit    herald_broadcast(nsp, room, except, "event", args)
 *     socket.join(room) / socket.leave(room)  herald_join(socket, room) / herald_leave(...)
 *     socket.emit("e", x, reply => ...)       herald_emit_ack(socket, "e", args, cb, ud)
 *     io.use((socket, next) => ...)           herald_use(nsp, middleware, ud)
 *
 * Values are jansson json_t (https://jansson.readthedocs.io). Arguments arrive both as raw JSON
 * text (herald_args_raw: relay them byte for byte) and parsed (herald_args_json). Functions that
 * take a json_t *args array take a reference to it ("steal"), so json_pack(...) can be passed
 * directly. Everything runs on one thread, inside herald_run().
 *
 * Errors: a function below that returns int and does not say otherwise returns 0, or a negative
 * errno value (<errno.h>) when it fails: -EINVAL (an argument no client could decode, or a
 * reserved event name), -ENOMEM, -EPIPE (the socket is disconnected), -EBUSY (over the memory
 * budget, --max-memory), -ENOENT (herald_leave: not in that room), -EDQUOT (a per-client
 * quota: herald_join over --max-channels). herald_options_parse and
 * herald_run return what they say. */
#ifndef HERALD_H
#define HERALD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERALD_VERSION_MAJOR 0
#define HERALD_VERSION_MINOR 2
#define HERALD_VERSION_PATCH 0

typedef struct herald_io herald_io;         /* the server */
typedef struct herald_nsp herald_nsp;       /* a namespace, "/" by default */
typedef struct herald_socket herald_socket; /* one client in one namespace */
typedef struct herald_args herald_args;     /* the arguments of a received event or ack */
typedef struct herald_ack herald_ack;       /* a reply the client is waiting for */
struct herald_config;                       /* every other flag (limits, channels), opaque */

struct herald_options {
    const char *host;       /* "0.0.0.0" */
    int port;               /* 3000; 0 picks a free port */
    const char *public_dir; /* static files served at /, NULL for none ("public") */
    const char *path;       /* "/socket.io/" */
    /* the web pages (origins) that may open WebSockets, make Engine.IO requests and read HTTP
     * answers (CORS): "*", "none" (herald's own origin only) or a comma-separated list such as
     * "https://app.example.com,http://localhost:8080"; requests without an Origin header and
     * from herald's own origin always pass. NULL: "*" until access control is configured
     * (a token key, a publish key or a channel rule), then "none". */
    const char *allowed_origins;
    uint32_t ping_interval_ms;    /* 25000 */
    uint32_t ping_timeout_ms;     /* 20000 */
    uint32_t max_payload;         /* 1000000 bytes: one polling POST or WebSocket message */
    uint32_t recovery_window_ms;  /* connection state recovery (0: off); 120000 */
    uint32_t connect_timeout_ms;  /* a client that joins no namespace by then is closed; 45000 */
    const char *store;            /* channel history: "sqlite" (default, durable) or "memory" */
    const char *data_dir;         /* where the sqlite store keeps herald.db ("data", created) */
    int quiet;                    /* log errors only */
    uint32_t workers;             /* event loops, each on its own thread (SO_REUSEPORT); 0: one
                                   * per core; default 1 here, the herald binary's is 0 (see
                                   * herald_worker) */
    struct herald_config *config; /* the flags not above, from herald_options_parse; NULL: the
                                   * defaults. herald_new takes it over (herald_run frees it). */
};

/* Defaults as above (herald --help lists them). A program installed as PREFIX/bin/NAME beside
 * PREFIX/share/herald/public (cmake --install, the .deb) gets that as public_dir and an
 * absolute data_dir instead (README, "Install"). */
void herald_options_init(struct herald_options *o);
/* herald's options (herald --help) into o: the command-line flags, over the HERALD_*
 * environment variables, over a --config file; the fields above an option names, and the
 * rest (limits, channel settings) into o->config. Fields no option names keep their values.
 * Returns 0 to go on, 1 when --help, --version or --print-config was printed, -1 after
 * printing a one-line error. */
int herald_options_parse(struct herald_options *o, int argc, char **argv);

/* A server with the options o (o->config is the server's from now on, even on failure).
 * NULL when it could not be made (a line on stderr says why). */
herald_io *herald_new(const struct herald_options *o);
/* Listen and serve until SIGINT or SIGTERM, then close every client and free io.
 * Returns the process exit status (0, 1 when it could not listen, 2 when the --public
 * directory exists but cannot be served). */
int herald_run(herald_io *io);
/* Stop serving (as a signal does): herald_run returns once every client is gone. */
void herald_stop(herald_io *io);

/* With workers > 1 the server is that many servers in one process, one per thread, sharing the
 * port, the channels (ids, history, delivery to every worker's subscribers) and Socket.IO
 * broadcasts; a client's Engine.IO requests always reach the worker that holds its session.
 * Handlers given to the first (herald_of, herald_on_connection, herald_use,
 * herald_allow_namespaces, before herald_run) are given to every worker and run on the thread
 * of the socket's worker: state a handler changes is either per worker (index it with
 * herald_worker) or made thread-safe. herald_room_size and a broadcast's count are this
 * worker's. */
unsigned herald_workers(herald_io *io);
unsigned herald_worker(herald_io *io); /* 0 .. herald_workers() - 1 */

/* The namespace called name ("/", "/admin"), created on first use. */
herald_nsp *herald_of(herald_io *io, const char *name);
herald_io *herald_nsp_io(herald_nsp *nsp);
const char *herald_nsp_name(const herald_nsp *nsp);

/* Connections to a namespace nobody created are refused ("Invalid namespace"), unless a
 * parent allows them: return 1 from allow to create the namespace (Socket.IO's
 * io.of(regex or function)); setup then gives it handlers. */
void herald_allow_namespaces(herald_io *io, int (*allow)(const char *name, void *ud),
                             void (*setup)(herald_nsp *nsp, void *ud), void *ud);

typedef void (*herald_connection_cb)(herald_socket *s, void *ud);
void herald_on_connection(herald_nsp *nsp, herald_connection_cb cb, void *ud);

/* Middleware: runs before a client joins the namespace, with its auth payload (a JSON object,
 * or NULL). Return NULL to accept, or a message to refuse: the client gets connect_error with
 * err.message == that text (copied). */
typedef const char *(*herald_middleware_cb)(herald_socket *s, const json_t *auth, void *ud);
void herald_use(herald_nsp *nsp, herald_middleware_cb cb, void *ud);

/* ---- a socket ----------------------------------------------------------------------------- */

const char *herald_id(const herald_socket *s);
herald_nsp *herald_socket_nsp(herald_socket *s);
/* The auth payload the client connected with (a JSON object, never NULL). */
const json_t *herald_auth(const herald_socket *s);
void herald_set_data(herald_socket *s, void *data);
void *herald_data(const herald_socket *s);
/* Whether the socket got back its id, rooms and missed packets (connection state recovery). */
int herald_recovered(const herald_socket *s);
/* Access control (docs/security.md). The user the socket's client proved to be: the sub of
 * the token it connected with (auth.token, verified), or NULL when it gave none. A token that
 * is not valid refuses the connection (connect_error with the reason), and a socket whose
 * token expires is sent the event "herald:error" {"error":"token expired"} and disconnected, unless
 * the client emitted "herald:refresh" with a new token for the same user before then. */
const char *herald_user(const herald_socket *s);
enum { HERALD_READ, HERALD_PUBLISH };
/* May the socket read (be in the room of) or publish on channel, by its token and the channel
 * rules? NULL when it may, else the refusal, a sentence for the client. It is the decision
 * every transport makes; herald_join and herald_publish do not ask it (the server's code
 * decides what its sockets join and publish), an app asks it for what a client requests. */
const char *herald_may(const herald_socket *s, const char *channel, int what);

/* Event handlers. ack is NULL when the client asked for no reply. args and ack are valid
 * during the call; to reply later, keep ack with herald_ack_keep. */
typedef void (*herald_event_cb)(herald_socket *s, const herald_args *args, herald_ack *ack,
                                void *ud);
void herald_on(herald_socket *s, const char *event, herald_event_cb cb, void *ud);
/* Any event without its own handler; event names the event. */
typedef void (*herald_any_cb)(herald_socket *s, const char *event, const herald_args *args,
                              herald_ack *ack, void *ud);
void herald_on_any(herald_socket *s, herald_any_cb cb, void *ud);
/* reason as Socket.IO names it: "client namespace disconnect", "server namespace disconnect",
 * "transport close", "transport error", "ping timeout", "parse error", "server shutting down". */
typedef void (*herald_disconnect_cb)(herald_socket *s, const char *reason, void *ud);
void herald_on_disconnect(herald_socket *s, herald_disconnect_cb cb, void *ud);

/* Arguments: raw JSON text of the arguments without the brackets ("1,\"2\",{}"), the parsed
 * array (owned by herald, valid during the call), and binary attachments by index. */
const char *herald_args_raw(const herald_args *a, size_t *len);
json_t *herald_args_json(const herald_args *a);     /* borrowed: json_incref to keep it */
json_t *herald_arg(const herald_args *a, size_t i); /* borrowed; NULL past the end */
size_t herald_args_count(const herald_args *a);
size_t herald_args_binaries(const herald_args *a);
const uint8_t *herald_args_binary(const herald_args *a, size_t i, size_t *len);

/* ---- sending ------------------------------------------------------------------------------ */

/* Binary data inside args: an object {"_placeholder":true,"num":N} stands for bins[N]. At
 * most 10 bins (what socket.io-parser's Decoder takes), and every placeholder must name one
 * of them; otherwise nothing is sent (-EINVAL, or 0 sockets reached), since no official
 * client could decode the packet. Reserved event names (connect, connect_error, disconnect,
 * disconnecting, newListener, removeListener) are refused the same way. */
struct herald_bin {
    const void *data;
    size_t len;
};

/* socket.emit(event, ...args): args is a JSON array (stolen; NULL for none). */
int herald_emit(herald_socket *s, const char *event, json_t *args);
/* The same with raw JSON argument text (no brackets) and binary attachments. */
int herald_emit_raw(herald_socket *s, const char *event, const char *raw, size_t len,
                    const struct herald_bin *bins, size_t nbins);
/* socket.send(value): the event "message" with one argument (stolen). */
int herald_send(herald_socket *s, json_t *value);

/* Broadcast in a namespace: to room (NULL: everyone), except one socket (NULL: none) and
 * except the members of except_room (NULL: none). Encoded once per wire format. Returns the
 * number of sockets reached. */
size_t herald_broadcast(herald_nsp *nsp, const char *room, herald_socket *except, const char *event,
                        json_t *args);
size_t herald_broadcast_raw(herald_nsp *nsp, const char *room, herald_socket *except,
                            const char *event, const char *raw, size_t len,
                            const struct herald_bin *bins, size_t nbins);

/* socket.emit with an acknowledgement: cb gets the client's reply, or args == NULL when the
 * socket disconnected or timeout_ms passed (0: no timeout). */
typedef void (*herald_reply_cb)(herald_socket *s, const herald_args *args, void *ud);
int herald_emit_ack(herald_socket *s, const char *event, json_t *args, uint32_t timeout_ms,
                    herald_reply_cb cb, void *ud);
int herald_emit_ack_raw(herald_socket *s, const char *event, const char *raw, size_t len,
                        const struct herald_bin *bins, size_t nbins, uint32_t timeout_ms,
                        herald_reply_cb cb, void *ud);

/* Reply to an event's ack (args stolen). Each ack is answered at most once. */
int herald_ack_send(herald_ack *ack, json_t *args);
int herald_ack_send_raw(herald_ack *ack, const char *raw, size_t len, const struct herald_bin *bins,
                        size_t nbins);
/* Keep an ack past its callback; it must then be answered (or dropped) exactly once. */
herald_ack *herald_ack_keep(herald_ack *ack);
void herald_ack_drop(herald_ack *ack);

/* ---- channels ----------------------------------------------------------------------------- */

/* Channels and the rooms of the main namespace are one space: publishing to channel "chat"
 * stores the value in the channel's history, gives it an id, and delivers it to the SSE,
 * polling and WebSocket subscribers of /…/chat and, as the event "message", to the sockets in
 * room "chat". cb (may be NULL) gets status 0 and the id once the message is committed, or a
 * negative errno value and id 0 when it could not be stored. Returns 0, or a
 * negative errno value (nothing stored, cb not called): -EINVAL invalid channel name or JSON,
 * -EBUSY over the memory budget (--max-memory; try again later), -ENOMEM. */
typedef void (*herald_publish_cb)(int status, uint64_t id, void *ud);
int herald_publish(herald_io *io, const char *channel, json_t *value, herald_publish_cb cb,
                   void *ud);
/* The same with the value as JSON text (relayed as is; it must be one valid JSON value). */
int herald_publish_raw(herald_io *io, const char *channel, const char *json, size_t len,
                       herald_publish_cb cb, void *ud);
/* The same with an event's only argument, as received (relaying a client's message to a
 * channel, as the chat room does): its text was checked when the packet was decoded, so it is
 * neither parsed nor checked again. -EINVAL when a does not hold exactly one argument and no
 * binary attachment. */
int herald_publish_arg(herald_io *io, const char *channel, const herald_args *a,
                       herald_publish_cb cb, void *ud);
herald_io *herald_socket_io(herald_socket *s);
/* Before publishing on a client's behalf (from its event's handler): one publish of its
 * publisher (today its address) against --publish-rate, shared by every transport and worker.
 * 0: go on. -EAGAIN: over the rate; publish nothing, the client was told: ack (may be NULL)
 * answered with {"error":"publish rate exceeded","limit":N,"retry_after":S}, or without one
 * the event "herald:error" with that object. */
int herald_publish_quota(herald_socket *s, herald_ack *ack);

/* ---- rooms -------------------------------------------------------------------------------- */

/* herald_join: 0 (also when already in it), -ENOMEM, or -EDQUOT when room is a channel (a
 * room of "/" named like a channel) and s is already in --max-channels channel rooms: it is
 * not joined (logged; the app tells the client if it should know). Other rooms are not
 * counted. */
int herald_join(herald_socket *s, const char *room);
int herald_leave(herald_socket *s, const char *room);
int herald_in(const herald_socket *s, const char *room);
/* The socket's rooms (its own id first); returns how many were written to out. */
size_t herald_rooms(const herald_socket *s, const char **out, size_t max);
/* Sockets in a room of a namespace. */
size_t herald_room_size(herald_nsp *nsp, const char *room);

/* socket.disconnect(close): leave the namespace; close != 0 also closes the transport. */
void herald_disconnect(herald_socket *s, int close);

#ifdef __cplusplus
}
#endif

#endif
