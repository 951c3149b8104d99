/* SPDX-License-Identifier: MIT */
/*
 * internal.h: the core structs shared by the loop, futures, ops, backends and
 * the executor. Nothing here is part of the ABI.
 *
 * The hard part it encodes is ownership (DESIGN.md): an op owns what the
 * kernel can see until its final completion, handles and ops come from
 * per-loop free lists so the steady state never calls malloc, and the only
 * cross-thread door into a loop is the threadsafe queue.
 */
#ifndef TIDE_INTERNAL_H
#define TIDE_INTERNAL_H

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
#define TIDE__WB_CLASSES 7 /* write-buffer pools: 64 B to 4 KiB (transport.c) */

#define tide__container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

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

/* ------------------------------------------------------------------ ops -- */

enum {
	TIDE__OP_INFLIGHT = 1u << 0,   /* the backend holds it; the kernel may touch its memory */
	TIDE__OP_CANCELLING = 1u << 1, /* a cancel was requested; wait for the final completion */
	TIDE__OP_INTERNAL = 1u << 2,   /* the loop's own (wake-up eventfd): not a live user object */
	TIDE__OP_CHARDEV = 1u << 4,    /* the fd is a character device (tty): io_uring runs it in io-wq */
	TIDE__OP_MORE = 1u << 5,       /* done() is seeing one result of a multishot op; more follow */
	TIDE__OP_STARTED = 1u << 6,    /* readiness connect: connect(2) ran, wait for SO_ERROR */
	TIDE__OP_ZC_RESULT = 1u << 7,  /* zero-copy send: result seen, its notification is still due */
	TIDE__OP_NO_TRY = 1u << 8,     /* readiness path: wait before the first attempt (it would say EAGAIN) */
	TIDE__OP_LAZY = 1u << 9,       /* the fd is closed through the loop (fd_close): epoll may keep it registered */
	TIDE__OP_REAPED = 1u << 10,    /* epoll: performed, its completion is queued (a cancel is too late) */
};

struct tide__op;
/* Called on the loop thread with the op's one result, exactly once. */
typedef void (*tide__op_done_cb)(struct tide__op *op);

/*
 * The unit of I/O. It owns every argument the kernel reads later (the
 * timespec is copied in here) and the buffer pointer until the final
 * completion, even after a cancel.
 *
 * Field order: what completing an op touches (kind, flags, res, cflags,
 * done and owner) is the first 64 bytes, so a CQE for a connection the
 * loop finds cold costs one cache line; what submitting reads follows.
 */
struct tide__op {
	struct tide__op *next;      /* free list, epoll fd waiters, completion list */
	struct tide_loop *loop;     /* owner */
	uint8_t kind;               /* enum tide_op_kind */
	uint8_t path;               /* enum tide_op_path, fixed at submit */
	uint16_t flags;             /* TIDE__OP_* */
	int fd;                     /* target fd, -1 for timeouts */
	int32_t res;                /* the result once complete */
	uint32_t cflags;            /* io_uring CQE flags of the result done() sees (buffer id) */
	tide__op_done_cb done;      /* completion: called once on the loop thread */
	union {
		struct {                    /* public ops (tide_op_*) */
			struct tide_future *fut;    /* the future to complete (a reference) */
			struct tide__op *live_next; /* the loop's list of live ops (for free) */
			struct tide__op *live_prev;
		};
		void *owner;                /* internal ops: the object done() works for (a transport) */
	};
	void *buf;                  /* read/write buffer (the caller's, valid until done) */
	size_t len;                 /* its length */
	union {
		int64_t off;        /* read/write: file offset, -1 for the current position */
		struct {
			int msg_flags;  /* socket ops: send/recv flags, shutdown's how */
			int zc_res;     /* zero-copy send: the result, held until the notification */
		};
		socklen_t caddrlen; /* connect: the address copy's length */
	};
	uint32_t events;            /* poll: requested mask; readiness path: what to wait for */
	union {
		struct __kernel_timespec ts; /* timeout: relative, owned here for the kernel */
		struct {
			struct sockaddr *addr;   /* accept: the caller's, or NULL */
			socklen_t *addrlen;
		} acc;
		struct msghdr *msg;          /* sendmsg/recvmsg: the caller's */
		struct sockaddr_storage *caddr; /* connect: a copy, freed with the op */
	} u;
	union {                     /* one per path, never two at once */
		struct tide__handle *timer; /* loop path (timeouts): its timer */
		struct tide__op *prev_w;    /* epoll: doubly linked per-fd waiter list */
		void *job;                  /* executor path: the job in flight */
	};
};

