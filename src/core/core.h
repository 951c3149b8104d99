/* SPDX-License-Identifier: MIT */
/*
 * core.h: the bottom layer (src/core): the loop's struct and its iteration,
 * handles and timers, futures, the cross-thread door and the allocator.
 * Nothing here is part of the ABI, and nothing here knows a higher layer
 * (io, task, net): the fields of struct tide_loop that those layers own are
 * typed by forward declaration only, and reached through their headers.
 *
 * The hard part it encodes is ownership (DESIGN.md): handles come from
 * per-loop chunks so the steady state never calls malloc, and the only
 * cross-thread door into a loop is the threadsafe queue.
 */
#ifndef TIDE_CORE_H
#define TIDE_CORE_H

#include "config.h"
#include "tide.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/time_types.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Thread-locals of the library itself: initial-exec avoids a
 * __tls_get_addr call per access from the shared library (tide keeps only
 * a few pointers there, well within the static TLS surplus for dlopen). */
#define TIDE__TLS __thread __attribute__((tls_model("initial-exec")))

#define TIDE__LIKELY(x) __builtin_expect(!!(x), 1)
#define TIDE__UNLIKELY(x) __builtin_expect(!!(x), 0)
/*
 * A helper with a large frame that a hot path calls rarely: kept out of
 * line, so its locals do not deepen the caller's frame. A task runs the
 * library on its own stack, and each line of that stack a message touches
 * is a cache miss when a server has thousands of tasks.
 */
#define TIDE__OUTLINE __attribute__((noinline))
/* A helper shared by a hot path and cold ones, inlined into each. */
#define TIDE__INLINE inline __attribute__((always_inline))

#define tide__container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#include "core/list.h"

/* Caller bugs abort with file and line, also in release builds. */
#define tide__bug_on(cond, msg)                                              \
	do {                                                                 \
		if (TIDE__UNLIKELY(cond))                                    \
			tide__panic(__FILE__, __LINE__, msg);                \
	} while (0)
__attribute__((noreturn)) void tide__panic(const char *file, int line, const char *msg);

/* ------------------------------------------------------------ allocator -- */

void *tide__malloc(size_t n);
void *tide__calloc(size_t n, size_t m);
void *tide__realloc(void *p, size_t n);
void tide__free(void *p);
/* Set once the first loop exists: the allocator can no longer change. */
extern atomic_bool tide__allocator_locked;

/* -------------------------------------------------------------- handles -- */

enum {
	TIDE__H_READY = 1u << 0,     /* in the ready queue */
	TIDE__H_TIMER = 1u << 1,     /* in the timer heap */
	TIDE__H_CANCELLED = 1u << 2, /* will not run; recycled when dequeued */
	TIDE__H_FUTURE_CB = 1u << 3, /* fn is a tide_future_cb, fut is set */
	TIDE__H_INTERNAL = 1u << 4,  /* the loop's own timer (a loop-path timeout op): close keeps it */
	TIDE__H_FIRED = 1u << 5,     /* moved from the timer heap: counts in timers_fired when it runs */
};

/*
 * One scheduled callback: call_soon, a timer, or a future's done callback.
 * Slots are carved from chunks that live as long as the loop, so a stale
 * struct tide_handle (slot + gen) can always be checked safely.
 */
struct tide__handle {
	struct tide__handle *next; /* ready queue, free list or a future's callback list */
	struct tide_loop *loop;    /* owner; handles never move between loops */
	uint64_t gen;              /* bumped on every recycle: stale public handles miss */
	uint64_t when;             /* timer deadline, loop clock ns */
	uint64_t seq;              /* arming order: equal deadlines fire FIFO */
	uint32_t heap_idx;         /* position in the timer heap while TIMER */
	uint32_t flags;            /* TIDE__H_* */
	union {
		tide_call_cb call;  /* plain callbacks */
		tide_future_cb fut; /* TIDE__H_FUTURE_CB */
	} fn;
	void *arg;               /* fn's argument */
	struct tide_future *fut; /* done callbacks: the future passed to fn (a reference) */
};

/*
 * One entry of the ready ring. A plain call_soon without a handle is just
 * (fn, arg): no slot to allocate or recycle, and the ring is read
 * sequentially. Anything that needs a handle (cancellable calls, fired
 * timers, done callbacks) is (NULL, handle).
 */
