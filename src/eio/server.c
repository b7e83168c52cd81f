/* server.c - Engine.IO v4 server: sessions, the polling and WebSocket transports, the upgrade
 * (2probe / 3probe / 5, the held GET released with a noop), the heartbeat, CORS, and the
 * reference server's error answers {"code":N,"message":"..."}. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "core/budget.h"
#include "core/error.h"
#include "core/id.h"
#include "core/log.h"
#include "core/metrics.h"
#include "eio.h"

/* The reference server's errors (engine.io Server.errors). */
enum {
    ERR_TRANSPORT = 0,
    ERR_SID = 1,
    ERR_METHOD = 2,
    ERR_BAD = 3,
    ERR_FORBIDDEN = 4,
    ERR_VERSION = 5
};
static const char *const err_text[] = {
    "Transport unknown", "Session ID unknown", "Bad handshake method",
    "Bad request",       "Forbidden",          "Unsupported protocol version"};

#define NO_STORE "Cache-Control: no-store\r\n"

static void session_close(struct hr_eio_session *s, const char *reason, int by_client);
static void queue_shed_cb(struct hr_budget_queue *q, int hard);
static void flush(struct hr_eio_session *s);
static void close_slow_now(struct hr_eio_session *s);

/* ---- messages ---------------------------------------------------------------------------- */

int hr_eio_sid_worker(const char *sid, size_t len)
{
    const char *p = len ? memchr(HR_EIO_SID_ALPHABET, sid[0], 64) : NULL;
    return p ? (int)(p - HR_EIO_SID_ALPHABET) : -1;
}

int hr_eio_msg_init(struct hr_eio_msg *m, int binary, const void *data, size_t len)
{
    memset(m, 0, sizeof(*m));
    if (binary) {
        m->frame = hr_buf_new(len + 10);
        struct hr_buf *rec = hr_eio_encode_base64(data, len);
        if (!m->frame || !rec) {
            hr_buf_unref(m->frame);
            hr_buf_unref(rec);
            return HR_ENOMEM;
        }
        m->frame->len =
            (uint32_t)hr_ws_frame_header((uint8_t *)m->frame->data, 1, HR_WS_OP_BINARY, len);
        memcpy(m->frame->data + m->frame->len, data, len);
        m->frame->len += (uint32_t)len;
        m->record = (struct hr_slice){rec, 0, rec->len};
        return 0;
    }
    /* text: the frame's payload "4<data>" is also the polling record */
    char *payload;
    struct hr_buf *f = hr_eio_text_frame(len, &payload);
    if (!f)
        return HR_ENOMEM;
    memcpy(payload, data, len);
    hr_eio_msg_of_frame(m, f);
    return 0;
}

struct hr_buf *hr_eio_text_frame(size_t len, char **payload)
{
    if (len > UINT32_MAX - 16)
        return NULL;
    struct hr_buf *f = hr_buf_new(len + 11);
    if (!f)
        return NULL;
    uint32_t h = (uint32_t)hr_ws_frame_header((uint8_t *)f->data, 1, HR_WS_OP_TEXT, len + 1);
    f->data[h] = '0' + HR_EIO_MESSAGE;
    f->len = h + 1 + (uint32_t)len;
    *payload = f->data + h + 1;
    return f;
}

/* Where a frame's payload starts: a server's frames are unmasked, so the header is 2, 4 or 10
 * bytes (hr_ws_frame_header), told by its length byte. */
static uint32_t frame_head(const struct hr_buf *f)
{
    uint8_t l = (uint8_t)f->data[1] & 0x7f;
    return l < 126 ? 2 : l == 126 ? 4 : 10;
}

void hr_eio_msg_of_frame(struct hr_eio_msg *m, struct hr_buf *frame)
{
    uint32_t h = frame_head(frame);
    m->frame = frame;
    m->record = (struct hr_slice){frame, h, frame->len - h};
}

void hr_eio_msg_release(struct hr_eio_msg *m)
{
    if (m->record.buf && m->record.buf != m->frame)
        hr_buf_unref(m->record.buf);
    hr_buf_unref(m->frame);
    memset(m, 0, sizeof(*m));
}

/* A control packet ("2", "3probe", "6", "1") as a message-like pair. */
static int ctl_msg(struct hr_eio_msg *m, int type, const char *data)
{
    size_t len = data ? strlen(data) : 0;
    memset(m, 0, sizeof(*m));
    m->frame = hr_buf_new(len + 11);
    if (!m->frame)
        return HR_ENOMEM;
    uint32_t h = (uint32_t)hr_ws_frame_header((uint8_t *)m->frame->data, 1, HR_WS_OP_TEXT, len + 1);
    m->frame->data[h] = (char)('0' + type);
    memcpy(m->frame->data + h + 1, data ? data : "", len);
    m->frame->len = h + 1 + (uint32_t)len;
    m->record = (struct hr_slice){m->frame, h, (uint32_t)len + 1};
    return 0;
}

/* ---- HTTP answers ------------------------------------------------------------------------ */

/* CORS response headers for this request's Origin: "*", or the origin echoed with credentials
 * when allowed (the cors package's behaviour, which the reference server uses). */
