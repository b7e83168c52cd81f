/* echo.c - /echo, the usual target of WebSocket conformance suites (Autobahn): every message
 * goes back whole with the same opcode. A peer that sends faster than it reads is paused. */
#include "echo.h"

#include <string.h>

#include "ws.h"

static void echo_message_cb(struct hr_ws *ws, int opcode, const uint8_t *data, size_t len)
{
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

static const struct hr_ws_handler echo = {
    .subprotocol = echo_subprotocol_cb,
    .on_message = echo_message_cb,
};

void hr_ws_echo_handler(struct hr_conn *c, struct hr_http_request *req, void *ud)
{
    if (!hr_ws_origin_refused(c, req, ud))
        hr_ws_upgrade(c, req, &echo, NULL);
}
