/* SPDX-License-Identifier: MIT */
/*
 * test/opts.c: every struct of tide.h that begins with its size, zeroed
 * but for .size, behaves as NULL does, which is asyncio's default: loop,
 * executor, task, server (protocols and streams), datagram options, a
 * protocol table and an error context. So does a struct whose .size is
 * short (a program built against an older tide.h): its missing fields
 * take their defaults.
 *
 * The hard part is observing a default rather than trusting it: a server
 * is shown to accept by connecting to it, an executor's size by how many
 * of its jobs run at once, debug mode under both values of TIDE_DEBUG.
 */
#include "config.h"
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


/* Winds the loop down and frees it: everything the test made must be gone. */
static void finish(struct tide_loop *loop)
{
	ck_assert_int_eq(tide_loop_shutdown(loop, 30.0 * slow_factor()), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

/* A future's ptr (a transport), asserting it has a result: the future's still. */
static void *result_ptr(struct tide_future *f)
{
	void *p = NULL;
	int err = tide_future_result(f, NULL, &p);

	ck_assert_msg(err == 0, "future error %d (%s)", err, tide_strerror(err));
	ck_assert_ptr_nonnull(p);
	return p;
}

/* A server, taken from its future (which would free it): the test frees it. */
static struct tide_server *take_server(struct tide_future *f)
{
	struct tide_server *sv;

	ck_assert_int_eq(tide_future_error(f), 0);
	sv = tide_future_take_ptr(f);
	ck_assert_ptr_nonnull(sv);
	tide_future_unref(f);
	return sv;
}

/* ------------------------------------------------------------------ loop -- */

/* Jobs that block until released, counting how many run at once. */
struct gate {
	atomic_int started;
	atomic_int release;
};

static int64_t gate_job(void *arg)
{
	struct gate *g = arg;

	atomic_fetch_add(&g->started, 1);
	while (!atomic_load(&g->release))
		tt_sleep_ms(1);
	return 0;
}

/* asyncio's (and tide's) default executor size: min(32, CPUs + 4). */
static int default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n + 4 < 32 ? (int)n + 4 : 32;
}

/*
 * Runs one job more than the default size on ex (NULL: the loop's
 * default executor): exactly the default number run at once.
 */
static void check_executor_size(struct tide_loop *loop, struct tide_executor *ex)
{
	int k = default_threads();
	struct tide_future **f = calloc((size_t)k + 1, sizeof(*f));
	struct gate g;
	uint64_t end = tt_mono_ns() + (uint64_t)(30.0 * slow_factor() * 1e9);

	ck_assert_ptr_nonnull(f);
	atomic_init(&g.started, 0);
	atomic_init(&g.release, 0);
	for (int i = 0; i <= k; i++)
		ck_assert_int_eq(tide_run_in_executor(loop, ex, gate_job, &g, &f[i]), 0);
	while (atomic_load(&g.started) < k) {
		ck_assert_msg(tt_mono_ns() < end, "only %d of %d jobs started", atomic_load(&g.started), k);
		tt_sleep_ms(1);
	}
	/* A bigger pool would start the last job too, well within this. */
	tt_sleep_ms(100);
	ck_assert_int_eq(atomic_load(&g.started), k);
	atomic_store(&g.release, 1);
	for (int i = 0; i <= k; i++) {
		tt_run_until_complete(loop, f[i], 0);
		tide_future_unref(f[i]);
	}
	ck_assert_int_eq(atomic_load(&g.started), k + 1);
	free(f);
}

/* What a loop made from opts chose, to compare with NULL's. */
struct loop_view {
	char backend[32];
	char reason[256];
	int debug;
};

static void view_loop(const struct tide_loop_opts *opts, struct loop_view *v)
{
	struct tide_loop *loop = NULL;

	ck_assert_int_eq(tide_loop_new(opts, &loop), 0);
	snprintf(v->backend, sizeof(v->backend), "%s", tide_loop_backend(loop));
	snprintf(v->reason, sizeof(v->reason), "%s", tide_loop_backend_reason(loop));
	v->debug = tide_loop_get_debug(loop);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

static void check_same_loop(const struct tide_loop_opts *opts, const char *what)
{
	struct loop_view a, b;

	view_loop(NULL, &a);
	view_loop(opts, &b);
	ck_assert_msg(strcmp(a.backend, b.backend) == 0, "%s: backend %s, NULL opts: %s", what, b.backend, a.backend);
	ck_assert_msg(strcmp(a.reason, b.reason) == 0, "%s: reason %s, NULL opts: %s", what, b.reason, a.reason);
	ck_assert_msg(a.debug == b.debug, "%s: debug %d, NULL opts: %d", what, b.debug, a.debug);
}


/*
 * zero: every field 0 but .size; shorter: a caller built against an older
 * tide.h whose struct ends right after .size (the rest is garbage the
 * library must not read).
 */
static void zeroed_and_short(void *zero, void *shorter, size_t size)
{
	memset(zero, 0, size);
	*(size_t *)zero = size;
	memset(shorter, 0xff, size);
	*(size_t *)shorter = sizeof(size_t);
}

/* A zeroed struct tide_loop_opts is NULL: backend choice, TIDE_DEBUG, executor size. */
START_TEST(test_loop_opts_zeroed)
{
	struct tide_loop_opts opts;
	struct tide_loop *loop = NULL;

	memset(&opts, 0, sizeof(opts));
	opts.size = sizeof(opts);
	/* debug 0 is TIDE_DEBUG's choice, as asyncio's default is
	 * PYTHONASYNCIODEBUG's: on and off. */
	setenv("TIDE_DEBUG", "1", 1);
	check_same_loop(&opts, "zeroed, TIDE_DEBUG=1");
	ck_assert_int_eq(tide_loop_new(&opts, &loop), 0);
	ck_assert_int_eq(tide_loop_get_debug(loop), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	unsetenv("TIDE_DEBUG");
	check_same_loop(&opts, "zeroed");
	ck_assert_int_eq(tide_loop_new(&opts, &loop), 0);
	ck_assert_int_eq(tide_loop_get_debug(loop), 0);
	/* The default executor has the default size. */
	check_executor_size(loop, NULL);
	ck_assert_int_eq(tide_loop_shutdown_default_executor(loop), 0);
	finish(loop);

	/* An older caller's struct ends after .size: all defaults. */
	opts.size = sizeof(size_t);
	setenv("TIDE_DEBUG", "1", 1);
	check_same_loop(&opts, "short, TIDE_DEBUG=1");
	unsetenv("TIDE_DEBUG");
	check_same_loop(&opts, "short");
}
END_TEST

/* ------------------------------------------------------ executor, task -- */

/* A zeroed struct tide_executor_opts is NULL: min(32, CPUs + 4) workers. */
START_TEST(test_executor_opts_zeroed)
{
	struct tide_executor_opts zero, shorter;
	const struct tide_executor_opts *all[] = { NULL, &zero, &shorter };
	struct tide_loop *loop = tt_loop_new();

	zeroed_and_short(&zero, &shorter, sizeof(zero));
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		struct tide_executor *ex = NULL;

		ck_assert_int_eq(tide_executor_new(all[i], &ex), 0);
		check_executor_size(loop, ex);
		ck_assert_int_eq(tide_executor_free(ex), 0);
	}
	finish(loop);
}
END_TEST

static int64_t deep_task(void *arg)
{
	/* Fits the default 64 KiB stack, not the 16 KiB minimum. */
	volatile char big[40 * 1024];

	big[0] = 1;
	big[sizeof(big) - 1] = 2;
	return (intptr_t)arg + big[0] + big[sizeof(big) - 1];
}

/* A zeroed struct tide_task_opts is NULL: the name Task-N, the loop's stack size. */
START_TEST(test_task_opts_zeroed)
{
	struct tide_task_opts zero, shorter;
	const struct tide_task_opts *all[] = { NULL, &zero, &shorter };
	struct tide_loop *loop = tt_loop_new();

	zeroed_and_short(&zero, &shorter, sizeof(zero));
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		struct tide_future *t = NULL;

		ck_assert_int_eq(tide_task_spawn(loop, deep_task, (void *)(intptr_t)i, all[i], &t), 0);
		ck_assert_msg(strncmp(tide_task_name(t), "Task-", 5) == 0, "name %s", tide_task_name(t));
		tt_run_until_complete(loop, t, 0);
		ck_assert_int_eq(tt_result(t), (int64_t)i + 3);
		tide_future_unref(t);
	}
	finish(loop);
}
END_TEST

/* --------------------------------------------------------------- servers -- */

struct srv {
	int made;  /* connections the factory served */
	int lost;
};

static void srv_made(struct tide_transport *t, void *proto)
{
	struct srv *s = proto;

	s->made++;
	ck_assert_int_eq(tide_transport_write(t, "hi\n", 3), 0);
	tide_transport_close(t);
}

static void srv_lost(struct tide_transport *t, int err, void *proto)
{
	struct srv *s = proto;

	(void)t;
	(void)err;
	s->lost++;
}

static const struct tide_protocol_ops srv_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = srv_made,
	.connection_lost = srv_lost,
};

