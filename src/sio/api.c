/* api.c - herald_io: the server a program gets from include/herald.h (HTTP, static files,
 * /echo, Engine.IO and Socket.IO on one libuv loop), its options, and its lifecycle. */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"
#include "app/echo.h"
#include "core/log.h"
#include "sio.h"


/* Set by herald_options_parse for the next herald_new: the network limits and the channel
 * settings of --help. */
static struct hr_limits parsed_limits = HR_LIMITS_DEFAULT;
static struct hr_hub_limits parsed_history = HR_HUB_LIMITS_DEFAULT;
static uint32_t parsed_lp_timeout_ms, parsed_sse_heartbeat_ms;
const char *hr_sio_app_name; /* the herald binary's --app, for the banner */

void herald_options_init(struct herald_options *o)
{
    *o = (struct herald_options){
        .host = "0.0.0.0",
        .port = 3000,
        .public_dir = "public",
        .path = "/socket.io/",
        .cors_origin = "*",
        .ping_interval_ms = 25000,
        .ping_timeout_ms = 20000,
        .max_payload = 1000000,
        .recovery_window_ms = 120000,
        .connect_timeout_ms = 45000,
        .store = "sqlite",
        .data_dir = "data",
    };
}

int herald_options_parse(struct herald_options *o, int argc, char **argv)
{
    struct hr_config cfg;
    char err[256];
    int rc = hr_config_parse(&cfg, argc, argv, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "herald: %s\n", err);
        return -1;
    }
    if (rc > 0)
        return 1;
    o->host = cfg.host;
    o->port = cfg.port;
    o->public_dir = cfg.public_dir;
    if (cfg.path)
        o->path = cfg.path;
    o->cors_origin = cfg.cors_origin;
    if (cfg.ping_interval_ms)
        o->ping_interval_ms = cfg.ping_interval_ms;
    if (cfg.ping_timeout_ms)
        o->ping_timeout_ms = cfg.ping_timeout_ms;
    o->max_payload = cfg.max_payload;
    if (cfg.recovery_window_ms != UINT32_MAX)
        o->recovery_window_ms = cfg.recovery_window_ms;
    if (cfg.connect_timeout_ms)
        o->connect_timeout_ms = cfg.connect_timeout_ms;
    o->quiet = cfg.quiet;
    parsed_limits = cfg.limits;
    o->store = cfg.store;
    o->data_dir = cfg.data_dir;
    parsed_history.max_messages = cfg.history_messages;
    parsed_history.max_bytes = cfg.history_bytes;
    parsed_history.max_age_ms = cfg.history_age_ms;
    parsed_history.cache_bytes = cfg.history_cache;
    memcpy(parsed_history.rules, cfg.policies, sizeof cfg.policies);
    parsed_history.nrules = cfg.npolicies;
    parsed_lp_timeout_ms = cfg.lp_timeout_ms;
    parsed_sse_heartbeat_ms = cfg.sse_heartbeat_ms;
    if (cfg.app_set)
        hr_sio_app_name = cfg.app;
    return 0;
}

static herald_io *io_new(const struct herald_options *o, const struct hr_eio_handler *h)
{
    herald_io *io = calloc(1, sizeof(*io));
    if (!io)
        return NULL;
    io->opts = *o;
    io->loop = uv_default_loop();
    if (o->quiet)
        hr_log_level = HR_LOG_ERROR;
    if (hr_server_init(&io->srv, io->loop, &parsed_limits) < 0) {
        free(io);
        return NULL;
    }
    hr_router_init(&io->router);
    struct hr_eio_opts eo = HR_EIO_OPTS_DEFAULT;
    eo.path = o->path;
    eo.ping_interval_ms = o->ping_interval_ms;
    eo.ping_timeout_ms = o->ping_timeout_ms;
    eo.max_payload = o->max_payload;
    eo.cors_origin = o->cors_origin;
    io->eio_app = h;
    if (hr_eio_init(&io->eio, &io->srv, &eo, h ? h : &hr_sio_eio_handler, io) < 0) {
        hr_server_free(&io->srv);
        free(io);
        return NULL;
    }
    hr_eio_route(&io->eio, &io->router);
    /* channels: history in the store, the hub, and the push transports */
    char err[256] = "";
    if (!o->store || strcmp(o->store, "sqlite") == 0) {
        const char *dir = o->data_dir ? o->data_dir : "data";
        /* the data directory is created on first use, for the owner only */
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            snprintf(err, sizeof err, "--data %s: %s", dir, strerror(errno));
        else
            io->store = hr_store_sqlite_new(io->loop, dir, err, sizeof err);
    } else {
        io->store = hr_store_memory_new(io->loop);
    }
    if (!io->store || hr_hub_init(&io->hub, io->loop, io->store, &parsed_history) < 0) {
        fprintf(stderr, "herald: channel store: %s\n", err[0] ? err : "could not load");
        if (io->store) {
            io->store->ops->close(io->store);
            uv_run(io->loop, UV_RUN_NOWAIT); /* the store's handle finishes closing */
        }
        hr_eio_free(&io->eio);
        hr_server_free(&io->srv);
        free(io);
        return NULL;
    }
    io->push.lp_timeout_ms = parsed_lp_timeout_ms;
    io->push.sse_heartbeat_ms = parsed_sse_heartbeat_ms;
    hr_push_init(&io->push, &io->hub, io->loop);
    hr_push_route(&io->push, &io->router);
    hr_router_add(&io->router, HR_M(HTTP_GET), "/echo", 0, hr_echo_handler, NULL);
    uv_timer_init(io->loop, &io->ack_timer);
    io->ack_timer.data = io;
    uv_timer_init(io->loop, &io->connect_timer);
    io->connect_timer.data = io;
    return io;
}

