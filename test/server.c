/* SPDX-License-Identifier: MIT */
/*
 * test/server.c: servers, on every backend configuration, checked as
 * CPython's test_server.py checks asyncio's: several hosts on one port,
 * a refusing factory, no memory for a transport, close and wait_closed,
 * close_clients, serve_forever cancelled, start_serving later, Unix
 * servers; and servers freed from inside their own callbacks or right
 * before tide_loop_close.
 *
 * The hard part is the listening socket's deferred close: a closed or
 * freed server still has ops in flight, so a test waits until a connect
 * is refused (connect_refused_eventually) rather than assume it at once.
 */
#include "config.h"
#include "net-fixture.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------ utilities -- */

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

/* -------------------------------------------------------------- servers -- */

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
	struct tide_server_opts opts = {.size = sizeof(opts), .defer_serving = 1};
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
	struct tide_server_opts opts = {.size = sizeof(opts), .defer_serving = 1};
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
		r = done_error(l2, f);
		ck_assert_msg(r == -ENOENT || r == -ECONNREFUSED, "connect to a missing path: %d (%s)", r,
			      tide_strerror(r));
		ck_assert_int_eq(c2->made, 0);
		finish(l2);
	}
	rmdir(dir);
	conns_free();
}
END_TEST

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
 * the accept path still holds the server. The connection goes on, ends
 * with connection_lost, and the listener closes.
 * Regression (review of 2026-11-26): guards the accept path, which wrote
 * into the freed server (the POLLIN path had already let go of its op, so
 * the free was immediate); run it under ASan.
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

/*
 * A server freed right before tide_loop_close: the loop is never run
 * again, and tide_loop_free closes its listening socket.
 * Regression (review of 2026-11-26): guards the server's deferred close,
 * which tide_loop_close dropped with the user's callbacks (the listener
 * left open, tide_loop_free -EBUSY forever).
 */
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

/*
 * A server freed with its connection closed (close_clients) right before
 * tide_loop_close.
 * Regression (review of 2026-11-26): guards the same dropped closes, for
 * the server's accepted transports as well as its listener.
 */
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

int main(void)
{
	const TTest *tests[] = {
		test_server_several_hosts, test_server_factory_refuses, test_server_transport_enomem,
		test_server_close_wait_closed, test_server_close_clients, test_serve_forever_cancelled,
		test_start_serving_later, test_unix_server, test_server_free_in_connection_made,
		test_server_free_in_factory, test_server_free_before_loop_close,
		test_server_close_clients_before_loop_close,
	};

	return net_main("server", 300, tests, NET_COUNT(tests), NULL, 0);
}
