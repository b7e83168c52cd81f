/* response.c - the HTTP/1.1 connection protocol: one request at a time (pipelined requests
 * wait in the connection's pending input, so answers go out in order), timeouts, responses. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/budget.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http.h"

/* What a connection needs to read and dispatch requests: the parser and its request, the
 * body's charge, an upgrade under way. A connection held by a stream that lasts as long as it
 * does (an event stream) reads no more requests: it gives this up (drop_reader). */
struct http_reader {
    struct hr_http_parser parser;
    size_t body_charged; /* the request body's buffer, charged to the memory budget */
    const struct hr_proto *switch_proto; /* set by hr_http_switch */
    void *switch_pdata;
    uint64_t t0; /* loop time the request was complete (the access log's duration) */
};

struct hr_http_conn {
    struct http_reader *rd;                        /* NULL once a stream holds the connection */
    uint8_t responding;                            /* a handler is answering the current request */
    uint8_t head_only;                             /* HEAD: send no body */
    uint8_t close_after;                           /* close once the response is out */
    uint8_t sent_continue;                         /* 100 Continue was sent for this request */
    uint8_t until_close;                           /* the response lasts until the connection */
    void (*on_drain)(struct hr_conn *c, void *ud); /* a streaming response's writer */
    void *drain_ud;
    void (*on_abort)(struct hr_conn *c, void *ud); /* the holder of a pending response */
    void *abort_ud;
    void (*on_shed)(struct hr_conn *c, void *ud); /* a stream's slow-consumer policy */
    void *shed_ud;
    struct hr_buf *head; /* hr_http_begin's head, sent with the first body bytes */
};

/* A connection's state as accepted: one block, the reader after the connection's part. */
struct http_block {
    struct hr_http_conn h;
    struct http_reader rd;
};

/* The request being read or answered (NULL once a stream dropped the reader). */
static struct hr_http_request *req_of(struct hr_http_conn *h)
{
    return h->rd ? &h->rd->parser.req : NULL;
}

/* The reason phrases of the IANA status code registry (RFC 9110 §15, RFC 6585 for 428, 429,
 * 431, 511, and the WebDAV and other codes it lists), so that any status a handler passes
 * gets its phrase. llhttp's llhttp_status_name() gives enum names ("MOVED_PERMANENTLY") and
 * aborts on codes it does not know, so it cannot serve here. */
const char *hr_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 510: return "Not Extended";
    case 511: return "Network Authentication Required";
    /* unregistered: RFC 9112 §4 allows an empty reason phrase (the space before it stays) */
    default: return "";
    }
}

/* RFC 9110 §6.6.1 date, formatted at most once a second. */
static const char *http_date(void)
{
    static _Thread_local char buf[40];
    static _Thread_local time_t last;
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return buf;
}

static struct hr_http_conn *H(struct hr_conn *c)
{
    return c->proto && strcmp(c->proto->name, "http") == 0 ? c->pdata : NULL;
}

struct hr_http_request *hr_http_current(struct hr_conn *c)
{
    struct hr_http_conn *h = H(c);
    return h && h->responding ? req_of(h) : NULL;
}

/* The access log's line for the answer being started (hr_log_request; off by default). */
static void log_answer(struct hr_conn *c, struct hr_http_conn *h, int status, uint64_t length)
{
    if (!hr_log_access)
        return;
    struct hr_http_request *req = req_of(h);
    int parsed = req && req->target_len > 0; /* else refused before its request line was read */
    char addr[64];
    if (!hr_conn_peer_addr(c, addr, sizeof addr))
        snprintf(addr, sizeof addr, "-");
    struct hr_log_request r = {
        .remote = addr,
        .method = parsed ? llhttp_method_name((llhttp_method_t)req->method) : "-",
        .target = parsed ? req->head : "-",
        .target_len = parsed ? req->target_len : 1,
        .http_minor = req ? req->http_minor : 1,
        .status = status,
        .length = length == HR_HTTP_UNTIL_CLOSE ? -1 : (long long)length,
        .ms = h->rd && h->rd->t0 ? uv_now(c->srv->loop) - h->rd->t0 : 0,
    };
    hr_log_request(&r);
}

