/* SPDX-License-Identifier: MIT */
/*
 * conformance/sock.c: cases ported from CPython 3.11's
 * test_asyncio/test_sock_lowlevel.py, each named <python module>__<python
 * test>, run on every backend configuration. asyncio's loop.sock_* calls
 * become tide's awaitable socket ops inside tasks (tide_accept,
 * tide_connect, tide_recv, tide_send, tide_sendmsg, tide_recvmsg), and
 * CPython's test HTTP and UDP echo servers become small server tasks on
 * the same loop. test/conformance/README.md maps each Python test to its case.
 *
 * The hard part is what the Python tests check between the lines: a
 * cancelled op loses no data and leaves nothing behind (the racing recv,
 * the accept cancelled by wait_for whose listener must then refuse), and
 * sock_sendall's "everything or an error", which C callers build from
 * tide_send's partial counts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "../helpers.h"

/* The loop of the running case (tt_run_main keeps it here). */
static struct tide_loop *g_loop;

static const char g_request[] = "GET / HTTP/1.0\r\n\r\n";
static const char g_response[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
				 "Test message from the tide test server.\n";

/* ------------------------------------------------------------ utilities -- */

/* A listening socket of family (AF_INET on 127.0.0.1:0, or AF_UNIX at path),
 * its address in *addr. */
static int listener_new(int family, const char *path, struct sockaddr_storage *addr, socklen_t *len)
{
	int fd = tide_socket(family, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(addr, 0, sizeof(*addr));
	if (family == AF_UNIX) {
		struct sockaddr_un *un = (struct sockaddr_un *)addr;

		un->sun_family = AF_UNIX;
		ck_assert_uint_lt(strlen(path), sizeof(un->sun_path));
		strcpy(un->sun_path, path);
		*len = (socklen_t)sizeof(*un);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)addr;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = (socklen_t)sizeof(*in);
	}
	ck_assert_int_eq(bind(fd, (struct sockaddr *)addr, *len), 0);
	ck_assert_int_eq(listen(fd, 16), 0);
	*len = (socklen_t)sizeof(*addr);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)addr, len), 0);
	return fd;
}

/* The loopback UDP socket, bound to 127.0.0.1:0, its address in *addr. */
static int udp_new(struct sockaddr_in *addr)
{
	int fd = tide_socket(AF_INET, SOCK_DGRAM, 0);
	socklen_t len = sizeof(*addr);

	ck_assert_int_ge(fd, 0);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)addr, len), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
	return fd;
}

/* sock_sendall: tide_send until all of buf went, inside a task; 0 or -errno. */
static int send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t r = tide_send(fd, p, n, MSG_NOSIGNAL);

		if (r < 0)
			return (int)r;
		ck_assert_int_gt(r, 0);
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Receives until EOF into buf (cap bytes at most), inside a task; the count. */
static size_t recv_to_eof(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	for (;;) {
		ssize_t r;

		ck_assert_uint_lt(got, cap);
		r = tide_recv(fd, buf + got, cap - got, 0);
		ck_assert_msg(r >= 0, "[%s] recv: %zd (%s)", tt_cfg->name, r, tide_strerror((int)r));
		if (r == 0)
			return got;
		got += (size_t)r;
	}
}

/* -------------------------------------------------- the HTTP server -- */

/* CPython's run_test_server, cut down: accepts one connection, reads a
 * request up to its blank line, answers g_response and closes. */
static int64_t http_server(void *arg)
{
	int lfd = *(int *)arg, cfd;
	char req[256];
	size_t got = 0;

	cfd = tide_accept(lfd, NULL, NULL);
	ck_assert_msg(cfd >= 0, "[%s] accept: %d (%s)", tt_cfg->name, cfd, tide_strerror(cfd));
	while (got < 4 || memcmp(req + got - 4, "\r\n\r\n", 4) != 0) {
		ssize_t r = tide_recv(cfd, req + got, sizeof(req) - 1 - got, 0);

		ck_assert_int_gt(r, 0);
		got += (size_t)r;
		ck_assert_uint_lt(got, sizeof(req) - 1);
	}
	req[got] = '\0';
	ck_assert_str_eq(req, g_request);
	ck_assert_int_eq(send_all(cfd, g_response, strlen(g_response)), 0);
	ck_assert_int_eq(tide_close(cfd), 0);
	return 0;
}

