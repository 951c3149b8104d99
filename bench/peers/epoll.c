/* SPDX-License-Identifier: MIT */
/*
 * epoll.c: the raw epoll peer of the networking benchmarks: a persistent
 * echo server, or a minimal pipelining HTTP/1.1 server (--mode http), on
 * one thread, level-triggered, as a careful C programmer writes it.
 *
 * The hard part is the write side without waste: data is written at once
 * from the read buffer; only what the socket does not take is copied into
 * the connection's out buffer, and EPOLLOUT is asked for only while that
 * buffer is non-empty (an epoll_ctl per transition, none per message).
 * Reading stops while more than PEER_EPOLL_MAX_OUT bytes wait to go out,
 * so a client that does not read cannot make the server grow without end.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "peer.h"

#define PEER_EPOLL_MAX_OUT (1u << 20)
#define READ_SIZE 65536

struct conn {
	int fd;
	int http_state;    /* peer_count_requests' partial terminator */
	uint32_t events;   /* what epoll watches now */
	char *out;         /* unsent bytes: out[out_off..out_len) */
	size_t out_off, out_len, out_cap;
};

static enum peer_mode mode;
static int epfd;
static char rbuf[READ_SIZE];

static void conn_free(struct conn *c)
{
	close(c->fd); /* also removes it from the epoll set */
	free(c->out);
	free(c);
}

static void set_events(struct conn *c, uint32_t ev)
{
	if (ev == c->events)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = c};
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

static int out_append(struct conn *c, const char *p, size_t n)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		/* Compact first, grow only if still short. */
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	return peer_buf_append(&c->out, &c->out_len, &c->out_cap, p, n);
}

/* Writes p[0..n) after whatever is queued; queues the rest. -1: drop the
 * connection. */
static int conn_send(struct conn *c, const char *p, size_t n)
{
	if (c->out_len == c->out_off) {
		while (n > 0) {
			ssize_t w = write(c->fd, p, n);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN)
					break;
				return -1;
			}
			p += w;
			n -= (size_t)w;
		}
		if (n == 0)
			return 0;
	}
	if (out_append(c, p, n) < 0)
		return -1;
	size_t pending = c->out_len - c->out_off;
	set_events(c, pending > PEER_EPOLL_MAX_OUT ? EPOLLOUT : EPOLLIN | EPOLLOUT);
	return 0;
}

static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -1;
		}
		c->out_off += (size_t)w;
	}
	size_t pending = c->out_len - c->out_off;
	if (pending == 0)
		set_events(c, EPOLLIN);
	else if (pending <= PEER_EPOLL_MAX_OUT)
		set_events(c, EPOLLIN | EPOLLOUT);
	return 0;
}

static int conn_readable(struct conn *c)
{
	ssize_t n = read(c->fd, rbuf, sizeof(rbuf));
	if (n <= 0)
		return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	if (mode == PEER_ECHO)
		return conn_send(c, rbuf, (size_t)n);
	size_t k = peer_count_requests(rbuf, (size_t)n, &c->http_state);
	const char *resp = peer_responses();
	while (k > 0) {
		size_t b = k < PEER_RESPONSE_BATCH ? k : PEER_RESPONSE_BATCH;
		if (conn_send(c, resp, b * PEER_RESPONSE_LEN) < 0)
			return -1;
		k -= b;
	}
	return 0;
}

static void accept_all(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or EMFILE: retried on the next event */
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->events = EPOLLIN;
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0)
			conn_free(c);
	}
}

int main(int argc, char **argv)
{
	struct peer_args a;
	peer_parse_args(argc, argv, &a, 0);
	peer_setup_process();
	mode = a.mode;
	peer_responses();

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a.port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 4096) < 0) {
		perror("epoll peer: listen");
		return 1;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	/* The listener's data.ptr is NULL: connections are never NULL. */
	struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le) < 0) {
		perror("epoll peer: epoll");
		return 1;
	}
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(epfd, evs, 256, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				accept_all(lfd);
				continue;
			}
			uint32_t ev = evs[i].events;
			int rc = 0;
			if (ev & EPOLLOUT)
				rc = conn_flush(c);
			if (rc == 0 && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (c->events & EPOLLIN))
				rc = conn_readable(c);
			else if (rc == 0 && (ev & (EPOLLHUP | EPOLLERR)))
				rc = -1;
			if (rc < 0)
				conn_free(c);
		}
	}
}
