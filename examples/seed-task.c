/* SPDX-License-Identifier: MIT */
/*
 * seed-task: the asyncio tutorial's take_your_time as a task, in C.
 *
 *     async def take_your_time():
 *         await asyncio.sleep(1)
 *         return 42
 *
 *     loop = asyncio.get_event_loop()
 *     task = loop.create_task(take_your_time())
 *     loop.run_until_complete(task)
 *     print(task.result())
 *
 * A task is a future: its result is what the body returns (a negative
 * return would be its error), so run_until_complete drives it from plain
 * code and tide_future_result reads the 42 back.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tide.h"

/* async def take_your_time() */
static int64_t take_your_time(void *arg)
{
	int err = tide_sleep(1.0);

	if (err < 0)
		return err;
	return 42;
}

static int check(int err, const char *what)
{
	if (err < 0)
		fprintf(stderr, "seed-task: %s: %s\n", what, tide_strerror(err));
	return err < 0;
}

int main(void)
{
	struct tide_loop *loop;
	struct tide_future *task;
	int64_t result = 0;
	int failed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (tide_loop_new(NULL, &loop) < 0) {
		fprintf(stderr, "seed-task: cannot start a loop: %s\n", tide_loop_new_error());
		return 1;
	}
	/* task = loop.create_task(take_your_time()) */
	if (check(tide_task_spawn(loop, take_your_time, NULL, NULL, &task), "tide_task_spawn")) {
		tide_loop_free(loop);
		return 1;
	}
	/* loop.run_until_complete(task); print(task.result()) */
	failed = check(tide_loop_run_until_complete(loop, task), "tide_loop_run_until_complete") ||
		 check(tide_future_result(task, &result, NULL), "tide_future_result");
	if (!failed)
		printf("%lld\n", (long long)result);
	tide_future_unref(task);
	if (tide_loop_free(loop) != 0) {
		fprintf(stderr, "seed-task: tide_loop_free: busy\n");
		return 1;
	}
	return failed ? 1 : 0;
}
