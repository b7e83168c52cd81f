/* test_chan_stream.c - the subscriber stream (chan/stream.c) over a real hub and the memory
 * store, through a fake transport that records what it is asked to write: replay across pages
 * as the output drains, gap notices, going live, and the skip / coalesce / disconnect
 * policies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan/stream.h"
#include "core/error.h"

/* ---- a hub on the memory store ---- */
struct env {
    uv_loop_t loop;
    struct hr_store *store;
    struct hr_hub hub;
};

static int setup_limits(void **state, uint32_t max_messages)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    e->store = hr_store_memory_new(&e->loop);
    assert_non_null(e->store);
    struct hr_hub_limits l = HR_HUB_LIMITS_DEFAULT;
    l.max_messages = max_messages;
    assert_int_equal(hr_hub_init(&e->hub, &e->loop, e->store, &l), 0);
    *state = e;
    return 0;
}

static int setup(void **state)
{
    return setup_limits(state, 5000);
}

static int setup_small(void **state)
{
    return setup_limits(state, 5);
}

static int teardown(void **state)
{
    struct env *e = *state;
    e->store->ops->close(e->store);
    hr_hub_free(&e->hub);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    free(e);
    assert_int_equal(hr_buf_live, 0);
    return 0;
}

static int nacked;

static void on_ack(void *ud, int status, uint64_t id)
{
    assert_int_equal(status, 0);
    nacked++;
}

