/* SPDX-License-Identifier: MIT */
/*
 * test/backend.c: how a loop picks its backend and says why: forced by the
 * options or $TIDE_BACKEND, automatic (io_uring first), the opcode mask
 * ($TIDE_DISABLE_OPS, opts.disable_ops), and the epoll fallback when a
 * seccomp filter makes io_uring_setup fail (each Check test runs in its own
 * child process, so the filter never reaches the runner).
 */
#include "config.h"
#include "helpers.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef HAVE_SECCOMP
#include <seccomp.h>
#endif

static int uring_available;

static struct tide_loop *new_loop(const char *backend, const char *disable)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop = NULL;
	int ret;

	memset(&opts, 0, sizeof(opts));
	opts.size = sizeof(opts);
	opts.backend = backend;
	opts.disable_ops = disable;
	ret = tide_loop_new(&opts, &loop);
	ck_assert_msg(ret == 0, "tide_loop_new(%s) = %d (%s)", backend ? backend : "NULL", ret, tide_strerror(ret));
	return loop;
}

static void check_reason(struct tide_loop *loop)
{
	const char *r = tide_loop_backend_reason(loop);

	ck_assert_ptr_nonnull(r);
	ck_assert_int_gt((int)strlen(r), 0);
}

/* tide_loop_new_error() holds what. */
static void expect_new_error(const char *what)
{
	const char *e = tide_loop_new_error();

	ck_assert_ptr_nonnull(e);
	ck_assert_msg(strstr(e, what) != NULL, "tide_loop_new_error() is '%s', without '%s'", e, what);
}

/* A pipe read and a timer, to show a loop works. */
static int timer_fired;
static void timer_cb(void *arg)
{
	(void)arg;
	timer_fired++;
}

static void loop_works(struct tide_loop *loop)
{
	struct tide_future *fut;
	char buf[16];
	int p[2];

	tt_pipe(p, 0);
	tt_write_all(p[1], "ping", 4);
	ck_assert_int_eq(tide_op_read(loop, p[0], buf, sizeof(buf), -1, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 4);
	ck_assert_mem_eq(buf, "ping", 4);
	tide_future_unref(fut);
	/*
	 * A timer and a later timeout op: the timer fires first. It is armed
	 * first, with the shorter delay, so its deadline is the earlier one in
	 * the same clock however long the process waits between the two calls
	 * (the op's relative timeout starts when it is armed or submitted,
	 * never before). Both due in one iteration run in that iteration.
	 */
	timer_fired = 0;
	ck_assert_int_eq(tide_call_later(loop, 0.005, timer_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_op_timeout(loop, 0.01, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(timer_fired, 1);
	tide_future_unref(fut);
	close(p[0]);
	close(p[1]);
}

/* An echo over a connected socket pair: a send, the peer's recv, its reply. */
static void socket_echo(struct tide_loop *loop)
{
	struct tide_future *fr, *fs;
	char buf[16], back[16];
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	/* The receive waits first, so only readiness can complete it. */
	ck_assert_int_eq(tide_op_recv(loop, sv[1], buf, sizeof(buf), 0, &fr), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(tide_future_done(fr), 0);
	ck_assert_int_eq(tide_op_send(loop, sv[0], "echo", 4, 0, &fs), 0);
	tt_run_until_complete(loop, fr, 0);
	ck_assert_int_eq(tt_result(fr), 4);
	tt_run_until_complete(loop, fs, 0);
	ck_assert_int_eq(tt_result(fs), 4);
	tide_future_unref(fr);
	tide_future_unref(fs);
	/* The echo back. */
	ck_assert_int_eq(tide_op_send(loop, sv[1], buf, 4, 0, &fs), 0);
	tt_run_until_complete(loop, fs, 0);
	ck_assert_int_eq(tt_result(fs), 4);
	tide_future_unref(fs);
	memset(back, 0, sizeof(back));
	ck_assert_int_eq(tide_op_recv(loop, sv[0], back, sizeof(back), 0, &fr), 0);
	tt_run_until_complete(loop, fr, 0);
	ck_assert_int_eq(tt_result(fr), 4);
	ck_assert_mem_eq(back, "echo", 4);
	tide_future_unref(fr);
	close(sv[0]);
	close(sv[1]);
}

/* ------------------------------------------------------------- choice -- */

START_TEST(test_forced_epoll)
{
	struct tide_loop *loop = new_loop("epoll", NULL);

	ck_assert_str_eq(tide_loop_backend(loop), "epoll");
	check_reason(loop);
	for (int k = TIDE_OP_READ; k <= TIDE_OP_CANCEL; k++)
		ck_assert_int_eq(tide_loop_op_native(loop, (enum tide_op_kind)k), 0);
	loop_works(loop);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_forced_uring)
{
	struct tide_loop *loop = new_loop("io_uring", NULL);

	ck_assert_str_eq(tide_loop_backend(loop), "io_uring");
	check_reason(loop);
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_READ), 1);
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_WRITE), 1);
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_POLL), 1);
	loop_works(loop);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_auto_picks_uring)
{
	struct tide_loop *loop = NULL;

	ck_assert_int_eq(tide_loop_new(NULL, &loop), 0);
	ck_assert_str_eq(tide_loop_backend(loop), "io_uring");
	check_reason(loop);
	loop_works(loop);
	ck_assert_int_eq(tide_loop_free(loop), 0);

	/* The same with options that name no backend. */
	loop = new_loop(NULL, NULL);
	ck_assert_str_eq(tide_loop_backend(loop), "io_uring");
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_env_backend)
{
	struct tide_loop *loop = NULL;

	setenv("TIDE_BACKEND", "epoll", 1);
	ck_assert_int_eq(tide_loop_new(NULL, &loop), 0);
	ck_assert_str_eq(tide_loop_backend(loop), "epoll");
	check_reason(loop);
	loop_works(loop);
	ck_assert_int_eq(tide_loop_free(loop), 0);

	/* Options name the backend: they win over the environment. */
	if (uring_available) {
		loop = new_loop("io_uring", NULL);
		ck_assert_str_eq(tide_loop_backend(loop), "io_uring");
		ck_assert_int_eq(tide_loop_free(loop), 0);

		setenv("TIDE_BACKEND", "io_uring", 1);
		ck_assert_int_eq(tide_loop_new(NULL, &loop), 0);
		ck_assert_str_eq(tide_loop_backend(loop), "io_uring");
		ck_assert_int_eq(tide_loop_free(loop), 0);
		loop = new_loop("epoll", NULL);
		ck_assert_str_eq(tide_loop_backend(loop), "epoll");
		ck_assert_int_eq(tide_loop_free(loop), 0);
	}
	unsetenv("TIDE_BACKEND");
}
END_TEST