herald_io *herald_new(const struct herald_options *o)
{
    return io_new(o, NULL);
}

herald_io *hr_sio_new_eio(const struct herald_options *o, const struct hr_eio_handler *h)
{
    return io_new(o, h);
}

static void on_stopped(struct hr_server *srv)
{
    herald_io *io = srv->app_data;
    uv_close((uv_handle_t *)&io->sigint, NULL);
    uv_close((uv_handle_t *)&io->sigterm, NULL);
    uv_timer_stop(&io->ack_timer);
    uv_close((uv_handle_t *)&io->ack_timer, NULL);
    uv_timer_stop(&io->connect_timer);
    uv_close((uv_handle_t *)&io->connect_timer, NULL);
    hr_push_close(&io->push);
}

void herald_stop(herald_io *io)
{
    if (io->srv.stopping) {
        /* asked twice: do not wait for peers to finish closing */
        for (struct hr_conn *c = io->srv.conns; c; c = c->next)
            hr_conn_close(c);
        return;
    }
    hr_eio_shutdown(&io->eio);
    hr_server_stop(&io->srv);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    herald_io *io = sig->data;
    if (!io->srv.stopping)
        hr_info("%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    herald_stop(io);
}

int herald_run(herald_io *io)
{
    int rc = 0;
    signal(SIGPIPE, SIG_IGN);
    int serve_static = io->opts.public_dir != NULL;
    if (serve_static) {
        int err = hr_static_init(&io->st, io->opts.public_dir);
        if (err == -ENOENT) {
            /* an app that needs no pages (channels, Socket.IO from other origins) runs without
             * the directory; every other path then answers 404 */
            hr_warn("--public %s: %s; serving no static files", io->opts.public_dir, strerror(-err));
            serve_static = 0;
        } else if (err < 0) {
            fprintf(stderr, "herald: --public %s: %s\n", io->opts.public_dir, strerror(-err));
            rc = 2;
            goto out;
        } else {
            hr_router_fallback(&io->router, HR_M(HTTP_GET), hr_static_handler, &io->st);
        }
    }
    io->srv.on_accept = hr_http_accept;
    io->srv.app = &io->router;
    io->srv.app_data = io;
    io->srv.on_stopped = on_stopped;
    int err = hr_server_listen(&io->srv, io->opts.host, io->opts.port);
    if (err < 0) {
        fprintf(stderr, "herald: cannot listen on %s port %d: %s\n", io->opts.host, io->opts.port,
                uv_strerror(err));
        rc = 1;
        goto out;
    }
    uv_signal_init(io->loop, &io->sigint);
    uv_signal_init(io->loop, &io->sigterm);
    io->sigint.data = io->sigterm.data = io;
    uv_signal_start(&io->sigint, on_signal, SIGINT);
    uv_signal_start(&io->sigterm, on_signal, SIGTERM);

    int v6 = strchr(io->opts.host, ':') != NULL;
    printf("herald %s listening on http://%s%s%s:%d (", HERALD_VERSION, v6 ? "[" : "",
           io->opts.host, v6 ? "]" : "", hr_server_port(&io->srv));
    if (hr_sio_app_name)
        printf("app %s, ", hr_sio_app_name);
    if (serve_static)
        printf("static files from %s)\n", io->st.root);
    else
        printf("no static files)\n");
    fflush(stdout);
    io->running = 1;
    uv_run(io->loop, UV_RUN_DEFAULT);
    hr_info("stopped");
out:
    if (!io->running) {
        /* never ran: close what init opened so the loop can be closed */
        uv_close((uv_handle_t *)&io->srv.listener, NULL);
        uv_close((uv_handle_t *)&io->srv.sweep, NULL);
        uv_close((uv_handle_t *)&io->srv.ready_idle, NULL);
        uv_close((uv_handle_t *)&io->srv.shed, NULL);
        uv_close((uv_handle_t *)&io->ack_timer, NULL);
        uv_close((uv_handle_t *)&io->connect_timer, NULL);
        hr_push_close(&io->push);
        uv_run(io->loop, UV_RUN_DEFAULT);
    }
    /* the store first: its last commits call back into the hub */
    io->store->ops->close(io->store);
    uv_run(io->loop, UV_RUN_DEFAULT); /* the store's handles finish closing */
    hr_hub_free(&io->hub);
    hr_eio_free(&io->eio);
    hr_sio_free_namespaces(io);
    if (uv_loop_close(io->loop) != 0)
        hr_warn("loop closed with live handles");
    hr_server_free(&io->srv);
    free(io);
    return rc;
}
