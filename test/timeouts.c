/* SPDX-License-Identifier: MIT */
/*
 * test/timeouts.c: a connection's timeouts and deadline
 * (tide_transport_set_timeouts, tide_transport_set_deadline and their
 * stream forms), on every backend configuration: a silent peer is cut
 * once its idle timeout passed, never before, and connection_lost says
 * -ETIMEDOUT; traffic either way keeps a connection past many timeouts;
 * changing and clearing them; a peer that does not read (the write
 * timeout, and a close whose flush it would hold forever); the deadline,
 * whatever the traffic; a stream's waiting read failing with -ETIMEDOUT;
 * bad values; and a loop freed with timers armed, nothing left allocated.
 *
 * The hard part is timing without asserting speed: an expiry is checked
 * never to come early (a lower bound on the clock, exact), and only to
 * come at all (RUN_UNTIL's bound, far above any delay); "kept alive" is
 * traffic every few hundredths of a timeout, and "not expired" is
 * waiting past a timeout that was cleared or moved.
 */
#include "config.h"
#include "net-fixture.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int set_timeouts(struct tide_transport *t, double idle, double write)
{
	struct tide_timeouts to = { .size = sizeof(to), .idle = idle, .write = write };

	return tide_transport_set_timeouts(t, &to);
}

/* Seconds since t0 (tt_mono_ns). */
static double since(uint64_t t0)
{
	return (double)(tt_mono_ns() - t0) / 1e9;
}

/* The peer's end: EOF or a reset, within a few seconds. */
static void check_peer_gone(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[4096];
	ssize_t r;

	do {
		ck_assert_msg(poll(&pfd, 1, (int)(5000 * slow_factor())) == 1, "[%s] the peer did not end",
			      tt_cfg->name);
		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	} while (r > 0);
	ck_assert_msg(r == 0 || errno == ECONNRESET, "[%s] recv: %s", tt_cfg->name, strerror(errno));
}

