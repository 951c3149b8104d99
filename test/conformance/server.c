/* SPDX-License-Identifier: MIT */
/*
 * conformance/server.c: asyncio's sock= arguments and
 * connect_accepted_socket (issue 18), tide_create_connection_sock,
 * tide_connect_accepted_socket, tide_create_server_sock,
 * tide_open_connection_sock and tide_start_server_sock: the cases ported
 * from CPython 3.11's test_events, test_base_events, test_server and
 * test_sock_lowlevel (each named <python module>__<python test>), then
 * tide's own (<python module>__tide_...): every error of the contract
 * with the fd left open and unchanged, and every way tide ends up
 * closing an fd it took. test/conformance/README.md maps them.
 *
 * The hard part is telling "tide closed the fd" from "the number was
 * reused": an fd is known by its inode (struct fdid), so a number that is
 * open again on another file counts as closed, and one still open on the
 * same socket counts as leaked.
 */
#include "config.h"
#include "../net-fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef TIDE_HAVE_OPENSSL
#include "../tls-fixture.h"

static struct tt_certs g_certs;
#endif

/* --------------------------------------------------------------- fds -- */

/* An fd as the test knows it: its file, and its flags when taken. */
struct fdid {
	int fd;
	dev_t dev;
	ino_t ino;
	int fl, fdfl;
};

static struct fdid fd_id(int fd)
{
	struct fdid id = { .fd = fd };
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	id.dev = st.st_dev;
	id.ino = st.st_ino;
	id.fl = fcntl(fd, F_GETFL);
	id.fdfl = fcntl(fd, F_GETFD);
	ck_assert_int_ge(id.fl, 0);
	ck_assert_int_ge(id.fdfl, 0);
	return id;
}

/* A refused call left fd as it was: open, the same file, the same flags. */
static void check_untouched(const struct fdid *id, const char *what)
{
	struct stat st;

	ck_assert_msg(fstat(id->fd, &st) == 0 && st.st_dev == id->dev && st.st_ino == id->ino,
		      "[%s] %s: fd %d was closed", tt_cfg->name, what, id->fd);
	ck_assert_msg(fcntl(id->fd, F_GETFL) == id->fl && fcntl(id->fd, F_GETFD) == id->fdfl,
		      "[%s] %s: fd %d's flags changed", tt_cfg->name, what, id->fd);
}

/* tide closed fd: not open, or open on another file (the number reused). */
static int fd_gone(const struct fdid *id)
{
	struct stat st;

	errno = 0;
	if (fcntl(id->fd, F_GETFD) < 0)
		return errno == EBADF;
	return fstat(id->fd, &st) == 0 && (st.st_dev != id->dev || st.st_ino != id->ino);
}

static void check_gone(const struct fdid *id, const char *what)
{
	ck_assert_msg(fd_gone(id), "[%s] %s: fd %d is still open", tt_cfg->name, what, id->fd);
}

/* Inside a task: waits (a hang's deadline, not a speed bound) for tide
 * to close fd, which it does once the kernel let go of it. */
static void task_wait_gone(const struct fdid *id, const char *what)
{
	uint64_t end = tt_mono_ns() + TT_HANG_NS;

	while (!fd_gone(id) && tt_mono_ns() < end)
		ck_assert_int_eq(tide_sleep(0.002), 0);
	check_gone(id, what);
}

/* A blocking, inheritable TCP socket connected to 127.0.0.1:port (not
 * yet tide's flags: the call must set them). */
static int plain_client(int port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, port);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&ss, len) == 0, "connect: %s", strerror(errno));
	return fd;
}

/* A TCP socket bound to 127.0.0.1:0, not listening. */
static int bound_tcp(int flags)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, 0);
	int fd = socket(AF_INET, SOCK_STREAM | flags, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&ss, len), 0);
	return fd;
}

/* A unix stream socket bound to a new path in a new folder (dir, path: 108 bytes). */
static int bound_unix(char *dir, char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	strcpy(dir, "/tmp/tide-sock-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, 108, "%s/s", dir);
	strcpy(sun.sun_path, path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void unix_cleanup(const char *dir, const char *path)
{
	unlink(path);
	rmdir(dir);
}

static int sock_listening(int fd)
{
	int on = -1;
	socklen_t len = sizeof(on);

	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len), 0);
	return on;
}

/* A port a server was closed on refuses connections. */
static void check_refused(int port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&ss, len), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	close(fd);
}

/* ------------------------------------------------- calls and results -- */

/* tide_open_connection_sock in a task: its return, the pair freed. */
struct open_args {
	int fd;
	const struct tide_connect_opts *opts;
};

static int64_t open_sock_task(void *arg)
{
	struct open_args *a = arg;
	struct tide_stream_reader *r = NULL;
	struct tide_stream_writer *w = NULL;
	int err = tide_open_connection_sock(a->fd, a->opts, &r, &w);

	if (err == 0)
		tide_stream_free(r, w);
	return err;
}

/* What tide_open_connection_sock said, run in a task on loop. */
static int open_sock_err(struct tide_loop *loop, int fd, const struct tide_connect_opts *opts)
{
	struct open_args a = { .fd = fd, .opts = opts };
	struct tide_future *t;
	int64_t v = 0;
	int err;

	ck_assert_int_eq(tide_task_spawn(loop, open_sock_task, &a, NULL, &t), 0);
	RUN_UNTIL(loop, tide_future_done(t));
	/* A task that returns an error ends with it. */
	if ((err = tide_future_error(t)) == 0)
		ck_assert_int_eq(tide_future_result(t, &v, NULL), 0);
	tide_future_unref(t);
	return err ? err : (int)v;
}

static int64_t handler_unused(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	(void)r;
	(void)w;
	(void)arg;
	return 0;
}

/*
 * Every one of the five calls refuses fd with err (the client side: the
 * three that want a connected socket; the servers: the two that listen)
 * and leaves it as it was.
 */
static void check_refused_all(struct tide_loop *loop, int fd, int client_err, int server_err, const char *what)
{
	struct tide_future *f = NULL;
	struct srv s = { 0 };
	struct fdid id = fd_id(fd);
	int r;

	r = tide_create_connection_sock(loop, fd, NULL, &conn_ops, conn_new(), &f);
	ck_assert_msg(r == client_err, "[%s] %s: create_connection_sock %d, expected %d", tt_cfg->name, what, r,
		      client_err);
	check_untouched(&id, what);
	r = tide_connect_accepted_socket(loop, fd, NULL, &conn_ops, conn_new(), &f);
	ck_assert_msg(r == client_err, "[%s] %s: connect_accepted_socket %d", tt_cfg->name, what, r);
	check_untouched(&id, what);
	r = open_sock_err(loop, fd, NULL);
	ck_assert_msg(r == client_err, "[%s] %s: open_connection_sock %d", tt_cfg->name, what, r);
	check_untouched(&id, what);
	if (!server_err)
		return;
	r = tide_create_server_sock(loop, &fd, 1, NULL, srv_factory, &s, &f);
	ck_assert_msg(r == server_err, "[%s] %s: create_server_sock %d, expected %d", tt_cfg->name, what, r,
		      server_err);
	check_untouched(&id, what);
	r = tide_start_server_sock(loop, &fd, 1, NULL, handler_unused, NULL, &f);
	ck_assert_msg(r == server_err, "[%s] %s: start_server_sock %d", tt_cfg->name, what, r);
	check_untouched(&id, what);
	ck_assert_ptr_null(f);
}

