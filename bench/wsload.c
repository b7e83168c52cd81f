/* wsload: a small WebSocket load generator on libuv, for bench/run.sh.
 *
 * Raw RFC 6455 client: HTTP/1.1 Upgrade with a random 16-byte base64 key, the
 * Sec-WebSocket-Accept answer checked (§4.1), masked client frames (§5.3), ping answered
 * with pong, close handshake on the way out (§5.5.1). Loopback targets only.
 *
 *   wsload idle --port P [--path /echo] [-n 10000] [--inflight 200] [--hold 600]
 *       Open N connections (at most --inflight connecting at once), check each got 101,
 *       print "connected N", then hold them idle until SIGINT/SIGTERM, EOF on stdin (when
 *       stdin is a pipe or a terminal) or --hold seconds, whichever comes first; then close.
 *
 *   wsload echo --port P [--path /echo] [-c 50] [-w 8] [-s 16] [-t 10] [--warmup 1] [--binary]
 *       C connections, each keeping W messages of S bytes in flight to an echo endpoint.
 *       After --warmup seconds, count for T seconds the echoed messages (checked by length
 *       and, for S >= 16, by the sequence number written in their first 16 bytes) and print
 *       messages/s, payload MB/s (10^6 bytes, one direction) and round-trip percentiles.
 *
 * Socket.IO (Engine.IO v4 over WebSocket, Socket.IO v5) on the same client: after the 101, the
 * Engine.IO open packet "0{...}" must arrive; the client sends "40" (CONNECT to "/") and waits
 * for "40{...}"; it answers every Engine.IO ping "2" with "3". Default path
 * /socket.io/?EIO=4&transport=websocket.
 *
 *   wsload sio-idle --port P [-n 10000] [--inflight 200] [--hold 600]
 *       As idle, but each client is a connected Socket.IO client (memory per idle client).
 *
 *   wsload sio-fanout --port P [-n 1000] [--publishers 1] [--rate 50] [-s 100] [-t 10]
 *                     [--warmup 1] [--drain 5] [--server-pid PID] [--window W]
 *       For a server that broadcasts every "message" event to all its clients (the tutorial's
 *       chat: io.emit('message', msg)). N subscribers and P more publisher clients connect;
 *       after 1 s (the welcome messages) the publishers emit, together, R events per second
 *       42["message",{"ts":T,"seq":K,"p":I,"pad":"xx.."}] padded to S bytes (T: CLOCK_MONOTONIC
 *       ns since wsload started, an exact JavaScript number), for --warmup + T seconds. With
 *       --window W the loop is closed instead (--rate is not used): the publishers (round robin)
 *       emit the next event whenever fewer than W are outstanding, an event being outstanding
 *       until every subscriber open when it was emitted has received it (or has gone). Every
 *       client checks each publisher's sequence (a duplicate or reordering is an error, a gap a
 *       loss); subscribers measure latency from T. Counted: events published in the T measured
 *       seconds x subscribers = expected; those delivered within --drain seconds after
 *       publishing stops = delivered; expected - delivered = lost. deliveries/s counts every
 *       broadcast arrival (publishers' too) during the measured seconds. With --server-pid,
 *       the server's user+system CPU (/proc/PID/stat) over the measured seconds / those arrivals
 *       = CPU us per delivery.
 *
 * The last line of each mode is "RESULT key=value ..." for scripts.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "loadlib.h"

/* ---------- configuration and global state ---------- */

enum mode { MODE_IDLE, MODE_ECHO, MODE_SIO_IDLE, MODE_SIO_FANOUT };

static struct {
    enum mode mode;
    const char *host;
    int port;
    const char *path;
    int n;        /* connections */
    int inflight; /* connects + handshakes at once */
    double hold;  /* idle: max seconds to hold */
    double connect_timeout;
    int window;    /* echo: messages in flight per connection */
    size_t size;   /* echo: payload bytes; sio-fanout: bytes of each event packet */
    double secs;   /* echo: measured seconds */
    double warmup; /* echo: unmeasured seconds before */
    int binary;
    int verbose;
    int publishers; /* sio-fanout: publisher clients (beyond the n subscribers) */
    double rate;    /* sio-fanout: events per second, all publishers together */
    double drain;   /* sio-fanout: max seconds to wait for deliveries after publishing stops */
    int server_pid; /* sio-fanout: read this process's CPU time over the measured seconds */
    int fan_window; /* sio-fanout: 0 publish at --rate, else at most this many events outstanding */
} cfg = {
    .host = "127.0.0.1",
    .port = 0,
    .path = NULL,
    .n = 0,
    .inflight = 200,
    .hold = 600,
    .connect_timeout = 120,
    .window = 8,
    .size = SIZE_MAX,
    .secs = 10,
    .warmup = 1,
    .publishers = 1,
    .rate = 50,
    .drain = 5,
};

static int is_sio(void)
{
    return cfg.mode == MODE_SIO_IDLE || cfg.mode == MODE_SIO_FANOUT;
}
static int is_idle(void)
{
    return cfg.mode == MODE_IDLE || cfg.mode == MODE_SIO_IDLE;
}

/* C_SIO: WebSocket open, Engine.IO / Socket.IO handshake under way (sio modes only). */
enum cstate { C_NEW, C_CONNECTING, C_HANDSHAKE, C_SIO, C_OPEN, C_CLOSING, C_CLOSED };

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    enum cstate state;
    int id;
    char accept[32]; /* expected Sec-WebSocket-Accept */
    char *hs;        /* handshake response so far (only during the handshake) */
    size_t hs_len;
    struct ws_parser p;
    /* the data message being read: no payload is kept but its first 16 bytes (the echo's sequence
     * number), and in the sio modes the whole message (mb) */
    uint64_t msg_len;
    uint8_t head[16];
    uint8_t head_len;
    uint64_t seq_sent, seq_recv;
    uint64_t *sent_at; /* echo: ring of send times, window entries */
    unsigned to_send;  /* echo: replies received this read, to be answered in one write */
    /* sio modes: the current data message, whole (Engine.IO packets are small) */
    char *mb;
    uint32_t mb_len, mb_cap;
    uint8_t mb_over;    /* message longer than MB_MAX: only its start is kept */
    uint8_t sio_step;   /* C_SIO: 0 waiting for the open packet, 1 for the CONNECT answer */
    int pub;            /* sio-fanout: publisher index, -1 for a subscriber */
    uint64_t *next_seq; /* sio-fanout: next sequence number expected from each publisher */
};
#define MB_MAX 65536