static void cors_headers(const struct hr_eio *eio, const struct hr_http_request *req, char *out,
                         size_t outsz)
{
    out[0] = '\0';
    if (req)
        hr_origins_cors(eio->opts.origins, req, out, outsz);
}

static void eio_error(struct hr_eio *eio, struct hr_conn *c, struct hr_http_request *req, int code)
{
    char cors[512], body[96];
    cors_headers(eio, req, cors, sizeof cors);
    int n = snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"%s\"}", code, err_text[code]);
    hr_metrics_refused(code == 4 ? 403 : 400); /* the protocol's error shape, not hr_http_error's */
    hr_http_respond(c, code == 4 ? 403 : 400, "application/json", cors, body, (size_t)n);
}

/* ---- sessions ---------------------------------------------------------------------------- */

/* A socket's data (hr_ws_data) is the session it carries or probes for; NULL once detached. */
static struct hr_eio_session **sess_of(struct hr_ws *ws)
{
    return hr_ws_data(ws);
}

/* ---- heartbeats: one timer for every session ----------------------------------------------
 * A session's next heartbeat event is due at s->deadline: its ping (list HB_PING) or its
 * pong's deadline (HB_PONG); a slow consumer waits on HB_NOW for the next loop turn. A session
 * joins a list at its place by deadline, found from the tail: every session of a list is
 * scheduled the same time ahead, so that is the tail itself but for the loop's lateness. One
 * timer is set for the earliest head. Closed sessions wait on eio->dead for the same timer,
 * so that no caller finds its session freed under it (they are freed after the loop turn). */

enum { HB_NONE, HB_PING, HB_PONG, HB_NOW, HB_DUE };

static void heartbeat_due(struct hr_eio_session *s);
static void hb_timer_cb(uv_timer_t *t);
static struct hr_eio_poll *poll_of(struct hr_eio_session *s);

static void hb_unlink(struct hr_eio_session *s)
{
    struct hr_eio *eio = s->eio;
    int k = s->hb_list - 1;
    if (!s->hb_list)
        return;
    if (s->hb_prev)
        s->hb_prev->hb_next = s->hb_next;
    else
        eio->hb_head[k] = s->hb_next;
    if (s->hb_next)
        s->hb_next->hb_prev = s->hb_prev;
    else
        eio->hb_tail[k] = s->hb_prev;
    s->hb_prev = s->hb_next = NULL;
    s->hb_list = HB_NONE;
}

static void hb_link(struct hr_eio_session *s, int list)
{
    struct hr_eio *eio = s->eio;
    int k = list - 1;
    struct hr_eio_session *after = eio->hb_tail[k];
    if (list == HB_PING || list == HB_PONG)
        while (after && after->deadline > s->deadline)
            after = after->hb_prev;
    s->hb_prev = after;
    s->hb_next = after ? after->hb_next : eio->hb_head[k];
    if (s->hb_next)
        s->hb_next->hb_prev = s;
    else
        eio->hb_tail[k] = s;
    if (after)
        after->hb_next = s;
    else
        eio->hb_head[k] = s;
    s->hb_list = (uint8_t)list;
}

/* Set the timer for the earliest event, unless it is set for an earlier one already (it then
 * finds nothing due, and sets itself again). */
static void hb_arm(struct hr_eio *eio)
{
    if (!eio->hb)
        return;
    uint64_t now = uv_now(eio->srv->loop), due = UINT64_MAX;
    if (eio->hb_head[HB_NOW - 1] || eio->dead)
        due = now;
    for (int k = HB_PING; k <= HB_PONG; k++)
        if (eio->hb_head[k - 1] && eio->hb_head[k - 1]->deadline < due)
            due = eio->hb_head[k - 1]->deadline;
    if (due == UINT64_MAX || (uv_is_active((uv_handle_t *)eio->hb) && eio->hb_due <= due))
        return;
    eio->hb_due = due;
    uv_timer_start(eio->hb, hb_timer_cb, due > now ? due - now : 0, 0);
}

static void free_dead(struct hr_eio_session *s)
{
    while (s) {
        struct hr_eio_session *next = s->hb_next;
        free(s);
        s = next;
    }
}

static void hb_closed_cb(uv_handle_t *h)
{
    free_dead(h->data);
    free(h);
}

static void hb_timer_cb(uv_timer_t *t)
{
    struct hr_eio *eio = t->data;
    uint64_t now = uv_now(t->loop);
    struct hr_eio_session *dead = eio->dead;
    eio->dead = NULL;
    free_dead(dead); /* closed before this loop turn */
    /* what is due, in order, onto HB_DUE; handled from there, so that a session scheduled
     * again meanwhile waits for the next turn */
    for (;;) {
        struct hr_eio_session *s = eio->hb_head[HB_NOW - 1];
        if (!s) {
            struct hr_eio_session *a = eio->hb_head[HB_PING - 1], *b = eio->hb_head[HB_PONG - 1];
            s = a && (!b || a->deadline <= b->deadline) ? a : b;
            if (!s || s->deadline > now)
                break;
        }
        hb_unlink(s);
        hb_link(s, HB_DUE);
    }
    for (struct hr_eio_session *s; (s = eio->hb_head[HB_DUE - 1]);) {
        hb_unlink(s);
        heartbeat_due(s);
    }
    hb_arm(eio);
}

