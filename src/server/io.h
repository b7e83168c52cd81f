/* io.h - the composition root: one server made of every layer (the listener, HTTP routes,
 * static files, /echo, the channels, their hub and store, Engine.IO, Socket.IO) from one
 * configuration; the only place that knows them all. */
#ifndef HR_SERVER_IO_H
#define HR_SERVER_IO_H

#include "chan/push.h"
#include "config.h"
#include "eio/eio.h"
#include "http/origin.h"
#include "http/static.h"
#include "hub/hub.h"
#include "net/server.h"
#include "ops.h"
#include "sio/sio.h"

struct hr_io {
    herald_io sio; /* what the public API hands out; the rest is found from it */
    struct herald_config cfg;
    const char *app_name; /* for the banner, or NULL */
    uv_loop_t *loop;
    struct hr_server srv;
    struct hr_router router;
    struct hr_static st;
    struct hr_eio eio;
    struct hr_store *store;    /* channel history */
    struct hr_hub hub;         /* channels */
    struct hr_push push;       /* SSE, polls, publish API, WebSocket channels */
    struct hr_auth auth;       /* tokens and channel rules, for every transport */
    struct hr_origins origins; /* --allowed-origins, or its default, for every layer */
    /* --publish-rate's table: worker 0's (made with it), which every worker uses */
    struct hr_quota publish;
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t stop_deadline; /* worker 0: --shutdown-timeout, started by the first stop */
    int lock_fd;              /* worker 0 with the sqlite store: DIR/herald.lock, held; -1 */
    struct hr_tls *tls;       /* --tls-cert: worker 0's, which every worker's server points at */
    int running;
    int serve_static;
    struct hr_static admin_st; /* --admin-password: the Admin UI's page at /admin/ */
    const struct hr_eio_handler *eio_app;
    /* workers (workers.c): this one's index, what they share (NULL: one worker), and the
     * publishes this one forwarded to the sequencer that wait for its acknowledgement */
    unsigned worker;
    struct hr_workers *workers;
    struct hr_forward *forwarded;
    /* operations (ops.h): who may scrape /metrics; the store that commits (worker 0's, the
     * sequencer's: its last commit tells /readyz whether the history can be written) */
    struct hr_ops_allow metrics_allow;
    const struct hr_store *writer;
};

#define HR_WORKERS_MAX 64

/* The workers cfg asks for (--workers; 0: one per core). */
unsigned hr_io_workers(const struct herald_config *cfg);
/* One worker's server on loop (not running yet). sequencer: worker 0's store, for the others,
 * whose cfg is worker 0's (NULL for worker 0, whose cfg is the process's). NULL when it could not
 * be made, after a line on stderr. */
struct hr_io *hr_io_make(const struct herald_config *cfg, const struct hr_eio_handler *eio_app,
                         const char *app_name, uv_loop_t *loop, unsigned worker,
                         const struct hr_store *sequencer);
/* Serve static files if asked and listen on port: 0, or the exit status to return. */
int hr_io_listen(struct hr_io *r, int port);
/* After its loop has returned (or when it never ran): close and free everything. */
void hr_io_finish(struct hr_io *r);

/* workers.c: start workers 1.. beside r (worker 0, listening, not running yet) and link them
 * all; 0 or an error (a line on stderr; whatever started is stopped and joined by
 * hr_workers_join). */
int hr_workers_start(struct hr_io *r);
/* r stops: the other workers are told to stop too (once). */
void hr_workers_stop(struct hr_io *r);
/* Told again (a second signal, worker 0): every worker closes its connections now. */
void hr_workers_stop_now(struct hr_io *r);
/* r's server stopped: nothing more reaches it from the other workers. 1: r may close its last
 * handles now; 0 (worker 0 while others still run): hr_io_release(r) is called once they
 * have stopped. */
int hr_workers_stopped(struct hr_io *r);
/* io.c: close what kept r's loop alive after its server stopped (worker 0: the signals). */
void hr_io_release(struct hr_io *r);
/* r's loop ended: publishes it forwarded and still waiting fail (HR_ECLOSED). */
void hr_workers_fail_forwarded(struct hr_io *r);
/* Worker 0, after its loop: wait for the other workers' threads to finish, free what they
 * share. */
void hr_workers_join(struct hr_io *r);

/* A server from cfg (copied). eio_app: an application on Engine.IO alone, run in place of
 * Socket.IO (NULL: Socket.IO). app_name: named in the banner (NULL: none). NULL when it could
 * not be made, after a line on stderr. herald_run runs and frees it. */
herald_io *hr_server_io_new(const struct herald_config *cfg, const struct hr_eio_handler *eio_app,
                            const char *app_name);

#endif
