/* SPDX-License-Identifier: MIT */
/*
 * loop.c: the event loop: ready queue, timer heap, run/stop, call_soon and
 * its kin, close and free. The iteration follows asyncio's
 * base_events._run_once; its hard part is the snapshot rule (only the
 * callbacks ready when the phase begins run in it) together with never
 * firing a timer early and never sleeping past one.
 */
#include "core/core.h"
#include "core/heap.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

/* ------------------------------------------------------------ handles -- */

/* Handles are carved from chunks that live until the loop is freed. */
#define CHUNK_HANDLES 255
struct tide__chunk {
	struct tide__chunk *next;
	struct tide__handle h[CHUNK_HANDLES];
};

static __attribute__((noinline)) struct tide__handle *handle_grow(struct tide_loop *loop)
{
	struct tide__chunk *c = tide__calloc(1, sizeof(*c));
	int i;

	if (!c)
		return NULL;
	c->next = loop->chunks;
	loop->chunks = c;
	/* Thread the new slots onto the free list, keeping h[0] for the caller. */
	for (i = CHUNK_HANDLES - 1; i >= 1; i--) {
		c->h[i].loop = loop;
		c->h[i].next = loop->free_h;
		loop->free_h = &c->h[i];
	}
	c->h[0].loop = loop;
	return &c->h[0];
}

struct tide__handle *tide__handle_alloc(struct tide_loop *loop)
{
	struct tide__handle *h = loop->free_h;

	if (TIDE__LIKELY(h != NULL))
		loop->free_h = h->next;
	else if (!(h = handle_grow(loop)))
		return NULL;
	h->flags = 0;
	return h;
}

void tide__handle_recycle(struct tide_loop *loop, struct tide__handle *h)
{
	/* A new generation makes every public copy of this handle stale. */
	h->gen++;
	h->flags = 0;
	if (h->fut) {
		struct tide_future *f = h->fut;
		h->fut = NULL;
		tide_future_unref(f);
	}
	h->next = loop->free_h;
	loop->free_h = h;
}

/* Doubles the ring, laying the live entries out from slot 0 in order. */
static __attribute__((noinline)) int ring_grow(struct tide_loop *loop)
{
	uint32_t cap = loop->rq_mask + 1, n = loop->rq_tail - loop->rq_head, i;
	struct tide__entry *r;

	if (cap >= (1u << 30) || !(r = tide__malloc(2 * (size_t)cap * sizeof(*r))))
		return -ENOMEM;
	for (i = 0; i < n; i++)
		r[i] = loop->rq[(loop->rq_head + i) & loop->rq_mask];
	tide__free(loop->rq);
	loop->rq = r;
	loop->rq_mask = 2 * cap - 1;
	/* The run phase re-reads rq_head after each callback, so it follows. */
	loop->rq_head = 0;
	loop->rq_tail = n;
	return 0;
}

static inline int ring_push_nots(struct tide_loop *loop, tide_call_cb fn, void *arg)
{
	struct tide__entry *e;

	if (TIDE__UNLIKELY(loop->rq_tail - loop->rq_head > loop->rq_mask) && ring_grow(loop) < 0)
		return -ENOMEM;
	e = &loop->rq[loop->rq_tail++ & loop->rq_mask];
	e->fn = fn;
	e->arg = arg;
	return 0;
}

static inline int ring_push(struct tide_loop *loop, tide_call_cb fn, void *arg)
{
	tide__ts_take_calls_maybe(loop);
	return ring_push_nots(loop, fn, arg);
}

int tide__ready_call_nots(struct tide_loop *loop, tide_call_cb fn, void *arg)
{
	return ring_push_nots(loop, fn, arg);
}

void tide__ready_push(struct tide_loop *loop, struct tide__handle *h)
{
	h->flags |= TIDE__H_READY;
	if (TIDE__UNLIKELY(loop->rq_spill.head != NULL) || ring_push(loop, NULL, h) < 0)
		tide__hq_push(&loop->rq_spill, h); /* runs after the ring: FIFO holds */
}

int tide__ready_call(struct tide_loop *loop, tide_call_cb fn, void *arg)
{
	return ring_push(loop, fn, arg);
}

