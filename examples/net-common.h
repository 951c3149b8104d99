/* SPDX-License-Identifier: MIT */
/*
 * net-common.h: what the networking examples share, so that each example's
 * file is only its tutorial's logic. The code is in net-common.c.
 *
 * - ex_parse_args(): the examples' options (--host, --port, --once,
 *   --threads, MESSAGE, the servers' limits: --idle-timeout,
 *   --request-timeout, --max-clients, --max-buffered and byte counts of
 *   their own, the TLS examples' certificates), parsed strictly, one table
 *   per example.
 * - ex_repr(): Python's repr() of a decoded str, because the tutorial prints
 *   '{!r}'.format(message) and the examples print exactly what it prints.
 * - ex_format_addr(): a socket address as Python's socket module gives it:
 *   ('127.0.0.1', 53248) or ('::1', 53248, 0, 0).
 * - ex_loop_open(), ex_loop_done(): main's loop, made (with Ctrl-C and
 *   SIGTERM stopping it cleanly, for the servers: the tutorial's
 *   `except KeyboardInterrupt: pass`) and closed and freed.
 * - ex_run_server(): the tutorial servers' main once create_server or
 *   start_server was called: serve until stopped, then server.close(),
 *   wait_closed() and loop.close().
 * - ex_serve(): the servers with --threads N (http-hello, mini-redis): N
 *   loops, one per thread, each with its own listening socket on one port
 *   (SO_REUSEPORT), until a signal stops them all (then a summary line). Their connections are
 *   struct ex_conn: the example only parses and answers one request.
 *   They are bounded against slow and greedy clients: idle and request
 *   timeouts, a cap on connections, on a partial request and on all
 *   partial requests together.
 */
#ifndef EXAMPLES_NET_COMMON_H
#define EXAMPLES_NET_COMMON_H

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/socket.h>

#include "tide.h"

/* ---------------------------------------------------------- options -- */

#define EX_MAX_THREADS 64

/* An example's own option of a byte count: --name BYTES, at least 1 (a k,
 * m or g suffix: KiB, MiB, GiB). */
struct ex_size_opt {
	const char *name;         /* "--max-bulk" */
	size_t *target;
};

/*
 * The TLS examples' options (https-hello, tls-echo-server, tls-echo-client;
 * tls-common.c makes their context). A server takes --cert FILE and --key
 * FILE (PEM; no --key: the key is in the certificate's file) or, without
 * them, makes a self-signed certificate, which --write-cert FILE writes
 * out. A client takes --cafile FILE (more certificates to trust) and
 * --server-name NAME (the name its peer's certificate must carry, and SNI;
 * default: --host).
 */
struct ex_tls_args {
	int client;               /* takes a client's options, not a server's */
	const char *cert, *key, *write_cert;
	const char *cafile, *server_name;
};

/*
 * An example's options: a NULL target means the example has no such
 * option (it is then a usage error).
 */
struct ex_args {
	void (*usage)(FILE *f);   /* prints the example's usage text */
	const char **host;        /* --host H */
	int *port;                /* --port P, in [port_min, 65535] */
	int port_min;             /* 0 for servers (0: a free port), 1 for clients */
	int *threads;             /* --threads N, 1 ... EX_MAX_THREADS */
	int *once;                /* --once sets it to 1 */
	const char **message;     /* one argument not starting with "--" */
	double *idle_timeout;     /* --idle-timeout S, seconds >= 0 */
	double *request_timeout;  /* --request-timeout S, seconds >= 0 */
	int *max_clients;         /* --max-clients N, >= 1 */
	size_t *max_buffered;     /* --max-buffered BYTES, at least 1 */
	const struct ex_size_opt *sizes; /* more options, up to one with a NULL name */
	struct ex_tls_args *tls;  /* the TLS options (NULL: none) */
};

/*
 * Parses argv into a's targets. Returns -1 to go on, else main's exit
 * status: 0 after --help or -h (the usage on stdout), 2 after anything
 * else it does not take (the usage on stderr).
 */
int ex_parse_args(int argc, char **argv, const struct ex_args *a);

/* ---------------------------------------------------- what is printed -- */

/*
 * Python's repr(str) into out (cap bytes, always terminated; cut short with
 * "..." if it does not fit). Returns out.
 */
const char *ex_repr(const void *data, size_t n, char *out, size_t cap);

/* A sockaddr as Python prints the tuple (or the path of a Unix socket). */
const char *ex_format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t cap);

/* ------------------------------------------------------- main's loop -- */

/*
 * Line-buffers stdout (the demo reads it through a pipe) and makes *loop.
 * signals: the next SIGINT or SIGTERM stops the loop (the loop's own
 * handlers of them, tide_loop_add_signal_handler). 0, or -errno after a
 * message on stderr.
 */
int ex_loop_open(const char *name, int signals, struct tide_loop **loop);

/*
 * loop.close(), then frees the loop. Returns main's exit status: 1 if err
 * < 0 or the loop is still busy, else 0.
 */
int ex_loop_done(const char *name, struct tide_loop *loop, int err);