static int srv_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	*ops = &srv_ops;
	*proto = arg;
	return 0;
}

/* A blocking client of 127.0.0.1:port: the kernel's backlog completes the handshake. */
static int dial(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Reads what the server says until it closes, running the loop meanwhile. */
static void expect_hi(struct tide_loop *loop, int fd)
{
	char buf[16];
	size_t got = 0;
	ssize_t n;

	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
	for (;;) {
		n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n == 0)
			break;
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		ck_assert_int_eq(errno, EAGAIN);
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	}
	ck_assert_uint_eq(got, 3);
	ck_assert_mem_eq(buf, "hi\n", 3);
	close(fd);
}

static int listen_opt(struct tide_server *sv, int opt)
{
	int fd, v = -1;
	socklen_t len = sizeof(v);

	ck_assert_uint_eq(tide_server_sockets(sv, &fd, 1), 1);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, opt, &v, &len), 0);
	return v != 0;
}

/* Makes a server on 127.0.0.1, port 0, with opts; returns it, listening. */
static struct tide_server *serve(struct tide_loop *loop, const struct tide_server_opts *opts, struct srv *s)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_create_server(loop, hosts, 1, 0, opts, srv_factory, s, &f), 0);
	tt_run_until_complete(loop, f, 0);
	return take_server(f);
}

