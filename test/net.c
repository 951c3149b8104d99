/* SPDX-License-Identifier: MIT */
/*
 * test/net.c: networking below the streams, on every backend configuration,
 * checked as CPython's test_sock_lowlevel.py, test_events.py,
 * test_selector_events.py, test_server.py and test_buffered_proto.py check
 * asyncio: the socket ops (futures and their task-side twins), name
 * resolution, transports and protocols (callback order, half-close, reset,
 * abort and close, flow control both ways, extra info, buffered protocols),
 * servers (several hosts, start_serving, serve_forever, wait_closed,
 * close_clients, Unix) and datagram endpoints; then the load cases: 1,000
 * concurrent echo clients, 64 MiB through a 4 KiB send buffer against a
 * reader that pauses half of the time, EMFILE without spinning, and a
 * provided-buffer ring of 4 buffers (ENOBUFS) under 50 clients; last, the
 * regressions a review found (servers freed and transports closed from
 * inside callbacks or right before tide_loop_close, connects to a full
 * backlog, an epoll registration outliving its fd).
 *
 * The hard part is the bookkeeping of callbacks: every protocol logs its
 * callbacks (M made, D data runs, E eof, L lost) so a test compares the
 * whole sequence, and anything that arrives after connection_lost is
 * counted, never silently dropped. Transports are touched only before their
 * connection_lost returned, or through a reference (tide_transport_ref, or
 * the future of create_connection that holds one).
 */
#include "config.h"
#include "helpers.h"
#include "resolve-hooks.h" /* src/: the hidden resolver hook */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ utilities -- */

/* The sanitizer build runs several times slower: deadlines stretch with Check's. */
static double slow_factor(void)
{
	const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
	double f = m ? atof(m) : 1.0;

	return f >= 1.0 ? f : 1.0;
}

/*
 * Runs the loop until cond holds. The deadline only turns a hang into a
 * readable failure; no test asserts speed.
 */
#define RUN_UNTIL_FOR(loop, cond, secs)                                                          \
	do {                                                                                     \
		uint64_t run_until_end_ = tt_mono_ns() + (uint64_t)((secs) * slow_factor() * 1e9); \
		while (!(cond)) {                                                                \
			ck_assert_msg(tt_mono_ns() < run_until_end_,                             \
				      "[%s] line %d: timed out waiting for %s", tt_cfg->name,   \
				      __LINE__, #cond);                                          \
			ck_assert_int_ge(tide_loop_run_once((loop), 0.05), 0);                   \
		}                                                                                \
	} while (0)
#define RUN_UNTIL(loop, cond) RUN_UNTIL_FOR(loop, cond, 30.0)

static void stop_cb(void *arg)
{
	tide_loop_stop(arg);
}

/* n short iterations: long enough for a pending op to stay pending. */
static void spin(struct tide_loop *loop, int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.005), 0);
}

/* Runs the loop for secs (for checks that something does NOT happen). */
static void run_for(struct tide_loop *loop, double secs)
{
	ck_assert_int_eq(tide_call_later(loop, secs, stop_cb, loop, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
}

/*
 * Lets deferred closes finish (a few idle iterations), then frees the loop,
 * which must succeed: every transport, server and future is gone.
 */
static void finish(struct tide_loop *loop)
{
	uint64_t end = tt_mono_ns() + 5000000000u;
	int idle = 0, ret;

	while (idle < 5 && tt_mono_ns() < end) {
		int r = tide_loop_run_once(loop, 0.002);

		ck_assert_int_ge(r, 0);
		idle = r == 0 ? idle + 1 : 0;
	}
	ret = tide_loop_free(loop);
	ck_assert_msg(ret == 0, "[%s] tide_loop_free: %d (%s)", tt_cfg->name, ret, tide_strerror(ret));
}

/* fd has data (or an EOF or error) to read now. */
static int fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

static void check_nb_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);

	ck_assert_msg(fl >= 0 && (fl & O_NONBLOCK), "[%s] fd %d is not O_NONBLOCK (flags %#x)",
		      tt_cfg->name, fd, fl);
	ck_assert_msg(fdf >= 0 && (fdf & FD_CLOEXEC), "[%s] fd %d is not FD_CLOEXEC (%#x)",
		      tt_cfg->name, fd, fdf);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ge(fl, 0);
	ck_assert_int_eq(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* The loopback address of family with port. */
static socklen_t loopback(struct sockaddr_storage *ss, int family, int port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons((uint16_t)port);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s4->sin_port = htons((uint16_t)port);
	return sizeof(*s4);
}

static int addr_port(const void *sa)
{
	const struct sockaddr *a = sa;

	if (a->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	ck_assert_int_eq(a->sa_family, AF_INET);
	return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

static int sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	return addr_port(&ss);
}

static int is_loopback4(const void *sa)
{
	const struct sockaddr_in *s4 = sa;

	return s4->sin_family == AF_INET && s4->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

/* A plain socket bound to the loopback at a free port (listening if a stream). */
static int bound_socket(int family, int type, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, family, 0);
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&ss, len), 0);
	if (type == SOCK_STREAM)
		ck_assert_int_eq(listen(fd, 128), 0);
	*port = sock_port(fd);
	return fd;
}

/* A port nobody listens on (bound, then closed: nothing else takes it in the meantime). */
static int closed_port(int type)
{
	int port, fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&ss, len), 0);
	port = sock_port(fd);
	close(fd);
	return port;
}

/*
 * A blocking connect to the loopback: the kernel completes it through the
 * backlog. rcvbuf > 0 sets SO_RCVBUF first (the window is set then).
 */
static int raw_connect_rcvbuf(int family, int port, int rcvbuf)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, family, port);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	if (rcvbuf > 0)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&ss, len) == 0, "connect to port %d: %s", port,
		      strerror(errno));
	return fd;
}

static int raw_connect(int family, int port)
{
	return raw_connect_rcvbuf(family, port, 0);
}

/* Closes fd with SO_LINGER 0: the peer sees a reset. */
static void reset_close(int fd)
{
	struct linger lg = { 1, 0 };

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd);
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

/*
 * A closed server's listening sockets go through the loop's deferred close:
 * run the loop until a connect to port is refused.
 */
static void connect_refused_eventually(struct tide_loop *loop, int port)
{
	uint64_t end = tt_mono_ns() + (uint64_t)(10 * slow_factor() * 1e9);

	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = loopback(&ss, AF_INET, port);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r, e;

		ck_assert_int_ge(fd, 0);
		r = connect(fd, (struct sockaddr *)&ss, len);
		e = errno;
		close(fd);
		if (r < 0) {
			ck_assert_msg(e == ECONNREFUSED, "connect: %s", strerror(e));
			return;
		}
		ck_assert_msg(tt_mono_ns() < end, "[%s] port %d still accepts connections", tt_cfg->name, port);
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	}
}

static int can_bind_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET6, 0);
	int ok;

	if (fd < 0)
		return 0;
	ok = bind(fd, (struct sockaddr *)&ss, len) == 0;
	close(fd);
	return ok;
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

static void *fut_ptr(struct tide_future *f)
{
	void *p = NULL;
	int err = tide_future_result(f, NULL, &p);

	ck_assert_msg(err == 0, "[%s] future error %d (%s)", tt_cfg->name, err, tide_strerror(err));
	return p;
}

/* Takes a done future's ptr: the caller frees it as its producer says. */
static void *fut_take(struct tide_future *f)
{
	void *p;
	int err = tide_future_error(f);

	ck_assert_msg(err == 0, "[%s] future error %d (%s)", tt_cfg->name, err, tide_strerror(err));
	p = tide_future_take_ptr(f);
	ck_assert_ptr_nonnull(p);
	return p;
}

/* Deterministic per-stream bytes: stream seed, byte offset. */
static unsigned char pat(uint32_t seed, size_t off)
{
	return (unsigned char)((off * 131u) ^ (off >> 9) ^ (seed * 2654435761u >> 11));
}

static unsigned char *pat_buf(uint32_t seed, size_t n)
{
	unsigned char *b = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < n; i++)
		b[i] = pat(seed, i);
	return b;
}

/* -------------------------------------------------------- socket ops -- */

/* The path a socket op must take on the unmasked configurations. */
static void check_op_path(struct tide_loop *loop, const struct tide_loop_stats *a,
			  const struct tide_loop_stats *b, enum tide_op_kind kind, uint64_t n)
{
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
	struct tide_loop_stats s0, s1;
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
	tt_stats(loop, &s1);
	check_op_path(loop, &s0, &s1, TIDE_OP_ACCEPT, 2);
	check_op_path(loop, &s0, &s1, TIDE_OP_CONNECT, 1);
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

static void write_later_cb(void *arg)
{
	int fd = (int)(intptr_t)arg;

	tt_write_all(fd, "later", 5);
}

START_TEST(test_recv_send)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
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
	tt_stats(loop, &s1);
	check_op_path(loop, &s0, &s1, TIDE_OP_SEND, 1);
	check_op_path(loop, &s0, &s1, TIDE_OP_RECV, 3);
	close(p[0]);
	close(p[1]);
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
	close(p[0]);
	close(p[1]);
	finish(loop);
}
END_TEST

START_TEST(test_udp_sendmsg_recvmsg)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats s0, s1;
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
	tt_stats(loop, &s1);
	check_op_path(loop, &s0, &s1, TIDE_OP_SENDMSG, 2);
	check_op_path(loop, &s0, &s1, TIDE_OP_RECVMSG, 2);
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
	close(p[0]);
	close(p[1]);
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
	close(p[0]);
	close(p[1]);
	close(x.lfd);
	finish(loop);
}
END_TEST

/* ------------------------------------------------------- name resolution -- */

static int gate[2];

static int64_t gate_job(void *arg)
{
	char c;

	(void)arg;
	while (read(gate[0], &c, 1) < 0 && errno == EINTR)
		;
	return 7;
}

static struct addrinfo *gai_run(struct tide_loop *loop, struct tide_future *f, double secs)
{
	RUN_UNTIL_FOR(loop, tide_future_done(f), secs);
	return fut_take(f);
}

/*
 * Numeric hosts need no thread: they complete while the loop's default
 * executor (one worker) is blocked by a job that waits for us.
 */
START_TEST(test_getaddrinfo_numeric)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_executor_opts eo = { sizeof(eo), 1 };
	struct tide_executor *ex;
	struct tide_future *fj, *f4, *f6, *fp, *fnone;
	struct addrinfo hints, *ai;
	int err;

	tt_pipe(gate, 0);
	ck_assert_int_eq(tide_executor_new(&eo, &ex), 0);
	ck_assert_int_eq(tide_loop_set_default_executor(loop, ex), 0);
	ck_assert_int_eq(tide_run_in_executor(loop, ex, gate_job, NULL, &fj), 0);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	ck_assert_int_eq(tide_getaddrinfo(loop, "127.0.0.1", "80", &hints, &f4), 0);
	ck_assert_int_eq(tide_getaddrinfo(loop, "::1", "443", &hints, &f6), 0);
	hints.ai_family = AF_INET;
	hints.ai_flags = AI_PASSIVE;
	ck_assert_int_eq(tide_getaddrinfo(loop, NULL, "8080", &hints, &fp), 0);

	ai = gai_run(loop, f4, 3.0);
	ck_assert_ptr_nonnull(ai);
	ck_assert_int_eq(ai->ai_family, AF_INET);
	ck_assert_int_eq(ai->ai_socktype, SOCK_STREAM);
	ck_assert(is_loopback4(ai->ai_addr));
	ck_assert_int_eq(addr_port(ai->ai_addr), 80);
	freeaddrinfo(ai);
	ai = gai_run(loop, f6, 3.0);
	ck_assert_ptr_nonnull(ai);
	ck_assert_int_eq(ai->ai_family, AF_INET6);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr));
	ck_assert_int_eq(addr_port(ai->ai_addr), 443);
	freeaddrinfo(ai);
	ai = gai_run(loop, fp, 3.0);
	ck_assert_ptr_nonnull(ai);
	ck_assert_int_eq(ai->ai_family, AF_INET);
	ck_assert_uint_eq(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr, htonl(INADDR_ANY));
	ck_assert_int_eq(addr_port(ai->ai_addr), 8080);
	freeaddrinfo(ai);
	/* The executor's job is still blocked: none of that used a thread. */
	ck_assert_int_eq(tide_future_done(fj), 0);
	tt_write_all(gate[1], "g", 1);
	tt_run_until_complete(loop, fj, 0);
	ck_assert_int_eq(tt_result(fj), 7);
	/* Neither host nor port: an error, not a crash. */
	err = tide_getaddrinfo(loop, NULL, NULL, &hints, &fnone);
	if (err == 0) {
		(void)tide_loop_run_until_complete(loop, fnone);
		err = tide_future_error(fnone);
		tide_future_unref(fnone);
	}
	ck_assert_int_lt(err, 0);
	tide_future_unref(f4);
	tide_future_unref(f6);
	tide_future_unref(fp);
	tide_future_unref(fj);
	close(gate[0]);
	close(gate[1]);
	finish(loop);
	ck_assert_int_eq(tide_executor_free(ex), 0);
}
END_TEST

/* "localhost" comes from /etc/hosts (no network), on the executor; several at once. */
START_TEST(test_getaddrinfo_localhost)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f[4];
	struct addrinfo hints, *ai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(tide_getaddrinfo(loop, "localhost", i % 2 ? "8080" : "8000", &hints, &f[i]), 0);
	for (int i = 0; i < 4; i++) {
		ai = gai_run(loop, f[i], 30.0);
		ck_assert_ptr_nonnull(ai);
		ck_assert_int_eq(ai->ai_family, AF_INET);
		ck_assert(is_loopback4(ai->ai_addr));
		ck_assert_int_eq(addr_port(ai->ai_addr), i % 2 ? 8080 : 8000);
		freeaddrinfo(ai);
		tide_future_unref(f[i]);
	}
	finish(loop);
}
END_TEST

/*
 * Resolution errors without a resolver: the hook of src/resolve-hooks.h
 * stands in for the system's getaddrinfo, so no test sends a DNS query. It
 * answers "localhost" from the real one (/etc/hosts) and fails every other
 * name as a resolver would, by the name's first word.
 */
static atomic_int hook_calls;

static int fake_getaddrinfo(const char *host, const char *port, const struct addrinfo *hints,
			    struct addrinfo **res)
{
	atomic_fetch_add(&hook_calls, 1);
	if (host && strcmp(host, "localhost") == 0)
		return getaddrinfo(host, port, hints, res);
	if (host && strncmp(host, "again-", 6) == 0)
		return EAI_AGAIN;
	if (host && strncmp(host, "system-", 7) == 0) {
		errno = EMFILE;
		return EAI_SYSTEM;
	}
	return EAI_NONAME;
}

static int hooked(void)
{
	return atomic_load(&hook_calls);
}

static void use_fake_resolver(void)
{
	atomic_store(&hook_calls, 0);
	tide__set_getaddrinfo_hook(fake_getaddrinfo);
}

/* tide_getaddrinfo(host) on the executor: its error. */
static int lookup_error(struct tide_loop *loop, const char *host, const struct addrinfo *hints)
{
	struct tide_future *f;
	int err;

	ck_assert_int_eq(tide_getaddrinfo(loop, host, "80", hints, &f), 0);
	RUN_UNTIL(loop, tide_future_done(f));
	err = tide_future_error(f);
	tide_future_unref(f);
	return err;
}

START_TEST(test_getaddrinfo_invalid)
{
	struct tide_loop *loop = tt_loop_new();
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM };
	struct tide_future *f;
	int err;

	use_fake_resolver();
	err = lookup_error(loop, "no-such-host", NULL);
	ck_assert_msg(err == TIDE_EAI_BASE + EAI_NONAME, "[%s] getaddrinfo(no-such-host): %d (%s)", tt_cfg->name,
		      err, tide_strerror(err));
	ck_assert_int_eq(hooked(), 1);
	ck_assert_int_eq(lookup_error(loop, "again-host", NULL), TIDE_EAI_BASE + EAI_AGAIN);
	/* EAI_SYSTEM is the errno behind it, read on the worker thread. */
	ck_assert_int_eq(lookup_error(loop, "system-host", NULL), -EMFILE);
	ck_assert_int_eq(hooked(), 3);
	/* A name the caller wants numeric fails at once, with no lookup. */
	ck_assert_int_eq(tide_getaddrinfo(loop, "no-such-host", "80", &hints, &f), 0);
	ck_assert_int_eq(tide_future_done(f), 1);
	ck_assert_int_eq(tide_future_error(f), TIDE_EAI_BASE + EAI_NONAME);
	tide_future_unref(f);
	ck_assert_int_eq(hooked(), 3);
	ck_assert_str_eq(tide_strerror(TIDE_EAI_BASE + EAI_NONAME), gai_strerror(EAI_NONAME));
	ck_assert_str_eq(tide_strerror(TIDE_EAI_BASE + EAI_AGAIN), gai_strerror(EAI_AGAIN));
	finish(loop);
	tide__set_getaddrinfo_hook(NULL);
}
END_TEST

