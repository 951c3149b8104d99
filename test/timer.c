/* SPDX-License-Identifier: MIT */
/*
 * test/timer.c: timers on every backend configuration: never early, equal
 * deadlines in arming order, cancelled never fire, no busy wait, and the
 * million-timer storm (random deadlines over 0.2 s, 10% sharing one
 * deadline, half cancelled).
 */
#include "config.h"
#include "helpers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct tide_loop *g_loop;

static void stop_cb(void *arg)
{
	(void)arg;
	tide_loop_stop(g_loop);
}

/* xorshift64*: deterministic, so a failure can be replayed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* --------------------------------------------------------- not early -- */

#define NE_N 300
static uint64_t ne_arm_mono[NE_N];
static double ne_delay[NE_N], ne_when[NE_N];
static int ne_fired[NE_N], ne_count;
static uint64_t ne_max_late_ns;

static void ne_cb(void *arg)
{
	int i = (int)(intptr_t)arg;
	uint64_t mono = tt_mono_ns(), now = tide_loop_now_ns(g_loop);
	uint64_t elapsed = mono - ne_arm_mono[i];

	ck_assert_int_eq(ne_fired[i], 0);
	ne_fired[i] = 1;
	/* Not early by the caller's own clock... */
	ck_assert_msg((double)elapsed >= ne_delay[i] * 1e9,
		      "timer %d: delay %.6f s fired after %.6f s", i, ne_delay[i], (double)elapsed / 1e9);
	/* ...nor by the loop's clock against the handle's deadline. */
	ck_assert_msg((double)now + 1.0 >= ne_when[i] * 1e9,
		      "timer %d: deadline %.9f fired at loop time %.9f", i, ne_when[i], (double)now / 1e9);
	if (elapsed - (uint64_t)(ne_delay[i] * 1e9) > ne_max_late_ns)
		ne_max_late_ns = elapsed - (uint64_t)(ne_delay[i] * 1e9);
	if (++ne_count == NE_N)
		tide_loop_stop(g_loop);
}

