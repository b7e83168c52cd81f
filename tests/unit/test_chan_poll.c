/* test_chan_poll.c - a poll answer as a short-lived subscriber stream (chan/poll.h over
 * chan/stream.c) on a real hub: at most max messages and the next cursor from a history of
 * several pages, gap notices at the start, a long poll held then answered by a publish or by
 * its timeout, and pages read from SQLite that stop at their bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan/poll.h"
#include "core/error.h"

/* ---- a hub on a store ---- */
struct env {
    uv_loop_t loop;
    struct hr_store *store;
    struct hr_hub hub;
    struct hr_poll_clock clock;
    char dir[256]; /* SQLite's, or "" */
};

static int setup_store(void **state, uint32_t max_messages, size_t cache_bytes, int sqlite)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    if (sqlite) {
        const char *tmp = getenv("TMPDIR");
        snprintf(e->dir, sizeof e->dir, "%s/herald-poll-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        assert_non_null(mkdtemp(e->dir));
        char err[256] = "";
        e->store = hr_store_sqlite_new(&e->loop, e->dir, err, sizeof err);
        if (!e->store)
            fail_msg("hr_store_sqlite_new: %s", err);
    } else {
        e->store = hr_store_memory_new(&e->loop);
    }
    assert_non_null(e->store);
    struct hr_hub_limits l = HR_HUB_LIMITS_DEFAULT;
    l.max_messages = max_messages;
    l.cache_bytes = cache_bytes;
    assert_int_equal(hr_hub_init(&e->hub, &e->loop, e->store, &l), 0);
    hr_poll_clock_init(&e->clock, &e->loop);
    *state = e;
    return 0;
}

static int setup(void **state)
{
    return setup_store(state, 5000, HR_HUB_CACHE_DEFAULT, 0);
}

static int setup_small(void **state)
{
    return setup_store(state, 5, HR_HUB_CACHE_DEFAULT, 0);
}

/* SQLite with a cache too small to answer from: every read is a page from the store. */
static int setup_sqlite(void **state)
{
    return setup_store(state, 5000, 4096, 1);
}

static int teardown(void **state)
{
    struct env *e = *state;
    e->store->ops->close(e->store);
    hr_hub_free(&e->hub);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    if (e->dir[0]) {
        static const char *const files[] = {"herald.db", "herald.db-wal", "herald.db-shm"};
        char path[512];
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            snprintf(path, sizeof path, "%s/%s", e->dir, files[i]);
            unlink(path);
        }
        assert_int_equal(rmdir(e->dir), 0);
    }
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

/* Publish n messages of size bytes and run the loop until they are committed. */
static void publish_sized(struct env *e, struct hr_channel *ch, int n, size_t size)
{
    char *v = malloc(size);
    assert_non_null(v);
    memset(v, 'x', size);
    v[0] = '"';
    v[size - 1] = '"';
    nacked = 0;
    for (int i = 0; i < n; i++)
        assert_int_equal(hr_hub_publish(&e->hub, ch, v, size, on_ack, NULL), 0);
    free(v);
    while (nacked < n)
        uv_run(&e->loop, UV_RUN_ONCE);
}

static void publish(struct env *e, struct hr_channel *ch, int n)
{
    publish_sized(e, ch, n, 2);
}

/* ---- what an answer held ---- */
struct answer {
    int calls, status;
    char gap[16]; /* "" for none */
    uint64_t ids[HR_HUB_PAGE_MAX];
    uint32_t n;
    uint64_t next;
    int more;
    char head[512], tail[256];
};

