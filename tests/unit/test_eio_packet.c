/* test_eio_packet.c - src/eio/packet.c: Engine.IO v4 "Packet encoding" (every example of
 * docs/engine.io-protocol/v4-current.md and of its test suite), the invalid packets the
 * reference rejects, polling payload iteration, and RFC 4648 base64 (§10 vectors, every
 * length 0..64, in-place decoding, strict rejection). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"
#include "eio/packet.h"

#define S(lit) lit, sizeof(lit) - 1

/* ---------------------------------------------------------------------------------------
 * WebSocket frames */

struct frame_case {
    const char *in;
    size_t len;
    int binary;
    int rc;
    int type;
    const char *data;
    size_t data_len;
};

static const struct frame_case frame_cases[] = {
    /* the document's and the test suite's text frames */
    {S("4hello"), 0, 0, HR_EIO_MESSAGE, S("hello")},
    {S("2probe"), 0, 0, HR_EIO_PING, S("probe")},
    {S("3probe"), 0, 0, HR_EIO_PONG, S("probe")},
    {S("5"), 0, 0, HR_EIO_UPGRADE, S("")},
    {S("2"), 0, 0, HR_EIO_PING, S("")},
    {S("3"), 0, 0, HR_EIO_PONG, S("")},
    {S("1"), 0, 0, HR_EIO_CLOSE, S("")},
    {S("6"), 0, 0, HR_EIO_NOOP, S("")},
    {S("0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
       "\"pingTimeout\":5000,\"maxPayload\":1000000}"),
     0, 0, HR_EIO_OPEN,
     S("{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
       "\"pingTimeout\":5000,\"maxPayload\":1000000}")},
    {S("40"), 0, 0, HR_EIO_MESSAGE, S("0")},
    {S("42[\"hello\"]"), 0, 0, HR_EIO_MESSAGE, S("2[\"hello\"]")},
    {S("40/admin,"), 0, 0, HR_EIO_MESSAGE, S("0/admin,")},
    {S("4\xe2\x82\xac"), 0, 0, HR_EIO_MESSAGE, S("\xe2\x82\xac")},
    /* a message may carry the separator on WebSocket: only polling splits on it */
    {S("4a\x1e"
       "b"),
     0, 0, HR_EIO_MESSAGE,
     S("a\x1e"
       "b")},
    {S("4abc"), 0, 0, HR_EIO_MESSAGE, S("abc")},
    /* invalid: not a type digit ("abc" is the test suite's invalid packet) */
    {S("abc"), 0, HR_EINVAL, 0, NULL, 0},
    {S(""), 0, HR_EINVAL, 0, NULL, 0},
    {S("7"), 0, HR_EINVAL, 0, NULL, 0},
    {S("9hello"), 0, HR_EINVAL, 0, NULL, 0},
    {S("/4"), 0, HR_EINVAL, 0, NULL, 0},
    {S(" 4"), 0, HR_EINVAL, 0, NULL, 0},
    {S("\x1e"
       "4"),
     0, HR_EINVAL, 0, NULL, 0},
    /* "b<base64>" is a polling form; on WebSocket binary data has its own frames */
    {S("bAQIDBA=="), 0, HR_EINVAL, 0, NULL, 0},
    /* binary frames are binary messages, whatever their bytes */
    {S("\x01\x02\x03\x04"), 1, 0, HR_EIO_MESSAGE, S("\x01\x02\x03\x04")},
    {S("4hello"), 1, 0, HR_EIO_MESSAGE, S("4hello")},
    {S(""), 1, 0, HR_EIO_MESSAGE, S("")},
    {S("\xff\x00"), 1, 0, HR_EIO_MESSAGE, S("\xff\x00")},
};

