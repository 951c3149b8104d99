/* SPDX-License-Identifier: MIT */
/*
 * test/stream-socket.c: asyncio's StreamReader/StreamWriter over real
 * connections (src/net/stream.c), as CPython's test_streams.py checks them, on
 * every backend configuration: echo through start_server +
 * open_connection (TCP and Unix); readline, readuntil, readexactly and
 * read case by case against a scripted peer (split across writes, EOF
 * with a partial, limit overruns, multi-byte separators) and a slow one;
 * a task cancelled in a read loses no data; read(n) lending and peek over
 * a socket; flow control both ways (a reader that does not read pauses
 * the transport; a peer that never reads blocks drain, bounds the write
 * buffer and fails drain when it resets; two drainers at once); the
 * connection's error after the buffered data; the writer API and the
 * handler's lifecycle; and no leaks, counted.
 *
 * The hard part is checking the reader's inner state over a real
 * connection (bytes buffered, lent, kept in a ring buffer, reading
 * paused): the library's hidden test hooks (src/net/stream-hooks.h) read it,
 * so this program links the library's objects. Every test body runs in a
 * main task and ends with tide_loop_free() == 0.
 */
#include "config.h"
#include "net-fixture.h"
#include "net/stream-hooks.h" /* src/net: the hidden test hooks */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---------------------------------------------------------- utilities -- */

/* Sleeps a millisecond at a time while cond does not hold, 5 s at most
 * (the caller asserts what it waited for). */
#define SLEEP_UNTIL(cond)                            \
	for (int i_ = 0; i_ < 5000 && !(cond); i_++) \
		ck_assert_int_eq(tide_sleep(0.001), 0)

/* Stream servers started (the leak count test checks it ran some). */
static int g_servers;

static struct tide_server *server_from(struct tide_future *f)
{
	void *p = NULL;

	ck_assert_int_eq(tide_await(f), 0);
	p = tide_future_take_ptr(f);
	ck_assert_ptr_nonnull(p);
	tide_future_unref(f);
	return p;
}

/* A stream server on 127.0.0.1, port 0; *port gets the port. */
static struct tide_server *serve_tcp(tide_stream_handler_cb h, void *arg, int *port)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct tide_server *s;
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_start_server(g_loop, hosts, 1, 0, NULL, h, arg, &f), 0);
	g_servers++;
	s = server_from(f);
	*port = tide_server_port(s);
	ck_assert_int_gt(*port, 0);
	return s;
}

static void unix_path(char *buf, size_t n, const char *tag)
{
	snprintf(buf, n, "/tmp/tide-stream-%ld-%s.sock", (long)getpid(), tag);
	unlink(buf);
}

static struct tide_server *serve_unix(tide_stream_handler_cb h, void *arg, const char *path)
{
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_start_unix_server(g_loop, path, NULL, h, arg, &f), 0);
	g_servers++;
	return server_from(f);
}

/* Stops a server once its connections are gone, and frees it. */
static void server_done(struct tide_server *s)
{
	tide_server_close(s);
	ck_assert_int_eq(tide_server_wait_closed(s), 0);
	tide_server_free(s);
}

static void connect_tcp(int port, struct tide_stream_reader **r, struct tide_stream_writer **w)
{
	int rc = tide_open_connection("127.0.0.1", port, r, w);

	ck_assert_msg(rc == 0, "open_connection: %d (%s)", rc, tide_strerror(rc));
	ck_assert_ptr_nonnull(*r);
	ck_assert_ptr_nonnull(*w);
}

/* Closes, waits for connection_lost, frees: the pair is gone on return. */
static void close_pair(struct tide_stream_reader *r, struct tide_stream_writer *w)
{
	tide_stream_close(w);
	ck_assert_int_eq(tide_stream_is_closing(w), 1);
	ck_assert_int_eq(tide_stream_wait_closed(w), 0);
	tide_stream_free(r, w);
}

static void write_str(struct tide_stream_writer *w, const char *s)
{
	ck_assert_int_eq(tide_stream_write(w, s, strlen(s)), 0);
}

/* A TCP client socket connected to 127.0.0.1:port from the task
 * (tide_socket, tide_connect), for resets and peers that never read.
 * rcvbuf > 0 sets SO_RCVBUF first. */
static int task_connect(int port, int rcvbuf)
{
	struct sockaddr_in a;
	int fd = tide_socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	if (rcvbuf > 0)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(tide_connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Closes fd with SO_LINGER 0: the peer sees a reset. */
static void raw_reset(int fd)
{
	struct linger l = { 1, 0 };

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
	ck_assert_int_eq(tide_close(fd), 0);
}

/* ------------------------------------------------------------- echo -- */

static int g_handlers_done;

/* Echoes everything until EOF (asyncio's echo server, with read()). */
static int64_t echo_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	char buf[4096];
	ssize_t n;

	(void)arg;
	while ((n = tide_stream_read(r, buf, sizeof(buf))) > 0) {
		ck_assert_int_eq(tide_stream_write(w, buf, (size_t)n), 0);
		ck_assert_int_eq(tide_stream_drain(w), 0);
	}
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(tide_stream_at_eof(r), 1);
	g_handlers_done++;
	return 0;
}

struct echo_client {
	int port;          /* TCP port, or 0 for path */
	const char *path;  /* Unix socket */
	int id;
};

static int64_t echo_client_main(void *arg)
{
	struct echo_client *c = arg;
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	size_t big = 1 << 20;
	unsigned char *out = malloc(big), *in = malloc(big);
	char line[128], got[128];
	socklen_t len;
	struct sockaddr_storage ss;
	int rc;

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(in);
	if (c->path) {
		rc = tide_open_unix_connection(c->path, &r, &w);
		ck_assert_msg(rc == 0, "open_unix_connection: %s", tide_strerror(rc));
	} else {
		connect_tcp(c->port, &r, &w);
		len = sizeof(ss);
		ck_assert_int_eq(tide_stream_get_extra_info(w, "peername", &ss, &len), 0);
		ck_assert_int_eq(ss.ss_family, AF_INET);
		ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), c->port);
	}
	ck_assert_ptr_nonnull(tide_stream_transport(w));
	ck_assert_int_eq(tide_stream_is_closing(w), 0);
	ck_assert_int_eq(tide_stream_can_write_eof(w), 1);
	ck_assert_int_eq(tide_stream_get_extra_info(w, "no-such-thing", &ss, &len), -ENOENT);
	for (int i = 0; i < 20; i++) {
		struct iovec iov[2];
		int k = snprintf(line, sizeof(line), "client %d line %d\n", c->id, i);

		iov[0].iov_base = line;
		iov[0].iov_len = 7;
		iov[1].iov_base = line + 7;
		iov[1].iov_len = (size_t)k - 7;
		ck_assert_int_eq(tide_stream_writelines(w, iov, 2), 0);
		ck_assert_int_eq(tide_stream_drain(w), 0);
		ck_read_eq(tide_stream_readline(r, got, sizeof(got)), got, line);
	}
	/* 1 MiB through, written at once, read back in one readexactly. */
	for (size_t i = 0; i < big; i++)
		out[i] = (unsigned char)(i * 7 + (size_t)c->id);
	ck_assert_int_eq(tide_stream_write(w, out, big), 0);
	ck_assert_int_eq(tide_stream_readexactly(r, in, big, NULL), (ssize_t)big);
	ck_assert_int_eq(memcmp(in, out, big), 0);
	ck_assert_int_eq(tide_stream_drain(w), 0);
	/* Half-close: the handler sees EOF, returns, and its side closes. */
	ck_assert_int_eq(tide_stream_write_eof(w), 0);
	ck_assert_int_eq(tide_stream_read(r, got, sizeof(got)), 0);
	ck_assert_int_eq(tide_stream_at_eof(r), 1);
	ck_assert_int_eq(tide_stream_readline(r, got, sizeof(got)), 0);
	close_pair(r, w);
	free(out);
	free(in);
	return 0;
}