START_TEST(test_getnameinfo)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f4, *f6;
	struct sockaddr_storage s4, s6;
	socklen_t l4 = loopback(&s4, AF_INET, 8080), l6 = loopback(&s6, AF_INET6, 4242);
	char *p;

	ck_assert_int_eq(tide_getnameinfo(loop, (struct sockaddr *)&s4, l4, NI_NUMERICHOST | NI_NUMERICSERV, &f4), 0);
	ck_assert_int_eq(tide_getnameinfo(loop, (struct sockaddr *)&s6, l6, NI_NUMERICHOST | NI_NUMERICSERV, &f6), 0);
	/* Our copy of the address may go: the op owns what it reads. */
	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	RUN_UNTIL(loop, tide_future_done(f4) && tide_future_done(f6));
	p = fut_take(f4);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "127.0.0.1");
	ck_assert_str_eq(p + strlen(p) + 1, "8080");
	tide_free(p);
	p = fut_take(f6);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "::1");
	ck_assert_str_eq(p + strlen(p) + 1, "4242");
	tide_free(p);
	tide_future_unref(f4);
	tide_future_unref(f6);
	finish(loop);
}
END_TEST

/* ------------------------------------------------------------ protocols -- */

struct dgram {
	char data[64];
	size_t n;
	struct sockaddr_storage from;
	socklen_t fromlen;
};

/* One connection's protocol: what happened to it, and how it behaves. */
struct conn {
	struct tide_transport *t; /* from connection_made; unused after connection_lost */
	struct tide_loop *loop;
	int id;
	char log[64];             /* M made, D data (a run is one D), E eof, L lost */
	size_t nlog;
	int made, eofs, lost, lost_err, after_lost;
	size_t datas;             /* data_received / buffer_updated calls */
	unsigned char *rx;        /* what arrived (unless verify is set) */
	size_t rxlen, rxcap;
	/* behaviour */
	int echo;                 /* write back what arrives */
	int eof_ret;              /* eof_received's return */
	int eof_reply;            /* after eof: write "reply:" + rx on a later callback, then close */
	size_t close_after;       /* close once this many bytes arrived (0: never) */
	int pause_on_made;
	void (*made_hook)(struct conn *c);
	void (*resume_hook)(struct conn *c);
	/* sending: tx[0..txlen) in pieces */
	unsigned char *tx;
	size_t txlen, txoff;
	int close_sent;
	/* receiving into a reference instead of rx */
	const unsigned char *verify;
	size_t vlen;
	/* read pausing driven by the test */
	int rpaused, data_while_paused, ntoggle;
	size_t pause_every;       /* pause_reading inside every nth data_received */
	struct tide_handle toggle_h;
	/* write flow control */
	int wpaused, npause, nresume;
	size_t high, low, max_buffered;
	/* buffered protocol */
	unsigned char *bbuf;
	size_t bbuf_len, nget;
	int get_buffer_err;
	/* datagrams */
	int echo_dgram, ndgram, nerr, last_err;
	struct dgram dg[16];
};

static struct conn **g_conns;
static size_t g_nconns, g_capconns;

static struct conn *conn_new(void)
{
	struct conn *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	if (g_nconns == g_capconns) {
		g_capconns = g_capconns ? 2 * g_capconns : 64;
		g_conns = realloc(g_conns, g_capconns * sizeof(*g_conns));
		ck_assert_ptr_nonnull(g_conns);
	}
	g_conns[g_nconns++] = c;
	return c;
}

static void note(struct conn *c, char ev)
{
	if (c->lost)
		c->after_lost++;
	if (ev == 'D' && c->nlog && c->log[c->nlog - 1] == 'D')
		return;
	if (c->nlog < sizeof(c->log) - 1) {
		c->log[c->nlog++] = ev;
		c->log[c->nlog] = '\0';
	}
}

static void rx_append(struct conn *c, const void *data, size_t n)
{
	if (c->verify) {
		ck_assert_msg(c->rxlen + n <= c->vlen, "conn %d: %zu bytes past the %zu expected", c->id,
			      c->rxlen + n - c->vlen, c->vlen);
		ck_assert_msg(memcmp(c->verify + c->rxlen, data, n) == 0,
			      "conn %d: wrong bytes at offset %zu..%zu", c->id, c->rxlen, c->rxlen + n);
		c->rxlen += n;
		return;
	}
	if (c->rxlen + n > c->rxcap) {
		c->rxcap = c->rxcap ? c->rxcap : 256;
		while (c->rxcap < c->rxlen + n)
			c->rxcap *= 2;
		c->rx = realloc(c->rx, c->rxcap);
		ck_assert_ptr_nonnull(c->rx);
	}
	memcpy(c->rx + c->rxlen, data, n);
	c->rxlen += n;
}

static void on_made(struct tide_transport *t, void *p)
{
	struct conn *c = p;

	note(c, 'M');
	c->made++;
	c->t = t;
	c->loop = tide_transport_loop(t);
	ck_assert_ptr_nonnull(c->loop);
	ck_assert_ptr_eq(tide_transport_get_protocol(t), c);
	/* The marks pause_writing and resume_writing are checked against. */
	tide_transport_get_write_buffer_limits(t, &c->high, &c->low);
	if (c->pause_on_made) {
		ck_assert_int_eq(tide_transport_pause_reading(t), 0);
		c->rpaused = 1;
	}
	if (c->made_hook)
		c->made_hook(c);
}

static void after_data(struct conn *c)
{
	if (c->close_after && c->rxlen >= c->close_after && !tide_transport_is_closing(c->t))
		tide_transport_close(c->t);
}

static void on_data(struct tide_transport *t, const void *data, size_t n, void *p)
{
	struct conn *c = p;

	note(c, 'D');
	c->datas++;
	ck_assert_ptr_eq(t, c->t);
	ck_assert_uint_gt(n, 0);
	if (c->rpaused)
		c->data_while_paused++;
	rx_append(c, data, n);
	if (c->echo)
		ck_assert_int_eq(tide_transport_write(t, data, n), 0);
	/* Paused from inside the callback: what is already received must wait. */
	if (c->pause_every && c->datas % c->pause_every == 0 && !c->rpaused) {
		ck_assert_int_eq(tide_transport_pause_reading(t), 0);
		c->rpaused = 1;
		c->ntoggle++;
	}
	after_data(c);
}

static void reply_cb(void *arg)
{
	struct conn *c = arg;
	char msg[64];
	int n;

	ck_assert_int_eq(c->lost, 0);
	/* eof_received returned 1: still open for writing. */
	ck_assert_int_eq(tide_transport_is_closing(c->t), 0);
	n = snprintf(msg, sizeof(msg), "reply:%.*s", (int)c->rxlen, (const char *)c->rx);
	ck_assert_int_eq(tide_transport_write(c->t, msg, (size_t)n), 0);
	tide_transport_close(c->t);
}

static int on_eof(struct tide_transport *t, void *p)
{
	struct conn *c = p;

	ck_assert_ptr_eq(t, c->t);
	note(c, 'E');
	c->eofs++;
	if (c->eof_reply)
		ck_assert_int_eq(tide_call_later(c->loop, 0.01, reply_cb, c, NULL), 0);
	return c->eof_ret;
}

static void on_lost(struct tide_transport *t, int err, void *p)
{
	struct conn *c = p;

	ck_assert_ptr_eq(t, c->t);
	note(c, 'L');
	c->lost++;
	c->lost_err = err;
}

static void on_pause_writing(struct tide_transport *t, void *p)
{
	struct conn *c = p;
	size_t sz = tide_transport_get_write_buffer_size(t);

	if (c->lost)
		c->after_lost++;
	ck_assert_msg(!c->wpaused, "conn %d: pause_writing twice in a row", c->id);
	ck_assert_msg(sz > c->high, "conn %d: pause_writing with %zu buffered, high %zu", c->id, sz, c->high);
	c->wpaused = 1;
	c->npause++;
}

static void on_resume_writing(struct tide_transport *t, void *p)
{
	struct conn *c = p;
	size_t sz = tide_transport_get_write_buffer_size(t);

	if (c->lost)
		c->after_lost++;
	ck_assert_msg(c->wpaused, "conn %d: resume_writing without pause_writing", c->id);
	ck_assert_msg(sz <= c->low, "conn %d: resume_writing with %zu buffered, low %zu", c->id, sz, c->low);
	c->wpaused = 0;
	c->nresume++;
	if (c->resume_hook)
		c->resume_hook(c);
}

static const struct tide_protocol_ops conn_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = on_made,
	.data_received = on_data,
	.eof_received = on_eof,
	.connection_lost = on_lost,
	.pause_writing = on_pause_writing,
	.resume_writing = on_resume_writing,
};

/* A server's accepted connections, each a copy of tmpl. */
struct srv {
	struct conn tmpl;
	const struct tide_protocol_ops *ops; /* NULL: conn_ops */
	struct conn **conns;
	size_t n, cap;
	int refuse;
};

/* Servers whose conns arrays conns_free releases (they live on the tests' stacks). */
static struct srv *g_srvs[8];
static size_t g_nsrvs;

static int srv_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	struct srv *s = arg;
	struct conn *c;

	if (s->refuse)
		return -ECONNREFUSED;
	if (!s->conns) {
		ck_assert_uint_lt(g_nsrvs, sizeof(g_srvs) / sizeof(g_srvs[0]));
		g_srvs[g_nsrvs++] = s;
	}
	c = conn_new();
	*c = s->tmpl;
	c->id = (int)s->n;
	if (c->bbuf_len) {
		c->bbuf = malloc(c->bbuf_len);
		ck_assert_ptr_nonnull(c->bbuf);
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->conns = realloc(s->conns, s->cap * sizeof(*s->conns));
		ck_assert_ptr_nonnull(s->conns);
	}
	s->conns[s->n++] = c;
	*ops = s->ops ? s->ops : &conn_ops;
	*proto = c;
	return 0;
}

static void conns_free(void)
{
	for (size_t i = 0; i < g_nsrvs; i++) {
		free(g_srvs[i]->conns);
		g_srvs[i]->conns = NULL;
	}
	g_nsrvs = 0;
	for (size_t i = 0; i < g_nconns; i++) {
		free(g_conns[i]->rx);
		free(g_conns[i]->tx);
		free(g_conns[i]->bbuf);
		free(g_conns[i]);
	}
	free(g_conns);
	g_conns = NULL;
	g_nconns = g_capconns = 0;
}

static size_t srv_count(const struct srv *s, int made, int lost)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++)
		if ((!made || s->conns[i]->made) && (!lost || s->conns[i]->lost))
			k++;
	return k;
}

static const char *const lo4[] = { "127.0.0.1" };

static struct tide_server *serve(struct tide_loop *loop, const char *const *hosts, size_t nhosts,
				 const struct tide_server_opts *opts, struct srv *s)
{
	struct tide_future *f;
	struct tide_server *sv;
	int r = tide_create_server(loop, hosts, nhosts, 0, opts, srv_factory, s, &f);

	ck_assert_msg(r == 0, "[%s] tide_create_server: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	tt_run_until_complete(loop, f, 0);
	sv = fut_take(f);
	tide_future_unref(f);
	ck_assert_ptr_nonnull(sv);
	ck_assert_int_gt(tide_server_port(sv), 0);
	return sv;
}

static void server_end(struct tide_server *sv)
{
	tide_server_close(sv);
	tide_server_free(sv);
}

/* create_connection; as in asyncio, connection_made has run when the future completes. */
static struct conn *dial(struct tide_loop *loop, const char *host, int port, struct conn *c)
{
	struct tide_future *f;
	struct tide_transport *t;
	int r = tide_create_connection(loop, host, port, &conn_ops, c, &f);

	ck_assert_msg(r == 0, "[%s] tide_create_connection: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	tt_run_until_complete(loop, f, 0);
	t = fut_ptr(f);
	tide_future_unref(f);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(c->made, 1);
	ck_assert_ptr_eq(t, c->t);
	ck_assert_ptr_eq(tide_transport_loop(t), loop);
	return c;
}

/* A create_connection that fails: its error. */
static int dial_error(struct tide_loop *loop, const char *host, int port, struct conn *c)
{
	struct tide_future *f;
	int err;

	ck_assert_int_eq(tide_create_connection(loop, host, port, &conn_ops, c, &f), 0);
	RUN_UNTIL(loop, tide_future_done(f));
	err = tide_future_error(f);
	tide_future_unref(f);
	return err;
}

static void check_conn(const struct conn *c, const char *log, int err)
{
	ck_assert_msg(strcmp(c->log, log) == 0, "[%s] conn %d: callbacks \"%s\", expected \"%s\"",
		      tt_cfg->name, c->id, c->log, log);
	ck_assert_msg(c->lost == 1 && c->lost_err == err, "[%s] conn %d: lost %d times, err %d (%s), expected %d",
		      tt_cfg->name, c->id, c->lost, c->lost_err, tide_strerror(c->lost_err), err);
	ck_assert_int_eq(c->after_lost, 0);
}

/* A server on 127.0.0.1 (its connections copy s->tmpl), and cli connected to it. */
static struct tide_server *serve_dial(struct tide_loop *loop, struct srv *s, struct conn *cli)
{
	struct tide_server *sv = serve(loop, lo4, 1, NULL, s);

	dial(loop, "127.0.0.1", tide_server_port(sv), cli);
	return sv;
}

/* The server side of serve_dial's connection, once accepted. */
static struct conn *accepted(struct tide_loop *loop, struct srv *s)
{
	RUN_UNTIL(loop, srv_count(s, 1, 0) == 1);
	return s->conns[0];
}

/* Both ends of serve_dial's connection are gone. */
static int both_lost(const struct conn *cli, const struct srv *s)
{
	return cli->lost && s->n == 1 && s->conns[0]->lost;
}

/* The end of a protocol test: the server (if any), the loop, the conns. */
static void finish_all(struct tide_loop *loop, struct tide_server *sv)
{
	if (sv)
		server_end(sv);
	finish(loop);
	conns_free();
}

static void echo_roundtrip(struct tide_loop *loop, const char *host, int port, struct srv *s, size_t before);

/* ------------------------------------------------- transports: basics -- */

START_TEST(test_echo_callback_order)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new();
	const char *msg = "hello tide world";

	s.tmpl.echo = 1;
	sv = serve(loop, lo4, 1, NULL, &s);
	cli->close_after = strlen(msg);
	dial(loop, "127.0.0.1", tide_server_port(sv), cli);
	ck_assert_int_eq(tide_transport_is_closing(cli->t), 0);
	ck_assert_int_eq(tide_transport_is_reading(cli->t), 1);
	ck_assert_int_eq(tide_transport_write(cli->t, "hello ", 6), 0);
	ck_assert_int_eq(tide_transport_write(cli->t, "tide ", 5), 0);
	{
		struct iovec iov[2] = { { "wor", 3 }, { "ld", 2 } };

		ck_assert_int_eq(tide_transport_writelines(cli->t, iov, 2), 0);
	}
	RUN_UNTIL(loop, both_lost(cli, &s));
	/* Nothing comes after connection_lost, on either side. */
	run_for(loop, 0.05);
	check_conn(cli, "MDL", 0);
	check_conn(s.conns[0], "MDEL", 0);
	ck_assert_uint_eq(cli->rxlen, strlen(msg));
	ck_assert_mem_eq(cli->rx, msg, strlen(msg));
	ck_assert_uint_eq(s.conns[0]->rxlen, strlen(msg));
	ck_assert_mem_eq(s.conns[0]->rx, msg, strlen(msg));
	ck_assert_int_eq(s.conns[0]->eofs, 1);
	finish_all(loop, sv);
}
END_TEST

/*
 * create_connection resolves names (on the executor): "localhost" works; a
 * refused port and a name that does not resolve fail the future, and the
 * protocol never hears of a connection.
 */
START_TEST(test_create_connection_errors)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *refused = conn_new(), *noname = conn_new();
	int err;

	use_fake_resolver();
	s.tmpl.echo = 1;
	sv = serve(loop, lo4, 1, NULL, &s);
	echo_roundtrip(loop, "localhost", tide_server_port(sv), &s, 0);
	ck_assert_int_eq(dial_error(loop, "127.0.0.1", closed_port(SOCK_STREAM), refused), -ECONNREFUSED);
	err = dial_error(loop, "no-such-host", 80, noname);
	ck_assert_msg(err == TIDE_EAI_BASE + EAI_NONAME, "[%s] create_connection(no-such-host): %d (%s)",
		      tt_cfg->name, err, tide_strerror(err));
	/* "localhost" and the bad name both asked the (fake) resolver. */
	ck_assert_int_eq(hooked(), 2);
	run_for(loop, 0.02);
	ck_assert_int_eq(refused->made + refused->lost + noname->made + noname->lost, 0);
	finish_all(loop, sv);
	tide__set_getaddrinfo_hook(NULL);
}
END_TEST