START_TEST(test_bad_backend_name)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop = NULL;

	memset(&opts, 0, sizeof(opts));
	opts.size = sizeof(opts);
	opts.backend = "select";
	ck_assert_int_eq(tide_loop_new(&opts, &loop), -EINVAL);
	ck_assert_ptr_null(loop);
	expect_new_error("opts.backend='select'");
}
END_TEST

/* Every way tide_loop_new fails names the setting and its value. */
START_TEST(test_new_error_names_cause)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop = NULL;

	setenv("TIDE_BACKEND", "uring", 1);
	ck_assert_int_eq(tide_loop_new(NULL, &loop), -EINVAL);
	expect_new_error("TIDE_BACKEND='uring'");
	unsetenv("TIDE_BACKEND");
	setenv("TIDE_DISABLE_OPS", "read,bogus", 1);
	ck_assert_int_eq(tide_loop_new(NULL, &loop), -EINVAL);
	expect_new_error("TIDE_DISABLE_OPS='read,bogus'");
	expect_new_error("'bogus'");
	unsetenv("TIDE_DISABLE_OPS");
	memset(&opts, 0, sizeof(opts));
	opts.size = sizeof(opts);
	opts.disable_ops = "write,,nope";
	ck_assert_int_eq(tide_loop_new(&opts, &loop), -EINVAL);
	expect_new_error("opts.disable_ops='write,,nope'");
	opts.disable_ops = NULL;
	opts.task_stack_size = 100;
	ck_assert_int_eq(tide_loop_new(&opts, &loop), -EINVAL);
	expect_new_error("opts.task_stack_size is 100");
	opts.task_stack_size = 0;
	opts.recv_buf_count = 1u << 20;
	ck_assert_int_eq(tide_loop_new(&opts, &loop), -EINVAL);
	expect_new_error("opts.recv_buf_count");
	opts.recv_buf_count = 0;
	opts.size = 1;
	ck_assert_int_eq(tide_loop_new(&opts, &loop), -EINVAL);
	expect_new_error("opts->size is 1");
	ck_assert_ptr_null(loop);
	/* A success clears it. */
	ck_assert_int_eq(tide_loop_new(NULL, &loop), 0);
	ck_assert_str_eq(tide_loop_new_error(), "");
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ---------------------------------------------------------------- mask -- */

