/* SPDX-License-Identifier: MIT */
/*
 * test/sockops.c: the socket ops, on every backend configuration, checked
 * as CPython's test_sock_lowlevel.py checks asyncio's sock_* calls: as
 * futures (accept, connect, recv, send, sendmsg/recvmsg with SCM_RIGHTS,
 * shutdown, close, bad fds; a connect to a full backlog, an fd number
 * reused after a cancelled op) and their awaiting twins inside tasks.
 *
 * The hard part is the path each op takes: on io_uring the native opcode
 * where the probe has it, on epoll and the masked ring the readiness path,
 * and the loop's stats must say which (check_op_path).
 */
#include "config.h"
#include "net-fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------ utilities -- */

/* Closes both fds of a pair. */
static void close_both(const int fds[2])
{
	close(fds[0]);
	close(fds[1]);
}

/* A connected TCP pair on the loopback, both non-blocking. */
static void tcp_pair(int fds[2])
{
	int port, lfd = bound_socket(AF_INET, SOCK_STREAM, &port);

	fds[0] = raw_connect(AF_INET, port);
	fds[1] = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	ck_assert_int_ge(fds[1], 0);
	set_nonblock(fds[0]);
	close(lfd);
}

/* Waits for an op's future, releases it, and returns its value or error. */
static int64_t op_wait(struct tide_loop *loop, int ret, struct tide_future **fp)
{
	struct tide_future *f = *fp;
	int64_t v = -1;
	int err;

	ck_assert_msg(ret == 0, "[%s] op submission failed: %d (%s)", tt_cfg->name, ret, tide_strerror(ret));
	ck_assert_ptr_nonnull(f);
	(void)tide_loop_run_until_complete(loop, f);
	ck_assert_int_eq(tide_future_done(f), 1);
	err = tide_future_result(f, &v, NULL);
	tide_future_unref(f);
	*fp = NULL;
	return err ? err : v;
}

/* -------------------------------------------------------- socket ops -- */

/* Since the stats a, n ops of kind took the path they must take on the unmasked configurations. */
static void check_op_path(struct tide_loop *loop, const struct tide_loop_stats *a, enum tide_op_kind kind, uint64_t n)
{
	struct tide_loop_stats now, *b = &now;

	tt_stats(loop, b);
	ck_assert_uint_eq(tt_completed(b, kind) - tt_completed(a, kind), n);
	ck_assert_uint_eq(tt_submitted(b, kind) - tt_submitted(a, kind), n);
	if (tt_is_epoll())
		ck_assert_uint_eq(b->ops_completed[kind][TIDE_PATH_READINESS] -
				  a->ops_completed[kind][TIDE_PATH_READINESS], n);
	else if (tt_is_uring() && tide_loop_op_native(loop, kind))
		ck_assert_uint_eq(b->ops_completed[kind][TIDE_PATH_URING] -
				  a->ops_completed[kind][TIDE_PATH_URING], n);
}

START_TEST(test_socket_flags)
{
	static const int kinds[][2] = {
		{ AF_INET, SOCK_STREAM }, { AF_INET, SOCK_DGRAM }, { AF_INET6, SOCK_STREAM },
		{ AF_UNIX, SOCK_STREAM }, { AF_UNIX, SOCK_DGRAM }, { AF_INET, SOCK_STREAM | SOCK_NONBLOCK },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		int fd = tide_socket(kinds[i][0], kinds[i][1], 0);

		if (fd == -EAFNOSUPPORT && kinds[i][0] == AF_INET6)
			continue;
		ck_assert_msg(fd >= 0, "tide_socket(%d, %d): %d (%s)", kinds[i][0], kinds[i][1], fd,
			      tide_strerror(fd));
		check_nb_cloexec(fd);
		close(fd);
	}
	/* Errors come back as -errno, as socket(2) would set errno. */
	ck_assert_int_eq(tide_socket(9999, SOCK_STREAM, 0), -EAFNOSUPPORT);
	ck_assert_int_lt(tide_socket(AF_INET, 0x7ff, 0), 0);
}
END_TEST

