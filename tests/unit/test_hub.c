/* test_hub.c - channels: names, ids, history bounds and gaps, commit before visibility,
 * fan-out to subscribers, encodings built once and shared. A fake store lets the test decide
 * when appends commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "hub/hub.h"

/* the hub keeps encodings in slots; which wire format a slot holds is the transports' business */
enum { SLOT_A, SLOT_B, SLOT_C, SLOT_D };

/* ---- a store whose commits the test triggers ---- */
struct fake_append {
    hr_store_done_cb done;
    void *ud;
    uint64_t id;
};
static struct fake_append queued[64];
static int nqueued, ntrims, fail_next;
static uint64_t last_trim_from;

static int fake_append(struct hr_store *st, const char *channel, uint64_t id, int64_t t,
                       struct hr_buf *data, hr_store_done_cb done, void *ud)
{
    if (fail_next) {
        fail_next = 0;
        return HR_EIO;
    }
    queued[nqueued++] = (struct fake_append){done, ud, id};
    return 0;
}

static int fake_trim(struct hr_store *st, const char *channel, uint64_t keep_from)
{
    ntrims++;
    last_trim_from = keep_from;
    return 0;
}

static void commit_all(int status)
{
    int n = nqueued;
    nqueued = 0;
    for (int i = 0; i < n; i++)
        queued[i].done(queued[i].ud, status);
}

static const struct hr_store_ops fake_ops = {
    .name = "fake", .append = fake_append, .trim = fake_trim};
static struct hr_store fake = {.ops = &fake_ops};

/* ---- acks and a recording subscriber ---- */
static uint64_t acked[64];
static int nacked, ack_status;

static void on_ack(void *ud, int status, uint64_t id)
{
    ack_status = status;
    if (status == 0)
        acked[nacked++] = id;
}

struct rec {
    struct hr_sub sub;
    uint64_t got[64];
    int n;
    int gone;
};

static int rec_deliver(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m)
{
    struct rec *r = (struct rec *)sub;
    if (r->gone)
        return -1;
    r->got[r->n++] = m->id;
    return 0;
}
static const struct hr_sub_ops rec_ops = {.deliver = rec_deliver};

static int setup(void **state)
{
    static struct hr_hub hub;
    struct hr_hub_limits l = {.max_messages = 5, .max_bytes = 1000, .max_age_ms = 0};
    nqueued = ntrims = nacked = fail_next = 0;
    assert_int_equal(hr_hub_init(&hub, NULL, &fake, &l), 0);
    *state = &hub;
    return 0;
}

static int teardown(void **state)
{
    hr_hub_free(*state);
    assert_int_equal(hr_buf_live, 0);
    return 0;
}

