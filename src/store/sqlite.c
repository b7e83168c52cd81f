/* sqlite.c - the SQLite store: DIR/herald.db in WAL mode, written by one thread that commits
 * every append queued since its last commit in one transaction (group commit), and hands the
 * finished batch back to the loop thread, which acknowledges the appends in order.
 *
 * Threads: the loop thread owns the store and every request (allocates and frees them); the
 * writer thread only borrows requests between taking them off `queue` and putting them on
 * `done`, both under `lock`, and is the only user of `db` once it runs. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "../core/error.h"
#include "../core/id.h"
#include "../core/log.h"
#include "store.h"

/* Successful COMMITs by every SQLite store in the process: lets a test see that appends are
 * grouped. Not part of the API; bumped atomically since each store has its own writer. */
extern unsigned long hr_store_sqlite_commits;
unsigned long hr_store_sqlite_commits;

enum { REQ_APPEND, REQ_TRIM };

/* One queued write. channel and data live in the same allocation, after the struct. */
struct req {
    struct req *next;
    int kind;
    int status; /* set by the writer */
    hr_store_done_cb done;
    void *ud;
    int64_t id; /* the id, or keep_from for a trim */
    int64_t time_ms;
    const char *channel;
    size_t len;
    unsigned char data[];
};

struct req_list {
    struct req *head, *tail;
};

struct sqlite_store {
    struct hr_store base;
    char *path;
    sqlite3 *db;
    sqlite3_stmt *insert, *trim;
    int64_t max_len; /* SQLite's limit on one blob */

    uv_thread_t writer;
    uv_mutex_t lock;
    uv_cond_t wake;
    /* under lock */
    struct req_list queue; /* loop -> writer */
    struct req_list done;  /* writer -> loop */
    int stop;

    /* loop thread only */
    uv_async_t async;
    struct req_list ready; /* taken from done, being acknowledged */
    size_t outstanding;    /* requests not yet back from the writer */
    int closing;
};

static void list_push(struct req_list *l, struct req *r)
{
    r->next = NULL;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
}

static void list_splice(struct req_list *to, struct req_list *from)
{
    if (!from->head)
        return;
    if (to->tail)
        to->tail->next = from->head;
    else
        to->head = from->head;
    to->tail = from->tail;
    from->head = from->tail = NULL;
}

/* ---- writer thread ---- */

/* Names the file, the step and SQLite's reason. */
static void log_db_error(struct sqlite_store *ss, const char *what)
{
    hr_error("store %s: %s: %s", ss->path, what, sqlite3_errmsg(ss->db));
}

static int exec_simple(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Run one request inside the open transaction. Returns 0, the request's own failure (the
 * transaction goes on), or HR_EIO when SQLite rolled the whole transaction back. */
static int run_req(struct sqlite_store *ss, struct req *r, int *logged)
{
    sqlite3_stmt *s = r->kind == REQ_APPEND ? ss->insert : ss->trim;
    sqlite3_bind_text(s, 1, r->channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, r->id);
    if (r->kind == REQ_APPEND) {
        sqlite3_bind_int64(s, 3, r->time_ms);
        /* a non-NULL pointer even for 0 bytes: NULL would bind SQL NULL, not an empty blob */
        sqlite3_bind_blob64(s, 4, r->data, r->len, SQLITE_STATIC);
    }
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return 0;
    if (!*logged) {
        log_db_error(ss, r->kind == REQ_APPEND ? "append" : "trim");
        *logged = 1;
    }
    if (sqlite3_get_autocommit(ss->db))
        return HR_EIO;
    /* only this statement was undone; a duplicate id is the caller's mistake */
    r->status = (rc & 0xff) == SQLITE_CONSTRAINT ? HR_EINVAL : HR_EIO;
    return 0;
}

/* One transaction for the whole batch: one fsync however many appends it holds. At most one
 * error line per batch, however many of its requests fail. */
