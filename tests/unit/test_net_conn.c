/* test_net_conn.c - the write path on real loopback sockets: output corked to one send per
 * connection and loop turn, one broadcast buffer shared by every write queue (no per-recipient
 * copy), queued bytes capped, the slow-consumer policy, a flush held for output about to come. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/server.h"
#include "ws/ws.h"

#define N 6

static struct hr_conn *accepted[N];
static int naccepted;

static ssize_t sink_read(struct hr_conn *c, char *data, size_t len)
{
    return (ssize_t)len;
}
static const struct hr_proto sink = {.name = "sink", .on_read = sink_read};

static void on_accept(struct hr_conn *c)
{
    c->proto = &sink;
    int small = 4096; /* so that the kernel soon stops taking bytes and our queue is used */
    setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    if (naccepted < N)
        accepted[naccepted++] = c;
}

struct fixture {
    uv_loop_t loop;
    struct hr_server srv;
    int fds[N];
};

static int client(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct hr_limits lim = HR_LIMITS_DEFAULT;
    lim.max_queued = 256 * 1024;
    uv_loop_init(&f->loop);
    assert_int_equal(hr_server_init(&f->srv, &f->loop, &lim), 0);
    f->srv.on_accept = on_accept;
    assert_int_equal(hr_server_listen(&f->srv, "127.0.0.1", 0), 0);
    naccepted = 0;
    int port = hr_server_port(&f->srv);
    for (int i = 0; i < N; i++)
        f->fds[i] = client(port, 4096);
    for (int spins = 0; naccepted < N && spins < 1000; spins++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(naccepted, N);
    *state = f;
    return 0;
}

static void print_handle(uv_handle_t *h, void *arg)
{
    fprintf(stderr, "live handle: %s closing=%d active=%d\n", uv_handle_type_name(h->type),
            uv_is_closing(h), uv_is_active(h));
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < N; i++)
        close(f->fds[i]);
    hr_server_stop(&f->srv);
    for (int spins = 0; spins < 1000 && uv_loop_alive(&f->loop); spins++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_walk(&f->loop, print_handle, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    hr_server_free(&f->srv);
    free(f);
    assert_int_equal(hr_buf_live, 0);
    return 0;
}

/* Read whatever is available on fd into out (up to cap); returns bytes read. */
static size_t drain_fd(int fd, char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, out ? out + n : (char[65536]){0}, out ? cap - n : 65536);
        if (r <= 0)
            break;
        if (out)
            n += (size_t)r;
        else
            n += (size_t)r;
        if (out && n == cap)
            break;
    }
    return n;
}

/* Writes of one loop turn leave together: many small writes to each of N connections cost one
 * send per connection, nothing is sent before the loop runs, and the bytes arrive in order. */
static void test_writes_are_corked(void **state)
{
    struct fixture *f = *state;
    enum { K = 50 };
    struct hr_buf *b[K];
    for (int k = 0; k < K; k++) {
        b[k] = hr_buf_new(16);
        b[k]->len = (uint32_t)snprintf(b[k]->data, 16, "m%02d;", k);
    }
    uint64_t sends = f->srv.sends;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++)
            assert_int_equal(hr_conn_write(accepted[i], b[k]), 0);
    assert_int_equal(b[0]->refs, 1 + N); /* held by each queue, not copied */
    for (int i = 0; i < N; i++) {
        assert_int_equal(hr_conn_queued(accepted[i]), K * 4);
        char none[8];
        assert_int_equal(read(f->fds[i], none, sizeof none), -1); /* corked: nothing yet */
    }
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->srv.sends - sends, N);
    for (int k = 0; k < K; k++) {
        assert_int_equal(b[k]->refs, 1); /* sent: the queues let go */
        hr_buf_unref(b[k]);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(hr_conn_queued(accepted[i]), 0);
        char got[K * 4 + 1] = "";
        size_t n = 0;
        for (int spins = 0; n < K * 4 && spins < 1000; spins++)
            n += drain_fd(f->fds[i], got + n, K * 4 - n);
        assert_int_equal(n, K * 4);
        for (int k = 0; k < K; k++) {
            char want[8];
            snprintf(want, sizeof want, "m%02d;", k);
            assert_memory_equal(got + 4 * k, want, 4);
        }
    }
}