/* Three echo clients against a server running h (TCP, or Unix at path). */
static void echo_clients(tide_stream_handler_cb h, const char *path)
{
	struct tide_server *s;
	struct echo_client c[3];
	struct tide_future *t[3];
	int port = 0;

	g_handlers_done = 0;
	s = path ? serve_unix(h, NULL, path) : serve_tcp(h, NULL, &port);
	for (int i = 0; i < 3; i++) {
		c[i].port = port;
		c[i].path = path;
		c[i].id = i;
		t[i] = spawn(echo_client_main, &c[i]);
	}
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(join(t[i]), 0);
	server_done(s);
	ck_assert_int_eq(g_handlers_done, 3);
}

static int64_t echo_main(void *arg)
{
	echo_clients(echo_handler, arg);
	return 0;
}

MAIN_TEST(test_echo_tcp, echo_main)

START_TEST(test_echo_unix)
{
	char path[108];

	unix_path(path, sizeof(path), "echo");
	run_main(echo_main, path);
	unlink(path);
}
END_TEST

/* --------------------------------------------- scripted peer, socket -- */

/* The server writes pieces with a pause between (so they arrive apart), then closes. */
struct script {
	const char *const *pieces;
	size_t n;
};

static int64_t script_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	const struct script *sc = arg;

	(void)r;
	for (size_t i = 0; i < sc->n; i++) {
		write_str(w, sc->pieces[i]);
		ck_assert_int_eq(tide_stream_drain(w), 0);
		ck_assert_int_eq(tide_sleep(0.005), 0);
	}
	return 0; /* the pair closes: the client sees EOF */
}

/* Serves one scripted connection (TCP or Unix) and opens it. */
struct scripted {
	struct tide_server *s;
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	char path[108];
};

static void scripted_open(struct scripted *x, const struct script *sc, bool unix_sock)
{
	int port;

	if (unix_sock) {
		unix_path(x->path, sizeof(x->path), "script");
		x->s = serve_unix(script_handler, (void *)sc, x->path);
		ck_assert_int_eq(tide_open_unix_connection(x->path, &x->r, &x->w), 0);
	} else {
		x->path[0] = '\0';
		x->s = serve_tcp(script_handler, (void *)sc, &port);
		connect_tcp(port, &x->r, &x->w);
	}
}

static void scripted_close(struct scripted *x)
{
	close_pair(x->r, x->w);
	server_done(x->s);
	if (x->path[0])
		unlink(x->path);
}