static void commit_batch(struct sqlite_store *ss, struct req *batch)
{
    int failed = 0, logged = 0;
    if (exec_simple(ss->db, "BEGIN IMMEDIATE") != SQLITE_OK) {
        log_db_error(ss, "begin");
        failed = logged = 1;
    }
    for (struct req *r = batch; r && !failed; r = r->next)
        failed = run_req(ss, r, &logged) < 0;
    if (!failed) {
        if (exec_simple(ss->db, "COMMIT") == SQLITE_OK) {
            __atomic_add_fetch(&hr_store_sqlite_commits, 1, __ATOMIC_RELAXED);
        } else {
            if (!logged)
                log_db_error(ss, "commit");
            failed = 1;
        }
    }
    if (failed) {
        if (!sqlite3_get_autocommit(ss->db))
            exec_simple(ss->db, "ROLLBACK");
        for (struct req *r = batch; r; r = r->next)
            r->status = HR_EIO;
    }
}

static void writer_main(void *arg)
{
    struct sqlite_store *ss = arg;
    /* Signals are the loop thread's business (libuv's signal handles). */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);

    for (;;) {
        uv_mutex_lock(&ss->lock);
        while (!ss->queue.head && !ss->stop)
            uv_cond_wait(&ss->wake, &ss->lock);
        struct req_list batch = ss->queue;
        ss->queue.head = ss->queue.tail = NULL;
        uv_mutex_unlock(&ss->lock);
        if (!batch.head)
            break; /* stop, and everything queued before it is committed */

        commit_batch(ss, batch.head);

        uv_mutex_lock(&ss->lock);
        list_splice(&ss->done, &batch);
        uv_mutex_unlock(&ss->lock);
        /* the handle is closed only after this thread is joined */
        uv_async_send(&ss->async);
    }
}

/* ---- loop thread ---- */

/* Acknowledge every finished request in append order. Requests are popped one at a time
 * from the store's own list, so a done callback may append (queued for a later batch) or
 * even close the store (which finishes this list itself). */
static void deliver(struct sqlite_store *ss)
{
    uv_mutex_lock(&ss->lock);
    list_splice(&ss->ready, &ss->done);
    uv_mutex_unlock(&ss->lock);
    struct req *r;
    while ((r = ss->ready.head)) {
        ss->ready.head = r->next;
        if (!ss->ready.head)
            ss->ready.tail = NULL;
        ss->outstanding--;
        hr_store_done_cb done = r->kind == REQ_APPEND ? r->done : NULL;
        void *ud = r->ud;
        int status = r->status;
        free(r);
        if (done)
            done(ud, status);
    }
    /* Idle, the store must not keep the loop alive (shutdown waits for the loop to run
     * out of work); with writes in flight it must, so their acknowledgements arrive. */
    if (ss->outstanding == 0)
        uv_unref((uv_handle_t *)&ss->async);
}

static void async_cb(uv_async_t *h)
{
    deliver(h->data);
}

static int enqueue(struct sqlite_store *ss, struct req *r)
{
    if (ss->outstanding++ == 0)
        uv_ref((uv_handle_t *)&ss->async);
    uv_mutex_lock(&ss->lock);
    /* the writer only waits on an empty queue */
    if (!ss->queue.head)
        uv_cond_signal(&ss->wake);
    list_push(&ss->queue, r);
    uv_mutex_unlock(&ss->lock);
    return 0;
}

static struct req *req_new(const char *channel, size_t len)
{
    size_t clen = strlen(channel) + 1;
    struct req *r = malloc(sizeof(*r) + len + clen);
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->len = len;
    r->channel = (const char *)r->data + len;
    memcpy(r->data + len, channel, clen);
    return r;
}