static struct hr_buf *make_head(struct hr_conn *c, struct hr_http_conn *h, int status,
                                const char *ctype, const char *extra, uint64_t length,
                                size_t body_room)
{
    struct hr_http_request *req = req_of(h);
    log_answer(c, h, status, length);
    if (!req || !req->keep_alive || c->srv->stopping)
        h->close_after = 1;
    struct hr_buf *b = hr_buf_new(256 + (extra ? strlen(extra) : 0) + body_room);
    if (!b)
        return NULL;
    char clen[48] = "";
    /* a 304 has no body and must not claim a length other than the 200's (RFC 9110 §8.6);
     * a stream without a known end (an event stream) ends when the connection does */
    if (length == HR_HTTP_UNTIL_CLOSE)
        h->close_after = 1;
    else if (status != 304 && status != 204)
        snprintf(clen, sizeof clen, "Content-Length: %" PRIu64 "\r\n", length);
    const char *conn_hdr = h->close_after         ? "Connection: close\r\n"
                           : req->http_minor == 0 ? "Connection: keep-alive\r\n"
                                                  : "";
    int rc =
        hr_buf_printf(&b, "HTTP/1.1 %d %s\r\nServer: herald\r\nDate: %s\r\n%s%s%s%s%s%s\r\n",
                      status, hr_http_reason(status), http_date(), ctype ? "Content-Type: " : "",
                      ctype ? ctype : "", ctype ? "\r\n" : "", clen, conn_hdr, extra ? extra : "");
    if (rc) {
        hr_buf_unref(b);
        return NULL;
    }
    return b;
}

int hr_http_begin(struct hr_conn *c, int status, const char *ctype, const char *extra,
                  uint64_t content_length)
{
    struct hr_http_conn *h = H(c);
    if (!h || !h->responding)
        return HR_EINVAL;
    h->head_only = req_of(h) && req_of(h)->method == HTTP_HEAD;
    if (content_length == HR_HTTP_UNTIL_CLOSE)
        h->until_close = 1;
    struct hr_buf *b = make_head(c, h, status, ctype, extra, content_length, 0);
    if (!b) {
        hr_conn_close(c);
        return HR_ENOMEM;
    }
    /* held until the first body bytes (or the finish), so that a short answer leaves in one
     * write and one TCP segment */
    hr_buf_unref(h->head);
    h->head = b;
    return hr_conn_closing(c) ? HR_ECLOSED : 0;
}

static int flush_head(struct hr_conn *c, struct hr_http_conn *h)
{
    if (!h->head)
        return 0;
    struct hr_buf *b = h->head;
    h->head = NULL;
    int rc = hr_conn_write(c, b);
    hr_buf_unref(b);
    return rc;
}

int hr_http_sendv(struct hr_conn *c, const struct hr_slice *s, unsigned n)
{
    struct hr_http_conn *h = H(c);
    if (!h || !h->responding)
        return HR_EINVAL;
    if (h->head_only)
        return flush_head(c, h);
    if (h->head && n < 8) {
        struct hr_slice all[8];
        all[0] = (struct hr_slice){h->head, 0, (uint32_t)h->head->len};
        memcpy(all + 1, s, n * sizeof(*s));
        int rc = hr_conn_writev(c, all, n + 1);
        hr_buf_unref(h->head);
        h->head = NULL;
        return rc;
    }
    int rc = flush_head(c, h);
    return rc < 0 ? rc : hr_conn_writev(c, s, n);
}

int hr_http_send(struct hr_conn *c, struct hr_buf *b, uint32_t off, uint32_t len)
{
    struct hr_slice s = {b, off, len};
    return hr_http_sendv(c, &s, 1);
}

