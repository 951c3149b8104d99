/* SPDX-License-Identifier: MIT */
/*
 * conformance/queues.c: CPython 3.11's Lib/test/test_asyncio/test_queues.py
 * ported to tide's queues (Queue, LifoQueue, PriorityQueue), each case
 * named test_queues__<python test>, run on every backend configuration.
 * test/conformance/README.md maps each Python test to its case.
 *
 * Each case's body is the Python test's coroutine: it runs as the main task
 * of a fresh loop (tt_run_main), and `await asyncio.sleep(0)` is
 * tide_sleep(0). Items are pointers: Python's ints and strings are small
 * integers cast to pointers (a PriorityQueue's item is also its priority).
 * tide has no full() nor empty(): empty() is tide_queue_size() == 0, and
 * full() is put_nowait's TIDE_EQUEUE_FULL. QueueFull and QueueEmpty are
 * TIDE_EQUEUE_FULL and TIDE_EQUEUE_EMPTY, task_done's ValueError
 * -EOVERFLOW. The tests of the join mixin, and test_order, which CPython
 * runs for each of the three classes, run here for each kind in one case.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../helpers.h"

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

/* An int item as a pointer, and back. */
#define I(v) ((void *)(intptr_t)(v))
#define V(p) ((int)(intptr_t)(p))

static const enum tide_queue_kind kinds[] = { TIDE_QUEUE_FIFO, TIDE_QUEUE_LIFO, TIDE_QUEUE_PRIORITY };

static struct tide_queue *new_queue(enum tide_queue_kind kind, size_t maxsize)
{
	struct tide_queue *q = NULL;

	ck_assert_int_eq(tide_queue_new(g_loop, kind, maxsize, &q), 0);
	return q;
}

static void put(struct tide_queue *q, int v)
{
	ck_assert_int_eq(tide_queue_put(q, I(v), v), 0);
}

static void put_nowait(struct tide_queue *q, int v)
{
	ck_assert_int_eq(tide_queue_put_nowait(q, I(v), v), 0);
}

static int get(struct tide_queue *q)
{
	void *item = NULL;

	ck_assert_int_eq(tide_queue_get(q, &item), 0);
	return V(item);
}

static int get_nowait(struct tide_queue *q)
{
	void *item = NULL;

	ck_assert_int_eq(tide_queue_get_nowait(q, &item), 0);
	return V(item);
}

static struct tide_queue *g_q;

/* q.get() as a task: the item as its value, or the error. */
static int64_t get_task(void *arg)
{
	void *item = NULL;
	int err = tide_queue_get(arg, &item);

	return err ? err : V(item);
}

/* q.put(item) as a task (arg is the item; the queue is g_q). */
static int64_t put_task(void *arg)
{
	return tide_queue_put(g_q, arg, V(arg));
}

/* ---------------------------------------------------- QueueBasicTests -- */

/* QueueBasicTests.test_empty */
MAIN_CASE(test_queues__test_empty)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 0);

	ck_assert_uint_eq(tide_queue_size(q), 0);
	put(q, 1);
	ck_assert_uint_ne(tide_queue_size(q), 0);
	ck_assert_int_eq(get(q), 1);
	ck_assert_uint_eq(tide_queue_size(q), 0);
	tide_queue_free(q);
	return 0;
}

/* QueueBasicTests.test_full: an unbounded queue is never full; one of
 * maxsize 1 is, once it holds an item. */
MAIN_CASE(test_queues__test_full)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 0);

	for (int i = 0; i < 100; i++)
		put_nowait(q, i);
	ck_assert_uint_eq(tide_queue_size(q), 100);
	tide_queue_free(q);

	q = new_queue(TIDE_QUEUE_FIFO, 1);
	put(q, 1);
	ck_assert_int_eq(tide_queue_put_nowait(q, I(2), 2), TIDE_EQUEUE_FULL);
	ck_assert_uint_eq(tide_queue_size(q), 1);
	ck_assert_int_eq(get_nowait(q), 1);
	tide_queue_free(q);
	return 0;
}

