/* SPDX-License-Identifier: MIT */
/*
 * test/loop.c: the loop's contract, on every backend configuration:
 * call_soon order, the snapshot rule (a callback scheduled by a callback runs
 * on the next iteration), stop/run/run_until_complete as asyncio's, close,
 * time, handles, call_soon_threadsafe from many threads, the exception
 * handler and debug mode's slow-callback report.
 */
#include "config.h"
#include "helpers.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ recorder -- */

#define REC_MAX 4096
static int rec[REC_MAX];
static int nrec;
static struct tide_loop *g_loop;

static void rec_cb(void *arg)
{
	ck_assert_int_lt(nrec, REC_MAX);
	rec[nrec++] = (int)(intptr_t)arg;
}

static void stop_cb(void *arg)
{
	(void)arg;
	tide_loop_stop(g_loop);
}

static void fast_noop(void *arg)
{
	(void)arg;
}

static void thread_count_cb(void *arg)
{
	++*(int *)arg;
}

static void write_one_cb(void *arg)
{
	tt_write_all((int)(intptr_t)arg, "w", 1);
}

/* --------------------------------------------------------------- tests -- */

START_TEST(test_call_soon_fifo)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats st;

	g_loop = loop;
	nrec = 0;
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(tide_call_soon(loop, rec_cb, (void *)(intptr_t)i, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(nrec, 0); /* nothing runs before the loop */
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(nrec, 1000);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(rec[i], i);
	tt_stats(loop, &st);
	ck_assert_uint_eq(st.callbacks, 1001);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static void chain_cb(void *arg)
{
	rec_cb(arg);
	/* Scheduled while the iteration runs: must wait for the next one. */
	ck_assert_int_eq(tide_call_soon(g_loop, rec_cb, (void *)(intptr_t)((int)(intptr_t)arg + 100), NULL), 0);
}

START_TEST(test_call_soon_next_iteration)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1, s2, s3;

	g_loop = loop;
	nrec = 0;
	tt_stats(loop, &s0);
	ck_assert_int_eq(tide_call_soon(loop, chain_cb, (void *)1, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, rec_cb, (void *)2, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, chain_cb, (void *)3, NULL), 0);

	/* Iteration 1: the three that were ready, not what they scheduled. */
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 3);
	tt_stats(loop, &s1);
	ck_assert_uint_eq(s1.iterations - s0.iterations, 1);
	ck_assert_uint_eq(s1.callbacks - s0.callbacks, 3);
	ck_assert_int_eq(nrec, 3);
	ck_assert_int_eq(rec[0], 1);
	ck_assert_int_eq(rec[1], 2);
	ck_assert_int_eq(rec[2], 3);

	/* Iteration 2: the two scheduled by callbacks, in order. */
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 2);
	tt_stats(loop, &s2);
	ck_assert_uint_eq(s2.iterations - s1.iterations, 1);
	ck_assert_uint_eq(s2.callbacks - s1.callbacks, 2);
	ck_assert_int_eq(nrec, 5);
	ck_assert_int_eq(rec[3], 101);
	ck_assert_int_eq(rec[4], 103);

	/* Iteration 3: nothing left; a zero timeout polls and returns. */
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 0);
	tt_stats(loop, &s3);
	ck_assert_uint_eq(s3.iterations - s2.iterations, 1);
	ck_assert_uint_eq(s3.callbacks, s2.callbacks);
	ck_assert_int_eq(nrec, 5);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_run_once_timeout_waits)
{
	struct tide_loop *loop = tt_loop_new();
	uint64_t t0 = tt_mono_ns(), dt;

	/* Nothing to do: run_once(0.05) sleeps about that long, not forever. */
	ck_assert_int_eq(tide_loop_run_once(loop, 0.05), 0);
	dt = tt_mono_ns() - t0;
	ck_assert_msg(dt >= 45000000u, "run_once(0.05) returned after %llu ns", (unsigned long long)dt);
	ck_assert_msg(dt < TT_HANG_NS, "run_once(0.05) returned after %llu ns", (unsigned long long)dt);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static void stopper_then_schedule_cb(void *arg)
{
	rec_cb(arg);
	tide_loop_stop(g_loop);
	ck_assert_int_eq(tide_loop_is_running(g_loop), 1);
	ck_assert_int_eq(tide_call_soon(g_loop, rec_cb, (void *)99, NULL), 0);
}

START_TEST(test_stop_inside_callback)
{
	struct tide_loop *loop = tt_loop_new();

	g_loop = loop;
	nrec = 0;
	ck_assert_int_eq(tide_call_soon(loop, rec_cb, (void *)1, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, stopper_then_schedule_cb, (void *)2, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, rec_cb, (void *)3, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, rec_cb, (void *)4, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(tide_loop_is_running(loop), 0);
	/* The rest of the iteration ran; the callback scheduled during it did not. */
	ck_assert_int_eq(nrec, 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(rec[i], i + 1);

	/* The next run picks up where it stopped: 99 first, then the stopper. */
	ck_assert_int_eq(tide_call_soon(loop, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(nrec, 5);
	ck_assert_int_eq(rec[4], 99);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_stop_before_run)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	struct tide_handle far;
	uint64_t t0;

	g_loop = loop;
	nrec = 0;
	/* A far timer must not make the single iteration wait. */
	ck_assert_int_eq(tide_call_later(loop, 3600.0, rec_cb, (void *)77, &far), 0);
	ck_assert_int_eq(tide_call_soon(loop, chain_cb, (void *)1, NULL), 0);
	tide_loop_stop(loop);
	tt_stats(loop, &s0);
	t0 = tt_mono_ns();
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_msg(tt_mono_ns() - t0 < TT_HANG_NS, "run() after stop() waited");
	tt_stats(loop, &s1);
	ck_assert_uint_eq(s1.iterations - s0.iterations, 1);
	ck_assert_int_eq(nrec, 1);
	ck_assert_int_eq(rec[0], 1);

	/* The stop was consumed: the next run() runs until the next stop. */
	ck_assert_int_eq(tide_call_soon(loop, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(nrec, 2);
	ck_assert_int_eq(rec[1], 101);
	ck_assert_int_eq(tide_handle_cancel(&far), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ---------------------------------------------------- run_until_complete -- */

static struct tide_future *g_fut;

static void set_result_cb(void *arg)
{
	tide_future_set_result(g_fut, (int64_t)(intptr_t)arg, &rec[0]);
}

static void set_error_cb(void *arg)
{
	tide_future_set_error(g_fut, (int)(intptr_t)arg);
}

START_TEST(test_run_until_complete_result)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	int64_t v = 0;
	void *p = NULL;

	g_loop = loop;
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	g_fut = fut;
	ck_assert_int_eq(tide_call_later(loop, 0.01, set_result_cb, (void *)42, NULL), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, fut), 0);
	ck_assert_int_eq(tide_loop_is_running(loop), 0);
	ck_assert_int_eq(tide_future_done(fut), 1);
	ck_assert_int_eq(tide_future_result(fut, &v, &p), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_ptr_eq(p, &rec[0]);
	/* Already done: returns at once with the same answer. */
	ck_assert_int_eq(tide_loop_run_until_complete(loop, fut), 0);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_run_until_complete_error)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	g_loop = loop;
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	g_fut = fut;
	ck_assert_int_eq(tide_call_soon(loop, set_error_cb, (void *)(intptr_t)-EIO, NULL), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, fut), -EIO);
	ck_assert_int_eq(tide_future_error(fut), -EIO);
	tide_future_unref(fut);

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	g_fut = fut;
	ck_assert_int_eq(tide_call_soon(loop, set_error_cb, (void *)(intptr_t)-ECANCELED, NULL), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, fut), -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(fut), 1);
	tide_future_unref(fut);

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	g_fut = fut;
	ck_assert_int_eq(tide_call_soon(loop, set_error_cb, (void *)(intptr_t)TIDE_EINCOMPLETE_READ, NULL), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, fut), TIDE_EINCOMPLETE_READ);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_run_until_complete_stopped)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	g_loop = loop;
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	g_fut = fut;
	ck_assert_int_eq(tide_call_later(loop, 0.01, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, fut), TIDE_ESTOPPED);
	ck_assert_int_eq(tide_future_done(fut), 0);
	ck_assert_int_eq(tide_loop_is_running(loop), 0);
	/* The loop is usable again, and the future can still complete. */
	ck_assert_int_eq(tide_call_soon(loop, set_result_cb, (void *)7, NULL), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, fut), 0);
	ck_assert_int_eq(tt_result(fut), 7);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int nested_ret[4];

static void nested_cb(void *arg)
{
	struct tide_future *f = arg;

	ck_assert_int_eq(tide_loop_is_running(g_loop), 1);
	nested_ret[0] = tide_loop_run(g_loop);
	nested_ret[1] = tide_loop_run_until_complete(g_loop, f);
	nested_ret[2] = tide_loop_close(g_loop);
	nested_ret[3] = tide_loop_free(g_loop);
	tide_future_set_result(f, 1, NULL);
}

START_TEST(test_running_refuses_reentry)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	g_loop = loop;
	ck_assert_int_eq(tide_loop_is_running(loop), 0);
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_call_soon(loop, nested_cb, fut, NULL), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, fut), 0);
	ck_assert_int_eq(nested_ret[0], TIDE_ERUNNING);
	ck_assert_int_eq(nested_ret[1], TIDE_ERUNNING);
	ck_assert_int_eq(nested_ret[2], TIDE_ERUNNING);
	ck_assert_int_eq(nested_ret[3], -EBUSY);
	ck_assert_int_eq(tide_loop_is_closed(loop), 0);
	ck_assert_int_eq(tide_loop_is_running(loop), 0);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ----------------------------------------------------------------- close -- */

static void never_cb(void *arg)
{
	(void)arg;
	ck_abort_msg("a callback dropped by close ran");
}

START_TEST(test_close)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_handle h;

	g_loop = loop;
	ck_assert_int_eq(tide_loop_is_closed(loop), 0);
	ck_assert_int_eq(tide_call_soon(loop, never_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.001, never_cb, NULL, &h), 0);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_loop_is_closed(loop), 1);
	ck_assert_int_eq(tide_loop_close(loop), 0); /* idempotent */
	ck_assert_int_eq(tide_loop_is_closed(loop), 1);
	ck_assert_int_eq(tide_handle_cancel(&h), 0); /* dropped by close already */
	ck_assert_int_eq(tide_call_soon(loop, rec_cb, NULL, NULL), TIDE_ECLOSED);
	ck_assert_int_eq(tide_call_later(loop, 0.1, rec_cb, NULL, NULL), TIDE_ECLOSED);
	ck_assert_int_eq(tide_call_at(loop, tide_loop_time(loop), rec_cb, NULL, NULL), TIDE_ECLOSED);
	ck_assert_int_eq(tide_call_soon_threadsafe(loop, rec_cb, NULL), TIDE_ECLOSED);
	ck_assert_int_eq(tide_loop_run(loop), TIDE_ECLOSED);
	tt_sleep_ms(5);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), TIDE_ECLOSED);
	ck_assert_int_eq(tide_loop_is_running(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_free_without_close)
{
	struct tide_loop *loop = tt_loop_new();

	/* free closes (dropping pending callbacks and timers) and frees. */
	ck_assert_int_eq(tide_call_soon(loop, never_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_call_later(loop, 10, never_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------------------ time -- */

START_TEST(test_time_monotonic)
{
	struct tide_loop *loop = tt_loop_new();
	double prev = tide_loop_time(loop), t0, t1;
	uint64_t prevns = tide_loop_now_ns(loop), m0, m1, n0, m0b;

	for (int i = 0; i < 100000; i++) {
		double t = tide_loop_time(loop);
		uint64_t ns = tide_loop_now_ns(loop);

		ck_assert(t >= prev);
		ck_assert(ns >= prevns);
		prev = t;
		prevns = ns;
	}
	/*
	 * It is CLOCK_MONOTONIC: both readings lie between two readings of
	 * that clock taken around them (no margin a descheduled process could
	 * exceed; 1 us for the double's rounding).
	 */
	m0 = tt_mono_ns();
	t0 = tide_loop_time(loop);
	n0 = tide_loop_now_ns(loop);
	m0b = tt_mono_ns();
	ck_assert_msg(t0 >= (double)m0 / 1e9 - 1e-6 && t0 <= (double)m0b / 1e9 + 1e-6,
		      "loop time %.9f outside CLOCK_MONOTONIC [%.9f, %.9f]", t0, (double)m0 / 1e9,
		      (double)m0b / 1e9);
	ck_assert_msg(n0 >= m0 && n0 <= m0b, "loop time %llu ns outside CLOCK_MONOTONIC [%llu, %llu]",
		      (unsigned long long)n0, (unsigned long long)m0, (unsigned long long)m0b);
	ck_assert(t0 <= (double)n0 / 1e9 + 1e-6);
	/* As asyncio's loop.time(), it advances also while the loop is idle. */
	tt_sleep_ms(50);
	t1 = tide_loop_time(loop);
	m1 = tt_mono_ns();
	ck_assert_msg(t1 - t0 >= 0.045, "loop time advanced by %.6f s over a 50 ms sleep", t1 - t0);
	ck_assert(t1 - t0 <= (double)(m1 - m0) / 1e9 + 0.01);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------------------- handles -- */

START_TEST(test_handle_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_handle h1, h2, h3, ht;
	double now;

	g_loop = loop;
	nrec = 0;
	ck_assert_int_eq(tide_call_soon(loop, rec_cb, (void *)1, &h1), 0);
	ck_assert_int_eq(tide_call_soon(loop, rec_cb, (void *)2, &h2), 0);
	ck_assert(tide_handle_when(&h1) == -1);
	ck_assert_int_eq(tide_handle_cancel(&h1), 1);
	ck_assert_int_eq(tide_handle_cancel(&h1), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(nrec, 1);
	ck_assert_int_eq(rec[0], 2);
	/* h2 ran: a stale handle cancels nothing, even when its slot is reused. */
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(tide_call_soon(loop, rec_cb, (void *)(intptr_t)(10 + i), i == 0 ? &h3 : NULL), 0);
	ck_assert_int_eq(tide_handle_cancel(&h2), 0);
	ck_assert_int_eq(tide_handle_cancel(&h1), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 64);
	ck_assert_int_eq(nrec, 65);
	for (int i = 0; i < 64; i++)
		ck_assert_int_eq(rec[1 + i], 10 + i);
	ck_assert_int_eq(tide_handle_cancel(&h3), 0);

	/* A timer handle knows its deadline and cancels as well. */
	now = tide_loop_time(loop);
	ck_assert_int_eq(tide_call_later(loop, 0.01, rec_cb, (void *)500, &ht), 0);
	/* Between the clock before and after the call, plus the delay. */
	ck_assert(tide_handle_when(&ht) >= now + 0.01 - 1e-6);
	ck_assert(tide_handle_when(&ht) <= tide_loop_time(loop) + 0.01 + 1e-6);
	ck_assert_int_eq(tide_handle_cancel(&ht), 1);
	ck_assert_int_eq(tide_handle_cancel(&ht), 0);
	tt_sleep_ms(20);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0.03), 0);
	ck_assert_int_eq(nrec, 65);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static struct tide_handle g_victim;
static int cancel_ret = -100;

static void canceller_cb(void *arg)
{
	cancel_ret = tide_handle_cancel(&g_victim);
	rec_cb(arg);
}

START_TEST(test_cancel_from_same_iteration)
{
	struct tide_loop *loop = tt_loop_new();

	g_loop = loop;
	nrec = 0;
	/* Both are ready in one iteration; the first cancels the second. */
	ck_assert_int_eq(tide_call_soon(loop, canceller_cb, (void *)1, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, rec_cb, (void *)2, &g_victim), 0);
	ck_assert_int_eq(tide_call_soon(loop, rec_cb, (void *)3, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(cancel_ret, 1);
	ck_assert_int_eq(nrec, 2);
	ck_assert_int_eq(rec[0], 1);
	ck_assert_int_eq(rec[1], 3);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static struct tide_handle self_h;
static int self_ret = -100;

static void cancel_self_cb(void *arg)
{
	self_ret = tide_handle_cancel(&self_h);
	rec_cb(arg);
}

START_TEST(test_cancel_own_handle_in_callback)
{
	struct tide_loop *loop = tt_loop_new();

	g_loop = loop;
	nrec = 0;
	/* Running already: cancelling itself changes nothing and says so. */
	ck_assert_int_eq(tide_call_soon(loop, cancel_self_cb, (void *)1, &self_h), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(self_ret, 0);
	ck_assert_int_eq(nrec, 1);
	self_ret = -100;
	ck_assert_int_eq(tide_call_later(loop, 0, cancel_self_cb, (void *)2, &self_h), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(self_ret, 0);
	ck_assert_int_eq(nrec, 2);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------------ bad input -- */

START_TEST(test_bad_input)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_handle h;

	g_loop = loop;
	nrec = 0;
	ck_assert_int_eq(tide_call_soon(loop, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_call_later(loop, 0.1, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_call_at(loop, 1.0, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_call_soon_threadsafe(loop, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_call_later(loop, NAN, rec_cb, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_call_later(loop, INFINITY, rec_cb, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_call_later(loop, -INFINITY, rec_cb, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_call_at(loop, NAN, rec_cb, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_call_at(loop, INFINITY, rec_cb, NULL, NULL), -EINVAL);
	/* Nothing of the refused calls was scheduled. */
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(nrec, 0);

	/* A negative delay, or a past deadline, runs on the next iteration, in deadline order. */
	ck_assert_int_eq(tide_call_later(loop, -5.0, rec_cb, (void *)1, &h), 0);
	ck_assert_int_eq(tide_call_at(loop, tide_loop_time(loop) - 100.0, rec_cb, (void *)2, NULL), 0);
	ck_assert_int_eq(tide_call_at(loop, 0.0, rec_cb, (void *)3, NULL), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 3);
	ck_assert_int_eq(nrec, 3);
	ck_assert_int_eq(rec[0], 3);
	ck_assert_int_eq(rec[1], 2);
	ck_assert_int_eq(rec[2], 1);
	ck_assert_int_eq(tide_handle_cancel(&h), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_bad_options)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop = NULL;

	tt_opts_init(&opts);
	opts.backend = "kqueue";
	ck_assert_int_eq(tide_loop_new(&opts, &loop), -EINVAL);
	tt_opts_init(&opts);
	opts.slow_callback_duration = NAN;
	opts.debug = 1;
	ck_assert_int_eq(tide_loop_new(&opts, &loop), -EINVAL);
	tt_opts_init(&opts);
	opts.slow_callback_duration = -1;
	ck_assert_int_eq(tide_loop_new(&opts, &loop), -EINVAL);
	ck_assert_int_eq(tide_loop_new(NULL, NULL), -EINVAL);
	/* A short opts struct (an older caller) is accepted. */
	tt_opts_init(&opts);
	opts.size = offsetof(struct tide_loop_opts, ring_entries);
	ck_assert_int_eq(tide_loop_new(&opts, &loop), 0);
	ck_assert_str_eq(tide_loop_backend(loop), tt_cfg->backend);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ---------------------------------------------------------- threadsafe -- */

#define TS_THREADS 4
#define TS_PER_THREAD 1000000u

static uint32_t ts_next[TS_THREADS];
static uint64_t ts_count, ts_bad_order;
static atomic_int ts_fail;

static void ts_cb(void *arg)
{
	uintptr_t v = (uintptr_t)arg;
	unsigned id = (unsigned)(v >> 32);
	uint32_t seq = (uint32_t)v;

	if (id >= TS_THREADS || seq != ts_next[id])
		ts_bad_order++;
	else
		ts_next[id]++;
	if (++ts_count == (uint64_t)TS_THREADS * TS_PER_THREAD)
		tide_loop_stop(g_loop);
}

static void *ts_producer(void *arg)
{
	uintptr_t id = (uintptr_t)arg;

	for (uint32_t i = 0; i < TS_PER_THREAD; i++) {
		int r = tide_call_soon_threadsafe(g_loop, ts_cb, (void *)((id << 32) | i));

		if (r != 0)
			atomic_fetch_add(&ts_fail, 1);
		if ((i & 0xffff) == 0)
			sched_yield(); /* let the loop fall asleep now and then */
	}
	return NULL;
}

START_TEST(test_threadsafe_4x1m)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	pthread_t th[TS_THREADS];

	g_loop = loop;
	tt_stats(loop, &s0);
	for (uintptr_t i = 0; i < TS_THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, ts_producer, (void *)i), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	for (int i = 0; i < TS_THREADS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&ts_fail), 0);
	ck_assert_uint_eq(ts_bad_order, 0);
	ck_assert_uint_eq(ts_count, (uint64_t)TS_THREADS * TS_PER_THREAD);
	for (int i = 0; i < TS_THREADS; i++)
		ck_assert_uint_eq(ts_next[i], TS_PER_THREAD);
	/* Nothing extra is left: one more iteration runs no callback. */
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 0);
	ck_assert_uint_eq(ts_count, (uint64_t)TS_THREADS * TS_PER_THREAD);
	tt_stats(loop, &s1);
	ck_assert_uint_eq(s1.threadsafe_calls - s0.threadsafe_calls, (uint64_t)TS_THREADS * TS_PER_THREAD);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static void *waker(void *arg)
{
	unsigned delay_us = (unsigned)(uintptr_t)arg;

	if (delay_us)
		usleep(delay_us);
	ck_assert_int_eq(tide_call_soon_threadsafe(g_loop, stop_cb, NULL), 0);
	return NULL;
}

START_TEST(test_threadsafe_wakes_sleeping_loop)
{
	struct tide_loop *loop = tt_loop_new();

	g_loop = loop;
	/* The loop sleeps with nothing to do; only the wake-up can end run(). */
	for (int i = 0; i < 300; i++) {
		pthread_t th;
		unsigned delay = (i % 3 == 0) ? 0 : (i % 3 == 1 ? 50 : 2000);

		ck_assert_int_eq(pthread_create(&th, NULL, waker, (void *)(uintptr_t)delay), 0);
		ck_assert_int_eq(tide_loop_run(loop), 0);
		ck_assert_int_eq(pthread_join(th, NULL), 0);
	}
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* Producers racing close: each call is either queued (0) or refused (ECLOSED). */
static atomic_int race_stop, race_closed_seen, race_bad;

static void *close_racer(void *arg)
{
	(void)arg;
	while (!atomic_load(&race_stop)) {
		int r = tide_call_soon_threadsafe(g_loop, fast_noop, NULL);

		if (r == TIDE_ECLOSED)
			atomic_store(&race_closed_seen, 1);
		else if (r != 0)
			atomic_fetch_add(&race_bad, 1);
	}
	return NULL;
}

static void close_soon_cb(void *arg)
{
	(void)arg;
	tide_loop_stop(g_loop);
}

START_TEST(test_threadsafe_races_close)
{
	struct tide_loop *loop = tt_loop_new();
	pthread_t th[3];

	g_loop = loop;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, close_racer, NULL), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.05, close_soon_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	/*
	 * Producers keep calling into the closed loop until one of them has
	 * been refused (a loaded machine may not run them for a while after
	 * the close: wait for it, not for a fixed time).
	 */
	for (uint64_t end = tt_mono_ns() + TT_HANG_NS; !atomic_load(&race_closed_seen) && tt_mono_ns() < end;)
		tt_sleep_ms(1);
	tt_sleep_ms(5);
	atomic_store(&race_stop, 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&race_bad), 0);
	ck_assert_int_eq(atomic_load(&race_closed_seen), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* Independent loops on independent threads share nothing. */
static void *loop_thread(void *arg)
{
	int *result = arg;
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	int count = 0;
	int p[2];
	char buf[4];

	for (int i = 0; i < 20000; i++)
		if (tide_call_soon(loop, thread_count_cb, &count, NULL) != 0)
			return NULL;
	tt_pipe(p, 0);
	if (tide_op_read(loop, p[0], buf, sizeof(buf), -1, &fut) != 0)
		return NULL;
	if (tide_call_later(loop, 0.01, write_one_cb, (void *)(intptr_t)p[1], NULL) != 0)
		return NULL;
	if (tide_loop_run_until_complete(loop, fut) != 0)
		return NULL;
	tide_future_unref(fut);
	close(p[0]);
	close(p[1]);
	*result = count == 20000 && tide_loop_free(loop) == 0;
	return NULL;
}

START_TEST(test_loops_on_threads)
{
	pthread_t th[4];
	int ok[4] = { 0 };

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, loop_thread, &ok[i]), 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(ok[i], 1);
	}
}
END_TEST

/* Signals interrupt the backend's wait (EINTR): the loop carries on unharmed. */
static volatile sig_atomic_t n_alarms;

static void on_alarm(int sig)
{
	(void)sig;
	n_alarms++;
}

static uint64_t eintr_fired_ns;

static void eintr_timer_cb(void *arg)
{
	(void)arg;
	eintr_fired_ns = tt_mono_ns();
	tide_loop_stop(g_loop);
}

START_TEST(test_signals_interrupt_wait)
{
	struct tide_loop *loop = tt_loop_new();
	struct sigaction sa;
	struct itimerval it = { { 0, 2000 }, { 0, 2000 } }, off = { { 0, 0 }, { 0, 0 } };
	uint64_t t0;

	g_loop = loop;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: every wait sees EINTR */
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	t0 = tt_mono_ns();
	ck_assert_int_eq(tide_call_later(loop, 0.15, eintr_timer_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	/*
	 * run_once reports callbacks, not the interruption: at least 20
	 * times, and on until more than 10 signals arrived (a descheduled
	 * process gets pending SIGALRMs merged into one).
	 */
	for (int i = 0; i < 20 || (n_alarms <= 10 && tt_mono_ns() - t0 < TT_HANG_NS); i++)
		ck_assert_int_eq(tide_loop_run_once(loop, 0.005), 0);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &off, NULL), 0);
	signal(SIGALRM, SIG_DFL);
	ck_assert_msg(n_alarms > 10, "only %d signals arrived", (int)n_alarms);
	ck_assert_uint_ge(eintr_fired_ns - t0, 150000000u);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------- exception handler -- */

static int eh_calls;
static struct tide_error_context eh_last;
static char eh_msg[512];
static struct tide_loop *eh_loop;
static void *eh_arg;

static void handler(struct tide_loop *loop, const struct tide_error_context *ctx, void *arg)
{
	eh_calls++;
	eh_loop = loop;
	eh_arg = arg;
	eh_last = *ctx;
	snprintf(eh_msg, sizeof(eh_msg), "%s", ctx->message ? ctx->message : "(null)");
	eh_last.message = eh_msg;
}

START_TEST(test_exception_handler)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_error_context ctx = { sizeof(ctx), "something broke", -EPIPE, NULL, (void *)rec_cb };
	FILE *tmp;
	int saved;
	char buf[1024] = "";
	size_t n;

	tide_loop_set_exception_handler(loop, handler, &eh_calls);
	tide_loop_call_exception_handler(loop, &ctx);
	ck_assert_int_eq(eh_calls, 1);
	ck_assert_ptr_eq(eh_loop, loop);
	ck_assert_ptr_eq(eh_arg, &eh_calls);
	ck_assert_str_eq(eh_msg, "something broke");
	ck_assert_int_eq(eh_last.error, -EPIPE);
	ck_assert_ptr_eq(eh_last.callback, (void *)rec_cb);
	ck_assert_ptr_null(eh_last.future);

	/* NULL restores the default, which writes to stderr. */
	tide_loop_set_exception_handler(loop, NULL, NULL);
	tmp = tmpfile();
	ck_assert_ptr_nonnull(tmp);
	fflush(stderr);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fileno(tmp), 2), 2);
	tide_loop_call_exception_handler(loop, &ctx);
	ctx.message = "chained to the default";
	tide_loop_default_exception_handler(loop, &ctx);
	fflush(stderr);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, sizeof(buf) - 1, tmp);
	buf[n] = 0;
	fclose(tmp);
	ck_assert_int_eq(eh_calls, 1);
	ck_assert_msg(strstr(buf, "something broke") != NULL, "stderr: '%s'", buf);
	ck_assert_msg(strstr(buf, "chained to the default") != NULL, "stderr: '%s'", buf);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ----------------------------------------------------------- debug mode -- */

static void slow_cb(void *arg)
{
	(void)arg;
	tt_sleep_ms(150);
}

static void fast_cb(void *arg)
{
	(void)arg;
}

START_TEST(test_debug_slow_callback)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;

	tt_opts_init(&opts);
	opts.debug = 1;
	opts.slow_callback_duration = 0.05; /* fast callbacks stay far below, even on a loaded machine */
	loop = tt_loop_new_opts(&opts);
	g_loop = loop;
	ck_assert_int_eq(tide_loop_get_debug(loop), 1);
	eh_calls = 0;
	tide_loop_set_exception_handler(loop, handler, NULL);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(tide_call_soon(loop, fast_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, slow_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, fast_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(eh_calls, 1);
	ck_assert_msg(strncmp(eh_msg, "Executing", 9) == 0, "message: '%s'", eh_msg);
	ck_assert_ptr_eq(eh_last.callback, (void *)slow_cb);

	/* A slow timer callback is reported as well. */
	ck_assert_int_eq(tide_call_later(loop, 0.001, slow_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.01, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(eh_calls, 2);
	ck_assert_msg(strncmp(eh_msg, "Executing", 9) == 0, "message: '%s'", eh_msg);

	/* Debug off: no report. */
	tide_loop_set_debug(loop, 0);
	ck_assert_int_eq(tide_loop_get_debug(loop), 0);
	ck_assert_int_eq(tide_call_soon(loop, slow_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(eh_calls, 2);

	/* And on again at run time. */
	tide_loop_set_debug(loop, 1);
	ck_assert_int_eq(tide_loop_get_debug(loop), 1);
	ck_assert_int_eq(tide_call_soon(loop, slow_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(eh_calls, 3);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_debug_from_env)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;

	/* 0, the default, takes $TIDE_DEBUG (asyncio's PYTHONASYNCIODEBUG). */
	setenv("TIDE_DEBUG", "1", 1);
	tt_opts_init(&opts);
	opts.debug = 0;
	loop = tt_loop_new_opts(&opts);
	ck_assert_int_eq(tide_loop_get_debug(loop), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);

	/* An old, short opts struct takes $TIDE_DEBUG too. */
	tt_opts_init(&opts);
	opts.size = offsetof(struct tide_loop_opts, debug);
	loop = tt_loop_new_opts(&opts);
	ck_assert_int_eq(tide_loop_get_debug(loop), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);

	/* A negative value (off) wins over the environment. */
	tt_opts_init(&opts);
	opts.debug = -1;
	loop = tt_loop_new_opts(&opts);
	ck_assert_int_eq(tide_loop_get_debug(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);

	/* So does a positive one (on), over TIDE_DEBUG=0. */
	setenv("TIDE_DEBUG", "0", 1);
	tt_opts_init(&opts);
	opts.debug = 2;
	loop = tt_loop_new_opts(&opts);
	ck_assert_int_eq(tide_loop_get_debug(loop), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);

	unsetenv("TIDE_DEBUG");
	tt_opts_init(&opts);
	opts.debug = 0;
	loop = tt_loop_new_opts(&opts);
	ck_assert_int_eq(tide_loop_get_debug(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------- steady state, allocator -- */

static atomic_long n_alloc;

static void *count_malloc(size_t n) { atomic_fetch_add(&n_alloc, 1); return malloc(n); }
static void *count_realloc(void *p, size_t n) { atomic_fetch_add(&n_alloc, 1); return realloc(p, n); }
static void *count_calloc(size_t n, size_t m) { atomic_fetch_add(&n_alloc, 1); return calloc(n, m); }

static void round_of_callbacks(struct tide_loop *loop, int n)
{
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(tide_call_soon(loop, fast_cb, NULL, NULL), 0);
		ck_assert_int_eq(tide_call_later(loop, 0, fast_cb, NULL, NULL), 0);
	}
	ck_assert_int_eq(tide_call_later(loop, 0.001, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
}

/* Needs a fresh process: the allocator locks once any loop exists. */
START_TEST(test_no_malloc_per_callback)
{
	struct tide_loop *loop;
	long before;

	ck_assert_int_eq(tide_replace_allocator(NULL, realloc, calloc, free), -EINVAL);
	ck_assert_int_eq(tide_replace_allocator(count_malloc, count_realloc, count_calloc, free), 0);
	loop = tt_loop_new();
	g_loop = loop;
	ck_assert_int_eq(tide_replace_allocator(malloc, realloc, calloc, free), -EBUSY);
	ck_assert_int_gt(atomic_load(&n_alloc), 0); /* the loop came from our allocator */
	round_of_callbacks(loop, 20000); /* warm the free lists */
	before = atomic_load(&n_alloc);
	round_of_callbacks(loop, 20000);
	ck_assert_msg(atomic_load(&n_alloc) - before < 64,
		      "%ld allocations for 40000 callbacks in the steady state",
		      atomic_load(&n_alloc) - before);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ----------------------------------------------------------------- misc -- */

START_TEST(test_strerror_version)
{
	static const int codes[] = { 0, -EINVAL, -ENOMEM, -ECANCELED, -ETIMEDOUT,
		TIDE_EINVALID_STATE, TIDE_ECLOSED, TIDE_ESTOPPED, TIDE_ERUNNING,
		TIDE_ELIMIT_OVERRUN, TIDE_EINCOMPLETE_READ, TIDE_EQUEUE_FULL,
		TIDE_EQUEUE_EMPTY, TIDE_ENOT_IN_TASK, TIDE_EBROKEN_BARRIER, TIDE_EFORKED,
		-4096, -99999, 12345, -2147483647 - 1 };
	char v[32];

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = tide_strerror(codes[i]);

		ck_assert_ptr_nonnull(s);
		ck_assert_int_gt((int)strlen(s), 0);
	}
	/* tide's codes have texts of their own, distinct from each other. */
	for (int a = TIDE_EFORKED; a <= TIDE_EINVALID_STATE; a++)
		for (int b = a + 1; b <= TIDE_EINVALID_STATE; b++)
			ck_assert_str_ne(tide_strerror(a), tide_strerror(b));
	ck_assert_str_eq(tide_strerror(-EINVAL), strerror(EINVAL));
	snprintf(v, sizeof(v), "%d.%d.%d", TIDE_VERSION_MAJOR, TIDE_VERSION_MINOR, TIDE_VERSION_PATCH);
	ck_assert_str_eq(tide_version(), v);
}
END_TEST

int main(void)
{
	struct tt_suite ts;
	TCase *misc;

	tt_suite_init(&ts, "loop", 120);
	tt_add(&ts, test_call_soon_fifo);
	tt_add(&ts, test_call_soon_next_iteration);
	tt_add(&ts, test_run_once_timeout_waits);
	tt_add(&ts, test_stop_inside_callback);
	tt_add(&ts, test_stop_before_run);
	tt_add(&ts, test_run_until_complete_result);
	tt_add(&ts, test_run_until_complete_error);
	tt_add(&ts, test_run_until_complete_stopped);
	tt_add(&ts, test_running_refuses_reentry);
	tt_add(&ts, test_close);
	tt_add(&ts, test_free_without_close);
	tt_add(&ts, test_time_monotonic);
	tt_add(&ts, test_handle_cancel);
	tt_add(&ts, test_cancel_from_same_iteration);
	tt_add(&ts, test_cancel_own_handle_in_callback);
	tt_add(&ts, test_bad_input);
	tt_add(&ts, test_bad_options);
	tt_add(&ts, test_threadsafe_4x1m);
	tt_add(&ts, test_threadsafe_wakes_sleeping_loop);
	tt_add(&ts, test_threadsafe_races_close);
	tt_add(&ts, test_loops_on_threads);
	tt_add(&ts, test_signals_interrupt_wait);
	tt_add(&ts, test_exception_handler);
	tt_add(&ts, test_debug_slow_callback);
	tt_add(&ts, test_debug_from_env);
	tt_add(&ts, test_no_malloc_per_callback);
	misc = tt_tcase(&ts, "misc");
	tcase_add_test(misc, test_strerror_version);
	return tt_run(&ts);
}
