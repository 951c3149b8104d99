/* SPDX-License-Identifier: MIT */
/*
 * bench-task: tasks (stackful coroutines) against ucontext, Python's asyncio
 * and libuv, each peer measured in the same run (issue 3, "Benchmarks").
 *
 * Workloads (one JSON line each; bench/README.md has the table):
 *   task_memory_idle  RSS growth per idle task with a 16 KiB stack: 10,000
 *                     tasks parked on a future that never completes
 *                     (/proc/self/statm), measured once, cold, first thing in
 *                     the process; then all are cancelled and reaped.
 *   coro_switch       the library's own switch (src/coro-<arch>.S assembled
 *                     into this program, since the library hides it): two
 *                     contexts ping-ponging, ns per switch; x86-64 only.
 *   task_switch       the same through the API: two tasks tide_yield()ing in
 *                     turn, ns per task-to-task switch (task -> loop -> task).
 *   task_yield        one task tide_yield()ing with nothing else ready: a
 *                     full trip task -> loop iteration -> task.
 *   task_spawn        tasks that return at once, spawned in batches of 1000,
 *                     the loop run until the batch is done: tasks/s.
 *   queue_pingpong    two tasks bouncing an item through two tide_queue
 *                     (put on one, get from the other): round-trips/s.
 * Peers:
 *   ucontext  swapcontext() between two contexts in this program: one
 *             swapcontext is one switch (glibc's saves the signal mask with a
 *             system call each time, which is most of its cost).
 *   asyncio   bench/pingpong.py (python3, or $BENCH_PYTHON), one process per
 *             repetition, timed inside the script; null when it cannot run.
 *   libuv     queue_pingpong only: two uv_idle_t handing the turn to each
 *             other (stop self, start the other), one hand-off per iteration
 *             as in tide.
 */
#include "bench.h"

#include <errno.h>
#include <stdint.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef TIDE_BENCH_SRCDIR
#define TIDE_BENCH_SRCDIR "bench"
#endif

static const char *backend_name = "?";

/* ------------------------------------------------------------ asyncio -- */

struct py_side {
	const char *mode; /* pingpong.py's first argument */
	uint64_t n;
};

static int py_broken; /* once python fails, the asyncio columns are null */

static double py_run(void *ctx)
{
	struct py_side *p = ctx;
	const char *py = getenv("BENCH_PYTHON");
	const char *script = getenv("BENCH_PYTHON_SCRIPT");
	char cmd[1024], line[128];
	double v = NAN;
	FILE *f;

	if (py_broken)
		return NAN;
	if (!py || !*py)
		py = "python3";
	if (!script || !*script)
		script = TIDE_BENCH_SRCDIR "/pingpong.py";
	snprintf(cmd, sizeof(cmd), "'%s' '%s' %s %llu", py, script, p->mode, (unsigned long long)p->n);
	f = popen(cmd, "r");
	if (f) {
		if (fgets(line, sizeof(line), f))
			v = strtod(line, NULL);
		if (pclose(f) != 0)
			v = NAN;
	}
	if (isnan(v) || v <= 0) {
		fprintf(stderr, "bench-task: `%s` failed: the asyncio columns are null\n", cmd);
		py_broken = 1;
		return NAN;
	}
	return v;
}

static void py_version(char *buf, size_t n)
{
	const char *py = getenv("BENCH_PYTHON");
	const char *script = getenv("BENCH_PYTHON_SCRIPT");
	char cmd[1024];
	FILE *f;

	snprintf(buf, n, "null");
	if (!py || !*py)
		py = "python3";
	if (!script || !*script)
		script = TIDE_BENCH_SRCDIR "/pingpong.py";
	snprintf(cmd, sizeof(cmd), "'%s' '%s' version 2>/dev/null", py, script);
	if (!(f = popen(cmd, "r")))
		return;
	char line[64];
	if (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		snprintf(buf, n, "\"%s\"", line);
	}
	pclose(f);
}

/* ----------------------------------------------------------- ucontext -- */

#define UC_STACK (64 * 1024)

static struct {
	ucontext_t main, co;
	int ready;
	uint64_t n;
} uc;

static void uc_entry(void)
{
	for (;;)
		swapcontext(&uc.co, &uc.main);
}

