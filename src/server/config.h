/* config.h - herald's configuration: one table of options drives the defaults, the
 * command-line flags, the environment variables (HERALD_PORT), the keys of a --config file
 * (JSON) and --help. */
#ifndef HR_SERVER_CONFIG_H
#define HR_SERVER_CONFIG_H

#include <herald.h>
#include <stdio.h>

#include "auth/auth.h"
#include "hub/hub.h"
#include "net/server.h"

/* Everything the command line can set; struct herald_options is its public part. Opaque in
 * include/herald.h (herald_options_parse fills one for herald_new). */
/* A set of the table's options, by index. */
#define HR_CONFIG_OPTS_MAX 128
struct hr_optset {
    uint64_t w[HR_CONFIG_OPTS_MAX / 64];
};
static inline void hr_optset_add(struct hr_optset *s, size_t i)
{
    s->w[i / 64] |= 1ull << (i % 64);
}
static inline int hr_optset_has(const struct hr_optset *s, size_t i)
{
    return (int)((s->w[i / 64] >> (i % 64)) & 1);
}
static inline int hr_optset_empty(const struct hr_optset *s)
{
    for (size_t k = 0; k < HR_CONFIG_OPTS_MAX / 64; k++)
        if (s->w[k])
            return 0;
    return 1;
}

struct herald_config {
    struct herald_options io;     /* host, port, Socket.IO, store (its config is NULL) */
    const char *app;              /* chat, conformance-eio, conformance-sio */
    struct hr_limits limits;      /* the network's */
    struct hr_hub_limits history; /* the hub's: history, cache, slow-consumer policies */
    uint32_t lp_timeout_ms, sse_heartbeat_ms;
    struct hr_rate publish;         /* --publish-rate, --publish-burst (hr_config_quota_defaults) */
    uint32_t max_channels;          /* --max-channels: channel rooms per Socket.IO socket */
    const char *tls_cert, *tls_key; /* PEM files: the listener speaks TLS only; NULL: none */
    struct hr_optset given;         /* hr_config_table[i] was given (flag, environment or file) */
    struct hr_optset by_flag, by_env, by_file; /* the same, per source (--print-config says) */
    int (*app_known)(const char *name); /* --app accepts these (set by the binary); NULL: any */
    char patterns[HR_POLICY_RULES_MAX][HR_CHANNEL_NAME_MAX + 1]; /* history.rules point here */
    struct hr_auth_config auth;           /* tokens, publish key, channel rules */
    const char *rules[HR_AUTH_RULES_MAX]; /* --channel-rule values; auth.rules points here */
    int dev_tokens;                       /* --dev-tokens: GET /dev/token */
    const char *log_level, *log_format;   /* --log-level, --log-format */
    const char *store_sync;               /* --store-sync: full or normal */
    int access_log;                       /* --access-log */
    const char *config_file;              /* --config, or HERALD_CONFIG: a JSON file of options */
    int print_config;                     /* --print-config: the caller prints, then exits 0 */
    char **env; /* the environment read for HERALD_* (NULL: environ); tests set their own */
    const char *metrics_allow; /* --metrics-allow: who may scrape (server/ops.h) */
    const char *metrics_token; /* --metrics-token: a scrape's Bearer token */
    /* --admin-password (or HERALD_ADMIN_PASSWORD) turns the Socket.IO Admin UI on: its
     * namespace /admin, and its page at /admin/ from admin_ui_dir; NULL: off */
    const char *admin_password, *admin_user, *admin_ui_dir;
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
    HR_OPT_CONFIG, /* --config FILE: read before the environment and the flags apply */
    HR_OPT_PRINT,  /* --print-config */
    HR_OPT_HELP,
    HR_OPT_VERSION,
};

enum {
    HR_OPT_ZERO_OK = 1,   /* 0 (seconds: "0") is allowed besides [min, max] */
    HR_OPT_NONE_NULL = 2, /* strings: "none" sets NULL */
    HR_OPT_SECRET = 4,    /* --print-config shows HR_CONFIG_REDACTED, never the value */
    HR_OPT_ALIAS = 8,     /* an old name of the entry before it: not printed by --print-config */
};
#define HR_CONFIG_REDACTED "<redacted>"
#define HR_CONFIG_FILE_MAX (1u << 20) /* a config file bigger than this is refused */

/* One option: its flag, where it goes, its default, what it accepts, and its --help. */
struct hr_opt {
    const char *name; /* the flag without "--" */
    char short_name;  /* -p for --port, or 0 */
    const char *arg;  /* the value's name in --help ("N", "DIR"); NULL: takes none */
    enum hr_opt_type type;
    size_t offset;                  /* of the field in struct herald_config */
    uint64_t def;                   /* numbers (times in milliseconds) */
    const char *def_str;            /* strings */
    const char *(*def_found)(void); /* strings: the default found at run time (an installed
                                       herald's paths); NULL from it: def_str stands */
    uint64_t min, max;              /* numbers: the range accepted (seconds types: fixed) */
    unsigned flags;                 /* HR_OPT_ZERO_OK, HR_OPT_NONE_NULL */
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
/* Parse the configuration over what cfg holds (so a caller's defaults stand unless an option
 * is given): the --config file (or HERALD_CONFIG's), then the HERALD_* environment variables,
 * then argv, each over the one before (flag > env > file > default, per option; a repeatable
 * option's values come whole from the highest source that gives any). Returns 0 to run (or
 * to print the configuration when cfg->print_config is set), 1 when --help or --version was
 * printed (exit 0), HR_EINVAL on a bad flag, variable, file or value with a one-line message
 * in err (exit 2). */
int hr_config_parse(struct herald_config *cfg, int argc, char **argv, char *err, size_t errlen);
/* The options of a config file's text over cfg; name is the file's name in messages
 * ("NAME:LINE:COLUMN: reason"). Strings are copied (they live as long as the process). */
int hr_config_load_text(struct herald_config *cfg, const char *name, const char *text, size_t len,
                        char *err, size_t errlen);
/* The effective configuration as a config file (JSON, secrets redacted). 0 or HR_ENOMEM. */
int hr_config_print(FILE *out, const struct herald_config *cfg);
/* One line: which options came from the command line, the environment and the file. */
void hr_config_print_sources(FILE *out, const struct herald_config *cfg);
/* HERALD_ and the name in capitals, '-' as '_' (--max-msg-rate: HERALD_MAX_MSG_RATE). */
void hr_config_env_name(const struct hr_opt *o, char *out, size_t outlen);
void hr_config_usage(FILE *out);
/* The default of an entry as --help shows it ("" when it has none). */
void hr_config_default_str(const struct hr_opt *o, char *out, size_t outlen);
/* Whether the option called name was given (by a flag, the environment or the file). */
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
