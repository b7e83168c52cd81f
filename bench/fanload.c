/* fanload: a fan-out load generator on libuv for herald's channel transports (and any server
 * that speaks one of them, e.g. nginx + nchan's EventSource), for bench/run-fanout.sh.
 *
 * HTTP/1.1 over plain TCP, keep-alive, loopback targets only, one thread. N subscribers of one
 * transport connect to one channel; once they are all subscribed, K publisher connections POST
 * R messages per second (keep-alive, one request in flight each) for --warmup + -t seconds.
 * Every message is a JSON object {"seq":K,"t":T,"pad":"xx.."} padded to -s bytes, T being the
 * time message K was due (start + K / R) in microseconds of CLOCK_MONOTONIC since fanload
 * started: publishers and subscribers share one clock, so publish -> receive latency needs no
 * synchronisation. Publishing is open-loop: a message that waits for a free publisher
 * connection (the server acknowledging late) keeps its due time, so the wait is in its latency
 * ("backlog max" and "publish lag max" show how far behind the publishers fell).
 *
 * --window W makes it closed-loop instead (no --rate): at most W messages are in flight, a
 * message being in flight from its send until every subscriber has received it (every subscriber
 * subscribed when it was sent; one that drops stops counting); each completion releases the next
 * send at once, so deliveries/s is what the server sustains with W messages outstanding. T is
 * then the send time. With --pub http (the default) up to W keep-alive publisher connections
 * (--publishers overrides), each one request in flight; an acknowledgement frees the connection,
 * not the window slot.
 *
 * --pub ws publishes over one extra WebSocket (to --pub-path, default the ws subscribers' path,
 * else /ws/{channel}): one masked text frame per message, the same JSON body. It is not a
 * subscriber: whatever it receives (herald's {"ack":...} frames, herald delivering the message
 * to it too, as a member of the channel) is parsed as frames and discarded; pings are answered.
 * No acknowledgement is read, so a ws publish counts as published when it is written.
 *
 *   fanload --transport ws|sse|lp|poll --port P [-n 1000] [--rate 50 | --window W] [-t 10]
 *           [-s 100] [--channel bench] [--sub-path PATH] [--pub-path PATH] [--pub http|ws]
 *           [--publishers 16] [--warmup 1] [--drain 5] [--settle 1] [--poll-interval 1]
 *           [--server-pid PID[,PID]] [--verbose]   (--verbose: log every reconnect and why)
 *   fanload free-port        print a free TCP port on 127.0.0.1 (for servers that cannot take 0)
 *
 * Subscribers (default paths /ws|/sse|/lp|/poll/{channel}; publish: POST /pub/{channel}):
 *   ws    RFC 6455 client (Sec-WebSocket-Accept checked, pings answered); one message per text
 *         frame, herald's {"id","cursor","time","data":{"seq"..}} or the raw published JSON (a
 *         server that forwards the text, like bench/ceiling): "seq" is found wherever it is;
 *         subscribed on the 101.
 *   sse   GET with Accept: text/event-stream; identity, chunked or until-close bodies; events
 *         are dispatched on their blank line (HTML §9.2.6), data: lines carry the message;
 *         comments and other fields are skipped; subscribed when the 200 head arrives.
 *   lp    long polling: GET ?since=CURSOR, held by the server until something is newer; each
 *         answer {"messages":[...],"next":C,"more":b,"gap":...} is followed at once by the next
 *         request with since=next (C taken as given, never parsed). The first request has no
 *         since (a fresh channel: everything from the start). Subscribed once the first request
 *         is written, plus --settle seconds.
 *   poll  short polling: the same answer, immediately; a subscriber asks again --poll-interval
 *         seconds after its previous request was sent (at once if "more" was true), each at its
 *         own random phase so that the requests spread over the interval. Subscribed once the
 *         first (empty) answer is in.
 * lp / poll subscribers reconnect (and count it) if the server closes their connection; a ws or
 * sse stream that ends is a dropped subscriber.
 *
 * Counted (the same rules as wsload sio-fanout): a message is "measured" if its send time falls
 * in the -t measured seconds and its publish was acknowledged (2xx). expected = measured
 * messages x subscribers subscribed when the measured seconds began; delivered = distinct
 * measured messages that reached a subscriber by the end of publishing + --drain seconds;
 * lost = expected - delivered; duplicates = a message a subscriber had already received (each
 * subscriber keeps a bitmap of sequence numbers); deliveries/s = every arrival in the measured
 * seconds / their length. Latency: from T to the read that completed the message, over every
 * measured delivery (log2 histogram with 16 linear sub-buckets, ~6%; in window mode from the
 * send, and not the point: the window holds messages back). With --server-pid, the
 * server processes' user + system CPU over the measured seconds (/proc/PID/stat) / arrivals in
 * them = CPU us per delivery, and their VmRSS and Pss (summed) at the end of the measured seconds.
 * The last line is "RESULT key=value ..."; the exit status is 1 if a subscriber could not
 * subscribe or a protocol error was seen, 2 for bad usage.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "loadlib.h"

/* ---------- configuration and global state ---------- */

enum transport { T_WS, T_SSE, T_LP, T_POLL };
static const char *const tnames[] = {"ws", "sse", "lp", "poll"};

#define MAX_PIDS 16

static struct {
    enum transport tr;
    const char *host;
    int port;
    const char *channel;
    const char *sub_path, *pub_path;
    int n, publishers, inflight;
    int window;         /* closed loop: messages in flight at most; 0: open loop at --rate */
    int pub_ws;         /* publish over one WebSocket, not POST */
    int publishers_set; /* --publishers given */
    double rate, secs, warmup, drain, settle, poll_interval, connect_timeout;
    size_t size;
    int pids[MAX_PIDS], npids;
    int verbose;
} cfg = {
    .tr = T_SSE,
    .host = "127.0.0.1",
    .channel = "bench",
    .n = 1000,
    .publishers = 16,
    .inflight = 200,
    .rate = 50,
    .secs = 10,
    .warmup = 1,
    .drain = 5,
    .settle = 1,
    .poll_interval = 1,
    .connect_timeout = 120,
    .size = 100,
};

enum role { SUB, PUB };
enum cstate { S_NEW, S_CONNECTING, S_OPEN, S_CLOSING, S_CLOSED };
/* what the bytes that arrive are: nothing expected, a response head, a body (by length,
 * chunked, until close), WebSocket frames */
enum rstate { R_NONE, R_HEAD, R_BODY_LEN, R_BODY_CHUNK, R_BODY_EOF, R_WS };
enum chstate { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER };

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_timer_t timer; /* lp / poll subscribers: the next request */
    int id;
    uint8_t role, state, rstate, chst;
    uint8_t ready;       /* subscriber: subscribed */
    uint8_t counted;     /* subscriber: its subscribe finished (ready or failed) */
    uint8_t busy;        /* a request is outstanding */
    uint8_t close_after; /* the response in progress said Connection: close */
    uint8_t reconnecting, timer_on, more, ev_has, ev_other, trailer_empty;
    uint8_t ws_up;     /* ws publisher: its 101 came */
    uint8_t gone;      /* subscriber: dropped for good (window mode stops waiting for it) */
    uint32_t seen_cap; /* bytes of seen */
    int status;
    uint64_t body_left; /* R_BODY_LEN: bytes left; R_BODY_CHUNK: left in this chunk */
    char *buf;          /* response head, then the body (lp/poll/pub), SSE line or WS message */
    uint32_t len, cap;
    char accept[32];
    struct ws_parser ws;     /* ws subscriber: its frames (a data message is kept whole in buf) */
    char *cursor;            /* lp / poll: since= for the next request, as the server gave it */
    uint8_t *seen;           /* subscriber: bitmap of sequence numbers received */
    uint64_t ev_seq, ev_t;   /* sse: the event being assembled */
    uint64_t req_at;         /* poll: when the last request was written */
    uint64_t next_at;        /* lp / poll: when the next request is due (kept across a reconnect) */
    uint64_t pub_seq, pub_t; /* publisher: the message in flight */
};

