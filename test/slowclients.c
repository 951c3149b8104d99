/* SPDX-License-Identifier: MIT */
/*
 * test/slowclients.c: the example servers (examples/http-hello,
 * examples/mini-redis) against clients that would take them down, on
 * every backend configuration (the server's, through TIDE_BACKEND and
 * TIDE_DISABLE_OPS):
 *
 * - a server limited to 64 descriptors (RLIMIT_NOFILE, as `ulimit -n`)
 *   and short timeouts gets 100 clients that send half a request and
 *   stay silent, after 5 that say nothing at all: each of them ends,
 *   either refused at once with the server's "too many clients" answer
 *   or cut without an answer, never before its timeout (the request
 *   timeout for half a request, the idle timeout for nothing); and a
 *   client with a whole request meanwhile is answered (retrying while it
 *   is refused), which without the timeouts it never was;
 * - mini-redis answers a command of 100,000 arguments sent in 4 KiB
 *   pieces (that its parser's work is linear is test/parsers's check).
 *
 * The hard part is timing without asserting speed: ends are checked never
 * to come before the timeout (a lower bound, exact: the clock starts
 * before the bytes are sent), and only to come at all (a bound far above
 * any delay).
 *
 * TOP_BUILDDIR comes from the build (test/local.mk): the examples are
 * there. It skips when they are not built (--disable-examples).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#ifndef TOP_BUILDDIR
#error "TOP_BUILDDIR must be defined by the build"
#endif

#define NOFILE 64       /* the server's descriptor limit */
#define SILENT 5        /* clients that say nothing */
#define SLOW 100        /* clients that send half a request */
#define REQ_TIMEOUT 1.0 /* the servers' --request-timeout */
#define IDLE_TIMEOUT 2.0 /* and --idle-timeout */

/* --------------------------------------------------------- the server -- */

struct server {
	pid_t pid;
	int port;
	int out;        /* its stdout and stderr */
	char log[4096]; /* what it printed */
	size_t loglen;
};

static double now_s(void)
{
	return (double)tt_mono_ns() / 1e9;
}

/* Reads what the server printed so far (non-blocking). */
static void server_read_log(struct server *s)
{
	ssize_t r;

	while (s->loglen < sizeof(s->log) - 1 &&
	       (r = read(s->out, s->log + s->loglen, sizeof(s->log) - 1 - s->loglen)) > 0)
		s->loglen += (size_t)r;
	s->log[s->loglen] = '\0';
}

/* Starts examples/prog with args, its descriptors limited to NOFILE, on
 * the configuration's backend; waits for "Serving on". */
static void server_start(struct server *s, const char *prog, const char *const *args)
{
	char path[512];
	const char *argv[16];
	int fds[2], n = 0;
	double end;

	snprintf(path, sizeof(path), "%s/examples/%s", TOP_BUILDDIR, prog);
	argv[n++] = path;
	for (; *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	memset(s, 0, sizeof(*s));
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0) {
		struct rlimit rl = { NOFILE, NOFILE };

		dup2(fds[1], 1);
		dup2(fds[1], 2);
		setrlimit(RLIMIT_NOFILE, &rl);
		setenv("TIDE_BACKEND", tt_cfg->backend, 1);
		if (tt_cfg->disable_ops)
			setenv("TIDE_DISABLE_OPS", tt_cfg->disable_ops, 1);
		else
			unsetenv("TIDE_DISABLE_OPS");
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	s->out = fds[0];
	ck_assert_int_eq(fcntl(s->out, F_SETFL, O_NONBLOCK), 0);
	end = now_s() + TT_HANG_S * slow_factor();
	for (;;) {
		const char *p;

		server_read_log(s);
		if ((p = strstr(s->log, "Serving on ('127.0.0.1', ")) && sscanf(p, "Serving on ('127.0.0.1', %d", &s->port) == 1)
			break;
		ck_assert_msg(now_s() < end && waitpid(s->pid, NULL, WNOHANG) == 0, "[%s] %s did not start: %s",
			      tt_cfg->name, prog, s->log);
		tt_sleep_ms(20);
	}
}

/* SIGTERM, as Ctrl-C: the server must exit 0 (its loops freed). */
static void server_stop(struct server *s)
{
	double end = now_s() + 30 * slow_factor();
	int status = 0;
	pid_t r;

	kill(s->pid, SIGTERM);
	while ((r = waitpid(s->pid, &status, WNOHANG)) == 0 && now_s() < end)
		tt_sleep_ms(20);
	if (r == 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &status, 0);
	}
	server_read_log(s);
	close(s->out);
	ck_assert_msg(r == s->pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "[%s] the server did not exit 0 on SIGTERM (status %#x): %s", tt_cfg->name, status, s->log);
}

