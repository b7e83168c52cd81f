/* store.h - durable history behind the hub: an append-only log of (channel, id, time, data)
 * that survives restarts. The hub keeps each channel's metadata and a bounded cache of its
 * newest messages in memory; older messages are read back from the store a page at a time,
 * off the event loop, and at start the hub loads only the metadata.
 *
 * Appends are asynchronous: the store commits them off the event loop (a writer thread that
 * groups every append queued since its last commit into one transaction) and calls done on
 * the loop thread once they are durable, in append order. A publish is acknowledged from done,
 * so an acknowledged message survives a crash. A store may show an append before it is
 * durable (done with HR_STORE_SHOWN: committed, readable, in the OS's cache), so that
 * subscribers need not wait for the disk; the publisher still waits for done's 0. */
#ifndef HR_STORE_STORE_H
#define HR_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"

struct hr_store;

/* Called on the loop thread when an append is durable (status 0) or failed (< 0); before
 * that, perhaps once with HR_STORE_SHOWN when it is committed but not yet fsync'd (a power
 * loss could still undo it; a crash of the process could not). Appends are shown in append
 * order, and an append that failed before it could be committed is never shown. */
typedef void (*hr_store_done_cb)(void *ud, int status);
#define HR_STORE_SHOWN 1
/* Called once per stored message by load(), channel by channel, ids increasing. */
typedef void (*hr_store_each_cb)(void *ud, const char *channel, uint64_t id, int64_t time_ms,
                                 const void *data, size_t len);

/* What a store keeps of one channel. A channel whose messages were all trimmed keeps its
 * last_id (count 0, first_id = last_id + 1), so ids are never given out twice. */
struct hr_store_meta {
    uint64_t first_id;  /* the oldest id kept */
    uint64_t last_id;   /* the newest id ever stored */
    uint64_t count;     /* messages kept */
    uint64_t bytes;     /* their payload bytes */
    int64_t first_time; /* first_id's publish time (ms), 0 when none is kept */
};
typedef void (*hr_store_meta_cb)(void *ud, const char *channel, const struct hr_store_meta *m);

/* One page of a channel's history, read off the loop. Rows point into the page, which the
 * store frees once the callback returns. */
struct hr_store_row {
    uint64_t id;
    int64_t time_ms;
    const void *data;
    size_t len;
};
struct hr_store_page {
    int status;     /* 0, or a negative HR_E* error (then n is 0) */
    uint64_t first; /* the oldest id kept when the page was read (consistent with it) */
    uint32_t n;
    struct hr_store_row *rows;
};
typedef void (*hr_store_read_cb)(void *ud, const struct hr_store_page *page);
/* A trim by limits is done: the channel's metadata as it now is (status 0), else an error. */
typedef void (*hr_store_trimmed_cb)(void *ud, int status, const struct hr_store_meta *m);

struct hr_store_ops {
    const char *name;
    /* Load every kept message (tools and tests; herald itself loads only the metadata). */
    int (*load)(struct hr_store *st, hr_store_each_cb each, void *ud);
    /* Each channel's metadata (at start, before serving; synchronous). NULL: none kept. */
    int (*meta)(struct hr_store *st, hr_store_meta_cb each, void *ud);
    /* Read the messages of channel with ids > since, ids increasing, at most max of them
     * and about max_bytes (at least one when any is kept); done runs later on the loop
     * thread, never inside this call. What it sees is committed, perhaps not yet
     * acknowledged. NULL for a store whose history is all in memory. */
    int (*read)(struct hr_store *st, const char *channel, uint64_t since, uint32_t max,
                size_t max_bytes, hr_store_read_cb done, void *ud);
    /* Drop a channel's oldest messages while it keeps more than max_count messages, more
     * than max_bytes payload bytes, or messages older than min_time (ms; 0: no age limit);
     * async, ordered with the appends: done gets the metadata after the trim, in its place
     * among the appends' HR_STORE_SHOWN calls when the store shows them. */
    int (*trim_limits)(struct hr_store *st, const char *channel, uint64_t max_count,
                       uint64_t max_bytes, int64_t min_time, hr_store_trimmed_cb done, void *ud);
    /* Queue an append of data's bytes. The store keeps a reference to data (not a copy)
     * until the append is committed or failed, and drops it on the loop thread; the bytes
     * must not change meanwhile. done may run later, never inside this call. */
    int (*append)(struct hr_store *st, const char *channel, uint64_t id, int64_t time_ms,
                  struct hr_buf *data, hr_store_done_cb done, void *ud);
    /* Forget a channel's messages with ids below keep_from (history trimming); async. */
    int (*trim)(struct hr_store *st, const char *channel, uint64_t keep_from);
    /* Commit what is queued, stop the writer and free everything (blocks until done; call
     * at shutdown after the loop has stopped taking publishes). The last done callbacks run
     * inside close; one handle finishes closing on the next run of the loop. */
    void (*close)(struct hr_store *st);
};

struct hr_store {
    const struct hr_store_ops *ops;
    /* Changes whenever history may have been lost: a new random value for each memory
     * store, and for a SQLite file the value created with the file (kept across restarts,
     * renewed after a power loss or an OS crash that may have undone commits). */
    char epoch[24];
    /* The outcome of the last commit, for readiness checks (GET /readyz) on any thread: NULL
     * when it succeeded, else a static description ("database or disk is full"), with the
     * system's errno behind it in write_errno (0: none). Written by the store's writer with
     * __atomic_store_n, read with __atomic_load_n. Never set by the memory store. */
    const char *write_error;
    int write_errno;
};

/* The memory store: nothing to persist; done runs on the next loop turn. */
struct hr_store *hr_store_memory_new(uv_loop_t *loop);
/* The SQLite store: DIR/herald.db in WAL mode (created if missing). Returns NULL with a
 * one-line reason in err on failure. sync: HR_STORE_SYNC_FULL (_new) or _NORMAL. */
enum {
    HR_STORE_SYNC_FULL,   /* every batch's commit is shown, then fsync'd, then acknowledged: a
                           * power loss loses nothing acknowledged */
    HR_STORE_SYNC_NORMAL, /* no fsync at commit: a crash of herald (kill -9) loses nothing
                           * acknowledged, a power loss or an OS crash may lose the last commits */
};
struct hr_store *hr_store_sqlite_open(uv_loop_t *loop, const char *dir, int sync, char *err,
                                      size_t errlen);
struct hr_store *hr_store_sqlite_new(uv_loop_t *loop, const char *dir, char *err, size_t errlen);

#endif
