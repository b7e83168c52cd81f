/* codec.h - RFC 6455 WebSocket frame codec (server side): a pure, streaming parser that
 * unmasks in place and validates as bytes arrive, and the frame encoder.
 *
 * The parser never copies payload bytes: it hands out pointers into the caller's buffer.
 * A caller owning a connection loops:
 *
 *     while (len > 0) {
 *         size_t used;
 *         int ev = hr_ws_parse(&p, buf, len, &used, &event);
 *         buf += used; len -= used;
 *         if (ev == HR_WS_NEED_MORE) { keep the `len` bytes left for next time; break; }
 *         ... handle event ...
 *     }
 *
 * HR_WS_NEED_MORE is returned only when the bytes left cannot make progress on their own:
 * an incomplete frame header, or an incomplete control frame (<= 131 bytes in all). The
 * caller keeps those few bytes and presents them again, followed by new input. Data-frame
 * payloads are streamed: a partial payload is returned as HR_WS_EV_DATA at once. */
#ifndef HR_WS_CODEC_H
#define HR_WS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/utf8.h"

enum hr_ws_opcode {
    HR_WS_OP_CONT = 0x0,
    HR_WS_OP_TEXT = 0x1,
    HR_WS_OP_BINARY = 0x2,
    HR_WS_OP_CLOSE = 0x8,
    HR_WS_OP_PING = 0x9,
    HR_WS_OP_PONG = 0xA,
};

/* Close status codes, RFC 6455 §7.4.1 */
enum {
    HR_WS_CLOSE_NORMAL = 1000,
    HR_WS_CLOSE_GOING_AWAY = 1001,
    HR_WS_CLOSE_PROTOCOL = 1002,
    HR_WS_CLOSE_UNSUPPORTED = 1003,
    HR_WS_CLOSE_NO_STATUS = 1005, /* never sent on the wire */
    HR_WS_CLOSE_ABNORMAL = 1006,  /* never sent on the wire */
    HR_WS_CLOSE_INVALID_DATA = 1007,
    HR_WS_CLOSE_POLICY = 1008,
    HR_WS_CLOSE_TOO_BIG = 1009,
    HR_WS_CLOSE_INTERNAL = 1011,
    HR_WS_CLOSE_TRY_AGAIN = 1013,
};

/* Return values of hr_ws_parse(): an event, NEED_MORE, or ERROR. */
enum hr_ws_event_type {
    HR_WS_NEED_MORE = 0,  /* nothing to report; keep the unconsumed bytes */
    HR_WS_EV_DATA,        /* ev.data/ev.len: a chunk of the current message's payload (unmasked,
                             for text already UTF-8-checked up to here); len may be 0 */
    HR_WS_EV_MESSAGE_END, /* the current message is complete; ev.opcode is TEXT or BINARY */
    HR_WS_EV_PING,        /* ev.data/ev.len: the whole ping payload (<= 125 bytes) */
    HR_WS_EV_PONG,        /* ev.data/ev.len: the whole pong payload */
    HR_WS_EV_CLOSE,       /* ev.close_code (1005 when the frame had no payload), ev.data/ev.len:
                             the reason (valid UTF-8) */
    HR_WS_ERROR,          /* the connection must fail: ev.close_code is 1002, 1007 or 1009,
                             ev.reason a short static text; further calls keep returning it */
};

struct hr_ws_event {
    uint8_t opcode; /* for DATA / MESSAGE_END: the message's opcode (TEXT or BINARY) */
    uint16_t close_code;
    const uint8_t *data;
    size_t len;
    const char *reason; /* for HR_WS_ERROR */
};

struct hr_ws_parser {
    uint64_t max_message; /* limit on one message's total payload; 0 = no limit */
    uint64_t msg_len;     /* payload bytes of the current message so far */
    uint64_t remaining;   /* payload bytes of the current data frame still to come */
    uint32_t utf8_state;  /* incremental UTF-8 validator state for the current text message */
    uint8_t mask[4];
    uint8_t mask_pos;   /* index into mask for the next payload byte */
    uint8_t msg_opcode; /* TEXT/BINARY while a message is in progress, else 0 */
    uint8_t frame_fin;  /* FIN bit of the current data frame */
    uint8_t in_frame;   /* a data frame's payload is being streamed */
    uint8_t failed;     /* an error was returned; sticky */
    uint16_t fail_code;
    const char *fail_reason;
};

/* Initialise a server-side parser: client frames must be masked. */
void hr_ws_parser_init(struct hr_ws_parser *p, uint64_t max_message);

/* Whether p is between messages, as hr_ws_parser_init left it (nothing to remember: a caller
 * may drop this state and start from a fresh parser with the next input). */
static inline int hr_ws_parser_idle(const struct hr_ws_parser *p)
{
    return !p->in_frame && !p->msg_opcode && !p->failed;
}

/* Parse from buf (mutable: payload is unmasked in place). Sets *consumed to the bytes used
 * (possibly 0 with NEED_MORE) and returns an hr_ws_event_type. At most one event per call. */
int hr_ws_parse(struct hr_ws_parser *p, uint8_t *buf, size_t len, size_t *consumed,
                struct hr_ws_event *ev);

/* Whether a close code received from a peer is allowed on the wire (RFC 6455 §7.4). */
int hr_ws_close_code_valid(unsigned code);

/* Write an unmasked server frame header for a payload of len bytes into out (>= 10 bytes);
 * returns the header length (2, 4 or 10). */
size_t hr_ws_frame_header(uint8_t *out, int fin, int opcode, uint64_t len);

/* Build a close frame payload (code in network order + reason, truncated so the payload stays
 * <= 125 bytes) into out (>= 125 bytes); returns its length. */
size_t hr_ws_close_payload(uint8_t *out, uint16_t code, const char *reason);

#endif
