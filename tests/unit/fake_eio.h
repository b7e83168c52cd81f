/* fake_eio.h - for the Socket.IO unit tests: an Engine.IO polling session nobody polls, whose
 * queue the test reads record by record. */
#ifndef HR_TEST_FAKE_EIO_H
#define HR_TEST_FAKE_EIO_H

#include <stdlib.h>
#include <string.h>

#include "core/budget.h"
#include "core/buf.h"
#include "eio/eio.h"

/* Records queued on es and not taken yet. */
static inline uint32_t fake_eio_len(const struct hr_eio_session *es)
{
    return es->poll ? es->poll->queue_len : 0;
}

/* Their bytes. */
static inline size_t fake_eio_bytes(const struct hr_eio_session *es)
{
    return es->poll ? es->poll->queue_bytes : 0;
}

/* The buffer record i is a slice of. */
static inline struct hr_buf *fake_eio_buf(const struct hr_eio_session *es, uint32_t i)
{
    return es->poll && i < es->poll->queue_len ? es->poll->queue[i].buf : NULL;
}

/* The records queued on es not taken yet (at most max), each NUL-terminated (cut at 255
 * bytes), into out; they leave the queue. Returns how many. */
static inline int fake_eio_take(struct hr_eio_session *es, char out[][256], int max)
{
    struct hr_eio_poll *p = es->poll;
    int n = 0;
    for (; p && n < max && (uint32_t)n < p->queue_len; n++) {
        struct hr_slice *r = &p->queue[n];
        size_t len = r->len < 255 ? r->len : 255;
        memcpy(out[n], r->buf->data + r->off, len);
        out[n][len] = '\0';
        hr_budget_queue_release(&p->bq, r->len);
        p->queue_bytes -= r->len;
        hr_buf_unref(r->buf);
    }
    if (!n)
        return 0;
    p->queue_len -= (uint32_t)n;
    memmove(p->queue, p->queue + n, p->queue_len * sizeof(*p->queue));
    return n;
}

/* Drop what es still holds (the session itself is the test's). */
static inline void fake_eio_free(struct hr_eio_session *es)
{
    char drop[1][256];
    while (fake_eio_take(es, drop, 1))
        ;
    if (es->poll) {
        hr_budget_queue_forget(&es->poll->bq);
        free(es->poll->queue);
        free(es->poll);
        es->poll = NULL;
    }
}

#endif
