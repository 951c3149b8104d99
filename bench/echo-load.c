/* SPDX-License-Identifier: MIT */
/*
 * echo-load.c: the load generator of the networking benchmarks (plain C,
 * epoll, one thread; it does not use tide, so it measures every server by
 * the same rule).
 *
 *   echo-load --port P [--host 127.0.0.1] [--conns N] [--size S] [--depth D]
 *             [--duration SEC] [--warmup SEC] [--server-pid PID]
 *       N connections, each keeping D messages of S bytes in flight
 *       (pipelined); every echoed byte is checked against a pattern that
 *       depends on the connection and the stream position; the latency of a
 *       message is from when it was queued for sending to when its last
 *       byte came back. Prints one JSON line.
 *   echo-load --port P --idle [--conns N] --server-pid PID
 *       RSS per idle connection: the server's VmRSS before and after N
 *       connections were opened and echoed one byte each. Before the
 *       "before", one connection echoes IDLE_WARMUP messages and closes:
 *       pools that fill lazily (io_uring provided-buffer rings take their
 *       buffers round-robin, so ~1000 receives of any connections touch a
 *       1024-buffer ring end to end) are then paid for in the baseline, and
 *       the delta is what the connections themselves cost.
 *   echo-load --free-port      prints a free TCP port on 127.0.0.1
 *   echo-load --port P --wait  waits (5 s at most) until P accepts a connection
 *   echo-load --proc PID       prints the CPU time (ns, and its user/kernel split
 *                              in ticks as ns), RSS and peak RSS of PID
 *
 * The hard parts: (1) stream framing: the echo is a byte stream, so message
 * k of a connection is complete when (k + 1) * S bytes came back, whatever
 * the read sizes; (2) the server's CPU time must cover exactly the measured
 * interval: it is read (the sum over its threads of
 * /proc/PID/task/TID/schedstat's run time, nanoseconds; /proc/PID/stat's
 * utime + stime in ticks when schedstat is missing) when the warm-up ends
 * and when the measurement ends, and divided by the messages completed in
 * between. (3) The checking must be cheaper than the server's work: the
 * pattern is a random table of a prime period, stored twice, so any window
 * of the stream is one memcmp.
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

#include "proc-cpu.h"

#define PERIOD 65521u       /* prime: never a multiple of a message size */
#define READ_SIZE 32768u    /* < PERIOD: one memcmp per read */

static unsigned char table[2 * PERIOD];

struct conn {
	int fd;
	int dead;
	int want_out;
	uint32_t shift;     /* where this connection's pattern starts */
	uint64_t sent;      /* bytes written */
	uint64_t goal;      /* bytes queued: issued * size */
	uint64_t recvd;     /* bytes echoed and checked */
	uint64_t issued;    /* messages queued */
	uint64_t done;      /* messages echoed completely */
	uint64_t *t_send;   /* send time of message k at [k % depth] */
};

static struct {
	const char *host;
	int port;
	int conns;
	size_t size;
	int depth;
	double duration, warmup;
	int server_pid;
	int idle;
	int wait;
} opt = {"127.0.0.1", -1, 1, 64, 1, 2.0, 0.5, 0, 0, 0};

static int epfd;
static uint64_t errors;
static unsigned char rbuf[READ_SIZE];

/* ---- latency histogram: 32 sub-buckets per power of two (~3 %) ---- */

#define HIST_SUB 32
#define HIST_N (HIST_SUB + 64 * HIST_SUB)
static uint64_t hist[HIST_N];
static uint64_t hist_count;

static unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 5 */
	unsigned sub = (unsigned)(v >> (e - 5)) & (HIST_SUB - 1);
	return HIST_SUB + (e - 5) * HIST_SUB + sub;
}

/* The middle of bucket i, in ns. */
static double hist_value(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned e = (i - HIST_SUB) / HIST_SUB + 5, sub = (i - HIST_SUB) % HIST_SUB;
	double lo = (double)((uint64_t)(HIST_SUB + sub) << (e - 5));
	return lo + (double)(1ull << (e - 5)) / 2;
}

