/* SPDX-License-Identifier: MIT */
/*
 * test/stream-reader.c: asyncio's StreamReader semantics, exactly as
 * CPython's test_streams.py checks them where it feeds a reader by hand:
 * readline's and readuntil's limits, multi-chunk separators and EOF
 * partials, readexactly, the connection's error after the buffered data,
 * two reads at once, read(n) and readexactly lending their buffer,
 * peek and consume, a put-back that finds no memory, and linear time
 * (16 MiB fed one byte at a time, each byte a separate wake-up of the
 * reader, must be searched once, not 16 Mi times).
 *
 * The hard part is feeding without a transport: the library's hidden test
 * hooks (src/net/stream-hooks.h) make a pair fed directly, so this program
 * links the library's objects. No I/O: each test runs once, in the TCase
 * "fed", in a main task, and ends with tide_loop_free() == 0.
 */
#include "config.h"
#include "net-fixture.h"
#include "net/stream-hooks.h" /* src/net: the hidden test hooks */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------- utilities -- */

/* A hook pair whose reader has the limit. */
static void limited_pair(struct tide_stream_reader **r, struct tide_stream_writer **w, size_t limit)
{
	feed_pair(r, w);
	ck_assert_int_eq(tide_stream_set_limit(*r, limit), 0);
}

/* Feeds the n pieces at once, then EOF. */
static void feed_all_eof(struct tide_stream_reader *r, const char *const *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		feed(r, p[i]);
	tide__stream_feed_eof(r, 0);
}

/* ------------------------------------ exact semantics (fed by hand) -- */

/* A task that feeds pieces one per iteration, as asyncio's call_soon(cb). */
struct feeder {
	struct tide_stream_reader *r;
	const char *const *pieces;
	size_t n;
	int eof_err; /* 1: no EOF; else feed_eof(eof_err) at the end */
};

static int64_t feeder_main(void *arg)
{
	struct feeder *f = arg;

	for (size_t i = 0; i < f->n; i++) {
		ck_assert_int_eq(tide_yield(), 0);
		feed(f->r, f->pieces[i]);
	}
	if (f->eof_err != 1) {
		ck_assert_int_eq(tide_yield(), 0);
		tide__stream_feed_eof(f->r, f->eof_err);
	}
	return 0;
}

static struct tide_future *feed_later(struct feeder *f, struct tide_stream_reader *r, const char *const *p,
				      size_t n, int eof_err)
{
	f->r = r;
	f->pieces = p;
	f->n = n;
	f->eof_err = eof_err;
	return spawn(feeder_main, f);
}

#define NP(a) (sizeof(a) / sizeof((a)[0]))

/* test_streams.py test_readline_limit and test_readline_limit_with_existing_data. */
static int64_t readline_limit_main(void *arg)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct feeder fd;
	char buf[64];
	static const char *const p1[] = { "chunk1", "chunk2", "chunk3\n" };
	static const char *const p2[] = { "chunk1", "chunk2\n", "chunk3\n" };

	(void)arg;
	/* Fed in one go while readline waits: the long line goes, newline included. */
	limited_pair(&r, &w, 7);
	feed_all_eof(r, p1, NP(p1));
	ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), TIDE_ELIMIT_OVERRUN);
	ck_assert_uint_eq(tide__stream_buffered(r), 0);
	tide_stream_free(r, w);

	limited_pair(&r, &w, 7);
	feed_all_eof(r, p2, NP(p2));
	ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), TIDE_ELIMIT_OVERRUN);
	ck_assert_uint_eq(tide__stream_buffered(r), 7); /* "chunk3\n" */
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "chunk3\n");
	tide_stream_free(r, w);

	/* The same pieces arriving one per iteration while readline waits:
	 * without a newline yet, the whole buffer goes (asyncio), so what
	 * follows of the long line reads as a line of its own. */
	limited_pair(&r, &w, 7);
	{
		struct tide_future *t = feed_later(&fd, r, p1, NP(p1), 0);

		ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), TIDE_ELIMIT_OVERRUN);
		ck_assert_int_eq(join(t), 0);
	}
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "chunk3\n");
	ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), 0);
	tide_stream_free(r, w);

	limited_pair(&r, &w, 7);
	{
		struct tide_future *t = feed_later(&fd, r, p2, NP(p2), 0);

		/* "chunk1chunk2\n": a newline past the limit, the line goes with it. */
		ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), TIDE_ELIMIT_OVERRUN);
		ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "chunk3\n");
		ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), 0);
		ck_assert_int_eq(join(t), 0);
	}
	tide_stream_free(r, w);

	/* limit 7: a 7-byte line plus newline fits; 8 does not. */
	limited_pair(&r, &w, 7);
	feed(r, "1234567\n");
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "1234567\n");
	feed(r, "12345678\n");
	ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), TIDE_ELIMIT_OVERRUN);
	ck_assert_uint_eq(tide__stream_buffered(r), 0);
	feed(r, "12345678");
	ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), TIDE_ELIMIT_OVERRUN);
	ck_assert_uint_eq(tide__stream_buffered(r), 0);
	/* A line longer than cap is an overrun too (limit = min(limit, cap - 1)). */
	ck_assert_int_eq(tide_stream_set_limit(r, 1000), 0);
	feed(r, "abcdef\nxy\n");
	ck_assert_int_eq(tide_stream_readline(r, buf, 4), TIDE_ELIMIT_OVERRUN);
	ck_read_eq(tide_stream_readline(r, buf, 4), buf, "xy\n");
	tide_stream_free(r, w);
	return 0;
}

