/* stream.c - the subscriber stream shared by the channel transports: paged replay, gap
 * notices, going live and the slow-consumer policies (hub.h). */
#include "stream.h"

#include "core/error.h"
#include "core/metrics.h"

#define OPS(s) hr_chan_stream_ops(s)

/* sub.flags: not yet live; waited for the commits on their way here (hr_hub_sync) */
enum { REPLAYING = 1, SYNCED = 2 };

/* The one place a message leaves: sub.last is what the reader was last sent (coalesce
 * compares against it). */
static int send_enc(struct hr_chan_stream *s, struct hr_buf *enc, uint64_t id)
{
    int rc = OPS(s)->write(s, enc, id);
    if (rc == 0) {
        s->sub.last = id;
        HR_METRIC_INC(msgs_out);
    }
    return rc;
}

static int send_msg(struct hr_chan_stream *s, struct hr_hub_msg *m)
{
    struct hr_buf *enc = OPS(s)->encode(s, m);
    if (!enc) {
        /* never skipped silently: the reader comes back and resumes from its cursor */
        OPS(s)->close_error(s, HR_ENOMEM, "out of memory");
        return HR_ENOMEM;
    }
    return send_enc(s, enc, m->id);
}

void hr_chan_stream_init(struct hr_chan_stream *s, const struct hr_chan_stream_ops *ops,
                         struct hr_channel *ch)
{
    *s = (struct hr_chan_stream){.sub = {.ops = &ops->sub, .ch = ch, .fmt = ops->fmt}};
}

/* A lagging reader caught up (its output drained, or a message found it below the limit):
 * skip says what it missed; coalesce sends the newest message held back unless next is
 * newer. */
static void catch_up(struct hr_chan_stream *s, struct hr_channel *ch, uint64_t next)
{
    s->sub.lagging = 0;
    if (ch->policy == HR_POLICY_SKIP) {
        OPS(s)->write_gap(s, "slow", next, s->sub.lag, next - 1);
    } else if (s->sub.owed) {
        struct hr_buf *enc = s->sub.owed;
        s->sub.owed = NULL;
        if (s->sub.lag > s->sub.last && s->sub.lag < next)
            send_enc(s, enc, s->sub.lag);
        hr_buf_unref(enc);
    }
}

int hr_chan_stream_deliver(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m)
{
    struct hr_chan_stream *s = (struct hr_chan_stream *)sub;
    if (OPS(s)->closing(s))
        return HR_ECLOSED;
    /* a reader that does not keep up is never buffered for without bound (hub.h); nor is one
     * the memory budget picked among the largest queues (shed) */
    if (OPS(s)->over(s)) {
        /* disconnect: the reader goes (it resumes from its cursor); skip: this message is
         * not sent; coalesce: the one owed before is replaced */
        HR_METRIC_INC(drops[ch->policy < HR_MT_POLICIES ? ch->policy : 0]);
        if (ch->policy == HR_POLICY_DISCONNECT) {
            OPS(s)->close_slow(s);
            return HR_ECLOSED;
        }
        if (!sub->lagging) {
            sub->lagging = 1;
            sub->lag = m->id; /* skip: the first held back (coalesce: hr_sub_owe's) */
        }
        if (ch->policy == HR_POLICY_COALESCE)
            hr_sub_owe(sub, OPS(s)->encode(s, m), m->id);
        return 0;
    }
    if (sub->lagging)
        catch_up(s, ch, m->id);
    return send_msg(s, m) < 0 ? HR_ECLOSED : 0;
}

/* ---- resuming: history is sent a page at a time, as the reader's output drains, then the
 * stream goes live; so a long replay holds at most about --max-queued of memory and is not
 * mistaken for a slow consumer. sub.last is how far the replay got. */

static void pump(struct hr_chan_stream *s);

/* A page of history: sent until the output is full (the rest is read again later). A page
 * from the store arrives later: the replay goes on from here. */
static void replay_page(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg)
{
    struct hr_chan_stream *s = ud;
    int later = s->sub.read != NULL;
    s->sub.read = NULL;
    if (OPS(s)->closing(s))
        return;
    if (pg->status < 0) {
        OPS(s)->close_error(s, pg->status, "history read failed");
        return;
    }
    /* history may have been trimmed while this reader was catching up */
    if (s->sub.last + 1 < pg->first) {
        OPS(s)->write_gap(s, "trimmed", pg->first, 0, 0);
        s->sub.last = pg->first - 1;
    }
    for (uint32_t i = 0; i < pg->n && !OPS(s)->closing(s); i++) {
        if (pg->m[i]->id <= s->sub.last)
            continue;
        s->sub.last = pg->m[i]->id;
        if (send_msg(s, pg->m[i]) < 0 || OPS(s)->full(s))
            break;
    }
    if (OPS(s)->page_done && !OPS(s)->closing(s))
        OPS(s)->page_done(s);
    if (later)
        pump(s);
}

