/* SPDX-License-Identifier: MIT */
/*
 * helpers.c: the backend configurations and the utilities of helpers.h.
 *
 * The io_uring probe runs in a child process: creating a loop in the Check
 * parent would lock the allocator (tide_replace_allocator) in every forked
 * test and leave io_uring state behind in each child.
 */
#include "config.h"
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const struct tt_config tt_configs[TT_NCONFIGS] = {
	[TT_URING] = { "io_uring", "io_uring", NULL, 1 },
	[TT_URING_MASKED] = { "io_uring-masked", "io_uring", "all-optional", 1 },
	[TT_EPOLL] = { "epoll", "epoll", NULL, 0 },
};

const struct tt_config *tt_cfg = &tt_configs[TT_EPOLL];

static void setup_uring(void) { tt_cfg = &tt_configs[TT_URING]; }
static void setup_masked(void) { tt_cfg = &tt_configs[TT_URING_MASKED]; }
static void setup_epoll(void) { tt_cfg = &tt_configs[TT_EPOLL]; }
static void (*const setups[TT_NCONFIGS])(void) = { setup_uring, setup_masked, setup_epoll };

void tt_opts_init(struct tide_loop_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
	opts->backend = tt_cfg->backend;
	opts->disable_ops = tt_cfg->disable_ops;
	opts->debug = -1; /* off: a test that wants debug mode says so */
}

struct tide_loop *tt_loop_new_opts(const struct tide_loop_opts *opts)
{
	struct tide_loop *loop = NULL;
	int ret = tide_loop_new(opts, &loop);

	ck_assert_msg(ret == 0, "tide_loop_new(%s) failed: %d (%s)", tt_cfg->name, ret,
		      tide_strerror(ret));
	ck_assert_ptr_nonnull(loop);
	ck_assert_str_eq(tide_loop_backend(loop), tt_cfg->backend);
	return loop;
}

struct tide_loop *tt_loop_new(void)
{
	struct tide_loop_opts opts;

	tt_opts_init(&opts);
	return tt_loop_new_opts(&opts);
}

void tt_clean_env(void)
{
	unsetenv("TIDE_BACKEND");
	unsetenv("TIDE_DISABLE_OPS");
	unsetenv("TIDE_DEBUG");
}

/* tide_loop_new(io_uring) in a child; returns its result. */
static int probe_uring(void)
{
	int fds[2];
	int ret = -EIO;
	pid_t pid;

	if (pipe(fds) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		struct tide_loop_opts opts;
		struct tide_loop *loop = NULL;
		int r;

		memset(&opts, 0, sizeof(opts));
		opts.size = sizeof(opts);
		opts.backend = "io_uring";
		r = tide_loop_new(&opts, &loop);
		if (r == 0)
			r = tide_loop_free(loop) == 0 ? 0 : -EBUSY;
		if (write(fds[1], &r, sizeof(r)) != sizeof(r))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &ret, sizeof(ret)) != sizeof(ret))
		ret = -EIO;
	close(fds[0]);
	waitpid(pid, NULL, 0);
	return ret;
}

void tt_suite_init(struct tt_suite *ts, const char *name, double timeout)
{
	const char *req = getenv("TIDE_TEST_REQUIRE_URING");
	int require = req && strcmp(req, "1") == 0;
	int uring;

	tt_clean_env();
	uring = probe_uring();
	signal(SIGPIPE, SIG_IGN);
	memset(ts, 0, sizeof(*ts));
	ts->suite = suite_create(name);
	ts->name = name;
	ts->timeout = timeout;
	if (uring != 0 && !require)
		snprintf(ts->uring_why, sizeof(ts->uring_why),
			 "the io_uring and io_uring-masked configurations: tide_loop_new(io_uring): %s (%d)",
			 tide_strerror(uring), uring);
	else if (uring != 0)
		printf("io_uring unavailable (%s) but TIDE_TEST_REQUIRE_URING=1: "
		       "its configurations run and fail\n", tide_strerror(uring));
	fflush(stdout);
	for (int i = 0; i < TT_NCONFIGS; i++) {
		TCase *tc;

		if (tt_configs[i].needs_uring && uring != 0 && !require)
			continue;
		tc = tcase_create(tt_configs[i].name);
		ts->tcnames[ts->ntc++] = tt_configs[i].name;
		tcase_add_checked_fixture(tc, setups[i], NULL);
		tcase_set_timeout(tc, timeout);
		suite_add_tcase(ts->suite, tc);
		ts->tc[i] = tc;
	}
}

