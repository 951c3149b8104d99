/* SPDX-License-Identifier: MIT */
/*
 * test/tls.c: TLS transports (src/net/tls.c) on every backend
 * configuration: handshake and echo between tide's client and server
 * (TCP and unix), ALPN, SNI, verification failures, peers that send
 * garbage, truncate a record, stop in a handshake or close without
 * close_notify, 64 MiB with the reader paused half the time,
 * renegotiation refused, 1,000 connections at once, start_tls on a
 * transport and on streams, streams over TLS, write flow control, the
 * extra info, bad input, and a loop freed with a TLS connection open.
 *
 * The certificates are made at start (test/tls-fixture.h); the peers that
 * misbehave are OpenSSL objects over memory BIOs that the test pumps
 * through plain loopback sockets itself (struct mb), so a test can cut a
 * record short or renegotiate. The hard part is the bookkeeping of
 * callbacks, which the logging protocol of net-fixture.h does (M made,
 * D data runs, E eof, L lost).
 */
#include "config.h"
#include "net-fixture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef TIDE_HAVE_OPENSSL

int main(void)
{
	printf("SKIP: test/tls: this build has no TLS (configure --without-openssl, or OpenSSL 3 not found): "
	       "tide_tls_available() is %d\n",
	       tide_tls_available());
	/* The calls say so too. */
	if (tide_tls_available() != 0 || tide_tls_client_context_new(&(struct ssl_ctx_st *){ NULL }) != -ENOTSUP)
		return 1;
	return 77;
}

#else

#include "tls-fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static struct tt_certs g_certs;

/* TLS options of ctx, the rest zero (the defaults). */
static struct tide_tls_opts tls_opts(SSL_CTX *ctx)
{
	return (struct tide_tls_opts){ .size = sizeof(struct tide_tls_opts), .ctx = ctx };
}

/* A TLS server on 127.0.0.1 whose connections copy s->tmpl. */
static struct tide_server *tls_serve(struct tide_loop *loop, const struct tide_tls_opts *tls, struct srv *s)
{
	struct tide_server_opts o = { .size = sizeof(o), .tls = tls };

	return serve(loop, lo4, 1, &o, s);
}

/* create_connection_ex with TLS: the future, not yet done. */
static struct tide_future *tls_dial_start(struct tide_loop *loop, const char *host, int port,
					  const struct tide_tls_opts *tls, struct conn *c)
{
	struct tide_connect_opts o = { .size = sizeof(o), .tls = tls };
	struct tide_future *f = NULL;
	int r = tide_create_connection_ex(loop, host, port, &o, &conn_ops, c, &f);

	ck_assert_msg(r == 0, "[%s] tide_create_connection_ex: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	return f;
}

/* A TLS client of conn_ops, once its handshake is over. */
static struct conn *tls_dial(struct tide_loop *loop, int port, const struct tide_tls_opts *tls, struct conn *c)
{
	struct tide_future *f = tls_dial_start(loop, "127.0.0.1", port, tls, c);
	struct tide_transport *t;

	RUN_UNTIL(loop, tide_future_done(f));
	t = fut_ptr(f);
	tide_future_unref(f);
	/* As asyncio's: connection_made ran, after the handshake. */
	ck_assert_int_eq(c->made, 1);
	ck_assert_ptr_eq(t, c->t);
	return c;
}

/* A connection attempt that must fail: its error, and no connection_made. */
static int tls_dial_error(struct tide_loop *loop, int port, const struct tide_tls_opts *tls)
{
	struct conn *c = conn_new();
	int err = done_error(loop, tls_dial_start(loop, "127.0.0.1", port, tls, c));

	ck_assert_msg(c->made == 0 && c->lost == 0, "[%s] a failed handshake reached the protocol (log %s)",
		      tt_cfg->name, c->log);
	return err;
}

/* A string extra info of t. */
static int info_str(struct tide_transport *t, const char *name, char *buf, socklen_t cap)
{
	socklen_t len = cap;
	int r = tide_transport_get_extra_info(t, name, buf, &len);

	if (r == 0)
		ck_assert_uint_eq(len, strlen(buf) + 1);
	return r;
}

/* ------------------------------------------------------- handshake, echo -- */

static void check_tls_info(struct tide_transport *t, SSL_CTX *ctx, const char *host)
{
	unsigned char der[4096];
	char s[256];
	void *p = NULL;
	socklen_t len;
	const unsigned char *q = der;
	X509 *x;
	int fd = -1;

	len = sizeof(p);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "ssl_object", &p, &len), 0);
	ck_assert_uint_eq(len, sizeof(p));
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(SSL_is_init_finished(p), 1);
	len = sizeof(p);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "sslcontext", &p, &len), 0);
	ck_assert_ptr_eq(p, ctx);
	ck_assert_int_eq(info_str(t, "cipher", s, sizeof(s)), 0);
	ck_assert_uint_gt(strlen(s), 0);
	ck_assert_int_eq(info_str(t, "version", s, sizeof(s)), 0);
	ck_assert_msg(!strcmp(s, "TLSv1.3") || !strcmp(s, "TLSv1.2"), "version %s", s);
	ck_assert_int_eq(info_str(t, "compression", s, sizeof(s)), -ENOENT);
	ck_assert_int_eq(info_str(t, "alpn_protocol", s, sizeof(s)), -ENOENT);
	ck_assert_int_eq(info_str(t, "no such name", s, sizeof(s)), -ENOENT);
	if (host) {
		ck_assert_int_eq(info_str(t, "server_hostname", s, sizeof(s)), 0);
		ck_assert_str_eq(s, host);
		ck_assert_int_eq(info_str(t, "server_hostname", s, 3), -ENOSPC);
		/* The server's certificate, DER. */
		len = sizeof(der);
		ck_assert_int_eq(tide_transport_get_extra_info(t, "peercert", der, &len), 0);
		ck_assert_ptr_nonnull(x = d2i_X509(NULL, &q, len));
		ck_assert_int_eq(X509_check_host(x, "localhost", 0, 0, NULL), 1);
		X509_free(x);
		len = 10;
		ck_assert_int_eq(tide_transport_get_extra_info(t, "peercert", der, &len), -ENOSPC);
	} else {
		/* A server that asked for no client certificate has none. */
		len = sizeof(der);
		ck_assert_int_eq(tide_transport_get_extra_info(t, "peercert", der, &len), -ENOENT);
	}
	/* The plain names are the socket's. */
	len = sizeof(fd);
	ck_assert_int_eq(tide_transport_get_extra_info(t, "socket", &fd, &len), 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tide_transport_can_write_eof(t), 1);
}

/* tide's client and server: echo, the extra info, close_notify both ways. */
START_TEST(test_echo_tcp)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new();

	s.tmpl.echo = 1;
	sv = tls_serve(loop, &st, &s);
	cli->close_after = 9;
	tls_dial(loop, tide_server_port(sv), &ct, cli);
	/* The factory is called after the handshake, so it ran by now. */
	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 1);
	check_tls_info(cli->t, g_certs.client, "127.0.0.1");
	check_tls_info(s.conns[0]->t, g_certs.server, NULL);
	ck_assert_int_eq(tide_transport_write(cli->t, "hello tls", 9), 0);
	/* The client closes once the echo came: its close_notify is the
	 * server's eof_received, which closes, and its close_notify ends the
	 * client's wait: both clean. */
	RUN_UNTIL(loop, both_lost(cli, &s));
	ck_assert_uint_eq(cli->rxlen, 9);
	ck_assert_mem_eq(cli->rx, "hello tls", 9);
	check_conn(cli, "MDL", 0);
	check_conn(s.conns[0], "MDEL", 0);
	finish_all(loop, sv);
}
END_TEST

/* A server that answers a request in three writes, then closes. */
static void three_writes_data(struct tide_transport *t, const void *data, size_t n, void *p)
{
	struct conn *c = p;

	(void)data;
	note(c, 'D');
	c->rxlen += n;
	ck_assert_int_eq(tide_transport_write(t, "HTTP/1.1 200 OK\r\n", 17), 0);
	ck_assert_int_eq(tide_transport_write(t, "Content-Length: 5\r\n\r\n", 21), 0);
	ck_assert_int_eq(tide_transport_write(t, "hello", 5), 0);
	tide_transport_close(t);
}

