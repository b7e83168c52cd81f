/* parser.h - HTTP/1.1 request parsing on llhttp (RFC 9112): a pure layer that turns bytes into
 * hr_http_request values, enforcing head and body limits. No sockets here.
 *
 * The request head (target and header fields) is copied into one buffer owned by the
 * request, bounded by max_head; the body into another, bounded by max_body. Both are freed
 * by hr_http_request_reset() once the request is answered, so an idle keep-alive
 * connection holds neither. The body is a refcounted hr_buf that a handler may take
 * (hr_http_request_take_body): a published body goes on to the hub and the store as is. */
#ifndef HR_HTTP_PARSER_H
#define HR_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "llhttp.h"

#define HR_HTTP_MAX_HEADERS 64

struct hr_http_header {
    uint32_t name_off, name_len; /* offsets into hr_http_request.head */
    uint32_t value_off, value_len;
};

struct hr_http_request {
    char *head; /* target, then header names and values, each NUL-terminated */
    uint32_t head_len, head_cap;
    uint32_t target_len; /* the request target starts at head[0] */
    uint32_t path_off;   /* where its path starts (after scheme and authority in absolute-form) */
    uint16_t nheaders;
    uint8_t method; /* llhttp_method_t */
    uint8_t http_major, http_minor;
    uint8_t keep_alive; /* the connection may be reused after this request */
    uint8_t upgrade;    /* the request asks for a protocol upgrade */
    uint32_t headers_cap;
    struct hr_http_header *headers; /* grown as fields come, up to HR_HTTP_MAX_HEADERS: a
                                     * connection holding a stream keeps only what it used */
    struct hr_buf *body_buf;        /* the body's bytes (NUL-terminated), NULL when none */
    char *body;                     /* body_buf->data, or NULL */
    size_t body_len, body_cap;
};

/* Results of hr_http_parse() besides HR_AGAIN (all input used, request incomplete). */
enum {
    HR_HTTP_REQUEST = 1, /* a complete request is in p->req; parsing stops after it */
    HR_HTTP_UPGRADE = 2, /* a complete request asking for an upgrade; what follows is not HTTP */
    HR_HTTP_ERROR = 3,   /* malformed or over a limit: answer p->status (400, 413, 431, 501,
                            505), then close */
};

struct hr_http_parser {
    llhttp_t llhttp;
    struct hr_http_request req;
    uint32_t max_head; /* bytes of request line + header fields */
    uint64_t max_body;
    uint64_t body_expect; /* the Content-Length of the current request, 0 when none */
    uint32_t head_seen;   /* raw head bytes of the current request so far */
    uint16_t status;      /* with HR_HTTP_ERROR */
    uint8_t in_field;     /* last head callback: 0 none, 1 url, 2 field name, 3 value */
    uint8_t started;      /* the current request has started */
    uint8_t head_done;    /* its head is complete (body may follow) */
    uint8_t complete;     /* it is complete */
    uint8_t scan;         /* line-ending check of the head (parser.c, scan_head) */
    uint16_t head_fields; /* header fields in the head; trailer fields come after them */
    const char *chunk;    /* start of the input being parsed, to count raw head bytes */
    const char *error;    /* with HR_HTTP_ERROR: a short text */
};

void hr_http_parser_init(struct hr_http_parser *p, uint32_t max_head, uint64_t max_body);
void hr_http_parser_free(struct hr_http_parser *p);

/* Parse len bytes. *consumed is how many were used. Returns HR_AGAIN, HR_HTTP_REQUEST,
 * HR_HTTP_UPGRADE or HR_HTTP_ERROR. After HR_HTTP_REQUEST, answer the request, call
 * hr_http_parser_next(), then present the unconsumed bytes again. */
int hr_http_parse(struct hr_http_parser *p, const char *data, size_t len, size_t *consumed);

/* Forget the answered request and get ready for the next one on the same connection. */
void hr_http_parser_next(struct hr_http_parser *p);

/* Whether a request has started but is not complete (for timeouts and EOF handling). */
int hr_http_parser_busy(const struct hr_http_parser *p);
/* Whether the current request's head is complete (its body may still be arriving). */
int hr_http_parser_head_done(const struct hr_http_parser *p);

void hr_http_request_reset(struct hr_http_request *r);
/* The body's buffer, handed over (refs 1, no spare capacity; the request keeps no body), or
 * NULL when there is none. */
struct hr_buf *hr_http_request_take_body(struct hr_http_request *r);

/* Access to the parsed request. */
static inline const char *hr_http_target(const struct hr_http_request *r)
{
    return r->head;
}
/* The path (with query) of the target: "/a?b" for "/a?b" and for "http://host/a?b". */
static inline const char *hr_http_path(const struct hr_http_request *r)
{
    return r->head + r->path_off;
}
/* First header with this name (case-insensitive), NUL-terminated value, or NULL. */
const char *hr_http_header_get(const struct hr_http_request *r, const char *name, size_t *len);
/* Whether a comma-separated header field list contains token (case-insensitive), searching
 * every header with this name (RFC 9110 §5.6.1). */
int hr_http_header_has_token(const struct hr_http_request *r, const char *name, const char *token);
const char *hr_http_method_str(const struct hr_http_request *r);
/* Iterate over a comma-separated list (RFC 9110 §5.6.1): the next element, trimmed of
 * whitespace, empty elements skipped. *pos advances; returns 0 at the end. */
int hr_list_next(const char **pos, const char *end, const char **tok, size_t *len);
/* Query parameter name of the target, percent-decoded ('+' is a space) into out with a NUL.
 * Returns its length, HR_ENOTFOUND when absent, or HR_ETOOBIG when longer than outsz - 1
 * (not to be mistaken for absent). */
long hr_http_query(const struct hr_http_request *r, const char *name, char *out, size_t outsz);

#endif
