/* SPDX-License-Identifier: MIT */
/*
 * conformance/locks.c: CPython 3.11's Lib/test/test_asyncio/test_locks.py
 * ported to tide's Lock, Event, Condition, Semaphore (BoundedSemaphore) and
 * Barrier, each case named test_locks__<python test> (with __<class> after
 * it where several classes have a test of that name), run on every backend
 * configuration. test/conformance/README.md maps each Python test to its
 * case; the three Barrier cases of test/conformance/asyncio.c are not
 * repeated here.
 *
 * Each case's body is the Python test's coroutine: it runs as the main task
 * of a fresh loop (tt_run_main), spawns the Python test's tasks, and
 * `await asyncio.sleep(0)` is tide_sleep(0). asyncio's `async with x` is an
 * acquire and a release (Barrier's: a wait), Python's `nonlocal` lists are
 * the globals below, and a raised exception is the error code tide returns
 * instead (RuntimeError -EPERM, ValueError -EOVERFLOW or -EINVAL,
 * CancelledError -ECANCELED, BrokenBarrierError TIDE_EBROKEN_BARRIER).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "../helpers.h"

/* ------------------------------------------------------------ helpers -- */

static struct tide_loop *g_loop;

/* A case whose body runs as the main task of a fresh loop of the config. */
#define MAIN_CASE(name)                                                   \
	static int64_t name##_body(void *arg);                            \
	START_TEST(name)                                                  \
	{                                                                 \
		tt_run_main(&g_loop, name##_body, NULL);                  \
	}                                                                 \
	END_TEST                                                          \
	static int64_t name##_body(void *arg __attribute__((unused)))

#define YIELD() ck_assert_int_eq(tide_sleep(0), 0)

static void cancel_cb(void *arg)
{
	tide_task_cancel(arg);
}

/* Python's `result` list. */
static int g_res[64];
static int g_nres;

static void res_reset(void)
{
	g_nres = 0;
}

static void res_add(int v)
{
	ck_assert_int_lt(g_nres, 64);
	g_res[g_nres++] = v;
}

/* Asserts result == [the n values given]. */
static void res_expect(int n, ...)
{
	va_list ap;

	ck_assert_int_eq(g_nres, n);
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(g_res[i], va_arg(ap, int));
	va_end(ap);
}

static int res_count(int v)
{
	int n = 0;

	for (int i = 0; i < g_nres; i++)
		n += g_res[i] == v;
	return n;
}

/* One tagged task of a Python test (c1, c2, c3...): obj is the primitive. */
struct tagged {
	void *obj;
	int tag;
};

/* --------------------------------------------------------------- Lock -- */

static int64_t lock_acquire_task(void *arg)
{
	return tide_lock_acquire(arg);
}

/* c1..c3 of LockTests.test_acquire: `if await lock.acquire(): result.append(tag)`. */
static int64_t lock_tagged(void *arg)
{
	struct tagged *c = arg;

	if (tide_lock_acquire(c->obj) == 0)
		res_add(c->tag);
	return 1;
}

/* LockTests.test_acquire: waiters get the lock in the order they came,
 * one per release. */
MAIN_CASE(test_locks__test_acquire__LockTests)
{
	struct tide_lock *lock;
	struct tide_future *t1, *t2, *t3;
	static struct tagged c[3];

	res_reset();
	ck_assert_int_eq(tide_lock_new(g_loop, &lock), 0);
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	for (int i = 0; i < 3; i++)
		c[i] = (struct tagged){ .obj = lock, .tag = i + 1 };
	t1 = tt_spawn(g_loop, lock_tagged, &c[0]);
	t2 = tt_spawn(g_loop, lock_tagged, &c[1]);
	YIELD();
	res_expect(0);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	res_expect(1, 1);
	YIELD();
	res_expect(1, 1);
	t3 = tt_spawn(g_loop, lock_tagged, &c[2]);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	res_expect(2, 1, 2);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	res_expect(3, 1, 2, 3);
	ck_assert_int_eq(tt_result(t1), 1);
	ck_assert_int_eq(tt_result(t2), 1);
	ck_assert_int_eq(tt_result(t3), 1);
	tide_future_unref(t1);
	tide_future_unref(t2);
	tide_future_unref(t3);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	tide_lock_free(lock);
	return 0;
}

/* LockTests.test_acquire_cancel: an acquire cancelled while it waits
 * raises CancelledError and leaves no waiter behind (the next release
 * unlocks the lock instead of handing it to a dead waiter). */
MAIN_CASE(test_locks__test_acquire_cancel__LockTests)
{
	struct tide_lock *lock;
	struct tide_future *task;

	ck_assert_int_eq(tide_lock_new(g_loop, &lock), 0);
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	task = tt_spawn(g_loop, lock_acquire_task, lock);
	ck_assert_int_eq(tide_call_soon(g_loop, cancel_cb, task, NULL), 0);
	ck_assert_int_eq(tide_await(task), -ECANCELED);
	ck_assert(tide_future_cancelled(task));
	tide_future_unref(task);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	ck_assert_int_eq(tide_lock_locked(lock), 0);
	tide_lock_free(lock);
	return 0;
}

/* lockit() of test_cancel_race: acquire, await the blocker, release. */
struct lockit_arg {
	struct tide_lock *lock;
	struct tide_future *blocker;
};

static int64_t lockit_blocker(void *arg)
{
	struct lockit_arg *a = arg;
	int64_t r = 0;
	int err = tide_lock_acquire(a->lock);

	if (err)
		return err;
	if (a->blocker)
		r = tide_await(a->blocker);
	ck_assert_int_eq(tide_lock_release(a->lock), 0);
	return r < 0 ? r : 0;
}

/*
 * LockTests.test_cancel_race: A holds the lock, B and C wait; B is
 * cancelled in the same iteration as A releases: the lock goes to C, never
 * to the cancelled B, and C gets it. asyncio's release() unlocks and wakes
 * C, so locked() reads False until C runs; tide hands the lock straight to
 * C, so it reads 1 meanwhile (differs on purpose: see tide_lock_locked).
 */
MAIN_CASE(test_locks__test_cancel_race)
{
	struct tide_lock *lock;
	struct tide_future *fa, *ta, *tb, *tc;
	static struct lockit_arg a, b, c;

	ck_assert_int_eq(tide_lock_new(g_loop, &lock), 0);
	ck_assert_int_eq(tide_future_new(g_loop, &fa), 0);
	a = (struct lockit_arg){ .lock = lock, .blocker = fa };
	b = (struct lockit_arg){ .lock = lock, .blocker = NULL };
	c = b;
	ta = tt_spawn(g_loop, lockit_blocker, &a);
	YIELD();
	ck_assert(tide_lock_locked(lock));
	tb = tt_spawn(g_loop, lockit_blocker, &b);
	YIELD();
	tc = tt_spawn(g_loop, lockit_blocker, &c);
	YIELD();
	/* Create the race and check. */
	ck_assert_int_eq(tide_future_set_result(fa, 0, NULL), 0);
	ck_assert_int_eq(tide_task_cancel(tb), 1);
	YIELD();
	ck_assert(tide_future_done(ta));
	ck_assert(tide_future_cancelled(tb));
	ck_assert(!tide_future_done(tc));
	ck_assert_int_eq(tide_lock_locked(lock), 1); /* handed to C (asyncio: False) */
	ck_assert_int_eq(tt_join(tc), 0);
	ck_assert_int_eq(tide_lock_locked(lock), 0);
	ck_assert_int_eq(tt_join(ta), 0);
	ck_assert_int_eq(tt_join(tb), -ECANCELED);
	tide_future_unref(fa);
	tide_lock_free(lock);
	return 0;
}

static int g_lock_count, g_call_count;

static int64_t lockit_count(void *arg)
{
	int err;

	g_call_count++;
	if ((err = tide_lock_acquire(arg)))
		return err;
	g_lock_count++;
	return 0;
}

static struct tide_future *g_t1;
static struct tide_lock *g_lock;

static void cancel_then_release(void *arg)
{
	(void)arg;
	tide_task_cancel(g_t1);
	ck_assert_int_eq(tide_lock_release(g_lock), 0);
}

/* LockTests.test_cancel_release_race (bpo-32734): with three waiters, the
 * first cancelled and the lock released in the same callback, exactly one
 * task takes the lock. */
MAIN_CASE(test_locks__test_cancel_release_race)
{
	struct tide_future *t2, *t3;

	g_lock_count = g_call_count = 0;
	ck_assert_int_eq(tide_lock_new(g_loop, &g_lock), 0);
	ck_assert_int_eq(tide_lock_acquire(g_lock), 0);
	g_t1 = tt_spawn(g_loop, lockit_count, g_lock);
	t2 = tt_spawn(g_loop, lockit_count, g_lock);
	t3 = tt_spawn(g_loop, lockit_count, g_lock);
	YIELD();
	ck_assert_int_eq(tide_call_soon(g_loop, cancel_then_release, NULL, NULL), 0);
	ck_assert_int_eq(tide_await(g_t1), -ECANCELED);
	ck_assert_int_eq(g_lock_count, 1);
	ck_assert_int_eq(g_call_count, 3);
	ck_assert(tide_future_cancelled(g_t1));
	ck_assert(tide_future_done(t2));
	/* Clean up the task that is stuck on acquire. */
	ck_assert_int_eq(tide_task_cancel(t3), 1);
	YIELD();
	ck_assert(tide_future_cancelled(t3));
	tide_future_unref(g_t1);
	ck_assert_int_eq(tt_join(t2), 0);
	ck_assert_int_eq(tt_join(t3), -ECANCELED);
	tide_lock_free(g_lock);
	return 0;
}

/* LockTests.test_finished_waiter_cancelled: the first waiter is cancelled
 * just before release() would wake it: the second one gets the lock. */
MAIN_CASE(test_locks__test_finished_waiter_cancelled)
{
	struct tide_lock *lock;
	struct tide_future *tb, *tc;

	ck_assert_int_eq(tide_lock_new(g_loop, &lock), 0);
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert(tide_lock_locked(lock));
	tb = tt_spawn(g_loop, lock_acquire_task, lock);
	YIELD();
	tc = tt_spawn(g_loop, lock_acquire_task, lock);
	ck_assert_int_eq(tide_task_cancel(tb), 1);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	ck_assert(tide_lock_locked(lock));
	ck_assert(tide_future_cancelled(tb));
	ck_assert_int_eq(tt_join(tc), 0);
	ck_assert_int_eq(tt_join(tb), -ECANCELED);
	ck_assert(tide_lock_locked(lock));
	ck_assert_int_eq(tide_lock_release(lock), 0);
	tide_lock_free(lock);
	return 0;
}

/* LockTests.test_release_not_acquired: RuntimeError, here -EPERM. */
MAIN_CASE(test_locks__test_release_not_acquired__LockTests)
{
	struct tide_lock *lock;

	ck_assert_int_eq(tide_lock_new(g_loop, &lock), 0);
	ck_assert_int_eq(tide_lock_release(lock), -EPERM);
	ck_assert_int_eq(tide_lock_locked(lock), 0);
	tide_lock_free(lock);
	return 0;
}

/* LockTests.test_release_no_waiters: release with nobody waiting unlocks. */
MAIN_CASE(test_locks__test_release_no_waiters__LockTests)
{
	struct tide_lock *lock;

	ck_assert_int_eq(tide_lock_new(g_loop, &lock), 0);
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert(tide_lock_locked(lock));
	ck_assert_int_eq(tide_lock_release(lock), 0);
	ck_assert(!tide_lock_locked(lock));
	tide_lock_free(lock);
	return 0;
}

/* LockTests.test_context_manager: `async with lock` holds it inside only. */
MAIN_CASE(test_locks__test_context_manager__LockTests)
{
	struct tide_lock *lock;

	ck_assert_int_eq(tide_lock_new(g_loop, &lock), 0);
	ck_assert(!tide_lock_locked(lock));
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert(tide_lock_locked(lock));
	ck_assert_int_eq(tide_lock_release(lock), 0);
	ck_assert(!tide_lock_locked(lock));
	tide_lock_free(lock);
	return 0;
}

/* -------------------------------------------------------------- Event -- */

static int64_t event_wait_task(void *arg)
{
	return tide_event_wait(arg);
}

static int64_t event_tagged(void *arg)
{
	struct tagged *c = arg;

	if (tide_event_wait(c->obj) == 0)
		res_add(c->tag);
	return 1;
}

/* EventTests.test_wait: set() wakes every waiter; a task that starts after
 * set() passes at once, before the woken ones run. */
MAIN_CASE(test_locks__test_wait__EventTests)
{
	struct tide_event *ev;
	struct tide_future *t[3];
	static struct tagged c[3];

	res_reset();
	ck_assert_int_eq(tide_event_new(g_loop, &ev), 0);
	ck_assert(!tide_event_is_set(ev));
	for (int i = 0; i < 3; i++)
		c[i] = (struct tagged){ .obj = ev, .tag = i + 1 };
	t[0] = tt_spawn(g_loop, event_tagged, &c[0]);
	t[1] = tt_spawn(g_loop, event_tagged, &c[1]);
	YIELD();
	res_expect(0);
	t[2] = tt_spawn(g_loop, event_tagged, &c[2]);
	tide_event_set(ev);
	YIELD();
	res_expect(3, 3, 1, 2);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(tt_result(t[i]), 1);
		tide_future_unref(t[i]);
	}
	tide_event_free(ev);
	return 0;
}