static const struct tide_protocol_ops three_writes_ops = { LOG_STREAM_OPS, .data_received = three_writes_data };

static void send_request(struct conn *c)
{
	ck_assert_int_eq(tide_transport_write(c->t, "GET / HTTP/1.1\r\n\r\n", 18), 0);
}

/* Every send a loop's transports made: ops (io_uring) and send(2) at write time. */
static uint64_t sends_made(struct tide_loop *loop)
{
	struct tide_loop_stats st = { .size = sizeof(st) };
	uint64_t n;

	ck_assert_int_eq(tide_loop_stats(loop, &st), 0);
	n = st.sends_direct;
	for (int p = 0; p < TIDE_PATH_MAX; p++)
		n += st.ops_completed[TIDE_OP_SEND][p] + st.ops_completed[TIDE_OP_SEND_ZC][p];
	return n;
}

/*
 * What one call into OpenSSL writes leaves in one send: the client's
 * ClientHello; the server's flight; the client's Finished with the request
 * connection_made wrote; the server's session tickets, the three writes
 * of its answer and its close_notify; the client's close_notify. Five
 * sends; record by record it was 8 on io_uring, 11 on the readiness paths.
 */
START_TEST(test_records_coalesced)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new();
	uint64_t before, sends;

	s.ops = &three_writes_ops;
	sv = tls_serve(loop, &st, &s);
	cli->made_hook = send_request;
	cli->close_after = 17 + 21 + 5;
	before = sends_made(loop);
	tls_dial(loop, tide_server_port(sv), &ct, cli);
	RUN_UNTIL(loop, both_lost(cli, &s));
	sends = sends_made(loop) - before;
	ck_assert_uint_eq(cli->rxlen, 17 + 21 + 5);
	ck_assert_mem_eq(cli->rx + 17 + 21, "hello", 5);
	ck_assert_uint_eq(s.conns[0]->rxlen, 18);
	ck_assert_int_eq(cli->lost_err, 0);
	/* One more where a delivery splits (the Finished apart from the request). */
	ck_assert_msg(sends >= 5 && sends <= 6, "[%s] %llu sends", tt_cfg->name, (unsigned long long)sends);
	finish_all(loop, sv);
}
END_TEST

static int unix_path(char *buf, size_t n)
{
	return snprintf(buf, n, "%s/tls-%d-%s.sock", g_certs.dir, (int)getpid(), tt_cfg->name);
}

START_TEST(test_echo_unix)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct tide_server_opts so = { .size = sizeof(so), .tls = &st };
	struct tide_connect_opts co = { .size = sizeof(co), .tls = &ct };
	struct srv s = { 0 };
	struct tide_server *sv;
	struct tide_future *f;
	struct conn *cli = conn_new();
	char path[300], name[64];

	unix_path(path, sizeof(path));
	s.tmpl.echo = 1;
	ck_assert_int_eq(tide_create_unix_server(loop, path, &so, srv_factory, &s, &f), 0);
	tt_run_until_complete(loop, f, 0);
	sv = fut_take(f);
	tide_future_unref(f);
	/* A unix connection has no host name: a verifying client names it. */
	ck_assert_int_eq(tide_create_unix_connection_ex(loop, path, &co, &conn_ops, cli, &f), -EINVAL);
	ct.server_hostname = "localhost";
	ck_assert_int_eq(tide_create_unix_connection_ex(loop, path, &co, &conn_ops, cli, &f), 0);
	RUN_UNTIL(loop, tide_future_done(f));
	ck_assert_ptr_eq(fut_ptr(f), cli->t);
	tide_future_unref(f);
	/* SNI: the server saw the name the client sent. */
	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 1);
	ck_assert_int_eq(info_str(s.conns[0]->t, "server_hostname", name, sizeof(name)), 0);
	ck_assert_str_eq(name, "localhost");
	cli->close_after = 5;
	ck_assert_int_eq(tide_transport_write(cli->t, "unix!", 5), 0);
	RUN_UNTIL(loop, both_lost(cli, &s));
	ck_assert_mem_eq(cli->rx, "unix!", 5);
	check_conn(cli, "MDL", 0);
	check_conn(s.conns[0], "MDEL", 0);
	finish_all(loop, sv);
}
END_TEST

/* ------------------------------------------------- a peer by hand -- */

/*
 * An OpenSSL client over memory BIOs that the test pumps through a plain
 * non-blocking loopback socket itself, running the loop between: it can
 * cut a record short, close without close_notify, renegotiate.
 */
struct mb {
	SSL *ssl;
	BIO *in, *out; /* what came from the socket; what OpenSSL wrote */
	int fd;
	int eof;
};

static void mb_init(struct mb *m, int port, int max_version)
{
	memset(m, 0, sizeof(*m));
	m->fd = raw_connect(AF_INET, port);
	set_nonblock(m->fd);
	ck_assert_ptr_nonnull(m->ssl = SSL_new(g_certs.client_noverify));
	ck_assert_ptr_nonnull(m->in = BIO_new(BIO_s_mem()));
	ck_assert_ptr_nonnull(m->out = BIO_new(BIO_s_mem()));
	SSL_set_bio(m->ssl, m->in, m->out);
	SSL_set_connect_state(m->ssl);
	if (max_version)
		ck_assert_int_eq(SSL_set_max_proto_version(m->ssl, max_version), 1);
}

static void mb_free(struct mb *m)
{
	SSL_free(m->ssl);
	if (m->fd >= 0)
		close(m->fd);
	ERR_clear_error();
}

/* Sends n raw bytes, running the loop while the socket is full. */
static void send_all(struct tide_loop *loop, int fd, const void *p, size_t n)
{
	uint64_t end = tt_mono_ns() + (uint64_t)(30 * slow_factor() * 1e9);

	while (n) {
		ssize_t r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r > 0) {
			p = (const char *)p + r;
			n -= (size_t)r;
			continue;
		}
		ck_assert_msg(r < 0 && errno == EAGAIN, "[%s] send: %s", tt_cfg->name, strerror(errno));
		ck_assert_msg(tt_mono_ns() < end, "[%s] send timed out", tt_cfg->name);
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	}
}

/* What OpenSSL wrote goes out; what came in goes to OpenSSL; one loop lap. */
static void mb_pump(struct tide_loop *loop, struct mb *m)
{
	char buf[16384];
	ssize_t r = -1;
	int n;

	while ((n = BIO_read(m->out, buf, sizeof(buf))) > 0)
		send_all(loop, m->fd, buf, (size_t)n);
	while (!m->eof && (r = recv(m->fd, buf, sizeof(buf), MSG_DONTWAIT)) != 0) {
		if (r < 0) {
			ck_assert_msg(errno == EAGAIN || errno == ECONNRESET, "[%s] recv: %s", tt_cfg->name,
				      strerror(errno));
			if (errno == ECONNRESET)
				m->eof = 1;
			break;
		}
		BIO_write(m->in, buf, (int)r);
	}
	if (r == 0)
		m->eof = 1;
	ck_assert_int_ge(tide_loop_run_once(loop, 0.005), 0);
}

static void mb_handshake(struct tide_loop *loop, struct mb *m)
{
	uint64_t end = tt_mono_ns() + (uint64_t)(30 * slow_factor() * 1e9);
	int r;

	while ((r = SSL_do_handshake(m->ssl)) != 1) {
		ck_assert_msg(SSL_get_error(m->ssl, r) == SSL_ERROR_WANT_READ, "[%s] the peer's handshake failed",
			      tt_cfg->name);
		ck_assert_msg(tt_mono_ns() < end, "[%s] the peer's handshake timed out", tt_cfg->name);
		mb_pump(loop, m);
	}
	mb_pump(loop, m); /* its last flight */
}

/* The bytes OpenSSL wrote, taken out of it (not sent). */
static size_t mb_take(struct mb *m, char *buf, size_t cap)
{
	int n = BIO_read(m->out, buf, (int)cap);

	return n > 0 ? (size_t)n : 0;
}

/* Runs the loop until the plain socket fd reads EOF (or a reset). */
static void wait_eof(struct tide_loop *loop, int fd)
{
	uint64_t end = tt_mono_ns() + (uint64_t)(30 * slow_factor() * 1e9);
	char buf[4096];

	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return;
		ck_assert_msg(r > 0 || errno == EAGAIN, "[%s] recv: %s", tt_cfg->name, strerror(errno));
		ck_assert_msg(tt_mono_ns() < end, "[%s] the connection was not closed", tt_cfg->name);
		if (r < 0)
			ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	}
}