/* create_server_sock on fds: the server (the future is done on return). */
static struct tide_server *serve_sock(struct tide_loop *loop, int *fds, size_t n, const struct tide_server_opts *o,
				      struct srv *s)
{
	struct tide_future *f = NULL;
	struct tide_server *sv;
	int r = tide_create_server_sock(loop, fds, n, o, srv_factory, s, &f);

	ck_assert_msg(r == 0, "[%s] tide_create_server_sock: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	ck_assert(tide_future_done(f));
	sv = fut_take(f);
	tide_future_unref(f);
	ck_assert_ptr_nonnull(sv);
	return sv;
}

/* create_connection_sock (or connect_accepted_socket) of c over fd, done. */
static struct tide_transport *wrap(struct tide_loop *loop, int fd, int accepted, const struct tide_connect_opts *o,
				   const struct tide_protocol_ops *ops, struct conn *c)
{
	struct tide_future *f = NULL;
	struct tide_transport *t;
	int r = accepted ? tide_connect_accepted_socket(loop, fd, o, ops, c, &f)
			 : tide_create_connection_sock(loop, fd, o, ops, c, &f);

	ck_assert_msg(r == 0, "[%s] wrap: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	/* Soon after the call, not inside it (asyncio's order). */
	ck_assert_int_eq(c->made, 0);
	tt_run_until_complete(loop, f, 0);
	t = fut_ptr(f);
	tide_future_unref(f);
	ck_assert_int_eq(c->made, 1);
	ck_assert_ptr_eq(t, c->t);
	return t;
}

/* --------------------------------------------------- test_events -- */

/* test_events.test_create_connection_sock: a connected client socket
 * becomes a transport; the protocol gets the server's bytes; closing the
 * transport closes the socket. */
START_TEST(test_events__test_create_connection_sock)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { .tmpl = { .echo = 1 } };
	struct tide_server *sv = serve(loop, lo4, 1, NULL, &s);
	int fd = plain_client(tide_server_port(sv));
	struct fdid id = fd_id(fd);
	struct conn *c = conn_new();
	struct tide_transport *t;

	ck_assert_int_eq(id.fl & O_NONBLOCK, 0);
	t = wrap(loop, fd, 0, NULL, &conn_ops, c);
	/* tide's now: non-blocking, close-on-exec, the transport's socket. */
	check_nb_cloexec(fd);
	ck_assert_int_eq(transport_fd(t), fd);
	c->close_after = 9;
	ck_assert_int_eq(tide_transport_write(t, "test data", 9), 0);
	RUN_UNTIL(loop, c->lost);
	check_conn(c, "MDL", 0);
	ck_assert_mem_eq(c->rx, "test data", 9);
	check_gone(&id, "after connection_lost");
	RUN_UNTIL(loop, s.n == 1 && s.conns[0]->lost);
	finish_all(loop, sv);
}
END_TEST

/* test_events.test_create_server_sock: a server on the caller's bound
 * socket serves on that very fd (server.sockets[0] is it). */
START_TEST(test_events__test_create_server_sock)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { 0 };
	int fd = bound_tcp(0), fds[4], port = sock_port(fd), cli;
	struct fdid id = fd_id(fd);
	struct tide_server *sv = serve_sock(loop, &fd, 1, NULL, &s);

	ck_assert_uint_eq(tide_server_sockets(sv, fds, 4), 1);
	ck_assert_int_eq(fds[0], fd);
	ck_assert_int_eq(tide_server_port(sv), port);
	ck_assert_int_eq(sock_listening(fd), 1);
	check_nb_cloexec(fd);
	cli = plain_client(port);
	ck_assert_int_eq(send(cli, "xxx", 3, 0), 3);
	close(cli);
	RUN_UNTIL(loop, s.n == 1 && s.conns[0]->lost);
	check_conn(s.conns[0], "MDEL", 0);
	ck_assert_mem_eq(s.conns[0]->rx, "xxx", 3);
	server_end(sv);
	finish(loop);
	check_gone(&id, "after server close");
	check_refused(port);
	conns_free();
}
END_TEST

/* The protocol of test_connect_accepted_socket: "roger" once the
 * message is in. */
static void roger_data(struct tide_transport *t, const void *data, size_t n, void *p)
{
	struct conn *c = p;

	note(c, 'D');
	rx_append(c, data, n);
	if (c->rxlen == 9)
		ck_assert_int_eq(tide_transport_write(t, "roger", 5), 0);
}

static const struct tide_protocol_ops roger_ops = { LOG_STREAM_OPS, .data_received = roger_data };