START_TEST(test_accept_connect)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0;
	struct tide_future *fa, *fc, *fa2;
	struct sockaddr_storage laddr, peer;
	socklen_t llen, plen = sizeof(peer);
	int lfd = tide_socket(AF_INET, SOCK_STREAM, 0), cfd, cfd2, afd, afd2, port;
	char buf[8] = "";

	ck_assert_int_ge(lfd, 0);
	llen = loopback(&laddr, AF_INET, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&laddr, llen), 0);
	ck_assert_int_eq(listen(lfd, 16), 0);
	port = sock_port(lfd);
	llen = loopback(&laddr, AF_INET, port);
	cfd = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(cfd, 0);
	tt_stats(loop, &s0);
	/* The accept waits for a connection. */
	memset(&peer, 0, sizeof(peer));
	ck_assert_int_eq(tide_op_accept(loop, lfd, (struct sockaddr *)&peer, &plen, &fa), 0);
	spin(loop, 3);
	ck_assert_int_eq(tide_future_done(fa), 0);
	ck_assert_int_eq(tide_op_connect(loop, cfd, (struct sockaddr *)&laddr, llen, &fc), 0);
	/* connect copied the address: scribbling on it changes nothing. */
	memset(&laddr, 0xee, sizeof(laddr));
	tt_run_until_complete(loop, fc, 0);
	ck_assert_int_eq(tt_result(fc), 0);
	tt_run_until_complete(loop, fa, 0);
	afd = (int)tt_result(fa);
	ck_assert_int_ge(afd, 0);
	check_nb_cloexec(afd);
	ck_assert_uint_eq(plen, sizeof(struct sockaddr_in));
	ck_assert(is_loopback4(&peer));
	ck_assert_int_eq(addr_port(&peer), sock_port(cfd));
	/* The pair talks. */
	ck_assert_int_eq(send(cfd, "hi", 2, 0), 2);
	{
		struct tide_future *fr;

		ck_assert_int_eq(op_wait(loop, tide_op_recv(loop, afd, buf, sizeof(buf), 0, &fr), &fr), 2);
		ck_assert_mem_eq(buf, "hi", 2);
	}
	/* An accept without an address buffer. */
	cfd2 = raw_connect(AF_INET, port);
	ck_assert_int_eq(tide_op_accept(loop, lfd, NULL, NULL, &fa2), 0);
	tt_run_until_complete(loop, fa2, 0);
	afd2 = (int)tt_result(fa2);
	ck_assert_int_ge(afd2, 0);
	check_nb_cloexec(afd2);
	check_op_path(loop, &s0, TIDE_OP_ACCEPT, 2);
	check_op_path(loop, &s0, TIDE_OP_CONNECT, 1);
	tide_future_unref(fa);
	tide_future_unref(fa2);
	tide_future_unref(fc);
	close(afd);
	close(afd2);
	close(cfd);
	close(cfd2);
	close(lfd);
	finish(loop);
}
END_TEST

START_TEST(test_connect_refused)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f;
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, closed_port(SOCK_STREAM));
	int fd = tide_socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(op_wait(loop, tide_op_connect(loop, fd, (struct sockaddr *)&ss, len, &f), &f),
			 -ECONNREFUSED);
	close(fd);
	finish(loop);
}
END_TEST

/*
 * tide_op_connect to a full backlog waits for the handshake.
 * Regression (review of 2026-11-26): guards against a connect that claims
 * success too early (epoll's said 0 at once while its SYN was dropped).
 */
START_TEST(test_connect_backlog_full)
{
	struct tide_loop *loop = tt_loop_new();
	struct sockaddr_storage ss;
	struct tide_future *f;
	socklen_t len;
	int fill[4], port, lfd = full_listener(0, &port, fill, 4), fd, err;

	fd = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	len = loopback(&ss, AF_INET, port);
	ck_assert_int_eq(tide_op_connect(loop, fd, (struct sockaddr *)&ss, len, &f), 0);
	run_for(loop, 0.3);
	/* Done this early, it must really be connected (it is not: its SYN was dropped). */
	if (tide_future_done(f)) {
		err = tide_future_error(f);
		ck_assert_msg(err == 0, "[%s] connect to a full backlog failed: %d (%s)", tt_cfg->name, err,
			      tide_strerror(err));
		check_connected(fd, port, "tide_op_connect to a full backlog");
	}
	drain_listener(lfd, fill, 4);
	/* The SYN sent again finds room: a real success. */
	RUN_UNTIL(loop, tide_future_done(f));
	ck_assert_int_eq(tt_result(f), 0);
	check_connected(fd, port, "tide_op_connect");
	tide_future_unref(f);
	close(fd);
	close(lfd);
	finish(loop);
}
END_TEST

/*
 * A Unix listener with a full backlog: connect says EAGAIN at once, on every path.
 * Regression (review of 2026-11-26): guards that every path (the op and
 * create_unix_connection) reports the kernel's EAGAIN, among the connects
 * the review found claiming success too early.
 */
