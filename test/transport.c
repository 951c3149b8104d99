/* SPDX-License-Identifier: MIT */
/*
 * test/transport.c: protocols and stream transports, on every backend
 * configuration, checked as CPython's test_events.py and
 * test_selector_events.py check asyncio's: the order of the callbacks,
 * create_connection (a full backlog, connection_made that closes), half-close,
 * reset, abort and close (with closes right before tide_loop_close),
 * flow control both ways, extra info, buffered protocols, and the sends
 * straight from the receive ring.
 *
 * The hard part is the bookkeeping of callbacks, which the logging
 * protocol of net-fixture.h does: each test compares a connection's whole
 * sequence (M made, D data runs, E eof, L lost), and anything after
 * connection_lost is counted, never silently dropped.
 */
#include "config.h"
#include "net-fixture.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <grp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Closes fd with SO_LINGER 0: the peer sees a reset. */
static void reset_close(int fd)
{
	struct linger lg = { 1, 0 };

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd);
}

/* A server on 127.0.0.1 (its connections copy s->tmpl), and cli connected to it. */
static struct tide_server *serve_dial(struct tide_loop *loop, struct srv *s, struct conn *cli)
{
	struct tide_server *sv = serve(loop, lo4, 1, NULL, s);

	dial(loop, "127.0.0.1", tide_server_port(sv), cli);
	return sv;
}

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
 * create_connection to a full backlog: no transport before the handshake is done.
 * Regression (review of 2026-11-26): guards against a connect that claims
 * success too early: a transport, and connection_made, before the handshake.
 */
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

static void close_in_made(struct conn *c)
{
	tide_transport_close(c->t);
}

/*
 * connection_made closes the transport: connection_lost may run before
 * the caller looks at the future, whose ptr must stay valid as long as the
 * future is held (it holds a reference).
 * Regression (review of 2026-11-26; run it under ASan): guards the
 * transport behind create_connection's (and the datagram endpoint's)
 * future, closed from inside connection_made, against a use after free.
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

/* t's write buffer limits are high and low. */
static void check_marks(struct tide_transport *t, size_t high, size_t low)
{
	size_t hi = 1, lo = 1;

	tide_transport_get_write_buffer_limits(t, &hi, &lo);
	ck_assert_uint_eq(hi, high);
	ck_assert_uint_eq(lo, low);
}

/* set_write_buffer_limits(t, high, low) returns ret, and leaves the limits at want_high, want_low. */
static void set_marks(struct tide_transport *t, size_t high, size_t low, int ret, size_t want_high, size_t want_low)
{
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(t, high, low), ret);
	check_marks(t, want_high, want_low);
}

START_TEST(test_write_buffer_limits)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct conn *cli = conn_new();
	struct tide_server *sv = serve_dial(loop, &s, cli);

	check_marks(cli->t, 65536, 16384);
	set_marks(cli->t, 100, 200, -EINVAL, 65536, 16384);
	set_marks(cli->t, 1000, 10, 0, 1000, 10);
	set_marks(cli->t, 4096, 4096, 0, 4096, 4096);
	set_marks(cli->t, 0, 0, 0, 65536, 16384);
	/* 0 is asyncio's None: high is 4 * low, low is high / 4. */
	set_marks(cli->t, 0, 100, 0, 400, 100);
	set_marks(cli->t, 100, 0, 0, 100, 25);
	/* Past 4 GiB a mark is 4 GiB, and the default low is a quarter of that. */
	set_marks(cli->t, (size_t)1 << 40, 0, 0, UINT32_MAX, UINT32_MAX / 4);
	/* A huge low alone: 4 * low does not wrap into a smaller high. */
	set_marks(cli->t, 0, SIZE_MAX / 2, 0, UINT32_MAX, UINT32_MAX);
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

