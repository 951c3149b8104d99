/* SPDX-License-Identifier: MIT */
/*
 * conformance/events.c: cases ported from CPython 3.11's
 * Lib/test/test_asyncio/test_events.py (EventLoopTestsMixin,
 * SubprocessTestsMixin, HandleTests, TimerTests) and test_base_events.py
 * (BaseEventLoopTests, BaseEventLoopWithSelectorTests, RunningLoopTests),
 * each named <python module>__<python test> and run on every backend
 * configuration. test/conformance/README.md maps each Python test to its
 * case. The call_soon_threadsafe, run_in_executor_cancel, negative-delay
 * and slow-callback cases of these modules are in asyncio.c.
 *
 * asyncio's add_reader / add_writer have no counterpart in tide: a
 * readiness watch is tide_op_poll, whose future completes once with the
 * revents mask, so the reader and writer cases re-arm it from its done
 * callback as a reader callback that runs again would.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>

#include "../helpers.h"

/* asyncio's test_utils.CLOCK_RES: what a timer may fire early by on a
 * coarse clock. tide promises never early, so the cases assert the delay
 * itself and keep this only where Python's own bound is quoted. */
static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/*
 * Under ThreadSanitizer (make check-tsan) two kinds of case cannot run:
 * its runtime aborts in the child of tide's clone(CLONE_VM) spawn (why
 * test/subprocess is no TSan program), and it defers a signal's handler
 * to the next call it intercepts, which a loop asleep in io_uring_enter
 * (a raw syscall) never makes, so a signal sent to the process while the
 * loop sleeps is never handled there. Those cases are skipped, and said.
 */
#if defined(__SANITIZE_THREAD__)
#define EV_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EV_TSAN 1
#endif
#endif
#ifndef EV_TSAN
#define EV_TSAN 0
#endif

/* Whether ::1 can be bound: Python skips its IPv6 cases without it
 * (socket_helper.IPV6_ENABLED); the all-interfaces servers then have an
 * IPv4 socket only. */
static int g_have_ipv6;

static int probe_ipv6(void)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	return ok;
}

static void stop_cb(void *arg)
{
	tide_loop_stop(arg);
}

static void set_flag_cb(void *arg)
{
	*(int *)arg = 1;
}

/* ---------------------------------------------------- loop run / stop -- */

static struct tide_loop *g_loop;

struct nest {
	int was_running;
	int rc;
};

static int64_t nest_body(void *arg)
{
	struct nest *n = arg;
	struct tide_future *inner;
	int err;

	n->was_running = tide_loop_is_running(g_loop);
	if ((err = tide_future_new(g_loop, &inner)) < 0)
		return err;
	n->rc = tide_loop_run_until_complete(g_loop, inner);
	tide_future_unref(inner);
	return 0;
}

/* test_events.test_run_until_complete_nesting: run_until_complete from
 * inside the running loop is refused (asyncio's RuntimeError). */
START_TEST(test_events__test_run_until_complete_nesting)
{
	struct nest n = {.rc = 1};
	struct tide_future *t;

	g_loop = tt_loop_new();
	ck_assert_int_eq(tide_task_spawn(g_loop, nest_body, &n, NULL, &t), 0);
	tt_run_until_complete(g_loop, t, 0);
	ck_assert_int_eq(n.was_running, 1);
	ck_assert_int_eq(n.rc, TIDE_ERUNNING);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(g_loop), 0);
}
END_TEST

static int64_t sleep_body(void *arg)
{
	return tide_sleep(*(double *)arg);
}

/* test_events.test_run_until_complete: run_until_complete(sleep(0.1))
 * returns once the sleep is over, not before. */
START_TEST(test_events__test_run_until_complete)
{
	struct tide_loop *loop = tt_loop_new();
	double delay = 0.100, t0;
	struct tide_future *t;

	t0 = tide_loop_time(loop);
	ck_assert_int_eq(tide_task_spawn(loop, sleep_body, &delay, NULL, &t), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, t), 0);
	ck_assert(tide_loop_time(loop) - t0 >= delay);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t stop_then_sleep_body(void *arg)
{
	tide_loop_stop(arg);
	return tide_sleep(0.1);
}

/* test_events.test_run_until_complete_stopped: a stop() before the future
 * is done makes run_until_complete fail (TIDE_ESTOPPED for asyncio's
 * RuntimeError); the task is left pending and finishes on a later run. */
START_TEST(test_events__test_run_until_complete_stopped)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	ck_assert_int_eq(tide_task_spawn(loop, stop_then_sleep_body, loop, NULL, &t), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, t), TIDE_ESTOPPED);
	ck_assert_int_eq(tide_future_done(t), 0);
	tt_run_until_complete(loop, t, 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

struct results {
	struct tide_loop *loop;
	const char *got[8];
	double at[8];
	int n;
};

static struct results g_res;

static void results_init(struct tide_loop *loop)
{
	memset(&g_res, 0, sizeof(g_res));
	g_res.loop = loop;
}

static void append_cb(void *arg)
{
	if (g_res.n < 8) {
		g_res.at[g_res.n] = tide_loop_time(g_res.loop);
		g_res.got[g_res.n++] = arg;
	}
}

static void append_stop_cb(void *arg)
{
	append_cb(arg);
	tide_loop_stop(g_res.loop);
}

/* test_events.test_call_later: a call_later(0.1) callback runs with its
 * argument, not before its delay, and its stop() ends run(). */
START_TEST(test_events__test_call_later)
{
	struct tide_loop *loop = tt_loop_new();
	double t0 = tide_loop_time(loop);

	results_init(loop);
	ck_assert_int_eq(tide_call_later(loop, 0.1, append_stop_cb, "hello world", NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(g_res.n, 1);
	ck_assert_str_eq(g_res.got[0], "hello world");
	ck_assert(g_res.at[0] - t0 >= 0.1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

struct pair {
	const char *a, *b;
	const char *got_a, *got_b;
	int calls;
	struct tide_loop *loop;
};

static void pair_cb(void *arg)
{
	struct pair *p = arg;

	p->got_a = p->a;
	p->got_b = p->b;
	p->calls++;
	tide_loop_stop(p->loop);
}

/* test_events.test_call_soon: call_soon(callback, 'hello', 'world') runs
 * once with its arguments (a C callback takes one pointer: a struct). */
START_TEST(test_events__test_call_soon)
{
	struct tide_loop *loop = tt_loop_new();
	struct pair p = {.a = "hello", .b = "world", .loop = loop};

	ck_assert_int_eq(tide_call_soon(loop, pair_cb, &p, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(p.calls, 1);
	ck_assert_str_eq(p.got_a, "hello");
	ck_assert_str_eq(p.got_b, "world");
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

struct job_rec {
	pid_t tid;
	int64_t ret;
};

static int64_t record_job(void *arg)
{
	struct job_rec *j = arg;

	j->tid = my_tid();
	return j->ret;
}

/* test_events.test_run_in_executor: the job runs on another thread and
 * its return value is the future's result. */
START_TEST(test_events__test_run_in_executor)
{
	struct tide_loop *loop = tt_loop_new();
	struct job_rec j = {.ret = 42};
	struct tide_future *f;

	ck_assert_int_eq(tide_run_in_executor(loop, NULL, record_job, &j, &f), 0);
	tt_run_until_complete(loop, f, 0);
	ck_assert_int_eq(tt_result(f), 42);
	ck_assert_int_ne(j.tid, 0);
	ck_assert_int_ne(j.tid, my_tid());
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------- readers and writers -- */

struct reader {
	struct tide_loop *loop;
	int fd;
	struct tide_future *poll;
	char buf[64];
	size_t n;
	int removed;
	int polls;
};

static void reader_arm(struct reader *r);

static void reader_ready(struct tide_future *f, void *arg)
{
	struct reader *r = arg;
	ssize_t got;

	ck_assert_int_eq(tide_future_error(f), 0);
	tide_future_unref(r->poll);
	r->poll = NULL;
	r->polls++;
	got = recv(r->fd, r->buf + r->n, sizeof(r->buf) - r->n, 0);
	if (got < 0) {
		/* Spurious readiness: wait again, as the Python reader does. */
		ck_assert_int_eq(errno, EAGAIN);
		reader_arm(r);
		return;
	}
	if (got > 0) {
		r->n += (size_t)got;
		reader_arm(r);
		return;
	}
	/* EOF: the reader removes itself (it is not re-armed) and closes. */
	r->removed = 1;
	close(r->fd);
	r->fd = -1;
}

static void reader_arm(struct reader *r)
{
	ck_assert_int_eq(tide_op_poll(r->loop, r->fd, POLLIN, &r->poll), 0);
	ck_assert_int_eq(tide_future_add_done_callback(r->poll, reader_ready, r), 0);
}

struct sender {
	int fd;
	const char *data;
};

static void send_cb(void *arg)
{
	struct sender *s = arg;

	if (s->data)
		tt_write_all(s->fd, s->data, strlen(s->data));
	else
		close(s->fd);
}

/* test_events.test_reader_callback: a reader watch on a socket sees each
 * write and the EOF; the bytes come in order and nothing is read twice. */
START_TEST(test_events__test_reader_callback)
{
	struct tide_loop *loop = tt_loop_new();
	struct reader r = {.loop = loop};
	struct sender s1, s2, s3;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	r.fd = sv[0];
	s1 = (struct sender){.fd = sv[1], .data = "abc"};
	s2 = (struct sender){.fd = sv[1], .data = "def"};
	s3 = (struct sender){.fd = sv[1], .data = NULL};
	reader_arm(&r);
	ck_assert_int_eq(tide_call_soon(loop, send_cb, &s1, NULL), 0);
	RUN_UNTIL(loop, r.n >= 3);
	ck_assert_int_eq(tide_call_soon(loop, send_cb, &s2, NULL), 0);
	RUN_UNTIL(loop, r.n >= 6);
	ck_assert_int_eq(tide_call_soon(loop, send_cb, &s3, NULL), 0);
	RUN_UNTIL(loop, r.removed);
	ck_assert_uint_eq(r.n, 6);
	ck_assert_int_eq(memcmp(r.buf, "abcdef", 6), 0);
	ck_assert_ptr_null(r.poll);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

struct writer {
	struct tide_loop *loop;
	int fd;
	char data[1024];
	int calls;
};

static void writer_ready(struct tide_future *f, void *arg)
{
	struct writer *w = arg;

	ck_assert(tide_future_error(f) == 0);
	w->calls++;
	ck_assert_int_eq(send(w->fd, w->data, sizeof(w->data), 0), (ssize_t)sizeof(w->data));
	tide_loop_stop(w->loop);
}

/* test_events.test_writer_callback: a writer watch on a socket with room
 * fires; its callback sends 1 KiB, which the peer reads whole. Once fired
 * the watch is gone (asyncio's remove_writer True then False: a second
 * cancel of the done poll does nothing). */
START_TEST(test_events__test_writer_callback)
{
	struct tide_loop *loop = tt_loop_new();
	struct writer w = {.loop = loop};
	struct tide_future *poll;
	char got[2048];
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	w.fd = sv[1];
	memset(w.data, 'x', sizeof(w.data));
	ck_assert_int_eq(tide_op_poll(loop, w.fd, POLLOUT, &poll), 0);
	ck_assert_int_eq(tide_future_add_done_callback(poll, writer_ready, &w), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(w.calls, 1);
	ck_assert_int_ne(tt_result(poll) & POLLOUT, 0);
	ck_assert_int_eq(tide_future_cancel(poll), 0);
	tide_future_unref(poll);
	close(sv[1]);
	ck_assert_int_eq(recv(sv[0], got, sizeof(got), MSG_WAITALL), (ssize_t)sizeof(w.data));
	ck_assert_int_eq(memcmp(got, w.data, sizeof(w.data)), 0);
	close(sv[0]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* -------------------------------------------------------------- signals -- */

static int g_caught;
static void *g_caught_arg;

static void count_sig_cb(void *arg)
{
	g_caught++;
	g_caught_arg = arg;
}

static void count_sig_stop_cb(void *arg)
{
	g_caught++;
	g_caught_arg = arg;
	tide_loop_stop(g_loop);
}

/* test_events.test_add_signal_handler: bad numbers are refused (-EINVAL
 * for ValueError, and for SIGKILL's RuntimeError), a handler runs when
 * the signal comes, and removing it restores the disposition the program
 * had, then says there is none. */
START_TEST(test_events__test_add_signal_handler)
{
	struct tide_loop *loop = tt_loop_new();
	struct sigaction before, after;

	g_caught = 0;
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, NSIG + 1, count_sig_cb, NULL), -EINVAL);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, NSIG + 1), -EINVAL);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, 0, count_sig_cb, NULL), -EINVAL);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, 0), -EINVAL);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, -1, count_sig_cb, NULL), -EINVAL);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, -1), -EINVAL);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGKILL, count_sig_cb, NULL), -EINVAL);
	/* asyncio's remove_signal_handler(SIGKILL) says False; tide's remove
	 * refuses what add refuses (tide.h), -EINVAL. */
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGKILL), -EINVAL);

	ck_assert_int_eq(sigaction(SIGINT, NULL, &before), 0);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGINT, count_sig_cb, NULL), 0);
	ck_assert_int_eq(kill(getpid(), SIGINT), 0);
	RUN_UNTIL(loop, g_caught);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGINT), 1);
	ck_assert_int_eq(sigaction(SIGINT, NULL, &after), 0);
	ck_assert_ptr_eq((void *)after.sa_handler, (void *)before.sa_handler);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGINT), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static void arm_alarm(double seconds)
{
	struct itimerval it = {
		.it_value = {.tv_sec = (time_t)seconds, .tv_usec = (suseconds_t)((seconds - (time_t)seconds) * 1e6)},
	};

	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
}

