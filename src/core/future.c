/* SPDX-License-Identifier: MIT */
/*
 * future.c: asyncio.Future in C. A future is single-threaded, reference
 * counted and recycled through its loop's free list.
 *
 * The hard part is cancellation of a future that an operation stands
 * behind (an op in the kernel, a queued executor job): cancel() then only
 * forwards the request through cancel_hook, and the future becomes done when
 * the operation answers, so a result that raced the cancel is delivered, not
 * dropped. Done callbacks are handles that wait in the future and join the
 * ready queue on completion, so completing a future never allocates.
 */
#include "core/core.h"

#include <errno.h>

TIDE_EXTERN int tide_future_new(struct tide_loop *loop, struct tide_future **out)
{
	struct tide_future *f;

	if (!loop || !out)
		return -EINVAL;
	if (tide__loop_closed(loop))
		return TIDE_ECLOSED;
	f = loop->free_futs;
	if (f)
		loop->free_futs = f->next_free;
	else if (!(f = tide__malloc(sizeof(*f))))
		return -ENOMEM;
	tide__future_init(loop, f);
	*out = f;
	return 0;
}

void tide__future_init(struct tide_loop *loop, struct tide_future *f)
{
	memset(f, 0, sizeof(*f));
	f->loop = loop;
	f->refs = 1;
	f->cb_tailp = &f->callbacks;
	loop->live_futures++;
}

TIDE_EXTERN struct tide_future *tide_future_ref(struct tide_future *f)
{
	tide__bug_on(!f || f->refs == 0, "tide_future_ref on a freed future");
	f->refs++;
	return f;
}

static void future_free(struct tide_future *f)
{
	struct tide_loop *loop = f->loop;
	struct tide__handle *h, *next;

	if (loop->debug && f->state == TIDE__F_DONE && f->error && !f->error_retrieved)
		tide__report(loop, "Future exception was never retrieved", f->error, f, NULL);
	/* Callbacks of a future nobody can complete any more never run. */
	for (h = f->callbacks; h; h = next) {
		next = h->next;
		tide__handle_recycle(loop, h);
	}
	f->refs = 0;
	loop->live_futures--;
	/* What the producer put in ptr goes with the future, unless a caller
	 * took it (tide_future_take_ptr cleared it). */
	if (f->ptr_release && f->ptr)
		f->ptr_release(f->ptr);
	if (f->ptr_owner)
		tide_future_unref(f->ptr_owner);
	tide__free(f->cancel_msg);
	f->cancel_msg = NULL;
	if (f->hooks) {
		f->hooks->release(f);
		return;
	}
	f->next_free = loop->free_futs;
	loop->free_futs = f;
}

TIDE_EXTERN void tide_future_unref(struct tide_future *f)
{
	if (!f)
		return;
	tide__bug_on(f->refs == 0, "tide_future_unref on a freed future");
	if (--f->refs == 0)
		future_free(f);
}

TIDE_EXTERN struct tide_loop *tide_future_loop(const struct tide_future *f)
{
	return f ? f->loop : NULL;
}

/* The future is done: its waiting callbacks join the ready queue in add order. */
static void schedule_callbacks(struct tide_future *f)
{
	struct tide_loop *loop = f->loop;
	struct tide__handle *h = f->callbacks, *next;

	f->callbacks = NULL;
	f->cb_tailp = &f->callbacks;
	f->cancel_hook = NULL;
	/* A task parked on f was first in line (it only parks there when no
	 * callback was added before it): two words in the ready ring. The task
	 * holds its own reference on f while parked. */
	if (f->waiter) {
		struct tide_future *w = f->waiter;
		f->waiter = NULL;
		if (!tide__loop_closed(loop))
			tide__ready_call_must(loop, w->hooks->run, w);
	}
	for (; h; h = next) {
		next = h->next;
		if (tide__loop_closed(loop)) {
			tide__handle_recycle(loop, h);
			continue;
		}
		/* The queued handle keeps the future alive until its callback ran. */
		h->fut = tide_future_ref(f);
		tide__ready_push(loop, h);
	}
}

/* The outcome, set: by the calls below once they checked, and by a task's
 * end (tide__future_complete_res), which alone may set a task's. */
static void future_finish(struct tide_future *f, int64_t value, void *ptr, int err)
{
	f->value = value;
	f->ptr = ptr;
	f->error = err;
	f->state = err == -ECANCELED ? TIDE__F_CANCELLED : TIDE__F_DONE;
	schedule_callbacks(f);
}

/* What a caller may not set: a done future's outcome (asyncio's
 * InvalidStateError), a task's (its body's return is; RuntimeError). */
static int settable(const struct tide_future *f)
{
	if (!f)
		return -EINVAL;
	tide__bug_on(f->refs == 0, "setting the outcome of a freed future");
	if (f->hooks)
		return -EPERM;
	if (f->state != TIDE__F_PENDING)
		return TIDE_EINVALID_STATE;
	return 0;
}

TIDE_EXTERN int tide_future_set_result(struct tide_future *f, int64_t value, void *ptr)
{
	int err = settable(f);

	if (err)
		return err;
	future_finish(f, value, ptr, 0);
	return 0;
}

TIDE_EXTERN int tide_future_set_error(struct tide_future *f, int err)
{
	int bad = settable(f);

	if (bad)
		return bad;
	if (err >= 0)
		return -EINVAL;
	future_finish(f, 0, NULL, err);
	return 0;
}