static void test_channel_names(void **state)
{
    static const struct {
        const char *name;
        int ok;
    } t[] = {
        {"chat", 1},    {"user:42", 1},   {"a.b-c_d@e", 1}, {"A9", 1},
        {"", 0},        {"has space", 0}, {"slash/no", 0},  {"q?x", 0},
        {"perc%41", 0}, {"é", 0},         {"nul\0x", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        assert_int_equal(hr_channel_name_valid(t[i].name, strlen(t[i].name) + (i == 10 ? 2 : 0)),
                         t[i].ok);
    char big[HR_CHANNEL_NAME_MAX + 2];
    memset(big, 'x', sizeof big);
    assert_true(hr_channel_name_valid(big, HR_CHANNEL_NAME_MAX));
    assert_false(hr_channel_name_valid(big, HR_CHANNEL_NAME_MAX + 1));
    struct hr_hub *hub = *state;
    assert_null(hr_hub_channel(hub, "bad name", 8, 1));
    assert_null(hr_hub_channel(hub, "chat", 4, 0));
    assert_non_null(hr_hub_channel(hub, "chat", 4, 1));
    assert_ptr_equal(hr_hub_channel(hub, "chat", 4, 0), hr_hub_channel(hub, "chat", 4, 1));
}

/* Ids increase from 1; nothing is visible (history, subscribers, ack) before the commit. */
static void test_visible_only_after_commit(void **state)
{
    struct hr_hub *hub = *state;
    struct hr_channel *ch = hr_hub_channel(hub, "c", 1, 1);
    struct rec r = {.sub = {.ops = &rec_ops, .fmt = SLOT_A}};
    hr_hub_subscribe(ch, &r.sub);
    assert_int_equal(ch->nsubs[SLOT_A], 1);
    assert_int_equal(hr_hub_publish(hub, ch, "one", 3, on_ack, NULL), 0);
    assert_int_equal(hr_hub_publish(hub, ch, "two", 3, on_ack, NULL), 0);
    assert_int_equal(nacked, 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(ch->kept, 0);
    assert_int_equal(ch->last_id, 0);
    commit_all(0);
    assert_int_equal(nacked, 2);
    assert_int_equal(acked[0], 1);
    assert_int_equal(acked[1], 2);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.got[0], 1);
    assert_int_equal(r.got[1], 2);
    assert_int_equal(ch->last_id, 2);
    hr_hub_unsubscribe(&r.sub);
    assert_int_equal(ch->nsubs[SLOT_A], 0);
}

static void test_failed_commit_is_not_acked(void **state)
{
    struct hr_hub *hub = *state;
    struct hr_channel *ch = hr_hub_channel(hub, "c", 1, 1);
    fail_next = 1;
    assert_int_equal(hr_hub_publish(hub, ch, "x", 1, on_ack, NULL), HR_EIO);
    assert_int_equal(hr_hub_publish(hub, ch, "y", 1, on_ack, NULL), 0);
    commit_all(HR_EIO);
    assert_int_equal(nacked, 0);
    assert_int_equal(ack_status, HR_EIO);
    assert_int_equal(ch->kept, 0);
    assert_int_equal(hr_hub_publish(hub, ch, "z", 1, on_ack, NULL), 0);
    commit_all(0);
    assert_int_equal(nacked, 1);
    assert_true(acked[0] >= 1);
}

struct collect {
    uint64_t ids[64];
    int n, stop_after;
    uint64_t first;
};

static void collect_page(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg)
{
    struct collect *c = ud;
    for (uint32_t i = 0; i < pg->n && !(c->stop_after && c->n >= c->stop_after); i++)
        c->ids[c->n++] = pg->m[i]->id;
    c->first = pg->first;
}

/* A read answered from the cache: 1 when messages after since are gone (a gap). */
static int since(struct hr_channel *ch, uint64_t after, struct collect *c)
{
    assert_int_equal(hr_hub_read(ch, after, 64, collect_page, c, NULL), 0);
    return after + 1 < c->first;
}

/* History keeps the newest max_messages; a cursor older than that is a gap. */
static void test_history_and_gaps(void **state)
{
    struct hr_hub *hub = *state;
    struct hr_channel *ch = hr_hub_channel(hub, "h", 1, 1);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(hr_hub_publish(hub, ch, "m", 1, NULL, NULL), 0);
        commit_all(0);
    }
    assert_int_equal(ch->kept, 5);
    assert_int_equal(hr_hub_first_id(ch), 4);
    assert_true(ntrims > 0);
    assert_int_equal(last_trim_from, 4);
    struct collect c = {0};
    assert_int_equal(since(ch, 3, &c), 0); /* nothing missed */
    assert_int_equal(c.n, 5);
    assert_int_equal(c.ids[0], 4);
    assert_int_equal(c.ids[4], 8);
    c = (struct collect){0};
    assert_int_equal(since(ch, 2, &c), 1); /* id 3 is gone: a gap */
    assert_int_equal(c.n, 5);
    c = (struct collect){0};
    assert_int_equal(since(ch, 0, &c), 1);
    c = (struct collect){0};
    assert_int_equal(since(ch, 8, &c), 0); /* up to date */
    assert_int_equal(c.n, 0);
    c = (struct collect){.stop_after = 2};
    since(ch, 5, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.ids[1], 7);
}

static void test_bytes_bound(void **state)
{
    struct hr_hub *hub = *state;
    struct hr_channel *ch = hr_hub_channel(hub, "b", 1, 1);
    char big[400];
    memset(big, 'b', sizeof big);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(hr_hub_publish(hub, ch, big, sizeof big, NULL, NULL), 0);
        commit_all(0);
    }
    assert_true(ch->kept_bytes <= hub->limits.max_bytes);
    assert_int_equal(ch->kept, 2);
}

/* A subscriber that reports itself gone is removed; the others still get the message. */
static void test_gone_subscriber_removed(void **state)
{
    struct hr_hub *hub = *state;
    struct hr_channel *ch = hr_hub_channel(hub, "g", 1, 1);
    struct rec a = {.sub = {.ops = &rec_ops, .fmt = SLOT_B}};
    struct rec b = {.sub = {.ops = &rec_ops, .fmt = SLOT_B}, .gone = 1};
    struct rec c = {.sub = {.ops = &rec_ops, .fmt = SLOT_C}};
    hr_hub_subscribe(ch, &a.sub);
    hr_hub_subscribe(ch, &b.sub);
    hr_hub_subscribe(ch, &c.sub);
    hr_hub_publish(hub, ch, "x", 1, NULL, NULL);
    commit_all(0);
    assert_int_equal(a.n, 1);
    assert_int_equal(c.n, 1);
    assert_false(b.sub.subscribed);
    assert_int_equal(ch->nsubs[SLOT_B], 1);
    hr_hub_unsubscribe(&a.sub);
    hr_hub_unsubscribe(&c.sub);
}

