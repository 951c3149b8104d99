/* SPDX-License-Identifier: MIT */
/*
 * test/sync.c: asyncio's synchronisation primitives on every backend
 * configuration, case by case as CPython's test_locks.py and test_queues.py
 * check them: FIFO wake order, a cancelled waiter (before or after it was
 * chosen) never swallows a wake-up, Condition.wait re-acquires the lock
 * even when cancelled, BoundedSemaphore's over-release, queue full/empty,
 * priority order with FIFO among equals, LIFO, blocking put, task_done/join,
 * Barrier indices/abort/reset; then a cancellation storm over locks,
 * semaphores, conditions and queues where every task finishes exactly once
 * and no wake-up, unit or item is lost.
 *
 * Each test body runs in a main task; "settle" yields a few times so that
 * the tasks spawned so far reach their first wait, which keeps every order
 * here deterministic (the ready queue is FIFO).
 */
#include "config.h"
#include "helpers.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct tide_loop *g_loop;

/* xorshift64*: deterministic, so a failure can be replayed. */
static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* The order in which tasks got through (what the asyncio tests append to a list). */
static int order[256];
static int norder;

static void rec(int id)
{
	ck_assert_int_lt(norder, 256);
	order[norder++] = id;
}

static void check_order(const int *want, int n)
{
	ck_assert_int_eq(norder, n);
	for (int i = 0; i < n; i++)
		ck_assert_msg(order[i] == want[i], "order[%d] = %d, expected %d", i, order[i], want[i]);
}

/* Lets the ready tasks run n rounds. */
static void settle(int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(tide_yield(), 0);
}

/* Runs fn(arg) as the main task of a fresh loop; it must return 0, and nothing may leak. */
static void run_main(tide_task_cb fn, intptr_t arg)
{
	norder = 0;
	tt_run_main(&g_loop, fn, (void *)arg);
}

/* ---------------------------------------------------------------- Lock -- */

static struct tide_lock *g_lock;

/* Acquires, records, yields once while holding, releases; returns id. */
static int64_t lock_worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	int r = tide_lock_acquire(g_lock);

	if (r < 0)
		return r;
	ck_assert_int_eq(tide_lock_locked(g_lock), 1);
	rec(id);
	(void)tide_yield();
	ck_assert_int_eq(tide_lock_release(g_lock), 0);
	return id;
}

static int64_t lock_basic_main(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_lock_new(g_loop, &g_lock), 0);
	ck_assert_int_eq(tide_lock_locked(g_lock), 0);
	ck_assert_int_eq(tide_lock_release(g_lock), -EPERM);
	ck_assert_int_eq(tide_lock_acquire(g_lock), 0);
	ck_assert_int_eq(tide_lock_locked(g_lock), 1);
	ck_assert_int_eq(tide_lock_release(g_lock), 0);
	ck_assert_int_eq(tide_lock_locked(g_lock), 0);
	ck_assert_int_eq(tide_lock_release(g_lock), -EPERM);
	tide_lock_free(g_lock);
	return 0;
}

START_TEST(test_lock_basic)
{
	run_main(lock_basic_main, 0);
}
END_TEST

/* asyncio test_acquire: waiters get the lock in arrival order. */
static int64_t lock_fifo_main(void *arg)
{
	struct tide_future *t[6];
	static const int want[] = { 0, 1, 2, 3, 4, 5 };

	(void)arg;
	ck_assert_int_eq(tide_lock_new(g_loop, &g_lock), 0);
	ck_assert_int_eq(tide_lock_acquire(g_lock), 0);
	for (int i = 0; i < 6; i++)
		t[i] = tt_spawn(g_loop, lock_worker, (void *)(intptr_t)i);
	settle(3);
	ck_assert_int_eq(norder, 0);
	ck_assert_int_eq(tide_lock_release(g_lock), 0);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(tt_join(t[i]), i);
	check_order(want, 6);
	ck_assert_int_eq(tide_lock_locked(g_lock), 0);
	tide_lock_free(g_lock);
	return 0;
}

START_TEST(test_lock_fifo)
{
	run_main(lock_fifo_main, 0);
}
END_TEST

/* The releaser cannot jump ahead of a waiter by re-acquiring at once. */
static int64_t lock_no_barging_main(void *arg)
{
	struct tide_future *t;
	static const int want[] = { 1, 99 };

	(void)arg;
	ck_assert_int_eq(tide_lock_new(g_loop, &g_lock), 0);
	ck_assert_int_eq(tide_lock_acquire(g_lock), 0);
	t = tt_spawn(g_loop, lock_worker, (void *)(intptr_t)1);
	settle(2);
	ck_assert_int_eq(tide_lock_release(g_lock), 0);
	ck_assert_int_eq(tide_lock_acquire(g_lock), 0);
	rec(99);
	ck_assert_int_eq(tide_lock_release(g_lock), 0);
	ck_assert_int_eq(tt_join(t), 1);
	check_order(want, 2);
	tide_lock_free(g_lock);
	return 0;
}

START_TEST(test_lock_no_barging)
{
	run_main(lock_no_barging_main, 0);
}
END_TEST

/*
 * asyncio test_cancel_race and test_finished_waiter_cancelled: B and C wait
 * for the lock; B is cancelled before (mode 0) or after (mode 1) the
 * release chose it. Either way C gets the lock and B never holds it.
 */
static int64_t lock_cancel_main(void *arg)
{
	int mode = (int)(intptr_t)arg;
	struct tide_future *b, *c;
	static const int want[] = { 2 };

	ck_assert_int_eq(tide_lock_new(g_loop, &g_lock), 0);
	ck_assert_int_eq(tide_lock_acquire(g_lock), 0);
	b = tt_spawn(g_loop, lock_worker, (void *)(intptr_t)1);
	c = tt_spawn(g_loop, lock_worker, (void *)(intptr_t)2);
	settle(3);
	if (mode == 0) {
		ck_assert_int_eq(tide_task_cancel(b), 1);
		ck_assert_int_eq(tide_lock_release(g_lock), 0);
	} else {
		ck_assert_int_eq(tide_lock_release(g_lock), 0);
		ck_assert_int_eq(tide_task_cancel(b), 1);
	}
	ck_assert_int_eq(tt_join(b), -ECANCELED);
	ck_assert_int_eq(tt_join(c), 2);
	check_order(want, 1);
	ck_assert_int_eq(tide_lock_locked(g_lock), 0);
	tide_lock_free(g_lock);
	return 0;
}

START_TEST(test_lock_cancel_waiter)
{
	run_main(lock_cancel_main, 0);
}
END_TEST

START_TEST(test_lock_cancel_after_wake)
{
	run_main(lock_cancel_main, 1);
}
END_TEST

/*
 * asyncio test_cancel_release_race: from a plain callback, cancel the first
 * waiter and release; exactly one of the three lockers gets the lock.
 */
static int lock_count;
static struct tide_future *race_t1;

static int64_t lockit(void *arg)
{
	(void)arg;
	if (tide_lock_acquire(g_lock) < 0)
		return -ECANCELED;
	lock_count++;
	return 0;
}

static void race_trigger(void *arg)
{
	(void)arg;
	tide_task_cancel(race_t1);
	ck_assert_int_eq(tide_lock_release(g_lock), 0);
}

