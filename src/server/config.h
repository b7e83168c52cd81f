/* config.h - command-line options: every limit in one place, with its default. */
#ifndef HR_APP_CONFIG_H
#define HR_APP_CONFIG_H

#include <stdio.h>

#include "hub/hub.h"
#include "net/server.h"

struct hr_config {
    const char *host;
    int port;
    const char *public_dir;
    const char *app;              /* chat (default), conformance-eio, conformance-sio */
    int app_set;                  /* --app was given */
    const char *path;             /* Engine.IO / Socket.IO path; NULL: the app's */
    const char *cors_origin;      /* "*", a comma-separated list, or NULL for none */
    uint32_t ping_interval_ms, ping_timeout_ms;  /* 0: the app's */
    uint32_t max_payload;
    uint32_t recovery_window_ms;  /* UINT32_MAX: not given */
    uint32_t connect_timeout_ms;  /* 0: not given */
    const char *store;            /* memory | sqlite */
    const char *data_dir;
    uint32_t lp_timeout_ms, sse_heartbeat_ms;
    uint32_t history_messages;
    uint64_t history_bytes, history_age_ms;
    uint64_t history_cache;             /* --history-cache: all channels' cached messages */
    struct hr_policy_rule policies[HR_POLICY_RULES_MAX];
    uint32_t npolicies;
    int quiet;
    struct hr_limits limits;
};

/* Parse argv. Returns 0 to run, 1 when --help or --version was printed (exit 0), -1 on a
 * bad flag with a one-line message in err (exit 2). */
int hr_config_parse(struct hr_config *cfg, int argc, char **argv, char *err, size_t errlen);
void hr_config_usage(FILE *out);

#endif
