/* SPDX-License-Identifier: MIT */
/*
 * test/future.c: futures on every backend configuration: outcomes, cancel,
 * done callbacks (always through call_soon, never synchronously), removal,
 * references, the double-set assertion, and debug mode's "error was never
 * retrieved" report.
 */
#include "config.h"
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static struct tide_loop *g_loop;

/* ------------------------------------------------------------ outcomes -- */

START_TEST(test_future_pending)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut = NULL;
	int64_t v = 123;
	void *p = &v;

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_ptr_nonnull(fut);
	ck_assert_ptr_eq(tide_future_loop(fut), loop);
	ck_assert_int_eq(tide_future_done(fut), 0);
	ck_assert_int_eq(tide_future_cancelled(fut), 0);
	ck_assert_int_eq(tide_future_result(fut, &v, &p), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_future_error(fut), TIDE_EINVALID_STATE);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_future_result)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	int64_t v = 0;
	void *p = NULL;
	int payload;

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	tide_future_set_result(fut, -42, &payload); /* a negative value is a result too */
	ck_assert_int_eq(tide_future_done(fut), 1);
	ck_assert_int_eq(tide_future_cancelled(fut), 0);
	ck_assert_int_eq(tide_future_result(fut, &v, &p), 0);
	ck_assert_int_eq(v, -42);
	ck_assert_ptr_eq(p, &payload);
	ck_assert_int_eq(tide_future_result(fut, NULL, NULL), 0);
	ck_assert_int_eq(tide_future_error(fut), 0);
	ck_assert_int_eq(tide_future_cancel(fut), 0);
	ck_assert_int_eq(tide_future_cancelled(fut), 0);
	ck_assert_int_eq(tide_future_result(fut, &v, NULL), 0);
	ck_assert_int_eq(v, -42);
	tide_future_unref(fut);

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	tide_future_set_result(fut, INT64_MAX, NULL);
	v = 0;
	p = &v;
	ck_assert_int_eq(tide_future_result(fut, &v, &p), 0);
	ck_assert_int_eq(v, INT64_MAX);
	ck_assert_ptr_null(p);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_future_error)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	int64_t v = 5;

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	tide_future_set_error(fut, -EIO);
	ck_assert_int_eq(tide_future_done(fut), 1);
	ck_assert_int_eq(tide_future_cancelled(fut), 0);
	ck_assert_int_eq(tide_future_error(fut), -EIO);
	ck_assert_int_eq(tide_future_result(fut, &v, NULL), -EIO);
	ck_assert_int_eq(tide_future_cancel(fut), 0);
	tide_future_unref(fut);

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	tide_future_set_error(fut, TIDE_ELIMIT_OVERRUN);
	ck_assert_int_eq(tide_future_error(fut), TIDE_ELIMIT_OVERRUN);
	ck_assert_int_eq(tide_future_result(fut, NULL, NULL), TIDE_ELIMIT_OVERRUN);
	tide_future_unref(fut);

	/* -ECANCELED as an error makes the future cancelled. */
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	tide_future_set_error(fut, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(fut), 1);
	ck_assert_int_eq(tide_future_done(fut), 1);
	ck_assert_int_eq(tide_future_error(fut), -ECANCELED);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_future_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_future_cancel(fut), 1);
	ck_assert_int_eq(tide_future_cancelled(fut), 1);
	ck_assert_int_eq(tide_future_done(fut), 1);
	ck_assert_int_eq(tide_future_cancel(fut), 0);
	ck_assert_int_eq(tide_future_result(fut, NULL, NULL), -ECANCELED);
	ck_assert_int_eq(tide_future_error(fut), -ECANCELED);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------ done callbacks -- */

#define LOG_MAX 64
static struct { struct tide_future *fut; int tag; int64_t value; int err; } dlog[LOG_MAX];
static int ndlog;

static void done_cb(struct tide_future *fut, void *arg)
{
	ck_assert_int_lt(ndlog, LOG_MAX);
	ck_assert_int_eq(tide_future_done(fut), 1);
	dlog[ndlog].fut = fut;
	dlog[ndlog].tag = (int)(intptr_t)arg;
	dlog[ndlog].value = -1;
	dlog[ndlog].err = tide_future_result(fut, &dlog[ndlog].value, NULL);
	ndlog++;
}

static void done_cb2(struct tide_future *fut, void *arg)
{
	done_cb(fut, (void *)((intptr_t)arg + 1000));
}