/*
 * tide_loop_shutdown winds a loop down from plain code: a sleeping task is
 * cancelled and awaited, the last callbacks of a closed connection and of a
 * freed server run, and tide_loop_free then succeeds with no idle laps. A
 * task that will not end makes it time out; inside the loop it refuses.
 */
static struct tide_loop *g_shutdown_loop;

static int64_t shutdown_sleeper(void *arg)
{
	int *state = arg;
	int r;

	do
		r = tide_sleep(3600);
	while (r == -ECANCELED && state[1] == 0); /* state[1]: give in */
	state[0] = r == -ECANCELED ? 1 : 2;
	return 0;
}

/* Its cleanup spawns a sleeper, which shutdown must cancel too, and stops
 * the loop, which must not make shutdown spin or return. */
static int late_state[2];
static struct tide_future *late_task;

static int64_t shutdown_spawner(void *arg)
{
	(void)arg;
	ck_assert_int_eq(tide_sleep(3600), -ECANCELED);
	ck_assert_int_eq(tide_task_spawn(g_shutdown_loop, shutdown_sleeper, late_state, NULL, &late_task), 0);
	tide_loop_stop(g_shutdown_loop);
	return 0;
}

static void shutdown_inside(void *arg)
{
	int *res = arg;

	*res = tide_loop_shutdown(g_shutdown_loop, 0);
}

START_TEST(test_loop_shutdown)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct conn *cli = conn_new();
	struct tide_server *sv = serve_dial(loop, &s, cli);
	struct tide_future *t1, *t2, *t3;
	int st1[2] = { 0, 1 }, st2[2] = { 0, 0 }, inside = 0;

	accepted(loop, &s);
	ck_assert_int_eq(tide_task_spawn(loop, shutdown_sleeper, st1, NULL, &t1), 0);
	ck_assert_int_eq(tide_task_spawn(loop, shutdown_sleeper, st2, NULL, &t2), 0);
	ck_assert_int_eq(tide_task_spawn(loop, shutdown_spawner, NULL, NULL, &t3), 0);
	late_state[0] = 0;
	late_state[1] = 1;
	/* Inside the loop it refuses. */
	g_shutdown_loop = loop;
	ck_assert_int_eq(tide_call_soon(loop, shutdown_inside, &inside, NULL), 0);
	RUN_UNTIL(loop, inside != 0);
	ck_assert_int_eq(inside, TIDE_ERUNNING);
	/* The second task catches its cancellation and sleeps on: a time-out. */
	ck_assert_int_eq(tide_loop_shutdown(loop, 0.05), -ETIMEDOUT);
	ck_assert_int_eq(st1[0], 1);
	ck_assert_int_eq(tide_future_cancelled(t1), 0); /* it returned 0 */
	ck_assert_int_eq(tide_future_done(t2), 0);
	st2[1] = 1;
	tide_transport_close(cli->t);
	tide_transport_close(s.conns[0]->t);
	server_end(sv);
	ck_assert_int_eq(tide_loop_shutdown(loop, INFINITY), 0);
	ck_assert_int_eq(st2[0], 1);
	/* The late task was cancelled too: in its sleep, or before it began. */
	ck_assert_ptr_nonnull(late_task);
	ck_assert_int_eq(tide_future_done(late_task), 1);
	ck_assert(late_state[0] == 1 || tide_future_cancelled(late_task));
	tide_future_unref(late_task);
	late_task = NULL;
	ck_assert_int_eq(tide_future_done(t2), 1);
	ck_assert_int_eq(tide_all_tasks(loop, NULL, 0), 0);
	check_conn(cli, "ML", 0);
	check_conn(s.conns[0], "ML", 0);
	tide_future_unref(t1);
	tide_future_unref(t2);
	tide_future_unref(t3);
	/* Nothing is left to wind down: at once, and free needs no more laps. */
	ck_assert_int_eq(tide_loop_shutdown(loop, 0), 0);
	ck_assert_int_eq(tide_loop_shutdown(loop, NAN), -EINVAL);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	conns_free();
}
END_TEST

/*
 * Half-close both ways: the client writes and shuts its side; the server's
 * eof_received keeps the transport open, it answers, then closes.
 */
START_TEST(test_half_close)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new();

	s.tmpl.eof_ret = 1;
	s.tmpl.eof_reply = 1;
	sv = serve_dial(loop, &s, cli);
	ck_assert_int_eq(tide_transport_can_write_eof(cli->t), 1);
	ck_assert_int_eq(tide_transport_write(cli->t, "abc", 3), 0);
	ck_assert_int_eq(tide_transport_write_eof(cli->t), 0);
	ck_assert_int_eq(tide_transport_write(cli->t, "more", 4), -EPIPE);
	RUN_UNTIL(loop, both_lost(cli, &s));
	run_for(loop, 0.05);
	check_conn(s.conns[0], "MDEL", 0);
	ck_assert_uint_eq(s.conns[0]->rxlen, 3);
	ck_assert_mem_eq(s.conns[0]->rx, "abc", 3);
	check_conn(cli, "MDEL", 0);
	ck_assert_uint_eq(cli->rxlen, 9);
	ck_assert_mem_eq(cli->rx, "reply:abc", 9);
	finish_all(loop, sv);
}
END_TEST

/* The peer resets (SO_LINGER 0): connection_lost(-ECONNRESET), once, and nothing after. */
START_TEST(test_reset_by_peer)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv = serve(loop, lo4, 1, NULL, &s);
	int fd = raw_connect(AF_INET, tide_server_port(sv));

	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 1);
	reset_close(fd);
	RUN_UNTIL(loop, s.conns[0]->lost);
	run_for(loop, 0.05);
	check_conn(s.conns[0], "ML", -ECONNRESET);
	finish_all(loop, sv);
}
END_TEST

/* Bytes shared by every connection of a test (the factory copies the template). */
static unsigned char *g_big;
static size_t g_biglen;

static void write_big_hook(struct conn *c)
{
	ck_assert_int_eq(tide_transport_write(c->t, g_big, g_biglen), 0);
}

/* A reset while the server has a full write buffer: one connection_lost with the error. */
START_TEST(test_reset_while_writing)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	int fd;

	g_biglen = 4u << 20;
	g_big = pat_buf(1, g_biglen);
	s.tmpl.made_hook = write_big_hook;
	sv = serve(loop, lo4, 1, NULL, &s);
	fd = raw_connect_rcvbuf(AF_INET, tide_server_port(sv), 4096);
	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 1);
	RUN_UNTIL(loop, tide_transport_get_write_buffer_size(s.conns[0]->t) > 0);
	reset_close(fd);
	RUN_UNTIL(loop, s.conns[0]->lost);
	run_for(loop, 0.05);
	ck_assert_msg(s.conns[0]->lost_err == -ECONNRESET || s.conns[0]->lost_err == -EPIPE,
		      "[%s] lost with %d (%s)", tt_cfg->name, s.conns[0]->lost_err,
		      tide_strerror(s.conns[0]->lost_err));
	/*
	 * The failed send may take the socket's error first, and the receive
	 * then reads a plain EOF: asyncio too calls eof_received then, and
	 * connection_lost with the send's error once the close cannot flush.
	 */
	if (strcmp(s.conns[0]->log, "MEL") == 0)
		check_conn(s.conns[0], "MEL", s.conns[0]->lost_err);
	else
		check_conn(s.conns[0], "ML", s.conns[0]->lost_err);
	free(g_big);
	g_big = NULL;
	finish_all(loop, sv);
}
END_TEST

/* Sets SO_SNDBUF or SO_RCVBUF on t's socket. */
static void set_sockbuf(struct tide_transport *t, int opt, int sz)
{
	int fd = -1;
	socklen_t len = sizeof(fd);

	ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &len), 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, opt, &sz, sizeof(sz)), 0);
}

static void small_sndbuf(struct tide_transport *t)
{
	set_sockbuf(t, SO_SNDBUF, 4096);
}

/*
 * 32 KiB, not 4: create_connection hands us the socket after the handshake,
 * and Linux loopback TCP (MSS 65483) with a receive buffer far below the MSS
 * set then advertises a zero window and crawls on persist-timer probes
 * (measured with plain sockets: 4 KiB 0.1 MB/s, 16 KiB 0.2-40 MB/s, 32 KiB
 * 500+ MB/s). 32 KiB is still small: 64 MiB needs thousands of windows.
 */
static void small_rcvbuf(struct tide_transport *t)
{
	set_sockbuf(t, SO_RCVBUF, 32768);
}

#define FLUSH_LEN (4u << 20)

/* close() flushes what is buffered first: the peer gets every byte, then EOF. */
START_TEST(test_close_flushes)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new();
	unsigned char *data = pat_buf(2, FLUSH_LEN);

	sv = serve_dial(loop, &s, cli);
	small_sndbuf(cli->t);
	for (size_t off = 0; off < FLUSH_LEN; off += FLUSH_LEN / 16)
		ck_assert_int_eq(tide_transport_write(cli->t, data + off, FLUSH_LEN / 16), 0);
	ck_assert_uint_gt(tide_transport_get_write_buffer_size(cli->t), 0);
	tide_transport_close(cli->t);
	ck_assert_int_eq(tide_transport_is_closing(cli->t), 1);
	ck_assert_int_eq(tide_transport_write(cli->t, "x", 1), TIDE_ECLOSED);
	tide_transport_close(cli->t); /* idempotent */
	RUN_UNTIL(loop, both_lost(cli, &s));
	run_for(loop, 0.02);
	check_conn(cli, "ML", 0);
	check_conn(s.conns[0], "MDEL", 0);
	ck_assert_uint_eq(s.conns[0]->rxlen, FLUSH_LEN);
	ck_assert(memcmp(s.conns[0]->rx, data, FLUSH_LEN) == 0);
	free(data);
	finish_all(loop, sv);
}
END_TEST

/*
 * Many small writes while a send is in flight pile up in one buffer that
 * moves through every pooled size (64 B to 4 KiB) and past it; then the
 * buffers go back to the pools and are reused. Byte-exact both times.
 */
#define SMALL_WRITES 4000
START_TEST(test_small_writes_grow)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new();
	size_t total = 0;

	for (int i = 0; i < SMALL_WRITES; i++)
		total += (size_t)(i % 97) + 1;
	unsigned char *data = pat_buf(4, 2 * total);

	sv = serve_dial(loop, &s, cli);
	small_sndbuf(cli->t);
	for (int round = 0; round < 2; round++) {
		size_t off = round * total;
		for (int i = 0; i < SMALL_WRITES; i++) {
			size_t n = (size_t)(i % 97) + 1;
			ck_assert_int_eq(tide_transport_write(cli->t, data + off, n), 0);
			off += n;
		}
		ck_assert_uint_eq(off, (round + 1) * total);
		RUN_UNTIL(loop, s.n == 1 && s.conns[0]->rxlen == off);
		ck_assert_uint_eq(tide_transport_get_write_buffer_size(cli->t), 0);
	}
	tide_transport_close(cli->t);
	RUN_UNTIL(loop, both_lost(cli, &s));
	check_conn(cli, "ML", 0);
	ck_assert_uint_eq(s.conns[0]->rxlen, 2 * total);
	ck_assert(memcmp(s.conns[0]->rx, data, 2 * total) == 0);
	free(data);
	finish_all(loop, sv);
}
END_TEST

/* abort() drops the buffer: the peer gets a prefix only, and connection_lost(0) follows. */
START_TEST(test_abort_drops_buffer)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new(), *sc;
	unsigned char *data = pat_buf(3, FLUSH_LEN);
	struct tide_transport *t;

	s.tmpl.pause_on_made = 1;
	sv = serve_dial(loop, &s, cli);
	small_sndbuf(cli->t);
	sc = accepted(loop, &s);
	for (size_t off = 0; off < FLUSH_LEN; off += FLUSH_LEN / 16)
		ck_assert_int_eq(tide_transport_write(cli->t, data + off, FLUSH_LEN / 16), 0);
	ck_assert_uint_gt(tide_transport_get_write_buffer_size(cli->t), 0);
	/* A reference keeps the transport readable after connection_lost. */
	t = tide_transport_ref(cli->t);
	tide_transport_abort(cli->t);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	ck_assert_uint_eq(tide_transport_get_write_buffer_size(t), 0);
	ck_assert_int_eq(tide_transport_write(t, "x", 1), TIDE_ECLOSED);
	/* Not re-entrantly from abort(). */
	ck_assert_int_eq(cli->lost, 0);
	RUN_UNTIL(loop, cli->lost);
	check_conn(cli, "ML", 0);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	ck_assert_int_eq(tide_transport_write(t, "x", 1), TIDE_ECLOSED);
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd;

		/* Every name says the same once the socket is gone. */
		ck_assert_int_eq(tide_transport_get_extra_info(t, "peername", &ss, &sl), TIDE_ECLOSED);
		ck_assert_int_eq(tide_transport_get_extra_info(t, "sockname", &ss, &sl), TIDE_ECLOSED);
		sl = sizeof(fd);
		ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &sl), TIDE_ECLOSED);
		ck_assert_int_eq(tide_transport_get_extra_info(t, "nosuchname", &ss, &sl), -ENOENT);
	}
	tide_transport_unref(t);
	/* The server reads what made it through: a strict prefix. */
	ck_assert_int_eq(tide_transport_resume_reading(sc->t), 0);
	sc->rpaused = 0;
	RUN_UNTIL(loop, sc->lost);
	run_for(loop, 0.02);
	ck_assert_msg(sc->lost_err == 0 || sc->lost_err == -ECONNRESET, "[%s] server lost: %d (%s)",
		      tt_cfg->name, sc->lost_err, tide_strerror(sc->lost_err));
	ck_assert_int_eq(sc->lost, 1);
	ck_assert_int_eq(sc->after_lost, 0);
	ck_assert_msg(sc->rxlen < FLUSH_LEN, "[%s] abort delivered all %zu bytes", tt_cfg->name, sc->rxlen);
	ck_assert(sc->rxlen == 0 || memcmp(sc->rx, data, sc->rxlen) == 0);
	free(data);
	finish_all(loop, sv);
}
END_TEST

/*
 * abort with a big write in flight to a peer that does not read: on
 * io_uring that is a zero-copy send, which completes only when the
 * kernel lets go of its pages, and unread bytes hold them in the send
 * queue. connection_lost must still come at once (the loop can be freed).
 */
START_TEST(test_abort_zero_copy_unread)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv = serve(loop, lo4, 1, NULL, &s);
	int fd = raw_connect(AF_INET, tide_server_port(sv));
	struct conn *sc = accepted(loop, &s);
	const size_t len = 16u << 20;
	unsigned char *data = pat_buf(5, len), buf[65536];
	size_t got = 0;
	ssize_t n;
	struct tide_loop_stats st;

	ck_assert_int_eq(tide_transport_write(sc->t, data, len), 0);
	run_for(loop, 0.1);
	ck_assert_uint_gt(tide_transport_get_write_buffer_size(sc->t), 0);
	tt_stats(loop, &st);
	if (tt_is_uring() && tide_loop_op_native(loop, TIDE_OP_SEND_ZC))
		ck_assert_msg(st.ops_submitted[TIDE_OP_SEND_ZC][TIDE_PATH_URING] > 0,
			      "[%s] no zero-copy send: the test misses its case", tt_cfg->name);
	tide_transport_abort(sc->t);
	{
		/* Closing, not yet lost: the address, or that it is closed. */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int r = tide_transport_get_extra_info(sc->t, "peername", &ss, &sl);

		ck_assert_msg(r == 0 || r == TIDE_ECLOSED, "[%s] peername after abort: %d", tt_cfg->name, r);
	}
	RUN_UNTIL(loop, sc->lost);
	check_conn(sc, "ML", 0);
	/* The peer gets a prefix of the bytes, then the end (a reset after a
	 * zero-copy send, which the abort had to cut short). */
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		ck_assert_uint_le(got + (size_t)n, len);
		ck_assert(memcmp(buf, data + got, (size_t)n) == 0);
		got += (size_t)n;
	}
	ck_assert_msg(n == 0 || errno == ECONNRESET, "[%s] peer: %s", tt_cfg->name, strerror(errno));
	ck_assert_uint_lt(got, len);
	close(fd);
	free(data);
	finish_all(loop, sv);
}
END_TEST

