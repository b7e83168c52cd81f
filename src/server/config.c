/* config.c - herald's options: the table below is the one place a flag, its default, the
 * values it accepts and its --help line are written. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"
#include "core/error.h"
#include "http/origin.h"

#define F(field) offsetof(struct herald_config, field)
#define SECONDS_MAX (86400ull * 365)

static int valid_app(const struct herald_config *cfg, const char *v)
{
    return !cfg->app_known || cfg->app_known(v);
}

static int valid_store(const struct herald_config *cfg, const char *v)
{
    return strcmp(v, "memory") == 0 || strcmp(v, "sqlite") == 0;
}

static int valid_origins(const struct herald_config *cfg, const char *v)
{
    struct hr_origins o;
    char err[160];
    int rc = hr_origins_parse(&o, v, err, sizeof err);
    hr_origins_free(&o);
    return rc == 0;
}

static int valid_path(const struct herald_config *cfg, const char *v)
{
    return v[0] == '/' && strlen(v) <= 200 && !strchr(v, '?');
}

/* In --help's order. The lower layers' own defaults (HR_LIMITS_DEFAULT, HR_HUB_LIMITS_DEFAULT,
 * HR_EIO_OPTS_DEFAULT, HR_PUSH_*_DEFAULT_MS) are for library users; tests/unit/
 * test_server_options.c checks that they agree with this table. */