START_TEST(test_disable_ops)
{
	struct tide_loop *loop;
	struct tide_loop_stats s0, s1;
	struct tide_future *fut;
	char buf[8];
	int p[2];

	/* Masking read only: reads take the readiness path, writes stay native. */
	loop = new_loop("io_uring", "read");
	ck_assert_str_eq(tide_loop_backend(loop), "io_uring");
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_READ), 0);
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_WRITE), 1);
	tt_pipe(p, 0);
	tt_stats(loop, &s0);
	ck_assert_int_eq(tide_op_write(loop, p[1], "m", 1, -1, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_op_read(loop, p[0], buf, sizeof(buf), -1, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 1);
	tide_future_unref(fut);
	tt_stats(loop, &s1);
	ck_assert_uint_eq(s1.ops_completed[TIDE_OP_WRITE][TIDE_PATH_URING] - s0.ops_completed[TIDE_OP_WRITE][TIDE_PATH_URING], 1);
	ck_assert_uint_eq(s1.ops_completed[TIDE_OP_READ][TIDE_PATH_READINESS] - s0.ops_completed[TIDE_OP_READ][TIDE_PATH_READINESS], 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);

	/* The environment masks as well, and options add to it. */
	setenv("TIDE_DISABLE_OPS", "write", 1);
	loop = new_loop("io_uring", "read");
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_READ), 0);
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_WRITE), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	loop = new_loop("io_uring", NULL);
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_READ), 1);
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_WRITE), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	setenv("TIDE_DISABLE_OPS", "all-optional", 1);
	loop = new_loop("io_uring", NULL);
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_READ), 0);
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_WRITE), 0);
	loop_works(loop);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	unsetenv("TIDE_DISABLE_OPS");
	close(p[0]);
	close(p[1]);
}
END_TEST

/* On each configuration: the loop runs what it was asked for, and says so. */
START_TEST(test_config_native)
{
	struct tide_loop *loop = tt_loop_new();

	ck_assert_str_eq(tide_loop_backend(loop), tt_cfg->backend);
	check_reason(loop);
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_READ), tt_is_uring());
	ck_assert_int_eq(tide_loop_op_native(loop, TIDE_OP_WRITE), tt_is_uring());
	loop_works(loop);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* Ring sizes: tiny, odd and large ones make a working loop (epoll ignores them). */
START_TEST(test_ring_sizes)
{
	static const unsigned sizes[] = { 1, 2, 3, 5, 100, 4096 };
	struct tide_loop_opts opts;
	struct tide_loop *loop;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		tt_opts_init(&opts);
		opts.ring_entries = sizes[i];
		loop = tt_loop_new_opts(&opts);
		loop_works(loop);
		ck_assert_int_eq(tide_loop_free(loop), 0);
	}
	/* Beyond what io_uring allows: an error or a clamp, never a crash. */
	tt_opts_init(&opts);
	opts.ring_entries = 1u << 30;
	loop = NULL;
	{
		int r = tide_loop_new(&opts, &loop);

		if (r == 0) {
			loop_works(loop);
			ck_assert_int_eq(tide_loop_free(loop), 0);
		} else {
			ck_assert_int_eq(r, -EINVAL);
		}
	}
}
END_TEST

/* ------------------------------------------------------------- faults -- */

/*
 * TIDE_FAULT_ENTER=30: about 30 % of the io_uring backend's
 * io_uring_enter calls fail with EINTR, EAGAIN or EBUSY without entering.
 * On a ring of 4 entries (so that submissions also flush a full SQ), 64
 * reads in flight at once, a timer, a socket echo and a cancelled read
 * must all end exactly as without faults. epoll makes no such call: the
 * variable is checked and has nothing to act on.
 */
#define FAULT_READS 64