static int64_t lock_release_race_main(void *arg)
{
	struct tide_future *t2, *t3;

	(void)arg;
	lock_count = 0;
	ck_assert_int_eq(tide_lock_new(g_loop, &g_lock), 0);
	ck_assert_int_eq(tide_lock_acquire(g_lock), 0);
	race_t1 = tt_spawn(g_loop, lockit, (void *)(intptr_t)0);
	t2 = tt_spawn(g_loop, lockit, (void *)(intptr_t)0);
	t3 = tt_spawn(g_loop, lockit, (void *)(intptr_t)0);
	settle(1);
	ck_assert_int_eq(tide_call_soon(g_loop, race_trigger, NULL, NULL), 0);
	settle(3);
	ck_assert_int_eq(lock_count, 1);
	tide_task_cancel(t2);
	tide_task_cancel(t3);
	settle(2);
	ck_assert_int_eq(lock_count, 1);
	ck_assert_int_eq(tt_join(race_t1), -ECANCELED);
	ck_assert_int_eq(tt_join(t2), 0);
	ck_assert_int_eq(tt_join(t3), -ECANCELED);
	/* t2 kept it (lockit never releases). */
	ck_assert_int_eq(tide_lock_locked(g_lock), 1);
	ck_assert_int_eq(tide_lock_release(g_lock), 0);
	tide_lock_free(g_lock);
	return 0;
}

START_TEST(test_lock_cancel_release_race)
{
	run_main(lock_release_race_main, 0);
}
END_TEST

/* --------------------------------------------------------------- Event -- */

static struct tide_event *g_event;

static int64_t event_worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	int r = tide_event_wait(g_event);

	if (r < 0)
		return r;
	rec(id);
	return id;
}

/* asyncio test_wait, test_wait_on_set, test_wait_cancel, test_clear_with_waiters. */
static int64_t event_main(void *arg)
{
	struct tide_future *t[4];
	static const int want[] = { 0, 2, 3 };

	(void)arg;
	ck_assert_int_eq(tide_event_new(g_loop, &g_event), 0);
	ck_assert_int_eq(tide_event_is_set(g_event), 0);
	for (int i = 0; i < 4; i++)
		t[i] = tt_spawn(g_loop, event_worker, (void *)(intptr_t)i);
	settle(3);
	ck_assert_int_eq(norder, 0);
	ck_assert_int_eq(tide_task_cancel(t[1]), 1);
	settle(1);
	ck_assert_int_eq(tide_future_done(t[1]), 1);
	tide_event_set(g_event);
	/* Woken waiters return even though the flag is cleared before they run. */
	tide_event_clear(g_event);
	ck_assert_int_eq(tide_event_is_set(g_event), 0);
	ck_assert_int_eq(tt_join(t[0]), 0);
	ck_assert_int_eq(tt_join(t[1]), -ECANCELED);
	ck_assert_int_eq(tt_join(t[2]), 2);
	ck_assert_int_eq(tt_join(t[3]), 3);
	check_order(want, 3);
	/* Set: wait returns at once, without suspending. */
	tide_event_set(g_event);
	tide_event_set(g_event);
	ck_assert_int_eq(tide_event_is_set(g_event), 1);
	ck_assert_int_eq(tide_event_wait(g_event), 0);
	tide_event_free(g_event);
	return 0;
}

START_TEST(test_event)
{
	run_main(event_main, 0);
}
END_TEST

/* ----------------------------------------------------------- Condition -- */

static struct tide_condition *g_cond;
static int cond_lock_held_after_wait;

/* Waits once; the lock must be held when wait returns, whatever it returns. */
static int64_t cond_worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	struct tide_lock *lock = tide_condition_lock(g_cond);
	int r;

	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	r = tide_condition_wait(g_cond);
	ck_assert_int_eq(tide_lock_locked(lock), 1);
	cond_lock_held_after_wait++;
	if (r == 0)
		rec(id);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	return r < 0 ? r : id;
}

/* asyncio test_notify, test_notify_all: FIFO, n at a time, only with the lock. */
static int64_t cond_notify_main(void *arg)
{
	struct tide_future *t[5];
	struct tide_lock *lock;
	static const int want[] = { 0, 1, 2, 3, 4 };

	(void)arg;
	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &g_cond), 0);
	lock = tide_condition_lock(g_cond);
	ck_assert_ptr_nonnull(lock);
	ck_assert_int_eq(tide_condition_wait(g_cond), -EPERM);
	ck_assert_int_eq(tide_condition_notify(g_cond, 1), -EPERM);
	ck_assert_int_eq(tide_condition_notify_all(g_cond), -EPERM);
	for (int i = 0; i < 5; i++)
		t[i] = tt_spawn(g_loop, cond_worker, (void *)(intptr_t)i);
	settle(3);
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert_int_eq(tide_condition_notify(g_cond, 1), 1);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	settle(3);
	check_order(want, 1);
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert_int_eq(tide_condition_notify(g_cond, 2), 2);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	settle(4);
	check_order(want, 3);
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert_int_eq(tide_condition_notify_all(g_cond), 2);
	ck_assert_int_eq(tide_condition_notify_all(g_cond), 0);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(tt_join(t[i]), i);
	check_order(want, 5);
	tide_condition_free(g_cond);
	return 0;
}

START_TEST(test_condition_notify)
{
	run_main(cond_notify_main, 0);
}
END_TEST

/*
 * asyncio test_wait_cancel_contested: a waiter cancelled while another
 * task holds the lock does not return until it has the lock again.
 */
static int64_t cond_cancel_contested_main(void *arg)
{
	struct tide_future *t;
	struct tide_lock *lock;

	(void)arg;
	cond_lock_held_after_wait = 0;
	ck_assert_int_eq(tide_lock_new(g_loop, &lock), 0);
	ck_assert_int_eq(tide_condition_new(g_loop, lock, &g_cond), 0);
	ck_assert_ptr_eq(tide_condition_lock(g_cond), lock);
	t = tt_spawn(g_loop, cond_worker, (void *)(intptr_t)1);
	settle(2);
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	settle(4);
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(cond_lock_held_after_wait, 0);
	ck_assert_int_eq(tide_lock_release(lock), 0);
	ck_assert_int_eq(tt_join(t), -ECANCELED);
	ck_assert_int_eq(cond_lock_held_after_wait, 1);
	ck_assert_int_eq(tide_lock_locked(lock), 0);
	tide_condition_free(g_cond);
	tide_lock_free(lock);
	return 0;
}

START_TEST(test_condition_cancel_reacquires)
{
	run_main(cond_cancel_contested_main, 0);
}
END_TEST

/*
 * A notified waiter cancelled before it runs hands the notify on (asyncio
 * 3.13 test_cancelled_error_wakeup / test_cancelled_wakeup): B is woken.
 * mode 1 cancels A before the notify: the notify skips it.
 */
static int64_t cond_cancel_notified_main(void *arg)
{
	int mode = (int)(intptr_t)arg;
	struct tide_future *a, *b;
	struct tide_lock *lock;
	static const int want[] = { 2 };

	cond_lock_held_after_wait = 0;
	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &g_cond), 0);
	lock = tide_condition_lock(g_cond);
	a = tt_spawn(g_loop, cond_worker, (void *)(intptr_t)1);
	b = tt_spawn(g_loop, cond_worker, (void *)(intptr_t)2);
	settle(3);
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	if (mode == 0) {
		ck_assert_int_eq(tide_condition_notify(g_cond, 1), 1);
		ck_assert_int_eq(tide_task_cancel(a), 1);
	} else {
		ck_assert_int_eq(tide_task_cancel(a), 1);
		ck_assert_int_eq(tide_condition_notify(g_cond, 1), 1);
	}
	ck_assert_int_eq(tide_lock_release(lock), 0);
	ck_assert_int_eq(tt_join(a), -ECANCELED);
	ck_assert_int_eq(tt_join(b), 2);
	check_order(want, 1);
	ck_assert_int_eq(cond_lock_held_after_wait, 2);
	tide_condition_free(g_cond);
	return 0;
}

