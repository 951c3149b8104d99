/* SPDX-License-Identifier: MIT */
/*
 * tls-load.c: the load generator of the TLS benchmarks (bench/tls.sh):
 * plain C, OpenSSL 3 on epoll, one thread, no tide (it measures every
 * server by the same rule). Prints one JSON line.
 *
 *   tls-load --port P --conns N --size S [--duration SEC] [--warmup SEC]
 *            [--server-pid PID] [--plain]
 *       echo: N connections (handshakes done before anything is
 *       measured), each with one message of S bytes in flight; every
 *       echoed byte is checked against a pattern that depends on the
 *       connection and the stream position. --plain: the same over TCP
 *       without TLS (the same code path minus OpenSSL), to compare a
 *       server's TLS echo with its plain one.
 *   tls-load --port P --handshake [--conc C] [--resume] [--duration SEC]
 *            [--warmup SEC] [--server-pid PID]
 *       C connections at a time, each: connect, TLS handshake, one
 *       "GET / HTTP/1.1 ... Connection: close" request, the response read
 *       to the server's close (checked: a 200 whose body is "Hello,
 *       World!"), close_notify back, close. --resume offers the session
 *       from the newest ticket the server sent (SSL_SESSION reuse), and
 *       counts how many handshakes the server did resume.
 *
 * Both modes pin TLS 1.3 with TLS_AES_128_GCM_SHA256 and X25519 on the
 * client side, do not verify the certificate (the client's work is the
 * same for every server; the servers' is what is compared), and print the
 * cipher and version negotiated. The server's CPU time is read as in
 * echo-load.c (schedstat of every thread, /proc/PID/stat's utime/stime
 * for the user/kernel split) when the warm-up ends and when the
 * measurement ends.
 *
 * The hard parts: (1) OpenSSL on a non-blocking socket: SSL_read may hold
 * decrypted bytes that epoll cannot see, so a readable connection is read
 * until WANT_READ; a write that would block is retried with the same
 * length (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the pointer move);
 * (2) TLS 1.3 tickets come after the handshake, so a resumable session
 * exists only once the client has read past them: the new-session
 * callback keeps the newest one; (3) ports: the server closes first
 * (Connection: close), so the TIME_WAITs are the server's and thousands
 * of handshakes a second do not exhaust the client's ephemeral ports.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proc-cpu.h"

#define PERIOD 65521u     /* prime: never a multiple of a message size */
#define READ_SIZE 32768u  /* < PERIOD: one memcmp per read */
#define WRITE_MAX 16384u  /* one TLS record */

static unsigned char table[2 * PERIOD];
static unsigned char rbuf[READ_SIZE];

static struct {
	const char *host;
	int port;
	int conns;
	size_t size;
	double duration, warmup;
	int server_pid;
	int plain;
	int handshake;
	int conc;
	int resume;
} opt = {"127.0.0.1", -1, 1, 64, 2.0, 0.5, 0, 0, 0, 8, 0};

static int epfd;
static SSL_CTX *ctx;
static uint64_t errors;
static int measuring;
static char cipher[64] = "none", version[32] = "none";

/* ---- clocks and /proc (as in echo-load.c) ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t self_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}


static void note_cipher(SSL *ssl)
{
	if (strcmp(cipher, "none"))
		return;
	snprintf(cipher, sizeof(cipher), "%s", SSL_get_cipher_name(ssl));
	snprintf(version, sizeof(version), "%s", SSL_get_version(ssl));
}

static void ssl_fail(const char *what, SSL *ssl, int rc)
{
	unsigned long e = ERR_peek_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	fprintf(stderr, "tls-load: %s: SSL error %d%s%s (errno %s)\n", what, ssl ? SSL_get_error(ssl, rc) : 0,
		e ? ": " : "", buf, strerror(errno));
	ERR_clear_error();
}

static int tcp_connect(const struct sockaddr_in *sin, int nonblock_after)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) < 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (nonblock_after)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

/* ------------------------------------------------------------- echo -- */

struct conn {
	int fd;
	int dead;
	int want_out;
	SSL *ssl;
	size_t wlen;      /* a write that would block: retried with this length */
	uint32_t shift;
	uint64_t sent, goal, recvd, issued, done;
	uint64_t t_issue;   /* when the message in flight was queued */
	uint64_t done0;     /* done when the measurement started */
};

static uint64_t measured;
static uint64_t max_wait_ns; /* the longest any message waited for its echo */
static int stalled;          /* connections with no echo while measured */

