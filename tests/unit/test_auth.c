/* test_auth.c - auth/auth.c: token verification (HS256, RS256, ES256; expiry, not-before,
 * algorithm confusion, "none"), the publish key, grants, channel rules and the decision. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/error.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define NOW 1800000000000ull /* ms */

static struct hr_auth hs(const char *const *rules, size_t n, const char *pubkey)
{
    struct hr_auth a;
    struct hr_auth_config c = {
        .jwt_secret = SECRET, .publish_key = pubkey, .rules = rules, .nrules = n};
    char err[256] = "";
    assert_int_equal(hr_auth_init(&a, &c, err, sizeof err), 0);
    return a;
}

/* A token with the given claims (JSON), alg and key (PEM private key or secret). */
static char *make(jwt_alg_t alg, const void *key, size_t keylen, const char *claims)
{
    jwt_t *j;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_grants_json(j, claims), 0);
    assert_int_equal(jwt_set_alg(j, alg, key, (int)keylen), 0);
    char *t = jwt_encode_str(j);
    jwt_free(j);
    assert_non_null(t);
    return t;
}

static int verify(struct hr_auth *a, const char *tok, struct hr_principal *p, const char **why)
{
    *why = NULL;
    return hr_auth_verify(a, tok, strlen(tok), NOW, p, why);
}

static void test_hs256(void **state)
{
    (void)state;
    struct hr_auth a = hs(NULL, 0, NULL);
    struct hr_principal p;
    const char *why;
    char *t = make(JWT_ALG_HS256, SECRET, 32, "{\"sub\":\"alice\",\"exp\":1800000060}");
    assert_int_equal(verify(&a, t, &p, &why), 0);
    assert_int_equal(p.kind, HR_PRINCIPAL_TOKEN);
    assert_string_equal(p.sub, "alice");
    assert_int_equal(p.exp_ms, 1800000060000ull);
    hr_principal_clear(&p);
    free(t);
    /* expired (exp is the first second it is not valid), not valid yet, wrong secret */
    t = make(JWT_ALG_HS256, SECRET, 32, "{\"sub\":\"alice\",\"exp\":1800000000}");
    assert_int_equal(verify(&a, t, &p, &why), HR_EUNAUTH);
    assert_string_equal(why, "token expired");
    free(t);
    t = make(JWT_ALG_HS256, SECRET, 32, "{\"sub\":\"alice\",\"nbf\":1800000100}");
    assert_int_equal(verify(&a, t, &p, &why), HR_EUNAUTH);
    assert_string_equal(why, "token not valid yet");
    free(t);
    t = make(JWT_ALG_HS256, "another secret of thirty-two byt", 32, "{\"sub\":\"alice\"}");
    assert_int_equal(verify(&a, t, &p, &why), HR_EUNAUTH);
    assert_string_equal(why, "invalid token");
    /* a flipped character anywhere */
    for (size_t i = 0, n = strlen(t); i < n; i += 7) {
        char save = t[i];
        t[i] = t[i] == 'A' ? 'B' : 'A';
        assert_int_equal(verify(&a, t, &p, &why), HR_EUNAUTH);
        t[i] = save;
    }
    free(t);
    /* exp not a number, sub too long, grants not arrays of strings */
    const char *bad[] = {"{\"sub\":\"a\",\"exp\":\"soon\"}", "{\"sub\":\"\"}",
                         "{\"subscribe\":\"news:*\"}", "{\"publish\":[1]}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        t = make(JWT_ALG_HS256, SECRET, 32, bad[i]);
        assert_int_equal(verify(&a, t, &p, &why), HR_EUNAUTH);
        assert_non_null(strstr(why, "invalid token"));
        free(t);
    }
    char longsub[300];
    snprintf(longsub, sizeof longsub, "{\"sub\":\"%0200d\"}", 1);
    t = make(JWT_ALG_HS256, SECRET, 32, longsub);
    assert_int_equal(verify(&a, t, &p, &why), HR_EUNAUTH);
    free(t);
    /* not a token at all */
    assert_int_equal(verify(&a, "", &p, &why), HR_EUNAUTH);
    assert_int_equal(verify(&a, "a.b.c", &p, &why), HR_EUNAUTH);
    assert_int_equal(verify(&a, "....", &p, &why), HR_EUNAUTH);
    hr_auth_free(&a);
}

