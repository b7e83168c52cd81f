/* test_sio_recovery.c - connection state recovery: what a socket that dropped gets back when it
 * returns with its pid and last offset. Clients are real Socket.IO clients of a herald_io with
 * no network: their Engine.IO sessions are polling sessions whose queue the test reads, and the
 * loop's clock is moved by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"
#include "core/buf.h"
#include "fake_eio.h"
#include "sio/recovery.h"

#define WINDOW 1000

static uv_loop_t loop;
static struct hr_server srv; /* what the sessions' Engine.IO server refers to: limits only */
static struct hr_eio eio;
static herald_io *io;
static herald_nsp *root;
static herald_socket *last_connected;

static void on_connection(herald_socket *s, void *ud)
{
    last_connected = s;
}

static int setup(void **state)
{
    uv_loop_init(&loop);
    io = calloc(1, sizeof(*io));
    io->loop = &loop;
    io->opts.recovery_window_ms = WINDOW;
    io->opts.max_payload = 1000000;
    io->max_queued = 1u << 20;
    srv.limits.max_queued = 1u << 20;
    eio.srv = &srv;
    root = herald_of(io, "/");
    herald_on_connection(root, on_connection, NULL);
    return 0;
}

/* ---- a client: an Engine.IO polling session nobody polls ---- */

struct client {
    struct hr_eio_session es;
    int open;
};

static void client_new(struct client *c)
{
    memset(c, 0, sizeof(*c));
    c->es.eio = &eio;
    c->es.transport = HR_EIO_POLLING;
    assert_int_equal(hr_sio_eio_handler.on_open(&c->es, NULL, io), 0);
    c->open = 1;
}

static void client_send(struct client *c, const char *text)
{
    hr_sio_eio_handler.on_message(&c->es, 0, (const uint8_t *)text, strlen(text), io);
}

static int client_take(struct client *c, char out[][256], int max)
{
    return fake_eio_take(&c->es, out, max);
}

/* The client goes (reason as Engine.IO gives it). */
static void client_gone(struct client *c, const char *reason)
{
    if (c->open)
        hr_sio_eio_handler.on_close(&c->es, reason, io);
    c->open = 0;
    fake_eio_free(&c->es);
}

/* CONNECT to "/" with auth (NULL: none); returns the socket, its CONNECT answer in answer. */
static herald_socket *client_connect(struct client *c, const char *auth, char *answer)
{
    char pkt[256], got[1][256];
    snprintf(pkt, sizeof pkt, "0%s", auth ? auth : "");
    last_connected = NULL;
    client_send(c, pkt);
    assert_non_null(last_connected);
    assert_int_equal(client_take(c, got, 1), 1);
    strcpy(answer, got[0]);
    return last_connected;
}

static void ids_of(const char *answer, char sid[24], char pid[24])
{
    assert_int_equal(sscanf(answer, "40{\"sid\":\"%23[^\"]\",\"pid\":\"%23[^\"]\"}", sid, pid), 2);
}

static struct client clients[4];

static int teardown(void **state)
{
    for (int i = 0; i < 4; i++)
        client_gone(&clients[i], "server shutting down");
    hr_sio_free_namespaces(io);
    free(io);
    uv_loop_close(&loop);
    return 0;
}

/* Broadcast event with argument arg (JSON text) to room (NULL: everyone) but except. */
static void bcast(const char *room, herald_socket *except, const char *event, const char *arg)
{
    herald_broadcast_raw(root, room, except, event, arg, strlen(arg), NULL, 0);
}

/* ---- what a user depends on ---- */

/* Back within the window with the last offset it got: the same id and pid, its rooms, then the
 * packets it missed after that offset, in order; not the ones for rooms it was not in, not the
 * ones it sent itself, not the ones it had already. */