/* test_events.test_signal_handling_while_selecting: a signal that arrives
 * while the loop sleeps in the kernel wakes it and its handler runs once. */
START_TEST(test_events__test_signal_handling_while_selecting)
{
	int gave_up = 0;

	g_loop = tt_loop_new();
	g_caught = 0;
	ck_assert_int_eq(tide_loop_add_signal_handler(g_loop, SIGALRM, count_sig_stop_cb, NULL), 0);
	arm_alarm(0.01);
	ck_assert_int_eq(tide_call_later(g_loop, 60, set_flag_cb, &gave_up, NULL), 0);
	ck_assert_int_eq(tide_loop_run(g_loop), 0);
	ck_assert_int_eq(g_caught, 1);
	ck_assert_int_eq(gave_up, 0);
	ck_assert_int_eq(tide_loop_remove_signal_handler(g_loop, SIGALRM), 1);
	ck_assert_int_eq(tide_loop_close(g_loop), 0);
	ck_assert_int_eq(tide_loop_free(g_loop), 0);
}
END_TEST

/* test_events.test_signal_handling_args: the handler gets the argument
 * given with it (asyncio's *args: here the one pointer). */
START_TEST(test_events__test_signal_handling_args)
{
	static int some_args = 42;

	g_loop = tt_loop_new();
	g_caught = 0;
	g_caught_arg = NULL;
	ck_assert_int_eq(tide_loop_add_signal_handler(g_loop, SIGALRM, count_sig_stop_cb, &some_args), 0);
	arm_alarm(0.1);
	ck_assert_int_eq(tide_loop_run(g_loop), 0);
	ck_assert_int_eq(g_caught, 1);
	ck_assert_ptr_eq(g_caught_arg, &some_args);
	ck_assert_int_eq(*(int *)g_caught_arg, 42);
	ck_assert_int_eq(tide_loop_free(g_loop), 0);
}
END_TEST

/* ------------------------------------------------------------ protocols -- */

enum { ST_INITIAL, ST_CONNECTED, ST_EOF, ST_CLOSED };

/* asyncio's test MyProto: counts bytes; a client one sends an HTTP request
 * on connection_made. */
struct myproto {
	struct tide_transport *transport;
	int state;
	size_t nbytes;
	int done;
	int lost_err;
	int client;       /* a datagram client: no echo */
	int http_request; /* send an HTTP request on connection_made */
	int connections;
	char data[256];
};

static void my_made(struct tide_transport *t, void *proto)
{
	struct myproto *p = proto;

	ck_assert_int_eq(p->state, ST_INITIAL);
	p->transport = t;
	p->state = ST_CONNECTED;
	p->connections++;
	if (p->http_request)
		ck_assert_int_eq(tide_transport_write(t, "GET / HTTP/1.0\r\n\r\n", 18), 0);
}

static void my_data(struct tide_transport *t, const void *data, size_t n, void *proto)
{
	struct myproto *p = proto;

	(void)t;
	ck_assert_int_eq(p->state, ST_CONNECTED);
	if (p->nbytes + n <= sizeof(p->data))
		memcpy(p->data + p->nbytes, data, n);
	p->nbytes += n;
}

static int my_eof(struct tide_transport *t, void *proto)
{
	struct myproto *p = proto;

	(void)t;
	ck_assert_int_eq(p->state, ST_CONNECTED);
	p->state = ST_EOF;
	return 0;
}

static void my_lost(struct tide_transport *t, int err, void *proto)
{
	struct myproto *p = proto;

	(void)t;
	ck_assert(p->state == ST_CONNECTED || p->state == ST_EOF);
	p->state = ST_CLOSED;
	p->lost_err = err;
	p->done = 1;
}

static void my_dgram(struct tide_transport *t, const void *data, size_t n, const struct sockaddr *addr,
		     socklen_t addrlen, void *proto)
{
	struct myproto *p = proto;

	if (p->nbytes + n <= sizeof(p->data))
		memcpy(p->data + p->nbytes, data, n);
	p->nbytes += n;
	if (!p->client) {
		/* The Python test's server: send back b'resp:' + data. */
		char out[64];

		ck_assert_uint_le(n + 5, sizeof(out));
		memcpy(out, "resp:", 5);
		memcpy(out + 5, data, n);
		ck_assert_int_eq(tide_transport_sendto(t, out, n + 5, addr, addrlen), 0);
	}
}

static const struct tide_protocol_ops my_ops = {
	.size = sizeof(my_ops),
	.connection_made = my_made,
	.data_received = my_data,
	.eof_received = my_eof,
	.connection_lost = my_lost,
	.datagram_received = my_dgram,
};

static int my_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	*ops = &my_ops;
	*proto = arg;
	return 0;
}

/* The server side of create_connection's tests (asyncio's
 * run_test_server, a small HTTP server): answers each request, then
 * closes. */
static void http_data(struct tide_transport *t, const void *data, size_t n, void *proto)
{
	static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";

	(void)data;
	(void)n;
	(void)proto;
	if (!tide_transport_is_closing(t)) {
		ck_assert_int_eq(tide_transport_write(t, reply, sizeof(reply) - 1), 0);
		tide_transport_close(t);
	}
}

static const struct tide_protocol_ops http_ops = {.size = sizeof(http_ops), .data_received = http_data};

static int http_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	(void)arg;
	*ops = &http_ops;
	*proto = NULL;
	return 0;
}

static struct tide_server *start_server(struct tide_loop *loop, const char *host, tide_protocol_factory_cb factory,
					void *arg, const struct tide_server_opts *opts)
{
	const char *hosts[] = {host};
	struct tide_future *f;
	struct tide_server *s;

	ck_assert_int_eq(tide_create_server(loop, hosts, 1, 0, opts, factory, arg, &f), 0);
	tt_run_until_complete(loop, f, 0);
	s = tide_future_take_ptr(f);
	ck_assert_ptr_nonnull(s);
	tide_future_unref(f);
	return s;
}

