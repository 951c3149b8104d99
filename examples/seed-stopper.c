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
 * Tasks come later, so each foo is a callback that "sleeps" by rescheduling
 * itself with tide_call_later(delay). Times are scaled by 0.1 so the demo ends
 * in about a second: foo(0.1) finishes its 10 sleeps at 1.0 s, the stopper
 * stops the loop at 1.2 s, and foo(0.2), which would need 2.0 s, is cut off
 * half way, as foo(2) is by the stopper at 12 s in the tutorial. The Python
 * prints nothing; this prints a trace of what happens.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tide.h"

#define SCALE 0.1       /* tutorial seconds -> demo seconds */
#define ITERATIONS 10   /* for i in range(10) */

struct foo {
	struct tide_loop *loop;
	double delay;              /* seconds per sleep */
	int done;                  /* sleeps completed so far */
	struct tide_handle wakeup; /* the pending sleep, to cancel at the end */
};

static double start;     /* loop time when the loop started */
static int failure;      /* first error seen inside a callback */

static double elapsed(struct tide_loop *loop)
{
	return tide_loop_time(loop) - start;
}

static void fail(struct tide_loop *loop, const char *what, int err)
{
	fprintf(stderr, "seed-stopper: %s: %s\n", what, tide_strerror(err));
	if (!failure)
		failure = err;
	tide_loop_stop(loop);
}

/* await asyncio.sleep(delay): ask the loop to call us back after delay. */
static void foo_sleep(struct foo *f);

/* One wake-up of foo: a sleep is over. */
static void foo_wake(void *arg)
{
	struct foo *f = arg;

	f->done++;
	printf("foo(%.1f): iteration %d of %d done at t=%.2f s\n", f->delay,
	       f->done, ITERATIONS, elapsed(f->loop));
	if (f->done < ITERATIONS)
		foo_sleep(f);
	else
		printf("foo(%.1f): finished\n", f->delay);
}

static void foo_sleep(struct foo *f)
{
	int err = tide_call_later(f->loop, f->delay, foo_wake, f, &f->wakeup);

	if (err < 0)
		fail(f->loop, "tide_call_later", err);
}

/* def stopper(loop): loop.stop() */
static void stopper(void *arg)
{
	struct tide_loop *loop = arg;

	printf("stopper: stopping the loop at t=%.2f s\n", elapsed(loop));
	tide_loop_stop(loop);
}

int main(void)
{
	struct tide_loop *loop;
	struct foo foos[2];
	const double delays[2] = { 1 * SCALE, 2 * SCALE };
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	err = tide_loop_new(&loop, NULL);
	if (err < 0) {
		fprintf(stderr, "seed-stopper: tide_loop_new: %s\n", tide_strerror(err));
		return 1;
	}
	printf("tide %s, backend %s (%s)\n", tide_version(), tide_loop_backend(loop),
	       tide_loop_backend_reason(loop));
	start = tide_loop_time(loop);

	/* loop.create_task(foo(1)); loop.create_task(foo(2)) */
	for (int i = 0; i < 2; i++) {
		foos[i] = (struct foo){ .loop = loop, .delay = delays[i] };
		printf("foo(%.1f): start, %d sleeps of %.1f s\n", foos[i].delay,
		       ITERATIONS, foos[i].delay);
		foo_sleep(&foos[i]);
	}
	/* loop.call_later(12, stopper, loop) */
	err = tide_call_later(loop, 12 * SCALE, stopper, loop, NULL);
	if (err < 0)
		fail(loop, "tide_call_later(stopper)", err);
	printf("main: stopper scheduled in %.1f s, running the loop\n", 12 * SCALE);

	/* loop.run_forever() */
	err = tide_loop_run(loop);
	if (err < 0)
		fail(loop, "tide_loop_run", err);
	printf("main: the loop stopped at t=%.2f s\n", elapsed(loop));

	/* What is still asleep will never wake: cancel it, as one cancels the
	 * pending tasks before closing an asyncio loop. */
	for (int i = 0; i < 2; i++) {
		if (foos[i].done < ITERATIONS && tide_handle_cancel(&foos[i].wakeup))
			printf("foo(%.1f): cut off after %d of %d iterations, cancelled\n",
			       foos[i].delay, foos[i].done, ITERATIONS);
	}

	err = tide_loop_close(loop);
	if (err < 0)
		fail(loop, "tide_loop_close", err);
	err = tide_loop_free(loop);
	if (err != 0) {
		fprintf(stderr, "seed-stopper: tide_loop_free: %s\n", tide_strerror(err));
		return 1;
	}
	return failure ? 1 : 0;
}
