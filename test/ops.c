/* SPDX-License-Identifier: MIT */
/*
 * test/ops.c: the op families on every backend configuration: read and
 * write on pipes, eventfd and regular files, poll, timeout, cancel, errors,
 * and a completion storm on a tiny ring. tide_loop_stats proves which path
 * each op took (io_uring SQE, readiness fallback, executor).
 */
#include "config.h"
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <termios.h>
#include <sys/socket.h>
#include <unistd.h>

static struct tide_loop *g_loop;

/* The path a pipe/eventfd/socket op must take on the current configuration. */
static enum tide_op_path fd_path(void)
{
	return tt_is_uring() ? TIDE_PATH_URING : TIDE_PATH_READINESS;
}

static void check_path(const struct tide_loop_stats *a, const struct tide_loop_stats *b,
		       enum tide_op_kind kind, enum tide_op_path path, uint64_t n)
{
	ck_assert_msg(b->ops_completed[kind][path] - a->ops_completed[kind][path] == n,
		      "[%s] op kind %d: %llu completed on path %d, expected %llu "
		      "(per path: %llu %llu %llu %llu)", tt_cfg->name, kind,
		      (unsigned long long)(b->ops_completed[kind][path] - a->ops_completed[kind][path]),
		      path, (unsigned long long)n,
		      (unsigned long long)(b->ops_completed[kind][0] - a->ops_completed[kind][0]),
		      (unsigned long long)(b->ops_completed[kind][1] - a->ops_completed[kind][1]),
		      (unsigned long long)(b->ops_completed[kind][2] - a->ops_completed[kind][2]),
		      (unsigned long long)(b->ops_completed[kind][3] - a->ops_completed[kind][3]));
	ck_assert_uint_eq(tt_completed(b, kind) - tt_completed(a, kind), n);
	ck_assert_uint_eq(b->ops_submitted[kind][path] - a->ops_submitted[kind][path], n);
}

static void write_cb(void *arg)
{
	int fd = (int)(intptr_t)arg;

	tt_write_all(fd, "later", 5);
}

/* ---------------------------------------------------------------- pipes -- */