static void plain_cb(void *arg)
{
	ck_assert_int_lt(ndlog, LOG_MAX);
	dlog[ndlog].fut = NULL;
	dlog[ndlog].tag = (int)(intptr_t)arg;
	ndlog++;
}

START_TEST(test_done_callbacks_via_call_soon)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	struct tide_loop_stats s0, s1;

	g_loop = loop;
	ndlog = 0;
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb, (void *)1), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb, (void *)2), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb, (void *)3), 0);
	/* Scheduled before the result: runs before the done callbacks (FIFO). */
	ck_assert_int_eq(tide_call_soon(loop, plain_cb, (void *)100, NULL), 0);
	tt_stats(loop, &s0);
	tide_future_set_result(fut, 9, NULL);
	ck_assert_int_eq(ndlog, 0); /* never synchronously */
	ck_assert_int_eq(tide_call_soon(loop, plain_cb, (void *)200, NULL), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 5);
	tt_stats(loop, &s1);
	ck_assert_uint_eq(s1.callbacks - s0.callbacks, 5);
	ck_assert_int_eq(ndlog, 5);
	ck_assert_int_eq(dlog[0].tag, 100);
	for (int i = 1; i <= 3; i++) {
		ck_assert_int_eq(dlog[i].tag, i);
		ck_assert_ptr_eq(dlog[i].fut, fut);
		ck_assert_int_eq(dlog[i].err, 0);
		ck_assert_int_eq(dlog[i].value, 9);
	}
	ck_assert_int_eq(dlog[4].tag, 200);
	/* Each ran once: nothing more. */
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(ndlog, 5);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_done_callback_on_done_future)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	ndlog = 0;
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	tide_future_set_error(fut, -ENOENT);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb, (void *)7), 0);
	ck_assert_int_eq(ndlog, 0); /* scheduled, not run at once */
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(ndlog, 1);
	ck_assert_int_eq(dlog[0].tag, 7);
	ck_assert_int_eq(dlog[0].err, -ENOENT);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_done_callback_on_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	ndlog = 0;
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb, (void *)1), 0);
	ck_assert_int_eq(tide_future_cancel(fut), 1);
	ck_assert_int_eq(ndlog, 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(ndlog, 1);
	ck_assert_int_eq(dlog[0].err, -ECANCELED);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_remove_done_callback)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	ndlog = 0;
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb, (void *)1), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb, (void *)2), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb, (void *)1), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb2, (void *)1), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb, (void *)1), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb, (void *)3), 0);
	ck_assert_int_eq(tide_future_remove_done_callback(fut, done_cb, (void *)1), 3);
	ck_assert_int_eq(tide_future_remove_done_callback(fut, done_cb, (void *)1), 0);
	ck_assert_int_eq(tide_future_remove_done_callback(fut, done_cb, (void *)9), 0);
	tide_future_set_result(fut, 1, NULL);
	/* Once done the callbacks are scheduled: removing no longer finds them. */
	ck_assert_int_eq(tide_future_remove_done_callback(fut, done_cb, (void *)3), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 3);
	ck_assert_int_eq(ndlog, 3);
	ck_assert_int_eq(dlog[0].tag, 2);
	ck_assert_int_eq(dlog[1].tag, 1001);
	ck_assert_int_eq(dlog[2].tag, 3);
	ck_assert_int_eq(tide_future_add_done_callback(fut, NULL, NULL), -EINVAL);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------------ references -- */

static void result_in_cb(struct tide_future *fut, void *arg)
{
	int64_t v = 0;

	ck_assert_int_eq(tide_future_result(fut, &v, NULL), 0);
	*(int64_t *)arg = v;
}

START_TEST(test_future_refs)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;
	int64_t seen = 0;

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_ptr_eq(tide_future_ref(fut), fut);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_future_done(fut), 0); /* still alive: one reference left */
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	ck_assert_int_eq(tide_loop_is_closed(loop), 0);

	/* A scheduled done callback holds the future: the caller may drop it. */
	ck_assert_int_eq(tide_future_add_done_callback(fut, result_in_cb, &seen), 0);
	tide_future_set_result(fut, 31, NULL);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(seen, 31);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_future_busy_then_free)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	/* A refused free frees nothing: the loop still works. */
	ck_assert_int_eq(tide_call_soon(loop, plain_cb, NULL, NULL), 0);
	ndlog = 0;
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(ndlog, 1);
	tide_future_set_result(fut, 0, NULL);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ---------------------------------------------- outcomes set twice -- */

