/* ceiling: the fan-out ceiling server for the benchmarks: one thread, one epoll loop, WebSocket
 * broadcast corked to one send per socket per loop turn (no herald code, no libuv).
 *
 *   ceiling [--port P] [--io-uring]
 *
 * It listens on 127.0.0.1:P (0, the default: a free port) and prints "PORT <n>" as stdout's first
 * line (then "listening on http://127.0.0.1:<n>" on stderr, what bench/lib.sh start_server
 * reads). Any GET with Upgrade: websocket and a Sec-WebSocket-Key, on any path, becomes a
 * WebSocket (RFC 6455 §4.2; Sec-WebSocket-Accept by OpenSSL SHA1 + base64); anything else gets
 * 426 and is closed. Every text message a client sends (masked frames, fragments joined) goes to
 * every *other* WebSocket as one unmasked text frame; binary messages are dropped, pings
 * answered, a close echoed. Text is not checked for UTF-8: the load generators send ASCII.
 *
 * What makes it the ceiling, and what herald is measured against:
 * - a message's frame is encoded once into a refcounted buffer; each target gets a slice of it
 *   on its pending list (no copy, no syscall, no allocation per delivery beyond list growth);
 * - after all of a loop turn's epoll events, each dirty socket is flushed with ONE
 *   sendmsg(MSG_DONTWAIT | MSG_NOSIGNAL) of all its slices as an iovec; what the kernel does not
 *   take stays queued with EPOLLOUT armed;
 * - with --io-uring (built when liburing is found) the turn's sends go to the kernel in one
 *   io_uring submission of IORING_OP_SENDMSG instead (MSG_DONTWAIT: each completes inline or
 *   with -EAGAIN, never parked).
 * A socket with more than 16 MiB queued is closed (a stalled client cannot eat memory).
 * SIGTERM / SIGINT exit 0. Exit status: 1 setup failed, 2 usage, 3 --io-uring not available
 * (not built with liburing, or the kernel refused the ring). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#ifdef CEILING_IO_URING
#include <liburing.h>
#endif

#define MAX_OUT (16u << 20) /* bytes queued for one socket before it is dropped */
#define MAX_MSG (1u << 20)  /* longest client message, all fragments */
#define MAX_HEAD 8192
#define READ_BUF (256 * 1024)
#define SEND_IOV 1024 /* IOV_MAX: slices in one sendmsg */
#define URING_IOV 64  /* slices in one io_uring sendmsg (the iovecs live until it completes) */
#define URING_SQ 1024 /* sends in one submission */

/* One encoded frame (or handshake answer), shared by every socket it goes to. */
struct sbuf {
    uint32_t refs, len;
    uint8_t data[];
};

struct slice {
    struct sbuf *b;
    uint32_t off; /* bytes of b already sent */
};

struct client {
    int fd;
    uint32_t ws_idx;            /* its place in ws[] once upgraded */
    uint8_t ws;                 /* upgraded */
    uint8_t dirty;              /* on the dirty list */
    uint8_t dead;               /* on the dead list, freed at the end of the turn */
    uint8_t out_on;             /* EPOLLOUT armed */
    uint8_t closing;            /* close once the queue is out */
    uint8_t frag_op;            /* opcode of a fragmented message being joined, 0 if none */
    uint32_t qhead, qlen, qcap; /* pending slices: a ring, qcap a power of 2 */
    uint32_t out_bytes;
    struct slice *q;
    uint8_t *in; /* an incomplete head or frame, kept across reads (NULL when none) */
    uint32_t in_len, in_cap;
    uint8_t *frag;
    uint32_t frag_len, frag_cap;
};

static int ep;
static struct client listen_tag, signal_tag; /* epoll data of the listener and the signalfd */
static struct client **ws;                   /* upgraded clients, the broadcast's targets */
static uint32_t n_ws, cap_ws;
static struct client **dirty, **flushing, **dead;
static uint32_t n_dirty, cap_dirty, cap_flushing, n_dead, cap_dead;
static uint8_t rbuf[READ_BUF];
static int use_uring;
static unsigned long overflows;

#ifdef CEILING_IO_URING
static struct io_uring ring;
static struct iovec uring_iov[URING_SQ][URING_IOV];
static struct msghdr uring_msg[URING_SQ];
static struct client *uring_cl[URING_SQ];
static size_t uring_offered[URING_SQ];
#endif

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "ceiling: out of memory\n");
        exit(1);
    }
    return q;
}

/* Appends c to a growable list. */
static void list_push(struct client ***l, uint32_t *n, uint32_t *cap, struct client *c)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *l = xrealloc(*l, *cap * sizeof **l);
    }
    (*l)[(*n)++] = c;
}