static void answer_cb(struct hr_poll *p, int status)
{
    struct answer *a = p->ud;
    a->calls++;
    a->status = status;
    if (status < 0)
        return;
    snprintf(a->gap, sizeof a->gap, "%s", p->gap ? p->gap : "");
    a->n = p->n;
    for (uint32_t i = 0; i < p->n; i++) {
        /* each message is its shared poll encoding, {"id":N,"cursor":"E:N",...} */
        const struct hr_slice *s = &p->items[i];
        assert_int_equal(s->off, 0);
        assert_int_equal(s->len, s->buf->len);
        assert_int_equal(sscanf((const char *)s->buf->data, "{\"id\":%" SCNu64, &a->ids[i]), 1);
    }
    a->next = p->next;
    a->more = p->more;
    struct hr_buf *h, *t;
    assert_int_equal(hr_poll_frame(p, &h, &t), 0);
    snprintf(a->head, sizeof a->head, "%.*s", (int)h->len, h->data);
    snprintf(a->tail, sizeof a->tail, "%.*s", (int)t->len, t->data);
    hr_buf_unref(h);
    hr_buf_unref(t);
}

/* Poll ch after cursor text c (NULL: none); timeout_ms 0 for a short poll. */
static struct hr_poll *poll_start(struct env *e, struct hr_channel *ch, const char *c, uint32_t max,
                                  uint32_t timeout_ms, struct answer *a)
{
    memset(a, 0, sizeof(*a));
    struct hr_poll *p = hr_poll_new(&e->clock, ch, max, timeout_ms, answer_cb, a);
    assert_non_null(p);
    struct hr_cursor cur;
    if (c)
        assert_int_equal(hr_cursor_parse(c, strlen(c), &cur), 0);
    hr_poll_start(p, c ? &cur : NULL);
    return p;
}

static void assert_run(const struct answer *a, uint64_t from, uint64_t to)
{
    assert_int_equal(a->n, to - from + 1);
    for (uint32_t i = 0; i < a->n; i++)
        assert_int_equal(a->ids[i], from + i);
}

static void run_until(struct env *e, const struct answer *a)
{
    for (int i = 0; i < 100000 && !a->calls; i++)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(a->calls, 1);
}

/* ---- tests ---- */

/* From a cursor, over a history longer than a page: at most max messages, the next cursor
 * and more; the next poll goes on from there; the answer's frame is exact. */
static void test_short_poll_across_pages(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "p", 1, 1);
    publish(e, ch, 1500);
    struct answer a;
    poll_start(e, ch, "10", 1000, 0, &a);
    assert_int_equal(a.calls, 1); /* from the cache: at once */
    assert_int_equal(a.status, 0);
    assert_string_equal(a.gap, "");
    assert_run(&a, 11, 1010);
    assert_int_equal(a.next, 1010);
    assert_true(a.more);
    char want[512];
    snprintf(want, sizeof want, "{\"channel\":\"p\",\"epoch\":\"%s\",\"gap\":null,\"messages\":[",
             ch->epoch);
    assert_string_equal(a.head, want);
    snprintf(want, sizeof want, "],\"next\":\"%s:1010\",\"more\":true}\n", ch->epoch);
    assert_string_equal(a.tail, want);
    assert_int_equal(ch->nsubs[HR_FMT_POLL], 0); /* a short poll never subscribes */

    char c[64];
    snprintf(c, sizeof c, "%s:1010", ch->epoch);
    poll_start(e, ch, c, 1000, 0, &a);
    assert_run(&a, 1011, 1500);
    assert_int_equal(a.next, 1500);
    assert_false(a.more);

    /* max over a page is a page; a small max is kept */
    poll_start(e, ch, "0", 5000, 0, &a);
    assert_run(&a, 1, HR_HUB_PAGE_MAX);
    assert_true(a.more);
    poll_start(e, ch, "1400", 7, 0, &a);
    assert_run(&a, 1401, 1407);
    assert_int_equal(a.next, 1407);
    assert_true(a.more);

    /* up to date: nothing, the same position, no more */
    poll_start(e, ch, "1500", 1000, 0, &a);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.n, 0);
    assert_int_equal(a.next, 1500);
    assert_false(a.more);
    uv_run(&e->loop, UV_RUN_NOWAIT); /* the answered polls are freed */
}

