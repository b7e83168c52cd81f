/* test_ws_codec.c - src/ws/codec.c: RFC 6455 §5 framing (the §5.7 examples), every
 * failure with its close code, streaming at every split point, UTF-8 (RFC 3629), close
 * codes (§7.4) and the frame encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ws/codec.h"

/* ---------------------------------------------------------------------------------------
 * Building client frames */

enum {
    F_UNMASKED = 1, /* no MASK bit, no key */
    F_LEN16 = 2,    /* force the 16-bit length form */
    F_LEN64 = 4,    /* force the 64-bit length form */
    F_HIGHBIT = 8,  /* 64-bit length with the top bit set, no payload follows */
};

static const uint8_t default_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* One frame: b0 (FIN|RSV|opcode), payload (NULL = zeros), flags. Returns its size. */
static size_t mkframe_k(uint8_t *out, uint8_t b0, const void *pl, size_t len, int flags,
                        const uint8_t key[4])
{
    size_t n = 0;
    uint8_t mbit = (flags & F_UNMASKED) ? 0 : 0x80;

    out[n++] = b0;
    if (flags & F_HIGHBIT) {
        out[n++] = mbit | 127;
        out[n++] = 0x80;
        for (int i = 0; i < 7; i++)
            out[n++] = 0;
    } else if ((flags & F_LEN64) || len > 0xFFFF) {
        out[n++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    } else if ((flags & F_LEN16) || len > 125) {
        out[n++] = mbit | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = mbit | (uint8_t)len;
    }
    if (mbit) {
        memcpy(out + n, key, 4);
        n += 4;
    }
    if (flags & F_HIGHBIT)
        return n;
    for (size_t i = 0; i < len; i++) {
        uint8_t b = pl ? ((const uint8_t *)pl)[i] : 0;
        out[n + i] = mbit ? b ^ key[i & 3] : b;
    }
    return n + len;
}

static size_t mkframe(uint8_t *out, uint8_t b0, const void *pl, size_t len)
{
    return mkframe_k(out, b0, pl, len, 0, default_key);
}

/* ---------------------------------------------------------------------------------------
 * Running the parser the way a connection does, recording what it reports */

enum { E_MSG = 1, E_PING, E_PONG, E_CLOSE, E_ERROR };

struct entry {
    int type;
    uint8_t opcode;
    uint16_t code;
    uint8_t *data;
    size_t len;
};

struct log {
    struct entry e[256];
    int n;
    uint8_t *msg; /* the message being assembled from DATA events */
    size_t msg_len, msg_cap;
    size_t err_at; /* input bytes presented when ERROR came back */
};

static void log_push(struct log *lg, int type, uint8_t opcode, uint16_t code, const uint8_t *data,
                     size_t len)
{
    assert_true(lg->n < 256);
    struct entry *e = &lg->e[lg->n++];
    e->type = type;
    e->opcode = opcode;
    e->code = code;
    e->len = len;
    e->data = malloc(len + 1);
    assert_non_null(e->data);
    if (len)
        memcpy(e->data, data, len);
}

static void log_free(struct log *lg)
{
    for (int i = 0; i < lg->n; i++)
        free(lg->e[i].data);
    free(lg->msg);
    memset(lg, 0, sizeof(*lg));
}

/* Feed `in` in chunks of `chunk` bytes (0 = all at once), keeping NEED_MORE leftovers as a
 * connection would, and checking the parser's promises on every call. */
static void run(struct log *lg, const uint8_t *in, size_t n, size_t chunk, uint64_t max)
{
    struct hr_ws_parser p;
    uint8_t *pend = malloc(n + 1);
    size_t plen = 0, fed = 0;
    int done = 0;

    assert_non_null(pend);
    memset(lg, 0, sizeof(*lg));
    hr_ws_parser_init(&p, max);
    if (chunk == 0)
        chunk = n ? n : 1;
    while (fed < n && !done) {
        size_t c = n - fed < chunk ? n - fed : chunk;
        memcpy(pend + plen, in + fed, c);
        plen += c;
        fed += c;
        uint8_t *buf = pend;
        size_t len = plen;
        while (len > 0) {
            struct hr_ws_event ev;
            size_t used = 12345;
            int r = hr_ws_parse(&p, buf, len, &used, &ev);
            assert_true(used <= len);
            if (r == HR_WS_NEED_MORE) {
                buf += used;
                len -= used;
                /* Only a header or a control frame is ever kept. */
                assert_true(len <= 131);
                break;
            }
            if (r == HR_WS_ERROR) {
                assert_true(ev.close_code == 1002 || ev.close_code == 1007 ||
                            ev.close_code == 1009);
                assert_non_null(ev.reason);
                log_push(lg, E_ERROR, 0, ev.close_code, NULL, 0);
                lg->err_at = fed;
                /* Sticky. */
                struct hr_ws_event ev2;
                assert_int_equal(hr_ws_parse(&p, buf, len, &used, &ev2), HR_WS_ERROR);
                assert_int_equal(ev2.close_code, ev.close_code);
                done = 1;
                break;
            }
            if (ev.len)
                assert_true(ev.data >= buf && ev.data + ev.len <= buf + len);
            switch (r) {
            case HR_WS_EV_DATA:
                assert_true(ev.opcode == HR_WS_OP_TEXT || ev.opcode == HR_WS_OP_BINARY);
                if (lg->msg_len + ev.len > lg->msg_cap) {
                    lg->msg_cap = (lg->msg_len + ev.len) * 2;
                    lg->msg = realloc(lg->msg, lg->msg_cap);
                    assert_non_null(lg->msg);
                }
                if (ev.len)
                    memcpy(lg->msg + lg->msg_len, ev.data, ev.len);
                lg->msg_len += ev.len;
                break;
            case HR_WS_EV_MESSAGE_END:
                assert_true(ev.opcode == HR_WS_OP_TEXT || ev.opcode == HR_WS_OP_BINARY);
                log_push(lg, E_MSG, ev.opcode, 0, lg->msg, lg->msg_len);
                lg->msg_len = 0;
                break;
            case HR_WS_EV_PING:
            case HR_WS_EV_PONG:
                assert_true(ev.len <= 125);
                log_push(lg, r == HR_WS_EV_PING ? E_PING : E_PONG, 0, 0, ev.data, ev.len);
                break;
            case HR_WS_EV_CLOSE: log_push(lg, E_CLOSE, 0, ev.close_code, ev.data, ev.len); break;
            default: fail_msg("unexpected event %d", r);
            }
            buf += used;
            len -= used;
        }
        memmove(pend, buf, len);
        plen = len;
    }
    free(pend);
}

static void assert_logs_equal(const struct log *a, const struct log *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        assert_int_equal(a->e[i].type, b->e[i].type);
        assert_int_equal(a->e[i].opcode, b->e[i].opcode);
        assert_int_equal(a->e[i].code, b->e[i].code);
        assert_int_equal(a->e[i].len, b->e[i].len);
        if (a->e[i].len)
            assert_memory_equal(a->e[i].data, b->e[i].data, a->e[i].len);
    }
}

