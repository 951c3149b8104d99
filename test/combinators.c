/* SPDX-License-Identifier: MIT */
/*
 * test/combinators.c: gather, wait, wait_for, shield, as_completed, timeout
 * scopes and TaskGroup on every backend configuration, case by case as
 * asyncio's test_tasks.py, test_timeouts.py and test_taskgroups.py check
 * them. Each test body runs inside a task (the "main" task) and every test
 * ends with tide_loop_free() == 0, so a combinator that leaks a reference,
 * a callback or a timer fails here.
 *
 * Timing assertions carry wide tolerances (the ASan build is slow, a loaded
 * machine deschedules the loop): they only tell "returned at the short
 * deadline" (within TT_HANG_S) from "waited for the long one" (FOREVER).
 * Where a test needs one child to finish before another, or before a
 * deadline, the order is structural: the later one waits on a gate the test
 * opens, or is armed after the earlier one with a longer delay. Delays a few
 * milliseconds apart, armed by different tasks, are never relied on.
 */
#include "config.h"
#include "helpers.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct tide_loop *g_loop;

/*
 * Every allocation the library makes is counted (helpers.h's counting
 * allocator: LeakSanitizer does not report from Check's forked children),
 * so each test proves that the combinators' state objects are all freed.
 */
static int g_counting;

/* Before the test's loop: count from here (only possible before the
 * process's first loop, so with CK_FORK=no only the first test counts). */
static void count_begin(void)
{
	g_counting = tt_count_allocs() == 0;
}

/* After tide_loop_free: nothing the library allocated is left. */
static void count_end(void)
{
	long live = tt_live_allocs();

	if (g_counting)
		ck_assert_msg(live == 0, "%ld allocations of the library are still live", live);
}

/* Runs fn as the main task on a fresh loop of the current configuration. */
static void run_main(tide_task_cb fn)
{
	count_begin();
	tt_run_main(&g_loop, fn, NULL);
	count_end();
}

/* A Check test whose body (after the macro) runs inside the main task. */
#define TASK_TEST(name)                                      \
	static int64_t name##_body(void *arg);               \
	START_TEST(name)                                     \
	{                                                    \
		run_main(name##_body);                       \
	}                                                    \
	END_TEST                                             \
	static int64_t name##_body(void *arg __attribute__((unused)))

static double now(void)
{
	return tide_loop_time(g_loop);
}

/* A delay no test waits out: what sleeps this long is cancelled. */
#define FOREVER 3600.0

/* ------------------------------------------------------------ children -- */

/* What a child task does: sleep, then return result or fail. */
struct job {
	double delay;      /* the sleep */
	struct tide_future *gate; /* if set: awaited instead of the sleep (see gate()) */
	int64_t result;    /* returned after it */
	int fail;          /* < 0: returned instead of result */
	int swallow;       /* on cancellation: sleep `after` more, then return result */
	double after;
	int cancelled;     /* the sleep saw -ECANCELED */
	int finished;      /* the body returned */
};

static int64_t job_body(void *arg)
{
	struct job *j = arg;
	int r = j->gate ? (int)tide_await(j->gate) : tide_sleep(j->delay);

	if (r == -ECANCELED) {
		j->cancelled = 1;
		if (j->swallow) {
			tide_sleep(j->after);
			j->finished = 1;
			return j->result;
		}
		j->finished = 1;
		return r;
	}
	ck_assert_int_eq(r, 0);
	j->finished = 1;
	return j->fail ? j->fail : j->result;
}

static struct tide_future *spawn(struct job *j)
{
	struct tide_future *t;

	ck_assert_int_eq(tide_task_spawn(g_loop, job_body, j, NULL, &t), 0);
	return t;
}

/* Gives j a gate: it finishes once open() sets it, and not before. */
static void gate(struct job *j)
{
	ck_assert_int_eq(tide_future_new(g_loop, &j->gate), 0);
}

static void open_gate(struct job *j)
{
	tide_future_set_result(j->gate, 0, NULL);
}

static void drop_gate(struct job *j)
{
	tide_future_unref(j->gate);
	j->gate = NULL;
}

/* Cancels f if it still runs, waits for it and drops the reference. */
static void reap(struct tide_future *f)
{
	if (!tide_future_done(f))
		tide_future_cancel(f);
	while (!tide_future_done(f))
		tide_await(f);
	tide_future_unref(f);
}

static struct tide_future *plain(void)
{
	struct tide_future *f;

	ck_assert_int_eq(tide_future_new(g_loop, &f), 0);
	return f;
}

/* Completes a plain future from the loop, later. */
struct later_set {
	struct tide_future *f;
	int64_t value;
	int err;
};

static void later_set_cb(void *arg)
{
	struct later_set *ls = arg;

	if (tide_future_done(ls->f))
		return;
	if (ls->err)
		tide_future_set_error(ls->f, ls->err);
	else
		tide_future_set_result(ls->f, ls->value, NULL);
}

static void set_later(struct later_set *ls, double delay)
{
	ck_assert_int_eq(tide_call_later(g_loop, delay, later_set_cb, ls, NULL), 0);
}

/* -------------------------------------------------------------- gather -- */

TASK_TEST(test_gather_results)
{
	struct job j[3] = { { .delay = 0.03, .result = 1 }, { .delay = 0.01, .result = 2 },
			    { .delay = 0.02, .result = 3 } };
	struct tide_future *t[3], *g;
	int i;

	for (i = 0; i < 3; i++)
		t[i] = spawn(&j[i]);
	ck_assert_int_eq(tide_gather(g_loop, t, 3, 0, &g), 0);
	ck_assert_int_eq(tide_future_done(g), 0);
	ck_assert_int_eq(tide_await(g), 0);
	/* Done only once all are: results stay in the children, in their order. */
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(tide_future_done(t[i]), 1);
		ck_assert_int_eq(tt_result(t[i]), i + 1);
	}
	tide_future_unref(g);
	for (i = 0; i < 3; i++)
		reap(t[i]);
	return 0;
}

TASK_TEST(test_gather_empty)
{
	struct tide_future *g;

	ck_assert_int_eq(tide_gather(g_loop, NULL, 0, 0, &g), 0);
	ck_assert_int_eq(tide_future_done(g), 1);
	ck_assert_int_eq(tide_await(g), 0);
	tide_future_unref(g);
	return 0;
}

TASK_TEST(test_gather_first_error)
{
	struct job a = { .delay = 0.01, .fail = -EIO }, b = { .result = 5 };
	struct tide_future *t[2], *g;

	gate(&b);
	t[0] = spawn(&a);
	t[1] = spawn(&b);
	ck_assert_int_eq(tide_gather(g_loop, t, 2, 0, &g), 0);
	/* The first error fails the outer at once (b cannot finish before
	 * its gate opens); the others go on. */
	ck_assert_int_eq(tide_await(g), -EIO);
	ck_assert_int_eq(tide_future_done(t[1]), 0);
	open_gate(&b);
	ck_assert_int_eq(tide_await(t[1]), 5);
	ck_assert_int_eq(b.cancelled, 0);
	drop_gate(&b);
	tide_future_unref(g);
	reap(t[0]);
	reap(t[1]);
	return 0;
}

TASK_TEST(test_gather_two_errors_first_wins)
{
	struct job a = { .fail = -EPIPE }, b = { .delay = 0.01, .fail = -EIO };
	struct tide_future *t[2], *g;

	/* a fails second, whatever the timing: once its gate opens. */
	gate(&a);
	t[0] = spawn(&a);
	t[1] = spawn(&b);
	ck_assert_int_eq(tide_gather(g_loop, t, 2, 0, &g), 0);
	ck_assert_int_eq(tide_await(g), -EIO);
	open_gate(&a);
	ck_assert_int_eq(tide_await(t[0]), -EPIPE);
	/* The later error changes nothing. */
	ck_assert_int_eq(tide_future_error(g), -EIO);
	drop_gate(&a);
	tide_future_unref(g);
	reap(t[0]);
	reap(t[1]);
	return 0;
}