/* ---------------------------------------------------------- clients -- */

/* A non-blocking TCP socket connecting to the server (the kernel
 * completes it through the backlog, accepted or not). */
static int client_connect(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS, "connect: %s",
		      strerror(errno));
	return fd;
}

/* Sends all of s on a connecting or connected socket, waiting as needed. */
static void client_send(int fd, const char *s, size_t n)
{
	double end = now_s() + TT_HANG_S * slow_factor();

	while (n) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		ssize_t r;

		ck_assert_msg(now_s() < end, "[%s] cannot send", tt_cfg->name);
		poll(&p, 1, 100);
		r = send(fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0) {
			s += r;
			n -= (size_t)r;
		} else {
			ck_assert_msg(r < 0 && (errno == EAGAIN || errno == ENOTCONN), "[%s] send: %s", tt_cfg->name,
				      strerror(errno));
		}
	}
}

/* A client the server must end: when it began, when it ended, what it got. */
struct slow {
	int fd;
	double sent;     /* its bytes went out no later than this (set before sending) */
	double ended;    /* EOF or reset seen (0: not yet) */
	int reset;       /* it ended with a reset */
	char got[128];   /* the first bytes it received */
	size_t ngot;
};

/* Reads what the clients got until each of them ended, or the hang bound. */
static void wait_all_ended(struct slow *c, int n)
{
	double end = now_s() + (TT_HANG_S + 10) * slow_factor();
	int left = n;

	while (left) {
		struct pollfd p[SILENT + SLOW];
		int k = 0, map[SILENT + SLOW];

		ck_assert_msg(now_s() < end, "[%s] %d of the slow clients are still connected", tt_cfg->name, left);
		for (int i = 0; i < n; i++) {
			if (!c[i].ended) {
				p[k] = (struct pollfd){ .fd = c[i].fd, .events = POLLIN };
				map[k++] = i;
			}
		}
		if (poll(p, (nfds_t)k, 100) <= 0)
			continue;
		for (int j = 0; j < k; j++) {
			struct slow *sc = &c[map[j]];
			char buf[4096];
			ssize_t r;

			if (!p[j].revents)
				continue;
			r = recv(sc->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (r > 0) {
				size_t m = (size_t)r < sizeof(sc->got) - 1 - sc->ngot ? (size_t)r : sizeof(sc->got) - 1 - sc->ngot;

				memcpy(sc->got + sc->ngot, buf, m);
				sc->ngot += m;
				sc->got[sc->ngot] = '\0';
			} else if (r == 0 || errno == ECONNRESET) {
				sc->ended = now_s();
				sc->reset = r < 0;
				left--;
			}
		}
	}
}

/*
 * A client with a whole request: connects, sends it, reads the answer
 * until the server closes. 1 if the answer began with ok, 0 if it was the
 * refusal (or nothing), retried until the hang bound.
 */
static void legit_client(int port, const char *req, const char *ok, const char *refused)
{
	double end = now_s() + (TT_HANG_S + 10) * slow_factor();
	char got[256];

	for (;;) {
		int fd = client_connect(port);
		size_t n = 0;

		ck_assert_msg(now_s() < end, "[%s] a client with a whole request was never answered (last: \"%s\")",
			      tt_cfg->name, n ? got : "");
		client_send(fd, req, strlen(req));
		for (double rend = now_s() + 3 * slow_factor(); now_s() < rend && n < sizeof(got) - 1;) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			ssize_t r;

			if (poll(&p, 1, 100) <= 0)
				continue;
			r = recv(fd, got + n, sizeof(got) - 1 - n, MSG_DONTWAIT);
			if (r <= 0)
				break;
			n += (size_t)r;
			got[n] = '\0';
			if (strstr(got, ok))
				break;
		}
		got[n] = '\0';
		close(fd);
		if (n && !strncmp(got, ok, strlen(ok)))
			return;
		ck_assert_msg(!n || !strncmp(got, refused, strlen(refused)), "[%s] unexpected answer \"%s\"",
			      tt_cfg->name, got);
		tt_sleep_ms(100);
	}
}

/*
 * SILENT clients that say nothing, then SLOW that send half a request,
 * more than the server's descriptors allow: each ends, refused (refused
 * is what it got) or cut without an answer never before its timeout;
 * a whole request is answered meanwhile.
 */