struct client_ops {
	int family;
	char path[108];
};

/* _basetest_sock_client_ops and _basetest_sock_recv_into: connect, send the
 * request, and the response comes whole; twice, on two connections. */
static int64_t client_ops_body(void *arg)
{
	struct client_ops *c = arg;
	struct sockaddr_storage addr;
	socklen_t len;
	int lfd = listener_new(c->family, c->path, &addr, &len);

	for (int round = 0; round < 2; round++) {
		struct tide_future *srv = tt_spawn(g_loop, http_server, &lfd);
		int fd = tide_socket(c->family, SOCK_STREAM, 0);
		char buf[1024];
		size_t n;

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(tide_connect(fd, (struct sockaddr *)&addr, len), 0);
		ck_assert_int_eq(send_all(fd, g_request, strlen(g_request)), 0);
		if (round == 0) {
			/* sock_recv: the first read starts the response. */
			ssize_t r = tide_recv(fd, buf, sizeof(buf), 0);

			ck_assert_int_gt(r, 0);
			n = (size_t)r + recv_to_eof(fd, buf + r, sizeof(buf) - (size_t)r);
		} else {
			/* sock_recv_into: into one caller's buffer, to EOF. */
			n = recv_to_eof(fd, buf, sizeof(buf));
		}
		ck_assert_uint_eq(n, strlen(g_response));
		ck_assert_int_eq(memcmp(buf, "HTTP/1.0 200 OK", 15), 0);
		ck_assert_int_eq(memcmp(buf, g_response, n), 0);
		ck_assert_int_eq(tide_close(fd), 0);
		ck_assert_int_eq(tt_join(srv), 0);
	}
	ck_assert_int_eq(tide_close(lfd), 0);
	return 0;
}

/* test_sock_lowlevel.test_sock_client_ops: sock_connect, sock_sendall and
 * sock_recv (and sock_recv_into) against a TCP server get its whole response. */
START_TEST(test_sock_lowlevel__test_sock_client_ops)
{
	struct client_ops c = { .family = AF_INET };

	tt_run_main(&g_loop, client_ops_body, &c);
}
END_TEST