/* Run whole, one byte at a time, and in several odd chunk sizes: all must agree. Leaves
 * the whole-buffer log in *lg. */
static void run_all_ways(struct log *lg, const uint8_t *in, size_t n, uint64_t max)
{
    static const size_t chunks[] = {1, 2, 3, 5, 7, 13, 64, 1000};
    run(lg, in, n, 0, max);
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        struct log other;
        run(&other, in, n, chunks[i], max);
        assert_logs_equal(lg, &other);
        log_free(&other);
    }
}

static void assert_entry(const struct log *lg, int i, int type, uint8_t opcode, uint16_t code,
                         const void *data, size_t len)
{
    assert_true(i < lg->n);
    assert_int_equal(lg->e[i].type, type);
    assert_int_equal(lg->e[i].opcode, opcode);
    assert_int_equal(lg->e[i].code, code);
    assert_int_equal(lg->e[i].len, len);
    if (len)
        assert_memory_equal(lg->e[i].data, data, len);
}

/* ---------------------------------------------------------------------------------------
 * RFC 6455 §5.7 examples */

static void test_rfc_masked_hello(void **state)
{
    (void)state;
    const uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    uint8_t buf[sizeof(frame)];
    struct hr_ws_parser p;
    struct hr_ws_event ev;
    size_t used;

    /* The exact event sequence, as the caller's loop sees it. */
    memcpy(buf, frame, sizeof(frame));
    hr_ws_parser_init(&p, 0);
    assert_int_equal(hr_ws_parse(&p, buf, sizeof(buf), &used, &ev), HR_WS_EV_DATA);
    assert_int_equal(ev.opcode, HR_WS_OP_TEXT);
    assert_int_equal(ev.len, 5);
    assert_memory_equal(ev.data, "Hello", 5);
    assert_ptr_equal(ev.data, buf + 6);
    /* The last payload byte is held back so the loop calls again for MESSAGE_END. */
    assert_true(used < sizeof(buf));
    size_t left = sizeof(buf) - used;
    assert_int_equal(hr_ws_parse(&p, buf + used, left, &used, &ev), HR_WS_EV_MESSAGE_END);
    assert_int_equal(used, left);
    assert_int_equal(ev.opcode, HR_WS_OP_TEXT);

    struct log lg;
    run_all_ways(&lg, frame, sizeof(frame), 0);
    assert_int_equal(lg.n, 1);
    assert_entry(&lg, 0, E_MSG, HR_WS_OP_TEXT, 0, "Hello", 5);
    log_free(&lg);
}

