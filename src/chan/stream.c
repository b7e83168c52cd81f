/* stream.c - the subscriber stream shared by the channel transports: paged replay, gap
 * notices, going live and the slow-consumer policies (hub.h). */
#include "stream.h"

#include "core/error.h"

static const struct hr_sub_ops stream_sub_ops;

/* The one place a message leaves: sub.last is what the reader was last sent (coalesce
 * compares against it). */
static int send_enc(struct hr_chan_stream *s, struct hr_buf *enc, uint64_t id)
{
    int rc = s->ops->write(s, enc, id);
    if (rc == 0)
        s->sub.last = id;
    return rc;
}

static int send_msg(struct hr_chan_stream *s, struct hr_hub_msg *m)
{
    struct hr_buf *enc = s->ops->encode(s, m);
    if (!enc) {
        /* never skipped silently: the reader comes back and resumes from its cursor */
        s->ops->close_error(s, HR_ENOMEM, "out of memory");
        return HR_ENOMEM;
    }
    return send_enc(s, enc, m->id);
}

void hr_chan_stream_init(struct hr_chan_stream *s, const struct hr_chan_stream_ops *ops,
                         struct hr_channel *ch)
{
    *s = (struct hr_chan_stream){
        .sub = {.ops = &stream_sub_ops, .fmt = ops->fmt}, .ops = ops, .ch = ch};
}

/* A lagging reader caught up (its output drained, or a message found it below the limit):
 * skip says what it missed; coalesce sends the newest message held back unless next is
 * newer. */
static void catch_up(struct hr_chan_stream *s, struct hr_channel *ch, uint64_t next)
{
    s->sub.lagging = 0;
    if (ch->policy == HR_POLICY_SKIP) {
        s->ops->write_gap(s, "slow", next, s->sub.lag_from, next - 1);
    } else if (s->sub.owed) {
        struct hr_buf *enc = s->sub.owed;
        s->sub.owed = NULL;
        if (s->sub.owed_id > s->sub.last && s->sub.owed_id < next)
            send_enc(s, enc, s->sub.owed_id);
        hr_buf_unref(enc);
    }
}

static int deliver(struct hr_sub *sub, struct hr_channel *ch, struct hr_hub_msg *m)
{
    struct hr_chan_stream *s = (struct hr_chan_stream *)sub;
    if (s->ops->closing(s))
        return HR_ECLOSED;
    /* a reader that does not keep up is never buffered for without bound (hub.h); nor is one
     * the memory budget picked among the largest queues (shed) */
    if (s->ops->over(s)) {
        if (ch->policy == HR_POLICY_DISCONNECT) {
            s->ops->close_slow(s);
            return HR_ECLOSED;
        }
        if (!sub->lagging) {
            sub->lagging = 1;
            sub->lag_from = m->id;
        }
        if (ch->policy == HR_POLICY_COALESCE)
            hr_sub_owe(sub, s->ops->encode(s, m), m->id);
        return 0;
    }
    if (sub->lagging)
        catch_up(s, ch, m->id);
    return send_msg(s, m) < 0 ? HR_ECLOSED : 0;
}

static const struct hr_sub_ops stream_sub_ops = {.deliver = deliver};

/* ---- resuming: history is sent a page at a time, as the reader's output drains, then the
 * stream goes live; so a long replay holds at most about --max-queued of memory and is not
 * mistaken for a slow consumer. */

static void pump(struct hr_chan_stream *s);

/* A page of history: sent until the output is full (the rest is read again later). A page
 * from the store arrives later: the replay goes on from here. */
static void replay_page(void *ud, struct hr_channel *ch, const struct hr_hub_page *pg)
{
    struct hr_chan_stream *s = ud;
    int later = s->req != NULL;
    s->req = NULL;
    if (s->ops->closing(s))
        return;
    if (pg->status < 0) {
        s->ops->close_error(s, pg->status, "history read failed");
        return;
    }
    /* history may have been trimmed while this reader was catching up */
    if (s->replay_after + 1 < pg->first) {
        s->ops->write_gap(s, "trimmed", pg->first, 0, 0);
        s->replay_after = pg->first - 1;
    }
    for (uint32_t i = 0; i < pg->n && !s->ops->closing(s); i++) {
        if (pg->m[i]->id <= s->replay_after)
            continue;
        s->replay_after = pg->m[i]->id;
        if (send_msg(s, pg->m[i]) < 0 || s->ops->full(s))
            break;
    }
    if (s->ops->page_done && !s->ops->closing(s))
        s->ops->page_done(s);
    if (later)
        pump(s);
}

static void pump(struct hr_chan_stream *s)
{
    struct hr_channel *ch = s->ch;
    while (!s->ops->closing(s) && !s->req) {
        if (s->replay_after >= ch->last_id) {
            if (s->ops->caught_up) {
                s->ops->caught_up(s);
                if (s->ops->closing(s))
                    return;
            }
            s->replaying = 0;
            hr_hub_subscribe(ch, &s->sub);
            return;
        }
        if (s->ops->full(s))
            return; /* hr_chan_stream_drained goes on */
        uint64_t before = s->replay_after;
        int rc = hr_hub_read(ch, s->replay_after, HR_HUB_PAGE_MAX, replay_page, s, &s->req);
        if (rc < 0) {
            s->ops->close_error(s, rc, "history read failed");
            return;
        }
        /* nothing more to read though last_id is ahead: go live (cannot happen while ids
         * are dense; guards the loop) */
        if (rc == 0 && s->replay_after == before && !s->ops->full(s) && !s->ops->closing(s))
            s->replay_after = ch->last_id;
    }
}

void hr_chan_stream_start(struct hr_chan_stream *s, const struct hr_cursor *cur)
{
    struct hr_channel *ch = s->ch;
    s->replaying = 1;
    s->replay_after = ch->last_id; /* no cursor: live from the next message */
    if (cur) {
        const char *gap = hr_cursor_start(cur, ch, &s->replay_after);
        if (gap) {
            s->ops->write_gap(s, gap, hr_hub_first_id(ch), 0, 0);
            if (s->ops->closing(s))
                return;
            s->replay_after = hr_hub_first_id(ch) - 1;
        }
    }
    pump(s);
}

void hr_chan_stream_drained(struct hr_chan_stream *s)
{
    if (!s->ch || s->ops->closing(s))
        return;
    if (s->replaying) {
        if (!s->req)
            pump(s);
    } else if (s->sub.lagging && s->sub.ch) {
        catch_up(s, s->sub.ch, s->sub.ch->last_id + 1);
    }
}

void hr_chan_stream_shed(struct hr_chan_stream *s)
{
    if (s->ch && s->ch->policy == HR_POLICY_DISCONNECT)
        s->ops->close_slow(s);
}

void hr_chan_stream_stop(struct hr_chan_stream *s)
{
    struct hr_channel *ch = s->ch;
    hr_hub_read_cancel(s->req);
    s->req = NULL;
    hr_hub_unsubscribe(&s->sub);
    s->ch = NULL;
    if (ch)
        hr_hub_forget_unused(ch);
}

void hr_chan_stream_each(struct hr_hub *hub, const struct hr_chan_stream_ops *ops,
                         void (*fn)(struct hr_chan_stream *s, void *ud), void *ud)
{
    struct hr_channel *ch, *tmp;
    HASH_ITER(hh, hub->channels, ch, tmp)
    {
        for (struct hr_sub *sub = ch->subs; sub; sub = sub->next) {
            struct hr_chan_stream *s = (struct hr_chan_stream *)sub;
            if (sub->ops == &stream_sub_ops && s->ops == ops)
                fn(s, ud);
        }
    }
}
