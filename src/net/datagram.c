/* SPDX-License-Identifier: MIT */
/*
 * datagram.c: the datagram transport (asyncio's DatagramTransport) and
 * create_datagram_endpoint: a UDP socket bound and/or connected to the
 * addresses asked for. Numeric
 * hosts are read in place; a name is resolved on the executor, as
 * create_connection resolves (never on the loop thread, where a slow DNS
 * answer would stall every other connection).
 *
 * The hard part is the order of the two lookups: the remote address comes
 * first, because without an explicit family it decides the family the
 * local one is looked up in; and a caller may cancel (or drop) the future
 * while a lookup runs, after which the lookup's answer is let go.
 */
#include "net/net.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <unistd.h>

/* ------------------------------------------------- the datagram transport -- */

/*
 * A datagram transport reads on readiness (one recvfrom per POLLIN, into
 * the loop's shared buffer) and sends at once; what a full socket refuses
 * waits in a queue of whole datagrams for POLLOUT, as asyncio's
 * _SelectorDatagramTransport. ICMP errors are the protocol's to see
 * (error_received), never the end of the transport.
 */
void tide__dgram_read(struct tide_transport *t)
{
	struct sockaddr_storage ss;
	socklen_t alen = sizeof(ss);
	char *b = tide__net_rbuf(tloop(t)->net);
	ssize_t r;

	if (!b) {
		tide__t_fatal(t, -ENOMEM);
		return;
	}
	do
		r = recvfrom(t->fd, b, TIDE__READ_CHUNK, MSG_DONTWAIT, (struct sockaddr *)&ss, &alen);
	while (r < 0 && errno == EINTR);
	if (r >= 0) {
		if (PROTO_CB(t, datagram_received))
			PROTO_CB(t, datagram_received)(t, b, (size_t)r, (struct sockaddr *)&ss, alen, t->proto);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
		/* ICMP errors (ECONNREFUSED...) are the protocol's to see, as in asyncio. */
		if (PROTO_CB(t, error_received))
			PROTO_CB(t, error_received)(t, -errno, t->proto);
	}
	tide__t_read_arm(t);
	tide__t_maybe_finish(t);
}

static void dq_flush(struct tide_transport *t);

/* One error_received call, queued. */
struct dgram_err {
	struct tide_transport *t; /* a reference */
	int err;
};

static void error_deliver(void *arg)
{
	struct dgram_err *e = arg;
	struct tide_transport *t = e->t;
	int err = e->err;

	tide__free(e);
	if (!t->lost && PROTO_CB(t, error_received))
		PROTO_CB(t, error_received)(t, err, t->proto);
	tide_transport_unref(t);
}

/* error_received(err) from the loop, once per error and in order. */
static void error_soon(struct tide_transport *t, int err)
{
	struct dgram_err *e = tide__malloc(sizeof(*e));

	if (!e)
		return; /* a report lost to ENOMEM: the datagram itself was never sent */
	e->t = tide_transport_ref(t);
	e->err = err;
	if (tide__call_soon_internal(tloop(t), error_deliver, e) < 0) {
		tide__free(e);
		tide_transport_unref(t);
	}
}

static void dgram_writable(struct tide__op *op)
{
	struct tide_transport *t = op->owner;
	int res = op->res;

	t->wop = NULL;
	tide__op_release(op);
	if (res < 0 && res != -ECANCELED)
		tide__t_fatal(t, res);
	else if (res >= 0)
		dq_flush(t);
	tide__t_maybe_resume(t);
	tide__t_maybe_finish(t);
}

/* Sends queued datagrams until the socket says EAGAIN, then waits POLLOUT. */
static void dq_flush(struct tide_transport *t)
{
	struct tide__dgram *d;
	struct tide__op *op;
	int err;

	while ((d = t->dq) && !t->error) {
		ssize_t r;
		int e;

		do
			r = sendto(t->fd, d->data, d->len, MSG_DONTWAIT | MSG_NOSIGNAL,
				   d->alen ? (struct sockaddr *)&d->addr : NULL, d->alen);
		while (r < 0 && errno == EINTR);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		e = r < 0 ? -errno : 0;
		/* Off the queue before the protocol hears of it: error_received
		 * may send (and flush) again, or abort (and free the queue). */
		t->dq = d->next;
		if (!t->dq)
			t->dq_tailp = &t->dq;
		t->dq_bytes -= d->len;
		tide__free(d);
		if (e && PROTO_CB(t, error_received) && !t->lost)
			PROTO_CB(t, error_received)(t, e, t->proto);
	}
	if (!t->dq || t->wop || t->error || t->lost)
		return;
	if ((err = tide__t_new_op(t, TIDE_OP_POLL, dgram_writable, &op))) {
		tide__t_fatal(t, err);
		return;
	}
	op->events = POLLOUT;
	tide__t_submit_wop(t, op);
}