void tide__ready_call_must(struct tide_loop *loop, tide_call_cb fn, void *arg)
{
	struct tide__handle *h;

	if (TIDE__LIKELY(ring_push(loop, fn, arg) == 0))
		return;
	/* The ring could not grow: a handle goes through the spill list. */
	h = tide__handle_alloc(loop);
	tide__bug_on(!h, "out of memory queueing a callback");
	h->fn.call = fn;
	h->arg = arg;
	tide__ready_push(loop, h);
}

int tide__call_soon_internal(struct tide_loop *loop, tide_call_cb fn, void *arg)
{
	struct tide__handle *h = tide__handle_alloc(loop);

	if (!h)
		return -ENOMEM;
	h->fn.call = fn;
	h->arg = arg;
	h->flags = TIDE__H_INTERNAL;
	tide__ready_push(loop, h);
	return 0;
}

static void handle_out(struct tide__handle *h, struct tide_handle *out)
{
	if (out) {
		out->slot = h;
		out->gen = h->gen;
	}
}

int tide__schedule(struct tide_loop *loop, tide_call_cb cb, void *arg, bool timer, uint64_t when,
		    struct tide_handle *out)
{
	struct tide__handle *h;

	if (TIDE__UNLIKELY(!loop || !cb))
		return -EINVAL;
	if (TIDE__UNLIKELY(tide__loop_closed(loop)))
		return TIDE_ECLOSED;
	if (timer && tide__timer_reserve(loop) < 0)
		return -ENOMEM;
	if (TIDE__UNLIKELY(!(h = tide__handle_alloc(loop))))
		return -ENOMEM;
	h->fn.call = cb;
	h->arg = arg;
	if (timer)
		tide__timer_arm(loop, h, when);
	else
		tide__ready_push(loop, h);
	handle_out(h, out);
	return 0;
}

static __attribute__((noinline)) int call_soon_slow(struct tide_loop *loop, tide_call_cb cb, void *arg,
						    struct tide_handle *out)
{
	if (!out) {
		if (!loop || !cb)
			return -EINVAL;
		if (tide__loop_closed(loop))
			return TIDE_ECLOSED;
		return ring_push(loop, cb, arg);
	}
	return tide__schedule(loop, cb, arg, false, 0, out);
}

TIDE_EXTERN int tide_call_soon(struct tide_loop *loop, tide_call_cb cb, void *arg, struct tide_handle *out)
{
	/* The hot path is a leaf with no frame: without a handle to hand out
	 * and with room in the ring, a call is two words stored. Everything
	 * else (checks that fail, growth, handles, calls from other threads
	 * to take first) is a tail call. */
	if (TIDE__LIKELY(loop && cb && !out && !tide__loop_closed(loop) &&
			 !atomic_load_explicit(&loop->ts_nonempty, memory_order_relaxed))) {
		uint32_t t = loop->rq_tail;
		if (TIDE__LIKELY(t - loop->rq_head <= loop->rq_mask)) {
			struct tide__entry *e = &loop->rq[t & loop->rq_mask];
			e->fn = cb;
			e->arg = arg;
			loop->rq_tail = t + 1;
			return 0;
		}
	}
	return call_soon_slow(loop, cb, arg, out);
}

/* -------------------------------------------------------------- errors -- */

/*
 * A context from a caller built against an older, shorter struct: the
 * fields past its size read as zero (none), so a handler can rely on
 * every field of the struct it was built with.
 */
static const struct tide_error_context *ctx_full(const struct tide_error_context *ctx,
						 struct tide_error_context *tmp)
{
	if (!ctx || ctx->size >= sizeof(*ctx))
		return ctx;
	memset(tmp, 0, sizeof(*tmp));
	memcpy(tmp, ctx, ctx->size);
	tmp->size = sizeof(*tmp);
	return tmp;
}

TIDE_EXTERN void tide_loop_default_exception_handler(struct tide_loop *loop, const struct tide_error_context *ctx)
{
	struct tide_error_context tmp;

	ctx = ctx_full(ctx, &tmp);
	fprintf(stderr, "tide: %s", ctx && ctx->message ? ctx->message : "unhandled error");
	if (ctx && ctx->error)
		fprintf(stderr, ": %s (%d)", tide_strerror(ctx->error), ctx->error);
	if (ctx && ctx->future)
		fprintf(stderr, " [future %p]", (void *)ctx->future);
	fputc('\n', stderr);
}

