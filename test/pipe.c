/* SPDX-License-Identifier: MIT */
/*
 * test/pipe.c: pipe transports (tide_connect_read_pipe,
 * tide_connect_write_pipe) and the streams over one pipe end that the
 * subprocess code uses, on every backend configuration, checked as
 * CPython's test_unix_events.py checks asyncio's pipe transports: data and
 * EOF, pausing, write flow control, write_eof closing the pipe, a reader
 * going away from an idle writer, FIFOs and character devices, the files
 * and fds refused, 64 MiB byte-exact, and the multishot read masked.
 *
 * The hard part is the bookkeeping of callbacks, which the logging
 * protocol of net-fixture.h does (M made, D data runs, E eof, L lost).
 */
#include "config.h"
#include "net-fixture.h"
#include "net/net.h" /* src/net: the subprocess code's pipe streams */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A pipe transport of conn_ops on fd for c, once its future is done. */
static struct tide_transport *pipe_open(struct tide_loop *loop, int fd, int dir, struct conn *c)
{
	struct tide_future *f;
	struct tide_transport *t;
	int r = dir == TIDE__PIPE_READ ? tide_connect_read_pipe(loop, fd, &conn_ops, c, &f)
				       : tide_connect_write_pipe(loop, fd, &conn_ops, c, &f);

	ck_assert_msg(r == 0, "[%s] connect pipe: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	/* As asyncio's: connection_made comes soon, not inside the call. */
	ck_assert_int_eq(c->made, 0);
	RUN_UNTIL(loop, tide_future_done(f));
	t = fut_ptr(f);
	ck_assert_ptr_eq(t, c->t);
	ck_assert_int_eq(c->made, 1);
	tide_future_unref(f);
	check_nb_cloexec(fd);
	return t;
}

/* Reads up to n bytes from the non-blocking raw pipe end fd: the count, 0 at EOF, -1 if none yet. */
static ssize_t raw_read(int fd, void *buf, size_t n)
{
	ssize_t r = read(fd, buf, n);

	ck_assert_msg(r >= 0 || errno == EAGAIN, "read: %s", strerror(errno));
	return r;
}

/* Reads exactly n bytes from the non-blocking raw pipe end fd, running the loop meanwhile. */
static void loop_read_exact(struct tide_loop *loop, int fd, void *buf, size_t n)
{
	uint64_t end = tt_mono_ns() + (uint64_t)(30 * slow_factor() * 1e9);
	size_t got = 0;

	while (got < n) {
		ssize_t r = raw_read(fd, (char *)buf + got, n - got);

		ck_assert_msg(r != 0, "[%s] EOF after %zu of %zu bytes", tt_cfg->name, got, n);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		ck_assert_msg(tt_mono_ns() < end, "[%s] %zu of %zu bytes came", tt_cfg->name, got, n);
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	}
}

/* The raw end fd reads EOF, running the loop meanwhile. */
static void loop_read_eof(struct tide_loop *loop, int fd)
{
	char b;

	for (;;) {
		ssize_t r = raw_read(fd, &b, 1);

		ck_assert_msg(r <= 0, "[%s] a byte where EOF was expected", tt_cfg->name);
		if (r == 0)
			return;
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	}
}

static uint64_t multishot_reads(struct tide_loop *loop)
{
	struct tide_loop_stats st;

	tt_stats(loop, &st);
	return tt_submitted(&st, TIDE_OP_READ_MULTISHOT);
}

/* ---------------------------------------------------------- read pipes -- */

START_TEST(test_read_pipe_data_eof)
{
	struct tide_loop *loop = tt_loop_new();
	struct conn *c = conn_new();
	struct tide_transport *t;
	int p[2], fd = -1;
	socklen_t len = sizeof(fd);

	tt_pipe(p, 0);
	t = pipe_open(loop, p[0], TIDE__PIPE_READ, c);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "pipe", &fd, &len), 0);
	ck_assert_int_eq(fd, p[0]);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &len), -ENOENT);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "peername", &fd, &len), -ENOENT);
	/* A read pipe has no writing side. */
	ck_assert_int_eq(tide_transport_write(t, "x", 1), -EOPNOTSUPP);
	ck_assert_int_eq(tide_transport_write_eof(t), -EOPNOTSUPP);
	ck_assert_int_eq(tide_transport_can_write_eof(t), 0);
	ck_assert_int_eq(tide_transport_is_reading(t), 1);
	tt_write_all(p[1], "hello ", 6);
	RUN_UNTIL(loop, c->rxlen == 6);
	tt_write_all(p[1], "pipe", 4);
	RUN_UNTIL(loop, c->rxlen == 10);
	ck_assert_mem_eq(c->rx, "hello pipe", 10);
	/* The multishot read where the kernel has it (and it is not masked). */
	if (tide_loop_op_native(loop, TIDE_OP_READ_MULTISHOT))
		ck_assert_uint_ge(multishot_reads(loop), 1);
	else
		ck_assert_uint_eq(multishot_reads(loop), 0);
	close(p[1]);
	/* eof_received's keep (conn_ops returns 0 here; 1 changes nothing
	 * either: a read pipe ends at EOF, as asyncio's). */
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "MDEL", 0);
	check_fd_closed(p[0], "a read pipe's fd after connection_lost");
	finish_all(loop, NULL);
}
END_TEST

