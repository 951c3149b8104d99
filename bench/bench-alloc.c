/* SPDX-License-Identifier: MIT */
/*
 * bench-alloc: heap allocations per callback in the steady state (goal: 0).
 *
 * A counting allocator is installed before anything else with
 * tide_replace_allocator() and, for the peer, uv_replace_allocator(); it
 * counts malloc, calloc and realloc calls (free is not a new allocation) and
 * forwards to libc. Each workload runs once to warm up (free lists and the
 * timer heap's array grow to their working size), the counters are reset,
 * and the same workload runs again:
 *   alloc_call_soon_timers: 100,000 call_soon callbacks (one self-re-arming
 *       chain) then 100,000 timers (random deadlines over 10 ms);
 *       libuv: a uv_idle chain and 100,000 uv_timer_t (user memory).
 *   alloc_threadsafe: 10,000 call_soon_threadsafe ping-pongs from a thread;
 *       libuv: uv_async_send ping-pongs.
 *   alloc_executor: 10,000 executor jobs, one in flight; libuv: uv_queue_work.
 * Only what the library itself allocates is counted (libuv's handles and
 * requests live in user memory by design, tide's are allocated by tide).
 * The value is allocations / callbacks (or jobs); no ratio is computed.
 */
#include "bench.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

static atomic_ulong tide_allocs;

static void *tide_count_malloc(size_t n)
{
	atomic_fetch_add_explicit(&tide_allocs, 1, memory_order_relaxed);
	return malloc(n);
}
static void *tide_count_realloc(void *p, size_t n)
{
	atomic_fetch_add_explicit(&tide_allocs, 1, memory_order_relaxed);
	return realloc(p, n);
}
static void *tide_count_calloc(size_t n, size_t m)
{
	atomic_fetch_add_explicit(&tide_allocs, 1, memory_order_relaxed);
	return calloc(n, m);
}

#ifdef TIDE_BENCH_LIBUV
static atomic_ulong uv_allocs;

static void *uv_count_malloc(size_t n)
{
	atomic_fetch_add_explicit(&uv_allocs, 1, memory_order_relaxed);
	return malloc(n);
}
static void *uv_count_realloc(void *p, size_t n)
{
	atomic_fetch_add_explicit(&uv_allocs, 1, memory_order_relaxed);
	return realloc(p, n);
}
static void *uv_count_calloc(size_t n, size_t m)
{
	atomic_fetch_add_explicit(&uv_allocs, 1, memory_order_relaxed);
	return calloc(n, m);
}
#endif

#define N_CB 100000
#define N_TIMERS 100000
#define N_TS 10000
#define N_JOBS 10000

static uint32_t delay_us[N_TIMERS];

/* ------------------------------------------------------------ tide side -- */

struct tide_side {
	struct tide_loop *loop;
	struct tide_executor *ex;
	uint64_t count, target;
	sem_t reply;
};

static void t_chain(void *arg)
{
	struct tide_side *s = arg;
	if (++s->count == s->target) {
		tide_loop_stop(s->loop);
		return;
	}
	BENCH_CHECK(tide_call_soon(s->loop, t_chain, s, NULL));
}

static void t_timer(void *arg)
{
	struct tide_side *s = arg;
	if (++s->count == s->target)
		tide_loop_stop(s->loop);
}

static void t_soon_and_timers(struct tide_side *s)
{
	s->count = 0;
	s->target = N_CB;
	BENCH_CHECK(tide_call_soon(s->loop, t_chain, s, NULL));
	BENCH_CHECK(tide_loop_run(s->loop));
	s->count = 0;
	s->target = N_TIMERS;
	for (int i = 0; i < N_TIMERS; i++)
		BENCH_CHECK(tide_call_later(s->loop, delay_us[i] / 1e6, t_timer, s, NULL));
	BENCH_CHECK(tide_loop_run(s->loop));
}