TASK_TEST(test_gather_return_exceptions)
{
	struct job a = { .delay = 0.01, .fail = -EIO }, b = { .delay = 0.03, .result = 5 };
	struct tide_future *t[3], *g;
	struct later_set ls;

	t[0] = spawn(&a);
	t[1] = spawn(&b);
	t[2] = plain();
	ls = (struct later_set){ .f = t[2], .err = -ECANCELED };
	set_later(&ls, 0.02);
	ck_assert_int_eq(tide_gather(g_loop, t, 3, 1, &g), 0);
	/* Errors and cancellations are outcomes like results: outer waits for all. */
	ck_assert_int_eq(tide_await(g), 0);
	ck_assert_int_eq(tide_future_error(t[0]), -EIO);
	ck_assert_int_eq(tt_result(t[1]), 5);
	ck_assert_int_eq(tide_future_cancelled(t[2]), 1);
	tide_future_unref(g);
	reap(t[0]);
	reap(t[1]);
	tide_future_unref(t[2]);
	return 0;
}

TASK_TEST(test_gather_child_cancelled)
{
	struct job a = { .delay = FOREVER }, b = { .delay = 0.2, .result = 1 };
	struct tide_future *t[2], *g;

	t[0] = spawn(&a);
	t[1] = spawn(&b);
	ck_assert_int_eq(tide_gather(g_loop, t, 2, 0, &g), 0);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	ck_assert_int_eq(tide_task_cancel(t[0]), 1);
	/* Without return_exceptions a cancelled child is the outer's error. */
	ck_assert_int_eq(tide_await(g), -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(g), 1);
	ck_assert_int_eq(b.cancelled, 0);
	tide_future_unref(g);
	reap(t[0]);
	reap(t[1]);
	return 0;
}

TASK_TEST(test_gather_cancel_outer)
{
	struct job a = { .delay = FOREVER }, b = { .delay = FOREVER };
	struct tide_future *t[2], *g;
	int re;

	for (re = 0; re < 2; re++) {
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		a.delay = b.delay = FOREVER;
		t[0] = spawn(&a);
		t[1] = spawn(&b);
		ck_assert_int_eq(tide_gather(g_loop, t, 2, re, &g), 0);
		ck_assert_int_eq(tide_sleep(0.01), 0);
		/* Cancelling the gather cancels every child; it ends cancelled. */
		ck_assert_int_eq(tide_future_cancel(g), 1);
		ck_assert_int_eq(tide_await(g), -ECANCELED);
		ck_assert_int_eq(tide_future_cancelled(g), 1);
		ck_assert_int_eq(tide_await(t[0]), -ECANCELED);
		ck_assert_int_eq(tide_await(t[1]), -ECANCELED);
		ck_assert_int_eq(a.cancelled, 1);
		ck_assert_int_eq(b.cancelled, 1);
		tide_future_unref(g);
		reap(t[0]);
		reap(t[1]);
	}
	return 0;
}

/* A task awaiting a gather is cancelled: asyncio cancels the gather's children. */
struct gather_waiter {
	struct tide_future *g;
	int64_t r;
};

static int64_t gather_waiter_body(void *arg)
{
	struct gather_waiter *w = arg;

	w->r = tide_await(w->g);
	return 0;
}

TASK_TEST(test_gather_awaiting_task_cancelled)
{
	struct job a = { .delay = FOREVER }, b = { .delay = FOREVER };
	struct tide_future *t[2], *waiter;
	struct gather_waiter w = { 0 };

	t[0] = spawn(&a);
	t[1] = spawn(&b);
	ck_assert_int_eq(tide_gather(g_loop, t, 2, 0, &w.g), 0);
	ck_assert_int_eq(tide_task_spawn(g_loop, gather_waiter_body, &w, NULL, &waiter), 0);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	ck_assert_int_eq(tide_task_cancel(waiter), 1);
	ck_assert_int_eq(tide_await(waiter), 0);
	ck_assert_int_eq(w.r, -ECANCELED);
	ck_assert_int_eq(a.cancelled, 1);
	ck_assert_int_eq(b.cancelled, 1);
	tide_future_unref(w.g);
	reap(waiter);
	reap(t[0]);
	reap(t[1]);
	return 0;
}

TASK_TEST(test_gather_duplicate_and_done)
{
	struct tide_future *f = plain(), *d = plain(), *arr[3], *g;
	struct later_set ls = { .value = 9 };

	tide_future_set_result(d, 1, NULL);
	arr[0] = f;
	arr[1] = d;
	arr[2] = f;
	ls.f = f;
	set_later(&ls, 0.01);
	ck_assert_int_eq(tide_gather(g_loop, arr, 3, 0, &g), 0);
	ck_assert_int_eq(tide_await(g), 0);
	tide_future_unref(g);
	tide_future_unref(f);
	tide_future_unref(d);
	return 0;
}

TASK_TEST(test_gather_invalid)
{
	struct tide_loop *other = tt_loop_new();
	struct tide_future *f = plain(), *o, *g = NULL, *arr[2];

	ck_assert_int_eq(tide_future_new(other, &o), 0);
	arr[0] = f;
	arr[1] = NULL;
	ck_assert_int_eq(tide_gather(NULL, arr, 1, 0, &g), -EINVAL);
	ck_assert_int_eq(tide_gather(g_loop, arr, 1, 0, NULL), -EINVAL);
	ck_assert_int_eq(tide_gather(g_loop, NULL, 1, 0, &g), -EINVAL);
	ck_assert_int_eq(tide_gather(g_loop, arr, 2, 0, &g), -EINVAL);
	arr[1] = o;
	ck_assert_int_eq(tide_gather(g_loop, arr, 2, 0, &g), -EINVAL);
	ck_assert_ptr_null(g);
	tide_future_unref(o);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(other), 0);
	return 0;
}

/* gather needs no task: plain futures and done callbacks only. */
START_TEST(test_gather_without_task)
{
	struct tide_future *f[2], *g;
	struct later_set ls[2];
	int i;

	count_begin();
	g_loop = tt_loop_new();
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(tide_future_new(g_loop, &f[i]), 0);
		ls[i] = (struct later_set){ .f = f[i], .value = i };
		set_later(&ls[i], 0.01 * (2 - i));
	}
	ck_assert_int_eq(tide_gather(g_loop, f, 2, 0, &g), 0);
	tt_run_until_complete(g_loop, g, 0);
	ck_assert_int_eq(tt_result(f[0]), 0);
	ck_assert_int_eq(tt_result(f[1]), 1);
	tide_future_unref(g);
	/* A gather dropped before its children are done still frees cleanly. */
	tide_future_unref(f[0]);
	ck_assert_int_eq(tide_future_new(g_loop, &f[0]), 0);
	ck_assert_int_eq(tide_gather(g_loop, f, 1, 0, &g), 0);
	tide_future_unref(g);
	tide_future_set_error(f[0], -EIO);
	ck_assert_int_eq(tide_loop_run_once(g_loop, 0), 1);
	tide_future_unref(f[0]);
	tide_future_unref(f[1]);
	ck_assert_int_eq(tide_loop_free(g_loop), 0);
	count_end();
}
END_TEST

/* ---------------------------------------------------------------- wait -- */

TASK_TEST(test_wait_all_completed)
{
	struct job j[3] = { { .delay = 0.03, .result = 1 }, { .delay = 0.01, .result = 2 },
			    { .delay = 0.02, .fail = -EIO } };
	struct tide_future *t[3];
	double t0 = now();
	int i;

	for (i = 0; i < 3; i++)
		t[i] = spawn(&j[i]);
	ck_assert_int_eq(tide_wait(t, 3, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE), 3);
	ck_assert(now() - t0 >= 0.029);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(tide_future_done(t[i]), 1);
	ck_assert_int_eq(tide_future_error(t[2]), -EIO);
	for (i = 0; i < 3; i++)
		reap(t[i]);
	return 0;
}

