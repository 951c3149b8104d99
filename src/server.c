/* SPDX-License-Identifier: MIT */
/*
 * server.c: asyncio's create_server and create_connection (TCP and unix)
 * and create_datagram_endpoint, over the transport of transport.c.
 *
 * A listener accepts with one multishot accept where the kernel has it,
 * else it waits for POLLIN and accepts what the backlog holds. The hard
 * part is running out of fds: EMFILE must not spin (a level-triggered
 * listener would report the same pending connection forever), so the
 * listener stops for a second, as asyncio does, while the connections it
 * has keep being served; and a listener's fd is closed only after its op's
 * final completion.
 */
#include "net.h"

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
	char *unix_path;             /* unlinked on close */
	struct tide_transport *conns; /* connections it accepted, still open */
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
			if (s->loop->backend->fd_close)
				s->loop->backend->fd_close(s->loop, l->fd);
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

void tide__server_conn_gone(struct tide_server *s, struct tide_transport *t)
{
	if (t->srv_prev)
		t->srv_prev->srv_next = t->srv_next;
	else
		s->conns = t->srv_next;
	if (t->srv_next)
		t->srv_next->srv_prev = t->srv_prev;
	t->srv_next = t->srv_prev = NULL;
	s->nconns--;
	server_check(s);
}

/* ----------------------------------------------------------- accepting -- */

/*
 * Small writes go out at once, not after the peer's ACK of the last ones:
 * asyncio turns Nagle's algorithm off on every TCP transport it makes
 * (base_events._set_nodelay). A failure only costs latency.
 */
static void set_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void new_conn(struct tide_server *s, int fd)
{
	const struct tide_protocol_ops *ops = NULL;
	struct tide_transport *t;
	void *proto = NULL;

	if (!s->serving) {
		close(fd);
		return;
	}
	if (s->tcp)
		set_nodelay(fd);
	/* The transport before the protocol: once the factory made one,
	 * nothing may fail, or the protocol object would leak. */
	if (tide__transport_new(s->loop, fd, TIDE__T_STREAM, NULL, NULL, s, &t) < 0)
		return;
	if (s->factory(&ops, &proto, s->arg) < 0) {
		tide__transport_discard(t);
		return;
	}
	/* A table without its size cannot say which members it has; there is
	 * nobody to return -EINVAL to, as create_connection does. */
	tide__bug_on(ops && ops->size < sizeof(size_t),
		     "protocol factory: ops->size is not set (sizeof(struct tide_protocol_ops))");
	tide__transport_bind(t, ops, proto);
	t->srv_next = s->conns;
	if (s->conns)
		s->conns->srv_prev = t;
	s->conns = t;
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
	else if (!accept_transient(res))
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
		if (l->op)
			tide__op_cancel(l->op);
	}
	if (s->unix_path)
		unlink(s->unix_path);
	if (s->forever && !tide_future_done(s->forever))
		tide_future_cancel(s->forever);
	server_check(s);
}