static uv_loop_t *loop;
static struct conn *conns; /* cfg.n subscribers, then cfg.publishers publishers */
static int n_total, n_started, n_pending, n_ready, n_failed, n_dropped, n_live_handles, n_pubs_open;
static int shutting_down, phase;
static uv_timer_t phase_timer, run_timer, pub_timer, deadline_timer;
static struct sockaddr_in addr;
static uint64_t t_start, t_pub0, t_measure_start, t_measure_end;
static uint64_t max_msgs;    /* rate mode: messages at most (bits in each subscriber's bitmap) */
static uint64_t pub_lag_max; /* ns between a message's due time and its send */
static uint64_t pub_sent, pub_acked, pub_measured, pub_errors, pub_backlog_max, pub_inflight;
static uint64_t expected, delivered, arrivals_window, arrivals_total, dups, errors_proto,
    gaps_reported;
static uint64_t reconnects, requests, sse_other, subs_at_measure;
static double server_cpu_s = -1, server_user_s, client_cpu_s;
static long server_rss_kb = -1, server_pss_kb = -1;
static uint64_t rusage_t0;
static struct hist lat;   /* publish -> subscriber */
static uint64_t read_now; /* when the read being parsed arrived */
static char *pub_body;
/* window mode: subscribers still to receive each message (0: complete or never waited for) */
static uint32_t *win_left;
static uint64_t win_cap, win_low, win_inflight;
static int win_subs; /* subscribers a message sent now waits for */
static size_t sub_path_len;

/* phases: connecting subscribers, connecting publishers, settling, warm-up, measured, draining */
enum { P_SUBS, P_PUBS, P_SETTLE, P_WARMUP, P_MEASURE, P_DRAIN, P_DONE };

static void buf_append(struct conn *c, const char *d, size_t n)
{
    if ((size_t)c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 512;
        while (cap < (size_t)c->len + n + 1)
            cap *= 2;
        c->buf = xrealloc(c->buf, cap);
        c->cap = (uint32_t)cap;
    }
    memcpy(c->buf + c->len, d, n);
    c->len += (uint32_t)n;
    c->buf[c->len] = 0;
}

static void conn_close(struct conn *c);
static void conn_reconnect(struct conn *c, const char *why);
static void start_more(void);
static void sub_done(struct conn *c, int ok);
static void begin_shutdown(void);
static void send_request(struct conn *c);
static void pub_tick(uv_timer_t *t);

/* ---------- writing ---------- */

static void write_cb(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = req->data;
    free(w);
    if (status < 0) {
        if (status != UV_ECANCELED && c->state == S_OPEN && !shutting_down) {
            note_error("write: %s", uv_strerror(status));
            if (c->role == SUB && (cfg.tr == T_LP || cfg.tr == T_POLL))
                conn_reconnect(c, uv_strerror(status));
            else
                conn_close(c);
        }
        return;
    }
    /* a long-poll subscriber counts as subscribed once its first request is on the wire */
    if (c->role == SUB && cfg.tr == T_LP && !c->counted && c->state == S_OPEN)
        sub_done(c, 1);
}

static void send_bytes(struct conn *c, const char *d, size_t n)
{
    struct wreq *w = wreq_new(n);
    memcpy(w->data, d, n);
    if (wreq_send((uv_stream_t *)&c->tcp, w, write_cb, c) < 0)
        conn_close(c);
}

/* a control frame (pong) */
static void send_ws_frame(struct conn *c, int opcode, const uint8_t *p, size_t n)
{
    uint8_t f[6 + 125];
    if (n > 125)
        n = 125;
    send_bytes(c, (const char *)f, ws_put_frame(f, opcode, p, n));
}

/* ---------- receiving messages ---------- */

static int ts_measured(uint64_t t_ns)
{
    return t_measure_start && t_ns >= t_measure_start &&
           (t_measure_end == 0 || t_ns < t_measure_end);
}

static int seen(const struct conn *c, uint64_t seq)
{
    return (seq >> 3) < c->seen_cap && (c->seen[seq >> 3] & (1u << (seq & 7)));
}

/* window mode: one of message seq's subscribers has it (or left); the last releases a send */
static void window_got(uint64_t seq)
{
    if (seq >= win_cap || win_left[seq] == 0 || --win_left[seq] != 0)
        return;
    win_inflight--;
    while (win_low < pub_sent && win_left[win_low] == 0)
        win_low++;
    pub_tick(NULL);
}

/* window mode: ready subscriber c is gone; the messages in flight stop waiting for it */
static void window_forget(struct conn *c)
{
    c->gone = 1;
    win_subs--;
    uint64_t end = pub_sent; /* what window_got releases waits for the others only */
    for (uint64_t s = win_low; s < end; s++)
        if (!seen(c, s))
            window_got(s);
}

/* One message reached subscriber c. */
static void deliver(struct conn *c, uint64_t seq, uint64_t t_us, uint64_t now)
{
    if (seq >= pub_sent) {
        errors_proto++;
        note_error("sub %d: sequence number %" PRIu64 " was never sent", c->id, seq);
        return;
    }
    if ((seq >> 3) >= c->seen_cap) { /* window mode: the bitmap grows with what is sent */
        uint64_t cap = c->seen_cap ? c->seen_cap : 1024;
        while (cap <= (seq >> 3))
            cap *= 2;
        c->seen = xrealloc(c->seen, cap);
        memset(c->seen + c->seen_cap, 0, cap - c->seen_cap);
        c->seen_cap = (uint32_t)cap;
    }
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (c->seen[seq >> 3] & bit) {
        dups++;
        note_error("sub %d: message %" PRIu64 " received twice", c->id, seq);
        return;
    }
    c->seen[seq >> 3] |= bit;
    if (cfg.window && c->ready && !c->gone)
        window_got(seq);
    arrivals_total++;
    if (phase == P_MEASURE)
        arrivals_window++;
    uint64_t t = t_us * 1000 + t_start;
    if (ts_measured(t)) {
        delivered++;
        hist_add(&lat, now > t ? now - t : 0);
    }
}

/* Every {"seq":K,"t":T ...} in s[0..n), wherever it is (herald's envelopes carry the published
 * JSON as "data"; a forwarding server, the raw text). */
static int deliver_all(struct conn *c, const char *s, const char *end, uint64_t now)
{
    int k = 0;
    uint64_t seq, t;
    const char *p;
    while ((p = json_uint(s, end, "\"seq\"", &seq))) {
        const char *q = json_uint(p, end, "\"t\"", &t);
        if (!q) {
            errors_proto++;
            note_error("sub %d: message without \"t\": %.80s", c->id, p);
            return k;
        }
        deliver(c, seq, t, now);
        k++;
        s = q;
    }
    return k;
}

/* ---- WebSocket frames (RFC 6455 §5.2) ---- */

static void ws_message_start(void *ctx)
{
    ((struct conn *)ctx)->len = 0;
}

static void ws_data(void *ctx, const uint8_t *d, size_t n)
{
    buf_append(ctx, (const char *)d, n);
}

static int ws_frame_end(void *ctx, struct ws_parser *p)
{
    struct conn *c = ctx;
    switch (p->opcode) {
    case 0x9: send_ws_frame(c, 0xA, p->ctl, p->ctl_len); break; /* ping -> pong */
    case 0xA: break;
    case 0x8: /* close: the subscription is over */
        if (!shutting_down) {
            n_dropped++;
            note_error("sub %d: server closed the WebSocket (%u bytes of close payload)", c->id,
                       p->ctl_len);
        }
        return -1;
    default:
        if (p->fin) {
            if (p->msg_opcode != 0x1) {
                errors_proto++;
                note_error("sub %d: binary message", c->id);
            } else if (deliver_all(c, c->buf, c->buf + c->len, read_now) != 1) {
                errors_proto++;
                note_error("sub %d: unexpected message %.80s", c->id, c->buf);
            }
            c->len = 0;
        }
    }
    return 0;
}