START_TEST(test_condition_cancel_after_notify)
{
	run_main(cond_cancel_notified_main, 0);
}
END_TEST

START_TEST(test_condition_cancel_before_notify)
{
	run_main(cond_cancel_notified_main, 1);
}
END_TEST

/* ----------------------------------------------------------- Semaphore -- */

static struct tide_semaphore *g_sem;

static int64_t sem_worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	int r = tide_semaphore_acquire(g_sem);

	if (r < 0)
		return r;
	rec(id);
	return id; /* keeps its unit: the test releases for it */
}

/* asyncio test_acquire (semaphore): value, locked, FIFO wake-ups. */
static int64_t sem_fifo_main(void *arg)
{
	struct tide_future *t[5];
	static const int want[] = { 0, 1, 2, 3, 4 };

	(void)arg;
	ck_assert_int_eq(tide_semaphore_new(g_loop, 2, 0, &g_sem), 0);
	ck_assert_uint_eq(tide_semaphore_value(g_sem), 2);
	ck_assert_int_eq(tide_semaphore_locked(g_sem), 0);
	for (int i = 0; i < 5; i++)
		t[i] = tt_spawn(g_loop, sem_worker, (void *)(intptr_t)i);
	settle(3);
	check_order(want, 2);
	ck_assert_uint_eq(tide_semaphore_value(g_sem), 0);
	ck_assert_int_eq(tide_semaphore_locked(g_sem), 1);
	ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	settle(2);
	check_order(want, 3);
	ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	settle(2);
	check_order(want, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(tt_join(t[i]), i);
	ck_assert_uint_eq(tide_semaphore_value(g_sem), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	/* Unbounded: releasing past the initial value is allowed. */
	ck_assert_uint_eq(tide_semaphore_value(g_sem), 5);
	ck_assert_int_eq(tide_semaphore_locked(g_sem), 0);
	tide_semaphore_free(g_sem);
	return 0;
}

START_TEST(test_semaphore_fifo)
{
	run_main(sem_fifo_main, 0);
}
END_TEST

/* asyncio test_release_not_acquired (BoundedSemaphore): ValueError. */
static int64_t bounded_main(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_semaphore_new(g_loop, 2, 1, &g_sem), 0);
	ck_assert_int_eq(tide_semaphore_release(g_sem), -EOVERFLOW);
	ck_assert_int_eq(tide_semaphore_acquire(g_sem), 0);
	ck_assert_int_eq(tide_semaphore_acquire(g_sem), 0);
	ck_assert_int_eq(tide_semaphore_locked(g_sem), 1);
	ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	ck_assert_int_eq(tide_semaphore_release(g_sem), -EOVERFLOW);
	ck_assert_uint_eq(tide_semaphore_value(g_sem), 2);
	tide_semaphore_free(g_sem);
	/* A bounded semaphore of 0 can never be released. */
	ck_assert_int_eq(tide_semaphore_new(g_loop, 0, 1, &g_sem), 0);
	ck_assert_int_eq(tide_semaphore_locked(g_sem), 1);
	ck_assert_int_eq(tide_semaphore_release(g_sem), -EOVERFLOW);
	tide_semaphore_free(g_sem);
	return 0;
}

START_TEST(test_bounded_semaphore)
{
	run_main(bounded_main, 0);
}
END_TEST

/*
 * asyncio test_acquire_cancel_before_awoken / test_acquire_cancel_after_awoken
 * (gh-90155): the unit given to a waiter that is then cancelled goes to the
 * next one; a cancelled waiter is skipped.
 */
static int64_t sem_cancel_main(void *arg)
{
	int mode = (int)(intptr_t)arg;
	struct tide_future *a, *b, *c;
	static const int want[] = { 2, 3 };

	ck_assert_int_eq(tide_semaphore_new(g_loop, 0, 0, &g_sem), 0);
	a = tt_spawn(g_loop, sem_worker, (void *)(intptr_t)1);
	b = tt_spawn(g_loop, sem_worker, (void *)(intptr_t)2);
	c = tt_spawn(g_loop, sem_worker, (void *)(intptr_t)3);
	settle(3);
	if (mode == 0) {
		ck_assert_int_eq(tide_task_cancel(a), 1);
		ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	} else {
		ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
		ck_assert_int_eq(tide_task_cancel(a), 1);
	}
	ck_assert_int_eq(tt_join(a), -ECANCELED);
	ck_assert_int_eq(tt_join(b), 2);
	ck_assert_uint_eq(tide_semaphore_value(g_sem), 0);
	ck_assert_int_eq(tide_future_done(c), 0);
	ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	ck_assert_int_eq(tt_join(c), 3);
	check_order(want, 2);
	ck_assert_uint_eq(tide_semaphore_value(g_sem), 0);
	ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	ck_assert_uint_eq(tide_semaphore_value(g_sem), 1);
	tide_semaphore_free(g_sem);
	return 0;
}

START_TEST(test_semaphore_cancel_waiter)
{
	run_main(sem_cancel_main, 0);
}
END_TEST

START_TEST(test_semaphore_cancel_after_wake)
{
	run_main(sem_cancel_main, 1);
}
END_TEST

/*
 * asyncio test_acquire_no_hang / test_acquire_fifo_order_3: two units
 * released at once while the first waiter is cancelled: both remaining
 * waiters get one.
 */
static int64_t sem_two_units_main(void *arg)
{
	struct tide_future *t[3];

	(void)arg;
	ck_assert_int_eq(tide_semaphore_new(g_loop, 0, 0, &g_sem), 0);
	for (int i = 0; i < 3; i++)
		t[i] = tt_spawn(g_loop, sem_worker, (void *)(intptr_t)i);
	settle(3);
	ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	ck_assert_int_eq(tide_semaphore_release(g_sem), 0);
	ck_assert_int_eq(tide_task_cancel(t[0]), 1);
	ck_assert_int_eq(tt_join(t[0]), -ECANCELED);
	ck_assert_int_eq(tt_join(t[1]), 1);
	ck_assert_int_eq(tt_join(t[2]), 2);
	ck_assert_uint_eq(tide_semaphore_value(g_sem), 0);
	tide_semaphore_free(g_sem);
	return 0;
}

START_TEST(test_semaphore_cancel_two_units)
{
	run_main(sem_two_units_main, 0);
}
END_TEST

/* --------------------------------------------------------------- Queue -- */

static struct tide_queue *g_q;

static int64_t getter(void *arg)
{
	void *item = NULL;
	int r;

	(void)arg;
	r = tide_queue_get(g_q, &item);
	if (r < 0)
		return r;
	rec((int)(intptr_t)item);
	return (intptr_t)item;
}

static int64_t putter(void *arg)
{
	int r = tide_queue_put(g_q, arg, 0);

	if (r < 0)
		return r;
	rec((int)(intptr_t)arg);
	return (intptr_t)arg;
}

/* asyncio test_nonblocking_get/put, test_get_nowait_empty (QueueEmpty), test_put_nowait_full (QueueFull). */
static int64_t queue_nowait_main(void *arg)
{
	void *item = NULL;

	(void)arg;
	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_FIFO, 2, &g_q), 0);
	ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), TIDE_EQUEUE_EMPTY);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)1, 0), 0);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)2, 0), 0);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)3, 0), TIDE_EQUEUE_FULL);
	ck_assert_uint_eq(tide_queue_size(g_q), 2);
	ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
	ck_assert_ptr_eq(item, (void *)1);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, NULL, 0), 0);
	ck_assert_int_eq(tide_queue_get(g_q, &item), 0);
	ck_assert_ptr_eq(item, (void *)2);
	ck_assert_int_eq(tide_queue_get(g_q, &item), 0);
	ck_assert_ptr_null(item);
	ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), TIDE_EQUEUE_EMPTY);
	ck_assert_uint_eq(tide_queue_size(g_q), 0);
	ck_assert_str_ne(tide_strerror(TIDE_EQUEUE_FULL), tide_strerror(TIDE_EQUEUE_EMPTY));
	tide_queue_free(g_q);
	return 0;
}

