/* config.c - herald's options: the table below is the one place a flag, its default, the
 * values it accepts and its --help line are written; the same entry is an environment variable
 * (HERALD_MAX_MSG_RATE) and a key of a --config JSON file, read with the same value parser. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/budget.h"
#include "core/error.h"
#include "core/log.h"
#include "http/origin.h"
#include "ops.h"
#include "paths.h"

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

static int valid_store_sync(const struct herald_config *cfg, const char *v)
{
    return strcmp(v, "full") == 0 || strcmp(v, "normal") == 0;
}

static int valid_admin_password(const struct herald_config *cfg, const char *v)
{
    return strlen(v) >= 8;
}

static int valid_admin_user(const struct herald_config *cfg, const char *v)
{
    return v[0] != 0;
}

static int valid_log_level(const struct herald_config *cfg, const char *v)
{
    return hr_log_level_parse(v) >= 0;
}

static int valid_log_format(const struct herald_config *cfg, const char *v)
{
    return hr_log_format_parse(v) >= 0;
}

static int valid_metrics_allow(const struct herald_config *cfg, const char *v)
{
    struct hr_ops_allow a;
    char err[160];
    return hr_ops_allow_parse(&a, v, err, sizeof err) == 0;
}

static int valid_metrics_token(const struct herald_config *cfg, const char *v)
{
    /* the token travels in a header: printable, no spaces; short ones are guessed */
    if (strlen(v) < 16)
        return 0;
    for (const char *p = v; *p; p++)
        if (*p <= ' ' || *p > '~')
            return 0;
    return 1;
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
     .section = "Server:",
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
     .def_found = hr_paths_public,
     .help = "directory of static files served at / (default {};\n"
             "installed as PREFIX/bin/herald: PREFIX/share/herald/public;\n"
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
     .flags = HR_OPT_ALIAS,
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
     .def_found = hr_paths_data,
     .help = "directory of the sqlite store's herald.db (default {},\n"
             "created if missing; installed: $STATE_DIRECTORY, else\n"
             "/var/lib/herald, else ~/.local/state/herald when that\n"
             "is not writable)"},
    {.name = "store-sync",
     .arg = "MODE",
     .type = HR_OPT_STR,
     .offset = F(store_sync),
     .def_str = "full",
     .valid = valid_store_sync,
     .want = "--store-sync wants full or normal",
     .help = "sqlite store: full (default) fsyncs every batch of\n"
             "commits before acknowledging its publishes, so not\n"
             "even a power loss loses an acknowledged publish;\n"
             "normal does not: a crash of herald (kill -9) loses\n"
             "nothing, a power loss may lose the last commits"},
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
     .flags = HR_OPT_SECRET,
     .section = "Access control (docs/security.md):",
     .help = "accept tokens (JWT) signed HS256 with this secret\n"
             "(32 bytes or more; better HERALD_JWT_SECRET or the\n"
             "file than a flag, which ps shows)"},
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
     .flags = HR_OPT_SECRET,
     .help = "backends publishing with Authorization: Bearer KEY may\n"
             "publish on any channel (16+ characters; better\n"
             "HERALD_PUBLISH_KEY or the file than a flag)"},
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
    {.name = "metrics-allow",
     .arg = "LIST",
     .type = HR_OPT_STR,
     .offset = F(metrics_allow),
     .valid = valid_metrics_allow,
     .want = "--metrics-allow wants any, none, loopback, addresses or CIDR blocks "
             "(10.0.0.0/8, fd00::/8), comma-separated",
     .section = "Operations (logs; GET /metrics, /healthz, /readyz):",
     .help = "who may scrape GET /metrics: loopback, any, none, or\n"
             "addresses and CIDR blocks, comma-separated (default:\n"
             "loopback, or any once --metrics-token is set);\n"
             "/healthz and /readyz answer everyone"},
    {.name = "metrics-token",
     .arg = "TOKEN",
     .type = HR_OPT_STR,
     .offset = F(metrics_token),
     .flags = HR_OPT_SECRET,
     .valid = valid_metrics_token,
     .want = "--metrics-token wants 16 or more printable characters, no spaces",
     .help = "GET /metrics also wants Authorization: Bearer TOKEN\n"
             "(16+ characters; default: none)"},
    {.name = "quiet",
     .short_name = 'q',
     .type = HR_OPT_FLAG,
     .offset = F(io.quiet),
     .help = "log errors only (--log-level error)"},
    {.name = "log-level",
     .arg = "L",
     .type = HR_OPT_STR,
     .offset = F(log_level),
     .def_str = "info",
     .valid = valid_log_level,
     .want = "--log-level wants error, warn, info or debug",
     .help = "error, warn, info or debug (default {})"},
    {.name = "log-format",
     .arg = "F",
     .type = HR_OPT_STR,
     .offset = F(log_format),
     .def_str = "text",
     .valid = valid_log_format,
     .want = "--log-format wants text or json",
     .help = "text (for people, default) or json (one object per\n"
             "line: time, level, msg; access lines add type, remote,\n"
             "method, target, status, length, ms)"},
    {.name = "access-log",
     .type = HR_OPT_FLAG,
     .offset = F(access_log),
     .help = "one log line per HTTP answer, WebSocket and stream (at its\n"
             "start); token query parameters are redacted"},

    {.name = "admin-password",
     .arg = "PW",
     .type = HR_OPT_STR,
     .offset = F(admin_password),
     .flags = HR_OPT_SECRET,
     .valid = valid_admin_password,
     .want = "--admin-password wants 8 characters or more",
     .section = "Socket.IO Admin UI (off by default; README, Admin UI):",
     .help = "serve the Admin UI at /admin/ and its namespace /admin,\n"
             "logging in with this password (8+ characters; or set\n"
             "HERALD_ADMIN_PASSWORD); use TLS when it is not on loopback"},
    {.name = "admin-user",
     .arg = "NAME",
     .type = HR_OPT_STR,
     .offset = F(admin_user),
     .valid = valid_admin_user,
     .want = "--admin-user wants a name",
     .def_str = "admin",
     .help = "the Admin UI's user name (default {})"},
    {.name = "admin-ui-dir",
     .arg = "DIR",
     .type = HR_OPT_STR,
     .offset = F(admin_ui_dir),
     .def_str = "web/node_modules/@socket.io/admin-ui/ui/dist",
     .def_found = hr_paths_admin_ui,
     .help = "the Admin UI's static build (npm's @socket.io/admin-ui,\n"
             "installed by scripts/setup.sh; an installed herald's is\n"
             "PREFIX/share/herald/admin-ui), default\n{}"},
    {.name = "config",
     .arg = "FILE",
     .type = HR_OPT_CONFIG,
     .offset = F(config_file),
     .want = "--config wants a file",
     .section = "Configuration:",
     .help = "read options from this JSON file, {\"port\": 3000, ...}\n"
             "(keys: the flags' names; or set HERALD_CONFIG)"},
    {.name = "print-config",
     .type = HR_OPT_PRINT,
     .offset = F(print_config),
     .help = "print the effective configuration as such a file\n"
             "(secrets as " HR_CONFIG_REDACTED "), then exit"},
    {.name = "help", .short_name = 'h', .type = HR_OPT_HELP, .help = "this text"},
    {.name = "version", .short_name = 'V', .type = HR_OPT_VERSION, .help = "the version"},
};
const size_t hr_config_table_len = sizeof hr_config_table / sizeof hr_config_table[0];