/* QueueBasicTests.test_order, LifoQueueTests.test_order and
 * PriorityQueueTests.test_order: 1, 3, 2 put come out 1 3 2 (FIFO),
 * 2 3 1 (LIFO), 1 2 3 (priority). */
MAIN_CASE(test_queues__test_order)
{
	static const int want[3][3] = { { 1, 3, 2 }, { 2, 3, 1 }, { 1, 2, 3 } };

	for (int k = 0; k < 3; k++) {
		struct tide_queue *q = new_queue(kinds[k], 0);

		put(q, 1);
		put(q, 3);
		put(q, 2);
		for (int i = 0; i < 3; i++)
			ck_assert_int_eq(get(q), want[k][i]);
		tide_queue_free(q);
	}
	return 0;
}

static int g_have_been_put[8];
static int g_nput;

static int64_t maxsize_putter(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++) {
		put(g_q, i);
		g_have_been_put[g_nput++] = i;
	}
	return 1;
}

/* QueueBasicTests.test_maxsize: the putter blocks after maxsize items
 * and resumes when one is taken. */
MAIN_CASE(test_queues__test_maxsize)
{
	struct tide_future *t;

	g_nput = 0;
	g_q = new_queue(TIDE_QUEUE_FIFO, 2);
	t = tt_spawn(g_loop, maxsize_putter, NULL);
	for (int i = 0; i < 2; i++)
		YIELD();
	/* The putter is blocked after putting two items. */
	ck_assert_int_eq(g_nput, 2);
	ck_assert_int_eq(g_have_been_put[0], 0);
	ck_assert_int_eq(g_have_been_put[1], 1);
	ck_assert_int_eq(get(g_q), 0);
	/* Let the putter resume and put the last item. */
	YIELD();
	ck_assert_int_eq(g_nput, 3);
	ck_assert_int_eq(g_have_been_put[2], 2);
	ck_assert_int_eq(get(g_q), 1);
	ck_assert_int_eq(get(g_q), 2);
	ck_assert_int_eq(tt_result(t), 1);
	tide_future_unref(t);
	tide_queue_free(g_q);
	return 0;
}

/* ------------------------------------------------------ QueueGetTests -- */

/* QueueGetTests.test_blocking_get: get() with an item returns it. */
MAIN_CASE(test_queues__test_blocking_get)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 0);

	put_nowait(q, 1);
	ck_assert_int_eq(get(q), 1);
	tide_queue_free(q);
	return 0;
}

/* QueueGetTests.test_get_with_putters: a get() from a full queue wakes
 * the putter waiting for room (Python plants a bare waiter future in the
 * private _putters; here a real putter waits). */
MAIN_CASE(test_queues__test_get_with_putters)
{
	struct tide_future *putter;

	g_q = new_queue(TIDE_QUEUE_FIFO, 1);
	put(g_q, 1);
	putter = tt_spawn(g_loop, put_task, I(2));
	YIELD();
	ck_assert(!tide_future_done(putter));
	ck_assert_int_eq(get(g_q), 1);
	YIELD();
	ck_assert_int_eq(tt_result(putter), 0);
	tide_future_unref(putter);
	ck_assert_int_eq(get_nowait(g_q), 2);
	tide_queue_free(g_q);
	return 0;
}

static struct tide_event *g_started;
static int g_finished;

static int64_t queue_get_started(void *arg)
{
	int res;

	(void)arg;
	tide_event_set(g_started);
	res = get(g_q);
	g_finished = 1;
	return res;
}

static void put_nowait_1_cb(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_queue_put_nowait(g_q, I(1), 1), 0);
}