struct tide__entry {
	tide_call_cb fn; /* the callback, or NULL when arg is a struct tide__handle */
	void *arg;
};

/* A FIFO of handles, intrusive through ->next. */
struct tide__hqueue {
	struct tide__handle *head;
	struct tide__handle **tailp; /* &last->next, or &head when empty */
};

static inline void tide__hq_init(struct tide__hqueue *q)
{
	q->head = NULL;
	q->tailp = &q->head;
}
static inline void tide__hq_push(struct tide__hqueue *q, struct tide__handle *h)
{
	h->next = NULL;
	*q->tailp = h;
	q->tailp = &h->next;
}

/* ------------------------------------------------------------- backends -- */

struct tide__op; /* io/io.h */

/*
 * The backend seam: mechanism only. The loop's iteration (core) only waits
 * through it; src/io implements it and alone submits and cancels through
 * it. submit() takes an op whose path is decided; cancel() asks for an
 * early final completion; wait() blocks at
 * most timeout_ns (0: poll, UINT64_MAX: forever) and completes ops. submit() takes an op whose path is
 * decided; cancel() asks for an early final completion; wait() blocks at
 * most timeout_ns (0: poll, UINT64_MAX: forever) and completes ops.
 */
struct tide__backend_ops {
	const char *name;
	int (*init)(struct tide_loop *loop, const struct tide_loop_opts *opts);
	void (*fini)(struct tide_loop *loop);
	int (*submit)(struct tide_loop *loop, struct tide__op *op);
	void (*cancel)(struct tide_loop *loop, struct tide__op *op);
	int (*wait)(struct tide_loop *loop, uint64_t timeout_ns);
	/* Whether kind runs natively here (io_uring probe); epoll: 0. */
	bool (*native)(const struct tide_loop *loop, int kind);
	/* Gives a buffer of the provided-buffer ring back (NULL where there
	 * is no ring). */
	void (*pbuf_recycle)(struct tide_loop *loop, unsigned bid);
	/* The loop is about to close fd (NULL: nothing to do). */
	void (*fd_close)(struct tide_loop *loop, int fd);
};

/* -------------------------------------------------------- threadsafe q -- */

/* A node of the cross-thread queue: a call_soon_threadsafe or an executor completion. */
struct tide__tsnode {
	struct tide__tsnode *next;
	void (*run)(struct tide__tsnode *n); /* on the loop thread */
	tide_call_cb cb;                     /* call_soon_threadsafe: the callback */
	void *arg;
};

/* ----------------------------------------------------------------- loop -- */

struct tide__chunk; /* handle slab chunk */
struct tide__job;   /* io/io.h */
struct tide__task;  /* task/task.h */
struct tide__stack; /* task/coro.h */
struct tide__net;   /* net/net.h */

/*
 * Threads. One thread at a time drives a loop, and it may be another one
 * than the last (asyncio's rule):
 *  - running: atomic. The run functions, close and free take it with a
 *    compare-and-swap (acquire) and drop it with a release store (loop.c),
 *    so a second thread is refused at once, and the thread that takes it
 *    next sees everything the last one wrote. tide_loop_is_running reads
 *    it relaxed.
 * The thread that holds it alone touches the loop's fields, but for these,
 * which other threads reach through the cross-thread door
 * (tide_call_soon_threadsafe, an executor worker delivering a job):
 *  - closed: atomic. tide_loop_close stores it and call_soon_threadsafe
 *    loads it, both relaxed: it publishes no other data (a call that reads
 *    it stale queues a node, which the drain drops on a closed loop).
 *    tide__loop_closed() is the one reader.
 *  - ts_head, ts_tailp, ts_free: under ts_lock.
 *  - ts_nonempty: stored (relaxed) under ts_lock, and set (seq_cst) by
 *    the signal handler without it (signal.c); the drain clears it
 *    (seq_cst) before it looks for signals. The loop loads it (relaxed)
 *    without the lock, as a hint only: it takes ts_lock before it reads
 *    the queue, and a stale false is covered by the eventfd.
 *  - ts_wake_pending: exchanged by producers under ts_lock and by the
 *    signal handler, cleared by the loop when it consumed the eventfd (all
 *    seq_cst, threadsafe.c).
 *  - wake_fd: written by new and free only. Producers write to it under
 *    ts_lock, and free takes ts_lock before it closes the fd or frees the
 *    loop, so no producer is still inside the loop then (a worker whose job
 *    was delivered, or a call whose callback already ran).
 */
