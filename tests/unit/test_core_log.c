/* test_core_log.c - core/log.c: the access log's target redaction (no token reaches a log),
 * the level and format names, and JSON lines that stay valid JSON whatever the message holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

static const char *redact(const char *in, size_t outlen)
{
    static char out[256];
    size_t n = hr_log_redact_target(in, strlen(in), out, outlen);
    assert_int_equal(n, strlen(out));
    assert_true(n < outlen);
    return out;
}

static void test_redact(void **state)
{
    (void)state;
    const size_t big = 256;
    assert_string_equal(redact("/", big), "/");
    assert_string_equal(redact("/sse/chat", big), "/sse/chat");
    assert_string_equal(redact("/sse/a?token=abc.def.ghi", big), "/sse/a?token=[redacted]");
    assert_string_equal(redact("/p?since=3&TOKEN=x&b=2", big), "/p?since=3&TOKEN=[redacted]&b=2");
    assert_string_equal(redact("/p?key=1&password=2&secret=3&access_token=4", big),
                        "/p?key=[redacted]&password=[redacted]&secret=[redacted]&"
                        "access_token=[redacted]");
    /* names that only contain a secret's name, and values without a name, stay */
    assert_string_equal(redact("/p?tokens=1&mytoken=2&token&=token", big),
                        "/p?tokens=1&mytoken=2&token&=token");
    assert_string_equal(redact("/p?token=", big), "/p?token=[redacted]");
    assert_string_equal(redact("/socket.io/?EIO=4&transport=polling&sid=AbC12_-x", big),
                        "/socket.io/?EIO=4&transport=polling&sid=[redacted]");
    assert_string_equal(redact("/p?a=1&", big), "/p?a=1&");
    assert_string_equal(redact("/p?token=s#frag", big), "/p?token=[redacted]#frag");
    /* a path with '=' in it is a path */
    assert_string_equal(redact("/token=abc", big), "/token=abc");
}

static void test_redact_cut(void **state)
{
    (void)state;
    /* cut with "..." at the end, never a secret's first bytes */
    assert_string_equal(redact("/abcdefghijklmnop", 12), "/abcdefg...");
    assert_string_equal(redact("/x?token=0123456789", 12), "/x?token...");
    assert_string_equal(redact("/x?token=0123456789", 14), "/x?token=[...");
    assert_string_equal(redact("/x?token=0123456789", 24), "/x?token=[redacted]");
    char out[8];
    assert_int_equal(hr_log_redact_target("/abc", 4, out, 4), 0);
    assert_int_equal(hr_log_redact_target("/abc", 4, out, 0), 0);
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(hr_log_level_parse("error"), HR_LOG_ERROR);
    assert_int_equal(hr_log_level_parse("warn"), HR_LOG_WARN);
    assert_int_equal(hr_log_level_parse("info"), HR_LOG_INFO);
    assert_int_equal(hr_log_level_parse("debug"), HR_LOG_DEBUG);
    assert_int_equal(hr_log_level_parse("INFO"), -1);
    assert_int_equal(hr_log_level_parse(""), -1);
    assert_int_equal(hr_log_format_parse("text"), HR_LOG_TEXT);
    assert_int_equal(hr_log_format_parse("json"), HR_LOG_JSON);
    assert_int_equal(hr_log_format_parse("JSON"), -1);
}

/* Run fn with stderr going to a pipe; returns what it wrote. */
static char *capture(void (*fn)(void))
{
    static char buf[16384];
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    close(fds[0]);
    buf[n] = 0;
    return buf;
}

static void log_nasty(void)
{
    hr_log(HR_LOG_WARN, "quote \" backslash \\ newline \n tab \t del \x7f bad \xff\xfe end");
    hr_log(HR_LOG_INFO, "utf-8 stays: h\xc3\xa9llo \xe2\x9c\x93");
    hr_log(HR_LOG_DEBUG, "not shown");
    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    hr_log(HR_LOG_ERROR, "%s", big);
    struct hr_log_request r = {.remote = "::1",
                               .method = "GET",
                               .target = "/a?token=t\"\n",
                               .target_len = 12,
                               .http_minor = 1,
                               .status = 200,
                               .length = -1,
                               .ms = 7};
    hr_log_request(&r);
}

static void test_json_lines(void **state)
{
    (void)state;
    hr_log_format = HR_LOG_JSON;
    hr_log_level = HR_LOG_INFO;
    hr_log_access = 1;
    char *out = capture(log_nasty);
    hr_log_format = HR_LOG_TEXT;
    hr_log_access = 0;
    int lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        assert_non_null(j); /* every line is one valid JSON object */
        assert_true(json_is_object(j));
        assert_non_null(json_object_get(j, "time"));
        const char *level = json_string_value(json_object_get(j, "level"));
        assert_non_null(level);
        if (lines == 0) {
            assert_string_equal(level, "warn");
            assert_string_equal(json_string_value(json_object_get(j, "msg")),
                                "quote \" backslash \\ newline \n tab \t del \x7f bad \xc3\xbf\xc3"
                                "\xbe end");
        } else if (lines == 1) {
            assert_string_equal(json_string_value(json_object_get(j, "msg")),
                                "utf-8 stays: h\xc3\xa9llo \xe2\x9c\x93");
        } else if (lines == 2) {
            assert_string_equal(level, "error");
            assert_true(strlen(json_string_value(json_object_get(j, "msg"))) > 3000);
        } else {
            assert_string_equal(json_string_value(json_object_get(j, "type")), "access");
            assert_string_equal(json_string_value(json_object_get(j, "target")),
                                "/a?token=[redacted]");
            assert_true(json_is_null(json_object_get(j, "length")));
            assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
        }
        json_decref(j);
    }
    assert_int_equal(lines, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_redact_cut),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_json_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