static void set_out(struct conn *c, int on)
{
	if (c->want_out == on)
		return;
	struct epoll_event e = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
	c->want_out = on;
}

static void conn_fail(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why && errors < 5) /* the first few: the rest is usually the same */
		fprintf(stderr, "tls-load: a connection failed: %s\n", why);
	errors++;
	c->dead = 1;
	close(c->fd);
}

/* < 0: error; 0: would block (c->wlen kept for the retry); else bytes. */
static ssize_t conn_write(struct conn *c, const void *p, size_t len)
{
	if (opt.plain) {
		ssize_t w = write(c->fd, p, len);
		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		return w;
	}
	size_t w = 0;
	int rc = SSL_write_ex(c->ssl, p, len, &w);
	if (rc > 0)
		return (ssize_t)w;
	int e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
		return 0;
	ssl_fail("SSL_write", c->ssl, rc);
	return -1;
}

static void conn_flush(struct conn *c)
{
	while (c->sent < c->goal) {
		size_t len = c->wlen;
		if (!len) {
			uint64_t left = c->goal - c->sent;
			len = left < WRITE_MAX ? (size_t)left : WRITE_MAX;
		}
		ssize_t w = conn_write(c, table + (c->sent + c->shift) % PERIOD, len);
		if (w < 0) {
			conn_fail(c, "write");
			return;
		}
		if (w == 0) {
			c->wlen = len;
			set_out(c, 1);
			return;
		}
		c->wlen = 0;
		c->sent += (uint64_t)w;
	}
	set_out(c, 0);
}

static void conn_issue(struct conn *c, uint64_t t)
{
	c->t_issue = t;
	c->issued++;
	c->goal += opt.size;
}

/* Reads until the socket (and OpenSSL's buffer) is empty. */
static void conn_readable(struct conn *c, int sending)
{
	for (;;) {
		ssize_t n;
		if (opt.plain) {
			n = read(c->fd, rbuf, sizeof(rbuf));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				conn_fail(c, n == 0 ? "EOF" : strerror(errno));
				return;
			}
		} else {
			size_t got = 0;
			int rc = SSL_read_ex(c->ssl, rbuf, sizeof(rbuf), &got);
			if (rc <= 0) {
				int e = SSL_get_error(c->ssl, rc);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					break;
				ssl_fail("SSL_read", c->ssl, rc);
				conn_fail(c, "read");
				return;
			}
			n = (ssize_t)got;
		}
		if (c->recvd + (uint64_t)n > c->sent ||
		    memcmp(rbuf, table + (c->recvd + c->shift) % PERIOD, (size_t)n) != 0) {
			if (errors < 5)
				fprintf(stderr, "tls-load: wrong bytes at offset %llu of a connection\n",
					(unsigned long long)c->recvd);
			conn_fail(c, NULL);
			return;
		}
		c->recvd += (uint64_t)n;
		int issued = 0;
		uint64_t t = 0;
		while (c->done < c->issued && c->recvd >= (c->done + 1) * opt.size) {
			if (!t)
				t = now_ns();
			if (measuring && t - c->t_issue > max_wait_ns)
				max_wait_ns = t - c->t_issue;
			c->done++;
			if (measuring)
				measured++;
			if (sending) {
				conn_issue(c, t);
				issued = 1;
			}
		}
		if (issued)
			conn_flush(c);
		if (c->dead)
			return;
	}
}