void tt_add(struct tt_suite *ts, const TTest *t)
{
	tt_add_signal(ts, t, 0);
}

void tt_add_signal(struct tt_suite *ts, const TTest *t, int sig)
{
	for (int i = 0; i < TT_NCONFIGS; i++)
		if (ts->tc[i])
			tcase_add_test_raise_signal(ts->tc[i], t, sig);
		else
			ts->skipped_uring++;
}

TCase *tt_tcase(struct tt_suite *ts, const char *name)
{
	TCase *tc = tcase_create(name);

	if (ts->ntc < (int)(sizeof(ts->tcnames) / sizeof(ts->tcnames[0])))
		ts->tcnames[ts->ntc++] = name;
	tcase_set_timeout(tc, ts->timeout);
	suite_add_tcase(ts->suite, tc);
	return tc;
}

void tt_skip(struct tt_suite *ts, int n, const char *why)
{
	if (ts->nother < (int)(sizeof(ts->other_why) / sizeof(ts->other_why[0])))
		snprintf(ts->other_why[ts->nother++], sizeof(ts->other_why[0]), "%d checks: %s", n, why);
	ts->skipped_other += n;
}

/*
 * The TCases of a suite (a backend configuration each, mostly) side by
 * side, one child process each: most tests wait on sockets, timers and
 * peers far more than they compute, so make -j2 check finishes sooner
 * when a program's configurations overlap. Each child's Check output goes
 * to a file of its own, printed in TCase order once all are done, with its
 * own "Checks:" line; the counts come back through a pipe. Serial where
 * one TCase is asked for (CK_RUN_CASE), without Check's fork mode (a
 * debugger), or with TIDE_TEST_SERIAL=1.
 */
static bool run_side_by_side(struct tt_suite *ts, int *ran, int *failed)
{
	const char *serial = getenv("TIDE_TEST_SERIAL"), *fork_mode = getenv("CK_FORK");
	pid_t pids[16];
	FILE *outs[16];
	int fds[16][2], n = ts->ntc;

	if (n < 2 || getenv("CK_RUN_CASE") || getenv("CK_RUN_SUITE") || (serial && strcmp(serial, "0")) ||
	    (fork_mode && strcmp(fork_mode, "no") == 0))
		return false;
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < n; i++) {
		/* No ck_assert here: outside a test Check has nowhere to report. */
		outs[i] = tmpfile();
		if (!outs[i] || pipe(fds[i]) < 0 || (pids[i] = fork()) < 0) {
			perror("tt_run: tmpfile, pipe or fork");
			exit(EXIT_FAILURE);
		}
		if (pids[i] == 0) {
			SRunner *sr = srunner_create(ts->suite);
			int counts[2];

			dup2(fileno(outs[i]), STDOUT_FILENO);
			dup2(fileno(outs[i]), STDERR_FILENO);
			srunner_run(sr, NULL, ts->tcnames[i], CK_NORMAL);
			counts[0] = srunner_ntests_run(sr);
			counts[1] = srunner_ntests_failed(sr);
			srunner_free(sr);
			fflush(stdout);
			if (write(fds[i][1], counts, sizeof(counts)) != (ssize_t)sizeof(counts))
				_exit(2);
			_exit(0);
		}
		close(fds[i][1]);
	}
	*ran = *failed = 0;
	for (int i = 0; i < n; i++) {
		int counts[2] = { 0, 1 }, status = 0;
		char buf[4096];
		size_t k;

		if (read(fds[i][0], counts, sizeof(counts)) != (ssize_t)sizeof(counts)) {
			counts[0] = 0;
			counts[1] = 1; /* the child died outside Check's own forks */
		}
		close(fds[i][0]);
		waitpid(pids[i], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			printf("%s: the runner of TCase %s ended with status %d\n", ts->name, ts->tcnames[i], status);
			counts[1] += counts[1] ? 0 : 1;
		}
		rewind(outs[i]);
		while ((k = fread(buf, 1, sizeof(buf), outs[i])) > 0)
			fwrite(buf, 1, k, stdout);
		fclose(outs[i]);
		*ran += counts[0];
		*failed += counts[1];
	}
	/* The suite is a runner's to free (Check has no suite_free). */
	srunner_free(srunner_create(ts->suite));
	fflush(stdout);
	return true;
}

