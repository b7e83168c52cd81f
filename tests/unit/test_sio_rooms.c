/* test_sio_rooms.c - Socket.IO rooms that are channels (sio/rooms.c): a channel message is one
 * Engine.IO frame every socket's queue shares, an application's broadcast too, and each socket
 * reads the channel through its own subscriber stream (skip / coalesce per socket). Clients
 * are Socket.IO clients of a herald_io on a real hub (memory store) with no network: polling
 * sessions whose queue the test reads, as in test_sio_recovery.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "fake_eio.h"
#include "sio/internal.h"

#define N 4

static uv_loop_t loop;
static struct hr_store *store;
static struct hr_hub hub;
static struct hr_server srv; /* what the sessions' Engine.IO server refers to: limits only */
static struct hr_eio eio;
static herald_io *io;
static herald_nsp *root;
static herald_socket *last_connected;
static const char *join_on_connect; /* a room the application joins each new socket to */

static void on_connection(herald_socket *s, void *ud)
{
    last_connected = s;
    if (join_on_connect)
        herald_join(s, join_on_connect);
}

static int setup(void **state)
{
    uv_loop_init(&loop);
    store = hr_store_memory_new(&loop);
    assert_non_null(store);
    struct hr_hub_limits l = HR_HUB_LIMITS_DEFAULT;
    l.rules[0] = (struct hr_policy_rule){"skip.*", HR_POLICY_SKIP};
    l.rules[1] = (struct hr_policy_rule){"state.*", HR_POLICY_COALESCE};
    l.nrules = 2;
    assert_int_equal(hr_hub_init(&hub, &loop, store, &l), 0);
    io = calloc(1, sizeof(*io));
    io->loop = &loop;
    io->hub = &hub;
    io->store = store;
    io->opts.max_payload = 1000000;
    io->max_queued = 1u << 20;
    srv.limits.max_queued = 1u << 20;
    eio.srv = &srv;
    join_on_connect = NULL;
    root = herald_of(io, "/");
    herald_on_connection(root, on_connection, NULL);
    return 0;
}

/* ---- a client: an Engine.IO polling session nobody polls ---- */

struct client {
    struct hr_eio_session es;
    herald_socket *s;
    int open;
};

static struct client clients[N];

static void client_send(struct client *c, const char *text)
{
    hr_sio_eio_handler.on_message(&c->es, 0, (const uint8_t *)text, strlen(text), io);
}

static int client_take(struct client *c, char out[][256], int max)
{
    return fake_eio_take(&c->es, out, max);
}

/* A new client that sends the CONNECT packet connect. */
static void client_connect(struct client *c, const char *connect)
{
    memset(c, 0, sizeof(*c));
    c->es.eio = &eio;
    c->es.transport = HR_EIO_POLLING;
    assert_int_equal(hr_sio_eio_handler.on_open(&c->es, NULL, io), 0);
    c->open = 1;
    last_connected = NULL;
    client_send(c, connect);
}

/* A new client connected to "/" (its CONNECT answer taken). */
static herald_socket *client_open(struct client *c)
{
    char got[1][256];
    client_connect(c, "0");
    assert_non_null(last_connected);
    assert_int_equal(client_take(c, got, 1), 1);
    return c->s = last_connected;
}

/* The client polled: it took its queue, and Engine.IO says its output drained. */
static int client_poll(struct client *c, char out[][256], int max)
{
    int n = client_take(c, out, max);
    hr_sio_eio_handler.on_drain(&c->es, io);
    return n;
}

static void client_gone(struct client *c)
{
    if (c->open)
        hr_sio_eio_handler.on_close(&c->es, "transport close", io);
    c->open = 0;
    fake_eio_free(&c->es);
}

static int teardown(void **state)
{
    for (int i = 0; i < N; i++)
        client_gone(&clients[i]);
    hr_sio_free_namespaces(io);
    free(io);
    store->ops->close(store);
    hr_hub_free(&hub);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(hr_buf_live, 0);
    return 0;
}

static int acked;

static void on_ack(void *ud, int status, uint64_t id)
{
    assert_int_equal(status, 0);
    acked++;
}

