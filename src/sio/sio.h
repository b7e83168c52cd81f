/* sio.h - Socket.IO v5 server internals behind include/herald.h: clients (one per Engine.IO
 * session), namespaces, sockets, rooms, acks, binary attachments. */
#ifndef HR_SIO_SIO_H
#define HR_SIO_SIO_H

#include <herald.h>
#include <uthash.h>

#include "auth/auth.h"
#include "chan/stream.h"
#include "chan/wire.h"
#include "eio/eio.h"
#include "hub/hub.h"
#include "packet.h"

struct hr_sio_client;

/* One packet's attachments may hold at most this many times --max-payload. */
#define HR_SIO_ATTACHMENTS_FACTOR 4

/* Memory kept per namespace for connection state recovery, at most. */
#define HR_SIO_KEPT_MAX (16u << 20)

/* An event handler of a socket (herald_on), in the order they were set: the first one for
 * an event is called. One block with its name. */
struct hr_sio_handler {
    struct hr_sio_handler *next;
    herald_event_cb cb;
    void *ud;
    char event[];
};

struct hr_sio_pending_ack {
    uint64_t id;
    herald_reply_cb cb;
    void *ud;
    uint64_t deadline; /* loop ms; 0 = none */
};

/* A socket's server-to-client acks, made with its first herald_emit_ack. */
struct hr_sio_acks {
    struct hr_sio_pending_ack *a;
    uint32_t n, cap;
    uint64_t next_id;
};

/* A socket in a room: on the room's list of members and on the socket's list of rooms (in
 * the order it joined them), so joining and leaving take no lookup by name in a big room. A
 * socket's own room is not one (herald_socket.own_room). */
struct hr_sio_member {
    herald_socket *s;
    struct hr_sio_room *room;
    struct hr_sio_member *prev, *next; /* the room's members */
    struct hr_sio_member *next_room;   /* the socket's rooms */
    uint8_t chan;                      /* st is there */
    /* in a channel room only: the socket's reader of the channel (the hub's messages, its
     * slow-consumer policy), allocated with the member */
    struct hr_chan_stream st[];
};

struct hr_sio_room {
    /* rooms of "/" named like channels are channels: this marks where each of the channel's
     * messages fell among the packets kept for recovery; each member reads the channel
     * through its own stream */
    struct hr_sub sub;
    herald_nsp *nsp;
    struct hr_sio_member *members;
    uint32_t count;
    /* sessions saved for recovery that were in it (a channel room): it lives on while they
     * may come back, so that it goes on marking where the channel's messages fell */
    uint32_t held;
    UT_hash_handle hh;
    char name[]; /* the key (nsp->rooms) */
};

/* Connection state recovery (Socket.IO 4.6+): what a socket that dropped may get back. */
struct hr_sio_saved {
    char pid[24];
    char sid[24];
    herald_nsp *nsp;
    char **rooms;
    uint64_t *chan_last; /* per room: the channel's last id then (0: not one) */
    uint8_t *held;       /* per room: a channel room this session holds (hr_sio_room.held) */
    uint32_t nrooms;
    uint64_t at;       /* loop ms when it disconnected */
    UT_hash_handle hh; /* io->saved by pid, oldest first */
    uint8_t moved;     /* taken from another worker's io: in no table */
};

/* A broadcast kept for recovery: replayed to a returning socket that missed it. A channel's
 * message is only marked (chan_id, room = the channel, no payload): where it fell among the
 * other packets is what recovery needs, and the channel's history has the rest. */
