/* SPDX-License-Identifier: MIT */
/*
 * listener.c: asyncio's create_server (TCP and unix) and the server
 * object, over the transport of transport.c.
 *
 * A listener accepts with one multishot accept where the kernel has it,
 * else it waits for POLLIN and accepts what the backlog holds. The hard
 * part is running out of fds: EMFILE must not spin (a level-triggered
 * listener would report the same pending connection forever), so the
 * listener stops for a second, as asyncio does, while the connections it
 * has keep being served; and a listener's fd is closed only after its op's
 * final completion.
 */
#include "net/net.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* asyncio's pause after EMFILE/ENFILE/ENOBUFS/ENOMEM on accept. */
#define ACCEPT_RETRY_NS 1000000000ull

struct listener {
	struct tide_server *s;
	int fd;                      /* closed once op is gone, after server close */
	struct tide__op *op;         /* accept multishot, or POLLIN */
	struct tide__handle *retry;  /* the pause after EMFILE */
};

struct tide_server {
	struct tide_loop *loop;
	tide_protocol_factory_cb factory;
	void *arg;
	void (*arg_free)(void *arg); /* called with arg when the server is freed */
	struct listener *ls;
	size_t nls, cap;
	int backlog;
	bool serving;                /* accepting */
	bool closed;                 /* close() was called */
	bool freed;                  /* the user let go: free once quiet */
	bool dying;                  /* the free is queued */
	bool multishot;              /* listeners use multishot accept */
	bool tcp;                    /* its connections get TCP_NODELAY */
	bool callers_fds;            /* from create_server_sock: never shut down */
	char *unix_path;             /* unlinked on close */
	struct tide__tls_conf *tls;  /* TLS for every connection (tls.c), or NULL */
	struct tide__list conns;     /* connections it accepted, still open (srv_link) */
	size_t nconns;
	struct tide_future *closed_fut; /* wait_closed: done once closed and quiet */
	struct tide_future *forever;    /* serve_forever's wait */
	unsigned waiting;            /* tasks inside wait_closed/serve_forever */
};

static void listener_arm(struct listener *l);

/* ---------------------------------------------------------- lifecycle -- */

static bool server_quiet(const struct tide_server *s)
{
	size_t i;

	if (!s->closed || s->nconns)
		return false;
	for (i = 0; i < s->nls; i++)
		if (s->ls[i].op)
			return false;
	return true;
}

static void server_dealloc(void *arg)
{
	struct tide_server *s = arg;

	if (s->closed_fut)
		tide_future_unref(s->closed_fut);
	if (s->forever)
		tide_future_unref(s->forever);
	if (s->arg_free)
		s->arg_free(s->arg);
	s->loop->live_net--;
	s->loop->net_closing--;
	tide__tls_conf_unref(s->tls);
	tide__free(s->ls);
	tide__free(s->unix_path);
	tide__free(s);
}

/* The user let go (or creation failed): the loop counts it as on its way out. */
static void server_mark_freed(struct tide_server *s)
{
	if (!s->freed) {
		s->freed = true;
		s->loop->net_closing++;
	}
}

/* Called whenever something that keeps the server alive went away. */
static void server_check(struct tide_server *s)
{
	size_t i;

	if (!s->closed)
		return;
	for (i = 0; i < s->nls; i++) {
		struct listener *l = &s->ls[i];
		if (!l->op && l->fd >= 0) {
			tide__op_fd_closing(s->loop, l->fd);
			close(l->fd);
			l->fd = -1;
		}
	}
	if (!server_quiet(s))
		return;
	if (s->closed_fut && !tide_future_done(s->closed_fut))
		tide_future_set_result(s->closed_fut, 0, NULL);
	if (s->freed && !s->waiting && !s->dying) {
		/* Later, not now: the callers up the stack still hold s. */
		s->dying = true;
		if (tide__call_soon_internal(s->loop, server_dealloc, s) < 0)
			s->dying = false; /* retried at the next check */
	}
}

/* A connection of s is gone (its connection_lost ran): the transport's
 * gone hook. */