/* EventTests.test_wait_on_set: wait() on a set event returns at once. */
MAIN_CASE(test_locks__test_wait_on_set)
{
	struct tide_event *ev;

	ck_assert_int_eq(tide_event_new(g_loop, &ev), 0);
	tide_event_set(ev);
	ck_assert_int_eq(tide_event_wait(ev), 0);
	tide_event_free(ev);
	return 0;
}

/* EventTests.test_wait_cancel: a cancelled wait raises CancelledError and
 * leaves the event as it was. */
MAIN_CASE(test_locks__test_wait_cancel__EventTests)
{
	struct tide_event *ev;
	struct tide_future *wait;

	ck_assert_int_eq(tide_event_new(g_loop, &ev), 0);
	wait = tt_spawn(g_loop, event_wait_task, ev);
	ck_assert_int_eq(tide_call_soon(g_loop, cancel_cb, wait, NULL), 0);
	ck_assert_int_eq(tide_await(wait), -ECANCELED);
	ck_assert(tide_future_cancelled(wait));
	tide_future_unref(wait);
	ck_assert(!tide_event_is_set(ev));
	tide_event_set(ev);
	ck_assert_int_eq(tide_event_wait(ev), 0);
	tide_event_free(ev);
	return 0;
}

/* EventTests.test_clear */
MAIN_CASE(test_locks__test_clear)
{
	struct tide_event *ev;

	ck_assert_int_eq(tide_event_new(g_loop, &ev), 0);
	ck_assert(!tide_event_is_set(ev));
	tide_event_set(ev);
	ck_assert(tide_event_is_set(ev));
	tide_event_clear(ev);
	ck_assert(!tide_event_is_set(ev));
	tide_event_free(ev);
	return 0;
}

/* EventTests.test_clear_with_waiters: a waiter woken by set() returns True
 * even though clear() came before it ran; set() twice wakes it once. */
MAIN_CASE(test_locks__test_clear_with_waiters)
{
	struct tide_event *ev;
	struct tide_future *t;
	static struct tagged c;

	res_reset();
	ck_assert_int_eq(tide_event_new(g_loop, &ev), 0);
	c = (struct tagged){ .obj = ev, .tag = 1 };
	t = tt_spawn(g_loop, event_tagged, &c);
	YIELD();
	res_expect(0);
	tide_event_set(ev);
	tide_event_clear(ev);
	ck_assert(!tide_event_is_set(ev));
	tide_event_set(ev);
	tide_event_set(ev);
	YIELD();
	res_expect(1, 1);
	ck_assert_int_eq(tt_result(t), 1);
	tide_future_unref(t);
	tide_event_free(ev);
	return 0;
}

/* ---------------------------------------------------------- Condition -- */

static struct tide_condition *g_cond;

static int64_t cond_wait_task(void *arg)
{
	return tide_condition_wait(arg);
}

/* c1..c3 of ConditionTests.test_wait: acquire, `if await cond.wait():
 * result.append(tag)`, keep the lock. */
static int64_t cond_tagged_keep(void *arg)
{
	struct tagged *c = arg;

	ck_assert_int_eq(tide_lock_acquire(tide_condition_lock(c->obj)), 0);
	if (tide_condition_wait(c->obj) == 0)
		res_add(c->tag);
	return 1;
}

/* c1..c3 of test_notify and test_notify_all: the same, then release. */
static int64_t cond_tagged_release(void *arg)
{
	struct tagged *c = arg;

	ck_assert_int_eq(tide_lock_acquire(tide_condition_lock(c->obj)), 0);
	if (tide_condition_wait(c->obj) == 0) {
		res_add(c->tag);
		ck_assert_int_eq(tide_lock_release(tide_condition_lock(c->obj)), 0);
	}
	return 1;
}

static int cond_locked(struct tide_condition *c)
{
	return tide_lock_locked(tide_condition_lock(c));
}

/* ConditionTests.test_wait: notify(n) wakes n waiters in order, each
 * returning from wait() once it has the lock again. */