MAIN_TEST(test_readline_limit, readline_limit_main)

/* test_streams.py: readuntil's multi-chunk, limit and EOF cases. */
static int64_t readuntil_main(void *arg)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct feeder fd;
	struct tide_future *t;
	char buf[64];
	size_t partial = 99;
	static const char *const m1[] = { "QWEaa", "XYaa", "a" };
	static const char *const m2[] = { "QWEaa", "XYa", "aa" };
	static const char *const m3[] = { "XXX", "a", "a", "a" };

	(void)arg;
	feed_pair(&r, &w);
	/* test_readuntil_multi_chunks */
	feed(r, "lineAAA");
	ck_read_eq(tide_stream_readuntil(r, "AAA", 3, buf, sizeof(buf), NULL), buf, "lineAAA");
	ck_assert_uint_eq(tide__stream_buffered(r), 0);
	feed(r, "lineAAAxxx");
	ck_read_eq(tide_stream_readuntil(r, "AAA", 3, buf, sizeof(buf), NULL), buf, "lineAAA");
	ck_assert_uint_eq(tide__stream_buffered(r), 3);
	ck_read_eq(tide_stream_read(r, buf, sizeof(buf)), buf, "xxx");
	/* test_readuntil_multi_chunks_1, each piece a separate wake-up. */
	t = feed_later(&fd, r, m1, NP(m1), 1);
	ck_read_eq(tide_stream_readuntil(r, "aaa", 3, buf, sizeof(buf), NULL), buf, "QWEaaXYaaa");
	ck_assert_int_eq(join(t), 0);
	t = feed_later(&fd, r, m2, NP(m2), 1);
	ck_read_eq(tide_stream_readuntil(r, "aaa", 3, buf, sizeof(buf), NULL), buf, "QWEaaXYaaa");
	ck_assert_int_eq(join(t), 0);
	feed(r, "aaa");
	ck_read_eq(tide_stream_readuntil(r, "aaa", 3, buf, sizeof(buf), NULL), buf, "aaa");
	feed(r, "Xaaa");
	ck_read_eq(tide_stream_readuntil(r, "aaa", 3, buf, sizeof(buf), NULL), buf, "Xaaa");
	t = feed_later(&fd, r, m3, NP(m3), 1);
	ck_read_eq(tide_stream_readuntil(r, "aaa", 3, buf, sizeof(buf), NULL), buf, "XXXaaa");
	ck_assert_int_eq(join(t), 0);
	/* An empty separator, a cap shorter than it. */
	ck_assert_int_eq(tide_stream_readuntil(r, "", 0, buf, sizeof(buf), NULL), -EINVAL);
	ck_assert_int_eq(tide_stream_readuntil(r, "abc", 3, buf, 2, NULL), -EINVAL);
	tide_stream_free(r, w);

	/* test_readuntil_limit_found_sep: the data stays buffered, both ways. */
	limited_pair(&r, &w, 3);
	feed(r, "some dataAA");
	ck_assert_int_eq(tide_stream_readuntil(r, "AAA", 3, buf, sizeof(buf), NULL), TIDE_ELIMIT_OVERRUN);
	ck_assert_uint_eq(tide__stream_buffered(r), 11);
	feed(r, "A");
	ck_assert_int_eq(tide_stream_readuntil(r, "AAA", 3, buf, sizeof(buf), NULL), TIDE_ELIMIT_OVERRUN);
	ck_assert_uint_eq(tide__stream_buffered(r), 12);
	/* With a larger limit the same bytes come out whole. */
	ck_assert_int_eq(tide_stream_set_limit(r, 100), 0);
	ck_read_eq(tide_stream_readuntil(r, "AAA", 3, buf, sizeof(buf), NULL), buf, "some dataAAA");
	tide_stream_free(r, w);

	/* test_readuntil_eof: IncompleteReadError with the partial bytes. */
	feed_pair(&r, &w);
	feed(r, "some dataAA");
	tide__stream_feed_eof(r, 0);
	ck_assert_int_eq(tide_stream_readuntil(r, "AAA", 3, buf, sizeof(buf), &partial), TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(partial, 11);
	ck_assert_int_eq(memcmp(buf, "some dataAA", 11), 0);
	ck_assert_uint_eq(tide__stream_buffered(r), 0);
	ck_assert_int_eq(tide_stream_readuntil(r, "AAA", 3, buf, sizeof(buf), &partial), TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(partial, 0);
	tide_stream_free(r, w);
	return 0;
}

MAIN_TEST(test_readuntil, readuntil_main)

/* read, readexactly, EOF and the connection's error after the buffered data. */
static int64_t read_exact_main(void *arg)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct feeder fd;
	struct tide_future *t;
	char buf[64];
	size_t partial = 99;
	static const char *const parts[] = { "ab", "c", "defg" };

	(void)arg;
	feed_pair(&r, &w);
	/* readexactly over three wake-ups. */
	t = feed_later(&fd, r, parts, NP(parts), 1);
	ck_read_eq(tide_stream_readexactly(r, buf, 6, &partial), buf, "abcdef");
	ck_assert_uint_eq(partial, 0);
	ck_assert_int_eq(join(t), 0);
	/* read: what is there, up to n. */
	ck_read_eq(tide_stream_read(r, buf, 5), buf, "g");
	ck_assert_int_eq(tide_stream_read(r, buf, 0), 0);
	feed(r, "hello world");
	ck_read_eq(tide_stream_read(r, buf, 5), buf, "hello");
	ck_read_eq(tide_stream_read(r, buf, 100), buf, " world");
	/* test_readexactly_eof */
	feed(r, "xyz");
	tide__stream_feed_eof(r, 0);
	ck_assert_int_eq(tide_stream_at_eof(r), 0);
	ck_assert_int_eq(tide_stream_readexactly(r, buf, 5, &partial), TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(partial, 3);
	ck_assert_int_eq(memcmp(buf, "xyz", 3), 0);
	ck_assert_int_eq(tide_stream_at_eof(r), 1);
	ck_assert_int_eq(tide_stream_read(r, buf, 5), 0);
	ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), 0);
	tide_stream_free(r, w);

	/* The connection's error comes once the buffered data is read, and stays. */
	feed_pair(&r, &w);
	feed(r, "line\nrest");
	tide__stream_feed_eof(r, -ECONNRESET);
	ck_read_eq(tide_stream_read(r, buf, 2), buf, "li");
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "ne\n");
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "rest");
	ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), -ECONNRESET);
	ck_assert_int_eq(tide_stream_read(r, buf, sizeof(buf)), -ECONNRESET);
	ck_assert_int_eq(tide_stream_readexactly(r, buf, 1, &partial), -ECONNRESET);
	ck_assert_int_eq(tide_stream_readuntil(r, "x", 1, buf, sizeof(buf), &partial), -ECONNRESET);
	tide_stream_free(r, w);

	/* A waiting read gets the error (asyncio's set_exception wakes the waiter). */
	feed_pair(&r, &w);
	{
		static const char *const none[] = { "" };

		t = feed_later(&fd, r, none, 0, -EPIPE);
		ck_assert_int_eq(tide_stream_read(r, buf, sizeof(buf)), -EPIPE);
		ck_assert_int_eq(join(t), 0);
	}
	/* A pair without a connection: the writer has nothing to write to. */
	ck_assert_int_eq(tide_stream_write(w, "x", 1), -ENOTCONN);
	ck_assert_int_eq(tide_stream_is_closing(w), 1);
	ck_assert_ptr_null(tide_stream_transport(w));
	tide_stream_free(r, w);
	return 0;
}