static void ws_error(void *ctx, const char *what)
{
    errors_proto++;
    note_error("sub %d: %s", ((struct conn *)ctx)->id, what);
}

static const struct ws_handler ws_handler = {.max_frame = 1u << 24,
                                             .message_start = ws_message_start,
                                             .data = ws_data,
                                             .frame_end = ws_frame_end,
                                             .error = ws_error};

/* the ws publisher reads frames only to discard them (acks, its own copies) and answer pings */
static void pub_ws_start(void *ctx)
{
}

static void pub_ws_data(void *ctx, const uint8_t *d, size_t n)
{
}

static int pub_ws_frame_end(void *ctx, struct ws_parser *p)
{
    struct conn *c = ctx;
    if (p->opcode == 0x9)
        send_ws_frame(c, 0xA, p->ctl, p->ctl_len);
    else if (p->opcode == 0x8) {
        if (!shutting_down)
            note_error("the server closed the publisher's WebSocket");
        return -1;
    }
    return 0;
}

static void pub_ws_error(void *ctx, const char *what)
{
    errors_proto++;
    note_error("ws publisher: %s", what);
}

static const struct ws_handler pub_ws_handler = {.max_frame = 1u << 24,
                                                 .message_start = pub_ws_start,
                                                 .data = pub_ws_data,
                                                 .frame_end = pub_ws_frame_end,
                                                 .error = pub_ws_error};

/* ---- Server-Sent Events (HTML Living Standard §9.2.6, "Interpreting an event stream") ---- */

static void sse_line(struct conn *c, char *l, size_t n, uint64_t now)
{
    if (n == 0) { /* blank line: dispatch */
        if (c->ev_has && !c->ev_other)
            deliver(c, c->ev_seq, c->ev_t, now);
        else if (c->ev_other)
            sse_other++;
        c->ev_has = 0, c->ev_other = 0;
        return;
    }
    if (l[0] == ':')
        return; /* comment (heartbeat) */
    if (n >= 5 && memcmp(l, "data:", 5) == 0) {
        const char *end = l + n, *p = json_uint(l + 5, end, "\"seq\"", &c->ev_seq);
        if (p && json_uint(p, end, "\"t\"", &c->ev_t))
            c->ev_has = 1;
        else if (!c->ev_other) {
            errors_proto++;
            note_error("sub %d: unexpected event data %.80s", c->id, l);
        }
    } else if (n >= 6 && memcmp(l, "event:", 6) == 0) {
        const char *v = l + 6 + (n > 6 && l[6] == ' ');
        if (strncmp(v, "message", 7) != 0) {
            c->ev_other = 1; /* e.g. herald's "event: gap" */
            if (strncmp(v, "gap", 3) == 0)
                gaps_reported++;
        }
    }
    /* id:, retry: and unknown fields need nothing here */
}

static void sse_feed(struct conn *c, const char *d, size_t n, uint64_t now)
{
    while (n) {
        const char *nl = memchr(d, '\n', n);
        size_t take = nl ? (size_t)(nl - d) : n;
        if (c->len == 0 && nl) { /* the whole line is in this read: no copy */
            size_t ln = take;
            if (ln && d[ln - 1] == '\r')
                ln--;
            sse_line(c, (char *)d, ln, now);
        } else {
            buf_append(c, d, take);
            if (nl) {
                size_t ln = c->len;
                if (ln && c->buf[ln - 1] == '\r')
                    ln--;
                sse_line(c, c->buf, ln, now);
                c->len = 0;
            } else if (c->len > (1u << 20)) {
                errors_proto++;
                note_error("sub %d: event stream line over 1 MiB", c->id);
                c->len = 0;
            }
        }
        if (!nl)
            break;
        n -= take + 1;
        d = nl + 1;
    }
}

/* ---- long / short polling answers ---- */

static void schedule_request(struct conn *c, uint64_t delay_ms);

static void poll_answer(struct conn *c, uint64_t now)
{
    const char *s = c->buf, *end = c->buf + c->len;
    if (c->status != 200) {
        errors_proto++;
        note_error("sub %d: %s answered %d: %.100s", c->id, tnames[cfg.tr], c->status, s);
        schedule_request(c, 100); /* keep the cursor; try again shortly */
        return;
    }
    const char *g = json_key(s, end, "\"gap\"");
    if (g && (end - g < 4 || memcmp(g, "null", 4) != 0)) {
        gaps_reported++;
        note_error("sub %d: answer reports a gap: %.60s", c->id, g);
    }
    const char *nx = json_key(s, end, "\"next\"");
    if (!nx || *nx != '"') {
        errors_proto++;
        note_error("sub %d: answer without \"next\": %.100s", c->id, s);
        schedule_request(c, 100);
        return;
    }
    nx++;
    const char *ne = memchr(nx, '"', (size_t)(end - nx));
    if (!ne || ne - nx > 512) {
        errors_proto++;
        note_error("sub %d: bad \"next\"", c->id);
        schedule_request(c, 100);
        return;
    }
    free(c->cursor);
    c->cursor = strndup(nx, (size_t)(ne - nx));
    const char *mo = json_key(s, end, "\"more\"");
    c->more = mo && end - mo >= 4 && memcmp(mo, "true", 4) == 0;
    /* the messages are everything before "next" in herald's answer, but do not rely on order:
     * "seq" only ever appears inside a message's data */
    deliver_all(c, s, end, now);
    if (!c->counted) {
        if (cfg.tr == T_POLL) {
            sub_done(c, 1);
            /* spread the subscribers' polls over the interval */
            schedule_request(c, (uint64_t)(rng32() % (uint32_t)(cfg.poll_interval * 1000 + 1)));
            return;
        }
        sub_done(c, 1);
    }
    if (cfg.tr == T_LP || c->more) {
        schedule_request(c, 0);
    } else {
        uint64_t next = c->req_at + (uint64_t)(cfg.poll_interval * 1e9);
        schedule_request(c, next > now ? (next - now + 999999) / 1000000 : 0);
    }
}

/* ---- publish answers ---- */

static void pub_answer(struct conn *c, uint64_t now)
{
    pub_inflight--;
    if (c->status >= 200 && c->status < 300) {
        pub_acked++;
        if (ts_measured(c->pub_t * 1000 + t_start))
            pub_measured++;
    } else {
        pub_errors++;
        note_error("publish answered %d: %.100s", c->status, c->buf ? c->buf : "");
        if (cfg.window && c->pub_seq < win_cap && win_left[c->pub_seq]) {
            win_left[c->pub_seq] = 1; /* refused: nobody will get it, its slot is free */
            window_got(c->pub_seq);
        }
    }
    if (phase == P_WARMUP || phase == P_MEASURE)
        pub_tick(NULL); /* a backlog goes out at once */
}

/* ---------- HTTP responses ---------- */

static void body_end(struct conn *c, uint64_t now)
{
    c->rstate = R_NONE;
    c->busy = 0;
    /* with Connection: close, no new request goes out here (pub_tick and schedule_request check
     * close_after); conn_reconnect below opens a new connection that sends it */
    if (c->role == PUB)
        pub_answer(c, now);
    else if (cfg.tr == T_SSE) {
        if (!shutting_down) {
            n_dropped++;
            note_error("sub %d: the event stream ended", c->id);
        }
        conn_close(c);
        return;
    } else {
        poll_answer(c, now);
    }
    if (c->close_after && c->state == S_OPEN)
        conn_reconnect(c, "answer with Connection: close");
}

static void body_data(struct conn *c, const char *d, size_t n, uint64_t now)
{
    if (c->role == SUB && cfg.tr == T_SSE)
        sse_feed(c, d, n, now);
    else if (c->len + n <= (64u << 20))
        buf_append(c, d, n);
}

/* Hands on what of d[0..n) belongs to the body (at most body_left bytes) and advances past it;
 * 1 once body_left is down to 0. */
static int body_take(struct conn *c, const char **d, size_t *n, uint64_t now)
{
    size_t take = *n < c->body_left ? *n : (size_t)c->body_left;
    body_data(c, *d, take, now);
    c->body_left -= take;
    *d += take, *n -= take;
    return c->body_left == 0;
}

