/* SPDX-License-Identifier: MIT */
/*
 * net-common.c: what the networking examples share (net-common.h says
 * what each part is for).
 *
 * The hard part is stopping on SIGINT and SIGTERM cleanly, with one loop
 * per thread: each loop gets its own handlers of both signals
 * (tide_loop_add_signal_handler: every loop that has one runs it, on its
 * own thread, as a callback), which note the signal and stop that loop.
 * A loop made after a signal came is stopped at once. Each loop's end
 * then closes its server (no more accepts) and its connections, and
 * ex_serve prints one line on what was served.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net-common.h"
#include "tide.h"

/* ---------------------------------------------------------- options -- */

/* A decimal int in [min, max], whole string; 0 or -EINVAL. */
static int parse_int(const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Seconds: a decimal number >= 0, at most a year; 0 or -EINVAL. */
static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0) || v > 366 * 86400.0)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A byte count of at least 1, with a k, m or g suffix for KiB, MiB, GiB;
 * 0 or -EINVAL. */
static int parse_size(const char *s, size_t *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end == 'k' || *end == 'K')
		shift = 10;
	else if (*end == 'm' || *end == 'M')
		shift = 20;
	else if (*end == 'g' || *end == 'G')
		shift = 30;
	if (shift)
		end++;
	if (errno || *end || !v || v > (SIZE_MAX >> shift))
		return -EINVAL;
	*out = (size_t)v << shift;
	return 0;
}

/* One of the TLS options (--cert FILE...); 1 if s was one. */
static int parse_tls_opt(struct ex_tls_args *t, const char *s, const char *v, int *bad)
{
	const char **target = NULL;

	if (!t)
		return 0;
	if (t->client) {
		if (!strcmp(s, "--cafile"))
			target = &t->cafile;
		else if (!strcmp(s, "--server-name"))
			target = &t->server_name;
	} else {
		if (!strcmp(s, "--cert"))
			target = &t->cert;
		else if (!strcmp(s, "--key"))
			target = &t->key;
		else if (!strcmp(s, "--write-cert"))
			target = &t->write_cert;
	}
	if (!target)
		return 0;
	*bad = !v || !*v;
	*target = v;
	return 1;
}

/* One of the example's own byte-count options (--name BYTES); 1 if s was one. */
static int parse_size_opt(const struct ex_args *a, const char *s, const char *v, int *bad)
{
	for (const struct ex_size_opt *o = a->sizes; o && o->name; o++) {
		if (!strcmp(s, o->name)) {
			*bad = !v || parse_size(v, o->target) < 0;
			return 1;
		}
	}
	return 0;
}

int ex_parse_args(int argc, char **argv, const struct ex_args *a)
{
	int nargs = 0, bad = 0;

	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (a->port && !strcmp(s, "--port") && i + 1 < argc) {
			if (parse_int(argv[++i], a->port_min, 65535, a->port) < 0)
				goto usage;
		} else if (a->threads && !strcmp(s, "--threads") && i + 1 < argc) {
			if (parse_int(argv[++i], 1, EX_MAX_THREADS, a->threads) < 0)
				goto usage;
		} else if (a->host && !strcmp(s, "--host") && i + 1 < argc) {
			*a->host = argv[++i];
		} else if (a->idle_timeout && !strcmp(s, "--idle-timeout") && i + 1 < argc) {
			if (parse_seconds(argv[++i], a->idle_timeout) < 0)
				goto usage;
		} else if (a->request_timeout && !strcmp(s, "--request-timeout") && i + 1 < argc) {
			if (parse_seconds(argv[++i], a->request_timeout) < 0)
				goto usage;
		} else if (a->max_clients && !strcmp(s, "--max-clients") && i + 1 < argc) {
			if (parse_int(argv[++i], 1, INT_MAX, a->max_clients) < 0)
				goto usage;
		} else if (a->max_buffered && !strcmp(s, "--max-buffered") && i + 1 < argc) {
			if (parse_size(argv[++i], a->max_buffered) < 0)
				goto usage;
		} else if (parse_size_opt(a, s, i + 1 < argc ? argv[i + 1] : NULL, &bad) ||
			   parse_tls_opt(a->tls, s, i + 1 < argc ? argv[i + 1] : NULL, &bad)) {
			if (bad)
				goto usage;
			i++;
		} else if (a->once && !strcmp(s, "--once")) {
			*a->once = 1;
		} else if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
			a->usage(stdout);
			return 0;
		} else if (a->message && !(s[0] == '-' && s[1] == '-' && s[2]) && nargs++ == 0) {
			*a->message = s;
		} else {
			goto usage;
		}
	}
	/* A key is a certificate's; a certificate written is one made here. */
	if (a->tls && ((a->tls->key && !a->tls->cert) || (a->tls->write_cert && a->tls->cert)))
		goto usage;
	return -1;