void hr_http_respond(struct hr_conn *c, int status, const char *ctype, const char *extra,
                     const void *body, size_t len)
{
    struct hr_http_conn *h = H(c);
    if (!h || !h->responding)
        return;
    h->head_only = req_of(h) && req_of(h)->method == HTTP_HEAD;
    int bodyless = h->head_only || status == 304 || status == 204;
    struct hr_buf *b = make_head(c, h, status, ctype, extra, len, bodyless ? 0 : len);
    if (!b) {
        hr_conn_close(c);
        return;
    }
    if (!bodyless && len)
        hr_buf_append(&b, body, len);
    hr_conn_write(c, b);
    hr_buf_unref(b);
    hr_http_finish(c);
}

void hr_http_error(struct hr_conn *c, int status, const char *extra, const char *message)
{
    /* every error answer is a refusal, by its reason (a 503 from /readyz is an answer, not a
     * refusal: it goes out with hr_http_respond) */
    hr_metrics_refused(status);
    const char *reason = hr_http_reason(status);
    json_t *j = json_pack("{s:s}", "error", message ? message : reason[0] ? reason : "error");
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    hr_http_respond(c, status, "application/json", extra, s ? s : "{}", s ? strlen(s) : 2);
    free(s);
}

/* Keep the budget's HR_MEM_BODY charge equal to the request body buffer's size. */
static void body_sync(struct hr_http_conn *h)
{
    struct http_reader *rd = h->rd;
    if (!rd)
        return;
    size_t cap = rd->parser.req.body ? rd->parser.req.body_cap : 0;
    if (cap > rd->body_charged)
        hr_budget_charge(HR_MEM_BODY, cap - rd->body_charged);
    else
        hr_budget_release(HR_MEM_BODY, rd->body_charged - cap);
    rd->body_charged = cap;
}

struct hr_buf *hr_http_body_take(struct hr_conn *c)
{
    struct hr_http_conn *h = H(c);
    if (!h || !h->rd)
        return NULL;
    struct hr_buf *b = hr_http_request_take_body(&h->rd->parser.req);
    body_sync(h);
    return b;
}

static void reader_free(struct hr_http_conn *h)
{
    if (!h->rd)
        return;
    hr_http_parser_free(&h->rd->parser);
    body_sync(h);
}

static void http_free_state(struct hr_http_conn *h)
{
    hr_buf_unref(h->head);
    reader_free(h);
    free(h); /* the block, reader included */
}

/* A response that lasts until the connection closes (an event stream): no further request
 * will be read, so the parser and the request go, and the connection keeps a smaller block.
 * Only between requests' callbacks (h moves): at the end of http_read. */
static void drop_reader(struct hr_conn *c, struct hr_http_conn *h)
{
    struct hr_http_conn *small = malloc(sizeof(*small));
    if (!small)
        return; /* it keeps the reader, as before */
    reader_free(h);
    *small = *h;
    small->rd = NULL;
    free(h);
    c->pdata = small;
}

void hr_http_finish(struct hr_conn *c)
{
    struct hr_http_conn *h = H(c);
    if (!h || !h->responding)
        return;
    flush_head(c, h);
    h->responding = 0;
    hr_conn_poll_release(c); /* a long-poll it held is answered */
    h->on_drain = NULL;
    h->on_abort = NULL;
    h->on_shed = NULL;
    if (h->close_after) {
        hr_conn_end(c, c->srv->limits.close_timeout_ms);
        return;
    }
    if (h->rd)
        hr_http_parser_next(&h->rd->parser);
    body_sync(h);
    h->sent_continue = 0;
    hr_conn_set_timeout(c, c->srv->limits.idle_timeout_ms);
    if (!(c->flags & HR_CONN_IN_READ))
        hr_conn_resume(c);
}

int hr_http_switch(struct hr_conn *c, const char *head, size_t len, const struct hr_proto *proto,
                   void *pdata)
{
    struct hr_http_conn *h = H(c);
    if (!h || !h->responding || !h->rd)
        return HR_EINVAL;
    struct hr_buf *b = hr_buf_from(head, len);
    if (!b)
        return HR_ENOMEM;
    log_answer(c, h, 101, HR_HTTP_UNTIL_CLOSE);
    int rc = hr_conn_write(c, b);
    hr_buf_unref(b);
    if (rc)
        return rc;
    h->rd->switch_proto = proto;
    h->rd->switch_pdata = pdata;
    return 0;
}