/* Publish n messages and run the loop until they are committed (and delivered). */
static void publish(struct env *e, struct hr_channel *ch, int n)
{
    nacked = 0;
    for (int i = 0; i < n; i++)
        assert_int_equal(hr_hub_publish(&e->hub, ch, "{}", 2, on_ack, NULL), 0);
    while (nacked < n)
        uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* ---- a transport that records ---- */
struct gap {
    char reason[16];
    uint64_t first, from, to;
};

struct fake {
    struct hr_chan_stream st; /* first */
    uint64_t got[4096];
    int n;
    struct gap gaps[8];
    int ngaps;
    int slow, errors;
    int full_every; /* full after this many writes (0: never) */
    int since_drain;
    int full, over, closing;
};

static struct hr_buf *make(const struct hr_hub_msg *m, void *ud)
{
    struct hr_buf *b = hr_buf_new(24);
    if (b && hr_buf_printf(&b, "%" PRIu64, m->id) < 0) {
        hr_buf_unref(b);
        return NULL;
    }
    return b;
}

static struct hr_buf *f_encode(struct hr_chan_stream *s, struct hr_hub_msg *m)
{
    return hr_hub_encoding(m, HR_FMT_WS, make, NULL);
}

static int f_write(struct hr_chan_stream *s, struct hr_buf *enc, uint64_t id)
{
    struct fake *f = (struct fake *)s;
    char want[24];
    snprintf(want, sizeof want, "%" PRIu64, id);
    assert_int_equal(enc->len, strlen(want)); /* the message's own encoding */
    assert_memory_equal(enc->data, want, enc->len);
    assert_true(f->n < 4096);
    f->got[f->n++] = id;
    if (f->full_every && ++f->since_drain >= f->full_every)
        f->full = 1;
    return 0;
}

static void f_gap(struct hr_chan_stream *s, const char *reason, uint64_t first, uint64_t from,
                  uint64_t to)
{
    struct fake *f = (struct fake *)s;
    assert_true(f->ngaps < 8);
    struct gap *g = &f->gaps[f->ngaps++];
    snprintf(g->reason, sizeof g->reason, "%s", reason);
    g->first = first;
    g->from = from;
    g->to = to;
}

static void f_slow(struct hr_chan_stream *s)
{
    struct fake *f = (struct fake *)s;
    f->slow++;
    f->closing = 1;
}

static void f_error(struct hr_chan_stream *s, int status, const char *what)
{
    struct fake *f = (struct fake *)s;
    f->errors++;
    f->closing = 1;
}

static int f_closing(const struct hr_chan_stream *s)
{
    return ((const struct fake *)s)->closing;
}

static int f_full(const struct hr_chan_stream *s)
{
    return ((const struct fake *)s)->full;
}

static int f_over(const struct hr_chan_stream *s)
{
    return ((const struct fake *)s)->over;
}

static const struct hr_chan_stream_ops fake_ops = {
    .sub = HR_CHAN_STREAM_SUB_OPS,
    .fmt = HR_FMT_WS,
    .encode = f_encode,
    .write = f_write,
    .write_gap = f_gap,
    .close_slow = f_slow,
    .close_error = f_error,
    .closing = f_closing,
    .full = f_full,
    .over = f_over,
};

static struct fake *fake_new(struct hr_channel *ch)
{
    struct fake *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    hr_chan_stream_init(&f->st, &fake_ops, ch);
    return f;
}

static void drain(struct fake *f)
{
    f->full = f->over = 0;
    f->since_drain = 0;
    hr_chan_stream_drained(&f->st);
}

static void fake_free(struct fake *f)
{
    hr_chan_stream_stop(&f->st);
    free(f);
}

static void cursor(const char *s, struct hr_cursor *c)
{
    assert_int_equal(hr_cursor_parse(s, strlen(s), c), 0);
}

static void assert_ids(const struct fake *f, int at, uint64_t from, uint64_t to)
{
    for (uint64_t id = from; id <= to; id++)
        assert_int_equal(f->got[at++], id);
}

/* ---- tests ---- */

/* From a cursor: history a page at a time (more than HR_HUB_PAGE_MAX messages), paused while
 * the output is full and resumed as it drains; then live. */
static void test_replay_across_pages_then_live(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "r", 1, 1);
    publish(e, ch, 1500);
    struct fake *f = fake_new(ch);
    f->full_every = 400;
    struct hr_cursor c;
    cursor("10", &c);
    hr_chan_stream_start(&f->st, &c);
    assert_int_equal(f->n, 400);
    assert_int_equal(ch->nsubs[HR_FMT_WS], 0); /* not live while replaying */
    int rounds = 0;
    while (f->n < 1490 && rounds++ < 10)
        drain(f);
    assert_int_equal(f->n, 1490);
    assert_int_equal(f->ngaps, 0);
    assert_ids(f, 0, 11, 1500);
    assert_int_equal(f->st.sub.last, 1500);
    /* the last page left the output full: live once it drains */
    if (ch->nsubs[HR_FMT_WS] == 0)
        drain(f);
    assert_int_equal(ch->nsubs[HR_FMT_WS], 1);
    f->full_every = 0;
    publish(e, ch, 2);
    assert_int_equal(f->n, 1492);
    assert_ids(f, 1490, 1501, 1502);
    assert_int_equal(f->st.sub.last, 1502);
    fake_free(f);
    assert_int_equal(ch->nsubs[HR_FMT_WS], 0);
}

/* No cursor: live from the next message, history is not sent. */
static void test_live_without_cursor(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "l", 1, 1);
    publish(e, ch, 3);
    struct fake *f = fake_new(ch);
    hr_chan_stream_start(&f->st, NULL);
    assert_int_equal(f->n, 0);
    assert_int_equal(ch->nsubs[HR_FMT_WS], 1);
    publish(e, ch, 1);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->got[0], 4);
    fake_free(f);
}

/* A cursor older than the history, from the future, or of another channel: a gap notice with
 * the first id kept, then what is kept. */