static void test_recovers_missed_in_order(void **state)
{
    struct client *a = &clients[0], *b = &clients[1], *a2 = &clients[2];
    char answer[256], sid[24], pid[24], got[16][256];
    client_new(a);
    client_new(b);
    herald_socket *sa = client_connect(a, NULL, answer);
    ids_of(answer, sid, pid);
    assert_false(herald_recovered(sa));
    herald_socket *sb = client_connect(b, NULL, answer);
    herald_join(sa, "r");
    herald_join(sb, "r");

    bcast("r", NULL, "e1", "1"); /* offset "1": a got it */
    assert_int_equal(client_take(a, got, 16), 1);
    assert_string_equal(got[0], "42[\"e1\",1,\"1\"]");
    bcast("r", sa, "e2", "2"); /* a sent it (socket.broadcast.emit) */
    assert_int_equal(client_take(a, got, 16), 0);
    client_gone(a, "transport close"); /* a drops */
    assert_int_equal(herald_room_size(root, "r"), 1);
    bcast("r", NULL, "e3", "3");
    bcast(NULL, NULL, "e4", "{\"x\":4}");
    bcast("other", NULL, "e5", "5"); /* a was not in it */
    bcast("r", sb, "e6", "6");
    herald_emit_raw(sb, "e7", "7", 1, NULL, 0); /* to b alone */

    client_new(a2);
    char auth[128];
    snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"1\"}", pid);
    char pkt[160];
    snprintf(pkt, sizeof pkt, "0%s", auth);
    last_connected = NULL;
    client_send(a2, pkt);
    herald_socket *s = last_connected;
    assert_non_null(s);
    assert_true(herald_recovered(s));
    assert_string_equal(herald_id(s), sid);
    assert_true(herald_in(s, "r"));
    assert_false(herald_in(s, "other"));
    assert_int_equal(herald_room_size(root, "r"), 2);
    /* the recovery fields are not the application's auth */
    assert_null(json_object_get(herald_auth(s), "pid"));
    assert_null(json_object_get(herald_auth(s), "offset"));

    int n = client_take(a2, got, 16);
    assert_int_equal(n, 4);
    char want[128];
    snprintf(want, sizeof want, "40{\"sid\":\"%s\",\"pid\":\"%s\"}", sid, pid);
    assert_string_equal(got[0], want);
    assert_string_equal(got[1], "42[\"e3\",3,\"3\"]");
    assert_string_equal(got[2], "42[\"e4\",{\"x\":4},\"4\"]");
    assert_string_equal(got[3], "42[\"e6\",6,\"6\"]");
}

/* A session is recovered once: a second CONNECT with the same pid and offset is a new socket. */
static void test_recovered_once(void **state)
{
    struct client *a = &clients[0], *a2 = &clients[1], *a3 = &clients[2];
    char answer[256], sid[24], pid[24], sid3[24], pid3[24], got[8][256], auth[128];
    client_new(a);
    herald_socket *sa = client_connect(a, NULL, answer);
    ids_of(answer, sid, pid);
    herald_join(sa, "r");
    bcast("r", NULL, "e1", "1");
    client_take(a, got, 8);
    client_gone(a, "ping timeout");
    bcast("r", NULL, "e2", "2");

    snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"1\"}", pid);
    client_new(a2);
    herald_socket *s2 = client_connect(a2, auth, answer);
    assert_true(herald_recovered(s2));
    assert_int_equal(client_take(a2, got, 8), 1); /* e2 */

    client_new(a3);
    herald_socket *s3 = client_connect(a3, auth, answer);
    assert_false(herald_recovered(s3));
    ids_of(answer, sid3, pid3);
    assert_string_not_equal(sid3, sid);
    assert_string_not_equal(pid3, pid);
    assert_false(herald_in(s3, "r"));
    assert_int_equal(client_take(a3, got, 8), 0);
}

/* An offset the server does not have (never sent, or a typo) recovers nothing. */
static void test_unknown_offset(void **state)
{
    struct client *a = &clients[0], *a2 = &clients[1];
    char answer[256], sid[24], pid[24], sid2[24], pid2[24], got[8][256], auth[128];
    client_new(a);
    herald_socket *sa = client_connect(a, NULL, answer);
    ids_of(answer, sid, pid);
    herald_join(sa, "r");
    bcast("r", NULL, "e1", "1");
    client_gone(a, "transport close");
    bcast("r", NULL, "e2", "2");

    snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"999\"}", pid);
    client_new(a2);
    herald_socket *s = client_connect(a2, auth, answer);
    assert_false(herald_recovered(s));
    ids_of(answer, sid2, pid2);
    assert_string_not_equal(sid2, sid);
    assert_false(herald_in(s, "r"));
    assert_int_equal(client_take(a2, got, 8), 0);
}