/* eof_received asking to stay open: a read pipe closes all the same. */
START_TEST(test_read_pipe_eof_keep)
{
	struct tide_loop *loop = tt_loop_new();
	struct conn *c = conn_new();
	int p[2];

	tt_pipe(p, 0);
	c->eof_ret = 1;
	pipe_open(loop, p[0], TIDE__PIPE_READ, c);
	close(p[1]);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "MEL", 0);
	finish_all(loop, NULL);
}
END_TEST

/* Paused from connection_made: nothing arrives, not even the EOF, until resumed. */
START_TEST(test_read_pipe_pause_resume)
{
	struct tide_loop *loop = tt_loop_new();
	struct conn *c = conn_new();
	struct tide_transport *t;
	int p[2];

	tt_pipe(p, 0);
	c->pause_on_made = 1;
	t = pipe_open(loop, p[0], TIDE__PIPE_READ, c);
	ck_assert_int_eq(tide_transport_is_reading(t), 0);
	tt_write_all(p[1], "abc", 3);
	close(p[1]);
	run_for(loop, 0.05);
	ck_assert_str_eq(c->log, "M");
	c->rpaused = 0;
	ck_assert_int_eq(tide_transport_resume_reading(t), 0);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "MDEL", 0);
	ck_assert_mem_eq(c->rx, "abc", 3);
	finish_all(loop, NULL);
}
END_TEST

/* --------------------------------------------------------- write pipes -- */

START_TEST(test_write_pipe_write_eof_closes)
{
	struct tide_loop *loop = tt_loop_new();
	struct conn *c = conn_new();
	struct tide_transport *t;
	char buf[16];
	int p[2], fd = -1;
	socklen_t len = sizeof(fd);

	tt_pipe(p, O_NONBLOCK);
	t = pipe_open(loop, p[1], TIDE__PIPE_WRITE, c);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "pipe", &fd, &len), 0);
	ck_assert_int_eq(fd, p[1]);
	/* A write pipe's reading side is its own watch, not the user's. */
	ck_assert_int_eq(tide_transport_is_reading(t), 0);
	ck_assert_int_eq(tide_transport_pause_reading(t), -EOPNOTSUPP);
	ck_assert_int_eq(tide_transport_resume_reading(t), -EOPNOTSUPP);
	ck_assert_int_eq(tide_transport_can_write_eof(t), 1);
	ck_assert_int_eq(tide_transport_write(t, "to the ", 7), 0);
	ck_assert_int_eq(tide_transport_write(t, "reader", 6), 0);
	/* asyncio's write_eof on a pipe: closing, the fd goes once flushed. */
	ck_assert_int_eq(tide_transport_write_eof(t), 0);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	ck_assert_int_eq(tide_transport_write(t, "late", 4), TIDE_ECLOSED);
	loop_read_exact(loop, p[0], buf, 13);
	ck_assert_mem_eq(buf, "to the reader", 13);
	loop_read_eof(loop, p[0]);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "ML", 0);
	check_fd_closed(p[1], "a write pipe's fd after write_eof");
	close(p[0]);
	finish_all(loop, NULL);
}
END_TEST

