/* SPDX-License-Identifier: MIT */
/*
 * seed-future: the asyncio tutorial's take_your_time, in C.
 *
 *     async def take_your_time(future):
 *         await asyncio.sleep(1)
 *         future.set_result('Future is done!')
 *
 *     loop = asyncio.get_event_loop()
 *     future = asyncio.Future()
 *     asyncio.ensure_future(take_your_time(future))
 *     loop.run_until_complete(future)
 *     print(future.result())
 *
 * Tasks come later, so take_your_time is a callback that the loop calls one
 * second from now with tide_call_later; it sets the future's result, a string
 * carried in the pointer payload. run_until_complete returns once the future
 * is done, and the result is printed as the Python prints it.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tide.h"

static double start; /* loop time when the future was made */

/* take_your_time(future), once its asyncio.sleep(1) is over. */
static void take_your_time(void *arg)
{
	struct tide_future *future = arg;
	struct tide_loop *loop = tide_future_loop(future);

	printf("take_your_time: slept %.2f s, setting the result\n",
	       tide_loop_time(loop) - start);
	tide_future_set_result(future, 0, "Future is done!");
}

static int check(int err, const char *what)
{
	if (err < 0)
		fprintf(stderr, "seed-future: %s: %s\n", what, tide_strerror(err));
	return err < 0;
}

int main(void)
{
	struct tide_loop *loop;
	struct tide_future *future;
	void *result = NULL;
	int failed;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (tide_loop_new(NULL, &loop) < 0) {
		fprintf(stderr, "seed-future: cannot start a loop: %s\n", tide_loop_new_error());
		return 1;
	}
	if (check(tide_future_new(loop, &future), "tide_future_new")) {
		tide_loop_free(loop);
		return 1;
	}
	start = tide_loop_time(loop);

	/* The future stays ours (one reference) until the unref below, so the
	 * callback may use it without a reference of its own. */
	failed = check(tide_call_later(loop, 1.0, take_your_time, future, NULL),
		       "tide_call_later") ||
		 check(tide_loop_run_until_complete(loop, future),
		       "tide_loop_run_until_complete") ||
		 check(tide_future_result(future, NULL, &result), "tide_future_result");
	if (!failed)
		printf("%s\n", (const char *)result);

	tide_future_unref(future);
	if (check(tide_loop_close(loop), "tide_loop_close"))
		failed = 1;
	int err = tide_loop_free(loop);
	if (err != 0) {
		fprintf(stderr, "seed-future: tide_loop_free: %s\n", tide_strerror(err));
		return 1;
	}
	return failed ? 1 : 0;
}