_Static_assert(sizeof hr_config_table / sizeof hr_config_table[0] <= HR_CONFIG_OPTS_MAX,
               "struct hr_optset holds HR_CONFIG_OPTS_MAX options");

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
        if (o->type == HR_OPT_STR) {
            const char *found = o->def_found ? o->def_found() : NULL;
            *(const char **)field(cfg, o) = found ? found : o->def_str;
        } else
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
            return hr_optset_has(&cfg->given, i);
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
    case HR_OPT_STR: {
        const char *found = o->def_found ? o->def_found() : NULL;
        snprintf(out, outlen, "%s", found ? found : o->def_str ? o->def_str : "");
        break;
    }
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
            "WebSocket and static files over HTTP/1.1.\n"
            "\n"
            "Every option can also be set by an environment variable, HERALD_ and its name in\n"
            "capitals with _ for - (HERALD_MAX_MSG_RATE=50; switches: 1 or 0; repeatable\n"
            "options: a value a line), or by a key of a --config file ({\"max-msg-rate\": 50});\n"
            "a flag wins over a variable, a variable over the file, the file over the default.\n");
    for (size_t i = 0; i < hr_config_table_len; i++) {
        const struct hr_opt *o = &hr_config_table[i];
        if (o->section)
            fprintf(out, "\n%s%s", o->section, o->section[0] ? "\n" : "");
        char flag[64], def[4096]; /* a default may be a path */
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
    case HR_OPT_CONFIG: *(const char **)field(cfg, o) = arg; return 0;
    case HR_OPT_PRINT: *(int *)field(cfg, o) = 1; return 0;
    case HR_OPT_FLAG: /* the command line gives none; the environment and files 1 or 0 */
        *(int *)field(cfg, o) = !arg || strcmp(arg, "0") != 0;
        return 0;
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

/* Strings read from a file or split from a variable live as long as the process: the
 * configuration points at them as it points into argv, and is copied into every worker. */
struct kept {
    struct kept *next;
    char s[];
};
static struct kept *kept;

static const char *keep(const char *s, size_t n)
{
    struct kept *k = malloc(sizeof(*k) + n + 1);
    if (!k)
        return NULL;
    memcpy(k->s, s, n);
    k->s[n] = 0;
    k->next = kept;
    kept = k;
    return k->s;
}

static size_t find(const char *name)
{
    size_t i = 0;
    while (i < hr_config_table_len && strcmp(hr_config_table[i].name, name) != 0)
        i++;
    return i;
}

static int repeatable(const struct hr_opt *o)
{
    return o->type == HR_OPT_POLICY || o->type == HR_OPT_RULE;
}

/* Options the environment may set (HERALD_CONFIG included); a file sets these but --config. */
static int env_ok(const struct hr_opt *o)
{
    return o->type != HR_OPT_HELP && o->type != HR_OPT_VERSION && o->type != HR_OPT_PRINT;
}

static int file_ok(const struct hr_opt *o)
{
    return env_ok(o) && o->type != HR_OPT_CONFIG;
}

void hr_config_env_name(const struct hr_opt *o, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "HERALD_%s", o->name);
    for (char *p = out + 7; n > 7 && *p; p++)
        *p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
}