int tt_run(struct tt_suite *ts)
{
	int failed, ran;

	if (!run_side_by_side(ts, &ran, &failed)) {
		SRunner *sr = srunner_create(ts->suite);

		srunner_run_all(sr, CK_NORMAL);
		failed = srunner_ntests_failed(sr);
		ran = srunner_ntests_run(sr);
		srunner_free(sr);
	}
	if (ts->skipped_uring)
		printf("Skipped: %d checks: %s\n", ts->skipped_uring, ts->uring_why);
	for (int i = 0; i < ts->nother; i++)
		printf("Skipped: %s\n", ts->other_why[i]);
	fflush(stdout);
	if (ran == 0 && ts->skipped_uring + ts->skipped_other > 0)
		return 77;
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

uint64_t tt_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void tt_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void tt_pipe(int fds[2], int flags)
{
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC | flags), 0);
}

void tt_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		ck_assert_msg(w > 0, "write: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

void tt_stats(struct tide_loop *loop, struct tide_loop_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	ck_assert_int_eq(tide_loop_stats(loop, st), 0);
}

uint64_t tt_completed(const struct tide_loop_stats *st, enum tide_op_kind kind)
{
	uint64_t n = 0;

	for (int p = 0; p < TIDE_PATH_MAX; p++)
		n += st->ops_completed[kind][p];
	return n;
}

uint64_t tt_submitted(const struct tide_loop_stats *st, enum tide_op_kind kind)
{
	uint64_t n = 0;

	for (int p = 0; p < TIDE_PATH_MAX; p++)
		n += st->ops_submitted[kind][p];
	return n;
}

struct waker {
	struct tide_loop *loop;
	unsigned ms;
};

static void waker_stop(void *arg)
{
	tide_loop_stop(arg);
}

static void *waker_main(void *arg)
{
	struct waker *w = arg;

	tt_sleep_ms(w->ms);
	ck_assert_int_eq(tide_call_soon_threadsafe(w->loop, waker_stop, w->loop), 0);
	return NULL;
}

static void flag_set(void *arg)
{
	*(bool *)arg = true;
}

void tt_run_until_woken(struct tide_loop *loop, unsigned ms)
{
	struct waker w = { loop, ms };
	struct tide_handle hang;
	bool timed_out = false;
	pthread_t th;

	ck_assert_int_eq(tide_call_later(loop, TT_HANG_S, flag_set, &timed_out, &hang), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, waker_main, &w), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(!timed_out, "[%s] the loop slept through call_soon_threadsafe", tt_cfg->name);
	tide_handle_cancel(&hang);
}

void tt_run_until_complete(struct tide_loop *loop, struct tide_future *fut, int expect)
{
	int ret = tide_loop_run_until_complete(loop, fut);

	ck_assert_msg(ret == expect, "run_until_complete returned %d (%s), expected %d (%s)",
		      ret, tide_strerror(ret), expect, tide_strerror(expect));
	ck_assert_int_eq(tide_future_done(fut), 1);
}

int64_t tt_result(struct tide_future *fut)
{
	int64_t v = -1;
	int ret;

	ck_assert_int_eq(tide_future_done(fut), 1);
	ret = tide_future_result(fut, &v, NULL);
	ck_assert_msg(ret == 0, "future error %d (%s)", ret, tide_strerror(ret));
	return v;
}

struct tide_future *tt_spawn(struct tide_loop *loop, tide_task_cb fn, void *arg)
{
	struct tide_future *t = NULL;
	int ret = tide_task_spawn(loop ? loop : tide_get_running_loop(), fn, arg, NULL, &t);

	ck_assert_msg(ret == 0, "tide_task_spawn: %d (%s)", ret, tide_strerror(ret));
	return t;
}

int64_t tt_join(struct tide_future *t)
{
	int64_t r = tide_await(t);

	tide_future_unref(t);
	return r;
}

void tt_run_main(struct tide_loop **loopp, tide_task_cb fn, void *arg)
{
	tt_run_main_opts(loopp, NULL, fn, arg);
}

void tt_run_main_opts(struct tide_loop **loopp, const struct tide_loop_opts *opts, tide_task_cb fn, void *arg)
{
	struct tide_future *t = NULL;

	*loopp = opts ? tt_loop_new_opts(opts) : tt_loop_new();
	ck_assert_int_eq(tide_task_spawn(*loopp, fn, arg, NULL, &t), 0);
	tt_run_until_complete(*loopp, t, 0);
	ck_assert_int_eq(tt_result(t), 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(*loopp), 0);
	*loopp = NULL;
}

/*
 * The counting allocator. Executor workers allocate too, hence the
 * atomics. A realloc to 0 that returns NULL has freed its block.
 */
static atomic_long g_live_allocs;
static atomic_long g_big_allocs;
static atomic_size_t g_fail_malloc_size;

/* An allocation of TT_BIG_ALLOC bytes or more (malloc, or realloc to it). */
static void count_big(size_t n)
{
	if (n >= TT_BIG_ALLOC)
		atomic_fetch_add(&g_big_allocs, 1);
}

static void *count_malloc(size_t n)
{
	size_t fail = n;

	if (atomic_compare_exchange_strong(&g_fail_malloc_size, &fail, 0))
		return NULL;
	void *p = malloc(n);

	if (p)
		atomic_fetch_add(&g_live_allocs, 1);
	count_big(n);
	return p;
}

static void *count_calloc(size_t n, size_t m)
{
	void *p = calloc(n, m);

	if (m && n <= SIZE_MAX / m)
		count_big(n * m);
	if (p)
		atomic_fetch_add(&g_live_allocs, 1);
	return p;
}

static void *count_realloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	count_big(n);
	if (!p && q)
		atomic_fetch_add(&g_live_allocs, 1);
	else if (p && !n && !q)
		atomic_fetch_sub(&g_live_allocs, 1);
	return q;
}

static void count_free(void *p)
{
	if (p)
		atomic_fetch_sub(&g_live_allocs, 1);
	free(p);
}

int tt_count_allocs(void)
{
	return tide_replace_allocator(count_malloc, count_realloc, count_calloc, count_free);
}

long tt_live_allocs(void)
{
	return atomic_load(&g_live_allocs);
}

long tt_big_allocs(void)
{
	return atomic_load(&g_big_allocs);
}

void tt_fail_next_malloc(size_t n)
{
	atomic_store(&g_fail_malloc_size, n);
}

size_t tt_fail_malloc_pending(void)
{
	return atomic_load(&g_fail_malloc_size);
}

/* The sanitizer build runs several times slower: deadlines stretch with Check's. */
double slow_factor(void)
{
	const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
	double f = m ? atof(m) : 1.0;

	return f >= 1.0 ? f : 1.0;
}

bool tt_allocator_replaced(int rc, const char *test)
{
	if (rc == -EBUSY) {
		printf("%s: a loop exists already (CK_FORK=no?): skipped\n", test);
		return false;
	}
	ck_assert_int_eq(rc, 0);
	return true;
}
