/* handshake.h - RFC 6455 §4.2 opening handshake, server side: validate the client's request
 * and compute Sec-WebSocket-Accept. Pure: no sockets. */
#ifndef HR_WS_HANDSHAKE_H
#define HR_WS_HANDSHAKE_H

#include <stddef.h>

#include "http/parser.h"

struct hr_ws_handshake {
    int status;        /* 0 when valid; else the HTTP status to answer (400, 405, 426) */
    const char *error; /* short text for the error body */
    char accept[29];   /* base64 of SHA-1(key + GUID), NUL-terminated, when valid */
};

/* Check an upgrade request: GET, HTTP/1.1 or later, a Host header, "Upgrade: websocket" and
 * "Connection: upgrade" (tokens case-insensitive, comma lists allowed, repeated headers
 * allowed), Sec-WebSocket-Key of 16 bytes base64, Sec-WebSocket-Version: 13.
 * A request that is not an upgrade at all, or asks for another version, gets 426 (answer
 * with "Sec-WebSocket-Version: 13" and "Upgrade: websocket"); a malformed one 400. */
void hr_ws_handshake_check(const struct hr_http_request *req, struct hr_ws_handshake *out);

/* Compute Sec-WebSocket-Accept for a key (as sent, 24 chars): out gets 28 chars + NUL. */
void hr_ws_accept_key(const char *key, size_t key_len, char out[29]);

#endif