/* A connection to lfd accepted by the test: both ends (cli blocking). */
static int accept_one(int lfd, int port, int *cli)
{
	int fd;

	*cli = plain_client(port);
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* A loop, and a connection to a listener that the test accepted: fd
 * (its id), the client's end cli (blocking). */
struct apair {
	struct tide_loop *loop;
	int lfd, port, cli, fd;
	struct fdid id;
};

static void apair_open(struct apair *a)
{
	a->loop = tt_loop_new();
	a->lfd = bound_socket(AF_INET, SOCK_STREAM, &a->port);
	a->fd = accept_one(a->lfd, a->port, &a->cli);
	a->id = fd_id(a->fd);
}

/* The client and listener closed, the loop freed (fd is tide's by now). */
static void apair_end(struct apair *a)
{
	close(a->cli);
	close(a->lfd);
	finish(a->loop);
	conns_free();
}

/* test_events.test_connect_accepted_socket: a socket the program
 * accepted becomes a transport: the client's message comes in, the reply
 * goes out, the client's close ends it (state CLOSED). */
START_TEST(test_events__test_connect_accepted_socket)
{
	struct apair a;
	struct conn *c = conn_new();
	char buf[8];

	apair_open(&a);
	ck_assert_int_eq(send(a.cli, "test data", 9, 0), 9);
	wrap(a.loop, a.fd, 1, NULL, &roger_ops, c);
	loop_recv_exact(a.loop, a.cli, buf, 5);
	ck_assert_mem_eq(buf, "roger", 5);
	ck_assert_int_eq(shutdown(a.cli, SHUT_WR), 0);
	RUN_UNTIL(a.loop, c->lost);
	check_conn(c, "MDEL", 0);
	ck_assert_uint_eq(c->rxlen, 9);
	ck_assert_mem_eq(c->rx, "test data", 9);
	check_gone(&a.id, "after connection_lost");
	apair_end(&a);
}
END_TEST

#ifdef TIDE_HAVE_OPENSSL
static struct tide_tls_opts tls_opts(SSL_CTX *ctx, const char *host)
{
	return (struct tide_tls_opts){ .size = sizeof(struct tide_tls_opts), .ctx = ctx, .server_hostname = host };
}
#endif

/* test_events.test_ssl_connect_accepted_socket: the same with TLS, tide
 * the server on the accepted socket (its client tide's TLS client). */
START_TEST(test_events__test_ssl_connect_accepted_socket)
{
	struct tide_loop *loop = tt_loop_new();
	int port, lfd = bound_socket(AF_INET, SOCK_STREAM, &port), fd;
	struct conn *c = conn_new(), *cli = conn_new();
#ifdef TIDE_HAVE_OPENSSL
	struct tide_tls_opts stls = tls_opts(g_certs.server, NULL), ctls = tls_opts(g_certs.client, "localhost");
	struct tide_connect_opts so = { .size = sizeof(so), .tls = &stls }, co = { .size = sizeof(co), .tls = &ctls };
	struct tide_future *cf = NULL, *sf = NULL;
	struct tide_transport *st;
	struct fdid id;
	void *ssl = NULL;
	socklen_t len = sizeof(ssl);

	ck_assert_int_eq(tide_tls_available(), 1);
	ck_assert_int_eq(tide_create_connection_ex(loop, "127.0.0.1", port, &co, &conn_ops, cli, &cf), 0);
	fd = -1;
	set_nonblock(lfd);
	RUN_UNTIL(loop, (fd = accept4(lfd, NULL, NULL, 0)) >= 0);
	/* Blocking, as a program's accept(2) gives it. */
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	id = fd_id(fd);
	ck_assert_int_eq(tide_connect_accepted_socket(loop, fd, &so, &roger_ops, c, &sf), 0);
	RUN_UNTIL(loop, tide_future_done(cf) && tide_future_done(sf));
	st = fut_ptr(sf);
	ck_assert_ptr_eq(st, c->t);
	ck_assert_int_eq(tide_transport_get_extra_info(st, "ssl_object", &ssl, &len), 0);
	ck_assert_ptr_nonnull(ssl);
	ck_assert_int_eq(SSL_is_server(ssl), 1);
	ck_assert_ptr_nonnull(fut_ptr(cf));
	tide_future_unref(cf);
	tide_future_unref(sf);
	cli->close_after = 5;
	ck_assert_int_eq(tide_transport_write(cli->t, "test data", 9), 0);
	RUN_UNTIL(loop, cli->lost && c->lost);
	ck_assert_mem_eq(cli->rx, "roger", 5);
	ck_assert_uint_eq(c->rxlen, 9);
	ck_assert_mem_eq(c->rx, "test data", 9);
	ck_assert_int_eq(c->made, 1);
	check_gone(&id, "after the TLS connection_lost");
#else
	struct tide_tls_opts stls = { .size = sizeof(stls) };
	struct tide_connect_opts so = { .size = sizeof(so), .tls = &stls };
	struct tide_future *sf = NULL;
	struct fdid id;
	int cfd = -1;

	(void)cli;
	ck_assert_int_eq(tide_tls_available(), 0);
	fd = accept_one(lfd, port, &cfd);
	id = fd_id(fd);
	ck_assert_int_eq(tide_connect_accepted_socket(loop, fd, &so, &roger_ops, c, &sf), -ENOTSUP);
	check_untouched(&id, "TLS without OpenSSL");
	close(fd);
	close(cfd);
#endif
	close(lfd);
	finish(loop);
	conns_free();
}
END_TEST

/* ------------------------------------------------- test_base_events -- */

/* test_base_events.test_create_connection_wrong_sock: a datagram socket
 * is refused (asyncio: "A Stream Socket was expected"), and left open. */
START_TEST(test_base_events__test_create_connection_wrong_sock)
{
	struct tide_loop *loop = tt_loop_new();
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	ck_assert_int_ge(fd, 0);
	check_refused_all(loop, fd, -EPROTOTYPE, 0, "a UDP socket");
	close(fd);
	finish(loop);
	conns_free();
}
END_TEST

/* test_base_events.test_create_server_wrong_sock: the same for servers. */
START_TEST(test_base_events__test_create_server_wrong_sock)
{
	struct tide_loop *loop = tt_loop_new();
	int port, fd = bound_socket(AF_INET, SOCK_DGRAM, &port);
	struct tide_future *f = NULL;
	struct fdid id = fd_id(fd);
	struct srv s = { 0 };

	ck_assert_int_eq(tide_create_server_sock(loop, &fd, 1, NULL, srv_factory, &s, &f), -EPROTOTYPE);
	check_untouched(&id, "create_server_sock");
	ck_assert_int_eq(tide_start_server_sock(loop, &fd, 1, NULL, handler_unused, NULL, &f), -EPROTOTYPE);
	check_untouched(&id, "start_server_sock");
	ck_assert_ptr_null(f);
	close(fd);
	finish(loop);
}
END_TEST

/* Closes a server and waits for it in a task (asyncio's srv.close();
 * await srv.wait_closed()). */
static int64_t close_wait_task(void *arg)
{
	struct tide_server *sv = arg;

	tide_server_close(sv);
	return tide_server_wait_closed(sv);
}

/* test_base_events.test_create_server_stream_bittype: a socket made with
 * SOCK_STREAM | SOCK_NONBLOCK is a stream socket (SO_TYPE has no flag
 * bits): served, closed, waited for. */
START_TEST(test_base_events__test_create_server_stream_bittype)
{
	struct tide_loop *loop = tt_loop_new();
	int fd = bound_tcp(SOCK_NONBLOCK);
	struct fdid id = fd_id(fd);
	struct srv s = { 0 };
	struct tide_server *sv = serve_sock(loop, &fd, 1, NULL, &s);
	struct tide_future *t;

	ck_assert_int_eq(tide_server_is_serving(sv), 1);
	ck_assert_int_eq(tide_task_spawn(loop, close_wait_task, sv, NULL, &t), 0);
	tt_run_until_complete(loop, t, 0);
	ck_assert_int_eq(tt_result(t), 0);
	tide_future_unref(t);
	check_gone(&id, "after wait_closed");
	tide_server_free(sv);
	finish(loop);
}
END_TEST

/* ------------------------------------------------------ test_server -- */

#define HELLO_LEN (1024 * 5 + 1)

struct ss1 {
	struct tide_server *sv;
	struct tide_future *main;     /* the task in serve_forever */
	int port;                     /* TCP, or */
	const char *path;             /* unix */
	int started;                  /* the unix case's threading.Event */
	int reply;                    /* the client got its byte */
	int handled;
};

static struct ss1 g_ss1;

/* serve(): reads the line, cancels the main task, answers "1". */
static int64_t ss1_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	struct ss1 *st = arg;
	char buf[HELLO_LEN + 8];
	ssize_t n = tide_stream_readline(r, buf, sizeof(buf));

	ck_assert_int_eq(n, HELLO_LEN);
	ck_assert_int_eq(buf[HELLO_LEN - 1], '\n');
	ck_assert_int_eq(tide_task_cancel(st->main), 1);
	ck_assert_int_eq(tide_stream_write(w, "1", 1), 0);
	tide_stream_close(w);
	st->handled = 1;
	return tide_stream_wait_closed(w);
}

