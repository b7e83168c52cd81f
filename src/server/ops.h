/* ops.h - what operators ask a running herald: GET /metrics (the Prometheus text format, every
 * worker's counters summed, process figures from /proc/self), GET /healthz (the loop answers)
 * and GET /readyz (accepting, and the store could write its last commit). */
#ifndef HR_SERVER_OPS_H
#define HR_SERVER_OPS_H

#include <stddef.h>
#include <stdint.h>

struct hr_io;
struct hr_router;

/* Who may scrape /metrics (--metrics-allow): addresses and CIDR blocks, IPv4 or IPv6. */
#define HR_OPS_ALLOW_MAX 32
struct hr_ops_net {
    uint8_t v6;       /* family: 0 IPv4 (addr[0..3]), 1 IPv6 */
    uint8_t prefix;   /* bits that must match */
    uint8_t addr[16]; /* network byte order */
};
struct hr_ops_allow {
    uint32_t n;
    struct hr_ops_net net[HR_OPS_ALLOW_MAX];
};

/* Parse a comma-separated list of "any", "none", "loopback", addresses and ADDR/BITS blocks.
 * 0, or HR_EINVAL with a reason in err. */
int hr_ops_allow_parse(struct hr_ops_allow *a, const char *list, char *err, size_t errlen);
/* Whether an address (4 or 16 bytes; an IPv4-mapped IPv6 address is taken as IPv4) is in a. */
int hr_ops_allow_has(const struct hr_ops_allow *a, const uint8_t *addr, size_t len);

/* Add /metrics, /healthz and /readyz to r's router, with r's configuration. 0 or an error
 * (a line on stderr). */
int hr_ops_route(struct hr_io *r, struct hr_router *router);

/* The exposition text (for tests): a malloc'ed string, NULL when out of memory. */
char *hr_ops_metrics_text(struct hr_io *r, size_t *len);

#endif
