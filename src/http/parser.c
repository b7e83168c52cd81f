/* parser.c - HTTP/1.1 request parsing on llhttp (RFC 9112) with head and body limits. */
#include "parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/array.h"
#include "core/error.h"
#include "core/text.h"

#define P(lp) ((struct hr_http_parser *)((char *)(lp)-offsetof(struct hr_http_parser, llhttp)))

/* Bytes that may follow the last field of a head: " HTTP/1.1\r\n" and the empty line. */
#define HEAD_TAIL 13

enum { F_NONE, F_URL, F_NAME, F_NAME_DONE, F_VALUE };

/* States of the head's line check (scan_head): before the request line, inside a line,
 * after its CR, at the start of a field line, after the empty line's CR, done. */
enum { S_FIRST, S_FIRST_CR, S_LINE, S_CR, S_BOL, S_END_CR, S_DONE };

static int fail(struct hr_http_parser *p, int status, const char *why)
{
    p->status = (uint16_t)status;
    p->error = why;
    llhttp_set_error_reason(&p->llhttp, why);
    return HPE_USER;
}

int hr_list_next(const char **pos, const char *end, const char **tok, size_t *len)
{
    const char *v = *pos;
    for (;;) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        if (v >= end) {
            *pos = v;
            return 0;
        }
        const char *s = v;
        while (v < end && *v != ',')
            v++;
        const char *e = v;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            *tok = s;
            *len = (size_t)(e - s);
            *pos = v;
            return 1;
        }
    }
}

/* Make room for n more head bytes plus a NUL. */
static int head_reserve(struct hr_http_parser *p, size_t n)
{
    struct hr_http_request *r = &p->req;
    size_t need = (size_t)r->head_len + n + 1;
    if (need <= r->head_cap)
        return 0;
    size_t cap = r->head_cap ? r->head_cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > (size_t)p->max_head + 256)
        cap = (size_t)p->max_head + 256;
    if (cap < need)
        return fail(p, 431, "request head too large");
    char *h = realloc(r->head, cap);
    if (!h)
        return fail(p, 503, "out of memory");
    r->head = h;
    r->head_cap = (uint32_t)cap;
    return 0;
}

static int head_append(struct hr_http_parser *p, const char *at, size_t len)
{
    struct hr_http_request *r = &p->req;
    if (p->head_done) {
        /* trailer fields: the read also holds body bytes, so count the fields' own bytes */
        p->head_seen += (uint32_t)(len > p->max_head ? p->max_head + 1 : len);
        if (p->head_seen > p->max_head)
            return fail(p, 431, "trailer section too large");
    } else if (p->chunk && (size_t)(at + len - p->chunk) + p->head_seen > p->max_head) {
        /* raw head bytes so far: earlier chunks plus this chunk up to the end of this span */
        return fail(p, 431, "request head too large");
    }
    int rc = head_reserve(p, len);
    if (rc)
        return rc;
    memcpy(r->head + r->head_len, at, len);
    r->head_len += (uint32_t)len;
    r->head[r->head_len] = '\0';
    return 0;
}

/* A NUL after each field so that the target and values can be used as C strings. */
static int end_field(struct hr_http_parser *p)
{
    struct hr_http_request *r = &p->req;
    int rc = head_reserve(p, 1);
    if (rc)
        return rc;
    r->head[r->head_len++] = '\0';
    r->head[r->head_len] = '\0';
    p->in_field = F_NONE;
    return 0;
}

static int on_message_begin(llhttp_t *lp)
{
    struct hr_http_parser *p = P(lp);
    hr_http_request_reset(&p->req);
    p->started = 1;
    return 0;
}

static int on_url(llhttp_t *lp, const char *at, size_t len)
{
    struct hr_http_parser *p = P(lp);
    p->in_field = F_URL;
    if (!p->req.target_len) /* known from here on, for a refusal's access log too */
        p->req.method = llhttp_get_method(lp);
    p->req.target_len += (uint32_t)len;
    return head_append(p, at, len);
}

static int on_header_field(llhttp_t *lp, const char *at, size_t len)
{
    struct hr_http_parser *p = P(lp);
    struct hr_http_request *r = &p->req;
    if (p->in_field != F_NAME) {
        if (r->nheaders >= HR_HTTP_MAX_HEADERS)
            return fail(p, 431, "too many header fields");
        struct hr_http_header *h = HR_ARRAY_PUSH(r->headers, r->nheaders, r->headers_cap, 16);
        if (!h)
            return fail(p, 431, "out of memory for header fields");
        *h = (struct hr_http_header){.name_off = r->head_len};
        p->in_field = F_NAME;
    }
    r->headers[r->nheaders - 1].name_len += (uint32_t)len;
    return head_append(p, at, len);
}