static void t_ts_cb(void *arg)
{
	struct tide_side *s = arg;
	s->count++;
	sem_post(&s->reply);
}
static void t_stop(void *arg)
{
	tide_loop_stop(arg);
}
static void *t_ts_thread(void *arg)
{
	struct tide_side *s = arg;
	for (int i = 0; i < N_TS; i++) {
		BENCH_CHECK(tide_call_soon_threadsafe(s->loop, t_ts_cb, s));
		while (sem_wait(&s->reply) != 0)
			;
	}
	BENCH_CHECK(tide_call_soon_threadsafe(s->loop, t_stop, s->loop));
	return NULL;
}
static void t_threadsafe(struct tide_side *s)
{
	pthread_t th;
	s->count = 0;
	BENCH_ASSERT(pthread_create(&th, NULL, t_ts_thread, s) == 0);
	BENCH_CHECK(tide_loop_run(s->loop));
	pthread_join(th, NULL);
	BENCH_ASSERT(s->count == N_TS);
}

static int64_t job(void *arg)
{
	return (int64_t)(intptr_t)arg;
}
static void t_job_done(struct tide_future *fut, void *arg);
static void t_job_submit(struct tide_side *s)
{
	struct tide_future *fut;
	BENCH_CHECK(tide_run_in_executor(s->loop, s->ex, job, s, &fut));
	BENCH_CHECK(tide_future_add_done_callback(fut, t_job_done, s));
}
static void t_job_done(struct tide_future *fut, void *arg)
{
	struct tide_side *s = arg;
	BENCH_CHECK(tide_future_result(fut, NULL, NULL));
	tide_future_unref(fut);
	if (++s->count == N_JOBS)
		tide_loop_stop(s->loop);
	else
		t_job_submit(s);
}
static void t_executor(struct tide_side *s)
{
	s->count = 0;
	t_job_submit(s);
	BENCH_CHECK(tide_loop_run(s->loop));
}

/* ----------------------------------------------------------- libuv side -- */

#ifdef TIDE_BENCH_LIBUV
struct uv_side {
	uv_loop_t loop;
	uv_idle_t idle;
	uv_async_t async;
	uv_work_t work;
	uv_timer_t *timers;
	uint64_t count, target;
	sem_t reply;
	atomic_int done;
};

static void u_idle(uv_idle_t *h)
{
	struct uv_side *s = h->data;
	if (++s->count == s->target)
		uv_idle_stop(h);
}
static void u_timer(uv_timer_t *t)
{
	struct uv_side *s = t->data;
	s->count++;
}
static void u_soon_and_timers(struct uv_side *s)
{
	s->count = 0;
	s->target = N_CB;
	BENCH_UV_CHECK(uv_idle_start(&s->idle, u_idle));
	uv_run(&s->loop, UV_RUN_DEFAULT);
	s->count = 0;
	uv_update_time(&s->loop);
	for (int i = 0; i < N_TIMERS; i++)
		BENCH_UV_CHECK(uv_timer_start(&s->timers[i], u_timer, delay_us[i] / 1000, 0));
	uv_run(&s->loop, UV_RUN_DEFAULT);
	BENCH_ASSERT(s->count == N_TIMERS);
}

static void u_async(uv_async_t *a)
{
	struct uv_side *s = a->data;
	if (atomic_load(&s->done)) {
		uv_stop(&s->loop);
		return;
	}
	s->count++;
	sem_post(&s->reply);
}
static void *u_ts_thread(void *arg)
{
	struct uv_side *s = arg;
	for (int i = 0; i < N_TS; i++) {
		BENCH_UV_CHECK(uv_async_send(&s->async));
		while (sem_wait(&s->reply) != 0)
			;
	}
	atomic_store(&s->done, 1);
	BENCH_UV_CHECK(uv_async_send(&s->async));
	return NULL;
}
static void u_threadsafe(struct uv_side *s)
{
	pthread_t th;
	s->count = 0;
	atomic_store(&s->done, 0);
	BENCH_ASSERT(pthread_create(&th, NULL, u_ts_thread, s) == 0);
	uv_run(&s->loop, UV_RUN_DEFAULT);
	pthread_join(th, NULL);
	BENCH_ASSERT(s->count == N_TS);
}

static void u_work(uv_work_t *req)
{
	(void)job(req->data);
}
static void u_after(uv_work_t *req, int status)
{
	struct uv_side *s = req->data;
	BENCH_UV_CHECK(status);
	if (++s->count == N_JOBS)
		uv_stop(&s->loop);
	else
		BENCH_UV_CHECK(uv_queue_work(&s->loop, &s->work, u_work, u_after));
}
static void u_executor(struct uv_side *s)
{
	s->count = 0;
	s->work.data = s;
	BENCH_UV_CHECK(uv_queue_work(&s->loop, &s->work, u_work, u_after));
	uv_run(&s->loop, UV_RUN_DEFAULT);
}
#endif