static struct sbuf *sbuf_new(size_t len)
{
    struct sbuf *b = xrealloc(NULL, sizeof *b + len);
    b->refs = 1;
    b->len = (uint32_t)len;
    return b;
}

static void sbuf_unref(struct sbuf *b)
{
    if (--b->refs == 0)
        free(b);
}

/* ---------- output: pending slices, flushed once per loop turn ---------- */

static void kill_client(struct client *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    list_push(&dead, &n_dead, &cap_dead, c);
}

static void mark_dirty(struct client *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        list_push(&dirty, &n_dirty, &cap_dirty, c);
    }
}

static void enqueue(struct client *c, struct sbuf *b)
{
    if (c->out_bytes + b->len > MAX_OUT) {
        overflows++;
        kill_client(c);
        return;
    }
    if (c->qlen == c->qcap) {
        uint32_t cap = c->qcap ? c->qcap * 2 : 8;
        struct slice *q = xrealloc(NULL, cap * sizeof *q);
        for (uint32_t i = 0; i < c->qlen; i++)
            q[i] = c->q[(c->qhead + i) & (c->qcap - 1)];
        free(c->q);
        c->q = q, c->qcap = cap, c->qhead = 0;
    }
    c->q[(c->qhead + c->qlen++) & (c->qcap - 1)] = (struct slice){b, 0};
    b->refs++;
    c->out_bytes += b->len;
    mark_dirty(c);
}

/* A private buffer (handshake answer, pong, close) onto c's queue. */
static void enqueue_copy(struct client *c, const void *d, size_t n)
{
    struct sbuf *b = sbuf_new(n);
    memcpy(b->data, d, n);
    enqueue(c, b);
    sbuf_unref(b);
}

static int fill_iov(struct client *c, struct iovec *iov, int max, size_t *total)
{
    int k = 0;
    *total = 0;
    for (uint32_t i = 0; i < c->qlen && k < max; i++, k++) {
        struct slice *s = &c->q[(c->qhead + i) & (c->qcap - 1)];
        iov[k].iov_base = s->b->data + s->off;
        iov[k].iov_len = s->b->len - s->off;
        *total += iov[k].iov_len;
    }
    return k;
}

