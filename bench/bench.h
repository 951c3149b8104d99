/* SPDX-License-Identifier: MIT */
/*
 * bench.h: what every bench/ program shares: clocks, the repetition rule,
 * the JSON line, and a seeded PRNG so that tide and its peer get exactly the
 * same inputs.
 *
 * The one hard part is fairness: both sides run the same structure, the same
 * number of repetitions (plus one discarded warm-up each), alternating which
 * side goes first, and are reported by the same statistic (the median).
 *
 * Environment knobs (all optional):
 *   BENCH_REPS   measured repetitions per side (default 5; the median is kept)
 *   BENCH_SCALE  multiplies every workload size (default 1; 0.1 for a smoke run)
 *   BENCH_NO_PEER=1  runs tide only (for profilers); libuv keys become null
 *   BENCH_ONLY   runs only the workloads whose name contains this string
 * The libuv peer is compiled in when configure found libuv (TIDE_BENCH_LIBUV);
 * without it the "libuv" and "ratio_libuv" keys are null. bench-task has
 * other peers too (bench_measure_sides, bench_emit_sides below).
 */
#ifndef TIDE_BENCH_H
#define TIDE_BENCH_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tide.h"

#ifdef TIDE_BENCH_LIBUV
#include <uv.h>
#endif

/* Any failure of the API under test ends the run loudly: a benchmark that
 * silently measures an error path is worse than none. */
#define BENCH_CHECK(expr)                                                    \
	do {                                                                 \
		long bench_rc_ = (long)(expr);                               \
		if (bench_rc_ < 0) {                                         \
			fprintf(stderr, "%s:%d: %s = %ld (%s)\n", __FILE__, \
				__LINE__, #expr, bench_rc_,                  \
				tide_strerror((int)bench_rc_));              \
			exit(1);                                             \
		}                                                            \
	} while (0)

#define BENCH_UV_CHECK(expr)                                                 \
	do {                                                                 \
		int bench_rc_ = (expr);                                      \
		if (bench_rc_ < 0) {                                         \
			fprintf(stderr, "%s:%d: %s = %d (%s)\n", __FILE__,  \
				__LINE__, #expr, bench_rc_,                  \
				uv_strerror(bench_rc_));                     \
			exit(1);                                             \
		}                                                            \
	} while (0)

#define BENCH_ASSERT(cond)                                                   \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: assertion failed: %s\n",    \
				__FILE__, __LINE__, #cond);                  \
			exit(1);                                             \
		}                                                            \
	} while (0)

static inline uint64_t bench_clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
/* Wall time. */
static inline uint64_t bench_now_ns(void)
{
	return bench_clock_ns(CLOCK_MONOTONIC);
}
/* CPU time (user + system) of the calling thread: time spent sleeping in
 * epoll_wait or io_uring_enter does not count. */
