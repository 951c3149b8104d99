/* SPDX-License-Identifier: MIT */
/*
 * net-fixture.c: the networking test programs' shared fixture (see
 * net-fixture.h), on the public API only: the loop helpers, plain sockets
 * on the loopback, the logging protocol and its servers, the stream tests'
 * main task, and net_main.
 *
 * The hard part is the logging protocol's ownership: a conn lives until
 * conns_free (after the loop is freed), so a callback that comes late is
 * counted in after_lost rather than a use after free, and a struct srv
 * lives on a test's stack while its conns array lives here.
 */
#include "config.h"
#include "net-fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ----------------------------------------------------------- the loop -- */


static void stop_cb(void *arg)
{
	tide_loop_stop(arg);
}

/* n short iterations: long enough for a pending op to stay pending. */
void spin(struct tide_loop *loop, int n)
{
	for (int i = 0; i < n; i++)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.005), 0);
}

/* Runs the loop for secs (for checks that something does NOT happen). */
void run_for(struct tide_loop *loop, double secs)
{
	ck_assert_int_eq(tide_call_later(loop, secs, stop_cb, loop, NULL), 0);
	ck_assert_int_eq(tide_loop_run(loop), 0);
}

/*
 * Lets deferred closes finish (a few idle iterations), then frees the loop,
 * which must succeed: every transport, server and future is gone.
 */
void finish(struct tide_loop *loop)
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

void *fut_ptr(struct tide_future *f)
{
	void *p = NULL;
	int err = tide_future_result(f, NULL, &p);

	ck_assert_msg(err == 0, "[%s] future error %d (%s)", tt_cfg->name, err, tide_strerror(err));
	return p;
}

void *fut_take(struct tide_future *f)
{
	void *p;
	int err = tide_future_error(f);

	ck_assert_msg(err == 0, "[%s] future error %d (%s)", tt_cfg->name, err, tide_strerror(err));
	p = tide_future_take_ptr(f);
	ck_assert_ptr_nonnull(p);
	return p;
}

int done_error(struct tide_loop *loop, struct tide_future *f)
{
	int err;

	RUN_UNTIL(loop, tide_future_done(f));
	err = tide_future_error(f);
	tide_future_unref(f);
	return err;
}

/* -------------------------------------------------- plain sockets -- */

void check_nb_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);

	ck_assert_msg(fl >= 0 && (fl & O_NONBLOCK), "[%s] fd %d is not O_NONBLOCK (flags %#x)",
		      tt_cfg->name, fd, fl);
	ck_assert_msg(fdf >= 0 && (fdf & FD_CLOEXEC), "[%s] fd %d is not FD_CLOEXEC (%#x)",
		      tt_cfg->name, fd, fdf);
}