static void test_gap_at_start(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "g", 1, 1);
    publish(e, ch, 8); /* keeps 4..8 */
    assert_int_equal(hr_hub_first_id(ch), 4);
    static const struct {
        const char *cursor, *reason;
    } t[] = {{"1", "trimmed"}, {"99", "unknown"}, {"0123456789ab:5", "epoch"}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        struct fake *f = fake_new(ch);
        struct hr_cursor c;
        cursor(t[i].cursor, &c);
        hr_chan_stream_start(&f->st, &c);
        assert_int_equal(f->ngaps, 1);
        assert_string_equal(f->gaps[0].reason, t[i].reason);
        assert_int_equal(f->gaps[0].first, 4);
        assert_int_equal(f->gaps[0].from, 0);
        assert_int_equal(f->n, 5);
        assert_ids(f, 0, 4, 8);
        fake_free(f);
    }
    /* a cursor inside what is kept: no notice */
    struct fake *f = fake_new(ch);
    struct hr_cursor c;
    char s[64];
    snprintf(s, sizeof s, "%s:6", ch->epoch);
    cursor(s, &c);
    hr_chan_stream_start(&f->st, &c);
    assert_int_equal(f->ngaps, 0);
    assert_int_equal(f->n, 2);
    assert_ids(f, 0, 7, 8);
    fake_free(f);
}

/* History trimmed while a replay waits for the output to drain: said, then it goes on. */
static void test_trimmed_during_replay(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "t", 1, 1);
    publish(e, ch, 5); /* 1..5 */
    struct fake *f = fake_new(ch);
    f->full_every = 2;
    struct hr_cursor c;
    cursor("0", &c);
    hr_chan_stream_start(&f->st, &c);
    assert_int_equal(f->n, 2);
    publish(e, ch, 4); /* keeps 5..9: 3 and 4 are gone */
    drain(f);
    assert_int_equal(f->ngaps, 1);
    assert_string_equal(f->gaps[0].reason, "trimmed");
    assert_int_equal(f->gaps[0].first, 5);
    assert_int_equal(f->n, 4);
    assert_ids(f, 2, 5, 6);
    drain(f);
    drain(f);
    assert_int_equal(f->n, 7);
    assert_ids(f, 4, 7, 9);
    assert_int_equal(ch->nsubs[HR_FMT_WS], 1);
    fake_free(f);
}

/* Skip: messages are dropped while the output is over; once it drains a "slow" gap names the
 * ids missed; a message finding it below the limit catches it up too. */
static void test_skip(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "s", 1, 1);
    ch->policy = HR_POLICY_SKIP;
    struct fake *f = fake_new(ch);
    hr_chan_stream_start(&f->st, NULL);
    publish(e, ch, 1);
    f->over = f->full = 1;
    publish(e, ch, 2); /* 2, 3 held back */
    assert_int_equal(f->n, 1);
    assert_int_equal(f->ngaps, 0);
    drain(f);
    assert_int_equal(f->ngaps, 1);
    assert_string_equal(f->gaps[0].reason, "slow");
    assert_int_equal(f->gaps[0].first, 4);
    assert_int_equal(f->gaps[0].from, 2);
    assert_int_equal(f->gaps[0].to, 3);
    assert_int_equal(f->n, 1);
    publish(e, ch, 1);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->got[1], 4);
    /* caught up by the next message (no drain) */
    f->over = 1;
    publish(e, ch, 1); /* 5 */
    f->over = 0;
    publish(e, ch, 1); /* 6 */
    assert_int_equal(f->ngaps, 2);
    assert_int_equal(f->gaps[1].first, 6);
    assert_int_equal(f->gaps[1].from, 5);
    assert_int_equal(f->gaps[1].to, 5);
    assert_int_equal(f->n, 3);
    assert_int_equal(f->got[2], 6);
    assert_int_equal(f->slow, 0);
    hr_chan_stream_shed(&f->st); /* nothing more for skip */
    assert_int_equal(f->slow, 0);
    fake_free(f);
}

/* Coalesce: only the newest message held back is sent once the output drains; a newer
 * message coming first is sent after it. */
