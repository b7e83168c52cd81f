/* config.h - herald's configuration: one table of options drives the defaults, the
 * command-line flags and --help. */
#ifndef HR_SERVER_CONFIG_H
#define HR_SERVER_CONFIG_H

#include <herald.h>
#include <stdio.h>

#include "auth/auth.h"
#include "hub/hub.h"
#include "net/server.h"

/* Everything the command line can set; struct herald_options is its public part. Opaque in
 * include/herald.h (herald_options_parse fills one for herald_new). */
struct herald_config {
    struct herald_options io;     /* host, port, Socket.IO, store (its config is NULL) */
    const char *app;              /* chat, conformance-eio, conformance-sio */
    struct hr_limits limits;      /* the network's */
    struct hr_hub_limits history; /* the hub's: history, cache, slow-consumer policies */
    uint32_t lp_timeout_ms, sse_heartbeat_ms;
    struct hr_rate publish;         /* --publish-rate, --publish-burst (hr_config_quota_defaults) */
    uint32_t max_channels;          /* --max-channels: channel rooms per Socket.IO socket */
    const char *tls_cert, *tls_key; /* PEM files: the listener speaks TLS only; NULL: none */
    uint64_t given;                 /* bit i: hr_config_table[i] was on the command line */
    int (*app_known)(const char *name); /* --app accepts these (set by the binary); NULL: any */
    char patterns[HR_POLICY_RULES_MAX][HR_CHANNEL_NAME_MAX + 1]; /* history.rules point here */
    struct hr_auth_config auth;           /* tokens, publish key, channel rules */
    const char *rules[HR_AUTH_RULES_MAX]; /* --channel-rule values; auth.rules points here */
    int dev_tokens;                       /* --dev-tokens: GET /dev/token */
    uint32_t shutdown_timeout_ms; /* --shutdown-timeout: SIGTERM's drain, then close (0: none) */
    int takeover;                 /* --takeover: share the port, wait for the data directory */
    uint32_t takeover_timeout_ms; /* --takeover-timeout: how long to wait for it */
};

enum hr_opt_type {
    HR_OPT_STR,    /* const char *, the argument itself */
    HR_OPT_FLAG,   /* int set to 1, no value */
    HR_OPT_INT,    /* int */
    HR_OPT_U32,    /* uint32_t */
    HR_OPT_U64,    /* uint64_t */
    HR_OPT_SIZE,   /* size_t */
    HR_OPT_MS_U32, /* uint32_t milliseconds, given in seconds (decimals allowed) */
    HR_OPT_MS_U64, /* uint64_t milliseconds, given in seconds */
    HR_OPT_POLICY, /* --channel-policy PATTERN=POLICY into history.rules, repeatable */
    HR_OPT_RULE,   /* --channel-rule 'PATTERN READ PUBLISH' into auth.rules, repeatable */
    HR_OPT_HELP,
    HR_OPT_VERSION,
};

enum {
    HR_OPT_ZERO_OK = 1,   /* 0 (seconds: "0") is allowed besides [min, max] */
    HR_OPT_NONE_NULL = 2, /* strings: "none" sets NULL */
};

/* One option: its flag, where it goes, its default, what it accepts, and its --help. */
struct hr_opt {
    const char *name; /* the flag without "--" */
    char short_name;  /* -p for --port, or 0 */
    const char *arg;  /* the value's name in --help ("N", "DIR"); NULL: takes none */
    enum hr_opt_type type;
    size_t offset;       /* of the field in struct herald_config */
    uint64_t def;        /* numbers (times in milliseconds) */
    const char *def_str; /* strings */
    uint64_t min, max;   /* numbers: the range accepted (seconds types: fixed) */
    unsigned flags;      /* HR_OPT_ZERO_OK, HR_OPT_NONE_NULL */
    int (*valid)(const struct herald_config *cfg,
                 const char *v); /* strings: accepted? NULL: anything */
    uint64_t (*shown)(void);     /* --help shows this computed default instead of def */
    const char *want;            /* a bad value's error, before ", not 'VALUE'" */
    const char *section;         /* --help: a blank line, then this heading (may be ""), first */
    const char *help;            /* --help text, lines split by \n; {} stands for the default */
};

extern const struct hr_opt hr_config_table[];
extern const size_t hr_config_table_len;

/* The defaults of the table (every field; io.config NULL). */
void hr_config_init(struct herald_config *cfg);
/* Parse argv over what cfg holds (so a caller's defaults stand unless a flag is given).
 * Returns 0 to run, 1 when --help or --version was printed (exit 0), HR_EINVAL on a bad flag
 * with a one-line message in err (exit 2). */
int hr_config_parse(struct herald_config *cfg, int argc, char **argv, char *err, size_t errlen);
void hr_config_usage(FILE *out);
/* The default of an entry as --help shows it ("" when it has none). */
void hr_config_default_str(const struct hr_opt *o, char *out, size_t outlen);
/* Whether the flag called name was given. */
int hr_config_given(const struct herald_config *cfg, const char *name);
/* Whether access control is configured (a token key, a publish key or a channel rule): the
 * defaults that keep the seed's open demo working (any origin, no publish rate) then give way
 * to safe ones (docs/security.md). */
int hr_config_secured(const struct herald_config *cfg);
/* The defaults that depend on other flags, set once parsing is done: the publish rate is off
 * (0) while access control is not configured and --publish-rate not given, 50/s once it is;
 * the publish burst is twice the rate unless given. An explicit flag always wins. */
void hr_config_quota_defaults(struct herald_config *cfg);
#define HR_PUBLISH_RATE_SECURED 50

/* *dst = *src, with the policy patterns pointing into dst. */
void hr_config_copy(struct herald_config *dst, const struct herald_config *src);

#endif