#define SCRIPT(name, ...)                                                       \
	static const char *const name##_p[] = { __VA_ARGS__ };                  \
	static const struct script name = { name##_p, sizeof(name##_p) / sizeof(name##_p[0]) }

SCRIPT(sc_lines, "li", "ne1\nline", "2\nlast");
SCRIPT(sc_until, "GET / HTTP/1.1\r", "\nHost: x\r\n\r", "\nbody");
SCRIPT(sc_exact, "abc", "defgh", "ij");
SCRIPT(sc_read, "hello", "world");
SCRIPT(sc_until_overrun, "aaaaaaaaaaaa", ";b;");
SCRIPT(sc_line_overrun, "0123456789abcdef\n", "ok\n");

static int64_t read_cases_main(void *arg)
{
	bool unix_sock = arg != NULL;
	struct scripted x;
	char buf[256];
	size_t partial = 99;

	/* readline: lines split across writes; at EOF the partial line, then 0. */
	scripted_open(&x, &sc_lines, unix_sock);
	ck_read_eq(tide_stream_readline(x.r, buf, sizeof(buf)), buf, "line1\n");
	ck_read_eq(tide_stream_readline(x.r, buf, sizeof(buf)), buf, "line2\n");
	ck_read_eq(tide_stream_readline(x.r, buf, sizeof(buf)), buf, "last");
	ck_assert_int_eq(tide_stream_readline(x.r, buf, sizeof(buf)), 0);
	ck_assert_int_eq(tide_stream_at_eof(x.r), 1);
	ck_assert_int_eq(tide_stream_read(x.r, buf, sizeof(buf)), 0);
	scripted_close(&x);

	/* readuntil with a 4-byte separator split across writes; EOF partial. */
	scripted_open(&x, &sc_until, unix_sock);
	ck_read_eq(tide_stream_readuntil(x.r, "\r\n\r\n", 4, buf, sizeof(buf), &partial), buf,
		   "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	ck_assert_uint_eq(partial, 0);
	ck_assert_int_eq(tide_stream_readuntil(x.r, "\r\n\r\n", 4, buf, sizeof(buf), &partial),
			 TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(partial, 4);
	ck_assert_int_eq(memcmp(buf, "body", 4), 0);
	ck_assert_int_eq(tide_stream_readuntil(x.r, "\r\n\r\n", 4, buf, sizeof(buf), &partial),
			 TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(partial, 0);
	scripted_close(&x);

	/* readexactly across writes; EOF with a partial. */
	scripted_open(&x, &sc_exact, unix_sock);
	ck_read_eq(tide_stream_readexactly(x.r, buf, 4, &partial), buf, "abcd");
	ck_read_eq(tide_stream_readexactly(x.r, buf, 4, &partial), buf, "efgh");
	ck_assert_int_eq(tide_stream_readexactly(x.r, buf, 4, &partial), TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(partial, 2);
	ck_assert_int_eq(memcmp(buf, "ij", 2), 0);
	ck_assert_int_eq(tide_stream_readexactly(x.r, buf, 1, &partial), TIDE_EINCOMPLETE_READ);
	ck_assert_uint_eq(partial, 0);
	ck_assert_int_eq(tide_stream_readexactly(x.r, buf, 0, &partial), 0);
	scripted_close(&x);

	/* read: up to n, at least 1, 0 at EOF. */
	{
		char all[32];
		size_t got = 0;
		ssize_t n;

		scripted_open(&x, &sc_read, unix_sock);
		n = tide_stream_read(x.r, all, 3);
		ck_assert_int_ge(n, 1);
		ck_assert_int_le(n, 3);
		got = (size_t)n;
		while ((n = tide_stream_read(x.r, all + got, sizeof(all) - got)) > 0)
			got += (size_t)n;
		ck_assert_int_eq(n, 0);
		ck_assert_uint_eq(got, 10);
		ck_assert_int_eq(memcmp(all, "helloworld", 10), 0);
		ck_assert_int_eq(tide_stream_read(x.r, all, sizeof(all)), 0);
		scripted_close(&x);
	}

	/* readuntil past the limit: LIMIT_OVERRUN and the data stays. */
	scripted_open(&x, &sc_until_overrun, unix_sock);
	ck_assert_int_eq(tide_stream_set_limit(x.r, 8), 0);
	ck_assert_int_eq(tide_stream_readuntil(x.r, ";", 1, buf, sizeof(buf), &partial), TIDE_ELIMIT_OVERRUN);
	ck_read_eq(tide_stream_readexactly(x.r, buf, 12, NULL), buf, "aaaaaaaaaaaa");
	ck_read_eq(tide_stream_readuntil(x.r, ";", 1, buf, sizeof(buf), NULL), buf, ";");
	ck_read_eq(tide_stream_readuntil(x.r, ";", 1, buf, sizeof(buf), NULL), buf, "b;");
	scripted_close(&x);

	/* readline past the limit: LIMIT_OVERRUN, the line is discarded up to
	 * its newline, the next line reads normally. */
	scripted_open(&x, &sc_line_overrun, unix_sock);
	ck_assert_int_eq(tide_stream_set_limit(x.r, 8), 0);
	ck_assert_int_eq(tide_stream_readline(x.r, buf, sizeof(buf)), TIDE_ELIMIT_OVERRUN);
	ck_read_eq(tide_stream_readline(x.r, buf, sizeof(buf)), buf, "ok\n");
	ck_assert_int_eq(tide_stream_readline(x.r, buf, sizeof(buf)), 0);
	scripted_close(&x);
	return 0;
}

MAIN_TEST(test_read_cases_tcp, read_cases_main)

START_TEST(test_read_cases_unix)
{
	run_main(read_cases_main, (void *)1);
}
END_TEST

/* ----------------------------------------- slow peer, one byte each -- */

static int64_t slow_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	const char *text = arg;

	(void)r;
	for (const char *p = text; *p; p++) {
		ck_assert_int_eq(tide_stream_write(w, p, 1), 0);
		ck_assert_int_eq(tide_stream_drain(w), 0);
		ck_assert_int_eq(tide_sleep(0.0005), 0);
	}
	return 0;
}

static int64_t slow_peer_main(void *arg)
{
	static const char text[] = "first line\nsecond, a little longer line\n\nlast without newline";
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide__stream_stats st;
	struct tide_server *s;
	char buf[128];
	int port;

	(void)arg;
	s = serve_tcp(slow_handler, (void *)text, &port);
	connect_tcp(port, &r, &w);
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "first line\n");
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "second, a little longer line\n");
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "\n");
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "last without newline");
	ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), 0);
	tide__stream_get_stats(r, &st);
	/* Each byte was searched once, however it arrived. */
	ck_assert_uint_le(st.scanned, sizeof(text));
	ck_assert_uint_ge(st.waits, 2);
	close_pair(r, w);
	server_done(s);
	return 0;
}

MAIN_TEST(test_slow_peer, slow_peer_main)

/* ------------------------------------------ cancellation, fed by hand -- */

/*
 * A task cancelled in a read loses no data: first on a pair fed by hand,
 * where the races are exact (one configuration, the TCase "fed"), then
 * over a real connection. The fed case lives here, with the socket one,
 * because test_no_leak runs it again under the counting allocator.
 */

static int64_t readexactly4_task(void *arg)
{
	char *buf = arg;

	return tide_stream_readexactly(g_r, buf, 4, NULL);
}

static int64_t cancel_hook_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide_future *t;
	char buf[64], mine[64];

	(void)arg;
	feed_pair(&g_r, &w);
	/* Cancelled while waiting with part of a line buffered. */
	feed(g_r, "hel");
	t = spawn_waiting(readline_task, buf);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(join(t), -ECANCELED);
	feed(g_r, "lo\n");
	ck_read_eq(tide_stream_readline(g_r, mine, sizeof(mine)), mine, "hello\n");

	/* The race: the line arrives (the reader is chosen) and the cancel
	 * comes before the reader runs: -ECANCELED, and the line stays. */
	t = spawn_waiting(readline_task, buf);
	feed(g_r, "raced\n");
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(join(t), -ECANCELED);
	ck_read_eq(tide_stream_readline(g_r, mine, sizeof(mine)), mine, "raced\n");

	/* readexactly cancelled with half its bytes there. */
	feed(g_r, "ab");
	t = spawn_waiting(readexactly4_task, buf);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(join(t), -ECANCELED);
	feed(g_r, "cd");
	ck_read_eq(tide_stream_readexactly(g_r, mine, 4, NULL), mine, "abcd");
	ck_assert_uint_eq(tide__stream_buffered(g_r), 0);
	tide_stream_free(g_r, w);
	return 0;
}

MAIN_TEST(test_cancel_no_data_lost, cancel_hook_main)

/* ------------------------------------- cancel over a real connection -- */

static struct tide_event *g_ev;

/* What two_part_handler writes: before (unless NULL), then after. */
struct two_parts {
	const char *before, *after;
};

/* Writes before, waits for g_ev, writes after, then waits for the client's EOF. */
static int64_t two_part_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	const struct two_parts *tp = arg;

	if (tp->before) {
		write_str(w, tp->before);
		ck_assert_int_eq(tide_stream_drain(w), 0);
	}
	ck_assert_int_eq(tide_event_wait(g_ev), 0);
	write_str(w, tp->after);
	ck_assert_int_eq(tide_stream_drain(w), 0);
	/* Wait for the client's EOF before closing. */
	ck_assert_int_eq(tide_stream_read(r, (char[8]){ 0 }, 8), 0);
	return 0;
}

/* A two_part_handler server, g_ev, and the pair g_r, *w connected to it. */
static struct tide_server *two_part_start(const struct two_parts *parts, struct tide_stream_writer **w)
{
	struct tide_server *s;
	int port;

	ck_assert_int_eq(tide_event_new(g_loop, &g_ev), 0);
	s = serve_tcp(two_part_handler, (void *)parts, &port);
	connect_tcp(port, &g_r, w);
	return s;
}

