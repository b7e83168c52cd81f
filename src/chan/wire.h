/* wire.h - what every channel transport shares: the resume cursor, the JSON form of a
 * message, and the channel name in a URL path. Pure.
 *
 * A cursor is "<epoch>:<id>" (or a bare "<id>", taken to be in the channel's current epoch),
 * the epoch being the channel's (hub.h). Every transport takes the same cursor: SSE's
 * Last-Event-ID, the polls' since, the WebSocket's since, and the offset of Socket.IO's
 * connection state recovery for rooms that are channels; so a client can switch transports
 * and go on where it was. */
#ifndef HR_CHAN_WIRE_H
#define HR_CHAN_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "hub/hub.h"

/* The wire formats a channel message is encoded in, each once and shared by every subscriber
 * using it (hr_hub_encoding's slots). */
enum { HR_FMT_WS, HR_FMT_SSE, HR_FMT_POLL, HR_FMT_SIO, HR_FMT_COUNT };
_Static_assert(HR_FMT_COUNT <= HR_HUB_FORMATS, "the hub keeps an encoding slot per format");

#define HR_CURSOR_EPOCH_MAX 64

struct hr_cursor {
    uint64_t id;                         /* deliver what comes after this id */
    char epoch[HR_CURSOR_EPOCH_MAX + 1]; /* "" for a bare id */
};

/* Parse a cursor (any channel's). Returns 0 or HR_EINVAL. */
int hr_cursor_parse(const char *s, size_t len, struct hr_cursor *out);
/* Whether c was given out by channel ch (its epoch, or a bare id). */
int hr_cursor_of(const struct hr_cursor *c, const struct hr_channel *ch);

/* Where a reader with cursor c starts: sets *since; returns a gap reason ("trimmed",
 * "epoch", "unknown") or NULL when nothing was missed. */
const char *hr_cursor_start(const struct hr_cursor *c, const struct hr_channel *ch,
                            uint64_t *since);

/* The channel name after prefix in a request path ("/sse/chat?x" -> "chat", "/sse/user%3Aa"
 * -> "user:a"), percent-decoded into out; its length in *len. NULL when missing or invalid. */
const char *hr_channel_from_path(const char *path, const char *prefix,
                                 char out[HR_CHANNEL_NAME_MAX + 1], size_t *len);

/* {"id":N,"cursor":"E:N","time":T,"data":<json>} - the form of a message in poll answers and
 * WebSocket frames; epoch is its channel's. */
struct hr_buf *hr_msg_json(const struct hr_hub_msg *m, const char *epoch);

/* A publish body as the JSON value stored: JSON as is when json is set (it must be valid),
 * else the text as a JSON string (it must be UTF-8). NULL with *err set when refused. */
struct hr_buf *hr_msg_value(const char *body, size_t len, int json, const char **err);
/* A JSON value already checked (hr_json_check), without the whitespace around it, in a buffer
 * of its own (NULL: out of memory). */
struct hr_buf *hr_msg_json_copy(const char *body, size_t len);
/* The same for a body already in a buffer, taking the caller's reference to it (NULL: an
 * empty body). Valid JSON comes back as that very buffer, not copied (surrounding whitespace
 * is cut in place when the buffer is not shared); text is re-encoded as a JSON string into a
 * new buffer. NULL with *err set when refused (body is released either way). */
struct hr_buf *hr_msg_value_buf(struct hr_buf *body, int json, const char **err);

#endif