const struct hr_opt hr_config_table[] = {
    {.name = "host",
     .arg = "ADDR",
     .type = HR_OPT_STR,
     .offset = F(io.host),
     .def_str = "0.0.0.0",
     .section = "",
     .help = "address to listen on (default {}; IPv6 literals work)"},
    {.name = "port",
     .short_name = 'p',
     .arg = "N",
     .type = HR_OPT_INT,
     .offset = F(io.port),
     .def = 3000,
     .max = 65535,
     .want = "--port wants a number from 0 to 65535",
     .help = "TCP port, 0 for any free one (default {})"},
    {.name = "public",
     .arg = "DIR",
     .type = HR_OPT_STR,
     .offset = F(io.public_dir),
     .def_str = "public",
     .help = "directory of static files served at / (default {};\n"
             "if it does not exist: a warning, and no static files)"},
    {.name = "allowed-origins",
     .arg = "LIST",
     .type = HR_OPT_STR,
     .offset = F(io.allowed_origins),
     .valid = valid_origins,
     .want = "--allowed-origins wants *, none or comma-separated origins "
             "(scheme://host[:port], no path)",
     .help = "web pages that may open WebSockets, make Socket.IO\n"
             "requests and read answers (CORS): origins such as\n"
             "https://app.example.com,http://localhost:8080, or *\n"
             "(any), or none; herald's own origin and requests\n"
             "without Origin always pass (default: * until access\n"
             "control is configured, then none)"},
    {.name = "cors-origin",
     .arg = "LIST",
     .type = HR_OPT_STR,
     .offset = F(io.allowed_origins),
     .valid = valid_origins,
     .want = "--cors-origin wants *, none or comma-separated origins "
             "(scheme://host[:port], no path)",
     .help = "the old name of --allowed-origins (deprecated)"},
    {.name = "app",
     .arg = "NAME",
     .type = HR_OPT_STR,
     .offset = F(app),
     .def_str = "chat",
     .valid = valid_app,
     .want = "--app wants chat, conformance-eio or conformance-sio",
     .help = "{} (default: the tutorial's chat server),\n"
             "conformance-eio or conformance-sio (the apps the official\n"
             "Engine.IO / Socket.IO test suites expect)"},
    {.name = "quiet",
     .short_name = 'q',
     .type = HR_OPT_FLAG,
     .offset = F(io.quiet),
     .help = "log errors only"},

    {.name = "path",
     .arg = "P",
     .type = HR_OPT_STR,
     .offset = F(io.path),
     .def_str = "/socket.io/",
     .valid = valid_path,
     .want = "--path wants an absolute path such as /socket.io/",
     .section = "Socket.IO (times in milliseconds):",
     .help = "Socket.IO path (default {})"},
    {.name = "ping-interval",
     .arg = "MS",
     .type = HR_OPT_U32,
     .offset = F(io.ping_interval_ms),
     .def = 25000,
     .min = 1,
     .max = 3600000,
     .want = "--ping-interval wants milliseconds from 1 to 3600000",
     .help = "heartbeat interval (default {})"},
    {.name = "ping-timeout",
     .arg = "MS",
     .type = HR_OPT_U32,
     .offset = F(io.ping_timeout_ms),
     .def = 20000,
     .min = 1,
     .max = 3600000,
     .want = "--ping-timeout wants milliseconds from 1 to 3600000",
     .help = "a missing pong closes the session after it (default {})"},
    {.name = "max-payload",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(io.max_payload),
     .def = 1000000,
     .min = 64,
     .max = 1ull << 30,
     .want = "--max-payload wants bytes from 64 to 1 GiB",
     .help = "one polling POST or WebSocket message (default {})"},
    {.name = "recovery-window",
     .arg = "MS",
     .type = HR_OPT_U32,
     .offset = F(io.recovery_window_ms),
     .def = 120000,
     .max = 86400000,
     .want = "--recovery-window wants milliseconds up to 86400000",
     .help = "connection state recovery window, 0 for off (default {})"},
    {.name = "connect-timeout",
     .arg = "MS",
     .type = HR_OPT_U32,
     .offset = F(io.connect_timeout_ms),
     .def = 45000,
     .min = 1,
     .max = 86400000,
     .want = "--connect-timeout wants milliseconds from 1 to 86400000",
     .help = "close a client that joins no namespace by then (default {})"},

    {.name = "store",
     .arg = "sqlite|memory",
     .type = HR_OPT_STR,
     .offset = F(io.store),
     .def_str = "sqlite",
     .valid = valid_store,
     .want = "--store wants memory or sqlite",
     .section = "Channels (/sse, /lp, /poll, /pub; times in seconds):",
     .help = "where channel history lives (default {}: durable)"},
    {.name = "data",
     .arg = "DIR",
     .type = HR_OPT_STR,
     .offset = F(io.data_dir),
     .def_str = "data",
     .help = "directory of the sqlite store's herald.db (default {},\ncreated if missing)"},
    {.name = "history",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(history.max_messages),
     .def = 10000,
     .min = 1,
     .max = 10000000,
     .want = "--history wants a number from 1 to 10000000",
     .help = "messages kept per channel (default {})"},
    {.name = "history-bytes",
     .arg = "N",
     .type = HR_OPT_SIZE,
     .offset = F(history.max_bytes),
     .def = 16u << 20,
     .min = 1024,
     .max = 1ull << 34,
     .want = "--history-bytes wants bytes from 1024",
     .help = "payload bytes kept per channel (default {})"},
    {.name = "history-age",
     .arg = "S",
     .type = HR_OPT_MS_U64,
     .offset = F(history.max_age_ms),
     .def = 0,
     .flags = HR_OPT_ZERO_OK,
     .want = "--history-age wants seconds, or 0",
     .help = "drop history older than this, 0 for no limit (default {})"},
    {.name = "history-cache",
     .arg = "N",
     .type = HR_OPT_SIZE,
     .offset = F(history.cache_bytes),
     .def = 64u << 20,
     .min = 1u << 20,
     .max = 1ull << 40,
     .want = "--history-cache wants bytes from 1048576",
     .help = "bytes of recent history cached in memory, all channels\n"
             "together (default {}); older reads go to the store;\n"
             "with --store memory this bounds all history kept"},
    {.name = "channel-policy",
     .arg = "P=X",
     .type = HR_OPT_POLICY,
     .want = "--channel-policy wants PATTERN=disconnect|skip|coalesce",
     .help = "slow readers of channels matching glob P: disconnect\n"
             "(default), skip (gap notice) or coalesce (latest only);\n"
             "repeatable, first match wins: --channel-policy 'user:*=coalesce'"},
    {.name = "lp-timeout",
     .arg = "S",
     .type = HR_OPT_MS_U32,
     .offset = F(lp_timeout_ms),
     .def = 30000,
     .want = "--lp-timeout wants seconds > 0",
     .help = "a long-poll with nothing new answers empty after this (default {})"},
    {.name = "sse-heartbeat",
     .arg = "S",
     .type = HR_OPT_MS_U32,
     .offset = F(sse_heartbeat_ms),
     .def = 15000,
     .want = "--sse-heartbeat wants seconds > 0",
     .help = "comment line sent on idle event streams (default {})"},

    {.name = "max-head",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(limits.max_head),
     .def = 16 * 1024,
     .min = 256,
     .max = 1 << 20,
     .want = "--max-head wants bytes from 256 to 1048576",
     .section = "Limits (sizes in bytes, times in seconds; decimals allowed):",
     .help = "request line + headers (default {}; over: 431)"},
    {.name = "max-body",
     .arg = "N",
     .type = HR_OPT_U64,
     .offset = F(limits.max_body),
     .def = 1024 * 1024,
     .max = 1ull << 32,
     .want = "--max-body wants bytes up to 4 GiB",
     .help = "request body (default {}; over: 413)"},
    {.name = "header-timeout",
     .arg = "S",
     .type = HR_OPT_MS_U64,
     .offset = F(limits.header_timeout_ms),
     .def = 10000,
     .want = "--header-timeout wants seconds > 0",
     .help = "time to send a whole request head (default {}; then 408)"},
    {.name = "body-timeout",
     .arg = "S",
     .type = HR_OPT_MS_U64,
     .offset = F(limits.body_timeout_ms),
     .def = 30000,
     .want = "--body-timeout wants seconds > 0",
     .help = "time to send a request body (default {})"},
    {.name = "idle-timeout",
     .arg = "S",
     .type = HR_OPT_MS_U64,
     .offset = F(limits.idle_timeout_ms),
     .def = 30000,
     .want = "--idle-timeout wants seconds > 0",
     .help = "keep-alive connection without a request (default {})"},
    {.name = "ws-max-message",
     .arg = "N",
     .type = HR_OPT_U64,
     .offset = F(limits.ws_max_message),
     .def = 16 * 1024 * 1024,
     .min = 125,
     .max = 1ull << 31,
     .want = "--ws-max-message wants bytes from 125 to 2 GiB",
     .help = "one WebSocket message (default {}; over: close 1009)\n"
             "(/ws/{channel}: --max-body; Socket.IO: --max-payload)"},
    {.name = "ws-message-timeout",
     .arg = "S",
     .type = HR_OPT_MS_U64,
     .offset = F(limits.ws_message_timeout_ms),
     .def = 30000,
     .want = "--ws-message-timeout wants seconds > 0",
     .help = "a begun WebSocket message must be complete by then\n(default {}; then close 1008)"},
    {.name = "close-timeout",
     .arg = "S",
     .type = HR_OPT_MS_U64,
     .offset = F(limits.close_timeout_ms),
     .def = 5000,
     .want = "--close-timeout wants seconds > 0",
     .help = "wait for a peer to finish closing (default {})"},
    {.name = "max-queued",
     .arg = "N",
     .type = HR_OPT_U64,
     .offset = F(limits.max_queued),
     .def = 4 * 1024 * 1024,
     .min = 1024,
     .max = 1ull << 32,
     .want = "--max-queued wants bytes from 1024 to 4 GiB",
     .help = "output queued per connection (default {});\n"
             "a peer over it is paused (replies); a reader of\n"
             "broadcasts follows its channel's --channel-policy"},
    {.name = "max-connections",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(limits.max_connections),
     .def = 100000,
     .min = 1,
     .max = 10000000,
     .want = "--max-connections wants a number from 1 to 10000000",
     .help = "connections at once (default {}, lowered to fit\n"
             "the open-file limit); further ones are closed at accept"},
    {.name = "workers",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(io.workers),
     .def = 0,
     .max = 64,
     .want = "--workers wants a number up to 64 (0: one per core)",
     .help = "event loops, each on its own thread, sharing the\n"
             "port (SO_REUSEPORT) and the channels (default {}:\n"
             "one per core)"},
    {.name = "tls-cert",
     .arg = "FILE",
     .type = HR_OPT_STR,
     .offset = F(tls_cert),
     .help = "serve HTTPS and WSS only, with this certificate (PEM,\n"
             "the chain after it); needs --tls-key; reloaded on SIGHUP"},
    {.name = "tls-key",
     .arg = "FILE",
     .type = HR_OPT_STR,
     .offset = F(tls_key),
     .help = "the private key of --tls-cert (PEM, not encrypted)"},
    {.name = "io-uring",
     .type = HR_OPT_FLAG,
     .offset = F(limits.io_uring),
     .help = "send each loop turn's output with one io_uring\n"
             "submission instead of a system call per connection\n"
             "(needs a build with liburing and a kernel that allows it)"},
    {.name = "max-connections-per-ip",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(limits.max_connections_per_ip),
     .def = 256,
     .max = 10000000,
     .want = "--max-connections-per-ip wants a number up to 10000000 (0: no limit)",
     .help = "connections at once from one client address\n"
             "(default {}, 0 for no limit); behind a reverse proxy\n"
             "or a large NAT clients share an address: raise it"},
    {.name = "max-lp-per-ip",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(limits.max_lp_per_ip),
     .def = 32,
     .max = 10000000,
     .want = "--max-lp-per-ip wants a number up to 10000000 (0: no limit)",
     .help = "long-polls held at once per client address (/lp and\n"
             "Engine.IO polling; default {}, 0 for no limit; over: 429)"},
    {.name = "max-msg-rate",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(limits.max_msg_rate),
     .def = 100,
     .max = HR_RATE_MAX,
     .want = "--max-msg-rate wants messages a second up to 1000000 (0: no limit)",
     .help = "messages a second one client may send on a WebSocket\n"
             "(/ws/{channel}, /echo) or Socket.IO session (default {},\n"
             "0 for no limit); over: dropped with an error, closed if\n"
             "it goes on for 3 s (1008, Socket.IO disconnect)"},
    {.name = "max-msg-burst",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(limits.max_msg_burst),
     .def = 200,
     .min = 1,
     .max = HR_RATE_MAX,
     .want = "--max-msg-burst wants a number from 1 to 1000000",
     .help = "messages one client may send at once above that rate\n(default {})"},
    {.name = "publish-rate",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(publish.rate),
     .def = 0,
     .max = HR_RATE_MAX,
     .want = "--publish-rate wants publishes a second up to 1000000 (0: no limit)",
     .help = "publishes a second per publisher (its address) over\n"
             "POST /pub, /ws/{channel} and Socket.IO, all workers\n"
             "together (default {}: none, or 50 once access control\n"
             "is configured); over: 429 with Retry-After"},
    {.name = "publish-burst",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(publish.burst),
     .def = 0,
     .min = 1,
     .max = HR_RATE_MAX,
     .want = "--publish-burst wants a number from 1 to 1000000",
     .help = "publishes at once above that rate (default: twice it)"},
    {.name = "max-channels",
     .arg = "N",
     .type = HR_OPT_U32,
     .offset = F(max_channels),
     .def = 64,
     .max = 1000000,
     .want = "--max-channels wants a number up to 1000000 (0: no limit)",
     .help = "channel rooms one Socket.IO socket may be in\n(default {}, 0 for no limit)"},
    {.name = "max-memory",
     .arg = "N",
     .type = HR_OPT_U64,
     .offset = F(limits.max_memory),
     .def = HR_MEMORY_AUTO,
     .min = 1u << 20,
     .max = UINT64_MAX - 1,
     .flags = HR_OPT_ZERO_OK,
     .shown = hr_budget_default,
     .want = "--max-memory wants bytes: 0 (no limit) or at least 1048576",
     .help = "memory budget for queued output, message assembly,\n"
             "request bodies, history cache and publishes in flight;\n"
             "over it the largest output queues are shed (their\n"
             "slow-consumer policy) and publishes get 503; 0 for\n"
             "no limit (default: half of RAM or of the cgroup's\n"
             "memory limit, here {})"},

    {.name = "jwt-secret",
     .arg = "S",
     .type = HR_OPT_STR,
     .offset = F(auth.jwt_secret),
     .section = "Access control (docs/security.md):",
     .help = "accept tokens (JWT) signed HS256 with this secret\n"
             "(32 bytes or more; or set HERALD_JWT_SECRET)"},
    {.name = "jwt-public-key",
     .arg = "FILE",
     .type = HR_OPT_STR,
     .offset = F(auth.jwt_public_key_file),
     .help = "accept tokens signed RS256 or ES256 (P-256) by the\n"
             "private half of this PEM public key"},
    {.name = "publish-key",
     .arg = "KEY",
     .type = HR_OPT_STR,
     .offset = F(auth.publish_key),
     .help = "backends publishing with Authorization: Bearer KEY may\n"
             "publish on any channel (16+ characters; or set\n"
             "HERALD_PUBLISH_KEY)"},
    {.name = "channel-rule",
     .arg = "'P R W'",
     .type = HR_OPT_RULE,
     .want = "--channel-rule wants 'PATTERN READ PUBLISH', each of all|token|owner|none",
     .help = "who may read (R) and publish (W) channels matching P:\n"
             "all, token (any valid one), owner (a token whose sub\n"
             "is P's {sub} part) or none (token grants, publish key);\n"
             "repeatable, first match wins: --channel-rule 'news:* all none';\n"
             "with a token key 'user:{sub} owner none' is built in"},
    {.name = "token-cookie",
     .arg = "NAME",
     .type = HR_OPT_STR,
     .offset = F(auth.cookie),
     .def_str = HR_AUTH_COOKIE_DEFAULT,
     .help = "the cookie a token may come in (default {})"},
    {.name = "dev-tokens",
     .type = HR_OPT_FLAG,
     .offset = F(dev_tokens),
     .help = "DEVELOPMENT ONLY: GET /dev/token?sub=NAME hands anyone\n"
             "a one-hour token for any user (needs --jwt-secret)"},

    {.name = "shutdown-timeout",
     .arg = "S",
     .type = HR_OPT_MS_U32,
     .offset = F(shutdown_timeout_ms),
     .def = 10000,
     .flags = HR_OPT_ZERO_OK,
     .want = "--shutdown-timeout wants seconds >= 0",
     .section = "Stopping and restarting (README: Operations; times in seconds):",
     .help = "on SIGTERM or SIGINT herald stops accepting, tells every\n"
             "client to reconnect, sends what is queued and commits\n"
             "the store; connections still open after this are\n"
             "closed (default {}; 0: wait for them all); a second\n"
             "signal stops at once"},
    {.name = "takeover",
     .type = HR_OPT_FLAG,
     .offset = F(takeover),
     .help = "zero-downtime restart: listen on the port another\n"
             "herald holds, wait for it to release the --data\n"
             "directory (send it SIGTERM), then serve: start the\n"
             "new herald with --takeover first, then stop the old"},
    {.name = "takeover-timeout",
     .arg = "S",
     .type = HR_OPT_MS_U32,
     .offset = F(takeover_timeout_ms),
     .def = 60000,
     .want = "--takeover-timeout wants seconds > 0",
     .help = "how long --takeover waits for the data directory\n"
             "(default {}; then it exits 1)"},

    {.name = "help", .short_name = 'h', .type = HR_OPT_HELP, .section = "", .help = "this text"},
    {.name = "version", .short_name = 'V', .type = HR_OPT_VERSION, .help = "the version"},
};
const size_t hr_config_table_len = sizeof hr_config_table / sizeof hr_config_table[0];