TIDE_EXTERN void tide_loop_set_exception_handler(struct tide_loop *loop, tide_exception_cb handler, void *arg)
{
	loop->exc_handler = handler;
	loop->exc_arg = arg;
}

TIDE_EXTERN void tide_loop_call_exception_handler(struct tide_loop *loop, const struct tide_error_context *ctx)
{
	struct tide_error_context tmp;

	ctx = ctx_full(ctx, &tmp);
	if (loop->exc_handler)
		loop->exc_handler(loop, ctx, loop->exc_arg);
	else
		tide_loop_default_exception_handler(loop, ctx);
}

void tide__report(struct tide_loop *loop, const char *msg, int err, struct tide_future *fut, void *cb)
{
	struct tide_error_context ctx = {
		.size = sizeof(ctx), .message = msg, .error = err, .future = fut, .callback = cb,
	};
	tide_loop_call_exception_handler(loop, &ctx);
}

int (*tide__describe_hook)(tide_call_cb fn, void *arg, char *buf, size_t cap);

/* Debug mode: name a slow callback the way asyncio's repr of a Handle
 * does, or the task it stepped (the task layer's describe hook). */
static __attribute__((noinline)) void report_slow(struct tide_loop *loop, tide_call_cb fn, void *arg, uint64_t ns)
{
	char msg[384], what[256];
	Dl_info info;
	const char *name = NULL;

	int (*describe)(tide_call_cb, void *, char *, size_t) = __atomic_load_n(&tide__describe_hook, __ATOMIC_RELAXED);

	if (!describe || describe(fn, arg, what, sizeof(what)) <= 0) {
		if (dladdr((void *)fn, &info) && info.dli_sname && info.dli_saddr == (void *)fn)
			name = info.dli_sname;
		snprintf(what, sizeof(what), "<callback %p%s%s>", (void *)fn, name ? " " : "", name ? name : "");
	}
	snprintf(msg, sizeof(msg), "Executing %s took %.3f seconds", what, (double)ns / 1e9);
	tide__report(loop, msg, 0, NULL, (void *)fn);
}

/* --------------------------------------------------------- iteration -- */

/* Runs one handle's callback; returns 1 if it ran (0: cancelled). */
static unsigned run_handle(struct tide_loop *loop, struct tide__handle *h)
{
	uint32_t flags = h->flags;
	__typeof__(h->fn) fn = h->fn;
	void *arg = h->arg;
	struct tide_future *fut = h->fut;
	uint64_t t0 = 0, dt;

	/* Recycle before the call: the generation moves on, so a cancel from
	 * inside the callback is the no-op it must be, and a callback that
	 * reschedules itself gets this same warm slot. */
	h->fut = NULL;
	tide__handle_recycle(loop, h);
	if (TIDE__UNLIKELY(flags & TIDE__H_CANCELLED)) {
		tide_future_unref(fut);
		return 0;
	}
	if (TIDE__UNLIKELY(loop->debug))
		t0 = tide__clock_ns();
	if (flags & TIDE__H_FUTURE_CB)
		fn.fut(fut, arg);
	else
		fn.call(arg);
	if (TIDE__UNLIKELY(loop->debug) && (dt = tide__clock_ns() - t0) >= loop->slow_ns)
		report_slow(loop, fn.call, arg, dt);
	if (fut)
		tide_future_unref(fut);
	loop->stats.timers_fired += !!(flags & TIDE__H_FIRED);
	return 1;
}

static void run_timed(struct tide_loop *loop, tide_call_cb fn, void *arg)
{
	uint64_t t0 = tide__clock_ns(), dt;

	fn(arg);
	if ((dt = tide__clock_ns() - t0) >= loop->slow_ns)
		report_slow(loop, fn, arg, dt);
}

