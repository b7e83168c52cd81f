/* test_server_options.c - src/server/config.c: the options table drives the defaults (and the
 * lower layers' *_DEFAULT macros agree with it), parses every type of value, refuses bad ones
 * with one line naming the flag, and --help lists every entry with its default; the same
 * options come from HERALD_* variables and a JSON --config file, flag > env > file > default,
 * refusals with the variable or FILE:LINE:COLUMN, and --print-config round-trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chan/push.h"
#include "core/budget.h"
#include "core/error.h"
#include "eio/eio.h"
#include "server/config.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

static char err[256];

/* what the binary passes for --app: the apps it has */
static int app_known(const char *name)
{
    return strcmp(name, "chat") == 0 || strcmp(name, "conformance-sio") == 0;
}

/* the environment the parser reads: none, unless a test gives one (not the shell's) */
static char *no_env[] = {NULL};

static int parse(struct herald_config *cfg, int argc, char **argv)
{
    err[0] = 0;
    cfg->app_known = app_known;
    if (!cfg->env)
        cfg->env = no_env;
    return hr_config_parse(cfg, argc, argv, err, sizeof err);
}

static const struct hr_opt *entry(const char *name)
{
    for (size_t i = 0; i < hr_config_table_len; i++)
        if (strcmp(hr_config_table[i].name, name) == 0)
            return &hr_config_table[i];
    fail_msg("no entry %s", name);
    return NULL;
}

/* The value of an entry's field, as a number (strings: 0). */
static uint64_t number(const struct herald_config *cfg, const struct hr_opt *o)
{
    const void *p = (const char *)cfg + o->offset;
    switch (o->type) {
    case HR_OPT_INT:
    case HR_OPT_FLAG: return (uint64_t) * (const int *)p;
    case HR_OPT_U32:
    case HR_OPT_MS_U32: return *(const uint32_t *)p;
    case HR_OPT_U64:
    case HR_OPT_MS_U64: return *(const uint64_t *)p;
    case HR_OPT_SIZE: return *(const size_t *)p;
    default: return 0;
    }
}

static void defaults_are_the_table(void **state)
{
    struct herald_config cfg;
    hr_config_init(&cfg);
    assert_true(hr_optset_empty(&cfg.given));
    assert_null(cfg.io.config);
    assert_int_equal(cfg.history.nrules, 0);
    assert_false(hr_config_secured(&cfg)); /* the seed's open demo */
    for (size_t i = 0; i < hr_config_table_len; i++) {
        const struct hr_opt *o = &hr_config_table[i];
        const char *str =
            o->type == HR_OPT_STR ? *(const char **)((const char *)&cfg + o->offset) : NULL;
        if (o->type == HR_OPT_STR && !o->def_str)
            assert_null(str);
        else if (o->type == HR_OPT_STR)
            assert_string_equal(str, o->def_str);
        else if (o->type != HR_OPT_POLICY && o->type != HR_OPT_RULE && o->type != HR_OPT_HELP &&
                 o->type != HR_OPT_VERSION)
            assert_true(number(&cfg, o) == o->def);
    }
    /* the public part: herald_options_init gives the same */
    struct herald_options io;
    herald_options_init(&io);
    assert_string_equal(io.host, "0.0.0.0");
    assert_int_equal(io.port, 3000);
    assert_string_equal(io.path, cfg.io.path);
    assert_int_equal(io.ping_interval_ms, cfg.io.ping_interval_ms);
    assert_int_equal(io.recovery_window_ms, 120000);
    assert_int_equal(io.connect_timeout_ms, 45000);
    assert_string_equal(io.store, "sqlite");
    assert_null(io.config);
}

/* The publish rate's default follows from the other flags: off while access control is not
 * configured (the open demo, the tests publishing thousands a second), the burst twice the
 * rate; a flag given wins. Access control's flags come from another module: without them the
 * configuration is never secured here. */
