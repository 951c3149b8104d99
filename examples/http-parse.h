/* SPDX-License-Identifier: MIT */
/*
 * http-parse.h: http-hello's request parser, on its own so that it can be
 * unit-tested and fuzzed: an HTTP/1.0 or 1.1 request line and headers,
 * with what a server that answers every request alike must know of them
 * (HEAD, the version, keep-alive, the body's length). Pure: no tide call,
 * no I/O, no allocation.
 *
 * The bytes of one connection arrive in pieces. The caller keeps what has
 * not been parsed yet from the first byte of the pending request on, and
 * calls http_parse with all of it (the same bytes as the last call plus
 * the new ones; they may have moved). http_parse answers one of:
 *
 *   > 0  the request line and headers ended, that many bytes of them
 *        (the blank line included); *req says what they asked, and its
 *        body, req->content_length bytes, follows them (the caller
 *        takes the body: the next call parses the next request);
 *   HTTP_NEED_MORE (0)  the headers have not ended yet;
 *   < 0  what is wrong: HTTP_BAD (400), HTTP_TOO_LARGE (the headers are
 *        over the limit: 431), HTTP_BODY_TOO_LARGE (413), HTTP_CHUNKED
 *        (a Transfer-Encoding, which this server does not take: 501).
 *        The connection cannot go on.
 */
#ifndef EXAMPLES_HTTP_PARSE_H
#define EXAMPLES_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* What a request may be; a zero field takes the default. */
struct http_limits {
	size_t max_header;     /* request line and headers, bytes (default HTTP_MAX_HEADER) */
	uint64_t max_body;     /* Content-Length (default HTTP_MAX_BODY) */
};

#define HTTP_MAX_HEADER ((size_t)8 * 1024)
#define HTTP_MAX_BODY ((uint64_t)1024 * 1024)

struct http_request {
	int head;                /* HEAD: no body in the answer */
	int version_minor;       /* HTTP/1.x */
	int keep_alive;          /* the connection stays open after the answer */
	uint64_t content_length; /* the body's bytes, after the headers */
};

/*
 * What one connection keeps between calls, so that headers arriving in
 * pieces are searched once (in time linear in their size), not again
 * from their first byte on every call: zeroed at the start, and by
 * http_parse once the headers are whole. examined counts the bytes the
 * parser looked at, over all calls (for the tests).
 */
struct http_state {
	uint64_t examined;
	size_t scan;       /* how far the search for the blank line got */
};

enum { HTTP_NEED_MORE = 0, HTTP_BAD = -1, HTTP_TOO_LARGE = -2, HTTP_CHUNKED = -3, HTTP_BODY_TOO_LARGE = -4 };

/* lim may be NULL (the defaults). */
long http_parse(struct http_state *st, const struct http_limits *lim, const char *p, size_t n,
		struct http_request *req);

#endif /* EXAMPLES_HTTP_PARSE_H */
