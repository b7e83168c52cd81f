/* fuzz_eio_sio.c - libFuzzer target for the Engine.IO v4 and Socket.IO v5 packet codecs
 * (src/eio/packet.c, src/sio/packet.c) and the JSON validator under them.
 *
 * The input is used four ways: as a WebSocket text frame (then, for a MESSAGE, its data as a
 * Socket.IO packet), as a binary frame, as an HTTP long-polling body iterated record by
 * record (each text MESSAGE through the Socket.IO decoder), and as JSON text checked against
 * jansson. Invariants: pointers stay inside the input, every accepted packet re-encodes to
 * bytes that decode to the same fields, base64 records are canonical, the placeholders of an
 * accepted binary packet are what socket.io-parser can reconstruct (read on jansson's tree),
 * and the validator agrees with jansson except where jansson is known to be stricter than
 * RFC 8259. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "eio/packet.h"
#include "sio/packet.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int in(const void *p, size_t n, const void *base, size_t len)
{
    const char *c = p, *b = base;
    return c >= b && n <= len && c - b <= (ptrdiff_t)(len - n);
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void same_packet(const struct hr_sio_packet *a, const struct hr_sio_packet *b)
{
    CHECK(a->type == b->type);
    CHECK(a->attachments == b->attachments);
    CHECK(a->ack_id == b->ack_id);
    CHECK(a->nsp_len == b->nsp_len && memcmp(a->nsp, b->nsp, a->nsp_len) == 0);
    CHECK((a->data == NULL) == (b->data == NULL));
    CHECK(a->data_len == b->data_len);
    CHECK(a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0);
    CHECK(strcmp(a->name, b->name) == 0);
    CHECK((a->args == NULL) == (b->args == NULL));
    CHECK(a->args_len == b->args_len);
    CHECK(a->args_len == 0 || memcmp(a->args, b->args, a->args_len) == 0);
}

/* socket.io-parser's reconstructPacket, read independently on jansson's tree: every object
 * whose "_placeholder" is true is replaced by attachment "num", which must be a number in
 * [0, n). herald asks more: exactly the two members, num an integer, each attachment named
 * once. Counts the placeholders into used[]; returns 0 when one is illegal. */
static int placeholders_ok(const json_t *j, size_t n, unsigned *used)
{
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++)
            if (!placeholders_ok(json_array_get(j, i), n, used))
                return 0;
        return 1;
    }
    if (!json_is_object(j))
        return 1;
    if (json_is_true(json_object_get(j, "_placeholder"))) {
        const json_t *num = json_object_get(j, "num");
        if (json_object_size(j) != 2 || !json_is_integer(num) || json_integer_value(num) < 0 ||
            (size_t)json_integer_value(num) >= n)
            return 0;
        used[json_integer_value(num)]++;
        return 1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v)
    {
        if (!placeholders_ok(v, n, used))
            return 0;
    }
    return 1;
}