START_TEST(test_unix_connect_backlog_full)
{
	struct tide_loop *loop = tt_loop_new();
	char dir[] = "/tmp/tide-net-XXXXXX";
	struct sockaddr_un su = { .sun_family = AF_UNIX }, peer;
	socklen_t plen = sizeof(peer);
	struct tide_future *f;
	struct conn *c = conn_new();
	int fill[256], nfill = 0, lfd, fd, a, r;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(su.sun_path, sizeof(su.sun_path), "%s/sock", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&su, sizeof(su)), 0);
	ck_assert_int_eq(listen(lfd, 0), 0);
	for (;;) {
		ck_assert_int_lt(nfill, 256);
		fill[nfill] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fill[nfill], 0);
		if (connect(fill[nfill], (struct sockaddr *)&su, sizeof(su)) < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			close(fill[nfill]);
			break;
		}
		nfill++;
	}
	ck_assert_int_ge(nfill, 1);
	fd = tide_socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	r = (int)op_wait(loop, tide_op_connect(loop, fd, (struct sockaddr *)&su, sizeof(su), &f), &f);
	ck_assert_msg(r == -EAGAIN, "[%s] unix connect to a full backlog: %d (%s), expected -EAGAIN", tt_cfg->name, r,
		      tide_strerror(r));
	ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&peer, &plen), -1);
	ck_assert_int_eq(errno, ENOTCONN);
	close(fd);
	/* create_unix_connection says the same, without a transport. */
	ck_assert_int_eq(tide_create_unix_connection(loop, su.sun_path, &conn_ops, c, &f), 0);
	r = done_error(loop, f);
	ck_assert_msg(r == -EAGAIN, "[%s] create_unix_connection to a full backlog: %d (%s)", tt_cfg->name, r,
		      tide_strerror(r));
	ck_assert_int_eq(c->made, 0);
	/* Room for one again: the next connect is a real one. */
	a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(a, 0);
	fd = tide_socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(op_wait(loop, tide_op_connect(loop, fd, (struct sockaddr *)&su, sizeof(su), &f), &f), 0);
	plen = sizeof(peer);
	ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&peer, &plen), 0);
	ck_assert_str_eq(peer.sun_path, su.sun_path);
	close(fd);
	close(a);
	while (nfill > 0)
		close(fill[--nfill]);
	close(lfd);
	unlink(su.sun_path);
	rmdir(dir);
	finish_all(loop, NULL);
}
END_TEST

static void write_later_cb(void *arg)
{
	int fd = (int)(intptr_t)arg;

	tt_write_all(fd, "later", 5);
}

START_TEST(test_recv_send)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0;
	struct tide_future *f, *fr;
	char buf[64];
	int p[2];

	tcp_pair(p);
	tt_stats(loop, &s0);
	ck_assert_int_eq(op_wait(loop, tide_op_send(loop, p[0], "hello", 5, 0, &f), &f), 5);
	/* MSG_PEEK leaves the bytes for the next recv. */
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(op_wait(loop, tide_op_recv(loop, p[1], buf, 2, MSG_PEEK, &f), &f), 2);
	ck_assert_mem_eq(buf, "he", 2);
	ck_assert_int_eq(op_wait(loop, tide_op_recv(loop, p[1], buf, sizeof(buf), 0, &f), &f), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	/* A recv that waits for data written later. */
	ck_assert_int_eq(tide_op_recv(loop, p[0], buf, sizeof(buf), 0, &fr), 0);
	spin(loop, 3);
	ck_assert_int_eq(tide_future_done(fr), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.02, write_later_cb, (void *)(intptr_t)p[1], NULL), 0);
	ck_assert_int_eq(op_wait(loop, 0, &fr), 5);
	ck_assert_mem_eq(buf, "later", 5);
	check_op_path(loop, &s0, TIDE_OP_SEND, 1);
	check_op_path(loop, &s0, TIDE_OP_RECV, 3);
	close_both(p);
	finish(loop);
}
END_TEST

/* A cancelled recv takes nothing: data sent afterwards is all still there. */
START_TEST(test_recv_cancelled)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f, *f2;
	char buf[64], buf2[64];
	int p[2];

	tcp_pair(p);
	ck_assert_int_eq(tide_op_recv(loop, p[1], buf, sizeof(buf), 0, &f), 0);
	spin(loop, 3);
	ck_assert_int_eq(tide_future_done(f), 0);
	ck_assert_int_eq(tide_future_cancel(f), 1);
	tt_run_until_complete(loop, f, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(f), 1);
	tide_future_unref(f);
	tt_write_all(p[0], "after", 5);
	memset(buf2, 0, sizeof(buf2));
	ck_assert_int_eq(op_wait(loop, tide_op_recv(loop, p[1], buf2, sizeof(buf2), 0, &f2), &f2), 5);
	ck_assert_mem_eq(buf2, "after", 5);
	close_both(p);
	finish(loop);
}
END_TEST