/* Leaving on purpose (a namespace disconnect) is not dropping: nothing is saved. */
static void test_left_on_purpose(void **state)
{
    struct client *a = &clients[0], *a2 = &clients[1];
    char answer[256], sid[24], pid[24], auth[128];
    client_new(a);
    client_connect(a, NULL, answer);
    ids_of(answer, sid, pid);
    bcast(NULL, NULL, "e1", "1");
    client_send(a, "1"); /* DISCONNECT from "/" */
    assert_null(io->saved);
    snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"1\"}", pid);
    client_new(a2);
    assert_false(herald_recovered(client_connect(a2, auth, answer)));
}

/* The window bounds both: a session saved longer ago is gone, and so is a kept packet; a
 * session whose offset was pruned cannot be recovered (what followed it may be gone too). */
static void test_window(void **state)
{
    struct client *a = &clients[0], *b = &clients[1], *a2 = &clients[2], *b2 = &clients[3];
    char answer[256], pid_a[24], pid_b[24], sid[24], got[8][256], auth[128];
    client_new(a);
    client_new(b);
    client_connect(a, NULL, answer);
    ids_of(answer, sid, pid_a);
    client_connect(b, NULL, answer);
    ids_of(answer, sid, pid_b);
    bcast(NULL, NULL, "e1", "1");      /* at t0 */
    client_gone(a, "transport close"); /* saved at t0 */
    loop.time += WINDOW - 10;
    client_gone(b, "transport close"); /* saved at t0 + WINDOW - 10 */
    loop.time += 20;                   /* t0 + WINDOW + 10 */

    /* a's session is past the window */
    snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"1\"}", pid_a);
    client_new(a2);
    assert_false(herald_recovered(client_connect(a2, auth, answer)));
    assert_int_equal(client_take(a2, got, 8), 0);

    /* b's is not, but a new packet prunes e1, the offset b comes back with */
    assert_non_null(io->saved);
    bcast("nobody", NULL, "e2", "2");
    assert_string_equal(root->kept_head->offset, "2");
    assert_ptr_equal(root->kept_head, root->kept_tail);
    snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"1\"}", pid_b);
    client_new(b2);
    assert_false(herald_recovered(client_connect(b2, auth, answer)));
}

/* Binary attachments are kept as copies and sent again with their packet. */
static void test_binary_kept(void **state)
{
    struct client *a = &clients[0], *a2 = &clients[1];
    char answer[256], sid[24], pid[24], got[8][256], auth[128];
    client_new(a);
    client_connect(a, NULL, answer);
    ids_of(answer, sid, pid);
    bcast(NULL, NULL, "e1", "1");
    client_gone(a, "transport close");
    char bytes[3] = {1, 2, 3};
    struct herald_bin bin = {bytes, sizeof bytes};
    const char *arg = "{\"_placeholder\":true,\"num\":0}";
    herald_broadcast_raw(root, NULL, NULL, "file", arg, strlen(arg), &bin, 1);
    bytes[0] = 9; /* the application's buffer is its own again */

    snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"1\"}", pid);
    client_new(a2);
    assert_true(herald_recovered(client_connect(a2, auth, answer)));
    assert_int_equal(client_take(a2, got, 8), 2);
    assert_string_equal(got[0], "451-[\"file\",{\"_placeholder\":true,\"num\":0},\"2\"]");
    assert_string_equal(got[1], "bAQID"); /* base64 of 01 02 03 */
}

/* Replays share what the broadcast sent: two sockets that come back get the very frame it was
 * (kept by the packet), and its attachment's base64 record is made once for both. */
