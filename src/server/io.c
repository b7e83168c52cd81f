/* io.c - herald_io, the server a program gets from include/herald.h: the composition root
 * that wires every layer on one libuv loop, its options, and its lifecycle (signals, stop). */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "net/tls.h"
#include "sio/admin.h"
#include "ws/echo.h"

/* The flush waits for publishes being committed (hr_server_set_hold): delivered with what a
 * turn already has, in the same sends. */
static int hub_showing(void *ud)
{
    const struct hr_hub *hub = ud;
    return hub->unshown > 0;
}

/* --dev-tokens: GET /dev/token?sub=NAME answers {"token","sub","exp"}, a token for anyone
 * who asks, valid one hour. For trying the pages on a laptop; a real deployment has its own
 * login hand out tokens (docs/security.md). */
static void dev_token_cb(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    const struct hr_auth *auth = ud;
    char sub[HR_AUTH_SUB_MAX + 1];
    long n = hr_http_query(req, "sub", sub, sizeof sub);
    if (n <= 0 || !hr_channel_name_valid(sub, (size_t)n)) {
        hr_http_error(c, 400, NULL, "sub wants a user name (the characters of channel names)");
        return;
    }
    uint64_t now = hr_wall_ms();
    char *tok = hr_auth_mint(auth, sub, now, 3600);
    char body[1024];
    int len = tok ? snprintf(body, sizeof body, "{\"token\":\"%s\",\"sub\":\"%s\",\"exp\":%llu}\n",
                             tok, sub, (unsigned long long)(now / 1000 + 3600))
                  : -1;
    free(tok);
    if (len < 0 || (size_t)len >= sizeof body)
        hr_http_error(c, 500, NULL, "could not make a token");
    else
        hr_http_respond(c, 200, "application/json", "Cache-Control: no-store\r\n", body,
                        (size_t)len);
}

/* mkdir -p for --data: the missing parents too (an installed herald's default may be
 * ~/.local/state/herald or PREFIX/var/lib/herald), they 0755, the directory itself 0700.
 * Returns 0 or -1 with errno. */
static int mkdir_parents(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* GET /admin: the Admin UI's page is /admin/ (its files are linked relative to it) */
static void admin_redirect_cb(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    (void)req, (void)ud;
    hr_http_error(c, 301, "Location: /admin/\r\n", "moved permanently");
}

/* --admin-password: the UI's static build (npm's @socket.io/admin-ui, ui/dist) at /admin/.
 * Without it the /admin namespace still serves a UI hosted elsewhere (its origin then has to
 * be in --allowed-origins). */
static void admin_route(struct hr_io *r)
{
    const char *dir = r->cfg.admin_ui_dir;
    int err = hr_static_init(&r->admin_st, dir);
    if (err < 0) {
        if (r->worker == 0)
            hr_warn("--admin-ui-dir %s: %s; the Admin UI's page is not served at /admin/ "
                    "(scripts/setup.sh installs it from npm), its /admin namespace is",
                    dir, strerror(-err));
        return;
    }
    r->admin_st.strip = strlen("/admin");
    if (hr_router_add(&r->router, HR_M(HTTP_GET), "/admin", 0, admin_redirect_cb, NULL) < 0 ||
        hr_router_add(&r->router, HR_M(HTTP_GET), "/admin/", 1, hr_static_handler, &r->admin_st) <
            0) {
        if (r->worker == 0)
            hr_warn("the Admin UI's page: no room in the route table (HR_ROUTES_MAX)");
        return;
    }
    if (r->worker == 0)
        hr_info("Admin UI at /admin/ (user %s), files from %s", r->cfg.admin_user,
                r->admin_st.root);
}

/* The pid a lock file names, or 0. */
static long lock_owner(int fd)
{
    char b[32];
    ssize_t n = pread(fd, b, sizeof b - 1, 0);
    if (n <= 0)
        return 0;
    b[n] = 0;
    return strtol(b, NULL, 10);
}

/* One herald per data directory: two would both number the channels' messages from the same
 * history and write over each other's. The lock (flock on DIR/herald.lock, which names the
 * holder's pid) lives as long as the process or until its store is closed; the kernel drops
 * it if the process dies. With --takeover, wait for the holder to release it (it drains after
 * SIGTERM), up to --takeover-timeout. Returns the locked descriptor, or -1 after a message. */
static int lock_data_dir(const struct herald_config *cfg, const char *dir)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/herald.lock", dir) >= sizeof path) {
        fprintf(stderr, "herald: --data %s: path too long\n", dir);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "herald: --data %s: %s: %s\n", dir, path, strerror(errno));
        return -1;
    }
    uint64_t start = uv_hrtime(), told = 0;
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        long pid = lock_owner(fd);
        char who[48] = "another herald";
        if (pid > 0)
            snprintf(who, sizeof who, "another herald (pid %ld)", pid);
        if (e != EWOULDBLOCK && e != EINTR) {
            fprintf(stderr, "herald: --data %s: cannot lock %s: %s\n", dir, path, strerror(e));
            close(fd);
            return -1;
        }
        if (!cfg->takeover) {
            fprintf(stderr,
                    "herald: --data %s is in use by %s; stop it first, or start this one with "
                    "--takeover to take over from it\n",
                    dir, who);
            close(fd);
            return -1;
        }
        uint64_t waited_ms = (uv_hrtime() - start) / 1000000;
        if (waited_ms >= cfg->takeover_timeout_ms) {
            fprintf(stderr,
                    "herald: --takeover: --data %s still in use by %s after %g s "
                    "(--takeover-timeout); did it get SIGTERM?\n",
                    dir, who, cfg->takeover_timeout_ms / 1000.0);
            close(fd);
            return -1;
        }
        if (!told++)
            hr_info("--takeover: listening; waiting for %s to release --data %s (send it "
                    "SIGTERM)",
                    who, dir);
        struct timespec ts = {0, 20 * 1000000}; /* the old one drains for seconds: 20 ms is fine */
        nanosleep(&ts, NULL);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        hr_warn("--data %s: could not write the pid into %s", dir, path);
    if (told)
        hr_info("--takeover: --data %s released after %.1f s; loading the store", dir,
                (double)(uv_hrtime() - start) / 1e9);
    return fd;
}

