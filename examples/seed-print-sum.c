/* SPDX-License-Identifier: MIT */
/*
 * seed-print-sum: the asyncio tutorial's chained coroutines, in C.
 *
 *     async def compute(x, y):
 *         print("Compute %s + %s ..." % (x, y))
 *         await asyncio.sleep(1.0)
 *         return x + y
 *
 *     async def print_sum(x, y):
 *         result = await compute(x, y)
 *         print("%s + %s = %s" % (x, y, result))
 *
 *     loop = asyncio.get_event_loop()
 *     loop.run_until_complete(print_sum(1, 2))
 *
 * Tasks are stackful, so a coroutine that awaits is an ordinary function
 * called from a task: `await compute(x, y)` is `compute(x, y)`, which
 * suspends the whole task in its tide_sleep. print_sum is the task that
 * run_until_complete drives, as the Python wraps the coroutine in one.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tide.h"

struct sum_args {
	int x, y;
};

/* async def compute(x, y): returns x + y, or -ECANCELED from the sleep. */
static int64_t compute(int x, int y)
{
	int err;

	printf("Compute %d + %d ...\n", x, y);
	err = tide_sleep(1.0);
	if (err < 0)
		return err;
	return x + y;
}

/* async def print_sum(x, y), the task's body. */
static int64_t print_sum(void *arg)
{
	const struct sum_args *a = arg;
	int64_t result = compute(a->x, a->y);

	if (result < 0)
		return result;
	printf("%d + %d = %lld\n", a->x, a->y, (long long)result);
	return 0;
}

int main(void)
{
	struct sum_args args = { 1, 2 };
	struct tide_loop *loop;
	struct tide_future *task;
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	err = tide_loop_new(NULL, &loop);
	if (err < 0) {
		fprintf(stderr, "seed-print-sum: cannot start a loop: %s\n", tide_loop_new_error());
		return 1;
	}
	/* loop.run_until_complete(print_sum(1, 2)) */
	err = tide_task_spawn(loop, print_sum, &args, NULL, &task);
	if (err < 0) {
		fprintf(stderr, "seed-print-sum: tide_task_spawn: %s\n", tide_strerror(err));
		tide_loop_free(loop);
		return 1;
	}
	err = tide_loop_run_until_complete(loop, task);
	if (err < 0)
		fprintf(stderr, "seed-print-sum: print_sum: %s\n", tide_strerror(err));
	tide_future_unref(task);
	if (tide_loop_free(loop) != 0) {
		fprintf(stderr, "seed-print-sum: tide_loop_free: busy\n");
		return 1;
	}
	return err < 0 ? 1 : 0;
}