static void pump(struct hr_chan_stream *s)
{
    struct hr_channel *ch = s->sub.ch;
    while (!OPS(s)->closing(s) && !s->sub.read) {
        if (s->sub.last >= ch->last_id) {
            if (OPS(s)->caught_up) {
                OPS(s)->caught_up(s);
                if (OPS(s)->closing(s))
                    return;
            }
            s->sub.flags &= (uint8_t)~REPLAYING;
            hr_hub_subscribe(ch, &s->sub);
            return;
        }
        if (OPS(s)->full(s))
            return; /* hr_chan_stream_drained goes on */
        uint64_t before = s->sub.last;
        int rc = hr_hub_read(ch, s->sub.last, HR_HUB_PAGE_MAX, replay_page, s, &s->sub.read);
        if (rc < 0) {
            OPS(s)->close_error(s, rc, "history read failed");
            return;
        }
        /* nothing more to read though last_id is ahead: go live (cannot happen while ids
         * are dense; guards the loop) */
        if (rc == 0 && s->sub.last == before && !OPS(s)->full(s) && !OPS(s)->closing(s))
            s->sub.last = ch->last_id;
    }
}

static void synced(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg)
{
    struct hr_chan_stream *s = ud;
    (void)ch;
    (void)pg;
    s->sub.read = NULL;
    struct hr_cursor cur = {.id = s->sub.last}; /* of this channel: its epoch was checked */
    hr_chan_stream_start(s, &cur);
}

void hr_chan_stream_start(struct hr_chan_stream *s, const struct hr_cursor *cur)
{
    struct hr_channel *ch = s->sub.ch;
    s->sub.flags |= REPLAYING;
    if (cur && cur->id > ch->last_id && hr_cursor_of(cur, ch) && !(s->sub.flags & SYNCED)) {
        /* an id past what this worker knows: maybe another one has delivered it already */
        s->sub.flags |= SYNCED;
        s->sub.last = cur->id;
        int rc = hr_hub_sync(ch->hub, ch, synced, s, &s->sub.read);
        if (rc < 0) {
            OPS(s)->close_error(s, rc, "history read failed");
            return;
        }
        if (rc == 1)
            return; /* synced goes on */
    }
    s->sub.last = ch->last_id; /* no cursor: live from the next message */
    if (cur) {
        const char *gap = hr_cursor_start(cur, ch, &s->sub.last);
        if (gap) {
            OPS(s)->write_gap(s, gap, hr_hub_first_id(ch), 0, 0);
            if (OPS(s)->closing(s))
                return;
            s->sub.last = hr_hub_first_id(ch) - 1;
        }
    }
    pump(s);
}

void hr_chan_stream_drained(struct hr_chan_stream *s)
{
    if (!s->sub.ch || OPS(s)->closing(s))
        return;
    if (s->sub.flags & REPLAYING) {
        if (!s->sub.read)
            pump(s);
    } else if (s->sub.lagging && s->sub.subscribed) {
        catch_up(s, s->sub.ch, s->sub.ch->last_id + 1);
    }
}

void hr_chan_stream_shed(struct hr_chan_stream *s)
{
    if (s->sub.ch && s->sub.ch->policy == HR_POLICY_DISCONNECT) {
        HR_METRIC_INC(drops[HR_POLICY_DISCONNECT]);
        OPS(s)->close_slow(s);
    }
}

void hr_chan_stream_stop(struct hr_chan_stream *s)
{
    struct hr_channel *ch = s->sub.ch;
    if (!s->sub.subscribed) {
        hr_hub_read_cancel(s->sub.read);
        s->sub.read = NULL;
    }
    hr_hub_unsubscribe(&s->sub);
    s->sub.ch = NULL;
    if (ch)
        hr_hub_forget_unused(ch);
}

void hr_chan_stream_each(struct hr_hub *hub, const struct hr_chan_stream_ops *ops,
                         void (*fn)(struct hr_chan_stream *s, void *ud), void *ud)
{
    struct hr_channel *ch, *tmp;
    HASH_ITER(hh, hub->channels, ch, tmp)
    {
        for (struct hr_sub *sub = ch->subs; sub; sub = sub->next)
            if (sub->ops == &ops->sub)
                fn((struct hr_chan_stream *)sub, ud);
    }
}