/* Decode s as a Socket.IO packet, from an exact-size copy, and check what came out. */
static void check_sio(const uint8_t *s, size_t len)
{
    char *buf = malloc(len);
    CHECK(buf || len == 0);
    if (len)
        memcpy(buf, s, len);
    struct hr_sio_packet p;
    if (hr_sio_decode(buf, len, &p) != 0) {
        free(buf);
        return;
    }
    int event = p.type == HR_SIO_EVENT || p.type == HR_SIO_BINARY_EVENT;
    int binary = p.type == HR_SIO_BINARY_EVENT || p.type == HR_SIO_BINARY_ACK;

    CHECK(p.type <= HR_SIO_BINARY_ACK && buf[0] == '0' + p.type);
    CHECK(binary ? p.attachments >= 1 && p.attachments <= HR_SIO_MAX_ATTACHMENTS
                 : p.attachments == 0);
    CHECK(p.ack_id >= -1);
    CHECK(p.nsp_len >= 1 && p.nsp[0] == '/' && !memchr(p.nsp, ',', p.nsp_len));
    for (size_t i = 0; i < p.nsp_len; i++)
        CHECK((uint8_t)p.nsp[i] >= 0x20); /* 0x1E would split a polling payload */
    /* herald never relays what an official client's socket.io-parser refuses: a binary
     * packet's placeholders are legal, and every attachment is named exactly once (jansson
     * keeps the last of duplicate keys, as JSON.parse does; text it declines is skipped) */
    if (binary) {
        json_t *j = json_loadb(p.data, p.data_len, JSON_DECODE_ANY, NULL);
        if (j) {
            unsigned used[HR_SIO_MAX_ATTACHMENTS] = {0};
            CHECK(placeholders_ok(j, p.attachments, used));
            for (size_t i = 0; i < p.attachments; i++)
                CHECK(used[i] == 1);
            json_decref(j);
        }
    }
    CHECK(in(p.nsp, p.nsp_len, buf, len) || (p.nsp_len == 1 && p.nsp[0] == '/'));
    if (p.data) {
        CHECK(in(p.data, p.data_len, buf, len) && p.data + p.data_len == buf + len);
        CHECK(hr_json_check(p.data, p.data_len) != 0);
    } else {
        CHECK(p.data_len == 0);
    }
    CHECK(memchr(p.name, '\0', sizeof(p.name)) != NULL);
    if (event) {
        CHECK(p.data && p.args && in(p.args, p.args_len, p.data, p.data_len));
        if (p.args_len)
            CHECK(!is_ws(p.args[0]) && !is_ws(p.args[p.args_len - 1]));
    } else {
        CHECK(p.name[0] == '\0' && p.args == NULL && p.args_len == 0);
    }

    /* decode(encode(p)) == p */
    struct hr_buf *b =
        hr_sio_encode(p.type, p.nsp, p.nsp_len, p.ack_id, p.attachments, p.data, p.data_len);
    CHECK(b);
    struct hr_sio_packet q;
    CHECK(hr_sio_decode(b->data, b->len, &q) == 0);
    same_packet(&p, &q);
    /* re-encoding only drops redundant bytes ("/," for the main namespace, leading zeros),
     * or adds the comma a namespace at the very end ("0/admin") went without */
    CHECK(b->len <= len + 1);

    /* the event rebuilt from its name and arguments has the same name and arguments */
    if (event) {
        struct hr_buf *e = hr_buf_from("2", 1);
        CHECK(e);
        CHECK(hr_sio_append_event(&e, p.name, p.args, p.args_len) == 0);
        struct hr_sio_packet r;
        CHECK(hr_sio_decode(e->data, e->len, &r) == 0);
        CHECK(strcmp(r.name, p.name) == 0);
        CHECK(r.args_len == p.args_len && memcmp(r.args, p.args, p.args_len) == 0);
        hr_buf_unref(e);

        struct hr_buf *j = hr_buf_new(0);
        CHECK(j);
        CHECK(hr_json_append_string(&j, p.name, strlen(p.name)) == 0);
        CHECK(hr_json_check(j->data, j->len) == '"');
        hr_buf_unref(j);
    }
    hr_buf_unref(b);
    free(buf);
}

static void check_frames(const uint8_t *data, size_t size)
{
    uint8_t *f = malloc(size);
    CHECK(f || size == 0);
    if (size)
        memcpy(f, data, size);
    struct hr_eio_packet p;

    if (hr_eio_decode_frame(f, size, 0, &p) == 0) {
        CHECK(size >= 1 && f[0] >= '0' && f[0] <= '6' && p.type == f[0] - '0' && !p.binary);
        CHECK(p.data == f + 1 && p.len == size - 1);
        struct hr_buf *b = hr_eio_encode_text(p.type, p.data, p.len);
        CHECK(b && b->len == size && memcmp(b->data, data, size) == 0);
        hr_buf_unref(b);
        if (p.type == HR_EIO_MESSAGE)
            check_sio(p.data, p.len);
    } else {
        CHECK(size == 0 || f[0] < '0' || f[0] > '6');
    }
    CHECK(hr_eio_decode_frame(f, size, 1, &p) == 0);
    CHECK(p.type == HR_EIO_MESSAGE && p.binary && p.data == f && p.len == size);
    free(f);
}

/* An independent reading of RFC 4648 §4 for the oracle: canonical padded base64. */
static int b64_canonical(const uint8_t *s, size_t n)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t pad = 0;
    if (n % 4)
        return 0;
    while (pad < 2 && pad < n && s[n - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++)
        if (!s[i] || !strchr(alpha, s[i]))
            return 0;
    if (pad == 0)
        return 1;
    /* the last data character carries 4 (one '=') or 2 (two) zero bits at its bottom */
    size_t v = (size_t)(strchr(alpha, s[n - pad - 1]) - alpha);
    return pad == 1 ? (v & 3) == 0 : (v & 15) == 0;
}

