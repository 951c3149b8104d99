/* SPDX-License-Identifier: MIT */
/*
 * tls-echo-client: the tutorial's stream echo client over TLS
 * (asyncio.open_connection(host, port, ssl=context,
 * server_hostname=name)): tide_open_connection_ex returns after the
 * handshake, and the server's certificate must be trusted and carry the
 * name. This is echo-client-stream.c built with EX_TLS, and it prints
 * what echo-client-stream prints, after one line with the protocol
 * version and cipher. A handshake that fails (a certificate that is not
 * trusted, or for another name) is an exit status of 1 and tide's
 * reason on stderr, e.g. "tls-echo-client: cannot connect to 127.0.0.1
 * port 8443: self-signed certificate".
 *
 * usage: tls-echo-client [--host H] [--port P] [--cafile FILE]
 *                        [--server-name NAME] [MESSAGE]
 *
 *   --cafile FILE       trust the certificates of FILE (PEM) too, besides
 *                       the system's
 *   --server-name NAME  the name the server's certificate must carry, also
 *                       sent as SNI (default: H)
 */
#define EX_TLS 1
#include "echo-client-stream.c"