static void quota_defaults(void **state)
{
    struct herald_config cfg;
    hr_config_init(&cfg);
    char *none[] = {"herald", NULL};
    assert_int_equal(parse(&cfg, ARGC(none), none), 0);
    assert_false(hr_config_secured(&cfg));
    assert_int_equal(cfg.publish.rate, 0);
    assert_int_equal(cfg.limits.max_msg_rate, 100);
    assert_int_equal(cfg.limits.max_msg_burst, 200);
    assert_int_equal(cfg.limits.max_lp_per_ip, 32);
    assert_int_equal(cfg.max_channels, 64);

    hr_config_init(&cfg);
    char *rate[] = {"herald", "--publish-rate", "50", NULL};
    assert_int_equal(parse(&cfg, ARGC(rate), rate), 0);
    assert_int_equal(cfg.publish.rate, 50);
    assert_int_equal(cfg.publish.burst, 100);

    hr_config_init(&cfg);
    char *both[] = {"herald", "--publish-rate", "7", "--publish-burst", "3", NULL};
    assert_int_equal(parse(&cfg, ARGC(both), both), 0);
    assert_int_equal(cfg.publish.rate, 7);
    assert_int_equal(cfg.publish.burst, 3);

    hr_config_init(&cfg);
    char *zero[] = {"herald", "--publish-rate",
                    "0",      "--max-msg-rate",
                    "0",      "--max-lp-per-ip",
                    "0",      "--max-channels",
                    "0",      NULL};
    assert_int_equal(parse(&cfg, ARGC(zero), zero), 0);
    assert_int_equal(cfg.publish.rate, 0);
    assert_int_equal(cfg.limits.max_msg_rate, 0);
    assert_int_equal(cfg.limits.max_lp_per_ip, 0);
    assert_int_equal(cfg.max_channels, 0);
}

/* The lower layers keep defaults of their own for library users: they must say what the table
 * says, field by field. */
static void lower_layer_defaults_agree(void **state)
{
    struct herald_config cfg;
    hr_config_init(&cfg);
    struct hr_limits l = HR_LIMITS_DEFAULT;
    assert_int_equal(l.max_head, cfg.limits.max_head);
    assert_true(l.max_body == cfg.limits.max_body);
    assert_true(l.header_timeout_ms == cfg.limits.header_timeout_ms);
    assert_true(l.body_timeout_ms == cfg.limits.body_timeout_ms);
    assert_true(l.idle_timeout_ms == cfg.limits.idle_timeout_ms);
    assert_true(l.ws_max_message == cfg.limits.ws_max_message);
    assert_true(l.ws_message_timeout_ms == cfg.limits.ws_message_timeout_ms);
    assert_true(l.close_timeout_ms == cfg.limits.close_timeout_ms);
    assert_true(l.max_queued == cfg.limits.max_queued);
    assert_int_equal(l.max_connections, cfg.limits.max_connections);
    assert_true(l.max_memory == cfg.limits.max_memory);
    assert_int_equal(l.max_connections_per_ip, cfg.limits.max_connections_per_ip);
    assert_int_equal(l.max_lp_per_ip, cfg.limits.max_lp_per_ip);
    assert_int_equal(l.max_msg_rate, cfg.limits.max_msg_rate);
    assert_int_equal(l.max_msg_burst, cfg.limits.max_msg_burst);

    struct hr_hub_limits h = HR_HUB_LIMITS_DEFAULT;
    assert_int_equal(h.max_messages, cfg.history.max_messages);
    assert_true(h.max_bytes == cfg.history.max_bytes);
    assert_true(h.max_age_ms == cfg.history.max_age_ms);
    assert_true(h.cache_bytes == cfg.history.cache_bytes);
    assert_true(HR_HUB_CACHE_DEFAULT == cfg.history.cache_bytes);

    struct hr_eio_opts e = HR_EIO_OPTS_DEFAULT;
    assert_int_equal(e.ping_interval_ms, cfg.io.ping_interval_ms);
    assert_int_equal(e.ping_timeout_ms, cfg.io.ping_timeout_ms);
    assert_int_equal(e.max_payload, cfg.io.max_payload);
    /* any origin for a library user's Engine.IO; the binary decides at start (hr_io_make) */
    assert_null(e.origins);
    assert_null(cfg.io.allowed_origins);

    assert_int_equal(HR_PUSH_LP_TIMEOUT_DEFAULT_MS, cfg.lp_timeout_ms);
    assert_int_equal(HR_PUSH_SSE_HEARTBEAT_DEFAULT_MS, cfg.sse_heartbeat_ms);
}