_Static_assert(sizeof hr_config_table / sizeof hr_config_table[0] <= 64,
               "herald_config.given has 64 bits");

static void *field(struct herald_config *cfg, const struct hr_opt *o)
{
    return (char *)cfg + o->offset;
}

/* A number into the entry's field (already checked against its range). */
static void set_number(struct herald_config *cfg, const struct hr_opt *o, uint64_t v)
{
    void *p = field(cfg, o);
    switch (o->type) {
    case HR_OPT_INT: *(int *)p = (int)v; break;
    case HR_OPT_U32:
    case HR_OPT_MS_U32: *(uint32_t *)p = (uint32_t)v; break;
    case HR_OPT_U64:
    case HR_OPT_MS_U64: *(uint64_t *)p = v; break;
    case HR_OPT_SIZE: *(size_t *)p = (size_t)v; break;
    default: break;
    }
}

void hr_config_init(struct herald_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < hr_config_table_len; i++) {
        const struct hr_opt *o = &hr_config_table[i];
        if (o->type == HR_OPT_STR)
            *(const char **)field(cfg, o) = o->def_str;
        else
            set_number(cfg, o, o->def);
    }
    cfg->auth.rules = cfg->rules;
}

void hr_config_copy(struct herald_config *dst, const struct herald_config *src)
{
    *dst = *src;
    for (uint32_t i = 0; i < dst->history.nrules; i++)
        dst->history.rules[i].pattern = dst->patterns[i];
    dst->auth.rules = dst->rules;
}