/* One value of entry i from a source: the first value a source gives a repeatable option
 * replaces the lower sources' list (the highest source giving any wins as a whole). where
 * names the source in a refusal ("HERALD_PORT", "herald.json:3:11"); NULL: a flag. */
static int apply(struct herald_config *cfg, size_t i, const char *v, struct hr_optset *seen,
                 const char *where, char *err, size_t errlen)
{
    const struct hr_opt *o = &hr_config_table[i];
    if (!hr_optset_has(seen, i) && o->type == HR_OPT_POLICY)
        cfg->history.nrules = 0;
    if (!hr_optset_has(seen, i) && o->type == HR_OPT_RULE)
        cfg->auth.nrules = 0;
    char why[192];
    why[0] = 0;
    if (set_value(cfg, o, v, why, sizeof why) < 0) {
        const char *w = why[0] ? why : o->want ? o->want : "a bad value";
        int tail = !why[0] && !(o->flags & HR_OPT_SECRET); /* a secret is never echoed */
        if (where && strncmp(w, "--", 2) == 0)
            w += 2; /* "port wants ..." outside the command line */
        snprintf(err, errlen, "%s%s%s%s%s%s", where ? where : "", where ? ": " : "", w,
                 tail ? ", not '" : "", tail ? v : "", tail ? "'" : "");
        return HR_EINVAL;
    }
    hr_optset_add(seen, i);
    hr_optset_add(&cfg->given, i);
    return 0;
}

