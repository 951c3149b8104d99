/* SPDX-License-Identifier: MIT */
/*
 * echo-client-protocol: the asyncio tutorial's EchoClient, in C.
 *
 *     class EchoClient(asyncio.Protocol):
 *         def __init__(self, message, loop):
 *             self.message = message
 *             self.loop = loop
 *
 *         def connection_made(self, transport):
 *             transport.write(self.message.encode())
 *             print('Data sent: {!r}'.format(self.message))
 *
 *         def data_received(self, data):
 *             print('Data received: {!r}'.format(data.decode()))
 *
 *         def connection_lost(self, exc):
 *             print('The server closed the connection')
 *             print('Stop the event loop')
 *             self.loop.stop()
 *
 *     loop = asyncio.get_event_loop()
 *     message = 'Hello World!'
 *     coro = loop.create_connection(lambda: EchoClient(message, loop),
 *                                   '127.0.0.1', 8888)
 *     loop.run_until_complete(coro)
 *     loop.run_forever()
 *     loop.close()
 *
 * usage: echo-client-protocol [--host H] [--port P] [MESSAGE]
 *
 * The instance is a struct handed to tide_create_connection with the
 * callback table. The client lives until the server closes the connection
 * (the tutorial's EchoServer closes it after one echo): connection_lost
 * stops the loop, and run_forever returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net-common.h"
#include "tide.h"

struct echo_client {
	const char *message;
	struct tide_loop *loop;
};

static void connection_made(struct tide_transport *transport, void *proto)
{
	struct echo_client *self = proto;
	char repr[1024];
	int err;

	err = tide_transport_write(transport, self->message, strlen(self->message));
	if (err < 0)
		fprintf(stderr, "echo-client-protocol: write: %s\n", tide_strerror(err));
	printf("Data sent: %s\n", ex_repr(self->message, strlen(self->message), repr, sizeof(repr)));
}

static void data_received(struct tide_transport *transport, const void *data, size_t n, void *proto)
{
	char repr[1024];

	printf("Data received: %s\n", ex_repr(data, n, repr, sizeof(repr)));
}

static void connection_lost(struct tide_transport *transport, int err, void *proto)
{
	struct echo_client *self = proto;

	if (err < 0)
		fprintf(stderr, "echo-client-protocol: connection lost: %s\n", tide_strerror(err));
	printf("The server closed the connection\n");
	printf("Stop the event loop\n");
	tide_loop_stop(self->loop);
}

static const struct tide_protocol_ops echo_client_ops = {
	.size = sizeof(echo_client_ops),
	.connection_made = connection_made,
	.data_received = data_received,
	.connection_lost = connection_lost,
};

static void usage(FILE *f)
{
	fprintf(f, "usage: echo-client-protocol [--host H] [--port P] [MESSAGE]\n"
		   "  --host H  connect to H (default 127.0.0.1)\n"
		   "  --port P  connect to port P (default 8888)\n"
		   "  MESSAGE   what to send (default 'Hello World!')\n");
}

int main(int argc, char **argv)
{
	struct echo_client client = { .message = "Hello World!" };
	const char *host = "127.0.0.1";
	int port = 8888, rc, err;
	const struct ex_args args = { .usage = usage, .host = &host, .port = &port, .port_min = 1,
				      .message = &client.message };
	struct tide_future *coro;

	rc = ex_parse_args(argc, argv, &args);
	if (rc >= 0)
		return rc;
	if (ex_loop_open("echo-client-protocol", 0, &client.loop) < 0)
		return 1;

	/* coro = loop.create_connection(lambda: EchoClient(message, loop), host, port) */
	err = tide_create_connection(client.loop, host, port, &echo_client_ops, &client, &coro);
	if (err == 0) {
		/* loop.run_until_complete(coro) */
		err = tide_loop_run_until_complete(client.loop, coro);
		tide_future_unref(coro);
	}
	if (err < 0) {
		fprintf(stderr, "echo-client-protocol: cannot connect to %s port %d: %s\n", host, port,
			tide_strerror(err));
	} else {
		/* loop.run_forever(), until connection_lost stops it */
		err = tide_loop_run(client.loop);
		if (err < 0)
			fprintf(stderr, "echo-client-protocol: run: %s\n", tide_strerror(err));
	}

	/* loop.close() */
	return ex_loop_done("echo-client-protocol", client.loop, err);
}
