/* SPDX-License-Identifier: MIT */
/*
 * http-hello: an HTTP/1.1 "Hello, World!" server on tide's protocols, the
 * server wrk and the TechEmpower plaintext test are run against.
 *
 * usage: http-hello [--host H] [--port P] [--threads N] [--idle-timeout S]
 *                   [--request-timeout S] [--max-clients N] [--max-buffered BYTES]
 *
 *   --host H     listen on H (default: every interface)
 *   --port P     default 8888; 0 takes a free port (the "Serving on" line
 *                says which)
 *   --threads N  N loops, one per thread, each with its own listening socket
 *                on the same port (SO_REUSEPORT: the kernel spreads the
 *                connections over them); default 1
 *   --idle-timeout S     a connection without traffic for S seconds is
 *                closed (a keep-alive between requests); default 60, 0 never
 *   --request-timeout S  a request's headers must come within S seconds of
 *                its first byte, its body within S seconds of its headers,
 *                or the connection is closed; default 10, 0 no limit
 *   --max-clients N      connections at once over all threads; more are
 *                answered 503 and closed; default the fd limit less 32, at
 *                most 10,000
 *   --max-buffered BYTES  incomplete requests held over all connections
 *                (k, m, g: KiB, MiB, GiB); a connection that needs more is
 *                closed; default 64m
 *
 * Slow clients cannot take the server down: one that connects and says
 * nothing, or sends its request a byte at a time, is cut by the timeouts
 * (nginx's keepalive_timeout and client_header_timeout, Go's
 * ReadHeaderTimeout), and past the cap new connections are refused rather
 * than left waiting for a free descriptor. A connection holds at most the
 * headers of its incomplete request, 8 KiB (431 past that), and one
 * receive (64 KiB); a body of up to 1 MiB (413 past that) is dropped as it
 * arrives; and all of them together at most --max-buffered.
 *
 * Every request gets "Hello, World!" (13 bytes, text/plain) whatever its
 * method and path (HEAD gets the headers only). Connections are kept alive
 * (HTTP/1.1's default; HTTP/1.0 only with "Connection: keep-alive") until
 * the client sends "Connection: close", which is answered, then the
 * connection closed. A request body (Content-Length, up to 1 MiB) is read
 * and dropped as it arrives; chunked bodies are refused (501). Ctrl-C or
 * SIGTERM stops every loop (each has its own handlers): the servers stop
 * accepting, the connections are closed, and one line says how many
 * connections and requests were served before the exit (status 0).
 *
 * The fast path is the protocol API, in net-common.c's struct ex_conn:
 * data_received parses the requests straight from the bytes the transport
 * hands over (from io_uring's provided buffers, without a copy), answers
 * every complete one (so pipelined requests cost one write for the lot),
 * and copies only the partial request left at the end, if any, to the
 * connection's buffer; this file answers one request, which http-parse.c
 * parses (on its own so that it can be tested and fuzzed). The Date
 * header is formatted once a second per loop by a timer, not per response.
 * When the client does not read its answers, pause_writing stops reading
 * its requests until the write buffer drains.
 *
 * https-hello is this file built with EX_TLS (https-hello.c): the same
 * server over TLS, with --cert/--key or a self-signed certificate.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http-parse.h"
#include "net-common.h"
#include "tide.h"

/* https-hello.c is this file with EX_TLS defined: the same server over TLS. */
#ifdef EX_TLS
#include "tls-common.h"
#define NAME "https-hello"
#else
#define NAME "http-hello"
#endif

static const char body[] = "Hello, World!";

#define HELLO_HEADERS "HTTP/1.1 200 OK\r\n" \
		      "Server: tide\r\n" \
		      "Content-Type: text/plain\r\n" \
		      "Content-Length: 13\r\n"

/* What each loop keeps for its connections (struct ex_worker's data). */
struct worker {
	struct tide_loop *loop;
	struct tide_handle date_timer;
	char date[64];            /* "Date: Thu, 26 Nov 2026 07:00:00 GMT\r\n" */
	size_t date_len;
	/* The whole answer to a keep-alive HTTP/1.1 request, Date included
	 * (one copy per request); hello_head_len of it are the headers. */
	char hello[sizeof(HELLO_HEADERS) + 64 + 2 + 13];
	size_t hello_len, hello_head_len;
};

/* ---------------------------------------------------------- the date -- */