static void test_rfc_unmasked_hello_rejected(void **state)
{
    (void)state;
    const uint8_t frame[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    struct log lg;
    run_all_ways(&lg, frame, sizeof(frame), 0);
    assert_int_equal(lg.n, 1);
    assert_entry(&lg, 0, E_ERROR, 0, 1002, NULL, 0);
    log_free(&lg);
}

static void test_rfc_fragmented_hello(void **state)
{
    (void)state;
    uint8_t in[64];
    size_t n = 0;
    /* §5.7: 0x01 0x03 "Hel", 0x80 0x02 "lo" (masked here, as a client must). */
    n += mkframe(in + n, 0x01, "Hel", 3);
    n += mkframe(in + n, 0x80, "lo", 2);
    struct log lg;
    run_all_ways(&lg, in, n, 0);
    assert_int_equal(lg.n, 1);
    assert_entry(&lg, 0, E_MSG, HR_WS_OP_TEXT, 0, "Hello", 5);
    log_free(&lg);
}

static void test_rfc_ping_pong(void **state)
{
    (void)state;
    uint8_t in[64];
    size_t n = mkframe(in, 0x89, "Hello", 5);
    /* §5.7 masked pong, verbatim. */
    const uint8_t pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    memcpy(in + n, pong, sizeof(pong));
    n += sizeof(pong);
    struct log lg;
    run_all_ways(&lg, in, n, 0);
    assert_int_equal(lg.n, 2);
    assert_entry(&lg, 0, E_PING, 0, 0, "Hello", 5);
    assert_entry(&lg, 1, E_PONG, 0, 0, "Hello", 5);
    log_free(&lg);
}

static void check_binary_len(size_t len, const uint8_t *expect_hdr, size_t hdr_len)
{
    uint8_t *pl = malloc(len), *in = malloc(len + 14);
    assert_non_null(pl);
    assert_non_null(in);
    for (size_t i = 0; i < len; i++)
        pl[i] = (uint8_t)(i * 7 + 3);
    size_t n = mkframe(in, 0x82, pl, len);
    assert_int_equal(n, hdr_len + 4 + len);
    assert_memory_equal(in, expect_hdr, hdr_len);
    struct log lg;
    run_all_ways(&lg, in, n, 0);
    assert_int_equal(lg.n, 1);
    assert_entry(&lg, 0, E_MSG, HR_WS_OP_BINARY, 0, pl, len);
    log_free(&lg);
    free(pl);
    free(in);
}

static void test_rfc_binary_256(void **state)
{
    (void)state;
    /* §5.7: 0x82 0x7E 0x0100 (masked form has 0xFE) */
    const uint8_t hdr[] = {0x82, 0xFE, 0x01, 0x00};
    check_binary_len(256, hdr, sizeof(hdr));
}

static void test_rfc_binary_64k(void **state)
{
    (void)state;
    /* §5.7: 0x82 0x7F 0x0000000000010000 */
    const uint8_t hdr[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0};
    check_binary_len(65536, hdr, sizeof(hdr));
}

/* ---------------------------------------------------------------------------------------
 * Failures: every case ends in ERROR with this exact close code, however it is fed. */

struct fspec {
    uint8_t b0;
    const char *pl; /* NULL = zeros */
    size_t len;
    int flags;
};

struct fail_case {
    const char *name;
    uint64_t max;
    uint16_t code;
    int nf;
    struct fspec f[3];
};

#define P(s) s, sizeof(s) - 1

/* clang-format off */
static const struct fail_case fail_cases[] = {
    {"unmasked text", 0, 1002, 1, {{0x81, P("hi"), F_UNMASKED}}},
    {"unmasked ping", 0, 1002, 1, {{0x89, P(""), F_UNMASKED}}},
    {"RSV1", 0, 1002, 1, {{0x81 | 0x40, P("hi"), 0}}},
    {"RSV2", 0, 1002, 1, {{0x81 | 0x20, P("hi"), 0}}},
    {"RSV3", 0, 1002, 1, {{0x81 | 0x10, P("hi"), 0}}},
    {"RSV on ping", 0, 1002, 1, {{0x89 | 0x40, P(""), 0}}},
    {"opcode 3", 0, 1002, 1, {{0x83, P("x"), 0}}},
    {"opcode 4", 0, 1002, 1, {{0x84, P("x"), 0}}},
    {"opcode 5", 0, 1002, 1, {{0x85, P("x"), 0}}},
    {"opcode 6", 0, 1002, 1, {{0x86, P("x"), 0}}},
    {"opcode 7", 0, 1002, 1, {{0x87, P("x"), 0}}},
    {"opcode B", 0, 1002, 1, {{0x8B, P("x"), 0}}},
    {"opcode C", 0, 1002, 1, {{0x8C, P("x"), 0}}},
    {"opcode D", 0, 1002, 1, {{0x8D, P("x"), 0}}},
    {"opcode E", 0, 1002, 1, {{0x8E, P("x"), 0}}},
    {"opcode F", 0, 1002, 1, {{0x8F, P("x"), 0}}},
    {"ping without FIN", 0, 1002, 1, {{0x09, P("x"), 0}}},
    {"close without FIN", 0, 1002, 1, {{0x08, P("\x03\xe8"), 0}}},
    {"pong without FIN", 0, 1002, 1, {{0x0A, P(""), 0}}},
    {"ping of 126 bytes", 0, 1002, 1, {{0x89, NULL, 126, 0}}},
    {"close of 126 bytes", 0, 1002, 1, {{0x88, NULL, 126, 0}}},
    {"ping 16-bit length", 0, 1002, 1, {{0x89, P("x"), F_LEN16}}},
    {"continuation first", 0, 1002, 1, {{0x80, P("x"), 0}}},
    {"non-final continuation first", 0, 1002, 1, {{0x00, P("x"), 0}}},
    {"text inside fragmented", 0, 1002, 2, {{0x01, P("a"), 0}, {0x81, P("b"), 0}}},
    {"binary inside fragmented", 0, 1002, 2, {{0x02, P("a"), 0}, {0x02, P("b"), 0}}},
    {"continuation after end", 0, 1002, 2, {{0x81, P("a"), 0}, {0x80, P("b"), 0}}},
    {"64-bit length top bit", 0, 1002, 1, {{0x82, NULL, 0, F_HIGHBIT}}},
    {"close payload 1 byte", 0, 1002, 1, {{0x88, P("\x03"), 0}}},
    {"close code 0", 0, 1002, 1, {{0x88, P("\x00\x00"), 0}}},
    {"close code 999", 0, 1002, 1, {{0x88, P("\x03\xe7"), 0}}},
    {"close code 1004", 0, 1002, 1, {{0x88, P("\x03\xec"), 0}}},
    {"close code 1005", 0, 1002, 1, {{0x88, P("\x03\xed"), 0}}},
    {"close code 1006", 0, 1002, 1, {{0x88, P("\x03\xee"), 0}}},
    {"close code 1015", 0, 1002, 1, {{0x88, P("\x03\xf7"), 0}}},
    {"close code 1016", 0, 1002, 1, {{0x88, P("\x03\xf8"), 0}}},
    {"close code 2999", 0, 1002, 1, {{0x88, P("\x0b\xb7"), 0}}},
    {"close code 5000", 0, 1002, 1, {{0x88, P("\x13\x88"), 0}}},
    {"close code 65535", 0, 1002, 1, {{0x88, P("\xff\xff"), 0}}},
    {"close reason not UTF-8", 0, 1007, 1,
     {{0x88, P("\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 0}}},
    {"close reason truncated", 0, 1007, 1, {{0x88, P("\x03\xe8" "ab\xe2\x82"), 0}}},
    {"text not UTF-8", 0, 1007, 1, {{0x81, P("ab\xff" "cd"), 0}}},
    {"text overlong", 0, 1007, 1, {{0x81, P("\xc0\x80"), 0}}},
    {"text surrogate", 0, 1007, 1, {{0x81, P("\xed\xa0\x80"), 0}}},
    {"text truncated at end", 0, 1007, 1, {{0x81, P("ab\xe2\x82"), 0}}},
    {"text truncated, empty final", 0, 1007, 2, {{0x01, P("ab\xe2\x82"), 0}, {0x80, P(""), 0}}},
    {"text bad across fragments", 0, 1007, 2, {{0x01, P("a\xe2\x82"), 0}, {0x80, P("\x28"), 0}}},
    {"too big, one frame", 10, 1009, 1, {{0x82, NULL, 11, 0}}},
    {"too big, 64-bit length", 1 << 20, 1009, 1, {{0x82, NULL, 0, F_LEN64}}},
    {"too big across fragments", 10, 1009, 3,
     {{0x02, NULL, 5, 0}, {0x00, NULL, 5, 0}, {0x80, NULL, 1, 0}}},
    {"too big text", 4, 1009, 1, {{0x81, P("hello"), 0}}},
};
/* clang-format on */

static void test_failures(void **state)
{
    (void)state;
    uint8_t in[1024];

    for (size_t i = 0; i < sizeof(fail_cases) / sizeof(fail_cases[0]); i++) {
        const struct fail_case *c = &fail_cases[i];
        size_t n = 0;
        for (int j = 0; j < c->nf; j++) {
            const struct fspec *f = &c->f[j];
            n += mkframe_k(in + n, f->b0, f->pl, f->len, f->flags, default_key);
        }
        if (c->f[0].flags & F_LEN64 && c->code == 1009) {
            /* declare 2^32 bytes without sending them: the header alone must fail */
            in[2] = 0, in[3] = 0, in[4] = 0, in[5] = 1;
            n = 14;
        }
        struct log lg;
        run_all_ways(&lg, in, n, c->max);
        if (lg.n == 0 || lg.e[lg.n - 1].type != E_ERROR || lg.e[lg.n - 1].code != c->code)
            fail_msg("case \"%s\": expected error %u, got %s %u", c->name, c->code,
                     lg.n ? "entry" : "nothing", lg.n ? lg.e[lg.n - 1].code : 0);
        log_free(&lg);
    }
}

/* A text error is reported at the first bad byte, before the frame's other bytes exist;
 * header errors are reported from the header alone. */
static void test_fail_fast(void **state)
{
    (void)state;
    uint8_t in[64];
    struct hr_ws_parser p;
    struct hr_ws_event ev;
    size_t used;

    /* 10-byte text frame; only header + "ab\xff" arrive. */
    size_t n = mkframe(in, 0x81,
                       "ab\xff"
                       "cdefghi",
                       10);
    assert_int_equal(n, 16);
    hr_ws_parser_init(&p, 0);
    assert_int_equal(hr_ws_parse(&p, in, 9, &used, &ev), HR_WS_ERROR);
    assert_int_equal(ev.close_code, 1007);

    /* Valid prefix arrives first as DATA, then the bad byte alone fails. */
    n = mkframe(in, 0x81,
                "ab\xff"
                "cdefghi",
                10);
    hr_ws_parser_init(&p, 0);
    assert_int_equal(hr_ws_parse(&p, in, 8, &used, &ev), HR_WS_EV_DATA);
    assert_int_equal(used, 8);
    assert_int_equal(ev.len, 2);
    assert_memory_equal(ev.data, "ab", 2);
    assert_int_equal(hr_ws_parse(&p, in + 8, 1, &used, &ev), HR_WS_ERROR);
    assert_int_equal(ev.close_code, 1007);

    /* A sequence that can never complete (E0 80) fails at its second byte. */
    n = mkframe(in, 0x81,
                "\xe0\x80\x80"
                "xxxxxxx",
                10);
    hr_ws_parser_init(&p, 0);
    assert_int_equal(hr_ws_parse(&p, in, 7, &used, &ev), HR_WS_EV_DATA); /* E0 pending */
    assert_int_equal(hr_ws_parse(&p, in + 7, 1, &used, &ev), HR_WS_ERROR);
    assert_int_equal(ev.close_code, 1007);

    /* Header errors need only the first byte... */
    in[0] = 0xC1;
    hr_ws_parser_init(&p, 0);
    assert_int_equal(hr_ws_parse(&p, in, 1, &used, &ev), HR_WS_ERROR);
    assert_int_equal(ev.close_code, 1002);
    /* ...or the second. */
    in[0] = 0x81;
    in[1] = 0x05;
    hr_ws_parser_init(&p, 0);
    assert_int_equal(hr_ws_parse(&p, in, 2, &used, &ev), HR_WS_ERROR);
    assert_int_equal(ev.close_code, 1002);
    /* Too big is known from the length, before the key or payload. */
    in[0] = 0x82;
    in[1] = 0x80 | 126;
    in[2] = 0x01;
    in[3] = 0x00;
    hr_ws_parser_init(&p, 100);
    assert_int_equal(hr_ws_parse(&p, in, 4, &used, &ev), HR_WS_ERROR);
    assert_int_equal(ev.close_code, 1009);
}

/* The limit is applied to the length a header declares, before the masking key or any payload
 * arrives: a 64-bit declaration, and a continuation whose declaration takes the message's
 * running total past the limit (control frames in between do not count). */
static void test_declared_length_limits(void **state)
{
    (void)state;
    uint8_t in[64];
    struct hr_ws_parser p;
    struct hr_ws_event ev;
    size_t used;

    /* 16,000,000 declared in a 64-bit length, limit 1 MiB: refused with the 10 length bytes */
    in[0] = 0x82;
    in[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++)
        in[2 + i] = (uint8_t)((uint64_t)16000000 >> (56 - 8 * i));
    hr_ws_parser_init(&p, 1 << 20);
    assert_int_equal(hr_ws_parse(&p, in, 9, &used, &ev), HR_WS_NEED_MORE); /* length incomplete */
    assert_int_equal(hr_ws_parse(&p, in, 10, &used, &ev), HR_WS_ERROR);
    assert_int_equal(ev.close_code, 1009);

    /* 6 + (ping) + 4 = 10 bytes fit a limit of 10; the continuation header declaring 5
     * instead fails at its length byte, with no key and no payload */
    size_t n = mkframe(in, 0x01, "abcdef", 6);
    n += mkframe(in + n, 0x89, "pi", 2);
    size_t cont = n;
    n += mkframe(in + n, 0x80, "ghij", 4);
    struct log lg = {0};
    run(&lg, in, n, 0, 10);
    assert_int_equal(lg.n, 2);
    assert_int_equal(lg.e[0].type, E_PING);
    assert_int_equal(lg.e[1].type, E_MSG);
    assert_int_equal(lg.e[1].len, 10);
    assert_memory_equal(lg.e[1].data, "abcdefghij", 10);
    log_free(&lg);

    hr_ws_parser_init(&p, 10);
    in[cont + 1] = 0x80 | 5; /* continuation now declares 5: total 11 */
    size_t off = 0;
    int t;
    do {
        t = hr_ws_parse(&p, in + off, cont + 2 - off, &used, &ev);
        off += used;
    } while (t != HR_WS_ERROR && t != HR_WS_NEED_MORE);
    assert_int_equal(t, HR_WS_ERROR);
    assert_int_equal(ev.close_code, 1009);
}

static void test_sticky_failure(void **state)
{
    (void)state;
    uint8_t in[64];
    struct hr_ws_parser p;
    struct hr_ws_event ev;
    size_t used;

    hr_ws_parser_init(&p, 0);
    size_t n = mkframe_k(in, 0x81, "x", 1, F_UNMASKED, default_key);
    assert_int_equal(hr_ws_parse(&p, in, n, &used, &ev), HR_WS_ERROR);
    const char *reason = ev.reason;
    n = mkframe(in, 0x81, "ok", 2);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hr_ws_parse(&p, in, n, &used, &ev), HR_WS_ERROR);
        assert_int_equal(ev.close_code, 1002);
        assert_ptr_equal(ev.reason, reason);
    }
    assert_true(p.failed);
}

/* ---------------------------------------------------------------------------------------
 * Streaming and framing */

static void test_need_more_keeps_partial_header(void **state)
{
    (void)state;
    uint8_t in[300];
    struct hr_ws_parser p;
    struct hr_ws_event ev;
    size_t used;

    /* Every strict prefix of a header consumes nothing. */
    uint8_t *big = malloc(70014);
    assert_non_null(big);
    size_t n = mkframe(big, 0x82, NULL, 70000); /* 14-byte header */
    assert_int_equal(n, 70014);
    memcpy(in, big, 20);
    free(big);
    hr_ws_parser_init(&p, 0);
    for (size_t k = 0; k < 14; k++) {
        assert_int_equal(hr_ws_parse(&p, in, k, &used, &ev), HR_WS_NEED_MORE);
        assert_int_equal(used, 0);
    }
    /* The complete header is consumed, even with no payload yet. */
    assert_int_equal(hr_ws_parse(&p, in, 14, &used, &ev), HR_WS_NEED_MORE);
    assert_int_equal(used, 14);
    /* Then any payload bytes stream out at once. */
    assert_int_equal(hr_ws_parse(&p, in + 14, 1, &used, &ev), HR_WS_EV_DATA);
    assert_int_equal(used, 1);
    assert_int_equal(ev.len, 1);

    /* An incomplete control frame consumes nothing, up to its last byte. */
    uint8_t pl[125];
    memset(pl, 'p', sizeof(pl));
    n = mkframe(in, 0x89, pl, 125);
    assert_int_equal(n, 131);
    hr_ws_parser_init(&p, 0);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(hr_ws_parse(&p, in, k, &used, &ev), HR_WS_NEED_MORE);
        assert_int_equal(used, 0);
    }
    assert_int_equal(hr_ws_parse(&p, in, n, &used, &ev), HR_WS_EV_PING);
    assert_int_equal(used, n);
    assert_int_equal(ev.len, 125);
    assert_memory_equal(ev.data, pl, 125);
}

static void test_empty_messages(void **state)
{
    (void)state;
    uint8_t in[128];
    struct hr_ws_parser p;
    struct hr_ws_event ev;
    size_t used;

    /* An empty text message is reported by a single call. */
    size_t n = mkframe(in, 0x81, "", 0);
    assert_int_equal(n, 6);
    hr_ws_parser_init(&p, 0);
    assert_int_equal(hr_ws_parse(&p, in, n, &used, &ev), HR_WS_EV_MESSAGE_END);
    assert_int_equal(used, 6);
    assert_int_equal(ev.opcode, HR_WS_OP_TEXT);

    /* Empty frames anywhere in a fragmented message. */
    n = 0;
    n += mkframe(in + n, 0x82, "", 0);
    n += mkframe(in + n, 0x01, "", 0);
    n += mkframe(in + n, 0x00, "a", 1);
    n += mkframe(in + n, 0x00, "", 0);
    n += mkframe(in + n, 0x80, "", 0);
    n += mkframe(in + n, 0x01, "", 0);
    n += mkframe(in + n, 0x80, "", 0);
    struct log lg;
    run_all_ways(&lg, in, n, 0);
    assert_int_equal(lg.n, 3);
    assert_entry(&lg, 0, E_MSG, HR_WS_OP_BINARY, 0, NULL, 0);
    assert_entry(&lg, 1, E_MSG, HR_WS_OP_TEXT, 0, "a", 1);
    assert_entry(&lg, 2, E_MSG, HR_WS_OP_TEXT, 0, NULL, 0);
    log_free(&lg);
}

static void test_interleaved_control(void **state)
{
    (void)state;
    uint8_t in[256];
    size_t n = 0;
    n += mkframe(in + n, 0x01, "Hel", 3);
    n += mkframe(in + n, 0x89, "p1", 2);
    n += mkframe(in + n, 0x8A, "", 0);
    n += mkframe(in + n, 0x00, "l", 1);
    n += mkframe(in + n, 0x89, "", 0);
    n += mkframe(in + n, 0x80, "o", 1);
    n += mkframe(in + n, 0x02, "\x00\x01", 2);
    n += mkframe(in + n, 0x88,
                 "\x03\xe8"
                 "bye",
                 5);
    struct log lg;
    run_all_ways(&lg, in, n, 0);
    assert_int_equal(lg.n, 5);
    assert_entry(&lg, 0, E_PING, 0, 0, "p1", 2);
    assert_entry(&lg, 1, E_PONG, 0, 0, NULL, 0);
    assert_entry(&lg, 2, E_PING, 0, 0, NULL, 0);
    assert_entry(&lg, 3, E_MSG, HR_WS_OP_TEXT, 0, "Hello", 5);
    assert_entry(&lg, 4, E_CLOSE, 0, 1000, "bye", 3);
    log_free(&lg);
}

static void test_many_frames_one_buffer(void **state)
{
    (void)state;
    enum { N = 200 };
    uint8_t *in = malloc(N * 400);
    char pl[300];
    size_t n = 0;
    assert_non_null(in);

    for (int i = 0; i < N; i++) {
        uint8_t key[4] = {(uint8_t)i, (uint8_t)(i * 3), 0xA5, (uint8_t)(255 - i)};
        int len = (i * 37) % 300;
        for (int j = 0; j < len; j++)
            pl[j] = (char)('a' + (i + j) % 26);
        if (i % 5 == 4)
            n += mkframe_k(in + n, 0x89, pl, (size_t)(len % 126), 0, key);
        else
            n += mkframe_k(in + n, i % 2 ? 0x82 : 0x81, pl, (size_t)len, i % 3 ? 0 : F_LEN64, key);
    }
    struct log lg;
    run_all_ways(&lg, in, n, 0);
    assert_int_equal(lg.n, N);
    for (int i = 0; i < N; i++) {
        int len = (i * 37) % 300;
        for (int j = 0; j < len; j++)
            pl[j] = (char)('a' + (i + j) % 26);
        if (i % 5 == 4)
            assert_entry(&lg, i, E_PING, 0, 0, pl, (size_t)(len % 126));
        else
            assert_entry(&lg, i, E_MSG, i % 2 ? HR_WS_OP_BINARY : HR_WS_OP_TEXT, 0, pl,
                         (size_t)len);
    }
    log_free(&lg);
    free(in);
}

/* Every split point of a mixed stream gives the same messages as feeding it whole. */
static void test_every_split_point(void **state)
{
    (void)state;
    uint8_t in[512];
    size_t n = 0;
    n += mkframe(in + n, 0x01, "\xce\xba\xe1", 3); /* κ, then half of ὸ */
    n += mkframe(in + n, 0x89, "ping", 4);
    n += mkframe(in + n, 0x80, "\xbd\xb9\xf0\x9f\x98\x80", 6); /* rest of ὸ, U+1F600 */
    n += mkframe_k(in + n, 0x82, "0123456789abcdefghij", 20, F_LEN16, default_key);
    n += mkframe(in + n, 0x81, "", 0);
    n += mkframe(in + n, 0x88, "", 0);

    struct log whole;
    run_all_ways(&whole, in, n, 0);
    assert_int_equal(whole.n, 5);
    assert_entry(&whole, 0, E_PING, 0, 0, "ping", 4);
    assert_entry(&whole, 1, E_MSG, HR_WS_OP_TEXT, 0, "\xce\xba\xe1\xbd\xb9\xf0\x9f\x98\x80", 9);
    assert_entry(&whole, 2, E_MSG, HR_WS_OP_BINARY, 0, "0123456789abcdefghij", 20);
    assert_entry(&whole, 3, E_MSG, HR_WS_OP_TEXT, 0, NULL, 0);
    assert_entry(&whole, 4, E_CLOSE, 0, 1005, NULL, 0);

    /* Two reads split at k, as the fuzzer does. */
    for (size_t k = 1; k < n; k++) {
        struct log lg;
        uint8_t *pend = malloc(n);
        assert_non_null(pend);
        memcpy(pend, in, n);
        /* run() with chunk k splits at k, 2k, ...; that covers every first split. */
        run(&lg, pend, n, k, 0);
        assert_logs_equal(&whole, &lg);
        log_free(&lg);
        free(pend);
    }
    log_free(&whole);
}

static void test_non_minimal_lengths(void **state)
{
    (void)state;
    uint8_t in[64];
    size_t n = 0;
    n += mkframe_k(in + n, 0x81, "Hi", 2, F_LEN16, default_key);
    n += mkframe_k(in + n, 0x81, "Ho", 2, F_LEN64, default_key);
    n += mkframe_k(in + n, 0x82, "", 0, F_LEN64, default_key);
    struct log lg;
    run_all_ways(&lg, in, n, 0);
    assert_int_equal(lg.n, 3);
    assert_entry(&lg, 0, E_MSG, HR_WS_OP_TEXT, 0, "Hi", 2);
    assert_entry(&lg, 1, E_MSG, HR_WS_OP_TEXT, 0, "Ho", 2);
    assert_entry(&lg, 2, E_MSG, HR_WS_OP_BINARY, 0, NULL, 0);
    log_free(&lg);
}

static void test_max_message_boundary(void **state)
{
    (void)state;
    uint8_t in[128];
    size_t n = 0;
    /* Exactly max, across fragments, with a ping in between: accepted, and the count
     * restarts with the next message. */
    n += mkframe(in + n, 0x02, "12345", 5);
    n += mkframe(in + n, 0x89, "0123456789ABCDEF", 16); /* control frames do not count */
    n += mkframe(in + n, 0x80, "67890", 5);
    n += mkframe(in + n, 0x81, "abcdefghij", 10);
    struct log lg;
    run_all_ways(&lg, in, n, 10);
    assert_int_equal(lg.n, 3);
    assert_entry(&lg, 0, E_PING, 0, 0, "0123456789ABCDEF", 16);
    assert_entry(&lg, 1, E_MSG, HR_WS_OP_BINARY, 0, "1234567890", 10);
    assert_entry(&lg, 2, E_MSG, HR_WS_OP_TEXT, 0, "abcdefghij", 10);
    log_free(&lg);

    /* One more byte in a later fragment fails at that fragment's header. */
    struct hr_ws_parser p;
    struct hr_ws_event ev;
    size_t used;
    n = mkframe(in, 0x02, "12345", 5);
    size_t n2 = mkframe(in + n, 0x80, "678901", 6);
    hr_ws_parser_init(&p, 10);
    assert_int_equal(hr_ws_parse(&p, in, n, &used, &ev), HR_WS_EV_DATA);
    assert_int_equal(used, n);
    assert_int_equal(hr_ws_parse(&p, in + n, 2, &used, &ev), HR_WS_ERROR);
    assert_int_equal(ev.close_code, 1009);
    (void)n2;
}

static void test_close_frames(void **state)
{
    (void)state;
    /* clang-format off */
    static const struct {
        const char *pl;
        size_t len;
        uint16_t code;
        const char *reason;
        size_t rlen;
    } cases[] = {
        {P(""), 1005, "", 0},
        {P("\x03\xe8"), 1000, "", 0},
        {P("\x03\xe8" "bye"), 1000, "bye", 3},
        {P("\x03\xe9"), 1001, "", 0},
        {P("\x03\xea"), 1002, "", 0},
        {P("\x03\xeb"), 1003, "", 0},
        {P("\x03\xef"), 1007, "", 0},
        {P("\x03\xf3"), 1011, "", 0},
        {P("\x03\xf4"), 1012, "", 0},
        {P("\x03\xf6"), 1014, "", 0},
        {P("\x0b\xb8"), 3000, "", 0},
        {P("\x13\x87" "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
         4999, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11},
    };
    /* clang-format on */
    uint8_t in[200];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = mkframe(in, 0x88, cases[i].pl, cases[i].len);
        struct log lg;
        run_all_ways(&lg, in, n, 0);
        assert_int_equal(lg.n, 1);
        assert_entry(&lg, 0, E_CLOSE, 0, cases[i].code, cases[i].reason, cases[i].rlen);
        log_free(&lg);
    }
}

/* Masks are applied per frame, from key byte 0, continuing across calls. */
static void test_unmask_alignment(void **state)
{
    (void)state;
    enum { LEN = 1000 };
    uint8_t pl[LEN], in[LEN + 14];
    for (int i = 0; i < LEN; i++)
        pl[i] = (uint8_t)(i ^ (i >> 3));
    static const uint8_t key[4] = {0x01, 0x80, 0xFE, 0x33};
    size_t n = mkframe_k(in, 0x82, pl, LEN, 0, key);
    static const size_t chunks[] = {1, 3, 9, 17, 33, 99, 501};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct log lg;
        run(&lg, in, n, chunks[c], 0);
        assert_int_equal(lg.n, 1);
        assert_entry(&lg, 0, E_MSG, HR_WS_OP_BINARY, 0, pl, LEN);
        log_free(&lg);
    }
}

/* ---------------------------------------------------------------------------------------
 * UTF-8 */

struct u8case {
    const char *s;
    size_t len;
    int valid;
};

/* clang-format off */
static const struct u8case u8_cases[] = {
    {P(""), 1},
    {P("plain ASCII text, long enough to take the word-at-a-time path"), 1},
    {P("\x00\x7f"), 1},
    {P("\xc2\x80"), 1},                 /* U+0080 */
    {P("\xdf\xbf"), 1},                 /* U+07FF */
    {P("\xe0\xa0\x80"), 1},             /* U+0800 */
    {P("\xe2\x82\xac"), 1},             /* € */
    {P("\xed\x9f\xbf"), 1},             /* U+D7FF */
    {P("\xee\x80\x80"), 1},             /* U+E000 */
    {P("\xef\xbf\xbf"), 1},             /* U+FFFF */
    {P("\xf0\x90\x80\x80"), 1},         /* U+10000 */
    {P("\xf0\x9f\x98\x80"), 1},         /* U+1F600 */
    {P("\xf4\x8f\xbf\xbf"), 1},         /* U+10FFFF */
    {P("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), 1},
    {P("aaaaaaa\xc3\xa9" "bbbbbbbbbbbbbbbb\xe2\x82\xac"), 1},
    {P("\xc0\x80"), 0},                 /* overlong NUL */
    {P("\xc1\xbf"), 0},                 /* overlong */
    {P("\xe0\x80\x80"), 0},             /* overlong 3-byte */
    {P("\xe0\x9f\xbf"), 0},             /* overlong U+07FF */
    {P("\xf0\x80\x80\x80"), 0},         /* overlong 4-byte */
    {P("\xf0\x8f\xbf\xbf"), 0},         /* overlong U+FFFF */
    {P("\xed\xa0\x80"), 0},             /* U+D800 */
    {P("\xed\xbf\xbf"), 0},             /* U+DFFF */
    {P("\xed\xa0\x80\xed\xb0\x80"), 0}, /* surrogate pair */
    {P("\xf4\x90\x80\x80"), 0},         /* U+110000 */
    {P("\xf5\x80\x80\x80"), 0},
    {P("\xf8\x88\x80\x80\x80"), 0},
    {P("\xfe"), 0},
    {P("\xff"), 0},
    {P("\x80"), 0},                     /* lone continuation */
    {P("a\xbf"), 0},
    {P("\xc2"), 0},                     /* truncated */
    {P("\xe2\x82"), 0},
    {P("\xf0\x9f\x98"), 0},
    {P("\xc2\x41"), 0},                 /* continuation missing */
    {P("\xe2\x28\xa1"), 0},
    {P("abcdefgh\xe2\x82\xac\xe2\x82"), 0},
};
/* clang-format on */

static void test_utf8_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(u8_cases) / sizeof(u8_cases[0]); i++) {
        const struct u8case *c = &u8_cases[i];
        const uint8_t *s = (const uint8_t *)c->s;
        uint32_t st = hr_utf8_validate(HR_UTF8_ACCEPT, s, c->len);
        if ((st == HR_UTF8_ACCEPT) != c->valid)
            fail_msg("utf8 case %zu: expected %s", i, c->valid ? "valid" : "invalid");
        /* Split at every point and byte by byte: same verdict. */
        for (size_t k = 0; k <= c->len; k++) {
            uint32_t a = hr_utf8_validate(HR_UTF8_ACCEPT, s, k);
            a = hr_utf8_validate(a, s + k, c->len - k);
            assert_int_equal(a == HR_UTF8_ACCEPT, c->valid);
        }
        uint32_t b = HR_UTF8_ACCEPT;
        for (size_t k = 0; k < c->len; k++)
            b = hr_utf8_validate(b, s + k, 1);
        assert_int_equal(b == HR_UTF8_ACCEPT, c->valid);

        /* As a text message, valid or 1007. */
        uint8_t in[128];
        size_t n = mkframe(in, 0x81, c->s, c->len);
        struct log lg;
        run_all_ways(&lg, in, n, 0);
        assert_int_equal(lg.n, 1);
        if (c->valid)
            assert_entry(&lg, 0, E_MSG, HR_WS_OP_TEXT, 0, c->s, c->len);
        else
            assert_entry(&lg, 0, E_ERROR, 0, 1007, NULL, 0);
        log_free(&lg);
    }
}

static void test_utf8_reject_sticky_and_incomplete(void **state)
{
    (void)state;
    assert_int_equal(hr_utf8_validate(HR_UTF8_ACCEPT, (const uint8_t *)"\xff", 1), HR_UTF8_REJECT);
    assert_int_equal(hr_utf8_validate(HR_UTF8_REJECT, (const uint8_t *)"abc", 3), HR_UTF8_REJECT);
    uint32_t st = hr_utf8_validate(HR_UTF8_ACCEPT, (const uint8_t *)"\xf0\x9f", 2);
    assert_int_not_equal(st, HR_UTF8_ACCEPT);
    assert_int_not_equal(st, HR_UTF8_REJECT);
    assert_int_equal(hr_utf8_validate(st, NULL, 0), st);
    assert_int_equal(hr_utf8_validate(st, (const uint8_t *)"\x98\x80", 2), HR_UTF8_ACCEPT);
}

/* Every code point encodes to a sequence the validator accepts, and every 1- and 2-byte
 * string is judged as a straightforward decoder would. */
static int naive_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i];
        size_t k;
        uint32_t min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            c = c << 6 | (s[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static void test_utf8_exhaustive(void **state)
{
    (void)state;
    uint8_t s[4];
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (uint8_t)a;
        assert_int_equal(hr_utf8_validate(0, s, 1) == HR_UTF8_ACCEPT, naive_valid(s, 1));
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            assert_int_equal(hr_utf8_validate(0, s, 2) == HR_UTF8_ACCEPT, naive_valid(s, 2));
        }
    }
    /* All three-byte strings starting with a 3-byte lead, and 4-byte leads F0..F7 with
     * every second byte. */
    for (unsigned a = 0xE0; a < 0xF8; a++)
        for (unsigned b = 0; b < 256; b++)
            for (unsigned c = 0; c < 256; c++) {
                s[0] = (uint8_t)a, s[1] = (uint8_t)b, s[2] = (uint8_t)c, s[3] = 0x80;
                size_t n = a < 0xF0 ? 3 : 4;
                assert_int_equal(hr_utf8_validate(0, s, n) == HR_UTF8_ACCEPT, naive_valid(s, n));
            }
}