static void conn_gone(struct tide_transport *t, void *owner)
{
	struct tide_server *s = owner;

	tide__list_del(&t->srv_link);
	s->nconns--;
	server_check(s);
}

/* ----------------------------------------------------------- accepting -- */

/* The factory's protocol for a connection: bound to t, or < 0 (refused). */
static int conn_protocol(struct tide_server *s, struct tide_transport *t)
{
	const struct tide_protocol_ops *ops = NULL;
	void *proto = NULL;

	if (s->factory(&ops, &proto, s->arg) < 0)
		return -ECONNREFUSED;
	/* A table without its size cannot say which members it has; there is
	 * nobody to return -EINVAL to, as create_connection does. */
	tide__bug_on(ops && ops->size < sizeof(size_t),
		     "protocol factory: ops->size is not set (sizeof(struct tide_protocol_ops))");
	tide__transport_bind(t, ops, proto);
	return 0;
}

/*
 * A TLS connection's handshake is over: the factory is called only now,
 * so a handshake that fails (a scanner, a client that does not trust the
 * certificate) never makes a protocol, and connection_made comes with
 * the peer verified and ALPN chosen. A failed one calls this with err
 * once its socket is closed: nothing to do.
 */
static int tls_ready(struct tide_transport *tls, int err, void *arg)
{
	return err ? 0 : conn_protocol(arg, tls);
}

/*
 * The server's list holds the TLS transport (close_clients sends its
 * close_notify), from the accept on: wait_closed waits for handshakes
 * under way too.
 */
static void new_tls_conn(struct tide_server *s, int fd)
{
	struct tide_transport *raw, *t;

	if (tide__transport_new(s->loop, fd, TIDE__T_STREAM, NULL, NULL, NULL, &raw) < 0)
		return;
	if (tide__tls_wrap(raw, s->tls, NULL, NULL, tls_ready, s, &t) < 0) {
		tide__transport_discard(raw);
		return;
	}
	t->server = s;
	t->gone = conn_gone;
	tide__list_add_head(&s->conns, &t->srv_link);
	s->nconns++;
	tide__transport_start(raw);
}

static void new_conn(struct tide_server *s, int fd)
{
	struct tide_transport *t;

	if (!s->serving) {
		close(fd);
		return;
	}
	if (s->tcp)
		tide__set_nodelay(fd);
	if (s->tls) {
		new_tls_conn(s, fd);
		return;
	}
	/* The transport before the protocol: once the factory made one,
	 * nothing may fail, or the protocol object would leak. */
	if (tide__transport_new(s->loop, fd, TIDE__T_STREAM, NULL, NULL, s, &t) < 0)
		return;
	if (conn_protocol(s, t) < 0) {
		tide__transport_discard(t);
		return;
	}
	t->gone = conn_gone;
	tide__list_add_head(&s->conns, &t->srv_link);
	s->nconns++;
	tide__transport_start(t);
}

static void retry_fired(void *arg)
{
	struct listener *l = arg;

	l->retry = NULL;
	listener_arm(l);
}

/* Out of fds or memory, or an error that would only repeat: stop
 * accepting for a while (asyncio waits 1 s after EMFILE and its kin). */
static void accept_pause(struct listener *l, int err)
{
	struct tide_loop *loop = l->s->loop;

	if (l->retry)
		return;
	tide__report(loop, "accept failed: pausing the listener for 1 second", err, NULL, NULL);
	if (l->op)
		tide__op_cancel(l->op);
	l->retry = tide__call_at_ns(loop, tide__clock_ns() + ACCEPT_RETRY_NS, retry_fired, l);
}

/* A transient accept error: the next connection may be fine. */
static bool accept_transient(int err)
{
	return err == -ECONNABORTED || err == -EPROTO || err == -EINTR || err == -EAGAIN || err == -ECANCELED;
}

