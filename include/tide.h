/* SPDX-License-Identifier: MIT */
/*
 * tide.h: asyncio for C on Linux, the one public header.
 *
 * Every object is opaque and allocated by the library. Errors follow one
 * convention everywhere: a return value >= 0 is success, a negative value is
 * -errno or one of tide's own codes below -4095 (see tide_strerror()). errno is
 * never used to report an error across this API.
 *
 * Threading: a loop is driven by one thread. Only tide_call_soon_threadsafe()
 * and the executor may be used from other threads.
 *
 * Option structs begin with their own size so that they can grow without
 * breaking the ABI: set .size = sizeof(struct ...) before filling them in.
 */
#ifndef TIDE_H
#define TIDE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the exported API; the library is built with -fvisibility=hidden. */
#define TIDE_EXTERN __attribute__((visibility("default")))

#define TIDE_VERSION_MAJOR 0
#define TIDE_VERSION_MINOR 1
#define TIDE_VERSION_PATCH 0

/* tide's own error codes (asyncio's exception classes), all below -4095. */
enum tide_error {
	TIDE_EINVALID_STATE = -4100, /* asyncio.InvalidStateError */
	TIDE_ECLOSED = -4101,        /* the loop or object is closed */
	TIDE_ESTOPPED = -4102,       /* the loop stopped before the future was done */
	TIDE_ERUNNING = -4103,       /* the loop is already running */
	TIDE_ELIMIT_OVERRUN = -4104, /* asyncio.LimitOverrunError */
	TIDE_EINCOMPLETE_READ = -4105, /* asyncio.IncompleteReadError */
	TIDE_EQUEUE_FULL = -4106,    /* asyncio.QueueFull */
	TIDE_EQUEUE_EMPTY = -4107,   /* asyncio.QueueEmpty */
};

/* A text for any result code: -errno or a tide code. Never NULL. */
TIDE_EXTERN const char *tide_strerror(int err);

/* The library's version as a string, e.g. "0.1.0". */
TIDE_EXTERN const char *tide_version(void);

/*
 * Replaces the allocator used for every allocation the library makes (as
 * libuv's uv_replace_allocator). Call it before creating any object. Returns
 * -EINVAL if a function is NULL, -EBUSY once a loop has been created.
 */
TIDE_EXTERN int tide_replace_allocator(void *(*malloc_fn)(size_t),
				       void *(*realloc_fn)(void *, size_t),
				       void *(*calloc_fn)(size_t, size_t),
				       void (*free_fn)(void *));

struct tide_loop;
struct tide_future;
struct tide_executor;

/* A plain callback: call_soon, call_later, call_at and their kin. */
typedef void (*tide_call_cb)(void *arg);
/* A future's done callback; it runs on the loop thread via call_soon. */
typedef void (*tide_future_cb)(struct tide_future *fut, void *arg);
/*
 * A job for the executor; it runs on a worker thread. A value >= 0 becomes
 * the future's result (tide_future_result() value), a negative one its error.
 */
typedef int64_t (*tide_job_cb)(void *arg);

/* ---------------------------------------------------------------- loop -- */

struct tide_loop_opts {
	size_t size;              /* sizeof(struct tide_loop_opts) */
	const char *backend;      /* "io_uring", "epoll" or NULL: $TIDE_BACKEND, else io_uring then epoll */
	const char *disable_ops;  /* as $TIDE_DISABLE_OPS ("read,write" or "all-optional"); added to it */
	unsigned ring_entries;    /* io_uring SQ entries; 0 means 256 */
	unsigned executor_threads; /* default executor size; 0 means min(32, cores + 4) */
	int debug;                /* 1 on, 0 off, -1 from $TIDE_DEBUG (the default when size is short) */
	double slow_callback_duration; /* seconds; 0 means 0.1 */
};

/*
 * Creates a loop. opts may be NULL. Returns 0, -EINVAL for bad options,
 * -ENOMEM, or the backend's error when one was forced and cannot start
 * (for example io_uring forced where io_uring_setup fails).
 */