START_TEST(test_queue_nowait)
{
	run_main(queue_nowait_main, 0);
}
END_TEST

/* LIFO order, and a FIFO ring that wraps and grows past its first size. */
static int64_t queue_lifo_ring_main(void *arg)
{
	void *item;
	uintptr_t next_put = 0, next_get = 0;

	(void)arg;
	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_LIFO, 0, &g_q), 0);
	for (uintptr_t i = 0; i < 100; i++)
		ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)i, 0), 0);
	for (uintptr_t i = 100; i-- > 0;) {
		ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
		ck_assert_ptr_eq(item, (void *)i);
	}
	tide_queue_free(g_q);

	/* maxsize 13: grows 8 -> 13 while wrapped. */
	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_FIFO, 13, &g_q), 0);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)next_put++, 0), 0);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
		ck_assert_ptr_eq(item, (void *)next_get++);
	}
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)next_put++, 0), 0);
	ck_assert_uint_eq(tide_queue_size(g_q), 13);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)next_put, 0), TIDE_EQUEUE_FULL);
	/* Then a random walk, checked against the counters. */
	for (int i = 0; i < 20000; i++) {
		if (rng() % 2) {
			int r = tide_queue_put_nowait(g_q, (void *)next_put, 0);

			if (tide_queue_size(g_q) == 13 && r == TIDE_EQUEUE_FULL)
				continue;
			ck_assert_int_eq(r, 0);
			next_put++;
		} else if (next_get < next_put) {
			ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
			ck_assert_ptr_eq(item, (void *)next_get++);
		} else {
			ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), TIDE_EQUEUE_EMPTY);
		}
		ck_assert_uint_eq(tide_queue_size(g_q), next_put - next_get);
	}
	tide_queue_free(g_q);

	/* Unbounded: wraps, then doubles while wrapped. */
	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_FIFO, 0, &g_q), 0);
	next_put = next_get = 0;
	for (int round = 0; round < 200; round++) {
		int puts = (int)(rng() % 40), gets = (int)(rng() % 40);

		for (int i = 0; i < puts; i++)
			ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)next_put++, 0), 0);
		for (int i = 0; i < gets && next_get < next_put; i++) {
			ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
			ck_assert_ptr_eq(item, (void *)next_get++);
		}
	}
	while (next_get < next_put) {
		ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
		ck_assert_ptr_eq(item, (void *)next_get++);
	}
	tide_queue_free(g_q);
	return 0;
}

START_TEST(test_queue_lifo_and_ring)
{
	run_main(queue_lifo_ring_main, 0);
}
END_TEST

/* asyncio PriorityQueue: lowest first, and (beyond heapq) FIFO among equals. */
#define PQ_N 600
static int64_t queue_priority_main(void *arg)
{
	static int64_t prio[PQ_N];
	static bool present[PQ_N];
	void *item;
	int n = 0, inq = 0;

	(void)arg;
	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_PRIORITY, 0, &g_q), 0);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)1, 5), 0);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)2, -3), 0);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)3, 5), 0);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)4, INT64_MIN), 0);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)5, -3), 0);
	{
		static const uintptr_t want[] = { 4, 2, 5, 1, 3 };

		for (int i = 0; i < 5; i++) {
			ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
			ck_assert_ptr_eq(item, (void *)want[i]);
		}
	}
	/* Random interleaving against a linear-scan reference. */
	memset(present, 0, sizeof(present));
	while (n < PQ_N || inq > 0) {
		if (n < PQ_N && (inq == 0 || rng() % 3 != 0)) {
			prio[n] = (int64_t)(rng() % 20) - 10;
			present[n] = true;
			ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)(intptr_t)n, prio[n]), 0);
			n++;
			inq++;
		} else {
			int best = -1;

			for (int i = 0; i < n; i++)
				if (present[i] && (best < 0 || prio[i] < prio[best]))
					best = i; /* first of the lowest: FIFO among equals */
			ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
			ck_assert_int_eq((int)(intptr_t)item, best);
			present[best] = false;
			inq--;
		}
		ck_assert_uint_eq(tide_queue_size(g_q), (size_t)inq);
	}
	tide_queue_free(g_q);
	return 0;
}

START_TEST(test_queue_priority)
{
	run_main(queue_priority_main, 0);
}
END_TEST

/* asyncio test_blocking_put_wait, test_get_with_putters: put blocks while full; FIFO among putters. */
static int puts_done;

static int64_t producer(void *arg)
{
	int n = (int)(intptr_t)arg;

	for (int i = 0; i < n; i++) {
		int r = tide_queue_put(g_q, (void *)(intptr_t)i, 0);

		if (r < 0)
			return r;
		puts_done++;
	}
	return 0;
}

static int64_t queue_blocking_put_main(void *arg)
{
	struct tide_future *p, *t[3];
	void *item;
	static const int want[] = { 10, 11, 12 };

	(void)arg;
	puts_done = 0;
	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_FIFO, 2, &g_q), 0);
	p = tt_spawn(g_loop, producer, (void *)(intptr_t)10);
	settle(3);
	ck_assert_int_eq(puts_done, 2);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(tide_queue_get(g_q, &item), 0);
		ck_assert_ptr_eq(item, (void *)(intptr_t)i);
		settle(2);
		ck_assert_int_eq(puts_done, i + 3 > 10 ? 10 : i + 3);
	}
	ck_assert_int_eq(tt_join(p), 0);
	ck_assert_uint_eq(tide_queue_size(g_q), 0);
	/* Several putters on a full queue go in arrival order. */
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)1, 0), 0);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)2, 0), 0);
	for (int i = 0; i < 3; i++)
		t[i] = tt_spawn(g_loop, putter, (void *)(intptr_t)10 + i);
	settle(3);
	ck_assert_int_eq(norder, 0);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(tide_queue_get(g_q, &item), 0);
		ck_assert_ptr_eq(item, (void *)(intptr_t)(i < 2 ? i + 1 : 10 + i - 2));
		settle(2);
	}
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tt_join(t[i]), 10 + i);
	check_order(want, 3);
	tide_queue_free(g_q);
	return 0;
}

START_TEST(test_queue_blocking_put)
{
	run_main(queue_blocking_put_main, 0);
}
END_TEST

