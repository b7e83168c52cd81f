/* test_http_response.c - the status line of src/http/response.c: every status herald answers
 * with carries its registered reason phrase (RFC 9110 §15), and no code gets a made-up one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/http.h"

/* Every status herald sends, with where it comes from and its phrase from the IANA registry
 * (written out here, not taken from the table under test). */
static const struct {
    int status;
    const char *reason;
} emitted[] = {
    {100, "Continue"},                        /* Expect: 100-continue */
    {101, "Switching Protocols"},             /* WebSocket upgrades */
    {200, "OK"},                              /* files, polling, publish */
    {204, "No Content"},                      /* CORS preflight, Engine.IO POST */
    {301, "Moved Permanently"},               /* a directory without its slash */
    {304, "Not Modified"},                    /* conditional GET */
    {400, "Bad Request"},                     /* malformed requests and input */
    {403, "Forbidden"},                       /* symlinks out of --public, Engine.IO "Forbidden" */
    {404, "Not Found"},                       /* no route, no file, dotfiles */
    {405, "Method Not Allowed"},              /* router */
    {408, "Request Timeout"},                 /* --header-timeout */
    {413, "Content Too Large"},               /* --max-body, --max-payload */
    {414, "URI Too Long"},                    /* static paths over PATH_MAX */
    {426, "Upgrade Required"},                /* GET /echo without an upgrade */
    {431, "Request Header Fields Too Large"}, /* --max-head */
    {500, "Internal Server Error"},           /* an answer that cannot be built */
    {501, "Not Implemented"},                 /* unknown transfer codings */
    {503, "Service Unavailable"},             /* out of memory, store or budget full */
    {505, "HTTP Version Not Supported"},      /* HTTP/2 request line */
};

static void test_emitted_statuses_have_their_phrase(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(emitted) / sizeof(emitted[0]); i++) {
        const char *got = hr_http_reason(emitted[i].status);
        assert_non_null(got);
        if (strcmp(got, emitted[i].reason) != 0)
            fail_msg("reason(%d) = \"%s\", want \"%s\"", emitted[i].status, got, emitted[i].reason);
    }
}

/* RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ), or nothing at all. Any
 * code in range gets one that fits the status line; none says "Unknown". */
static void test_every_code_fits_the_status_line(void **state)
{
    (void)state;
    int named = 0;
    for (int st = 100; st <= 599; st++) {
        const char *r = hr_http_reason(st);
        assert_non_null(r);
        if (!r[0])
            continue;
        named++;
        if (strcmp(r, "Unknown") == 0)
            fail_msg("reason(%d) = \"Unknown\"", st);
        for (const char *p = r; *p; p++)
            if (!(*p == '\t' || *p == ' ' || (*p > 0x20 && *p < 0x7f)))
                fail_msg("reason(%d) has byte 0x%02x", st, (unsigned char)*p);
        if (r[0] == ' ' || r[strlen(r) - 1] == ' ')
            fail_msg("reason(%d) = \"%s\": stray space", st, r);
    }
    assert_true(named >= (int)(sizeof(emitted) / sizeof(emitted[0])));
    assert_string_equal(hr_http_reason(599), "");
    assert_string_equal(hr_http_reason(0), "");
    assert_string_equal(hr_http_reason(1000), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emitted_statuses_have_their_phrase),
        cmocka_unit_test(test_every_code_fits_the_status_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