TASK_TEST(test_wait_first_completed)
{
	struct job a = { .delay = 0.01, .result = 1 }, b = { .delay = FOREVER };
	struct tide_future *t[2];
	double t0 = now();

	t[0] = spawn(&a);
	t[1] = spawn(&b);
	ck_assert_int_eq(tide_wait(t, 2, TIDE_FIRST_COMPLETED, TIDE_TIMEOUT_NONE), 1);
	ck_assert(now() - t0 < TT_HANG_S);
	ck_assert_int_eq(tide_future_done(t[0]), 1);
	/* Nothing is cancelled by wait. */
	ck_assert_int_eq(tide_future_done(t[1]), 0);
	ck_assert_int_eq(b.cancelled, 0);
	/* Already met: returns at once. */
	ck_assert_int_eq(tide_wait(t, 2, TIDE_FIRST_COMPLETED, 0), 1);
	reap(t[0]);
	reap(t[1]);
	return 0;
}

TASK_TEST(test_wait_first_exception)
{
	struct job a = { .delay = 0.01, .result = 1 }, b = { .delay = 0.03, .fail = -EIO },
		   c = { .delay = FOREVER };
	struct tide_future *t[3];
	double t0 = now();

	t[0] = spawn(&a);
	t[1] = spawn(&b);
	t[2] = spawn(&c);
	ck_assert_int_eq(tide_wait(t, 3, TIDE_FIRST_EXCEPTION, TIDE_TIMEOUT_NONE), 2);
	ck_assert(now() - t0 < TT_HANG_S);
	ck_assert_int_eq(tide_future_error(t[1]), -EIO);
	ck_assert_int_eq(tide_future_done(t[2]), 0);
	reap(t[0]);
	reap(t[1]);
	reap(t[2]);
	return 0;
}

TASK_TEST(test_wait_first_exception_none)
{
	/* No error: FIRST_EXCEPTION is ALL_COMPLETED; a cancellation is no exception. */
	struct job a = { .delay = 0.01, .result = 1 }, b = { .delay = 0.03, .result = 2 };
	struct tide_future *t[3];
	struct later_set ls;

	t[0] = spawn(&a);
	t[1] = spawn(&b);
	t[2] = plain();
	ls = (struct later_set){ .f = t[2], .err = -ECANCELED };
	set_later(&ls, 0.005);
	ck_assert_int_eq(tide_wait(t, 3, TIDE_FIRST_EXCEPTION, TIDE_TIMEOUT_NONE), 3);
	ck_assert_int_eq(tt_result(t[1]), 2);
	reap(t[0]);
	reap(t[1]);
	tide_future_unref(t[2]);
	return 0;
}

TASK_TEST(test_wait_timeout)
{
	struct job a = { .delay = 0.01, .result = 1 }, b = { .delay = FOREVER };
	struct tide_future *t[2];
	double t0 = now();
	enum tide_return_when modes[3] = { TIDE_ALL_COMPLETED, TIDE_FIRST_EXCEPTION, TIDE_FIRST_COMPLETED };
	int m;

	t[1] = spawn(&b);
	/* Timeout with nothing done: 0, and nothing cancelled. */
	for (m = 0; m < 3; m++) {
		t0 = now();
		ck_assert_int_eq(tide_wait(&t[1], 1, modes[m], 0.02), 0);
		ck_assert(now() - t0 >= 0.019);
		ck_assert(now() - t0 < TT_HANG_S);
		ck_assert_int_eq(tide_future_done(t[1]), 0);
	}
	/* Timeout with one of two done (done before the wait: a child that
	 * finishes during it could lose the race against a descheduled loop). */
	t[0] = spawn(&a);
	ck_assert_int_eq(tide_await(t[0]), 1);
	ck_assert_int_eq(tide_wait(t, 2, TIDE_ALL_COMPLETED, 0.05), 1);
	ck_assert_int_eq(tide_future_done(t[0]), 1);
	ck_assert_int_eq(b.cancelled, 0);
	/* A zero timeout just looks. */
	ck_assert_int_eq(tide_wait(t, 2, TIDE_ALL_COMPLETED, 0), 1);
	/* Met before the timeout: no wait for it. */
	t0 = now();
	tide_future_cancel(t[1]);
	ck_assert_int_eq(tide_wait(t, 2, TIDE_ALL_COMPLETED, FOREVER), 2);
	ck_assert(now() - t0 < TT_HANG_S);
	reap(t[0]);
	reap(t[1]);
	return 0;
}

struct wait_task {
	struct tide_future **futs;
	size_t n;
	int r;
};

static int64_t wait_task_body(void *arg)
{
	struct wait_task *w = arg;

	w->r = tide_wait(w->futs, w->n, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE);
	return 0;
}

TASK_TEST(test_wait_cancelled)
{
	struct job b = { .delay = FOREVER };
	struct tide_future *t, *waiter;
	struct wait_task w = { &t, 1, 1 };

	t = spawn(&b);
	ck_assert_int_eq(tide_task_spawn(g_loop, wait_task_body, &w, NULL, &waiter), 0);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	ck_assert_int_eq(tide_task_cancel(waiter), 1);
	ck_assert_int_eq(tide_await(waiter), 0);
	ck_assert_int_eq(w.r, -ECANCELED);
	/* The waited-for futures are left alone. */
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(b.cancelled, 0);
	tide_future_unref(waiter);
	reap(t);
	return 0;
}

TASK_TEST(test_wait_invalid)
{
	struct tide_future *f = plain(), *arr[2] = { f, NULL };

	ck_assert_int_eq(tide_wait(arr, 0, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE), -EINVAL);
	ck_assert_int_eq(tide_wait(NULL, 1, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE), -EINVAL);
	ck_assert_int_eq(tide_wait(arr, 2, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE), -EINVAL);
	ck_assert_int_eq(tide_wait(arr, 1, (enum tide_return_when)7, TIDE_TIMEOUT_NONE), -EINVAL);
	ck_assert_int_eq(tide_wait(arr, 1, TIDE_ALL_COMPLETED, NAN), -EINVAL);
	tide_future_unref(f);
	return 0;
}

START_TEST(test_outside_task)
{
	struct tide_future *f;
	struct tide_timeout *t;
	struct tide_as_completed *it = NULL;
	struct tide_taskgroup *tg;

	count_begin();
	g_loop = tt_loop_new();
	ck_assert_int_eq(tide_future_new(g_loop, &f), 0);
	ck_assert_int_eq(tide_wait(&f, 1, TIDE_ALL_COMPLETED, TIDE_TIMEOUT_NONE), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_wait_for(f, 1), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_timeout_enter(1, &t), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_as_completed_new(&f, 1, TIDE_TIMEOUT_NONE, &it), 0);
	ck_assert_int_eq(tide_as_completed_next(it, &f), TIDE_ENOT_IN_TASK);
	tide_as_completed_free(it);
	ck_assert_int_eq(tide_taskgroup_new(g_loop, &tg), 0);
	ck_assert_int_eq(tide_taskgroup_wait(tg), TIDE_ENOT_IN_TASK);
	tide_taskgroup_free(tg);
	/* NULLs never crash. */
	ck_assert_int_eq(tide_timeout_exit(NULL), -EINVAL);
	ck_assert_int_eq(tide_timeout_reschedule(NULL, 1), -EINVAL);
	ck_assert_int_eq(tide_timeout_expired(NULL), -EINVAL);
	ck_assert_int_eq(tide_shield(NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_shield(f, NULL), -EINVAL);
	ck_assert_int_eq(tide_as_completed_new(NULL, 1, TIDE_TIMEOUT_NONE, &it), -EINVAL);
	ck_assert_int_eq(tide_taskgroup_new(NULL, &tg), -EINVAL);
	ck_assert_int_eq(tide_taskgroup_spawn(NULL, NULL, NULL, NULL, NULL), -EINVAL);
	tide_as_completed_free(NULL);
	tide_taskgroup_free(NULL);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(g_loop), 0);
	count_end();
}
END_TEST

/* ------------------------------------------------------------ wait_for -- */

