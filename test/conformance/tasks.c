/* SPDX-License-Identifier: MIT */
/*
 * conformance/tasks.c: cases ported from CPython 3.11's test_futures,
 * test_tasks, test_waitfor, test_timeouts and test_taskgroups, each named
 * <python module>__<python test>, run on every backend configuration.
 * test/conformance/README.md maps each Python test to its case.
 *
 * Python's exceptions are error codes here: a RuntimeError or
 * ZeroDivisionError raised by a coroutine is a task body returning -EIO or
 * -EDOM, CancelledError is -ECANCELED, TimeoutError -ETIMEDOUT and
 * InvalidStateError TIDE_EINVALID_STATE. asyncio's test loop with a fake
 * clock is a real loop with short delays; no case asserts speed, only
 * that nothing ends early.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../helpers.h"

/* The loop of the running case (tt_run_main keeps it here). */
static struct tide_loop *g_loop;

/* The running task's loop. */
static struct tide_loop *cur_loop(void)
{
	return tide_future_loop(tide_current_task());
}

static struct tide_future *new_future(struct tide_loop *loop)
{
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_future_new(loop, &f), 0);
	return f;
}

/* test_utils.run_briefly: one iteration that runs what is ready. */
static void run_briefly(struct tide_loop *loop)
{
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
}

/* Inside a task: waits until f is done (whatever its outcome). */
static void wait_done(struct tide_future *f)
{
	ck_assert_int_eq(tide_wait(&f, 1, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE), 1);
}

/* Task bodies: sleep the milliseconds in arg, then return 0 (or -ECANCELED). */
static int64_t sleep_ms(void *arg)
{
	return tide_sleep((double)(intptr_t)arg / 1000);
}

#define MS(n) ((void *)(intptr_t)(n))

/* Awaits the future in arg and returns its outcome. */
static int64_t await_arg(void *arg)
{
	return tide_await(arg);
}

static int64_t return_arg(void *arg)
{
	return (int64_t)(intptr_t)arg;
}

static void cancel_task_cb(void *arg)
{
	tide_task_cancel(arg);
}

static int g_reports;

static void count_report(struct tide_loop *loop, const struct tide_error_context *ctx, void *arg)
{
	(void)loop;
	(void)ctx;
	(void)arg;
	g_reports++;
}

/* ------------------------------------------------------------ futures -- */

/* test_futures.test_initial_state: pending, then cancelled. */
START_TEST(test_futures__test_initial_state)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);

	ck_assert_int_eq(tide_future_cancelled(f), 0);
	ck_assert_int_eq(tide_future_done(f), 0);
	ck_assert_int_eq(tide_future_cancel(f), 1);
	ck_assert_int_eq(tide_future_cancelled(f), 1);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_futures.test_cancel: a cancelled future is done, its result and
 * exception are CancelledError, set_* are InvalidStateError, a second
 * cancel is refused. */
START_TEST(test_futures__test_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);

	ck_assert_int_eq(tide_future_cancel(f), 1);
	ck_assert_int_eq(tide_future_cancelled(f), 1);
	ck_assert_int_eq(tide_future_done(f), 1);
	ck_assert_int_eq(tide_future_result(f, NULL, NULL), -ECANCELED);
	ck_assert_int_eq(tide_future_error(f), -ECANCELED);
	ck_assert_int_eq(tide_future_set_result(f, 0, NULL), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_future_set_error(f, -EIO), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_future_cancel(f), 0);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_futures.test_result: InvalidStateError while pending; then the
 * result, no exception, set_* refused, cancel refused. */
START_TEST(test_futures__test_result)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);

	ck_assert_int_eq(tide_future_result(f, NULL, NULL), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_future_set_result(f, 42, NULL), 0);
	ck_assert_int_eq(tide_future_cancelled(f), 0);
	ck_assert_int_eq(tide_future_done(f), 1);
	ck_assert_int_eq(tt_result(f), 42);
	ck_assert_int_eq(tide_future_error(f), 0);
	ck_assert_int_eq(tide_future_set_result(f, 0, NULL), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_future_set_error(f, -EIO), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_future_cancel(f), 0);
	ck_assert_int_eq(tt_result(f), 42);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_futures.test_exception: InvalidStateError while pending; a value
 * that is no error is refused (Python's TypeError for StopIteration);
 * then result() raises the error, exception() gives it, set_* and cancel
 * are refused. */
START_TEST(test_futures__test_exception)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);

	ck_assert_int_eq(tide_future_error(f), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_future_set_error(f, 0), -EINVAL);
	ck_assert_int_eq(tide_future_set_error(f, 5), -EINVAL);
	ck_assert_int_eq(tide_future_done(f), 0);
	ck_assert_int_eq(tide_future_set_error(f, -EIO), 0);
	ck_assert_int_eq(tide_future_cancelled(f), 0);
	ck_assert_int_eq(tide_future_done(f), 1);
	ck_assert_int_eq(tide_future_result(f, NULL, NULL), -EIO);
	ck_assert_int_eq(tide_future_error(f), -EIO);
	ck_assert_int_eq(tide_future_set_result(f, 0, NULL), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_future_set_error(f, -EIO), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_future_cancel(f), 0);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int g_marked;

static void mark_cb(void *arg)
{
	(void)arg;
	g_marked = 1;
}

static int64_t await_twice(void *arg)
{
	struct tide_future *f = arg;

	ck_assert_int_eq(tide_await(f), 42);
	g_marked = 0;
	ck_assert_int_eq(tide_call_soon(cur_loop(), mark_cb, NULL, NULL), 0);
	/* The second await of a done future does not suspend. */
	ck_assert_int_eq(tide_await(f), 42);
	ck_assert_int_eq(g_marked, 0);
	return 0;
}

/* test_futures.test_yield_from_twice: awaiting a done future again gives
 * its result without suspending. */
START_TEST(test_futures__test_yield_from_twice)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);
	struct tide_future *t = tt_spawn(loop, await_twice, f);

	run_briefly(loop);
	ck_assert(!tide_future_done(t));
	ck_assert_int_eq(tide_future_set_result(f, 42, NULL), 0);
	tt_run_until_complete(loop, t, 0);
	tide_future_unref(t);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* The "never retrieved" report of a debug loop, for each way a future goes. */
enum tb_case { TB_ABANDONED, TB_RESULT, TB_RESULT_READ, TB_ERROR, TB_ERROR_READ, TB_ERROR_RESULT_READ };

static int tb_reports(enum tb_case c)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;
	struct tide_future *f;
	int64_t v = 0;
	int n;

	tt_opts_init(&opts);
	opts.debug = 1;
	loop = tt_loop_new_opts(&opts);
	tide_loop_set_exception_handler(loop, count_report, NULL);
	g_reports = 0;
	f = new_future(loop);
	switch (c) {
	case TB_ABANDONED:
		break;
	case TB_RESULT:
		ck_assert_int_eq(tide_future_set_result(f, 42, NULL), 0);
		break;
	case TB_RESULT_READ:
		ck_assert_int_eq(tide_future_set_result(f, 42, NULL), 0);
		ck_assert_int_eq(tide_future_result(f, &v, NULL), 0);
		ck_assert_int_eq(v, 42);
		break;
	case TB_ERROR:
		ck_assert_int_eq(tide_future_set_error(f, -EIO), 0);
		break;
	case TB_ERROR_READ:
		ck_assert_int_eq(tide_future_set_error(f, -EIO), 0);
		ck_assert_int_eq(tide_future_error(f), -EIO);
		break;
	case TB_ERROR_RESULT_READ:
		ck_assert_int_eq(tide_future_set_error(f, -EIO), 0);
		ck_assert_int_eq(tide_future_result(f, NULL, NULL), -EIO);
		break;
	}
	tide_future_unref(f);
	run_briefly(loop);
	n = g_reports;
	ck_assert_int_eq(tide_loop_free(loop), 0);
	return n;
}

/* test_futures.test_tb_logger_abandoned: a pending future dropped: no report. */
START_TEST(test_futures__test_tb_logger_abandoned)
{
	ck_assert_int_eq(tb_reports(TB_ABANDONED), 0);
}
END_TEST

/* test_futures.test_tb_logger_result_unretrieved: a result nobody read: no report. */
START_TEST(test_futures__test_tb_logger_result_unretrieved)
{
	ck_assert_int_eq(tb_reports(TB_RESULT), 0);
}
END_TEST

/* test_futures.test_tb_logger_result_retrieved */
START_TEST(test_futures__test_tb_logger_result_retrieved)
{
	ck_assert_int_eq(tb_reports(TB_RESULT_READ), 0);
}
END_TEST

/* test_futures.test_tb_logger_exception_unretrieved: an error nobody read
 * is reported to the exception handler. */
START_TEST(test_futures__test_tb_logger_exception_unretrieved)
{
	ck_assert_int_eq(tb_reports(TB_ERROR), 1);
}
END_TEST

/* test_futures.test_tb_logger_exception_retrieved: exception() read it. */
START_TEST(test_futures__test_tb_logger_exception_retrieved)
{
	ck_assert_int_eq(tb_reports(TB_ERROR_READ), 0);
}
END_TEST

/* test_futures.test_tb_logger_exception_result_retrieved: result() raised it. */
START_TEST(test_futures__test_tb_logger_exception_result_retrieved)
{
	ck_assert_int_eq(tb_reports(TB_ERROR_RESULT_READ), 0);
}
END_TEST

/* The bag of BaseFutureDoneCallbackTests: each callback appends its arg. */
static int g_bag[16];
static int g_nbag;

static void bag_cb(struct tide_future *f, void *arg)
{
	(void)f;
	ck_assert_int_lt(g_nbag, 16);
	g_bag[g_nbag++] = (int)(intptr_t)arg;
}

#define BAG(n) ((void *)(intptr_t)(n))

static void bag_is(const int *want, int n)
{
	ck_assert_int_eq(g_nbag, n);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(g_bag[i], want[i]);
}

/* Adds 42, 17, 100, removes those in rm (each twice, as Python), sets a
 * result, and checks what ran. */
static void remove_callbacks_case(const int *rm, int nrm, const int *want, int nwant)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);

	g_nbag = 0;
	ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(42)), 0);
	ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(17)), 0);
	ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(100)), 0);
	for (int i = 0; i < nrm; i++) {
		ck_assert_int_eq(tide_future_remove_done_callback(f, bag_cb, BAG(rm[i])), 1);
		ck_assert_int_eq(tide_future_remove_done_callback(f, bag_cb, BAG(rm[i])), 0);
	}
	ck_assert_int_eq(g_nbag, 0);
	ck_assert_int_eq(tide_future_set_result(f, 7, NULL), 0);
	run_briefly(loop);
	bag_is(want, nwant);
	ck_assert_int_eq(tt_result(f), 7);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

/* test_futures.test_callbacks_remove_first_callback */
START_TEST(test_futures__test_callbacks_remove_first_callback)
{
	static const int rm[] = {42}, want[] = {17, 100};

	remove_callbacks_case(rm, 1, want, 2);
}
END_TEST

/* test_futures.test_callbacks_remove_first_and_second_callback */
START_TEST(test_futures__test_callbacks_remove_first_and_second_callback)
{
	static const int rm[] = {42, 17}, want[] = {100};

	remove_callbacks_case(rm, 2, want, 1);
}
END_TEST

/* test_futures.test_callbacks_remove_third_callback */
START_TEST(test_futures__test_callbacks_remove_third_callback)
{
	static const int rm[] = {100}, want[] = {42, 17};

	remove_callbacks_case(rm, 1, want, 2);
}
END_TEST

/* test_futures.test_callbacks_invoked_on_set_result: in the order added,
 * not before the loop runs. */
START_TEST(test_futures__test_callbacks_invoked_on_set_result)
{
	static const int want[] = {42, 17};
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);

	g_nbag = 0;
	ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(42)), 0);
	ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(17)), 0);
	ck_assert_int_eq(tide_future_set_result(f, 7, NULL), 0);
	ck_assert_int_eq(g_nbag, 0);
	run_briefly(loop);
	bag_is(want, 2);
	ck_assert_int_eq(tt_result(f), 7);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_futures.test_callbacks_invoked_on_set_exception */
START_TEST(test_futures__test_callbacks_invoked_on_set_exception)
{
	static const int want[] = {100};
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);

	g_nbag = 0;
	ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(100)), 0);
	ck_assert_int_eq(tide_future_set_error(f, -EIO), 0);
	ck_assert_int_eq(g_nbag, 0);
	run_briefly(loop);
	bag_is(want, 1);
	ck_assert_int_eq(tide_future_error(f), -EIO);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_futures.test_remove_done_callback: remove returns how many
 * registrations went, every one of them. */
START_TEST(test_futures__test_remove_done_callback)
{
	static const int want[] = {2};
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);

	g_nbag = 0;
	ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(1)), 0);
	ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(2)), 0);
	ck_assert_int_eq(tide_future_remove_done_callback(f, bag_cb, BAG(2)), 1);
	ck_assert_int_eq(tide_future_remove_done_callback(f, bag_cb, BAG(3)), 0);
	ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(2)), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(1)), 0);
	ck_assert_int_eq(tide_future_remove_done_callback(f, bag_cb, BAG(1)), 6);
	ck_assert_int_eq(g_nbag, 0);
	ck_assert_int_eq(tide_future_set_result(f, 7, NULL), 0);
	run_briefly(loop);
	bag_is(want, 1);
	ck_assert_int_eq(tt_result(f), 7);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static void remove_others_cb(struct tide_future *f, void *arg)
{
	(void)arg;
	/* Already scheduled: removing them now takes nothing back. */
	ck_assert_int_eq(tide_future_remove_done_callback(f, bag_cb, BAG(5)), 0);
	bag_cb(f, BAG(1));
}

/* test_futures.test_schedule_callbacks_list_mutation_1: a callback that
 * removes the others once they are scheduled changes nothing: all run. */
START_TEST(test_futures__test_schedule_callbacks_list_mutation_1)
{
	static const int want[] = {1, 5, 5};
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);

	g_nbag = 0;
	ck_assert_int_eq(tide_future_add_done_callback(f, remove_others_cb, NULL), 0);
	ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(5)), 0);
	ck_assert_int_eq(tide_future_add_done_callback(f, bag_cb, BAG(5)), 0);
	ck_assert_int_eq(tide_future_set_result(f, 1, NULL), 0);
	run_briefly(loop);
	bag_is(want, 3);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* -------------------------------------------------------------- tasks -- */

static int64_t tb_outer(void *arg)
{
	struct tide_future *a, *b;
	int64_t ra, rb;

	(void)arg;
	a = tt_spawn(NULL, return_arg, MS(42));
	ra = tide_await(a);
	b = tt_spawn(NULL, return_arg, MS(1000));
	rb = tide_await(b);
	tide_future_unref(a);
	tide_future_unref(b);
	return ra + rb;
}

/* test_tasks.test_task_basics: a task awaiting two others sums them. */
START_TEST(test_tasks__test_task_basics)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, tb_outer, NULL);

	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 1042);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t await_self(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_wait_for(tide_current_task(), 1), -EDEADLK);
	return tide_await(tide_current_task());
}

/* test_tasks.test_task_awaits_on_itself: refused (-EDEADLK where asyncio
 * raises RuntimeError), and that is the task's outcome. */
START_TEST(test_tasks__test_task_awaits_on_itself)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, await_self, NULL);

	tt_run_until_complete(loop, t, -EDEADLK);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_other_loop_future: a future of another loop cannot be
 * awaited (-EINVAL where asyncio raises RuntimeError). */
START_TEST(test_tasks__test_other_loop_future)
{
	struct tide_loop *loop = tt_loop_new(), *other = tt_loop_new();
	struct tide_future *f = new_future(other);
	struct tide_future *t = tt_spawn(loop, await_arg, f);

	tt_run_until_complete(loop, t, -EINVAL);
	ck_assert(!tide_future_done(f));
	tide_future_unref(t);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(other), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_cancelling: each cancel of a pending task counts. */
START_TEST(test_tasks__test_cancelling)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, sleep_ms, MS(10000));

	ck_assert_int_eq(tide_task_cancelling(t), 0);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_task_cancelling(t), 1);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_task_cancelling(t), 2);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t uncancel_body(void *arg)
{
	(void)arg;
	if (tide_sleep(10) == -ECANCELED) {
		tide_task_uncancel(tide_current_task());
		return tide_sleep(10);
	}
	return 0;
}

/* Runs the loop for about seconds (asyncio's run_until_complete(sleep)). */
static void run_for(struct tide_loop *loop, double seconds)
{
	struct tide_future *f;

	ck_assert_int_eq(tide_op_timeout(loop, seconds, &f), 0);
	tt_run_until_complete(loop, f, 0);
	tide_future_unref(f);
}

/* test_tasks.test_uncancel_basic: uncancel takes a request back; the
 * task goes on, and a later cancel ends it; uncancel after the end
 * changes nothing. */
