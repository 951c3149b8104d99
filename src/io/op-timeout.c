/* SPDX-License-Identifier: MIT */
/*
 * op-timeout.c: the timeout op: completes (with 0) after a relative time.
 * One io_uring TIMEOUT where the probe has TIMEOUT and TIMEOUT_REMOVE (to
 * cancel it); otherwise the loop's own timer heap runs it.
 *
 * The hard part is that the kernel reads the timespec after submit, maybe
 * long after: it lives in the op (op->u.ts), never on the caller's stack.
 */
#include "io/io.h"

#include <errno.h>
#include <liburing.h>
#include <math.h>

void tide__timeout_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_timeout(sqe, &op->u.ts, 0, 0);
}

static void loop_timeout_fired(void *arg)
{
	struct tide__op *op = arg;

	op->timer = NULL;
	tide__op_complete(op, 0);
}

/* The loop path: a timer of the loop's own (it survives tide_loop_close). */
int tide__timeout_start(struct tide__op *op)
{
	uint64_t ns = (uint64_t)op->u.ts.tv_sec * 1000000000u + (uint64_t)op->u.ts.tv_nsec;

	op->timer = tide__call_at_ns(op->loop, tide__clock_ns() + ns, loop_timeout_fired, op);
	return op->timer ? -EINPROGRESS : -ENOMEM;
}

/* The loop path's cancel: the timer goes, the op completes now. */
void tide__timeout_cancel(struct tide__op *op)
{
	if (op->timer) {
		tide__timer_cancel(op->loop, op->timer);
		op->timer = NULL;
		tide__op_complete(op, -ECANCELED);
	}
}

TIDE_EXTERN int tide_op_timeout(struct tide_loop *loop, double seconds, struct tide_future **out)
{
	struct tide__op *op;
	uint64_t ns;
	int err;

	if (!isfinite(seconds) || seconds < 0 || seconds > 1e10)
		return -EINVAL;
	ns = (uint64_t)ceil(seconds * 1e9);
	err = tide__op_start(loop, TIDE_OP_TIMEOUT, &op, out);
	if (err)
		return err;
	op->u.ts.tv_sec = (long long)(ns / 1000000000u);
	op->u.ts.tv_nsec = (long long)(ns % 1000000000u);
	return tide__op_go(op, out);
}
