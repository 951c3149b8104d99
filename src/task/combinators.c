/* SPDX-License-Identifier: MIT */
/*
 * combinators.c: asyncio's combinators and structured concurrency over
 * futures and tasks: gather, wait, wait_for, shield, as_completed, timeout
 * scopes (asyncio.timeout) and TaskGroup.
 *
 * The hard part is lifetime under early exit. Each combinator leaves done
 * callbacks on futures it does not own, and a callback that the future
 * already queued can no longer be removed: it will run, later, whatever the
 * waiting task did meanwhile (returned on a timeout, was cancelled, freed
 * the iterator). So every object a callback points at is either a future
 * (reference counted) or a small state object counted the same way: one
 * reference for its owner and one per registered callback, where
 * tide_future_remove_done_callback() tells how many registrations it took
 * back and the callbacks still queued drop theirs when they run. Timers are
 * the exception: tide_handle_cancel() guarantees a timer callback will not
 * run after it, so a timer borrows its state.
 *
 * The second part is cancellation counting. A timeout scope cancels its own
 * task, and must tell at exit its own request from anybody else's: it keeps
 * the task's tide_task_cancelling() count from its entry and, as asyncio's
 * Timeout, reports -ETIMEDOUT only if uncancelling its request brings the
 * count back to (or below) that level. TaskGroup uses the same count to
 * recognise a cancellation of its parent that came from outside.
 */
#include "task/task.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- helpers -- */

/*
 * A wake-up for a task parked in a combinator: the task awaits a fresh
 * future published in *slot, and callbacks complete it through wake_up()
 * when the condition they track is met. The slot is cleared as soon as the
 * task runs again, so a late callback finds nothing to wake.
 */
static int wake_await(struct tide_loop *loop, struct tide_future **slot)
{
	struct tide_future *w;
	int64_t r;
	int err;

	if ((err = tide_future_new(loop, &w)))
		return err;
	*slot = w;
	r = tide_await(w);
	*slot = NULL;
	tide_future_unref(w);
	return (int)r;
}

static void wake_up(struct tide_future *w)
{
	/* The task's own cancellation may have completed it (cancelled) already. */
	if (w && !tide_future_done(w))
		tide_future_set_result(w, 0, NULL);
}

/* A done future's outcome, as tide_await() reports it. */
static int64_t outcome(struct tide_future *f)
{
	int64_t v = 0;
	int err = tide_future_result(f, &v, NULL);

	return err ? err : v;
}

/* Every future of futs is non-NULL and on loop. */
static int check_futures(struct tide_loop *loop, struct tide_future *const *futs, size_t n)
{
	size_t i;

	if (n && !futs)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!futs[i] || futs[i]->loop != loop)
			return -EINVAL;
	return 0;
}

/* A timeout in seconds: +inf (TIDE_TIMEOUT_NONE) is none (*none set),
 * NaN is invalid; <= 0 has expired (asyncio). */
static int check_timeout(double timeout, bool *none)
{
	if (isnan(timeout))
		return -EINVAL;
	*none = isinf(timeout) && timeout > 0;
	return 0;
}

/* ------------------------------------------------------------------ gather -- */

/*
 * asyncio's _GatheringFuture. The state lives until the last child reported,
 * even when the outer future completed long before (first error), because
 * every child's callback points at it; it holds the outer future and every
 * child so none of them can vanish under a pending callback.
 */
struct gather_state {
	struct tide_future *outer; /* the gathering future (a reference) */
	size_t n;                  /* children */
	size_t nfinished;          /* children whose callback ran */
	bool return_exceptions;    /* errors stay in the children instead of failing outer */
	bool cancel_requested;     /* outer was cancelled: it ends cancelled once all are done */
	bool abandoned;            /* tide_gather failed: queued callbacks only count down */
	struct tide_future *children[]; /* references */
};

static void gather_free(struct gather_state *st)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		tide_future_unref(st->children[i]);
	tide_future_unref(st->outer);
	tide__free(st);
}