/* The heartbeat is a schedule of deadlines in loop time: the next ping is due at s->deadline,
 * and once it is sent the pong is due pingTimeout after the ping was due (not after the timer
 * happened to run), so when a session ends does not depend on how late the loop got there. */
static void heartbeat_at(struct hr_eio_session *s, uint64_t due)
{
    s->deadline = due;
    hb_unlink(s);
    hb_link(s, s->awaiting_pong ? HB_PONG : HB_PING);
    hb_arm(s->eio);
}

static struct hr_eio_session *session_new(struct hr_eio *eio, int transport)
{
    struct hr_eio_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (!eio->hb) {
        /* the first session: the heartbeat timer (it closes again with the last one) */
        if (!(eio->hb = malloc(sizeof(*eio->hb)))) {
            free(s);
            return NULL;
        }
        uv_timer_init(eio->srv->loop, eio->hb);
        eio->hb->data = eio;
    }
    s->eio = eio;
    s->transport = (uint8_t)transport;
    if (transport == HR_EIO_POLLING && !poll_of(s)) {
        free(s);
        return NULL;
    }
    for (struct hr_eio_session *other = s; other;) {
        hr_random_id(s->sid);
        if (eio->opts.worker >= 0)
            s->sid[0] = HR_EIO_SID_ALPHABET[eio->opts.worker & 63];
        HASH_FIND_STR(eio->sessions, s->sid, other);
    }
    HASH_ADD_STR(eio->sessions, sid, s);
    eio->count++;
    HR_METRIC_INC(opened[HR_MT_SOCKETIO]);
    /* the loop's time of this iteration: never later than the request that opened the session */
    heartbeat_at(s, uv_now(eio->srv->loop) + eio->opts.ping_interval_ms);
    return s;
}

static int open_payload(struct hr_eio *eio, struct hr_eio_session *s, char *out, size_t outsz)
{
    return snprintf(
        out, outsz,
        "0{\"sid\":\"%s\",\"upgrades\":[%s],\"pingInterval\":%u,\"pingTimeout\":%u,"
        "\"maxPayload\":%u}",
        s->sid, s->transport == HR_EIO_POLLING && eio->opts.allow_upgrades ? "\"websocket\"" : "",
        eio->opts.ping_interval_ms, eio->opts.ping_timeout_ms, eio->opts.max_payload);
}

/* ---- the polling state: a session that polls (or is upgrading) has it; one over WebSocket
 * gives it up once the upgrade completes, and one that opened over WebSocket never has it. */

/* The session's polling state, made on first use (NULL: out of memory). */
static struct hr_eio_poll *poll_of(struct hr_eio_session *s)
{
    if (!s->poll && (s->poll = calloc(1, sizeof(*s->poll)))) {
        s->poll->s = s;
        s->poll->bq.shed = queue_shed_cb;
    }
    return s->poll;
}

/* The held polling GET, or NULL. */
static struct hr_conn *held_get(const struct hr_eio_session *s)
{
    return s->poll ? s->poll->get : NULL;
}

static size_t queue_bytes(const struct hr_eio_session *s)
{
    return s->poll ? s->poll->queue_bytes : 0;
}

static void queue_clear(struct hr_eio_session *s)
{
    struct hr_eio_poll *p = s->poll;
    if (!p)
        return;
    for (uint32_t i = 0; i < p->queue_len; i++)
        hr_buf_unref(p->queue[i].buf);
    p->queue_len = 0;
    p->queue_bytes = 0;
    hr_budget_queue_forget(&p->bq);
}

/* The session polls no more (upgraded, or closed): its held GET and probe were seen to. */
static void poll_free(struct hr_eio_session *s)
{
    if (!s->poll)
        return;
    queue_clear(s);
    free(s->poll->queue);
    free(s->poll);
    s->poll = NULL;
}

/* Over the memory budget, this polling queue is among the largest: Engine.IO's slow-consumer
 * close, as when it passes --max-queued (the client reconnects and recovers). */
static void queue_shed_cb(struct hr_budget_queue *q, int hard)
{
    struct hr_eio_poll *p = (struct hr_eio_poll *)((char *)q - offsetof(struct hr_eio_poll, bq));
    hr_warn("eio %s: %zu bytes queued while over the memory budget; closing", p->s->sid,
            p->queue_bytes);
    session_close(p->s, "transport error", 0);
}

static int queue_push(struct hr_eio_session *s, const struct hr_slice *rec)
{
    struct hr_eio_poll *p = poll_of(s);
    struct hr_slice *q = p ? HR_ARRAY_PUSH(p->queue, p->queue_len, p->queue_cap, 8) : NULL;
    if (!q)
        return HR_ENOMEM;
    *q = (struct hr_slice){hr_buf_ref(rec->buf), rec->off, rec->len};
    p->queue_bytes += rec->len;
    hr_budget_queue_charge(&p->bq, rec->len);
    return 0;
}

