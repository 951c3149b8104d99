/* SPDX-License-Identifier: MIT */
/*
 * timeouts.c: a connection's timeouts and deadline
 * (tide_transport_set_timeouts, tide_transport_set_deadline; streams use
 * their transport's): an idle or write timeout, or the deadline, aborts
 * the transport, and connection_lost says -ETIMEDOUT.
 *
 * The hard part is the cost: nothing per message but a bit the receive
 * and send paths of transport.c set, no timer operation and no clock
 * read, while an expiry is never early. The one timer of a connection
 * looks at the bits often enough to bound how late it is.
 */
#include "net/net.h"

#include <errno.h>

/*
 * A transport's timeouts and deadline, in loop nanoseconds, made when
 * first set (t->dl). The one timer (h) looks at the traffic bits at least
 * every eighth of the shortest timeout (DL_CHECKS): traffic seen since
 * the last look moves its clock to now, the latest the traffic can have
 * been, so a timeout never ends early and at most an eighth of it late,
 * and no timer is touched per message.
 */
#define DL_CHECKS 8

struct tide__tdl {
	uint64_t act;              /* the idle clock's start: the last look that saw traffic */
	uint64_t wact;             /* the write clock's start: the last look that saw a send's
				    * progress, or the first to see bytes waiting */
	uint64_t idle, write;      /* the timeouts; 0: none */
	uint64_t every;            /* how often the timer looks: the shortest timeout / DL_CHECKS */
	uint64_t deadline;         /* absolute; 0: none */
	struct tide__handle *h;    /* the timer (an internal one, at h->when), or NULL */
	bool wempty;               /* the last look found nothing waiting to be sent */
};

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * A look at the traffic since the last one (see struct tide__tdl): the
 * clocks it moves, the earliest expiry (*due; UINT64_MAX: none), and when
 * the timer must look again: at that expiry, or sooner while a timeout
 * runs (traffic may come any time, and is dated by the next look).
 */
static uint64_t dl_look(struct tide_transport *t, uint64_t now, uint64_t *due)
{
	struct tide__tdl *d = t->dl;
	uint64_t e = d->deadline ? d->deadline : UINT64_MAX;
	bool waiting = tide_transport_get_write_buffer_size(t) != 0;

	if (t->rx_seen || t->tx_seen)
		d->act = now;
	/* Bytes first seen waiting came after the last look: now at the latest. */
	if (t->tx_seen || (waiting && d->wempty))
		d->wact = now;
	d->wempty = !waiting;
	t->rx_seen = t->tx_seen = 0;
	if (d->idle)
		e = min_u64(e, add_sat(d->act, d->idle));
	if (d->write && waiting)
		e = min_u64(e, add_sat(d->wact, d->write));
	*due = e;
	return d->every ? min_u64(e, add_sat(now, d->every)) : e;
}

static void dl_fire(void *arg);

/*
 * The timer wakes at wake at the latest. Armed already for no later: it
 * stays (it finds the rest when it fires), so pushing an expiry back
 * costs nothing. 0, or -ENOMEM with the timer as it was.
 */
static int dl_arm(struct tide_transport *t, uint64_t wake)
{
	struct tide__tdl *d = t->dl;
	struct tide_loop *loop = tloop(t);
	struct tide__handle *h = NULL;

	if (d->h && wake != UINT64_MAX && d->h->when <= wake)
		return 0;
	if (wake != UINT64_MAX && !(h = tide__call_at_ns(loop, wake, dl_fire, t)))
		return -ENOMEM;
	if (d->h)
		tide__timer_cancel(loop, d->h);
	d->h = h;
	return 0;
}

/*
 * The timer: an expiry that is due ends the connection; otherwise it
 * waits for the next look. finish() cancels it, so t is alive whenever it
 * runs; the loop's time is fresh here (it just expired timers).
 */
static void dl_fire(void *arg)
{
	struct tide_transport *t = arg;
	uint64_t now = tloop(t)->now, due, wake;

	t->dl->h = NULL;
	if (t->aborted || t->lost_queued)
		return; /* its end is on the way */
	wake = dl_look(t, now, &due);
	if (due <= now)
		tide__t_fatal(t, -ETIMEDOUT);
	else if (dl_arm(t, wake) < 0)
		tide__t_fatal(t, -ENOMEM);
}

