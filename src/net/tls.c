/* tls.c - the process's TLS context: TLS 1.2 and later, no compression, no renegotiation, the
 * server's cipher order, ALPN "http/1.1" when the client offers ALPN; reloaded whole (SIGHUP)
 * while sessions made from the previous one go on with it. */
#include "tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/error.h"

/* TLS 1.2 suites: forward secrecy and AEAD only (TLS 1.3 has its own, all of them fine). */
#define HR_TLS12_CIPHERS                                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct hr_tls {
    uv_mutex_t lock; /* for ctx: workers take a reference under it, a reload swaps it */
    SSL_CTX *ctx;
    char *cert, *key;
};

/* The last error OpenSSL queued (the most specific), or the system's. */
static void explain(char *err, size_t errlen, const char *flag, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    char buf[256];
    if (e && !why) {
        ERR_error_string_n(e, buf, sizeof buf);
        why = buf;
    }
    snprintf(err, errlen, "%s %s: %s", flag, file, why ? why : "cannot be used");
    ERR_clear_error();
}

/* An encrypted key would ask for a passphrase on the terminal: refuse it instead. */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *ud)
{
    return -1;
}

/* ALPN: HTTP/1.1 is all herald speaks; a client that offers only other protocols gets none
 * selected (and may go on or give up), rather than a failed handshake. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *ud)
{
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *sel;
    unsigned char sellen;
    if (SSL_select_next_proto(&sel, &sellen, http11, sizeof http11 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    *outlen = sellen;
    return SSL_TLSEXT_ERR_OK;
}

static int readable(const char *file, const char *flag, char *err, size_t errlen)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(err, errlen, "%s %s: %s", flag, file, strerror(errno));
        return 0;
    }
    fclose(f);
    return 1;
}

static SSL_CTX *make_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
    if (!readable(cert, "--tls-cert", err, errlen) || !readable(key, "--tls-key", err, errlen))
        return NULL;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        explain(err, errlen, "TLS", "context");
        return NULL;
    }
    uint64_t opts =
        SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* a client that closes without close_notify ends its HTTP/1.1 stream like a TCP EOF does
     * (every message herald reads carries its own length) */
    opts |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
    SSL_CTX_set_options(ctx, opts);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* output leaves one record at a time (net/conn.c), from buffers that move between
     * retries; idle sessions give their 2 x 16 KB buffers back */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase_cb);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    /* resumption by session tickets only: no cache of sessions held on the server */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"herald", 6);
    if (SSL_CTX_set_cipher_list(ctx, HR_TLS12_CIPHERS) != 1) {
        explain(err, errlen, "TLS", "ciphers");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        explain(err, errlen, "--tls-cert", cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) != ERR_LIB_X509 || ERR_GET_REASON(e) != X509_R_KEY_VALUES_MISMATCH) {
            explain(err, errlen, "--tls-key", key);
            goto fail;
        }
        goto mismatch; /* a key, but another certificate's */
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
    mismatch:
        ERR_clear_error();
        snprintf(err, errlen, "--tls-key %s is not the key of the certificate in --tls-cert %s",
                 key, cert);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct hr_tls *hr_tls_new(const char *cert, const char *key, char *err, size_t errlen)
{
    struct hr_tls *t = calloc(1, sizeof(*t));
    if (!t || !(t->cert = strdup(cert)) || !(t->key = strdup(key))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(t->ctx = make_ctx(cert, key, err, errlen)))
        goto fail;
    if (uv_mutex_init(&t->lock) < 0) {
        snprintf(err, errlen, "cannot make a lock");
        SSL_CTX_free(t->ctx);
        goto fail;
    }
    return t;
fail:
    if (t) {
        free(t->cert);
        free(t->key);
        free(t);
    }
    return NULL;
}

int hr_tls_reload(struct hr_tls *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = make_ctx(t->cert, t->key, err, errlen);
    if (!ctx)
        return HR_EINVAL;
    uv_mutex_lock(&t->lock);
    SSL_CTX *old = t->ctx;
    t->ctx = ctx;
    uv_mutex_unlock(&t->lock);
    SSL_CTX_free(old); /* the sessions made from it hold their own references */
    return 0;
}

const char *hr_tls_cert_file(const struct hr_tls *t)
{
    return t->cert;
}

void hr_tls_free(struct hr_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    uv_mutex_destroy(&t->lock);
    free(t->cert);
    free(t->key);
    free(t);
}

SSL *hr_tls_session(struct hr_tls *t, int fd)
{
    uv_mutex_lock(&t->lock);
    SSL_CTX *ctx = t->ctx;
    SSL_CTX_up_ref(ctx);
    uv_mutex_unlock(&t->lock);
    SSL *ssl = SSL_new(ctx); /* takes its own reference */
    SSL_CTX_free(ctx);
    if (ssl && SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        ssl = NULL;
    }
    if (ssl)
        SSL_set_accept_state(ssl);
    ERR_clear_error();
    return ssl;
}