/* --cors-origin is --allowed-origins under its old name: one source gives one or the other. */
static int one_name(const struct hr_optset *seen, const char *where, char *err, size_t errlen)
{
    if (hr_optset_has(seen, find("allowed-origins")) && hr_optset_has(seen, find("cors-origin"))) {
        snprintf(err, errlen, "%s%s--cors-origin is the old name of --allowed-origins: give one",
                 where, where[0] ? ": " : "");
        return HR_EINVAL;
    }
    return 0;
}

/* A refusal is one line on stderr whatever the value held: control characters as '?'. */
static void one_line(char *err)
{
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* HERALD_* variables. One that names no option is ignored with a warning naming it, not
 * refused: the environment is shared with other programs (Kubernetes gives every pod
 * HERALD_SERVICE_HOST and HERALD_PORT_3000_TCP for a service called herald, scripts keep their
 * own knobs), and a misspelt one is still said out loud. Empty ones count as unset; a
 * repeatable option's values are lines. */
static int load_env(struct herald_config *cfg, char *err, size_t errlen)
{
    char **env = cfg->env ? cfg->env : environ;
    struct hr_optset seen = {{0}};
    for (char **e = env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "HERALD_", 7) != 0 || !eq)
            continue;
        char name[64], want[64];
        size_t nlen = (size_t)(eq - *e), i = 0;
        snprintf(name, sizeof name, "%.*s", (int)(nlen < sizeof name ? nlen : sizeof name - 1), *e);
        for (; i < hr_config_table_len; i++) {
            hr_config_env_name(&hr_config_table[i], want, sizeof want);
            if (env_ok(&hr_config_table[i]) && nlen == strlen(want) && strcmp(name, want) == 0)
                break;
        }
        if (i == hr_config_table_len) {
            hr_warn("%s%s names no option; ignored (see herald --help)", name,
                    nlen < sizeof name ? "" : "...");
            continue;
        }
        const struct hr_opt *o = &hr_config_table[i];
        const char *v = eq + 1;
        if (!*v || o->type == HR_OPT_CONFIG) /* HERALD_CONFIG was read first */
            continue;
        if (o->type == HR_OPT_FLAG) {
            int on = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
            if (!on && strcmp(v, "0") != 0 && strcmp(v, "false") != 0) {
                snprintf(err, errlen, "%s wants 1, 0, true or false, not '%s'", name, v);
                return HR_EINVAL;
            }
            v = on ? "1" : "0";
        }
        if (!repeatable(o)) {
            if (apply(cfg, i, v, &seen, name, err, errlen) < 0)
                return HR_EINVAL;
            continue;
        }
        for (const char *line = v; *line;) {
            size_t n = strcspn(line, "\n");
            size_t m = n && line[n - 1] == '\r' ? n - 1 : n;
            const char *one = m ? keep(line, m) : NULL;
            if (m && !one) {
                snprintf(err, errlen, "out of memory");
                return HR_ENOMEM;
            }
            if (one && apply(cfg, i, one, &seen, name, err, errlen) < 0)
                return HR_EINVAL;
            line += n + (line[n] == '\n');
        }
    }
    cfg->by_env = seen;
    return one_name(&seen, "the environment", err, errlen);
}

/* A walk over a config file's text that jansson has accepted, for the line and column where
 * each top-level key and value starts (jansson keeps none). Columns count characters, as
 * jansson's do. Bounded by the text whatever it holds. */
struct scan {
    const char *s;
    size_t n, i;
    int line, col;
};

static int sc_more(const struct scan *sc)
{
    return sc->i < sc->n;
}

static void sc_next(struct scan *sc)
{
    if (sc->i >= sc->n)
        return;
    unsigned char c = (unsigned char)sc->s[sc->i++];
    if (c == '\n') {
        sc->line++;
        sc->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        sc->col++;
    }
}

static void sc_space(struct scan *sc)
{
    while (sc_more(sc) && sc->s[sc->i] && strchr(" \t\r\n", sc->s[sc->i]))
        sc_next(sc);
}

