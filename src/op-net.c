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
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

bool tide__op_kind_is_net(int kind)
{
	return kind >= TIDE_OP_ACCEPT && kind <= TIDE_OP_ACCEPT_MULTISHOT;
}

bool tide__op_connect_start(struct tide__op *op, int *res)
{
	int r;

	op->flags |= TIDE__OP_STARTED;
	r = connect(op->fd, (struct sockaddr *)op->u.caddr, op->caddrlen);
	if (r == 0) {
		*res = 0;
		return false;
	}
	/* EINPROGRESS: a handshake runs (after EINTR it goes on as well, as
	 * POSIX says). A unix socket's EAGAIN means its listener's backlog is
	 * full and nothing started: an error, as the io_uring opcode says. */
	if (errno == EINPROGRESS || errno == EINTR)
		return true;
	*res = -errno;
	return false;
}

/* After POLLOUT only (never optimistically): the handshake's outcome. */
static int connect_step(struct tide__op *op)
{
	socklen_t len = sizeof(int);
	int soerr = 0;

	if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -errno;
	if (soerr == EINPROGRESS || soerr == EALREADY)
		return -EAGAIN;
	return -soerr;
}

int tide__op_perform_net(struct tide__op *op)
{
	ssize_t r;

	do {
		switch (op->kind) {
		case TIDE_OP_ACCEPT:
			r = accept4(op->fd, op->u.acc.addr, op->u.acc.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
			break;
		case TIDE_OP_CONNECT:
			return connect_step(op);
		case TIDE_OP_RECV:
			r = recv(op->fd, op->buf, op->len, op->msg_flags | MSG_DONTWAIT);
			break;
		case TIDE_OP_SEND:
			r = send(op->fd, op->buf, op->len, op->msg_flags | MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		case TIDE_OP_SENDMSG:
			r = sendmsg(op->fd, op->u.msg, op->msg_flags | MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		case TIDE_OP_RECVMSG:
			r = recvmsg(op->fd, op->u.msg, op->msg_flags | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
			break;
		case TIDE_OP_SHUTDOWN:
			r = shutdown(op->fd, op->msg_flags);
			break;
		case TIDE_OP_CLOSE:
			/* Linux frees the fd even when close says EINTR: never retry. */
			r = close(op->fd);
			return r < 0 && errno != EINTR ? -errno : 0;
		default:
			return -EINVAL;
		}
	} while (r < 0 && errno == EINTR);
	if (r >= 0)
		return (int)(r > INT32_MAX ? INT32_MAX : r);
	return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

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