/* Runs the snapshot of ready callbacks; returns how many ran. */
static unsigned run_ready(struct tide_loop *loop)
{
	/* asyncio's snapshot rule: only what is queued now runs now; what
	 * these callbacks schedule lands behind the count and waits. */
	uint32_t todo = loop->rq_tail - loop->rq_head;
	struct tide__handle *spill = loop->rq_spill.head, *next;
	unsigned n = 0;

	tide__hq_init(&loop->rq_spill);
	if (TIDE__UNLIKELY(loop->debug)) {
		while (todo--) {
			struct tide__entry e = loop->rq[loop->rq_head++ & loop->rq_mask];
			if (!e.fn) {
				n += run_handle(loop, e.arg);
			} else {
				run_timed(loop, e.fn, e.arg);
				n++;
			}
		}
	} else {
		while (todo--) {
			/* Re-read head every time: a callback may have grown the ring. */
			struct tide__entry e = loop->rq[loop->rq_head++ & loop->rq_mask];
			if (TIDE__LIKELY(e.fn != NULL)) {
				e.fn(e.arg);
				n++;
			} else {
				n += run_handle(loop, e.arg);
			}
		}
	}
	for (; spill; spill = next) {
		next = spill->next;
		n += run_handle(loop, spill);
	}
	loop->stats.callbacks += n;
	return n;
}

/* Moves every timer whose deadline has passed to the ready queue, in (when, seq) order. */
/* The wait for this iteration: 0 when work is ready, else until the nearest timer. */
static uint64_t compute_wait(struct tide_loop *loop, uint64_t max_ns)
{
	uint64_t w = max_ns;

	if (loop->rq_tail != loop->rq_head || loop->rq_spill.head || loop->stopping ||
	    atomic_load_explicit(&loop->ts_nonempty, memory_order_relaxed))
		return 0;
	if (loop->heap_len) {
		uint64_t when = loop->heap[0]->when;
		uint64_t d = when > loop->now ? when - loop->now : 0;
		if (d < w)
			w = d;
	}
	return w;
}

/* The loop whose callbacks run on this thread (tide_get_running_loop). */
static TIDE__TLS struct tide_loop *running_loop;

TIDE_EXTERN struct tide_loop *tide_get_running_loop(void)
{
	return running_loop;
}

static int iterate_here(struct tide_loop *loop, uint64_t max_ns)
{
	unsigned n;
	uint64_t wait;
	int err;

	/* 0. A fork from a callback leaves the child inside run: it stops
	 * here, before the shared epoll set or ring (or a lock another thread
	 * of the parent held) is touched. */
	if (tide__loop_forked(loop))
		return TIDE_EFORKED;
	/* 1. Cached time for the wait computation (only timers need it). */
	if (loop->heap_len)
		loop->now = tide__clock_ns();
	/* 2. What other threads queued joins the ready queue before we decide to sleep. */
	tide__ts_drain(loop);
	/* 3. Sleep only if nothing is ready, and never past the nearest timer. */
	wait = compute_wait(loop, max_ns);
	/* 4. Reap completions: they complete futures, whose callbacks queue up.
	 * With callbacks waiting and no user op in flight nothing can have
	 * completed, so the backend is not even called. */
	if (wait || tide__io_pending(loop)) {
		err = loop->backend->wait(loop, wait);
		if (err < 0 && err != -EINTR && err != -ETIME)
			return err;
	}
	tide__ts_drain(loop);
	/* 5. Expired timers, read against a fresh clock so none fires early. */
	if (loop->heap_len) {
		loop->now = tide__clock_ns();
		tide__timers_expire(loop);
	}
	/* 6. Only the callbacks ready now; what they schedule runs next time. */
	n = run_ready(loop);
	loop->stats.iterations++;
	return (int)n;
}

/* One iteration, the loop running on this thread meanwhile (a callback
 * may run another loop's iteration: the outer one is back after it). */
static int iterate(struct tide_loop *loop, uint64_t max_ns)
{
	struct tide_loop *outer = running_loop;
	int n;

	running_loop = loop;
	n = iterate_here(loop, max_ns);
	running_loop = outer;
	return n;
}

/*
 * One thread drives the loop at a time, and it may be another thread than
 * the last (asyncio's rule). The running flag is taken with a
 * compare-and-swap (acquire) and dropped with a release store: a second
 * thread is refused at once (TIDE_ERUNNING) rather than let in beside the
 * first, and the next thread to take the flag sees all the last one did.
 * close and free take it too, so they cannot tear a loop down under a run.
 */
static bool run_enter(struct tide_loop *loop)
{
	bool idle = false;

	return atomic_compare_exchange_strong_explicit(&loop->running, &idle, true, memory_order_acquire,
						       memory_order_relaxed);
}

static void run_leave(struct tide_loop *loop)
{
	atomic_store_explicit(&loop->running, false, memory_order_release);
}