static void accept_ms_done(struct tide__op *op)
{
	struct listener *l = op->owner;
	struct tide_server *s = l->s;
	int res = op->res;

	/* The factory or connection_made may close or free the server: it
	 * stays until this completion is done with it and l. */
	s->waiting++;
	if (res >= 0)
		new_conn(s, res);
	else if (!accept_transient(res) && !s->closed) /* closing: its shutdown ends the accept */
		accept_pause(l, res); /* out of fds, or an error that would repeat */
	if (!(op->flags & TIDE__OP_MORE)) {
		l->op = NULL;
		tide__op_release(op);
		listener_arm(l);
	}
	s->waiting--;
	server_check(s);
}

static void accept_poll_done(struct tide__op *op)
{
	struct listener *l = op->owner;
	struct tide_server *s = l->s;
	int res = op->res, i;

	l->op = NULL;
	tide__op_release(op);
	s->waiting++; /* as in accept_ms_done */
	/* One readiness takes what the backlog holds, up to its size (asyncio). */
	for (i = 0; res >= 0 && s->serving && i < s->backlog; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			new_conn(s, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			accept_pause(l, -errno); /* out of fds, or an error that would repeat */
		break;
	}
	listener_arm(l);
	s->waiting--;
	server_check(s);
}

static void listener_arm(struct listener *l)
{
	struct tide_server *s = l->s;
	struct tide__op *op;
	int kind = s->multishot ? TIDE_OP_ACCEPT_MULTISHOT : TIDE_OP_POLL;

	if (!s->serving || l->op || l->retry || l->fd < 0)
		return;
	if (tide__op_new(s->loop, kind, &op) < 0) {
		accept_pause(l, -ENOMEM);
		return;
	}
	op->fd = l->fd;
	op->owner = l;
	op->events = POLLIN;
	op->flags |= TIDE__OP_LAZY;
	op->done = s->multishot ? accept_ms_done : accept_poll_done;
	l->op = op;
	if (tide__op_submit(op) < 0) {
		l->op = NULL;
		op->flags &= ~TIDE__OP_INFLIGHT;
		tide__op_release(op);
		accept_pause(l, -ENOMEM);
	}
}

/* ------------------------------------------------------------ public -- */

TIDE_EXTERN int tide_server_start_serving(struct tide_server *s)
{
	size_t i;

	if (!s)
		return -EINVAL;
	if (s->closed)
		return TIDE_ECLOSED;
	if (s->serving)
		return 0;
	s->serving = true;
	for (i = 0; i < s->nls; i++)
		listener_arm(&s->ls[i]);
	return 0;
}

TIDE_EXTERN int tide_server_is_serving(const struct tide_server *s)
{
	return s && s->serving;
}

TIDE_EXTERN void tide_server_close(struct tide_server *s)
{
	size_t i;

	if (!s || s->closed)
		return;
	s->closed = true;
	s->serving = false;
	for (i = 0; i < s->nls; i++) {
		struct listener *l = &s->ls[i];
		if (l->retry) {
			tide__timer_cancel(s->loop, l->retry);
			l->retry = NULL;
		}
		if (l->op) {
			/* The fd is closed once the accept's cancel completes
			 * (on io_uring, a later iteration), and meanwhile the
			 * kernel would still take connections into the backlog
			 * for nobody. Stop listening now, as asyncio's close()
			 * does: a connect that comes after is refused. Not a
			 * caller's socket: it may be shared with another
			 * process (socket activation, a hand-over to a new
			 * binary), where shutdown would stop it listening too. */
			if (!s->callers_fds)
				shutdown(l->fd, SHUT_RDWR);
			tide__op_cancel(l->op);
		}
	}
	if (s->unix_path)
		unlink(s->unix_path);
	if (s->forever && !tide_future_done(s->forever))
		tide_future_cancel(s->forever);
	server_check(s);
}

TIDE_EXTERN void tide_server_close_clients(struct tide_server *s, int abort)
{
	struct tide__list *l, *tmp;

	if (!s)
		return;
	tide__list_for_each_safe(l, tmp, &s->conns) {
		struct tide_transport *t = tide__list_entry(l, struct tide_transport, srv_link);

		if (abort)
			tide_transport_abort(t);
		else
			tide_transport_close(t);
	}
}

TIDE_EXTERN size_t tide_server_sockets(const struct tide_server *s, int *fds, size_t cap)
{
	size_t i, n = 0;

	if (!s || s->closed)
		return 0;
	for (i = 0; i < s->nls; i++, n++)
		if (fds && n < cap)
			fds[n] = s->ls[i].fd;
	return n;
}

TIDE_EXTERN int tide_server_port(const struct tide_server *s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (!s || !s->nls || s->ls[0].fd < 0)
		return -EINVAL;
	if (getsockname(s->ls[0].fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

/* Both waits await a future of the server's, holding the server alive. */
static int server_await(struct tide_server *s, struct tide_future **fp)
{
	int64_t r;

	if (!*fp) {
		int err = tide_future_new(s->loop, fp);
		if (err)
			return err;
	}
	s->waiting++;
	r = tide_await(*fp);
	return (int)r; /* the caller drops waiting and calls server_check last */
}

TIDE_EXTERN int tide_server_wait_closed(struct tide_server *s)
{
	int err;

	if (!s)
		return -EINVAL;
	if (!tide_current_task())
		return TIDE_ENOT_IN_TASK;
	if (server_quiet(s))
		return 0;
	err = server_await(s, &s->closed_fut);
	s->waiting--;
	server_check(s);
	return err;
}

TIDE_EXTERN int tide_server_serve_forever(struct tide_server *s)
{
	int err;

	if (!s)
		return -EINVAL;
	if (!tide_current_task())
		return TIDE_ENOT_IN_TASK;
	if (s->closed)
		return TIDE_ECLOSED;
	if (s->forever && !tide_future_done(s->forever))
		return -EBUSY; /* asyncio: already being awaited */
	if (s->forever) {
		tide_future_unref(s->forever);
		s->forever = NULL;
	}
	if ((err = tide_server_start_serving(s)))
		return err;
	err = server_await(s, &s->forever);
	/* Cancelled (or the server was closed): asyncio closes it. */
	tide_server_close(s);
	s->waiting--;
	server_check(s);
	return err ? err : -ECANCELED;
}

TIDE_EXTERN void tide_server_free(struct tide_server *s)
{
	if (!s)
		return;
	/* Close first, while not yet freed: completions that closing runs
	 * inline (epoll cancels at once) then cannot queue the free. */
	tide_server_close(s);
	server_mark_freed(s);
	/* Nothing left to wait for: free now, so that a loop closed right
	 * after this can be freed without running again. */
	if (server_quiet(s) && !s->waiting && !s->dying) {
		s->dying = true;
		server_dealloc(s);
		return;
	}
	server_check(s);
}

void tide__server_set_arg_free(struct tide_server *s, void (*fn)(void *arg))
{
	s->arg_free = fn;
}

/* ------------------------------------------------------------- binding -- */

static void set_port(struct sockaddr *sa, int port)
{
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
	else if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

/* A listening socket for one address; its fd or -errno. */
static int listen_on(const struct sockaddr *sa, socklen_t len, int backlog, int reuse_addr, int reuse_port)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, err;

	if (fd < 0)
		return -errno;
	if ((sa->sa_family == AF_INET || sa->sa_family == AF_INET6) && reuse_addr)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	/* Each address family gets its own socket, as asyncio binds them. */
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, len) < 0 || listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

static int server_alloc(struct tide_loop *loop, const struct tide_server_opts *opts, tide_protocol_factory_cb factory,
			void *arg, size_t nmax, struct tide_server **out)
{
	const struct tide_tls_opts *tls = TIDE__OPT(opts, tls, NULL);
	struct tide__tls_conf *conf = NULL;
	struct tide_server *s;
	int err;

	/* The TLS options are copied now (the caller's may go at return). */
	if (tls && (err = tide__tls_conf_new(tls, NULL, true, &conf)))
		return err;
	s = tide__calloc(1, sizeof(*s));
	if (!s || !(s->ls = tide__calloc(nmax ? nmax : 1, sizeof(*s->ls)))) {
		tide__tls_conf_unref(conf);
		tide__free(s);
		return -ENOMEM;
	}
	s->tls = conf;
	s->cap = nmax ? nmax : 1;
	s->loop = loop;
	tide__list_init(&s->conns);
	s->factory = factory;
	s->arg = arg;
	s->backlog = TIDE__OPT(opts, backlog, 0);
	if (s->backlog <= 0)
		s->backlog = 100;
	s->multishot = tide__op_native(loop, TIDE_OP_ACCEPT_MULTISHOT);
	loop->live_net++;
	*out = s;
	return 0;
}

static void server_add_fd(struct tide_server *s, int fd)
{
	struct listener *l = &s->ls[s->nls++];

	l->s = s;
	l->fd = fd;
}

/* Whether ai's address came earlier in the lists (asyncio serves the
 * set of the addresses: a host given twice is bound once). */
static bool addr_seen(struct addrinfo **lists, size_t i, const struct addrinfo *ai)
{
	size_t j;

	for (j = 0; j <= i; j++) {
		const struct addrinfo *p;
		for (p = lists[j]; p && p != ai; p = p->ai_next)
			if (p->ai_addrlen == ai->ai_addrlen && !memcmp(p->ai_addr, ai->ai_addr, ai->ai_addrlen))
				return true;
		if (p == ai)
			break;
	}
	return false;
}

/* Everything resolved: bind, listen, serve, and complete the future. */
static int server_bind_all(struct tide_server *s, struct addrinfo **lists, size_t nlists, int port,
			   const struct tide_server_opts *opts)
{
	int reuse_addr = !TIDE__OPT(opts, no_reuse_address, 0), reuse_port = TIDE__OPT(opts, reuse_port, 0);
	int shared = port, err = 0;
	size_t i;

	for (i = 0; i < nlists; i++) {
		struct addrinfo *ai;
		for (ai = lists[i]; ai; ai = ai->ai_next) {
			struct sockaddr_storage ss;
			int fd;

			if (ai->ai_addrlen > sizeof(ss) || s->nls == s->cap || addr_seen(lists, i, ai))
				continue;
			memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
			/* Port 0: the first socket picks, the others share it. */
			if (port == 0 && shared)
				set_port((struct sockaddr *)&ss, shared);
			fd = listen_on((struct sockaddr *)&ss, ai->ai_addrlen, s->backlog, reuse_addr, reuse_port);
			if (fd == -EADDRINUSE && port == 0 && shared) {
				set_port((struct sockaddr *)&ss, 0);
				fd = listen_on((struct sockaddr *)&ss, ai->ai_addrlen, s->backlog, reuse_addr,
					       reuse_port);
			}
			if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL) {
				/* A host without IPv6 still serves IPv4, but only
				 * if some address works in the end. */
				if (!err)
					err = fd;
				continue;
			}
			if (fd < 0)
				return fd;
			server_add_fd(s, fd);
			if (port == 0 && !shared)
				shared = tide_server_port(s);
			if (shared < 0)
				shared = 0;
		}
	}
	if (!s->nls)
		return err ? err : -EADDRNOTAVAIL;
	return 0;
}

static void server_release(void *s)
{
	tide_server_free(s);
}

/*
 * The future's ptr is the server, and the future owns it: the caller who
 * keeps the server takes it (tide_future_take_ptr) and frees it with
 * tide_server_free; otherwise it is freed (closed) with the future.
 */
static void result_server(struct tide_future *f, struct tide_server *s)
{
	f->ptr_release = server_release;
	tide_future_set_result(f, 0, s);
}

/* s listens on its sockets: serve (unless deferred) and complete f. */
static void server_ready(struct tide_server *s, struct tide_future *f, const struct tide_server_opts *opts)
{
	if (!TIDE__OPT(opts, defer_serving, 0))
		tide_server_start_serving(s);
	result_server(f, s);
}

/* A server whose creation failed: closed (its sockets too) and freed,
 * now when nothing is left to wait for (as tide_server_free): a failed
 * call leaves the loop nothing to finish, so it can be freed without
 * running again. */
static void server_drop(struct tide_server *s)
{
	tide_server_free(s);
}

/* An in-progress create_server: resolving its hosts. */
struct srv_req {
	struct tide_server *s;
	struct tide_future *out;
	struct tide_future **gai;
	size_t n, pending;
	int port;
	struct tide_server_opts opts;
	bool have_opts;
};

static void srv_req_finish(struct srv_req *r)
{
	struct addrinfo **lists = tide__calloc(r->n ? r->n : 1, sizeof(*lists));
	struct tide_server *s = r->s;
	int err = lists ? 0 : -ENOMEM;
	size_t i;

	for (i = 0; i < r->n && !err; i++) {
		void *p = NULL;
		err = tide_future_result(r->gai[i], NULL, &p);
		lists[i] = p;
	}
	if (!err && !tide_future_done(r->out))
		err = server_bind_all(s, lists, r->n, r->port, r->have_opts ? &r->opts : NULL);
	/* Each list goes with its future. */
	for (i = 0; i < r->n; i++)
		tide_future_unref(r->gai[i]);
	tide__free(lists);
	if (tide_future_done(r->out))
		err = -ECANCELED;
	if (err) {
		server_drop(s);
		if (!tide_future_done(r->out))
			tide_future_set_error(r->out, err);
	} else {
		server_ready(s, r->out, r->have_opts ? &r->opts : NULL);
	}
	tide_future_unref(r->out);
	tide__free(r->gai);
	tide__free(r);
}

static void srv_req_resolved(struct tide_future *f, void *arg)
{
	struct srv_req *r = arg;

	(void)f;
	if (--r->pending == 0)
		srv_req_finish(r);
}

static int copy_opts(struct tide_server_opts *dst, const struct tide_server_opts *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src)
		return 0;
	if (src->size < sizeof(size_t))
		return -EINVAL;
	memcpy(dst, src, src->size < sizeof(*dst) ? src->size : sizeof(*dst));
	return 0;
}

TIDE_EXTERN int tide_create_server(struct tide_loop *loop, const char *const *hosts, size_t nhosts, int port,
				   const struct tide_server_opts *opts, tide_protocol_factory_cb factory, void *arg,
				   struct tide_future **out)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM };
	static const char *const any[] = { NULL };
	struct srv_req *r;
	char portstr[16];
	size_t i;
	int err;

	if (!loop || !factory || !out || port < 0 || port > 65535 || (nhosts && !hosts))
		return -EINVAL;
	if ((err = tide__loop_refuses(loop)))
		return err;
	if (!nhosts) {
		hosts = any;
		nhosts = 1;
	}
	if (!(r = tide__calloc(1, sizeof(*r))) || !(r->gai = tide__calloc(nhosts, sizeof(*r->gai)))) {
		tide__free(r);
		return -ENOMEM;
	}
	if ((err = copy_opts(&r->opts, opts))) {
		tide__free(r->gai);
		tide__free(r);
		return err;
	}
	r->have_opts = opts != NULL;
	r->port = port;
	snprintf(portstr, sizeof(portstr), "%d", port);
	err = tide_future_new(loop, &r->out);
	if (!err)
		err = server_alloc(loop, opts, factory, arg, 64 * nhosts, &r->s);
	if (!err)
		r->s->tcp = true;
	for (i = 0; !err && i < nhosts; i++) {
		/* An empty host is every interface, as NULL (asyncio's ''). */
		err = tide_getaddrinfo(loop, hosts[i] && hosts[i][0] ? hosts[i] : NULL, portstr, &hints, &r->gai[i]);
		if (!err)
			r->n++;
	}
	if (err) {
		for (i = 0; i < r->n; i++) {
			tide_future_cancel(r->gai[i]); /* a list it has goes with it */
			tide_future_unref(r->gai[i]);
		}
		if (r->s)
			server_drop(r->s);
		if (r->out)
			tide_future_unref(r->out);
		tide__free(r->gai);
		tide__free(r);
		return err;
	}
	*out = tide_future_ref(r->out);
	/* Numeric hosts resolved at once: the server is listening on return. */
	for (i = 0; i < r->n; i++)
		if (!tide_future_done(r->gai[i]))
			r->pending++;
	if (!r->pending) {
		srv_req_finish(r);
		return 0;
	}
	r->pending++; /* held while registering the callbacks */
	for (i = 0; i < r->n; i++)
		if (!tide_future_done(r->gai[i]) && tide_future_add_done_callback(r->gai[i], srv_req_resolved, r) < 0)
			tide_future_cancel(r->gai[i]); /* cannot happen without ENOMEM */
	srv_req_resolved(NULL, r);
	return 0;
}