static int on_header_value(llhttp_t *lp, const char *at, size_t len)
{
    struct hr_http_parser *p = P(lp);
    struct hr_http_request *r = &p->req;
    if (p->in_field != F_VALUE && p->in_field != F_NAME_DONE)
        return fail(p, 400, "empty header name");
    struct hr_http_header *h = &r->headers[r->nheaders - 1];
    if (p->in_field != F_VALUE) {
        h->value_off = r->head_len;
        p->in_field = F_VALUE;
    }
    h->value_len += (uint32_t)len;
    return head_append(p, at, len);
}

static int on_url_complete(llhttp_t *lp)
{
    return end_field(P(lp));
}

static int on_version_complete(llhttp_t *lp)
{
    struct hr_http_request *r = &P(lp)->req;
    r->http_major = llhttp_get_http_major(lp);
    r->http_minor = llhttp_get_http_minor(lp);
    return 0;
}

/* RFC 9110 §5.1: a field name is a token. llhttp's loose mode lets spaces and empty names
 * through ("Name : value" is a known smuggling vector); checked here whatever the mode. */
static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int on_name_complete(llhttp_t *lp)
{
    struct hr_http_parser *p = P(lp);
    struct hr_http_request *r = &p->req;
    if (p->in_field != F_NAME || r->nheaders == 0)
        return fail(p, 400, "empty header name");
    const struct hr_http_header *h = &r->headers[r->nheaders - 1];
    if (h->name_len == 0)
        return fail(p, 400, "empty header name");
    for (uint32_t i = 0; i < h->name_len; i++)
        if (!is_tchar((unsigned char)r->head[h->name_off + i]))
            return fail(p, 400, "invalid header name");
    int rc = end_field(p);
    p->in_field = F_NAME_DONE;
    return rc;
}

static int on_value_complete(llhttp_t *lp)
{
    struct hr_http_parser *p = P(lp);
    struct hr_http_request *r = &p->req;
    if (p->in_field != F_VALUE && p->in_field != F_NAME_DONE)
        return fail(p, 400, "empty header name");
    struct hr_http_header *h = &r->headers[r->nheaders - 1];
    if (p->in_field != F_VALUE) /* empty value */
        h->value_off = r->head_len;
    /* RFC 9110 §5.5: trailing whitespace is not part of the value */
    while (h->value_len && (r->head[h->value_off + h->value_len - 1] == ' ' ||
                            r->head[h->value_off + h->value_len - 1] == '\t'))
        h->value_len--;
    int rc = end_field(p);
    if (!rc)
        r->head[h->value_off + h->value_len] = '\0';
    return rc;
}

/* Whether every Transfer-Encoding element is "chunked" (llhttp refuses it twice). */
static int te_only_chunked(const struct hr_http_request *r)
{
    for (unsigned i = 0; i < r->nheaders; i++) {
        const struct hr_http_header *h = &r->headers[i];
        if (h->name_len != 17 || strncasecmp(r->head + h->name_off, "Transfer-Encoding", 17) != 0)
            continue;
        const char *v = r->head + h->value_off, *end = v + h->value_len, *tok;
        size_t n;
        while (hr_list_next(&v, end, &tok, &n))
            if (n != 7 || strncasecmp(tok, "chunked", 7) != 0)
                return 0;
    }
    return 1;
}

static int on_headers_complete(llhttp_t *lp)
{
    struct hr_http_parser *p = P(lp);
    struct hr_http_request *r = &p->req;
    if (r->target_len == 0 || !r->head)
        return fail(p, 400, "missing request target");
    /* HTTP/1.0 and 1.1 only: not 0.9, not "HTTP/2.0" in a request line */
    if (llhttp_get_http_major(lp) != 1)
        return fail(p, 505, "HTTP version not supported");
    if (r->target_len == 1 && r->head[0] == '*' && llhttp_get_method(lp) == HTTP_OPTIONS) {
        /* asterisk-form (RFC 9112 §3.2.4): the server as a whole; its path is "*" */
    } else if (r->head[0] != '/') {
        /* absolute-form (RFC 9112 §3.2.2) must be accepted: route on its path. The
         * authority ends at '/', '?' or '#' (RFC 3986 §3.2) and its host is not empty
         * (RFC 9110 §4.2.1). */
        const char *t = r->head;
        size_t skip = strncasecmp(t, "http://", 7) == 0    ? 7
                      : strncasecmp(t, "https://", 8) == 0 ? 8
                                                           : 0;
        size_t alen = skip ? strcspn(t + skip, "/?#") : 0;
        if (!skip || alen == 0 || t[skip + alen] != '/')
            return fail(p, 400, "request target must be a path or an absolute URL");
        r->path_off = (uint32_t)(skip + alen);
    }
    /* RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty */
    if ((lp->flags & F_TRANSFER_ENCODING) && llhttp_get_http_minor(lp) == 0)
        return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
    /* RFC 9112 §6.1: a transfer coding we do not implement (only chunked) is 501 */
    if ((lp->flags & F_TRANSFER_ENCODING) && !te_only_chunked(r))
        return fail(p, 501, "transfer coding not implemented");
    r->method = llhttp_get_method(lp);
    r->http_major = llhttp_get_http_major(lp);
    r->http_minor = llhttp_get_http_minor(lp);
    r->keep_alive = (uint8_t)llhttp_should_keep_alive(lp);
    r->upgrade = llhttp_get_upgrade(lp);
    p->head_done = 1;
    p->head_seen = 0;             /* from here on, trailer bytes */
    p->head_fields = r->nheaders; /* trailer fields after these are dropped */
    if ((lp->flags & F_CONTENT_LENGTH) && lp->content_length > p->max_body) {
        fail(p, 413, "request body too large");
        return -1;
    }
    p->body_expect = (lp->flags & F_CONTENT_LENGTH) ? lp->content_length : 0;
    return 0;
}