/*
 * A zeroed struct tide_server_opts is NULL, asyncio's create_server(): it
 * accepts at once, with SO_REUSEADDR, without SO_REUSEPORT. So does a
 * short one; the two flipped fields turn those defaults off.
 */
START_TEST(test_server_opts_zeroed)
{
	struct tide_server_opts zero, shorter, deferred, no_reuse;
	const struct tide_server_opts *all[] = { NULL, &zero, &shorter };
	struct tide_loop *loop = tt_loop_new();
	struct tide_server *sv;
	struct srv s;
	int fd;

	zeroed_and_short(&zero, &shorter, sizeof(zero));
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		memset(&s, 0, sizeof(s));
		sv = serve(loop, all[i], &s);
		ck_assert_int_eq(tide_server_is_serving(sv), 1);
		ck_assert_int_eq(listen_opt(sv, SO_REUSEADDR), 1);
		ck_assert_int_eq(listen_opt(sv, SO_REUSEPORT), 0);
		expect_hi(loop, dial(tide_server_port(sv)));
		ck_assert_int_eq(s.made, 1);
		RUN_UNTIL(loop, s.lost == 1);
		tide_server_free(sv);
	}

	deferred = zero;
	deferred.defer_serving = 1;
	memset(&s, 0, sizeof(s));
	sv = serve(loop, &deferred, &s);
	ck_assert_int_eq(tide_server_is_serving(sv), 0);
	fd = dial(tide_server_port(sv));
	for (int i = 0; i < 5; i++)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(s.made, 0);
	ck_assert_int_eq(tide_server_start_serving(sv), 0);
	expect_hi(loop, fd);
	RUN_UNTIL(loop, s.lost == 1);
	tide_server_free(sv);

	no_reuse = zero;
	no_reuse.no_reuse_address = 1;
	memset(&s, 0, sizeof(s));
	sv = serve(loop, &no_reuse, &s);
	ck_assert_int_eq(tide_server_is_serving(sv), 1);
	ck_assert_int_eq(listen_opt(sv, SO_REUSEADDR), 0);
	tide_server_free(sv);
	finish(loop);
}
END_TEST