static int makes;
static struct hr_buf *make_enc(const struct hr_hub_msg *m, void *ud)
{
    makes++;
    return hr_buf_from(m->data->data, m->data->len);
}

static void test_encoding_built_once(void **state)
{
    struct hr_hub *hub = *state;
    struct hr_channel *ch = hr_hub_channel(hub, "e", 1, 1);
    hr_hub_publish(hub, ch, "payload", 7, NULL, NULL);
    commit_all(0);
    struct hr_hub_msg *m = &ch->ring[ch->head];
    makes = 0;
    struct hr_buf *e1 = hr_hub_encoding(m, SLOT_B, make_enc, NULL);
    struct hr_buf *e2 = hr_hub_encoding(m, SLOT_B, make_enc, NULL);
    assert_ptr_equal(e1, e2);
    assert_int_equal(makes, 1);
    assert_non_null(hr_hub_encoding(m, SLOT_A, make_enc, NULL));
    assert_int_equal(makes, 2);
}

/* ---- the bounded cache ---- */

static int setup_small_cache(void **state)
{
    static struct hr_hub hub;
    struct hr_hub_limits l = {.max_messages = 1000, .max_bytes = 1 << 20, .cache_bytes = 4096};
    nqueued = ntrims = nacked = fail_next = 0;
    assert_int_equal(hr_hub_init(&hub, NULL, &fake, &l), 0);
    *state = &hub;
    return 0;
}

static void publish_n(struct hr_hub *hub, struct hr_channel *ch, int n, size_t len)
{
    char buf[512];
    memset(buf, 'p', sizeof buf);
    for (int i = 0; i < n; i++) {
        assert_int_equal(hr_hub_publish(hub, ch, buf, len, NULL, NULL), 0);
        commit_all(0);
        assert_true(hub->cache_bytes <= hub->limits.cache_bytes);
    }
}

/* A store without reads (the memory store): the cache is the history, so the global bound
 * trims it, least recently used channel first, and the store is told. */
static void test_cache_bound_is_history_without_reads(void **state)
{
    struct hr_hub *hub = *state;
    struct hr_channel *a = hr_hub_channel(hub, "a", 1, 1), *b = hr_hub_channel(hub, "b", 1, 1);
    publish_n(hub, a, 10, 100);
    assert_int_equal(a->kept, 10);
    assert_int_equal(hr_hub_first_id(a), 1);
    publish_n(hub, b, 10, 100);
    /* b was used last: a lost its oldest first */
    assert_int_equal(b->kept, 10);
    assert_true(a->kept > 0 && a->kept < 10);
    assert_int_equal(hr_hub_first_id(a), 11 - a->kept);
    assert_int_equal(last_trim_from, hr_hub_first_id(a));
    struct collect c = {0};
    assert_int_equal(since(a, 0, &c), 1); /* a gap, said */
    assert_int_equal(c.ids[0], hr_hub_first_id(a));
    /* a read makes a channel recently used: b goes next */
    c = (struct collect){0};
    since(a, 0, &c);
    uint64_t akept = a->kept;
    publish_n(hub, hr_hub_channel(hub, "c", 1, 1), 3, 100);
    assert_true(b->kept < 10);
    assert_int_equal(a->kept, akept);
    /* an emptied channel holds no ring */
    publish_n(hub, hr_hub_channel(hub, "c", 1, 1), 20, 200);
    assert_int_equal(a->kept, 0);
    assert_null(a->ring);
    assert_int_equal(a->cap, 0);
    assert_int_equal(hr_hub_first_id(a), 11);
}

/* ---- a store with reads: what the cache drops is read back a page at a time ---- */
static hr_store_read_cb read_done;
static void *read_ud;
static uint64_t read_since;
static int nreads, ntrim_limits;
static hr_store_trimmed_cb trim_done;
static void *trim_ud;

static int fake_read(struct hr_store *st, const char *channel, uint64_t since, uint32_t max,
                     size_t max_bytes, hr_store_read_cb done, void *ud)
{
    nreads++;
    read_done = done;
    read_ud = ud;
    read_since = since;
    return 0;
}

static int fake_trim_limits(struct hr_store *st, const char *channel, uint64_t max_count,
                            uint64_t max_bytes, int64_t min_time, hr_store_trimmed_cb done,
                            void *ud)
{
    ntrim_limits++;
    trim_done = done;
    trim_ud = ud;
    return 0;
}

static const struct hr_store_ops reading_ops = {.name = "reading",
                                                .append = fake_append,
                                                .trim = fake_trim,
                                                .read = fake_read,
                                                .trim_limits = fake_trim_limits};
