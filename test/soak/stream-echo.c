/* SPDX-License-Identifier: MIT */
/*
 * stream-echo.c: the server of make check-soak (test/soak/soak.sh): a
 * stream echo on tide_start_server that runs until SIGTERM, then winds
 * down as a program must for LeakSanitizer to find nothing: the server
 * closed and freed, tide_loop_shutdown, tide_loop_free returning 0.
 *
 *   stream-echo     prints "port N" once it listens on 127.0.0.1:N;
 *                   the backend is $TIDE_BACKEND's (io_uring by default)
 *
 * Connections take turns at three ways of reading, so the soak walks
 * each one's buffers many thousand times: tide_stream_read into the
 * handler's buffer (a read that waits lends it), tide_stream_peek and
 * consume (on io_uring a waiting peek keeps the ring buffer), and
 * tide_stream_readline (the reader's own buffer and the separator
 * search). Each writes back what it read, drains, and at EOF returns,
 * which closes the connection.
 *
 * The hard part is the stop: a signal handler may not touch the loop, so
 * SIGTERM is blocked and read from a signalfd by a task, through the
 * loop like any other read.
 */
#include "config.h"

#include "tide.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define READ_SIZE 4096
#define LINE_MAX_LEN 8192

static struct tide_loop *loop;
static struct tide_server *server;
static unsigned long served, failures;

/* Writes n bytes and drains: 0 or the writer's error. */
static int echo(struct tide_stream_writer *w, const void *p, size_t n)
{
	int rc = tide_stream_write(w, p, n);

	return rc < 0 ? rc : tide_stream_drain(w);
}

static int64_t handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	unsigned long way = served++ % 3;
	char *buf = way == 1 ? NULL : malloc(way == 0 ? READ_SIZE : LINE_MAX_LEN);
	const void *view;
	ssize_t n;
	int rc = 0;

	(void)arg;
	if (way != 1 && !buf)
		return -ENOMEM;
	for (;;) {
		if (way == 0)
			n = tide_stream_read(r, buf, READ_SIZE);
		else if (way == 1)
			n = tide_stream_peek(r, &view);
		else
			n = tide_stream_readline(r, buf, LINE_MAX_LEN);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		if ((rc = echo(w, way == 1 ? view : buf, (size_t)n)) < 0)
			break;
		/* The write copied the view before the drain could wait (and
		 * move the reader's buffer); consume counts, it reads no view. */
		if (way == 1 && (rc = tide_stream_consume(r, (size_t)n)) < 0)
			break;
	}
	free(buf);
	if (rc < 0) {
		failures++;
		fprintf(stderr, "stream-echo: connection %lu (way %lu): %s\n", served, way, tide_strerror(rc));
	}
	return 0;
}

/* Waits for SIGTERM or SIGINT, then stops serving and the loop. */
static int64_t stopper(void *arg)
{
	int sfd = *(int *)arg;
	struct signalfd_siginfo si;
	ssize_t n = tide_read(sfd, &si, sizeof(si), -1);

	if (n != (ssize_t)sizeof(si))
		fprintf(stderr, "stream-echo: reading the signalfd: %zd\n", n);
	tide_server_close(server);
	tide_server_close_clients(server, 1);
	n = tide_server_wait_closed(server);
	tide_loop_stop(loop);
	return n < 0 ? n : 0;
}

int main(void)
{
	static const char *const host[] = { "127.0.0.1" };
	struct tide_server_opts so = { .size = sizeof(so), .backlog = 1024 };
	struct tide_future *f = NULL, *stop = NULL;
	sigset_t set;
	int sfd, rc;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 || (sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		perror("stream-echo: signalfd");
		return 1;
	}
	if ((rc = tide_loop_new(NULL, &loop)) < 0) {
		fprintf(stderr, "stream-echo: %s\n", tide_loop_new_error());
		return 1;
	}
	rc = tide_start_server(loop, host, 1, 0, &so, handler, NULL, &f);
	if (rc == 0)
		rc = tide_loop_run_until_complete(loop, f);
	if (rc < 0) {
		fprintf(stderr, "stream-echo: start_server: %s\n", tide_strerror(rc));
		return 1;
	}
	server = tide_future_take_ptr(f);
	tide_future_unref(f);
	printf("port %d backend %s\n", tide_server_port(server), tide_loop_backend(loop));
	fflush(stdout);
	if ((rc = tide_task_spawn(loop, stopper, &sfd, NULL, &stop)) == 0)
		rc = tide_loop_run(loop);
	if (rc < 0)
		fprintf(stderr, "stream-echo: %s\n", tide_strerror(rc));
	if (stop && tide_future_done(stop) && tide_future_error(stop) < 0)
		rc = tide_future_error(stop);
	tide_future_unref(stop);
	tide_server_free(server);
	if (tide_loop_shutdown(loop, 30.0) < 0 || tide_loop_free(loop) != 0) {
		fprintf(stderr, "stream-echo: the loop did not wind down (something is still alive)\n");
		return 1;
	}
	close(sfd);
	printf("served %lu connections, %lu failed\n", served, failures);
	return rc < 0 || failures ? 1 : 0;
}