/* Answer the held GET with the given records, separated by 0x1E. */
static void answer_get(struct hr_eio_session *s, const struct hr_slice *recs, uint32_t n)
{
    struct hr_conn *c = s->poll->get;
    s->poll->get = NULL;
    hr_http_on_abort(c, NULL, NULL);
    size_t total = n ? n - 1 : 0;
    for (uint32_t i = 0; i < n; i++)
        total += recs[i].len;
    char hdr[560];
    cors_headers(s->eio, hr_http_current(c), hdr, sizeof hdr - 32);
    strcat(hdr, NO_STORE); /* a poll's answer is never to be cached by a proxy */
    if (hr_http_begin(c, 200, "text/plain; charset=UTF-8", hdr, total) < 0)
        return;
    struct hr_slice batch[8];
    unsigned k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            batch[k++] = (struct hr_slice){s->eio->sep, 0, 1};
        batch[k++] = recs[i];
        if (k >= 7) {
            hr_http_sendv(c, batch, k);
            k = 0;
        }
    }
    if (k)
        hr_http_sendv(c, batch, k);
    hr_http_finish(c);
}

/* Answer the held GET with one control packet (noop when the upgrade starts or the client
 * closes, close when the server does). */
static void answer_get_ctl(struct hr_eio_session *s, int type)
{
    struct hr_eio_msg m;
    if (ctl_msg(&m, type, NULL) < 0) {
        hr_conn_close(s->poll->get);
        s->poll->get = NULL;
        return;
    }
    answer_get(s, &m.record, 1);
    hr_eio_msg_release(&m);
}

static void flush(struct hr_eio_session *s)
{
    struct hr_eio_poll *p = s->poll;
    if (!p || !p->get || p->queue_len == 0 || s->upgrading || s->closed)
        return;
    if (hr_conn_closing(p->get))
        return;
    answer_get(s, p->queue, p->queue_len);
    queue_clear(s);
}

static void send_ctl(struct hr_eio_session *s, int type, const char *data)
{
    struct hr_eio_msg m;
    if (ctl_msg(&m, type, data) < 0)
        return;
    hr_eio_send(s, &m);
    hr_eio_msg_release(&m);
}

size_t hr_eio_queued(const struct hr_eio_session *s)
{
    if (s->transport == HR_EIO_WEBSOCKET && s->ws)
        return hr_conn_queued(s->ws->conn);
    return queue_bytes(s);
}

int hr_eio_send(struct hr_eio_session *s, const struct hr_eio_msg *m)
{
    if (s->closed)
        return HR_ECLOSED;
    if (s->transport == HR_EIO_WEBSOCKET && s->ws)
        return hr_ws_send_frame(s->ws, m->frame);
    /* polling (or upgrading): queue the record for the next GET, within the output cap */
    if (queue_bytes(s) + m->record.len > s->eio->srv->limits.max_queued) {
        close_slow_now(s);
        return HR_ECLOSED;
    }
    int rc = queue_push(s, &m->record);
    if (rc == 0)
        flush(s);
    return rc;
}

/* Over --max-queued while polling: Engine.IO's slow-consumer close. */
static void close_slow_now(struct hr_eio_session *s)
{
    hr_warn("eio %s: slow consumer, %zu bytes queued; closing", s->sid, queue_bytes(s));
    session_close(s, "transport error", 0);
}

void hr_eio_close_slow(struct hr_eio_session *s)
{
    if (s->closed || s->slow)
        return;
    s->slow = 1;
    if (s->transport == HR_EIO_WEBSOCKET && s->ws) {
        hr_ws_close(s->ws, HR_WS_CLOSE_POLICY, "slow consumer"); /* its close comes later */
        return;
    }
    /* the heartbeat timer, due now, closes it (heartbeat_due): after the caller's loop turn */
    hb_unlink(s);
    hb_link(s, HB_NOW);
    hb_arm(s->eio);
}

int hr_eio_closing(const struct hr_eio_session *s)
{
    return s->closed || s->slow ||
           (s->transport == HR_EIO_WEBSOCKET && s->ws && s->ws->state != HR_WS_OPEN);
}

int hr_eio_over(const struct hr_eio_session *s)
{
    if (s->transport == HR_EIO_WEBSOCKET && s->ws)
        return hr_conn_over(s->ws->conn);
    return queue_bytes(s) > s->eio->srv->limits.max_queued ||
           (s->poll && s->poll->bq.state != HR_BQ_OK);
}

int hr_eio_full(const struct hr_eio_session *s)
{
    if (s->transport == HR_EIO_WEBSOCKET && s->ws)
        return hr_conn_full(s->ws->conn);
    return queue_bytes(s) > s->eio->srv->limits.max_queued / 2 ||
           (s->poll && s->poll->bq.state != HR_BQ_OK);
}

int hr_eio_queue_frame(struct hr_eio_session *s, struct hr_buf *frame)
{
    if (hr_eio_closing(s))
        return HR_ECLOSED;
    if (s->transport == HR_EIO_WEBSOCKET && s->ws)
        return hr_ws_queue_frame(s->ws, frame);
    uint32_t h = frame_head(frame);
    struct hr_slice rec = {frame, h, frame->len - h};
    int rc = queue_push(s, &rec);
    if (rc == 0)
        flush(s);
    return rc;
}