static int sc_string(struct scan *sc)
{
    if (!sc_more(sc) || sc->s[sc->i] != '"')
        return HR_EINVAL;
    sc_next(sc);
    while (sc_more(sc)) {
        char c = sc->s[sc->i];
        sc_next(sc);
        if (c == '\\')
            sc_next(sc);
        else if (c == '"')
            return 0;
    }
    return HR_EINVAL;
}

static int sc_value(struct scan *sc)
{
    if (!sc_more(sc))
        return HR_EINVAL;
    char c = sc->s[sc->i];
    if (c == '"')
        return sc_string(sc);
    if (c == '{' || c == '[') {
        int depth = 0;
        while (sc_more(sc)) {
            c = sc->s[sc->i];
            if (c == '"') {
                if (sc_string(sc) < 0)
                    return HR_EINVAL;
                continue;
            }
            sc_next(sc);
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return 0;
        }
        return HR_EINVAL;
    }
    size_t from = sc->i;
    while (sc_more(sc) && sc->s[sc->i] && !strchr(",}] \t\r\n", sc->s[sc->i]))
        sc_next(sc);
    return sc->i > from ? 0 : HR_EINVAL;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "a whole number";
    case JSON_REAL: return "a number with decimals";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return "null";
    }
}

/* A key for a one-line message: control characters and quotes as '?', long ones cut. */
static void printable(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    for (; *s && n + 4 < outlen; s++)
        out[n++] = (unsigned char)*s < 0x20 || *s == '"' || *s == 0x7f ? '?' : *s;
    if (*s)
        n += (size_t)snprintf(out + n, outlen - n, "...");
    out[n < outlen ? n : outlen - 1] = 0;
}

/* One top-level member of a config file: key at kpos, value at vpos ("FILE:LINE:COLUMN"). */
static int file_member(struct herald_config *cfg, const char *key, const json_t *v,
                       const char *kpos, const char *vpos, struct hr_optset *seen, char *err,
                       size_t errlen)
{
    size_t i = find(key);
    if (i == hr_config_table_len || !file_ok(&hr_config_table[i])) {
        char k[80];
        printable(key, k, sizeof k);
        snprintf(err, errlen, "%s: unknown option \"%s\"%s", kpos, k,
                 i == hr_config_table_len ? " (see herald --help)" : ": not in a file");
        return HR_EINVAL;
    }
    const struct hr_opt *o = &hr_config_table[i];
    const char *want = NULL;
    char num[64];
    if (json_is_null(v)) /* as if absent: what --print-config shows for "not set" */
        return 0;
    switch (o->type) {
    case HR_OPT_STR:
        if (!json_is_string(v)) {
            want = "a string";
            break;
        }
        if ((o->flags & HR_OPT_SECRET) && strcmp(json_string_value(v), HR_CONFIG_REDACTED) == 0) {
            snprintf(err, errlen,
                     "%s: %s is what --print-config shows in place of %s: give the secret", vpos,
                     HR_CONFIG_REDACTED, o->name);
            return HR_EINVAL;
        }
        const char *s = keep(json_string_value(v), json_string_length(v));
        if (!s) {
            snprintf(err, errlen, "out of memory");
            return HR_ENOMEM;
        }
        return apply(cfg, i, s, seen, vpos, err, errlen);
    case HR_OPT_FLAG:
        if (!json_is_boolean(v)) {
            want = "true or false";
            break;
        }
        return apply(cfg, i, json_is_true(v) ? "1" : "0", seen, vpos, err, errlen);
    case HR_OPT_INT:
    case HR_OPT_U32:
    case HR_OPT_U64:
    case HR_OPT_SIZE:
        if (!json_is_integer(v)) {
            want = "a whole number";
            break;
        }
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return apply(cfg, i, num, seen, vpos, err, errlen);
    case HR_OPT_MS_U32:
    case HR_OPT_MS_U64:
        if (json_is_integer(v))
            snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v))
            snprintf(num, sizeof num, "%.17g", json_real_value(v));
        else {
            want = "a number of seconds";
            break;
        }
        return apply(cfg, i, num, seen, vpos, err, errlen);
    case HR_OPT_POLICY:
    case HR_OPT_RULE: {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t k = 0; k < n; k++)
            if (!json_is_string(json_is_array(v) ? json_array_get(v, k) : v))
                want = "a string or an array of strings";
        if (want)
            break;
        /* the file's list, even empty, replaces the defaults */
        if (o->type == HR_OPT_POLICY)
            cfg->history.nrules = 0;
        else
            cfg->auth.nrules = 0;
        hr_optset_add(seen, i);
        hr_optset_add(&cfg->given, i);
        for (size_t k = 0; k < n; k++) {
            const json_t *e = json_is_array(v) ? json_array_get(v, k) : v;
            const char *one = keep(json_string_value(e), json_string_length(e));
            if (!one) {
                snprintf(err, errlen, "out of memory");
                return HR_ENOMEM;
            }
            if (apply(cfg, i, one, seen, vpos, err, errlen) < 0)
                return HR_EINVAL;
        }
        return 0;
    }
    default: want = "nothing"; break;
    }
    snprintf(err, errlen, "%s: %s wants %s, not %s", vpos, o->name, want, json_kind(v));
    return HR_EINVAL;
}