static void check_payload(const uint8_t *data, size_t size)
{
    uint8_t *body = malloc(size);
    CHECK(body || size == 0);
    if (size)
        memcpy(body, data, size);
    size_t pos = 0, rec = 0, end = 0;
    int rc;
    struct hr_eio_packet p;
    char *enc = malloc(size / 3 * 4 + 8);
    CHECK(enc);

    for (;;) {
        /* The record, found independently in the untouched input. */
        const uint8_t *sep = memchr(data + rec, 0x1E, size - rec);
        end = sep ? (size_t)(sep - data) : size;
        rc = hr_eio_payload_next(body, size, &pos, &p);
        if (rc != 1)
            break;
        CHECK(end > rec);
        CHECK(in(p.data, p.len, body, size));
        CHECK(p.data == body + rec + 1);
        if (data[rec] == 'b') {
            CHECK(p.binary && p.type == HR_EIO_MESSAGE);
            CHECK(b64_canonical(data + rec + 1, end - rec - 1));
            size_t el = hr_base64_encode(p.data, p.len, enc);
            CHECK(el == end - rec - 1 && memcmp(enc, data + rec + 1, el) == 0);
        } else {
            CHECK(!p.binary && data[rec] == '0' + p.type && p.len == end - rec - 1);
            CHECK(memcmp(p.data, data + rec + 1, p.len) == 0);
            if (p.type == HR_EIO_MESSAGE)
                check_sio(p.data, p.len);
        }
        rec = sep ? end + 1 : size + 1;
        if (rec > size) {
            /* the body ended without a separator: done, and done stays done */
            CHECK(hr_eio_payload_next(body, size, &pos, &p) == 0);
            CHECK(hr_eio_payload_next(body, size, &pos, &p) == 0);
            rc = 0;
            break;
        }
    }
    if (rc != 0) {
        /* the failing record is empty, of an unknown type, or not canonical base64 */
        CHECK(rc == HR_EINVAL);
        CHECK(rec <= size);
        CHECK(end == rec || (data[rec] != 'b' && (data[rec] < '0' || data[rec] > '6')) ||
              (data[rec] == 'b' && !b64_canonical(data + rec + 1, end - rec - 1)));
    }
    free(enc);
    free(body);
}

static size_t json_depth(const json_t *j)
{
    size_t d = 0;
    if (json_is_array(j)) {
        for (size_t i = 0; i < json_array_size(j); i++) {
            size_t c = json_depth(json_array_get(j, i));
            d = c > d ? c : d;
        }
        return d + 1;
    }
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            size_t c = json_depth(v);
            d = c > d ? c : d;
        }
        return d + 1;
    }
    return 0;
}

/* hr_json_check against jansson. jansson rejects lone surrogate escapes and numbers it cannot
 * store, both valid RFC 8259 text; it allows 2048 levels where we allow 128. */
static void check_json(const uint8_t *data, size_t size)
{
    char *s = malloc(size);
    CHECK(s || size == 0);
    if (size)
        memcpy(s, data, size);
    int kind = hr_json_check(s, size);
    /* A raw NUL is never JSON; jansson would stop reading there instead of failing. */
    if (size && memchr(s, 0, size)) {
        CHECK(kind == 0);
        free(s);
        return;
    }
    json_error_t err;
    json_t *j = json_loadb(s, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (j) {
        if (kind == 0) {
            CHECK(json_depth(j) > 128);
        } else {
            switch (json_typeof(j)) {
            case JSON_OBJECT: CHECK(kind == '{'); break;
            case JSON_ARRAY: CHECK(kind == '['); break;
            case JSON_STRING: CHECK(kind == '"'); break;
            case JSON_INTEGER:
            case JSON_REAL: CHECK(kind == 'n'); break;
            case JSON_TRUE: CHECK(kind == 't'); break;
            case JSON_FALSE: CHECK(kind == 'f'); break;
            case JSON_NULL: CHECK(kind == 'z'); break;
            }
        }
        json_decref(j);
    } else if (kind != 0) {
        /* valid JSON that jansson declines: lone surrogates, numbers out of range, and
         * "\u0000" inside an object key (JSON_ALLOW_NUL covers string values only) */
        CHECK(strstr(err.text, "invalid Unicode") || strstr(err.text, "too big") ||
              strstr(err.text, "real number overflow") ||
              strstr(err.text, "NUL byte in object key"));
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long live = hr_buf_live;
    check_frames(data, size);
    check_payload(data, size);
    check_json(data, size);
    CHECK(hr_buf_live == live);
    return 0;
}
