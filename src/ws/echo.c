/* echo.c - /echo, the usual target of WebSocket conformance suites (Autobahn): every message
 * goes back whole with the same opcode. A peer that sends faster than it reads is paused. */
#include "echo.h"

#include <string.h>

#include "core/metrics.h"
#include "ws.h"

static void echo_message_cb(struct hr_ws *ws, int opcode, const uint8_t *data, size_t len)
{
    /* --max-msg-rate: over it the message is not echoed, the peer is told; if that persists
     * it is closed with 1008 */
    int q = hr_server_msg_take(ws->conn->srv, hr_ws_data(ws));
    if (q == HR_QUOTA_CLOSE) {
        hr_ws_close(ws, HR_WS_CLOSE_POLICY, "rate limit exceeded");
        return;
    }
    if (q == HR_QUOTA_OVER) {
        hr_ws_rate_error(ws);
        return;
    }
    hr_ws_send(ws, opcode, data, len);
}

/* Echo accepts the first subprotocol a client offers, so clients that insist on one can
 * be tested against it too. */
static int echo_subprotocol_cb(const struct hr_http_request *req, const char *offered, char *out,
                               size_t outsz, void *ud)
{
    size_t n = strcspn(offered, ", \t");
    if (n == 0 || n >= outsz)
        return 0;
    memcpy(out, offered, n);
    out[n] = '\0';
    return 1;
}

static void echo_open_cb(struct hr_ws *ws)
{
    HR_METRIC_INC(opened[HR_MT_ECHO]);
}

static void echo_close_cb(struct hr_ws *ws, uint16_t code)
{
    HR_METRIC_INC(closed[HR_MT_ECHO]);
}

static const struct hr_ws_handler echo = {
    .data_size = sizeof(struct hr_bucket), /* its --max-msg-rate */
    .subprotocol = echo_subprotocol_cb,
    .on_open = echo_open_cb,
    .on_message = echo_message_cb,
    .on_close = echo_close_cb,
};

void hr_ws_echo_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    if (!hr_ws_origin_refused(c, req, ud))
        hr_ws_upgrade(c, req, &echo, NULL);
}
