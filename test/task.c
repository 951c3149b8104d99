/* SPDX-License-Identifier: MIT */
/*
 * test/task.c: tasks on every backend configuration, case by case as
 * CPython's test_tasks.py checks them: results and errors, awaiting done and
 * pending futures, sleep and yield, the current task, asyncio's cancellation
 * semantics (cancel in an await, handled cancels, cancel before start,
 * cancelling/uncancel counts, a cancel owed at return, cancel through an
 * awaited task), names, all_tasks, awaitable pipe I/O with cancellation that
 * never loses data; then 100,000 live tasks, a cancellation storm, and a
 * stack overflow reported by name in a child process.
 *
 * The hard part is the storm's bookkeeping: every task must finish exactly
 * once, and every byte written to the pipes must be read by a task or still
 * be in its pipe at the end, whatever the cancels raced with.
 */
#include "config.h"
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TT_ASAN 1
#endif
#endif

static struct tide_loop *g_loop;

/* An ordering log: the tests compare it against the expected sequence. */
static char order[256];
static size_t norder;

static void log_ev(char c)
{
	ck_assert_uint_lt(norder, sizeof(order) - 1);
	order[norder++] = c;
	order[norder] = '\0';
}

static void log_cb(void *arg)
{
	log_ev((char)(intptr_t)arg);
}

/* xorshift64*: deterministic, so a failure can be replayed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static struct tide_future *spawn(struct tide_loop *loop, tide_task_cb fn, void *arg)
{
	struct tide_future *t = NULL;
	int ret = tide_task_spawn(loop, fn, arg, NULL, &t);

	ck_assert_msg(ret == 0, "tide_task_spawn: %d (%s)", ret, tide_strerror(ret));
	ck_assert_ptr_nonnull(t);
	return t;
}

static struct tide_future *new_future(struct tide_loop *loop)
{
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_future_new(loop, &f), 0);
	return f;
}

/* Runs iterations without waiting until nothing is ready. */
static void run_idle(struct tide_loop *loop)
{
	for (int i = 0; i < 100; i++)
		if (tide_loop_run_once(loop, 0) == 0)
			return;
}

/* --------------------------------------------------- result and error -- */

static int body_runs;

static int64_t return_arg(void *arg)
{
	body_runs++;
	return (int64_t)(intptr_t)arg;
}

static int64_t sleep_then_42(void *arg)
{
	body_runs++;
	ck_assert_int_eq(tide_sleep(0.01), 0);
	return 42;
}

START_TEST(test_task_result)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = spawn(loop, sleep_then_42, NULL);

	ck_assert_int_eq(tide_future_is_task(t), 1);
	ck_assert_int_eq(tide_future_done(t), 0);
	/* asyncio: create_task schedules the first step; nothing runs yet. */
	ck_assert_int_eq(body_runs, 0);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(body_runs, 1);
	ck_assert_int_eq(tt_result(t), 42);
	ck_assert_int_eq(tide_future_cancelled(t), 0);
	/* Done already: run_until_complete answers at once. */
	ck_assert_int_eq(tide_loop_run_until_complete(loop, t), 0);
	tide_future_unref(t);
	/* A plain future is not a task. */
	struct tide_future *f = new_future(loop);
	ck_assert_int_eq(tide_future_is_task(f), 0);
	ck_assert_int_eq(tide_task_cancel(f), -EINVAL);
	ck_assert_int_eq(tide_task_cancelling(f), -EINVAL);
	ck_assert_ptr_null(tide_task_name(f));
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_task_error)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = spawn(loop, return_arg, (void *)(intptr_t)-EIO);

	tt_run_until_complete(loop, t, -EIO);
	ck_assert_int_eq(tide_future_error(t), -EIO);
	ck_assert_int_eq(tide_future_result(t, NULL, NULL), -EIO);
	ck_assert_int_eq(tide_future_cancelled(t), 0);
	tide_future_unref(t);
	/* Returning -ECANCELED makes the task cancelled, as raising CancelledError. */
	t = spawn(loop, return_arg, (void *)(intptr_t)-ECANCELED);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_future_unref(t);
	/* Zero is a result. */
	t = spawn(loop, return_arg, (void *)(intptr_t)0);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 0);
	tide_future_unref(t);
	ck_assert_int_eq(body_runs, 3);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_spawn_bad_args)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_task_opts opts = { .size = sizeof(opts), .stack_size = 8192 };
	struct tide_future *t = NULL;

	ck_assert_int_eq(tide_task_spawn(NULL, return_arg, NULL, NULL, &t), -EINVAL);
	ck_assert_int_eq(tide_task_spawn(loop, NULL, NULL, NULL, &t), -EINVAL);
	ck_assert_int_eq(tide_task_spawn(loop, return_arg, NULL, NULL, NULL), -EINVAL);
	/* Below the 16 KiB minimum. */
	ck_assert_int_eq(tide_task_spawn(loop, return_arg, NULL, &opts, &t), -EINVAL);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_task_spawn(loop, return_arg, NULL, NULL, &t), TIDE_ECLOSED);
	ck_assert_int_eq(body_runs, 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* print_sum awaits compute, a task awaiting a task. */
static int64_t compute(void *arg)
{
	intptr_t xy = (intptr_t)arg;

	ck_assert_int_eq(tide_sleep(0.001), 0);
	return (xy >> 8) + (xy & 0xff);
}

static int64_t print_sum(void *arg)
{
	struct tide_future *c = spawn(tide_future_loop(tide_current_task()), compute,
				      (void *)(intptr_t)((1 << 8) | 2));
	int64_t r = tide_await(c);

	tide_future_unref(c);
	return r * 10;
}

START_TEST(test_await_task)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = spawn(loop, print_sum, NULL);

	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 30);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------------ awaiting -- */

static struct tide_future *g_fut;

