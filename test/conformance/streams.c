/* SPDX-License-Identifier: MIT */
/*
 * conformance/streams.c: cases ported from CPython 3.11's
 * Lib/test/test_asyncio/test_streams.py, test_protocols.py and
 * test_buffered_proto.py, each named <python module>__<python test>, run on
 * every backend configuration. test/conformance/README.md maps each Python
 * test to its case.
 *
 * asyncio's StreamReader(loop=...) fed by hand is tide_stream_reader_new
 * with tide_stream_feed_*; where asyncio looks at stream._buffer, a case
 * looks at what tide_stream_peek shows (outside a task it never waits)
 * or, for an empty buffer, that tide_stream_consume(r, 1) finds nothing to
 * drop. asyncio's test server (an HTTP server answering "Test message") is
 * a tide stream server on 127.0.0.1 or a unix socket here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "../helpers.h"

/* asyncio's StreamTests.DATA */
static const char DATA[] = "line1\nline2\nline3\n";
#define DATALEN (sizeof(DATA) - 1)

static struct tide_stream_reader *g_rd;

/* ---------------------------------------------------------- a read task -- */

enum rq_kind { RQ_READ, RQ_READEXACTLY, RQ_READLINE, RQ_READUNTIL, RQ_READ_ALL };

/* One read of g_rd, made by a task: what it asked and what it got. */
struct rq {
	enum rq_kind kind;
	size_t n;          /* read, readexactly: bytes; readline, readuntil: cap */
	const char *sep;   /* readuntil */
	ssize_t rc;
	size_t partial;
	char buf[1024];
};

static struct rq g_q;

static int64_t rq_body(void *arg)
{
	struct rq *q = arg;
	void *all = NULL;

	switch (q->kind) {
	case RQ_READ:
		q->rc = tide_stream_read(g_rd, q->buf, q->n);
		break;
	case RQ_READEXACTLY:
		q->rc = tide_stream_readexactly(g_rd, q->buf, q->n, &q->partial);
		break;
	case RQ_READLINE:
		q->rc = tide_stream_readline(g_rd, q->buf, q->n);
		break;
	case RQ_READUNTIL:
		q->rc = tide_stream_readuntil(g_rd, q->sep, strlen(q->sep), q->buf, q->n, &q->partial);
		break;
	case RQ_READ_ALL:
		q->rc = tide_stream_read_all(g_rd, &all);
		if (q->rc > 0) {
			ck_assert_int_le(q->rc, (ssize_t)sizeof(q->buf));
			memcpy(q->buf, all, (size_t)q->rc);
		}
		tide_free(all);
		break;
	}
	return q->rc < 0 ? q->rc : 0;
}

/* Spawns the read (it starts on the loop's next iteration). */
static struct tide_future *rq_spawn(struct tide_loop *loop, enum rq_kind kind, size_t n, const char *sep)
{
	struct tide_future *t = NULL;

	memset(&g_q, 0, sizeof(g_q));
	g_q.kind = kind;
	g_q.n = n;
	g_q.sep = sep;
	ck_assert_int_eq(tide_task_spawn(loop, rq_body, &g_q, NULL, &t), 0);
	return t;
}

/* Runs the task to its end; its rc. */
static ssize_t rq_finish(struct tide_loop *loop, struct tide_future *t)
{
	int rc = tide_loop_run_until_complete(loop, t);

	ck_assert_int_eq(rc, g_q.rc < 0 ? (int)g_q.rc : 0);
	tide_future_unref(t);
	return g_q.rc;
}

/* loop.run_until_complete(stream.<kind>(...)) */
static ssize_t rq_run(struct tide_loop *loop, enum rq_kind kind, size_t n, const char *sep)
{
	return rq_finish(loop, rq_spawn(loop, kind, n, sep));
}

/* The last read returned exactly s. */
static void assert_got(const char *s)
{
	size_t n = strlen(s);

	ck_assert_int_eq(g_q.rc, (ssize_t)n);
	ck_assert_msg(memcmp(g_q.buf, s, n) == 0, "[%s] read \"%.*s\", expected \"%s\"", tt_cfg->name, (int)n,
		      g_q.buf, s);
}

/* stream._buffer == s */
static void assert_buffered(const char *s)
{
	size_t n = strlen(s);
	const void *p = NULL;
	ssize_t k;

	if (!n) {
		ck_assert_int_eq(tide_stream_consume(g_rd, 1), -EINVAL);
		return;
	}
	k = tide_stream_peek(g_rd, &p);
	ck_assert_int_eq(k, (ssize_t)n);
	ck_assert_msg(memcmp(p, s, n) == 0, "[%s] buffered \"%.*s\", expected \"%s\"", tt_cfg->name, (int)n,
		      (const char *)p, s);
}

static void feed(const char *s)
{
	ck_assert_int_eq(tide_stream_feed_data(g_rd, s, strlen(s)), 0);
}

/* A callback that feeds chunks, then EOF if asked (asyncio's cb()). */
struct feeding {
	const char *chunks[6];
	int eof;
};

static void feed_cb(void *arg)
{
	const struct feeding *f = arg;

	for (int i = 0; i < 6 && f->chunks[i]; i++)
		feed(f->chunks[i]);
	if (f->eof)
		ck_assert_int_eq(tide_stream_feed_eof(g_rd), 0);
}

static struct tide_loop *reader_setup(size_t limit)
{
	struct tide_loop *loop = tt_loop_new();

	ck_assert_int_eq(tide_stream_reader_new(loop, limit, &g_rd), 0);
	return loop;
}