/* test_sock_lowlevel.test_unix_sock_client_ops: the same over an AF_UNIX socket. */
START_TEST(test_sock_lowlevel__test_unix_sock_client_ops)
{
	struct client_ops c = { .family = AF_UNIX };
	char dir[] = "/tmp/tide-sock-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(c.path, sizeof(c.path), "%s/s", dir);
	tt_run_main(&g_loop, client_ops_body, &c);
	ck_assert_int_eq(unlink(c.path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* ----------------------------------------------------------- racing -- */

static int g_race_fd;

static int64_t recv_task(void *arg)
{
	char *buf = arg;

	return tide_recv(g_race_fd, buf, 1024, 0);
}

static int64_t send_request_task(void *arg)
{
	return send_all(g_race_fd, g_request, strlen(g_request));
}

static int64_t racing_body(void *arg)
{
	static char lost[1024], buf[1024];
	struct sockaddr_storage addr;
	socklen_t len;
	int lfd = listener_new(AF_INET, NULL, &addr, &len);
	struct tide_future *srv = tt_spawn(g_loop, http_server, &lfd), *rt, *st;
	ssize_t r;
	size_t n;

	g_race_fd = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(g_race_fd, 0);
	ck_assert_int_eq(tide_connect(g_race_fd, (struct sockaddr *)&addr, len), 0);
	/* A recv waiting for data is cancelled before any comes. */
	rt = tt_spawn(g_loop, recv_task, lost);
	ck_assert_int_eq(tide_sleep(0), 0);
	ck_assert_int_eq(tide_task_cancel(rt), 1);
	/* Then the request goes, and a new recv gets the whole answer. */
	st = tt_spawn(g_loop, send_request_task, NULL);
	r = tide_recv(g_race_fd, buf, sizeof(buf), 0);
	ck_assert_int_gt(r, 0);
	ck_assert_int_eq(memcmp(buf, "HTTP/1.0 200 OK", 15), 0);
	/* consume data: nothing went to the cancelled recv. */
	n = (size_t)r + recv_to_eof(g_race_fd, buf + r, sizeof(buf) - (size_t)r);
	ck_assert_uint_eq(n, strlen(g_response));
	ck_assert_int_eq(memcmp(buf, g_response, n), 0);
	ck_assert_int_eq(tt_join(rt), -ECANCELED);
	ck_assert_int_eq(tt_join(st), 0);
	ck_assert_int_eq(tt_join(srv), 0);
	ck_assert_int_eq(tide_close(g_race_fd), 0);
	ck_assert_int_eq(tide_close(lfd), 0);
	return 0;
}

/* test_sock_lowlevel.test_sock_client_racing (_basetest_sock_recv_racing):
 * a sock_recv cancelled before data arrives takes none of it; the next
 * sock_recv gets the response, whole. */
START_TEST(test_sock_lowlevel__test_sock_client_racing)
{
	tt_run_main(&g_loop, racing_body, NULL);
}
END_TEST

/* ------------------------------------------------------ huge content -- */

#define HUGE_SIZE ((size_t)16 << 20)
static const char g_post_fmt[] = "POST /loop HTTP/1.0\r\nContent-Length: %zu\r\n\r\n";
static const char g_ok[] = "HTTP/1.0 200 OK\r\n\r\n";

static char pattern_at(size_t i) { return (char)('0' + i % 10); }

/* CPython's test server at /loop, cut down: reads the headers, answers 200
 * and echoes the body back as it comes, with short reads (a slow reader). */
static int64_t echo_http_server(void *arg)
{
	int lfd = *(int *)arg, cfd;
	char hdr[256], *buf = malloc(4096);
	size_t got = 0, body, echoed = 0;
	char *end;

	ck_assert_ptr_nonnull(buf);
	cfd = tide_accept(lfd, NULL, NULL);
	ck_assert_int_ge(cfd, 0);
	/* One byte at a time, so that nothing of the body is read here. */
	while (got < 4 || memcmp(hdr + got - 4, "\r\n\r\n", 4) != 0) {
		ck_assert_uint_lt(got, sizeof(hdr) - 1);
		ck_assert_int_eq(tide_recv(cfd, hdr + got, 1, 0), 1);
		got++;
	}
	hdr[got] = '\0';
	end = strstr(hdr, "Content-Length: ");
	ck_assert_ptr_nonnull(end);
	body = strtoul(end + 16, NULL, 10);
	ck_assert_uint_eq(body, HUGE_SIZE);
	ck_assert_int_eq(send_all(cfd, g_ok, strlen(g_ok)), 0);
	while (echoed < body) {
		ssize_t r = tide_recv(cfd, buf, 4096, 0);

		ck_assert_int_gt(r, 0);
		ck_assert_int_eq(send_all(cfd, buf, (size_t)r), 0);
		echoed += (size_t)r;
	}
	ck_assert_uint_eq(echoed, body);
	ck_assert_int_eq(tide_close(cfd), 0);
	free(buf);
	return 0;
}

static int64_t huge_sender(void *arg)
{
	return send_all(g_race_fd, arg, HUGE_SIZE);
}

static int64_t huge_body(void *arg)
{
	struct sockaddr_storage addr;
	socklen_t len;
	int lfd = listener_new(AF_INET, NULL, &addr, &len);
	struct tide_future *srv = tt_spawn(g_loop, echo_http_server, &lfd), *st;
	char *chunk = malloc(HUGE_SIZE), *buf = malloc(HUGE_SIZE), hdr[128];
	size_t got = 0, checked = 0, hlen;

	ck_assert_ptr_nonnull(chunk);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < HUGE_SIZE; i++)
		chunk[i] = pattern_at(i);
	g_race_fd = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(g_race_fd, 0);
	ck_assert_int_eq(tide_connect(g_race_fd, (struct sockaddr *)&addr, len), 0);
	snprintf(hdr, sizeof(hdr), g_post_fmt, HUGE_SIZE);
	ck_assert_int_eq(send_all(g_race_fd, hdr, strlen(hdr)), 0);
	/* The body goes from another task while this one reads the echo. */
	st = tt_spawn(g_loop, huge_sender, chunk);
	hlen = strlen(g_ok);
	for (;;) {
		ssize_t r = tide_recv(g_race_fd, buf, HUGE_SIZE, 0);

		ck_assert_int_ge(r, 0);
		if (r == 0)
			break;
		/* The headers, then the body byte for byte, in order. */
		for (ssize_t i = 0; i < r;) {
			if (got < hlen) {
				ck_assert_int_eq(buf[i], g_ok[got]);
				i++;
				got++;
			} else {
				size_t k = (size_t)(r - i);

				ck_assert_uint_le(checked + k, HUGE_SIZE);
				ck_assert_msg(memcmp(buf + i, chunk + checked, k) == 0,
					      "[%s] the body differs within bytes %zu..%zu", tt_cfg->name, checked,
					      checked + k);
				checked += k;
				got += k;
				i = r;
			}
		}
	}
	ck_assert_uint_eq(checked, HUGE_SIZE);
	ck_assert_int_eq(tt_join(st), 0);
	ck_assert_int_eq(tt_join(srv), 0);
	ck_assert_int_eq(tide_close(g_race_fd), 0);
	ck_assert_int_eq(tide_close(lfd), 0);
	free(chunk);
	free(buf);
	return 0;
}

/* test_sock_lowlevel.test_huge_content: a body far bigger than the socket
 * buffers, sent with sock_sendall while sock_recv reads its echo, comes
 * back byte for byte and all of it. */
START_TEST(test_sock_lowlevel__test_huge_content)
{
	tt_run_main(&g_loop, huge_body, NULL);
}
END_TEST

/* --------------------------------------------------------- datagrams -- */

/* CPython's run_udp_echo_server: echoes n datagrams to their senders. */
struct udp_echo {
	int fd;
	int n;
};

static int64_t udp_echo_server(void *arg)
{
	struct udp_echo *e = arg;
	static char buf[65536];

	for (int i = 0; i < e->n; i++) {
		struct sockaddr_storage from;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr msg = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t r = tide_recvmsg(e->fd, &msg, 0);

		ck_assert_int_ge(r, 0);
		iov.iov_len = (size_t)r;
		ck_assert_int_eq(tide_sendmsg(e->fd, &msg, 0), r);
	}
	return 0;
}

/* sock_sendto: one datagram of n bytes to addr; asserts it all went. */
static void sendto_addr(int fd, const void *data, size_t n, const struct sockaddr_in *to)
{
	struct iovec iov = { .iov_base = (void *)data, .iov_len = n };
	struct msghdr msg = {
		.msg_name = (void *)to, .msg_namelen = sizeof(*to), .msg_iov = &iov, .msg_iovlen = 1,
	};

	ck_assert_int_eq(tide_sendmsg(fd, &msg, 0), (ssize_t)n);
}

/* sock_recvfrom_into(buf, nbytes): the count, the sender in *from. */
static ssize_t recvfrom_into(int fd, void *buf, size_t nbytes, struct sockaddr_in *from)
{
	struct iovec iov = { .iov_base = buf, .iov_len = nbytes };
	struct msghdr msg = { .msg_name = from, .msg_namelen = sizeof(*from), .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;

	memset(from, 0, sizeof(*from));
	r = tide_recvmsg(fd, &msg, 0);
	ck_assert_uint_eq(msg.msg_namelen, sizeof(*from));
	return r;
}

static void assert_same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	ck_assert_int_eq(a->sin_family, b->sin_family);
	ck_assert_uint_eq(a->sin_port, b->sin_port);
	ck_assert_uint_eq(a->sin_addr.s_addr, b->sin_addr.s_addr);
}

/*
 * sock_sendto of 4096 bytes to the echo at saddr, then a receive of
 * nbytes 4096 into buf (cleared first, cap bytes): the echo came back,
 * from the echo's address.
 */
static void udp_echo_once(int fd, const char *data, char *buf, size_t cap, const struct sockaddr_in *saddr)
{
	struct sockaddr_in from;

	sendto_addr(fd, data, 4096, saddr);
	memset(buf, 0, cap);
	ck_assert_int_eq(recvfrom_into(fd, buf, 4096, &from), 4096);
	ck_assert_int_eq(memcmp(buf, data, 4096), 0);
	assert_same_addr(&from, saddr);
}

static int64_t recvfrom_body(void *arg)
{
	static char data[4096], buf[8192];
	struct sockaddr_in saddr, caddr;
	struct udp_echo e = { .fd = udp_new(&saddr), .n = 1 };
	int fd = udp_new(&caddr);
	struct tide_future *srv = tt_spawn(g_loop, udp_echo_server, &e);

	memset(data, 0x01, sizeof(data));
	/* sock_sendto, then sock_recvfrom(sock, 4096): the echo and its sender. */
	udp_echo_once(fd, data, buf, sizeof(buf), &saddr);
	ck_assert_int_eq(tt_join(srv), 0);
	ck_assert_int_eq(tide_close(fd), 0);
	ck_assert_int_eq(tide_close(e.fd), 0);
	return 0;
}

/* test_sock_lowlevel.test_recvfrom: sock_sendto to a UDP echo server, then
 * sock_recvfrom gives the data and the server's address. */
START_TEST(test_sock_lowlevel__test_recvfrom)
{
	tt_run_main(&g_loop, recvfrom_body, NULL);
}
END_TEST

static int64_t recvfrom_into_body(void *arg)
{
	static char data[4096], buf[8192];
	struct sockaddr_in saddr, caddr;
	struct udp_echo e = { .fd = udp_new(&saddr), .n = 2 };
	int fd = udp_new(&caddr);
	struct tide_future *srv = tt_spawn(g_loop, udp_echo_server, &e);

	memset(data, 0x01, sizeof(data));
	/* Into a buffer of exactly the datagram's size. */
	udp_echo_once(fd, data, buf, 4096, &saddr);
	/* Into a bigger buffer, nbytes 4096: only those bytes are written. */
	udp_echo_once(fd, data, buf, sizeof(buf), &saddr);
	for (size_t i = 4096; i < sizeof(buf); i++)
		ck_assert_int_eq(buf[i], 0);
	ck_assert_int_eq(tt_join(srv), 0);
	ck_assert_int_eq(tide_close(fd), 0);
	ck_assert_int_eq(tide_close(e.fd), 0);
	return 0;
}

/* test_sock_lowlevel.test_recvfrom_into: sock_recvfrom_into fills the
 * caller's buffer (up to nbytes) and gives the sender's address. */
START_TEST(test_sock_lowlevel__test_recvfrom_into)
{
	tt_run_main(&g_loop, recvfrom_into_body, NULL);
}
END_TEST

/* ------------------------------------------------- connect and accept -- */

static int64_t client_fail_body(void *arg)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int s = tide_socket(AF_INET, SOCK_STREAM, 0), fd;

	/* An unused port: bound once, then closed. */
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&addr, len), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&addr, &len), 0);
	ck_assert_int_eq(tide_close(s), 0);
	fd = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tide_connect(fd, (struct sockaddr *)&addr, sizeof(addr)), -ECONNREFUSED);
	ck_assert_int_eq(tide_close(fd), 0);
	return 0;
}