/* The reader closes while nothing is being written: noticed all the same. */
START_TEST(test_write_pipe_reader_gone_idle)
{
	struct tide_loop *loop = tt_loop_new();
	struct conn *c = conn_new();
	int p[2];

	tt_pipe(p, O_NONBLOCK);
	pipe_open(loop, p[1], TIDE__PIPE_WRITE, c);
	run_for(loop, 0.02);
	ck_assert_str_eq(c->log, "M");
	close(p[0]);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "ML", -EPIPE);
	check_fd_closed(p[1], "a write pipe's fd after its reader went");
	finish_all(loop, NULL);
}
END_TEST

/* The reader closes with bytes buffered: the write fails with EPIPE. */
START_TEST(test_write_pipe_reader_gone_writing)
{
	struct tide_loop *loop = tt_loop_new();
	struct conn *c = conn_new();
	struct tide_transport *t;
	size_t n = 1 << 20;
	unsigned char *big = calloc(1, n);

	int p[2];

	ck_assert_ptr_nonnull(big);
	tt_pipe(p, O_NONBLOCK);
	t = pipe_open(loop, p[1], TIDE__PIPE_WRITE, c);
	ck_assert_int_eq(tide_transport_write(t, big, n), 0);
	run_for(loop, 0.02);
	ck_assert_uint_gt(tide_transport_get_write_buffer_size(t), 0);
	close(p[0]);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "ML", -EPIPE);
	free(big);
	finish_all(loop, NULL);
}
END_TEST

/* pause_writing above the high mark, resume_writing once the reader drained it. */
START_TEST(test_write_pipe_flow_control)
{
	struct tide_loop *loop = tt_loop_new();
	struct conn *c = conn_new();
	struct tide_transport *t;
	size_t n = 1 << 20;
	unsigned char *out = pat_buf(7, n), *in = malloc(n);
	int p[2];

	ck_assert_ptr_nonnull(in);
	tt_pipe(p, O_NONBLOCK);
	t = pipe_open(loop, p[1], TIDE__PIPE_WRITE, c);
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(t, 256 << 10, 64 << 10), 0);
	tide_transport_get_write_buffer_limits(t, &c->high, &c->low);
	for (size_t off = 0; off < n; off += 64 << 10)
		ck_assert_int_eq(tide_transport_write(t, out + off, 64 << 10), 0);
	/* More than the pipe holds: the rest waits, above the high mark. */
	ck_assert_int_eq(c->npause, 1);
	ck_assert_int_eq(c->wpaused, 1);
	run_for(loop, 0.02);
	ck_assert_int_eq(c->nresume, 0);
	ck_assert_uint_gt(tide_transport_get_write_buffer_size(t), 256 << 10);
	loop_read_exact(loop, p[0], in, n);
	ck_assert_int_eq(memcmp(in, out, n), 0);
	RUN_UNTIL(loop, c->nresume == 1);
	ck_assert_int_eq(c->wpaused, 0);
	ck_assert_uint_eq(tide_transport_get_write_buffer_size(t), 0);
	tide_transport_close(t);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "ML", 0);
	loop_read_eof(loop, p[0]);
	close(p[0]);
	free(in);
	free(out);
	finish_all(loop, NULL);
}
END_TEST

/* ----------------------------------------------- 64 MiB, both transports -- */

#define BIG_LEN (64u << 20)
#define BIG_CHUNK (16u << 10)

/* The sender: writes up to the high mark, then waits for resume_writing;
 * write_eof once all of it is written. */
