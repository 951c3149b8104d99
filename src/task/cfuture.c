/* SPDX-License-Identifier: MIT */
/*
 * cfuture.c: asyncio.run_coroutine_threadsafe. Another thread starts a task
 * on a loop through the loop's threadsafe door and waits on a handle (a
 * concurrent.futures.Future) under a mutex and condition variable of its
 * own; futures and tasks are only ever touched on the loop's thread.
 *
 * The hard part is lifetime across two threads, either of which may let go
 * first, and a loop that may close or go before the task starts:
 *  - the handle is counted: the caller's reference, the loop side's (from
 *    the start node until the task has ended), and one for a queued cancel
 *    node. Whoever drops the last one frees it.
 *  - the start node runs on the loop's thread, in the door's drain; on a
 *    closed loop (also from tide_loop_free's teardown, threadsafe.c) it
 *    completes the handle with TIDE_ECLOSED instead of spawning.
 *  - the task's end completes the handle synchronously (tide__task_on_finish),
 *    not through a done callback, which a closed loop would drop.
 *  - a cancel from another thread pushes a node to the loop only once the
 *    task exists and has not ended, both decided under the handle's lock:
 *    a task alive keeps the loop alive (tide_loop_free says -EBUSY), so
 *    the push never reaches a freed loop. Before the task exists, the
 *    start node sees the handle cancelled and spawns nothing.
 */
#include "task/task.h"

#include <errno.h>
#include <math.h>
#include <time.h>

struct tide_cfuture {
	struct tide__tsnode start;   /* the start, through the loop's door */
	struct tide__tsnode cancel;  /* a cancel's request to the loop (pushed once) */
	pthread_mutex_t lock;        /* guards done, started, error, value */
	pthread_cond_t cond;         /* waiters (CLOCK_MONOTONIC) */
	atomic_uint refs;            /* caller, loop side, queued cancel node */
	bool done;
	bool started;                /* the task exists (set on the loop's thread) */
	int error;                   /* once done: 0, the task's error, -ECANCELED, ... */
	int64_t value;
	struct tide_loop *loop;
	/* The loop's thread only: */
	struct tide_future *task;    /* from the spawn until the task ends (a reference) */
	tide_task_cb fn;
	void *arg;
	size_t stack_size;
	char *name;                  /* copied from opts, or NULL */
};

static void cf_unref(struct tide_cfuture *cf)
{
	if (atomic_fetch_sub(&cf->refs, 1) != 1)
		return;
	pthread_cond_destroy(&cf->cond);
	pthread_mutex_destroy(&cf->lock);
	tide__free(cf->name);
	tide__free(cf);
}

/* The outcome, unless a cancel came first (the result is dropped). */
static void cf_complete(struct tide_cfuture *cf, int err, int64_t value)
{
	pthread_mutex_lock(&cf->lock);
	if (!cf->done) {
		cf->done = true;
		cf->error = err;
		cf->value = value;
		pthread_cond_broadcast(&cf->cond);
	}
	pthread_mutex_unlock(&cf->lock);
}

/* On the loop's thread, as the task ends: the loop side lets go. */
static void cf_task_finished(struct tide_future *task, void *arg)
{
	struct tide_cfuture *cf = arg;
	int64_t value = 0;
	int err = tide_future_result(task, &value, NULL);

	cf->task = NULL;
	tide_future_unref(task);
	cf_complete(cf, err, value);
	cf_unref(cf);
}

/* The start node, on the loop's thread. */
static void cf_start(struct tide__tsnode *n)
{
	struct tide_cfuture *cf = tide__container_of(n, struct tide_cfuture, start);
	struct tide_task_opts o = { .size = sizeof(o), .name = cf->name, .stack_size = cf->stack_size };
	struct tide_future *t;
	bool cancelled;
	int err;

	pthread_mutex_lock(&cf->lock);
	cancelled = cf->done;
	pthread_mutex_unlock(&cf->lock);
	if (cancelled) {
		/* asyncio makes the task and cancels it before its first step:
		 * the body never runs either way. */
		cf_unref(cf);
		return;
	}
	if (tide__loop_closed(cf->loop)) {
		cf_complete(cf, TIDE_ECLOSED, 0);
		cf_unref(cf);
		return;
	}
	err = tide_task_spawn(cf->loop, cf->fn, cf->arg, &o, &t);
	if (err) {
		/* asyncio's callback raises into the exception handler, and the
		 * concurrent future gets the exception. */
		tide__report(cf->loop, "run_coroutine_threadsafe: the task could not be made", err, NULL,
			     (void *)cf->fn);
		cf_complete(cf, err, 0);
		cf_unref(cf);
		return;
	}
	/* The loop side's reference now goes with the task's end. */
	cf->task = t;
	tide__task_on_finish(t, cf_task_finished, cf);
	pthread_mutex_lock(&cf->lock);
	cf->started = true;
	cancelled = cf->done;
	pthread_mutex_unlock(&cf->lock);
	if (cancelled)
		tide_task_cancel(t);
}

