/* static.h - static files from a directory: Content-Type by extension, ETag / Last-Modified
 * with 304, HEAD, path traversal refused, files read off the event loop in chunks. */
#ifndef HR_HTTP_STATIC_H
#define HR_HTTP_STATIC_H

#include <limits.h>
#include <stddef.h>

#include "http.h"

struct hr_static {
    char root[PATH_MAX]; /* canonical (realpath) root directory */
    size_t root_len;
    /* a route prefix the files are mounted under ("/admin" serves /admin/x from root/x),
     * taken off the request path; 0 when served at / (hr_static_init sets 0) */
    size_t strip;
};

/* Returns 0, or a negative errno (an HR code: -ENOENT is HR_ENOTFOUND) when the directory
 * cannot be used. */
int hr_static_init(struct hr_static *st, const char *dir);
/* The route handler (GET, HEAD); ud is the struct hr_static. */
void hr_static_handler(struct hr_conn *c, struct hr_http_request *req, void *ud);

/* Decode the path part of a request target into a relative file path under the root:
 * percent-decoding, "index.html" for a trailing slash. Returns 0, or the HTTP status to
 * answer (400) for NUL bytes, bad escapes, "." or ".." segments. Pure. */
int hr_static_resolve(const char *target, char *out, size_t outsz);

/* Whether a relative path from hr_static_resolve names a dotfile or passes through a dot
 * directory: a segment that starts with '.' (".env", ".git/config", ".well-known/x"). Pure. */
int hr_static_hidden(const char *rel);

/* The Content-Type for a file name, by extension. */
const char *hr_mime_type(const char *path);

#endif
