/* static.c - static files (RFC 9110 §8.8 validators, §13 conditional requests). The file is
 * opened and checked on libuv's thread pool and read there in chunks, so a large file or a
 * slow disk never blocks the event loop; output waits for the socket to drain. */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/text.h"

#define CHUNK (64 * 1024)

struct static_req {
    uv_work_t work;
    uv_fs_t fs;
    struct hr_conn *c;
    const struct hr_static *st;
    struct hr_buf *chunk;
    int fd;
    int status; /* from the worker: 0 ok, else the HTTP status */
    int head_only;
    uint64_t off, size;
    struct stat sb;
    char rel[PATH_MAX];
};

int hr_static_init(struct hr_static *st, const char *dir)
{
    if (!realpath(dir, st->root))
        return -errno;
    struct stat sb;
    if (stat(st->root, &sb) < 0)
        return -errno;
    if (!S_ISDIR(sb.st_mode))
        return -ENOTDIR;
    st->root_len = strlen(st->root);
    st->strip = 0;
    return 0;
}

int hr_static_resolve(const char *target, char *out, size_t outsz)
{
    if (*target != '/')
        return 400;
    /* decode into out, without the leading slash */
    const char *p = target + 1;
    long dl = hr_percent_decode(p, strcspn(p, "?#"), out, outsz, HR_PCT_STRICT | HR_PCT_NO_NUL);
    if (dl < 0)
        return dl == HR_ETOOBIG ? 414 : 400;
    size_t n = (size_t)dl;
    /* a relative path: no empty first segment ("//x", "/%2fx") */
    if (out[0] == '/')
        return 400;
    /* every segment: no "." or "..", no backslash tricks */
    const char *seg = out;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return 400;
        if (memchr(seg, '\\', len))
            return 400;
        if (!end)
            break;
        seg = end + 1;
    }
    if (n == 0 || out[n - 1] == '/') {
        static const char idx[] = "index.html";
        if (n + sizeof idx > outsz)
            return 414;
        memcpy(out + n, idx, sizeof idx);
    }
    return 0;
}

int hr_static_hidden(const char *rel)
{
    /* a segment "." never gets here (resolve refuses it); any other that starts with a dot
     * names a dotfile or lies inside a dot directory */
    for (const char *seg = rel;;) {
        if (seg[0] == '.' && seg[1] != '/' && seg[1] != '\0')
            return 1;
        const char *slash = strchr(seg, '/');
        if (!slash)
            return 0;
        seg = slash + 1;
    }
}

static int under_root(const struct hr_static *st, const char *real)
{
    return strncmp(real, st->root, st->root_len) == 0 &&
           (real[st->root_len] == '/' || real[st->root_len] == '\0');
}

/* Whether the deepest existing ancestor of path resolves inside the root. */
static int inside_root(const struct hr_static *st, const char *path)
{
    char probe[PATH_MAX], real[PATH_MAX];
    snprintf(probe, sizeof probe, "%s", path);
    for (;;) {
        char *slash = strrchr(probe, '/');
        if (!slash || (size_t)(slash - probe) <= st->root_len)
            return 1; /* reached the root itself */
        *slash = '\0';
        if (realpath(probe, real))
            return under_root(st, real);
    }
}

/* Thread pool: open the file and check that what was opened lies inside the root. */
static void resolve_work_cb(uv_work_t *w)
{
    struct static_req *r = w->data;
    char full[PATH_MAX], real[PATH_MAX], proc[64];
    r->fd = -1;
    if ((size_t)snprintf(full, sizeof full, "%s/%s", r->st->root, r->rel) >= sizeof full) {
        r->status = 414;
        return;
    }
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        /* "not found" through a symlink that leaves the root would tell what exists
         * outside it: the deepest existing ancestor must be inside the root too */
        r->status = !inside_root(r->st, full) || err == EACCES ? 403 : 404;
        return;
    }
    /* the opened file itself, whatever symlinks led there, must be under the root */
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(proc, real, sizeof real - 1);
    if (len < 0 || (size_t)len <= r->st->root_len ||
        memcmp(real, r->st->root, r->st->root_len) != 0 || real[r->st->root_len] != '/') {
        close(fd);
        r->status = 403;
        return;
    }
    if (fstat(fd, &r->sb) < 0) {
        close(fd);
        r->status = 404;
        return;
    }
    if (S_ISDIR(r->sb.st_mode)) {
        close(fd);
        r->status = 301;
        return;
    }
    if (!S_ISREG(r->sb.st_mode)) {
        close(fd);
        r->status = 403;
        return;
    }
    r->fd = fd;
    r->size = (uint64_t)r->sb.st_size;
}

static void req_free(struct static_req *r)
{
    if (r->fd >= 0) {
        uv_fs_t fs;
        uv_fs_close(NULL, &fs, r->fd, NULL); /* a regular file: close does not wait */
        uv_fs_req_cleanup(&fs);
    }
    if (r->chunk)
        hr_buf_unref(r->chunk);
    hr_conn_release(r->c);
    free(r);
}

