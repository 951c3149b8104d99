/* SPDX-License-Identifier: MIT */
/*
 * test/threads.c: one loop driven by several threads in turn (asyncio lets
 * a loop run on one thread and later on another, never on two at once), on
 * every backend configuration. Each turn must work fully: timers, I/O,
 * tasks, executor jobs, call_soon_threadsafe wake-ups; ops and transports
 * started by a thread that has since exited still complete; a second
 * thread is refused while the loop runs; and freeing the loop from yet
 * another thread leaks nothing.
 */
#include "config.h"
#include "net-fixture.h"
/* The op layer itself, for a zero-copy send (transports' own op kind). */
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void flag_cb(void *arg)
{
	*(bool *)arg = true;
}

static void stop_cb(void *arg)
{
	tide_loop_stop(arg);
}

static void write_one_cb(void *arg)
{
	tt_write_all((int)(intptr_t)arg, "w", 1);
}

static int64_t job_fn(void *arg)
{
	return (int64_t)(intptr_t)arg;
}

static int64_t sleeper(void *arg)
{
	(void)arg;
	return tide_sleep(0.01) == 0 ? 7 : -1;
}

/* One thread's turn at the loop: everything a loop does must work. */
static void *drive(void *arg)
{
	struct tide_loop *loop = arg;
	struct tide_future *f;
	bool fired = false;
	char c = 0;
	int p[2];

	/* A timer. */
	ck_assert_int_eq(tide_call_later(loop, 0.01, flag_cb, &fired, NULL), 0);
	RUN_UNTIL(loop, fired);
	/* I/O: a read the kernel completes on its own time. */
	tt_pipe(p, 0);
	ck_assert_int_eq(tide_op_read(loop, p[0], &c, 1, -1, &f), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.01, write_one_cb, (void *)(intptr_t)p[1], NULL), 0);
	tt_run_until_complete(loop, f, 0);
	ck_assert_int_eq(tt_result(f), 1);
	ck_assert_int_eq(c, 'w');
	tide_future_unref(f);
	close(p[0]);
	close(p[1]);
	/* A task (its stack switches with this thread's). */
	ck_assert_int_eq(tide_task_spawn(loop, sleeper, NULL, NULL, &f), 0);
	tt_run_until_complete(loop, f, 0);
	ck_assert_int_eq(tt_result(f), 7);
	tide_future_unref(f);
	/* An executor job, whose completion comes through the door. */
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, job_fn, (void *)(intptr_t)42, &f), 0);
	tt_run_until_complete(loop, f, 0);
	ck_assert_int_eq(tt_result(f), 42);
	tide_future_unref(f);
	/* A sleeping loop woken by another thread. */
	tt_run_until_woken(loop, 20);
	return NULL;
}