/* ns per swapcontext: n round-trips are 2n switches. */
static double uc_run(void *ctx)
{
	(void)ctx;
	if (!uc.ready) {
		static char stack[UC_STACK] __attribute__((aligned(16)));
		BENCH_ASSERT(getcontext(&uc.co) == 0);
		uc.co.uc_stack.ss_sp = stack;
		uc.co.uc_stack.ss_size = sizeof(stack);
		uc.co.uc_link = NULL;
		makecontext(&uc.co, uc_entry, 0);
		uc.ready = 1;
	}
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < uc.n; i++)
		swapcontext(&uc.main, &uc.co);
	uint64_t t1 = bench_now_ns();
	return (double)(t1 - t0) / (2.0 * (double)uc.n);
}

/* ---------------------------------------------------------- raw switch -- */

#ifdef TIDE_BENCH_RAW_SWITCH
/* The library's own assembly (src/coro-x86_64.S), linked into this program. */
void tide__coro_switch(void **save_sp, void *load_sp);
void tide__coro_trampoline(void);

static struct {
	void *main_sp, *co_sp;
	uint64_t n;
} raw;

static void raw_entry(void *arg)
{
	(void)arg;
	for (;;)
		tide__coro_switch(&raw.co_sp, raw.main_sp);
}

/* The stack layout tide__coro_prepare (src/coro.c) makes for x86-64. */
static void raw_prepare(void)
{
	static char stack[UC_STACK] __attribute__((aligned(16)));
	uintptr_t top = ((uintptr_t)stack + sizeof(stack)) & ~(uintptr_t)15;
	void **sp = (void **)(top - 16) - 8;
	struct { uint32_t mxcsr; uint16_t fcw, pad; } csr = { 0, 0, 0 };

	__asm__ volatile("stmxcsr %0" : "=m"(csr.mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(csr.fcw));
	memcpy(&sp[0], &csr, sizeof(csr));
	sp[1] = NULL;                        /* r15 */
	sp[2] = NULL;                        /* r14 */
	sp[3] = (void *)raw_entry;           /* r13: entry */
	sp[4] = NULL;                        /* r12: arg */
	sp[5] = NULL;                        /* rbx */
	sp[6] = NULL;                        /* rbp */
	sp[7] = (void *)tide__coro_trampoline;
	raw.co_sp = sp;
}

static double raw_run(void *ctx)
{
	(void)ctx;
	if (!raw.co_sp)
		raw_prepare();
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < raw.n; i++)
		tide__coro_switch(&raw.main_sp, raw.co_sp);
	uint64_t t1 = bench_now_ns();
	return (double)(t1 - t0) / (2.0 * (double)raw.n);
}
#endif

/* ------------------------------------------------- task_switch / yield -- */

struct yb {
	struct tide_loop *loop;
	uint64_t n;     /* yields per task */
	int tasks;      /* 1: task_yield, 2: task_switch */
};

static int64_t yield_body(void *arg)
{
	struct yb *b = arg;
	for (uint64_t i = 0; i < b->n; i++)
		BENCH_CHECK(tide_yield());
	return 0;
}

/* ns per yield (1 task) or per task-to-task switch (2 tasks). */
static double yield_run(void *ctx)
{
	struct yb *b = ctx;
	struct tide_future *t[2];
	uint64_t t0 = bench_now_ns();
	for (int i = 0; i < b->tasks; i++)
		BENCH_CHECK(tide_task_spawn(b->loop, yield_body, b, NULL, &t[i]));
	for (int i = 0; i < b->tasks; i++)
		BENCH_CHECK(tide_loop_run_until_complete(b->loop, t[i]));
	uint64_t t1 = bench_now_ns();
	for (int i = 0; i < b->tasks; i++)
		tide_future_unref(t[i]);
	return (double)(t1 - t0) / ((double)b->tasks * (double)b->n);
}

/* ---------------------------------------------------------------- spawn -- */

#define SPAWN_BATCH 1000

struct sb {
	struct tide_loop *loop;
	uint64_t n;
	uint64_t ran;
	struct tide_future *f[SPAWN_BATCH];
};

static int64_t spawn_body(void *arg)
{
	((struct sb *)arg)->ran++;
	return 0;
}