int hr_config_given(const struct herald_config *cfg, const char *name)
{
    for (size_t i = 0; i < hr_config_table_len; i++)
        if (strcmp(hr_config_table[i].name, name) == 0)
            return (cfg->given >> i) & 1;
    return 0;
}

int hr_config_secured(const struct herald_config *cfg)
{
    return cfg->auth.jwt_secret || cfg->auth.jwt_public_key_file || cfg->auth.publish_key ||
           cfg->auth.nrules;
}

void hr_config_quota_defaults(struct herald_config *cfg)
{
    if (!hr_config_given(cfg, "publish-rate"))
        cfg->publish.rate = hr_config_secured(cfg) ? HR_PUBLISH_RATE_SECURED : 0;
    if (!hr_config_given(cfg, "publish-burst")) {
        uint64_t b = 2ull * cfg->publish.rate;
        cfg->publish.burst = b > HR_RATE_MAX ? HR_RATE_MAX : b ? (uint32_t)b : 1;
    }
}

void hr_config_default_str(const struct hr_opt *o, char *out, size_t outlen)
{
    switch (o->type) {
    case HR_OPT_STR: snprintf(out, outlen, "%s", o->def_str ? o->def_str : ""); break;
    case HR_OPT_INT:
    case HR_OPT_U32:
    case HR_OPT_U64:
    case HR_OPT_SIZE: snprintf(out, outlen, "%" PRIu64, o->shown ? o->shown() : o->def); break;
    case HR_OPT_MS_U32:
    case HR_OPT_MS_U64: snprintf(out, outlen, "%g", o->def / 1000.0); break;
    default: snprintf(out, outlen, "%s", ""); break;
    }
}

