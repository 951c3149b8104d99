/* SPDX-License-Identifier: MIT */
/*
 * bench-timers: schedule 1,000,000 one-shot timers with random deadlines
 * spread over 0.1 s and run the loop until every one that was not cancelled
 * has fired.
 *
 * Both sides get the very same delays (one seeded PRNG, whole milliseconds
 * 0..99 because libuv timers have millisecond resolution; tide is handed the
 * same values in seconds). libuv counts them from its cached loop time, so
 * its heap sees 100 distinct deadlines; tide_call_later counts from a fresh
 * clock read, as asyncio does, so tide's deadlines are nearly all distinct.
 *   tide:  tide_call_later(); tide_handle_cancel() for the cancelled half.
 *   libuv: a uv_timer_t array allocated and uv_timer_init()ed up front (the
 *          usual libuv pattern: timers live in the user's memory);
 *          uv_timer_start(); uv_timer_stop() for the cancelled half.
 * Each side re-uses one warm loop across repetitions.
 *
 * The unit: timers per second of loop-thread CPU time (user + system,
 * CLOCK_THREAD_CPUTIME_ID) over scheduling, cancelling and firing. Wall time is
 * pinned near 0.1 s by the deadlines themselves whenever scheduling is
 * faster than that, so a wall-clock rate would mostly measure the spread;
 * CPU time measures the work. The wall-clock rates are reported too, as
 * "tide_wall" and "libuv_wall". Both cancelled and uncancelled timers count
 * as scheduled: the rate is 1,000,000 / CPU seconds in both workloads.
 */
#include "bench.h"

struct tcommon {
	uint64_t n;
	uint32_t *delay_ms;   /* the shared deadlines */
	uint8_t *cancel;      /* 1: cancel this one right after scheduling */
	uint64_t expect;      /* timers that must fire */
	uint64_t fired;
	double last_wall;     /* wall-clock rate of the last run */
};

struct tide_tm {
	struct tcommon c;
	struct tide_loop *loop;
	struct tide_handle *h;
};

static void tide_tm_cb(void *arg)
{
	struct tide_tm *b = arg;
	if (++b->c.fired == b->c.expect)
		tide_loop_stop(b->loop);
}

static double tide_tm_run(void *ctx)
{
	struct tide_tm *b = ctx;
	b->c.fired = 0;
	uint64_t w0 = bench_now_ns(), c0 = bench_cpu_ns();
	for (uint64_t i = 0; i < b->c.n; i++)
		BENCH_CHECK(tide_call_later(b->loop, b->c.delay_ms[i] / 1000.0,
					    tide_tm_cb, b, &b->h[i]));
	for (uint64_t i = 0; i < b->c.n; i++)
		if (b->c.cancel[i])
			BENCH_ASSERT(tide_handle_cancel(&b->h[i]) == 1);
	BENCH_CHECK(tide_loop_run(b->loop));
	uint64_t w1 = bench_now_ns(), c1 = bench_cpu_ns();
	BENCH_ASSERT(b->c.fired == b->c.expect);
	b->c.last_wall = (double)b->c.n * 1e9 / (double)(w1 - w0);
	return (double)b->c.n * 1e9 / (double)(c1 - c0);
}

#ifdef TIDE_BENCH_LIBUV
struct uv_tm {
	struct tcommon c;
	uv_loop_t loop;
	uv_timer_t *t;
};

static void uv_tm_cb(uv_timer_t *t)
{
	struct uv_tm *b = t->data;
	if (++b->c.fired == b->c.expect)
		uv_stop(&b->loop);
}

static double uv_tm_run(void *ctx)
{
	struct uv_tm *b = ctx;
	b->c.fired = 0;
	uint64_t w0 = bench_now_ns(), c0 = bench_cpu_ns();
	/* uv_timer_start is relative to the cached loop time: refresh it, as
	 * tide_call_later reads the clock. */
	uv_update_time(&b->loop);
	for (uint64_t i = 0; i < b->c.n; i++)
		BENCH_UV_CHECK(uv_timer_start(&b->t[i], uv_tm_cb, b->c.delay_ms[i], 0));
	for (uint64_t i = 0; i < b->c.n; i++)
		if (b->c.cancel[i])
			BENCH_UV_CHECK(uv_timer_stop(&b->t[i]));
	uv_run(&b->loop, UV_RUN_DEFAULT);
	uint64_t w1 = bench_now_ns(), c1 = bench_cpu_ns();
	BENCH_ASSERT(b->c.fired == b->c.expect);
	b->c.last_wall = (double)b->c.n * 1e9 / (double)(w1 - w0);
	return (double)b->c.n * 1e9 / (double)(c1 - c0);
}