MAIN_TEST(test_read_exact, read_exact_main)

/* Two reads at once: the second is refused (asyncio's RuntimeError). */
static int64_t concurrent_read_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide_future *t;
	char buf[64], mine[64];

	(void)arg;
	feed_pair(&g_r, &w);
	t = spawn_waiting(readline_task, buf);
	ck_assert_int_eq(tide_stream_readline(g_r, mine, sizeof(mine)), -EBUSY);
	ck_assert_int_eq(tide_stream_read(g_r, mine, sizeof(mine)), -EBUSY);
	feed(g_r, "one\n");
	ck_assert_int_eq(join(t), 4);
	ck_assert_int_eq(memcmp(buf, "one\n", 4), 0);
	tide_stream_free(g_r, w);
	return 0;
}

MAIN_TEST(test_concurrent_read, concurrent_read_main)

/*
 * A readline that waited is woken by bytes but has not run yet: it owns
 * them, and the reads of other tasks are refused until it has returned.
 * (The stream reader's fuzz target found this: a second task's read took
 * the bytes from under the woken readline, which then searched on from
 * where it had stopped, past the newline that the read left in front,
 * and returned a line with two newlines in it.)
 */
static int64_t readline_beside_woken_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide_future *t;
	const void *p;
	char buf[64], mine[64];

	(void)arg;
	feed_pair(&g_r, &w);
	feed(g_r, "ab");
	t = spawn_waiting(readline_task, buf); /* searched "ab": it waits */
	ck_assert_int_eq(tide_stream_read(g_r, mine, sizeof(mine)), -EBUSY);
	feed(g_r, "x\nyz\n"); /* wakes it; it has not run */
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(tide_stream_read(g_r, mine, 2), -EBUSY);
	ck_assert_int_eq(tide_stream_readline(g_r, mine, sizeof(mine)), -EBUSY);
	ck_assert_int_eq(tide_stream_readexactly(g_r, mine, 2, NULL), -EBUSY);
	ck_assert_int_eq(tide_stream_peek(g_r, &p), -EBUSY);
	ck_assert_int_eq(tide_stream_consume(g_r, 2), -EBUSY);
	ck_assert_uint_eq(tide__stream_buffered(g_r), 7);
	ck_read_eq(join(t), buf, "abx\n");
	ck_read_eq(tide_stream_readline(g_r, mine, sizeof(mine)), mine, "yz\n");
	tide_stream_free(g_r, w);
	return 0;
}