static uv_loop_t *loop;
static struct conn *conns;
static int n_started, n_pending, n_open, n_failed, n_done, n_dropped, n_live_handles;
static int n_requested, n_ready;
static int connect_phase_over, shutting_down, measuring, sending;
static uv_timer_t phase_timer, close_timer, run_timer;
static uv_pipe_t stdin_pipe;
static uv_tty_t stdin_tty;
static int stdin_kind; /* 0 none, 1 pipe, 2 tty */
static struct sockaddr_in addr;
static uint64_t errors_len, errors_seq, errors_proto;
static uint64_t measured_msgs, warm_msgs, total_msgs;
static uint64_t t_start, t_measure_start, t_measure_end;
static uint8_t *payload_template;
static struct hist lat;   /* echo: round trips; sio-fanout: publish -> subscriber */
static uint64_t read_now; /* when the read being parsed arrived */

/* sio-fanout */
static uv_timer_t pub_timer;
static int fan_phase;           /* 0 settling, 1 warm-up, 2 measuring, 3 draining */
static struct conn **pub_conns; /* the publishers */
static uint64_t *pub_seq;       /* next sequence number of each publisher */
static char *pub_buf;           /* one event being built */
static uint64_t t_pub0, pub_total, pub_measured, pub_skipped;
static int n_subs; /* subscribers open when the measured seconds began */
static uint64_t expected, delivered, arrivals_window, arrivals_total, pub_self;
static uint64_t welcomes, errors_dup, seq_gaps;
static double server_cpu_s = -1, server_user_s, client_cpu_s;
static uint64_t rusage_t0;

/* sio-fanout --window: event g (the g-th emitted, over all publishers) is publisher g % P's
 * sequence number g / P; events [win_done, win_next) are outstanding, each in slot g % W with
 * the subscribers it waits for (need) and those that have it (got). A subscriber receives its
 * events in order, so events complete in order too. */
struct win_slot {
    uint32_t need, got;
};
static struct win_slot *win;
static uint64_t win_done, win_next;
static int win_open;  /* publishing in window mode (warm-up and measured seconds) */
static int live_subs; /* subscribers open now (window mode) */
static void win_fill(void);

static void start_more(void);
static void handshake_done(struct conn *c, int ok);
static void conn_close(struct conn *c);
static void connect_phase_done(void);
static void begin_shutdown(void);
static void maybe_finish(void);

/* ---------- writing frames ---------- */

static void write_cb(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = req->data;
    free(w);
    if (status < 0 && status != UV_ECANCELED && c->state < C_CLOSING) {
        note_error("write: %s", uv_strerror(status));
        conn_close(c);
    }
}

static void send_wreq(struct conn *c, struct wreq *w)
{
    if (wreq_send((uv_stream_t *)&c->tcp, w, write_cb, c) < 0)
        conn_close(c);
}

/* One masked frame (control, or a whole text/binary message) in its own write. */
static void send_frame(struct conn *c, int opcode, const uint8_t *payload, size_t len)
{
    struct wreq *w = wreq_new(ws_frame_len(len));
    ws_put_frame((uint8_t *)w->data, opcode, payload, len);
    send_wreq(c, w);
}

static void send_control(struct conn *c, int opcode, const uint8_t *payload, size_t len)
{
    send_frame(c, opcode, payload, len);
}

static void send_text(struct conn *c, const char *s, size_t len)
{
    send_frame(c, 0x1, (const uint8_t *)s, len);
}

static void send_close(struct conn *c)
{
    static const uint8_t code[2] = {0x03, 0xE8}; /* 1000 normal closure */
    send_control(c, 0x8, code, 2);
}

/* Echo: send k data messages in one write, each stamped with its sequence number. */
static void send_messages(struct conn *c, unsigned k)
{
    size_t flen = ws_frame_len(cfg.size);
    struct wreq *w = wreq_new(flen * k);
    uint8_t *out = (uint8_t *)w->data;
    uint64_t now = uv_hrtime();
    for (unsigned i = 0; i < k; i++) {
        size_t hlen;
        uint8_t *key = ws_put_header(out, cfg.binary ? 0x2 : 0x1, cfg.size, &hlen);
        uint8_t *pl = out + hlen;
        memcpy(pl, payload_template, cfg.size);
        if (cfg.size >= 16) {
            static const char hex[] = "0123456789abcdef";
            uint64_t s = c->seq_sent;
            for (int d = 15; d >= 0; d--, s >>= 4)
                pl[d] = (uint8_t)hex[s & 15];
        }
        ws_mask(pl, cfg.size, key);
        c->sent_at[c->seq_sent % (uint64_t)cfg.window] = now;
        c->seq_sent++;
        out += hlen + cfg.size;
    }
    send_wreq(c, w);
}

/* ---------- reading frames ---------- */

static void on_message(struct conn *c, uint64_t now)
{
    if (cfg.mode != MODE_ECHO)
        return; /* idle: a server push is fine, nothing to check */
    if (c->seq_recv >= c->seq_sent) {
        errors_proto++;
        note_error("conn %d: message that was not sent", c->id);
        return;
    }
    if (c->msg_len != cfg.size) {
        errors_len++;
        note_error("conn %d: echoed length %" PRIu64 ", sent %zu", c->id, c->msg_len, cfg.size);
    } else if (cfg.size >= 16) {
        uint64_t s = 0;
        for (int d = 0; d < 16; d++) {
            uint8_t ch = c->head[d];
            s = s << 4 | (uint64_t)(ch <= '9' ? ch - '0' : ch - 'a' + 10);
        }
        if (s != c->seq_recv) {
            errors_seq++;
            note_error("conn %d: echoed seq %" PRIu64 ", expected %" PRIu64, c->id, s, c->seq_recv);
        }
    }
    uint64_t sent = c->sent_at[c->seq_recv % (uint64_t)cfg.window];
    c->seq_recv++;
    total_msgs++;
    if (measuring) {
        measured_msgs++;
        hist_add(&lat, now - sent);
    } else if (sending) {
        warm_msgs++;
    }
    if (sending)
        c->to_send++;
}

/* ---------- Socket.IO over the WebSocket ---------- */

