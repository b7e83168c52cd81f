/* echo.h - /echo: a WebSocket endpoint that sends every message back with its opcode. */
#ifndef HR_WS_ECHO_H
#define HR_WS_ECHO_H

#include "http/http.h"

/* ud: the origins that may open it (const struct hr_origins *), NULL for any. */
void hr_ws_echo_handler(struct hr_conn *c, struct hr_http_request *req, void *ud);

#endif