/* writelines with more pieces than sendmsg takes (IOV_MAX): every byte arrives. */
START_TEST(test_writelines_past_iov_max)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new(), *sc;
	enum { N = 3000 };
	unsigned char *data = pat_buf(6, N);
	struct iovec *iov = calloc(N, sizeof(*iov));

	ck_assert_ptr_nonnull(iov);
	for (size_t i = 0; i < N; i++) {
		iov[i].iov_base = data + i;
		iov[i].iov_len = 1;
	}
	sv = serve_dial(loop, &s, cli);
	sc = accepted(loop, &s);
	ck_assert_int_eq(tide_transport_writelines(cli->t, iov, N), 0);
	tide_transport_close(cli->t);
	RUN_UNTIL(loop, cli->lost && sc->lost);
	check_conn(cli, "ML", 0);
	check_conn(sc, "MDEL", 0);
	ck_assert_uint_eq(sc->rxlen, N);
	ck_assert_mem_eq(sc->rx, data, N);
	free(iov);
	free(data);
	finish_all(loop, sv);
}
END_TEST

/* A write longer than any can be is the caller's error, not the connection's. */
START_TEST(test_write_impossible_length)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new(), *sc;
	static char byte = 'x';
	struct iovec two[2] = { { &byte, (size_t)SSIZE_MAX }, { &byte, 2 } };

	sv = serve_dial(loop, &s, cli);
	sc = accepted(loop, &s);
	ck_assert_int_eq(tide_transport_write(cli->t, &byte, SIZE_MAX), -EINVAL);
	ck_assert_int_eq(tide_transport_write(cli->t, &byte, (size_t)SSIZE_MAX + 1), -EINVAL);
	/* Two pieces whose sum wraps around. */
	ck_assert_int_eq(tide_transport_writelines(cli->t, two, 2), -EINVAL);
	ck_assert_uint_eq(tide_transport_get_write_buffer_size(cli->t), 0);
	/* The connection is unharmed. */
	ck_assert_int_eq(tide_transport_write(cli->t, "ok", 2), 0);
	tide_transport_close(cli->t);
	RUN_UNTIL(loop, cli->lost && sc->lost);
	check_conn(cli, "ML", 0);
	check_conn(sc, "MDEL", 0);
	ck_assert_uint_eq(sc->rxlen, 2);
	ck_assert_mem_eq(sc->rx, "ok", 2);
	finish_all(loop, sv);
}
END_TEST

/* eof_received comes once, even when reading is paused and resumed after it. */
START_TEST(test_eof_received_once)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new(), *sc;

	s.tmpl.eof_ret = 1;
	sv = serve_dial(loop, &s, cli);
	sc = accepted(loop, &s);
	ck_assert_int_eq(tide_transport_write(cli->t, "abc", 3), 0);
	ck_assert_int_eq(tide_transport_write_eof(cli->t), 0);
	RUN_UNTIL(loop, sc->eofs == 1);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(tide_transport_pause_reading(sc->t), 0);
		ck_assert_int_eq(tide_transport_resume_reading(sc->t), 0);
		run_for(loop, 0.02);
	}
	ck_assert_int_eq(sc->eofs, 1);
	ck_assert_int_eq(tide_transport_is_closing(sc->t), 0);
	tide_transport_close(sc->t);
	RUN_UNTIL(loop, cli->lost && sc->lost);
	check_conn(sc, "MDEL", 0);
	check_conn(cli, "MEL", 0);
	ck_assert_mem_eq(sc->rx, "abc", 3);
	finish_all(loop, sv);
}
END_TEST

/* pause_reading stops data_received (and the EOF) until resume_reading; nothing is lost. */
START_TEST(test_pause_reading)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new(), *sc;

	s.tmpl.pause_on_made = 1;
	sv = serve_dial(loop, &s, cli);
	sc = accepted(loop, &s);
	ck_assert_int_eq(tide_transport_is_reading(sc->t), 0);
	/* Pausing again is harmless (asyncio: a no-op). */
	ck_assert_int_ge(tide_transport_pause_reading(sc->t), 0);
	ck_assert_int_eq(tide_transport_write(cli->t, "abc", 3), 0);
	ck_assert_int_eq(tide_transport_write(cli->t, "def", 3), 0);
	tide_transport_close(cli->t);
	RUN_UNTIL(loop, cli->lost);
	run_for(loop, 0.1);
	ck_assert_str_eq(sc->log, "M");
	ck_assert_int_eq(sc->data_while_paused, 0);
	sc->rpaused = 0;
	ck_assert_int_eq(tide_transport_resume_reading(sc->t), 0);
	ck_assert_int_eq(tide_transport_is_reading(sc->t), 1);
	RUN_UNTIL(loop, sc->lost);
	check_conn(sc, "MDEL", 0);
	ck_assert_uint_eq(sc->rxlen, 6);
	ck_assert_mem_eq(sc->rx, "abcdef", 6);
	check_conn(cli, "ML", 0);
	finish_all(loop, sv);
}
END_TEST

START_TEST(test_write_buffer_limits)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct conn *cli = conn_new();
	struct tide_server *sv = serve_dial(loop, &s, cli);
	size_t hi = 1, lo = 1;

	tide_transport_get_write_buffer_limits(cli->t, &hi, &lo);
	ck_assert_uint_eq(hi, 65536);
	ck_assert_uint_eq(lo, 16384);
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(cli->t, 100, 200), -EINVAL);
	tide_transport_get_write_buffer_limits(cli->t, &hi, &lo);
	ck_assert_uint_eq(hi, 65536);
	ck_assert_uint_eq(lo, 16384);
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(cli->t, 1000, 10), 0);
	tide_transport_get_write_buffer_limits(cli->t, &hi, &lo);
	ck_assert_uint_eq(hi, 1000);
	ck_assert_uint_eq(lo, 10);
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(cli->t, 4096, 4096), 0);
	tide_transport_get_write_buffer_limits(cli->t, &hi, &lo);
	ck_assert_uint_eq(hi, 4096);
	ck_assert_uint_eq(lo, 4096);
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(cli->t, 0, 0), 0);
	tide_transport_get_write_buffer_limits(cli->t, &hi, &lo);
	ck_assert_uint_eq(hi, 65536);
	ck_assert_uint_eq(lo, 16384);
	/* 0 is asyncio's None: high is 4 * low, low is high / 4. */
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(cli->t, 0, 100), 0);
	tide_transport_get_write_buffer_limits(cli->t, &hi, &lo);
	ck_assert_uint_eq(hi, 400);
	ck_assert_uint_eq(lo, 100);
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(cli->t, 100, 0), 0);
	tide_transport_get_write_buffer_limits(cli->t, &hi, &lo);
	ck_assert_uint_eq(hi, 100);
	ck_assert_uint_eq(lo, 25);
	/* Past 4 GiB a mark is 4 GiB, and the default low is a quarter of that. */
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(cli->t, (size_t)1 << 40, 0), 0);
	tide_transport_get_write_buffer_limits(cli->t, &hi, &lo);
	ck_assert_uint_eq(hi, UINT32_MAX);
	ck_assert_uint_eq(lo, UINT32_MAX / 4);
	/* A huge low alone: 4 * low does not wrap into a smaller high. */
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(cli->t, 0, SIZE_MAX / 2), 0);
	tide_transport_get_write_buffer_limits(cli->t, &hi, &lo);
	ck_assert_uint_eq(hi, UINT32_MAX);
	ck_assert_uint_eq(lo, UINT32_MAX);
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(cli->t, 0, 0), 0);
	ck_assert_uint_eq(tide_transport_get_write_buffer_size(cli->t), 0);
	tide_transport_close(cli->t);
	RUN_UNTIL(loop, cli->lost && srv_count(&s, 1, 1) == 1);
	check_conn(cli, "ML", 0);
	finish_all(loop, sv);
}
END_TEST

static int nodelay_of(struct tide_transport *t)
{
	int fd = -1, v = -1;
	socklen_t len = sizeof(fd);

	ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &len), 0);
	len = sizeof(v);
	ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
	return v;
}

START_TEST(test_extra_info)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv = serve(loop, lo4, 1, NULL, &s);
	struct conn *cli = conn_new();
	struct sockaddr_storage ss, cs;
	socklen_t len;
	int fd = -1, port = tide_server_port(sv), cport;
	char tiny[4];

	dial(loop, "127.0.0.1", port, cli);
	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 1);
	len = sizeof(ss);
	ck_assert_int_eq(tide_transport_get_extra_info(cli->t, "peername", &ss, &len), 0);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	ck_assert(is_loopback4(&ss));
	ck_assert_int_eq(addr_port(&ss), port);
	len = sizeof(cs);
	ck_assert_int_eq(tide_transport_get_extra_info(cli->t, "sockname", &cs, &len), 0);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
	cport = addr_port(&cs);
	len = sizeof(fd);
	ck_assert_int_eq(tide_transport_get_extra_info(cli->t, "socket", &fd, &len), 0);
	ck_assert_int_ge(fd, 0);
	check_nb_cloexec(fd);
	ck_assert_int_eq(sock_port(fd), cport);
	/* The server side sees the client's address as its peer. */
	len = sizeof(ss);
	ck_assert_int_eq(tide_transport_get_extra_info(s.conns[0]->t, "peername", &ss, &len), 0);
	ck_assert_int_eq(addr_port(&ss), cport);
	len = sizeof(ss);
	ck_assert_int_eq(tide_transport_get_extra_info(s.conns[0]->t, "sockname", &ss, &len), 0);
	ck_assert_int_eq(addr_port(&ss), port);
	/* TCP transports have Nagle's algorithm off, both ends (as asyncio's). */
	ck_assert_int_eq(nodelay_of(cli->t), 1);
	ck_assert_int_eq(nodelay_of(s.conns[0]->t), 1);
	len = sizeof(ss);
	ck_assert_int_eq(tide_transport_get_extra_info(cli->t, "no-such-info", &ss, &len), -ENOENT);
	len = sizeof(tiny);
	ck_assert_int_eq(tide_transport_get_extra_info(cli->t, "peername", tiny, &len), -ENOSPC);
	len = 1;
	ck_assert_int_eq(tide_transport_get_extra_info(cli->t, "socket", tiny, &len), -ENOSPC);
	tide_transport_close(cli->t);
	RUN_UNTIL(loop, cli->lost && srv_count(&s, 1, 1) == 1);
	check_conn(cli, "ML", 0);
	check_conn(s.conns[0], "MEL", 0);
	finish_all(loop, sv);
}
END_TEST

/* --------------------------------------------------- buffered protocol -- */

static void bad_data(struct tide_transport *t, const void *data, size_t n, void *p)
{
	(void)t;
	(void)data;
	(void)p;
	ck_abort_msg("[%s] data_received called for a buffered protocol (%zu bytes)", tt_cfg->name, n);
}

static int on_get_buffer(struct tide_transport *t, size_t hint, void **buf, size_t *len, void *p)
{
	struct conn *c = p;

	(void)hint;
	ck_assert_ptr_eq(t, c->t);
	if (c->lost)
		c->after_lost++;
	c->nget++;
	if (c->get_buffer_err)
		return c->get_buffer_err;
	/* Scribble: only the bytes buffer_updated counts may be read back. */
	memset(c->bbuf, 0xa5, c->bbuf_len);
	*buf = c->bbuf;
	*len = c->bbuf_len;
	return 0;
}

static void on_buffer_updated(struct tide_transport *t, size_t n, void *p)
{
	struct conn *c = p;

	ck_assert_ptr_eq(t, c->t);
	note(c, 'D');
	c->datas++;
	ck_assert_msg(n > 0 && n <= c->bbuf_len, "buffer_updated(%zu) with a %zu-byte buffer", n, c->bbuf_len);
	rx_append(c, c->bbuf, n);
	after_data(c);
}

static const struct tide_protocol_ops buffered_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = on_made,
	.data_received = bad_data,
	.eof_received = on_eof,
	.connection_lost = on_lost,
	.get_buffer = on_get_buffer,
	.buffer_updated = on_buffer_updated,
};

static void buffered_case(size_t bbuf_len, size_t total)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new(), *sc;
	unsigned char *data = pat_buf(4, total);

	s.ops = &buffered_ops;
	s.tmpl.bbuf_len = bbuf_len;
	sv = serve_dial(loop, &s, cli);
	for (size_t off = 0; off < total; off += total / 8)
		ck_assert_int_eq(tide_transport_write(cli->t, data + off, total / 8), 0);
	tide_transport_close(cli->t);
	RUN_UNTIL_FOR(loop, both_lost(cli, &s), 60.0);
	sc = s.conns[0];
	check_conn(sc, "MDEL", 0);
	check_conn(cli, "ML", 0);
	ck_assert_uint_eq(sc->rxlen, total);
	ck_assert(memcmp(sc->rx, data, total) == 0);
	ck_assert_uint_ge(sc->nget, sc->datas);
	if (bbuf_len == 1)
		ck_assert_uint_eq(sc->datas, total);
	free(data);
	finish_all(loop, sv);
}

START_TEST(test_buffered_protocol)
{
	buffered_case(65536, 1u << 20);
}
END_TEST

START_TEST(test_buffered_protocol_one_byte)
{
	buffered_case(1, 16384);
}
END_TEST

/* get_buffer failing aborts the connection with its error. */
START_TEST(test_buffered_protocol_get_buffer_error)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new();

	s.ops = &buffered_ops;
	s.tmpl.bbuf_len = 64;
	s.tmpl.get_buffer_err = -ENOBUFS;
	sv = serve_dial(loop, &s, cli);
	ck_assert_int_eq(tide_transport_write(cli->t, "x", 1), 0);
	RUN_UNTIL(loop, both_lost(cli, &s));
	run_for(loop, 0.02);
	check_conn(s.conns[0], "ML", -ENOBUFS);
	ck_assert_uint_ge(s.conns[0]->nget, 1);
	ck_assert_int_eq(cli->lost, 1);
	ck_assert_int_eq(cli->after_lost, 0);
	finish_all(loop, sv);
}
END_TEST

/* -------------------------------------------------------------- servers -- */

static void echo_roundtrip(struct tide_loop *loop, const char *host, int port, struct srv *s, size_t before)
{
	struct conn *cli = conn_new();

	cli->close_after = 4;
	dial(loop, host, port, cli);
	ck_assert_int_eq(tide_transport_write(cli->t, "ping", 4), 0);
	RUN_UNTIL(loop, cli->lost && s->n == before + 1 && s->conns[before]->lost);
	check_conn(cli, "MDL", 0);
	ck_assert_mem_eq(cli->rx, "ping", 4);
	check_conn(s->conns[before], "MDEL", 0);
}

START_TEST(test_server_several_hosts)
{
	struct tide_loop *loop = tt_loop_new();
	static const char *const hosts[] = { "127.0.0.1", "::1" };
	struct srv s = { 0 }, s2 = { 0 };
	struct tide_server *sv;
	int fds[4] = { -1, -1, -1, -1 }, fams = 0, port;
	size_t n, want = can_bind_ipv6() ? 2 : 1;

	if (want == 1)
		printf("[%s] no IPv6 loopback: the server gets 127.0.0.1 only\n", tt_cfg->name);
	s.tmpl.echo = 1;
	sv = serve(loop, hosts, want, NULL, &s);
	port = tide_server_port(sv);
	n = tide_server_sockets(sv, fds, 4);
	ck_assert_uint_eq(n, want);
	ck_assert_uint_eq(tide_server_sockets(sv, NULL, 0), want);
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		check_nb_cloexec(fds[i]);
		ck_assert_int_eq(getsockname(fds[i], (struct sockaddr *)&ss, &len), 0);
		fams |= ss.ss_family == AF_INET ? 1 : ss.ss_family == AF_INET6 ? 2 : 4;
		/* Port 0 picked one port for all. */
		ck_assert_int_eq(addr_port(&ss), port);
	}
	ck_assert_int_eq(fams, want == 2 ? 3 : 1);
	ck_assert_int_eq(tide_server_is_serving(sv), 1);
	echo_roundtrip(loop, "127.0.0.1", port, &s, 0);
	if (want == 2)
		echo_roundtrip(loop, "::1", port, &s, 1);
	server_end(sv);
	/* No hosts: every interface, IPv4 and IPv6, one port. */
	s2.tmpl.echo = 1;
	sv = serve(loop, NULL, 0, NULL, &s2);
	port = tide_server_port(sv);
	n = tide_server_sockets(sv, fds, 4);
	ck_assert_uint_ge(n, 1);
	for (size_t i = 0; i < n && i < 4; i++)
		ck_assert_int_eq(sock_port(fds[i]), port);
	echo_roundtrip(loop, "127.0.0.1", port, &s2, 0);
	finish_all(loop, sv);
}
END_TEST

