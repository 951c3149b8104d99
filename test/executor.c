/* SPDX-License-Identifier: MIT */
/*
 * test/executor.c: run_in_executor on every backend configuration: results
 * and errors delivered on the loop thread, many jobs, a job cancelled before
 * it starts never runs, one cancelled while it runs (asyncio's: its future
 * at once, the job left to finish; or refused, TIDE_JOB_CANCEL_QUEUED_ONLY),
 * the thread limit, custom and default executors, and
 * shutdown_default_executor.
 */
#include "config.h"
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct tide_loop *g_loop;
static pthread_t main_thread;

/* A gate a job can wait on until the test opens it. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;
static atomic_int blocker_started;

static void gate_set(int open)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = open;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static int64_t blocker_job(void *arg)
{
	atomic_store(&blocker_started, 1);
	pthread_mutex_lock(&gate_mu);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	return (int64_t)(intptr_t)arg;
}

static void wait_started(void)
{
	for (int i = 0; i < 10000000 && !atomic_load(&blocker_started); i++)
		sched_yield();
	ck_assert_int_eq(atomic_load(&blocker_started), 1);
}

/* ------------------------------------------------------------- results -- */

static pthread_t job_thread;

static int64_t answer_job(void *arg)
{
	job_thread = pthread_self();
	return *(int64_t *)arg;
}

static pthread_t done_thread;
static int done_calls;

static void on_done(struct tide_future *fut, void *arg)
{
	(void)fut;
	(void)arg;
	done_thread = pthread_self();
	done_calls++;
}

START_TEST(test_result_on_loop_thread)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	int64_t in = 42;

	main_thread = pthread_self();
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, answer_job, &in, &fut), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, on_done, NULL), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 42);
	ck_assert(!pthread_equal(job_thread, main_thread)); /* ran on a worker */
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(done_calls, 1);
	ck_assert(pthread_equal(done_thread, main_thread)); /* completed on the loop */
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_shutdown_default_executor(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t error_job(void *arg)
{
	return (int64_t)(intptr_t)arg;
}

START_TEST(test_job_errors)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	ck_assert_int_eq(tide_run_in_executor(loop, NULL, error_job, (void *)(intptr_t)-EIO, &fut), 0);
	tt_run_until_complete(loop, fut, -EIO);
	ck_assert_int_eq(tide_future_error(fut), -EIO);
	ck_assert_int_eq(tide_future_cancelled(fut), 0);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, error_job, (void *)(intptr_t)TIDE_EQUEUE_FULL, &fut), 0);
	tt_run_until_complete(loop, fut, TIDE_EQUEUE_FULL);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, error_job, (void *)0, &fut), 0);
	tt_run_until_complete(loop, fut, 0);
	ck_assert_int_eq(tt_result(fut), 0);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, NULL, NULL, &fut), -EINVAL);
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, error_job, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

#define MANY 2000
static atomic_int many_ran;
static int many_done, many_bad;

static int64_t square_job(void *arg)
{
	int64_t i = (int64_t)(intptr_t)arg;

	atomic_fetch_add(&many_ran, 1);
	return i * i;
}

static void many_cb(struct tide_future *fut, void *arg)
{
	int64_t i = (int64_t)(intptr_t)arg, v = -1;

	if (!pthread_equal(pthread_self(), main_thread))
		many_bad++;
	if (tide_future_result(fut, &v, NULL) != 0 || v != i * i)
		many_bad++;
	if (++many_done == MANY)
		tide_loop_stop(g_loop);
}