static void arm_out(struct client *c, int on)
{
    if (c->out_on == on)
        return;
    c->out_on = (uint8_t)on;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* A send of `offered` bytes from c's queue returned res (bytes, or -errno). */
static void sent(struct client *c, long res, size_t offered)
{
    if (res < 0) {
        if (res == -EAGAIN || res == -EWOULDBLOCK)
            arm_out(c, 1);
        else if (res == -EINTR)
            mark_dirty(c);
        else
            kill_client(c);
        return;
    }
    size_t n = (size_t)res;
    while (n && c->qlen) {
        struct slice *s = &c->q[c->qhead];
        size_t rem = s->b->len - s->off;
        if (n < rem) {
            s->off += (uint32_t)n;
            c->out_bytes -= (uint32_t)n;
            break;
        }
        n -= rem;
        c->out_bytes -= (uint32_t)rem;
        sbuf_unref(s->b);
        c->qhead = (c->qhead + 1) & (c->qcap - 1);
        c->qlen--;
    }
    if (c->qlen == 0) {
        /* an idle socket holds no queue: a small malloc per flush costs ~1 % of a send */
        free(c->q);
        c->q = NULL, c->qcap = 0, c->qhead = 0;
        arm_out(c, 0);
        if (c->closing)
            kill_client(c);
    } else if ((size_t)res < offered) {
        arm_out(c, 1); /* the socket's buffer is full: wait for room */
    } else {
        mark_dirty(c); /* more than one send's worth of slices: the next turn */
    }
}

static void flush_sendmsg(struct client **l, uint32_t n)
{
    struct iovec iov[SEND_IOV];
    for (uint32_t i = 0; i < n; i++) {
        struct client *c = l[i];
        c->dirty = 0;
        if (c->dead)
            continue;
        size_t total;
        int k = fill_iov(c, iov, SEND_IOV, &total);
        if (k == 0) {
            sent(c, 0, 0);
            continue;
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t r = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        sent(c, r < 0 ? -errno : r, total);
    }
}

#ifdef CEILING_IO_URING
static void flush_uring(struct client **l, uint32_t n)
{
    uint32_t i = 0;
    while (i < n) {
        unsigned k = 0;
        for (; i < n && k < URING_SQ; i++) {
            struct client *c = l[i];
            c->dirty = 0;
            if (c->dead)
                continue;
            int iovn = fill_iov(c, uring_iov[k], URING_IOV, &uring_offered[k]);
            if (iovn == 0) {
                sent(c, 0, 0);
                continue;
            }
            uring_msg[k] = (struct msghdr){.msg_iov = uring_iov[k], .msg_iovlen = (size_t)iovn};
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_sendmsg(sqe, c->fd, &uring_msg[k], MSG_DONTWAIT | MSG_NOSIGNAL);
            io_uring_sqe_set_data64(sqe, k);
            uring_cl[k++] = c;
        }
        if (k == 0)
            continue;
        int r;
        do
            r = io_uring_submit_and_wait(&ring, k);
        while (r == -EINTR);
        if (r < 0) {
            fprintf(stderr, "ceiling: io_uring_submit: %s\n", strerror(-r));
            exit(1);
        }
        for (unsigned got = 0; got < k;) {
            struct io_uring_cqe *cqe;
            unsigned head, seen = 0;
            io_uring_for_each_cqe(&ring, head, cqe)
            {
                unsigned idx = (unsigned)cqe->user_data;
                sent(uring_cl[idx], cqe->res, uring_offered[idx]);
                seen++;
            }
            io_uring_cq_advance(&ring, seen);
            got += seen;
            if (got < k && (r = io_uring_wait_cqe(&ring, &cqe)) < 0 && r != -EINTR) {
                fprintf(stderr, "ceiling: io_uring_wait_cqe: %s\n", strerror(-r));
                exit(1);
            }
        }
    }
}
#endif

/* Once per loop turn: every dirty socket's queue in one send. */
static void flush_all(void)
{
    struct client **l = dirty;
    uint32_t n = n_dirty, cap = cap_dirty;
    dirty = flushing, cap_dirty = cap_flushing, n_dirty = 0; /* sends may mark sockets again */
    flushing = l, cap_flushing = cap;
#ifdef CEILING_IO_URING
    if (use_uring) {
        flush_uring(l, n);
        return;
    }
#endif
    flush_sendmsg(l, n);
}

/* End of the turn: the dead leave (their epoll registration goes with the fd). */
static void reap(void)
{
    for (uint32_t i = 0; i < n_dead; i++) {
        struct client *c = dead[i];
        if (c->ws) {
            ws[c->ws_idx] = ws[--n_ws];
            ws[c->ws_idx]->ws_idx = c->ws_idx;
        }
        close(c->fd);
        for (; c->qlen; c->qlen--, c->qhead = (c->qhead + 1) & (c->qcap - 1))
            sbuf_unref(c->q[c->qhead].b);
        free(c->q);
        free(c->in);
        free(c->frag);
        free(c);
    }
    n_dead = 0;
}

/* ---------- WebSocket (RFC 6455) ---------- */

static void broadcast(struct client *from, const uint8_t *p, size_t len)
{
    size_t h = len < 126 ? 2 : len < 65536 ? 4 : 10;
    struct sbuf *b = sbuf_new(h + len);
    b->data[0] = 0x81;
    if (h == 2)
        b->data[1] = (uint8_t)len;
    else if (h == 4)
        b->data[1] = 126, b->data[2] = (uint8_t)(len >> 8), b->data[3] = (uint8_t)len;
    else {
        b->data[1] = 127;
        for (int k = 0; k < 8; k++)
            b->data[2 + k] = (uint8_t)((uint64_t)len >> (56 - 8 * k));
    }
    memcpy(b->data + h, p, len);
    for (uint32_t i = 0; i < n_ws; i++) {
        struct client *t = ws[i];
        if (t != from && !t->dead && !t->closing)
            enqueue(t, b);
    }
    sbuf_unref(b);
}

static void send_control(struct client *c, int op, const uint8_t *p, size_t len)
{
    uint8_t f[2 + 125];
    f[0] = (uint8_t)(0x80 | op);
    f[1] = (uint8_t)len;
    memcpy(f + 2, p, len);
    enqueue_copy(c, f, 2 + len);
}

/* A protocol error: close frame with CODE, then close once it is out. */
static void ws_fail(struct client *c, unsigned code)
{
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    send_control(c, 0x8, p, 2);
    c->closing = 1;
}

static void unmask(uint8_t *p, size_t len, const uint8_t key[4])
{
    uint64_t k8;
    uint8_t kb[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
    memcpy(&k8, kb, 8);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= k8;
        memcpy(p + i, &v, 8);
    }
    for (; i < len; i++)
        p[i] ^= key[i & 3];
}

/* One whole frame at p[0..n): its length, or 0 if incomplete (or the client failed). */
static size_t parse_frame(struct client *c, uint8_t *p, size_t n)
{
    if (n < 2)
        return 0;
    uint8_t b0 = p[0], b1 = p[1];
    if ((b0 & 0x70) || !(b1 & 0x80)) { /* RSV bits without an extension; unmasked (§5.1) */
        ws_fail(c, 1002);
        return 0;
    }
    size_t h = 2;
    uint64_t len = b1 & 0x7f;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3], h = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int k = 0; k < 8; k++)
            len = len << 8 | p[2 + k];
        h = 10;
    }
    if (len > MAX_MSG) {
        ws_fail(c, 1009);
        return 0;
    }
    if (n < h + 4 + len)
        return 0;
    uint8_t *pl = p + h + 4;
    unmask(pl, (size_t)len, p + h);
    int op = b0 & 0x0f, fin = b0 >> 7;
    if (op & 0x8) {
        if (!fin || len > 125) {
            ws_fail(c, 1002);
            return 0;
        }
        if (op == 0x8) { /* close: echo the code, then close */
            send_control(c, 0x8, pl, len >= 2 ? 2 : 0);
            c->closing = 1;
        } else if (op == 0x9)
            send_control(c, 0xA, pl, (size_t)len);
        else if (op != 0xA) {
            ws_fail(c, 1002);
            return 0;
        }
        return h + 4 + (size_t)len;
    }
    if (op == 0x1 || op == 0x2) {
        if (c->frag_op) {
            ws_fail(c, 1002);
            return 0;
        }
        if (fin) {
            if (op == 0x1)
                broadcast(c, pl, (size_t)len);
            return h + 4 + (size_t)len;
        }
        c->frag_op = (uint8_t)op, c->frag_len = 0;
    } else if (op != 0 || !c->frag_op) {
        ws_fail(c, 1002);
        return 0;
    }
    if (c->frag_len + len > MAX_MSG) {
        ws_fail(c, 1009);
        return 0;
    }
    if (c->frag_len + len > c->frag_cap) {
        c->frag_cap = (uint32_t)(c->frag_len + len);
        c->frag = xrealloc(c->frag, c->frag_cap);
    }
    memcpy(c->frag + c->frag_len, pl, (size_t)len);
    c->frag_len += (uint32_t)len;
    if (fin) {
        if (c->frag_op == 0x1)
            broadcast(c, c->frag, c->frag_len);
        c->frag_op = 0;
        free(c->frag);
        c->frag = NULL, c->frag_len = c->frag_cap = 0;
    }
    return h + 4 + (size_t)len;
}