/* A peer that sends a record cut short, then EOF: connection_lost says so. */
START_TEST(test_truncated_record)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(g_certs.server);
	struct srv s = { 0 };
	struct tide_server *sv = tls_serve(loop, &st, &s);
	struct mb m;
	char rec[256];
	size_t n;

	mb_init(&m, tide_server_port(sv), 0);
	mb_handshake(loop, &m);
	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 1);
	ck_assert_int_eq(SSL_write(m.ssl, "hello", 5), 5);
	n = mb_take(&m, rec, sizeof(rec));
	ck_assert_uint_gt(n, 5);
	send_all(loop, m.fd, rec, n - 3);
	ck_assert_int_eq(shutdown(m.fd, SHUT_WR), 0);
	RUN_UNTIL(loop, s.conns[0]->lost);
	check_conn(s.conns[0], "ML", TIDE_ETLS_REASON(SSL_R_UNEXPECTED_EOF_WHILE_READING));
	wait_eof(loop, m.fd);
	mb_free(&m);
	finish_all(loop, sv);
}
END_TEST

/* A peer that closes without close_notify: its data, then the error. */
START_TEST(test_no_close_notify)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct srv s = { 0 };
	struct tide_server *sv = tls_serve(loop, &st, &s);
	struct conn *cli = conn_new();
	struct mb m;
	const char *why;

	mb_init(&m, tide_server_port(sv), 0);
	mb_handshake(loop, &m);
	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 1);
	ck_assert_int_eq(SSL_write(m.ssl, "hello", 5), 5);
	mb_pump(loop, &m);
	ck_assert_int_eq(shutdown(m.fd, SHUT_WR), 0);
	RUN_UNTIL(loop, s.conns[0]->lost);
	check_conn(s.conns[0], "MDL", TIDE_ETLS_REASON(SSL_R_UNEXPECTED_EOF_WHILE_READING));
	ck_assert_uint_eq(s.conns[0]->rxlen, 5);
	ck_assert_mem_eq(s.conns[0]->rx, "hello", 5);
	why = tide_strerror(TIDE_ETLS_REASON(SSL_R_UNEXPECTED_EOF_WHILE_READING));
	ck_assert_msg(strstr(why, "unexpected eof"), "tide_strerror says \"%s\"", why);
	mb_free(&m);
	/* tide's own client aborted: an error for the server's protocol too. */
	tls_dial(loop, tide_server_port(sv), &ct, cli);
	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 2);
	tide_transport_abort(cli->t);
	RUN_UNTIL(loop, cli->lost && s.conns[1]->lost);
	check_conn(cli, "ML", 0);
	/* (A reset, when the server's session tickets were still unread.) */
	ck_assert_msg(s.conns[1]->lost_err == TIDE_ETLS_REASON(SSL_R_UNEXPECTED_EOF_WHILE_READING) ||
			      s.conns[1]->lost_err == -ECONNRESET,
		      "[%s] lost with %d (%s)", tt_cfg->name, s.conns[1]->lost_err, tide_strerror(s.conns[1]->lost_err));
	ck_assert_str_eq(s.conns[1]->log, "ML");
	finish_all(loop, sv);
}
END_TEST

/*
 * Renegotiation is refused (SSL_OP_NO_RENEGOTIATION): a TLS 1.2 client
 * asking for it fails, and the server's connection ends with the TLS
 * error the client's alert carries, never a second handshake.
 */
START_TEST(test_renegotiation_refused)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(NULL);
	struct srv s = { 0 };
	struct tide_server *sv;
	uint64_t end = tt_mono_ns() + (uint64_t)(30 * slow_factor() * 1e9);
	struct mb m;
	char s_ver[32];
	int r;

	/* A context that would let a client renegotiate (OpenSSL 3 refuses
	 * by default): the connection's SSL_OP_NO_RENEGOTIATION still does. */
	ck_assert_int_eq(tide_tls_server_context_new(g_certs.leaf.cert, g_certs.leaf.key, &st.ctx), 0);
	SSL_CTX_set_options(st.ctx, SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
	sv = tls_serve(loop, &st, &s);
	SSL_CTX_free(st.ctx); /* the server holds its own reference */

	s.tmpl.echo = 1;
	mb_init(&m, tide_server_port(sv), TLS1_2_VERSION);
	mb_handshake(loop, &m);
	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 1);
	ck_assert_int_eq(info_str(s.conns[0]->t, "version", s_ver, sizeof(s_ver)), 0);
	ck_assert_str_eq(s_ver, "TLSv1.2");
	ck_assert_int_eq(SSL_renegotiate(m.ssl), 1);
	while ((r = SSL_do_handshake(m.ssl)) != 1 && SSL_get_error(m.ssl, r) == SSL_ERROR_WANT_READ) {
		ck_assert_msg(tt_mono_ns() < end, "[%s] the renegotiation neither failed nor ended", tt_cfg->name);
		mb_pump(loop, &m);
	}
	ck_assert_msg(r != 1, "[%s] the server renegotiated", tt_cfg->name);
	ck_assert_int_eq(ERR_GET_REASON(ERR_peek_error()), SSL_R_NO_RENEGOTIATION);
	mb_pump(loop, &m); /* the client's alert */
	RUN_UNTIL(loop, s.conns[0]->lost);
	ck_assert_msg(s.conns[0]->lost_err < TIDE_ETLS_BASE, "[%s] lost with %d (%s)", tt_cfg->name,
		      s.conns[0]->lost_err, tide_strerror(s.conns[0]->lost_err));
	ck_assert_int_eq(s.conns[0]->after_lost, 0);
	mb_free(&m);
	finish_all(loop, sv);
}
END_TEST

/*
 * A server that asks tide's client to renegotiate (TLS 1.2's HelloRequest):
 * the client refuses with a no_renegotiation alert, which OpenSSL's server
 * answers with a fatal handshake_failure. The client's connection_lost
 * names it; nothing was renegotiated.
 */
START_TEST(test_server_renegotiation_refused)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts ct = tls_opts(g_certs.client);
	struct conn *cli = conn_new();
	struct tide_future *f;
	uint64_t end = tt_mono_ns() + (uint64_t)(30 * slow_factor() * 1e9);
	SSL_CTX *sctx;
	struct mb m;
	int port, lfd = bound_socket(AF_INET, SOCK_STREAM, &port), r;

	/* The server side: a memory-BIO peer on the accepted socket. */
	ck_assert_ptr_nonnull(sctx = SSL_CTX_new(TLS_server_method()));
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(sctx, g_certs.leaf.cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(sctx, g_certs.leaf.key, SSL_FILETYPE_PEM), 1);
	ck_assert_int_eq(SSL_CTX_set_max_proto_version(sctx, TLS1_2_VERSION), 1);
	f = tls_dial_start(loop, "127.0.0.1", port, &ct, cli);
	memset(&m, 0, sizeof(m));
	set_nonblock(lfd);
	while ((m.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0) {
		ck_assert_msg(errno == EAGAIN && tt_mono_ns() < end, "[%s] accept: %s", tt_cfg->name, strerror(errno));
		ck_assert_int_ge(tide_loop_run_once(loop, 0.005), 0);
	}
	ck_assert_ptr_nonnull(m.ssl = SSL_new(sctx));
	ck_assert_ptr_nonnull(m.in = BIO_new(BIO_s_mem()));
	ck_assert_ptr_nonnull(m.out = BIO_new(BIO_s_mem()));
	SSL_set_bio(m.ssl, m.in, m.out);
	SSL_set_accept_state(m.ssl);
	mb_handshake(loop, &m);
	RUN_UNTIL(loop, tide_future_done(f));
	ck_assert_int_eq(tide_future_error(f), 0);
	tide_future_unref(f);
	ck_assert_int_eq(cli->made, 1);
	ck_assert_int_eq(SSL_version(m.ssl), TLS1_2_VERSION);
	/* The HelloRequest (written at once); the client's answer comes
	 * where the server reads. */
	ck_assert_int_eq(SSL_renegotiate(m.ssl), 1);
	ck_assert_int_eq(SSL_do_handshake(m.ssl), 1);
	for (;;) {
		char b[64];

		r = SSL_read(m.ssl, b, sizeof(b));
		ck_assert_msg(r <= 0, "[%s] the client sent data", tt_cfg->name);
		if (SSL_get_error(m.ssl, r) != SSL_ERROR_WANT_READ)
			break;
		ck_assert_msg(tt_mono_ns() < end, "[%s] the client did not refuse the HelloRequest", tt_cfg->name);
		mb_pump(loop, &m);
	}
	ck_assert_int_eq(SSL_renegotiate_pending(m.ssl), 1);
	ck_assert_int_eq(ERR_GET_REASON(ERR_peek_error()), SSL_R_NO_RENEGOTIATION);
	mb_pump(loop, &m); /* the server's fatal alert */
	RUN_UNTIL(loop, cli->lost);
	ck_assert_msg(cli->lost_err == TIDE_ETLS_REASON(SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE), "[%s] lost with %d (%s)",
		      tt_cfg->name, cli->lost_err, tide_strerror(cli->lost_err));
	ck_assert_int_eq(cli->after_lost, 0);
	mb_free(&m);
	SSL_CTX_free(sctx);
	close(lfd);
	finish_all(loop, NULL);
}
END_TEST

