/* test_http_static.c - the pure parts of src/http/static.c and src/http/mime.c: turning a
 * request target into a file path under the root (percent-decoding per RFC 3986 §2.1, dot
 * segments refused rather than resolved, query and fragment dropped) and the Content-Type
 * chosen by extension. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/static.h"

#define BIG 256

static const struct resolve_case {
    const char *target;
    size_t outsz; /* 0: BIG */
    int status;
    const char *path; /* with status 0 */
} resolve_cases[] = {
    /* the root and directories serve index.html */
    {"/", 0, 0, "index.html"},
    {"/dir/", 0, 0, "dir/index.html"},
    {"/a/b/", 0, 0, "a/b/index.html"},
    {"/a/b.css", 0, 0, "a/b.css"},
    {"/index.html", 0, 0, "index.html"},
    {"/dir", 0, 0, "dir"},
    {"/a//b", 0, 0, "a//b"},
    /* query and fragment are not part of the path */
    {"/?x=1", 0, 0, "index.html"},
    {"/a.js?v=3", 0, 0, "a.js"},
    {"/dir/?q", 0, 0, "dir/index.html"},
    {"/a.js#frag", 0, 0, "a.js"},
    {"/a?b=../../etc/passwd", 0, 0, "a"},
    {"/a#/../../x", 0, 0, "a"},
    {"/a?b#c", 0, 0, "a"},
    /* percent-decoding, after the query is split off */
    {"/a%20b.txt", 0, 0, "a b.txt"},
    {"/%41", 0, 0, "A"},
    {"/%4a%4A", 0, 0, "JJ"},
    {"/a%3Fb", 0, 0, "a?b"},
    {"/a%23b", 0, 0, "a#b"},
    {"/%25", 0, 0, "%"},
    {"/%c3%a9.html", 0, 0, "\xc3\xa9.html"},
    {"/a+b", 0, 0, "a+b"},
    /* names with dots that are not dot segments */
    {"/...", 0, 0, "..."},
    {"/..a", 0, 0, "..a"},
    {"/a..", 0, 0, "a.."},
    {"/.well-known/x", 0, 0, ".well-known/x"},
    {"/a/.b", 0, 0, "a/.b"},

    /* dot segments, however spelled: 400 */
    {"/..", 0, 400, NULL},
    {"/../x", 0, 400, NULL},
    {"/a/../b", 0, 400, NULL},
    {"/a/..", 0, 400, NULL},
    {"/a/../", 0, 400, NULL},
    {"/%2e%2e/x", 0, 400, NULL},
    {"/%2E%2e/x", 0, 400, NULL},
    {"/.%2e/x", 0, 400, NULL},
    {"/%2e./x", 0, 400, NULL},
    {"/a%2f..%2fb", 0, 400, NULL},
    {"/..%2fx", 0, 400, NULL},
    {"/.", 0, 400, NULL},
    {"/./x", 0, 400, NULL},
    {"/x/.", 0, 400, NULL},
    {"/x/./", 0, 400, NULL},
    {"/%2e", 0, 400, NULL},
    {"/..?x", 0, 400, NULL},
    /* NUL bytes and bad escapes */
    {"/%00", 0, 400, NULL},
    {"/a%00b", 0, 400, NULL},
    {"/%zz", 0, 400, NULL},
    {"/%4", 0, 400, NULL},
    {"/%", 0, 400, NULL},
    {"/a%", 0, 400, NULL},
    {"/%g1", 0, 400, NULL},
    {"/%1g", 0, 400, NULL},
    {"/% 1", 0, 400, NULL},
    /* backslashes, literal or encoded */
    {"/a\\b", 0, 400, NULL},
    {"/..\\x", 0, 400, NULL},
    {"/%5c..", 0, 400, NULL},
    {"/%5C", 0, 400, NULL},
    {"/a%5cb", 0, 400, NULL},
    /* not origin-form */
    {"", 0, 400, NULL},
    {"a", 0, 400, NULL},
    {"*", 0, 400, NULL},
    {"http://h/a", 0, 400, NULL},
    {"?x", 0, 400, NULL},

    /* the out buffer: the path and its NUL must fit, then index.html too */
    {"/abcdefg", 8, 0, "abcdefg"},
    {"/abcdefgh", 8, 414, NULL},
    {"/%41%42", 3, 0, "AB"},
    {"/%41%42%43", 3, 414, NULL},
    {"/", 11, 0, "index.html"},
    {"/", 10, 414, NULL},
    {"/dir/", 15, 0, "dir/index.html"},
    {"/dir/", 14, 414, NULL},
    {"/dir/", 5, 414, NULL},
    {"/dir/", 4, 414, NULL},
    {"/x", 1, 414, NULL},
};