/* A cursor older than the history, from the future, of another channel, or none while the
 * start is gone: the gap and what is kept; a cursor inside the history: no gap. */
static void test_gap_at_start(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "g", 1, 1);
    publish(e, ch, 8); /* keeps 4..8 */
    static const struct {
        const char *cursor, *gap;
    } t[] = {{"1", "trimmed"},
             {"99", "unknown"},
             {"0123456789ab:5", "epoch"},
             {NULL, "trimmed"},
             {"0", "trimmed"}};
    struct answer a;
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        poll_start(e, ch, t[i].cursor, 1000, 0, &a);
        assert_int_equal(a.calls, 1);
        assert_string_equal(a.gap, t[i].gap);
        assert_run(&a, 4, 8);
        assert_int_equal(a.next, 8);
        assert_false(a.more);
        char want[512];
        snprintf(want, sizeof want,
                 "{\"channel\":\"g\",\"epoch\":\"%s\",\"gap\":\"%s\",\"messages\":[", ch->epoch,
                 t[i].gap);
        assert_string_equal(a.head, want);
    }
    /* a long poll with a gap to tell answers at once */
    poll_start(e, ch, "1", 1000, 60000, &a);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.gap, "trimmed");
    assert_run(&a, 4, 8);
    char c[64];
    snprintf(c, sizeof c, "%s:6", ch->epoch);
    poll_start(e, ch, c, 1000, 0, &a);
    assert_string_equal(a.gap, "");
    assert_run(&a, 7, 8);

    /* nothing kept after the gap: the answer moves the reader on (next = the last id, no
     * more), so a reader following more does not ask again forever */
    hr_hub_cache_shrink(&e->hub, 0); /* the memory store's history is its cache */
    assert_int_equal(hr_hub_first_id(ch), 9);
    for (int lp = 0; lp < 2; lp++) {
        poll_start(e, ch, "2", 1000, lp ? 60000 : 0, &a);
        assert_int_equal(a.calls, 1);
        assert_string_equal(a.gap, "trimmed");
        assert_int_equal(a.n, 0);
        assert_int_equal(a.next, 8);
        assert_false(a.more);
    }
    uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* A long poll with nothing newer is held in the channel (counted as a long-poll reader) and
 * answered by the next message alone; with something newer it answers at once. */
static void test_long_poll_held_then_published(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "l", 1, 1);
    publish(e, ch, 2);
    struct answer a, b;
    char c[64];
    snprintf(c, sizeof c, "%s:2", ch->epoch);
    poll_start(e, ch, c, 1000, 60000, &a);
    poll_start(e, ch, "2", 1000, 60000, &b);
    assert_int_equal(a.calls + b.calls, 0);
    assert_int_equal(ch->nsubs[HR_FMT_POLL], 2);
    publish(e, ch, 1);
    for (struct answer *x = &a; x; x = x == &a ? &b : NULL) {
        assert_int_equal(x->calls, 1);
        assert_string_equal(x->gap, "");
        assert_run(x, 3, 3);
        assert_int_equal(x->next, 3);
        assert_false(x->more);
    }
    assert_int_equal(ch->nsubs[HR_FMT_POLL], 0);
    publish(e, ch, 1);
    assert_int_equal(a.calls, 1); /* answered once */

    /* something newer: at once, not held */
    poll_start(e, ch, "1", 1000, 60000, &a);
    assert_int_equal(a.calls, 1);
    assert_run(&a, 2, 4);
    assert_int_equal(ch->nsubs[HR_FMT_POLL], 0);

    /* a held poll whose request goes away: no answer, out of the channel */
    poll_start(e, ch, "4", 1000, 60000, &a);
    struct hr_poll *p = poll_start(e, ch, "4", 1000, 60000, &b);
    assert_int_equal(ch->nsubs[HR_FMT_POLL], 2);
    hr_poll_cancel(p);
    assert_int_equal(ch->nsubs[HR_FMT_POLL], 1);
    publish(e, ch, 1);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
    uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* Nothing comes: the long poll answers empty after its timeout with the same position; a
 * channel nobody publishes to is forgotten afterwards. */
