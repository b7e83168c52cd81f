/* loadlib: what the load generators wsload and fanload share (see loadlib.h). */
#include "loadlib.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---------- errors, memory, randomness ---------- */

char first_error[300];

void note_error(const char *fmt, ...)
{
    if (first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(first_error, sizeof first_error, fmt, ap);
    va_end(ap);
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "%s: out of memory\n", program_invocation_short_name);
        exit(2);
    }
    return q;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

uint32_t rng32(void)
{
    uint64_t x = rng_state;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    rng_state = x;
    return (uint32_t)(x >> 16);
}

static void raise_nofile(int want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)want + 32 > rl.rlim_cur)
        fprintf(stderr, "%s: warning: RLIMIT_NOFILE is %llu, below the %d connections asked for\n",
                program_invocation_short_name, (unsigned long long)rl.rlim_cur, want);
}

int load_setup(const char *host, int port, int nofile, struct sockaddr_in *addr)
{
    /* Loopback only: these tools are for benchmarking servers on this machine. */
    if (uv_ip4_addr(host, port, addr) != 0 || (ntohl(addr->sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "%s: --host must be an IPv4 loopback address (127.x.x.x)\n",
                program_invocation_short_name);
        return -1;
    }
    raise_nofile(nofile);
    signal(SIGPIPE, SIG_IGN);
    rng_state = (uint64_t)uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
    return 0;
}

static uv_signal_t sig_watch[3];
static int sig_count;
static void (*sig_stop)(void);
static const int *sig_stopping;

static void signal_cb(uv_signal_t *s, int signum)
{
    if (*sig_stopping) {
        fprintf(stderr, "%s: second signal, exiting now\n", program_invocation_short_name);
        exit(1);
    }
    sig_stop();
}

void signals_start(uv_loop_t *loop, int hup, void (*stop)(void), const int *stopping)
{
    static const int signums[] = {SIGINT, SIGTERM, SIGHUP};
    sig_stop = stop, sig_stopping = stopping;
    sig_count = hup ? 3 : 2;
    for (int i = 0; i < sig_count; i++) {
        uv_signal_init(loop, &sig_watch[i]);
        uv_signal_start(&sig_watch[i], signal_cb, signums[i]);
    }
}

void signals_close(void)
{
    for (int i = 0; i < sig_count; i++)
        if (!uv_is_closing((uv_handle_t *)&sig_watch[i]))
            uv_close((uv_handle_t *)&sig_watch[i], NULL);
}

/* ---------- reading and writing ---------- */

void read_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char scratch[256 * 1024];
    buf->base = scratch;
    buf->len = sizeof scratch;
}

struct wreq *wreq_new(size_t len)
{
    struct wreq *w = xrealloc(NULL, sizeof *w + len);
    w->buf = uv_buf_init(w->data, (unsigned)len);
    return w;
}

int wreq_send(uv_stream_t *s, struct wreq *w, uv_write_cb cb, void *data)
{
    w->req.data = data;
    int r = uv_write(&w->req, s, &w->buf, 1, cb);
    if (r < 0) {
        free(w);
        note_error("write: %s", uv_strerror(r));
    }
    return r;
}

/* ---------- HTTP and JSON ---------- */

int http_header(const char *head, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = strcspn(v, "\r\n");
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= outsz)
                vl = outsz - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return 1;
        }
    }
    return 0;
}

static int json_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

const char *json_key(const char *s, const char *end, const char *key)
{
    size_t kl = strlen(key);
    while (s < end) {
        const char *k = memmem(s, (size_t)(end - s), key, kl);
        if (!k)
            return NULL;
        const char *v = k + kl;
        while (v < end && json_space(*v))
            v++;
        if (v < end && *v == ':') {
            v++;
            while (v < end && json_space(*v))
                v++;
            return v;
        }
        s = k + kl;
    }
    return NULL;
}

const char *json_uint(const char *s, const char *end, const char *key, uint64_t *out)
{
    const char *v = json_key(s, end, key);
    if (!v || v >= end || *v < '0' || *v > '9')
        return NULL;
    uint64_t x = 0;
    while (v < end && *v >= '0' && *v <= '9')
        x = x * 10 + (uint64_t)(*v++ - '0');
    *out = x;
    return v;
}

/* ---------- WebSocket client ---------- */

int ws_upgrade_request(char *out, size_t outsz, const char *path, const char *host, int port,
                       char accept[32])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t raw[16];
    if (getrandom(raw, sizeof raw, 0) != sizeof raw)
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (uint8_t)rng32();
    char key[32]; /* base64 of 16 bytes: 24 characters */
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    unsigned char cat[24 + sizeof guid - 1], digest[SHA_DIGEST_LENGTH];
    memcpy(cat, key, 24);
    memcpy(cat + 24, guid, sizeof guid - 1);
    SHA1(cat, sizeof cat, digest);
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH); /* 28 characters */
    return snprintf(
        out, outsz,
        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
        path, host, port, key);
}