/* One buffer, N write queues: while the peers do not read, every queue holds a reference to
 * the same bytes and no copy exists. */
static void test_broadcast_shares_one_buffer(void **state)
{
    struct fixture *f = *state;
    size_t size = 512 * 1024; /* more than the kernel takes at once, so it must queue */
    struct hr_buf *b = hr_buf_new(size);
    for (size_t i = 0; i < size; i++)
        b->data[i] = (char)(i * 7 + 3);
    b->len = (uint32_t)size;
    long live_before = hr_buf_live;
    for (int i = 0; i < N; i++)
        assert_int_equal(hr_conn_write(accepted[i], b), 0);
    /* the loop sends what each kernel takes (little: the peers' buffers are small); the rest
     * waits in every queue as a reference to the same bytes */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(hr_buf_live, live_before); /* no per-recipient copy */
    assert_int_equal(b->refs, 1 + N);           /* every queue shares it */
    for (int i = 0; i < N; i++) {
        assert_true(hr_conn_queued(accepted[i]) > 0);
        assert_true(hr_conn_queued(accepted[i]) < size); /* the kernel took a part */
    }

    /* every peer receives exactly the same bytes */
    char *got = malloc(size);
    for (int i = 0; i < N; i++) {
        size_t n = 0;
        for (int spins = 0; n < size && spins < 100000; spins++) {
            uv_run(&f->loop, UV_RUN_NOWAIT);
            n += drain_fd(f->fds[i], got + n, size - n);
        }
        assert_int_equal(n, size);
        assert_memory_equal(got, b->data, size);
    }
    for (int spins = 0; b->refs > 1 && spins < 1000; spins++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(b->refs, 1); /* queues released it once written */
    free(got);
    hr_buf_unref(b);
}

/* A hold (more output about to be made, a publish being committed): the turn's flush waits
 * while it says so, sends everything in one pass once it stops, and never waits longer than
 * HR_HOLD_MS whatever it says; with fewer dirty connections than hold_conns it is not asked. */
static int holding, hold_asked;
static int hold_cb(void *ud)
{
    hold_asked++;
    return holding;
}

static void write_all(struct fixture *f, struct hr_buf *b)
{
    for (int i = 0; i < N; i++)
        assert_int_equal(hr_conn_write(accepted[i], b), 0);
}

static void test_flush_hold(void **state)
{
    struct fixture *f = *state;
    struct hr_buf *b = hr_buf_new(4);
    memcpy(b->data, "abc;", 4);
    b->len = 4;
    hr_server_set_hold(&f->srv, hold_cb, NULL);
    f->srv.hold_conns = N;
    char got[64];

    /* held while the hold says so, then one send per connection for both writes */
    holding = 1;
    uint64_t sends = f->srv.sends;
    write_all(f, b);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_true(hold_asked > 0);
    assert_int_equal(f->srv.sends, sends);
    assert_int_equal(read(f->fds[0], got, sizeof got), -1);
    write_all(f, b);
    holding = 0;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->srv.sends - sends, N);
    for (int i = 0; i < N; i++) {
        size_t n = 0;
        for (int spins = 0; n < 8 && spins < 1000; spins++)
            n += drain_fd(f->fds[i], got + n, 8 - n);
        assert_int_equal(n, 8);
        assert_memory_equal(got, "abc;abc;", 8);
    }

    /* a hold that never ends is cut short: the output leaves within HR_HOLD_MS */
    holding = 1;
    sends = f->srv.sends;
    write_all(f, b);
    uint64_t t0 = uv_hrtime();
    while (f->srv.sends == sends && uv_hrtime() - t0 < 1000000000ull)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->srv.sends - sends, N);
    assert_true(uv_hrtime() - t0 >= (HR_HOLD_MS - 1) * 1000000ull);

    /* fewer dirty connections than hold_conns: not held, not even asked */
    hold_asked = 0;
    sends = f->srv.sends;
    assert_int_equal(hr_conn_write(accepted[0], b), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(hold_asked, 0);
    assert_int_equal(f->srv.sends - sends, 1);
    for (int i = 0; i < N; i++)
        drain_fd(f->fds[i], NULL, 0);
    holding = 0;
    hr_server_set_hold(&f->srv, NULL, NULL);
    hr_buf_unref(b);
}