static struct hr_io *root_of(herald_io *io)
{
    return (struct hr_io *)((char *)io - offsetof(struct hr_io, sio));
}

void herald_options_init(struct herald_options *o)
{
    struct herald_config cfg;
    hr_config_init(&cfg);
    *o = cfg.io;
    /* a program's handlers were written for one thread until it says otherwise (the herald
     * binary, whose apps keep per-worker state, runs one loop per core) */
    o->workers = 1;
}

int herald_options_parse(struct herald_options *o, int argc, char **argv)
{
    struct herald_config *cfg = o->config;
    if (!cfg) {
        cfg = malloc(sizeof(*cfg));
        if (!cfg) {
            fprintf(stderr, "herald: out of memory\n");
            return -1;
        }
        hr_config_init(cfg);
    }
    cfg->io = *o; /* flags go over what the program set */
    cfg->io.config = NULL;
    char err[256];
    int rc = hr_config_parse(cfg, argc, argv, err, sizeof err);
    if (rc != 0) {
        /* the program exits: nothing to keep */
        if (rc < 0)
            fprintf(stderr, "herald: %s\n", err);
        free(cfg);
        o->config = NULL;
        return rc < 0 ? -1 : 1;
    }
    if (cfg->print_config) {
        hr_config_print(stdout, cfg);
        free(cfg);
        o->config = NULL;
        return 1;
    }
    *o = cfg->io;
    o->config = cfg;
    return 0;
}

unsigned hr_io_workers(const struct herald_config *cfg)
{
    unsigned n = cfg->io.workers ? cfg->io.workers : uv_available_parallelism();
    return n < 1 ? 1 : n > HR_WORKERS_MAX ? HR_WORKERS_MAX : n;
}

