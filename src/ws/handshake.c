/* handshake.c - RFC 6455 §4.2.1 (reading the client's opening handshake) and §4.2.2
 * (Sec-WebSocket-Accept), server side. */
#include "handshake.h"

#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

/* §1.3: the GUID appended to the client's key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Longest key hr_ws_accept_key() hashes; valid keys are 24 chars. */
#define KEY_MAX 128

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Trim optional whitespace (RFC 9110 §5.5) that a parser may have left in a field value. */
static const char *trim(const char *s, size_t len, size_t *out_len)
{
    while (len > 0 && is_ows(s[0])) {
        s++;
        len--;
    }
    while (len > 0 && is_ows(s[len - 1]))
        len--;
    *out_len = len;
    return s;
}

static int is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* 16 bytes encode to 22 base64 characters plus "==". Leftover bits in the 22nd character
 * are not required to be zero: the key still decodes to 16 bytes. */
static int key_valid(const char *k, size_t len)
{
    if (len != 24 || k[22] != '=' || k[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (!is_b64(k[i]))
            return 0;
    return 1;
}

void hr_ws_accept_key(const char *key, size_t key_len, char out[29])
{
    unsigned char buf[KEY_MAX + sizeof(ws_guid)];
    unsigned char digest[SHA_DIGEST_LENGTH];

    out[0] = '\0';
    if (key_len > KEY_MAX) /* never a valid key; nothing sensible to answer */
        return;
    memcpy(buf, key, key_len);
    memcpy(buf + key_len, ws_guid, sizeof(ws_guid) - 1);
    SHA1(buf, key_len + sizeof(ws_guid) - 1, digest);
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
}

static void set(struct hr_ws_handshake *out, int status, const char *error)
{
    out->status = status;
    out->error = error;
}

void hr_ws_handshake_check(const struct hr_http_request *req, struct hr_ws_handshake *out)
{
    const char *v, *key = NULL;
    size_t vlen, key_len = 0;
    unsigned nkeys = 0;

    memset(out, 0, sizeof(*out));
    if (req->method != HTTP_GET) {
        set(out, 405, "method must be GET");
        return;
    }
    if (req->http_major < 1 || (req->http_major == 1 && req->http_minor < 1)) {
        set(out, 400, "HTTP/1.1 or later required");
        return;
    }
    if (!hr_http_header_get(req, "Host", NULL)) {
        set(out, 400, "missing Host header");
        return;
    }
    /* Not asking for WebSocket at all: 426 tells the client what this URL speaks. */
    if (!hr_http_header_has_token(req, "Upgrade", "websocket")) {
        set(out, 426, "WebSocket upgrade required");
        return;
    }
    if (!hr_http_header_has_token(req, "Connection", "upgrade")) {
        set(out, 400, "Connection header must contain \"upgrade\"");
        return;
    }
    /* §4.2.2: a version we do not speak gets 426 plus our Sec-WebSocket-Version. */
    v = hr_http_header_get(req, "Sec-WebSocket-Version", &vlen);
    if (v)
        v = trim(v, vlen, &vlen);
    if (!v || vlen != 2 || memcmp(v, "13", 2) != 0) {
        set(out, 426, "Sec-WebSocket-Version must be 13");
        return;
    }
    /* hr_http_header_get() returns only the first field, and a repeated key is malformed,
     * so walk the fields. */
    for (unsigned i = 0; i < req->nheaders; i++) {
        const struct hr_http_header *f = &req->headers[i];
        if (f->name_len == 17 &&
            strncasecmp(req->head + f->name_off, "Sec-WebSocket-Key", 17) == 0) {
            nkeys++;
            key = trim(req->head + f->value_off, f->value_len, &key_len);
        }
    }
    if (nkeys != 1) {
        set(out, 400, nkeys ? "repeated Sec-WebSocket-Key" : "missing Sec-WebSocket-Key");
        return;
    }
    if (!key_valid(key, key_len)) {
        set(out, 400, "Sec-WebSocket-Key must be 16 bytes in base64");
        return;
    }
    hr_ws_accept_key(key, key_len, out->accept);
}