int hr_config_load_text(struct herald_config *cfg, const char *name, const char *text, size_t len,
                        char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", name, je.line > 0 ? je.line : 1,
                 je.column > 0 ? je.column : 1, je.text);
        one_line(err);
        return HR_EINVAL;
    }
    struct scan sc = {.s = text, .n = len, .line = 1, .col = 1};
    char kpos[160], vpos[160];
    struct hr_optset seen = {{0}};
    int rc = HR_EINVAL;
    sc_space(&sc);
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s:%d:%d: wants an object of options, {\"port\": 3000, ...}, not %s",
                 name, sc.line, sc.col, json_kind(root));
        goto out;
    }
    sc_next(&sc); /* { */
    for (;;) {
        sc_space(&sc);
        if (!sc_more(&sc))
            goto lost;
        if (sc.s[sc.i] == '}')
            break;
        if (sc.s[sc.i] == ',') {
            sc_next(&sc);
            continue;
        }
        snprintf(kpos, sizeof kpos, "%s:%d:%d", name, sc.line, sc.col);
        size_t from = sc.i;
        if (sc_string(&sc) < 0)
            goto lost;
        json_t *k = json_loadb(text + from, sc.i - from, JSON_DECODE_ANY, NULL);
        sc_space(&sc);
        if (!json_is_string(k) || !sc_more(&sc) || sc.s[sc.i] != ':') {
            json_decref(k);
            goto lost;
        }
        sc_next(&sc);
        sc_space(&sc);
        snprintf(vpos, sizeof vpos, "%s:%d:%d", name, sc.line, sc.col);
        const json_t *v = json_object_get(root, json_string_value(k));
        if (sc_value(&sc) < 0 || !v) {
            json_decref(k);
            goto lost;
        }
        rc = file_member(cfg, json_string_value(k), v, kpos, vpos, &seen, err, errlen);
        json_decref(k);
        if (rc < 0)
            goto out;
        rc = HR_EINVAL;
    }
    for (size_t k = 0; k < HR_CONFIG_OPTS_MAX / 64; k++)
        cfg->by_file.w[k] |= seen.w[k];
    rc = one_name(&seen, name, err, errlen);
    goto out;
lost: /* jansson accepted what this walk cannot follow: a bug here, refused all the same */
    snprintf(err, errlen, "%s:%d:%d: unexpected text", name, sc.line, sc.col);
out:
    json_decref(root);
    if (rc < 0)
        one_line(err);
    return rc;
}