static int64_t hi_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	int *served = arg;

	(void)r;
	(*served)++;
	return tide_stream_write(w, "hi\n", 3);
}

/* The same through the streams' start_server: a zeroed struct serves at once. */
START_TEST(test_stream_server_opts_zeroed)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct tide_server_opts zero, shorter;
	const struct tide_server_opts *all[] = { NULL, &zero, &shorter };
	struct tide_loop *loop = tt_loop_new();

	zeroed_and_short(&zero, &shorter, sizeof(zero));
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		struct tide_future *f = NULL;
		struct tide_server *sv;
		int served = 0;

		ck_assert_int_eq(tide_start_server(loop, hosts, 1, 0, all[i], hi_handler, &served, &f), 0);
		tt_run_until_complete(loop, f, 0);
		sv = take_server(f);
		ck_assert_int_eq(tide_server_is_serving(sv), 1);
		ck_assert_int_eq(listen_opt(sv, SO_REUSEADDR), 1);
		expect_hi(loop, dial(tide_server_port(sv)));
		ck_assert_int_eq(served, 1);
		tide_server_free(sv);
	}
	finish(loop);
}
END_TEST

/* ------------------------------------------------------------- datagrams -- */

static int sock_opt(struct tide_transport *t, int opt)
{
	int fd = -1, v = -1;
	socklen_t len = sizeof(fd);

	ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &len), 0);
	len = sizeof(v);
	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, opt, &v, &len), 0);
	return v != 0;
}

/*
 * A zeroed struct tide_datagram_opts is NULL: no address at all, which is
 * -EINVAL as asyncio's ValueError. With only an address, the rest is
 * asyncio's default: no SO_REUSEPORT, no SO_BROADCAST.
 */
START_TEST(test_datagram_opts_zeroed)
{
	struct tide_datagram_opts zero, shorter, local;
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = NULL;
	struct tide_transport *t;

	zeroed_and_short(&zero, &shorter, sizeof(zero));
	ck_assert_int_eq(tide_create_datagram_endpoint(loop, NULL, NULL, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &zero, NULL, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &shorter, NULL, NULL, &f), -EINVAL);
	local = zero;
	local.local_host = "127.0.0.1";
	ck_assert_int_eq(tide_create_datagram_endpoint(loop, &local, NULL, NULL, &f), 0);
	tt_run_until_complete(loop, f, 0);
	t = result_ptr(f);
	ck_assert_int_eq(sock_opt(t, SO_REUSEPORT), 0);
	ck_assert_int_eq(sock_opt(t, SO_BROADCAST), 0);
	tide_transport_close(t);
	tide_future_unref(f);
	finish(loop);
}
END_TEST

/* ------------------------------------------------------- protocol tables -- */

struct cli {
	int made, data, lost;
};

static void cli_made(struct tide_transport *t, void *proto)
{
	(void)t;
	((struct cli *)proto)->made++;
}

static void cli_data(struct tide_transport *t, const void *data, size_t n, void *proto)
{
	(void)t;
	(void)data;
	(void)n;
	((struct cli *)proto)->data++;
}

static void cli_lost(struct tide_transport *t, int err, void *proto)
{
	(void)t;
	(void)err;
	((struct cli *)proto)->lost++;
}

/* Connects to sv with ops and waits until the server has closed the connection. */
static struct cli connect_with(struct tide_loop *loop, struct tide_server *sv, struct srv *s,
			       const struct tide_protocol_ops *ops)
{
	struct cli c = { 0 };
	struct tide_future *f = NULL;
	struct tide_transport *t;
	int lost0 = s->lost;

	ck_assert_int_eq(tide_create_connection(loop, "127.0.0.1", tide_server_port(sv), ops, &c, &f), 0);
	tt_run_until_complete(loop, f, 0);
	t = result_ptr(f);
	RUN_UNTIL(loop, s->lost > lost0 && tide_transport_is_closing(t));
	tide_future_unref(f);
	/* Past the peer's close: our side ends too. */
	for (int i = 0; i < 5; i++)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	return c;
}

/*
 * A protocol table zeroed but for .size is a NULL table: no callback, the
 * connection still works. A short table (an older caller's) has no member
 * past its size, whatever the memory after it holds.
 */
