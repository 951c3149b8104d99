/* SPDX-License-Identifier: MIT */
/*
 * stream-hooks.h: src/net/stream.c's test hooks, shared with the stream tests
 * (test/stream-reader.c, test/stream-socket.c, test/net-fixture-stream.c: a
 * statically linked test reaches these hidden symbols). A reader/writer
 * pair without a transport, fed by hand as asyncio's test_streams.py feeds
 * a StreamReader, and the counters behind the linear-time checks. Not part
 * of the API.
 */
#ifndef TIDE_STREAM_HOOKS_H
#define TIDE_STREAM_HOOKS_H

#include "tide.h"

#include <stddef.h>
#include <stdint.h>

struct tide__stream_stats {
	uint64_t waits;   /* times a read parked for more data */
	uint64_t direct;  /* bytes that landed straight in a waiting read's buffer */
	uint64_t kept;    /* bytes a waiting peek took in their ring buffer (no copy) */
	uint64_t scanned; /* bytes handed to the separator search */
	uint64_t moved;   /* bytes moved by compaction or growth */
	uint64_t grows;   /* buffer (re)allocations */
	/* Bytes received, wherever they landed (the buffer, a waiting read's,
	 * a kept ring buffer): less what the reader holds, what reads took. */
	uint64_t fed;
};

int tide__stream_pair_new(struct tide_loop *loop, struct tide_stream_reader **r, struct tide_stream_writer **w);
void tide__stream_feed_data(struct tide_stream_reader *r, const void *data, size_t n);
void tide__stream_feed_eof(struct tide_stream_reader *r, int err);
void tide__stream_get_stats(const struct tide_stream_reader *r, struct tide__stream_stats *st);
size_t tide__stream_buffered(const struct tide_stream_reader *r);
/* Bytes the reader holds in a kept ring buffer (0: none kept). */
size_t tide__stream_kept(const struct tide_stream_reader *r);
int tide__stream_reading_paused(const struct tide_stream_reader *r);

#endif /* TIDE_STREAM_HOOKS_H */
