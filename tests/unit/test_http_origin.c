/* test_http_origin.c - src/http/origin.c: origins serialized (RFC 6454 §6.1: scheme and host
 * lowered, the default port left out), lists parsed once (*, none, scheme://host[:port],
 * null), a request's Origin matched against them and the request's own origin (its Host),
 * and the CORS headers written for each verdict. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "http/origin.h"

static void serializes(void **state)
{
    static const char *const same[][2] = {
        {"http://a.test", "http://a.test"},
        {"HTTP://Example.COM", "http://example.com"},
        {"http://a.test:80", "http://a.test"},
        {"http://a.test:0080", "http://a.test"},
        {"https://a.test:443", "https://a.test"},
        {"https://a.test:80", "https://a.test:80"},
        {"http://a.test:443", "http://a.test:443"},
        {"ws://a.test:80", "ws://a.test"},
        {"wss://a.test:443", "wss://a.test"},
        {"http://localhost:8080", "http://localhost:8080"},
        {"http://127.0.0.1:3000", "http://127.0.0.1:3000"},
        {"http://[::1]:3000", "http://[::1]:3000"},
        {"http://[::1]:80", "http://[::1]"},
        {"http://[FE80::1]", "http://[fe80::1]"},
        {"chrome-extension://abc", "chrome-extension://abc"},
        {"app+x.y-z://h:1", "app+x.y-z://h:1"},
        {"http://xn--bcher-kva.test", "http://xn--bcher-kva.test"},
        {"http://a.test:65535", "http://a.test:65535"},
    };
    char out[HR_ORIGIN_MAX + 1];
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        long n = hr_origin_serialize(same[i][0], strlen(same[i][0]), out, sizeof out);
        if (n < 0 || strcmp(out, same[i][1]) != 0 || (size_t)n != strlen(same[i][1]))
            fail_msg("%s: %ld '%s', want '%s'", same[i][0], n, n >= 0 ? out : "", same[i][1]);
    }
    static const char *const bad[] = {
        "",
        "null",
        "a.test",
        "http:/a.test",
        "http://",
        "http:///",
        "http://a.test/",
        "http://a.test/path",
        "http://a.test?x=1",
        "http://a.test#f",
        "http://a.test:",
        "http://a.test:65536",
        "http://a.test:123456",
        "http://a.test:8a",
        "http://a.test:-1",
        "http://user@a.test",
        "http://user:pw@a.test",
        "http://a test",
        "http://%61.test",
        "http://[::1",
        "http://[]",
        "http://[::g]",
        "http://[::1]x",
        "1http://a.test",
        "://a.test",
        " http://a.test",
        "http://a.test ",
        "http://a.test\r\nX: y",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (hr_origin_serialize(bad[i], strlen(bad[i]), out, sizeof out) != HR_EINVAL)
            fail_msg("'%s' was taken for an origin", bad[i]);
    /* a NUL inside is not an origin's; a buffer too small refuses, never truncates */
    assert_int_equal(hr_origin_serialize("http://a\0b", 10, out, sizeof out), HR_EINVAL);
    assert_int_equal(hr_origin_serialize("http://a.test:8080", 18, out, 18), HR_EINVAL);
    assert_int_equal(hr_origin_serialize("http://a.test:8080", 18, out, 19), 18);
    assert_int_equal(hr_origin_serialize("http://a.test:80", 16, out, 14), 13);
}

static void parses_lists(void **state)
{
    struct hr_origins o;
    char err[160];
    assert_int_equal(hr_origins_parse(&o, "*", err, sizeof err), 0);
    assert_true(o.any);
    hr_origins_free(&o);
    assert_int_equal(hr_origins_parse(&o, " none ", err, sizeof err), 0);
    assert_false(o.any);
    assert_int_equal(o.n, 0);
    hr_origins_free(&o);
    assert_int_equal(hr_origins_parse(&o,
                                      " HTTPS://App.Example.com:443 ,http://localhost:8080,, null",
                                      err, sizeof err),
                     0);
    assert_false(o.any);
    assert_int_equal(o.n, 3);
    assert_string_equal(o.list, "https://app.example.com");
    assert_string_equal(o.list + strlen(o.list) + 1, "http://localhost:8080");
    assert_string_equal(o.list + o.bytes - 5, "null");
    hr_origins_free(&o);
    assert_null(o.list);

    static const char *const bad[] = {
        "",
        " , ",
        "*,http://a.test",
        "http://a.test,none",
        "none,*",
        "http://a.test/",
        "a.test",
        "http://a.test,https://b.test/x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (hr_origins_parse(&o, bad[i], err, sizeof err) != HR_EINVAL || !err[0])
            fail_msg("'%s' was taken for a list", bad[i]);
        assert_null(o.list);
    }
    assert_int_equal(hr_origins_parse(&o, "http://a.test,ftp:/x", err, sizeof err), HR_EINVAL);
    assert_string_equal(err, "'ftp:/x' is not an origin (scheme://host[:port], no path)");
    char longer[HR_ORIGIN_MAX + 16] = "http://";
    memset(longer + 7, 'a', HR_ORIGIN_MAX);
    longer[HR_ORIGIN_MAX + 7] = 0;
    assert_int_equal(hr_origins_parse(&o, longer, err, sizeof err), HR_EINVAL);
}