/* The head in c->buf is complete (hend bytes). Returns -1 if the connection must stop. */
static int head_done(struct conn *c, uint64_t now)
{
    char v[128];
    c->status = 0;
    if (strncmp(c->buf, "HTTP/1.", 7) == 0)
        c->status = atoi(c->buf + 9);
    c->close_after =
        http_header(c->buf, "Connection", v, sizeof v) && strcasestr(v, "close") != NULL;
    if (c->role == PUB && cfg.pub_ws) {
        if (c->status != 101 || !http_header(c->buf, "Sec-WebSocket-Accept", v, sizeof v) ||
            strcmp(v, c->accept) != 0) {
            note_error("ws publisher: handshake answered \"%.80s\"", c->buf);
            fprintf(stderr, "fanload: the ws publisher's handshake failed: %.80s\n", c->buf);
            begin_shutdown();
            return -1;
        }
        c->rstate = R_WS;
        c->len = 0;
        c->ws_up = 1;
        c->close_after = 0;
        if (!c->counted) {
            c->counted = 1;
            n_pubs_open++;
            n_pending--;
            start_more();
        } else if (phase == P_WARMUP || phase == P_MEASURE) {
            pub_tick(NULL);
        }
        return 0;
    }
    if (c->role == SUB && cfg.tr == T_WS) {
        int ok = c->status == 101 && http_header(c->buf, "Sec-WebSocket-Accept", v, sizeof v) &&
                 strcmp(v, c->accept) == 0;
        if (!ok) {
            note_error("sub %d: WebSocket handshake answered \"%.80s\"", c->id, c->buf);
            sub_done(c, 0);
            return -1;
        }
        c->rstate = R_WS;
        c->len = 0;
        sub_done(c, 1);
        return 0;
    }
    if (c->role == SUB && cfg.tr == T_SSE) {
        if (c->status != 200 || !http_header(c->buf, "Content-Type", v, sizeof v) ||
            !strcasestr(v, "text/event-stream")) {
            note_error("sub %d: event stream answered \"%.120s\"", c->id, c->buf);
            sub_done(c, 0);
            return -1;
        }
        sub_done(c, 1);
    }
    int chunked =
        http_header(c->buf, "Transfer-Encoding", v, sizeof v) && strcasestr(v, "chunked") != NULL;
    int has_len = http_header(c->buf, "Content-Length", v, sizeof v);
    c->len = 0;
    if (chunked)
        c->rstate = R_BODY_CHUNK, c->chst = CH_SIZE, c->body_left = 0;
    else if (has_len) {
        c->body_left = strtoull(v, NULL, 10);
        c->rstate = R_BODY_LEN;
        if (c->body_left == 0)
            body_end(c, now);
    } else {
        c->rstate = R_BODY_EOF;
        c->close_after = 1;
    }
    return 0;
}

/* Feed bytes to the response parser; returns -1 once the connection must stop reading. */
static int http_feed(struct conn *c, const char *d, size_t n, uint64_t now)
{
    while (n && c->state == S_OPEN) {
        switch (c->rstate) {
        case R_NONE:
            errors_proto++;
            note_error("%s %d: %zu bytes nobody asked for: %.60s", c->role == PUB ? "pub" : "sub",
                       c->id, n, d);
            return -1;
        case R_HEAD: {
            uint32_t old = c->len;
            buf_append(c, d, n);
            uint32_t from = old > 3 ? old - 3 : 0;
            char *e = memmem(c->buf + from, c->len - from, "\r\n\r\n", 4);
            if (!e) {
                if (c->len > 16384) {
                    errors_proto++;
                    note_error("response head over 16 KiB");
                    return -1;
                }
                return 0;
            }
            size_t hlen = (size_t)(e - c->buf) + 4;
            size_t used = hlen - old; /* bytes of d in the head */
            e[2] = 0;                 /* keep the last header's CRLF for http_header */
            if (head_done(c, now) < 0)
                return -1;
            d += used, n -= used;
            break;
        }
        case R_BODY_LEN:
            if (body_take(c, &d, &n, now))
                body_end(c, now);
            break;
        case R_BODY_EOF: body_data(c, d, n, now); return 0;
        case R_WS:
            read_now = now;
            return ws_parse(&c->ws, (const uint8_t *)d, n,
                            c->role == PUB ? &pub_ws_handler : &ws_handler, c);
        case R_BODY_CHUNK:
            /* RFC 9112 §7.1: size [;ext] CRLF data CRLF ... 0 CRLF [trailers] CRLF */
            while (n && c->rstate == R_BODY_CHUNK) {
                char ch = *d;
                switch (c->chst) {
                case CH_SIZE:
                    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                        (ch >= 'A' && ch <= 'F')) {
                        int hv = ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;
                        c->body_left = c->body_left * 16 + (uint64_t)hv;
                        if (c->body_left > (1ull << 32)) {
                            errors_proto++;
                            note_error("chunk too large");
                            return -1;
                        }
                    } else if (ch == '\r')
                        c->chst = CH_SIZE_LF;
                    else
                        c->chst = CH_EXT;
                    d++, n--;
                    break;
                case CH_EXT:
                    if (ch == '\r')
                        c->chst = CH_SIZE_LF;
                    d++, n--;
                    break;
                case CH_SIZE_LF:
                    d++, n--;
                    if (c->body_left == 0)
                        c->chst = CH_TRAILER, c->trailer_empty = 1;
                    else
                        c->chst = CH_DATA;
                    break;
                case CH_DATA:
                    if (body_take(c, &d, &n, now))
                        c->chst = CH_DATA_CR;
                    break;
                case CH_DATA_CR:
                    c->chst = CH_DATA_LF;
                    d++, n--;
                    break;
                case CH_DATA_LF:
                    c->chst = CH_SIZE;
                    c->body_left = 0;
                    d++, n--;
                    break;
                case CH_TRAILER: /* lines until an empty one */
                    d++, n--;
                    if (ch == '\n') {
                        if (c->trailer_empty)
                            body_end(c, now);
                        c->trailer_empty = 1;
                    } else if (ch != '\r') {
                        c->trailer_empty = 0;
                    }
                    break;
                }
                if (c->state != S_OPEN)
                    return -1;
            }
            break;
        }
    }
    return 0;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;
    if (nread == 0 || c->state != S_OPEN)
        return;
    uint64_t now = uv_hrtime();
    if (nread < 0) {
        if (c->rstate == R_BODY_EOF && nread == UV_EOF) {
            c->close_after = 1;
            body_end(c, now);
            if (c->state != S_OPEN)
                return;
        }
        if (shutting_down) {
            conn_close(c);
            return;
        }
        if (c->role == SUB && !c->counted) {
            note_error("sub %d: %s before subscribing", c->id, uv_strerror((int)nread));
            sub_done(c, 0);
            return;
        }
        if (c->role == PUB || cfg.tr == T_LP || cfg.tr == T_POLL) {
            if (c->busy && c->rstate != R_HEAD)
                note_error("%s: connection closed in a response", tnames[cfg.tr]);
            conn_reconnect(c, nread == UV_EOF ? "the server closed the connection"
                                              : uv_strerror((int)nread));
            return;
        }
        n_dropped++;
        note_error("sub %d: %s", c->id,
                   nread == UV_EOF ? "the server closed the stream" : uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    if (http_feed(c, b->base, (size_t)nread, now) < 0 && c->state == S_OPEN) {
        if (c->role == PUB && cfg.pub_ws && c->counted)
            conn_reconnect(c, "the publisher's WebSocket failed");
        else if (c->role == SUB && !c->counted)
            sub_done(c, 0);
        else
            conn_close(c);
    }
}

/* ---------- requests ---------- */

static void send_request(struct conn *c)
{
    char req[2048];
    int n;
    c->len = 0;
    c->rstate = R_HEAD;
    c->busy = 1;
    requests++;
    if (c->role == PUB) {
        n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\n\r\n",
                     cfg.pub_path, cfg.host, cfg.port, strlen(pub_body));
        size_t blen = strlen(pub_body);
        struct wreq *w = wreq_new((size_t)n + blen);
        memcpy(w->data, req, (size_t)n);
        memcpy(w->data + n, pub_body, blen);
        int r = wreq_send((uv_stream_t *)&c->tcp, w, write_cb, c);
        if (r < 0)
            conn_reconnect(c, uv_strerror(r));
        return;
    }
    switch (cfg.tr) {
    case T_WS:
        n = ws_upgrade_request(req, sizeof req, cfg.sub_path, cfg.host, cfg.port, c->accept);
        break;
    case T_SSE:
        n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: "
                     "text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
                     cfg.sub_path, cfg.host, cfg.port);
        break;
    default: { /* lp, poll: since= the cursor as given, percent-encoded where a query needs it */
        char q[1600];
        size_t k = 0;
        if (c->cursor) {
            k = (size_t)snprintf(q, sizeof q,
                                 "%csince=", memchr(cfg.sub_path, '?', sub_path_len) ? '&' : '?');
            for (const char *p = c->cursor; *p && k + 4 < sizeof q; p++) {
                unsigned char ch = (unsigned char)*p;
                if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || strchr("-._~:", ch))
                    q[k++] = (char)ch;
                else
                    k += (size_t)snprintf(q + k, 4, "%%%02X", ch);
            }
        }
        q[k] = 0;
        n = snprintf(req, sizeof req, "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", cfg.sub_path, q,
                     cfg.host, cfg.port);
        c->req_at = uv_hrtime();
    }
    }
    send_bytes(c, req, (size_t)n);
}