/* test_sock_lowlevel.test_sock_client_fail: sock_connect to a closed
 * loopback port fails with ConnectionRefusedError (-ECONNREFUSED). */
START_TEST(test_sock_lowlevel__test_sock_client_fail)
{
	tt_run_main(&g_loop, client_fail_body, NULL);
}
END_TEST

static int64_t sock_accept_body(void *arg)
{
	struct sockaddr_storage laddr, peer, caddr, cpeer;
	socklen_t llen, plen = sizeof(peer), clen = sizeof(caddr), cplen = sizeof(cpeer);
	int lfd = listener_new(AF_INET, NULL, &laddr, &llen);
	int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), conn;

	/* A blocking client.connect() before the accept, as in Python. */
	ck_assert_int_ge(client, 0);
	ck_assert_int_eq(connect(client, (struct sockaddr *)&laddr, llen), 0);
	memset(&peer, 0, sizeof(peer));
	conn = tide_accept(lfd, (struct sockaddr *)&peer, &plen);
	ck_assert_msg(conn >= 0, "[%s] accept: %d (%s)", tt_cfg->name, conn, tide_strerror(conn));
	/* conn.gettimeout() == 0: the accepted socket is non-blocking. */
	ck_assert_int_ne(fcntl(conn, F_GETFL) & O_NONBLOCK, 0);
	/* addr == client.getsockname() */
	ck_assert_int_eq(getsockname(client, (struct sockaddr *)&caddr, &clen), 0);
	ck_assert_uint_eq(plen, clen);
	ck_assert_int_eq(memcmp(&peer, &caddr, clen), 0);
	/* client.getpeername() == listener.getsockname() */
	ck_assert_int_eq(getpeername(client, (struct sockaddr *)&cpeer, &cplen), 0);
	ck_assert_uint_eq(cplen, llen);
	ck_assert_int_eq(memcmp(&cpeer, &laddr, llen), 0);
	close(client);
	ck_assert_int_eq(tide_close(conn), 0);
	ck_assert_int_eq(tide_close(lfd), 0);
	return 0;
}

