/* test_chan_wire.c - what the channel transports share (chan/wire.c): cursors, where a reader
 * starts, channel names in paths, the JSON form of a message and of a publish body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan/wire.h"
#include "core/error.h"

static void test_cursor_parse(void **state)
{
    struct hr_cursor c;
    assert_int_equal(hr_cursor_parse("12", 2, &c), 0);
    assert_int_equal(c.id, 12);
    assert_string_equal(c.epoch, "");
    assert_int_equal(hr_cursor_parse("0a1b2c3d4e5f:7", 14, &c), 0);
    assert_int_equal(c.id, 7);
    assert_string_equal(c.epoch, "0a1b2c3d4e5f");
    assert_int_equal(hr_cursor_parse("18446744073709551615", 20, &c), 0);
    assert_true(c.id == UINT64_MAX);
    /* only up to the length given */
    assert_int_equal(hr_cursor_parse("e:99xyz", 4, &c), 0);
    assert_int_equal(c.id, 99);

    static const char *const bad[] = {
        "",
        ":1",
        "e:",
        "e:x",
        "1x",
        "-1",
        "e:1 ",
        "18446744073709551616",
        "123456789012345678901",
        "a b:1",
        "a\"b:1",
        "a\\b:1",
        "a\x7f"
        ":1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(hr_cursor_parse(bad[i], strlen(bad[i]), &c), HR_EINVAL);
    char epoch[HR_CURSOR_EPOCH_MAX + 8];
    memset(epoch, 'e', HR_CURSOR_EPOCH_MAX);
    memcpy(epoch + HR_CURSOR_EPOCH_MAX, ":1", 3);
    assert_int_equal(hr_cursor_parse(epoch, strlen(epoch), &c), 0);
    memset(epoch, 'e', HR_CURSOR_EPOCH_MAX + 1);
    memcpy(epoch + HR_CURSOR_EPOCH_MAX + 1, ":1", 3);
    assert_int_equal(hr_cursor_parse(epoch, strlen(epoch), &c), HR_EINVAL);
}

/* ---- where a reader starts, on a real hub ---- */
static int nacked;
static void on_ack(void *ud, int status, uint64_t id)
{
    nacked++;
}