static int64_t await_done_future(void *arg)
{
	struct tide_future *f = new_future(tide_future_loop(tide_current_task()));
	int64_t r;

	/* Queued before the await: it only runs if the await suspends. */
	ck_assert_int_eq(tide_call_soon(tide_future_loop(f), log_cb, (void *)'c', NULL), 0);
	tide_future_set_result(f, 7, NULL);
	log_ev('a');
	r = tide_await(f);
	log_ev('b');
	ck_assert_int_eq(r, 7);
	/* An error is returned as is. */
	tide_future_unref(f);
	f = new_future(tide_future_loop(tide_current_task()));
	tide_future_set_error(f, -EPIPE);
	ck_assert_int_eq(tide_await(f), -EPIPE);
	tide_future_unref(f);
	return 0;
}

START_TEST(test_await_done_future_does_not_suspend)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = spawn(loop, await_done_future, NULL);

	tt_run_until_complete(loop, t, 0);
	run_idle(loop);
	ck_assert_str_eq(order, "abc");
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t await_g_fut(void *arg)
{
	int64_t r;

	log_ev('a');
	r = tide_await(g_fut);
	log_ev('b');
	return r;
}

START_TEST(test_await_pending_future_suspends)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_fut = new_future(loop);
	t = spawn(loop, await_g_fut, NULL);
	run_idle(loop);
	/* Parked in the await, and the loop has nothing left to do. */
	ck_assert_str_eq(order, "a");
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	ck_assert_int_eq(tide_call_soon(loop, log_cb, (void *)'s', NULL), 0);
	tide_future_set_result(g_fut, 99, NULL);
	tt_run_until_complete(loop, t, 0);
	ck_assert_str_eq(order, "asb");
	ck_assert_int_eq(tt_result(t), 99);
	tide_future_unref(t);
	tide_future_unref(g_fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_await_outside_task)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);
	char buf[4];
	int fds[2];

	tt_pipe(fds, 0);
	ck_assert_ptr_null(tide_current_task());
	ck_assert_int_eq(tide_await(f), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_sleep(0.001), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_yield(), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_read(fds[0], buf, sizeof(buf), -1), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_write(fds[1], buf, sizeof(buf), -1), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_poll(fds[0], POLLIN), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_future_done(f), 0);
	ck_assert_str_ne(tide_strerror(TIDE_ENOT_IN_TASK), "");
	tide_future_unref(f);
	close(fds[0]);
	close(fds[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t await_self(void *arg)
{
	return tide_await(tide_current_task()) == -EDEADLK ? 1 : 0;
}

START_TEST(test_await_self_deadlk)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = spawn(loop, await_self, NULL);

	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 1);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------ sleep and yield -- */

static int64_t sleeper_never_early(void *arg)
{
	static const double delays[] = { 0.0005, 0.001, 0.0037, 0.01, 0.0123, 0.025, 0.05 };

	for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
		uint64_t t0 = tt_mono_ns();
		double l0 = tide_loop_time(g_loop);
		uint64_t el;

		ck_assert_int_eq(tide_sleep(delays[i]), 0);
		el = tt_mono_ns() - t0;
		ck_assert_msg((double)el >= delays[i] * 1e9, "sleep(%.4f) returned after %.6f s",
			      delays[i], (double)el / 1e9);
		ck_assert(tide_loop_time(g_loop) - l0 >= delays[i] - 1e-9);
		/* Late is what a loaded machine does: only a hang is caught. */
		ck_assert_msg((double)el < delays[i] * 1e9 + (double)TT_HANG_NS, "sleep(%.4f) took %.6f s",
			      delays[i], (double)el / 1e9);
	}
	ck_assert_int_eq(tide_sleep(0.0 / 0.0), -EINVAL);
	return 0;
}

