/* internal.h - what the Socket.IO server's files (emit, rooms, connect, client) share; not
 * part of the public API. */
#ifndef HR_SIO_INTERNAL_H
#define HR_SIO_INTERNAL_H

#include "admin.h"
#include "sio.h"

struct herald_args {
    const char *raw;
    size_t raw_len;
    json_t *parsed; /* lazily */
    struct hr_buf **bins;
    size_t nbins;
};

struct herald_ack {
    herald_socket *s; /* NULL once the socket is gone */
    uint64_t id;
    uint8_t kept;
    uint8_t done;
};

/* emit.c */
/* Plain control packets to one client: CONNECT answers, CONNECT_ERROR. */
void hr_sio_send_packet(struct hr_sio_client *c, int type, const char *nsp, const char *data);
/* json array -> raw argument text without brackets (malloc'd, *len its length). */
char *hr_sio_args_text(json_t *args, size_t *len);
/* An event to one socket, as it is (not kept for recovery). */
int hr_sio_emit_raw(herald_socket *s, const char *event, const char *raw, size_t len,
                    const struct herald_bin *bins, size_t nbins);
/* A kept packet again, to a socket that recovers: its frame as it was sent (shared), and its
 * attachments' messages, made once for every replay. */
int hr_sio_emit_kept(herald_socket *s, struct hr_sio_kept *k);
/* An event to one socket queued whatever its output holds (a notice; the caller bounds it),
 * never closing the session inside the call (a stream's notice, from inside a fan-out). */
int hr_sio_emit_queued(herald_socket *s, const char *event, const char *raw, size_t len);
/* A broadcast (kept for recovery when it is on), encoded once for every target. A channel's
 * messages do not come this way: each member of a channel room reads the channel through
 * its stream (rooms.c). */
size_t hr_sio_broadcast(herald_nsp *nsp, const char *room, herald_socket *except, const char *event,
                        const char *raw, size_t len, const struct herald_bin *bins, size_t nbins);

/* rooms.c */
/* The socket whose own room (named by its id) room is, when it is in it; NULL otherwise. */
herald_socket *hr_sio_room_owner(herald_nsp *nsp, const char *room);
/* Send s the messages of ch after cursor *cur up to id upto (a gap notice first when some of
 * them are gone, unless told one was given); cur then names the last one sent. */
/* A saved session lets go of nsp's room name (it held it: hr_sio_room.held); the room goes
 * once nobody is in it or holds it. */
void hr_sio_room_release(herald_nsp *nsp, const char *name);
void hr_sio_replay_channel(herald_socket *s, struct hr_channel *ch, struct hr_cursor *cur,
                           uint64_t upto, int gap_told);
/* Whether the CONNECT p to nsp replays history that is not cached, or (on a replica) resumes
 * from ids that may be on their way here: then it is held (1) while that is read or they are
 * applied, and handled again (hr_sio_on_connect) afterwards. */
int hr_sio_prefetch_start(struct hr_sio_client *c, herald_nsp *nsp, const struct hr_sio_packet *p);
/* The client goes: drop its prefetch. */
void hr_sio_prefetch_free(struct hr_sio_client *c);
/* Engine.IO's on_drain: the client's output drained, its channel streams go on (a lagging
 * reader under skip or coalesce catches up). */
void hr_sio_client_drain_cb(struct hr_eio_session *es, void *ud);

/* connect.c */
void hr_sio_on_connect(struct hr_sio_client *c, const struct hr_sio_packet *p);
/* The connect timeout's list of clients in no namespace yet: a new client enters it, one
 * that joins a namespace (or goes) leaves it. */
void hr_sio_wait_add(struct hr_sio_client *c);
void hr_sio_wait_remove(struct hr_sio_client *c);

/* access.c */
/* The token s's client connected with (auth.token) into s->who: 0, or HR_EUNAUTH with *why
 * (the CONNECT is refused with it). */
int hr_sio_auth_connect(herald_socket *s, const char **why);
void hr_sio_auth_free(herald_socket *s);
/* The client's "herald:refresh" event: a new token for the same user (acked {ok, exp} or
 * {error}). */
void hr_sio_auth_refresh(herald_socket *s, const herald_args *args, herald_ack *ack);

/* client.c */
/* Remove the socket from its namespace and client and free it, telling the application. */
void hr_sio_socket_gone(herald_socket *s, const char *reason);
/* The client's socket in namespace nsp (len bytes), or NULL. */
herald_socket *hr_sio_client_socket(struct hr_sio_client *c, const char *nsp, size_t len);

#endif
