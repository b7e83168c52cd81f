/* log.c - one-line log messages to stderr: "TIME herald LEVEL: message" for people, or one
 * JSON object per line ({"time","level","msg"}; access lines {"time","level","type":"access",
 * ...}) for machines. A line is built whole and written with one write(), so the lines of
 * several worker threads never interleave. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

int hr_log_level = HR_LOG_INFO;
int hr_log_format = HR_LOG_TEXT;
int hr_log_access = 0;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

#define LINE_MAX_BYTES 4096

int hr_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int hr_log_format_parse(const char *s)
{
    return strcmp(s, "text") == 0 ? HR_LOG_TEXT : strcmp(s, "json") == 0 ? HR_LOG_JSON : -1;
}

/* A line under construction: appends past the end are cut, the newline always fits. */
struct line {
    char b[LINE_MAX_BYTES];
    size_t n;
};

static void put(struct line *l, const char *s, size_t len)
{
    size_t room = sizeof l->b - 1 - l->n; /* one byte stays for the newline */
    if (len > room)
        len = room;
    memcpy(l->b + l->n, s, len);
    l->n += len;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void printf_(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(struct line *l, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* s as the contents of a JSON string: quotes, backslashes and control bytes escaped; bytes of
 * a text that is not valid UTF-8 escaped one by one (\u00XX), so every line stays valid JSON.
 * Stops, at a character's start, where less than TAIL_ROOM bytes would be left: what closes
 * the object always fits. */
#define TAIL_ROOM 160
static void put_json(struct line *l, const char *s, size_t len)
{
    int raw_ok = hr_utf8_valid(s, len);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (sizeof l->b - l->n < TAIL_ROOM && (!raw_ok || (c & 0xc0) != 0x80)) {
            put(l, "...", 3);
            return;
        }
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(l, e, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !raw_ok)) {
            printf_(l, "\\u%04x", c);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
}

static void stamp(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    char t[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    printf_(l, "%s.%03ldZ", t, ts.tv_nsec / 1000000);
}

static void emit(struct line *l)
{
    l->b[l->n++] = '\n';
    const char *p = l->b;
    size_t left = l->n;
    while (left) {
        ssize_t w = write(STDERR_FILENO, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* stderr gone: nothing else to tell */
        p += w;
        left -= (size_t)w;
    }
}

void hr_log(int level, const char *fmt, ...)
{
    if (level > hr_log_level)
        return;
    char msg[LINE_MAX_BYTES - 128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t mlen = n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
    if (n > 0 && (size_t)n >= sizeof msg) { /* cut: not inside a UTF-8 character */
        while (mlen && ((unsigned char)msg[mlen - 1] & 0xc0) == 0x80)
            mlen--;
        if (mlen && (unsigned char)msg[mlen - 1] >= 0xc0)
            mlen--;
    }
    struct line l = {.n = 0};
    if (hr_log_format == HR_LOG_JSON) {
        puts_(&l, "{\"time\":\"");
        stamp(&l);
        printf_(&l, "\",\"level\":\"%s\",\"msg\":\"", level_names[level]);
        put_json(&l, msg, mlen);
        puts_(&l, "\"}");
    } else {
        stamp(&l);
        printf_(&l, " herald %s: ", level_names[level]);
        put(&l, msg, mlen);
    }
    emit(&l);
}

static int secret_param(const char *name, size_t len)
{
    /* sid: an Engine.IO session id answers for its session as a token does */
    static const char *const names[] = {"token",    "access_token", "key",
                                        "password", "secret",       "sid"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == len && strncasecmp(name, names[i], len) == 0)
            return 1;
    return 0;
}

/* out[0..cap) filled from the left; once something does not fit, the end shows "...". */
struct cutbuf {
    char *b;
    size_t cap, n;
    int cut;
};

static void cb_put(struct cutbuf *c, const char *s, size_t len)
{
    if (c->cut)
        return;
    if (c->n + len >= c->cap) {
        len = c->cap - 1 - c->n;
        c->cut = 1;
    }
    memcpy(c->b + c->n, s, len);
    c->n += len;
}

size_t hr_log_redact_target(const char *t, size_t len, char *out, size_t outlen)
{
    if (outlen < 8) {
        if (outlen)
            out[0] = 0;
        return 0;
    }
    struct cutbuf c = {out, outlen, 0, 0};
    const char *q = memchr(t, '?', len);
    size_t i = q ? (size_t)(q - t) + 1 : len;
    cb_put(&c, t, i);
    while (i < len) {
        size_t end = i;
        while (end < len && t[end] != '&' && t[end] != '#')
            end++;
        const char *eq = memchr(t + i, '=', end - i);
        if (eq && secret_param(t + i, (size_t)(eq - (t + i)))) {
            cb_put(&c, t + i, (size_t)(eq - (t + i)) + 1);
            cb_put(&c, "[redacted]", 10);
        } else {
            cb_put(&c, t + i, end - i);
        }
        if (end < len && t[end] == '#') { /* a fragment (never sent by browsers): as it is */
            cb_put(&c, t + end, len - end);
            break;
        }
        if (end < len)
            cb_put(&c, "&", 1);
        i = end + 1;
    }
    if (c.cut)
        memcpy(out + c.n - 3, "...", 3);
    out[c.n] = 0;
    return c.n;
}

void hr_log_request(const struct hr_log_request *r)
{
    if (!hr_log_access || HR_LOG_INFO > hr_log_level)
        return;
    char target[1024];
    size_t tlen = hr_log_redact_target(r->target ? r->target : "", r->target ? r->target_len : 0,
                                       target, sizeof target);
    char length[24] = "-";
    if (r->length >= 0)
        snprintf(length, sizeof length, "%lld", r->length);
    struct line l = {.n = 0};
    if (hr_log_format == HR_LOG_JSON) {
        puts_(&l, "{\"time\":\"");
        stamp(&l);
        puts_(&l, "\",\"level\":\"info\",\"type\":\"access\",\"remote\":\"");
        put_json(&l, r->remote, strlen(r->remote));
        puts_(&l, "\",\"method\":\"");
        put_json(&l, r->method, strlen(r->method));
        puts_(&l, "\",\"target\":\"");
        put_json(&l, target, tlen);
        printf_(&l, "\",\"http\":\"1.%d\",\"status\":%d,\"length\":%s,\"ms\":%llu}", r->http_minor,
                r->status, r->length >= 0 ? length : "null", r->ms);
    } else {
        stamp(&l);
        printf_(&l, " herald access: %s \"%s ", r->remote, r->method);
        put_json(&l, target, tlen); /* quotes and control bytes escaped: one line, one field */
        printf_(&l, " HTTP/1.%d\" %d %s %llu ms", r->http_minor, r->status, length, r->ms);
    }
    emit(&l);
}