START_TEST(test_tasks__test_uncancel_basic)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, uncancel_body, NULL);

	run_for(loop, 0.01);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_task_cancelling(t), 1);
	ck_assert_int_eq(tide_future_cancelled(t), 0);
	run_for(loop, 0.01);
	ck_assert_int_eq(tide_task_cancelling(t), 0);
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_task_cancelling(t), 1);
	ck_assert_int_eq(tide_future_cancelled(t), 0);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_task_uncancel(t);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	ck_assert_int_eq(tide_future_done(t), 1);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

struct structured {
	double sleep, timeout;
	int timed_out, block_finished, outer_reached;
};

static struct tide_future *g_structured_task;

static void structured_timeout_cb(void *arg)
{
	struct structured *s = arg;

	s->timed_out = 1;
	tide_task_cancel(g_structured_task);
}

static int64_t structured_body(void *arg)
{
	struct structured *s = arg;
	struct tide_future *me = tide_current_task();
	struct tide_handle h;
	int r;

	ck_assert_int_eq(tide_call_later(cur_loop(), s->timeout, structured_timeout_cb, s, &h), 0);
	r = tide_sleep(s->sleep);
	if (r == 0)
		s->block_finished = 1;
	tide_handle_cancel(&h);
	/* The five rules: our flag, our uncancel back to 0, a cancellation. */
	if (s->timed_out && tide_task_uncancel(me) == 0 && r == -ECANCELED)
		r = -ETIMEDOUT;
	if (r == -ETIMEDOUT)
		ck_assert(s->timed_out);
	else
		ck_assert_int_eq(r, 0);
	s->outer_reached = 1;
	/* Nothing is owed any more: the outer code's await goes through. */
	ck_assert_int_eq(tide_sleep(0), 0);
	return 0;
}

/* test_tasks.test_uncancel_structured_blocks: a block interrupted by our
 * own cancel, taken back with uncancel, lets the code after it run. */
START_TEST(test_tasks__test_uncancel_structured_blocks)
{
	struct tide_loop *loop = tt_loop_new();
	struct structured s1 = {.sleep = 10, .timeout = 0.05}, s2 = {.sleep = 0, .timeout = 10};
	struct tide_future *t;

	t = g_structured_task = tt_spawn(loop, structured_body, &s1);
	tt_run_until_complete(loop, t, 0);
	ck_assert(s1.timed_out && !s1.block_finished && s1.outer_reached);
	ck_assert_int_eq(tide_task_cancelling(t), 0);
	tide_future_unref(t);

	t = g_structured_task = tt_spawn(loop, structured_body, &s2);
	tt_run_until_complete(loop, t, 0);
	ck_assert(!s2.timed_out && s2.block_finished && s2.outer_reached);
	ck_assert_int_eq(tide_task_cancelling(t), 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t sleep_then_12(void *arg)
{
	int r = tide_sleep(10);

	(void)arg;
	return r ? r : 12;
}

/* test_tasks.test_cancel: a sleeping task cancelled from a callback. */
START_TEST(test_tasks__test_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, sleep_then_12, NULL);

	ck_assert_int_eq(tide_call_soon(loop, cancel_task_cb, t, NULL), 0);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_done(t), 1);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	ck_assert_int_eq(tide_task_cancel(t), 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t yield_twice_12(void *arg)
{
	int r;

	(void)arg;
	if ((r = tide_sleep(0)) || (r = tide_sleep(0)))
		return r;
	return 12;
}

/* test_tasks.test_cancel_yield: cancelled between two sleep(0)s. */
START_TEST(test_tasks__test_cancel_yield)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, yield_twice_12, NULL);

	run_briefly(loop);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_done(t), 1);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	ck_assert_int_eq(tide_task_cancel(t), 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t await_then_12(void *arg)
{
	int64_t r = tide_await(arg);

	return r < 0 ? r : 12;
}

/* test_tasks.test_cancel_inner_future: the awaited future cancelled
 * cancels the task. */
START_TEST(test_tasks__test_cancel_inner_future)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);
	struct tide_future *t = tt_spawn(loop, await_then_12, f);

	run_briefly(loop);
	ck_assert_int_eq(tide_future_cancel(f), 1);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(f), 1);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_future_unref(t);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_cancel_both_task_and_inner_future */
START_TEST(test_tasks__test_cancel_both_task_and_inner_future)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);
	struct tide_future *t = tt_spawn(loop, await_then_12, f);

	run_briefly(loop);
	ck_assert_int_eq(tide_future_cancel(f), 1);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_done(t), 1);
	ck_assert_int_eq(tide_future_cancelled(f), 1);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_future_unref(t);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static struct tide_future *g_f1, *g_f2, *g_f3;

static int64_t catching_body(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_await(g_f1), 0);
	if (tide_await(g_f2) == -ECANCELED)
		return 42;
	return 0;
}

/* test_tasks.test_cancel_task_catching: the cancel goes to the future the
 * task awaits; the task catches it and returns normally. */
START_TEST(test_tasks__test_cancel_task_catching)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_f1 = new_future(loop);
	g_f2 = new_future(loop);
	t = tt_spawn(loop, catching_body, NULL);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_set_result(g_f1, 0, NULL), 0);
	run_briefly(loop);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_future_cancelled(g_f2), 1);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 42);
	ck_assert_int_eq(tide_future_cancelled(t), 0);
	tide_future_unref(t);
	tide_future_unref(g_f1);
	tide_future_unref(g_f2);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t ignoring_body(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_await(g_f1), 0);
	ck_assert_int_eq(tide_await(g_f2), -ECANCELED);
	return tide_await(g_f3);
}

/* test_tasks.test_cancel_task_ignoring: a task that ignores the cancel
 * goes on to await the next future, which completes normally. */
START_TEST(test_tasks__test_cancel_task_ignoring)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_f1 = new_future(loop);
	g_f2 = new_future(loop);
	g_f3 = new_future(loop);
	t = tt_spawn(loop, ignoring_body, NULL);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_set_result(g_f1, 0, NULL), 0);
	run_briefly(loop);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_future_cancelled(g_f2), 1);
	run_briefly(loop);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(tide_future_set_result(g_f3, 42, NULL), 0);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 42);
	ck_assert_int_eq(tide_future_cancelled(g_f3), 0);
	ck_assert_int_eq(tide_future_cancelled(t), 0);
	tide_future_unref(t);
	tide_future_unref(g_f1);
	tide_future_unref(g_f2);
	tide_future_unref(g_f3);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t cancel_self_then_sleep(void *arg)
{
	int r;

	(void)arg;
	ck_assert_int_eq(tide_task_cancel(tide_current_task()), 1);
	/* The sleep is cancelled at once. */
	r = tide_sleep(100);
	ck_assert_int_eq(r, -ECANCELED);
	return r ? r : 12;
}

/* test_tasks.test_cancel_current_task */
START_TEST(test_tasks__test_cancel_current_task)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, cancel_self_then_sleep, NULL);

	ck_assert_int_eq(tide_future_cancelled(t), 0);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_done(t), 1);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	ck_assert_int_eq(tide_task_cancel(t), 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t cancel_self_then_return(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_task_cancel(tide_current_task()), 1);
	return 12;
}

/* test_tasks.test_cancel_at_end: a cancel owed when the body returns wins. */
START_TEST(test_tasks__test_cancel_at_end)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, cancel_self_then_return, NULL);

	ck_assert_int_eq(tide_future_cancelled(t), 0);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_done(t), 1);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	ck_assert_int_eq(tide_task_cancel(t), 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static struct tide_future *g_nested;

static int64_t cancel_awaited_body(void *arg)
{
	g_nested = tt_spawn(NULL, await_arg, arg);
	ck_assert_int_eq(tide_sleep(0), 0);
	ck_assert_int_eq(tide_task_cancel(tide_current_task()), 1);
	/* The nested task, awaited under the owed cancel, is cancelled. */
	return tide_await(g_nested);
}

/* test_tasks.test_cancel_awaited_task: a task that cancelled itself then
 * awaits another task cancels that one, and the future it waits on. */
START_TEST(test_tasks__test_cancel_awaited_task)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);
	struct tide_future *t = tt_spawn(loop, cancel_awaited_body, f);

	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	ck_assert_int_eq(tide_future_cancelled(g_nested), 1);
	ck_assert_int_eq(tide_future_cancelled(f), 1);
	tide_future_unref(g_nested);
	tide_future_unref(t);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static struct tide_future *g_a, *g_b;

static int64_t wait_all_42(void *arg)
{
	struct tide_future *futs[2] = {g_b, g_a};

	(void)arg;
	ck_assert_int_eq(tide_wait(futs, 2, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE), 2);
	ck_assert(tide_future_done(g_a) && tide_future_done(g_b));
	return 42;
}

/* test_tasks.test_wait: ALL_COMPLETED waits for the later one; a second
 * wait on done futures returns at once. */
START_TEST(test_tasks__test_wait)
{
	struct tide_loop *loop = tt_loop_new();
	double t0 = tide_loop_time(loop);
	struct tide_future *t;

	g_a = tt_spawn(loop, sleep_ms, MS(20));
	g_b = tt_spawn(loop, sleep_ms, MS(40));
	t = tt_spawn(loop, wait_all_42, NULL);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 42);
	ck_assert(tide_loop_time(loop) >= t0 + 0.04);
	tide_future_unref(t);
	t = tt_spawn(loop, wait_all_42, NULL);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 42);
	tide_future_unref(t);
	tide_future_unref(g_a);
	tide_future_unref(g_b);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t wait_duplicates(void *arg)
{
	struct tide_future *c = tt_spawn(NULL, return_arg, MS(7)), *d = tt_spawn(NULL, return_arg, MS(9));
	struct tide_future *futs[3] = {c, c, d};

	(void)arg;
	/* tide counts entries, not a set: all three are done. */
	ck_assert_int_eq(tide_wait(futs, 3, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE), 3);
	ck_assert_int_eq(tt_result(c), 7);
	ck_assert_int_eq(tt_result(d), 9);
	tide_future_unref(c);
	tide_future_unref(d);
	return 0;
}

/* test_tasks.test_wait_duplicate_coroutines: one future twice is fine. */
START_TEST(test_tasks__test_wait_duplicate_coroutines)
{
	tt_run_main(&g_loop, wait_duplicates, NULL);
}
END_TEST

static int64_t wait_errors(void *arg)
{
	struct tide_future *s = tt_spawn(NULL, sleep_ms, MS(10000));

	(void)arg;
	ck_assert_int_eq(tide_wait(&s, 0, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE), -EINVAL);
	ck_assert_int_eq(tide_wait(&s, 1, (enum tide_return_when)99, TIDE_TIMEOUT_NONE), -EINVAL);
	ck_assert_int_eq(tide_wait(NULL, 1, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE), -EINVAL);
	ck_assert_int_eq(tide_future_done(s), 0);
	tide_task_cancel(s);
	wait_done(s);
	tide_future_unref(s);
	return 0;
}

/* test_tasks.test_wait_errors: an empty set or a bad return_when is
 * -EINVAL (asyncio's ValueError). */
START_TEST(test_tasks__test_wait_errors)
{
	struct tide_loop *loop = tt_loop_new();

	ck_assert_int_eq(tide_wait(NULL, 0, TIDE_ALL_COMPLETED, 0), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	tt_run_main(&g_loop, wait_errors, NULL);
}
END_TEST

static int64_t wait_first(void *arg)
{
	enum tide_return_when when = (enum tide_return_when)(intptr_t)arg;
	struct tide_future *futs[2] = {g_b, g_a};

	ck_assert_int_eq(tide_wait(futs, 2, when, TIDE_TIMEOUT_NONE), 1);
	ck_assert_int_eq(tide_future_done(g_a), 0);
	ck_assert_int_eq(tide_future_done(g_b), 1);
	tide_task_cancel(g_a);
	wait_done(g_a);
	return 0;
}

/* test_tasks.test_wait_first_completed: one done, the other pending. */
START_TEST(test_tasks__test_wait_first_completed)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_a = tt_spawn(loop, sleep_ms, MS(10000));
	g_b = tt_spawn(loop, sleep_ms, MS(10));
	t = tt_spawn(loop, wait_first, (void *)(intptr_t)TIDE_FIRST_COMPLETED);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(g_b), 0);
	tide_future_unref(t);
	tide_future_unref(g_a);
	tide_future_unref(g_b);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t sleep0_times(void *arg)
{
	for (intptr_t i = 0; i < (intptr_t)arg; i++)
		ck_assert_int_eq(tide_sleep(0), 0);
	return 0;
}

static int64_t wait_really_done(void *arg)
{
	struct tide_future *futs[2] = {g_b, g_a};

	(void)arg;
	/* Both finished before the waiter ran again: both are counted. */
	ck_assert_int_eq(tide_wait(futs, 2, TIDE_FIRST_COMPLETED, TIDE_TIMEOUT_NONE), 2);
	return 0;
}

/* test_tasks.test_wait_really_done */
START_TEST(test_tasks__test_wait_really_done)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_a = tt_spawn(loop, sleep0_times, MS(1));
	g_b = tt_spawn(loop, sleep0_times, MS(2));
	t = tt_spawn(loop, wait_really_done, NULL);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(g_a), 0);
	ck_assert_int_eq(tt_result(g_b), 0);
	tide_future_unref(t);
	tide_future_unref(g_a);
	tide_future_unref(g_b);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t sleep_then_edom(void *arg)
{
	int r = tide_sleep((double)(intptr_t)arg / 1000);

	return r ? r : -EDOM;
}

/* test_tasks.test_wait_first_exception: a task failed already. */
START_TEST(test_tasks__test_wait_first_exception)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_a = tt_spawn(loop, sleep_ms, MS(10000));
	g_b = tt_spawn(loop, return_arg, (void *)(intptr_t)-EDOM);
	t = tt_spawn(loop, wait_first, (void *)(intptr_t)TIDE_FIRST_EXCEPTION);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tide_future_error(g_b), -EDOM);
	tide_future_unref(t);
	tide_future_unref(g_a);
	tide_future_unref(g_b);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_wait_first_exception_in_wait: it fails during the wait. */
START_TEST(test_tasks__test_wait_first_exception_in_wait)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_a = tt_spawn(loop, sleep_ms, MS(10000));
	g_b = tt_spawn(loop, sleep_then_edom, MS(10));
	t = tt_spawn(loop, wait_first, (void *)(intptr_t)TIDE_FIRST_EXCEPTION);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tide_future_error(g_b), -EDOM);
	tide_future_unref(t);
	tide_future_unref(g_a);
	tide_future_unref(g_b);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t wait_with_exception(void *arg)
{
	struct tide_future *futs[2] = {g_b, g_a};
	int errors = 0;

	(void)arg;
	ck_assert_int_eq(tide_wait(futs, 2, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE), 2);
	for (int i = 0; i < 2; i++)
		errors += tide_future_error(futs[i]) != 0;
	ck_assert_int_eq(errors, 1);
	return 0;
}

/* test_tasks.test_wait_with_exception: ALL_COMPLETED goes on past a failure. */
START_TEST(test_tasks__test_wait_with_exception)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_a = tt_spawn(loop, sleep_ms, MS(10));
	g_b = tt_spawn(loop, sleep_then_edom, MS(20));
	for (int i = 0; i < 2; i++) {
		t = tt_spawn(loop, wait_with_exception, NULL);
		tt_run_until_complete(loop, t, 0);
		tide_future_unref(t);
	}
	ck_assert_int_eq(tide_future_error(g_b), -EDOM);
	tide_future_unref(g_a);
	tide_future_unref(g_b);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t wait_with_timeout(void *arg)
{
	struct tide_future *futs[2] = {g_b, g_a};
	struct tide_loop *loop = cur_loop();
	double t0 = tide_loop_time(loop);

	(void)arg;
	ck_assert_int_eq(tide_wait(futs, 2, TIDE_ALL_COMPLETED, 0.2), 1);
	ck_assert(tide_loop_time(loop) >= t0 + 0.2);
	ck_assert_int_eq(tide_future_done(g_a), 1);
	/* Nothing is cancelled on timeout. */
	ck_assert_int_eq(tide_future_done(g_b), 0);
	tide_task_cancel(g_b);
	wait_done(g_b);
	return 0;
}

/* test_tasks.test_wait_with_timeout */
START_TEST(test_tasks__test_wait_with_timeout)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_a = tt_spawn(loop, sleep_ms, MS(10));
	g_b = tt_spawn(loop, sleep_ms, MS(10000));
	t = tt_spawn(loop, wait_with_timeout, NULL);
	tt_run_until_complete(loop, t, 0);
	tide_future_unref(t);
	tide_future_unref(g_a);
	tide_future_unref(g_b);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

struct sleeper {
	int ms;
	int64_t value;
};

static int64_t sleeper_body(void *arg)
{
	struct sleeper *s = arg;
	int r = tide_sleep(s->ms / 1000.0);

	return r ? r : s->value;
}

