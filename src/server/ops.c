/* ops.c - GET /metrics in the Prometheus text exposition format (version 0.0.4), GET /healthz
 * and GET /readyz. The counters are per worker (core/metrics.h) and summed here, at scrape
 * time, so counting costs the hot paths an increment; gauges of the whole process come from
 * the memory budget (atomics), the hub this worker holds (every worker's hub has every
 * channel's metadata) and /proc/self. */
#include "ops.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/budget.h"
#include "core/error.h"
#include "core/metrics.h"
#include "io.h"

/* ---- --metrics-allow ---- */

static int add_net(struct hr_ops_allow *a, int v6, const uint8_t *addr, unsigned prefix)
{
    if (a->n >= HR_OPS_ALLOW_MAX)
        return HR_EINVAL;
    struct hr_ops_net *n = &a->net[a->n++];
    memset(n, 0, sizeof(*n));
    n->v6 = (uint8_t)v6;
    n->prefix = (uint8_t)prefix;
    memcpy(n->addr, addr, v6 ? 16 : 4);
    return 0;
}

int hr_ops_allow_parse(struct hr_ops_allow *a, const char *list, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    if (!*list) {
        snprintf(err, errlen, "an empty list (none refuses every scrape)");
        return HR_EINVAL;
    }
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        char item[64];
        while (len && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 0 || len >= sizeof item) {
            snprintf(err, errlen, "'%.*s' is no address", (int)len, p);
            return HR_EINVAL;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
        static const uint8_t lo4[4] = {127, 0, 0, 0}, zero[16] = {0}, lo6[16] = {[15] = 1};
        int rc = 0;
        if (strcmp(item, "none") == 0)
            continue; /* nothing added: with nothing else, no one may scrape */
        if (strcmp(item, "any") == 0)
            rc = add_net(a, 0, zero, 0) | add_net(a, 1, zero, 0);
        else if (strcmp(item, "loopback") == 0)
            rc = add_net(a, 0, lo4, 8) | add_net(a, 1, lo6, 128);
        else {
            char *slash = strchr(item, '/');
            unsigned prefix = 0;
            if (slash) {
                char *end;
                *slash = '\0';
                errno = 0;
                unsigned long v = strtoul(slash + 1, &end, 10);
                if (!slash[1] || *end || errno || v > 128) {
                    snprintf(err, errlen, "'%s/%s' has no valid prefix length", item, slash + 1);
                    return HR_EINVAL;
                }
                prefix = (unsigned)v;
            }
            uint8_t addr[16];
            int v6 = strchr(item, ':') != NULL;
            if (inet_pton(v6 ? AF_INET6 : AF_INET, item, addr) != 1) {
                snprintf(err, errlen, "'%s' is no IPv4 or IPv6 address", item);
                return HR_EINVAL;
            }
            unsigned bits = v6 ? 128 : 32;
            if (!slash)
                prefix = bits;
            if (prefix > bits) {
                snprintf(err, errlen, "'%s/%u': an IPv%d prefix has at most %u bits", item, prefix,
                         v6 ? 6 : 4, bits);
                return HR_EINVAL;
            }
            rc = add_net(a, v6, addr, prefix);
        }
        if (rc < 0) {
            snprintf(err, errlen, "more than %d addresses", HR_OPS_ALLOW_MAX);
            return HR_EINVAL;
        }
    }
    return 0;
}

static int prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int hr_ops_allow_has(const struct hr_ops_allow *a, const uint8_t *addr, size_t len)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    int v6 = len == 16;
    if (v6 && memcmp(addr, mapped, 12) == 0) {
        addr += 12; /* ::ffff:a.b.c.d on a dual-stack listener is the IPv4 client a.b.c.d */
        v6 = 0;
    }
    for (uint32_t i = 0; i < a->n; i++)
        if (a->net[i].v6 == v6 && prefix_match(a->net[i].addr, addr, a->net[i].prefix))
            return 1;
    return 0;
}

static int peer_allowed(const struct hr_ops_allow *a, struct hr_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return hr_ops_allow_has(a, (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr, 4);
    if (ss.ss_family == AF_INET6)
        return hr_ops_allow_has(a, ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr, 16);
    return 0;
}

/* ---- the exposition text ---- */

struct text {
    char *s;
    size_t len, cap;
    int oom;
};

static void put(struct text *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n + 1;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->oom = 1;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
}

static void head(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(struct text *t, const char *name, const char *type, const char *help, double v)
{
    head(t, name, type, help);
    put(t, "%s %.17g\n", name, v);
}

/* What /proc/self/stat says (fields after the command's closing parenthesis). */
struct proc_stat {
    double cpu_seconds, start_time;
    uint64_t rss_bytes, vsize_bytes;
    int ok;
};

static void read_proc(struct proc_stat *ps)
{
    memset(ps, 0, sizeof(*ps));
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long long utime, stime, start, vsize;
    long long rss;
    /* fields 3..24 (proc(5)): state ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime vsize rss */
    if (!p || sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                     "%*d %llu %llu %lld",
                     &utime, &stime, &start, &vsize, &rss) != 5)
        return;
    double tck = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    ps->cpu_seconds = (double)(utime + stime) / tck;
    ps->vsize_bytes = vsize;
    ps->rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
    /* starttime counts clock ticks since boot: the boot time is /proc/stat's btime */
    if ((f = fopen("/proc/stat", "r"))) {
        char line[256];
        unsigned long long btime = 0;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "btime %llu", &btime) == 1)
                break;
        fclose(f);
        ps->start_time = (double)btime + (double)start / tck;
    }
    ps->ok = 1;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor, open while it is read */
}