MAIN_TEST(test_readline_beside_woken, readline_beside_woken_main)

static int64_t readuntil_bang_task(void *arg)
{
	size_t partial;

	return tide_stream_readuntil(g_r, "!", 1, arg, 8, &partial);
}

/*
 * The separator search position kept across calls is one separator's:
 * a readuntil("!") woken by bytes it has not searched yet keeps them
 * from a readline beside it. (The fuzz target's second case: the
 * readline ran first, took the cache for "\n", and the readuntil then
 * stored its own search position there; the next readline started past
 * a newline and discarded it with its line on an overrun.)
 */
static int64_t readline_beside_readuntil_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide_future *t;
	char buf[8], mine[64];

	(void)arg;
	feed_pair(&g_r, &w);
	t = spawn_waiting(readuntil_bang_task, buf); /* cap 8: its limit is 7 */
	feed(g_r, "0123456789"); /* wakes it; it has not run */
	ck_assert_int_eq(tide_stream_readline(g_r, mine, 8), -EBUSY);
	ck_assert_uint_eq(tide__stream_buffered(g_r), 10);
	/* No "!" within its limit: an overrun, the bytes stay. */
	ck_assert_int_eq(join(t), TIDE_ELIMIT_OVERRUN);
	ck_assert_uint_eq(tide__stream_buffered(g_r), 10);
	feed(g_r, "ab\ncdefghijkl");
	tide__stream_feed_eof(g_r, 0);
	ck_read_eq(tide_stream_readline(g_r, mine, sizeof(mine)), mine, "0123456789ab\n");
	ck_read_eq(tide_stream_readline(g_r, mine, sizeof(mine)), mine, "cdefghijkl");
	ck_assert_int_eq(tide_stream_readline(g_r, mine, sizeof(mine)), 0);
	tide_stream_free(g_r, w);
	return 0;
}

MAIN_TEST(test_readline_beside_readuntil, readline_beside_readuntil_main)

/* ------------------------------------------ read(n) lends its buffer -- */

static int64_t read8_task(void *arg)
{
	return tide_stream_read(g_r, arg, 8);
}

/*
 * A read(n) waiting on an empty buffer takes the next bytes straight into
 * its own buffer, until it runs or the buffer is full; what does not fit
 * is buffered behind them and tops the read up. Until that read has run, other reads are refused (its bytes
 * come first), and a cancel that comes before it runs puts its bytes back
 * in front. A read too small to take a whole receive is not lent.
 */
static int64_t read_lends_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide_future *t;
	static char buf[LEND], mine[2 * LEND];

	(void)arg;
	feed_pair(&g_r, &w);
	t = spawn_waiting(read_lend_task, buf);
	feed(g_r, "direct");
	feed(g_r, "+more"); /* lands too: the read has not run yet */
	ck_assert_uint_eq(tide__stream_buffered(g_r), 0);
	ck_assert_int_eq(tide_stream_read(g_r, mine, sizeof(mine)), -EBUSY);
	ck_assert_int_eq(tide_stream_readline(g_r, mine, sizeof(mine)), -EBUSY);
	ck_read_eq(join(t), buf, "direct+more");
	ck_assert_uint_eq(direct_bytes(g_r), 11);

	/* More than n: n land, the rest is buffered. */
	t = spawn_waiting(read_lend_task, buf);
	feed(g_r, pattern(LEND + 2));
	ck_read_eq(join(t), buf, pattern(LEND));
	ck_assert_uint_eq(direct_bytes(g_r), 11 + LEND);
	ck_read_eq(tide_stream_read(g_r, mine, sizeof(mine)), mine, pattern(LEND + 2) + LEND);

	/* Cancelled after its bytes landed, before it ran: they go back, in
	 * front of the bytes that came after them. */
	t = spawn_waiting(read_lend_task, buf);
	feed(g_r, "abcdefghij");
	feed(g_r, "klm\n");
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(join(t), -ECANCELED);
	ck_read_eq(tide_stream_readline(g_r, mine, sizeof(mine)), mine, "abcdefghijklm\n");
	ck_assert_uint_eq(direct_bytes(g_r), 11 + LEND);

	/* A small read is not lent: the bytes are buffered, as before. */
	t = spawn_waiting(read8_task, buf);
	feed(g_r, "small");
	ck_assert_uint_eq(tide__stream_buffered(g_r), 5);
	ck_read_eq(join(t), buf, "small");
	ck_assert_uint_eq(direct_bytes(g_r), 11 + LEND);

	/* EOF after the bytes landed: the read returns them, then EOF. */
	t = spawn_waiting(read_lend_task, buf);
	feed(g_r, "last");
	tide__stream_feed_eof(g_r, 0);
	ck_read_eq(join(t), buf, "last");
	ck_assert_int_eq(tide_stream_read(g_r, mine, sizeof(mine)), 0);
	ck_assert_uint_eq(tide__stream_buffered(g_r), 0);
	tide_stream_free(g_r, w);

	/* Woken by EOF with nothing landed: nothing is left to read (at_eof),
	 * but it is under way until it returns, so other reads wait their
	 * turn (one read at a time), then get EOF too. */
	feed_pair(&g_r, &w);
	t = spawn_waiting(read_lend_task, buf);
	tide__stream_feed_eof(g_r, 0);
	ck_assert_int_eq(tide_stream_at_eof(g_r), 1);
	ck_assert_int_eq(tide_stream_read(g_r, mine, sizeof(mine)), -EBUSY);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(tide_stream_read(g_r, mine, sizeof(mine)), 0);
	tide_stream_free(g_r, w);
	return 0;
}