static void parses_every_type(void **state)
{
    struct herald_config cfg;
    hr_config_init(&cfg);
    char *argv[] = {"herald",
                    "--host",
                    "::1",
                    "-p",
                    "8080",
                    "--allowed-origins",
                    "none",
                    "--store",
                    "memory",
                    "--app",
                    "conformance-sio",
                    "--path",
                    "/rt/",
                    "-q",
                    "--history",
                    "5",
                    "--max-body",
                    "123",
                    "--history-bytes",
                    "2048",
                    "--lp-timeout",
                    "1.5",
                    "--header-timeout",
                    "0.25",
                    "--history-age",
                    "0",
                    "--max-memory",
                    "0",
                    "--channel-policy",
                    "user:*=coalesce",
                    "--channel-policy",
                    "a=b=skip",
                    "--channel-rule",
                    "news:* all none",
                    NULL};
    assert_int_equal(parse(&cfg, ARGC(argv), argv), 0);
    assert_string_equal(cfg.io.host, "::1");             /* STR */
    assert_int_equal(cfg.io.port, 8080);                 /* INT, short form */
    assert_string_equal(cfg.io.allowed_origins, "none"); /* STR, checked */
    assert_string_equal(cfg.io.store, "memory");         /* STR, checked */
    assert_string_equal(cfg.app, "conformance-sio");
    assert_string_equal(cfg.io.path, "/rt/");
    assert_int_equal(cfg.io.quiet, 1);    /* FLAG */
    assert_int_equal(cfg.auth.nrules, 1); /* RULE */
    assert_string_equal(cfg.auth.rules[0], "news:* all none");
    assert_true(hr_config_secured(&cfg));
    assert_int_equal(cfg.history.max_messages, 5); /* U32 */
    assert_true(cfg.limits.max_body == 123);       /* U64 */
    assert_true(cfg.history.max_bytes == 2048);    /* SIZE */
    assert_int_equal(cfg.lp_timeout_ms, 1500);     /* seconds into ms */
    assert_true(cfg.limits.header_timeout_ms == 250);
    assert_true(cfg.history.max_age_ms == 0); /* "0" where allowed */
    assert_true(cfg.limits.max_memory == 0);
    assert_int_equal(cfg.history.nrules, 2); /* POLICY, repeatable */
    assert_string_equal(cfg.history.rules[0].pattern, "user:*");
    assert_int_equal(cfg.history.rules[0].policy, HR_POLICY_COALESCE);
    assert_string_equal(cfg.history.rules[1].pattern, "a=b"); /* the last '=' splits */
    assert_int_equal(cfg.history.rules[1].policy, HR_POLICY_SKIP);
    assert_true(hr_config_given(&cfg, "port"));
    assert_true(hr_config_given(&cfg, "max-body"));
    assert_false(hr_config_given(&cfg, "public"));
    assert_string_equal(cfg.io.public_dir, "public"); /* not given: the default */

    /* a copy's rules point into the copy */
    struct herald_config *copy = malloc(sizeof(*copy));
    assert_non_null(copy);
    hr_config_copy(copy, &cfg);
    assert_ptr_equal(copy->history.rules[0].pattern, copy->patterns[0]);
    assert_string_equal(copy->history.rules[1].pattern, "a=b");
    free(copy);
}

/* Flags go over what the config holds (an app's defaults), and --max-payload raises the body
 * limit unless --max-body was given. */
static void parses_over_the_callers_values(void **state)
{
    struct herald_config cfg;
    hr_config_init(&cfg);
    cfg.io.ping_interval_ms = 300;
    cfg.io.path = "/engine.io/";
    char *argv[] = {"herald", "--ping-interval", "500", "--max-payload", "2000000", NULL};
    assert_int_equal(parse(&cfg, ARGC(argv), argv), 0);
    assert_int_equal(cfg.io.ping_interval_ms, 500);
    assert_string_equal(cfg.io.path, "/engine.io/");
    assert_true(cfg.limits.max_body == 2000000);

    hr_config_init(&cfg);
    char *argv2[] = {"herald", "--max-payload", "2000000", "--max-body", "1000", NULL};
    assert_int_equal(parse(&cfg, ARGC(argv2), argv2), 0);
    assert_true(cfg.limits.max_body == 1000);
}

