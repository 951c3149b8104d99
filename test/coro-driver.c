/* SPDX-License-Identifier: MIT */
/*
 * coro-driver.c: checks of the raw context switch (coro.c plus the
 * architecture's assembly), shared by the native Check program test/coro
 * and by the aarch64 build that test/coro runs under qemu-user.
 *
 * What a switch must keep is exactly what the ABI says a callee keeps:
 * callee-saved integer registers (checked through many values live across
 * a switch), the floating-point control state (each context keeps its own
 * rounding mode), and a 16-byte aligned stack at function entry.
 */
#include "task/coro.h"

#include <fenv.h>
#include <stdarg.h>

struct ctx {
	struct tide__coro sched;  /* the driver's own context */
	struct tide__coro co;     /* the coroutine */
	long arg;                 /* value passed in */
	long out;                 /* value passed back */
	int rounds;               /* switches the coroutine made */
	int fe_seen;              /* rounding mode the coroutine saw after resuming */
	int aligned;              /* the stack was 16-byte aligned at entry */
	int done;                 /* the coroutine finished */
};

static char *fail_msg;
static size_t fail_len;
static int failures;

static void fail(const char *fmt, ...)
{
	va_list ap;

	if (!failures++ && fail_msg) {
		va_start(ap, fmt);
		vsnprintf(fail_msg, fail_len, fmt, ap);
		va_end(ap);
	}
}

/* Many values live across the switch: they sit in callee-saved registers. */
static __attribute__((noinline)) long busy_across_switch(struct ctx *c, long seed)
{
	volatile long v = seed;
	long a = v + 1, b = v * 3, d = v ^ 0x5a5a, e = v - 7, f = v * v, g = v + 11, h = v << 3, i = v | 0x100;
	long j = a * b, k = d + e, l = f - g, m = h ^ i;

	tide__coro_switch_to(&c->co, &c->sched, false);
	return a + b + d + e + f + g + h + i + j + k + l + m;
}

static long expected(long v)
{
	long a = v + 1, b = v * 3, d = v ^ 0x5a5a, e = v - 7, f = v * v, g = v + 11, h = v << 3, i = v | 0x100;
	long j = a * b, k = d + e, l = f - g, m = h ^ i;

	return a + b + d + e + f + g + h + i + j + k + l + m;
}

static __attribute__((noinline)) long recurse(int depth)
{
	volatile char pad[256];

	pad[0] = (char)depth;
	pad[255] = (char)(depth * 3);
	if (depth == 0)
		return 1;
	return recurse(depth - 1) + pad[0] + pad[255];
}

static void co_entry(void *p)
{
	struct ctx *c = p;
	int r;

	tide__coro_started(&c->co, &c->sched);
	c->aligned = ((uintptr_t)__builtin_frame_address(0) & 15) == 0;
	/* This context's own rounding mode survives the driver's changes. */
	fesetround(FE_DOWNWARD);
	for (r = 0; r < 1000; r++) {
		long got = busy_across_switch(c, c->arg + r);
		if (got != expected(c->arg + r))
			fail("callee-saved values lost across a switch (round %d)", r);
		c->fe_seen = fegetround();
		if (c->fe_seen != FE_DOWNWARD)
			fail("the coroutine's rounding mode changed under it");
		c->rounds++;
	}
	c->out = recurse(100);
	c->done = 1;
	tide__coro_switch_to(&c->co, &c->sched, true);
	__builtin_unreachable();
}

int coro_driver_run(struct tide_loop *loop, char *msg, size_t len);

int coro_driver_run(struct tide_loop *loop, char *msg, size_t len)
{
	struct ctx cs[8];
	struct tide__stack *st[8];
	int i, r, alive;

	fail_msg = msg;
	fail_len = len;
	failures = 0;
	memset(cs, 0, sizeof(cs));
	for (i = 0; i < 8; i++) {
		if (tide__stack_get(loop, 64 * 1024, &st[i]) < 0) {
			fail("no stack");
			return 1;
		}
		tide__coro_init_sched(&cs[i].sched);
		cs[i].arg = 1000 * (i + 1);
		tide__coro_prepare(&cs[i].co, st[i], co_entry, &cs[i]);
	}
	fesetround(FE_TONEAREST);
	/* Round robin over 8 coroutines, as a loop steps its tasks. */
	for (alive = 8; alive;) {
		alive = 0;
		for (i = 0; i < 8; i++) {
			if (cs[i].done)
				continue;
			tide__coro_switch_to(&cs[i].sched, &cs[i].co, false);
			if (fegetround() != FE_TONEAREST)
				fail("the driver's rounding mode changed after a switch back");
			alive += !cs[i].done;
		}
	}
	for (i = 0; i < 8; i++) {
		if (cs[i].rounds != 1000)
			fail("coroutine %d made %d rounds, not 1000", i, cs[i].rounds);
		if (!cs[i].aligned)
			fail("coroutine %d started on a misaligned stack", i);
		r = (int)cs[i].out;
		if (cs[i].out != recurse(100))
			fail("coroutine %d computed %d after deep recursion", i, r);
		tide__coro_destroy(&cs[i].co);
		tide__stack_put(loop, st[i]);
	}
	fesetround(FE_TONEAREST);
	return failures != 0;
}

#ifdef CORO_DRIVER_MAIN
/* The cross build links coro.c alone: the allocator it calls. */
void *tide__malloc(size_t n) { return malloc(n); }
void tide__free(void *p) { free(p); }
const char *tide__overflow_name(void) { return "coro-driver"; }

int main(void)
{
	static struct tide_loop loop; /* only the stack pool fields are used */
	char msg[256] = "";
	int r = coro_driver_run(&loop, msg, sizeof(msg));

	tide__stack_pool_fini(&loop);
	printf("%s\n", r ? msg : "coro driver: all checks passed");
	return r;
}
#endif