static double hist_quantile(double q)
{
	if (hist_count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)hist_count);
	if (rank >= hist_count)
		rank = hist_count - 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_N; i++) {
		seen += hist[i];
		if (seen > rank)
			return hist_value(i);
	}
	return hist_value(HIST_N - 1);
}

/* ---- clocks and /proc ---- */

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


/* A "VmXXX:" line of /proc/pid/status, in KiB; -1 if missing. */
static long proc_status_kib(int pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long v = -1;
	size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = atol(line + kl + 1);
			break;
		}
	fclose(f);
	return v;
}

/* ---- connections ---- */

static void set_out(struct conn *c, int on)
{
	if (c->want_out == on)
		return;
	struct epoll_event e = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
	c->want_out = on;
}

static void conn_fail(struct conn *c)
{
	if (c->dead)
		return;
	errors++;
	c->dead = 1;
	close(c->fd); /* leaves the epoll set */
}

static void conn_flush(struct conn *c)
{
	while (c->sent < c->goal) {
		uint64_t left = c->goal - c->sent;
		size_t len = left < PERIOD ? (size_t)left : PERIOD;
		const unsigned char *p = table + (c->sent + c->shift) % PERIOD;
		ssize_t w = write(c->fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				set_out(c, 1);
				return;
			}
			conn_fail(c);
			return;
		}
		c->sent += (uint64_t)w;
	}
	set_out(c, 0);
}

static void conn_issue(struct conn *c, uint64_t t)
{
	c->t_send[c->issued % (uint64_t)opt.depth] = t;
	c->issued++;
	c->goal += opt.size;
}

/* Whether to record completions, and whether to send more. */
static int measuring, sending = 1;
static uint64_t measured;

static void conn_readable(struct conn *c)
{
	ssize_t n = read(c->fd, rbuf, sizeof(rbuf));
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_fail(c); /* EOF or reset: the server must never close */
		return;
	}
	if (c->recvd + (uint64_t)n > c->sent ||
	    memcmp(rbuf, table + (c->recvd + c->shift) % PERIOD, (size_t)n) != 0) {
		fprintf(stderr, "echo-load: wrong bytes at offset %llu of a connection\n",
			(unsigned long long)c->recvd);
		conn_fail(c);
		return;
	}
	c->recvd += (uint64_t)n;
	uint64_t t = 0;
	int issued = 0;
	while (c->done < c->issued && c->recvd >= (c->done + 1) * opt.size) {
		if (!t)
			t = now_ns();
		if (measuring) {
			uint64_t lat = t - c->t_send[c->done % (uint64_t)opt.depth];
			hist[hist_index(lat)]++;
			hist_count++;
			measured++;
		}
		c->done++;
		if (sending) {
			conn_issue(c, t);
			issued = 1;
		}
	}
	if (issued)
		conn_flush(c);
}

static int open_conn(const struct sockaddr_in *sin, double wait_s)
{
	uint64_t deadline = now_ns() + (uint64_t)(wait_s * 1e9);
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
			return fd;
		}
		int err = errno;
		close(fd);
		if (err != ECONNREFUSED || now_ns() > deadline)
			return -err;
		usleep(10000); /* the server is still starting */
	}
}