/* Publish json to channel name and run the loop until it is committed and delivered. */
static void publish(const char *name, const char *json)
{
    struct hr_channel *ch = hr_hub_channel(&hub, name, strlen(name), 1);
    assert_non_null(ch);
    int want = acked + 1;
    assert_int_equal(hr_hub_publish(&hub, ch, json, strlen(json), on_ack, NULL), 0);
    while (acked < want)
        uv_run(&loop, UV_RUN_NOWAIT);
}

/* ---- one encoded buffer per message, shared ---- */

/* A channel message to a room of N sockets: one Engine.IO frame, encoded once and referenced
 * by every socket's queue (and by the message's cached encodings): no per-socket copy. The
 * packet is byte for byte what an emit of it was, the channel cursor as its offset. */
static void test_channel_message_one_buffer(void **state)
{
    io->opts.recovery_window_ms = 1000;
    for (int i = 0; i < N; i++)
        herald_join(client_open(&clients[i]), "chat");
    struct hr_channel *ch = hr_hub_channel(&hub, "chat", 4, 0);
    assert_non_null(ch);
    assert_int_equal(ch->nsubs[HR_FMT_SIO], N); /* a reader per socket */

    long live0 = hr_buf_live;
    publish("chat", "{\"a\":1}");
    /* the payload as stored, and its one Socket.IO encoding */
    assert_int_equal(hr_buf_live, live0 + 2);
    struct hr_buf *b = fake_eio_buf(&clients[0].es, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(fake_eio_len(&clients[i].es), 1);
        assert_ptr_equal(fake_eio_buf(&clients[i].es, 0), b);
    }
    struct hr_hub_msg *m = &ch->ring[(ch->head + ch->cached - 1) % ch->cap];
    assert_ptr_equal(m->enc[HR_FMT_SIO], b); /* the hub's shared encoding */
    assert_int_equal(b->refs, N + 1);

    char got[1][256], want[128];
    snprintf(want, sizeof want, "42[\"message\",{\"a\":1},\"%s:1\"]", ch->epoch);
    for (int i = 0; i < N; i++) {
        assert_int_equal(client_take(&clients[i], got, 1), 1);
        assert_string_equal(got[0], want);
    }
    assert_int_equal(b->refs, 1);

    /* a replay from auth.offset sends that very buffer too */
    struct client *late = &clients[N - 1];
    client_gone(late);
    char connect[128];
    snprintf(connect, sizeof connect, "0{\"offset\":\"%s:0\"}", ch->epoch);
    join_on_connect = "chat"; /* the cursor applies to rooms joined while connecting */
    client_connect(late, connect);
    assert_non_null(last_connected);
    assert_int_equal(fake_eio_len(&late->es), 2);
    assert_ptr_equal(fake_eio_buf(&late->es, 1), b);
    assert_int_equal(client_take(late, got, 1), 1); /* the CONNECT answer */
    assert_int_equal(client_take(late, got, 1), 1);
    assert_string_equal(got[0], want);
}

/* Without recovery the packet carries no offset. */
static void test_channel_message_no_offset(void **state)
{
    herald_join(client_open(&clients[0]), "chat");
    publish("chat", "[1,\"x\"]");
    char got[1][256];
    assert_int_equal(client_take(&clients[0], got, 1), 1);
    assert_string_equal(got[0], "42[\"message\",[1,\"x\"]]");
}

/* io.to(room).emit to N sockets: the packet is encoded once, into the frame every queue
 * shares. */
static void test_broadcast_one_buffer(void **state)
{
    for (int i = 0; i < N; i++)
        herald_join(client_open(&clients[i]), "chat");
    long live0 = hr_buf_live;
    assert_int_equal(herald_broadcast_raw(root, "chat", NULL, "news", "{\"n\":1},2", 9, NULL, 0),
                     N);
    assert_int_equal(hr_buf_live, live0 + 1);
    struct hr_buf *b = fake_eio_buf(&clients[0].es, 0);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(fake_eio_buf(&clients[i].es, 0), b);
    assert_int_equal(b->refs, N);
    char got[1][256];
    assert_int_equal(client_take(&clients[0], got, 1), 1);
    assert_string_equal(got[0], "42[\"news\",{\"n\":1},2]");
    assert_int_equal(b->refs, N - 1);
}

/* A socket's own room is no room struct (nothing in nsp->rooms), yet it is a room like any
 * other: listed first, counted, reached by a broadcast (one shared frame with the other
 * members when another socket joined it too), left and joined again. */
