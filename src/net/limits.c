/* limits.c - the per-client limits that protocols above ask for while serving (the long-polls
 * an address holds, a client's message rate, the publisher key of a connection), apart from
 * the listener so that what uses them does not pull it in. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/quota.h"
#include "server.h"

/* The count key of a peer address, or 0 when it has none we can count. */
int hr_net_ip_key(const struct sockaddr_storage *ss, uint8_t key[9])
{
    memset(key, 0, 9);
    if (ss->ss_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        return 1;
    }
    if (ss->ss_family != AF_INET6)
        return 0;
    const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, 12) == 0) {
        key[0] = 4;
        memcpy(key + 1, a + 12, 4);
    } else {
        key[0] = 6;
        memcpy(key + 1, a, 8);
    }
    return 1;
}

int hr_conn_poll_take(struct hr_conn *c)
{
    struct hr_server *srv = c->srv;
    struct hr_ip_count *e = c->ip;
    uint32_t max = srv->limits.max_lp_per_ip;
    if (!e || !max || (c->flags & HR_CONN_POLL))
        return 1;
    struct hr_server_group *g = srv->group;
    if (g)
        uv_mutex_lock(&g->lock);
    int ok = e->polls < max;
    if (ok)
        e->polls++;
    if (g)
        uv_mutex_unlock(&g->lock);
    if (!ok) {
        hr_quota_hit(HR_QUOTA_LP, max, uv_now(srv->loop));
        return 0;
    }
    c->flags |= HR_CONN_POLL;
    return 1;
}

int hr_server_msg_take(struct hr_server *srv, struct hr_bucket *b)
{
    struct hr_rate r = {srv->limits.max_msg_rate, srv->limits.max_msg_burst};
    uint64_t now = uv_now(srv->loop);
    int rc = hr_bucket_take(b, &r, now);
    if (rc != HR_QUOTA_OK)
        hr_quota_hit(rc == HR_QUOTA_CLOSE ? HR_QUOTA_MSG_CLOSED : HR_QUOTA_MSG, r.rate, now);
    return rc;
}

void hr_conn_poll_release(struct hr_conn *c)
{
    struct hr_ip_count *e = c->ip;
    if (!(c->flags & HR_CONN_POLL) || !e)
        return;
    struct hr_server_group *g = c->srv->group;
    if (g)
        uv_mutex_lock(&g->lock);
    e->polls--;
    c->flags &= ~HR_CONN_POLL;
    if (g)
        uv_mutex_unlock(&g->lock);
}

size_t hr_conn_peer_addr(const struct hr_conn *c, char *out, size_t outlen)
{
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    out[0] = 0;
    if (getpeername(c->fd, (struct sockaddr *)&peer, &plen) < 0)
        return 0;
    const void *a =
        peer.ss_family == AF_INET6  ? (const void *)&((struct sockaddr_in6 *)&peer)->sin6_addr
        : peer.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&peer)->sin_addr
                                    : NULL;
    if (!a || !inet_ntop(peer.ss_family, a, out, (socklen_t)outlen)) {
        out[0] = 0;
        return 0;
    }
    return strlen(out);
}

size_t hr_conn_peer_key(const struct hr_conn *c, char *out, size_t outlen)
{
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    uint8_t key[9];
    char addr[INET6_ADDRSTRLEN];
    out[0] = 0;
    if (getpeername(c->fd, (struct sockaddr *)&peer, &plen) < 0 || !hr_net_ip_key(&peer, key))
        return 0;
    if (key[0] == 4) {
        inet_ntop(AF_INET, key + 1, addr, sizeof addr);
    } else {
        uint8_t a[16] = {0};
        memcpy(a, key + 1, 8);
        inet_ntop(AF_INET6, a, addr, sizeof addr);
    }
    int n = snprintf(out, outlen, "ip:%s%s", addr, key[0] == 6 ? "/64" : "");
    return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}
