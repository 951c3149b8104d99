/* SPDX-License-Identifier: MIT */
/*
 * seed-stopper: the asyncio tutorial's first example, in C.
 *
 *     async def foo(delay):
 *         for i in range(10):
 *             await asyncio.sleep(delay)
 *
 *     def stopper(loop):
 *         loop.stop()
 *
 *     loop = asyncio.get_event_loop()
 *     loop.create_task(foo(1))
 *     loop.create_task(foo(2))
 *     loop.call_later(12, stopper, loop)
 *     loop.run_forever()
 *
 * Each foo is a real task looping over tide_sleep(delay), and the stopper a
 * plain callback armed with tide_call_later. Times are scaled by 0.1 so the
 * demo ends in about a second: foo(0.1) finishes its 10 sleeps at 1.0 s,
 * the stopper stops the loop at 1.2 s, and foo(0.2), which would need
 * 2.0 s, is cut off half way, as foo(2) is by the stopper at 12 s in the
 * tutorial. The Python prints nothing; this prints a trace of what happens.
 * Where the Python leaves foo(2) pending at exit, this cancels it and lets
 * it see the -ECANCELED in its sleep, as asyncio.run() does with the tasks
 * left over, so the loop can be freed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "tide.h"

#define SCALE 0.1       /* tutorial seconds -> demo seconds */
#define ITERATIONS 10   /* for i in range(10) */

struct foo {
	double delay;              /* seconds per sleep */
	int done;                  /* sleeps completed so far */
	struct tide_future *task;  /* the task running foo */
};

static struct tide_loop *loop;
static double start;     /* loop time when the loop started */

static double elapsed(void)
{
	return tide_loop_time(loop) - start;
}

/* async def foo(delay): for i in range(10): await asyncio.sleep(delay) */
static int64_t foo(void *arg)
{
	struct foo *f = arg;

	printf("foo(%.1f): start, %d sleeps of %.1f s, as %s\n", f->delay, ITERATIONS,
	       f->delay, tide_task_name(tide_current_task()));
	for (int i = 0; i < ITERATIONS; i++) {
		int err = tide_sleep(f->delay);

		if (err < 0) {
			printf("foo(%.1f): sleep %d: %s at t=%.2f s\n", f->delay, i + 1,
			       tide_strerror(err), elapsed());
			return err;
		}
		f->done++;
		printf("foo(%.1f): iteration %d of %d done at t=%.2f s\n", f->delay,
		       f->done, ITERATIONS, elapsed());
	}
	printf("foo(%.1f): finished\n", f->delay);
	return f->done;
}

/* def stopper(loop): loop.stop() */
static void stopper(void *arg)
{
	(void)arg;
	printf("stopper: stopping the loop at t=%.2f s\n", elapsed());
	tide_loop_stop(loop);
}

int main(void)
{
	struct foo foos[2] = { { .delay = 1 * SCALE }, { .delay = 2 * SCALE } };
	struct tide_task_opts opts = { .size = sizeof(opts) };
	char name[32];
	int err, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	err = tide_loop_new(NULL, &loop);
	if (err < 0) {
		fprintf(stderr, "seed-stopper: cannot start a loop: %s\n", tide_loop_new_error());
		return 1;
	}
	printf("tide %s, backend %s (%s)\n", tide_version(), tide_loop_backend(loop),
	       tide_loop_backend_reason(loop));
	start = tide_loop_time(loop);

	/* loop.create_task(foo(1)); loop.create_task(foo(2)) */
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "foo(%.1f)", foos[i].delay);
		opts.name = name;
		err = tide_task_spawn(loop, foo, &foos[i], &opts, &foos[i].task);
		if (err < 0) {
			fprintf(stderr, "seed-stopper: tide_task_spawn: %s\n", tide_strerror(err));
			return 1;
		}
	}
	/* loop.call_later(12, stopper, loop) */
	err = tide_call_later(loop, 12 * SCALE, stopper, NULL, NULL);
	if (err < 0) {
		fprintf(stderr, "seed-stopper: tide_call_later: %s\n", tide_strerror(err));
		return 1;
	}
	printf("main: 2 tasks spawned, stopper scheduled in %.1f s, running the loop\n",
	       12 * SCALE);

	/* loop.run_forever() */
	err = tide_loop_run(loop);
	if (err < 0) {
		fprintf(stderr, "seed-stopper: tide_loop_run: %s\n", tide_strerror(err));
		failed = 1;
	}
	printf("main: the loop stopped at t=%.2f s, %zu task(s) still pending\n", elapsed(),
	       tide_all_tasks(loop, NULL, 0));

	/* What is still asleep would never wake: cancel it and let it see the
	 * cancellation, as asyncio.run() cancels the tasks left over. */
	for (int i = 0; i < 2; i++) {
		struct foo *f = &foos[i];

		if (!tide_future_done(f->task)) {
			printf("main: cancelling %s after %d of %d iterations\n",
			       tide_task_name(f->task), f->done, ITERATIONS);
			tide_task_cancel(f->task);
			err = tide_loop_run_until_complete(loop, f->task);
			if (err != -ECANCELED) {
				fprintf(stderr, "seed-stopper: %s: %s\n", tide_task_name(f->task),
					tide_strerror(err));
				failed = 1;
			}
		}
		printf("main: %s %s\n", tide_task_name(f->task),
		       tide_future_cancelled(f->task) ? "was cancelled" : "completed");
		if (!tide_future_cancelled(f->task) && tide_future_error(f->task) != 0)
			failed = 1;
		tide_future_unref(f->task);
	}

	err = tide_loop_close(loop);
	if (err < 0) {
		fprintf(stderr, "seed-stopper: tide_loop_close: %s\n", tide_strerror(err));
		failed = 1;
	}
	err = tide_loop_free(loop);
	if (err != 0) {
		fprintf(stderr, "seed-stopper: tide_loop_free: %s\n", tide_strerror(err));
		return 1;
	}
	return failed;
}