/*
 * The tutorial servers' main from `coro = loop.create_server(...)` (or
 * asyncio.start_server) on; err and coro are what tide_create_server or
 * tide_start_server returned, what names that call in messages:
 *
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
 * close_clients: server.close() aborts the connections still open (as at
 * Ctrl-C), else they finish gracefully. Takes coro's reference and the
 * loop; returns main's exit status.
 */
int ex_run_server(struct tide_loop *loop, const char *name, const char *what, int err,
		  struct tide_future *coro, int close_clients);

/* ------------------------------------ servers with threads of loops -- */

/*
 * The answers a loop gathers for one write. Its connections take turns
 * (each writes what it gathered before its data_received returns), so one
 * buffer per loop serves them all.
 */
struct ex_out {
	char *p;
	size_t len, cap;
	int failed;               /* out of memory while gathering */
};

void ex_out_put(struct ex_out *o, const void *p, size_t n);
#define EX_OUT_LIT(o, s) ex_out_put((o), (s), sizeof(s) - 1)

struct ex_serve_opts;

/* One loop and its thread. */
struct ex_worker {
	int index;                /* 0 runs in main's thread */
	pthread_t thread;
	struct tide_loop *loop;
	struct tide_server *server;
	int err;                  /* what went wrong, or 0 */
	char why[400];            /* what failed, in words, when err < 0 */
	const struct ex_serve_opts *opts;
	sem_t *ready;             /* posted once serving (or failed) */
	int port;                 /* the port to listen on */
	struct ex_out out;        /* the answers being gathered */
	void *data;               /* the example's own per-loop state */
};

/*
 * One connection of ex_serve's servers, the protocol instance.
 * data_received parses the requests straight from the bytes the transport
 * hands over (from io_uring's provided buffers, without a copy), answers
 * every complete one (so pipelined requests cost one write for the lot),
 * and copies only the partial request left at the end, if any, to buf.
 * When the client does not read its answers, pause_writing stops reading
 * its requests until the write buffer drains.
 */
struct ex_conn {
	struct tide_transport *t;
	const struct ex_serve_opts *opts;
	struct ex_out *out;       /* the loop's answers (struct ex_worker's data) */
	void *w;                  /* the loop's state (struct ex_worker's data) */
	void *state;              /* the example's per-connection state (its parser's), zeroed */
	char *buf;                /* the partial request left over from earlier data */
	size_t len, cap;
	size_t discard;           /* bytes to drop before the next request (a body nobody reads) */
	int closing;              /* answered a last request or an error: no more requests */
	int closed;               /* tide_transport_close was called */
	int counted;              /* counts in max_clients */
	int deadline;             /* a request deadline is set */
};

struct ex_serve_opts {
	const char *name;         /* for messages */
	const char *host;         /* NULL: every interface */
	int port;                 /* 0: a free one, which all threads share */
	int threads;              /* 1 ... EX_MAX_THREADS */
	/*
	 * Answers the request at the start of p (n bytes) into c->out: its
	 * length (> 0), 0 while it is incomplete, or < 0 once an error is
	 * answered (the connection is then closed). Setting c->closing makes
	 * it the last request; setting c->discard drops that many bytes
	 * after it, as they arrive (a body read and ignored, never kept).
	 * An incomplete request is given again, with more bytes, when they
	 * come: p is then the same request's first byte, possibly moved.
	 */
	long (*answer)(struct ex_conn *c, const char *p, size_t n);
	/* The bytes of c->state, zeroed when the connection is made (its
	 * parser's state: how far an incomplete request was parsed). */
	size_t state_size;
	/* How long a partial request may grow, in bytes (0: no limit); past
	 * it the connection is closed without an answer. */
	size_t max_pending;
	/* The same for the partial requests of all connections together,
	 * counted as the memory they hold (0: no limit). */
	size_t max_pending_total;
	/*
	 * A connection is closed after idle_timeout seconds without traffic
	 * (tide_transport_set_timeouts), and when a request takes more than
	 * request_timeout seconds from its first byte to its last: the
	 * deadline (tide_transport_set_deadline) is set when a receive leaves
	 * a request incomplete, again when one ends with another begun (or a
	 * body to drop), and cleared when none is left. 0: none.
	 */
	double idle_timeout;
	double request_timeout;
	/* Connections at once, over all threads (0: the fd limit less 32, at
	 * most 10,000, as Redis's maxclients); past it a connection gets
	 * refuse (if not NULL) and is closed. */
	int max_clients;
	const char *refuse;
	/* TLS on every connection (https-hello); NULL: plain. */
	const struct tide_tls_opts *tls;
	/* Per loop, before its server exists / after it is closed (may be NULL). */
	int (*loop_init)(struct ex_worker *w);
	void (*loop_fini)(struct ex_worker *w);
};

/*
 * Serves until SIGINT or SIGTERM; returns main's exit status. "Serving on
 * ..." is printed once every thread listens. A signal stops every loop
 * (each has its own handlers): each stops accepting, closes its
 * connections and is freed, then one line says what was served, as
 * "NAME: stopped by SIGTERM after N connections, M requests", and the
 * status is 0.
 */
int ex_serve(const struct ex_serve_opts *o);

#endif /* EXAMPLES_NET_COMMON_H */