START_TEST(test_many_jobs)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;
	static struct tide_future *futs[MANY];
	int fails = 0;

	tt_opts_init(&opts);
	opts.executor_threads = 4;
	loop = tt_loop_new_opts(&opts);
	g_loop = loop;
	main_thread = pthread_self();
	for (int i = 0; i < MANY; i++) {
		if (tide_run_in_executor(loop, NULL, square_job, (void *)(intptr_t)i, &futs[i]) != 0 ||
		    tide_future_add_done_callback(futs[i], many_cb, (void *)(intptr_t)i) != 0)
			fails++;
	}
	ck_assert_int_eq(fails, 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(many_done, MANY);
	ck_assert_int_eq(many_bad, 0);
	ck_assert_int_eq(atomic_load(&many_ran), MANY);
	for (int i = 0; i < MANY; i++)
		tide_future_unref(futs[i]);
	ck_assert_int_eq(tide_loop_shutdown_default_executor(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------------------- cancel -- */

static atomic_int victim_ran;

static int64_t victim_job(void *arg)
{
	(void)arg;
	atomic_store(&victim_ran, 1);
	return 5;
}

START_TEST(test_cancel_before_start)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_executor_opts eo = { sizeof(eo), 1 };
	struct tide_executor *ex;
	struct tide_future *fb, *fv, *fafter;

	struct tide_job_opts jo = { sizeof(jo), TIDE_JOB_CANCEL_QUEUED_ONLY };

	ck_assert_int_eq(tide_executor_new(&eo, &ex), 0);
	gate_set(0);
	ck_assert_int_eq(tide_run_in_executor_ex(loop, ex, blocker_job, (void *)11, &jo, &fb), 0);
	wait_started();
	ck_assert_int_eq(tide_run_in_executor_ex(loop, ex, victim_job, NULL, &jo, &fv), 0);
	ck_assert_int_eq(tide_run_in_executor(loop, ex, error_job, (void *)12, &fafter), 0);
	/* Queued behind the blocker: the cancel takes. */
	ck_assert_int_eq(tide_future_cancel(fv), 1);
	/* TIDE_JOB_CANCEL_QUEUED_ONLY: the running job refuses the cancel. */
	ck_assert_int_eq(tide_future_cancel(fb), 0);
	ck_assert_int_eq(tide_future_done(fb), 0);
	gate_set(1);
	tt_run_until_complete(loop, fb, 0);
	ck_assert_int_eq(tt_result(fb), 11);
	tt_run_until_complete(loop, fafter, 0);
	ck_assert_int_eq(tt_result(fafter), 12);
	tt_run_until_complete(loop, fv, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(fv), 1);
	ck_assert_int_eq(atomic_load(&victim_ran), 0);
	tide_future_unref(fb);
	tide_future_unref(fv);
	tide_future_unref(fafter);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	ck_assert_int_eq(tide_executor_free(ex), 0);
	ck_assert_int_eq(atomic_load(&victim_ran), 0);
}
END_TEST

/* asyncio's cancel of a running job: the future is cancelled at once, the
 * worker finishes the job (its result dropped), and the loop counts the job
 * until it lands. */
START_TEST(test_cancel_running_abandons)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fb;

	gate_set(0);
	atomic_store(&blocker_started, 0);
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, blocker_job, (void *)21, &fb), 0);
	wait_started();
	ck_assert_int_eq(tide_future_cancel(fb), 1);
	/* Done now, without a loop iteration, and cancelled. */
	ck_assert_int_eq(tide_future_done(fb), 1);
	ck_assert_int_eq(tide_future_cancelled(fb), 1);
	ck_assert_int_eq(tide_future_cancel(fb), 0);
	tide_future_unref(fb);
	/* The job still runs: the loop is busy with it. */
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	gate_set(1);
	/* shutdown waits for the job to land; then free succeeds. */
	ck_assert_int_eq(tide_loop_shutdown(loop, TT_HANG_S), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* A task awaiting a running job is cancelled promptly: its await returns
 * -ECANCELED while the job still sleeps behind the closed gate. */
static struct tide_future *g_job_fut;

static int64_t await_job_task(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_run_in_executor(tide_future_loop(tide_current_task()), NULL, blocker_job, (void *)22,
					      &g_job_fut), 0);
	return tide_await(g_job_fut);
}