void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ge(fl, 0);
	ck_assert_int_eq(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* The loopback address of family with port. */
socklen_t loopback(struct sockaddr_storage *ss, int family, int port)
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

int addr_port(const void *sa)
{
	const struct sockaddr *a = sa;

	if (a->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	ck_assert_int_eq(a->sa_family, AF_INET);
	return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

int sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	return addr_port(&ss);
}

int is_loopback4(const void *sa)
{
	const struct sockaddr_in *s4 = sa;

	return s4->sin_family == AF_INET && s4->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
}

/* A plain socket bound to the loopback at a free port (listening if a stream). */
int bound_socket(int family, int type, int *port)
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
int closed_port(int type)
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
int raw_connect_rcvbuf(int family, int port, int rcvbuf)
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

int raw_connect(int family, int port)
{
	return raw_connect_rcvbuf(family, port, 0);
}

/* fd is closed: fcntl says EBADF. */
void check_fd_closed(int fd, const char *what)
{
	errno = 0;
	ck_assert_msg(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "[%s] %s (fd %d) is still open", tt_cfg->name,
		      what, fd);
}

/* Reads exactly n bytes from the plain socket fd, running the loop meanwhile. */
void loop_recv_exact(struct tide_loop *loop, int fd, void *buf, size_t n)
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
void check_peer_eof(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	ck_assert_msg(poll(&pfd, 1, (int)(5000 * slow_factor())) == 1, "[%s] no EOF from the closed peer",
		      tt_cfg->name);
	ck_assert_int_eq(recv(fd, &c, 1, MSG_DONTWAIT), 0);
}

/*
 * A TCP listener whose accept queue is full: listen(backlog), then nfill
 * connects nobody accepts. The kernel drops further SYNs, so a connect
 * stays in SYN_SENT (its SYN is sent again after 1 s, 3 s...).
 */
int full_listener(int backlog, int *port, int *fill, int nfill)
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
void drain_listener(int lfd, int *fill, int nfill)
{
	int a;

	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	while ((a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(a);
	ck_assert_int_eq(errno, EAGAIN);
}

/* A socket a connect said is connected: getpeername agrees, with the listener's port. */
void check_connected(int fd, int port, const char *what)
{
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	int r = getpeername(fd, (struct sockaddr *)&peer, &plen);

	ck_assert_msg(r == 0, "[%s] %s reported success, but getpeername: %s", tt_cfg->name, what,
		      strerror(errno));
	ck_assert_int_eq(addr_port(&peer), port);
}

/* Deterministic per-stream bytes: stream seed, byte offset. */
static unsigned char pat(uint32_t seed, size_t off)
{
	return (unsigned char)((off * 131u) ^ (off >> 9) ^ (seed * 2654435761u >> 11));
}

unsigned char *pat_buf(uint32_t seed, size_t n)
{
	unsigned char *b = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < n; i++)
		b[i] = pat(seed, i);
	return b;
}

/* --------------------------------------------- the logging protocol -- */

static struct conn **g_conns;
static size_t g_nconns, g_capconns;

struct conn *conn_new(void)
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

void note(struct conn *c, char ev)
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

void rx_append(struct conn *c, const void *data, size_t n)
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

void on_made(struct tide_transport *t, void *p)
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

/* Pauses and resumes reading every millisecond: paused half of the time. */
void toggle_cb(void *arg)
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

void after_data(struct conn *c)
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

int on_eof(struct tide_transport *t, void *p)
{
	struct conn *c = p;

	ck_assert_ptr_eq(t, c->t);
	note(c, 'E');
	c->eofs++;
	if (c->eof_reply)
		ck_assert_int_eq(tide_call_later(c->loop, 0.01, reply_cb, c, NULL), 0);
	return c->eof_ret;
}

void on_lost(struct tide_transport *t, int err, void *p)
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

const struct tide_protocol_ops conn_ops = { LOG_STREAM_OPS, .data_received = on_data,
					    .pause_writing = on_pause_writing,
					    .resume_writing = on_resume_writing };

/* Servers whose conns arrays conns_free releases (they live on the tests' stacks). */
static struct srv *g_srvs[8];
static size_t g_nsrvs;

int srv_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
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

void conns_free(void)
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

size_t srv_count(const struct srv *s, int made, int lost)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++)
		if ((!made || s->conns[i]->made) && (!lost || s->conns[i]->lost))
			k++;
	return k;
}

const char *const lo4[1] = { "127.0.0.1" };

struct tide_server *serve(struct tide_loop *loop, const char *const *hosts, size_t nhosts,
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

void server_end(struct tide_server *sv)
{
	tide_server_close(sv);
	tide_server_free(sv);
}

/* create_connection; as in asyncio, connection_made has run when the future completes. */
struct conn *dial(struct tide_loop *loop, const char *host, int port, struct conn *c)
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

void check_conn(const struct conn *c, const char *log, int err)
{
	ck_assert_msg(strcmp(c->log, log) == 0, "[%s] conn %d: callbacks \"%s\", expected \"%s\"",
		      tt_cfg->name, c->id, c->log, log);
	ck_assert_msg(c->lost == 1 && c->lost_err == err, "[%s] conn %d: lost %d times, err %d (%s), expected %d",
		      tt_cfg->name, c->id, c->lost, c->lost_err, tide_strerror(c->lost_err), err);
	ck_assert_int_eq(c->after_lost, 0);
}

/* The server side of a server's only connection, once accepted. */
struct conn *accepted(struct tide_loop *loop, struct srv *s)
{
	RUN_UNTIL(loop, srv_count(s, 1, 0) == 1);
	return s->conns[0];
}

/* Both ends of a server's only connection (cli its client) are gone. */
int both_lost(const struct conn *cli, const struct srv *s)
{
	return cli->lost && s->n == 1 && s->conns[0]->lost;
}

/* The end of a protocol test: the server (if any), the loop, the conns. */
void finish_all(struct tide_loop *loop, struct tide_server *sv)
{
	if (sv)
		server_end(sv);
	finish(loop);
	conns_free();
}

void echo_roundtrip(struct tide_loop *loop, const char *host, int port, struct srv *s, size_t before)
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

void on_dgram(struct tide_transport *t, const void *data, size_t n, const struct sockaddr *addr,
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

void on_dgram_error(struct tide_transport *t, int err, void *p)
{
	struct conn *c = p;

	ck_assert_ptr_eq(t, c->t);
	if (c->lost)
		c->after_lost++;
	c->nerr++;
	c->last_err = err;
}

const struct tide_protocol_ops dgram_ops = { LOG_OPS, .datagram_received = on_dgram,
					     .error_received = on_dgram_error };

struct conn *endpoint(struct tide_loop *loop, const struct tide_datagram_opts *o, struct conn *c)
{
	return endpoint_ops(loop, o, &dgram_ops, c);
}

struct conn *endpoint_ops(struct tide_loop *loop, const struct tide_datagram_opts *o,
			  const struct tide_protocol_ops *ops, struct conn *c)
{
	struct tide_future *f;
	int r = tide_create_datagram_endpoint(loop, o, ops, c, &f);

	ck_assert_msg(r == 0, "[%s] tide_create_datagram_endpoint: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	tt_run_until_complete(loop, f, 0);
	ck_assert_ptr_eq(fut_ptr(f), c->t);
	tide_future_unref(f);
	ck_assert_int_eq(c->made, 1);
	return c;
}

/* The "socket" extra info of a transport. */
int transport_fd(struct tide_transport *t)
{
	int fd = -1;
	socklen_t len = sizeof(fd);

	ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &len), 0);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* Sets SO_SNDBUF or SO_RCVBUF on t's socket. */
void set_sockbuf(struct tide_transport *t, int opt, int sz)
{
	int fd = -1;
	socklen_t len = sizeof(fd);

	ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &len), 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, opt, &sz, sizeof(sz)), 0);
}