/* QueueGetTests.test_blocking_get_wait: get() waits until an item comes. */
MAIN_CASE(test_queues__test_blocking_get_wait)
{
	struct tide_future *t;

	g_finished = 0;
	g_q = new_queue(TIDE_QUEUE_FIFO, 0);
	ck_assert_int_eq(tide_event_new(g_loop, &g_started), 0);
	t = tt_spawn(g_loop, queue_get_started, NULL);
	ck_assert_int_eq(tide_event_wait(g_started), 0);
	ck_assert(!g_finished);
	ck_assert_int_eq(tide_call_later(g_loop, 0.01, put_nowait_1_cb, NULL, NULL), 0);
	ck_assert_int_eq(tt_join(t), 1);
	ck_assert(g_finished);
	tide_event_free(g_started);
	tide_queue_free(g_q);
	return 0;
}

/* QueueGetTests.test_nonblocking_get */
MAIN_CASE(test_queues__test_nonblocking_get)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 0);

	put_nowait(q, 1);
	ck_assert_int_eq(get_nowait(q), 1);
	tide_queue_free(q);
	return 0;
}

/* QueueGetTests.test_nonblocking_get_exception: QueueEmpty. */
MAIN_CASE(test_queues__test_nonblocking_get_exception)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 0);
	void *item = I(7);

	ck_assert_int_eq(tide_queue_get_nowait(q, &item), TIDE_EQUEUE_EMPTY);
	ck_assert_ptr_eq(item, I(7));
	tide_queue_free(q);
	return 0;
}

/* QueueGetTests.test_get_cancelled_race: a getter cancelled before any
 * item came leaves the next item to the getter behind it. */
MAIN_CASE(test_queues__test_get_cancelled_race)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 0);
	struct tide_future *t1, *t2;

	t1 = tt_spawn(g_loop, get_task, q);
	t2 = tt_spawn(g_loop, get_task, q);
	YIELD();
	ck_assert_int_eq(tide_task_cancel(t1), 1);
	YIELD();
	ck_assert(tide_future_done(t1));
	put(q, 'a');
	YIELD();
	ck_assert_int_eq(tt_join(t2), 'a');
	ck_assert_int_eq(tt_join(t1), -ECANCELED);
	ck_assert_uint_eq(tide_queue_size(q), 0);
	tide_queue_free(q);
	return 0;
}

/* QueueGetTests.test_get_with_waiting_putters: items of waiting putters
 * come out in the order put. */
MAIN_CASE(test_queues__test_get_with_waiting_putters)
{
	struct tide_future *pa, *pb;

	g_q = new_queue(TIDE_QUEUE_FIFO, 1);
	pa = tt_spawn(g_loop, put_task, I('a'));
	pb = tt_spawn(g_loop, put_task, I('b'));
	ck_assert_int_eq(get(g_q), 'a');
	ck_assert_int_eq(get(g_q), 'b');
	ck_assert_int_eq(tt_join(pa), 0);
	ck_assert_int_eq(tt_join(pb), 0);
	tide_queue_free(g_q);
	return 0;
}

static int g_got[16];
static int g_ngot;

static int64_t consumer(void *arg)
{
	for (int i = 0; i < (int)(intptr_t)arg; i++)
		g_got[g_ngot++] = get(g_q);
	return 0;
}

static int64_t producer(void *arg)
{
	for (int i = 0; i < (int)(intptr_t)arg; i++)
		put(g_q, i);
	return 0;
}

/* QueueGetTests.test_why_are_getters_waiting: a producer and a consumer
 * through a queue of one both finish (no wake-up lost). */
MAIN_CASE(test_queues__test_why_are_getters_waiting)
{
	struct tide_future *p, *c;

	g_ngot = 0;
	g_q = new_queue(TIDE_QUEUE_FIFO, 1);
	p = tt_spawn(g_loop, producer, I(5));
	c = tt_spawn(g_loop, consumer, I(5));
	ck_assert_int_eq(tt_join(p), 0);
	ck_assert_int_eq(tt_join(c), 0);
	ck_assert_int_eq(g_ngot, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(g_got[i], i);
	tide_queue_free(g_q);
	return 0;
}

/* QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters: a
 * get() that wait_for times out leaves no getter behind: the next item
 * stays in the queue. */
MAIN_CASE(test_queues__test_cancelled_getters_not_being_held_in_self_getters)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 5);
	struct tide_future *t = tt_spawn(g_loop, get_task, q);

	ck_assert_int_eq(tide_wait_for(t, 0.1), -ETIMEDOUT);
	ck_assert(tide_future_cancelled(t));
	tide_future_unref(t);
	put_nowait(q, 1);
	YIELD();
	ck_assert_uint_eq(tide_queue_size(q), 1);
	ck_assert_int_eq(get_nowait(q), 1);
	tide_queue_free(q);
	return 0;
}