struct hr_io *hr_io_make(const struct herald_config *cfg, const struct hr_eio_handler *eio_app,
                         const char *app_name, uv_loop_t *loop, unsigned worker,
                         const struct hr_store *sequencer)
{
    struct hr_io *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    hr_config_copy(&r->cfg, cfg);
    r->cfg.io.config = NULL;
    const struct herald_options *o = &r->cfg.io;
    unsigned n = hr_io_workers(cfg);
    if (n > 1 && !sequencer) {
        /* the history cache, shared out: each worker keeps its own (the other workers are made
         * from worker 0's configuration: shared out already); the memory budget and the
         * connection limits are the process's, counted together (core/budget.c,
         * hr_server_group) */
        r->cfg.history.cache_bytes /= n;
    }
    r->app_name = app_name;
    r->eio_app = eio_app;
    r->loop = loop;
    r->worker = worker;
    r->lock_fd = -1;
    r->writer = sequencer;
    /* this thread counts into its worker's block (core/metrics.h) */
    hr_metrics_self = &hr_metrics_blocks[worker % HR_METRICS_BLOCKS];
    if (worker == 0) {
        /* process-wide, set once by worker 0 before the other workers' threads start (they
         * only read them) */
        hr_log_level = o->quiet           ? HR_LOG_ERROR
                       : r->cfg.log_level ? hr_log_level_parse(r->cfg.log_level)
                                          : HR_LOG_INFO;
        hr_log_format = r->cfg.log_format ? hr_log_format_parse(r->cfg.log_format) : HR_LOG_TEXT;
        hr_log_access = r->cfg.access_log;
    }
    char aerr[512];
    if (hr_auth_init(&r->auth, &r->cfg.auth, aerr, sizeof aerr) < 0) {
        fprintf(stderr, "herald: %s\n", aerr);
        free(r);
        return NULL;
    }
    if (r->cfg.dev_tokens && r->auth.alg != HR_AUTH_ALG_HS256) {
        fprintf(stderr, "herald: --dev-tokens needs --jwt-secret\n");
        hr_auth_free(&r->auth);
        free(r);
        return NULL;
    }
    if (hr_server_init(&r->srv, r->loop, &r->cfg.limits) < 0) {
        hr_auth_free(&r->auth);
        free(r);
        return NULL;
    }
    if (r->cfg.takeover)
        hr_server_takeover(&r->srv); /* another herald's listener may hold the port */
    hr_router_init(&r->router);
    /* /metrics, /healthz, /readyz (ops.h) */
    if (hr_ops_route(r, &r->router) < 0) {
        hr_server_free(&r->srv);
        hr_auth_free(&r->auth);
        free(r);
        return NULL;
    }
    /* one origin list for WebSocket handshakes, Engine.IO requests and every CORS answer:
     * the seed's demo pages come from another origin, so any is allowed while nothing is
     * protected; once access control is configured, only the pages herald serves itself */
    char oerr[160];
    const char *origins = o->allowed_origins           ? o->allowed_origins
                          : hr_config_secured(&r->cfg) ? "none"
                                                       : "*";
    int orc = hr_origins_parse(&r->origins, origins, oerr, sizeof oerr);
    r->origins.tls = r->cfg.tls_cert != NULL;
    if (orc < 0) {
        fprintf(stderr, "herald: --allowed-origins: %s\n",
                orc == HR_ENOMEM ? "out of memory" : oerr);
        hr_server_free(&r->srv);
        hr_auth_free(&r->auth);
        free(r);
        return NULL;
    }
    struct hr_eio_opts eo = HR_EIO_OPTS_DEFAULT;
    eo.path = o->path;
    eo.ping_interval_ms = o->ping_interval_ms;
    eo.ping_timeout_ms = o->ping_timeout_ms;
    eo.max_payload = o->max_payload;
    eo.origins = &r->origins;
    eo.worker = n > 1 ? (int8_t)worker : -1;
    if (hr_eio_init(&r->eio, &r->srv, &eo, eio_app ? eio_app : &hr_sio_eio_handler, &r->sio) < 0) {
        hr_origins_free(&r->origins);
        hr_server_free(&r->srv);
        hr_auth_free(&r->auth);
        free(r);
        return NULL;
    }
    hr_eio_route(&r->eio, &r->router);
    /* channels: history in the store, the hub, and the push transports */
    char err[256] = "";
    if (!o->store || strcmp(o->store, "sqlite") == 0) {
        const char *dir = o->data_dir ? o->data_dir : "data";
        /* the data directory is created on first use, for the owner only */
        if (mkdir_parents(dir) < 0) {
            snprintf(err, sizeof err, "--data %s: %s", dir, strerror(errno));
        } else if (!sequencer && r->cfg.takeover &&
                   (orc = hr_server_bind(&r->srv, o->host, o->port)) < 0) {
            /* listening before waiting: connections meanwhile wait in the backlog */
            snprintf(err, sizeof err, "--takeover: cannot listen on %s port %d: %s", o->host,
                     o->port, hr_strerror(orc));
        } else if (!sequencer && (r->lock_fd = lock_data_dir(&r->cfg, dir)) < 0) {
            snprintf(err, sizeof err, "--data %s not available", dir);
        } else {
            r->store = hr_store_sqlite_open(
                r->loop, dir,
                r->cfg.store_sync && strcmp(r->cfg.store_sync, "normal") == 0 ? HR_STORE_SYNC_NORMAL
                                                                              : HR_STORE_SYNC_FULL,
                err, sizeof err);
        }
    } else {
        r->store = hr_store_memory_new(r->loop);
        /* one history: every worker's channels have the sequencer's epochs */
        if (r->store && sequencer)
            memcpy(r->store->epoch, sequencer->epoch, sizeof r->store->epoch);
    }
    if (!r->store || hr_hub_init(&r->hub, r->loop, r->store, &r->cfg.history) < 0) {
        fprintf(stderr, "herald: channel store: %s\n", err[0] ? err : "could not load");
        if (r->store) {
            r->store->ops->close(r->store);
            uv_run(r->loop, UV_RUN_NOWAIT); /* the store's handle finishes closing */
        }
        if (r->lock_fd >= 0)
            close(r->lock_fd);
        hr_eio_free(&r->eio);
        hr_origins_free(&r->origins);
        hr_server_free(&r->srv);
        hr_auth_free(&r->auth);
        free(r);
        return NULL;
    }
    /* the publishers' buckets are the process's: worker 0 holds the table (the others are
     * given it by workers.c before they serve) */
    if (!sequencer) {
        hr_quota_init(&r->publish, &r->cfg.publish, HR_QUOTA_TABLE_DEFAULT);
        r->push.publish = r->cfg.publish.rate ? &r->publish : NULL;
    }
    r->push.lp_timeout_ms = r->cfg.lp_timeout_ms;
    r->push.sse_heartbeat_ms = r->cfg.sse_heartbeat_ms;
    r->push.auth = &r->auth;
    r->push.origins = &r->origins;
    hr_chan_push_init(&r->push, &r->hub, r->loop);
    hr_chan_push_route(&r->push, &r->router);
    hr_server_set_hold(&r->srv, hub_showing, &r->hub);
    hr_router_add(&r->router, HR_M(HTTP_GET), "/echo", 0, hr_ws_echo_handler, &r->origins);
    if (r->cfg.dev_tokens) {
        hr_router_add(&r->router, HR_M(HTTP_GET), "/dev/token", 0, dev_token_cb, &r->auth);
        if (worker == 0)
            hr_warn("--dev-tokens: GET /dev/token gives anyone a token for any user; "
                    "for development only, never on a server others can reach");
    }
    hr_sio_init(&r->sio, o, r->loop, &r->hub, r->store, r->cfg.limits.max_queued);
    r->sio.worker = worker;
    hr_sio_set_auth(&r->sio, &r->auth);
    r->sio.max_channels = r->cfg.max_channels;
    r->sio.publish = r->push.publish;
    r->sio.workers = n;
    /* the Admin UI's namespace (hr_io_listen refuses to run when it could not be made) */
    if (r->cfg.admin_password &&
        hr_sio_admin_init(&r->sio, r->cfg.admin_user, r->cfg.admin_password) < 0)
        fprintf(stderr, "herald: admin UI: out of memory\n");
    return r;
}