static void gather_child_done(struct tide_future *child, void *arg)
{
	struct gather_state *st = arg;
	struct tide_future *outer = st->outer;

	st->nfinished++;
	if (st->abandoned) {
		/* Nothing to report to: the outer was never handed out. */
	} else if (tide_future_done(outer)) {
		/* The outer already failed with another child's error (asyncio
		 * marks the rest retrieved: nobody else will look at them). */
		if (!tide_future_cancelled(child))
			tide_future_error(child);
	} else if (!st->return_exceptions && child->error) {
		/* The first error (or cancellation) fails the outer at once. */
		tide_future_set_error(outer, tide_future_error(child));
	} else if (st->nfinished == st->n) {
		if (st->cancel_requested)
			tide_future_set_error(outer, -ECANCELED);
		else
			tide_future_set_result(outer, 0, NULL);
	}
	if (st->nfinished == st->n)
		gather_free(st);
}

/*
 * The outer future's cancel hook: cancelling a gather cancels its children
 * and lets them answer, as _GatheringFuture.cancel(); the outer completes
 * (cancelled) through gather_child_done. 0 if no child could be cancelled.
 */
static int gather_cancel(struct tide_future *outer, void *arg)
{
	struct gather_state *st = arg;
	int any = 0;
	size_t i;

	(void)outer;
	for (i = 0; i < st->n; i++)
		if (tide_future_cancel(st->children[i]))
			any = 1;
	if (any)
		st->cancel_requested = true;
	return any;
}

TIDE_EXTERN int tide_gather(struct tide_loop *loop, struct tide_future *const *futs, size_t n,
			    int return_exceptions, struct tide_future **out)
{
	struct gather_state *st;
	struct tide_future *outer;
	size_t i;
	int err;

	if (!loop || !out || check_futures(loop, futs, n))
		return -EINVAL;
	if (n > (SIZE_MAX - sizeof(*st)) / sizeof(st->children[0]))
		return -ENOMEM;
	if ((err = tide_future_new(loop, &outer)))
		return err;
	if (n == 0) {
		/* asyncio: gather() of nothing is an already done future. */
		tide_future_set_result(outer, 0, NULL);
		*out = outer;
		return 0;
	}
	if (!(st = tide__malloc(sizeof(*st) + n * sizeof(st->children[0])))) {
		tide_future_unref(outer);
		return -ENOMEM;
	}
	st->outer = tide_future_ref(outer);
	st->n = n;
	st->nfinished = 0;
	st->return_exceptions = return_exceptions != 0;
	st->cancel_requested = false;
	st->abandoned = false;
	for (i = 0; i < n; i++)
		st->children[i] = tide_future_ref(futs[i]);
	for (i = 0; i < n; i++)
		if ((err = tide_future_add_done_callback(futs[i], gather_child_done, st)))
			break;
	if (err) {
		/* Out of memory half-way. Registrations on pending children come
		 * back; those on done children are queued already and will run,
		 * so they finish the state instead of us. */
		size_t queued = i, j;

		for (j = 0; j < i; j++)
			queued -= (size_t)tide_future_remove_done_callback(futs[j], gather_child_done, st);
		st->abandoned = true;
		st->nfinished = n - queued;
		if (queued == 0)
			gather_free(st);
		tide_future_unref(outer);
		return err;
	}
	outer->cancel_hook = gather_cancel;
	outer->cancel_arg = st;
	*out = outer;
	return 0;
}

/* -------------------------------------------------------------------- wait -- */

/* asyncio._wait's closure: counts completions and wakes the waiting task. */
struct wait_state {
	uint32_t refs;              /* the waiting task's, plus one per registered callback */
	size_t pending;             /* registered futures not yet done */
	enum tide_return_when when; /* the condition */
	struct tide_future *wake;   /* what the task awaits, NULL once it runs again */
};

static void wait_state_unref(struct wait_state *st)
{
	if (--st->refs == 0)
		tide__free(st);
}

static void wait_child_done(struct tide_future *f, void *arg)
{
	struct wait_state *st = arg;

	if (st->pending)
		st->pending--;
	if (st->pending == 0 || st->when == TIDE_FIRST_COMPLETED ||
	    (st->when == TIDE_FIRST_EXCEPTION && !tide_future_cancelled(f) && f->error))
		wake_up(st->wake);
	wait_state_unref(st);
}

static void wait_timeout(void *arg)
{
	struct wait_state *st = arg;

	wake_up(st->wake);
}

/* Whether `when` is met by the futures' current states. */
static bool wait_met(struct tide_future *const *futs, size_t n, enum tide_return_when when)
{
	size_t i, done = 0;

	for (i = 0; i < n; i++) {
		if (!tide_future_done(futs[i]))
			continue;
		done++;
		if (when == TIDE_FIRST_COMPLETED)
			return true;
		if (when == TIDE_FIRST_EXCEPTION && !tide_future_cancelled(futs[i]) && futs[i]->error)
			return true;
	}
	return done == n;
}