static void big_fill(struct conn *c)
{
	while (!c->wpaused && c->txoff < c->txlen && tide_transport_get_write_buffer_size(c->t) <= c->high) {
		size_t n = c->txlen - c->txoff < BIG_CHUNK ? c->txlen - c->txoff : BIG_CHUNK;

		ck_assert_int_eq(tide_transport_write(c->t, c->tx + c->txoff, n), 0);
		c->txoff += n;
	}
	if (c->txoff == c->txlen && !c->close_sent) {
		c->close_sent = 1;
		ck_assert_int_eq(tide_transport_write_eof(c->t), 0);
	}
}

/* 64 MiB from a write pipe transport to a read pipe transport, each way
 * of two pipes at once, the readers paused half the time. */
START_TEST(test_64mib_both_ways)
{
	struct tide_loop *loop = tt_loop_new();
	unsigned char *data[2] = { pat_buf(11, BIG_LEN), pat_buf(12, BIG_LEN) }; /* the writers' tx */
	struct conn *w[2], *r[2];
	int p[2][2];

	for (int i = 0; i < 2; i++) {
		tt_pipe(p[i], 0);
		w[i] = conn_new();
		r[i] = conn_new();
		w[i]->tx = data[i];
		w[i]->txlen = BIG_LEN;
		w[i]->resume_hook = big_fill;
		r[i]->verify = data[i];
		r[i]->vlen = BIG_LEN;
		r[i]->pause_every = 4;
		pipe_open(loop, p[i][0], TIDE__PIPE_READ, r[i]);
		pipe_open(loop, p[i][1], TIDE__PIPE_WRITE, w[i]);
		big_fill(w[i]);
		ck_assert_int_eq(tide_call_later(loop, 0.001, toggle_cb, r[i], &r[i]->toggle_h), 0);
	}
	RUN_UNTIL_FOR(loop, r[0]->lost && r[1]->lost && w[0]->lost && w[1]->lost, 240.0);
	for (int i = 0; i < 2; i++) {
		tide_handle_cancel(&r[i]->toggle_h);
		ck_assert_uint_eq(w[i]->txoff, BIG_LEN);
		ck_assert_uint_eq(r[i]->rxlen, BIG_LEN);
		ck_assert_int_eq(r[i]->data_while_paused, 0);
		ck_assert_int_ge(r[i]->ntoggle, 1);
		ck_assert_int_ge(w[i]->npause, 1);
		check_conn(r[i], "MDEL", 0);
		check_conn(w[i], "ML", 0);
		/* conns_free frees tx: the writer's. */
	}
	finish_all(loop, NULL);
}
END_TEST

/* ------------------------------------------------ FIFOs and devices -- */

START_TEST(test_fifo)
{
	struct tide_loop *loop = tt_loop_new();
	struct conn *rc = conn_new(), *wc = conn_new();
	char dir[] = "/tmp/tide-pipe-XXXXXX", path[64];
	struct tide_transport *t;
	int rfd, wfd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	/* The reader first (a non-blocking open needs no writer), then the writer. */
	rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(rfd, 0);
	wfd = open(path, O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(wfd, 0);
	unlink(path);
	rmdir(dir);
	pipe_open(loop, rfd, TIDE__PIPE_READ, rc);
	t = pipe_open(loop, wfd, TIDE__PIPE_WRITE, wc);
	ck_assert_int_eq(tide_transport_write(t, "through a FIFO", 14), 0);
	ck_assert_int_eq(tide_transport_write_eof(t), 0);
	RUN_UNTIL(loop, rc->lost && wc->lost);
	check_conn(rc, "MDEL", 0);
	check_conn(wc, "ML", 0);
	ck_assert_uint_eq(rc->rxlen, 14);
	ck_assert_mem_eq(rc->rx, "through a FIFO", 14);
	finish_all(loop, NULL);
}
END_TEST

/* /dev/null takes whatever is written; a device has no reader to lose. */
START_TEST(test_dev_null_write)
{
	struct tide_loop *loop = tt_loop_new();
	struct conn *c = conn_new();
	struct tide_transport *t;
	size_t n = 4 << 20;
	unsigned char *big = calloc(1, n);
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	ck_assert_ptr_nonnull(big);
	ck_assert_int_ge(fd, 0);
	t = pipe_open(loop, fd, TIDE__PIPE_WRITE, c);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(tide_transport_write(t, big, n), 0);
	RUN_UNTIL(loop, tide_transport_get_write_buffer_size(t) == 0);
	run_for(loop, 0.02);
	ck_assert_str_eq(c->log, "M");
	ck_assert_int_eq(tide_transport_write_eof(t), 0);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "ML", 0);
	free(big);
	finish_all(loop, NULL);
}
END_TEST