static void test_frame_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(frame_cases) / sizeof(frame_cases[0]); i++) {
        const struct frame_case *c = &frame_cases[i];
        uint8_t *buf = malloc(c->len); /* exact size (even 0) so ASan sees overreads */
        assert_non_null(buf);
        memcpy(buf, c->in, c->len);
        struct hr_eio_packet p;
        memset(&p, 0xAA, sizeof(p));
        int rc = hr_eio_decode_frame(buf, c->len, c->binary, &p);
        if (rc != c->rc)
            fail_msg("case %zu: rc %d, want %d", i, rc, c->rc);
        if (rc == 0) {
            assert_int_equal(p.type, c->type);
            assert_int_equal(p.binary, c->binary);
            assert_int_equal(p.len, c->data_len);
            assert_true(p.data >= buf && p.data + p.len <= buf + c->len);
            assert_memory_equal(p.data, c->data, c->data_len);
        }
        free(buf);
    }
}

/* Every byte as the first character of a text frame: exactly '0'..'6' are packets. */
static void test_frame_type_bytes(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) {
        uint8_t buf[2] = {(uint8_t)b, 'x'};
        struct hr_eio_packet p;
        int rc = hr_eio_decode_frame(buf, 2, 0, &p);
        if (b >= '0' && b <= '6') {
            assert_int_equal(rc, 0);
            assert_int_equal(p.type, b - '0');
            assert_ptr_equal(p.data, buf + 1);
            assert_int_equal(p.len, 1);
        } else {
            assert_int_equal(rc, HR_EINVAL);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Polling payloads */

struct rec {
    int type;
    int binary;
    const char *data;
    size_t len;
};

struct payload_case {
    const char *in;
    size_t len;
    int nrec;  /* records returned before the end (or the error) */
    int fails; /* the call after them returns HR_EINVAL instead of 0 */
    struct rec rec[4];
};

static const struct payload_case payload_cases[] = {
    /* the document's examples */
    {S("4hello\x1e"
       "2\x1e"
       "4world"),
     3,
     0,
     {{HR_EIO_MESSAGE, 0, S("hello")}, {HR_EIO_PING, 0, S("")}, {HR_EIO_MESSAGE, 0, S("world")}}},
    {S("4hello\x1e"
       "bAQIDBA=="),
     2,
     0,
     {{HR_EIO_MESSAGE, 0, S("hello")}, {HR_EIO_MESSAGE, 1, S("\x01\x02\x03\x04")}}},
    {S("42[\"hello\"]\x1e"
       "42[\"world\"]"),
     2,
     0,
     {{HR_EIO_MESSAGE, 0, S("2[\"hello\"]")}, {HR_EIO_MESSAGE, 0, S("2[\"world\"]")}}},
    {S("40"), 1, 0, {{HR_EIO_MESSAGE, 0, S("0")}}},
    /* the test suite's bodies */
    {S("4hello"), 1, 0, {{HR_EIO_MESSAGE, 0, S("hello")}}},
    {S("4test1\x1e"
       "4test2\x1e"
       "4test3"),
     3,
     0,
     {{HR_EIO_MESSAGE, 0, S("test1")},
      {HR_EIO_MESSAGE, 0, S("test2")},
      {HR_EIO_MESSAGE, 0, S("test3")}}},
    {S("3"), 1, 0, {{HR_EIO_PONG, 0, S("")}}},
    {S("1"), 1, 0, {{HR_EIO_CLOSE, 0, S("")}}},
    {S("abc"), 0, 1, {{0}}},
    /* binary records */
    {S("b"), 1, 0, {{HR_EIO_MESSAGE, 1, S("")}}},
    {S("bAQID"), 1, 0, {{HR_EIO_MESSAGE, 1, S("\x01\x02\x03")}}},
    {S("b/w=="), 1, 0, {{HR_EIO_MESSAGE, 1, S("\xff")}}},
    {S("bAA==\x1e"
       "4x"),
     2,
     0,
     {{HR_EIO_MESSAGE, 1, S("\x00")}, {HR_EIO_MESSAGE, 0, S("x")}}},
    {S("bAQIDBA\x1e"
       "4x"),
     0,
     1,
     {{0}}}, /* missing padding */
    {S("4x\x1e"
       "bAQ*D"),
     1,
     1,
     {{HR_EIO_MESSAGE, 0, S("x")}}},
    {S("b AQID"), 0, 1, {{0}}},
    {S("bAQID\n"), 0, 1, {{0}}},
    /* empty records: an empty body, a leading, doubled or trailing separator */
    {S(""), 0, 1, {{0}}},
    {S("\x1e"), 0, 1, {{0}}},
    {S("\x1e"
       "4a"),
     0,
     1,
     {{0}}},
    {S("4a\x1e"), 1, 1, {{HR_EIO_MESSAGE, 0, S("a")}}},
    {S("4a\x1e\x1e"
       "4b"),
     1,
     1,
     {{HR_EIO_MESSAGE, 0, S("a")}}},
    /* unknown types stop the iteration where they are */
    {S("4a\x1e"
       "7\x1e"
       "4b"),
     1,
     1,
     {{HR_EIO_MESSAGE, 0, S("a")}}},
    {S("2\x1e"
       "x"),
     1,
     1,
     {{HR_EIO_PING, 0, S("")}}},
    {S("4\xe2\x82\xac\x1e"
       "6"),
     2,
     0,
     {{HR_EIO_MESSAGE, 0, S("\xe2\x82\xac")}, {HR_EIO_NOOP, 0, S("")}}},
};

static void run_payload_case(size_t ci, const struct payload_case *c)
{
    uint8_t *buf = malloc(c->len); /* exact size (even 0) so ASan sees overreads */
    assert_non_null(buf);
    memcpy(buf, c->in, c->len);
    size_t pos = 0;
    int n = 0, rc;
    struct hr_eio_packet p;

    while ((rc = hr_eio_payload_next(buf, c->len, &pos, &p)) == 1) {
        if (n >= c->nrec)
            fail_msg("case %zu: extra record %d", ci, n);
        const struct rec *r = &c->rec[n];
        assert_int_equal(p.type, r->type);
        assert_int_equal(p.binary, r->binary);
        assert_int_equal(p.len, r->len);
        assert_true(p.data >= buf && p.data + p.len <= buf + c->len);
        assert_memory_equal(p.data, r->data, r->len);
        n++;
    }
    if (n != c->nrec || rc != (c->fails ? HR_EINVAL : 0))
        fail_msg("case %zu: %d records then %d, want %d then %d", ci, n, rc, c->nrec,
                 c->fails ? HR_EINVAL : 0);
    if (!c->fails) {
        /* the end is sticky */
        assert_int_equal(hr_eio_payload_next(buf, c->len, &pos, &p), 0);
        assert_int_equal(hr_eio_payload_next(buf, c->len, &pos, &p), 0);
    }
    free(buf);
}

static void test_payload_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(payload_cases) / sizeof(payload_cases[0]); i++)
        run_payload_case(i, &payload_cases[i]);
}