static int count_done(struct tide_future *const *futs, size_t n)
{
	size_t i;
	int done = 0;

	for (i = 0; i < n; i++)
		done += tide_future_done(futs[i]);
	return done;
}

TIDE_EXTERN int tide_wait(struct tide_future *const *futs, size_t n, enum tide_return_when when, double timeout)
{
	struct tide_future *me = tide_current_task();
	struct tide_loop *loop;
	struct wait_state *st;
	struct tide_handle timer = { 0 };
	bool no_timeout;
	size_t i;
	int err = 0, r;

	if (!me)
		return TIDE_ENOT_IN_TASK;
	loop = me->loop;
	/* asyncio: ValueError for an empty set or a bad return_when. */
	if (n == 0 || n > INT32_MAX || check_futures(loop, futs, n) || check_timeout(timeout, &no_timeout))
		return -EINVAL;
	if (when != TIDE_ALL_COMPLETED && when != TIDE_FIRST_COMPLETED && when != TIDE_FIRST_EXCEPTION)
		return -EINVAL;
	if (wait_met(futs, n, when))
		return count_done(futs, n);
	if (!(st = tide__malloc(sizeof(*st))))
		return -ENOMEM;
	st->refs = 1;
	st->pending = 0;
	st->when = when;
	st->wake = NULL;
	for (i = 0; i < n && !err; i++) {
		if (tide_future_done(futs[i]))
			continue;
		if (!(err = tide_future_add_done_callback(futs[i], wait_child_done, st))) {
			st->refs++;
			st->pending++;
		}
	}
	if (!err && !no_timeout)
		err = tide_call_later(loop, timeout, wait_timeout, st, &timer);
	if (!err)
		err = wake_await(loop, &st->wake);
	/* Whatever woke us: the timer must not fire into st afterwards, and the
	 * callbacks still registered are taken back with their references. */
	tide_handle_cancel(&timer);
	for (i = 0; i < n; i++)
		st->refs -= (uint32_t)tide_future_remove_done_callback(futs[i], wait_child_done, st);
	wait_state_unref(st);
	if (err < 0)
		return err; /* -ECANCELED (the waiting task was cancelled) or -ENOMEM */
	r = count_done(futs, n);
	return r;
}

/* ---------------------------------------------------------------- wait_for -- */

/*
 * tide_await(fut), except that a cancellation the task already owed (which
 * tide_await delivers at once, without touching fut) still cancels fut and
 * waits for it, as asyncio's `await fut` under a pending cancel does: a
 * wait_for never returns while its inner future runs on.
 */
static int64_t await_inner(struct tide_future *fut)
{
	int64_t r = tide_await(fut);

	if (r == -ECANCELED && !tide_future_done(fut)) {
		tide_future_cancel(fut);
		/* Now nothing is owed: the core waits for fut (and forwards any
		 * new cancellation to it) until fut is done. */
		while (!tide_future_done(fut))
			tide_await(fut);
	}
	return r;
}

/*
 * asyncio 3.12's wait_for is `async with timeout(t): return await fut`, and
 * so is this one: the scope cancels this task at the deadline, the core
 * forwards that to fut and resumes us only once fut is done; a result that
 * won the race is returned, a cancellation becomes -ETIMEDOUT.
 */
/*
 * asyncio's wait_for with a timeout <= 0: fut is cancelled before it can
 * run again (a task that has not started never runs its body) and waited
 * for. -ETIMEDOUT when the cancellation took; -ECANCELED when our own
 * task was cancelled meanwhile (its count went up); else fut's outcome.
 */
static int64_t cancel_and_wait(struct tide_future *me, struct tide_future *fut)
{
	int before = tide_task_cancelling(me);
	int64_t r;

	tide_future_cancel(fut);
	r = await_inner(fut);
	if (r == -ECANCELED && tide_future_cancelled(fut) && tide_task_cancelling(me) == before)
		return -ETIMEDOUT;
	return r;
}