/* Ends it: EOF both ways, the pair closed, the server and g_ev gone. */
static void two_part_done(struct tide_server *s, struct tide_stream_writer *w)
{
	char c[8];

	ck_assert_int_eq(tide_stream_write_eof(w), 0);
	ck_assert_int_eq(tide_stream_read(g_r, c, sizeof(c)), 0);
	close_pair(g_r, w);
	server_done(s);
	tide_event_free(g_ev);
}

static int64_t cancel_socket_main(void *arg)
{
	static const struct two_parts parts = { "par", "tial\nand more\n" };
	struct tide_stream_writer *w;
	struct tide_server *s;
	struct tide_future *t;
	char buf[64], mine[64];

	(void)arg;
	s = two_part_start(&parts, &w);
	t = spawn(readline_task, buf);
	/* Let "par" arrive and the reader wait for the rest of its line. */
	while (tide__stream_buffered(g_r) < 3)
		ck_assert_int_eq(tide_sleep(0.001), 0);
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(join(t), -ECANCELED);
	tide_event_set(g_ev);
	ck_read_eq(tide_stream_readline(g_r, mine, sizeof(mine)), mine, "partial\n");
	ck_read_eq(tide_stream_readline(g_r, mine, sizeof(mine)), mine, "and more\n");
	two_part_done(s, w);
	return 0;
}

MAIN_TEST(test_cancel_socket, cancel_socket_main)

/*
 * One read at a time: while a readline waits with part of its line
 * buffered, a read, a readuntil with another separator, a peek and a
 * consume in the main task are refused, and the line comes whole, once
 * (the stream reader's fuzz target saw a read take the part and the
 * readline then skip the newline that followed it).
 */
static int64_t beside_readline_socket_main(void *arg)
{
	static const struct two_parts parts = { "par", "tial\nand more\n" };
	struct tide_stream_writer *w;
	struct tide_server *s;
	struct tide_future *t;
	char buf[64], mine[64];
	const void *p;

	(void)arg;
	s = two_part_start(&parts, &w);
	t = spawn_waiting(readline_task, buf);
	SLEEP_UNTIL(tide__stream_buffered(g_r) >= 3);
	ck_assert_uint_eq(tide__stream_buffered(g_r), 3);
	ck_assert_int_eq(tide_future_done(t), 0);
	ck_assert_int_eq(tide_stream_read(g_r, mine, sizeof(mine)), -EBUSY);
	ck_assert_int_eq(tide_stream_readuntil(g_r, "a", 1, mine, sizeof(mine), NULL), -EBUSY);
	ck_assert_int_eq(tide_stream_peek(g_r, &p), -EBUSY);
	ck_assert_int_eq(tide_stream_consume(g_r, 1), -EBUSY);
	tide_event_set(g_ev);
	ck_read_eq(join(t), buf, "partial\n");
	ck_read_eq(tide_stream_readline(g_r, mine, sizeof(mine)), mine, "and more\n");
	two_part_done(s, w);
	return 0;
}

MAIN_TEST(test_beside_readline_socket, beside_readline_socket_main)

/* --------------------------- read(n) lends its buffer, over a socket -- */

/*
 * On every backend path (a copy out of the ring buffer on io_uring,
 * recv(2) straight into the caller's buffer on the readiness paths), a
 * read(LEND) that waits gets its bytes without the reader's buffer, and
 * the rest follows in order.
 */
static int64_t read_lends_socket_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide_server *s;
	struct tide_future *t;
	static char buf[LEND], mine[2 * LEND];
	struct two_parts parts = { NULL, pattern(LEND + 6) };
	int64_t first;
	size_t got;

	(void)arg;
	s = two_part_start(&parts, &w);
	t = spawn_waiting(read_lend_task, buf);
	ck_assert_int_eq(tide_future_done(t), 0);
	tide_event_set(g_ev);
	first = join(t);
	ck_assert_int_gt(first, 0);
	ck_assert_int_le(first, LEND);
	ck_assert_uint_gt(direct_bytes(g_r), 0);
	memcpy(mine, buf, (size_t)first);
	for (got = (size_t)first; got < LEND + 6;) {
		ssize_t n = tide_stream_read(g_r, mine + got, sizeof(mine) - got);

		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	ck_assert_uint_eq(got, LEND + 6);
	ck_assert_int_eq(memcmp(mine, pattern(LEND + 6), LEND + 6), 0);
	two_part_done(s, w);
	return 0;
}

MAIN_TEST(test_read_lends_socket, read_lends_socket_main)

/* --------------------------------------- peek and consume, over a socket -- */

static uint64_t g_kept;

/* Echoes everything until EOF with peek + consume: no buffer of its own. */
static int64_t peek_echo_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	const void *p;
	ssize_t n;

	(void)arg;
	while ((n = tide_stream_peek(r, &p)) > 0) {
		ck_assert_int_eq(tide_stream_write(w, p, (size_t)n), 0);
		ck_assert_int_eq(tide_stream_consume(r, (size_t)n), 0);
		ck_assert_int_eq(tide_stream_drain(w), 0);
	}
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(tide_stream_at_eof(r), 1);
	g_kept += kept_bytes(r);
	g_handlers_done++;
	return 0;
}

/* Whether this loop's receives come from the ring (peek then keeps them). */
static int ring_receives(void)
{
	return tide_loop_op_native(g_loop, TIDE_OP_RECV_MULTISHOT);
}

/*
 * The echo clients' lines, 1 MiB and half-close through a peek echo, byte
 * for byte; on io_uring's ring the bytes the peeks saw were the receive
 * buffers themselves.
 */
static int64_t peek_echo_main(void *arg)
{
	(void)arg;
	g_kept = 0;
	echo_clients(peek_echo_handler, NULL);
	printf("[%s] peek echo: %llu bytes kept in ring buffers\n", tt_cfg->name, (unsigned long long)g_kept);
	if (ring_receives())
		ck_assert_uint_gt(g_kept, 0);
	else
		ck_assert_uint_eq(g_kept, 0);
	return 0;
}

MAIN_TEST(test_peek_echo, peek_echo_main)

static bool g_peeking;
static int g_step;

/*
 * Peeks at "hello\n" (on io_uring it keeps the ring buffer), waits until
 * "world\n" is buffered behind it, consumes "he", then reads on with
 * readline: the kept bytes come first, in order. Then it waits for one
 * more peek and returns without consuming it (the pair's end gives the
 * ring buffer back).
 */
