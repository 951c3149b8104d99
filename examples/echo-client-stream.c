/* SPDX-License-Identifier: MIT */
/*
 * echo-client-stream: the asyncio tutorial's stream echo client, in C.
 *
 *     async def tcp_echo_client(message, loop):
 *         reader, writer = await asyncio.open_connection('127.0.0.1', 8888,
 *                                                        loop=loop)
 *
 *         print('Send: %r' % message)
 *         writer.write(message.encode())
 *
 *         data = await reader.read(100)
 *         print('Received: %r' % data.decode())
 *
 *         print('Close the socket')
 *         writer.close()
 *
 *     message = 'Hello World!'
 *     loop = asyncio.get_event_loop()
 *     loop.run_until_complete(tcp_echo_client(message, loop))
 *     loop.close()
 *
 * usage: echo-client-stream [--host H] [--port P] [MESSAGE]
 *
 * tcp_echo_client is the body of a task, which run_until_complete drives;
 * each await is a call that suspends it. Where the Python leaves the
 * closing transport to the garbage collector, this waits for the close
 * (writer.wait_closed()) and frees the pair, so the loop can be freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net-common.h"
#include "tide.h"

struct client_args {
	const char *host;
	int port;
	const char *message;
};

/* async def tcp_echo_client(message, loop) */
static int64_t tcp_echo_client(void *arg)
{
	const struct client_args *a = arg;
	struct tide_stream_reader *reader;
	struct tide_stream_writer *writer;
	char data[100], repr[1024];
	ssize_t n;
	int err;

	/* reader, writer = await asyncio.open_connection('127.0.0.1', 8888) */
	err = tide_open_connection(a->host, a->port, &reader, &writer);
	if (err < 0) {
		fprintf(stderr, "echo-client-stream: cannot connect to %s port %d: %s\n", a->host,
			a->port, tide_strerror(err));
		return err;
	}

	printf("Send: %s\n", ex_repr(a->message, strlen(a->message), repr, sizeof(repr)));
	err = tide_stream_write(writer, a->message, strlen(a->message));
	if (err < 0) {
		fprintf(stderr, "echo-client-stream: write: %s\n", tide_strerror(err));
		goto out;
	}

	/* data = await reader.read(100) */
	n = tide_stream_read(reader, data, sizeof(data));
	if (n < 0) {
		err = (int)n;
		fprintf(stderr, "echo-client-stream: read: %s\n", tide_strerror(err));
		goto out;
	}
	printf("Received: %s\n", ex_repr(data, (size_t)n, repr, sizeof(repr)));

	printf("Close the socket\n");
out:
	tide_stream_close(writer);
	tide_stream_wait_closed(writer);
	tide_stream_free(reader, writer);
	return err < 0 ? err : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: echo-client-stream [--host H] [--port P] [MESSAGE]\n"
		   "  --host H  connect to H (default 127.0.0.1)\n"
		   "  --port P  connect to port P (default 8888)\n"
		   "  MESSAGE   what to send (default 'Hello World!')\n");
}

int main(int argc, char **argv)
{
	struct client_args a = { .host = "127.0.0.1", .port = 8888, .message = "Hello World!" };
	const struct ex_args args = { .usage = usage, .host = &a.host, .port = &a.port, .port_min = 1,
				      .message = &a.message };
	struct tide_loop *loop;
	struct tide_future *task;
	int rc, err;

	rc = ex_parse_args(argc, argv, &args);
	if (rc >= 0)
		return rc;
	if (ex_loop_open("echo-client-stream", 0, &loop) < 0)
		return 1;
	/* loop.run_until_complete(tcp_echo_client(message, loop)) */
	err = tide_task_spawn(loop, tcp_echo_client, &a, NULL, &task);
	if (err == 0) {
		err = tide_loop_run_until_complete(loop, task);
		tide_future_unref(task);
	} else {
		fprintf(stderr, "echo-client-stream: tide_task_spawn: %s\n", tide_strerror(err));
	}
	/* loop.close() */
	return ex_loop_done("echo-client-stream", loop, err);
}