MAIN_CASE(test_locks__test_wait__ConditionTests)
{
	struct tide_condition *cond;
	struct tide_lock *lock;
	struct tide_future *t[3];
	static struct tagged c[3];

	res_reset();
	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	lock = tide_condition_lock(cond);
	for (int i = 0; i < 3; i++) {
		c[i] = (struct tagged){ .obj = cond, .tag = i + 1 };
		t[i] = tt_spawn(g_loop, cond_tagged_keep, &c[i]);
	}
	YIELD();
	res_expect(0);
	ck_assert(!cond_locked(cond));

	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert_int_eq(tide_condition_notify(cond, 1), 1);
	YIELD();
	res_expect(0);
	ck_assert(cond_locked(cond));

	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	res_expect(1, 1);
	ck_assert(cond_locked(cond));

	ck_assert_int_eq(tide_condition_notify(cond, 2), 2);
	YIELD();
	res_expect(1, 1);
	ck_assert(cond_locked(cond));

	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	res_expect(2, 1, 2);
	ck_assert(cond_locked(cond));

	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	res_expect(3, 1, 2, 3);
	ck_assert(cond_locked(cond));

	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(tt_result(t[i]), 1);
		tide_future_unref(t[i]);
	}
	ck_assert_int_eq(tide_lock_release(lock), 0);
	tide_condition_free(cond);
	return 0;
}

/* ConditionTests.test_wait_cancel: a cancelled wait raises CancelledError,
 * leaves no waiter, and has the lock again. */
MAIN_CASE(test_locks__test_wait_cancel__ConditionTests)
{
	struct tide_condition *cond;
	struct tide_future *wait;

	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	ck_assert_int_eq(tide_lock_acquire(tide_condition_lock(cond)), 0);
	wait = tt_spawn(g_loop, cond_wait_task, cond);
	ck_assert_int_eq(tide_call_soon(g_loop, cancel_cb, wait, NULL), 0);
	ck_assert_int_eq(tide_await(wait), -ECANCELED);
	ck_assert(tide_future_cancelled(wait));
	tide_future_unref(wait);
	ck_assert(cond_locked(cond));
	/* No waiter left: a notify finds nobody. */
	ck_assert_int_eq(tide_condition_notify(cond, 1), 0);
	ck_assert_int_eq(tide_lock_release(tide_condition_lock(cond)), 0);
	tide_condition_free(cond);
	return 0;
}

static void release_cond_cb(void *arg)
{
	ck_assert_int_eq(tide_lock_release(tide_condition_lock(arg)), 0);
}

/* ConditionTests.test_wait_cancel_contested: notified, then cancelled
 * while the lock is contested: whatever wait() returns, it returns with
 * the lock held. */
MAIN_CASE(test_locks__test_wait_cancel_contested)
{
	struct tide_condition *cond;
	struct tide_future *wait_task;
	int64_t r;

	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	ck_assert_int_eq(tide_lock_acquire(tide_condition_lock(cond)), 0);
	ck_assert(cond_locked(cond));
	wait_task = tt_spawn(g_loop, cond_wait_task, cond);
	YIELD();
	ck_assert(!cond_locked(cond));
	/* Notify, but contest the lock before cancelling. */
	ck_assert_int_eq(tide_lock_acquire(tide_condition_lock(cond)), 0);
	ck_assert(cond_locked(cond));
	ck_assert_int_eq(tide_condition_notify(cond, 1), 1);
	ck_assert_int_eq(tide_call_soon(g_loop, cancel_cb, wait_task, NULL), 0);
	ck_assert_int_eq(tide_call_soon(g_loop, release_cond_cb, cond, NULL), 0);
	r = tt_join(wait_task);
	ck_assert_msg(r == 0 || r == -ECANCELED, "wait returned %lld", (long long)r);
	ck_assert(cond_locked(cond));
	ck_assert_int_eq(tide_lock_release(tide_condition_lock(cond)), 0);
	tide_condition_free(cond);
	return 0;
}

static int g_waited;

/* wait_on_cond() of test_wait_cancel_after_notify: `async with cond:
 * waited = True; await cond.wait()`. */
static int64_t wait_on_cond(void *arg)
{
	struct tide_condition *cond = arg;
	int err;

	if ((err = tide_lock_acquire(tide_condition_lock(cond))))
		return err;
	g_waited = 1;
	err = tide_condition_wait(cond);
	ck_assert_int_eq(tide_lock_release(tide_condition_lock(cond)), 0);
	return err;
}

/* ConditionTests.test_wait_cancel_after_notify (bpo-32841): cancelled
 * after the notify, while it waits for the lock: it ends cancelled once
 * it has the lock back. */
MAIN_CASE(test_locks__test_wait_cancel_after_notify)
{
	struct tide_condition *cond;
	struct tide_future *waiter;

	g_waited = 0;
	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	waiter = tt_spawn(g_loop, wait_on_cond, cond);
	YIELD(); /* start waiting */
	ck_assert_int_eq(tide_lock_acquire(tide_condition_lock(cond)), 0);
	ck_assert_int_eq(tide_condition_notify(cond, 1), 1);
	YIELD(); /* get to acquire() */
	ck_assert_int_eq(tide_task_cancel(waiter), 1);
	YIELD(); /* activate the cancellation */
	ck_assert_int_eq(tide_lock_release(tide_condition_lock(cond)), 0);
	YIELD(); /* the cancellation occurs */
	ck_assert(tide_future_cancelled(waiter));
	ck_assert(g_waited);
	ck_assert(!cond_locked(cond));
	tide_future_unref(waiter);
	tide_condition_free(cond);
	return 0;
}

/* ConditionTests.test_wait_unacquired: RuntimeError, here -EPERM. */
MAIN_CASE(test_locks__test_wait_unacquired)
{
	struct tide_condition *cond;

	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	ck_assert_int_eq(tide_condition_wait(cond), -EPERM);
	ck_assert(!cond_locked(cond));
	tide_condition_free(cond);
	return 0;
}

static int g_presult;

/* c1 of test_wait_for: `if await cond.wait_for(predicate)`. tide has no
 * wait_for(predicate): it is asyncio's own loop, `while not predicate():
 * await self.wait()`, written out. */
static int64_t cond_wait_for_task(void *arg)
{
	struct tide_condition *cond = arg;
	int err;

	ck_assert_int_eq(tide_lock_acquire(tide_condition_lock(cond)), 0);
	while (!g_presult)
		if ((err = tide_condition_wait(cond)))
			return err;
	res_add(1);
	ck_assert_int_eq(tide_lock_release(tide_condition_lock(cond)), 0);
	return 1;
}

/* ConditionTests.test_wait_for: a notify while the predicate is false
 * leaves the waiter waiting; one after it is true lets it through. */
MAIN_CASE(test_locks__test_wait_for)
{
	struct tide_condition *cond;
	struct tide_lock *lock;
	struct tide_future *t;

	res_reset();
	g_presult = 0;
	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	lock = tide_condition_lock(cond);
	t = tt_spawn(g_loop, cond_wait_for_task, cond);
	YIELD();
	res_expect(0);

	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert_int_eq(tide_condition_notify(cond, 1), 1);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	res_expect(0);

	g_presult = 1;
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert_int_eq(tide_condition_notify(cond, 1), 1);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	res_expect(1, 1);
	ck_assert_int_eq(tt_result(t), 1);
	tide_future_unref(t);
	tide_condition_free(cond);
	return 0;
}

/* ConditionTests.test_notify: notify(1) wakes the first waiter only;
 * notify(2048) wakes the rest. */
MAIN_CASE(test_locks__test_notify)
{
	struct tide_condition *cond;
	struct tide_lock *lock;
	struct tide_future *t[3];
	static struct tagged c[3];

	res_reset();
	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	lock = tide_condition_lock(cond);
	for (int i = 0; i < 3; i++) {
		c[i] = (struct tagged){ .obj = cond, .tag = i + 1 };
		t[i] = tt_spawn(g_loop, cond_tagged_release, &c[i]);
	}
	YIELD();
	res_expect(0);

	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert_int_eq(tide_condition_notify(cond, 1), 1);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	res_expect(1, 1);

	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert_int_eq(tide_condition_notify(cond, 1), 1);
	ck_assert_int_eq(tide_condition_notify(cond, 2048), 1);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	res_expect(3, 1, 2, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(tt_result(t[i]), 1);
		tide_future_unref(t[i]);
	}
	ck_assert(!cond_locked(cond));
	tide_condition_free(cond);
	return 0;
}