static int load_file(struct herald_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *text = f ? malloc(HR_CONFIG_FILE_MAX + 1) : NULL;
    size_t n = text ? fread(text, 1, HR_CONFIG_FILE_MAX + 1, f) : 0;
    int e = errno;
    if (!f || !text || ferror(f)) {
        snprintf(err, errlen, "cannot read config file %s: %s", path,
                 strerror(f && !text ? ENOMEM : e));
        if (f)
            fclose(f);
        free(text);
        return HR_EINVAL;
    }
    fclose(f);
    int rc = HR_EINVAL;
    if (n > HR_CONFIG_FILE_MAX)
        snprintf(err, errlen, "config file %s: more than %u bytes", path, HR_CONFIG_FILE_MAX);
    else
        rc = hr_config_load_text(cfg, path, text, n, err, errlen);
    free(text);
    return rc;
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

    /* the flags are read first and applied last: the file they may name, then the
     * environment, come under them */
    struct flag {
        size_t i;
        const char *arg;
    } *flags = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*flags));
    size_t nflags = 0;
    const char *file = NULL;
    int ch, rc = HR_EINVAL;
    if (!flags) {
        snprintf(err, errlen, "out of memory");
        return HR_ENOMEM;
    }
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (ch == ':') {
            snprintf(err, errlen, "option %s needs a value", argv[optind - 1]);
            goto out;
        }
        size_t i = 0;
        if (ch >= 256)
            i = (size_t)ch - 256;
        else
            while (i < hr_config_table_len && hr_config_table[i].short_name != ch)
                i++;
        if (ch == '?' || i >= hr_config_table_len) {
            snprintf(err, errlen, "unknown option %s (see --help)", argv[optind - 1]);
            goto out;
        }
        const struct hr_opt *o = &hr_config_table[i];
        if (o->type == HR_OPT_HELP) {
            hr_config_usage(stdout);
            rc = 1;
            goto out;
        }
        if (o->type == HR_OPT_VERSION) {
            printf("herald %s\n", HERALD_VERSION);
            rc = 1;
            goto out;
        }
        if (o->type == HR_OPT_CONFIG)
            file = optarg;
        flags[nflags++] = (struct flag){i, optarg};
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
        goto out;
    }
    if (!file) {
        char **env = cfg->env ? cfg->env : environ;
        for (char **e = env; e && *e; e++)
            if (strncmp(*e, "HERALD_CONFIG=", 14) == 0 && (*e)[14])
                file = *e + 14;
    }
    if (file) {
        if (load_file(cfg, file, err, errlen) < 0)
            goto out;
        cfg->config_file = file;
    }
    if (load_env(cfg, err, errlen) < 0)
        goto out;
    struct hr_optset seen = {{0}};
    for (size_t k = 0; k < nflags; k++)
        if (apply(cfg, flags[k].i, flags[k].arg, &seen, NULL, err, errlen) < 0)
            goto out;
    cfg->by_flag = seen;
    if (one_name(&seen, "", err, errlen) < 0)
        goto out;
    hr_config_quota_defaults(cfg);
    if (!cfg->tls_cert != !cfg->tls_key) {
        snprintf(err, errlen, "%s",
                 cfg->tls_cert ? "--tls-cert needs --tls-key" : "--tls-key needs --tls-cert");
        goto out;
    }
    if (cfg->tls_cert && cfg->limits.io_uring) {
        /* TLS output is encrypted and sent by OpenSSL, one record at a time */
        snprintf(err, errlen, "--io-uring does not apply to TLS: use one or the other");
        goto out;
    }
    /* a polling POST may carry a whole payload, unless the body limit was set lower */
    if (!hr_config_given(cfg, "max-body") && cfg->limits.max_body < cfg->io.max_payload)
        cfg->limits.max_body = cfg->io.max_payload;
    rc = 0;
out:
    free(flags);
    if (rc < 0)
        one_line(err);
    return rc;
}