static void unix_path(char *out, size_t cap, char *dir, size_t dircap)
{
	ck_assert_uint_ge(dircap, sizeof("/tmp/tide-events-XXXXXX"));
	strcpy(dir, "/tmp/tide-events-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_lt(snprintf(out, cap, "%s/sock", dir), (int)cap);
}

static void unix_cleanup(const char *path, const char *dir)
{
	unlink(path);
	rmdir(dir);
}

static void finish_server(struct tide_loop *loop, struct tide_server *s)
{
	tide_server_free(s);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
}

static void check_client_connection(struct tide_loop *loop, struct tide_future *cf, struct myproto *p,
				    int check_sockname)
{
	struct tide_transport *t;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	tt_run_until_complete(loop, cf, 0);
	t = tide_future_take_ptr(cf);
	tide_future_unref(cf);
	ck_assert_ptr_nonnull(t);
	ck_assert_ptr_eq(p->transport, t);
	ck_assert_ptr_eq(tide_transport_get_protocol(t), p);
	if (check_sockname)
		ck_assert_int_eq(tide_transport_get_extra_info(t, "sockname", &ss, &len), 0);
	RUN_UNTIL(loop, p->done);
	ck_assert_uint_gt(p->nbytes, 0);
	ck_assert_int_eq(memcmp(p->data, "HTTP/1.0 200 OK", 15), 0);
	tide_transport_close(t);
	tide_transport_unref(t);
}

/* test_events.test_create_connection: the transport and protocol are
 * linked, sockname is known, and the server's answer arrives. */
START_TEST(test_events__test_create_connection)
{
	struct tide_loop *loop = tt_loop_new();
	struct myproto p = {.http_request = 1};
	struct tide_server *s = start_server(loop, "127.0.0.1", http_factory, NULL, NULL);
	struct tide_future *cf;

	ck_assert_int_eq(tide_create_connection(loop, "127.0.0.1", tide_server_port(s), &my_ops, &p, &cf), 0);
	check_client_connection(loop, cf, &p, 1);
	finish_server(loop, s);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_events.test_create_unix_connection: the same over a unix socket
 * (sockname not checked, as in Python: a client's is unnamed). */
START_TEST(test_events__test_create_unix_connection)
{
	struct tide_loop *loop = tt_loop_new();
	struct myproto p = {.http_request = 1};
	struct tide_future *sf, *cf;
	struct tide_server *s;
	char path[108], dir[64];

	unix_path(path, sizeof(path), dir, sizeof(dir));
	ck_assert_int_eq(tide_create_unix_server(loop, path, NULL, http_factory, NULL, &sf), 0);
	tt_run_until_complete(loop, sf, 0);
	s = tide_future_take_ptr(sf);
	tide_future_unref(sf);
	ck_assert_int_eq(tide_create_unix_connection(loop, path, &my_ops, &p, &cf), 0);
	check_client_connection(loop, cf, &p, 0);
	finish_server(loop, s);
	unix_cleanup(path, dir);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int tcp_client(int family, const char *host, int port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		ck_assert_int_eq(inet_pton(AF_INET, host, &sin->sin_addr), 1);
		len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		ck_assert_int_eq(inet_pton(AF_INET6, host, &sin6->sin6_addr), 1);
		len = sizeof(*sin6);
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void check_server_conn(struct tide_loop *loop, struct myproto *p, int client)
{
	RUN_UNTIL(loop, p->state == ST_CONNECTED);
	tt_write_all(client, "xxx", 3);
	RUN_UNTIL(loop, p->nbytes >= 3);
	ck_assert_uint_eq(p->nbytes, 3);
	tide_transport_close(p->transport);
	RUN_UNTIL(loop, p->done);
	ck_assert_int_eq(p->state, ST_CLOSED);
	close(client);
}

/* test_events.test_create_server: one listening socket on the host asked
 * for; an accepted connection gets its bytes, knows its sockname and its
 * peer 127.0.0.1, and closes cleanly. (Bound to 127.0.0.1 where Python
 * binds 0.0.0.0: the tests stay on loopback.) */
START_TEST(test_events__test_create_server)
{
	struct tide_loop *loop = tt_loop_new();
	struct myproto p = {0};
	struct tide_server *s = start_server(loop, "127.0.0.1", my_factory, &p, NULL);
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char host[INET_ADDRSTRLEN];
	int fds[4], client;

	ck_assert_uint_eq(tide_server_sockets(s, fds, 4), 1);
	ck_assert_int_eq(getsockname(fds[0], (struct sockaddr *)&sin, &len), 0);
	ck_assert_str_eq(inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host)), "127.0.0.1");
	client = tcp_client(AF_INET, "127.0.0.1", ntohs(sin.sin_port));
	ck_assert_int_ge(client, 0);
	RUN_UNTIL(loop, p.state == ST_CONNECTED);
	tt_write_all(client, "xxx", 3);
	RUN_UNTIL(loop, p.nbytes >= 3);
	ck_assert_uint_eq(p.nbytes, 3);
	len = sizeof(sin);
	ck_assert_int_eq(tide_transport_get_extra_info(p.transport, "sockname", &sin, &len), 0);
	len = sizeof(sin);
	ck_assert_int_eq(tide_transport_get_extra_info(p.transport, "peername", &sin, &len), 0);
	ck_assert_str_eq(inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host)), "127.0.0.1");
	tide_transport_close(p.transport);
	RUN_UNTIL(loop, p.done);
	ck_assert_int_eq(p.state, ST_CLOSED);
	ck_assert_int_eq(p.lost_err, 0);
	close(client);
	finish_server(loop, s);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int sockopt_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	ck_assert_int_eq(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

/* test_events.test_create_server_reuse_port: SO_REUSEPORT is off by
 * default and on with reuse_port. */
START_TEST(test_events__test_create_server_reuse_port)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_server_opts opts = {.size = sizeof(opts), .reuse_port = 1};
	struct myproto p = {0};
	struct tide_server *s;
	int fds[4];

	s = start_server(loop, "127.0.0.1", my_factory, &p, NULL);
	ck_assert_uint_eq(tide_server_sockets(s, fds, 4), 1);
	ck_assert_int_eq(sockopt_int(fds[0], SOL_SOCKET, SO_REUSEPORT), 0);
	tide_server_free(s);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);

	s = start_server(loop, "127.0.0.1", my_factory, &p, &opts);
	ck_assert_uint_eq(tide_server_sockets(s, fds, 4), 1);
	ck_assert_int_ne(sockopt_int(fds[0], SOL_SOCKET, SO_REUSEPORT), 0);
	finish_server(loop, s);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_events.test_create_unix_server: as test_create_server over a unix
 * socket. */
START_TEST(test_events__test_create_unix_server)
{
	struct tide_loop *loop = tt_loop_new();
	struct myproto p = {0};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct tide_future *sf;
	struct tide_server *s;
	char path[108], dir[64];
	int fds[4], client;

	unix_path(path, sizeof(path), dir, sizeof(dir));
	ck_assert_int_eq(tide_create_unix_server(loop, path, NULL, my_factory, &p, &sf), 0);
	tt_run_until_complete(loop, sf, 0);
	s = tide_future_take_ptr(sf);
	tide_future_unref(sf);
	ck_assert_uint_eq(tide_server_sockets(s, fds, 4), 1);
	strcpy(sun.sun_path, path);
	client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(client, 0);
	ck_assert_int_eq(connect(client, (struct sockaddr *)&sun, sizeof(sun)), 0);
	check_server_conn(loop, &p, client);
	finish_server(loop, s);
	unix_cleanup(path, dir);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_events.test_create_server_addr_in_use: a second server on the
 * address and port of a listening one fails with EADDRINUSE. */
START_TEST(test_events__test_create_server_addr_in_use)
{
	struct tide_loop *loop = tt_loop_new();
	static const char *const hosts[] = {"127.0.0.1"};
	struct tide_server *s = start_server(loop, "127.0.0.1", my_factory, NULL, NULL);
	struct tide_future *f = NULL;
	int rc;

	rc = tide_create_server(loop, hosts, 1, tide_server_port(s), NULL, my_factory, NULL, &f);
	if (rc == 0) {
		tt_run_until_complete(loop, f, -EADDRINUSE);
		tide_future_unref(f);
	} else {
		ck_assert_int_eq(rc, -EADDRINUSE);
	}
	finish_server(loop, s);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int factory_count(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	struct myproto *p = arg;

	*ops = &my_ops;
	/* Each connection its own protocol, from the array arg points to. */
	*proto = &p[p[0].connections < 1 ? 0 : 1];
	return 0;
}

/* test_events.test_create_server_dual_stack: a server on every interface
 * (hosts NULL) listens on IPv4 and IPv6 at one port, and takes a client
 * of each over loopback. */
START_TEST(test_events__test_create_server_dual_stack)
{
	struct tide_loop *loop = tt_loop_new();
	struct myproto p[2] = {{0}};
	struct tide_future *f;
	struct tide_server *s;
	int fds[4], c4, c6, port, i;
	size_t n;

	ck_assert_int_eq(tide_create_server(loop, NULL, 0, 0, NULL, factory_count, p, &f), 0);
	tt_run_until_complete(loop, f, 0);
	s = tide_future_take_ptr(f);
	tide_future_unref(f);
	n = tide_server_sockets(s, fds, 4);
	ck_assert_uint_eq(n, 2);
	port = tide_server_port(s);
	for (i = 0; i < 2; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		ck_assert_int_eq(getsockname(fds[i], (struct sockaddr *)&ss, &len), 0);
		ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), port);
	}
	c4 = tcp_client(AF_INET, "127.0.0.1", port);
	ck_assert_int_ge(c4, 0);
	RUN_UNTIL(loop, p[0].state == ST_CONNECTED);
	c6 = tcp_client(AF_INET6, "::1", port);
	ck_assert_int_ge(c6, 0);
	RUN_UNTIL(loop, p[1].state == ST_CONNECTED);
	close(c4);
	close(c6);
	RUN_UNTIL(loop, p[0].done && p[1].done);
	finish_server(loop, s);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_events.test_create_server_multiple_hosts_ipv4: one listening
 * socket per distinct host (a host given twice is served once), all on
 * the one port. */
START_TEST(test_events__test_create_server_multiple_hosts_ipv4)
{
	struct tide_loop *loop = tt_loop_new();
	static const char *const hosts[] = {"127.0.0.1", "127.0.0.2", "127.0.0.1"};
	struct tide_future *f;
	struct tide_server *s;
	int fds[4], seen1 = 0, seen2 = 0;
	size_t n, i;

	ck_assert_int_eq(tide_create_server(loop, hosts, 3, 0, NULL, my_factory, NULL, &f), 0);
	tt_run_until_complete(loop, f, 0);
	s = tide_future_take_ptr(f);
	tide_future_unref(f);
	n = tide_server_sockets(s, fds, 4);
	ck_assert_uint_eq(n, 2);
	for (i = 0; i < n; i++) {
		struct sockaddr_in sin;
		socklen_t len = sizeof(sin);
		char host[INET_ADDRSTRLEN];

		ck_assert_int_eq(getsockname(fds[i], (struct sockaddr *)&sin, &len), 0);
		ck_assert_int_eq(ntohs(sin.sin_port), tide_server_port(s));
		inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host));
		seen1 += !strcmp(host, "127.0.0.1");
		seen2 += !strcmp(host, "127.0.0.2");
	}
	ck_assert_int_eq(seen1, 1);
	ck_assert_int_eq(seen2, 1);
	finish_server(loop, s);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_events.test_server_close: once the server is closed, a new
 * connection is refused (ECONNREFUSED) at once. */
START_TEST(test_events__test_server_close)
{
	struct tide_loop *loop = tt_loop_new();
	struct myproto p = {0};
	struct tide_server *s = start_server(loop, "127.0.0.1", my_factory, &p, NULL);
	int port = tide_server_port(s), client;

	client = tcp_client(AF_INET, "127.0.0.1", port);
	ck_assert_int_ge(client, 0);
	tt_write_all(client, "xxx", 3);
	close(client);
	tide_server_close(s);
	ck_assert_int_eq(tide_server_is_serving(s), 0);
	ck_assert_int_eq(tcp_client(AF_INET, "127.0.0.1", port), -ECONNREFUSED);
	if (p.transport)
		RUN_UNTIL(loop, p.done);
	finish_server(loop, s);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_events.test_create_datagram_endpoint(_ipv6): a bound endpoint
 * echoes "resp:" + data to a connected one: 3 bytes one way, 8 back;
 * closing the client ends it with connection_lost. */
static void datagram_case(const char *host, int family)
{
	struct tide_loop *loop = tt_loop_new();
	struct myproto server = {0}, client = {.client = 1};
	struct tide_datagram_opts sopts = {.size = sizeof(sopts), .local_host = host, .family = family};
	struct tide_datagram_opts copts = {.size = sizeof(copts), .remote_host = host};
	struct tide_transport *st, *ct;
	struct tide_future *f;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char nhost[NI_MAXHOST], nserv[NI_MAXSERV];

	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &sopts, &my_ops, &server, &f), 0);
	tt_run_until_complete(loop, f, 0);
	st = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_ptr_eq(server.transport, st);
	ck_assert_int_eq(server.state, ST_CONNECTED);
	ck_assert_int_eq(tide_transport_get_extra_info(st, "sockname", &ss, &len), 0);
	ck_assert_int_eq(ss.ss_family, family);
	ck_assert_int_eq(getnameinfo((struct sockaddr *)&ss, len, nhost, sizeof(nhost), nserv, sizeof(nserv),
				     NI_NUMERICHOST | NI_NUMERICSERV), 0);
	ck_assert_str_eq(nhost, host);

	copts.remote_port = atoi(nserv);
	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &copts, &my_ops, &client, &f), 0);
	tt_run_until_complete(loop, f, 0);
	ct = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_ptr_eq(client.transport, ct);

	ck_assert_int_eq(tide_transport_sendto(ct, "xxx", 3, NULL, 0), 0);
	RUN_UNTIL(loop, server.nbytes);
	ck_assert_uint_eq(server.nbytes, 3);
	RUN_UNTIL(loop, client.nbytes);
	ck_assert_uint_eq(client.nbytes, 8);
	ck_assert_int_eq(memcmp(client.data, "resp:xxx", 8), 0);
	len = sizeof(ss);
	ck_assert_int_eq(tide_transport_get_extra_info(ct, "sockname", &ss, &len), 0);

	tide_transport_close(ct);
	RUN_UNTIL(loop, client.done);
	ck_assert_int_eq(client.state, ST_CLOSED);
	tide_transport_close(st);
	RUN_UNTIL(loop, server.done);
	tide_transport_unref(ct);
	tide_transport_unref(st);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

START_TEST(test_events__test_create_datagram_endpoint)
{
	datagram_case("127.0.0.1", AF_INET);
}
END_TEST

START_TEST(test_events__test_create_datagram_endpoint_ipv6)
{
	datagram_case("::1", AF_INET6);
}
END_TEST

/* ---------------------------------------------------------------- pipes -- */