MAIN_TEST(test_read_lends_buffer, read_lends_main)

static int64_t readexactly_2lend_task(void *arg)
{
	return tide_stream_readexactly(g_r, arg, 2 * LEND, NULL);
}

static size_t g_partial;

static int64_t readexactly_2lend_partial_task(void *arg)
{
	return tide_stream_readexactly(g_r, arg, 2 * LEND, &g_partial);
}

/*
 * readexactly(n) lends what is left of its buffer each time it waits on
 * an empty one: receives land there in turn, the last bytes come through
 * the reader's buffer, and nothing is lost or reordered. Cancelled half
 * way, everything that landed goes back; at EOF it is the partial.
 */
static int64_t readexactly_lends_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide_future *t;
	static char buf[2 * LEND], mine[2 * LEND + 8];
	const char *p = pattern(2 * LEND);
	static char want[2 * LEND + 1];

	(void)arg;
	memcpy(want, p, 2 * LEND);
	feed_pair(&g_r, &w);
	t = spawn_waiting(readexactly_2lend_task, buf);
	tide__stream_feed_data(g_r, want, LEND / 2);               /* lands */
	ck_assert_int_eq(tide_yield(), 0);                          /* it lends the rest */
	tide__stream_feed_data(g_r, want + LEND / 2, LEND);        /* lands */
	ck_assert_int_eq(tide_yield(), 0);                          /* LEND / 2 left: too small to lend */
	tide__stream_feed_data(g_r, want + 3 * LEND / 2, LEND / 2);
	feed(g_r, "tail");
	ck_assert_int_eq(join(t), 2 * LEND);
	ck_assert_int_eq(memcmp(buf, want, 2 * LEND), 0);
	ck_assert_uint_eq(direct_bytes(g_r), 3 * LEND / 2);
	ck_read_eq(tide_stream_read(g_r, mine, sizeof(mine)), mine, "tail");

	/* Once it holds bytes, other reads are refused even while it waits
	 * without a lend: what it holds comes first. (A fresh pair: receives
	 * of LEND doubled the first one's idea of a whole receive.) */
	tide_stream_free(g_r, w);
	feed_pair(&g_r, &w);
	t = spawn_waiting(readexactly_2lend_task, buf);
	tide__stream_feed_data(g_r, want, LEND / 2);
	ck_assert_int_eq(tide_yield(), 0);
	tide__stream_feed_data(g_r, want + LEND / 2, LEND);
	ck_assert_int_eq(tide_yield(), 0); /* LEND / 2 left: it waits, unlent */
	tide__stream_feed_data(g_r, want + 3 * LEND / 2, 3);
	ck_assert_uint_eq(tide__stream_buffered(g_r), 3);
	ck_assert_int_eq(tide_stream_read(g_r, mine, sizeof(mine)), -EBUSY);
	ck_assert_int_eq(tide_stream_readexactly(g_r, mine, 3, NULL), -EBUSY);
	tide__stream_feed_data(g_r, want + 3 * LEND / 2 + 3, LEND / 2 - 3);
	ck_assert_int_eq(join(t), 2 * LEND);
	ck_assert_int_eq(memcmp(buf, want, 2 * LEND), 0);

	/* Cancelled after two receives landed: both go back, in order,
	 * in front of what came after them. */
	t = spawn_waiting(readexactly_2lend_task, buf);
	tide__stream_feed_data(g_r, want, LEND / 2);
	ck_assert_int_eq(tide_yield(), 0);
	tide__stream_feed_data(g_r, want + LEND / 2, LEND);
	feed(g_r, "behind");
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(join(t), -ECANCELED);
	ck_assert_uint_eq(tide__stream_buffered(g_r), 3 * LEND / 2 + 6);
	ck_assert_int_eq(tide_stream_readexactly(g_r, mine, 3 * LEND / 2 + 6, NULL), 3 * LEND / 2 + 6);
	ck_assert_int_eq(memcmp(mine, want, 3 * LEND / 2), 0);
	ck_assert_int_eq(memcmp(mine + 3 * LEND / 2, "behind", 6), 0);

	/* EOF after one receive landed: all of it is the partial. */
	t = spawn_waiting(readexactly_2lend_partial_task, buf);
	tide__stream_feed_data(g_r, want, LEND / 2);
	ck_assert_int_eq(tide_yield(), 0);
	feed(g_r, "end");
	tide__stream_feed_eof(g_r, 0);
	ck_assert_int_eq(join(t), TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(g_partial, LEND / 2 + 3);
	ck_assert_int_eq(memcmp(buf, want, LEND / 2), 0);
	ck_assert_int_eq(memcmp(buf + LEND / 2, "end", 3), 0);
	tide_stream_free(g_r, w);
	return 0;
}

