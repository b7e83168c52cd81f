/* test_chan_pub.c - the zero-copy publish path: a POST /pub body is one refcounted buffer,
 * taken from the parser, checked as JSON, held by the hub while it commits, by the store's
 * write until its commit (SQLite), and kept in the history: the very same hr_buf all along
 * (pointer equality, reference counts, no new buffer made). Text bodies are re-encoded once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "chan/wire.h"
#include "core/budget.h"
#include "core/buf.h"
#include "core/error.h"
#include "http/parser.h"
#include "hub/hub.h"
#include "store/store.h"

/* ---- helpers ---- */

/* Parse one whole request and take its body. */
static struct hr_buf *parse_body(const char *raw)
{
    struct hr_http_parser p;
    size_t used;
    hr_http_parser_init(&p, 8192, 1 << 20);
    assert_int_equal(hr_http_parse(&p, raw, strlen(raw), &used), HR_HTTP_REQUEST);
    struct hr_buf *b = hr_http_request_take_body(&p.req);
    assert_null(p.req.body);
    assert_int_equal(p.req.body_len, 0);
    hr_http_parser_free(&p); /* the request no longer holds the body: it stays alive */
    return b;
}

static int nacked, ack_status;
static uint64_t ack_id;

static void on_ack(void *ud, int status, uint64_t id)
{
    nacked++;
    ack_status = status;
    ack_id = id;
}

static struct hr_buf *paged;

static void on_page(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg)
{
    assert_int_equal(pg->status, 0);
    assert_int_equal(pg->n, 1);
    paged = pg->m[0]->data;
}

struct world {
    uv_loop_t loop;
    struct hr_store *st;
    struct hr_hub hub;
    struct hr_channel *ch;
    char dir[256];
};