START_TEST(test_cancel_task_awaiting_running_job)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	gate_set(0);
	atomic_store(&blocker_started, 0);
	g_job_fut = NULL;
	ck_assert_int_eq(tide_task_spawn(loop, await_job_task, NULL, NULL, &t), 0);
	RUN_UNTIL(loop, atomic_load(&blocker_started));
	ck_assert_int_eq(tide_task_cancel(t), 1);
	RUN_UNTIL_FOR(loop, tide_future_done(t), TT_HANG_S);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	/* The gate is still shut: the job runs on. */
	ck_assert_int_eq(gate_open, 0);
	ck_assert_int_eq(tide_future_cancelled(g_job_fut), 1);
	tide_future_unref(g_job_fut);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	gate_set(1);
	ck_assert_int_eq(tide_loop_shutdown(loop, TT_HANG_S), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_job_opts_bad)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_job_opts jo = { sizeof(jo), 1u << 1 };
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_run_in_executor_ex(loop, NULL, error_job, NULL, &jo, &f), -EINVAL);
	jo.size = 1;
	jo.flags = 0;
	ck_assert_int_eq(tide_run_in_executor_ex(loop, NULL, error_job, NULL, &jo, &f), -EINVAL);
	ck_assert_ptr_null(f);
	/* A zeroed struct but for its size is NULL opts. */
	jo.size = sizeof(jo);
	ck_assert_int_eq(tide_run_in_executor_ex(loop, NULL, error_job, (void *)7, &jo, &f), 0);
	tt_run_until_complete(loop, f, 0);
	ck_assert_int_eq(tt_result(f), 7);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_shutdown_default_executor(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------------------- limits -- */

static atomic_int conc_now, conc_max;

static int64_t conc_job(void *arg)
{
	int now = atomic_fetch_add(&conc_now, 1) + 1, max = atomic_load(&conc_max);

	while (now > max && !atomic_compare_exchange_weak(&conc_max, &max, now))
		;
	tt_sleep_ms(5);
	atomic_fetch_sub(&conc_now, 1);
	return (int64_t)(intptr_t)arg;
}

START_TEST(test_executor_thread_limit)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_executor_opts eo = { sizeof(eo), 2 };
	struct tide_executor *ex;
	struct tide_future *futs[40];

	ck_assert_int_eq(tide_executor_new(&eo, &ex), 0);
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(tide_run_in_executor(loop, ex, conc_job, (void *)(intptr_t)i, &futs[i]), 0);
	for (int i = 0; i < 40; i++) {
		tt_run_until_complete(loop, futs[i], 0);
		ck_assert_int_eq(tt_result(futs[i]), i);
		tide_future_unref(futs[i]);
	}
	printf("[%s] executor(threads=2): at most %d jobs ran at once\n", tt_cfg->name, atomic_load(&conc_max));
	ck_assert_int_le(atomic_load(&conc_max), 2);
	ck_assert_int_ge(atomic_load(&conc_max), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	ck_assert_int_eq(tide_executor_free(ex), 0);
}
END_TEST

static atomic_int second_ran;

static int64_t second_job(void *arg)
{
	(void)arg;
	atomic_store(&second_ran, 1);
	return 2;
}

START_TEST(test_default_executor_threads_option)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;
	struct tide_future *f1, *f2;

	tt_opts_init(&opts);
	opts.executor_threads = 1;
	loop = tt_loop_new_opts(&opts);
	gate_set(0);
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, blocker_job, (void *)1, &f1), 0);
	wait_started();
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, second_job, NULL, &f2), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	/* One thread, and it is busy. */
	ck_assert_int_eq(atomic_load(&second_ran), 0);
	ck_assert_int_eq(tide_future_done(f2), 0);
	gate_set(1);
	tt_run_until_complete(loop, f2, 0);
	ck_assert_int_eq(tt_result(f2), 2);
	tt_run_until_complete(loop, f1, 0);
	tide_future_unref(f1);
	tide_future_unref(f2);
	ck_assert_int_eq(tide_loop_shutdown_default_executor(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------ executor lifecycle -- */

static atomic_int slow_finished;

static int64_t slow_job(void *arg)
{
	tt_sleep_ms(100);
	atomic_fetch_add(&slow_finished, 1);
	return (int64_t)(intptr_t)arg;
}

START_TEST(test_executor_free_waits)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_executor_opts eo = { sizeof(eo), 2 };
	struct tide_executor *ex;
	struct tide_future *futs[6];

	ck_assert_int_eq(tide_executor_new(&eo, &ex), 0);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(tide_run_in_executor(loop, ex, slow_job, (void *)(intptr_t)(100 + i), &futs[i]), 0);
	/* Waits for the queued and the running jobs. */
	ck_assert_int_eq(tide_executor_free(ex), 0);
	ck_assert_int_eq(atomic_load(&slow_finished), 6);
	for (int i = 0; i < 6; i++) {
		tt_run_until_complete(loop, futs[i], 0);
		ck_assert_int_eq(tt_result(futs[i]), 100 + i);
		tide_future_unref(futs[i]);
	}
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_executor_new_free)
{
	struct tide_executor *ex = NULL;
	struct tide_executor_opts eo = { sizeof(eo), 3 };

	/* Unused executors, default and explicit sizes. */
	ck_assert_int_eq(tide_executor_new(NULL, &ex), 0);
	ck_assert_ptr_nonnull(ex);
	ck_assert_int_eq(tide_executor_free(ex), 0);
	ck_assert_int_eq(tide_executor_new(&eo, &ex), 0);
	ck_assert_int_eq(tide_executor_free(ex), 0);
	ck_assert_int_eq(tide_executor_new(&eo, NULL), -EINVAL);
	ck_assert_int_eq(tide_loop_free(tt_loop_new()), 0);
}
END_TEST

START_TEST(test_shutdown_default_executor)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *futs[3];

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tide_run_in_executor(loop, NULL, slow_job, (void *)(intptr_t)i, &futs[i]), 0);
	ck_assert_int_eq(tide_loop_shutdown_default_executor(loop), 0);
	/* It waited for the jobs; their futures complete on the next iteration. */
	ck_assert_int_eq(atomic_load(&slow_finished), 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tide_future_done(futs[i]), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.5), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(tide_future_done(futs[i]), 1);
		ck_assert_int_eq(tt_result(futs[i]), i);
		tide_future_unref(futs[i]);
	}
	/* Without a default executor, shutdown has nothing to do. */
	ck_assert_int_eq(tide_loop_shutdown_default_executor(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_custom_default_executor)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_executor_opts eo = { sizeof(eo), 1 };
	struct tide_executor *ex;
	struct tide_future *fb, *f2;

	ck_assert_int_eq(tide_executor_new(&eo, &ex), 0);
	ck_assert_int_eq(tide_loop_set_default_executor(loop, ex), 0);
	/* Block ex's only thread; a NULL-executor job must queue behind it. */
	gate_set(0);
	ck_assert_int_eq(tide_run_in_executor(loop, ex, blocker_job, (void *)3, &fb), 0);
	wait_started();
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, second_job, NULL, &f2), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(atomic_load(&second_ran), 0);
	gate_set(1);
	tt_run_until_complete(loop, f2, 0);
	ck_assert_int_eq(tt_result(f2), 2);
	tt_run_until_complete(loop, fb, 0);
	ck_assert_int_eq(tt_result(fb), 3);
	tide_future_unref(fb);
	tide_future_unref(f2);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	/* The loop did not own ex: it still works, and the caller frees it. */
	ck_assert_int_eq(tide_executor_free(ex), 0);
}
END_TEST