START_TEST(test_udp_sendmsg_recvmsg)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0;
	struct tide_future *fs, *fr;
	struct sockaddr_storage dst, from;
	char a[3], b[16], small[4];
	struct iovec siov[2] = { { "abc", 3 }, { "defgh", 5 } };
	struct iovec riov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	struct msghdr sm, rm;
	int pa, pb, sa = tide_socket(AF_INET, SOCK_DGRAM, 0), sb = tide_socket(AF_INET, SOCK_DGRAM, 0);
	socklen_t dlen;

	ck_assert_int_ge(sa, 0);
	ck_assert_int_ge(sb, 0);
	dlen = loopback(&dst, AF_INET, 0);
	ck_assert_int_eq(bind(sa, (struct sockaddr *)&dst, dlen), 0);
	ck_assert_int_eq(bind(sb, (struct sockaddr *)&dst, dlen), 0);
	pa = sock_port(sa);
	pb = sock_port(sb);
	dlen = loopback(&dst, AF_INET, pb);
	tt_stats(loop, &s0);
	/* The receive is pending before the datagram is sent. */
	memset(&rm, 0, sizeof(rm));
	memset(&from, 0, sizeof(from));
	rm.msg_name = &from;
	rm.msg_namelen = sizeof(from);
	rm.msg_iov = riov;
	rm.msg_iovlen = 2;
	ck_assert_int_eq(tide_op_recvmsg(loop, sb, &rm, 0, &fr), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.005), 0);
	ck_assert_int_eq(tide_future_done(fr), 0);
	memset(&sm, 0, sizeof(sm));
	sm.msg_name = &dst;
	sm.msg_namelen = dlen;
	sm.msg_iov = siov;
	sm.msg_iovlen = 2;
	ck_assert_int_eq(op_wait(loop, tide_op_sendmsg(loop, sa, &sm, 0, &fs), &fs), 8);
	ck_assert_int_eq(op_wait(loop, 0, &fr), 8);
	ck_assert_mem_eq(a, "abc", 3);
	ck_assert_mem_eq(b, "defgh", 5);
	ck_assert_uint_eq(rm.msg_namelen, sizeof(struct sockaddr_in));
	ck_assert(is_loopback4(&from));
	ck_assert_int_eq(addr_port(&from), pa);
	ck_assert_int_eq(rm.msg_flags & MSG_TRUNC, 0);
	/* A datagram longer than the buffer: truncated, and the kernel says so in msg_flags. */
	riov[0].iov_base = small;
	riov[0].iov_len = sizeof(small);
	rm.msg_iovlen = 1;
	rm.msg_namelen = sizeof(from);
	ck_assert_int_eq(op_wait(loop, tide_op_sendmsg(loop, sa, &sm, 0, &fs), &fs), 8);
	ck_assert_int_eq(op_wait(loop, tide_op_recvmsg(loop, sb, &rm, 0, &fr), &fr), 4);
	ck_assert_mem_eq(small, "abcd", 4);
	ck_assert_msg(rm.msg_flags & MSG_TRUNC, "[%s] msg_flags %#x lacks MSG_TRUNC", tt_cfg->name,
		      rm.msg_flags);
	check_op_path(loop, &s0, TIDE_OP_SENDMSG, 2);
	check_op_path(loop, &s0, TIDE_OP_RECVMSG, 2);
	close(sa);
	close(sb);
	finish(loop);
}
END_TEST

/* An fd passed over a Unix socket with SCM_RIGHTS works on the other side. */
START_TEST(test_unix_scm_rights)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f;
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} sc, rc;
	struct iovec siov = { "F", 1 }, riov;
	struct msghdr sm, rm;
	struct cmsghdr *cm;
	char c = 0, got[8] = "";
	int sp[2], pp[2], newfd = -1;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
	tt_pipe(pp, 0);
	memset(&sm, 0, sizeof(sm));
	memset(&sc, 0, sizeof(sc));
	sm.msg_iov = &siov;
	sm.msg_iovlen = 1;
	sm.msg_control = sc.buf;
	sm.msg_controllen = sizeof(sc.buf);
	cm = CMSG_FIRSTHDR(&sm);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &pp[1], sizeof(int));
	ck_assert_int_eq(op_wait(loop, tide_op_sendmsg(loop, sp[0], &sm, 0, &f), &f), 1);
	memset(&rm, 0, sizeof(rm));
	memset(&rc, 0, sizeof(rc));
	riov.iov_base = &c;
	riov.iov_len = 1;
	rm.msg_iov = &riov;
	rm.msg_iovlen = 1;
	rm.msg_control = rc.buf;
	rm.msg_controllen = sizeof(rc.buf);
	ck_assert_int_eq(op_wait(loop, tide_op_recvmsg(loop, sp[1], &rm, MSG_CMSG_CLOEXEC, &f), &f), 1);
	ck_assert_int_eq(c, 'F');
	ck_assert_int_eq(rm.msg_flags & MSG_CTRUNC, 0);
	for (cm = CMSG_FIRSTHDR(&rm); cm; cm = CMSG_NXTHDR(&rm, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&newfd, CMSG_DATA(cm), sizeof(int));
	ck_assert_int_ge(newfd, 0);
	ck_assert_int_ne(newfd, pp[1]);
	ck_assert(fcntl(newfd, F_GETFD) & FD_CLOEXEC);
	/* The passed fd is the pipe's write end: close ours, write through it. */
	close(pp[1]);
	ck_assert_int_eq(op_wait(loop, tide_op_write(loop, newfd, "via", 3, -1, &f), &f), 3);
	close(newfd);
	ck_assert_int_eq(read(pp[0], got, sizeof(got)), 3);
	ck_assert_mem_eq(got, "via", 3);
	ck_assert_int_eq(read(pp[0], got, sizeof(got)), 0);
	close(pp[0]);
	close(sp[0]);
	close(sp[1]);
	finish(loop);
}
END_TEST

