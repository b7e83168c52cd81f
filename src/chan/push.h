/* push.h - the context the channel transports share (SSE, long and short polling, the
 * publish API, WebSocket channels): the hub and their settings. */
#ifndef HR_CHAN_PUSH_H
#define HR_CHAN_PUSH_H

#include <stdint.h>
#include <uv.h>

#include "auth/auth.h"
#include "core/quota.h"
#include "http/http.h"
#include "http/origin.h"
#include "hub/hub.h"
#include "poll.h"
#include "wire.h"

struct hr_push {
    struct hr_hub *hub;
    const struct hr_auth *auth; /* who may read and publish what (NULL: everyone anything) */
    uint32_t lp_timeout_ms;     /* a held long-poll answers empty after this (0: default) */
    uint32_t sse_heartbeat_ms;  /* SSE comment lines keep proxies from closing (0: default) */
    uint32_t sse_retry_ms;      /* sent as "retry:" to EventSource (2000) */
    uint32_t max_batch;         /* messages in one poll answer (1000) */
    /* the pages that may read the answers (CORS) and open /ws/{ch}; NULL: any, answered
     * "Access-Control-Allow-Origin: *" */
    const struct hr_origins *origins;
    struct hr_quota *publish; /* --publish-rate, shared by the workers; NULL: no limit */
    uv_timer_t heartbeat;
    uv_timer_t expiry;   /* closes streams whose token expired (runs while tokens are accepted) */
    struct hr_buf *ping; /* the shared heartbeat line */
    struct hr_poll_clock lp_clock; /* the polls' timer */
    uint8_t stopping;              /* hr_chan_push_shutdown: publishes are refused (503) */
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
    void *state;                   /* state_size zeroed bytes (NULL when 0), the caller's */
    uint64_t exp_ms;               /* when the request's token expires (Unix ms); 0: never */
    int8_t may_publish;            /* 0, or the refusal (HR_EUNAUTH, HR_EFORBIDDEN) of a publish */
    uint8_t publish_key;           /* the request holds the publish key (a backend) */
    char sub[HR_AUTH_SUB_MAX + 1]; /* its token's user, or "" */
};
/* Fill r->name from the path after prefix; answer 400 and return HR_EINVAL when invalid. */
int hr_chan_request_name(struct hr_conn *c, struct hr_http_request *req, const char *prefix,
                         struct hr_chan_request *r);
/* Whom the request speaks for (its token: "Authorization: Bearer", else ?token=, else the
 * token cookie), and may it do what on r->name: 0, with r->exp_ms and (for a read)
 * r->may_publish set, or an error once the request was answered (401 with the reason for a
 * missing or invalid token, 403 for one that does not allow it). */
int hr_chan_request_allow(struct hr_conn *c, struct hr_http_request *req, struct hr_push *p,
                          struct hr_chan_request *r, enum hr_access what);
/* Name, access to read (hr_chan_request_allow), cursor (from where `cursor` says), channel,
 * state: 0, or an error once the request was answered (400 for a bad name or cursor, 401 or
 * 403 refused, 503 when out of memory). */
int hr_chan_open_request(struct hr_conn *c, struct hr_http_request *req, struct hr_push *p,
                         const char *prefix, int cursor, size_t state_size,
                         struct hr_chan_request *r);

/* The CORS header lines of an answer to c's current request (hr_origins_cors) into out, of
 * at least HR_ORIGIN_CORS_MAX bytes. A page from an origin not allowed gets none: the answer
 * is still sent (the browser keeps it from the page). */
void hr_chan_cors(const struct hr_push *p, struct hr_conn *c, char *out, size_t outsz);
/* One publish by the client on c against the publish rate q (NULL: none). The publisher is
 * named here and only here: "sub:<subject>" for a token's user (sub, not empty), else by its
 * address ("ip:<addr>", hr_conn_peer_key). exempt: a publisher the rate does not apply to (a
 * backend holding the publish key). Returns HR_QUOTA_OK, or HR_QUOTA_OVER with *retry_s the
 * whole seconds to wait (at least 1); hits are counted and logged. */
int hr_chan_publish_take(struct hr_quota *q, struct hr_conn *c, const char *sub, int exempt,
                         uint32_t *retry_s);

int hr_chan_push_init(struct hr_push *p, struct hr_hub *hub, uv_loop_t *loop);
/* Add the routes: GET /sse/{ch}, GET /lp/{ch}, GET /poll/{ch}, GET+POST /pub/{ch},
 * GET /ws/{ch} (WebSocket). */
int hr_chan_push_route(struct hr_push *p, struct hr_router *router);
void hr_chan_push_close(struct hr_push *p);
/* The server is stopping: every reader is told to come back (an SSE stream ends after a retry:
 * hint, a held long-poll is answered with what it has and its cursor) and publishes from now on
 * are refused with 503 and Retry-After (the client retries on the server that takes over). */
void hr_chan_push_shutdown(struct hr_push *p);

/* Handlers, one module each. */
void hr_chan_sse_handler(struct hr_conn *c, struct hr_http_request *req, void *ud);
void hr_chan_sse_heartbeat(struct hr_push *p);
/* Streams whose token expired by now_ms (Unix ms) are told why and closed. */
void hr_chan_sse_expire(struct hr_push *p, uint64_t now_ms);
/* Every stream gets a retry: hint and ends (hr_chan_push_shutdown). */
void hr_chan_sse_shutdown(struct hr_push *p);
void hr_chan_ws_expire(struct hr_push *p, uint64_t now_ms);

void hr_chan_poll_handler(struct hr_conn *c, struct hr_http_request *req, void *ud); /* short */
void hr_chan_lp_handler(struct hr_conn *c, struct hr_http_request *req, void *ud);   /* long */
void hr_chan_pub_handler(struct hr_conn *c, struct hr_http_request *req, void *ud);
void hr_chan_ws_handler(struct hr_conn *c, struct hr_http_request *req, void *ud);

#endif
