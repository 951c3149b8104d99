/* SPDX-License-Identifier: MIT */
/*
 * await.c: the awaitable wrappers of ops, for code inside a task: each
 * starts its op (tide_op_*), awaits the op's future and returns what the
 * op returned, so I/O reads as straight-line code (tide_recv as asyncio's
 * loop.sock_recv).
 *
 * The hard part is cancellation: a cancel owed to the task is thrown
 * before the op starts (asyncio's rule), and an op that completed while a
 * cancel raced it delivers its result, the cancel staying owed for the
 * next await (tide_await).
 */
#include "task/task.h"

#include <errno.h>

/* Awaits the op's future (started with result err) and lets it go.
 * tide_await keeps what the op delivered, even when a cancel raced it. */
static int64_t await_op(int err, struct tide_future **f)
{
	int64_t r;

	if (err)
		return err;
	r = tide_await(*f);
	tide_future_unref(*f);
	return r;
}

/* Start the op on the running task's loop, await it. */
#define AWAIT_OP(type, start)                                            \
	do {                                                             \
		struct tide_future *f = NULL;                            \
		struct tide_loop *loop;                                  \
		int err;                                                 \
		if ((err = tide__task_op_may_start()))                   \
			return err;                                      \
		loop = tide_future_loop(tide_current_task());            \
		err = (start);                                           \
		return (type)await_op(err, &f);                          \
	} while (0)

TIDE_EXTERN ssize_t tide_read(int fd, void *buf, size_t n, int64_t off)
{
	AWAIT_OP(ssize_t, tide_op_read(loop, fd, buf, n, off, &f));
}

TIDE_EXTERN ssize_t tide_write(int fd, const void *buf, size_t n, int64_t off)
{
	AWAIT_OP(ssize_t, tide_op_write(loop, fd, buf, n, off, &f));
}

TIDE_EXTERN int tide_poll(int fd, unsigned events)
{
	AWAIT_OP(int, tide_op_poll(loop, fd, events, &f));
}

TIDE_EXTERN int tide_accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	AWAIT_OP(int, tide_op_accept(loop, fd, addr, addrlen, &f));
}

TIDE_EXTERN int tide_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	AWAIT_OP(int, tide_op_connect(loop, fd, addr, addrlen, &f));
}

TIDE_EXTERN ssize_t tide_recv(int fd, void *buf, size_t n, int flags)
{
	AWAIT_OP(ssize_t, tide_op_recv(loop, fd, buf, n, flags, &f));
}

TIDE_EXTERN ssize_t tide_send(int fd, const void *buf, size_t n, int flags)
{
	AWAIT_OP(ssize_t, tide_op_send(loop, fd, buf, n, flags, &f));
}

TIDE_EXTERN ssize_t tide_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	AWAIT_OP(ssize_t, tide_op_sendmsg(loop, fd, msg, flags, &f));
}

TIDE_EXTERN ssize_t tide_recvmsg(int fd, struct msghdr *msg, int flags)
{
	AWAIT_OP(ssize_t, tide_op_recvmsg(loop, fd, msg, flags, &f));
}

TIDE_EXTERN int tide_shutdown(int fd, int how)
{
	AWAIT_OP(int, tide_op_shutdown(loop, fd, how, &f));
}

TIDE_EXTERN int tide_close(int fd)
{
	AWAIT_OP(int, tide_op_close(loop, fd, &f));
}