struct tide_loop {
	/* Hot state first: what every iteration and every call_soon touches. */
	struct tide__entry *rq;       /* ready ring: callbacks for the next run phase, FIFO */
	uint32_t rq_head;             /* next entry to run (free-running, masked on use) */
	uint32_t rq_tail;             /* next free slot */
	uint32_t rq_mask;             /* ring size - 1 (a power of two) */
	struct tide__hqueue rq_spill; /* handles that found no room when the ring could not grow */
	struct tide__handle *free_h;  /* recycled handles */
	uint64_t now;                 /* cached monotonic ns: read each iteration that has timers or waits a finite time, before the wait */
	uint64_t timer_seq;           /* next arming number */
	struct tide__handle **heap;   /* timer min-heap on (when, seq), 4-ary */
	uint32_t heap_len;            /* timers armed */
	uint32_t heap_cap;            /* slots allocated */
	atomic_bool running;          /* a thread drives the loop (run, close, free hold it; loop.c) */
	bool stopping;                /* stop() was called: finish this iteration */
	atomic_bool closed;           /* close() was called (cross-thread: see above) */
	bool debug;                   /* asyncio debug mode */
	bool under_valgrind;          /* memcheck runs us: ops mark what the kernel wrote (io.c) */
	bool tearing_down;            /* tide_loop_free is reaping the loop's own ops */
	/* tide__fork_gen when the loop was made: a process that sees another
	 * value is a fork of the loop's (tide__loop_forked). */
	unsigned fork_gen;
	pid_t pid;                    /* the process that made the loop (free compares it) */

	/* Live counts that make tide_loop_free() return -EBUSY. */
	uint64_t live_futures;        /* futures not yet freed */
	uint64_t live_ops;            /* user ops not yet completed */
	struct tide__list live_list;  /* those ops (op->live), so free can settle abandoned ones */
	uint64_t live_jobs;           /* executor jobs whose completion is not delivered */
	uint64_t ops_inflight;        /* ops the backend holds (user and internal) */
	uint64_t live_net;            /* transports and servers not yet gone: their ops can complete */
	uint64_t net_closing;         /* of those, the ones closing (freed servers): their ends are due */
	/* Children the loop spawned and has not reaped yet (io/op-proc.c):
	 * their reaping ops, which the SIGCHLD path scans and tide_loop_free
	 * hands to a reaper thread. They never make free say -EBUSY (a
	 * freed process's child is the loop's alone). */
	struct tide__list children;
	uint64_t live_children;
	/* The SIGCHLD watch while children without a pidfd live, and
	 * whether a scan of them is queued (io/op-proc.c). */
	struct tide__sigwatch *sigchld;
	bool sigchld_scan;
	/* The net layer's per-loop state (buffer pools, ring-buffer lending),
	 * made by the first transport or server; net_fini frees it. */
	struct tide__net *net;
	void (*net_fini)(struct tide_loop *loop);

	/* Free lists: no malloc in the steady state. */
	struct tide__op *free_ops;
	struct tide_future *free_futs;
	struct tide__job *free_jobs;  /* executor jobs (made and freed on this thread) */
	struct tide__list free_tasks; /* recycled task objects */

	/* Tasks. */
	struct tide__stack *free_stacks; /* pooled stacks of task_stack_size */
	unsigned free_stacks_n;
	size_t task_stack_size;       /* default task stack (usable bytes) */
	size_t task_guard_size;       /* PROT_NONE guard below each task stack (bytes) */
	struct tide__list tasks;      /* tasks not yet finished, newest first (tide_all_tasks) */
	uint64_t tasks_alive;
	uint64_t task_counter;        /* numbers "Task-N" */
	void *sched;                  /* struct tide__coro of the thread running the loop */
	struct tide__chunk *chunks;   /* every handle slab, freed with the loop */

	/* Cross-thread door: call_soon_threadsafe and executor completions. */
	pthread_mutex_t ts_lock;      /* guards ts_head/ts_tailp/ts_free and the eventfd write */
	struct tide__tsnode *ts_head; /* FIFO, pushed by any thread */
	struct tide__tsnode **ts_tailp;
	struct tide__tsnode *ts_free; /* recycled call_soon_threadsafe nodes */
	atomic_bool ts_nonempty;      /* lock-free hint that ts_head is non-empty */
	atomic_bool ts_wake_pending;  /* an eventfd write is pending: later producers skip theirs */
	bool ts_draining;             /* tide__ts_drain_slow is moving the queue (loop thread) */
	int wake_fd;                  /* eventfd that wakes a sleeping backend */
	uint64_t wake_buf;            /* the wake op's read target (owned by the loop) */
	struct tide__op *wake_op;     /* internal read on wake_fd, re-armed on completion */