static int64_t as_completed_body(void *arg)
{
	static struct sleeper sa = {10, 'a'}, sb = {10, 'b'}, sc = {100, 'c'};
	struct tide_future *a = tt_spawn(NULL, sleeper_body, &sa), *b = tt_spawn(NULL, sleeper_body, &sb),
			   *c = tt_spawn(NULL, sleeper_body, &sc);
	struct tide_future *futs[3] = {b, c, a}, *next;
	struct tide_as_completed *it;
	int64_t values[3];

	(void)arg;
	ck_assert_int_eq(tide_as_completed_new(futs, 3, TIDE_TIMEOUT_NONE, &it), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(tide_as_completed_next(it, &next), 0);
		values[i] = tide_await(next);
	}
	ck_assert_int_eq(tide_as_completed_next(it, &next), -ENOENT);
	tide_as_completed_free(it);
	ck_assert((values[0] == 'a' && values[1] == 'b') || (values[0] == 'b' && values[1] == 'a'));
	ck_assert_int_eq(values[2], 'c');
	tide_future_unref(a);
	tide_future_unref(b);
	tide_future_unref(c);
	return 0;
}

/* test_tasks.test_as_completed: in the order they finish. */
START_TEST(test_tasks__test_as_completed)
{
	tt_run_main(&g_loop, as_completed_body, NULL);
}
END_TEST

static int64_t as_completed_timeout_body(void *arg)
{
	/* a ends within a few iterations, long before the deadline however
	 * slow the machine (a timer of its own could expire together with
	 * the deadline on a stalled loop, and lose to it). */
	static struct sleeper sa = {0, 'a'}, sb = {10000, 'b'};
	struct tide_future *a = tt_spawn(NULL, sleeper_body, &sa), *b = tt_spawn(NULL, sleeper_body, &sb);
	struct tide_future *futs[2] = {a, b}, *next;
	struct tide_as_completed *it;
	double t0 = tide_loop_time(cur_loop());

	(void)arg;
	ck_assert_int_eq(tide_as_completed_new(futs, 2, 1, &it), 0);
	ck_assert_int_eq(tide_as_completed_next(it, &next), 0);
	ck_assert_int_eq(tide_await(next), 'a');
	ck_assert_int_eq(tide_as_completed_next(it, &next), -ETIMEDOUT);
	ck_assert(tide_loop_time(cur_loop()) >= t0 + 1);
	tide_as_completed_free(it);
	tide_task_cancel(b);
	wait_done(b);
	tide_future_unref(a);
	tide_future_unref(b);
	return 0;
}

/* test_tasks.test_as_completed_with_timeout: the one not done by the
 * deadline gives TimeoutError. */
START_TEST(test_tasks__test_as_completed_with_timeout)
{
	tt_run_main(&g_loop, as_completed_timeout_body, NULL);
}
END_TEST

static int64_t as_completed_unused_timeout_body(void *arg)
{
	static struct sleeper sa = {10, 'a'};
	struct tide_future *a = tt_spawn(NULL, sleeper_body, &sa), *next;
	struct tide_as_completed *it;

	(void)arg;
	ck_assert_int_eq(tide_as_completed_new(&a, 1, 1, &it), 0);
	ck_assert_int_eq(tide_as_completed_next(it, &next), 0);
	ck_assert_ptr_eq(next, a);
	ck_assert_int_eq(tide_await(next), 'a');
	ck_assert_int_eq(tide_as_completed_next(it, &next), -ENOENT);
	tide_as_completed_free(it);
	tide_future_unref(a);
	return 0;
}

/* test_tasks.test_as_completed_with_unused_timeout */
START_TEST(test_tasks__test_as_completed_with_unused_timeout)
{
	tt_run_main(&g_loop, as_completed_unused_timeout_body, NULL);
}
END_TEST

static int64_t sleep_halves(void *arg)
{
	struct tide_loop *loop = cur_loop();
	double t0 = tide_loop_time(loop);

	(void)arg;
	ck_assert_int_eq(tide_sleep(0.05), 0);
	ck_assert_int_eq(tide_sleep(0.05), 0);
	ck_assert(tide_loop_time(loop) >= t0 + 0.1);
	return 'y';
}

/* test_tasks.test_sleep: two half sleeps, then the result. */
START_TEST(test_tasks__test_sleep)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, sleep_halves, NULL);

	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 'y');
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t doit_body(void *arg)
{
	struct tide_future *sleeper = tt_spawn(NULL, sleep_ms, MS(5000000));
	int64_t r;

	(void)arg;
	ck_assert_int_eq(tide_call_later(cur_loop(), 0.01, cancel_task_cb, sleeper, NULL), 0);
	r = tide_await(sleeper);
	tide_future_unref(sleeper);
	return r == -ECANCELED ? 'c' : 's';
}

/* test_tasks.test_task_cancel_sleeping_task: awaiting a task cancelled
 * meanwhile gives CancelledError. */
START_TEST(test_tasks__test_task_cancel_sleeping_task)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, doit_body, NULL);

	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 'c');
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_task_cancel_waiter_future: the awaited future is
 * cancelled with the task. */
START_TEST(test_tasks__test_task_cancel_waiter_future)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = new_future(loop);
	struct tide_future *t = tt_spawn(loop, await_arg, f);

	run_briefly(loop);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	run_briefly(loop);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(f), 1);
	tide_future_unref(t);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static struct tide_future *g_task1, *g_task2;

static int64_t current_is_task1(void *arg)
{
	(void)arg;
	ck_assert_ptr_eq(tide_current_task(), g_task1);
	return 0;
}

/* test_tasks.test_current_task: the task inside, none outside. */
START_TEST(test_tasks__test_current_task)
{
	struct tide_loop *loop = tt_loop_new();

	ck_assert_ptr_null(tide_current_task());
	g_task1 = tt_spawn(loop, current_is_task1, NULL);
	tt_run_until_complete(loop, g_task1, 0);
	ck_assert_ptr_null(tide_current_task());
	tide_future_unref(g_task1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t interleave1(void *arg)
{
	(void)arg;
	ck_assert_ptr_eq(tide_current_task(), g_task1);
	ck_assert_int_eq(tide_await(g_f1), 1);
	ck_assert_ptr_eq(tide_current_task(), g_task1);
	ck_assert_int_eq(tide_future_set_result(g_f2, 1, NULL), 0);
	return 0;
}

static int64_t interleave2(void *arg)
{
	(void)arg;
	ck_assert_ptr_eq(tide_current_task(), g_task2);
	ck_assert_int_eq(tide_future_set_result(g_f1, 1, NULL), 0);
	ck_assert_int_eq(tide_await(g_f2), 1);
	ck_assert_ptr_eq(tide_current_task(), g_task2);
	return 0;
}

/* test_tasks.test_current_task_with_interleaving_tasks */
START_TEST(test_tasks__test_current_task_with_interleaving_tasks)
{
	struct tide_loop *loop = tt_loop_new();

	ck_assert_ptr_null(tide_current_task());
	g_f1 = new_future(loop);
	g_f2 = new_future(loop);
	g_task1 = tt_spawn(loop, interleave1, NULL);
	g_task2 = tt_spawn(loop, interleave2, NULL);
	tt_run_until_complete(loop, g_task2, 0);
	tt_run_until_complete(loop, g_task1, 0);
	ck_assert_ptr_null(tide_current_task());
	tide_future_unref(g_task1);
	tide_future_unref(g_task2);
	tide_future_unref(g_f1);
	tide_future_unref(g_f2);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int g_proof;

/* inner() of test_yield_future_passes_cancel: a plain call in C. */
static int64_t passes_inner(struct tide_future *waiter)
{
	int64_t r = tide_await(waiter);

	if (r == -ECANCELED)
		g_proof += 1;
	else
		ck_abort_msg("got past the await in inner()");
	return r;
}

static int64_t passes_outer(void *arg)
{
	if (passes_inner(arg) == -ECANCELED)
		g_proof += 100;
	else
		g_proof += 10;
	return 0;
}

/* test_tasks.test_yield_future_passes_cancel: cancelling outer reaches
 * the future inner awaits; outer catches it. */
START_TEST(test_tasks__test_yield_future_passes_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *waiter = new_future(loop);
	struct tide_future *t = tt_spawn(loop, passes_outer, waiter);

	g_proof = 0;
	run_briefly(loop);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(g_proof, 101);
	ck_assert_int_eq(tide_future_cancelled(waiter), 1);
	tide_future_unref(t);
	tide_future_unref(waiter);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t proof_inner(void *arg)
{
	int64_t r = tide_await(arg);

	if (r >= 0)
		g_proof += 1;
	return r;
}

static int64_t wait_outer(void *arg)
{
	struct tide_future *inner = g_nested = tt_spawn(NULL, proof_inner, arg);
	int r = tide_wait(&inner, 1, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE);

	if (r >= 0)
		g_proof += 100;
	return r;
}

/* test_tasks.test_yield_wait_does_not_shield_cancel: cancelling outer
 * ends wait() early and leaves inner running. */
START_TEST(test_tasks__test_yield_wait_does_not_shield_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *waiter = new_future(loop);
	struct tide_future *t = tt_spawn(loop, wait_outer, waiter);

	g_proof = 0;
	run_briefly(loop);
	run_briefly(loop);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_done(g_nested), 0);
	ck_assert_int_eq(tide_future_set_result(waiter, 0, NULL), 0);
	tt_run_until_complete(loop, g_nested, 0);
	ck_assert_int_eq(g_proof, 1);
	tide_future_unref(g_nested);
	tide_future_unref(t);
	tide_future_unref(waiter);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_shield_result */
START_TEST(test_tasks__test_shield_result)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *inner = new_future(loop), *outer;

	ck_assert_int_eq(tide_shield(inner, &outer), 0);
	ck_assert_int_eq(tide_future_set_result(inner, 42, NULL), 0);
	tt_run_until_complete(loop, outer, 0);
	ck_assert_int_eq(tt_result(outer), 42);
	tide_future_unref(outer);
	tide_future_unref(inner);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_shield_exception */
START_TEST(test_tasks__test_shield_exception)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *inner = new_future(loop), *outer;

	ck_assert_int_eq(tide_shield(inner, &outer), 0);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_set_error(inner, -EIO), 0);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_error(outer), -EIO);
	tide_future_unref(outer);
	tide_future_unref(inner);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_shield_cancel_inner: the inner cancelled cancels the outer. */
START_TEST(test_tasks__test_shield_cancel_inner)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *inner = new_future(loop), *outer;

	ck_assert_int_eq(tide_shield(inner, &outer), 0);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_cancel(inner), 1);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_cancelled(outer), 1);
	tide_future_unref(outer);
	tide_future_unref(inner);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_shield_cancel_outer: the outer cancelled leaves the
 * inner pending. */
START_TEST(test_tasks__test_shield_cancel_outer)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *inner = new_future(loop), *outer;

	ck_assert_int_eq(tide_shield(inner, &outer), 0);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_cancel(outer), 1);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_cancelled(outer), 1);
	ck_assert_int_eq(tide_future_done(inner), 0);
	/* The inner's later outcome reaches nothing. */
	ck_assert_int_eq(tide_future_set_result(inner, 1, NULL), 0);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_cancelled(outer), 1);
	tide_future_unref(outer);
	tide_future_unref(inner);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_shield_shortcut: a done future's shield is done at once. */
START_TEST(test_tasks__test_shield_shortcut)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut = new_future(loop), *outer;

	ck_assert_int_eq(tide_future_set_result(fut, 42, NULL), 0);
	ck_assert_int_eq(tide_shield(fut, &outer), 0);
	tt_run_until_complete(loop, outer, 0);
	ck_assert_int_eq(tt_result(outer), 42);
	tide_future_unref(outer);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t shield_effect_outer(void *arg)
{
	struct tide_future *s;
	int64_t r;

	g_nested = tt_spawn(NULL, proof_inner, arg);
	ck_assert_int_eq(tide_shield(g_nested, &s), 0);
	r = tide_await(s);
	tide_future_unref(s);
	if (r >= 0)
		g_proof += 100;
	return r;
}

/* test_tasks.test_shield_effect: cancelling the task awaiting a shield
 * leaves the shielded task running to its end. */
START_TEST(test_tasks__test_shield_effect)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *waiter = new_future(loop);
	struct tide_future *t = tt_spawn(loop, shield_effect_outer, waiter);

	g_proof = 0;
	run_briefly(loop);
	run_briefly(loop);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_set_result(waiter, 0, NULL), 0);
	tt_run_until_complete(loop, g_nested, 0);
	ck_assert_int_eq(g_proof, 1);
	tide_future_unref(g_nested);
	tide_future_unref(t);
	tide_future_unref(waiter);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_shield_gather: a shielded gather goes on when the
 * shield is cancelled. */
START_TEST(test_tasks__test_shield_gather)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *c[2] = {new_future(loop), new_future(loop)}, *parent, *outer;

	ck_assert_int_eq(tide_gather(loop, c, 2, 0, &parent), 0);
	ck_assert_int_eq(tide_shield(parent, &outer), 0);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_cancel(outer), 1);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_cancelled(outer), 1);
	ck_assert_int_eq(tide_future_set_result(c[0], 1, NULL), 0);
	ck_assert_int_eq(tide_future_set_result(c[1], 2, NULL), 0);
	run_briefly(loop);
	run_briefly(loop);
	/* gather's result is its children's: [1, 2]. */
	ck_assert_int_eq(tide_future_done(parent), 1);
	ck_assert_int_eq(tide_future_error(parent), 0);
	ck_assert_int_eq(tt_result(c[0]), 1);
	ck_assert_int_eq(tt_result(c[1]), 2);
	tide_future_unref(outer);
	tide_future_unref(parent);
	tide_future_unref(c[0]);
	tide_future_unref(c[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_gather_shield: cancelling a gather of shields cancels
 * the shields, not what they shield. */
START_TEST(test_tasks__test_gather_shield)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *c[2] = {new_future(loop), new_future(loop)}, *in[2], *parent;

	ck_assert_int_eq(tide_shield(c[0], &in[0]), 0);
	ck_assert_int_eq(tide_shield(c[1], &in[1]), 0);
	ck_assert_int_eq(tide_gather(loop, in, 2, 0, &parent), 0);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_cancel(parent), 1);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_error(parent), -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(in[0]), 1);
	ck_assert_int_eq(tide_future_cancelled(in[1]), 1);
	ck_assert_int_eq(tide_future_done(c[0]), 0);
	ck_assert_int_eq(tide_future_done(c[1]), 0);
	ck_assert_int_eq(tide_future_set_result(c[0], 1, NULL), 0);
	ck_assert_int_eq(tide_future_set_result(c[1], 2, NULL), 0);
	run_briefly(loop);
	for (int i = 0; i < 2; i++) {
		tide_future_unref(in[i]);
		tide_future_unref(c[i]);
	}
	tide_future_unref(parent);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int g_cancel_result;

static void cancel_gather_cb(struct tide_future *f, void *arg)
{
	(void)f;
	g_cancel_result = tide_future_cancel(arg);
}

/* test_tasks.test_cancel_gather_1: a gather whose children are all done
 * refuses the cancel (Python issue #26923). */
START_TEST(test_tasks__test_cancel_gather_1)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut = new_future(loop);
	struct tide_future *child = tt_spawn(loop, await_arg, fut), *g;

	ck_assert_int_eq(tide_gather(loop, &child, 1, 0, &g), 0);
	run_briefly(loop);
	g_cancel_result = -1;
	ck_assert_int_eq(tide_future_add_done_callback(fut, cancel_gather_cb, g), 0);
	ck_assert_int_eq(tide_future_set_result(fut, 42, NULL), 0);
	tt_run_until_complete(loop, g, 0);
	ck_assert_int_eq(g_cancel_result, 0);
	ck_assert_int_eq(tide_future_cancelled(g), 0);
	ck_assert_int_eq(tt_result(child), 42);
	tide_future_unref(g);
	tide_future_unref(child);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int g_cb_calls;

static void count_cb(struct tide_future *f, void *arg)
{
	(void)f;
	(void)arg;
	g_cb_calls++;
}

/* Runs what is ready until nothing is (GatherTestsBase._run_loop). */
static void run_ready(struct tide_loop *loop)
{
	for (int i = 0; i < 5; i++)
		run_briefly(loop);
}