/* asyncio test_get_with_waiting_putters / test_blocking_get_wait: FIFO among getters. */
static int64_t queue_getters_main(void *arg)
{
	struct tide_future *t[4];
	static const int want[] = { 100, 101, 102, 103 };

	(void)arg;
	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_FIFO, 0, &g_q), 0);
	for (int i = 0; i < 4; i++)
		t[i] = tt_spawn(g_loop, getter, (void *)(intptr_t)i);
	settle(3);
	ck_assert_int_eq(norder, 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(tide_queue_put(g_q, (void *)(intptr_t)(100 + i), 0), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(tt_join(t[i]), 100 + i);
	check_order(want, 4);
	tide_queue_free(g_q);
	return 0;
}

START_TEST(test_queue_getters_fifo)
{
	run_main(queue_getters_main, 0);
}
END_TEST

/*
 * asyncio test_get_cancelled_race and test_cancelled_getters_not_being_held
 * _in_self_getters: a getter cancelled before (mode 0) or after (mode 1) an
 * item was meant for it leaves the item to the next getter.
 */
static int64_t queue_getter_cancel_main(void *arg)
{
	int mode = (int)(intptr_t)arg;
	struct tide_future *g1, *g2;
	static const int want[] = { 7 };

	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_FIFO, 0, &g_q), 0);
	g1 = tt_spawn(g_loop, getter, (void *)(intptr_t)0);
	g2 = tt_spawn(g_loop, getter, (void *)(intptr_t)0);
	settle(3);
	if (mode == 0) {
		ck_assert_int_eq(tide_task_cancel(g1), 1);
		ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)7, 0), 0);
	} else {
		ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)7, 0), 0);
		ck_assert_int_eq(tide_task_cancel(g1), 1);
	}
	ck_assert_int_eq(tt_join(g1), -ECANCELED);
	ck_assert_int_eq(tt_join(g2), 7);
	check_order(want, 1);
	ck_assert_uint_eq(tide_queue_size(g_q), 0);
	tide_queue_free(g_q);
	return 0;
}

START_TEST(test_queue_getter_cancel)
{
	run_main(queue_getter_cancel_main, 0);
}
END_TEST

START_TEST(test_queue_getter_cancel_after_wake)
{
	run_main(queue_getter_cancel_main, 1);
}
END_TEST

/* asyncio test_put_cancelled_race / test_cancelled_puts_not_being_held_in_self_putters. */
static int64_t queue_putter_cancel_main(void *arg)
{
	int mode = (int)(intptr_t)arg;
	struct tide_future *p1, *p2;
	void *item;
	static const int want[] = { 2 };

	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_FIFO, 1, &g_q), 0);
	ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)9, 0), 0);
	p1 = tt_spawn(g_loop, putter, (void *)(intptr_t)1);
	p2 = tt_spawn(g_loop, putter, (void *)(intptr_t)2);
	settle(3);
	if (mode == 0) {
		ck_assert_int_eq(tide_task_cancel(p1), 1);
		ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
	} else {
		ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
		ck_assert_int_eq(tide_task_cancel(p1), 1);
	}
	ck_assert_ptr_eq(item, (void *)9);
	ck_assert_int_eq(tt_join(p1), -ECANCELED);
	ck_assert_int_eq(tt_join(p2), 2);
	check_order(want, 1);
	ck_assert_uint_eq(tide_queue_size(g_q), 1);
	ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
	ck_assert_ptr_eq(item, (void *)2);
	tide_queue_free(g_q);
	return 0;
}

START_TEST(test_queue_putter_cancel)
{
	run_main(queue_putter_cancel_main, 0);
}
END_TEST

START_TEST(test_queue_putter_cancel_after_wake)
{
	run_main(queue_putter_cancel_main, 1);
}
END_TEST

/* asyncio test_task_done, test_join_empty_queue, test_task_done_underflow. */
static int joined;

static int64_t joiner(void *arg)
{
	int r;

	(void)arg;
	r = tide_queue_join(g_q);
	if (r < 0)
		return r;
	joined++;
	return 0;
}

static int64_t worker_done(void *arg)
{
	void *item;

	(void)arg;
	for (;;) {
		int r = tide_queue_get(g_q, &item);

		if (r < 0)
			return r;
		ck_assert_int_eq(tide_sleep(0.001), 0);
		ck_assert_int_eq(tide_queue_task_done(g_q), 0);
	}
}

static int64_t queue_join_main(void *arg)
{
	struct tide_future *j[2], *w[2];

	(void)arg;
	joined = 0;
	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_FIFO, 0, &g_q), 0);
	ck_assert_int_eq(tide_queue_task_done(g_q), -EOVERFLOW);
	ck_assert_int_eq(tide_queue_join(g_q), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(tide_queue_put_nowait(g_q, (void *)(intptr_t)(i + 1), 0), 0);
	j[0] = tt_spawn(g_loop, joiner, (void *)(intptr_t)0);
	j[1] = tt_spawn(g_loop, joiner, (void *)(intptr_t)0);
	settle(2);
	ck_assert_int_eq(joined, 0);
	w[0] = tt_spawn(g_loop, worker_done, (void *)(intptr_t)0);
	w[1] = tt_spawn(g_loop, worker_done, (void *)(intptr_t)0);
	ck_assert_int_eq(tide_queue_join(g_q), 0);
	ck_assert_uint_eq(tide_queue_size(g_q), 0);
	ck_assert_int_eq(tt_join(j[0]), 0);
	ck_assert_int_eq(tt_join(j[1]), 0);
	ck_assert_int_eq(joined, 2);
	ck_assert_int_eq(tide_queue_task_done(g_q), -EOVERFLOW);
	/* The workers wait for more: cancelling them is how they end. */
	tide_task_cancel(w[0]);
	tide_task_cancel(w[1]);
	ck_assert_int_eq(tt_join(w[0]), -ECANCELED);
	ck_assert_int_eq(tt_join(w[1]), -ECANCELED);
	tide_queue_free(g_q);
	return 0;
}

START_TEST(test_queue_task_done_join)
{
	run_main(queue_join_main, 0);
}
END_TEST

/* ------------------------------------------------------------- Barrier -- */

static struct tide_barrier *g_barrier;

static int64_t barrier_worker(void *arg)
{
	int r;

	(void)arg;
	r = tide_barrier_wait(g_barrier);
	if (r >= 0)
		rec(r);
	return r;
}

/* asyncio test_wait_task_multi / test_filling_tasks_wait_twice: indices 0..n-1, reusable. */
static int64_t barrier_indices_main(void *arg)
{
	struct tide_future *t[4];
	/* The last to arrive returns first; the others leave in arrival order. */
	static const int want[] = { 3, 0, 1, 2, 3, 0, 1, 2 };

	(void)arg;
	ck_assert_int_eq(tide_barrier_new(g_loop, 1, &g_barrier), 0);
	ck_assert_int_eq(tide_barrier_wait(g_barrier), 0);
	ck_assert_int_eq(tide_barrier_wait(g_barrier), 0);
	tide_barrier_free(g_barrier);

	ck_assert_int_eq(tide_barrier_new(g_loop, 4, &g_barrier), 0);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 4; i++)
			t[i] = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)i);
		for (int i = 0; i < 4; i++)
			ck_assert_int_eq(tt_join(t[i]), i);
	}
	check_order(want, 8);
	tide_barrier_free(g_barrier);
	return 0;
}