static void bad_values(void **state)
{
    static const char *const bad[][2] = {
        {"--port", "abc"},
        {"--port", "70000"},
        {"--port", "-1"},
        {"--port", ""},
        {"--max-head", "1"},
        {"--max-body", "-5"},
        {"--header-timeout", "0"},
        {"--idle-timeout", "abc"},
        {"--max-memory", "5"},
        {"--history-age", "-1"},
        {"--app", "nope"},
        {"--store", "disk"},
        {"--path", "rel"},
        {"--path", "/a?b"},
        {"--channel-policy", "x=slow"},
        {"--channel-policy", "=skip"},
        {"--channel-rule", "news:* all"},
        {"--channel-rule", "user:* owner none"},
        {"--history-cache", "1"},
        {"--ws-max-message", "124"},
        {"--lp-timeout", "0"},
        {"--connect-timeout", "0"},
        {"--allowed-origins", "http://a.test/"},
        {"--allowed-origins", "*,http://a.test"},
        {"--allowed-origins", ""},
        {"--cors-origin", "a.test"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct herald_config cfg;
        hr_config_init(&cfg);
        char *argv[] = {"herald", (char *)bad[i][0], (char *)bad[i][1], NULL};
        assert_int_equal(parse(&cfg, 3, argv), HR_EINVAL);
        char want[128];
        snprintf(want, sizeof want, "%s", bad[i][0]);
        if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, "not '") || strchr(err, '\n'))
            fail_msg("%s %s: %s", bad[i][0], bad[i][1], err);
    }
    struct herald_config cfg;
    hr_config_init(&cfg);
    char *unknown[] = {"herald", "--bogus", NULL};
    assert_int_equal(parse(&cfg, 2, unknown), HR_EINVAL);
    assert_string_equal(err, "unknown option --bogus (see --help)");
    char *missing[] = {"herald", "--port", NULL};
    assert_int_equal(parse(&cfg, 2, missing), HR_EINVAL);
    assert_string_equal(err, "option --port needs a value");
    char *stray[] = {"herald", "stray", NULL};
    assert_int_equal(parse(&cfg, 2, stray), HR_EINVAL);
    assert_string_equal(err, "unexpected argument 'stray' (see --help)");
    /* TLS: a certificate and its key, both or neither; not with --io-uring */
    char *cert_only[] = {"herald", "--tls-cert", "c.pem", NULL};
    assert_int_equal(parse(&cfg, 3, cert_only), HR_EINVAL);
    assert_string_equal(err, "--tls-cert needs --tls-key");
    hr_config_init(&cfg);
    char *key_only[] = {"herald", "--tls-key", "k.pem", NULL};
    assert_int_equal(parse(&cfg, 3, key_only), HR_EINVAL);
    assert_string_equal(err, "--tls-key needs --tls-cert");
    hr_config_init(&cfg);
    char *uring[] = {"herald", "--tls-cert", "c.pem", "--tls-key", "k.pem", "--io-uring", NULL};
    assert_int_equal(parse(&cfg, 6, uring), HR_EINVAL);
    assert_string_equal(err, "--io-uring does not apply to TLS: use one or the other");
    hr_config_init(&cfg);
    char *pair[] = {"herald", "--tls-cert", "c.pem", "--tls-key", "k.pem", NULL};
    assert_int_equal(parse(&cfg, 5, pair), 0);
    assert_string_equal(cfg.tls_cert, "c.pem");
    assert_string_equal(cfg.tls_key, "k.pem");

    /* --cors-origin is --allowed-origins under its old name: one or the other */
    hr_config_init(&cfg);
    char *alias[] = {"herald", "--cors-origin", "http://a.test", NULL};
    assert_int_equal(parse(&cfg, 3, alias), 0);
    assert_string_equal(cfg.io.allowed_origins, "http://a.test");
    hr_config_init(&cfg);
    char *both[] = {"herald", "--cors-origin", "*", "--allowed-origins", "*", NULL};
    assert_int_equal(parse(&cfg, 5, both), HR_EINVAL);
    assert_string_equal(err, "--cors-origin is the old name of --allowed-origins: give one");

    /* at most HR_POLICY_RULES_MAX rules */
    char *many[2 * HR_POLICY_RULES_MAX + 4] = {"herald"};
    int n = 1;
    for (int i = 0; i <= HR_POLICY_RULES_MAX; i++) {
        many[n++] = "--channel-policy";
        many[n++] = "c=skip";
    }
    hr_config_init(&cfg);
    assert_int_equal(parse(&cfg, n, many), HR_EINVAL);
    assert_non_null(strstr(err, "--channel-policy: at most 16"));
}

/* --help's text (open_memstream keeps the address of its buffer pointer: a static one) */
static char *usage_text;
static size_t usage_len;

static char *usage(void)
{
    FILE *f = open_memstream(&usage_text, &usage_len);
    assert_non_null(f);
    hr_config_usage(f);
    fclose(f);
    return usage_text;
}

/* Every entry has its line, "  --name ARG", and its help shows its default. */
static void help_lists_every_entry(void **state)
{
    char *text = usage();
    assert_true(strncmp(text, "Usage: herald [options]\n", 24) == 0);
    for (size_t i = 0; i < hr_config_table_len; i++) {
        const struct hr_opt *o = &hr_config_table[i];
        char line[96];
        snprintf(line, sizeof line, "\n  --%s%s%s ", o->name, o->arg ? " " : "",
                 o->arg ? o->arg : "");
        const char *found = strstr(text, line);
        if (!found)
            fail_msg("--help has no line for --%s", o->name);
        /* the entry's block: up to the next line that starts a flag or a heading */
        size_t from = (size_t)(found - text), to = from + 1;
        while (text[to] && !(text[to] == '\n' && strncmp(text + to, "\n        ", 9) != 0))
            to++;
        char def[32];
        hr_config_default_str(o, def, sizeof def);
        if (strstr(o->help, "{}")) {
            assert_true(def[0] != 0);
            char *block = strndup(text + from, to - from);
            if (!strstr(block, def) || !strstr(block, "default"))
                fail_msg("--help for --%s does not show its default %s", o->name, def);
            free(block);
        }
    }
    /* the computed default is what this machine gives */
    char here[48];
    snprintf(here, sizeof here, "here %llu)", (unsigned long long)hr_budget_default());
    assert_non_null(strstr(text, here));
    assert_non_null(strstr(text, "  --max-connections-per-ip N  connections at once"));
    assert_non_null(strstr(
        text,
        "  --header-timeout S      time to send a whole request head (default 10; then 408)\n"));
    assert_non_null(strstr(text, "(/ws/{channel}: --max-body"));
    free(text);
}

