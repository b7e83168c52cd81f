/* codec.c - RFC 6455 §5 (framing), §5.5 (control frames), §5.6 + §8.1 (UTF-8 text),
 * §7.4 (close codes): the server-side streaming frame parser and the frame encoder.
 *
 * The parser validates each header byte as soon as it arrives, streams data-frame payloads
 * straight out of the caller's buffer (unmasked in place), and only asks the caller to keep
 * bytes when a frame header or a whole control frame is incomplete. */
#include "codec.h"

#include <string.h>

/* Values of hr_ws_parser.in_frame. MSG_END exists because the caller's loop stops calling
 * once its buffer is empty: the DATA event that completes a FIN frame leaves the frame's
 * last payload byte unconsumed (it is still part of ev.data), and the next call consumes
 * that byte and reports MESSAGE_END. Without it, a message ending exactly at the end of a
 * read would only be reported when the next read arrived. */
enum {
    IN_HEADER = 0,  /* between frames: the next byte starts a frame header */
    IN_PAYLOAD = 1, /* streaming a data frame's payload; `remaining` bytes still to come */
    IN_MSG_END = 2, /* the message is complete; one held-back payload byte is left to consume */
};

/* -------------------------------------------------------------------------------------- */
/* Close codes (RFC 6455 §7.4.1-2, IANA "WebSocket Close Code Number Registry"). 1004 is
 * reserved, 1005/1006/1015 must never be sent, 1016-2999 are unassigned protocol codes;
 * 1012-1014 were registered after the RFC and real servers send them. */
int hr_ws_close_code_valid(unsigned code)
{
    if (code >= 1000 && code <= 1003)
        return 1;
    if (code >= 1007 && code <= 1014)
        return 1;
    return code >= 3000 && code <= 4999;
}