TIDE_EXTERN void tide_server_close_clients(struct tide_server *s, int abort)
{
	struct tide_transport *t, *next;

	if (!s)
		return;
	for (t = s->conns; t; t = next) {
		next = t->srv_next;
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

static int opt_int(const struct tide_server_opts *o, size_t off, int dflt)
{
	if (!o || o->size < off + sizeof(int))
		return dflt;
	return *(const int *)((const char *)o + off);
}
#define OPT(o, f, d) opt_int((o), offsetof(struct tide_server_opts, f), (d))

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
	struct tide_server *s = tide__calloc(1, sizeof(*s));

	if (!s || !(s->ls = tide__calloc(nmax ? nmax : 1, sizeof(*s->ls)))) {
		tide__free(s);
		return -ENOMEM;
	}
	s->cap = nmax ? nmax : 1;
	s->loop = loop;
	s->factory = factory;
	s->arg = arg;
	s->backlog = OPT(opts, backlog, 0);
	if (s->backlog <= 0)
		s->backlog = 100;
	s->multishot = loop->backend->native(loop, TIDE_OP_ACCEPT_MULTISHOT);
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

/* Everything resolved: bind, listen, serve, and complete the future. */
static int server_bind_all(struct tide_server *s, struct addrinfo **lists, size_t nlists, int port,
			   const struct tide_server_opts *opts)
{
	int reuse_addr = !OPT(opts, no_reuse_address, 0), reuse_port = OPT(opts, reuse_port, 0);
	int shared = port, err = 0;
	size_t i;

	for (i = 0; i < nlists; i++) {
		struct addrinfo *ai;
		for (ai = lists[i]; ai; ai = ai->ai_next) {
			struct sockaddr_storage ss;
			int fd;

			if (ai->ai_addrlen > sizeof(ss) || s->nls == s->cap)
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
		server_mark_freed(s);
		tide_server_close(s);
		if (!tide_future_done(r->out))
			tide_future_set_error(r->out, err);
	} else {
		if (!OPT(r->have_opts ? &r->opts : NULL, defer_serving, 0))
			tide_server_start_serving(s);
		result_server(r->out, s);
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
	if (loop->closed)
		return TIDE_ECLOSED;
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
		err = tide_getaddrinfo(loop, hosts[i], portstr, &hints, &r->gai[i]);
		if (!err)
			r->n++;
	}
	if (err) {
		for (i = 0; i < r->n; i++) {
			tide_future_cancel(r->gai[i]); /* a list it has goes with it */
			tide_future_unref(r->gai[i]);
		}
		if (r->s) {
			server_mark_freed(r->s);
			tide_server_close(r->s);
		}
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

static int unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len)
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
	if ((err = unix_addr(path, &sun, &len)))
		return err;
	if (loop->closed)
		return TIDE_ECLOSED;
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
		server_mark_freed(s);
		tide_server_close(s);
		tide_future_unref(f);
		return fd;
	}
	server_add_fd(s, fd);
	s->unix_path = tide__malloc(strlen(path) + 1);
	if (s->unix_path)
		strcpy(s->unix_path, path);
	if (!OPT(opts, defer_serving, 0))
		tide_server_start_serving(s);
	result_server(f, s);
	*out = f;
	return 0;
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
};

static void conn_try_next(struct conn_req *r);

static void transport_unref_cb(void *t)
{
	tide_transport_unref(t);
}

/* The future's ptr is the transport, valid for as long as the future is:
 * connection_made may close it before the caller looks. The future holds
 * a reference for that; a caller who takes the ptr takes the reference
 * (tide_transport_unref when done). */
static void result_transport(struct tide_future *f, struct tide_transport *t)
{
	f->ptr_release = transport_unref_cb;
	tide_future_set_result(f, 0, tide_transport_ref(t));
}

static void conn_req_end(struct conn_req *r, int err, struct tide_transport *t)
{
	if (r->list)
		freeaddrinfo(r->list);
	if (!tide_future_done(r->out)) {
		if (err)
			tide_future_set_error(r->out, err);
		else
			result_transport(r->out, t);
	}
	tide_future_unref(r->out);
	tide__free(r);
}

static void conn_connected(struct tide_future *f, void *arg)
{
	struct conn_req *r = arg;
	struct tide_transport *t;
	int err = tide_future_error(f);

	tide_future_unref(f);
	r->step = NULL;
	if (err == 0 && !r->cancelled) {
		int fd = r->fd;
		r->fd = -1;
		if (r->kind == TIDE__T_STREAM && !r->sunlen)
			set_nodelay(fd);
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

static int connect_host(struct tide_loop *loop, const char *host, int port, int kind, const struct addrinfo *hints,
			const struct tide_protocol_ops *ops, void *proto, struct tide_future **out)
{
	struct conn_req *r;
	char portstr[16];
	int err;

	if ((err = conn_req_new(loop, ops, proto, kind, &r)))
		return err;
	snprintf(portstr, sizeof(portstr), "%d", port);
	err = tide_getaddrinfo(loop, host, portstr, hints, &r->step);
	if (!err)
		err = tide_future_add_done_callback(r->step, conn_resolved, r);
	if (err) {
		if (r->step)
			tide_future_unref(r->step);
		r->out->cancel_hook = NULL;
		tide_future_unref(r->out);
		tide__free(r);
		return err;
	}
	*out = tide_future_ref(r->out);
	return 0;
}

TIDE_EXTERN int tide_create_connection(struct tide_loop *loop, const char *host, int port,
				       const struct tide_protocol_ops *ops, void *proto, struct tide_future **out)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };

	if (!loop || !host || !out || port < 0 || port > 65535 || (ops && ops->size < sizeof(size_t)))
		return -EINVAL;
	if (loop->closed)
		return TIDE_ECLOSED;
	return connect_host(loop, host, port, TIDE__T_STREAM, &hints, ops, proto, out);
}

TIDE_EXTERN int tide_create_unix_connection(struct tide_loop *loop, const char *path,
					    const struct tide_protocol_ops *ops, void *proto, struct tide_future **out)
{
	struct conn_req *r;
	int err;

	if (!loop || !out || (ops && ops->size < sizeof(size_t)))
		return -EINVAL;
	if (loop->closed)
		return TIDE_ECLOSED;
	if ((err = conn_req_new(loop, ops, proto, TIDE__T_STREAM, &r)))
		return err;
	if ((err = unix_addr(path, &r->sun, &r->sunlen))) {
		r->out->cancel_hook = NULL;
		tide_future_unref(r->out);
		tide__free(r);
		return err;
	}
	*out = tide_future_ref(r->out);
	conn_try_next(r);
	return 0;
}

/* ------------------------------------------------------------ datagrams -- */

static int dgram_opt_int(const struct tide_datagram_opts *o, size_t off, int dflt)
{
	if (!o || o->size < off + sizeof(int))
		return dflt;
	return *(const int *)((const char *)o + off);
}
#define DOPT(o, f, d) dgram_opt_int((o), offsetof(struct tide_datagram_opts, f), (d))
#define DOPT_PTR(o, f) ((o) && (o)->size >= offsetof(struct tide_datagram_opts, f) + sizeof(void *) ? (o)->f : NULL)

/* Resolves a numeric or named host synchronously (datagram set-up). */
static int resolve_now(const char *host, int port, int family, int passive, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_DGRAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 }, *res;
	char portstr[16];
	int e;

	snprintf(portstr, sizeof(portstr), "%d", port);
	errno = 0;
	e = tide__system_getaddrinfo(host, portstr, &hints, &res);
	if (e)
		return tide__eai_error(e, errno);
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

TIDE_EXTERN int tide_create_datagram_endpoint(struct tide_loop *loop, const struct tide_datagram_opts *opts,
					      const struct tide_protocol_ops *ops, void *proto,
					      struct tide_future **out)
{
	const char *lhost = DOPT_PTR(opts, local_host), *rhost = DOPT_PTR(opts, remote_host);
	int lport = DOPT(opts, local_port, 0), rport = DOPT(opts, remote_port, 0);
	int family = DOPT(opts, family, 0), one = 1, fd, err = 0;
	struct sockaddr_storage la, ra;
	socklen_t llen = 0, rlen = 0;
	struct tide_transport *t;
	struct tide_future *f;

	if (!loop || !out || (opts && opts->size < sizeof(size_t)) || (ops && ops->size < sizeof(size_t)) ||
	    lport < 0 || lport > 65535 || rport < 0 || rport > 65535)
		return -EINVAL;
	if (loop->closed)
		return TIDE_ECLOSED;
	if (!lhost && !lport && !rhost && !family)
		return -EINVAL; /* asyncio: unexpected address family */
	/* Datagram set-up resolves in place: numeric addresses are the norm. */
	if (rhost && (err = resolve_now(rhost, rport, family, 0, &ra, &rlen)))
		return err;
	if (rhost && !family)
		family = ra.ss_family;
	if ((lhost || lport) && (err = resolve_now(lhost, lport, family, 1, &la, &llen)))
		return err;
	if (!family)
		family = llen ? la.ss_family : AF_INET;
	if ((fd = tide_socket(family, SOCK_DGRAM, 0)) < 0)
		return fd;
	if (DOPT(opts, reuse_port, 0) && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		err = -errno;
	if (!err && DOPT(opts, allow_broadcast, 0) && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0)
		err = -errno;
	if (!err && llen && bind(fd, (struct sockaddr *)&la, llen) < 0)
		err = -errno;
	if (!err && rlen && connect(fd, (struct sockaddr *)&ra, rlen) < 0)
		err = -errno;
	if (!err)
		err = tide_future_new(loop, &f);
	if (err) {
		close(fd);
		return err;
	}
	if ((err = tide__transport_new(loop, fd, TIDE__T_DGRAM, ops, proto, NULL, &t)) < 0) {
		tide_future_unref(f);
		return err;
	}
	result_transport(f, t);
	*out = f;
	tide__transport_start(t);
	return 0;
}
