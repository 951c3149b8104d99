/* SPDX-License-Identifier: MIT */
/*
 * helpers.h: what every tide test program shares: the three backend
 * configurations each loop-level test runs on, one Check TCase each, and
 * small utilities (clock, pipes, stats).
 *
 * The hard part is that a configuration must be chosen per test, inside the
 * forked child Check runs it in: a checked fixture sets tt_cfg, and
 * tt_loop_new() reads it.
 */
#ifndef TIDE_TEST_HELPERS_H
#define TIDE_TEST_HELPERS_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "tide.h"

/* One backend configuration, named as its TCase. */
struct tt_config {
	const char *name;        /* "io_uring", "io_uring-masked" or "epoll" */
	const char *backend;     /* opts.backend */
	const char *disable_ops; /* opts.disable_ops, or NULL */
	int needs_uring;         /* skipped when io_uring is unavailable */
};

enum { TT_URING, TT_URING_MASKED, TT_EPOLL, TT_NCONFIGS };
extern const struct tt_config tt_configs[TT_NCONFIGS];
/* The configuration of the running test (set by a checked fixture). */
extern const struct tt_config *tt_cfg;

static inline int tt_is_uring(void) { return tt_cfg == &tt_configs[TT_URING]; }
static inline int tt_is_masked(void) { return tt_cfg == &tt_configs[TT_URING_MASKED]; }
static inline int tt_is_epoll(void) { return tt_cfg == &tt_configs[TT_EPOLL]; }

/* Zeroed options with .size, .backend and .disable_ops of the current config. */
void tt_opts_init(struct tide_loop_opts *opts);
/* Makes a loop with opts (filled by tt_opts_init) and asserts success. */
struct tide_loop *tt_loop_new_opts(const struct tide_loop_opts *opts);
/* Makes a loop of the current configuration and asserts success. */
struct tide_loop *tt_loop_new(void);

/* A suite whose loop-level tests run once per configuration. */
struct tt_suite {
	Suite *suite;
	const char *name;
	TCase *tc[TT_NCONFIGS]; /* NULL where the configuration is skipped */
	double timeout;
	int skipped_uring;      /* checks not run for want of io_uring */
	char uring_why[160];    /* why io_uring is unavailable */
	int skipped_other;      /* checks not run for other reasons (tt_skip) */
	char other_why[4][160];
	int nother;
	const char *tcnames[16];  /* every TCase, in the order made (tt_run runs them side by side) */
	int ntc;
};
/* Probes io_uring (in a child process) and makes the configuration TCases. */
void tt_suite_init(struct tt_suite *ts, const char *name, double timeout);
/* Adds one test to every configuration TCase. */
void tt_add(struct tt_suite *ts, const TTest *t);
/* The same for a test that must die of signal sig. */
void tt_add_signal(struct tt_suite *ts, const TTest *t, int sig);
/* A TCase without a configuration (tests that pick their own options). */
TCase *tt_tcase(struct tt_suite *ts, const char *name);
/* Records n checks that this build or machine cannot run, and why. */
void tt_skip(struct tt_suite *ts, int n, const char *why);
/* Runs the suite (CK_NORMAL). Then prints one line per reason checks were
 * skipped, "Skipped: N checks: why", which ./quickstart test adds up.
 * Returns EXIT_SUCCESS, EXIT_FAILURE, or 77 (skip) if nothing ran at all. */
int tt_run(struct tt_suite *ts);

/* Clears TIDE_BACKEND, TIDE_DISABLE_OPS and TIDE_DEBUG so configurations are exact. */
void tt_clean_env(void);

/*
 * Tests never assert speed. An upper bound on elapsed time only tells a hang
 * (or a wait for the long deadline of a test) from a slow machine, and a
 * machine running four suites at once on two cores, or a sanitizer build, is
 * slow: such a bound is TT_HANG_NS, far above any scheduling delay and far
 * below Check's timeouts. Lower bounds (nothing fires early) stay exact.
 */
#define TT_HANG_NS 10000000000ull
#define TT_HANG_S 10.0