/* ConditionTests.test_notify_all: every waiter wakes, in order. */
MAIN_CASE(test_locks__test_notify_all)
{
	struct tide_condition *cond;
	struct tide_lock *lock;
	struct tide_future *t[2];
	static struct tagged c[2];

	res_reset();
	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	lock = tide_condition_lock(cond);
	for (int i = 0; i < 2; i++) {
		c[i] = (struct tagged){ .obj = cond, .tag = i + 1 };
		t[i] = tt_spawn(g_loop, cond_tagged_release, &c[i]);
	}
	YIELD();
	res_expect(0);
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert_int_eq(tide_condition_notify_all(cond), 2);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	YIELD();
	res_expect(2, 1, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(tt_result(t[i]), 1);
		tide_future_unref(t[i]);
	}
	tide_condition_free(cond);
	return 0;
}

/* ConditionTests.test_notify_unacquired: RuntimeError, here -EPERM. */
MAIN_CASE(test_locks__test_notify_unacquired)
{
	struct tide_condition *cond;

	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	ck_assert_int_eq(tide_condition_notify(cond, 1), -EPERM);
	tide_condition_free(cond);
	return 0;
}

/* ConditionTests.test_notify_all_unacquired: RuntimeError, here -EPERM. */
MAIN_CASE(test_locks__test_notify_all_unacquired)
{
	struct tide_condition *cond;

	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	ck_assert_int_eq(tide_condition_notify_all(cond), -EPERM);
	tide_condition_free(cond);
	return 0;
}

/* ConditionTests.test_context_manager: `async with cond` holds its lock. */
MAIN_CASE(test_locks__test_context_manager__ConditionTests)
{
	struct tide_condition *cond;

	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	ck_assert(!cond_locked(cond));
	ck_assert_int_eq(tide_lock_acquire(tide_condition_lock(cond)), 0);
	ck_assert(cond_locked(cond));
	ck_assert_int_eq(tide_lock_release(tide_condition_lock(cond)), 0);
	ck_assert(!cond_locked(cond));
	tide_condition_free(cond);
	return 0;
}

/* f() of test_explicit_lock: the condition and its lock are one lock. */
static void explicit_lock_f(struct tide_lock *lock, struct tide_condition *cond)
{
	ck_assert_ptr_eq(tide_condition_lock(cond), lock);
	ck_assert(!tide_lock_locked(lock));
	ck_assert(!cond_locked(cond));
	ck_assert_int_eq(tide_lock_acquire(tide_condition_lock(cond)), 0); /* async with cond */
	ck_assert(tide_lock_locked(lock));
	ck_assert(cond_locked(cond));
	ck_assert_int_eq(tide_lock_release(tide_condition_lock(cond)), 0);
	ck_assert(!tide_lock_locked(lock));
	ck_assert(!cond_locked(cond));
	ck_assert_int_eq(tide_lock_acquire(lock), 0); /* async with lock */
	ck_assert(tide_lock_locked(lock));
	ck_assert(cond_locked(cond));
	ck_assert_int_eq(tide_lock_release(lock), 0);
	ck_assert(!tide_lock_locked(lock));
	ck_assert(!cond_locked(cond));
}

/* ConditionTests.test_explicit_lock: a condition made over a lock uses
 * that lock; one made without makes its own. */
MAIN_CASE(test_locks__test_explicit_lock)
{
	struct tide_lock *lock;
	struct tide_condition *cond;

	/* f(): Condition() with its own lock. */
	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &cond), 0);
	ck_assert_ptr_nonnull(tide_condition_lock(cond));
	explicit_lock_f(tide_condition_lock(cond), cond);
	tide_condition_free(cond);
	/* f(Lock()), f(lock, Condition(lock)): over the caller's lock. */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(tide_lock_new(g_loop, &lock), 0);
		ck_assert_int_eq(tide_condition_new(g_loop, lock, &cond), 0);
		explicit_lock_f(lock, cond);
		tide_condition_free(cond);
		/* The lock is the caller's: it outlives the condition. */
		ck_assert_int_eq(tide_lock_acquire(lock), 0);
		ck_assert_int_eq(tide_lock_release(lock), 0);
		tide_lock_free(lock);
	}
	return 0;
}

/*
 * ConditionTests.test_ambiguous_loops: a lock of another loop is taken on
 * its fast path without a look at the loop, but a wait on it (a contended
 * acquire, a condition's wait) is refused: -EINVAL where asyncio raises
 * RuntimeError. A condition over another loop's lock is refused when made.
 */
MAIN_CASE(test_locks__test_ambiguous_loops)
{
	struct tide_loop *other = tt_loop_new();
	struct tide_lock *lock;
	struct tide_condition *cond;

	/* wrong_loop_in_lock */
	ck_assert_int_eq(tide_lock_new(other, &lock), 0);
	ck_assert_int_eq(tide_lock_acquire(lock), 0); /* the fast path */
	ck_assert_int_eq(tide_condition_new(g_loop, lock, &cond), -EINVAL);
	ck_assert_int_eq(tide_lock_acquire(lock), -EINVAL); /* would wait */
	ck_assert(tide_lock_locked(lock));
	ck_assert_int_eq(tide_lock_release(lock), 0);
	tide_lock_free(lock);

	/* wrong_loop_in_cond */
	ck_assert_int_eq(tide_condition_new(other, NULL, &cond), 0);
	ck_assert_int_eq(tide_lock_acquire(tide_condition_lock(cond)), 0);
	ck_assert_int_eq(tide_condition_wait(cond), -EINVAL);
	ck_assert(cond_locked(cond)); /* refused before letting the lock go */
	ck_assert_int_eq(tide_lock_release(tide_condition_lock(cond)), 0);
	tide_condition_free(cond);
	ck_assert_int_eq(tide_loop_free(other), 0);
	return 0;
}

/* ConditionTests.test_timeout_in_block: wait_for(cond.wait(), timeout)
 * inside `async with condition` times out (and the lock is held again
 * after it). */
MAIN_CASE(test_locks__test_timeout_in_block)
{
	struct tide_future *t;

	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &g_cond), 0);
	ck_assert_int_eq(tide_lock_acquire(tide_condition_lock(g_cond)), 0);
	t = tt_spawn(g_loop, cond_wait_task, g_cond);
	ck_assert_int_eq(tide_wait_for(t, 0.1), -ETIMEDOUT);
	ck_assert(tide_future_cancelled(t));
	tide_future_unref(t);
	ck_assert(cond_locked(g_cond));
	ck_assert_int_eq(tide_lock_release(tide_condition_lock(g_cond)), 0);
	tide_condition_free(g_cond);
	return 0;
}

/* ---------------------------------------------------------- Semaphore -- */

static int64_t sem_acquire_task(void *arg)
{
	return tide_semaphore_acquire(arg);
}

/* `await sem.acquire(); result.append(tag); return True` */
static int64_t sem_tagged(void *arg)
{
	struct tagged *c = arg;
	int err;

	if ((err = tide_semaphore_acquire(c->obj)))
		return err;
	res_add(c->tag);
	return 1;
}

/* SemaphoreTests.test_initial_value_zero */
MAIN_CASE(test_locks__test_initial_value_zero)
{
	struct tide_semaphore *sem;

	ck_assert_int_eq(tide_semaphore_new(g_loop, 0, 0, &sem), 0);
	ck_assert(tide_semaphore_locked(sem));
	tide_semaphore_free(sem);
	return 0;
}

/* SemaphoreTests.test_acquire: each release gives its unit to a waiter at
 * once (value stays 0), and a task that arrives later queues behind. */
MAIN_CASE(test_locks__test_acquire__SemaphoreTests)
{
	struct tide_semaphore *sem;
	struct tide_future *t[4];
	static struct tagged c[4];
	int done = 0;

	res_reset();
	ck_assert_int_eq(tide_semaphore_new(g_loop, 3, 0, &sem), 0);
	ck_assert_int_eq(tide_semaphore_acquire(sem), 0);
	ck_assert_int_eq(tide_semaphore_acquire(sem), 0);
	ck_assert(!tide_semaphore_locked(sem));
	for (int i = 0; i < 4; i++)
		c[i] = (struct tagged){ .obj = sem, .tag = i + 1 };
	for (int i = 0; i < 3; i++)
		t[i] = tt_spawn(g_loop, sem_tagged, &c[i]);
	YIELD();
	res_expect(1, 1);
	ck_assert(tide_semaphore_locked(sem));
	ck_assert_uint_eq(tide_semaphore_value(sem), 0);

	t[3] = tt_spawn(g_loop, sem_tagged, &c[3]);
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	ck_assert_uint_eq(tide_semaphore_value(sem), 0);
	YIELD();
	ck_assert_uint_eq(tide_semaphore_value(sem), 0);
	ck_assert_int_eq(g_nres, 3);
	ck_assert(tide_semaphore_locked(sem));
	ck_assert(tide_future_done(t[0]));
	ck_assert_int_eq(tt_result(t[0]), 1);
	for (int i = 1; i < 4; i++)
		done += tide_future_done(t[i]) && tt_result(t[i]) == 1;
	ck_assert_int_eq(done, 2);
	/* Clean up the locked semaphore. */
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(tt_join(t[i]), 1);
	tide_semaphore_free(sem);
	return 0;
}