size_t ws_frame_len(size_t len)
{
    return 2 + (len < 126 ? 0 : len < 65536 ? 2 : 8) + 4 + len;
}

uint8_t *ws_put_header(uint8_t *out, int opcode, size_t len, size_t *hlen)
{
    size_t i = 0;
    out[i++] = (uint8_t)(0x80 | opcode);
    if (len < 126)
        out[i++] = (uint8_t)(0x80 | len);
    else if (len < 65536) {
        out[i++] = 0x80 | 126;
        out[i++] = (uint8_t)(len >> 8), out[i++] = (uint8_t)len;
    } else {
        out[i++] = 0x80 | 127;
        for (int k = 7; k >= 0; k--)
            out[i++] = (uint8_t)((uint64_t)len >> (8 * k));
    }
    uint32_t m = rng32();
    memcpy(out + i, &m, 4);
    *hlen = i + 4;
    return out + i;
}

void ws_mask(uint8_t *p, size_t len, const uint8_t key[4])
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

size_t ws_put_frame(uint8_t *out, int opcode, const void *payload, size_t len)
{
    size_t hlen;
    uint8_t *key = ws_put_header(out, opcode, len, &hlen);
    if (len)
        memcpy(out + hlen, payload, len);
    ws_mask(out + hlen, len, key);
    return hlen + len;
}

int ws_parse(struct ws_parser *p, const uint8_t *d, size_t n, const struct ws_handler *h, void *ctx)
{
    size_t i = 0;
    while (i < n) {
        if (!p->in_payload) {
            if (p->hdr_need == 0)
                p->hdr_need = 2;
            while (i < n && p->hdr_len < p->hdr_need) {
                p->hdr[p->hdr_len++] = d[i++];
                if (p->hdr_len == 2) {
                    uint8_t l7 = p->hdr[1] & 0x7f;
                    if (p->hdr[1] & 0x80) {
                        h->error(ctx, "masked frame from the server");
                        return -1;
                    }
                    p->hdr_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
                }
            }
            if (p->hdr_len < p->hdr_need)
                break;
            uint8_t l7 = p->hdr[1] & 0x7f;
            uint64_t len = l7;
            if (l7 == 126)
                len = (uint64_t)p->hdr[2] << 8 | p->hdr[3];
            else if (l7 == 127) {
                len = 0;
                for (int k = 0; k < 8; k++)
                    len = len << 8 | p->hdr[2 + k];
            }
            p->fin = p->hdr[0] >> 7;
            p->opcode = p->hdr[0] & 0x0f;
            p->remaining = len;
            p->in_payload = 1;
            p->hdr_len = 0, p->hdr_need = 0;
            if (p->opcode & 0x8) {
                if (len > 125 || !p->fin) {
                    h->error(ctx, "bad control frame");
                    return -1;
                }
                p->ctl_len = 0;
            } else if (p->opcode != 0) {
                p->msg_opcode = p->opcode;
                h->message_start(ctx);
            }
            if (h->max_frame && len > h->max_frame) {
                char what[64];
                snprintf(what, sizeof what, "%" PRIu64 "-byte frame", len);
                h->error(ctx, what);
                return -1;
            }
        }
        size_t take = n - i;
        if (take > p->remaining)
            take = (size_t)p->remaining;
        if (p->opcode & 0x8) {
            memcpy(p->ctl + p->ctl_len, d + i, take);
            p->ctl_len += (uint8_t)take;
        } else {
            h->data(ctx, d + i, take);
        }
        i += take;
        p->remaining -= take;
        if (p->remaining)
            break;
        p->in_payload = 0;
        if (h->frame_end(ctx, p) < 0)
            return -1;
    }
    return 0;
}

/* ---------- figures ---------- */

void hist_add(struct hist *h, uint64_t ns)
{
    int idx;
    if (ns < HIST_SUB)
        idx = (int)ns;
    else {
        int msb = 63 - __builtin_clzll(ns);
        int sub = (int)((ns >> (msb - 4)) & (HIST_SUB - 1));
        idx = (msb - 3) * HIST_SUB + sub;
    }
    h->bucket[idx]++;
    h->count++;
    if (ns > h->max)
        h->max = ns;
}

static uint64_t hist_bucket_value(int idx)
{
    if (idx < HIST_SUB)
        return (uint64_t)idx;
    int msb = idx / HIST_SUB + 3, sub = idx % HIST_SUB;
    uint64_t lo = ((uint64_t)(HIST_SUB + sub)) << (msb - 4);
    return lo + (((uint64_t)1 << (msb - 4)) >> 1); /* middle of the bucket */
}

double hist_pct(const struct hist *h, double p)
{
    if (!h->count)
        return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)h->count);
    if (want >= h->count)
        want = h->count - 1;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen > want)
            return (double)hist_bucket_value(i);
    }
    return (double)h->max;
}

uint64_t self_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

double proc_cpu_s(int pid, double *user)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    unsigned long long ut, st;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
     */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    double tck = (double)sysconf(_SC_CLK_TCK);
    *user = (double)ut / tck;
    return (double)(ut + st) / tck;
}