static int check(const struct hr_origins *o, const char *origin, const char *host)
{
    return hr_origins_check(o, origin, strlen(origin), host, host ? strlen(host) : 0, 0);
}

static void matches(void **state)
{
    struct hr_origins o;
    char err[160];
    assert_int_equal(
        hr_origins_parse(&o, "http://good.test,https://app.test:8443", err, sizeof err), 0);
    assert_int_equal(check(&o, "http://good.test", "h:1"), HR_ORIGIN_ALLOWED);
    assert_int_equal(check(&o, "HTTP://GOOD.test:80", "h:1"), HR_ORIGIN_ALLOWED);
    assert_int_equal(check(&o, "https://app.test:8443", NULL), HR_ORIGIN_ALLOWED);
    assert_int_equal(check(&o, "https://app.test", NULL), HR_ORIGIN_REFUSED);
    assert_int_equal(check(&o, "https://good.test", NULL), HR_ORIGIN_REFUSED);
    assert_int_equal(check(&o, "http://good.test:8080", NULL), HR_ORIGIN_REFUSED);
    assert_int_equal(check(&o, "http://evil.test", "h:1"), HR_ORIGIN_REFUSED);
    assert_int_equal(check(&o, "http://good.test.evil.test", NULL), HR_ORIGIN_REFUSED);
    assert_int_equal(check(&o, "http://good.test/", NULL), HR_ORIGIN_REFUSED);
    assert_int_equal(check(&o, "null", NULL), HR_ORIGIN_REFUSED);
    assert_int_equal(check(&o, "", NULL), HR_ORIGIN_REFUSED);
    /* the request's own origin, as its Host names it (http here) */
    assert_int_equal(check(&o, "http://127.0.0.1:3000", "127.0.0.1:3000"), HR_ORIGIN_ALLOWED);
    assert_int_equal(check(&o, "http://Herald.test", "herald.test:80"), HR_ORIGIN_ALLOWED);
    assert_int_equal(check(&o, "http://[::1]:3000", "[::1]:3000"), HR_ORIGIN_ALLOWED);
    assert_int_equal(check(&o, "http://127.0.0.1:3001", "127.0.0.1:3000"), HR_ORIGIN_REFUSED);
    assert_int_equal(check(&o, "https://127.0.0.1:3000", "127.0.0.1:3000"), HR_ORIGIN_REFUSED);
    assert_int_equal(check(&o, "http://127.0.0.1:3000", "127.0.0.1:3000/x"), HR_ORIGIN_REFUSED);
    assert_int_equal(check(&o, "http://127.0.0.1:3000", ""), HR_ORIGIN_REFUSED);
    assert_int_equal(hr_origins_check(&o, "https://h.test", 14, "h.test", 6, 1), HR_ORIGIN_ALLOWED);
    assert_int_equal(hr_origins_check(&o, "http://h.test", 13, "h.test", 6, 1), HR_ORIGIN_REFUSED);
    hr_origins_free(&o);

    assert_int_equal(hr_origins_parse(&o, "none", err, sizeof err), 0);
    assert_int_equal(check(&o, "http://good.test", "h:1"), HR_ORIGIN_REFUSED);
    assert_int_equal(check(&o, "http://h:1", "h:1"), HR_ORIGIN_ALLOWED);
    assert_int_equal(check(&o, "null", "null"), HR_ORIGIN_REFUSED); /* opaque: never own */
    hr_origins_free(&o);

    assert_int_equal(hr_origins_parse(&o, "null", err, sizeof err), 0);
    assert_int_equal(check(&o, "null", NULL), HR_ORIGIN_ALLOWED);
    assert_int_equal(check(&o, "NULL", NULL), HR_ORIGIN_REFUSED);
    hr_origins_free(&o);

    assert_int_equal(hr_origins_parse(&o, "*", err, sizeof err), 0);
    assert_int_equal(check(&o, "http://evil.test", NULL), HR_ORIGIN_ALLOWED);
    assert_int_equal(check(&o, "not an origin", NULL), HR_ORIGIN_ALLOWED);
    hr_origins_free(&o);
    assert_int_equal(check(NULL, "http://evil.test", NULL), HR_ORIGIN_ALLOWED);
}

