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
 *
 * tls-echo-client is this file built with EX_TLS (tls-echo-client.c):
 * the same client over TLS (tide_open_connection_ex).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net-common.h"
#include "tide.h"

/* tls-echo-client.c is this file with EX_TLS defined: the same over TLS. */
#ifdef EX_TLS
#include "tls-common.h"
#define NAME "tls-echo-client"
#else
#define NAME "echo-client-stream"
#endif

struct client_args {
	const char *host;
	int port;
	const char *message;
#ifdef EX_TLS
	const struct tide_connect_opts *opts; /* the TLS options */
#endif
};

#ifdef EX_TLS
/* What the handshake agreed on: "TLS: TLSv1.3 TLS_AES_256_GCM_SHA384". */
static void print_tls(struct tide_stream_writer *w)
{
	char version[64] = "?", cipher[128] = "?";
	socklen_t len = sizeof(version);

	tide_stream_get_extra_info(w, "version", version, &len);
	len = sizeof(cipher);
	tide_stream_get_extra_info(w, "cipher", cipher, &len);
	printf("TLS: %s %s\n", version, cipher);
}
#endif

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
#ifdef EX_TLS
	err = tide_open_connection_ex(a->host, a->port, a->opts, &reader, &writer);
#else
	err = tide_open_connection(a->host, a->port, &reader, &writer);
#endif
	if (err < 0) {
		fprintf(stderr, NAME ": cannot connect to %s port %d: %s\n", a->host,
			a->port, tide_strerror(err));
		return err;
	}
#ifdef EX_TLS
	print_tls(writer);
#endif

	printf("Send: %s\n", ex_repr(a->message, strlen(a->message), repr, sizeof(repr)));
	err = tide_stream_write(writer, a->message, strlen(a->message));
	if (err < 0) {
		fprintf(stderr, NAME ": write: %s\n", tide_strerror(err));
		goto out;
	}

	/* data = await reader.read(100) */
	n = tide_stream_read(reader, data, sizeof(data));
	if (n < 0) {
		err = (int)n;
		fprintf(stderr, NAME ": read: %s\n", tide_strerror(err));
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
#ifdef EX_TLS
	fprintf(f, "usage: " NAME " [--host H] [--port P] [--cafile FILE] [--server-name NAME]\n"
		   "       %*s[MESSAGE]\n", (int)sizeof(NAME), "");
#else
	fprintf(f, "usage: " NAME " [--host H] [--port P] [MESSAGE]\n");
#endif
	fprintf(f, "  --host H  connect to H (default 127.0.0.1)\n"
		   "  --port P  connect to port P (default 8888)\n");
#ifdef EX_TLS
	fprintf(f, "  --cafile FILE  trust the certificates of FILE (PEM) too, besides the\n"
		   "                 system's\n"
		   "  --server-name NAME  the name the server's certificate must carry, sent as\n"
		   "                 SNI (default: H)\n");
#endif
	fprintf(f, "  MESSAGE   what to send (default 'Hello World!')\n");
}

int main(int argc, char **argv)
{
	struct client_args a = { .host = "127.0.0.1", .port = 8888, .message = "Hello World!" };
	struct ex_args args = { .usage = usage, .host = &a.host, .port = &a.port, .port_min = 1,
				.message = &a.message };
	struct tide_loop *loop;
	struct tide_future *task;
	int rc, err;
#ifdef EX_TLS
	struct ex_tls_args targs = { .client = 1 };
	struct tide_tls_opts tls = { .size = sizeof(tls) };
	struct tide_connect_opts copts = { .size = sizeof(copts), .tls = &tls };

	args.tls = &targs;
#endif
	rc = ex_parse_args(argc, argv, &args);
	if (rc >= 0)
		return rc;
	if (ex_loop_open(NAME, 0, &loop) < 0)
		return 1;
#ifdef EX_TLS
	if (ex_tls_client_context(NAME, &targs, &tls.ctx) < 0)
		return ex_loop_done(NAME, loop, -1);
	tls.server_hostname = targs.server_name;
	a.opts = &copts;
#endif
	/* loop.run_until_complete(tcp_echo_client(message, loop)) */
	err = tide_task_spawn(loop, tcp_echo_client, &a, NULL, &task);
	if (err == 0) {
		err = tide_loop_run_until_complete(loop, task);
		tide_future_unref(task);
	} else {
		fprintf(stderr, NAME ": tide_task_spawn: %s\n", tide_strerror(err));
	}
#ifdef EX_TLS
	SSL_CTX_free(tls.ctx);
#endif
	/* loop.close() */
	return ex_loop_done(NAME, loop, err);
}
