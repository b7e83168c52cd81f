/* log.h - one-line log messages to stderr, with a level threshold: text for people, or JSON
 * lines for machines (--log-format json); an access log line per HTTP answer (--access-log). */
#ifndef HR_CORE_LOG_H
#define HR_CORE_LOG_H

#include <stddef.h>

enum { HR_LOG_ERROR, HR_LOG_WARN, HR_LOG_INFO, HR_LOG_DEBUG };
enum { HR_LOG_TEXT, HR_LOG_JSON };
extern int hr_log_level;  /* lines above it are not written */
extern int hr_log_format; /* HR_LOG_TEXT or HR_LOG_JSON */
extern int hr_log_access; /* write access lines (hr_log_request) */

void hr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define hr_error(...) hr_log(HR_LOG_ERROR, __VA_ARGS__)
#define hr_warn(...) hr_log(HR_LOG_WARN, __VA_ARGS__)
#define hr_info(...) hr_log(HR_LOG_INFO, __VA_ARGS__)
#define hr_debug(...)                                                                              \
    do {                                                                                           \
        if (hr_log_level >= HR_LOG_DEBUG)                                                          \
            hr_log(HR_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

/* One HTTP answer, as the access log records it (at the answer's head: a stream or a
 * WebSocket is logged when it starts). length: the body's, or -1 when it lasts until the
 * connection ends. */
struct hr_log_request {
    const char *remote; /* the client's address */
    const char *method;
    const char *target; /* as received; query parameters that carry secrets are redacted */
    size_t target_len;
    int http_minor; /* HTTP/1.x */
    int status;
    long long length;
    unsigned long long ms; /* from the complete request to its answer */
};
void hr_log_request(const struct hr_log_request *r);

/* Copy a request target into out (NUL-terminated, cut at outlen with "..."), the values of
 * query parameters named token, access_token, key, password, secret or sid (any case) replaced by
 * "[redacted]": a token in ?token= must not reach a log. Returns the length written. */
size_t hr_log_redact_target(const char *t, size_t len, char *out, size_t outlen);

/* Parse a --log-level or --log-format value: the level or format, or -1. */
int hr_log_level_parse(const char *s);
int hr_log_format_parse(const char *s);

#endif