int hr_eio_send_frame(struct hr_eio_session *s, struct hr_buf *frame)
{
    if (hr_eio_closing(s))
        return HR_ECLOSED;
    size_t len = frame->len - frame_head(frame);
    if (s->transport == HR_EIO_WEBSOCKET && s->ws
            ? hr_conn_queued(s->ws->conn) > s->eio->srv->limits.max_queued
            : queue_bytes(s) + len > s->eio->srv->limits.max_queued) {
        hr_eio_close_slow(s);
        return HR_ECLOSED;
    }
    return hr_eio_queue_frame(s, frame);
}

static void heartbeat_due(struct hr_eio_session *s)
{
    if (s->closed)
        return;
    if (s->slow) {
        close_slow_now(s);
        return;
    }
    if (s->awaiting_pong) {
        session_close(s, "ping timeout", 0);
        return;
    }
    s->awaiting_pong = 1;
    send_ctl(s, HR_EIO_PING, NULL);
    if (!s->closed)
        heartbeat_at(s, s->deadline + s->eio->opts.ping_timeout_ms);
}

static void on_pong(struct hr_eio_session *s)
{
    if (!s->awaiting_pong || s->slow)
        return; /* a slow consumer's close is due on the heartbeat timer */
    s->awaiting_pong = 0;
    heartbeat_at(s, uv_now(s->eio->srv->loop) + s->eio->opts.ping_interval_ms);
}

static void session_close(struct hr_eio_session *s, const char *reason, int by_client)
{
    if (s->closed)
        return;
    s->closed = 1;
    struct hr_eio *eio = s->eio;
    HASH_DEL(eio->sessions, s);
    eio->count--;
    HR_METRIC_INC(closed[HR_MT_SOCKETIO]);
    hb_unlink(s);
    /* At shutdown the client is not told that the session ended on purpose: an Engine.IO close
     * packet means "closed deliberately", and python-socketio then never reconnects (its
     * engineio client disconnects for good on "1"). Like the reference server, a WebSocket
     * gets only its close frame (whatever the reason); unlike it, a held poll is released with a
     * noop rather than a close packet, for the same reason: the client's next request fails
     * (connection refused, or "Session ID unknown" from the restarted server), which every client
     * takes for a lost connection, and it reconnects. */
    int shutdown = strcmp(reason, "server shutting down") == 0;
    struct hr_conn *get = held_get(s);
    if (get && !hr_conn_closing(get)) {
        /* a client's close packet releases the poll with a noop; ours with a close packet */
        s->closed = 0;
        answer_get_ctl(s, by_client || shutdown ? HR_EIO_NOOP : HR_EIO_CLOSE);
        s->closed = 1;
    } else if (get) {
        hr_http_on_abort(get, NULL, NULL);
    }
    if (s->poll)
        s->poll->get = NULL;
    if (s->ws) {
        struct hr_ws *ws = s->ws;
        s->ws = NULL;
        *sess_of(ws) = NULL;
        /* never a close packet over WebSocket, as the reference server: python-socketio
         * would take it for a deliberate close and not reconnect after a ping timeout either */
        hr_ws_close(ws, shutdown ? HR_WS_CLOSE_GOING_AWAY : HR_WS_CLOSE_NORMAL, "");
    }
    if (s->poll && s->poll->probe) {
        *sess_of(s->poll->probe) = NULL;
        hr_ws_close(s->poll->probe, HR_WS_CLOSE_NORMAL, "");
        s->poll->probe = NULL;
    }
    poll_free(s);
    if (eio->h->on_close)
        eio->h->on_close(s, reason, eio->ud);
    /* freed after the loop turn: with the timer when it was the last session */
    s->hb_next = eio->dead;
    eio->dead = s;
    if (eio->count == 0 && eio->hb) {
        uv_timer_t *t = eio->hb;
        eio->hb = NULL;
        t->data = eio->dead;
        eio->dead = NULL;
        uv_close((uv_handle_t *)t, hb_closed_cb);
    } else {
        hb_arm(eio);
    }
}

void hr_eio_close(struct hr_eio_session *s, const char *reason)
{
    session_close(s, reason ? reason : "forced close", 0);
}

/* Whether the session is past its pong deadline at this very moment (the clock read now, not
 * the time the loop cached when this iteration began); if so it is closed ("ping timeout")
 * before anything the client sent is looked at. The timer would close it a moment later
 * anyway, but the loop reads the sockets before it runs the timers that fell due meanwhile:
 * without this check a poll that arrived just after the deadline was answered with the
 * pending ping (200) instead of finding the session gone (400), depending on the order in
 * which the loop happened to see the two. */
static int timed_out(struct hr_eio_session *s)
{
    uv_loop_t *loop = s->eio->srv->loop;
    /* before the next ping went out, the pong is due pingTimeout after that ping was due */
    uint64_t pong_due = s->awaiting_pong ? s->deadline : s->deadline + s->eio->opts.ping_timeout_ms;
    uv_update_time(loop);
    if (uv_now(loop) < pong_due)
        return 0;
    session_close(s, "ping timeout", 0);
    return 1;
}

/* ---- packets from the client ------------------------------------------------------------- */