static void test_replays_share_the_frame(void **state)
{
    struct client *a = &clients[0], *b = &clients[1], *a2 = &clients[2], *b2 = &clients[3];
    char answer[256], sid[2][24], pid[2][24], got[8][256], auth[128];
    client_new(a);
    client_new(b);
    client_connect(a, NULL, answer);
    ids_of(answer, sid[0], pid[0]);
    client_connect(b, NULL, answer);
    ids_of(answer, sid[1], pid[1]);
    bcast(NULL, NULL, "e1", "1");
    client_gone(a, "transport close");
    client_gone(b, "transport close");
    char bytes[3] = {1, 2, 3};
    struct herald_bin bin = {bytes, sizeof bytes};
    const char *arg = "{\"_placeholder\":true,\"num\":0}";
    herald_broadcast_raw(root, NULL, NULL, "file", arg, strlen(arg), &bin, 1);
    struct hr_sio_kept *k = root->kept_tail;
    assert_non_null(k->frame);
    assert_null(k->raw); /* the frame is the packet now */
    assert_int_equal(k->frame->refs, 1);

    long live0 = hr_buf_live;
    struct client *back[2] = {a2, b2};
    for (int i = 0; i < 2; i++) {
        snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"1\"}", pid[i]);
        client_new(back[i]);
        assert_true(herald_recovered(client_connect(back[i], auth, answer)));
        assert_ptr_equal(fake_eio_buf(&back[i]->es, 0), k->frame);
    }
    assert_int_equal(k->frame->refs, 3);
    assert_ptr_equal(fake_eio_buf(&a2->es, 1), fake_eio_buf(&b2->es, 1));
    /* the attachment's two encodings (binary frame, base64 record), made by the first replay */
    assert_int_equal(hr_buf_live, live0 + 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(client_take(back[i], got, 8), 2);
        assert_string_equal(got[0], "451-[\"file\",{\"_placeholder\":true,\"num\":0},\"2\"]");
        assert_string_equal(got[1], "bAQID");
    }
}

/* What the application emits to a socket as it drops (its disconnect handler) is not lost. */
static void emit_on_disconnect(herald_socket *s, const char *reason, void *ud)
{
    herald_emit_raw(s, "bye", "\"x\"", 3, NULL, 0);
}

static void test_emit_while_dropping(void **state)
{
    struct client *a = &clients[0], *a2 = &clients[1];
    char answer[256], sid[24], pid[24], got[8][256], auth[128];
    client_new(a);
    herald_socket *sa = client_connect(a, NULL, answer);
    ids_of(answer, sid, pid);
    herald_emit_raw(sa, "hi", "1", 1, NULL, 0);
    assert_int_equal(client_take(a, got, 8), 1);
    assert_string_equal(got[0], "42[\"hi\",1,\"1\"]");
    herald_on_disconnect(sa, emit_on_disconnect, NULL);
    client_gone(a, "transport close");

    snprintf(auth, sizeof auth, "{\"pid\":\"%s\",\"offset\":\"1\"}", pid);
    client_new(a2);
    assert_true(herald_recovered(client_connect(a2, auth, answer)));
    assert_int_equal(client_take(a2, got, 8), 1);
    assert_string_equal(got[0], "42[\"bye\",\"x\",\"2\"]");
}

/* ---- the decisions, on plain values ---- */

static void test_missed(void **state)
{
    char *rooms[] = {"sid1", "r"};
    uint64_t last[] = {0, 0};
    struct hr_sio_saved sv = {.sid = "sid1", .rooms = rooms, .chan_last = last, .nrooms = 2};
    struct hr_sio_kept everyone = {.offset = "1"};
    struct hr_sio_kept in_r = {.offset = "2", .room = "r"};
    struct hr_sio_kept own = {.offset = "3", .room = "sid1"};
    struct hr_sio_kept elsewhere = {.offset = "4", .room = "s"};
    struct hr_sio_kept its_own = {.offset = "5", .room = "r", .except = "sid1"};
    struct hr_sio_kept other_except = {.offset = "6", .except = "sid2"};
    struct hr_sio_kept marker = {.offset = "e:7", .room = "r", .chan_id = 7};
    assert_true(hr_sio_recovery_missed(&sv, &everyone));
    assert_true(hr_sio_recovery_missed(&sv, &in_r));
    assert_true(hr_sio_recovery_missed(&sv, &own));
    assert_false(hr_sio_recovery_missed(&sv, &elsewhere));
    assert_false(hr_sio_recovery_missed(&sv, &its_own));
    assert_true(hr_sio_recovery_missed(&sv, &other_except));
    assert_false(hr_sio_recovery_missed(&sv, &marker)); /* the channel replays it */
}