static void http_date(time_t t, char *out, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* If-None-Match: a list of entity tags or "*" (RFC 9110 §13.1.2), weak comparison. */
static int etag_matches(const char *inm, const char *etag)
{
    const char *p = inm, *end = inm + strlen(inm), *tok;
    size_t n, elen = strlen(etag);
    while (hr_list_next(&p, end, &tok, &n)) {
        if (n == 1 && tok[0] == '*')
            return 1;
        if (n > 2 && tok[0] == 'W' && tok[1] == '/') {
            tok += 2;
            n -= 2;
        }
        if (n == elen && memcmp(tok, etag, n) == 0)
            return 1;
    }
    return 0;
}

static void read_next(struct static_req *r);

static void drain_cb(struct hr_conn *c, void *ud)
{
    read_next(ud);
}

static void read_cb(uv_fs_t *fs)
{
    struct static_req *r = fs->data;
    ssize_t n = fs->result;
    uv_fs_req_cleanup(fs);
    struct hr_conn *c = r->c;
    if (c->flags & HR_CONN_CLOSING) {
        req_free(r);
        return;
    }
    if (n <= 0) {
        /* the file shrank or failed under us: the promised length cannot be kept */
        hr_conn_close(c);
        req_free(r);
        return;
    }
    r->chunk->len = (uint32_t)n;
    r->off += (uint64_t)n;
    hr_http_send(c, r->chunk, 0, (uint32_t)n);
    hr_buf_unref(r->chunk);
    r->chunk = NULL;
    /* a reader that keeps up keeps the deadline away; one that stalls is dropped */
    hr_conn_set_timeout(c, c->srv->limits.idle_timeout_ms);
    if (c->flags & HR_CONN_CLOSING) {
        req_free(r);
        return;
    }
    if (r->off >= r->size) {
        hr_http_finish(c);
        req_free(r);
        return;
    }
    if (hr_conn_full(c))
        hr_http_on_drain(c, drain_cb, r);
    else
        read_next(r);
}

static void read_next(struct static_req *r)
{
    hr_http_on_drain(r->c, NULL, NULL);
    uint64_t left = r->size - r->off;
    size_t want = left < CHUNK ? (size_t)left : CHUNK;
    r->chunk = hr_buf_new(want);
    if (!r->chunk) {
        hr_conn_close(r->c);
        req_free(r);
        return;
    }
    uv_buf_t b = uv_buf_init(r->chunk->data, (unsigned)want);
    r->fs.data = r;
    if (uv_fs_read(r->c->srv->loop, &r->fs, r->fd, &b, 1, (int64_t)r->off, read_cb) < 0) {
        hr_conn_close(r->c);
        req_free(r);
    }
}

static void resolve_done_cb(uv_work_t *w, int status)
{
    struct static_req *r = w->data;
    struct hr_conn *c = r->c;
    if (c->flags & HR_CONN_CLOSING) {
        req_free(r);
        return;
    }
    struct hr_http_request *req = hr_http_current(c);
    if (r->status == 301) {
        /* a directory: send the browser to its slash form so relative links work */
        const char *t = hr_http_path(req);
        size_t plen = strcspn(t, "?#");
        char loc[PATH_MAX + 32];
        snprintf(loc, sizeof loc, "Location: %.*s/%s\r\n", (int)plen, t, t + plen);
        hr_http_error(c, 301, loc, "moved permanently");
        req_free(r);
        return;
    }
    if (r->status) {
        hr_http_error(c, r->status, NULL, r->status == 404 ? "not found" : "forbidden");
        req_free(r);
        return;
    }
    char etag[64], lm[40], extra[256];
    snprintf(etag, sizeof etag, "\"%" PRIx64 "-%" PRIx64 "\"",
             (uint64_t)r->sb.st_mtim.tv_sec * 1000000000u + (uint64_t)r->sb.st_mtim.tv_nsec,
             r->size);
    http_date(r->sb.st_mtime, lm, sizeof lm);
    snprintf(extra, sizeof extra, "ETag: %s\r\nLast-Modified: %s\r\nCache-Control: no-cache\r\n",
             etag, lm);

    const char *inm = hr_http_header_get(req, "If-None-Match", NULL);
    const char *ims = hr_http_header_get(req, "If-Modified-Since", NULL);
    int not_modified = 0;
    if (inm) {
        not_modified = etag_matches(inm, etag);
    } else if (ims) {
        struct tm tm = {0};
        const char *end = strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (end && *end == '\0' && timegm(&tm) >= r->sb.st_mtime)
            not_modified = 1;
    }
    if (not_modified) {
        hr_http_respond(c, 304, NULL, extra, NULL, 0);
        req_free(r);
        return;
    }
    if (hr_http_begin(c, 200, hr_mime_type(r->rel), extra, r->size) < 0 ||
        req->method == HTTP_HEAD || r->size == 0) {
        if (!(c->flags & HR_CONN_CLOSING))
            hr_http_finish(c);
        req_free(r);
        return;
    }
    read_next(r);
}

void hr_static_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    struct static_req *r = calloc(1, sizeof(*r));
    if (!r) {
        hr_http_error(c, 503, NULL, "out of memory");
        return;
    }
    const struct hr_static *st = ud;
    const char *path = hr_http_path(req);
    int status = strlen(path) >= st->strip
                     ? hr_static_resolve(path + st->strip, r->rel, sizeof r->rel)
                     : 400;
    if (status) {
        free(r);
        hr_http_error(c, status, NULL, status == 414 ? "path too long" : "bad path");
        return;
    }
    /* dotfiles (.env, .git/, .htpasswd) are often secrets copied along with the site: answer
     * as if they did not exist, as express.static does by default (dotfiles: 'ignore') */
    if (hr_static_hidden(r->rel)) {
        free(r);
        hr_http_error(c, 404, NULL, "not found");
        return;
    }
    r->c = c;
    r->st = ud;
    r->fd = -1;
    r->work.data = r;
    hr_conn_hold(c);
    if (uv_queue_work(c->srv->loop, &r->work, resolve_work_cb, resolve_done_cb) < 0) {
        hr_conn_release(c);
        free(r);
        hr_http_error(c, 503, NULL, "busy");
    }
}