/* /dev/zero read for a bounded amount, then closed. */
START_TEST(test_dev_zero_read)
{
	struct tide_loop *loop = tt_loop_new();
	struct conn *c = conn_new();
	size_t n = 1 << 20;
	unsigned char *zeros = calloc(1, n + (256 << 10));
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);

	ck_assert_ptr_nonnull(zeros);
	ck_assert_int_ge(fd, 0);
	c->verify = zeros;
	c->vlen = n + (256 << 10);
	c->close_after = n;
	pipe_open(loop, fd, TIDE__PIPE_READ, c);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "MDL", 0);
	ck_assert_uint_ge(c->rxlen, n);
	free(zeros);
	finish_all(loop, NULL);
}
END_TEST

/* Counts what arrives, without keeping it. */
static void count_data(struct tide_transport *t, const void *data, size_t n, void *p)
{
	struct conn *c = p;

	note(c, 'D');
	c->rxlen += n;
}

static void close_cb(void *arg)
{
	struct conn *c = arg;

	tide_transport_close(c->t);
}

/*
 * A device that never runs dry (/dev/zero) read for as long as it lasts:
 * the loop still runs its timers. Regression: epoll cannot watch
 * /dev/zero and calls it always ready at once, and each read's next one
 * recursed inside the last until the stack ran out.
 */
START_TEST(test_dev_zero_never_starves)
{
	static const struct tide_protocol_ops ops = { LOG_STREAM_OPS, .data_received = count_data };
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f;
	struct conn *c = conn_new();
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tide_connect_read_pipe(loop, fd, &ops, c, &f), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.2, close_cb, c, NULL), 0);
	RUN_UNTIL(loop, c->lost);
	ck_assert_int_eq(done_error(loop, f), 0);
	check_conn(c, "MDL", 0);
	ck_assert_uint_gt(c->rxlen, 0);
	finish_all(loop, NULL);
}
END_TEST

/* ------------------------------------------------------ refused fds -- */

/* fd is refused with err; closed unless it was not open. */
static void refused(struct tide_loop *loop, int fd, int dir, int err, const char *what)
{
	struct tide_future *f = (struct tide_future *)1;
	struct conn *c = conn_new();
	int r = dir == TIDE__PIPE_READ ? tide_connect_read_pipe(loop, fd, &conn_ops, c, &f)
				       : tide_connect_write_pipe(loop, fd, &conn_ops, c, &f);

	ck_assert_msg(r == err, "[%s] %s: %d (%s), expected %d (%s)", tt_cfg->name, what, r, tide_strerror(r), err,
		      tide_strerror(err));
	ck_assert_ptr_null(f);
	if (fd >= 0)
		check_fd_closed(fd, what);
	spin(loop, 3);
	ck_assert_int_eq(c->made, 0);
}