static void test_own_room(void **state)
{
    herald_socket *a = client_open(&clients[0]), *b = client_open(&clients[1]);
    assert_int_equal(HASH_COUNT(root->rooms), 0);
    assert_true(herald_in(a, herald_id(a)));
    assert_false(herald_in(b, herald_id(a)));
    assert_int_equal(herald_room_size(root, herald_id(a)), 1);
    assert_int_equal(herald_join(a, "chat"), 0);
    const char *list[4];
    assert_int_equal(herald_rooms(a, list, 4), 2);
    assert_string_equal(list[0], herald_id(a));
    assert_string_equal(list[1], "chat");

    /* b joins a's room: a room struct for b only, and not a channel */
    assert_int_equal(herald_join(b, herald_id(a)), 0);
    assert_int_equal(herald_room_size(root, herald_id(a)), 2);
    assert_null(hr_hub_channel(&hub, herald_id(a), strlen(herald_id(a)), 0));
    long live0 = hr_buf_live;
    assert_int_equal(herald_broadcast_raw(root, herald_id(a), NULL, "x", "1", 1, NULL, 0), 2);
    assert_int_equal(hr_buf_live, live0 + 1);
    assert_ptr_equal(fake_eio_buf(&clients[0].es, 0), fake_eio_buf(&clients[1].es, 0));
    char got[2][256];
    assert_int_equal(client_take(&clients[0], got, 2), 1);
    assert_string_equal(got[0], "42[\"x\",1]");
    assert_int_equal(client_take(&clients[1], got, 2), 1);
    assert_int_equal(herald_broadcast_raw(root, herald_id(a), a, "x", "2", 1, NULL, 0), 1);
    assert_int_equal(client_take(&clients[0], got, 2), 0);
    assert_int_equal(client_take(&clients[1], got, 2), 1);

    /* a leaves its own room: only b is in it */
    assert_int_equal(herald_leave(a, herald_id(a)), 0);
    assert_int_equal(herald_leave(a, herald_id(a)), HR_ENOTFOUND);
    assert_false(herald_in(a, herald_id(a)));
    assert_int_equal(herald_room_size(root, herald_id(a)), 1);
    assert_int_equal(herald_rooms(a, list, 4), 1);
    assert_string_equal(list[0], "chat");
    assert_int_equal(herald_broadcast_raw(root, herald_id(a), NULL, "x", "3", 1, NULL, 0), 1);
    assert_int_equal(client_take(&clients[0], got, 2), 0);
    assert_int_equal(client_take(&clients[1], got, 2), 1);
    assert_int_equal(herald_join(a, herald_id(a)), 0);
    assert_int_equal(herald_room_size(root, herald_id(a)), 2);
    assert_int_equal(herald_leave(b, herald_id(a)), 0);
    struct hr_sio_room *r;
    HASH_FIND_STR(root->rooms, herald_id(a), r);
    assert_null(r); /* its last member left */
}

/* ---- the slow-consumer policies, per socket ---- */

/* Publish until client a's output is over --max-queued; b polls as it goes. Returns the id of
 * the last message a was sent. */
static uint64_t fill(const char *channel, struct client *a, struct client *b, int *b_got)
{
    char got[64][256];
    uint64_t id = 0;
    while (fake_eio_bytes(&a->es) <= srv.limits.max_queued) {
        char json[32];
        snprintf(json, sizeof json, "{\"i\":%llu}", (unsigned long long)++id);
        publish(channel, json);
        *b_got += client_poll(b, got, 64);
    }
    return id;
}

/* skip: while a socket is behind it gets nothing; once it drained, a "herald:gap" with the
 * ids it missed, then the newer messages. Another socket of the room gets everything. */