/* ---------- the opening handshake (§4.2) ---------- */

/* The value of header NAME in head[0..n) (lines after the request line), trimmed; NULL if none. */
static const char *header(const char *head, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        const char *s = l + 2;
        if (strncasecmp(s, name, nl) == 0 && s[nl] == ':') {
            const char *v = s + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t k = strcspn(v, "\r\n");
            while (k && (v[k - 1] == ' ' || v[k - 1] == '\t'))
                k--;
            *vlen = k;
            return v;
        }
    }
    return NULL;
}

static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i + tl <= n; i++)
        if (strncasecmp(v + i, tok, tl) == 0)
            return 1;
    return 0;
}

/* The request head at p[0..n): its length, or 0 if incomplete (or refused). */
static size_t parse_head(struct client *c, uint8_t *p, size_t n)
{
    uint8_t *e = memmem(p, n, "\r\n\r\n", 4);
    if (!e) {
        if (n > MAX_HEAD) {
            static const char r431[] =
                "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n";
            enqueue_copy(c, r431, sizeof r431 - 1);
            c->closing = 1;
        }
        return 0;
    }
    size_t hlen = (size_t)(e - p) + 4;
    char head[MAX_HEAD + 8];
    if (hlen > MAX_HEAD)
        hlen = MAX_HEAD; /* the answer is 426 anyway: Sec-WebSocket-Key is not found cut short */
    memcpy(head, p, hlen);
    head[hlen] = 0;
    size_t ul = 0, kl = 0;
    const char *up = header(head, "Upgrade", &ul), *key = header(head, "Sec-WebSocket-Key", &kl);
    if (strncmp(head, "GET ", 4) != 0 || !up || !has_token(up, ul, "websocket") || !key ||
        kl == 0 || kl > 64) {
        static const char r426[] = "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\n"
                                   "Content-Length: 0\r\nConnection: close\r\n\r\n";
        enqueue_copy(c, r426, sizeof r426 - 1);
        c->closing = 1;
        return 0;
    }
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char cat[64 + sizeof guid], digest[SHA_DIGEST_LENGTH];
    char accept[32], resp[256];
    memcpy(cat, key, kl);
    memcpy(cat + kl, guid, sizeof guid - 1);
    SHA1(cat, kl + sizeof guid - 1, digest);
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
    int rn = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
    enqueue_copy(c, resp, (size_t)rn);
    c->ws = 1;
    c->ws_idx = n_ws;
    if (n_ws == cap_ws) {
        cap_ws = cap_ws ? cap_ws * 2 : 1024;
        ws = xrealloc(ws, cap_ws * sizeof *ws);
    }
    ws[n_ws++] = c;
    return (size_t)(e - p) + 4;
}