/* ------------------------------------------------------ QueuePutTests -- */

/* QueuePutTests.test_blocking_put: no maxsize, put() does not block. */
MAIN_CASE(test_queues__test_blocking_put)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 0);

	put(q, 1);
	ck_assert_int_eq(get(q), 1);
	tide_queue_free(q);
	return 0;
}

static int64_t queue_put_started(void *arg)
{
	(void)arg;
	tide_event_set(g_started);
	put(g_q, 1);
	put(g_q, 2);
	g_finished = 1;
	return 0;
}

static void get_nowait_cb(void *arg)
{
	void *item = NULL;

	(void)arg;
	ck_assert_int_eq(tide_queue_get_nowait(g_q, &item), 0);
	ck_assert_ptr_eq(item, I(1));
}

/* QueuePutTests.test_blocking_put_wait: put() on a full queue waits until
 * an item is taken. (The get is scheduled once the putter started, rather
 * than before, so that it finds the first item there however slow the
 * machine.) */
MAIN_CASE(test_queues__test_blocking_put_wait)
{
	struct tide_future *t;

	g_finished = 0;
	g_q = new_queue(TIDE_QUEUE_FIFO, 1);
	ck_assert_int_eq(tide_event_new(g_loop, &g_started), 0);
	t = tt_spawn(g_loop, queue_put_started, NULL);
	ck_assert_int_eq(tide_event_wait(g_started), 0);
	ck_assert(!g_finished);
	ck_assert_int_eq(tide_call_later(g_loop, 0.01, get_nowait_cb, NULL, NULL), 0);
	ck_assert_int_eq(tt_join(t), 0);
	ck_assert(g_finished);
	ck_assert_int_eq(get_nowait(g_q), 2);
	tide_event_free(g_started);
	tide_queue_free(g_q);
	return 0;
}

/* QueuePutTests.test_nonblocking_put */
MAIN_CASE(test_queues__test_nonblocking_put)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 0);

	put_nowait(q, 1);
	ck_assert_int_eq(get_nowait(q), 1);
	tide_queue_free(q);
	return 0;
}

/* QueuePutTests.test_get_cancel_drop_one_pending_reader: a reader woken
 * for an item and cancelled before it ran does not drop the item: the
 * next reader gets 1, not 2. */
MAIN_CASE(test_queues__test_get_cancel_drop_one_pending_reader)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 0);
	struct tide_future *reader = tt_spawn(g_loop, get_task, q);
	int64_t result;

	YIELD();
	put_nowait(q, 1);
	put_nowait(q, 2);
	ck_assert_int_eq(tide_task_cancel(reader), 1);
	result = tt_join(reader);
	if (result == -ECANCELED) /* try again */
		result = tt_join(tt_spawn(g_loop, get_task, q));
	/* 2 would mean 1 got dropped. */
	ck_assert_int_eq(result, 1);
	ck_assert_int_eq(get_nowait(q), 2);
	tide_queue_free(q);
	return 0;
}

/* QueuePutTests.test_get_cancel_drop_many_pending_readers: with three
 * readers woken by two items and the first cancelled, the two others get
 * both items. */