usage:
	a->usage(stderr);
	return 2;
}

/* ------------------------------------------------------------- repr() -- */

/*
 * Single quotes unless the text holds a ' and no ", backslash escapes for
 * the quote, \\, \n, \r, \t, and \xNN for other control characters. Bytes
 * >= 0x80 pass through (the tutorial decodes UTF-8, whose printable
 * characters repr() leaves as they are).
 */
const char *ex_repr(const void *data, size_t n, char *out, size_t cap)
{
	const unsigned char *s = data;
	char quote = '\'';
	size_t o = 0;

	if (memchr(s, '\'', n) && !memchr(s, '"', n))
		quote = '"';
	if (cap < 8) {
		if (cap)
			out[0] = '\0';
		return out;
	}
	out[o++] = quote;
	for (size_t i = 0; i < n; i++) {
		char esc[5];
		unsigned c = s[i];

		if (c == (unsigned char)quote || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c == '\n')
			strcpy(esc, "\\n");
		else if (c == '\r')
			strcpy(esc, "\\r");
		else if (c == '\t')
			strcpy(esc, "\\t");
		else if (c < 0x20 || c == 0x7f)
			snprintf(esc, sizeof(esc), "\\x%02x", c);
		else {
			esc[0] = (char)c;
			esc[1] = '\0';
		}
		size_t len = strlen(esc);
		/* Room for this, the closing quote, "..." and the NUL. */
		if (o + len + 5 > cap) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, esc, len);
		o += len;
	}
	out[o++] = quote;
	out[o] = '\0';
	return out;
}

/* -------------------------------------------------------- addresses -- */

const char *ex_format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, cap, "('%s', %u)", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, cap, "('%s', %u, %u, %u)", host, ntohs(in6->sin6_port),
			 (unsigned)ntohl(in6->sin6_flowinfo), (unsigned)in6->sin6_scope_id);
	} else if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)sa;

		snprintf(out, cap, "'%s'", un->sun_path);
	} else {
		snprintf(out, cap, "(family %d)", sa->sa_family);
	}
	return out;
}

/* server.sockets[0].getsockname(), formatted; "?" if there is no socket. */
static const char *server_sockname(const struct tide_server *s, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd;

	if (tide_server_sockets(s, &fd, 1) < 1 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		snprintf(out, cap, "?");
		return out;
	}
	return ex_format_addr((struct sockaddr *)&ss, len, out, cap);
}

/* ---------------------------------------------------------- signals -- */

/* The signal that stopped the examples (0: none yet); the first one wins. */
static atomic_int stop_signal;
/* What ex_serve's servers did, over all threads, for its last line. */
static atomic_ulong served_connections;
static atomic_ulong served_requests;

static void stop_loop_cb(void *arg)
{
	tide_loop_stop(arg);
}

static void stopped_by(struct tide_loop *loop, int signo)
{
	int none = 0;

	atomic_compare_exchange_strong(&stop_signal, &none, signo);
	tide_loop_stop(loop);
}

static void on_sigint(void *arg)
{
	stopped_by(arg, SIGINT);
}

static void on_sigterm(void *arg)
{
	stopped_by(arg, SIGTERM);
}

/* The next SIGINT or SIGTERM stops loop (at once if one came already). */
static int signals_add(struct tide_loop *loop)
{
	int err = tide_loop_add_signal_handler(loop, SIGINT, on_sigint, loop);

	if (err == 0)
		err = tide_loop_add_signal_handler(loop, SIGTERM, on_sigterm, loop);
	if (err == 0 && atomic_load(&stop_signal))
		err = tide_call_soon(loop, stop_loop_cb, loop, NULL);
	return err;
}

/* Before the loop is freed (a loop never added has none: no-op). When the
 * last loop lets go, the signals' dispositions are the program's again. */
static void signals_remove(struct tide_loop *loop)
{
	tide_loop_remove_signal_handler(loop, SIGINT);
	tide_loop_remove_signal_handler(loop, SIGTERM);
}