/* What every run function checks, then the flag: 0 once it is held. */
static int run_begin(struct tide_loop *loop)
{
	if (tide__loop_forked(loop))
		return TIDE_EFORKED;
	if (!run_enter(loop))
		return TIDE_ERUNNING;
	if (tide__loop_closed(loop)) {
		run_leave(loop);
		return TIDE_ECLOSED;
	}
	return 0;
}

/* One iteration waiting at most timeout seconds (< 0: no limit), the flag held. */
static int iterate_for(struct tide_loop *loop, double timeout)
{
	uint64_t max_ns = UINT64_MAX;

	if (timeout >= 0 && tide__seconds_to_ns(timeout, &max_ns) < 0)
		return -EINVAL;
	/* A finite wait counts from now, which a backend that must retry its
	 * wait reads; with timers, iterate reads it anyway. */
	if (max_ns && max_ns != UINT64_MAX && !loop->heap_len)
		loop->now = tide__clock_ns();
	return iterate(loop, max_ns);
}

/* Iterates until stop() (or an error), the flag held. */
static int run_until_stopped(struct tide_loop *loop)
{
	int err = 0;

	for (;;) {
		int n = iterate(loop, UINT64_MAX);
		if (n < 0) {
			err = n;
			break;
		}
		/* asyncio: stop() lets the iteration that saw it finish. */
		if (loop->stopping)
			break;
	}
	loop->stopping = false;
	return err;
}

TIDE_EXTERN int tide_loop_run_once(struct tide_loop *loop, double timeout)
{
	int n;

	if (!loop)
		return -EINVAL;
	if ((n = run_begin(loop)))
		return n;
	n = iterate_for(loop, timeout);
	run_leave(loop);
	return n;
}

TIDE_EXTERN int tide_loop_run(struct tide_loop *loop)
{
	int err;

	if (!loop)
		return -EINVAL;
	if ((err = run_begin(loop)))
		return err;
	err = run_until_stopped(loop);
	run_leave(loop);
	return err;
}

TIDE_EXTERN void tide_loop_stop(struct tide_loop *loop)
{
	if (loop)
		loop->stopping = true;
}

static void stop_on_done(struct tide_future *fut, void *arg)
{
	tide_loop_stop(arg);
}

TIDE_EXTERN int tide_loop_run_until_complete(struct tide_loop *loop, struct tide_future *fut)
{
	int err;

	if (!loop || !fut || tide_future_loop(fut) != loop)
		return -EINVAL;
	if ((err = run_begin(loop)))
		return err;
	if (!tide_future_done(fut)) {
		err = tide_future_add_done_callback(fut, stop_on_done, loop);
		if (err < 0) {
			run_leave(loop);
			return err;
		}
		tide_future_ref(fut);
		err = run_until_stopped(loop);
		tide_future_remove_done_callback(fut, stop_on_done, loop);
		tide_future_unref(fut);
		if (err == 0 && !tide_future_done(fut))
			err = TIDE_ESTOPPED;
	}
	run_leave(loop);
	return err < 0 ? err : tide_future_error(fut);
}

TIDE_EXTERN int tide_loop_is_running(const struct tide_loop *loop)
{
	return loop && atomic_load_explicit(&loop->running, memory_order_relaxed);
}

TIDE_EXTERN int tide_loop_is_closed(const struct tide_loop *loop)
{
	return loop && tide__loop_closed(loop);
}

TIDE_EXTERN double tide_loop_time(const struct tide_loop *loop)
{
	return (double)tide__clock_ns() / 1e9;
}

TIDE_EXTERN uint64_t tide_loop_now_ns(const struct tide_loop *loop)
{
	return tide__clock_ns();
}

TIDE_EXTERN const char *tide_loop_backend_reason(const struct tide_loop *loop)
{
	return loop->reason;
}

TIDE_EXTERN int tide_loop_get_debug(const struct tide_loop *loop)
{
	return loop->debug;
}

TIDE_EXTERN void tide_loop_set_debug(struct tide_loop *loop, int enabled)
{
	loop->debug = enabled != 0;
}

TIDE_EXTERN int tide_loop_stats(const struct tide_loop *loop, struct tide_loop_stats *stats)
{
	size_t n;

	if (!loop || !stats || stats->size < sizeof(size_t))
		return -EINVAL;
	n = stats->size < sizeof(*stats) ? stats->size : sizeof(*stats);
	memcpy((char *)stats + sizeof(size_t), (const char *)&loop->stats + sizeof(size_t), n - sizeof(size_t));
	return 0;
}