/* A peer that stops reading: the connection reports full past max_queued, and the drain
 * callback fires once the peer reads again. */
static int drained;
static void on_drain(struct hr_conn *c)
{
    drained++;
}

static void test_full_then_drain(void **state)
{
    struct fixture *f = *state;
    struct hr_proto p = sink;
    p.on_drain = on_drain;
    struct hr_conn *c = accepted[0];
    c->proto = &p;
    struct hr_buf *b = hr_buf_new(64 * 1024);
    b->len = 64 * 1024;
    memset(b->data, 'x', b->len);
    int writes = 0;
    while (!hr_conn_full(c) && writes < 1000) {
        assert_int_equal(hr_conn_write(c, b), 0);
        writes++;
    }
    assert_true(hr_conn_full(c));
    assert_true(hr_conn_queued(c) > f->srv.limits.max_queued);
    drained = 0;
    for (int spins = 0; !drained && spins < 100000; spins++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        drain_fd(f->fds[0], NULL, 0);
    }
    assert_int_equal(drained, 1);
    assert_false(hr_conn_full(c));
    c->proto = &sink;
    hr_buf_unref(b);
}

/* Broadcast policy: a WebSocket whose queue is over max_queued is closed with 1008 instead of
 * queueing more; the others keep getting every frame. */
static void test_ws_slow_consumer_closed(void **state)
{
    struct fixture *f = *state;
    static const struct hr_ws_handler none = {0};
    struct hr_ws *ws[2];
    for (int i = 0; i < 2; i++) {
        ws[i] = calloc(1, sizeof(struct hr_ws));
        ws[i]->conn = accepted[i];
        ws[i]->h = &none;
        ws[i]->state = HR_WS_OPEN;
    }
    char payload[16384];
    memset(payload, 'p', sizeof payload);
    size_t frames = 0, slow_got = 0;
    for (int round = 0; round < 200 && ws[0]->state == HR_WS_OPEN; round++) {
        size_t sent = hr_ws_broadcast(ws, 2, HR_WS_OP_BINARY, payload, sizeof payload);
        frames++;
        if (ws[0]->state == HR_WS_OPEN)
            assert_int_equal(sent, 2);
        uv_run(&f->loop, UV_RUN_NOWAIT);
        drain_fd(f->fds[1], NULL, 0); /* peer 1 keeps up; peer 0 never reads */
    }
    assert_int_equal(ws[0]->state, HR_WS_CLOSING);
    assert_int_equal(ws[1]->state, HR_WS_OPEN);
    /* memory stayed bounded: at most max_queued plus one frame and the close frame */
    assert_true(hr_conn_queued(accepted[0]) <= f->srv.limits.max_queued + sizeof payload + 200);

    /* peer 0 now reads: whole frames, then a close frame with 1008 */
    static char all[8 << 20];
    size_t n = 0;
    for (int spins = 0, quiet = 0; spins < 100000 && quiet < 2000; spins++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        size_t r = drain_fd(f->fds[0], all + n, sizeof all - n);
        n += r;
        quiet = r ? 0 : quiet + 1;
    }
    size_t off = 0;
    int closed_with = 0;
    while (off + 2 <= n) {
        uint8_t op = (uint8_t)all[off] & 0x0f;
        size_t len = (uint8_t)all[off + 1] & 0x7f, hl = 2;
        if (len == 126) {
            len = ((size_t)(uint8_t)all[off + 2] << 8) | (uint8_t)all[off + 3];
            hl = 4;
        }
        if (off + hl + len > n)
            break;
        if (op == HR_WS_OP_CLOSE) {
            closed_with = ((uint8_t)all[off + hl] << 8) | (uint8_t)all[off + hl + 1];
            break;
        }
        assert_int_equal(op, HR_WS_OP_BINARY);
        assert_int_equal(len, sizeof payload);
        slow_got++;
        off += hl + len;
    }
    assert_int_equal(closed_with, 1008);
    assert_true(slow_got < frames);
    for (int i = 0; i < 2; i++) {
        /* hand the conns back to the sink protocol; the ws objects were ours */
        free(ws[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writes_are_corked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broadcast_shares_one_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_hold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_then_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_slow_consumer_closed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