/* A refusing factory: the connection is closed; the server goes on. */
START_TEST(test_server_factory_refuses)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	char c;
	int fd;

	s.tmpl.echo = 1;
	s.refuse = 1;
	sv = serve(loop, lo4, 1, NULL, &s);
	fd = raw_connect(AF_INET, tide_server_port(sv));
	set_nonblock(fd);
	/* The refused connection is closed: we read EOF (or a reset). */
	RUN_UNTIL(loop, recv(fd, &c, 1, MSG_DONTWAIT) == 0 || (errno != EAGAIN && errno != EWOULDBLOCK));
	close(fd);
	ck_assert_uint_eq(s.n, 0);
	s.refuse = 0;
	echo_roundtrip(loop, "127.0.0.1", tide_server_port(sv), &s, 0);
	finish_all(loop, sv);
}
END_TEST

/*
 * No memory for an accepted connection's transport: it fails before the
 * factory runs, so no protocol object is made (none can leak), the
 * connection is closed, and the server goes on serving.
 */
static int g_fail_calloc;
static void *failing_calloc(size_t n, size_t size)
{
	if (__atomic_exchange_n(&g_fail_calloc, 0, __ATOMIC_SEQ_CST))
		return NULL;
	return calloc(n, size);
}

START_TEST(test_server_transport_enomem)
{
	struct tide_loop *loop;
	struct srv s = { 0 };
	struct tide_server *sv;
	char c;
	int fd, rc = tide_replace_allocator(malloc, realloc, failing_calloc, free);

	if (rc == -EBUSY) {
		printf("test_server_transport_enomem: a loop exists already (CK_FORK=no?): skipped\n");
		return;
	}
	ck_assert_int_eq(rc, 0);
	loop = tt_loop_new();
	s.tmpl.echo = 1;
	sv = serve(loop, lo4, 1, NULL, &s);
	fd = raw_connect(AF_INET, tide_server_port(sv));
	set_nonblock(fd);
	__atomic_store_n(&g_fail_calloc, 1, __ATOMIC_SEQ_CST);
	RUN_UNTIL(loop, recv(fd, &c, 1, MSG_DONTWAIT) == 0 || (errno != EAGAIN && errno != EWOULDBLOCK));
	close(fd);
	ck_assert_int_eq(__atomic_load_n(&g_fail_calloc, __ATOMIC_SEQ_CST), 0);
	ck_assert_uint_eq(s.n, 0);
	echo_roundtrip(loop, "127.0.0.1", tide_server_port(sv), &s, 0);
	ck_assert_uint_eq(s.n, 1);
	finish_all(loop, sv);
}
END_TEST

struct wc_ctx {
	struct srv srv;
	struct conn *cli;
	struct tide_server *sv;
	int wait_ret, server_lost_at_return, refused;
};

static void close_conn_cb(void *arg)
{
	struct conn *c = arg;

	if (!c->lost)
		tide_transport_close(c->t);
}

static int64_t wait_closed_body(void *arg)
{
	struct wc_ctx *x = arg;
	struct tide_loop *loop = tide_future_loop(tide_current_task());
	struct tide_future *f;
	struct conn *late = conn_new();
	void *p = NULL;
	int port;

	ck_assert_int_eq(tide_create_server(loop, lo4, 1, 0, NULL, srv_factory, &x->srv, &f), 0);
	ck_assert_int_eq(tide_await(f), 0);
	p = tide_future_take_ptr(f);
	ck_assert_ptr_nonnull(p);
	tide_future_unref(f);
	x->sv = p;
	port = tide_server_port(x->sv);
	ck_assert_int_eq(tide_create_connection(loop, "127.0.0.1", port, &conn_ops, x->cli, &f), 0);
	ck_assert_int_eq(tide_await(f), 0);
	tide_future_unref(f);
	while (srv_count(&x->srv, 1, 0) < 1)
		ck_assert_int_eq(tide_sleep(0.002), 0);
	tide_server_close(x->sv);
	tide_server_close(x->sv); /* idempotent */
	ck_assert_int_eq(tide_server_is_serving(x->sv), 0);
	ck_assert_uint_eq(tide_server_sockets(x->sv, NULL, 0), 0);
	/* Its connection goes on. */
	ck_assert_int_eq(x->srv.conns[0]->lost, 0);
	/* wait_closed returns once the last connection is gone. */
	ck_assert_int_eq(tide_call_later(loop, 0.05, close_conn_cb, x->cli, NULL), 0);
	x->wait_ret = tide_server_wait_closed(x->sv);
	x->server_lost_at_return = x->srv.conns[0]->lost;
	/* Closed for good: nothing accepts any more. */
	ck_assert_int_eq(tide_create_connection(loop, "127.0.0.1", port, &conn_ops, late, &f), 0);
	x->refused = (int)tide_await(f);
	tide_future_unref(f);
	ck_assert_int_eq(late->made, 0);
	/* Waiting again on a closed server returns at once. */
	ck_assert_int_eq(tide_server_wait_closed(x->sv), 0);
	return 0;
}

START_TEST(test_server_close_wait_closed)
{
	struct tide_loop *loop = tt_loop_new();
	struct wc_ctx x;
	struct tide_future *t;

	memset(&x, 0, sizeof(x));
	x.cli = conn_new();
	ck_assert_int_eq(tide_task_spawn(loop, wait_closed_body, &x, NULL, &t), 0);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(x.refused, -ECONNREFUSED);
	ck_assert_int_eq(x.wait_ret, 0);
	ck_assert_int_eq(x.server_lost_at_return, 1);
	RUN_UNTIL(loop, x.cli->lost);
	check_conn(x.cli, "ML", 0);
	check_conn(x.srv.conns[0], "MEL", 0);
	tide_future_unref(t);
	tide_server_free(x.sv);
	finish_all(loop, NULL);
}
END_TEST

START_TEST(test_server_close_clients)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s[2];
	struct tide_server *sv[2];
	struct conn *cli[2][3];

	memset(s, 0, sizeof(s));
	for (int k = 0; k < 2; k++) {
		sv[k] = serve(loop, lo4, 1, NULL, &s[k]);
		for (int i = 0; i < 3; i++)
			cli[k][i] = dial(loop, "127.0.0.1", tide_server_port(sv[k]), conn_new());
		RUN_UNTIL(loop, srv_count(&s[k], 1, 0) == 3);
		tide_server_close(sv[k]);
		tide_server_close_clients(sv[k], k);
		RUN_UNTIL(loop, srv_count(&s[k], 1, 1) == 3 && cli[k][0]->lost && cli[k][1]->lost && cli[k][2]->lost);
		run_for(loop, 0.02);
		for (int i = 0; i < 3; i++) {
			check_conn(s[k].conns[i], "ML", 0);
			/* The clients see the server's close: an EOF (or a reset after abort). */
			if (k == 1 && cli[k][i]->lost_err == -ECONNRESET)
				check_conn(cli[k][i], "ML", -ECONNRESET);
			else
				check_conn(cli[k][i], "MEL", 0);
		}
		tide_server_free(sv[k]);
	}
	finish_all(loop, NULL);
}
END_TEST

static int64_t serve_forever_body(void *arg)
{
	return tide_server_serve_forever(arg);
}

START_TEST(test_serve_forever_cancelled)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_server_opts opts = { sizeof(opts), 0, 0, 0, 1 };
	struct srv s = { 0 };
	struct tide_server *sv;
	struct tide_future *t;
	int port;

	s.tmpl.echo = 1;
	sv = serve(loop, lo4, 1, &opts, &s);
	port = tide_server_port(sv);
	ck_assert_int_eq(tide_server_is_serving(sv), 0);
	ck_assert_int_eq(tide_task_spawn(loop, serve_forever_body, sv, NULL, &t), 0);
	RUN_UNTIL(loop, tide_server_is_serving(sv));
	echo_roundtrip(loop, "127.0.0.1", port, &s, 0);
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	tt_run_until_complete(loop, t, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	ck_assert_int_eq(tide_server_is_serving(sv), 0);
	/* The listening socket is closed: connecting is refused. */
	connect_refused_eventually(loop, port);
	tide_future_unref(t);
	tide_server_free(sv);
	finish_all(loop, NULL);
}
END_TEST

/* defer_serving: the socket listens, but nothing is accepted until start_serving. */
START_TEST(test_start_serving_later)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_server_opts opts = { sizeof(opts), 0, 0, 0, 1 };
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new();

	s.tmpl.echo = 1;
	sv = serve(loop, lo4, 1, &opts, &s);
	ck_assert_int_eq(tide_server_is_serving(sv), 0);
	cli->close_after = 5;
	/* The kernel completes the handshake from the backlog. */
	dial(loop, "127.0.0.1", tide_server_port(sv), cli);
	ck_assert_int_eq(tide_transport_write(cli->t, "early", 5), 0);
	run_for(loop, 0.1);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_uint_eq(cli->rxlen, 0);
	ck_assert_int_eq(tide_server_start_serving(sv), 0);
	ck_assert_int_eq(tide_server_is_serving(sv), 1);
	RUN_UNTIL(loop, both_lost(cli, &s));
	check_conn(cli, "MDL", 0);
	ck_assert_mem_eq(cli->rx, "early", 5);
	check_conn(s.conns[0], "MDEL", 0);
	/* Starting again is harmless. */
	ck_assert_int_ge(tide_server_start_serving(sv), 0);
	finish_all(loop, sv);
}
END_TEST

START_TEST(test_unix_server)
{
	struct tide_loop *loop = tt_loop_new();
	char dir[] = "/tmp/tide-net-XXXXXX", path[64];
	struct srv s = { 0 };
	struct tide_server *sv;
	struct tide_future *f;
	struct conn *cli = conn_new();
	struct sockaddr_un su;
	socklen_t len;
	int fds[2], r;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	s.tmpl.echo = 1;
	r = tide_create_unix_server(loop, path, NULL, srv_factory, &s, &f);
	ck_assert_msg(r == 0, "tide_create_unix_server: %d (%s)", r, tide_strerror(r));
	tt_run_until_complete(loop, f, 0);
	sv = fut_take(f);
	tide_future_unref(f);
	ck_assert_ptr_nonnull(sv);
	ck_assert_uint_eq(tide_server_sockets(sv, fds, 2), 1);
	check_nb_cloexec(fds[0]);
	cli->close_after = 5;
	r = tide_create_unix_connection(loop, path, &conn_ops, cli, &f);
	ck_assert_msg(r == 0, "tide_create_unix_connection: %d (%s)", r, tide_strerror(r));
	tt_run_until_complete(loop, f, 0);
	ck_assert_ptr_eq(fut_ptr(f), cli->t);
	tide_future_unref(f);
	ck_assert_int_eq(tide_transport_can_write_eof(cli->t), 1);
	len = sizeof(su);
	ck_assert_int_eq(tide_transport_get_extra_info(cli->t, "peername", &su, &len), 0);
	ck_assert_int_eq(su.sun_family, AF_UNIX);
	ck_assert_str_eq(su.sun_path, path);
	ck_assert_int_eq(tide_transport_write(cli->t, "unix!", 5), 0);
	RUN_UNTIL(loop, both_lost(cli, &s));
	check_conn(cli, "MDL", 0);
	ck_assert_mem_eq(cli->rx, "unix!", 5);
	check_conn(s.conns[0], "MDEL", 0);
	server_end(sv);
	finish(loop);
	/* A missing path is refused (ENOENT), not hung. */
	{
		struct tide_loop *l2 = tt_loop_new();
		struct conn *c2 = conn_new();

		unlink(path);
		ck_assert_int_eq(tide_create_unix_connection(l2, path, &conn_ops, c2, &f), 0);
		RUN_UNTIL(l2, tide_future_done(f));
		r = tide_future_error(f);
		ck_assert_msg(r == -ENOENT || r == -ECONNREFUSED, "connect to a missing path: %d (%s)", r,
			      tide_strerror(r));
		tide_future_unref(f);
		ck_assert_int_eq(c2->made, 0);
		finish(l2);
	}
	rmdir(dir);
	conns_free();
}
END_TEST

/* ------------------------------------------------------------ datagrams -- */

static void on_dgram(struct tide_transport *t, const void *data, size_t n, const struct sockaddr *addr,
		     socklen_t addrlen, void *p)
{
	struct conn *c = p;

	ck_assert_ptr_eq(t, c->t);
	note(c, 'D');
	ck_assert_ptr_nonnull(addr);
	ck_assert_uint_le(addrlen, sizeof(struct sockaddr_storage));
	if (c->ndgram < 16) {
		struct dgram *d = &c->dg[c->ndgram];

		ck_assert_uint_le(n, sizeof(d->data));
		memcpy(d->data, data, n);
		d->n = n;
		memcpy(&d->from, addr, addrlen);
		d->fromlen = addrlen;
	}
	c->ndgram++;
	if (c->echo_dgram)
		ck_assert_int_eq(tide_transport_sendto(t, data, n, addr, addrlen), 0);
}

static void on_dgram_error(struct tide_transport *t, int err, void *p)
{
	struct conn *c = p;

	ck_assert_ptr_eq(t, c->t);
	if (c->lost)
		c->after_lost++;
	c->nerr++;
	c->last_err = err;
}

static const struct tide_protocol_ops dgram_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = on_made,
	.connection_lost = on_lost,
	.datagram_received = on_dgram,
	.error_received = on_dgram_error,
};

static struct conn *endpoint(struct tide_loop *loop, const struct tide_datagram_opts *o, struct conn *c)
{
	struct tide_future *f;
	int r = tide_create_datagram_endpoint(loop, o, &dgram_ops, c, &f);

	ck_assert_msg(r == 0, "[%s] tide_create_datagram_endpoint: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	tt_run_until_complete(loop, f, 0);
	ck_assert_ptr_eq(fut_ptr(f), c->t);
	tide_future_unref(f);
	ck_assert_int_eq(c->made, 1);
	return c;
}

static int endpoint_port(struct conn *c, const char *which)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(tide_transport_get_extra_info(c->t, which, &ss, &len), 0);
	return addr_port(&ss);
}

static void close_endpoints(struct tide_loop *loop, struct conn **cs, int n)
{
	for (int i = 0; i < n; i++)
		tide_transport_close(cs[i]->t);
	for (int i = 0; i < n; i++)
		RUN_UNTIL(loop, cs[i]->lost);
	run_for(loop, 0.02);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(cs[i]->lost, 1);
		ck_assert_int_eq(cs[i]->lost_err, 0);
		ck_assert_int_eq(cs[i]->after_lost, 0);
		ck_assert_int_eq(cs[i]->log[cs[i]->nlog - 1], 'L');
	}
}