/*
 * Transports closed (or aborted) right before tide_loop_close: the loop
 * is never run again, and tide_loop_free finishes them.
 * Regression (review of 2026-11-26): guards their end, queued as a ready
 * callback, which tide_loop_close dropped with the user's callbacks (fds
 * left open, tide_loop_free -EBUSY forever).
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

static const struct tide_protocol_ops buffered_ops = { LOG_STREAM_OPS, .data_received = bad_data,
						       .get_buffer = on_get_buffer,
						       .buffer_updated = on_buffer_updated };

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

/* ------------------------------------------ sends from the receive ring -- */

/*
 * Sends from the receive ring: data_received writes its bytes in two
 * halves (the first half may be sent straight from the io_uring receive
 * buffer, the second is copied behind it) and writes them all again to a
 * second connection (a proxy's or a chat's write of the same bytes: a
 * copy, since the buffer has one owner). Both peers get exactly what was
 * sent, and on io_uring with multishot receives the ring path is taken.
 */
static struct tide_transport *g_mirror;

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

static const struct tide_protocol_ops stack_copy_ops = { LOG_STREAM_OPS, .data_received = stack_copy_data };

static const struct tide_protocol_ops split_ops = { LOG_STREAM_OPS, .data_received = split_data };

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

/* ------------------------------------------------- big flows, zero-copy -- */

/* An echo with asyncio's flow control: reading pauses while the write
 * buffer is above its high-water mark. */
static void flow_data(struct tide_transport *t, const void *data, size_t n, void *p)
{
	struct conn *c = p;

	c->datas++;
	ck_assert_int_eq(tide_transport_write(t, data, n), 0);
}

static void flow_pause(struct tide_transport *t, void *p)
{
	((struct conn *)p)->npause++;
	ck_assert_int_eq(tide_transport_pause_reading(t), 0);
}

static void flow_resume(struct tide_transport *t, void *p)
{
	((struct conn *)p)->nresume++;
	ck_assert_int_eq(tide_transport_resume_reading(t), 0);
}

static const struct tide_protocol_ops flow_echo_ops = {
	LOG_STREAM_OPS, .data_received = flow_data, .pause_writing = flow_pause, .resume_writing = flow_resume,
};

/* A blocking client that writes len bytes of data while another thread
 * reads them back and compares. */
struct duplex {
	int fd;
	const unsigned char *data;
	size_t len;
	atomic_size_t got;
	atomic_int done, bad;
};

static void *duplex_writer(void *arg)
{
	struct duplex *d = arg;

	for (size_t off = 0; off < d->len;) {
		size_t n = d->len - off < 65536 ? d->len - off : 65536;
		ssize_t w = send(d->fd, d->data + off, n, MSG_NOSIGNAL);

		if (w <= 0) {
			atomic_store(&d->bad, 1);
			break;
		}
		off += (size_t)w;
	}
	return NULL;
}

static void *duplex_reader(void *arg)
{
	struct duplex *d = arg;
	unsigned char *buf = malloc(1 << 20);
	size_t got = 0;

	while (buf && got < d->len) {
		ssize_t r = recv(d->fd, buf, 1 << 20, 0);

		if (r <= 0 || memcmp(buf, d->data + got, (size_t)r) != 0) {
			atomic_store(&d->bad, 1);
			break;
		}
		got += (size_t)r;
		atomic_store(&d->got, got);
	}
	free(buf);
	atomic_store(&d->done, 1);
	return NULL;
}

/*
 * A client writing while it reads, through that echo: every byte comes
 * back, and the buffers the flow fills and empties every few
 * milliseconds are reused, not allocated anew each time. On io_uring a
 * multishot receive hands over everything queued at once (hundreds of
 * KiB), the write buffer and the bytes held while paused grew that big
 * and were freed at each pause, and malloc gave their pages back to the
 * kernel and faulted them in again: 8 times epoll's CPU, 1/50 of its rate.
 */