static int sq_append(struct hr_store *st, const char *channel, uint64_t id, int64_t time_ms,
                     const void *data, size_t len, hr_store_done_cb done, void *ud)
{
    struct sqlite_store *ss = (struct sqlite_store *)st;
    if (ss->closing)
        return HR_ECLOSED;
    /* ids are SQLite INTEGERs, which are signed */
    if (id > INT64_MAX)
        return HR_EINVAL;
    if (len > (uint64_t)ss->max_len)
        return HR_ETOOBIG;
    struct req *r = req_new(channel, len);
    if (!r)
        return HR_ENOMEM;
    r->kind = REQ_APPEND;
    r->id = (int64_t)id;
    r->time_ms = time_ms;
    r->done = done;
    r->ud = ud;
    if (len)
        memcpy(r->data, data, len);
    return enqueue(ss, r);
}

static int sq_trim(struct hr_store *st, const char *channel, uint64_t keep_from)
{
    struct sqlite_store *ss = (struct sqlite_store *)st;
    if (ss->closing)
        return HR_ECLOSED;
    if (keep_from > INT64_MAX)
        return HR_EINVAL;
    struct req *r = req_new(channel, 0);
    if (!r)
        return HR_ENOMEM;
    r->kind = REQ_TRIM;
    r->id = (int64_t)keep_from;
    return enqueue(ss, r);
}

/* load() reads through a connection of its own, so it is safe whatever the writer is doing;
 * it sees what is committed. */