static void sub_timer_cb(uv_timer_t *t)
{
    struct conn *c = t->data;
    c->timer_on = 0;
    if (c->state == S_OPEN && !c->busy && !shutting_down)
        send_request(c);
}

static void schedule_request(struct conn *c, uint64_t delay_ms)
{
    c->next_at = uv_hrtime() + delay_ms * 1000000;
    if (shutting_down || c->state != S_OPEN || c->close_after)
        return; /* the reconnect sends it */
    if (delay_ms == 0) {
        send_request(c);
        return;
    }
    c->timer_on = 1;
    uv_timer_start(&c->timer, sub_timer_cb, delay_ms, 0);
}

/* ---------- connections ---------- */

static void close_cb(uv_handle_t *h);
static void maybe_finish(void);

static void connect_cb(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->state != S_CONNECTING)
        return;
    if (status < 0) {
        note_error("connect: %s", uv_strerror(status));
        c->state = S_OPEN;
        if (c->role == SUB && !c->counted)
            sub_done(c, 0);
        else
            conn_close(c);
        if (c->role == PUB && !c->counted) {
            fprintf(stderr, "fanload: a publisher could not connect: %s\n", uv_strerror(status));
            begin_shutdown();
        }
        return;
    }
    c->state = S_OPEN;
    uv_tcp_nodelay(&c->tcp, 1);
    int r = uv_read_start((uv_stream_t *)&c->tcp, read_alloc_cb, read_cb);
    if (r < 0) {
        note_error("read_start: %s", uv_strerror(r));
        if (c->role == SUB && !c->counted)
            sub_done(c, 0);
        else
            conn_close(c);
        return;
    }
    if (c->role == PUB && cfg.pub_ws) { /* opened on its 101 (head_done) */
        char up[1024];
        c->busy = 0;
        c->rstate = R_HEAD;
        c->len = 0;
        int n = ws_upgrade_request(up, sizeof up, cfg.pub_path, cfg.host, cfg.port, c->accept);
        send_bytes(c, up, (size_t)n);
        return;
    }
    if (c->role == PUB) {
        c->busy = 0;
        c->rstate = R_NONE;
        if (!c->counted) {
            c->counted = 1;
            n_pubs_open++;
            n_pending--;
            start_more();
        } else if (phase == P_WARMUP || phase == P_MEASURE) {
            pub_tick(NULL);
        }
        return;
    }
    /* a reconnected lp / poll subscriber resumes from its cursor, when its request is due */
    uint64_t now = uv_hrtime();
    schedule_request(c, c->next_at > now ? (c->next_at - now + 999999) / 1000000 : 0);
}

static int conn_open(struct conn *c)
{
    c->tcp.data = c;
    c->creq.data = c;
    int r = uv_tcp_init(loop, &c->tcp);
    if (r < 0) {
        note_error("tcp_init: %s", uv_strerror(r));
        return r;
    }
    n_live_handles++;
    c->state = S_CONNECTING;
    c->rstate = R_NONE;
    c->close_after = 0;
    c->ws_up = 0;
    c->len = 0;
    memset(&c->ws, 0, sizeof c->ws);
    r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr, connect_cb);
    if (r < 0) {
        note_error("connect: %s", uv_strerror(r));
        c->state = S_CLOSING;
        uv_close((uv_handle_t *)&c->tcp, close_cb);
        return r;
    }
    return 0;
}

static void close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    n_live_handles--;
    c->state = S_CLOSED;
    if (c->reconnecting && !shutting_down) {
        c->reconnecting = 0;
        reconnects++;
        if (conn_open(c) == 0)
            return;
        if (c->role == SUB)
            n_dropped++;
    }
    if (cfg.window && c->role == SUB && c->ready && !c->gone && !shutting_down)
        window_forget(c);
    maybe_finish();
}

/* Once shutting down and every connection is closed: close the rest, so that uv_run returns. */
static void maybe_finish(void)
{
    static int finished;
    if (shutting_down && n_live_handles == 0 && !finished) {
        finished = 1;
        uv_handle_t *hs[] = {(uv_handle_t *)&phase_timer, (uv_handle_t *)&run_timer,
                             (uv_handle_t *)&pub_timer, (uv_handle_t *)&deadline_timer};
        for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
            if (!uv_is_closing(hs[i]))
                uv_close(hs[i], NULL);
        signals_close();
        for (int i = 0; i < cfg.n; i++)
            if (cfg.tr == T_LP || cfg.tr == T_POLL)
                if (!uv_is_closing((uv_handle_t *)&conns[i].timer))
                    uv_close((uv_handle_t *)&conns[i].timer, NULL);
    }
}

static void conn_close(struct conn *c)
{
    if (c->state == S_CLOSED || c->state == S_NEW || c->state == S_CLOSING)
        return;
    c->state = S_CLOSING;
    if (c->timer_on)
        uv_timer_stop(&c->timer), c->timer_on = 0;
    if (c->busy && c->role == PUB)
        pub_inflight--;
    c->busy = 0;
    uv_close((uv_handle_t *)&c->tcp, close_cb);
}

/* lp / poll subscribers and publishers: the server closed a keep-alive connection; open another
 * and carry on (a subscriber from its cursor; a publisher's message in flight is not resent). */
static void conn_reconnect(struct conn *c, const char *why)
{
    if (c->state != S_OPEN && c->state != S_CONNECTING)
        return;
    if (cfg.verbose)
        fprintf(stderr,
                "fanload: %.3f s: %s %d reconnects: %s (request outstanding: %d, bytes of answer: "
                "%u)\n",
                (double)(uv_hrtime() - t_start) / 1e9, c->role == PUB ? "pub" : "sub", c->id, why,
                c->busy, c->len);
    if (c->busy && c->role == PUB) {
        pub_errors++;
        note_error("publisher connection closed before the answer");
    }
    conn_close(c);
    if (!shutting_down)
        c->reconnecting = 1;
}

/* ---------- phases ---------- */

/* user + system CPU of the server processes, seconds (user alone in *user); -1 if unreadable */
static double servers_cpu_s(double *user)
{
    double tot = 0, us = 0;
    for (int i = 0; i < cfg.npids; i++) {
        double u, t = proc_cpu_s(cfg.pids[i], &u);
        if (t < 0)
            return -1;
        tot += t, us += u;
    }
    *user = us;
    return tot;
}

