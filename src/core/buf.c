/* buf.c - reference-counted byte buffers. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

_Thread_local long hr_buf_live;

struct hr_buf *hr_buf_new(size_t cap)
{
    if (cap > UINT32_MAX - sizeof(struct hr_buf))
        return NULL;
    struct hr_buf *b = malloc(sizeof(*b) + cap);
    if (!b)
        return NULL;
    b->refs = 1;
    b->len = 0;
    b->cap = (uint32_t)cap;
    hr_buf_live++;
    return b;
}

struct hr_buf *hr_buf_from(const void *data, size_t len)
{
    struct hr_buf *b = hr_buf_new(len);
    if (b && len) {
        memcpy(b->data, data, len);
        b->len = (uint32_t)len;
    }
    return b;
}

void hr_buf_unref(struct hr_buf *b)
{
    if (b && --b->refs == 0) {
        hr_buf_live--;
        free(b);
    }
}

static int reserve(struct hr_buf **bp, size_t extra)
{
    struct hr_buf *b = *bp;
    size_t need = (size_t)b->len + extra;
    if (need <= b->cap)
        return 0;
    if (b->refs != 1 || need > UINT32_MAX - sizeof(*b))
        return HR_ETOOBIG;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap * 2 > UINT32_MAX - sizeof(*b) ? need : cap * 2;
    struct hr_buf *nb = realloc(b, sizeof(*b) + cap);
    if (!nb)
        return HR_ENOMEM;
    nb->cap = (uint32_t)cap;
    *bp = nb;
    return 0;
}

int hr_buf_reserve(struct hr_buf **bp, size_t cap)
{
    struct hr_buf *b = *bp;
    if (!b) {
        *bp = hr_buf_new(cap);
        return *bp ? 0 : HR_ENOMEM;
    }
    if (cap <= b->cap)
        return 0;
    if (b->refs != 1 || cap > UINT32_MAX - sizeof(*b))
        return HR_ETOOBIG;
    struct hr_buf *nb = realloc(b, sizeof(*b) + cap);
    if (!nb)
        return HR_ENOMEM;
    nb->cap = (uint32_t)cap;
    *bp = nb;
    return 0;
}

void hr_buf_shrink(struct hr_buf **bp, size_t cap)
{
    struct hr_buf *b = *bp;
    if (!b || b->refs != 1)
        return;
    if (cap < b->len)
        cap = b->len;
    if (cap >= b->cap)
        return;
    struct hr_buf *nb = realloc(b, sizeof(*b) + cap);
    if (nb) {
        nb->cap = (uint32_t)cap;
        *bp = nb;
    }
}

int hr_buf_append(struct hr_buf **bp, const void *data, size_t len)
{
    int rc = reserve(bp, len);
    if (rc)
        return rc;
    memcpy((*bp)->data + (*bp)->len, data, len);
    (*bp)->len += (uint32_t)len;
    return 0;
}

int hr_buf_printf(struct hr_buf **bp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return HR_EINVAL;
    int rc = reserve(bp, (size_t)n + 1);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf((*bp)->data + (*bp)->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    (*bp)->len += (uint32_t)n;
    return 0;
}
