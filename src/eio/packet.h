/* packet.h - Engine.IO protocol v4 packets (docs/engine.io-protocol/v4-current.md, "Packet
 * encoding"): pure decoding and encoding, no sockets.
 *
 * On WebSocket each packet is one frame: a text frame "<type>[<data>]", or a binary frame whose
 * bytes are a binary message packet. On HTTP long-polling a payload is packets joined by the
 * record separator 0x1E; a binary message packet is "b" + base64 of its bytes. */
#ifndef HR_EIO_PACKET_H
#define HR_EIO_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum hr_eio_type {
    HR_EIO_OPEN = 0,
    HR_EIO_CLOSE = 1,
    HR_EIO_PING = 2,
    HR_EIO_PONG = 3,
    HR_EIO_MESSAGE = 4,
    HR_EIO_UPGRADE = 5,
    HR_EIO_NOOP = 6,
};

#define HR_EIO_SEPARATOR 0x1E

struct hr_eio_packet {
    uint8_t type;   /* enum hr_eio_type */
    uint8_t binary; /* a binary message: data is raw bytes */
    uint8_t *data;  /* payload after the type character (or the raw bytes); not NUL-terminated */
    size_t len;
};

/* A WebSocket frame as one packet. Text: the first byte must be a type digit '0'..'6' (an
 * empty frame, or "b<base64>", is HR_EINVAL: binary data has binary frames on WebSocket).
 * Binary: a binary MESSAGE, possibly empty. Returns 0 or HR_EINVAL. data points into frame. */
int hr_eio_decode_frame(uint8_t *frame, size_t len, int binary, struct hr_eio_packet *out);

/* Iterate over the packets of a polling payload (a POST body), decoding "b<base64>" records
 * in place (the body must be writable; iterate it once). *pos starts at 0 and is otherwise
 * opaque (it becomes len + 1 after the last record). Returns 1 with *out filled, 0 at the
 * end, HR_EINVAL for a malformed record: an empty one (so an empty body, a leading, doubled
 * or trailing separator all fail, as in engine.io-parser), an unknown type, or base64 that
 * hr_base64_decode refuses. Records before the bad one were already returned. */
int hr_eio_payload_next(uint8_t *body, size_t len, size_t *pos, struct hr_eio_packet *out);

/* Encoders. Each returns a new buffer (refs 1) or NULL on allocation failure. */
/* For a WebSocket text frame or a polling record: "<type><data>". NULL for a type outside
 * 0..6. The caller keeps 0x1E out of data that goes into a polling payload. */
struct hr_buf *hr_eio_encode_text(int type, const void *data, size_t len);
/* A binary message for polling: "b" + base64(data). (On WebSocket it is the raw bytes.) */
struct hr_buf *hr_eio_encode_base64(const void *data, size_t len);

/* Base64 (RFC 4648 §4, with padding). encode writes 4*ceil(n/3) bytes (no NUL); decode
 * returns the decoded length or HR_EINVAL, and may work in place (out == in). decode takes
 * only the canonical form: n a multiple of 4, alphabet characters, '=' only as the last one
 * or two, zero pad bits (§3.5); no whitespace, no URL-safe alphabet, no missing padding
 * (Node's decoder tolerates all of these; clients always send the canonical form). */
size_t hr_base64_encode(const uint8_t *in, size_t n, char *out);
long hr_base64_decode(const char *in, size_t n, uint8_t *out);

#endif