void tide__t_timeouts_free(struct tide_transport *t)
{
	if (t->dl->h)
		tide__timer_cancel(tloop(t), t->dl->h);
	tide__free(t->dl);
	t->dl = NULL;
}

/* Seconds to ns for a timeout or deadline: -EINVAL for what cannot be one. */
static int dl_ns(double s, uint64_t *ns)
{
	if (!(s >= 0))
		return -EINVAL; /* negative, or NaN */
	return tide__seconds_to_ns(s, ns);
}

/*
 * Whether t can take timeouts (stream transports not aborted nor lost),
 * and its state for them, made on first use: 0, or the error.
 */
static int dl_get(struct tide_transport *t, bool make)
{
	if (t->kind != TIDE__T_STREAM)
		return -EOPNOTSUPP;
	if (t->aborted || t->lost)
		return TIDE_ECLOSED;
	if (!t->dl && make && !(t->dl = tide__calloc(1, sizeof(*t->dl))))
		return -ENOMEM;
	return 0;
}

/*
 * New settings (*n) take effect from now: 0, or -ENOMEM with the old ones
 * (and their timer) in place. With nothing left to time, the state goes.
 */
static int dl_update(struct tide_transport *t, const struct tide__tdl *n, uint64_t now)
{
	struct tide__tdl old = *t->dl, *d = t->dl;
	uint64_t due, shortest = n->idle && n->write ? min_u64(n->idle, n->write) : n->idle | n->write;
	unsigned rx = t->rx_seen, tx = t->tx_seen;

	*d = *n;
	d->h = old.h;
	d->every = shortest ? (shortest + DL_CHECKS - 1) / DL_CHECKS : 0;
	if (dl_arm(t, dl_look(t, now, &due)) < 0) {
		*d = old;
		t->rx_seen = rx;
		t->tx_seen = tx;
		if (!d->idle && !d->write && !d->deadline)
			tide__t_timeouts_free(t); /* made for this call */
		return -ENOMEM;
	}
	if (!d->idle && !d->write && !d->deadline)
		tide__t_timeouts_free(t);
	return 0;
}

/*
 * A TLS transport's timeouts are those of the connection under it (the
 * stream tls.c drives), which the public calls refuse on its own.
 */
static int tls_redirect(struct tide_transport **t)
{
	if ((*t)->tls_raw)
		return TIDE_ESSL_CLOSED;
	if (!(*t = tide__tls_raw(*t)))
		return TIDE_ECLOSED;
	return 0;
}

TIDE_EXTERN int tide_transport_set_timeouts(struct tide_transport *t, const struct tide_timeouts *to)
{
	int err;

	if (t && TIDE__UNLIKELY(t->kind == TIDE__T_TLS || t->tls_raw) && (err = tls_redirect(&t)))
		return err;
	return tide__t_set_timeouts(t, to);
}

int tide__t_set_timeouts(struct tide_transport *t, const struct tide_timeouts *to)
{
	struct tide__tdl n;
	uint64_t idle = 0, write = 0;
	int err;

	if (!t || TIDE__OPTS_BAD(to))
		return -EINVAL;
	if ((err = dl_ns(TIDE__OPT(to, idle, 0.0), &idle)) < 0 || (err = dl_ns(TIDE__OPT(to, write, 0.0), &write)) < 0)
		return err;
	if ((err = dl_get(t, idle || write)) < 0 || !t->dl)
		return err;
	/* Each clock starts now (a fresh clock: this may be called from
	 * outside the loop); traffic before does not count. */
	n = *t->dl;
	n.idle = idle;
	n.write = write;
	n.act = n.wact = tide__clock_ns();
	n.wempty = false;
	return dl_update(t, &n, n.act);
}

TIDE_EXTERN int tide_transport_set_deadline(struct tide_transport *t, double when)
{
	int err;

	if (t && TIDE__UNLIKELY(t->kind == TIDE__T_TLS || t->tls_raw) && (err = tls_redirect(&t)))
		return err;
	return tide__t_set_deadline(t, when);
}

int tide__t_set_deadline(struct tide_transport *t, double when)
{
	struct tide__tdl n;
	uint64_t ns = 0;
	int err;

	if (!t)
		return -EINVAL;
	if ((err = dl_ns(when, &ns)) < 0)
		return err;
	if ((err = dl_get(t, ns != 0)) < 0 || !t->dl)
		return err;
	n = *t->dl;
	n.deadline = ns;
	return dl_update(t, &n, tide__clock_ns());
}