#define DUPLEX_LEN (16u << 20)
START_TEST(test_full_duplex_echo)
{
	struct tide_loop *loop;
	struct srv s = { 0 };
	struct tide_server *sv;
	struct duplex d = { .len = DUPLEX_LEN };
	pthread_t wr, rd;
	long big;

	if (!counting_allocator("test_full_duplex_echo"))
		return;
	loop = tt_loop_new();
	d.data = pat_buf(11, DUPLEX_LEN);
	s.ops = &flow_echo_ops;
	sv = serve(loop, lo4, 1, NULL, &s);
	d.fd = raw_connect(AF_INET, tide_server_port(sv));
	RUN_UNTIL(loop, s.n == 1);
	big = tt_big_allocs();
	ck_assert_int_eq(pthread_create(&rd, NULL, duplex_reader, &d), 0);
	ck_assert_int_eq(pthread_create(&wr, NULL, duplex_writer, &d), 0);
	RUN_UNTIL(loop, atomic_load(&d.done));
	pthread_join(wr, NULL);
	pthread_join(rd, NULL);
	big = tt_big_allocs() - big;
	printf("[%s] full duplex: %zu bytes echoed in %zu data_received, %d pauses, %ld allocations of 8 KiB or more\n",
	       tt_cfg->name, (size_t)atomic_load(&d.got), s.conns[0]->datas, s.conns[0]->npause, big);
	ck_assert_msg(!atomic_load(&d.bad), "[%s] the echo differs or ended at %zu", tt_cfg->name,
		      (size_t)atomic_load(&d.got));
	ck_assert_uint_eq(atomic_load(&d.got), DUPLEX_LEN);
	/* A bulk flow is read in big pieces, not ring buffer by ring
	 * buffer (4 KiB), and the pools keep what it needs: a few buffers
	 * per size, not one per pause. */
	ck_assert_msg(s.conns[0]->datas <= DUPLEX_LEN / 16384, "[%s] %zu data_received for %u bytes", tt_cfg->name,
		      s.conns[0]->datas, DUPLEX_LEN);
	ck_assert_msg(big <= 40, "[%s] %ld big allocations for %d pauses", tt_cfg->name, big, s.conns[0]->npause);
	close(d.fd);
	RUN_UNTIL(loop, s.conns[0]->lost);
	free((void *)d.data);
	finish_all(loop, sv);
}
END_TEST

/* Reads everything from fd until EOF, in a thread. */
struct sink {
	int fd;
	size_t got;
	const unsigned char *data; /* compared against when set */
	int bad;
};

static void *sink_run(void *arg)
{
	struct sink *k = arg;
	unsigned char *buf = malloc(1 << 20);
	ssize_t r;

	while (buf && (r = recv(k->fd, buf, 1 << 20, 0)) > 0) {
		if (k->data && memcmp(buf, k->data + k->got, (size_t)r) != 0)
			k->bad = 1;
		k->got += (size_t)r;
	}
	free(buf);
	return NULL;
}

/* Writes len bytes of data on t in 64 KiB writes, waits until all is sent. */
static void write_all(struct tide_loop *loop, struct tide_transport *t, const unsigned char *data, size_t len)
{
	for (size_t off = 0; off < len; off += 65536) {
		ck_assert_int_eq(tide_transport_write(t, data + off, len - off < 65536 ? len - off : 65536), 0);
		RUN_UNTIL(loop, tide_transport_get_write_buffer_size(t) < (1u << 20));
	}
	RUN_UNTIL(loop, tide_transport_get_write_buffer_size(t) == 0);
}

/*
 * Write buffers that grow to hundreds of KiB and empty, round after round:
 * the loop's pools keep them (up to 8 MiB in all), where malloc would give
 * the pages back to the kernel and fault them in again each round.
 */