static void test_skip(void **state)
{
    srv.limits.max_queued = 200;
    struct client *a = &clients[0], *b = &clients[1];
    herald_join(client_open(a), "skip.x");
    herald_join(client_open(b), "skip.x");
    int b_got = 0;
    uint64_t last = fill("skip.x", a, b, &b_got);
    publish("skip.x", "{\"i\":\"missed1\"}");
    publish("skip.x", "{\"i\":\"missed2\"}");
    char got[64][256];
    b_got += client_poll(b, got, 64);
    assert_int_equal(b_got, (int)last + 2);
    int n = client_poll(a, got, 64);
    assert_int_equal(n, (int)last);
    /* drained: the notice at once */
    assert_int_equal(client_take(a, got, 64), 1);
    char want[160];
    snprintf(want, sizeof want,
             "42[\"herald:gap\",{\"channel\":\"skip.x\",\"reason\":\"slow\",\"first\":%llu,"
             "\"missed\":[%llu,%llu]}]",
             (unsigned long long)last + 3, (unsigned long long)last + 1,
             (unsigned long long)last + 2);
    assert_string_equal(got[0], want);
    publish("skip.x", "{\"i\":\"new\"}");
    assert_int_equal(client_take(a, got, 64), 1);
    assert_string_equal(got[0], "42[\"message\",{\"i\":\"new\"}]");
    assert_int_equal(client_take(b, got, 64), 1);
}

/* coalesce: a socket behind owes only the newest message; once drained it gets that one (no
 * notice), then the newer ones. */
static void test_coalesce(void **state)
{
    srv.limits.max_queued = 200;
    struct client *a = &clients[0], *b = &clients[1];
    herald_join(client_open(a), "state.x");
    herald_join(client_open(b), "state.x");
    int b_got = 0;
    uint64_t last = fill("state.x", a, b, &b_got);
    publish("state.x", "{\"i\":\"old\"}");
    publish("state.x", "{\"i\":\"newest\"}");
    char got[64][256];
    b_got += client_poll(b, got, 64);
    assert_int_equal(b_got, (int)last + 2);
    assert_int_equal(client_poll(a, got, 64), (int)last);
    assert_int_equal(client_take(a, got, 64), 1);
    assert_string_equal(got[0], "42[\"message\",{\"i\":\"newest\"}]");
    publish("state.x", "{\"i\":\"live\"}");
    assert_int_equal(client_take(a, got, 64), 1);
    assert_string_equal(got[0], "42[\"message\",{\"i\":\"live\"}]");
}

/* On a replica (hub.sync set) a CONNECT whose auth.offset names an id not applied here yet
 * (another worker delivered it a moment ago) is held until the commits on their way are, then
 * resumes after it: no gap notice, nothing twice. A client that goes meanwhile is forgotten. */
static struct hr_hub_read *waiting;
static int nsyncs;

static int fake_sync(void *ud, struct hr_hub_read *r)
{
    waiting = r;
    nsyncs++;
    return 0;
}

static void test_resume_waits_on_a_replica(void **state)
{
    io->opts.recovery_window_ms = 1000;
    publish("chat", "{\"a\":1}");
    struct hr_channel *ch = hr_hub_channel(&hub, "chat", 4, 0);
    hub.sync = fake_sync;
    nsyncs = 0;
    join_on_connect = "chat";
    char connect[128], got[4][256], want[128];
    snprintf(connect, sizeof connect, "0{\"offset\":\"%s:2\"}", ch->epoch);
    client_connect(&clients[0], connect);
    assert_int_equal(nsyncs, 1);
    assert_null(last_connected); /* held */
    assert_int_equal(fake_eio_len(&clients[0].es), 0);
    publish("chat", "{\"a\":2}"); /* 2 arrives, and 3 */
    publish("chat", "{\"a\":3}");
    hr_hub_synced(waiting, 1);
    assert_non_null(last_connected);
    assert_int_equal(nsyncs, 1);
    assert_int_equal(client_take(&clients[0], got, 4), 2); /* the CONNECT answer, then 3 */
    snprintf(want, sizeof want, "42[\"message\",{\"a\":3},\"%s:3\"]", ch->epoch);
    assert_string_equal(got[1], want);

    /* no offset: no wait */
    client_connect(&clients[1], "0");
    assert_non_null(last_connected);
    assert_int_equal(nsyncs, 1);

    /* gone while held */
    client_connect(&clients[2], connect);
    assert_int_equal(nsyncs, 2);
    assert_null(last_connected);
    struct hr_hub_read *r = waiting;
    client_gone(&clients[2]);
    hr_hub_synced(r, 1);
    assert_null(last_connected);
    hub.sync = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_channel_message_one_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_message_no_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broadcast_one_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coalesce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_waits_on_a_replica, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
