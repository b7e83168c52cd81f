/* auth.c - tokens (RFC 7519 JWT, RFC 7515 JWS signatures checked by libjwt), the publish key,
 * channel rules and the one decision every transport asks (auth.h). */
#include "auth.h"

#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const char *const who_names[] = {"all", "token", "owner", "none"};

static int who_parse(const char *s, size_t n)
{
    for (int i = 0; i < 4; i++)
        if (strlen(who_names[i]) == n && memcmp(who_names[i], s, n) == 0)
            return i;
    return -1;
}

/* "{sub}" in a pattern: its offset, or -1. A pattern has at most one, and no glob besides. */
static long sub_at(const char *pattern)
{
    const char *p = strstr(pattern, "{sub}");
    return p ? p - pattern : -1;
}

int hr_auth_rule_parse(const char *text, struct hr_rule *r)
{
    const char *p = text, *tok[3];
    size_t len[3];
    for (int i = 0; i < 3; i++) {
        while (*p == ' ' || *p == '\t')
            p++;
        tok[i] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        len[i] = (size_t)(p - tok[i]);
        if (len[i] == 0)
            return HR_EINVAL;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p || len[0] > HR_AUTH_PATTERN_MAX)
        return HR_EINVAL;
    int read = who_parse(tok[1], len[1]), pub = who_parse(tok[2], len[2]);
    if (read < 0 || pub < 0)
        return HR_EINVAL;
    memcpy(r->pattern, tok[0], len[0]);
    r->pattern[len[0]] = 0;
    long at = sub_at(r->pattern);
    if (at >= 0) {
        /* literal text around one {sub}: no second one, no glob characters */
        if (strstr(r->pattern + at + 5, "{sub}") || strpbrk(r->pattern, "*?[]\\"))
            return HR_EINVAL;
    } else if (read == HR_WHO_OWNER || pub == HR_WHO_OWNER) {
        return HR_EINVAL; /* "owner" names the {sub} part */
    }
    r->who[HR_ACCESS_READ] = (uint8_t)read;
    r->who[HR_ACCESS_PUBLISH] = (uint8_t)pub;
    return 0;
}

static int read_file(const char *path, unsigned char **out, size_t *outlen, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "--jwt-public-key %s: %s", path, strerror(errno));
        return HR_EINVAL;
    }
    unsigned char *buf = malloc(65536);
    size_t n = buf ? fread(buf, 1, 65535, f) : 0;
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (!buf || bad || n == 0) {
        free(buf);
        snprintf(err, errlen, "--jwt-public-key %s: %s", path,
                 !buf ? "out of memory" : "unreadable, empty or over 64 KB");
        return HR_EINVAL;
    }
    buf[n] = 0;
    *out = buf;
    *outlen = n;
    return 0;
}

/* The algorithm a PEM public key verifies: RS256 for RSA, ES256 for P-256. */
static int key_alg(const unsigned char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    int alg = HR_AUTH_ALG_NONE;
    if (k && EVP_PKEY_base_id(k) == EVP_PKEY_RSA) {
        alg = HR_AUTH_ALG_RS256;
    } else if (k && EVP_PKEY_base_id(k) == EVP_PKEY_EC) {
        char curve[64];
        size_t cl = 0;
        if (EVP_PKEY_get_utf8_string_param(k, "group", curve, sizeof curve, &cl) == 1 &&
            strcmp(curve, "prime256v1") == 0)
            alg = HR_AUTH_ALG_ES256;
    }
    EVP_PKEY_free(k);
    BIO_free(bio);
    return alg;
}

static int add_rule(struct hr_auth *a, const char *pattern, int read, int pub)
{
    struct hr_rule *r = &a->rules[a->nrules++];
    snprintf(r->pattern, sizeof r->pattern, "%s", pattern);
    r->who[HR_ACCESS_READ] = (uint8_t)read;
    r->who[HR_ACCESS_PUBLISH] = (uint8_t)pub;
    return 0;
}