/* ---------------------------------------------------------------- fork -- */

atomic_uint tide__fork_gen;
static atomic_bool fork_watched;

/* In the child of a fork(2), where no other thread runs. */
static void fork_child(void)
{
	atomic_fetch_add_explicit(&tide__fork_gen, 1, memory_order_relaxed);
}

/*
 * Registers fork_child once, when the first loop is made. Two threads
 * making their first loops at once may both register it: the child then
 * counts two forks, which tells the same.
 */
static int fork_watch(void)
{
	if (atomic_load_explicit(&fork_watched, memory_order_acquire))
		return 0;
	if (pthread_atfork(NULL, NULL, fork_child) != 0)
		return -ENOMEM;
	atomic_store_explicit(&fork_watched, true, memory_order_release);
	return 0;
}

/* ------------------------------------------------------- new and free -- */

/* Why the last tide_loop_new of this thread failed ("" after a success).
 * The general TLS model, not TIDE__TLS's initial-exec: this buffer would
 * take a dlopen'ed libtide's share of the static TLS block. */
static __thread char new_error[320];

TIDE_EXTERN const char *tide_loop_new_error(void)
{
	return new_error;
}

int tide__loop_new_failed(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(new_error, sizeof(new_error), fmt, ap);
	va_end(ap);
	return err;
}

static void drop_handles(struct tide_loop *loop)
{
	struct tide__handle *h = loop->rq_spill.head, *next;
	uint32_t i, n = loop->rq_tail - loop->rq_head;

	/* Ready callbacks: the user's are dropped (asyncio's close clears
	 * _ready); handles go back to the free list, futures are released. */
	struct tide__hqueue keep_q;

	tide__hq_init(&keep_q);
	tide__hq_init(&loop->rq_spill);
	for (i = 0; i < n; i++) {
		struct tide__entry *e = &loop->rq[(loop->rq_head + i) & loop->rq_mask];
		struct tide__handle *eh = e->arg;
		if (e->fn)
			continue;
		/* A fired loop-path timeout must still complete its op. */
		if (eh->flags & TIDE__H_INTERNAL)
			tide__hq_push(&keep_q, eh);
		else
			tide__handle_recycle(loop, eh);
	}
	loop->rq_head = loop->rq_tail = 0;
	for (; h; h = next) {
		next = h->next;
		if (h->flags & TIDE__H_INTERNAL)
			tide__hq_push(&keep_q, h);
		else
			tide__handle_recycle(loop, h);
	}
	for (h = keep_q.head; h; h = next) {
		next = h->next;
		tide__ready_push(loop, h);
	}
	tide__timers_drop_user(loop);
}

/* close, the running flag held (by close itself, or by free). */
static void close_held(struct tide_loop *loop)
{
	if (tide__loop_closed(loop))
		return;
	/* Run what other threads already queued? asyncio drops it; so do we,
	 * but the nodes themselves go back to their owners in tide__ts_fini. */
	drop_handles(loop);
	/* asyncio's close removes the signal handlers too. */
	tide__signal_close(loop);
	/* Relaxed: the flag publishes no other data (see struct tide_loop). */
	atomic_store_explicit(&loop->closed, true, memory_order_relaxed);
}

TIDE_EXTERN int tide_loop_close(struct tide_loop *loop)
{
	if (!loop)
		return -EINVAL;
	if (!run_enter(loop))
		return TIDE_ERUNNING;
	close_held(loop);
	run_leave(loop);
	return 0;
}

static void loop_dealloc(struct tide_loop *loop)
{
	tide__free(loop->heap);
	tide__free(loop->rq);
	tide__free(loop);
}

