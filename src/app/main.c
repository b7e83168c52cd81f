/* main.c - the herald binary: parse flags, serve the default app, stop cleanly on a signal. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../core/log.h"
#include "../http/http.h"
#include "../http/static.h"
#include "../net/server.h"
#include "config.h"
#include "echo.h"

static struct hr_server server;
static uv_signal_t sigint, sigterm;

static void on_signal(uv_signal_t *s, int signum)
{
    if (server.stopping) {
        /* a second signal: do not wait for peers to finish closing */
        for (struct hr_conn *c = server.conns; c; c = c->next)
            hr_conn_close(c);
        return;
    }
    hr_info("%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    hr_server_stop(&server);
}

static void on_stopped(struct hr_server *srv)
{
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
}

int main(int argc, char **argv)
{
    struct hr_config cfg;
    char err[256];
    int rc = hr_config_parse(&cfg, argc, argv, err, sizeof err);
    if (rc > 0)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "herald: %s\n", err);
        return 2;
    }
    if (cfg.quiet)
        hr_log_level = HR_LOG_ERROR;
    signal(SIGPIPE, SIG_IGN);

    static struct hr_static st;
    rc = hr_static_init(&st, cfg.public_dir);
    if (rc < 0) {
        fprintf(stderr, "herald: --public %s: %s\n", cfg.public_dir, strerror(-rc));
        return 2;
    }
    static struct hr_router router;
    hr_router_init(&router);
    hr_router_add(&router, HR_M(HTTP_GET), "/echo", 0, hr_echo_handler, NULL);
    hr_router_fallback(&router, HR_M(HTTP_GET), hr_static_handler, &st);

    uv_loop_t *loop = uv_default_loop();
    if (hr_server_init(&server, loop, &cfg.limits) < 0) {
        fprintf(stderr, "herald: out of memory\n");
        return 1;
    }
    server.on_accept = hr_http_accept;
    server.app = &router;
    server.on_stopped = on_stopped;
    rc = hr_server_listen(&server, cfg.host, cfg.port);
    if (rc < 0) {
        fprintf(stderr, "herald: cannot listen on %s port %d: %s\n", cfg.host, cfg.port, uv_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);

    int v6 = strchr(cfg.host, ':') != NULL;
    printf("herald %s listening on http://%s%s%s:%d (static files from %s)\n", HERALD_VERSION,
           v6 ? "[" : "", cfg.host, v6 ? "]" : "", hr_server_port(&server), st.root);
    fflush(stdout);

    uv_run(loop, UV_RUN_DEFAULT);
    hr_info("stopped");
    rc = uv_loop_close(loop);
    if (rc != 0)
        hr_warn("loop closed with live handles: %s", uv_strerror(rc));
    hr_server_free(&server);
    return 0;
}