TIDE_EXTERN int tide_loop_new(struct tide_loop **out, const struct tide_loop_opts *opts);
/*
 * Closes (if needed) and frees the loop. Returns -EBUSY, and frees nothing,
 * while the loop runs or any future, op or executor job of it is alive.
 */
TIDE_EXTERN int tide_loop_free(struct tide_loop *loop);
/* Runs until tide_loop_stop(). Returns 0, TIDE_ERUNNING or TIDE_ECLOSED. */
TIDE_EXTERN int tide_loop_run(struct tide_loop *loop);
/*
 * Runs until fut is done. Returns 0 if it has a result, its error (or
 * -ECANCELED) otherwise, or TIDE_ESTOPPED if the loop was stopped first.
 */
TIDE_EXTERN int tide_loop_run_until_complete(struct tide_loop *loop, struct tide_future *fut);
/*
 * Runs one iteration: waits at most timeout seconds (0: poll, < 0: until
 * something happens). Returns the number of callbacks run, or an error.
 */
TIDE_EXTERN int tide_loop_run_once(struct tide_loop *loop, double timeout);
/* asyncio's stop(): the current iteration finishes, then run() returns. */
TIDE_EXTERN void tide_loop_stop(struct tide_loop *loop);
TIDE_EXTERN int tide_loop_is_running(const struct tide_loop *loop);
TIDE_EXTERN int tide_loop_is_closed(const struct tide_loop *loop);
/*
 * Drops pending callbacks and timers and refuses new ones (TIDE_ECLOSED).
 * Idempotent. Returns TIDE_ERUNNING while the loop runs.
 */
TIDE_EXTERN int tide_loop_close(struct tide_loop *loop);
/* Monotonic time in seconds (CLOCK_MONOTONIC), as asyncio's loop.time(). */
TIDE_EXTERN double tide_loop_time(const struct tide_loop *loop);
/* The same clock in nanoseconds. */
TIDE_EXTERN uint64_t tide_loop_now_ns(const struct tide_loop *loop);
/* "io_uring" or "epoll". */
TIDE_EXTERN const char *tide_loop_backend(const struct tide_loop *loop);
/* Why that backend was chosen, for example "io_uring_setup: EPERM (...)". */
TIDE_EXTERN const char *tide_loop_backend_reason(const struct tide_loop *loop);
TIDE_EXTERN int tide_loop_get_debug(const struct tide_loop *loop);
TIDE_EXTERN void tide_loop_set_debug(struct tide_loop *loop, int enabled);

/*
 * A handle names one scheduled callback. It is a small value, not an object:
 * it stays safe to cancel after the callback ran (the cancel then does
 * nothing) because it carries the slot's generation. Treat the fields as
 * private.
 */
struct tide_handle {
	void *slot;
	uint64_t gen;
};

/*
 * Schedule cb(arg). out may be NULL. Returns 0, -EINVAL (cb NULL, delay or
 * when not a finite number), TIDE_ECLOSED, -ENOMEM. A negative delay, or a
 * when in the past, runs on the next iteration, as in asyncio.
 */
TIDE_EXTERN int tide_call_soon(struct tide_loop *loop, tide_call_cb cb, void *arg, struct tide_handle *out);
TIDE_EXTERN int tide_call_later(struct tide_loop *loop, double delay, tide_call_cb cb, void *arg, struct tide_handle *out);
TIDE_EXTERN int tide_call_at(struct tide_loop *loop, double when, tide_call_cb cb, void *arg, struct tide_handle *out);
/* From any thread; wakes the loop if it sleeps. No handle (asyncio's is unsafe to cancel across threads). */
TIDE_EXTERN int tide_call_soon_threadsafe(struct tide_loop *loop, tide_call_cb cb, void *arg);
/* Returns 1 if the callback will not run because of this call, 0 if it ran or was cancelled already. */
TIDE_EXTERN int tide_handle_cancel(struct tide_handle *h);
/* When a timer handle fires, in loop time seconds; -1 for other handles. */
TIDE_EXTERN double tide_handle_when(const struct tide_handle *h);

