/* http.h - the HTTP/1.1 connection protocol: routes requests to handlers one at a time (so
 * pipelined requests are answered in order), writes responses, enforces timeouts. */
#ifndef HR_HTTP_HTTP_H
#define HR_HTTP_HTTP_H

#include <stdint.h>

#include "net/conn.h"
#include "net/server.h"
#include "parser.h"

/* A handler answers the request with hr_http_respond / hr_http_error, or starts a response it
 * completes later (hr_http_begin ... hr_http_finish), or upgrades the connection. The request
 * stays valid until the response is finished. */
typedef void (*hr_http_handler)(struct hr_conn *c, struct hr_http_request *req, void *ud);

#define HR_M(m) (1ull << (m)) /* method bit, e.g. HR_M(HTTP_GET) */
#define HR_ROUTES_MAX 32

struct hr_route {
    const char *path; /* exact path, or a prefix when prefix is set */
    uint64_t methods; /* HR_M bits; GET implies HEAD */
    uint8_t prefix;
    hr_http_handler fn;
    void *ud;
};

struct hr_router {
    struct hr_route routes[HR_ROUTES_MAX];
    unsigned n;
    struct hr_route fallback; /* fn NULL: 404 */
    /* Optional, asked at each request's start with its first bytes (the request line and
     * what follows, len of them): returns 0 to serve it here, 1 when it took the connection
     * away (hr_conn_detach: another server serves it), HR_AGAIN for more bytes first. */
    int (*steer)(struct hr_conn *c, const char *data, size_t len, void *ud);
    void *steer_ud;
};

void hr_router_init(struct hr_router *r);
int hr_router_add(struct hr_router *r, uint64_t methods, const char *path, int prefix,
                  hr_http_handler fn, void *ud);
void hr_router_fallback(struct hr_router *r, uint64_t methods, hr_http_handler fn, void *ud);
/* The route for method + path, or NULL with *allowed the methods that path accepts (0 when
 * no route has the path). */
const struct hr_route *hr_router_match(const struct hr_router *r, unsigned method, const char *path,
                                       size_t path_len, uint64_t *allowed);

/* The server's on_accept: new connections speak HTTP and route through srv->app, which must
 * point to a struct hr_router. */
void hr_http_accept(struct hr_conn *c);

/* Responses. extra is NULL or complete header lines ("Name: value\r\n"). */
void hr_http_respond(struct hr_conn *c, int status, const char *ctype, const char *extra,
                     const void *body, size_t len);
/* An error answer with a JSON body {"error": message}. */
void hr_http_error(struct hr_conn *c, int status, const char *extra, const char *message);
/* The current request's body, handed over (the caller unrefs it): a handler that keeps it (a
 * publish) references the bytes instead of copying them, and they stop counting as a body
 * being received (HR_MEM_BODY). NULL when the request has no body. */
struct hr_buf *hr_http_body_take(struct hr_conn *c);
/* A response sent in parts: the head now, then hr_http_send, then hr_http_finish. For HEAD
 * requests the body parts are dropped. */
int hr_http_begin(struct hr_conn *c, int status, const char *ctype, const char *extra,
                  uint64_t content_length);
/* content_length for a response that lasts until the connection closes (an event stream). */
#define HR_HTTP_UNTIL_CLOSE UINT64_MAX
int hr_http_send(struct hr_conn *c, struct hr_buf *b, uint32_t off, uint32_t len);
void hr_http_finish(struct hr_conn *c);
/* A streaming response asks to be called when the output queue has drained below half the
 * max_queued limit (after a write found it full: hr_conn_full()). */
void hr_http_on_drain(struct hr_conn *c, void (*fn)(struct hr_conn *c, void *ud), void *ud);
/* A streaming response (an event stream) applies its slow-consumer policy when the memory
 * budget sheds its connection (struct hr_proto on_shed); without one the connection closes. */
void hr_http_on_shed(struct hr_conn *c, void (*fn)(struct hr_conn *c, void *ud), void *ud);
/* Body parts as slices of shared buffers (up to 8 at once). */
int hr_http_sendv(struct hr_conn *c, const struct hr_slice *s, unsigned n);
/* A handler that holds a request open (a long-poll) is told when the client goes away or the
 * connection times out or the server stops; the connection then closes. */
void hr_http_on_abort(struct hr_conn *c, void (*fn)(struct hr_conn *c, void *ud), void *ud);
/* For an upgrade: write the raw 101 head and hand the connection to another protocol; the
 * HTTP state is freed once the current handler returns. */
int hr_http_switch(struct hr_conn *c, const char *head, size_t len, const struct hr_proto *proto,
                   void *pdata);

const char *hr_http_reason(int status);
/* The request being answered on c (NULL if none). */
struct hr_http_request *hr_http_current(struct hr_conn *c);

#endif