/* ------------------------------------------------------- main's loop -- */

int ex_loop_open(const char *name, int signals, struct tide_loop **loop)
{
	int err = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	err = tide_loop_new(NULL, loop);
	if (err < 0) {
		fprintf(stderr, "%s: cannot start a loop: %s\n", name, tide_loop_new_error());
		return err;
	}
	if (signals && (err = signals_add(*loop)) < 0) {
		fprintf(stderr, "%s: cannot set up the signals: %s\n", name, tide_strerror(err));
		tide_loop_free(*loop);
		*loop = NULL;
		return err;
	}
	return 0;
}

/*
 * Winds the loop down (what was closed runs its last callbacks), then
 * frees it. thread: the worker's number in messages, or -1 for none.
 */
static int loop_finish(struct tide_loop *loop, const char *name, int thread)
{
	char who[160];
	int err = tide_loop_shutdown(loop, 10.0);

	if (thread >= 0)
		snprintf(who, sizeof(who), "%s: thread %d", name, thread);
	else
		snprintf(who, sizeof(who), "%s", name);
	if (err < 0)
		fprintf(stderr, "%s: tide_loop_shutdown: %s\n", who, tide_strerror(err));
	tide_loop_close(loop);
	if (tide_loop_free(loop) != 0) {
		fprintf(stderr, "%s: tide_loop_free: busy\n", who);
		return -1;
	}
	return err < 0 ? -1 : 0;
}

int ex_loop_done(const char *name, struct tide_loop *loop, int err)
{
	signals_remove(loop);
	if (loop_finish(loop, name, -1) < 0)
		return 1;
	return err < 0 ? 1 : 0;
}

/* The task that closes a server and waits for its connections to go. */
static int64_t close_server_task(void *arg)
{
	struct tide_server *s = arg;

	tide_server_close(s);
	return tide_server_wait_closed(s);
}

/*
 * server.close(); loop.run_until_complete(server.wait_closed()), then
 * frees the server. close_clients: close the open connections too (with
 * abort: their buffers dropped), as a server stopping for good does.
 * Returns 0 or the first error.
 */
static int close_server(struct tide_loop *loop, struct tide_server *s, int close_clients)
{
	struct tide_future *task;
	int err;

	tide_server_close(s);
	if (close_clients)
		tide_server_close_clients(s, 1);
	err = tide_task_spawn(loop, close_server_task, s, NULL, &task);
	if (err == 0) {
		/* A second Ctrl-C stops the loop again: carry on closing. */
		do
			err = tide_loop_run_until_complete(loop, task);
		while (err == TIDE_ESTOPPED);
		tide_future_unref(task);
	}
	/* Its end runs in the loop: tide_loop_shutdown waits for it. */
	tide_server_free(s);
	return err;
}

int ex_run_server(struct tide_loop *loop, const char *name, const char *what, int err,
		  struct tide_future *coro, int close_clients)
{
	struct tide_server *server;
	char sockname[128];
	void *ptr = NULL;

	if (err == 0) {
		/* server = loop.run_until_complete(coro): the server is
		 * taken from the future, which would free it with itself. */
		err = tide_loop_run_until_complete(loop, coro);
		if (err == 0)
			ptr = tide_future_take_ptr(coro);
		tide_future_unref(coro);
	}
	if (err < 0) {
		fprintf(stderr, "%s: %s: %s\n", name, what, tide_strerror(err));
		return ex_loop_done(name, loop, err);
	}
	server = ptr;
	printf("Serving on %s\n", server_sockname(server, sockname, sizeof(sockname)));

	/* loop.run_forever(), until Ctrl-C or what the example stops it for */
	err = tide_loop_run(loop);
	if (err < 0)
		fprintf(stderr, "%s: run: %s\n", name, tide_strerror(err));

	/* server.close(); loop.run_until_complete(server.wait_closed()) */
	if (close_server(loop, server, close_clients) < 0 && err == 0)
		err = -1;
	return ex_loop_done(name, loop, err);
}

/* ------------------------------------------------------ the answers -- */

/* Write the answers once they reach this, without waiting for the rest. */
#define FLUSH_AT (64 * 1024)