START_TEST(test_datagram_echo)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts oa = { .size = sizeof(oa), .local_host = "127.0.0.1" };
	struct tide_datagram_opts ob = { .size = sizeof(ob), .local_host = "127.0.0.1" };
	struct tide_datagram_opts oc = { .size = sizeof(oc), .family = AF_INET };
	struct conn *a = conn_new(), *b = conn_new(), *c = conn_new();
	struct conn *all[3] = { a, b, c };
	static const char *const msgs[] = { "one", "two", "three" };
	struct tide_transport *bt;
	struct sockaddr_storage dst;
	socklen_t dlen;
	int pa, pb;

	a->echo_dgram = 1;
	endpoint(loop, &oa, a);
	endpoint(loop, &ob, b);
	endpoint(loop, &oc, c);
	pa = endpoint_port(a, "sockname");
	pb = endpoint_port(b, "sockname");
	ck_assert_int_gt(pa, 0);
	dlen = loopback(&dst, AF_INET, pa);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tide_transport_sendto(b->t, msgs[i], strlen(msgs[i]), (struct sockaddr *)&dst, dlen), 0);
	/* From an endpoint that never bound: the kernel picks its port. */
	ck_assert_int_eq(tide_transport_sendto(c->t, "auto", 4, (struct sockaddr *)&dst, dlen), 0);
	RUN_UNTIL(loop, b->ndgram == 3 && c->ndgram == 1 && a->ndgram == 4);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(b->dg[i].n, strlen(msgs[i]));
		ck_assert_mem_eq(b->dg[i].data, msgs[i], strlen(msgs[i]));
		ck_assert_uint_eq(b->dg[i].fromlen, sizeof(struct sockaddr_in));
		ck_assert(is_loopback4(&b->dg[i].from));
		ck_assert_int_eq(addr_port(&b->dg[i].from), pa);
	}
	ck_assert_mem_eq(c->dg[0].data, "auto", 4);
	ck_assert_int_eq(addr_port(&c->dg[0].from), pa);
	/* The echo side saw who sent what. */
	for (int i = 0; i < 4; i++) {
		int from = addr_port(&a->dg[i].from);

		ck_assert(from == pb || from == endpoint_port(c, "sockname"));
	}
	ck_assert_int_eq(a->nerr + b->nerr + c->nerr, 0);
	/* A reference keeps b's transport to look at after connection_lost. */
	bt = tide_transport_ref(b->t);
	close_endpoints(loop, all, 3);
	ck_assert_int_eq(tide_transport_is_closing(bt), 1);
	ck_assert_int_eq(tide_transport_sendto(bt, "x", 1, (struct sockaddr *)&dst, dlen), TIDE_ECLOSED);
	tide_transport_unref(bt);
	finish_all(loop, NULL);
}
END_TEST

START_TEST(test_datagram_connected)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts oa = { .size = sizeof(oa), .local_host = "127.0.0.1" };
	struct tide_datagram_opts ob = { .size = sizeof(ob), .remote_host = "127.0.0.1" };
	struct conn *a = conn_new(), *b = conn_new();
	struct conn *all[2] = { a, b };
	int pa;

	a->echo_dgram = 1;
	endpoint(loop, &oa, a);
	pa = endpoint_port(a, "sockname");
	ob.remote_port = pa;
	endpoint(loop, &ob, b);
	ck_assert_int_eq(endpoint_port(b, "peername"), pa);
	ck_assert_int_eq(tide_transport_sendto(b->t, "hi", 2, NULL, 0), 0);
	ck_assert_int_eq(tide_transport_sendto(b->t, "there", 5, NULL, 0), 0);
	RUN_UNTIL(loop, b->ndgram == 2);
	ck_assert_mem_eq(b->dg[0].data, "hi", 2);
	ck_assert_mem_eq(b->dg[1].data, "there", 5);
	ck_assert_int_eq(addr_port(&b->dg[0].from), pa);
	ck_assert_int_eq(addr_port(&a->dg[0].from), endpoint_port(b, "sockname"));
	close_endpoints(loop, all, 2);
	finish_all(loop, NULL);
}
END_TEST

static void resend_cb(void *arg)
{
	struct conn *c = arg;

	if (c->nerr == 0 && !c->lost) {
		ck_assert_int_eq(tide_transport_sendto(c->t, "x", 1, NULL, 0), 0);
		ck_assert_int_eq(tide_call_later(c->loop, 0.02, resend_cb, c, &c->toggle_h), 0);
	}
}

/* A connected UDP socket learns of ICMP port unreachable: error_received(-ECONNREFUSED). */
START_TEST(test_datagram_error_received)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts ob = { .size = sizeof(ob), .remote_host = "127.0.0.1" };
	struct conn *b = conn_new();

	ob.remote_port = closed_port(SOCK_DGRAM);
	endpoint(loop, &ob, b);
	resend_cb(b);
	RUN_UNTIL(loop, b->nerr >= 1);
	tide_handle_cancel(&b->toggle_h);
	ck_assert_msg(b->last_err == -ECONNREFUSED, "[%s] error_received(%d: %s)", tt_cfg->name, b->last_err,
		      tide_strerror(b->last_err));
	/* An error is not the end of a datagram transport. */
	ck_assert_int_eq(b->lost, 0);
	ck_assert_int_eq(tide_transport_is_closing(b->t), 0);
	close_endpoints(loop, &b, 1);
	ck_assert_str_eq(b->log, "ML");
	finish_all(loop, NULL);
}
END_TEST

/* --------------------------------------------------------- load cases -- */

static void send_pieces_hook(struct conn *c)
{
	size_t piece = (c->txlen + 3) / 4;

	for (size_t off = 0; off < c->txlen; off += piece) {
		size_t n = c->txlen - off < piece ? c->txlen - off : piece;

		ck_assert_int_eq(tide_transport_write(c->t, c->tx + off, n), 0);
	}
}

static int all_lost(struct conn *const *cs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!cs[i]->lost)
			return 0;
	return 1;
}

/* n clients on loop each send a per-client pattern in pieces and check the echo. */
static void echo_clients(struct tide_loop *loop, int port, size_t n, size_t base_len)
{
	struct tide_future **fs = calloc(n, sizeof(*fs));
	struct conn **cs = calloc(n, sizeof(*cs));

	ck_assert_ptr_nonnull(fs);
	ck_assert_ptr_nonnull(cs);
	for (size_t i = 0; i < n; i++) {
		struct conn *c = conn_new();
		int r;

		c->id = (int)i;
		c->txlen = base_len + (i % 7) * 512;
		c->tx = pat_buf((uint32_t)i + 100, c->txlen);
		c->close_after = c->txlen;
		c->made_hook = send_pieces_hook;
		cs[i] = c;
		r = tide_create_connection(loop, "127.0.0.1", port, &conn_ops, c, &fs[i]);
		ck_assert_msg(r == 0, "[%s] client %zu: tide_create_connection: %d (%s)", tt_cfg->name, i, r,
			      tide_strerror(r));
	}
	RUN_UNTIL_FOR(loop, all_lost(cs, n), 120.0);
	for (size_t i = 0; i < n; i++) {
		struct conn *c = cs[i];

		ck_assert_msg(tide_future_done(fs[i]), "client %zu: connect not done", i);
		ck_assert_msg(tide_future_error(fs[i]) == 0, "[%s] client %zu: connect failed: %d (%s)",
			      tt_cfg->name, i, tide_future_error(fs[i]), tide_strerror(tide_future_error(fs[i])));
		tide_future_unref(fs[i]);
		check_conn(c, "MDL", 0);
		ck_assert_msg(c->rxlen == c->txlen && memcmp(c->rx, c->tx, c->txlen) == 0,
			      "[%s] client %zu: echo differs (%zu of %zu bytes)", tt_cfg->name, i, c->rxlen,
			      c->txlen);
	}
	free(fs);
	free(cs);
}

static int wait_all_lost(const struct srv *s, size_t n)
{
	return s->n == n && srv_count(s, 1, 1) == n;
}

START_TEST(test_thousand_clients)
{
	enum { N = 1000 };
	struct tide_server_opts opts = { sizeof(opts), 1024, 0, 0, 0 };
	struct tide_loop *loop;
	struct srv s = { 0 };
	struct tide_server *sv;
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2100) {
		printf("[%s] SKIP test_thousand_clients: RLIMIT_NOFILE hard limit %llu < 2100\n", tt_cfg->name,
		       (unsigned long long)rl.rlim_max);
		return;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2100) {
		rl.rlim_cur = rl.rlim_max;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	loop = tt_loop_new();
	s.tmpl.echo = 1;
	sv = serve(loop, lo4, 1, &opts, &s);
	echo_clients(loop, tide_server_port(sv), N, 2048);
	RUN_UNTIL(loop, wait_all_lost(&s, N));
	for (size_t i = 0; i < N; i++)
		check_conn(s.conns[i], "MDEL", 0);
	finish_all(loop, sv);
}
END_TEST

#define BIG_LEN (64u << 20)
#define BIG_CHUNK (16u << 10)

/* The sender: writes while the buffer is at most the high-water mark, then waits for resume_writing. */
static void big_fill(struct conn *c)
{
	while (!c->wpaused && c->txoff < c->txlen &&
	       tide_transport_get_write_buffer_size(c->t) <= c->high) {
		size_t n = c->txlen - c->txoff < BIG_CHUNK ? c->txlen - c->txoff : BIG_CHUNK;

		ck_assert_int_eq(tide_transport_write(c->t, c->tx + c->txoff, n), 0);
		c->txoff += n;
		if (tide_transport_get_write_buffer_size(c->t) > c->max_buffered)
			c->max_buffered = tide_transport_get_write_buffer_size(c->t);
	}
	if (c->txoff == c->txlen && !c->close_sent) {
		c->close_sent = 1;
		tide_transport_close(c->t);
	}
}

static void big_made(struct conn *c)
{
	small_sndbuf(c->t);
	tide_transport_get_write_buffer_limits(c->t, &c->high, &c->low);
	ck_assert_uint_gt(c->high, 0);
	big_fill(c);
}

static void big_reader_made(struct conn *c)
{
	small_rcvbuf(c->t);
}

/* Pauses and resumes reading every millisecond: paused half of the time. */
static void toggle_cb(void *arg)
{
	struct conn *c = arg;

	if (c->lost || tide_transport_is_closing(c->t))
		return;
	if (c->rpaused) {
		c->rpaused = 0;
		ck_assert_int_eq(tide_transport_resume_reading(c->t), 0);
	} else {
		ck_assert_int_eq(tide_transport_pause_reading(c->t), 0);
		c->rpaused = 1;
		c->ntoggle++;
	}
	ck_assert_int_eq(tide_call_later(c->loop, 0.001, toggle_cb, c, &c->toggle_h), 0);
}

START_TEST(test_64mib_small_buffers)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new(), *sc;
	unsigned char *data = malloc(BIG_LEN);
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	uint64_t t0 = tt_mono_ns();

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < BIG_LEN; i += 8) {
		rng ^= rng >> 12;
		rng ^= rng << 25;
		rng ^= rng >> 27;
		uint64_t v = rng * 2685821657736338717ull;

		memcpy(data + i, &v, 8);
	}
	/* The server's connection sends data (tmpl is copied: the bytes are shared, not owned). */
	s.tmpl.tx = data;
	s.tmpl.txlen = BIG_LEN;
	s.tmpl.made_hook = big_made;
	s.tmpl.resume_hook = big_fill;
	sv = serve(loop, lo4, 1, NULL, &s);
	cli->verify = data;
	cli->vlen = BIG_LEN;
	cli->made_hook = big_reader_made;
	cli->pause_every = 4;
	dial(loop, "127.0.0.1", tide_server_port(sv), cli);
	ck_assert_int_eq(tide_call_later(loop, 0.001, toggle_cb, cli, &cli->toggle_h), 0);
	RUN_UNTIL(loop, s.n == 1);
	sc = s.conns[0];
	RUN_UNTIL_FOR(loop, cli->lost && sc->lost, 240.0);
	tide_handle_cancel(&cli->toggle_h);
	run_for(loop, 0.02);
	printf("[%s] 64 MiB: %.2f s, %d read pauses, %d write pauses, %d resumes, max buffered %zu, "
	       "%zu data_received\n", tt_cfg->name, (double)(tt_mono_ns() - t0) / 1e9, cli->ntoggle,
	       sc->npause, sc->nresume, sc->max_buffered, cli->datas);
	ck_assert_uint_eq(sc->txoff, BIG_LEN);
	ck_assert_uint_eq(cli->rxlen, BIG_LEN);
	ck_assert_int_eq(cli->data_while_paused, 0);
	check_conn(cli, "MDEL", 0);
	check_conn(sc, "ML", 0);
	ck_assert_int_ge(sc->npause, 1);
	ck_assert_int_ge(cli->ntoggle, 1);
	/* Strict alternation: resumes trail pauses by at most one. */
	ck_assert_int_ge(sc->nresume, sc->npause - 1);
	ck_assert_int_le(sc->nresume, sc->npause);
	sc->tx = NULL; /* the test's, freed here */
	free(data);
	finish_all(loop, sv);
}
END_TEST

#define EMFILE_CLIENTS 20

/* The peer process: connects, says hello on each connection, expects the echo. */
static void emfile_child(int gofd, int port)
{
	int fds[EMFILE_CLIENTS];
	struct timeval tv = { 30, 0 };
	char g;

	if (read(gofd, &g, 1) != 1)
		_exit(2);
	for (int i = 0; i < EMFILE_CLIENTS; i++) {
		struct sockaddr_storage ss;
		socklen_t len = loopback(&ss, AF_INET, port);

		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&ss, len) < 0)
			_exit(3);
		setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		char m[4] = { 'c', (char)('0' + i / 10), (char)('0' + i % 10), '\n' };

		if (write(fds[i], m, 4) != 4)
			_exit(4);
	}
	for (int i = 0; i < EMFILE_CLIENTS; i++) {
		char m[4], e[4] = { 'c', (char)('0' + i / 10), (char)('0' + i % 10), '\n' };
		size_t got = 0;

		while (got < 4) {
			ssize_t r = read(fds[i], m + got, 4 - got);

			if (r <= 0)
				_exit(5);
			got += (size_t)r;
		}
		if (memcmp(m, e, 4) != 0)
			_exit(6);
	}
	_exit(0);
}

static int child_done(pid_t pid, int *status)
{
	return waitpid(pid, status, WNOHANG) == pid;
}

/*
 * Out of fds (EMFILE): the server must not spin on its readable listening
 * socket, must go on serving its connections, and must accept again once
 * fds are free (asyncio retries after 1 s).
 */
START_TEST(test_emfile)
{
	struct tide_server_opts opts = { sizeof(opts), 128, 0, 0, 0 };
	struct tide_loop *loop;
	struct tide_loop_stats s0, s1;
	struct srv s = { 0 };
	struct tide_server *sv;
	struct rlimit rl;
	int old[3], go[2], fill[64], nfill = 0, port, status = -1;
	uint64_t iters;
	pid_t pid;

	/*
	 * The limit comes first: io_uring's accept takes RLIMIT_NOFILE when
	 * it is prepared, so an accept armed under the old limit would not
	 * see the new one.
	 */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = 64;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	loop = tt_loop_new();
	s.tmpl.echo = 1;
	sv = serve(loop, lo4, 1, &opts, &s);
	port = tide_server_port(sv);
	for (int i = 0; i < 3; i++) {
		old[i] = raw_connect(AF_INET, port);
		set_nonblock(old[i]);
	}
	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 3);
	tt_pipe(go, 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		emfile_child(go[0], port);
	}
	close(go[0]);
	while (nfill < 64) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (fd < 0) {
			ck_assert_int_eq(errno, EMFILE);
			break;
		}
		fill[nfill++] = fd;
	}
	ck_assert_msg(nfill >= EMFILE_CLIENTS, "only %d fds free under the limit of 64", nfill);
	tt_write_all(go[1], "g", 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(send(old[i], "alive", 5, 0), 5);
	tt_stats(loop, &s0);
	run_for(loop, 1.5);
	tt_stats(loop, &s1);
	iters = s1.iterations - s0.iterations;
	printf("[%s] EMFILE: %llu iterations in 1.5 s\n", tt_cfg->name, (unsigned long long)iters);
	ck_assert_msg(iters < 10000, "[%s] the loop spun: %llu iterations in 1.5 s", tt_cfg->name,
		      (unsigned long long)iters);
	ck_assert_msg(s.n == 3, "[%s] %zu connections accepted without a free fd", tt_cfg->name, s.n - 3);
	/* The existing connections are served meanwhile (still without a free
	 * fd): waited for, as a loaded machine may not have echoed in 1.5 s. */
	RUN_UNTIL(loop, fd_readable(old[0]) && fd_readable(old[1]) && fd_readable(old[2]));
	ck_assert_msg(s.n == 3, "[%s] %zu connections accepted without a free fd", tt_cfg->name, s.n - 3);
	for (int i = 0; i < 3; i++) {
		char buf[8];

		ck_assert_int_eq(recv(old[i], buf, sizeof(buf), 0), 5);
		ck_assert_mem_eq(buf, "alive", 5);
	}
	while (nfill > 0)
		close(fill[--nfill]);
	RUN_UNTIL(loop, s.n == 3 + EMFILE_CLIENTS);
	RUN_UNTIL(loop, child_done(pid, &status));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client process: status %#x", status);
	for (int i = 0; i < 3; i++)
		close(old[i]);
	close(go[1]);
	RUN_UNTIL(loop, wait_all_lost(&s, 3 + EMFILE_CLIENTS));
	for (size_t i = 0; i < s.n; i++)
		check_conn(s.conns[i], "MDEL", 0);
	finish_all(loop, sv);
}
END_TEST

