/* SPDX-License-Identifier: MIT */
/*
 * op.c: the op families' meaning, shared by both backends: allocation,
 * routing (io_uring SQE, readiness then perform, executor, or the loop's
 * timer heap), the non-blocking perform step, and the public tide_op_*
 * calls that complete futures.
 *
 * The hard part is that an op completes exactly once, whatever path it took
 * and however a cancel raced it, and that its memory stays with it until
 * then (DESIGN.md, ownership rule 2).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
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

int tide__op_new(struct tide_loop *loop, int kind, struct tide__op **out)
{
	struct tide__op *op = loop->free_ops;

	if (op)
		loop->free_ops = op->next;
	else if (!(op = tide__malloc(sizeof(*op))))
		return -ENOMEM;
	tide__op_init(loop, kind, op);
	*out = op;
	return 0;
}

void tide__op_init(struct tide_loop *loop, int kind, struct tide__op *op)
{
	memset(op, 0, sizeof(*op));
	op->loop = loop;
	op->kind = (uint8_t)kind;
	op->fd = -1;
	if (kind == TIDE_OP_READ || kind == TIDE_OP_WRITE)
		op->off = -1;
}

void tide__op_release(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;

	tide__bug_on(op->flags & TIDE__OP_INFLIGHT, "op released while the kernel may still use it");
	if (op->kind == TIDE_OP_CONNECT)
		tide__free(op->u.caddr);
	op->next = loop->free_ops;
	loop->free_ops = op;
}

/* ------------------------------------------------------------ perform -- */

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
		if (op->kind == TIDE_OP_READ)
			r = op->off < 0 ? read(op->fd, op->buf, op->len) : pread(op->fd, op->buf, op->len, op->off);
		else
			r = op->off < 0 ? write(op->fd, op->buf, op->len) : pwrite(op->fd, op->buf, op->len, op->off);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -errno;
	}
}

int tide__op_perform(struct tide__op *op)
{
	ssize_t r;

	switch (op->kind) {
	case TIDE_OP_READ:
	case TIDE_OP_WRITE:
		r = rw_nowait(op);
		if (r == -EWOULDBLOCK)
			return -EAGAIN;
		return (int)r;
	default:
		return tide__op_perform_net(op);
	}
}

uint32_t tide__op_wait_events(const struct tide__op *op)
{
	switch (op->kind) {
	case TIDE_OP_READ:
	case TIDE_OP_ACCEPT:
	case TIDE_OP_RECV:
	case TIDE_OP_RECVMSG:
		return POLLIN;
	case TIDE_OP_POLL:
		return op->events;
	default:
		return POLLOUT;
	}
}