static void slow_clients(const char *prog, const char *half, const char *req, const char *ok, const char *refused)
{
	static const char *const args[] = { "--host", "127.0.0.1", "--port", "0", "--request-timeout", "1",
					    "--idle-timeout", "2", NULL };
	struct slow c[SILENT + SLOW];
	struct server s;
	int cut_idle = 0, cut_slow = 0, nrefused = 0;

	server_start(&s, prog, args);
	memset(c, 0, sizeof(c));
	for (int i = 0; i < SILENT + SLOW; i++) {
		c[i].sent = now_s();
		c[i].fd = client_connect(s.port);
		if (i >= SILENT)
			client_send(c[i].fd, half, strlen(half));
	}
	legit_client(s.port, req, ok, refused);
	wait_all_ended(c, SILENT + SLOW);
	for (int i = 0; i < SILENT + SLOW; i++) {
		double lasted = c[i].ended - c[i].sent, timeout = i < SILENT ? IDLE_TIMEOUT : REQ_TIMEOUT;

		if (c[i].ngot) {
			ck_assert_msg(!strncmp(c[i].got, refused, strlen(refused)), "[%s] client %d got \"%s\"",
				      tt_cfg->name, i, c[i].got);
			nrefused++;
		} else if (c[i].reset) {
			/* Refused after it sent its bytes: the close of a
			 * socket with unread bytes resets, and the reset may
			 * overtake the answer. A timed-out one had its bytes
			 * read: it ends with a FIN. */
			nrefused++;
		} else {
			ck_assert_msg(lasted >= timeout, "[%s] client %d cut after %.3f s, timeout %.1f s",
				      tt_cfg->name, i, lasted, timeout);
			if (i < SILENT)
				cut_idle++;
			else
				cut_slow++;
		}
		close(c[i].fd);
	}
	printf("[%s] %s: %d silent clients cut by the idle timeout, %d slow ones by the request timeout, %d refused\n",
	       tt_cfg->name, prog, cut_idle, cut_slow, nrefused);
	/* The first ones took the free descriptors: they were timed out. */
	ck_assert_int_eq(cut_idle, SILENT);
	ck_assert_int_gt(cut_slow, 0);
	/* And the server could not have held them all. */
	ck_assert_int_gt(nrefused, 0);
	server_stop(&s);
}

START_TEST(test_http_slow_clients)
{
	slow_clients("http-hello", "GET / HTTP/1.1\r\nHost: a\r\n",
		     "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 OK",
		     "HTTP/1.1 503 ");
}
END_TEST

START_TEST(test_redis_slow_clients)
{
	slow_clients("mini-redis", "*2\r\n$4\r\nECHO\r\n$5\r\nhe", "PING\r\n", "+PONG",
		     "-ERR max number of clients reached");
}
END_TEST

/* A command of 100,000 arguments, in 4 KiB pieces, is answered. */
START_TEST(test_redis_big_command)
{
	static const char *const args[] = { "--host", "127.0.0.1", "--port", "0", NULL };
	const int nargs = 100000;
	struct server s;
	char *cmd = malloc((size_t)nargs * 16 + 64), got[64] = "";
	size_t len = 0, n = 0;
	int fd;

	ck_assert_ptr_nonnull(cmd);
	server_start(&s, "mini-redis", args);
	len += (size_t)sprintf(cmd + len, "*%d\r\n$6\r\nEXISTS\r\n", nargs + 1);
	for (int i = 0; i < nargs; i++)
		len += (size_t)sprintf(cmd + len, "$%d\r\nk%d\r\n", 2 + (i >= 10) + (i >= 100) + (i >= 1000) + (i >= 10000), i);
	fd = client_connect(s.port);
	for (size_t off = 0; off < len; off += 4096) {
		client_send(fd, cmd + off, len - off < 4096 ? len - off : 4096);
		tt_sleep_ms(1);
	}
	for (double end = now_s() + TT_HANG_S * slow_factor(); now_s() < end && !strstr(got, "\r\n");) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		got[n] = '\0';
		if (poll(&p, 1, 100) <= 0)
			continue;
		r = recv(fd, got + n, sizeof(got) - 1 - n, MSG_DONTWAIT);
		ck_assert_int_gt(r, 0);
		n += (size_t)r;
		got[n] = '\0';
	}
	ck_assert_str_eq(got, ":0\r\n");
	close(fd);
	free(cmd);
	server_stop(&s);
}
END_TEST

int main(void)
{
	struct tt_suite ts;
	char path[512];

	snprintf(path, sizeof(path), "%s/examples/mini-redis", TOP_BUILDDIR);
	if (access(path, X_OK) != 0) {
		printf("Skipped: 3 checks: the example servers are not built (--disable-examples)\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	tt_suite_init(&ts, "slowclients", 120);
	tt_add(&ts, test_http_slow_clients);
	tt_add(&ts, test_redis_slow_clients);
	tt_add(&ts, test_redis_big_command);
	return tt_run(&ts);
}