herald_io *hr_server_io_new(const struct herald_config *cfg, const struct hr_eio_handler *eio_app,
                            const char *app_name)
{
    struct hr_io *r = hr_io_make(cfg, eio_app, app_name, uv_default_loop(), 0, NULL);
    return r ? &r->sio : NULL;
}

herald_io *herald_new(const struct herald_options *o)
{
    struct herald_config defaults, *cfg = o->config;
    if (!cfg) {
        hr_config_init(&defaults);
        cfg = &defaults;
    }
    cfg->io = *o; /* the program may have changed fields after parsing */
    cfg->io.config = NULL;
    herald_io *io = hr_server_io_new(cfg, NULL, hr_config_given(cfg, "app") ? cfg->app : NULL);
    free(o->config);
    return io;
}

void hr_io_release(struct hr_io *r)
{
    if (r->worker == 0 && r->running) {
        uv_close((uv_handle_t *)&r->sigint, NULL);
        uv_close((uv_handle_t *)&r->sigterm, NULL);
        uv_close((uv_handle_t *)&r->sighup, NULL);
        uv_close((uv_handle_t *)&r->stop_deadline, NULL);
    }
}

static void stopped_cb(struct hr_server *srv)
{
    struct hr_io *r = srv->app_data;
    if (hr_workers_stopped(r))
        hr_io_release(r);
    hr_sio_close(&r->sio);
    hr_chan_push_close(&r->push);
}