/* Encoded packets joined by separators decode back to the same packets. */
static void test_payload_round_trip(void **state)
{
    (void)state;
    struct {
        int type;
        int binary;
        const char *data;
        size_t len;
    } pk[] = {
        {HR_EIO_MESSAGE, 0, S("2[\"chat\",\"hi\"]")},
        {HR_EIO_MESSAGE, 1, S("\x00\x01\xfe\xff\x1e")},
        {HR_EIO_PING, 0, S("")},
        {HR_EIO_MESSAGE, 1, S("")},
        {HR_EIO_PONG, 0, S("probe")},
        {HR_EIO_MESSAGE, 0, S("\xf0\x9f\x98\x80")},
    };
    size_t npk = sizeof(pk) / sizeof(pk[0]);
    struct hr_buf *body = hr_buf_new(0);
    assert_non_null(body);
    for (size_t i = 0; i < npk; i++) {
        struct hr_buf *e = pk[i].binary ? hr_eio_encode_base64(pk[i].data, pk[i].len)
                                        : hr_eio_encode_text(pk[i].type, pk[i].data, pk[i].len);
        assert_non_null(e);
        if (i)
            assert_int_equal(hr_buf_append(&body, "\x1e", 1), 0);
        assert_int_equal(hr_buf_append(&body, e->data, e->len), 0);
        hr_buf_unref(e);
    }
    size_t pos = 0;
    struct hr_eio_packet p;
    for (size_t i = 0; i < npk; i++) {
        assert_int_equal(hr_eio_payload_next((uint8_t *)body->data, body->len, &pos, &p), 1);
        assert_int_equal(p.type, pk[i].type);
        assert_int_equal(p.binary, pk[i].binary);
        assert_int_equal(p.len, pk[i].len);
        assert_memory_equal(p.data, pk[i].data, pk[i].len);
    }
    assert_int_equal(hr_eio_payload_next((uint8_t *)body->data, body->len, &pos, &p), 0);
    hr_buf_unref(body);
}

