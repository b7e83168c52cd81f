/* packet.c - Engine.IO protocol v4 packet codec (docs/engine.io-protocol/v4-current.md,
 * "Packet encoding"; behaviour of engine.io-parser decodePacket/decodePayload) and RFC 4648 §4
 * base64 for binary packets on HTTP long-polling.
 *
 * Where the reference parser is lenient we are strict, because a lenient decoder only helps
 * a peer that is not speaking the protocol: base64 must be canonical RFC 4648 (padding
 * required, no foreign characters, zero pad bits) where Node's Buffer.from(s, "base64")
 * silently skips bad characters. */
#include "packet.h"

#include <limits.h>
#include <string.h>

#include "core/error.h"

static const char b64_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Reverse alphabet: 0..63, or 0xFF for anything else (including '=' and whitespace). */
static uint8_t b64_value(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return (uint8_t)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (uint8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (uint8_t)(c - '0' + 52);
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return 0xFF;
}

size_t hr_base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;

    for (; n - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

/* In place is safe: each quantum is read whole before its (at most 3) bytes are written, and
 * the write position never passes the read position. */
long hr_base64_decode(const char *in, size_t n, uint8_t *out)
{
    const uint8_t *s = (const uint8_t *)in;
    size_t o = 0;

    if (n % 4 != 0 || n / 4 * 3 > (size_t)LONG_MAX)
        return HR_EINVAL;
    for (size_t i = 0; i < n; i += 4) {
        uint8_t a = b64_value(s[i]), b = b64_value(s[i + 1]);
        uint8_t c = b64_value(s[i + 2]), d = b64_value(s[i + 3]);
        int last = i + 4 == n;

        if (a == 0xFF || b == 0xFF)
            return HR_EINVAL;
        if (c == 0xFF || d == 0xFF) {
            /* Only the last quantum may be padded: "xx==" or "xxx=". Pad bits must be zero
             * (RFC 4648 §3.5) so that every byte string has exactly one encoding. */
            if (!last || s[i + 3] != '=')
                return HR_EINVAL;
            if (s[i + 2] == '=') {
                if (b & 0x0F)
                    return HR_EINVAL;
                out[o++] = (uint8_t)(a << 2 | b >> 4);
                break;
            }
            if (c == 0xFF || (c & 0x03))
                return HR_EINVAL;
            out[o++] = (uint8_t)(a << 2 | b >> 4);
            out[o++] = (uint8_t)(b << 4 | c >> 2);
            break;
        }
        out[o++] = (uint8_t)(a << 2 | b >> 4);
        out[o++] = (uint8_t)(b << 4 | c >> 2);
        out[o++] = (uint8_t)(c << 6 | d);
    }
    return (long)o;
}

static int is_type_char(uint8_t c)
{
    return c >= '0' && c <= '0' + HR_EIO_NOOP;
}

int hr_eio_decode_frame(uint8_t *frame, size_t len, int binary, struct hr_eio_packet *out)
{
    memset(out, 0, sizeof(*out));
    if (binary) {
        /* A binary frame is a message's raw bytes, no type prefix; an empty one is an empty
         * binary message, as in engine.io-parser. */
        out->type = HR_EIO_MESSAGE;
        out->binary = 1;
        out->data = frame;
        out->len = len;
        return 0;
    }
    /* Text frames must start with a type digit. engine.io-parser would also take "b<base64>"
     * here, but no client sends it: binary data travels in binary frames on WebSocket. */
    if (len == 0 || !is_type_char(frame[0]))
        return HR_EINVAL;
    out->type = (uint8_t)(frame[0] - '0');
    out->data = frame + 1;
    out->len = len - 1;
    return 0;
}

/* *pos is an opaque cursor: len + 1 once the last record (one not followed by a separator)
 * has been returned. That distinguishes "done" from "a separator ended the body", which
 * leaves an empty record behind, as does an empty body: engine.io-parser splits on 0x1E and
 * fails the empty string as an unknown packet type, so we fail it too. */
int hr_eio_payload_next(uint8_t *body, size_t len, size_t *pos, struct hr_eio_packet *out)
{
    size_t start = *pos, end;

    memset(out, 0, sizeof(*out));
    if (start > len)
        return 0;
    const uint8_t *sep = start < len ? memchr(body + start, HR_EIO_SEPARATOR, len - start) : NULL;
    end = sep ? (size_t)(sep - body) : len;
    *pos = sep ? end + 1 : len + 1;

    if (end == start)
        return HR_EINVAL;
    uint8_t *rec = body + start;
    size_t n = end - start;
    if (rec[0] == 'b') {
        /* Polling carries binary messages as "b" + base64 (protocol v4 always uses base64
         * there); decode in place behind the "b". */
        long m = hr_base64_decode((const char *)rec + 1, n - 1, rec + 1);
        if (m < 0)
            return HR_EINVAL;
        out->type = HR_EIO_MESSAGE;
        out->binary = 1;
        out->data = rec + 1;
        out->len = (size_t)m;
        return 1;
    }
    if (!is_type_char(rec[0]))
        return HR_EINVAL;
    out->type = (uint8_t)(rec[0] - '0');
    out->data = rec + 1;
    out->len = n - 1;
    return 1;
}

struct hr_buf *hr_eio_encode_text(int type, const void *data, size_t len)
{
    if (type < HR_EIO_OPEN || type > HR_EIO_NOOP || len > UINT32_MAX - 1)
        return NULL;
    struct hr_buf *b = hr_buf_new(len + 1);
    if (!b)
        return NULL;
    b->data[0] = (char)('0' + type);
    if (len)
        memcpy(b->data + 1, data, len);
    b->len = (uint32_t)(len + 1);
    return b;
}

struct hr_buf *hr_eio_encode_base64(const void *data, size_t len)
{
    if (len > (UINT32_MAX - 8) / 4 * 3)
        return NULL;
    size_t n = 1 + (len + 2) / 3 * 4;
    struct hr_buf *b = hr_buf_new(n);
    if (!b)
        return NULL;
    b->data[0] = 'b';
    b->len = (uint32_t)(1 + hr_base64_encode(data, len, b->data + 1));
    return b;
}