/* Garbage where a ClientHello should be: closed, no protocol made. */
START_TEST(test_garbage_hello)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct srv s = { 0 };
	struct tide_server *sv = tls_serve(loop, &st, &s);
	static const char junk[] = "hello, this is not TLS\r\n\r\n";
	static const char half[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 }; /* a record of 512, 1 byte of it */
	int fd = raw_connect(AF_INET, tide_server_port(sv));
	int fd2 = raw_connect(AF_INET, tide_server_port(sv));
	struct conn *cli = conn_new();

	set_nonblock(fd);
	set_nonblock(fd2);
	send_all(loop, fd, junk, sizeof(junk) - 1);
	wait_eof(loop, fd);
	/* A handshake record cut short by EOF. */
	send_all(loop, fd2, half, sizeof(half));
	ck_assert_int_eq(shutdown(fd2, SHUT_WR), 0);
	wait_eof(loop, fd2);
	ck_assert_uint_eq(s.n, 0); /* the factory never ran */
	close(fd);
	close(fd2);
	/* The server serves on. */
	cli->close_after = 4;
	s.tmpl.echo = 1;
	tls_dial(loop, tide_server_port(sv), &ct, cli);
	ck_assert_int_eq(tide_transport_write(cli->t, "ping", 4), 0);
	RUN_UNTIL(loop, both_lost(cli, &s));
	check_conn(cli, "MDL", 0);
	finish_all(loop, sv);
}
END_TEST

/*
 * A peer that stops in the middle of the handshake: the handshake
 * timeout closes it (never before the timeout), on both sides.
 */
START_TEST(test_handshake_timeout)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct srv s = { 0 };
	struct tide_server *sv;
	struct mb m;
	char hello[4096];
	size_t n;
	int port, lfd, afd, err;
	uint64_t t0;

	st.handshake_timeout = 0.3;
	sv = tls_serve(loop, &st, &s);
	/* Half a ClientHello, then silence. */
	mb_init(&m, tide_server_port(sv), 0);
	ck_assert_int_eq(SSL_do_handshake(m.ssl), -1);
	n = mb_take(&m, hello, sizeof(hello));
	ck_assert_uint_gt(n, 10);
	t0 = tt_mono_ns();
	send_all(loop, m.fd, hello, n / 2);
	wait_eof(loop, m.fd);
	ck_assert_msg(tt_mono_ns() - t0 >= 250000000u, "[%s] closed %.3f s after the half hello, before the timeout",
		      tt_cfg->name, (tt_mono_ns() - t0) / 1e9);
	ck_assert_uint_eq(s.n, 0);
	mb_free(&m);
	/* tide's client against a server that accepts and says nothing. */
	lfd = bound_socket(AF_INET, SOCK_STREAM, &port);
	ct.handshake_timeout = 0.3;
	t0 = tt_mono_ns();
	err = tls_dial_error(loop, port, &ct);
	ck_assert_msg(err == -ETIMEDOUT, "[%s] %d (%s)", tt_cfg->name, err, tide_strerror(err));
	ck_assert_uint_ge(tt_mono_ns() - t0, 250000000u);
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	ck_assert_int_ge(afd, 0);
	wait_eof(loop, afd); /* its ClientHello, then the socket closed */
	close(afd);
	close(lfd);
	finish_all(loop, sv);
}
END_TEST

/* ---------------------------------------------------- ALPN, SNI, verify -- */

static void alpn_case(struct tide_loop *loop, int port, const char *const *alpn, const char *want, struct srv *s)
{
	struct tide_tls_opts ct = tls_opts(g_certs.client);
	struct conn *cli = conn_new();
	size_t before = s->n;
	char got[64];

	ct.alpn = alpn;
	cli->close_after = 1;
	tls_dial(loop, port, &ct, cli);
	ck_assert_int_eq(info_str(cli->t, "alpn_protocol", got, sizeof(got)), 0);
	ck_assert_str_eq(got, want);
	RUN_UNTIL(loop, s->n == before + 1 && s->conns[before]->made);
	ck_assert_int_eq(info_str(s->conns[before]->t, "alpn_protocol", got, sizeof(got)), 0);
	ck_assert_str_eq(got, want);
	ck_assert_int_eq(tide_transport_write(s->conns[before]->t, "x", 1), 0);
	RUN_UNTIL(loop, cli->lost && s->conns[before]->lost);
	check_conn(cli, "MDL", 0);
}

START_TEST(test_alpn)
{
	struct tide_loop *loop = tt_loop_new();
	static const char *const srv_alpn[] = { "h2", "http/1.1", NULL };
	static const char *const c1[] = { "http/1.1", "h2", NULL }, *const c2[] = { "spdy/3", "http/1.1", NULL };
	static const char *const none[] = { "imap", NULL };
	static const char *const srv2_alpn[] = { "http/1.1", NULL };
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct tide_tls_opts st2 = tls_opts(g_certs.server);
	struct srv s = { 0 }, s2 = { 0 };
	struct tide_server *sv, *sv2;
	int err;

	st.alpn = srv_alpn;
	sv = tls_serve(loop, &st, &s);
	/* The server's preference wins. */
	alpn_case(loop, tide_server_port(sv), c1, "h2", &s);
	alpn_case(loop, tide_server_port(sv), c2, "http/1.1", &s);
	/* No overlap: the handshake fails (no_application_protocol). */
	ct.alpn = none;
	err = tls_dial_error(loop, tide_server_port(sv), &ct);
	ck_assert_msg(err == TIDE_ETLS_REASON(SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL), "[%s] %d (%s)",
		      tt_cfg->name, err, tide_strerror(err));
	run_for(loop, 0.05);
	ck_assert_uint_eq(s.n, 2);
	/* A second server on the same context (the callback is installed
	 * once per context) answers from its own list. */
	ck_assert_ptr_eq(st2.ctx, st.ctx);
	st2.alpn = srv2_alpn;
	sv2 = tls_serve(loop, &st2, &s2);
	alpn_case(loop, tide_server_port(sv2), c1, "http/1.1", &s2);
	alpn_case(loop, tide_server_port(sv), c1, "h2", &s);
	server_end(sv2);
	finish_all(loop, sv);
}
END_TEST