/* Makes *buf (*cap bytes) hold need, doubling from first; 0 or -ENOMEM. */
static int reserve(char **buf, size_t *cap, size_t need, size_t first)
{
	size_t n = *cap ? *cap : first;
	char *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

void ex_out_put(struct ex_out *o, const void *p, size_t n)
{
	if (reserve(&o->p, &o->cap, o->len + n, 16384) < 0) {
		o->failed = 1;
		return;
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

/* Writes what c->out gathered; a failure (of the gathering too) aborts c. */
static void conn_flush(struct ex_conn *c)
{
	struct ex_out *o = c->out;
	int err = 0;

	if (o->failed) {
		o->failed = 0;
		err = -ENOMEM;
	} else if (o->len) {
		err = tide_transport_write(c->t, o->p, o->len);
	}
	o->len = 0;
	if (err < 0) {
		tide_transport_abort(c->t);
		c->closing = c->closed = 1;
		c->discard = 0;
	}
}

/*
 * Answers every complete request at p, and drops the bytes of c->discard
 * (after the last request too); returns how many bytes they took.
 */
static size_t conn_answer_all(struct ex_conn *c, const char *p, size_t n, int *ended)
{
	size_t off = 0;

	while (off < n && (!c->closing || c->discard)) {
		long r;

		if (c->discard) {
			size_t k = c->discard < n - off ? c->discard : n - off;

			c->discard -= k;
			off += k;
			continue;
		}
		r = c->opts->answer(c, p + off, n - off);

		if (r == 0)
			break;
		if (r < 0) {
			c->closing = 1;
			break;
		}
		*ended = 1;
		atomic_fetch_add_explicit(&served_requests, 1, memory_order_relaxed);
		off += (size_t)r;
		if (c->out->len >= FLUSH_AT)
			conn_flush(c);
	}
	return off;
}

/* The memory all connections' partial requests hold (max_pending_total). */
static atomic_size_t pending_total;
/* The connections open, over all threads (max_clients). */
static atomic_int clients;

/*
 * Keeps n bytes of a partial request for the next data_received:
 * -ENOBUFS past max_pending or max_pending_total (the connection is then
 * closed), -ENOMEM.
 */
static int conn_keep(struct ex_conn *c, const void *p, size_t n)
{
	const struct ex_serve_opts *o = c->opts;
	size_t cap = c->cap, total;

	if (o->max_pending && c->len + n > o->max_pending)
		return -ENOBUFS;
	if (reserve(&c->buf, &c->cap, c->len + n, 1024) < 0)
		return -ENOMEM;
	if (c->cap > cap) {
		total = atomic_fetch_add(&pending_total, c->cap - cap) + (c->cap - cap);
		if (o->max_pending_total && total > o->max_pending_total)
			return -ENOBUFS; /* conn_lost gives it back */
	}
	memmove(c->buf + c->len, p, n);
	c->len += n;
	return 0;
}

/* No partial request left: a buffer a big one grew goes back. */
static void conn_shrink(struct ex_conn *c)
{
	if (c->len == 0 && c->cap > 16384) {
		atomic_fetch_sub(&pending_total, c->cap);
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
}

/*
 * The request deadline after a receive: set when a request is left
 * incomplete (or a body to drop), set again when the receive ended a
 * request and the bytes left begin another, cleared when none is left.
 * Setting a later deadline costs the transport no timer operation.
 */
static void conn_deadline(struct ex_conn *c, int ended)
{
	int pending = (c->len || c->discard) && !c->closed;
	double when = 0;

	if (!c->opts->request_timeout || (pending && c->deadline && !ended) || (!pending && !c->deadline))
		return;
	if (pending)
		when = tide_loop_time(tide_transport_loop(c->t)) + c->opts->request_timeout;
	c->deadline = pending;
	if (tide_transport_set_deadline(c->t, when) < 0) {
		tide_transport_abort(c->t); /* no memory to time it: it cannot stay */
		c->closing = c->closed = 1;
	}
}

static void conn_made(struct tide_transport *t, void *proto)
{
	struct ex_conn *c = proto;
	const struct ex_serve_opts *o = c->opts;
	struct tide_timeouts to = { .size = sizeof(to), .idle = o->idle_timeout };

	c->t = t;
	atomic_fetch_add_explicit(&served_connections, 1, memory_order_relaxed);
	/* Over the cap: told so, and closed (it counted for a moment). */
	if (atomic_fetch_add(&clients, 1) >= o->max_clients) {
		atomic_fetch_sub(&clients, 1);
		if (o->refuse)
			tide_transport_write(t, o->refuse, strlen(o->refuse));
		c->closing = c->closed = 1;
		tide_transport_close(t);
		return;
	}
	c->counted = 1;
	if (o->idle_timeout > 0 && tide_transport_set_timeouts(t, &to) < 0) {
		tide_transport_abort(t);
		c->closing = c->closed = 1;
	}
}

static void conn_data_received(struct tide_transport *t, const void *data, size_t n, void *proto)
{
	struct ex_conn *c = proto;
	int ended = 0;
	size_t used;

	if (c->closed)
		return;
	if (c->len == 0) {
		/* The common case: whole requests, parsed where they arrived. */
		used = conn_answer_all(c, data, n, &ended);
		if (used < n && !c->closing && conn_keep(c, (const char *)data + used, n - used) < 0)
			c->closing = 1;
	} else {
		if (conn_keep(c, data, n) < 0) {
			tide_transport_abort(t);
			c->closing = c->closed = 1;
			return;
		}
		/* The pending request is parsed on from where its parser
		 * stopped (c->state), not again from its first byte. */
		used = conn_answer_all(c, c->buf, c->len, &ended);
		if (used) {
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			conn_shrink(c);
		}
	}
	conn_flush(c);
	/* After the answers already written, and the last request's body. */
	if (c->closing && !c->discard) {
		c->closed = 1;
		tide_transport_close(t);
	}
	conn_deadline(c, ended);
}

static void conn_lost(struct tide_transport *t, int err, void *proto)
{
	struct ex_conn *c = proto;

	if (c->counted)
		atomic_fetch_sub(&clients, 1);
	atomic_fetch_sub(&pending_total, c->cap);
	free(c->buf);
	free(c);
}

/* The client does not read its answers: stop reading its requests. */
static void conn_pause_writing(struct tide_transport *t, void *proto)
{
	tide_transport_pause_reading(t);
}

static void conn_resume_writing(struct tide_transport *t, void *proto)
{
	tide_transport_resume_reading(t);
}

static const struct tide_protocol_ops conn_ops = {
	.size = sizeof(conn_ops),
	.connection_made = conn_made,
	.data_received = conn_data_received,
	.connection_lost = conn_lost,
	.pause_writing = conn_pause_writing,
	.resume_writing = conn_resume_writing,
};

/* The protocol factory: its arg is the struct ex_worker *. */
static int conn_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	struct ex_worker *w = arg;
	struct ex_conn *c = calloc(1, sizeof(*c) + w->opts->state_size);

	if (!c)
		return -ENOMEM;
	c->state = c + 1;
	c->opts = w->opts;
	c->out = &w->out;
	c->w = w->data;
	*ops = &conn_ops;
	*proto = c;
	return 0;
}

/* ------------------------------------------------ threads of loops -- */

static int worker_start(struct ex_worker *w)
{
	const struct ex_serve_opts *o = w->opts;
	struct tide_server_opts sopts = { .size = sizeof(sopts),
					  .reuse_port = o->threads > 1, .tls = o->tls };
	struct tide_future *f;
	void *ptr = NULL;
	int err;

	err = tide_loop_new(NULL, &w->loop);
	if (err < 0) {
		snprintf(w->why, sizeof(w->why), "cannot start a loop: %s", tide_loop_new_error());
		return err;
	}
	if ((err = signals_add(w->loop)) < 0) {
		snprintf(w->why, sizeof(w->why), "cannot set up the signals: %s", tide_strerror(err));
		return err;
	}
	if (o->loop_init) {
		err = o->loop_init(w);
		if (err < 0) {
			snprintf(w->why, sizeof(w->why), "cannot set up the loop: %s", tide_strerror(err));
			return err;
		}
	}
	err = tide_create_server(w->loop, o->host ? &o->host : NULL, o->host ? 1 : 0, w->port,
				 &sopts, conn_factory, w, &f);
	if (err == 0) {
		err = tide_loop_run_until_complete(w->loop, f);
		if (err == 0)
			ptr = tide_future_take_ptr(f); /* ours to free, not the future's */
		tide_future_unref(f);
	}
	if (err < 0) {
		snprintf(w->why, sizeof(w->why), "cannot serve on %s port %d: %s",
			 o->host ? o->host : "every interface,", w->port, tide_strerror(err));
		return err;
	}
	w->server = ptr;
	return 0;
}

/* Undoes worker_start (also a partial one); 0, or -1 if something failed. */
static int worker_stop(struct ex_worker *w)
{
	int failed = 0;

	if (!w->loop)
		return 0;
	if (w->server && close_server(w->loop, w->server, 1) < 0)
		failed = 1;
	if (w->opts->loop_fini)
		w->opts->loop_fini(w);
	signals_remove(w->loop);
	if (loop_finish(w->loop, w->opts->name, w->index) < 0)
		failed = 1;
	w->loop = NULL;
	free(w->out.p);
	w->out.p = NULL;
	return failed ? -1 : 0;
}

static void *worker_main(void *arg)
{
	struct ex_worker *w = arg;

	w->err = worker_start(w);
	sem_post(w->ready);
	if (w->err == 0) {
		int err = tide_loop_run(w->loop);

		if (err < 0)
			w->err = err;
	}
	if (worker_stop(w) < 0 && w->err == 0)
		w->err = -1;
	return NULL;
}

/*
 * The first loop starts in the calling thread, first, so that the other
 * threads get the real port when o->port is 0.
 */
/* Redis's maxclients: 10,000, or what the fd limit allows less 32 for the
 * listening sockets, loops and the refusals' own accepts. */
static int default_max_clients(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 10000 + 32)
		return 10000;
	return rl.rlim_cur > 64 ? (int)rl.rlim_cur - 32 : 32;
}

int ex_serve(const struct ex_serve_opts *opts)
{
	struct ex_serve_opts oc = *opts, *o = &oc;
	struct ex_worker workers[EX_MAX_THREADS];
	int started = 1, failed = 0, port, err;
	char name[128];
	sem_t ready;

	if (!o->max_clients)
		o->max_clients = default_max_clients();

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (o->threads < 1 || o->threads > EX_MAX_THREADS || sem_init(&ready, 0, 0) < 0)
		return 2;
	memset(workers, 0, sizeof(workers));
	for (int i = 0; i < o->threads; i++) {
		workers[i].index = i;
		workers[i].opts = o;
		workers[i].ready = &ready;
	}
	workers[0].port = o->port;
	err = worker_start(&workers[0]);
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", o->name, workers[0].why);
		worker_stop(&workers[0]);
		sem_destroy(&ready);
		return 1;
	}
	port = tide_server_port(workers[0].server);
	for (int i = 1; i < o->threads; i++, started++) {
		workers[i].port = port;
		err = pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
		if (err != 0) {
			fprintf(stderr, "%s: pthread_create: %s\n", o->name, tide_strerror(-err));
			failed = 1;
			break;
		}
	}
	for (int i = 1; i < started; i++)
		sem_wait(&ready);
	for (int i = 1; i < started; i++) {
		if (workers[i].err < 0) {
			fprintf(stderr, "%s: thread %d: %s\n", o->name, i, workers[i].why[0] ? workers[i].why : tide_strerror(workers[i].err));
			failed = 1;
		}
	}
	if (!failed) {
		printf("Serving on %s with %d thread%s (backend %s)\n",
		       server_sockname(workers[0].server, name, sizeof(name)), o->threads,
		       o->threads == 1 ? "" : "s", tide_loop_backend(workers[0].loop));
		err = tide_loop_run(workers[0].loop);
		if (err < 0) {
			fprintf(stderr, "%s: run: %s\n", o->name, tide_strerror(err));
			failed = 1;
		}
	} else {
		/* Stop the threads that did start, as Ctrl-C would. */
		for (int i = 1; i < started; i++)
			if (workers[i].err == 0)
				tide_call_soon_threadsafe(workers[i].loop, stop_loop_cb, workers[i].loop);
	}
	if (worker_stop(&workers[0]) < 0)
		failed = 1;
	for (int i = 1; i < started; i++) {
		pthread_join(workers[i].thread, NULL);
		if (workers[i].err < 0)
			failed = 1;
	}
	sem_destroy(&ready);
	/* Every server closed, every connection gone: what they did. */
	if (atomic_load(&stop_signal))
		printf("%s: stopped by %s after %lu connection%s, %lu request%s\n", o->name,
		       atomic_load(&stop_signal) == SIGINT ? "SIGINT" : "SIGTERM",
		       atomic_load(&served_connections), atomic_load(&served_connections) == 1 ? "" : "s",
		       atomic_load(&served_requests), atomic_load(&served_requests) == 1 ? "" : "s");
	return failed;
}