void small_sndbuf(struct tide_transport *t)
{
	set_sockbuf(t, SO_SNDBUF, 4096);
}

/* ------------------------------------------ streams, in a main task -- */

struct tide_loop *g_loop;
struct tide_stream_reader *g_r;

struct tide_future *spawn(tide_task_cb fn, void *arg)
{
	struct tide_future *t = NULL;

	ck_assert_int_eq(tide_task_spawn(g_loop, fn, arg, NULL, &t), 0);
	return t;
}

/* Spawns fn(arg) and lets it run up to where it waits. */
struct tide_future *spawn_waiting(tide_task_cb fn, void *arg)
{
	struct tide_future *t = spawn(fn, arg);

	ck_assert_int_eq(tide_yield(), 0);
	return t;
}

/* Awaits a child task and drops the reference: its outcome. */
int64_t join(struct tide_future *t)
{
	int64_t r = tide_await(t);

	tide_future_unref(t);
	return r;
}

/* Runs fn(arg) as the main task of a fresh loop; it must return 0, and nothing may leak. */
void run_main(tide_task_cb fn, void *arg)
{
	tt_run_main(&g_loop, fn, arg);
}

int64_t readline_task(void *arg)
{
	char *buf = arg;

	return tide_stream_readline(g_r, buf, 64);
}


int64_t read_lend_task(void *arg)
{
	return tide_stream_read(g_r, arg, LEND);
}

/* A string of n bytes (n <= 2 * LEND): 'a' to 'z' over and over. */
const char *pattern(size_t n)
{
	static char out[2 * LEND + 1];

	for (size_t i = 0; i < n; i++)
		out[i] = (char)('a' + i % 26);
	out[n] = 0;
	return out;
}

/* --------------------------------------------- counting allocator -- */

/* The library allocates through the counting allocator of helpers.h:
 * false (skipped) when a loop exists already, as without Check's fork mode. */
bool counting_allocator(const char *test)
{
	return tt_allocator_replaced(tt_count_allocs(), test);
}

/* ------------------------------------------------------------ main -- */

/* TIDE_NET_ONLY=name[,name...] runs only those tests (for debugging one case). */
static int wanted(const TTest *t)
{
	const char *only = getenv("TIDE_NET_ONLY");
	size_t n = strlen(t->name);
	const char *p = only;

	if (!only || !*only)
		return 1;
	while ((p = strstr(p, t->name)) != NULL) {
		if ((p == only || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
			return 1;
		p += n;
	}
	return 0;
}

int net_main(const char *name, double timeout, const TTest *const *tests, size_t ntests, const TTest *const *fed,
	     size_t nfed)
{
	struct tt_suite ts;
	TCase *tc = NULL;

	tt_suite_init(&ts, name, timeout);
	for (size_t i = 0; i < ntests; i++)
		if (wanted(tests[i]))
			tt_add(&ts, tests[i]);
	/* Fed by hand: no I/O, so one configuration is enough. */
	for (size_t i = 0; i < nfed; i++) {
		if (!wanted(fed[i]))
			continue;
		if (!tc)
			tc = tt_tcase(&ts, "fed");
		tcase_add_test(tc, fed[i]);
	}
	return tt_run(&ts);
}