static void check_gather_success(int return_exceptions)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *c[3], *fut;

	for (int i = 0; i < 3; i++)
		c[i] = new_future(loop);
	ck_assert_int_eq(tide_gather(loop, c, 3, return_exceptions, &fut), 0);
	g_cb_calls = 0;
	ck_assert_int_eq(tide_future_add_done_callback(fut, count_cb, NULL), 0);
	ck_assert_int_eq(tide_future_set_result(c[1], 1, NULL), 0);
	ck_assert_int_eq(tide_future_set_result(c[0], 2, NULL), 0);
	run_ready(loop);
	ck_assert_int_eq(g_cb_calls, 0);
	ck_assert_int_eq(tide_future_done(fut), 0);
	ck_assert_int_eq(tide_future_set_result(c[2], 3, NULL), 0);
	run_ready(loop);
	ck_assert_int_eq(g_cb_calls, 1);
	ck_assert_int_eq(tide_future_error(fut), 0);
	/* [2, 1, 3]: the results stay in the children, in their order. */
	ck_assert_int_eq(tt_result(c[0]), 2);
	ck_assert_int_eq(tt_result(c[1]), 1);
	ck_assert_int_eq(tt_result(c[2]), 3);
	tide_future_unref(fut);
	for (int i = 0; i < 3; i++)
		tide_future_unref(c[i]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

/* test_tasks.test_success (GatherTestsBase): done once every child is. */
START_TEST(test_tasks__test_success)
{
	check_gather_success(0);
}
END_TEST

/* test_tasks.test_result_exception_success: the same with return_exceptions. */
START_TEST(test_tasks__test_result_exception_success)
{
	check_gather_success(1);
}
END_TEST

/* test_tasks.test_one_exception: the first error fails the gather at
 * once; the others change nothing after. */
START_TEST(test_tasks__test_one_exception)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *c[5], *fut;

	for (int i = 0; i < 5; i++)
		c[i] = new_future(loop);
	ck_assert_int_eq(tide_gather(loop, c, 5, 0, &fut), 0);
	g_cb_calls = 0;
	ck_assert_int_eq(tide_future_add_done_callback(fut, count_cb, NULL), 0);
	ck_assert_int_eq(tide_future_set_result(c[0], 1, NULL), 0);
	ck_assert_int_eq(tide_future_set_error(c[1], -EDOM), 0);
	run_ready(loop);
	ck_assert_int_eq(tide_future_done(fut), 1);
	ck_assert_int_eq(g_cb_calls, 1);
	ck_assert_int_eq(tide_future_error(fut), -EDOM);
	ck_assert_int_eq(tide_future_set_result(c[2], 3, NULL), 0);
	ck_assert_int_eq(tide_future_cancel(c[3]), 1);
	ck_assert_int_eq(tide_future_set_error(c[4], -EIO), 0);
	ck_assert_int_eq(tide_future_error(c[4]), -EIO);
	run_ready(loop);
	ck_assert_int_eq(g_cb_calls, 1);
	ck_assert_int_eq(tide_future_error(fut), -EDOM);
	tide_future_unref(fut);
	for (int i = 0; i < 5; i++)
		tide_future_unref(c[i]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_return_exceptions: errors stay in the children; the
 * gather is done once all are. */
START_TEST(test_tasks__test_return_exceptions)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *c[4], *fut;

	for (int i = 0; i < 4; i++)
		c[i] = new_future(loop);
	ck_assert_int_eq(tide_gather(loop, c, 4, 1, &fut), 0);
	g_cb_calls = 0;
	ck_assert_int_eq(tide_future_add_done_callback(fut, count_cb, NULL), 0);
	ck_assert_int_eq(tide_future_set_result(c[1], 1, NULL), 0);
	ck_assert_int_eq(tide_future_set_error(c[2], -EDOM), 0);
	ck_assert_int_eq(tide_future_set_result(c[0], 3, NULL), 0);
	run_ready(loop);
	ck_assert_int_eq(tide_future_done(fut), 0);
	ck_assert_int_eq(tide_future_set_error(c[3], -EIO), 0);
	run_ready(loop);
	ck_assert_int_eq(tide_future_done(fut), 1);
	ck_assert_int_eq(g_cb_calls, 1);
	ck_assert_int_eq(tide_future_error(fut), 0);
	/* [3, 1, exc, exc2] */
	ck_assert_int_eq(tt_result(c[0]), 3);
	ck_assert_int_eq(tt_result(c[1]), 1);
	ck_assert_int_eq(tide_future_error(c[2]), -EDOM);
	ck_assert_int_eq(tide_future_error(c[3]), -EIO);
	tide_future_unref(fut);
	for (int i = 0; i < 4; i++)
		tide_future_unref(c[i]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_one_cancellation, differing on purpose: asyncio's
 * gather is done, not cancelled, with a CancelledError as its exception;
 * tide has one cancelled state (tide_gather), so the gather is cancelled,
 * its error -ECANCELED. Done at once, the others change nothing after. */
START_TEST(test_tasks__test_one_cancellation)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *c[5], *fut;

	for (int i = 0; i < 5; i++)
		c[i] = new_future(loop);
	ck_assert_int_eq(tide_gather(loop, c, 5, 0, &fut), 0);
	g_cb_calls = 0;
	ck_assert_int_eq(tide_future_add_done_callback(fut, count_cb, NULL), 0);
	ck_assert_int_eq(tide_future_set_result(c[0], 1, NULL), 0);
	ck_assert_int_eq(tide_future_cancel(c[1]), 1);
	run_ready(loop);
	ck_assert_int_eq(tide_future_done(fut), 1);
	ck_assert_int_eq(g_cb_calls, 1);
	ck_assert_int_eq(tide_future_cancelled(fut), 1);
	ck_assert_int_eq(tide_future_error(fut), -ECANCELED);
	ck_assert_int_eq(tide_future_set_result(c[2], 3, NULL), 0);
	ck_assert_int_eq(tide_future_cancel(c[3]), 1);
	ck_assert_int_eq(tide_future_set_error(c[4], -EIO), 0);
	ck_assert_int_eq(tide_future_error(c[4]), -EIO);
	run_ready(loop);
	ck_assert_int_eq(g_cb_calls, 1);
	tide_future_unref(fut);
	for (int i = 0; i < 5; i++)
		tide_future_unref(c[i]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_result_exception_one_cancellation: with
 * return_exceptions a cancelled child is one more outcome. */
START_TEST(test_tasks__test_result_exception_one_cancellation)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *c[6], *fut;

	for (int i = 0; i < 6; i++)
		c[i] = new_future(loop);
	ck_assert_int_eq(tide_gather(loop, c, 6, 1, &fut), 0);
	g_cb_calls = 0;
	ck_assert_int_eq(tide_future_add_done_callback(fut, count_cb, NULL), 0);
	ck_assert_int_eq(tide_future_set_result(c[0], 1, NULL), 0);
	ck_assert_int_eq(tide_future_set_error(c[1], -EDOM), 0);
	ck_assert_int_eq(tide_future_cancel(c[2]), 1);
	run_ready(loop);
	ck_assert_int_eq(tide_future_done(fut), 0);
	ck_assert_int_eq(tide_future_set_result(c[3], 3, NULL), 0);
	ck_assert_int_eq(tide_future_cancel(c[4]), 1);
	ck_assert_int_eq(tide_future_set_error(c[5], -EIO), 0);
	tt_run_until_complete(loop, fut, 0);
	/* [1, zde, CancelledError, 3, CancelledError, rte] */
	ck_assert_int_eq(tt_result(c[0]), 1);
	ck_assert_int_eq(tide_future_error(c[1]), -EDOM);
	ck_assert_int_eq(tide_future_error(c[2]), -ECANCELED);
	ck_assert_int_eq(tt_result(c[3]), 3);
	ck_assert_int_eq(tide_future_error(c[4]), -ECANCELED);
	ck_assert_int_eq(tide_future_error(c[5]), -EIO);
	run_ready(loop);
	ck_assert_int_eq(g_cb_calls, 1);
	tide_future_unref(fut);
	for (int i = 0; i < 6; i++)
		tide_future_unref(c[i]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_constructor_empty_sequence_use_running_loop: gather()
 * of nothing is done, on the loop given, with an empty result. */
START_TEST(test_tasks__test_constructor_empty_sequence_use_running_loop)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	ck_assert_int_eq(tide_gather(loop, NULL, 0, 0, &fut), 0);
	ck_assert_ptr_eq(tide_future_loop(fut), loop);
	run_ready(loop);
	ck_assert_int_eq(tide_future_done(fut), 1);
	ck_assert_int_eq(tt_result(fut), 0);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_tasks.test_constructor_heterogenous_futures: futures of two loops
 * are -EINVAL (asyncio's ValueError). */
START_TEST(test_tasks__test_constructor_heterogenous_futures)
{
	struct tide_loop *one = tt_loop_new(), *other = tt_loop_new();
	struct tide_future *c[2] = {new_future(one), new_future(other)}, *fut = NULL;

	ck_assert_int_eq(tide_gather(one, c, 2, 0, &fut), -EINVAL);
	ck_assert_int_eq(tide_gather(other, c, 2, 0, &fut), -EINVAL);
	ck_assert_ptr_null(fut);
	tide_future_unref(c[0]);
	tide_future_unref(c[1]);
	ck_assert_int_eq(tide_loop_free(other), 0);
	ck_assert_int_eq(tide_loop_free(one), 0);
}
END_TEST

/* test_tasks.test_constructor_homogenous_futures: the gather is on the
 * children's loop, pending while they are. */
START_TEST(test_tasks__test_constructor_homogenous_futures)
{
	struct tide_loop *other = tt_loop_new();
	struct tide_future *c[3], *fut;

	for (int i = 0; i < 3; i++)
		c[i] = new_future(other);
	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(tide_gather(other, c, 3, 0, &fut), 0);
		ck_assert_ptr_eq(tide_future_loop(fut), other);
		run_ready(other);
		ck_assert_int_eq(tide_future_done(fut), 0);
		tide_future_unref(fut);
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(tide_future_set_result(c[i], i, NULL), 0);
		tide_future_unref(c[i]);
	}
	run_ready(other);
	ck_assert_int_eq(tide_loop_free(other), 0);
}
END_TEST

static struct tide_future *g_gatherer;
static struct tide_future *g_children[2];

static int64_t broadcast_outer(void *arg)
{
	int64_t r;

	(void)arg;
	ck_assert_int_eq(tide_gather(cur_loop(), g_children, 2, 0, &g_gatherer), 0);
	r = tide_await(g_gatherer);
	if (r >= 0)
		g_proof += 100;
	return r;
}

/* test_tasks.test_cancellation_broadcast: cancelling the task awaiting a
 * gather cancels every child. */
START_TEST(test_tasks__test_cancellation_broadcast)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *waiter = new_future(loop), *f;

	g_proof = 0;
	g_children[0] = tt_spawn(loop, proof_inner, waiter);
	g_children[1] = tt_spawn(loop, proof_inner, waiter);
	f = tt_spawn(loop, broadcast_outer, NULL);
	run_briefly(loop);
	ck_assert_int_eq(tide_task_cancel(f), 1);
	tt_run_until_complete(loop, f, -ECANCELED);
	ck_assert_int_eq(tide_future_cancel(g_gatherer), 0);
	ck_assert_int_eq(tide_future_cancelled(waiter), 1);
	ck_assert_int_eq(tide_future_cancelled(g_children[0]), 1);
	ck_assert_int_eq(tide_future_cancelled(g_children[1]), 1);
	run_briefly(loop);
	ck_assert_int_eq(g_proof, 0);
	tide_future_unref(g_gatherer);
	tide_future_unref(g_children[0]);
	tide_future_unref(g_children[1]);
	tide_future_unref(f);
	tide_future_unref(waiter);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t await_then_eio(void *arg)
{
	int64_t r = tide_await(arg);

	return r < 0 ? r : -EIO;
}

static int64_t marking_outer(void *arg)
{
	struct tide_future **ab = arg;
	struct tide_future *c[2] = {tt_spawn(NULL, await_then_eio, ab[0]), tt_spawn(NULL, await_then_eio, ab[1])}, *g;
	int64_t r;

	ck_assert_int_eq(tide_gather(cur_loop(), c, 2, 0, &g), 0);
	r = tide_await(g);
	tide_future_unref(g);
	tide_future_unref(c[0]);
	tide_future_unref(c[1]);
	return r;
}

/* test_tasks.test_exception_marking: the gather's awaiter gets the
 * children's error. */
START_TEST(test_tasks__test_exception_marking)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *ab[2] = {new_future(loop), new_future(loop)};
	struct tide_future *f = tt_spawn(loop, marking_outer, ab);

	run_briefly(loop);
	ck_assert_int_eq(tide_future_set_result(ab[0], 0, NULL), 0);
	run_briefly(loop);
	ck_assert_int_eq(tide_future_set_result(ab[1], 0, NULL), 0);
	tt_run_until_complete(loop, f, -EIO);
	ck_assert_int_eq(tide_future_error(f), -EIO);
	tide_future_unref(f);
	tide_future_unref(ab[0]);
	tide_future_unref(ab[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int g_result;

static void inc_result(void *arg)
{
	g_result += (int)(intptr_t)arg;
}

static int64_t sleep_zero_body(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_call_soon(cur_loop(), inc_result, (void *)1, NULL), 0);
	ck_assert_int_eq(g_result, 0);
	ck_assert_int_eq(tide_sleep(0), 0);
	/* The callback queued before the sleep ran during it. */
	ck_assert_int_eq(g_result, 1);
	g_result += 10;
	return 0;
}

/* test_tasks.test_sleep_zero (SleepTests): sleep(0) lets what was queued run. */
START_TEST(test_tasks__test_sleep_zero)
{
	g_result = 0;
	tt_run_main(&g_loop, sleep_zero_body, NULL);
	ck_assert_int_eq(g_result, 11);
}
END_TEST


static int g_x;

static int64_t stop_at_two(void *arg)
{
	int r;

	(void)arg;
	while (g_x < 10) {
		if ((r = tide_sleep(0.01)))
			return r;
		g_x++;
		if (g_x == 2)
			tide_loop_stop(cur_loop());
	}
	return 0;
}

/* test_tasks.test_stop_while_run_in_complete: the loop stopped before the
 * task is done: TIDE_ESTOPPED (asyncio's RuntimeError 'Event loop stopped
 * before Future completed.'), the task pending; cancelled afterwards. */
START_TEST(test_tasks__test_stop_while_run_in_complete)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	g_x = 0;
	t = tt_spawn(loop, stop_at_two, NULL);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, t), TIDE_ESTOPPED);
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(g_x, 2);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, t), -ECANCELED);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t as_completed_duplicates_body(void *arg)
{
	struct tide_future *c = tt_spawn(NULL, return_arg, MS('h')), *d = tt_spawn(NULL, return_arg, MS('s'));
	struct tide_future *futs[3] = {c, c, d}, *next;
	struct tide_as_completed *it;
	int64_t got[3];
	int n = 0;

	(void)arg;
	ck_assert_int_eq(tide_as_completed_new(futs, 3, TIDE_TIMEOUT_NONE, &it), 0);
	while (tide_as_completed_next(it, &next) == 0) {
		ck_assert_int_lt(n, 3);
		got[n++] = tide_await(next);
	}
	tide_as_completed_free(it);
	/* asyncio iterates over the set {c, d}: each future once. */
	ck_assert_int_eq(n, 2);
	ck_assert((got[0] == 'h' && got[1] == 's') || (got[0] == 's' && got[1] == 'h'));
	tide_future_unref(c);
	tide_future_unref(d);
	return 0;
}

/* test_tasks.test_as_completed_duplicate_coroutines: a future given twice
 * comes out once. */
START_TEST(test_tasks__test_as_completed_duplicate_coroutines)
{
	tt_run_main(&g_loop, as_completed_duplicates_body, NULL);
}
END_TEST

static int64_t named_task_body(void *arg)
{
	struct tide_task_opts opts = {.size = sizeof(opts), .name = "No-op"};
	struct tide_future *t, *u;

	(void)arg;
	ck_assert_int_eq(tide_task_spawn(cur_loop(), return_arg, NULL, &opts, &t), 0);
	ck_assert_str_eq(tide_task_name(t), "No-op");
	ck_assert_int_eq(tide_await(t), 0);
	/* Without a name: "Task-N". */
	u = tt_spawn(NULL, return_arg, NULL);
	ck_assert_msg(strncmp(tide_task_name(u), "Task-", 5) == 0, "name '%s'", tide_task_name(u));
	ck_assert_int_eq(tide_await(u), 0);
	tide_future_unref(t);
	tide_future_unref(u);
	return 0;
}

/* test_tasks.test_bare_create_named_task */
START_TEST(test_tasks__test_bare_create_named_task)
{
	tt_run_main(&g_loop, named_task_body, NULL);
}
END_TEST

/* ------------------------------------------------------------ waitfor -- */

/* test_waitfor's SlowTask: sleeps, and notes that it exited (its finally). */
static int g_exited;

static int64_t slow_task_run(void *arg)
{
	int r = tide_sleep((double)(intptr_t)arg / 1000);

	g_exited = 1;
	return r;
}

static int64_t wait_for_arg(void *arg)
{
	return tide_wait_for(arg, 0.4);
}

static int64_t wait_for_cancelled_body(void *arg)
{
	struct tide_future *slow = tt_spawn(NULL, slow_task_run, MS(200));
	struct tide_future *wft = tt_spawn(NULL, wait_for_arg, slow);

	(void)arg;
	g_exited = 0;
	ck_assert_int_eq(tide_sleep(0), 0);
	ck_assert_int_eq(tide_task_cancel(wft), 1);
	wait_done(wft);
	ck_assert_int_eq(tide_future_cancelled(wft), 1);
	/* The cancel reached the inner task through wait_for, which waited for it. */
	ck_assert_int_eq(g_exited, 1);
	ck_assert_int_eq(tide_future_cancelled(slow), 1);
	tide_future_unref(wft);
	tide_future_unref(slow);
	return 0;
}

/* test_waitfor.test_asyncio_wait_for_cancelled: cancelling wait_for
 * cancels the inner task and waits for it to exit. */
START_TEST(test_waitfor__test_asyncio_wait_for_cancelled)
{
	tt_run_main(&g_loop, wait_for_cancelled_body, NULL);
}
END_TEST

static int64_t wait_for_timeout_body(void *arg)
{
	struct tide_future *slow = tt_spawn(NULL, slow_task_run, MS(200));

	(void)arg;
	g_exited = 0;
	ck_assert_int_eq(tide_wait_for(slow, 0.1), -ETIMEDOUT);
	ck_assert_int_eq(g_exited, 1);
	ck_assert_int_eq(tide_future_cancelled(slow), 1);
	tide_future_unref(slow);
	return 0;
}

/* test_waitfor.test_asyncio_wait_for_timeout: the inner task has exited
 * when TimeoutError comes. */
START_TEST(test_waitfor__test_asyncio_wait_for_timeout)
{
	tt_run_main(&g_loop, wait_for_timeout_body, NULL);
}
END_TEST

static int64_t wait_for_done_body(void *arg)
{
	struct tide_future *fut = new_future(cur_loop());

	(void)arg;
	ck_assert_int_eq(tide_future_set_result(fut, 'd', NULL), 0);
	ck_assert_int_eq(tide_wait_for(fut, 0), 'd');
	ck_assert_int_eq(tide_wait_for(fut, -1), 'd');
	ck_assert_int_eq(tide_future_done(fut), 1);
	tide_future_unref(fut);
	return 0;
}

/* test_waitfor.test_wait_for_timeout_less_then_0_or_0_future_done */
START_TEST(test_waitfor__test_wait_for_timeout_less_then_0_or_0_future_done)
{
	tt_run_main(&g_loop, wait_for_done_body, NULL);
}
END_TEST

static int g_foo_running;

static int64_t foo_started_sleep(void *arg)
{
	int r;

	g_foo_running = 1;
	ck_assert_int_eq(tide_future_set_result(arg, 0, NULL), 0);
	r = tide_sleep(10);
	g_foo_running = 0;
	return r ? r : 'd';
}

static int64_t wait_for_le0_body(void *arg)
{
	static const double timeouts[] = {0, -1};

	(void)arg;
	for (int i = 0; i < 2; i++) {
		struct tide_future *started = new_future(cur_loop());
		struct tide_future *fut = tt_spawn(NULL, foo_started_sleep, started);

		g_foo_running = -1;
		ck_assert_int_eq(tide_await(started), 0);
		ck_assert_int_eq(tide_wait_for(fut, timeouts[i]), -ETIMEDOUT);
		ck_assert_int_eq(tide_future_done(fut), 1);
		ck_assert_int_eq(tide_future_cancelled(fut), 1);
		ck_assert_int_eq(g_foo_running, 0);
		tide_future_unref(fut);
		tide_future_unref(started);
	}
	return 0;
}

/* test_waitfor.test_wait_for_timeout_less_then_0_or_0: a running task is
 * cancelled and waited for. */
START_TEST(test_waitfor__test_wait_for_timeout_less_then_0_or_0)
{
	tt_run_main(&g_loop, wait_for_le0_body, NULL);
}
END_TEST

static int64_t foo_long_sleep(void *arg)
{
	int r;

	(void)arg;
	g_foo_running = 1;
	r = tide_sleep(300);
	g_foo_running = 0;
	return r ? r : 'd';
}

static int64_t wait_for_body(void *arg)
{
	struct tide_future *fut = tt_spawn(NULL, foo_long_sleep, NULL);
	double t0 = tide_loop_time(cur_loop());

	(void)arg;
	ck_assert_int_eq(tide_wait_for(fut, 0.1), -ETIMEDOUT);
	ck_assert(tide_loop_time(cur_loop()) >= t0 + 0.1);
	ck_assert_int_eq(tide_future_done(fut), 1);
	ck_assert_int_eq(tide_future_cancelled(fut), 1);
	ck_assert_int_eq(g_foo_running, 0);
	tide_future_unref(fut);
	return 0;
}

/* test_waitfor.test_wait_for: on timeout the task is cancelled and has
 * ended. */
START_TEST(test_waitfor__test_wait_for)
{
	tt_run_main(&g_loop, wait_for_body, NULL);
}
END_TEST

static int64_t wait_for_blocking_body(void *arg)
{
	struct tide_future *c = tt_spawn(NULL, return_arg, MS('d'));

	(void)arg;
	ck_assert_int_eq(tide_wait_for(c, TIDE_TIMEOUT_NONE), 'd');
	tide_future_unref(c);
	return 0;
}

/* test_waitfor.test_wait_for_blocking: timeout=None just awaits. */
START_TEST(test_waitfor__test_wait_for_blocking)
{
	tt_run_main(&g_loop, wait_for_blocking_body, NULL);
}
END_TEST

static void set_ok_cb(void *arg)
{
	ck_assert_int_eq(tide_future_set_result(arg, 'k', NULL), 0);
}

static int64_t wait_for_race_body(void *arg)
{
	struct tide_future *fut = new_future(cur_loop());

	(void)arg;
	ck_assert_int_eq(tide_call_later(cur_loop(), 0.01, set_ok_cb, fut, NULL), 0);
	ck_assert_int_eq(tide_wait_for(fut, 2), 'k');
	tide_future_unref(fut);
	return 0;
}

/* test_waitfor.test_wait_for_race_condition: the result set before the
 * deadline is returned. */
START_TEST(test_waitfor__test_wait_for_race_condition)
{
	tt_run_main(&g_loop, wait_for_race_body, NULL);
}
END_TEST

static int64_t catch_cancel_return_1(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_sleep(1), -ECANCELED);
	return 1;
}

static int64_t wait_for_cancel_race_body(void *arg)
{
	struct tide_future *inner = tt_spawn(NULL, catch_cancel_return_1, NULL);

	(void)arg;
	/* The inner task swallows the timeout's cancel: its result wins. */
	ck_assert_int_eq(tide_wait_for(inner, 0.01), 1);
	tide_future_unref(inner);
	return 0;
}

/* test_waitfor.test_wait_for_cancellation_race_condition */
START_TEST(test_waitfor__test_wait_for_cancellation_race_condition)
{
	tt_run_main(&g_loop, wait_for_cancel_race_body, NULL);
}
END_TEST

static int g_task_done;

static int64_t slow_to_cancel(void *arg)
{
	int r = tide_sleep(10);

	(void)arg;
	if (r == -ECANCELED)
		ck_assert_int_eq(tide_sleep(0.01), 0);
	g_task_done = 1;
	return r;
}

static int64_t waits_for_cancellation_body(void *arg)
{
	struct tide_future *inner = tt_spawn(NULL, slow_to_cancel, NULL);

	g_task_done = 0;
	if (arg) /* the _w_timeout_0 variant: the inner task runs first */
		ck_assert_int_eq(tide_sleep(0.01), 0);
	ck_assert_int_eq(tide_wait_for(inner, arg ? 0 : 0.01), -ETIMEDOUT);
	ck_assert_int_eq(g_task_done, 1);
	ck_assert_int_eq(tide_future_cancelled(inner), 1);
	tide_future_unref(inner);
	return 0;
}

/* test_waitfor.test_wait_for_waits_for_task_cancellation: TimeoutError
 * only once the inner task has finished handling its cancel. */
START_TEST(test_waitfor__test_wait_for_waits_for_task_cancellation)
{
	tt_run_main(&g_loop, waits_for_cancellation_body, NULL);
}
END_TEST

/* test_waitfor.test_wait_for_waits_for_task_cancellation_w_timeout_0 */
START_TEST(test_waitfor__test_wait_for_waits_for_task_cancellation_w_timeout_0)
{
	tt_run_main(&g_loop, waits_for_cancellation_body, MS(1));
}
END_TEST

static int64_t raise_in_finally(void *arg)
{
	(void)arg;
	(void)tide_sleep(0.2);
	return -EDOM; /* finally: raise FooException */
}

static int64_t wait_for_reraises_body(void *arg)
{
	struct tide_future *inner = tt_spawn(NULL, raise_in_finally, NULL);

	(void)arg;
	ck_assert_int_eq(tide_wait_for(inner, 0.01), -EDOM);
	tide_future_unref(inner);
	return 0;
}

/* test_waitfor.test_wait_for_reraises_exception_during_cancellation: an
 * error the inner task raises while cancelled comes out of wait_for. */
START_TEST(test_waitfor__test_wait_for_reraises_exception_during_cancellation)
{
	tt_run_main(&g_loop, wait_for_reraises_body, NULL);
}
END_TEST

static int64_t blocking_coroutine(void *arg)
{
	struct tide_future *fut = new_future(cur_loop());
	int64_t r;

	(void)arg;
	r = tide_await(fut); /* never set */
	tide_future_unref(fut);
	return r;
}

static double g_wf_timeout;

static int64_t wait_for_global_timeout(void *arg)
{
	return tide_wait_for(arg, g_wf_timeout);
}

static int64_t cancel_wait_for_body(void *arg)
{
	struct tide_future *task = tt_spawn(NULL, blocking_coroutine, NULL), *wait;

	(void)arg;
	wait = tt_spawn(NULL, wait_for_global_timeout, task);
	ck_assert_int_eq(tide_call_soon(cur_loop(), cancel_task_cb, wait, NULL), 0);
	ck_assert_int_eq(tide_await(wait), -ECANCELED);
	/* Python issue #23219: cancelling the wait cancels the task. */
	ck_assert_int_eq(tide_future_cancelled(task), 1);
	tide_future_unref(wait);
	tide_future_unref(task);
	return 0;
}

/* test_waitfor.test_cancel_blocking_wait_for: timeout=None. */
START_TEST(test_waitfor__test_cancel_blocking_wait_for)
{
	g_wf_timeout = TIDE_TIMEOUT_NONE;
	tt_run_main(&g_loop, cancel_wait_for_body, NULL);
}
END_TEST

/* test_waitfor.test_cancel_wait_for: timeout=60. */
START_TEST(test_waitfor__test_cancel_wait_for)
{
	g_wf_timeout = 60;
	tt_run_main(&g_loop, cancel_wait_for_body, NULL);
}
END_TEST

static int64_t holds_up_cancel(void *arg)
{
	(void)arg;
	if (tide_sleep(0.3) == -ECANCELED && tide_sleep(0.3) == -ECANCELED)
		(void)tide_sleep(0.3);
	return 42;
}

static int64_t wait_for_self_cancellation_body(void *arg)
{
	struct tide_future *inner = tt_spawn(NULL, holds_up_cancel, NULL), *task;

	(void)arg;
	g_wf_timeout = 0.1;
	task = tt_spawn(NULL, wait_for_global_timeout, inner);
	ck_assert_int_eq(tide_sleep(0.2), 0);
	ck_assert_int_eq(tide_task_cancel(task), 1);
	/* Both cancels went on to the inner task, which swallowed them and
	 * returned 42: that result won, and wait_for returns it. */
	ck_assert_int_eq(tide_await(task), 42);
	ck_assert_int_eq(tide_future_cancelled(task), 0);
	ck_assert_int_eq(tide_await(inner), 42);
	tide_future_unref(task);
	tide_future_unref(inner);
	return 0;
}

/*
 * test_waitfor.test_wait_for_self_cancellation, differing on purpose: the
 * inner task holds up the timeout's cancel, then the wait_for task is
 * cancelled too. asyncio 3.11's wait_for raises CancelledError; tide's is
 * 3.12's, a timeout scope around the await (tide_wait_for: the inner
 * result that wins the race is returned), which returns the 42 the inner
 * task ended with, the cancel having gone to the inner task. CPython 3.12
 * dropped this test with that change.
 */
START_TEST(test_waitfor__test_wait_for_self_cancellation)
{
	tt_run_main(&g_loop, wait_for_self_cancellation_body, NULL);
}
END_TEST

static int64_t done_at_once(void *arg)
{
	(void)arg;
	return 'd';
}

static int g_reached_end;

static int64_t wait_for_coro(void *arg)
{
	int64_t r = tide_wait_for(arg, 100);

	if (r < 0)
		return r;
	if ((r = tide_sleep(1)))
		return r;
	g_reached_end = 1;
	return 0;
}

static int64_t issue86296_body(void *arg)
{
	struct tide_future *inner = tt_spawn(NULL, done_at_once, NULL), *task;

	(void)arg;
	g_reached_end = 0;
	task = tt_spawn(NULL, wait_for_coro, inner);
	ck_assert_int_eq(tide_future_done(task), 0);
	ck_assert_int_eq(tide_sleep(0), 0);
	ck_assert_int_eq(tide_task_cancel(task), 1);
	ck_assert_int_eq(tide_await(task), -ECANCELED);
	ck_assert_int_eq(tide_future_done(inner), 1);
	ck_assert_int_eq(tide_await(inner), 'd');
	ck_assert_int_eq(g_reached_end, 0);
	tide_future_unref(task);
	tide_future_unref(inner);
	return 0;
}

/* test_waitfor.test_wait_for_issue86296 (3.12): a task cancelled just
 * after its wait_for got the inner result is cancelled all the same. */
START_TEST(test_waitfor__test_wait_for_issue86296)
{
	tt_run_main(&g_loop, issue86296_body, NULL);
}
END_TEST

static int64_t sleep_10ms_done(void *arg)
{
	int r = tide_sleep((double)(intptr_t)arg / 1000);

	return r ? r : 'd';
}

static int64_t shield_zero_timeout_body(void *arg)
{
	struct tide_future *task = tt_spawn(NULL, sleep_10ms_done, MS(10)), *shielded;

	(void)arg;
	ck_assert_int_eq(tide_shield(task, &shielded), 0);
	ck_assert_int_eq(tide_wait_for(shielded, 0), -ETIMEDOUT);
	/* The task runs on in the background. */
	ck_assert_int_eq(tide_future_done(task), 0);
	ck_assert_int_eq(tide_future_cancelled(task), 0);
	ck_assert_int_eq(tide_future_cancelled(shielded), 1);
	ck_assert_int_eq(tide_sleep(0.1), 0);
	ck_assert_int_eq(tide_future_done(task), 1);
	ck_assert_int_eq(tt_result(task), 'd');
	tide_future_unref(shielded);
	tide_future_unref(task);
	return 0;
}

/* test_waitfor.test_zero_timeout (3.12, WaitForShieldTests): timeout 0
 * cancels the shield, not the task behind it. */
START_TEST(test_waitfor__test_zero_timeout)
{
	tt_run_main(&g_loop, shield_zero_timeout_body, NULL);
}
END_TEST

static int64_t shield_none_timeout_body(void *arg)
{
	struct tide_future *task = tt_spawn(NULL, sleep_10ms_done, MS(100)), *shielded;

	(void)arg;
	ck_assert_int_eq(tide_shield(task, &shielded), 0);
	ck_assert_int_eq(tide_wait_for(shielded, TIDE_TIMEOUT_NONE), 'd');
	ck_assert_int_eq(tide_future_done(task), 1);
	ck_assert_int_eq(tide_await(task), 'd');
	tide_future_unref(shielded);
	tide_future_unref(task);
	return 0;
}

/* test_waitfor.test_none_timeout (3.12): runs to completion. */
START_TEST(test_waitfor__test_none_timeout)
{
	tt_run_main(&g_loop, shield_none_timeout_body, NULL);
}
END_TEST

static int64_t shielded_timeout_body(void *arg)
{
	struct tide_future *task = tt_spawn(NULL, sleep_10ms_done, MS(100)), *shielded;

	(void)arg;
	ck_assert_int_eq(tide_shield(task, &shielded), 0);
	ck_assert_int_eq(tide_wait_for(shielded, 0.01), -ETIMEDOUT);
	ck_assert_int_eq(tide_future_done(task), 0);
	ck_assert_int_eq(tide_future_cancelled(task), 0);
	ck_assert_int_eq(tide_await(task), 'd');
	tide_future_unref(shielded);
	tide_future_unref(task);
	return 0;
}

/* test_waitfor.test_shielded_timeout (3.12): the shield keeps the task
 * from the timeout's cancel. */
START_TEST(test_waitfor__test_shielded_timeout)
{
	tt_run_main(&g_loop, shielded_timeout_body, NULL);
}
END_TEST

/* ----------------------------------------------------------- timeouts -- */

static int64_t timeout_basic_body(void *arg)
{
	struct tide_timeout *cm;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(0.01, &cm), 0);
	ck_assert_int_eq(tide_sleep(10), -ECANCELED);
	ck_assert_int_eq(tide_timeout_expired(cm), 1);
	ck_assert_int_eq(tide_timeout_exit(cm), -ETIMEDOUT);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	return 0;
}