MAIN_CASE(test_queues__test_get_cancel_drop_many_pending_readers)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 0);
	struct tide_future *r1, *r2, *r3;
	int64_t v2, v3;

	r1 = tt_spawn(g_loop, get_task, q);
	r2 = tt_spawn(g_loop, get_task, q);
	r3 = tt_spawn(g_loop, get_task, q);
	YIELD();
	put_nowait(q, 1);
	put_nowait(q, 2);
	ck_assert_int_eq(tide_task_cancel(r1), 1);
	ck_assert_int_eq(tt_join(r1), -ECANCELED);
	v3 = tt_join(r3);
	v2 = tt_join(r2);
	/* The order in which concurrent readers get items is undefined. */
	ck_assert((v2 == 1 && v3 == 2) || (v2 == 2 && v3 == 1));
	ck_assert_uint_eq(tide_queue_size(q), 0);
	tide_queue_free(q);
	return 0;
}

/* QueuePutTests.test_put_cancel_drop: a putter woken for room and
 * cancelled puts nothing; put again, the item comes out once. */
MAIN_CASE(test_queues__test_put_cancel_drop)
{
	struct tide_future *writer;
	int64_t r;

	g_q = new_queue(TIDE_QUEUE_FIFO, 1);
	put_nowait(g_q, 1);
	/* putting a second item has to block */
	writer = tt_spawn(g_loop, put_task, I(2));
	YIELD();
	ck_assert_int_eq(get_nowait(g_q), 1);
	ck_assert_int_eq(tide_task_cancel(writer), 1);
	r = tt_join(writer);
	if (r == -ECANCELED) /* try again */
		r = tt_join(tt_spawn(g_loop, put_task, I(2)));
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(get_nowait(g_q), 2);
	ck_assert_uint_eq(tide_queue_size(g_q), 0);
	tide_queue_free(g_q);
	return 0;
}

/* QueuePutTests.test_nonblocking_put_exception: QueueFull. */
MAIN_CASE(test_queues__test_nonblocking_put_exception)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 1);

	put_nowait(q, 1);
	ck_assert_int_eq(tide_queue_put_nowait(q, I(2), 2), TIDE_EQUEUE_FULL);
	ck_assert_uint_eq(tide_queue_size(q), 1);
	tide_queue_free(q);
	return 0;
}

static int64_t queue_put_1(void *arg)
{
	(void)arg;
	put(g_q, 1);
	return 1;
}

/* QueuePutTests.test_put_cancelled: a get() waiting is given the item of a
 * put() that then returns. */
MAIN_CASE(test_queues__test_put_cancelled)
{
	struct tide_future *t;

	g_q = new_queue(TIDE_QUEUE_FIFO, 0);
	t = tt_spawn(g_loop, queue_put_1, NULL);
	ck_assert_int_eq(get(g_q), 1);
	ck_assert_int_eq(tt_result(t), 1);
	tide_future_unref(t);
	tide_queue_free(g_q);
	return 0;
}

/* QueuePutTests.test_put_cancelled_race: a putter cancelled while it
 * waits puts nothing, and the putter before it still gets the room. */
MAIN_CASE(test_queues__test_put_cancelled_race)
{
	struct tide_future *put_a, *put_b, *put_c;

	g_q = new_queue(TIDE_QUEUE_FIFO, 1);
	put_a = tt_spawn(g_loop, put_task, I('a'));
	put_b = tt_spawn(g_loop, put_task, I('b'));
	put_c = tt_spawn(g_loop, put_task, I('X'));
	YIELD();
	ck_assert(tide_future_done(put_a));
	ck_assert(!tide_future_done(put_b));
	ck_assert_int_eq(tide_task_cancel(put_c), 1);
	YIELD();
	ck_assert(tide_future_done(put_c));
	ck_assert_int_eq(get_nowait(g_q), 'a');
	YIELD();
	ck_assert_int_eq(get_nowait(g_q), 'b');
	ck_assert_int_eq(tt_join(put_b), 0);
	ck_assert_int_eq(tt_join(put_a), 0);
	ck_assert_int_eq(tt_join(put_c), -ECANCELED);
	ck_assert_uint_eq(tide_queue_size(g_q), 0);
	tide_queue_free(g_q);
	return 0;
}