/* Every entry that takes a value says what it wants when refused, and every entry has help. */
static void table_is_complete(void **state)
{
    for (size_t i = 0; i < hr_config_table_len; i++) {
        const struct hr_opt *o = &hr_config_table[i];
        assert_non_null(o->help);
        if (o->arg && !(o->type == HR_OPT_STR && !o->valid))
            if (!o->want || strncmp(o->want, "--", 2) != 0 ||
                strncmp(o->want + 2, o->name, strlen(o->name)) != 0)
                fail_msg("--%s has no error text naming it", o->name);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(hr_config_table[j].name, o->name);
    }
    assert_non_null(entry("max-memory")->shown);
}

/* The public herald_options_parse keeps the rest in o->config. */
static void public_parse(void **state)
{
    struct herald_options o;
    herald_options_init(&o);
    o.port = 4000; /* the program's own default */
    o.config = malloc(sizeof(*o.config));
    assert_non_null(o.config);
    hr_config_init(o.config);
    o.config->env = no_env;
    char *argv[] = {"herald", "--max-head", "1024", "--store", "memory", NULL};
    assert_int_equal(herald_options_parse(&o, ARGC(argv), argv), 0);
    assert_int_equal(o.port, 4000);
    assert_string_equal(o.store, "memory");
    assert_non_null(o.config);
    assert_int_equal(o.config->limits.max_head, 1024);
    free(o.config);
}