/* ---------- input ---------- */

static void keep_input(struct client *c, const uint8_t *p, size_t n)
{
    if (c->in_len + n > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 512;
        while (cap < c->in_len + n)
            cap *= 2;
        c->in = xrealloc(c->in, cap);
        c->in_cap = (uint32_t)cap;
    }
    memcpy(c->in + c->in_len, p, n);
    c->in_len += (uint32_t)n;
}

static void on_readable(struct client *c)
{
    ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        kill_client(c);
        return;
    }
    if (c->closing)
        return; /* what follows a close is not read */
    uint8_t *p = rbuf;
    size_t n = (size_t)r;
    int buffered = c->in_len > 0;
    if (buffered) { /* the rest of an incomplete head or frame */
        keep_input(c, rbuf, n);
        p = c->in, n = c->in_len;
    }
    size_t used = 0;
    while (used < n && !c->dead && !c->closing) {
        size_t k = c->ws ? parse_frame(c, p + used, n - used) : parse_head(c, p + used, n - used);
        if (k == 0)
            break;
        used += k;
    }
    if (c->dead || c->closing)
        used = n;
    if (buffered) {
        memmove(c->in, c->in + used, n - used);
        c->in_len = (uint32_t)(n - used);
    } else if (used < n) {
        keep_input(c, p + used, n - used);
    }
    if (c->in_len == 0 && c->in) { /* idle sockets hold no input buffer */
        free(c->in);
        c->in = NULL, c->in_cap = 0;
    }
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                static int warned;
                if (!warned++)
                    fprintf(stderr, "ceiling: accept: %s\n", strerror(errno));
            }
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct client *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            return;
        }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
        }
    }
}

/* ---------- main ---------- */

static void usage(void)
{
    fprintf(stderr, "usage: ceiling [--port P] [--io-uring]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", 1, 0, 'p'}, {"io-uring", 0, 0, 'u'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int o, port = 0;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'p': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 65535)
                usage();
            port = (int)v;
            break;
        }
        case 'u': use_uring = 1; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();

    if (use_uring) {
#ifdef CEILING_IO_URING
        struct io_uring_params prm = {0};
#if defined(IORING_SETUP_SINGLE_ISSUER) && defined(IORING_SETUP_COOP_TASKRUN)
        prm.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
#endif
        int r = io_uring_queue_init_params(URING_SQ, &ring, &prm);
        if (r == -EINVAL) { /* an older kernel: no setup flags */
            memset(&prm, 0, sizeof prm);
            r = io_uring_queue_init_params(URING_SQ, &ring, &prm);
        }
        if (r < 0) {
            fprintf(stderr, "ceiling: io_uring not available: %s\n", strerror(-r));
            return 3;
        }
#else
        fprintf(stderr, "ceiling: built without liburing: --io-uring not available\n");
        return 3;
#endif
    }

    /* OpenSSL 3 loads its providers on the first digest (~2 MB): before the first client, so
     * that the RSS growth per connection is the connections' own */
    unsigned char warm[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)"", 0, warm);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGTERM);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    int sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || lfd < 0 || ep < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0) {
        fprintf(stderr, "ceiling: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &signal_tag;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    printf("PORT %d\n", ntohs(a.sin_port));
    fflush(stdout);
    fprintf(stderr, "ceiling: listening on http://127.0.0.1:%d (%s)\n", ntohs(a.sin_port),
            use_uring ? "io_uring" : "sendmsg");

    static struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, n_dirty ? 0 : -1);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "ceiling: epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct client *c = evs[i].data.ptr;
            if (c == &listen_tag) {
                accept_all(lfd);
                continue;
            }
            if (c == &signal_tag) {
                if (overflows)
                    fprintf(stderr, "ceiling: %lu sockets dropped over %u MiB queued\n", overflows,
                            MAX_OUT >> 20);
                return 0;
            }
            if (c->dead)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
            if (!c->dead && (evs[i].events & EPOLLOUT))
                mark_dirty(c);
        }
        flush_all();
        reap();
    }
}