START_TEST(test_sleep_never_early)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_loop = loop;
	t = spawn(loop, sleeper_never_early, NULL);
	tt_run_until_complete(loop, t, 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* Two tasks that yield (or sleep(0), asyncio's yield) interleave, and a
 * callback queued meanwhile runs between their steps. */
static int64_t yielder(void *arg)
{
	char c = (char)(intptr_t)arg;

	for (int i = 0; i < 3; i++) {
		log_ev(c);
		ck_assert_int_eq(c == 'A' ? tide_yield() : tide_sleep(0), 0);
	}
	return 0;
}

START_TEST(test_yield_lets_others_run)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *a = spawn(loop, yielder, (void *)'A');
	struct tide_future *b = spawn(loop, yielder, (void *)'B');

	ck_assert_int_eq(tide_call_soon(loop, log_cb, (void *)'c', NULL), 0);
	/* Iteration 1: A's and B's first steps, then the callback. */
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 3);
	ck_assert_str_eq(order, "ABc");
	ck_assert_int_eq(tide_call_soon(loop, log_cb, (void *)'d', NULL), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 3);
	ck_assert_str_eq(order, "ABcABd");
	tt_run_until_complete(loop, b, 0);
	ck_assert_str_eq(order, "ABcABdAB");
	ck_assert_int_eq(tide_future_done(a), 1);
	tide_future_unref(a);
	tide_future_unref(b);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------------- current task -- */

static struct tide_future *seen_current[2];

static void current_in_callback(void *arg)
{
	seen_current[1] = tide_current_task();
	log_ev('x');
}

static int64_t whoami(void *arg)
{
	seen_current[0] = tide_current_task();
	ck_assert_int_eq(tide_call_soon(tide_future_loop(seen_current[0]), current_in_callback, NULL, NULL), 0);
	ck_assert_int_eq(tide_sleep(0.001), 0);
	/* Still itself after a suspension. */
	return tide_current_task() == seen_current[0];
}

START_TEST(test_current_task)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	ck_assert_ptr_null(tide_current_task());
	seen_current[1] = (struct tide_future *)&seen_current;
	t = spawn(loop, whoami, NULL);
	ck_assert_ptr_null(tide_current_task());
	tt_run_until_complete(loop, t, 0);
	ck_assert_ptr_eq(seen_current[0], t);
	ck_assert_str_eq(order, "x");
	ck_assert_ptr_null(seen_current[1]);
	ck_assert_int_eq(tt_result(t), 1);
	ck_assert_ptr_null(tide_current_task());
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------------ cancelling -- */

static int64_t await_g_fut_report(void *arg)
{
	int64_t r;

	log_ev('a');
	r = tide_await(g_fut);
	log_ev(r == -ECANCELED ? 'C' : 'r');
	return r;
}

START_TEST(test_cancel_in_await)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_fut = new_future(loop);
	t = spawn(loop, await_g_fut_report, NULL);
	run_idle(loop);
	ck_assert_str_eq(order, "a");
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_task_cancelling(t), 1);
	/* asyncio: cancelling the task cancels the future it waits for. */
	ck_assert_int_eq(tide_future_cancelled(g_fut), 1);
	ck_assert_int_eq(tide_future_done(t), 0);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_str_eq(order, "aC");
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_future_unref(t);
	tide_future_unref(g_fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t cancel_in_sleep(void *arg)
{
	uint64_t t0 = tt_mono_ns();
	int r = tide_sleep(3600);

	ck_assert_int_eq(r, -ECANCELED);
	ck_assert_uint_lt(tt_mono_ns() - t0, TT_HANG_NS);
	return r;
}

START_TEST(test_cancel_in_sleep)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = spawn(loop, cancel_in_sleep, NULL);

	ck_assert_int_eq(tide_loop_run_once(loop, 0.01), 1);
	ck_assert_int_eq(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_future_unref(t);
	/* The sleep's timer went with it. */
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* The task catches the cancellation and goes on: the next await works. */
static int64_t handle_cancel_and_go_on(void *arg)
{
	struct tide_future *f = new_future(tide_future_loop(tide_current_task()));
	int64_t r = tide_await(f);

	ck_assert_int_eq(r, -ECANCELED);
	tide_future_unref(f);
	log_ev('h');
	ck_assert_int_eq(tide_sleep(0.001), 0);
	ck_assert_int_eq(tide_yield(), 0);
	f = new_future(tide_future_loop(tide_current_task()));
	tide_future_set_result(f, 5, NULL);
	r = tide_await(f);
	tide_future_unref(f);
	log_ev('e');
	return r;
}

START_TEST(test_cancel_handled_goes_on)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = spawn(loop, handle_cancel_and_go_on, NULL);

	run_idle(loop);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_run_until_complete(loop, t, 0);
	ck_assert_str_eq(order, "he");
	ck_assert_int_eq(tt_result(t), 5);
	ck_assert_int_eq(tide_future_cancelled(t), 0);
	/* asyncio: the request count stays until uncancel() takes it back. */
	ck_assert_int_eq(tide_task_cancelling(t), 1);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_cancel_before_start)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = spawn(loop, return_arg, (void *)(intptr_t)1);

	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_task_cancelling(t), 1);
	ck_assert_int_eq(tide_future_done(t), 0);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(body_runs, 0);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_future_unref(t);
	/* The same through tide_future_cancel. */
	t = spawn(loop, return_arg, (void *)(intptr_t)1);
	ck_assert_int_eq(tide_future_cancel(t), 1);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(body_runs, 0);
	tide_future_unref(t);
	/* Cancelled and uncancelled back to zero before it starts: it runs
	 * (asyncio 3.13: uncancel() to zero drops the owed cancellation). */
	t = spawn(loop, return_arg, (void *)(intptr_t)3);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_task_uncancel(t), 0);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(body_runs, 1);
	ck_assert_int_eq(tt_result(t), 3);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t cancel_twice_body(void *arg)
{
	struct tide_future *self = tide_current_task();
	int64_t r = tide_await(g_fut);

	ck_assert_int_eq(r, -ECANCELED);
	/* Two requests were made, main took one back: one is left. */
	ck_assert_int_eq(tide_task_cancelling(self), 1);
	/* Handle it as asyncio.timeout does: uncancel, then go on. */
	ck_assert_int_eq(tide_task_uncancel(self), 0);
	ck_assert_int_eq(tide_task_uncancel(self), 0);
	ck_assert_int_eq(tide_task_cancelling(self), 0);
	ck_assert_int_eq(tide_sleep(0.001), 0);
	return 11;
}

