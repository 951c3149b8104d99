/* SPDX-License-Identifier: MIT */
/*
 * timer.c: the loop's timers: call_later and call_at, the loop's own
 * timers (a loop-path timeout op), cancel, expiry, and what tide_loop_close
 * drops. The heap itself is heap.h: a 4-ary array heap of handles, each
 * knowing its index.
 *
 * The hard part is that no timer fires early: a deadline is computed from
 * a fresh clock read at arming (not the loop's cached time, which a slow
 * callback makes stale), delays round up to the next nanosecond, and equal
 * deadlines fire in arming order (the sequence number breaks ties).
 */
#include "core/core.h"
#include "core/heap.h"

#include <errno.h>
#include <math.h>

struct tide__handle *tide__call_at_ns(struct tide_loop *loop, uint64_t when, void (*fn)(void *), void *arg)
{
	struct tide__handle *h;

	if (tide__timer_reserve(loop) < 0 || !(h = tide__handle_alloc(loop)))
		return NULL;
	h->fn.call = fn;
	h->arg = arg;
	h->flags = TIDE__H_INTERNAL;
	tide__timer_arm(loop, h, when);
	return h;
}

void tide__timer_cancel(struct tide_loop *loop, struct tide__handle *h)
{
	if (h->flags & TIDE__H_TIMER) {
		heap_remove_at(loop->heap, &loop->heap_len, h->heap_idx);
		tide__handle_recycle(loop, h);
	} else if (h->flags & TIDE__H_READY) {
		h->flags |= TIDE__H_CANCELLED;
	}
}

/* Seconds (double) to a nanosecond delay; rejects what cannot be a time. */
int tide__seconds_to_ns(double s, uint64_t *ns)
{
	if (!isfinite(s))
		return -EINVAL;
	if (s <= 0) {
		*ns = 0;
		return 0;
	}
	if (s > 1e10) /* about 317 years: beyond this the ns clock would overflow */
		return -EINVAL;
	/* Round up so that a timer never fires before the time asked for. */
	*ns = (uint64_t)ceil(s * 1e9);
	return 0;
}

TIDE_EXTERN int tide_call_later(struct tide_loop *loop, double delay, tide_call_cb cb, void *arg,
				struct tide_handle *out)
{
	uint64_t ns, now;
	int err = tide__seconds_to_ns(delay < 0 ? -delay : delay, &ns);

	if (err)
		return err;
	/* A fresh clock, not the cached one: a slow callback must not make a
	 * later timer fire before `delay` has passed since this call. A
	 * negative delay is a deadline in the past, kept as such (asyncio):
	 * such timers fire in the order of their deadlines, not of arming. */
	now = tide__clock_ns();
	if (delay < 0)
		return tide__schedule(loop, cb, arg, true, ns < now ? now - ns : 0, out);
	return tide__schedule(loop, cb, arg, true, now + ns, out);
}

TIDE_EXTERN int tide_call_at(struct tide_loop *loop, double when, tide_call_cb cb, void *arg,
			     struct tide_handle *out)
{
	uint64_t ns;
	int err = tide__seconds_to_ns(when, &ns);

	if (err)
		return err;
	return tide__schedule(loop, cb, arg, true, ns, out);
}

TIDE_EXTERN int tide_handle_cancel(struct tide_handle *ph)
{
	struct tide__handle *h;

	if (!ph || !ph->slot)
		return 0;
	h = ph->slot;
	if (h->gen != ph->gen || (h->flags & TIDE__H_CANCELLED) ||
	    !(h->flags & (TIDE__H_TIMER | TIDE__H_READY)))
		return 0;
	tide__timer_cancel(h->loop, h);
	return 1;
}

TIDE_EXTERN double tide_handle_when(const struct tide_handle *ph)
{
	const struct tide__handle *h = ph ? ph->slot : NULL;

	if (!h || h->gen != ph->gen || !(h->flags & TIDE__H_TIMER))
		return -1;
	return (double)h->when / 1e9;
}

void tide__timers_expire(struct tide_loop *loop)
{
	uint64_t now = loop->now;

	while (loop->heap_len && loop->heap[0]->when <= now) {
		struct tide__handle *h = loop->heap[0];
		heap_remove_at(loop->heap, &loop->heap_len, 0);
		h->flags = (h->flags & ~TIDE__H_TIMER) | TIDE__H_FIRED;
		tide__ready_push(loop, h);
	}
}

void tide__timers_drop_user(struct tide_loop *loop)
{
	uint32_t i, keep;

	/* Keep the loop's own timers (loop-path timeout ops); drop the user's,
	 * then rebuild the heap from what is left by successive insertion. */
	for (i = 0, keep = 0; i < loop->heap_len; i++) {
		struct tide__handle *t = loop->heap[i];
		if (t->flags & TIDE__H_INTERNAL)
			loop->heap[keep++] = t;
		else
			tide__handle_recycle(loop, t);
	}
	loop->heap_len = keep;
	for (i = 0; i < keep; i++)
		heap_up(loop->heap, i, loop->heap[i]);
}