/* Verification failures: the connect fails with why, no connection_made. */
START_TEST(test_verify_failures)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts good = tls_opts(g_certs.server), old = tls_opts(g_certs.server_expired),
			     self = tls_opts(g_certs.server_self), ct = tls_opts(g_certs.client);
	struct srv s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
	struct tide_server *v1 = tls_serve(loop, &good, &s1), *v2 = tls_serve(loop, &old, &s2),
			   *v3 = tls_serve(loop, &self, &s3);
	int err;

	/* Only sent as SNI and checked against the certificate (localhost,
	 * 127.0.0.1): the dial is to 127.0.0.1, and a .localhost name never
	 * leaves the machine even if asked about (RFC 6761). */
	ct.server_hostname = "wronghost.localhost";
	err = tls_dial_error(loop, tide_server_port(v1), &ct);
	ck_assert_msg(err == TIDE_ETLS_VERIFY(X509_V_ERR_HOSTNAME_MISMATCH), "[%s] wrong host: %d (%s)", tt_cfg->name,
		      err, tide_strerror(err));
	ck_assert_str_eq(tide_strerror(err), X509_verify_cert_error_string(X509_V_ERR_HOSTNAME_MISMATCH));
	ct.server_hostname = NULL;
	err = tls_dial_error(loop, tide_server_port(v2), &ct);
	ck_assert_msg(err == TIDE_ETLS_VERIFY(X509_V_ERR_CERT_HAS_EXPIRED), "[%s] expired: %d (%s)", tt_cfg->name,
		      err, tide_strerror(err));
	ck_assert_str_eq(tide_strerror(err), "certificate has expired");
	err = tls_dial_error(loop, tide_server_port(v3), &ct);
	ck_assert_msg(err == TIDE_ETLS_VERIFY(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT), "[%s] self-signed: %d (%s)",
		      tt_cfg->name, err, tide_strerror(err));
	/* The servers' handshakes failed too: no factory ran. */
	run_for(loop, 0.05);
	ck_assert_uint_eq(s1.n + s2.n + s3.n, 0);
	server_end(v2);
	server_end(v3);
	finish_all(loop, v1);
}
END_TEST

/* ------------------------------------------------------ flow, volume -- */

/* An echo that respects flow control: its writes pausing pause its reads. */
static void bp_data(struct tide_transport *t, const void *data, size_t n, void *p)
{
	struct conn *c = p;

	note(c, 'D');
	c->rxlen += n;
	ck_assert_int_eq(tide_transport_write(t, data, n), 0);
}

static void bp_pause(struct tide_transport *t, void *p)
{
	struct conn *c = p;

	c->npause++;
	ck_assert_int_eq(tide_transport_pause_reading(t), 0);
}

static void bp_resume(struct tide_transport *t, void *p)
{
	struct conn *c = p;

	c->nresume++;
	ck_assert_int_eq(tide_transport_resume_reading(t), 0);
}

static const struct tide_protocol_ops bp_ops = { LOG_STREAM_OPS, .data_received = bp_data,
						 .pause_writing = bp_pause, .resume_writing = bp_resume };

#define BIG_LEN (64u << 20)
#define BIG_CHUNK (16u << 10)

/* The sender: writes while the buffer is at most the high-water mark. */
static void big_fill(struct conn *c)
{
	while (!c->wpaused && c->txoff < c->txlen && tide_transport_get_write_buffer_size(c->t) <= c->high) {
		size_t n = c->txlen - c->txoff < BIG_CHUNK ? c->txlen - c->txoff : BIG_CHUNK;

		ck_assert_int_eq(tide_transport_write(c->t, c->tx + c->txoff, n), 0);
		c->txoff += n;
		if (tide_transport_get_write_buffer_size(c->t) > c->max_buffered)
			c->max_buffered = tide_transport_get_write_buffer_size(c->t);
	}
}

/* 64 MiB through a TLS echo, the client's reading paused half the time: byte-exact. */
START_TEST(test_64mib_echo_paused)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new();
	unsigned char *data = pat_buf(17, BIG_LEN);
	uint64_t t0 = tt_mono_ns();

	s.ops = &bp_ops;
	sv = tls_serve(loop, &st, &s);
	cli->tx = data;
	cli->txlen = BIG_LEN;
	cli->verify = data;
	cli->vlen = BIG_LEN;
	cli->close_after = BIG_LEN;
	cli->made_hook = big_fill;
	cli->resume_hook = big_fill;
	/* Paused inside data_received too: the rest of a delivery waits. */
	cli->pause_every = 4;
	tls_dial(loop, tide_server_port(sv), &ct, cli);
	ck_assert_int_eq(tide_call_later(loop, 0.001, toggle_cb, cli, &cli->toggle_h), 0);
	RUN_UNTIL_FOR(loop, both_lost(cli, &s), 240.0);
	tide_handle_cancel(&cli->toggle_h);
	printf("[%s] TLS 64 MiB echo: %.2f s, %d read pauses, client %d write pauses, server %d, max buffered %zu\n",
	       tt_cfg->name, (double)(tt_mono_ns() - t0) / 1e9, cli->ntoggle, cli->npause, s.conns[0]->npause,
	       cli->max_buffered);
	ck_assert_uint_eq(cli->txoff, BIG_LEN);
	ck_assert_uint_eq(cli->rxlen, BIG_LEN);
	ck_assert_uint_eq(s.conns[0]->rxlen, BIG_LEN);
	ck_assert_int_eq(cli->data_while_paused, 0);
	ck_assert_int_ge(cli->ntoggle, 1);
	ck_assert_int_ge(cli->npause, 1);
	check_conn(cli, "MDL", 0);
	check_conn(s.conns[0], "MDEL", 0);
	cli->tx = NULL;
	cli->verify = NULL;
	free(data);
	finish_all(loop, sv);
}
END_TEST

/* pause_writing and resume_writing through TLS: the marks count records not yet sent. */
START_TEST(test_write_flow_control)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new(), *sc;
	static char chunk[16384];
	size_t written = 0, high, low;
	int i;

	s.tmpl.pause_on_made = 1;
	sv = tls_serve(loop, &st, &s);
	tls_dial(loop, tide_server_port(sv), &ct, cli);
	sc = accepted(loop, &s);
	set_sockbuf(cli->t, SO_SNDBUF, 4096);
	set_sockbuf(sc->t, SO_RCVBUF, 4096);
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(cli->t, 32768, 8192), 0);
	tide_transport_get_write_buffer_limits(cli->t, &high, &low);
	ck_assert_uint_eq(high, 32768);
	ck_assert_uint_eq(low, 8192);
	cli->high = high;
	cli->low = low;
	memset(chunk, 'z', sizeof(chunk));
	for (i = 0; i < 4096 && !cli->wpaused; i++) {
		ck_assert_int_eq(tide_transport_write(cli->t, chunk, sizeof(chunk)), 0);
		written += sizeof(chunk);
		ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	}
	ck_assert_msg(cli->wpaused, "[%s] no pause_writing after %zu bytes", tt_cfg->name, written);
	ck_assert_int_eq(cli->npause, 1);
	/* The fixture checked that more than high was buffered at the pause.
	 * The loop may have sent some since into the socket buffers (8 KiB
	 * each way), not down to low while the server does not read. */
	ck_assert_int_eq(cli->nresume, 0);
	ck_assert_uint_gt(tide_transport_get_write_buffer_size(cli->t), low);
	/* The server reads again: the buffer drains, resume_writing (at or below low, the fixture checks). */
	sc->rpaused = 0;
	ck_assert_int_eq(tide_transport_resume_reading(sc->t), 0);
	RUN_UNTIL(loop, cli->nresume == 1);
	RUN_UNTIL(loop, sc->rxlen == written);
	ck_assert_uint_eq(tide_transport_get_write_buffer_size(cli->t), 0);
	tide_transport_close(cli->t);
	RUN_UNTIL(loop, both_lost(cli, &s));
	check_conn(cli, "ML", 0);
	check_conn(sc, "MDEL", 0);
	finish_all(loop, sv);
}
END_TEST

static void write_all_hook(struct conn *c)
{
	ck_assert_int_eq(tide_transport_write(c->t, c->tx, c->txlen), 0);
}

/* Every client is lost, or its connect failed (the assertions say why). */
static int all_ended(struct conn *const *cs, struct tide_future *const *fs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!cs[i]->lost && !(tide_future_done(fs[i]) && tide_future_error(fs[i])))
			return 0;
	return 1;
}