TIDE_EXTERN int tide_transport_sendto(struct tide_transport *t, const void *data, size_t n,
				      const struct sockaddr *addr, socklen_t addrlen)
{
	struct tide__dgram *d;
	bool was_empty;

	if (!t || (!data && n) || (addr && (addrlen == 0 || addrlen > sizeof(struct sockaddr_storage))))
		return -EINVAL;
	if (t->kind != TIDE__T_DGRAM)
		return -EOPNOTSUPP;
	if (t->closing || t->lost)
		return TIDE_ECLOSED;
	/* A forked child's sendto(2) would go out on the parent's socket. */
	if (tide__loop_forked(tloop(t)))
		return TIDE_EFORKED;
	if (!addr)
		addrlen = 0;
	if (!t->dq) {
		ssize_t r;

		do
			r = sendto(t->fd, data, n, MSG_DONTWAIT | MSG_NOSIGNAL, addr, addrlen);
		while (r < 0 && errno == EINTR);
		if (r >= 0)
			return 0;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			if (errno == EDESTADDRREQ || errno == EISCONN || errno == EINVAL || errno == EMSGSIZE)
				return -errno; /* the caller's mistake, not the network's */
			/* Soon, not now: a protocol that sends again from
			 * error_received must not recurse (asyncio would). */
			error_soon(t, -errno);
			return 0;
		}
	}
	if (!(d = tide__malloc(sizeof(*d) + n)))
		return -ENOMEM;
	d->next = NULL;
	d->len = n;
	d->alen = addrlen;
	if (addrlen)
		memcpy(&d->addr, addr, addrlen);
	memcpy(d->data, data, n);
	/* Behind others it waits for POLLOUT (or the flush running now), as
	 * in asyncio: a sendto never flushes a queue it did not start. */
	was_empty = !t->dq;
	*t->dq_tailp = d;
	t->dq_tailp = &d->next;
	t->dq_bytes += n;
	if (was_empty)
		dq_flush(t); /* the socket said EAGAIN: arm POLLOUT */
	tide__t_maybe_pause(t);
	return 0;
}

/* ------------------------------------------------ create_datagram_endpoint -- */

/* One endpoint being made: the lookups it still waits for, then the socket. */
struct dgram_req {
	struct tide_loop *loop;
	struct tide_future *out;      /* the caller's (a reference of ours) */
	struct tide_future *step;     /* the lookup running, or NULL */
	const struct tide_protocol_ops *ops;
	void *proto;
	bool need[2];                 /* [0] remote, [1] local: an address still to find */
	char *host[2];                /* their hosts (copies; NULL: the wildcard) */
	int port[2];
	int family, reuse_port, allow_broadcast;
	struct sockaddr_storage addr[2];
	socklen_t len[2];
};

static void req_free(struct dgram_req *r)
{
	tide__free(r->host[0]);
	tide__free(r->host[1]);
	tide__free(r);
}

static void hints_for(const struct dgram_req *r, int which, int flags, struct addrinfo *h)
{
	memset(h, 0, sizeof(*h));
	h->ai_family = r->family;
	h->ai_socktype = SOCK_DGRAM;
	h->ai_flags = flags | (which == 1 ? AI_PASSIVE : 0);
}

/* The first answer of a lookup becomes addr[which]; the list is freed. */
static void take_addr(struct dgram_req *r, int which, struct addrinfo *res)
{
	memcpy(&r->addr[which], res->ai_addr, res->ai_addrlen);
	r->len[which] = res->ai_addrlen;
	/* Without a family asked for, the remote address decides it. */
	if (which == 0 && !r->family)
		r->family = res->ai_family;
}

/*
 * Reads host as a numeric address at once: 0 (done), 1 (a name: it needs
 * a lookup), or an error. A NULL host with a port binds the wildcard.
 */
static int resolve_numeric(struct dgram_req *r, int which)
{
	struct addrinfo hints, *res;
	char port[16];
	int e;

	hints_for(r, which, AI_NUMERICHOST, &hints);
	snprintf(port, sizeof(port), "%d", r->port[which]);
	e = getaddrinfo(r->host[which], port, &hints, &res);
	if (e == EAI_NONAME && r->host[which])
		return 1;
	if (e)
		return tide__eai_error(e, errno);
	take_addr(r, which, res);
	freeaddrinfo(res);
	r->need[which] = false;
	return 0;
}

/* Every address that is numeric, in order: 0 (all known), the index of
 * the first that needs a lookup + 1, or an error. */
static int resolve_in_place(struct dgram_req *r)
{
	for (int which = 0; which < 2; which++) {
		int e = r->need[which] ? resolve_numeric(r, which) : 0;

		if (e)
			return e < 0 ? e : which + 1;
	}
	return 0;
}

/* Both addresses known: the socket, bound and connected as asked. */
static int make_endpoint(struct dgram_req *r, struct tide_transport **out)
{
	int one = 1, fd, err = 0;

	if (!r->family)
		r->family = r->len[1] ? r->addr[1].ss_family : AF_INET;
	if ((fd = tide_socket(r->family, SOCK_DGRAM, 0)) < 0)
		return fd;
	if (r->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		err = -errno;
	if (!err && r->allow_broadcast && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) < 0)
		err = -errno;
	if (!err && r->len[1] && bind(fd, (struct sockaddr *)&r->addr[1], r->len[1]) < 0)
		err = -errno;
	if (!err && r->len[0] && connect(fd, (struct sockaddr *)&r->addr[0], r->len[0]) < 0)
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return tide__transport_new(r->loop, fd, TIDE__T_DGRAM, r->ops, r->proto, NULL, out);
}