/* ---------------------------------------------------------------------------------------
 * Close codes, close payloads, frame headers */

static void test_close_code_table(void **state)
{
    (void)state;
    static const struct {
        unsigned code;
        int valid;
    } t[] = {
        {0, 0},    {999, 0},  {1000, 1}, {1001, 1},  {1002, 1},         {1003, 1},
        {1004, 0}, {1005, 0}, {1006, 0}, {1007, 1},  {1008, 1},         {1009, 1},
        {1010, 1}, {1011, 1}, {1012, 1}, {1013, 1},  {1014, 1},         {1015, 0},
        {1016, 0}, {1100, 0}, {2000, 0}, {2999, 0},  {3000, 1},         {3999, 1},
        {4000, 1}, {4999, 1}, {5000, 0}, {65535, 0}, {65536 + 1000, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (hr_ws_close_code_valid(t[i].code) != t[i].valid)
            fail_msg("close code %u: expected %d", t[i].code, t[i].valid);
}

static void test_close_payload(void **state)
{
    (void)state;
    uint8_t out[125];
    char reason[300];

    assert_int_equal(hr_ws_close_payload(out, 1000, NULL), 2);
    assert_memory_equal(out, "\x03\xe8", 2);
    assert_int_equal(hr_ws_close_payload(out, 4001, "bye"), 5);
    assert_memory_equal(out,
                        "\x0f\xa1"
                        "bye",
                        5);
    /* "No status" codes are never sent: empty payload. */
    assert_int_equal(hr_ws_close_payload(out, 1005, "x"), 0);
    assert_int_equal(hr_ws_close_payload(out, 1006, "x"), 0);
    assert_int_equal(hr_ws_close_payload(out, 0, NULL), 0);

    /* ASCII: cut at exactly 125. */
    memset(reason, 'r', 200);
    reason[200] = '\0';
    assert_int_equal(hr_ws_close_payload(out, 1001, reason), 125);
    assert_memory_equal(out + 2, reason, 123);

    /* Exactly 123 bytes fits whole. */
    reason[123] = '\0';
    assert_int_equal(hr_ws_close_payload(out, 1001, reason), 125);

    /* Multi-byte characters straddling the cut at every alignment: never split. */
    for (int pre = 0; pre < 4; pre++) {
        size_t n = 0;
        for (int i = 0; i < pre; i++)
            reason[n++] = 'a';
        while (n < 200) {
            memcpy(reason + n, "\xf0\x9f\x98\x80", 4);
            n += 4;
        }
        reason[n] = '\0';
        size_t len = hr_ws_close_payload(out, 1000, reason);
        assert_true(len <= 125 && len >= 122);
        assert_int_equal(hr_utf8_validate(HR_UTF8_ACCEPT, out + 2, len - 2), HR_UTF8_ACCEPT);
        assert_memory_equal(out + 2, reason, len - 2);
        /* The parser accepts what we build. */
        uint8_t in[140];
        size_t fn = mkframe(in, 0x88, out, len);
        struct log lg;
        run(&lg, in, fn, 0, 0);
        assert_int_equal(lg.n, 1);
        assert_entry(&lg, 0, E_CLOSE, 0, 1000, out + 2, len - 2);
        log_free(&lg);
    }
    /* Two-byte characters too. */
    size_t n = 0;
    reason[n++] = 'x';
    while (n < 200) {
        memcpy(reason + n, "\xc3\xa9", 2);
        n += 2;
    }
    reason[n] = '\0';
    size_t len = hr_ws_close_payload(out, 1000, reason);
    assert_int_equal(len, 125);
    assert_int_equal(hr_utf8_validate(HR_UTF8_ACCEPT, out + 2, len - 2), HR_UTF8_ACCEPT);
}

static void test_frame_header(void **state)
{
    (void)state;
    static const struct {
        int fin, op;
        uint64_t len;
        size_t hlen;
        uint8_t bytes[10];
    } t[] = {
        {1, HR_WS_OP_TEXT, 0, 2, {0x81, 0x00}},
        {1, HR_WS_OP_TEXT, 5, 2, {0x81, 0x05}},
        {1, HR_WS_OP_BINARY, 125, 2, {0x82, 0x7D}},
        {1, HR_WS_OP_BINARY, 126, 4, {0x82, 0x7E, 0x00, 0x7E}},
        {1, HR_WS_OP_BINARY, 256, 4, {0x82, 0x7E, 0x01, 0x00}},
        {1, HR_WS_OP_BINARY, 65535, 4, {0x82, 0x7E, 0xFF, 0xFF}},
        {1, HR_WS_OP_BINARY, 65536, 10, {0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}},
        {1,
         HR_WS_OP_BINARY,
         UINT64_C(0x0102030405060708),
         10,
         {0x82, 0x7F, 1, 2, 3, 4, 5, 6, 7, 8}},
        {0, HR_WS_OP_TEXT, 3, 2, {0x01, 0x03}},
        {0, HR_WS_OP_CONT, 3, 2, {0x00, 0x03}},
        {1, HR_WS_OP_CONT, 2, 2, {0x80, 0x02}},
        {1, HR_WS_OP_CLOSE, 2, 2, {0x88, 0x02}},
        {1, HR_WS_OP_PING, 0, 2, {0x89, 0x00}},
        {1, HR_WS_OP_PONG, 5, 2, {0x8A, 0x05}},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        uint8_t out[10];
        memset(out, 0xEE, sizeof(out));
        assert_int_equal(hr_ws_frame_header(out, t[i].fin, t[i].op, t[i].len), t[i].hlen);
        assert_memory_equal(out, t[i].bytes, t[i].hlen);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_masked_hello),
        cmocka_unit_test(test_rfc_unmasked_hello_rejected),
        cmocka_unit_test(test_rfc_fragmented_hello),
        cmocka_unit_test(test_rfc_ping_pong),
        cmocka_unit_test(test_rfc_binary_256),
        cmocka_unit_test(test_rfc_binary_64k),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_fail_fast),
        cmocka_unit_test(test_declared_length_limits),
        cmocka_unit_test(test_sticky_failure),
        cmocka_unit_test(test_need_more_keeps_partial_header),
        cmocka_unit_test(test_empty_messages),
        cmocka_unit_test(test_interleaved_control),
        cmocka_unit_test(test_many_frames_one_buffer),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_non_minimal_lengths),
        cmocka_unit_test(test_max_message_boundary),
        cmocka_unit_test(test_close_frames),
        cmocka_unit_test(test_unmask_alignment),
        cmocka_unit_test(test_utf8_table),
        cmocka_unit_test(test_utf8_reject_sticky_and_incomplete),
        cmocka_unit_test(test_utf8_exhaustive),
        cmocka_unit_test(test_close_code_table),
        cmocka_unit_test(test_close_payload),
        cmocka_unit_test(test_frame_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
