/* SPDX-License-Identifier: MIT */
/*
 * bench-threadsafe: cross-thread round-trips per second.
 *
 * Another thread posts one callback into the loop and waits on a POSIX
 * semaphore; the callback, on the loop thread, posts the semaphore; repeat.
 * Exactly one request is in flight, so every round-trip wakes a sleeping loop
 * (the wake-up path is what is measured) and then wakes the sleeping thread.
 *   tide:  tide_call_soon_threadsafe(loop, cb, arg).
 *   libuv: uv_async_send() on one uv_async_t whose callback answers the same
 *          way (one request in flight, so libuv's coalescing never merges two).
 * The round-trips are timed on the posting thread, from its first post to the
 * last answer; the same semaphore does the reply on both sides.
 */
#include "bench.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

struct ts_common {
	uint64_t n;
	sem_t reply;
	uint64_t answered; /* loop thread only */
	uint64_t t0, t1;   /* posting thread only, read after join */
};

struct tide_ts {
	struct ts_common c;
	struct tide_loop *loop;
};

static void tide_ts_cb(void *arg)
{
	struct tide_ts *b = arg;
	b->c.answered++;
	sem_post(&b->c.reply);
}

static void tide_ts_stop(void *arg)
{
	tide_loop_stop(arg);
}

static void *tide_ts_thread(void *arg)
{
	struct tide_ts *b = arg;
	b->c.t0 = bench_now_ns();
	for (uint64_t i = 0; i < b->c.n; i++) {
		BENCH_CHECK(tide_call_soon_threadsafe(b->loop, tide_ts_cb, b));
		while (sem_wait(&b->c.reply) != 0)
			;
	}
	b->c.t1 = bench_now_ns();
	BENCH_CHECK(tide_call_soon_threadsafe(b->loop, tide_ts_stop, b->loop));
	return NULL;
}

static double tide_ts_run(void *ctx)
{
	struct tide_ts *b = ctx;
	pthread_t th;
	b->c.answered = 0;
	BENCH_ASSERT(pthread_create(&th, NULL, tide_ts_thread, b) == 0);
	BENCH_CHECK(tide_loop_run(b->loop));
	pthread_join(th, NULL);
	BENCH_ASSERT(b->c.answered == b->c.n);
	return (double)b->c.n * 1e9 / (double)(b->c.t1 - b->c.t0);
}

#ifdef TIDE_BENCH_LIBUV
struct uv_ts {
	struct ts_common c;
	uv_loop_t loop;
	uv_async_t async;
	atomic_int done;
};

static void uv_ts_cb(uv_async_t *a)
{
	struct uv_ts *b = a->data;
	if (atomic_load_explicit(&b->done, memory_order_acquire)) {
		uv_stop(&b->loop);
		return;
	}
	b->c.answered++;
	sem_post(&b->c.reply);
}

static void *uv_ts_thread(void *arg)
{
	struct uv_ts *b = arg;
	b->c.t0 = bench_now_ns();
	for (uint64_t i = 0; i < b->c.n; i++) {
		BENCH_UV_CHECK(uv_async_send(&b->async));
		while (sem_wait(&b->c.reply) != 0)
			;
	}
	b->c.t1 = bench_now_ns();
	atomic_store_explicit(&b->done, 1, memory_order_release);
	BENCH_UV_CHECK(uv_async_send(&b->async));
	return NULL;
}

static double uv_ts_run(void *ctx)
{
	struct uv_ts *b = ctx;
	pthread_t th;
	b->c.answered = 0;
	atomic_store(&b->done, 0);
	BENCH_ASSERT(pthread_create(&th, NULL, uv_ts_thread, b) == 0);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	pthread_join(th, NULL);
	BENCH_ASSERT(b->c.answered == b->c.n);
	return (double)b->c.n * 1e9 / (double)(b->c.t1 - b->c.t0);
}
#endif

int main(void)
{
	uint64_t n = bench_scaled(20000, 100);
	struct tide_ts t = { .c.n = n };
	BENCH_ASSERT(sem_init(&t.c.reply, 0, 0) == 0);
	t.loop = bench_tide_loop();
	bench_run_fn ufn = NULL;
	void *uctx = NULL;
#ifdef TIDE_BENCH_LIBUV
	struct uv_ts *u = calloc(1, sizeof(*u));
	BENCH_ASSERT(u);
	u->c.n = n;
	BENCH_ASSERT(sem_init(&u->c.reply, 0, 0) == 0);
	BENCH_UV_CHECK(uv_loop_init(&u->loop));
	BENCH_UV_CHECK(uv_async_init(&u->loop, &u->async, uv_ts_cb));
	u->async.data = u;
	ufn = uv_ts_run;
	uctx = u;
#endif
	double tv, uvv;
	bench_measure(tide_ts_run, &t, ufn, uctx, &tv, &uvv);
	char extra[64];
	snprintf(extra, sizeof(extra), ",\"n\":%llu", (unsigned long long)n);
	bench_emit("call_soon_threadsafe_rtt", "round-trips/s", tv, uvv, 1,
		   tide_loop_backend(t.loop), extra);
	bench_tide_loop_free(t.loop);
	sem_destroy(&t.c.reply);
#ifdef TIDE_BENCH_LIBUV
	uv_close((uv_handle_t *)&u->async, NULL);
	uv_run(&u->loop, UV_RUN_DEFAULT);
	BENCH_UV_CHECK(uv_loop_close(&u->loop));
	sem_destroy(&u->c.reply);
	free(u);
#endif
	return 0;
}
