/* admin.h - the server side of the Socket.IO Admin UI (@socket.io/admin-ui 0.5): the /admin
 * namespace, its login, and what it tells the UI about every namespace, socket and room. */
#ifndef HR_SIO_ADMIN_H
#define HR_SIO_ADMIN_H

#include <stdatomic.h>

#include "sio.h"

/* What a client was when it opened (only kept while the admin UI is on). */
struct hr_sio_admin_client {
    uint64_t issued;  /* wall ms */
    char *headers;    /* the handshake's headers, a JSON object's text (Cookie and
                       * Authorization left out: they carry credentials) */
    char address[48]; /* the peer's address, from its first Socket.IO packet */
    char url[256];    /* the handshake request's target (its query is handshake.query) */
    uint8_t polling;  /* counted in pollingClientsCount */
    uint8_t secure;   /* over TLS */
};

/* Counts of one kind of event in the current second (Node's engine-level events). */
enum {
    HR_ADMIN_RAW_CONNECTION,
    HR_ADMIN_PACKETS_IN,
    HR_ADMIN_PACKETS_OUT,
    HR_ADMIN_BYTES_IN,
    HR_ADMIN_BYTES_OUT,
    HR_ADMIN_COUNTS
};
#define HR_ADMIN_REASONS 8
#define HR_ADMIN_SESSIONS 32

struct hr_sio_admin {
    herald_io *io;
    herald_nsp *nsp;
    char *user, *password;
    size_t user_len, password_len;
    uv_timer_t timer; /* every second: fold the counts; every other: server_stats */
    /* events for the UI, sent after the loop turn (flush, a 0 ms timer): they come from inside
     * other work (a socket's teardown, a broadcast), where sending to the admin sockets (a
     * slow one closes at once) must not happen */
    uv_timer_t flush;
    struct hr_sio_admin_event *head, *tail;
    unsigned ticks;
    uint64_t started; /* loop ms */
    char server_id[300], hostname[256];
    uint32_t clients, polling;
    uint64_t counts[HR_ADMIN_COUNTS];
    struct {
        char reason[32]; /* Engine.IO's close reasons ("transport close") */
        uint64_t count;
    } gone[HR_ADMIN_REASONS];
    json_t *events; /* aggregatedEvents since the last server_stats */
    /* admin sockets connected on every worker: the UI's events are built only when one
     * watches (worker 0's counter, shared) */
    atomic_uint own_watchers;
    atomic_uint *watchers;
    /* login sessions ("session" event): worker 0's table, which every worker uses */
    struct hr_sio_admin_sessions {
        uv_mutex_t lock;
        char ids[HR_ADMIN_SESSIONS][24];
        unsigned next;
    } own_sessions, *sessions;
    char new_session[24]; /* made by the login, sent by the connection handler after it */
};

struct hr_sio_admin_event {
    struct hr_sio_admin_event *next;
    const char *event; /* a string constant */
    json_t *args;
};

/* Serve the admin namespace on io (each worker's): the user and password it logs in with
 * (copied). 0, or HR_ENOMEM. */
int hr_sio_admin_init(herald_io *io, const char *user, const char *password);
/* Another worker's io counts its admin sockets with first's. */
void hr_sio_admin_share(herald_io *io, herald_io *first);
/* The server stops: close the timer. */
void hr_sio_admin_close(herald_io *io);
void hr_sio_admin_free(herald_io *io);

/* What the Socket.IO layer tells it (each called only when io->admin is set). */
void hr_sio_admin_client_open(struct hr_sio_client *c, struct hr_eio_session *es,
                              const struct hr_http_request *req);
void hr_sio_admin_client_close(struct hr_sio_client *c, const char *reason);
void hr_sio_admin_upgraded(struct hr_sio_client *c);
void hr_sio_admin_connecting(struct hr_sio_client *c); /* a CONNECT: the peer's address */
void hr_sio_admin_connected(herald_socket *s);
void hr_sio_admin_disconnected(herald_socket *s, const char *reason);
void hr_sio_admin_room(herald_socket *s, const char *room, int joined);
void hr_sio_admin_event(herald_socket *s, const char *event, const herald_args *a);
void hr_sio_admin_sent(herald_socket *s, const char *event, const char *raw, size_t len);
/* A broadcast relayed from another worker: 1 when it was the admin UI's own (the other
 * workers' sockets wanted, an operation), handled here and not to be sent. */
int hr_sio_admin_relayed(herald_io *io, const char *nsp, const char *room, const char *event,
                         const char *raw, size_t len);

static inline void hr_sio_admin_count(herald_io *io, int what, uint64_t bytes)
{
    io->admin->counts[what]++;
    io->admin->counts[what + 2] += bytes; /* packets -> bytes */
}

#endif