START_TEST(test_barrier_indices)
{
	run_main(barrier_indices_main, 0);
}
END_TEST

/*
 * asyncio test_draining_state: a party arriving while the last round
 * drains waits for the next round instead of joining the old one.
 */
static int64_t barrier_again(void *arg)
{
	int first, second;

	(void)arg;
	first = tide_barrier_wait(g_barrier);
	if (first < 0)
		return first;
	second = tide_barrier_wait(g_barrier);
	if (second < 0)
		return second;
	return first * 10 + second;
}

static int64_t barrier_draining_main(void *arg)
{
	struct tide_future *a, *b, *c;

	(void)arg;
	ck_assert_int_eq(tide_barrier_new(g_loop, 2, &g_barrier), 0);
	a = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0); /* index 0, waits */
	b = tt_spawn(g_loop, barrier_again, (void *)(intptr_t)0);  /* index 1 releases, then arrives again at once */
	c = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0);
	ck_assert_int_eq(tt_join(a), 0);
	/* b's second wait blocked while a drained: it is index 0 of round two, c index 1. */
	ck_assert_int_eq(tt_join(b), 10);
	ck_assert_int_eq(tt_join(c), 1);
	tide_barrier_free(g_barrier);
	return 0;
}

START_TEST(test_barrier_draining)
{
	run_main(barrier_draining_main, 0);
}
END_TEST

/* asyncio test_abort_barrier / test_reset_barrier / test_abort_and_reset. */
static int64_t barrier_abort_reset_main(void *arg)
{
	struct tide_future *t[3];

	(void)arg;
	ck_assert_int_eq(tide_barrier_new(g_loop, 3, &g_barrier), 0);
	/* abort: the waiters and every later wait are broken until reset. */
	t[0] = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0);
	t[1] = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0);
	settle(2);
	ck_assert_int_eq(tide_barrier_abort(g_barrier), 0);
	ck_assert_int_eq(tt_join(t[0]), TIDE_EBROKEN_BARRIER);
	ck_assert_int_eq(tt_join(t[1]), TIDE_EBROKEN_BARRIER);
	ck_assert_int_eq(tide_barrier_wait(g_barrier), TIDE_EBROKEN_BARRIER);
	ck_assert_int_eq(tide_barrier_reset(g_barrier), 0);
	for (int i = 0; i < 3; i++)
		t[i] = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tt_join(t[i]), i);
	/* reset with parties inside: they are broken, and the barrier is usable again. */
	t[0] = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0);
	t[1] = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0);
	settle(2);
	ck_assert_int_eq(tide_barrier_reset(g_barrier), 0);
	ck_assert_int_eq(tt_join(t[0]), TIDE_EBROKEN_BARRIER);
	ck_assert_int_eq(tt_join(t[1]), TIDE_EBROKEN_BARRIER);
	for (int i = 0; i < 3; i++)
		t[i] = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tt_join(t[i]), i);
	/*
	 * A cancelled party leaves the count, not the barrier broken (unlike
	 * threading.Barrier). The index is the count at arrival, so, as in
	 * asyncio, the party after a cancelled one may share its index.
	 */
	t[0] = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0);
	t[1] = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0);
	settle(2);
	ck_assert_int_eq(tide_task_cancel(t[0]), 1);
	ck_assert_int_eq(tt_join(t[0]), -ECANCELED);
	t[0] = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0);
	t[2] = tt_spawn(g_loop, barrier_worker, (void *)(intptr_t)0);
	ck_assert_int_eq(tt_join(t[1]), 1);
	ck_assert_int_eq(tt_join(t[0]), 1);
	ck_assert_int_eq(tt_join(t[2]), 2);
	tide_barrier_free(g_barrier);
	return 0;
}

START_TEST(test_barrier_abort_reset)
{
	run_main(barrier_abort_reset_main, 0);
}
END_TEST

/* ------------------------------------------------- free, bad arguments -- */

static struct tide_condition *g_cond2;

static int64_t cond2_worker(void *arg)
{
	struct tide_lock *lock = tide_condition_lock(g_cond2);

	(void)arg;
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	return tide_condition_wait(g_cond2);
}

/* Freeing a primitive that tasks wait on ends their waits with TIDE_ECLOSED. */
static int64_t free_waited_main(void *arg)
{
	struct tide_future *t[5];
	struct tide_lock *lock;

	(void)arg;
	ck_assert_int_eq(tide_lock_new(g_loop, &g_lock), 0);
	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_FIFO, 0, &g_q), 0);
	ck_assert_int_eq(tide_event_new(g_loop, &g_event), 0);
	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &g_cond2), 0);
	ck_assert_int_eq(tide_lock_acquire(g_lock), 0);
	t[0] = tt_spawn(g_loop, lock_worker, (void *)(intptr_t)1);
	t[1] = tt_spawn(g_loop, getter, (void *)(intptr_t)0);
	t[2] = tt_spawn(g_loop, event_worker, (void *)(intptr_t)0);
	t[3] = tt_spawn(g_loop, cond2_worker, (void *)(intptr_t)0);
	t[4] = tt_spawn(g_loop, lock_worker, (void *)(intptr_t)2);
	settle(3);
	lock = tide_condition_lock(g_cond2);
	ck_assert_int_eq(tide_lock_acquire(lock), 0);
	tide_lock_free(g_lock);
	tide_queue_free(g_q);
	tide_event_free(g_event);
	tide_condition_free(g_cond2);
	ck_assert_int_eq(tt_join(t[0]), TIDE_ECLOSED);
	ck_assert_int_eq(tt_join(t[1]), TIDE_ECLOSED);
	ck_assert_int_eq(tt_join(t[2]), TIDE_ECLOSED);
	ck_assert_int_eq(tt_join(t[3]), TIDE_ECLOSED);
	ck_assert_int_eq(tt_join(t[4]), TIDE_ECLOSED);
	return 0;
}

START_TEST(test_free_with_waiters)
{
	run_main(free_waited_main, 0);
}
END_TEST

