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

/* Skips up to *body bytes of buf's len (a body that arrived). */
static void skip_body(char *buf, size_t *len, uint64_t *body)
{
	size_t b = *body < *len ? (size_t)*body : *len;

	memmove(buf, buf + b, *len - b);
	*len -= b;
	*body -= b;
}

static void feed(const uint8_t *data, size_t n, uint32_t seed, int whole, struct fuzz_seen *s)
{
	const struct http_limits lim = { .max_header = 512, .max_body = 4096 };
	struct http_state st = { 0 };
	struct http_request req;
	struct fuzz_in in = { data, n };
	char *buf = malloc(n + 1);
	size_t len = 0;
	uint64_t body = 0;

	while (buf && in.n && !s->error) {
		fuzz_next_piece(&in, &seed, whole, buf, &len);
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
			uint64_t what[] = { (uint64_t)r, (uint64_t)!!req.head, (uint64_t)!!req.keep_alive,
					    (uint64_t)req.version_minor, req.content_length };

			s->answers++;
			fuzz_mix(s, what, sizeof(what));
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
	fuzz_whole_vs_pieces(data, size, feed);
	return 0;
}