/* asyncio's MyReadPipeProto / MyWritePipeProto keep a state list. */
struct pipeproto {
	struct tide_transport *transport;
	int states[4];
	int nstates;
	size_t nbytes;
	int done;
	int lost_err;
};

static void pipe_made(struct tide_transport *t, void *proto)
{
	struct pipeproto *p = proto;

	p->transport = t;
	p->states[p->nstates++] = ST_CONNECTED;
}

static void pipe_data(struct tide_transport *t, const void *data, size_t n, void *proto)
{
	struct pipeproto *p = proto;

	(void)t;
	(void)data;
	p->nbytes += n;
}

static int pipe_eof(struct tide_transport *t, void *proto)
{
	struct pipeproto *p = proto;

	(void)t;
	p->states[p->nstates++] = ST_EOF;
	return 0;
}

static void pipe_lost(struct tide_transport *t, int err, void *proto)
{
	struct pipeproto *p = proto;

	(void)t;
	p->states[p->nstates++] = ST_CLOSED;
	p->lost_err = err;
	p->done = 1;
}

static const struct tide_protocol_ops pipe_ops = {
	.size = sizeof(pipe_ops),
	.connection_made = pipe_made,
	.data_received = pipe_data,
	.eof_received = pipe_eof,
	.connection_lost = pipe_lost,
};

static struct tide_transport *connect_pipe(struct tide_loop *loop, int fd, int write, struct pipeproto *p)
{
	struct tide_transport *t;
	struct tide_future *f;

	if (write)
		ck_assert_int_eq(tide_connect_write_pipe(loop, fd, &pipe_ops, p, &f), 0);
	else
		ck_assert_int_eq(tide_connect_read_pipe(loop, fd, &pipe_ops, p, &f), 0);
	tt_run_until_complete(loop, f, 0);
	t = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_ptr_eq(p->transport, t);
	ck_assert_int_eq(p->nstates, 1);
	ck_assert_int_eq(p->states[0], ST_CONNECTED);
	return t;
}

/* test_events.test_read_pipe: a read pipe transport delivers each write
 * and ends with eof_received then connection_lost once the writer closes;
 * get_extra_info("pipe") answers. */
START_TEST(test_events__test_read_pipe)
{
	struct tide_loop *loop = tt_loop_new();
	struct pipeproto p = {0};
	struct tide_transport *t;
	socklen_t len = sizeof(int);
	int fds[2], pipefd = -1;

	tt_pipe(fds, 0);
	t = connect_pipe(loop, fds[0], 0, &p);
	ck_assert_uint_eq(p.nbytes, 0);
	tt_write_all(fds[1], "1", 1);
	RUN_UNTIL(loop, p.nbytes >= 1);
	ck_assert_uint_eq(p.nbytes, 1);
	tt_write_all(fds[1], "2345", 4);
	RUN_UNTIL(loop, p.nbytes >= 5);
	ck_assert_uint_eq(p.nbytes, 5);
	ck_assert_int_eq(p.nstates, 1);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "pipe", &pipefd, &len), 0);
	ck_assert_int_eq(pipefd, fds[0]);
	close(fds[1]);
	RUN_UNTIL(loop, p.done);
	ck_assert_int_eq(p.nstates, 3);
	ck_assert_int_eq(p.states[1], ST_EOF);
	ck_assert_int_eq(p.states[2], ST_CLOSED);
	ck_assert_int_eq(p.lost_err, 0);
	tide_transport_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static size_t read_some(int fd, char *buf, size_t have, size_t cap)
{
	ssize_t n = read(fd, buf + have, cap - have);

	if (n < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		return have;
	}
	return have + (size_t)n;
}

/* test_events.test_write_pipe: a write pipe transport's writes reach the
 * reading end in order; close ends it with connection_lost. */
START_TEST(test_events__test_write_pipe)
{
	struct tide_loop *loop = tt_loop_new();
	struct pipeproto p = {0};
	struct tide_transport *t;
	socklen_t len = sizeof(int);
	char data[16];
	size_t n = 0;
	int fds[2], pipefd = -1;

	tt_pipe(fds, O_NONBLOCK);
	t = connect_pipe(loop, fds[1], 1, &p);
	ck_assert_int_eq(tide_transport_write(t, "1", 1), 0);
	RUN_UNTIL(loop, (n = read_some(fds[0], data, n, sizeof(data))) >= 1);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(tide_transport_write(t, "2345", 4), 0);
	RUN_UNTIL(loop, (n = read_some(fds[0], data, n, sizeof(data))) >= 5);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(memcmp(data, "12345", 5), 0);
	ck_assert_int_eq(p.nstates, 1);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "pipe", &pipefd, &len), 0);
	ck_assert_int_eq(pipefd, fds[1]);
	tide_transport_close(t);
	RUN_UNTIL(loop, p.done);
	ck_assert_int_eq(p.states[p.nstates - 1], ST_CLOSED);
	ck_assert_int_eq(p.lost_err, 0);
	close(fds[0]);
	tide_transport_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_events.test_write_pipe_disconnect_on_close: a write pipe
 * transport over a socket ends (connection_lost) when the reading side
 * is closed, with nothing left to write. Python checks only the CLOSED
 * state; tide says -EPIPE where asyncio passes None (tide.h). */
START_TEST(test_events__test_write_pipe_disconnect_on_close)
{
	struct tide_loop *loop = tt_loop_new();
	struct pipeproto p = {0};
	struct tide_transport *t;
	struct tide_future *rf;
	char buf[16];
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	t = connect_pipe(loop, sv[1], 1, &p);
	ck_assert_int_eq(tide_transport_write(t, "1", 1), 0);
	ck_assert_int_eq(tide_op_recv(loop, sv[0], buf, sizeof(buf), 0, &rf), 0);
	tt_run_until_complete(loop, rf, 0);
	ck_assert_int_eq(tt_result(rf), 1);
	ck_assert_int_eq(buf[0], '1');
	tide_future_unref(rf);
	close(sv[0]);
	RUN_UNTIL(loop, p.done);
	ck_assert_int_eq(p.states[p.nstates - 1], ST_CLOSED);
	ck_assert_int_eq(p.lost_err, -EPIPE);
	tide_transport_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* --------------------------------------------------------- cancellation -- */

struct prompt {
	int fd;
	struct tide_future *f;
	int res;
	struct tide_loop *loop;
};

static int64_t recv_body(void *arg)
{
	struct prompt *pr = arg;
	char c;

	return tide_recv(pr->fd, &c, 1, 0);
}

static void cancel_cb(void *arg)
{
	tide_future_cancel(arg);
}

static int64_t prompt_main(void *arg)
{
	struct prompt *pr = arg;
	int64_t r;

	ck_assert_int_eq(tide_call_soon(pr->loop, cancel_cb, pr->f, NULL), 0);
	r = tide_await(pr->f);
	pr->res = (int)r;
	tide_loop_stop(pr->loop);
	return 0;
}

/* test_events.test_prompt_cancellation: a task waiting in a receive that
 * will never complete is cancelled promptly: awaiting it gives
 * CancelledError (-ECANCELED) and the task is cancelled. */
START_TEST(test_events__test_prompt_cancellation)
{
	struct tide_loop *loop = tt_loop_new();
	struct prompt pr = {.loop = loop, .res = 1};
	struct tide_future *t;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	pr.fd = sv[0];
	ck_assert_int_eq(tide_task_spawn(loop, recv_body, &pr, NULL, &pr.f), 0);
	ck_assert_int_eq(tide_task_spawn(loop, prompt_main, &pr, NULL, &t), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(pr.res, -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(pr.f), 1);
	ck_assert_int_eq(tide_future_result(pr.f, NULL, NULL), -ECANCELED);
	tt_run_until_complete(loop, t, 0);
	tide_future_unref(t);
	tide_future_unref(pr.f);
	close(sv[0]);
	close(sv[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t rounding_body(void *arg)
{
	static const double delays[] = {1e-2, 1e-4, 1e-6, 1e-8, 1e-10};
	struct tide_loop *loop = arg;
	size_t i;

	for (i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
		double t0 = tide_loop_time(loop);
		int err = tide_sleep(delays[i]);
		if (err)
			return err;
		ck_assert(tide_loop_time(loop) - t0 >= delays[i]);
	}
	return 0;
}

/* test_events.test_timeout_rounding: sleeps of 10 ms down to 0.1 ns take
 * few iterations (asyncio: at most 20), a short timer's wait not being
 * rounded down to a busy loop; and none ends before its delay. */
START_TEST(test_events__test_timeout_rounding)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats st0 = {.size = sizeof(st0)}, st1 = {.size = sizeof(st1)};
	struct tide_future *t;

	tt_stats(loop, &st0);
	ck_assert_int_eq(tide_task_spawn(loop, rounding_body, loop, NULL, &t), 0);
	tt_run_until_complete(loop, t, 0);
	tt_stats(loop, &st1);
	ck_assert_uint_le(st1.iterations - st0.iterations, 20);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ---------------------------------------------------------------- close -- */

/* test_events.test_remove_fds_after_closing: watches left on a closed
 * loop can still be removed (asyncio's remove_reader is False: here the
 * poll futures are cancelled or done, and free succeeds). */
START_TEST(test_events__test_remove_fds_after_closing)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *pr, *pw;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(tide_op_poll(loop, sv[0], POLLIN, &pr), 0);
	ck_assert_int_eq(tide_op_poll(loop, sv[1], POLLIN, &pw), 0);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_ge(tide_future_cancel(pr), 0);
	ck_assert_int_ge(tide_future_cancel(pw), 0);
	tide_future_unref(pr);
	tide_future_unref(pw);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* test_events.test_add_fds_after_closing: a closed loop refuses new
 * watches (RuntimeError: TIDE_ECLOSED). */
START_TEST(test_events__test_add_fds_after_closing)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = NULL;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_op_poll(loop, sv[0], POLLIN, &f), TIDE_ECLOSED);
	ck_assert_int_eq(tide_op_poll(loop, sv[1], POLLOUT, &f), TIDE_ECLOSED);
	ck_assert_ptr_null(f);
	close(sv[0]);
	close(sv[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int64_t close_loop_body(void *arg)
{
	return tide_loop_close(arg);
}

/* test_events.test_close_running_event_loop: close() from inside the
 * running loop is refused (RuntimeError: TIDE_ERUNNING), and the loop
 * stays open. */
START_TEST(test_events__test_close_running_event_loop)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	ck_assert_int_eq(tide_task_spawn(loop, close_loop_body, loop, NULL, &t), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, t), TIDE_ERUNNING);
	ck_assert_int_eq(tide_loop_is_closed(loop), 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static void nop_cb(void *arg)
{
	(void)arg;
}

static int64_t nop_body(void *arg)
{
	(void)arg;
	return 0;
}

static int64_t nop_job(void *arg)
{
	(void)arg;
	return 0;
}

/* test_events.test_close: every way to give a closed loop work is refused
 * (RuntimeError: TIDE_ECLOSED): run, run_until_complete, call_soon,
 * call_soon_threadsafe, call_later, call_at, a task, a signal handler,
 * run_in_executor. */
START_TEST(test_events__test_close)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *fut, *f = NULL;

	ck_assert_int_eq(tide_future_new(loop, &fut), 0);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_loop_run(loop), TIDE_ECLOSED);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, fut), TIDE_ECLOSED);
	ck_assert_int_eq(tide_call_soon(loop, nop_cb, NULL, NULL), TIDE_ECLOSED);
	ck_assert_int_eq(tide_call_soon_threadsafe(loop, nop_cb, NULL), TIDE_ECLOSED);
	ck_assert_int_eq(tide_call_later(loop, 1.0, nop_cb, NULL, NULL), TIDE_ECLOSED);
	ck_assert_int_eq(tide_call_at(loop, tide_loop_time(loop), nop_cb, NULL, NULL), TIDE_ECLOSED);
	ck_assert_int_eq(tide_task_spawn(loop, nop_body, NULL, NULL, &f), TIDE_ECLOSED);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGTERM, nop_cb, NULL), TIDE_ECLOSED);
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, nop_job, NULL, &f), TIDE_ECLOSED);
	ck_assert_ptr_null(f);
	tide_future_unref(fut);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ---------------------------------------------------------- subprocess -- */