/* 1,000 TLS connections at once, each echoed byte-exact. */
START_TEST(test_thousand_connections)
{
	enum { N = 1000 };
	struct tide_loop *loop;
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct tide_server_opts so = { .size = sizeof(so), .backlog = 1024, .tls = &st };
	struct tide_future **fs = calloc(N, sizeof(*fs));
	struct conn **cs = calloc(N, sizeof(*cs));
	struct srv s = { 0 };
	struct tide_server *sv;
	struct rlimit rl;
	size_t i;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 2100) {
		printf("[%s] SKIP test_thousand_connections: RLIMIT_NOFILE hard limit %llu < 2100\n", tt_cfg->name,
		       (unsigned long long)rl.rlim_max);
		free(fs);
		free(cs);
		return;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 2100) {
		rl.rlim_cur = rl.rlim_max;
		ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	loop = tt_loop_new();
	/* 1,000 handshakes at once take a while on a loaded machine (or a
	 * sanitizer build): this test is not about their timeout. */
	st.handshake_timeout = ct.handshake_timeout = 1000;
	s.tmpl.echo = 1;
	sv = serve(loop, lo4, 1, &so, &s);
	for (i = 0; i < N; i++) {
		struct conn *c = cs[i] = conn_new();
		struct tide_connect_opts co = { .size = sizeof(co), .tls = &ct };

		c->id = (int)i;
		c->txlen = 2048 + (i % 7) * 700;
		c->tx = pat_buf((uint32_t)i + 7, c->txlen);
		c->close_after = c->txlen;
		c->made_hook = write_all_hook;
		ck_assert_int_eq(tide_create_connection_ex(loop, "127.0.0.1", tide_server_port(sv), &co, &conn_ops, c, &fs[i]),
				 0);
	}
	RUN_UNTIL_FOR(loop, all_ended(cs, fs, N), 240.0);
	RUN_UNTIL_FOR(loop, srv_count(&s, 1, 1) == s.n, 240.0);
	ck_assert_uint_eq(s.n, N);
	for (i = 0; i < N; i++) {
		struct conn *c = cs[i];

		ck_assert_msg(tide_future_error(fs[i]) == 0, "[%s] client %zu: %d (%s)", tt_cfg->name, i,
			      tide_future_error(fs[i]), tide_strerror(tide_future_error(fs[i])));
		tide_future_unref(fs[i]);
		check_conn(c, "MDL", 0);
		ck_assert_msg(c->rxlen == c->txlen && memcmp(c->rx, c->tx, c->txlen) == 0,
			      "[%s] client %zu: the echo differs (%zu of %zu bytes)", tt_cfg->name, i, c->rxlen, c->txlen);
		check_conn(s.conns[i], "MDEL", 0);
	}
	free(fs);
	free(cs);
	finish_all(loop, sv);
}
END_TEST

/* write_eof sends close_notify; the peer answers and closes: a TLS half-close. */
START_TEST(test_write_eof_half_close)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct srv s = { 0 };
	struct tide_server *sv;
	struct conn *cli = conn_new();

	s.tmpl.eof_ret = 1;
	s.tmpl.eof_reply = 1;
	sv = tls_serve(loop, &st, &s);
	tls_dial(loop, tide_server_port(sv), &ct, cli);
	ck_assert_int_eq(tide_transport_write(cli->t, "abc", 3), 0);
	ck_assert_int_eq(tide_transport_write_eof(cli->t), 0);
	ck_assert_int_eq(tide_transport_write_eof(cli->t), 0);
	ck_assert_int_eq(tide_transport_write(cli->t, "x", 1), -EPIPE);
	RUN_UNTIL(loop, both_lost(cli, &s));
	ck_assert_uint_eq(cli->rxlen, 9);
	ck_assert_mem_eq(cli->rx, "reply:abc", 9);
	check_conn(cli, "MDEL", 0);
	check_conn(s.conns[0], "MDEL", 0);
	finish_all(loop, sv);
}
END_TEST

/* ------------------------------------------------------------ start_tls -- */

/* A plain protocol that says STARTTLS and upgrades (server or client side). */
struct st_peer {
	struct conn c;                /* the plain protocol's log (first: conn callbacks take it) */
	int server;
	struct tide_tls_opts tls;
	struct conn *tc;              /* the TLS protocol's */
	struct tide_future *f;        /* start_tls's */
	struct tide_transport *old;
	char buf[64];
	size_t n;
};

static void st_data(struct tide_transport *t, const void *data, size_t n, void *p)
{
	struct st_peer *sp = p;
	const char *want = sp->server ? "STARTTLS\n" : "OK\n";

	note(&sp->c, 'D');
	ck_assert_uint_le(sp->n + n, sizeof(sp->buf));
	memcpy(sp->buf + sp->n, data, n);
	sp->n += n;
	if (sp->n < strlen(want))
		return;
	ck_assert_uint_eq(sp->n, strlen(want));
	ck_assert_mem_eq(sp->buf, want, sp->n);
	if (sp->server)
		ck_assert_int_eq(tide_transport_write(t, "OK\n", 3), 0);
	sp->old = tide_transport_ref(t);
	ck_assert_int_eq(tide_start_tls(t, sp->server, &sp->tls, &conn_ops, sp->tc, &sp->f), 0);
	/* t is the TLS layer's now. */
	ck_assert_int_eq(tide_transport_write(t, "x", 1), TIDE_ESSL_CLOSED);
	ck_assert_int_eq(tide_start_tls(t, 0, &sp->tls, &conn_ops, sp->tc, &(struct tide_future *){ NULL }), -EINVAL);
}

static void st_made(struct tide_transport *t, void *p)
{
	struct st_peer *sp = p;

	on_made(t, &sp->c);
	if (!sp->server)
		ck_assert_int_eq(tide_transport_write(t, "STARTTLS\n", 9), 0);
}

static const struct tide_protocol_ops st_ops = { .size = sizeof(struct tide_protocol_ops),
						 .connection_made = st_made, .data_received = st_data,
						 .eof_received = on_eof, .connection_lost = on_lost };

static struct st_peer *g_st_server;

static int st_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	(void)arg;
	*ops = &st_ops;
	*proto = g_st_server;
	return 0;
}

START_TEST(test_start_tls_transport)
{
	struct tide_loop *loop = tt_loop_new();
	struct st_peer sp = { .server = 1 }, cp = { .server = 0 };
	struct tide_future *f;
	struct tide_server *sv;
	struct tide_timeouts to = { .size = sizeof(to), .idle = 5 };
	char ver[32];

	sp.tls = tls_opts(g_certs.server);
	cp.tls = tls_opts(g_certs.client);
	cp.tls.server_hostname = "localhost";
	sp.tc = conn_new();
	sp.tc->echo = 1;
	cp.tc = conn_new();
	cp.tc->close_after = 6;
	g_st_server = &sp;
	ck_assert_int_eq(tide_create_server(loop, lo4, 1, 0, NULL, st_factory, NULL, &f), 0);
	tt_run_until_complete(loop, f, 0);
	sv = fut_take(f);
	tide_future_unref(f);
	ck_assert_int_eq(tide_create_connection(loop, "127.0.0.1", tide_server_port(sv), &st_ops, &cp, &f), 0);
	RUN_UNTIL(loop, cp.f && sp.f && tide_future_done(cp.f) && tide_future_done(sp.f));
	tide_future_unref(f);
	ck_assert_ptr_eq(fut_ptr(cp.f), cp.tc->t);
	ck_assert_ptr_eq(fut_ptr(sp.f), sp.tc->t);
	ck_assert_int_eq(cp.tc->made, 1);
	ck_assert_int_eq(info_str(cp.tc->t, "version", ver, sizeof(ver)), 0);
	/* The old transports: calls say TIDE_ESSL_CLOSED, getters answer. */
	ck_assert_int_eq(tide_transport_write_eof(cp.old), TIDE_ESSL_CLOSED);
	ck_assert_int_eq(tide_transport_pause_reading(cp.old), TIDE_ESSL_CLOSED);
	ck_assert_int_eq(tide_transport_resume_reading(cp.old), TIDE_ESSL_CLOSED);
	ck_assert_int_eq(tide_transport_set_write_buffer_limits(cp.old, 0, 0), TIDE_ESSL_CLOSED);
	ck_assert_int_eq(tide_transport_set_timeouts(cp.old, &to), TIDE_ESSL_CLOSED);
	ck_assert_int_eq(tide_transport_set_deadline(cp.old, 1e6), TIDE_ESSL_CLOSED);
	tide_transport_close(cp.old);
	tide_transport_abort(cp.old);
	ck_assert_int_eq(tide_transport_is_closing(cp.old), 0);
	ck_assert_ptr_ne(tide_transport_get_protocol(cp.old), &cp);
	ck_assert_int_ge(transport_fd(cp.old), 0);
	/* Through TLS now, timeouts on the connection under it. */
	ck_assert_int_eq(tide_transport_set_timeouts(cp.tc->t, &to), 0);
	ck_assert_int_eq(tide_transport_write(cp.tc->t, "secret", 6), 0);
	RUN_UNTIL(loop, cp.tc->lost && sp.tc->lost);
	ck_assert_mem_eq(cp.tc->rx, "secret", 6);
	check_conn(cp.tc, "MDL", 0);
	check_conn(sp.tc, "MDEL", 0);
	/* The plain protocols heard nothing after the upgrade. */
	ck_assert_str_eq(cp.c.log, "MD");
	ck_assert_str_eq(sp.c.log, "MD");
	tide_future_unref(cp.f);
	tide_future_unref(sp.f);
	tide_transport_unref(cp.old);
	tide_transport_unref(sp.old);
	finish_all(loop, sv);
}
END_TEST