size_t hr_ws_frame_header(uint8_t *out, int fin, int opcode, uint64_t len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len <= 125) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t hr_ws_close_payload(uint8_t *out, uint16_t code, const char *reason)
{
    /* These codes mean "no status" and must not appear on the wire (§7.4.1): send an empty
     * close payload instead, which the peer reads as 1005. */
    if (code == 0 || code == HR_WS_CLOSE_NO_STATUS || code == HR_WS_CLOSE_ABNORMAL || code == 1015)
        return 0;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (!reason)
        return 2;
    size_t n = strlen(reason);
    if (n > 123) {
        n = 123;
        /* Back up to a sequence boundary so the peer does not fail us with 1007. */
        while (n > 0 && ((uint8_t)reason[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out + 2, reason, n);
    return 2 + n;
}

/* -------------------------------------------------------------------------------------- */
/* Parser */

void hr_ws_parser_init(struct hr_ws_parser *p, uint64_t max_message)
{
    memset(p, 0, sizeof(*p));
    p->max_message = max_message;
}

static int fail(struct hr_ws_parser *p, struct hr_ws_event *ev, uint16_t code, const char *reason)
{
    p->failed = 1;
    p->fail_code = code;
    p->fail_reason = reason;
    ev->close_code = code;
    ev->reason = reason;
    return HR_WS_ERROR;
}

/* XOR with the 4-byte key, starting at key offset pos; returns the next offset. The word
 * loop matters for large binary messages; the key is rotated so word lanes line up. */
static uint8_t unmask(uint8_t *d, size_t n, const uint8_t key[4], uint8_t pos)
{
    size_t i = 0;

    if (n >= 16) {
        uint8_t k8[8];
        uint64_t k;
        for (int j = 0; j < 8; j++)
            k8[j] = key[(pos + j) & 3];
        memcpy(&k, k8, 8);
        for (; n - i >= 8; i += 8) {
            uint64_t w;
            memcpy(&w, d + i, 8);
            w ^= k;
            memcpy(d + i, &w, 8);
        }
    }
    for (; i < n; i++, pos = (pos + 1) & 3)
        d[i] ^= key[pos];
    return pos;
}

static int is_control(unsigned op)
{
    return op >= 0x8;
}

/* Checks that need only the header's first byte: done before the rest arrives so a bad
 * frame fails fast. Returns NULL, or why the frame fails with 1002. */
static const char *check_b0(const struct hr_ws_parser *p, uint8_t b0)
{
    unsigned op = b0 & 0x0F;

    if (b0 & 0x70)
        return "reserved bits set";
    switch (op) {
    case HR_WS_OP_CONT:
        if (!p->msg_opcode)
            return "continuation without a message";
        break;
    case HR_WS_OP_TEXT:
    case HR_WS_OP_BINARY:
        if (p->msg_opcode)
            return "new message inside a fragmented one";
        break;
    case HR_WS_OP_CLOSE:
    case HR_WS_OP_PING:
    case HR_WS_OP_PONG:
        if (!(b0 & 0x80))
            return "fragmented control frame";
        break;
    default: return "reserved opcode";
    }
    return NULL;
}

static int control_event(struct hr_ws_parser *p, uint8_t op, uint8_t *pl, size_t n,
                         struct hr_ws_event *ev)
{
    ev->opcode = op;
    ev->data = pl;
    ev->len = n;
    if (op == HR_WS_OP_PING)
        return HR_WS_EV_PING;
    if (op == HR_WS_OP_PONG)
        return HR_WS_EV_PONG;
    if (n == 0) {
        ev->close_code = HR_WS_CLOSE_NO_STATUS;
        return HR_WS_EV_CLOSE;
    }
    if (n == 1)
        return fail(p, ev, HR_WS_CLOSE_PROTOCOL, "close payload of 1 byte");
    unsigned code = (unsigned)pl[0] << 8 | pl[1];
    if (!hr_ws_close_code_valid(code))
        return fail(p, ev, HR_WS_CLOSE_PROTOCOL, "invalid close code");
    if (hr_utf8_validate(HR_UTF8_ACCEPT, pl + 2, n - 2) != HR_UTF8_ACCEPT)
        return fail(p, ev, HR_WS_CLOSE_INVALID_DATA, "close reason is not UTF-8");
    ev->close_code = (uint16_t)code;
    ev->data = pl + 2;
    ev->len = n - 2;
    return HR_WS_EV_CLOSE;
}

int hr_ws_parse(struct hr_ws_parser *p, uint8_t *buf, size_t len, size_t *consumed,
                struct hr_ws_event *ev)
{
    size_t off = 0;

    memset(ev, 0, sizeof(*ev));
    *consumed = 0;
    if (p->failed) {
        ev->close_code = p->fail_code;
        ev->reason = p->fail_reason;
        return HR_WS_ERROR;
    }

    /* Loop only past steps that report nothing (a data frame's header, an empty non-final
     * fragment), so NEED_MORE really means the bytes left cannot progress on their own. */
    for (;;) {
        size_t avail = len - off;

        if (p->in_frame == IN_MSG_END) {
            if (avail == 0)
                return HR_WS_NEED_MORE;
            p->in_frame = IN_HEADER;
            ev->opcode = p->msg_opcode;
            p->msg_opcode = 0;
            *consumed = off + 1;
            return HR_WS_EV_MESSAGE_END;
        }

        if (p->in_frame == IN_PAYLOAD) {
            if (p->remaining == 0) {
                /* Only an empty frame gets here: a non-empty one ends in the DATA path. */
                p->in_frame = IN_HEADER;
                if (!p->frame_fin)
                    continue;
                if (p->msg_opcode == HR_WS_OP_TEXT && p->utf8_state != HR_UTF8_ACCEPT)
                    return fail(p, ev, HR_WS_CLOSE_INVALID_DATA, "truncated UTF-8 sequence");
                ev->opcode = p->msg_opcode;
                p->msg_opcode = 0;
                *consumed = off;
                return HR_WS_EV_MESSAGE_END;
            }
            if (avail == 0) {
                *consumed = off;
                return HR_WS_NEED_MORE;
            }
            size_t n = avail < p->remaining ? avail : (size_t)p->remaining;
            uint8_t *d = buf + off;
            p->mask_pos = unmask(d, n, p->mask, p->mask_pos);
            p->remaining -= n;
            if (p->msg_opcode == HR_WS_OP_TEXT) {
                p->utf8_state = hr_utf8_validate(p->utf8_state, d, n);
                if (p->utf8_state == HR_UTF8_REJECT)
                    return fail(p, ev, HR_WS_CLOSE_INVALID_DATA, "invalid UTF-8 in text");
                if (p->remaining == 0 && p->frame_fin && p->utf8_state != HR_UTF8_ACCEPT)
                    return fail(p, ev, HR_WS_CLOSE_INVALID_DATA, "truncated UTF-8 sequence");
            }
            ev->opcode = p->msg_opcode;
            ev->data = d;
            ev->len = n;
            *consumed = off + n;
            if (p->remaining == 0) {
                if (p->frame_fin) {
                    p->in_frame = IN_MSG_END;
                    *consumed -= 1; /* held back: see IN_MSG_END */
                } else {
                    p->in_frame = IN_HEADER;
                }
            }
            return HR_WS_EV_DATA;
        }

        /* IN_HEADER */
        uint8_t *h = buf + off;
        const char *bad;
        if (avail == 0) {
            *consumed = off;
            return HR_WS_NEED_MORE;
        }
        if ((bad = check_b0(p, h[0])))
            return fail(p, ev, HR_WS_CLOSE_PROTOCOL, bad);
        if (avail < 2) {
            *consumed = off;
            return HR_WS_NEED_MORE;
        }
        uint8_t op = h[0] & 0x0F, fin = h[0] >> 7, len7 = h[1] & 0x7F;
        if (!(h[1] & 0x80))
            return fail(p, ev, HR_WS_CLOSE_PROTOCOL, "client frame not masked");
        if (is_control(op) && len7 > 125)
            return fail(p, ev, HR_WS_CLOSE_PROTOCOL, "control frame payload over 125 bytes");

        size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        size_t hlen = 2 + ext + 4;
        if (avail < 2 + ext) {
            *consumed = off;
            return HR_WS_NEED_MORE;
        }
        uint64_t plen = len7;
        if (ext) {
            plen = 0;
            for (size_t i = 0; i < ext; i++)
                plen = plen << 8 | h[2 + i];
            /* Non-minimal encodings are tolerated (§5.2 only says "minimal number of
             * bytes MUST be used" of the sender); the top bit is not. */
            if (plen >> 63)
                return fail(p, ev, HR_WS_CLOSE_PROTOCOL, "64-bit length with top bit set");
        }
        if (!is_control(op)) {
            uint64_t so_far = op == HR_WS_OP_CONT ? p->msg_len : 0;
            if (p->max_message && (so_far > p->max_message || plen > p->max_message - so_far))
                return fail(p, ev, HR_WS_CLOSE_TOO_BIG, "message too big");
        }
        if (avail < hlen) {
            *consumed = off;
            return HR_WS_NEED_MORE;
        }

        if (is_control(op)) {
            /* Control frames are reported whole, so the caller gets the full ping to echo
             * and the full close reason; they are short enough to be kept. */
            if (avail < hlen + plen) {
                *consumed = off;
                return HR_WS_NEED_MORE;
            }
            uint8_t *pl = h + hlen;
            unmask(pl, (size_t)plen, h + 2 + ext, 0);
            *consumed = off + hlen + (size_t)plen;
            return control_event(p, op, pl, (size_t)plen, ev);
        }

        if (op != HR_WS_OP_CONT) {
            p->msg_opcode = op;
            p->msg_len = 0;
            p->utf8_state = HR_UTF8_ACCEPT;
        }
        /* Saturate when there is no limit: only the limit check reads msg_len. */
        p->msg_len = plen > UINT64_MAX - p->msg_len ? UINT64_MAX : p->msg_len + plen;
        memcpy(p->mask, h + 2 + ext, 4);
        p->mask_pos = 0;
        p->remaining = plen;
        p->frame_fin = fin;
        p->in_frame = IN_PAYLOAD;
        off += hlen;
    }
}