/* An event was published in the measured seconds iff its timestamp falls in them; publishers
 * and subscribers share this clock (one process), so both sides agree on every event. */
static int ts_measured(uint64_t ts)
{
    return t_measure_start && ts >= t_measure_start && (t_measure_end == 0 || ts < t_measure_end);
}

/* ---------- sio-fanout --window: a closed loop ---------- */

static int win_outstanding(uint64_t g)
{
    return g >= win_done && g < win_next;
}

/* Complete the oldest events every subscriber now has, then emit more. */
static void win_advance(void)
{
    while (win_done < win_next) {
        struct win_slot *sl = &win[win_done % (uint64_t)cfg.fan_window];
        if (sl->got < sl->need)
            break;
        win_done++;
    }
    win_fill();
}

/* A subscriber got publisher pi's events from..to (a gap counts as received here: it is lost,
 * and counted as such, but must not hold the window). */
static void win_received(uint64_t pi, uint64_t from, uint64_t to)
{
    uint64_t P = (uint64_t)cfg.publishers;
    for (uint64_t s = from; s <= to; s++) {
        uint64_t g = s * P + pi;
        if (win_outstanding(g))
            win[g % (uint64_t)cfg.fan_window].got++;
    }
    win_advance();
}

/* A subscriber left while events were outstanding: those it had not received stop waiting for it.
 */
static void win_sub_gone(struct conn *c)
{
    uint64_t P = (uint64_t)cfg.publishers;
    live_subs--;
    for (uint64_t g = win_done; g < win_next; g++)
        if (g / P >= c->next_seq[g % P])
            win[g % (uint64_t)cfg.fan_window].need--;
    win_advance();
}

/* A broadcast "message" event: check its sequence, count it, time it. */
static void sio_event(struct conn *c, uint64_t now)
{
    const char *m = c->mb;
    size_t n = c->mb_len;
    static const char pre[] = "42[\"message\",";
    if (n < sizeof pre - 1 || memcmp(m, pre, sizeof pre - 1) != 0)
        return; /* another event */
    const char *end = m + n;
    uint64_t ts, seq, pi;
    if (!json_uint(m, end, "\"ts\"", &ts)) {
        welcomes++; /* {"type":"init","message":"欢迎连接"} */
        return;
    }
    if (!json_uint(m, end, "\"seq\"", &seq) || !json_uint(m, end, "\"p\"", &pi) ||
        pi >= (uint64_t)cfg.publishers) {
        errors_proto++;
        note_error("conn %d: unexpected event %.80s", c->id, m);
        return;
    }
    uint64_t want = c->next_seq[pi];
    if (seq < want) {
        errors_dup++;
        note_error("conn %d: publisher %" PRIu64 " seq %" PRIu64 " after %" PRIu64
                   " (duplicate or reordered)",
                   c->id, pi, seq, want - 1);
        return;
    }
    if (seq > want) {
        seq_gaps += seq - want;
        note_error("conn %d: publisher %" PRIu64 " seq %" PRIu64 ", expected %" PRIu64 " (gap)",
                   c->id, pi, seq, want);
    }
    c->next_seq[pi] = seq + 1;
    if (cfg.fan_window && c->pub < 0)
        win_received(pi, want, seq);
    arrivals_total++;
    if (measuring)
        arrivals_window++;
    if (c->pub >= 0) {
        pub_self++; /* io.emit includes the sender */
        return;
    }
    uint64_t t = ts + t_start;
    if (ts_measured(t)) {
        delivered++;
        hist_add(&lat, now - t);
    }
}

/* One whole Engine.IO packet (a text message); returns -1 if the connection must stop. */
static int sio_message(struct conn *c, uint64_t now)
{
    const char *m = c->mb;
    size_t n = c->mb_len;
    if (c->p.msg_opcode != 0x1 || n == 0) {
        errors_proto++;
        note_error("conn %d: %s Engine.IO packet", c->id, n ? "binary" : "empty");
        return c->state == C_SIO ? (handshake_done(c, 0), -1) : 0;
    }
    if (m[0] == '2') { /* ping: answer pong with the same payload */
        char pong[128];
        size_t l = n < sizeof pong ? n : sizeof pong;
        memcpy(pong, m, l);
        pong[0] = '3';
        send_text(c, pong, l);
        return 0;
    }
    if (c->state == C_SIO) {
        if (c->sio_step == 0) {
            if (m[0] != '0' || n < 2 || m[1] != '{') {
                note_error("conn %d: expected the Engine.IO open packet, got \"%.60s\"", c->id, m);
                handshake_done(c, 0);
                return -1;
            }
            send_text(c, "40", 2); /* Socket.IO CONNECT to the main namespace */
            c->sio_step = 1;
            return 0;
        }
        if (n >= 2 && m[0] == '4' && m[1] == '0') {
            handshake_done(c, 1);
            return 0;
        }
        if (n >= 2 && m[0] == '4' && m[1] == '4') {
            note_error("conn %d: CONNECT_ERROR %.80s", c->id, m);
            handshake_done(c, 0);
            return -1;
        }
        return 0; /* noop and friends */
    }
    if (cfg.mode == MODE_SIO_FANOUT && n >= 2 && m[0] == '4' && m[1] == '2')
        sio_event(c, now);
    return 0;
}

static void mb_append(struct conn *c, const uint8_t *d, size_t n)
{
    if (c->mb_len + n > MB_MAX) {
        c->mb_over = 1;
        n = MB_MAX - c->mb_len;
    }
    if (c->mb_len + n + 1 > c->mb_cap) {
        uint32_t cap = c->mb_cap ? c->mb_cap : 256;
        while (cap < c->mb_len + n + 1)
            cap *= 2;
        c->mb = xrealloc(c->mb, cap), c->mb_cap = cap;
    }
    memcpy(c->mb + c->mb_len, d, n);
    c->mb_len += (uint32_t)n;
    c->mb[c->mb_len] = 0;
}

/* ---------- the frame parser's handler ---------- */

static void ws_message_start(void *ctx)
{
    struct conn *c = ctx;
    c->msg_len = 0, c->head_len = 0;
    c->mb_len = 0, c->mb_over = 0;
}

static void ws_data(void *ctx, const uint8_t *d, size_t n)
{
    struct conn *c = ctx;
    size_t h = n;
    if (h > sizeof c->head - c->head_len)
        h = sizeof c->head - c->head_len;
    memcpy(c->head + c->head_len, d, h);
    c->head_len += (uint8_t)h;
    c->msg_len += n;
    if (is_sio())
        mb_append(c, d, n);
}