/* What the exception handler is told (asyncio's context dict). */
struct tide_error_context {
	size_t size;                /* sizeof(struct tide_error_context) */
	const char *message;        /* what happened */
	int error;                  /* the error code, 0 if none */
	struct tide_future *future; /* the future concerned, or NULL */
	void *callback;             /* the callback concerned, or NULL */
};
typedef void (*tide_exception_cb)(struct tide_loop *loop, const struct tide_error_context *ctx, void *arg);
/* handler NULL restores the default, which prints to stderr. */
TIDE_EXTERN void tide_loop_set_exception_handler(struct tide_loop *loop, tide_exception_cb handler, void *arg);
TIDE_EXTERN void tide_loop_call_exception_handler(struct tide_loop *loop, const struct tide_error_context *ctx);
/* The default handler, for handlers that want to chain to it. */
TIDE_EXTERN void tide_loop_default_exception_handler(struct tide_loop *loop, const struct tide_error_context *ctx);

/* ------------------------------------------------------------- futures -- */

/* A new pending future with one reference, owned by the caller. */
TIDE_EXTERN int tide_future_new(struct tide_loop *loop, struct tide_future **out);
TIDE_EXTERN struct tide_future *tide_future_ref(struct tide_future *fut);
TIDE_EXTERN void tide_future_unref(struct tide_future *fut);
TIDE_EXTERN struct tide_loop *tide_future_loop(const struct tide_future *fut);
/* Setting the outcome of a done future is a caller bug: it asserts. */
TIDE_EXTERN void tide_future_set_result(struct tide_future *fut, int64_t value, void *ptr);
/* err < 0. -ECANCELED makes the future cancelled. */
TIDE_EXTERN void tide_future_set_error(struct tide_future *fut, int err);
/*
 * Returns 1 if the future is cancelled, or its cancellation was requested
 * from the operation behind it (an op or an executor job that has not
 * started): that future becomes done once the operation answers, with
 * -ECANCELED, or with the result that completed while the cancel was in
 * flight, which is never dropped. Returns 0 if it was done already or the
 * operation can no longer be cancelled (a job already running).
 */
TIDE_EXTERN int tide_future_cancel(struct tide_future *fut);
TIDE_EXTERN int tide_future_done(const struct tide_future *fut);
TIDE_EXTERN int tide_future_cancelled(const struct tide_future *fut);
/*
 * 0 with the result in *value and *ptr (either may be NULL), the error, or
 * -ECANCELED, or TIDE_EINVALID_STATE while pending. Marks the error retrieved.
 */
TIDE_EXTERN int tide_future_result(struct tide_future *fut, int64_t *value, void **ptr);
/* The error (0 for a result), -ECANCELED, or TIDE_EINVALID_STATE. Marks it retrieved. */
TIDE_EXTERN int tide_future_error(struct tide_future *fut);
/* cb runs through call_soon once the future is done (at once if it is). */
TIDE_EXTERN int tide_future_add_done_callback(struct tide_future *fut, tide_future_cb cb, void *arg);
/* Removes every registration of (cb, arg); returns how many. */
TIDE_EXTERN int tide_future_remove_done_callback(struct tide_future *fut, tide_future_cb cb, void *arg);

/* ----------------------------------------------------------------- ops -- */

/*
 * One I/O operation, completed through a new future (one reference for the
 * caller) whose value is the kernel's result: bytes, a poll mask, 0 for an
 * expired timeout; or whose error is -errno. Everything the kernel reads or
 * writes (buf) must stay valid until the future is done, also after
 * tide_future_cancel(), which requests the cancellation (see there).
 * off is a file offset, or -1 for the fd's current position (pipes, sockets).
 */