/* An op that lives inside its owner (a transport's read op): never released. */
void tide__op_init(struct tide_loop *loop, int kind, struct tide__op *op);

int tide__op_new(struct tide_loop *loop, int kind, struct tide__op **out);
void tide__op_release(struct tide__op *op);
/* Route and hand to the backend; on error the op is not submitted. */
int tide__op_submit(struct tide__op *op);
/* tide_loop_free: cancel and reap ops nobody but the loop references. */
void tide__ops_settle_abandoned(struct tide_loop *loop);
/* Request cancellation; the op still completes exactly once. */
void tide__op_cancel(struct tide__op *op);
/* Backends call this with the final result; it runs done() now. */
void tide__op_complete(struct tide__op *op, int res);
/* A multishot op's non-final result (CQE flags in cflags): done() runs with
 * TIDE__OP_MORE set and the op stays in flight. */
void tide__op_deliver_more(struct tide__op *op, int res, uint32_t cflags);
/* What a readiness-path op waits for (POLLIN / POLLOUT...). */
uint32_t tide__op_wait_events(const struct tide__op *op);
/* op-net.c: the socket kinds' non-blocking step. */
int tide__op_perform_net(struct tide__op *op);
/* Readiness-path connect: runs connect(2); true while the handshake runs,
 * else false with the outcome in *res. */
bool tide__op_connect_start(struct tide__op *op, int *res);
bool tide__op_kind_is_net(int kind);
/* A public op with a new future: op_start fills *opp, op_go submits. */
int tide__op_start(struct tide_loop *loop, int kind, struct tide__op **opp, struct tide_future **out);
int tide__op_go(struct tide__op *op, struct tide_future **out);
/*
 * Performs a readiness-path op without blocking (after readiness or
 * optimistically). Returns the result, or -EAGAIN to wait again.
 */
int tide__op_perform(struct tide__op *op);
/* Executor path: queue the op's blocking syscall (tide__op_blocking) on a worker. */
int tide__op_submit_executor(struct tide__op *op);
int64_t tide__op_blocking(void *op);
/* Takes a still-queued executor-path op back; 1 if it will never run. */
int tide__op_cancel_executor(struct tide__op *op);

/* ------------------------------------------------------------- backends -- */

/*
 * The backend seam: mechanism only. submit() takes an op whose path is
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
	/*
	 * The provided-buffer ring of multishot receives (NULL where there is
	 * none): the buffer a CQE's buffer id names, and giving it back.
	 */
	void *(*pbuf)(struct tide_loop *loop, unsigned bid, size_t *size);
	void (*pbuf_recycle)(struct tide_loop *loop, unsigned bid);
	/* The loop is about to close fd (NULL: nothing to do). */
	void (*fd_close)(struct tide_loop *loop, int fd);
};

extern const struct tide__backend_ops tide__backend_uring;
extern const struct tide__backend_ops tide__backend_epoll;

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

struct tide_loop {
	/* Hot state first: what every iteration and every call_soon touches. */
	struct tide__entry *rq;       /* ready ring: callbacks for the next run phase, FIFO */
	uint32_t rq_head;             /* next entry to run (free-running, masked on use) */
	uint32_t rq_tail;             /* next free slot */
	uint32_t rq_mask;             /* ring size - 1 (a power of two) */
	struct tide__hqueue rq_spill; /* handles that found no room when the ring could not grow */
	struct tide__handle *free_h;  /* recycled handles */
	uint64_t now;                 /* cached monotonic ns, updated each iteration */
	uint64_t timer_seq;           /* next arming number */
	struct tide__handle **heap;   /* timer min-heap on (when, seq), 4-ary */
	uint32_t heap_len;            /* timers armed */
	uint32_t heap_cap;            /* slots allocated */
	bool running;                 /* inside run/run_once */
	bool stopping;                /* stop() was called: finish this iteration */
	bool closed;                  /* close() was called */
	bool debug;                   /* asyncio debug mode */
	bool tearing_down;            /* tide_loop_free is reaping the loop's own ops */

