/* push.c - the channel transports' shared context and routes. */
#include "push.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <stdio.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"

static void heartbeat_cb(uv_timer_t *t)
{
    hr_chan_sse_heartbeat(t->data);
}

/* Once a second: a stream whose token expired is closed with the reason (its reader gets a new
 * token and resumes from its cursor). */
static void expiry_cb(uv_timer_t *t)
{
    uint64_t now = hr_wall_ms();
    hr_chan_sse_expire(t->data, now);
    hr_chan_ws_expire(t->data, now);
}

int hr_chan_push_init(struct hr_push *p, struct hr_hub *hub, uv_loop_t *loop)
{
    p->hub = hub;
    if (!p->lp_timeout_ms)
        p->lp_timeout_ms = HR_PUSH_LP_TIMEOUT_DEFAULT_MS;
    if (!p->sse_heartbeat_ms)
        p->sse_heartbeat_ms = HR_PUSH_SSE_HEARTBEAT_DEFAULT_MS;
    if (!p->sse_retry_ms)
        p->sse_retry_ms = 2000;
    if (!p->max_batch)
        p->max_batch = 1000;
    hr_poll_clock_init(&p->lp_clock, loop);
    p->ping = hr_buf_from(": heartbeat\n\n", 13);
    if (!p->ping)
        return HR_ENOMEM;
    uv_timer_init(loop, &p->heartbeat);
    p->heartbeat.data = p;
    uv_timer_start(&p->heartbeat, heartbeat_cb, p->sse_heartbeat_ms, p->sse_heartbeat_ms);
    uv_timer_init(loop, &p->expiry);
    p->expiry.data = p;
    if (p->auth && p->auth->alg != HR_AUTH_ALG_NONE)
        uv_timer_start(&p->expiry, expiry_cb, 1000, 1000);
    return 0;
}

/* The request's token: "Authorization: Bearer T", else ?token=T, else the token cookie. Its
 * length with *tok pointing at it (maybe into buf), 0 when there is none, HR_ETOOBIG. */
static long request_token(const struct hr_push *p, struct hr_http_request *req, char *buf,
                          size_t cap, const char **tok)
{
    size_t n;
    const char *h = hr_http_header_get(req, "Authorization", &n);
    if (h) {
        if (n < 7 || strncasecmp(h, "Bearer ", 7) != 0)
            return HR_EINVAL;
        *tok = h + 7;
        while (n > 7 && **tok == ' ') {
            (*tok)++;
            n--;
        }
        return (long)n - 7;
    }
    long l = hr_http_query(req, "token", buf, cap);
    if (l >= 0 || l == HR_ETOOBIG) {
        *tok = buf;
        return l;
    }
    h = hr_http_header_get(req, "Cookie", &n);
    if (h && (l = hr_auth_cookie(h, n, p->auth->cookie, tok)) >= 0)
        return l;
    return 0;
}

int hr_chan_request_allow(struct hr_conn *c, struct hr_http_request *req, struct hr_push *p,
                          struct hr_chan_request *r, enum hr_access what)
{
    r->exp_ms = 0;
    r->may_publish = 0;
    r->publish_key = 0;
    r->sub[0] = 0;
    if (!p->auth || !p->auth->enabled)
        return 0;
    /* the reason is readable by the pages allowed to read the answers (CORS) */
    char cors[HR_ORIGIN_CORS_MAX], challenge[HR_ORIGIN_CORS_MAX + 48];
    hr_origins_cors(p->origins, req, cors, sizeof cors);
    snprintf(challenge, sizeof challenge, "WWW-Authenticate: Bearer realm=\"herald\"\r\n%s", cors);
    char buf[HR_AUTH_TOKEN_MAX + 1];
    const char *tok = NULL, *why = "invalid token";
    long n = request_token(p, req, buf, sizeof buf, &tok);
    struct hr_principal who = {0};
    if (n == HR_EINVAL) {
        hr_http_error(c, 401, challenge, "Authorization wants a Bearer token");
        return HR_EUNAUTH;
    }
    if (n != 0 &&
        (n < 0 || hr_auth_verify(p->auth, tok, (size_t)n, hr_wall_ms(), &who, &why) < 0)) {
        hr_http_error(c, 401, challenge, n == HR_ETOOBIG ? "token too long" : why);
        return HR_EUNAUTH;
    }
    int rc = hr_auth_allow(p->auth, &who, r->name, r->len, what);
    if (rc == 0 && what == HR_ACCESS_READ)
        r->may_publish = (int8_t)hr_auth_allow(p->auth, &who, r->name, r->len, HR_ACCESS_PUBLISH);
    r->exp_ms = who.exp_ms;
    r->publish_key = who.kind == HR_PRINCIPAL_KEY;
    memcpy(r->sub, who.sub, sizeof r->sub);
    hr_principal_clear(&who);
    if (rc < 0)
        hr_http_error(c, rc == HR_EUNAUTH ? 401 : 403, rc == HR_EUNAUTH ? challenge : cors,
                      hr_auth_refusal(rc, what));
    return rc;
}