/* sum of a "Key:  N kB" line over the server processes' FILE (status or smaps_rollup) */
static long servers_kb(const char *file, const char *key)
{
    long sum = 0;
    size_t kl = strlen(key);
    for (int i = 0; i < cfg.npids; i++) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/%s", cfg.pids[i], file);
        FILE *f = fopen(path, "r");
        if (!f)
            return -1;
        long v = -1;
        while (fgets(line, sizeof line, f))
            if (strncmp(line, key, kl) == 0) {
                v = atol(line + kl);
                break;
            }
        fclose(f);
        if (v < 0)
            return -1;
        sum += v;
    }
    return sum;
}

/* A free publisher connection (round robin), or NULL. */
static struct conn *pub_free(void)
{
    static int rr;
    for (int k = 0; k < cfg.publishers; k++) {
        struct conn *p = &conns[cfg.n + (rr + k) % cfg.publishers];
        if (p->state == S_OPEN && !p->busy && !p->close_after && (!cfg.pub_ws || p->ws_up)) {
            rr = (rr + k + 1) % cfg.publishers;
            return p;
        }
    }
    return NULL;
}

/* Message seq, stamped t_us, goes out on c: a POST, or one text frame on the ws publisher. */
static void publish(struct conn *c, uint64_t seq, uint64_t t_us)
{
    c->pub_seq = seq, c->pub_t = t_us;
    size_t head = (size_t)snprintf(pub_body, cfg.size + 64,
                                   "{\"seq\":%" PRIu64 ",\"t\":%" PRIu64 ",\"pad\":\"", seq, t_us);
    size_t pad = cfg.size > head + 2 ? cfg.size - head - 2 : 0;
    memset(pub_body + head, 'x', pad);
    memcpy(pub_body + head + pad, "\"}", 3);
    if (!cfg.pub_ws) {
        pub_inflight++;
        send_request(c);
        return;
    }
    size_t blen = head + pad + 2;
    struct wreq *w = wreq_new(ws_frame_len(blen));
    ws_put_frame((uint8_t *)w->data, 0x1, pub_body, blen);
    if (wreq_send((uv_stream_t *)&c->tcp, w, write_cb, c) < 0) {
        conn_reconnect(c, "write failed");
        return;
    }
    /* no acknowledgement is read on a WebSocket: published once written */
    if (ts_measured(t_us * 1000 + t_start))
        pub_measured++;
}

static void pub_tick(uv_timer_t *t)
{
    uint64_t now = uv_hrtime();
    if (phase != P_WARMUP && phase != P_MEASURE)
        return;
    if (cfg.window) { /* closed loop: a free slot and a free connection */
        while (win_inflight < (uint64_t)cfg.window && win_subs > 0) {
            struct conn *c = pub_free();
            if (!c)
                break;
            uint64_t seq = pub_sent++;
            if (seq >= win_cap) {
                uint64_t cap = win_cap ? win_cap * 2 : 8192;
                win_left = xrealloc(win_left, cap * sizeof *win_left);
                memset(win_left + win_cap, 0, (cap - win_cap) * sizeof *win_left);
                win_cap = cap;
            }
            win_left[seq] = (uint32_t)win_subs;
            win_inflight++;
            publish(c, seq, (now - t_start) / 1000);
        }
        return;
    }
    uint64_t due = (uint64_t)((double)(now - t_pub0) * cfg.rate / 1e9) + 1;
    if (due > max_msgs)
        due = max_msgs;
    while (pub_sent < due) {
        struct conn *c = pub_free();
        if (!c)
            break; /* all publishers busy: what is due goes out as soon as one answers */
        uint64_t seq = pub_sent++;
        /* stamped with when it was due, not when it went out: a publish that waited for a free
         * connection (the server answering late) counts that wait in its latency */
        uint64_t due_at = t_pub0 + (uint64_t)((double)seq * 1e9 / cfg.rate);
        if (now > due_at && now - due_at > pub_lag_max)
            pub_lag_max = now - due_at;
        publish(c, seq, (due_at - t_start) / 1000);
    }
    if (due > pub_sent && due - pub_sent > pub_backlog_max)
        pub_backlog_max = due - pub_sent;
    /* wake up when the next message is due (libuv timers have ms resolution: up to 1 ms late),
     * not on a fixed tick whose period would be in every latency; with a backlog, an answer
     * freeing a connection sends it, the 10 ms are a fallback */
    uint64_t ms = 10;
    if (pub_sent >= due && pub_sent < max_msgs) {
        uint64_t next_at = t_pub0 + (uint64_t)((double)pub_sent * 1e9 / cfg.rate);
        ms = next_at > now ? (next_at - now + 999999) / 1000000 : 0;
    }
    uv_timer_start(&pub_timer, pub_tick, ms, 0);
}

static void drain_check(uv_timer_t *t)
{
    if (pub_inflight == 0 && delivered >= pub_measured * subs_at_measure)
        begin_shutdown();
}

static void run_timer_cb(uv_timer_t *t)
{
    uint64_t now = uv_hrtime();
    switch (phase) {
    case P_SETTLE: /* publishing starts: warm-up first */
        phase = P_WARMUP;
        t_pub0 = now;
        /* rate mode: pub_tick sets the timer for the next message due; window mode: sends are
         * released by completions, the tick only retries (a publisher connection back) */
        if (cfg.window)
            uv_timer_start(&pub_timer, pub_tick, 10, 10);
        pub_tick(NULL);
        if (cfg.warmup > 0) {
            uv_timer_start(&run_timer, run_timer_cb, (uint64_t)(cfg.warmup * 1000), 0);
            return;
        }
        /* fall through */
    case P_WARMUP: /* the measured seconds begin */
        phase = P_MEASURE;
        subs_at_measure = 0;
        for (int i = 0; i < cfg.n; i++)
            if (conns[i].ready && (conns[i].state == S_OPEN || conns[i].reconnecting ||
                                   conns[i].state == S_CONNECTING))
                subs_at_measure++;
        server_cpu_s = cfg.npids ? servers_cpu_s(&server_user_s) : -1;
        rusage_t0 = self_cpu_ns();
        t_measure_start = uv_hrtime();
        uv_timer_start(&run_timer, run_timer_cb, (uint64_t)(cfg.secs * 1000), 0);
        return;
    case P_MEASURE: /* stop publishing, wait for the last deliveries */
        pub_tick(NULL);
        phase = P_DRAIN;
        uv_timer_stop(&pub_timer);
        t_measure_end = uv_hrtime();
        if (server_cpu_s >= 0) {
            double u1 = 0, s1 = servers_cpu_s(&u1);
            server_cpu_s = s1 >= 0 ? s1 - server_cpu_s : -1;
            server_user_s = u1 - server_user_s;
        }
        if (cfg.npids) {
            server_rss_kb = servers_kb("status", "VmRSS:");
            server_pss_kb = servers_kb("smaps_rollup", "Pss:");
        }
        client_cpu_s = (double)(self_cpu_ns() - rusage_t0) / 1e9;
        uv_timer_start(&run_timer, run_timer_cb, (uint64_t)(cfg.drain * 1000), 0);
        uv_timer_start(&pub_timer, drain_check, 10, 10);
        return;
    default: /* drain time over */ begin_shutdown();
    }
}

static void all_subscribed(void)
{
    if (phase != P_SUBS)
        return;
    uv_timer_stop(&phase_timer);
    printf("subscribed %d of %d (%s), %.2f s\n", n_ready, cfg.n, tnames[cfg.tr],
           (double)(uv_hrtime() - t_start) / 1e9);
    if (n_failed)
        printf("failed %d (first error: %s)\n", n_failed, first_error[0] ? first_error : "?");
    fflush(stdout);
    if (n_ready == 0) {
        begin_shutdown();
        return;
    }
    phase = P_PUBS;
    start_more();
}

static void sub_done(struct conn *c, int ok)
{
    if (c->counted)
        return;
    c->counted = 1;
    n_pending--;
    if (ok) {
        c->ready = 1;
        n_ready++;
        win_subs++;
    } else {
        n_failed++;
        conn_close(c);
    }
    if (phase == P_SUBS) {
        start_more();
        if (n_ready + n_failed == cfg.n)
            all_subscribed();
    }
}