TIDE_EXTERN int64_t tide_wait_for(struct tide_future *fut, double timeout)
{
	struct tide_future *me = tide_current_task();
	struct tide_timeout *t;
	bool no_timeout;
	int64_t r;
	int err;

	if (!me)
		return TIDE_ENOT_IN_TASK;
	if (!fut || fut->loop != me->loop || check_timeout(timeout, &no_timeout))
		return -EINVAL;
	if (fut == me)
		return -EDEADLK;
	if (no_timeout)
		return await_inner(fut);
	/* A done future is never waited for, even with timeout 0 (asyncio). */
	if (tide_future_done(fut))
		return outcome(fut);
	if (timeout <= 0)
		return cancel_and_wait(me, fut);
	if ((err = tide_timeout_enter(timeout, &t)))
		return err;
	r = await_inner(fut);
	err = tide_timeout_exit(t);
	if (err == -ETIMEDOUT && r == -ECANCELED)
		return -ETIMEDOUT;
	/* Not expired, or expired but fut's result (or own error) won the race,
	 * or (-ECANCELED) somebody else cancelled us too and that goes on. */
	return r;
}

/* ------------------------------------------------------------------ shield -- */

/*
 * The outer shows the inner's result. A ptr stays the inner's (it frees
 * it, or a caller takes it from there), so the outer holds the inner for
 * as long as it shows the ptr, and a take on the outer takes from it.
 */
static void shield_set_result(struct tide_future *outer, struct tide_future *inner)
{
	if (inner->ptr)
		outer->ptr_owner = tide_future_ref(inner);
	tide_future_set_result(outer, inner->value, inner->ptr);
}

/* The inner's callback: it holds a reference on both futures until it ran. */
static void shield_inner_done(struct tide_future *inner, void *arg)
{
	struct tide_future *outer = arg;

	if (!tide_future_done(outer)) {
		if (tide_future_cancelled(inner)) {
			tide_future_set_error(outer, -ECANCELED);
		} else if (inner->error) {
			tide_future_set_error(outer, tide_future_error(inner));
		} else {
			shield_set_result(outer, inner);
		}
	} else if (!tide_future_cancelled(inner)) {
		/* asyncio: the shield was cancelled, nobody will look at this error. */
		tide_future_error(inner);
	}
	tide_future_unref(outer);
	tide_future_unref(inner);
}

TIDE_EXTERN int tide_shield(struct tide_future *fut, struct tide_future **out)
{
	struct tide_future *outer;
	int err;

	if (!fut || !out)
		return -EINVAL;
	if ((err = tide_future_new(fut->loop, &outer)))
		return err;
	if (tide_future_done(fut)) {
		/* asyncio returns the done inner itself; a distinct future that
		 * already mirrors it keeps "*out is new" true for the caller. */
		if (tide_future_cancelled(fut))
			tide_future_set_error(outer, -ECANCELED);
		else if (fut->error)
			tide_future_set_error(outer, tide_future_error(fut));
		else
			shield_set_result(outer, fut);
		*out = outer;
		return 0;
	}
	if ((err = tide_future_add_done_callback(fut, shield_inner_done, outer))) {
		tide_future_unref(outer);
		return err;
	}
	/* The inner stays alive while shielded (the user may drop it), and the
	 * outer while the callback can still complete it. */
	tide_future_ref(fut);
	tide_future_ref(outer);
	*out = outer;
	return 0;
}

/* ------------------------------------------------------------ as_completed -- */

struct tide_as_completed {
	uint32_t refs;             /* the owner's, plus one per registered callback */
	bool closed;               /* freed by the owner: callbacks only drop their reference */
	bool timed_out;            /* the deadline passed: what is queued still comes out, then -ETIMEDOUT */
	struct tide_loop *loop;    /* the futures' loop, NULL when n == 0 */
	struct tide_handle timer;  /* the deadline, borrowed state (cancelled in free) */
	struct tide_future *wake;  /* the task parked in next(), or NULL */
	size_t n;                  /* futures */
	size_t head, tail;         /* done[head, tail): done, not yet returned */
	struct tide_future **futs; /* the n futures (references until free) */
	struct tide_future **done; /* completion order; each entry of futs enters once */
};

static void ac_unref(struct tide_as_completed *it)
{
	if (--it->refs == 0)
		tide__free(it);
}

static void ac_child_done(struct tide_future *f, void *arg)
{
	struct tide_as_completed *it = arg;

	if (!it->closed && !it->timed_out) {
		it->done[it->tail++] = f;
		wake_up(it->wake);
	}
	ac_unref(it);
}

static void ac_timeout(void *arg)
{
	struct tide_as_completed *it = arg;

	it->timed_out = true;
	wake_up(it->wake);
}