/* A file of options in a temporary directory; its path in path. */
static void write_file(char *path, size_t len, const char *text)
{
    snprintf(path, len, "/tmp/herald-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Per option, a flag wins over a variable, a variable over the file, the file over the
 * default; a repeatable option comes whole from the highest source giving any value. */
static void precedence(void **state)
{
    char path[64];
    write_file(path, sizeof path,
               "{\n  \"port\": 4001,\n  \"max-head\": 4096,\n  \"store\": \"memory\",\n"
               "  \"lp-timeout\": 2.5,\n  \"quiet\": true,\n"
               "  \"channel-rule\": [\"a:* all none\", \"b:* token none\"],\n"
               "  \"channel-policy\": \"x:*=skip\",\n  \"publish-key\": \"0123456789abcdef\"\n}\n");
    char cfgvar[96];
    snprintf(cfgvar, sizeof cfgvar, "HERALD_CONFIG=%s", path);
    char *env[] = {cfgvar,
                   "HERALD_PORT=4002",
                   "HERALD_MAX_HEAD=8192",
                   "HERALD_QUIET=0",
                   "HERALD_CHANNEL_RULE=c:* all all\r\nd:* none none\n",
                   "HERALD_HISTORY_AGE=",
                   "PATH=/bin",
                   NULL};
    struct herald_config cfg;
    hr_config_init(&cfg);
    cfg.env = env;
    char *argv[] = {"herald", "--port", "4003", NULL};
    assert_int_equal(parse(&cfg, ARGC(argv), argv), 0);
    assert_int_equal(cfg.io.port, 4003);                /* flag */
    assert_int_equal(cfg.limits.max_head, 8192);        /* env */
    assert_string_equal(cfg.io.store, "memory");        /* file */
    assert_int_equal(cfg.lp_timeout_ms, 2500);          /* file, decimals */
    assert_int_equal(cfg.io.quiet, 0);                  /* env 0 over file true */
    assert_true(cfg.history.max_age_ms == 0);           /* empty variable: unset */
    assert_int_equal(cfg.limits.max_body, 1024 * 1024); /* default */
    assert_int_equal(cfg.auth.nrules, 2);               /* env's list replaces the file's */
    assert_string_equal(cfg.rules[0], "c:* all all");
    assert_string_equal(cfg.rules[1], "d:* none none");
    assert_int_equal(cfg.history.nrules, 1);
    assert_string_equal(cfg.history.rules[0].pattern, "x:*");
    assert_string_equal(cfg.auth.publish_key, "0123456789abcdef");
    assert_string_equal(cfg.config_file, path);
    /* given by any source: the derived defaults follow (secured: a publish rate) */
    assert_true(hr_config_given(&cfg, "store"));
    assert_true(hr_config_given(&cfg, "max-head"));
    assert_false(hr_config_given(&cfg, "history-age"));
    assert_true(hr_config_secured(&cfg));
    assert_int_equal(cfg.publish.rate, HR_PUBLISH_RATE_SECURED);

    /* --config names the file over HERALD_CONFIG; a flag's list replaces the others */
    char other[64];
    write_file(other, sizeof other, "{\"port\": 4100, \"publish-rate\": 7}");
    hr_config_init(&cfg);
    char *env2[] = {cfgvar, NULL};
    cfg.env = env2;
    char *argv2[] = {"herald", "--config", other, "--channel-rule", "e:* all all", NULL};
    assert_int_equal(parse(&cfg, ARGC(argv2), argv2), 0);
    assert_int_equal(cfg.io.port, 4100);
    assert_string_equal(cfg.io.store, "sqlite");
    assert_int_equal(cfg.publish.rate, 7);
    assert_int_equal(cfg.publish.burst, 14);
    assert_int_equal(cfg.auth.nrules, 1);
    assert_string_equal(cfg.rules[0], "e:* all all");

    /* the old HERALD_JWT_SECRET and HERALD_PUBLISH_KEY are options' variables now */
    hr_config_init(&cfg);
    char *env3[] = {"HERALD_JWT_SECRET="
                    "0123456789abcdef0123456789abcdef",
                    NULL};
    cfg.env = env3;
    char *none[] = {"herald", NULL};
    assert_int_equal(parse(&cfg, ARGC(none), none), 0);
    assert_string_equal(cfg.auth.jwt_secret, "0123456789abcdef0123456789abcdef");
    unlink(path);
    unlink(other);
}

/* Every refusal of the environment names the variable and the reason; unknown names are
 * only warned about. */
static void env_refusals(void **state)
{
    static const char *const cases[][2] = {
        {"HERALD_PORT=abc", "HERALD_PORT: port wants a number from 0 to 65535, not 'abc'"},
        {"HERALD_LP_TIMEOUT=0", "HERALD_LP_TIMEOUT: lp-timeout wants seconds > 0, not '0'"},
        {"HERALD_QUIET=yes", "HERALD_QUIET wants 1, 0, true or false, not 'yes'"},
        {"HERALD_PORT=1\n2", "HERALD_PORT: port wants a number from 0 to 65535, not '1?2'"},
        {"HERALD_CHANNEL_RULE=a:* all none\nb:* all",
         "HERALD_CHANNEL_RULE: channel-rule wants 'PATTERN READ PUBLISH', each of "
         "all|token|owner|none, not 'b:* all'"},
        {"HERALD_CONFIG=/nonexistent/herald.json",
         "cannot read config file /nonexistent/herald.json: No such file or directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct herald_config cfg;
        hr_config_init(&cfg);
        char *env[] = {(char *)cases[i][0], NULL};
        cfg.env = env;
        char *none[] = {"herald", NULL};
        assert_int_equal(parse(&cfg, ARGC(none), none), HR_EINVAL);
        assert_string_equal(err, cases[i][1]);
    }
    /* a variable that names no option (HERALD_HELP, HERALD_PRINT_CONFIG: not settable so) is
     * ignored with a warning; the others still count */
    struct herald_config cfg;
    hr_config_init(&cfg);
    char *unknown[] = {"HERALD_PORTT=1",        "HERALD_HELP=1",
                       "HERALD_PRINT_CONFIG=1", "HERALD_SERVICE_HOST=10.0.0.1",
                       "HERALD_PORT=4001",      NULL};
    cfg.env = unknown;
    char *argv0[] = {"herald", NULL};
    assert_int_equal(parse(&cfg, ARGC(argv0), argv0), 0);
    assert_int_equal(cfg.io.port, 4001);
    assert_int_equal(cfg.print_config, 0);
    hr_config_init(&cfg);
    char *both[] = {"HERALD_CORS_ORIGIN=*", "HERALD_ALLOWED_ORIGINS=*", NULL};
    cfg.env = both;
    char *none[] = {"herald", NULL};
    assert_int_equal(parse(&cfg, ARGC(none), none), HR_EINVAL);
    assert_string_equal(
        err, "the environment: --cors-origin is the old name of --allowed-origins: give one");
}

/* Every refusal of a file: FILE:LINE:COLUMN of the key or value (jansson's for syntax). */
static void file_refusals(void **state)
{
    static const char *const cases[][2] = {
        {"{\"port\": 70000}", "f.json:1:10: port wants a number from 0 to 65535, not '70000'"},
        {"{\n  \"port\": 1,\n  \"bogus\": 2\n}",
         "f.json:3:3: unknown option \"bogus\" (see herald --help)"},
        {"{\"port\": \"3000\"}", "f.json:1:10: port wants a whole number, not a string"},
        {"{\"port\": 1.5}", "f.json:1:10: port wants a whole number, not a number with decimals"},
        {"{\"quiet\": 1}", "f.json:1:11: quiet wants true or false, not a whole number"},
        {"{\"store\": 1}", "f.json:1:11: store wants a string, not a whole number"},
        {"{\"lp-timeout\": \"2\"}",
         "f.json:1:16: lp-timeout wants a number of seconds, not a string"},
        {"{\"lp-timeout\": 0}", "f.json:1:16: lp-timeout wants seconds > 0, not '0'"},
        {"{\"channel-rule\": [\"a:* all none\", 3]}",
         "f.json:1:18: channel-rule wants a string or an array of strings, not an array"},
        {"{\"channel-policy\": {}}",
         "f.json:1:20: channel-policy wants a string or an array of strings, not an object"},
        {"{\"store\": \"disk\"}", "f.json:1:11: store wants memory or sqlite, not 'disk'"},
        /* one line whatever the value holds */
        {"{\"store\": \"a\\nb\"}", "f.json:1:11: store wants memory or sqlite, not 'a?b'"},
        {"{\"jwt-secret\": \"<redacted>\"}",
         "f.json:1:16: <redacted> is what --print-config shows in place of jwt-secret: give the "
         "secret"},
        {"{\"config\": \"x.json\"}", "f.json:1:2: unknown option \"config\": not in a file"},
        {"{\"help\": true}", "f.json:1:2: unknown option \"help\": not in a file"},
        {"{\"port\": 1,\n \"port\": 2}", "f.json:2:7: duplicate object key near '\"port\"'"},
        {"{\"port\": 1\n \"store\": \"memory\"}", "f.json:2:8: '}' expected near '\"store\"'"},
        {"[1]", "f.json:1:1: wants an object of options, {\"port\": 3000, ...}, not an array"},
        {"", "f.json:1:1: '[' or '{' expected near end of file"},
        {"  \n\xc3\xa9{\"p\xc3\xa9\": 1}", "f.json:2:1: '[' or '{' expected near '\xc3\xa9'"},
        {"{\"\xc3\xa9t\xc3\xa9\": 1, \"h\\u00e9\": 2}",
         "f.json:1:2: unknown option \"\xc3\xa9t\xc3\xa9\" (see herald --help)"},
        {"{\n\t\"\xc3\xa9\": 1, \"x\": {\"a\": [1, \"]}\"]}}",
         "f.json:2:2: unknown option \"\xc3\xa9\" (see herald --help)"},
        {"{\"cors-origin\": \"*\", \"allowed-origins\": \"*\"}",
         "f.json: --cors-origin is the old name of --allowed-origins: give one"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct herald_config cfg;
        hr_config_init(&cfg);
        cfg.app_known = app_known;
        err[0] = 0;
        int rc =
            hr_config_load_text(&cfg, "f.json", cases[i][0], strlen(cases[i][0]), err, sizeof err);
        if (rc != HR_EINVAL || strcmp(err, cases[i][1]) != 0)
            fail_msg("%s: %d %s", cases[i][0], rc, err);
    }
    /* a key's position after multi-byte characters and escapes counts characters */
    struct herald_config cfg;
    hr_config_init(&cfg);
    const char *text = "{\"public\": \"\xc3\xa9\\\"t\xc3\xa9\", \"nope\": null}";
    assert_int_equal(hr_config_load_text(&cfg, "f", text, strlen(text), err, sizeof err),
                     HR_EINVAL);
    assert_string_equal(err, "f:1:21: unknown option \"nope\" (see herald --help)");
    /* null is as if absent */
    hr_config_init(&cfg);
    text = "{\"port\": null, \"allowed-origins\": null}";
    assert_int_equal(hr_config_load_text(&cfg, "f", text, strlen(text), err, sizeof err), 0);
    assert_int_equal(cfg.io.port, 3000);
    assert_true(hr_optset_empty(&cfg.given));
}

/* --print-config's output read back gives the same configuration, printed the same. */
static void print_round_trip(void **state)
{
    struct herald_config cfg;
    hr_config_init(&cfg);
    char *argv[] = {"herald",
                    "--port",
                    "4321",
                    "--lp-timeout",
                    "0.25",
                    "--quiet",
                    "--channel-policy",
                    "a:*=coalesce",
                    "--channel-policy",
                    "b=c=skip",
                    "--channel-rule",
                    "n:* all none",
                    "--allowed-origins",
                    "https://a.example",
                    "--max-memory",
                    "0",
                    "--history-age",
                    "90",
                    "--publish-key",
                    "0123456789abcdef",
                    NULL};
    assert_int_equal(parse(&cfg, ARGC(argv), argv), 0);
    char *one = NULL, *two = NULL;
    size_t n1 = 0, n2 = 0;
    FILE *f = open_memstream(&one, &n1);
    assert_int_equal(hr_config_print(f, &cfg), 0);
    fclose(f);
    assert_non_null(strstr(one, "\"publish-key\": \"<redacted>\""));
    assert_null(strstr(one, "0123456789abcdef"));
    assert_non_null(strstr(one, "\"lp-timeout\": 0.25,"));
    assert_non_null(
        strstr(one, "\"channel-policy\": [\n    \"a:*=coalesce\",\n    \"b=c=skip\"\n  ]"));
    assert_null(strstr(one, "cors-origin"));
    assert_null(strstr(one, "\"config\""));
    /* the secret excepted: read back without it */
    char *red = strstr(one, "  \"publish-key\": \"<redacted>\",\n");
    assert_non_null(red);
    memmove(red, red + strlen("  \"publish-key\": \"<redacted>\",\n"),
            strlen(red + strlen("  \"publish-key\": \"<redacted>\",\n")) + 1);
    struct herald_config back;
    hr_config_init(&back);
    back.app_known = app_known;
    assert_int_equal(hr_config_load_text(&back, "p", one, strlen(one), err, sizeof err), 0);
    back.auth.publish_key = cfg.auth.publish_key;
    hr_config_quota_defaults(&back);
    f = open_memstream(&two, &n2);
    assert_int_equal(hr_config_print(f, &back), 0);
    fclose(f);
    assert_int_equal(back.io.port, 4321);
    assert_int_equal(back.lp_timeout_ms, 250);
    assert_true(back.limits.max_memory == 0);
    assert_int_equal(back.history.nrules, 2);
    assert_string_equal(back.history.rules[1].pattern, "b=c");
    /* printed alike, but for the line left out */
    char *red2 = strstr(two, "  \"publish-key\": \"<redacted>\",\n");
    assert_non_null(red2);
    memmove(red2, red2 + strlen("  \"publish-key\": \"<redacted>\",\n"),
            strlen(red2 + strlen("  \"publish-key\": \"<redacted>\",\n")) + 1);
    assert_string_equal(one, two);
    free(one);
    free(two);
}

/* Whatever the text, the file reader answers without crashing (ASan builds check memory):
 * a valid file cut and mangled byte by byte. */
static void file_reader_survives_mangling(void **state)
{
    const char *base = "{\n  \"port\": 4001, \"channel-rule\": [\"a:* all none\", \"b\\\"c\"],\n"
                       "  \"lp-timeout\": 2.5e0, \"quiet\": true, \"x\": {\"y\": [[], {}]}\n}\n";
    size_t len = strlen(base);
    char buf[256];
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, base, len);
        size_t n = len;
        for (int k = 0; k < 1 + round % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            static const char bytes[] = "{}[]\",:\\ \n0e.-tn\xc3\x80";
            buf[at] = bytes[(seed >> 8) % (sizeof bytes - 1)];
        }
        if (round % 7 == 0)
            n = (seed >> 4) % len;
        struct herald_config cfg;
        hr_config_init(&cfg);
        err[0] = 0;
        int rc = hr_config_load_text(&cfg, "m", buf, n, err, sizeof err);
        assert_true(rc == 0 || rc == HR_EINVAL);
        assert_true(rc == 0 || (strncmp(err, "m:", 2) == 0 || strncmp(err, "m: ", 3) == 0));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_the_table),
        cmocka_unit_test(lower_layer_defaults_agree),
        cmocka_unit_test(quota_defaults),
        cmocka_unit_test(parses_every_type),
        cmocka_unit_test(parses_over_the_callers_values),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(help_lists_every_entry),
        cmocka_unit_test(table_is_complete),
        cmocka_unit_test(public_parse),
        cmocka_unit_test(precedence),
        cmocka_unit_test(env_refusals),
        cmocka_unit_test(file_refusals),
        cmocka_unit_test(print_round_trip),
        cmocka_unit_test(file_reader_survives_mangling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