static int run_echo(const struct sockaddr_in *sin, uint64_t *t_meas, uint64_t *cpu, uint64_t *ut,
		    uint64_t *st, uint64_t *self)
{
	struct conn *conns = calloc((size_t)opt.conns, sizeof(*conns));
	if (!conns)
		return -1;
	/* Setup (handshakes included) before anything is measured. */
	for (int i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];
		int fd = tcp_connect(sin, 0);
		if (fd < 0) {
			fprintf(stderr, "tls-load: connect: %s\n", strerror(-fd));
			return -1;
		}
		c->fd = fd;
		if (!opt.plain) {
			c->ssl = SSL_new(ctx);
			if (!c->ssl || !SSL_set_fd(c->ssl, fd)) {
				ssl_fail("SSL_new", NULL, 0);
				return -1;
			}
			int rc = SSL_connect(c->ssl);
			if (rc != 1) {
				ssl_fail("handshake", c->ssl, rc);
				return -1;
			}
			note_cipher(c->ssl);
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		c->shift = (uint32_t)(((uint64_t)i * 7919u) % PERIOD);
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
	}
	uint64_t start = now_ns();
	for (int i = 0; i < opt.conns; i++) {
		conn_issue(&conns[i], start);
		conn_flush(&conns[i]);
	}
	uint64_t t0 = start + (uint64_t)(opt.warmup * 1e9), t1 = t0 + (uint64_t)(opt.duration * 1e9);
	struct epoll_event evs[512];
	for (;;) {
		uint64_t t = now_ns();
		if (!measuring && t >= t0) {
			measuring = 1;
			t_meas[0] = t;
			if (opt.server_pid > 0) {
				cpu[0] = proc_cpu_ns(opt.server_pid);
				proc_user_sys_ns(opt.server_pid, &ut[0], &st[0]);
			}
			self[0] = self_cpu_ns();
			for (int i = 0; i < opt.conns; i++)
				conns[i].done0 = conns[i].done;
		}
		if (t >= t1)
			break;
		int ms = (int)(((measuring ? t1 : t0) - t) / 1000000u) + 1;
		int n = epoll_wait(epfd, evs, 512, ms);
		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return -1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->dead)
				continue;
			if (evs[i].events & EPOLLOUT)
				conn_flush(c);
			if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				conn_readable(c, 1);
		}
	}
	t_meas[1] = now_ns();
	if (opt.server_pid > 0) {
		cpu[1] = proc_cpu_ns(opt.server_pid);
		proc_user_sys_ns(opt.server_pid, &ut[1], &st[1]);
	}
	self[1] = self_cpu_ns();
	/* A message still waiting counts too; a connection that completed
	 * nothing while measured is a stall (the server lost a wakeup, or
	 * this machine did not run it). */
	for (int i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];
		if (!c->dead && c->done < c->issued && t_meas[1] - c->t_issue > max_wait_ns)
			max_wait_ns = t_meas[1] - c->t_issue;
		stalled += !c->dead && c->done == c->done0;
	}
	return 0;
}

/* -------------------------------------------------------- handshakes -- */