/* A future of as_completed's list and its place in it. */
struct ac_entry {
	uintptr_t fut;
	size_t index;
};

static int ac_entry_cmp(const void *a, const void *b)
{
	const struct ac_entry *x = a, *y = b;

	if (x->fut != y->fut)
		return x->fut < y->fut ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * asyncio's as_completed takes the set of its futures: a future listed
 * twice comes out once. Marks in repeat[i] each futs[i] listed before
 * (sorting, so that a long list costs n log n). -ENOMEM.
 */
static int ac_find_repeats(struct tide_future *const *futs, size_t n, bool *repeat)
{
	struct ac_entry *e;
	size_t i;

	if (n < 2)
		return 0;
	if (!(e = tide__malloc(n * sizeof(*e))))
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		e[i].fut = (uintptr_t)futs[i];
		e[i].index = i;
	}
	qsort(e, n, sizeof(*e), ac_entry_cmp);
	for (i = 1; i < n; i++)
		if (e[i].fut == e[i - 1].fut)
			repeat[e[i].index] = true;
	tide__free(e);
	return 0;
}

TIDE_EXTERN int tide_as_completed_new(struct tide_future *const *futs, size_t n, double timeout,
				      struct tide_as_completed **out)
{
	struct tide_as_completed *it;
	struct tide_loop *loop = n && futs && futs[0] ? futs[0]->loop : NULL;
	bool no_timeout, *repeat;
	size_t i, m = 0;
	int err = 0;

	if (!out || check_futures(loop, futs, n) || check_timeout(timeout, &no_timeout))
		return -EINVAL;
	if (n > (SIZE_MAX - sizeof(*it)) / (2 * sizeof(*futs) + sizeof(*repeat)))
		return -ENOMEM;
	/* One block: the two arrays stay valid as long as any callback may run
	 * (the repeat marks after them are only needed here). */
	if (!(it = tide__calloc(1, sizeof(*it) + 2 * n * sizeof(*futs) + n * sizeof(*repeat))))
		return -ENOMEM;
	it->refs = 1;
	it->loop = loop;
	it->futs = (struct tide_future **)(it + 1);
	it->done = it->futs + n;
	repeat = (bool *)(it->done + n);
	if ((err = ac_find_repeats(futs, n, repeat))) {
		ac_unref(it);
		return err;
	}
	for (i = 0; i < n && !err; i++) {
		if (repeat[i])
			continue;
		it->futs[m++] = futs[i];
		/* Already done: first out, in the order given. */
		if (tide_future_done(futs[i]))
			it->done[it->tail++] = futs[i];
		else if (!(err = tide_future_add_done_callback(futs[i], ac_child_done, it)))
			it->refs++;
	}
	it->n = m;
	if (!err && loop && !no_timeout)
		err = tide_call_later(loop, timeout, ac_timeout, it, &it->timer);
	if (err) {
		while (m--)
			it->refs -= (uint32_t)tide_future_remove_done_callback(it->futs[m], ac_child_done, it);
		ac_unref(it);
		return err;
	}
	for (i = 0; i < m; i++)
		tide_future_ref(it->futs[i]);
	*out = it;
	return 0;
}

TIDE_EXTERN int tide_as_completed_next(struct tide_as_completed *it, struct tide_future **next)
{
	int r;

	if (!tide_current_task())
		return TIDE_ENOT_IN_TASK;
	if (!it || !next || it->closed || (it->loop && it->loop != tide_current_task()->loop))
		return -EINVAL;
	for (;;) {
		if (it->head < it->tail) {
			*next = it->done[it->head++];
			return 0;
		}
		if (it->head == it->n)
			return -ENOENT;
		if (it->timed_out)
			return -ETIMEDOUT;
		if (it->wake)
			return -EBUSY; /* another task is parked on this iterator */
		/* -ECANCELED leaves whatever completed meanwhile for a later call. */
		if ((r = wake_await(it->loop, &it->wake)) < 0)
			return r;
	}
}

TIDE_EXTERN void tide_as_completed_free(struct tide_as_completed *it)
{
	size_t i;

	if (!it || it->closed)
		return;
	it->closed = true;
	tide_handle_cancel(&it->timer);
	for (i = 0; i < it->n; i++) {
		it->refs -= (uint32_t)tide_future_remove_done_callback(it->futs[i], ac_child_done, it);
		tide_future_unref(it->futs[i]);
	}
	ac_unref(it);
}