START_TEST(test_refused_fds)
{
	struct tide_loop *loop = tt_loop_new();
	char tmpl[] = "/tmp/tide-pipe-XXXXXX";
	struct tide_future *f;
	int fd = mkstemp(tmpl), p[2];

	ck_assert_int_ge(fd, 0);
	unlink(tmpl);
	refused(loop, fd, TIDE__PIPE_READ, -EINVAL, "a regular file");
	fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	refused(loop, fd, TIDE__PIPE_READ, -EINVAL, "a directory");
	tt_pipe(p, 0);
	close(p[1]);
	/* p[1] is closed now: not open, and not closed again. */
	refused(loop, p[1], TIDE__PIPE_WRITE, -EBADF, "a closed fd");
	refused(loop, -1, TIDE__PIPE_READ, -EBADF, "fd -1");
	/* The ends the other way round. */
	refused(loop, p[0], TIDE__PIPE_WRITE, -EINVAL, "a pipe's read end for writing");
	tt_pipe(p, 0);
	refused(loop, p[1], TIDE__PIPE_READ, -EINVAL, "a pipe's write end for reading");
	fd = open("/dev/null", O_PATH | O_CLOEXEC);
	refused(loop, fd, TIDE__PIPE_READ, -EBADF, "an O_PATH fd");
	/* No future to fill: -EINVAL, and the fd is closed all the same. */
	ck_assert_int_eq(tide_connect_read_pipe(loop, p[0], &conn_ops, NULL, NULL), -EINVAL);
	check_fd_closed(p[0], "a read pipe without a future");
	ck_assert_int_eq(tide_connect_write_pipe(NULL, -1, &conn_ops, NULL, &f), -EBADF);
	tt_pipe(p, 0);
	ck_assert_int_eq(tide_connect_write_pipe(NULL, p[1], &conn_ops, NULL, &f), -EINVAL);
	check_fd_closed(p[1], "a write pipe without a loop");
	close(p[0]);
	finish_all(loop, NULL);
}
END_TEST

/* A future cancelled before connection_made: the fd is closed, no callback. */
START_TEST(test_cancelled_before_made)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f;
	struct conn *c = conn_new();
	int p[2];

	tt_pipe(p, 0);
	ck_assert_int_eq(tide_connect_read_pipe(loop, p[0], &conn_ops, c, &f), 0);
	tide_future_cancel(f);
	ck_assert_int_eq(done_error(loop, f), -ECANCELED);
	spin(loop, 3);
	ck_assert_int_eq(c->made, 0);
	check_fd_closed(p[0], "a cancelled pipe's fd");
	close(p[1]);
	finish_all(loop, NULL);
}
END_TEST

/* ------------------------------------------- the multishot read masked -- */

/* TIDE_DISABLE_OPS=read-multishot: reads after readiness, the same bytes. */
START_TEST(test_read_multishot_masked)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;
	struct conn *c = conn_new();
	unsigned char *data = pat_buf(3, 1 << 20);
	int p[2];

	tt_opts_init(&opts);
	if (!opts.disable_ops)
		opts.disable_ops = "read-multishot";
	loop = tt_loop_new_opts(&opts);
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_READ_MULTISHOT), 0);
	tt_pipe(p, 0);
	c->verify = data;
	c->vlen = 1 << 20;
	pipe_open(loop, p[0], TIDE__PIPE_READ, c);
	for (size_t off = 0; off < (1u << 20); off += 4096) {
		tt_write_all(p[1], data + off, 4096);
		RUN_UNTIL(loop, c->rxlen == off + 4096);
	}
	close(p[1]);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "MDEL", 0);
	ck_assert_uint_eq(multishot_reads(loop), 0);
	free(data);
	finish_all(loop, NULL);
}
END_TEST

/* ------------------------------------------------- streams over pipes -- */

struct feeder {
	struct tide_stream_writer *w;
	const unsigned char *data;
	size_t n;
};

/* Writes the data in 8 KiB pieces, draining after each, then write_eof. */
static int64_t feeder_main(void *arg)
{
	struct feeder *fd = arg;

	for (size_t off = 0; off < fd->n; off += 8192) {
		size_t k = fd->n - off < 8192 ? fd->n - off : 8192;

		ck_assert_int_eq(tide_stream_write(fd->w, fd->data + off, k), 0);
		ck_assert_int_eq(tide_stream_drain(fd->w), 0);
	}
	ck_assert_int_eq(tide_stream_write_eof(fd->w), 0);
	ck_assert_int_eq(tide_stream_wait_closed(fd->w), 0);
	return 0;
}