/* One connection, IDLE_WARMUP blocking round-trips of 64 bytes, closed. */
#define IDLE_WARMUP 8192
static int idle_warmup(const struct sockaddr_in *sin)
{
	int fd = open_conn(sin, 5.0);
	if (fd < 0) {
		fprintf(stderr, "echo-load: warm-up connect: %s\n", strerror(-fd));
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	for (int i = 0; i < IDLE_WARMUP; i++) {
		const unsigned char *p = table + (size_t)i * 64 % PERIOD;
		if (write(fd, p, 64) != 64)
			goto fail;
		for (size_t got = 0; got < 64;) {
			ssize_t n = read(fd, rbuf + got, 64 - got);
			if (n <= 0)
				goto fail;
			got += (size_t)n;
		}
		if (memcmp(rbuf, p, 64) != 0)
			goto fail;
	}
	close(fd);
	return 0;
fail:
	fprintf(stderr, "echo-load: the idle warm-up connection failed\n");
	close(fd);
	return -1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: echo-load --port P [--host H] [--conns N] [--size S] [--depth D]\n"
		"                 [--duration SEC] [--warmup SEC] [--server-pid PID] [--idle | --wait]\n"
		"       echo-load --free-port | --proc PID\n");
	exit(2);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sin);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
		perror("echo-load: free port");
		return 1;
	}
	printf("%d\n", ntohs(sin.sin_port));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--free-port"))
			return free_port();
		if (!strcmp(a, "--idle")) {
			opt.idle = 1;
			continue;
		}
		if (!strcmp(a, "--wait")) {
			opt.wait = 1;
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
		else if (!strcmp(a, "--depth"))
			opt.depth = atoi(v);
		else if (!strcmp(a, "--duration"))
			opt.duration = atof(v);
		else if (!strcmp(a, "--warmup"))
			opt.warmup = atof(v);
		else if (!strcmp(a, "--server-pid"))
			opt.server_pid = atoi(v);
		else if (!strcmp(a, "--proc")) {
			int pid = atoi(v);
			uint64_t ut = 0, st = 0;
			proc_user_sys_ns(pid, &ut, &st);
			printf("{\"cpu_ns\":%llu,\"user_ns\":%llu,\"sys_ns\":%llu,\"rss_kib\":%ld,\"hwm_kib\":%ld}\n",
			       (unsigned long long)proc_cpu_ns(pid), (unsigned long long)ut, (unsigned long long)st,
			       proc_status_kib(pid, "VmRSS"), proc_status_kib(pid, "VmHWM"));
			return 0;
		} else
			usage();
	}
	if (opt.port <= 0 || opt.conns < 1 || opt.size < 1 || opt.depth < 1 || opt.duration <= 0 ||
	    opt.warmup < 0 || (opt.idle && opt.server_pid <= 0))
		usage();
	if (opt.idle) {
		opt.size = 1;
		opt.depth = 1;
	}
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

	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
	if (inet_pton(AF_INET, opt.host, &sin.sin_addr) != 1) {
		fprintf(stderr, "echo-load: --host must be a numeric IPv4 address\n");
		return 2;
	}
	if (opt.wait) {
		int fd = open_conn(&sin, 5.0);
		if (fd < 0) {
			fprintf(stderr, "echo-load: %s:%d: %s\n", opt.host, opt.port, strerror(-fd));
			return 1;
		}
		close(fd);
		return 0;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	struct conn *conns = calloc((size_t)opt.conns, sizeof(*conns));
	uint64_t *times = calloc((size_t)opt.conns * (size_t)opt.depth, sizeof(uint64_t));
	if (epfd < 0 || !conns || !times) {
		perror("echo-load");
		return 1;
	}
	long rss_before = 0;
	if (opt.idle) {
		if (idle_warmup(&sin) < 0)
			return 1;
		usleep(200000); /* let the server drop the warm-up connection */
		rss_before = proc_status_kib(opt.server_pid, "VmRSS");
	}

	/* Connection setup, before anything is measured. */
	for (int i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];
		int fd = open_conn(&sin, i == 0 ? 5.0 : 0);
		if (fd < 0) {
			fprintf(stderr, "echo-load: connect %s:%d: %s\n", opt.host, opt.port, strerror(-fd));
			return 1;
		}
		c->fd = fd;
		c->shift = (uint32_t)(((uint64_t)i * 7919u) % PERIOD);
		c->t_send = times + (size_t)i * (size_t)opt.depth;
		struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
	}

	uint64_t start = now_ns();
	for (int i = 0; i < opt.conns; i++) {
		for (int k = 0; k < opt.depth; k++)
			conn_issue(&conns[i], start);
		conn_flush(&conns[i]);
	}
	if (opt.idle)
		sending = 0; /* one byte each, then idle */

	uint64_t t0 = start + (uint64_t)(opt.warmup * 1e9);
	uint64_t t1 = t0 + (uint64_t)(opt.duration * 1e9);
	uint64_t m0 = 0, m1 = 0, cpu0 = 0, cpu1 = 0, self0 = 0, self1 = 0;
	uint64_t ut0 = 0, st0 = 0, ut1 = 0, st1 = 0;
	if (opt.idle) /* done when every byte came back, or after the time limits */
		t0 = start, t1 = start + 10000000000ull;
	struct epoll_event evs[512];
	for (;;) {
		uint64_t t = now_ns();
		if (!measuring && t >= t0 && !opt.idle) {
			measuring = 1;
			m0 = t;
			if (opt.server_pid > 0) {
				cpu0 = proc_cpu_ns(opt.server_pid);
				proc_user_sys_ns(opt.server_pid, &ut0, &st0);
			}
			self0 = self_cpu_ns();
		}
		if (t >= t1)
			break;
		if (opt.idle) {
			int pending = 0;
			for (int i = 0; i < opt.conns && !pending; i++)
				pending = !conns[i].dead && conns[i].done < conns[i].issued;
			if (!pending)
				break;
		}
		uint64_t until = measuring || opt.idle ? t1 : t0;
		int ms = (int)((until - t) / 1000000u) + 1;
		int n = epoll_wait(epfd, evs, 512, ms);
		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->dead)
				continue;
			if (evs[i].events & EPOLLOUT)
				conn_flush(c);
			if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				conn_readable(c);
		}
	}
	m1 = now_ns();
	if (opt.server_pid > 0 && !opt.idle) {
		cpu1 = proc_cpu_ns(opt.server_pid);
		proc_user_sys_ns(opt.server_pid, &ut1, &st1);
	}
	self1 = self_cpu_ns();

	if (opt.idle) {
		usleep(200000); /* let the server settle its per-connection state */
		long rss_after = proc_status_kib(opt.server_pid, "VmRSS");
		uint64_t ok = 0;
		for (int i = 0; i < opt.conns; i++)
			ok += !conns[i].dead && conns[i].done == conns[i].issued;
		printf("{\"conns\":%d,\"echoed\":%llu,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,"
		       "\"rss_per_conn_kib\":%.3f,\"errors\":%llu}\n",
		       opt.conns, (unsigned long long)ok, rss_before, rss_after,
		       (double)(rss_after - rss_before) / opt.conns,
		       (unsigned long long)(errors + (uint64_t)opt.conns - ok));
		return 0;
	}

	double secs = (double)(m1 - m0) / 1e9;
	printf("{\"conns\":%d,\"size\":%zu,\"depth\":%d,\"seconds\":%.3f,\"msgs\":%llu,"
	       "\"msgs_per_s\":%.1f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"errors\":%llu,"
	       "\"load_cpu_pct\":%.1f",
	       opt.conns, opt.size, opt.depth, secs, (unsigned long long)measured,
	       secs > 0 ? (double)measured / secs : 0.0, hist_quantile(0.50) / 1e3,
	       hist_quantile(0.99) / 1e3, (unsigned long long)errors,
	       secs > 0 ? 100.0 * (double)(self1 - self0) / 1e9 / secs : 0.0);
	if (opt.server_pid > 0) {
		double cpu_us = (double)(cpu1 - cpu0) / 1e3;
		double ticks = (double)(ut1 - ut0) + (double)(st1 - st0);
		printf(",\"server_cpu_pct\":%.1f,\"cpu_us_per_msg\":%.3f", secs > 0 ? cpu_us / 1e4 / secs : 0.0,
		       measured ? cpu_us / (double)measured : 0.0);
		/* The precise total, split in the ticks' proportion. */
		if (ticks > 0 && measured)
			printf(",\"user_us_per_msg\":%.3f", cpu_us * (double)(ut1 - ut0) / ticks / (double)measured);
		else
			printf(",\"user_us_per_msg\":null");
		printf(",\"rss_kib\":%ld,\"hwm_kib\":%ld",
		       proc_status_kib(opt.server_pid, "VmRSS"),
		       proc_status_kib(opt.server_pid, "VmHWM"));
	}
	printf("}\n");
	return errors ? 3 : 0;
}
