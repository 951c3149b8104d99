/* SPDX-License-Identifier: MIT */
/*
 * threadsafe.c: the one door into a loop from other threads, used by
 * tide_call_soon_threadsafe and by executor completions.
 *
 * The hard part is the wake-up without a lost wake and without a syscall per
 * call. A producer pushes under ts_lock, then writes the eventfd only if it
 * flips ts_wake_pending from false to true. The loop clears ts_wake_pending
 * when it consumes the eventfd and only then drains the queue, so an item
 * pushed after the drain always finds the flag clear and writes. An item
 * pushed while the flag is set is covered by the eventfd count still
 * pending, which the loop consumes before it can sleep again.
 *
 * The write happens under ts_lock too: once a node is queued the loop may
 * run it and be freed at once (an executor job delivered, a callback that
 * ends the program), and the producer must by then be out of the loop's
 * memory and its eventfd. tide__ts_fini takes the lock before either goes.
 */
#include "core/core.h"

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void run_call(struct tide__tsnode *n);

int tide__ts_init(struct tide_loop *loop)
{
	loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->wake_fd < 0)
		return -errno;
	pthread_mutex_init(&loop->ts_lock, NULL);
	loop->ts_head = NULL;
	loop->ts_tailp = &loop->ts_head;
	return 0;
}

void tide__ts_fini(struct tide_loop *loop)
{
	struct tide__tsnode *n;

	bool forked = tide__loop_forked(loop);

	/* A producer whose node the loop already ran may still be inside
	 * its critical section (the eventfd write): wait for it to leave.
	 * Not in a forked child: no producer is there, and the lock may have
	 * been copied held by a thread that stayed in the parent. */
	if (!forked) {
		pthread_mutex_lock(&loop->ts_lock);
		pthread_mutex_unlock(&loop->ts_lock);
	}
	/* Nodes still queued are call_soon_threadsafe calls, dropped by
	 * close, and the nodes of a tide_run_coroutine_threadsafe (its start
	 * or a cancel of it), whose run sees the closed loop and lets its
	 * handle go (the start completes it with TIDE_ECLOSED). Executor jobs
	 * keep the loop busy until delivered: none is here. In a forked child
	 * every node is the parent's business: only call nodes' memory goes. */
	while ((n = loop->ts_head)) {
		loop->ts_head = n->next;
		if (n->run == run_call)
			tide__free(n);
		else if (!forked)
			n->run(n);
	}
	while ((n = loop->ts_free)) {
		loop->ts_free = n->next;
		tide__free(n);
	}
	if (!forked)
		pthread_mutex_destroy(&loop->ts_lock);
	if (loop->wake_fd >= 0)
		close(loop->wake_fd);
	loop->wake_fd = -1;
}

/* Wakes the loop unless a wake is already pending (see the top of the
 * file). Called with ts_lock held. */
static void ts_wake_locked(struct tide_loop *loop)
{
	if (!atomic_exchange(&loop->ts_wake_pending, true)) {
		uint64_t one = 1;
		ssize_t r;
		do
			r = write(loop->wake_fd, &one, sizeof(one));
		while (r < 0 && errno == EINTR);
		/* EAGAIN means the counter is saturated: the loop is woken anyway. */
	}
}

static void ts_append_locked(struct tide_loop *loop, struct tide__tsnode *n)
{
	n->next = NULL;
	*loop->ts_tailp = n;
	loop->ts_tailp = &n->next;
	atomic_store_explicit(&loop->ts_nonempty, true, memory_order_relaxed);
}

void tide__ts_push(struct tide_loop *loop, struct tide__tsnode *n)
{
	pthread_mutex_lock(&loop->ts_lock);
	ts_append_locked(loop, n);
	ts_wake_locked(loop);
	pthread_mutex_unlock(&loop->ts_lock);
}

void tide__ts_woken(struct tide_loop *loop)
{
	atomic_store(&loop->ts_wake_pending, false);
}

/* Marks call_soon_threadsafe nodes; they become plain ready entries in tide__ts_drain. */
static void run_call(struct tide__tsnode *n)
{
	/* Never reached: calls are handled inline in tide__ts_drain. */
	(void)n;
}

/* A call node becomes a ready entry (dropped on a closed loop, as
 * asyncio's close drops _ready). */
