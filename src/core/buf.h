/* buf.h - reference-counted byte buffers: one broadcast frame shared by every write queue
 * that sends it (the h2o shared-chunk idea). The only refcounted object in herald. */
#ifndef HR_CORE_BUF_H
#define HR_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct hr_buf {
    uint32_t refs;
    uint32_t len; /* bytes used in data */
    uint32_t cap;
    char data[];
};

/* A new buffer with refs == 1 and len == 0, or NULL. */
struct hr_buf *hr_buf_new(size_t cap);
/* A new buffer holding a copy of len bytes. */
struct hr_buf *hr_buf_from(const void *data, size_t len);
static inline struct hr_buf *hr_buf_ref(struct hr_buf *b)
{
    b->refs++;
    return b;
}
void hr_buf_unref(struct hr_buf *b);
/* Append; grows only while refs == 1. Returns 0 or HR_ENOMEM / HR_ETOOBIG. */
int hr_buf_append(struct hr_buf **bp, const void *data, size_t len);
int hr_buf_printf(struct hr_buf **bp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Capacity at least cap (exactly cap when it grows), for a writer that knows how much is
 * coming; *bp may be NULL (a new buffer). Only while refs == 1. 0 or HR_ENOMEM / HR_ETOOBIG. */
int hr_buf_reserve(struct hr_buf **bp, size_t cap);
/* Give back the capacity above max(cap, len), only while refs == 1: a buffer about to be kept
 * (a message in the history) costs what it holds. A shrinking realloc: the bytes stay put. */
void hr_buf_shrink(struct hr_buf **bp, size_t cap);

/* Count of live buffers, for tests and leak checks. */
extern _Thread_local long hr_buf_live;

#endif
