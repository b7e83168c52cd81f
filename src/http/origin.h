/* origin.h - the origin allow-list (RFC 6454 origins, the Fetch standard's CORS headers): which
 * web pages may open a WebSocket, make an Engine.IO request or read an HTTP answer. A list is
 * parsed once; a request's Origin is matched in its serialized form (scheme and host in lower
 * case, the scheme's default port left out). Pure: no sockets, no globals. */
#ifndef HR_HTTP_ORIGIN_H
#define HR_HTTP_ORIGIN_H

#include <stddef.h>
#include <stdint.h>

#include "parser.h"

/* Longest origin accepted (serialized), from a request or in a list. */
#define HR_ORIGIN_MAX 255
/* Room for what hr_origins_cors writes. */
#define HR_ORIGIN_CORS_MAX (HR_ORIGIN_MAX + 128)

struct hr_origins {
    uint8_t any;  /* "*": every origin, CORS "Access-Control-Allow-Origin: *" */
    uint8_t tls;  /* the listener speaks TLS: herald's own origin is https:// */
    uint32_t n;   /* origins listed (besides the request's own, always allowed) */
    char *list;   /* n NUL-terminated serialized origins, one after the other ("null" literal) */
    size_t bytes; /* of list */
};

/* What a request's Origin header gets. */
enum {
    HR_ORIGIN_REFUSED = -1, /* an origin outside the list, malformed, or more than one header */
    HR_ORIGIN_ABSENT = 0,   /* no Origin header: not a browser's cross-origin request */
    HR_ORIGIN_ALLOWED = 1,  /* listed, the request's own origin, or the list is "*" */
};

/* spec: "*", "none" (the server's own origin only), or a comma-separated list of
 * scheme://host[:port] and "null". 0, HR_ENOMEM, or HR_EINVAL with a one-line reason in err.
 * o is zeroed first; hr_origins_free releases it. */
int hr_origins_parse(struct hr_origins *o, const char *spec, char *err, size_t errlen);
void hr_origins_free(struct hr_origins *o);

/* The serialized form of an origin value (scheme://host[:port], scheme and host lowered, an
 * http/ws port 80 or https/wss port 443 left out) into out with a NUL: its length, or
 * HR_EINVAL when v is not such an origin (a path, userinfo, a query, a bad port or host...) or
 * does not fit in outsz. */
long hr_origin_serialize(const char *v, size_t len, char *out, size_t outsz);

/* Whether a serialized origin is the server's own as the request names it: the Host header
 * with the scheme of the connection (http; https once the connection is TLS). The one place
 * that decides "same origin". */
int hr_origin_same(const char *origin, size_t olen, const char *host, size_t hlen, int tls);

/* An Origin value (as sent) against the list, for a request whose Host header is host (NULL:
 * none): HR_ORIGIN_ALLOWED or HR_ORIGIN_REFUSED. o NULL: any origin. */
int hr_origins_check(const struct hr_origins *o, const char *origin, size_t olen, const char *host,
                     size_t hlen, int tls);
/* The request's Origin against the list: HR_ORIGIN_ABSENT, _ALLOWED or _REFUSED. */
int hr_origins_request(const struct hr_origins *o, const struct hr_http_request *req);

/* The CORS answer headers for req into out (complete lines, "" when none; outsz at least
 * HR_ORIGIN_CORS_MAX): "*" for a "*" list; the request's Origin echoed with credentials when
 * allowed, and "Vary: Origin" whenever the answer depends on the Origin. Returns the
 * request's verdict as hr_origins_request. */
int hr_origins_cors(const struct hr_origins *o, const struct hr_http_request *req, char *out,
                    size_t outsz);

#endif