START_TEST(test_op_close)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
	struct tide_future *f;
	char buf[8];
	int p[2], fd = tide_socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	tt_stats(loop, &s0);
	ck_assert_int_eq(op_wait(loop, tide_op_close(loop, fd, &f), &f), 0);
	errno = 0;
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	/* Closing one end of a connection after using it: the peer sees EOF. */
	tcp_pair(p);
	ck_assert_int_eq(op_wait(loop, tide_op_send(loop, p[0], "z", 1, 0, &f), &f), 1);
	ck_assert_int_eq(op_wait(loop, tide_op_recv(loop, p[1], buf, sizeof(buf), 0, &f), &f), 1);
	ck_assert_int_eq(op_wait(loop, tide_op_close(loop, p[0], &f), &f), 0);
	errno = 0;
	ck_assert_int_eq(fcntl(p[0], F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(op_wait(loop, tide_op_recv(loop, p[1], buf, sizeof(buf), 0, &f), &f), 0);
	tt_stats(loop, &s1);
	ck_assert_uint_eq(tt_completed(&s1, TIDE_OP_CLOSE) - tt_completed(&s0, TIDE_OP_CLOSE), 2);
	close(p[1]);
	finish(loop);
}
END_TEST

START_TEST(test_shutdown)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f;
	char buf[16];
	int p[2], fd;

	tcp_pair(p);
	ck_assert_int_eq(op_wait(loop, tide_op_shutdown(loop, p[0], SHUT_WR, &f), &f), 0);
	/* The peer reads EOF... */
	ck_assert_int_eq(op_wait(loop, tide_op_recv(loop, p[1], buf, sizeof(buf), 0, &f), &f), 0);
	/* ...and can still talk back: only one direction is shut. */
	ck_assert_int_eq(op_wait(loop, tide_op_send(loop, p[1], "back", 4, 0, &f), &f), 4);
	ck_assert_int_eq(op_wait(loop, tide_op_recv(loop, p[0], buf, sizeof(buf), 0, &f), &f), 4);
	ck_assert_mem_eq(buf, "back", 4);
	/* Writing to the shut side fails. */
	ck_assert_int_eq(op_wait(loop, tide_op_send(loop, p[0], "x", 1, MSG_NOSIGNAL, &f), &f), -EPIPE);
	/* An unconnected socket has nothing to shut down. */
	fd = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(op_wait(loop, tide_op_shutdown(loop, fd, SHUT_RDWR, &f), &f), -ENOTCONN);
	close(fd);
	close_both(p);
	finish(loop);
}
END_TEST

START_TEST(test_bad_fd)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f;
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, 9);
	struct iovec iov = { "x", 1 };
	struct msghdr m;
	char buf[8];
	/* Closed after the loop exists, so that none of its own fds takes the number. */
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	ck_assert_int_eq(op_wait(loop, tide_op_accept(loop, fd, NULL, NULL, &f), &f), -EBADF);
	ck_assert_int_eq(op_wait(loop, tide_op_connect(loop, fd, (struct sockaddr *)&ss, len, &f), &f), -EBADF);
	ck_assert_int_eq(op_wait(loop, tide_op_recv(loop, fd, buf, sizeof(buf), 0, &f), &f), -EBADF);
	ck_assert_int_eq(op_wait(loop, tide_op_send(loop, fd, "x", 1, 0, &f), &f), -EBADF);
	ck_assert_int_eq(op_wait(loop, tide_op_sendmsg(loop, fd, &m, 0, &f), &f), -EBADF);
	ck_assert_int_eq(op_wait(loop, tide_op_recvmsg(loop, fd, &m, 0, &f), &f), -EBADF);
	ck_assert_int_eq(op_wait(loop, tide_op_shutdown(loop, fd, SHUT_RDWR, &f), &f), -EBADF);
	ck_assert_int_eq(op_wait(loop, tide_op_close(loop, fd, &f), &f), -EBADF);
	/* No future for the result: nothing is started. */
	ck_assert_int_eq(tide_op_recv(loop, fd, buf, sizeof(buf), 0, NULL), -EINVAL);
	finish(loop);
}
END_TEST

/* A connected unix socket pair whose first end has the number num (free). */
static void pair_at(int q[2], int num)
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, q), 0);
	if (q[1] == num) {
		q[1] = q[0];
		q[0] = num;
	}
	if (q[0] != num) {
		ck_assert_int_eq(dup3(q[0], num, O_CLOEXEC), num);
		close(q[0]);
		q[0] = num;
	}
}

/*
 * An op on fd N is cancelled and fd N closed (the kernel drops its epoll
 * registration); a new socket gets number N: an op on it must complete.
 * Regression (review of 2026-11-26): guards the epoll backend, which kept
 * the old registration's state and never re-added the fd.
 */