static int ws_frame_end(void *ctx, struct ws_parser *p)
{
    struct conn *c = ctx;
    uint64_t now = read_now;
    switch (p->opcode) {
    case 0x9: /* ping */
        if (c->state == C_OPEN || c->state == C_SIO)
            send_control(c, 0xA, p->ctl, p->ctl_len);
        break;
    case 0xA: break; /* pong */
    case 0x8:        /* close */
        if (c->state == C_OPEN) {
            if (!shutting_down)
                n_dropped++;
            n_open--;
            if (cfg.fan_window && c->pub < 0 && win)
                win_sub_gone(c);
            send_control(c, 0x8, p->ctl, p->ctl_len >= 2 ? 2 : 0);
        } else if (c->state == C_SIO) {
            note_error("conn %d: WebSocket closed during the Socket.IO handshake", c->id);
            handshake_done(c, 0);
            return -1;
        }
        c->state = C_CLOSING;
        return -1; /* the server closes TCP next; our uv_close follows on EOF or now */
    default:
        if (!p->fin)
            break;
        if (is_sio()) {
            if (sio_message(c, now) < 0)
                return -1;
        } else {
            on_message(c, now);
        }
    }
    return 0;
}

static void ws_error(void *ctx, const char *what)
{
    struct conn *c = ctx;
    errors_proto++;
    note_error("conn %d: %s", c->id, what);
}

static const struct ws_handler ws_handler = {.message_start = ws_message_start,
                                             .data = ws_data,
                                             .frame_end = ws_frame_end,
                                             .error = ws_error};

static void handshake_done(struct conn *c, int ok)
{
    if (c->hs)
        free(c->hs), c->hs = NULL;
    n_pending--;
    if (ok) {
        c->state = C_OPEN;
        n_open++;
    } else {
        n_failed++;
        conn_close(c);
    }
    n_done++;
    if (!connect_phase_over) {
        start_more();
        if (n_done == cfg.n)
            connect_phase_done();
    }
}

/* Returns bytes of the response consumed by the headers, 0 if incomplete, -1 if bad. */
static long check_handshake(struct conn *c)
{
    char *end = memmem(c->hs, c->hs_len, "\r\n\r\n", 4);
    if (!end)
        return c->hs_len > 8192 ? -1 : 0;
    *end = 0;
    if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0) {
        char *eol = strstr(c->hs, "\r\n");
        if (eol)
            *eol = 0;
        note_error("conn %d: handshake answered \"%.80s\"", c->id, c->hs);
        return -1;
    }
    char v[64];
    if (!http_header(c->hs, "Sec-WebSocket-Accept", v, sizeof v) || strcmp(v, c->accept) != 0) {
        note_error("conn %d: missing or wrong Sec-WebSocket-Accept", c->id);
        return -1;
    }
    return (end - c->hs) + 4;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (c->state == C_HANDSHAKE || c->state == C_SIO) {
            note_error("conn %d: %s during handshake", c->id, uv_strerror((int)nread));
            handshake_done(c, 0);
            return;
        }
        if (c->state == C_OPEN && !shutting_down) {
            n_dropped++;
            if (nread != UV_EOF)
                note_error("conn %d: read: %s", c->id, uv_strerror((int)nread));
        }
        conn_close(c);
        return;
    }
    uint64_t now = uv_hrtime();
    const uint8_t *d = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    if (c->state == C_HANDSHAKE) {
        c->hs = xrealloc(c->hs, c->hs_len + n + 1);
        memcpy(c->hs + c->hs_len, d, n);
        c->hs_len += n;
        long used = check_handshake(c);
        if (used == 0)
            return;
        if (used < 0) {
            handshake_done(c, 0);
            return;
        }
        size_t rest = c->hs_len - (size_t)used;
        size_t old = c->hs_len - n; /* bytes of this read that belong to the headers: used - old */
        d += (size_t)used - old;
        n = rest;
        if (is_sio()) { /* WebSocket up; the Engine.IO open packet comes next */
            free(c->hs), c->hs = NULL;
            c->state = C_SIO;
            c->sio_step = 0;
        } else {
            handshake_done(c, 1);
            if (c->state != C_OPEN)
                return;
        }
    }
    if (c->state != C_OPEN && c->state != C_CLOSING && c->state != C_SIO)
        return;
    c->to_send = 0;
    read_now = now;
    int r = ws_parse(&c->p, d, n, &ws_handler, c);
    if (c->to_send && c->state == C_OPEN)
        send_messages(c, c->to_send);
    c->to_send = 0;
    if (r < 0 && c->state != C_CLOSING)
        conn_close(c);
}

/* ---------- connecting ---------- */

static void connect_cb(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->state != C_CONNECTING)
        return; /* given up on (phase timeout or shutdown) */
    if (status < 0) {
        note_error("connect: %s", uv_strerror(status));
        c->state = C_HANDSHAKE; /* so handshake_done accounts it */
        handshake_done(c, 0);
        return;
    }
    c->state = C_HANDSHAKE;
    struct wreq *w = wreq_new(1024);
    w->buf.len =
        (unsigned)ws_upgrade_request(w->data, 1024, cfg.path, cfg.host, cfg.port, c->accept);
    uv_tcp_nodelay(&c->tcp, 1);
    int r = uv_read_start((uv_stream_t *)&c->tcp, read_alloc_cb, read_cb);
    if (r < 0) {
        note_error("read_start: %s", uv_strerror(r));
        free(w);
        handshake_done(c, 0);
        return;
    }
    send_wreq(c, w);
}

static void close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->state = C_CLOSED;
    n_live_handles--;
    maybe_finish();
}

static void conn_close(struct conn *c)
{
    if (c->state == C_CLOSED || c->state == C_NEW || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->state == C_OPEN) {
        n_open--;
        if (cfg.fan_window && c->pub < 0 && win)
            win_sub_gone(c);
    }
    if (c->hs)
        free(c->hs), c->hs = NULL;
    c->state = C_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, close_cb);
}

