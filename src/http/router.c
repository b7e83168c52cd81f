/* router.c - exact and prefix routes by method, with the methods a path allows (for 405). */
#include <string.h>

#include "core/error.h"
#include "http.h"

void hr_router_init(struct hr_router *r)
{
    memset(r, 0, sizeof(*r));
}

int hr_router_add(struct hr_router *r, uint64_t methods, const char *path, int prefix,
                  hr_http_handler fn, void *ud)
{
    if (r->n >= HR_ROUTES_MAX)
        return HR_ETOOBIG;
    r->routes[r->n++] = (struct hr_route){path, methods, (uint8_t) !!prefix, fn, ud};
    return 0;
}

void hr_router_fallback(struct hr_router *r, uint64_t methods, hr_http_handler fn, void *ud)
{
    r->fallback = (struct hr_route){"", methods, 1, fn, ud};
}

static uint64_t with_head(uint64_t m)
{
    return (m & HR_M(HTTP_GET)) ? m | HR_M(HTTP_HEAD) : m;
}

const struct hr_route *hr_router_match(const struct hr_router *r, unsigned method, const char *path,
                                       size_t path_len, uint64_t *allowed)
{
    *allowed = 0;
    for (unsigned i = 0; i < r->n; i++) {
        const struct hr_route *rt = &r->routes[i];
        size_t n = strlen(rt->path);
        int hit = rt->prefix ? path_len >= n && memcmp(path, rt->path, n) == 0
                             : path_len == n && memcmp(path, rt->path, n) == 0;
        if (!hit)
            continue;
        if (method < 64 && (with_head(rt->methods) & HR_M(method)))
            return rt;
        *allowed |= with_head(rt->methods);
    }
    if (*allowed)
        return NULL;
    if (r->fallback.fn) {
        if (method < 64 && (with_head(r->fallback.methods) & HR_M(method)))
            return &r->fallback;
        *allowed = with_head(r->fallback.methods);
    }
    return NULL;
}
