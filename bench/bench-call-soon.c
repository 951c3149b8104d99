/* SPDX-License-Identifier: MIT */
/*
 * bench-call-soon: callbacks per second through the ready queue.
 *
 * tide: K chains, each callback re-arming itself with tide_call_soon until N
 * callbacks ran in total. A callback scheduled by a callback runs on the next
 * iteration (asyncio's rule), so K=1 costs one loop iteration per callback
 * and K=100 runs 100 callbacks per iteration.
 * libuv: the same structure with K uv_idle handles (an active idle handle runs
 * its callback once per iteration and keeps the poll timeout at 0), which is
 * libuv's nearest equivalent of a self-rescheduling call_soon.
 *
 * Workloads: call_soon_chain (K=1) and call_soon_batch (K=100), with the
 * persistent idle handles above; and call_soon_batch_oneshot (K=100), where
 * each libuv callback re-arms its handle (uv_idle_stop + uv_idle_start), the
 * way libuv expresses "run this once on the next iteration": the same work
 * per callback that tide_call_soon does. Both batch rows are reported.
 */
#include "bench.h"

#define MAX_CHAINS 100

struct tide_cs {
	struct tide_loop *loop;
	uint64_t n;     /* callbacks to run in total */
	uint64_t count; /* callbacks run so far */
	int chains;
	int stopped;
};

static void tide_cs_cb(void *arg)
{
	struct tide_cs *b = arg;
	if (b->count >= b->n) {
		/* The chain ends; the first to see the total stops the loop. */
		if (!b->stopped) {
			b->stopped = 1;
			tide_loop_stop(b->loop);
		}
		return;
	}
	b->count++;
	BENCH_CHECK(tide_call_soon(b->loop, tide_cs_cb, b, NULL));
}

static double tide_cs_run(void *ctx)
{
	struct tide_cs *b = ctx;
	b->count = 0;
	b->stopped = 0;
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < b->chains; i++)
		BENCH_CHECK(tide_call_soon(b->loop, tide_cs_cb, b, NULL));
	BENCH_CHECK(tide_loop_run(b->loop));
	uint64_t t1 = bench_now_ns();
	BENCH_ASSERT(b->count == b->n);
	return (double)b->n * 1e9 / (double)(t1 - t0);
}

#ifdef TIDE_BENCH_LIBUV
struct uv_cs {
	uv_loop_t loop;
	uv_idle_t idle[MAX_CHAINS];
	uint64_t n;
	uint64_t count;
	int chains;
	int stopped;
	int oneshot;    /* re-arm each handle in its callback */
};

static void uv_cs_cb(uv_idle_t *h)
{
	struct uv_cs *b = h->data;
	if (b->count >= b->n) {
		uv_idle_stop(h);
		if (!b->stopped) {
			b->stopped = 1;
			uv_stop(&b->loop);
		}
		return;
	}
	b->count++;
	if (b->oneshot) {
		uv_idle_stop(h);
		BENCH_UV_CHECK(uv_idle_start(h, uv_cs_cb));
	}
}

static double uv_cs_run(void *ctx)
{
	struct uv_cs *b = ctx;
	b->count = 0;
	b->stopped = 0;
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < b->chains; i++)
		BENCH_UV_CHECK(uv_idle_start(&b->idle[i], uv_cs_cb));
	uv_run(&b->loop, UV_RUN_DEFAULT);
	uint64_t t1 = bench_now_ns();
	BENCH_ASSERT(b->count == b->n);
	/* uv_stop returned in the middle of an iteration: the other chains
	 * saw the total there and stopped themselves, except when the stop
	 * came first; stop whatever is still active so the next run is clean. */
	for (int i = 0; i < b->chains; i++)
		uv_idle_stop(&b->idle[i]);
	return (double)b->n * 1e9 / (double)(t1 - t0);
}

static void uv_close_noop(uv_handle_t *h)
{
	(void)h;
}
#endif

static void one(const char *name, int chains, uint64_t n, int oneshot)
{
	if (!bench_selected(name))
		return;
	struct tide_cs t = { .n = n, .chains = chains };
	t.loop = bench_tide_loop();
	double tv, uvv;
	bench_run_fn ufn = NULL;
	void *uctx = NULL;
#ifdef TIDE_BENCH_LIBUV
	struct uv_cs *u = calloc(1, sizeof(*u));
	BENCH_ASSERT(u);
	u->n = n;
	u->chains = chains;
	u->oneshot = oneshot;
	BENCH_UV_CHECK(uv_loop_init(&u->loop));
	for (int i = 0; i < chains; i++) {
		BENCH_UV_CHECK(uv_idle_init(&u->loop, &u->idle[i]));
		u->idle[i].data = u;
	}
	ufn = uv_cs_run;
	uctx = u;
#endif
	bench_measure(tide_cs_run, &t, ufn, uctx, &tv, &uvv);
	char extra[64];
	snprintf(extra, sizeof(extra), ",\"chains\":%d,\"n\":%llu", chains,
		 (unsigned long long)n);
	bench_emit(name, "callbacks/s", tv, uvv, 1, tide_loop_backend(t.loop), extra);
	bench_tide_loop_free(t.loop);
#ifdef TIDE_BENCH_LIBUV
	for (int i = 0; i < chains; i++)
		uv_close((uv_handle_t *)&u->idle[i], uv_close_noop);
	uv_run(&u->loop, UV_RUN_DEFAULT);
	BENCH_UV_CHECK(uv_loop_close(&u->loop));
	free(u);
#endif
}

int main(void)
{
	one("call_soon_chain", 1, bench_scaled(2000000, 1000), 0);
	one("call_soon_batch", MAX_CHAINS, bench_scaled(10000000, 1000), 0);
	one("call_soon_batch_oneshot", MAX_CHAINS, bench_scaled(10000000, 1000), 1);
	return 0;
}
