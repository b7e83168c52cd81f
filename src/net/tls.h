/* tls.h - the server's certificate for TLS (HTTPS, WSS): one OpenSSL context shared by every
 * worker of the process, replaced as a whole when the files are reloaded (SIGHUP). Sessions
 * made from the old context keep it (OpenSSL counts its references); new ones get the new. */
#ifndef HR_NET_TLS_H
#define HR_NET_TLS_H

#include <stddef.h>

struct hr_tls;
struct ssl_st;

/* Load cert (PEM; may hold the chain after the certificate) and key (PEM). NULL on failure,
 * with a one-line reason in err. */
struct hr_tls *hr_tls_new(const char *cert, const char *key, char *err, size_t errlen);
/* Build a new context from the same files; on success new handshakes use it, on failure
 * (err says why) the old one stays. 0 or an HR code. Safe from any thread. */
int hr_tls_reload(struct hr_tls *t, char *err, size_t errlen);
/* The files it was loaded from. */
const char *hr_tls_cert_file(const struct hr_tls *t);
/* Drop the shared context (sessions still using it keep it until they are freed). */
void hr_tls_free(struct hr_tls *t);

/* Internal to net/: a server-side session for a socket, from the current context; NULL when
 * out of memory. Safe from any thread. */
struct ssl_st *hr_tls_session(struct hr_tls *t, int fd);

#endif