static const char request[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

struct slot {
	int fd;
	SSL *ssl;
	int state;      /* 0 handshake, 1 request, 2 response */
	uint32_t events; /* what epoll waits for: EPOLLIN or EPOLLOUT, never both */
	size_t wdone;
	char resp[1024];
	size_t rlen;
	size_t total;   /* response bytes, all of them */
};

static SSL_SESSION *newest;  /* the newest ticket's session (--resume) */
static uint64_t hs_done, hs_resumed;

static int on_new_session(SSL *ssl, SSL_SESSION *s)
{
	(void)ssl;
	if (newest)
		SSL_SESSION_free(newest);
	newest = s;
	return 1; /* the callback keeps the reference */
}

static int slot_start(struct slot *sl, const struct sockaddr_in *sin)
{
	int fd = tcp_connect(sin, 1);
	if (fd < 0) {
		fprintf(stderr, "tls-load: connect: %s\n", strerror(-fd));
		return -1;
	}
	memset(sl, 0, sizeof(*sl));
	sl->fd = fd;
	sl->ssl = SSL_new(ctx);
	if (!sl->ssl || !SSL_set_fd(sl->ssl, fd)) {
		ssl_fail("SSL_new", NULL, 0);
		return -1;
	}
	if (opt.resume && newest)
		SSL_set_session(sl->ssl, newest);
	SSL_set_connect_state(sl->ssl);
	/* Connected (a blocking connect), so writable at once: the first
	 * step sends the ClientHello. */
	sl->events = EPOLLOUT;
	struct epoll_event e = {.events = sl->events, .data.ptr = sl};
	epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
	return 0;
}

/* Waits for what OpenSSL asked for, and only that: a level-triggered
 * EPOLLOUT on a connected socket would wake the loop for every slot
 * that waits on the server, and the client would spin at 100 % CPU,
 * its cost growing with the server's latency instead of its work. */
static void slot_wait(struct slot *sl, uint32_t events)
{
	if (sl->events == events)
		return;
	sl->events = events;
	struct epoll_event e = {.events = events, .data.ptr = sl};
	epoll_ctl(epfd, EPOLL_CTL_MOD, sl->fd, &e);
}

static void slot_end(struct slot *sl, int ok)
{
	if (ok) {
		if (measuring) {
			hs_done++;
			hs_resumed += (uint64_t)SSL_session_reused(sl->ssl);
		}
		SSL_shutdown(sl->ssl); /* close_notify back, as a polite client does */
	} else {
		errors++;
	}
	SSL_free(sl->ssl);
	sl->ssl = NULL;
	close(sl->fd); /* leaves the epoll set */
	sl->fd = -1;
}

/* Whether the response is a 200 with the body "Hello, World!". */
static int response_ok(const struct slot *sl)
{
	static const char body[] = "\r\n\r\nHello, World!";
	size_t bl = sizeof(body) - 1;
	return sl->rlen >= 12 && !memcmp(sl->resp, "HTTP/1.1 200", 12) && sl->total == sl->rlen &&
	       sl->rlen >= bl && !memcmp(sl->resp + sl->rlen - bl, body, bl);
}

/* Advances a slot; 1 when it finished (closed), 0 when it waits. */
static int slot_step(struct slot *sl)
{
	for (;;) {
		int rc, e;
		if (sl->state == 0) {
			rc = SSL_do_handshake(sl->ssl);
			if (rc == 1) {
				note_cipher(sl->ssl);
				sl->state = 1;
				continue;
			}
		} else if (sl->state == 1) {
			size_t w = 0;
			rc = SSL_write_ex(sl->ssl, request + sl->wdone, sizeof(request) - 1 - sl->wdone, &w);
			if (rc > 0) {
				sl->wdone += w;
				if (sl->wdone == sizeof(request) - 1)
					sl->state = 2;
				continue;
			}
		} else {
			size_t got = 0;
			rc = SSL_read_ex(sl->ssl, rbuf, sizeof(rbuf), &got);
			if (rc > 0) {
				size_t k = got < sizeof(sl->resp) - sl->rlen ? got : sizeof(sl->resp) - sl->rlen;
				memcpy(sl->resp + sl->rlen, rbuf, k);
				sl->rlen += k;
				sl->total += got;
				continue;
			}
			e = SSL_get_error(sl->ssl, rc);
			/* The server's close: close_notify, or (some servers) a
			 * bare FIN after the response. */
			if (e == SSL_ERROR_ZERO_RETURN ||
			    (e == SSL_ERROR_SSL &&
			     ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
				ERR_clear_error();
				int ok = response_ok(sl);
				if (!ok)
					fprintf(stderr, "tls-load: unexpected response (%zu bytes): %.60s\n",
						sl->total, sl->resp);
				slot_end(sl, ok);
				return 1;
			}
		}
		e = SSL_get_error(sl->ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			slot_wait(sl, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
			return 0;
		}
		ssl_fail(sl->state == 0 ? "handshake" : sl->state == 1 ? "request" : "response", sl->ssl, rc);
		slot_end(sl, 0);
		return 1;
	}
}

static int run_handshakes(const struct sockaddr_in *sin, uint64_t *t_meas, uint64_t *cpu, uint64_t *ut,
			  uint64_t *st, uint64_t *self)
{
	struct slot *slots = calloc((size_t)opt.conc, sizeof(*slots));
	if (!slots)
		return -1;
	uint64_t start = now_ns();
	uint64_t t0 = start + (uint64_t)(opt.warmup * 1e9), t1 = t0 + (uint64_t)(opt.duration * 1e9);
	for (int i = 0; i < opt.conc; i++)
		if (slot_start(&slots[i], sin) < 0)
			return -1;
	struct epoll_event evs[256];
	for (;;) {
		uint64_t t = now_ns();
		if (!measuring && t >= t0) {
			measuring = 1;
			t_meas[0] = t;
			if (opt.server_pid > 0) {
				cpu[0] = proc_cpu_ns(opt.server_pid);
				proc_user_sys_ns(opt.server_pid, &ut[0], &st[0]);
			}
			self[0] = self_cpu_ns();
		}
		if (t >= t1)
			break;
		if (errors > 100) {
			fprintf(stderr, "tls-load: too many failed connections\n");
			return -1;
		}
		int ms = (int)(((measuring ? t1 : t0) - t) / 1000000u) + 1;
		int n = epoll_wait(epfd, evs, 256, ms);
		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return -1;
		}
		for (int i = 0; i < n; i++) {
			struct slot *sl = evs[i].data.ptr;
			if (slot_step(sl) && slot_start(sl, sin) < 0)
				return -1;
		}
	}
	t_meas[1] = now_ns();
	if (opt.server_pid > 0) {
		cpu[1] = proc_cpu_ns(opt.server_pid);
		proc_user_sys_ns(opt.server_pid, &ut[1], &st[1]);
	}
	self[1] = self_cpu_ns();
	return 0;
}

/* --------------------------------------------------------------- main -- */

static void usage(void)
{
	fprintf(stderr,
		"usage: tls-load --port P [--host H] [--conns N] [--size S] [--plain]\n"
		"                [--duration SEC] [--warmup SEC] [--server-pid PID]\n"
		"       tls-load --port P --handshake [--conc C] [--resume] [--duration SEC]\n"
		"                [--warmup SEC] [--server-pid PID]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--plain")) {
			opt.plain = 1;
			continue;
		}
		if (!strcmp(a, "--handshake")) {
			opt.handshake = 1;
			continue;
		}
		if (!strcmp(a, "--resume")) {
			opt.resume = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--host"))
			opt.host = v;
		else if (!strcmp(a, "--port"))
			opt.port = atoi(v);
		else if (!strcmp(a, "--conns"))
			opt.conns = atoi(v);
		else if (!strcmp(a, "--size"))
			opt.size = (size_t)atol(v);
		else if (!strcmp(a, "--conc"))
			opt.conc = atoi(v);
		else if (!strcmp(a, "--duration"))
			opt.duration = atof(v);
		else if (!strcmp(a, "--warmup"))
			opt.warmup = atof(v);
		else if (!strcmp(a, "--server-pid"))
			opt.server_pid = atoi(v);
		else
			usage();
	}
	if (opt.port <= 0 || opt.conns < 1 || opt.size < 1 || opt.conc < 1 || opt.duration <= 0 ||
	    opt.warmup < 0 || (opt.handshake && opt.plain))
		usage();
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	for (unsigned i = 0; i < PERIOD; i++) {
		seed ^= seed >> 12;
		seed ^= seed << 25;
		seed ^= seed >> 27;
		table[i] = (unsigned char)((seed * 2685821657736338717ull) >> 56);
	}
	memcpy(table + PERIOD, table, PERIOD);

	if (!opt.plain) {
		ctx = SSL_CTX_new(TLS_client_method());
		if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
		    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") ||
		    !SSL_CTX_set1_groups_list(ctx, "X25519")) {
			ssl_fail("client context", NULL, 0);
			return 1;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		SSL_CTX_set_read_ahead(ctx, 1); /* one read() for many records */
		if (opt.resume) {
			SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
			SSL_CTX_sess_set_new_cb(ctx, on_new_session);
		} else {
			SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		}
	}
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
	if (inet_pton(AF_INET, opt.host, &sin.sin_addr) != 1) {
		fprintf(stderr, "tls-load: --host must be a numeric IPv4 address\n");
		return 2;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		perror("tls-load");
		return 1;
	}
	uint64_t t[2] = {0, 0}, cpu[2] = {0, 0}, ut[2] = {0, 0}, st[2] = {0, 0}, self[2] = {0, 0};
	if ((opt.handshake ? run_handshakes : run_echo)(&sin, t, cpu, ut, st, self) < 0)
		return 1;

	uint64_t ops = opt.handshake ? hs_done : measured;
	double secs = (double)(t[1] - t[0]) / 1e9;
	if (opt.handshake)
		printf("{\"conc\":%d,\"resume\":%d,\"resumed\":%llu,", opt.conc, opt.resume,
		       (unsigned long long)hs_resumed);
	else
		printf("{\"conns\":%d,\"size\":%zu,\"tls\":%d,\"max_wait_ms\":%.1f,\"stalled_conns\":%d,", opt.conns,
		       opt.size, !opt.plain, (double)max_wait_ns / 1e6, stalled);
	printf("\"cipher\":\"%s\",\"version\":\"%s\",\"seconds\":%.3f,\"ops\":%llu,\"ops_per_s\":%.1f,"
	       "\"errors\":%llu,\"load_cpu_pct\":%.1f",
	       cipher, version, secs, (unsigned long long)ops, secs > 0 ? (double)ops / secs : 0.0,
	       (unsigned long long)errors, secs > 0 ? 100.0 * (double)(self[1] - self[0]) / 1e9 / secs : 0.0);
	if (opt.server_pid > 0) {
		double cpu_us = (double)(cpu[1] - cpu[0]) / 1e3;
		double ticks = (double)(ut[1] - ut[0]) + (double)(st[1] - st[0]);
		printf(",\"server_cpu_pct\":%.1f,\"cpu_us_per_op\":%.3f", secs > 0 ? cpu_us / 1e4 / secs : 0.0,
		       ops ? cpu_us / (double)ops : 0.0);
		if (ticks > 0 && ops)
			printf(",\"user_us_per_op\":%.3f", cpu_us * (double)(ut[1] - ut[0]) / ticks / (double)ops);
		else
			printf(",\"user_us_per_op\":null");
	}
	printf("}\n");
	return errors ? 3 : 0;
}