/* SemaphoreTests.test_acquire_cancel: a cancelled acquire leaves no
 * waiter (the next release frees the unit). */
MAIN_CASE(test_locks__test_acquire_cancel__SemaphoreTests)
{
	struct tide_semaphore *sem;
	struct tide_future *acquire;

	ck_assert_int_eq(tide_semaphore_new(g_loop, 1, 0, &sem), 0);
	ck_assert_int_eq(tide_semaphore_acquire(sem), 0);
	acquire = tt_spawn(g_loop, sem_acquire_task, sem);
	ck_assert_int_eq(tide_call_soon(g_loop, cancel_cb, acquire, NULL), 0);
	ck_assert_int_eq(tide_await(acquire), -ECANCELED);
	ck_assert(tide_future_cancelled(acquire));
	tide_future_unref(acquire);
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	ck_assert_uint_eq(tide_semaphore_value(sem), 1);
	ck_assert(!tide_semaphore_locked(sem));
	tide_semaphore_free(sem);
	return 0;
}

/* SemaphoreTests.test_acquire_cancel_before_awoken: the two first waiters
 * are cancelled before a release: the unit goes to the third, not the
 * fourth. */
MAIN_CASE(test_locks__test_acquire_cancel_before_awoken)
{
	struct tide_semaphore *sem;
	struct tide_future *t[4];

	ck_assert_int_eq(tide_semaphore_new(g_loop, 0, 0, &sem), 0);
	for (int i = 0; i < 4; i++)
		t[i] = tt_spawn(g_loop, sem_acquire_task, sem);
	YIELD();
	ck_assert_int_eq(tide_task_cancel(t[0]), 1);
	ck_assert_int_eq(tide_task_cancel(t[1]), 1);
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	YIELD();
	YIELD();
	ck_assert_int_eq(tide_future_done(t[2]) + tide_future_done(t[3]), 1);
	ck_assert(tide_future_done(t[2]));
	ck_assert(!tide_future_done(t[3]));
	tide_task_cancel(t[2]);
	tide_task_cancel(t[3]);
	YIELD();
	ck_assert_int_eq(tt_join(t[0]), -ECANCELED);
	ck_assert_int_eq(tt_join(t[1]), -ECANCELED);
	ck_assert_int_eq(tt_join(t[2]), 0);
	ck_assert_int_eq(tt_join(t[3]), -ECANCELED);
	tide_semaphore_free(sem);
	return 0;
}

/* SemaphoreTests.test_acquire_hang: the first waiter cancelled before a
 * release does not swallow the unit: the second gets it. */
MAIN_CASE(test_locks__test_acquire_hang)
{
	struct tide_semaphore *sem;
	struct tide_future *t1, *t2;

	ck_assert_int_eq(tide_semaphore_new(g_loop, 0, 0, &sem), 0);
	t1 = tt_spawn(g_loop, sem_acquire_task, sem);
	t2 = tt_spawn(g_loop, sem_acquire_task, sem);
	YIELD();
	ck_assert_int_eq(tide_task_cancel(t1), 1);
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	YIELD();
	YIELD();
	ck_assert(tide_semaphore_locked(sem));
	ck_assert(tide_future_done(t2));
	ck_assert_int_eq(tt_join(t1), -ECANCELED);
	ck_assert_int_eq(tt_join(t2), 0);
	tide_semaphore_free(sem);
	return 0;
}

static struct tide_semaphore *g_sem;
static struct tide_future *g_t2;

/* c1 of test_acquire_no_hang: `async with sem: await sleep(0)`, then
 * cancel t2 (woken by the release, not yet run). */
static int64_t no_hang_c1(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_semaphore_acquire(g_sem), 0);
	ck_assert_int_eq(tide_sleep(0), 0);
	ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	tide_task_cancel(g_t2);
	return 0;
}

/* c2: `async with sem: assertFalse(True)`: it must never get the unit. */
static int64_t no_hang_c2(void *arg)
{
	int err;

	(void)arg;
	if ((err = tide_semaphore_acquire(g_sem)))
		return err;
	ck_abort_msg("c2 acquired the semaphore");
	return 0;
}

/* SemaphoreTests.test_acquire_no_hang: a waiter woken, then cancelled
 * before it ran, gives the unit back: a later acquire does not hang. */
MAIN_CASE(test_locks__test_acquire_no_hang)
{
	struct tide_future *t1, *t, *ts[2];
	struct tide_future *g = NULL;

	ck_assert_int_eq(tide_semaphore_new(g_loop, 1, 0, &g_sem), 0);
	t1 = tt_spawn(g_loop, no_hang_c1, NULL);
	g_t2 = tt_spawn(g_loop, no_hang_c2, NULL);
	ts[0] = t1;
	ts[1] = g_t2;
	ck_assert_int_eq(tide_gather(g_loop, ts, 2, 1, &g), 0);
	ck_assert_int_eq(tide_await(g), 0);
	tide_future_unref(g);
	ck_assert_int_eq(tt_result(t1), 0);
	ck_assert(tide_future_cancelled(g_t2));
	tide_future_unref(t1);
	tide_future_unref(g_t2);
	t = tt_spawn(g_loop, sem_acquire_task, g_sem);
	ck_assert_int_eq(tide_wait_for(t, 1.0 * slow_factor()), 0);
	tide_future_unref(t);
	tide_semaphore_free(g_sem);
	return 0;
}

/* SemaphoreTests.test_release_not_acquired: a BoundedSemaphore released
 * past its value: ValueError, here -EOVERFLOW. */
MAIN_CASE(test_locks__test_release_not_acquired__SemaphoreTests)
{
	struct tide_semaphore *sem;

	ck_assert_int_eq(tide_semaphore_new(g_loop, 1, 1, &sem), 0);
	ck_assert_int_eq(tide_semaphore_release(sem), -EOVERFLOW);
	ck_assert_uint_eq(tide_semaphore_value(sem), 1);
	tide_semaphore_free(sem);
	return 0;
}

/* SemaphoreTests.test_release_no_waiters */
MAIN_CASE(test_locks__test_release_no_waiters__SemaphoreTests)
{
	struct tide_semaphore *sem;

	ck_assert_int_eq(tide_semaphore_new(g_loop, 1, 0, &sem), 0);
	ck_assert_int_eq(tide_semaphore_acquire(sem), 0);
	ck_assert(tide_semaphore_locked(sem));
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	ck_assert(!tide_semaphore_locked(sem));
	tide_semaphore_free(sem);
	return 0;
}

/* coro(tag) of test_acquire_fifo_order: twice acquire, record, sleep, release. */
static int64_t fifo_coro(void *arg)
{
	struct tagged *c = arg;

	for (int round = 1; round <= 2; round++) {
		ck_assert_int_eq(tide_semaphore_acquire(c->obj), 0);
		res_add(c->tag * 10 + round);
		ck_assert_int_eq(tide_sleep(0.01), 0);
		ck_assert_int_eq(tide_semaphore_release(c->obj), 0);
	}
	return 0;
}

/* SemaphoreTests.test_acquire_fifo_order: a task that releases and
 * acquires again queues behind those already waiting. */
MAIN_CASE(test_locks__test_acquire_fifo_order)
{
	struct tide_semaphore *sem;
	struct tide_future *t[3];
	static struct tagged c[3];

	res_reset();
	ck_assert_int_eq(tide_semaphore_new(g_loop, 1, 0, &sem), 0);
	for (int i = 0; i < 3; i++) {
		c[i] = (struct tagged){ .obj = sem, .tag = i + 1 };
		t[i] = tt_spawn(g_loop, fifo_coro, &c[i]);
	}
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tt_join(t[i]), 0);
	res_expect(6, 11, 21, 31, 12, 22, 32);
	tide_semaphore_free(sem);
	return 0;
}

static int64_t fifo2_c2(void *arg)
{
	struct tide_semaphore *sem = arg;

	ck_assert_int_eq(tide_semaphore_acquire(sem), 0);
	res_add(2);
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	ck_assert_int_eq(tide_semaphore_acquire(sem), 0);
	res_add(4);
	return 1;
}

/* SemaphoreTests.test_acquire_fifo_order_2: a waiter woken by a release
 * keeps its unit against a task that releases and acquires again before
 * it runs. */