static int64_t peek_mixed_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	char line[64];
	const void *p;

	(void)arg;
	g_peeking = true;
	ck_assert_int_eq(tide_stream_peek(r, &p), 6);
	ck_assert_int_eq(memcmp(p, "hello\n", 6), 0);
	if (ring_receives())
		ck_assert_uint_eq(tide__stream_kept(r), 6);
	g_step = 1;
	SLEEP_UNTIL(tide__stream_buffered(r) == 12);
	ck_assert_uint_eq(tide__stream_buffered(r), 12);
	/* The kept run first; else the buffer holds both lines in one run. */
	ck_assert_int_eq(tide_stream_peek(r, &p), ring_receives() ? 6 : 12);
	ck_assert_int_eq(memcmp(p, "hello\nworld\n", ring_receives() ? 6 : 12), 0);
	ck_assert_int_eq(tide_stream_consume(r, 2), 0);
	ck_read_eq(tide_stream_readline(r, line, sizeof(line)), line, "llo\n");
	ck_assert_uint_eq(tide__stream_kept(r), 0);
	ck_read_eq(tide_stream_readline(r, line, sizeof(line)), line, "world\n");
	write_str(w, "ok\n");
	g_peeking = true;
	ck_assert_int_gt(tide_stream_peek(r, &p), 0);
	ck_assert_int_eq(memcmp(p, "held", 4), 0);
	g_kept += kept_bytes(r);
	g_handlers_done++;
	return 0;
}

/* One connection to peek_mixed_handler; its stats go to g_kept. */
static void peek_mixed_conn(int port)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	char line[16];

	connect_tcp(port, &r, &w);
	/* The handler runs until it parks in its peek: then send. */
	SLEEP_UNTIL(g_peeking);
	g_peeking = false;
	write_str(w, "hello\n");
	SLEEP_UNTIL(g_step == 1);
	g_step = 0;
	write_str(w, "world\n");
	ck_read_eq(tide_stream_readline(r, line, sizeof(line)), line, "ok\n");
	SLEEP_UNTIL(g_peeking);
	g_peeking = false;
	write_str(w, "held");
	/* The handler returns with "held" unconsumed: its side closes. */
	ck_assert_int_eq(tide_stream_read(r, line, sizeof(line)), 0);
	close_pair(r, w);
}

/*
 * Mixing peek with the other reads over a real connection; and a handler
 * that returns holding a kept ring buffer gives it back: on a loop whose
 * ring spares 4 buffers, 12 such connections in turn each still keep one.
 */
static int64_t peek_mixed_main(void *arg)
{
	struct tide_server *s;
	int port = 0;
	const int conns = 12;

	(void)arg;
	g_handlers_done = 0;
	s = serve_tcp(peek_mixed_handler, NULL, &port);
	for (int i = 0; i < conns; i++) {
		uint64_t before = g_kept;

		g_peeking = false;
		g_step = 0;
		peek_mixed_conn(port);
		SLEEP_UNTIL(g_handlers_done == i + 1);
		ck_assert_int_eq(g_handlers_done, i + 1);
		if (ring_receives())
			ck_assert_msg(g_kept - before >= 10, "[%s] connection %d: %llu bytes kept", tt_cfg->name, i,
				      (unsigned long long)(g_kept - before));
		else
			ck_assert_uint_eq(g_kept, 0);
	}
	server_done(s);
	return 0;
}

START_TEST(test_peek_mixed)
{
	struct tide_loop_opts o;

	tt_opts_init(&o);
	o.recv_buf_count = 16; /* a quarter of it may be out of the ring */
	g_kept = 0;
	tt_run_main_opts(&g_loop, &o, peek_mixed_main, NULL);
}
END_TEST

static bool g_client_peeking;

/* Writes "bye" once the client peeks, then returns: its side closes. */
static int64_t bye_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	(void)r;
	(void)arg;
	SLEEP_UNTIL(g_client_peeking);
	write_str(w, "bye");
	ck_assert_int_eq(tide_stream_drain(w), 0);
	return 0;
}

/*
 * A connection lost while its reader keeps a ring buffer: the bytes move
 * into the reader's buffer (still there to read) and the buffer goes back
 * to the ring, which tide_loop_free (asserted by run_main) checks.
 */
static int64_t peek_lost_main(void *arg)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *s;
	const void *p;
	int port = 0;

	(void)arg;
	g_client_peeking = false;
	s = serve_tcp(bye_handler, NULL, &port);
	connect_tcp(port, &r, &w);
	g_client_peeking = true;
	ck_assert_int_eq(tide_stream_peek(r, &p), 3);
	ck_assert_int_eq(memcmp(p, "bye", 3), 0);
	ck_assert_uint_eq(tide__stream_kept(r), ring_receives() ? 3 : 0);
	tide_stream_close(w);
	ck_assert_int_eq(tide_stream_wait_closed(w), 0);
	ck_assert_uint_eq(tide__stream_kept(r), 0);
	ck_assert_uint_eq(tide__stream_buffered(r), 3);
	ck_assert_int_eq(tide_stream_peek(r, &p), 3);
	ck_assert_int_eq(memcmp(p, "bye", 3), 0);
	ck_assert_int_eq(tide_stream_consume(r, 3), 0);
	ck_assert_int_eq(tide_stream_peek(r, &p), 0);
	tide_stream_free(r, w);
	server_done(s);
	return 0;
}

MAIN_TEST(test_peek_lost, peek_lost_main)

/* ----------------------------- reading flow control (pause/resume) -- */

#define FLOOD ((size_t)2 << 20)

static int64_t flood_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	unsigned char *data = malloc(FLOOD);

	(void)arg;
	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < FLOOD; i++)
		data[i] = (unsigned char)(i % 251);
	ck_assert_int_eq(tide_stream_write(w, data, FLOOD), 0);
	free(data);
	ck_assert_int_eq(tide_stream_drain(w), 0);
	ck_assert_int_eq(tide_stream_read(r, (char[8]){ 0 }, 8), 0);
	return 0;
}

/* Asserts that in holds flood_handler's bytes. */
static void check_flood(const unsigned char *in)
{
	for (size_t i = 0; i < FLOOD; i++)
		if (in[i] != (unsigned char)(i % 251))
			ck_abort_msg("byte %zu differs", i);
}

