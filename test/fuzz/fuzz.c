/* SPDX-License-Identifier: MIT */
/*
 * fuzz.c: fuzz.h's functions, linked into both builds of every target
 * (libFuzzer's and the replay's), so a target never needs to know which
 * main it runs under.
 */
#include "config.h"
#include "fuzz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fuzz_pass;
/* A target that sets nothing gets one pass per input. */
__attribute__((weak)) const int fuzz_replay_passes = 1;
unsigned fuzz_skips;
const char *fuzz_skip_why;

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: invariant broken (%s): ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

void fuzz_skip(const char *why)
{
	fuzz_skips++;
	fuzz_skip_why = why;
}

void fuzz_mix(struct fuzz_seen *s, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		s->digest = (s->digest ^ b[i]) * 0x100000001b3ull;
}

void fuzz_whole_vs_pieces(const uint8_t *data, size_t size, fuzz_feed_cb feed)
{
	struct fuzz_in in = { data, size };
	uint32_t seed = fuzz_u8(&in) | fuzz_u8(&in) << 8;
	struct fuzz_seen whole = { .digest = 0xcbf29ce484222325ull }, pieces = whole;

	feed(in.p, in.n, seed, 1, &whole);
	feed(in.p, in.n, seed, 0, &pieces);
	FUZZ_CHECK(whole.answers == pieces.answers && whole.digest == pieces.digest && whole.error == pieces.error,
		   "whole: %u answers, error %ld; in pieces: %u answers, error %ld", whole.answers, whole.error,
		   pieces.answers, pieces.error);
}

size_t fuzz_next_piece(struct fuzz_in *in, uint32_t *seed, int whole, char *buf, size_t *len)
{
	const uint8_t *p;
	size_t want = in->n, k;

	if (!whole) {
		*seed = *seed * 1103515245u + 12345u;
		want = 1 + *seed % 97;
	}
	k = fuzz_bytes(in, &p, want);
	memcpy(buf + *len, p, k);
	*len += k;
	return k;
}