MAIN_CASE(test_locks__test_acquire_fifo_order_2)
{
	struct tide_semaphore *sem;
	struct tide_future *t[3];
	static struct tagged c1, c3;

	res_reset();
	ck_assert_int_eq(tide_semaphore_new(g_loop, 1, 0, &sem), 0);
	c1 = (struct tagged){ .obj = sem, .tag = 1 };
	c3 = (struct tagged){ .obj = sem, .tag = 3 };
	t[0] = tt_spawn(g_loop, sem_tagged, &c1);
	t[1] = tt_spawn(g_loop, fifo2_c2, sem);
	t[2] = tt_spawn(g_loop, sem_tagged, &c3);
	YIELD();
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tt_join(t[i]), 1);
	res_expect(4, 1, 2, 3, 4);
	tide_semaphore_free(sem);
	return 0;
}

/* SemaphoreTests.test_acquire_fifo_order_3: a waiter cancelled before the
 * releases takes no unit; the others get them in order. */
MAIN_CASE(test_locks__test_acquire_fifo_order_3)
{
	struct tide_semaphore *sem;
	struct tide_future *t[3];
	static struct tagged c[3];

	res_reset();
	ck_assert_int_eq(tide_semaphore_new(g_loop, 0, 0, &sem), 0);
	for (int i = 0; i < 3; i++) {
		c[i] = (struct tagged){ .obj = sem, .tag = i + 1 };
		t[i] = tt_spawn(g_loop, sem_tagged, &c[i]);
	}
	YIELD();
	ck_assert_int_eq(tide_task_cancel(t[0]), 1);
	YIELD();
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	ck_assert_int_eq(tide_semaphore_release(sem), 0);
	ck_assert_int_eq(tt_join(t[0]), -ECANCELED);
	ck_assert_int_eq(tt_join(t[1]), 1);
	ck_assert_int_eq(tt_join(t[2]), 1);
	res_expect(2, 2, 3);
	tide_semaphore_free(sem);
	return 0;
}

/* ------------------------------------------------------------ Barrier -- */

#define N 5

static struct tide_barrier *g_b, *g_b2;
static int g_count, g_r1, g_r2, g_r3;

static void barrier_reset_globals(void)
{
	g_count = g_r1 = g_r2 = g_r3 = 0;
	res_reset();
}

/* gather_tasks(n, coro): n tasks of fn, awaited in order; their values
 * (all must succeed) into out when not NULL. */
static void gather_tasks(int n, tide_task_cb fn, int64_t *out)
{
	struct tide_future *t[16];

	ck_assert_int_le(n, 16);
	for (int i = 0; i < n; i++)
		t[i] = tt_spawn(g_loop, fn, NULL);
	for (int i = 0; i < n; i++) {
		int64_t r = tt_join(t[i]);

		ck_assert_int_ge(r, 0);
		if (out)
			out[i] = r;
	}
}

static int64_t barrier_wait_task(void *arg)
{
	return tide_barrier_wait(arg);
}

/* Asserts that vals (n of them) are 0..n-1 in some order. */
static void assert_permutation(const int64_t *vals, int n)
{
	int seen[16] = { 0 };

	for (int i = 0; i < n; i++) {
		ck_assert_int_ge(vals[i], 0);
		ck_assert_int_lt(vals[i], n);
		ck_assert(!seen[vals[i]]);
		seen[vals[i]] = 1;
	}
}

static void assert_barrier_idle(struct tide_barrier *b, int broken)
{
	ck_assert_int_eq(tide_barrier_n_waiting(b), 0);
	ck_assert_int_eq(tide_barrier_broken(b), broken);
}

/* A full round passes: the barrier is filling (not resetting) again. */
static void assert_round_passes(struct tide_barrier *b)
{
	struct tide_future *t[16];
	int64_t idx[16];
	int n = tide_barrier_parties(b);

	for (int i = 0; i < n; i++)
		t[i] = tt_spawn(g_loop, barrier_wait_task, b);
	for (int i = 0; i < n; i++)
		idx[i] = tt_join(t[i]);
	assert_permutation(idx, n);
	assert_barrier_idle(b, 0);
}

/* coro of test_context_manager: `async with barrier as i: return i`. */
static int64_t cm_coro(void *arg)
{
	(void)arg;
	return tide_barrier_wait(g_b);
}

/* BarrierTests.test_context_manager: each party gets its own index. */
MAIN_CASE(test_locks__test_context_manager__BarrierTests)
{
	int64_t res[3];

	ck_assert_int_eq(tide_barrier_new(g_loop, 3, &g_b), 0);
	gather_tasks(3, cm_coro, res);
	assert_permutation(res, 3);
	assert_barrier_idle(g_b, 0);
	tide_barrier_free(g_b);
	return 0;
}

/* BarrierTests.test_filling_one_task: a barrier of one passes at once. */
MAIN_CASE(test_locks__test_filling_one_task)
{
	struct tide_barrier *b;

	ck_assert_int_eq(tide_barrier_new(g_loop, 1, &b), 0);
	ck_assert_int_eq(tide_barrier_wait(b), 0);
	assert_barrier_idle(b, 0);
	tide_barrier_free(b);
	return 0;
}

/* BarrierTests.test_filling_one_task_twice */
MAIN_CASE(test_locks__test_filling_one_task_twice)
{
	struct tide_barrier *b;
	struct tide_future *t1, *t2;

	ck_assert_int_eq(tide_barrier_new(g_loop, 1, &b), 0);
	t1 = tt_spawn(g_loop, barrier_wait_task, b);
	YIELD();
	ck_assert_int_eq(tide_barrier_n_waiting(b), 0);
	t2 = tt_spawn(g_loop, barrier_wait_task, b);
	YIELD();
	ck_assert_int_eq(tide_future_done(t1), tide_future_done(t2));
	ck_assert_int_eq(tt_result(t1), tt_result(t2));
	assert_barrier_idle(b, 0);
	tide_future_unref(t1);
	tide_future_unref(t2);
	tide_barrier_free(b);
	return 0;
}

static int64_t wait_twice_coro(void *arg)
{
	(void)arg;
	ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	res_add(1);
	ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	res_add(0);
	return 0;
}

/* BarrierTests.test_filling_tasks_wait_twice: two rounds in a row. */
MAIN_CASE(test_locks__test_filling_tasks_wait_twice)
{
	barrier_reset_globals();
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &g_b), 0);
	gather_tasks(N, wait_twice_coro, NULL);
	ck_assert_int_eq(g_nres, 2 * N);
	ck_assert_int_eq(res_count(1), N);
	ck_assert_int_eq(res_count(0), N);
	assert_barrier_idle(g_b, 0);
	tide_barrier_free(g_b);
	return 0;
}

static int64_t check_return_coro(void *arg)
{
	(void)arg;
	ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	g_r1++;
	int i = tide_barrier_wait(g_b);
	ck_assert_int_ge(i, 0);
	g_r2++;
	return i;
}

/* BarrierTests.test_filling_tasks_check_return_value: the second round
 * gives every party its own index too. */
MAIN_CASE(test_locks__test_filling_tasks_check_return_value)
{
	int64_t res[N];

	barrier_reset_globals();
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &g_b), 0);
	gather_tasks(N, check_return_coro, res);
	ck_assert_int_eq(g_r1, N);
	ck_assert_int_eq(g_r2, N);
	assert_permutation(res, N);
	assert_barrier_idle(g_b, 0);
	tide_barrier_free(g_b);
	return 0;
}

#define REWAIT 2
static int g_rewait_n;

static int64_t blocking_draining_coro(void *arg)
{
	(void)arg;
	/* first time waiting */
	ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	if (g_rewait_n > 0) {
		g_rewait_n--;
		/* wait again only for the rewait tasks */
		ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	} else {
		/* wait for the end of the draining state */
		ck_assert_int_ge(tide_barrier_wait(g_b2), 0);
		/* wait for the other waiting tasks */
		ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	}
	return 0;
}

/* BarrierTests.test_blocking_tasks_while_draining: tasks that come back
 * while the round drains wait for the next round, which completes. */
MAIN_CASE(test_locks__test_blocking_tasks_while_draining)
{
	g_rewait_n = REWAIT;
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &g_b), 0);
	ck_assert_int_eq(tide_barrier_new(g_loop, N - REWAIT, &g_b2), 0);
	gather_tasks(N, blocking_draining_coro, NULL);
	assert_barrier_idle(g_b, 0);
	assert_barrier_idle(g_b2, 0);
	tide_barrier_free(g_b);
	tide_barrier_free(g_b2);
	return 0;
}

static int64_t cancel_one_coro(void *arg)
{
	int r = tide_barrier_wait(arg);

	if (r < 0)
		return r;
	res_add(1);
	return 0;
}

/* BarrierTests.test_filling_tasks_cancel_one: a party cancelled while the
 * round fills leaves it; the round completes with another. */