int hr_config_print(FILE *out, const struct herald_config *cfg)
{
    json_t *root = json_object();
    int rc = root ? 0 : HR_ENOMEM;
    for (size_t i = 0; i < hr_config_table_len && rc == 0; i++) {
        const struct hr_opt *o = &hr_config_table[i];
        if (!file_ok(o) || (o->flags & HR_OPT_ALIAS))
            continue;
        const void *p = (const char *)cfg + o->offset;
        json_t *v = NULL;
        uint64_t n = 0;
        switch (o->type) {
        case HR_OPT_STR: {
            const char *s = *(const char *const *)p;
            if (!s)
                v = json_null(); /* not set: the default (or one derived from others) */
            else if (o->flags & HR_OPT_SECRET)
                v = json_string(HR_CONFIG_REDACTED);
            else if (!(v = json_string(s))) /* not UTF-8 (from argv): as given */
                v = json_stringn_nocheck(s, strlen(s));
            break;
        }
        case HR_OPT_FLAG: v = json_boolean(*(const int *)p); break;
        case HR_OPT_INT: v = json_integer(*(const int *)p); break;
        case HR_OPT_U32: v = json_integer(*(const uint32_t *)p); break;
        case HR_OPT_SIZE: v = json_integer((json_int_t) * (const size_t *)p); break;
        case HR_OPT_U64:
            n = *(const uint64_t *)p;
            /* UINT64_MAX stands for a computed default (--max-memory's share of RAM) */
            v = n > INT64_MAX ? json_null() : json_integer((json_int_t)n);
            break;
        case HR_OPT_MS_U32:
        case HR_OPT_MS_U64:
            n = o->type == HR_OPT_MS_U32 ? *(const uint32_t *)p : *(const uint64_t *)p;
            v = n % 1000 == 0 ? json_integer((json_int_t)(n / 1000)) : json_real(n / 1000.0);
            break;
        case HR_OPT_POLICY:
            v = json_array();
            for (uint32_t k = 0; v && k < cfg->history.nrules; k++) {
                char one[HR_CHANNEL_NAME_MAX + 32];
                snprintf(one, sizeof one, "%s=%s", cfg->history.rules[k].pattern,
                         hr_policy_name(cfg->history.rules[k].policy));
                json_t *s = json_string(one);
                if (!s)
                    s = json_stringn_nocheck(one, strlen(one));
                if (json_array_append_new(v, s) < 0)
                    rc = HR_ENOMEM;
            }
            break;
        case HR_OPT_RULE:
            v = json_array();
            for (uint32_t k = 0; v && k < cfg->auth.nrules; k++) {
                json_t *s = json_string(cfg->rules[k]);
                if (!s)
                    s = json_stringn_nocheck(cfg->rules[k], strlen(cfg->rules[k]));
                if (json_array_append_new(v, s) < 0)
                    rc = HR_ENOMEM;
            }
            break;
        default: continue;
        }
        if (!v || json_object_set_new(root, o->name, v) < 0)
            rc = HR_ENOMEM;
    }
    if (rc == 0 &&
        json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) < 0)
        rc = HR_EIO;
    if (rc == 0)
        fputc('\n', out);
    json_decref(root);
    return rc;
}

void hr_config_print_sources(FILE *out, const struct herald_config *cfg)
{
    const char *from[3] = {"the command line", "the environment",
                           cfg->config_file ? cfg->config_file : "the file"};
    int any = 0;
    fputs("herald:", out);
    for (int k = 0; k < 3; k++) {
        const char *sep = " ";
        for (size_t i = 0; i < hr_config_table_len; i++) {
            /* where the value in effect came from: the highest source giving it */
            int src = hr_optset_has(&cfg->by_flag, i)   ? 0
                      : hr_optset_has(&cfg->by_env, i)  ? 1
                      : hr_optset_has(&cfg->by_file, i) ? 2
                                                        : -1;
            if (src == k && hr_config_table[i].type != HR_OPT_CONFIG &&
                hr_config_table[i].type != HR_OPT_PRINT) {
                fprintf(out, "%s%s", sep, hr_config_table[i].name);
                sep = ", ";
            }
        }
        if (sep[0] == ',')
            fprintf(out, " from %s;", from[k]);
        any |= sep[0] == ',';
    }
    fputs(any ? " the rest: defaults\n" : " every option at its default\n", out);
}