static void call_to_ready(struct tide_loop *loop, struct tide__tsnode *n)
{
	if (tide__loop_closed(loop))
		return;
	if (tide__ready_call_nots(loop, n->cb, n->arg) == 0)
		loop->stats.threadsafe_calls++;
	else
		tide__report(loop, "call_soon_threadsafe: out of memory, callback dropped", -ENOMEM, NULL,
			     (void *)n->cb);
}

void tide__ts_take_calls(struct tide_loop *loop)
{
	struct tide__tsnode *n, *next, *calls = NULL, **calls_tailp = &calls, *rest = NULL, **rest_tailp = &rest;

	/* The drain is moving the queue in order: what came since waits for
	 * the next one, behind what the drain holds. */
	if (loop->ts_draining)
		return;
	pthread_mutex_lock(&loop->ts_lock);
	for (n = loop->ts_head; n; n = next) {
		next = n->next;
		if (n->run == run_call) {
			*calls_tailp = n;
			calls_tailp = &n->next;
		} else {
			*rest_tailp = n;
			rest_tailp = &n->next;
		}
	}
	*calls_tailp = NULL;
	*rest_tailp = NULL;
	loop->ts_head = rest;
	loop->ts_tailp = rest ? rest_tailp : &loop->ts_head;
	/* The flag also stands for signals (signal.c): only a loop without
	 * them may clear it here, the drain looks at both. */
	if (!rest && !loop->sig)
		atomic_store_explicit(&loop->ts_nonempty, false, memory_order_relaxed);
	pthread_mutex_unlock(&loop->ts_lock);
	if (!calls)
		return;
	for (n = calls; n; n = n->next)
		call_to_ready(loop, n);
	pthread_mutex_lock(&loop->ts_lock);
	*calls_tailp = loop->ts_free;
	loop->ts_free = calls;
	pthread_mutex_unlock(&loop->ts_lock);
}

unsigned tide__ts_drain_slow(struct tide_loop *loop)
{
	struct tide__tsnode *n, *next, *spent = NULL, **spent_tailp = &spent;
	unsigned count = 0;

	pthread_mutex_lock(&loop->ts_lock);
	n = loop->ts_head;
	loop->ts_head = NULL;
	loop->ts_tailp = &loop->ts_head;
	/* seq_cst: ordered before the signal marks are read (signal.c). */
	atomic_store(&loop->ts_nonempty, false);
	pthread_mutex_unlock(&loop->ts_lock);
	/* From here what queues a ready call leaves the queue to the next
	 * drain: the nodes taken now go first, in order. */
	loop->ts_draining = true;
	/* A signal handler sets ts_nonempty too, with no node. */
	if (loop->sig)
		tide__signal_take(loop);

	for (; n; n = next) {
		next = n->next;
		count++;
		if (n->run == run_call) {
			call_to_ready(loop, n);
			*spent_tailp = n;
			spent_tailp = &n->next;
		} else {
			n->run(n);
		}
	}
	loop->ts_draining = false;
	if (spent) {
		/* Give the call nodes back in one batch: producers reuse them. */
		*spent_tailp = NULL;
		pthread_mutex_lock(&loop->ts_lock);
		*spent_tailp = loop->ts_free;
		loop->ts_free = spent;
		pthread_mutex_unlock(&loop->ts_lock);
	}
	return count;
}

TIDE_EXTERN int tide_call_soon_threadsafe(struct tide_loop *loop, tide_call_cb cb, void *arg)
{
	struct tide__tsnode *n;
	int err;

	if (!loop || !cb)
		return -EINVAL;
	/* In a forked child: the eventfd is the parent's, and ts_lock may
	 * have been copied held. */
	if ((err = tide__loop_refuses(loop)))
		return err;
	/* One lock round trip: take a spent node and queue it in the same hold. */
	pthread_mutex_lock(&loop->ts_lock);
	n = loop->ts_free;
	if (TIDE__UNLIKELY(!n)) {
		pthread_mutex_unlock(&loop->ts_lock);
		if (!(n = tide__malloc(sizeof(*n))))
			return -ENOMEM;
		pthread_mutex_lock(&loop->ts_lock);
	} else {
		loop->ts_free = n->next;
	}
	n->run = run_call;
	n->cb = cb;
	n->arg = arg;
	ts_append_locked(loop, n);
	ts_wake_locked(loop);
	pthread_mutex_unlock(&loop->ts_lock);
	return 0;
}