struct hr_sio_kept {
    char offset[40];  /* a number, or a channel cursor "<epoch>:<id>" */
    uint64_t chan_id; /* a channel message's id (a marker), else 0 */
    uint64_t at;
    char *event;
    char *raw; /* arguments, the offset already appended; NULL once frame is there */
    size_t raw_len;
    /* the packet as it was sent, shared: every replay sends that very frame */
    struct hr_buf *frame;
    char *room;              /* NULL: everyone */
    char except[24];         /* a socket that did not get it, or "" */
    struct herald_bin *bins; /* binary attachments, copied */
    size_t nbins;
    /* their Engine.IO messages, made on the first replay and shared by the next ones */
    struct hr_eio_msg *bin_msgs;
    size_t bytes;      /* memory it holds, for the budget */
    uint8_t raw_frame; /* moved from another worker: raw is the frame's bytes (no frame yet) */
    struct hr_sio_kept *next;
};

/* A CONNECT with a pid saved on no worker's table here: held while the other workers are
 * asked for it (workers), then handled again with what came (sv and the packets after head). */
struct hr_sio_moving {
    struct hr_sio_moving *next; /* io->moving */
    struct hr_sio_client *c;    /* NULL once the client is gone */
    uint64_t token;
    uint32_t waiting; /* answers still to come */
    char *nsp, *data;
    size_t nsp_len, data_len;
    uint8_t has_data;
    struct hr_sio_saved *sv;
    struct hr_sio_kept head; /* offset: the client's; next: the packets it missed */
};

struct herald_socket {
    char id[24];
    char pid[24];      /* private id for recovery ("" when off) */
    UT_hash_handle hh; /* in nsp->sockets */
    herald_nsp *nsp;
    struct hr_sio_client *client;
    herald_socket *next_in_client;
    json_t *auth;             /* an empty one is the io's, shared */
    struct hr_principal *who; /* its verified token (auth.token), or NULL */
    void *data;
    struct hr_sio_handler *handlers;
    herald_any_cb any_cb;
    void *any_ud;
    herald_disconnect_cb disconnect_cb;
    void *disconnect_ud;
    struct hr_sio_member *rooms; /* the rooms it is in but its own, in the order joined */
    struct hr_sio_acks *acks;    /* NULL until it asks the client for an ack */
    uint8_t connected;
    uint8_t recovered;
    /* in the room named by its id: found through nsp->sockets, so that a room per socket
     * costs nothing (Socket.IO puts every socket in it) */
    uint8_t own_room;
};

struct herald_nsp {
    char *name;
    UT_hash_handle hh;
    herald_io *io;
    herald_connection_cb on_connection;
    void *conn_ud;
    struct {
        herald_middleware_cb cb;
        void *ud;
    } mw[8];
    uint32_t nmw;
    herald_socket *sockets;    /* by id */
    struct hr_sio_room *rooms; /* by name */
    struct hr_sio_kept *kept_head, *kept_tail;
    size_t kept_bytes;
    /* no connection state recovery here (the admin UI's namespace: its events are a live
     * view, not worth keeping) */
    uint8_t no_recovery;
};

/* A BINARY_EVENT / BINARY_ACK waiting for its attachments. */
struct hr_sio_partial {
    char *text; /* the packet, copied */
    size_t text_len;
    uint32_t expected;
    uint32_t got;
    size_t bytes; /* attachment bytes so far (bounded) */
    struct hr_buf **bins;
};

struct hr_sio_client {
    struct hr_eio_session *eio;
    struct hr_bucket rate; /* its EVENT / BINARY_EVENT packets: --max-msg-rate */
    herald_io *io;
    herald_socket *sockets;         /* linked by next_in_client */
    struct hr_sio_partial *partial; /* a binary packet waiting for its attachments */
    /* until it joins a namespace: in io's list, oldest first (connect timeout) */
    struct hr_sio_client *wait_prev, *wait_next;
    uint64_t opened;
    uint8_t waiting;
    uint8_t synced; /* its CONNECT waited for the commits on their way here (hr_hub_sync) */
    /* a CONNECT held while history older than the cache is read for its replay */
    struct hr_sio_prefetch *prefetch;
    /* a CONNECT whose saved session is asked of the other workers, or what they gave */
    struct hr_sio_moving *moving;
    struct hr_sio_admin_client *admin; /* what the admin UI lists (admin.h); NULL when off */
};