/* Reads what fd holds without waiting (a client that keeps reading). */
static void drain_fd(int fd)
{
	char buf[4096];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* n plain clients of a server on 127.0.0.1: cfd[i] is conn s->conns[i]. */
static struct tide_server *serve_clients(struct tide_loop *loop, struct srv *s, int *cfd, int n)
{
	struct tide_server *sv = serve(loop, lo4, 1, NULL, s);

	for (int i = 0; i < n; i++) {
		cfd[i] = raw_connect(AF_INET, tide_server_port(sv));
		RUN_UNTIL(loop, srv_count(s, 1, 0) == (size_t)i + 1);
	}
	return sv;
}

/* A server on 127.0.0.1 and one plain client of it: most tests' start. */
struct one {
	struct tide_loop *loop;
	struct srv s;
	struct tide_server *sv;
	int cfd;              /* the client */
	struct conn *c;       /* the server's side */
};

static void one_start(struct one *o)
{
	memset(o, 0, sizeof(*o));
	o->loop = tt_loop_new();
	o->sv = serve_clients(o->loop, &o->s, &o->cfd, 1);
	o->c = o->s.conns[0];
}

/* The end: the connection logged log and was lost with err; all goes. */
static void one_end(struct one *o, const char *log, int err)
{
	check_conn(o->c, log, err);
	close(o->cfd);
	finish_all(o->loop, o->sv);
}

/* --------------------------------------------------------- idle expiry -- */

/*
 * A peer that says nothing is cut once the idle timeout passed, not
 * before, with -ETIMEDOUT; it sees the connection end.
 */
START_TEST(test_idle_expires)
{
	struct one o;
	uint64_t t0;
	double el;

	one_start(&o);
	t0 = tt_mono_ns();
	ck_assert_int_eq(set_timeouts(o.c->t, 0.3, 0), 0);
	RUN_UNTIL(o.loop, o.c->lost);
	el = since(t0);
	ck_assert_msg(el >= 0.3, "[%s] cut after %.3f s of a 0.3 s idle timeout", tt_cfg->name, el);
	check_peer_gone(o.cfd);
	one_end(&o, "ML", -ETIMEDOUT);
}
END_TEST

/*
 * Traffic keeps the connection: bytes from the peer, then bytes to it,
 * for four timeouts each; then silence cuts it, a timeout after the last
 * byte, never before.
 */
START_TEST(test_idle_traffic_keeps_alive)
{
	struct one o;
	const double idle = 0.4 * slow_factor();
	uint64_t t0, last;
	double el;

	one_start(&o);
	ck_assert_int_eq(set_timeouts(o.c->t, idle, 0), 0);
	/* The peer speaks. */
	t0 = tt_mono_ns();
	while (since(t0) < 4 * idle) {
		tt_write_all(o.cfd, "x", 1);
		run_for(o.loop, idle / 10);
	}
	ck_assert_int_eq(o.c->lost, 0);
	ck_assert_uint_gt(o.c->rxlen, 20);
	/* Only we speak (the peer reads, says nothing). */
	t0 = last = tt_mono_ns();
	while (since(t0) < 4 * idle) {
		last = tt_mono_ns(); /* no later than the byte's send */
		ck_assert_int_eq(tide_transport_write(o.c->t, "y", 1), 0);
		run_for(o.loop, idle / 10);
		drain_fd(o.cfd);
	}
	ck_assert_int_eq(o.c->lost, 0);
	/* Silence. */
	RUN_UNTIL(o.loop, o.c->lost);
	el = since(last);
	ck_assert_msg(el >= idle, "[%s] cut %.3f s after the last byte, idle timeout %.3f s", tt_cfg->name, el,
		      idle);
	one_end(&o, "MDL", -ETIMEDOUT);
}
END_TEST

struct late_byte {
	int fd;
	double after;
};

static void *late_byte_thread(void *arg)
{
	struct late_byte *lb = arg;

	tt_sleep_ms((unsigned)(lb->after * 1000));
	tt_write_all(lb->fd, "z", 1);
	return NULL;
}

/*
 * A byte that ends a long sleep of the loop (nothing else due before the
 * timeout) counts from when it came, not from when the loop went to
 * sleep: the cut is a timeout after it.
 */
START_TEST(test_idle_byte_after_sleep)
{
	struct one o;
	struct late_byte lb = { .after = 0.4 };
	uint64_t t0;
	pthread_t th;
	double el;

	one_start(&o);
	t0 = tt_mono_ns();
	lb.fd = o.cfd;
	ck_assert_int_eq(set_timeouts(o.c->t, 0.6, 0), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, late_byte_thread, &lb), 0);
	/* Iterations that wait as long as they may (RUN_UNTIL's wait 50 ms at most). */
	while (!o.c->lost) {
		ck_assert_msg(since(t0) < TT_HANG_S * slow_factor(), "[%s] no expiry", tt_cfg->name);
		ck_assert_int_ge(tide_loop_run_once(o.loop, 5.0), 0);
	}
	el = since(t0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_uint_eq(o.c->rxlen, 1);
	ck_assert_msg(el >= 1.0, "[%s] cut %.3f s after the start: a byte came at %.1f s, idle timeout 0.6 s",
		      tt_cfg->name, el, lb.after);
	one_end(&o, "MDL", -ETIMEDOUT);
}
END_TEST

/* --------------------------------------------------- changing, clearing -- */

/*
 * Timeouts replaced by shorter ones move the timer earlier; by longer
 * ones or none, nothing expires at the old time. The same for the
 * deadline, and a deadline already past expires at once.
 */
START_TEST(test_change_and_clear)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	int cfd[6];
	struct tide_server *sv = serve_clients(loop, &s, cfd, 6);
	struct conn **c = s.conns;
	double now = tide_loop_time(loop);
	uint64_t t0;
	double el;

	ck_assert_int_eq(set_timeouts(c[0]->t, 30, 0), 0); /* shortened below */
	ck_assert_int_eq(set_timeouts(c[1]->t, 0.2, 0), 0); /* cleared below */
	ck_assert_int_eq(set_timeouts(c[2]->t, 0.2, 0), 0); /* lengthened below */
	ck_assert_int_eq(tide_transport_set_deadline(c[3]->t, now + 0.2), 0); /* cleared below */
	ck_assert_int_eq(tide_transport_set_deadline(c[4]->t, now + 30), 0); /* moved closer below */
	ck_assert_int_eq(tide_transport_set_deadline(c[5]->t, now + 30), 0); /* moved to the past below */

	t0 = tt_mono_ns();
	ck_assert_int_eq(set_timeouts(c[0]->t, 0.2, 0), 0);
	ck_assert_int_eq(tide_transport_set_timeouts(c[1]->t, NULL), 0);
	ck_assert_int_eq(set_timeouts(c[2]->t, 30, 0), 0);
	ck_assert_int_eq(tide_transport_set_deadline(c[3]->t, 0), 0);
	ck_assert_int_eq(tide_transport_set_deadline(c[4]->t, tide_loop_time(loop) + 0.2), 0);
	ck_assert_int_eq(tide_transport_set_deadline(c[5]->t, 1e-9), 0);

	RUN_UNTIL(loop, c[5]->lost);
	check_conn(c[5], "ML", -ETIMEDOUT);
	RUN_UNTIL(loop, c[0]->lost && c[4]->lost);
	el = since(t0);
	ck_assert_msg(el >= 0.2, "[%s] cut after %.3f s of 0.2 s", tt_cfg->name, el);
	check_conn(c[0], "ML", -ETIMEDOUT);
	check_conn(c[4], "ML", -ETIMEDOUT);
	/* Past the cleared and lengthened ones' old time, twice over. */
	run_for(loop, 0.5);
	ck_assert_int_eq(c[1]->lost + c[2]->lost + c[3]->lost, 0);

	/* A zeroed struct clears too; a write timeout alone (nothing to send) never fires. */
	ck_assert_int_eq(tide_transport_set_timeouts(c[2]->t, &(struct tide_timeouts){ .size = sizeof(struct tide_timeouts) }),
			 0);
	ck_assert_int_eq(set_timeouts(c[1]->t, 0, 0.1), 0);
	run_for(loop, 0.4);
	ck_assert_int_eq(c[1]->lost + c[2]->lost + c[3]->lost, 0);

	for (int i = 0; i < 6; i++)
		close(cfd[i]);
	RUN_UNTIL(loop, c[1]->lost && c[2]->lost && c[3]->lost);
	check_conn(c[1], "MEL", 0);
	finish_all(loop, sv);
}
END_TEST