	/* Backend. */
	const struct tide__backend_ops *backend;
	void *bd;                     /* backend private data */
	char reason[256];             /* why this backend (tide_loop_backend_reason) */
	uint64_t disabled_ops;        /* bit per tide_op_kind masked by TIDE_DISABLE_OPS */
	unsigned ring_entries;
	unsigned recv_buf_count;      /* provided-buffer ring: buffers (a power of two) */
	size_t recv_buf_size;         /* and the size of each */
	unsigned pbufs_lent;          /* ring buffers kept out of the ring (tide__pbuf_keep) */
	unsigned fault_enter;         /* TIDE_FAULT_ENTER: percent of io_uring_enter calls failed on purpose */
	bool fault_seeded;            /* and its seed was given (else one per process) */
	uint64_t fault_seed;

	/* Executor. */
	struct tide_executor *default_ex;
	bool default_ex_owned;         /* the loop made it and frees it */
	unsigned executor_threads;

	/* Signals (signal.c): the handlers, watches and the registry slot,
	 * made by the first handler or watch; NULL until then. */
	struct tide__sigloop *sig;

	/* Errors and debug. */
	tide_exception_cb exc_handler;
	void *exc_arg;
	uint64_t slow_ns;              /* slow_callback_duration */

	struct tide_loop_stats stats;
};


/*
 * Bumped in every child fork(2) makes (a pthread_atfork handler, loop.c):
 * a loop whose fork_gen differs was made by an ancestor process, whose
 * epoll set, rings and eventfd the child shares. One load, no getpid()
 * (a system call in glibc), at each entry that would reach the kernel.
 */
extern atomic_uint tide__fork_gen;

static inline bool tide__loop_forked(const struct tide_loop *loop)
{
	return TIDE__UNLIKELY(loop->fork_gen != atomic_load_explicit(&tide__fork_gen, memory_order_relaxed));
}

/* Whether tide_loop_close ran: relaxed, from any thread (see struct tide_loop). */
static inline bool tide__loop_closed(const struct tide_loop *loop)
{
	return atomic_load_explicit(&loop->closed, memory_order_relaxed);
}

/* What starting new work on the loop (an op, a job, a server) gets:
 * TIDE_EFORKED in a forked child, TIDE_ECLOSED once closed, else 0. */
static inline int tide__loop_refuses(const struct tide_loop *loop)
{
	if (tide__loop_forked(loop))
		return TIDE_EFORKED;
	return tide__loop_closed(loop) ? TIDE_ECLOSED : 0;
}

/* Clock: monotonic nanoseconds. */
uint64_t tide__clock_ns(void);
/* getenv, with an empty value read as unset. */
const char *tide__getenv(const char *name);
/* tide_loop_new's failure: says why (tide_loop_new_error) and returns err. */
__attribute__((format(printf, 2, 3))) int tide__loop_new_failed(int err, const char *fmt, ...);

/*
 * The one reader of size-prefixed option structs (struct tide_*_opts):
 * field, or dflt when opts is NULL or too short to hold it (a caller
 * compiled against an older tide.h).
 */
#define TIDE__OPT(opts, field, dflt)                                                            \
	((opts) && (opts)->size >= offsetof(__typeof__(*(opts)), field) + sizeof((opts)->field) \
		 ? (opts)->field                                                                \
		 : (dflt))
/* An options struct must at least hold its size. */
#define TIDE__OPTS_BAD(opts) ((opts) && (opts)->size < sizeof(size_t))

/*
 * The loop's teardown hub: the calls through which a loop's life reaches
 * the layers above core, defined there (test/layering.sh allows exactly
 * these). io: choose the backend and arm the wake-up read (new), settle
 * what nobody holds on a closed loop (free), close down (free). task:
 * cancel what runs (shutdown), free the pools (free). net hangs its own
 * fini hook on the loop (net_fini).
 */