TASK_TEST(test_wait_for_result)
{
	struct job a = { .delay = 0.01, .result = 7 }, b = { .delay = 0.01, .fail = -EIO };
	struct tide_future *t;

	t = spawn(&a);
	ck_assert_int_eq(tide_wait_for(t, 5), 7);
	/* A done future is returned even with a zero timeout. */
	ck_assert_int_eq(tide_wait_for(t, 0), 7);
	reap(t);
	t = spawn(&b);
	ck_assert_int_eq(tide_wait_for(t, 5), -EIO);
	reap(t);
	/* No timeout (< 0): a plain await. */
	memset(&a, 0, sizeof(a));
	a.delay = 0.01;
	a.result = 3;
	t = spawn(&a);
	ck_assert_int_eq(tide_wait_for(t, TIDE_TIMEOUT_NONE), 3);
	reap(t);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	return 0;
}

TASK_TEST(test_wait_for_timeout)
{
	struct job a = { .delay = FOREVER };
	struct tide_future *t, *f;
	double t0 = now();

	t = spawn(&a);
	ck_assert_int_eq(tide_wait_for(t, 0.02), -ETIMEDOUT);
	ck_assert(now() - t0 >= 0.019);
	ck_assert(now() - t0 < TT_HANG_S);
	/* The inner was cancelled and waited for. */
	ck_assert_int_eq(tide_future_done(t), 1);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	ck_assert_int_eq(a.cancelled, 1);
	/* Our own cancellation bookkeeping is back where it was. */
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	ck_assert_int_eq(tide_sleep(0), 0);
	reap(t);
	/* A plain future is cancelled too. */
	f = plain();
	ck_assert_int_eq(tide_wait_for(f, 0.01), -ETIMEDOUT);
	ck_assert_int_eq(tide_future_cancelled(f), 1);
	tide_future_unref(f);
	/* A zero timeout on a pending future. */
	f = plain();
	ck_assert_int_eq(tide_wait_for(f, 0), -ETIMEDOUT);
	ck_assert_int_eq(tide_future_cancelled(f), 1);
	tide_future_unref(f);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	return 0;
}

TASK_TEST(test_wait_for_inner_result_wins)
{
	/* The inner takes the cancellation, goes on and returns a result:
	 * that result is wait_for's, not -ETIMEDOUT (asyncio 3.12). */
	struct job a = { .delay = FOREVER, .swallow = 1, .after = 0.02, .result = 42 };
	struct tide_future *t;

	t = spawn(&a);
	ck_assert_int_eq(tide_wait_for(t, 0.01), 42);
	ck_assert_int_eq(a.cancelled, 1);
	ck_assert_int_eq(tide_future_done(t), 1);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	/* No stale cancellation is left for our next await. */
	ck_assert_int_eq(tide_sleep(0.01), 0);
	reap(t);
	return 0;
}

/* An executor job that a task can wait to see running (then it refuses cancels). */
struct slow_job {
	atomic_int started;
	unsigned ms;
	int64_t result;
	int gated;            /* run until release is set (bounded by TT_HANG_NS), not ms */
	atomic_int release;
};

static int64_t slow_job_body(void *arg)
{
	struct slow_job *j = arg;

	atomic_store(&j->started, 1);
	if (j->gated) {
		for (uint64_t end = tt_mono_ns() + TT_HANG_NS; !atomic_load(&j->release) && tt_mono_ns() < end;)
			usleep(1000);
	} else {
		usleep(j->ms * 1000);
	}
	return j->result;
}

/* Lets a gated slow job finish: a loop callback, or a done callback. */
static void release_slow_job(void *arg)
{
	struct slow_job *j = arg;

	atomic_store(&j->release, 1);
}

static void release_slow_job_done(struct tide_future *f, void *arg)
{
	(void)f;
	release_slow_job(arg);
}

/* Starts j on the default executor and returns once a worker runs it:
 * an inner future that refuses the cancel once running
 * (TIDE_JOB_CANCEL_QUEUED_ONLY; by default asyncio's cancel would take). */
static struct tide_future *start_slow_job(struct slow_job *j)
{
	struct tide_job_opts jo = { sizeof(jo), TIDE_JOB_CANCEL_QUEUED_ONLY };
	struct tide_future *f;

	ck_assert_int_eq(tide_run_in_executor_ex(g_loop, NULL, slow_job_body, j, &jo, &f), 0);
	while (!atomic_load(&j->started))
		ck_assert_int_eq(tide_sleep(0.001), 0);
	return f;
}

TASK_TEST(test_wait_for_uncancellable_inner)
{
	/* An executor job already running refuses the cancel (QUEUED_ONLY): wait_for waits
	 * for it, and its result wins. */
	struct slow_job j = { .ms = 50, .result = 77 };
	struct tide_future *f = start_slow_job(&j);

	ck_assert_int_eq(tide_wait_for(f, 0.01), 77);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	ck_assert_int_eq(tide_sleep(0), 0);
	tide_future_unref(f);
	return 0;
}

struct wait_for_task {
	struct tide_future *inner;
	double timeout;
	int64_t r;
};

static int64_t wait_for_task_body(void *arg)
{
	struct wait_for_task *w = arg;

	w->r = tide_wait_for(w->inner, w->timeout);
	return 0;
}

TASK_TEST(test_wait_for_outer_cancelled)
{
	struct job a = { .delay = FOREVER };
	struct wait_for_task w = { .timeout = 5 };
	struct tide_future *waiter;

	w.inner = spawn(&a);
	ck_assert_int_eq(tide_task_spawn(g_loop, wait_for_task_body, &w, NULL, &waiter), 0);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	ck_assert_int_eq(tide_task_cancel(waiter), 1);
	ck_assert_int_eq(tide_await(waiter), 0);
	/* Cancelled, not timed out; the inner went with it and is done. */
	ck_assert_int_eq(w.r, -ECANCELED);
	ck_assert_int_eq(tide_future_done(w.inner), 1);
	ck_assert_int_eq(a.cancelled, 1);
	tide_future_unref(waiter);
	reap(w.inner);
	return 0;
}

TASK_TEST(test_wait_for_already_cancelled)
{
	/* A cancellation owed before wait_for still cancels the inner. */
	struct tide_future *f = plain();

	ck_assert_int_eq(tide_task_cancel(tide_current_task()), 1);
	ck_assert_int_eq(tide_wait_for(f, 5), -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(f), 1);
	ck_assert_int_eq(tide_task_uncancel(tide_current_task()), 0);
	tide_future_unref(f);
	return 0;
}

TASK_TEST(test_wait_for_in_timeout_scope)
{
	/* An outer scope's deadline is not wait_for's: it propagates. */
	struct job a = { .delay = FOREVER };
	struct tide_timeout *to;
	struct tide_future *t;

	t = spawn(&a);
	ck_assert_int_eq(tide_timeout_enter(0.02, &to), 0);
	ck_assert_int_eq(tide_wait_for(t, 5), -ECANCELED);
	ck_assert_int_eq(tide_timeout_exit(to), -ETIMEDOUT);
	ck_assert_int_eq(a.cancelled, 1);
	reap(t);
	/* And wait_for's own deadline inside a longer scope. */
	memset(&a, 0, sizeof(a));
	a.delay = FOREVER;
	t = spawn(&a);
	ck_assert_int_eq(tide_timeout_enter(5, &to), 0);
	ck_assert_int_eq(tide_wait_for(t, 0.01), -ETIMEDOUT);
	ck_assert_int_eq(tide_timeout_exit(to), 0);
	reap(t);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	return 0;
}

TASK_TEST(test_wait_for_invalid)
{
	struct tide_future *f = plain();

	ck_assert_int_eq(tide_wait_for(NULL, 1), -EINVAL);
	ck_assert_int_eq(tide_wait_for(f, NAN), -EINVAL);
	ck_assert_int_eq(tide_wait_for(tide_current_task(), 1), -EDEADLK);
	tide_future_unref(f);
	return 0;
}

/* -------------------------------------------------------------- shield -- */

