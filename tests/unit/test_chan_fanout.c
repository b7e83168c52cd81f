/* test_chan_fanout.c - one encoding per wire format: a message published to a channel that is
 * read over every transport at once (WebSocket, SSE, held long polls, short polls, Socket.IO
 * over WebSocket and over polling, with and without recovery offsets) is encoded once per
 * format, and every reader's connection is given that very buffer: N references, no copy or
 * encoding per reader. The real HTTP, WebSocket, channel, Engine.IO and Socket.IO code runs on
 * connections without sockets (fake_conn.h), which keep what they were given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_server.h"

#define N 3

static struct fake_server f;

static void join_channel_cb(herald_socket *s, void *ud)
{
    herald_join(s, "ch");
}

static int setup(void **state)
{
    fake_server_init(&f, 0);
    herald_on_connection(f.root, join_channel_cb, NULL);
    return 0;
}

static int setup_recovery(void **state)
{
    fake_server_init(&f, 120000);
    herald_on_connection(f.root, join_channel_cb, NULL);
    return 0;
}

static int teardown(void **state)
{
    fake_server_free(&f);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    assert_int_equal(hr_buf_live, 0);
    return 0;
}

/* The buffer holding the bytes want among c's writes from `from` on (NULL: none). */
static struct hr_buf *written(struct hr_conn *c, unsigned from, const char *want)
{
    size_t n = strlen(want);
    for (unsigned i = from; i < fake_conn_writes(c); i++) {
        struct hr_slice *s = &((struct fake_conn *)c)->w[i];
        for (uint32_t at = 0; at + n <= s->len; at++)
            if (memcmp(s->buf->data + s->off + at, want, n) == 0)
                return s->buf;
    }
    return NULL;
}

static void test_one_encoding_per_format(void **state)
{
    struct hr_conn *ws[N], *sse[N], *lp[N], *sio_ws[N], *sio_poll[N];
    char sid[32];
    for (int i = 0; i < N; i++) {
        ws[i] = fake_client(&f, "GET /ws/ch HTTP/1.1\r\n" FAKE_WS_HEADERS);
        sse[i] = fake_client(&f, "GET /sse/ch HTTP/1.1\r\nHost: x\r\n\r\n");
        lp[i] = fake_client(&f, "GET /lp/ch?since=0 HTTP/1.1\r\nHost: x\r\n\r\n");
        sio_ws[i] = fake_sio_ws(&f);
        assert_non_null(sio_poll[i] = fake_sio_poll(&f, sid));
    }
    struct hr_channel *ch = hr_hub_channel(&f.hub, "ch", 2, 0);
    assert_non_null(ch);
    assert_int_equal(ch->nsubs[HR_FMT_WS], N);
    assert_int_equal(ch->nsubs[HR_FMT_SSE], N);
    assert_int_equal(ch->nsubs[HR_FMT_POLL], N);
    assert_int_equal(ch->nsubs[HR_FMT_SIO], 2 * N);
    unsigned before[5][N];
    for (int i = 0; i < N; i++) {
        before[0][i] = fake_conn_writes(ws[i]);
        before[1][i] = fake_conn_writes(sse[i]);
        before[2][i] = fake_conn_writes(lp[i]);
        before[3][i] = fake_conn_writes(sio_ws[i]);
        before[4][i] = fake_conn_writes(sio_poll[i]);
    }

    long live0 = hr_buf_live;
    assert_int_equal(fake_publish(&f, "ch", "{\"hello\":42}"), 0);
    struct hr_hub_msg *m = &ch->ring[(ch->head + ch->cached - 1) % ch->cap];
    struct hr_buf *enc[HR_FMT_COUNT];
    for (int k = 0; k < HR_FMT_COUNT; k++)
        assert_non_null(enc[k] = m->enc[k]);

    /* every reader of a format got the hub's one encoding of it */
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(written(ws[i], before[0][i], "{\"hello\":42}"), enc[HR_FMT_WS]);
        assert_ptr_equal(written(sse[i], before[1][i], "data: {\"hello\":42}"), enc[HR_FMT_SSE]);
        assert_ptr_equal(written(lp[i], before[2][i], "{\"hello\":42}"), enc[HR_FMT_POLL]);
        assert_ptr_equal(written(sio_ws[i], before[3][i], "[\"message\",{\"hello\":42}"),
                         enc[HR_FMT_SIO]);
        assert_ptr_equal(written(sio_poll[i], before[4][i], "[\"message\",{\"hello\":42}"),
                         enc[HR_FMT_SIO]);
    }
    /* referenced by each reader's connection and by the message in the history's cache */
    assert_int_equal(enc[HR_FMT_WS]->refs, N + 1);
    assert_int_equal(enc[HR_FMT_SSE]->refs, N + 1);
    assert_int_equal(enc[HR_FMT_POLL]->refs, N + 1);
    assert_int_equal(enc[HR_FMT_SIO]->refs, 2 * N + 1);
    /* and nothing else was made per reader: the payload, one encoding per format, and the
     * HTTP answers' own parts (a long poll's head and JSON around the messages, a Socket.IO
     * poll's head) */
    assert_int_equal(hr_buf_live, live0 + 1 + HR_FMT_COUNT + 3 * N + N);

    /* short polls after it: the same poll encoding */
    for (int i = 0; i < N; i++) {
        struct hr_conn *c = fake_client(&f, "GET /poll/ch HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_ptr_equal(written(c, 0, "{\"hello\":42}"), enc[HR_FMT_POLL]);
    }
    assert_int_equal(enc[HR_FMT_POLL]->refs, 2 * N + 1);

    /* a second message: one more encoding per format, whatever the readers */
    live0 = hr_buf_live;
    for (int i = 0; i < N; i++)
        fake_conn_text(lp[i], "GET /lp/ch?since=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(fake_publish(&f, "ch", "[2]"), 0);
    assert_int_equal(hr_buf_live, live0 + 1 + HR_FMT_COUNT + 3 * N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_encoding_per_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_encoding_per_format, setup_recovery, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