/* ---------------------------------------------------------------------------------------
 * Encoders */

static void expect_buf(struct hr_buf *b, const char *want, size_t len)
{
    assert_non_null(b);
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->len, len);
    assert_memory_equal(b->data, want, len);
    hr_buf_unref(b);
}

static void test_encode(void **state)
{
    (void)state;
    long live = hr_buf_live;
    expect_buf(hr_eio_encode_text(HR_EIO_MESSAGE, S("hello")), S("4hello"));
    expect_buf(hr_eio_encode_text(HR_EIO_PING, NULL, 0), S("2"));
    expect_buf(hr_eio_encode_text(HR_EIO_PONG, S("probe")), S("3probe"));
    expect_buf(hr_eio_encode_text(HR_EIO_NOOP, NULL, 0), S("6"));
    expect_buf(hr_eio_encode_text(HR_EIO_OPEN, S("{\"sid\":\"x\"}")), S("0{\"sid\":\"x\"}"));
    expect_buf(hr_eio_encode_text(HR_EIO_CLOSE, NULL, 0), S("1"));
    expect_buf(hr_eio_encode_text(HR_EIO_UPGRADE, NULL, 0), S("5"));
    expect_buf(hr_eio_encode_base64(S("\x01\x02\x03\x04")), S("bAQIDBA=="));
    expect_buf(hr_eio_encode_base64(NULL, 0), S("b"));
    assert_null(hr_eio_encode_text(-1, NULL, 0));
    assert_null(hr_eio_encode_text(7, NULL, 0));
    assert_int_equal(hr_buf_live, live);
}

/* ---------------------------------------------------------------------------------------
 * Base64 */

static void test_base64_rfc4648_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *plain, *enc;
    } v[] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char out[16];
        uint8_t dec[16];
        size_t pl = strlen(v[i].plain), el = strlen(v[i].enc);
        assert_int_equal(hr_base64_encode((const uint8_t *)v[i].plain, pl, out), el);
        assert_memory_equal(out, v[i].enc, el);
        assert_int_equal(hr_base64_decode(v[i].enc, el, dec), (long)pl);
        assert_memory_equal(dec, v[i].plain, pl);
    }
}

/* Every length 0..64 with several byte patterns: the encoding has 4*ceil(n/3) bytes, only
 * alphabet characters and final padding, decodes back (also in place), and is the only
 * encoding the decoder accepts for those bytes' length class. */
