/* origin.c - the origin allow-list: parse it once, match a request's Origin (RFC 6454 §6.1
 * serialization: scheme "://" host [":" port]), write the CORS answer headers (Fetch
 * standard, "CORS protocol"). The same list guards WebSocket handshakes against cross-site
 * WebSocket hijacking: a browser sends Origin on every handshake, and the cookies of the
 * server's site with it whatever page opened the socket. */
#include "origin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 'a' - 'A') : c;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* out[*o..] = s[0..n) lowered; 0, or -1 when it would not leave room for the NUL. */
static int put_lower(char *out, size_t outsz, size_t *o, const char *s, size_t n)
{
    if (*o + n >= outsz)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[(*o)++] = lower(s[i]);
    return 0;
}

/* The port a scheme leaves out of its origins (the URL standard's special schemes that have
 * one, and the WebSocket schemes), or 0. */
static unsigned default_port(const char *scheme, size_t n)
{
    if ((n == 4 && memcmp(scheme, "http", 4) == 0) || (n == 2 && memcmp(scheme, "ws", 2) == 0))
        return 80;
    if ((n == 5 && memcmp(scheme, "https", 5) == 0) || (n == 3 && memcmp(scheme, "wss", 3) == 0))
        return 443;
    return 0;
}

long hr_origin_serialize(const char *v, size_t len, char *out, size_t outsz)
{
    size_t i = 0, o = 0;
    if (len == 0 || !is_alpha(v[0]))
        return HR_EINVAL;
    while (i < len &&
           (is_alpha(v[i]) || is_digit(v[i]) || v[i] == '+' || v[i] == '-' || v[i] == '.'))
        i++;
    size_t scheme_len = i;
    if (len - i < 3 || memcmp(v + i, "://", 3) != 0 || put_lower(out, outsz, &o, v, i + 3) < 0)
        return HR_EINVAL;
    i += 3;
    size_t host = i;
    if (i < len && v[i] == '[') { /* an IPv6 literal */
        for (i++; i < len && (is_hex(v[i]) || v[i] == ':' || v[i] == '.');)
            i++;
        if (i >= len || v[i] != ']' || i == host + 1)
            return HR_EINVAL;
        i++;
    } else { /* a domain (in its ASCII form) or an IPv4 address: no userinfo, no escapes */
        while (i < len && (is_alpha(v[i]) || is_digit(v[i]) || v[i] == '-' || v[i] == '.' ||
                           v[i] == '_' || v[i] == '~'))
            i++;
        if (i == host)
            return HR_EINVAL;
    }
    if (put_lower(out, outsz, &o, v + host, i - host) < 0)
        return HR_EINVAL;
    if (i < len) {
        if (v[i++] != ':' || i == len || len - i > 5)
            return HR_EINVAL;
        unsigned port = 0;
        for (; i < len; i++) {
            if (!is_digit(v[i]))
                return HR_EINVAL; /* a path, a query, a fragment: not an origin */
            port = port * 10 + (unsigned)(v[i] - '0');
        }
        if (port > 65535)
            return HR_EINVAL;
        if (port != default_port(out, scheme_len)) {
            int n = snprintf(out + o, outsz - o, ":%u", port);
            if (n < 0 || (size_t)n >= outsz - o)
                return HR_EINVAL;
            o += (size_t)n;
        }
    }
    out[o] = '\0';
    return (long)o;
}

int hr_origin_same(const char *origin, size_t olen, const char *host, size_t hlen, int tls)
{
    char url[HR_ORIGIN_MAX + 16], own[HR_ORIGIN_MAX + 1];
    if (!host || hlen > HR_ORIGIN_MAX)
        return 0;
    int n = snprintf(url, sizeof url, "%s://%.*s", tls ? "https" : "http", (int)hlen, host);
    long m = n > 0 ? hr_origin_serialize(url, (size_t)n, own, sizeof own) : HR_EINVAL;
    return m >= 0 && (size_t)m == olen && memcmp(own, origin, olen) == 0;
}

static int listed(const struct hr_origins *o, const char *s, size_t n)
{
    const char *p = o->list;
    for (uint32_t i = 0; i < o->n; i++) {
        size_t l = strlen(p);
        if (l == n && memcmp(p, s, n) == 0)
            return 1;
        p += l + 1;
    }
    return 0;
}