int hr_auth_init(struct hr_auth *a, const struct hr_auth_config *cfg, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->cookie, sizeof a->cookie, "%s", cfg->cookie ? cfg->cookie : HR_AUTH_COOKIE_DEFAULT);
    if (cfg->jwt_secret && cfg->jwt_public_key_file) {
        snprintf(err, errlen, "--jwt-secret and --jwt-public-key: give one of them");
        return HR_EINVAL;
    }
    if (cfg->jwt_secret) {
        size_t n = strlen(cfg->jwt_secret);
        if (n < 32) {
            /* RFC 7518 §3.2: a key of at least the hash's size */
            snprintf(err, errlen, "--jwt-secret: at least 32 bytes, not %zu", n);
            return HR_EINVAL;
        }
        a->key = (unsigned char *)strdup(cfg->jwt_secret);
        a->key_len = n;
        a->alg = HR_AUTH_ALG_HS256;
    } else if (cfg->jwt_public_key_file) {
        if (read_file(cfg->jwt_public_key_file, &a->key, &a->key_len, err, errlen) < 0)
            return HR_EINVAL;
        a->alg = key_alg(a->key, a->key_len);
        if (a->alg == HR_AUTH_ALG_NONE) {
            snprintf(err, errlen,
                     "--jwt-public-key %s: not a PEM RSA or P-256 public key (RS256, ES256)",
                     cfg->jwt_public_key_file);
            hr_auth_free(a);
            return HR_EINVAL;
        }
    }
    if (cfg->publish_key) {
        a->publish_key_len = strlen(cfg->publish_key);
        if (a->publish_key_len < 16) {
            snprintf(err, errlen, "--publish-key: at least 16 characters");
            hr_auth_free(a);
            return HR_EINVAL;
        }
        a->publish_key = strdup(cfg->publish_key);
    }
    if (cfg->nrules > HR_AUTH_RULES_MAX) {
        snprintf(err, errlen, "--channel-rule: at most %d", HR_AUTH_RULES_MAX);
        hr_auth_free(a);
        return HR_EINVAL;
    }
    for (size_t i = 0; i < cfg->nrules; i++) {
        if (hr_auth_rule_parse(cfg->rules[i], &a->rules[a->nrules]) < 0) {
            snprintf(err, errlen,
                     "--channel-rule wants 'PATTERN READ PUBLISH' (each all|token|owner|none; "
                     "owner with a {sub} pattern), not '%s'",
                     cfg->rules[i]);
            hr_auth_free(a);
            return HR_EINVAL;
        }
        a->nrules++;
    }
    a->enabled = a->alg != HR_AUTH_ALG_NONE || a->publish_key || cfg->nrules;
    if (a->enabled) {
        /* user:{id} belongs to the token whose sub is id; with no token key it stays readable
         * (nobody could prove who they are) but only the publish key publishes on it */
        add_rule(a, "user:{sub}", a->alg != HR_AUTH_ALG_NONE ? HR_WHO_OWNER : HR_WHO_ALL,
                 HR_WHO_NONE);
    }
    add_rule(a, "*", HR_WHO_ALL, HR_WHO_ALL);
    return 0;
}

void hr_auth_free(struct hr_auth *a)
{
    if (a->key)
        OPENSSL_cleanse(a->key, a->key_len);
    free(a->key);
    free(a->publish_key);
    a->key = NULL;
    a->publish_key = NULL;
}

void hr_principal_clear(struct hr_principal *p)
{
    free(p->grants);
    memset(p, 0, sizeof(*p));
}

int hr_principal_copy(struct hr_principal *dst, const struct hr_principal *src)
{
    *dst = *src;
    if (!src->grants)
        return 0;
    size_t n = 0;
    while (src->grants[n])
        n += strlen(src->grants + n) + 1;
    dst->grants = malloc(n + 1);
    if (!dst->grants)
        return HR_ENOMEM;
    memcpy(dst->grants, src->grants, n + 1);
    return 0;
}

/* A numeric claim (exp, nbf: NumericDate, seconds): 1 and *v, 0 when absent, -1 when not a
 * number. */
static int num_claim(jwt_t *jwt, const char *name, long *v)
{
    char *json = jwt_get_grants_json(jwt, name);
    if (!json)
        return 0;
    json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
    free(json);
    int ok = json_is_number(j);
    if (ok)
        *v = (long)json_number_value(j);
    json_decref(j);
    return ok ? 1 : -1;
}

/* The "subscribe" and "publish" claims (arrays of patterns) packed into p->grants. */
static int take_grants(jwt_t *jwt, struct hr_principal *p)
{
    static const char *const claims[2] = {"subscribe", "publish"};
    json_t *arr[2] = {NULL, NULL};
    size_t total = 1, count = 0;
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        char *json = jwt_get_grants_json(jwt, claims[i]);
        if (!json)
            continue;
        arr[i] = json_loads(json, JSON_DECODE_ANY, NULL);
        free(json);
        if (!json_is_array(arr[i])) {
            rc = HR_EINVAL;
            goto done;
        }
        size_t k;
        json_t *v;
        json_array_foreach(arr[i], k, v)
        {
            size_t n = json_string_length(v);
            if (!json_is_string(v) || n == 0 || n > HR_AUTH_PATTERN_MAX ||
                ++count > HR_AUTH_GRANTS_MAX || memchr(json_string_value(v), 0, n)) {
                rc = HR_EINVAL;
                goto done;
            }
            total += n + 2;
        }
    }
    if (count == 0)
        goto done;
    char *g = p->grants = malloc(total);
    if (!g) {
        rc = HR_ENOMEM;
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        size_t k;
        json_t *v;
        json_array_foreach(arr[i], k, v)
        {
            *g++ = i == 0 ? 'r' : 'p';
            size_t n = json_string_length(v);
            memcpy(g, json_string_value(v), n + 1);
            g += n + 1;
        }
    }
    *g = 0;