START_TEST(test_big_write_buffers_reused)
{
	struct tide_loop *loop;
	struct srv s = { 0 };
	struct tide_server *sv;
	struct sink k = { 0 };
	const size_t round = 256u << 10;
	unsigned char *data;
	struct conn *sc;
	pthread_t th;
	long big;

	if (!counting_allocator("test_big_write_buffers_reused"))
		return;
	loop = tt_loop_new();
	data = pat_buf(14, round);
	sv = serve(loop, lo4, 1, NULL, &s);
	k.fd = raw_connect(AF_INET, tide_server_port(sv));
	sc = accepted(loop, &s);
	ck_assert_int_eq(pthread_create(&th, NULL, sink_run, &k), 0);
	big = tt_big_allocs();
	for (int i = 0; i < 50; i++)
		write_all(loop, sc->t, data, round);
	big = tt_big_allocs() - big;
	printf("[%s] 50 rounds of %zu bytes: %ld allocations of 8 KiB or more\n", tt_cfg->name, round, big);
	ck_assert_msg(big <= 40, "[%s] %ld big allocations in 50 rounds", tt_cfg->name, big);
	tide_transport_close(sc->t);
	RUN_UNTIL(loop, sc->lost);
	pthread_join(th, NULL);
	ck_assert_uint_eq(k.got, 50 * round);
	close(k.fd);
	free(data);
	finish_all(loop, sv);
}
END_TEST

/*
 * On loopback the kernel copies a zero-copy send anyway, and the send
 * costs a completion more: the notification says so
 * (IORING_SEND_ZC_REPORT_USAGE), the loop counts it, and that connection
 * sends by copy from then on.
 */
#define ZC_LEN (4u << 20)
START_TEST(test_zero_copy_copied_on_loopback)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv = serve(loop, lo4, 1, NULL, &s);
	struct sink k = { .fd = raw_connect(AF_INET, tide_server_port(sv)) };
	unsigned char *data = pat_buf(12, ZC_LEN);
	struct tide_loop_stats st;
	uint64_t zc_first;
	pthread_t th;
	struct conn *sc = accepted(loop, &s);
	bool zc = tt_is_uring() && tide_loop_op_native(loop, TIDE_OP_SEND_ZC);

	k.data = data;
	ck_assert_int_eq(pthread_create(&th, NULL, sink_run, &k), 0);
	write_all(loop, sc->t, data, ZC_LEN / 2);
	/* The first notifications come once the reader consumed the bytes. */
	tt_stats(loop, &st);
	RUN_UNTIL(loop, !zc || (tt_stats(loop, &st), st.sends_zc_copied > 0));
	zc_first = st.ops_submitted[TIDE_OP_SEND_ZC][TIDE_PATH_URING];
	write_all(loop, sc->t, data + ZC_LEN / 2, ZC_LEN / 2);
	tt_stats(loop, &st);
	printf("[%s] zero-copy sends %llu then %llu, copied %llu\n", tt_cfg->name, (unsigned long long)zc_first,
	       (unsigned long long)st.ops_submitted[TIDE_OP_SEND_ZC][TIDE_PATH_URING],
	       (unsigned long long)st.sends_zc_copied);
	if (zc) {
		ck_assert_uint_gt(zc_first, 0);
		ck_assert_uint_eq(st.sends_zc_copied, 1);
		/* Once told, the connection sends by copy. */
		ck_assert_uint_eq(st.ops_submitted[TIDE_OP_SEND_ZC][TIDE_PATH_URING], zc_first);
	} else {
		ck_assert_uint_eq(st.ops_submitted[TIDE_OP_SEND_ZC][TIDE_PATH_URING], 0);
		ck_assert_uint_eq(st.sends_zc_copied, 0);
	}
	tide_transport_close(sc->t);
	RUN_UNTIL(loop, sc->lost);
	pthread_join(th, NULL);
	ck_assert_uint_eq(k.got, ZC_LEN);
	ck_assert_int_eq(k.bad, 0);
	check_conn(sc, "ML", 0);
	close(k.fd);
	free(data);
	finish_all(loop, sv);
}
END_TEST