/* NULL is -EINVAL (predicates: 0), and waiting outside a task is TIDE_ENOT_IN_TASK. */
START_TEST(test_bad_arguments)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_lock *l = NULL, *l2 = NULL;
	struct tide_event *e = NULL;
	struct tide_condition *c = NULL;
	struct tide_semaphore *s = NULL;
	struct tide_queue *q = NULL;
	struct tide_barrier *b = NULL;
	void *item = NULL;

	ck_assert_int_eq(tide_lock_new(NULL, &l), -EINVAL);
	ck_assert_int_eq(tide_lock_new(loop, NULL), -EINVAL);
	ck_assert_int_eq(tide_lock_acquire(NULL), -EINVAL);
	ck_assert_int_eq(tide_lock_release(NULL), -EINVAL);
	ck_assert_int_eq(tide_lock_locked(NULL), 0);
	tide_lock_free(NULL);
	ck_assert_int_eq(tide_event_new(NULL, &e), -EINVAL);
	ck_assert_int_eq(tide_event_wait(NULL), -EINVAL);
	tide_event_set(NULL);
	tide_event_clear(NULL);
	ck_assert_int_eq(tide_event_is_set(NULL), 0);
	tide_event_free(NULL);
	ck_assert_int_eq(tide_condition_new(NULL, NULL, &c), -EINVAL);
	ck_assert_int_eq(tide_condition_new(loop, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_condition_wait(NULL), -EINVAL);
	ck_assert_int_eq(tide_condition_notify(NULL, 1), -EINVAL);
	ck_assert_int_eq(tide_condition_notify_all(NULL), -EINVAL);
	ck_assert_ptr_null(tide_condition_lock(NULL));
	tide_condition_free(NULL);
	ck_assert_int_eq(tide_semaphore_new(NULL, 1, 0, &s), -EINVAL);
	ck_assert_int_eq(tide_semaphore_acquire(NULL), -EINVAL);
	ck_assert_int_eq(tide_semaphore_release(NULL), -EINVAL);
	ck_assert_int_eq(tide_semaphore_locked(NULL), 0);
	ck_assert_uint_eq(tide_semaphore_value(NULL), 0);
	tide_semaphore_free(NULL);
	ck_assert_int_eq(tide_queue_new(NULL, TIDE_QUEUE_FIFO, 0, &q), -EINVAL);
	ck_assert_int_eq(tide_queue_new(loop, (enum tide_queue_kind)7, 0, &q), -EINVAL);
	ck_assert_int_eq(tide_queue_put(NULL, NULL, 0), -EINVAL);
	ck_assert_int_eq(tide_queue_get(NULL, &item), -EINVAL);
	ck_assert_int_eq(tide_queue_put_nowait(NULL, NULL, 0), -EINVAL);
	ck_assert_int_eq(tide_queue_get_nowait(NULL, &item), -EINVAL);
	ck_assert_uint_eq(tide_queue_size(NULL), 0);
	ck_assert_int_eq(tide_queue_task_done(NULL), -EINVAL);
	ck_assert_int_eq(tide_queue_join(NULL), -EINVAL);
	tide_queue_free(NULL);
	ck_assert_int_eq(tide_barrier_new(NULL, 2, &b), -EINVAL);
	ck_assert_int_eq(tide_barrier_new(loop, 0, &b), -EINVAL);
	ck_assert_int_eq(tide_barrier_wait(NULL), -EINVAL);
	ck_assert_int_eq(tide_barrier_abort(NULL), -EINVAL);
	ck_assert_int_eq(tide_barrier_reset(NULL), -EINVAL);
	tide_barrier_free(NULL);

	/* Outside a task: what needs no wait works, what would wait refuses. */
	ck_assert_int_eq(tide_lock_new(loop, &l), 0);
	ck_assert_int_eq(tide_lock_acquire(l), 0);
	ck_assert_int_eq(tide_lock_acquire(l), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_lock_locked(l), 1);
	ck_assert_int_eq(tide_lock_release(l), 0);
	ck_assert_int_eq(tide_condition_new(loop, l, &c), 0);
	ck_assert_int_eq(tide_lock_acquire(l), 0);
	ck_assert_int_eq(tide_condition_wait(c), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_lock_locked(l), 1); /* not let go on the way */
	ck_assert_int_eq(tide_condition_notify(c, 3), 0);
	ck_assert_int_eq(tide_lock_release(l), 0);
	tide_condition_free(c);
	c = NULL;
	ck_assert_int_eq(tide_event_new(loop, &e), 0);
	ck_assert_int_eq(tide_event_wait(e), TIDE_ENOT_IN_TASK);
	tide_event_set(e);
	ck_assert_int_eq(tide_event_wait(e), 0);
	ck_assert_int_eq(tide_semaphore_new(loop, 1, 1, &s), 0);
	ck_assert_int_eq(tide_semaphore_acquire(s), 0);
	ck_assert_int_eq(tide_semaphore_acquire(s), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_semaphore_release(s), 0);
	ck_assert_int_eq(tide_queue_new(loop, TIDE_QUEUE_FIFO, 1, &q), 0);
	ck_assert_int_eq(tide_queue_get(q, NULL), -EINVAL);
	ck_assert_int_eq(tide_queue_get_nowait(q, NULL), -EINVAL);
	ck_assert_int_eq(tide_queue_get(q, &item), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_queue_put(q, (void *)1, 0), 0);
	ck_assert_int_eq(tide_queue_put(q, (void *)2, 0), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_queue_join(q), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_barrier_new(loop, 2, &b), 0);
	ck_assert_int_eq(tide_barrier_wait(b), TIDE_ENOT_IN_TASK);
	/* A condition's lock must belong to the same loop. */
	{
		struct tide_loop *other = tt_loop_new();

		ck_assert_int_eq(tide_lock_new(other, &l2), 0);
		ck_assert_int_eq(tide_condition_new(loop, l2, &c), -EINVAL);
		ck_assert_ptr_null(c);
		tide_lock_free(l2);
		ck_assert_int_eq(tide_loop_free(other), 0);
	}
	tide_lock_free(l);
	tide_event_free(e);
	tide_semaphore_free(s);
	tide_queue_free(q);
	tide_barrier_free(b);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ---------------------------------------------------------- the storm -- */

/*
 * ST_N tasks cycle through a lock, a bounded semaphore, a bounded queue
 * (as producers and consumers) and a condition (posting and taking
 * tickets) while a canceller task cancels random ones; some handle the
 * first cancellation (uncancel) and go on. Then every task still alive is
 * cancelled until none is. Checked: mutual exclusion throughout, every
 * task done exactly once, and nothing swallowed at the end: the lock is
 * free, the semaphore whole, every item put is got or still queued, every
 * ticket posted is taken or still there.
 */
#define ST_N 240
#define ST_ITERS 40
#define ST_SEM 3

static struct tide_lock *st_lock;
static struct tide_semaphore *st_sem;
static struct tide_queue *st_q;
static struct tide_condition *st_cond;
static struct tide_future *st_tasks[ST_N];
static int st_done_calls[ST_N];
static struct tide_future *st_lock_owner, *st_cond_owner;
static int st_sem_holders, st_sweeping;
static long st_puts, st_gets, st_tickets, st_posted, st_taken, st_handled;

static void st_done_cb(struct tide_future *f, void *arg)
{
	(void)f;
	st_done_calls[(intptr_t)arg]++;
}

static int st_condition_step(struct tide_future *me, int post)
{
	struct tide_lock *lock = tide_condition_lock(st_cond);
	int r = tide_lock_acquire(lock);

	if (r)
		return r;
	ck_assert_ptr_null(st_cond_owner);
	st_cond_owner = me;
	if (post) {
		st_tickets++;
		st_posted++;
		ck_assert_int_ge(tide_condition_notify(st_cond, 1), 0);
	} else {
		while (st_tickets == 0 && r == 0) {
			st_cond_owner = NULL;
			r = tide_condition_wait(st_cond);
			/* Held again, whatever wait returned. */
			ck_assert_int_eq(tide_lock_locked(lock), 1);
			ck_assert_ptr_null(st_cond_owner);
			st_cond_owner = me;
		}
		if (r == 0) {
			st_tickets--;
			st_taken++;
		}
	}
	st_cond_owner = NULL;
	ck_assert_int_eq(tide_lock_release(lock), 0);
	return r;
}

static int64_t st_worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	struct tide_future *me = tide_current_task();
	bool handled = false;
	void *item;

	for (int it = 0; it < ST_ITERS; it++) {
		int r = 0;

		switch ((id + it) % 6) {
		case 0:
			r = tide_lock_acquire(st_lock);
			if (r == 0) {
				ck_assert_ptr_null(st_lock_owner);
				st_lock_owner = me;
				r = tide_yield(); /* cancellable while holding it */
				ck_assert_ptr_eq(st_lock_owner, me);
				st_lock_owner = NULL;
				ck_assert_int_eq(tide_lock_release(st_lock), 0);
			}
			break;
		case 1:
			r = tide_semaphore_acquire(st_sem);
			if (r == 0) {
				ck_assert_int_lt(st_sem_holders, ST_SEM);
				st_sem_holders++;
				r = tide_sleep(rng() % 2 ? 0.0002 : 0);
				st_sem_holders--;
				ck_assert_int_eq(tide_semaphore_release(st_sem), 0);
			}
			break;
		case 2:
			r = tide_queue_put(st_q, (void *)(intptr_t)(id + 1), 0);
			if (r == 0)
				st_puts++;
			break;
		case 3:
			r = tide_queue_get(st_q, &item);
			if (r == 0) {
				ck_assert_ptr_nonnull(item);
				st_gets++;
				ck_assert_int_eq(tide_queue_task_done(st_q), 0);
			}
			break;
		case 4:
		case 5:
			r = st_condition_step(me, (id + it) % 6 == 4);
			break;
		}
		if (r == -ECANCELED) {
			if (!st_sweeping && !handled && id % 3 == 0) {
				/* Handle it and go on, as a task may. */
				handled = true;
				st_handled++;
				tide_task_uncancel(me);
				continue;
			}
			return -ECANCELED;
		}
		ck_assert_int_eq(r, 0);
	}
	return id;
}