START_TEST(test_fault_enter)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;
	struct tide_loop_stats st;
	struct tide_future *futs[FAULT_READS], *fc;
	char bufs[FAULT_READS][4], cbuf[4];
	int p[2], c[2];

	setenv("TIDE_FAULT_ENTER", "30", 1);
	tt_opts_init(&opts);
	opts.ring_entries = 4;
	loop = tt_loop_new_opts(&opts);
	unsetenv("TIDE_FAULT_ENTER");
	tt_pipe(p, 0);
	tt_pipe(c, 0);
	/* A read that waits, to be cancelled after the others. */
	ck_assert_int_eq(tide_op_read(loop, c[0], cbuf, sizeof(cbuf), -1, &fc), 0);
	for (int i = 0; i < FAULT_READS; i++)
		ck_assert_int_eq(tide_op_read(loop, p[0], bufs[i], 1, -1, &futs[i]), 0);
	for (int i = 0; i < FAULT_READS; i++)
		tt_write_all(p[1], "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+/" + i, 1);
	for (int i = 0; i < FAULT_READS; i++) {
		tt_run_until_complete(loop, futs[i], 0);
		ck_assert_int_eq(tt_result(futs[i]), 1);
	}
	/* Each byte read once, none lost: the 64 reads got the 64 bytes. */
	{
		int seen[128] = { 0 };

		for (int i = 0; i < FAULT_READS; i++)
			seen[(unsigned char)bufs[i][0]]++;
		for (int i = 0; i < FAULT_READS; i++)
			ck_assert_int_eq(seen[(unsigned char)"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+/"[i]], 1);
		for (int i = 0; i < FAULT_READS; i++)
			tide_future_unref(futs[i]);
	}
	ck_assert_int_eq(tide_future_done(fc), 0);
	ck_assert_int_eq(tide_future_cancel(fc), 1);
	tt_run_until_complete(loop, fc, -ECANCELED);
	tide_future_unref(fc);
	loop_works(loop);
	socket_echo(loop);
	tt_stats(loop, &st);
	printf("[%s] TIDE_FAULT_ENTER=30: %llu faults over %llu waits\n", tt_cfg->name,
	       (unsigned long long)st.enter_faults, (unsigned long long)st.backend_waits);
	if (tt_is_epoll())
		ck_assert_uint_eq(st.enter_faults, 0);
	else
		ck_assert_uint_gt(st.enter_faults, 0);
	close(p[0]);
	close(p[1]);
	close(c[0]);
	close(c[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* Writes one byte to the pipe after 5 ms, from another thread. */
static void *late_byte(void *arg)
{
	tt_sleep_ms(5);
	tt_write_all(*(int *)arg, "z", 1);
	return NULL;
}

/*
 * Under TIDE_FAULT_ENTER=80 a wait never comes back empty-handed: the
 * refusals are retried inside the backend (EINTR at once, EAGAIN and
 * EBUSY after reaping), so a run_once that may wait for ever returns once
 * the only op in flight completed, every time, as without faults. A loop
 * that saw the refusals would take a lap for nothing, and a caller's
 * "nothing left to run" (run_once returned 0) would be wrong.
 */
START_TEST(test_fault_enter_waits_are_whole)
{
	struct tide_loop *loop;
	struct tide_loop_stats st;
	int p[2];

	setenv("TIDE_FAULT_ENTER", "80", 1);
	loop = tt_loop_new();
	unsetenv("TIDE_FAULT_ENTER");
	tt_pipe(p, 0);
	for (int i = 0; i < 20; i++) {
		struct tide_future *fut;
		pthread_t th;
		char c;

		ck_assert_int_eq(tide_op_read(loop, p[0], &c, 1, -1, &fut), 0);
		ck_assert_int_eq(pthread_create(&th, NULL, late_byte, &p[1]), 0);
		ck_assert_int_ge(tide_loop_run_once(loop, -1), 0);
		ck_assert_msg(tide_future_done(fut), "[%s] lap %d: run_once(-1) returned before the read completed",
			      tt_cfg->name, i);
		ck_assert_int_eq(tt_result(fut), 1);
		ck_assert_int_eq(c, 'z');
		ck_assert_int_eq(pthread_join(th, NULL), 0);
		tide_future_unref(fut);
	}
	tt_stats(loop, &st);
	if (!tt_is_epoll())
		ck_assert_uint_gt(st.enter_faults, 0);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* A bad TIDE_FAULT_ENTER is an error that names it; 0 is off. */
START_TEST(test_fault_enter_bad_values)
{
	static const char *const bad[] = { "abc", "100", "-1", "30x", "1000000000000", "30:", "30:x", ":5", "30:5:6" };
	struct tide_loop *loop = NULL;
	struct tide_loop_stats st;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char what[64];

		setenv("TIDE_FAULT_ENTER", bad[i], 1);
		ck_assert_int_eq(tide_loop_new(NULL, &loop), -EINVAL);
		ck_assert_ptr_null(loop);
		snprintf(what, sizeof(what), "TIDE_FAULT_ENTER='%s'", bad[i]);
		expect_new_error(what);
	}
	/* A seed repeats a run's faults: two loops, the same calls, the same count. */
	if (uring_available) {
		uint64_t counts[2];

		for (int i = 0; i < 2; i++) {
			setenv("TIDE_FAULT_ENTER", "50:12345", 1);
			loop = new_loop("io_uring", NULL);
			loop_works(loop);
			tt_stats(loop, &st);
			counts[i] = st.enter_faults;
			ck_assert_int_eq(tide_loop_free(loop), 0);
		}
		ck_assert_uint_gt(counts[0], 0);
		ck_assert_uint_eq(counts[0], counts[1]);
	}
	setenv("TIDE_FAULT_ENTER", "0", 1);
	ck_assert_int_eq(tide_loop_new(NULL, &loop), 0);
	unsetenv("TIDE_FAULT_ENTER");
	loop_works(loop);
	tt_stats(loop, &st);
	ck_assert_uint_eq(st.enter_faults, 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------------- seccomp -- */

#ifdef HAVE_SECCOMP
/* From here on this process's calls of syscall nr fail with err. */
static void deny_syscall(int nr, int err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err), nr, 0), 0);
	ck_assert_int_eq(seccomp_load(ctx), 0);
	seccomp_release(ctx);
}

static void deny_io_uring_setup(int err)
{
	deny_syscall(SCMP_SYS(io_uring_setup), err);
}

/* A loop that must be io_uring cannot be made: err, and no loop. */
static void forced_uring_fails(int err)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop = NULL;

	memset(&opts, 0, sizeof(opts));
	opts.size = sizeof(opts);
	opts.backend = "io_uring";
	ck_assert_int_eq(tide_loop_new(&opts, &loop), err);
	ck_assert_ptr_null(loop);
}