void tide__future_complete_res(struct tide_future *f, int64_t res)
{
	tide__bug_on(f->state != TIDE__F_PENDING, "completing a done future");
	if (res >= 0)
		future_finish(f, res, NULL, 0);
	else
		future_finish(f, 0, NULL, (int)res);
}

TIDE_EXTERN int tide_future_cancel(struct tide_future *f)
{
	if (!f)
		return 0;
	if (f->state != TIDE__F_PENDING) {
		/* asyncio: cancel() stops the traceback logger even when it
		 * returns False; whoever cancels has dealt with the outcome. */
		f->error_retrieved = true;
		return 0;
	}
	/* A task is cancelled through its body, as asyncio's Task.cancel. */
	if (f->hooks)
		return f->hooks->cancel(f);
	if (f->cancel_hook) {
		/* An operation stands behind the future: it decides, and completes
		 * the future (cancelled, or with what already arrived). */
		if (f->cancel_requested)
			return 1;
		if (!f->cancel_hook(f, f->cancel_arg))
			return 0;
		f->cancel_requested = f->state == TIDE__F_PENDING;
		return 1;
	}
	tide_future_set_error(f, -ECANCELED);
	return 1;
}

/* The message a cancel carries (a copy), set before the cancel: a task
 * hands it to the future it waits on. msg NULL clears it. */
int tide__future_set_cancel_msg(struct tide_future *f, const char *msg)
{
	char *copy = NULL;

	if (msg) {
		size_t n = strlen(msg) + 1;

		if (!(copy = tide__malloc(n)))
			return -ENOMEM;
		memcpy(copy, msg, n);
	}
	tide__free(f->cancel_msg);
	f->cancel_msg = copy;
	return 0;
}

TIDE_EXTERN int tide_future_cancel_msg(struct tide_future *f, const char *msg)
{
	int err;

	if (!f || f->state != TIDE__F_PENDING)
		return tide_future_cancel(f);
	if ((err = tide__future_set_cancel_msg(f, msg)))
		return err;
	return tide_future_cancel(f);
}

TIDE_EXTERN const char *tide_future_cancel_message(const struct tide_future *f)
{
	return f ? f->cancel_msg : NULL;
}

TIDE_EXTERN int tide_future_done(const struct tide_future *f)
{
	return f && f->state != TIDE__F_PENDING;
}

TIDE_EXTERN int tide_future_cancelled(const struct tide_future *f)
{
	return f && f->state == TIDE__F_CANCELLED;
}

TIDE_EXTERN int tide_future_result(struct tide_future *f, int64_t *value, void **ptr)
{
	if (!f)
		return -EINVAL;
	if (f->state == TIDE__F_PENDING)
		return TIDE_EINVALID_STATE;
	f->error_retrieved = true;
	if (f->error)
		return f->error;
	if (value)
		*value = f->value;
	if (ptr)
		*ptr = f->ptr;
	return 0;
}

TIDE_EXTERN void *tide_future_take_ptr(struct tide_future *f)
{
	void *p;

	if (!f)
		return NULL;
	tide__bug_on(f->refs == 0, "tide_future_take_ptr on a freed future");
	/* Pending, failed or cancelled: there is no result to take. */
	if (f->state != TIDE__F_DONE || f->error)
		return NULL;
	p = f->ptr;
	/* A mirror (tide_shield's outer) shows its inner's ptr: the inner
	 * owns it, so the inner is where it is taken from. */
	if (f->ptr_owner && p)
		p = f->ptr_owner->ptr == p ? tide_future_take_ptr(f->ptr_owner) : NULL;
	f->ptr = NULL;
	f->ptr_release = NULL;
	return p;
}

TIDE_EXTERN int tide_future_error(struct tide_future *f)
{
	if (!f)
		return -EINVAL;
	if (f->state == TIDE__F_PENDING)
		return TIDE_EINVALID_STATE;
	f->error_retrieved = true;
	return f->error;
}

TIDE_EXTERN int tide_future_add_done_callback(struct tide_future *f, tide_future_cb cb, void *arg)
{
	struct tide__handle *h;

	if (!f || !cb)
		return -EINVAL;
	if (tide__loop_closed(f->loop))
		return TIDE_ECLOSED;
	if (!(h = tide__handle_alloc(f->loop)))
		return -ENOMEM;
	h->fn.fut = cb;
	h->arg = arg;
	h->flags = TIDE__H_FUTURE_CB;
	h->fut = NULL;
	if (f->state != TIDE__F_PENDING) {
		/* asyncio: a callback added to a done future is scheduled at once. */
		h->fut = tide_future_ref(f);
		tide__ready_push(f->loop, h);
		return 0;
	}
	h->next = NULL;
	*f->cb_tailp = h;
	f->cb_tailp = &h->next;
	return 0;
}

TIDE_EXTERN int tide_future_remove_done_callback(struct tide_future *f, tide_future_cb cb, void *arg)
{
	struct tide__handle **pp, *h;
	int n = 0;

	if (!f || !cb)
		return -EINVAL;
	for (pp = &f->callbacks; (h = *pp);) {
		if (h->fn.fut == cb && h->arg == arg) {
			*pp = h->next;
			tide__handle_recycle(f->loop, h);
			n++;
		} else {
			pp = &h->next;
		}
	}
	f->cb_tailp = pp;
	return n;
}
