/* test_ws_handshake.c - src/ws/handshake.c: RFC 6455 §4.2.1 request checks and the
 * §4.2.2 / §1.3 Sec-WebSocket-Accept computation, on requests parsed from raw text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/parser.h"
#include "ws/handshake.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define HOST "Host: server.example.com\r\n"
#define UPG "Upgrade: websocket\r\n"
#define CONN "Connection: Upgrade\r\n"
#define VER "Sec-WebSocket-Version: 13\r\n"
#define SKEY "Sec-WebSocket-Key: " KEY "\r\n"
#define GET "GET /chat HTTP/1.1\r\n"

/* Parse raw request text the way a connection does, then check it. */
static void check(const char *raw, struct hr_ws_handshake *hs)
{
    struct hr_http_parser p;
    size_t used;

    hr_http_parser_init(&p, 8192, 1024);
    int r = hr_http_parse(&p, raw, strlen(raw), &used);
    if (r != HR_HTTP_UPGRADE && r != HR_HTTP_REQUEST)
        fail_msg("request did not parse (%d): %s", r, raw);
    hr_ws_handshake_check(&p.req, hs);
    hr_http_parser_free(&p);
}

struct hs_case {
    const char *name;
    const char *raw;
    int status;
    const char *why; /* a word of the expected error text, so the right rule fired */
};

/* clang-format off */
static const struct hs_case cases[] = {
    {"valid (RFC 6455 §1.3 example)", GET HOST UPG CONN SKEY VER "\r\n", 0, NULL},
    {"lowercase names and tokens",
     "GET /chat HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
     "sec-websocket-key: " KEY "\r\nsec-websocket-version: 13\r\n\r\n", 0, NULL},
    {"mixed-case tokens",
     "GET /chat HTTP/1.1\r\nHOST: a\r\nUPGRADE: WebSocket\r\nCONNECTION: UpGrAdE\r\n"
     "SEC-WEBSOCKET-KEY: " KEY "\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n", 0, NULL},
    {"Connection list", GET HOST UPG "Connection: keep-alive, Upgrade\r\n" SKEY VER "\r\n", 0,
     NULL},
    {"Connection repeated",
     GET HOST UPG "Connection: keep-alive\r\nConnection: Upgrade\r\n" SKEY VER "\r\n", 0, NULL},
    {"Upgrade list", GET HOST "Upgrade: h2c, websocket\r\n" CONN SKEY VER "\r\n", 0, NULL},
    {"whitespace around values",
     GET HOST "Upgrade:   websocket  \r\n" CONN "Sec-WebSocket-Key:  " KEY "  \r\n"
     "Sec-WebSocket-Version:  13 \r\n\r\n", 0, NULL},
    {"HTTP/1.1 with other headers",
     GET HOST "User-Agent: t\r\n" UPG "Origin: http://example.com\r\n" CONN SKEY VER
     "Sec-WebSocket-Protocol: chat\r\n\r\n", 0, NULL},

    {"POST", "POST /chat HTTP/1.1\r\n" HOST UPG CONN SKEY VER "\r\n", 405, "GET"},
    {"HEAD", "HEAD /chat HTTP/1.1\r\n" HOST UPG CONN SKEY VER "\r\n", 405, "GET"},
    {"HTTP/1.0", "GET /chat HTTP/1.0\r\n" HOST UPG CONN SKEY VER "\r\n", 400, "HTTP/1.1"},
    {"missing Host", GET UPG CONN SKEY VER "\r\n", 400, "Host"},

    {"no Upgrade header", GET HOST CONN SKEY VER "\r\n", 426, "upgrade"},
    {"plain GET", GET HOST "\r\n", 426, "upgrade"},
    {"Upgrade to something else", GET HOST "Upgrade: h2c\r\n" CONN SKEY VER "\r\n", 426, "upgrade"},
    {"Upgrade token as substring", GET HOST "Upgrade: websockets\r\n" CONN SKEY VER "\r\n",
     426, "upgrade"},
    {"version 8", GET HOST UPG CONN SKEY "Sec-WebSocket-Version: 8\r\n\r\n", 426, "Version"},
    {"version 130", GET HOST UPG CONN SKEY "Sec-WebSocket-Version: 130\r\n\r\n", 426,
     "Version"},
    {"version list", GET HOST UPG CONN SKEY "Sec-WebSocket-Version: 13, 8\r\n\r\n", 426,
     "Version"},
    {"missing version", GET HOST UPG CONN SKEY "\r\n", 426, "Version"},

    {"Connection without upgrade", GET HOST UPG "Connection: keep-alive\r\n" SKEY VER "\r\n",
     400, "Connection"},
    {"no Connection header", GET HOST UPG SKEY VER "\r\n", 400, "Connection"},
    {"key of 15 bytes", GET HOST UPG CONN "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n" VER
     "\r\n", 400, "16 bytes"},
    {"key of 17 bytes", GET HOST UPG CONN "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n"
     VER "\r\n", 400, "16 bytes"},
    {"key of 18 bytes", GET HOST UPG CONN "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA\r\n"
     VER "\r\n", 400, "16 bytes"},
    {"key not base64", GET HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n"
     VER "\r\n", 400, "16 bytes"},
    {"key with bad padding", GET HOST UPG CONN
     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ=Q=\r\n" VER "\r\n", 400, "16 bytes"},
    {"empty key", GET HOST UPG CONN "Sec-WebSocket-Key: \r\n" VER "\r\n", 400, "16 bytes"},
    {"missing key", GET HOST UPG CONN VER "\r\n", 400, "missing Sec-WebSocket-Key"},
    {"two keys", GET HOST UPG CONN SKEY SKEY VER "\r\n", 400, "repeated"},
};
/* clang-format on */

static void test_handshake_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hr_ws_handshake hs;
        memset(&hs, 0xAA, sizeof(hs));
        check(cases[i].raw, &hs);
        if (hs.status != cases[i].status)
            fail_msg("case \"%s\": expected %d, got %d (%s)", cases[i].name, cases[i].status,
                     hs.status, hs.error ? hs.error : "no error");
        if (hs.status) {
            assert_non_null(hs.error);
            assert_true(strlen(hs.error) > 0);
            if (cases[i].why && !strstr(hs.error, cases[i].why))
                fail_msg("case \"%s\": error \"%s\" lacks \"%s\"", cases[i].name, hs.error,
                         cases[i].why);
        } else {
            assert_null(hs.error);
            assert_string_equal(hs.accept, ACCEPT);
        }
    }
}

static void test_accept_key(void **state)
{
    (void)state;
    char out[29];

    /* RFC 6455 §1.3 */
    hr_ws_accept_key(KEY, strlen(KEY), out);
    assert_string_equal(out, ACCEPT);
    /* A second pair, computed independently (Python hashlib + base64): 16 zero bytes. */
    hr_ws_accept_key("AAAAAAAAAAAAAAAAAAAAAA==", 24, out);
    assert_string_equal(out, "ICX+Yqv66kxgM0FcWaLWlFLwTAI=");
    /* Only key_len bytes are hashed. */
    hr_ws_accept_key(KEY "trailing", 24, out);
    assert_string_equal(out, ACCEPT);
    assert_int_equal(strlen(out), 28);
}

static void test_accept_in_handshake_uses_trimmed_key(void **state)
{
    (void)state;
    struct hr_ws_handshake hs;
    check(GET HOST UPG CONN "Sec-WebSocket-Key:\t" KEY "\t\r\n" VER "\r\n", &hs);
    assert_int_equal(hs.status, 0);
    assert_string_equal(hs.accept, ACCEPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_table),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_accept_in_handshake_uses_trimmed_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