/* Returns 0, or HR_EINVAL when the session must close with a parse error. */
static int on_packet(struct hr_eio_session *s, const struct hr_eio_packet *p)
{
    switch (p->type) {
    case HR_EIO_PONG: on_pong(s); return 0;
    case HR_EIO_MESSAGE:
        if (s->eio->h->on_message)
            s->eio->h->on_message(s, p->binary, p->data, p->len, s->eio->ud);
        return 0;
    case HR_EIO_CLOSE: session_close(s, "transport close", 1); return 0;
    case HR_EIO_PING:
    case HR_EIO_NOOP: return 0;
    default: return HR_EINVAL; /* open and upgrade never come from a client here */
    }
}

/* ---- WebSocket transport ----------------------------------------------------------------- */

/* Whether ws is the session's upgrade probe. */
static int is_probe(const struct hr_eio_session *s, const struct hr_ws *ws)
{
    return s->poll && s->poll->probe == ws;
}

/* The probe failed or went: the session goes on polling. */
static void probe_gone(struct hr_eio_session *s)
{
    s->poll->probe = NULL;
    s->upgrading = 0;
}

static void complete_upgrade(struct hr_eio_session *s)
{
    struct hr_eio_poll *p = s->poll;
    s->transport = HR_EIO_WEBSOCKET;
    s->ws = p->probe;
    p->probe = NULL;
    s->upgrading = 0;
    if (p->get && !hr_conn_closing(p->get))
        answer_get_ctl(s, HR_EIO_NOOP);
    /* what waited for the next poll now goes over the WebSocket, in order: a text packet's
     * record is its frame's payload, so the frame itself goes (shared, not copied); a binary
     * one waited as base64 and is decoded */
    for (uint32_t i = 0; i < p->queue_len && s->ws; i++) {
        const struct hr_slice *r = &p->queue[i];
        const uint8_t *d = (const uint8_t *)r->buf->data + r->off;
        if (r->off && r->off == frame_head(r->buf) && r->off + r->len == r->buf->len) {
            hr_ws_reply_frame(s->ws, r->buf);
        } else if (r->len > 0 && d[0] == 'b') {
            uint8_t *bin = malloc(r->len);
            long n = bin ? hr_base64_decode((const char *)d + 1, r->len - 1, bin) : HR_ENOMEM;
            if (n >= 0)
                hr_ws_send(s->ws, HR_WS_OP_BINARY, bin, (size_t)n);
            free(bin);
        } else {
            hr_ws_send(s->ws, HR_WS_OP_TEXT, d, r->len);
        }
    }
    poll_free(s); /* polling is over: its GET was answered, its probe is the transport */
    if (!s->closed && s->eio->h->on_upgrade)
        s->eio->h->on_upgrade(s, s->eio->ud);
}

static void ws_message_cb(struct hr_ws *ws, int opcode, const uint8_t *data, size_t len)
{
    struct hr_eio_session *s = *sess_of(ws);
    if (!s || s->closed || timed_out(s))
        return;
    struct hr_eio_packet p;
    /* the parser may unmask in place, and decoding never writes, but keep const-correctness
     * honest: frame data belongs to the WebSocket layer only for this call */
    if (hr_eio_decode_frame((uint8_t *)data, len, opcode == HR_WS_OP_BINARY, &p) < 0) {
        if (is_probe(s, ws)) {
            probe_gone(s);
            *sess_of(ws) = NULL;
            hr_ws_close(ws, HR_WS_CLOSE_PROTOCOL, "");
            flush(s);
        } else {
            session_close(s, "parse error", 0);
        }
        return;
    }
    if (is_probe(s, ws)) {
        if (p.type == HR_EIO_PING && p.len == 5 && memcmp(p.data, "probe", 5) == 0) {
            hr_ws_send(ws, HR_WS_OP_TEXT, "3probe", 6);
            s->upgrading = 1;
            /* release the pending poll so the client can pause polling */
            if (held_get(s) && !hr_conn_closing(held_get(s)))
                answer_get_ctl(s, HR_EIO_NOOP);
        } else if (p.type == HR_EIO_UPGRADE && s->upgrading) {
            complete_upgrade(s);
        } else {
            probe_gone(s);
            *sess_of(ws) = NULL;
            hr_ws_close(ws, HR_WS_CLOSE_PROTOCOL, "");
            flush(s);
        }
        return;
    }
    if (on_packet(s, &p) < 0)
        session_close(s, "parse error", 0);
}

static void ws_drain_cb(struct hr_ws *ws)
{
    struct hr_eio_session *s = *sess_of(ws);
    if (s && ws == s->ws && !s->closed && s->eio->h->on_drain)
        s->eio->h->on_drain(s, s->eio->ud);
}

static void ws_close_cb(struct hr_ws *ws, uint16_t code)
{
    struct hr_eio_session *s = *sess_of(ws);
    if (!s)
        return;
    *sess_of(ws) = NULL;
    if (is_probe(s, ws)) {
        probe_gone(s);
        flush(s);
        return;
    }
    if (ws == s->ws) {
        s->ws = NULL;
        session_close(s, "transport close", 1);
    }
}

struct hr_conn *hr_eio_message_conn(const struct hr_eio_session *s)
{
    return s->ws ? s->ws->conn : s->eio->post;
}