START_TEST(test_seccomp_eperm_falls_back)
{
	struct tide_loop *loop = NULL;
	const char *reason;

	deny_io_uring_setup(EPERM);
	ck_assert_int_eq(tide_loop_new(NULL, &loop), 0);
	ck_assert_str_eq(tide_loop_backend(loop), "epoll");
	reason = tide_loop_backend_reason(loop);
	ck_assert_ptr_nonnull(reason);
	ck_assert_msg(strstr(reason, "EPERM") != NULL, "reason: '%s'", reason);
	printf("seccomp fallback reason: %s\n", reason);
	loop_works(loop);
	ck_assert_int_eq(tide_loop_free(loop), 0);

	/* Forcing io_uring where it cannot start is an error, not a fallback. */
	forced_uring_fails(-EPERM);
	/* ... which says why: the filter, not only "Operation not permitted". */
	expect_new_error("io_uring was asked for (opts.backend=io_uring)");
	expect_new_error("seccomp filter");
	printf("forced io_uring under seccomp: %s\n", tide_loop_new_error());
}
END_TEST

START_TEST(test_seccomp_enosys_falls_back)
{
	struct tide_loop *loop = NULL;
	const char *reason;

	deny_io_uring_setup(ENOSYS);
	ck_assert_int_eq(tide_loop_new(NULL, &loop), 0);
	ck_assert_str_eq(tide_loop_backend(loop), "epoll");
	reason = tide_loop_backend_reason(loop);
	ck_assert_msg(strstr(reason, "ENOSYS") != NULL, "reason: '%s'", reason);
	loop_works(loop);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/*
 * Some seccomp profiles allow io_uring_setup but deny io_uring_enter, or
 * io_uring_register (the opcode probe is a register call): the ring is made
 * but cannot be driven. The loop must find out when it is created and run
 * on epoll, with the denied call in its reason, never be an io_uring loop
 * whose first wait fails.
 */
static void check_denied_call_falls_back(const char *call)
{
	struct tide_loop *loop = NULL;
	const char *reason;

	ck_assert_int_eq(tide_loop_new(NULL, &loop), 0);
	ck_assert_str_eq(tide_loop_backend(loop), "epoll");
	reason = tide_loop_backend_reason(loop);
	printf("%s denied: reason: %s\n", call, reason);
	ck_assert_msg(strstr(reason, call) != NULL && strstr(reason, "EPERM") != NULL,
		      "reason '%s' does not name %s and EPERM", reason, call);
	loop_works(loop);
	socket_echo(loop);
	ck_assert_int_eq(tide_loop_free(loop), 0);

	/* A forced io_uring fails, and says which call was denied. */
	forced_uring_fails(-EPERM);
	expect_new_error(call);
}

START_TEST(test_seccomp_enter_denied_falls_back)
{
	deny_syscall(SCMP_SYS(io_uring_enter), EPERM);
	check_denied_call_falls_back("io_uring_enter");
}
END_TEST

/*
 * An io_uring loop whose kernel refuses every io_uring_enter from some
 * point on with EAGAIN (a seccomp filter loaded after the loop was made):
 * the backend retries a refused enter after reaping, but not for ever. A
 * run that would wait returns the error instead of spinning, and the loop
 * can still be freed.
 */
START_TEST(test_enter_refused_for_good)
{
	struct tide_loop *loop;
	struct tide_loop_stats st;

	unsetenv("TIDE_FAULT_ENTER"); /* the kernel's refusals only */
	loop = new_loop("io_uring", NULL);
	loop_works(loop);
	deny_syscall(SCMP_SYS(io_uring_enter), EAGAIN);
	/* No limit on the wait: only the bound on refusals ends it. */
	ck_assert_int_eq(tide_loop_run_once(loop, -1), -EAGAIN);
	tt_stats(loop, &st);
	ck_assert_uint_eq(st.enter_faults, 0); /* the kernel's refusals, not ours */
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_seccomp_register_denied_falls_back)
{
	deny_syscall(SCMP_SYS(io_uring_register), EPERM);
	check_denied_call_falls_back("io_uring_register");
}
END_TEST
#endif

int main(void)
{
	struct tt_suite ts;
	const char *req = getenv("TIDE_TEST_REQUIRE_URING");
	TCase *tc;

	tt_suite_init(&ts, "backend", 60);
	uring_available = ts.tc[TT_URING] != NULL;
	tt_add(&ts, test_config_native);
	tt_add(&ts, test_ring_sizes);
	tt_add(&ts, test_fault_enter);
	tt_add(&ts, test_fault_enter_waits_are_whole);

	tc = tt_tcase(&ts, "choice");
	tcase_add_test(tc, test_forced_epoll);
	tcase_add_test(tc, test_env_backend);
	tcase_add_test(tc, test_bad_backend_name);
	tcase_add_test(tc, test_new_error_names_cause);
	tcase_add_test(tc, test_fault_enter_bad_values);
	/* tt_suite_init dropped the io_uring configurations if io_uring is missing. */
	if (ts.tc[TT_URING] || (req && strcmp(req, "1") == 0)) {
		tcase_add_test(tc, test_forced_uring);
		tcase_add_test(tc, test_auto_picks_uring);
		tcase_add_test(tc, test_disable_ops);
	} else {
		tt_skip(&ts, 3, "choice: forced io_uring, auto picks io_uring, disable_ops (io_uring is unavailable)");
	}

#ifdef HAVE_SECCOMP
	tc = tt_tcase(&ts, "seccomp");
	tcase_add_test(tc, test_seccomp_eperm_falls_back);
	tcase_add_test(tc, test_seccomp_enosys_falls_back);
	tcase_add_test(tc, test_seccomp_enter_denied_falls_back);
	tcase_add_test(tc, test_seccomp_register_denied_falls_back);
	if (ts.tc[TT_URING])
		tcase_add_test(tc, test_enter_refused_for_good);
	else
		tt_skip(&ts, 1, "seccomp: io_uring_enter refused for good (io_uring is unavailable)");
#else
	tt_skip(&ts, 5, "seccomp fallback tests: built without libseccomp");
#endif
	return tt_run(&ts);
}