	/* Live counts that make tide_loop_free() return -EBUSY. */
	uint64_t live_futures;        /* futures not yet freed */
	uint64_t live_ops;            /* user ops not yet completed */
	struct tide__op *live_list;   /* those ops, so free can settle abandoned ones */
	uint64_t live_jobs;           /* executor jobs whose completion is not delivered */
	uint64_t ops_inflight;        /* ops the backend holds (user and internal) */
	uint64_t live_net;            /* transports and servers not yet gone: their ops can complete */
	uint64_t net_closing;         /* of those, the ones closing (freed servers): their ends are due */
	char *net_rbuf;               /* readiness-path receive buffer shared by every transport */
	/* Transports' empty write buffers of 64 << i bytes, linked through
	 * their first bytes (transport.c). */
	char *wbuf_pool[TIDE__WB_CLASSES];
	unsigned wbuf_pooled[TIDE__WB_CLASSES];

	/* Free lists: no malloc in the steady state. */
	struct tide__op *free_ops;
	struct tide_future *free_futs;
	struct tide__job *free_jobs;  /* executor jobs (made and freed on this thread) */
	struct tide__task *free_tasks; /* recycled task objects */

	/* Tasks. */
	struct tide__stack *free_stacks; /* pooled stacks of task_stack_size */
	unsigned free_stacks_n;
	size_t task_stack_size;       /* default task stack (usable bytes) */
	struct tide__task *tasks;     /* tasks not yet finished (tide_all_tasks) */
	uint64_t tasks_alive;
	uint64_t task_counter;        /* numbers "Task-N" */
	void *sched;                  /* struct tide__coro of the thread running the loop */
	struct tide__chunk *chunks;   /* every handle slab, freed with the loop */

	/* Cross-thread door: call_soon_threadsafe and executor completions. */
	pthread_mutex_t ts_lock;      /* guards ts_head/ts_tail/ts_free */
	struct tide__tsnode *ts_head; /* FIFO, pushed by any thread */
	struct tide__tsnode **ts_tailp;
	struct tide__tsnode *ts_free; /* recycled call_soon_threadsafe nodes */
	atomic_bool ts_nonempty;      /* lock-free hint that ts_head is non-empty */
	atomic_bool ts_wake_pending;  /* an eventfd write is pending: later producers skip theirs */
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
	/* transport.c: the ring buffer whose bytes data_received is reading
	 * (NULL outside it), which a write of those bytes may keep and send
	 * from instead of copying; and how many buffers sends keep now. */
	const char *lend_p;
	size_t lend_len;
	unsigned lend_bid;
	unsigned pbufs_lent;

	/* Executor. */
	struct tide_executor *default_ex;
	bool default_ex_owned;         /* the loop made it and frees it */
	unsigned executor_threads;

	/* Errors and debug. */
	tide_exception_cb exc_handler;
	void *exc_arg;
	uint64_t slow_ns;              /* slow_callback_duration */

	struct tide_loop_stats stats;
};

/* transport.c: frees pooled write buffers beyond keep (all at tide_loop_free). */
void tide__wbuf_pool_trim(struct tide_loop *loop, unsigned keep);

/* Clock: monotonic nanoseconds. */
uint64_t tide__clock_ns(void);
/* Queue a handle at the tail of the ready queue; never fails (spills on ENOMEM). */
void tide__ready_push(struct tide_loop *loop, struct tide__handle *h);
/* Queue a plain callback; -ENOMEM if the ring cannot grow. */
int tide__ready_call(struct tide_loop *loop, tide_call_cb fn, void *arg);
/* The same for the loop's own work that must happen even if the loop is
 * closed first (a transport's end): tide_loop_close keeps it. */
int tide__call_soon_internal(struct tide_loop *loop, tide_call_cb fn, void *arg);
struct tide__handle *tide__handle_alloc(struct tide_loop *loop);
void tide__handle_recycle(struct tide_loop *loop, struct tide__handle *h);
/* Internal timers and soon-calls (not counted as user callbacks). */
struct tide__handle *tide__call_at_ns(struct tide_loop *loop, uint64_t when, void (*fn)(void *), void *arg);
void tide__timer_cancel(struct tide_loop *loop, struct tide__handle *h);
/* Threadsafe queue: push from any thread, drain on the loop thread. */
void tide__ts_push(struct tide_loop *loop, struct tide__tsnode *n);
int tide__ts_init(struct tide_loop *loop);
void tide__ts_fini(struct tide_loop *loop);
/* Starts and stops the loop's read on its wake-up eventfd. */
int tide__ts_arm(struct tide_loop *loop);
void tide__ts_disarm(struct tide_loop *loop);
/* Runs what other threads queued; returns how many. The empty check is
 * inline: it runs twice per iteration and must not cost a call. */