MAIN_TEST(test_readexactly_lends_buffer, readexactly_lends_main)

/*
 * at_eof is asyncio's "EOF fed and nothing left to read": bytes that a
 * read woken by the EOF has yet to return (readexactly's, held across its
 * waits, or bytes that landed in a read's own buffer) are still to be
 * read, so it says 0 until that read ran. The fuzz target found it
 * saying 1 there (test/fuzz/corpus/stream-reader/at-eof-while-held).
 */
static int64_t at_eof_pending_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide_future *t;
	static char buf[2 * LEND];

	(void)arg;
	feed_pair(&g_r, &w);
	feed(g_r, "held");
	t = spawn_waiting(readexactly_2lend_partial_task, buf); /* holds "held", lends the rest */
	tide__stream_feed_eof(g_r, 0);                           /* wakes it: it has not run */
	ck_assert_int_eq(tide_stream_at_eof(g_r), 0);
	ck_assert_int_eq(join(t), TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(g_partial, 4);
	ck_assert_int_eq(memcmp(buf, "held", 4), 0);
	ck_assert_int_eq(tide_stream_at_eof(g_r), 1);
	tide_stream_free(g_r, w);

	feed_pair(&g_r, &w);
	t = spawn_waiting(read_lend_task, buf); /* lends buf */
	feed(g_r, "landed");
	tide__stream_feed_eof(g_r, 0);
	ck_assert_int_eq(tide_stream_at_eof(g_r), 0);
	ck_read_eq(join(t), buf, "landed");
	ck_assert_int_eq(tide_stream_at_eof(g_r), 1);
	tide_stream_free(g_r, w);
	return 0;
}

MAIN_TEST(test_at_eof_pending, at_eof_pending_main)

/* ------------------------------------------- linear time (16 MiB) -- */

#define BIG ((size_t)16 << 20)

/* Feeds BIG bytes of 'x' one at a time, letting the reader run after each. */
struct bytewise {
	struct tide_stream_reader *r;
	size_t n;
	const char *tail; /* fed after the n bytes, or NULL */
};

static int64_t bytewise_feeder(void *arg)
{
	struct bytewise *b = arg;

	for (size_t i = 0; i < b->n; i++) {
		tide__stream_feed_data(b->r, "x", 1);
		/* Not ck_assert: each one is a write(2) to Check's parent. */
		if (tide_yield() != 0)
			ck_abort_msg("yield failed at byte %zu", i);
	}
	if (b->tail)
		feed(b->r, b->tail);
	return 0;
}

/* A task feeding g_r, a new hook pair with the limit, BIG bytes then tail. */
static struct tide_future *feed_bytewise(struct bytewise *b, struct tide_stream_writer **w, size_t limit,
					 const char *tail)
{
	limited_pair(&g_r, w, limit);
	b->r = g_r;
	b->n = BIG;
	b->tail = tail;
	return spawn(bytewise_feeder, b);
}

static int64_t linear_readuntil_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide__stream_stats st;
	struct bytewise b;
	struct tide_future *t;
	size_t partial = 0;
	char *buf = malloc(BIG + 16);

	(void)arg;
	ck_assert_ptr_nonnull(buf);
	/* The limit is passed by the last byte: asyncio's offset (where the
	 * search goes on: buflen + 1 - seplen) is then BIG - 1 > BIG - 2. */
	t = feed_bytewise(&b, &w, BIG - 2, NULL);
	ck_assert_int_eq(tide_stream_readuntil(g_r, "\r\n", 2, buf, BIG + 16, &partial), TIDE_ELIMIT_OVERRUN);
	ck_assert_int_eq(join(t), 0);
	tide__stream_get_stats(g_r, &st);
	/* One wake-up per byte, and each byte searched at most twice (the
	 * one-byte overlap of a two-byte separator), never the whole buffer. */
	ck_assert_uint_ge(st.waits, BIG - 1);
	ck_assert_uint_le(st.scanned, 2 * BIG);
	ck_assert_uint_le(st.moved, 2 * BIG);
	/* The data stays for the caller. */
	ck_assert_uint_eq(tide__stream_buffered(g_r), BIG);
	ck_assert_int_eq(tide_stream_readexactly(g_r, buf, BIG, NULL), (ssize_t)BIG);
	ck_assert(buf[0] == 'x' && buf[BIG - 1] == 'x');
	tide_stream_free(g_r, w);
	free(buf);
	return 0;
}

MAIN_TEST(test_linear_readuntil, linear_readuntil_main)