START_TEST(test_cancel_twice_counts)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_fut = new_future(loop);
	t = spawn(loop, cancel_twice_body, NULL);
	ck_assert_int_eq(tide_task_cancelling(t), 0);
	run_idle(loop);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_task_cancelling(t), 2);
	ck_assert_int_eq(tide_task_uncancel(t), 1);
	ck_assert_int_eq(tide_task_cancelling(t), 1);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 11);
	ck_assert_int_eq(tide_task_cancelling(t), 0);
	tide_future_unref(t);
	tide_future_unref(g_fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* A cancellation owed when the body returns wins (asyncio's __step). */
static int64_t cancel_self_then_return(void *arg)
{
	struct tide_future *self = tide_current_task();

	ck_assert_int_eq(tide_task_cancel(self), 1);
	ck_assert_int_eq(tide_task_cancelling(self), 1);
	log_ev('r');
	return 7;
}

static int64_t cancel_self_then_await(void *arg)
{
	struct tide_future *self = tide_current_task();
	struct tide_future *f = new_future(tide_future_loop(self));
	int64_t r;

	tide_future_set_result(f, 1, NULL);
	ck_assert_int_eq(tide_task_cancel(self), 1);
	/* Awaiting a done future does not suspend, so (as in asyncio) it
	 * returns the outcome and the cancellation stays owed... */
	r = tide_await(f);
	ck_assert_int_eq(r, 1);
	/* ...until the next suspension, which gets it once. */
	ck_assert_int_eq(tide_yield(), -ECANCELED);
	ck_assert_int_eq(tide_yield(), 0);
	tide_future_unref(f);
	return 8;
}

/* Cancelled by another task while ready to resume (not parked): the owed
 * cancellation comes at the next await. */
static int64_t yield_twice(void *arg)
{
	ck_assert_int_eq(tide_yield(), 0);
	log_ev('y');
	ck_assert_int_eq(tide_yield(), -ECANCELED);
	log_ev('Y');
	return 9;
}

static int64_t cancel_other(void *arg)
{
	struct tide_future *other = arg;

	ck_assert_int_eq(tide_yield(), 0);
	log_ev('k');
	ck_assert_int_eq(tide_task_cancel(other), 1);
	return 0;
}

START_TEST(test_cancel_owed_at_return)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = spawn(loop, cancel_self_then_return, NULL), *u;

	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_str_eq(order, "r");
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_future_unref(t);

	t = spawn(loop, cancel_self_then_await, NULL);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 8);
	tide_future_unref(t);

	norder = 0;
	t = spawn(loop, yield_twice, NULL);
	u = spawn(loop, cancel_other, t);
	tt_run_until_complete(loop, t, 0);
	/* t's second yield is queued when u cancels it: that yield returns
	 * -ECANCELED and t goes on. */
	ck_assert_str_eq(order, "ykY");
	ck_assert_int_eq(tt_result(t), 9);
	tt_run_until_complete(loop, u, 0);
	tide_future_unref(t);
	tide_future_unref(u);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* Cancelling a task that awaits another task cancels the inner one. */
static int inner_saw;

static int64_t inner_sleeper(void *arg)
{
	int r = tide_sleep(30);

	inner_saw = r;
	return r;
}

static int64_t outer_awaiter(void *arg)
{
	struct tide_future *inner = arg;

	return tide_await(inner);
}

START_TEST(test_cancel_propagates_to_awaited_task)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *inner = spawn(loop, inner_sleeper, NULL);
	struct tide_future *outer = spawn(loop, outer_awaiter, inner);
	struct tide_future *all[4];

	run_idle(loop);
	ck_assert_uint_eq(tide_all_tasks(loop, all, 4), 2);
	ck_assert_int_eq(tide_task_cancel(outer), 1);
	ck_assert_int_eq(tide_task_cancelling(outer), 1);
	ck_assert_int_eq(tide_task_cancelling(inner), 1);
	tt_run_until_complete(loop, outer, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(outer), 1);
	ck_assert_int_eq(tide_future_cancelled(inner), 1);
	ck_assert_int_eq(inner_saw, -ECANCELED);
	tide_future_unref(inner);
	tide_future_unref(outer);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_future_cancel_is_task_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_fut = new_future(loop);
	t = spawn(loop, await_g_fut_report, NULL);
	run_idle(loop);
	ck_assert_int_eq(tide_future_cancel(t), 1);
	ck_assert_int_eq(tide_task_cancelling(t), 1);
	/* A request, not a completion: the body sees it first. */
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(tide_future_cancel(t), 1);
	ck_assert_int_eq(tide_task_cancelling(t), 2);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_str_eq(order, "aC");
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_future_unref(t);
	tide_future_unref(g_fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_cancel_done_task)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = spawn(loop, return_arg, (void *)(intptr_t)4);

	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tide_task_cancel(t), 0);
	ck_assert_int_eq(tide_future_cancel(t), 0);
	ck_assert_int_eq(tide_task_cancelling(t), 0);
	ck_assert_int_eq(tide_future_cancelled(t), 0);
	ck_assert_int_eq(tt_result(t), 4);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ---------------------------------------------------- names, all_tasks -- */

static int64_t name_in_body(void *arg)
{
	return strcmp(tide_task_name(tide_current_task()), "renamed") == 0;
}