START_TEST(test_free_busy_with_job)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	gate_set(0);
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, blocker_job, (void *)9, &fut), 0);
	wait_started();
	tide_future_unref(fut);
	/* The job is alive even though nobody holds its future. */
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	gate_set(1);
	ck_assert_int_eq(tide_loop_shutdown_default_executor(loop), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.5), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* Cancel right after submit, racing the workers: never both ran and cancelled. */
#define RACE 2000
static atomic_int race_ran[RACE];

static int64_t race_job(void *arg)
{
	int i = (int)(intptr_t)arg;

	atomic_fetch_add(&race_ran[i], 1);
	return i + 1;
}

static void cancel_races_start(unsigned flags)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;
	static struct tide_future *futs[RACE];
	static int cret[RACE];
	struct tide_job_opts jo = { sizeof(jo), flags };
	int n_cancelled = 0, n_ran = 0;

	tt_opts_init(&opts);
	opts.executor_threads = 4;
	loop = tt_loop_new_opts(&opts);
	for (int i = 0; i < RACE; i++)
		atomic_store(&race_ran[i], 0);
	for (int i = 0; i < RACE; i++) {
		ck_assert_int_eq(tide_run_in_executor_ex(loop, NULL, race_job, (void *)(intptr_t)i, &jo, &futs[i]), 0);
		if (i % 2)
			cret[i] = tide_future_cancel(futs[i]);
		else
			cret[i] = -1;
	}
	for (int i = 0; i < RACE; i++) {
		int r = tide_loop_run_until_complete(loop, futs[i]);

		ck_assert_int_eq(tide_future_done(futs[i]), 1);
		if (tide_future_cancelled(futs[i])) {
			ck_assert_int_eq(r, -ECANCELED);
			ck_assert_int_eq(cret[i], 1);
			n_cancelled++;
		} else {
			ck_assert_int_eq(r, 0);
			ck_assert_int_eq(tt_result(futs[i]), i + 1);
			n_ran++;
		}
	}
	ck_assert_int_eq(tide_loop_shutdown_default_executor(loop), 0);
	/* Abandoned jobs land on the next iteration. */
	ck_assert_int_eq(tide_loop_shutdown(loop, TT_HANG_S), 0);
	for (int i = 0; i < RACE; i++) {
		if (flags & TIDE_JOB_CANCEL_QUEUED_ONLY) {
			/* Cancelled jobs never ran; completed ones ran exactly once. */
			ck_assert_int_eq(atomic_load(&race_ran[i]), tide_future_cancelled(futs[i]) ? 0 : 1);
		} else {
			/* asyncio's: a cancel always takes; the job ran at most once. */
			ck_assert_int_le(atomic_load(&race_ran[i]), 1);
			if (!tide_future_cancelled(futs[i]))
				ck_assert_int_eq(atomic_load(&race_ran[i]), 1);
			if (i % 2)
				ck_assert_int_eq(cret[i], 1);
		}
		if (cret[i] == 0)
			ck_assert_int_eq(tide_future_cancelled(futs[i]), 0);
		tide_future_unref(futs[i]);
	}
	printf("[%s] cancel vs start (flags %u): %d cancelled, %d ran\n", tt_cfg->name, flags, n_cancelled, n_ran);
	ck_assert_int_eq(n_cancelled + n_ran, RACE);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