static int64_t read_pause_main(void *arg)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *s;
	unsigned char *in = malloc(FLOOD);
	size_t got = 0, limit = 4096;
	int port;
	ssize_t n;

	(void)arg;
	ck_assert_ptr_nonnull(in);
	s = serve_tcp(flood_handler, NULL, &port);
	connect_tcp(port, &r, &w);
	ck_assert_int_eq(tide_stream_set_limit(r, limit), 0);
	/* Not reading: the buffer passes 2 * limit and the transport pauses. */
	SLEEP_UNTIL(tide__stream_reading_paused(r));
	ck_assert_int_eq(tide__stream_reading_paused(r), 1);
	ck_assert_int_eq(tide_transport_is_reading(tide_stream_transport(w)), 0);
	/* And it stays bounded: at most one receive past the threshold. */
	ck_assert_int_eq(tide_sleep(0.05), 0);
	ck_assert_uint_le(tide__stream_buffered(r), 2 * limit + 512 * 1024);
	ck_assert_uint_lt(tide__stream_buffered(r), FLOOD);
	/* Reading resumes it; everything arrives, in order. */
	while (got < FLOOD && (n = tide_stream_read(r, in + got, FLOOD - got)) > 0)
		got += (size_t)n;
	ck_assert_uint_eq(got, FLOOD);
	check_flood(in);
	ck_assert_int_eq(tide__stream_reading_paused(r), 0);
	ck_assert_int_eq(tide_transport_is_reading(tide_stream_transport(w)), 1);
	close_pair(r, w);
	server_done(s);
	free(in);
	return 0;
}

MAIN_TEST(test_read_pause, read_pause_main)

/*
 * The 2 MiB flood read by small reads (arg non-NULL) or one readexactly.
 * Small reads (LEND at a time): a lent buffer takes only one receive, so
 * the reader's buffer takes over (its receives grow to 64 KiB) and the
 * reads do not each wait for a receive of their own. One readexactly:
 * what was buffered moves to its buffer, and most receives land there
 * directly (a batch of io_uring receives in turn), not in a reader buffer
 * grown to 2 MiB.
 */
static int64_t bulk_main(void *arg)
{
	struct tide_stream_writer *w;
	struct tide__stream_stats st;
	struct tide_server *s;
	unsigned char *in = malloc(FLOOD);
	size_t got = 0;
	ssize_t n;
	int port;

	ck_assert_ptr_nonnull(in);
	s = serve_tcp(flood_handler, NULL, &port);
	connect_tcp(port, &g_r, &w);
	if (arg) {
		while (got < FLOOD && (n = tide_stream_read(g_r, in + got, LEND)) > 0)
			got += (size_t)n;
		ck_assert_uint_eq(got, FLOOD);
	} else {
		ck_assert_int_eq(tide_stream_readexactly(g_r, in, FLOOD, NULL), (ssize_t)FLOOD);
	}
	check_flood(in);
	tide__stream_get_stats(g_r, &st);
	if (arg)
		ck_assert_uint_lt(st.waits, FLOOD / LEND / 4);
	else
		ck_assert_uint_gt(st.direct, FLOOD / 2);
	close_pair(g_r, w);
	server_done(s);
	free(in);
	return 0;
}

START_TEST(test_small_reads_bulk)
{
	run_main(bulk_main, (void *)1);
}
END_TEST

START_TEST(test_readexactly_bulk)
{
	run_main(bulk_main, NULL);
}
END_TEST

/* ----------------------------- writing flow control (drain, resets) -- */

#define CHUNK ((size_t)64 * 1024)

struct never_reads {
	size_t total;        /* bytes written by the handler */
	size_t max_wbs;      /* largest write buffer seen after a write */
	size_t high;         /* the transport's high-water mark */
	bool in_drain;       /* the handler is inside drain() */
	unsigned drains_blocked; /* drains that returned after waiting */
	int drain_rc;        /* what the last drain returned */
	int write_rc;        /* the first failed write, if any */
	bool done;
};

static int64_t never_reads_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	struct never_reads *nr = arg;
	struct tide_transport *t = tide_stream_transport(w);
	unsigned char *chunk = calloc(1, CHUNK);
	size_t low;

	(void)r;
	ck_assert_ptr_nonnull(chunk);
	tide_transport_get_write_buffer_limits(t, &nr->high, &low);
	ck_assert_uint_gt(nr->high, 0);
	for (;;) {
		size_t wbs;

		if ((nr->write_rc = tide_stream_write(w, chunk, CHUNK)) < 0)
			break;
		nr->total += CHUNK;
		wbs = tide_transport_get_write_buffer_size(t);
		if (wbs > nr->max_wbs)
			nr->max_wbs = wbs;
		nr->in_drain = true;
		nr->drain_rc = tide_stream_drain(w);
		nr->in_drain = false;
		if (nr->drain_rc < 0)
			break;
		/* Bounded: the peer reads nothing, so this cannot go on for long. */
		ck_assert_uint_lt(nr->total, (size_t)256 << 20);
	}
	free(chunk);
	nr->done = true;
	return 0;
}

static int64_t never_reads_main(void *arg)
{
	struct never_reads nr;
	struct tide_server *s;
	size_t last = 0;
	int port, fd, stable = 0;

	(void)arg;
	memset(&nr, 0, sizeof(nr));
	s = serve_tcp(never_reads_handler, &nr, &port);
	fd = task_connect(port, 4096);
	/* Wait until the handler is stuck in drain with nothing moving. */
	for (int i = 0; i < 5000 && stable < 20; i++) {
		ck_assert_int_eq(tide_sleep(0.002), 0);
		if (nr.in_drain && nr.total == last && nr.total > 0)
			stable++;
		else
			stable = 0;
		last = nr.total;
	}
	ck_assert_msg(stable >= 20, "drain did not block (total %zu, in_drain %d)", nr.total, nr.in_drain);
	ck_assert(!nr.done);
	/* Memory bounded: never more than high + one write buffered. */
	ck_assert_uint_le(nr.max_wbs, nr.high + CHUNK);
	/* The peer resets: the blocked drain fails with the connection's error. */
	raw_reset(fd);
	SLEEP_UNTIL(nr.done);
	ck_assert(nr.done);
	ck_assert_msg(nr.drain_rc == -ECONNRESET || nr.drain_rc == -EPIPE,
		      "drain returned %d (%s)", nr.drain_rc, tide_strerror(nr.drain_rc));
	server_done(s);
	return 0;
}

MAIN_TEST(test_drain_never_reads, never_reads_main)

/* Two tasks drain the same paused writer; both return once it resumes. */
struct two_drains {
	struct tide_stream_writer *w;
	int in_drain;
	int rc[2];
	int finished;
};

static int64_t second_drain(void *arg)
{
	struct two_drains *d = arg;

	d->in_drain++;
	d->rc[1] = tide_stream_drain(d->w);
	d->finished++;
	return 0;
}

#define TWO_DRAINS_BYTES ((size_t)4 << 20)

static int64_t two_drains_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	struct two_drains *d = arg;
	unsigned char *data = calloc(1, TWO_DRAINS_BYTES);
	struct tide_future *t;

	ck_assert_ptr_nonnull(data);
	d->w = w;
	ck_assert_int_eq(tide_stream_write(w, data, TWO_DRAINS_BYTES), 0);
	free(data);
	t = spawn(second_drain, d);
	d->in_drain++;
	d->rc[0] = tide_stream_drain(w);
	d->finished++;
	ck_assert_int_eq(join(t), 0);
	write_str(w, "end\n");
	ck_assert_int_eq(tide_stream_drain(w), 0);
	ck_assert_int_eq(tide_stream_read(r, (char[8]){ 0 }, 8), 0);
	return 0;
}

