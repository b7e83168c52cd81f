/* auth.h - who may read and publish which channel: signed tokens (JWT, RFC 7519, verified
 * with libjwt: HS256 with a shared secret, RS256 / ES256 with a public key), the publish key of
 * backends, and channel rules (docs/security.md "Rules"). One decision function,
 * hr_auth_allow, serves every transport, Socket.IO rooms and the C API; everything here is
 * pure (no I/O after hr_auth_init), so it is unit-tested and fuzzed directly. */
#ifndef HR_AUTH_AUTH_H
#define HR_AUTH_AUTH_H

#include <stddef.h>
#include <stdint.h>

#define HR_AUTH_SUB_MAX 128     /* a token's subject: "user:{sub}" must fit a channel name */
#define HR_AUTH_TOKEN_MAX 8192  /* longer tokens are refused before they are parsed */
#define HR_AUTH_RULES_MAX 32    /* --channel-rule, repeatable */
#define HR_AUTH_GRANTS_MAX 32   /* patterns in a token's "subscribe" and "publish" claims */
#define HR_AUTH_PATTERN_MAX 200 /* a pattern is at most a channel name long */
#define HR_AUTH_COOKIE_DEFAULT "herald_token"

enum hr_access { HR_ACCESS_READ = 0, HR_ACCESS_PUBLISH = 1 };

/* Who a rule lets do something. */
enum hr_who {
    HR_WHO_ALL,   /* anyone, no token needed */
    HR_WHO_TOKEN, /* any valid token (to publish: also the publish key) */
    HR_WHO_OWNER, /* a token whose sub is the channel's {sub} part (to publish: also the key) */
    HR_WHO_NONE,  /* only what a token's claims grant (to publish: also the key) */
};

/* A rule: channels matching pattern, who may read them, who may publish on them. A pattern is
 * an fnmatch(3) glob ("news:*"), or literal text around one "{sub}" ("user:{sub}"), which
 * matches any non-empty middle and makes that middle the channel's owner. */
struct hr_rule {
    char pattern[HR_AUTH_PATTERN_MAX + 1];
    uint8_t who[2]; /* enum hr_who, by enum hr_access */
};

/* The configuration, as the command line gives it. */
struct hr_auth_config {
    const char *jwt_secret;          /* HS256; NULL: none */
    const char *jwt_public_key_file; /* PEM: RS256 (RSA) or ES256 (P-256); NULL: none */
    const char *publish_key;         /* a backend's "Authorization: Bearer KEY"; NULL: none */
    const char *cookie;              /* the cookie a token may come in; NULL: the default */
    const char *const *rules;        /* "PATTERN READ PUBLISH", first match wins */
    size_t nrules;
};

enum { HR_AUTH_ALG_NONE, HR_AUTH_ALG_HS256, HR_AUTH_ALG_RS256, HR_AUTH_ALG_ES256 };

struct hr_auth {
    int enabled; /* any access control configured: otherwise every channel is open */
    int alg;     /* HR_AUTH_ALG_*: tokens are accepted when not NONE */
    unsigned char *key;
    size_t key_len;
    char *publish_key;
    size_t publish_key_len;
    char cookie[64];
    struct hr_rule rules[HR_AUTH_RULES_MAX + 2]; /* the configured ones, then the built-in */
    size_t nrules;
};

/* Whom a request or socket speaks for. kind NONE: nobody (no token given). */
enum { HR_PRINCIPAL_NONE, HR_PRINCIPAL_TOKEN, HR_PRINCIPAL_KEY };
struct hr_principal {
    uint8_t kind;
    uint64_t exp_ms; /* the token's expiry, Unix ms; 0: none */
    char sub[HR_AUTH_SUB_MAX + 1];
    /* The token's grants: "r" or "p" then a pattern, NUL-terminated, one after the other,
     * an empty one last; NULL when it has none. Owned (hr_principal_clear). */
    char *grants;
};

/* Set up from cfg (reads the public key file). 0, or HR_EINVAL with a one-line reason. */
int hr_auth_init(struct hr_auth *a, const struct hr_auth_config *cfg, char *err, size_t errlen);
void hr_auth_free(struct hr_auth *a);

/* Parse one rule ("news:* all none") into r. 0, or HR_EINVAL. */
int hr_auth_rule_parse(const char *text, struct hr_rule *r);

/* Verify a token (a JWT, or the publish key) into p. 0, or HR_EUNAUTH with *why a short
 * reason for the client ("token expired", "invalid token"). now_ms: Unix time in ms. */
int hr_auth_verify(const struct hr_auth *a, const char *tok, size_t len, uint64_t now_ms,
                   struct hr_principal *p, const char **why);
void hr_principal_clear(struct hr_principal *p);
/* *dst = a copy of src (its grants duplicated): 0, or HR_ENOMEM. */
int hr_principal_copy(struct hr_principal *dst, const struct hr_principal *src);

/* May p (NULL: nobody) do what on channel name? 0 when it may; HR_EUNAUTH when a token would
 * be needed (401), HR_EFORBIDDEN when p has one that does not allow it (403). */
int hr_auth_allow(const struct hr_auth *a, const struct hr_principal *p, const char *name,
                  size_t len, enum hr_access what);

/* Whether given equals secret, in a time that depends on neither (both are hashed, the
 * digests compared with CRYPTO_memcmp): for passwords such as --admin-password. */
int hr_auth_secret_equal(const char *given, size_t given_len, const char *secret,
                         size_t secret_len);

/* A short sentence for a refusal of hr_auth_allow, for the client. */
const char *hr_auth_refusal(int rc, enum hr_access what);

/* The value of cookie name in a Cookie header (RFC 6265 §4.2.1: "a=1; b=2"): its length, and
 * *val pointing into hdr; -1 when it is not there. */
long hr_auth_cookie(const char *hdr, size_t len, const char *name, const char **val);

/* A token for sub valid ttl_s seconds from now_ms, signed with the HS256 secret (the dev-only
 * token endpoint). malloc'ed, or NULL (no secret configured, or out of memory). */
char *hr_auth_mint(const struct hr_auth *a, const char *sub, uint64_t now_ms, uint32_t ttl_s);

#endif
