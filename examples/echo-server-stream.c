/* SPDX-License-Identifier: MIT */
/*
 * echo-server-stream: the asyncio tutorial's stream echo server, in C.
 *
 *     async def handle_echo(reader, writer):
 *         data = await reader.read(100)
 *         message = data.decode()
 *         addr = writer.get_extra_info('peername')
 *         print("Received %r from %r" % (message, addr))
 *
 *         print("Send: %r" % message)
 *         writer.write(data)
 *         await writer.drain()
 *
 *         print("Close the client socket")
 *         writer.close()
 *
 *     loop = asyncio.get_event_loop()
 *     coro = asyncio.start_server(handle_echo, '127.0.0.1', 8888, loop=loop)
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
 * usage: echo-server-stream [--host H] [--port P] [--once]
 *
 * tide_start_server runs handle_echo in a task per connection, so each
 * `await` is a call that suspends that task: the handler reads as the
 * Python does, without callbacks. The pair is closed and freed when the
 * handler returns. Default 127.0.0.1 port 8888 as the tutorial; --port 0
 * takes a free port; --once stops after the first client.
 *
 * tls-echo-server is this file built with EX_TLS (tls-echo-server.c):
 * the same server over TLS (tide_start_server with TLS options).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net-common.h"
#include "tide.h"

/* tls-echo-server.c is this file with EX_TLS defined: the same over TLS. */
#ifdef EX_TLS
#include "tls-common.h"
#define NAME "tls-echo-server"
#else
#define NAME "echo-server-stream"
#endif

static struct tide_loop *loop;
static int once; /* --once: stop after the first connection */

/* async def handle_echo(reader, writer), in the connection's task. */
static int64_t handle_echo(struct tide_stream_reader *reader, struct tide_stream_writer *writer, void *arg)
{
	char data[100], message[512], addr[128] = "None";
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	ssize_t n;
	int err;

	/* data = await reader.read(100) */
	n = tide_stream_read(reader, data, sizeof(data));
	if (n < 0) {
		fprintf(stderr, NAME ": read: %s\n", tide_strerror((int)n));
		err = (int)n;
		goto out;
	}
	ex_repr(data, (size_t)n, message, sizeof(message));
	if (tide_stream_get_extra_info(writer, "peername", &ss, &len) == 0)
		ex_format_addr((struct sockaddr *)&ss, len, addr, sizeof(addr));
	printf("Received %s from %s\n", message, addr);

	printf("Send: %s\n", message);
	err = tide_stream_write(writer, data, (size_t)n);
	if (err == 0)
		err = tide_stream_drain(writer);
	if (err < 0)
		fprintf(stderr, NAME ": write: %s\n", tide_strerror(err));

	printf("Close the client socket\n");
	tide_stream_close(writer);
out:
	if (once)
		tide_loop_stop(loop);
	return err < 0 ? err : 0;
}

static void usage(FILE *f)
{
#ifdef EX_TLS
	fprintf(f, "usage: " NAME " [--host H] [--port P] [--once]\n"
		   "       %*s[--cert FILE [--key FILE] | --write-cert FILE]\n",
		(int)sizeof(NAME), "");
#else
	fprintf(f, "usage: " NAME " [--host H] [--port P] [--once]\n");
#endif
	fprintf(f, "  --host H  listen on H (default 127.0.0.1)\n"
		   "  --port P  listen on port P (default 8888; 0: a free port)\n"
		   "  --once    exit after the first client\n");
#ifdef EX_TLS
	fprintf(f, "  --cert FILE  the certificate chain to serve (PEM)\n"
		   "  --key FILE   its private key (PEM; default: in the --cert file)\n"
		   "  --write-cert FILE  without --cert a self-signed certificate for localhost\n"
		   "               and 127.0.0.1 is made at start: write it to FILE (PEM)\n");
#endif
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 8888, rc, err;
	struct ex_args args = { .usage = usage, .host = &host, .port = &port, .once = &once };
	struct tide_future *coro = NULL;
	const struct tide_server_opts *opts = NULL;
#ifdef EX_TLS
	struct ex_tls_args targs = { 0 };
	struct tide_tls_opts tls = { .size = sizeof(tls) };
	struct tide_server_opts sopts = { .size = sizeof(sopts), .tls = &tls };

	args.tls = &targs;
	opts = &sopts;
#endif
	rc = ex_parse_args(argc, argv, &args);
	if (rc >= 0)
		return rc;
	if (ex_loop_open(NAME, 1, &loop) < 0)
		return 1;
#ifdef EX_TLS
	if (ex_tls_server_context(NAME, &targs, &tls.ctx) < 0)
		return ex_loop_done(NAME, loop, -1);
#endif

	/* coro = asyncio.start_server(handle_echo, '127.0.0.1', 8888) */
	err = tide_start_server(loop, &host, 1, port, opts, handle_echo, NULL, &coro);
#ifdef EX_TLS
	SSL_CTX_free(tls.ctx); /* the server holds its own reference */
#endif
	/* server = loop.run_until_complete(coro), then loop.run_forever()
	 * until Ctrl-C or, with --once, the first client is served. Ctrl-C
	 * aborts the connections still open; after --once's client, whose
	 * echo may still be leaving, the close is a graceful one. */
	return ex_run_server(loop, NAME, "start_server", err, coro, !once);
}
