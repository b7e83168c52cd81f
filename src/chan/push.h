/* push.h - the context the channel transports share (SSE, long and short polling, the
 * publish API, WebSocket channels): the hub and their settings. */
#ifndef HR_CHAN_PUSH_H
#define HR_CHAN_PUSH_H

#include <stdint.h>
#include <uv.h>

#include "core/quota.h"
#include "http/http.h"
#include "hub/hub.h"
#include "poll.h"
#include "wire.h"

struct hr_push {
    struct hr_hub *hub;
    uint32_t lp_timeout_ms;    /* a held long-poll answers empty after this (0: default) */
    uint32_t sse_heartbeat_ms; /* SSE comment lines keep proxies from closing (0: default) */
    uint32_t sse_retry_ms;     /* sent as "retry:" to EventSource (2000) */
    uint32_t max_batch;        /* messages in one poll answer (1000) */
    struct hr_quota *publish;  /* --publish-rate, shared by the workers; NULL: no limit */
    uv_timer_t heartbeat;
    struct hr_buf *ping;           /* the shared heartbeat line */
    struct hr_poll_clock lp_clock; /* the polls' timer */
};

/* The defaults of --lp-timeout and --sse-heartbeat (src/server/config.c), for library users. */
#define HR_PUSH_LP_TIMEOUT_DEFAULT_MS 30000
#define HR_PUSH_SSE_HEARTBEAT_DEFAULT_MS 15000

#define HR_PUSH_PREFIX_SSE "/sse/"
#define HR_PUSH_PREFIX_LP "/lp/"
#define HR_PUSH_PREFIX_POLL "/poll/"
#define HR_PUSH_PREFIX_PUB "/pub/"
#define HR_PUSH_PREFIX_WS "/ws/"

/* The preamble of a channel request: the channel name in the path, the reader's cursor, the
 * channel (created) and the handler's state. */
enum {
    HR_CHAN_CURSOR_NONE,          /* no cursor */
    HR_CHAN_CURSOR_SINCE,         /* ?since= (polls, WebSocket) */
    HR_CHAN_CURSOR_LAST_EVENT_ID, /* Last-Event-ID, else ?lastEventId= (SSE); empty: none */
};
struct hr_chan_request {
    char name[HR_CHANNEL_NAME_MAX + 1];
    size_t len;
    int has_cursor;
    struct hr_cursor cursor;
    struct hr_channel *ch;
    void *state; /* state_size zeroed bytes (NULL when 0), the caller's */
};
/* Fill r->name from the path after prefix; answer 400 and return HR_EINVAL when invalid. */
int hr_chan_request_name(struct hr_conn *c, struct hr_http_request *req, const char *prefix,
                         struct hr_chan_request *r);
/* Name, cursor (from where `cursor` says), channel, state: 0, or an error once the request
 * was answered (400 for a bad name or cursor, 503 when out of memory). */
int hr_chan_open_request(struct hr_conn *c, struct hr_http_request *req, struct hr_push *p,
                         const char *prefix, int cursor, size_t state_size,
                         struct hr_chan_request *r);

/* One publish by the client on c against the publish rate q (NULL: none). The publisher is
 * named here and only here: by its address today ("ip:<addr>", hr_conn_peer_key); the token
 * layer will name an authenticated one "sub:<subject>". exempt: a publisher the rate does not
 * apply to (a backend holding the publish key). Returns HR_QUOTA_OK, or HR_QUOTA_OVER with
 * *retry_s the whole seconds to wait (at least 1); hits are counted and logged. */
int hr_chan_publish_take(struct hr_quota *q, struct hr_conn *c, int exempt, uint32_t *retry_s);

int hr_chan_push_init(struct hr_push *p, struct hr_hub *hub, uv_loop_t *loop);
/* Add the routes: GET /sse/{ch}, GET /lp/{ch}, GET /poll/{ch}, GET+POST /pub/{ch},
 * GET /ws/{ch} (WebSocket). */
int hr_chan_push_route(struct hr_push *p, struct hr_router *router);
void hr_chan_push_close(struct hr_push *p);

/* Handlers, one module each. */
void hr_chan_sse_handler(struct hr_conn *c, struct hr_http_request *req, void *ud);
void hr_chan_sse_heartbeat(struct hr_push *p);
void hr_chan_poll_handler(struct hr_conn *c, struct hr_http_request *req, void *ud); /* short */
void hr_chan_lp_handler(struct hr_conn *c, struct hr_http_request *req, void *ud);   /* long */
void hr_chan_pub_handler(struct hr_conn *c, struct hr_http_request *req, void *ud);
void hr_chan_ws_handler(struct hr_conn *c, struct hr_http_request *req, void *ud);

#endif