MAIN_CASE(test_locks__test_filling_tasks_cancel_one)
{
	struct tide_barrier *b;
	struct tide_future *t1, *t2, *t3, *t4;

	res_reset();
	ck_assert_int_eq(tide_barrier_new(g_loop, 3, &b), 0);
	t1 = tt_spawn(g_loop, cancel_one_coro, b);
	YIELD();
	ck_assert_int_eq(tide_barrier_n_waiting(b), 1);
	t2 = tt_spawn(g_loop, cancel_one_coro, b);
	YIELD();
	ck_assert_int_eq(tide_barrier_n_waiting(b), 2);
	ck_assert_int_eq(tide_task_cancel(t1), 1);
	YIELD();
	ck_assert_int_eq(tide_barrier_n_waiting(b), 1);
	ck_assert_int_eq(tt_join(t1), -ECANCELED);
	t3 = tt_spawn(g_loop, cancel_one_coro, b);
	YIELD();
	ck_assert_int_eq(tide_barrier_n_waiting(b), 2);
	t4 = tt_spawn(g_loop, cancel_one_coro, b);
	ck_assert_int_eq(tt_join(t2), 0);
	ck_assert_int_eq(tt_join(t3), 0);
	ck_assert_int_eq(tt_join(t4), 0);
	ck_assert_int_eq(g_nres, 3);
	assert_barrier_idle(b, 0);
	tide_barrier_free(b);
	return 0;
}

static int64_t reset_task(void *arg)
{
	return tide_barrier_reset(arg);
}

/* BarrierTests.test_reset_barrier: a reset with nobody waiting. */
MAIN_CASE(test_locks__test_reset_barrier)
{
	struct tide_barrier *b;
	struct tide_future *t;

	ck_assert_int_eq(tide_barrier_new(g_loop, 1, &b), 0);
	t = tt_spawn(g_loop, reset_task, b);
	YIELD();
	ck_assert_int_eq(tt_result(t), 0);
	tide_future_unref(t);
	assert_barrier_idle(b, 0);
	tide_barrier_free(b);
	return 0;
}

static int64_t broken_counting_coro(void *arg)
{
	int r = tide_barrier_wait(arg);

	if (r == TIDE_EBROKEN_BARRIER)
		g_r1++;
	return r < 0 && r != TIDE_EBROKEN_BARRIER ? r : 0;
}

/* BarrierTests.test_reset_barrier_while_tasks_waiting: the waiting
 * parties get BrokenBarrierError; the barrier fills again after. */
MAIN_CASE(test_locks__test_reset_barrier_while_tasks_waiting)
{
	struct tide_barrier *b;
	struct tide_future *t[N - 1], *r;

	barrier_reset_globals();
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &b), 0);
	for (int i = 0; i < N - 1; i++)
		t[i] = tt_spawn(g_loop, broken_counting_coro, b);
	YIELD();
	r = tt_spawn(g_loop, reset_task, b);
	for (int i = 0; i < N - 1; i++)
		ck_assert_int_eq(tt_join(t[i]), 0);
	ck_assert_int_eq(tt_join(r), 0);
	ck_assert_int_eq(g_r1, N - 1);
	assert_barrier_idle(b, 0);
	assert_round_passes(b);
	tide_barrier_free(b);
	return 0;
}

#define REST_OF_TASKS (N / 2)

static int64_t half_draining_coro(void *arg)
{
	int r = tide_barrier_wait(g_b);

	(void)arg;
	if (r == TIDE_EBROKEN_BARRIER) {
		/* the tasks still inside when the reset came */
		g_r1++;
		return 0;
	}
	ck_assert_int_ge(r, 0);
	/* Python tests barrier._count, the parties still inside: N less
	 * those that left. */
	if (N - ++g_count == REST_OF_TASKS)
		ck_assert_int_eq(tide_barrier_reset(g_b), 0);
	return 0;
}

/* BarrierTests.test_reset_barrier_when_tasks_half_draining: a reset while
 * the round drains breaks it for the parties that have not left yet. */
MAIN_CASE(test_locks__test_reset_barrier_when_tasks_half_draining)
{
	barrier_reset_globals();
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &g_b), 0);
	gather_tasks(N, half_draining_coro, NULL);
	ck_assert_int_eq(g_r1, REST_OF_TASKS);
	assert_barrier_idle(g_b, 0);
	assert_round_passes(g_b);
	tide_barrier_free(g_b);
	return 0;
}

#define BLOCKING_TASKS (N / 2)

static int64_t reset_half_blocking_coro(void *arg)
{
	int r = tide_barrier_wait(g_b);

	(void)arg;
	if (r == TIDE_EBROKEN_BARRIER) {
		/* the tasks still waiting */
		g_r1++;
		/* so now waiting again to reach the parties */
		ck_assert_int_ge(tide_barrier_wait(g_b), 0);
		return 0;
	}
	ck_assert_int_ge(r, 0);
	if (++g_count > BLOCKING_TASKS) {
		/* reset now: BrokenBarrierError for the waiting tasks */
		ck_assert_int_eq(tide_barrier_reset(g_b), 0);
		ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	} else {
		r = tide_barrier_wait(g_b);
		if (r == TIDE_EBROKEN_BARRIER)
			g_r2++; /* never: blocked tasks go on waiting */
		else
			ck_assert_int_ge(r, 0);
	}
	return 0;
}

/* BarrierTests.test_reset_barrier_when_tasks_half_draining_half_blocking:
 * a reset while some parties drain and some already wait on the next
 * round: those waiting are broken, those blocked behind the draining are
 * not; everyone passes the round after. */
MAIN_CASE(test_locks__test_reset_barrier_when_tasks_half_draining_half_blocking)
{
	barrier_reset_globals();
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &g_b), 0);
	gather_tasks(N, reset_half_blocking_coro, NULL);
	ck_assert_int_eq(g_r1, BLOCKING_TASKS);
	ck_assert_int_eq(g_r2, 0);
	assert_barrier_idle(g_b, 0);
	assert_round_passes(g_b);
	tide_barrier_free(g_b);
	return 0;
}

static int64_t waiting_again_coro1(void *arg)
{
	int r = tide_barrier_wait(g_b);

	(void)arg;
	if (r == TIDE_EBROKEN_BARRIER)
		g_r1++;
	else
		ck_assert_int_ge(r, 0);
	/* finally: */
	ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	g_r2++;
	return 0;
}

static int64_t waiting_again_coro2(void *arg)
{
	(void)arg;
	ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	g_r2++;
	return 0;
}

/* BarrierTests.test_reset_barrier_while_tasks_waiting_and_waiting_again:
 * the parties broken by a reset wait again and pass with one more. */
MAIN_CASE(test_locks__test_reset_barrier_while_tasks_waiting_and_waiting_again)
{
	struct tide_future *t[N - 1], *r, *c2;

	barrier_reset_globals();
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &g_b), 0);
	for (int i = 0; i < N - 1; i++)
		t[i] = tt_spawn(g_loop, waiting_again_coro1, NULL);
	/* reset: the N-1 waiting tasks get BrokenBarrierError */
	r = tt_spawn(g_loop, reset_task, g_b);
	YIELD();
	/* complete the waiting tasks in their `finally` */
	c2 = tt_spawn(g_loop, waiting_again_coro2, NULL);
	for (int i = 0; i < N - 1; i++)
		ck_assert_int_eq(tt_join(t[i]), 0);
	ck_assert_int_eq(tt_join(r), 0);
	ck_assert_int_eq(tt_join(c2), 0);
	ck_assert_int_eq(tide_barrier_broken(g_b), 0);
	ck_assert_int_eq(g_r1, N - 1);
	ck_assert_int_eq(g_r2, N);
	assert_barrier_idle(g_b, 0);
	tide_barrier_free(g_b);
	return 0;
}

static int64_t reset_draining_coro(void *arg)
{
	(void)arg;
	ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	if (++g_count == N) {
		/* the last task out of the barrier */
		ck_assert_int_eq(tide_barrier_reset(g_b), 0);
		/* wait here to reach the parties */
		ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	} else {
		/* second wait: N-1 tasks here */
		if (tide_barrier_wait(g_b) >= 0)
			g_r1++;
		else
			g_r2++; /* never */
	}
	/* Now pass the barrier again: the last wait must complete. */
	ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	g_r3++;
	return 0;
}

/* BarrierTests.test_reset_barrier_while_tasks_draining: the last party
 * out of a round resets the barrier, the others already waiting for the
 * next round: nobody is broken (the reset found nobody inside), and two
 * more rounds pass. */
MAIN_CASE(test_locks__test_reset_barrier_while_tasks_draining)
{
	barrier_reset_globals();
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &g_b), 0);
	gather_tasks(N, reset_draining_coro, NULL);
	ck_assert_int_eq(tide_barrier_broken(g_b), 0);
	ck_assert_int_eq(g_r1, N - 1);
	ck_assert_int_eq(g_r2, 0);
	ck_assert_int_eq(g_r3, N);
	assert_barrier_idle(g_b, 0);
	tide_barrier_free(g_b);
	return 0;
}