START_TEST(test_task_names)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *a = spawn(loop, return_arg, NULL);
	struct tide_future *b = spawn(loop, return_arg, NULL);
	struct tide_future *c;
	struct tide_task_opts opts = { .size = sizeof(opts) };
	char buf[32];
	long na, nb;

	/* Task-N, N counting up. */
	ck_assert_int_eq(strncmp(tide_task_name(a), "Task-", 5), 0);
	ck_assert_int_eq(strncmp(tide_task_name(b), "Task-", 5), 0);
	na = strtol(tide_task_name(a) + 5, NULL, 10);
	nb = strtol(tide_task_name(b) + 5, NULL, 10);
	ck_assert_int_ge(na, 1);
	ck_assert_int_eq(nb, na + 1);
	snprintf(buf, sizeof(buf), "Task-%ld", na);
	ck_assert_str_eq(tide_task_name(a), buf);
	/* set_name copies. */
	strcpy(buf, "first");
	ck_assert_int_eq(tide_task_set_name(a, buf), 0);
	strcpy(buf, "XXXXX");
	ck_assert_str_eq(tide_task_name(a), "first");
	ck_assert_int_eq(tide_task_set_name(a, "second"), 0);
	ck_assert_str_eq(tide_task_name(a), "second");
	ck_assert_int_eq(tide_task_set_name(a, NULL), -EINVAL);
	ck_assert_int_eq(tide_task_set_name(NULL, "x"), -EINVAL);
	/* opts.name is copied too. */
	strcpy(buf, "worker-7");
	opts.name = buf;
	ck_assert_int_eq(tide_task_spawn(loop, name_in_body, NULL, &opts, &c), 0);
	strcpy(buf, "XXXXXXXX");
	ck_assert_str_eq(tide_task_name(c), "worker-7");
	ck_assert_int_eq(tide_task_set_name(c, "renamed"), 0);
	/* The name outlives the body. */
	tt_run_until_complete(loop, c, 0);
	ck_assert_int_eq(tt_result(c), 1);
	ck_assert_str_eq(tide_task_name(c), "renamed");
	tt_run_until_complete(loop, b, 0);
	ck_assert_str_eq(tide_task_name(a), "second");
	tide_future_unref(a);
	tide_future_unref(b);
	tide_future_unref(c);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_all_tasks)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t[5], *got[8];
	int seen;

	g_fut = new_future(loop);
	ck_assert_uint_eq(tide_all_tasks(loop, NULL, 0), 0);
	for (int i = 0; i < 5; i++)
		t[i] = spawn(loop, await_g_fut, NULL);
	/* Spawned, not started yet: alive all the same. */
	ck_assert_uint_eq(tide_all_tasks(loop, NULL, 0), 5);
	run_idle(loop);
	ck_assert_uint_eq(tide_all_tasks(loop, got, 8), 5);
	seen = 0;
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 5; j++)
			if (got[j] == t[i])
				seen |= 1 << i;
	ck_assert_int_eq(seen, 0x1f);
	/* cap limits what is written, not the count. */
	got[2] = NULL;
	ck_assert_uint_eq(tide_all_tasks(loop, got, 2), 5);
	ck_assert_ptr_null(got[2]);
	ck_assert_int_eq(tide_task_cancel(t[3]), 1);
	tt_run_until_complete(loop, t[3], -ECANCELED);
	ck_assert_uint_eq(tide_all_tasks(loop, NULL, 0), 0); /* g_fut was cancelled: all woke */
	for (int i = 0; i < 5; i++) {
		tt_run_until_complete(loop, t[i], -ECANCELED);
		tide_future_unref(t[i]);
	}
	tide_future_unref(g_fut);
	/* Now the other way: one task ends, the rest stay. */
	g_fut = new_future(loop);
	for (int i = 0; i < 3; i++)
		t[i] = spawn(loop, await_g_fut, NULL);
	t[3] = spawn(loop, return_arg, NULL);
	tt_run_until_complete(loop, t[3], 0);
	ck_assert_uint_eq(tide_all_tasks(loop, NULL, 0), 3);
	tide_future_set_result(g_fut, 1, NULL);
	for (int i = 0; i < 3; i++)
		tt_run_until_complete(loop, t[i], 0);
	ck_assert_uint_eq(tide_all_tasks(loop, NULL, 0), 0);
	for (int i = 0; i < 4; i++)
		tide_future_unref(t[i]);
	tide_future_unref(g_fut);
	ck_assert_int_eq(tide_all_tasks(NULL, NULL, 0), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------ awaitable I/O -- */

static int pfd[2];

static int64_t pipe_writer(void *arg)
{
	const char *msg = "hello, tide";
	ssize_t n = tide_write(pfd[1], msg, strlen(msg), -1);

	ck_assert_int_eq(n, (ssize_t)strlen(msg));
	ck_assert_int_eq(tide_sleep(0.005), 0);
	n = tide_write(pfd[1], "!", 1, -1);
	ck_assert_int_eq(n, 1);
	close(pfd[1]);
	return 0;
}

static int64_t pipe_reader(void *arg)
{
	char buf[64];
	size_t got = 0;
	ssize_t n;

	ck_assert_int_eq(tide_poll(pfd[0], POLLIN) & POLLIN, POLLIN);
	while ((n = tide_read(pfd[0], buf + got, sizeof(buf) - 1 - got, -1)) > 0)
		got += (size_t)n;
	ck_assert_int_eq(n, 0); /* EOF */
	buf[got] = '\0';
	ck_assert_str_eq(buf, "hello, tide!");
	/* A bad fd is an error, not a crash. */
	ck_assert_int_eq(tide_read(-1, buf, 1, -1), -EBADF);
	return (int64_t)got;
}

START_TEST(test_read_write_pipe)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *r, *w;

	tt_pipe(pfd, 0);
	r = spawn(loop, pipe_reader, NULL);
	w = spawn(loop, pipe_writer, NULL);
	tt_run_until_complete(loop, r, 0);
	ck_assert_int_eq(tt_result(r), 12);
	tt_run_until_complete(loop, w, 0);
	tide_future_unref(r);
	tide_future_unref(w);
	close(pfd[0]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static ssize_t read_ret, read_ret2;
static char read_buf[64];

static int64_t blocked_reader(void *arg)
{
	read_ret = tide_read(pfd[0], read_buf, sizeof(read_buf), -1);
	log_ev('r');
	/* The next await delivers a cancellation still owed. */
	read_ret2 = tide_sleep(0.001);
	return read_ret < 0 ? read_ret : read_ret2;
}

START_TEST(test_read_cancelled)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	tt_pipe(pfd, 0);
	t = spawn(loop, blocked_reader, NULL);
	run_idle(loop);
	ck_assert_int_eq(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(read_ret, -ECANCELED);
	/* The cancellation was delivered once: the next await is ordinary. */
	ck_assert_int_eq(read_ret2, 0);
	tide_future_unref(t);
	/* The pipe is intact: a fresh read gets what is written now. */
	tt_write_all(pfd[1], "x", 1);
	ck_assert_int_eq(read(pfd[0], read_buf, 1), 1);
	close(pfd[0]);
	close(pfd[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/*
 * The data raced the cancel: written to the pipe, then the task cancelled in
 * the same iteration. The read's data is never lost: it comes back from
 * tide_read (and the cancellation at the next await), or, where the backend
 * could still withdraw the read before it took anything (readiness paths),
 * tide_read says -ECANCELED and the bytes are still in the pipe.
 */
START_TEST(test_read_cancel_races_data)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;
	int avail = -1;

	tt_pipe(pfd, 0);
	read_ret2 = 12345;
	t = spawn(loop, blocked_reader, NULL);
	run_idle(loop);
	ck_assert_int_eq(tide_loop_run_once(loop, 0.01), 0);
	tt_write_all(pfd[1], "racing", 6);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	ck_assert_int_eq(ioctl(pfd[0], FIONREAD, &avail), 0);
	if (read_ret == 6) {
		ck_assert_int_eq(memcmp(read_buf, "racing", 6), 0);
		ck_assert_int_eq(avail, 0);
		/* The cancellation came at the next await. */
		ck_assert_int_eq(read_ret2, -ECANCELED);
		printf("%s: read cancel raced data: tide_read returned the 6 bytes, "
		       "the next await -ECANCELED\n", tt_cfg->name);
	} else {
		ck_assert_int_eq(read_ret, -ECANCELED);
		ck_assert_int_eq(avail, 6);
		ck_assert_int_eq(read_ret2, 0);
		printf("%s: read cancel raced data: the read was withdrawn, the 6 bytes "
		       "are still in the pipe\n", tt_cfg->name);
	}
	fflush(stdout);
	tide_future_unref(t);
	close(pfd[0]);
	close(pfd[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/*
 * The read completed before the cancel was processed: the op's future is
 * done and the task's wake-up queued when a callback, queued ahead of it,
 * cancels the task. tide_read returns the data on every backend; the
 * cancellation comes at the next await.
 */
static struct tide_future *g_task;

static void cancel_g_task(void *arg)
{
	ck_assert_int_eq(tide_task_cancel(g_task), 1);
	log_ev('k');
}

START_TEST(test_read_done_then_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	int avail = -1;

	tt_pipe(pfd, 0);
	read_ret2 = 12345;
	g_task = spawn(loop, blocked_reader, NULL);
	run_idle(loop);
	ck_assert_int_eq(tide_loop_run_once(loop, 0.01), 0);
	tt_write_all(pfd[1], "racing", 6);
	/* Queued before the read's completion is reaped in the next iteration. */
	ck_assert_int_eq(tide_call_soon(loop, cancel_g_task, NULL, NULL), 0);
	tt_run_until_complete(loop, g_task, -ECANCELED);
	ck_assert_str_eq(order, "kr");
	ck_assert_int_eq(read_ret, 6);
	ck_assert_int_eq(memcmp(read_buf, "racing", 6), 0);
	ck_assert_int_eq(read_ret2, -ECANCELED);
	ck_assert_int_eq(ioctl(pfd[0], FIONREAD, &avail), 0);
	ck_assert_int_eq(avail, 0);
	tide_future_unref(g_task);
	close(pfd[0]);
	close(pfd[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/*
 * A task that already owes a cancellation when it calls tide_read or
 * tide_write gets -ECANCELED, as asyncio throws CancelledError in before the
 * next operation starts: no op may be left running on the task's buffer,
 * nothing is written, and data written later stays in the pipe.
 */
static ssize_t owed_read, owed_write;
static int wpfd[2]; /* the write's own pipe */

static int64_t io_with_owed_cancel(void *arg)
{
	char buf[16] = "written?";

	ck_assert_int_eq(tide_task_cancel(tide_current_task()), 1);
	owed_write = tide_write(wpfd[1], buf, 8, -1);
	ck_assert_int_eq(tide_task_cancel(tide_current_task()), 1);
	owed_read = tide_read(pfd[0], buf, sizeof(buf), -1);
	return 0;
}

START_TEST(test_io_with_owed_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;
	int avail = -1;

	tt_pipe(pfd, 0);
	tt_pipe(wpfd, 0);
	t = spawn(loop, io_with_owed_cancel, NULL);
	/* Each cancellation was delivered by one call, so the body returned 0. */
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(owed_write, -ECANCELED);
	ck_assert_int_eq(owed_read, -ECANCELED);
	run_idle(loop);
	ck_assert_int_eq(ioctl(wpfd[0], FIONREAD, &avail), 0);
	ck_assert_msg(avail == 0, "tide_write said -ECANCELED but %d bytes were written", avail);
	tt_write_all(pfd[1], "hello", 5);
	for (int i = 0; i < 5; i++)
		tide_loop_run_once(loop, 0.002);
	ck_assert_int_eq(ioctl(pfd[0], FIONREAD, &avail), 0);
	ck_assert_msg(avail == 5, "data lost: an op left over from tide_read took %d of 5 bytes",
		      5 - avail);
	tide_future_unref(t);
	close(pfd[0]);
	close(pfd[1]);
	close(wpfd[0]);
	close(wpfd[1]);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------------- 100k tasks -- */

#define MANY 100000
#define MAP_COUNT_WANTED 262144L

static long many_started, many_woken;

static int64_t many_body(void *arg)
{
	int64_t r;

	many_started++;
	r = tide_await(g_fut);
	if (r == 1)
		many_woken++;
	return (int64_t)(intptr_t)arg;
}

static long read_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* 0 when vm.max_map_count allows MANY stacks (raised if need be), else -1. */
static int ensure_map_count(void)
{
	long have = read_map_count();
	FILE *f;

	if (have >= 2L * MANY + 20000)
		return 0;
	if (geteuid() != 0)
		return -1;
	f = fopen("/proc/sys/vm/max_map_count", "w");
	if (!f)
		return -1;
	fprintf(f, "%ld\n", MAP_COUNT_WANTED);
	if (fclose(f) != 0 || read_map_count() < MAP_COUNT_WANTED)
		return -1;
	printf("raised vm.max_map_count from %ld to %ld for 100k tasks "
	       "(each task stack is 2 mappings)\n", have, MAP_COUNT_WANTED);
	fflush(stdout);
	return 0;
}

START_TEST(test_100k_tasks)
{
	struct tide_task_opts opts = { .size = sizeof(opts), .stack_size = 16384 };
	struct tide_loop *loop;
	struct tide_future **t;
	uint64_t t0;

	/* Valgrind's own address-space manager caps the mappings far lower. */
	if (getenv("TIDE_TEST_UNDER_VALGRIND")) {
		printf("SKIP 100k tasks: under valgrind\n");
		fflush(stdout);
		return;
	}
	if (ensure_map_count() < 0) {
		printf("SKIP 100k tasks: vm.max_map_count too low\n");
		fflush(stdout);
		return;
	}
	loop = tt_loop_new();
	g_fut = new_future(loop);
	t = calloc(MANY, sizeof(*t));
	ck_assert_ptr_nonnull(t);
	t0 = tt_mono_ns();
	for (long i = 0; i < MANY; i++) {
		int ret = tide_task_spawn(loop, many_body, (void *)(intptr_t)i, &opts, &t[i]);

		ck_assert_msg(ret == 0, "spawn %ld: %s", i, tide_strerror(ret));
	}
	ck_assert_uint_eq(tide_all_tasks(loop, NULL, 0), MANY);
	run_idle(loop);
	/* All alive at once, each parked on the one event. */
	ck_assert_int_eq(many_started, MANY);
	ck_assert_int_eq(many_woken, 0);
	ck_assert_uint_eq(tide_all_tasks(loop, NULL, 0), MANY);
	tide_future_set_result(g_fut, 1, NULL);
	tt_run_until_complete(loop, t[MANY - 1], 0);
	run_idle(loop);
	ck_assert_int_eq(many_woken, MANY);
	ck_assert_uint_eq(tide_all_tasks(loop, NULL, 0), 0);
	for (long i = 0; i < MANY; i++) {
		ck_assert_int_eq(tt_result(t[i]), i);
		tide_future_unref(t[i]);
	}
	printf("%s: 100k tasks spawned, parked and finished in %.2f s\n", tt_cfg->name,
	       (double)(tt_mono_ns() - t0) / 1e9);
	fflush(stdout);
	free(t);
	tide_future_unref(g_fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------- cancellation storm -- */

#define STORM_TASKS 2000
#define STORM_PIPES 32
#define STORM_ROUNDS 6

enum storm_kind { SK_SLEEP, SK_READ, SK_FUTURE, SK_KINDS };

struct storm_task {
	struct tide_future *task;
	struct tide_future *fut;  /* SK_FUTURE: what it awaits now (the task's own) */
	int kind;
	int handles_cancel;       /* swallows the first cancellation and goes on */
	int body_ends;            /* the body returned (must end at 1) */
	int done_cbs;             /* its done callback ran (must end at 1) */
	int cancels_seen;
};

static struct storm_task storm[STORM_TASKS];
static int storm_pipes[STORM_PIPES][2];
static uint64_t storm_written, storm_read;

static void storm_done(struct tide_future *f, void *arg)
{
	struct storm_task *s = arg;

	ck_assert_ptr_eq(f, s->task);
	s->done_cbs++;
}

static int64_t storm_body(void *arg)
{
	struct storm_task *s = arg;
	int idx = (int)(s - storm);
	int64_t r = 0;

	for (int round = 0; round < STORM_ROUNDS; round++) {
		char buf[16];

		switch (s->kind) {
		case SK_SLEEP:
			r = tide_sleep((double)(1 + idx % 50) / 1000.0 * (round & 1 ? 1 : 20));
			break;
		case SK_READ:
			r = tide_read(storm_pipes[idx % STORM_PIPES][0], buf, 1 + idx % sizeof(buf), -1);
			if (r > 0)
				storm_read += (uint64_t)r;
			break;
		default:
			r = tide_await(s->fut);
			/* Main swaps in a new future after setting this one. */
			break;
		}
		if (r == -ECANCELED) {
			s->cancels_seen++;
			if (!s->handles_cancel || s->cancels_seen > 1)
				break;
		} else if (r < 0) {
			ck_abort_msg("storm task %d: unexpected %lld", idx, (long long)r);
		}
	}
	s->body_ends++;
	return r == -ECANCELED ? r : idx;
}

START_TEST(test_cancel_storm)
{
	struct tide_loop *loop = tt_loop_new();
	int iterations = 0, cancels = 0, alive;

	g_loop = loop;
	for (int i = 0; i < STORM_PIPES; i++)
		tt_pipe(storm_pipes[i], 0);
	for (int i = 0; i < STORM_TASKS; i++) {
		struct storm_task *s = &storm[i];

		s->kind = (int)(rng() % SK_KINDS);
		s->handles_cancel = rng() % 4 == 0;
		if (s->kind == SK_FUTURE)
			s->fut = new_future(loop);
		s->task = spawn(loop, storm_body, s);
		ck_assert_int_eq(tide_future_add_done_callback(s->task, storm_done, s), 0);
	}
	/* Random cancels, pipe writes and future results while the loop runs. */
	while ((alive = (int)tide_all_tasks(loop, NULL, 0)) > 0) {
		int rc = tide_loop_run_once(loop, 0.001);

		ck_assert_int_ge(rc, 0);
		iterations++;
		for (int k = 0; k < 40; k++) {
			struct storm_task *s = &storm[rng() % STORM_TASKS];
			int r;

			switch (rng() % 4) {
			case 0:
				r = tide_task_cancel(s->task);
				ck_assert(r == 0 || r == 1);
				ck_assert_int_eq(r, !tide_future_done(s->task));
				cancels += r;
				break;
			case 1: {
				int p = (int)(rng() % STORM_PIPES);
				size_t n = 1 + rng() % 8;

				tt_write_all(storm_pipes[p][1], "abcdefgh", n);
				storm_written += n;
				break;
			}
			default:
				if (s->kind == SK_FUTURE && !tide_future_done(s->fut)) {
					tide_future_set_result(s->fut, 1, NULL);
					/* A later await waits on a fresh future. */
					if (!tide_future_done(s->task)) {
						tide_future_unref(s->fut);
						s->fut = new_future(loop);
					}
				}
				break;
			}
		}
		/* After a while, cancel everything left so the storm ends. */
		if (iterations > 300)
			for (int i = 0; i < STORM_TASKS; i++)
				cancels += tide_task_cancel(storm[i].task);
		ck_assert_int_lt(iterations, 20000);
	}
	run_idle(loop);
	for (int i = 0; i < STORM_TASKS; i++) {
		struct storm_task *s = &storm[i];
		int err;

		ck_assert_int_eq(tide_future_done(s->task), 1);
		ck_assert_msg(s->body_ends == 1, "task %d: body ended %d times", i, s->body_ends);
		ck_assert_msg(s->done_cbs == 1, "task %d: done callback ran %d times", i, s->done_cbs);
		err = tide_future_error(s->task);
		if (err == -ECANCELED)
			ck_assert_int_eq(tide_future_cancelled(s->task), 1);
		else
			ck_assert_int_eq(tt_result(s->task), i);
		ck_assert(err == 0 || err == -ECANCELED);
		tide_future_unref(s->task);
		if (s->fut)
			tide_future_unref(s->fut);
	}
	/* Not a byte lost: read by a task, or still in its pipe. */
	for (int i = 0; i < STORM_PIPES; i++) {
		int avail = 0;

		ck_assert_int_eq(ioctl(storm_pipes[i][0], FIONREAD, &avail), 0);
		storm_read += (uint64_t)avail;
		close(storm_pipes[i][0]);
		close(storm_pipes[i][1]);
	}
	ck_assert_uint_eq(storm_read, storm_written);
	ck_assert_int_gt(cancels, 0);
	printf("%s: cancel storm: %d tasks, %d cancel requests, %d iterations, %llu bytes\n",
	       tt_cfg->name, STORM_TASKS, cancels, iterations, (unsigned long long)storm_written);
	fflush(stdout);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------ stack overflow -- */

static volatile int recursion_limit = 1 << 30;

static int dive(int depth)
{
	volatile char big[2048];

	memset((char *)big, depth & 0x7f, sizeof(big));
	if (depth >= recursion_limit)
		return big[depth % sizeof(big)];
	return dive(depth + 1) + big[(depth * 7) % sizeof(big)];
}

static int64_t overflow_body(void *arg)
{
	return dive(0);
}

/*
 * One frame bigger than a 4 KiB guard page (48 KiB of locals, on a 16 KiB
 * stack), touched at its far end first, as a compiler without stack-clash
 * probes does: it must land in the guard (64 KiB by default), not step
 * over it onto a neighbouring mapping.
 */
static int64_t big_frame_body(void *arg)
{
	volatile char big[48 * 1024];

	big[0] = 1;
	big[sizeof(big) - 1] = 2;
	return big[0] + big[sizeof(big) - 1];
}

/* The child: a loop, one task that overflows its 16 KiB stack. */
static void overflow_child(tide_task_cb body, const char *name)
{
	struct tide_task_opts topts = { .size = sizeof(topts), .name = name, .stack_size = 16384 };
	struct tide_loop_opts opts;
	struct tide_loop *loop = NULL;
	struct tide_future *t = NULL;

	alarm(30);
	tt_opts_init(&opts);
	if (tide_loop_new(&opts, &loop) != 0)
		_exit(3);
	if (tide_task_spawn(loop, body, NULL, &topts, &t) != 0)
		_exit(4);
	tide_loop_run_until_complete(loop, t);
	_exit(5); /* the task survived: nothing reported */
}

/* Runs body in a child; the overflow must be reported by name, then abort. */
static void expect_overflow_report(tide_task_cb body, const char *name)
{
	int errp[2], status = 0;
	char out[8192];
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	tt_pipe(errp, 0);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(errp[0]);
		dup2(errp[1], STDERR_FILENO);
		overflow_child(body, name);
	}
	close(errp[1]);
	while (got < sizeof(out) - 1 && (n = read(errp[0], out + got, sizeof(out) - 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	out[got] = '\0';
	close(errp[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (strstr(out, "overflowed")) {
		/* tide's own report: by name, then abort. */
		ck_assert_msg(strstr(out, name) != NULL, "no task name in: %s", out);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
			      "status %#x, stderr: %s", status, out);
	} else {
#ifdef TT_ASAN
		/* ASan's handler may take the fault first and report it itself. */
		ck_assert_msg(strstr(out, "AddressSanitizer") &&
				      (strstr(out, "stack-overflow") || strstr(out, "SEGV")),
			      "status %#x, stderr: %s", status, out);
		ck_assert(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
		printf("%s: stack overflow reported by ASan\n", tt_cfg->name);
		fflush(stdout);
#else
		ck_abort_msg("no overflow report; status %#x, stderr: %s", status, out);
#endif
	}
}

START_TEST(test_stack_overflow_reported)
{
	expect_overflow_report(overflow_body, "deep-diver");
}
END_TEST

START_TEST(test_big_frame_hits_the_guard)
{
	expect_overflow_report(big_frame_body, "big-frame");
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "task", 240);
	tt_add(&ts, test_task_result);
	tt_add(&ts, test_task_error);
	tt_add(&ts, test_spawn_bad_args);
	tt_add(&ts, test_await_task);
	tt_add(&ts, test_await_done_future_does_not_suspend);
	tt_add(&ts, test_await_pending_future_suspends);
	tt_add(&ts, test_await_outside_task);
	tt_add(&ts, test_await_self_deadlk);
	tt_add(&ts, test_sleep_never_early);
	tt_add(&ts, test_yield_lets_others_run);
	tt_add(&ts, test_current_task);
	tt_add(&ts, test_cancel_in_await);
	tt_add(&ts, test_cancel_in_sleep);
	tt_add(&ts, test_cancel_handled_goes_on);
	tt_add(&ts, test_cancel_before_start);
	tt_add(&ts, test_cancel_twice_counts);
	tt_add(&ts, test_cancel_owed_at_return);
	tt_add(&ts, test_cancel_propagates_to_awaited_task);
	tt_add(&ts, test_future_cancel_is_task_cancel);
	tt_add(&ts, test_cancel_done_task);
	tt_add(&ts, test_task_names);
	tt_add(&ts, test_all_tasks);
	tt_add(&ts, test_read_write_pipe);
	tt_add(&ts, test_read_cancelled);
	tt_add(&ts, test_read_cancel_races_data);
	tt_add(&ts, test_read_done_then_cancel);
	tt_add(&ts, test_io_with_owed_cancel);
	tt_add(&ts, test_cancel_storm);
	tt_add(&ts, test_stack_overflow_reported);
	tt_add(&ts, test_big_frame_hits_the_guard);
	/* 100,000 tasks alive at once make no I/O: what they measure (stacks,
	 * mappings, the ready ring) is the same on every backend, and it was
	 * most of this program's time, three times over. One TCase, on the
	 * default configuration's loop (epoll, which every machine has). */
	tcase_add_test(tt_tcase(&ts, "scale"), test_100k_tasks);
	return tt_run(&ts);
}
