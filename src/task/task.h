/* SPDX-License-Identifier: MIT */
/*
 * task.h: the task layer (src/task): stackful coroutines and their switch,
 * tasks, parking (a wait without a future), the sync primitives and the
 * combinators, and the awaitable wrappers of ops. It sits on src/io and
 * src/core and knows nothing of transports or streams.
 *
 * The hard part it encodes is cancellation: a cancel of a parked task takes
 * effect through what it waits on, exactly once, and a wake-up that chose a
 * waiter is never lost to a cancel that came after it.
 */
#ifndef TIDE_TASK_H
#define TIDE_TASK_H

#include "io/io.h"

/* ---------------------------------------------------------------- tasks -- */

/*
 * cb(task, arg) runs on the loop thread as task ends, right after its
 * future completed and before its done callbacks: synchronously, so that
 * a closed loop, which drops callbacks, cannot lose it (cfuture.c).
 */
void tide__task_on_finish(struct tide_future *task, void (*cb)(struct tide_future *task, void *arg), void *arg);

/* Whether the running task may start an op: TIDE_ENOT_IN_TASK outside a
 * task, -ECANCELED (taken) when a cancellation is owed to it, else 0. */
int tide__task_op_may_start(void);

/*
 * Parking: a wait without a future, for the primitives of sync.c. It has a
 * future's semantics (a cancel of the parked task takes effect through it,
 * a wake-up "chooses" it) without an allocation or a done callback.
 */
enum { TIDE__PARK_PENDING, TIDE__PARK_CHOSEN, TIDE__PARK_CANCELLED };
struct tide__park {
	void *task;  /* the parked task (struct tide__task) */
	int state;   /* TIDE__PARK_* */
	int code;    /* what the chooser passed: 0 or an error */
};
/*
 * Parks the running task in p until tide__unpark(p) (returns its code) or a
 * cancellation (-ECANCELED, with p->state telling whether p had been
 * chosen first). TIDE_ENOT_IN_TASK outside a task.
 */
int tide__park(struct tide__park *p);
/*
 * After tide__park returned -ECANCELED, the caller delivers an outcome
 * after all (it could not be undone): the cancel stays owed to the
 * running task's next wait, as for an op that finished first.
 */
void tide__park_owe_cancel(void);
/* Chooses a pending p and schedules its task; false if p is not pending. */
bool tide__unpark(struct tide__park *p, int code);

/*
 * A FIFO of parked tasks (sync.c's primitives, stream.c's drain and
 * wait_closed). Each waiter lives on its task's stack for the whole wait;
 * the list is doubly linked so that a cancelled waiter leaves in O(1).
 */
struct tide__wlist;
struct tide__waiter {
	struct tide__waiter *next; /* towards the tail (later arrivals) */
	struct tide__waiter *prev; /* towards the head */
	struct tide__wlist *list;  /* the list it is in; NULL once popped or taken out */
	struct tide__park park;    /* where the task waits; CHOSEN means "woken" */
};
struct tide__wlist {
	struct tide__waiter *head;
	struct tide__waiter *tail;
};

static inline void tide__wl_push(struct tide__wlist *l, struct tide__waiter *w)
{
	w->next = NULL;
	w->prev = l->tail;
	w->list = l;
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
}

static inline void tide__wl_unlink(struct tide__waiter *w)
{
	struct tide__wlist *l = w->list;

	if (w->prev)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	w->next = w->prev = NULL;
	w->list = NULL;
}

/*
 * Chooses the first waiter that can still take a wake-up, with code.
 * Waiters whose park is no longer pending (cancelled, not yet resumed) are
 * dropped on the way: they must not absorb the wake-up.
 */
static inline bool tide__wl_wake_first(struct tide__wlist *l, int code)
{
	struct tide__waiter *w;

	while ((w = l->head)) {
		tide__wl_unlink(w);
		if (tide__unpark(&w->park, code))
			return true;
	}
	return false;
}

/* Wakes up to max waiters with code; returns how many. */
static inline unsigned tide__wl_wake_all(struct tide__wlist *l, unsigned max, int code)
{
	unsigned n = 0;

	while (n < max && tide__wl_wake_first(l, code))
		n++;
	return n;
}

#endif /* TIDE_TASK_H */