void hr_config_usage(FILE *out)
{
    fprintf(out,
            "Usage: herald [options]\n"
            "A real-time push server: Socket.IO (Engine.IO v4: long-polling, WebSocket), RFC 6455\n"
            "WebSocket and static files over HTTP/1.1.\n");
    for (size_t i = 0; i < hr_config_table_len; i++) {
        const struct hr_opt *o = &hr_config_table[i];
        if (o->section)
            fprintf(out, "\n%s%s", o->section, o->section[0] ? "\n" : "");
        char flag[64], def[32];
        snprintf(flag, sizeof flag, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        hr_config_default_str(o, def, sizeof def);
        fprintf(out, "  %-22s  ", flag);
        /* the text, each line after the first under the first, {} the default */
        for (const char *h = o->help; *h; h++) {
            if (h[0] == '{' && h[1] == '}') {
                fputs(def, out);
                h++;
            } else if (*h == '\n') {
                fprintf(out, "\n%26s", "");
            } else {
                fputc(*h, out);
            }
        }
        fputc('\n', out);
    }
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (!*s || *s == '-')
        return HR_EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return HR_EINVAL;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, uint64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0.001 || v > SECONDS_MAX)
        return HR_EINVAL;
    *ms = (uint64_t)(v * 1000.0 + 0.5);
    return 0;
}