/* asyncio's MySubprocessProtocol: what each pipe received, when each
 * closed, the exit, and the end. */
struct subproto {
	struct tide_subprocess_transport *t;
	char data[3][256];
	size_t n[3];
	int disconnects[3];
	int exited;
	int completed;
	int connected;
};

static void sp_made(struct tide_subprocess_transport *t, void *proto)
{
	struct subproto *p = proto;

	p->t = t;
	p->connected = 1;
}

static void sp_data(struct tide_subprocess_transport *t, int fd, const void *data, size_t n, void *proto)
{
	struct subproto *p = proto;

	(void)t;
	ck_assert(fd == 1 || fd == 2);
	if (p->n[fd] + n <= sizeof(p->data[fd]))
		memcpy(p->data[fd] + p->n[fd], data, n);
	p->n[fd] += n;
}

static void sp_pipe_lost(struct tide_subprocess_transport *t, int fd, int err, void *proto)
{
	struct subproto *p = proto;

	(void)t;
	(void)err;
	p->disconnects[fd] = 1;
}

static void sp_exited(struct tide_subprocess_transport *t, void *proto)
{
	struct subproto *p = proto;

	(void)t;
	p->exited = 1;
}

static void sp_lost(struct tide_subprocess_transport *t, int err, void *proto)
{
	struct subproto *p = proto;

	(void)t;
	(void)err;
	p->completed = 1;
}

static const struct tide_subprocess_protocol_ops sp_ops = {
	.size = sizeof(sp_ops),
	.connection_made = sp_made,
	.pipe_data_received = sp_data,
	.pipe_connection_lost = sp_pipe_lost,
	.process_exited = sp_exited,
	.connection_lost = sp_lost,
};

static struct tide_subprocess_transport *spawn(struct tide_loop *loop, const char *const *argv, const char *cmd,
					       const struct tide_subprocess_opts *opts, struct subproto *p)
{
	struct tide_subprocess_transport *t;
	struct tide_future *f;

	if (argv)
		ck_assert_int_eq(tide_subprocess_exec(loop, &sp_ops, p, argv, opts, &f), 0);
	else
		ck_assert_int_eq(tide_subprocess_shell(loop, &sp_ops, p, cmd, opts, &f), 0);
	tt_run_until_complete(loop, f, 0);
	t = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(p->connected, 1);
	return t;
}

static const struct tide_subprocess_opts pipes_opts = {
	.size = sizeof(pipes_opts),
	.stdio = {{.mode = TIDE_STDIO_PIPE}, {.mode = TIDE_STDIO_PIPE}, {.mode = TIDE_STDIO_PIPE}},
};

static int finish_subprocess(struct tide_loop *loop, struct tide_subprocess_transport *t, struct subproto *p)
{
	int code = 0;

	RUN_UNTIL(loop, p->completed);
	ck_assert_int_eq(tide_subprocess_transport_get_returncode(t, &code), 1);
	tide_subprocess_transport_close(t);
	tide_subprocess_transport_unref(t);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	return code;
}

/* test_events.test_subprocess_exec: what is written to the child's stdin
 * comes back on its stdout (the Python test's echo.py is cat here);
 * closing stdin ends it with code 0. */
START_TEST(test_events__test_subprocess_exec)
{
	static const char *const argv[] = {"cat", NULL};
	struct tide_loop *loop = tt_loop_new();
	struct subproto p = {0};
	struct tide_subprocess_transport *t = spawn(loop, argv, NULL, &pipes_opts, &p);
	struct tide_transport *in = tide_subprocess_transport_get_pipe_transport(t, 0);

	ck_assert_ptr_nonnull(in);
	ck_assert_int_eq(tide_transport_write(in, "Python The Winner", 17), 0);
	RUN_UNTIL(loop, p.n[1] >= 17);
	ck_assert_int_eq(memcmp(p.data[1], "Python The Winner", 17), 0);
	tide_transport_close(in);
	ck_assert_int_eq(finish_subprocess(loop, t, &p), 0);
	ck_assert_uint_eq(p.n[1], 17);
}
END_TEST

/* test_events.test_subprocess_interactive: several rounds of write then
 * read over the same pipes. */
START_TEST(test_events__test_subprocess_interactive)
{
	static const char *const argv[] = {"cat", NULL};
	struct tide_loop *loop = tt_loop_new();
	struct subproto p = {0};
	struct tide_subprocess_transport *t = spawn(loop, argv, NULL, &pipes_opts, &p);
	struct tide_transport *in = tide_subprocess_transport_get_pipe_transport(t, 0);

	ck_assert_int_eq(tide_transport_write(in, "Python ", 7), 0);
	RUN_UNTIL(loop, p.n[1] >= 7);
	ck_assert_int_eq(memcmp(p.data[1], "Python ", 7), 0);
	ck_assert_int_eq(tide_transport_write(in, "The Winner", 10), 0);
	RUN_UNTIL(loop, p.n[1] >= 17);
	ck_assert_int_eq(memcmp(p.data[1], "Python The Winner", 17), 0);
	tide_transport_close(in);
	ck_assert_int_eq(finish_subprocess(loop, t, &p), 0);
}
END_TEST

/* test_events.test_subprocess_shell: a shell command's output arrives on
 * its stdout pipe, and it exits with 0. */
START_TEST(test_events__test_subprocess_shell)
{
	struct tide_loop *loop = tt_loop_new();
	struct subproto p = {0};
	struct tide_subprocess_transport *t = spawn(loop, NULL, "echo Python", &pipes_opts, &p);

	tide_transport_close(tide_subprocess_transport_get_pipe_transport(t, 0));
	ck_assert_int_eq(finish_subprocess(loop, t, &p), 0);
	ck_assert_uint_eq(p.n[1], 7);
	ck_assert_int_eq(memcmp(p.data[1], "Python\n", 7), 0);
	ck_assert_uint_eq(p.n[2], 0);
}
END_TEST

/* test_events.test_subprocess_exitcode: the child's exit status is the
 * return code. */
START_TEST(test_events__test_subprocess_exitcode)
{
	struct tide_loop *loop = tt_loop_new();
	struct subproto p = {0};
	struct tide_subprocess_transport *t = spawn(loop, NULL, "exit 7", NULL, &p);

	ck_assert_int_eq(finish_subprocess(loop, t, &p), 7);
	ck_assert_int_eq(p.exited, 1);
}
END_TEST

/* test_events.test_subprocess_close_after_finish: with every pipe gone
 * and the child reaped, close is harmless and the return code stays. */
START_TEST(test_events__test_subprocess_close_after_finish)
{
	struct tide_loop *loop = tt_loop_new();
	struct subproto p = {0};
	struct tide_subprocess_transport *t = spawn(loop, NULL, "exit 7", NULL, &p);
	int code = 0;

	ck_assert_ptr_null(tide_subprocess_transport_get_pipe_transport(t, 0));
	ck_assert_ptr_null(tide_subprocess_transport_get_pipe_transport(t, 1));
	ck_assert_ptr_null(tide_subprocess_transport_get_pipe_transport(t, 2));
	RUN_UNTIL(loop, p.completed);
	tide_subprocess_transport_close(t);
	ck_assert_int_eq(tide_subprocess_transport_get_returncode(t, &code), 1);
	ck_assert_int_eq(code, 7);
	ck_assert_int_eq(finish_subprocess(loop, t, &p), 7);
}
END_TEST

static void signal_case(int signo, int how)
{
	static const char *const argv[] = {"sleep", "30", NULL};
	struct tide_loop *loop = tt_loop_new();
	struct subproto p = {0};
	struct tide_subprocess_transport *t = spawn(loop, argv, NULL, NULL, &p);

	if (how == 0)
		ck_assert_int_eq(tide_subprocess_transport_kill(t), 0);
	else if (how == 1)
		ck_assert_int_eq(tide_subprocess_transport_terminate(t), 0);
	else
		ck_assert_int_eq(tide_subprocess_transport_send_signal(t, signo), 0);
	ck_assert_int_eq(finish_subprocess(loop, t, &p), -signo);
}

/* test_events.test_subprocess_kill: kill() ends the child, -SIGKILL. */
START_TEST(test_events__test_subprocess_kill)
{
	signal_case(SIGKILL, 0);
}
END_TEST

/* test_events.test_subprocess_terminate: terminate() is SIGTERM. */
START_TEST(test_events__test_subprocess_terminate)
{
	signal_case(SIGTERM, 1);
}
END_TEST

/* test_events.test_subprocess_send_signal: send_signal(SIGHUP) reaches a
 * child with SIGHUP's default action (the child starts with default
 * dispositions), which dies of it. */
START_TEST(test_events__test_subprocess_send_signal)
{
	signal_case(SIGHUP, 2);
}
END_TEST

/* test_events.test_subprocess_stderr: what the child writes to stderr
 * arrives on the stderr pipe, stdout stays empty. */
START_TEST(test_events__test_subprocess_stderr)
{
	struct tide_loop *loop = tt_loop_new();
	struct subproto p = {0};
	struct tide_subprocess_transport *t = spawn(loop, NULL, "echo ERR:test >&2", &pipes_opts, &p);

	tide_transport_close(tide_subprocess_transport_get_pipe_transport(t, 0));
	ck_assert_int_eq(finish_subprocess(loop, t, &p), 0);
	ck_assert_uint_eq(p.n[1], 0);
	ck_assert_uint_eq(p.n[2], 9);
	ck_assert_int_eq(memcmp(p.data[2], "ERR:test\n", 9), 0);
}
END_TEST

/* test_events.test_subprocess_stderr_redirect_to_stdout: stderr=STDOUT
 * sends both streams down the stdout pipe and leaves no stderr pipe. */
START_TEST(test_events__test_subprocess_stderr_redirect_to_stdout)
{
	struct tide_subprocess_opts opts = {
		.size = sizeof(opts),
		.stdio = {{.mode = TIDE_STDIO_PIPE}, {.mode = TIDE_STDIO_PIPE}, {.mode = TIDE_STDIO_STDOUT}},
	};
	struct tide_loop *loop = tt_loop_new();
	struct subproto p = {0};
	struct tide_subprocess_transport *t = spawn(loop, NULL, "echo OUT:test; echo ERR:test >&2", &opts, &p);

	ck_assert_ptr_null(tide_subprocess_transport_get_pipe_transport(t, 2));
	tide_transport_close(tide_subprocess_transport_get_pipe_transport(t, 0));
	ck_assert_int_eq(finish_subprocess(loop, t, &p), 0);
	ck_assert_uint_eq(p.n[1], 18);
	ck_assert_int_eq(memcmp(p.data[1], "OUT:test\nERR:test\n", 18), 0);
	ck_assert_uint_eq(p.n[2], 0);
}
END_TEST

/* test_events.test_subprocess_exec_invalid_args: bad arguments are the
 * call's error (-EINVAL for asyncio's ValueError/TypeError), and no child
 * is made. */
