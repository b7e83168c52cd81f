/* fake_server.h - for the fan-out unit tests: every transport a client can read from (the
 * channel routes, Engine.IO and Socket.IO on "/") on one loop and a hub with the memory store,
 * routed as the server routes them, with clients on fake_conn.h's connections (no sockets):
 * requests in as text, what the server wrote recorded buffer by buffer. */
#ifndef HR_TEST_FAKE_SERVER_H
#define HR_TEST_FAKE_SERVER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan/push.h"
#include "fake_conn.h"
#include "sio/internal.h"

struct fake_server {
    uv_loop_t loop;
    struct hr_store *store;
    struct hr_hub hub;
    struct hr_server srv;
    struct hr_router router;
    struct hr_push push;
    struct hr_eio eio;
    herald_io *io;
    herald_nsp *root;
    struct hr_conn *conns[64];
    int nconns;
    int acked;
};

static inline void fake_server_init(struct fake_server *f, uint32_t recovery_window_ms)
{
    memset(f, 0, sizeof(*f));
    uv_loop_init(&f->loop);
    f->store = hr_store_memory_new(&f->loop);
    struct hr_hub_limits hl = HR_HUB_LIMITS_DEFAULT;
    hr_hub_init(&f->hub, &f->loop, f->store, &hl);
    struct hr_limits l = HR_LIMITS_DEFAULT;
    f->srv.loop = &f->loop;
    f->srv.limits = l;
    f->srv.on_accept = hr_http_accept;
    f->srv.app = &f->router;
    hr_router_init(&f->router);
    hr_chan_push_init(&f->push, &f->hub, &f->loop);
    hr_chan_push_route(&f->push, &f->router);
    struct herald_options o = {.path = "/socket.io/",
                               .ping_interval_ms = 25000,
                               .ping_timeout_ms = 20000,
                               .max_payload = 1000000,
                               .recovery_window_ms = recovery_window_ms};
    f->io = calloc(1, sizeof(*f->io));
    hr_sio_init(f->io, &o, &f->loop, &f->hub, f->store, l.max_queued);
    struct hr_eio_opts eo = HR_EIO_OPTS_DEFAULT;
    eo.path = o.path;
    hr_eio_init(&f->eio, &f->srv, &eo, &hr_sio_eio_handler, f->io);
    hr_eio_route(&f->eio, &f->router);
    f->root = herald_of(f->io, "/");
}

/* Every client goes, then the server; nothing is left (buffers, handles). */
static inline void fake_server_free(struct fake_server *f)
{
    hr_eio_shutdown(&f->eio);
    for (int i = 0; i < f->nconns; i++)
        fake_conn_free(f->conns[i]);
    hr_sio_close(f->io);
    hr_chan_push_close(&f->push);
    f->store->ops->close(f->store);
    hr_hub_free(&f->hub);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    hr_eio_free(&f->eio);
    hr_sio_free_namespaces(f->io);
    free(f->io);
}

static inline struct hr_conn *fake_client(struct fake_server *f, const char *request)
{
    struct hr_conn *c = fake_conn_new(&f->srv);
    f->conns[f->nconns++] = c;
    if (request)
        fake_conn_text(c, request);
    return c;
}

#define FAKE_WS_HEADERS                                                                            \
    "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"                                     \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

/* A Socket.IO client over WebSocket, connected to "/". */
static inline struct hr_conn *fake_sio_ws(struct fake_server *f)
{
    struct hr_conn *c =
        fake_client(f, "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n" FAKE_WS_HEADERS);
    fake_conn_ws_text(c, "40");
    return c;
}

/* A Socket.IO client over HTTP long-polling, connected to "/", with a GET held (what comes
 * answers it). sid: its Engine.IO session id. */
static inline struct hr_conn *fake_sio_poll(struct fake_server *f, char sid[32])
{
    char req[256], out[512];
    struct hr_conn *c =
        fake_client(f, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n");
    fake_conn_output(c, 0, out, sizeof out);
    const char *p = strstr(out, "\"sid\":\"");
    if (!p || sscanf(p + 7, "%31[^\"]", sid) != 1)
        return NULL;
    snprintf(req, sizeof req,
             "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n"
             "Content-Length: 2\r\n\r\n40",
             sid);
    fake_conn_text(c, req);
    snprintf(req, sizeof req,
             "GET /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n\r\n", sid);
    fake_conn_text(c, req); /* the CONNECT answer */
    fake_conn_text(c, req); /* held */
    return c;
}

static inline void fake_acked_cb(void *ud, int status, uint64_t id)
{
    ((struct fake_server *)ud)->acked++;
}

/* Publish json to channel name; the loop runs until it is committed and fanned out. */
static inline int fake_publish(struct fake_server *f, const char *name, const char *json)
{
    struct hr_channel *ch = hr_hub_channel(&f->hub, name, strlen(name), 1);
    int want = f->acked + 1;
    if (!ch || hr_hub_publish(&f->hub, ch, json, strlen(json), fake_acked_cb, f) < 0)
        return HR_ENOMEM;
    while (f->acked < want)
        uv_run(&f->loop, UV_RUN_ONCE);
    return 0;
}

#endif