#define SUM(field) HR_METRICS_SUM(field)

char *hr_ops_metrics_text(struct hr_io *r, size_t *len)
{
    struct text t = {0};
    const char *tn;

    head(&t, "herald_connections", "gauge", "Clients connected now, by transport.");
    for (int i = 0; i < HR_MT_TRANSPORTS; i++) {
        /* closed first: a close counted on another worker meanwhile cannot make it negative */
        uint64_t closed = SUM(closed[i]), opened = SUM(opened[i]);
        put(&t, "herald_connections{transport=\"%s\"} %llu\n", hr_metrics_transport_name(i),
            (unsigned long long)(opened > closed ? opened - closed : 0));
    }
    head(&t, "herald_connections_opened_total", "counter",
         "Clients accepted (handshakes that succeeded), by transport.");
    for (int i = 0; i < HR_MT_TRANSPORTS; i++)
        put(&t, "herald_connections_opened_total{transport=\"%s\"} %llu\n",
            hr_metrics_transport_name(i), (unsigned long long)SUM(opened[i]));
    head(&t, "herald_refusals_total", "counter",
         "Requests answered with an error status and connections refused on accept, by reason.");
    for (int i = 0; i < HR_MR_REASONS; i++)
        put(&t, "herald_refusals_total{reason=\"%s\"} %llu\n", hr_metrics_refusal_name(i),
            (unsigned long long)SUM(refused[i]));
    one(&t, "herald_messages_in_total", "counter",
        "Messages published to channels, committed and acknowledged.", (double)SUM(msgs_in));
    one(&t, "herald_messages_out_total", "counter",
        "Channel messages written to readers (once per reader, history replays included).",
        (double)SUM(msgs_out));
    one(&t, "herald_received_bytes_total", "counter", "Bytes read from clients (after TLS).",
        (double)SUM(bytes_in));
    one(&t, "herald_sent_bytes_total", "counter", "Bytes the kernel took for clients (before TLS).",
        (double)SUM(bytes_out));

    head(&t, "herald_publish_latency_seconds", "histogram",
         "From a publish reaching herald to its acknowledgement, the store's commit included.");
    uint64_t cum = 0;
    for (int i = 0; i < HR_MT_LAT_BUCKETS; i++) {
        cum += SUM(lat[i]);
        put(&t, "herald_publish_latency_seconds_bucket{le=\"%g\"} %llu\n", hr_metrics_lat_bounds[i],
            (unsigned long long)cum);
    }
    cum += SUM(lat[HR_MT_LAT_BUCKETS]);
    put(&t, "herald_publish_latency_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    put(&t, "herald_publish_latency_seconds_sum %.9f\n", (double)SUM(lat_sum_ns) / 1e9);
    /* the count is the +Inf bucket (read once: they must agree) */
    put(&t, "herald_publish_latency_seconds_count %llu\n", (unsigned long long)cum);

    one(&t, "herald_fanout_queued_bytes", "gauge",
        "Output queued for clients beyond what the kernel took (the fan-out queues).",
        (double)hr_budget_used(HR_MEM_QUEUED));
    one(&t, "herald_publish_pending_bytes", "gauge",
        "Published payloads waiting for the store's commit.",
        (double)hr_budget_used(HR_MEM_PUBLISH));
    one(&t, "herald_history_cache_bytes", "gauge",
        "The in-memory history cache, every worker's together.",
        (double)hr_budget_used(HR_MEM_HISTORY));
    head(&t, "herald_slow_consumer_drops_total", "counter",
         "Slow readers acted on, by channel policy: disconnected, a message skipped, or a "
         "message coalesced away.");
    for (int i = 0; i < HR_MT_POLICIES; i++)
        put(&t, "herald_slow_consumer_drops_total{policy=\"%s\"} %llu\n", hr_policy_name(i),
            (unsigned long long)SUM(drops[i]));

    /* the history: every hub holds every channel's metadata (the sequencer's, applied) */
    uint64_t chans = 0, kept = 0, bytes = 0;
    for (struct hr_channel *ch = r->hub.channels; ch; ch = ch->hh.next) {
        chans++;
        kept += ch->kept;
        bytes += ch->kept_bytes;
    }
    tn = r->store->ops->name;
    one(&t, "herald_channels", "gauge", "Channels known (published to, or read).", (double)chans);
    head(&t, "herald_history_messages", "gauge", "Messages kept in the history, by store.");
    put(&t, "herald_history_messages{store=\"%s\"} %llu\n", tn, (unsigned long long)kept);
    head(&t, "herald_history_bytes", "gauge", "Payload bytes kept in the history, by store.");
    put(&t, "herald_history_bytes{store=\"%s\"} %llu\n", tn, (unsigned long long)bytes);
    const struct hr_store *w = r->writer ? r->writer : r->store;
    head(&t, "herald_store_writable", "gauge",
         "1 when the store's last commit succeeded, 0 when it failed (see /readyz).");
    put(&t, "herald_store_writable{store=\"%s\"} %d\n", tn,
        __atomic_load_n(&w->write_error, __ATOMIC_ACQUIRE) == NULL);
    one(&t, "herald_workers", "gauge", "Worker threads (event loops).",
        (double)hr_io_workers(&r->cfg));
    head(&t, "herald_build_info", "gauge", "herald's version, as a label.");
    put(&t, "herald_build_info{version=\"%s\"} 1\n", HERALD_VERSION);

    struct proc_stat ps;
    read_proc(&ps);
    if (ps.ok) {
        one(&t, "process_cpu_seconds_total", "counter",
            "Total user and system CPU time spent in seconds.", ps.cpu_seconds);
        one(&t, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
            (double)ps.rss_bytes);
        one(&t, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
            (double)ps.vsize_bytes);
        one(&t, "process_start_time_seconds", "gauge",
            "Start time of the process since unix epoch in seconds.", ps.start_time);
    }
    long fds = open_fds();
    if (fds >= 0)
        one(&t, "process_open_fds", "gauge", "Number of open file descriptors.", (double)fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        one(&t, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
            (double)rl.rlim_cur);
    if (t.oom) {
        free(t.s);
        return NULL;
    }
    *len = t.len;
    return t.s;
}

/* ---- the routes ---- */

static void metrics_cb(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct hr_io *r = ud;
    if (!peer_allowed(&r->metrics_allow, c)) {
        hr_http_error(c, 403, NULL, "metrics are not served to this address (--metrics-allow)");
        return;
    }
    const char *token = r->cfg.metrics_token;
    if (token) {
        size_t n = 0;
        const char *v = hr_http_header_get(req, "Authorization", &n);
        if (!v || n < 7 || strncasecmp(v, "Bearer ", 7) != 0 ||
            !hr_auth_secret_equal(v + 7, n - 7, token, strlen(token))) {
            hr_http_error(c, 401, "WWW-Authenticate: Bearer realm=\"metrics\"\r\n",
                          "metrics want Authorization: Bearer and the --metrics-token");
            return;
        }
    }
    size_t len = 0;
    char *body = hr_ops_metrics_text(r, &len);
    if (!body) {
        hr_http_error(c, 503, NULL, "out of memory");
        return;
    }
    hr_http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8",
                    "Cache-Control: no-store\r\n", body, len);
    free(body);
}

static void healthz_cb(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    /* answered at all: the loop that took the request runs */
    static const char body[] = "{\"status\":\"ok\"}\n";
    hr_http_respond(c, 200, "application/json", "Cache-Control: no-store\r\n", body,
                    sizeof body - 1);
}

static void readyz_cb(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct hr_io *r = ud;
    const struct hr_store *w = r->writer ? r->writer : r->store;
    const char *werr = __atomic_load_n(&w->write_error, __ATOMIC_ACQUIRE);
    int werrno = __atomic_load_n(&w->write_errno, __ATOMIC_RELAXED);
    int accepting = !r->srv.stopping;
    char store[200] = "ok";
    if (werr && werrno)
        snprintf(store, sizeof store, "write failed: %s (%s)", werr, strerror(werrno));
    else if (werr)
        snprintf(store, sizeof store, "write failed: %s", werr);
    int ready = accepting && !werr;
    json_t *j = json_pack("{s:s,s:{s:s,s:s}}", "status", ready ? "ready" : "unready", "checks",
                          "accepting", accepting ? "ok" : "stopping", "store", store);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body) {
        hr_http_error(c, 503, NULL, "out of memory");
        return;
    }
    size_t n = strlen(body);
    body[n] = '\n'; /* json_dumps's NUL: the body ends with a newline instead */
    hr_http_respond(c, ready ? 200 : 503, "application/json", "Cache-Control: no-store\r\n", body,
                    n + 1);
    free(body);
}

int hr_ops_route(struct hr_io *r, struct hr_router *router)
{
    /* the default: loopback only while no token is asked for (the figures tell how busy the
     * server is and which stores it has: not for everyone), anyone with the token once one is */
    const char *allow = r->cfg.metrics_allow   ? r->cfg.metrics_allow
                        : r->cfg.metrics_token ? "any"
                                               : "loopback";
    char err[160];
    if (hr_ops_allow_parse(&r->metrics_allow, allow, err, sizeof err) < 0) {
        fprintf(stderr, "herald: --metrics-allow: %s\n", err);
        return HR_EINVAL;
    }
    int rc = hr_router_add(router, HR_M(HTTP_GET), "/metrics", 0, metrics_cb, r);
    rc |= hr_router_add(router, HR_M(HTTP_GET), "/healthz", 0, healthz_cb, r);
    rc |= hr_router_add(router, HR_M(HTTP_GET), "/readyz", 0, readyz_cb, r);
    return rc < 0 ? HR_ENOMEM : 0;
}