static void test_coalesce(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "c", 1, 1);
    ch->policy = HR_POLICY_COALESCE;
    struct fake *f = fake_new(ch);
    hr_chan_stream_start(&f->st, NULL);
    publish(e, ch, 1);
    f->over = f->full = 1;
    publish(e, ch, 3); /* 2, 3, 4: 4 is owed */
    assert_int_equal(f->n, 1);
    assert_int_equal(f->st.sub.lag, 4); /* the owed message's id */
    drain(f);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->got[1], 4);
    assert_int_equal(f->st.sub.last, 4);
    assert_null(f->st.sub.owed);
    assert_int_equal(f->ngaps, 0);
    f->over = 1;
    publish(e, ch, 2); /* 5, 6: 6 owed */
    f->over = 0;
    publish(e, ch, 1); /* 7: 6 first, then 7 */
    assert_int_equal(f->n, 4);
    assert_ids(f, 2, 6, 7);
    /* a drain with nothing owed sends nothing */
    drain(f);
    assert_int_equal(f->n, 4);
    fake_free(f);
}

/* Disconnect: a message finding the output over closes the stream (close_slow) and it leaves
 * the channel; the memory budget's shed does the same. */
static void test_disconnect(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "d", 1, 1);
    assert_int_equal(ch->policy, HR_POLICY_DISCONNECT);
    struct fake *f = fake_new(ch);
    hr_chan_stream_start(&f->st, NULL);
    publish(e, ch, 1);
    f->over = 1;
    publish(e, ch, 1);
    assert_int_equal(f->slow, 1);
    assert_int_equal(f->n, 1);
    assert_int_equal(ch->nsubs[HR_FMT_WS], 0);
    publish(e, ch, 1);
    assert_int_equal(f->slow, 1);
    fake_free(f);

    f = fake_new(ch);
    hr_chan_stream_start(&f->st, NULL);
    hr_chan_stream_shed(&f->st);
    assert_int_equal(f->slow, 1);
    fake_free(f);
}

/* A reader of a name nobody publishes to: the channel is forgotten when it stops. */
static void test_stop_forgets_unused(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "nobody", 6, 1);
    struct fake *f = fake_new(ch);
    hr_chan_stream_start(&f->st, NULL);
    assert_ptr_equal(hr_hub_channel(&e->hub, "nobody", 6, 0), ch);
    fake_free(f);
    assert_null(hr_hub_channel(&e->hub, "nobody", 6, 0));
}

/* On a replica (hub->sync set) a cursor past the channel's last id may name a commit another
 * worker delivered first: the stream waits for the commits on their way, then resumes with no
 * notice; past it still after the wait, the history it names was lost ("unknown"). */
static struct hr_hub_read *waiting;
static int nsyncs;

static int fake_sync(void *ud, struct hr_hub_read *r)
{
    waiting = r;
    nsyncs++;
    return 0;
}

static void cursor_of(const struct hr_channel *ch, uint64_t id, struct hr_cursor *c)
{
    char s[64];
    snprintf(s, sizeof s, "%s:%" PRIu64, ch->epoch, id);
    cursor(s, c);
}

