/* SPDX-License-Identifier: MIT */
/*
 * tide-echo.c: the tide side of the networking benchmarks: a persistent
 * echo server, or the minimal pipelining HTTP/1.1 server of
 * bench/peers/peer.h (--mode http), on one of tide's three APIs:
 *
 *   --api protocol   a protocol whose data_received writes the bytes back
 *                    (tide_transport_write copies them);
 *   --api buffered   a buffered protocol: get_buffer hands out one buffer
 *                    per thread, buffer_updated writes it back;
 *   --api stream     tide_start_server, one task per connection looping
 *                    tide_stream_read + tide_stream_write (+ drain when the
 *                    write buffer is above its high-water mark).
 *   --api stream-peek the same with tide_stream_peek + tide_stream_consume
 *                    instead of read: no buffer of the handler's own (on
 *                    io_uring the bytes stay in the ring buffer).
 *
 * --threads N runs N loops, one per thread, each with its own server on the
 * same port (SO_REUSEPORT through tide_server_opts.reuse_port): the kernel
 * spreads the connections.
 *
 * --cert FILE --key FILE serves TLS (tide_server_opts.tls, with the context
 * tide_tls_server_context_new makes from the PEM files) on any of the APIs:
 * the handlers see plaintext, so the same code measures tide's TLS layer
 * (bench/tls.sh).
 *
 * --idle-timeout S gives each connection that idle timeout
 * (tide_transport_set_timeouts, tide_stream_set_timeouts), to measure what
 * a timeout costs per message.
 *
 * The hard part is flow control, as in any echo server: a client that sends
 * faster than it reads would make the write buffer grow without bound, so
 * the protocol servers pause reading on pause_writing and resume on
 * resume_writing; the stream server drains.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tide.h"
#include "peers/peer.h"

#define READ_SIZE 65536

static struct peer_args args;

#define CHECK(expr)                                                                    \
	do {                                                                           \
		long rc_ = (long)(expr);                                               \
		if (rc_ < 0) {                                                         \
			fprintf(stderr, "tide-echo: %s:%d: %s = %ld (%s)\n", __FILE__, \
				__LINE__, #expr, rc_, tide_strerror((int)rc_));        \
			exit(1);                                                       \
		}                                                                      \
	} while (0)

/* ---------------------------------------------------------- protocols -- */

/* Per connection: only the HTTP parser needs state. */
struct conn {
	int http_state;
};

static void send_responses(struct tide_transport *t, size_t k)
{
	const char *resp = peer_responses();
	while (k > 0) {
		size_t b = k < PEER_RESPONSE_BATCH ? k : PEER_RESPONSE_BATCH;
		if (tide_transport_write(t, resp, b * PEER_RESPONSE_LEN) < 0)
			return;
		k -= b;
	}
}

static void handle_bytes(struct tide_transport *t, const void *data, size_t n, struct conn *c)
{
	if (args.mode == PEER_ECHO)
		tide_transport_write(t, data, n);
	else
		send_responses(t, peer_count_requests(data, n, &c->http_state));
}

static void on_data(struct tide_transport *t, const void *data, size_t n, void *proto)
{
	handle_bytes(t, data, n, proto);
}

/* One read buffer per thread (loop): buffer_updated consumes it before the
 * next get_buffer, so the connections can share it. */
static __thread char *thread_buf;

static int on_get_buffer(struct tide_transport *t, size_t hint, void **buf, size_t *len, void *proto)
{
	(void)t;
	(void)hint;
	(void)proto;
	*buf = thread_buf;
	*len = READ_SIZE;
	return 0;
}

static void on_buffer_updated(struct tide_transport *t, size_t n, void *proto)
{
	handle_bytes(t, thread_buf, n, proto);
}

static void on_pause_writing(struct tide_transport *t, void *proto)
{
	(void)proto;
	tide_transport_pause_reading(t);
}

static void on_resume_writing(struct tide_transport *t, void *proto)
{
	(void)proto;
	tide_transport_resume_reading(t);
}

static void on_made(struct tide_transport *t, void *proto)
{
	struct tide_timeouts to = { .size = sizeof(to), .idle = args.idle_timeout };

	(void)proto;
	if (args.idle_timeout > 0)
		CHECK(tide_transport_set_timeouts(t, &to));
}

static void on_lost(struct tide_transport *t, int err, void *proto)
{
	(void)t;
	(void)err;
	free(proto);
}

static const struct tide_protocol_ops protocol_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = on_made,
	.data_received = on_data,
	.connection_lost = on_lost,
	.pause_writing = on_pause_writing,
	.resume_writing = on_resume_writing,
};

static const struct tide_protocol_ops buffered_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = on_made,
	.connection_lost = on_lost,
	.pause_writing = on_pause_writing,
	.resume_writing = on_resume_writing,
	.get_buffer = on_get_buffer,
	.buffer_updated = on_buffer_updated,
};

static int factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	*ops = arg;
	/* Echo needs no state; NULL keeps the echo path free of allocations. */
	if (args.mode == PEER_ECHO) {
		*proto = NULL;
		return 0;
	}
	*proto = calloc(1, sizeof(struct conn));
	return *proto ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------- stream -- */