int tide__io_open(struct tide_loop *loop, const struct tide_loop_opts *opts);
void tide__io_settle(struct tide_loop *loop);
void tide__io_close(struct tide_loop *loop);
void tide__tasks_fini(struct tide_loop *loop);
/* Cancels the tasks numbered after *mark, then sets *mark to the newest. */
void tide__tasks_cancel_since(struct tide_loop *loop, uint64_t *mark);

/* Whether a completion may come without any user callback queued: user ops
 * in flight, transports and servers alive (their ops complete), or
 * children not yet reaped. */
static inline bool tide__io_pending(const struct tide_loop *loop)
{
	return loop->live_ops || loop->live_net || loop->live_children;
}
/* Debug mode's slow-callback report asks this hook (the task layer's)
 * to describe fn(arg): > 0 when it wrote a description into buf. */
extern int (*tide__describe_hook)(tide_call_cb fn, void *arg, char *buf, size_t cap);
/* Queue a handle at the tail of the ready queue; never fails (spills on ENOMEM). */
void tide__ready_push(struct tide_loop *loop, struct tide__handle *h);
/* Queue a plain callback; -ENOMEM if the ring cannot grow. */
int tide__ready_call(struct tide_loop *loop, tide_call_cb fn, void *arg);
/* The same without first taking the calls other threads queued (the
 * drain's own push, which keeps the queue's order). */
int tide__ready_call_nots(struct tide_loop *loop, tide_call_cb fn, void *arg);
/* The same, never failing: a handle goes through the spill list when the
 * ring cannot grow (aborts only if no handle can be had either). */
void tide__ready_call_must(struct tide_loop *loop, tide_call_cb fn, void *arg);
/* The same for the loop's own work that must happen even if the loop is
 * closed first (a transport's end): tide_loop_close keeps it. */
int tide__call_soon_internal(struct tide_loop *loop, tide_call_cb fn, void *arg);
struct tide__handle *tide__handle_alloc(struct tide_loop *loop);
void tide__handle_recycle(struct tide_loop *loop, struct tide__handle *h);
/* Internal timers and soon-calls (not counted as user callbacks). */
/* timer.c: the timer heap and the scheduling they share with call_soon. */
int tide__seconds_to_ns(double s, uint64_t *ns);
void tide__timers_expire(struct tide_loop *loop);
/* tide_loop_close: the user's timers go, the loop's own stay. */
void tide__timers_drop_user(struct tide_loop *loop);
/* A handle for cb (a timer at when, or a ready call), filled into out. */
int tide__schedule(struct tide_loop *loop, tide_call_cb cb, void *arg, bool timer, uint64_t when,
		   struct tide_handle *out);
struct tide__handle *tide__call_at_ns(struct tide_loop *loop, uint64_t when, void (*fn)(void *), void *arg);
void tide__timer_cancel(struct tide_loop *loop, struct tide__handle *h);
/* Threadsafe queue: push from any thread, drain on the loop thread. */
void tide__ts_push(struct tide_loop *loop, struct tide__tsnode *n);
int tide__ts_init(struct tide_loop *loop);
void tide__ts_fini(struct tide_loop *loop);
/* Runs what other threads queued; returns how many. The empty check is
 * inline: it runs twice per iteration and must not cost a call. */
unsigned tide__ts_drain_slow(struct tide_loop *loop);
static inline unsigned tide__ts_drain(struct tide_loop *loop)
{
	if (TIDE__LIKELY(!atomic_load_explicit(&loop->ts_nonempty, memory_order_relaxed)))
		return 0;
	return tide__ts_drain_slow(loop);
}
/*
 * asyncio's one FIFO: a call queued on the loop's thread goes after every
 * call_soon_threadsafe call queued before it (from that thread, or from
 * another that happened before). So whatever queues a ready callback
 * first moves those calls into the ready queue, when there are any: a
 * relaxed load inline, the move out of line. Other nodes (executor
 * completions) wait for the iteration's drain: they run code.
 */
