/* fake_eio.h - for the Socket.IO unit tests: an Engine.IO polling session nobody polls, whose
 * queue the test reads record by record. */
#ifndef HR_TEST_FAKE_EIO_H
#define HR_TEST_FAKE_EIO_H

#include <string.h>

#include "core/budget.h"
#include "core/buf.h"
#include "eio/eio.h"

/* The records queued on es not taken yet (at most max), each NUL-terminated (cut at 255
 * bytes), into out; they leave the queue. Returns how many. */
static inline int fake_eio_take(struct hr_eio_session *es, char out[][256], int max)
{
    int n = 0;
    for (; n < max && (uint32_t)n < es->queue_len; n++) {
        struct hr_slice *r = &es->queue[n];
        size_t len = r->len < 255 ? r->len : 255;
        memcpy(out[n], r->buf->data + r->off, len);
        out[n][len] = '\0';
        hr_budget_queue_release(&es->bq, r->len);
        es->queue_bytes -= r->len;
        hr_buf_unref(r->buf);
    }
    es->queue_len -= (uint32_t)n;
    if (n)
        memmove(es->queue, es->queue + n, es->queue_len * sizeof(*es->queue));
    return n;
}

#endif
