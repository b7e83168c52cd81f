/* io.h - the composition root: one server made of every layer (the listener, HTTP routes,
 * static files, /echo, the channels, their hub and store, Engine.IO, Socket.IO) from one
 * configuration; the only place that knows them all. */
#ifndef HR_SERVER_IO_H
#define HR_SERVER_IO_H

#include "chan/push.h"
#include "config.h"
#include "eio/eio.h"
#include "http/static.h"
#include "hub/hub.h"
#include "net/server.h"
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
    struct hr_store *store; /* channel history */
    struct hr_hub hub;      /* channels */
    struct hr_push push;    /* SSE, polls, publish API, WebSocket channels */
    uv_signal_t sigint, sigterm;
    int running;
};

/* A server from cfg (copied). eio_app: an application on Engine.IO alone, run in place of
 * Socket.IO (NULL: Socket.IO). app_name: named in the banner (NULL: none). NULL when it could
 * not be made, after a line on stderr. herald_run runs and frees it. */
herald_io *hr_server_io_new(const struct herald_config *cfg, const struct hr_eio_handler *eio_app,
                            const char *app_name);

#endif