static int on_body(llhttp_t *lp, const char *at, size_t len)
{
    struct hr_http_parser *p = P(lp);
    struct hr_http_request *r = &p->req;
    if (r->body_len + len > p->max_body)
        return fail(p, 413, "request body too large");
    size_t need = r->body_len + len + 1;
    if (need > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < need)
            cap *= 2;
        /* the buffer may become a message kept in the history: no more than the declared
         * length, but grown only as bytes come (a claimed length alone reserves nothing) */
        if (p->body_expect && need <= p->body_expect + 1 && cap > p->body_expect + 1)
            cap = p->body_expect + 1;
        if (hr_buf_reserve(&r->body_buf, cap) < 0)
            return fail(p, 503, "out of memory");
        r->body = r->body_buf->data;
        r->body_cap = r->body_buf->cap;
    }
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    r->body_buf->len = (uint32_t)r->body_len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int on_message_complete(llhttp_t *lp)
{
    struct hr_http_parser *p = P(lp);
    p->complete = 1;
    /* RFC 9110 §6.5.1: trailer fields are not merged into the header section */
    if (p->req.nheaders > p->head_fields)
        p->req.nheaders = p->head_fields;
    /* An upgrade pauses by itself (HPE_PAUSED_UPGRADE); anything else pauses here so the
     * request is answered before the next pipelined one is parsed. */
    return llhttp_get_upgrade(lp) ? 0 : HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_url_complete = on_url_complete,
    .on_version_complete = on_version_complete,
    .on_header_field_complete = on_name_complete,
    .on_header_value_complete = on_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void hr_http_parser_init(struct hr_http_parser *p, uint32_t max_head, uint64_t max_body)
{
    memset(p, 0, sizeof(*p));
    llhttp_init(&p->llhttp, HTTP_REQUEST, &settings);
    p->max_head = max_head;
    p->max_body = max_body;
}

void hr_http_request_reset(struct hr_http_request *r)
{
    free(r->head);
    hr_buf_unref(r->body_buf);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

struct hr_buf *hr_http_request_take_body(struct hr_http_request *r)
{
    struct hr_buf *b = r->body_buf;
    r->body_buf = NULL;
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    /* a chunked body grew by doubling: what is kept costs what it holds (and its NUL) */
    if (b)
        hr_buf_shrink(&b, (size_t)b->len + 1);
    return b;
}

void hr_http_parser_free(struct hr_http_parser *p)
{
    hr_http_request_reset(&p->req);
}

int hr_http_parser_busy(const struct hr_http_parser *p)
{
    return p->started && !p->complete;
}

int hr_http_parser_head_done(const struct hr_http_parser *p)
{
    return p->head_done;
}

void hr_http_parser_next(struct hr_http_parser *p)
{
    llhttp_errno_t e = llhttp_get_errno(&p->llhttp);
    if (e == HPE_PAUSED)
        llhttp_resume(&p->llhttp);
    else if (e == HPE_PAUSED_UPGRADE)
        llhttp_resume_after_upgrade(&p->llhttp);
    hr_http_request_reset(&p->req);
    p->started = p->complete = p->head_done = 0;
    p->head_seen = 0;
    p->body_expect = 0;
    p->in_field = F_NONE;
    p->scan = S_FIRST;
}

/* RFC 9112 §2.2 and §5.2: every line of the head ends in CRLF, and a line starting with
 * whitespace (obs-fold) is refused. llhttp 8, even strict, takes a bare LF after the request
 * line or as the empty line, and folds continuation lines into the value: a proxy in front
 * that reads them otherwise sees other requests than herald does (smuggling). Returns 0 or
 * the failure (sets the 400). Stops at the end of the head; empty lines before the request
 * line are allowed (§2.2). */
static int scan_head(struct hr_http_parser *p, const char *data, size_t len)
{
    uint8_t st = p->scan;
    for (size_t i = 0; i < len && st != S_DONE; i++) {
        char ch = data[i];
        switch (st) {
        case S_FIRST:
        case S_LINE:
        case S_BOL:
            if (ch == '\n')
                return fail(p, 400, "bare LF in the request head");
            if (ch == '\r')
                st = st == S_FIRST ? S_FIRST_CR : st == S_BOL ? S_END_CR : S_CR;
            else if (st == S_BOL && (ch == ' ' || ch == '\t'))
                return fail(p, 400, "obsolete line folding in a header field");
            else
                st = S_LINE;
            break;
        case S_FIRST_CR:
        case S_CR:
        case S_END_CR:
            if (ch != '\n')
                return fail(p, 400, "CR without LF in the request head");
            st = st == S_FIRST_CR ? S_FIRST : st == S_CR ? S_BOL : S_DONE;
            break;
        }
    }
    p->scan = st;
    return 0;
}

int hr_http_parse(struct hr_http_parser *p, const char *data, size_t len, size_t *consumed)
{
    *consumed = 0;
    if (p->status)
        return HR_HTTP_ERROR;
    if (p->scan != S_DONE && scan_head(p, data, len))
        return HR_HTTP_ERROR;
    p->chunk = data;
    llhttp_errno_t e = llhttp_execute(&p->llhttp, data, len);
    p->chunk = NULL;
    switch (e) {
    case HPE_OK:
        *consumed = len;
        if (p->started && !p->head_done) {
            /* A read that holds the whole head is checked at the end of each field (the
             * target, a name, a value); at most " HTTP/1.1\r\n\r\n" follows the last one.
             * Allowing that much here keeps the outcome the same wherever reads end. */
            uint32_t room = p->max_head + HEAD_TAIL + 1;
            p->head_seen += (uint32_t)(len > room ? room : len);
            if (p->head_seen > p->max_head + HEAD_TAIL) {
                fail(p, 431, "request head too large");
                return HR_HTTP_ERROR;
            }
        }
        return HR_AGAIN;
    case HPE_PAUSED:
        *consumed = (size_t)(llhttp_get_error_pos(&p->llhttp) - data);
        return HR_HTTP_REQUEST;
    case HPE_PAUSED_UPGRADE:
        *consumed = (size_t)(llhttp_get_error_pos(&p->llhttp) - data);
        return HR_HTTP_UPGRADE;
    default:
        if (!p->status) {
            p->status = 400;
            p->error = "malformed request";
            if (e == HPE_INVALID_VERSION) {
                p->status = 505;
                p->error = "HTTP version not supported";
            }
        }
        return HR_HTTP_ERROR;
    }
}

const char *hr_http_header_get(const struct hr_http_request *r, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (unsigned i = 0; i < r->nheaders; i++) {
        const struct hr_http_header *h = &r->headers[i];
        if (h->name_len == nlen && strncasecmp(r->head + h->name_off, name, nlen) == 0) {
            if (len)
                *len = h->value_len;
            return r->head + h->value_off;
        }
    }
    return NULL;
}

int hr_http_header_has_token(const struct hr_http_request *r, const char *name, const char *token)
{
    size_t nlen = strlen(name), tlen = strlen(token);
    for (unsigned i = 0; i < r->nheaders; i++) {
        const struct hr_http_header *h = &r->headers[i];
        if (h->name_len != nlen || strncasecmp(r->head + h->name_off, name, nlen) != 0)
            continue;
        const char *v = r->head + h->value_off, *end = v + h->value_len, *tok;
        size_t n;
        while (hr_list_next(&v, end, &tok, &n))
            if (n == tlen && strncasecmp(tok, token, tlen) == 0)
                return 1;
    }
    return 0;
}

const char *hr_http_method_str(const struct hr_http_request *r)
{
    return llhttp_method_name((llhttp_method_t)r->method);
}

long hr_http_query(const struct hr_http_request *r, const char *name, char *out, size_t outsz)
{
    const char *q = strchr(hr_http_path(r), '?');
    size_t nlen = strlen(name);
    if (!q)
        return HR_ENOTFOUND;
    for (const char *p = q + 1; *p && *p != '#';) {
        const char *end = p + strcspn(p, "&#");
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : end;
            return hr_percent_decode(v, (size_t)(end - v), out, outsz, HR_PCT_PLUS);
        }
        p = *end == '&' ? end + 1 : end;
    }
    return HR_ENOTFOUND;
}