/* test_timeouts.test_timeout_basic */
START_TEST(test_timeouts__test_timeout_basic)
{
	tt_run_main(&g_loop, timeout_basic_body, NULL);
}
END_TEST

static int64_t nested_timeouts_body(void *arg)
{
	double deadline = tide_loop_time(cur_loop()) + 0.01;
	struct tide_timeout *cm1, *cm2;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(TIDE_TIMEOUT_NONE, &cm1), 0);
	ck_assert_int_eq(tide_timeout_reschedule(cm1, deadline), 0);
	ck_assert_int_eq(tide_timeout_enter(TIDE_TIMEOUT_NONE, &cm2), 0);
	ck_assert_int_eq(tide_timeout_reschedule(cm2, deadline), 0);
	ck_assert_int_eq(tide_sleep(10), -ECANCELED);
	ck_assert_int_eq(tide_timeout_expired(cm2), 1);
	ck_assert_int_eq(tide_timeout_expired(cm1), 1);
	/* Only the topmost scope turns the cancel into TimeoutError. */
	ck_assert_int_eq(tide_timeout_exit(cm2), -ECANCELED);
	ck_assert_int_eq(tide_timeout_exit(cm1), -ETIMEDOUT);
	return 0;
}

/* test_timeouts.test_nested_timeouts */
START_TEST(test_timeouts__test_nested_timeouts)
{
	tt_run_main(&g_loop, nested_timeouts_body, NULL);
}
END_TEST