/* The client, over tide's socket calls (asyncio's sock_* in a task). */
static int64_t ss1_client(void *arg)
{
	struct ss1 *st = arg;
	struct sockaddr_storage ss;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	static char hello[HELLO_LEN];
	socklen_t len;
	ssize_t n;
	size_t off = 0;
	char b;
	int fd, i;

	for (i = 0; i < 1000 && !(st->path ? st->started : tide_server_is_serving(st->sv)); i++)
		ck_assert_int_eq(tide_sleep(0.002), 0);
	ck_assert_int_lt(i, 1000);
	if (st->path) {
		strcpy(sun.sun_path, st->path);
		fd = tide_socket(AF_UNIX, SOCK_STREAM, 0);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(tide_connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	} else {
		len = loopback(&ss, AF_INET, st->port);
		fd = tide_socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(tide_connect(fd, (struct sockaddr *)&ss, len), 0);
	}
	memset(hello, '1', sizeof(hello));
	hello[HELLO_LEN - 1] = '\n';
	while (off < sizeof(hello)) {
		n = tide_send(fd, hello + off, sizeof(hello) - off, 0);
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
	}
	ck_assert_int_eq(tide_recv(fd, &b, 1, 0), 1);
	ck_assert_int_eq(b, '1');
	st->reply = 1;
	close(fd);
	return 0;
}

/* main(srv): async with srv: (start_serving for unix) serve_forever. */
static int64_t ss1_main(void *arg)
{
	struct ss1 *st = arg;

	if (st->path) {
		ck_assert_int_eq(tide_server_is_serving(st->sv), 0);
		ck_assert_int_eq(tide_server_start_serving(st->sv), 0);
		ck_assert_int_eq(tide_server_is_serving(st->sv), 1);
		st->started = 1;
	}
	return tide_server_serve_forever(st->sv);
}

static int64_t serve_forever_task(void *arg)
{
	return tide_server_serve_forever(arg);
}

/* Both test_server cases: fd (bound, not listening) served with
 * start_server(start_serving=False). */
static void start_server_1(int fd, int port, const char *path)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_server_opts o = { .size = sizeof(o), .defer_serving = 1 };
	struct tide_future *f = NULL, *cli, *again;
	struct fdid id = fd_id(fd);
	struct ss1 *st = &g_ss1;

	memset(st, 0, sizeof(*st));
	st->port = port;
	st->path = path;
	ck_assert_int_eq(tide_start_server_sock(loop, &fd, 1, &o, ss1_handler, st, &f), 0);
	ck_assert(tide_future_done(f));
	st->sv = fut_take(f);
	tide_future_unref(f);
	ck_assert_int_eq(tide_server_is_serving(st->sv), 0);
	ck_assert_int_eq(tide_task_spawn(loop, ss1_main, st, NULL, &st->main), 0);
	ck_assert_int_eq(tide_task_spawn(loop, ss1_client, st, NULL, &cli), 0);
	/* The main task ends cancelled (asyncio.CancelledError). */
	ck_assert_int_eq(tide_loop_run_until_complete(loop, st->main), -ECANCELED);
	ck_assert(tide_future_cancelled(st->main));
	RUN_UNTIL(loop, tide_future_done(cli));
	ck_assert_int_eq(tt_result(cli), 0);
	ck_assert_int_eq(st->reply, 1);
	ck_assert_int_eq(st->handled, 1);
	/* srv.sockets == (), not serving, serve_forever refused: closed. */
	ck_assert_uint_eq(tide_server_sockets(st->sv, NULL, 0), 0);
	ck_assert_int_eq(tide_server_is_serving(st->sv), 0);
	ck_assert_int_eq(tide_task_spawn(loop, serve_forever_task, st->sv, NULL, &again), 0);
	tt_run_until_complete(loop, again, TIDE_ECLOSED);
	tide_future_unref(again);
	tide_future_unref(cli);
	tide_future_unref(st->main);
	tide_server_free(st->sv);
	finish(loop);
	check_gone(&id, "after the server closed");
}

/* test_server.test_start_server_1: start_server(start_serving=False) on
 * the caller's socket; serve_forever until the handler cancels it; then
 * the server is closed and serve_forever refuses. */
START_TEST(test_server__test_start_server_1)
{
	int fd = bound_tcp(0), port = sock_port(fd);

	start_server_1(fd, port, NULL);
	check_refused(port);
}
END_TEST

/* test_server.test_start_unix_server_1: the same over a unix socket the
 * caller bound, start_serving called inside. The caller's socket file is
 * the caller's: tide does not remove it. */
START_TEST(test_server__test_start_unix_server_1)
{
	char dir[108], path[108];
	struct stat st;
	int fd = bound_unix(dir, path);

	start_server_1(fd, 0, path);
	ck_assert_int_eq(stat(path, &st), 0);
	unix_cleanup(dir, path);
}
END_TEST

struct wcb {
	struct tide_server *sv;
	int in_handler;
};

static int64_t wcb_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	struct wcb *st = arg;
	void *data = NULL;
	ssize_t n;

	(void)w;
	st->in_handler = 1;
	n = tide_stream_read_all(r, &data);
	tide_free(data);
	return n < 0 ? n : 0;
}

static int64_t wait_closed_task(void *arg)
{
	return tide_server_wait_closed(arg);
}

static int64_t wcb_main(void *arg)
{
	struct tide_loop *loop = tide_get_running_loop();
	struct wcb st = { 0 };
	struct tide_future *f = NULL, *t1, *t2, *t3;
	int fd = bound_tcp(0), cli, i;
	struct fdid id = fd_id(fd);
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, sock_port(fd));

	(void)arg;
	ck_assert_int_eq(tide_start_server_sock(loop, &fd, 1, NULL, wcb_handler, &st, &f), 0);
	st.sv = tide_future_take_ptr(f);
	tide_future_unref(f);
	/* Not closed, no connection: wait_closed blocks. */
	t1 = tt_spawn(NULL, wait_closed_task, st.sv);
	ck_assert_int_eq(tide_yield(), 0);
	ck_assert(!tide_future_done(t1));
	/* A connection (asyncio's _attach), not closed: blocks. */
	cli = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(cli, 0);
	ck_assert_int_eq(tide_connect(cli, (struct sockaddr *)&ss, len), 0);
	for (i = 0; i < 1000 && !st.in_handler; i++)
		ck_assert_int_eq(tide_sleep(0.002), 0);
	ck_assert_int_eq(st.in_handler, 1);
	t2 = tt_spawn(NULL, wait_closed_task, st.sv);
	ck_assert_int_eq(tide_yield(), 0);
	ck_assert(!tide_future_done(t1) && !tide_future_done(t2));
	/* Closed with the connection open: still blocks. */
	tide_server_close(st.sv);
	ck_assert_int_eq(tide_yield(), 0);
	t3 = tt_spawn(NULL, wait_closed_task, st.sv);
	/* The listening socket goes with close, the connection holds on. */
	task_wait_gone(&id, "the listening socket after close");
	ck_assert(!tide_future_done(t1) && !tide_future_done(t2) && !tide_future_done(t3));
	/* The connection ends (_detach): every wait returns. */
	close(cli);
	ck_assert_int_eq(tt_join(t1), 0);
	ck_assert_int_eq(tt_join(t2), 0);
	ck_assert_int_eq(tt_join(t3), 0);
	ck_assert_int_eq(tide_server_wait_closed(st.sv), 0);
	tide_server_free(st.sv);
	return 0;
}

/* test_server.test_wait_closed_basic (3.12): wait_closed returns once
 * the server is closed and its last connection is gone, not before. */
START_TEST(test_server__test_wait_closed_basic)
{
	struct tide_loop *loop = NULL;

	tt_run_main(&loop, wcb_main, NULL);
}
END_TEST

/* ----------------------------------------------- test_sock_lowlevel -- */

static void greet_made(struct conn *c)
{
	ck_assert_int_eq(tide_transport_write(c->t, "HTTP/1.0 200 OK\r\n\r\n", 19), 0);
	tide_transport_close(c->t);
}

/* test_sock_lowlevel.test_create_connection_sock: a socket connected by
 * the loop's own connect (sock_connect: tide_op_connect) becomes a
 * transport that receives what the server sends (nbytes > 0). */
START_TEST(test_sock_lowlevel__test_create_connection_sock)
{
	struct tide_loop *loop = tt_loop_new();
	struct srv s = { .tmpl = { .made_hook = greet_made } };
	struct tide_server *sv = serve(loop, lo4, 1, NULL, &s);
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, tide_server_port(sv));
	int fd = tide_socket(AF_INET, SOCK_STREAM, 0);
	struct tide_future *f;
	struct conn *c = conn_new();
	struct fdid id;

	ck_assert_int_ge(fd, 0);
	id = fd_id(fd);
	ck_assert_int_eq(tide_op_connect(loop, fd, (struct sockaddr *)&ss, len, &f), 0);
	tt_run_until_complete(loop, f, 0);
	tide_future_unref(f);
	wrap(loop, fd, 0, NULL, &conn_ops, c);
	RUN_UNTIL(loop, c->lost);
	ck_assert_uint_gt(c->rxlen, 0);
	ck_assert_mem_eq(c->rx, "HTTP/1.0 200 OK\r\n\r\n", 19);
	check_conn(c, "MDEL", 0);
	check_gone(&id, "after connection_lost");
	finish_all(loop, sv);
}
END_TEST

