/* store.h - durable history behind the hub: an append-only log of (channel, id, time, data)
 * that survives restarts. The hub keeps each channel's recent history in memory and serves
 * every read from there; a store only persists appends and loads them back at start.
 *
 * Appends are asynchronous: the store commits them off the event loop (a writer thread that
 * groups every append queued since its last commit into one transaction) and calls done on
 * the loop thread once they are durable, in append order. A publish is acknowledged from done,
 * so an acknowledged message survives a crash. */
#ifndef HR_STORE_STORE_H
#define HR_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct hr_store;

/* Called on the loop thread when an append is committed (status 0) or failed (< 0). */
typedef void (*hr_store_done_cb)(void *ud, int status);
/* Called once per stored message by load(), channel by channel, ids increasing. */
typedef void (*hr_store_each_cb)(void *ud, const char *channel, uint64_t id, int64_t time_ms,
                                 const void *data, size_t len);

struct hr_store_ops {
    const char *name;
    /* Load every kept message (at start, before serving). */
    int (*load)(struct hr_store *st, hr_store_each_cb each, void *ud);
    /* Queue an append; data is copied. done may run later, never inside this call. */
    int (*append)(struct hr_store *st, const char *channel, uint64_t id, int64_t time_ms,
                  const void *data, size_t len, hr_store_done_cb done, void *ud);
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
     * store, and for a SQLite file the value created with the file (kept across restarts). */
    char epoch[24];
};

/* The memory store: nothing to persist; done runs on the next loop turn. */
struct hr_store *hr_store_memory_new(uv_loop_t *loop);
/* The SQLite store: DIR/herald.db in WAL mode (created if missing). Returns NULL with a
 * one-line reason in err on failure. */
struct hr_store *hr_store_sqlite_new(uv_loop_t *loop, const char *dir, char *err, size_t errlen);

#endif