static int64_t waiter_cancelled_body(void *arg)
{
	struct tide_timeout *cm;
	int cancelled = 0;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(0.01, &cm), 0);
	if (tide_sleep(10) == -ECANCELED)
		cancelled = 1;
	ck_assert_int_eq(tide_timeout_exit(cm), -ETIMEDOUT);
	ck_assert_int_eq(cancelled, 1);
	return 0;
}

/* test_timeouts.test_waiter_cancelled: the await inside sees CancelledError. */
START_TEST(test_timeouts__test_waiter_cancelled)
{
	tt_run_main(&g_loop, waiter_cancelled_body, NULL);
}
END_TEST

static int64_t timeout_not_called_body(void *arg)
{
	struct tide_timeout *cm;
	double when, t1;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(10, &cm), 0);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	t1 = tide_loop_time(cur_loop());
	ck_assert_int_eq(tide_timeout_expired(cm), 0);
	ck_assert_int_eq(tide_timeout_when(cm, &when), 0);
	ck_assert(when > t1);
	ck_assert_int_eq(tide_timeout_exit(cm), 0);
	return 0;
}

/* test_timeouts.test_timeout_not_called */
START_TEST(test_timeouts__test_timeout_not_called)
{
	tt_run_main(&g_loop, timeout_not_called_body, NULL);
}
END_TEST

static int64_t timeout_zero_body(void *arg)
{
	double t0 = tide_loop_time(cur_loop()), t1, when;
	struct tide_timeout *cm;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(0, &cm), 0);
	ck_assert_int_eq(tide_sleep(10), -ECANCELED);
	t1 = tide_loop_time(cur_loop());
	ck_assert_int_eq(tide_timeout_expired(cm), 1);
	ck_assert_int_eq(tide_timeout_when(cm, &when), 0);
	ck_assert(t0 <= when && when <= t1);
	ck_assert_int_eq(tide_timeout_exit(cm), -ETIMEDOUT);
	return 0;
}

/* test_timeouts.test_timeout_zero */
START_TEST(test_timeouts__test_timeout_zero)
{
	tt_run_main(&g_loop, timeout_zero_body, NULL);
}
END_TEST

static int64_t foreign_exception_passed_body(void *arg)
{
	struct tide_timeout *cm;
	int r;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(0.01, &cm), 0);
	r = -ENOKEY; /* raise KeyError */
	ck_assert_int_eq(tide_timeout_expired(cm), 0);
	ck_assert_int_eq(tide_timeout_exit(cm), 0);
	ck_assert_int_eq(r, -ENOKEY);
	return 0;
}

/* test_timeouts.test_foreign_exception_passed: an error of the block
 * before the deadline is left alone (exit says the scope did not expire). */
START_TEST(test_timeouts__test_foreign_exception_passed)
{
	tt_run_main(&g_loop, foreign_exception_passed_body, NULL);
}
END_TEST

static int64_t crash(void)
{
	(void)tide_sleep(1);
	return -EDOM; /* finally: 1/0 */
}

static int64_t foreign_exception_on_timeout_body(void *arg)
{
	struct tide_timeout *cm;
	int64_t r;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(0.01, &cm), 0);
	r = crash();
	ck_assert_int_eq(tide_timeout_expired(cm), 1);
	/* The scope expired, but the block ended with its own error, not the
	 * cancellation: that error is the outcome (asyncio's __aexit__ only
	 * converts CancelledError), as in tide_wait_for. */
	ck_assert_int_eq(tide_timeout_exit(cm), -ETIMEDOUT);
	ck_assert_int_eq(r, -EDOM);
	return 0;
}

/* test_timeouts.test_foreign_exception_on_timeout */
START_TEST(test_timeouts__test_foreign_exception_on_timeout)
{
	tt_run_main(&g_loop, foreign_exception_on_timeout_body, NULL);
}
END_TEST

static int64_t foreign_cancel_body(void *arg)
{
	struct tide_timeout *cm;
	int r;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(10, &cm), 0);
	ck_assert_int_eq(tide_task_cancel(tide_current_task()), 1);
	r = tide_sleep(10);
	ck_assert_int_eq(r, -ECANCELED);
	ck_assert_int_eq(tide_timeout_expired(cm), 0);
	/* Not ours: the cancellation goes on. */
	ck_assert_int_eq(tide_timeout_exit(cm), 0);
	return r;
}

/* test_timeouts.test_foreign_cancel_doesnt_timeout_if_not_expired */
START_TEST(test_timeouts__test_foreign_cancel_doesnt_timeout_if_not_expired)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, foreign_cancel_body, NULL);

	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t outer_timeout_task(void *arg)
{
	struct tide_timeout *cm;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(0.001, &cm), 0);
	ck_assert_int_eq(tide_sleep(10), -ECANCELED);
	ck_assert_int_eq(tide_timeout_exit(cm), -ETIMEDOUT);
	return 0;
}

static int64_t outer_not_cancelled_body(void *arg)
{
	struct tide_future *task = tt_spawn(NULL, outer_timeout_task, NULL);

	(void)arg;
	ck_assert_int_eq(tide_await(task), 0);
	ck_assert_int_eq(tide_future_cancelled(task), 0);
	ck_assert_int_eq(tide_future_done(task), 1);
	ck_assert_int_eq(tide_task_cancelling(task), 0);
	tide_future_unref(task);
	return 0;
}

/* test_timeouts.test_outer_task_is_not_cancelled: the task that timed
 * out inside a scope ends normally. */
START_TEST(test_timeouts__test_outer_task_is_not_cancelled)
{
	tt_run_main(&g_loop, outer_not_cancelled_body, NULL);
}
END_TEST

static int64_t nested_concurrent_body(void *arg)
{
	struct tide_timeout *outer, *inner;
	int expired;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(0.002, &outer), 0);
	ck_assert_int_eq(tide_timeout_enter(0.1, &inner), 0);
	tt_sleep_ms(10); /* pretend we crunch some numbers */
	ck_assert_int_eq(tide_sleep(1), -ECANCELED);
	/* The outer deadline passed (the inner one too on a machine slow
	 * enough): the inner scope lets the cancellation through, the outer
	 * turns it into TimeoutError. */
	expired = tide_timeout_expired(inner);
	ck_assert_int_eq(tide_timeout_exit(inner), expired ? -ECANCELED : 0);
	ck_assert_int_eq(tide_timeout_exit(outer), -ETIMEDOUT);
	return 0;
}

/* test_timeouts.test_nested_timeouts_concurrent */
START_TEST(test_timeouts__test_nested_timeouts_concurrent)
{
	tt_run_main(&g_loop, nested_concurrent_body, NULL);
}
END_TEST

static int64_t nested_loop_busy_body(void *arg)
{
	struct tide_loop *loop = cur_loop();
	double t0 = tide_loop_time(loop);
	struct tide_timeout *outer, *inner;
	int r;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(0.1, &outer), 0);
	ck_assert_int_eq(tide_timeout_enter(0.01, &inner), 0);
	tt_sleep_ms(100); /* the loop is busy for a while */
	ck_assert_int_eq(tide_sleep(1), -ECANCELED);
	r = tide_timeout_exit(inner);
	/* As in asyncio, both deadlines have passed by the time the loop runs
	 * again, so the inner scope may see the outer's request too and let
	 * the cancellation through; else it times out and the outer scope
	 * interrupts the next await. */
	ck_assert(r == -ETIMEDOUT || r == -ECANCELED);
	if (r == -ETIMEDOUT)
		ck_assert_int_eq(tide_sleep(10), -ECANCELED);
	ck_assert_int_eq(tide_timeout_exit(outer), -ETIMEDOUT);
	ck_assert(tide_loop_time(loop) - t0 < TT_HANG_S);
	return 0;
}

/* test_timeouts.test_nested_timeouts_loop_busy: the outer scope stops
 * what follows the inner one. */
START_TEST(test_timeouts__test_nested_timeouts_loop_busy)
{
	struct tide_loop_opts opts;

	tt_opts_init(&opts);
	opts.slow_callback_duration = 10;
	tt_run_main_opts(&g_loop, &opts, nested_loop_busy_body, NULL);
}
END_TEST

static struct tide_timeout *g_cm;
static int g_cm_expired;

static int64_t reschedule_task(void *arg)
{
	struct tide_future *fut = arg;
	int r;

	ck_assert_int_eq(tide_timeout_enter(10, &g_cm), 0);
	ck_assert_int_eq(tide_future_set_result(fut, 0, NULL), 0);
	r = tide_sleep(50);
	g_cm_expired = tide_timeout_expired(g_cm);
	ck_assert_int_eq(tide_timeout_exit(g_cm), 0);
	g_cm = NULL;
	return r;
}

static int64_t reschedule_body(void *arg)
{
	struct tide_future *fut = new_future(cur_loop()), *task;
	double deadline1, deadline2, when;

	(void)arg;
	task = tt_spawn(NULL, reschedule_task, fut);
	ck_assert_int_eq(tide_await(fut), 0);
	ck_assert_int_eq(tide_timeout_when(g_cm, &deadline1), 0);
	deadline2 = deadline1 + 20;
	ck_assert_int_eq(tide_timeout_reschedule(g_cm, deadline2), 0);
	ck_assert_int_eq(tide_timeout_when(g_cm, &when), 0);
	ck_assert(when == deadline2);
	ck_assert_int_eq(tide_timeout_reschedule(g_cm, TIDE_TIMEOUT_NONE), 0);
	ck_assert_int_eq(tide_timeout_when(g_cm, &when), 0);
	ck_assert(when == TIDE_TIMEOUT_NONE);
	ck_assert_int_eq(tide_task_cancel(task), 1);
	ck_assert_int_eq(tide_await(task), -ECANCELED);
	ck_assert_int_eq(g_cm_expired, 0);
	tide_future_unref(task);
	tide_future_unref(fut);
	return 0;
}

/* test_timeouts.test_reschedule: when() follows reschedule, to a deadline
 * and to none. */
START_TEST(test_timeouts__test_reschedule)
{
	tt_run_main(&g_loop, reschedule_body, NULL);
}
END_TEST

static int64_t timeout_in_finally_body(void *arg)
{
	struct tide_timeout *outer, *inner;

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(0.01, &outer), 0);
	ck_assert_int_eq(tide_sleep(1), -ECANCELED);
	/* finally: a scope of its own, which times out on its own. */
	ck_assert_int_eq(tide_timeout_enter(0.01, &inner), 0);
	ck_assert_int_eq(tide_sleep(10), -ECANCELED);
	ck_assert_int_eq(tide_timeout_exit(inner), -ETIMEDOUT);
	ck_assert_int_eq(tide_timeout_exit(outer), -ETIMEDOUT);
	return 0;
}

/* test_timeouts.test_nested_timeout_in_finally */
START_TEST(test_timeouts__test_nested_timeout_in_finally)
{
	tt_run_main(&g_loop, timeout_in_finally_body, NULL);
}
END_TEST

static int64_t timeout_after_cancellation_body(void *arg)
{
	struct tide_timeout *cm;

	(void)arg;
	ck_assert_int_eq(tide_task_cancel(tide_current_task()), 1);
	ck_assert_int_eq(tide_sleep(1), -ECANCELED); /* caught */
	/* finally: a cleanup under a timeout of 0 still times out. */
	ck_assert_int_eq(tide_timeout_enter(0, &cm), 0);
	ck_assert_int_eq(tide_sleep(1), -ECANCELED);
	ck_assert_int_eq(tide_timeout_exit(cm), -ETIMEDOUT);
	return 0;
}

/* test_timeouts.test_timeout_after_cancellation */
START_TEST(test_timeouts__test_timeout_after_cancellation)
{
	tt_run_main(&g_loop, timeout_after_cancellation_body, NULL);
}
END_TEST

static int64_t cancel_in_timeout_after_cancellation_body(void *arg)
{
	struct tide_timeout *cm;

	(void)arg;
	ck_assert_int_eq(tide_task_cancel(tide_current_task()), 1);
	ck_assert_int_eq(tide_sleep(1), -ECANCELED); /* caught */
	ck_assert_int_eq(tide_timeout_enter(1, &cm), 0);
	ck_assert_int_eq(tide_task_cancel(tide_current_task()), 1);
	ck_assert_int_eq(tide_sleep(2), -ECANCELED);
	ck_assert_int_eq(tide_timeout_expired(cm), 0);
	/* A CancelledError, not a TimeoutError. */
	ck_assert_int_eq(tide_timeout_exit(cm), 0);
	return 0;
}

/* test_timeouts.test_cancel_in_timeout_after_cancellation */
START_TEST(test_timeouts__test_cancel_in_timeout_after_cancellation)
{
	tt_run_main(&g_loop, cancel_in_timeout_after_cancellation_body, NULL);
}
END_TEST

static int64_t timeout_expiring_body(void *arg)
{
	struct tide_timeout *cm;
	double now = tide_loop_time(cur_loop());

	(void)arg;
	ck_assert_int_eq(tide_timeout_enter(0.01, &cm), 0);
	ck_assert_int_eq(tide_sleep(1), -ECANCELED);
	/* asyncio's RuntimeError "expiring": TIDE_EINVALID_STATE. */
	ck_assert_int_eq(tide_timeout_reschedule(cm, now + 0.02), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_timeout_expired(cm), 1);
	ck_assert_int_eq(tide_timeout_exit(cm), -ETIMEDOUT);
	return 0;
}

/* test_timeouts.test_timeout_expiring: no reschedule once the deadline fired. */
START_TEST(test_timeouts__test_timeout_expiring)
{
	tt_run_main(&g_loop, timeout_expiring_body, NULL);
}
END_TEST

/* test_timeouts.test_timeout_without_task: TIDE_ENOT_IN_TASK where asyncio
 * raises RuntimeError. */
START_TEST(test_timeouts__test_timeout_without_task)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_timeout *cm = NULL;

	ck_assert_int_eq(tide_timeout_enter(0.01, &cm), TIDE_ENOT_IN_TASK);
	ck_assert_ptr_null(cm);
	ck_assert_int_eq(tide_timeout_reschedule(NULL, 1), -EINVAL);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------------- taskgroups -- */

static struct tide_taskgroup *new_group(void)
{
	struct tide_taskgroup *g = NULL;

	ck_assert_int_eq(tide_taskgroup_new(cur_loop(), &g), 0);
	return g;
}

static struct tide_future *group_spawn(struct tide_taskgroup *g, tide_task_cb fn, void *arg)
{
	struct tide_future *t = NULL;

	ck_assert_int_eq(tide_taskgroup_spawn(g, fn, arg, NULL, &t), 0);
	return t;
}

static int64_t tg01_body(void *arg)
{
	static struct sleeper s1 = {10, 42}, s2 = {20, 11};
	struct tide_taskgroup *g = new_group();
	struct tide_future *t1, *t2;

	t1 = group_spawn(g, sleeper_body, &s1);
	if (arg) /* test_taskgroup_02: the second comes later */
		ck_assert_int_eq(tide_sleep(0.015), 0);
	t2 = group_spawn(g, sleeper_body, &s2);
	ck_assert_int_eq(tide_taskgroup_wait(g), 0);
	tide_taskgroup_free(g);
	ck_assert_int_eq(tt_result(t1), 42);
	ck_assert_int_eq(tt_result(t2), 11);
	tide_future_unref(t1);
	tide_future_unref(t2);
	return 0;
}

