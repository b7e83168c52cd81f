/* memory.c - the memory store: persists nothing, so history lives only in the hub. It exists
 * so the hub has one code path: append still acknowledges asynchronously, on the next loop
 * turn and in append order, exactly like a store that writes to disk. */
#include <stdlib.h>

#include "core/error.h"
#include "core/id.h"
#include "store.h"

/* One acknowledgement waiting for the next loop turn. */
struct pending {
    struct pending *next;
    hr_store_done_cb done;
    void *ud;
};

struct memory_store {
    struct hr_store base;
    /* Runs the queued acknowledgements. Started only while the FIFO is non-empty, so an idle
     * store never keeps the loop alive, and an idle handle makes the loop poll without
     * blocking, so "next turn" comes at once. */
    uv_idle_t idle;
    struct pending *head, *tail;
    int closing;
};

static int mem_load(struct hr_store *st, hr_store_each_cb each, void *ud)
{
    return 0;
}

/* Take one acknowledgement off the front of the FIFO and run it. */
static void run_one(struct memory_store *ms)
{
    struct pending *p = ms->head;
    ms->head = p->next;
    if (!ms->head)
        ms->tail = NULL;
    hr_store_done_cb done = p->done;
    void *ud = p->ud;
    free(p);
    done(ud, 0);
}

static void idle_cb(uv_idle_t *h)
{
    struct memory_store *ms = h->data;
    /* Only what was queued before this turn: an append made from a done callback is
     * acknowledged on the following turn, never inside the append. Popping one at a time
     * from the store's own list (not a detached copy) keeps order if a callback closes us. */
    size_t n = 0;
    for (struct pending *p = ms->head; p; p = p->next)
        n++;
    while (n-- > 0 && ms->head)
        run_one(ms);
    if (!ms->head && !ms->closing)
        uv_idle_stop(&ms->idle);
}

static int mem_append(struct hr_store *st, const char *channel, uint64_t id, int64_t time_ms,
                      struct hr_buf *data, hr_store_done_cb done, void *ud)
{
    struct memory_store *ms = (struct memory_store *)st;
    if (ms->closing)
        return HR_ECLOSED;
    /* data is not referenced: the hub's history is the only copy there is */
    if (!done)
        return 0; /* nothing to keep and nobody to tell */
    struct pending *p = malloc(sizeof(*p));
    if (!p)
        return HR_ENOMEM;
    p->next = NULL;
    p->done = done;
    p->ud = ud;
    if (ms->tail)
        ms->tail->next = p;
    else
        ms->head = p;
    ms->tail = p;
    uv_idle_start(&ms->idle, idle_cb);
    return 0;
}

static int mem_trim(struct hr_store *st, const char *channel, uint64_t keep_from)
{
    return 0;
}

static void free_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Acknowledgements still queued run here, in order (they are as durable as they will ever
 * be). The idle handle is then closed and the store freed from its close callback: when
 * close() is called after uv_run has returned, the caller must run the loop once more
 * (uv_run(loop, UV_RUN_DEFAULT) returns as soon as the close callbacks have run) before
 * uv_loop_close. */
static void mem_close(struct hr_store *st)
{
    struct memory_store *ms = (struct memory_store *)st;
    if (ms->closing)
        return;
    ms->closing = 1;
    while (ms->head)
        run_one(ms);
    uv_close((uv_handle_t *)&ms->idle, free_cb);
}

static const struct hr_store_ops memory_ops = {
    .name = "memory",
    .load = mem_load,
    .append = mem_append,
    .trim = mem_trim,
    .close = mem_close,
};

struct hr_store *hr_store_memory_new(uv_loop_t *loop)
{
    struct memory_store *ms = calloc(1, sizeof(*ms));
    if (!ms)
        return NULL;
    ms->base.ops = &memory_ops;
    /* nothing survives a restart, so every memory store is a new history */
    hr_random_id(ms->base.epoch);
    if (uv_idle_init(loop, &ms->idle) < 0) {
        free(ms);
        return NULL;
    }
    ms->idle.data = ms;
    return &ms->base;
}