int hr_chan_publish_take(struct hr_quota *q, struct hr_conn *c, const char *sub, int exempt,
                         uint32_t *retry_s)
{
    if (!q || !q->rate.rate || exempt)
        return HR_QUOTA_OK;
    char key[HR_QUOTA_KEY_MAX + 1];
    size_t n;
    if (sub && *sub) {
        int k = snprintf(key, sizeof key, "sub:%s", sub);
        n = k > 0 && (size_t)k < sizeof key ? (size_t)k : 0;
    } else {
        n = hr_conn_peer_key(c, key, sizeof key);
    }
    if (!n)
        return HR_QUOTA_OK; /* no address to name (not TCP/IP) */
    uint64_t now = uv_now(c->srv->loop);
    uint32_t wait_ms = 1000;
    if (hr_quota_take(q, key, n, now, &wait_ms) == HR_QUOTA_OK)
        return HR_QUOTA_OK;
    hr_quota_hit(HR_QUOTA_PUBLISH, q->rate.rate, now);
    if (retry_s)
        *retry_s = (wait_ms + 999) / 1000;
    return HR_QUOTA_OVER;
}

int hr_chan_request_name(struct hr_conn *c, struct hr_http_request *req, const char *prefix,
                         struct hr_chan_request *r)
{
    if (!hr_channel_from_path(hr_http_path(req), prefix, r->name, &r->len)) {
        hr_http_error(c, 400, NULL, "invalid channel name");
        return HR_EINVAL;
    }
    return 0;
}

/* The reader's cursor; r->has_cursor says whether one was given. */
static int request_cursor(struct hr_http_request *req, int from, struct hr_chan_request *r)
{
    char buf[1024];
    const char *cur = NULL;
    size_t clen = 0;
    long l = HR_ENOTFOUND;
    r->has_cursor = 0;
    if (from == HR_CHAN_CURSOR_NONE)
        return 0;
    if (from == HR_CHAN_CURSOR_LAST_EVENT_ID) {
        /* EventSource sends Last-Event-ID when it reconnects; a first visit may pass
         * lastEventId; either, empty, means none */
        cur = hr_http_header_get(req, "Last-Event-ID", &clen);
        if (!cur && (l = hr_http_query(req, "lastEventId", buf, sizeof buf)) >= 0) {
            cur = buf;
            clen = (size_t)l;
        }
        if (l == HR_ETOOBIG)
            return HR_EINVAL;
        if (!cur || clen == 0)
            return 0;
    } else {
        l = hr_http_query(req, "since", buf, sizeof buf);
        if (l == HR_ETOOBIG)
            return HR_EINVAL;
        if (l < 0)
            return 0;
        cur = buf;
        clen = (size_t)l;
    }
    r->has_cursor = 1;
    return hr_cursor_parse(cur, clen, &r->cursor);
}

int hr_chan_open_request(struct hr_conn *c, struct hr_http_request *req, struct hr_push *p,
                         const char *prefix, int cursor, size_t state_size,
                         struct hr_chan_request *r)
{
    memset(r, 0, sizeof(*r));
    if (hr_chan_request_name(c, req, prefix, r) < 0)
        return HR_EINVAL;
    if (hr_chan_request_allow(c, req, p, r, HR_ACCESS_READ) < 0)
        return HR_EUNAUTH;
    if (request_cursor(req, cursor, r) < 0) {
        hr_http_error(c, 400, NULL,
                      cursor == HR_CHAN_CURSOR_SINCE
                          ? "invalid cursor in since"
                          : "invalid cursor in Last-Event-ID or lastEventId");
        return HR_EINVAL;
    }
    r->ch = hr_hub_channel(p->hub, r->name, r->len, 1);
    r->state = r->ch && state_size ? calloc(1, state_size) : NULL;
    if (!r->ch || (state_size && !r->state)) {
        hr_hub_forget_unused(r->ch);
        r->ch = NULL;
        hr_http_error(c, 503, NULL, "out of memory");
        return HR_ENOMEM;
    }
    return 0;
}