static void start_more(void)
{
    while (!shutting_down && n_pending < cfg.inflight && n_started < cfg.n) {
        struct conn *c = &conns[n_started];
        c->id = n_started++;
        c->tcp.data = c;
        c->creq.data = c;
        int r = uv_tcp_init(loop, &c->tcp);
        if (r < 0) {
            note_error("tcp_init: %s", uv_strerror(r));
            n_failed++, n_done++;
            continue;
        }
        n_live_handles++;
        c->state = C_CONNECTING;
        n_pending++;
        r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr, connect_cb);
        if (r < 0) {
            note_error("connect: %s", uv_strerror(r));
            c->state = C_HANDSHAKE;
            handshake_done(c, 0);
        }
    }
    if (!connect_phase_over && n_done == cfg.n)
        connect_phase_done();
}

/* ---------- phases ---------- */

static void close_aux_handles(void)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&phase_timer, (uv_handle_t *)&close_timer,
                         (uv_handle_t *)&run_timer, (uv_handle_t *)&pub_timer};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], NULL);
    signals_close();
    if (stdin_kind == 1 && !uv_is_closing((uv_handle_t *)&stdin_pipe))
        uv_close((uv_handle_t *)&stdin_pipe, NULL);
    if (stdin_kind == 2 && !uv_is_closing((uv_handle_t *)&stdin_tty))
        uv_close((uv_handle_t *)&stdin_tty, NULL);
}

static void maybe_finish(void)
{
    if (shutting_down && n_live_handles == 0)
        close_aux_handles();
}

static void close_timer_cb(uv_timer_t *t)
{
    /* Close handshake grace period over: drop whatever is left. */
    for (int i = 0; i < n_started; i++) {
        struct conn *c = &conns[i];
        if (c->state != C_CLOSED && !uv_is_closing((uv_handle_t *)&c->tcp)) {
            if (c->state == C_OPEN)
                n_open--;
            c->state = C_CLOSING;
            if (uv_tcp_close_reset(&c->tcp, close_cb) < 0)
                uv_close((uv_handle_t *)&c->tcp, close_cb);
        }
    }
}

static void begin_shutdown(void)
{
    if (shutting_down)
        return;
    shutting_down = 1;
    connect_phase_over = 1;
    uv_timer_stop(&phase_timer);
    uv_timer_stop(&run_timer);
    uv_timer_stop(&pub_timer);
    for (int i = 0; i < n_started; i++) {
        struct conn *c = &conns[i];
        if (c->state == C_OPEN) {
            send_close(c); /* the server answers with a close frame and closes TCP */
            c->state = C_CLOSING;
            n_open--;
        } else if (c->state == C_CONNECTING || c->state == C_HANDSHAKE || c->state == C_SIO) {
            conn_close(c);
        }
    }
    uv_timer_start(&close_timer, close_timer_cb, 3000, 0);
    maybe_finish();
}

static void stdin_alloc_cb(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    static char sink[256];
    b->base = sink;
    b->len = sizeof sink;
}

static void stdin_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    if (n < 0) {
        uv_read_stop(s);
        begin_shutdown();
    }
}

static void hold_timer_cb(uv_timer_t *t)
{
    begin_shutdown();
}

static void run_timer_cb(uv_timer_t *t);
static void fanout_start(void);

static void connect_phase_done(void)
{
    if (connect_phase_over)
        return;
    connect_phase_over = 1;
    uv_timer_stop(&phase_timer);
    n_ready = n_open;
    if (cfg.mode == MODE_SIO_FANOUT) {
        fanout_start();
        return;
    }
    if (is_idle()) {
        printf("connected %d\n", n_open);
        printf("connect time %.2f s\n", (double)(uv_hrtime() - t_start) / 1e9);
        if (n_open < n_requested)
            printf("failed %d (first error: %s)\n", n_requested - n_open,
                   first_error[0] ? first_error : "?");
        fflush(stdout);
        if (stdin_kind == 1)
            uv_read_start((uv_stream_t *)&stdin_pipe, stdin_alloc_cb, stdin_read_cb);
        if (stdin_kind == 2)
            uv_read_start((uv_stream_t *)&stdin_tty, stdin_alloc_cb, stdin_read_cb);
        uv_timer_start(&phase_timer, hold_timer_cb, (uint64_t)(cfg.hold * 1000), 0);
        return;
    }
    printf("connected %d of %d\n", n_open, n_requested);
    if (n_open < n_requested)
        printf("failed %d (first error: %s)\n", n_requested - n_open,
               first_error[0] ? first_error : "?");
    fflush(stdout);
    if (n_open == 0) {
        begin_shutdown();
        return;
    }
    sending = 1;
    for (int i = 0; i < cfg.n; i++) {
        struct conn *c = &conns[i];
        if (c->state == C_OPEN)
            send_messages(c, (unsigned)cfg.window);
    }
    if (cfg.warmup > 0) {
        uv_timer_start(&run_timer, run_timer_cb, (uint64_t)(cfg.warmup * 1000), 0);
    } else {
        run_timer_cb(&run_timer);
    }
}

static void run_timer_cb(uv_timer_t *t)
{
    if (!measuring && t_measure_start == 0) {
        measuring = 1;
        t_measure_start = uv_hrtime();
        uv_timer_start(&run_timer, run_timer_cb, (uint64_t)(cfg.secs * 1000), 0);
        return;
    }
    measuring = 0;
    sending = 0;
    t_measure_end = uv_hrtime();
    begin_shutdown();
}

/* ---------- sio-fanout: publish at a fixed rate, count and time every delivery ---------- */

/* Publisher pi emits its next event, stamped now. */
static void pub_emit(int pi, uint64_t now)
{
    struct conn *c = pub_conns[pi];
    uint64_t ts = now - t_start;
    int len = snprintf(pub_buf, 128,
                       "42[\"message\",{\"ts\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"p\":%d,\"pad\":\"",
                       ts, pub_seq[pi], pi);
    size_t pad = cfg.size > (size_t)len + 3 ? cfg.size - (size_t)len - 3 : 0;
    memset(pub_buf + len, 'x', pad);
    memcpy(pub_buf + len + pad, "\"}]", 3);
    send_text(c, pub_buf, (size_t)len + pad + 3);
    pub_seq[pi]++;
    pub_total++;
    if (ts_measured(now))
        pub_measured++;
}

