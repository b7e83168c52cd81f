/* sqlite.c - the SQLite store: DIR/herald.db in WAL mode, written by one thread that commits
 * every append queued since its last commit in one transaction (group commit), and hands the
 * finished batch back to the loop thread, which acknowledges the appends in order. SQLite
 * runs with synchronous=NORMAL (no fsync in COMMIT); with --store-sync full the writer shows
 * each committed batch to the loop at once (subscribers get it) and hands it to a syncer
 * thread, which fsyncs the WAL once for every batch committed since its last fsync and only
 * then gives them back to be acknowledged, while the writer goes on committing. A reader
 * thread reads history pages through a connection of its own (WAL lets it read beside the
 * writer); its answers come back through the same list.
 *
 * A table `channels` holds each channel's last id, message count and payload bytes, kept by
 * triggers on `messages`, so start-up reads one row per channel instead of every message.
 *
 * Threads: the loop thread owns the store and every request (allocates and frees them); the
 * writer, syncer and reader threads only borrow requests between taking them off `queue` /
 * `synq` / `rqueue` and putting them on `synq` / `done`, all under `lock`; the writer is the
 * only user of `db` and the reader of `rdb` once they run. What is shown reaches the loop as
 * a copy (`struct shown`), never as the requests the syncer still holds. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/array.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "store.h"

/* Successful COMMITs by every SQLite store in the process: lets a test see that appends are
 * grouped. Not part of the API; bumped atomically since each store has its own writer. */
extern unsigned long hr_store_sqlite_commits;
unsigned long hr_store_sqlite_commits;

enum { REQ_APPEND, REQ_TRIM, REQ_TRIM_LIMITS, REQ_READ };

/* One queued write. channel lives in the same allocation, after the struct; an append's
 * payload is the publisher's buffer, referenced (not copied) until the request is freed on
 * the loop thread, so the threads never touch its reference count. */
struct req {
    struct req *next;
    int kind;
    int status; /* set by the writer */
    int shown;  /* the writer showed its outcome (struct shown): not given again */
    hr_store_done_cb done;
    void *ud;
    int64_t id; /* the id, keep_from for a trim, since for a read */
    int64_t time_ms;
    /* trim by limits: the limits in, the metadata after out */
    uint64_t max_count, max_bytes;
    hr_store_trimmed_cb trimmed;
    struct hr_store_meta meta;
    /* read: the page out (rows and their bytes are allocated by the reader) */
    uint32_t max;
    hr_store_read_cb read_done;
    struct hr_store_page page;
    unsigned char *page_data;
    struct hr_buf *buf; /* append: the payload */
    const char *channel;
    char chan[];
};

struct req_list {
    struct req *head, *tail;
};

/* --store-sync full: what a committed batch did, shown to the loop before the WAL's fsync
 * makes it durable (its requests come back, to be acknowledged, after it): its appends, and in
 * their order its trims by limits, whose metadata counts the appends before them. */
struct shown {
    struct shown *next;
    size_t n;
    struct {
        hr_store_done_cb done;       /* an append: done(ud, HR_STORE_SHOWN) */
        hr_store_trimmed_cb trimmed; /* a trim by limits: its outcome, once */
        void *ud;
        int status;
        struct hr_store_meta meta;
    } e[];
};

struct sqlite_store {
    struct hr_store base;
    char *path;
    sqlite3 *db;
    sqlite3_stmt *insert, *trim, *chan_get, *oldest;
    int64_t max_len;      /* SQLite's limit on one blob */
    int sync_self;        /* --store-sync full: the syncer fsyncs the WAL after commits */
    char *dir, *wal_path; /* the WAL's fsync goes through a descriptor of the syncer's own */
    dev_t wal_dev;        /* syncer: the WAL file last synced, whose name in dir is durable */
    ino_t wal_ino;
    int errcode, sys_errno; /* writer: the last failure's (log_db_error) */
    sqlite3 *rdb;           /* the reader's */
    sqlite3_stmt *rfirst, *rpage;

    uv_thread_t writer, reader, syncer;
    int reader_started, syncer_started;
    uv_mutex_t lock;
    uv_cond_t wake, rwake, swake;
    /* under lock */
    struct req_list queue;             /* loop -> writer */
    struct req_list rqueue;            /* loop -> reader */
    struct req_list done;              /* writer, reader -> loop */
    struct req_list synq;              /* writer -> syncer: committed, to be made durable */
    struct shown *shown, **shown_tail; /* writer -> loop, each before its batch's requests */
    int stop, sync_stop;

    /* loop thread only */
    uv_async_t async;
    struct req_list ready;     /* taken from done, being acknowledged */
    struct shown *shown_ready; /* taken from shown, being shown */
    size_t outstanding;        /* requests not yet back from the writer */
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
    ss->errcode = sqlite3_errcode(ss->db);
    ss->sys_errno = sqlite3_system_errno(ss->db);
    hr_error("store %s: %s: %s", ss->path, what, sqlite3_errmsg(ss->db));
}