/* --channel-policy PATTERN=POLICY: the pattern is copied into cfg, the rule points at it. */
static int add_policy(struct herald_config *cfg, const char *arg, char *err, size_t errlen)
{
    const char *eq = strrchr(arg, '=');
    int pol = eq ? hr_policy_parse(eq + 1) : -1;
    size_t plen = eq ? (size_t)(eq - arg) : 0;
    if (!eq || plen == 0 || plen > HR_CHANNEL_NAME_MAX || pol < 0)
        return HR_EINVAL;
    if (cfg->history.nrules == HR_POLICY_RULES_MAX) {
        snprintf(err, errlen, "--channel-policy: at most %d, not '%s'", HR_POLICY_RULES_MAX, arg);
        return HR_ETOOBIG;
    }
    char *pat = cfg->patterns[cfg->history.nrules];
    memcpy(pat, arg, plen);
    pat[plen] = 0;
    cfg->history.rules[cfg->history.nrules++] = (struct hr_policy_rule){pat, (uint8_t)pol};
    return 0;
}

static int in_range(const struct hr_opt *o, uint64_t v)
{
    return (v == 0 && (o->flags & HR_OPT_ZERO_OK)) || (v >= o->min && v <= o->max);
}

/* One value into its field: 0, or HR_EINVAL for a value the entry does not accept. */
static int set_value(struct herald_config *cfg, const struct hr_opt *o, const char *arg, char *err,
                     size_t errlen)
{
    uint64_t v;
    switch (o->type) {
    case HR_OPT_STR:
        if (o->valid && !o->valid(cfg, arg))
            return HR_EINVAL;
        *(const char **)field(cfg, o) =
            (o->flags & HR_OPT_NONE_NULL) && strcmp(arg, "none") == 0 ? NULL : arg;
        return 0;
    case HR_OPT_FLAG: *(int *)field(cfg, o) = 1; return 0;
    case HR_OPT_INT:
    case HR_OPT_U32:
    case HR_OPT_U64:
    case HR_OPT_SIZE:
        if (parse_u64(arg, &v) < 0 || !in_range(o, v))
            return HR_EINVAL;
        set_number(cfg, o, v);
        return 0;
    case HR_OPT_MS_U32:
    case HR_OPT_MS_U64:
        if ((o->flags & HR_OPT_ZERO_OK) && strcmp(arg, "0") == 0)
            v = 0;
        else if (parse_seconds(arg, &v) < 0)
            return HR_EINVAL;
        set_number(cfg, o, v);
        return 0;
    case HR_OPT_POLICY: return add_policy(cfg, arg, err, errlen);
    case HR_OPT_RULE: {
        struct hr_rule r;
        if (cfg->auth.nrules == HR_AUTH_RULES_MAX) {
            snprintf(err, errlen, "--channel-rule: at most %d, not '%s'", HR_AUTH_RULES_MAX, arg);
            return HR_ETOOBIG;
        }
        if (hr_auth_rule_parse(arg, &r) < 0)
            return HR_EINVAL;
        cfg->rules[cfg->auth.nrules++] = arg;
        return 0;
    }
    default: return HR_EINVAL;
    }
}