static void start_more(void)
{
    if (shutting_down)
        return;
    if (phase == P_SUBS) {
        while (n_pending < cfg.inflight && n_started < cfg.n) {
            struct conn *c = &conns[n_started++];
            n_pending++;
            if (conn_open(c) < 0) {
                c->counted = 1, n_pending--, n_failed++;
            }
        }
        if (n_ready + n_failed == cfg.n)
            all_subscribed();
        return;
    }
    if (phase == P_PUBS) {
        while (n_started < n_total) {
            struct conn *c = &conns[n_started++];
            n_pending++;
            if (conn_open(c) < 0) {
                fprintf(stderr, "fanload: cannot open a publisher connection\n");
                begin_shutdown();
                return;
            }
        }
        if (n_pubs_open == cfg.publishers) {
            phase = P_SETTLE;
            uv_timer_start(&run_timer, run_timer_cb, (uint64_t)(cfg.settle * 1000), 0);
        }
    }
}

static void phase_timeout_cb(uv_timer_t *t)
{
    fprintf(stderr,
            "fanload: subscribing timed out after %.0f s (%d subscribed, %d failed of %d)\n",
            cfg.connect_timeout, n_ready, n_failed, cfg.n);
    note_error("subscribing timed out");
    int started = n_started;
    for (int i = started; i < cfg.n; i++)
        conns[i].counted = 1, n_failed++;
    n_started = cfg.n; /* so that sub_done starts no more */
    for (int i = 0; i < started; i++)
        if (!conns[i].counted)
            sub_done(&conns[i], 0);
    all_subscribed();
}

static void deadline_cb(uv_timer_t *t)
{
    fprintf(stderr, "fanload: overall deadline passed; stopping\n");
    note_error("overall deadline passed");
    begin_shutdown();
}

static void begin_shutdown(void)
{
    if (shutting_down)
        return;
    if (phase < P_DRAIN && t_measure_start && !t_measure_end)
        t_measure_end = uv_hrtime();
    shutting_down = 1;
    phase = P_DONE;
    uv_timer_stop(&phase_timer);
    uv_timer_stop(&run_timer);
    uv_timer_stop(&pub_timer);
    uv_timer_stop(&deadline_timer);
    for (int i = 0; i < n_total; i++) {
        struct conn *c = &conns[i];
        c->reconnecting = 0;
        if (c->state == S_OPEN || c->state == S_CONNECTING)
            conn_close(c);
    }
    maybe_finish();
}

/* ---------- main ---------- */

static void usage(void)
{
    fprintf(
        stderr,
        "usage: fanload --transport ws|sse|lp|poll --port P [--host 127.0.0.1] [-n SUBSCRIBERS]\n"
        "               [--rate MSGS_PER_S | --window W] [-t SECS] [-s BYTES] [--channel NAME]\n"
        "               [--sub-path PATH] [--pub-path PATH] [--pub http|ws] [--publishers 16]\n"
        "               [--warmup 1] [--drain 5] [--settle 1]\n"
        "               [--poll-interval 1] [--inflight 200] [--connect-timeout 120]\n"
        "               [--server-pid PID[,PID...]] [--verbose]\n"
        "       fanload free-port\n");
    exit(2);
}