static void *free_loop(void *arg)
{
	int r = tide_loop_free(arg);

	ck_assert_msg(r == 0, "[%s] tide_loop_free on a third thread: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	return NULL;
}

static void on_thread(void *(*fn)(void *), void *arg)
{
	pthread_t th;

	ck_assert_int_eq(pthread_create(&th, NULL, fn, arg), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
}

/*
 * Made on the main thread, driven by thread A, then by thread B, freed by
 * thread C. Before: B's first wait failed with -EINVAL (the ring was
 * SINGLE_ISSUER, bound to A), and C's free could not cancel the wake-up
 * read and leaked it.
 */
START_TEST(test_threads_take_turns)
{
	bool counting = counting_allocator("test_threads_take_turns");
	struct tide_loop *loop = tt_loop_new();

	on_thread(drive, loop);
	on_thread(drive, loop);
	on_thread(drive, loop);
	on_thread(free_loop, loop);
	if (counting)
		ck_assert_msg(tt_live_allocs() == 0, "[%s] %ld allocations left after tide_loop_free on another thread",
			      tt_cfg->name, tt_live_allocs());
}
END_TEST

/*
 * A thread starts ops, submits them, and exits: io_uring cancels the
 * requests of a task that exits when they would complete. The thread that
 * drives the loop next gets their real results (the loop submits them
 * again), never an -ECANCELED nobody asked for.
 */
struct started {
	struct tide_loop *loop;
	int pr[2], pp[2], sp[2], lfd, cfd, full, fill[4], port, full_port;
	char rbuf[4], sbuf[4];
	struct sockaddr_storage peer;
	socklen_t peerlen;
	struct tide_future *read, *poll, *recv, *accept, *timeout, *connect;
};

static void *start_ops(void *arg)
{
	struct started *s = arg;
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, s->full_port);

	ck_assert_int_eq(tide_op_read(s->loop, s->pr[0], s->rbuf, 4, -1, &s->read), 0);
	ck_assert_int_eq(tide_op_poll(s->loop, s->pp[0], POLLIN, &s->poll), 0);
	ck_assert_int_eq(tide_op_recv(s->loop, s->sp[0], s->sbuf, 4, 0, &s->recv), 0);
	ck_assert_int_eq(tide_op_accept(s->loop, s->lfd, NULL, NULL, &s->accept), 0);
	ck_assert_int_eq(tide_op_timeout(s->loop, 0.05, &s->timeout), 0);
	ck_assert_int_eq(tide_op_connect(s->loop, s->cfd, (struct sockaddr *)&ss, len, &s->connect), 0);
	/* They reach the kernel as this thread's (a wait flushes the SQ). */
	ck_assert_int_ge(tide_loop_run_once(s->loop, 0.001), 0);
	return NULL;
}

START_TEST(test_ops_outlive_their_thread)
{
	struct started s = { .loop = tt_loop_new() };
	int afd, cli;

	tt_pipe(s.pr, 0);
	tt_pipe(s.pp, 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s.sp), 0);
	s.lfd = bound_socket(AF_INET, SOCK_STREAM, &s.port);
	set_nonblock(s.lfd);
	/* A connect whose SYN a full backlog drops stays in progress. */
	s.full = full_listener(0, &s.full_port, s.fill, 4);
	s.cfd = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s.cfd, 0);
	on_thread(start_ops, &s);
	/* The starting thread is gone; the main thread drives the loop now. */
	tt_write_all(s.pr[1], "read", 4);
	tt_write_all(s.pp[1], "p", 1);
	ck_assert_int_eq(send(s.sp[1], "recv", 4, 0), 4);
	cli = raw_connect(AF_INET, s.port);
	drain_listener(s.full, s.fill, 4);
	tt_run_until_complete(s.loop, s.read, 0);
	ck_assert_int_eq(tt_result(s.read), 4);
	ck_assert_int_eq(memcmp(s.rbuf, "read", 4), 0);
	tt_run_until_complete(s.loop, s.poll, 0);
	ck_assert_int_eq(tt_result(s.poll) & POLLIN, POLLIN);
	tt_run_until_complete(s.loop, s.recv, 0);
	ck_assert_int_eq(tt_result(s.recv), 4);
	ck_assert_int_eq(memcmp(s.sbuf, "recv", 4), 0);
	tt_run_until_complete(s.loop, s.accept, 0);
	afd = (int)tt_result(s.accept);
	ck_assert_int_ge(afd, 0);
	tt_run_until_complete(s.loop, s.timeout, 0);
	ck_assert_int_eq(tt_result(s.timeout), 0);
	/* The SYN sent again finds room: a real connection. */
	RUN_UNTIL(s.loop, tide_future_done(s.connect));
	ck_assert_int_eq(tt_result(s.connect), 0);
	check_connected(s.cfd, s.full_port, "a connect started on a thread that exited");
	tide_future_unref(s.read);
	tide_future_unref(s.poll);
	tide_future_unref(s.recv);
	tide_future_unref(s.accept);
	tide_future_unref(s.timeout);
	tide_future_unref(s.connect);
	close(afd);
	close(cli);
	close(s.cfd);
	close(s.full);
	close(s.lfd);
	close(s.pr[0]);
	close(s.pr[1]);
	close(s.pp[0]);
	close(s.pp[1]);
	close(s.sp[0]);
	close(s.sp[1]);
	ck_assert_int_eq(tide_loop_free(s.loop), 0);
}
END_TEST

/*
 * A server and a connection made while thread A drove the loop (their
 * multishot accept and receive are A's requests), A exits: the main thread
 * then accepts a second client and echoes through both.
 */
struct netsetup {
	struct tide_loop *loop;
	struct srv srv;
	struct tide_server *sv;
	struct conn *cli;
};

static void *net_start(void *arg)
{
	struct netsetup *n = arg;

	n->srv.tmpl.echo = 1;
	n->sv = serve(n->loop, lo4, 1, NULL, &n->srv);
	n->cli = dial(n->loop, "127.0.0.1", tide_server_port(n->sv), conn_new());
	accepted(n->loop, &n->srv);
	/* The server side's receive is armed. */
	spin(n->loop, 3);
	return NULL;
}