TASK_TEST(test_shield_result)
{
	struct job a = { .delay = 0.01, .result = 11 }, b = { .delay = 0.01, .fail = -EIO };
	struct tide_future *t, *s;

	t = spawn(&a);
	ck_assert_int_eq(tide_shield(t, &s), 0);
	ck_assert_ptr_ne(s, t);
	ck_assert_int_eq(tide_await(s), 11);
	tide_future_unref(s);
	/* Of a done future: mirrors at once. */
	ck_assert_int_eq(tide_shield(t, &s), 0);
	ck_assert_int_eq(tide_future_done(s), 1);
	ck_assert_int_eq(tt_result(s), 11);
	tide_future_unref(s);
	reap(t);
	t = spawn(&b);
	ck_assert_int_eq(tide_shield(t, &s), 0);
	ck_assert_int_eq(tide_await(s), -EIO);
	tide_future_unref(s);
	reap(t);
	return 0;
}

TASK_TEST(test_shield_cancel_outer)
{
	struct job a = { .delay = 0.03, .result = 5 };
	struct tide_future *t, *s;

	t = spawn(&a);
	ck_assert_int_eq(tide_shield(t, &s), 0);
	ck_assert_int_eq(tide_future_cancel(s), 1);
	ck_assert_int_eq(tide_future_cancelled(s), 1);
	/* The inner runs on to its result. */
	ck_assert_int_eq(tide_await(t), 5);
	ck_assert_int_eq(a.cancelled, 0);
	tide_future_unref(s);
	reap(t);
	/* The shield dropped early, the inner dropped too: still no leak. */
	memset(&a, 0, sizeof(a));
	a.delay = 0.01;
	t = spawn(&a);
	ck_assert_int_eq(tide_shield(t, &s), 0);
	tide_future_unref(s);
	tide_future_unref(t);
	/* It finishes on its own: wait for that, not for a fixed time. */
	for (double end = now() + TT_HANG_S; !a.finished && now() < end;)
		ck_assert_int_eq(tide_sleep(0.005), 0);
	ck_assert_int_eq(a.finished, 1);
	return 0;
}

struct shield_waiter {
	struct tide_future *inner;
	int64_t r;
};

static int64_t shield_waiter_body(void *arg)
{
	struct shield_waiter *w = arg;
	struct tide_future *s;

	ck_assert_int_eq(tide_shield(w->inner, &s), 0);
	w->r = tide_await(s);
	tide_future_unref(s);
	return 0;
}

TASK_TEST(test_shield_task_cancelled)
{
	/* asyncio's `await shield(x)`: the awaiting task is cancelled, x is not. */
	struct job a = { .result = 6 };
	struct shield_waiter w = { 0 };
	struct tide_future *waiter;

	gate(&a); /* still running when the waiter is cancelled, however slow the loop */
	w.inner = spawn(&a);
	ck_assert_int_eq(tide_task_spawn(g_loop, shield_waiter_body, &w, NULL, &waiter), 0);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	ck_assert_int_eq(tide_task_cancel(waiter), 1);
	ck_assert_int_eq(tide_await(waiter), 0);
	ck_assert_int_eq(w.r, -ECANCELED);
	ck_assert_int_eq(tide_future_done(w.inner), 0);
	open_gate(&a);
	ck_assert_int_eq(tide_await(w.inner), 6);
	ck_assert_int_eq(a.cancelled, 0);
	drop_gate(&a);
	tide_future_unref(waiter);
	reap(w.inner);
	return 0;
}

TASK_TEST(test_shield_inner_cancelled)
{
	struct tide_future *f = plain(), *s;

	ck_assert_int_eq(tide_shield(f, &s), 0);
	tide_future_cancel(f);
	ck_assert_int_eq(tide_await(s), -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(s), 1);
	tide_future_unref(s);
	tide_future_unref(f);
	return 0;
}

/* -------------------------------------------------------- as_completed -- */

TASK_TEST(test_as_completed_order)
{
	struct job j[3] = { { .delay = 0.06, .result = 1 }, { .delay = 0.02, .result = 2 },
			    { .delay = 0.04, .result = 3 } };
	struct tide_future *t[3], *next;
	struct tide_as_completed *it;
	int i, order[3] = { 1, 2, 0 };

	/*
	 * Spawned in the order they finish, each sleep longer than the one
	 * armed before it: the deadlines are ordered in one clock whatever
	 * the delay between the children's starts. The array is not.
	 */
	for (i = 0; i < 3; i++)
		t[order[i]] = spawn(&j[order[i]]);
	ck_assert_int_eq(tide_as_completed_new(t, 3, TIDE_TIMEOUT_NONE, &it), 0);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(tide_as_completed_next(it, &next), 0);
		ck_assert_ptr_eq(next, t[order[i]]);
		ck_assert_int_eq(tt_result(next), order[i] + 1);
	}
	ck_assert_int_eq(tide_as_completed_next(it, &next), -ENOENT);
	ck_assert_int_eq(tide_as_completed_next(it, &next), -ENOENT);
	tide_as_completed_free(it);
	for (i = 0; i < 3; i++)
		reap(t[i]);
	return 0;
}

TASK_TEST(test_as_completed_done_first)
{
	struct tide_future *f[3], *next;
	struct tide_as_completed *it;
	struct later_set ls;

	f[0] = plain();
	f[1] = plain();
	f[2] = plain();
	tide_future_set_result(f[2], 2, NULL);
	tide_future_set_error(f[1], -EIO);
	ls = (struct later_set){ .f = f[0], .value = 0 };
	set_later(&ls, 0.01);
	ck_assert_int_eq(tide_as_completed_new(f, 3, 5, &it), 0);
	/* Already done ones first, in the order given; errors are outcomes. */
	ck_assert_int_eq(tide_as_completed_next(it, &next), 0);
	ck_assert_ptr_eq(next, f[1]);
	ck_assert_int_eq(tide_future_error(next), -EIO);
	ck_assert_int_eq(tide_as_completed_next(it, &next), 0);
	ck_assert_ptr_eq(next, f[2]);
	ck_assert_int_eq(tide_as_completed_next(it, &next), 0);
	ck_assert_ptr_eq(next, f[0]);
	ck_assert_int_eq(tide_as_completed_next(it, &next), -ENOENT);
	tide_as_completed_free(it);
	/* Nothing to wait for. */
	ck_assert_int_eq(tide_as_completed_new(NULL, 0, 1, &it), 0);
	ck_assert_int_eq(tide_as_completed_next(it, &next), -ENOENT);
	tide_as_completed_free(it);
	for (int i = 0; i < 3; i++)
		tide_future_unref(f[i]);
	return 0;
}

TASK_TEST(test_as_completed_timeout)
{
	struct job a = { .delay = 0.01, .result = 1 }, b = { .delay = FOREVER };
	struct tide_future *t[2], *next;
	struct tide_as_completed *it;
	double t0;

	t[0] = spawn(&a);
	t[1] = spawn(&b);
	/* a is done before the 0.05 s starts: no race against a slow loop. */
	ck_assert_int_eq(tide_await(t[0]), 1);
	t0 = now();
	ck_assert_int_eq(tide_as_completed_new(t, 2, 0.05, &it), 0);
	ck_assert_int_eq(tide_as_completed_next(it, &next), 0);
	ck_assert_ptr_eq(next, t[0]);
	ck_assert_int_eq(tide_as_completed_next(it, &next), -ETIMEDOUT);
	ck_assert(now() - t0 >= 0.049);
	ck_assert(now() - t0 < TT_HANG_S);
	ck_assert_int_eq(tide_as_completed_next(it, &next), -ETIMEDOUT);
	/* Nothing is cancelled on timeout. */
	ck_assert_int_eq(tide_future_done(t[1]), 0);
	tide_as_completed_free(it);
	reap(t[0]);
	reap(t[1]);
	return 0;
}

struct ac_task {
	struct tide_as_completed *it;
	int r;
};

static int64_t ac_task_body(void *arg)
{
	struct ac_task *a = arg;
	struct tide_future *next;

	a->r = tide_as_completed_next(a->it, &next);
	return 0;
}