START_TEST(test_fd_reuse_after_cancel)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f;
	char buf[16];
	int p[2], q[2], old;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p), 0);
	ck_assert_int_eq(tide_op_recv(loop, p[0], buf, sizeof(buf), 0, &f), 0);
	spin(loop, 3);
	ck_assert_int_eq(tide_future_done(f), 0);
	ck_assert_int_eq(tide_future_cancel(f), 1);
	tt_run_until_complete(loop, f, -ECANCELED);
	tide_future_unref(f);
	old = p[0];
	close_both(p);
	pair_at(q, old);
	/* The data comes after the op waits: only readiness can complete it. */
	ck_assert_int_eq(tide_op_recv(loop, q[0], buf, sizeof(buf), 0, &f), 0);
	spin(loop, 3);
	ck_assert_int_eq(tide_future_done(f), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.01, write_later_cb, (void *)(intptr_t)q[1], NULL), 0);
	RUN_UNTIL_FOR(loop, tide_future_done(f), 10.0);
	ck_assert_int_eq(tt_result(f), 5);
	ck_assert_mem_eq(buf, "later", 5);
	tide_future_unref(f);
	close_both(q);
	finish(loop);
}
END_TEST

/* A unix socket pair, and a recv on p[0] that waits: nothing was sent. */
static struct tide_future *waiting_recv(struct tide_loop *loop, int p[2], char *buf, size_t n)
{
	struct tide_future *f;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p), 0);
	ck_assert_int_eq(tide_op_recv(loop, p[0], buf, n, 0, &f), 0);
	spin(loop, 3);
	ck_assert_int_eq(tide_future_done(f), 0);
	return f;
}

/* An op left on an fd closed under it: epoll failed it with -EBADF once
 * the loop saw the number closed or reused; io_uring keeps the file for
 * the op, which waits on. */
static void check_left_op(struct tide_future *f)
{
	if (tt_is_epoll()) {
		ck_assert_int_eq(tide_future_done(f), 1);
		ck_assert_int_eq(tide_future_error(f), -EBADF);
	} else {
		ck_assert_int_eq(tide_future_done(f), 0);
	}
}

/* Ends an op with a cancel, unless it ended already, and drops it. */
static void end_op(struct tide_loop *loop, struct tide_future *f)
{
	if (!tide_future_done(f)) {
		ck_assert_int_eq(tide_future_cancel(f), 1);
		tt_run_until_complete(loop, f, -ECANCELED);
	}
	tide_future_unref(f);
}

/* Since s0 the loop waited 100 ms in a few waits, not in the thousands of
 * a loop that spins on a closed file's epoll item. */
static void check_no_spin(struct tide_loop *loop, const struct tide_loop_stats *s0)
{
	struct tide_loop_stats s1;

	tt_stats(loop, &s1);
	ck_assert_msg(s1.backend_waits - s0->backend_waits < 50, "[%s] %llu waits in 100 ms: the loop spins",
		      tt_cfg->name, (unsigned long long)(s1.backend_waits - s0->backend_waits));
}

/*
 * close(2) under a pending op (a caller's error: tide_op_close after the
 * op ended is the way), then a new socket takes the number. The new
 * socket's ops must work, and the old op must end, never hang (tide.h,
 * tide_op_close). Regression (issue 15): epoll believed the old file's
 * registration (which the kernel dropped with the file) still held, so
 * the new socket was never watched and its op never completed.
 */
static void raw_close_under_op(int keep_file)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0;
	struct tide_future *fa, *fb, *fp;
	char abuf[16], bbuf[16];
	int p[2], q[2], old, keep = -1;

	fa = waiting_recv(loop, p, abuf, sizeof(abuf));
	/* A second reference keeps the old file, and its epoll item, alive. */
	if (keep_file)
		keep = fcntl(p[0], F_DUPFD_CLOEXEC, 100);
	old = p[0];
	close(p[0]);
	if (!keep_file) {
		/* The number, closed and not yet reused: an op on it fails at once. */
		ck_assert_int_eq(tide_op_poll(loop, old, POLLIN, &fp), 0);
		RUN_UNTIL_FOR(loop, tide_future_done(fp), 10.0);
		ck_assert_int_eq(tide_future_error(fp), -EBADF);
		tide_future_unref(fp);
	}
	pair_at(q, old);
	/* The data comes after the op waits: only readiness can complete it. */
	ck_assert_int_eq(tide_op_recv(loop, q[0], bbuf, sizeof(bbuf), 0, &fb), 0);
	spin(loop, 3);
	ck_assert_int_eq(tide_future_done(fb), 0);
	check_left_op(fa);
	ck_assert_int_eq(tide_call_later(loop, 0.01, write_later_cb, (void *)(intptr_t)q[1], NULL), 0);
	RUN_UNTIL_FOR(loop, tide_future_done(fb), 10.0);
	ck_assert_int_eq(tt_result(fb), 5);
	ck_assert_mem_eq(bbuf, "later", 5);
	tide_future_unref(fb);
	if (keep_file) {
		/* The old file turns readable. On epoll its item (keyed by file
		 * and number, gone only with the file's last reference) would
		 * report the number ready at every wait, with nobody to serve. */
		tt_write_all(p[1], "stale", 5);
		ck_assert_int_eq(tide_op_recv(loop, q[0], bbuf, sizeof(bbuf), 0, &fb), 0);
		tt_stats(loop, &s0);
		run_for(loop, 0.1);
		check_no_spin(loop, &s0);
		ck_assert_int_eq(tide_future_done(fb), 0);
		end_op(loop, fb);
		/* The native op reads from the file it was started on. */
		if (tt_is_uring() && tide_loop_op_native(loop, TIDE_OP_RECV)) {
			ck_assert_int_eq(tt_result(fa), 5);
			ck_assert_mem_eq(abuf, "stale", 5);
		}
	}
	end_op(loop, fa);
	if (keep >= 0)
		close(keep);
	close(p[1]);
	close_both(q);
	finish(loop);
}