static void test_resolve(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(resolve_cases) / sizeof(resolve_cases[0]); i++) {
        const struct resolve_case *c = &resolve_cases[i];
        size_t outsz = c->outsz ? c->outsz : BIG;
        /* an exact-size buffer inside a guarded one: nothing may be written past outsz */
        char guard[BIG + 16];
        memset(guard, '#', sizeof guard);
        int st = hr_static_resolve(c->target, guard, outsz);
        if (st != c->status)
            fail_msg("resolve(\"%s\", %zu) = %d, want %d", c->target, outsz, st, c->status);
        for (size_t k = outsz; k < sizeof guard; k++)
            if (guard[k] != '#')
                fail_msg("resolve(\"%s\", %zu) wrote past the buffer", c->target, outsz);
        if (c->status == 0) {
            assert_non_null(memchr(guard, '\0', outsz));
            if (strcmp(guard, c->path) != 0)
                fail_msg("resolve(\"%s\") = \"%s\", want \"%s\"", c->target, guard, c->path);
        }
    }
}

/* Whatever comes in, a success is a NUL-terminated relative path with no dot segment. */
static void test_resolve_results_are_safe(void **state)
{
    (void)state;
    static const char alphabet[] = {'/', '.', '%', '2', 'e', 'E', 'f', '5', 'c', 'a', '\\', '?'};
    enum { N = sizeof(alphabet), LEN = 6 };
    char target[LEN + 2], out[64];
    size_t total = 1;
    for (int i = 0; i < LEN; i++)
        total *= N;
    target[0] = '/';
    for (size_t v = 0; v < total; v++) {
        size_t x = v;
        for (int i = 0; i < LEN; i++) {
            target[1 + i] = alphabet[x % N];
            x /= N;
        }
        target[LEN + 1] = '\0';
        int st = hr_static_resolve(target, out, sizeof out);
        assert_true(st == 0 || st == 400);
        if (st)
            continue;
        assert_non_null(memchr(out, '\0', sizeof out));
        assert_null(strchr(out, '\\'));
        /* no "." or ".." segment anywhere */
        const char *seg = out;
        for (;;) {
            size_t len = strcspn(seg, "/");
            if (len == 1 && seg[0] == '.')
                fail_msg("\"%s\" -> \"%s\"", target, out);
            if (len == 2 && seg[0] == '.' && seg[1] == '.')
                fail_msg("\"%s\" -> \"%s\"", target, out);
            if (!seg[len])
                break;
            seg += len + 1;
        }
    }
}

/* static.h promises "a relative file path under the root"; an empty first segment, literal
 * ("//etc/passwd") or encoded ("/%2fetc/passwd"), gives "/etc/passwd". resolve_work() joins
 * it as root + "/" + rel and checks the opened file against the root, so it stays inside;
 * but anything that used rel as a relative path (openat on a root fd) would not. */
static void test_resolve_never_absolute(void **state)
{
    (void)state;
    static const char *const t[] = {"//etc/passwd", "/%2fetc/passwd", "/%2F", "//"};
    char out[BIG];
    int absolute = 0;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (hr_static_resolve(t[i], out, sizeof out) == 0 && out[0] == '/')
            absolute = 1;
    if (absolute)
        fail_msg("regression (src/http/static.c): hr_static_resolve(\"//etc/passwd\") and "
                 "(\"/%%2fetc/passwd\") give the absolute \"/etc/passwd\"");
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int st = hr_static_resolve(t[i], out, sizeof out);
        assert_true(st == 400 || (st == 0 && out[0] != '/'));
    }
}