static int64_t two_drains_main(void *arg)
{
	struct two_drains d;
	struct tide_server *s;
	size_t got = 0, nonzero = 0;
	char *buf = malloc(CHUNK), tail[4];
	int port, fd;

	(void)arg;
	ck_assert_ptr_nonnull(buf);
	memset(&d, 0, sizeof(d));
	s = serve_tcp(two_drains_handler, &d, &port);
	fd = task_connect(port, 0);
	SLEEP_UNTIL(d.in_drain >= 2);
	ck_assert_int_eq(d.in_drain, 2);
	ck_assert_int_eq(tide_sleep(0.02), 0);
	ck_assert_int_eq(d.finished, 0); /* both wait: 4 MiB is far above the high-water mark */
	while (got < TWO_DRAINS_BYTES + 4) {
		ssize_t n = tide_recv(fd, buf, CHUNK, 0);

		ck_assert_int_gt(n, 0);
		/* The last four bytes are the "end\n" written after both drains.
		 * A plain count per byte: every ck_assert writes to Check's pipe,
		 * and 4 Mi of them outlast the timeout on a loaded machine. */
		for (ssize_t i = 0; i < n; i++, got++)
			if (got >= TWO_DRAINS_BYTES)
				tail[got - TWO_DRAINS_BYTES] = buf[i];
			else if (buf[i] != 0)
				nonzero++;
	}
	ck_assert_uint_eq(nonzero, 0);
	ck_assert_uint_eq(got, TWO_DRAINS_BYTES + 4);
	ck_assert_int_eq(memcmp(tail, "end\n", 4), 0);
	ck_assert_int_eq(d.finished, 2);
	ck_assert_int_eq(d.rc[0], 0);
	ck_assert_int_eq(d.rc[1], 0);
	ck_assert_int_eq(tide_shutdown(fd, SHUT_WR), 0);
	ck_assert_int_eq(tide_recv(fd, buf, CHUNK, 0), 0);
	ck_assert_int_eq(tide_close(fd), 0);
	server_done(s);
	free(buf);
	return 0;
}

MAIN_TEST(test_two_drains, two_drains_main)

/* ------------------------------------------- connection error, reset -- */

struct reset_seen {
	ssize_t line;    /* readline of the data sent before the reset */
	ssize_t after;   /* the next read */
	int write_rc;    /* a write after the reset */
	int drain_rc;
	int closed_rc;   /* wait_closed */
	char buf[64];
};

static int64_t reset_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	struct reset_seen *rs = arg;

	rs->line = tide_stream_readline(r, rs->buf, sizeof(rs->buf));
	rs->after = tide_stream_readline(r, rs->buf + 32, 32);
	rs->write_rc = tide_stream_write(w, "x", 1);
	rs->drain_rc = tide_stream_drain(w);
	rs->closed_rc = tide_stream_wait_closed(w);
	ck_assert_int_eq(tide_stream_is_closing(w), 1);
	return 0;
}

static int64_t reset_main(void *arg)
{
	struct reset_seen rs;
	struct tide_server *s;
	int port, fd;

	(void)arg;
	memset(&rs, 0, sizeof(rs));
	s = serve_tcp(reset_handler, &rs, &port);
	fd = task_connect(port, 0);
	ck_assert_int_eq(tide_send(fd, "hi\n", 3, 0), 3);
	/* The handler has the line before the reset comes. */
	SLEEP_UNTIL(rs.line != 0);
	ck_assert_int_eq(tide_sleep(0.005), 0);
	raw_reset(fd);
	server_done(s);
	/* The line came first; then the reset, as the next read's result. */
	ck_assert_int_eq(rs.line, 3);
	ck_assert_int_eq(memcmp(rs.buf, "hi\n", 3), 0);
	ck_assert_int_eq(rs.after, -ECONNRESET);
	ck_assert_int_eq(rs.write_rc, -ECONNRESET);
	ck_assert_int_eq(rs.drain_rc, -ECONNRESET);
	ck_assert_int_eq(rs.closed_rc, -ECONNRESET);
	return 0;
}

MAIN_TEST(test_reset, reset_main)

/* ---------------------------------- writer API, handler lifecycle -- */

static int g_exc_calls;
static int g_exc_error;

static void exc_handler(struct tide_loop *loop, const struct tide_error_context *ctx, void *arg)
{
	(void)loop;
	(void)arg;
	g_exc_calls++;
	g_exc_error = ctx->error;
}

/* Writes a greeting and returns at once (with an error for "fail"). */
static int64_t hello_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	(void)r;
	write_str(w, "hello\n");
	return arg ? -EIO : 0;
}

static int64_t writer_api_main(void *arg)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *s;
	char buf[64];
	int port;

	(void)arg;
	g_exc_calls = 0;
	tide_loop_set_exception_handler(g_loop, exc_handler, NULL);
	/* The handler returns at once: its pair is closed, flushing first. */
	s = serve_tcp(hello_handler, NULL, &port);
	connect_tcp(port, &r, &w);
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "hello\n");
	ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), 0);
	ck_assert_int_eq(tide_stream_at_eof(r), 1);
	/* Our side is still open for writing (half-close, as asyncio). */
	ck_assert_int_eq(tide_stream_is_closing(w), 0);
	tide_stream_close(w);
	ck_assert_int_eq(tide_stream_is_closing(w), 1);
	ck_assert_int_eq(tide_stream_write(w, "x", 1), TIDE_ECLOSED);
	ck_assert_int_eq(tide_stream_wait_closed(w), 0);
	ck_assert_int_eq(tide_stream_wait_closed(w), 0);
	ck_assert_int_eq(tide_stream_write(w, "x", 1), TIDE_ECLOSED);
	ck_assert_int_eq(tide_stream_drain(w), -ECONNRESET); /* asyncio: 'Connection lost' */
	ck_assert_ptr_nonnull(tide_stream_transport(w));
	tide_stream_free(r, w);
	server_done(s);
	ck_assert_int_eq(g_exc_calls, 0);

	/* A handler's error goes to the exception handler. */
	s = serve_tcp(hello_handler, (void *)1, &port);
	connect_tcp(port, &r, &w);
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "hello\n");
	ck_assert_int_eq(tide_stream_read(r, buf, sizeof(buf)), 0);
	close_pair(r, w);
	server_done(s);
	ck_assert_int_eq(g_exc_calls, 1);
	ck_assert_int_eq(g_exc_error, -EIO);
	tide_loop_set_exception_handler(g_loop, NULL, NULL);
	return 0;
}

MAIN_TEST(test_writer_api, writer_api_main)

/* Reads until EOF and counts what came. */
static size_t g_sunk;

