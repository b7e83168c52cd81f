/* log.h - one-line log messages to stderr, with a level threshold. */
#ifndef HR_CORE_LOG_H
#define HR_CORE_LOG_H

enum { HR_LOG_ERROR, HR_LOG_WARN, HR_LOG_INFO, HR_LOG_DEBUG };
extern int hr_log_level;

void hr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define hr_error(...) hr_log(HR_LOG_ERROR, __VA_ARGS__)
#define hr_warn(...) hr_log(HR_LOG_WARN, __VA_ARGS__)
#define hr_info(...) hr_log(HR_LOG_INFO, __VA_ARGS__)
#define hr_debug(...)                                                                              \
    do {                                                                                           \
        if (hr_log_level >= HR_LOG_DEBUG)                                                          \
            hr_log(HR_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif
