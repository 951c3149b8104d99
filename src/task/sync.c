/* SPDX-License-Identifier: MIT */
/*
 * sync.c: asyncio's synchronisation primitives for tasks: Lock, Event,
 * Condition, Semaphore and BoundedSemaphore, Queue (FIFO, LIFO, priority)
 * and Barrier, with the semantics of CPython's Lib/asyncio/locks.py and
 * queues.py; and the wait for a signal (tide_signal_wait).
 *
 * Every wait is the same move: a waiter node on the waiting task's own stack
 * (a suspended task's stack stays put, so no allocation) joins a FIFO list
 * and the task parks in it (tide__park: a future's semantics without the
 * future). A wake-up pops the first waiter still pending and chooses it.
 *
 * The hard part is a waiter that is cancelled after it was chosen (its
 * park was chosen, but the task's cancellation came before it ran).
 * asyncio raises CancelledError in it and hands the wake-up on (Lock's
 * _wake_up_first, Semaphore's value bookkeeping, Queue's _wakeup_next);
 * otherwise the wake-up, and with it the lock or the item slot, would be
 * swallowed. The task core's await returns -ECANCELED in that case, as
 * asyncio does, and wait_in() reports W_CHOSEN_FAILED for the caller to
 * pass the wake-up on.
 *
 * Freeing a primitive while tasks wait on it fails their waits with
 * TIDE_ECLOSED; the memory stays until the last of them has left, because
 * their waiter nodes and their resumption still read it.
 */
#include "task/task.h"

#include <errno.h>
#include <limits.h>

/* ------------------------------------------------------------ waiters -- */

/* Whether some waiter can still take a wake-up (asyncio's "not cancelled"). */
static bool wl_has_pending(const struct tide__wlist *l)
{
	for (const struct tide__waiter *w = l->head; w; w = w->next)
		if (w->park.state == TIDE__PARK_PENDING)
			return true;
	return false;
}

/* The primitive is being freed: every waiter leaves with TIDE_ECLOSED. */
static void wl_close(struct tide__wlist *l)
{
	tide__wl_wake_all(l, UINT_MAX, TIDE_ECLOSED);
}

/* ----------------------------------------------------------- objects -- */

/* What every primitive begins with. */
struct sync_obj {
	struct tide_loop *loop;             /* the loop whose tasks may wait */
	uint32_t users;                     /* tasks suspended in a wait on it */
	bool freed;                         /* the owner freed it: destroy when users is 0 */
	void (*destroy)(struct sync_obj *o); /* releases its memory */
};

static void obj_init(struct sync_obj *o, struct tide_loop *loop, void (*destroy)(struct sync_obj *))
{
	o->loop = loop;
	o->users = 0;
	o->freed = false;
	o->destroy = destroy;
}

/* The owner is done with it; waiters, if any, free it as they leave. */
static void obj_release(struct sync_obj *o)
{
	o->freed = true;
	if (!o->users)
		o->destroy(o);
}

/* How a wait ended. */
enum wake_how {
	W_WOKEN,        /* chosen: the wake-up is ours */
	W_FAILED,       /* cancelled (or an error) before being chosen */
	W_CHOSEN_FAILED, /* chosen, then cancelled: pass the wake-up on */
	W_GONE,         /* the primitive was freed: touch nothing of it */
};

/*
 * Waits in l until woken; *err gets 0 or the error (-ECANCELED, TIDE_ECLOSED,
 * TIDE_ENOT_IN_TASK, -ENOMEM...). On return the waiter is out of l.
 */
static enum wake_how wait_in(struct sync_obj *o, struct tide__wlist *l, int *err)
{
	struct tide_future *task = tide_current_task();
	struct tide__waiter w;
	bool chosen;
	int64_t r;

	if (!task) {
		*err = TIDE_ENOT_IN_TASK;
		return W_FAILED;
	}
	if (tide_future_loop(task) != o->loop) {
		*err = -EINVAL;
		return W_FAILED;
	}
	w.park.state = TIDE__PARK_PENDING;
	tide__wl_push(l, &w);
	o->users++;
	/*
	 * Chosen, but cancelled before we ran: tide__park returns -ECANCELED
	 * (asyncio raises at the resumption point whatever the waiter future
	 * holds), and `chosen` tells the caller to pass the wake-up on.
	 */
	r = tide__park(&w.park);
	o->users--;
	if (w.list)
		tide__wl_unlink(&w);
	chosen = w.park.state == TIDE__PARK_CHOSEN && w.park.code == 0;
	if (o->freed) {
		if (!o->users)
			o->destroy(o);
		*err = r < 0 ? (int)r : TIDE_ECLOSED;
		return W_GONE;
	}
	if (r >= 0) {
		*err = 0;
		return W_WOKEN;
	}
	*err = (int)r;
	return chosen ? W_CHOSEN_FAILED : W_FAILED;
}

/* --------------------------------------------------------------- Lock -- */

/*
 * Ownership passes straight from release() to the first waiter, so a task
 * that arrives in between queues behind it (asyncio gets the same fairness
 * by refusing the fast path while a woken waiter is still in _waiters).
 * The visible difference: locked() stays 1 across such a hand-over.
 */
struct tide_lock {
	struct sync_obj obj;
	bool locked;          /* held, or handed to a woken waiter */
	struct tide__wlist waiters; /* acquirers in arrival order */
};

static void lock_destroy(struct sync_obj *o)
{
	tide__free(tide__container_of(o, struct tide_lock, obj));
}

TIDE_EXTERN int tide_lock_new(struct tide_loop *loop, struct tide_lock **out)
{
	struct tide_lock *l;

	if (!loop || !out)
		return -EINVAL;
	if (!(l = tide__calloc(1, sizeof(*l))))
		return -ENOMEM;
	obj_init(&l->obj, loop, lock_destroy);
	*out = l;
	return 0;
}

TIDE_EXTERN void tide_lock_free(struct tide_lock *l)
{
	if (!l)
		return;
	wl_close(&l->waiters);
	obj_release(&l->obj);
}

/* Hands the lock to the next waiter, or unlocks it if nobody can take it. */
static void lock_pass(struct tide_lock *l)
{
	if (!tide__wl_wake_first(&l->waiters, 0))
		l->locked = false;
}

TIDE_EXTERN int tide_lock_acquire(struct tide_lock *l)
{
	int err;

	if (!l)
		return -EINVAL;
	if (!l->locked) {
		l->locked = true;
		return 0;
	}
	switch (wait_in(&l->obj, &l->waiters, &err)) {
	case W_WOKEN:
		return 0; /* release() handed it to us: still locked */
	case W_CHOSEN_FAILED:
		lock_pass(l); /* asyncio's _wake_up_first on CancelledError */
		return err;
	default:
		return err;
	}
}

TIDE_EXTERN int tide_lock_release(struct tide_lock *l)
{
	if (!l)
		return -EINVAL;
	if (!l->locked)
		return -EPERM;
	lock_pass(l);
	return 0;
}

TIDE_EXTERN int tide_lock_locked(const struct tide_lock *l)
{
	return l && l->locked;
}

/* -------------------------------------------------------------- Event -- */

struct tide_event {
	struct sync_obj obj;
	bool set;             /* the flag */
	struct tide__wlist waiters; /* tasks in wait(), all woken by set() */
};

static void event_destroy(struct sync_obj *o)
{
	tide__free(tide__container_of(o, struct tide_event, obj));
}

TIDE_EXTERN int tide_event_new(struct tide_loop *loop, struct tide_event **out)
{
	struct tide_event *e;

	if (!loop || !out)
		return -EINVAL;
	if (!(e = tide__calloc(1, sizeof(*e))))
		return -ENOMEM;
	obj_init(&e->obj, loop, event_destroy);
	*out = e;
	return 0;
}

TIDE_EXTERN void tide_event_free(struct tide_event *e)
{
	if (!e)
		return;
	wl_close(&e->waiters);
	obj_release(&e->obj);
}

TIDE_EXTERN int tide_event_wait(struct tide_event *e)
{
	int err;

	if (!e)
		return -EINVAL;
	if (e->set)
		return 0;
	/* A woken waiter returns 0 even if clear() came first, as in asyncio. */
	if (wait_in(&e->obj, &e->waiters, &err) == W_WOKEN)
		return 0;
	return err;
}

TIDE_EXTERN void tide_event_set(struct tide_event *e)
{
	if (!e || e->set)
		return;
	e->set = true;
	tide__wl_wake_all(&e->waiters, UINT_MAX, 0);
}

TIDE_EXTERN void tide_event_clear(struct tide_event *e)
{
	if (e)
		e->set = false;
}

TIDE_EXTERN int tide_event_is_set(const struct tide_event *e)
{
	return e && e->set;
}

/* ---------------------------------------------------------- Condition -- */

struct tide_condition {
	struct sync_obj obj;
	struct tide_lock *lock; /* the lock wait() releases and re-acquires */
	bool own_lock;          /* made by tide_condition_new: freed with the condition */
	struct tide__wlist waiters;   /* tasks in wait(), woken by notify in order */
};

static void condition_destroy(struct sync_obj *o)
{
	tide__free(tide__container_of(o, struct tide_condition, obj));
}

TIDE_EXTERN int tide_condition_new(struct tide_loop *loop, struct tide_lock *lock,
				   struct tide_condition **out)
{
	struct tide_condition *c;
	int err;

	if (!loop || !out || (lock && lock->obj.loop != loop))
		return -EINVAL;
	if (!(c = tide__calloc(1, sizeof(*c))))
		return -ENOMEM;
	if (!lock) {
		if ((err = tide_lock_new(loop, &lock)) < 0) {
			tide__free(c);
			return err;
		}
		c->own_lock = true;
	}
	obj_init(&c->obj, loop, condition_destroy);
	c->lock = lock;
	*out = c;
	return 0;
}

TIDE_EXTERN void tide_condition_free(struct tide_condition *c)
{
	if (!c)
		return;
	if (c->own_lock)
		tide_lock_free(c->lock);
	wl_close(&c->waiters);
	obj_release(&c->obj);
}

TIDE_EXTERN struct tide_lock *tide_condition_lock(struct tide_condition *c)
{
	return c ? c->lock : NULL;
}

static unsigned condition_wake(struct tide_condition *c, unsigned n)
{
	return tide__wl_wake_all(&c->waiters, n, 0);
}

TIDE_EXTERN int tide_condition_wait(struct tide_condition *c)
{
	struct tide_future *task = tide_current_task();
	struct tide_lock *lock;
	bool own;
	int err, ret;

	if (!c)
		return -EINVAL;
	if (!c->lock->locked)
		return -EPERM;
	/* Checked before the lock is let go: failing later would leave it released. */
	if (!task)
		return TIDE_ENOT_IN_TASK;
	if (tide_future_loop(task) != c->obj.loop)
		return -EINVAL;
	/* The condition may be gone when we come back: keep what the re-acquire needs. */
	lock = c->lock;
	own = c->own_lock;
	tide_lock_release(lock);
	switch (wait_in(&c->obj, &c->waiters, &err)) {
	case W_WOKEN:
		ret = 0;
		break;
	case W_CHOSEN_FAILED:
		/*
		 * We took a notify and cannot use it: give it to the next waiter
		 * (asyncio 3.13 does the same; a spurious wake-up is allowed by
		 * the condition variable protocol, a lost one is not).
		 */
		condition_wake(c, 1);
		ret = err;
		break;
	case W_GONE:
		if (own)
			return err; /* the lock went with the condition */
		ret = err;
		break;
	default:
		ret = err;
		break;
	}
	/* The lock is re-acquired even when cancelled, as asyncio's finally does. */
	for (;;) {
		err = tide_lock_acquire(lock);
		if (err == 0)
			break;
		if (err != -ECANCELED)
			return err; /* the lock is gone, or no memory: nothing to wait for */
		ret = -ECANCELED;
	}
	return ret;
}

TIDE_EXTERN int tide_condition_notify(struct tide_condition *c, unsigned n)
{
	if (!c)
		return -EINVAL;
	if (!c->lock->locked)
		return -EPERM;
	return (int)condition_wake(c, n > INT_MAX ? INT_MAX : n);
}

TIDE_EXTERN int tide_condition_notify_all(struct tide_condition *c)
{
	return tide_condition_notify(c, UINT_MAX);
}

/* ---------------------------------------------------------- Semaphore -- */

/*
 * As asyncio's: value counts the free units; a wake-up takes its unit at
 * once (the waker decrements), so a woken waiter that is cancelled gives
 * the unit back and wakes the next.
 */
struct tide_semaphore {
	struct sync_obj obj;
	unsigned value;       /* free units */
	unsigned woken;       /* waiters given a unit that have not run yet */
	unsigned bound;       /* the initial value: the ceiling of a bounded one */
	bool bounded;         /* BoundedSemaphore: release past bound is -EOVERFLOW */
	struct tide__wlist waiters; /* acquirers in arrival order */
};

static void semaphore_destroy(struct sync_obj *o)
{
	tide__free(tide__container_of(o, struct tide_semaphore, obj));
}

TIDE_EXTERN int tide_semaphore_new(struct tide_loop *loop, unsigned value, int bounded,
				   struct tide_semaphore **out)
{
	struct tide_semaphore *s;

	if (!loop || !out)
		return -EINVAL;
	if (!(s = tide__calloc(1, sizeof(*s))))
		return -ENOMEM;
	obj_init(&s->obj, loop, semaphore_destroy);
	s->value = value;
	s->bound = value;
	s->bounded = bounded != 0;
	*out = s;
	return 0;
}

TIDE_EXTERN void tide_semaphore_free(struct tide_semaphore *s)
{
	if (!s)
		return;
	wl_close(&s->waiters);
	obj_release(&s->obj);
}

/*
 * asyncio's locked(): no unit, or someone is already queued for one, or
 * was given one and has not run yet (asyncio keeps a woken waiter's
 * future in _waiters until it runs, and counts it): a task that releases
 * and acquires again in between must not overtake it.
 */
static bool sem_locked(const struct tide_semaphore *s)
{
	return s->value == 0 || s->woken > 0 || wl_has_pending(&s->waiters);
}

/* Gives free units to waiters while there are both. */
static void sem_wake(struct tide_semaphore *s)
{
	while (s->value > 0 && tide__wl_wake_first(&s->waiters, 0)) {
		s->value--;
		s->woken++;
	}
}

TIDE_EXTERN int tide_semaphore_acquire(struct tide_semaphore *s)
{
	int err;

	if (!s)
		return -EINVAL;
	if (!sem_locked(s)) {
		s->value--;
		return 0;
	}
	switch (wait_in(&s->obj, &s->waiters, &err)) {
	case W_GONE:
		return err;
	case W_CHOSEN_FAILED:
		s->woken--;
		s->value++; /* the unit the waker took for us */
		break;
	case W_WOKEN:
		s->woken--;
		break;
	default:
		break;
	}
	/*
	 * asyncio's finally: units may be free with waiters queued (a waiter
	 * that was cancelled while releases came in); hand them out.
	 */
	sem_wake(s);
	return err;
}

TIDE_EXTERN int tide_semaphore_release(struct tide_semaphore *s)
{
	if (!s)
		return -EINVAL;
	if ((s->bounded && s->value >= s->bound) || s->value == UINT_MAX)
		return -EOVERFLOW;
	s->value++;
	sem_wake(s);
	return 0;
}

TIDE_EXTERN int tide_semaphore_locked(const struct tide_semaphore *s)
{
	return s && sem_locked(s);
}

TIDE_EXTERN unsigned tide_semaphore_value(const struct tide_semaphore *s)
{
	return s ? s->value : 0;
}

/* -------------------------------------------------------------- Queue -- */

/* One item; seq keeps FIFO order among equal priorities. */
struct qent {
	int64_t prio;
	uint64_t seq;
	void *item;
};

/*
 * One growable array for the three kinds: a ring (FIFO), a stack (LIFO),
 * a binary min-heap on (prio, seq) (priority). It grows by doubling (capped
 * at maxsize) and never shrinks, so a queue in steady use stops allocating.
 */
struct tide_queue {
	struct sync_obj obj;
	enum tide_queue_kind kind;
	size_t maxsize;       /* 0: unbounded */
	struct qent *buf;     /* the items */
	size_t cap;           /* slots in buf */
	size_t head;          /* FIFO: index of the oldest item */
	size_t len;           /* items held */
	uint64_t seq;         /* next arrival number (priority ties) */
	size_t unfinished;    /* items put and not yet task_done() */
	struct tide__wlist getters; /* get() waiting for an item */
	struct tide__wlist putters; /* put() waiting for room */
	struct tide__wlist joiners; /* join() waiting for unfinished to reach 0 */
};

static void queue_destroy(struct sync_obj *o)
{
	struct tide_queue *q = tide__container_of(o, struct tide_queue, obj);

	tide__free(q->buf);
	tide__free(q);
}

TIDE_EXTERN int tide_queue_new(struct tide_loop *loop, enum tide_queue_kind kind, size_t maxsize,
			       struct tide_queue **out)
{
	struct tide_queue *q;

	if (!loop || !out)
		return -EINVAL;
	if (kind != TIDE_QUEUE_FIFO && kind != TIDE_QUEUE_LIFO && kind != TIDE_QUEUE_PRIORITY)
		return -EINVAL;
	if (!(q = tide__calloc(1, sizeof(*q))))
		return -ENOMEM;
	obj_init(&q->obj, loop, queue_destroy);
	q->kind = kind;
	q->maxsize = maxsize;
	*out = q;
	return 0;
}

TIDE_EXTERN void tide_queue_free(struct tide_queue *q)
{
	if (!q)
		return;
	wl_close(&q->getters);
	wl_close(&q->putters);
	wl_close(&q->joiners);
	obj_release(&q->obj);
}

static bool q_full(const struct tide_queue *q)
{
	return q->maxsize && q->len >= q->maxsize;
}

static int q_grow(struct tide_queue *q)
{
	size_t ncap = q->cap ? q->cap * 2 : 8;
	struct qent *nb;

	if (ncap < q->cap || ncap > SIZE_MAX / sizeof(*nb))
		return -ENOMEM;
	if (q->maxsize && ncap > q->maxsize)
		ncap = q->maxsize;
	if (!(nb = tide__realloc(q->buf, ncap * sizeof(*nb))))
		return -ENOMEM;
	/* A full ring that wraps: slide its older part to the new end. */
	if (q->kind == TIDE_QUEUE_FIFO && q->head > 0) {
		size_t delta = ncap - q->cap;

		memmove(nb + q->head + delta, nb + q->head, (q->cap - q->head) * sizeof(*nb));
		q->head += delta;
	}
	q->buf = nb;
	q->cap = ncap;
	return 0;
}

static bool qent_less(const struct qent *a, const struct qent *b)
{
	return a->prio < b->prio || (a->prio == b->prio && a->seq < b->seq);
}

static void heap_up(struct qent *h, size_t i)
{
	struct qent e = h[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!qent_less(&e, &h[p]))
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = e;
}

static void heap_down(struct qent *h, size_t n, size_t i)
{
	struct qent e = h[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && qent_less(&h[c + 1], &h[c]))
			c++;
		if (!qent_less(&h[c], &e))
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = e;
}

static int q_store(struct tide_queue *q, void *item, int64_t prio)
{
	struct qent e = { prio, q->seq++, item };
	size_t i;
	int err;

	if (q->len == q->cap && (err = q_grow(q)) < 0)
		return err;
	switch (q->kind) {
	case TIDE_QUEUE_FIFO:
		i = q->head + q->len;
		if (i >= q->cap)
			i -= q->cap;
		q->buf[i] = e;
		q->len++;
		break;
	case TIDE_QUEUE_LIFO:
		q->buf[q->len++] = e;
		break;
	case TIDE_QUEUE_PRIORITY:
		q->buf[q->len] = e;
		heap_up(q->buf, q->len++);
		break;
	}
	return 0;
}

static void *q_take(struct tide_queue *q)
{
	void *item;

	switch (q->kind) {
	case TIDE_QUEUE_FIFO:
		item = q->buf[q->head].item;
		if (++q->head == q->cap)
			q->head = 0;
		q->len--;
		return item;
	case TIDE_QUEUE_LIFO:
		return q->buf[--q->len].item;
	case TIDE_QUEUE_PRIORITY:
	default:
		item = q->buf[0].item;
		if (--q->len > 0) {
			q->buf[0] = q->buf[q->len];
			heap_down(q->buf, q->len, 0);
		}
		return item;
	}
}

TIDE_EXTERN int tide_queue_put_nowait(struct tide_queue *q, void *item, int64_t priority)
{
	int err;

	if (!q)
		return -EINVAL;
	if (q_full(q))
		return TIDE_EQUEUE_FULL;
	if ((err = q_store(q, item, priority)) < 0)
		return err;
	q->unfinished++;
	tide__wl_wake_first(&q->getters, 0);
	return 0;
}

TIDE_EXTERN int tide_queue_get_nowait(struct tide_queue *q, void **item)
{
	if (!q || !item)
		return -EINVAL;
	if (q->len == 0)
		return TIDE_EQUEUE_EMPTY;
	*item = q_take(q);
	tide__wl_wake_first(&q->putters, 0);
	return 0;
}

/*
 * put() and get() loop as asyncio's do: a woken waiter re-checks, because
 * a *_nowait call may have taken the room or the item first (it then queues
 * again at the tail, as in asyncio).
 */
TIDE_EXTERN int tide_queue_put(struct tide_queue *q, void *item, int64_t priority)
{
	enum wake_how how;
	int err;

	if (!q)
		return -EINVAL;
	while (q_full(q)) {
		how = wait_in(&q->obj, &q->putters, &err);
		if (how == W_WOKEN)
			continue;
		/* Woken for room we will not use: the next putter may. */
		if (how == W_CHOSEN_FAILED && !q_full(q))
			tide__wl_wake_first(&q->putters, 0);
		return err;
	}
	return tide_queue_put_nowait(q, item, priority);
}

TIDE_EXTERN int tide_queue_get(struct tide_queue *q, void **item)
{
	enum wake_how how;
	int err;

	if (!q || !item)
		return -EINVAL;
	while (q->len == 0) {
		how = wait_in(&q->obj, &q->getters, &err);
		if (how == W_WOKEN)
			continue;
		/* Woken for an item we will not take: the next getter may. */
		if (how == W_CHOSEN_FAILED && q->len > 0)
			tide__wl_wake_first(&q->getters, 0);
		return err;
	}
	return tide_queue_get_nowait(q, item);
}

TIDE_EXTERN size_t tide_queue_size(const struct tide_queue *q)
{
	return q ? q->len : 0;
}

TIDE_EXTERN int tide_queue_task_done(struct tide_queue *q)
{
	if (!q)
		return -EINVAL;
	if (q->unfinished == 0)
		return -EOVERFLOW;
	if (--q->unfinished == 0)
		tide__wl_wake_all(&q->joiners, UINT_MAX, 0);
	return 0;
}

TIDE_EXTERN int tide_queue_join(struct tide_queue *q)
{
	int err;

	if (!q)
		return -EINVAL;
	if (q->unfinished == 0)
		return 0;
	if (wait_in(&q->obj, &q->joiners, &err) == W_WOKEN)
		return 0;
	return err;
}

/* ------------------------------------------------------------ Barrier -- */

/* asyncio's _BarrierState. */
enum barrier_state {
	B_FILLING,   /* parties arrive */
	B_DRAINING,  /* the last one came: the others leave with their index */
	B_RESETTING, /* reset() with parties inside: they leave broken */
	B_BROKEN,    /* abort(): every wait fails until reset() */
};

/*
 * asyncio builds Barrier on a Condition; one loop thread and no await in
 * between make the lock unnecessary here: the state is re-checked each time
 * a waiter runs again, which is what asyncio's wait_for predicates do.
 */
struct tide_barrier {
	struct sync_obj obj;
	unsigned parties;     /* how many wait() calls release each other */
	unsigned count;       /* parties inside wait() (filling or draining) */
	enum barrier_state state;
	struct tide__wlist waiters; /* every waiting task; all woken on each change */
};

static void barrier_destroy(struct sync_obj *o)
{
	tide__free(tide__container_of(o, struct tide_barrier, obj));
}

TIDE_EXTERN int tide_barrier_new(struct tide_loop *loop, unsigned parties, struct tide_barrier **out)
{
	struct tide_barrier *b;

	if (!loop || !out || parties == 0 || parties > INT_MAX)
		return -EINVAL;
	if (!(b = tide__calloc(1, sizeof(*b))))
		return -ENOMEM;
	obj_init(&b->obj, loop, barrier_destroy);
	b->parties = parties;
	b->state = B_FILLING;
	*out = b;
	return 0;
}

TIDE_EXTERN void tide_barrier_free(struct tide_barrier *b)
{
	if (!b)
		return;
	wl_close(&b->waiters);
	obj_release(&b->obj);
}

TIDE_EXTERN int tide_barrier_wait(struct tide_barrier *b)
{
	enum wake_how how;
	int err, ret;
	unsigned index;

	if (!b)
		return -EINVAL;
	/* asyncio's _block: wait while the previous round drains or resets. */
	while (b->state == B_DRAINING || b->state == B_RESETTING) {
		if (wait_in(&b->obj, &b->waiters, &err) != W_WOKEN)
			return err;
	}
	if (b->state == B_BROKEN)
		return TIDE_EBROKEN_BARRIER;
	index = b->count++;
	ret = (int)index;
	if (index + 1 == b->parties) {
		/* asyncio's _release: the round is complete. */
		b->state = B_DRAINING;
		tide__wl_wake_all(&b->waiters, UINT_MAX, 0);
	} else {
		/* asyncio's _wait: until the round ends one way or another. */
		while (b->state == B_FILLING) {
			how = wait_in(&b->obj, &b->waiters, &err);
			if (how == W_GONE)
				return err;
			if (how != W_WOKEN) {
				ret = err;
				break;
			}
		}
		if (ret >= 0 && (b->state == B_BROKEN || b->state == B_RESETTING))
			ret = TIDE_EBROKEN_BARRIER;
	}
	/* asyncio's _exit: the last to leave opens the next round. */
	if (--b->count == 0) {
		if (b->state == B_RESETTING || b->state == B_DRAINING)
			b->state = B_FILLING;
		tide__wl_wake_all(&b->waiters, UINT_MAX, 0);
	}
	return ret;
}

TIDE_EXTERN int tide_barrier_abort(struct tide_barrier *b)
{
	if (!b)
		return -EINVAL;
	b->state = B_BROKEN;
	tide__wl_wake_all(&b->waiters, UINT_MAX, 0);
	return 0;
}

TIDE_EXTERN int tide_barrier_reset(struct tide_barrier *b)
{
	if (!b)
		return -EINVAL;
	if (b->count > 0) {
		if (b->state != B_RESETTING)
			b->state = B_RESETTING;
	} else {
		b->state = B_FILLING;
	}
	tide__wl_wake_all(&b->waiters, UINT_MAX, 0);
	return 0;
}

TIDE_EXTERN int tide_barrier_parties(const struct tide_barrier *b)
{
	return b ? (int)b->parties : -EINVAL;
}

TIDE_EXTERN int tide_barrier_n_waiting(const struct tide_barrier *b)
{
	if (!b)
		return -EINVAL;
	return b->state == B_FILLING ? (int)b->count : 0;
}

TIDE_EXTERN int tide_barrier_broken(const struct tide_barrier *b)
{
	return b ? b->state == B_BROKEN : -EINVAL;
}

/* ------------------------------------------------------------ signals -- */

static void signal_arrived(void *arg)
{
	tide__unpark(arg, 0);
}

/*
 * A park on the library's own watch of signo (core's signal.c): the watch
 * holds the disposition while the task waits, and goes when it is over,
 * however it ends.
 */
TIDE_EXTERN int tide_signal_wait(int signo)
{
	struct tide__sigwatch *w;
	struct tide__park park;
	int err;

	if ((err = tide__task_op_may_start()))
		return err;
	err = tide__signal_watch(tide_future_loop(tide_current_task()), signo, signal_arrived, &park, &w);
	if (err)
		return err;
	err = tide__park(&park);
	tide__signal_unwatch(w);
	return err < 0 ? err : signo;
}
