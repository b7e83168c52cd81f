/* clock.h - the wall clock in milliseconds: what tokens' exp and history ages are measured
 * against (the loop's uv_now is monotonic and serves everything else). */
#ifndef HR_CORE_CLOCK_H
#define HR_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Unix time in ms. */
static inline uint64_t hr_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