TASK_TEST(test_as_completed_cancel_and_free_early)
{
	struct job a = { .result = 1 }, b = { .result = 2 };
	struct tide_future *t[2], *waiter, *next;
	struct ac_task at = { 0 };

	/* Neither finishes while the waiter waits, however slow the loop. */
	gate(&a);
	gate(&b);
	t[0] = spawn(&a);
	t[1] = spawn(&b);
	ck_assert_int_eq(tide_as_completed_new(t, 2, TIDE_TIMEOUT_NONE, &at.it), 0);
	ck_assert_int_eq(tide_task_spawn(g_loop, ac_task_body, &at, NULL, &waiter), 0);
	ck_assert_int_eq(tide_sleep(0.005), 0);
	/* A second task on the same iterator is refused while one waits. */
	ck_assert_int_eq(tide_as_completed_next(at.it, &next), -EBUSY);
	ck_assert_int_eq(tide_task_cancel(waiter), 1);
	ck_assert_int_eq(tide_await(waiter), 0);
	ck_assert_int_eq(at.r, -ECANCELED);
	tide_future_unref(waiter);
	/* The iterator still works after a cancelled next. */
	open_gate(&a);
	open_gate(&b);
	ck_assert_int_eq(tide_as_completed_next(at.it, &next), 0);
	/* Freed while one is still to come (its callback may already be queued). */
	tide_as_completed_free(at.it);
	reap(t[0]);
	reap(t[1]);
	drop_gate(&a);
	drop_gate(&b);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	return 0;
}

/* ------------------------------------------------------------ timeouts -- */

TASK_TEST(test_timeout_expires)
{
	struct tide_future *me = tide_current_task();
	struct tide_timeout *t;
	double t0 = now();

	ck_assert_int_eq(tide_timeout_enter(0.02, &t), 0);
	ck_assert_int_eq(tide_timeout_expired(t), 0);
	ck_assert_int_eq(tide_sleep(FOREVER), -ECANCELED);
	ck_assert(now() - t0 >= 0.019);
	ck_assert(now() - t0 < TT_HANG_S);
	ck_assert_int_eq(tide_timeout_expired(t), 1);
	ck_assert_int_eq(tide_task_cancelling(me), 1);
	ck_assert_int_eq(tide_timeout_exit(t), -ETIMEDOUT);
	ck_assert_int_eq(tide_task_cancelling(me), 0);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	/* A zero delay expires at the next iteration. */
	ck_assert_int_eq(tide_timeout_enter(0, &t), 0);
	ck_assert_int_eq(tide_sleep(1), -ECANCELED);
	ck_assert_int_eq(tide_timeout_exit(t), -ETIMEDOUT);
	return 0;
}

TASK_TEST(test_timeout_not_expired)
{
	struct tide_future *me = tide_current_task();
	struct tide_timeout *t;

	/*
	 * An await that ends before the deadline: a yield, whose resumption
	 * is queued before the deadline can even be looked at (a 10 ms sleep
	 * would race the 50 ms deadline on a loop descheduled for 40 ms).
	 */
	ck_assert_int_eq(tide_timeout_enter(0.05, &t), 0);
	ck_assert_int_eq(tide_sleep(0), 0);
	ck_assert_int_eq(tide_timeout_exit(t), 0);
	/* The deadline is gone with the scope: nothing cancels us later. */
	ck_assert_int_eq(tide_sleep(0.1), 0);
	ck_assert_int_eq(tide_task_cancelling(me), 0);
	/* No deadline at all. */
	ck_assert_int_eq(tide_timeout_enter(TIDE_TIMEOUT_NONE, &t), 0);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	ck_assert_int_eq(tide_timeout_exit(t), 0);
	ck_assert_int_eq(tide_timeout_enter(INFINITY, &t), 0);
	ck_assert_int_eq(tide_timeout_exit(t), 0);
	ck_assert_int_eq(tide_timeout_enter(NAN, &t), -EINVAL);
	ck_assert_int_eq(tide_timeout_enter(1, NULL), -EINVAL);
	return 0;
}

TASK_TEST(test_timeout_reschedule)
{
	struct tide_timeout *t;
	double t0;

	/* Later: the first deadline passes harmlessly. */
	ck_assert_int_eq(tide_timeout_enter(0.02, &t), 0);
	ck_assert_int_eq(tide_timeout_reschedule(t, now() + FOREVER), 0);
	ck_assert_int_eq(tide_sleep(0.05), 0);
	ck_assert_int_eq(tide_timeout_exit(t), 0);
	/* Earlier. */
	t0 = now();
	ck_assert_int_eq(tide_timeout_enter(FOREVER, &t), 0);
	ck_assert_int_eq(tide_timeout_reschedule(t, now() + 0.02), 0);
	ck_assert_int_eq(tide_sleep(FOREVER), -ECANCELED);
	ck_assert(now() - t0 < TT_HANG_S);
	/* An expiring scope cannot move (asyncio's RuntimeError). */
	ck_assert_int_eq(tide_timeout_reschedule(t, now() + 10), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_timeout_exit(t), -ETIMEDOUT);
	/* Never. */
	ck_assert_int_eq(tide_timeout_enter(0.01, &t), 0);
	ck_assert_int_eq(tide_timeout_reschedule(t, TIDE_TIMEOUT_NONE), 0);
	ck_assert_int_eq(tide_sleep(0.03), 0);
	ck_assert_int_eq(tide_timeout_reschedule(t, NAN), -EINVAL);
	ck_assert_int_eq(tide_timeout_exit(t), 0);
	/* In the past: expires at the next iteration. */
	ck_assert_int_eq(tide_timeout_enter(TIDE_TIMEOUT_NONE, &t), 0);
	ck_assert_int_eq(tide_timeout_reschedule(t, now() - 1), 0);
	ck_assert_int_eq(tide_sleep(1), -ECANCELED);
	ck_assert_int_eq(tide_timeout_exit(t), -ETIMEDOUT);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	return 0;
}

TASK_TEST(test_timeout_nested_outer_first)
{
	struct tide_timeout *outer, *inner;

	ck_assert_int_eq(tide_timeout_enter(0.02, &outer), 0);
	ck_assert_int_eq(tide_timeout_enter(FOREVER, &inner), 0);
	ck_assert_int_eq(tide_sleep(FOREVER), -ECANCELED);
	/* Not the inner's deadline: it reports nothing and the cancellation goes on. */
	ck_assert_int_eq(tide_timeout_expired(inner), 0);
	ck_assert_int_eq(tide_timeout_exit(inner), 0);
	ck_assert_int_eq(tide_timeout_exit(outer), -ETIMEDOUT);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	return 0;
}

TASK_TEST(test_timeout_nested_inner_first)
{
	struct tide_timeout *outer, *inner;

	ck_assert_int_eq(tide_timeout_enter(FOREVER, &outer), 0);
	ck_assert_int_eq(tide_timeout_enter(0.02, &inner), 0);
	ck_assert_int_eq(tide_sleep(FOREVER), -ECANCELED);
	ck_assert_int_eq(tide_timeout_exit(inner), -ETIMEDOUT);
	/* The outer scope goes on undisturbed. */
	ck_assert_int_eq(tide_sleep(0.01), 0);
	ck_assert_int_eq(tide_timeout_exit(outer), 0);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	return 0;
}

TASK_TEST(test_timeout_nested_both)
{
	/* asyncio's test_nested_timeouts_concurrent: both expire together; the
	 * inner sees a cancellation that is not only its own and lets it go on. */
	struct tide_timeout *outer, *inner;

	ck_assert_int_eq(tide_timeout_enter(0.02, &outer), 0);
	ck_assert_int_eq(tide_timeout_enter(0.02, &inner), 0);
	tt_sleep_ms(30); /* both deadlines pass before the loop looks */
	ck_assert_int_eq(tide_sleep(FOREVER), -ECANCELED);
	ck_assert_int_eq(tide_timeout_expired(inner), 1);
	ck_assert_int_eq(tide_timeout_expired(outer), 1);
	ck_assert_int_eq(tide_timeout_exit(inner), -ECANCELED);
	ck_assert_int_eq(tide_timeout_exit(outer), -ETIMEDOUT);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	ck_assert_int_eq(tide_sleep(0), 0);
	return 0;
}

