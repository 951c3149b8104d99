/* SPDX-License-Identifier: MIT */
/*
 * test/fork.c: a loop across fork(2), on every backend configuration. The
 * child shares the parent's epoll set, io_uring rings and sockets: it must
 * be refused the parent's loop (TIDE_EFORKED) so that it steals none of
 * the parent's completions, may run a loop of its own, and may free its
 * copy of the parent's loop without touching the kernel objects the parent
 * still uses.
 *
 * A child reports through its exit status, never through Check (its
 * assertions would reach the parent's Check runner): 0, or the number of
 * the step that went wrong.
 */
#include "config.h"
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct tide_loop *g_loop;

static void noop_cb(void *arg)
{
	(void)arg;
}

static void flag_cb(void *arg)
{
	*(bool *)arg = true;
}

static void stop_cb(void *arg)
{
	(void)arg;
	tide_loop_stop(g_loop);
}

static int64_t noop_job(void *arg)
{
	(void)arg;
	return 0;
}

/* Waits for the child and asserts it exited with 0. */
static void child_ok(pid_t pid)
{
	int st = 0;

	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st), "[%s] the child died (status %#x)", tt_cfg->name, st);
	ck_assert_msg(WEXITSTATUS(st) == 0, "[%s] the child failed at step %d", tt_cfg->name, WEXITSTATUS(st));
}

/* In the child: a loop of its own, of the same configuration, does I/O and
 * timers. Returns 0 or the step that failed. */
static int child_own_loop(void)
{
	struct tide_loop_opts opts;
	struct tide_loop *own;
	struct tide_future *f;
	bool fired = false;
	char c = 0;
	int p[2];

	tt_opts_init(&opts);
	if (tide_loop_new(&opts, &own) != 0)
		return 30;
	if (pipe2(p, O_CLOEXEC) < 0)
		return 31;
	if (tide_op_read(own, p[0], &c, 1, -1, &f) != 0)
		return 32;
	if (write(p[1], "c", 1) != 1)
		return 33;
	if (tide_loop_run_until_complete(own, f) != 0 || c != 'c')
		return 34;
	tide_future_unref(f);
	g_loop = own;
	if (tide_call_later(own, 0.01, flag_cb, &fired, NULL) != 0 ||
	    tide_call_later(own, 0.02, stop_cb, NULL, NULL) != 0 || tide_loop_run(own) != 0 || !fired)
		return 35;
	close(p[0]);
	close(p[1]);
	if (tide_loop_free(own) != 0)
		return 36;
	return 0;
}

/* In the child: every way to drive the parent's loop is refused at once. */
static int child_refused(struct tide_loop *loop, struct tide_future *pending)
{
	struct tide_future *f = NULL;
	char c;
	int err;

	if (tide_loop_run_once(loop, 0.1) != TIDE_EFORKED)
		return 10;
	if (tide_loop_run(loop) != TIDE_EFORKED)
		return 11;
	if (tide_loop_run_until_complete(loop, pending) != TIDE_EFORKED)
		return 12;
	if (tide_loop_shutdown(loop, 0) != TIDE_EFORKED)
		return 13;
	if (tide_op_read(loop, 0, &c, 1, -1, &f) != TIDE_EFORKED || f)
		return 14;
	if (tide_op_timeout(loop, 0, &f) != TIDE_EFORKED || f)
		return 15;
	if (tide_call_soon_threadsafe(loop, noop_cb, NULL) != TIDE_EFORKED)
		return 16;
	if (tide_run_in_executor(loop, NULL, noop_job, NULL, &f) != TIDE_EFORKED || f)
		return 17;
	if (strcmp(tide_strerror(TIDE_EFORKED), tide_strerror(TIDE_ERUNNING)) == 0)
		return 18;
	if ((err = child_own_loop()) != 0)
		return err;
	/* The child's copy of the parent's loop goes, ops in flight and all. */
	if (tide_loop_free(loop) != 0)
		return 19;
	return 0;
}

/*
 * The parent has ops in flight, one of them with its data already there
 * when it forks: the child is refused the loop (had it run an iteration,
 * it would have taken that completion: the shared CQ ring's entry, or
 * the readiness of the shared epoll set and the byte with it), runs its
 * own loop, frees its copy of the parent's, and exits. The parent then
 * gets every completion.
 */
