/* SPDX-License-Identifier: MIT */
/*
 * echo-churn.c: the client of make check-soak (test/soak/soak.sh): many
 * short connections to an echo server, a bounded number at a time (plain
 * C, epoll, one thread; it does not use tide).
 *
 *   echo-churn --port P --conns N [--concurrency C] [--first K]
 *
 * Connection k (K <= k < K + N) sends a message made from k (1 byte to
 * 20 KB, text in lines of up to 1000 bytes, the last one maybe without
 * its newline), shuts its write side, reads until EOF, and checks that
 * what came back is the message; then the next connection takes its
 * slot. Any difference, reset or early EOF fails the run (exit 1); the
 * last line says how many connections were echoed.
 *
 * The hard part is the ports: each connection leaves a TIME_WAIT behind
 * (it sends the first FIN), and there are about 28,000 ephemeral ports.
 * Linux reuses them for loopback connections (net.ipv4.tcp_tw_reuse 2,
 * the default) once a second has passed; a connect that still finds none
 * (EADDRNOTAVAIL) waits a little and tries again.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX 20000

struct conn {
	int fd;
	uint64_t k;         /* which connection: its message */
	unsigned char *msg; /* what it sends (and expects back) */
	size_t len, sent, got;
	int connected;
};

static struct sockaddr_in addr;
static int epfd;

/* A deterministic generator per connection (splitmix64). */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Mostly small messages, one in ten up to MSG_MAX bytes. */
static size_t make_msg(uint64_t k, unsigned char *buf)
{
	uint64_t s = k;
	size_t len = mix(&s) % 10 ? mix(&s) % 200 + 1 : mix(&s) % MSG_MAX + 1;
	size_t line = mix(&s) % 1000 + 1;

	for (size_t i = 0; i < len; i++)
		buf[i] = (i + 1) % line ? (unsigned char)(' ' + mix(&s) % 95) : '\n';
	return len;
}

static void die(const char *what, const struct conn *c)
{
	fprintf(stderr, "echo-churn: connection %llu: %s (%s; sent %zu of %zu, got %zu)\n",
		(unsigned long long)c->k, what, strerror(errno), c->sent, c->len, c->got);
	exit(1);
}

static void conn_open(struct conn *c, uint64_t k)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };

	c->k = k;
	c->len = make_msg(k, c->msg);
	c->sent = c->got = 0;
	c->connected = 0;
	for (int tries = 0;; tries++) {
		c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			die("socket", c);
		if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 || errno == EINPROGRESS)
			break;
		if (errno != EADDRNOTAVAIL || tries == 500)
			die("connect", c);
		close(c->fd);
		usleep(10000); /* every port is in TIME_WAIT for another moment */
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl", c);
}

/* Sends what it can; at the end, its write side goes. */
static void conn_send(struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	while (c->sent < c->len) {
		ssize_t n = send(c->fd, c->msg + c->sent, c->len - c->sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			die("send", c);
		c->sent += (size_t)n;
	}
	if (shutdown(c->fd, SHUT_WR) < 0)
		die("shutdown", c);
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl", c);
}

/* Reads the echo; 1 once it ended with EOF after the whole message. */
static int conn_recv(struct conn *c)
{
	unsigned char buf[16384];

	for (;;) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			die("recv", c);
		if (n == 0) {
			if (c->got != c->len)
				die("EOF before the whole echo", c);
			return 1;
		}
		if (c->got + (size_t)n > c->len || memcmp(buf, c->msg + c->got, (size_t)n) != 0)
			die("the echo differs from the message", c);
		c->got += (size_t)n;
	}
}

int main(int argc, char **argv)
{
	uint64_t total = 0, first = 0, next, done = 0;
	int port = 0, concurrency = 64, live = 0;
	struct epoll_event evs[64];
	struct conn *conns;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--conns"))
			total = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--first"))
			first = strtoull(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--concurrency"))
			concurrency = atoi(argv[i + 1]);
		else
			break;
	}
	if (port <= 0 || port > 65535 || !total || concurrency < 1 || !(argc & 1)) {
		fprintf(stderr, "usage: echo-churn --port P --conns N [--concurrency C] [--first K]\n");
		return 2;
	}
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	conns = calloc((size_t)concurrency, sizeof(*conns));
	if (epfd < 0 || !conns) {
		perror("echo-churn");
		return 1;
	}
	next = first;
	for (int i = 0; i < concurrency && next < first + total; i++, live++) {
		if (!(conns[i].msg = malloc(MSG_MAX)))
			return 1;
		conn_open(&conns[i], next++);
	}
	while (live) {
		int n = epoll_wait(epfd, evs, 64, 30000);

		if (n == 0) {
			fprintf(stderr, "echo-churn: no progress in 30 s (%llu done)\n", (unsigned long long)done);
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c->connected && !(evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
				continue;
			if (!c->connected) {
				int err = 0;
				socklen_t len = sizeof(err);

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
				errno = err;
				if (err)
					die("connect", c);
				c->connected = 1;
			}
			if (c->sent < c->len)
				conn_send(c);
			if ((evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_recv(c)) {
				close(c->fd);
				done++;
				if (next < first + total)
					conn_open(c, next++);
				else
					live--;
			}
		}
	}
	for (int i = 0; i < concurrency; i++)
		free(conns[i].msg);
	free(conns);
	close(epfd);
	printf("echo-churn: %llu connections echoed\n", (unsigned long long)done);
	return 0;
}