static int loop_new(const struct tide_loop_opts *opts, struct tide_loop **out)
{
	struct tide_loop *loop;
	const char *env;
	double slow;
	int debug, err = 0;

	if (!out)
		return tide__loop_new_failed(-EINVAL, "tide_loop_new: out is NULL");
	if (opts && opts->size < sizeof(size_t))
		return tide__loop_new_failed(-EINVAL, "tide_loop_new: opts->size is %zu: set it to sizeof(struct tide_loop_opts)",
				  opts->size);
	*out = NULL;
	if ((err = fork_watch()))
		return err;
	atomic_store(&tide__allocator_locked, true);
	loop = tide__calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->fork_gen = atomic_load_explicit(&tide__fork_gen, memory_order_relaxed);
	loop->pid = getpid();
	tide__hq_init(&loop->rq_spill);
	tide__list_init(&loop->live_list);
	tide__list_init(&loop->children);
	tide__list_init(&loop->tasks);
	tide__list_init(&loop->free_tasks);
	loop->rq_mask = 1023;
	loop->rq = tide__malloc((loop->rq_mask + 1) * sizeof(*loop->rq));
	if (!loop->rq) {
		tide__free(loop);
		return -ENOMEM;
	}
	loop->stats.size = sizeof(loop->stats);
	loop->wake_fd = -1;

	/* 0 is asyncio's default, which PYTHONASYNCIODEBUG sets: ours is
	 * TIDE_DEBUG. Only an explicit sign overrides it. */
	debug = TIDE__OPT(opts, debug, 0);
	if (debug == 0)
		debug = (env = tide__getenv("TIDE_DEBUG")) && strcmp(env, "0");
	loop->debug = debug > 0;
	slow = TIDE__OPT(opts, slow_callback_duration, 0.0);
	if (!err && (!isfinite(slow) || slow < 0))
		err = tide__loop_new_failed(-EINVAL, "opts.slow_callback_duration is %g: a finite number of seconds >= 0", slow);
	loop->slow_ns = slow > 0 ? (uint64_t)(slow * 1e9) : 100000000u;
	loop->task_stack_size = TIDE__OPT(opts, task_stack_size, (size_t)0);
	if (!loop->task_stack_size)
		loop->task_stack_size = 64 * 1024;
	if (!err && (loop->task_stack_size < 16 * 1024 || loop->task_stack_size > (size_t)1 << 30))
		err = tide__loop_new_failed(-EINVAL, "opts.task_stack_size is %zu: between 16 KiB and 1 GiB",
				 loop->task_stack_size);
	/* A frame bigger than the guard steps over it: 64 KiB (a big local
	 * array, common in C) by default. */
	loop->task_guard_size = TIDE__OPT(opts, stack_guard_size, (size_t)0);
	if (!loop->task_guard_size)
		loop->task_guard_size = 64 * 1024;
	if (!err && loop->task_guard_size > (size_t)1 << 30)
		err = tide__loop_new_failed(-EINVAL, "opts.stack_guard_size is %zu: at most 1 GiB",
					    loop->task_guard_size);
	/* Pool hits compare the rounded size stacks really have. */
	loop->task_stack_size = (loop->task_stack_size + 4095) & ~(size_t)4095;
	if (!err)
		err = tide__ts_init(loop);
	if (err) {
		loop_dealloc(loop);
		return err;
	}
	/* The io layer: its options, the backend, the wake-up read. */
	err = tide__io_open(loop, opts);
	if (err) {
		tide__ts_fini(loop);
		loop_dealloc(loop);
		return err;
	}
	loop->now = tide__clock_ns();
	*out = loop;
	return 0;
}

TIDE_EXTERN int tide_loop_new(const struct tide_loop_opts *opts, struct tide_loop **out)
{
	int err;

	new_error[0] = '\0';
	err = loop_new(opts, out);
	if (err && !new_error[0])
		tide__loop_new_failed(err, "tide_loop_new: %s", tide_strerror(err));
	return err;
}

/*
 * A closed loop runs no more, but transports closed and servers freed
 * before it closed still have their ends due: their last completions (the
 * kernel answers a cancel promptly) and the internal calls close kept.
 * Open transports are the owner's business: free then says -EBUSY.
 */
static void settle_net(struct tide_loop *loop)
{
	struct tide_loop *outer = running_loop;
	int laps;

	running_loop = loop;
	for (laps = 0; loop->net_closing && laps < 1000; laps++)
		if (!run_ready(loop))
			loop->backend->wait(loop, 1000000);
	running_loop = outer;
}

/* What tide_loop_shutdown waits for: tasks, closing transports and
 * servers, executor jobs, and the callbacks they queued. */
