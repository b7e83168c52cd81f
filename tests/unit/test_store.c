/* test_store.c - src/store/memory.c and src/store/sqlite.c on a real libuv loop: done runs
 * later than append and in append order, the SQLite file gives back every message byte for
 * byte with its epoch, trims, groups appends into few commits, shows each batch before its
 * fsync and acknowledges it after, renews the epoch after a power loss, and loses no
 * acknowledged message when the process is killed mid-write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "store/store.h"

/* defined in sqlite.c for this test: how many transactions committed */
extern unsigned long hr_store_sqlite_commits;

#define N 10000
#define NCHAN 3

static const char *const channels[NCHAN] = {"alpha", "b\xc3\xa9ta", "room/with spaces"};

/* ---- helpers ---- */

/* An append of bytes: the store references the buffer, which the caller gives up at once, so
 * the store must keep it alive until the commit (ASan sees it otherwise). */
static int append_bytes(struct hr_store *st, const char *channel, uint64_t id, int64_t time_ms,
                        const void *data, size_t len, hr_store_done_cb done, void *ud)
{
    struct hr_buf *b = hr_buf_from(data, len);
    assert_non_null(b);
    int rc = st->ops->append(st, channel, id, time_ms, b, done, ud);
    hr_buf_unref(b);
    return rc;
}

static void make_dir(char *dir, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, len, "%s/herald-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir)
{
    static const char *const files[] = {"herald.db", "herald.db-wal", "herald.db-shm"};
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    assert_int_equal(rmdir(dir), 0);
}

/* close() leaves one handle closing: the loop runs once more, then must be empty. */
static void close_store(uv_loop_t *loop, struct hr_store *st)
{
    st->ops->close(st);
    uv_run(loop, UV_RUN_DEFAULT);
}

static void finish_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static int expect_shown; /* below, with the acknowledgements */

static struct hr_store *open_sqlite(uv_loop_t *loop, const char *dir)
{
    char err[256] = "";
    struct hr_store *st = hr_store_sqlite_new(loop, dir, err, sizeof err);
    if (!st)
        fail_msg("hr_store_sqlite_new: %s", err);
    expect_shown = 1; /* --store-sync full: each batch is shown, then fsync'd, then acknowledged */
    /* an idle store must not keep the loop alive (shutdown waits for the loop to empty) */
    assert_int_equal(uv_run(loop, UV_RUN_NOWAIT), 0);
    return st;
}

static double now_ms(void)
{
    return (double)uv_hrtime() / 1e6;
}

/* Message i of the big test: channel i % 3, ids 1, 2, ... per channel, lengths 0..96 with
 * NULs in the data. */
static size_t msg_len(int i)
{
    return (size_t)((i * 31) % 97);
}

static void msg_data(int i, unsigned char *out)
{
    for (size_t k = 0; k < msg_len(i); k++)
        out[k] = k % 5 == 0 ? 0 : (unsigned char)(i + k * 7);
}

static int64_t msg_time(int i)
{
    return 1700000000000LL + (int64_t)i * 7;
}

/* ---- acknowledgements ---- */

static int in_append; /* set around every append call: done must never see it */
static int ndone;
static int order[N + 16];
static int statuses[N + 16];
static struct hr_store *reappend_store; /* the memory test appends from a callback */
/* HR_STORE_SHOWN: which appends were shown, in order; nok counts the dones with status 0,
 * each of which (in a store that shows) must have been shown before */
static int nshown, nok, expect_shown;
static int shown_order[N + 16];

static void done_cb(void *ud, int status)
{
    assert_false(in_append);
    if (status == HR_STORE_SHOWN) {
        assert_true(expect_shown);
        assert_true(nshown < N + 16);
        shown_order[nshown++] = (int)(intptr_t)ud;
        return;
    }
    if (status == 0 && expect_shown) {
        assert_true(nok < nshown);
        assert_int_equal(shown_order[nok], (int)(intptr_t)ud);
        nok++;
    }
    assert_true(ndone < N + 16);
    order[ndone] = (int)(intptr_t)ud;
    statuses[ndone] = status;
    ndone++;
    if ((intptr_t)ud == 50 && reappend_store) {
        in_append = 1;
        int rc =
            append_bytes(reappend_store, "x", 1000, 0, "z", 1, done_cb, (void *)(intptr_t)1000);
        in_append = 0;
        assert_int_equal(rc, 0);
    }
}

static void append_msg(struct hr_store *st, int i)
{
    unsigned char data[128];
    msg_data(i, data);
    in_append = 1;
    int rc = append_bytes(st, channels[i % NCHAN], (uint64_t)(i / NCHAN + 1), msg_time(i), data,
                          msg_len(i), done_cb, (void *)(intptr_t)i);
    in_append = 0;
    assert_int_equal(rc, 0);
}

static int setup(void **state)
{
    (void)state;
    ndone = nshown = nok = expect_shown = 0;
    in_append = 0;
    reappend_store = NULL;
    return 0;
}

/* ---- memory store ---- */

static void test_memory_order(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hr_store *st = hr_store_memory_new(&loop);
    assert_non_null(st);
    assert_string_equal(st->ops->name, "memory");
    assert_int_equal(strlen(st->epoch), 20);
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(st->ops->load(st, NULL, NULL), 0);
    assert_int_equal(st->ops->trim(st, "x", 5), 0);

    reappend_store = st;
    for (int i = 0; i < 100; i++)
        append_msg(st, i);
    assert_int_equal(ndone, 0);
    /* one turn runs what was queued before it; the append made by callback 50 waits */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(ndone, 100);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ndone, 101);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(order[i], i);
        assert_int_equal(statuses[i], 0);
    }
    assert_int_equal(order[100], 1000);

    /* what is still queued at close is acknowledged inside close */
    reappend_store = NULL;
    ndone = 0;
    for (int i = 0; i < 3; i++)
        append_msg(st, i);
    st->ops->close(st);
    assert_int_equal(ndone, 3);
    finish_loop(&loop);
}