static void test_replica_waits_for_commits(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "w", 1, 1);
    publish(e, ch, 3);
    e->hub.sync = fake_sync;
    nsyncs = 0;
    struct hr_cursor c;

    /* 4 and 5 were given out, not applied here yet */
    struct fake *f = fake_new(ch);
    cursor_of(ch, 5, &c);
    hr_chan_stream_start(&f->st, &c);
    assert_int_equal(nsyncs, 1);
    assert_int_equal(f->ngaps, 0);
    assert_int_equal(f->n, 0);
    assert_int_equal(ch->nsubs[HR_FMT_WS], 0);
    publish(e, ch, 3); /* 4, 5 and 6 arrive */
    assert_int_equal(f->n, 0);
    hr_hub_synced(waiting, 1);
    assert_int_equal(f->ngaps, 0);
    assert_int_equal(f->n, 1);
    assert_ids(f, 0, 6, 6);
    assert_int_equal(ch->nsubs[HR_FMT_WS], 1);
    publish(e, ch, 1);
    assert_int_equal(f->n, 2);
    assert_ids(f, 1, 7, 7);
    fake_free(f);

    /* still past after the wait: said, then the history from its start */
    f = fake_new(ch);
    cursor_of(ch, 99, &c);
    hr_chan_stream_start(&f->st, &c);
    assert_int_equal(nsyncs, 2);
    assert_int_equal(f->ngaps, 0);
    hr_hub_synced(waiting, 1);
    assert_int_equal(f->ngaps, 1);
    assert_string_equal(f->gaps[0].reason, "unknown");
    assert_int_equal(f->n, 7);
    assert_ids(f, 0, 1, 7);
    fake_free(f);

    /* a cursor it knows, or of another history: no wait */
    f = fake_new(ch);
    cursor_of(ch, 7, &c);
    hr_chan_stream_start(&f->st, &c);
    assert_int_equal(f->ngaps, 0);
    assert_int_equal(ch->nsubs[HR_FMT_WS], 1);
    fake_free(f);
    f = fake_new(ch);
    cursor("0123456789ab:99", &c);
    hr_chan_stream_start(&f->st, &c);
    assert_int_equal(f->ngaps, 1);
    assert_string_equal(f->gaps[0].reason, "epoch");
    fake_free(f);
    assert_int_equal(nsyncs, 2);

    /* gone while waiting: never called back (the wait is freed when it comes back) */
    f = fake_new(ch);
    cursor_of(ch, 50, &c);
    hr_chan_stream_start(&f->st, &c);
    assert_int_equal(nsyncs, 3);
    struct hr_hub_read *r = waiting;
    fake_free(f);
    hr_hub_synced(r, 1);

    /* the channel waited on is kept meanwhile, though nothing is published to it */
    struct hr_channel *q = hr_hub_channel(&e->hub, "quiet", 5, 1);
    f = fake_new(q);
    cursor_of(q, 3, &c);
    hr_chan_stream_start(&f->st, &c);
    assert_int_equal(nsyncs, 4);
    struct fake *g = fake_new(q);
    hr_chan_stream_start(&g->st, NULL);
    fake_free(g);
    assert_ptr_equal(hr_hub_channel(&e->hub, "quiet", 5, 0), q);
    hr_hub_synced(waiting, 1);
    assert_int_equal(f->ngaps, 1);
    assert_string_equal(f->gaps[0].reason, "unknown");
    assert_int_equal(f->n, 0);
    assert_int_equal(q->nsubs[HR_FMT_WS], 1);
    fake_free(f);
    assert_null(hr_hub_channel(&e->hub, "quiet", 5, 0));
    e->hub.sync = NULL;
}

/* Streams of one transport, found among other subscribers. */
static int nvisited;
static void visit(struct hr_chan_stream *s, void *ud)
{
    assert_ptr_equal(hr_chan_stream_ops(s), &fake_ops);
    nvisited++;
}

static void test_each(void **state)
{
    struct env *e = *state;
    struct hr_channel *a = hr_hub_channel(&e->hub, "a", 1, 1),
                      *b = hr_hub_channel(&e->hub, "b", 1, 1);
    struct fake *f1 = fake_new(a), *f2 = fake_new(b), *f3 = fake_new(b);
    hr_chan_stream_start(&f1->st, NULL);
    hr_chan_stream_start(&f2->st, NULL);
    f3->full = 1;
    publish(e, b, 1);
    struct hr_cursor c;
    cursor("0", &c);
    f3->full = 1;
    hr_chan_stream_start(&f3->st, &c); /* replaying: not live yet */
    nvisited = 0;
    hr_chan_stream_each(&e->hub, &fake_ops, visit, NULL);
    assert_int_equal(nvisited, 2);
    fake_free(f1);
    fake_free(f2);
    fake_free(f3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replay_across_pages_then_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_without_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_at_start, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_trimmed_during_replay, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_skip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coalesce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_forgets_unused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replica_waits_for_commits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