struct scope_task {
	int sleep_r;
	int exit_r;
	int cancelling;
};

static int64_t scope_task_body(void *arg)
{
	struct scope_task *s = arg;
	struct tide_timeout *t;

	ck_assert_int_eq(tide_timeout_enter(5, &t), 0);
	s->sleep_r = tide_sleep(FOREVER);
	s->exit_r = tide_timeout_exit(t);
	s->cancelling = tide_task_cancelling(tide_current_task());
	return s->sleep_r;
}

TASK_TEST(test_timeout_cancelled_from_outside)
{
	/* Somebody else's cancellation inside a scope is not a timeout. */
	struct scope_task s = { 0 };
	struct tide_future *t;

	ck_assert_int_eq(tide_task_spawn(g_loop, scope_task_body, &s, NULL, &t), 0);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_await(t), -ECANCELED);
	ck_assert_int_eq(s.sleep_r, -ECANCELED);
	ck_assert_int_eq(s.exit_r, 0);
	ck_assert_int_eq(s.cancelling, 1);
	tide_future_unref(t);
	return 0;
}

TASK_TEST(test_timeout_expired_result_wins)
{
	/* The deadline passes while an await cannot be cancelled (a running
	 * executor job): the await returns the data, the scope reports the
	 * timeout, and the owed cancellation dies with the scope. */
	struct slow_job j = { .gated = 1, .result = 5 };
	struct tide_timeout *t;
	struct tide_future *f = start_slow_job(&j);

	/*
	 * The job ends once a timer armed after the scope, with a longer
	 * delay, has run: after the deadline in the same clock, however long
	 * the job or the loop waited before.
	 */
	ck_assert_int_eq(tide_timeout_enter(0.01, &t), 0);
	ck_assert_int_eq(tide_call_later(g_loop, 0.02, release_slow_job, &j, NULL), 0);
	ck_assert_int_eq(tide_await(f), 5);
	ck_assert_int_eq(tide_timeout_expired(t), 1);
	ck_assert_int_eq(tide_timeout_exit(t), -ETIMEDOUT);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	ck_assert_int_eq(tide_sleep(0), 0);
	tide_future_unref(f);
	return 0;
}

static struct tide_timeout *g_foreign_scope;

static int64_t foreign_exit_body(void *arg)
{
	return tide_timeout_exit(g_foreign_scope);
}

TASK_TEST(test_timeout_exit_other_task)
{
	struct tide_future *t;

	ck_assert_int_eq(tide_timeout_enter(FOREVER, &g_foreign_scope), 0);
	ck_assert_int_eq(tide_task_spawn(g_loop, foreign_exit_body, NULL, NULL, &t), 0);
	ck_assert_int_eq(tide_await(t), -EINVAL);
	tide_future_unref(t);
	ck_assert_int_eq(tide_timeout_exit(g_foreign_scope), 0);
	return 0;
}

/* ----------------------------------------------------------- taskgroup -- */

TASK_TEST(test_taskgroup_all_ok)
{
	struct job j[3] = { { .delay = 0.03, .result = 1 }, { .delay = 0.01, .result = 2 },
			    { .delay = 0.02, .result = 3 } };
	struct tide_taskgroup *tg;
	struct tide_future *t[3];
	int i;

	ck_assert_int_eq(tide_taskgroup_new(g_loop, &tg), 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &j[i], NULL, &t[i]), 0);
	ck_assert_int_eq(tide_taskgroup_wait(tg), 0);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(tt_result(t[i]), i + 1);
		tide_future_unref(t[i]);
	}
	/* Finished: no more children. */
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &j[0], NULL, NULL), TIDE_EINVALID_STATE);
	tide_taskgroup_free(tg);
	/* An empty group. */
	ck_assert_int_eq(tide_taskgroup_new(g_loop, &tg), 0);
	ck_assert_int_eq(tide_taskgroup_wait(tg), 0);
	tide_taskgroup_free(tg);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	return 0;
}

TASK_TEST(test_taskgroup_child_fails)
{
	/* d would fail too, later (never while a, failing first, runs: a tie
	 * of two delays a few ms apart is no order on a loaded machine). */
	struct job a = { .delay = 0.01, .fail = -EIO }, b = { .delay = FOREVER }, c = { .delay = FOREVER },
		   d = { .delay = FOREVER, .fail = -EPIPE };
	struct tide_taskgroup *tg;
	struct tide_future *tb;
	double t0 = now();

	ck_assert_int_eq(tide_taskgroup_new(g_loop, &tg), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &a, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &b, NULL, &tb), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &c, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &d, NULL, NULL), 0);
	/* The first error; the siblings were cancelled and waited for. */
	ck_assert_int_eq(tide_taskgroup_wait(tg), -EIO);
	ck_assert(now() - t0 < TT_HANG_S);
	ck_assert_int_eq(b.cancelled, 1);
	ck_assert_int_eq(c.cancelled, 1);
	ck_assert_int_eq(d.cancelled, 1);
	ck_assert_int_eq(b.finished && c.finished && d.finished, 1);
	ck_assert_int_eq(tide_future_cancelled(tb), 1);
	/* The parent is not left cancelled. */
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	ck_assert_int_eq(tide_sleep(0), 0);
	tide_future_unref(tb);
	tide_taskgroup_free(tg);
	return 0;
}

TASK_TEST(test_taskgroup_child_fails_during_body)
{
	/* asyncio: the failing child also cancels the parent's body. */
	struct job a = { .delay = 0.01, .fail = -EIO }, b = { .delay = FOREVER };
	struct tide_taskgroup *tg;

	ck_assert_int_eq(tide_taskgroup_new(g_loop, &tg), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &a, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &b, NULL, NULL), 0);
	ck_assert_int_eq(tide_sleep(FOREVER), -ECANCELED);
	/* Shutting down: no new children. */
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &b, NULL, NULL), TIDE_EINVALID_STATE);
	ck_assert_int_eq(tide_taskgroup_wait(tg), -EIO);
	ck_assert_int_eq(b.cancelled, 1);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	ck_assert_int_eq(tide_sleep(0), 0);
	tide_taskgroup_free(tg);
	return 0;
}

TASK_TEST(test_taskgroup_child_fails_no_await)
{
	/* The parent's body is parked where a cancel is refused (a running
	 * executor job) while a child fails: the cancellation the group asked
	 * for stays owed, every child is done before wait, which therefore
	 * never awaits; that owed cancellation must not outlive the group. */
	struct job a = { .delay = 0.005, .fail = -EIO }, b = { .delay = FOREVER };
	struct slow_job j = { .gated = 1, .result = 1 };
	struct tide_taskgroup *tg;
	struct tide_future *ta, *tb, *f = start_slow_job(&j);

	ck_assert_int_eq(tide_taskgroup_new(g_loop, &tg), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &a, NULL, &ta), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &b, NULL, &tb), 0);
	/* The job ends once b is done (cancelled by the group when a fails),
	 * not after a fixed time that a slow loop could overrun. */
	ck_assert_int_eq(tide_future_add_done_callback(tb, release_slow_job_done, &j), 0);
	ck_assert_int_eq(tide_await(f), 1);
	ck_assert_int_eq(tide_future_done(ta), 1);
	ck_assert_int_eq(b.finished, 1);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 1);
	ck_assert_int_eq(tide_taskgroup_wait(tg), -EIO);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	ck_assert_int_eq(tide_sleep(0), 0);
	tide_future_unref(ta);
	tide_future_unref(tb);
	tide_future_unref(f);
	tide_taskgroup_free(tg);
	return 0;
}

struct tg_parent {
	struct job b, c;
	int body_r;   /* the body's sleep, or 1 when it did not sleep */
	int wait_r;
	int cancelling;
};