START_TEST(test_pipe_read_ready)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	struct tide_future *fut;
	char buf[64];
	int p[2];

	tt_pipe(p, 0);
	tt_write_all(p[1], "hello", 5);
	tt_stats(loop, &s0);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(tide_op_read(loop, p[0], buf, sizeof(buf), -1, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	tt_stats(loop, &s1);
	check_path(&s0, &s1, TIDE_OP_READ, fd_path(), 1);
	tide_future_unref(fut);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static void pipe_read_later(int flags)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	struct tide_future *fut;
	char buf[64];
	int p[2];

	tt_pipe(p, flags);
	tt_stats(loop, &s0);
	ck_assert_int_eq(tide_op_read(loop, p[0], buf, sizeof(buf), -1, &fut), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(tide_future_done(fut), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.02, write_cb, (void *)(intptr_t)p[1], NULL), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 5);
	ck_assert_mem_eq(buf, "later", 5);
	tt_stats(loop, &s1);
	check_path(&s0, &s1, TIDE_OP_READ, fd_path(), 1);
	tide_future_unref(fut);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

/* A blocking pipe: the fallback must never block the loop in read(). */
START_TEST(test_pipe_read_later_blocking_fd)
{
	pipe_read_later(0);
}
END_TEST

START_TEST(test_pipe_read_later_nonblocking_fd)
{
	pipe_read_later(O_NONBLOCK);
}
END_TEST

START_TEST(test_pipe_write)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	struct tide_future *fut;
	char buf[16] = "";
	int p[2];

	tt_pipe(p, 0);
	tt_stats(loop, &s0);
	ck_assert_int_eq(tide_op_write(loop, p[1], "abc", 3, -1, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 3);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 3);
	ck_assert_mem_eq(buf, "abc", 3);
	tt_stats(loop, &s1);
	check_path(&s0, &s1, TIDE_OP_WRITE, fd_path(), 1);
	tide_future_unref(fut);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* Reads what the pipe holds: counts the 'z' bytes, keeps the last byte. */
static void drain_pipe(int fd, int *zs, char *last)
{
	static char drain[1 << 16];
	ssize_t n;

	while ((n = read(fd, drain, sizeof(drain))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			*zs += drain[i] == 'z';
		*last = drain[n - 1];
	}
}

START_TEST(test_pipe_write_when_full)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	static char big[1 << 16];
	char last = 0;
	int p[2], zs = 0;

	/* Fill a non-blocking pipe, then write: the op waits for room. */
	tt_pipe(p, O_NONBLOCK);
	memset(big, 'x', sizeof(big));
	while (write(p[1], big, sizeof(big)) > 0)
		;
	ck_assert_int_eq(tide_op_write(loop, p[1], "z", 1, -1, &fut), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(tide_future_done(fut), 0);
	/* io_uring may perform the write as soon as there is room, at any
	 * system call of this thread (its task work): the 'z' comes last,
	 * read by this drain or by the one after the completion. */
	drain_pipe(p[0], &zs, &last);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 1);
	drain_pipe(p[0], &zs, &last);
	ck_assert_int_eq(zs, 1);
	ck_assert_int_eq(last, 'z');
	tide_future_unref(fut);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_read_eof)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	char buf[8];
	int p[2];

	tt_pipe(p, 0);
	close(p[1]);
	ck_assert_int_eq(tide_op_read(loop, p[0], buf, sizeof(buf), -1, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 0);
	tide_future_unref(fut);
	close(p[0]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_two_reads_same_fd)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *r1, *r2, *pf;
	char b1 = 0, b2 = 0, rest[8];
	int p[2];

	tt_pipe(p, 0);
	/* Three waiters on one fd: the epoll fallback must share one registration. */
	ck_assert_int_eq(tide_op_read(loop, p[0], &b1, 1, -1, &r1), 0);
	ck_assert_int_eq(tide_op_read(loop, p[0], &b2, 1, -1, &r2), 0);
	ck_assert_int_eq(tide_op_poll(loop, p[0], POLLIN, &pf), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(tide_future_done(r1) + tide_future_done(r2) + tide_future_done(pf), 0);
	tt_write_all(p[1], "abc", 3);
	tt_run_until_complete(loop, r1, 0);
	tt_run_until_complete(loop, r2, 0);
	tt_run_until_complete(loop, pf, 0);
	ck_assert_int_eq(tt_result(r1), 1);
	ck_assert_int_eq(tt_result(r2), 1);
	ck_assert(tt_result(pf) & POLLIN);
	ck_assert_msg((b1 == 'a' && b2 == 'b') || (b1 == 'b' && b2 == 'a'), "read '%c' '%c'", b1, b2);
	ck_assert_int_eq(read(p[0], rest, sizeof(rest)), 1);
	ck_assert_int_eq(rest[0], 'c');
	tide_future_unref(r1);
	tide_future_unref(r2);
	tide_future_unref(pf);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_sequential_reads_and_fd_reuse)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	char buf[8];
	int p[2], q[2];

	tt_pipe(p, 0);
	for (int i = 0; i < 100; i++) {
		char c = (char)('A' + i % 26);

		ck_assert_int_eq(tide_op_read(loop, p[0], buf, sizeof(buf), -1, &fut), 0);
		if (i % 2)
			ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
		tt_write_all(p[1], &c, 1);
		tt_run_until_complete(loop, fut, 0);
		ck_assert_int_eq(tt_result(fut), 1);
		ck_assert_int_eq(buf[0], c);
		tide_future_unref(fut);
	}
	close(p[0]);
	close(p[1]);
	/* The same fd numbers again, for a new pipe: nothing stale may linger. */
	tt_pipe(q, 0);
	ck_assert_int_eq(tide_op_read(loop, q[0], buf, sizeof(buf), -1, &fut), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.02, write_cb, (void *)(intptr_t)q[1], NULL), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 5);
	ck_assert_mem_eq(buf, "later", 5);
	tide_future_unref(fut);
	close(q[0]);
	close(q[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/*
 * Files without RWF_NOWAIT support (ptys: a terminal on stdin; inotify) on a
 * blocking fd: an op waiting for data must not block the loop in read().
 */
static uint64_t tick_ns;

static void tick_cb(void *arg)
{
	(void)arg;
	__atomic_store_n(&tick_ns, tt_mono_ns(), __ATOMIC_SEQ_CST);
}

/*
 * The other thread's side comes only after the loop ran a timer (or after
 * TT_HANG_NS, so that a loop blocked in the syscall ends at all): the loop
 * is proved not blocked by an order of events, not by how fast it ran.
 * Returns when the side came (CLOCK_MONOTONIC).
 */
static uint64_t wait_for_tick(void)
{
	uint64_t end = tt_mono_ns() + TT_HANG_NS;

	while (!__atomic_load_n(&tick_ns, __ATOMIC_SEQ_CST) && tt_mono_ns() < end)
		tt_sleep_ms(1);
	return tt_mono_ns();
}

struct late_write {
	int fd;
	const char *path; /* inotify: create this file instead of writing */
	uint64_t at;      /* when the write came */
};

static void *late_writer(void *arg)
{
	struct late_write *lw = arg;

	lw->at = wait_for_tick();
	if (lw->path) {
		int fd = open(lw->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

		if (fd >= 0)
			close(fd);
	} else {
		tt_write_all(lw->fd, "hi\n", 3);
	}
	return NULL;
}

static void read_must_not_block_loop(int rfd, struct late_write *lw, size_t n, int64_t expect_min)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	static char buf[4096];
	pthread_t th;
	uint64_t t0 = tt_mono_ns(), t1;

	/*
	 * The writer starts first and writes once a 20 ms timer ran: a read
	 * that blocks the caller, or the loop, returns only after the write
	 * (after TT_HANG_NS), one that does not returns and lets the timer
	 * run before it.
	 */
	tick_ns = 0;
	ck_assert_int_eq(pthread_create(&th, NULL, late_writer, lw), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.02, tick_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_op_read(loop, rfd, buf, n, -1, &fut), 0);
	t1 = tt_mono_ns();
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_ge(tt_result(fut), expect_min);
	ck_assert_msg(t1 < lw->at, "[%s] tide_op_read blocked the caller until the write (%.3f s)",
		      tt_cfg->name, (double)(t1 - t0) / 1e9);
	ck_assert_msg(tick_ns != 0 && tick_ns <= lw->at,
		      "[%s] the 20 ms timer did not run before the write: the loop blocked in read()",
		      tt_cfg->name);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

START_TEST(test_read_pty_does_not_block_loop)
{
	struct late_write lw = { -1, NULL, 0 };
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), slave;

	ck_assert_int_ge(master, 0);
	ck_assert_int_eq(grantpt(master), 0);
	ck_assert_int_eq(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(slave, 0);
	lw.fd = master;
	read_must_not_block_loop(slave, &lw, 64, 3);
	close(slave);
	close(master);
}
END_TEST

struct late_drain {
	int fd;
	size_t total;
	uint64_t at; /* when the draining began */
};

static void *late_drainer(void *arg)
{
	struct late_drain *ld = arg;
	char buf[4096];

	ld->at = wait_for_tick();
	while (ld->total < (1u << 20)) {
		ssize_t r = read(ld->fd, buf, sizeof(buf));

		if (r <= 0)
			break;
		ld->total += (size_t)r;
	}
	return NULL;
}

/* A write larger than the pty can take must not block the loop either. */
START_TEST(test_write_pty_does_not_block_loop)
{
	struct tide_loop *loop = tt_loop_new();
	struct late_drain ld = { -1, 0, 0 };
	struct tide_future *fut;
	struct termios tio;
	static char big[1 << 20];
	pthread_t th;
	uint64_t t0 = tt_mono_ns(), t1;
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), slave;

	ck_assert_int_ge(master, 0);
	ck_assert_int_eq(grantpt(master), 0);
	ck_assert_int_eq(unlockpt(master), 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(slave, 0);
	ck_assert_int_eq(tcgetattr(slave, &tio), 0);
	cfmakeraw(&tio);
	ck_assert_int_eq(tcsetattr(slave, TCSANOW, &tio), 0);
	memset(big, 'p', sizeof(big));
	ld.fd = slave;
	tick_ns = 0;
	ck_assert_int_eq(pthread_create(&th, NULL, late_drainer, &ld), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.02, tick_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_op_write(loop, master, big, sizeof(big), -1, &fut), 0);
	t1 = tt_mono_ns();
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_gt(tt_result(fut), 0);
	/* A short write may complete first: the drainer waits for the timer. */
	while (!__atomic_load_n(&tick_ns, __ATOMIC_SEQ_CST))
		ck_assert_int_ge(tide_loop_run_once(loop, 0.05), 0);
	close(master); /* ends the drainer */
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	/* The drainer begins once the timer ran (as late_writer above). */
	ck_assert_msg(t1 < ld.at, "[%s] tide_op_write blocked the caller until the drain (%.3f s)",
		      tt_cfg->name, (double)(t1 - t0) / 1e9);
	ck_assert_msg(tick_ns <= ld.at,
		      "[%s] the 20 ms timer did not run before the drain: the loop blocked in write()",
		      tt_cfg->name);
	tide_future_unref(fut);
	close(slave);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_read_inotify_does_not_block_loop)
{
	char dir[] = "/tmp/tide-inotify-XXXXXX", path[64];
	struct late_write lw = { -1, path, 0 };
	int ifd = inotify_init1(IN_CLOEXEC);

	ck_assert_int_ge(ifd, 0);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	ck_assert_int_ge(inotify_add_watch(ifd, dir, IN_CREATE), 0);
	read_must_not_block_loop(ifd, &lw, 4096, (int64_t)sizeof(struct inotify_event));
	unlink(path);
	rmdir(dir);
	close(ifd);
}
END_TEST

/* fd numbers far above the first few thousand work as well. */
START_TEST(test_high_fd_numbers)
{
	struct tide_loop *loop = tt_loop_new();
	struct rlimit rl;
	struct tide_future *fr, *fw;
	char buf[8] = "";
	int p[2], hi_r, hi_w;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 5000 && rl.rlim_max >= 5000) {
		rl.rlim_cur = 5000;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	hi_r = (int)(rl.rlim_cur > 5000 ? 4990 : rl.rlim_cur - 10);
	hi_w = hi_r + 1;
	tt_pipe(p, 0);
	ck_assert_int_eq(dup3(p[0], hi_r, O_CLOEXEC), hi_r);
	ck_assert_int_eq(dup3(p[1], hi_w, O_CLOEXEC), hi_w);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_op_read(loop, hi_r, buf, sizeof(buf), -1, &fr), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(tide_op_write(loop, hi_w, "high", 4, -1, &fw), 0);
	tt_run_until_complete(loop, fw, 0);
	tt_run_until_complete(loop, fr, 0);
	ck_assert_int_eq(tt_result(fr), 4);
	ck_assert_mem_eq(buf, "high", 4);
	tide_future_unref(fr);
	tide_future_unref(fw);
	close(hi_r);
	close(hi_w);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* -------------------------------------------------------------- eventfd -- */

START_TEST(test_eventfd)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	struct tide_future *fw, *fr;
	uint64_t in = 0x1234567, out = 0;
	int efd = eventfd(0, EFD_CLOEXEC);

	ck_assert_int_ge(efd, 0);
	tt_stats(loop, &s0);
	/* The read waits for the counter to become non-zero. */
	ck_assert_int_eq(tide_op_read(loop, efd, &out, sizeof(out), -1, &fr), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(tide_future_done(fr), 0);
	ck_assert_int_eq(tide_op_write(loop, efd, &in, sizeof(in), -1, &fw), 0);
	tt_run_until_complete(loop, fw, 0);
	ck_assert_int_eq(tt_result(fw), 8);
	tt_run_until_complete(loop, fr, 0);
	ck_assert_int_eq(tt_result(fr), 8);
	ck_assert_uint_eq(out, 0x1234567);
	tt_stats(loop, &s1);
	check_path(&s0, &s1, TIDE_OP_READ, fd_path(), 1);
	check_path(&s0, &s1, TIDE_OP_WRITE, fd_path(), 1);
	tide_future_unref(fw);
	tide_future_unref(fr);
	close(efd);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* -------------------------------------------------------- regular files -- */

static int temp_file(void)
{
	char path[] = "/tmp/tide-test-XXXXXX";
	const char *dir = getenv("TMPDIR");
	char buf[4096];
	int fd;

	if (dir && *dir) {
		snprintf(buf, sizeof(buf), "%s/tide-test-XXXXXX", dir);
		fd = mkstemp(buf);
		if (fd >= 0) {
			unlink(buf);
			return fd;
		}
	}
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	return fd;
}

START_TEST(test_regular_file)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	struct tide_future *fut;
	char buf[64];
	int fd = temp_file();

	tt_stats(loop, &s0);
	/* Write at an offset: a hole before it, the file position untouched. */
	ck_assert_int_eq(tide_op_write(loop, fd, "xyz", 3, 100, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 3);
	tide_future_unref(fut);
	ck_assert_int_eq(pread(fd, buf, 3, 100), 3);
	ck_assert_mem_eq(buf, "xyz", 3);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0);

	ck_assert_int_eq(pwrite(fd, "0123456789", 10, 0), 10);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(tide_op_read(loop, fd, buf, 4, 3, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 4);
	ck_assert_mem_eq(buf, "3456", 4);
	tide_future_unref(fut);

	/* Past the end: 0 bytes; across the end: a short read. */
	ck_assert_int_eq(tide_op_read(loop, fd, buf, 8, 200, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 0);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_op_read(loop, fd, buf, 64, 101, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 2);
	ck_assert_mem_eq(buf, "yz", 2);
	tide_future_unref(fut);

	tt_stats(loop, &s1);
	ck_assert_uint_eq(tt_completed(&s1, TIDE_OP_READ) - tt_completed(&s0, TIDE_OP_READ), 3);
	ck_assert_uint_eq(tt_completed(&s1, TIDE_OP_WRITE) - tt_completed(&s0, TIDE_OP_WRITE), 1);
	if (tt_is_uring()) {
		check_path(&s0, &s1, TIDE_OP_READ, TIDE_PATH_URING, 3);
		check_path(&s0, &s1, TIDE_OP_WRITE, TIDE_PATH_URING, 1);
	} else if (tt_is_epoll()) {
		check_path(&s0, &s1, TIDE_OP_READ, TIDE_PATH_EXECUTOR, 3);
		check_path(&s0, &s1, TIDE_OP_WRITE, TIDE_PATH_EXECUTOR, 1);
	} else {
		/* Masked: any fallback, but not an io_uring READ/WRITE SQE. */
		ck_assert_uint_eq(s1.ops_completed[TIDE_OP_READ][TIDE_PATH_URING] -
				  s0.ops_completed[TIDE_OP_READ][TIDE_PATH_URING], 0);
		ck_assert_uint_eq(s1.ops_completed[TIDE_OP_WRITE][TIDE_PATH_URING] -
				  s0.ops_completed[TIDE_OP_WRITE][TIDE_PATH_URING], 0);
	}
	close(fd);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_regular_file_current_position)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	char buf[8];
	int fd = temp_file();

	ck_assert_int_eq(pwrite(fd, "abcdefgh", 8, 0), 8);
	ck_assert_int_eq(lseek(fd, 2, SEEK_SET), 2);
	/* off -1: the fd's position, which advances. */
	ck_assert_int_eq(tide_op_read(loop, fd, buf, 3, -1, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 3);
	ck_assert_mem_eq(buf, "cde", 3);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_op_read(loop, fd, buf, 3, -1, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 3);
	ck_assert_mem_eq(buf, "fgh", 3);
	tide_future_unref(fut);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 8);
	ck_assert_int_eq(tide_op_write(loop, fd, "IJ", 2, -1, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 2);
	tide_future_unref(fut);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 10);
	ck_assert_int_eq(pread(fd, buf, 2, 8), 2);
	ck_assert_mem_eq(buf, "IJ", 2);
	close(fd);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ----------------------------------------------------------------- poll -- */

START_TEST(test_poll_pipe)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	struct tide_future *fin, *fout;
	int p[2];

	tt_pipe(p, 0);
	tt_stats(loop, &s0);
	ck_assert_int_eq(tide_op_poll(loop, p[1], POLLOUT, &fout), 0);
	tt_run_until_complete(loop, fout, 0);
	ck_assert(tt_result(fout) & POLLOUT);
	ck_assert_int_eq(tt_result(fout) & POLLIN, 0);

	ck_assert_int_eq(tide_op_poll(loop, p[0], POLLIN, &fin), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(tide_future_done(fin), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.01, write_cb, (void *)(intptr_t)p[1], NULL), 0);
	tt_run_until_complete(loop, fin, 0);
	ck_assert(tt_result(fin) & POLLIN);
	tt_stats(loop, &s1);
	ck_assert_uint_eq(tt_completed(&s1, TIDE_OP_POLL) - tt_completed(&s0, TIDE_OP_POLL), 2);
	if (tt_is_epoll())
		check_path(&s0, &s1, TIDE_OP_POLL, TIDE_PATH_READINESS, 2);
	/* Polling consumed nothing. */
	{
		char buf[8];

		ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 5);
	}
	/* Hang-up is reported even though only POLLIN was asked. */
	tide_future_unref(fin);
	close(p[1]);
	ck_assert_int_eq(tide_op_poll(loop, p[0], POLLIN, &fin), 0);
	tt_run_until_complete(loop, fin, 0);
	ck_assert(tt_result(fin) & POLLHUP);
	tide_future_unref(fin);
	tide_future_unref(fout);
	close(p[0]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_poll_same_fd_two_events)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fin, *fout;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(tide_op_poll(loop, sv[0], POLLIN, &fin), 0);
	ck_assert_int_eq(tide_op_poll(loop, sv[0], POLLOUT, &fout), 0);
	tt_run_until_complete(loop, fout, 0);
	ck_assert(tt_result(fout) & POLLOUT);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(tide_future_done(fin), 0);
	tt_write_all(sv[1], "x", 1);
	tt_run_until_complete(loop, fin, 0);
	ck_assert(tt_result(fin) & POLLIN);
	tide_future_unref(fin);
	tide_future_unref(fout);
	close(sv[0]);
	close(sv[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_poll_regular_file)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	int fd = temp_file();

	/* Regular files are always ready (epoll_ctl refuses them with EPERM). */
	ck_assert_int_eq(tide_op_poll(loop, fd, POLLIN, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert(tt_result(fut) & POLLIN);
	tide_future_unref(fut);
	close(fd);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* -------------------------------------------------------------- timeout -- */

START_TEST(test_timeout_op)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	struct tide_future *fut;
	uint64_t t0, dt;

	tt_stats(loop, &s0);
	t0 = tt_mono_ns();
	ck_assert_int_eq(tide_op_timeout(loop, 0.05, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	dt = tt_mono_ns() - t0;
	ck_assert_int_eq(tt_result(fut), 0);
	ck_assert_msg(dt >= 50000000u, "0.05 s timeout completed after %.6f s", (double)dt / 1e9);
	ck_assert_msg(dt < TT_HANG_NS, "0.05 s timeout completed after %.6f s", (double)dt / 1e9);
	tide_future_unref(fut);

	ck_assert_int_eq(tide_op_timeout(loop, 0, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 0);
	tide_future_unref(fut);

	/* Sub-millisecond precision is not rounded down to zero. */
	t0 = tt_mono_ns();
	ck_assert_int_eq(tide_op_timeout(loop, 0.0015, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_uint_ge(tt_mono_ns() - t0, 1500000u);
	tide_future_unref(fut);
	tt_stats(loop, &s1);
	ck_assert_uint_eq(tt_completed(&s1, TIDE_OP_TIMEOUT) - tt_completed(&s0, TIDE_OP_TIMEOUT), 3);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_timeout_op_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	uint64_t t0 = tt_mono_ns();

	ck_assert_int_eq(tide_op_timeout(loop, 3600.0, &fut), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(tide_future_cancel(fut), 1);
	tt_run_until_complete(loop, fut, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(fut), 1);
	ck_assert_uint_lt(tt_mono_ns() - t0, TT_HANG_NS);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------------------- cancel -- */

static void cancel_pending_read(int run_first)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	char *buf = malloc(64); /* freed only after the future is done */
	char rbuf[8];
	int p[2];

	tt_pipe(p, 0);
	ck_assert_int_eq(tide_op_read(loop, p[0], buf, 64, -1, &fut), 0);
	if (run_first)
		for (int i = 0; i < 3; i++)
			ck_assert_int_ge(tide_loop_run_once(loop, 0.005), 0);
	ck_assert_int_eq(tide_future_done(fut), 0);
	ck_assert_int_eq(tide_future_cancel(fut), 1);
	tt_run_until_complete(loop, fut, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(fut), 1);
	ck_assert_int_eq(tide_future_error(fut), -ECANCELED);
	ck_assert_int_eq(tide_future_cancel(fut), 0);
	tide_future_unref(fut);
	free(buf);
	/* The cancelled read is gone for good: later data stays in the pipe. */
	tt_write_all(p[1], "k", 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.005), 0);
	ck_assert_int_eq(read(p[0], rbuf, sizeof(rbuf)), 1);
	ck_assert_int_eq(rbuf[0], 'k');
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

START_TEST(test_cancel_pending_read)
{
	cancel_pending_read(1);
}
END_TEST

START_TEST(test_cancel_read_before_submit)
{
	cancel_pending_read(0);
}
END_TEST

START_TEST(test_cancel_completed_op)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	char buf[8];
	int p[2];

	tt_pipe(p, 0);
	tt_write_all(p[1], "ok", 2);
	ck_assert_int_eq(tide_op_read(loop, p[0], buf, sizeof(buf), -1, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tide_future_cancel(fut), 0);
	ck_assert_int_eq(tt_result(fut), 2);
	tide_future_unref(fut);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------------------- errors -- */

START_TEST(test_read_closed_fd)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	char buf[8];
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(tide_op_read(loop, fd, buf, sizeof(buf), -1, &fut), 0);
	tt_run_until_complete(loop, fut, -EBADF);
	ck_assert_int_eq(tide_future_error(fut), -EBADF);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_op_write(loop, fd, "x", 1, -1, &fut), 0);
	tt_run_until_complete(loop, fut, -EBADF);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_op_read(loop, fd, buf, sizeof(buf), 0, &fut), 0);
	tt_run_until_complete(loop, fut, -EBADF);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_write_broken_pipe)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	int p[2];

	tt_pipe(p, 0);
	close(p[0]);
	ck_assert_int_eq(tide_op_write(loop, p[1], "x", 1, -1, &fut), 0);
	tt_run_until_complete(loop, fut, -EPIPE);
	ck_assert_int_eq(tide_future_error(fut), -EPIPE);
	tide_future_unref(fut);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_ops_bad_input)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut = NULL;
	char buf[4];
	int p[2];

	tt_pipe(p, 0);
	ck_assert_int_eq(tide_op_timeout(loop, NAN, &fut), -EINVAL);
	ck_assert_int_eq(tide_op_timeout(loop, INFINITY, &fut), -EINVAL);
	ck_assert_int_eq(tide_op_timeout(loop, 1.0, NULL), -EINVAL);
	ck_assert_int_eq(tide_op_read(loop, p[0], buf, sizeof(buf), -1, NULL), -EINVAL);
	ck_assert_int_eq(tide_op_write(loop, p[1], buf, sizeof(buf), -1, NULL), -EINVAL);
	ck_assert_int_eq(tide_op_poll(loop, p[0], POLLIN, NULL), -EINVAL);
	ck_assert_ptr_null(fut);
	/* Nothing was created: the loop frees. */
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_op_read(loop, p[0], buf, sizeof(buf), -1, &fut), TIDE_ECLOSED);
	ck_assert_int_eq(tide_op_write(loop, p[1], buf, sizeof(buf), -1, &fut), TIDE_ECLOSED);
	ck_assert_int_eq(tide_op_poll(loop, p[0], POLLIN, &fut), TIDE_ECLOSED);
	ck_assert_int_eq(tide_op_timeout(loop, 0.1, &fut), TIDE_ECLOSED);
	ck_assert_ptr_null(fut);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_free_busy_with_op_in_flight)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s;
	struct tide_future *fut;
	static char buf[8];
	int p[2], i;

	tt_pipe(p, 0);
	tt_stats(loop, &s0);
	ck_assert_int_eq(tide_op_read(loop, p[0], buf, sizeof(buf), -1, &fut), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	/* The caller lets go; the op in flight still keeps the loop alive. */
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	ck_assert_int_eq(tide_loop_is_closed(loop), 0);
	tt_write_all(p[1], "z", 1);
	for (i = 0; i < 500; i++) {
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
		tt_stats(loop, &s);
		if (tt_completed(&s, TIDE_OP_READ) > tt_completed(&s0, TIDE_OP_READ))
			break;
	}
	ck_assert_int_lt(i, 500);
	ck_assert_int_eq(buf[0], 'z');
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/*
 * Data that arrives while a cancel is in flight is never lost: either the
 * read delivers it, or the read is cancelled and the data stays in the pipe.
 */
START_TEST(test_cancel_races_data)
{
	struct tide_loop *loop = tt_loop_new();
	int delivered = 0, cancelled = 0;
	int p[2];

	tt_pipe(p, 0);
	for (int i = 0; i < 300; i++) {
		struct tide_future *fut;
		char buf[4] = "", rest[4] = "";
		char c = (char)('a' + i % 26);
		int64_t v = -1;
		int r;

		ck_assert_int_eq(tide_op_read(loop, p[0], buf, 1, -1, &fut), 0);
		if (i % 3)
			ck_assert_int_ge(tide_loop_run_once(loop, 0), 0); /* submitted and waiting */
		tt_write_all(p[1], &c, 1);
		if (i % 2)
			tt_sleep_ms(0);
		tide_future_cancel(fut);
		r = tide_loop_run_until_complete(loop, fut);
		if (r == 0) {
			ck_assert_int_eq(tide_future_result(fut, &v, NULL), 0);
			ck_assert_int_eq(v, 1);
			ck_assert_int_eq(buf[0], c);
			delivered++;
		} else {
			ck_assert_int_eq(r, -ECANCELED);
			ck_assert_int_eq(tide_future_cancelled(fut), 1);
			/* The byte is still there for the next reader. */
			ck_assert_int_eq(read(p[0], rest, 1), 1);
			ck_assert_int_eq(rest[0], c);
			cancelled++;
		}
		tide_future_unref(fut);
	}
	printf("[%s] cancel vs data: %d delivered, %d cancelled\n", tt_cfg->name, delivered, cancelled);
	ck_assert_int_eq(delivered + cancelled, 300);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* Debug mode: an op's error that nobody looked at is reported when it goes. */
static int op_eh_calls, op_eh_err;

static void op_handler(struct tide_loop *loop, const struct tide_error_context *ctx, void *arg)
{
	(void)loop;
	(void)arg;
	op_eh_calls++;
	op_eh_err = ctx->error;
}

START_TEST(test_unretrieved_op_error_reported)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;
	struct tide_future *fut;
	char buf[8];
	int fd;

	tt_opts_init(&opts);
	opts.debug = 1;
	loop = tt_loop_new_opts(&opts);
	tide_loop_set_exception_handler(loop, op_handler, NULL);
	/* Closed after the loop exists, so that none of its own fds takes the number. */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(tide_op_read(loop, fd, buf, sizeof(buf), -1, &fut), 0);
	tide_future_unref(fut); /* the op keeps it until it completes */
	for (int i = 0; i < 5; i++)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(op_eh_calls, 1);
	ck_assert_int_eq(op_eh_err, -EBADF);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* A closed loop runs no more, so close must leave a way to free it. */
START_TEST(test_close_with_ops_in_flight)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fr, *ft, *fp;
	static char buf[8];
	int p[2];

	tt_pipe(p, 0);
	ck_assert_int_eq(tide_op_read(loop, p[0], buf, sizeof(buf), -1, &fr), 0);
	ck_assert_int_eq(tide_op_poll(loop, p[0], POLLIN, &fp), 0);
	ck_assert_int_eq(tide_op_timeout(loop, 30.0, &ft), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_loop_is_closed(loop), 1);
	/* Whatever close did with them, cancelling now must settle them. */
	tide_future_cancel(fr);
	tide_future_cancel(fp);
	tide_future_cancel(ft);
	tide_future_unref(fr);
	tide_future_unref(fp);
	tide_future_unref(ft);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* --------------------------------------------------------------- stats -- */

static void *wake_thread(void *arg)
{
	tt_sleep_ms(30); /* the loop is asleep in the backend by now */
	ck_assert_int_eq(tide_call_soon_threadsafe(g_loop, tick_cb, arg), 0);
	return NULL;
}

static void stop_cb(void *arg)
{
	(void)arg;
	tide_loop_stop(g_loop);
}

/* The per-kind op counters count the caller's ops only, not the loop's own. */
START_TEST(test_stats_count_user_ops_only)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	pthread_t th;

	g_loop = loop;
	tt_stats(loop, &s0);
	for (int k = 0; k < TIDE_OP_KIND_MAX; k++)
		for (int p = 0; p < TIDE_PATH_MAX; p++) {
			ck_assert_msg(s0.ops_submitted[k][p] == 0, "[%s] new loop: ops_submitted[%d][%d] = %llu",
				      tt_cfg->name, k, p, (unsigned long long)s0.ops_submitted[k][p]);
			ck_assert_msg(s0.ops_completed[k][p] == 0, "[%s] new loop: ops_completed[%d][%d] = %llu",
				      tt_cfg->name, k, p, (unsigned long long)s0.ops_completed[k][p]);
		}
	/* Wake the sleeping loop from another thread a few times. */
	for (int i = 0; i < 3; i++) {
		tick_ns = 0;
		ck_assert_int_eq(pthread_create(&th, NULL, wake_thread, NULL), 0);
		while (tick_ns == 0)
			ck_assert_int_ge(tide_loop_run_once(loop, 1.0), 0);
		ck_assert_int_eq(pthread_join(th, NULL), 0);
	}
	ck_assert_int_eq(tide_call_soon(loop, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	tt_stats(loop, &s1);
	ck_assert_uint_eq(s1.threadsafe_calls - s0.threadsafe_calls, 3);
	for (int k = 0; k < TIDE_OP_KIND_MAX; k++)
		for (int p = 0; p < TIDE_PATH_MAX; p++) {
			ck_assert_msg(s1.ops_submitted[k][p] == 0, "[%s] after wake-ups: ops_submitted[%d][%d] = %llu",
				      tt_cfg->name, k, p, (unsigned long long)s1.ops_submitted[k][p]);
			ck_assert_msg(s1.ops_completed[k][p] == 0, "[%s] after wake-ups: ops_completed[%d][%d] = %llu",
				      tt_cfg->name, k, p, (unsigned long long)s1.ops_completed[k][p]);
		}
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------- completion storm -- */

#define STORM_POLL 4096
#define STORM_TMO 2048
#define STORM_ZERO 2048
#define STORM_N (STORM_POLL + STORM_TMO + STORM_ZERO)

static int storm_done[STORM_N], storm_total, storm_bad;
static char (*storm_buf)[16];

static void storm_cb(struct tide_future *fut, void *arg)
{
	int i = (int)(intptr_t)arg;
	int64_t v = -1;
	int err = tide_future_result(fut, &v, NULL);

	storm_done[i]++;
	if (err != 0)
		storm_bad++;
	else if (i < STORM_POLL && !(v & POLLIN))
		storm_bad++;
	else if (i >= STORM_POLL && i < STORM_POLL + STORM_TMO && v != 0)
		storm_bad++;
	else if (i >= STORM_POLL + STORM_TMO) {
		char zero[16] = { 0 };

		if (v != 16 || memcmp(storm_buf[i - STORM_POLL - STORM_TMO], zero, 16) != 0)
			storm_bad++;
	}
	if (++storm_total == STORM_N)
		tide_loop_stop(g_loop);
}

START_TEST(test_cq_overflow_storm)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;
	struct tide_loop_stats s0, s1;
	static struct tide_future *futs[STORM_N];
	int p[2], zfd, fails = 0;

	tt_opts_init(&opts);
	opts.ring_entries = 4;
	loop = tt_loop_new_opts(&opts);
	g_loop = loop;
	tt_pipe(p, 0);
	tt_write_all(p[1], "r", 1); /* readable for every poll */
	zfd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(zfd, 0);
	storm_buf = malloc(sizeof(*storm_buf) * STORM_ZERO);
	memset(storm_buf, 0xff, sizeof(*storm_buf) * STORM_ZERO);
	tt_stats(loop, &s0);
	/* Thousands in flight at once on a 4-entry ring, no loop run between. */
	for (int i = 0; i < STORM_N; i++) {
		int r;

		if (i < STORM_POLL)
			r = tide_op_poll(loop, p[0], POLLIN, &futs[i]);
		else if (i < STORM_POLL + STORM_TMO)
			r = tide_op_timeout(loop, 0, &futs[i]);
		else
			r = tide_op_read(loop, zfd, storm_buf[i - STORM_POLL - STORM_TMO], 16, -1, &futs[i]);
		if (r != 0 || tide_future_add_done_callback(futs[i], storm_cb, (void *)(intptr_t)i) != 0)
			fails++;
	}
	ck_assert_int_eq(fails, 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	tt_stats(loop, &s1);
	printf("[%s] storm: %d ops on a 4-entry ring: %llu CQ overflows, %llu SQ-full waits, %llu backend waits\n",
	       tt_cfg->name, STORM_N, (unsigned long long)(s1.cq_overflows - s0.cq_overflows),
	       (unsigned long long)(s1.sq_full_waits - s0.sq_full_waits),
	       (unsigned long long)(s1.backend_waits - s0.backend_waits));
	ck_assert_int_eq(storm_total, STORM_N);
	ck_assert_int_eq(storm_bad, 0);
	for (int i = 0; i < STORM_N; i++)
		if (storm_done[i] != 1)
			ck_abort_msg("op %d completed %d times", i, storm_done[i]);
	/* Nothing completes twice later either. */
	ck_assert_int_eq(tide_loop_run_once(loop, 0.02), 0);
	ck_assert_int_eq(storm_total, STORM_N);
	ck_assert_uint_eq(tt_completed(&s1, TIDE_OP_POLL) - tt_completed(&s0, TIDE_OP_POLL), STORM_POLL);
	ck_assert_uint_eq(tt_completed(&s1, TIDE_OP_TIMEOUT) - tt_completed(&s0, TIDE_OP_TIMEOUT), STORM_TMO);
	ck_assert_uint_eq(tt_completed(&s1, TIDE_OP_READ) - tt_completed(&s0, TIDE_OP_READ), STORM_ZERO);
	ck_assert_uint_eq(tt_submitted(&s1, TIDE_OP_POLL) - tt_submitted(&s0, TIDE_OP_POLL), STORM_POLL);
	ck_assert_uint_eq(tt_submitted(&s1, TIDE_OP_READ) - tt_submitted(&s0, TIDE_OP_READ), STORM_ZERO);
	if (tt_is_uring())
		ck_assert_uint_eq(s1.ops_completed[TIDE_OP_READ][TIDE_PATH_URING] -
				  s0.ops_completed[TIDE_OP_READ][TIDE_PATH_URING], STORM_ZERO);
	for (int i = 0; i < STORM_N; i++)
		tide_future_unref(futs[i]);
	free(storm_buf);
	close(zfd);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/*
 * A chain of callbacks, each scheduling the next, on a loop with an op in
 * flight: every iteration must look for completions (asyncio polls I/O at
 * each one), but on io_uring with IORING_SETUP_TASKRUN_FLAG it looks at the
 * CQ ring and the kernel's IORING_SQ_TASKRUN flag, not through a syscall.
 * Midway the chain makes the pipe readable: the poll must complete within
 * an iteration or two all the same, on every backend.
 */
#define CHAIN_N 2000
#define CHAIN_WRITE_AT 1000

struct chain {
	struct tide_loop *loop;
	struct tide_future *pf;
	int wfd;
	int n;
	int done_at; /* link at which pf was first seen done, -1 until then */
};

static void chain_link(void *arg)
{
	struct chain *c = arg;

	if (c->done_at < 0 && tide_future_done(c->pf))
		c->done_at = c->n;
	if (c->n == CHAIN_WRITE_AT)
		tt_write_all(c->wfd, "x", 1);
	if (++c->n < CHAIN_N)
		ck_assert_int_eq(tide_call_soon(c->loop, chain_link, c, NULL), 0);
}

START_TEST(test_callback_chain_polls_without_syscalls)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	struct chain c = { .loop = loop, .done_at = -1 };
	int p[2];

	tt_pipe(p, 0);
	c.wfd = p[1];
	ck_assert_int_eq(tide_op_poll(loop, p[0], POLLIN, &c.pf), 0);
	/* The poll goes in flight before the count starts. */
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	tt_stats(loop, &s0);
	ck_assert_int_eq(tide_call_soon(loop, chain_link, &c, NULL), 0);
	while (c.n < CHAIN_N)
		ck_assert_int_ge(tide_loop_run_once(loop, -1), 0);
	tt_stats(loop, &s1);
	ck_assert_msg(c.done_at > CHAIN_WRITE_AT && c.done_at <= CHAIN_WRITE_AT + 3,
		      "poll seen done at link %d, pipe written at %d", c.done_at, CHAIN_WRITE_AT);
	ck_assert(tt_result(c.pf) & POLLIN);
	if (tt_is_uring() || tt_is_masked()) {
		const char *reason = tide_loop_backend_reason(loop);
		uint64_t calls = s1.backend_waits - s0.backend_waits;

		printf("%s: %llu kernel calls over %d iterations (%s)\n", tt_cfg->name,
		       (unsigned long long)calls, CHAIN_N, reason);
		/* One call to collect the poll's completion, maybe one more;
		 * without the flag, one per iteration until the poll is done
		 * (then no op is in flight and the loop calls nothing). */
		if (strstr(reason, "TASKRUN_FLAG"))
			ck_assert_uint_le(calls, 2);
		else
			ck_assert_uint_ge(calls, CHAIN_WRITE_AT);
	}
	tide_future_unref(c.pf);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "ops", 90);
	tt_add(&ts, test_pipe_read_ready);
	tt_add(&ts, test_pipe_read_later_blocking_fd);
	tt_add(&ts, test_pipe_read_later_nonblocking_fd);
	tt_add(&ts, test_pipe_write);
	tt_add(&ts, test_pipe_write_when_full);
	tt_add(&ts, test_read_eof);
	tt_add(&ts, test_two_reads_same_fd);
	tt_add(&ts, test_sequential_reads_and_fd_reuse);
	tt_add(&ts, test_high_fd_numbers);
	tt_add(&ts, test_read_pty_does_not_block_loop);
	tt_add(&ts, test_read_inotify_does_not_block_loop);
	tt_add(&ts, test_write_pty_does_not_block_loop);
	tt_add(&ts, test_eventfd);
	tt_add(&ts, test_regular_file);
	tt_add(&ts, test_regular_file_current_position);
	tt_add(&ts, test_poll_pipe);
	tt_add(&ts, test_poll_same_fd_two_events);
	tt_add(&ts, test_poll_regular_file);
	tt_add(&ts, test_timeout_op);
	tt_add(&ts, test_timeout_op_cancel);
	tt_add(&ts, test_cancel_pending_read);
	tt_add(&ts, test_cancel_read_before_submit);
	tt_add(&ts, test_cancel_completed_op);
	tt_add(&ts, test_read_closed_fd);
	tt_add(&ts, test_write_broken_pipe);
	tt_add(&ts, test_ops_bad_input);
	tt_add(&ts, test_free_busy_with_op_in_flight);
	tt_add(&ts, test_cancel_races_data);
	tt_add(&ts, test_unretrieved_op_error_reported);
	tt_add(&ts, test_close_with_ops_in_flight);
	tt_add(&ts, test_stats_count_user_ops_only);
	tt_add(&ts, test_cq_overflow_storm);
	tt_add(&ts, test_callback_chain_polls_without_syscalls);
	return tt_run(&ts);
}