static void update_date(void *arg)
{
	struct worker *w = arg;
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	w->date_len = strftime(w->date, sizeof(w->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
	/* Fits: the headers, at most 63 bytes of date, CRLF and the body. */
	w->hello_head_len = (size_t)snprintf(w->hello, sizeof(w->hello), HELLO_HEADERS "%s\r\n", w->date);
	memcpy(w->hello + w->hello_head_len, body, sizeof(body) - 1);
	w->hello_len = w->hello_head_len + sizeof(body) - 1;
	/* Again at the next second boundary. */
	tide_call_later(w->loop, 1.0 - now.tv_nsec / 1e9 + 0.001, update_date, w, &w->date_timer);
}

/* ------------------------------------------------------- the answers -- */

static void answer_hello(struct ex_conn *c, int head, int version_minor, int keep_alive)
{
	struct worker *w = c->w;

	if (keep_alive && version_minor == 1) {
		ex_out_put(c->out, w->hello, head ? w->hello_head_len : w->hello_len);
		return;
	}
	EX_OUT_LIT(c->out, HELLO_HEADERS);
	ex_out_put(c->out, w->date, w->date_len);
	if (!keep_alive)
		EX_OUT_LIT(c->out, "Connection: close\r\n");
	else if (version_minor == 0)
		EX_OUT_LIT(c->out, "Connection: keep-alive\r\n");
	EX_OUT_LIT(c->out, "\r\n");
	if (!head)
		ex_out_put(c->out, body, sizeof(body) - 1);
}

/* The connection is closed after it. */
static void answer_error(struct ex_conn *c, const char *status)
{
	struct worker *w = c->w;

	EX_OUT_LIT(c->out, "HTTP/1.1 ");
	ex_out_put(c->out, status, strlen(status));
	EX_OUT_LIT(c->out, "\r\nServer: tide\r\nContent-Length: 0\r\nConnection: close\r\n");
	ex_out_put(c->out, w->date, w->date_len);
	EX_OUT_LIT(c->out, "\r\n");
}

/* ---------------------------------------------------- the requests -- */

/*
 * ex_serve_opts.answer: the request at p, answered once its headers are
 * in; its body is dropped as it arrives (c->discard), never kept. The
 * parser's state (c->state) keeps how far the search for the end of the
 * headers got, so a slow client's headers are searched once.
 */
static long answer_request(struct ex_conn *c, const char *p, size_t n)
{
	struct http_request req;
	long r = http_parse(c->state, NULL, p, n, &req);

	if (r == HTTP_NEED_MORE)
		return 0;
	if (r < 0) {
		answer_error(c, r == HTTP_TOO_LARGE ? "431 Request Header Fields Too Large"
				: r == HTTP_BODY_TOO_LARGE ? "413 Content Too Large"
				: r == HTTP_CHUNKED ? "501 Not Implemented"
						    : "400 Bad Request");
		return r;
	}
	answer_hello(c, req.head, req.version_minor, req.keep_alive);
	if (!req.keep_alive)
		c->closing = 1;
	c->discard = req.content_length;
	return r;
}

/* -------------------------------------------------------- the loops -- */

static int loop_init(struct ex_worker *ew)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->loop = ew->loop;
	ew->data = w;
	update_date(w);
	return 0;
}

static void loop_fini(struct ex_worker *ew)
{
	struct worker *w = ew->data;

	if (!w)
		return;
	tide_handle_cancel(&w->date_timer);
	free(w);
	ew->data = NULL;
}

static void usage(FILE *f)
{
	/* The second line lines up under the first option. */
	int indent = (int)sizeof("usage: " NAME);

	fprintf(f, "usage: " NAME " [--host H] [--port P] [--threads N] [--idle-timeout S]\n"
		   "%*s[--request-timeout S] [--max-clients N] [--max-buffered BYTES]\n", indent, "");
#ifdef EX_TLS
	fprintf(f, "%*s[--cert FILE [--key FILE] | --write-cert FILE]\n", indent, "");
#endif
	fprintf(f, "  --host H     listen on H (default: every interface)\n"
		   "  --port P     listen on port P (default 8888; 0: a free port)\n"
		   "  --threads N  N loops in N threads sharing the port (default 1)\n"
		   "  --idle-timeout S     close a connection after S seconds without traffic\n"
		   "                       (default 60; 0: never)\n"
		   "  --request-timeout S  close a connection whose request headers take more than\n"
		   "                       S seconds from their first byte, or its body as long\n"
		   "                       after them (default 10; 0: no limit)\n"
		   "  --max-clients N      connections at once; more are answered 503 and closed\n"
		   "                       (default: the fd limit less 32, at most 10000)\n"
		   "  --max-buffered BYTES incomplete requests held over all connections; a\n"
		   "                       connection that needs more is closed (default 64m)\n");
#ifdef EX_TLS
	fprintf(f, "  --cert FILE  the certificate chain to serve (PEM)\n"
		   "  --key FILE   its private key (PEM; default: in the --cert file)\n"
		   "  --write-cert FILE    without --cert a self-signed certificate for localhost\n"
		   "                       and 127.0.0.1 is made at start (its SHA-256\n"
		   "                       fingerprint printed): write it to FILE (PEM) for\n"
		   "                       clients to trust (curl --cacert FILE)\n"
		   "ALPN: http/1.1 only (a client offering only other protocols is refused).\n");
#endif
	fprintf(f, "Request headers: at most 8 KiB (431); bodies: at most 1 MiB (413), dropped.\n");
}

static const char refuse_503[] = "HTTP/1.1 503 Service Unavailable\r\nServer: tide\r\n"
				  "Content-Length: 0\r\nConnection: close\r\n\r\n";

int main(int argc, char **argv)
{
	struct ex_serve_opts o = { .name = NAME, .port = 8888, .threads = 1,
				   .answer = answer_request, .state_size = sizeof(struct http_state),
				   .loop_init = loop_init, .loop_fini = loop_fini,
				   .idle_timeout = 60, .request_timeout = 10, .refuse = refuse_503,
				   .max_pending_total = 64 << 20 };
	struct ex_args args = { .usage = usage, .host = &o.host, .port = &o.port,
				.threads = &o.threads, .idle_timeout = &o.idle_timeout,
				.request_timeout = &o.request_timeout, .max_clients = &o.max_clients,
				.max_buffered = &o.max_pending_total };
	int rc;
#ifdef EX_TLS
	/* HTTP/1.1 is all this server speaks: ALPN says so. */
	static const char *const alpn[] = { "http/1.1", NULL };
	struct ex_tls_args targs = { 0 };
	struct tide_tls_opts tls = { .size = sizeof(tls), .alpn = alpn };

	args.tls = &targs;
#endif
	rc = ex_parse_args(argc, argv, &args);
	if (rc >= 0)
		return rc;
#ifdef EX_TLS
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (ex_tls_server_context(NAME, &targs, &tls.ctx) < 0)
		return 1;
	o.tls = &tls;
	rc = ex_serve(&o);
	SSL_CTX_free(tls.ctx);
	return rc;
#else
	return ex_serve(&o);
#endif
}