/* A deadline ends the connection whatever its traffic. */
START_TEST(test_deadline_despite_traffic)
{
	struct one o;
	uint64_t t0;
	double el;

	one_start(&o);
	t0 = tt_mono_ns();
	o.c->echo = 1;
	ck_assert_int_eq(set_timeouts(o.c->t, 0.2, 0.2), 0);
	ck_assert_int_eq(tide_transport_set_deadline(o.c->t, tide_loop_time(o.loop) + 0.5), 0);
	while (!o.c->lost) {
		ck_assert_msg(since(t0) < TT_HANG_S * slow_factor(), "[%s] no expiry", tt_cfg->name);
		tt_write_all(o.cfd, "x", 1);
		run_for(o.loop, 0.02);
		drain_fd(o.cfd);
	}
	el = since(t0);
	ck_assert_msg(el >= 0.5, "[%s] cut after %.3f s of a 0.5 s deadline", tt_cfg->name, el);
	one_end(&o, "MDL", -ETIMEDOUT);
}
END_TEST

/* ---------------------------------------------------- peers that don't read -- */

/*
 * A peer that never reads: bytes wait, none goes, and the write timeout
 * cuts the connection; its idle timeout alone does the same for a close
 * that would otherwise wait for the flush forever.
 */
START_TEST(test_peer_never_reads)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	struct tide_server *sv = serve(loop, lo4, 1, NULL, &s);
	size_t big = 8 << 20;
	unsigned char *data = pat_buf(1, big);
	int cfd[2];
	uint64_t t0;
	double el;

	for (int i = 0; i < 2; i++) {
		cfd[i] = raw_connect_rcvbuf(AF_INET, tide_server_port(sv), 4096);
		RUN_UNTIL(loop, srv_count(&s, 1, 0) == (size_t)i + 1);
		small_sndbuf(s.conns[i]->t);
	}
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(s.conns[0]->t, big, 0), 0);
	ck_assert_int_eq(set_timeouts(s.conns[0]->t, 0, 0.3), 0);
	ck_assert_int_eq(set_timeouts(s.conns[1]->t, 0.3, 0), 0);
	t0 = tt_mono_ns();
	ck_assert_int_eq(tide_transport_write(s.conns[0]->t, data, big), 0);
	ck_assert_int_eq(tide_transport_write(s.conns[1]->t, data, big), 0);
	tide_transport_close(s.conns[1]->t);
	RUN_UNTIL(loop, s.conns[0]->lost && s.conns[1]->lost);
	el = since(t0);
	ck_assert_msg(el >= 0.3, "[%s] cut after %.3f s of 0.3 s", tt_cfg->name, el);
	check_conn(s.conns[0], "ML", -ETIMEDOUT);
	check_conn(s.conns[1], "ML", -ETIMEDOUT);
	for (int i = 0; i < 2; i++)
		close(cfd[i]);
	free(data);
	finish_all(loop, sv);
}
END_TEST

/* -------------------------------------------------------------- errors -- */

static void check_bad(struct tide_transport *t, double idle, double write)
{
	ck_assert_msg(set_timeouts(t, idle, write) == -EINVAL, "idle %g write %g accepted", idle, write);
}