START_TEST(test_events__test_subprocess_exec_invalid_args)
{
	static const char *const empty[] = {NULL};
	struct tide_subprocess_opts bad = {
		.size = sizeof(bad), .stdio = {{.mode = (enum tide_stdio_mode)99}},
	};
	static const char *const argv[] = {"true", NULL};
	struct tide_loop *loop = tt_loop_new();
	struct subproto p = {0};
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_subprocess_exec(loop, &sp_ops, &p, NULL, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_subprocess_exec(loop, &sp_ops, &p, empty, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_subprocess_exec(loop, &sp_ops, &p, argv, &bad, &f), -EINVAL);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(p.connected, 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_events.test_subprocess_shell_invalid_args: the same for a shell
 * command (NULL for asyncio's non-string cmd). */
START_TEST(test_events__test_subprocess_shell_invalid_args)
{
	struct tide_subprocess_opts bad = {
		.size = sizeof(bad), .stdio = {{.mode = (enum tide_stdio_mode)99}},
	};
	struct tide_loop *loop = tt_loop_new();
	struct subproto p = {0};
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_subprocess_shell(loop, &sp_ops, &p, NULL, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_subprocess_shell(loop, &sp_ops, &p, "exit 0", &bad, &f), -EINVAL);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(p.connected, 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------- handles, timers -- */

/* test_events.HandleTests.test_handle: a call_soon handle is not a timer
 * (when() is -1), cancel() stops its callback once, and a second cancel
 * does nothing. */
START_TEST(test_events__test_handle)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_handle h;
	int ran = 0;

	ck_assert_int_eq(tide_call_soon(loop, set_flag_cb, &ran, &h), 0);
	ck_assert(tide_handle_when(&h) == -1);
	ck_assert_int_eq(tide_handle_cancel(&h), 1);
	ck_assert_int_eq(tide_handle_cancel(&h), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(ran, 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_events.TimerTests.test_when: a timer handle's when() is the time it
 * was scheduled for. */
START_TEST(test_events__test_when)
{
	struct tide_loop *loop = tt_loop_new();
	double when = tide_loop_time(loop) + 100;
	struct tide_handle h;

	ck_assert_int_eq(tide_call_at(loop, when, nop_cb, NULL, &h), 0);
	ck_assert(fabs(tide_handle_when(&h) - when) < 1e-6);
	ck_assert_int_eq(tide_handle_cancel(&h), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_events.TimerTests.test_timer: a cancelled timer never runs its
 * callback; an uncancelled one runs once at its time. */
START_TEST(test_events__test_timer)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_handle h1, h2;
	int ran1 = 0, ran2 = 0;

	ck_assert_int_eq(tide_call_later(loop, 0.01, set_flag_cb, &ran1, &h1), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.02, set_flag_cb, &ran2, &h2), 0);
	ck_assert(tide_handle_when(&h1) > 0);
	ck_assert_int_eq(tide_handle_cancel(&h1), 1);
	RUN_UNTIL(loop, ran2);
	ck_assert_int_eq(ran1, 0);
	ck_assert_int_eq(tide_handle_cancel(&h2), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_events.TimerTests.test_timer_comparison: timers order by when;
 * equal whens keep the order they were made in. */
START_TEST(test_events__test_timer_comparison)
{
	struct tide_loop *loop = tt_loop_new();
	double when = tide_loop_time(loop) + 0.02;

	results_init(loop);
	ck_assert_int_eq(tide_call_at(loop, when + 0.01, append_stop_cb, "later", NULL), 0);
	ck_assert_int_eq(tide_call_at(loop, when, append_cb, "first", NULL), 0);
	ck_assert_int_eq(tide_call_at(loop, when, append_cb, "second", NULL), 0);
	ck_assert_int_eq(tide_call_at(loop, when - 0.01, append_cb, "earliest", NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(g_res.n, 4);
	ck_assert_str_eq(g_res.got[0], "earliest");
	ck_assert_str_eq(g_res.got[1], "first");
	ck_assert_str_eq(g_res.got[2], "second");
	ck_assert_str_eq(g_res.got[3], "later");
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* -------------------------------------------------------- base_events -- */

/* test_base_events.test_close: close() is idempotent and leaves a loop
 * that refuses to run (RuntimeError: TIDE_ECLOSED). */
START_TEST(test_base_events__test_close)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f;

	ck_assert_int_eq(tide_future_new(loop, &f), 0);
	ck_assert_int_eq(tide_loop_is_closed(loop), 0);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_loop_is_closed(loop), 1);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_loop_run(loop), TIDE_ECLOSED);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, f), TIDE_ECLOSED);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test__add_callback_cancelled_handle: a handle
 * cancelled before its turn is never run, and counts as no callback. */
START_TEST(test_base_events__test__add_callback_cancelled_handle)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats st0 = {.size = sizeof(st0)}, st1 = {.size = sizeof(st1)};
	struct tide_handle h;
	int ran = 0;

	ck_assert_int_eq(tide_call_soon(loop, set_flag_cb, &ran, &h), 0);
	ck_assert_int_eq(tide_handle_cancel(&h), 1);
	tt_stats(loop, &st0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 0);
	tt_stats(loop, &st1);
	ck_assert_uint_eq(st1.callbacks, st0.callbacks);
	ck_assert_int_eq(ran, 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_set_default_executor: the executor set is the one
 * run_in_executor(NULL) uses (its only worker runs both jobs). */
START_TEST(test_base_events__test_set_default_executor)
{
	struct tide_executor_opts eo = {.size = sizeof(eo), .threads = 1};
	struct tide_loop *loop = tt_loop_new();
	struct job_rec a = {.ret = 1}, b = {.ret = 2};
	struct tide_executor *ex;
	struct tide_future *fa, *fb;

	ck_assert_int_eq(tide_executor_new(&eo, &ex), 0);
	ck_assert_int_eq(tide_loop_set_default_executor(loop, ex), 0);
	ck_assert_int_eq(tide_run_in_executor(loop, ex, record_job, &a, &fa), 0);
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, record_job, &b, &fb), 0);
	tt_run_until_complete(loop, fa, 0);
	tt_run_until_complete(loop, fb, 0);
	ck_assert_int_eq(tt_result(fa), 1);
	ck_assert_int_eq(tt_result(fb), 2);
	ck_assert_int_eq(a.tid, b.tid);
	tide_future_unref(fa);
	tide_future_unref(fb);
	ck_assert_int_eq(tide_loop_shutdown_default_executor(loop), 0);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	ck_assert_int_eq(tide_executor_free(ex), 0);
}
END_TEST

/* test_base_events.test_set_default_executor_error: what is not an
 * executor (NULL) is refused (TypeError: -EINVAL) and changes nothing. */
START_TEST(test_base_events__test_set_default_executor_error)
{
	struct tide_loop *loop = tt_loop_new();
	struct job_rec j = {.ret = 5};
	struct tide_future *f;

	ck_assert_int_eq(tide_loop_set_default_executor(loop, NULL), -EINVAL);
	ck_assert_int_eq(tide_run_in_executor(loop, NULL, record_job, &j, &f), 0);
	tt_run_until_complete(loop, f, 0);
	ck_assert_int_eq(tt_result(f), 5);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_call_soon: call_soon gives a handle (not a timer)
 * to a ready callback: the next iteration runs it. */
START_TEST(test_base_events__test_call_soon)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_handle h = {0};
	int ran = 0;

	ck_assert_int_eq(tide_call_soon(loop, set_flag_cb, &ran, &h), 0);
	ck_assert_ptr_nonnull(h.slot);
	ck_assert(tide_handle_when(&h) == -1);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(ran, 1);
	ck_assert_int_eq(tide_handle_cancel(&h), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_call_soon_non_callable: no callback is refused
 * (TypeError: -EINVAL), in debug mode too. */
START_TEST(test_base_events__test_call_soon_non_callable)
{
	struct tide_loop *loop = tt_loop_new();

	tide_loop_set_debug(loop, 1);
	ck_assert_int_eq(tide_call_soon(loop, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_call_later(loop, 1, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_call_at(loop, 1, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_call_soon_threadsafe(loop, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_call_later: call_later gives a timer handle that
 * is scheduled, not ready; a delay that is no number (None: NaN here) is
 * refused. */
START_TEST(test_base_events__test_call_later)
{
	struct tide_loop *loop = tt_loop_new();
	double t0 = tide_loop_time(loop);
	struct tide_handle h;
	int ran = 0;

	ck_assert_int_eq(tide_call_later(loop, 10.0, set_flag_cb, &ran, &h), 0);
	ck_assert(tide_handle_when(&h) >= t0 + 10.0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(ran, 0);
	ck_assert_int_eq(tide_call_later(loop, NAN, set_flag_cb, &ran, NULL), -EINVAL);
	ck_assert_int_eq(tide_handle_cancel(&h), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_time_and_call_at: a call_at(time() + 0.1) runs
 * no sooner than that; a when that is no number is refused. */
START_TEST(test_base_events__test_time_and_call_at)
{
	struct tide_loop *loop = tt_loop_new();
	double delay = 0.100, when, t0, dt;

	when = tide_loop_time(loop) + delay;
	ck_assert_int_eq(tide_call_at(loop, when, stop_cb, loop, NULL), 0);
	t0 = tide_loop_time(loop);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	dt = tide_loop_time(loop) - t0;
	ck_assert(dt >= when - t0);
	ck_assert(tide_loop_time(loop) >= when);
	ck_assert_int_eq(tide_call_at(loop, NAN, stop_cb, loop, NULL), -EINVAL);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test__run_once: an iteration waits for the nearest
 * timer that is not cancelled: with the earlier one cancelled, one
 * run_once(-1) sleeps until the later one and runs it. */
START_TEST(test_base_events__test__run_once)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_handle h1, h2;
	int ran1 = 0, ran2 = 0;
	double t0 = tide_loop_time(loop);

	ck_assert_int_eq(tide_call_later(loop, 0.05, set_flag_cb, &ran1, &h1), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.1, set_flag_cb, &ran2, &h2), 0);
	ck_assert_int_eq(tide_handle_cancel(&h1), 1);
	ck_assert_int_eq(tide_loop_run_once(loop, -1), 1);
	ck_assert_int_eq(ran2, 1);
	ck_assert_int_eq(ran1, 0);
	ck_assert(tide_loop_time(loop) - t0 >= 0.1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_set_debug */
START_TEST(test_base_events__test_set_debug)
{
	struct tide_loop *loop = tt_loop_new();

	tide_loop_set_debug(loop, 1);
	ck_assert_int_eq(tide_loop_get_debug(loop), 1);
	tide_loop_set_debug(loop, 0);
	ck_assert_int_eq(tide_loop_get_debug(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

struct sched {
	struct tide_loop *loop;
	int processed;
	int inner_ran;
	struct tide_handle inner;
};

static void sched_cb(void *arg)
{
	struct sched *s = arg;

	s->processed = 1;
	ck_assert_int_eq(tide_call_soon(s->loop, set_flag_cb, &s->inner_ran, &s->inner), 0);
}

/* test_base_events.test__run_once_schedule_handle: an expired timer runs
 * in the iteration; what it call_soon's is left ready for the next one. */
START_TEST(test_base_events__test__run_once_schedule_handle)
{
	struct tide_loop *loop = tt_loop_new();
	struct sched s = {.loop = loop};

	ck_assert_int_eq(tide_call_at(loop, tide_loop_time(loop) - 1, sched_cb, &s, NULL), 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(s.processed, 1);
	ck_assert_int_eq(s.inner_ran, 0);
	ck_assert_int_eq(tide_loop_run_once(loop, 0), 1);
	ck_assert_int_eq(s.inner_ran, 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_run_until_complete_loop: a future of another loop
 * is refused (ValueError: -EINVAL), and the other loop stays usable. */
START_TEST(test_base_events__test_run_until_complete_loop)
{
	struct tide_loop *loop = tt_loop_new(), *other = tt_loop_new();
	struct tide_future *f;

	ck_assert_int_eq(tide_future_new(loop, &f), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(other, f), -EINVAL);
	ck_assert_int_eq(tide_loop_is_running(other), 0);
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_free(other), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

struct reports {
	int n;
	int error;
	char message[128];
	struct tide_future *future;
	struct tide_loop *loop;
};

static void keep_report(struct tide_loop *loop, const struct tide_error_context *ctx, void *arg)
{
	struct reports *r = arg;

	r->n++;
	r->loop = loop;
	r->error = ctx->error;
	r->future = ctx->future;
	snprintf(r->message, sizeof(r->message), "%s", ctx->message ? ctx->message : "");
}

static int64_t fail_body(void *arg)
{
	(void)arg;
	tide_sleep(0.01);
	return -EDOM;
}

/* Runs fn with stderr going to a pipe; returns what it wrote. */
static void capture_stderr(void (*fn)(void *), void *arg, char *out, size_t cap)
{
	int fds[2], saved;
	ssize_t n;

	fflush(stderr);
	tt_pipe(fds, O_NONBLOCK);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
	fn(arg);
	fflush(stderr);
	ck_assert_int_eq(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	close(fds[1]);
	n = read(fds[0], out, cap - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fds[0]);
}

static void unref_cb(void *arg)
{
	tide_future_unref(arg);
}

/* test_base_events.test_default_exc_handler_coro: a task that failed and
 * whose error nobody retrieved is reported by the default handler,
 * "exception was never retrieved", when it goes. tide makes this report in
 * debug mode only (tide_loop_new(3)), so the case turns it on. */
START_TEST(test_base_events__test_default_exc_handler_coro)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;
	struct tide_future *t;
	char err[512];

	tt_opts_init(&opts);
	opts.debug = 1;
	loop = tt_loop_new_opts(&opts);
	ck_assert_int_eq(tide_task_spawn(loop, fail_body, NULL, NULL, &t), 0);
	RUN_UNTIL(loop, tide_future_done(t));
	capture_stderr(unref_cb, t, err, sizeof(err));
	ck_assert_msg(strstr(err, "exception was never retrieved") != NULL, "stderr: %s", err);
	ck_assert_msg(strstr(err, tide_strerror(-EDOM)) != NULL, "stderr: %s", err);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_set_exc_handler_custom: a handler set gets the
 * loop and the context (message, error, the future); set to NULL, the
 * default handler (stderr) takes over and the custom one is not called. */
START_TEST(test_base_events__test_set_exc_handler_custom)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;
	struct reports r = {0};
	struct tide_future *t;
	char err[512];

	tt_opts_init(&opts);
	opts.debug = 1;
	loop = tt_loop_new_opts(&opts);
	tide_loop_set_exception_handler(loop, keep_report, &r);
	ck_assert_int_eq(tide_task_spawn(loop, fail_body, NULL, NULL, &t), 0);
	RUN_UNTIL(loop, tide_future_done(t));
	tide_future_unref(t);
	ck_assert_int_eq(r.n, 1);
	ck_assert_ptr_eq(r.loop, loop);
	ck_assert_int_eq(r.error, -EDOM);
	ck_assert_ptr_eq(r.future, t);
	ck_assert_msg(strstr(r.message, "exception was never retrieved") != NULL, "%s", r.message);

	tide_loop_set_exception_handler(loop, NULL, NULL);
	ck_assert_int_eq(tide_task_spawn(loop, fail_body, NULL, NULL, &t), 0);
	RUN_UNTIL(loop, tide_future_done(t));
	capture_stderr(unref_cb, t, err, sizeof(err));
	ck_assert_msg(strstr(err, "exception was never retrieved") != NULL, "stderr: %s", err);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int debug_with_env(const char *value, int opt)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop;
	int d;

	if (value)
		ck_assert_int_eq(setenv("TIDE_DEBUG", value, 1), 0);
	else
		ck_assert_int_eq(unsetenv("TIDE_DEBUG"), 0);
	tt_opts_init(&opts);
	opts.debug = opt;
	loop = tt_loop_new_opts(&opts);
	d = tide_loop_get_debug(loop);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	return d;
}

/* test_base_events.test_env_var_debug: $TIDE_DEBUG is asyncio's
 * PYTHONASYNCIODEBUG: unset or empty is off, "1" is on; opts.debug < 0
 * (asyncio's -E) ignores it, > 0 (-X dev) turns debug on. */
START_TEST(test_base_events__test_env_var_debug)
{
	ck_assert_int_eq(debug_with_env(NULL, 0), 0);
	ck_assert_int_eq(debug_with_env("", 0), 0);
	ck_assert_int_eq(debug_with_env("1", 0), 1);
	ck_assert_int_eq(debug_with_env("1", -1), 0);
	ck_assert_int_eq(debug_with_env(NULL, 1), 1);
	unsetenv("TIDE_DEBUG");
}
END_TEST

/* test_base_events.test_create_named_task_with_default_factory: a task
 * made with a name has that name. */
START_TEST(test_base_events__test_create_named_task_with_default_factory)
{
	struct tide_task_opts to = {.size = sizeof(to), .name = "test_task"};
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *t;

	ck_assert_int_eq(tide_task_spawn(loop, nop_body, NULL, &to, &t), 0);
	ck_assert_str_eq(tide_task_name(t), "test_task");
	tt_run_until_complete(loop, t, 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

struct stopper {
	struct tide_loop *loop;
	int fd;
	struct tide_future *poll;
	int callcount;
};

static void event_cb(struct tide_future *f, void *arg)
{
	struct stopper *s = arg;

	(void)f;
	s->callcount++;
}

/* test_base_events.test_single_selecter_event_callback_after_stopping: an
 * I/O event's callback runs once, also when stop() ends the runs around
 * it (Python issue #25593). */
START_TEST(test_base_events__test_single_selecter_event_callback_after_stopping)
{
	struct tide_loop *loop = tt_loop_new();
	struct stopper s = {.loop = loop};
	int sv[2], i;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	tt_write_all(sv[1], "x", 1);
	ck_assert_int_eq(tide_op_poll(loop, sv[0], POLLIN, &s.poll), 0);
	ck_assert_int_eq(tide_future_add_done_callback(s.poll, event_cb, &s), 0);
	RUN_UNTIL(loop, tide_future_done(s.poll));
	for (i = 1; i < 3; i++) {
		ck_assert_int_eq(tide_call_soon(loop, stop_cb, loop, NULL), 0);
		ck_assert_int_eq(tide_loop_run(loop), 0);
		ck_assert_int_eq(s.callcount, 1);
	}
	tide_future_unref(s.poll);
	close(sv[0]);
	close(sv[1]);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

static int g_count;

static void count_cb(void *arg)
{
	(void)arg;
	g_count++;
}

/* test_base_events.test_run_once: the idiom call_soon(stop); run() runs
 * the callbacks queued before it once. */
START_TEST(test_base_events__test_run_once)
{
	struct tide_loop *loop = tt_loop_new();

	g_count = 0;
	ck_assert_int_eq(tide_call_soon(loop, count_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_call_soon(loop, stop_cb, loop, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(g_count, 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_run_forever_pre_stopped: stop() before run()
 * makes run() do one iteration that does not wait (select(0)), then
 * return; a timer far ahead does not keep it. */
START_TEST(test_base_events__test_run_forever_pre_stopped)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_loop_stats st0 = {.size = sizeof(st0)}, st1 = {.size = sizeof(st1)};
	struct tide_handle h;
	int fired = 0;

	ck_assert_int_eq(tide_call_later(loop, TT_HANG_S, set_flag_cb, &fired, &h), 0);
	tt_stats(loop, &st0);
	tide_loop_stop(loop);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	tt_stats(loop, &st1);
	ck_assert_int_eq(fired, 0);
	ck_assert_uint_eq(st1.iterations - st0.iterations, 1);
	/* The stop was used up: the next run runs until the next stop. */
	g_count = 0;
	ck_assert_int_eq(tide_call_soon(loop, count_cb, NULL, NULL), 0);
	ck_assert_int_eq(tide_call_later(loop, 0.01, stop_cb, loop, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
	ck_assert_int_eq(g_count, 1);
	ck_assert_int_eq(tide_handle_cancel(&h), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------- BaseEventLoopWithSelectorTests -- */

/* test_base_events.test_create_connection_no_host_port_sock: neither host
 * nor port is refused (ValueError: -EINVAL), as are a bad port and a NULL
 * path. */
START_TEST(test_base_events__test_create_connection_no_host_port_sock)
{
	struct tide_loop *loop = tt_loop_new();
	struct myproto p = {0};
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_create_connection(loop, NULL, 0, &my_ops, &p, &f), -EINVAL);
	ck_assert_int_eq(tide_create_connection(loop, "127.0.0.1", -1, &my_ops, &p, &f), -EINVAL);
	ck_assert_int_eq(tide_create_connection(loop, "127.0.0.1", 65536, &my_ops, &p, &f), -EINVAL);
	ck_assert_int_eq(tide_create_unix_connection(loop, NULL, &my_ops, &p, &f), -EINVAL);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_create_connection_connect_err: a connect that
 * fails fails the future with its error (nothing listens: ECONNREFUSED),
 * and no connection_made is called. */
START_TEST(test_base_events__test_create_connection_connect_err)
{
	struct tide_loop *loop = tt_loop_new();
	struct myproto p = {0};
	struct tide_future *f;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd, port;

	/* A port nobody listens on: bound, never listening. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	ck_assert_int_eq(tide_create_connection(loop, "127.0.0.1", port, &my_ops, &p, &f), 0);
	tt_run_until_complete(loop, f, -ECONNREFUSED);
	ck_assert_int_eq(p.state, ST_INITIAL);
	tide_future_unref(f);
	close(fd);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_create_server_empty_host: an empty host means
 * every interface (asyncio passes None to getaddrinfo), as NULL does. */
START_TEST(test_base_events__test_create_server_empty_host)
{
	struct tide_loop *loop = tt_loop_new();
	static const char *const hosts[] = {""};
	struct myproto p = {0};
	struct tide_future *f;
	struct tide_server *s;
	int fds[4], client;

	ck_assert_int_eq(tide_create_server(loop, hosts, 1, 0, NULL, my_factory, &p, &f), 0);
	tt_run_until_complete(loop, f, 0);
	s = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_uint_eq(tide_server_sockets(s, fds, 4), g_have_ipv6 ? 2 : 1);
	client = tcp_client(AF_INET, "127.0.0.1", tide_server_port(s));
	ck_assert_int_ge(client, 0);
	check_server_conn(loop, &p, client);
	finish_server(loop, s);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_create_datagram_endpoint_addr_error: a local
 * address that is not one (asyncio's AssertionError for a bad tuple) or a
 * port out of range is refused. */
START_TEST(test_base_events__test_create_datagram_endpoint_addr_error)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o1 = {.size = sizeof(o1), .local_host = "localhost", .local_port = 70000};
	struct tide_datagram_opts o2 = {.size = sizeof(o2), .local_host = "127.0.0.1", .local_port = -1};
	struct myproto p = {0};
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &o1, &my_ops, &p, &f), -EINVAL);
	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &o2, &my_ops, &p, &f), -EINVAL);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_create_datagram_endpoint_allow_broadcast: the
 * endpoint's socket has SO_BROADCAST with allow_broadcast. */
START_TEST(test_base_events__test_create_datagram_endpoint_allow_broadcast)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = {.size = sizeof(o), .local_host = "127.0.0.1", .allow_broadcast = 1};
	struct myproto p = {0};
	struct tide_transport *t;
	struct tide_future *f;
	socklen_t len = sizeof(int);
	int fd = -1;

	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &o, &my_ops, &p, &f), 0);
	tt_run_until_complete(loop, f, 0);
	t = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &len), 0);
	ck_assert_int_ne(sockopt_int(fd, SOL_SOCKET, SO_BROADCAST), 0);
	tide_transport_close(t);
	RUN_UNTIL(loop, p.done);
	tide_transport_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_create_datagram_endpoint_no_matching_family: a
 * local IPv4 address with a remote IPv6 one is refused (ValueError). */
START_TEST(test_base_events__test_create_datagram_endpoint_no_matching_family)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = {
		.size = sizeof(o), .local_host = "127.0.0.1", .remote_host = "::1", .remote_port = 9,
	};
	struct myproto p = {0};
	struct tide_future *f = NULL;
	int rc;

	rc = tide_create_datagram_endpoint(loop, &o, &my_ops, &p, &f);
	if (rc == 0) {
		RUN_UNTIL(loop, tide_future_done(f));
		rc = tide_future_error(f);
		tide_future_unref(f);
	}
	ck_assert_int_lt(rc, 0);
	ck_assert_int_eq(p.state, ST_INITIAL);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_create_datagram_endpoint_noaddr_nofamily: no
 * address and no family is refused (ValueError: -EINVAL). */
START_TEST(test_base_events__test_create_datagram_endpoint_noaddr_nofamily)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = {.size = sizeof(o)};
	struct myproto p = {0};
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &o, &my_ops, &p, &f), -EINVAL);
	ck_assert_int_eq(tide_create_datagram_endpoint(loop, NULL, &my_ops, &p, &f), -EINVAL);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_create_datagram_endpoint_sockopts: reuse_port
 * sets SO_REUSEPORT, allow_broadcast SO_BROADCAST; SO_REUSEADDR is never
 * set on a datagram socket (asyncio removed reuse_address for UDP). */
START_TEST(test_base_events__test_create_datagram_endpoint_sockopts)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_datagram_opts o = {
		.size = sizeof(o), .local_host = "127.0.0.1", .reuse_port = 1, .allow_broadcast = 1,
	};
	struct myproto p = {0};
	struct tide_transport *t;
	struct tide_future *f;
	socklen_t len = sizeof(int);
	int fd = -1;

	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &o, &my_ops, &p, &f), 0);
	tt_run_until_complete(loop, f, 0);
	t = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &len), 0);
	ck_assert_int_eq(sockopt_int(fd, SOL_SOCKET, SO_REUSEADDR), 0);
	ck_assert_int_ne(sockopt_int(fd, SOL_SOCKET, SO_REUSEPORT), 0);
	ck_assert_int_ne(sockopt_int(fd, SOL_SOCKET, SO_BROADCAST), 0);
	tide_transport_close(t);
	RUN_UNTIL(loop, p.done);
	tide_transport_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_base_events.test_getnameinfo: getnameinfo runs on the executor and
 * gives host and service. */
START_TEST(test_base_events__test_getnameinfo)
{
	struct tide_loop *loop = tt_loop_new();
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct tide_future *f;
	const char *hs;
	void *ptr = NULL;

	ck_assert_int_eq(tide_getnameinfo(loop, (struct sockaddr *)&sin, sizeof(sin), NI_NUMERICHOST | NI_NUMERICSERV,
					  &f), 0);
	tt_run_until_complete(loop, f, 0);
	ck_assert_int_eq(tide_future_result(f, NULL, &ptr), 0);
	hs = ptr;
	ck_assert_str_eq(hs, "127.0.0.1");
	ck_assert_str_eq(hs + strlen(hs) + 1, "80");
	tide_future_unref(f);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ----------------------------------------------------- RunningLoopTests -- */

struct nested {
	struct tide_loop *outer, *inner;
	struct tide_loop *seen_outer, *seen_inner, *seen_after;
	int rc;
};

static void inner_cb(void *arg)
{
	struct nested *n = arg;

	n->seen_inner = tide_get_running_loop();
}

static int64_t runner_body(void *arg)
{
	struct nested *n = arg;

	n->seen_outer = tide_get_running_loop();
	ck_assert_int_eq(tide_call_soon(n->inner, inner_cb, n, NULL), 0);
	n->rc = tide_loop_run_once(n->inner, 0);
	n->seen_after = tide_get_running_loop();
	return 0;
}

/* test_base_events.RunningLoopTests.test_running_loop_within_a_loop:
 * asyncio refuses to run a loop inside another loop's callback
 * (RuntimeError). tide lets a callback or task run another loop's
 * iteration, which sees that loop as the running one and its own after
 * (tide_get_running_loop), so the case asserts that. */
START_TEST(test_base_events__test_running_loop_within_a_loop)
{
	struct nested n = {0};
	struct tide_future *t;

	n.outer = tt_loop_new();
	n.inner = tt_loop_new();
	ck_assert_int_eq(tide_task_spawn(n.outer, runner_body, &n, NULL, &t), 0);
	tt_run_until_complete(n.outer, t, 0);
	ck_assert_int_eq(n.rc, 1);
	ck_assert_ptr_eq(n.seen_outer, n.outer);
	ck_assert_ptr_eq(n.seen_inner, n.inner);
	ck_assert_ptr_eq(n.seen_after, n.outer);
	ck_assert_ptr_null(tide_get_running_loop());
	tide_future_unref(t);
	ck_assert_int_eq(tide_loop_free(n.inner), 0);
	ck_assert_int_eq(tide_loop_free(n.outer), 0);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	signal(SIGPIPE, SIG_IGN);
	g_have_ipv6 = probe_ipv6();
	tt_suite_init(&ts, "conformance-events", 30);
	/* test_events */
	tt_add(&ts, test_events__test_run_until_complete_nesting);
	tt_add(&ts, test_events__test_run_until_complete);
	tt_add(&ts, test_events__test_run_until_complete_stopped);
	tt_add(&ts, test_events__test_call_later);
	tt_add(&ts, test_events__test_call_soon);
	tt_add(&ts, test_events__test_run_in_executor);
	tt_add(&ts, test_events__test_reader_callback);
	tt_add(&ts, test_events__test_writer_callback);
	tt_add(&ts, test_events__test_add_signal_handler);
	if (!EV_TSAN) {
		tt_add(&ts, test_events__test_signal_handling_while_selecting);
		tt_add(&ts, test_events__test_signal_handling_args);
	} else {
		tt_skip(&ts, 2 * TT_NCONFIGS, "ThreadSanitizer defers signal handlers past io_uring_enter");
	}
	tt_add(&ts, test_events__test_create_connection);
	tt_add(&ts, test_events__test_create_unix_connection);
	tt_add(&ts, test_events__test_create_server);
	tt_add(&ts, test_events__test_create_server_reuse_port);
	tt_add(&ts, test_events__test_create_unix_server);
	tt_add(&ts, test_events__test_create_server_addr_in_use);
	if (g_have_ipv6)
		tt_add(&ts, test_events__test_create_server_dual_stack);
	tt_add(&ts, test_events__test_create_server_multiple_hosts_ipv4);
	tt_add(&ts, test_events__test_server_close);
	tt_add(&ts, test_events__test_create_datagram_endpoint);
	if (g_have_ipv6)
		tt_add(&ts, test_events__test_create_datagram_endpoint_ipv6);
	else
		tt_skip(&ts, 2 * TT_NCONFIGS, "no IPv6 loopback (::1) for the IPv6 cases");
	tt_add(&ts, test_events__test_read_pipe);
	tt_add(&ts, test_events__test_write_pipe);
	tt_add(&ts, test_events__test_write_pipe_disconnect_on_close);
	tt_add(&ts, test_events__test_prompt_cancellation);
	tt_add(&ts, test_events__test_timeout_rounding);
	tt_add(&ts, test_events__test_remove_fds_after_closing);
	tt_add(&ts, test_events__test_add_fds_after_closing);
	tt_add(&ts, test_events__test_close_running_event_loop);
	tt_add(&ts, test_events__test_close);
	if (!EV_TSAN) {
		tt_add(&ts, test_events__test_subprocess_exec);
		tt_add(&ts, test_events__test_subprocess_interactive);
		tt_add(&ts, test_events__test_subprocess_shell);
		tt_add(&ts, test_events__test_subprocess_exitcode);
		tt_add(&ts, test_events__test_subprocess_close_after_finish);
		tt_add(&ts, test_events__test_subprocess_kill);
		tt_add(&ts, test_events__test_subprocess_terminate);
		tt_add(&ts, test_events__test_subprocess_send_signal);
		tt_add(&ts, test_events__test_subprocess_stderr);
		tt_add(&ts, test_events__test_subprocess_stderr_redirect_to_stdout);
	} else {
		tt_skip(&ts, 10 * TT_NCONFIGS, "ThreadSanitizer cannot follow tide's clone(CLONE_VM) spawn");
	}
	tt_add(&ts, test_events__test_subprocess_exec_invalid_args);
	tt_add(&ts, test_events__test_subprocess_shell_invalid_args);
	tt_add(&ts, test_events__test_handle);
	tt_add(&ts, test_events__test_when);
	tt_add(&ts, test_events__test_timer);
	tt_add(&ts, test_events__test_timer_comparison);
	/* test_base_events */
	tt_add(&ts, test_base_events__test_close);
	tt_add(&ts, test_base_events__test__add_callback_cancelled_handle);
	tt_add(&ts, test_base_events__test_set_default_executor);
	tt_add(&ts, test_base_events__test_set_default_executor_error);
	tt_add(&ts, test_base_events__test_call_soon);
	tt_add(&ts, test_base_events__test_call_soon_non_callable);
	tt_add(&ts, test_base_events__test_call_later);
	tt_add(&ts, test_base_events__test_time_and_call_at);
	tt_add(&ts, test_base_events__test__run_once);
	tt_add(&ts, test_base_events__test_set_debug);
	tt_add(&ts, test_base_events__test__run_once_schedule_handle);
	tt_add(&ts, test_base_events__test_run_until_complete_loop);
	tt_add(&ts, test_base_events__test_default_exc_handler_coro);
	tt_add(&ts, test_base_events__test_set_exc_handler_custom);
	tt_add(&ts, test_base_events__test_env_var_debug);
	tt_add(&ts, test_base_events__test_create_named_task_with_default_factory);
	tt_add(&ts, test_base_events__test_single_selecter_event_callback_after_stopping);
	tt_add(&ts, test_base_events__test_run_once);
	tt_add(&ts, test_base_events__test_run_forever_pre_stopped);
	tt_add(&ts, test_base_events__test_create_connection_no_host_port_sock);
	tt_add(&ts, test_base_events__test_create_connection_connect_err);
	tt_add(&ts, test_base_events__test_create_server_empty_host);
	tt_add(&ts, test_base_events__test_create_datagram_endpoint_addr_error);
	tt_add(&ts, test_base_events__test_create_datagram_endpoint_allow_broadcast);
	tt_add(&ts, test_base_events__test_create_datagram_endpoint_no_matching_family);
	tt_add(&ts, test_base_events__test_create_datagram_endpoint_noaddr_nofamily);
	tt_add(&ts, test_base_events__test_create_datagram_endpoint_sockopts);
	tt_add(&ts, test_base_events__test_getnameinfo);
	tt_add(&ts, test_base_events__test_running_loop_within_a_loop);
	return tt_run(&ts);
}