done:
    json_decref(arr[0]);
    json_decref(arr[1]);
    return rc;
}

int hr_auth_secret_equal(const char *given, size_t given_len, const char *secret, size_t secret_len)
{
    /* digests of equal length, so neither the length nor the first differing byte of the
     * secret shows in the time taken */
    unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
    unsigned alen = 0, blen = 0;
    if (!EVP_Digest(given, given_len, a, &alen, EVP_sha256(), NULL) ||
        !EVP_Digest(secret, secret_len, b, &blen, EVP_sha256(), NULL) || alen != blen)
        return 0;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

static int is_publish_key(const struct hr_auth *a, const char *tok, size_t len)
{
    return a->publish_key && len == a->publish_key_len &&
           CRYPTO_memcmp(tok, a->publish_key, len) == 0;
}

int hr_auth_verify(const struct hr_auth *a, const char *tok, size_t len, uint64_t now_ms,
                   struct hr_principal *p, const char **why)
{
    static const jwt_alg_t algs[] = {JWT_ALG_NONE, JWT_ALG_HS256, JWT_ALG_RS256, JWT_ALG_ES256};
    memset(p, 0, sizeof(*p));
    if (is_publish_key(a, tok, len)) {
        p->kind = HR_PRINCIPAL_KEY;
        return 0;
    }
    *why = "invalid token";
    if (a->alg == HR_AUTH_ALG_NONE) {
        *why = "tokens are not accepted here (no token key is configured)";
        return HR_EUNAUTH;
    }
    if (len > HR_AUTH_TOKEN_MAX)
        *why = "token too long";
    if (len == 0 || len > HR_AUTH_TOKEN_MAX || memchr(tok, 0, len))
        return HR_EUNAUTH;
    char buf[HR_AUTH_TOKEN_MAX + 1];
    memcpy(buf, tok, len);
    buf[len] = 0;
    jwt_t *jwt = NULL;
    int rc = HR_EUNAUTH;
    if (jwt_decode(&jwt, buf, a->key, (int)a->key_len) != 0 || !jwt)
        goto done;
    /* the signature was checked with the algorithm the token names: only ours counts (an
     * HS256 token "signed" with an RSA public key as its secret must not pass, nor "none") */
    if (jwt_get_alg(jwt) != algs[a->alg]) {
        *why = "invalid token: signed with another algorithm";
        goto done;
    }
    long exp = 0, nbf = 0;
    int has_exp = num_claim(jwt, "exp", &exp), has_nbf = num_claim(jwt, "nbf", &nbf);
    if (has_exp < 0 || has_nbf < 0) {
        *why = "invalid token: exp and nbf must be numbers";
        goto done;
    }
    if (has_exp && (exp <= 0 || now_ms >= (uint64_t)exp * 1000)) {
        *why = "token expired";
        goto done;
    }
    if (has_nbf && nbf > 0 && now_ms < (uint64_t)nbf * 1000) {
        *why = "token not valid yet";
        goto done;
    }
    errno = 0;
    const char *sub = jwt_get_grant(jwt, "sub");
    if (sub && (!*sub || strlen(sub) > HR_AUTH_SUB_MAX)) {
        *why = "invalid token: sub must be 1 to 128 characters";
        goto done;
    }
    if (take_grants(jwt, p) < 0) {
        *why = "invalid token: subscribe and publish must be arrays of channel patterns";
        goto done;
    }
    p->kind = HR_PRINCIPAL_TOKEN;
    p->exp_ms = has_exp ? (uint64_t)exp * 1000 : 0;
    if (sub)
        snprintf(p->sub, sizeof p->sub, "%s", sub);
    rc = 0;
done:
    OPENSSL_cleanse(buf, len);
    jwt_free(jwt);
    if (rc < 0)
        hr_principal_clear(p);
    return rc;
}

/* Does name match pattern? With "{sub}": *owner is the channel's middle part (not
 * NUL-terminated, *owner_len long). */
static int rule_match(const char *pattern, const char *name, const char **owner, size_t *owner_len)
{
    long at = sub_at(pattern);
    size_t len = strlen(name);
    if (at < 0)
        return fnmatch(pattern, name, 0) == 0;
    size_t pre = (size_t)at, post = strlen(pattern) - pre - 5;
    if (len <= pre + post || memcmp(name, pattern, pre) != 0 ||
        memcmp(name + len - post, pattern + pre + 5, post) != 0)
        return 0;
    *owner = name + pre;
    *owner_len = len - pre - post;
    return 1;
}

static int granted(const struct hr_principal *p, const char *name, enum hr_access what)
{
    if (!p || !p->grants)
        return 0;
    char kind = what == HR_ACCESS_READ ? 'r' : 'p';
    for (const char *g = p->grants; *g; g += strlen(g) + 1)
        if (*g == kind && fnmatch(g + 1, name, 0) == 0)
            return 1;
    return 0;
}

int hr_auth_allow(const struct hr_auth *a, const struct hr_principal *p, const char *name,
                  size_t len, enum hr_access what)
{
    if (!a->enabled)
        return 0; /* the seed's open demo: no rule, no key */
    char n[HR_AUTH_PATTERN_MAX + 1];
    if (len > HR_AUTH_PATTERN_MAX)
        return HR_EFORBIDDEN;
    memcpy(n, name, len);
    n[len] = 0;
    int kind = p ? p->kind : HR_PRINCIPAL_NONE;
    /* the publish key is the backends': it publishes anywhere, and reads nothing more */
    if (kind == HR_PRINCIPAL_KEY && what == HR_ACCESS_PUBLISH)
        return 0;
    if (granted(p, n, what))
        return 0;
    for (size_t i = 0; i < a->nrules; i++) {
        const char *owner = NULL;
        size_t olen = 0;
        if (!rule_match(a->rules[i].pattern, n, &owner, &olen))
            continue;
        int ok;
        switch (a->rules[i].who[what]) {
        case HR_WHO_ALL: ok = 1; break;
        case HR_WHO_TOKEN: ok = kind == HR_PRINCIPAL_TOKEN; break;
        case HR_WHO_OWNER:
            ok = kind == HR_PRINCIPAL_TOKEN && owner && strlen(p->sub) == olen &&
                 memcmp(p->sub, owner, olen) == 0;
            break;
        default: ok = 0;
        }
        if (ok)
            return 0;
        return kind == HR_PRINCIPAL_NONE ? HR_EUNAUTH : HR_EFORBIDDEN;
    }
    return HR_EFORBIDDEN; /* not reached: the last rule matches everything */
}

const char *hr_auth_refusal(int rc, enum hr_access what)
{
    if (rc == HR_EUNAUTH)
        return what == HR_ACCESS_READ ? "a token is needed to read this channel"
                                      : "a token is needed to publish on this channel";
    return what == HR_ACCESS_READ ? "this token may not read this channel"
                                  : "this token may not publish on this channel";
}

long hr_auth_cookie(const char *hdr, size_t len, const char *name, const char **val)
{
    size_t nlen = strlen(name), i = 0;
    while (i < len) {
        while (i < len && (hdr[i] == ' ' || hdr[i] == '\t' || hdr[i] == ';'))
            i++;
        size_t start = i;
        while (i < len && hdr[i] != ';')
            i++;
        /* one "name=value" pair in hdr[start, i) */
        const char *eq = memchr(hdr + start, '=', i - start);
        if (eq && (size_t)(eq - (hdr + start)) == nlen && memcmp(hdr + start, name, nlen) == 0) {
            const char *v = eq + 1, *end = hdr + i;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            if (end - v >= 2 && v[0] == '"' && end[-1] == '"') {
                v++;
                end--;
            }
            *val = v;
            return end - v;
        }
    }
    return -1;
}

char *hr_auth_mint(const struct hr_auth *a, const char *sub, uint64_t now_ms, uint32_t ttl_s)
{
    if (a->alg != HR_AUTH_ALG_HS256)
        return NULL;
    jwt_t *jwt = NULL;
    char *out = NULL;
    long now = (long)(now_ms / 1000);
    if (jwt_new(&jwt) == 0 && jwt_add_grant(jwt, "sub", sub) == 0 &&
        jwt_add_grant_int(jwt, "iat", now) == 0 &&
        jwt_add_grant_int(jwt, "exp", now + (long)ttl_s) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, a->key, (int)a->key_len) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}
