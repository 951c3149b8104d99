/* SPDX-License-Identifier: MIT */
/*
 * peer.h: what the networking benchmark servers share (the peers in
 * bench/peers/ and bench/tide-echo.c): the command line, the HTTP request
 * counter and the canned response, so that every server does exactly the
 * same work.
 *
 * The hard part is HTTP pipelining across reads: a request's "\r\n\r\n"
 * may be split between two reads, so the counter keeps how much of the
 * terminator it has matched (0..3) between calls. The HTTP side is
 * deliberately minimal (GET-style requests without a body, every request
 * answered with the same 13-byte body), identical in every server.
 */
#ifndef TIDE_BENCH_PEER_H
#define TIDE_BENCH_PEER_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PEER_RESPONSE \
	"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!"
#define PEER_RESPONSE_LEN (sizeof(PEER_RESPONSE) - 1)
/* Responses to a burst of pipelined requests go out as one write of up to
 * this many copies (peer_responses()). */
#define PEER_RESPONSE_BATCH 64

enum peer_mode { PEER_ECHO, PEER_HTTP };

struct peer_args {
	int port;
	enum peer_mode mode;
	const char *api;  /* tide-echo only: protocol, buffered, stream */
	int threads;      /* tide-echo only */
	double idle_timeout; /* tide-echo only: each connection's idle timeout (0: none) */
	const char *cert, *key; /* tide-echo only: serve TLS with this PEM chain and key */
};

static void peer_usage(const char *prog, int tide)
{
	fprintf(stderr, "usage: %s --port P [--mode echo|http]%s\n", prog,
		tide ? " --api protocol|buffered|stream [--threads N] [--idle-timeout S]\n"
		       "       [--cert FILE --key FILE]" : "");
	exit(2);
}

static inline void peer_parse_args(int argc, char **argv, struct peer_args *a, int tide)
{
	memset(a, 0, sizeof(*a));
	a->port = -1;
	a->mode = PEER_ECHO;
	a->api = "protocol";
	a->threads = 1;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(argv[i], "--port") && v)
			a->port = atoi(v);
		else if (!strcmp(argv[i], "--mode") && v && !strcmp(v, "echo"))
			a->mode = PEER_ECHO;
		else if (!strcmp(argv[i], "--mode") && v && !strcmp(v, "http"))
			a->mode = PEER_HTTP;
		else if (tide && !strcmp(argv[i], "--api") && v)
			a->api = v;
		else if (tide && !strcmp(argv[i], "--threads") && v)
			a->threads = atoi(v);
		else if (tide && !strcmp(argv[i], "--idle-timeout") && v)
			a->idle_timeout = atof(v);
		else if (tide && !strcmp(argv[i], "--cert") && v)
			a->cert = v;
		else if (tide && !strcmp(argv[i], "--key") && v)
			a->key = v;
		else
			peer_usage(argv[0], tide);
		i++;
	}
	if (a->port < 0 || a->port > 65535 || a->threads < 1 || !(a->idle_timeout >= 0) || !a->cert != !a->key)
		peer_usage(argv[0], tide);
}

/* SIGTERM and SIGINT end the process at once: there is nothing to flush,
 * and a clean shutdown is not what is being measured. */
static void peer_on_signal(int sig)
{
	(void)sig;
	_exit(0);
}

/* The signals, SIGPIPE ignored (a client may vanish mid-write), and as many
 * fds as the hard limit allows (1000 connections need more than 1024 with
 * everything else a process holds). */
static inline void peer_setup_process(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = peer_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * Counts the complete requests in data[0..n) (each ends with "\r\n\r\n"),
 * carrying the partial match of the terminator in *state between calls.
 */
static inline size_t peer_count_requests(const char *data, size_t n, int *state)
{
	static const char term[4] = {'\r', '\n', '\r', '\n'};
	size_t count = 0;
	int s = *state;
	const char *p = data, *end = data + n;
	while (p < end) {
		if (s == 0) {
			/* Skip to the next '\r' quickly: request lines and headers
			 * are most of the bytes. */
			const char *cr = memchr(p, '\r', (size_t)(end - p));
			if (!cr)
				break;
			p = cr + 1;
			s = 1;
			continue;
		}
		if (*p == term[s]) {
			if (++s == 4) {
				count++;
				s = 0;
			}
		} else {
			s = *p == '\r' ? 1 : 0;
		}
		p++;
	}
	*state = s;
	return count;
}

/* PEER_RESPONSE_BATCH copies of the response, back to back (static: every
 * server writes straight from it). */
static inline const char *peer_responses(void)
{
	static char buf[PEER_RESPONSE_BATCH * PEER_RESPONSE_LEN];
	static int ready;
	if (!ready) {
		for (int i = 0; i < PEER_RESPONSE_BATCH; i++)
			memcpy(buf + (size_t)i * PEER_RESPONSE_LEN, PEER_RESPONSE, PEER_RESPONSE_LEN);
		ready = 1;
	}
	return buf;
}

/* Appends n bytes to a growable buffer (doubling from 4 KiB); -1 on ENOMEM. */
static inline int peer_buf_append(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (c < *len + n)
			c *= 2;
		char *nb = realloc(*buf, c);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = c;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	return 0;
}

#endif /* TIDE_BENCH_PEER_H */