static int64_t linear_readline_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide__stream_stats st;
	struct bytewise b;
	struct tide_future *t;
	char *buf = malloc(BIG + 16);
	ssize_t n;

	(void)arg;
	ck_assert_ptr_nonnull(buf);
	t = feed_bytewise(&b, &w, 2 * BIG, "\nnext");
	n = tide_stream_readline(g_r, buf, BIG + 16);
	ck_assert_int_eq(n, (ssize_t)BIG + 1);
	ck_assert(buf[0] == 'x' && buf[BIG - 1] == 'x' && buf[BIG] == '\n');
	ck_assert_int_eq(join(t), 0);
	tide__stream_get_stats(g_r, &st);
	ck_assert_uint_ge(st.waits, BIG - 1);
	ck_assert_uint_le(st.scanned, BIG + 8);
	ck_assert_uint_le(st.moved, 2 * BIG);
	tide__stream_feed_eof(g_r, 0);
	ck_read_eq(tide_stream_readline(g_r, buf, 64), buf, "next");
	tide_stream_free(g_r, w);
	free(buf);
	return 0;
}

MAIN_TEST(test_linear_readline, linear_readline_main)

/* Consuming from the front while feeding at the back moves each byte O(1) times. */
static int64_t linear_consume_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide__stream_stats st;
	char buf[4096], line[128];

	(void)arg;
	feed_pair(&g_r, &w);
	memset(buf, 'y', sizeof(buf));
	buf[99] = '\n';
	for (int i = 0; i < 4096; i++) {
		tide__stream_feed_data(g_r, buf, 100);
		/* Keep a backlog of ~1000 lines: read one line per line fed. */
		if (i >= 1000) {
			ck_assert_int_eq(tide_stream_readline(g_r, line, sizeof(line)), 100);
		}
	}
	tide__stream_get_stats(g_r, &st);
	ck_assert_uint_le(st.moved, 4 * 4096 * 100);
	ck_assert_uint_le(st.scanned, 2 * 4096 * 100);
	ck_assert_uint_eq(tide__stream_buffered(g_r), 1000 * 100);
	tide_stream_free(g_r, w);
	return 0;
}

MAIN_TEST(test_linear_consume, linear_consume_main)

/* ------------------------------------------------- peek and consume -- */

/* Peeks at g_r, copies what it saw to arg (NUL-terminated); its count. */
static int64_t peek_task(void *arg)
{
	const void *p = NULL;
	ssize_t n = tide_stream_peek(g_r, &p);

	if (n > 0) {
		memcpy(arg, p, (size_t)n);
		((char *)arg)[n] = 0;
	}
	return n;
}

/* Asserts that a peek at r sees exactly want, and consumes nothing. */
static void ck_peek(struct tide_stream_reader *r, const char *want)
{
	size_t before = tide__stream_buffered(r);
	const void *p = NULL;
	ssize_t n = tide_stream_peek(r, &p);

	ck_assert_int_eq(n, (ssize_t)strlen(want));
	ck_assert_int_eq(memcmp(p, want, (size_t)n), 0);
	ck_assert_uint_eq(tide__stream_buffered(r), before);
}

/*
 * peek shows the buffered bytes without consuming them; consume drops
 * them, never past what is buffered; a peek on an empty reader waits as
 * a read does (one waiter, cancellable without losing anything); EOF and
 * the connection's error come once the bytes before them are consumed.
 */
static int64_t peek_fed_main(void *arg)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_future *t;
	const void *p = &p;
	char buf[16];

	(void)arg;
	feed_pair(&r, &w);
	g_r = r;
	ck_assert_int_eq(tide_stream_peek(NULL, &p), -EINVAL);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(tide_stream_peek(r, NULL), -EINVAL);
	ck_assert_int_eq(tide_stream_consume(NULL, 0), -EINVAL);
	ck_assert_int_eq(tide_stream_consume(r, 1), -EINVAL);
	ck_assert_int_eq(tide_stream_consume(r, 0), 0);

	feed(r, "hello");
	ck_peek(r, "hello");
	ck_peek(r, "hello");
	ck_assert_int_eq(tide_stream_consume(r, 2), 0);
	ck_peek(r, "llo");
	ck_assert_int_eq(tide_stream_consume(r, 4), -EINVAL);
	ck_read_eq(tide_stream_read(r, buf, 2), buf, "ll");
	ck_peek(r, "o");
	ck_assert_int_eq(tide_stream_consume(r, 1), 0);
	ck_assert_uint_eq(tide__stream_buffered(r), 0);

	/* Empty: the peek waits, and no other read may wait beside it. */
	t = spawn_waiting(peek_task, buf);
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(tide_stream_read(r, (char[4]){ 0 }, 4), -EBUSY);
	ck_assert_int_eq(tide_stream_peek(r, &p), -EBUSY);
	feed(r, "abc");
	ck_assert_int_eq(join(t), 3);
	ck_assert_str_eq(buf, "abc");
	ck_assert_uint_eq(tide__stream_buffered(r), 3);
	ck_assert_int_eq(tide_stream_consume(r, 3), 0);

	/* A cancelled peek: -ECANCELED, and the reader goes on as before. */
	t = spawn_waiting(peek_task, buf);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(join(t), -ECANCELED);
	feed(r, "xy");
	tide__stream_feed_eof(r, 0);
	ck_assert_int_eq(tide_stream_at_eof(r), 0);
	ck_peek(r, "xy");
	ck_assert_int_eq(tide_stream_consume(r, 2), 0);
	p = &p;
	ck_assert_int_eq(tide_stream_peek(r, &p), 0);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(tide_stream_at_eof(r), 1);
	ck_assert_uint_eq(kept_bytes(r), 0); /* no transport, no ring */
	tide_stream_free(r, w);

	feed_pair(&r, &w);
	feed(r, "z");
	tide__stream_feed_eof(r, -ECONNRESET);
	ck_peek(r, "z");
	ck_assert_int_eq(tide_stream_consume(r, 1), 0);
	ck_assert_int_eq(tide_stream_peek(r, &p), -ECONNRESET);
	tide_stream_free(r, w);
	g_r = NULL;
	return 0;
}

