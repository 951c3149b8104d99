/* SPDX-License-Identifier: MIT */
/*
 * echo-server-protocol: the asyncio tutorial's EchoServer, in C.
 *
 *     class EchoServer(asyncio.Protocol):
 *         def connection_made(self, transport):
 *             peername = transport.get_extra_info('peername')
 *             print('Connection from {}'.format(peername))
 *             self.transport = transport
 *
 *         def data_received(self, data):
 *             message = data.decode()
 *             print('Data received: {!r}'.format(message))
 *
 *             print('Send: {!r}'.format(message))
 *             self.transport.write(data)
 *
 *             print('Close the client socket')
 *             self.transport.close()
 *
 *     loop = asyncio.get_event_loop()
 *     # Each client connection will create a new protocol instance
 *     coro = loop.create_server(EchoServer, '', 8888)
 *     server = loop.run_until_complete(coro)
 *     print('Serving on {}'.format(server.sockets[0].getsockname()))
 *     try:
 *         loop.run_forever()
 *     except KeyboardInterrupt:
 *         pass
 *     server.close()
 *     loop.run_until_complete(server.wait_closed())
 *     loop.close()
 *
 * usage: echo-server-protocol [--host H] [--port P] [--once]
 *
 * The class is a struct tide_protocol_ops table plus a struct per
 * connection, which the protocol factory (EchoServer, called once per
 * accepted connection) allocates and connection_lost frees. The default
 * host is '' (every interface, as the tutorial), the default port 8888;
 * --port 0 takes a free port (the "Serving on" line says which). --once
 * stops the loop after the first client's connection is gone, so a script
 * can run the demo without killing the server; Ctrl-C (or SIGTERM) stops
 * it otherwise, as KeyboardInterrupt does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "net-common.h"
#include "tide.h"

struct echo_server {
	struct tide_transport *transport;
};

static struct tide_loop *loop;
static int once; /* --once: stop after the first connection */

static void connection_made(struct tide_transport *transport, void *proto)
{
	struct echo_server *self = proto;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char peername[128] = "None";

	if (tide_transport_get_extra_info(transport, "peername", &ss, &len) == 0)
		ex_format_addr((struct sockaddr *)&ss, len, peername, sizeof(peername));
	printf("Connection from %s\n", peername);
	self->transport = transport;
}

static void data_received(struct tide_transport *transport, const void *data, size_t n, void *proto)
{
	struct echo_server *self = proto;
	char message[1024];
	int err;

	ex_repr(data, n, message, sizeof(message));
	printf("Data received: %s\n", message);

	printf("Send: %s\n", message);
	err = tide_transport_write(self->transport, data, n);
	if (err < 0)
		fprintf(stderr, "echo-server-protocol: write: %s\n", tide_strerror(err));

	printf("Close the client socket\n");
	tide_transport_close(self->transport);
}

/* Not in the Python, where the garbage collector frees the instance. */
static void connection_lost(struct tide_transport *transport, int err, void *proto)
{
	if (err < 0)
		fprintf(stderr, "echo-server-protocol: connection lost: %s\n", tide_strerror(err));
	free(proto);
	if (once)
		tide_loop_stop(loop);
}

static const struct tide_protocol_ops echo_server_ops = {
	.size = sizeof(echo_server_ops),
	.connection_made = connection_made,
	.data_received = data_received,
	.connection_lost = connection_lost,
};

/* EchoServer(): a new protocol instance per connection. */
static int echo_server_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	struct echo_server *self = calloc(1, sizeof(*self));

	if (!self)
		return -ENOMEM;
	*ops = &echo_server_ops;
	*proto = self;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: echo-server-protocol [--host H] [--port P] [--once]\n"
		   "  --host H  listen on H (default: every interface)\n"
		   "  --port P  listen on port P (default 8888; 0: a free port)\n"
		   "  --once    exit after the first client\n");
}

int main(int argc, char **argv)
{
	const char *host = NULL;
	int port = 8888, rc, err;
	const struct ex_args args = { .usage = usage, .host = &host, .port = &port, .once = &once };
	struct tide_future *coro = NULL;

	rc = ex_parse_args(argc, argv, &args);
	if (rc >= 0)
		return rc;
	if (ex_loop_open("echo-server-protocol", 1, &loop) < 0)
		return 1;

	/* coro = loop.create_server(EchoServer, '', 8888) */
	err = tide_create_server(loop, host ? &host : NULL, host ? 1 : 0, port, NULL,
				 echo_server_factory, NULL, &coro);
	/* server = loop.run_until_complete(coro), then loop.run_forever()
	 * until Ctrl-C or, with --once, the first client is gone. Ctrl-C
	 * aborts the connections still open; after --once's client, whose
	 * echo may still be leaving, the close is a graceful one. */
	return ex_run_server(loop, "echo-server-protocol", "create_server", err, coro, !once);
}