/* --shutdown-timeout passed with connections still open: they are closed now. */
static void stop_deadline_cb(uv_timer_t *t)
{
    struct hr_io *r = t->data;
    uint32_t n = hr_server_open_count(&r->srv); /* every worker's */
    hr_warn("--shutdown-timeout: %g s passed with %u connection%s still open; closing them",
            r->cfg.shutdown_timeout_ms / 1000.0, n, n == 1 ? "" : "s");
    herald_stop(&r->sio);
}

void herald_stop(herald_io *io)
{
    struct hr_io *r = root_of(io);
    if (r->srv.stopping) {
        /* asked twice: do not wait for peers to finish closing */
        for (struct hr_conn *c = r->srv.conns; c; c = c->next)
            hr_conn_close(c);
        hr_workers_stop_now(r);
        return;
    }
    hr_server_close_listener(&r->srv);
    hr_workers_stop(r); /* the other workers stop too, every listener closed first */
    /* every client is told to come back, in its transport's words: Engine.IO sessions end
     * without a close packet, event streams with a retry: hint, held long-polls answered */
    hr_eio_shutdown(&r->eio);
    hr_chan_push_shutdown(&r->push);
    hr_server_stop(&r->srv); /* WebSockets: 1001; answers in flight finish */
    if (r->worker == 0 && r->running && r->cfg.shutdown_timeout_ms)
        uv_timer_start(&r->stop_deadline, stop_deadline_cb, r->cfg.shutdown_timeout_ms, 0);
}

static void signal_cb(uv_signal_t *sig, int signum)
{
    struct hr_io *r = sig->data;
    const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (!r->srv.stopping && r->cfg.shutdown_timeout_ms)
        hr_info("%s: stopping: clients told to reconnect, draining for up to %g s (a second "
                "signal stops at once)",
                name, r->cfg.shutdown_timeout_ms / 1000.0);
    else if (!r->srv.stopping)
        hr_info("%s: stopping: clients told to reconnect (a second signal stops at once)", name);
    else
        hr_info("%s again: closing every connection now", name);
    herald_stop(&r->sio);
}

/* SIGHUP: the certificate and key are read again; connections keep their sessions, new
 * handshakes (on every worker) use the new files. A file that does not load changes nothing. */
static void sighup_cb(uv_signal_t *sig, int signum)
{
    struct hr_io *r = sig->data;
    char err[512];
    if (!r->tls)
        hr_info("SIGHUP: no TLS certificate configured, nothing to reload");
    else if (hr_tls_reload(r->tls, err, sizeof err) < 0)
        hr_warn("SIGHUP: %s; still serving the previous certificate", err);
    else
        hr_info("SIGHUP: TLS certificate reloaded from %s", hr_tls_cert_file(r->tls));
}

int hr_io_listen(struct hr_io *r, int port)
{
    const struct herald_options *o = &r->cfg.io;
    if (r->worker == 0 && r->cfg.tls_cert && !r->tls) {
        char err[512];
        if (!(r->tls = hr_tls_new(r->cfg.tls_cert, r->cfg.tls_key, err, sizeof err))) {
            fprintf(stderr, "herald: %s\n", err);
            return 2;
        }
        r->srv.tls = r->tls;
    }
    r->serve_static = o->public_dir != NULL;
    if (r->serve_static) {
        int err = hr_static_init(&r->st, o->public_dir);
        if (err == HR_ENOTFOUND) {
            /* an app that needs no pages (channels, Socket.IO from other origins) runs without
             * the directory; every other path then answers 404 */
            if (r->worker == 0)
                hr_warn("--public %s: %s; serving no static files", o->public_dir, strerror(-err));
            r->serve_static = 0;
        } else if (err < 0) {
            fprintf(stderr, "herald: --public %s: %s\n", o->public_dir, strerror(-err));
            return 2;
        } else {
            hr_router_fallback(&r->router, HR_M(HTTP_GET), hr_static_handler, &r->st);
        }
    }
    if (r->cfg.admin_password) {
        if (!r->sio.admin)
            return 1;
        admin_route(r);
    }
    r->srv.on_accept = hr_http_accept;
    r->srv.app = &r->router;
    r->srv.app_data = r;
    r->srv.on_stopped = stopped_cb;
    if (hr_io_workers(&r->cfg) > 1)
        hr_server_share_port(&r->srv, r->worker == 0);
    int err = hr_server_listen(&r->srv, o->host, port);
    if (err < 0) {
        fprintf(stderr, "herald: cannot listen on %s port %d: %s\n", o->host, port,
                uv_strerror(err));
        return 1;
    }
    return 0;
}