TIDE_EXTERN int tide_create_unix_server(struct tide_loop *loop, const char *path, const struct tide_server_opts *opts,
					tide_protocol_factory_cb factory, void *arg, struct tide_future **out)
{
	struct sockaddr_un sun;
	struct tide_server *s;
	struct tide_future *f;
	struct stat st;
	socklen_t len;
	int err, fd;

	if (!loop || !factory || !out || (opts && opts->size < sizeof(size_t)))
		return -EINVAL;
	if ((err = tide__unix_addr(path, &sun, &len)))
		return err;
	if ((err = tide__loop_refuses(loop)))
		return err;
	/* A stale socket file from an earlier run is removed, as asyncio does. */
	if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	if ((err = tide_future_new(loop, &f)))
		return err;
	if ((err = server_alloc(loop, opts, factory, arg, 1, &s))) {
		tide_future_unref(f);
		return err;
	}
	fd = listen_on((struct sockaddr *)&sun, len, s->backlog, 0, 0);
	if (fd < 0) {
		server_drop(s);
		tide_future_unref(f);
		return fd;
	}
	server_add_fd(s, fd);
	s->unix_path = tide__malloc(strlen(path) + 1);
	if (s->unix_path)
		strcpy(s->unix_path, path);
	server_ready(s, f, opts);
	*out = f;
	return 0;
}