static void reader_teardown(struct tide_loop *loop)
{
	tide_stream_free(g_rd, NULL);
	g_rd = NULL;
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

/* -------------------------------------------------- StreamReader by hand -- */

/* test_streams.test_feed_empty_data: feeding b'' buffers nothing. */
START_TEST(test_streams__test_feed_empty_data)
{
	struct tide_loop *loop = reader_setup(0);

	ck_assert_int_eq(tide_stream_feed_data(g_rd, "", 0), 0);
	assert_buffered("");
	ck_assert_int_eq(tide_stream_at_eof(g_rd), 0);
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_feed_nonempty_data: fed bytes are buffered as fed. */
START_TEST(test_streams__test_feed_nonempty_data)
{
	struct tide_loop *loop = reader_setup(0);

	feed(DATA);
	assert_buffered(DATA);
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_read_zero: read(0) is b'' and leaves the buffer. */
START_TEST(test_streams__test_read_zero)
{
	struct tide_loop *loop = reader_setup(0);

	feed(DATA);
	ck_assert_int_eq(rq_run(loop, RQ_READ, 0, NULL), 0);
	assert_buffered(DATA);
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_read: a read that waits gets the bytes fed after it. */
START_TEST(test_streams__test_read)
{
	struct tide_loop *loop = reader_setup(0);
	struct feeding f = { .chunks = { DATA } };
	struct tide_future *t = rq_spawn(loop, RQ_READ, 30, NULL);

	ck_assert_int_eq(tide_call_soon(loop, feed_cb, &f, NULL), 0);
	rq_finish(loop, t);
	assert_got(DATA);
	assert_buffered("");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_read_line_breaks: read(n) stops at n bytes, not at a
 * chunk's end. */
START_TEST(test_streams__test_read_line_breaks)
{
	struct tide_loop *loop = reader_setup(0);

	feed("line1");
	feed("line2");
	rq_run(loop, RQ_READ, 5, NULL);
	assert_got("line1");
	assert_buffered("line2");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_read_eof: a waiting read gets b'' at EOF. */
START_TEST(test_streams__test_read_eof)
{
	struct tide_loop *loop = reader_setup(0);
	struct feeding f = { .eof = 1 };
	struct tide_future *t = rq_spawn(loop, RQ_READ, 1024, NULL);

	ck_assert_int_eq(tide_call_soon(loop, feed_cb, &f, NULL), 0);
	ck_assert_int_eq(rq_finish(loop, t), 0);
	assert_buffered("");
	ck_assert_int_eq(tide_stream_at_eof(g_rd), 1);
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_invalid_limit: a limit of 0 is refused (ValueError;
 * here -EINVAL from set_limit: tide_stream_reader_new's 0 is the default,
 * tide's rule for zero fields), and so is one past what can be counted. */
START_TEST(test_streams__test_invalid_limit)
{
	struct tide_loop *loop = reader_setup(0);

	ck_assert_int_eq(tide_stream_set_limit(g_rd, 0), -EINVAL);
	ck_assert_int_eq(tide_stream_set_limit(g_rd, SIZE_MAX), -EINVAL);
	ck_assert_int_eq(tide_stream_set_limit(NULL, 3), -EINVAL);
	ck_assert_int_eq(tide_stream_set_limit(g_rd, 3), 0);
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_read_limit: the limit does not bound read(n). */
START_TEST(test_streams__test_read_limit)
{
	struct tide_loop *loop = reader_setup(3);

	feed("chunk");
	rq_run(loop, RQ_READ, 5, NULL);
	assert_got("chunk");
	assert_buffered("");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readline: readline waits across chunks for '\n'. */
START_TEST(test_streams__test_readline)
{
	struct tide_loop *loop = reader_setup(0);
	struct feeding f = { .chunks = { "chunk2 ", "chunk3 ", "\n chunk4" } };
	struct tide_future *t;

	feed("chunk1 ");
	t = rq_spawn(loop, RQ_READLINE, 256, NULL);
	ck_assert_int_eq(tide_call_soon(loop, feed_cb, &f, NULL), 0);
	rq_finish(loop, t);
	assert_got("chunk1 chunk2 chunk3 \n");
	assert_buffered(" chunk4");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readline_limit_with_existing_data: past the limit
 * (ValueError: TIDE_ELIMIT_OVERRUN) the line is dropped up to its '\n',
 * or the whole buffer when there is none. */
START_TEST(test_streams__test_readline_limit_with_existing_data)
{
	struct tide_loop *loop = reader_setup(3);

	feed("li");
	feed("ne1\nline2\n");
	ck_assert_int_eq(rq_run(loop, RQ_READLINE, 256, NULL), TIDE_ELIMIT_OVERRUN);
	assert_buffered("line2\n");
	tide_stream_free(g_rd, NULL);

	ck_assert_int_eq(tide_stream_reader_new(loop, 3, &g_rd), 0);
	feed("li");
	feed("ne1");
	feed("li");
	ck_assert_int_eq(rq_run(loop, RQ_READLINE, 256, NULL), TIDE_ELIMIT_OVERRUN);
	assert_buffered("");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_at_eof: at_eof only once EOF came and all was read. */
START_TEST(test_streams__test_at_eof)
{
	struct tide_loop *loop = reader_setup(0);

	ck_assert_int_eq(tide_stream_at_eof(g_rd), 0);
	feed("some data\n");
	ck_assert_int_eq(tide_stream_at_eof(g_rd), 0);
	rq_run(loop, RQ_READLINE, 256, NULL);
	assert_got("some data\n");
	ck_assert_int_eq(tide_stream_at_eof(g_rd), 0);
	feed("some data\n");
	ck_assert_int_eq(tide_stream_feed_eof(g_rd), 0);
	ck_assert_int_eq(tide_stream_at_eof(g_rd), 0);
	rq_run(loop, RQ_READLINE, 256, NULL);
	assert_got("some data\n");
	ck_assert_int_eq(tide_stream_at_eof(g_rd), 1);
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readline_limit: the limit with bytes fed after
 * readline started, and its strictness (a line of exactly limit bytes
 * before '\n' passes). */
START_TEST(test_streams__test_readline_limit)
{
	struct tide_loop *loop = reader_setup(7);
	struct feeding f1 = { .chunks = { "chunk1", "chunk2", "chunk3\n" }, .eof = 1 };
	struct feeding f2 = { .chunks = { "chunk1", "chunk2\n", "chunk3\n" }, .eof = 1 };
	struct tide_future *t;

	t = rq_spawn(loop, RQ_READLINE, 256, NULL);
	ck_assert_int_eq(tide_call_soon(loop, feed_cb, &f1, NULL), 0);
	ck_assert_int_eq(rq_finish(loop, t), TIDE_ELIMIT_OVERRUN);
	assert_buffered("");
	tide_stream_free(g_rd, NULL);

	ck_assert_int_eq(tide_stream_reader_new(loop, 7, &g_rd), 0);
	t = rq_spawn(loop, RQ_READLINE, 256, NULL);
	ck_assert_int_eq(tide_call_soon(loop, feed_cb, &f2, NULL), 0);
	ck_assert_int_eq(rq_finish(loop, t), TIDE_ELIMIT_OVERRUN);
	assert_buffered("chunk3\n");
	tide_stream_free(g_rd, NULL);

	ck_assert_int_eq(tide_stream_reader_new(loop, 7, &g_rd), 0);
	feed("1234567\n");
	rq_run(loop, RQ_READLINE, 256, NULL);
	assert_got("1234567\n");
	assert_buffered("");
	feed("12345678\n");
	ck_assert_int_eq(rq_run(loop, RQ_READLINE, 256, NULL), TIDE_ELIMIT_OVERRUN);
	assert_buffered("");
	feed("12345678");
	ck_assert_int_eq(rq_run(loop, RQ_READLINE, 256, NULL), TIDE_ELIMIT_OVERRUN);
	assert_buffered("");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readline_nolimit_nowait: a line already buffered
 * comes back at once, the rest stays. */
START_TEST(test_streams__test_readline_nolimit_nowait)
{
	struct tide_loop *loop = reader_setup(0);

	ck_assert_int_eq(tide_stream_feed_data(g_rd, DATA, 6), 0);
	feed(DATA + 6);
	rq_run(loop, RQ_READLINE, 256, NULL);
	assert_got("line1\n");
	assert_buffered("line2\nline3\n");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readline_eof: at EOF readline gives the partial line. */
START_TEST(test_streams__test_readline_eof)
{
	struct tide_loop *loop = reader_setup(0);

	feed("some data");
	ck_assert_int_eq(tide_stream_feed_eof(g_rd), 0);
	rq_run(loop, RQ_READLINE, 256, NULL);
	assert_got("some data");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readline_empty_eof: at EOF with nothing, b''. */
START_TEST(test_streams__test_readline_empty_eof)
{
	struct tide_loop *loop = reader_setup(0);

	ck_assert_int_eq(tide_stream_feed_eof(g_rd), 0);
	ck_assert_int_eq(rq_run(loop, RQ_READLINE, 256, NULL), 0);
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readline_read_byte_count: read(n) after readline
 * takes n bytes from where the line ended. */
START_TEST(test_streams__test_readline_read_byte_count)
{
	struct tide_loop *loop = reader_setup(0);

	feed(DATA);
	rq_run(loop, RQ_READLINE, 256, NULL);
	assert_got("line1\n");
	rq_run(loop, RQ_READ, 7, NULL);
	assert_got("line2\nl");
	assert_buffered("ine3\n");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readline_exception: after the buffered line was read,
 * readline raises the exception set, and the buffer is empty. */
START_TEST(test_streams__test_readline_exception)
{
	struct tide_loop *loop = reader_setup(0);

	feed("line\n");
	rq_run(loop, RQ_READLINE, 256, NULL);
	assert_got("line\n");
	ck_assert_int_eq(tide_stream_set_exception(g_rd, -EINVAL), 0);
	ck_assert_int_eq(rq_run(loop, RQ_READLINE, 256, NULL), -EINVAL);
	assert_buffered("");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readuntil_separator: an empty separator is refused
 * (ValueError: -EINVAL). */
START_TEST(test_streams__test_readuntil_separator)
{
	struct tide_loop *loop = reader_setup(0);

	ck_assert_int_eq(rq_run(loop, RQ_READUNTIL, 256, ""), -EINVAL);
	feed(DATA);
	ck_assert_int_eq(rq_run(loop, RQ_READUNTIL, 256, ""), -EINVAL);
	assert_buffered(DATA);
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readuntil_multi_chunks: a multi-byte separator at the
 * end of the buffer, and with bytes after it. */
START_TEST(test_streams__test_readuntil_multi_chunks)
{
	struct tide_loop *loop = reader_setup(0);

	feed("lineAAA");
	rq_run(loop, RQ_READUNTIL, 256, "AAA");
	assert_got("lineAAA");
	assert_buffered("");
	feed("lineAAA");
	rq_run(loop, RQ_READUNTIL, 256, "AAA");
	assert_got("lineAAA");
	assert_buffered("");
	feed("lineAAAxxx");
	rq_run(loop, RQ_READUNTIL, 256, "AAA");
	assert_got("lineAAA");
	assert_buffered("xxx");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readuntil_multi_chunks_1: a separator split across
 * the chunks it was fed in, and partial matches before it. */
START_TEST(test_streams__test_readuntil_multi_chunks_1)
{
	struct tide_loop *loop = reader_setup(0);

	feed("QWEaa");
	feed("XYaa");
	feed("a");
	rq_run(loop, RQ_READUNTIL, 256, "aaa");
	assert_got("QWEaaXYaaa");
	assert_buffered("");
	feed("QWEaa");
	feed("XYa");
	feed("aa");
	rq_run(loop, RQ_READUNTIL, 256, "aaa");
	assert_got("QWEaaXYaaa");
	assert_buffered("");
	feed("aaa");
	rq_run(loop, RQ_READUNTIL, 256, "aaa");
	assert_got("aaa");
	assert_buffered("");
	feed("Xaaa");
	rq_run(loop, RQ_READUNTIL, 256, "aaa");
	assert_got("Xaaa");
	assert_buffered("");
	feed("XXX");
	feed("a");
	feed("a");
	feed("a");
	rq_run(loop, RQ_READUNTIL, 256, "aaa");
	assert_got("XXXaaa");
	assert_buffered("");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readuntil_eof: EOF before the separator is
 * IncompleteReadError with every byte as its partial; the buffer is
 * empty after. */
START_TEST(test_streams__test_readuntil_eof)
{
	struct tide_loop *loop = reader_setup(0);

	feed("some dataAA");
	ck_assert_int_eq(tide_stream_feed_eof(g_rd), 0);
	ck_assert_int_eq(rq_run(loop, RQ_READUNTIL, 256, "AAA"), TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(g_q.partial, 11);
	ck_assert_int_eq(memcmp(g_q.buf, "some dataAA", 11), 0);
	assert_buffered("");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readuntil_limit_found_sep: LimitOverrunError whether
 * the separator is not found within the limit or found past it; either
 * way the bytes stay buffered. */
START_TEST(test_streams__test_readuntil_limit_found_sep)
{
	struct tide_loop *loop = reader_setup(3);

	feed("some dataAA");
	ck_assert_int_eq(rq_run(loop, RQ_READUNTIL, 256, "AAA"), TIDE_ELIMIT_OVERRUN);
	assert_buffered("some dataAA");
	feed("A");
	ck_assert_int_eq(rq_run(loop, RQ_READUNTIL, 256, "AAA"), TIDE_ELIMIT_OVERRUN);
	assert_buffered("some dataAAA");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readexactly_zero_or_less: readexactly(0) is b'', a
 * negative count (here one past SSIZE_MAX) is ValueError (-EINVAL); the
 * buffer is untouched. */
START_TEST(test_streams__test_readexactly_zero_or_less)
{
	struct tide_loop *loop = reader_setup(0);

	feed(DATA);
	ck_assert_int_eq(rq_run(loop, RQ_READEXACTLY, 0, NULL), 0);
	assert_buffered(DATA);
	ck_assert_int_eq(rq_run(loop, RQ_READEXACTLY, (size_t)-1, NULL), -EINVAL);
	assert_buffered(DATA);
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readexactly: waits for exactly n bytes across chunks;
 * what is past them stays. */
START_TEST(test_streams__test_readexactly)
{
	struct tide_loop *loop = reader_setup(0);
	struct feeding f = { .chunks = { DATA, DATA, DATA } };
	struct tide_future *t = rq_spawn(loop, RQ_READEXACTLY, 2 * DATALEN, NULL);

	ck_assert_int_eq(tide_call_soon(loop, feed_cb, &f, NULL), 0);
	rq_finish(loop, t);
	assert_got("line1\nline2\nline3\nline1\nline2\nline3\n");
	assert_buffered(DATA);
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readexactly_limit: the limit does not bound readexactly. */
START_TEST(test_streams__test_readexactly_limit)
{
	struct tide_loop *loop = reader_setup(3);

	feed("chunk");
	rq_run(loop, RQ_READEXACTLY, 5, NULL);
	assert_got("chunk");
	assert_buffered("");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readexactly_eof: EOF first is IncompleteReadError with
 * the partial bytes (18 of the 36 expected), the buffer empty after. */
START_TEST(test_streams__test_readexactly_eof)
{
	struct tide_loop *loop = reader_setup(0);
	struct feeding f = { .chunks = { DATA }, .eof = 1 };
	struct tide_future *t = rq_spawn(loop, RQ_READEXACTLY, 2 * DATALEN, NULL);

	ck_assert_int_eq(tide_call_soon(loop, feed_cb, &f, NULL), 0);
	ck_assert_int_eq(rq_finish(loop, t), TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(g_q.partial, DATALEN);
	ck_assert_int_eq(memcmp(g_q.buf, DATA, DATALEN), 0);
	assert_buffered("");
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_readexactly_exception, differing on purpose as
 * test_read_exception: the bytes fed before set_exception are read
 * first ("ne", then "\n" short of the 2 asked: IncompleteReadError),
 * then the error (asyncio raises at once, dropping them). */
START_TEST(test_streams__test_readexactly_exception)
{
	struct tide_loop *loop = reader_setup(0);

	feed("line\n");
	rq_run(loop, RQ_READEXACTLY, 2, NULL);
	assert_got("li");
	ck_assert_int_eq(tide_stream_set_exception(g_rd, -EINVAL), 0);
	rq_run(loop, RQ_READEXACTLY, 2, NULL);
	assert_got("ne");
	ck_assert_int_eq(rq_run(loop, RQ_READEXACTLY, 2, NULL), TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(g_q.partial, 1);
	ck_assert_int_eq(g_q.buf[0], '\n');
	ck_assert_int_eq(rq_run(loop, RQ_READEXACTLY, 2, NULL), -EINVAL);
	reader_teardown(loop);
}
END_TEST

/* test_streams.test_exception_cancel: a readline cancelled while it waits
 * leaves no waiter behind; a later set_exception is safe and reaches the
 * next read. */
START_TEST(test_streams__test_exception_cancel)
{
	struct tide_loop *loop = reader_setup(0);
	struct tide_future *t = rq_spawn(loop, RQ_READLINE, 256, NULL);

	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	RUN_UNTIL(loop, tide_future_done(t));
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_future_unref(t);
	ck_assert_int_eq(tide_stream_set_exception(g_rd, -EIO), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(rq_run(loop, RQ_READLINE, 256, NULL), -EIO);
	reader_teardown(loop);
}
END_TEST

/* ------------------------------------------------------- a read pipe -- */

static void pr_data(struct tide_transport *t, const void *data, size_t n, void *proto)
{
	(void)t;
	ck_assert_int_eq(tide_stream_feed_data(proto, data, n), 0);
}

static int pr_eof(struct tide_transport *t, void *proto)
{
	(void)t;
	ck_assert_int_eq(tide_stream_feed_eof(proto), 0);
	return 0;
}

/* asyncio's StreamReaderProtocol over a reader made by hand. */
static const struct tide_protocol_ops pr_ops = {
	.size = sizeof(pr_ops), .data_received = pr_data, .eof_received = pr_eof,
};

/* test_streams.test_read_all_from_pipe_reader: a reader (limit 1) fed by
 * a read pipe transport; a child writes b'data' to the pipe and exits;
 * read(-1) gives it all. */
START_TEST(test_streams__test_read_all_from_pipe_reader)
{
	struct tide_loop *loop = reader_setup(1);
	struct tide_subprocess_opts o = { .size = sizeof(o) };
	struct tide_future *f, *pf, *t;
	struct tide_process *p;
	char cmd[64];
	int fds[2], code = -1;

	tt_pipe(fds, 0);
	ck_assert_int_eq(tide_connect_read_pipe(loop, fds[0], &pr_ops, g_rd, &pf), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, pf), 0);
	snprintf(cmd, sizeof(cmd), "printf data >/proc/self/fd/%d", fds[1]);
	o.pass_fds = &fds[1];
	o.npass_fds = 1;
	ck_assert_int_eq(tide_create_subprocess_shell(loop, cmd, &o, &f), 0);
	p = tide_future_take_ptr(f);
	tide_future_unref(f);
	RUN_UNTIL(loop, tide_process_returncode(p, &code) == 1);
	ck_assert_int_eq(code, 0);
	tide_process_free(p);
	close(fds[1]);
	t = rq_spawn(loop, RQ_READ_ALL, 0, NULL);
	rq_finish(loop, t);
	assert_got("data");
	tide_future_unref(pf); /* the transport goes with the pipe's EOF */
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	reader_teardown(loop);
}
END_TEST

/* ------------------------------------------------------ connections -- */

static struct tide_loop *g_loop;
static int g_messages;
static char g_path[108];

static void count_messages(struct tide_loop *loop, const struct tide_error_context *ctx, void *arg)
{
	(void)loop;
	(void)arg;
	fprintf(stderr, "[%s] exception handler: %s (%s)\n", tt_cfg->name, ctx->message ? ctx->message : "",
		tide_strerror(ctx->error));
	g_messages++;
}

/* asyncio's test server: reads the request's lines to the blank one,
 * answers with a status line, a blank line and "Test message", closes. */
static int64_t http_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	static const char reply[] = "HTTP/1.0 200 OK\r\n\r\nTest message";
	char line[256];
	ssize_t n;

	(void)arg;
	while ((n = tide_stream_readline(r, line, sizeof(line))) > 2)
		;
	if (n != 2)
		return 0; /* the client left without asking */
	if (tide_stream_write(w, reply, sizeof(reply) - 1) == 0)
		tide_stream_drain(w);
	return 0;
}

/* Echoes one line (test_start_server's MyServer.handle_client). */
static int64_t echo_line_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	char line[256];
	ssize_t n = tide_stream_readline(r, line, sizeof(line));

	(void)arg;
	if (n > 0) {
		ck_assert_int_eq(tide_stream_write(w, line, (size_t)n), 0);
		ck_assert_int_eq(tide_stream_drain(w), 0);
	}
	tide_stream_close(w);
	ck_assert_int_eq(tide_stream_wait_closed(w), 0);
	return 0;
}

/* Inside a task: a stream server on 127.0.0.1 (path NULL) or a unix path. */
static struct tide_server *serve(tide_stream_handler_cb h, const char *path, int *port)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct tide_future *f = NULL;
	struct tide_server *s;

	if (path) {
		unlink(path);
		ck_assert_int_eq(tide_start_unix_server(g_loop, path, NULL, h, NULL, &f), 0);
	} else {
		ck_assert_int_eq(tide_start_server(g_loop, hosts, 1, 0, NULL, h, NULL, &f), 0);
	}
	ck_assert_int_eq(tide_await(f), 0);
	s = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_ptr_nonnull(s);
	if (port)
		*port = tide_server_port(s);
	return s;
}

static void server_done(struct tide_server *s, const char *path)
{
	tide_server_close(s);
	ck_assert_int_eq(tide_server_wait_closed(s), 0);
	tide_server_free(s);
	if (path)
		unlink(path);
}

static void open_to(int port, const char *path, struct tide_stream_reader **r, struct tide_stream_writer **w)
{
	int rc = path ? tide_open_unix_connection(path, r, w) : tide_open_connection("127.0.0.1", port, r, w);

	ck_assert_msg(rc == 0, "[%s] open_connection: %s", tt_cfg->name, tide_strerror(rc));
}

/* GET, then the status line. */
static void ask(struct tide_stream_reader *r, struct tide_stream_writer *w)
{
	static const char get[] = "GET / HTTP/1.0\r\n\r\n";
	char line[256];

	ck_assert_int_eq(tide_stream_write(w, get, sizeof(get) - 1), 0);
	ck_assert_int_eq(tide_stream_readline(r, line, sizeof(line)), 17);
	ck_assert_int_eq(memcmp(line, "HTTP/1.0 200 OK\r\n", 17), 0);
}

/* read() to EOF ends with "\r\n\r\nTest message" (the blank line's
 * "\r\n" after the status line's). */
static void read_rest(struct tide_stream_reader *r)
{
	void *all = NULL;
	ssize_t n = tide_stream_read_all(r, &all);

	ck_assert_int_eq(n, 14);
	ck_assert_int_eq(memcmp(all, "\r\nTest message", 14), 0);
	tide_free(all);
}

/* test_streams.test_open_connection / test_open_unix_connection: a
 * request and its answer over open_connection. */
static int64_t open_connection_main(void *arg)
{
	const char *path = arg;
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *s;
	int port = 0;

	s = serve(http_handler, path, &port);
	open_to(port, path, &r, &w);
	ask(r, w);
	read_rest(r);
	ck_assert_int_eq(tide_stream_at_eof(r), 1);
	tide_stream_close(w);
	ck_assert_int_eq(tide_stream_wait_closed(w), 0);
	tide_stream_free(r, w);
	server_done(s, path);
	return 0;
}

START_TEST(test_streams__test_open_connection)
{
	tt_run_main(&g_loop, open_connection_main, NULL);
}
END_TEST

START_TEST(test_streams__test_open_unix_connection)
{
	snprintf(g_path, sizeof(g_path), "/tmp/tide-conf-streams-%ld.sock", (long)getpid());
	tt_run_main(&g_loop, open_connection_main, g_path);
}
END_TEST

/* test_streams.test_open_connection_error: the connection's error
 * (asyncio injects one into connection_lost; here the server resets the
 * connection) is what the next read raises, and nothing goes to the
 * exception handler. */
static void rst_made(struct tide_transport *t, void *proto)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };
	socklen_t len = sizeof(int);
	int fd = -1;

	(void)proto;
	ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &len), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
	tide_transport_abort(t);
}

static const struct tide_protocol_ops rst_ops = { .size = sizeof(rst_ops), .connection_made = rst_made };

static int rst_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	(void)arg;
	*ops = &rst_ops;
	*proto = NULL;
	return 0;
}

static int64_t open_connection_error_main(void *arg)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *s;
	struct tide_future *f;
	char buf[16];

	(void)arg;
	tide_loop_set_exception_handler(g_loop, count_messages, NULL);
	g_messages = 0;
	ck_assert_int_eq(tide_create_server(g_loop, hosts, 1, 0, NULL, rst_factory, NULL, &f), 0);
	ck_assert_int_eq(tide_await(f), 0);
	s = tide_future_take_ptr(f);
	tide_future_unref(f);
	open_to(tide_server_port(s), NULL, &r, &w);
	ck_assert_int_eq(tide_stream_read(r, buf, sizeof(buf)), -ECONNRESET);
	tide_stream_close(w);
	ck_assert_int_eq(tide_stream_wait_closed(w), -ECONNRESET);
	tide_stream_free(r, w);
	tide_server_close(s);
	ck_assert_int_eq(tide_server_wait_closed(s), 0);
	tide_server_free(s);
	ck_assert_int_eq(tide_sleep(0), 0);
	ck_assert_int_eq(g_messages, 0);
	return 0;
}

START_TEST(test_streams__test_open_connection_error)
{
	tt_run_main(&g_loop, open_connection_error_main, NULL);
}
END_TEST

/* test_streams.test_start_server / test_start_unix_server: a handler
 * task per connection echoes a line back; the client's close and
 * wait_closed end cleanly; nothing goes to the exception handler. */
static int64_t start_server_main(void *arg)
{
	const char *path = arg;
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *s;
	char line[64];
	int port = 0;

	tide_loop_set_exception_handler(g_loop, count_messages, NULL);
	g_messages = 0;
	s = serve(echo_line_handler, path, &port);
	open_to(port, path, &r, &w);
	ck_assert_int_eq(tide_stream_write(w, "hello world!\n", 13), 0);
	ck_assert_int_eq(tide_stream_readline(r, line, sizeof(line)), 13);
	ck_assert_int_eq(memcmp(line, "hello world!\n", 13), 0);
	tide_stream_close(w);
	ck_assert_int_eq(tide_stream_wait_closed(w), 0);
	tide_stream_free(r, w);
	server_done(s, path);
	ck_assert_int_eq(g_messages, 0);
	return 0;
}

START_TEST(test_streams__test_start_server)
{
	tt_run_main(&g_loop, start_server_main, NULL);
}
END_TEST

START_TEST(test_streams__test_start_unix_server)
{
	snprintf(g_path, sizeof(g_path), "/tmp/tide-conf-streams-%ld.sock", (long)getpid());
	tt_run_main(&g_loop, start_server_main, g_path);
}
END_TEST

/* test_streams.test_drain_raises: a client that writes and drains in a
 * loop to a peer that closed its socket gets the connection's error
 * (ConnectionResetError or BrokenPipeError) instead of spinning, and
 * nothing goes to the exception handler. The peer is a plain socket. */
static int64_t drain_raises_main(void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	int lfd, cfd, rc = 0, wrc;
	long rounds;

	(void)arg;
	tide_loop_set_exception_handler(g_loop, count_messages, NULL);
	g_messages = 0;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	open_to(ntohs(a.sin_port), NULL, &r, &w);
	cfd = accept(lfd, NULL, NULL); /* queued already: does not block */
	ck_assert_int_ge(cfd, 0);
	close(cfd);
	close(lfd);
	for (rounds = 0; rounds < 10000000; rounds++) {
		/* Once the transport is closing (the send failed) the write
		 * is refused, TIDE_ECLOSED; asyncio's drops it. */
		wrc = tide_stream_write(w, "foo\n", 4);
		ck_assert_msg(wrc == 0 || wrc == TIDE_ECLOSED || wrc == -ECONNRESET || wrc == -EPIPE,
			      "[%s] write gave %d (%s)", tt_cfg->name, wrc, tide_strerror(wrc));
		if ((rc = tide_stream_drain(w)) < 0)
			break;
	}
	ck_assert_msg(rc == -ECONNRESET || rc == -EPIPE || rc == -ECONNABORTED,
		      "[%s] drain gave %d (%s) after %ld rounds", tt_cfg->name, rc, tide_strerror(rc), rounds);
	tide_stream_free(r, w);
	ck_assert_int_eq(tide_sleep(0), 0);
	ck_assert_int_eq(g_messages, 0);
	return 0;
}

START_TEST(test_streams__test_drain_raises)
{
	tt_run_main(&g_loop, drain_raises_main, NULL);
}
END_TEST

/* test_streams.test_multiple_drain: ten tasks drain one paused writer;
 * all of them return once it resumes. The writer is paused by a peer
 * that does not read (a plain socket with a small receive buffer) and
 * resumes when the peer reads everything. */
static struct tide_stream_writer *g_w;
static int g_drained;

static int64_t drainer(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_stream_drain(g_w), 0);
	g_drained++;
	return 0;
}

static int64_t multiple_drain_main(void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	struct tide_stream_reader *r;
	struct tide_future *t[10];
	static char chunk[1024 * 1024];
	socklen_t len = sizeof(int);
	size_t total = 0;
	ssize_t n;
	int lfd, cfd, fd = -1, small = 4096;

	(void)arg;
	g_drained = 0;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	open_to(ntohs(a.sin_port), NULL, &r, &g_w);
	ck_assert_int_eq(tide_stream_get_extra_info(g_w, "socket", &fd, &len), 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	cfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(cfd, 0);
	ck_assert_int_eq(fcntl(cfd, F_SETFL, O_NONBLOCK), 0);
	close(lfd);
	memset(chunk, 'x', sizeof(chunk));
	ck_assert_int_eq(tide_stream_write(g_w, chunk, sizeof(chunk)), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(tide_task_spawn(g_loop, drainer, NULL, NULL, &t[i]), 0);
	ck_assert_int_eq(tide_sleep(0.05), 0);
	ck_assert_int_eq(g_drained, 0); /* paused: the peer has not read */
	while (total < sizeof(chunk)) {
		n = recv(cfd, chunk, sizeof(chunk), 0);
		if (n < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			ck_assert_int_eq(tide_sleep(0.001), 0);
			continue;
		}
		ck_assert_int_gt(n, 0);
		total += (size_t)n;
	}
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(tide_await(t[i]), 0);
		tide_future_unref(t[i]);
	}
	ck_assert_int_eq(g_drained, 10);
	tide_stream_close(g_w);
	ck_assert_int_eq(tide_stream_wait_closed(g_w), 0);
	tide_stream_free(r, g_w);
	close(cfd);
	return 0;
}

START_TEST(test_streams__test_multiple_drain)
{
	tt_run_main(&g_loop, multiple_drain_main, NULL);
}
END_TEST

/* test_streams.test_wait_closed_on_close: is_closing turns true at
 * close, and wait_closed returns once the connection is gone. */
static int64_t wait_closed_main(void *arg)
{
	int unread = arg != NULL;
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *s;
	int port = 0;

	s = serve(http_handler, NULL, &port);
	open_to(port, NULL, &r, &w);
	ask(r, w);
	if (!unread)
		read_rest(r);
	ck_assert_int_eq(tide_stream_is_closing(w), 0);
	tide_stream_close(w);
	ck_assert_int_eq(tide_stream_is_closing(w), 1);
	ck_assert_int_eq(tide_stream_wait_closed(w), 0);
	tide_stream_free(r, w);
	server_done(s, NULL);
	return 0;
}

START_TEST(test_streams__test_wait_closed_on_close)
{
	tt_run_main(&g_loop, wait_closed_main, NULL);
}
END_TEST

/* test_streams.test_wait_closed_on_close_with_unread_data: the same with
 * the answer's rest left unread. */
START_TEST(test_streams__test_wait_closed_on_close_with_unread_data)
{
	tt_run_main(&g_loop, wait_closed_main, "unread");
}
END_TEST

/* test_streams.test_async_writer_api: write, readline, read, close,
 * wait_closed from a task, and nothing goes to the exception handler. */
static int64_t writer_api_main(void *arg)
{
	int after_close = arg != NULL;
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *s;
	int port = 0, rc;

	tide_loop_set_exception_handler(g_loop, count_messages, NULL);
	g_messages = 0;
	s = serve(http_handler, NULL, &port);
	open_to(port, NULL, &r, &w);
	ask(r, w);
	read_rest(r);
	tide_stream_close(w);
	if (after_close) {
		/* tide refuses the write itself (asyncio takes it and its
		 * drain raises ConnectionResetError). */
		ck_assert_int_eq(tide_stream_write(w, "data", 4), TIDE_ECLOSED);
		rc = tide_stream_drain(w);
		ck_assert_msg(rc == 0 || rc == -ECONNRESET, "[%s] drain after close: %d", tt_cfg->name, rc);
	}
	ck_assert_int_eq(tide_stream_wait_closed(w), 0);
	if (after_close) {
		ck_assert_int_eq(tide_stream_write(w, "data", 4), TIDE_ECLOSED);
		ck_assert_int_eq(tide_stream_drain(w), -ECONNRESET);
	}
	tide_stream_free(r, w);
	server_done(s, NULL);
	ck_assert_int_eq(g_messages, 0);
	return 0;
}

START_TEST(test_streams__test_async_writer_api)
{
	tt_run_main(&g_loop, writer_api_main, NULL);
}
END_TEST

/* test_streams.test_async_writer_api_exception_after_close, differing on
 * purpose: a write after close is refused at once with TIDE_ECLOSED
 * (tide_stream_write, tide_transport_write), where asyncio's write
 * accepts it and the drain raises ConnectionResetError; once the
 * connection is lost, drain gives -ECONNRESET as asyncio's. */
START_TEST(test_streams__test_async_writer_api_exception_after_close)
{
	tt_run_main(&g_loop, writer_api_main, "after close");
}
END_TEST

/* test_streams.test_eof_feed_when_closing_writer: after close and
 * wait_closed the reader is at EOF and read() gives b'', with nothing
 * for the exception handler. */
static int64_t eof_feed_main(void *arg)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *s;
	void *all = NULL;
	int port = 0;

	(void)arg;
	tide_loop_set_exception_handler(g_loop, count_messages, NULL);
	g_messages = 0;
	s = serve(http_handler, NULL, &port);
	open_to(port, NULL, &r, &w);
	tide_stream_close(w);
	ck_assert_int_eq(tide_stream_wait_closed(w), 0);
	ck_assert_int_eq(tide_stream_at_eof(r), 1);
	ck_assert_int_eq(tide_stream_read_all(r, &all), 0);
	tide_free(all);
	tide_stream_free(r, w);
	server_done(s, NULL);
	ck_assert_int_eq(g_messages, 0);
	return 0;
}

START_TEST(test_streams__test_eof_feed_when_closing_writer)
{
	tt_run_main(&g_loop, eof_feed_main, NULL);
}
END_TEST

/* ------------------------------------------------------------ protocols -- */

/* A server whose connection sends `what`, then EOF (write_eof), and
 * reads until the client's EOF. */
struct peer {
	int lfd, cfd, port;
};

static void peer_listen(struct peer *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);

	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(p->lfd, 0);
	ck_assert_int_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(p->lfd, 1), 0);
	ck_assert_int_eq(getsockname(p->lfd, (struct sockaddr *)&a, &alen), 0);
	p->port = ntohs(a.sin_port);
}

struct order {
	char seq[16];
	int n;
	size_t bytes;
	int lost_err;
	int eof_ret;
};
static struct order g_ord;

static void ord_made(struct tide_transport *t, void *proto)
{
	(void)t;
	(void)proto;
	g_ord.seq[g_ord.n++] = 'M';
}

static void ord_data(struct tide_transport *t, const void *data, size_t n, void *proto)
{
	(void)t;
	(void)data;
	(void)proto;
	if (g_ord.n == 0 || g_ord.seq[g_ord.n - 1] != 'D')
		g_ord.seq[g_ord.n++] = 'D';
	g_ord.bytes += n;
}

static int ord_eof(struct tide_transport *t, void *proto)
{
	(void)t;
	(void)proto;
	g_ord.seq[g_ord.n++] = 'E';
	return g_ord.eof_ret;
}

static void ord_lost(struct tide_transport *t, int err, void *proto)
{
	(void)t;
	(void)proto;
	g_ord.seq[g_ord.n++] = 'L';
	g_ord.lost_err = err;
}

static const struct tide_protocol_ops ord_ops = {
	.size = sizeof(ord_ops), .connection_made = ord_made, .data_received = ord_data,
	.eof_received = ord_eof, .connection_lost = ord_lost,
};

/* Connects ops to the peer; the peer sends "hello" and shuts down its
 * write side; returns the transport once the peer sees EOF from it
 * (the transport closed after eof_received returned 0). */
static void proto_run(struct tide_loop *loop, const struct tide_protocol_ops *ops, int expect_close)
{
	struct peer p;
	struct tide_future *f;
	struct tide_transport *t;
	char buf[8];

	peer_listen(&p);
	ck_assert_int_eq(tide_create_connection(loop, "127.0.0.1", p.port, ops, NULL, &f), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, f), 0);
	t = tide_future_take_ptr(f); /* with the future's reference */
	tide_future_unref(f);
	p.cfd = accept(p.lfd, NULL, NULL);
	ck_assert_int_ge(p.cfd, 0);
	close(p.lfd);
	tt_write_all(p.cfd, "hello", 5);
	ck_assert_int_eq(shutdown(p.cfd, SHUT_WR), 0);
	if (expect_close) {
		/* eof_received returned 0 (None): the transport closes and
		 * the peer reads EOF. */
		RUN_UNTIL(loop, tide_transport_is_closing(t));
		RUN_UNTIL(loop, recv(p.cfd, buf, sizeof(buf), MSG_DONTWAIT) == 0);
		tide_transport_unref(t);
	} else {
		RUN_UNTIL(loop, g_ord.n >= 3);
		ck_assert_int_eq(tide_transport_is_closing(t), 0);
		/* Half-closed: the transport still writes. */
		ck_assert_int_eq(tide_transport_write(t, "bye", 3), 0);
		tide_transport_close(t);
		RUN_UNTIL(loop, recv(p.cfd, buf, sizeof(buf), MSG_DONTWAIT) == 3);
		tide_transport_unref(t);
	}
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	close(p.cfd);
}

/* test_protocols.test_base_protocol: a protocol with every callback left
 * out (BaseProtocol's, which do nothing, and eof_received's None) is
 * served: data is dropped, and EOF closes the transport. */
START_TEST(test_protocols__test_base_protocol)
{
	struct tide_loop *loop = tt_loop_new();
	const struct tide_protocol_ops none = { .size = sizeof(none) };

	proto_run(loop, &none, 1);
	proto_run(loop, NULL, 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_protocols.test_protocol: Protocol's callbacks come in order,
 * connection_made, data_received, eof_received, connection_lost(None);
 * an eof_received of None closes the transport, a true one keeps it open
 * for writing. */
START_TEST(test_protocols__test_protocol)
{
	struct tide_loop *loop = tt_loop_new();

	memset(&g_ord, 0, sizeof(g_ord));
	proto_run(loop, &ord_ops, 1);
	ck_assert_str_eq(g_ord.seq, "MDEL");
	ck_assert_uint_eq(g_ord.bytes, 5);
	ck_assert_int_eq(g_ord.lost_err, 0);

	memset(&g_ord, 0, sizeof(g_ord));
	g_ord.eof_ret = 1;
	proto_run(loop, &ord_ops, 0);
	ck_assert_str_eq(g_ord.seq, "MDEL");
	ck_assert_int_eq(g_ord.lost_err, 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_buffered_proto.test_buffered_proto_create_connection: a buffered
 * protocol (get_buffer of 100 bytes, buffer_updated) gets all 9 KiB the
 * server's handler writes, answers one byte, and sees connection_lost(None)
 * when the server closes; data_received is never called. */
#define NOISE_LEN (9 * 1024)
static char g_noise[NOISE_LEN];
struct bufproto {
	char buf[100];
	char got[NOISE_LEN];
	size_t n;
	int gets, updates, data_calls, lost, lost_err;
};
static struct bufproto g_bp;

static int bp_get_buffer(struct tide_transport *t, size_t sizehint, void **buf, size_t *len, void *proto)
{
	(void)t;
	(void)sizehint;
	(void)proto;
	g_bp.gets++;
	*buf = g_bp.buf;
	*len = sizeof(g_bp.buf);
	return 0;
}

static void bp_updated(struct tide_transport *t, size_t n, void *proto)
{
	(void)proto;
	g_bp.updates++;
	ck_assert_uint_le(n, sizeof(g_bp.buf));
	ck_assert_uint_le(g_bp.n + n, NOISE_LEN);
	memcpy(g_bp.got + g_bp.n, g_bp.buf, n);
	g_bp.n += n;
	if (g_bp.n == NOISE_LEN)
		ck_assert_int_eq(tide_transport_write(t, "1", 1), 0);
}

static void bp_data(struct tide_transport *t, const void *data, size_t n, void *proto)
{
	(void)t;
	(void)data;
	(void)n;
	(void)proto;
	g_bp.data_calls++;
}

static void bp_lost(struct tide_transport *t, int err, void *proto)
{
	(void)t;
	(void)proto;
	g_bp.lost++;
	g_bp.lost_err = err;
}

static const struct tide_protocol_ops bp_ops = {
	.size = sizeof(bp_ops), .data_received = bp_data, .connection_lost = bp_lost,
	.get_buffer = bp_get_buffer, .buffer_updated = bp_updated,
};

static int64_t noise_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	char one;

	(void)arg;
	ck_assert_int_eq(tide_stream_write(w, g_noise, NOISE_LEN), 0);
	ck_assert_int_eq(tide_stream_readexactly(r, &one, 1, NULL), 1);
	ck_assert_int_eq(one, '1');
	tide_stream_close(w);
	ck_assert_int_eq(tide_stream_wait_closed(w), 0);
	return 0;
}

static int64_t buffered_main(void *arg)
{
	struct tide_server *s;
	struct tide_future *f;
	int port = 0;

	(void)arg;
	for (size_t i = 0; i < NOISE_LEN; i += 9)
		memcpy(g_noise + i, "12345678+", 9);
	memset(&g_bp, 0, sizeof(g_bp));
	s = serve(noise_handler, NULL, &port);
	ck_assert_int_eq(tide_create_connection(g_loop, "127.0.0.1", port, &bp_ops, NULL, &f), 0);
	ck_assert_int_eq(tide_await(f), 0);
	tide_future_unref(f);
	while (!g_bp.lost)
		ck_assert_int_eq(tide_sleep(0.001), 0);
	ck_assert_int_eq(g_bp.lost, 1);
	ck_assert_int_eq(g_bp.lost_err, 0);
	ck_assert_uint_eq(g_bp.n, NOISE_LEN);
	ck_assert_int_eq(memcmp(g_bp.got, g_noise, NOISE_LEN), 0);
	ck_assert_int_ge(g_bp.updates, NOISE_LEN / 100);
	ck_assert_int_ge(g_bp.gets, g_bp.updates);
	ck_assert_int_eq(g_bp.data_calls, 0);
	server_done(s, NULL);
	return 0;
}

START_TEST(test_buffered_proto__test_buffered_proto_create_connection)
{
	tt_run_main(&g_loop, buffered_main, NULL);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "conformance-streams", 30);
	tt_add(&ts, test_streams__test_feed_empty_data);
	tt_add(&ts, test_streams__test_feed_nonempty_data);
	tt_add(&ts, test_streams__test_read_zero);
	tt_add(&ts, test_streams__test_read);
	tt_add(&ts, test_streams__test_read_line_breaks);
	tt_add(&ts, test_streams__test_read_eof);
	tt_add(&ts, test_streams__test_invalid_limit);
	tt_add(&ts, test_streams__test_read_limit);
	tt_add(&ts, test_streams__test_readline);
	tt_add(&ts, test_streams__test_readline_limit_with_existing_data);
	tt_add(&ts, test_streams__test_at_eof);
	tt_add(&ts, test_streams__test_readline_limit);
	tt_add(&ts, test_streams__test_readline_nolimit_nowait);
	tt_add(&ts, test_streams__test_readline_eof);
	tt_add(&ts, test_streams__test_readline_empty_eof);
	tt_add(&ts, test_streams__test_readline_read_byte_count);
	tt_add(&ts, test_streams__test_readline_exception);
	tt_add(&ts, test_streams__test_readuntil_separator);
	tt_add(&ts, test_streams__test_readuntil_multi_chunks);
	tt_add(&ts, test_streams__test_readuntil_multi_chunks_1);
	tt_add(&ts, test_streams__test_readuntil_eof);
	tt_add(&ts, test_streams__test_readuntil_limit_found_sep);
	tt_add(&ts, test_streams__test_readexactly_zero_or_less);
	tt_add(&ts, test_streams__test_readexactly);
	tt_add(&ts, test_streams__test_readexactly_limit);
	tt_add(&ts, test_streams__test_readexactly_eof);
	tt_add(&ts, test_streams__test_readexactly_exception);
	tt_add(&ts, test_streams__test_exception_cancel);
	tt_add(&ts, test_streams__test_read_all_from_pipe_reader);
	tt_add(&ts, test_streams__test_open_connection);
	tt_add(&ts, test_streams__test_open_unix_connection);
	tt_add(&ts, test_streams__test_open_connection_error);
	tt_add(&ts, test_streams__test_start_server);
	tt_add(&ts, test_streams__test_start_unix_server);
	tt_add(&ts, test_streams__test_drain_raises);
	tt_add(&ts, test_streams__test_multiple_drain);
	tt_add(&ts, test_streams__test_wait_closed_on_close);
	tt_add(&ts, test_streams__test_wait_closed_on_close_with_unread_data);
	tt_add(&ts, test_streams__test_async_writer_api);
	tt_add(&ts, test_streams__test_async_writer_api_exception_after_close);
	tt_add(&ts, test_streams__test_eof_feed_when_closing_writer);
	tt_add(&ts, test_protocols__test_base_protocol);
	tt_add(&ts, test_protocols__test_protocol);
	tt_add(&ts, test_buffered_proto__test_buffered_proto_create_connection);
	return tt_run(&ts);
}
