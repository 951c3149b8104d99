/* SPDX-License-Identifier: MIT */
/*
 * tls-common.h: the TLS examples' contexts (https-hello, tls-echo-server,
 * tls-echo-client), built only with OpenSSL. Their options are parsed by
 * net-common.c (struct ex_tls_args); this makes the SSL_CTX from them.
 *
 * - ex_tls_server_context(): --cert FILE --key FILE, or by default a
 *   self-signed certificate made at start (an EC P-256 key, CN localhost,
 *   subjectAltName DNS:localhost and IP:127.0.0.1, valid for 30 days),
 *   written as PEM to --write-cert FILE if asked (so that a client can
 *   trust it: curl --cacert FILE). Either way one line gives the
 *   certificate's SHA-256 fingerprint, as `openssl x509 -fingerprint
 *   -sha256` prints it.
 * - ex_tls_client_context(): tide_tls_client_context_new (the system's
 *   trusted certificates, the peer and its name verified), plus the
 *   certificates of --cafile FILE.
 */
#ifndef EXAMPLES_TLS_COMMON_H
#define EXAMPLES_TLS_COMMON_H

#include <openssl/ssl.h>

#include "net-common.h"

/* 0 and *out (the caller's: SSL_CTX_free), or < 0 after a message on
 * stderr naming name. */
int ex_tls_server_context(const char *name, const struct ex_tls_args *a, SSL_CTX **out);
int ex_tls_client_context(const char *name, const struct ex_tls_args *a, SSL_CTX **out);

#endif /* EXAMPLES_TLS_COMMON_H */
