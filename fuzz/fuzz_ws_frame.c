/* fuzz_ws_frame.c - libFuzzer target for the RFC 6455 frame parser (src/ws/codec.c).
 *
 * Input: byte 0 picks the message limit (top bit) and a split point (low 7 bits); the rest
 * is client-to-server bytes. They are parsed twice, as a connection would: once in one
 * read, once in two reads split at that point, keeping NEED_MORE leftovers between reads.
 * Both runs must report the same messages, control frames and error, and every event must
 * keep the parser's promises (pointers inside the buffer, text is UTF-8 by an independent
 * decoder, close codes valid, limits honoured). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/codec.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A straightforward decoder, deliberately unlike the table-driven one under test. */
static int utf8_ok(const uint8_t *s, size_t n)
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
        if (n - i <= k)
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

/* What a run reported, serialised for comparison. */
struct transcript {
    uint8_t *b;
    size_t len, cap;
};

static void put(struct transcript *t, const void *p, size_t n)
{
    if (t->len + n > t->cap) {
        t->cap = (t->len + n) * 2 + 64;
        t->b = realloc(t->b, t->cap);
        CHECK(t->b);
    }
    if (n)
        memcpy(t->b + t->len, p, n);
    t->len += n;
}

static void put_event(struct transcript *t, uint8_t type, uint16_t code, const uint8_t *d, size_t n)
{
    uint64_t n64 = n;
    put(t, &type, 1);
    put(t, &code, 2);
    put(t, &n64, 8);
    put(t, d, n);
}

struct run {
    struct hr_ws_parser p;
    uint64_t max;
    struct transcript out;
    uint8_t *msg; /* DATA chunks of the current message */
    size_t msg_len;
    uint8_t msg_op;
    int failed;
};

/* One read: buf holds leftovers then new bytes; returns how many bytes to keep. */
static size_t feed(struct run *r, uint8_t *buf, size_t len)
{
    while (len > 0 && !r->failed) {
        struct hr_ws_event ev;
        size_t used = SIZE_MAX;
        int e = hr_ws_parse(&r->p, buf, len, &used, &ev);
        CHECK(used <= len);
        if (e == HR_WS_NEED_MORE) {
            CHECK(len - used <= 131);
            return len - used;
        }
        if (ev.len)
            CHECK(ev.data >= buf && ev.len <= len && ev.data + ev.len <= buf + len);
        switch (e) {
        case HR_WS_EV_DATA:
            CHECK(ev.opcode == HR_WS_OP_TEXT || ev.opcode == HR_WS_OP_BINARY);
            if (r->msg_len == 0 && r->msg_op == 0)
                r->msg_op = ev.opcode;
            CHECK(ev.opcode == r->msg_op);
            memcpy(r->msg + r->msg_len, ev.data, ev.len);
            r->msg_len += ev.len;
            CHECK(!r->max || r->msg_len <= r->max);
            break;
        case HR_WS_EV_MESSAGE_END:
            CHECK(ev.opcode == HR_WS_OP_TEXT || ev.opcode == HR_WS_OP_BINARY);
            CHECK(r->msg_op == 0 || ev.opcode == r->msg_op);
            if (ev.opcode == HR_WS_OP_TEXT)
                CHECK(utf8_ok(r->msg, r->msg_len));
            put_event(&r->out, ev.opcode, 0, r->msg, r->msg_len);
            r->msg_len = 0;
            r->msg_op = 0;
            break;
        case HR_WS_EV_PING:
        case HR_WS_EV_PONG:
            CHECK(ev.len <= 125);
            put_event(&r->out, e == HR_WS_EV_PING ? 0x9 : 0xA, 0, ev.data, ev.len);
            break;
        case HR_WS_EV_CLOSE:
            CHECK(ev.len <= 123);
            if (ev.close_code == HR_WS_CLOSE_NO_STATUS)
                CHECK(ev.len == 0);
            else
                CHECK(hr_ws_close_code_valid(ev.close_code));
            CHECK(utf8_ok(ev.data, ev.len));
            put_event(&r->out, 0x8, ev.close_code, ev.data, ev.len);
            break;
        case HR_WS_ERROR: {
            CHECK(ev.close_code == 1002 || ev.close_code == 1007 || ev.close_code == 1009);
            CHECK(ev.reason != NULL);
            struct hr_ws_event ev2;
            CHECK(hr_ws_parse(&r->p, buf, len, &used, &ev2) == HR_WS_ERROR);
            CHECK(ev2.close_code == ev.close_code);
            put_event(&r->out, 0xFF, ev.close_code, NULL, 0);
            r->failed = 1;
            return 0;
        }
        default: CHECK(0);
        }
        buf += used;
        len -= used;
    }
    return 0;
}

static void run_init(struct run *r, uint64_t max, size_t n)
{
    memset(r, 0, sizeof(*r));
    r->max = max;
    hr_ws_parser_init(&r->p, max);
    r->msg = malloc(n + 1);
    CHECK(r->msg);
}

static void run_free(struct run *r)
{
    free(r->msg);
    free(r->out.b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    uint64_t max = (data[0] & 0x80) ? 200 : 0;
    size_t split = n * (data[0] & 0x7F) / 0x7F;

    /* One read of everything. Exact-size heap copies let ASan see any overrun. */
    struct run a;
    run_init(&a, max, n);
    uint8_t *whole = malloc(n + 1);
    CHECK(whole);
    memcpy(whole, in, n);
    feed(&a, whole, n);
    free(whole);

    /* Two reads: the connection keeps what NEED_MORE left and prepends it. */
    struct run b;
    run_init(&b, max, n);
    uint8_t *first = malloc(split + 1);
    CHECK(first);
    memcpy(first, in, split);
    size_t keep = feed(&b, first, split);
    size_t len2 = keep + (n - split);
    uint8_t *second = malloc(len2 + 1);
    CHECK(second);
    memcpy(second, first + split - keep, keep);
    memcpy(second + keep, in + split, n - split);
    free(first);
    feed(&b, second, len2);
    free(second);

    CHECK(a.out.len == b.out.len);
    CHECK(a.out.len == 0 || memcmp(a.out.b, b.out.b, a.out.len) == 0);
    CHECK(a.failed == b.failed);
    /* Without an error, both streamed every payload byte of an unfinished message. */
    if (!a.failed) {
        CHECK(a.msg_len == b.msg_len);
        CHECK(a.msg_len == 0 || memcmp(a.msg, b.msg, a.msg_len) == 0);
    }
    run_free(&a);
    run_free(&b);
    return 0;
}