static int64_t tg_parent_waits(void *arg)
{
	struct tg_parent *p = arg;
	struct tide_taskgroup *tg;

	ck_assert_int_eq(tide_taskgroup_new(tide_future_loop(tide_current_task()), &tg), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &p->b, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &p->c, NULL, NULL), 0);
	p->body_r = 1;
	p->wait_r = tide_taskgroup_wait(tg);
	p->cancelling = tide_task_cancelling(tide_current_task());
	tide_taskgroup_free(tg);
	return p->wait_r;
}

static int64_t tg_parent_sleeps(void *arg)
{
	struct tg_parent *p = arg;
	struct tide_taskgroup *tg;

	ck_assert_int_eq(tide_taskgroup_new(tide_future_loop(tide_current_task()), &tg), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &p->b, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &p->c, NULL, NULL), 0);
	p->body_r = tide_sleep(FOREVER);
	p->wait_r = tide_taskgroup_wait(tg);
	p->cancelling = tide_task_cancelling(tide_current_task());
	tide_taskgroup_free(tg);
	return p->wait_r;
}

TASK_TEST(test_taskgroup_parent_cancelled)
{
	struct tg_parent p;
	struct tide_future *t;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		/* In wait, then in the body before wait: the children go, and
		 * wait reports the cancellation. */
		memset(&p, 0, sizeof(p));
		p.b.delay = p.c.delay = FOREVER;
		ck_assert_int_eq(tide_task_spawn(g_loop, pass ? tg_parent_sleeps : tg_parent_waits, &p,
						 NULL, &t), 0);
		ck_assert_int_eq(tide_sleep(0.01), 0);
		ck_assert_int_eq(tide_task_cancel(t), 1);
		ck_assert_int_eq(tide_await(t), -ECANCELED);
		ck_assert_int_eq(p.body_r, pass ? -ECANCELED : 1);
		ck_assert_int_eq(p.wait_r, -ECANCELED);
		ck_assert_int_eq(p.cancelling, 1);
		ck_assert_int_eq(p.b.cancelled && p.c.cancelled, 1);
		ck_assert_int_eq(p.b.finished && p.c.finished, 1);
		tide_future_unref(t);
	}
	return 0;
}

static struct tide_taskgroup *g_tg;
static struct job g_nested_job;

static int64_t spawner_body(void *arg)
{
	ck_assert_int_eq(tide_sleep(0.01), 0);
	/* A child may add a sibling while the parent waits. */
	ck_assert_int_eq(tide_taskgroup_spawn(g_tg, job_body, &g_nested_job, NULL, NULL), 0);
	return 0;
}

TASK_TEST(test_taskgroup_spawn_during_wait)
{
	memset(&g_nested_job, 0, sizeof(g_nested_job));
	g_nested_job.delay = 0.02;
	g_nested_job.result = 4;
	ck_assert_int_eq(tide_taskgroup_new(g_loop, &g_tg), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(g_tg, spawner_body, NULL, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_wait(g_tg), 0);
	ck_assert_int_eq(g_nested_job.finished, 1);
	tide_taskgroup_free(g_tg);
	return 0;
}

TASK_TEST(test_taskgroup_in_timeout_scope)
{
	/* asyncio: `async with timeout(): async with TaskGroup()` */
	struct job b = { .delay = FOREVER };
	struct tide_timeout *to;
	struct tide_taskgroup *tg;

	ck_assert_int_eq(tide_timeout_enter(0.02, &to), 0);
	ck_assert_int_eq(tide_taskgroup_new(g_loop, &tg), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &b, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_wait(tg), -ECANCELED);
	ck_assert_int_eq(b.cancelled, 1);
	tide_taskgroup_free(tg);
	ck_assert_int_eq(tide_timeout_exit(to), -ETIMEDOUT);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	return 0;
}

TASK_TEST(test_taskgroup_free_without_wait)
{
	struct job b = { .delay = FOREVER }, c = { .delay = 0.01, .fail = -EIO };
	struct tide_taskgroup *tg;
	struct tide_future *tb;

	ck_assert_int_eq(tide_taskgroup_new(g_loop, &tg), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &b, NULL, &tb), 0);
	tide_taskgroup_free(tg);
	/* The children were cancelled; they finish on their own. */
	ck_assert_int_eq(tide_await(tb), -ECANCELED);
	tide_future_unref(tb);
	/* wait after wait reports the same outcome. */
	ck_assert_int_eq(tide_taskgroup_new(g_loop, &tg), 0);
	ck_assert_int_eq(tide_taskgroup_spawn(tg, job_body, &c, NULL, NULL), 0);
	ck_assert_int_eq(tide_taskgroup_wait(tg), -EIO);
	ck_assert_int_eq(tide_taskgroup_wait(tg), -EIO);
	tide_taskgroup_free(tg);
	ck_assert_int_eq(tide_task_cancelling(tide_current_task()), 0);
	return 0;
}

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "combinators", 60);
	tt_add(&ts, test_gather_results);
	tt_add(&ts, test_gather_empty);
	tt_add(&ts, test_gather_first_error);
	tt_add(&ts, test_gather_two_errors_first_wins);
	tt_add(&ts, test_gather_return_exceptions);
	tt_add(&ts, test_gather_child_cancelled);
	tt_add(&ts, test_gather_cancel_outer);
	tt_add(&ts, test_gather_awaiting_task_cancelled);
	tt_add(&ts, test_gather_duplicate_and_done);
	tt_add(&ts, test_gather_invalid);
	tt_add(&ts, test_gather_without_task);
	tt_add(&ts, test_wait_all_completed);
	tt_add(&ts, test_wait_first_completed);
	tt_add(&ts, test_wait_first_exception);
	tt_add(&ts, test_wait_first_exception_none);
	tt_add(&ts, test_wait_timeout);
	tt_add(&ts, test_wait_cancelled);
	tt_add(&ts, test_wait_invalid);
	tt_add(&ts, test_outside_task);
	tt_add(&ts, test_wait_for_result);
	tt_add(&ts, test_wait_for_timeout);
	tt_add(&ts, test_wait_for_inner_result_wins);
	tt_add(&ts, test_wait_for_uncancellable_inner);
	tt_add(&ts, test_wait_for_outer_cancelled);
	tt_add(&ts, test_wait_for_already_cancelled);
	tt_add(&ts, test_wait_for_in_timeout_scope);
	tt_add(&ts, test_wait_for_invalid);
	tt_add(&ts, test_shield_result);
	tt_add(&ts, test_shield_cancel_outer);
	tt_add(&ts, test_shield_task_cancelled);
	tt_add(&ts, test_shield_inner_cancelled);
	tt_add(&ts, test_as_completed_order);
	tt_add(&ts, test_as_completed_done_first);
	tt_add(&ts, test_as_completed_timeout);
	tt_add(&ts, test_as_completed_cancel_and_free_early);
	tt_add(&ts, test_timeout_expires);
	tt_add(&ts, test_timeout_not_expired);
	tt_add(&ts, test_timeout_reschedule);
	tt_add(&ts, test_timeout_nested_outer_first);
	tt_add(&ts, test_timeout_nested_inner_first);
	tt_add(&ts, test_timeout_nested_both);
	tt_add(&ts, test_timeout_cancelled_from_outside);
	tt_add(&ts, test_timeout_expired_result_wins);
	tt_add(&ts, test_timeout_exit_other_task);
	tt_add(&ts, test_taskgroup_all_ok);
	tt_add(&ts, test_taskgroup_child_fails);
	tt_add(&ts, test_taskgroup_child_fails_during_body);
	tt_add(&ts, test_taskgroup_child_fails_no_await);
	tt_add(&ts, test_taskgroup_parent_cancelled);
	tt_add(&ts, test_taskgroup_spawn_during_wait);
	tt_add(&ts, test_taskgroup_in_timeout_scope);
	tt_add(&ts, test_taskgroup_free_without_wait);
	return tt_run(&ts);
}
