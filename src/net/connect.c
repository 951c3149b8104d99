/* SPDX-License-Identifier: MIT */
/*
 * connect.c: asyncio's create_connection (TCP and unix): resolve the host
 * (on the executor unless numeric), connect to its addresses in turn, and
 * hand the connected socket to a stream transport.
 *
 * The hard part is a cancel at any step (while the lookup runs, while a
 * connect is in flight): the future ends cancelled, whatever step was
 * running finishes on its own, and nothing it made (the address list, a
 * socket, a transport) outlives it.
 */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * Small writes go out at once, not after the peer's ACK of the last ones:
 * asyncio turns Nagle's algorithm off on every TCP transport it makes
 * (base_events._set_nodelay). A failure only costs latency.
 */
void tide__set_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int tide__unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len)
{
	size_t n;

	if (!path || !*path)
		return -EINVAL;
	n = strlen(path);
	if (n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

/*
 * Can the caller's fd be wrapped (tide_create_connection_sock and its
 * kin, tide.h)? 0, or the contract's error, fd untouched: -EINVAL (fd <
 * 0), -EBADF (not open), -ENOTSOCK, -EPROTOTYPE (not SOCK_STREAM), and
 * with connected -ENOTCONN (no peer, a connect still in progress too).
 */
int tide__sock_check(int fd, bool connected)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(int);
	int type;

	if (fd < 0)
		return -EINVAL;
	if (fcntl(fd, F_GETFD) < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	if (type != SOCK_STREAM)
		return -EPROTOTYPE;
	len = sizeof(ss);
	if (connected && getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	return 0;
}

/* The checked fd is tide's from here: non-blocking and close-on-exec
 * (F_GETFL and F_SETFD cannot fail on an open fd). */
void tide__sock_take(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0 && !(fl & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	fl = fcntl(fd, F_GETFD);
	if (fl >= 0 && !(fl & FD_CLOEXEC))
		(void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* ------------------------------------------------------------ connecting -- */

/* An in-progress create_connection: resolving, then trying each address. */
struct conn_req {
	struct tide_loop *loop;
	struct tide_future *out;     /* the caller's (a reference) */
	struct tide_future *step;    /* the resolution or connect in flight */
	const struct tide_protocol_ops *ops;
	void *proto;
	struct addrinfo *list, *next;
	int fd;
	int kind;                    /* TIDE__T_STREAM or TIDE__T_DGRAM */
	int last_err;
	bool cancelled;
	struct sockaddr_un sun;      /* unix connections */
	socklen_t sunlen;
	struct tide__tls_conf *tls;  /* TLS (tide_create_connection_ex), or NULL */
	struct tide_transport *hs;   /* the TLS transport whose handshake runs, or NULL */
};

static void conn_try_next(struct conn_req *r);

static void transport_unref_cb(void *t)
{
	tide_transport_unref(t);
}

void tide__future_end_transport(struct tide_future *f, int err, struct tide_transport *t)
{
	if (err) {
		tide_future_set_error(f, err);
		return;
	}
	f->ptr_release = transport_unref_cb;
	tide_future_set_result(f, 0, tide_transport_ref(t));
}

static void conn_req_end(struct conn_req *r, int err, struct tide_transport *t)
{
	if (r->list)
		freeaddrinfo(r->list);
	tide__tls_conf_unref(r->tls);
	if (!tide_future_done(r->out))
		tide__future_end_transport(r->out, err, t);
	tide_future_unref(r->out);
	tide__free(r);
}

/*
 * The TLS handshake is over (err 0) or failed (the socket is closed by
 * now): the future completes, before connection_made (asyncio's order).
 * A cancel that came meanwhile refuses the connection.
 */
static int conn_tls_ready(struct tide_transport *tls, int err, void *arg)
{
	struct conn_req *r = arg;

	r->hs = NULL;
	if (!err && r->cancelled)
		err = -ECANCELED;
	conn_req_end(r, err, err ? NULL : tls);
	return err;
}

/* TLS over the connected socket fd: the future waits for the handshake. */
static void conn_start_tls(struct conn_req *r, int fd)
{
	struct tide_transport *raw;
	int err;

	if (tide__transport_new(r->loop, fd, TIDE__T_STREAM, NULL, NULL, NULL, &raw) < 0) {
		conn_req_end(r, -ENOMEM, NULL);
		return;
	}
	if ((err = tide__tls_wrap(raw, r->tls, r->ops, r->proto, conn_tls_ready, r, &r->hs)) < 0) {
		tide__transport_discard(raw);
		conn_req_end(r, err, NULL);
		return;
	}
	tide__transport_start(raw);
}

/*
 * The connect of r->fd is over (err 0: connected, or a caller's socket):
 * the transport, through TLS if asked; else the next address.
 */
static void conn_fd_done(struct conn_req *r, int err)
{
	struct tide_transport *t;

	if (err == 0 && !r->cancelled) {
		int fd = r->fd;
		r->fd = -1;
		/* (A caller's AF_UNIX socket refuses it, harmlessly.) */
		if (r->kind == TIDE__T_STREAM && !r->sunlen)
			tide__set_nodelay(fd);
		if (r->tls) {
			conn_start_tls(r, fd);
			return;
		}
		if (tide__transport_new(r->loop, fd, r->kind, r->ops, r->proto, NULL, &t) < 0) {
			conn_req_end(r, -ENOMEM, NULL);
			return;
		}
		/* The future first: its waiters are queued before anything
		 * connection_made does (a close queues the transport's end). */
		conn_req_end(r, 0, t);
		tide__transport_start(t);
		return;
	}
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	if (r->cancelled || err == -ECANCELED) {
		conn_req_end(r, -ECANCELED, NULL);
		return;
	}
	r->last_err = err;
	conn_try_next(r);
}

static void conn_connected(struct tide_future *f, void *arg)
{
	struct conn_req *r = arg;
	int err = tide_future_error(f);

	tide_future_unref(f);
	r->step = NULL;
	conn_fd_done(r, err);
}

static void conn_start(struct conn_req *r, const struct sockaddr *sa, socklen_t len, int family, int type)
{
	int fd = tide_socket(family, type, 0), err;

	if (fd < 0) {
		r->last_err = fd;
		conn_try_next(r);
		return;
	}
	r->fd = fd;
	if (type == SOCK_DGRAM) {
		/* A datagram "connection" is connect(2) without a handshake. */
		err = connect(fd, sa, len) < 0 ? -errno : 0;
		if (err) {
			close(fd);
			r->fd = -1;
			r->last_err = err;
			conn_try_next(r);
			return;
		}
		if (tide_future_new(r->loop, &r->step) == 0) {
			tide_future_set_result(r->step, 0, NULL);
			conn_connected(r->step, r);
		}
		return;
	}
	err = tide_op_connect(r->loop, fd, sa, len, &r->step);
	if (!err && (err = tide_future_add_done_callback(r->step, conn_connected, r)) < 0) {
		/* ENOMEM with the op in flight: its fd must outlive it, so it
		 * is left to the cancelled op (and leaks) rather than reused. */
		tide_future_cancel(r->step);
		tide_future_unref(r->step);
		r->step = NULL;
		r->fd = -1;
		conn_req_end(r, err, NULL);
		return;
	}
	if (err) {
		close(fd);
		r->fd = -1;
		r->last_err = err;
		conn_try_next(r);
	}
}

static void conn_try_next(struct conn_req *r)
{
	struct addrinfo *ai = r->next;

	if (r->sunlen) {
		/* A unix path has one address: its failure is the answer. */
		if (r->last_err) {
			conn_req_end(r, r->last_err, NULL);
			return;
		}
		r->last_err = -ECONNREFUSED;
		conn_start(r, (struct sockaddr *)&r->sun, r->sunlen, AF_UNIX, SOCK_STREAM);
		return;
	}
	if (!ai) {
		conn_req_end(r, r->last_err ? r->last_err : -EHOSTUNREACH, NULL);
		return;
	}
	r->next = ai->ai_next;
	conn_start(r, ai->ai_addr, ai->ai_addrlen, ai->ai_family,
		   r->kind == TIDE__T_DGRAM ? SOCK_DGRAM : SOCK_STREAM);
}

static void conn_resolved(struct tide_future *f, void *arg)
{
	struct conn_req *r = arg;
	int err = tide_future_error(f);
	/* The list is the request's from here (conn_req_end frees it); on
	 * failure it stays with the future. */
	void *p = err || r->cancelled ? NULL : tide_future_take_ptr(f);

	tide_future_unref(f);
	r->step = NULL;
	if (err || r->cancelled) {
		conn_req_end(r, r->cancelled ? -ECANCELED : err, NULL);
		return;
	}
	r->list = r->next = p;
	conn_try_next(r);
}

/* Cancelling create_connection cancels the step in flight; its callback ends it. */
static int conn_cancel_hook(struct tide_future *f, void *arg)
{
	struct conn_req *r = arg;

	(void)f;
	r->cancelled = true;
	if (r->step)
		tide_future_cancel(r->step);
	if (r->hs)
		tide__tls_cancel(r->hs, -ECANCELED);
	return 1;
}

static int conn_req_new(struct tide_loop *loop, const struct tide_protocol_ops *ops, void *proto, int kind,
			struct conn_req **out)
{
	struct conn_req *r;
	int err;

	if (!(r = tide__calloc(1, sizeof(*r))))
		return -ENOMEM;
	if ((err = tide_future_new(loop, &r->out))) {
		tide__free(r);
		return err;
	}
	r->loop = loop;
	r->ops = ops;
	r->proto = proto;
	r->fd = -1;
	r->kind = kind;
	r->out->cancel_hook = conn_cancel_hook;
	r->out->cancel_arg = r;
	*out = r;
	return 0;
}

/* A request that never started: the caller keeps what it passed. */
static void conn_req_discard(struct conn_req *r)
{
	r->out->cancel_hook = NULL;
	tide_future_unref(r->out);
	tide__tls_conf_unref(r->tls);
	tide__free(r);
}

static int connect_host(struct tide_loop *loop, const char *host, int port, int kind, const struct addrinfo *hints,
			struct tide__tls_conf *tls, const struct tide_protocol_ops *ops, void *proto,
			struct tide_future **out)
{
	struct conn_req *r;
	char portstr[16];
	int err;

	if ((err = conn_req_new(loop, ops, proto, kind, &r))) {
		tide__tls_conf_unref(tls);
		return err;
	}
	r->tls = tls;
	snprintf(portstr, sizeof(portstr), "%d", port);
	err = tide_getaddrinfo(loop, host, portstr, hints, &r->step);
	if (!err)
		err = tide_future_add_done_callback(r->step, conn_resolved, r);
	if (err) {
		if (r->step)
			tide_future_unref(r->step);
		conn_req_discard(r);
		return err;
	}
	*out = tide_future_ref(r->out);
	return 0;
}

/* The TLS of a connection's options, copied (NULL: plain), or the error;
 * server: tide is the TLS server (connect_accepted_socket). */
static int conn_tls(const struct tide_connect_opts *opts, const char *host, bool server, struct tide__tls_conf **tls)
{
	const struct tide_tls_opts *o;

	*tls = NULL;
	if (TIDE__OPTS_BAD(opts))
		return -EINVAL;
	if (!(o = TIDE__OPT(opts, tls, NULL)))
		return 0;
	return tide__tls_conf_new(o, host, server, tls);
}

TIDE_EXTERN int tide_create_connection_ex(struct tide_loop *loop, const char *host, int port,
					  const struct tide_connect_opts *opts, const struct tide_protocol_ops *ops,
					  void *proto, struct tide_future **out)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct tide__tls_conf *tls;
	int err;

	if (!loop || !host || !out || port < 0 || port > 65535 || (ops && ops->size < sizeof(size_t)))
		return -EINVAL;
	if ((err = conn_tls(opts, host, false, &tls)))
		return err;
	if ((err = tide__loop_refuses(loop))) {
		tide__tls_conf_unref(tls);
		return err;
	}
	return connect_host(loop, host, port, TIDE__T_STREAM, &hints, tls, ops, proto, out);
}

TIDE_EXTERN int tide_create_connection(struct tide_loop *loop, const char *host, int port,
				       const struct tide_protocol_ops *ops, void *proto, struct tide_future **out)
{
	return tide_create_connection_ex(loop, host, port, NULL, ops, proto, out);
}

TIDE_EXTERN int tide_create_unix_connection_ex(struct tide_loop *loop, const char *path,
					       const struct tide_connect_opts *opts,
					       const struct tide_protocol_ops *ops, void *proto,
					       struct tide_future **out)
{
	struct tide__tls_conf *tls;
	struct conn_req *r;
	int err;

	if (!loop || !out || (ops && ops->size < sizeof(size_t)))
		return -EINVAL;
	if ((err = conn_tls(opts, NULL, false, &tls)))
		return err;
	if ((err = tide__loop_refuses(loop)) || (err = conn_req_new(loop, ops, proto, TIDE__T_STREAM, &r))) {
		tide__tls_conf_unref(tls);
		return err;
	}
	r->tls = tls;
	if ((err = tide__unix_addr(path, &r->sun, &r->sunlen))) {
		conn_req_discard(r);
		return err;
	}
	*out = tide_future_ref(r->out);
	conn_try_next(r);
	return 0;
}

TIDE_EXTERN int tide_create_unix_connection(struct tide_loop *loop, const char *path,
					    const struct tide_protocol_ops *ops, void *proto, struct tide_future **out)
{
	return tide_create_unix_connection_ex(loop, path, NULL, ops, proto, out);
}

/* ------------------------------------------------- the caller's sockets -- */

/* Soon after the call, as asyncio's: the socket is connected already. */
static void conn_sock_started(void *arg)
{
	conn_fd_done(arg, 0);
}

/* create_connection_sock (tide the TLS client) and connect_accepted_socket
 * (the server): the checks leave fd alone; from the 0 return it is r's. */
static int connect_sock(struct tide_loop *loop, int fd, const struct tide_connect_opts *opts, bool server,
			const struct tide_protocol_ops *ops, void *proto, struct tide_future **out)
{
	struct tide__tls_conf *tls;
	struct conn_req *r;
	int err;

	if (!loop || !out || fd < 0 || (ops && ops->size < sizeof(size_t)))
		return -EINVAL;
	if ((err = tide__sock_check(fd, true)))
		return err;
	if ((err = conn_tls(opts, NULL, server, &tls)))
		return err;
	if ((err = tide__loop_refuses(loop)) || (err = conn_req_new(loop, ops, proto, TIDE__T_STREAM, &r))) {
		tide__tls_conf_unref(tls);
		return err;
	}
	r->tls = tls;
	if ((err = tide__call_soon_internal(loop, conn_sock_started, r))) {
		conn_req_discard(r);
		return err;
	}
	tide__sock_take(fd);
	r->fd = fd;
	*out = tide_future_ref(r->out);
	return 0;
}

TIDE_EXTERN int tide_create_connection_sock(struct tide_loop *loop, int fd, const struct tide_connect_opts *opts,
					    const struct tide_protocol_ops *ops, void *proto,
					    struct tide_future **out)
{
	return connect_sock(loop, fd, opts, false, ops, proto, out);
}

TIDE_EXTERN int tide_connect_accepted_socket(struct tide_loop *loop, int fd, const struct tide_connect_opts *opts,
					     const struct tide_protocol_ops *ops, void *proto,
					     struct tide_future **out)
{
	return connect_sock(loop, fd, opts, true, ops, proto, out);
}