/* test_taskgroups.test_taskgroup_01: the group waits for both children. */
START_TEST(test_taskgroups__test_taskgroup_01)
{
	tt_run_main(&g_loop, tg01_body, NULL);
}
END_TEST

/* test_taskgroups.test_taskgroup_02: a child added while the first runs. */
START_TEST(test_taskgroups__test_taskgroup_02)
{
	tt_run_main(&g_loop, tg01_body, MS(1));
}
END_TEST

static int64_t tg03_body(void *arg)
{
	static struct sleeper s1 = {1000, 42}, s2 = {20, 11};
	struct tide_taskgroup *g = new_group();
	struct tide_future *t1, *t2;

	(void)arg;
	t1 = group_spawn(g, sleeper_body, &s1);
	ck_assert_int_eq(tide_sleep(0.015), 0);
	/* A child cancelled explicitly: everything else goes on. */
	ck_assert_int_eq(tide_task_cancel(t1), 1);
	t2 = group_spawn(g, sleeper_body, &s2);
	ck_assert_int_eq(tide_taskgroup_wait(g), 0);
	ck_assert_int_eq(tide_taskgroup_errors(g, NULL, 0), 0);
	tide_taskgroup_free(g);
	ck_assert_int_eq(tide_future_cancelled(t1), 1);
	ck_assert_int_eq(tt_result(t2), 11);
	tide_future_unref(t1);
	tide_future_unref(t2);
	return 0;
}

/* test_taskgroups.test_taskgroup_03 */
START_TEST(test_taskgroups__test_taskgroup_03)
{
	tt_run_main(&g_loop, tg03_body, NULL);
}
END_TEST

static int g_num, g_t2_cancel, g_runner_cancel;

static int64_t foo_note_cancel(void *arg)
{
	int r = tide_sleep((double)(intptr_t)arg / 1000);

	if (r == -ECANCELED) {
		g_t2_cancel = 1;
		return r;
	}
	g_num += 1; /* NUM counts the children that were not cancelled */
	return 0;
}

static int64_t cancel_children_runner(void *arg)
{
	struct tide_taskgroup *g = new_group();
	int errs[4], r;
	ssize_t n;

	(void)arg;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tide_taskgroup_spawn(g, sleep_then_edom, MS(10), NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(g, foo_note_cancel, MS(5000), NULL, NULL), 0);
	if (tide_sleep(10) == -ECANCELED)
		g_runner_cancel = 1;
	r = tide_taskgroup_wait(g);
	/* The three may end apart on a busy machine: one to three errors, all ZeroDivisionError. */
	n = tide_taskgroup_errors(g, errs, 4);
	ck_assert(n >= 1 && n <= 3);
	for (ssize_t i = 0; i < n; i++)
		ck_assert_int_eq(errs[i], -EDOM);
	tide_taskgroup_free(g);
	if (r == 0)
		g_num += 10;
	return r;
}

static int64_t await_runner(void *arg)
{
	struct tide_future *r = tt_spawn(NULL, arg, NULL);
	int64_t v = tide_await(r);

	tide_future_unref(r);
	return v == -EDOM ? 0 : -EPROTO;
}

/* test_taskgroups.test_cancel_children_on_child_error: a failing child
 * cancels its siblings and the body; the group fails with its error. */
START_TEST(test_taskgroups__test_cancel_children_on_child_error)
{
	g_num = g_t2_cancel = g_runner_cancel = 0;
	tt_run_main(&g_loop, await_runner, cancel_children_runner);
	ck_assert_int_eq(g_num, 0);
	ck_assert_int_eq(g_t2_cancel, 1);
	ck_assert_int_eq(g_runner_cancel, 1);
}
END_TEST

static int64_t foo_count_cancel(void *arg)
{
	int r = tide_sleep(5);

	(void)arg;
	if (r == -ECANCELED)
		g_num += 1;
	return r;
}

static int64_t five_children_runner(void *arg)
{
	struct tide_taskgroup *g = new_group();
	int r;

	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(tide_taskgroup_spawn(g, foo_count_cancel, NULL, NULL, NULL), 0);
	if (arg && tide_sleep(10) == -ECANCELED) /* test_taskgroup_07: the body waits too */
		g_num += 10;
	r = tide_taskgroup_wait(g);
	tide_taskgroup_free(g);
	return r;
}

static int64_t cancel_runner_body(void *arg)
{
	struct tide_future *r = tt_spawn(NULL, five_children_runner, arg);

	ck_assert_int_eq(tide_sleep(0.02), 0);
	ck_assert_int_eq(tide_future_done(r), 0);
	ck_assert_int_eq(tide_task_cancel(r), 1);
	ck_assert_int_eq(tide_await(r), -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(r), 1);
	tide_future_unref(r);
	return 0;
}

/* test_taskgroups.test_cancellation: cancelling the task in wait cancels
 * every child, then the task. */
START_TEST(test_taskgroups__test_cancellation)
{
	g_num = 0;
	tt_run_main(&g_loop, cancel_runner_body, NULL);
	ck_assert_int_eq(g_num, 5);
}
END_TEST

/* test_taskgroups.test_taskgroup_07: the same, cancelled in the body. */
START_TEST(test_taskgroups__test_taskgroup_07)
{
	g_num = 0;
	tt_run_main(&g_loop, cancel_runner_body, MS(1));
	ck_assert_int_eq(g_num, 15);
}
END_TEST

static int64_t fail_in_finally(void *arg)
{
	(void)arg;
	(void)tide_sleep(10);
	return -EDOM; /* finally: 1 / 0 */
}

static int64_t tg08_runner(void *arg)
{
	struct tide_taskgroup *g = new_group();
	int errs[8], r;
	ssize_t n;

	(void)arg;
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(tide_taskgroup_spawn(g, fail_in_finally, NULL, NULL, NULL), 0);
	ck_assert_int_eq(tide_sleep(10), -ECANCELED);
	r = tide_taskgroup_wait(g);
	n = tide_taskgroup_errors(g, errs, 8);
	ck_assert_int_eq(n, 5);
	for (ssize_t i = 0; i < n; i++)
		ck_assert_int_eq(errs[i], -EDOM);
	tide_taskgroup_free(g);
	return r;
}

static int64_t cancel_runner_expect_edom(void *arg)
{
	struct tide_future *r = tt_spawn(NULL, arg, NULL);

	ck_assert_int_eq(tide_sleep(0.02), 0);
	ck_assert_int_eq(tide_future_done(r), 0);
	ck_assert_int_eq(tide_task_cancel(r), 1);
	ck_assert_int_eq(tide_await(r), -EDOM);
	tide_future_unref(r);
	return 0;
}

/* test_taskgroups.test_taskgroup_08: children that fail while cancelled:
 * the group's outcome is their error, not the cancellation. */
START_TEST(test_taskgroups__test_taskgroup_08)
{
	tt_run_main(&g_loop, cancel_runner_expect_edom, tg08_runner);
}
END_TEST

static int64_t tg10_body(void *arg)
{
	struct tide_taskgroup *g = new_group();
	struct tide_future *t1, *t2;

	(void)arg;
	t1 = group_spawn(g, sleep_ms, MS(1000));
	t2 = group_spawn(g, sleep_ms, MS(2000));
	/* 1 / 0 in the body, before any await. */
	ck_assert_int_eq(tide_taskgroup_abort(g, -EDOM), 0);
	ck_assert_int_eq(tide_taskgroup_wait(g), -EDOM);
	ck_assert_int_eq(tide_taskgroup_errors(g, NULL, 0), 0);
	tide_taskgroup_free(g);
	ck_assert_int_eq(tide_future_cancelled(t1), 1);
	ck_assert_int_eq(tide_future_cancelled(t2), 1);
	tide_future_unref(t1);
	tide_future_unref(t2);
	return 0;
}

/* test_taskgroups.test_taskgroup_10: the body fails at once; both
 * children are cancelled before they ran. */
START_TEST(test_taskgroups__test_taskgroup_10)
{
	tt_run_main(&g_loop, tg10_body, NULL);
}
END_TEST

static int64_t crash_after(void *arg)
{
	int r = tide_sleep((double)(intptr_t)arg / 1000);

	return r ? r : -EINVAL; /* raise ValueError(t) */
}

static int64_t tg13_runner(void *arg)
{
	struct tide_taskgroup *g1 = new_group(), *g2;
	int r, errs[2];

	(void)arg;
	ck_assert_int_eq(tide_taskgroup_spawn(g1, crash_after, MS(10), NULL, NULL), 0);
	g2 = new_group();
	ck_assert_int_eq(tide_taskgroup_spawn(g2, crash_after, MS(10000), NULL, NULL), 0);
	/* g1's child fails: the body (in g2's wait) is cancelled, and g2 with it. */
	r = tide_taskgroup_wait(g2);
	ck_assert_int_eq(r, -ECANCELED);
	ck_assert_int_eq(tide_taskgroup_errors(g2, NULL, 0), 0);
	tide_taskgroup_free(g2);
	/* The CancelledError reaches g1, which knows it as its own. */
	r = tide_taskgroup_wait(g1);
	ck_assert_int_eq(tide_taskgroup_errors(g1, errs, 2), 1);
	ck_assert_int_eq(errs[0], -EINVAL);
	tide_taskgroup_free(g1);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	return r;
}

