/* pub.c - the publish API: POST /pub/{channel} publishes the body (JSON with a JSON
 * Content-Type, else UTF-8 text stored as a JSON string) and answers with its id once it is
 * committed; GET /pub/{channel} describes the channel. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/budget.h"
#include "core/error.h"
#include "push.h"
#include "wire.h"

struct pub_req {
    struct hr_conn *c;
    struct hr_push *push;
    struct hr_channel *ch;
};

static void published_cb(void *ud, int status, uint64_t id)
{
    struct pub_req *r = ud;
    struct hr_conn *c = r->c;
    if (hr_conn_release(c)) {
        if (status < 0) {
            hr_http_error(c, 503, NULL, "could not store the message");
        } else {
            char body[HR_CHANNEL_NAME_MAX + 160];
            int n =
                snprintf(body, sizeof body,
                         "{\"channel\":\"%s\",\"id\":%" PRIu64 ",\"cursor\":\"%s:%" PRIu64 "\"}\n",
                         r->ch->name, id, r->ch->epoch, id);
            if (n < 0 || (size_t)n >= sizeof body)
                hr_http_error(c, 500, NULL, "answer too long");
            else {
                char cors[HR_ORIGIN_CORS_MAX];
                hr_chan_cors(r->push, c, cors, sizeof cors);
                hr_http_respond(c, 200, "application/json", cors, body, (size_t)n);
            }
        }
    }
    free(r);
}

static int is_json_type(const struct hr_http_request *req)
{
    size_t n;
    const char *ct = hr_http_header_get(req, "Content-Type", &n);
    if (!ct)
        return 0;
    size_t base = strcspn(ct, ";");
    while (base && (ct[base - 1] == ' ' || ct[base - 1] == '\t'))
        base--;
    return (base == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (base > 5 && strncasecmp(ct + base - 5, "+json", 5) == 0);
}

void hr_chan_pub_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct hr_push *push = ud;
    struct hr_chan_request cr;
    if (hr_chan_request_name(c, req, HR_PUSH_PREFIX_PUB, &cr) < 0 ||
        hr_chan_request_allow(c, req, push, &cr,
                              req->method == HTTP_POST ? HR_ACCESS_PUBLISH : HR_ACCESS_READ) < 0)
        return;
    const char *name = cr.name;
    size_t nlen = cr.len;
    if (req->method == HTTP_GET || req->method == HTTP_HEAD) {
        struct hr_channel *ch = hr_hub_channel(push->hub, name, nlen, 0);
        char epoch[HR_EPOCH_LEN + 1];
        hr_hub_epoch(push->hub, name, nlen, epoch);
        uint32_t subs[HR_HUB_FORMATS];
        hr_hub_subscribers(push->hub, ch, name, nlen, subs);
        char body[HR_CHANNEL_NAME_MAX + 400];
        int n =
            snprintf(body, sizeof body,
                     "{\"channel\":\"%.*s\",\"epoch\":\"%s\",\"last_id\":%" PRIu64
                     ",\"first_id\":%" PRIu64 ",\"history\":%u,\"subscribers\":{\"websocket\":%u,"
                     "\"sse\":%u,\"longpoll\":%u,\"socketio\":%u}}\n",
                     (int)nlen, name, epoch, ch ? ch->last_id : 0, ch ? hr_hub_first_id(ch) : 1,
                     ch ? (unsigned)ch->kept : 0, subs[HR_FMT_WS], subs[HR_FMT_SSE],
                     subs[HR_FMT_POLL], subs[HR_FMT_SIO]);
        if (n < 0 || (size_t)n >= sizeof body)
            n = 0;
        char cors[HR_ORIGIN_CORS_MAX], hdr[HR_ORIGIN_CORS_MAX + 32];
        hr_chan_cors(push, c, cors, sizeof cors);
        snprintf(hdr, sizeof hdr, "Cache-Control: no-store\r\n%s", cors);
        hr_http_respond(c, 200, "application/json", hdr, body, (size_t)n);
        return;
    }
    if (push->stopping) {
        /* refused rather than taken by a server about to go: the publisher retries, and its
         * next connection reaches the herald that takes over */
        char cors[HR_ORIGIN_CORS_MAX], hdr[HR_ORIGIN_CORS_MAX + 32];
        hr_chan_cors(push, c, cors, sizeof cors);
        snprintf(hdr, sizeof hdr, "Retry-After: 1\r\n%s", cors);
        hr_http_error(c, 503, hdr, "server shutting down");
        return;
    }
    /* --publish-rate: the token's user, else the address; a backend with the publish key is
     * exempt */
    uint32_t retry_s;
    if (hr_chan_publish_take(push->publish, c, cr.sub, cr.publish_key, &retry_s) != HR_QUOTA_OK) {
        char cors[HR_ORIGIN_CORS_MAX], hdr[HR_ORIGIN_CORS_MAX + 32];
        hr_chan_cors(push, c, cors, sizeof cors);
        snprintf(hdr, sizeof hdr, "Retry-After: %u\r\n%s", retry_s, cors);
        hr_http_error(c, 429, hdr, "publish rate exceeded");
        return;
    }
    /* the body's own buffer: JSON is published as is, referenced by the hub and the store
     * until its commit, never copied */
    const char *err = NULL;
    struct hr_buf *value = hr_msg_value_buf(hr_http_body_take(c), is_json_type(req), &err);
    if (!value) {
        hr_http_error(c, 400, NULL, err);
        return;
    }
    if (!hr_budget_admit(value->len)) {
        /* refused rather than acknowledged unstored; memory frees as readers drain or are shed */
        hr_budget_refused(value->len);
        hr_buf_unref(value);
        char cors[HR_ORIGIN_CORS_MAX], hdr[HR_ORIGIN_CORS_MAX + 32];
        hr_chan_cors(push, c, cors, sizeof cors);
        snprintf(hdr, sizeof hdr, "Retry-After: 1\r\n%s", cors);
        hr_http_error(c, 503, hdr, "over the memory budget: try again later");
        return;
    }
    struct hr_channel *ch = hr_hub_channel(push->hub, name, nlen, 1);
    struct pub_req *r = calloc(1, sizeof(*r));
    if (!ch || !r) {
        free(r);
        hr_buf_unref(value);
        hr_http_error(c, 503, NULL, "out of memory");
        return;
    }
    r->c = c;
    r->push = push;
    r->ch = ch;
    hr_conn_hold(c);
    int rc = hr_hub_publish_buf(push->hub, ch, value, published_cb, r);
    hr_buf_unref(value);
    if (rc < 0) {
        hr_conn_release(c);
        free(r);
        hr_http_error(c, 503, NULL, "could not store the message");
    }
}