static bool winding_down(struct tide_loop *loop)
{
	return !tide__list_empty(&loop->tasks) || loop->net_closing || loop->live_jobs || loop->rq_tail != loop->rq_head ||
	       loop->rq_spill.head;
}

/* tide_loop_shutdown's laps, the running flag held throughout. */
static int shutdown_held(struct tide_loop *loop, double timeout)
{
	uint64_t deadline = UINT64_MAX, ns, now, mark = 0;
	bool ran = false;
	int err;

	/* Negative, infinite, or too far to be a time: no limit. */
	if (timeout >= 0 && tide__seconds_to_ns(timeout, &ns) == 0) {
		now = tide__clock_ns();
		deadline = ns < UINT64_MAX - now ? now + ns : UINT64_MAX;
	}
	for (;;) {
		double wait = -1;

		/* asyncio.run()'s end: every task is cancelled, then awaited;
		 * so is each task those spawn meanwhile, once. */
		tide__tasks_cancel_since(loop, &mark);
		if (!winding_down(loop))
			return 0;
		if (deadline != UINT64_MAX) {
			/* Past the deadline after one lap at least: a timeout of
			 * 0 still polls once. */
			now = tide__clock_ns();
			if (now >= deadline && ran)
				return -ETIMEDOUT;
			wait = now < deadline ? (double)(deadline - now) / 1e9 : 0;
		}
		/* A stop (a task's cleanup, a second Ctrl-C) ends tide_loop_run,
		 * not this: left set, every lap would poll instead of wait. */
		loop->stopping = false;
		if ((err = iterate_for(loop, wait)) < 0)
			return err;
		ran = true;
	}
}

TIDE_EXTERN int tide_loop_shutdown(struct tide_loop *loop, double timeout)
{
	int err;

	if (!loop || isnan(timeout))
		return -EINVAL;
	if ((err = run_begin(loop)))
		return err;
	err = shutdown_held(loop, timeout);
	run_leave(loop);
	return err;
}

TIDE_EXTERN int tide_loop_free(struct tide_loop *loop)
{
	struct tide__chunk *c;
	struct tide_future *f;

	if (!loop)
		return -EINVAL;
	/* Held to the end: no run can start on another thread meanwhile. */
	if (!run_enter(loop))
		return -EBUSY;
	/* A child of _Fork() or of a raw clone ran no atfork handler: the pid
	 * tells (free is rare, its system call cheap enough). From here on
	 * the loop counts as forked for every layer's teardown. */
	if (!tide__loop_forked(loop) && getpid() != loop->pid)
		loop->fork_gen = atomic_load_explicit(&tide__fork_gen, memory_order_relaxed) + 1;
	/*
	 * In a forked child what is alive is the parent's: only the child's
	 * copy of the loop goes, each layer's teardown releasing memory and
	 * closing the child's copies of the loop's fds, never touching the
	 * kernel objects the two share (no cancel, no epoll_ctl, no wait).
	 */
	if (!tide__loop_forked(loop)) {
		/* A closed loop runs no more, so free does its last work:
		 * deliver finished executor jobs and settle the ops nobody
		 * holds. An open loop is left to its owner to run: anything
		 * alive there is -EBUSY. */
		if (tide__loop_closed(loop)) {
			tide__ts_drain(loop);
			tide__io_settle(loop);
			settle_net(loop);
		}
		/* pbufs_lent: a ring buffer out of the ring (a send or a
		 * stream's peek keeps it) must come back before the ring goes. */
		if (loop->live_futures || loop->live_ops || loop->live_jobs || loop->live_net || loop->pbufs_lent) {
			run_leave(loop);
			return -EBUSY;
		}
	}
	/* Out of the signal registry before the eventfd its handler writes
	 * closes (tide__ts_fini); the dispositions go back. */
	tide__signal_fini(loop);
	close_held(loop);
	/* The teardown hub, top layer first: each frees what it hung on the
	 * loop (the one place core names a higher layer; test/layering.sh). */
	if (loop->net_fini)
		loop->net_fini(loop);
	tide__tasks_fini(loop);
	tide__io_close(loop);
	tide__ts_fini(loop);
	while ((f = loop->free_futs)) {
		loop->free_futs = f->next_free;
		tide__free(f);
	}
	while ((c = loop->chunks)) {
		loop->chunks = c->next;
		tide__free(c);
	}
	loop_dealloc(loop);
	return 0;
}