static void test_long_poll_timeout(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "t", 1, 1);
    publish(e, ch, 3);
    struct answer a;
    uint64_t t0 = uv_now(&e->loop);
    poll_start(e, ch, "3", 1000, 30, &a);
    assert_int_equal(a.calls, 0);
    run_until(e, &a);
    assert_true(uv_now(&e->loop) - t0 >= 30);
    assert_int_equal(a.status, 0);
    assert_string_equal(a.gap, "");
    assert_int_equal(a.n, 0);
    assert_int_equal(a.next, 3);
    assert_false(a.more);
    char want[256];
    snprintf(want, sizeof want, "],\"next\":\"%s:3\",\"more\":false}\n", ch->epoch);
    assert_string_equal(a.tail, want);
    assert_int_equal(ch->nsubs[HR_FMT_POLL], 0);

    struct hr_channel *none = hr_hub_channel(&e->hub, "none", 4, 1);
    poll_start(e, none, NULL, 1000, 10, &a);
    assert_int_equal(a.calls, 0);
    run_until(e, &a);
    assert_int_equal(a.n, 0);
    assert_int_equal(a.next, 0);
    assert_null(hr_hub_channel(&e->hub, "none", 4, 0));
}

/* The server is stopping: every long poll waiting answers now, empty, with its position (the
 * client polls again, on the server that takes over), long before its timeout. */
static void test_long_polls_released(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "t", 1, 1);
    publish(e, ch, 2);
    struct answer a, b;
    poll_start(e, ch, "2", 1000, 60000, &a);
    poll_start(e, ch, "2", 1000, 60000, &b);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(a.calls + b.calls, 0);
    uint64_t t0 = uv_now(&e->loop);
    hr_poll_clock_release(&e->clock);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_int_equal(a.status, 0);
    assert_int_equal(a.n, 0);
    assert_int_equal(a.next, 2);
    assert_int_equal(b.next, 2);
    assert_int_equal(ch->nsubs[HR_FMT_POLL], 0);
    /* nothing is left to answer: the clock lets go of its timer at once */
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_true(uv_now(&e->loop) - t0 < 1000);
    assert_int_equal(a.calls, 1);
    hr_poll_clock_release(&e->clock); /* none waiting: nothing happens */
}

/* Read from the store: a page later; one page per answer, cut at its bytes (more says so);
 * the chain of answers gives every id once. A cancelled read answers nothing. */
static void test_pages_from_the_store(void **state)
{
    struct env *e = *state;
    struct hr_channel *ch = hr_hub_channel(&e->hub, "s", 1, 1);
    publish_sized(e, ch, 300, 4000); /* 1.2 MB: several pages of HR_HUB_PAGE_BYTES */
    assert_false(hr_hub_cached(ch, 0));
    struct answer a;
    uint64_t next = 0;
    int answers = 0, later = 0;
    do {
        char c[32];
        snprintf(c, sizeof c, "%" PRIu64, next);
        poll_start(e, ch, c, 1000, answers % 2 ? 60000 : 0, &a);
        if (!hr_hub_cached(ch, next)) {
            assert_int_equal(a.calls, 0);
            later++;
        }
        run_until(e, &a);
        assert_string_equal(a.gap, "");
        assert_true(a.n > 0 && a.n < 300);
        assert_run(&a, next + 1, next + a.n);
        next = a.next;
        answers++;
    } while (a.more);
    assert_int_equal(next, 300);
    assert_true(answers >= 4);
    assert_true(later >= 3);

    struct hr_poll *p = poll_start(e, ch, "0", 1000, 0, &a);
    hr_poll_cancel(p);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(a.calls, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_short_poll_across_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gap_at_start, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_long_poll_held_then_published, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_poll_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_polls_released, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pages_from_the_store, setup_sqlite, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