/* ------------------------------------------------- tide's own cases -- */

/* Not a socket (a pipe, a regular file): -ENOTSOCK from all five. */
START_TEST(test_base_events__tide_sock_not_a_socket)
{
	struct tide_loop *loop = tt_loop_new();
	char tmpl[] = "/tmp/tide-sock-file-XXXXXX", b = 0;
	int p[2], file = mkstemp(tmpl);

	tt_pipe(p, 0);
	check_refused_all(loop, p[0], -ENOTSOCK, -ENOTSOCK, "a pipe");
	/* Still the caller's and working. */
	ck_assert_int_eq(write(p[1], "z", 1), 1);
	ck_assert_int_eq(read(p[0], &b, 1), 1);
	ck_assert_int_eq(b, 'z');
	ck_assert_int_ge(file, 0);
	unlink(tmpl);
	check_refused_all(loop, file, -ENOTSOCK, -ENOTSOCK, "a file");
	close(file);
	close(p[0]);
	close(p[1]);
	finish(loop);
	conns_free();
}
END_TEST

/* Not open: -EBADF; below 0 and other bad arguments: -EINVAL. */
START_TEST(test_base_events__tide_sock_bad_fd_and_arguments)
{
	struct tide_loop *loop = tt_loop_new();
	const struct tide_protocol_ops short_ops = { .size = 1 };
	struct tide_server_opts bad_so = { .size = 1 };
	struct tide_connect_opts bad_co = { .size = 1 };
	struct tide_future *f = NULL;
	struct srv s = { 0 };
	int closed = dup(0), neg = -1, fd, port, lfd = bound_socket(AF_INET, SOCK_STREAM, &port), cli;
	struct fdid id;

	ck_assert_int_ge(closed, 0);
	close(closed);
	/* No fd is made from here until the five calls are done. */
	ck_assert_int_eq(tide_create_connection_sock(loop, closed, NULL, &conn_ops, NULL, &f), -EBADF);
	ck_assert_int_eq(tide_connect_accepted_socket(loop, closed, NULL, &conn_ops, NULL, &f), -EBADF);
	ck_assert_int_eq(tide_create_server_sock(loop, &closed, 1, NULL, srv_factory, &s, &f), -EBADF);
	ck_assert_int_eq(tide_start_server_sock(loop, &closed, 1, NULL, handler_unused, NULL, &f), -EBADF);
	ck_assert_int_eq(open_sock_err(loop, closed, NULL), -EBADF);
	ck_assert_int_eq(tide_create_connection_sock(loop, neg, NULL, &conn_ops, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_connect_accepted_socket(loop, neg, NULL, &conn_ops, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_create_server_sock(loop, &neg, 1, NULL, srv_factory, &s, &f), -EINVAL);
	ck_assert_int_eq(tide_start_server_sock(loop, &neg, 1, NULL, handler_unused, NULL, &f), -EINVAL);
	ck_assert_int_eq(open_sock_err(loop, neg, NULL), -EINVAL);
	/* A good connected socket with bad arguments around it. */
	fd = accept_one(lfd, port, &cli);
	id = fd_id(fd);
	ck_assert_int_eq(tide_create_connection_sock(NULL, fd, NULL, &conn_ops, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_create_connection_sock(loop, fd, NULL, &conn_ops, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_create_connection_sock(loop, fd, NULL, &short_ops, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_create_connection_sock(loop, fd, &bad_co, &conn_ops, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_connect_accepted_socket(loop, fd, &bad_co, &conn_ops, NULL, &f), -EINVAL);
	ck_assert_int_eq(open_sock_err(loop, fd, &bad_co), -EINVAL);
	check_untouched(&id, "bad arguments");
	ck_assert_int_eq(tide_create_server_sock(loop, NULL, 1, NULL, srv_factory, &s, &f), -EINVAL);
	ck_assert_int_eq(tide_create_server_sock(loop, &lfd, 0, NULL, srv_factory, &s, &f), -EINVAL);
	ck_assert_int_eq(tide_create_server_sock(loop, &lfd, 1, NULL, NULL, &s, &f), -EINVAL);
	ck_assert_int_eq(tide_create_server_sock(loop, &lfd, 1, &bad_so, srv_factory, &s, &f), -EINVAL);
	ck_assert_int_eq(tide_start_server_sock(loop, &lfd, 1, NULL, NULL, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_start_server_sock(loop, NULL, 1, NULL, handler_unused, NULL, &f), -EINVAL);
	ck_assert_ptr_null(f);
	/* Outside a task: TIDE_ENOT_IN_TASK, fd untouched. */
	{
		struct tide_stream_reader *r;
		struct tide_stream_writer *w;

		ck_assert_int_eq(tide_open_connection_sock(fd, NULL, &r, &w), TIDE_ENOT_IN_TASK);
		ck_assert_int_eq(tide_open_connection_sock(fd, NULL, NULL, &w), -EINVAL);
	}
	check_untouched(&id, "open_connection_sock outside a task");
	close(fd);
	close(cli);
	close(lfd);
	finish(loop);
}
END_TEST

/* Not connected (a fresh socket, a listening one): -ENOTCONN from the
 * three that want a peer; a blocking socket stays blocking. */
START_TEST(test_base_events__tide_sock_not_connected)
{
	struct tide_loop *loop = tt_loop_new();
	int fresh = socket(AF_INET, SOCK_STREAM, 0), port, lfd = bound_socket(AF_INET, SOCK_STREAM, &port);
	int ufd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fresh, 0);
	ck_assert_int_ge(ufd, 0);
	check_refused_all(loop, fresh, -ENOTCONN, 0, "a fresh TCP socket");
	check_refused_all(loop, lfd, -ENOTCONN, 0, "a listening socket");
	check_refused_all(loop, ufd, -ENOTCONN, 0, "a fresh unix socket");
	ck_assert_int_eq(fcntl(fresh, F_GETFL) & O_NONBLOCK, 0);
	close(fresh);
	close(lfd);
	close(ufd);
	finish(loop);
	conns_free();
}
END_TEST

/* A non-blocking connect still in progress (the listener's queue full,
 * the SYN dropped) is not connected yet: -ENOTCONN, untouched. */
START_TEST(test_base_events__tide_sock_connect_in_progress)
{
	struct tide_loop *loop = tt_loop_new();
	int fill[4], port, lfd = full_listener(0, &port, fill, 4), fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, port);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&ss, len), -1);
	ck_assert_int_eq(errno, EINPROGRESS);
	check_refused_all(loop, fd, -ENOTCONN, 0, "a connect in progress");
	close(fd);
	drain_listener(lfd, fill, 4);
	close(lfd);
	finish(loop);
	conns_free();
}
END_TEST

/* TLS options refused before the fd is taken: a verifying client with no
 * host name, a context missing; without OpenSSL, -ENOTSUP. A closed loop:
 * TIDE_ECLOSED. Each time the fd is untouched. */
START_TEST(test_base_events__tide_sock_tls_and_loop_refusals)
{
	struct tide_loop *loop = tt_loop_new();
	int port, lfd = bound_socket(AF_INET, SOCK_STREAM, &port), cli, fd = accept_one(lfd, port, &cli);
	int sfd = bound_tcp(0);
	struct tide_tls_opts noctx = { .size = sizeof(noctx) };
	struct tide_connect_opts co = { .size = sizeof(co), .tls = &noctx };
	struct tide_server_opts so = { .size = sizeof(so), .tls = &noctx };
	struct fdid id = fd_id(fd), sid = fd_id(sfd);
	struct tide_future *f = NULL;
	struct srv s = { 0 };
	int want = tide_tls_available() ? -EINVAL : -ENOTSUP;

	ck_assert_int_eq(tide_create_connection_sock(loop, fd, &co, &conn_ops, NULL, &f), want);
	ck_assert_int_eq(tide_connect_accepted_socket(loop, fd, &co, &conn_ops, NULL, &f), want);
	ck_assert_int_eq(open_sock_err(loop, fd, &co), want);
	check_untouched(&id, "TLS without a context");
	ck_assert_int_eq(tide_create_server_sock(loop, &sfd, 1, &so, srv_factory, &s, &f), want);
	ck_assert_int_eq(tide_start_server_sock(loop, &sfd, 1, &so, handler_unused, NULL, &f), want);
	check_untouched(&sid, "server TLS without a context");
	ck_assert_int_eq(sock_listening(sfd), 0);
#ifdef TIDE_HAVE_OPENSSL
	{
		struct tide_tls_opts verify = tls_opts(g_certs.client, NULL);

		co.tls = &verify;
		ck_assert_int_eq(tide_create_connection_sock(loop, fd, &co, &conn_ops, NULL, &f), -EINVAL);
		ck_assert_int_eq(open_sock_err(loop, fd, &co), -EINVAL);
		check_untouched(&id, "a verifying client without server_hostname");
	}
#endif
	ck_assert_ptr_null(f);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_create_connection_sock(loop, fd, NULL, &conn_ops, NULL, &f), TIDE_ECLOSED);
	ck_assert_int_eq(tide_connect_accepted_socket(loop, fd, NULL, &conn_ops, NULL, &f), TIDE_ECLOSED);
	ck_assert_int_eq(tide_create_server_sock(loop, &sfd, 1, NULL, srv_factory, &s, &f), TIDE_ECLOSED);
	ck_assert_int_eq(tide_start_server_sock(loop, &sfd, 1, NULL, handler_unused, NULL, &f), TIDE_ECLOSED);
	check_untouched(&id, "a closed loop");
	check_untouched(&sid, "a closed loop (server)");
	ck_assert_ptr_null(f);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	close(fd);
	close(sfd);
	close(cli);
	close(lfd);
}
END_TEST

/* Server sockets refused before any is touched: an fd listed twice, a
 * connected socket, a datagram socket after a good one; listen(2)'s own
 * refusal of an unbound unix socket. */
START_TEST(test_base_events__tide_server_sock_refusals)
{
	struct tide_loop *loop = tt_loop_new();
	int port, lfd = bound_socket(AF_INET, SOCK_STREAM, &port), cli, conn = accept_one(lfd, port, &cli);
	int good = bound_tcp(0), udp = socket(AF_INET, SOCK_DGRAM, 0), ufd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct fdid gid = fd_id(good), cid = fd_id(conn), uid;
	struct tide_future *f = NULL;
	struct srv s = { 0 };
	int two[2];

	ck_assert_int_ge(udp, 0);
	ck_assert_int_ge(ufd, 0);
	uid = fd_id(ufd);
	two[0] = two[1] = good;
	ck_assert_int_eq(tide_create_server_sock(loop, two, 2, NULL, srv_factory, &s, &f), -EINVAL);
	ck_assert_int_eq(tide_start_server_sock(loop, two, 2, NULL, handler_unused, NULL, &f), -EINVAL);
	two[1] = conn;
	ck_assert_int_eq(tide_create_server_sock(loop, two, 2, NULL, srv_factory, &s, &f), -EINVAL);
	check_untouched(&cid, "a connected socket");
	two[1] = udp;
	ck_assert_int_eq(tide_create_server_sock(loop, two, 2, NULL, srv_factory, &s, &f), -EPROTOTYPE);
	ck_assert_int_eq(tide_start_server_sock(loop, two, 2, NULL, handler_unused, NULL, &f), -EPROTOTYPE);
	check_untouched(&gid, "a good socket beside a bad one");
	ck_assert_int_eq(sock_listening(good), 0);
	ck_assert_int_eq(tide_create_server_sock(loop, &ufd, 1, NULL, srv_factory, &s, &f), -EINVAL);
	check_untouched(&uid, "an unbound unix socket");
	ck_assert_ptr_null(f);
	ck_assert_int_eq(srv_count(&s, 0, 0), 0);
	close(good);
	close(udp);
	close(ufd);
	close(conn);
	close(cli);
	close(lfd);
	finish(loop);
}
END_TEST

/* An AF_UNIX socketpair, both ends wrapped: 1 MiB sent one way comes
 * back byte-exact through the echoing end; both fds closed at the end. */
START_TEST(test_base_events__tide_unix_socketpair_echo)
{
	enum { N = 1 << 20 };
	struct tide_loop *loop = tt_loop_new();
	unsigned char *data = pat_buf(18, N);
	struct conn *echo = conn_new(), *snd = conn_new();
	struct fdid a, b;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	a = fd_id(sv[0]);
	b = fd_id(sv[1]);
	echo->echo = 1;
	snd->verify = data;
	snd->vlen = N;
	snd->close_after = N;
	wrap(loop, sv[0], 1, NULL, &conn_ops, echo);
	wrap(loop, sv[1], 0, NULL, &conn_ops, snd);
	ck_assert_int_eq(tide_transport_write(snd->t, data, N), 0);
	RUN_UNTIL(loop, snd->lost && echo->lost);
	ck_assert_uint_eq(snd->rxlen, N);
	ck_assert_int_eq(snd->lost_err, 0);
	check_conn(echo, "MDEL", 0);
	check_gone(&a, "the echoing end");
	check_gone(&b, "the sending end");
	finish(loop);
	conns_free();
	free(data);
}
END_TEST

/* A socket the caller bound to port 0 and listened on: served as it is
 * (its port), echoes, and closed with the server (the port refuses). */
START_TEST(test_base_events__tide_server_sock_port_0_listening)
{
	struct tide_loop *loop = tt_loop_new();
	int fd = bound_tcp(0), port = sock_port(fd);
	struct srv s = { .tmpl = { .echo = 1 } };
	struct tide_server_opts o = { .size = sizeof(o), .backlog = 5 };
	struct tide_server *sv;
	struct fdid id;

	ck_assert_int_gt(port, 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	id = fd_id(fd);
	sv = serve_sock(loop, &fd, 1, &o, &s);
	ck_assert_int_eq(tide_server_port(sv), port);
	echo_roundtrip(loop, "127.0.0.1", port, &s, 0);
	echo_roundtrip(loop, "127.0.0.1", port, &s, 1);
	tide_server_close(sv);
	RUN_UNTIL(loop, fd_gone(&id));
	check_refused(port);
	tide_server_free(sv);
	finish(loop);
	conns_free();
}
END_TEST

/* A caller's socket shared with another holder (a dup here; socket
 * activation or a hand-over to a new process alike): closing the server
 * closes tide's fd only, and the other holder goes on listening and
 * accepting, as after asyncio's close(). */
START_TEST(test_base_events__tide_server_sock_shared_keeps_listening)
{
	struct tide_loop *loop = tt_loop_new();
	int fd = bound_tcp(0), port = sock_port(fd), other, cli, acc;
	struct srv s = { .tmpl = { .echo = 1 } };
	struct tide_server *sv;
	struct fdid id;

	ck_assert_int_eq(listen(fd, 4), 0);
	other = dup(fd);
	ck_assert_int_ge(other, 0);
	id = fd_id(fd);
	sv = serve_sock(loop, &fd, 1, NULL, &s);
	echo_roundtrip(loop, "127.0.0.1", port, &s, 0);
	tide_server_close(sv);
	RUN_UNTIL(loop, fd_gone(&id));
	ck_assert_int_eq(sock_listening(other), 1);
	cli = plain_client(port);
	acc = accept(other, NULL, NULL);
	ck_assert_msg(acc >= 0, "[%s] accept on the other holder: %s", tt_cfg->name, strerror(errno));
	close(acc);
	close(cli);
	close(other);
	tide_server_free(sv);
	finish(loop);
	conns_free();
}
END_TEST

/* Two sockets of two families, TCP and unix, one server: both served,
 * both closed with it; the unix socket's file stays (the caller's). */
START_TEST(test_base_events__tide_server_sock_tcp_and_unix)
{
	struct tide_loop *loop = tt_loop_new();
	char dir[108], path[108];
	int fds[2] = { bound_tcp(0), bound_unix(dir, path) }, port = sock_port(fds[0]), got[2];
	struct fdid t = fd_id(fds[0]), u = fd_id(fds[1]);
	struct srv s = { .tmpl = { .echo = 1 } };
	struct tide_server *sv = serve_sock(loop, fds, 2, NULL, &s);
	struct tide_future *f;
	struct conn *c = conn_new();
	struct stat st;

	ck_assert_uint_eq(tide_server_sockets(sv, got, 2), 2);
	ck_assert_int_eq(got[0], fds[0]);
	ck_assert_int_eq(got[1], fds[1]);
	echo_roundtrip(loop, "127.0.0.1", port, &s, 0);
	c->close_after = 4;
	ck_assert_int_eq(tide_create_unix_connection(loop, path, &conn_ops, c, &f), 0);
	tt_run_until_complete(loop, f, 0);
	tide_future_unref(f);
	ck_assert_int_eq(tide_transport_write(c->t, "unix", 4), 0);
	RUN_UNTIL(loop, c->lost && s.n == 2 && s.conns[1]->lost);
	ck_assert_mem_eq(c->rx, "unix", 4);
	server_end(sv);
	finish(loop);
	check_gone(&t, "the TCP socket");
	check_gone(&u, "the unix socket");
	ck_assert_int_eq(stat(path, &st), 0);
	unix_cleanup(dir, path);
	conns_free();
}
END_TEST

/* Cancelled before it completes: no callback, the fd closed by tide
 * (the peer sees the end). */
START_TEST(test_base_events__tide_cancel_closes_fd)
{
	struct tide_future *f = NULL;
	struct conn *c = conn_new();
	struct apair a;

	apair_open(&a);
	ck_assert_int_eq(tide_connect_accepted_socket(a.loop, a.fd, NULL, &conn_ops, c, &f), 0);
	ck_assert_int_eq(tide_future_cancel(f), 1);
	tt_run_until_complete(a.loop, f, -ECANCELED);
	ck_assert(tide_future_cancelled(f));
	tide_future_unref(f);
	ck_assert_int_eq(c->made, 0);
	ck_assert_int_eq(c->lost, 0);
	check_gone(&a.id, "after the cancel");
	check_peer_eof(a.cli);
	apair_end(&a);
}
END_TEST

/* Aborting the transport of an accepted socket closes it too. */
START_TEST(test_base_events__tide_abort_closes_fd)
{
	struct conn *c = conn_new();
	struct apair a;

	apair_open(&a);
	tide_transport_abort(wrap(a.loop, a.fd, 1, NULL, &conn_ops, c));
	RUN_UNTIL(a.loop, c->lost);
	check_conn(c, "ML", 0);
	check_gone(&a.id, "after abort");
	check_peer_eof(a.cli);
	apair_end(&a);
}
END_TEST

/* connect_accepted_socket as a TLS server, the client sending plain
 * HTTP: the handshake fails, the future says so, the protocol never hears
 * of it, and tide closed the fd (the client sees the end). */
START_TEST(test_sslproto__tide_accepted_handshake_failure_closes_fd)
{
	struct conn *c = conn_new();
	struct tide_future *f = NULL;
	struct apair a;
#ifdef TIDE_HAVE_OPENSSL
	struct tide_tls_opts stls = tls_opts(g_certs.server, NULL);
	struct tide_connect_opts so = { .size = sizeof(so), .tls = &stls };
	const char req[] = "GET / HTTP/1.0\r\n\r\n";
	struct pollfd pfd = { .events = POLLIN };
	char buf[256];
	ssize_t n;
	int err;

	apair_open(&a);
	pfd.fd = a.cli;
	ck_assert_int_eq(send(a.cli, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
	ck_assert_int_eq(tide_connect_accepted_socket(a.loop, a.fd, &so, &conn_ops, c, &f), 0);
	RUN_UNTIL(a.loop, tide_future_done(f));
	err = tide_future_error(f);
	ck_assert_msg(err < 0 && err != -ECANCELED, "[%s] the handshake gave %d", tt_cfg->name, err);
	tide_future_unref(f);
	ck_assert_int_eq(c->made, 0);
	ck_assert_int_eq(c->lost, 0);
	spin(a.loop, 5);
	check_gone(&a.id, "after the failed handshake");
	/* An alert perhaps, then the end. */
	do {
		ck_assert_int_eq(poll(&pfd, 1, (int)(5000 * slow_factor())), 1);
		n = recv(a.cli, buf, sizeof(buf), MSG_DONTWAIT);
	} while (n > 0);
	ck_assert(n == 0 || (n < 0 && errno == ECONNRESET));
#else
	struct tide_tls_opts stls = { .size = sizeof(stls) };
	struct tide_connect_opts so = { .size = sizeof(so), .tls = &stls };

	apair_open(&a);
	ck_assert_int_eq(tide_connect_accepted_socket(a.loop, a.fd, &so, &conn_ops, c, &f), -ENOTSUP);
	check_untouched(&a.id, "TLS without OpenSSL");
	close(a.fd);
#endif
	apair_end(&a);
}
END_TEST

/* Streams: a line echo served by start_server_sock, reached with
 * open_connection_sock over a socket connected by tide_connect; freeing
 * the pair closes the socket. */
static int64_t line_echo(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	char buf[64];
	ssize_t n = tide_stream_readline(r, buf, sizeof(buf));

	(void)arg;
	if (n <= 0)
		return n;
	ck_assert_int_eq(tide_stream_write(w, buf, (size_t)n), 0);
	return tide_stream_drain(w);
}

struct oc {
	const struct tide_server_opts *so;
	const struct tide_connect_opts *co;
	int expect;                  /* open_connection_sock's return */
};

static int64_t oc_main(void *arg)
{
	struct oc *a = arg;
	struct tide_loop *loop = tide_get_running_loop();
	struct tide_stream_reader *r = NULL;
	struct tide_stream_writer *w = NULL;
	struct tide_future *f = NULL;
	struct tide_server *sv;
	int lfd = bound_tcp(0), fd, err;
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, AF_INET, sock_port(lfd));
	struct fdid lid = fd_id(lfd), id;
	char buf[64];

	ck_assert_int_eq(tide_start_server_sock(loop, &lfd, 1, a->so, line_echo, NULL, &f), 0);
	sv = tide_future_take_ptr(f);
	tide_future_unref(f);
	fd = tide_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	id = fd_id(fd);
	ck_assert_int_eq(tide_connect(fd, (struct sockaddr *)&ss, len), 0);
	err = tide_open_connection_sock(fd, a->co, &r, &w);
	ck_assert_msg(err == a->expect, "[%s] open_connection_sock: %d (%s)", tt_cfg->name, err,
		      tide_strerror(err));
	if (err == 0) {
		ck_assert_int_eq(tide_stream_write(w, "hello\n", 6), 0);
		ck_assert_int_eq(tide_stream_readline(r, buf, sizeof(buf)), 6);
		ck_assert_mem_eq(buf, "hello\n", 6);
		tide_stream_close(w);
		ck_assert_int_eq(tide_stream_wait_closed(w), 0);
		tide_stream_free(r, w);
	}
	/* Either way the socket is tide's and closed: after the pair, or
	 * after the failed handshake. */
	task_wait_gone(&id, "the client socket");
	tide_server_close(sv);
	ck_assert_int_eq(tide_server_wait_closed(sv), 0);
	check_gone(&lid, "the listening socket after wait_closed");
	tide_server_free(sv);
	return 0;
}

/* test_streams, open_connection(sock=) and start_server(sock=): a plain
 * line echo; the client's socket closed with the pair, the server's with
 * the server. */
START_TEST(test_streams__tide_open_connection_sock)
{
	struct tide_loop *loop = NULL;
	struct oc a = { 0 };

	tt_run_main(&loop, oc_main, &a);
}
END_TEST

/* The same over TLS (start_server_sock serving TLS, open_connection_sock
 * the verifying client); then a client that expects another host name:
 * the handshake fails and tide has closed the socket. Without OpenSSL,
 * -ENOTSUP. */
START_TEST(test_streams__tide_open_connection_sock_tls)
{
	struct tide_loop *loop = NULL;
#ifdef TIDE_HAVE_OPENSSL
	struct tide_tls_opts stls = tls_opts(g_certs.server, NULL), ctls = tls_opts(g_certs.client, "localhost");
	struct tide_tls_opts wrong = tls_opts(g_certs.client, "wrong.localhost");
	struct tide_server_opts so = { .size = sizeof(so), .tls = &stls };
	struct tide_connect_opts co = { .size = sizeof(co), .tls = &ctls };
	struct tide_connect_opts cw = { .size = sizeof(cw), .tls = &wrong };
	struct oc a = { .so = &so, .co = &co }, b = { .so = &so, .co = &cw, .expect = TIDE_ETLS_VERIFY(
								       X509_V_ERR_HOSTNAME_MISMATCH) };

	tt_run_main(&loop, oc_main, &a);
	tt_run_main(&loop, oc_main, &b);
#else
	struct tide_loop *l = tt_loop_new();
	struct tide_tls_opts t = { .size = sizeof(t) };
	struct tide_connect_opts co = { .size = sizeof(co), .tls = &t };
	int sv[2];
	struct fdid id;

	(void)loop;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	id = fd_id(sv[0]);
	ck_assert_int_eq(open_sock_err(l, sv[0], &co), -ENOTSUP);
	check_untouched(&id, "TLS without OpenSSL");
	close(sv[0]);
	close(sv[1]);
	finish(l);
#endif
}
END_TEST

/* create_connection_sock as a TLS client of a TLS server
 * (create_server_sock with tls): the handshake, "ssl_object" a client's,
 * an echo; both sockets closed at the end. */
START_TEST(test_sslproto__tide_create_connection_sock_tls)
{
	struct tide_loop *loop = tt_loop_new();
#ifdef TIDE_HAVE_OPENSSL
	struct tide_tls_opts stls = tls_opts(g_certs.server, NULL), ctls = tls_opts(g_certs.client, "localhost");
	struct tide_server_opts so = { .size = sizeof(so), .tls = &stls };
	struct tide_connect_opts co = { .size = sizeof(co), .tls = &ctls };
	struct srv s = { .tmpl = { .echo = 1 } };
	int lfd = bound_tcp(0), port = sock_port(lfd), fd;
	struct fdid lid = fd_id(lfd), id;
	struct tide_server *sv = serve_sock(loop, &lfd, 1, &so, &s);
	struct conn *c = conn_new();
	struct tide_transport *t;
	void *ssl = NULL;
	socklen_t len = sizeof(ssl);

	fd = plain_client(port);
	id = fd_id(fd);
	t = wrap(loop, fd, 0, &co, &conn_ops, c);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "ssl_object", &ssl, &len), 0);
	ck_assert_int_eq(SSL_is_server(ssl), 0);
	c->close_after = 5;
	ck_assert_int_eq(tide_transport_write(t, "hello", 5), 0);
	RUN_UNTIL(loop, c->lost && s.n == 1 && s.conns[0]->lost);
	ck_assert_mem_eq(c->rx, "hello", 5);
	check_gone(&id, "the TLS client's socket");
	server_end(sv);
	finish(loop);
	check_gone(&lid, "the TLS server's socket");
#else
	struct tide_tls_opts t = { .size = sizeof(t) };
	struct tide_connect_opts co = { .size = sizeof(co), .tls = &t };
	int sv[2];
	struct fdid id;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	id = fd_id(sv[0]);
	ck_assert_int_eq(tide_create_connection_sock(loop, sv[0], &co, &conn_ops, NULL, &(struct tide_future *){ NULL }),
			 -ENOTSUP);
	check_untouched(&id, "TLS without OpenSSL");
	close(sv[0]);
	close(sv[1]);
	finish(loop);
#endif
	conns_free();
}
END_TEST

int main(void)
{
	struct tt_suite ts;
	int rc;

	signal(SIGPIPE, SIG_IGN);
#ifdef TIDE_HAVE_OPENSSL
	if (tt_certs_make(&g_certs, NULL) < 0)
		return 99;
#endif
	tt_suite_init(&ts, "conformance-server", 60);
	tt_add(&ts, test_events__test_create_connection_sock);
	tt_add(&ts, test_events__test_create_server_sock);
	tt_add(&ts, test_events__test_connect_accepted_socket);
	tt_add(&ts, test_events__test_ssl_connect_accepted_socket);
	tt_add(&ts, test_base_events__test_create_connection_wrong_sock);
	tt_add(&ts, test_base_events__test_create_server_wrong_sock);
	tt_add(&ts, test_base_events__test_create_server_stream_bittype);
	tt_add(&ts, test_server__test_start_server_1);
	tt_add(&ts, test_server__test_start_unix_server_1);
	tt_add(&ts, test_server__test_wait_closed_basic);
	tt_add(&ts, test_sock_lowlevel__test_create_connection_sock);
	tt_add(&ts, test_base_events__tide_sock_not_a_socket);
	tt_add(&ts, test_base_events__tide_sock_bad_fd_and_arguments);
	tt_add(&ts, test_base_events__tide_sock_not_connected);
	tt_add(&ts, test_base_events__tide_sock_connect_in_progress);
	tt_add(&ts, test_base_events__tide_sock_tls_and_loop_refusals);
	tt_add(&ts, test_base_events__tide_server_sock_refusals);
	tt_add(&ts, test_base_events__tide_unix_socketpair_echo);
	tt_add(&ts, test_base_events__tide_server_sock_port_0_listening);
	tt_add(&ts, test_base_events__tide_server_sock_shared_keeps_listening);
	tt_add(&ts, test_base_events__tide_server_sock_tcp_and_unix);
	tt_add(&ts, test_base_events__tide_cancel_closes_fd);
	tt_add(&ts, test_base_events__tide_abort_closes_fd);
	tt_add(&ts, test_sslproto__tide_accepted_handshake_failure_closes_fd);
	tt_add(&ts, test_streams__tide_open_connection_sock);
	tt_add(&ts, test_streams__tide_open_connection_sock_tls);
	tt_add(&ts, test_sslproto__tide_create_connection_sock_tls);
	rc = tt_run(&ts);
#ifdef TIDE_HAVE_OPENSSL
	tt_certs_free(&g_certs);
#endif
	return rc;
}
