/* SPDX-License-Identifier: MIT */
/*
 * conformance/threadsafe.c: asyncio.run_coroutine_threadsafe as
 * tide_run_coroutine_threadsafe, ported from CPython 3.11's
 * Lib/test/test_asyncio/test_tasks.py RunCoroutineThreadsafeTests (named
 * test_tasks__<python test>), then the lifetimes tide adds: a loop closed
 * or freed before the task starts, either side letting go first, a cancel
 * from another thread, bad input. test/conformance/README.md maps them.
 *
 * As in CPython, the loop runs on the test's thread and target() runs in
 * the default executor: it submits add() to the loop and waits on the
 * handle.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "../helpers.h"

static struct tide_loop *g_loop;

struct add_args {
	int64_t a, b;
	bool fail, cancel;
};

/* add(): waits 0.05 s, then fails, cancels itself, or returns a + b. */
static int64_t add_task(void *arg)
{
	struct add_args *x = arg;
	int err;

	if ((err = tide_sleep(0.05)))
		return err;
	if (x->fail)
		return -EIO; /* Python's RuntimeError("Fail!") */
	if (x->cancel) {
		tide_task_cancel(tide_current_task());
		if ((err = tide_sleep(0)))
			return err;
	}
	return x->a + x->b;
}

struct target_args {
	struct add_args add;
	double timeout;
	struct tide_cfuture *cf; /* submitted by the test already, or NULL */
};

/* target(): on a worker thread, submits add() and waits; then
 * "future.done() or future.cancel()" and lets the handle go. */
static int64_t target_job(void *arg)
{
	struct target_args *t = arg;
	struct tide_cfuture *cf = t->cf;
	int64_t value = -1;
	int err;

	if (!cf && (err = tide_run_coroutine_threadsafe(g_loop, add_task, &t->add, NULL, &cf)))
		return err;
	err = tide_cfuture_wait(cf, t->timeout, &value);
	if (!tide_cfuture_done(cf))
		ck_assert_int_eq(tide_cfuture_cancel(cf), 1);
	tide_cfuture_free(cf);
	return err ? err : value;
}

static int run_target(struct tide_loop *loop, struct target_args *t, int64_t *value)
{
	struct tide_future *f;
	int err;

	g_loop = loop;
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, target_job, t, &f), 0);
	err = tide_loop_run_until_complete(loop, f);
	if (!err && value)
		*value = tt_result(f);
	tide_future_unref(f);
	return err;
}

static void finish(struct tide_loop *loop)
{
	ck_assert_int_eq(tide_loop_shutdown(loop, TT_HANG_S), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

/* test_tasks.test_run_coroutine_threadsafe */
START_TEST(test_tasks__test_run_coroutine_threadsafe)
{
	struct tide_loop *loop = tt_loop_new();
	struct target_args t = { .add = { .a = 1, .b = 2 }, .timeout = TIDE_TIMEOUT_NONE };
	int64_t v = 0;

	ck_assert_int_eq(run_target(loop, &t, &v), 0);
	ck_assert_int_eq(v, 3);
	finish(loop);
}
END_TEST

/* test_tasks.test_run_coroutine_threadsafe_with_exception */
START_TEST(test_tasks__test_run_coroutine_threadsafe_with_exception)
{
	struct tide_loop *loop = tt_loop_new();
	struct target_args t = { .add = { .a = 1, .b = 2, .fail = true }, .timeout = TIDE_TIMEOUT_NONE };

	ck_assert_int_eq(run_target(loop, &t, NULL), -EIO);
	finish(loop);
}
END_TEST

/* test_tasks.test_run_coroutine_threadsafe_with_timeout: the wait times
 * out, target cancels the handle, and the task is cancelled on its loop. */
START_TEST(test_tasks__test_run_coroutine_threadsafe_with_timeout)
{
	struct tide_loop *loop = tt_loop_new();
	struct target_args t = { .add = { .a = 1, .b = 2 }, .timeout = 0 };

	ck_assert_int_eq(run_target(loop, &t, NULL), -ETIMEDOUT);
	/* No pending task left (add has been cancelled). */
	RUN_UNTIL_FOR(loop, tide_all_tasks(loop, NULL, 0) == 0, TT_HANG_S);
	finish(loop);
}
END_TEST

/* test_tasks.test_run_coroutine_threadsafe_task_cancelled */
START_TEST(test_tasks__test_run_coroutine_threadsafe_task_cancelled)
{
	struct tide_loop *loop = tt_loop_new();
	struct target_args t = { .add = { .a = 1, .b = 2, .cancel = true }, .timeout = TIDE_TIMEOUT_NONE };

	ck_assert_int_eq(run_target(loop, &t, NULL), -ECANCELED);
	finish(loop);
}
END_TEST

/* test_tasks.test_run_coroutine_threadsafe_task_factory_exception: tide has
 * no task factory; the analogue is a task that cannot be made on the loop
 * (its name's copy fails: -ENOMEM). The handle gets the error, and the
 * loop's exception handler is called once with it. */
static int g_handler_calls, g_handler_error;

static void count_handler(struct tide_loop *loop, const struct tide_error_context *ctx, void *arg)
{
	(void)loop;
	(void)arg;
	g_handler_calls++;
	g_handler_error = ctx->error;
}

#define LONG_NAME "run-coroutine-threadsafe-task-factory-exception-a-name-of-77-bytes-012345678"

START_TEST(test_tasks__test_run_coroutine_threadsafe_task_factory_exception)
{
	struct target_args t = { .add = { .a = 1, .b = 2 }, .timeout = TIDE_TIMEOUT_NONE };
	struct tide_task_opts o = { .size = sizeof(o), .name = LONG_NAME };
	struct tide_loop *loop;

	if (!tt_allocator_replaced(tt_count_allocs(), "task_factory_exception"))
		return;
	loop = tt_loop_new();
	g_handler_calls = 0;
	tide_loop_set_exception_handler(loop, count_handler, NULL);
	/* Submitted before the loop runs, so that the failure can be armed
	 * for the loop's copy of the name, not the handle's. */
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, add_task, &t.add, &o, &t.cf), 0);
	tt_fail_next_malloc(strlen(LONG_NAME) + 1);
	ck_assert_int_eq(run_target(loop, &t, NULL), -ENOMEM);
	ck_assert_uint_eq(tt_fail_malloc_pending(), 0);
	ck_assert_int_eq(g_handler_calls, 1);
	ck_assert_int_eq(g_handler_error, -ENOMEM);
	finish(loop);
	ck_assert_int_eq(tt_live_allocs(), 0);
}
END_TEST