/* Answer a request the parser rejected, then close. */
static void reject(struct hr_conn *c, struct hr_http_conn *h, int status, const char *why)
{
    h->responding = 1;
    h->close_after = 1;
    h->rd->t0 = uv_now(c->srv->loop);
    h->rd->parser.req.keep_alive = 0;
    hr_http_error(c, status, NULL, why);
}

static void dispatch(struct hr_conn *c, struct hr_http_conn *h)
{
    struct hr_http_request *req = &h->rd->parser.req;
    const struct hr_router *router = c->srv->app;
    const char *path = hr_http_path(req);
    size_t plen = strcspn(path, "?#");
    h->responding = 1;
    h->rd->t0 = uv_now(c->srv->loop);
    uint64_t allowed;
    const struct hr_route *rt = hr_router_match(router, req->method, path, plen, &allowed);
    if (rt) {
        rt->fn(c, req, rt->ud);
        return;
    }
    if (!allowed) {
        hr_http_error(c, 404, NULL, "not found");
        return;
    }
    char allow[256] = "Allow: ";
    size_t n = strlen(allow);
    for (unsigned m = 0; m < 64 && n < sizeof allow - 32; m++) {
        if (allowed & HR_M(m))
            n += (size_t)snprintf(allow + n, sizeof allow - n, "%s%s", n > 7 ? ", " : "",
                                  llhttp_method_name((llhttp_method_t)m));
    }
    snprintf(allow + n, sizeof allow - n, "\r\n");
    hr_http_error(c, 405, allow, "method not allowed");
}

static ssize_t http_read(struct hr_conn *c, char *data, size_t len)
{
    struct hr_http_conn *h = c->pdata;
    if (h->responding)
        return 0; /* the next request waits; reading goes on so a client that leaves is seen */
    struct http_reader *rd = h->rd;
    if (!hr_http_parser_busy(&rd->parser)) {
        const struct hr_router *router = c->srv->app;
        int r = router->steer ? router->steer(c, data, len, router->steer_ud) : 0;
        if (r > 0)
            return HR_ECLOSED;
        /* the head's time runs from its first bytes, not from each of them */
        if (r != HR_AGAIN || !c->pending_len)
            hr_conn_set_timeout(c, c->srv->limits.header_timeout_ms);
        if (r == HR_AGAIN)
            return 0;
    }
    size_t used;
    int r = hr_http_parse(&rd->parser, data, len, &used);
    body_sync(h);
    if (r == HR_AGAIN) {
        if (hr_http_parser_head_done(&rd->parser)) {
            if (!h->sent_continue) {
                h->sent_continue = 1;
                hr_conn_set_timeout(c, c->srv->limits.body_timeout_ms);
                if (hr_http_header_has_token(&rd->parser.req, "Expect", "100-continue")) {
                    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                    struct hr_buf *b = hr_buf_from(cont, sizeof cont - 1);
                    if (b) {
                        hr_conn_write(c, b);
                        hr_buf_unref(b);
                    }
                }
            }
        }
        return (ssize_t)used;
    }
    if (r == HR_HTTP_ERROR) {
        reject(c, h, rd->parser.status, rd->parser.error);
        return HR_ECLOSED;
    }
    /* a complete request: no timeout while it is answered */
    hr_conn_set_timeout(c, 0);
    dispatch(c, h);
    if (rd->switch_proto) {
        c->proto = rd->switch_proto;
        c->pdata = rd->switch_pdata;
        http_free_state(h);
        return (ssize_t)used;
    }
    if (hr_conn_closing(c))
        return HR_ECLOSED;
    if (h->responding && h->until_close)
        drop_reader(c, h);
    return (ssize_t)used;
}

void hr_http_on_drain(struct hr_conn *c, void (*fn)(struct hr_conn *c, void *ud), void *ud)
{
    struct hr_http_conn *h = H(c);
    if (h) {
        h->on_drain = fn;
        h->drain_ud = ud;
    }
}