static int64_t streams_main(void *arg)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct feeder fe;
	size_t big = 4 << 20;
	unsigned char *data = pat_buf(5, big), *in = malloc(big);
	char line[64];
	int p[2], fd = -1;
	socklen_t len = sizeof(fd);

	(void)arg;
	ck_assert_ptr_nonnull(in);
	tt_pipe(p, 0);
	ck_assert_int_eq(tide__stream_pipe_reader(g_loop, p[0], 0, &r), 0);
	ck_assert_int_eq(tide__stream_pipe_writer(g_loop, p[1], &w), 0);
	ck_assert_int_eq(tide_stream_get_extra_info(w, "pipe", &fd, &len), 0);
	ck_assert_int_eq(fd, p[1]);
	ck_assert_int_eq(tide_stream_can_write_eof(w), 1);
	/* Lines, then bytes. */
	ck_assert_int_eq(tide_stream_write(w, "first line\nsecond", 17), 0);
	ck_assert_int_eq(tide_stream_write(w, " line\nrest", 10), 0);
	ck_read_eq(tide_stream_readline(r, line, sizeof(line)), line, "first line\n");
	ck_read_eq(tide_stream_readline(r, line, sizeof(line)), line, "second line\n");
	ck_read_eq(tide_stream_readexactly(r, line, 4, NULL), line, "rest");
	/* 4 MiB through the pipe while a task feeds it with drain's flow control. */
	fe = (struct feeder){ .w = w, .data = data, .n = big };
	{
		struct tide_future *t = spawn(feeder_main, &fe);

		ck_assert_int_eq(tide_stream_readexactly(r, in, big, NULL), (ssize_t)big);
		ck_assert_int_eq(memcmp(in, data, big), 0);
		/* write_eof closed the pipe: the reader is at its end. */
		ck_assert_int_eq(tide_stream_readline(r, line, sizeof(line)), 0);
		ck_assert_int_eq(tide_stream_at_eof(r), 1);
		ck_assert_int_eq(join(t), 0);
	}
	ck_assert_int_eq(tide_stream_is_closing(w), 1);
	/* Each half alone. */
	tide_stream_free(r, NULL);
	tide_stream_free(NULL, w);
	/* A refused fd: closed, nothing made. */
	{
		char tmpl[] = "/tmp/tide-pipe-XXXXXX";
		int f = mkstemp(tmpl);

		ck_assert_int_ge(f, 0);
		unlink(tmpl);
		r = (struct tide_stream_reader *)1;
		ck_assert_int_eq(tide__stream_pipe_reader(g_loop, f, 0, &r), -EINVAL);
		ck_assert_ptr_null(r);
		check_fd_closed(f, "a stream reader's regular file");
	}
	free(data);
	free(in);
	return 0;
}

MAIN_TEST(test_streams_over_pipes, streams_main)

/* The reader's side goes first: the writer's drain hears -EPIPE. */
static int64_t stream_reader_gone_main(void *arg)
{
	struct tide_stream_writer *w;
	int p[2];

	(void)arg;
	tt_pipe(p, 0);
	ck_assert_int_eq(tide__stream_pipe_writer(g_loop, p[1], &w), 0);
	close(p[0]);
	ck_assert_int_eq(tide_stream_wait_closed(w), -EPIPE);
	ck_assert_int_eq(tide_stream_write(w, "x", 1), -EPIPE);
	tide_stream_free(NULL, w);
	return 0;
}

MAIN_TEST(test_stream_writer_reader_gone, stream_reader_gone_main)

int main(void)
{
	const TTest *tests[] = {
		test_read_pipe_data_eof, test_read_pipe_eof_keep, test_read_pipe_pause_resume,
		test_write_pipe_write_eof_closes, test_write_pipe_reader_gone_idle,
		test_write_pipe_reader_gone_writing, test_write_pipe_flow_control, test_64mib_both_ways,
		test_fifo, test_dev_null_write, test_dev_zero_read, test_dev_zero_never_starves,
		test_refused_fds, test_cancelled_before_made, test_read_multishot_masked,
		test_streams_over_pipes, test_stream_writer_reader_gone,
	};

	return net_main("pipe", 300, tests, NET_COUNT(tests), NULL, 0);
}