/* test_taskgroups.test_taskgroup_13: {ValueError} from the outer group. */
START_TEST(test_taskgroups__test_taskgroup_13)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, tg13_runner, NULL);

	tt_run_until_complete(loop, t, -EINVAL);
	ck_assert_int_eq(tide_future_cancelled(t), 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t tg14_runner(void *arg)
{
	struct tide_taskgroup *g1 = new_group(), *g2;
	int r, errs[2];

	(void)arg;
	ck_assert_int_eq(tide_taskgroup_spawn(g1, crash_after, MS(10000), NULL, NULL), 0);
	g2 = new_group();
	ck_assert_int_eq(tide_taskgroup_spawn(g2, crash_after, MS(10), NULL, NULL), 0);
	r = tide_taskgroup_wait(g2);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_int_eq(tide_taskgroup_errors(g2, errs, 2), 1);
	ck_assert_int_eq(errs[0], -EINVAL);
	tide_taskgroup_free(g2);
	/* The inner group's ExceptionGroup is the outer body's error. */
	ck_assert_int_eq(tide_taskgroup_abort(g1, r), 0);
	r = tide_taskgroup_wait(g1);
	ck_assert_int_eq(tide_taskgroup_errors(g1, NULL, 0), 0);
	tide_taskgroup_free(g1);
	return r;
}

/* test_taskgroups.test_taskgroup_14: {ExceptionGroup{ValueError}}: the
 * inner group's error fails the outer group's body; its child is cancelled. */
START_TEST(test_taskgroups__test_taskgroup_14)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t = tt_spawn(loop, tg14_runner, NULL);

	tt_run_until_complete(loop, t, -EINVAL);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t tg15_runner(void *arg)
{
	struct tide_taskgroup *g1 = new_group();
	int r, errs[2];

	(void)arg;
	ck_assert_int_eq(tide_taskgroup_spawn(g1, sleep_then_edom, MS(60), NULL, NULL), 0);
	/* Cancelled from outside, then, handling it, interrupted by the crash. */
	ck_assert_int_eq(tide_sleep(10), -ECANCELED);
	ck_assert_int_eq(tide_sleep(5), -ECANCELED);
	r = tide_taskgroup_wait(g1);
	ck_assert_int_eq(tide_taskgroup_errors(g1, errs, 2), 1);
	ck_assert_int_eq(errs[0], -EDOM);
	tide_taskgroup_free(g1);
	return r;
}

/* test_taskgroups.test_taskgroup_15: a child's error wins over the
 * outside cancellation: {ZeroDivisionError}. */
START_TEST(test_taskgroups__test_taskgroup_15)
{
	tt_run_main(&g_loop, cancel_runner_expect_edom, tg15_runner);
}
END_TEST

static int64_t tg16_runner(void *arg)
{
	struct tide_future *t = tt_spawn(NULL, tg15_runner, NULL);
	int64_t r;

	(void)arg;
	r = tide_await(t);
	tide_future_unref(t);
	return r;
}

/* test_taskgroups.test_taskgroup_16: the same one task further down. */
START_TEST(test_taskgroups__test_taskgroup_16)
{
	tt_run_main(&g_loop, cancel_runner_expect_edom, tg16_runner);
}
END_TEST

static int64_t tg17_runner(void *arg)
{
	struct tide_taskgroup *g = new_group();
	int r;

	if (tide_sleep(10) == -ECANCELED) {
		g_num += 10;
		if (arg) /* test_taskgroup_18: raise MyExc instead */
			ck_assert_int_eq(tide_taskgroup_abort(g, -EPROTO), 0);
	}
	r = tide_taskgroup_wait(g);
	tide_taskgroup_free(g);
	return r;
}

static int64_t cancel_tg17(void *arg)
{
	struct tide_future *r = tt_spawn(NULL, tg17_runner, arg);

	ck_assert_int_eq(tide_sleep(0.02), 0);
	ck_assert_int_eq(tide_future_done(r), 0);
	ck_assert_int_eq(tide_task_cancel(r), 1);
	ck_assert_int_eq(tide_await(r), arg ? -EPROTO : -ECANCELED);
	tide_future_unref(r);
	return 0;
}

/* test_taskgroups.test_taskgroup_17: an empty group's body cancelled:
 * CancelledError. */
START_TEST(test_taskgroups__test_taskgroup_17)
{
	g_num = 0;
	tt_run_main(&g_loop, cancel_tg17, NULL);
	ck_assert_int_eq(g_num, 10);
}
END_TEST

/* test_taskgroups.test_taskgroup_18: the body turns the cancel into its
 * own error: that error ({MyExc}). */
START_TEST(test_taskgroups__test_taskgroup_18)
{
	g_num = 0;
	tt_run_main(&g_loop, cancel_tg17, MS(1));
	ck_assert_int_eq(g_num, 10);
}
END_TEST

static int64_t tg22_runner(void *arg)
{
	struct tide_taskgroup *g = new_group();
	int r;

	(void)arg;
	ck_assert_int_eq(tide_taskgroup_spawn(g, sleep_ms, MS(1000), NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(g, sleep_ms, MS(2000), NULL, NULL), 0);
	r = tide_taskgroup_wait(g);
	tide_taskgroup_free(g);
	return r;
}

static int64_t cancel_tg22(void *arg)
{
	struct tide_future *r = tt_spawn(NULL, tg22_runner, NULL);

	(void)arg;
	ck_assert_int_eq(tide_sleep(0.02), 0);
	ck_assert_int_eq(tide_task_cancel(r), 1);
	ck_assert_int_eq(tide_await(r), -ECANCELED);
	tide_future_unref(r);
	return 0;
}

/* test_taskgroups.test_taskgroup_22: cancelled while waiting for two
 * sleeping children. */
START_TEST(test_taskgroups__test_taskgroup_22)
{
	tt_run_main(&g_loop, cancel_tg22, NULL);
}
END_TEST

static int64_t tg11_runner(void *arg)
{
	struct tide_taskgroup *g1 = new_group(), *g2;
	struct tide_future *c1 = NULL;
	int errs[8], r;

	if (arg) /* test_taskgroup_12: the outer group has a child of its own */
		c1 = group_spawn(g1, sleep_ms, MS(10000));
	g2 = new_group();
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(tide_taskgroup_spawn(g2, fail_in_finally, NULL, NULL, NULL), 0);
	ck_assert_int_eq(tide_sleep(10), -ECANCELED);
	r = tide_taskgroup_wait(g2);
	ck_assert_int_eq(r, -EDOM);
	ck_assert_int_eq(tide_taskgroup_errors(g2, errs, 8), 5);
	tide_taskgroup_free(g2);
	/* The inner ExceptionGroup is the outer body's error. */
	ck_assert_int_eq(tide_taskgroup_abort(g1, r), 0);
	r = tide_taskgroup_wait(g1);
	ck_assert_int_eq(tide_taskgroup_errors(g1, NULL, 0), 0);
	tide_taskgroup_free(g1);
	if (c1) {
		ck_assert_int_eq(tide_future_cancelled(c1), 1);
		tide_future_unref(c1);
	}
	return r;
}

static int64_t tg11_runner_plain(void *arg)
{
	(void)arg;
	return tg11_runner(NULL);
}

static int64_t tg12_runner(void *arg)
{
	(void)arg;
	return tg11_runner(MS(1));
}

/* test_taskgroups.test_taskgroup_11: nested groups, the inner one's
 * children failing as the task is cancelled: {ExceptionGroup{ZeroDivisionError}}. */
START_TEST(test_taskgroups__test_taskgroup_11)
{
	tt_run_main(&g_loop, cancel_runner_expect_edom, tg11_runner_plain);
}
END_TEST

/* test_taskgroups.test_taskgroup_12: the same with a child in the outer group. */
START_TEST(test_taskgroups__test_taskgroup_12)
{
	tt_run_main(&g_loop, cancel_runner_expect_edom, tg12_runner);
}
END_TEST

static int64_t exit_raises_main(void *arg)
{
	struct tide_taskgroup *tg = new_group();
	int errs[4], r;

	(void)arg;
	ck_assert_int_eq(tide_taskgroup_spawn(tg, return_arg, (void *)(intptr_t)-EPROTO, NULL, NULL), 0);
	/* database(): its finally raises CustomException as the child's
	 * failure interrupts the body. */
	ck_assert_int_eq(tide_sleep(1), -ECANCELED);
	ck_assert_int_eq(tide_taskgroup_abort(tg, -EPROTO), 0);
	r = tide_taskgroup_wait(tg);
	/* Both CustomExceptions: the body's and the child's. */
	ck_assert_int_eq(r, -EPROTO);
	ck_assert_int_eq(tide_taskgroup_errors(tg, errs, 4), 1);
	ck_assert_int_eq(errs[0], -EPROTO);
	tide_taskgroup_free(tg);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	return 0;
}

/* test_taskgroups.test_taskgroup_context_manager_exit_raises: the group's
 * own cancel of the body is taken back (cancelling() is 0 after). */
START_TEST(test_taskgroups__test_taskgroup_context_manager_exit_raises)
{
	tt_run_main(&g_loop, exit_raises_main, NULL);
}
END_TEST

static struct tide_taskgroup *g_group;
static int g_coro1_done;

static int64_t coro1(void *arg)
{
	int r = tide_sleep((double)(intptr_t)arg / 1000);

	if (!r)
		g_coro1_done++;
	return r;
}

static int64_t tg24_root(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_sleep(0.01), 0);
	/* Children spawned by a child while the parent is in wait. */
	ck_assert_int_eq(tide_taskgroup_spawn(g_group, coro1, MS(10), NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(g_group, coro1, MS(20), NULL, NULL), 0);
	return 0;
}

static int64_t tg24_body(void *arg)
{
	(void)arg;
	g_group = new_group();
	g_coro1_done = 0;
	ck_assert_int_eq(tide_taskgroup_spawn(g_group, tg24_root, NULL, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_wait(g_group), 0);
	ck_assert_int_eq(g_coro1_done, 2);
	tide_taskgroup_free(g_group);
	g_group = NULL;
	return 0;
}

/* test_taskgroups.test_taskgroup_24: wait waits for grandchildren too. */
START_TEST(test_taskgroups__test_taskgroup_24)
{
	tt_run_main(&g_loop, tg24_body, NULL);
}
END_TEST

static int g_nhydras;

static int64_t hydra(void *arg)
{
	int r;

	(void)arg;
	g_nhydras++;
	if ((r = tide_sleep(0.01)))
		return r;
	if ((r = tide_taskgroup_spawn(g_group, hydra, NULL, NULL, NULL)))
		return r;
	return tide_taskgroup_spawn(g_group, hydra, NULL, NULL, NULL);
}

static int64_t hercules(void *arg)
{
	int r;

	(void)arg;
	while (g_nhydras < 10)
		if ((r = tide_sleep(0.015)))
			return r;
	return -EDOM;
}

static int64_t tg25_body(void *arg)
{
	int errs[4];

	(void)arg;
	g_group = new_group();
	g_nhydras = 0;
	ck_assert_int_eq(tide_taskgroup_spawn(g_group, hydra, NULL, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(g_group, hercules, NULL, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_wait(g_group), -EDOM);
	ck_assert_int_eq(tide_taskgroup_errors(g_group, errs, 4), 1);
	ck_assert_int_eq(errs[0], -EDOM);
	ck_assert_int_ge(g_nhydras, 10);
	tide_taskgroup_free(g_group);
	g_group = NULL;
	return 0;
}

/* test_taskgroups.test_taskgroup_25: a growing group stopped by one failure. */
START_TEST(test_taskgroups__test_taskgroup_25)
{
	tt_run_main(&g_loop, tg25_body, NULL);
}
END_TEST

static int64_t task_name_body(void *arg)
{
	struct tide_task_opts opts = {.size = sizeof(opts), .name = "yolo"};
	struct tide_taskgroup *g = new_group();
	struct tide_future *t;

	(void)arg;
	ck_assert_int_eq(tide_taskgroup_spawn(g, sleep_ms, MS(0), &opts, &t), 0);
	ck_assert_str_eq(tide_task_name(t), "yolo");
	ck_assert_int_eq(tide_taskgroup_wait(g), 0);
	tide_taskgroup_free(g);
	tide_future_unref(t);
	return 0;
}

/* test_taskgroups.test_taskgroup_task_name */
START_TEST(test_taskgroups__test_taskgroup_task_name)
{
	tt_run_main(&g_loop, task_name_body, NULL);
}
END_TEST

static int g_spawn_refused;

static int64_t coro2_spawn_when_cancelled(void *arg)
{
	struct tide_taskgroup *g = arg;
	int r = tide_sleep(1);

	if (r == -ECANCELED)
		/* asyncio's RuntimeError: the group is shutting down. */
		g_spawn_refused = tide_taskgroup_spawn(g, sleep_then_edom, MS(1), NULL, NULL) == TIDE_EINVALID_STATE;
	return r;
}

static int64_t no_create_after_failure_body(void *arg)
{
	struct tide_taskgroup *g = new_group();
	int errs[4];

	(void)arg;
	g_spawn_refused = 0;
	ck_assert_int_eq(tide_taskgroup_spawn(g, sleep_then_edom, MS(1), NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(g, coro2_spawn_when_cancelled, g, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_wait(g), -EDOM);
	ck_assert_int_eq(tide_taskgroup_errors(g, errs, 4), 1);
	ck_assert_int_eq(errs[0], -EDOM);
	ck_assert_int_eq(g_spawn_refused, 1);
	tide_taskgroup_free(g);
	return 0;
}

/* test_taskgroups.test_taskgroup_no_create_task_after_failure */
START_TEST(test_taskgroups__test_taskgroup_no_create_task_after_failure)
{
	tt_run_main(&g_loop, no_create_after_failure_body, NULL);
}
END_TEST

static int64_t finished_body(void *arg)
{
	struct tide_taskgroup *g = new_group();

	(void)arg;
	ck_assert_int_eq(tide_taskgroup_wait(g), 0);
	/* asyncio's RuntimeError "is finished". */
	ck_assert_int_eq(tide_taskgroup_spawn(g, sleep_ms, MS(0), NULL, NULL), TIDE_EINVALID_STATE);
	tide_taskgroup_free(g);
	return 0;
}

/* test_taskgroups.test_taskgroup_finished: no spawn after the group ended. */
START_TEST(test_taskgroups__test_taskgroup_finished)
{
	tt_run_main(&g_loop, finished_body, NULL);
}
END_TEST

/* test_taskgroups.test_taskgroup_without_parent_task: waiting outside a
 * task is TIDE_ENOT_IN_TASK (asyncio's RuntimeError "parent task"). */
START_TEST(test_taskgroups__test_taskgroup_without_parent_task)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_taskgroup *g;

	ck_assert_int_eq(tide_taskgroup_new(loop, &g), 0);
	ck_assert_int_eq(tide_taskgroup_wait(g), TIDE_ENOT_IN_TASK);
	tide_taskgroup_free(g);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "conformance-tasks", 30);
	tt_add(&ts, test_futures__test_initial_state);
	tt_add(&ts, test_futures__test_cancel);
	tt_add(&ts, test_futures__test_result);
	tt_add(&ts, test_futures__test_exception);
	tt_add(&ts, test_futures__test_yield_from_twice);
	tt_add(&ts, test_futures__test_tb_logger_abandoned);
	tt_add(&ts, test_futures__test_tb_logger_result_unretrieved);
	tt_add(&ts, test_futures__test_tb_logger_result_retrieved);
	tt_add(&ts, test_futures__test_tb_logger_exception_unretrieved);
	tt_add(&ts, test_futures__test_tb_logger_exception_retrieved);
	tt_add(&ts, test_futures__test_tb_logger_exception_result_retrieved);
	tt_add(&ts, test_futures__test_callbacks_remove_first_callback);
	tt_add(&ts, test_futures__test_callbacks_remove_first_and_second_callback);
	tt_add(&ts, test_futures__test_callbacks_remove_third_callback);
	tt_add(&ts, test_futures__test_callbacks_invoked_on_set_result);
	tt_add(&ts, test_futures__test_callbacks_invoked_on_set_exception);
	tt_add(&ts, test_futures__test_remove_done_callback);
	tt_add(&ts, test_futures__test_schedule_callbacks_list_mutation_1);
	tt_add(&ts, test_tasks__test_task_basics);
	tt_add(&ts, test_tasks__test_task_awaits_on_itself);
	tt_add(&ts, test_tasks__test_other_loop_future);
	tt_add(&ts, test_tasks__test_cancelling);
	tt_add(&ts, test_tasks__test_uncancel_basic);
	tt_add(&ts, test_tasks__test_uncancel_structured_blocks);
	tt_add(&ts, test_tasks__test_cancel);
	tt_add(&ts, test_tasks__test_cancel_yield);
	tt_add(&ts, test_tasks__test_cancel_inner_future);
	tt_add(&ts, test_tasks__test_cancel_both_task_and_inner_future);
	tt_add(&ts, test_tasks__test_cancel_task_catching);
	tt_add(&ts, test_tasks__test_cancel_task_ignoring);
	tt_add(&ts, test_tasks__test_cancel_current_task);
	tt_add(&ts, test_tasks__test_cancel_at_end);
	tt_add(&ts, test_tasks__test_cancel_awaited_task);
	tt_add(&ts, test_tasks__test_wait);
	tt_add(&ts, test_tasks__test_wait_duplicate_coroutines);
	tt_add(&ts, test_tasks__test_wait_errors);
	tt_add(&ts, test_tasks__test_wait_first_completed);
	tt_add(&ts, test_tasks__test_wait_really_done);
	tt_add(&ts, test_tasks__test_wait_first_exception);
	tt_add(&ts, test_tasks__test_wait_first_exception_in_wait);
	tt_add(&ts, test_tasks__test_wait_with_exception);
	tt_add(&ts, test_tasks__test_wait_with_timeout);
	tt_add(&ts, test_tasks__test_as_completed);
	tt_add(&ts, test_tasks__test_as_completed_with_timeout);
	tt_add(&ts, test_tasks__test_as_completed_with_unused_timeout);
	tt_add(&ts, test_tasks__test_sleep);
	tt_add(&ts, test_tasks__test_task_cancel_sleeping_task);
	tt_add(&ts, test_tasks__test_task_cancel_waiter_future);
	tt_add(&ts, test_tasks__test_current_task);
	tt_add(&ts, test_tasks__test_current_task_with_interleaving_tasks);
	tt_add(&ts, test_tasks__test_yield_future_passes_cancel);
	tt_add(&ts, test_tasks__test_yield_wait_does_not_shield_cancel);
	tt_add(&ts, test_tasks__test_shield_result);
	tt_add(&ts, test_tasks__test_shield_exception);
	tt_add(&ts, test_tasks__test_shield_cancel_inner);
	tt_add(&ts, test_tasks__test_shield_cancel_outer);
	tt_add(&ts, test_tasks__test_shield_shortcut);
	tt_add(&ts, test_tasks__test_shield_effect);
	tt_add(&ts, test_tasks__test_shield_gather);
	tt_add(&ts, test_tasks__test_gather_shield);
	tt_add(&ts, test_tasks__test_cancel_gather_1);
	tt_add(&ts, test_tasks__test_success);
	tt_add(&ts, test_tasks__test_result_exception_success);
	tt_add(&ts, test_tasks__test_one_exception);
	tt_add(&ts, test_tasks__test_return_exceptions);
	tt_add(&ts, test_tasks__test_one_cancellation);
	tt_add(&ts, test_tasks__test_result_exception_one_cancellation);
	tt_add(&ts, test_tasks__test_constructor_empty_sequence_use_running_loop);
	tt_add(&ts, test_tasks__test_constructor_heterogenous_futures);
	tt_add(&ts, test_tasks__test_constructor_homogenous_futures);
	tt_add(&ts, test_tasks__test_cancellation_broadcast);
	tt_add(&ts, test_tasks__test_exception_marking);
	tt_add(&ts, test_tasks__test_sleep_zero);
	tt_add(&ts, test_tasks__test_stop_while_run_in_complete);
	tt_add(&ts, test_tasks__test_as_completed_duplicate_coroutines);
	tt_add(&ts, test_tasks__test_bare_create_named_task);
	tt_add(&ts, test_waitfor__test_asyncio_wait_for_cancelled);
	tt_add(&ts, test_waitfor__test_asyncio_wait_for_timeout);
	tt_add(&ts, test_waitfor__test_wait_for_timeout_less_then_0_or_0_future_done);
	tt_add(&ts, test_waitfor__test_wait_for_timeout_less_then_0_or_0);
	tt_add(&ts, test_waitfor__test_wait_for);
	tt_add(&ts, test_waitfor__test_wait_for_blocking);
	tt_add(&ts, test_waitfor__test_wait_for_race_condition);
	tt_add(&ts, test_waitfor__test_wait_for_cancellation_race_condition);
	tt_add(&ts, test_waitfor__test_wait_for_waits_for_task_cancellation);
	tt_add(&ts, test_waitfor__test_wait_for_waits_for_task_cancellation_w_timeout_0);
	tt_add(&ts, test_waitfor__test_wait_for_reraises_exception_during_cancellation);
	tt_add(&ts, test_waitfor__test_cancel_blocking_wait_for);
	tt_add(&ts, test_waitfor__test_cancel_wait_for);
	tt_add(&ts, test_waitfor__test_wait_for_self_cancellation);
	tt_add(&ts, test_waitfor__test_wait_for_issue86296);
	tt_add(&ts, test_waitfor__test_zero_timeout);
	tt_add(&ts, test_waitfor__test_none_timeout);
	tt_add(&ts, test_waitfor__test_shielded_timeout);
	tt_add(&ts, test_timeouts__test_timeout_basic);
	tt_add(&ts, test_timeouts__test_nested_timeouts);
	tt_add(&ts, test_timeouts__test_waiter_cancelled);
	tt_add(&ts, test_timeouts__test_timeout_not_called);
	tt_add(&ts, test_timeouts__test_timeout_zero);
	tt_add(&ts, test_timeouts__test_foreign_exception_passed);
	tt_add(&ts, test_timeouts__test_foreign_exception_on_timeout);
	tt_add(&ts, test_timeouts__test_foreign_cancel_doesnt_timeout_if_not_expired);
	tt_add(&ts, test_timeouts__test_outer_task_is_not_cancelled);
	tt_add(&ts, test_timeouts__test_nested_timeouts_concurrent);
	tt_add(&ts, test_timeouts__test_nested_timeouts_loop_busy);
	tt_add(&ts, test_timeouts__test_reschedule);
	tt_add(&ts, test_timeouts__test_nested_timeout_in_finally);
	tt_add(&ts, test_timeouts__test_timeout_after_cancellation);
	tt_add(&ts, test_timeouts__test_cancel_in_timeout_after_cancellation);
	tt_add(&ts, test_timeouts__test_timeout_expiring);
	tt_add(&ts, test_timeouts__test_timeout_without_task);
	tt_add(&ts, test_taskgroups__test_taskgroup_01);
	tt_add(&ts, test_taskgroups__test_taskgroup_02);
	tt_add(&ts, test_taskgroups__test_taskgroup_03);
	tt_add(&ts, test_taskgroups__test_cancel_children_on_child_error);
	tt_add(&ts, test_taskgroups__test_cancellation);
	tt_add(&ts, test_taskgroups__test_taskgroup_07);
	tt_add(&ts, test_taskgroups__test_taskgroup_08);
	tt_add(&ts, test_taskgroups__test_taskgroup_10);
	tt_add(&ts, test_taskgroups__test_taskgroup_13);
	tt_add(&ts, test_taskgroups__test_taskgroup_14);
	tt_add(&ts, test_taskgroups__test_taskgroup_15);
	tt_add(&ts, test_taskgroups__test_taskgroup_16);
	tt_add(&ts, test_taskgroups__test_taskgroup_17);
	tt_add(&ts, test_taskgroups__test_taskgroup_18);
	tt_add(&ts, test_taskgroups__test_taskgroup_22);
	tt_add(&ts, test_taskgroups__test_taskgroup_11);
	tt_add(&ts, test_taskgroups__test_taskgroup_12);
	tt_add(&ts, test_taskgroups__test_taskgroup_context_manager_exit_raises);
	tt_add(&ts, test_taskgroups__test_taskgroup_24);
	tt_add(&ts, test_taskgroups__test_taskgroup_25);
	tt_add(&ts, test_taskgroups__test_taskgroup_task_name);
	tt_add(&ts, test_taskgroups__test_taskgroup_no_create_task_after_failure);
	tt_add(&ts, test_taskgroups__test_taskgroup_finished);
	tt_add(&ts, test_taskgroups__test_taskgroup_without_parent_task);
	return tt_run(&ts);
}
