/* SPDX-License-Identifier: MIT */
/*
 * test/fuzz/http-parse.c: http-hello's request parser (examples/http-parse.c)
 * fed a connection's bytes two ways, whole and in pieces (sizes from the
 * input), as http-hello feeds it: the pending bytes from the first byte of
 * the request on, the body skipped as it arrives. Both ways must answer
 * the same requests (length, HEAD, version, keep-alive, body length) and
 * the same error, and never claim bytes they were not given.
 */
#include "fuzz.h"
#include "http-parse.h"

#include <stdlib.h>
#include <string.h>

/* What one way of feeding saw: a digest of its answers, in order. */
struct seen {
	uint64_t digest;
	unsigned answers;
	long error;
};

static void mix(struct seen *s, uint64_t v)
{
	s->digest = (s->digest ^ v) * 0x100000001b3ull;
}

/* Skips up to *body bytes of buf's len (a body that arrived). */
static void skip_body(char *buf, size_t *len, uint64_t *body)
{
	size_t b = *body < *len ? (size_t)*body : *len;

	memmove(buf, buf + b, *len - b);
	*len -= b;
	*body -= b;
}

static void feed(const uint8_t *data, size_t n, uint32_t seed, int whole, struct seen *s)
{
	const struct http_limits lim = { .max_header = 512, .max_body = 4096 };
	struct http_state st = { 0 };
	struct http_request req;
	char *buf = malloc(n + 1);
	size_t len = 0, off = 0;
	uint64_t body = 0;

	memset(s, 0, sizeof(*s));
	s->digest = 0xcbf29ce484222325ull;
	while (buf && off < n && !s->error) {
		size_t k = whole ? n : 1 + (seed = seed * 1103515245u + 12345u) % 97;

		if (k > n - off)
			k = n - off;
		memcpy(buf + len, data + off, k);
		len += k;
		off += k;
		skip_body(buf, &len, &body);
		while (len && !body) {
			long r = http_parse(&st, &lim, buf, len, &req);

			if (r == HTTP_NEED_MORE)
				break;
			if (r < 0) {
				s->error = r;
				break;
			}
			FUZZ_CHECK((size_t)r <= len, "answered %ld bytes of %zu", r, len);
			FUZZ_CHECK(req.content_length <= lim.max_body, "a body of %llu bytes past the limit",
				   (unsigned long long)req.content_length);
			s->answers++;
			mix(s, (uint64_t)r << 32 | (uint64_t)!!req.head << 8 | (uint64_t)!!req.keep_alive << 4 |
				       (uint64_t)(req.version_minor & 15));
			mix(s, req.content_length);
			memmove(buf, buf + r, len - (size_t)r);
			len -= (size_t)r;
			body = req.content_length;
			skip_body(buf, &len, &body);
		}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint32_t seed = fuzz_u8(&in) | fuzz_u8(&in) << 8;
	struct seen whole, pieces;

	feed(in.p, in.n, seed, 1, &whole);
	feed(in.p, in.n, seed, 0, &pieces);
	FUZZ_CHECK(whole.answers == pieces.answers && whole.digest == pieces.digest && whole.error == pieces.error,
		   "whole: %u answers, error %ld; in pieces: %u answers, error %ld", whole.answers, whole.error,
		   pieces.answers, pieces.error);
	return 0;
}