START_TEST(test_fork_child_refused_parent_keeps_completions)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fa, *fb, *ft;
	bool later_ran = false;
	char ca = 0;
	int a[2], b[2];
	pid_t pid;

	tt_pipe(a, 0);
	tt_pipe(b, 0);
	ck_assert_int_eq(tide_op_read(loop, a[0], &ca, 1, -1, &fa), 0);
	ck_assert_int_eq(tide_op_poll(loop, b[0], POLLIN, &fb), 0);
	ck_assert_int_eq(tide_op_timeout(loop, 0.05, &ft), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.05, flag_cb, &later_ran, NULL), 0);
	/* The ops reach the kernel (the SQ is flushed, epoll registered). */
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	tt_write_all(a[1], "a", 1);
	pid = fork();
	if (pid == 0)
		_exit(child_refused(loop, fa));
	child_ok(pid);
	tt_write_all(b[1], "b", 1);
	tt_run_until_complete(loop, fa, 0);
	ck_assert_int_eq(tt_result(fa), 1);
	ck_assert_int_eq(ca, 'a');
	tt_run_until_complete(loop, fb, 0);
	ck_assert_int_eq(tt_result(fb) & POLLIN, POLLIN);
	tt_run_until_complete(loop, ft, 0);
	RUN_UNTIL(loop, later_ran);
	tide_future_unref(fa);
	tide_future_unref(fb);
	tide_future_unref(ft);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/*
 * A child that frees its copy of the parent's idle loop touches none of
 * the parent's kernel objects: a normal free would cancel the wake-up
 * read, which on epoll deletes the eventfd from the epoll set the two
 * share, and the parent would sleep through call_soon_threadsafe. Both
 * with fork() (the atfork handler tells) and with _Fork(), which runs no
 * handler (free compares the pid).
 */
static void free_in_child(pid_t (*forker)(void))
{
	struct tide_loop *loop = tt_loop_new();
	pid_t pid;

	/* The loop's own read on its eventfd reaches the kernel (a wait,
	 * however short, flushes the SQ). */
	ck_assert_int_ge(tide_loop_run_once(loop, 0.001), 0);
	pid = forker();
	if (pid == 0)
		_exit(tide_loop_free(loop) == 0 ? 0 : 40);
	child_ok(pid);
	tt_run_until_woken(loop, 20);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

START_TEST(test_fork_child_frees_loop)
{
	free_in_child(fork);
}
END_TEST

START_TEST(test_fork_without_handlers_child_frees_loop)
{
	free_in_child(_Fork);
}
END_TEST

/*
 * fork() from a callback: the child is inside the parent's tide_loop_run.
 * The callbacks of that iteration finish, then run returns TIDE_EFORKED
 * before the child could wait on the shared epoll set or ring (before
 * the fix it went on serving the loop: here until the timer below).
 */
static pid_t cb_pid = -1;

static void fork_cb(void *arg)
{
	(void)arg;
	cb_pid = fork();
	if (cb_pid != 0)
		tide_loop_stop(g_loop);
}

START_TEST(test_fork_in_callback)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_handle later;
	struct tide_future *ft;
	int r;

	g_loop = loop;
	ck_assert_int_eq(tide_call_soon(loop, fork_cb, NULL, NULL), 0);
	/* Without the check, the child's run would end here, with 0. */
	ck_assert_int_eq(tide_call_later(loop, 0.5, stop_cb, NULL, &later), 0);
	r = tide_loop_run(loop);
	if (cb_pid == 0) {
		int code = r == TIDE_EFORKED ? 0 : 50;

		if (!code && tide_loop_free(loop) != 0)
			code = 51;
		_exit(code);
	}
	ck_assert_int_eq(r, 0);
	child_ok(cb_pid);
	/* The parent's loop goes on. */
	tide_handle_cancel(&later);
	ck_assert_int_eq(tide_op_timeout(loop, 0.01, &ft), 0);
	tt_run_until_complete(loop, ft, 0);
	tide_future_unref(ft);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "fork", 60);
	tt_add(&ts, test_fork_child_refused_parent_keeps_completions);
	tt_add(&ts, test_fork_child_frees_loop);
	tt_add(&ts, test_fork_without_handlers_child_frees_loop);
	tt_add(&ts, test_fork_in_callback);
	return tt_run(&ts);
}
