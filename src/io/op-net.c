/* SPDX-License-Identifier: MIT */
/*
 * op-net.c: the socket op family: accept, connect, recv, send, sendmsg,
 * recvmsg, shutdown and close. Each is one io_uring SQE where the probe has
 * the opcode, else the readiness path performs the syscall here without
 * blocking (MSG_DONTWAIT) after POLLIN or POLLOUT.
 *
 * The hard part is connect on the readiness path: connect(2) runs once, at
 * submit, and says EINPROGRESS; the op then waits for POLLOUT before it
 * reads the outcome from SO_ERROR (which says 0 while the handshake is
 * still running), never calling connect(2) a second time.
 */
#include "io/io.h"
#include "io/compat-uring.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif

/* ------------------------------------------------------------ connect -- */

/*
 * The readiness path's start: connect(2) runs once, here at submit.
 * -EINPROGRESS: the handshake runs, wait for POLLOUT; else the outcome.
 */
int tide__connect_start(struct tide__op *op)
{
	op->flags |= TIDE__OP_STARTED;
	if (connect(op->fd, (struct sockaddr *)op->u.caddr, op->caddrlen) == 0)
		return 0;
	/* EINPROGRESS: a handshake runs (after EINTR it goes on as well, as
	 * POSIX says). A unix socket's EAGAIN means its listener's backlog is
	 * full and nothing started: an error, as the io_uring opcode says. */
	if (errno == EINPROGRESS || errno == EINTR) {
		op->flags |= TIDE__OP_NO_TRY;
		return -EINPROGRESS;
	}
	return -errno;
}

/* After POLLOUT only (never optimistically): the handshake's outcome. */
int tide__connect_perform(struct tide__op *op)
{
	socklen_t len = sizeof(int);
	int soerr = 0;

	if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -errno;
	if (soerr == EINPROGRESS || soerr == EALREADY)
		return -EAGAIN;
	return -soerr;
}

void tide__connect_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_connect(sqe, op->fd, (struct sockaddr *)op->u.caddr, op->caddrlen);
}

/* The op owned a copy of the address (the kernel reads it after submit). */
void tide__connect_release(struct tide__op *op)
{
	tide__free(op->u.caddr);
}

/* ------------------------------------------------- the non-blocking steps -- */

/* A socket call's result in tide's currency: EINTR retried by the caller,
 * EWOULDBLOCK is "wait again". */
static int sock_res(ssize_t r)
{
	if (r >= 0)
		return (int)(r > INT32_MAX ? INT32_MAX : r);
	return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

int tide__accept_perform(struct tide__op *op)
{
	ssize_t r;

	do
		r = accept4(op->fd, op->u.acc.addr, op->u.acc.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	while (r < 0 && errno == EINTR);
	return sock_res(r);
}

int tide__recv_perform(struct tide__op *op)
{
	ssize_t r;

	do
		r = recv(op->fd, op->buf, op->len, op->msg_flags | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	return sock_res(r);
}

int tide__send_perform(struct tide__op *op)
{
	ssize_t r;

	do
		r = send(op->fd, op->buf, op->len, op->msg_flags | MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return sock_res(r);
}

int tide__sendmsg_perform(struct tide__op *op)
{
	ssize_t r;

	do
		r = sendmsg(op->fd, op->u.msg, op->msg_flags | MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return sock_res(r);
}

int tide__recvmsg_perform(struct tide__op *op)
{
	ssize_t r;

	do
		r = recvmsg(op->fd, op->u.msg, op->msg_flags | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	return sock_res(r);
}

int tide__shutdown_perform(struct tide__op *op)
{
	return shutdown(op->fd, op->msg_flags) < 0 ? -errno : 0;
}

int tide__close_perform(struct tide__op *op)
{
	/* Linux frees the fd even when close says EINTR: never retry. */
	return close(op->fd) < 0 && errno != EINTR ? -errno : 0;
}

/* ------------------------------------------------------- io_uring preps -- */

void tide__accept_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_accept(sqe, op->fd, op->u.acc.addr, op->u.acc.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void tide__accept_ms_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void tide__recv_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_recv(sqe, op->fd, op->buf, op->len, op->msg_flags);
}

/* Draws from the loop's provided-buffer ring: the backend resolves each
 * CQE's buffer id into op->buf and op->bid (TIDE__OP_PBUF). */
void tide__recv_ms_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_recv_multishot(sqe, op->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = TIDE__PBUF_GROUP;
}

void tide__send_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_send(sqe, op->fd, op->buf, op->len, op->msg_flags | MSG_NOSIGNAL);
}

void tide__send_zc_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	/* The notification says whether the kernel copied after all
	 * (TIDE__ZC_COPIED in its result): the owner stops asking for
	 * zero-copy where it only costs an extra completion. */
	io_uring_prep_send_zc(sqe, op->fd, op->buf, op->len, op->msg_flags | MSG_NOSIGNAL, IORING_SEND_ZC_REPORT_USAGE);
}

void tide__sendmsg_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_sendmsg(sqe, op->fd, op->u.msg, (unsigned)op->msg_flags | MSG_NOSIGNAL);
}

void tide__recvmsg_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_recvmsg(sqe, op->fd, op->u.msg, (unsigned)op->msg_flags | MSG_CMSG_CLOEXEC);
}

void tide__shutdown_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_shutdown(sqe, op->fd, op->msg_flags);
}

void tide__close_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_close(sqe, op->fd);
}

