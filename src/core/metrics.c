/* metrics.c - per-worker counter blocks (metrics.h) and their sums. */
#include "metrics.h"

#include <stddef.h>

struct hr_metrics hr_metrics_blocks[HR_METRICS_BLOCKS];
_Thread_local struct hr_metrics *hr_metrics_self = &hr_metrics_blocks[0];

const double hr_metrics_lat_bounds[HR_MT_LAT_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static const char *const transport_names[HR_MT_TRANSPORTS] = {"websocket", "sse",      "longpoll",
                                                              "poll",      "socketio", "echo"};
static const char *const refusal_names[HR_MR_REASONS] = {
    "bad_request", "unauthorized", "forbidden",   "not_found", "method_not_allowed",
    "too_large",   "rate_limited", "unavailable", "other",     "connection_limit"};

const char *hr_metrics_transport_name(int t)
{
    return t >= 0 && t < HR_MT_TRANSPORTS ? transport_names[t] : "?";
}

const char *hr_metrics_refusal_name(int r)
{
    return r >= 0 && r < HR_MR_REASONS ? refusal_names[r] : "?";
}

int hr_metrics_refusal_of(int status)
{
    switch (status) {
    case 400: return HR_MR_BAD_REQUEST;
    case 401: return HR_MR_UNAUTHORIZED;
    case 403: return HR_MR_FORBIDDEN;
    case 404: return HR_MR_NOT_FOUND;
    case 405: return HR_MR_METHOD;
    case 413:
    case 431: return HR_MR_TOO_LARGE;
    case 429: return HR_MR_RATE;
    case 503: return HR_MR_UNAVAILABLE;
    default: return status >= 400 ? HR_MR_OTHER : -1;
    }
}

void hr_metrics_refused(int status)
{
    int r = hr_metrics_refusal_of(status);
    if (r >= 0)
        HR_METRIC_INC(refused[r]);
}

void hr_metrics_publish_latency(uint64_t ns)
{
    double s = (double)ns / 1e9;
    int i = 0;
    while (i < HR_MT_LAT_BUCKETS && s > hr_metrics_lat_bounds[i])
        i++;
    HR_METRIC_INC(lat[i]);
    HR_METRIC_ADD(lat_sum_ns, ns);
    HR_METRIC_INC(lat_count);
}

uint64_t hr_metrics_sum(size_t offset)
{
    uint64_t n = 0;
    for (size_t k = 0; k < HR_METRICS_BLOCKS; k++)
        n += hr_counter_get((hr_counter *)((char *)&hr_metrics_blocks[k] + offset));
    return n;
}
