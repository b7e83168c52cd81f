/* stream.h - one subscriber stream for every reader of a channel that stays connected (SSE,
 * WebSocket channels; Socket.IO rooms next): start from a cursor, paged replay as the output
 * drains, going live, and the slow-consumer policies of hub.h, written once. A transport
 * embeds struct hr_chan_stream and gives an ops table: its encoding, its writes, its notices,
 * how it closes, and what its output holds.
 *
 * Life of a stream: hr_chan_stream_init, then hr_chan_stream_start (a gap notice first when
 * the cursor cannot be resumed exactly, then history a page at a time, then live). The
 * transport calls hr_chan_stream_drained when its output drains, hr_chan_stream_shed when the
 * memory budget picks it, and hr_chan_stream_stop when it goes away (then frees it). An op
 * may itself stop the stream when closing() answers true from then on: no op is called after
 * it (the transport frees it later, outside the op). */
#ifndef HR_CHAN_STREAM_H
#define HR_CHAN_STREAM_H

#include <stdint.h>

#include "hub/hub.h"
#include "wire.h"

struct hr_chan_stream;

/* What the hub calls on a stream: every ops table starts with it (HR_CHAN_STREAM_SUB_OPS), so
 * the stream's sub.ops is its ops table too and a stream stores no second pointer. */
int hr_chan_stream_deliver(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m);
#define HR_CHAN_STREAM_SUB_OPS                                                                     \
    {                                                                                              \
        .deliver = hr_chan_stream_deliver                                                          \
    }

struct hr_chan_stream_ops {
    struct hr_sub_ops sub; /* first: HR_CHAN_STREAM_SUB_OPS */
    uint8_t fmt;           /* HR_FMT_*: the transport's wire format, for the hub's counts */
    /* m in the transport's encoding, shared by every subscriber (hr_hub_encoding); borrowed.
     * NULL when out of memory. */
    struct hr_buf *(*encode)(struct hr_chan_stream *s, struct hr_hub_msg *m);
    /* Send enc (from encode; for coalesce, one kept since) as message id. 0 when queued. */
    int (*write)(struct hr_chan_stream *s, struct hr_buf *enc, uint64_t id);
    /* A gap notice: reason "trimmed", "epoch", "unknown" (history after the reader's cursor
     * is gone, or the cursor is not this channel's) or "slow" (skip policy: ids missed_from
     * to missed_to were dropped); first is the next id it will get. missed_from is 0 when
     * no range is given (every reason but "slow"). */
    void (*write_gap)(struct hr_chan_stream *s, const char *reason, uint64_t first,
                      uint64_t missed_from, uint64_t missed_to);
    /* Policy "disconnect": tell the reader it is too slow and close; it resumes from its
     * cursor when it comes back. */
    void (*close_slow)(struct hr_chan_stream *s);
    /* The stream cannot go on (what: "history read failed", "out of memory"; status: the
     * HR_E* error): close, the reader resumes from its cursor. */
    void (*close_error)(struct hr_chan_stream *s, int status, const char *what);
    /* The output: closing (nothing more is sent), full (over the high watermark and not yet
     * drained: a replay waits), over (a slow consumer, hr_conn_over). */
    int (*closing)(const struct hr_chan_stream *s);
    int (*full)(const struct hr_chan_stream *s);
    int (*over)(const struct hr_chan_stream *s);
    /* Optional, for a reader answered once (a poll): a page of history was handed to write,
     * and the replay reached the last id (called before going live: the stream stays out of
     * the channel when closing() answers true afterwards). */
    void (*page_done)(struct hr_chan_stream *s);
    void (*caught_up)(struct hr_chan_stream *s);
};

/* A stream is its hub subscriber and nothing more: sub.ops is its ops table, sub.ch its
 * channel while the stream lives, sub.last how far a replay got (the last id sent from
 * history), sub.read a page being read from the store, sub.flags whether it is replaying. */
struct hr_chan_stream {
    struct hr_sub sub; /* the hub hands it back */
};

static inline const struct hr_chan_stream_ops *hr_chan_stream_ops(const struct hr_chan_stream *s)
{
    return (const struct hr_chan_stream_ops *)s->sub.ops;
}

/* Set up s for ch (nothing is sent yet). */
void hr_chan_stream_init(struct hr_chan_stream *s, const struct hr_chan_stream_ops *ops,
                         struct hr_channel *ch);
/* Begin: after cur (a gap notice first when hr_cursor_start finds one), or live from the next
 * message when cur is NULL. The ops may be called from inside. A cursor past the channel's
 * last id on a replica waits first for the commits on their way to it (hr_hub_sync). */
void hr_chan_stream_start(struct hr_chan_stream *s, const struct hr_cursor *cur);
/* The transport's output drained: the replay goes on, or a lagging reader catches up. */
void hr_chan_stream_drained(struct hr_chan_stream *s);
/* The memory budget picked this stream among the largest queues: under "disconnect" it is
 * closed now; skip and coalesce need nothing more (over() holds messages back until it
 * drains). */
void hr_chan_stream_shed(struct hr_chan_stream *s);
/* The transport goes away: a read under way is cancelled, the stream leaves its channel (which
 * may then be forgotten: s->sub.ch is NULL afterwards). No op is called after this. */
void hr_chan_stream_stop(struct hr_chan_stream *s);

/* Call fn for every live stream of hub using ops (an SSE heartbeat, say). fn must not stop
 * streams. */
void hr_chan_stream_each(struct hr_hub *hub, const struct hr_chan_stream_ops *ops,
                         void (*fn)(struct hr_chan_stream *s, void *ud), void *ud);

#endif