/* The Socket.IO server (what include/herald.h calls io). The composition root (src/server/)
 * makes it with hr_sio_init and gives it the channels; it owns its namespaces and timers. */
struct herald_io {
    struct herald_options opts;
    uv_loop_t *loop;
    struct hr_hub *hub;       /* channels: rooms of "/" named like channels */
    struct hr_store *store;   /* their history, for replays older than the cache */
    uint64_t max_queued;      /* --max-queued: a socket's output cap */
    uint32_t max_channels;    /* channel rooms a socket may be in (--max-channels); 0: any */
    struct hr_quota *publish; /* --publish-rate (herald_publish_quota), shared; NULL: none */
    herald_nsp *nsps;
    int (*allow)(const char *name, void *ud);
    void (*setup)(herald_nsp *nsp, void *ud);
    void *allow_ud;
    uv_timer_t ack_timer;       /* expires server-to-client acks with a timeout */
    uv_timer_t connect_timer;   /* closes clients that join no namespace in time */
    uv_timer_t expiry_timer;    /* disconnects sockets whose token expired (access.c) */
    const struct hr_auth *auth; /* tokens and channel rules (NULL: everything open) */
    struct hr_sio_client *wait_head, *wait_tail;
    struct hr_sio_saved *saved; /* disconnected sockets that may come back, by pid */
    uint64_t next_offset;
    json_t *empty_auth; /* every socket that sent no auth shares it */
    /* the socket being connected and its auth.offset as a channel cursor: what its channel
     * rooms joined while connecting replay from */
    herald_socket *resume_for;
    struct hr_cursor resume;
    /* workers (src/server/workers.c): this one's index and their count, and the hook that
     * takes a broadcast to the other workers' sockets (NULL: one worker) */
    unsigned worker, workers;
    void (*relay)(void *ud, const char *nsp, const char *room, const char *event, const char *raw,
                  size_t len, const struct herald_bin *bins, size_t nbins);
    void *relay_ud;
    /* asks the other workers for the session pid saved from nsp, kept since offset: each
     * answers with hr_sio_moved(token, ...); returns how many were asked */
    unsigned (*ask)(void *ud, uint64_t token, const char *nsp, const char *pid, const char *offset);
    struct hr_sio_moving *moving; /* waiting for answers */
    uint64_t next_token;
    struct hr_sio_admin *admin; /* the admin UI's namespace (admin.h), or NULL when off */
};

/* Give dst the namespaces and handlers src was given (another worker's io). */
int hr_sio_copy_handlers(herald_io *dst, const herald_io *src);
/* A broadcast relayed from another worker: to this worker's sockets of nsp, if it has any. */
void hr_sio_relayed(herald_io *io, const char *nsp, const char *room, const char *event,
                    const char *raw, size_t len, const struct herald_bin *bins, size_t nbins);

/* Engine.IO's handler for Socket.IO; its ud is the herald_io. */
extern const struct hr_eio_handler hr_sio_eio_handler;

/* Set up io on loop with the options (copied; o->config is not used), the hub and store of
 * the channels, and the connections' output cap. */
void hr_sio_init(herald_io *io, const struct herald_options *o, uv_loop_t *loop, struct hr_hub *hub,
                 struct hr_store *store, uint64_t max_queued);
/* Check tokens and channel rules with auth (the composition root's; NULL: none). */
void hr_sio_set_auth(herald_io *io, const struct hr_auth *auth);
/* The server stops: close io's timers (the loop then finishes closing them). */
void hr_sio_close(herald_io *io);
/* Expire server-to-client acks whose timeout passed (the io's ack timer). */
void hr_sio_expire_acks(herald_io *io);
/* After the loop ran: free the namespaces, their sockets and what recovery kept. */
void hr_sio_free_namespaces(herald_io *io);

#endif