static int exec_simple(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* A failed statement of request r: 0 when only the statement was undone (r fails, the
 * transaction goes on), HR_EIO when SQLite rolled the whole transaction back. */
static int req_failed(struct sqlite_store *ss, struct req *r, int rc, int *logged, const char *what)
{
    if (!*logged) {
        log_db_error(ss, what);
        *logged = 1;
    }
    if (sqlite3_get_autocommit(ss->db))
        return HR_EIO;
    r->status = (rc & 0xff) == SQLITE_CONSTRAINT ? HR_EINVAL : HR_EIO;
    return 0;
}

/* Trim by limits: walk the channel's oldest messages, dropping while it is over a limit (only
 * the rows that go are read, and of those only the length), then delete them at once. The
 * channel's metadata after the trim goes back to the loop with the request. */
static int run_trim_limits(struct sqlite_store *ss, struct req *r, int *logged)
{
    uint64_t last = 0, count = 0, bytes = 0, keep_from = 0;
    sqlite3_stmt *s = ss->chan_get;
    sqlite3_bind_text(s, 1, r->channel, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        last = (uint64_t)sqlite3_column_int64(s, 0);
        count = (uint64_t)sqlite3_column_int64(s, 1);
        bytes = (uint64_t)sqlite3_column_int64(s, 2);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return req_failed(ss, r, rc, logged, "trim");
    r->meta = (struct hr_store_meta){
        .first_id = last + 1, .last_id = last, .count = count, .bytes = bytes};
    s = ss->oldest;
    sqlite3_bind_text(s, 1, r->channel, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t id = (uint64_t)sqlite3_column_int64(s, 0);
        int64_t t = sqlite3_column_int64(s, 1);
        uint64_t len = (uint64_t)sqlite3_column_int64(s, 2);
        if (!(count > r->max_count || bytes > r->max_bytes || (r->time_ms && t < r->time_ms))) {
            r->meta.first_id = id;
            r->meta.first_time = t;
            break;
        }
        count--;
        bytes -= len < bytes ? len : bytes;
        keep_from = id + 1;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return req_failed(ss, r, rc, logged, "trim");
    r->meta.count = count;
    r->meta.bytes = bytes;
    if (!keep_from)
        return 0;
    s = ss->trim;
    sqlite3_bind_text(s, 1, r->channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (int64_t)keep_from);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : req_failed(ss, r, rc, logged, "trim");
}

/* Run one request inside the open transaction. Returns 0, the request's own failure (the
 * transaction goes on), or HR_EIO when SQLite rolled the whole transaction back. */
static int run_req(struct sqlite_store *ss, struct req *r, int *logged)
{
    if (r->kind == REQ_TRIM_LIMITS)
        return run_trim_limits(ss, r, logged);
    sqlite3_stmt *s = r->kind == REQ_APPEND ? ss->insert : ss->trim;
    sqlite3_bind_text(s, 1, r->channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, r->id);
    if (r->kind == REQ_APPEND) {
        sqlite3_bind_int64(s, 3, r->time_ms);
        /* static: the request holds the buffer until after the commit; data is never NULL,
         * even for 0 bytes (NULL would bind SQL NULL, not an empty blob) */
        sqlite3_bind_blob64(s, 4, r->buf->data, r->buf->len, SQLITE_STATIC);
    }
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (r->kind == REQ_APPEND)
        sqlite3_clear_bindings(s); /* the statement outlives the buffer */
    if (rc == SQLITE_DONE)
        return 0;
    /* only this statement was undone; a duplicate id is the caller's mistake */
    return req_failed(ss, r, rc, logged, r->kind == REQ_APPEND ? "append" : "trim");
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

/* The WAL's fsync that synchronous=FULL would make inside COMMIT, made here through a
 * descriptor of our own (fsync is the file's, whichever descriptor asks), so that it can run
 * beside the next commits instead of holding them up; fdatasync, as SQLite's own. The first
 * time a WAL file is synced its directory is too, so that its name survives with it. Returns
 * 0 or -errno. */
static int sync_wal(struct sqlite_store *ss)
{
    int fd = open(ss->wal_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno; /* no WAL: all of it is in herald.db, synced */
    struct stat st;
    int rc = fstat(fd, &st) == 0 && fdatasync(fd) == 0 ? 0 : -errno;
    close(fd);
    if (rc == 0 && (st.st_ino != ss->wal_ino || st.st_dev != ss->wal_dev)) {
        int dfd = open(ss->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        rc = dfd >= 0 && fsync(dfd) == 0 ? 0 : -errno;
        if (dfd >= 0)
            close(dfd);
        if (rc == 0) {
            ss->wal_dev = st.st_dev;
            ss->wal_ino = st.st_ino;
        }
    }
    return rc;
}

/* Readiness (GET /readyz) after a batch. */
static void note_outcome(struct sqlite_store *ss, struct req *batch)
{
    /* readiness: whether the store can be written now is what the last commit found (a full
     * disk fails every append, and the next commit that gets through clears it); a duplicate
     * id (HR_EINVAL) is the caller's mistake, not the store's */
    const char *werr = NULL;
    for (struct req *r = batch; r && !werr; r = r->next)
        if (r->status == HR_EIO)
            werr = sqlite3_errstr(ss->errcode ? ss->errcode : SQLITE_IOERR);
    __atomic_store_n(&ss->base.write_errno, werr ? ss->sys_errno : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&ss->base.write_error, werr, __ATOMIC_RELEASE);
}

/* The store's threads take no signals: they are the loop thread's business (libuv's signal
 * handles). */
static void block_signals(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}

/* What a batch shows: an append that committed, any trim by limits. */
static int shows(const struct req *r)
{
    return (r->kind == REQ_APPEND && !r->status && r->done) ||
           (r->kind == REQ_TRIM_LIMITS && r->trimmed);
}

/* A worker thread's wait: everything on q once something is there, or an empty list once
 * stop is set and q is empty. */
static struct req_list take_all(struct sqlite_store *ss, struct req_list *q, uv_cond_t *wake,
                                const int *stop)
{
    uv_mutex_lock(&ss->lock);
    while (!q->head && !*stop)
        uv_cond_wait(wake, &ss->lock);
    struct req_list taken = *q;
    q->head = q->tail = NULL;
    uv_mutex_unlock(&ss->lock);
    return taken;
}

/* Finished requests back to the loop thread (the async handle is closed only after every
 * worker thread is joined). */
static void hand_back(struct sqlite_store *ss, struct req_list *l)
{
    uv_mutex_lock(&ss->lock);
    list_splice(&ss->done, l);
    uv_mutex_unlock(&ss->lock);
    uv_async_send(&ss->async);
}

/* Hand what the batch did (shows()) to the loop before its fsync: its appends are in the OS's
 * cache, visible to readers, and a crash of herald loses none of them. Without memory the
 * batch is shown with its acknowledgements instead. */
static void show_batch(struct sqlite_store *ss, struct req *batch)
{
    size_t n = 0;
    for (struct req *r = batch; r; r = r->next)
        n += shows(r);
    if (!n)
        return;
    struct shown *sh = malloc(sizeof(*sh) + n * sizeof(sh->e[0]));
    if (!sh)
        return;
    sh->next = NULL;
    sh->n = 0;
    for (struct req *r = batch; r; r = r->next)
        if (shows(r)) {
            sh->e[sh->n].done = r->kind == REQ_APPEND ? r->done : NULL;
            sh->e[sh->n].trimmed = r->kind == REQ_TRIM_LIMITS ? r->trimmed : NULL;
            sh->e[sh->n].ud = r->ud;
            sh->e[sh->n].status = r->status;
            sh->e[sh->n].meta = r->meta;
            sh->n++;
            r->shown = 1;
        }
    uv_mutex_lock(&ss->lock);
    *ss->shown_tail = sh;
    ss->shown_tail = &sh->next;
    uv_mutex_unlock(&ss->lock);
    uv_async_send(&ss->async);
}

static void writer_main(void *arg)
{
    struct sqlite_store *ss = arg;
    block_signals();

    for (;;) {
        struct req_list batch = take_all(ss, &ss->queue, &ss->wake, &ss->stop);
        if (!batch.head)
            break; /* stop, and everything queued before it is committed */

        commit_batch(ss, batch.head);
        note_outcome(ss, batch.head);
        if (ss->sync_self) {
            /* shown now, acknowledged once the syncer has made it durable; the next batch
             * commits meanwhile */
            show_batch(ss, batch.head);
            uv_mutex_lock(&ss->lock);
            if (!ss->synq.head)
                uv_cond_signal(&ss->swake);
            list_splice(&ss->synq, &batch);
            uv_mutex_unlock(&ss->lock);
            continue;
        }
        hand_back(ss, &batch);
    }
}

/* --store-sync full: one fsync for every batch committed since the last one (group commit
 * once more), then their acknowledgements. On failure what they wrote may not be on disk:
 * every request of them that had succeeded fails, and /readyz says why. */
static void syncer_main(void *arg)
{
    struct sqlite_store *ss = arg;
    block_signals();
    for (;;) {
        struct req_list batch = take_all(ss, &ss->synq, &ss->swake, &ss->sync_stop);
        if (!batch.head)
            break; /* stop, once the writer is gone and all it committed is synced */

        int rc = sync_wal(ss);
        if (rc < 0) {
            hr_error("store %s: fsync of the WAL: %s", ss->path, strerror(-rc));
            for (struct req *r = batch.head; r; r = r->next)
                if (!r->status)
                    r->status = HR_EIO;
            __atomic_store_n(&ss->base.write_errno, -rc, __ATOMIC_RELAXED);
            __atomic_store_n(&ss->base.write_error, sqlite3_errstr(SQLITE_IOERR_FSYNC),
                             __ATOMIC_RELEASE);
        }
        hand_back(ss, &batch);
    }
}

/* Read one page in one read transaction, so that `first` and the rows agree. */
static void run_read(struct sqlite_store *ss, struct req *r)
{
    struct hr_store_page *pg = &r->page;
    size_t cap = 0, used = 0;
    uint32_t rcap = 0;
    int rc = exec_simple(ss->rdb, "BEGIN");
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_stmt *s = ss->rfirst;
    sqlite3_bind_text(s, 1, r->channel, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    pg->first = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        goto fail;
    s = ss->rpage;
    sqlite3_bind_text(s, 1, r->channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, r->id);
    sqlite3_bind_int64(s, 3, r->max);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(s, 2);
        const void *data = sqlite3_column_blob(s, 2);
        if (HR_ARRAY_RESERVE(pg->rows, rcap, (size_t)pg->n + 1, 16) < 0)
            break;
        if (used + len > cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            while (ncap < used + len)
                ncap *= 2;
            unsigned char *d = realloc(r->page_data, ncap);
            if (!d)
                break;
            r->page_data = d;
            cap = ncap;
        }
        if (len)
            memcpy(r->page_data + used, data, len);
        /* data is an offset until the page is complete (the buffer may move) */
        pg->rows[pg->n++] =
            (struct hr_store_row){(uint64_t)sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                                  (const void *)(uintptr_t)used, len};
        used += len;
        if (used >= r->max_bytes)
            break;
    }
    sqlite3_reset(s);
    exec_simple(ss->rdb, "COMMIT");
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        goto fail;
    for (uint32_t i = 0; i < pg->n; i++)
        pg->rows[i].data = r->page_data + (uintptr_t)pg->rows[i].data;
    return;
fail:
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        hr_error("store %s: read: %s", ss->path, sqlite3_errmsg(ss->rdb));
    if (!sqlite3_get_autocommit(ss->rdb))
        exec_simple(ss->rdb, "ROLLBACK");
    pg->n = 0;
    /* no row at all: nothing is kept, which is an answer, not an error */
    pg->status = rc == SQLITE_DONE ? 0 : HR_EIO;
}

static void reader_main(void *arg)
{
    struct sqlite_store *ss = arg;
    block_signals();
    for (;;) {
        uv_mutex_lock(&ss->lock);
        while (!ss->rqueue.head && !ss->stop)
            uv_cond_wait(&ss->rwake, &ss->lock);
        struct req *r = ss->rqueue.head;
        if (r) {
            ss->rqueue.head = r->next;
            if (!ss->rqueue.head)
                ss->rqueue.tail = NULL;
        }
        uv_mutex_unlock(&ss->lock);
        if (!r)
            break; /* stop, and every read asked before it is answered */
        run_read(ss, r);
        struct req_list one = {0};
        list_push(&one, r);
        hand_back(ss, &one);
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
    struct shown **tail = &ss->shown_ready;
    while (*tail)
        tail = &(*tail)->next;
    *tail = ss->shown;
    ss->shown = NULL;
    ss->shown_tail = &ss->shown;
    uv_mutex_unlock(&ss->lock);
    /* what was shown goes first: a batch is shown before its requests come back */
    struct shown *sh;
    while ((sh = ss->shown_ready)) {
        ss->shown_ready = sh->next;
        for (size_t i = 0; i < sh->n; i++) {
            if (sh->e[i].trimmed)
                sh->e[i].trimmed(sh->e[i].ud, sh->e[i].status, &sh->e[i].meta);
            else
                sh->e[i].done(sh->e[i].ud, HR_STORE_SHOWN);
        }
        free(sh);
    }
    struct req *r;
    while ((r = ss->ready.head)) {
        ss->ready.head = r->next;
        if (!ss->ready.head)
            ss->ready.tail = NULL;
        ss->outstanding--;
        if (r->kind == REQ_READ) {
            if (!r->page.status && r->status)
                r->page.status = r->status;
            r->read_done(r->ud, &r->page);
            free(r->page.rows);
            free(r->page_data);
            free(r);
            continue;
        }
        if (r->kind == REQ_TRIM_LIMITS) {
            if (r->trimmed && !r->shown)
                r->trimmed(r->ud, r->status, &r->meta);
            free(r);
            continue;
        }
        hr_store_done_cb done = r->kind == REQ_APPEND ? r->done : NULL;
        void *ud = r->ud;
        int status = r->status;
        hr_buf_unref(r->buf);
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

/* Hand r to a worker thread (the writer's queue or the reader's); its result comes back on
 * the loop through the async handle, which keeps the loop alive while any is outstanding. */
static int enqueue_on(struct sqlite_store *ss, struct req_list *q, uv_cond_t *wake, struct req *r)
{
    if (ss->outstanding++ == 0)
        uv_ref((uv_handle_t *)&ss->async);
    uv_mutex_lock(&ss->lock);
    /* a worker only waits on an empty queue */
    if (!q->head)
        uv_cond_signal(wake);
    list_push(q, r);
    uv_mutex_unlock(&ss->lock);
    return 0;
}

static int enqueue(struct sqlite_store *ss, struct req *r)
{
    return enqueue_on(ss, &ss->queue, &ss->wake, r);
}

static int enqueue_read(struct sqlite_store *ss, struct req *r)
{
    return enqueue_on(ss, &ss->rqueue, &ss->rwake, r);
}

static struct req *req_new(const char *channel)
{
    size_t clen = strlen(channel) + 1;
    struct req *r = malloc(sizeof(*r) + clen);
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    memcpy(r->chan, channel, clen);
    r->channel = r->chan;
    return r;
}

static int sq_append(struct hr_store *st, const char *channel, uint64_t id, int64_t time_ms,
                     struct hr_buf *data, hr_store_done_cb done, void *ud)
{
    struct sqlite_store *ss = (struct sqlite_store *)st;
    if (ss->closing)
        return HR_ECLOSED;
    /* ids are SQLite INTEGERs, which are signed */
    if (id > INT64_MAX)
        return HR_EINVAL;
    if (data->len > (uint64_t)ss->max_len)
        return HR_ETOOBIG;
    struct req *r = req_new(channel);
    if (!r)
        return HR_ENOMEM;
    r->kind = REQ_APPEND;
    r->id = (int64_t)id;
    r->time_ms = time_ms;
    r->done = done;
    r->ud = ud;
    r->buf = hr_buf_ref(data);
    return enqueue(ss, r);
}

static int sq_trim(struct hr_store *st, const char *channel, uint64_t keep_from)
{
    struct sqlite_store *ss = (struct sqlite_store *)st;
    if (ss->closing)
        return HR_ECLOSED;
    if (keep_from > INT64_MAX)
        return HR_EINVAL;
    struct req *r = req_new(channel);
    if (!r)
        return HR_ENOMEM;
    r->kind = REQ_TRIM;
    r->id = (int64_t)keep_from;
    return enqueue(ss, r);
}

static int sq_trim_limits(struct hr_store *st, const char *channel, uint64_t max_count,
                          uint64_t max_bytes, int64_t min_time, hr_store_trimmed_cb done, void *ud)
{
    struct sqlite_store *ss = (struct sqlite_store *)st;
    if (ss->closing)
        return HR_ECLOSED;
    struct req *r = req_new(channel);
    if (!r)
        return HR_ENOMEM;
    r->kind = REQ_TRIM_LIMITS;
    r->max_count = max_count;
    r->max_bytes = max_bytes;
    r->time_ms = min_time;
    r->trimmed = done;
    r->ud = ud;
    return enqueue(ss, r);
}

static int sq_read(struct hr_store *st, const char *channel, uint64_t since, uint32_t max,
                   size_t max_bytes, hr_store_read_cb done, void *ud)
{
    struct sqlite_store *ss = (struct sqlite_store *)st;
    if (ss->closing)
        return HR_ECLOSED;
    if (since > INT64_MAX)
        return HR_EINVAL;
    struct req *r = req_new(channel);
    if (!r)
        return HR_ENOMEM;
    r->kind = REQ_READ;
    r->id = (int64_t)since;
    r->max = max ? max : 1;
    r->max_bytes = max_bytes;
    r->read_done = done;
    r->ud = ud;
    return enqueue_read(ss, r);
}

/* Each channel's row of `channels`, with its oldest kept message (one index lookup each). */
static int sq_meta(struct hr_store *st, hr_store_meta_cb each, void *ud)
{
    struct sqlite_store *ss = (struct sqlite_store *)st;
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_open_v2(ss->path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_prepare_v2(
        db,
        "SELECT c.name, c.last_id, c.count, c.bytes, m.id, m.time_ms FROM channels c"
        " LEFT JOIN messages m ON m.channel = c.name AND m.id ="
        " (SELECT min(id) FROM messages WHERE channel = c.name)",
        -1, &s, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *channel = (const char *)sqlite3_column_text(s, 0);
        struct hr_store_meta m = {
            .last_id = (uint64_t)sqlite3_column_int64(s, 1),
            .count = (uint64_t)sqlite3_column_int64(s, 2),
            .bytes = (uint64_t)sqlite3_column_int64(s, 3),
        };
        if (sqlite3_column_type(s, 4) == SQLITE_NULL) {
            m.first_id = m.last_id + 1;
            m.count = m.bytes = 0;
        } else {
            m.first_id = (uint64_t)sqlite3_column_int64(s, 4);
            m.first_time = sqlite3_column_int64(s, 5);
        }
        each(ud, channel ? channel : "", &m);
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

static void close_dbs(struct sqlite_store *ss)
{
    sqlite3_finalize(ss->insert);
    sqlite3_finalize(ss->trim);
    sqlite3_finalize(ss->chan_get);
    sqlite3_finalize(ss->oldest);
    sqlite3_finalize(ss->rfirst);
    sqlite3_finalize(ss->rpage);
    ss->insert = ss->trim = ss->chan_get = ss->oldest = ss->rfirst = ss->rpage = NULL;
    if (ss->rdb && sqlite3_close(ss->rdb) != SQLITE_OK)
        hr_error("store %s: close: %s", ss->path, sqlite3_errmsg(ss->rdb));
    ss->rdb = NULL;
}

static void free_store(struct sqlite_store *ss)
{
    close_dbs(ss);
    sqlite3_close(ss->db);
    free(ss->path);
    free(ss->dir);
    free(ss->wal_path);
    free(ss);
}

static void free_cb(uv_handle_t *h)
{
    struct sqlite_store *ss = h->data;
    free(ss->path);
    free(ss->dir);
    free(ss->wal_path);
    free(ss);
}

static void stop_writer(struct sqlite_store *ss)
{
    uv_mutex_lock(&ss->lock);
    ss->stop = 1;
    uv_cond_signal(&ss->wake);
    uv_cond_signal(&ss->rwake);
    uv_mutex_unlock(&ss->lock);
    uv_thread_join(&ss->writer);
    /* the writer committed everything queued: the syncer syncs it and goes */
    uv_mutex_lock(&ss->lock);
    ss->sync_stop = 1;
    uv_cond_signal(&ss->swake);
    uv_mutex_unlock(&ss->lock);
    if (ss->syncer_started)
        uv_thread_join(&ss->syncer);
    ss->syncer_started = 0;
    if (ss->reader_started)
        uv_thread_join(&ss->reader);
    ss->reader_started = 0;
    /* reads still queued are answered, as failed: the store is going away */
    uv_mutex_lock(&ss->lock);
    for (struct req *r = ss->rqueue.head; r; r = r->next)
        r->status = HR_ECLOSED;
    list_splice(&ss->done, &ss->rqueue);
    uv_mutex_unlock(&ss->lock);
}

static void destroy_sync(struct sqlite_store *ss)
{
    uv_cond_destroy(&ss->wake);
    uv_cond_destroy(&ss->rwake);
    uv_cond_destroy(&ss->swake);
    uv_mutex_destroy(&ss->lock);
}

/* Blocks while the writer commits what is queued, then acknowledges it here, on the loop
 * thread, in order (the loop may never turn again, so this is the last chance). The database
 * is closed at once; only the async handle outlives this call: it is closed with uv_close and
 * the store's memory is freed from its close callback, so when close() is called after uv_run
 * has returned, the caller runs the loop once more (uv_run(loop, UV_RUN_DEFAULT) returns as
 * soon as the close callbacks have run) before uv_loop_close. */
static int meta_set(sqlite3 *db, const char *key, const char *value);

static void sq_close(struct hr_store *st)
{
    struct sqlite_store *ss = (struct sqlite_store *)st;
    if (ss->closing)
        return;
    ss->closing = 1; /* appends from the callbacks below are refused */
    stop_writer(ss);
    deliver(ss);
    destroy_sync(ss);
    /* every commit is made (and with --store-sync full synced): a power loss from now on
     * undoes nothing (check_clean_end) */
    if (meta_set(ss->db, "clean", "1") < 0 || (ss->sync_self && sync_wal(ss) < 0))
        hr_error("store %s: close: cannot mark the file closed cleanly", ss->path);
    close_dbs(ss);
    if (sqlite3_close(ss->db) != SQLITE_OK)
        hr_error("store %s: close: %s", ss->path, sqlite3_errmsg(ss->db));
    ss->db = NULL;
    uv_close((uv_handle_t *)&ss->async, free_cb);
}

static const struct hr_store_ops sqlite_ops = {
    .name = "sqlite",
    .load = sq_load,
    .meta = sq_meta,
    .read = sq_read,
    .trim_limits = sq_trim_limits,
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

/* This boot of the system (Linux: a random id drawn at every boot), "" where unknown. */
static void read_boot_id(char *out, size_t len)
{
    out[0] = 0;
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (!f)
        return;
    if (!fgets(out, (int)len, f))
        out[0] = 0;
    fclose(f);
    out[strcspn(out, "\n")] = 0;
}

/* A meta value copied into out; *found is 0 when the key is absent. */
static int meta_get(sqlite3 *db, const char *key, char *out, size_t len, int *found)
{
    sqlite3_stmt *s = NULL;
    *found = 0;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1, &s, NULL) != SQLITE_OK)
        return HR_EIO;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        snprintf(out, len, "%s", v ? v : "");
        *found = 1;
    }
    sqlite3_finalize(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : HR_EIO;
}

static int meta_set(sqlite3 *db, const char *key, const char *value)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1, &s,
                           NULL) != SQLITE_OK)
        return HR_EIO;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? 0 : HR_EIO;
}

/* The last commits before an OS crash or a power loss may be undone (every commit not yet
 * fsync'd: with --store-sync full a batch shown to subscribers before its fsync, with normal
 * any since the last checkpoint), and their ids would then be given out again to other
 * messages. A start after such an end (herald did not stop cleanly, and the system booted
 * since: "clean" and "boot" in meta) takes a new epoch, so that every cursor from before is
 * told that history may have been lost instead of being read as an id of this one. A kill
 * of herald alone keeps the epoch: the OS still had every commit. */
static int check_clean_end(struct sqlite_store *ss, const char *fresh, char *epoch)
{
    char boot[64], was_boot[64], clean[8];
    int has_boot, has_clean;
    read_boot_id(boot, sizeof boot);
    if (meta_get(ss->db, "boot", was_boot, sizeof was_boot, &has_boot) < 0 ||
        meta_get(ss->db, "clean", clean, sizeof clean, &has_clean) < 0)
        return HR_EIO;
    if (has_boot && boot[0] && strcmp(boot, was_boot) != 0 &&
        !(has_clean && strcmp(clean, "1") == 0)) {
        if (meta_set(ss->db, "epoch", fresh) < 0)
            return HR_EIO;
        hr_warn("store %s: the system restarted while herald was running: its last commits may "
                "have been lost, so history takes a new epoch (clients are told of a gap)",
                ss->path);
        strcpy(epoch, fresh);
    }
    if ((boot[0] && meta_set(ss->db, "boot", boot) < 0) || meta_set(ss->db, "clean", "0") < 0)
        return HR_EIO;
    return 0;
}

/* Read the epoch kept in the file, creating it (and the schema) with a new file, or renewing
 * it after a power loss (check_clean_end). On failure why holds SQLite's message for the call
 * that failed (the ROLLBACK after it would replace the handle's message with "not an error"). */
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
    /* Per-channel metadata, kept by triggers so that every write (appends, trims, and a
     * DELETE typed in the sqlite3 shell) keeps it right. A file from before it existed gets
     * it filled once from the messages. */
    if (sqlite3_prepare_v2(ss->db,
                           "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'channels'",
                           -1, &s, NULL) != SQLITE_OK)
        goto fail;
    int had_channels = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    s = NULL;
    if (exec_simple(
            ss->db,
            "CREATE TABLE IF NOT EXISTS channels(name TEXT PRIMARY KEY, last_id INTEGER NOT NULL,"
            " count INTEGER NOT NULL, bytes INTEGER NOT NULL) WITHOUT ROWID;"
            "CREATE TRIGGER IF NOT EXISTS messages_insert AFTER INSERT ON messages BEGIN"
            " INSERT OR IGNORE INTO channels(name, last_id, count, bytes) VALUES(NEW.channel, 0, "
            "0, 0);"
            " UPDATE channels SET last_id = max(last_id, NEW.id), count = count + 1,"
            " bytes = bytes + length(NEW.data) WHERE name = NEW.channel; END;"
            "CREATE TRIGGER IF NOT EXISTS messages_delete AFTER DELETE ON messages BEGIN"
            " UPDATE channels SET count = count - 1, bytes = bytes - length(OLD.data)"
            " WHERE name = OLD.channel; END;") != SQLITE_OK)
        goto fail;
    if (!had_channels && exec_simple(ss->db, "INSERT INTO channels(name, last_id, count, bytes)"
                                             " SELECT channel, max(id), count(*), sum(length(data))"
                                             " FROM messages GROUP BY channel") != SQLITE_OK)
        goto fail;
    char epoch[64];
    int found;
    if (meta_get(ss->db, "epoch", epoch, sizeof epoch, &found) < 0 ||
        (!found && meta_set(ss->db, "epoch", fresh) < 0))
        goto fail;
    if (!found)
        strcpy(epoch, fresh);
    if (!epoch[0] || strlen(epoch) >= sizeof ss->base.epoch) {
        *what = "bad epoch in meta";
        snprintf(why, whylen, "%s", epoch[0] ? "too long" : "empty");
        goto fail_rollback;
    }
    strcpy(ss->base.epoch, epoch);
    if (check_clean_end(ss, fresh, ss->base.epoch) < 0)
        goto fail;
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
    return hr_store_sqlite_open(loop, dir, HR_STORE_SYNC_FULL, err, errlen);
}

struct hr_store *hr_store_sqlite_open(uv_loop_t *loop, const char *dir, int sync, char *err,
                                      size_t errlen)
{
    const char *what = "out of memory";
    int sqlerr = 1;     /* whether sqlite3_errmsg explains the failure */
    char why[256] = ""; /* SQLite's message, taken when the call failed */
    sqlite3_stmt *s = NULL;
    struct stat sb;
    int rc;
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
    if (!(ss->dir = strdup(dir)) || !(ss->wal_path = malloc(plen + 4)))
        goto fail_nomem;
    snprintf(ss->wal_path, plen + 4, "%s-wal", ss->path);
    ss->base.ops = &sqlite_ops;
    ss->shown_tail = &ss->shown;
    ss->sync_self = sync != HR_STORE_SYNC_NORMAL;

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
    /* In WAL mode NORMAL leaves the fsync out of COMMIT: a commit is in the OS's cache once
     * COMMIT returns, so a crash of herald loses nothing committed, but a power loss or an OS
     * crash can undo the last commits. --store-sync full adds that fsync back, made by the
     * syncer thread once for every batch committed since its last one (group commit shares it
     * among all their appends) after each batch was shown to the loop: subscribers get a
     * message without waiting for the disk, its publisher's acknowledgement waits for it. */
    what = "synchronous=NORMAL";
    if (exec_simple(ss->db, "PRAGMA synchronous=NORMAL") != SQLITE_OK)
        goto fail;
    if (open_schema(ss, &what, why, sizeof why) < 0)
        goto fail;
    if (ss->sync_self && (rc = sync_wal(ss)) < 0) {
        snprintf(err, errlen, "%s: fsync: %s", ss->path, strerror(-rc));
        free_store(ss);
        return NULL;
    }
    what = "prepare";
    if (sqlite3_prepare_v3(ss->db,
                           "INSERT INTO messages(channel, id, time_ms, data) VALUES(?, ?, ?, ?)",
                           -1, SQLITE_PREPARE_PERSISTENT, &ss->insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(ss->db, "DELETE FROM messages WHERE channel = ? AND id < ?", -1,
                           SQLITE_PREPARE_PERSISTENT, &ss->trim, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(ss->db, "SELECT last_id, count, bytes FROM channels WHERE name = ?", -1,
                           SQLITE_PREPARE_PERSISTENT, &ss->chan_get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(
            ss->db, "SELECT id, time_ms, length(data) FROM messages WHERE channel = ? ORDER BY id",
            -1, SQLITE_PREPARE_PERSISTENT, &ss->oldest, NULL) != SQLITE_OK)
        goto fail;
    /* the reader's connection: reads only, beside the writer (WAL) */
    what = "open (reader)";
    if (sqlite3_open_v2(ss->path, &ss->rdb, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s: %s", ss->path, what,
                 ss->rdb ? sqlite3_errmsg(ss->rdb) : "out of memory");
        free_store(ss);
        return NULL;
    }
    sqlite3_busy_timeout(ss->rdb, 5000);
    if (sqlite3_prepare_v3(ss->rdb, "SELECT min(id) FROM messages WHERE channel = ?", -1,
                           SQLITE_PREPARE_PERSISTENT, &ss->rfirst, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(ss->rdb,
                           "SELECT id, time_ms, data FROM messages WHERE channel = ? AND id > ?"
                           " ORDER BY id LIMIT ?",
                           -1, SQLITE_PREPARE_PERSISTENT, &ss->rpage, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: prepare (reader): %s", ss->path, sqlite3_errmsg(ss->rdb));
        free_store(ss);
        return NULL;
    }
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
    if (uv_cond_init(&ss->rwake) < 0) {
        uv_cond_destroy(&ss->wake);
        uv_mutex_destroy(&ss->lock);
        goto fail;
    }
    if (uv_cond_init(&ss->swake) < 0) {
        uv_cond_destroy(&ss->rwake);
        uv_cond_destroy(&ss->wake);
        uv_mutex_destroy(&ss->lock);
        goto fail;
    }
    if (uv_thread_create(&ss->writer, writer_main, ss) < 0) {
        destroy_sync(ss);
        goto fail;
    }
    if (uv_thread_create(&ss->reader, reader_main, ss) < 0) {
        stop_writer(ss);
        destroy_sync(ss);
        goto fail;
    }
    ss->reader_started = 1;
    if (ss->sync_self) {
        if (uv_thread_create(&ss->syncer, syncer_main, ss) < 0) {
            stop_writer(ss);
            destroy_sync(ss);
            goto fail;
        }
        ss->syncer_started = 1;
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
    if (ss) {
        free(ss->path);
        free(ss->dir);
        free(ss->wal_path);
    }
    free(ss);
    return NULL;
fail:
    if (sqlerr)
        snprintf(err, errlen, "%s: %s: %s", ss->path, what,
                 why[0]   ? why
                 : ss->db ? sqlite3_errmsg(ss->db)
                          : "out of memory");
    else
        snprintf(err, errlen, "%s: %s", ss->path, what);
    free_store(ss);
    return NULL;
}