MAIN_TEST(test_peek_fed, peek_fed_main)

/* ------------------------------------- put back without memory -- */

/*
 * A read cancelled after its bytes landed, with no memory to put them
 * back into the buffer: the read returns them rather than lose them, and
 * the cancel stays owed to the task's next wait.
 */
static ssize_t g_putback_read;

static int64_t read_then_sleep_task(void *arg)
{
	g_putback_read = tide_stream_read(g_r, arg, LEND);
	return tide_sleep(0);
}

static int64_t putback_enomem_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide_future *t;
	static char buf[LEND];

	(void)arg;
	feed_pair(&g_r, &w);
	t = spawn_waiting(read_then_sleep_task, buf);
	feed(g_r, "abcd");
	ck_assert_uint_eq(tide__stream_buffered(g_r), 0);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_fail_next_malloc(4096); /* the reader's first buffer */
	ck_assert_int_eq(join(t), -ECANCELED);
	ck_assert_uint_eq(tt_fail_malloc_pending(), 0);
	ck_read_eq(g_putback_read, buf, "abcd");
	tide__stream_feed_eof(g_r, 0);
	ck_assert_int_eq(tide_stream_read(g_r, buf, sizeof(buf)), 0);
	tide_stream_free(g_r, w);
	return 0;
}

/*
 * readexactly cancelled after a receive landed in its buffer, with no
 * memory to put it back: the stream fails as a whole (-ENOMEM), as when
 * arriving bytes find no memory, rather than lose bytes silently.
 */
static int64_t readexactly_putback_enomem_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide_future *t;
	static char buf[2 * LEND];

	(void)arg;
	feed_pair(&g_r, &w);
	t = spawn_waiting(readexactly_2lend_task, buf);
	feed(g_r, "abcd");
	ck_assert_int_eq(tide_yield(), 0); /* collected: it waits for the rest */
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_fail_next_malloc(4096); /* the reader's first buffer */
	ck_assert_int_eq(join(t), -ENOMEM);
	ck_assert_uint_eq(tt_fail_malloc_pending(), 0);
	ck_assert_int_eq(tide_stream_read(g_r, buf, sizeof(buf)), -ENOMEM);
	tide_stream_free(g_r, w);
	return 0;
}

/*
 * The same with the receives of the wait that is cancelled put back
 * first: when the earlier ones then find no memory, what came after them
 * goes too, so the next read gets -ENOMEM, not bytes with a gap before.
 */
static int64_t readexactly_putback_enomem2_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide_future *t;
	static char buf[2 * LEND], fill[2 * LEND];

	(void)arg;
	memset(fill, 'x', sizeof(fill));
	feed_pair(&g_r, &w);
	t = spawn_waiting(readexactly_2lend_task, buf);
	tide__stream_feed_data(g_r, fill, LEND / 2);
	ck_assert_int_eq(tide_yield(), 0); /* holds LEND / 2, lends the rest */
	tide__stream_feed_data(g_r, fill, 3 * LEND / 2 - 100);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tide__stream_feed_data(g_r, fill, 100); /* fills the lend */
	feed(g_r, "tail");                       /* buffered */
	/* Its own put-back (3 LEND / 2 in front of "tail") gets 8 KiB; the
	 * earlier LEND / 2 would need 16 KiB. */
	tt_fail_next_malloc(4 * LEND);
	ck_assert_int_eq(join(t), -ENOMEM);
	ck_assert_uint_eq(tt_fail_malloc_pending(), 0);
	ck_assert_int_eq(tide_stream_read(g_r, buf, sizeof(buf)), -ENOMEM);
	tide_stream_free(g_r, w);
	return 0;
}

START_TEST(test_read_putback_enomem)
{
	if (!counting_allocator("test_read_putback_enomem"))
		return;
	run_main(putback_enomem_main, NULL);
	run_main(readexactly_putback_enomem_main, NULL);
	run_main(readexactly_putback_enomem2_main, NULL);
	ck_assert_int_eq(tt_live_allocs(), 0);
}
END_TEST

int main(void)
{
	const TTest *fed[] = {
		test_readline_limit, test_readuntil, test_read_exact, test_concurrent_read, test_readline_beside_woken,
		test_readline_beside_readuntil, test_read_lends_buffer,
		test_readexactly_lends_buffer, test_at_eof_pending, test_peek_fed, test_read_putback_enomem, test_linear_readuntil,
		test_linear_readline, test_linear_consume,
	};

	return net_main("stream-reader", 120, NULL, 0, fed, NET_COUNT(fed));
}