START_TEST(test_raw_close_under_op)
{
	raw_close_under_op(0);
}
END_TEST

/* The same with the old file still open elsewhere (a dup, a forked child). */
START_TEST(test_raw_close_under_op_file_kept)
{
	raw_close_under_op(1);
}
END_TEST

/*
 * The same, but the new file at the number has no op of its own, and the
 * old file (kept open by a dup) turns readable: on epoll the old op wakes
 * on its lingering item and finds the new file at its number empty. It
 * must end, and the loop must not spin on that item.
 */
START_TEST(test_raw_close_old_file_wakes)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0;
	struct tide_future *fa, *ft;
	char abuf[16];
	int p[2], q[2], keep;

	fa = waiting_recv(loop, p, abuf, sizeof(abuf));
	keep = fcntl(p[0], F_DUPFD_CLOEXEC, 100);
	ck_assert_int_ge(keep, 0);
	close(p[0]);
	pair_at(q, p[0]);
	tt_write_all(p[1], "stale", 5);
	/* A timeout keeps the loop waiting meanwhile. */
	tt_stats(loop, &s0);
	ck_assert_int_eq(tide_op_timeout(loop, 0.1, &ft), 0);
	tt_run_until_complete(loop, ft, 0);
	tide_future_unref(ft);
	check_no_spin(loop, &s0);
	if (tt_is_epoll()) {
		check_left_op(fa);
	} else if (tt_is_uring() && tide_loop_op_native(loop, TIDE_OP_RECV)) {
		/* The kernel held the old file for its op, which reads it. */
		ck_assert_int_eq(tt_result(fa), 5);
		ck_assert_mem_eq(abuf, "stale", 5);
	}
	end_op(loop, fa);
	close(keep);
	close(p[1]);
	close_both(q);
	finish(loop);
}
END_TEST

/*
 * tide_op_close under a pending op, too early: on epoll the op fails with
 * -EBADF (left waiting, it would serve the number's next file); io_uring
 * keeps the file for its op, which a cancel ends.
 */
START_TEST(test_op_close_under_op)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fa, *fc;
	char buf[16];
	int p[2];

	fa = waiting_recv(loop, p, buf, sizeof(buf));
	ck_assert_int_eq(tide_op_close(loop, p[0], &fc), 0);
	tt_run_until_complete(loop, fc, 0);
	ck_assert_int_eq(tt_result(fc), 0);
	tide_future_unref(fc);
	spin(loop, 3);
	check_left_op(fa);
	end_op(loop, fa);
	close(p[1]);
	finish(loop);
}
END_TEST

/* ----------------------------------------------------- ops inside tasks -- */

struct task_ctx {
	int lfd, port, closed;
	int64_t served;
};

static int64_t echo_task(void *arg)
{
	struct task_ctx *x = arg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[64];
	ssize_t n;
	int fd = tide_accept(x->lfd, (struct sockaddr *)&ss, &len);

	ck_assert_msg(fd >= 0, "tide_accept: %d (%s)", fd, tide_strerror(fd));
	check_nb_cloexec(fd);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	ck_assert(is_loopback4(&ss));
	while ((n = tide_recv(fd, buf, sizeof(buf), 0)) > 0) {
		ck_assert_int_eq(tide_send(fd, buf, (size_t)n, 0), n);
		x->served += n;
	}
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(tide_close(fd), 0);
	return x->served;
}

/* Reads exactly n bytes with tide_recv. */
static void task_recv_all(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = tide_recv(fd, buf + got, n - got, 0);

		ck_assert_msg(r > 0, "tide_recv: %zd (%s)", r, tide_strerror((int)r));
		got += (size_t)r;
	}
}

