/* packet.c - Socket.IO protocol v5 packet codec (docs/socket.io-protocol/v5-current.md,
 * "Packet encoding"; the decoding and isPayloadValid rules of socket.io-parser), and a strict
 * RFC 8259 JSON validator for the payloads.
 *
 * herald relays payloads as raw text, so the only JSON work is to prove the text is one
 * valid value (a relayed packet must never break another client's JSON.parse), find the
 * event name and cut out the remaining arguments. The validator is iterative with a fixed
 * nesting limit so that hostile input ("[[[[...") costs no stack. */
#include "packet.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "core/text.h"
#include "core/utf8.h"

/* Event names a client may not use (socket.io-parser RESERVED_EVENTS): they would reach the
 * server's own listeners. */
static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char *const reserved_events[] = {
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
};

/* -------------------------------------------------------------------------------------- */
/* Event names */

static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t hex4(const char *s)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++)
        v = v << 4 | (uint32_t)hr_hex_value(s[k]);
    return v;
}

/* Unescape the string token s[i..end) (quotes included, already validated) into out, a
 * NUL-terminated C string of at most cap - 1 bytes. Fails (HR_EINVAL) when it does not fit,
 * or holds U+0000 or a lone surrogate: neither can be a C string of valid UTF-8. */
static int unescape_name(const char *s, size_t i, size_t end, char *out, size_t cap)
{
    size_t o = 0;
    char tmp[4];

    for (i++, end--; i < end;) {
        size_t n;
        if (s[i] != '\\') {
            tmp[0] = s[i++];
            n = 1;
        } else if (s[i + 1] != 'u') {
            char e = s[i + 1];
            i += 2;
            n = 1;
            switch (e) {
            case 'b': tmp[0] = '\b'; break;
            case 'f': tmp[0] = '\f'; break;
            case 'n': tmp[0] = '\n'; break;
            case 'r': tmp[0] = '\r'; break;
            case 't': tmp[0] = '\t'; break;
            default: tmp[0] = e; break; /* '"', '\\', '/' */
            }
        } else {
            uint32_t cp = hex4(s + i + 2);
            i += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return HR_EINVAL;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - i < 6 || s[i] != '\\' || s[i + 1] != 'u')
                    return HR_EINVAL;
                uint32_t lo = hex4(s + i + 2);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return HR_EINVAL;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            if (cp == 0)
                return HR_EINVAL;
            n = put_utf8(tmp, cp);
        }
        if (cap - 1 - o < n)
            return HR_EINVAL;
        memcpy(out + o, tmp, n);
        o += n;
    }
    out[o] = '\0';
    return 0;
}

/* EVENT / BINARY_EVENT: data is a valid JSON array (checked). The first element must be a
 * string that is not reserved, or a number (socket.io-parser accepts both; a number name is
 * kept as its JSON text, which is what JSON.stringify wrote and what a JavaScript listener
 * key would be). The rest, trimmed and without the closing bracket, becomes args. */
static int split_event(struct hr_sio_packet *p)
{
    const char *s = p->data;
    size_t len = p->data_len;
    size_t i = hr_json_skip_ws(s, len, hr_json_skip_ws(s, len, 0) + 1); /* past '[' */
    size_t end;

    if (s[i] == '"') {
        end = hr_json_scan_string(s, len, i);
        if (unescape_name(s, i, end, p->name, sizeof(p->name)) < 0)
            return HR_EINVAL;
        for (size_t k = 0; k < sizeof(reserved_events) / sizeof(reserved_events[0]); k++)
            if (strcmp(p->name, reserved_events[k]) == 0)
                return HR_EINVAL;
    } else if (s[i] == '-' || is_digit(s[i])) {
        end = hr_json_scan_number(s, len, i);
        if (end - i >= sizeof(p->name))
            return HR_EINVAL;
        memcpy(p->name, s + i, end - i);
        p->name[end - i] = '\0';
    } else {
        /* ']' (an empty array), or an object, array, true, false or null */
        return HR_EINVAL;
    }

    /* The array is valid, so after the first element comes ',' or the closing ']', and the
     * text ends with that ']' plus whitespace. */
    size_t close = len;
    while (is_ws(s[close - 1]))
        close--;
    close--;
    i = hr_json_skip_ws(s, len, end);
    if (s[i] == ',') {
        i = hr_json_skip_ws(s, len, i + 1);
        while (close > i && is_ws(s[close - 1]))
            close--;
    } else {
        close = i;
    }
    p->args = s + i;
    p->args_len = close - i;
    return 0;
}