/*
 * The caller's sockets, each checked before any is touched: a stream
 * socket, open, not connected (listen(2) would refuse it), listed once.
 */
static int sock_fds_check(const int *fds, size_t nfds)
{
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i, j;
	int err;

	for (i = 0; i < nfds; i++) {
		if ((err = tide__sock_check(fds[i], false)))
			return err;
		len = sizeof(ss);
		if (getpeername(fds[i], (struct sockaddr *)&ss, &len) == 0)
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (fds[j] == fds[i])
				return -EINVAL;
	}
	return 0;
}

TIDE_EXTERN int tide_create_server_sock(struct tide_loop *loop, const int *fds, size_t nfds,
					const struct tide_server_opts *opts, tide_protocol_factory_cb factory,
					void *arg, struct tide_future **out)
{
	struct sockaddr_storage ss;
	struct tide_server *s;
	struct tide_future *f;
	socklen_t len;
	size_t i;
	int err;

	if (!loop || !fds || !nfds || !factory || !out || TIDE__OPTS_BAD(opts))
		return -EINVAL;
	if ((err = sock_fds_check(fds, nfds)) || (err = tide__loop_refuses(loop)))
		return err;
	if ((err = tide_future_new(loop, &f)))
		return err;
	if ((err = server_alloc(loop, opts, factory, arg, nfds, &s))) {
		tide_future_unref(f);
		return err;
	}
	s->callers_fds = true;
	/* Listening already is fine (asyncio calls listen too). */
	for (i = 0; i < nfds; i++) {
		if (listen(fds[i], s->backlog) < 0) {
			err = -errno;
			server_drop(s);
			tide_future_unref(f);
			return err;
		}
	}
	for (i = 0; i < nfds; i++) {
		len = sizeof(ss);
		if (getsockname(fds[i], (struct sockaddr *)&ss, &len) == 0 &&
		    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
			s->tcp = true;
		tide__sock_take(fds[i]);
		server_add_fd(s, fds[i]);
	}
	server_ready(s, f, opts);
	*out = f;
	return 0;
}