/* ------------------------------------------------------- lifetimes -- */

static int64_t never_task(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
	return 0;
}

/* A loop closed, or freed, before the task starts: the handle completes
 * with TIDE_ECLOSED and the body never runs; nothing leaks. */
START_TEST(test_cfuture_loop_gone_before_start)
{
	struct tide_cfuture *cf1, *cf2, *cf3;
	struct tide_loop *loop;
	atomic_int ran = 0;

	if (!tt_allocator_replaced(tt_count_allocs(), "loop_gone_before_start"))
		return;
	/* Closed, then freed. */
	loop = tt_loop_new();
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, never_task, &ran, NULL, &cf1), 0);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, never_task, &ran, NULL, &cf3), TIDE_ECLOSED);
	ck_assert_int_eq(tide_cfuture_done(cf1), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	ck_assert_int_eq(tide_cfuture_done(cf1), 1);
	ck_assert_int_eq(tide_cfuture_wait(cf1, TIDE_TIMEOUT_NONE, NULL), TIDE_ECLOSED);
	ck_assert_int_eq(tide_cfuture_cancel(cf1), 0);
	tide_cfuture_free(cf1);
	/* Freed open, the handle let go first. */
	loop = tt_loop_new();
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, never_task, &ran, NULL, &cf1), 0);
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, never_task, &ran, NULL, &cf2), 0);
	tide_cfuture_free(cf2);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	ck_assert_int_eq(tide_cfuture_wait(cf1, 0, NULL), TIDE_ECLOSED);
	tide_cfuture_free(cf1);
	ck_assert_int_eq(atomic_load(&ran), 0);
	ck_assert_int_eq(tt_live_allocs(), 0);
}
END_TEST

static sem_t g_task_started;

static int64_t long_task(void *arg)
{
	(void)arg;
	sem_post(&g_task_started);
	return tide_sleep(0.2) ? -ECANCELED : 7;
}

static int64_t very_long_task(void *arg)
{
	(void)arg;
	sem_post(&g_task_started);
	return tide_sleep(60) ? -ECANCELED : 7;
}

/* The handle let go while the task runs: the task goes on and ends, its
 * result dropped, and the loop side frees the handle. */
START_TEST(test_cfuture_free_while_running)
{
	struct tide_cfuture *cf;
	struct tide_loop *loop;

	if (!tt_allocator_replaced(tt_count_allocs(), "free_while_running"))
		return;
	loop = tt_loop_new();
	sem_init(&g_task_started, 0, 0);
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, long_task, NULL, NULL, &cf), 0);
	RUN_UNTIL(loop, tide_all_tasks(loop, NULL, 0) == 1);
	tide_cfuture_free(cf);
	RUN_UNTIL_FOR(loop, tide_all_tasks(loop, NULL, 0) == 0, TT_HANG_S);
	finish(loop);
	sem_destroy(&g_task_started);
	ck_assert_int_eq(tt_live_allocs(), 0);
}
END_TEST

/* A cancel from another thread while the task runs: the handle is
 * cancelled at once, and so is the task, on its loop. */