/* -------------------------------------------------------------------------------------- */
/* Binary placeholders (socket.io-parser binary.js reconstructPacket) */

_Static_assert(HR_SIO_MAX_ATTACHMENTS <= 64, "the attachments used are a 64-bit mask");

enum { KEY_OTHER, KEY_PLACEHOLDER, KEY_NUM };

/* What one open object has shown so far of the placeholder members. */
struct ph_obj {
    uint32_t members; /* keys seen, saturating */
    uint8_t ph;       /* "_placeholder" keys seen */
    uint8_t ph_true;  /* the last one's value is the literal true */
    uint8_t nums;     /* "num" keys seen */
    int64_t num;      /* the last num as a plain-digit integer, or -1 */
};

/* The key s[i..end) (a validated string token), unescaped as JSON.parse reads it. */
static int classify_key(const char *s, size_t i, size_t end)
{
    char k[16];
    /* "_placeholder" is 12 characters, each at most 6 bytes as an escape, plus the quotes */
    if (end - i > 12 * 6 + 2 || unescape_name(s, i, end, k, sizeof(k)) < 0)
        return KEY_OTHER; /* longer than either name, or not a C string */
    if (strcmp(k, "_placeholder") == 0)
        return KEY_PLACEHOLDER;
    return strcmp(k, "num") == 0 ? KEY_NUM : KEY_OTHER;
}

/* A plain non-negative integer ("0", "7", never "07", "1.0", "1e0" or "-0"), else -1. The
 * official encoder writes num with JSON.stringify of a small integer: plain digits. */