/* ---------------------------------------------------------------- timeouts -- */

enum { TS_ENTERED, TS_EXPIRING, TS_EXPIRED };

/* asyncio.Timeout. The timer borrows it: exit cancels the timer, then frees. */
struct tide_timeout {
	struct tide_future *task;  /* the task inside the scope (a reference) */
	struct tide_handle timer;  /* the deadline's callback, slot NULL when none */
	double when;               /* the deadline in loop time, or TIDE_TIMEOUT_NONE */
	int cancelling;            /* the task's cancelling() count at entry */
	int state;                 /* TS_* */
};

static void timeout_fire(void *arg)
{
	struct tide_timeout *t = arg;

	t->timer.slot = NULL;
	t->state = TS_EXPIRING;
	tide_task_cancel(t->task);
}

/* Arms the deadline at loop time `when` (+inf: none). */
static int timeout_arm(struct tide_timeout *t, double when)
{
	struct tide_loop *loop = t->task->loop;

	tide_handle_cancel(&t->timer);
	t->timer.slot = NULL;
	t->when = when;
	if (isinf(when) && when > 0)
		return 0;
	/* A deadline already past expires through call_soon (asyncio's
	 * reschedule): ahead of what is queued after this, such as the
	 * task's own next step in a tide_sleep(0). */
	if (when <= tide_loop_time(loop))
		return tide_call_soon(loop, timeout_fire, t, &t->timer);
	return tide_call_at(loop, when, timeout_fire, t, &t->timer);
}

TIDE_EXTERN int tide_timeout_enter(double delay, struct tide_timeout **out)
{
	struct tide_future *me = tide_current_task();
	struct tide_timeout *t;
	bool none;
	int err;

	if (!me)
		return TIDE_ENOT_IN_TASK;
	if (!out || check_timeout(delay, &none))
		return -EINVAL;
	if (!(t = tide__calloc(1, sizeof(*t))))
		return -ENOMEM;
	t->task = tide_future_ref(me);
	t->cancelling = tide_task_cancelling(me);
	t->state = TS_ENTERED;
	if ((err = timeout_arm(t, none ? TIDE_TIMEOUT_NONE : tide_loop_time(me->loop) + delay))) {
		tide_future_unref(t->task);
		tide__free(t);
		return err;
	}
	*out = t;
	return 0;
}

TIDE_EXTERN int tide_timeout_reschedule(struct tide_timeout *t, double when)
{
	if (!t || isnan(when))
		return -EINVAL;
	/* asyncio: an expiring scope's cancellation is already on its way. */
	if (t->state != TS_ENTERED)
		return TIDE_EINVALID_STATE;
	return timeout_arm(t, when);
}

TIDE_EXTERN int tide_timeout_when(const struct tide_timeout *t, double *when)
{
	if (!t || !when)
		return -EINVAL;
	*when = t->when;
	return 0;
}

TIDE_EXTERN int tide_timeout_expired(const struct tide_timeout *t)
{
	if (!t)
		return -EINVAL;
	return t->state != TS_ENTERED;
}

TIDE_EXTERN int tide_timeout_exit(struct tide_timeout *t)
{
	int r = 0;

	if (!t)
		return -EINVAL;
	/* Only the task that entered may leave (asyncio's RuntimeError). */
	if (tide_current_task() != t->task)
		return -EINVAL;
	tide_handle_cancel(&t->timer);
	if (t->state == TS_EXPIRING) {
		t->state = TS_EXPIRED;
		/* Ours if taking our request back leaves no more than there were
		 * at entry; otherwise an outer scope or another canceller also
		 * wants this task cancelled, and that goes on (-ECANCELED). The
		 * core voids an owed -ECANCELED when the count reaches zero. */
		r = tide_task_uncancel(t->task) <= t->cancelling ? -ETIMEDOUT : -ECANCELED;
	}
	tide_future_unref(t->task);
	tide__free(t);
	return r;
}

/* --------------------------------------------------------------- taskgroup -- */

struct tg_child {
	struct tg_child *prev, *next; /* the group's running children */
	struct tide_taskgroup *tg;    /* owner (one reference per child) */
	struct tide_future *task;     /* the child (a reference) */
};