static int64_t stream_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	int peek = arg != NULL;
	char *buf = peek ? NULL : malloc(READ_SIZE);
	if (!peek && !buf)
		return -ENOMEM;
	struct tide_transport *t = tide_stream_transport(w);
	size_t high = 0, low = 0;
	tide_transport_get_write_buffer_limits(t, &high, &low);
	int http_state = 0;
	int64_t rc = 0;
	struct tide_timeouts to = { .size = sizeof(to), .idle = args.idle_timeout };
	if (args.idle_timeout > 0 && (rc = tide_stream_set_timeouts(w, &to)) < 0) {
		free(buf);
		return rc;
	}
	for (;;) {
		const void *view;
		ssize_t n = peek ? tide_stream_peek(r, &view) : tide_stream_read(r, buf, READ_SIZE);
		if (n <= 0) {
			rc = n;
			break;
		}
		const char *data = peek ? view : buf;
		if (args.mode == PEER_ECHO) {
			rc = tide_stream_write(w, data, (size_t)n);
		} else {
			size_t k = peer_count_requests(data, (size_t)n, &http_state);
			const char *resp = peer_responses();
			while (k > 0 && rc >= 0) {
				size_t b = k < PEER_RESPONSE_BATCH ? k : PEER_RESPONSE_BATCH;
				rc = tide_stream_write(w, resp, b * PEER_RESPONSE_LEN);
				k -= b;
			}
		}
		if (rc < 0)
			break;
		if (peek)
			tide_stream_consume(r, (size_t)n);
		if (tide_transport_get_write_buffer_size(t) > high) {
			rc = tide_stream_drain(w);
			if (rc < 0)
				break;
		}
	}
	free(buf);
	/* A client going away is how every connection ends here: a reset, or
	 * a write after the transport closed (TIDE_ECLOSED) is not an error. */
	if (rc == -ECONNRESET || rc == -EPIPE || rc == TIDE_ECLOSED)
		rc = 0;
	return rc;
}

/* --------------------------------------------------------------- main -- */

static void *serve(void *unused)
{
	(void)unused;
	struct tide_loop *loop;
	struct tide_loop_opts lo;
	memset(&lo, 0, sizeof(lo));
	lo.size = sizeof(lo);
	/* TIDE_ECHO_RECV_BUF=SIZE:COUNT tries other provided-buffer rings. */
	const char *rb = getenv("TIDE_ECHO_RECV_BUF");
	if (rb) {
		lo.recv_buf_size = strtoul(rb, NULL, 10);
		if (strchr(rb, ':'))
			lo.recv_buf_count = (unsigned)strtoul(strchr(rb, ':') + 1, NULL, 10);
	}
	CHECK(tide_loop_new(&lo, &loop));
	thread_buf = malloc(READ_SIZE);
	if (!thread_buf)
		exit(1);

	struct tide_server_opts so;
	memset(&so, 0, sizeof(so));
	so.size = sizeof(so);
	so.backlog = 4096;
	so.reuse_port = args.threads > 1;
	struct tide_tls_opts tls;
	memset(&tls, 0, sizeof(tls));
	if (args.cert) {
		tls.size = sizeof(tls);
		CHECK(tide_tls_server_context_new(args.cert, args.key, &tls.ctx));
		so.tls = &tls; /* copied, and the context referenced, by the call */
	}
	static const char *const hosts[] = {"127.0.0.1"};
	struct tide_future *f;
	if (!strncmp(args.api, "stream", 6))
		CHECK(tide_start_server(loop, hosts, 1, args.port, &so, stream_handler,
					strcmp(args.api, "stream-peek") ? NULL : (void *)&args, &f));
	else if (!strcmp(args.api, "buffered"))
		CHECK(tide_create_server(loop, hosts, 1, args.port, &so, factory, (void *)&buffered_ops, &f));
	else
		CHECK(tide_create_server(loop, hosts, 1, args.port, &so, factory, (void *)&protocol_ops, &f));
	CHECK(tide_loop_run_until_complete(loop, f));
	/* The server outlives its future: take it (the future would free it). */
	void *server = tide_future_take_ptr(f);
	if (!server)
		exit(1);
	tide_future_unref(f);
	/* Serve until SIGTERM / SIGINT (peer.h's handler ends the process). */
	CHECK(tide_loop_run(loop));
	return NULL;
}

int main(int argc, char **argv)
{
	peer_parse_args(argc, argv, &args, 1);
	if (strcmp(args.api, "protocol") && strcmp(args.api, "buffered") && strcmp(args.api, "stream") &&
	    strcmp(args.api, "stream-peek"))
		peer_usage(argv[0], 1);
	peer_setup_process();
	peer_responses(); /* built once, before the threads share it */
	pthread_t *th = calloc((size_t)args.threads, sizeof(*th));
	if (!th)
		return 1;
	for (int i = 1; i < args.threads; i++)
		if (pthread_create(&th[i], NULL, serve, NULL) != 0) {
			perror("tide-echo: pthread_create");
			return 1;
		}
	serve(NULL);
	return 0;
}