static void test_alg_none_refused(void **state)
{
    (void)state;
    struct hr_auth a = hs(NULL, 0, NULL);
    struct hr_principal p;
    const char *why;
    /* {"alg":"none","typ":"JWT"}.{"sub":"alice"}. */
    const char *none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9.";
    assert_int_equal(verify(&a, none, &p, &why), HR_EUNAUTH);
    char *t = make(JWT_ALG_HS512, SECRET, 32, "{\"sub\":\"alice\"}");
    assert_int_equal(verify(&a, t, &p, &why), HR_EUNAUTH);
    free(t);
    hr_auth_free(&a);
}

/* RS256 / ES256: a key pair made here, the public half in a file for hr_auth_init. */
static void pair(const char *type, char **priv, size_t *privlen, char *path, size_t pathlen)
{
    EVP_PKEY *k = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    *priv = malloc((size_t)n + 1);
    memcpy(*priv, data, (size_t)n);
    (*priv)[n] = 0;
    *privlen = (size_t)n;
    BIO_free(b);
    snprintf(path, pathlen, "/tmp/herald-test-auth-%d-%s.pem", (int)getpid(), type);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PUBKEY(f, k), 1);
    fclose(f);
    EVP_PKEY_free(k);
}

static void check_public_key(const char *type, jwt_alg_t alg)
{
    char *priv, path[128];
    size_t privlen;
    pair(type, &priv, &privlen, path, sizeof path);
    struct hr_auth a;
    struct hr_auth_config c = {.jwt_public_key_file = path};
    char err[256] = "";
    assert_int_equal(hr_auth_init(&a, &c, err, sizeof err), 0);
    struct hr_principal p;
    const char *why;
    char *t = make(alg, priv, privlen, "{\"sub\":\"bob\",\"exp\":1800000060}");
    assert_int_equal(verify(&a, t, &p, &why), 0);
    assert_string_equal(p.sub, "bob");
    hr_principal_clear(&p);
    free(t);
    /* algorithm confusion: HS256 "signed" with the public key's PEM as the secret */
    FILE *f = fopen(path, "r");
    char pub[4096];
    size_t publen = fread(pub, 1, sizeof pub, f);
    fclose(f);
    t = make(JWT_ALG_HS256, pub, publen, "{\"sub\":\"bob\"}");
    assert_int_equal(verify(&a, t, &p, &why), HR_EUNAUTH);
    free(t);
    /* a token of another key pair */
    char *priv2, path2[128];
    size_t privlen2;
    pair(type, &priv2, &privlen2, path2, sizeof path2);
    t = make(alg, priv2, privlen2, "{\"sub\":\"bob\"}");
    assert_int_equal(verify(&a, t, &p, &why), HR_EUNAUTH);
    free(t);
    free(priv2);
    unlink(path2);
    hr_auth_free(&a);
    free(priv);
    unlink(path);
}

static void test_rs256(void **state)
{
    (void)state;
    check_public_key("RSA", JWT_ALG_RS256);
}

static void test_es256(void **state)
{
    (void)state;
    check_public_key("EC", JWT_ALG_ES256);
}

static void test_config_errors(void **state)
{
    (void)state;
    struct hr_auth a;
    char err[256];
    struct hr_auth_config c = {.jwt_secret = "short"};
    assert_int_equal(hr_auth_init(&a, &c, err, sizeof err), HR_EINVAL);
    assert_non_null(strstr(err, "at least 32"));
    c = (struct hr_auth_config){.jwt_public_key_file = "/nonexistent/key.pem"};
    assert_int_equal(hr_auth_init(&a, &c, err, sizeof err), HR_EINVAL);
    c = (struct hr_auth_config){.jwt_secret = SECRET, .jwt_public_key_file = "x"};
    assert_int_equal(hr_auth_init(&a, &c, err, sizeof err), HR_EINVAL);
    const char *rules[] = {"news:* all"};
    c = (struct hr_auth_config){.rules = rules, .nrules = 1};
    assert_int_equal(hr_auth_init(&a, &c, err, sizeof err), HR_EINVAL);
}