static double spawn_run(void *ctx)
{
	struct sb *b = ctx;
	b->ran = 0;
	uint64_t t0 = bench_now_ns();
	for (uint64_t done = 0; done < b->n;) {
		int k = b->n - done < SPAWN_BATCH ? (int)(b->n - done) : SPAWN_BATCH;
		for (int i = 0; i < k; i++)
			BENCH_CHECK(tide_task_spawn(b->loop, spawn_body, b, NULL, &b->f[i]));
		/* Tasks start in spawn order: the last one done means all are. */
		BENCH_CHECK(tide_loop_run_until_complete(b->loop, b->f[k - 1]));
		for (int i = 0; i < k; i++) {
			BENCH_ASSERT(tide_future_done(b->f[i]));
			tide_future_unref(b->f[i]);
		}
		done += (uint64_t)k;
	}
	uint64_t t1 = bench_now_ns();
	BENCH_ASSERT(b->ran == b->n);
	return (double)b->n * 1e9 / (double)(t1 - t0);
}

/* ------------------------------------------------------ queue ping-pong -- */

struct qb {
	struct tide_loop *loop;
	struct tide_queue *q1, *q2;
	uint64_t n;
};

static int64_t ping_body(void *arg)
{
	struct qb *b = arg;
	void *x;
	for (uint64_t i = 1; i <= b->n; i++) {
		BENCH_CHECK(tide_queue_put(b->q1, (void *)(uintptr_t)i, 0));
		BENCH_CHECK(tide_queue_get(b->q2, &x));
		BENCH_ASSERT((uintptr_t)x == i);
	}
	return 0;
}

static int64_t pong_body(void *arg)
{
	struct qb *b = arg;
	void *x;
	for (uint64_t i = 1; i <= b->n; i++) {
		BENCH_CHECK(tide_queue_get(b->q1, &x));
		BENCH_CHECK(tide_queue_put(b->q2, x, 0));
	}
	return 0;
}

static double queue_run(void *ctx)
{
	struct qb *b = ctx;
	struct tide_future *a, *c;
	uint64_t t0 = bench_now_ns();
	BENCH_CHECK(tide_task_spawn(b->loop, ping_body, b, NULL, &a));
	BENCH_CHECK(tide_task_spawn(b->loop, pong_body, b, NULL, &c));
	BENCH_CHECK(tide_loop_run_until_complete(b->loop, a));
	BENCH_CHECK(tide_loop_run_until_complete(b->loop, c));
	uint64_t t1 = bench_now_ns();
	tide_future_unref(a);
	tide_future_unref(c);
	BENCH_ASSERT(tide_queue_size(b->q1) == 0 && tide_queue_size(b->q2) == 0);
	return (double)b->n * 1e9 / (double)(t1 - t0);
}

#ifdef TIDE_BENCH_LIBUV
struct uv_qb {
	uv_loop_t loop;
	uv_idle_t a, b;
	uint64_t n, count;
};

static void uv_pong_cb(uv_idle_t *h);

/* Ping's turn: hand it to pong (one hand-off per loop iteration). */
static void uv_ping_cb(uv_idle_t *h)
{
	struct uv_qb *u = h->data;
	uv_idle_stop(&u->a);
	if (u->count == u->n)
		return; /* no active handle left: uv_run returns */
	u->count++;
	BENCH_UV_CHECK(uv_idle_start(&u->b, uv_pong_cb));
}

static void uv_pong_cb(uv_idle_t *h)
{
	struct uv_qb *u = h->data;
	uv_idle_stop(&u->b);
	BENCH_UV_CHECK(uv_idle_start(&u->a, uv_ping_cb));
}

static double uv_queue_run(void *ctx)
{
	struct uv_qb *u = ctx;
	u->count = 0;
	uint64_t t0 = bench_now_ns();
	BENCH_UV_CHECK(uv_idle_start(&u->a, uv_ping_cb));
	uv_run(&u->loop, UV_RUN_DEFAULT);
	uint64_t t1 = bench_now_ns();
	BENCH_ASSERT(u->count == u->n);
	return (double)u->n * 1e9 / (double)(t1 - t0);
}
#endif

/* ---------------------------------------------------------------- memory -- */

#define MEM_STACK (16 * 1024)

static long statm_resident_bytes(void)
{
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	BENCH_ASSERT(f);
	BENCH_ASSERT(fscanf(f, "%ld %ld", &size, &res) == 2);
	fclose(f);
	return res * sysconf(_SC_PAGESIZE);
}