static void *cancel_thread(void *arg)
{
	struct tide_cfuture *cf = arg;

	sem_wait(&g_task_started);
	ck_assert_int_eq(tide_cfuture_cancel(cf), 1);
	ck_assert_int_eq(tide_cfuture_wait(cf, TIDE_TIMEOUT_NONE, NULL), -ECANCELED);
	ck_assert_int_eq(tide_cfuture_cancel(cf), 0);
	tide_cfuture_free(cf);
	return NULL;
}

START_TEST(test_cfuture_cancel_from_thread)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_cfuture *cf;
	struct tide_future *task = NULL;
	pthread_t th;

	sem_init(&g_task_started, 0, 0);
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, very_long_task, NULL, NULL, &cf), 0);
	RUN_UNTIL(loop, tide_all_tasks(loop, &task, 1) == 1);
	task = tide_future_ref(task);
	ck_assert_int_eq(pthread_create(&th, NULL, cancel_thread, cf), 0);
	RUN_UNTIL_FOR(loop, tide_future_done(task), TT_HANG_S);
	pthread_join(th, NULL);
	ck_assert_int_eq(tide_future_cancelled(task), 1);
	tide_future_unref(task);
	sem_destroy(&g_task_started);
	finish(loop);
}
END_TEST

/* A cancel before the loop takes the start: the body never runs. */
START_TEST(test_cfuture_cancel_before_start)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_cfuture *cf;
	atomic_int ran = 0;

	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, never_task, &ran, NULL, &cf), 0);
	ck_assert_int_eq(tide_cfuture_cancel(cf), 1);
	ck_assert_int_eq(tide_cfuture_done(cf), 1);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(atomic_load(&ran), 0);
	ck_assert_int_eq(tide_cfuture_wait(cf, 1, NULL), -ECANCELED);
	tide_cfuture_free(cf);
	finish(loop);
}
END_TEST

/* Bad input gets an error code; waiting from the loop's own task with a
 * timeout is -EDEADLK, not a hang. */
static int64_t waits_on_own_loop(void *arg)
{
	struct tide_cfuture *cf = arg;

	ck_assert_int_eq(tide_cfuture_wait(cf, TIDE_TIMEOUT_NONE, NULL), -EDEADLK);
	ck_assert_int_eq(tide_cfuture_wait(cf, 0, NULL), -ETIMEDOUT);
	return 0;
}

START_TEST(test_cfuture_bad_input)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_task_opts o = { .size = sizeof(o), .stack_size = 100 };
	struct tide_cfuture *cf = NULL, *slow;
	struct tide_future *t;
	int64_t v = 0;

	ck_assert_int_eq(tide_run_coroutine_threadsafe(NULL, never_task, NULL, NULL, &cf), -EINVAL);
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, NULL, NULL, NULL, &cf), -EINVAL);
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, never_task, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, never_task, NULL, &o, &cf), -EINVAL);
	o.size = 1;
	o.stack_size = 0;
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, never_task, NULL, &o, &cf), -EINVAL);
	ck_assert_ptr_null(cf);
	ck_assert_int_eq(tide_cfuture_wait(NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(tide_cfuture_cancel(NULL), -EINVAL);
	ck_assert_int_eq(tide_cfuture_done(NULL), 0);
	tide_cfuture_free(NULL);

	sem_init(&g_task_started, 0, 0);
	ck_assert_int_eq(tide_run_coroutine_threadsafe(loop, long_task, NULL, NULL, &slow), 0);
	ck_assert_int_eq(tide_cfuture_wait(slow, NAN, NULL), -EINVAL);
	ck_assert_int_eq(tide_cfuture_wait(slow, -1, NULL), -ETIMEDOUT);
	ck_assert_int_eq(tide_task_spawn(loop, waits_on_own_loop, slow, NULL, &t), 0);
	tt_run_until_complete(loop, t, 0);
	tide_future_unref(t);
	RUN_UNTIL_FOR(loop, tide_cfuture_done(slow), TT_HANG_S);
	ck_assert_int_eq(tide_cfuture_wait(slow, TIDE_TIMEOUT_NONE, &v), 0);
	ck_assert_int_eq(v, 7);
	tide_cfuture_free(slow);
	sem_destroy(&g_task_started);
	finish(loop);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "conformance-threadsafe", 30);
	tt_add(&ts, test_tasks__test_run_coroutine_threadsafe);
	tt_add(&ts, test_tasks__test_run_coroutine_threadsafe_with_exception);
	tt_add(&ts, test_tasks__test_run_coroutine_threadsafe_with_timeout);
	tt_add(&ts, test_tasks__test_run_coroutine_threadsafe_task_cancelled);
	tt_add(&ts, test_tasks__test_run_coroutine_threadsafe_task_factory_exception);
	tt_add(&ts, test_cfuture_loop_gone_before_start);
	tt_add(&ts, test_cfuture_free_while_running);
	tt_add(&ts, test_cfuture_cancel_from_thread);
	tt_add(&ts, test_cfuture_cancel_before_start);
	tt_add(&ts, test_cfuture_bad_input);
	return tt_run(&ts);
}