static int sq_load(struct hr_store *st, hr_store_each_cb each, void *ud)
{
    struct sqlite_store *ss = (struct sqlite_store *)st;
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_open_v2(ss->path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_prepare_v2(
        db, "SELECT channel, id, time_ms, data FROM messages ORDER BY channel, id", -1, &s, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *channel = (const char *)sqlite3_column_text(s, 0);
        const void *data = sqlite3_column_blob(s, 3);
        size_t len = (size_t)sqlite3_column_bytes(s, 3);
        each(ud, channel ? channel : "", (uint64_t)sqlite3_column_int64(s, 1),
             sqlite3_column_int64(s, 2), data ? data : "", len);
    }
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return 0;
fail:
    hr_error("store %s: load: %s", ss->path, db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_finalize(s);
    sqlite3_close(db);
    return HR_EIO;
}

static void free_store(struct sqlite_store *ss)
{
    sqlite3_finalize(ss->insert);
    sqlite3_finalize(ss->trim);
    sqlite3_close(ss->db);
    free(ss->path);
    free(ss);
}

static void free_cb(uv_handle_t *h)
{
    struct sqlite_store *ss = h->data;
    free(ss->path);
    free(ss);
}

static void stop_writer(struct sqlite_store *ss)
{
    uv_mutex_lock(&ss->lock);
    ss->stop = 1;
    uv_cond_signal(&ss->wake);
    uv_mutex_unlock(&ss->lock);
    uv_thread_join(&ss->writer);
}

static void destroy_sync(struct sqlite_store *ss)
{
    uv_cond_destroy(&ss->wake);
    uv_mutex_destroy(&ss->lock);
}

/* Blocks while the writer commits what is queued, then acknowledges it here, on the loop
 * thread, in order (the loop may never turn again, so this is the last chance). The database
 * is closed at once; only the async handle outlives this call: it is closed with uv_close and
 * the store's memory is freed from its close callback, so when close() is called after uv_run
 * has returned, the caller runs the loop once more (uv_run(loop, UV_RUN_DEFAULT) returns as
 * soon as the close callbacks have run) before uv_loop_close. */
static void sq_close(struct hr_store *st)
{
    struct sqlite_store *ss = (struct sqlite_store *)st;
    if (ss->closing)
        return;
    ss->closing = 1; /* appends from the callbacks below are refused */
    stop_writer(ss);
    deliver(ss);
    destroy_sync(ss);
    sqlite3_finalize(ss->insert);
    sqlite3_finalize(ss->trim);
    if (sqlite3_close(ss->db) != SQLITE_OK)
        hr_error("store %s: close: %s", ss->path, sqlite3_errmsg(ss->db));
    ss->insert = ss->trim = NULL;
    ss->db = NULL;
    uv_close((uv_handle_t *)&ss->async, free_cb);
}

static const struct hr_store_ops sqlite_ops = {
    .name = "sqlite",
    .load = sq_load,
    .append = sq_append,
    .trim = sq_trim,
    .close = sq_close,
};

/* Check, before anything is written, that the file is a SQLite database whose herald tables
 * (if it has them yet) have herald's columns: a file that is not (garbage, a truncated copy,
 * another program's database) is refused untouched, with SQLite's own error in why. */
static int check_file(struct sqlite_store *ss, const char **what, char *why, size_t whylen)
{
    static const struct {
        const char *table, *probe, *what;
    } tables[] = {
        {"meta", "SELECT key, value FROM meta LIMIT 0", "not a herald database: table meta"},
        {"messages", "SELECT channel, id, time_ms, data FROM messages LIMIT 0",
         "not a herald database: table messages"},
    };
    sqlite3_stmt *s = NULL;
    int has[2] = {0, 0}, rc;
    /* the first read of the file: "file is not a database", "database disk image is
     * malformed" come from here */
    *what = "read";
    if (sqlite3_prepare_v2(ss->db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &s,
                           NULL) != SQLITE_OK)
        goto fail;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(s, 0);
        for (size_t i = 0; name && i < 2; i++)
            has[i] |= strcmp(name, tables[i].table) == 0;
    }
    if (rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(s);
    s = NULL;
    for (size_t i = 0; i < 2; i++) {
        if (!has[i])
            continue;
        *what = tables[i].what;
        if (sqlite3_prepare_v2(ss->db, tables[i].probe, -1, &s, NULL) != SQLITE_OK)
            goto fail;
        sqlite3_finalize(s);
        s = NULL;
    }
    return 0;
fail:
    snprintf(why, whylen, "%s", sqlite3_errmsg(ss->db));
    sqlite3_finalize(s);
    return HR_EIO;
}

/* Read the epoch kept in the file, creating it (and the schema) with a new file. On failure
 * why holds SQLite's message for the call that failed (the ROLLBACK after it would replace
 * the handle's message with "not an error"). */
static int open_schema(struct sqlite_store *ss, const char **what, char *why, size_t whylen)
{
    sqlite3_stmt *s = NULL;
    char fresh[21];
    hr_random_id(fresh);
    *what = "schema";
    if (exec_simple(ss->db, "BEGIN IMMEDIATE;"
                            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
                            "CREATE TABLE IF NOT EXISTS messages(channel TEXT NOT NULL,"
                            " id INTEGER NOT NULL, time_ms INTEGER NOT NULL, data BLOB NOT NULL,"
                            " PRIMARY KEY(channel, id)) WITHOUT ROWID;") != SQLITE_OK)
        goto fail;
    if (sqlite3_prepare_v2(ss->db, "INSERT OR IGNORE INTO meta(key, value) VALUES('epoch', ?)", -1,
                           &s, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(s, 1, fresh, -1, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(s);
    if (sqlite3_prepare_v2(ss->db, "SELECT value FROM meta WHERE key = 'epoch'", -1, &s, NULL) !=
            SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW)
        goto fail;
    const char *epoch = (const char *)sqlite3_column_text(s, 0);
    if (!epoch || strlen(epoch) >= sizeof ss->base.epoch) {
        *what = "bad epoch in meta";
        snprintf(why, whylen, "%s", epoch ? "too long" : "NULL");
        goto fail_rollback;
    }
    strcpy(ss->base.epoch, epoch);
    sqlite3_finalize(s);
    s = NULL;
    if (exec_simple(ss->db, "COMMIT") != SQLITE_OK)
        goto fail;
    return 0;
fail:
    snprintf(why, whylen, "%s", sqlite3_errmsg(ss->db));
fail_rollback:
    sqlite3_finalize(s);
    if (!sqlite3_get_autocommit(ss->db))
        exec_simple(ss->db, "ROLLBACK");
    return HR_EIO;
}

struct hr_store *hr_store_sqlite_new(uv_loop_t *loop, const char *dir, char *err, size_t errlen)
{
    const char *what = "out of memory";
    int sqlerr = 1; /* whether sqlite3_errmsg explains the failure */
    char why[256] = ""; /* SQLite's message, taken when the call failed */
    sqlite3_stmt *s = NULL;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: no such directory", dir);
        return NULL;
    }
    /* the writer thread and load() share the library: it must not be built single-threaded */
    if (!sqlite3_threadsafe()) {
        snprintf(err, errlen, "SQLite was built without thread support");
        return NULL;
    }
    struct sqlite_store *ss = calloc(1, sizeof(*ss));
    size_t plen = strlen(dir) + sizeof "/herald.db";
    if (!ss || !(ss->path = malloc(plen)))
        goto fail_nomem;
    snprintf(ss->path, plen, "%s/herald.db", dir);
    ss->base.ops = &sqlite_ops;

    what = "open";
    if (sqlite3_open_v2(ss->path, &ss->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        goto fail;
    /* Another process holding the file (a backup, the sqlite3 shell) delays a commit rather
     * than failing it. */
    sqlite3_busy_timeout(ss->db, 5000);
    /* switching to WAL rewrites the header: nothing is written before the file is known */
    if (check_file(ss, &what, why, sizeof why) < 0)
        goto fail;
    what = "journal_mode=WAL";
    if (sqlite3_prepare_v2(ss->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW || !sqlite3_column_text(s, 0) ||
        strcmp((const char *)sqlite3_column_text(s, 0), "wal") != 0) {
        sqlite3_finalize(s);
        goto fail;
    }
    sqlite3_finalize(s);
    /* In WAL mode NORMAL skips the fsync at each commit, so a power loss can undo commits
     * already acknowledged; FULL syncs the WAL in every COMMIT, and group commit shares that
     * one fsync among all the appends of a batch. */
    what = "synchronous=FULL";
    if (exec_simple(ss->db, "PRAGMA synchronous=FULL") != SQLITE_OK)
        goto fail;
    if (open_schema(ss, &what, why, sizeof why) < 0)
        goto fail;
    what = "prepare";
    if (sqlite3_prepare_v3(ss->db,
                           "INSERT INTO messages(channel, id, time_ms, data) VALUES(?, ?, ?, ?)",
                           -1, SQLITE_PREPARE_PERSISTENT, &ss->insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(ss->db, "DELETE FROM messages WHERE channel = ? AND id < ?", -1,
                           SQLITE_PREPARE_PERSISTENT, &ss->trim, NULL) != SQLITE_OK)
        goto fail;
    ss->max_len = sqlite3_limit(ss->db, SQLITE_LIMIT_LENGTH, -1);

    /* The thread starts before the async handle exists so that every failure below can be
     * undone without running the loop; it cannot touch the handle before an append. */
    sqlerr = 0;
    what = "cannot start the writer thread";
    if (uv_mutex_init(&ss->lock) < 0)
        goto fail;
    if (uv_cond_init(&ss->wake) < 0) {
        uv_mutex_destroy(&ss->lock);
        goto fail;
    }
    if (uv_thread_create(&ss->writer, writer_main, ss) < 0) {
        destroy_sync(ss);
        goto fail;
    }
    what = "cannot create the async handle";
    if (uv_async_init(loop, &ss->async, async_cb) < 0) {
        stop_writer(ss);
        destroy_sync(ss);
        goto fail;
    }
    ss->async.data = ss;
    uv_unref((uv_handle_t *)&ss->async);
    return &ss->base;

fail_nomem:
    snprintf(err, errlen, "%s", what);
    if (ss)
        free(ss->path);
    free(ss);
    return NULL;
fail:
    if (sqlerr)
        snprintf(err, errlen, "%s: %s: %s", ss->path, what,
                 why[0] ? why : ss->db ? sqlite3_errmsg(ss->db) : "out of memory");
    else
        snprintf(err, errlen, "%s: %s", ss->path, what);
    free_store(ss);
    return NULL;
}
