/* loadlib: what the load generators wsload and fanload share. One thread, one libuv loop, loopback
 * targets only. The WebSocket key and Sec-WebSocket-Accept come from OpenSSL (SHA1, base64). */
#ifndef HERALD_BENCH_LOADLIB_H
#define HERALD_BENCH_LOADLIB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---------- errors, memory, randomness ---------- */

/* The first error noted (empty if none), for the summary. */
extern char first_error[300];
void note_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* realloc that exits (status 2) when out of memory. */
void *xrealloc(void *p, size_t n);

/* xorshift: frame masks and poll phases, nothing secret. Seeded by load_setup. */
uint32_t rng32(void);

/* Resolves HOST:PORT into *addr, which must be IPv4 loopback (else a message and -1); raises the
 * RLIMIT_NOFILE soft limit to the hard one (a warning below NOFILE + 32); ignores SIGPIPE; seeds
 * rng32. */
int load_setup(const char *host, int port, int nofile, struct sockaddr_in *addr);

/* Watches SIGINT, SIGTERM and, with hup, SIGHUP on loop: a signal calls stop(), or exits at once
 * (status 1) if *stopping is set already. signals_close closes the watchers, so that uv_run can
 * return. */
void signals_start(uv_loop_t *loop, int hup, void (*stop)(void), const int *stopping);
void signals_close(void);

/* ---------- reading and writing ---------- */

/* uv_alloc_cb handing out one shared buffer: every read is consumed before its callback returns. */
void read_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* A write request with its bytes; req.data is what wreq_send was given. The write callback frees
 * it. */
struct wreq {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
};

struct wreq *wreq_new(size_t len);

/* uv_write of w->buf on s; on failure frees w, notes the error and returns it (< 0). */
int wreq_send(uv_stream_t *s, struct wreq *w, uv_write_cb cb, void *data);

/* ---------- HTTP and JSON, just enough for the answers the generators read ---------- */

/* The value of header NAME (case-insensitive, trimmed) in a NUL-terminated response head, into
 * out (truncated to outsz - 1); 1 if present, 0 if not. The status line is skipped. */
int http_header(const char *head, const char *name, char *out, size_t outsz);

/* The value of the first member named KEY ("\"seq\"", quotes included) in s[0..end): a pointer
 * past the colon and any JSON whitespace, or NULL. */
const char *json_key(const char *s, const char *end, const char *key);

/* Unsigned decimal value of member KEY in s[0..end); NULL if absent or not a number, else the
 * end of the number. */
const char *json_uint(const char *s, const char *end, const char *key, uint64_t *out);

/* ---------- WebSocket client (RFC 6455) ---------- */

/* The opening handshake (§4.1) for PATH on HOST:PORT with a fresh random Sec-WebSocket-Key, into
 * out; the Sec-WebSocket-Accept the server must answer into accept. Returns the request's length.
 */
int ws_upgrade_request(char *out, size_t outsz, const char *path, const char *host, int port,
                       char accept[32]);

/* Bytes of a masked client frame (§5.2) carrying len payload bytes. */
size_t ws_frame_len(size_t len);

/* Writes a masked frame header (FIN set) for len payload bytes at out, its length into *hlen;
 * returns where its 4-byte mask key is. */
uint8_t *ws_put_header(uint8_t *out, int opcode, size_t len, size_t *hlen);

/* XORs p[0..len) with the mask key (§5.3). */
void ws_mask(uint8_t *p, size_t len, const uint8_t key[4]);

/* Writes one whole masked frame (header, then the payload masked) at out; returns its length. */
size_t ws_put_frame(uint8_t *out, int opcode, const void *payload, size_t len);

/* Incremental parser of server frames (unmasked). Data payloads are handed on as they arrive,
 * control payloads (at most 125 bytes) are kept in ctl. */
struct ws_parser {
    uint8_t hdr[14];
    uint8_t hdr_len, hdr_need, in_payload;
    uint8_t opcode, fin; /* the frame being read */
    uint8_t msg_opcode;  /* 0x1 or 0x2: the data message being read (continuations keep it) */
    uint64_t remaining;  /* payload bytes still to come in this frame */
    uint8_t ctl[125];
    uint8_t ctl_len;
};

struct ws_handler {
    uint64_t max_frame;               /* a longer frame is an error; 0: no limit */
    void (*message_start)(void *ctx); /* the first frame of a data message began */
    void (*data)(void *ctx, const uint8_t *d, size_t n); /* payload bytes of a data frame */
    int (*frame_end)(void *ctx, struct ws_parser *p);    /* a whole frame is in: p->opcode, p->fin,
                                                            p->ctl; < 0 stops the parser */
    void (*error)(void *ctx, const char *what);          /* a protocol error; the parser stops */
};

/* Feeds d[0..n) to the parser; returns -1 once the connection must stop reading (a protocol
 * error or frame_end < 0), else 0. */
int ws_parse(struct ws_parser *p, const uint8_t *d, size_t n, const struct ws_handler *h,
             void *ctx);

/* ---------- figures ---------- */

/* Latency histogram in ns: log2 buckets split in 16 linear sub-buckets (~6% precision). */
#define HIST_SUB 16
#define HIST_BUCKETS (64 * HIST_SUB)
struct hist {
    uint64_t bucket[HIST_BUCKETS];
    uint64_t count, max;
};

void hist_add(struct hist *h, uint64_t ns);

/* The P-th percentile (the middle of its bucket), 0 if empty. */
double hist_pct(const struct hist *h, double p);

/* CPU (user + system) this process has used, ns. */
uint64_t self_cpu_ns(void);

/* CPU (user + system) process PID has used, s (user alone in *user), from /proc/PID/stat; -1 if
 * unreadable. */
double proc_cpu_s(int pid, double *user);

#endif
