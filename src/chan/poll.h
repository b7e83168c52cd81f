/* poll.h - one poll answer (GET /poll and GET /lp, poll.c) as a short-lived subscriber stream
 * (stream.h): history after the cursor is read into a batch of at most max messages - one page
 * of it, so fewer when a page read from the store stops at its bytes - and answered once the
 * page is in; a long poll with nothing to say stays in the channel until the first message
 * or its timeout. Apart from HTTP, so unit tests drive it on a hub alone. */
#ifndef HR_CHAN_POLL_H
#define HR_CHAN_POLL_H

#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "net/conn.h"
#include "stream.h"

struct hr_poll;

/* The polls of a loop share one timer (no timer per poll): a held long poll waits on a list
 * ordered by deadline (each joins at its place from the tail, so at the tail when they all
 * have the same timeout), and an answered poll on a list freed on the next turn. The timer
 * exists while there are polls. */
struct hr_poll_clock {
    uv_loop_t *loop;
    uv_timer_t *timer;
    uint64_t due;                /* the timer's, while it runs */
    struct hr_poll *head, *tail; /* long polls waiting, by deadline */
    struct hr_poll *dead;        /* polls that ended, freed after the loop turn */
};
void hr_poll_clock_init(struct hr_poll_clock *k, uv_loop_t *loop);
/* Every long poll waiting answers now, as at its timeout (the server is stopping). */
void hr_poll_clock_release(struct hr_poll_clock *k);

/* The answer: status 0 (p->gap, p->items, p->next, p->more; hr_poll_frame frames them), or
 * < 0 when the history could not be read. Called once, maybe inside hr_poll_start; the poll
 * leaves its channel when it returns and is freed by the loop later. */
typedef void (*hr_poll_answer_cb)(struct hr_poll *p, int status);

struct hr_poll {
    struct hr_chan_stream st; /* first */
    struct hr_poll_clock *clock;
    struct hr_poll *lprev, *lnext; /* on the clock's list of long polls waiting, or its dead */
    uint64_t deadline;             /* loop ms a waiting long poll answers empty */
    hr_poll_answer_cb answer_cb;
    void *ud;               /* the caller's */
    const char *gap;        /* "trimmed", "epoch", "unknown" or NULL */
    struct hr_slice *items; /* the messages' shared HR_FMT_POLL encodings, referenced */
    uint32_t n, cap, max;
    uint64_t next;       /* the id the reader sends back as its cursor */
    uint32_t timeout_ms; /* 0: a short poll */
    uint8_t more;        /* the history goes on after next */
    uint8_t waiting;     /* a long poll in the channel, for the next message */
    uint8_t oom, done;
    uint8_t timed; /* on the clock's list of long polls waiting */
};

/* A poll of ch answering at most max messages (up to HR_HUB_PAGE_MAX); timeout_ms 0 for a
 * short poll, else a long poll held at most that long (on clock's timer). NULL when out of
 * memory. */
struct hr_poll *hr_poll_new(struct hr_poll_clock *clock, struct hr_channel *ch, uint32_t max,
                            uint32_t timeout_ms, hr_poll_answer_cb cb, void *ud);
/* Read after cur, from the start of the history when cur is NULL. */
void hr_poll_start(struct hr_poll *p, const struct hr_cursor *cur);
/* The request went away: no answer; the poll leaves its channel and is freed later. */
void hr_poll_cancel(struct hr_poll *p);
/* Inside answer_cb: the answer's JSON around its messages, head ending in '[' and tail
 * starting with ']' (the messages go between, comma-separated). 0 or HR_ENOMEM. */
int hr_poll_frame(const struct hr_poll *p, struct hr_buf **head, struct hr_buf **tail);

#endif