/* A provided-buffer ring of 4 buffers under 50 busy clients: ENOBUFS is survived, byte-exact. */
START_TEST(test_enobufs)
{
	enum { N = 50 };
	struct tide_server_opts opts = { sizeof(opts), 128, 0, 0, 0 };
	struct tide_loop_opts lo;
	struct tide_loop *loop;
	struct tide_loop_stats st;
	struct srv s = { 0 };
	struct tide_server *sv;

	tt_opts_init(&lo);
	lo.recv_buf_count = 4;
	loop = tt_loop_new_opts(&lo);
	s.tmpl.echo = 1;
	sv = serve(loop, lo4, 1, &opts, &s);
	echo_clients(loop, tide_server_port(sv), N, 60000);
	RUN_UNTIL(loop, wait_all_lost(&s, N));
	for (size_t i = 0; i < N; i++)
		check_conn(s.conns[i], "MDEL", 0);
	tt_stats(loop, &st);
	printf("[%s] ENOBUFS: %llu multishot recvs armed (uring path %llu) for %d transports\n", tt_cfg->name,
	       (unsigned long long)tt_submitted(&st, TIDE_OP_RECV_MULTISHOT),
	       (unsigned long long)st.ops_submitted[TIDE_OP_RECV_MULTISHOT][TIDE_PATH_URING], 2 * N);
	if (tt_is_uring() && tide_loop_op_native(loop, TIDE_OP_RECV_MULTISHOT))
		ck_assert_msg(st.ops_submitted[TIDE_OP_RECV_MULTISHOT][TIDE_PATH_URING] > 2 * N,
			      "[%s] %llu multishot recvs for %d transports: never re-armed after ENOBUFS",
			      tt_cfg->name,
			      (unsigned long long)st.ops_submitted[TIDE_OP_RECV_MULTISHOT][TIDE_PATH_URING], 2 * N);
	finish_all(loop, sv);
}
END_TEST

/*
 * Sends from the receive ring: data_received writes its bytes in two
 * halves (the first half may be sent straight from the io_uring receive
 * buffer, the second is copied behind it) and writes them all again to a
 * second connection (a proxy's or a chat's write of the same bytes: a
 * copy, since the buffer has one owner). Both peers get exactly what was
 * sent, and on io_uring with multishot receives the ring path is taken.
 */
static struct tide_transport *g_mirror;
static void loop_recv_exact(struct tide_loop *loop, int fd, void *buf, size_t n);

static void split_data(struct tide_transport *t, const void *data, size_t n, void *p)
{
	struct conn *c = p;

	c->datas++;
	ck_assert_int_eq(tide_transport_write(t, data, n / 2), 0);
	ck_assert_int_eq(tide_transport_write(t, (const char *)data + n / 2, n - n / 2), 0);
	if (g_mirror && g_mirror != t)
		ck_assert_int_eq(tide_transport_write(g_mirror, data, n), 0);
}

/* An echo of a copy on the stack, wiped before returning: a write that is
 * not of the ring buffer's bytes must be copied, wherever it lives (the
 * stack is above the ring's mapping). */
static void stack_copy_data(struct tide_transport *t, const void *data, size_t n, void *p)
{
	struct conn *c = p;
	char copy[4096];

	c->datas++;
	for (size_t off = 0; off < n; off += sizeof(copy)) {
		size_t k = n - off < sizeof(copy) ? n - off : sizeof(copy);

		memcpy(copy, (const char *)data + off, k);
		ck_assert_int_eq(tide_transport_write(t, copy, k), 0);
		memset(copy, 0xee, sizeof(copy));
	}
}

static const struct tide_protocol_ops stack_copy_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = on_made,
	.data_received = stack_copy_data,
	.eof_received = on_eof,
	.connection_lost = on_lost,
};

static const struct tide_protocol_ops split_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = on_made,
	.data_received = split_data,
	.eof_received = on_eof,
	.connection_lost = on_lost,
};

#define RING_SEND_LEN (512u << 10)
#define RING_SEND_CHUNK 3000u
START_TEST(test_sends_from_ring)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats st;
	struct srv s = { 0 };
	struct tide_server *sv;
	unsigned char *data = pat_buf(5, RING_SEND_LEN), *got = malloc(RING_SEND_CHUNK);
	int fa, fb;

	ck_assert_ptr_nonnull(got);
	s.ops = &split_ops;
	sv = serve(loop, lo4, 1, NULL, &s);
	fa = raw_connect(AF_INET, tide_server_port(sv));
	RUN_UNTIL(loop, s.n == 1);
	fb = raw_connect(AF_INET, tide_server_port(sv));
	RUN_UNTIL(loop, s.n == 2);
	g_mirror = s.conns[1]->t;
	set_nonblock(fa);
	set_nonblock(fb);
	for (size_t off = 0; off < RING_SEND_LEN; off += RING_SEND_CHUNK) {
		size_t n = RING_SEND_LEN - off < RING_SEND_CHUNK ? RING_SEND_LEN - off : RING_SEND_CHUNK;

		ck_assert_int_eq(send(fa, data + off, n, 0), (ssize_t)n);
		loop_recv_exact(loop, fa, got, n);
		ck_assert_msg(memcmp(got, data + off, n) == 0, "[%s] echo differs at %zu", tt_cfg->name, off);
		loop_recv_exact(loop, fb, got, n);
		ck_assert_msg(memcmp(got, data + off, n) == 0, "[%s] mirror differs at %zu", tt_cfg->name, off);
	}
	g_mirror = NULL;
	/* Bytes copied elsewhere first are never taken for the ring's. */
	s.ops = &stack_copy_ops;
	close(fb);
	fb = raw_connect(AF_INET, tide_server_port(sv));
	RUN_UNTIL(loop, s.n == 3);
	set_nonblock(fb);
	for (size_t off = 0; off < RING_SEND_LEN; off += RING_SEND_CHUNK) {
		size_t n = RING_SEND_LEN - off < RING_SEND_CHUNK ? RING_SEND_LEN - off : RING_SEND_CHUNK;

		ck_assert_int_eq(send(fb, data + off, n, 0), (ssize_t)n);
		loop_recv_exact(loop, fb, got, n);
		ck_assert_msg(memcmp(got, data + off, n) == 0, "[%s] stack copy echo differs at %zu",
			      tt_cfg->name, off);
	}
	tt_stats(loop, &st);
	printf("[%s] sends from the receive ring: %llu (%zu data_received)\n", tt_cfg->name,
	       (unsigned long long)st.sends_from_ring, s.conns[0]->datas);
	if (tt_is_uring() && tide_loop_op_native(loop, TIDE_OP_RECV_MULTISHOT) &&
	    tide_loop_op_native(loop, TIDE_OP_SEND))
		ck_assert_uint_gt(st.sends_from_ring, 0);
	else
		ck_assert_uint_eq(st.sends_from_ring, 0);
	close(fa);
	close(fb);
	RUN_UNTIL(loop, s.conns[0]->lost && s.conns[1]->lost && s.conns[2]->lost);
	free(got);
	free(data);
	finish_all(loop, sv);
}
END_TEST

/* ------------------------------------------------- review regressions -- */

/*
 * Each case below is a bug a review found in the networking core (its
 * reproducer turned into a test): callbacks that free or close what the
 * library is still walking, connects that claimed success too early, an
 * epoll registration that outlived its fd, and closes dropped by
 * tide_loop_close. Run them under ASan: most failed as use-after-free.
 */

/* fd is closed: fcntl says EBADF. */
static void check_fd_closed(int fd, const char *what)
{
	errno = 0;
	ck_assert_msg(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "[%s] %s (fd %d) is still open", tt_cfg->name,
		      what, fd);
}

/* The "socket" extra info of a transport. */
static int transport_fd(struct tide_transport *t)
{
	int fd = -1;
	socklen_t len = sizeof(fd);

	ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &len), 0);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* Reads exactly n bytes from the plain socket fd, running the loop meanwhile. */
static void loop_recv_exact(struct tide_loop *loop, int fd, void *buf, size_t n)
{
	uint64_t end = tt_mono_ns() + (uint64_t)(30 * slow_factor() * 1e9);
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, (char *)buf + got, n - got, MSG_DONTWAIT);

		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		ck_assert_msg(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "[%s] recv: %zd (%s)",
			      tt_cfg->name, r, r ? strerror(errno) : "EOF");
		ck_assert_msg(tt_mono_ns() < end, "[%s] timed out reading %zu bytes", tt_cfg->name, n);
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	}
}

/* The peer of a plain socket fd closed it: EOF within a few seconds (the loop is gone). */
static void check_peer_eof(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	ck_assert_msg(poll(&pfd, 1, (int)(5000 * slow_factor())) == 1, "[%s] no EOF from the closed peer",
		      tt_cfg->name);
	ck_assert_int_eq(recv(fd, &c, 1, MSG_DONTWAIT), 0);
}

static struct tide_server *g_free_srv; /* freed by the next connection's protocol */

static void free_server_now(void)
{
	struct tide_server *sv = g_free_srv;

	g_free_srv = NULL;
	if (sv)
		tide_server_free(sv);
}

static void free_server_hook(struct conn *c)
{
	(void)c;
	free_server_now();
}

/* srv_factory that frees the server before it returns the protocol. */
static int freeing_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	int r = srv_factory(ops, proto, arg);

	free_server_now();
	return r;
}

/*
 * tide_server_free from inside connection_made (or the protocol factory):
 * the accept path still holds the server (the POLLIN path had already let
 * go of its op, so the free used to be immediate and the accept path wrote
 * into freed memory). The connection goes on, ends with connection_lost,
 * and the listener closes.
 */
static void server_free_inside(int in_factory)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_future *f;
	struct tide_server *sv;
	char buf[4];
	int cfd[2], port, r;

	s.tmpl.echo = 1;
	if (!in_factory)
		s.tmpl.made_hook = free_server_hook;
	r = tide_create_server(loop, lo4, 1, 0, NULL, in_factory ? freeing_factory : srv_factory, &s, &f);
	ck_assert_msg(r == 0, "[%s] tide_create_server: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	tt_run_until_complete(loop, f, 0);
	sv = fut_take(f);
	tide_future_unref(f);
	port = tide_server_port(sv);
	g_free_srv = sv;
	/* Two queued connections: the accept path may take the second in the
	 * same batch, after the server was freed. */
	cfd[0] = raw_connect(AF_INET, port);
	cfd[1] = raw_connect(AF_INET, port);
	RUN_UNTIL(loop, g_free_srv == NULL && srv_count(&s, 1, 0) >= 1);
	/* The connection whose protocol freed the server still works. */
	tt_write_all(cfd[0], "ping", 4);
	loop_recv_exact(loop, cfd[0], buf, 4);
	ck_assert_mem_eq(buf, "ping", 4);
	connect_refused_eventually(loop, port);
	close(cfd[0]);
	close(cfd[1]);
	RUN_UNTIL(loop, s.conns[0]->lost && srv_count(&s, 1, 1) == srv_count(&s, 1, 0));
	check_conn(s.conns[0], "MDEL", 0);
	/* A second connection accepted after the free is a whole one too. */
	for (size_t i = 1; i < s.n; i++) {
		ck_assert_int_eq(s.conns[i]->made, 1);
		ck_assert_int_eq(s.conns[i]->lost, 1);
		ck_assert_int_eq(s.conns[i]->after_lost, 0);
	}
	finish(loop);
	conns_free();
}

START_TEST(test_server_free_in_connection_made)
{
	server_free_inside(0);
}
END_TEST

START_TEST(test_server_free_in_factory)
{
	server_free_inside(1);
}
END_TEST

static struct sockaddr_un g_dq_dst;
static int g_dq_depth, g_dq_maxdepth;

static void dq_err_abort(struct tide_transport *t, int err, void *p)
{
	on_dgram_error(t, err, p);
	tide_transport_abort(t);
}

/* Sends again from error_received for the first 3 errors, then closes. */
static void dq_err_resend(struct tide_transport *t, int err, void *p)
{
	struct conn *c = p;

	if (++g_dq_depth > g_dq_maxdepth)
		g_dq_maxdepth = g_dq_depth;
	on_dgram_error(t, err, p);
	if (c->nerr <= 3)
		ck_assert_int_eq(tide_transport_sendto(t, "again", 5, (struct sockaddr *)&g_dq_dst, sizeof(g_dq_dst)),
				 0);
	else
		tide_transport_close(t);
	g_dq_depth--;
}

static const struct tide_protocol_ops dgram_abort_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = on_made,
	.connection_lost = on_lost,
	.datagram_received = on_dgram,
	.error_received = dq_err_abort,
};

static const struct tide_protocol_ops dgram_resend_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = on_made,
	.connection_lost = on_lost,
	.datagram_received = on_dgram,
	.error_received = dq_err_resend,
};

/*
 * Datagrams queued for a Unix receiver whose queue is full; then the
 * receiver goes, so each queued datagram fails (ECONNREFUSED) while the
 * queue is flushed, and error_received runs in the middle of that flush.
 */
static void dgram_error_in_flush(const struct tide_protocol_ops *ops)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = { .size = sizeof(o), .family = AF_UNIX };
	struct conn *c = conn_new();
	struct tide_future *f;
	char dir[] = "/tmp/tide-net-XXXXXX", msg[64] = "x";
	int rx, i, r;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	memset(&g_dq_dst, 0, sizeof(g_dq_dst));
	g_dq_dst.sun_family = AF_UNIX;
	snprintf(g_dq_dst.sun_path, sizeof(g_dq_dst.sun_path), "%s/rx", dir);
	g_dq_depth = g_dq_maxdepth = 0;
	rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(rx, 0);
	ck_assert_int_eq(bind(rx, (struct sockaddr *)&g_dq_dst, sizeof(g_dq_dst)), 0);
	r = tide_create_datagram_endpoint(loop, &o, ops, c, &f);
	ck_assert_msg(r == 0, "[%s] tide_create_datagram_endpoint: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	tt_run_until_complete(loop, f, 0);
	ck_assert_ptr_eq(fut_ptr(f), c->t);
	tide_future_unref(f);
	/* Nobody reads rx: its queue fills, then sendto has to queue. */
	for (i = 0; i < 100000 && tide_transport_get_write_buffer_size(c->t) == 0; i++)
		ck_assert_int_eq(tide_transport_sendto(c->t, msg, sizeof(msg), (struct sockaddr *)&g_dq_dst,
						       sizeof(g_dq_dst)),
				 0);
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(tide_transport_sendto(c->t, msg, sizeof(msg), (struct sockaddr *)&g_dq_dst,
						       sizeof(g_dq_dst)),
				 0);
	ck_assert_uint_ge(tide_transport_get_write_buffer_size(c->t), 9 * sizeof(msg));
	ck_assert_int_eq(c->nerr, 0);
	close(rx);
	RUN_UNTIL(loop, c->lost);
	run_for(loop, 0.05);
	ck_assert_int_ge(c->nerr, ops == &dgram_resend_ops ? 4 : 1);
	ck_assert_msg(c->last_err == -ECONNREFUSED, "[%s] error_received(%d: %s)", tt_cfg->name, c->last_err,
		      tide_strerror(c->last_err));
	check_conn(c, "ML", 0);
	unlink(g_dq_dst.sun_path);
	rmdir(dir);
	finish_all(loop, NULL);
}

START_TEST(test_datagram_abort_in_error_received)
{
	dgram_error_in_flush(&dgram_abort_ops);
}
END_TEST

START_TEST(test_datagram_sendto_in_error_received)
{
	dgram_error_in_flush(&dgram_resend_ops);
}
END_TEST

/*
 * The same flush, for the header's promise that callbacks never run
 * re-entrantly from a transport call made inside another callback: a
 * sendto inside error_received must not run error_received again before
 * it returns.
 */
START_TEST(test_datagram_error_received_not_reentrant)
{
	dgram_error_in_flush(&dgram_resend_ops);
	ck_assert_msg(g_dq_maxdepth == 1,
		      "[%s] error_received ran nested %d deep: tide_transport_sendto called inside "
		      "error_received flushed the queue (and called error_received) re-entrantly",
		      tt_cfg->name, g_dq_maxdepth);
}
END_TEST

/*
 * The other way error_received runs: a sendto with nothing queued fails at
 * once (a Unix path nobody is bound to). Sending again from inside
 * error_received must not run error_received nested either.
 */
