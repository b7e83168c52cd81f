/* test_server_options.c - src/server/config.c: the options table drives the defaults (and the
 * lower layers' *_DEFAULT macros agree with it), parses every type of value, refuses bad ones
 * with one line naming the flag, and --help lists every entry with its default. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int parse(struct herald_config *cfg, int argc, char **argv)
{
    err[0] = 0;
    cfg->app_known = app_known;
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
    assert_int_equal(cfg.given, 0);
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
    char *argv[] = {"herald", "--max-head", "1024", "--store", "memory", NULL};
    assert_int_equal(herald_options_parse(&o, ARGC(argv), argv), 0);
    assert_int_equal(o.port, 4000);
    assert_string_equal(o.store, "memory");
    assert_non_null(o.config);
    assert_int_equal(o.config->limits.max_head, 1024);
    free(o.config);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