static void uv_close_noop(uv_handle_t *h)
{
	(void)h;
}
#endif

/* bench_measure keeps medians of the returned CPU rates; the wall rates are
 * collected beside them through these wrappers. */
struct walls {
	bench_run_fn fn;
	void *ctx;
	double *last;
	double v[64];
	int n;
};
static double wall_wrap(void *ctx)
{
	struct walls *w = ctx;
	double r = w->fn(w->ctx);
	if (w->n < 64)
		w->v[w->n++] = *w->last;
	return r;
}
static double walls_median(struct walls *w)
{
	/* Skip the warm-up, which is the first entry. */
	return w->n > 1 ? bench_median(w->v + 1, w->n - 1) : NAN;
}

int main(void)
{
	uint64_t n = bench_scaled(1000000, 1000);
	uint32_t *delay = malloc(n * sizeof(*delay));
	uint8_t *cancel = malloc(n);
	BENCH_ASSERT(delay && cancel);
	struct bench_rng rng = { 0x7469646562656e63ull };
	uint64_t ncancel = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = bench_rand(&rng);
		delay[i] = (uint32_t)(r % 100);
		cancel[i] = (uint8_t)((r >> 32) & 1);
		ncancel += cancel[i];
	}
	uint8_t *none = calloc(n, 1);
	BENCH_ASSERT(none);

	struct tide_tm *t = calloc(1, sizeof(*t));
	BENCH_ASSERT(t);
	t->loop = bench_tide_loop();
	t->h = calloc(n, sizeof(*t->h));
	BENCH_ASSERT(t->h);
	t->c.n = n;
	t->c.delay_ms = delay;
#ifdef TIDE_BENCH_LIBUV
	struct uv_tm *u = calloc(1, sizeof(*u));
	BENCH_ASSERT(u);
	BENCH_UV_CHECK(uv_loop_init(&u->loop));
	u->t = calloc(n, sizeof(*u->t));
	BENCH_ASSERT(u->t);
	for (uint64_t i = 0; i < n; i++) {
		BENCH_UV_CHECK(uv_timer_init(&u->loop, &u->t[i]));
		u->t[i].data = u;
	}
	u->c.n = n;
	u->c.delay_ms = delay;
#endif
	static const char *names[2] = { "timers", "timers_half_cancelled" };
	for (int v = 0; v < 2; v++) {
		if (!bench_selected(names[v]))
			continue;
		t->c.cancel = v ? cancel : none;
		t->c.expect = v ? n - ncancel : n;
		struct walls tw = { tide_tm_run, t, &t->c.last_wall, { 0 }, 0 };
		struct walls uw = { 0 };
		bench_run_fn ufn = NULL;
		void *uctx = NULL;
#ifdef TIDE_BENCH_LIBUV
		u->c.cancel = t->c.cancel;
		u->c.expect = t->c.expect;
		uw = (struct walls){ uv_tm_run, u, &u->c.last_wall, { 0 }, 0 };
		ufn = wall_wrap;
		uctx = &uw;
#endif
		double tv, uvv;
		bench_measure(wall_wrap, &tw, ufn, uctx, &tv, &uvv);
		char extra[192], uwall[32] = "null";
		if (ufn && !isnan(walls_median(&uw)))
			snprintf(uwall, sizeof(uwall), "%.6g", walls_median(&uw));
		snprintf(extra, sizeof(extra),
			 ",\"clock\":\"thread_cpu\",\"tide_wall\":%.6g,\"libuv_wall\":%s,\"n\":%llu,\"cancelled\":%llu",
			 walls_median(&tw), uwall, (unsigned long long)n,
			 (unsigned long long)(v ? ncancel : 0));
		bench_emit(names[v], "timers/s", tv, uvv, 1, tide_loop_backend(t->loop), extra);
	}

	bench_tide_loop_free(t->loop);
	free(t->h);
	free(t);
#ifdef TIDE_BENCH_LIBUV
	for (uint64_t i = 0; i < n; i++)
		uv_close((uv_handle_t *)&u->t[i], uv_close_noop);
	uv_run(&u->loop, UV_RUN_DEFAULT);
	BENCH_UV_CHECK(uv_loop_close(&u->loop));
	free(u->t);
	free(u);
#endif
	free(delay);
	free(cancel);
	free(none);
	return 0;
}
