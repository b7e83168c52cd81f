/* config.c - command-line options. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"

enum {
    OPT_MAX_HEAD = 256,
    OPT_MAX_BODY,
    OPT_HEADER_TIMEOUT,
    OPT_BODY_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_WS_MAX_MESSAGE,
    OPT_WS_MESSAGE_TIMEOUT,
    OPT_CLOSE_TIMEOUT,
    OPT_MAX_QUEUED,
    OPT_MAX_CONNECTIONS,
    OPT_MAX_CONNECTIONS_PER_IP,
    OPT_APP,
    OPT_PATH,
    OPT_PING_INTERVAL,
    OPT_PING_TIMEOUT,
    OPT_MAX_PAYLOAD,
    OPT_CORS_ORIGIN,
    OPT_RECOVERY_WINDOW,
    OPT_CONNECT_TIMEOUT,
    OPT_STORE,
    OPT_DATA,
    OPT_LP_TIMEOUT,
    OPT_SSE_HEARTBEAT,
    OPT_HISTORY,
    OPT_HISTORY_BYTES,
    OPT_HISTORY_CACHE,
    OPT_HISTORY_AGE,
    OPT_CHANNEL_POLICY,
    OPT_MAX_MEMORY,
};

static const struct option options[] = {
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"public", required_argument, NULL, 'P'},
    {"quiet", no_argument, NULL, 'q'},
    {"max-head", required_argument, NULL, OPT_MAX_HEAD},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"body-timeout", required_argument, NULL, OPT_BODY_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"ws-max-message", required_argument, NULL, OPT_WS_MAX_MESSAGE},
    {"ws-message-timeout", required_argument, NULL, OPT_WS_MESSAGE_TIMEOUT},
    {"close-timeout", required_argument, NULL, OPT_CLOSE_TIMEOUT},
    {"max-queued", required_argument, NULL, OPT_MAX_QUEUED},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
    {"max-connections-per-ip", required_argument, NULL, OPT_MAX_CONNECTIONS_PER_IP},
    {"app", required_argument, NULL, OPT_APP},
    {"path", required_argument, NULL, OPT_PATH},
    {"ping-interval", required_argument, NULL, OPT_PING_INTERVAL},
    {"ping-timeout", required_argument, NULL, OPT_PING_TIMEOUT},
    {"max-payload", required_argument, NULL, OPT_MAX_PAYLOAD},
    {"cors-origin", required_argument, NULL, OPT_CORS_ORIGIN},
    {"recovery-window", required_argument, NULL, OPT_RECOVERY_WINDOW},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"store", required_argument, NULL, OPT_STORE},
    {"data", required_argument, NULL, OPT_DATA},
    {"lp-timeout", required_argument, NULL, OPT_LP_TIMEOUT},
    {"sse-heartbeat", required_argument, NULL, OPT_SSE_HEARTBEAT},
    {"history", required_argument, NULL, OPT_HISTORY},
    {"history-bytes", required_argument, NULL, OPT_HISTORY_BYTES},
    {"history-cache", required_argument, NULL, OPT_HISTORY_CACHE},
    {"history-age", required_argument, NULL, OPT_HISTORY_AGE},
    {"channel-policy", required_argument, NULL, OPT_CHANNEL_POLICY},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {0, 0, 0, 0},
};

void hr_config_usage(FILE *out)
{
    struct hr_limits d = HR_LIMITS_DEFAULT;
    fprintf(out,
            "Usage: herald [options]\n"
            "A real-time push server: Socket.IO (Engine.IO v4: long-polling, WebSocket), RFC 6455\n"
            "WebSocket and static files over HTTP/1.1.\n"
            "\n"
            "  --host ADDR             address to listen on (default 0.0.0.0; IPv6 literals work)\n"
            "  --port N                TCP port, 0 for any free one (default 3000)\n"
            "  --public DIR            directory of static files served at / (default public;\n"
            "                          if it does not exist: a warning, and no static files)\n"
            "  --app NAME              chat (default: the tutorial's chat server),\n"
            "                          conformance-eio or conformance-sio (the apps the official\n"
            "                          Engine.IO / Socket.IO test suites expect)\n"
            "  --quiet                 log errors only\n"
            "\n"
            "Socket.IO (times in milliseconds):\n"
            "  --path P                Socket.IO path (default /socket.io/)\n"
            "  --ping-interval MS      heartbeat interval (default 25000)\n"
            "  --ping-timeout MS       a missing pong closes the session after it (default 20000)\n"
            "  --max-payload N         one polling POST or WebSocket message (default 1000000)\n"
            "  --cors-origin O         allowed origins: * (default), a comma-separated list, or none\n"
            "  --recovery-window MS    connection state recovery window, 0 for off (default 120000)\n"
            "  --connect-timeout MS    close a client that joins no namespace by then (default 45000)\n"
            "\n"
            "Channels (/sse, /lp, /poll, /pub; times in seconds):\n"
            "  --store sqlite|memory   where channel history lives (default sqlite: durable)\n"
            "  --data DIR              directory of the sqlite store's herald.db (default data,\n"
            "                          created if missing)\n"
            "  --history N             messages kept per channel (default 10000)\n"
            "  --history-bytes N       payload bytes kept per channel (default 16777216)\n"
            "  --history-age S         drop history older than this, 0 for no limit (default 0)\n"
            "  --history-cache N       bytes of recent history cached in memory, all channels\n"
            "                          together (default 67108864); older reads go to the store;\n"
            "                          with --store memory this bounds all history kept\n"
            "  --channel-policy P=X    slow readers of channels matching glob P: disconnect\n"
            "                          (default), skip (gap notice) or coalesce (latest only);\n"
            "                          repeatable, first match wins: --channel-policy 'user:*=coalesce'\n"
            "  --lp-timeout S          a long-poll with nothing new answers empty after this (default 30)\n"
            "  --sse-heartbeat S       comment line sent on idle event streams (default 15)\n"
            "\n"
            "Limits (sizes in bytes, times in seconds; decimals allowed):\n"
            "  --max-head N            request line + headers (default %" PRIu32 "; over: 431)\n"
            "  --max-body N            request body (default %" PRIu64 "; over: 413)\n"
            "  --header-timeout S      time to send a whole request head (default %g; then 408)\n"
            "  --body-timeout S        time to send a request body (default %g)\n"
            "  --idle-timeout S        keep-alive connection without a request (default %g)\n"
            "  --ws-max-message N      one WebSocket message (default %" PRIu64 "; over: close 1009)\n"
            "                          (/ws/{channel}: --max-body; Socket.IO: --max-payload)\n"
            "  --ws-message-timeout S  a begun WebSocket message must be complete by then\n"
            "                          (default %g; then close 1008)\n"
            "  --close-timeout S       wait for a peer to finish closing (default %g)\n"
            "  --max-queued N          output queued per connection (default %" PRIu64 ");\n"
            "                          a peer over it is paused (replies); a reader of\n"
            "                          broadcasts follows its channel's --channel-policy\n"
            "  --max-connections N     connections at once (default %" PRIu32 ", lowered to fit\n"
            "                          the open-file limit); further ones are closed at accept\n"
            "  --max-connections-per-ip N  connections at once from one client address\n"
            "                          (default %" PRIu32 ", 0 for no limit); behind a reverse proxy\n"
            "                          or a large NAT clients share an address: raise it\n"
            "  --max-memory N          memory budget for queued output, message assembly,\n"
            "                          request bodies, history cache and publishes in flight;\n"
            "                          over it the largest output queues are shed (their\n"
            "                          slow-consumer policy) and publishes get 503; 0 for\n"
            "                          no limit (default: half of RAM or of the cgroup's\n"
            "                          memory limit, here %" PRIu64 ")\n"
            "\n"
            "  --help                  this text\n"
            "  --version               the version\n",
            d.max_head, d.max_body, d.header_timeout_ms / 1000.0, d.body_timeout_ms / 1000.0,
            d.idle_timeout_ms / 1000.0, d.ws_max_message, d.ws_message_timeout_ms / 1000.0,
            d.close_timeout_ms / 1000.0, d.max_queued, d.max_connections, d.max_connections_per_ip, hr_budget_default());
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, uint64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0.001 || v > 86400 * 365)
        return -1;
    *ms = (uint64_t)(v * 1000.0 + 0.5);
    return 0;
}

int hr_config_parse(struct hr_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    struct hr_limits d = HR_LIMITS_DEFAULT;
    *cfg = (struct hr_config){.host = "0.0.0.0", .port = 3000, .public_dir = "public", .app = "chat",
                              .cors_origin = "*", .max_payload = 1000000,
                              .recovery_window_ms = UINT32_MAX, .store = "sqlite",
                              .data_dir = "data", .lp_timeout_ms = 30000, .sse_heartbeat_ms = 15000,
                              .history_messages = 10000, .history_bytes = 16u << 20,
                              .history_cache = HR_HUB_CACHE_DEFAULT, .limits = d};
    struct hr_limits *l = &cfg->limits;
    int ch, body_set = 0;
    uint64_t v;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":hqVp:", options, NULL)) != -1) {
        const char *bad = NULL;
        switch (ch) {
        case 'H': cfg->host = optarg; break;
        case 'p':
            if (parse_u64(optarg, 0, 65535, &v)) bad = "--port wants a number from 0 to 65535";
            else cfg->port = (int)v;
            break;
        case 'P': cfg->public_dir = optarg; break;
        case 'q': cfg->quiet = 1; break;
        case OPT_MAX_HEAD:
            if (parse_u64(optarg, 256, 1 << 20, &v)) bad = "--max-head wants bytes from 256 to 1048576";
            else l->max_head = (uint32_t)v;
            break;
        case OPT_MAX_BODY:
            if (parse_u64(optarg, 0, 1ull << 32, &v)) bad = "--max-body wants bytes up to 4 GiB";
            else l->max_body = v, body_set = 1;
            break;
        case OPT_HEADER_TIMEOUT:
            if (parse_seconds(optarg, &l->header_timeout_ms)) bad = "--header-timeout wants seconds > 0";
            break;
        case OPT_BODY_TIMEOUT:
            if (parse_seconds(optarg, &l->body_timeout_ms)) bad = "--body-timeout wants seconds > 0";
            break;
        case OPT_IDLE_TIMEOUT:
            if (parse_seconds(optarg, &l->idle_timeout_ms)) bad = "--idle-timeout wants seconds > 0";
            break;
        case OPT_CLOSE_TIMEOUT:
            if (parse_seconds(optarg, &l->close_timeout_ms)) bad = "--close-timeout wants seconds > 0";
            break;
        case OPT_WS_MAX_MESSAGE:
            if (parse_u64(optarg, 125, 1ull << 31, &v)) bad = "--ws-max-message wants bytes from 125 to 2 GiB";
            else l->ws_max_message = v;
            break;
        case OPT_WS_MESSAGE_TIMEOUT:
            if (parse_seconds(optarg, &l->ws_message_timeout_ms)) bad = "--ws-message-timeout wants seconds > 0";
            break;
        case OPT_MAX_QUEUED:
            if (parse_u64(optarg, 1024, 1ull << 32, &v)) bad = "--max-queued wants bytes from 1024 to 4 GiB";
            else l->max_queued = v;
            break;
        case OPT_MAX_CONNECTIONS:
            if (parse_u64(optarg, 1, 10000000, &v)) bad = "--max-connections wants a number from 1 to 10000000";
            else l->max_connections = (uint32_t)v;
            break;
        case OPT_MAX_MEMORY:
            if (parse_u64(optarg, 0, UINT64_MAX - 1, &v) || (v > 0 && v < (1u << 20)))
                bad = "--max-memory wants bytes: 0 (no limit) or at least 1048576";
            else
                l->max_memory = v;
            break;
        case OPT_MAX_CONNECTIONS_PER_IP:
            if (parse_u64(optarg, 0, 10000000, &v)) bad = "--max-connections-per-ip wants a number up to 10000000 (0: no limit)";
            else l->max_connections_per_ip = (uint32_t)v;
            break;
        case OPT_APP:
            if (strcmp(optarg, "chat") && strcmp(optarg, "conformance-eio") && strcmp(optarg, "conformance-sio"))
                bad = "--app wants chat, conformance-eio or conformance-sio";
            else
                cfg->app = optarg, cfg->app_set = 1;
            break;
        case OPT_PATH:
            if (optarg[0] != '/' || strlen(optarg) > 200 || strchr(optarg, '?'))
                bad = "--path wants an absolute path such as /socket.io/";
            else
                cfg->path = optarg;
            break;
        case OPT_PING_INTERVAL:
            if (parse_u64(optarg, 1, 3600000, &v)) bad = "--ping-interval wants milliseconds from 1 to 3600000";
            else cfg->ping_interval_ms = (uint32_t)v;
            break;
        case OPT_PING_TIMEOUT:
            if (parse_u64(optarg, 1, 3600000, &v)) bad = "--ping-timeout wants milliseconds from 1 to 3600000";
            else cfg->ping_timeout_ms = (uint32_t)v;
            break;
        case OPT_MAX_PAYLOAD:
            if (parse_u64(optarg, 64, 1ull << 30, &v)) bad = "--max-payload wants bytes from 64 to 1 GiB";
            else cfg->max_payload = (uint32_t)v;
            break;
        case OPT_CORS_ORIGIN:
            cfg->cors_origin = strcmp(optarg, "none") == 0 ? NULL : optarg;
            break;
        case OPT_RECOVERY_WINDOW:
            if (parse_u64(optarg, 0, 86400000, &v)) bad = "--recovery-window wants milliseconds up to 86400000";
            else cfg->recovery_window_ms = (uint32_t)v;
            break;
        case OPT_CONNECT_TIMEOUT:
            if (parse_u64(optarg, 1, 86400000, &v)) bad = "--connect-timeout wants milliseconds from 1 to 86400000";
            else cfg->connect_timeout_ms = (uint32_t)v;
            break;
        case OPT_STORE:
            if (strcmp(optarg, "memory") && strcmp(optarg, "sqlite")) bad = "--store wants memory or sqlite";
            else cfg->store = optarg;
            break;
        case OPT_DATA:
            cfg->data_dir = optarg;
            break;
        case OPT_LP_TIMEOUT:
            if (parse_seconds(optarg, &v)) bad = "--lp-timeout wants seconds > 0";
            else cfg->lp_timeout_ms = (uint32_t)v;
            break;
        case OPT_SSE_HEARTBEAT:
            if (parse_seconds(optarg, &v)) bad = "--sse-heartbeat wants seconds > 0";
            else cfg->sse_heartbeat_ms = (uint32_t)v;
            break;
        case OPT_HISTORY:
            if (parse_u64(optarg, 1, 10000000, &v)) bad = "--history wants a number from 1 to 10000000";
            else cfg->history_messages = (uint32_t)v;
            break;
        case OPT_HISTORY_BYTES:
            if (parse_u64(optarg, 1024, 1ull << 34, &v)) bad = "--history-bytes wants bytes from 1024";
            else cfg->history_bytes = v;
            break;
        case OPT_HISTORY_CACHE:
            if (parse_u64(optarg, 1u << 20, 1ull << 40, &v)) bad = "--history-cache wants bytes from 1048576";
            else cfg->history_cache = v;
            break;
        case OPT_CHANNEL_POLICY: {
            static char patterns[HR_POLICY_RULES_MAX][HR_CHANNEL_NAME_MAX + 1];
            const char *eq = strrchr(optarg, '=');
            int pol = eq ? hr_policy_parse(eq + 1) : -1;
            size_t plen = eq ? (size_t)(eq - optarg) : 0;
            if (!eq || plen == 0 || plen > HR_CHANNEL_NAME_MAX || pol < 0)
                bad = "--channel-policy wants PATTERN=disconnect|skip|coalesce";
            else if (cfg->npolicies == HR_POLICY_RULES_MAX)
                bad = "--channel-policy: at most 16";
            else {
                char *pat = patterns[cfg->npolicies];
                memcpy(pat, optarg, plen);
                pat[plen] = 0;
                cfg->policies[cfg->npolicies++] = (struct hr_policy_rule){pat, (uint8_t)pol};
            }
            break;
        }
        case OPT_HISTORY_AGE:
            if (strcmp(optarg, "0") == 0) cfg->history_age_ms = 0;
            else if (parse_seconds(optarg, &v)) bad = "--history-age wants seconds, or 0";
            else cfg->history_age_ms = v;
            break;
        case 'h':
            hr_config_usage(stdout);
            return 1;
        case 'V':
            printf("herald %s\n", HERALD_VERSION);
            return 1;
        case ':':
            snprintf(err, errlen, "option %s needs a value", argv[optind - 1]);
            return -1;
        default:
            snprintf(err, errlen, "unknown option %s (see --help)", argv[optind - 1]);
            return -1;
        }
        if (bad) {
            snprintf(err, errlen, "%s, not '%s'", bad, optarg);
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    /* a polling POST may carry a whole payload, unless the body limit was set lower */
    if (!body_set && l->max_body < cfg->max_payload)
        l->max_body = cfg->max_payload;
    return 0;
}