/* --------------------------------------------------------------- streams -- */

static struct tide_tls_opts g_st, g_ct;

static ssize_t read_line(struct tide_stream_reader *r, char *buf, size_t cap)
{
	ssize_t n = tide_stream_readline(r, buf, cap);

	ck_assert_msg(n > 0, "readline: %zd (%s)", n, n < 0 ? tide_strerror((int)n) : "EOF");
	return n;
}

/* The server's handler: a line and five bytes echoed, then "bye" at EOF. */
static int64_t echo_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	char buf[256];
	ssize_t n;

	(void)arg;
	n = read_line(r, buf, sizeof(buf));
	ck_assert_int_eq(tide_stream_write(w, buf, (size_t)n), 0);
	ck_assert_int_eq(tide_stream_readexactly(r, buf, 5, NULL), 5);
	ck_assert_int_eq(tide_stream_write(w, buf, 5), 0);
	ck_assert_int_eq(tide_stream_drain(w), 0);
	/* The client's write_eof: close_notify is EOF here. */
	ck_assert_int_eq(tide_stream_read(r, buf, sizeof(buf)), 0);
	ck_assert_int_eq(tide_stream_at_eof(r), 1);
	ck_assert_int_eq(tide_stream_write(w, "bye\n", 4), 0);
	return 0;
}

static struct tide_server *stream_serve(tide_stream_handler_cb h, const struct tide_tls_opts *tls)
{
	struct tide_server_opts so = { .size = sizeof(so), .tls = tls };
	struct tide_future *f = NULL;
	struct tide_server *sv;

	ck_assert_int_eq(tide_start_server(g_loop, lo4, 1, 0, &so, h, NULL, &f), 0);
	ck_assert_int_eq(tide_await(f), 0);
	sv = tide_future_take_ptr(f);
	tide_future_unref(f);
	return sv;
}

static void stream_server_done(struct tide_server *sv)
{
	tide_server_close(sv);
	ck_assert_int_eq(tide_server_wait_closed(sv), 0);
	tide_server_free(sv);
}

static int64_t streams_main(void *arg)
{
	struct tide_connect_opts co = { .size = sizeof(co), .tls = &g_ct };
	struct tide_server *sv = stream_serve(echo_handler, &g_st);
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	char buf[256];
	int rc;

	(void)arg;
	rc = tide_open_connection_ex("127.0.0.1", tide_server_port(sv), &co, &r, &w);
	ck_assert_msg(rc == 0, "open_connection_ex: %d (%s)", rc, tide_strerror(rc));
	ck_assert_int_eq(tide_stream_get_extra_info(w, "version", buf, &(socklen_t){ sizeof(buf) }), 0);
	ck_assert_int_eq(tide_stream_write(w, "line one\n", 9), 0);
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "line one\n");
	ck_assert_int_eq(tide_stream_write(w, "12", 2), 0);
	ck_assert_int_eq(tide_stream_drain(w), 0);
	ck_assert_int_eq(tide_stream_write(w, "345", 3), 0);
	ck_read_eq(tide_stream_readexactly(r, buf, 5, NULL), buf, "12345");
	ck_assert_int_eq(tide_stream_can_write_eof(w), 1);
	ck_assert_int_eq(tide_stream_write_eof(w), 0);
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "bye\n");
	/* The handler returned: its close_notify is our EOF. */
	ck_assert_int_eq(tide_stream_read(r, buf, sizeof(buf)), 0);
	tide_stream_free(r, w);
	stream_server_done(sv);
	return 0;
}

START_TEST(test_streams)
{
	g_st = tls_opts(g_certs.server);
	g_ct = tls_opts(g_certs.client);
	run_main(streams_main, NULL);
}
END_TEST

/* STARTTLS on streams: plain lines, then TLS on the same connection. */
static int64_t starttls_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	char buf[256];

	(void)arg;
	ck_assert_int_eq(tide_stream_write(w, "220 ready\n", 10), 0);
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "STARTTLS\n");
	/* No reply: the client's ClientHello may be in the reader already. */
	ck_assert_int_eq(tide_stream_start_tls(r, w, 1, &g_st), 0);
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "secret\n");
	ck_assert_int_eq(tide_stream_write(w, "got secret\n", 11), 0);
	ck_assert_int_eq(tide_stream_read(r, buf, sizeof(buf)), 0);
	return 0;
}

static int64_t starttls_main(void *arg)
{
	struct tide_server *sv = stream_serve(starttls_handler, NULL);
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	struct tide_transport *plain;
	char buf[256];
	int rc;

	(void)arg;
	ck_assert_int_eq(tide_open_connection("127.0.0.1", tide_server_port(sv), &r, &w), 0);
	plain = tide_stream_transport(w);
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "220 ready\n");
	ck_assert_int_eq(tide_stream_write(w, "STARTTLS\n", 9), 0);
	/* A verifying client without a name to verify. */
	g_ct.server_hostname = NULL;
	ck_assert_int_eq(tide_stream_start_tls(r, w, 0, &g_ct), -EINVAL);
	g_ct.server_hostname = "localhost";
	rc = tide_stream_start_tls(r, w, 0, &g_ct);
	ck_assert_msg(rc == 0, "stream_start_tls: %d (%s)", rc, tide_strerror(rc));
	ck_assert_ptr_ne(tide_stream_transport(w), plain);
	ck_assert_int_eq(tide_stream_get_extra_info(w, "version", buf, &(socklen_t){ sizeof(buf) }), 0);
	ck_assert_int_eq(tide_stream_write(w, "secret\n", 7), 0);
	ck_read_eq(tide_stream_readline(r, buf, sizeof(buf)), buf, "got secret\n");
	ck_assert_int_eq(tide_stream_write_eof(w), 0);
	ck_assert_int_eq(tide_stream_read(r, buf, sizeof(buf)), 0);
	tide_stream_free(r, w);
	stream_server_done(sv);
	return 0;
}

START_TEST(test_stream_start_tls)
{
	g_st = tls_opts(g_certs.server);
	g_ct = tls_opts(g_certs.client);
	run_main(starttls_main, NULL);
}
END_TEST

/* A stream client that does not trust the server: the open fails, saying why. */
static int64_t stream_verify_main(void *arg)
{
	struct tide_connect_opts co = { .size = sizeof(co), .tls = &g_ct };
	struct tide_server *sv = stream_serve(echo_handler, &g_st);
	struct tide_stream_reader *r = NULL;
	struct tide_stream_writer *w = NULL;
	int rc;

	(void)arg;
	rc = tide_open_connection_ex("127.0.0.1", tide_server_port(sv), &co, &r, &w);
	ck_assert_msg(rc == TIDE_ETLS_VERIFY(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT), "open: %d (%s)", rc,
		      tide_strerror(rc));
	ck_assert_ptr_null(r);
	ck_assert_ptr_null(w);
	stream_server_done(sv);
	return 0;
}

START_TEST(test_stream_verify_failure)
{
	g_st = tls_opts(g_certs.server_self);
	g_ct = tls_opts(g_certs.client);
	run_main(stream_verify_main, NULL);
}
END_TEST

/* -------------------------------------------------------- bad input, end -- */