int hr_origins_check(const struct hr_origins *o, const char *origin, size_t olen, const char *host,
                     size_t hlen, int tls)
{
    char s[HR_ORIGIN_MAX + 1];
    if (!o || o->any)
        return HR_ORIGIN_ALLOWED;
    /* an opaque origin (a sandboxed frame, a file: page) is never the server's own */
    if (olen == 4 && memcmp(origin, "null", 4) == 0)
        return listed(o, "null", 4) ? HR_ORIGIN_ALLOWED : HR_ORIGIN_REFUSED;
    long n = olen <= HR_ORIGIN_MAX ? hr_origin_serialize(origin, olen, s, sizeof s) : HR_EINVAL;
    if (n < 0)
        return HR_ORIGIN_REFUSED;
    if (hr_origin_same(s, (size_t)n, host, hlen, tls) || listed(o, s, (size_t)n))
        return HR_ORIGIN_ALLOWED;
    return HR_ORIGIN_REFUSED;
}

/* The request's one Origin header: 1 with its value, 0 when there is none, -1 when there
 * are several (no browser sends that). */
static int origin_of(const struct hr_http_request *req, const char **v, size_t *len)
{
    int found = 0;
    for (unsigned i = 0; i < req->nheaders; i++) {
        const struct hr_http_header *h = &req->headers[i];
        if (h->name_len == 6 && strncasecmp(req->head + h->name_off, "Origin", 6) == 0) {
            if (found++)
                return -1;
            *v = req->head + h->value_off;
            *len = h->value_len;
        }
    }
    return found;
}

/* Before a verdict is known to be ALLOWED, the echoed value is checked by hr_origins_check:
 * only an origin's characters reach a header line. */
static int verdict(const struct hr_origins *o, const struct hr_http_request *req, const char **v,
                   size_t *len)
{
    int k = origin_of(req, v, len);
    if (k == 0)
        return HR_ORIGIN_ABSENT;
    if (!o || o->any)
        return HR_ORIGIN_ALLOWED;
    if (k < 0)
        return HR_ORIGIN_REFUSED;
    size_t hlen = 0;
    const char *host = hr_http_header_get(req, "Host", &hlen);
    /* the connection's scheme: the listener speaks TLS (--tls-cert) or plain HTTP */
    return hr_origins_check(o, *v, *len, host, hlen, o->tls);
}

int hr_origins_request(const struct hr_origins *o, const struct hr_http_request *req)
{
    const char *v;
    size_t len;
    return verdict(o, req, &v, &len);
}

int hr_origins_cors(const struct hr_origins *o, const struct hr_http_request *req, char *out,
                    size_t outsz)
{
    const char *v = NULL;
    size_t len = 0;
    int k = verdict(o, req, &v, &len);
    out[0] = '\0';
    if (!o || o->any)
        snprintf(out, outsz, "Access-Control-Allow-Origin: *\r\n");
    else if (k == HR_ORIGIN_ALLOWED)
        snprintf(out, outsz,
                 "Access-Control-Allow-Origin: %.*s\r\nAccess-Control-Allow-Credentials: true\r\n"
                 "Vary: Origin\r\n",
                 (int)len, v);
    else
        snprintf(out, outsz, "Vary: Origin\r\n");
    return k;
}

int hr_origins_parse(struct hr_origins *o, const char *spec, char *err, size_t errlen)
{
    memset(o, 0, sizeof(*o));
    size_t len = strlen(spec);
    const char *p = spec, *end = spec + len, *tok;
    size_t n, words = 0, alone = 0;
    int star = 0;
    while (hr_list_next(&p, end, &tok, &n)) {
        words++;
        if (n == 1 && *tok == '*')
            alone++, star = 1;
        else if (n == 4 && memcmp(tok, "none", 4) == 0)
            alone++;
    }
    if (words == 0) {
        snprintf(err, errlen, "no origin given (a list, * or none)");
        return HR_EINVAL;
    }
    if (alone) {
        if (words > 1) {
            snprintf(err, errlen, "* and none stand alone, not in a list");
            return HR_EINVAL;
        }
        o->any = (uint8_t)star;
        return 0;
    }
    o->list = malloc(len + 1); /* serialized origins are never longer than as written */
    if (!o->list)
        return HR_ENOMEM;
    p = spec;
    while (hr_list_next(&p, end, &tok, &n)) {
        char *dst = o->list + o->bytes;
        long m;
        if (n == 4 && memcmp(tok, "null", 4) == 0) {
            memcpy(dst, "null", 5);
            m = 4;
        } else {
            m = n <= HR_ORIGIN_MAX ? hr_origin_serialize(tok, n, dst, n + 1) : HR_EINVAL;
        }
        if (m < 0) {
            snprintf(err, errlen, "'%.*s' is not an origin (scheme://host[:port], no path)",
                     (int)(n > 80 ? 80 : n), tok);
            goto fail;
        }
        o->bytes += (size_t)m + 1;
        o->n++;
    }
    return 0;
fail:
    hr_origins_free(o);
    return HR_EINVAL;
}

void hr_origins_free(struct hr_origins *o)
{
    free(o->list);
    memset(o, 0, sizeof(*o));
}
