/* SPDX-License-Identifier: MIT */
/*
 * https-hello: http-hello over TLS (tide_create_server with TLS options:
 * each connection's protocol sees plaintext only). Everything else is
 * http-hello's, this is http-hello.c built with EX_TLS: the same
 * answers, limits, --threads and graceful stop on SIGINT and SIGTERM.
 *
 * usage: https-hello [http-hello's options] [--cert FILE [--key FILE] | --write-cert FILE]
 *
 *   --cert FILE        the certificate chain to serve (PEM)
 *   --key FILE         its private key (PEM; default: in the --cert file)
 *   --write-cert FILE  without --cert, a self-signed certificate for
 *                      localhost and 127.0.0.1 (an EC P-256 key, 30 days)
 *                      is made at start: write it to FILE (PEM), so that a
 *                      client can trust it
 *
 * Either way one line gives the certificate's SHA-256 fingerprint, as
 * `openssl x509 -noout -fingerprint -sha256` prints it. The server offers
 * ALPN "http/1.1" only: a client that offers only other protocols (h2) is
 * refused with the no_application_protocol alert; one that offers none is
 * served. Try it:
 *
 *     https-hello --port 8443 --write-cert /tmp/hello.pem &
 *     curl --cacert /tmp/hello.pem https://localhost:8443/
 */
#define EX_TLS 1
#include "http-hello.c"