/* QueuePutTests.test_put_with_waiting_getters */
MAIN_CASE(test_queues__test_put_with_waiting_getters)
{
	struct tide_queue *q = new_queue(TIDE_QUEUE_FIFO, 0);
	struct tide_future *t = tt_spawn(g_loop, get_task, q);

	YIELD();
	put(q, 'a');
	ck_assert_int_eq(tt_join(t), 'a');
	tide_queue_free(q);
	return 0;
}

static int64_t why_putters_getter(void *arg)
{
	size_t num;

	(void)arg;
	ck_assert_int_eq(tide_sleep(0), 0);
	num = tide_queue_size(g_q);
	for (size_t i = 0; i < num; i++)
		(void)get_nowait(g_q);
	return (int64_t)num;
}

/* QueuePutTests.test_why_are_putters_waiting: get_nowait() of two items
 * lets both waiting putters through (each take wakes one). */
MAIN_CASE(test_queues__test_why_are_putters_waiting)
{
	struct tide_future *g, *p[4];

	g_q = new_queue(TIDE_QUEUE_FIFO, 2);
	g = tt_spawn(g_loop, why_putters_getter, NULL);
	for (int i = 0; i < 4; i++)
		p[i] = tt_spawn(g_loop, put_task, I(i));
	ck_assert_int_eq(tt_join(g), 2);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(tt_join(p[i]), 0);
	ck_assert_uint_eq(tide_queue_size(g_q), 2);
	ck_assert_int_eq(get_nowait(g_q), 2);
	ck_assert_int_eq(get_nowait(g_q), 3);
	tide_queue_free(g_q);
	return 0;
}

/* QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters: a
 * putter cancelled while it waits leaves no putter behind (the room a get
 * makes stays free). */
MAIN_CASE(test_queues__test_cancelled_puts_not_being_held_in_self_putters)
{
	struct tide_future *t;

	g_q = new_queue(TIDE_QUEUE_FIFO, 1);
	put_nowait(g_q, 1);
	t = tt_spawn(g_loop, put_task, I(1));
	YIELD();
	ck_assert(!tide_future_done(t));
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tt_join(t), -ECANCELED);
	ck_assert_int_eq(get_nowait(g_q), 1);
	YIELD();
	ck_assert_uint_eq(tide_queue_size(g_q), 0);
	put_nowait(g_q, 5);
	ck_assert_int_eq(get_nowait(g_q), 5);
	tide_queue_free(g_q);
	return 0;
}

/* QueuePutTests.test_cancelled_put_silence_value_error_exception: a
 * putter woken by get_nowait() and cancelled before it ran ends
 * cancelled, cleanly, its item not put. */
MAIN_CASE(test_queues__test_cancelled_put_silence_value_error_exception)
{
	struct tide_future *t;

	g_q = new_queue(TIDE_QUEUE_FIFO, 1);
	put_nowait(g_q, 1);
	t = tt_spawn(g_loop, put_task, I(1));
	YIELD();
	ck_assert_int_eq(get_nowait(g_q), 1);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tt_join(t), -ECANCELED);
	ck_assert_uint_eq(tide_queue_size(g_q), 0);
	tide_queue_free(g_q);
	return 0;
}

/* -------------------------------------------------- _QueueJoinTestMixin -- */

/* test_task_done_underflow (Queue, LifoQueue, PriorityQueue): ValueError,
 * here -EOVERFLOW. */
MAIN_CASE(test_queues__test_task_done_underflow)
{
	for (int k = 0; k < 3; k++) {
		struct tide_queue *q = new_queue(kinds[k], 0);

		ck_assert_int_eq(tide_queue_task_done(q), -EOVERFLOW);
		put_nowait(q, 1);
		ck_assert_int_eq(get_nowait(q), 1);
		ck_assert_int_eq(tide_queue_task_done(q), 0);
		ck_assert_int_eq(tide_queue_task_done(q), -EOVERFLOW);
		tide_queue_free(q);
	}
	return 0;
}

static int g_accumulator;
static int g_running;

static int64_t worker(void *arg)
{
	(void)arg;
	while (g_running) {
		g_accumulator += get(g_q);
		ck_assert_int_eq(tide_queue_task_done(g_q), 0);
	}
	return 0;
}