static int64_t sink_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	char buf[256];
	ssize_t n;

	(void)w;
	(void)arg;
	while ((n = tide_stream_read(r, buf, sizeof(buf))) > 0)
		g_sunk += (size_t)n;
	ck_assert_int_eq(n, 0);
	g_handlers_done++;
	return 0;
}

/* A server whose handlers sink what comes (g_sunk, g_handlers_done: reset). */
static struct tide_server *serve_sink(int *port)
{
	g_handlers_done = 0;
	g_sunk = 0;
	return serve_tcp(sink_handler, NULL, port);
}

/* A pair freed without waiting: what was written is flushed first, and
 * the pair goes once connection_lost has run (nothing leaks). */
static int64_t free_early_main(void *arg)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_server *s;
	int port;

	(void)arg;
	s = serve_sink(&port);
	for (int i = 0; i < 5; i++) {
		connect_tcp(port, &r, &w);
		write_str(w, "bye\n");
		tide_stream_free(r, w);
	}
	SLEEP_UNTIL(g_handlers_done >= 5);
	server_done(s);
	ck_assert_int_eq(g_handlers_done, 5);
	ck_assert_uint_eq(g_sunk, 5 * 4);
	return 0;
}

MAIN_TEST(test_free_early, free_early_main)

/* Connecting where nobody listens; outside a task. */
static int64_t refused_main(void *arg)
{
	struct tide_stream_reader *r = (void *)1;
	struct tide_stream_writer *w = (void *)1;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = tide_socket(AF_INET, SOCK_STREAM, 0);
	int rc;
	char path[108];

	(void)arg;
	/* Bound but not listening: a SYN gets a reset. */
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	rc = tide_open_connection("127.0.0.1", ntohs(a.sin_port), &r, &w);
	ck_assert_msg(rc == -ECONNREFUSED, "open_connection: %d (%s)", rc, tide_strerror(rc));
	ck_assert_ptr_null(r);
	ck_assert_ptr_null(w);
	ck_assert_int_eq(tide_close(fd), 0);
	unix_path(path, sizeof(path), "nobody");
	rc = tide_open_unix_connection(path, &r, &w);
	ck_assert_msg(rc == -ENOENT || rc == -ECONNREFUSED, "open_unix_connection: %d (%s)", rc, tide_strerror(rc));
	return 0;
}

START_TEST(test_refused)
{
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;

	ck_assert_int_eq(tide_open_connection("127.0.0.1", 1, &r, &w), TIDE_ENOT_IN_TASK);
	run_main(refused_main, NULL);
}
END_TEST


/* Cancelled while connecting: -ECANCELED (or the pair, if the connection
 * won the race), and nothing is left behind either way. */
static int64_t open_task(void *arg)
{
	int port = (int)(intptr_t)arg;
	struct tide_stream_reader *r = NULL;
	struct tide_stream_writer *w = NULL;
	int rc = tide_open_connection("127.0.0.1", port, &r, &w);

	if (rc == 0) {
		tide_stream_free(r, w);
		return 1;
	}
	ck_assert_ptr_null(r);
	return rc;
}

static int64_t open_cancel_main(void *arg)
{
	struct tide_server *s;
	struct tide_future *t;
	int port, cancelled = 0;
	int64_t rc;

	(void)arg;
	s = serve_sink(&port);
	/* Cancelled before its first step: the body never runs. */
	t = spawn(open_task, (void *)(intptr_t)port);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(join(t), -ECANCELED);
	/* Cancelled at each point of the connect in turn. */
	for (int yields = 0; yields < 8; yields++) {
		t = spawn(open_task, (void *)(intptr_t)port);
		for (int i = 0; i < yields; i++)
			ck_assert_int_eq(tide_yield(), 0);
		tide_task_cancel(t);
		rc = join(t);
		ck_assert_msg(rc == -ECANCELED || rc == 1, "open_connection: %lld", (long long)rc);
		cancelled += rc == -ECANCELED;
	}
	ck_assert_int_gt(cancelled, 0);
	server_done(s);
	return 0;
}

MAIN_TEST(test_open_cancel, open_cancel_main)

/* Server options pass through: defer_serving listens without accepting. */
static int64_t server_opts_main(void *arg)
{
	static const char *const hosts[] = { "127.0.0.1" };
	struct tide_server_opts o;
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_future *f = NULL;
	struct tide_server *s;
	char buf[16];
	int port;

	(void)arg;
	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.backlog = 5;
	o.defer_serving = 1;
	ck_assert_int_eq(tide_start_server(g_loop, hosts, 1, 0, &o, hello_handler, NULL, &f), 0);
	g_servers++;
	s = server_from(f);
	port = tide_server_port(s);
	ck_assert_int_eq(tide_server_is_serving(s), 0);
	/* The backlog takes the connection; the handler runs once serving. */
	connect_tcp(port, &r, &w);
	ck_assert_int_eq(tide_sleep(0.02), 0);
	ck_assert_uint_eq(tide__stream_buffered(r), 0);
	ck_assert_int_eq(tide_server_start_serving(s), 0);
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "hello\n");
	ck_assert_int_eq(tide_stream_read(r, buf, sizeof(buf)), 0);
	close_pair(r, w);
	server_done(s);
	return 0;
}

MAIN_TEST(test_server_opts, server_opts_main)

/* ------------------------------------------- no leaks (counted) -- */

/*
 * Everything the library allocated for streams is freed by the time the
 * loop is: servers with their handlers' pairs, pairs freed early, pairs
 * whose peer reset, cancelled connects. Counted through a replaced
 * allocator (needs a fresh process: Check's fork mode).
 */
START_TEST(test_no_leak)
{
	if (!counting_allocator("test_no_leak"))
		return;
	g_servers = 0;
	run_main(echo_main, NULL);
	run_main(free_early_main, NULL);
	run_main(reset_main, NULL);
	run_main(open_cancel_main, NULL);
	run_main(cancel_hook_main, NULL);
	run_main(server_opts_main, NULL);
	ck_assert_int_ge(g_servers, 5);
	ck_assert_int_eq(tt_live_allocs(), 0);
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_echo_tcp, test_echo_unix, test_read_cases_tcp, test_read_cases_unix, test_slow_peer,
		test_cancel_socket, test_beside_readline_socket, test_read_lends_socket, test_peek_echo,
		test_peek_mixed, test_peek_lost, test_read_pause, test_small_reads_bulk, test_readexactly_bulk, test_drain_never_reads,
		test_two_drains, test_reset, test_writer_api, test_free_early, test_refused, test_open_cancel,
		test_server_opts, test_no_leak,
	};
	const TTest *fed[] = { test_cancel_no_data_lost };

	return net_main("stream-socket", 120, tests, NET_COUNT(tests), fed, NET_COUNT(fed));
}