/* asyncio.TaskGroup. Counted: the owner, and one per child still running. */
struct tide_taskgroup {
	uint32_t refs;
	struct tide_loop *loop;
	struct tg_child *children;  /* running children */
	size_t nchildren;
	struct tide_future *parent; /* the task the group belongs to (a reference), or NULL until wait */
	int base_cancelling;        /* the parent's cancelling() count when it joined */
	int error;                  /* the first child's error, 0 if none */
	int body_error;             /* the body's own (tide_taskgroup_abort), 0 if none */
	int *errs;                  /* every child's error, in the order they ended */
	size_t nerrs, errs_cap;
	bool errs_short;            /* no memory to keep one of them */
	struct tide_future *wake;   /* the parent parked in wait, or NULL */
	bool aborting;              /* children were cancelled: no more spawns */
	bool parent_cancel_requested; /* we cancelled the parent: wait uncancels it */
	bool waiting;               /* the parent is inside wait */
	bool finished;              /* wait returned: no more spawns */
	bool freed;                 /* the owner is gone: children's callbacks only clean up */
};

static void tg_unref(struct tide_taskgroup *tg)
{
	if (--tg->refs == 0) {
		tide__free(tg->errs);
		tide__free(tg);
	}
}

/* asyncio's _errors: one more child's error. */
static void tg_keep_error(struct tide_taskgroup *tg, int err)
{
	if (tg->nerrs == tg->errs_cap) {
		size_t cap = tg->errs_cap ? 2 * tg->errs_cap : 4;
		int *e = tide__malloc(cap * sizeof(*e));

		if (!e) {
			tg->errs_short = true;
			return;
		}
		if (tg->nerrs)
			memcpy(e, tg->errs, tg->nerrs * sizeof(*e));
		tide__free(tg->errs);
		tg->errs = e;
		tg->errs_cap = cap;
	}
	tg->errs[tg->nerrs++] = err;
}

/* asyncio's _abort: cancel every child still running. */
static void tg_abort(struct tide_taskgroup *tg)
{
	struct tg_child *c;

	tg->aborting = true;
	/* Cancelling only flags the child and queues callbacks: the list stays intact. */
	for (c = tg->children; c; c = c->next)
		if (!tide_future_done(c->task))
			tide_task_cancel(c->task);
}

static void tg_child_done(struct tide_future *task, void *arg)
{
	struct tg_child *c = arg;
	struct tide_taskgroup *tg = c->tg;
	int err;

	if (c->prev)
		c->prev->next = c->next;
	else
		tg->children = c->next;
	if (c->next)
		c->next->prev = c->prev;
	tg->nchildren--;
	tide_future_unref(c->task);
	tide__free(c);
	err = tide_future_cancelled(task) ? 0 : tide_future_error(task);
	if (tg->freed) {
		if (err)
			tide__report(tg->loop, "TaskGroup child failed after its group was freed", err, task, NULL);
	} else {
		if (err && !tg->error)
			tg->error = err;
		if (err)
			tg_keep_error(tg, err);
		if (err && !tg->aborting && !tg->parent_cancel_requested) {
			tg_abort(tg);
			/* Interrupt the parent's body, as asyncio does; inside wait the
			 * wake-up below is enough (and leaves the count alone). */
			if (tg->parent && !tg->waiting && !tide_future_done(tg->parent)) {
				tg->parent_cancel_requested = true;
				tide_task_cancel(tg->parent);
			}
		}
		if (tg->nchildren == 0)
			wake_up(tg->wake);
	}
	tg_unref(tg);
}

TIDE_EXTERN int tide_taskgroup_new(struct tide_loop *loop, struct tide_taskgroup **out)
{
	struct tide_future *me = tide_current_task();
	struct tide_taskgroup *tg;

	if (!loop || !out || (me && me->loop != loop))
		return -EINVAL;
	if (tide__loop_closed(loop))
		return TIDE_ECLOSED;
	if (!(tg = tide__calloc(1, sizeof(*tg))))
		return -ENOMEM;
	tg->refs = 1;
	tg->loop = loop;
	/* Made inside a task: that task is the parent whose body a failing
	 * child interrupts. Made outside: the parent is whoever waits. */
	if (me) {
		tg->parent = tide_future_ref(me);
		tg->base_cancelling = tide_task_cancelling(me);
	}
	*out = tg;
	return 0;
}