void hr_chan_cors(const struct hr_push *p, struct hr_conn *c, char *out, size_t outsz)
{
    struct hr_http_request *req = hr_http_current(c);
    out[0] = '\0';
    if (req)
        hr_origins_cors(p->origins, req, out, outsz);
}

/* CORS preflight: a page on an allowed origin may publish JSON (POST with a Content-Type) and
 * read with headers of its own; a page from another origin is told no (403) before it sends
 * anything. */
static void preflight_cb(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    const struct hr_push *p = ud;
    char cors[HR_ORIGIN_CORS_MAX], hdr[HR_ORIGIN_CORS_MAX + 160];
    if (hr_origins_cors(p->origins, req, cors, sizeof cors) == HR_ORIGIN_REFUSED) {
        hr_http_error(c, 403, cors, "origin not allowed");
        return;
    }
    int pub = strncmp(hr_http_path(req), HR_PUSH_PREFIX_PUB, strlen(HR_PUSH_PREFIX_PUB)) == 0;
    snprintf(hdr, sizeof hdr, "%s%s", cors,
             pub ? "Access-Control-Allow-Methods: GET, HEAD, POST\r\n"
                   "Access-Control-Allow-Headers: Content-Type, "
                   "Authorization\r\nAccess-Control-Max-Age: 86400\r\n"
                 : "Access-Control-Allow-Methods: GET, HEAD\r\n"
                   "Access-Control-Allow-Headers: Last-Event-ID, "
                   "Authorization\r\nAccess-Control-Max-Age: 86400\r\n");
    hr_http_respond(c, 204, NULL, hdr, NULL, 0);
}

int hr_chan_push_route(struct hr_push *p, struct hr_router *r)
{
    int rc = 0;
    static const char *const prefixes[] = {HR_PUSH_PREFIX_SSE, HR_PUSH_PREFIX_LP,
                                           HR_PUSH_PREFIX_POLL, HR_PUSH_PREFIX_PUB,
                                           HR_PUSH_PREFIX_WS};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        rc |= hr_router_add(r, HR_M(HTTP_OPTIONS), prefixes[i], 1, preflight_cb, p);
    rc |= hr_router_add(r, HR_M(HTTP_GET), HR_PUSH_PREFIX_SSE, 1, hr_chan_sse_handler, p);
    rc |= hr_router_add(r, HR_M(HTTP_GET), HR_PUSH_PREFIX_LP, 1, hr_chan_lp_handler, p);
    rc |= hr_router_add(r, HR_M(HTTP_GET), HR_PUSH_PREFIX_POLL, 1, hr_chan_poll_handler, p);
    rc |= hr_router_add(r, HR_M(HTTP_GET) | HR_M(HTTP_POST), HR_PUSH_PREFIX_PUB, 1,
                        hr_chan_pub_handler, p);
    rc |= hr_router_add(r, HR_M(HTTP_GET), HR_PUSH_PREFIX_WS, 1, hr_chan_ws_handler, p);
    return rc ? HR_ETOOBIG : 0;
}

void hr_chan_push_shutdown(struct hr_push *p)
{
    p->stopping = 1;
    hr_chan_sse_shutdown(p);
    hr_poll_clock_release(&p->lp_clock);
}

void hr_chan_push_close(struct hr_push *p)
{
    uv_timer_stop(&p->heartbeat);
    if (!uv_is_closing((uv_handle_t *)&p->heartbeat))
        uv_close((uv_handle_t *)&p->heartbeat, NULL);
    uv_timer_stop(&p->expiry);
    if (!uv_is_closing((uv_handle_t *)&p->expiry))
        uv_close((uv_handle_t *)&p->expiry, NULL);
    hr_buf_unref(p->ping);
    p->ping = NULL;
}