static int64_t st_canceller(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3000; i++) {
		struct tide_future *t = st_tasks[rng() % ST_N];

		if (!tide_future_done(t))
			tide_task_cancel(t);
		if (rng() % 4 == 0)
			ck_assert_int_eq(tide_sleep(0.0001), 0);
		else
			ck_assert_int_eq(tide_yield(), 0);
	}
	return 0;
}

static int64_t storm_main(void *arg)
{
	int finished = 0, cancelled = 0;
	struct tide_future *c;
	void *item;

	(void)arg;
	/* Fresh counters (CK_FORK=no runs every configuration in one process). */
	memset(st_done_calls, 0, sizeof(st_done_calls));
	st_lock_owner = st_cond_owner = NULL;
	st_sem_holders = st_sweeping = 0;
	st_puts = st_gets = st_tickets = st_posted = st_taken = st_handled = 0;
	ck_assert_int_eq(tide_lock_new(g_loop, &st_lock), 0);
	ck_assert_int_eq(tide_semaphore_new(g_loop, ST_SEM, 1, &st_sem), 0);
	ck_assert_int_eq(tide_queue_new(g_loop, TIDE_QUEUE_FIFO, 4, &st_q), 0);
	ck_assert_int_eq(tide_condition_new(g_loop, NULL, &st_cond), 0);
	for (int i = 0; i < ST_N; i++) {
		st_tasks[i] = tt_spawn(g_loop, st_worker, (void *)(intptr_t)i);
		ck_assert_int_eq(tide_future_add_done_callback(st_tasks[i], st_done_cb, (void *)(intptr_t)i), 0);
	}
	c = tt_spawn(g_loop, st_canceller, (void *)(intptr_t)0);
	ck_assert_int_eq(tt_join(c), 0);
	/* Whatever still runs or waits is cancelled until it is done. */
	st_sweeping = 1;
	for (;;) {
		int alive = 0;

		for (int i = 0; i < ST_N; i++) {
			if (!tide_future_done(st_tasks[i])) {
				alive++;
				tide_task_cancel(st_tasks[i]);
			}
		}
		if (!alive)
			break;
		ck_assert_int_eq(tide_sleep(0.0005), 0);
	}
	for (int i = 0; i < ST_N; i++) {
		int64_t r = tt_join(st_tasks[i]);

		ck_assert_msg(r == i || r == -ECANCELED, "task %d: %lld", i, (long long)r);
		if (r == i)
			finished++;
		else
			cancelled++;
	}
	settle(2);
	for (int i = 0; i < ST_N; i++)
		ck_assert_msg(st_done_calls[i] == 1, "task %d done %d times", i, st_done_calls[i]);
	ck_assert_uint_eq(tide_all_tasks(g_loop, NULL, 0), 1); /* this one */
	/* Nothing swallowed. */
	ck_assert_int_eq(tide_lock_locked(st_lock), 0);
	ck_assert_ptr_null(st_lock_owner);
	ck_assert_uint_eq(tide_semaphore_value(st_sem), ST_SEM);
	ck_assert_int_eq(tide_semaphore_locked(st_sem), 0);
	ck_assert_int_eq(tide_lock_locked(tide_condition_lock(st_cond)), 0);
	ck_assert_int_eq(st_posted - st_taken, st_tickets);
	ck_assert_int_eq(st_puts, st_gets + (long)tide_queue_size(st_q));
	while (tide_queue_get_nowait(st_q, &item) == 0)
		ck_assert_int_eq(tide_queue_task_done(st_q), 0);
	ck_assert_int_eq(tide_queue_join(st_q), 0);
	printf("%s storm: %d finished, %d cancelled, %ld handled, %ld puts, %ld tickets\n",
	       tt_cfg->name, finished, cancelled, st_handled, st_puts, st_posted);
	ck_assert_int_gt(cancelled, 0);
	ck_assert_int_gt(st_puts, 0);
	tide_lock_free(st_lock);
	tide_semaphore_free(st_sem);
	tide_queue_free(st_q);
	tide_condition_free(st_cond);
	return 0;
}

START_TEST(test_cancel_storm)
{
	run_main(storm_main, 0);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "sync", 60);
	tt_add(&ts, test_lock_basic);
	tt_add(&ts, test_lock_fifo);
	tt_add(&ts, test_lock_no_barging);
	tt_add(&ts, test_lock_cancel_waiter);
	tt_add(&ts, test_lock_cancel_after_wake);
	tt_add(&ts, test_lock_cancel_release_race);
	tt_add(&ts, test_event);
	tt_add(&ts, test_condition_notify);
	tt_add(&ts, test_condition_cancel_reacquires);
	tt_add(&ts, test_condition_cancel_after_notify);
	tt_add(&ts, test_condition_cancel_before_notify);
	tt_add(&ts, test_semaphore_fifo);
	tt_add(&ts, test_bounded_semaphore);
	tt_add(&ts, test_semaphore_cancel_waiter);
	tt_add(&ts, test_semaphore_cancel_after_wake);
	tt_add(&ts, test_semaphore_cancel_two_units);
	tt_add(&ts, test_queue_nowait);
	tt_add(&ts, test_queue_lifo_and_ring);
	tt_add(&ts, test_queue_priority);
	tt_add(&ts, test_queue_blocking_put);
	tt_add(&ts, test_queue_getters_fifo);
	tt_add(&ts, test_queue_getter_cancel);
	tt_add(&ts, test_queue_getter_cancel_after_wake);
	tt_add(&ts, test_queue_putter_cancel);
	tt_add(&ts, test_queue_putter_cancel_after_wake);
	tt_add(&ts, test_queue_task_done_join);
	tt_add(&ts, test_barrier_indices);
	tt_add(&ts, test_barrier_draining);
	tt_add(&ts, test_barrier_abort_reset);
	tt_add(&ts, test_free_with_waiters);
	tt_add(&ts, test_bad_arguments);
	tt_add(&ts, test_cancel_storm);
	return tt_run(&ts);
}
