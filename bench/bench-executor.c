/* SPDX-License-Identifier: MIT */
/*
 * bench-executor: thread-pool round-trips per second.
 *
 * A trivial job (it adds one to its argument) goes to a worker thread; its
 * completion, back on the loop thread, checks the result and submits the next
 * job of the same chain, until N jobs completed. D chains run at once: D=1
 * (executor_rtt: pure latency, every job wakes a worker and then the loop) and
 * D=64 (executor_rtt_64: a queue deep enough to keep every worker busy).
 *   tide:  tide_run_in_executor() on an executor from tide_executor_new() with
 *          as many threads as libuv's pool, and a done callback
 *          (tide_future_add_done_callback) that unrefs the future and
 *          submits the next job.
 *   libuv: uv_queue_work(), whose after_work callback submits the next job.
 * Pool size: $UV_THREADPOOL_SIZE if set, else libuv's default of 4; tide's
 * executor gets the same number ("threads" in the JSON line).
 */
#include "bench.h"

#define MAX_DEPTH 64

static int64_t job_add_one(void *arg)
{
	return (int64_t)(intptr_t)arg + 1;
}

struct tide_ex;
struct tide_chain {
	struct tide_ex *b;
	int64_t next; /* argument of the chain's next job */
};

struct tide_ex {
	struct tide_loop *loop;
	struct tide_executor *ex;
	uint64_t n;
	uint64_t submitted, completed;
	int depth;
	struct tide_chain chain[MAX_DEPTH];
};

static void tide_ex_submit(struct tide_chain *c);

static void tide_ex_done(struct tide_future *fut, void *arg)
{
	struct tide_chain *c = arg;
	struct tide_ex *b = c->b;
	int64_t v = -1;
	BENCH_CHECK(tide_future_result(fut, &v, NULL));
	BENCH_ASSERT(v == c->next + 1);
	tide_future_unref(fut);
	c->next = v;
	if (++b->completed == b->n)
		tide_loop_stop(b->loop);
	else if (b->submitted < b->n)
		tide_ex_submit(c);
}

static void tide_ex_submit(struct tide_chain *c)
{
	struct tide_ex *b = c->b;
	struct tide_future *fut;
	b->submitted++;
	BENCH_CHECK(tide_run_in_executor(b->loop, b->ex, job_add_one,
					 (void *)(intptr_t)c->next, &fut));
	BENCH_CHECK(tide_future_add_done_callback(fut, tide_ex_done, c));
}

static double tide_ex_run(void *ctx)
{
	struct tide_ex *b = ctx;
	b->submitted = b->completed = 0;
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < b->depth; i++) {
		b->chain[i].b = b;
		b->chain[i].next = i;
		tide_ex_submit(&b->chain[i]);
	}
	BENCH_CHECK(tide_loop_run(b->loop));
	uint64_t t1 = bench_now_ns();
	BENCH_ASSERT(b->completed == b->n);
	return (double)b->n * 1e9 / (double)(t1 - t0);
}

#ifdef TIDE_BENCH_LIBUV
struct uv_ex;
struct uv_chain {
	uv_work_t req;
	struct uv_ex *b;
	int64_t next;
	int64_t result;
};

struct uv_ex {
	uv_loop_t loop;
	uint64_t n;
	uint64_t submitted, completed;
	int depth;
	struct uv_chain chain[MAX_DEPTH];
};

static void uv_ex_work(uv_work_t *req)
{
	struct uv_chain *c = req->data;
	c->result = job_add_one((void *)(intptr_t)c->next);
}

static void uv_ex_submit(struct uv_chain *c);

static void uv_ex_after(uv_work_t *req, int status)
{
	struct uv_chain *c = req->data;
	struct uv_ex *b = c->b;
	BENCH_UV_CHECK(status);
	BENCH_ASSERT(c->result == c->next + 1);
	c->next = c->result;
	if (++b->completed == b->n)
		uv_stop(&b->loop);
	else if (b->submitted < b->n)
		uv_ex_submit(c);
}

static void uv_ex_submit(struct uv_chain *c)
{
	struct uv_ex *b = c->b;
	b->submitted++;
	c->req.data = c;
	BENCH_UV_CHECK(uv_queue_work(&b->loop, &c->req, uv_ex_work, uv_ex_after));
}

static double uv_ex_run(void *ctx)
{
	struct uv_ex *b = ctx;
	b->submitted = b->completed = 0;
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < b->depth; i++) {
		b->chain[i].b = b;
		b->chain[i].next = i;
		uv_ex_submit(&b->chain[i]);
	}
	uv_run(&b->loop, UV_RUN_DEFAULT);
	uint64_t t1 = bench_now_ns();
	BENCH_ASSERT(b->completed == b->n);
	return (double)b->n * 1e9 / (double)(t1 - t0);
}
#endif

static unsigned pool_size(void)
{
	const char *s = getenv("UV_THREADPOOL_SIZE");
	int v = s ? atoi(s) : 4;
	if (v < 1)
		v = 1;
	if (v > 1024) /* libuv's own cap (MAX_THREADPOOL_SIZE) */
		v = 1024;
	return (unsigned)v;
}

static void one(const char *name, int depth, uint64_t n, unsigned threads)
{
	if (!bench_selected(name))
		return;
	struct tide_ex *t = calloc(1, sizeof(*t));
	BENCH_ASSERT(t);
	t->loop = bench_tide_loop();
	struct tide_executor_opts eo;
	memset(&eo, 0, sizeof(eo));
	eo.size = sizeof(eo);
	eo.threads = threads;
	BENCH_CHECK(tide_executor_new(&eo, &t->ex));
	t->n = n;
	t->depth = depth;
	bench_run_fn ufn = NULL;
	void *uctx = NULL;
#ifdef TIDE_BENCH_LIBUV
	struct uv_ex *u = calloc(1, sizeof(*u));
	BENCH_ASSERT(u);
	BENCH_UV_CHECK(uv_loop_init(&u->loop));
	u->n = n;
	u->depth = depth;
	ufn = uv_ex_run;
	uctx = u;
#endif
	double tv, uvv;
	bench_measure(tide_ex_run, t, ufn, uctx, &tv, &uvv);
	char extra[96];
	snprintf(extra, sizeof(extra), ",\"threads\":%u,\"in_flight\":%d,\"n\":%llu",
		 threads, depth, (unsigned long long)n);
	bench_emit(name, "round-trips/s", tv, uvv, 1, tide_loop_backend(t->loop), extra);
	BENCH_CHECK(tide_executor_free(t->ex));
	bench_tide_loop_free(t->loop);
	free(t);
#ifdef TIDE_BENCH_LIBUV
	BENCH_UV_CHECK(uv_loop_close(&u->loop));
	free(u);
#endif
}

int main(void)
{
	unsigned threads = pool_size();
	one("executor_rtt", 1, bench_scaled(20000, 100), threads);
	one("executor_rtt_64", MAX_DEPTH, bench_scaled(200000, 1000), threads);
	return 0;
}