TIDE_EXTERN int tide_taskgroup_spawn(struct tide_taskgroup *tg, tide_task_cb fn, void *arg,
				     const struct tide_task_opts *opts, struct tide_future **out)
{
	struct tide_future *task;
	struct tg_child *c;
	int err;

	if (!tg || !fn || tg->freed)
		return -EINVAL;
	/* asyncio: "TaskGroup is finished" / "is shutting down". */
	if (tg->finished || tg->aborting)
		return TIDE_EINVALID_STATE;
	if (!(c = tide__malloc(sizeof(*c))))
		return -ENOMEM;
	if ((err = tide_task_spawn(tg->loop, fn, arg, opts, &task))) {
		tide__free(c);
		return err;
	}
	if ((err = tide_future_add_done_callback(task, tg_child_done, c))) {
		/* Cancelled before its first step, the body never runs. */
		tide_task_cancel(task);
		tide_future_unref(task);
		tide__free(c);
		return err;
	}
	c->tg = tg;
	c->task = task;
	c->prev = NULL;
	c->next = tg->children;
	if (tg->children)
		tg->children->prev = c;
	tg->children = c;
	tg->nchildren++;
	tg->refs++;
	if (out)
		*out = tide_future_ref(task);
	return 0;
}

TIDE_EXTERN int tide_taskgroup_wait(struct tide_taskgroup *tg)
{
	struct tide_future *me = tide_current_task();
	bool propagate = false;
	int r;

	if (!me)
		return TIDE_ENOT_IN_TASK;
	if (!tg || tg->freed || me->loop != tg->loop)
		return -EINVAL;
	if (tg->waiting)
		return -EBUSY;
	if (!tg->parent) {
		tg->parent = tide_future_ref(me);
		tg->base_cancelling = tide_task_cancelling(me);
	} else if (tg->parent != me) {
		return -EINVAL;
	}
	if (tg->finished)
		return tg->body_error ? tg->body_error : tg->error;
	tg->waiting = true;
	/* The body was cancelled from outside (asyncio's __aexit__ seeing a
	 * CancelledError): more requests than at entry, beyond our own. */
	if (tide_task_cancelling(me) > tg->base_cancelling + (tg->parent_cancel_requested ? 1 : 0)) {
		propagate = true;
		if (!tg->aborting)
			tg_abort(tg);
	}
	while (tg->nchildren > 0) {
		r = wake_await(tg->loop, &tg->wake);
		if (r == -ECANCELED) {
			/* While aborting, asyncio takes a cancellation here for the
			 * one we asked for; otherwise the parent is being cancelled:
			 * the children go, and so does the cancellation, after them. */
			if (!tg->aborting) {
				propagate = true;
				tg_abort(tg);
			}
		} else if (r < 0) {
			/* No memory for a wake-up future: let the loop turn and retry. */
			tide_yield();
		}
	}
	if (tg->parent_cancel_requested) {
		tg->parent_cancel_requested = false;
		/* If no other request is left, the cancellation was only ours
		 * (the core voids an owed one at this point). */
		if (tide_task_uncancel(me) <= tg->base_cancelling)
			propagate = false;
	}
	tg->waiting = false;
	tg->finished = true;
	if (!tg->error && propagate)
		tg->error = -ECANCELED;
	return tg->body_error ? tg->body_error : tg->error;
}

TIDE_EXTERN int tide_taskgroup_abort(struct tide_taskgroup *tg, int err)
{
	if (!tg || tg->freed || err >= 0)
		return -EINVAL;
	if (tg->finished || tg->waiting)
		return TIDE_EINVALID_STATE;
	if (!tg->body_error)
		tg->body_error = err;
	if (!tg->aborting)
		tg_abort(tg);
	return 0;
}

TIDE_EXTERN ssize_t tide_taskgroup_errors(const struct tide_taskgroup *tg, int *errs, size_t cap)
{
	if (!tg || (cap && !errs))
		return -EINVAL;
	if (tg->errs_short)
		return -ENOMEM;
	if (cap > tg->nerrs)
		cap = tg->nerrs;
	if (cap)
		memcpy(errs, tg->errs, cap * sizeof(*errs));
	return (ssize_t)tg->nerrs;
}

TIDE_EXTERN void tide_taskgroup_free(struct tide_taskgroup *tg)
{
	if (!tg || tg->freed)
		return;
	tg->freed = true;
	/* Freed without a wait: nobody will wait for the children, so they go. */
	if (tg->nchildren)
		tg_abort(tg);
	if (tg->parent) {
		if (tg->parent_cancel_requested)
			tide_task_uncancel(tg->parent);
		tide_future_unref(tg->parent);
		tg->parent = NULL;
	}
	tg_unref(tg);
}