START_TEST(test_transports_outlive_their_thread)
{
	struct netsetup n = { .loop = tt_loop_new() };
	struct conn *cli2;

	on_thread(net_start, &n);
	ck_assert_int_eq(tide_transport_write(n.cli->t, "ping", 4), 0);
	RUN_UNTIL(n.loop, n.cli->rxlen == 4);
	ck_assert_int_eq(memcmp(n.cli->rx, "ping", 4), 0);
	cli2 = dial(n.loop, "127.0.0.1", tide_server_port(n.sv), conn_new());
	RUN_UNTIL(n.loop, srv_count(&n.srv, 1, 0) == 2);
	ck_assert_int_eq(tide_transport_write(cli2->t, "pong", 4), 0);
	RUN_UNTIL(n.loop, cli2->rxlen == 4);
	ck_assert_int_eq(memcmp(cli2->rx, "pong", 4), 0);
	tide_transport_close(n.cli->t);
	tide_transport_close(cli2->t);
	RUN_UNTIL(n.loop, n.cli->lost && cli2->lost && srv_count(&n.srv, 1, 1) == 2);
	check_conn(n.cli, "MDL", 0);
	check_conn(cli2, "MDL", 0);
	finish_all(n.loop, n.sv);
}
END_TEST

/*
 * A zero-copy send that a thread submitted, waiting for room, when the
 * thread exits: the kernel cancels it when room comes, with a result
 * (-ECANCELED, F_MORE) and then its notification. Its owner must see
 * neither: once the notification came the present thread submits it
 * again, and the owner gets the bytes sent, then the notification. (A
 * transport switches zero-copy off once loopback copies, so the op is
 * driven here directly.)
 */
struct zcsend {
	struct tide_loop *loop;
	int fd, peer;
	char *buf;
	size_t len, filled;
	int nmore, more_res, final_res, done;
};

static void zc_send_done(struct tide__op *op)
{
	struct zcsend *z = op->owner;

	if (op->flags & TIDE__OP_MORE) {
		z->nmore++;
		z->more_res = op->res;
		return;
	}
	z->final_res = op->res;
	z->done = 1;
	tide__op_release(op);
}

static void *zc_start(void *arg)
{
	struct zcsend *z = arg;
	struct tide__op *op;
	ssize_t r;

	/* The socket is full: the send must wait for room. */
	while ((r = send(z->fd, z->buf, 65536, MSG_DONTWAIT)) > 0)
		z->filled += (size_t)r;
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(tide__op_new(z->loop, TIDE_OP_SEND_ZC, &op), 0);
	op->fd = z->fd;
	op->buf = z->buf;
	op->len = z->len;
	op->owner = z;
	op->done = zc_send_done;
	ck_assert_int_eq(tide__op_submit(op), 0);
	ck_assert_int_ge(tide_loop_run_once(z->loop, 0.001), 0);
	ck_assert_int_eq(z->nmore + z->done, 0);
	return NULL;
}