/* test_sock_lowlevel.test_sock_accept: sock_accept gives a non-blocking
 * socket and the client's own address. */
START_TEST(test_sock_lowlevel__test_sock_accept)
{
	tt_run_main(&g_loop, sock_accept_body, NULL);
}
END_TEST

static int64_t cancel_accept_body(void *arg)
{
	struct sockaddr_storage laddr, peer;
	socklen_t llen, plen = sizeof(peer);
	int lfd = listener_new(AF_INET, NULL, &laddr, &llen), fd, conn;
	struct tide_future *f = NULL;

	/* wait_for(sock_accept(listener), 0.1) times out, cancelling the accept. */
	ck_assert_int_eq(tide_op_accept(g_loop, lfd, (struct sockaddr *)&peer, &plen, &f), 0);
	ck_assert_int_eq(tide_wait_for(f, 0.1), -ETIMEDOUT);
	ck_assert_int_eq(tide_future_done(f), 1);
	ck_assert_int_eq(tide_future_cancelled(f), 1);
	tide_future_unref(f);
	/* The cancelled accept took no connection: a new one gets the next. */
	fd = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tide_connect(fd, (struct sockaddr *)&laddr, llen), 0);
	conn = tide_accept(lfd, NULL, NULL);
	ck_assert_int_ge(conn, 0);
	ck_assert_int_eq(tide_close(conn), 0);
	ck_assert_int_eq(tide_close(fd), 0);
	/* Once the listener is closed, nothing holds it open: a connect is refused. */
	ck_assert_int_eq(tide_close(lfd), 0);
	fd = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tide_connect(fd, (struct sockaddr *)&laddr, llen), -ECONNREFUSED);
	ck_assert_int_eq(tide_close(fd), 0);
	return 0;
}

/* test_sock_lowlevel.test_cancel_sock_accept: a sock_accept cancelled by
 * wait_for's timeout leaves the listener to close for real: a connect
 * after the close is refused. */
START_TEST(test_sock_lowlevel__test_cancel_sock_accept)
{
	tt_run_main(&g_loop, cancel_accept_body, NULL);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "conformance-sock", 60);
	tt_add(&ts, test_sock_lowlevel__test_sock_client_ops);
	tt_add(&ts, test_sock_lowlevel__test_unix_sock_client_ops);
	tt_add(&ts, test_sock_lowlevel__test_sock_client_racing);
	tt_add(&ts, test_sock_lowlevel__test_huge_content);
	tt_add(&ts, test_sock_lowlevel__test_recvfrom);
	tt_add(&ts, test_sock_lowlevel__test_recvfrom_into);
	tt_add(&ts, test_sock_lowlevel__test_sock_client_fail);
	tt_add(&ts, test_sock_lowlevel__test_sock_accept);
	tt_add(&ts, test_sock_lowlevel__test_cancel_sock_accept);
	return tt_run(&ts);
}