START_TEST(test_bad_values)
{
	struct one o;
	struct tide_timeouts tiny = { .size = 4, .idle = 0.01 };
	struct tide_datagram_opts dopts = { .size = sizeof(dopts), .local_host = "127.0.0.1" };
	struct conn *dg;

	one_start(&o);
	dg = endpoint(o.loop, &dopts, conn_new());
	check_bad(o.c->t, -1, 0);
	check_bad(o.c->t, 0, -0.5);
	check_bad(o.c->t, NAN, 0);
	check_bad(o.c->t, 0, INFINITY);
	check_bad(o.c->t, 2e10, 0);
	ck_assert_int_eq(tide_transport_set_timeouts(o.c->t, &tiny), -EINVAL);
	ck_assert_int_eq(tide_transport_set_timeouts(NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_transport_set_deadline(o.c->t, -1), -EINVAL);
	ck_assert_int_eq(tide_transport_set_deadline(o.c->t, NAN), -EINVAL);
	ck_assert_int_eq(tide_transport_set_deadline(o.c->t, INFINITY), -EINVAL);
	ck_assert_int_eq(tide_transport_set_deadline(NULL, 1), -EINVAL);
	ck_assert_int_eq(set_timeouts(dg->t, 1, 0), -EOPNOTSUPP);
	ck_assert_int_eq(tide_transport_set_deadline(dg->t, 1), -EOPNOTSUPP);
	/* Nothing was set by the refused calls: the peer stays. */
	run_for(o.loop, 0.1);
	ck_assert_int_eq(o.c->lost, 0);
	/* A timeout set before an abort, then none after it. */
	ck_assert_int_eq(set_timeouts(o.c->t, 0.05, 0), 0);
	tide_transport_ref(o.c->t);
	tide_transport_abort(o.c->t);
	ck_assert_int_eq(set_timeouts(o.c->t, 1, 0), TIDE_ECLOSED);
	ck_assert_int_eq(tide_transport_set_deadline(o.c->t, 1), TIDE_ECLOSED);
	RUN_UNTIL(o.loop, o.c->lost);
	ck_assert_int_eq(set_timeouts(o.c->t, 1, 0), TIDE_ECLOSED);
	tide_transport_unref(o.c->t);
	tide_transport_close(dg->t);
	RUN_UNTIL(o.loop, dg->lost);
	one_end(&o, "ML", 0);
}
END_TEST

/* ----------------------------------------------------------- teardown -- */

/*
 * Connections closed with their timers armed (timeouts, a deadline),
 * the server freed, then the loop closed and freed at once: it frees,
 * and nothing the library allocated is left.
 */
START_TEST(test_free_with_timers_armed)
{
	struct tide_loop *loop;
	struct srv s = { 0 };
	struct tide_server *sv;
	int cfd[8], r;
	bool counting = counting_allocator("test_free_with_timers_armed");

	loop = tt_loop_new();
	sv = serve_clients(loop, &s, cfd, 8);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(set_timeouts(s.conns[i]->t, 60 + i, i % 2 ? 30 : 0), 0);
		if (i % 3 == 0)
			ck_assert_int_eq(tide_transport_set_deadline(s.conns[i]->t, tide_loop_time(loop) + 90), 0);
	}
	spin(loop, 3);
	for (int i = 0; i < 8; i++)
		tide_transport_close(s.conns[i]->t);
	server_end(sv);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	r = tide_loop_free(loop);
	ck_assert_msg(r == 0, "[%s] tide_loop_free: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	for (int i = 0; i < 8; i++) {
		check_conn(s.conns[i], "ML", 0);
		close(cfd[i]);
	}
	conns_free();
	if (counting)
		ck_assert_int_eq(tt_live_allocs(), 0);
}
END_TEST

/* ------------------------------------------------------------ streams -- */

/* What a stream handler saw. */
struct hres {
	int mode;          /* 0: idle timeout, 1: deadline */
	int done;
	int lines;         /* lines read before the error */
	ssize_t rc;        /* the read that ended it */
	int drain, closed; /* tide_stream_drain, tide_stream_wait_closed after it */
	uint64_t t0, t1;   /* timeouts set, read ended */
};

static int64_t timed_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	struct hres *h = arg;
	struct tide_timeouts to = { .size = sizeof(to), .idle = 0.6 };
	char buf[64];
	ssize_t n;

	h->t0 = tt_mono_ns();
	if (h->mode == 0)
		ck_assert_int_eq(tide_stream_set_timeouts(w, &to), 0);
	else
		ck_assert_int_eq(tide_stream_set_deadline(w, tide_loop_time(g_loop) + 0.5), 0);
	while ((n = tide_stream_readline(r, buf, sizeof(buf))) > 0)
		h->lines++;
	h->t1 = tt_mono_ns();
	h->rc = n;
	h->drain = tide_stream_drain(w);
	h->closed = tide_stream_wait_closed(w);
	/* Gone: nothing more to set. */
	h->done = tide_stream_set_timeouts(w, &to) == TIDE_ECLOSED ? 1 : -1;
	return 0;
}

