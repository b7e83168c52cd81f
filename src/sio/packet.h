/* packet.h - Socket.IO protocol v5 packets (docs/socket.io-protocol/v5-current.md):
 *     <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
 * Pure decoding and encoding. Payloads stay raw JSON text: herald relays a client's event
 * arguments byte for byte and only looks inside where it must (the event name). */
#ifndef HR_SIO_PACKET_H
#define HR_SIO_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum hr_sio_type {
    HR_SIO_CONNECT = 0,
    HR_SIO_DISCONNECT = 1,
    HR_SIO_EVENT = 2,
    HR_SIO_ACK = 3,
    HR_SIO_CONNECT_ERROR = 4,
    HR_SIO_BINARY_EVENT = 5,
    HR_SIO_BINARY_ACK = 6,
};

/* socket.io-parser's Decoder refuses more ("too many attachments", its default maxAttachments,
 * which neither socket.io nor socket.io-client changes): a packet with more could not reach
 * any official client, and the reference server closes a client that sends one. */
#define HR_SIO_MAX_ATTACHMENTS 10

struct hr_sio_packet {
    uint8_t type;
    uint32_t attachments; /* BINARY_EVENT / BINARY_ACK: binary frames that follow */
    const char *nsp;      /* namespace, "/" when absent */
    size_t nsp_len;
    int64_t ack_id;   /* -1 when absent */
    const char *data; /* raw JSON payload, or NULL when absent */
    size_t data_len;
    /* EVENT / BINARY_EVENT: the event name (first array element, unescaped into name[]) and
     * the raw text of the remaining arguments, without brackets ("" when none). */
    char name[256];
    const char *args;
    size_t args_len;
};

/* Decode and validate a packet as the reference server does (socket.io-parser isPayloadValid):
 * CONNECT: optional object; DISCONNECT: no payload; CONNECT_ERROR: object or string;
 * EVENT / BINARY_EVENT: a non-empty array whose first element is a string that is not
 * reserved (connect, connect_error, disconnect, disconnecting, newListener, removeListener)
 * or a number; ACK / BINARY_ACK: an array. The payloads of EVENT, ACK and CONNECT_ERROR are
 * mandatory (the protocol document says so; the reference parser lets them be absent).
 * The payload must be one complete JSON value (hr_json_check) with only whitespace around.
 * Header rules: type '0'..'6'; "<n>-" only and always for the binary types, n decimal digits
 * in 1..HR_SIO_MAX_ATTACHMENTS; a namespace starts with '/' and ends at the first ',' (or at
 * the end of s), and must be valid UTF-8 without control characters (U+0000..U+001F: 0x1E
 * separates the records of a polling payload); an ack id is decimal digits in 0..INT64_MAX
 * (any type may carry one, as in the reference). A number event name is copied as its JSON
 * text. BINARY_EVENT / BINARY_ACK: the placeholders must be exactly one per attachment
 * (hr_sio_check_placeholders with all_used).
 * A string name is unescaped; it fails when longer than 255 bytes or when it holds U+0000 or
 * an unpaired surrogate escape. Returns 0 or HR_EINVAL. Pointers point into s, except nsp
 * when absent (a static "/"); args is not NUL-terminated. */
int hr_sio_decode(const char *s, size_t len, struct hr_sio_packet *out);

/* Check the binary placeholders of json, a valid JSON value (hr_json_check), against a packet
 * of `attachments` attachments, as socket.io-parser's reconstructPacket will read them: it
 * replaces every object whose "_placeholder" member is true by attachment "num", and fails
 * the whole packet ("illegal attachments") when num is not a number in [0, attachments).
 * Stricter than that, an object with a "_placeholder" member that is true must be exactly
 * {"_placeholder":true,"num":N} (members in any order, keys compared unescaped) with N an
 * integer written in plain digits, less than attachments; "_placeholder" may not appear twice
 * in one object (JSON.parse would keep the last, other parsers the first). With all_used, each
 * attachment must be named by exactly one placeholder, as socket.io-parser's encoder writes
 * them. attachments <= HR_SIO_MAX_ATTACHMENTS. Returns 0 or HR_EINVAL. */
int hr_sio_check_placeholders(const char *json, size_t len, uint32_t attachments, int all_used);

/* Encode "<type>[<attachments>-][<nsp>,][<ack id>]" followed by data (raw JSON, may be NULL;
 * the caller makes it a valid payload for the type). The namespace is written only when it
 * is not "/" (NULL or empty also mean "/"); attachments only for the binary types. ack_id < 0:
 * none. NULL on allocation failure, for a type outside 0..6, or for a namespace that does not
 * start with '/', contains ',' or a control character (it could not be decoded back, or
 * framed in a polling payload). */
struct hr_buf *hr_sio_encode(int type, const char *nsp, size_t nsp_len, int64_t ack_id,
                             uint32_t attachments, const char *data, size_t data_len);
/* An EVENT payload from an event name and raw arguments: '["name",' args ']' — args is the
 * raw JSON text of the arguments without brackets (may be empty). Appended to *b. Returns 0,
 * HR_EINVAL (name NULL, not UTF-8, or reserved: socket.io-parser refuses the packet), or
 * hr_buf_append's error; on error *b is unchanged. */
int hr_sio_append_event(struct hr_buf **b, const char *name, const char *args, size_t args_len);

#endif
