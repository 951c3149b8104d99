/* SPDX-License-Identifier: MIT */
/*
 * http-parse.c: http-hello's request parser (http-parse.h says how it is
 * called). It finds the blank line that ends the headers, then reads the
 * request line and the three headers the server cares about (Connection,
 * Content-Length, Transfer-Encoding).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "http-parse.h"

/* Whether the comma-separated header value holds token (case-insensitive). */
static int has_token(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token);

	for (size_t i = 0; i < n;) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < n && v[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (end - start == tl && !strncasecmp(v + start, token, tl))
			return 1;
	}
	return 0;
}

/*
 * The first "\r\n" in [p, p + n), or NULL. memchr is vectorised; glibc's
 * memmem sets up a 256-byte shift table on every call, which cost a third
 * of this server's instructions per request.
 */
static const char *find_crlf(const char *p, size_t n)
{
	const char *e = p + n;

	while (p < e && (p = memchr(p, '\r', (size_t)(e - p))) && e - p >= 2) {
		if (p[1] == '\n')
			return p;
		p++;
	}
	return NULL;
}

/* The blank line that ends the headers: the first "\r\n\r\n", or NULL. */
static const char *find_headers_end(const char *p, size_t n)
{
	const char *e = p + n;

	while ((p = find_crlf(p, (size_t)(e - p))) && e - p >= 4) {
		if (p[2] == '\r' && p[3] == '\n')
			return p;
		p += 2;
	}
	return NULL;
}

long http_parse(struct http_state *st, const struct http_limits *lim, const char *p, size_t n,
		struct http_request *req)
{
	size_t max_header = lim && lim->max_header ? lim->max_header : HTTP_MAX_HEADER;
	uint64_t max_body = lim && lim->max_body ? lim->max_body : HTTP_MAX_BODY;
	/*
	 * The search resumes where the last call's stopped, 3 bytes back (a
	 * blank line split between receives): a slow client's headers,
	 * arriving a byte at a time, are searched once. Fewer bytes than the
	 * last call saw are another request (the caller broke the
	 * contract): from the start.
	 */
	size_t from = st->scan <= n && st->scan > 3 ? st->scan - 3 : 0;
	const char *end = find_headers_end(p + from, n - from);
	const char *line, *eol, *sp1, *sp2;
	size_t hdr_len;
	uint64_t content_length = 0;
	int conn_close = 0, conn_keep_alive = 0;

	st->examined += end ? (uint64_t)(end - (p + from)) + 4 : n - from;
	if (!end) {
		st->scan = n;
		return n > max_header ? HTTP_TOO_LARGE : HTTP_NEED_MORE;
	}
	st->scan = 0; /* the next request starts afresh */
	hdr_len = (size_t)(end - p) + 4;
	if (hdr_len > max_header)
		return HTTP_TOO_LARGE;
	/* The headers are read once more below. */
	st->examined += hdr_len;

	/* The request line: METHOD SP target SP HTTP/1.x */
	eol = find_crlf(p, hdr_len);
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	if (!sp1 || sp1 == p)
		return HTTP_BAD;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1 || eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return HTTP_BAD;
	req->head = sp1 - p == 4 && !memcmp(p, "HEAD", 4);
	req->version_minor = sp2[8] - '0';

	/* The headers this server cares about. */
	for (line = eol + 2; line < end + 2; line = eol + 2) {
		const char *colon, *v, *ve;
		size_t name_len;

		eol = find_crlf(line, (size_t)(end + 2 - line));
		colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon || colon == line)
			return HTTP_BAD;
		name_len = (size_t)(colon - line);
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		if (name_len == 10 && !strncasecmp(line, "connection", 10)) {
			conn_close |= has_token(v, (size_t)(ve - v), "close");
			conn_keep_alive |= has_token(v, (size_t)(ve - v), "keep-alive");
		} else if (name_len == 14 && !strncasecmp(line, "content-length", 14)) {
			uint64_t cl = 0;

			if (v == ve)
				return HTTP_BAD;
			for (const char *d = v; d < ve; d++) {
				if (!isdigit((unsigned char)*d))
					return HTTP_BAD;
				if (cl > (max_body - (uint64_t)(*d - '0')) / 10)
					return HTTP_BODY_TOO_LARGE;
				cl = cl * 10 + (uint64_t)(*d - '0');
			}
			content_length = cl;
		} else if (name_len == 17 && !strncasecmp(line, "transfer-encoding", 17)) {
			return HTTP_CHUNKED;
		}
	}
	req->keep_alive = req->version_minor == 1 ? !conn_close : conn_keep_alive && !conn_close;
	req->content_length = content_length;
	return (long)hdr_len;
}
