/* SPDX-License-Identifier: MIT */
/*
 * op-poll.c: the poll op: wait until an fd is ready for the events asked.
 * One io_uring POLL_ADD, or the readiness backend's own wait: poll is the
 * readiness path itself, so TIDE_DISABLE_OPS cannot mask it.
 *
 * The hard part is nothing to perform: once the fd is ready the op's
 * result is the revents mask the wait reported, on every path.
 */
#include "io/io.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>

void tide__poll_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_poll_add(sqe, op->fd, op->events);
}

TIDE_EXTERN int tide_op_poll(struct tide_loop *loop, int fd, unsigned events, struct tide_future **out)
{
	struct tide__op *op;
	int err;

	if (fd < 0)
		return -EBADF;
	if (!events || (events & ~(unsigned)(POLLIN | POLLOUT | POLLPRI | POLLRDHUP | POLLERR | POLLHUP)))
		return -EINVAL;
	err = tide__op_start(loop, TIDE_OP_POLL, &op, out);
	if (err)
		return err;
	op->fd = fd;
	op->events = events;
	return tide__op_go(op, out);
}