/* A cancel's node, on the loop's thread: the task, if it has not ended. */
static void cf_cancel_run(struct tide__tsnode *n)
{
	struct tide_cfuture *cf = tide__container_of(n, struct tide_cfuture, cancel);

	if (cf->task)
		tide_task_cancel(cf->task);
	cf_unref(cf);
}

TIDE_EXTERN int tide_run_coroutine_threadsafe(struct tide_loop *loop, tide_task_cb fn, void *arg,
					      const struct tide_task_opts *opts, struct tide_cfuture **out)
{
	struct tide_cfuture *cf;
	pthread_condattr_t ca;
	const char *name;
	size_t stack;
	int err;

	if (!loop || !fn || !out || TIDE__OPTS_BAD(opts))
		return -EINVAL;
	/* What tide_task_spawn would refuse is refused here, at once. */
	stack = TIDE__OPT(opts, stack_size, (size_t)0);
	if (stack && (stack < 16 * 1024 || stack > (size_t)1 << 30))
		return -EINVAL;
	if ((err = tide__loop_refuses(loop)))
		return err;
	if (!(cf = tide__calloc(1, sizeof(*cf))))
		return -ENOMEM;
	name = TIDE__OPT(opts, name, (const char *)NULL);
	if (name) {
		size_t n = strlen(name) + 1;

		if (!(cf->name = tide__malloc(n))) {
			tide__free(cf);
			return -ENOMEM;
		}
		memcpy(cf->name, name, n);
	}
	pthread_mutex_init(&cf->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cf->cond, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&cf->refs, 2);
	cf->loop = loop;
	cf->fn = fn;
	cf->arg = arg;
	cf->stack_size = stack;
	cf->start.run = cf_start;
	cf->cancel.run = cf_cancel_run;
	tide__ts_push(loop, &cf->start);
	*out = cf;
	return 0;
}

TIDE_EXTERN int tide_cfuture_wait(struct tide_cfuture *cf, double timeout, int64_t *value)
{
	int err;

	if (!cf || isnan(timeout))
		return -EINVAL;
	pthread_mutex_lock(&cf->lock);
	if (!cf->done && timeout > 0) {
		if (tide_get_running_loop() == cf->loop) {
			pthread_mutex_unlock(&cf->lock);
			return -EDEADLK;
		}
		if (isinf(timeout) || timeout > 1e9) {
			while (!cf->done)
				pthread_cond_wait(&cf->cond, &cf->lock);
		} else {
			struct timespec ts;
			double whole = floor(timeout);

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)whole;
			ts.tv_nsec += (long)((timeout - whole) * 1e9);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			while (!cf->done)
				if (pthread_cond_timedwait(&cf->cond, &cf->lock, &ts) == ETIMEDOUT)
					break;
		}
	}
	if (!cf->done)
		err = -ETIMEDOUT;
	else if (!(err = cf->error) && value)
		*value = cf->value;
	pthread_mutex_unlock(&cf->lock);
	return err;
}

TIDE_EXTERN int tide_cfuture_cancel(struct tide_cfuture *cf)
{
	if (!cf)
		return -EINVAL;
	pthread_mutex_lock(&cf->lock);
	if (cf->done) {
		pthread_mutex_unlock(&cf->lock);
		return 0;
	}
	cf->done = true;
	cf->error = -ECANCELED;
	pthread_cond_broadcast(&cf->cond);
	/* Started and not ended (its end takes this lock): the task is alive,
	 * so is its loop. Before that, the start node sees the cancel. */
	if (cf->started) {
		atomic_fetch_add(&cf->refs, 1);
		tide__ts_push(cf->loop, &cf->cancel);
	}
	pthread_mutex_unlock(&cf->lock);
	return 1;
}

TIDE_EXTERN int tide_cfuture_done(struct tide_cfuture *cf)
{
	bool done;

	if (!cf)
		return 0;
	pthread_mutex_lock(&cf->lock);
	done = cf->done;
	pthread_mutex_unlock(&cf->lock);
	return done;
}

TIDE_EXTERN void tide_cfuture_free(struct tide_cfuture *cf)
{
	if (cf)
		cf_unref(cf);
}
