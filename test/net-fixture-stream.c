/* SPDX-License-Identifier: MIT */
/*
 * net-fixture-stream.c: the part of the networking tests' fixture (see
 * net-fixture.h) that reaches src/net/stream.c's hidden test hooks: a reader
 * fed by hand, and the reader's counters. Only the stream programs, linked
 * with the library's objects, pull this file out of libnetfixture.
 *
 * The hard part is only that: keep whatever needs a hidden symbol here, so
 * the programs linked with the public libtide.la never reference one.
 */
#include "config.h"
#include "net-fixture.h"
#include "net/stream-hooks.h" /* src/net: the hidden test hooks */

#include <string.h>

/* A hook pair (no transport) on g_loop. */
void feed_pair(struct tide_stream_reader **r, struct tide_stream_writer **w)
{
	ck_assert_int_eq(tide__stream_pair_new(g_loop, r, w), 0);
}

/* Feeds the bytes of s. */
void feed(struct tide_stream_reader *r, const char *s)
{
	tide__stream_feed_data(r, s, strlen(s));
}

/* Bytes that landed straight in a waiting read's buffer. */
uint64_t direct_bytes(struct tide_stream_reader *r)
{
	struct tide__stream_stats st;

	tide__stream_get_stats(r, &st);
	return st.direct;
}

/* Bytes a waiting peek took in their ring buffer. */
uint64_t kept_bytes(struct tide_stream_reader *r)
{
	struct tide__stream_stats st;

	tide__stream_get_stats(r, &st);
	return st.kept;
}