unsigned tide__ts_drain_slow(struct tide_loop *loop);
static inline unsigned tide__ts_drain(struct tide_loop *loop)
{
	if (TIDE__LIKELY(!atomic_load_explicit(&loop->ts_nonempty, memory_order_relaxed)))
		return 0;
	return tide__ts_drain_slow(loop);
}
/* The backend saw the wake eventfd readable (epoll) or its read complete. */
void tide__ts_woken(struct tide_loop *loop);
/* Report through the exception handler. */
void tide__report(struct tide_loop *loop, const char *msg, int err, struct tide_future *fut, void *cb);

/* ----------------------------------------------------------- futures -- */

/* Cancellation request forwarded to what is behind a future (op, job). */
typedef int (*tide__cancel_hook)(struct tide_future *fut, void *arg);

enum { TIDE__F_PENDING = 0, TIDE__F_DONE = 1, TIDE__F_CANCELLED = 2 };

struct tide_future {
	struct tide_future *next_free; /* loop free list */
	uint32_t refs;              /* references; freed at 0 */
	uint8_t state;              /* TIDE__F_* */
	bool error_retrieved;       /* result()/error() looked at the error */
	bool cancel_requested;      /* a cancel hook is working on it */
	bool is_task;               /* this future is the head of a struct tide__task */
	int error;                  /* < 0 once failed or cancelled */
	int64_t value;              /* result payload */
	void *ptr;                  /* result payload */
	struct tide__handle *callbacks; /* done callbacks in add order (handles, not yet queued) */
	struct tide__handle **cb_tailp;
	void *waiter;               /* a task parked on it ahead of any callback (task.c) */
	tide__cancel_hook cancel_hook; /* set while an op or job backs the future */
	void *cancel_arg;
	void (*ptr_release)(void *ptr); /* frees ptr (or drops its reference) when the future goes */
	struct tide_future *ptr_owner; /* ptr is this future's (a shield's inner): held, taken from it */
	/* Last: a task's fields that every step touches follow it (task.c). */
	struct tide_loop *loop;     /* owner; a future is single-threaded */
};

static inline uint32_t tide__future_refs(const struct tide_future *f)
{
	return f->refs;
}

/* Shared by futures and tasks: a fresh pending future owned by loop. */
void tide__future_init(struct tide_loop *loop, struct tide_future *f);
/* A task's memory goes back when its future's last reference does. */
void tide__task_release(struct tide_future *f);
void tide__tasks_fini(struct tide_loop *loop);
/* Cancels the tasks numbered after *mark, then sets *mark to the newest. */
void tide__tasks_cancel_since(struct tide_loop *loop, uint64_t *mark);
/* Queue a parked task's next step (the future it waits on is done). */
void tide__task_wake_soon(struct tide_loop *loop, void *task);

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

/* Complete with the CQE convention: res >= 0 result, -ECANCELED cancelled, else error. */
void tide__future_complete_res(struct tide_future *fut, int64_t res);

/* ------------------------------------------------------------- executor -- */

/* An executor job; its completion crosses back through the threadsafe queue. */
struct tide__job {
	struct tide__tsnode node;   /* completion delivery to the loop (must be first) */
	struct tide__job *next;     /* executor queue */
	struct tide__job *prev;
	struct tide_executor *ex;
	struct tide_loop *loop;
	tide_job_cb fn;             /* user job, or NULL with op set */
	void *arg;
	struct tide__op *op;        /* executor-path op, or NULL */
	struct tide_future *fut;    /* user job: the future (a reference) */
	int64_t result;
	int state;                  /* queued, running or cancelled (under the executor's lock) */
};

int tide__executor_submit(struct tide_loop *loop, struct tide_executor *ex, struct tide__job *job);
/* Removes a job that has not started; returns 1 if removed. */
int tide__executor_unqueue(struct tide__job *job);
struct tide_executor *tide__loop_executor(struct tide_loop *loop, int *err);

#endif /* TIDE_INTERNAL_H */