START_TEST(test_protocol_ops_zeroed)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_protocol_ops zero, shorter;
	struct tide_future *f = NULL;
	struct tide_server *sv;
	struct srv s = { 0 };
	struct cli c;

	sv = serve(loop, NULL, &s);
	memset(&zero, 0, sizeof(zero));
	zero.size = sizeof(zero);
	c = connect_with(loop, sv, &s, NULL);
	ck_assert_int_eq(c.made + c.data + c.lost, 0);
	c = connect_with(loop, sv, &s, &zero);
	ck_assert_int_eq(c.made + c.data + c.lost, 0);
	/* The table ends after connection_made: data_received and
	 * connection_lost, set here, lie past it and are never called. */
	memset(&shorter, 0x5a, sizeof(shorter));
	shorter.size = offsetof(struct tide_protocol_ops, data_received);
	shorter.connection_made = cli_made;
	shorter.data_received = cli_data;
	shorter.connection_lost = cli_lost;
	c = connect_with(loop, sv, &s, &shorter);
	ck_assert_int_eq(c.made, 1);
	ck_assert_int_eq(c.data, 0);
	ck_assert_int_eq(c.lost, 0);
	/* A table without its size is refused, as opts are. */
	zero.size = 0;
	ck_assert_int_eq(tide_create_connection(loop, "127.0.0.1", tide_server_port(sv), &zero, NULL, &f),
			 -EINVAL);
	tide_server_free(sv);
	finish(loop);
}
END_TEST

/* ---------------------------------------------------------- error context -- */

static struct tide_error_context g_seen;
static int g_calls;

static void seen_handler(struct tide_loop *loop, const struct tide_error_context *ctx, void *arg)
{
	(void)loop;
	(void)arg;
	g_seen = *ctx;
	g_calls++;
}

/*
 * A context zeroed but for .size reaches the handler as that; a short one
 * (an older caller's) as a full struct whose missing fields are 0.
 */
START_TEST(test_error_context_zeroed)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_error_context zero, shorter;

	tide_loop_set_exception_handler(loop, seen_handler, NULL);
	memset(&zero, 0, sizeof(zero));
	zero.size = sizeof(zero);
	tide_loop_call_exception_handler(loop, &zero);
	ck_assert_int_eq(g_calls, 1);
	ck_assert_uint_eq(g_seen.size, sizeof(g_seen));
	ck_assert_ptr_null(g_seen.message);
	ck_assert_int_eq(g_seen.error, 0);
	ck_assert_ptr_null(g_seen.future);
	ck_assert_ptr_null(g_seen.callback);

	memset(&shorter, 0x5a, sizeof(shorter));
	shorter.size = offsetof(struct tide_error_context, error);
	shorter.message = "short";
	tide_loop_call_exception_handler(loop, &shorter);
	ck_assert_int_eq(g_calls, 2);
	ck_assert_uint_eq(g_seen.size, sizeof(g_seen));
	ck_assert_str_eq(g_seen.message, "short");
	ck_assert_int_eq(g_seen.error, 0);
	ck_assert_ptr_null(g_seen.future);
	ck_assert_ptr_null(g_seen.callback);

	/* The default handler reads no further than the size either. */
	tide_loop_set_exception_handler(loop, NULL, NULL);
	tide_loop_call_exception_handler(loop, &shorter);
	tide_loop_default_exception_handler(loop, &zero);
	finish(loop);
}
END_TEST

int main(void)
{
	struct tt_suite ts;
	TCase *tc;

	tt_suite_init(&ts, "opts", 120);
	/* The loop's own options pick the backend: no configuration applies. */
	tc = tt_tcase(&ts, "loop");
	tcase_add_test(tc, test_loop_opts_zeroed);
	tt_add(&ts, test_executor_opts_zeroed);
	tt_add(&ts, test_task_opts_zeroed);
	tt_add(&ts, test_server_opts_zeroed);
	tt_add(&ts, test_stream_server_opts_zeroed);
	tt_add(&ts, test_datagram_opts_zeroed);
	tt_add(&ts, test_protocol_ops_zeroed);
	tt_add(&ts, test_error_context_zeroed);
	return tt_run(&ts);
}