/* test_task_done (Queue, LifoQueue, PriorityQueue): tt_join() returns once
 * every item put was marked done by two workers. */
MAIN_CASE(test_queues__test_task_done)
{
	for (int k = 0; k < 3; k++) {
		struct tide_future *t[2];

		g_q = new_queue(kinds[k], 0);
		for (int i = 0; i < 100; i++)
			put_nowait(g_q, i);
		g_accumulator = 0;
		g_running = 1;
		for (int i = 0; i < 2; i++)
			t[i] = tt_spawn(g_loop, worker, NULL);
		ck_assert_int_eq(tide_queue_join(g_q), 0);
		ck_assert_int_eq(g_accumulator, 99 * 100 / 2);
		/* close the running workers */
		g_running = 0;
		for (int i = 0; i < 2; i++)
			put_nowait(g_q, 0);
		for (int i = 0; i < 2; i++)
			ck_assert_int_eq(tt_join(t[i]), 0);
		ck_assert_int_eq(tide_queue_join(g_q), 0);
		tide_queue_free(g_q);
	}
	return 0;
}

/* test_join_empty_queue (Queue, LifoQueue, PriorityQueue): tt_join() on a
 * queue nothing was put in returns at once, twice. */
MAIN_CASE(test_queues__test_join_empty_queue)
{
	for (int k = 0; k < 3; k++) {
		struct tide_queue *q = new_queue(kinds[k], 0);

		ck_assert_int_eq(tide_queue_join(q), 0);
		ck_assert_int_eq(tide_queue_join(q), 0);
		tide_queue_free(q);
	}
	return 0;
}

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "conformance-queues", 30);
	/* QueueBasicTests (and LifoQueueTests, PriorityQueueTests) */
	tt_add(&ts, test_queues__test_empty);
	tt_add(&ts, test_queues__test_full);
	tt_add(&ts, test_queues__test_order);
	tt_add(&ts, test_queues__test_maxsize);
	/* QueueGetTests */
	tt_add(&ts, test_queues__test_blocking_get);
	tt_add(&ts, test_queues__test_get_with_putters);
	tt_add(&ts, test_queues__test_blocking_get_wait);
	tt_add(&ts, test_queues__test_nonblocking_get);
	tt_add(&ts, test_queues__test_nonblocking_get_exception);
	tt_add(&ts, test_queues__test_get_cancelled_race);
	tt_add(&ts, test_queues__test_get_with_waiting_putters);
	tt_add(&ts, test_queues__test_why_are_getters_waiting);
	tt_add(&ts, test_queues__test_cancelled_getters_not_being_held_in_self_getters);
	/* QueuePutTests */
	tt_add(&ts, test_queues__test_blocking_put);
	tt_add(&ts, test_queues__test_blocking_put_wait);
	tt_add(&ts, test_queues__test_nonblocking_put);
	tt_add(&ts, test_queues__test_get_cancel_drop_one_pending_reader);
	tt_add(&ts, test_queues__test_get_cancel_drop_many_pending_readers);
	tt_add(&ts, test_queues__test_put_cancel_drop);
	tt_add(&ts, test_queues__test_nonblocking_put_exception);
	tt_add(&ts, test_queues__test_put_cancelled);
	tt_add(&ts, test_queues__test_put_cancelled_race);
	tt_add(&ts, test_queues__test_put_with_waiting_getters);
	tt_add(&ts, test_queues__test_why_are_putters_waiting);
	tt_add(&ts, test_queues__test_cancelled_puts_not_being_held_in_self_putters);
	tt_add(&ts, test_queues__test_cancelled_put_silence_value_error_exception);
	/* _QueueJoinTestMixin, for the three kinds */
	tt_add(&ts, test_queues__test_task_done_underflow);
	tt_add(&ts, test_queues__test_task_done);
	tt_add(&ts, test_queues__test_join_empty_queue);
	return tt_run(&ts);
}