START_TEST(test_zero_copy_send_outlives_its_thread)
{
	struct zcsend z = { .loop = tt_loop_new(), .len = 1000 };
	int port, lfd = bound_socket(AF_INET, SOCK_STREAM, &port), small = 4096;
	uint64_t end = tt_mono_ns() + TT_HANG_NS;
	static char rx[65536];
	size_t got = 0;

	ck_assert_msg(tide_loop_op_native(z.loop, TIDE_OP_SEND_ZC), "[%s] this kernel has no SEND_ZC", tt_cfg->name);
	z.fd = raw_connect(AF_INET, port);
	set_nonblock(z.fd);
	ck_assert_int_eq(setsockopt(z.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	z.peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	ck_assert_int_ge(z.peer, 0);
	ck_assert_int_eq(setsockopt(z.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	z.buf = malloc(65536);
	ck_assert_ptr_nonnull(z.buf);
	memset(z.buf, 'z', 65536);
	on_thread(zc_start, &z);
	/* The peer reads: room comes, and the send's request was its
	 * thread's, which is gone. */
	while (!z.done) {
		ssize_t r = recv(z.peer, rx, sizeof(rx), MSG_DONTWAIT);

		ck_assert_msg(tt_mono_ns() < end, "[%s] the zero-copy send never completed", tt_cfg->name);
		if (r > 0)
			got += (size_t)r;
		else
			ck_assert_int_ge(tide_loop_run_once(z.loop, 0.01), 0);
	}
	ck_assert_msg(z.nmore == 1 && z.more_res == (int)z.len, "[%s] the send's owner saw %d results, the last %d (%s)",
		      tt_cfg->name, z.nmore, z.more_res, tide_strerror(z.more_res));
	ck_assert_int_ge(z.final_res, 0);
	/* Every byte arrives: what filled the socket, then the send's. */
	while (got < z.filled + z.len) {
		ssize_t r = recv(z.peer, rx, sizeof(rx), MSG_DONTWAIT);

		ck_assert_msg(tt_mono_ns() < end, "[%s] %zu of %zu bytes arrived", tt_cfg->name, got, z.filled + z.len);
		if (r > 0)
			got += (size_t)r;
		else
			tt_sleep_ms(1);
	}
	ck_assert_uint_eq(got, z.filled + z.len);
	close(z.fd);
	close(z.peer);
	close(lfd);
	free(z.buf);
	ck_assert_int_eq(tide_loop_free(z.loop), 0);
}
END_TEST

/*
 * While thread A runs the loop, every other thread is refused at once,
 * never let in beside it: running twice at once would corrupt the loop.
 */
static atomic_int running_seen;

static void mark_running(void *arg)
{
	(void)arg;
	atomic_store(&running_seen, 1);
}

static void *run_loop(void *arg)
{
	ck_assert_int_eq(tide_loop_run(arg), 0);
	return NULL;
}

START_TEST(test_second_thread_refused)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f;
	pthread_t th;

	ck_assert_int_eq(tide_future_new(loop, &f), 0);
	ck_assert_int_eq(tide_call_soon(loop, mark_running, NULL, NULL), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, run_loop, loop), 0);
	while (!atomic_load(&running_seen))
		tt_sleep_ms(1);
	ck_assert_int_eq(tide_loop_is_running(loop), 1);
	ck_assert_int_eq(tide_loop_run(loop), TIDE_ERUNNING);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), TIDE_ERUNNING);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, f), TIDE_ERUNNING);
	ck_assert_int_eq(tide_loop_shutdown(loop, 0), TIDE_ERUNNING);
	ck_assert_int_eq(tide_loop_close(loop), TIDE_ERUNNING);
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	ck_assert_int_eq(tide_call_soon_threadsafe(loop, stop_cb, loop), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(tide_loop_is_running(loop), 0);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/*
 * Two threads call run_once on one loop as fast as they can: at most one
 * is ever inside, the other is refused (TIDE_ERUNNING), and every
 * callback runs exactly once. Each callback checks that no other one runs
 * beside it.
 */
#define RACE_CALLS 20000
static atomic_int inside, overlap;
static atomic_uint ran;

static void race_cb(void *arg)
{
	(void)arg;
	if (atomic_fetch_add(&inside, 1) != 0)
		atomic_store(&overlap, 1);
	atomic_fetch_add(&ran, 1);
	atomic_fetch_sub(&inside, 1);
}

static void *race_runner(void *arg)
{
	struct tide_loop *loop = arg;

	while (atomic_load(&ran) < RACE_CALLS) {
		int r = tide_loop_run_once(loop, 0);

		ck_assert_msg(r >= 0 || r == TIDE_ERUNNING, "[%s] run_once: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	}
	return NULL;
}

START_TEST(test_two_threads_race_to_run)
{
	struct tide_loop *loop = tt_loop_new();
	pthread_t th[2];

	for (int i = 0; i < RACE_CALLS; i++)
		ck_assert_int_eq(tide_call_soon_threadsafe(loop, race_cb, NULL), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, race_runner, loop), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	ck_assert_int_eq(atomic_load(&overlap), 0);
	ck_assert_uint_eq(atomic_load(&ran), RACE_CALLS);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "threads", 120);
	tt_add(&ts, test_threads_take_turns);
	tt_add(&ts, test_ops_outlive_their_thread);
	tt_add(&ts, test_transports_outlive_their_thread);
	tt_add(&ts, test_second_thread_refused);
	tt_add(&ts, test_two_threads_race_to_run);
	/* Zero-copy sends exist on io_uring alone (the masked configuration
	 * masks them). */
	if (ts.tc[TT_URING])
		tcase_add_test(ts.tc[TT_URING], test_zero_copy_send_outlives_its_thread);
	else
		tt_skip(&ts, 1, "a zero-copy send outliving its thread: io_uring is unavailable");
	return tt_run(&ts);
}