int hr_config_parse(struct herald_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    struct option longopts[sizeof hr_config_table / sizeof hr_config_table[0] + 1];
    char shortopts[2 * sizeof hr_config_table / sizeof hr_config_table[0] + 2], *sp = shortopts;
    *sp++ = ':'; /* a missing value is reported as ':' */
    for (size_t i = 0; i < hr_config_table_len; i++) {
        const struct hr_opt *o = &hr_config_table[i];
        /* getopt_long's val: the entry's index past every char, so short and long agree */
        longopts[i] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL,
                                      (int)(256 + i)};
        if (o->short_name) {
            *sp++ = o->short_name;
            if (o->arg)
                *sp++ = ':';
        }
    }
    longopts[hr_config_table_len] = (struct option){0, 0, 0, 0};
    *sp = 0;

    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (ch == ':') {
            snprintf(err, errlen, "option %s needs a value", argv[optind - 1]);
            return HR_EINVAL;
        }
        size_t i = 0;
        if (ch >= 256)
            i = (size_t)ch - 256;
        else
            while (i < hr_config_table_len && hr_config_table[i].short_name != ch)
                i++;
        if (ch == '?' || i >= hr_config_table_len) {
            snprintf(err, errlen, "unknown option %s (see --help)", argv[optind - 1]);
            return HR_EINVAL;
        }
        const struct hr_opt *o = &hr_config_table[i];
        if (o->type == HR_OPT_HELP) {
            hr_config_usage(stdout);
            return 1;
        }
        if (o->type == HR_OPT_VERSION) {
            printf("herald %s\n", HERALD_VERSION);
            return 1;
        }
        err[0] = 0;
        if (set_value(cfg, o, optarg, err, errlen) < 0) {
            if (!err[0])
                snprintf(err, errlen, "%s, not '%s'", o->want, optarg);
            return HR_EINVAL;
        }
        cfg->given |= 1ull << i;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
        return HR_EINVAL;
    }
    if (hr_config_given(cfg, "allowed-origins") && hr_config_given(cfg, "cors-origin")) {
        snprintf(err, errlen, "--cors-origin is the old name of --allowed-origins: give one");
        return HR_EINVAL;
    }
    hr_config_quota_defaults(cfg);
    if (!cfg->tls_cert != !cfg->tls_key) {
        snprintf(err, errlen, "%s",
                 cfg->tls_cert ? "--tls-cert needs --tls-key" : "--tls-key needs --tls-cert");
        return HR_EINVAL;
    }
    if (cfg->tls_cert && cfg->limits.io_uring) {
        /* TLS output is encrypted and sent by OpenSSL, one record at a time */
        snprintf(err, errlen, "--io-uring does not apply to TLS: use one or the other");
        return HR_EINVAL;
    }
    /* a polling POST may carry a whole payload, unless the body limit was set lower */
    if (!hr_config_given(cfg, "max-body") && cfg->limits.max_body < cfg->io.max_payload)
        cfg->limits.max_body = cfg->io.max_payload;
    /* secrets from the environment keep them out of the process list */
    if (!cfg->auth.jwt_secret && getenv("HERALD_JWT_SECRET") && *getenv("HERALD_JWT_SECRET"))
        cfg->auth.jwt_secret = getenv("HERALD_JWT_SECRET");
    if (!cfg->auth.publish_key && getenv("HERALD_PUBLISH_KEY") && *getenv("HERALD_PUBLISH_KEY"))
        cfg->auth.publish_key = getenv("HERALD_PUBLISH_KEY");
    return 0;
}