/* The executor path: the blocking syscall, on a worker thread. */
int64_t tide__op_blocking(void *arg)
{
	struct tide__op *op = arg;
	ssize_t r;

	do {
		if (op->kind == TIDE_OP_READ)
			r = op->off < 0 ? read(op->fd, op->buf, op->len) : pread(op->fd, op->buf, op->len, op->off);
		else
			r = op->off < 0 ? write(op->fd, op->buf, op->len) : pwrite(op->fd, op->buf, op->len, op->off);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* ------------------------------------------------------------ routing -- */

static void loop_timeout_fired(void *arg)
{
	struct tide__op *op = arg;

	op->timer = NULL;
	tide__op_complete(op, 0);
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
static TIDE__OUTLINE int rw_route(struct tide__op *op, bool native)
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

int tide__op_submit(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;
	bool native = loop->backend->native(loop, op->kind);
	int err = 0;

	switch (op->kind) {
	case TIDE_OP_TIMEOUT:
		op->path = native ? TIDE_PATH_URING : TIDE_PATH_LOOP;
		break;
	case TIDE_OP_POLL:
		op->path = native ? TIDE_PATH_URING : TIDE_PATH_READINESS;
		break;
	case TIDE_OP_READ:
	case TIDE_OP_WRITE:
		/* On failure (a closed fd) the path stays URING (0) for the stats. */
		err = rw_route(op, native);
		break;
	case TIDE_OP_SEND_ZC:
	case TIDE_OP_RECV_MULTISHOT:
	case TIDE_OP_ACCEPT_MULTISHOT:
		/* Only io_uring has these; callers ask tide_loop_op_native first. */
		if (!native)
			return -EOPNOTSUPP;
		op->path = TIDE_PATH_URING;
		break;
	case TIDE_OP_CLOSE:
		if (loop->backend->fd_close)
			loop->backend->fd_close(loop, op->fd);
		/* fall through */
	case TIDE_OP_SHUTDOWN:
		/* Neither ever blocks: without the opcode they run right here. */
		op->path = native ? TIDE_PATH_URING : TIDE_PATH_LOOP;
		break;
	default:
		if (!tide__op_kind_is_net(op->kind))
			return -EINVAL;
		op->path = native ? TIDE_PATH_URING : TIDE_PATH_READINESS;
		break;
	}
	/* The loop's own wake-up read would blur what users count. */
	if (!(op->flags & TIDE__OP_INTERNAL))
		loop->stats.ops_submitted[op->kind][op->path]++;
	op->flags |= TIDE__OP_INFLIGHT;
	loop->ops_inflight++;
	if (err) {
		/* fstat failed (a closed fd): the op fails like the syscall would. */
		tide__op_complete(op, err);
		return 0;
	}
	switch (op->path) {
	case TIDE_PATH_LOOP: {
		uint64_t ns;

		if (op->kind != TIDE_OP_TIMEOUT) {
			tide__op_complete(op, tide__op_perform(op));
			return 0;
		}
		ns = (uint64_t)op->u.ts.tv_sec * 1000000000u + (uint64_t)op->u.ts.tv_nsec;
		op->timer = tide__call_at_ns(loop, tide__clock_ns() + ns, loop_timeout_fired, op);
		if (!op->timer)
			tide__op_complete(op, -ENOMEM);
		return 0;
	}
	case TIDE_PATH_EXECUTOR:
		err = tide__op_submit_executor(op);
		break;
	case TIDE_PATH_READINESS:
		/* connect(2) itself starts a connection: run it before waiting,
		 * then wait for POLLOUT before looking at the outcome. */
		if (op->kind == TIDE_OP_CONNECT && !(op->flags & TIDE__OP_STARTED)) {
			int r;
			if (!tide__op_connect_start(op, &r)) {
				tide__op_complete(op, r);
				return 0;
			}
			op->flags |= TIDE__OP_NO_TRY;
		}
		err = loop->backend->submit(loop, op);
		break;
	default:
		err = loop->backend->submit(loop, op);
		break;
	}
	/* Past routing an op always completes: a failure to start is its result. */
	if (err)
		tide__op_complete(op, err);
	return 0;
}

/* Memcheck cannot see the kernel fill a buffer from an io_uring CQE. */
static void mark_defined(struct tide__op *op, int res)
{
	switch (op->kind) {
	case TIDE_OP_READ:
	case TIDE_OP_RECV:
		if (res > 0)
			VALGRIND_MAKE_MEM_DEFINED(op->buf, (size_t)res);
		break;
	case TIDE_OP_ACCEPT:
		if (res >= 0 && op->u.acc.addr && op->u.acc.addrlen) {
			VALGRIND_MAKE_MEM_DEFINED(op->u.acc.addrlen, sizeof(socklen_t));
			VALGRIND_MAKE_MEM_DEFINED(op->u.acc.addr, *op->u.acc.addrlen);
		}
		break;
	case TIDE_OP_RECVMSG:
		if (res >= 0) {
			struct msghdr *m = op->u.msg;
			size_t left = (size_t)res, i;
			VALGRIND_MAKE_MEM_DEFINED(m, sizeof(*m));
			if (m->msg_name)
				VALGRIND_MAKE_MEM_DEFINED(m->msg_name, m->msg_namelen);
			if (m->msg_control)
				VALGRIND_MAKE_MEM_DEFINED(m->msg_control, m->msg_controllen);
			for (i = 0; i < m->msg_iovlen && left; i++) {
				size_t k = m->msg_iov[i].iov_len < left ? m->msg_iov[i].iov_len : left;
				VALGRIND_MAKE_MEM_DEFINED(m->msg_iov[i].iov_base, k);
				left -= k;
			}
		}
		break;
	default:
		break;
	}
}

void tide__op_complete(struct tide__op *op, int res)
{
	struct tide_loop *loop = op->loop;

	tide__bug_on(!(op->flags & TIDE__OP_INFLIGHT), "op completed twice");
	op->flags &= ~(TIDE__OP_INFLIGHT | TIDE__OP_CANCELLING);
	loop->ops_inflight--;
	/* One currency: the kernel's -ETIME is -ETIMEDOUT everywhere. */
	if (res == -ETIME)
		res = -ETIMEDOUT;
	op->res = res;
	if (op->path == TIDE_PATH_URING)
		mark_defined(op, res);
	if (!(op->flags & TIDE__OP_INTERNAL))
		loop->stats.ops_completed[op->kind][op->path]++;
	op->done(op);
}

void tide__op_deliver_more(struct tide__op *op, int res, uint32_t cflags)
{
	op->res = res;
	op->cflags = cflags;
	op->flags |= TIDE__OP_MORE;
	op->done(op);
	/* done() may have cancelled the op, never released it: it is in flight. */
	op->flags &= ~TIDE__OP_MORE;
}

void tide__op_cancel(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;

	if (!(op->flags & TIDE__OP_INFLIGHT) || (op->flags & TIDE__OP_CANCELLING))
		return;
	op->flags |= TIDE__OP_CANCELLING;
	switch (op->path) {
	case TIDE_PATH_LOOP:
		if (op->timer) {
			tide__timer_cancel(loop, op->timer);
			op->timer = NULL;
			tide__op_complete(op, -ECANCELED);
		}
		break;
	case TIDE_PATH_EXECUTOR:
		/* A job that started cannot be stopped: its result will come. */
		if (tide__op_cancel_executor(op))
			tide__op_complete(op, -ECANCELED);
		else
			op->flags &= ~TIDE__OP_CANCELLING;
		break;
	default:
		loop->backend->cancel(loop, op);
		break;
	}
}

/* ------------------------------------------------------ public futures -- */

static void live_add(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;

	op->live_prev = NULL;
	op->live_next = loop->live_list;
	if (loop->live_list)
		loop->live_list->live_prev = op;
	loop->live_list = op;
	loop->live_ops++;
}

static void live_del(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;

	if (op->live_prev)
		op->live_prev->live_next = op->live_next;
	else
		loop->live_list = op->live_next;
	if (op->live_next)
		op->live_next->live_prev = op->live_prev;
	loop->live_ops--;
}

/*
 * For tide_loop_free: cancels every op whose future only the op still holds
 * (the caller let go of it) and reaps their final completions, so that a
 * closed loop, which runs no more, can still be freed. Ops whose futures the
 * caller holds are left alone: free then says -EBUSY.
 */
void tide__ops_settle_abandoned(struct tide_loop *loop)
{
	struct tide__op *op, *next;
	bool any = false;
	int laps;

	for (op = loop->live_list; op; op = next) {
		next = op->live_next;
		if (op->fut && tide__future_refs(op->fut) == 1) {
			tide__op_cancel(op);
			any = true;
		}
	}
	/* The kernel answers a cancel promptly; the bound only guards a bug. */
	for (laps = 0; any && loop->live_ops && laps < 1000; laps++) {
		any = false;
		for (op = loop->live_list; op; op = op->live_next)
			if (op->fut && tide__future_refs(op->fut) == 1)
				any = true;
		if (any)
			loop->backend->wait(loop, 1000000);
	}
}

static void op_future_done(struct tide__op *op)
{
	struct tide_future *f = op->fut;
	int res = op->res;

	op->fut = NULL;
	/* A timeout op's expiry is its success. */
	if (op->kind == TIDE_OP_TIMEOUT && res == -ETIMEDOUT)
		res = 0;
	live_del(op);
	tide__op_release(op);
	f->cancel_hook = NULL;
	tide__future_complete_res(f, res);
	tide_future_unref(f);
}

static int op_cancel_hook(struct tide_future *f, void *arg)
{
	struct tide__op *op = arg;

	tide__op_cancel(op);
	/* Cancelling a started executor job is refused; everything else is requested. */
	return (op->flags & TIDE__OP_CANCELLING) || tide_future_done(f);
}

int tide__op_start(struct tide_loop *loop, int kind, struct tide__op **opp, struct tide_future **out)
{
	struct tide_future *f;
	struct tide__op *op;
	int err;

	if (!loop || !out)
		return -EINVAL;
	if (loop->closed)
		return TIDE_ECLOSED;
	err = tide_future_new(loop, &f);
	if (err)
		return err;
	err = tide__op_new(loop, kind, &op);
	if (err) {
		tide_future_unref(f);
		return err;
	}
	op->fut = tide_future_ref(f);
	op->done = op_future_done;
	f->cancel_hook = op_cancel_hook;
	f->cancel_arg = op;
	live_add(op);
	*opp = op;
	*out = f;
	return 0;
}

int tide__op_go(struct tide__op *op, struct tide_future **out)
{
	struct tide_future *f = *out;
	int err = tide__op_submit(op);

	if (err) {
		/* Never reached the kernel: undo as if it never existed. */
		op->flags &= ~TIDE__OP_INFLIGHT;
		live_del(op);
		f->cancel_hook = NULL;
		tide__op_release(op);
		tide_future_unref(f);
		tide_future_unref(f);
		*out = NULL;
	}
	return err;
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