static int64_t plain_index(const char *s, size_t i, size_t end)
{
    if (end - i > 9 || (end - i > 1 && s[i] == '0'))
        return -1;
    int64_t v = 0;
    for (; i < end; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* A value of the given key arrived in object o; tok is its text when it is a scalar. */
static void ph_value(struct ph_obj *o, int key, const char *s, size_t i, size_t end)
{
    if (key == KEY_PLACEHOLDER) {
        if (o->ph < UINT8_MAX)
            o->ph++;
        o->ph_true = end - i == 4 && memcmp(s + i, "true", 4) == 0;
    } else if (key == KEY_NUM) {
        if (o->nums < UINT8_MAX)
            o->nums++;
        o->num = s[i] == '-' || is_digit(s[i]) ? plain_index(s, i, end) : -1;
    }
}

int hr_sio_check_placeholders(const char *s, size_t len, uint32_t attachments, int all_used)
{
    char open[HR_JSON_MAX_DEPTH];
    struct ph_obj obj[HR_JSON_MAX_DEPTH];
    uint8_t expect_key[HR_JSON_MAX_DEPTH];
    int key[HR_JSON_MAX_DEPTH];
    size_t depth = 0, i = 0;
    uint64_t used = 0;

    if (attachments > HR_SIO_MAX_ATTACHMENTS)
        return HR_EINVAL;
    /* s is valid JSON: walk its tokens, keeping per open object what its members say. */
    for (;;) {
        i = hr_json_skip_ws(s, len, i);
        if (i >= len)
            break;
        char c = s[i];
        struct ph_obj *top = depth && open[depth - 1] == '{' ? &obj[depth - 1] : NULL;
        if (c == ',' || c == ':') {
            if (c == ',' && top)
                expect_key[depth - 1] = 1;
            i++;
            continue;
        }
        if (c == ']' || c == '}') {
            if (depth == 0)
                return HR_EINVAL; /* not the valid JSON promised */
            depth--;
            i++;
            if (c == ']')
                continue;
            struct ph_obj *o = &obj[depth];
            if (o->ph > 1)
                return HR_EINVAL;
            if (o->ph == 0 || !o->ph_true)
                continue; /* an ordinary object: the official parser leaves it alone */
            if (o->members != 2 || o->nums != 1 || o->num < 0 || o->num >= (int64_t)attachments)
                return HR_EINVAL;
            if (all_used && (used >> o->num & 1))
                return HR_EINVAL;
            used |= (uint64_t)1 << o->num;
            continue;
        }
        if (c == '"' && top && expect_key[depth - 1]) {
            size_t end = hr_json_scan_string(s, len, i);
            if (end == HR_JSON_BAD)
                return HR_EINVAL; /* not the valid JSON promised */
            expect_key[depth - 1] = 0;
            key[depth - 1] = classify_key(s, i, end);
            if (top->members < UINT32_MAX)
                top->members++;
            i = end;
            continue;
        }
        /* a value: the parent object notes it under its key */
        if (c == '[' || c == '{') {
            if (top)
                ph_value(top, key[depth - 1], s, i, i + 1);
            if (depth == HR_JSON_MAX_DEPTH)
                return HR_EINVAL;
            open[depth] = c;
            expect_key[depth] = c == '{';
            key[depth] = KEY_OTHER;
            memset(&obj[depth], 0, sizeof(obj[depth]));
            obj[depth].num = -1;
            depth++;
            i++;
            continue;
        }
        size_t end;
        if (c == '"')
            end = hr_json_scan_string(s, len, i);
        else if (c == '-' || is_digit(c))
            end = hr_json_scan_number(s, len, i);
        else if (c == 't')
            end = hr_json_scan_literal(s, len, i, "true");
        else if (c == 'f')
            end = hr_json_scan_literal(s, len, i, "false");
        else
            end = hr_json_scan_literal(s, len, i, "null");
        if (end == HR_JSON_BAD)
            return HR_EINVAL;
        if (top)
            ph_value(top, key[depth - 1], s, i, end);
        i = end;
    }
    if (depth != 0)
        return HR_EINVAL;
    /* every attachment named once: what socket.io-parser's encoder writes */
    if (all_used && used != (attachments == 64 ? UINT64_MAX : ((uint64_t)1 << attachments) - 1))
        return HR_EINVAL;
    return 0;
}

/* -------------------------------------------------------------------------------------- */
/* Packets */

/* A C0 control character. A namespace is written raw into our packets, and 0x1E would split
 * a polling payload there. */
static int has_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((uint8_t)s[i] < 0x20)
            return 1;
    return 0;
}

static int is_binary_type(int type)
{
    return type == HR_SIO_BINARY_EVENT || type == HR_SIO_BINARY_ACK;
}

int hr_sio_decode(const char *s, size_t len, struct hr_sio_packet *out)
{
    size_t i;

    memset(out, 0, sizeof(*out));
    out->nsp = "/";
    out->nsp_len = 1;
    out->ack_id = -1;

    if (!s || len == 0 || s[0] < '0' || s[0] > '0' + HR_SIO_BINARY_ACK)
        return HR_EINVAL;
    out->type = (uint8_t)(s[0] - '0');
    i = 1;

    /* "<n>-": how many binary frames follow. Only the binary types have it; 0 is illegal
     * (socket.io-parser: n >= 1), and we cap n since each one is buffered. */
    if (is_binary_type(out->type)) {
        uint32_t n = 0;
        size_t start = i;
        while (i < len && is_digit(s[i])) {
            if (n <= HR_SIO_MAX_ATTACHMENTS)
                n = n * 10 + (uint32_t)(s[i] - '0');
            i++;
        }
        if (i == start || i >= len || s[i] != '-' || n < 1 || n > HR_SIO_MAX_ATTACHMENTS)
            return HR_EINVAL;
        out->attachments = n;
        i++;
    }

    /* "/<nsp>,": the namespace has no escapes and ends at the first comma, or at the end of
     * the packet (then nothing follows: "40/admin" is a valid CONNECT). */
    if (i < len && s[i] == '/') {
        const char *comma = memchr(s + i, ',', len - i);
        size_t end = comma ? (size_t)(comma - s) : len;
        out->nsp = s + i;
        out->nsp_len = end - i;
        /* It is echoed back in our packets, so it must be text a client can decode. */
        if (hr_utf8_validate(HR_UTF8_ACCEPT, (const uint8_t *)out->nsp, out->nsp_len) !=
                HR_UTF8_ACCEPT ||
            has_control(out->nsp, out->nsp_len))
            return HR_EINVAL;
        i = comma ? end + 1 : len;
    }

    /* "<ack id>": decimal digits up to the payload. Leading zeros are accepted, as by the
     * reference (Number("012") is 12); a value past int64 is not an id anyone sent. */
    if (i < len && is_digit(s[i])) {
        int64_t id = 0;
        while (i < len && is_digit(s[i])) {
            int d = s[i] - '0';
            if (id > (INT64_MAX - d) / 10)
                return HR_EINVAL;
            id = id * 10 + d;
            i++;
        }
        out->ack_id = id;
    }

    int kind = 0;
    if (i < len) {
        out->data = s + i;
        out->data_len = len - i;
        kind = hr_json_check(out->data, out->data_len);
        if (!kind)
            return HR_EINVAL;
    }

    /* isPayloadValid, plus what the protocol document makes mandatory: EVENT's non-empty
     * array and ACK's array must be present, and CONNECT_ERROR carries its reason. */
    switch (out->type) {
    case HR_SIO_CONNECT: return kind == 0 || kind == '{' ? 0 : HR_EINVAL;
    case HR_SIO_DISCONNECT: return kind == 0 ? 0 : HR_EINVAL;
    case HR_SIO_CONNECT_ERROR: return kind == '{' || kind == '"' ? 0 : HR_EINVAL;
    case HR_SIO_ACK: return kind == '[' ? 0 : HR_EINVAL;
    case HR_SIO_BINARY_ACK:
        if (kind != '[')
            return HR_EINVAL;
        return hr_sio_check_placeholders(out->data, out->data_len, out->attachments, 1);
    case HR_SIO_EVENT: return kind == '[' ? split_event(out) : HR_EINVAL;
    default: /* BINARY_EVENT */
        if (kind != '[' || split_event(out) < 0)
            return HR_EINVAL;
        /* placeholders a client's socket.io-parser would refuse: every receiver of the
         * relayed packet would fail with "parse error" and reconnect */
        return hr_sio_check_placeholders(out->data, out->data_len, out->attachments, 1);
    }
}

/* -------------------------------------------------------------------------------------- */
/* Encoders */

struct hr_buf *hr_sio_encode(int type, const char *nsp, size_t nsp_len, int64_t ack_id,
                             uint32_t attachments, const char *data, size_t data_len)
{
    char head[48];
    size_t h = 0;

    if (type < HR_SIO_CONNECT || type > HR_SIO_BINARY_ACK)
        return NULL;
    if (!nsp || (nsp_len == 1 && nsp[0] == '/'))
        nsp_len = 0;
    /* A namespace must start with '/' to be recognised, and cannot hold the comma that ends
     * it: such a packet would decode as something else. */
    if (nsp_len && (nsp[0] != '/' || memchr(nsp, ',', nsp_len) || has_control(nsp, nsp_len)))
        return NULL;
    if (!data)
        data_len = 0;

    head[h++] = (char)('0' + type);
    if (is_binary_type(type))
        h += (size_t)snprintf(head + h, sizeof(head) - h, "%u-", (unsigned)attachments);
    size_t tail = ack_id >= 0 ? (size_t)snprintf(NULL, 0, "%lld", (long long)ack_id) : 0;
    if (nsp_len > UINT32_MAX / 2 || data_len > UINT32_MAX / 2)
        return NULL;

    struct hr_buf *b = hr_buf_new(h + nsp_len + 1 + tail + data_len);
    if (!b)
        return NULL;
    memcpy(b->data, head, h);
    b->len = (uint32_t)h;
    if (nsp_len) {
        memcpy(b->data + b->len, nsp, nsp_len);
        b->data[b->len + nsp_len] = ',';
        b->len += (uint32_t)nsp_len + 1;
    }
    if (ack_id >= 0) {
        char num[24];
        snprintf(num, sizeof(num), "%lld", (long long)ack_id);
        memcpy(b->data + b->len, num, tail);
        b->len += (uint32_t)tail;
    }
    if (data_len) {
        memcpy(b->data + b->len, data, data_len);
        b->len += (uint32_t)data_len;
    }
    return b;
}

int hr_sio_append_event(struct hr_buf **b, const char *name, const char *args, size_t args_len)
{
    uint32_t old = (*b)->len;
    int rc;

    if (!name)
        return HR_EINVAL;
    /* socket.io-parser refuses an EVENT named so ("invalid payload") */
    for (size_t k = 0; k < sizeof(reserved_events) / sizeof(reserved_events[0]); k++)
        if (strcmp(name, reserved_events[k]) == 0)
            return HR_EINVAL;
    if ((rc = hr_buf_append(b, "[", 1)) || (rc = hr_json_append_string(b, name, strlen(name))))
        goto fail;
    if (args_len && ((rc = hr_buf_append(b, ",", 1)) || (rc = hr_buf_append(b, args, args_len))))
        goto fail;
    if ((rc = hr_buf_append(b, "]", 1)))
        goto fail;
    return 0;
fail:
    (*b)->len = old;
    return rc;
}