/* ---- requests ---------------------------------------------------------------------------- */

static void get_aborted_cb(struct hr_conn *c, void *ud)
{
    struct hr_eio_session *s = ud;
    if (held_get(s) != c)
        return;
    s->poll->get = NULL;
    /* a poll the client gave up on ends the session (the reference server does the same) */
    session_close(s, "transport close", 1);
}

static void handle_poll_get(struct hr_eio *eio, struct hr_eio_session *s, struct hr_conn *c,
                            struct hr_http_request *req)
{
    struct hr_eio_poll *p = poll_of(s);
    if (!p) {
        hr_http_error(c, 503, NULL, "out of memory");
        return;
    }
    if (p->get) {
        /* two polls at once: the old one gets a close packet, the session ends */
        eio_error(eio, c, req, ERR_BAD);
        session_close(s, "transport error", 0);
        return;
    }
    /* a held GET counts against its address's --max-lp-per-ip until answered; over it, the
     * reference's error shape with 429 (code 3, "Bad request", with its own message) and
     * the session ends, as when a poll fails: the client opens a new one later */
    if (!s->upgrading && !hr_conn_poll_take(c)) {
        char cors[512];
        cors_headers(eio, req, cors, sizeof cors - 20);
        strcat(cors, "Retry-After: 1\r\n");
        static const char body[] = "{\"code\":3,\"message\":\"too many pending long-polls\"}";
        hr_metrics_refused(429);
        hr_http_respond(c, 429, "application/json", cors, body, sizeof body - 1);
        session_close(s, "transport error", 0);
        return;
    }
    p->get = c;
    hr_http_on_abort(c, get_aborted_cb, s);
    /* Once the probe is answered, every poll is answered with a noop at once: the client
     * sends the upgrade packet only after its last poll has completed, so holding one here
     * (a poll already under way when 3probe arrived, e.g. while an alert() blocked the page)
     * would stall the upgrade for good. The reference server does the same. */
    if (s->upgrading) {
        answer_get_ctl(s, HR_EIO_NOOP);
        return;
    }
    int had = p->queue_len != 0;
    flush(s);
    /* the client took what waited: what was held back for it may go on */
    if (had && !s->closed && s->poll->queue_len == 0 && s->eio->h->on_drain)
        s->eio->h->on_drain(s, s->eio->ud);
}

static void handle_poll_post(struct hr_eio *eio, struct hr_eio_session *s, struct hr_conn *c,
                             struct hr_http_request *req)
{
    char cors[512];
    cors_headers(eio, req, cors, sizeof cors);
    if (req->body_len > eio->opts.max_payload) {
        hr_http_error(c, 413, cors, "payload too large");
        session_close(s, "transport error", 0);
        return;
    }
    size_t pos = 0;
    struct hr_eio_packet p;
    int rc;
    eio->post = c;
    while (!s->closed &&
           (rc = hr_eio_payload_next((uint8_t *)req->body, req->body_len, &pos, &p)) > 0) {
        if (on_packet(s, &p) < 0) {
            rc = HR_EINVAL;
            break;
        }
    }
    eio->post = NULL;
    if (!s->closed && rc < 0) {
        eio_error(eio, c, req, ERR_BAD);
        session_close(s, "parse error", 0);
        return;
    }
    if (req->body_len == 0 && !s->closed) {
        eio_error(eio, c, req, ERR_BAD);
        session_close(s, "parse error", 0);
        return;
    }
    hr_http_respond(c, 200, "text/html", cors, "ok", 2);
}

static const struct hr_ws_handler eio_ws = {
    .data_size = sizeof(struct hr_eio_session *),
    .on_drain = ws_drain_cb,
    .on_message = ws_message_cb,
    .on_close = ws_close_cb,
};

static void handshake(struct hr_eio *eio, struct hr_conn *c, struct hr_http_request *req, int ws)
{
    struct hr_eio_session *s;
    char open[256];
    /* polling sessions hold no connection: cap them like connections */
    if (eio->count >= eio->srv->limits.max_connections) {
        hr_http_error(c, 503, NULL, "too many sessions");
        return;
    }
    if (ws) {
        struct hr_ws *sock = hr_ws_accept(c, req, &eio->ws_handler, eio);
        if (!sock)
            return;
        s = session_new(eio, HR_EIO_WEBSOCKET);
        if (!s) {
            hr_ws_close(sock, HR_WS_CLOSE_INTERNAL, "out of memory");
            return;
        }
        s->ws = sock;
        *sess_of(sock) = s;
        int n = open_payload(eio, s, open, sizeof open);
        hr_ws_send(sock, HR_WS_OP_TEXT, open, (size_t)n);
    } else {
        s = session_new(eio, HR_EIO_POLLING);
        if (!s) {
            hr_http_error(c, 503, NULL, "out of memory");
            return;
        }
        char hdr[560];
        cors_headers(eio, req, hdr, sizeof hdr - 32);
        strcat(hdr, NO_STORE);
        int n = open_payload(eio, s, open, sizeof open);
        hr_http_respond(c, 200, "text/plain; charset=UTF-8", hdr, open, (size_t)n);
    }
    if (eio->h->on_open && eio->h->on_open(s, req, eio->ud) != 0)
        session_close(s, "forced close", 0);
}