/* ------------------------------------------- what the kernel wrote (vg) -- */

void tide__accept_defined(struct tide__op *op, int res)
{
	if (res >= 0 && op->u.acc.addr && op->u.acc.addrlen) {
		VALGRIND_MAKE_MEM_DEFINED(op->u.acc.addrlen, sizeof(socklen_t));
		VALGRIND_MAKE_MEM_DEFINED(op->u.acc.addr, *op->u.acc.addrlen);
	}
}

void tide__recvmsg_defined(struct tide__op *op, int res)
{
	struct msghdr *m = op->u.msg;
	size_t left = (size_t)res, i;

	if (res < 0)
		return;
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

/* ------------------------------------------------------------- public -- */

TIDE_EXTERN int tide_socket(int domain, int type, int protocol)
{
	int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);

	return fd < 0 ? -errno : fd;
}

/* Starts a socket op on fd with a new future; set up the rest in *opp. */
static int net_start(struct tide_loop *loop, int kind, int fd, struct tide__op **opp, struct tide_future **out)
{
	int err;

	if (fd < 0)
		return -EBADF;
	err = tide__op_start(loop, kind, opp, out);
	if (!err)
		(*opp)->fd = fd;
	return err;
}

TIDE_EXTERN int tide_op_accept(struct tide_loop *loop, int fd, struct sockaddr *addr, socklen_t *addrlen,
			       struct tide_future **out)
{
	struct tide__op *op;
	int err;

	if (addr && !addrlen)
		return -EINVAL;
	if ((err = net_start(loop, TIDE_OP_ACCEPT, fd, &op, out)))
		return err;
	op->u.acc.addr = addr;
	op->u.acc.addrlen = addr ? addrlen : NULL;
	return tide__op_go(op, out);
}

TIDE_EXTERN int tide_op_connect(struct tide_loop *loop, int fd, const struct sockaddr *addr, socklen_t addrlen,
				struct tide_future **out)
{
	struct sockaddr_storage *copy;
	struct tide__op *op;
	int err;

	if (!addr || addrlen == 0 || addrlen > sizeof(*copy))
		return -EINVAL;
	if (!(copy = tide__malloc(sizeof(*copy))))
		return -ENOMEM;
	memcpy(copy, addr, addrlen);
	if ((err = net_start(loop, TIDE_OP_CONNECT, fd, &op, out))) {
		tide__free(copy);
		return err;
	}
	/* The kernel reads the address after submit: the op owns a copy. */
	op->u.caddr = copy;
	op->caddrlen = addrlen;
	return tide__op_go(op, out);
}

static int buf_op(struct tide_loop *loop, int kind, int fd, void *buf, size_t n, int flags, struct tide_future **out)
{
	struct tide__op *op;
	int err;

	if (!buf && n)
		return -EINVAL;
	if ((err = net_start(loop, kind, fd, &op, out)))
		return err;
	op->buf = buf;
	op->len = n > INT32_MAX ? INT32_MAX : n;
	op->msg_flags = flags;
	return tide__op_go(op, out);
}

TIDE_EXTERN int tide_op_recv(struct tide_loop *loop, int fd, void *buf, size_t n, int flags, struct tide_future **out)
{
	return buf_op(loop, TIDE_OP_RECV, fd, buf, n, flags, out);
}

TIDE_EXTERN int tide_op_send(struct tide_loop *loop, int fd, const void *buf, size_t n, int flags,
			     struct tide_future **out)
{
	return buf_op(loop, TIDE_OP_SEND, fd, (void *)buf, n, flags, out);
}

static int msg_op(struct tide_loop *loop, int kind, int fd, struct msghdr *msg, int flags, struct tide_future **out)
{
	struct tide__op *op;
	int err;

	if (!msg)
		return -EINVAL;
	if ((err = net_start(loop, kind, fd, &op, out)))
		return err;
	op->u.msg = msg;
	op->msg_flags = flags;
	return tide__op_go(op, out);
}

TIDE_EXTERN int tide_op_sendmsg(struct tide_loop *loop, int fd, const struct msghdr *msg, int flags,
				struct tide_future **out)
{
	return msg_op(loop, TIDE_OP_SENDMSG, fd, (struct msghdr *)msg, flags, out);
}

TIDE_EXTERN int tide_op_recvmsg(struct tide_loop *loop, int fd, struct msghdr *msg, int flags,
				struct tide_future **out)
{
	return msg_op(loop, TIDE_OP_RECVMSG, fd, msg, flags, out);
}

TIDE_EXTERN int tide_op_shutdown(struct tide_loop *loop, int fd, int how, struct tide_future **out)
{
	struct tide__op *op;
	int err;

	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	if ((err = net_start(loop, TIDE_OP_SHUTDOWN, fd, &op, out)))
		return err;
	op->msg_flags = how;
	return tide__op_go(op, out);
}

TIDE_EXTERN int tide_op_close(struct tide_loop *loop, int fd, struct tide_future **out)
{
	struct tide__op *op;
	int err;

	if ((err = net_start(loop, TIDE_OP_CLOSE, fd, &op, out)))
		return err;
	return tide__op_go(op, out);
}