static inline uint64_t bench_cpu_ns(void)
{
	return bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static inline int bench_reps(void)
{
	const char *s = getenv("BENCH_REPS");
	int n = s && *s ? atoi(s) : 5;
	return n > 0 ? n : 1;
}

/* n scaled by $BENCH_SCALE, never below min. */
static inline uint64_t bench_scaled(uint64_t n, uint64_t min)
{
	const char *s = getenv("BENCH_SCALE");
	double f = s && *s ? atof(s) : 1.0;
	double v = (double)n * (f > 0 ? f : 1.0);
	return v < (double)min ? min : (uint64_t)v;
}

/* Whether workload name is selected by $BENCH_ONLY (a substring; unset: all). */
static inline int bench_selected(const char *name)
{
	const char *s = getenv("BENCH_ONLY");
	return !s || !*s || strstr(name, s) != NULL;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* xorshift64*: the same seed gives tide and libuv the same sequence. */
struct bench_rng {
	uint64_t s;
};
static inline uint64_t bench_rand(struct bench_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 2685821657736338717ull;
}

/* One measured workload: a function that runs it once and returns its value
 * (a rate, higher is better) for each side. */
typedef double (*bench_run_fn)(void *ctx);

/*
 * Runs one warm-up and BENCH_REPS measured repetitions of each side,
 * alternating which side goes first, and stores the medians. libuv_fn may be
 * NULL (no peer): *libuv_out is then NAN.
 */
static inline void bench_measure(bench_run_fn tide_fn, void *tide_ctx,
				 bench_run_fn libuv_fn, void *libuv_ctx,
				 double *tide_out, double *libuv_out)
{
	int reps = bench_reps();
	const char *np = getenv("BENCH_NO_PEER");
	if (np && *np && *np != '0')
		libuv_fn = NULL; /* profiling tide alone */
	double *t = calloc((size_t)reps, sizeof(double));
	double *u = calloc((size_t)reps, sizeof(double));
	BENCH_ASSERT(t && u);
	tide_fn(tide_ctx);
	if (libuv_fn)
		libuv_fn(libuv_ctx);
	for (int i = 0; i < reps; i++) {
		if (i % 2 == 0 || !libuv_fn) {
			t[i] = tide_fn(tide_ctx);
			if (libuv_fn)
				u[i] = libuv_fn(libuv_ctx);
		} else {
			u[i] = libuv_fn(libuv_ctx);
			t[i] = tide_fn(tide_ctx);
		}
	}
	*tide_out = bench_median(t, reps);
	*libuv_out = libuv_fn ? bench_median(u, reps) : NAN;
	free(t);
	free(u);
}

static inline void bench_print_num(const char *key, double v)
{
	if (isnan(v))
		printf(",\"%s\":null", key);
	else
		printf(",\"%s\":%.6g", key, v);
}

/*
 * The JSON line. higher_is_better: ratio_libuv is tide / libuv for
 * throughputs, libuv / tide for costs, so that > 1 always means tide wins;
 * < 0 means no ratio for this unit (it is printed as null) and a single
 * counted run rather than a median of repetitions. extra is
 * appended verbatim (",\"key\":value..." or "").
 */
static inline void bench_emit(const char *bench, const char *unit, double tide,
			      double libuv, int higher_is_better, const char *backend,
			      const char *extra)
{
	double ratio = NAN;
	if (higher_is_better > 0 && !isnan(libuv) && libuv > 0)
		ratio = tide / libuv;
	else if (higher_is_better == 0 && !isnan(libuv) && tide > 0)
		ratio = libuv / tide;
	printf("{\"bench\":\"%s\",\"unit\":\"%s\"", bench, unit);
	bench_print_num("tide", tide);
	bench_print_num("libuv", libuv);
	if (isnan(ratio))
		printf(",\"ratio_libuv\":null");
	else
		printf(",\"ratio_libuv\":%.3f", ratio);
	printf(",\"backend\":\"%s\"", backend ? backend : "?");
	if (higher_is_better >= 0)
		printf(",\"reps\":%d,\"stat\":\"median\"", bench_reps());
	printf("%s}\n", extra ? extra : "");
	fflush(stdout);
}

/*
 * Several peers at once (bench-task: ucontext, asyncio, libuv). Side 0 is
 * tide; a side whose fn is NULL (peer not built, not installed) or that
 * returns NAN is reported as null. One discarded warm-up per side, then
 * BENCH_REPS rounds in which the side that goes first rotates; medians.
 * BENCH_NO_PEER=1 runs side 0 only.
 */
struct bench_side {
	const char *name; /* JSON key: "tide", "ucontext", "asyncio", "libuv" */
	bench_run_fn fn;
	void *ctx;
	double value;     /* out: the median, or NAN */
};

static inline void bench_measure_sides(struct bench_side *s, int n)
{
	int reps = bench_reps();
	const char *np = getenv("BENCH_NO_PEER");
	int active = np && *np && *np != '0' ? 1 : n;
	double *v = calloc((size_t)reps * (size_t)n, sizeof(double));
	BENCH_ASSERT(v);
	for (int k = 0; k < active; k++)
		if (s[k].fn)
			s[k].fn(s[k].ctx);
	for (int i = 0; i < reps; i++)
		for (int j = 0; j < active; j++) {
			int k = (i + j) % active;
			if (s[k].fn)
				v[k * reps + i] = s[k].fn(s[k].ctx);
		}
	for (int k = 0; k < n; k++) {
		int nan = k >= active || !s[k].fn;
		for (int i = 0; !nan && i < reps; i++)
			nan = isnan(v[k * reps + i]);
		s[k].value = nan ? NAN : bench_median(&v[k * reps], reps);
	}
	free(v);
}

/*
 * The JSON line for several peers: "tide", each peer's value under its
 * name, then "ratio_<peer>" for each, > 1 meaning tide wins (tide / peer
 * for throughputs, peer / tide for costs: higher_is_better 1 or 0; < 0: no
 * ratios). single: one cold measurement per side ("reps":1,"stat":"single")
 * rather than the median of BENCH_REPS. goal (may be NULL) is a short string.
 */
static inline void bench_emit_sides(const char *bench, const char *unit, const struct bench_side *s,
				    int n, int higher_is_better, int single, const char *goal,
				    const char *backend, const char *extra)
{
	printf("{\"bench\":\"%s\",\"unit\":\"%s\"", bench, unit);
	for (int k = 0; k < n; k++)
		bench_print_num(s[k].name, s[k].value);
	for (int k = 1; k < n; k++) {
		double r = NAN, t = s[0].value, p = s[k].value;
		if (!isnan(t) && !isnan(p) && t > 0 && p > 0 && higher_is_better >= 0)
			r = higher_is_better ? t / p : p / t;
		printf(",\"ratio_%s\":", s[k].name);
		if (isnan(r))
			printf("null");
		else
			printf("%.3f", r);
	}
	if (goal)
		printf(",\"goal\":\"%s\"", goal);
	printf(",\"backend\":\"%s\"", backend ? backend : "?");
	if (single)
		printf(",\"reps\":1,\"stat\":\"single\"");
	else
		printf(",\"reps\":%d,\"stat\":\"median\"", bench_reps());
	printf("%s}\n", extra ? extra : "");
	fflush(stdout);
}

/* A loop on the default backend (or $TIDE_BACKEND), debug off. */
static inline struct tide_loop *bench_tide_loop(void)
{
	struct tide_loop *loop;
	struct tide_loop_opts o;
	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.debug = -1; /* off, whatever TIDE_DEBUG says */
	BENCH_CHECK(tide_loop_new(&o, &loop));
	return loop;
}

static inline void bench_tide_loop_free(struct tide_loop *loop)
{
	int rc = tide_loop_close(loop);
	BENCH_CHECK(rc);
	rc = tide_loop_free(loop);
	if (rc != 0) {
		fprintf(stderr, "tide_loop_free: %d (%s): something leaked\n", rc,
			tide_strerror(rc));
		exit(1);
	}
}

#endif /* TIDE_BENCH_H */