/* Runs fn twice (warm-up, then counted) and returns allocations per unit. */
#define MEASURE(counter, call, units)                                          \
	({                                                                     \
		call;                                                          \
		atomic_store(&counter, 0);                                     \
		call;                                                          \
		(double)atomic_load(&counter) / (double)(units);               \
	})

int main(void)
{
	BENCH_CHECK(tide_replace_allocator(tide_count_malloc, tide_count_realloc,
					   tide_count_calloc, free));
#ifdef TIDE_BENCH_LIBUV
	BENCH_UV_CHECK(uv_replace_allocator(uv_count_malloc, uv_count_realloc,
					    uv_count_calloc, free));
#endif
	struct bench_rng rng = { 0x616c6c6f63ull };
	for (int i = 0; i < N_TIMERS; i++)
		delay_us[i] = (uint32_t)(bench_rand(&rng) % 10000);

	struct tide_side ts;
	memset(&ts, 0, sizeof(ts));
	BENCH_ASSERT(sem_init(&ts.reply, 0, 0) == 0);
	ts.loop = bench_tide_loop();
	struct tide_executor_opts eo;
	memset(&eo, 0, sizeof(eo));
	eo.size = sizeof(eo);
	eo.threads = 4;
	BENCH_CHECK(tide_executor_new(&eo, &ts.ex));
	const char *backend = tide_loop_backend(ts.loop);

	double t_st = MEASURE(tide_allocs, t_soon_and_timers(&ts), N_CB + N_TIMERS);
	double t_ts = MEASURE(tide_allocs, t_threadsafe(&ts), N_TS);
	double t_ex = MEASURE(tide_allocs, t_executor(&ts), N_JOBS);
	double u_st = NAN, u_ts = NAN, u_ex = NAN;

#ifdef TIDE_BENCH_LIBUV
	struct uv_side *us = calloc(1, sizeof(*us));
	BENCH_ASSERT(us);
	BENCH_ASSERT(sem_init(&us->reply, 0, 0) == 0);
	BENCH_UV_CHECK(uv_loop_init(&us->loop));
	BENCH_UV_CHECK(uv_idle_init(&us->loop, &us->idle));
	us->idle.data = us;
	BENCH_UV_CHECK(uv_async_init(&us->loop, &us->async, u_async));
	us->async.data = us;
	/* The async handle would keep uv_run(DEFAULT) alive: unref it outside
	 * the threadsafe workload. */
	uv_unref((uv_handle_t *)&us->async);
	us->timers = calloc(N_TIMERS, sizeof(*us->timers));
	BENCH_ASSERT(us->timers);
	for (int i = 0; i < N_TIMERS; i++) {
		BENCH_UV_CHECK(uv_timer_init(&us->loop, &us->timers[i]));
		us->timers[i].data = us;
	}
	u_st = MEASURE(uv_allocs, u_soon_and_timers(us), N_CB + N_TIMERS);
	uv_ref((uv_handle_t *)&us->async);
	u_ts = MEASURE(uv_allocs, u_threadsafe(us), N_TS);
	uv_unref((uv_handle_t *)&us->async);
	u_ex = MEASURE(uv_allocs, u_executor(us), N_JOBS);
#endif

	bench_emit("alloc_call_soon_timers", "mallocs/callback", t_st, u_st, -1, backend, "");
	bench_emit("alloc_threadsafe", "mallocs/callback", t_ts, u_ts, -1, backend, "");
	bench_emit("alloc_executor", "mallocs/job", t_ex, u_ex, -1, backend, "");

	BENCH_CHECK(tide_executor_free(ts.ex));
	bench_tide_loop_free(ts.loop);
	sem_destroy(&ts.reply);
#ifdef TIDE_BENCH_LIBUV
	uv_close((uv_handle_t *)&us->idle, NULL);
	uv_close((uv_handle_t *)&us->async, NULL);
	for (int i = 0; i < N_TIMERS; i++)
		uv_close((uv_handle_t *)&us->timers[i], NULL);
	uv_run(&us->loop, UV_RUN_DEFAULT);
	BENCH_UV_CHECK(uv_loop_close(&us->loop));
	free(us->timers);
	sem_destroy(&us->reply);
	free(us);
#endif
	return 0;
}