static void world_open(struct world *w, int sqlite)
{
    assert_int_equal(uv_loop_init(&w->loop), 0);
    w->dir[0] = 0;
    if (sqlite) {
        const char *tmp = getenv("TMPDIR");
        snprintf(w->dir, sizeof w->dir, "%s/herald-pub-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        assert_non_null(mkdtemp(w->dir));
        char err[256] = "";
        w->st = hr_store_sqlite_new(&w->loop, w->dir, err, sizeof err);
        if (!w->st)
            fail_msg("hr_store_sqlite_new: %s", err);
    } else {
        w->st = hr_store_memory_new(&w->loop);
        assert_non_null(w->st);
    }
    struct hr_hub_limits limits = HR_HUB_LIMITS_DEFAULT;
    assert_int_equal(hr_hub_init(&w->hub, &w->loop, w->st, &limits), 0);
    w->ch = hr_hub_channel(&w->hub, "news", 4, 1);
    assert_non_null(w->ch);
    nacked = 0;
    paged = NULL;
}

static void world_close(struct world *w)
{
    w->st->ops->close(w->st);
    hr_hub_free(&w->hub);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    if (w->dir[0]) {
        static const char *const files[] = {"herald.db", "herald.db-wal", "herald.db-shm"};
        char path[512];
        for (size_t i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%s", w->dir, files[i]);
            unlink(path);
        }
        assert_int_equal(rmdir(w->dir), 0);
    }
}

static const char *loaded;
static size_t loaded_len;

static void on_row(void *ud, const char *channel, uint64_t id, int64_t time_ms, const void *data,
                   size_t len)
{
    loaded = strndup(data, len);
    loaded_len = len;
}

static const char json_req[] = "POST /pub/news HTTP/1.1\r\nContent-Type: application/json\r\n"
                               "Content-Length: 27\r\n\r\n{\"text\":\"hello\",\"n\":[1,2]}\n";

/* The body's buffer from the parser to the history, with the memory store or SQLite's. */
static void publish_json(int sqlite)
{
    struct world w;
    world_open(&w, sqlite);
    long live0 = hr_buf_live;

    struct hr_buf *body = parse_body(json_req);
    assert_non_null(body);
    assert_int_equal(body->refs, 1);
    assert_int_equal(body->len, 27);
    assert_int_equal(body->cap, 28); /* the declared length and its NUL, no spare room */
    assert_int_equal(hr_buf_live, live0 + 1);

    /* valid JSON: the value is the body itself (the trailing newline cut in place) */
    const char *err = NULL;
    struct hr_buf *value = hr_msg_value_buf(body, 1, &err);
    assert_ptr_equal(value, body);
    assert_int_equal(value->refs, 1);
    assert_int_equal(value->len, 26);
    assert_memory_equal(value->data, "{\"text\":\"hello\",\"n\":[1,2]}", 26);

    assert_int_equal(hr_hub_publish_buf(&w.hub, w.ch, value, on_ack, NULL), 0);
    /* referenced, not copied: the hub's pending publish, and SQLite's queued write */
    assert_int_equal(value->refs, sqlite ? 3 : 2);
    assert_int_equal(hr_buf_live, live0 + 1);
    assert_int_equal(hr_budget_used(HR_MEM_PUBLISH), 26); /* charged once */

    while (!nacked)
        uv_run(&w.loop, UV_RUN_ONCE);
    assert_int_equal(ack_status, 0);
    assert_int_equal(ack_id, 1);
    /* committed: the store let go, the history holds the very same buffer */
    assert_int_equal(value->refs, 2);
    assert_int_equal(hr_buf_live, live0 + 1);
    assert_int_equal(hr_budget_used(HR_MEM_PUBLISH), 0); /* released once */
    assert_int_equal(hr_hub_read(w.ch, 0, 10, on_page, NULL, NULL), 0);
    assert_ptr_equal(paged, value);

    if (sqlite) {
        /* and the row written from it holds its bytes */
        loaded = NULL;
        assert_int_equal(w.st->ops->load(w.st, on_row, NULL), 0);
        assert_non_null(loaded);
        assert_int_equal(loaded_len, 26);
        assert_memory_equal(loaded, value->data, 26);
        free((void *)loaded);
    }

    hr_buf_unref(value);
    assert_int_equal(value->refs, 1); /* the history's */
    world_close(&w);
    assert_int_equal(hr_buf_live, live0);
}

static void test_json_body_memory_store(void **state)
{
    publish_json(0);
}

static void test_json_body_sqlite_store(void **state)
{
    publish_json(1);
}

/* A failed append gives the buffer back untouched and the budget's charge back. */
static int refuse_append(struct hr_store *st, const char *channel, uint64_t id, int64_t t,
                         struct hr_buf *data, hr_store_done_cb done, void *ud)
{
    return HR_EIO;
}

static void test_refused_append_releases(void **state)
{
    static const struct hr_store_ops ops = {.name = "refusing", .append = refuse_append};
    struct hr_store st = {.ops = &ops};
    struct hr_hub hub;
    struct hr_hub_limits limits = HR_HUB_LIMITS_DEFAULT;
    assert_int_equal(hr_hub_init(&hub, NULL, &st, &limits), 0);
    struct hr_channel *ch = hr_hub_channel(&hub, "x", 1, 1);
    struct hr_buf *b = hr_buf_from("1", 1);
    assert_int_equal(hr_hub_publish_buf(&hub, ch, b, on_ack, NULL), HR_EIO);
    assert_int_equal(b->refs, 1);
    assert_int_equal(hr_budget_used(HR_MEM_PUBLISH), 0);
    assert_int_equal(ch->next_id, 1);
    hr_buf_unref(b);
    hr_hub_free(&hub);
}

/* A chunked body grew by doubling; what is taken costs only what it holds. */
static void test_chunked_body_fits(void **state)
{
    char raw[4096];
    char chunk[1500];
    memset(chunk, '7', sizeof chunk);
    int n = snprintf(
        raw, sizeof raw,
        "POST /pub/news HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%.*s\r\n0\r\n\r\n",
        (unsigned)sizeof chunk, (int)sizeof chunk, chunk);
    assert_true(n > 0 && (size_t)n < sizeof raw);
    struct hr_buf *b = parse_body(raw);
    assert_int_equal(b->len, sizeof chunk);
    assert_int_equal(b->cap, sizeof chunk + 1);
    const char *err = NULL;
    struct hr_buf *v = hr_msg_value_buf(b, 1, &err);
    assert_ptr_equal(v, b);
    hr_buf_unref(v);
}

/* Text is the one body that changes: re-encoded once as a JSON string. */
static void test_text_body_reencoded_once(void **state)
{
    long live0 = hr_buf_live;
    struct hr_buf *body =
        parse_body("POST /pub/news HTTP/1.1\r\nContent-Length: 8\r\n\r\nsay \"hi\"");
    const char *err = NULL;
    struct hr_buf *value = hr_msg_value_buf(body, 0, &err);
    assert_non_null(value);
    assert_int_equal(hr_buf_live, live0 + 1); /* the body went, its encoding came */
    assert_int_equal(value->len, 12);
    assert_memory_equal(value->data, "\"say \\\"hi\\\"\"", 12);
    assert_int_equal(value->cap, value->len); /* what the history keeps costs what it holds */
    hr_buf_unref(value);

    /* no body at all is the empty string */
    value = hr_msg_value_buf(NULL, 0, &err);
    assert_non_null(value);
    assert_memory_equal(value->data, "\"\"", 2);
    hr_buf_unref(value);

    /* refused bodies release the buffer */
    body = hr_buf_from("\xff", 1);
    assert_null(hr_msg_value_buf(body, 0, &err));
    assert_string_equal(err, "body is not valid UTF-8 text");
    body = hr_buf_from("{", 1);
    assert_null(hr_msg_value_buf(body, 1, &err));
    assert_string_equal(err, "body is not valid JSON");
    assert_null(hr_msg_value_buf(NULL, 1, &err));
    assert_int_equal(hr_buf_live, live0);
}

/* Whitespace around a JSON body is cut in place when the buffer is the caller's alone, and
 * into a copy when someone else also holds it (their bytes must not move). */
static void test_json_trim(void **state)
{
    const char *err = NULL;
    struct hr_buf *b = hr_buf_from(" \r\n[1, 2]\t ", 11);
    struct hr_buf *v = hr_msg_value_buf(b, 1, &err);
    assert_ptr_equal(v, b);
    assert_int_equal(v->len, 6);
    assert_memory_equal(v->data, "[1, 2]", 6);
    hr_buf_unref(v);

    b = hr_buf_from(" 42", 3);
    hr_buf_ref(b);
    v = hr_msg_value_buf(b, 1, &err);
    assert_ptr_not_equal(v, b);
    assert_int_equal(b->refs, 1);
    assert_memory_equal(b->data, " 42", 3);
    assert_int_equal(v->len, 2);
    assert_memory_equal(v->data, "42", 2);
    hr_buf_unref(v);
    hr_buf_unref(b);

    /* nothing to cut: even a shared buffer is the value as is */
    b = hr_buf_from("42", 2);
    hr_buf_ref(b);
    v = hr_msg_value_buf(b, 1, &err);
    assert_ptr_equal(v, b);
    assert_int_equal(b->refs, 2);
    hr_buf_unref(v);
    hr_buf_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_body_memory_store),
        cmocka_unit_test(test_json_body_sqlite_store),
        cmocka_unit_test(test_refused_append_releases),
        cmocka_unit_test(test_chunked_body_fits),
        cmocka_unit_test(test_text_body_reencoded_once),
        cmocka_unit_test(test_json_trim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