/* CLOCK_MONOTONIC in nanoseconds (the clock tide documents). */
uint64_t tt_mono_ns(void);
/* Sleeps ms milliseconds. */
void tt_sleep_ms(unsigned ms);
/* pipe2(O_CLOEXEC | flags), asserted. */
void tt_pipe(int fds[2], int flags);
/* Writes all of buf to fd synchronously, asserted. */
void tt_write_all(int fd, const void *buf, size_t n);
/* tide_loop_stats, asserted. */
void tt_stats(struct tide_loop *loop, struct tide_loop_stats *st);
/* Sum over the paths of ops_completed[kind]. */
uint64_t tt_completed(const struct tide_loop_stats *st, enum tide_op_kind kind);
uint64_t tt_submitted(const struct tide_loop_stats *st, enum tide_op_kind kind);
/*
 * Runs the loop, asleep with nothing else to do, until another thread's
 * tide_call_soon_threadsafe stops it ms milliseconds later: only the
 * wake-up can end the run (a timer turns sleeping through it into a
 * failure rather than a hang).
 */
void tt_run_until_woken(struct tide_loop *loop, unsigned ms);
/* Runs the loop until fut is done and asserts run_until_complete returned expect. */
void tt_run_until_complete(struct tide_loop *loop, struct tide_future *fut, int expect);
/* Asserts the future is done with a result and returns its value. */
int64_t tt_result(struct tide_future *fut);
/* Spawns fn(arg) as a task on loop (NULL: the running loop): the task's reference. */
struct tide_future *tt_spawn(struct tide_loop *loop, tide_task_cb fn, void *arg);
/* Inside a task: awaits t, drops the caller's reference, returns t's outcome
 * (its value, or its error as tide_await says it). */
int64_t tt_join(struct tide_future *t);
/* Runs fn(arg) as the main task of a fresh loop, kept in *loopp meanwhile
 * (for the test's spawns); fn must return 0, and tide_loop_free must
 * succeed (nothing left alive). *loopp is NULL after. */
void tt_run_main(struct tide_loop **loopp, tide_task_cb fn, void *arg);
/* The same on a loop made with opts (filled by tt_opts_init), or the
 * configuration's if NULL. */
void tt_run_main_opts(struct tide_loop **loopp, const struct tide_loop_opts *opts, tide_task_cb fn, void *arg);

/*
 * Counts every allocation the library makes (LeakSanitizer does not
 * report from Check's forked children): the library allocates through
 * counting functions from here on. Only possible before the process's
 * first loop, so only in Check's fork mode: 0, or -EBUSY when a loop
 * exists already (tide_replace_allocator).
 */
int tt_count_allocs(void);
/* The library's allocations not freed since tt_count_allocs. */
long tt_live_allocs(void);
/* Its allocations (malloc, calloc, realloc) of TT_BIG_ALLOC bytes or more
 * since tt_count_allocs: pages malloc may have to fault in. */
#define TT_BIG_ALLOC ((size_t)8 << 10)
long tt_big_allocs(void);
/* The next malloc of n bytes (through the counting allocator) fails;
 * tt_fail_malloc_pending is that n until it has, then 0. */
void tt_fail_next_malloc(size_t n);
size_t tt_fail_malloc_pending(void);

/* What tide_replace_allocator (rc) said for test: true if replaced; false,
 * saying the test skips, when a loop exists already (no fork mode). */
bool tt_allocator_replaced(int rc, const char *test);

/* The sanitizer build runs several times slower: deadlines stretch with Check's. */
double slow_factor(void);

/*
 * Runs the loop until cond holds. The deadline only turns a hang into a
 * readable failure; no test asserts speed.
 */
#define RUN_UNTIL_FOR(loop, cond, secs)                                                          \
	do {                                                                                     \
		uint64_t run_until_end_ = tt_mono_ns() + (uint64_t)((secs) * slow_factor() * 1e9); \
		while (!(cond)) {                                                                \
			ck_assert_msg(tt_mono_ns() < run_until_end_,                             \
				      "[%s] line %d: timed out waiting for %s", tt_cfg->name,   \
				      __LINE__, #cond);                                          \
			ck_assert_int_ge(tide_loop_run_once((loop), 0.05), 0);                   \
		}                                                                                \
	} while (0)
#define RUN_UNTIL(loop, cond) RUN_UNTIL_FOR(loop, cond, 30.0)

#endif