START_TEST(test_timers_never_early)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	struct tide_handle h;

	g_loop = loop;
	tt_stats(loop, &s0);
	for (int i = 0; i < NE_N; i++) {
		/* 0..40 ms, some with sub-millisecond parts that rounding to ms would lose. */
		ne_delay[i] = (double)(rng() % 40000000u) / 1e9;
		ne_arm_mono[i] = tt_mono_ns();
		ck_assert_int_eq(tide_call_later(loop, ne_delay[i], ne_cb, (void *)(intptr_t)i, &h), 0);
		ne_when[i] = tide_handle_when(&h);
		ck_assert(ne_when[i] >= (double)ne_arm_mono[i] / 1e9 + ne_delay[i] - 1e-6);
	}
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(ne_count, NE_N);
	/* Late is allowed (a loaded machine deschedules the loop); only a hang is caught. */
	ck_assert_msg(ne_max_late_ns < TT_HANG_NS, "a timer fired %.3f s late", (double)ne_max_late_ns / 1e9);
	tt_stats(loop, &s1);
	ck_assert_uint_eq(s1.timers_fired - s0.timers_fired, NE_N);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_timer_no_busy_wait)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	uint64_t t0, dt;

	g_loop = loop;
	tt_stats(loop, &s0);
	t0 = tt_mono_ns();
	ck_assert_int_eq(tide_call_later(loop, 0.2, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	dt = tt_mono_ns() - t0;
	tt_stats(loop, &s1);
	ck_assert_msg(dt >= 200000000u, "0.2 s timer fired after %.6f s", (double)dt / 1e9);
	ck_assert_msg(dt < TT_HANG_NS, "0.2 s timer fired after %.6f s", (double)dt / 1e9);
	/* The loop slept in the backend; it did not spin. */
	ck_assert_msg(s1.iterations - s0.iterations <= 20, "%llu iterations for one 0.2 s timer",
		      (unsigned long long)(s1.iterations - s0.iterations));
	ck_assert_uint_eq(s1.timers_fired - s0.timers_fired, 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------------------- order -- */

static int ord[4096], nord;

static void ord_cb(void *arg)
{
	ck_assert_int_lt(nord, 4096);
	ord[nord++] = (int)(intptr_t)arg;
}

START_TEST(test_timer_deadline_order)
{
	struct tide_loop *loop = tt_loop_new();
	double base = tide_loop_time(loop);

	g_loop = loop;
	nord = 0;
	/*
	 * Armed out of order against one time base: relative delays would
	 * each start at their own call, and a process descheduled between two
	 * calls for longer than the gap between two delays would swap them.
	 */
	ck_assert_int_eq(tide_call_at(loop, base + 0.030, ord_cb, (void *)3, NULL), 0);
	ck_assert_int_eq(tide_call_at(loop, base + 0.010, ord_cb, (void *)1, NULL), 0);
	ck_assert_int_eq(tide_call_at(loop, base + 0.020, ord_cb, (void *)2, NULL), 0);
	ck_assert_int_eq(tide_call_at(loop, base + 0.001, ord_cb, (void *)0, NULL), 0);
	ck_assert_int_eq(tide_call_at(loop, base + 0.040, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(nord, 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(ord[i], i);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_timer_equal_deadlines)
{
	struct tide_loop *loop = tt_loop_new();
	double base = tide_loop_time(loop);
	double a = base + 0.02, b = base + 0.01;

	g_loop = loop;
	nord = 0;
	/* Two groups of equal deadlines, armed interleaved, the later group first. */
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(tide_call_at(loop, a, ord_cb, (void *)(intptr_t)(2000 + i), NULL), 0);
		ck_assert_int_eq(tide_call_at(loop, b, ord_cb, (void *)(intptr_t)(1000 + i), NULL), 0);
	}
	ck_assert_int_eq(tide_call_at(loop, a, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(nord, 2000);
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(ord[i], 1000 + i);
		ck_assert_int_eq(ord[1000 + i], 2000 + i);
	}
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static struct tide_handle victims[8];
static int victim_ret[8];

static void ord_cancel_cb(void *arg)
{
	ord_cb(arg);
	for (int i = 0; i < 8; i++)
		victim_ret[i] = tide_handle_cancel(&victims[i]);
}

START_TEST(test_timer_cancelled_never_fire)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_handle hs[1000];
	double base = tide_loop_time(loop);
	struct tide_loop_stats s0, s1;

	g_loop = loop;
	nord = 0;
	tt_stats(loop, &s0);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(tide_call_at(loop, base + 0.001 * (i % 20), ord_cb, (void *)(intptr_t)i, &hs[i]), 0);
	for (int i = 1; i < 1000; i += 2) {
		ck_assert_int_eq(tide_handle_cancel(&hs[i]), 1);
		ck_assert_int_eq(tide_handle_cancel(&hs[i]), 0);
	}
	/* Cancelled from a timer callback: same deadline (already due) and later ones. */
	ck_assert_int_eq(tide_call_at(loop, base + 0.025, ord_cancel_cb, (void *)5000, NULL), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(tide_call_at(loop, base + 0.025, ord_cb, (void *)(intptr_t)(6000 + i), &victims[i]), 0);
	for (int i = 4; i < 8; i++)
		ck_assert_int_eq(tide_call_at(loop, base + 0.030 + 0.001 * i, ord_cb, (void *)(intptr_t)(6000 + i), &victims[i]), 0);
	ck_assert_int_eq(tide_call_at(loop, base + 0.05, stop_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);

	ck_assert_int_eq(nord, 501);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(victim_ret[i], 1);
	/* Fired: the even ones, by deadline then arming order, then 5000. */
	for (int k = 0, prev = -1; k < 500; k++) {
		int i = ord[k];

		ck_assert_int_eq(i % 2, 0);
		if (prev >= 0)
			ck_assert(prev % 20 < i % 20 || (prev % 20 == i % 20 && prev < i));
		prev = i;
	}
	ck_assert_int_eq(ord[500], 5000);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(tide_handle_cancel(&hs[i]), 0);
	tt_stats(loop, &s1);
	ck_assert_uint_eq(s1.timers_fired - s0.timers_fired, 502);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static void arm_zero_cb(void *arg)
{
	ord_cb(arg);
	ck_assert_int_eq(tide_call_later(g_loop, 0, ord_cb, (void *)2, NULL), 0);
}

START_TEST(test_timer_zero_delay)
{
	struct tide_loop *loop = tt_loop_new();

	g_loop = loop;
	nord = 0;
	/* A zero delay armed outside the loop is due on the first iteration. */
	ck_assert_int_eq(tide_call_later(loop, 0, arm_zero_cb, (void *)1, NULL), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(nord, 1);
	/* One armed by a callback waits for the next iteration. */
	ck_assert_int_eq(tide_loop_run_once(loop, 1.0), 1);
	ck_assert_int_eq(nord, 2);
	ck_assert_int_eq(ord[1], 2);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------- one million timers -- */

#define MT_N 1000000
#define MT_SHARED_OFF 100000u /* in microseconds after base: the shared deadline */

static uint32_t *mt_off;          /* deadline offset from base, microseconds */
static unsigned char *mt_state;   /* 0 armed, 1 cancelled, 2 fired */
static double mt_base;
static long mt_fired, mt_bad_early, mt_bad_order, mt_bad_state;
static long mt_prev = -1;

static inline double mt_when(long i)
{
	return mt_base + (double)mt_off[i] * 1e-6;
}

static void mt_cb(void *arg)
{
	long i = (long)(intptr_t)arg;
	uint64_t now = tide_loop_now_ns(g_loop), mono = tt_mono_ns();
	double when_ns = mt_when(i) * 1e9;

	if (mt_state[i] != 0)
		mt_bad_state++;
	mt_state[i] = 2;
	mt_fired++;
	if ((double)now + 1.0 < when_ns || (double)mono + 1.0 < when_ns)
		mt_bad_early++;
	/* Fired in (deadline, arming order); deadlines are whole microseconds apart. */
	if (mt_prev >= 0 && !(mt_off[mt_prev] < mt_off[i] || (mt_off[mt_prev] == mt_off[i] && mt_prev < i)))
		mt_bad_order++;
	mt_prev = i;
}

START_TEST(test_million_timers)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_handle *hs = malloc(sizeof(*hs) * MT_N);
	struct tide_loop_stats s0, s1;
	long cancelled = 0, shared = 0;
	uint64_t t0;
	double lead, start_lag;

	g_loop = loop;
	mt_off = malloc(sizeof(*mt_off) * MT_N);
	mt_state = calloc(MT_N, 1);
	ck_assert(hs && mt_off && mt_state);
	for (long i = 0; i < MT_N; i++) {
		if (rng() % 10 == 0) {
			mt_off[i] = MT_SHARED_OFF;
			shared++;
		} else {
			mt_off[i] = (uint32_t)(rng() % 200000u);
		}
	}
	/*
	 * Calibrate: the deadlines must lie after the arming and the mass cancel,
	 * or every timer would be overdue when the loop starts and an early
	 * firing could not show. Time 50,000 arms and cancels of far timers.
	 */
	t0 = tt_mono_ns();
	for (long i = 0; i < 50000; i++)
		if (tide_call_at(loop, tide_loop_time(loop) + 1000.0, mt_cb, (void *)(intptr_t)i, &hs[i]) != 0 ||
		    tide_handle_cancel(&hs[i]) != 1)
			mt_bad_state++;
	ck_assert_int_eq(mt_bad_state, 0);
	lead = (double)(tt_mono_ns() - t0) / 1e9 * (MT_N / 50000.0) * 2.0 + 0.1;
	tt_stats(loop, &s0);
	t0 = tt_mono_ns();
	mt_base = tide_loop_time(loop) + lead;
	/* Plain counters in the hot loops: every ck_assert writes to Check's pipe. */
	for (long i = 0; i < MT_N; i++)
		if (tide_call_at(loop, mt_when(i), mt_cb, (void *)(intptr_t)i, &hs[i]) != 0)
			mt_bad_state++;
	ck_assert_int_eq(mt_bad_state, 0);
	/* Half cancelled, in one mass cancel after arming. */
	for (long i = 0; i < MT_N; i++) {
		if (rng() & 1) {
			int r = tide_handle_cancel(&hs[i]);

			if (r != 1)
				mt_bad_state++;
			mt_state[i] = 1;
			cancelled++;
		}
	}
	/* After every deadline: anything cancelled that fires would fire before this. */
	ck_assert_int_eq(tide_call_at(loop, mt_base + 0.25, stop_cb, NULL, NULL), 0);
	start_lag = tide_loop_time(loop) - mt_base; /* < 0: the loop starts before the first deadline */
	ck_assert_int_eq(tide_loop_run(loop), 0);
	tt_stats(loop, &s1);
	printf("[%s] million timers: %ld shared the deadline, %ld cancelled, %ld fired, %.3f s "
	       "(loop started %.3f s %s the first deadline); early %ld, out of order %ld\n",
	       tt_cfg->name, shared, cancelled, mt_fired, (double)(tt_mono_ns() - t0) / 1e9,
	       fabs(start_lag), start_lag < 0 ? "before" : "AFTER", mt_bad_early, mt_bad_order);

	ck_assert_int_eq(mt_bad_state, 0);
	ck_assert_int_eq(mt_bad_early, 0);
	ck_assert_int_eq(mt_bad_order, 0);
	ck_assert_int_eq(mt_fired, MT_N - cancelled);
	for (long i = 0; i < MT_N; i++)
		if (mt_state[i] != 1 && mt_state[i] != 2)
			ck_abort_msg("timer %ld neither cancelled nor fired", i);
	ck_assert_uint_eq(s1.timers_fired - s0.timers_fired, (uint64_t)(MT_N - cancelled) + 1);
	ck_assert(shared > MT_N / 20 && cancelled > MT_N / 3);
	/* The handles are stale now: none cancels anything. */
	for (long i = 0; i < MT_N; i += 997)
		ck_assert_int_eq(tide_handle_cancel(&hs[i]), 0);
	free(hs);
	free(mt_off);
	free(mt_state);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "timer", 180);
	tt_add(&ts, test_timers_never_early);
	tt_add(&ts, test_timer_no_busy_wait);
	tt_add(&ts, test_timer_deadline_order);
	tt_add(&ts, test_timer_equal_deadlines);
	tt_add(&ts, test_timer_cancelled_never_fire);
	tt_add(&ts, test_timer_zero_delay);
	tt_add(&ts, test_million_timers);
	return tt_run(&ts);
}
