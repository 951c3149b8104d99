/* SPDX-License-Identifier: MIT */
/*
 * tls-echo-server: the tutorial's stream echo server over TLS
 * (asyncio.start_server(handle_echo, host, port, ssl=context)). The
 * handler is echo-server-stream's, untouched: its reader and writer read
 * and write plaintext. This is echo-server-stream.c built with EX_TLS,
 * and it prints what echo-server-stream prints, after one line with its
 * certificate's SHA-256 fingerprint.
 *
 * usage: tls-echo-server [--host H] [--port P] [--once]
 *                        [--cert FILE [--key FILE] | --write-cert FILE]
 *
 *   --cert FILE        the certificate chain to serve (PEM)
 *   --key FILE         its private key (PEM; default: in the --cert file)
 *   --write-cert FILE  without --cert, a self-signed certificate for
 *                      localhost and 127.0.0.1 is made at start: write it
 *                      to FILE (PEM), for clients to trust
 *
 *     tls-echo-server --port 8443 --write-cert /tmp/echo.pem --once &
 *     tls-echo-client --port 8443 --cafile /tmp/echo.pem --server-name localhost
 */
#define EX_TLS 1
#include "echo-server-stream.c"