static struct tide_server *stream_serve(struct hres *h, int *port)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct tide_future *f = NULL;
	struct tide_server *sv;

	ck_assert_int_eq(tide_start_server(g_loop, hosts, 1, 0, NULL, timed_handler, h, &f), 0);
	ck_assert_int_eq(tide_await(f), 0);
	sv = tide_future_take_ptr(f);
	tide_future_unref(f);
	*port = tide_server_port(sv);
	return sv;
}

/* The client's pair goes, then the server, once its handler returned. */
static void stream_end(struct tide_stream_reader *r, struct tide_stream_writer *w, struct tide_server *sv)
{
	tide_stream_free(r, w);
	tide_server_close(sv);
	ck_assert_int_eq(tide_server_wait_closed(sv), 0);
	tide_server_free(sv);
}

/*
 * The handler's idle timeout: lines every twelfth of it keep it reading;
 * silence fails its waiting read with -ETIMEDOUT, a timeout after the last
 * line, and drain and wait_closed say the same.
 */
static int64_t stream_idle_main(void *arg)
{
	struct hres h = { .mode = 0 };
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *sv;
	uint64_t last;
	ssize_t n;
	int port;
	char c;

	sv = stream_serve(&h, &port);
	ck_assert_int_eq(tide_open_connection("127.0.0.1", port, &r, &w), 0);
	for (int i = 0; i < 30; i++) {
		last = tt_mono_ns(); /* no later than the line's arrival */
		ck_assert_int_eq(tide_stream_write(w, "x\n", 2), 0);
		ck_assert_int_eq(tide_sleep(0.05), 0);
	}
	while (!h.done)
		ck_assert_int_eq(tide_sleep(0.01), 0);
	ck_assert_int_eq(h.done, 1);
	ck_assert_int_eq(h.lines, 30);
	ck_assert_int_eq(h.rc, -ETIMEDOUT);
	ck_assert_int_eq(h.drain, -ETIMEDOUT);
	ck_assert_int_eq(h.closed, -ETIMEDOUT);
	ck_assert_msg((double)(h.t1 - last) / 1e9 >= 0.6, "[%s] read failed %.3f s after the last line",
		      tt_cfg->name, (double)(h.t1 - last) / 1e9);
	/* The client sees the end. */
	n = tide_stream_read(r, &c, 1);
	ck_assert_msg(n == 0 || n == -ECONNRESET, "[%s] client read %zd", tt_cfg->name, n);
	stream_end(r, w, sv);
	return 0;
}

MAIN_TEST(test_stream_idle, stream_idle_main)

/* The handler's deadline: lines keep coming, the read fails at it all the same. */
static int64_t stream_deadline_main(void *arg)
{
	struct hres h = { .mode = 1 };
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *sv;
	int port;

	sv = stream_serve(&h, &port);
	ck_assert_int_eq(tide_open_connection("127.0.0.1", port, &r, &w), 0);
	while (!h.done) {
		if (!tide_stream_is_closing(w))
			tide_stream_write(w, "x\n", 2);
		ck_assert_int_eq(tide_sleep(0.02), 0);
	}
	ck_assert_int_eq(h.done, 1);
	ck_assert_int_gt(h.lines, 0);
	ck_assert_int_eq(h.rc, -ETIMEDOUT);
	ck_assert_msg((double)(h.t1 - h.t0) / 1e9 >= 0.5, "[%s] read failed %.3f s after a 0.5 s deadline",
		      tt_cfg->name, (double)(h.t1 - h.t0) / 1e9);
	ck_assert_int_eq(tide_stream_set_timeouts(NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_stream_set_deadline(NULL, 1), -EINVAL);
	stream_end(r, w, sv);
	return 0;
}

MAIN_TEST(test_stream_deadline, stream_deadline_main)

int main(void)
{
	const TTest *tests[] = {
		test_idle_traffic_keeps_alive, test_idle_byte_after_sleep, test_change_and_clear,
		test_deadline_despite_traffic, test_peer_never_reads, test_idle_expires, test_bad_values, test_free_with_timers_armed,
		test_stream_idle, test_stream_deadline,
	};

	return net_main("timeouts", 120, tests, NET_COUNT(tests), NULL, 0);
}