START_TEST(test_cancel_races_start)
{
	cancel_races_start(TIDE_JOB_CANCEL_QUEUED_ONLY);
	cancel_races_start(0);
}
END_TEST

/* A job finishing after close: the closed loop cannot run, yet must free. */
START_TEST(test_close_with_job_in_flight)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	gate_set(0);
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, blocker_job, (void *)4, &fut), 0);
	wait_started();
	ck_assert_int_eq(tide_loop_close(loop), 0);
	gate_set(1);
	tt_sleep_ms(50);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_shutdown_default_executor(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "executor", 60);
	tt_add(&ts, test_result_on_loop_thread);
	tt_add(&ts, test_job_errors);
	tt_add(&ts, test_many_jobs);
	tt_add(&ts, test_cancel_before_start);
	tt_add(&ts, test_cancel_running_abandons);
	tt_add(&ts, test_cancel_task_awaiting_running_job);
	tt_add(&ts, test_job_opts_bad);
	tt_add(&ts, test_executor_thread_limit);
	tt_add(&ts, test_default_executor_threads_option);
	tt_add(&ts, test_executor_free_waits);
	tt_add(&ts, test_executor_new_free);
	tt_add(&ts, test_shutdown_default_executor);
	tt_add(&ts, test_custom_default_executor);
	tt_add(&ts, test_free_busy_with_job);
	tt_add(&ts, test_close_with_job_in_flight);
	tt_add(&ts, test_cancel_races_start);
	return tt_run(&ts);
}