static void test_base64_round_trip_all_lengths(void **state)
{
    (void)state;
    for (int pattern = 0; pattern < 4; pattern++) {
        for (size_t n = 0; n <= 64; n++) {
            uint8_t in[64];
            char enc[88 + 1];
            uint8_t dec[64 + 1];
            for (size_t i = 0; i < n; i++) {
                switch (pattern) {
                case 0: in[i] = (uint8_t)i; break;
                case 1: in[i] = 0xFF; break;
                case 2: in[i] = 0x00; break;
                default: in[i] = (uint8_t)(i * 151 + 7); break;
                }
            }
            size_t el = hr_base64_encode(in, n, enc);
            assert_int_equal(el, (n + 2) / 3 * 4);
            for (size_t i = 0; i < el; i++) {
                int pad = enc[i] == '=';
                if (pad)
                    assert_true(i >= el - 2);
                else
                    assert_non_null(memchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                           "0123456789+/",
                                           enc[i], 64));
            }
            assert_int_equal(hr_base64_decode(enc, el, dec), (long)n);
            assert_memory_equal(dec, in, n);
            /* in place, from an exact-size heap copy */
            char *heap = malloc(el + 1);
            assert_non_null(heap);
            memcpy(heap, enc, el);
            assert_int_equal(hr_base64_decode(heap, el, (uint8_t *)heap), (long)n);
            assert_memory_equal(heap, in, n);
            free(heap);
            /* dropping the padding or the last character is not valid base64 */
            if (el) {
                assert_int_equal(hr_base64_decode(enc, el - 1, dec), HR_EINVAL);
                size_t np = el;
                while (np && enc[np - 1] == '=')
                    np--;
                if (np != el)
                    assert_int_equal(hr_base64_decode(enc, np, dec), HR_EINVAL);
            }
        }
    }
}

/* Every single-character corruption of a valid string: only alphabet characters (with the
 * pad-bit rule) may stand anywhere, '=' only at the end. */
static void test_base64_every_byte(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) {
        for (int at = 0; at < 8; at++) {
            char s[8];
            uint8_t dec[8];
            memcpy(s, "AAAAAAAA", 8);
            s[at] = (char)b;
            long rc = hr_base64_decode(s, 8, dec);
            int alpha = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
                        (b >= '0' && b <= '9') || b == '+' || b == '/';
            if (alpha)
                assert_int_equal(rc, 6);
            else if (b == '=' && at == 7)
                assert_int_equal(rc, 5); /* "AAAAAAA=": pad bits of 'A' are zero */
            else
                assert_int_equal(rc, HR_EINVAL);
        }
    }
}

static void test_base64_invalid(void **state)
{
    (void)state;
    static const char *bad[] = {
        "A",    "AA",    "AAA",   "AAAAA", /* not a multiple of 4 */
        "A===", "====",  "=AAA",  "A=AA",  "AA=A", "AA==AA==", "AAA=AAAA", "AAAA====",
        "AB==", "AAB=",  "/w=/", /* non-zero pad bits, padding in the wrong place */
        "AA-_",                  /* the URL-safe alphabet is not this one */
        "AA A", "AA\nA", "AAA\r", "AAA\t", "AA.A", "AAA\x80",  "AAA\xff",  "Zg==\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t dec[16];
        if (hr_base64_decode(bad[i], strlen(bad[i]), dec) != HR_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    uint8_t dec[4];
    assert_int_equal(hr_base64_decode("AAA\0", 4, dec), HR_EINVAL);
    /* the padded forms with zero pad bits are fine */
    assert_int_equal(hr_base64_decode("AA==", 4, dec), 1);
    assert_int_equal(hr_base64_decode("AAA=", 4, dec), 2);
    assert_int_equal(hr_base64_decode("AQ==", 4, dec), 1);
    assert_int_equal(dec[0], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_table),
        cmocka_unit_test(test_frame_type_bytes),
        cmocka_unit_test(test_payload_table),
        cmocka_unit_test(test_payload_round_trip),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_base64_rfc4648_vectors),
        cmocka_unit_test(test_base64_round_trip_all_lengths),
        cmocka_unit_test(test_base64_every_byte),
        cmocka_unit_test(test_base64_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