TIDE_EXTERN int tide_op_read(struct tide_loop *loop, int fd, void *buf, size_t n, int64_t off, struct tide_future **out);
TIDE_EXTERN int tide_op_write(struct tide_loop *loop, int fd, const void *buf, size_t n, int64_t off, struct tide_future **out);
/* events: POLLIN, POLLOUT... The value is the revents mask. */
TIDE_EXTERN int tide_op_poll(struct tide_loop *loop, int fd, unsigned events, struct tide_future **out);
/* Completes with 0 after seconds (>= 0). */
TIDE_EXTERN int tide_op_timeout(struct tide_loop *loop, double seconds, struct tide_future **out);

/* What tide_loop_stats counts ops by. */
enum tide_op_kind {
	TIDE_OP_READ,
	TIDE_OP_WRITE,
	TIDE_OP_POLL,
	TIDE_OP_TIMEOUT,
	TIDE_OP_CANCEL,
	TIDE_OP_KIND_MAX = 32 /* room for later kinds without an ABI break */
};
enum tide_op_path {
	TIDE_PATH_URING,     /* one io_uring SQE does the op */
	TIDE_PATH_READINESS, /* wait for readiness (POLL_ADD or epoll), then perform */
	TIDE_PATH_EXECUTOR,  /* a worker thread performs it (regular files on epoll) */
	TIDE_PATH_LOOP,      /* the loop itself (timeouts on the timer heap) */
	TIDE_PATH_MAX = 4
};

struct tide_loop_stats {
	size_t size;              /* sizeof(struct tide_loop_stats) */
	uint64_t iterations;      /* loop iterations run */
	uint64_t callbacks;       /* callbacks run (call_soon, timers, done callbacks) */
	uint64_t timers_fired;
	uint64_t threadsafe_calls; /* callbacks that came through call_soon_threadsafe */
	uint64_t backend_waits;    /* calls into the kernel to wait or reap */
	uint64_t sq_full_waits;    /* submissions that found the SQ full and flushed it */
	uint64_t cq_overflows;     /* times the kernel reported CQ overflow (nothing is lost) */
	uint64_t ops_submitted[TIDE_OP_KIND_MAX][TIDE_PATH_MAX];
	uint64_t ops_completed[TIDE_OP_KIND_MAX][TIDE_PATH_MAX];
};
/* Fills stats up to min(stats->size, sizeof) bytes. */
TIDE_EXTERN int tide_loop_stats(const struct tide_loop *loop, struct tide_loop_stats *stats);
/* Whether the io_uring backend of this loop does kind natively (probe and mask): 1 or 0. */
TIDE_EXTERN int tide_loop_op_native(const struct tide_loop *loop, enum tide_op_kind kind);

/* ------------------------------------------------------------ executor -- */

struct tide_executor_opts {
	size_t size;      /* sizeof(struct tide_executor_opts) */
	unsigned threads; /* maximum worker threads; 0 means min(32, cores + 4) */
};
TIDE_EXTERN int tide_executor_new(struct tide_executor **out, const struct tide_executor_opts *opts);
/* Waits for queued and running jobs, joins the workers, frees. */
TIDE_EXTERN int tide_executor_free(struct tide_executor *ex);
/*
 * Runs fn(arg) on ex (NULL: the loop's default executor, made on first use)
 * and completes *out on the loop thread. A job cancelled before it starts
 * never runs.
 */
TIDE_EXTERN int tide_run_in_executor(struct tide_loop *loop, struct tide_executor *ex, tide_job_cb fn, void *arg, struct tide_future **out);
/* The loop does not own ex: the caller frees it after the loop stops using it. */
TIDE_EXTERN int tide_loop_set_default_executor(struct tide_loop *loop, struct tide_executor *ex);
/*
 * Waits for the default executor's queued and running jobs, then frees it.
 * Their futures complete on the loop's next iteration.
 */
TIDE_EXTERN int tide_loop_shutdown_default_executor(struct tide_loop *loop);

#ifdef __cplusplus
}
#endif
#endif /* TIDE_H */