void tide__ts_take_calls(struct tide_loop *loop);
static inline void tide__ts_take_calls_maybe(struct tide_loop *loop)
{
	if (TIDE__UNLIKELY(atomic_load_explicit(&loop->ts_nonempty, memory_order_relaxed)))
		tide__ts_take_calls(loop);
}
/* The backend saw the wake eventfd readable (epoll) or its read complete. */
void tide__ts_woken(struct tide_loop *loop);
/*
 * Signals (signal.c). One process-wide handler per signal marks the signal
 * pending for each loop that wants it and wakes the loop through its
 * cross-thread door (the eventfd); the drain then takes the marks and
 * queues one ready callback that runs the loop's handlers and watches.
 *
 * A watch is the library's own subscription (the subprocess code's
 * SIGCHLD): cb(arg) runs on the loop thread like a handler, after every
 * arrival of signo that follows the watch (coalesced in a burst), beside
 * a user handler of the same signal and any other watch. Several watches
 * of one signal and loop may coexist. tide__signal_watch returns 0 and the
 * watch in *out, -EINVAL (a bad signo or cb), -ENOMEM, -ENOSPC (too many
 * loops with signals), TIDE_ECLOSED or TIDE_EFORKED; its disposition rules
 * are a handler's. A watch may be dropped from any callback of its loop,
 * its own included; one still there when the loop is freed goes with it
 * (its owner must not unwatch it after). NULL does nothing.
 */
struct tide__sigwatch;
int tide__signal_watch(struct tide_loop *loop, int signo, tide_call_cb cb, void *arg, struct tide__sigwatch **out);
void tide__signal_unwatch(struct tide__sigwatch *w);
/* The drain's part: takes the signals marked for the loop (threadsafe.c). */
void tide__signal_take(struct tide_loop *loop);
/* close: the user's handlers go (asyncio's close removes them). */
void tide__signal_close(struct tide_loop *loop);
/* free: everything goes, the loop leaves the registry (before its eventfd closes). */
void tide__signal_fini(struct tide_loop *loop);

/* Report through the exception handler. */
void tide__report(struct tide_loop *loop, const char *msg, int err, struct tide_future *fut, void *cb);

/* ----------------------------------------------------------- futures -- */

/* Cancellation request forwarded to what is behind a future (op, job). */
typedef int (*tide__cancel_hook)(struct tide_future *fut, void *arg);

enum { TIDE__F_PENDING = 0, TIDE__F_DONE = 1, TIDE__F_CANCELLED = 2 };

/*
 * An object whose head is a future (a task) plugs these into it, so that
 * core never names it: cancel() replaces the plain cancel (a task is
 * cancelled through its body), release() takes the memory back when the
 * last reference goes, and run(obj) is its next step, queued when a future
 * it parked on (as waiter) is done.
 */
struct tide__future_hooks {
	int (*cancel)(struct tide_future *f);
	void (*release)(struct tide_future *f);
	tide_call_cb run;
};

struct tide_future {
	struct tide_future *next_free; /* loop free list */
	uint32_t refs;              /* references; freed at 0 */
	uint8_t state;              /* TIDE__F_* */
	bool error_retrieved;       /* result()/error() looked at the error */
	bool cancel_requested;      /* a cancel hook is working on it */
	int error;                  /* < 0 once failed or cancelled */
	int64_t value;              /* result payload */
	void *ptr;                  /* result payload */
	struct tide__handle *callbacks; /* done callbacks in add order (handles, not yet queued) */
	struct tide__handle **cb_tailp;
	struct tide_future *waiter; /* a future-headed object (a task) parked first in line:
				     * its hooks->run(waiter) is queued when this one is done */
	tide__cancel_hook cancel_hook; /* set while an op or job backs the future */
	void *cancel_arg;
	void (*ptr_release)(void *ptr); /* frees ptr (or drops its reference) when the future goes */
	struct tide_future *ptr_owner; /* ptr is this future's (a shield's inner): held, taken from it */
	char *cancel_msg;           /* tide_future_cancel_msg's message (a copy), or NULL */
	/* What a future-headed object (a task) plugs in: NULL for a plain future. */
	const struct tide__future_hooks *hooks;
	/* Last: a task's fields that every step touches follow it (task.c). */
	struct tide_loop *loop;     /* owner; a future is single-threaded */
};

static inline uint32_t tide__future_refs(const struct tide_future *f)
{
	return f->refs;
}

/* Sets the message a cancel of f carries (a copy; NULL clears). 0 or -ENOMEM. */
int tide__future_set_cancel_msg(struct tide_future *f, const char *msg);
/* Shared by futures and tasks: a fresh pending future owned by loop. */
void tide__future_init(struct tide_loop *loop, struct tide_future *f);
/* Complete with the CQE convention: res >= 0 result, -ECANCELED cancelled, else error. */
void tide__future_complete_res(struct tide_future *fut, int64_t res);

#endif /* TIDE_CORE_H */