static void test_memory_timing(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hr_store *st = hr_store_memory_new(&loop);
    double t0 = now_ms();
    for (int i = 0; i < N; i++)
        append_msg(st, i);
    uv_run(&loop, UV_RUN_DEFAULT);
    double t1 = now_ms();
    assert_int_equal(ndone, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(order[i], i);
    fprintf(stderr, "memory: %d appends acknowledged in %.2f ms\n", N, t1 - t0);
    close_store(&loop, st);
    finish_loop(&loop);
}

static void test_memory_epochs_differ(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hr_store *a = hr_store_memory_new(&loop), *b = hr_store_memory_new(&loop);
    assert_string_not_equal(a->epoch, b->epoch);
    a->ops->close(a);
    b->ops->close(b);
    finish_loop(&loop);
}

/* ---- SQLite store ---- */

static int nloaded;
static int loaded_seen[N];
static char last_channel[64];
static uint64_t last_id;

static void check_each(void *ud, const char *channel, uint64_t id, int64_t time_ms,
                       const void *data, size_t len)
{
    int c = -1;
    for (int k = 0; k < NCHAN; k++)
        if (strcmp(channel, channels[k]) == 0)
            c = k;
    assert_true(c >= 0);
    /* channel by channel, ids increasing */
    int cmp = strcmp(channel, last_channel);
    assert_true(cmp > 0 || (cmp == 0 && id > last_id));
    snprintf(last_channel, sizeof last_channel, "%s", channel);
    last_id = id;

    assert_true(id >= 1);
    int i = (int)(id - 1) * NCHAN + c;
    assert_true(i < N);
    assert_false(loaded_seen[i]);
    loaded_seen[i] = 1;
    assert_int_equal(time_ms, msg_time(i));
    assert_int_equal(len, msg_len(i));
    assert_non_null(data);
    unsigned char want[128];
    msg_data(i, want);
    assert_memory_equal(data, want, len);
    nloaded++;
}

static void reset_load(void)
{
    nloaded = 0;
    memset(loaded_seen, 0, sizeof loaded_seen);
    last_channel[0] = '\0';
    last_id = 0;
}

static void test_sqlite_roundtrip(void **state)
{
    (void)state;
    char dir[256];
    make_dir(dir, sizeof dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hr_store *st = open_sqlite(&loop, dir);
    assert_string_equal(st->ops->name, "sqlite");
    assert_int_equal(strlen(st->epoch), 20);
    char epoch[24];
    memcpy(epoch, st->epoch, sizeof epoch);

    unsigned long commits = hr_store_sqlite_commits;
    double t0 = now_ms();
    for (int i = 0; i < N; i++)
        append_msg(st, i);
    double t1 = now_ms();
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once every append is acknowledged */
    double t2 = now_ms();
    commits = hr_store_sqlite_commits - commits;
    fprintf(stderr,
            "sqlite: %d appends queued in %.2f ms, acknowledged after %.2f ms, "
            "in %lu commits\n",
            N, t1 - t0, t2 - t0, commits);
    assert_int_equal(ndone, N);
    assert_int_equal(nshown, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(order[i], i);
        assert_int_equal(statuses[i], 0);
        assert_int_equal(shown_order[i], i);
    }
    /* group commit: the writer takes everything queued at once */
    assert_true(commits >= 1 && commits <= 20);

    /* a duplicate (channel, id) fails alone; the rest of its batch commits */
    hr_log_level = -1; /* the expected error line */
    ndone = nshown = nok = 0;
    in_append = 1;
    assert_int_equal(append_bytes(st, channels[0], 1, 0, "dup", 3, done_cb, (void *)0), 0);
    assert_int_equal(append_bytes(st, "other", 1, 0, "", 0, done_cb, (void *)1), 0);
    assert_int_equal(append_bytes(st, "other", (uint64_t)INT64_MAX + 1, 0, "", 0, done_cb, NULL),
                     HR_EINVAL);
    in_append = 0;
    uv_run(&loop, UV_RUN_DEFAULT);
    hr_log_level = HR_LOG_INFO;
    assert_int_equal(ndone, 2);
    assert_int_equal(statuses[0], HR_EINVAL);
    assert_int_equal(statuses[1], 0);
    assert_int_equal(st->ops->trim(st, "other", 2), 0);
    close_store(&loop, st);

    st = open_sqlite(&loop, dir);
    assert_string_equal(st->epoch, epoch);
    reset_load();
    assert_int_equal(st->ops->load(st, check_each, NULL), 0);
    assert_int_equal(nloaded, N);
    close_store(&loop, st);
    finish_loop(&loop);
    remove_dir(dir);
}

static void test_sqlite_epoch(void **state)
{
    (void)state;
    char d1[256], d2[256];
    make_dir(d1, sizeof d1);
    make_dir(d2, sizeof d2);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hr_store *a = open_sqlite(&loop, d1), *b = open_sqlite(&loop, d2);
    assert_int_equal(strlen(a->epoch), 20);
    assert_string_not_equal(a->epoch, b->epoch);
    char ea[24];
    memcpy(ea, a->epoch, sizeof ea);
    close_store(&loop, a);
    close_store(&loop, b);
    a = open_sqlite(&loop, d1);
    assert_string_equal(a->epoch, ea);
    close_store(&loop, a);
    finish_loop(&loop);
    remove_dir(d1);
    remove_dir(d2);
}

/* The epoch after an unclean end: renewed only when the system booted since (a power loss or
 * an OS crash may have undone the last commits), kept after a kill of the process alone, a
 * clean stop, or a file from before the check. The state is set in meta behind the store's
 * back, as a previous run would have left it. */
static void set_end(const char *dir, const char *boot, const char *clean)
{
    char path[300];
    snprintf(path, sizeof path, "%s/herald.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *sql =
        sqlite3_mprintf("DELETE FROM meta WHERE key IN ('boot', 'clean');"
                        "INSERT INTO meta(key, value) SELECT 'boot', %Q WHERE %Q IS NOT NULL;"
                        "INSERT INTO meta(key, value) SELECT 'clean', %Q WHERE %Q IS NOT NULL;",
                        boot, boot, clean, clean);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_free(sql);
    sqlite3_close(db);
}

static int epoch_after(uv_loop_t *loop, const char *dir, const char *boot, const char *clean,
                       char *epoch)
{
    set_end(dir, boot, clean);
    hr_log_level = -1; /* the warning of a renewal */
    struct hr_store *st = open_sqlite(loop, dir);
    hr_log_level = HR_LOG_INFO;
    int same = strcmp(st->epoch, epoch) == 0;
    memcpy(epoch, st->epoch, 24);
    close_store(loop, st);
    return same;
}

static void test_sqlite_power_loss(void **state)
{
    (void)state;
    char dir[256], boot[64] = "", epoch[24];
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (!fgets(boot, sizeof boot, f))
            boot[0] = 0;
        fclose(f);
        boot[strcspn(boot, "\n")] = 0;
    }
    make_dir(dir, sizeof dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hr_store *st = open_sqlite(&loop, dir);
    memcpy(epoch, st->epoch, sizeof epoch);
    close_store(&loop, st);

    /* a clean stop, then a reboot; a kill of herald alone; a file from before the check */
    assert_true(epoch_after(&loop, dir, "another boot", "1", epoch));
    assert_true(epoch_after(&loop, dir, boot[0] ? boot : NULL, "0", epoch));
    assert_true(epoch_after(&loop, dir, NULL, NULL, epoch));
    if (boot[0]) {
        /* herald did not stop, and the system booted since: new epoch, once */
        assert_false(epoch_after(&loop, dir, "another boot", "0", epoch));
        assert_false(epoch_after(&loop, dir, "another boot", NULL, epoch));
        st = open_sqlite(&loop, dir);
        assert_string_equal(st->epoch, epoch);
        close_store(&loop, st);
    }

    /* what a run leaves: this boot, and clean once closed (not while open) */
    char path[300];
    snprintf(path, sizeof path, "%s/herald.db", dir);
    st = open_sqlite(&loop, dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'clean'", -1, &q, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "0");
    sqlite3_reset(q);
    close_store(&loop, st);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "1");
    sqlite3_finalize(q);
    if (boot[0]) {
        assert_int_equal(
            sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'boot'", -1, &q, NULL),
            SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(q, 0), boot);
        sqlite3_finalize(q);
    }
    sqlite3_close(db);

    /* --store-sync normal shows nothing early: done comes once, when committed */
    char err[256] = "";
    st = hr_store_sqlite_open(&loop, dir, HR_STORE_SYNC_NORMAL, err, sizeof err);
    if (!st)
        fail_msg("hr_store_sqlite_open: %s", err);
    expect_shown = 0;
    in_append = 1;
    for (int i = 0; i < 10; i++)
        assert_int_equal(
            append_bytes(st, "n", (uint64_t)i + 1, 0, "m", 1, done_cb, (void *)(intptr_t)i), 0);
    in_append = 0;
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ndone, 10);
    assert_int_equal(nshown, 0);
    close_store(&loop, st);
    finish_loop(&loop);
    remove_dir(dir);
}

static void test_sqlite_no_dir(void **state)
{
    (void)state;
    char dir[256], path[300], err[256] = "";
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/missing", dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    assert_null(hr_store_sqlite_new(&loop, path, err, sizeof err));
    assert_non_null(strstr(err, "no such directory"));
    /* a file is not a directory either */
    snprintf(path, sizeof path, "%s/herald.db", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    err[0] = '\0';
    assert_null(hr_store_sqlite_new(&loop, path, err, sizeof err));
    assert_non_null(strstr(err, "no such directory"));
    finish_loop(&loop);
    remove_dir(dir);
}

struct kept {
    char channel[8];
    uint64_t id;
};
static struct kept kept[256];
static int nkept;

static void keep_each(void *ud, const char *channel, uint64_t id, int64_t time_ms, const void *data,
                      size_t len)
{
    assert_true(nkept < 256);
    snprintf(kept[nkept].channel, sizeof kept[nkept].channel, "%s", channel);
    kept[nkept].id = id;
    nkept++;
}

static void test_sqlite_trim(void **state)
{
    (void)state;
    char dir[256];
    make_dir(dir, sizeof dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hr_store *st = open_sqlite(&loop, dir);
    for (uint64_t id = 1; id <= 100; id++) {
        assert_int_equal(append_bytes(st, "x", id, 0, "m", 1, NULL, NULL), 0);
        assert_int_equal(append_bytes(st, "y", id, 0, "m", 1, NULL, NULL), 0);
    }
    assert_int_equal(st->ops->trim(st, "x", 51), 0);
    assert_int_equal(st->ops->trim(st, "y", 0), 0);
    assert_int_equal(st->ops->trim(st, "z", 1000), 0);
    uv_run(&loop, UV_RUN_DEFAULT); /* trims keep the loop alive until committed too */
    close_store(&loop, st);

    st = open_sqlite(&loop, dir);
    nkept = 0;
    assert_int_equal(st->ops->load(st, keep_each, NULL), 0);
    assert_int_equal(nkept, 150);
    for (int k = 0; k < 50; k++) {
        assert_string_equal(kept[k].channel, "x");
        assert_int_equal(kept[k].id, 51 + k);
    }
    for (int k = 0; k < 100; k++) {
        assert_string_equal(kept[50 + k].channel, "y");
        assert_int_equal(kept[50 + k].id, 1 + k);
    }
    close_store(&loop, st);
    finish_loop(&loop);
    remove_dir(dir);
}

/* close() without the loop turning: it commits what is queued and acknowledges it itself;
 * an append made from one of those callbacks is refused. */
static int refused;
static struct hr_store *closing_store;

static void done_during_close(void *ud, int status)
{
    done_cb(ud, status);
    if (closing_store && refused == 0)
        refused = append_bytes(closing_store, "late", 1, 0, "x", 1, NULL, NULL);
}

static void test_sqlite_close_commits_queue(void **state)
{
    (void)state;
    char dir[256];
    make_dir(dir, sizeof dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hr_store *st = open_sqlite(&loop, dir);
    for (int i = 0; i < 300; i++) {
        unsigned char data[128];
        msg_data(i, data);
        in_append = 1;
        assert_int_equal(append_bytes(st, channels[i % NCHAN], (uint64_t)(i / NCHAN + 1),
                                      msg_time(i), data, msg_len(i), done_during_close,
                                      (void *)(intptr_t)i),
                         0);
        in_append = 0;
    }
    closing_store = st;
    refused = 0;
    st->ops->close(st);
    closing_store = NULL;
    assert_int_equal(ndone, 300);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(order[i], i);
        assert_int_equal(statuses[i], 0);
    }
    assert_int_equal(refused, HR_ECLOSED);
    uv_run(&loop, UV_RUN_DEFAULT);

    st = open_sqlite(&loop, dir);
    reset_load();
    assert_int_equal(st->ops->load(st, check_each, NULL), 0);
    assert_int_equal(nloaded, 300);
    close_store(&loop, st);
    finish_loop(&loop);
    remove_dir(dir);
}

/* A batch whose transaction fails is refused as a whole: every append in it gets HR_EIO, and
 * exactly the appends acknowledged with 0 are in the file afterwards. A trigger added behind
 * the store's back rolls back any transaction that stores channel "poison". */
static int present[300];

static void present_each(void *ud, const char *channel, uint64_t id, int64_t time_ms,
                         const void *data, size_t len)
{
    if (strcmp(channel, "ok") == 0 && id < 300)
        present[id] = 1;
}

static void test_sqlite_failed_commit(void **state)
{
    (void)state;
    char dir[256], path[300];
    make_dir(dir, sizeof dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hr_store *st = open_sqlite(&loop, dir);
    snprintf(path, sizeof path, "%s/herald.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TRIGGER poison BEFORE INSERT ON messages"
                                  " WHEN NEW.channel = 'poison'"
                                  " BEGIN SELECT RAISE(ROLLBACK, 'poisoned'); END",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);

    hr_log_level = -1; /* the expected error line */
    in_append = 1;
    for (int i = 0; i < 201; i++) {
        int rc = i == 100
                     ? append_bytes(st, "poison", 1, 0, "p", 1, done_cb, (void *)100)
                     : append_bytes(st, "ok", (uint64_t)i, 0, "k", 1, done_cb, (void *)(intptr_t)i);
        assert_int_equal(rc, 0);
    }
    in_append = 0;
    uv_run(&loop, UV_RUN_DEFAULT);
    hr_log_level = HR_LOG_INFO;
    assert_int_equal(ndone, 201);
    int failed = 0;
    for (int i = 0; i < 201; i++) {
        assert_int_equal(order[i], i);
        assert_true(statuses[i] == 0 || statuses[i] == HR_EIO);
        failed += statuses[i] != 0;
    }
    assert_int_equal(statuses[100], HR_EIO);
    assert_int_equal(nshown, 201 - failed); /* a batch that failed was never shown */
    fprintf(stderr, "failed commit: %d of 201 appends refused with the poisoned batch\n", failed);
    close_store(&loop, st);

    st = open_sqlite(&loop, dir);
    memset(present, 0, sizeof present);
    assert_int_equal(st->ops->load(st, present_each, NULL), 0);
    for (int i = 0; i < 201; i++)
        if (i != 100)
            assert_int_equal(present[i], statuses[i] == 0);
    close_store(&loop, st);
    finish_loop(&loop);
    remove_dir(dir);
}

/* ---- crash: SIGKILL mid-write loses no acknowledged message ---- */

#define CRASH_TOTAL 5000
#define CRASH_BURST 25
#define CRASH_KILL_AFTER 1000

struct child {
    struct hr_store *st;
    int fd;
    uint64_t next; /* next id to append */
    int in_flight;
};

static void child_burst(struct child *ch);

static struct child the_child;

static void child_ack(void *ud, int status)
{
    struct child *ch = &the_child;
    uint64_t id = (uint64_t)(uintptr_t)ud;
    if (status == HR_STORE_SHOWN)
        return; /* committed, not yet acknowledged */
    if (status != 0)
        _exit(4);
    /* tell the parent at once: from here on this message must survive */
    if (write(ch->fd, &id, sizeof id) != (ssize_t)sizeof id)
        _exit(5);
    if (--ch->in_flight == 0)
        child_burst(ch);
}

static void child_burst(struct child *ch)
{
    for (int k = 0; k < CRASH_BURST && ch->next <= CRASH_TOTAL; k++, ch->next++) {
        char data[64];
        int n = snprintf(data, sizeof data, "message %llu", (unsigned long long)ch->next);
        if (append_bytes(ch->st, "crash", ch->next, (int64_t)ch->next, data, (size_t)n, child_ack,
                         (void *)(uintptr_t)ch->next) != 0)
            _exit(6);
        ch->in_flight++;
    }
}

static void run_child(const char *dir, int fd)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    the_child.st = hr_store_sqlite_new(&loop, dir, err, sizeof err);
    if (!the_child.st)
        _exit(3);
    the_child.fd = fd;
    the_child.next = 1;
    child_burst(&the_child);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* everything written before the kill came: wait for it anyway */
    for (;;)
        pause();
}

static uint8_t crash_present[CRASH_TOTAL + 1];
static int crash_bad;

static void crash_each(void *ud, const char *channel, uint64_t id, int64_t time_ms,
                       const void *data, size_t len)
{
    char want[64];
    int n = snprintf(want, sizeof want, "message %llu", (unsigned long long)id);
    if (strcmp(channel, "crash") != 0 || id < 1 || id > CRASH_TOTAL || time_ms != (int64_t)id ||
        len != (size_t)n || memcmp(data, want, len) != 0)
        crash_bad++;
    else
        crash_present[id] = 1;
}

static void test_sqlite_crash(void **state)
{
    (void)state;
    char dir[256];
    make_dir(dir, sizeof dir);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        run_child(dir, fds[1]);
        _exit(0);
    }
    close(fds[1]);

    uint64_t acked = 0, id;
    int killed = 0;
    for (;;) {
        ssize_t n = read(fds[0], &id, sizeof id);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EOF: the child is gone and every ack it sent has been read */
        assert_int_equal(n, sizeof id);
        assert_int_equal(id, acked + 1); /* acknowledged in append order */
        acked = id;
        if (!killed && acked >= CRASH_KILL_AFTER) {
            kill(pid, SIGKILL);
            killed = 1;
        }
    }
    close(fds[0]);
    int wstatus;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
    fprintf(stderr, "crash: killed after %llu acknowledged appends of %d\n",
            (unsigned long long)acked, CRASH_TOTAL);
    assert_true(acked >= CRASH_KILL_AFTER);

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hr_store *st = open_sqlite(&loop, dir);
    memset(crash_present, 0, sizeof crash_present);
    crash_bad = 0;
    assert_int_equal(st->ops->load(st, crash_each, NULL), 0);
    assert_int_equal(crash_bad, 0);
    uint64_t lost = 0, kept_ids = 0;
    for (uint64_t i = 1; i <= acked; i++)
        lost += !crash_present[i];
    /* commits are whole transactions in order: what survived is a prefix, without holes */
    for (uint64_t i = 1; i <= CRASH_TOTAL && crash_present[i]; i++)
        kept_ids = i;
    for (uint64_t i = kept_ids + 1; i <= CRASH_TOTAL; i++)
        assert_false(crash_present[i]);
    assert_int_equal(lost, 0);
    assert_true(kept_ids >= acked);
    close_store(&loop, st);
    finish_loop(&loop);
    remove_dir(dir);
}

/* ---- metadata, pages and trims by limits ---- */

static struct {
    char channel[32];
    struct hr_store_meta m;
} metas[8];
static int nmetas;

static void meta_each(void *ud, const char *channel, const struct hr_store_meta *m)
{
    assert_true(nmetas < 8);
    snprintf(metas[nmetas].channel, sizeof metas[nmetas].channel, "%s", channel);
    metas[nmetas].m = *m;
    nmetas++;
}

static const struct hr_store_meta *meta_of(const char *channel)
{
    for (int i = 0; i < nmetas; i++)
        if (strcmp(metas[i].channel, channel) == 0)
            return &metas[i].m;
    return NULL;
}

static struct {
    int n, status, in_call;
    uint64_t first, ids[64];
    size_t lens[64];
} page;
static int in_read;

static void page_cb(void *ud, const struct hr_store_page *pg)
{
    assert_false(in_read); /* never inside the call */
    page.n = (int)pg->n;
    page.status = pg->status;
    page.first = pg->first;
    for (uint32_t i = 0; i < pg->n && i < 64; i++) {
        page.ids[i] = pg->rows[i].id;
        page.lens[i] = pg->rows[i].len;
        for (size_t k = 0; k < pg->rows[i].len; k++)
            assert_int_equal(((const unsigned char *)pg->rows[i].data)[k],
                             (unsigned char)(pg->rows[i].id + k));
    }
    (*(int *)ud)++;
}

static void read_page(uv_loop_t *loop, struct hr_store *st, const char *channel, uint64_t since,
                      uint32_t max, size_t max_bytes)
{
    int got = 0;
    memset(&page, 0, sizeof page);
    in_read = 1;
    assert_int_equal(st->ops->read(st, channel, since, max, max_bytes, page_cb, &got), 0);
    in_read = 0;
    while (!got)
        uv_run(loop, UV_RUN_ONCE);
}

static struct hr_store_meta trimmed_meta;
static int trimmed_status, ntrimmed;

static void trimmed_cb(void *ud, int status, const struct hr_store_meta *m)
{
    trimmed_status = status;
    trimmed_meta = *m;
    ntrimmed++;
}

/* the order of what a batch gives back: s<n> an append shown, a<n> acknowledged, T a trim */
static char seq[32];
static int nseq;

static void seq_done(void *ud, int status)
{
    assert_true(nseq < (int)sizeof seq - 3);
    if (status == HR_STORE_SHOWN)
        seq[nseq++] = 's';
    else {
        assert_int_equal(status, 0);
        seq[nseq++] = 'a';
    }
    seq[nseq++] = (char)(intptr_t)ud;
}

static void seq_trimmed(void *ud, int status, const struct hr_store_meta *m)
{
    assert_int_equal(status, 0);
    trimmed_meta = *m;
    seq[nseq++] = 'T';
}

static void test_sqlite_meta_read_trim_limits(void **state)
{
    (void)state;
    char dir[256];
    make_dir(dir, sizeof dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct hr_store *st = open_sqlite(&loop, dir);
    unsigned char data[100];
    for (uint64_t id = 1; id <= 40; id++) {
        for (size_t k = 0; k < sizeof data; k++)
            data[k] = (unsigned char)(id + k);
        assert_int_equal(
            append_bytes(st, "p", id, 1000 + (int64_t)id, data, (size_t)id, NULL, NULL), 0);
    }
    assert_int_equal(append_bytes(st, "gone", 7, 1, "x", 1, NULL, NULL), 0);
    assert_int_equal(st->ops->trim(st, "gone", 100), 0);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* pages: after since, ids increasing, at most max and about max_bytes (at least one) */
    read_page(&loop, st, "p", 0, 10, 1 << 20);
    assert_int_equal(page.status, 0);
    assert_int_equal(page.first, 1);
    assert_int_equal(page.n, 10);
    assert_int_equal(page.ids[0], 1);
    assert_int_equal(page.ids[9], 10);
    assert_int_equal(page.lens[9], 10);
    read_page(&loop, st, "p", 30, 64, 25);
    assert_int_equal(page.n, 1);
    assert_int_equal(page.ids[0], 31);
    read_page(&loop, st, "p", 35, 64, 1 << 20);
    assert_int_equal(page.n, 5);
    read_page(&loop, st, "p", 40, 64, 1 << 20);
    assert_int_equal(page.n, 0);
    read_page(&loop, st, "nothing", 0, 64, 1 << 20);
    assert_int_equal(page.status, 0);
    assert_int_equal(page.n, 0);
    assert_int_equal(page.first, 0);

    /* trim by limits: count, bytes and age, oldest first, with the metadata after */
    assert_int_equal(st->ops->trim_limits(st, "p", 30, 1 << 20, 0, trimmed_cb, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(trimmed_status, 0);
    assert_int_equal(trimmed_meta.first_id, 11);
    assert_int_equal(trimmed_meta.last_id, 40);
    assert_int_equal(trimmed_meta.count, 30);
    assert_int_equal(trimmed_meta.bytes, (11 + 40) * 30 / 2);
    assert_int_equal(trimmed_meta.first_time, 1011);
    /* ids 11..40 hold 765 bytes: keep at most 400 -> the newest whose sum fits (26..40: 495 > 400,
     * 28..40: 442, 29..40: 414, 30..40: 385) */
    assert_int_equal(st->ops->trim_limits(st, "p", 1000, 400, 0, trimmed_cb, NULL), 0);
    assert_int_equal(st->ops->trim_limits(st, "p", 1000, 1 << 20, 1035, trimmed_cb, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ntrimmed, 3);
    assert_int_equal(trimmed_meta.first_id, 35);
    assert_int_equal(trimmed_meta.count, 6);
    read_page(&loop, st, "p", 0, 64, 1 << 20);
    assert_int_equal(page.first, 35);
    assert_int_equal(page.ids[0], 35);

    /* a trim's outcome comes in its place among the appends shown (its metadata counts the
     * ones before it, not those after), once */
    nseq = 0;
    assert_int_equal(append_bytes(st, "q", 1, 2000, "a", 1, seq_done, (void *)'1'), 0);
    assert_int_equal(st->ops->trim_limits(st, "q", 1, 1 << 20, 0, seq_trimmed, NULL), 0);
    assert_int_equal(append_bytes(st, "q", 2, 2001, "b", 1, seq_done, (void *)'2'), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    seq[nseq] = 0;
    assert_int_equal(nseq, 9); /* s1 s2 a1 a2 (two characters each) and T */
    assert_true(strchr(seq, 'T') == strrchr(seq, 'T')); /* once */
    assert_true(strstr(seq, "s1") && strchr(seq, 'T') > strstr(seq, "s1"));
    assert_true(strstr(seq, "s2") && strchr(seq, 'T') < strstr(seq, "s2"));
    assert_int_equal(trimmed_meta.last_id, 1);
    assert_int_equal(trimmed_meta.count, 1);
    close_store(&loop, st);

    /* the metadata survives a restart, a channel with nothing kept keeps its last id */
    st = open_sqlite(&loop, dir);
    nmetas = 0;
    assert_int_equal(st->ops->meta(st, meta_each, NULL), 0);
    assert_int_equal(nmetas, 3);
    const struct hr_store_meta *m = meta_of("q");
    assert_non_null(m);
    assert_int_equal(m->last_id, 2);
    assert_int_equal(m->count, 2);
    m = meta_of("p");
    assert_non_null(m);
    assert_int_equal(m->first_id, 35);
    assert_int_equal(m->last_id, 40);
    assert_int_equal(m->count, 6);
    assert_int_equal(m->bytes, 35 + 36 + 37 + 38 + 39 + 40);
    assert_int_equal(m->first_time, 1035);
    m = meta_of("gone");
    assert_non_null(m);
    assert_int_equal(m->last_id, 7);
    assert_int_equal(m->count, 0);
    assert_int_equal(m->first_id, 8);
    close_store(&loop, st);

    /* a file from before the metadata table gets it filled from its messages */
    char path[512];
    snprintf(path, sizeof path, "%s/herald.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            db, "DROP TRIGGER messages_insert; DROP TRIGGER messages_delete; DROP TABLE channels;",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    st = open_sqlite(&loop, dir);
    nmetas = 0;
    assert_int_equal(st->ops->meta(st, meta_each, NULL), 0);
    assert_int_equal(nmetas, 2); /* p and q: "gone" kept nothing */
    m = meta_of("p");
    assert_non_null(m);
    assert_int_equal(m->count, 6);
    assert_int_equal(m->first_id, 35);
    assert_int_equal(m->last_id, 40);
    /* reads queued at close are answered (as failed) */
    int got = 0;
    assert_int_equal(st->ops->read(st, "p", 0, 64, 1 << 20, page_cb, &got), 0);
    close_store(&loop, st);
    assert_int_equal(got, 1);
    finish_loop(&loop);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_memory_order, setup),
        cmocka_unit_test_setup(test_memory_timing, setup),
        cmocka_unit_test_setup(test_memory_epochs_differ, setup),
        cmocka_unit_test_setup(test_sqlite_roundtrip, setup),
        cmocka_unit_test_setup(test_sqlite_epoch, setup),
        cmocka_unit_test_setup(test_sqlite_power_loss, setup),
        cmocka_unit_test_setup(test_sqlite_no_dir, setup),
        cmocka_unit_test_setup(test_sqlite_trim, setup),
        cmocka_unit_test_setup(test_sqlite_meta_read_trim_limits, setup),
        cmocka_unit_test_setup(test_sqlite_close_commits_queue, setup),
        cmocka_unit_test_setup(test_sqlite_failed_commit, setup),
        cmocka_unit_test_setup(test_sqlite_crash, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