static void test_channel_since(void **state)
{
    char *rooms[] = {"news", "sports"};
    uint64_t last[] = {10, 20};
    struct hr_sio_saved sv = {.sid = "s", .rooms = rooms, .chan_last = last, .nrooms = 2};
    struct hr_sio_kept m2 = {.offset = "e:25", .room = "sports", .chan_id = 25};
    struct hr_sio_kept m1 = {.offset = "e:8", .room = "news", .chan_id = 8, .next = &m2};
    struct hr_sio_kept p = {.offset = "3", .next = &m1};
    struct hr_sio_kept from = {.offset = "2", .next = &p};
    /* news: its first marker after the offset (id 8) comes before what it had (10) */
    assert_int_equal(hr_sio_recovery_since(&sv, 0, &from), 7);
    /* sports: what it had when the socket dropped (20), the marker (25) is later */
    assert_int_equal(hr_sio_recovery_since(&sv, 1, &from), 20);
    /* after the last marker: nothing kept, what it had */
    assert_int_equal(hr_sio_recovery_since(&sv, 0, &m2), 10);
}

static void test_find_needs_everything(void **state)
{
    struct client *a = &clients[0];
    char answer[256], sid[24], pid[24];
    struct hr_sio_kept *from = (struct hr_sio_kept *)1;
    client_new(a);
    client_connect(a, NULL, answer);
    ids_of(answer, sid, pid);
    bcast(NULL, NULL, "e1", "1");
    client_gone(a, "transport close");
    herald_nsp *other = herald_of(io, "/other");
    struct hr_sio_client probe = {.io = io};
    assert_null(hr_sio_recovery_find(&probe, root, NULL, "1", &from));
    assert_null(from);
    assert_null(hr_sio_recovery_find(&probe, root, pid, NULL, &from));
    assert_null(hr_sio_recovery_find(&probe, root, "nobody", "1", &from));
    assert_null(hr_sio_recovery_find(&probe, other, pid, "1", &from)); /* saved from "/" */
    assert_null(hr_sio_recovery_find(&probe, root, pid, "2", &from));
    struct hr_sio_saved *sv = hr_sio_recovery_find(&probe, root, pid, "1", &from);
    assert_non_null(sv);
    assert_string_equal(sv->sid, sid);
    assert_ptr_equal(from, root->kept_head);
    io->opts.recovery_window_ms = 0; /* off */
    assert_null(hr_sio_recovery_find(&probe, root, pid, "1", &from));
}

/* --workers: the session is taken out of the io that saved it, with copies of what it missed
 * (the frames as bytes, for the other thread to make its own buffers of). */
static void test_take_moves_the_session(void **state)
{
    struct client *a = &clients[0];
    char answer[256], sid[24], pid[24];
    client_new(a);
    client_connect(a, NULL, answer);
    ids_of(answer, sid, pid);
    bcast(NULL, NULL, "e1", "1");
    client_gone(a, "transport close");
    bcast(NULL, NULL, "e2", "2");
    bcast(NULL, NULL, "e3", "3");
    struct hr_sio_kept *chain = (struct hr_sio_kept *)1;
    assert_null(hr_sio_recovery_take(io, "/", pid, "9", &chain)); /* an offset not kept */
    assert_null(chain);
    assert_null(hr_sio_recovery_take(io, "/other", pid, "1", &chain));
    struct hr_sio_saved *sv = hr_sio_recovery_take(io, "/", pid, "1", &chain);
    assert_non_null(sv);
    assert_string_equal(sv->sid, sid);
    assert_true(sv->moved);
    assert_null(io->saved); /* taken: it can be recovered once */
    struct hr_sio_kept *k = root->kept_head->next;
    for (struct hr_sio_kept *m = chain; m; m = m->next, k = k->next) {
        assert_non_null(k);
        assert_string_equal(m->offset, k->offset);
        assert_true(m->raw_frame);
        assert_null(m->frame);
        assert_int_equal(m->raw_len, k->frame->len);
        assert_memory_equal(m->raw, k->frame->data, m->raw_len);
        assert_ptr_not_equal(m->raw, (char *)k->frame->data);
    }
    assert_null(k);
    struct hr_sio_client probe = {.io = io};
    struct hr_sio_kept *from;
    assert_null(hr_sio_recovery_find(&probe, root, pid, "1", &from));
    hr_sio_moved_free(sv, chain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recovers_missed_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovered_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_left_on_purpose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replays_share_the_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emit_while_dropping, setup, teardown),
        cmocka_unit_test(test_missed),
        cmocka_unit_test(test_channel_since),
        cmocka_unit_test_setup_teardown(test_find_needs_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_moves_the_session, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