/* Emit every event that is due by now (rate x elapsed), round-robin over the publishers. */
static void pub_tick(uv_timer_t *t)
{
    uint64_t now = uv_hrtime();
    uint64_t due = (uint64_t)((double)(now - t_pub0) * cfg.rate / 1e9) + 1;
    while (pub_total + pub_skipped < due) {
        int pi = (int)((pub_total + pub_skipped) % (uint64_t)cfg.publishers);
        if (pub_conns[pi]->state != C_OPEN) {
            pub_skipped++;
            note_error("publisher %d is gone", pi);
            continue;
        }
        pub_emit(pi, now);
    }
}

/* Window mode: emit while fewer than W events are outstanding. A publisher that is gone stops
 * the loop (event numbers map to publishers round robin, with no holes). */
static void win_fill(void)
{
    while (win_open && live_subs > 0 && win_next - win_done < (uint64_t)cfg.fan_window) {
        int pi = (int)(win_next % (uint64_t)cfg.publishers);
        if (pub_conns[pi]->state != C_OPEN) {
            note_error("publisher %d is gone", pi);
            win_open = 0;
            break;
        }
        struct win_slot *sl = &win[win_next % (uint64_t)cfg.fan_window];
        sl->need = (uint32_t)live_subs, sl->got = 0;
        win_next++;
        pub_emit(pi, uv_hrtime());
    }
}

static void drain_check(uv_timer_t *t);

static void fan_timer_cb(uv_timer_t *t)
{
    uint64_t now = uv_hrtime();
    if (fan_phase == 0) { /* welcomes are in: start publishing, warm-up first */
        fan_phase = 1;
        t_pub0 = now;
        if (cfg.fan_window) {
            live_subs = 0;
            for (int i = 0; i < n_started; i++)
                if (conns[i].state == C_OPEN && conns[i].pub < 0)
                    live_subs++;
            win_open = 1;
            win_fill();
        } else {
            double iv = 1000.0 / cfg.rate;
            uint64_t tick = iv < 1 ? 1 : iv > 10 ? 10 : (uint64_t)iv;
            pub_tick(&pub_timer);
            uv_timer_start(&pub_timer, pub_tick, tick, tick);
        }
        if (cfg.warmup > 0) {
            uv_timer_start(&run_timer, fan_timer_cb, (uint64_t)(cfg.warmup * 1000), 0);
            return;
        }
    }
    if (fan_phase == 1) { /* measured seconds begin */
        fan_phase = 2;
        n_subs = 0;
        for (int i = 0; i < n_started; i++)
            if (conns[i].state == C_OPEN && conns[i].pub < 0)
                n_subs++;
        if (cfg.server_pid > 0)
            server_cpu_s = proc_cpu_s(cfg.server_pid, &server_user_s);
        rusage_t0 = self_cpu_ns();
        measuring = 1;
        t_measure_start = uv_hrtime();
        uv_timer_start(&run_timer, fan_timer_cb, (uint64_t)(cfg.secs * 1000), 0);
        return;
    }
    if (fan_phase == 2) { /* stop publishing; wait for the last deliveries */
        fan_phase = 3;
        if (cfg.fan_window)
            win_open = 0;
        else
            pub_tick(&pub_timer); /* whatever fell due before the end */
        uv_timer_stop(&pub_timer);
        t_measure_end = uv_hrtime();
        measuring = 0;
        if (cfg.server_pid > 0 && server_cpu_s >= 0) {
            double u1, s1 = proc_cpu_s(cfg.server_pid, &u1);
            server_cpu_s = s1 >= 0 ? s1 - server_cpu_s : -1;
            server_user_s = u1 - server_user_s;
        }
        client_cpu_s = (double)(self_cpu_ns() - rusage_t0) / 1e9;
        expected = pub_measured * (uint64_t)n_subs;
        uv_timer_start(&run_timer, fan_timer_cb, (uint64_t)(cfg.drain * 1000), 0);
        uv_timer_start(&pub_timer, drain_check, 10, 10);
        return;
    }
    begin_shutdown(); /* drain time over */
}

static void drain_check(uv_timer_t *t)
{
    if (delivered >= expected)
        begin_shutdown();
}

static void fanout_start(void)
{
    printf("connected %d of %d\n", n_open, n_requested);
    if (n_open < n_requested)
        printf("failed %d (first error: %s)\n", n_requested - n_open,
               first_error[0] ? first_error : "?");
    fflush(stdout);
    /* The last open clients publish; the others subscribe. */
    int k = 0;
    for (int i = n_started - 1; i >= 0 && k < cfg.publishers; i--)
        if (conns[i].state == C_OPEN)
            conns[i].pub = k, pub_conns[k++] = &conns[i];
    if (k < cfg.publishers || n_open <= cfg.publishers) {
        fprintf(stderr, "wsload: too few clients connected to publish and subscribe\n");
        begin_shutdown();
        return;
    }
    fan_phase = 0;
    uv_timer_start(&run_timer, fan_timer_cb, 1000, 0); /* let the welcome messages arrive */
}

static void phase_timeout_cb(uv_timer_t *t)
{
    fprintf(stderr, "wsload: connect phase timed out after %.0f s (%d of %d done)\n",
            cfg.connect_timeout, n_done, cfg.n);
    for (int i = 0; i < n_started; i++) {
        struct conn *c = &conns[i];
        if (c->state == C_CONNECTING || c->state == C_HANDSHAKE || c->state == C_SIO) {
            n_failed++;
            n_pending--;
            n_done++;
            conn_close(c);
        }
    }
    note_error("connect phase timed out");
    cfg.n = n_started; /* the rest are never started */
    connect_phase_done();
}

/* ---------- main ---------- */

