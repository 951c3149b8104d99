/* SPDX-License-Identifier: MIT */
/*
 * tls-epoll.c: the raw TLS peer of the TLS benchmarks: a persistent TLS
 * echo server, OpenSSL 3 on a level-triggered epoll loop, one thread, no
 * library in between: the floor a TLS echo on an event loop can reach.
 *
 *   tls-epoll-peer --port P --cert FILE --key FILE
 *
 * The context is what tide_tls_server_context_new makes (a certificate
 * chain and a key, TLS 1.2 at least, OpenSSL's defaults otherwise: the
 * cipher suites and groups come from OPENSSL_CONF, which bench/tls.sh
 * sets for every server alike).
 *
 * The hard parts, as in any OpenSSL server on a non-blocking socket:
 * (1) SSL_read may hold decrypted bytes epoll cannot see, so a readable
 * connection is read until WANT_READ; (2) an SSL_write that would block
 * keeps the rest of the echo in the connection's own buffer (the read
 * buffer is shared), is retried from there (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER)
 * on EPOLLOUT, and reading stops until it is gone (flow control: a client
 * that does not read cannot make the server buffer without bound);
 * (3) the handshake, SSL_accept, may want either direction. Read-ahead is
 * on, so that a read() takes every record the socket holds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "peer.h"

#define READ_SIZE 65536

struct conn {
	int fd;
	SSL *ssl;
	int handshaking;
	unsigned events;
	char *pend;        /* echo bytes an SSL_write could not take yet */
	size_t plen, pcap, poff;
};

static int epfd;
static unsigned char rbuf[READ_SIZE];

static void set_events(struct conn *c, unsigned ev)
{
	if (c->events == ev)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = c};
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
	c->events = ev;
}

static void conn_close(struct conn *c)
{
	SSL_free(c->ssl);
	close(c->fd);
	free(c->pend);
	free(c);
	ERR_clear_error();
}

/* Writes p[0..n); what SSL_write cannot take goes to c->pend. 0, or -1 on error. */
static int conn_send(struct conn *c, const void *p, size_t n)
{
	while (n > 0) {
		size_t w = 0;
		int rc = SSL_write_ex(c->ssl, p, n, &w);
		if (rc <= 0) {
			int e = SSL_get_error(c->ssl, rc);
			if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
				return -1;
			return peer_buf_append(&c->pend, &c->plen, &c->pcap, p, n);
		}
		p = (const char *)p + w;
		n -= w;
	}
	return 0;
}

/* Flushes c->pend; 1 when empty, 0 when it would block, -1 on error. */
static int conn_flush(struct conn *c)
{
	while (c->poff < c->plen) {
		size_t w = 0;
		int rc = SSL_write_ex(c->ssl, c->pend + c->poff, c->plen - c->poff, &w);
		if (rc <= 0) {
			int e = SSL_get_error(c->ssl, rc);
			return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
		}
		c->poff += w;
	}
	c->plen = c->poff = 0;
	return 1;
}

static void conn_event(struct conn *c)
{
	if (c->handshaking) {
		int rc = SSL_accept(c->ssl);
		if (rc != 1) {
			int e = SSL_get_error(c->ssl, rc);
			if (e == SSL_ERROR_WANT_READ)
				set_events(c, EPOLLIN);
			else if (e == SSL_ERROR_WANT_WRITE)
				set_events(c, EPOLLOUT);
			else
				conn_close(c);
			return;
		}
		c->handshaking = 0;
		set_events(c, EPOLLIN);
	}
	if (c->plen) {
		int f = conn_flush(c);
		if (f < 0) {
			conn_close(c);
			return;
		}
		if (f == 0) {
			set_events(c, EPOLLOUT);
			return;
		}
		set_events(c, EPOLLIN);
	}
	for (;;) {
		size_t n = 0;
		int rc = SSL_read_ex(c->ssl, rbuf, sizeof(rbuf), &n);
		if (rc <= 0) {
			int e = SSL_get_error(c->ssl, rc);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return;
			conn_close(c); /* close_notify, EOF or an error: done */
			return;
		}
		if (conn_send(c, rbuf, n) < 0) {
			conn_close(c);
			return;
		}
		if (c->plen) {
			set_events(c, EPOLLOUT);
			return;
		}
	}
}

int main(int argc, char **argv)
{
	int port = -1;
	const char *cert = NULL, *key = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--cert"))
			cert = argv[i + 1];
		else if (!strcmp(argv[i], "--key"))
			key = argv[i + 1];
		else
			port = -1, i = argc;
	}
	if (port < 0 || port > 65535 || !cert || !key || argc % 2 != 1) {
		fprintf(stderr, "usage: %s --port P --cert FILE --key FILE\n", argv[0]);
		return 2;
	}
	peer_setup_process();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Read-ahead: one read() takes as many records as the socket holds;
	 * without it OpenSSL reads each record's 5-byte header, then its body. */
	SSL_CTX_set_read_ahead(ctx, 1);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 4096) < 0) {
		perror("tls-epoll-peer: listen");
		return 1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(epfd, evs, 256, -1);
		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c) {
				conn_event(c);
				continue;
			}
			for (;;) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (fd < 0)
					break;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				c = calloc(1, sizeof(*c));
				if (!c || !(c->ssl = SSL_new(ctx)) || !SSL_set_fd(c->ssl, fd)) {
					close(fd);
					free(c);
					continue;
				}
				SSL_set_accept_state(c->ssl);
				c->fd = fd;
				c->handshaking = 1;
				c->events = EPOLLIN;
				struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
				epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
			}
		}
	}
}