/* asyncio's InvalidStateError: an error code, the first outcome kept. */
START_TEST(test_set_result_twice_refused)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_future_set_result(fut, 1, NULL), 0);
	ck_assert_int_eq(tide_future_set_result(fut, 2, NULL), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_future_set_error(fut, -EIO), TIDE_EINVALID_STATE);
	{
		int64_t v = 0;
		ck_assert_int_eq(tide_future_result(fut, &v, NULL), 0);
		ck_assert_int_eq(v, 1);
	}
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_set_result_after_cancel_refused)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_future_cancel(fut), 1);
	ck_assert_int_eq(tide_future_set_result(fut, 1, NULL), TIDE_EINVALID_STATE);
	ck_assert(tide_future_cancelled(fut));
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_set_bad_input)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut;

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_future_set_result(NULL, 1, NULL), -EINVAL);
	ck_assert_int_eq(tide_future_set_error(NULL, -EIO), -EINVAL);
	ck_assert_int_eq(tide_future_set_error(fut, 0), -EINVAL);
	ck_assert_int_eq(tide_future_set_error(fut, 5), -EINVAL);
	ck_assert(!tide_future_done(fut));
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------- unretrieved errors -- */

static int eh_calls, eh_err;
static char eh_msg[512];

static void handler(struct tide_loop *loop, const struct tide_error_context *ctx, void *arg)
{
	(void)loop;
	(void)arg;
	eh_calls++;
	eh_err = ctx->error;
	snprintf(eh_msg, sizeof(eh_msg), "%s", ctx->message ? ctx->message : "");
}

static struct tide_loop *debug_loop(void)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;

	tt_opts_init(&opts);
	opts.debug = 1;
	loop = tt_loop_new_opts(&opts);
	tide_loop_set_exception_handler(loop, handler, NULL);
	eh_calls = 0;
	eh_err = 0;
	return loop;
}

START_TEST(test_unretrieved_error_reported)
{
	struct tide_loop *loop = debug_loop();
	struct tide_future *fut;

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	tide_future_set_error(fut, -EIO);
	ck_assert_int_eq(eh_calls, 0);
	tide_future_unref(fut);
	/* Reported when freed, or at the latest on the next iteration. */
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(eh_calls, 1);
	ck_assert_int_eq(eh_err, -EIO);
	ck_assert_int_gt((int)strlen(eh_msg), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_retrieved_error_not_reported)
{
	struct tide_loop *loop = debug_loop();
	struct tide_future *fut;

	/* Retrieved through error()... */
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	tide_future_set_error(fut, -EIO);
	ck_assert_int_eq(tide_future_error(fut), -EIO);
	tide_future_unref(fut);
	/* ...through result()... */
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	tide_future_set_error(fut, -EPIPE);
	ck_assert_int_eq(tide_future_result(fut, NULL, NULL), -EPIPE);
	tide_future_unref(fut);
	/* ...by a done callback that looked... */
	ndlog = 0;
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_future_add_done_callback(fut, done_cb, NULL), 0);
	tide_future_set_error(fut, -ENOSPC);
	tide_future_unref(fut);
	/* ...and neither a cancelled future nor a result is an unretrieved error. */
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_future_cancel(fut), 1);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	tide_future_set_result(fut, 5, NULL);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(ndlog, 1);
	ck_assert_int_eq(dlog[0].err, -ENOSPC);
	ck_assert_int_eq(eh_calls, 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "future", 60);
	tt_add(&ts, test_future_pending);
	tt_add(&ts, test_future_result);
	tt_add(&ts, test_future_error);
	tt_add(&ts, test_future_cancel);
	tt_add(&ts, test_done_callbacks_via_call_soon);
	tt_add(&ts, test_done_callback_on_done_future);
	tt_add(&ts, test_done_callback_on_cancel);
	tt_add(&ts, test_remove_done_callback);
	tt_add(&ts, test_future_refs);
	tt_add(&ts, test_future_busy_then_free);
	tt_add(&ts, test_set_result_twice_refused);
	tt_add(&ts, test_set_result_after_cancel_refused);
	tt_add(&ts, test_set_bad_input);
	tt_add(&ts, test_unretrieved_error_reported);
	tt_add(&ts, test_retrieved_error_not_reported);
	return tt_run(&ts);
}
