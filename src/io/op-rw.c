/* SPDX-License-Identifier: MIT */
/*
 * op-rw.c: the read and write op family: any fd, at an offset or at the
 * current position. One io_uring READ or WRITE where the probe has it;
 * otherwise the readiness path for what can report readiness, and the
 * executor for regular files and block devices, which never do (as libuv).
 *
 * The hard part is routing by what the fd is, decided per op at submit:
 * regular files never report readiness (epoll refuses them), character
 * devices lack RWF_NOWAIT and a blocking one can block a write however
 * ready it polls, and a caller's blocking pipe must never block the loop.
 */
#include "io/io.h"
#include "io/compat-uring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif

/* The kernel caps one read or write at this many bytes (MAX_RW_COUNT). */
#define TIDE_MAX_RW ((size_t)INT_MAX & ~(size_t)4095)

/* The plain read(2)/write(2) of the op, at its offset or the current position. */
static ssize_t rw_plain(struct tide__op *op)
{
	if (op->kind == TIDE_OP_READ)
		return op->off < 0 ? read(op->fd, op->buf, op->len) : pread(op->fd, op->buf, op->len, op->off);
	return op->off < 0 ? write(op->fd, op->buf, op->len) : pwrite(op->fd, op->buf, op->len, op->off);
}

static ssize_t rw_nowait(struct tide__op *op)
{
	struct iovec iov = { .iov_base = op->buf, .iov_len = op->len };
	ssize_t r;

	for (;;) {
		/* RWF_NOWAIT keeps a caller's blocking pipe from blocking the loop. */
		if (op->kind == TIDE_OP_READ)
			r = preadv2(op->fd, &iov, 1, op->off, RWF_NOWAIT);
		else
			r = pwritev2(op->fd, &iov, 1, op->off, RWF_NOWAIT);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EOPNOTSUPP)
			return -errno;
		/* A file without RWF_NOWAIT (a pty, inotify) may be blocking: only
		 * a zero-timeout poll that says ready lets the plain call through. */
		{
			struct pollfd pfd = { .fd = op->fd, .events = op->kind == TIDE_OP_READ ? POLLIN : POLLOUT };
			int pr = poll(&pfd, 1, 0);
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr < 0)
				return -errno;
			if (pr == 0)
				return -EAGAIN;
		}
		r = rw_plain(op);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -errno;
	}
}

int tide__rw_perform(struct tide__op *op)
{
	ssize_t r = rw_nowait(op);

	return r == -EWOULDBLOCK ? -EAGAIN : (int)r;
}

/* The executor path: the blocking syscall, on a worker thread. */
int64_t tide__rw_blocking(void *arg)
{
	struct tide__op *op = arg;
	ssize_t r;

	do
		r = rw_plain(op);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/*
 * How a read or write on fd must travel. Regular files and block devices
 * never report readiness (epoll refuses them): io_uring does them natively,
 * the readiness backends hand them to the executor. Character devices
 * (ttys, ptys) lack RWF_NOWAIT, and io_uring issues a write to one that
 * polls writable inline and blocking, so they go to io-wq (IOSQE_ASYNC);
 * on the readiness path a write to a blocking one goes to the executor,
 * since no poll result bounds how much a blocking write will wait for.
 */
int tide__rw_route(struct tide__op *op, bool native)
{
	struct stat st;
	int fl;

	if (fstat(op->fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
		op->path = native ? TIDE_PATH_URING : TIDE_PATH_EXECUTOR;
		return 0;
	}
	if (S_ISCHR(st.st_mode))
		op->flags |= TIDE__OP_CHARDEV;
	if (native)
		op->path = TIDE_PATH_URING;
	else if (op->kind == TIDE_OP_WRITE && S_ISCHR(st.st_mode) &&
		 (fl = fcntl(op->fd, F_GETFL)) >= 0 && !(fl & O_NONBLOCK))
		op->path = TIDE_PATH_EXECUTOR;
	else
		op->path = TIDE_PATH_READINESS;
	return 0;
}

void tide__rw_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	if (op->kind == TIDE_OP_READ)
		io_uring_prep_read(sqe, op->fd, op->buf, (unsigned)op->len, (uint64_t)op->off);
	else
		io_uring_prep_write(sqe, op->fd, op->buf, (unsigned)op->len, (uint64_t)op->off);
	/* A tty that polls ready would be written inline and blocking. */
	if (op->flags & TIDE__OP_CHARDEV)
		sqe->flags |= IOSQE_ASYNC;
}

/*
 * A pipe's multishot read (IORING_OP_READ_MULTISHOT, newer than Debian's
 * liburing: prepared from the UAPI number): each CQE is one ring buffer
 * of data (the backend resolves its id into op->buf and op->bid), the
 * last one 0 at the end of the data. Pollable files only (FIFOs,
 * sockets): the transport asks for it on nothing else.
 */
void tide__read_ms_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_rw(TIDE_IORING_OP_READ_MULTISHOT, sqe, op->fd, NULL, 0, (uint64_t)-1);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = TIDE__PBUF_GROUP;
}

/* Memcheck cannot see the kernel fill a buffer from an io_uring CQE. */
void tide__buf_defined(struct tide__op *op, int res)
{
	if (res > 0 && op->buf)
		VALGRIND_MAKE_MEM_DEFINED(op->buf, (size_t)res);
}

static int op_rw(struct tide_loop *loop, int kind, int fd, void *buf, size_t n, int64_t off,
		 struct tide_future **out)
{
	struct tide__op *op;
	int err;

	if (fd < 0)
		return -EBADF;
	if ((!buf && n) || off < -1)
		return -EINVAL;
	err = tide__op_start(loop, kind, &op, out);
	if (err)
		return err;
	op->fd = fd;
	op->buf = buf;
	op->len = n > TIDE_MAX_RW ? TIDE_MAX_RW : n;
	op->off = off;
	return tide__op_go(op, out);
}

TIDE_EXTERN int tide_op_read(struct tide_loop *loop, int fd, void *buf, size_t n, int64_t off,
			     struct tide_future **out)
{
	return op_rw(loop, TIDE_OP_READ, fd, buf, n, off, out);
}

TIDE_EXTERN int tide_op_write(struct tide_loop *loop, int fd, const void *buf, size_t n, int64_t off,
			      struct tide_future **out)
{
	return op_rw(loop, TIDE_OP_WRITE, fd, (void *)buf, n, off, out);
}