/* Dotfiles are refused the way express.static's default (dotfiles: 'ignore') refuses them:
 * any segment of the decoded path that starts with '.', whatever follows. */
static void test_hidden(void **state)
{
    (void)state;
    static const struct {
        const char *target;
        int hidden;
    } t[] = {
        {"/.env", 1},       {"/.git/config", 1},
        {"/.git/", 1},      {"/a/.htpasswd", 1},
        {"/a/.b/c.txt", 1}, {"/.well-known/acme-challenge/x", 1},
        {"/%2eenv", 1},     {"/%2Egit/HEAD", 1},
        {"/a%2f.env", 1},   {"/...", 1},
        {"/..a", 1},        {"/.a.", 1},
        {"/", 0},           {"/index.html", 0},
        {"/a.b/c.d", 0},    {"/a..", 0},
        {"/a/b./c", 0},     {"/dir/", 0},
        {"/a//b", 0},       {"/a?x=/.env", 0},
        {"/a#/.env", 0},
    };
    char out[BIG];
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (hr_static_resolve(t[i].target, out, sizeof out) != 0)
            fail_msg("resolve(\"%s\") failed", t[i].target);
        if (hr_static_hidden(out) != t[i].hidden)
            fail_msg("hidden(\"%s\" from \"%s\") = %d, want %d", out, t[i].target,
                     hr_static_hidden(out), t[i].hidden);
    }
}

static void test_mime_type(void **state)
{
    (void)state;
    static const struct {
        const char *path, *type;
    } t[] = {
        {"index.html", "text/html; charset=utf-8"},
        {"/a/b/page.htm", "text/html; charset=utf-8"},
        {"a/b.css", "text/css; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"mod.mjs", "text/javascript; charset=utf-8"},
        {"data.json", "application/json"},
        {"logo.png", "image/png"},
        {"icon.svg", "image/svg+xml"},
        {"x.wasm", "application/wasm"},
        {"site.webmanifest", "application/manifest+json"},
        {"notes.txt", "text/plain; charset=utf-8"},
        /* case of the extension does not matter */
        {"INDEX.HTML", "text/html; charset=utf-8"},
        {"Photo.PNG", "image/png"},
        {"a.Js", "text/javascript; charset=utf-8"},
        /* the last extension counts */
        {"a.min.js", "text/javascript; charset=utf-8"},
        {"a.js.map", "application/json"},
        {"archive.tar.gz", "application/octet-stream"},
        {"x.html.bak", "application/octet-stream"},
        /* no extension */
        {"README", "application/octet-stream"},
        {"dir/Makefile", "application/octet-stream"},
        {"", "application/octet-stream"},
        {"file.", "application/octet-stream"},
        {".htaccess", "application/octet-stream"},
        {"dir/.bashrc", "application/octet-stream"},
        /* a dot in a directory name is not an extension */
        {"/a.b/c", "application/octet-stream"},
        {"a.html/c", "application/octet-stream"},
        {"a.css/b.js", "text/javascript; charset=utf-8"},
        {"dir.d/", "application/octet-stream"},
        /* an extension is matched whole */
        {"x.jsx", "application/octet-stream"},
        {"x.j", "application/octet-stream"},
        {"x.pngx", "application/octet-stream"},
        {"x.htmlx", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        const char *got = hr_mime_type(t[i].path);
        assert_non_null(got);
        if (strcmp(got, t[i].type) != 0)
            fail_msg("mime(\"%s\") = \"%s\", want \"%s\"", t[i].path, got, t[i].type);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_resolve_results_are_safe),
        cmocka_unit_test(test_resolve_never_absolute),
        cmocka_unit_test(test_hidden),
        cmocka_unit_test(test_mime_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