START_TEST(test_bad_input)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts t = tls_opts(g_certs.client), st = tls_opts(g_certs.server);
	struct tide_connect_opts co = { .size = sizeof(co), .tls = &t };
	struct tide_server_opts so = { .size = sizeof(so), .tls = &st };
	struct tide_datagram_opts dgo = { .size = sizeof(dgo), .local_host = "127.0.0.1" };
	static const char *const empty[] = { "", NULL };
	char long_name[257], path[300], junk[320];
	const char *const too_long[] = { long_name, NULL };
	const char *const max_len[] = { long_name + 1, NULL };
	struct tide_future *f = NULL;
	struct tide_server *sv;
	struct conn *d = conn_new();
	SSL_CTX *ctx = NULL;
	struct srv s = { 0 };
	FILE *fp;
	int err;

	memset(long_name, 'a', 256);
	long_name[256] = '\0';
	t.ctx = NULL;
	ck_assert_int_eq(tide_create_connection_ex(loop, "127.0.0.1", 1, &co, &conn_ops, NULL, &f), -EINVAL);
	t = tls_opts(g_certs.client);
	t.size = 0;
	ck_assert_int_eq(tide_create_connection_ex(loop, "127.0.0.1", 1, &co, &conn_ops, NULL, &f), -EINVAL);
	t = tls_opts(g_certs.client);
	t.alpn = empty;
	ck_assert_int_eq(tide_create_connection_ex(loop, "127.0.0.1", 1, &co, &conn_ops, NULL, &f), -EINVAL);
	t.alpn = too_long;
	ck_assert_int_eq(tide_create_connection_ex(loop, "127.0.0.1", 1, &co, &conn_ops, NULL, &f), -EINVAL);
	t.alpn = NULL;
	t.server_hostname = "";
	ck_assert_int_eq(tide_create_connection_ex(loop, "127.0.0.1", 1, &co, &conn_ops, NULL, &f), -EINVAL);
	t.server_hostname = NULL;
	{
		const double bad[] = { -1.0, NAN, INFINITY, -INFINITY, 1e11 };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			t.handshake_timeout = bad[i];
			ck_assert_int_eq(tide_create_connection_ex(loop, "127.0.0.1", 1, &co, &conn_ops, NULL, &f), -EINVAL);
			t.handshake_timeout = 0;
			t.shutdown_timeout = bad[i];
			ck_assert_int_eq(tide_create_connection_ex(loop, "127.0.0.1", 1, &co, &conn_ops, NULL, &f), -EINVAL);
			t.shutdown_timeout = 0;
			st.handshake_timeout = bad[i];
			ck_assert_int_eq(tide_create_server(loop, lo4, 1, 0, &so, srv_factory, &s, &f), -EINVAL);
			st.handshake_timeout = 0;
		}
	}
	/* A unix client that verifies has no host name to verify. */
	unix_path(path, sizeof(path));
	ck_assert_int_eq(tide_create_unix_connection_ex(loop, path, &co, &conn_ops, NULL, &f), -EINVAL);
	/* The server side. */
	st.ctx = NULL;
	ck_assert_int_eq(tide_create_server(loop, lo4, 1, 0, &so, srv_factory, &s, &f), -EINVAL);
	ck_assert_int_eq(tide_create_unix_server(loop, path, &so, srv_factory, &s, &f), -EINVAL);
	st = tls_opts(g_certs.server);
	st.alpn = too_long;
	ck_assert_int_eq(tide_create_server(loop, lo4, 1, 0, &so, srv_factory, &s, &f), -EINVAL);
	/* 255 bytes is a name. */
	st.alpn = max_len;
	sv = serve(loop, lo4, 1, &so, &s);
	server_end(sv);
	/* start_tls on what it cannot upgrade. */
	t = tls_opts(g_certs.client_noverify);
	ck_assert_int_eq(tide_start_tls(NULL, 0, &t, NULL, NULL, &f), -EINVAL);
	endpoint(loop, &dgo, d);
	ck_assert_int_eq(tide_start_tls(d->t, 0, &t, NULL, NULL, &f), -EINVAL);
	tide_transport_close(d->t);
	/* The context helpers. */
	ck_assert_int_eq(tide_tls_client_context_new(NULL), -EINVAL);
	ck_assert_int_eq(tide_tls_client_context_new(&ctx), 0);
	ck_assert_int_eq(SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER, SSL_VERIFY_PEER);
	ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	SSL_CTX_free(ctx);
	ck_assert_int_eq(tide_tls_server_context_new(NULL, NULL, &ctx), -EINVAL);
	ck_assert_int_eq(tide_tls_server_context_new("/nonexistent/cert.pem", NULL, &ctx), -ENOENT);
	ck_assert_ptr_null(ctx);
	snprintf(junk, sizeof(junk), "%s/junk-%d-%s.pem", g_certs.dir, (int)getpid(), tt_cfg->name);
	ck_assert_ptr_nonnull(fp = fopen(junk, "w"));
	fputs("this is no certificate\n", fp);
	fclose(fp);
	err = tide_tls_server_context_new(junk, NULL, &ctx);
	ck_assert_msg(err <= TIDE_ETLS_BASE - 1, "junk certificate: %d (%s)", err, tide_strerror(err));
	err = tide_tls_server_context_new(g_certs.leaf.cert, g_certs.self.key, &ctx);
	ck_assert_msg(err == TIDE_ETLS_REASON(SSL_R_PRIVATE_KEY_MISMATCH), "mismatched key: %d (%s)", err,
		      tide_strerror(err));
	ck_assert_ptr_null(ctx);
	unlink(junk);
	ck_assert_int_eq(tide_tls_server_context_new(g_certs.leaf.cert, g_certs.leaf.key, &ctx), 0);
	ck_assert_ptr_nonnull(ctx);
	SSL_CTX_free(ctx);
	ck_assert_int_eq(tide_tls_available(), 1);
	/* The texts. */
	ck_assert_str_eq(tide_strerror(TIDE_EAI_BASE + EAI_NONAME), gai_strerror(EAI_NONAME));
	ck_assert_str_eq(tide_strerror(TIDE_ETLS_VERIFY(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)),
			 X509_verify_cert_error_string(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT));
	ck_assert_str_eq(tide_strerror(TIDE_ETLS_REASON(SSL_R_WRONG_VERSION_NUMBER)), "wrong version number");
	ck_assert_str_ne(tide_strerror(TIDE_ETLS), "unknown error");
	ck_assert_str_ne(tide_strerror(TIDE_ESSL_CLOSED), "unknown error");
	finish_all(loop, NULL);
}
END_TEST

/*
 * A loop with a TLS connection open cannot be freed; closed right before
 * tide_loop_close, the close_notify exchange still ends on it, and it is.
 */
START_TEST(test_loop_free_tls_open)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_tls_opts st = tls_opts(g_certs.server), ct = tls_opts(g_certs.client);
	struct srv s = { 0 };
	struct tide_server *sv = tls_serve(loop, &st, &s);
	struct conn *cli = conn_new(), *cli2 = conn_new();
	int r;

	tls_dial(loop, tide_server_port(sv), &ct, cli);
	tls_dial(loop, tide_server_port(sv), &ct, cli2);
	RUN_UNTIL(loop, srv_count(&s, 1, 0) == 2);
	server_end(sv);
	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	tide_transport_close(cli->t);
	tide_transport_abort(cli2->t);
	tide_transport_close(s.conns[0]->t);
	tide_transport_close(s.conns[1]->t);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	r = tide_loop_free(loop);
	ck_assert_msg(r == 0, "[%s] tide_loop_free: %d (%s)", tt_cfg->name, r, tide_strerror(r));
	check_conn(cli, "ML", 0);
	check_conn(cli2, "ML", 0);
	ck_assert_int_eq(s.conns[0]->lost + s.conns[1]->lost, 2);
	conns_free();
}
END_TEST

int main(void)
{
	const TTest *tests[] = {
		test_echo_tcp, test_records_coalesced, test_echo_unix, test_truncated_record, test_no_close_notify,
		test_renegotiation_refused, test_server_renegotiation_refused, test_garbage_hello, test_handshake_timeout, test_alpn,
		test_verify_failures, test_64mib_echo_paused, test_write_flow_control, test_thousand_connections,
		test_write_eof_half_close, test_start_tls_transport, test_streams, test_stream_start_tls,
		test_stream_verify_failure, test_bad_input, test_loop_free_tls_open,
	};
	int rc;

	if (tt_certs_make(&g_certs, NULL) < 0)
		return 99;
	rc = net_main("tls", 300, tests, NET_COUNT(tests), NULL, 0);
	tt_certs_free(&g_certs);
	return rc;
}

#endif /* TIDE_HAVE_OPENSSL */