static int free_port(void)
{
    uv_loop_t *l = uv_default_loop();
    uv_tcp_t t;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof got;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_tcp_init(l, &t) || uv_tcp_bind(&t, (const struct sockaddr *)&a, 0) ||
        uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len))
        return 1;
    printf("%d\n", ntohs(((struct sockaddr_in *)&got)->sin_port));
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(l, UV_RUN_DEFAULT);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "free-port") == 0)
        return free_port();
    static const struct option opts[] = {{"transport", 1, 0, 'x'},
                                         {"host", 1, 0, 'H'},
                                         {"port", 1, 0, 'p'},
                                         {"channel", 1, 0, 'C'},
                                         {"sub-path", 1, 0, 'B'},
                                         {"pub-path", 1, 0, 'P'},
                                         {"subscribers", 1, 0, 'n'},
                                         {"rate", 1, 0, 'R'},
                                         {"time", 1, 0, 't'},
                                         {"size", 1, 0, 's'},
                                         {"publishers", 1, 0, 'U'},
                                         {"warmup", 1, 0, 'W'},
                                         {"drain", 1, 0, 'D'},
                                         {"settle", 1, 0, 'L'},
                                         {"poll-interval", 1, 0, 'I'},
                                         {"inflight", 1, 0, 'i'},
                                         {"connect-timeout", 1, 0, 'T'},
                                         {"server-pid", 1, 0, 'S'},
                                         {"verbose", 0, 0, 'v'},
                                         {"window", 1, 0, 'w'},
                                         {"pub", 1, 0, 'b'},
                                         {0, 0, 0, 0}};
    int o, tr = -1;
    while ((o = getopt_long(argc, argv, "n:t:s:", opts, NULL)) != -1) {
        switch (o) {
        case 'x':
            for (int k = 0; k < 4; k++)
                if (strcmp(optarg, tnames[k]) == 0)
                    tr = k;
            if (tr < 0)
                usage();
            break;
        case 'H': cfg.host = optarg; break;
        case 'p': cfg.port = atoi(optarg); break;
        case 'C': cfg.channel = optarg; break;
        case 'B': cfg.sub_path = optarg; break;
        case 'P': cfg.pub_path = optarg; break;
        case 'n': cfg.n = atoi(optarg); break;
        case 'R': cfg.rate = atof(optarg); break;
        case 't': cfg.secs = atof(optarg); break;
        case 's': cfg.size = (size_t)strtoull(optarg, NULL, 10); break;
        case 'U': cfg.publishers = atoi(optarg), cfg.publishers_set = 1; break;
        case 'w': cfg.window = atoi(optarg); break;
        case 'b':
            if (strcmp(optarg, "ws") == 0)
                cfg.pub_ws = 1;
            else if (strcmp(optarg, "http") != 0)
                usage();
            break;
        case 'W': cfg.warmup = atof(optarg); break;
        case 'D': cfg.drain = atof(optarg); break;
        case 'L': cfg.settle = atof(optarg); break;
        case 'I': cfg.poll_interval = atof(optarg); break;
        case 'i': cfg.inflight = atoi(optarg); break;
        case 'T': cfg.connect_timeout = atof(optarg); break;
        case 'v': cfg.verbose = 1; break;
        case 'S':
            for (char *p = optarg; *p && cfg.npids < MAX_PIDS;) {
                cfg.pids[cfg.npids++] = (int)strtol(p, &p, 10);
                if (*p == ',')
                    p++;
                else if (*p)
                    usage();
            }
            break;
        default: usage();
        }
    }
    if (tr < 0 || optind != argc)
        usage();
    cfg.tr = (enum transport)tr;
    if (cfg.window < 0 || cfg.window > 65536)
        usage();
    if (cfg.pub_ws)
        cfg.publishers = 1; /* one WebSocket */
    else if (cfg.window && !cfg.publishers_set)
        cfg.publishers = cfg.window < 256 ? cfg.window : 256;
    if (cfg.window)
        cfg.rate = 0; /* unused: closed loop */
    if (cfg.port <= 0 || cfg.port > 65535 || cfg.n <= 0 || cfg.n > 1000000 ||
        (!cfg.window && (!(cfg.rate > 0) || cfg.rate > 1e6)) || !(cfg.secs > 0) ||
        cfg.secs > 3600 || cfg.size < 40 || cfg.size > 1000000 || cfg.publishers < 1 ||
        cfg.publishers > 256 || cfg.warmup < 0 || cfg.warmup > 600 || cfg.drain < 0 ||
        cfg.drain > 600 || cfg.settle < 0 || cfg.settle > 600 || !(cfg.poll_interval > 0) ||
        cfg.poll_interval > 600 || cfg.inflight < 1 || strlen(cfg.channel) > 200)
        usage();
    static char subp[512], pubp[512];
    if (!cfg.sub_path)
        snprintf(subp, sizeof subp, "/%s/%s", tnames[cfg.tr], cfg.channel), cfg.sub_path = subp;
    if (!cfg.pub_path && cfg.pub_ws && cfg.tr == T_WS)
        cfg.pub_path = cfg.sub_path;
    else if (!cfg.pub_path && cfg.pub_ws)
        snprintf(pubp, sizeof pubp, "/ws/%s", cfg.channel), cfg.pub_path = pubp;
    else if (!cfg.pub_path)
        snprintf(pubp, sizeof pubp, "/pub/%s", cfg.channel), cfg.pub_path = pubp;
    if (cfg.sub_path[0] != '/' || cfg.pub_path[0] != '/' || strlen(cfg.sub_path) > 400 ||
        strlen(cfg.pub_path) > 400)
        usage();
    sub_path_len = strlen(cfg.sub_path);
    n_total = cfg.n + cfg.publishers;
    if (load_setup(cfg.host, cfg.port, n_total, &addr) < 0)
        return 2;
    /* window mode: no bound, the bitmaps grow (deliver) */
    max_msgs = cfg.window ? 8192 : (uint64_t)(cfg.rate * (cfg.warmup + cfg.secs)) + 2;

    loop = uv_default_loop();
    conns = calloc((size_t)n_total, sizeof *conns);
    pub_body = malloc(cfg.size + 64);
    if (!conns || !pub_body)
        return 2;
    for (int i = 0; i < n_total; i++) {
        struct conn *c = &conns[i];
        c->id = i;
        c->role = i < cfg.n ? SUB : PUB;
        if (c->role == SUB) {
            c->seen_cap = (uint32_t)((max_msgs + 7) / 8);
            c->seen = calloc(c->seen_cap, 1);
            if (!c->seen)
                return 2;
            if (cfg.tr == T_LP || cfg.tr == T_POLL) {
                uv_timer_init(loop, &c->timer);
                c->timer.data = c;
            }
        }
    }
    uv_timer_init(loop, &phase_timer);
    uv_timer_init(loop, &run_timer);
    uv_timer_init(loop, &pub_timer);
    uv_timer_init(loop, &deadline_timer);
    signals_start(loop, 0, begin_shutdown, &shutting_down);
    uv_timer_start(&phase_timer, phase_timeout_cb, (uint64_t)(cfg.connect_timeout * 1000), 0);
    /* every wait is bounded: subscribing, then settle + warm-up + measured + drain, plus slack */
    uv_timer_start(
        &deadline_timer, deadline_cb,
        (uint64_t)((cfg.connect_timeout + cfg.settle + cfg.warmup + cfg.secs + cfg.drain + 60) *
                   1000),
        0);
    t_start = uv_hrtime();
    phase = P_SUBS;
    start_more();
    uv_run(loop, UV_RUN_DEFAULT);

    double secs =
        t_measure_end > t_measure_start ? (double)(t_measure_end - t_measure_start) / 1e9 : 0;
    double dps = secs > 0 ? (double)arrivals_window / secs : 0;
    double exp_dps = cfg.rate * (double)subs_at_measure;
    expected = pub_measured * subs_at_measure;
    uint64_t lost = expected > delivered ? expected - delivered : 0;
    double cpu_us =
        server_cpu_s >= 0 && arrivals_window ? server_cpu_s * 1e6 / (double)arrivals_window : -1;
    double mps = secs > 0 ? (double)pub_measured / secs : 0;
    char load[64];
    if (cfg.window)
        snprintf(load, sizeof load, "window %d", cfg.window);
    else
        snprintf(load, sizeof load, "%.0f msg/s", cfg.rate);
    printf("fanout %s: %" PRIu64 " subscribers, %d %s publisher connection%s, %s of %zu B, %.2f s "
           "measured after %.1f s warm-up\n",
           tnames[cfg.tr], subs_at_measure, cfg.publishers, cfg.pub_ws ? "ws" : "http",
           cfg.publishers == 1 ? "" : "s", load, cfg.size, secs, cfg.warmup);
    printf("  published %" PRIu64 " in the measured seconds (%.0f/s; %" PRIu64 " sent, %" PRIu64
           " acknowledged in all%s,"
           " %" PRIu64 " failed, backlog max %" PRIu64 ", publish lag max %.1f ms)\n",
           pub_measured, mps, pub_sent, pub_acked, cfg.pub_ws ? " (ws: acks not read)" : "",
           pub_errors, pub_backlog_max, (double)pub_lag_max / 1e6);
    if (cfg.window)
        printf("  window: %" PRIu64 " messages still in flight at the end\n", win_inflight);
    printf("  deliveries expected %" PRIu64 ", delivered %" PRIu64 ", lost %" PRIu64
           " (%.4f%%), duplicates %" PRIu64 "\n",
           expected, delivered, lost, expected ? 100.0 * (double)lost / (double)expected : 0, dups);
    printf("  %.0f deliveries/s (offered %.0f/s)\n", dps, exp_dps);
    printf("  latency publish -> subscriber: p50 %.0f us, p99 %.0f us, max %.0f us\n",
           hist_pct(&lat, 50) / 1e3, hist_pct(&lat, 99) / 1e3, (double)lat.max / 1e3);
    if (cpu_us >= 0)
        printf("  server CPU %.2f s (user %.2f, system %.2f): %.2f us per delivery; RSS %ld kB, "
               "Pss %ld kB\n",
               server_cpu_s, server_user_s, server_cpu_s - server_user_s, cpu_us, server_rss_kb,
               server_pss_kb);
    printf("  fanload CPU %.2f s over the measured seconds; %" PRIu64 " requests, %" PRIu64
           " reconnects\n",
           client_cpu_s, requests, reconnects);
    if (errors_proto || dups || gaps_reported || n_dropped || n_failed || pub_errors ||
        first_error[0] || win_inflight)
        printf("  problems: protocol %" PRIu64 ", duplicates %" PRIu64 ", gaps reported %" PRIu64
               ", other events %" PRIu64 ", failed %d, dropped %d, publish errors %" PRIu64
               "; first: %s\n",
               errors_proto, dups, gaps_reported, sse_other, n_failed, n_dropped, pub_errors,
               first_error[0] ? first_error : "-");
    printf("RESULT mode=fanout transport=%s subs=%" PRIu64
           " rate=%.0f size=%zu secs=%.2f published=%" PRIu64 " expected=%" PRIu64
           " delivered=%" PRIu64 " lost=%" PRIu64 " dups=%" PRIu64 " deliveries_per_s=%.0f"
           " offered_per_s=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f server_cpu_s=%.3f "
           "server_user_s=%.3f"
           " cpu_us_per_delivery=%.3f server_rss_kb=%ld server_pss_kb=%ld client_cpu_s=%.2f "
           "requests=%" PRIu64 " reconnects=%" PRIu64 " pub_errors=%" PRIu64 " backlog_max=%" PRIu64
           " pub_lag_ms=%.1f gaps=%" PRIu64 " errors=%" PRIu64 " failed=%d dropped=%d"
           " window=%d pub=%s msgs_per_s=%.0f window_stuck=%" PRIu64 "\n",
           tnames[cfg.tr], subs_at_measure, cfg.rate, cfg.size, secs, pub_measured, expected,
           delivered, lost, dups, dps, exp_dps, hist_pct(&lat, 50) / 1e3, hist_pct(&lat, 99) / 1e3,
           (double)lat.max / 1e3, server_cpu_s, server_user_s, cpu_us, server_rss_kb, server_pss_kb,
           client_cpu_s, requests, reconnects, pub_errors, pub_backlog_max,
           (double)pub_lag_max / 1e6, gaps_reported, errors_proto, n_failed, n_dropped, cfg.window,
           cfg.pub_ws ? "ws" : "http", mps, win_inflight);
    uv_loop_close(loop);
    return n_failed || errors_proto ? 1 : 0;
}