void hr_io_finish(struct hr_io *r)
{
    if (!r->running) {
        /* never ran: close what init opened so the loop can be closed */
        hr_server_close_handles(&r->srv);
        hr_workers_stopped(r);
        hr_sio_close(&r->sio);
        hr_chan_push_close(&r->push);
        uv_run(r->loop, UV_RUN_DEFAULT);
    }
    /* publishes another worker had not acknowledged yet fail as the store's would */
    hr_workers_fail_forwarded(r);
    /* the store first: its last commits call back into the hub */
    r->store->ops->close(r->store);
    uv_run(r->loop, UV_RUN_DEFAULT); /* the store's handles finish closing */
    if (r->lock_fd >= 0) {
        /* everything is committed: a herald waiting to take over may load the store now */
        close(r->lock_fd);
        r->lock_fd = -1;
    }
    hr_hub_free(&r->hub);
    hr_eio_free(&r->eio);
    hr_sio_free_namespaces(&r->sio);
    if (uv_loop_close(r->loop) != 0)
        hr_warn("loop closed with live handles");
    hr_server_free(&r->srv);
    hr_auth_free(&r->auth);
    hr_origins_free(&r->origins);
    if (r->worker == 0)
        hr_quota_free(&r->publish); /* the other workers have finished (hr_workers_join) */
    hr_tls_free(r->tls);            /* worker 0's, after the others have stopped */
    free(r);
}

int herald_run(herald_io *io)
{
    struct hr_io *r = root_of(io);
    const struct herald_options *o = &r->cfg.io;
    signal(SIGPIPE, SIG_IGN);
    /* a file past RLIMIT_FSIZE fails its write (EFBIG) instead of killing herald: the store
     * refuses the publish and GET /readyz says why */
    signal(SIGXFSZ, SIG_IGN);
    int rc = hr_io_listen(r, o->port);
    if (rc == 0 && hr_io_workers(&r->cfg) > 1 && hr_workers_start(r) < 0)
        rc = 1;
    if (rc != 0) {
        hr_workers_join(r);
        hr_io_finish(r);
        return rc;
    }
    uv_signal_init(r->loop, &r->sigint);
    uv_signal_init(r->loop, &r->sigterm);
    uv_signal_init(r->loop, &r->sighup);
    uv_timer_init(r->loop, &r->stop_deadline);
    r->sigint.data = r->sigterm.data = r->sighup.data = r->stop_deadline.data = r;
    uv_signal_start(&r->sigint, signal_cb, SIGINT);
    uv_signal_start(&r->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&r->sighup, sighup_cb, SIGHUP);

    int v6 = strchr(o->host, ':') != NULL;
    printf("herald %s listening on %s://%s%s%s:%d (", HERALD_VERSION, r->tls ? "https" : "http",
           v6 ? "[" : "", o->host, v6 ? "]" : "", hr_server_port(&r->srv));
    if (r->app_name)
        printf("app %s, ", r->app_name);
    if (hr_io_workers(&r->cfg) > 1)
        printf("%u workers, ", hr_io_workers(&r->cfg));
    if (r->serve_static)
        printf("static files from %s)\n", r->st.root);
    else
        printf("no static files)\n");
    fflush(stdout);
    r->running = 1;
    uv_run(r->loop, UV_RUN_DEFAULT);
    hr_workers_join(r);
    hr_info("stopped");
    hr_io_finish(r);
    return 0;
}