static int64_t abort_half_blocking_coro(void *arg)
{
	int r = tide_barrier_wait(g_b);

	(void)arg;
	if (r == TIDE_EBROKEN_BARRIER) {
		/* the tasks waiting to drain */
		g_r1++;
		return 0;
	}
	ck_assert_int_ge(r, 0);
	if (++g_count > BLOCKING_TASKS) {
		/* abort now: BrokenBarrierError for every task */
		ck_assert_int_eq(tide_barrier_abort(g_b), 0);
	} else {
		r = tide_barrier_wait(g_b);
		ck_assert_int_eq(r, TIDE_EBROKEN_BARRIER); /* the blocked tasks (drained already) */
		g_r2++;
	}
	return 0;
}

/* BarrierTests.test_abort_barrier_when_tasks_half_draining_half_blocking:
 * an abort while the round drains breaks the parties not yet out and
 * those waiting on the next round. */
MAIN_CASE(test_locks__test_abort_barrier_when_tasks_half_draining_half_blocking)
{
	barrier_reset_globals();
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &g_b), 0);
	gather_tasks(N, abort_half_blocking_coro, NULL);
	ck_assert_int_eq(tide_barrier_broken(g_b), 1);
	ck_assert_int_eq(g_r1, BLOCKING_TASKS);
	ck_assert_int_eq(g_r2, N - BLOCKING_TASKS - 1);
	assert_barrier_idle(g_b, 1);
	tide_barrier_free(g_b);
	return 0;
}

static int64_t abort_exception_coro(void *arg)
{
	int i = tide_barrier_wait(g_b);

	(void)arg;
	if (i == TIDE_EBROKEN_BARRIER) {
		g_r2++;
		return 0;
	}
	ck_assert_int_ge(i, 0);
	if (i == N / 2) {
		/* `raise RuntimeError` in the block: the handler aborts */
		ck_assert_int_eq(tide_barrier_abort(g_b), 0);
		return 0;
	}
	i = tide_barrier_wait(g_b);
	if (i == TIDE_EBROKEN_BARRIER)
		g_r2++;
	else
		g_r1++;
	return 0;
}

/* BarrierTests.test_abort_barrier_when_exception: one party fails after
 * the first round and aborts: every other party's second wait is broken. */
MAIN_CASE(test_locks__test_abort_barrier_when_exception)
{
	barrier_reset_globals();
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &g_b), 0);
	gather_tasks(N, abort_exception_coro, NULL);
	ck_assert_int_eq(tide_barrier_broken(g_b), 1);
	ck_assert_int_eq(g_r1, 0);
	ck_assert_int_eq(g_r2, N - 1);
	assert_barrier_idle(g_b, 1);
	tide_barrier_free(g_b);
	return 0;
}

static int64_t abort_then_reset_coro(void *arg)
{
	int i = tide_barrier_wait(g_b);

	(void)arg;
	if (i == TIDE_EBROKEN_BARRIER) {
		g_r2++;
	} else {
		ck_assert_int_ge(i, 0);
		if (i == N / 2) {
			ck_assert_int_eq(tide_barrier_abort(g_b), 0);
		} else {
			i = tide_barrier_wait(g_b);
			if (i == TIDE_EBROKEN_BARRIER)
				g_r2++;
			else
				g_r1++;
		}
	}
	/* Synchronize and reset the barrier: everyone has left it when it is
	 * reset, and no one enters it before. */
	i = tide_barrier_wait(g_b2);
	ck_assert_int_ge(i, 0);
	if (i == N / 2)
		ck_assert_int_eq(tide_barrier_reset(g_b), 0);
	ck_assert_int_ge(tide_barrier_wait(g_b2), 0);
	ck_assert_int_ge(tide_barrier_wait(g_b), 0);
	g_r3++;
	return 0;
}

/* BarrierTests.test_abort_barrier_when_exception_then_resetting: after an
 * abort, a reset makes the barrier usable again. */
MAIN_CASE(test_locks__test_abort_barrier_when_exception_then_resetting)
{
	barrier_reset_globals();
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &g_b), 0);
	ck_assert_int_eq(tide_barrier_new(g_loop, N, &g_b2), 0);
	gather_tasks(N, abort_then_reset_coro, NULL);
	ck_assert_int_eq(tide_barrier_broken(g_b), 0);
	ck_assert_int_eq(g_r1, 0);
	ck_assert_int_eq(g_r2, N - 1);
	ck_assert_int_eq(g_r3, N);
	assert_barrier_idle(g_b, 0);
	tide_barrier_free(g_b);
	tide_barrier_free(g_b2);
	return 0;
}

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "conformance-locks", 30);
	/* LockTests */
	tt_add(&ts, test_locks__test_acquire__LockTests);
	tt_add(&ts, test_locks__test_acquire_cancel__LockTests);
	tt_add(&ts, test_locks__test_cancel_race);
	tt_add(&ts, test_locks__test_cancel_release_race);
	tt_add(&ts, test_locks__test_finished_waiter_cancelled);
	tt_add(&ts, test_locks__test_release_not_acquired__LockTests);
	tt_add(&ts, test_locks__test_release_no_waiters__LockTests);
	tt_add(&ts, test_locks__test_context_manager__LockTests);
	/* EventTests */
	tt_add(&ts, test_locks__test_wait__EventTests);
	tt_add(&ts, test_locks__test_wait_on_set);
	tt_add(&ts, test_locks__test_wait_cancel__EventTests);
	tt_add(&ts, test_locks__test_clear);
	tt_add(&ts, test_locks__test_clear_with_waiters);
	/* ConditionTests */
	tt_add(&ts, test_locks__test_wait__ConditionTests);
	tt_add(&ts, test_locks__test_wait_cancel__ConditionTests);
	tt_add(&ts, test_locks__test_wait_cancel_contested);
	tt_add(&ts, test_locks__test_wait_cancel_after_notify);
	tt_add(&ts, test_locks__test_wait_unacquired);
	tt_add(&ts, test_locks__test_wait_for);
	tt_add(&ts, test_locks__test_notify);
	tt_add(&ts, test_locks__test_notify_all);
	tt_add(&ts, test_locks__test_notify_unacquired);
	tt_add(&ts, test_locks__test_notify_all_unacquired);
	tt_add(&ts, test_locks__test_context_manager__ConditionTests);
	tt_add(&ts, test_locks__test_explicit_lock);
	tt_add(&ts, test_locks__test_ambiguous_loops);
	tt_add(&ts, test_locks__test_timeout_in_block);
	/* SemaphoreTests */
	tt_add(&ts, test_locks__test_initial_value_zero);
	tt_add(&ts, test_locks__test_acquire__SemaphoreTests);
	tt_add(&ts, test_locks__test_acquire_cancel__SemaphoreTests);
	tt_add(&ts, test_locks__test_acquire_cancel_before_awoken);
	tt_add(&ts, test_locks__test_acquire_hang);
	tt_add(&ts, test_locks__test_acquire_no_hang);
	tt_add(&ts, test_locks__test_release_not_acquired__SemaphoreTests);
	tt_add(&ts, test_locks__test_release_no_waiters__SemaphoreTests);
	tt_add(&ts, test_locks__test_acquire_fifo_order);
	tt_add(&ts, test_locks__test_acquire_fifo_order_2);
	tt_add(&ts, test_locks__test_acquire_fifo_order_3);
	/* BarrierTests (test_barrier_parties, test_filling_task_by_task and
	 * test_abort_barrier are in conformance/asyncio.c) */
	tt_add(&ts, test_locks__test_context_manager__BarrierTests);
	tt_add(&ts, test_locks__test_filling_one_task);
	tt_add(&ts, test_locks__test_filling_one_task_twice);
	tt_add(&ts, test_locks__test_filling_tasks_wait_twice);
	tt_add(&ts, test_locks__test_filling_tasks_check_return_value);
	tt_add(&ts, test_locks__test_blocking_tasks_while_draining);
	tt_add(&ts, test_locks__test_filling_tasks_cancel_one);
	tt_add(&ts, test_locks__test_reset_barrier);
	tt_add(&ts, test_locks__test_reset_barrier_while_tasks_waiting);
	tt_add(&ts, test_locks__test_reset_barrier_when_tasks_half_draining);
	tt_add(&ts, test_locks__test_reset_barrier_when_tasks_half_draining_half_blocking);
	tt_add(&ts, test_locks__test_reset_barrier_while_tasks_waiting_and_waiting_again);
	tt_add(&ts, test_locks__test_reset_barrier_while_tasks_draining);
	tt_add(&ts, test_locks__test_abort_barrier_when_tasks_half_draining_half_blocking);
	tt_add(&ts, test_locks__test_abort_barrier_when_exception);
	tt_add(&ts, test_locks__test_abort_barrier_when_exception_then_resetting);
	return tt_run(&ts);
}