/* A request parsed from its bytes. */
static struct hr_http_parser parser;

static struct hr_http_request *request(const char *head)
{
    size_t used;
    hr_http_parser_free(&parser);
    hr_http_parser_init(&parser, 16384, 1024);
    int rc = hr_http_parse(&parser, head, strlen(head), &used);
    assert_int_equal(rc, HR_HTTP_REQUEST);
    return &parser.req;
}

static void requests_and_cors(void **state)
{
    struct hr_origins list, none, any;
    char err[160], cors[HR_ORIGIN_CORS_MAX];
    assert_int_equal(hr_origins_parse(&list, "http://good.test", err, sizeof err), 0);
    assert_int_equal(hr_origins_parse(&none, "none", err, sizeof err), 0);
    assert_int_equal(hr_origins_parse(&any, "*", err, sizeof err), 0);
    hr_http_parser_init(&parser, 16384, 1024);

    /* no Origin: not refused, no CORS but the Vary that says the answer depends on it */
    struct hr_http_request *r = request("GET /poll/x HTTP/1.1\r\nHost: h:1\r\n\r\n");
    assert_int_equal(hr_origins_request(&list, r), HR_ORIGIN_ABSENT);
    assert_int_equal(hr_origins_cors(&list, r, cors, sizeof cors), HR_ORIGIN_ABSENT);
    assert_string_equal(cors, "Vary: Origin\r\n");
    assert_int_equal(hr_origins_cors(&any, r, cors, sizeof cors), HR_ORIGIN_ABSENT);
    assert_string_equal(cors, "Access-Control-Allow-Origin: *\r\n");

    /* a listed origin is echoed as sent, with credentials */
    r = request("GET /poll/x HTTP/1.1\r\nHost: h:1\r\norigin: http://GOOD.test:80\r\n\r\n");
    assert_int_equal(hr_origins_cors(&list, r, cors, sizeof cors), HR_ORIGIN_ALLOWED);
    assert_string_equal(cors, "Access-Control-Allow-Origin: http://GOOD.test:80\r\n"
                              "Access-Control-Allow-Credentials: true\r\nVary: Origin\r\n");
    assert_int_equal(hr_origins_cors(&none, r, cors, sizeof cors), HR_ORIGIN_REFUSED);
    assert_string_equal(cors, "Vary: Origin\r\n");
    assert_int_equal(hr_origins_cors(NULL, r, cors, sizeof cors), HR_ORIGIN_ALLOWED);
    assert_string_equal(cors, "Access-Control-Allow-Origin: *\r\n");

    /* another: no Access-Control-* at all */
    r = request("GET /poll/x HTTP/1.1\r\nHost: h:1\r\nOrigin: http://evil.test\r\n\r\n");
    assert_int_equal(hr_origins_request(&list, r), HR_ORIGIN_REFUSED);
    assert_int_equal(hr_origins_cors(&list, r, cors, sizeof cors), HR_ORIGIN_REFUSED);
    assert_null(strstr(cors, "Access-Control"));

    /* the request's own origin, under any list */
    r = request(
        "GET /ws/x HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nOrigin: http://127.0.0.1:3000\r\n\r\n");
    assert_int_equal(hr_origins_request(&none, r), HR_ORIGIN_ALLOWED);
    assert_int_equal(hr_origins_request(&list, r), HR_ORIGIN_ALLOWED);

    /* two Origin headers: no browser sends that */
    r = request("GET / HTTP/1.1\r\nHost: h:1\r\nOrigin: http://good.test\r\n"
                "Origin: http://evil.test\r\n\r\n");
    assert_int_equal(hr_origins_request(&list, r), HR_ORIGIN_REFUSED);
    assert_int_equal(hr_origins_cors(&list, r, cors, sizeof cors), HR_ORIGIN_REFUSED);
    assert_null(strstr(cors, "Access-Control"));

    /* an empty Origin is malformed */
    r = request("GET / HTTP/1.1\r\nHost: h:1\r\nOrigin:\r\n\r\n");
    assert_int_equal(hr_origins_request(&list, r), HR_ORIGIN_REFUSED);

    hr_http_parser_free(&parser);
    hr_origins_free(&list);
    hr_origins_free(&none);
    hr_origins_free(&any);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(serializes),
        cmocka_unit_test(parses_lists),
        cmocka_unit_test(matches),
        cmocka_unit_test(requests_and_cors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