static struct hr_store reading = {.ops = &reading_ops};

static int setup_reading(void **state)
{
    static struct hr_hub hub;
    struct hr_hub_limits l = {.max_messages = 30, .max_bytes = 1 << 20, .cache_bytes = 4096};
    nqueued = ntrims = nacked = fail_next = nreads = ntrim_limits = 0;
    assert_int_equal(hr_hub_init(&hub, NULL, &reading, &l), 0);
    *state = &hub;
    return 0;
}

static void test_reads_older_than_the_cache_go_to_the_store(void **state)
{
    struct hr_hub *hub = *state;
    struct hr_channel *ch = hr_hub_channel(hub, "r", 1, 1);
    publish_n(hub, ch, 20, 300);
    /* evicted from the cache, still in the history */
    assert_int_equal(ch->kept, 20);
    assert_int_equal(hr_hub_first_id(ch), 1);
    assert_true(ch->cached < 20);
    uint64_t fc = ch->ring[ch->head].id;
    assert_true(hr_hub_cached(ch, fc - 1));
    assert_false(hr_hub_cached(ch, 0));
    /* from the cache: at once */
    struct collect c = {0};
    assert_int_equal(hr_hub_read(ch, fc - 1, 64, collect_page, &c, NULL), 0);
    assert_int_equal(c.ids[0], fc);
    /* older: later, from the store; the page leaves out what it must not show */
    c = (struct collect){0};
    struct hr_hub_read *req;
    assert_int_equal(hr_hub_read(ch, 2, 64, collect_page, &c, &req), 1);
    assert_non_null(req);
    assert_int_equal(nreads, 1);
    assert_int_equal(read_since, 2);
    assert_int_equal(c.n, 0);
    struct hr_store_row rows[4] = {{3, 0, "x", 1}, {4, 0, "y", 1}, {21, 0, "z", 1}, {2, 0, "w", 1}};
    struct hr_store_page pg = {.first = 1, .n = 4, .rows = rows};
    read_done(read_ud, &pg);
    assert_int_equal(c.n, 2); /* 21 is not acknowledged yet, 2 is not after since */
    assert_int_equal(c.ids[0], 3);
    assert_int_equal(c.ids[1], 4);
    assert_int_equal(c.first, 1);
    /* cancelled: the answer is dropped */
    c = (struct collect){0};
    assert_int_equal(hr_hub_read(ch, 0, 64, collect_page, &c, &req), 1);
    hr_hub_read_cancel(req);
    read_done(read_ud, &pg);
    assert_int_equal(c.n, 0);
    /* a read under way when the hub goes: freed by the store's answer */
    assert_int_equal(hr_hub_read(ch, 0, 64, collect_page, &c, &req), 1);
    hr_hub_free(hub);
    read_done(read_ud, &pg);
    assert_int_equal(c.n, 0);
    assert_int_equal(hr_hub_init(hub, NULL, &reading, &hub->limits), 0);
}

/* Over --history with the oldest not cached: the store trims, and its metadata is applied. */
static void test_trim_by_the_store(void **state)
{
    struct hr_hub *hub = *state;
    struct hr_channel *ch = hr_hub_channel(hub, "t", 1, 1);
    publish_n(hub, ch, 31, 300);
    assert_int_equal(ntrim_limits, 1);
    assert_int_equal(ch->kept, 31);
    publish_n(hub, ch, 2, 300); /* one trim at a time */
    assert_int_equal(ntrim_limits, 1);
    struct hr_store_meta m = {
        .first_id = 4, .last_id = 33, .count = 30, .bytes = 30 * 300, .first_time = 1};
    trim_done(trim_ud, 0, &m);
    assert_int_equal(ch->kept, 30);
    assert_int_equal(hr_hub_first_id(ch), 4);
    assert_int_equal(ch->kept_bytes, 30 * 300);
    assert_true(ch->ring[ch->head].id >= 4);
    /* a memory budget under pressure empties the cache; the history is the store's */
    hr_hub_cache_shrink(hub, 0);
    assert_int_equal(ch->cached, 0);
    assert_null(ch->ring);
    assert_int_equal(hub->cache_bytes, 0);
    assert_int_equal(ch->kept, 30);
    assert_int_equal(hr_hub_first_id(ch), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_channel_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_visible_only_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_commit_is_not_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_and_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_subscriber_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encoding_built_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_bound_is_history_without_reads,
                                        setup_small_cache, teardown),
        cmocka_unit_test_setup_teardown(test_reads_older_than_the_cache_go_to_the_store,
                                        setup_reading, teardown),
        cmocka_unit_test_setup_teardown(test_trim_by_the_store, setup_reading, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
