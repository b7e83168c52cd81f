/* test_sio_emit.c - an event's arguments as the handlers see them: herald_args_count counts the
 * checked raw text without parsing it, and must agree with the parsed array; and a broadcast
 * (io.emit, to everyone or to a room, with and without recovery offsets, with attachments) is
 * encoded once: every socket's connection, over WebSocket or polling, is given the same frame
 * (fake_server.h: the real Engine.IO and Socket.IO on connections without sockets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "fake_server.h"
#include "sio/internal.h"

/* parse: the handler read the parsed array first (herald_args_json), so the count is its size */
static size_t count(const char *raw, int parse)
{
    herald_args a = {.raw = raw, .raw_len = strlen(raw)};
    if (parse)
        assert_non_null(herald_args_json(&a));
    size_t n = herald_args_count(&a);
    json_decref(a.parsed);
    return n;
}

static void count_agrees_with_the_parse(void **state)
{
    static const struct {
        const char *raw;
        size_t n;
    } t[] = {
        {"", 0},
        {"  ", 0},
        {"1", 1},
        {"\"a,b\"", 1},
        {"\"a\\\",\\\\\",2", 2},
        {"[1,2,[3,4]],{\"k\":[5,6],\"l\":\"]\"}", 2},
        {" 1 , \"x\" , null , true , {} , [] ", 6},
        {"\"\\u005d,\\\\\"", 1},
        {"{\"a\":\"{[\"}", 1},
        {"-1.5e3,\"\xe4\xbd\xa0,\xe5\xa5\xbd\"", 2},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char arr[128];
        snprintf(arr, sizeof arr, "[%s]", t[i].raw); /* what the decoder checked */
        assert_int_equal(hr_json_check(arr, strlen(arr)), '[');
        if (count(t[i].raw, 0) != t[i].n)
            fail_msg("'%s': counted %zu, want %zu", t[i].raw, count(t[i].raw, 0), t[i].n);
        assert_int_equal(count(t[i].raw, 1), t[i].n);
    }
}

/* ---- broadcasts ---- */

#define N 3

static struct fake_server f;
static struct hr_conn *ws[N], *poll[N];
static char sids[N][32];

static void join_rooms_cb(herald_socket *s, void *ud)
{
    herald_join(s, "team#1"); /* not a channel name: a room only */
    herald_join(s, "ch");     /* a channel's room: an emit to it is still a plain broadcast */
}

static void clients(uint32_t recovery_window_ms)
{
    fake_server_init(&f, recovery_window_ms);
    herald_on_connection(f.root, join_rooms_cb, NULL);
    for (int i = 0; i < N; i++) {
        ws[i] = fake_sio_ws(&f);
        assert_non_null(poll[i] = fake_sio_poll(&f, sids[i]));
    }
    assert_int_equal(HASH_COUNT(f.root->sockets), 2 * N);
}

static int setup(void **state)
{
    clients(0);
    return 0;
}

static int setup_recovery(void **state)
{
    clients(120000);
    return 0;
}

static int teardown(void **state)
{
    fake_server_free(&f);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    assert_int_equal(hr_buf_live, 0);
    return 0;
}

/* Hold a GET on each polling client again (its last one was answered). */
static void poll_again(void)
{
    char req[256];
    for (int i = 0; i < N; i++) {
        snprintf(req, sizeof req,
                 "GET /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\n\r\n",
                 sids[i]);
        fake_conn_text(poll[i], req);
    }
}

/* io.emit / io.to(room).emit: one frame; each WebSocket gets it, each poll its payload (a
 * slice of it); with recovery on, its offset is in that one frame. */
static void test_broadcast_one_frame(void **state)
{
    const char *rooms[] = {NULL, "team#1", "ch"};
    for (size_t r = 0; r < sizeof rooms / sizeof *rooms; r++) {
        long live0 = hr_buf_live;
        assert_int_equal(
            herald_broadcast_raw(f.root, rooms[r], NULL, "news", "{\"n\":1}", 7, NULL, 0), 2 * N);
        struct hr_buf *frame = fake_conn_buf(ws[0], -1);
        assert_non_null(frame);
        char out[256];
        fake_conn_output(ws[0], fake_conn_writes(ws[0]) - 1, out, sizeof out);
        assert_non_null(strstr(out, f.io->opts.recovery_window_ms ? "42[\"news\",{\"n\":1},\""
                                                                  : "42[\"news\",{\"n\":1}]"));
        for (int i = 0; i < N; i++) {
            assert_ptr_equal(fake_conn_buf(ws[i], -1), frame);
            assert_ptr_equal(fake_conn_buf(poll[i], -1), frame);
        }
        /* each socket's, and with recovery on the kept packet's: a replay sends it again */
        int kept = f.io->opts.recovery_window_ms != 0;
        assert_int_equal(frame->refs, 2 * N + kept);
        if (kept)
            assert_ptr_equal(f.root->kept_tail->frame, frame);
        /* the frame, and each poll answer's head */
        assert_int_equal(hr_buf_live, live0 + 1 + N);
        poll_again();
    }
}

/* With an attachment: the text frame, and the attachment once per transport's form (a binary
 * frame for WebSockets, its base64 record for polls), each shared. */
static void test_broadcast_attachment(void **state)
{
    static const uint8_t bin[4] = {1, 2, 3, 4};
    struct herald_bin b = {bin, sizeof bin};
    long live0 = hr_buf_live;
    static const char arg[] = "{\"_placeholder\":true,\"num\":0}";
    assert_int_equal(herald_broadcast_raw(f.root, NULL, NULL, "file", arg, sizeof arg - 1, &b, 1),
                     2 * N);
    struct hr_buf *text = fake_conn_buf(ws[0], -2), *binary = fake_conn_buf(ws[0], -1);
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(fake_conn_buf(ws[i], -2), text);
        assert_ptr_equal(fake_conn_buf(ws[i], -1), binary);
        assert_ptr_equal(fake_conn_buf(poll[i], -1), text); /* the base64 record waits */
    }
    assert_int_equal(binary->refs, N);
    /* the text frame, the binary frame, the base64 record; each poll answer's head */
    assert_int_equal(hr_buf_live, live0 + 3 + N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(count_agrees_with_the_parse),
        cmocka_unit_test_setup_teardown(test_broadcast_one_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broadcast_one_frame, setup_recovery, teardown),
        cmocka_unit_test_setup_teardown(test_broadcast_attachment, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