/* The endpoint is made (or failed): the caller's future hears it. */
static void finish(struct dgram_req *r, int err)
{
	struct tide_transport *t = NULL;

	if (tide_future_done(r->out)) {
		/* Cancelled while a lookup ran: nobody wants the endpoint. */
		err = -ECANCELED;
	} else {
		if (!err)
			err = make_endpoint(r, &t);
		tide__future_end_transport(r->out, err, t);
	}
	tide_future_unref(r->out);
	req_free(r);
	if (t)
		tide__transport_start(t);
}

static void next_lookup(struct dgram_req *r);

static void resolved(struct tide_future *f, void *arg)
{
	struct dgram_req *r = arg;
	int which = r->need[0] ? 0 : 1;
	void *res = NULL;
	int err = tide_future_result(f, NULL, &res);

	/* The list stays the future's: it goes with it. */
	r->step = NULL;
	if (!err && res) {
		take_addr(r, which, res);
		r->need[which] = false;
	}
	tide_future_unref(f);
	if (err || tide_future_done(r->out)) {
		finish(r, err);
		return;
	}
	next_lookup(r);
}

/* The next name on the executor, or the endpoint once none is left. */
static void next_lookup(struct dgram_req *r)
{
	int e = resolve_in_place(r), which, err;
	struct addrinfo hints;
	char port[16];

	if (e <= 0) {
		finish(r, e);
		return;
	}
	which = e - 1;
	hints_for(r, which, 0, &hints);
	snprintf(port, sizeof(port), "%d", r->port[which]);
	err = tide_getaddrinfo(r->loop, r->host[which], port, &hints, &r->step);
	if (!err)
		err = tide_future_add_done_callback(r->step, resolved, r);
	if (err) {
		tide_future_unref(r->step);
		r->step = NULL;
		finish(r, err);
	}
}

static char *dup_host(const char *h, int *err)
{
	char *p;

	if (!h)
		return NULL;
	if (!(p = tide__malloc(strlen(h) + 1)))
		*err = -ENOMEM;
	else
		strcpy(p, h);
	return p;
}

TIDE_EXTERN int tide_create_datagram_endpoint(struct tide_loop *loop, const struct tide_datagram_opts *opts,
					      const struct tide_protocol_ops *ops, void *proto,
					      struct tide_future **out)
{
	const char *lhost = TIDE__OPT(opts, local_host, NULL), *rhost = TIDE__OPT(opts, remote_host, NULL);
	int lport = TIDE__OPT(opts, local_port, 0), rport = TIDE__OPT(opts, remote_port, 0);
	struct dgram_req *r;
	int err = 0, e;

	if (!loop || !out || TIDE__OPTS_BAD(opts) || (ops && ops->size < sizeof(size_t)) || lport < 0 ||
	    lport > 65535 || rport < 0 || rport > 65535)
		return -EINVAL;
	if ((err = tide__loop_refuses(loop)))
		return err;
	if (!lhost && !lport && !rhost && !TIDE__OPT(opts, family, 0))
		return -EINVAL; /* asyncio: unexpected address family */
	if (!(r = tide__calloc(1, sizeof(*r))))
		return -ENOMEM;
	r->loop = loop;
	r->ops = ops;
	r->proto = proto;
	r->family = TIDE__OPT(opts, family, 0);
	r->reuse_port = TIDE__OPT(opts, reuse_port, 0);
	r->allow_broadcast = TIDE__OPT(opts, allow_broadcast, 0);
	r->port[0] = rport;
	r->port[1] = lport;
	r->need[0] = rhost != NULL;
	r->need[1] = lhost || lport;
	r->host[0] = dup_host(rhost, &err);
	r->host[1] = dup_host(lhost, &err);
	if (!err)
		err = tide_future_new(loop, &r->out);
	if (err) {
		req_free(r);
		return err;
	}
	/* Numeric addresses (the norm for datagrams) are read in place, the
	 * remote first: it decides the family of the local one. With no name
	 * to look up, the endpoint is made now and its errors (a bad address,
	 * a port in use) are the call's. */
	e = resolve_in_place(r);
	if (e == 0) {
		struct tide_transport *t;

		if ((err = make_endpoint(r, &t)) == 0)
			tide__future_end_transport(r->out, 0, t);
		*out = err ? NULL : r->out;
		if (err)
			tide_future_unref(r->out);
		req_free(r);
		if (!err)
			tide__transport_start(t);
		return err;
	}
	if (e < 0) {
		tide_future_unref(r->out);
		req_free(r);
		return e;
	}
	/* A name: looked up on the executor; the future says how it ends. */
	*out = tide_future_ref(r->out);
	next_lookup(r);
	return 0;
}