/* Page tables: kernel memory that RSS does not count. */
static long status_kib(const char *key)
{
	char line[256];
	long v = -1;
	size_t k = strlen(key);
	FILE *f = fopen("/proc/self/status", "r");
	BENCH_ASSERT(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, k) && line[k] == ':') {
			v = strtol(line + k + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

struct mb {
	struct tide_future *never;
	uint64_t parked;
};

static int64_t idle_body(void *arg)
{
	struct mb *m = arg;
	m->parked++;
	return tide_await(m->never); /* -ECANCELED in the end */
}

static void memory_bench(void)
{
	const char *name = "task_memory_idle";
	if (!bench_selected(name))
		return;
	uint64_t n = bench_scaled(10000, 100);
	if (n > 20000)
		n = 20000; /* two mappings per stack; vm.max_map_count is 65530 */
	struct tide_loop *loop = bench_tide_loop();
	struct tide_future **f = calloc(n, sizeof(*f));
	BENCH_ASSERT(f);
	memset(f, 0xff, n * sizeof(*f)); /* the bench's own array is paid before */
	struct mb m = { NULL, 0 };
	BENCH_CHECK(tide_future_new(loop, &m.never));
	struct tide_task_opts o;
	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.stack_size = MEM_STACK;

	long pte0 = status_kib("VmPTE");
	long rss0 = statm_resident_bytes();
	for (uint64_t i = 0; i < n; i++)
		BENCH_CHECK(tide_task_spawn(loop, idle_body, &m, &o, &f[i]));
	while (m.parked < n)
		BENCH_CHECK(tide_loop_run_once(loop, 0));
	long rss1 = statm_resident_bytes();
	long pte1 = status_kib("VmPTE");

	/* Cancel them all; the loop reaps them and frees their stacks. */
	for (uint64_t i = 0; i < n; i++)
		BENCH_ASSERT(tide_task_cancel(f[i]) == 1);
	for (uint64_t i = 0; i < n; i++) {
		int rc = tide_loop_run_until_complete(loop, f[i]);
		BENCH_ASSERT(rc == -ECANCELED);
		tide_future_unref(f[i]);
	}
	BENCH_ASSERT(tide_all_tasks(loop, NULL, 0) == 0);
	tide_future_unref(m.never);
	bench_tide_loop_free(loop);
	free(f);

	struct py_side py = { "memory", n };
	struct bench_side s[2] = {
		{ "tide", NULL, NULL, (double)(rss1 - rss0) / (double)n / 1024.0 },
		{ "asyncio", NULL, NULL, NAN },
	};
	const char *np = getenv("BENCH_NO_PEER");
	if (!(np && *np && *np != '0')) {
		double v = py_run(&py);
		s[1].value = isnan(v) ? NAN : v / 1024.0;
	}
	char extra[160];
	snprintf(extra, sizeof(extra), ",\"n\":%llu,\"stack_kib\":%d,\"pte_kib_per_task\":%.3g",
		 (unsigned long long)n, MEM_STACK / 1024,
		 pte0 >= 0 && pte1 >= 0 ? (double)(pte1 - pte0) / (double)n : NAN);
	bench_emit_sides(name, "KiB/task", s, 2, 0, 1, "<= 20 KiB", backend_name, extra);
}

/* ------------------------------------------------------------------ main -- */

int main(void)
{
	char extra[256], pyv[80];
	struct tide_loop *probe = bench_tide_loop();
	backend_name = tide_loop_backend(probe);
	bench_tide_loop_free(probe);
	py_version(pyv, sizeof(pyv));

	/* First, while the process is cold: RSS growth is the point. */
	memory_bench();

	uc.n = bench_scaled(500000, 1000);
#ifdef TIDE_BENCH_RAW_SWITCH
	if (bench_selected("coro_switch")) {
		struct bench_side s[2] = { { "tide", raw_run, NULL, NAN }, { "ucontext", uc_run, NULL, NAN } };
		raw.n = bench_scaled(20000000, 1000);
		bench_measure_sides(s, 2);
		snprintf(extra, sizeof(extra), ",\"n_tide\":%llu,\"n_ucontext\":%llu,\"what\":\"src/coro-x86_64.S\"",
			 2 * (unsigned long long)raw.n, 2 * (unsigned long long)uc.n);
		bench_emit_sides("coro_switch", "ns/switch", s, 2, 0, 0, "<= 10 ns, >= 20x ucontext",
				 backend_name, extra);
	}
#endif
	if (bench_selected("task_switch")) {
		struct yb b = { bench_tide_loop(), bench_scaled(2000000, 1000), 2 };
		struct py_side py = { "switch", bench_scaled(200000, 100) };
		struct bench_side s[3] = {
			{ "tide", yield_run, &b, NAN },
			{ "ucontext", uc_run, NULL, NAN },
			{ "asyncio", py_run, &py, NAN },
		};
		bench_measure_sides(s, 3);
		snprintf(extra, sizeof(extra), ",\"n_tide\":%llu,\"n_ucontext\":%llu,\"n_asyncio\":%llu,\"python\":%s",
			 2 * (unsigned long long)b.n, 2 * (unsigned long long)uc.n,
			 2 * (unsigned long long)py.n, pyv);
		bench_emit_sides("task_switch", "ns/switch", s, 3, 0, 0, "<= 10 ns, >= 20x ucontext",
				 backend_name, extra);
		bench_tide_loop_free(b.loop);
	}
	if (bench_selected("task_yield")) {
		struct yb b = { bench_tide_loop(), bench_scaled(2000000, 1000), 1 };
		struct py_side py = { "yield", bench_scaled(200000, 100) };
		struct bench_side s[2] = { { "tide", yield_run, &b, NAN }, { "asyncio", py_run, &py, NAN } };
		bench_measure_sides(s, 2);
		snprintf(extra, sizeof(extra), ",\"n_tide\":%llu,\"n_asyncio\":%llu,\"python\":%s",
			 (unsigned long long)b.n, (unsigned long long)py.n, pyv);
		bench_emit_sides("task_yield", "ns/yield", s, 2, 0, 0, NULL, backend_name, extra);
		bench_tide_loop_free(b.loop);
	}
	if (bench_selected("task_spawn")) {
		struct sb *b = calloc(1, sizeof(*b));
		BENCH_ASSERT(b);
		b->loop = bench_tide_loop();
		b->n = bench_scaled(1000000, SPAWN_BATCH);
		struct py_side py = { "spawn", bench_scaled(200000, SPAWN_BATCH) };
		struct bench_side s[2] = { { "tide", spawn_run, b, NAN }, { "asyncio", py_run, &py, NAN } };
		bench_measure_sides(s, 2);
		snprintf(extra, sizeof(extra),
			 ",\"n_tide\":%llu,\"n_asyncio\":%llu,\"batch\":%d,\"stack_kib\":64,\"python\":%s",
			 (unsigned long long)b->n, (unsigned long long)py.n, SPAWN_BATCH, pyv);
		bench_emit_sides("task_spawn", "tasks/s", s, 2, 1, 0, ">= 2,000,000/s", backend_name, extra);
		bench_tide_loop_free(b->loop);
		free(b);
	}
	if (bench_selected("queue_pingpong")) {
		struct qb b = { bench_tide_loop(), NULL, NULL, bench_scaled(1000000, 1000) };
		BENCH_CHECK(tide_queue_new(b.loop, TIDE_QUEUE_FIFO, 0, &b.q1));
		BENCH_CHECK(tide_queue_new(b.loop, TIDE_QUEUE_FIFO, 0, &b.q2));
		struct py_side py = { "pingpong", bench_scaled(100000, 100) };
		struct bench_side s[3] = {
			{ "tide", queue_run, &b, NAN },
			{ "asyncio", py_run, &py, NAN },
			{ "libuv", NULL, NULL, NAN },
		};
#ifdef TIDE_BENCH_LIBUV
		struct uv_qb *u = calloc(1, sizeof(*u));
		BENCH_ASSERT(u);
		u->n = b.n;
		BENCH_UV_CHECK(uv_loop_init(&u->loop));
		BENCH_UV_CHECK(uv_idle_init(&u->loop, &u->a));
		BENCH_UV_CHECK(uv_idle_init(&u->loop, &u->b));
		u->a.data = u;
		u->b.data = u;
		s[2].fn = uv_queue_run;
		s[2].ctx = u;
#endif
		bench_measure_sides(s, 3);
		snprintf(extra, sizeof(extra), ",\"n_tide\":%llu,\"n_asyncio\":%llu,\"n_libuv\":%llu,\"python\":%s",
			 (unsigned long long)b.n, (unsigned long long)py.n, (unsigned long long)b.n, pyv);
		bench_emit_sides("queue_pingpong", "round-trips/s", s, 3, 1, 0, ">= 50x asyncio", backend_name,
				 extra);
		tide_queue_free(b.q1);
		tide_queue_free(b.q2);
		bench_tide_loop_free(b.loop);
#ifdef TIDE_BENCH_LIBUV
		uv_close((uv_handle_t *)&u->a, NULL);
		uv_close((uv_handle_t *)&u->b, NULL);
		uv_run(&u->loop, UV_RUN_DEFAULT);
		BENCH_UV_CHECK(uv_loop_close(&u->loop));
		free(u);
#endif
	}
	return 0;
}