/*
 * A zero-copy send pins its pages, which count against RLIMIT_MEMLOCK for
 * a user without CAP_IPC_LOCK (8 MiB for a Debian user, less in
 * containers): past it the send fails with ENOMEM. That write goes again
 * by copy, later ones too for a while, and the connection lives. Run in a
 * child that drops root (root has CAP_IPC_LOCK), makes its loop (the ring
 * is charged to the limit too), then lowers the limit to 16 KiB.
 */
static void memlock_child(void)
{
	struct rlimit rl = { 1u << 20, 1u << 20 };
	struct tide_loop *loop;
	struct srv s = { 0 };
	struct tide_server *sv;
	struct sink k = { 0 };
	unsigned char *data = pat_buf(13, ZC_LEN);
	struct tide_loop_stats st;
	struct conn *sc;
	pthread_t th;

	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		_exit(77); /* not root, and a lower hard limit */
	if (geteuid() == 0 && (setgroups(0, NULL) || setgid(65534) || setuid(65534)))
		_exit(3);
	loop = tt_loop_new();
	rl.rlim_cur = rl.rlim_max = 16384;
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		_exit(4);
	sv = serve(loop, lo4, 1, NULL, &s);
	k.fd = raw_connect(AF_INET, tide_server_port(sv));
	k.data = data;
	sc = accepted(loop, &s);
	ck_assert_int_eq(pthread_create(&th, NULL, sink_run, &k), 0);
	write_all(loop, sc->t, data, ZC_LEN);
	tide_transport_close(sc->t);
	RUN_UNTIL(loop, sc->lost);
	pthread_join(th, NULL);
	tt_stats(loop, &st);
	printf("[%s] memlock 16 KiB: zero-copy sends %llu, refused %llu, %zu bytes arrived\n", tt_cfg->name,
	       (unsigned long long)st.ops_submitted[TIDE_OP_SEND_ZC][TIDE_PATH_URING],
	       (unsigned long long)st.sends_zc_nomem, k.got);
	ck_assert_uint_eq(k.got, ZC_LEN);
	ck_assert_int_eq(k.bad, 0);
	check_conn(sc, "ML", 0);
	if (tt_is_uring() && tide_loop_op_native(loop, TIDE_OP_SEND_ZC)) {
		ck_assert_uint_gt(st.sends_zc_nomem, 0);
		/* Not one refusal per send: it waits (1 s, 2 s, 4 s...)
		 * before trying zero-copy again. */
		ck_assert_uint_lt(st.sends_zc_nomem, 6);
	} else
		ck_assert_uint_eq(st.sends_zc_nomem, 0);
	close(k.fd);
	free(data);
	finish_all(loop, sv);
	fflush(stdout);
	_exit(0);
}

START_TEST(test_zero_copy_memlock)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		memlock_child();
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		printf("[%s] test_zero_copy_memlock: cannot raise RLIMIT_MEMLOCK to 1 MiB: skipped\n", tt_cfg->name);
		return;
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "[%s] the child failed: status 0x%x",
		      tt_cfg->name, status);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_echo_callback_order, test_create_connection_backlog_full,
		test_create_connection_made_closes, test_loop_shutdown, test_half_close, test_reset_by_peer,
		test_reset_while_writing, test_close_flushes, test_small_writes_grow, test_abort_drops_buffer,
		test_abort_zero_copy_unread, test_writelines_past_iov_max, test_write_impossible_length,
		test_eof_received_once, test_pause_reading, test_write_buffer_limits, test_extra_info,
		test_close_before_loop_close, test_buffered_protocol, test_buffered_protocol_one_byte,
		test_buffered_protocol_get_buffer_error, test_sends_from_ring, test_full_duplex_echo,
		test_big_write_buffers_reused, test_zero_copy_copied_on_loopback, test_zero_copy_memlock,
	};

	return net_main("transport", 300, tests, NET_COUNT(tests), NULL, 0);
}
