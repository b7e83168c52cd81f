/* fuzz_auth.c - libFuzzer target for what access control reads from a client and from its
 * configuration: a token (a JWT checked with HS256, its claims and grants), a channel rule, a
 * Cookie header, and the decision for a channel name. The first byte picks a rule set; the rest
 * is split at the first two NUL bytes into a token, a channel name and a cookie header.
 * Invariants: a refused token leaves nothing allocated and always has a reason; a token only
 * passes with the right signature (the input never holds the secret's tag, so a valid token can
 * only be one whose signature the fuzzer found, which must then verify again identically);
 * the decision is 0, HR_EUNAUTH (only with no token) or HR_EFORBIDDEN, and is open for every
 * channel when nothing is configured; a cookie value lies inside its header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/error.h"

#define SECRET "fuzz-secret-fuzz-secret-fuzz-secret!"
#define NOW 1800000000000ull

static struct hr_auth open_auth, rules_auth;

static void init(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    char err[256];
    struct hr_auth_config none = {0};
    static const char *const rules[] = {"news:* all none", "team:* token token",
                                        "inbox:{sub}:x owner token", "secret none none"};
    struct hr_auth_config c = {
        .jwt_secret = SECRET, .publish_key = "fuzz-publish-key-0123", .rules = rules, .nrules = 4};
    if (hr_auth_init(&open_auth, &none, err, sizeof err) < 0 ||
        hr_auth_init(&rules_auth, &c, err, sizeof err) < 0)
        abort();
}

static void decide(const struct hr_auth *a, const struct hr_principal *p, const char *name,
                   size_t len)
{
    for (int what = HR_ACCESS_READ; what <= HR_ACCESS_PUBLISH; what++) {
        int rc = hr_auth_allow(a, p, name, len, (enum hr_access)what);
        if (rc != 0 && rc != HR_EUNAUTH && rc != HR_EFORBIDDEN)
            abort();
        if (rc == HR_EUNAUTH && p && p->kind != HR_PRINCIPAL_NONE)
            abort(); /* a token holder is refused with 403, never asked for a token */
        if (!a->enabled && rc != 0)
            abort();
        if (!hr_auth_refusal(rc, (enum hr_access)what))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size < 1)
        return 0;
    /* a rule, as --channel-rule reads it */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    struct hr_rule r;
    if (hr_auth_rule_parse(text + 1, &r) == 0 &&
        (strlen(r.pattern) == 0 || r.who[0] > HR_WHO_NONE || r.who[1] > HR_WHO_NONE))
        abort();
    /* token \0 channel \0 cookie header */
    const char *tok = (const char *)data + 1, *end = (const char *)data + size;
    const char *z1 = memchr(tok, 0, (size_t)(end - tok));
    const char *name = z1 ? z1 + 1 : end;
    const char *z2 = z1 ? memchr(name, 0, (size_t)(end - name)) : NULL;
    const char *cookie = z2 ? z2 + 1 : end;
    size_t toklen = (size_t)((z1 ? z1 : end) - tok), namelen = (size_t)((z2 ? z2 : end) - name);
    const struct hr_auth *a = data[0] & 1 ? &rules_auth : &open_auth;
    struct hr_principal p;
    const char *why = NULL;
    int rc = hr_auth_verify(a, tok, toklen, NOW, &p, &why);
    if (rc == 0) {
        struct hr_principal q;
        const char *why2 = NULL;
        if (hr_auth_verify(a, tok, toklen, NOW, &q, &why2) != 0 || q.kind != p.kind ||
            strcmp(q.sub, p.sub) != 0 || q.exp_ms != p.exp_ms)
            abort();
        hr_principal_clear(&q);
        decide(a, &p, name, namelen);
        hr_principal_clear(&p);
    } else if (rc != HR_EUNAUTH || !why || p.grants) {
        abort();
    }
    decide(a, NULL, name, namelen);
    const char *v;
    long n = hr_auth_cookie(cookie, (size_t)(end - cookie), HR_AUTH_COOKIE_DEFAULT, &v);
    if (n >= 0 && (v < cookie || v + n > end))
        abort();
    free(text);
    return 0;
}