static void request_cb(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct hr_eio *eio = ud;
    char transport[16], sid[32], v[8];
    /* a page from an origin not allowed makes no request here, preflight, handshake (polling
     * or WebSocket: cross-site WebSocket hijacking), poll or upgrade: what the reference
     * server answers when its allowRequest refuses */
    if (hr_origins_request(eio->opts.origins, req) == HR_ORIGIN_REFUSED) {
        eio_error(eio, c, req, ERR_FORBIDDEN);
        return;
    }
    if (req->method == HTTP_OPTIONS) {
        char hdr[1024], cors[512];
        size_t rlen;
        const char *rh = hr_http_header_get(req, "Access-Control-Request-Headers", &rlen);
        cors_headers(eio, req, cors, sizeof cors);
        snprintf(hdr, sizeof hdr,
                 "%sAccess-Control-Allow-Methods: GET, POST, OPTIONS\r\n%s%.*s%s"
                 "Access-Control-Max-Age: 86400\r\n",
                 cors, rh ? "Access-Control-Allow-Headers: " : "",
                 rh ? (int)(rlen > 256 ? 256 : rlen) : 0, rh ? rh : "", rh ? "\r\n" : "");
        hr_http_respond(c, 204, NULL, hdr, NULL, 0);
        return;
    }
    long tl = hr_http_query(req, "transport", transport, sizeof transport);
    int is_ws = tl > 0 && strcmp(transport, "websocket") == 0;
    if (tl < 0 || (!is_ws && strcmp(transport, "polling") != 0)) {
        eio_error(eio, c, req, ERR_TRANSPORT);
        return;
    }
    long sl = hr_http_query(req, "sid", sid, sizeof sid);
    if (sl == HR_ETOOBIG) {
        eio_error(eio, c, req, ERR_SID);
        return;
    }
    if (sl >= 0) {
        struct hr_eio_session *s;
        HASH_FIND_STR(eio->sessions, sid, s);
        if (!s || timed_out(s)) {
            eio_error(eio, c, req, ERR_SID);
            return;
        }
        if (is_ws) {
            if (!req->upgrade) {
                eio_error(eio, c, req, ERR_BAD);
                return;
            }
            if (s->transport != HR_EIO_POLLING || (s->poll && s->poll->probe)) {
                /* Already upgraded, or an upgrade under way: like the reference server, complete
                 * the WebSocket handshake and close it at once (a close frame with no status
                 * code), sending nothing else and leaving the session alone. */
                struct hr_ws *late = hr_ws_accept(c, req, &eio->ws_handler, eio);
                if (late)
                    hr_ws_close(late, HR_WS_CLOSE_NO_STATUS, "");
                return;
            }
            struct hr_ws *probe = hr_ws_accept(c, req, &eio->ws_handler, eio);
            if (!probe)
                return;
            if (!poll_of(s)) {
                hr_ws_close(probe, HR_WS_CLOSE_INTERNAL, "out of memory");
                return;
            }
            s->poll->probe = probe;
            *sess_of(probe) = s;
            return;
        }
        if (s->transport != HR_EIO_POLLING) {
            eio_error(eio, c, req, ERR_BAD);
            return;
        }
        if (req->method == HTTP_GET)
            handle_poll_get(eio, s, c, req);
        else if (req->method == HTTP_POST)
            handle_poll_post(eio, s, c, req);
        else
            eio_error(eio, c, req, ERR_BAD);
        return;
    }
    if (req->method != HTTP_GET) {
        eio_error(eio, c, req, ERR_METHOD);
        return;
    }
    if (hr_http_query(req, "EIO", v, sizeof v) != 1 || v[0] != '4') {
        eio_error(eio, c, req, ERR_VERSION);
        return;
    }
    if (is_ws && !req->upgrade) {
        eio_error(eio, c, req, ERR_BAD);
        return;
    }
    handshake(eio, c, req, is_ws);
}

int hr_eio_init(struct hr_eio *eio, struct hr_server *srv, const struct hr_eio_opts *opts,
                const struct hr_eio_handler *h, void *ud)
{
    memset(eio, 0, sizeof(*eio));
    eio->srv = srv;
    eio->opts = *opts;
    eio->h = h;
    eio->ud = ud;
    eio->ws_handler = eio_ws;
    eio->ws_handler.max_message = opts->max_payload;
    eio->sep = hr_buf_from("\x1e", 1);
    return eio->sep ? 0 : HR_ENOMEM;
}

int hr_eio_route(struct hr_eio *eio, struct hr_router *router)
{
    return hr_router_add(router, ~0ull, eio->opts.path, 0, request_cb, eio);
}

void hr_eio_shutdown(struct hr_eio *eio)
{
    struct hr_eio_session *s, *tmp;
    HASH_ITER(hh, eio->sessions, s, tmp)
    session_close(s, "server shutting down", 0);
}

void hr_eio_free(struct hr_eio *eio)
{
    hr_eio_shutdown(eio);
    free_dead(eio->dead);
    eio->dead = NULL;
    hr_buf_unref(eio->sep);
    eio->sep = NULL;
}