static void test_rule_parse(void **state)
{
    (void)state;
    struct hr_rule r;
    assert_int_equal(hr_auth_rule_parse("news:* all none", &r), 0);
    assert_string_equal(r.pattern, "news:*");
    assert_int_equal(r.who[HR_ACCESS_READ], HR_WHO_ALL);
    assert_int_equal(r.who[HR_ACCESS_PUBLISH], HR_WHO_NONE);
    assert_int_equal(hr_auth_rule_parse("  team:{sub}:inbox  owner  token ", &r), 0);
    assert_string_equal(r.pattern, "team:{sub}:inbox");
    const char *bad[] = {"",
                         "news:*",
                         "news:* all",
                         "a all all x",
                         "a every none",
                         "a owner none",
                         "x:{sub}:* owner none",
                         "{sub}{sub} owner none"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(hr_auth_rule_parse(bad[i], &r), HR_EINVAL);
}

static struct hr_principal tok(struct hr_auth *a, const char *claims)
{
    struct hr_principal p;
    const char *why;
    char *t = make(JWT_ALG_HS256, SECRET, 32, claims);
    assert_int_equal(verify(a, t, &p, &why), 0);
    free(t);
    return p;
}

#define ALLOW(a, p, ch, what) hr_auth_allow(a, p, ch, strlen(ch), what)
#define R HR_ACCESS_READ
#define W HR_ACCESS_PUBLISH

static void test_decisions(void **state)
{
    (void)state;
    /* open: no configuration, everything allowed to everyone */
    struct hr_auth open;
    struct hr_auth_config none = {0};
    char err[256];
    assert_int_equal(hr_auth_init(&open, &none, err, sizeof err), 0);
    assert_int_equal(open.enabled, 0);
    assert_int_equal(ALLOW(&open, NULL, "user:alice", R), 0);
    assert_int_equal(ALLOW(&open, NULL, "user:alice", W), 0);

    const char *rules[] = {"news:* all none", "team:* token token", "inbox:{sub} owner token"};
    struct hr_auth a = hs(rules, 3, "the-backends-publish-key");
    struct hr_principal alice = tok(&a, "{\"sub\":\"alice\"}");
    struct hr_principal bob = tok(&a, "{\"sub\":\"bob\"}");
    struct hr_principal nosub = tok(&a, "{}");
    struct hr_principal admin = tok(&a, "{\"sub\":\"x\",\"subscribe\":[\"user:*\"],"
                                        "\"publish\":[\"news:*\",\"user:*\"]}");
    struct hr_principal key;
    const char *why;
    assert_int_equal(hr_auth_verify(&a, "the-backends-publish-key", 24, NOW, &key, &why), 0);
    assert_int_equal(key.kind, HR_PRINCIPAL_KEY);

    /* user:{sub}, built in once a token key is configured */
    assert_int_equal(ALLOW(&a, NULL, "user:alice", R), HR_EUNAUTH);
    assert_int_equal(ALLOW(&a, &alice, "user:alice", R), 0);
    assert_int_equal(ALLOW(&a, &bob, "user:alice", R), HR_EFORBIDDEN);
    assert_int_equal(ALLOW(&a, &nosub, "user:alice", R), HR_EFORBIDDEN);
    assert_int_equal(ALLOW(&a, &alice, "user:alice", W), HR_EFORBIDDEN);
    assert_int_equal(ALLOW(&a, &alice, "user:alicex", R), HR_EFORBIDDEN);
    assert_int_equal(ALLOW(&a, &alice, "user:", R), 0); /* no owner part: not the user rule */
    assert_int_equal(ALLOW(&a, &key, "user:alice", W), 0);
    assert_int_equal(ALLOW(&a, &key, "user:alice", R), HR_EFORBIDDEN);
    assert_int_equal(ALLOW(&a, &admin, "user:alice", R), 0);
    assert_int_equal(ALLOW(&a, &admin, "user:alice", W), 0);
    /* configured rules come first */
    assert_int_equal(ALLOW(&a, NULL, "news:today", R), 0);
    assert_int_equal(ALLOW(&a, NULL, "news:today", W), HR_EUNAUTH);
    assert_int_equal(ALLOW(&a, &alice, "news:today", W), HR_EFORBIDDEN);
    assert_int_equal(ALLOW(&a, &admin, "news:today", W), 0);
    assert_int_equal(ALLOW(&a, NULL, "team:red", R), HR_EUNAUTH);
    assert_int_equal(ALLOW(&a, &bob, "team:red", W), 0);
    assert_int_equal(ALLOW(&a, &bob, "inbox:bob", R), 0);
    assert_int_equal(ALLOW(&a, &bob, "inbox:alice", R), HR_EFORBIDDEN);
    assert_int_equal(ALLOW(&a, &bob, "inbox:alice", W), 0);
    /* everything else stays open: the chat room works with no token */
    assert_int_equal(ALLOW(&a, NULL, "chat", R), 0);
    assert_int_equal(ALLOW(&a, NULL, "chat", W), 0);
    hr_principal_clear(&alice);
    hr_principal_clear(&bob);
    hr_principal_clear(&nosub);
    struct hr_principal copy;
    assert_int_equal(hr_principal_copy(&copy, &admin), 0);
    hr_principal_clear(&admin);
    assert_int_equal(ALLOW(&a, &copy, "news:x", W), 0);
    hr_principal_clear(&copy);
    hr_auth_free(&a);

    /* only a publish key: user:* readable by anyone, published by the key only */
    struct hr_auth k;
    struct hr_auth_config kc = {.publish_key = "the-backends-publish-key"};
    assert_int_equal(hr_auth_init(&k, &kc, err, sizeof err), 0);
    assert_int_equal(ALLOW(&k, NULL, "user:alice", R), 0);
    assert_int_equal(ALLOW(&k, NULL, "user:alice", W), HR_EUNAUTH);
    assert_int_equal(hr_auth_verify(&k, "eyJ.x.y", 7, NOW, &key, &why), HR_EUNAUTH);
    hr_auth_free(&k);
}

static void test_cookie(void **state)
{
    (void)state;
    const char *v;
    const char *h = "a=1; herald_token=abc.def ;x=\"q\"; herald_token2=no";
    assert_int_equal(hr_auth_cookie(h, strlen(h), "herald_token", &v), 7);
    assert_memory_equal(v, "abc.def", 7);
    assert_int_equal(hr_auth_cookie(h, strlen(h), "x", &v), 1);
    assert_memory_equal(v, "q", 1);
    assert_int_equal(hr_auth_cookie(h, strlen(h), "herald", &v), -1);
    assert_int_equal(hr_auth_cookie("", 0, "a", &v), -1);
    assert_int_equal(hr_auth_cookie("a", 1, "a", &v), -1);
    assert_int_equal(hr_auth_cookie("a=", 2, "a", &v), 0);
}

static void test_mint(void **state)
{
    (void)state;
    struct hr_auth a = hs(NULL, 0, NULL);
    char *t = hr_auth_mint(&a, "carol", NOW - 5000, 60);
    assert_non_null(t);
    struct hr_principal p;
    const char *why;
    assert_int_equal(verify(&a, t, &p, &why), 0);
    assert_string_equal(p.sub, "carol");
    assert_int_equal(p.exp_ms, NOW - 5000 + 60000);
    hr_principal_clear(&p);
    free(t);
    hr_auth_free(&a);
}

/* --admin-password: equal only when every byte and the length agree */
static void test_secret_equal(void **state)
{
    (void)state;
    const char *pw = "correct horse battery";
    size_t n = strlen(pw);
    assert_true(hr_auth_secret_equal(pw, n, pw, n));
    assert_true(hr_auth_secret_equal("", 0, "", 0));
    assert_false(hr_auth_secret_equal(pw, n - 1, pw, n));
    assert_false(hr_auth_secret_equal(pw, n, pw, n - 1));
    assert_false(hr_auth_secret_equal("correct horse batterx", n, pw, n));
    assert_false(hr_auth_secret_equal("", 0, pw, n));
    /* a NUL inside counts: the given length is compared, not a C string */
    assert_false(hr_auth_secret_equal("correct\0horse battery", n, pw, n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hs256),         cmocka_unit_test(test_alg_none_refused),
        cmocka_unit_test(test_rs256),         cmocka_unit_test(test_es256),
        cmocka_unit_test(test_config_errors), cmocka_unit_test(test_rule_parse),
        cmocka_unit_test(test_decisions),     cmocka_unit_test(test_cookie),
        cmocka_unit_test(test_mint),          cmocka_unit_test(test_secret_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