/* Each failed sendto gets its own error_received, in order, from the loop. */
START_TEST(test_datagram_errors_each_reported)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = { .size = sizeof(o), .family = AF_UNIX };
	struct conn *c = conn_new();
	struct sockaddr_un dst;
	char dir[] = "/tmp/tide-net-XXXXXX";
	int rx;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	memset(&dst, 0, sizeof(dst));
	dst.sun_family = AF_UNIX;
	snprintf(dst.sun_path, sizeof(dst.sun_path), "%s/rx", dir);
	/* Bound, then closed: the path stays, nobody receives (ECONNREFUSED). */
	rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(rx, 0);
	ck_assert_int_eq(bind(rx, (struct sockaddr *)&dst, sizeof(dst)), 0);
	close(rx);
	endpoint(loop, &o, c);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tide_transport_sendto(c->t, "x", 1, (struct sockaddr *)&dst, sizeof(dst)), 0);
	ck_assert_int_eq(c->nerr, 0); /* not from inside sendto */
	RUN_UNTIL(loop, c->nerr >= 3);
	run_for(loop, 0.02);
	ck_assert_int_eq(c->nerr, 3);
	ck_assert_int_eq(c->last_err, -ECONNREFUSED);
	tide_transport_close(c->t);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "ML", 0);
	unlink(dst.sun_path);
	rmdir(dir);
	finish_all(loop, NULL);
}
END_TEST

START_TEST(test_datagram_sendto_error_in_callback_not_reentrant)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = { .size = sizeof(o), .family = AF_UNIX };
	struct conn *c = conn_new();
	struct tide_future *f;
	char dir[] = "/tmp/tide-net-XXXXXX";
	int rx, r;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	memset(&g_dq_dst, 0, sizeof(g_dq_dst));
	g_dq_dst.sun_family = AF_UNIX;
	snprintf(g_dq_dst.sun_path, sizeof(g_dq_dst.sun_path), "%s/rx", dir);
	g_dq_depth = g_dq_maxdepth = 0;
	/* Bound, then closed: the path stays, nobody receives (ECONNREFUSED). */
	rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(rx, 0);
	ck_assert_int_eq(bind(rx, (struct sockaddr *)&g_dq_dst, sizeof(g_dq_dst)), 0);
	close(rx);
	r = tide_create_datagram_endpoint(loop, &o, &dgram_resend_ops, c, &f);
	ck_assert_msg(r == 0, "[%s] tide_create_datagram_endpoint: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	tt_run_until_complete(loop, f, 0);
	tide_future_unref(f);
	/* Outside any callback, this sendto may call error_received at once
	 * (as asyncio's does); the sendto inside that call may not. */
	ck_assert_int_eq(tide_transport_sendto(c->t, "x", 1, (struct sockaddr *)&g_dq_dst, sizeof(g_dq_dst)), 0);
	RUN_UNTIL(loop, c->lost);
	run_for(loop, 0.05);
	ck_assert_int_eq(c->nerr, 4);
	ck_assert_int_eq(c->last_err, -ECONNREFUSED);
	check_conn(c, "ML", 0);
	unlink(g_dq_dst.sun_path);
	rmdir(dir);
	finish_all(loop, NULL);
	ck_assert_msg(g_dq_maxdepth == 1,
		      "[%s] error_received ran nested %d deep: a failing tide_transport_sendto inside "
		      "error_received called error_received re-entrantly",
		      tt_cfg->name, g_dq_maxdepth);
}
END_TEST

/*
 * A TCP listener whose accept queue is full: listen(backlog), then nfill
 * connects nobody accepts. The kernel drops further SYNs, so a connect
 * stays in SYN_SENT (its SYN is sent again after 1 s, 3 s...).
 */
static int full_listener(int backlog, int *port, int *fill, int nfill)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, 0);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&ss, len), 0);
	ck_assert_int_eq(listen(lfd, backlog), 0);
	*port = sock_port(lfd);
	len = loopback(&ss, AF_INET, *port);
	for (int i = 0; i < nfill; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fill[i], 0);
		ck_assert(connect(fill[i], (struct sockaddr *)&ss, len) == 0 || errno == EINPROGRESS);
	}
	tt_sleep_ms(100); /* the handshakes that fit are done */
	return lfd;
}

/* Makes room: the filling clients go, and what they left queued is accepted and closed. */
static void drain_listener(int lfd, int *fill, int nfill)
{
	int a;

	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	while ((a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(a);
	ck_assert_int_eq(errno, EAGAIN);
}

/* A socket a connect said is connected: getpeername agrees, with the listener's port. */
static void check_connected(int fd, int port, const char *what)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	int r = getpeername(fd, (struct sockaddr *)&peer, &plen);

	ck_assert_msg(r == 0, "[%s] %s reported success, but getpeername: %s", tt_cfg->name, what,
		      strerror(errno));
	ck_assert_int_eq(addr_port(&peer), port);
}

/* tide_op_connect to a full backlog waits for the handshake (epoll used to say 0 at once). */
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

/* create_connection to a full backlog: no transport before the handshake is done. */
START_TEST(test_create_connection_backlog_full)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f;
	struct tide_transport *t;
	struct conn *c = conn_new();
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	int fill[6], port, lfd = full_listener(1, &port, fill, 6), r;

	r = tide_create_connection(loop, "127.0.0.1", port, &conn_ops, c, &f);
	ck_assert_msg(r == 0, "[%s] tide_create_connection: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	run_for(loop, 0.3);
	if (tide_future_done(f)) {
		r = tide_future_error(f);
		ck_assert_msg(r == 0, "[%s] create_connection to a full backlog failed: %d (%s)", tt_cfg->name, r,
			      tide_strerror(r));
		check_connected(transport_fd(fut_ptr(f)), port, "create_connection to a full backlog");
	} else {
		ck_assert_int_eq(c->made, 0);
	}
	drain_listener(lfd, fill, 6);
	RUN_UNTIL(loop, tide_future_done(f));
	t = fut_ptr(f);
	ck_assert_ptr_eq(t, c->t);
	ck_assert_int_eq(c->made, 1);
	check_connected(transport_fd(t), port, "create_connection");
	ck_assert_int_eq(tide_transport_get_extra_info(t, "peername", &peer, &plen), 0);
	ck_assert_int_eq(addr_port(&peer), port);
	tide_future_unref(f);
	tide_transport_close(t);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "ML", 0);
	close(lfd);
	finish_all(loop, NULL);
}
END_TEST

/* A Unix listener with a full backlog: connect says EAGAIN at once, on every path. */
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
	RUN_UNTIL(loop, tide_future_done(f));
	r = tide_future_error(f);
	ck_assert_msg(r == -EAGAIN, "[%s] create_unix_connection to a full backlog: %d (%s)", tt_cfg->name, r,
		      tide_strerror(r));
	tide_future_unref(f);
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

/*
 * An op on fd N is cancelled and fd N closed (the kernel drops its epoll
 * registration); a new socket gets number N: an op on it must complete.
 * epoll used to keep the old registration's state and never re-add the fd.
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
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, q), 0);
	if (q[1] == old) {
		q[1] = q[0];
		q[0] = old;
	}
	if (q[0] != old) {
		ck_assert_int_eq(dup3(q[0], old, O_CLOEXEC), old);
		close(q[0]);
		q[0] = old;
	}
	/* The data comes after the op waits: only readiness can complete it. */
	ck_assert_int_eq(tide_op_recv(loop, q[0], buf, sizeof(buf), 0, &f), 0);
	spin(loop, 3);
	ck_assert_int_eq(tide_future_done(f), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.01, write_later_cb, (void *)(intptr_t)q[1], NULL), 0);
	RUN_UNTIL_FOR(loop, tide_future_done(f), 10.0);
	ck_assert_int_eq(tt_result(f), 5);
	ck_assert_mem_eq(buf, "later", 5);
	tide_future_unref(f);
	close(q[0]);
	close(q[1]);
	finish(loop);
}
END_TEST

static void close_in_made(struct conn *c)
{
	tide_transport_close(c->t);
}

/*
 * connection_made closes the transport: connection_lost may run before
 * the caller looks at the future, whose ptr must stay valid as long as the
 * future is held (it holds a reference).
 */
START_TEST(test_create_connection_made_closes)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = { .size = sizeof(o), .local_host = "127.0.0.1" };
	struct srv s = { 0 };
	struct tide_server *sv = serve(loop, lo4, 1, NULL, &s);
	struct conn *c = conn_new(), *d = conn_new();
	struct tide_future *f, *fd;
	struct tide_transport *t;
	int r;

	c->made_hook = close_in_made;
	r = tide_create_connection(loop, "127.0.0.1", tide_server_port(sv), &conn_ops, c, &f);
	ck_assert_msg(r == 0, "[%s] tide_create_connection: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	d->made_hook = close_in_made;
	r = tide_create_datagram_endpoint(loop, &o, &dgram_ops, d, &fd);
	ck_assert_msg(r == 0, "[%s] tide_create_datagram_endpoint: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	tt_run_until_complete(loop, f, 0);
	tt_run_until_complete(loop, fd, 0);
	RUN_UNTIL(loop, c->lost && d->lost);
	check_conn(c, "ML", 0);
	check_conn(d, "ML", 0);
	/* Both transports are gone for their protocols, not for the futures. */
	t = fut_ptr(f);
	ck_assert_ptr_eq(t, c->t);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	ck_assert_ptr_eq(tide_transport_loop(t), loop);
	ck_assert_int_eq(tide_transport_write(t, "x", 1), TIDE_ECLOSED);
	t = fut_ptr(fd);
	ck_assert_ptr_eq(t, d->t);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	ck_assert_int_eq(tide_transport_sendto(t, "x", 1, NULL, 0), TIDE_ECLOSED);
	tide_future_unref(f);
	tide_future_unref(fd);
	/* The server saw a connection that ended at once. */
	RUN_UNTIL(loop, s.n == 1 && s.conns[0]->lost);
	check_conn(s.conns[0], "MEL", 0);
	finish_all(loop, sv);
}
END_TEST

/*
 * Transports closed (or aborted) right before tide_loop_close: their end
 * was queued as a ready callback, which the close used to drop with the
 * user's callbacks (fds open, tide_loop_free -EBUSY forever). The loop is
 * never run again: tide_loop_free finishes them.
 */
START_TEST(test_close_before_loop_close)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = { .size = sizeof(o), .local_host = "127.0.0.1" };
	struct conn *d = conn_new(), *c = conn_new(), *c2 = conn_new();
	int port, lfd = bound_socket(AF_INET, SOCK_STREAM, &port), afd, afd2, dfd, cfd, cfd2, r;

	endpoint(loop, &o, d);
	dial(loop, "127.0.0.1", port, c);
	dial(loop, "127.0.0.1", port, c2);
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	afd2 = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(afd, 0);
	ck_assert_int_ge(afd2, 0);
	dfd = transport_fd(d->t);
	cfd = transport_fd(c->t);
	cfd2 = transport_fd(c2->t);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	tide_transport_close(d->t);
	tide_transport_close(c->t);
	tide_transport_abort(c2->t);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	r = tide_loop_free(loop);
	ck_assert_msg(r == 0, "[%s] tide_loop_free after closes: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	check_conn(d, "ML", 0);
	check_conn(c, "ML", 0);
	check_conn(c2, "ML", 0);
	check_fd_closed(dfd, "closed datagram transport's socket");
	check_fd_closed(cfd, "closed transport's socket");
	check_fd_closed(cfd2, "aborted transport's socket");
	check_peer_eof(afd);
	close(afd);
	close(afd2);
	close(lfd);
	conns_free();
}
END_TEST

/* The same for a server freed right before tide_loop_close. */
START_TEST(test_server_free_before_loop_close)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv = serve(loop, lo4, 1, NULL, &s);
	int lfd, port = tide_server_port(sv), r;
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, port);

	ck_assert_uint_eq(tide_server_sockets(sv, &lfd, 1), 1);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	tide_server_free(sv);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	r = tide_loop_free(loop);
	ck_assert_msg(r == 0, "[%s] tide_loop_free after tide_server_free: %d (%s)", tt_cfg->name, r,
		      tide_strerror(r));
	check_fd_closed(lfd, "freed server's listening socket");
	/* Nobody listens on the port any more. */
	r = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(r, 0);
	ck_assert_int_eq(connect(r, (struct sockaddr *)&ss, len), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	close(r);
	conns_free();
}
END_TEST

/* A server freed with its connection closed (close_clients) right before tide_loop_close. */
START_TEST(test_server_close_clients_before_loop_close)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv = serve(loop, lo4, 1, NULL, &s);
	int lfd, sfd, cfd, r;

	ck_assert_uint_eq(tide_server_sockets(sv, &lfd, 1), 1);
	cfd = raw_connect(AF_INET, tide_server_port(sv));
	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 1);
	sfd = transport_fd(s.conns[0]->t);
	tide_server_close_clients(sv, 0);
	tide_server_free(sv);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	r = tide_loop_free(loop);
	ck_assert_msg(r == 0, "[%s] tide_loop_free after close_clients and tide_server_free: %d (%s)", tt_cfg->name,
		      r, tide_strerror(r));
	check_conn(s.conns[0], "ML", 0);
	check_fd_closed(lfd, "freed server's listening socket");
	check_fd_closed(sfd, "closed client's socket");
	check_peer_eof(cfd);
	close(cfd);
	conns_free();
}
END_TEST

/* TIDE_NET_ONLY=name[,name...] runs only those tests (for debugging one case). */
static void add(struct tt_suite *ts, const TTest *t)
{
	const char *only = getenv("TIDE_NET_ONLY");

	if (only && *only) {
		size_t n = strlen(t->name);
		const char *p = only;
		int found = 0;

		while ((p = strstr(p, t->name)) != NULL) {
			if ((p == only || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
				found = 1;
			p += n;
		}
		if (!found)
			return;
	}
	tt_add(ts, t);
}

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "net", 300);
	add(&ts, test_socket_flags);
	add(&ts, test_accept_connect);
	add(&ts, test_connect_refused);
	add(&ts, test_recv_send);
	add(&ts, test_recv_cancelled);
	add(&ts, test_udp_sendmsg_recvmsg);
	add(&ts, test_unix_scm_rights);
	add(&ts, test_shutdown);
	add(&ts, test_op_close);
	add(&ts, test_bad_fd);
	add(&ts, test_task_ops);
	add(&ts, test_getaddrinfo_numeric);
	add(&ts, test_getaddrinfo_localhost);
	add(&ts, test_getaddrinfo_invalid);
	add(&ts, test_loop_shutdown);
	add(&ts, test_getnameinfo);
	add(&ts, test_echo_callback_order);
	add(&ts, test_create_connection_errors);
	add(&ts, test_half_close);
	add(&ts, test_reset_by_peer);
	add(&ts, test_reset_while_writing);
	add(&ts, test_close_flushes);
	add(&ts, test_small_writes_grow);
	add(&ts, test_abort_drops_buffer);
	add(&ts, test_abort_zero_copy_unread);
	add(&ts, test_writelines_past_iov_max);
	add(&ts, test_write_impossible_length);
	add(&ts, test_eof_received_once);
	add(&ts, test_pause_reading);
	add(&ts, test_write_buffer_limits);
	add(&ts, test_extra_info);
	add(&ts, test_buffered_protocol);
	add(&ts, test_buffered_protocol_one_byte);
	add(&ts, test_buffered_protocol_get_buffer_error);
	add(&ts, test_server_several_hosts);
	add(&ts, test_server_factory_refuses);
	add(&ts, test_server_transport_enomem);
	add(&ts, test_server_close_wait_closed);
	add(&ts, test_server_close_clients);
	add(&ts, test_serve_forever_cancelled);
	add(&ts, test_start_serving_later);
	add(&ts, test_unix_server);
	add(&ts, test_datagram_echo);
	add(&ts, test_datagram_connected);
	add(&ts, test_datagram_error_received);
	add(&ts, test_thousand_clients);
	add(&ts, test_64mib_small_buffers);
	add(&ts, test_emfile);
	add(&ts, test_enobufs);
	add(&ts, test_sends_from_ring);
	add(&ts, test_server_free_in_connection_made);
	add(&ts, test_server_free_in_factory);
	add(&ts, test_datagram_abort_in_error_received);
	add(&ts, test_datagram_sendto_in_error_received);
	add(&ts, test_datagram_error_received_not_reentrant);
	add(&ts, test_datagram_sendto_error_in_callback_not_reentrant);
	add(&ts, test_datagram_errors_each_reported);
	add(&ts, test_connect_backlog_full);
	add(&ts, test_create_connection_backlog_full);
	add(&ts, test_unix_connect_backlog_full);
	add(&ts, test_fd_reuse_after_cancel);
	add(&ts, test_create_connection_made_closes);
	add(&ts, test_close_before_loop_close);
	add(&ts, test_server_free_before_loop_close);
	add(&ts, test_server_close_clients_before_loop_close);
	return tt_run(&ts);
}