static void usage(void)
{
    fprintf(
        stderr,
        "usage: wsload idle --port P [--host 127.0.0.1] [--path /echo] [-n N] [--inflight 200]\n"
        "                   [--hold SECS] [--connect-timeout SECS]\n"
        "       wsload echo --port P [--host 127.0.0.1] [--path /echo] [-c CONNS] [-w WINDOW]\n"
        "                   [-s BYTES] [-t SECS] [--warmup SECS] [--binary]\n"
        "       wsload sio-idle --port P [--host 127.0.0.1] [--path "
        "/socket.io/?EIO=4&transport=websocket]\n"
        "                   [-n N] [--inflight 200] [--hold SECS] [--connect-timeout SECS]\n"
        "       wsload sio-fanout --port P [--host 127.0.0.1] [--path ...] [-n SUBSCRIBERS]\n"
        "                   [--publishers 1] [--rate EVENTS_PER_S] [-s BYTES] [-t SECS] [--warmup "
        "SECS]\n"
        "                   [--drain SECS] [--server-pid PID] [--inflight 200] [--connect-timeout "
        "SECS]\n"
        "                   [--window W]   (closed loop: at most W events outstanding, no "
        "--rate)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    if (strcmp(argv[1], "idle") == 0)
        cfg.mode = MODE_IDLE, cfg.n = 10000;
    else if (strcmp(argv[1], "echo") == 0)
        cfg.mode = MODE_ECHO, cfg.n = 50;
    else if (strcmp(argv[1], "sio-idle") == 0)
        cfg.mode = MODE_SIO_IDLE, cfg.n = 10000;
    else if (strcmp(argv[1], "sio-fanout") == 0)
        cfg.mode = MODE_SIO_FANOUT, cfg.n = 1000;
    else
        usage();
    static const struct option opts[] = {{"host", 1, 0, 'H'},
                                         {"port", 1, 0, 'p'},
                                         {"path", 1, 0, 'P'},
                                         {"conns", 1, 0, 'c'},
                                         {"inflight", 1, 0, 'i'},
                                         {"hold", 1, 0, 'h'},
                                         {"connect-timeout", 1, 0, 'T'},
                                         {"window", 1, 0, 'w'},
                                         {"size", 1, 0, 's'},
                                         {"time", 1, 0, 't'},
                                         {"warmup", 1, 0, 'W'},
                                         {"binary", 0, 0, 'b'},
                                         {"publishers", 1, 0, 'U'},
                                         {"rate", 1, 0, 'R'},
                                         {"drain", 1, 0, 'D'},
                                         {"server-pid", 1, 0, 'S'},
                                         {0, 0, 0, 0}};
    int o, window_given = 0;
    optind = 2;
    while ((o = getopt_long(argc, argv, "n:c:w:s:t:", opts, NULL)) != -1) {
        switch (o) {
        case 'H': cfg.host = optarg; break;
        case 'p': cfg.port = atoi(optarg); break;
        case 'P': cfg.path = optarg; break;
        case 'n':
        case 'c': cfg.n = atoi(optarg); break;
        case 'i': cfg.inflight = atoi(optarg); break;
        case 'h': cfg.hold = atof(optarg); break;
        case 'T': cfg.connect_timeout = atof(optarg); break;
        case 'w': cfg.window = atoi(optarg), window_given = 1; break;
        case 's': cfg.size = (size_t)strtoull(optarg, NULL, 10); break;
        case 't': cfg.secs = atof(optarg); break;
        case 'W': cfg.warmup = atof(optarg); break;
        case 'b': cfg.binary = 1; break;
        case 'U': cfg.publishers = atoi(optarg); break;
        case 'R': cfg.rate = atof(optarg); break;
        case 'D': cfg.drain = atof(optarg); break;
        case 'S': cfg.server_pid = atoi(optarg); break;
        default: usage();
        }
    }
    if (!cfg.path)
        cfg.path = is_sio() ? "/socket.io/?EIO=4&transport=websocket" : "/echo";
    if (cfg.size == SIZE_MAX)
        cfg.size = cfg.mode == MODE_SIO_FANOUT ? 100 : 16;
    if (cfg.mode == MODE_SIO_FANOUT &&
        (cfg.publishers < 1 || cfg.publishers > 64 || !(cfg.rate > 0) || cfg.rate > 1e6 ||
         cfg.size > 60000 || cfg.drain < 0 || cfg.drain > 600 || cfg.warmup < 0 ||
         cfg.warmup > 600))
        usage();
    if (cfg.port <= 0 || cfg.port > 65535 || cfg.n <= 0 || cfg.n > 1000000 || cfg.inflight <= 0 ||
        cfg.window <= 0 || cfg.size > (64u << 20) || cfg.secs <= 0 || cfg.secs > 3600 ||
        cfg.hold < 0 || cfg.hold > 3600 || cfg.path[0] != '/')
        usage();
    if (cfg.mode == MODE_SIO_FANOUT && window_given)
        cfg.fan_window = cfg.window;
    if (cfg.mode == MODE_SIO_FANOUT)
        cfg.n += cfg.publishers; /* -n counts subscribers */
    n_requested = cfg.n;
    if (load_setup(cfg.host, cfg.port, cfg.n, &addr) < 0)
        return 2;

    loop = uv_default_loop();
    conns = calloc((size_t)cfg.n, sizeof *conns);
    if (!conns)
        return 2;
    if (cfg.mode == MODE_ECHO) {
        payload_template = malloc(cfg.size ? cfg.size : 1);
        for (size_t i = 0; i < cfg.size; i++)
            payload_template[i] = (uint8_t)('a' + i % 26);
        for (int i = 0; i < cfg.n; i++)
            conns[i].sent_at = calloc((size_t)cfg.window, sizeof(uint64_t));
    }
    for (int i = 0; i < cfg.n; i++)
        conns[i].pub = -1;
    if (cfg.mode == MODE_SIO_FANOUT) {
        pub_conns = calloc((size_t)cfg.publishers, sizeof *pub_conns);
        pub_seq = calloc((size_t)cfg.publishers, sizeof *pub_seq);
        pub_buf = malloc(cfg.size + 256);
        if (cfg.fan_window)
            win = calloc((size_t)cfg.fan_window, sizeof *win);
        for (int i = 0; i < cfg.n; i++)
            conns[i].next_seq = calloc((size_t)cfg.publishers, sizeof(uint64_t));
    }
    uv_timer_init(loop, &phase_timer);
    uv_timer_init(loop, &close_timer);
    uv_timer_init(loop, &run_timer);
    uv_timer_init(loop, &pub_timer);
    signals_start(loop, 1, begin_shutdown, &shutting_down);
    if (is_idle()) {
        struct stat st;
        if (isatty(0) && tcgetpgrp(0) == getpgrp()) { /* a background job must not read the tty */
            if (uv_tty_init(loop, &stdin_tty, 0, 1) == 0)
                stdin_kind = 2;
        } else if (fstat(0, &st) == 0 && S_ISFIFO(st.st_mode)) {
            if (uv_pipe_init(loop, &stdin_pipe, 0) == 0 && uv_pipe_open(&stdin_pipe, 0) == 0)
                stdin_kind = 1;
        }
    }
    uv_timer_start(&phase_timer, phase_timeout_cb, (uint64_t)(cfg.connect_timeout * 1000), 0);
    t_start = uv_hrtime();
    start_more();
    uv_run(loop, UV_RUN_DEFAULT);

    uint64_t errs = errors_len + errors_seq + errors_proto + errors_dup;
    if (is_idle()) {
        printf("closed; dropped by server while held: %d\n", n_dropped);
        if (first_error[0])
            printf("first error: %s\n", first_error);
        printf("RESULT mode=%s connected=%d failed=%d dropped=%d\n", argv[1], n_ready,
               n_requested - n_ready, n_dropped);
    } else if (cfg.mode == MODE_SIO_FANOUT) {
        double secs =
            t_measure_end > t_measure_start ? (double)(t_measure_end - t_measure_start) / 1e9 : 0;
        double dps = secs > 0 ? (double)arrivals_window / secs : 0;
        uint64_t lost = expected > delivered ? expected - delivered : 0;
        double cpu_us = server_cpu_s >= 0 && arrivals_window
                            ? server_cpu_s * 1e6 / (double)arrivals_window
                            : -1;
        if (cfg.fan_window)
            printf("sio-fanout: %d subscribers + %d publisher(s), at most %d events outstanding "
                   "(%.0f events/s) of %zu B, %.2f s measured after %.1f s warm-up\n",
                   n_subs, cfg.publishers, cfg.fan_window,
                   secs > 0 ? (double)pub_measured / secs : 0, cfg.size, secs, cfg.warmup);
        else
            printf("sio-fanout: %d subscribers + %d publisher(s), %.0f events/s of %zu B, %.2f s "
                   "measured after %.1f s"
                   " warm-up\n",
                   n_subs, cfg.publishers, cfg.rate, cfg.size, secs, cfg.warmup);
        printf("  published %" PRIu64 " in the measured seconds (%" PRIu64
               " in all); deliveries expected %" PRIu64 ", delivered %" PRIu64 ", lost %" PRIu64
               " (%.4f%%)\n",
               pub_measured, pub_total, expected, delivered, lost,
               expected ? 100.0 * (double)lost / (double)expected : 0);
        printf("  %.0f deliveries/s (every arrival in the measured seconds, publishers' own too)\n",
               dps);
        printf("  latency publish -> subscriber: p50 %.0f us, p99 %.0f us, max %.0f us\n",
               hist_pct(&lat, 50) / 1e3, hist_pct(&lat, 99) / 1e3, (double)lat.max / 1e3);
        if (cpu_us >= 0)
            printf("  server CPU %.2f s (user %.2f, system %.2f): %.2f us per delivery\n",
                   server_cpu_s, server_user_s, server_cpu_s - server_user_s, cpu_us);
        printf("  wsload CPU %.2f s over the measured seconds; welcomes %" PRIu64 "\n",
               client_cpu_s, welcomes);
        if (errs || seq_gaps || n_dropped || pub_skipped || first_error[0])
            printf("  errors: duplicate/reordered %" PRIu64 ", gaps %" PRIu64 ", protocol %" PRIu64
                   ", dropped %d, publishes skipped %" PRIu64 "; first: %s\n",
                   errors_dup, seq_gaps, errors_proto, n_dropped, pub_skipped,
                   first_error[0] ? first_error : "-");
        printf("RESULT mode=sio-fanout subs=%d pubs=%d rate=%.0f window=%d size=%zu secs=%.2f "
               "published=%" PRIu64 " expected=%" PRIu64 " delivered=%" PRIu64 " lost=%" PRIu64
               " deliveries_per_s=%.0f p50_us=%.0f"
               " p99_us=%.0f max_us=%.0f server_cpu_s=%.3f server_user_s=%.3f "
               "cpu_us_per_delivery=%.3f client_cpu_s=%.2f"
               " welcomes=%" PRIu64 " gaps=%" PRIu64 " errors=%" PRIu64 " failed=%d dropped=%d\n",
               n_subs, cfg.publishers,
               cfg.fan_window ? (secs > 0 ? (double)pub_measured / secs : 0) : cfg.rate,
               cfg.fan_window, cfg.size, secs, pub_measured, expected, delivered, lost, dps,
               hist_pct(&lat, 50) / 1e3, hist_pct(&lat, 99) / 1e3, (double)lat.max / 1e3,
               server_cpu_s, server_user_s, cpu_us, client_cpu_s, welcomes, seq_gaps, errs,
               n_failed, n_dropped);
    } else {
        double secs =
            t_measure_end > t_measure_start ? (double)(t_measure_end - t_measure_start) / 1e9 : 0;
        double mps = secs > 0 ? (double)measured_msgs / secs : 0;
        double mbs = mps * (double)cfg.size / 1e6;
        printf("echo %s: %d conns x %d in flight x %zu B, %.2f s measured after %.1f s warm-up\n",
               cfg.binary ? "binary" : "text", n_ready, cfg.window, cfg.size, secs, cfg.warmup);
        printf("  %" PRIu64 " messages echoed: %.0f msg/s, %.2f MB/s payload each way\n",
               measured_msgs, mps, mbs);
        printf("  round trip: p50 %.0f us, p99 %.0f us, max %.0f us\n", hist_pct(&lat, 50) / 1e3,
               hist_pct(&lat, 99) / 1e3, (double)lat.max / 1e3);
        if (errs || n_dropped || first_error[0])
            printf("  errors: length %" PRIu64 ", sequence %" PRIu64 ", protocol %" PRIu64
                   ", dropped %d; first: %s\n",
                   errors_len, errors_seq, errors_proto, n_dropped,
                   first_error[0] ? first_error : "-");
        printf("RESULT mode=echo conns=%d window=%d size=%zu secs=%.2f msgs=%" PRIu64
               " msgs_per_s=%.0f mb_per_s=%.2f p50_us=%.0f p99_us=%.0f total_msgs=%" PRIu64
               " errors=%" PRIu64 " failed=%d dropped=%d\n",
               n_ready, cfg.window, cfg.size, secs, measured_msgs, mps, mbs,
               hist_pct(&lat, 50) / 1e3, hist_pct(&lat, 99) / 1e3, total_msgs, errs, n_failed,
               n_dropped);
    }
    uv_loop_close(loop);
    int bad = n_ready < n_requested || errs;
    return bad ? 1 : 0;
}