static void test_cursor_start(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct hr_store *store = hr_store_memory_new(&loop);
    struct hr_hub hub;
    struct hr_hub_limits l = HR_HUB_LIMITS_DEFAULT;
    l.max_messages = 5;
    assert_int_equal(hr_hub_init(&hub, &loop, store, &l), 0);
    struct hr_channel *ch = hr_hub_channel(&hub, "w", 1, 1);
    struct hr_cursor c;
    uint64_t since = 99;

    /* an empty channel: 0 is where it starts */
    assert_int_equal(hr_cursor_parse("0", 1, &c), 0);
    assert_null(hr_cursor_start(&c, ch, &since));
    assert_int_equal(since, 0);
    assert_int_equal(hr_cursor_parse("1", 1, &c), 0);
    assert_string_equal(hr_cursor_start(&c, ch, &since), "unknown");

    for (int i = 0; i < 8; i++)
        assert_int_equal(hr_hub_publish(&hub, ch, "1", 1, on_ack, NULL), 0);
    while (nacked < 8)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(hr_hub_first_id(ch), 4);

    static const struct {
        const char *cur;
        const char *gap;
        uint64_t since;
    } t[] = {
        {"3", NULL, 3},
        {"8", NULL, 8},
        {"5", NULL, 5},
        {"2", "trimmed", 2},
        {"0", "trimmed", 0},
        {"9", "unknown", 0},
        {"ffffffffffff:5", "epoch", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        assert_int_equal(hr_cursor_parse(t[i].cur, strlen(t[i].cur), &c), 0);
        const char *gap = hr_cursor_start(&c, ch, &since);
        if (t[i].gap)
            assert_string_equal(gap, t[i].gap);
        else
            assert_null(gap);
        assert_int_equal(since, t[i].since);
    }
    /* the channel's own epoch */
    char s[64];
    snprintf(s, sizeof s, "%s:6", ch->epoch);
    assert_int_equal(hr_cursor_parse(s, strlen(s), &c), 0);
    assert_true(hr_cursor_of(&c, ch));
    assert_null(hr_cursor_start(&c, ch, &since));
    assert_int_equal(since, 6);

    store->ops->close(store);
    hr_hub_free(&hub);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_channel_from_path(void **state)
{
    char out[HR_CHANNEL_NAME_MAX + 1];
    size_t len = 0;
    static const struct {
        const char *path, *name;
    } t[] = {
        {"/sse/chat", "chat"},
        {"/sse/chat?x=1", "chat"},
        {"/sse/chat#f", "chat"},
        {"/sse/user%3Aa", "user:a"},
        {"/sse/user%3aa", "user:a"},
        {"/sse/a.b-c_d@e", "a.b-c_d@e"},
        {"/sse/", NULL},
        {"/sse/a%2", NULL},
        {"/sse/a%zz", NULL},
        {"/sse/a%20b", NULL},
        {"/sse/a/b", NULL},
        {"/ws/chat", NULL},
        {"/sse", NULL},
        {"/sse/%00", NULL},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        const char *name = hr_channel_from_path(t[i].path, "/sse/", out, &len);
        if (!t[i].name) {
            assert_null(name);
            continue;
        }
        assert_non_null(name);
        assert_string_equal(name, t[i].name);
        assert_int_equal(len, strlen(t[i].name));
    }
    char path[HR_CHANNEL_NAME_MAX + 16] = "/sse/";
    memset(path + 5, 'x', HR_CHANNEL_NAME_MAX);
    path[5 + HR_CHANNEL_NAME_MAX] = 0;
    assert_non_null(hr_channel_from_path(path, "/sse/", out, &len));
    assert_int_equal(len, HR_CHANNEL_NAME_MAX);
    strcat(path, "x");
    assert_null(hr_channel_from_path(path, "/sse/", out, &len));
}

static void test_msg_json(void **state)
{
    struct hr_hub_msg m = {
        .id = 7, .time_ms = 1700000000123, .data = hr_buf_from("{\"a\":[1,2]}", 11)};
    struct hr_buf *b = hr_msg_json(&m, "0a1b2c3d4e5f");
    assert_non_null(b);
    static const char want[] =
        "{\"id\":7,\"cursor\":\"0a1b2c3d4e5f:7\",\"time\":1700000000123,\"data\":{\"a\":[1,2]}}";
    assert_int_equal(b->len, sizeof want - 1);
    assert_memory_equal(b->data, want, b->len);
    hr_buf_unref(b);
    hr_buf_unref(m.data);
}

static void check_value(const char *body, int json, const char *want, const char *want_err)
{
    const char *err = NULL;
    struct hr_buf *b = hr_msg_value(body, strlen(body), json, &err);
    if (want_err) {
        assert_null(b);
        assert_string_equal(err, want_err);
        return;
    }
    assert_non_null(b);
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
    hr_buf_unref(b);
}

static void test_msg_value(void **state)
{
    check_value(" \r\n{\"a\": 1}\t\n", 1, "{\"a\": 1}", NULL);
    check_value("42", 1, "42", NULL);
    check_value("\"s\"", 1, "\"s\"", NULL);
    check_value("{\"a\":", 1, NULL, "body is not valid JSON");
    check_value("", 1, NULL, "body is not valid JSON");
    check_value("hello", 0, "\"hello\"", NULL);
    check_value("a\"b\\c\nd\x01", 0, "\"a\\\"b\\\\c\\nd\\u0001\"", NULL);
    check_value("", 0, "\"\"", NULL);
    check_value("caf\xc3\xa9", 0, "\"caf\xc3\xa9\"", NULL);
    check_value("bad\xc3", 0, NULL, "body is not valid UTF-8 text");
    check_value("{not json}", 0, "\"{not json}\"", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_parse),      cmocka_unit_test(test_cursor_start),
        cmocka_unit_test(test_channel_from_path), cmocka_unit_test(test_msg_json),
        cmocka_unit_test(test_msg_value),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (hr_buf_live != 0) {
        fprintf(stderr, "%ld buffers leaked\n", hr_buf_live);
        return 1;
    }
    return rc;
}