static int64_t client_task(void *arg)
{
	struct task_ctx *x = arg;
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, x->port);
	struct iovec siov[2] = { { "po", 2 }, { "ng", 2 } }, riov;
	struct msghdr m;
	char buf[16] = "";
	int fd = tide_socket(AF_INET, SOCK_STREAM, 0), fd2;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tide_connect(fd, (struct sockaddr *)&ss, len), 0);
	ck_assert_int_eq(tide_send(fd, "ping", 4, 0), 4);
	task_recv_all(fd, buf, 4);
	ck_assert_mem_eq(buf, "ping", 4);
	memset(&m, 0, sizeof(m));
	m.msg_iov = siov;
	m.msg_iovlen = 2;
	ck_assert_int_eq(tide_sendmsg(fd, &m, 0), 4);
	memset(buf, 0, sizeof(buf));
	riov.iov_base = buf;
	riov.iov_len = 4;
	m.msg_iov = &riov;
	m.msg_iovlen = 1;
	{
		ssize_t r = tide_recvmsg(fd, &m, 0);

		ck_assert_int_gt(r, 0);
		if (r < 4)
			task_recv_all(fd, buf + r, 4 - (size_t)r);
	}
	ck_assert_mem_eq(buf, "pong", 4);
	/* Half-close: the echo task sees EOF, closes, and we see its EOF. */
	ck_assert_int_eq(tide_shutdown(fd, SHUT_WR), 0);
	ck_assert_int_eq(tide_recv(fd, buf, sizeof(buf), 0), 0);
	ck_assert_int_eq(tide_close(fd), 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	/* A refused connect inside a task. */
	fd2 = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd2, 0);
	len = loopback(&ss, AF_INET, closed_port(SOCK_STREAM));
	ck_assert_int_eq(tide_connect(fd2, (struct sockaddr *)&ss, len), -ECONNREFUSED);
	ck_assert_int_eq(tide_close(fd2), 0);
	x->closed = 1;
	return 8;
}

static int64_t blocked_recv_task(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[8];

	return tide_recv(fd, buf, sizeof(buf), 0);
}

START_TEST(test_task_ops)
{
	struct tide_loop *loop = tt_loop_new();
	struct task_ctx x = { 0 };
	struct tide_future *ts, *tc, *tb;
	char buf[8];
	int p[2];

	x.lfd = bound_socket(AF_INET, SOCK_STREAM, &x.port);
	set_nonblock(x.lfd);
	/* Outside a task the awaiting forms refuse. */
	ck_assert_int_eq(tide_accept(x.lfd, NULL, NULL), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_recv(x.lfd, buf, sizeof(buf), 0), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(tide_close(x.lfd), TIDE_ENOT_IN_TASK);
	ck_assert_int_eq(fcntl(x.lfd, F_GETFD) >= 0, 1);
	ck_assert_int_eq(tide_task_spawn(loop, echo_task, &x, NULL, &ts), 0);
	ck_assert_int_eq(tide_task_spawn(loop, client_task, &x, NULL, &tc), 0);
	tt_run_until_complete(loop, tc, 0);
	ck_assert_int_eq(tt_result(tc), 8);
	tt_run_until_complete(loop, ts, 0);
	ck_assert_int_eq(tt_result(ts), 8);
	ck_assert_int_eq(x.closed, 1);
	/* A task cancelled in tide_recv: -ECANCELED, and the bytes stay for the next reader. */
	tcp_pair(p);
	ck_assert_int_eq(tide_task_spawn(loop, blocked_recv_task, (void *)(intptr_t)p[1], NULL, &tb), 0);
	spin(loop, 4);
	ck_assert_int_eq(tide_future_done(tb), 0);
	ck_assert_int_eq(tide_task_cancel(tb), 1);
	tt_run_until_complete(loop, tb, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(tb), 1);
	tt_write_all(p[0], "kept", 4);
	/* Loopback delivery may be deferred (softirq) on a loaded machine:
	 * wait for the bytes, not 5 ms. */
	{
		struct pollfd pfd = { .fd = p[1], .events = POLLIN };

		ck_assert_int_eq(poll(&pfd, 1, (int)(TT_HANG_NS / 1000000)), 1);
	}
	ck_assert_int_eq(recv(p[1], buf, sizeof(buf), MSG_DONTWAIT), 4);
	ck_assert_mem_eq(buf, "kept", 4);
	tide_future_unref(ts);
	tide_future_unref(tc);
	tide_future_unref(tb);
	close_both(p);
	close(x.lfd);
	finish(loop);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_socket_flags, test_accept_connect, test_connect_refused, test_connect_backlog_full,
		test_unix_connect_backlog_full, test_recv_send, test_recv_cancelled, test_udp_sendmsg_recvmsg,
		test_unix_scm_rights, test_op_close, test_shutdown, test_bad_fd, test_fd_reuse_after_cancel,
		test_raw_close_under_op, test_raw_close_under_op_file_kept, test_raw_close_old_file_wakes,
		test_op_close_under_op, test_task_ops,
	};

	return net_main("sockops", 300, tests, NET_COUNT(tests), NULL, 0);
}