void hr_http_on_abort(struct hr_conn *c, void (*fn)(struct hr_conn *c, void *ud), void *ud)
{
    struct hr_http_conn *h = H(c);
    if (h) {
        h->on_abort = fn;
        h->abort_ud = ud;
    }
}

void hr_http_on_shed(struct hr_conn *c, void (*fn)(struct hr_conn *c, void *ud), void *ud)
{
    struct hr_http_conn *h = H(c);
    if (h) {
        h->on_shed = fn;
        h->shed_ud = ud;
    }
}

/* Over the memory budget with one of the largest queues: a stream applies its policy; any
 * other answer (a file, a poll's batch) is dropped. */
static void http_shed(struct hr_conn *c)
{
    struct hr_http_conn *h = c->pdata;
    if (h->responding && h->on_shed) {
        h->on_shed(c, h->shed_ud);
        return;
    }
    hr_warn("http: %zu bytes queued while over the memory budget; connection dropped",
            hr_conn_queued(c));
    hr_conn_close(c);
}

static void http_drain(struct hr_conn *c)
{
    struct hr_http_conn *h = c->pdata;
    if (h->on_drain)
        h->on_drain(c, h->drain_ud);
}

static void http_eof(struct hr_conn *c)
{
    struct hr_http_conn *h = c->pdata;
    /* The client went away (or half-closed) before its answer: whoever holds the request
     * (a long-poll) is told, and the connection closes. */
    if (h->responding && h->on_abort) {
        void (*fn)(struct hr_conn *, void *) = h->on_abort;
        h->on_abort = NULL;
        fn(c, h->abort_ud);
    }
    hr_conn_close(c);
}

static void http_timeout(struct hr_conn *c)
{
    struct hr_http_conn *h = c->pdata;
    if (h->responding && h->on_abort) {
        void (*fn)(struct hr_conn *, void *) = h->on_abort;
        h->on_abort = NULL;
        fn(c, h->abort_ud);
    }
    if (!h->responding && h->rd && hr_http_parser_busy(&h->rd->parser)) {
        reject(c, h, 408, "request timeout");
        return;
    }
    hr_conn_close(c);
}

static void http_shutdown(struct hr_conn *c)
{
    struct hr_http_conn *h = c->pdata;
    if (h->responding && !h->on_abort)
        h->close_after = 1; /* finish the answer in flight */
    else if (!h->responding && h->rd && hr_http_parser_head_done(&h->rd->parser) &&
             req_of(h)->method == HTTP_POST)
        /* a POST whose body is on its way (a publish): read, then answered (a refusal, since
         * the server is stopping: the client knows to retry) rather than cut unanswered */
        h->close_after = 1;
    else if (!h->responding && hr_conn_queued(c))
        /* an answer just finished (a long-poll released at shutdown) is still queued: it goes
         * out, then the FIN */
        hr_conn_end(c, c->srv->limits.close_timeout_ms);
    else
        /* idle: nothing to wait for (a pooled client may never read the FIN); or a held
         * request, whose holder is told */
        hr_conn_close(c);
}

static void http_free(struct hr_conn *c)
{
    struct hr_http_conn *h = c->pdata;
    if (h->responding && h->on_abort) /* closed for any other reason: tell the holder */
        h->on_abort(c, h->abort_ud);
    http_free_state(c->pdata);
    c->pdata = NULL;
}

static const struct hr_proto http_proto = {
    .name = "http",
    .on_read = http_read,
    .on_eof = http_eof,
    .on_timeout = http_timeout,
    .on_drain = http_drain,
    .on_shutdown = http_shutdown,
    .on_free = http_free,
    .on_shed = http_shed,
};

void hr_http_accept(struct hr_conn *c)
{
    struct http_block *b = calloc(1, sizeof(*b));
    if (!b) {
        hr_conn_close(c);
        return;
    }
    hr_http_parser_init(&b->rd.parser, c->srv->limits.max_head, c->srv->limits.max_body);
    b->h.rd = &b->rd;
    c->proto = &http_proto;
    c->pdata = &b->h;
    /* a new connection must send its first request within the header timeout */
    hr_conn_set_timeout(c, c->srv->limits.header_timeout_ms);
}
