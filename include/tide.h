/* SPDX-License-Identifier: MIT */
/*
 * tide.h: asyncio for C on Linux, the one public header.
 *
 * Every object is opaque and allocated by the library. Errors follow one
 * convention everywhere: a return value >= 0 is success, a negative value is
 * -errno or one of tide's own codes below -4095 (see tide_strerror()). errno is
 * never used to report an error across this API.
 *
 * Threading: a loop is driven by one thread at a time. While it runs, only
 * tide_call_soon_threadsafe(), tide_run_coroutine_threadsafe() (and its
 * handle's tide_cfuture_* calls) and the executor may be used from other
 * threads. The thread may change between runs (asyncio's rule): a loop run
 * by one thread can be run by another later, fully, and freed by any; a
 * run, shutdown, close or free from a second thread while one runs the
 * loop is refused at once (TIDE_ERUNNING, -EBUSY from free).
 *
 * Processes: a child of fork(2) shares its parent's loops' kernel objects
 * (epoll set, io_uring rings, eventfd, sockets), so it cannot run them:
 * see tide_loop_free() and TIDE_EFORKED. It makes loops of its own.
 *
 * Option structs begin with their own size so that they can grow without
 * breaking the ABI: set .size = sizeof(struct ...) before filling them in.
 * In every one, a zero field means its default (asyncio's), so a struct
 * zeroed except .size is the same as NULL opts, and the fields past a
 * short .size (a program built against an older, shorter struct) take
 * their defaults too. The same holds for the callbacks of a protocol table
 * and the fields of an error context.
 */
#ifndef TIDE_H
#define TIDE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

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
	TIDE_ERUNNING = -4103,       /* the loop is already running (on this thread or another) */
	TIDE_ELIMIT_OVERRUN = -4104, /* asyncio.LimitOverrunError */
	TIDE_EINCOMPLETE_READ = -4105, /* asyncio.IncompleteReadError */
	TIDE_EQUEUE_FULL = -4106,    /* asyncio.QueueFull */
	TIDE_EQUEUE_EMPTY = -4107,   /* asyncio.QueueEmpty */
	TIDE_ENOT_IN_TASK = -4108,   /* an await outside a task */
	TIDE_EBROKEN_BARRIER = -4109, /* asyncio.BrokenBarrierError */
	TIDE_EFORKED = -4110,        /* the loop belongs to the process this one was forked from */
	TIDE_ETLS = -4111,           /* a TLS failure OpenSSL gave no reason for (asyncio's ssl.SSLError) */
	TIDE_ESSL_CLOSED = -4112,    /* the TLS layer under the transport is gone (start_tls's old transport) */
	/*
	 * A peer certificate that failed verification (asyncio's
	 * ssl.SSLCertVerificationError): TIDE_ETLS_VERIFY_BASE - X509_V_ERR_*
	 * (TIDE_ETLS_VERIFY(X509_V_ERR_HOSTNAME_MISMATCH) for a wrong host,
	 * ..._CERT_HAS_EXPIRED, ..._DEPTH_ZERO_SELF_SIGNED_CERT). tide_strerror()
	 * gives X509_verify_cert_error_string(). (Below getaddrinfo's range,
	 * whose GNU codes reach TIDE_EAI_BASE - 105.)
	 */
	TIDE_ETLS_VERIFY_BASE = -4500,
	/*
	 * Any other TLS failure with OpenSSL's reason for it (ssl.SSLError):
	 * TIDE_ETLS_BASE - the reason code of an SSL-library error, e.g.
	 * TIDE_ETLS_REASON(SSL_R_UNEXPECTED_EOF_WHILE_READING) for a peer that
	 * closed without close_notify, TIDE_ETLS_REASON(SSL_R_WRONG_VERSION_NUMBER)
	 * for garbage instead of a ClientHello; alerts received are
	 * SSL_AD_REASON_OFFSET + the alert. tide_strerror() gives OpenSSL's text.
	 */
	TIDE_ETLS_BASE = -5000,
	/*
	 * getaddrinfo's EAI_* codes (negative in glibc) map to
	 * TIDE_EAI_BASE + EAI_*, e.g. TIDE_EAI_BASE + EAI_NONAME; EAI_SYSTEM
	 * becomes the -errno behind it. tide_strerror() gives gai_strerror().
	 */
	TIDE_EAI_BASE = -4300,
};
#define TIDE_ETLS_VERIFY(x509_v_err) (TIDE_ETLS_VERIFY_BASE - (x509_v_err))
#define TIDE_ETLS_REASON(ssl_r) (TIDE_ETLS_BASE - (ssl_r))

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
/*
 * Frees memory the library allocated and handed over (a future's ptr taken
 * with tide_future_take_ptr where its producer says so), with the allocator
 * it came from. NULL does nothing.
 */
TIDE_EXTERN void tide_free(void *p);

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
	int debug;                /* 0 means $TIDE_DEBUG decides (off when unset); > 0 on; < 0 off */
	double slow_callback_duration; /* seconds; 0 means 0.1 */
	size_t task_stack_size;   /* default task stack; 0 means 64 KiB, at least 16 KiB */
	/*
	 * The provided-buffer ring that multishot receives draw from (io_uring
	 * only; one per loop, shared by every connection, so an idle connection
	 * holds no receive buffer). 0 means 1024 buffers of 4 KiB; the count
	 * is rounded up to a power of two (at most 32768).
	 */
	unsigned recv_buf_count;
	size_t recv_buf_size;
	/*
	 * The PROT_NONE guard below each task stack; 0 means 64 KiB (rounded
	 * up to pages; at most 1 GiB). It costs address space, not memory. A
	 * task's code must keep every frame smaller than the guard (a bigger
	 * local array steps over it onto whatever lies below, silently),
	 * or be built with -fstack-clash-protection, which probes each page
	 * of a big frame (tide itself is, where the compiler has it); past
	 * the guard a task dies with "overflowed its stack". Deep recursion
	 * wants tide_task_opts.stack_size instead.
	 */
	size_t stack_guard_size;
};

/*
 * Creates a loop into *out. opts may be NULL. Returns 0, -EINVAL for bad options
 * (or a bad TIDE_BACKEND or TIDE_DISABLE_OPS), -ENOMEM, or the backend's
 * error when one was forced and cannot start (for example io_uring forced
 * where io_uring_setup fails: -EPERM under a seccomp filter or the sysctl
 * kernel.io_uring_disabled). tide_loop_new_error() then says why.
 */
TIDE_EXTERN int tide_loop_new(const struct tide_loop_opts *opts, struct tide_loop **out);
/*
 * Why the last tide_loop_new of the calling thread failed, in one line
 * that names the setting and its value, or the cause (for a forced io_uring:
 * the seccomp filter, the sysctl, the locked-memory limit); "" after a
 * success. Never NULL; valid until this thread's next tide_loop_new.
 */
TIDE_EXTERN const char *tide_loop_new_error(void);
/*
 * Closes (if needed) and frees the loop: 0, or -EBUSY, freeing nothing,
 * while any of these holds:
 *  - the loop is running (a callback or task of it called this);
 *  - a future of the loop is alive: one the caller still holds a reference
 *    on (a task's included), a task that has not finished, or one a
 *    pending callback holds;
 *  - an op is in flight (tide_op_*, tide_read... and their socket kin);
 *  - an executor job of the loop has not landed: queued, running, or
 *    finished with its completion not yet delivered to the loop;
 *  - a transport or server is not yet gone: open, or closing but its
 *    last completions and connection_lost (a server's end) have not run;
 *  - a receive ring buffer is out of the ring: kept by the view of a
 *    tide_stream_peek not consumed yet, or by a send from the receive
 *    buffer still in flight.
 * A closed loop does the last work it can first: it delivers the jobs
 * that finished, cancels and reaps the ops whose futures only the op
 * still holds, and lets closing transports and servers finish. A
 * transport reference kept past connection_lost does not count.
 * tide_loop_shutdown() first winds down what the loop itself still runs.
 * Signal handlers left are removed (the program's dispositions come back).
 *
 * After fork(2), in the child, a loop the parent made is the parent's: its
 * epoll set, io_uring rings, eventfd and sockets are shared with the
 * parent, and an iteration in the child would take the parent's
 * completions. So the child is refused it, with TIDE_EFORKED, by the run
 * functions (tide_loop_run returns it too when the fork was made from one
 * of its callbacks, once that iteration's callbacks ran), tide_loop_shutdown,
 * the ops, tide_call_soon_threadsafe, tide_run_in_executor, the server,
 * connection and resolver calls, and the writes of its transports. The
 * child makes a loop of its own. The one thing it may do with the parent's
 * loop is free it, when no callback of it runs: tide_loop_free then
 * always succeeds and releases the child's copy only (its memory, and the
 * child's copies of the loop's own descriptors), never touching what it
 * shares with the parent (no cancel, no epoll_ctl, no io_uring
 * submission). What the child still holds of that loop (futures, tasks,
 * transports, servers, streams, ops in flight) is a copy of the parent's
 * and must not be used; its memory goes with the child's exit or exec,
 * and the sockets of its transports stay open in the child until then.
 * An executor the parent made has no workers in the child. A child of
 * _Fork() (which runs no atfork handler) is recognised by tide_loop_free
 * alone; do not run the parent's loops there either.
 */
TIDE_EXTERN int tide_loop_free(struct tide_loop *loop);
/*
 * Winds a loop down from plain code before tide_loop_free, as the end of
 * asyncio.run() does: cancels every task still alive (and any task they
 * spawn meanwhile), then runs the loop until those tasks have finished, every transport and server being closed
 * or freed has gone (its connection_lost and done callbacks ran), executor
 * jobs have landed and no callback is pending. Open transports and servers
 * are the caller's: close them first (tide_transport_close,
 * tide_server_close and tide_server_free). Call it from outside the loop.
 *
 * Returns 0, after which tide_loop_free succeeds unless the caller still
 * holds a future, an op or an open transport or server; -ETIMEDOUT after
 * timeout seconds (< 0 or infinite: no limit; 0: what one poll of the
 * loop finishes); TIDE_ERUNNING inside the loop;
 * TIDE_ECLOSED once closed; -EINVAL for a NaN timeout.
 */
TIDE_EXTERN int tide_loop_shutdown(struct tide_loop *loop, double timeout);
/*
 * Runs until tide_loop_stop(). Returns 0, TIDE_ERUNNING (the loop runs
 * already, on this thread or another), TIDE_ECLOSED or TIDE_EFORKED.
 */
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
 * when in the past, runs on the next iteration, as in asyncio, and such
 * timers run in the order of their deadlines (call_later(-1) after
 * call_later(-2)). Ready callbacks run in one FIFO with
 * tide_call_soon_threadsafe's: a call_soon runs after every threadsafe
 * call queued before it.
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
/*
 * Set the outcome: 0; TIDE_EINVALID_STATE for a done future (asyncio's
 * InvalidStateError), -EPERM for a task (its outcome is its body's:
 * asyncio's RuntimeError), -EINVAL for a NULL fut or an err >= 0. On an
 * error nothing changed.
 */
TIDE_EXTERN int tide_future_set_result(struct tide_future *fut, int64_t value, void *ptr);
/* err < 0. -ECANCELED makes the future cancelled. */
TIDE_EXTERN int tide_future_set_error(struct tide_future *fut, int err);
/*
 * Returns 1 if the future is cancelled, or its cancellation was requested
 * from the operation behind it (an op or an executor job that has not
 * started): that future becomes done once the operation answers, with
 * -ECANCELED, or with the result that completed while the cancel was in
 * flight, which is never dropped. An executor job already running is
 * cancelled at once and left to finish (tide_run_in_executor). Returns 0
 * if it was done already or the operation can no longer be cancelled (a
 * running job of TIDE_JOB_CANCEL_QUEUED_ONLY). On a done
 * future it also marks its error as retrieved, as asyncio's cancel()
 * stops the "never retrieved" report.
 */
TIDE_EXTERN int tide_future_cancel(struct tide_future *fut);
/*
 * asyncio's cancel(msg): cancels as tide_future_cancel, the cancellation
 * carrying msg (copied; NULL: none), which tide_future_cancel_message
 * then gives: asyncio's CancelledError(msg). On a task the message goes
 * to the future the task waits on too, and the body can read it while it
 * handles -ECANCELED (tide_future_cancel_message(tide_current_task())).
 * Returns as tide_future_cancel, or -ENOMEM (nothing cancelled). On a
 * done future the message is left as it was.
 */
TIDE_EXTERN int tide_future_cancel_msg(struct tide_future *fut, const char *msg);
/* The message of the last tide_future_cancel_msg on fut, or NULL; valid
 * while fut is (until its last reference goes) and no other cancel_msg
 * replaces it. */
TIDE_EXTERN const char *tide_future_cancel_message(const struct tide_future *fut);
TIDE_EXTERN int tide_future_done(const struct tide_future *fut);
TIDE_EXTERN int tide_future_cancelled(const struct tide_future *fut);
/*
 * 0 with the result in *value and *ptr (either may be NULL), the error, or
 * -ECANCELED, or TIDE_EINVALID_STATE while pending. Marks the error retrieved.
 *
 * A ptr the library put there (a resolver's list, a transport, a server)
 * is the future's: it stays valid while the future does, and goes with
 * the future's last reference (freed, closed or unreferenced, as each
 * producer says) unless a caller took it with tide_future_take_ptr.
 */
TIDE_EXTERN int tide_future_result(struct tide_future *fut, int64_t *value, void **ptr);
/*
 * Takes the result's ptr out of a done future: returns it and clears it,
 * so the future no longer frees it and tide_future_result then gives NULL.
 * What the caller must do with it is its producer's to say (tide_free,
 * freeaddrinfo, tide_transport_unref, tide_server_free...); a ptr set with
 * tide_future_set_result is only handed back. NULL for a pending, failed
 * or cancelled future, and once taken. A tide_shield future's ptr is taken
 * from the shielded future, which owns it.
 */
TIDE_EXTERN void *tide_future_take_ptr(struct tide_future *fut);
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
	TIDE_OP_ACCEPT,
	TIDE_OP_CONNECT,
	TIDE_OP_RECV,
	TIDE_OP_SEND,
	TIDE_OP_SENDMSG,
	TIDE_OP_RECVMSG,
	TIDE_OP_SHUTDOWN,
	TIDE_OP_CLOSE,
	TIDE_OP_SEND_ZC,         /* zero-copy send (transports, above a size threshold) */
	TIDE_OP_RECV_MULTISHOT,  /* multishot recv from the loop's provided-buffer ring */
	TIDE_OP_ACCEPT_MULTISHOT,
	TIDE_OP_WAITID,          /* a child's exit (IORING_OP_WAITID; else its pidfd's readiness) */
	TIDE_OP_READ_MULTISHOT,  /* multishot read of a pipe from the provided-buffer ring */
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
	/* Transport writes of the bytes data_received was reading, sent
	 * straight from the io_uring receive buffer instead of a copy. */
	uint64_t sends_from_ring;
	/* Zero-copy sends whose notification said the kernel copied the
	 * bytes anyway (loopback): that connection sends by copy from then on. */
	uint64_t sends_zc_copied;
	/* Zero-copy sends refused for want of lockable memory (ENOMEM under
	 * RLIMIT_MEMLOCK), sent again by copy; the loop then sends by copy
	 * until half its pinned pages come back, or for a while. */
	uint64_t sends_zc_nomem;
	/* io_uring_enter calls failed on purpose (EINTR, EAGAIN or EBUSY)
	 * because TIDE_FAULT_ENTER asked for it: a testing aid, 0 otherwise. */
	uint64_t enter_faults;
	/* Children of tide_create_subprocess_* reaped, by the path that saw
	 * them exit: an IORING_OP_WAITID completion, their pidfd's readiness
	 * then waitid(P_PIDFD, WNOHANG), or SIGCHLD then waitpid(pid, WNOHANG)
	 * (no pidfd: kernels before 5.3, or a seccomp filter). */
	uint64_t children_reaped_waitid;
	uint64_t children_reaped_pidfd;
	uint64_t children_reaped_sigchld;
	/* Transport writes sent with send(2) at once, no op, on the readiness
	 * paths (epoll, or io_uring without a native SEND): with
	 * ops_completed[TIDE_OP_SEND], every send a loop's transports made. */
	uint64_t sends_direct;
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
TIDE_EXTERN int tide_executor_new(const struct tide_executor_opts *opts, struct tide_executor **out);
/* Waits for queued and running jobs, joins the workers, frees. */
TIDE_EXTERN int tide_executor_free(struct tide_executor *ex);
/*
 * Runs fn(arg) on ex (NULL: the loop's default executor, made on first use)
 * and completes *out on the loop thread. A job cancelled before it starts
 * never runs. Cancelling *out once the job runs is asyncio's: the future
 * is cancelled at once and the worker finishes the job, whose result is
 * dropped; arg must stay valid until then. The job counts as the loop's
 * until it returns (tide_loop_free says -EBUSY, tide_loop_shutdown waits).
 */
TIDE_EXTERN int tide_run_in_executor(struct tide_loop *loop, struct tide_executor *ex, tide_job_cb fn, void *arg, struct tide_future **out);
/* struct tide_job_opts.flags */
enum {
	/*
	 * concurrent.futures's cancel: once the job runs, tide_future_cancel
	 * refuses (returns 0) and the future completes with the job's
	 * outcome, so whoever awaits it knows the job is over (a task whose
	 * job writes into its stack).
	 */
	TIDE_JOB_CANCEL_QUEUED_ONLY = 1u << 0,
};
struct tide_job_opts {
	size_t size;      /* sizeof(struct tide_job_opts) */
	unsigned flags;   /* TIDE_JOB_*; an unknown bit is -EINVAL */
};
/* tide_run_in_executor with options (NULL: the same as it). */
TIDE_EXTERN int tide_run_in_executor_ex(struct tide_loop *loop, struct tide_executor *ex, tide_job_cb fn, void *arg,
					const struct tide_job_opts *opts, struct tide_future **out);
/* The loop does not own ex: the caller frees it after the loop stops using it. */
TIDE_EXTERN int tide_loop_set_default_executor(struct tide_loop *loop, struct tide_executor *ex);
/*
 * Waits for the default executor's queued and running jobs, then frees it.
 * Their futures complete on the loop's next iteration.
 */
TIDE_EXTERN int tide_loop_shutdown_default_executor(struct tide_loop *loop);


/* --------------------------------------------------------------- tasks -- */

/*
 * A task runs fn(arg) as a stackful coroutine on its loop. A task IS a
 * future: every tide_future_* call works on it, its value is what fn
 * returned (>= 0; a negative return is its error, -ECANCELED makes it
 * cancelled), and tide_loop_run_until_complete() drives it from plain code.
 */
typedef int64_t (*tide_task_cb)(void *arg);

struct tide_task_opts {
	size_t size;        /* sizeof(struct tide_task_opts) */
	const char *name;   /* copied; NULL gives "Task-N" */
	size_t stack_size;  /* 0: the loop's default (64 KiB); at least 16 KiB */
};

/* Schedules the task (it starts on a later iteration); *out holds one reference. */
TIDE_EXTERN int tide_task_spawn(struct tide_loop *loop, tide_task_cb fn, void *arg,
				const struct tide_task_opts *opts, struct tide_future **out);
/* Whether fut is a task. */
TIDE_EXTERN int tide_future_is_task(const struct tide_future *fut);

/*
 * Inside a task: suspends until fut is done and returns its value, its
 * error, or -ECANCELED once the task is cancelled. Data an op delivered
 * while the cancellation was in flight is returned, not lost; the
 * cancellation then comes at the next await. Outside a task:
 * TIDE_ENOT_IN_TASK. Awaiting the current task itself: -EDEADLK.
 */
TIDE_EXTERN int64_t tide_await(struct tide_future *fut);
/* asyncio.sleep: 0 after seconds (<= 0 just yields), or -ECANCELED. */
TIDE_EXTERN int tide_sleep(double seconds);
/* Lets every other ready callback run once; 0 or -ECANCELED. */
TIDE_EXTERN int tide_yield(void);
/* The running task, or NULL outside a task. No reference is taken. */
TIDE_EXTERN struct tide_future *tide_current_task(void);

/*
 * asyncio's Task.cancel(): returns 0 if the task is done already, else 1;
 * the task's current or next await returns -ECANCELED. Each call counts a
 * request (tide_task_cancelling), which tide_task_uncancel takes back.
 */
TIDE_EXTERN int tide_task_cancel(struct tide_future *task);
TIDE_EXTERN int tide_task_cancelling(const struct tide_future *task);
TIDE_EXTERN int tide_task_uncancel(struct tide_future *task);
/* The task's name ("Task-N" unless set); valid until renamed or freed. */
TIDE_EXTERN const char *tide_task_name(struct tide_future *task);
TIDE_EXTERN int tide_task_set_name(struct tide_future *task, const char *name);
/*
 * The loop's tasks that are not done, up to cap of them into out (no
 * references taken); returns how many there are in all.
 */
TIDE_EXTERN size_t tide_all_tasks(struct tide_loop *loop, struct tide_future **out, size_t cap);

/*
 * asyncio.run_coroutine_threadsafe: from any thread, starts fn(arg) as a
 * task of loop (running on another thread, or not yet) and gives a handle
 * that any thread can wait on, concurrent.futures.Future's role. The
 * start goes through the loop's threadsafe door: the task is spawned on
 * the loop's thread (opts as tide_task_spawn's, copied now). Returns 0
 * with *out, -EINVAL (NULL loop, fn or out; a bad opts size or
 * stack_size), -ENOMEM, TIDE_ECLOSED (a closed loop) or TIDE_EFORKED.
 * The loop must exist for the call, as for tide_call_soon_threadsafe.
 *
 * The handle completes with the task's outcome; with TIDE_ECLOSED if the
 * loop is closed or freed before the task could start; with the spawn's
 * error (-ENOMEM), also reported to the loop's exception handler, if the
 * task could not be made. Once started, the task is the loop's as any
 * other: tide_loop_shutdown cancels it (-ECANCELED); a loop closed
 * without that strands it, and so its handle.
 */
struct tide_cfuture;
TIDE_EXTERN int tide_run_coroutine_threadsafe(struct tide_loop *loop, tide_task_cb fn, void *arg,
					      const struct tide_task_opts *opts, struct tide_cfuture **out);
/*
 * Waits at most timeout seconds (TIDE_TIMEOUT_NONE: no limit; <= 0: only
 * looks) for the handle: 0 with the task's value in *value (may be NULL),
 * the task's error, -ECANCELED, or -ETIMEDOUT while it is not done (the
 * task's own -ETIMEDOUT is told apart by tide_cfuture_done). -EINVAL for
 * a NULL cf or a NaN timeout; -EDEADLK when called, with a timeout, from
 * a callback or task of the loop that runs the task, which would never
 * finish meanwhile. From any thread, several at once.
 */
TIDE_EXTERN int tide_cfuture_wait(struct tide_cfuture *cf, double timeout, int64_t *value);
/*
 * From any thread: completes the handle with -ECANCELED at once and
 * cancels the task on its loop (tide_task_cancel there; a task not yet
 * started never runs its body). 1, or 0 if the handle was done already;
 * -EINVAL for NULL.
 */
TIDE_EXTERN int tide_cfuture_cancel(struct tide_cfuture *cf);
/* 1 once the handle is done (cancelled included), else 0. */
TIDE_EXTERN int tide_cfuture_done(struct tide_cfuture *cf);
/*
 * From any thread, once no thread waits on it: lets the handle go. A task
 * still running goes on, its result dropped; the memory goes with
 * whichever of the two sides is last. NULL does nothing.
 */
TIDE_EXTERN void tide_cfuture_free(struct tide_cfuture *cf);

/* Awaitable ops, for tasks: the tide_op_* call, awaited. Bytes (or the
 * poll mask, or 0) or -errno; -ECANCELED when the task is cancelled. */
TIDE_EXTERN ssize_t tide_read(int fd, void *buf, size_t n, int64_t off);
TIDE_EXTERN ssize_t tide_write(int fd, const void *buf, size_t n, int64_t off);
TIDE_EXTERN int tide_poll(int fd, unsigned events);

/* ---------------------------------------------------------- combinators -- */

/*
 * asyncio.gather: *out completes when every future is done. Without
 * return_exceptions the first error fails *out at once (the others go on).
 * Cancelling *out cancels every child. Results stay in the children.
 * tide has one cancelled state: a child whose error is -ECANCELED (a task
 * whose body returned it, a future set_error(-ECANCELED)) is cancelled,
 * and a gather that takes it without return_exceptions is cancelled too,
 * where asyncio tells a future cancelled from one failed with a
 * CancelledError it was given. A C error code has no type to tell them
 * by; a child that must fail without reading as cancelled returns
 * another code.
 */
TIDE_EXTERN int tide_gather(struct tide_loop *loop, struct tide_future *const *futs, size_t n,
			    int return_exceptions, struct tide_future **out);

enum tide_return_when { TIDE_ALL_COMPLETED, TIDE_FIRST_COMPLETED, TIDE_FIRST_EXCEPTION };
/*
 * asyncio's timeout=None: no timeout, for tide_wait, tide_wait_for,
 * tide_as_completed_new, tide_timeout_enter and tide_timeout_reschedule.
 * As in asyncio, a timeout of 0 or below (or a deadline already past) is
 * one that has expired, never "none".
 */
#define TIDE_TIMEOUT_NONE (__builtin_inf())
/*
 * asyncio.wait, inside a task: returns how many of futs are done when
 * `when` is met or timeout seconds passed (TIDE_TIMEOUT_NONE: none), or
 * -ECANCELED. Nothing is cancelled on timeout.
 */
TIDE_EXTERN int tide_wait(struct tide_future *const *futs, size_t n, enum tide_return_when when, double timeout);
/*
 * asyncio.wait_for, inside a task: fut's outcome; on timeout fut is
 * cancelled, waited for, and -ETIMEDOUT returned (its result, should it win
 * the race, is returned instead). A timeout <= 0 cancels a fut that is not
 * done at once, before it runs again (a task not started never runs its
 * body), as asyncio.
 */
TIDE_EXTERN int64_t tide_wait_for(struct tide_future *fut, double timeout);
/* asyncio.shield: *out mirrors fut; cancelling *out leaves fut running. */
TIDE_EXTERN int tide_shield(struct tide_future *fut, struct tide_future **out);

/* asyncio.as_completed, inside a task: each call returns the next done future
 * (a future listed twice comes out once: asyncio takes the set of them). */
struct tide_as_completed;
TIDE_EXTERN int tide_as_completed_new(struct tide_future *const *futs, size_t n, double timeout,
				      struct tide_as_completed **out);
/* 0 with *next (no new reference), -ETIMEDOUT, -ECANCELED, or -ENOENT when all were returned. */
TIDE_EXTERN int tide_as_completed_next(struct tide_as_completed *it, struct tide_future **next);
TIDE_EXTERN void tide_as_completed_free(struct tide_as_completed *it);

/*
 * asyncio.timeout, inside a task: awaits after tide_timeout_enter return
 * -ECANCELED once the deadline passed; tide_timeout_exit then returns
 * -ETIMEDOUT (0 if it did not expire). reschedule moves the deadline
 * (loop time; TIDE_TIMEOUT_NONE: never). A deadline already past (a delay
 * <= 0) expires before anything else the loop runs next, as asyncio's
 * call_soon of it: around tide_sleep(0) or tide_yield() too.
 */
struct tide_timeout;
TIDE_EXTERN int tide_timeout_enter(double delay, struct tide_timeout **out);
TIDE_EXTERN int tide_timeout_reschedule(struct tide_timeout *t, double when);
/* asyncio's Timeout.when(): the deadline in loop time into *when
 * (TIDE_TIMEOUT_NONE for none). 0, or -EINVAL. */
TIDE_EXTERN int tide_timeout_when(const struct tide_timeout *t, double *when);
TIDE_EXTERN int tide_timeout_expired(const struct tide_timeout *t);
TIDE_EXTERN int tide_timeout_exit(struct tide_timeout *t);

/*
 * asyncio.TaskGroup: spawn children; wait (inside a task) waits for all.
 * The first child to fail cancels the others; wait returns that error (0
 * if none), or the body's own (tide_taskgroup_abort). free after wait.
 */
struct tide_taskgroup;
TIDE_EXTERN int tide_taskgroup_new(struct tide_loop *loop, struct tide_taskgroup **out);
TIDE_EXTERN int tide_taskgroup_spawn(struct tide_taskgroup *tg, tide_task_cb fn, void *arg,
				     const struct tide_task_opts *opts, struct tide_future **out);
TIDE_EXTERN int tide_taskgroup_wait(struct tide_taskgroup *tg);
/*
 * The group's body failed with err (< 0), as an exception raised inside
 * asyncio's `async with TaskGroup()` body: the children are cancelled,
 * and tide_taskgroup_wait returns err, kept apart from the children's
 * errors. 0; -EINVAL (err >= 0, a freed tg); TIDE_EINVALID_STATE once
 * wait began. A second abort keeps the first err.
 */
TIDE_EXTERN int tide_taskgroup_abort(struct tide_taskgroup *tg, int err);
/*
 * asyncio's ExceptionGroup: the errors of every child that failed (not
 * those cancelled), in the order they ended, up to cap of them into errs;
 * returns how many there are (so cap 0 asks the count). The body's error
 * is not among them. -EINVAL for a NULL tg (or errs with cap > 0);
 * -ENOMEM when one could not be kept for want of memory.
 */
TIDE_EXTERN ssize_t tide_taskgroup_errors(const struct tide_taskgroup *tg, int *errs, size_t cap);
TIDE_EXTERN void tide_taskgroup_free(struct tide_taskgroup *tg);

/* ----------------------------------------------------- synchronisation -- */

/*
 * asyncio's primitives, for tasks on one loop. Waiters wake in FIFO order,
 * and a waiter cancelled after it was chosen passes the wake-up on. Calls
 * that wait return 0 or -ECANCELED (wait_for variants: -ETIMEDOUT too).
 */
struct tide_lock;
TIDE_EXTERN int tide_lock_new(struct tide_loop *loop, struct tide_lock **out);
TIDE_EXTERN void tide_lock_free(struct tide_lock *l);
TIDE_EXTERN int tide_lock_acquire(struct tide_lock *l);
/* Releasing an unlocked lock: -EPERM (asyncio's RuntimeError). */
TIDE_EXTERN int tide_lock_release(struct tide_lock *l);
/*
 * 1 while the lock is held. A release with tasks waiting hands the lock
 * to the first of them at once, so it reads 1 from that release on,
 * while the woken task has yet to run (asyncio's release() unlocks and
 * the woken waiter locks again when it runs: locked() is False in
 * between). Either way a task that arrives meanwhile queues behind it.
 */
TIDE_EXTERN int tide_lock_locked(const struct tide_lock *l);

struct tide_event;
TIDE_EXTERN int tide_event_new(struct tide_loop *loop, struct tide_event **out);
TIDE_EXTERN void tide_event_free(struct tide_event *e);
TIDE_EXTERN int tide_event_wait(struct tide_event *e);
TIDE_EXTERN void tide_event_set(struct tide_event *e);
TIDE_EXTERN void tide_event_clear(struct tide_event *e);
TIDE_EXTERN int tide_event_is_set(const struct tide_event *e);

/* A condition over a lock (lock NULL: its own). */
struct tide_condition;
TIDE_EXTERN int tide_condition_new(struct tide_loop *loop, struct tide_lock *lock, struct tide_condition **out);
TIDE_EXTERN void tide_condition_free(struct tide_condition *c);
TIDE_EXTERN struct tide_lock *tide_condition_lock(struct tide_condition *c);
/* With the lock held: releases it, waits for a notify, re-acquires it (also when cancelled). */
TIDE_EXTERN int tide_condition_wait(struct tide_condition *c);
/* With the lock held (-EPERM otherwise): wakes up to n waiters. */
TIDE_EXTERN int tide_condition_notify(struct tide_condition *c, unsigned n);
TIDE_EXTERN int tide_condition_notify_all(struct tide_condition *c);

/* bounded: releasing past the initial value is -EOVERFLOW (asyncio's ValueError). */
struct tide_semaphore;
TIDE_EXTERN int tide_semaphore_new(struct tide_loop *loop, unsigned value, int bounded, struct tide_semaphore **out);
TIDE_EXTERN void tide_semaphore_free(struct tide_semaphore *s);
TIDE_EXTERN int tide_semaphore_acquire(struct tide_semaphore *s);
TIDE_EXTERN int tide_semaphore_release(struct tide_semaphore *s);
TIDE_EXTERN int tide_semaphore_locked(const struct tide_semaphore *s);
TIDE_EXTERN unsigned tide_semaphore_value(const struct tide_semaphore *s);

enum tide_queue_kind { TIDE_QUEUE_FIFO, TIDE_QUEUE_LIFO, TIDE_QUEUE_PRIORITY };
/* Items are pointers; a priority queue orders by the int64 priority, lowest first, FIFO among equals. */
struct tide_queue;
TIDE_EXTERN int tide_queue_new(struct tide_loop *loop, enum tide_queue_kind kind, size_t maxsize,
			       struct tide_queue **out);
TIDE_EXTERN void tide_queue_free(struct tide_queue *q);
TIDE_EXTERN int tide_queue_put(struct tide_queue *q, void *item, int64_t priority);
TIDE_EXTERN int tide_queue_get(struct tide_queue *q, void **item);
/* TIDE_EQUEUE_FULL / TIDE_EQUEUE_EMPTY instead of waiting. */
TIDE_EXTERN int tide_queue_put_nowait(struct tide_queue *q, void *item, int64_t priority);
TIDE_EXTERN int tide_queue_get_nowait(struct tide_queue *q, void **item);
TIDE_EXTERN size_t tide_queue_size(const struct tide_queue *q);
/* Called more times than items were put: -EOVERFLOW. */
TIDE_EXTERN int tide_queue_task_done(struct tide_queue *q);
/* Waits until every item put was marked done. */
TIDE_EXTERN int tide_queue_join(struct tide_queue *q);

/* asyncio.Barrier: wait returns this party's arrival index (0..parties-1), or TIDE_EBROKEN_BARRIER. */
struct tide_barrier;
TIDE_EXTERN int tide_barrier_new(struct tide_loop *loop, unsigned parties, struct tide_barrier **out);
TIDE_EXTERN void tide_barrier_free(struct tide_barrier *b);
TIDE_EXTERN int tide_barrier_wait(struct tide_barrier *b);
TIDE_EXTERN int tide_barrier_abort(struct tide_barrier *b);
TIDE_EXTERN int tide_barrier_reset(struct tide_barrier *b);
/* asyncio's Barrier.parties, n_waiting (parties waiting in the round
 * being filled; 0 while one drains) and broken (1 after abort, until
 * reset). -EINVAL for a NULL b. */
TIDE_EXTERN int tide_barrier_parties(const struct tide_barrier *b);
TIDE_EXTERN int tide_barrier_n_waiting(const struct tide_barrier *b);
TIDE_EXTERN int tide_barrier_broken(const struct tide_barrier *b);

/* ------------------------------------------------------------- sockets -- */

/*
 * Socket ops: futures like tide_op_read (value: the kernel's result). Every
 * fd tide creates or accepts is SOCK_NONBLOCK | SOCK_CLOEXEC. addr and
 * addrlen (accept), the msghdr and everything it points to (sendmsg,
 * recvmsg) and buf stay the caller's and must stay valid until the future
 * is done; connect copies its address. tide_op_close closes through the
 * loop, after the loop's own ops on fd finished.
 *
 * Close an fd only once no op of yours waits on it: cancel them
 * (tide_future_cancel), wait for their futures, then tide_op_close or
 * tide_close, which also drop the loop's epoll registration. An fd closed
 * under a pending op anyway (close(2), or tide_op_close too early) never
 * stops the loop from serving the file that takes its number next, and
 * the old op still ends: on epoll with -EBADF, once the loop sees the
 * number closed or reused (at the next op on that number, when
 * tide_op_close closes it, or when readiness wakes the op); on io_uring
 * the kernel keeps the closed file for the op, which completes from it
 * (data, EOF) or when cancelled, though on the readiness path (an opcode
 * the kernel lacks) it may then wait on the number's new file. Either way
 * tide_future_cancel ends it, and tide_loop_free cancels it if its future
 * was dropped.
 */
TIDE_EXTERN int tide_socket(int domain, int type, int protocol);
TIDE_EXTERN int tide_op_accept(struct tide_loop *loop, int fd, struct sockaddr *addr, socklen_t *addrlen, struct tide_future **out);
TIDE_EXTERN int tide_op_connect(struct tide_loop *loop, int fd, const struct sockaddr *addr, socklen_t addrlen, struct tide_future **out);
TIDE_EXTERN int tide_op_recv(struct tide_loop *loop, int fd, void *buf, size_t n, int flags, struct tide_future **out);
TIDE_EXTERN int tide_op_send(struct tide_loop *loop, int fd, const void *buf, size_t n, int flags, struct tide_future **out);
TIDE_EXTERN int tide_op_sendmsg(struct tide_loop *loop, int fd, const struct msghdr *msg, int flags, struct tide_future **out);
TIDE_EXTERN int tide_op_recvmsg(struct tide_loop *loop, int fd, struct msghdr *msg, int flags, struct tide_future **out);
TIDE_EXTERN int tide_op_shutdown(struct tide_loop *loop, int fd, int how, struct tide_future **out);
TIDE_EXTERN int tide_op_close(struct tide_loop *loop, int fd, struct tide_future **out);

/* The same, awaited inside a task: the result or -errno (-ECANCELED). */
TIDE_EXTERN int tide_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
TIDE_EXTERN int tide_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
TIDE_EXTERN ssize_t tide_recv(int fd, void *buf, size_t n, int flags);
TIDE_EXTERN ssize_t tide_send(int fd, const void *buf, size_t n, int flags);
TIDE_EXTERN ssize_t tide_sendmsg(int fd, const struct msghdr *msg, int flags);
TIDE_EXTERN ssize_t tide_recvmsg(int fd, struct msghdr *msg, int flags);
TIDE_EXTERN int tide_shutdown(int fd, int how);
TIDE_EXTERN int tide_close(int fd);

/* ------------------------------------------------------ name resolution -- */

struct addrinfo;
/*
 * asyncio's getaddrinfo: on the loop's default executor, except numeric
 * hosts, which complete without a thread. The future's ptr is the list,
 * freed with the future; a caller who takes it (tide_future_take_ptr)
 * frees it with freeaddrinfo(). Errors are -errno or TIDE_EAI_BASE + EAI_*.
 * host or port may be NULL (not both).
 */
TIDE_EXTERN int tide_getaddrinfo(struct tide_loop *loop, const char *host, const char *port,
				 const struct addrinfo *hints, struct tide_future **out);
/*
 * getnameinfo on the executor. The future's ptr is a "host\0service\0"
 * pair, freed with the future; a caller who takes it frees it with
 * tide_free() (it comes from the library's allocator).
 */
TIDE_EXTERN int tide_getnameinfo(struct tide_loop *loop, const struct sockaddr *addr, socklen_t addrlen,
				 int flags, struct tide_future **out);

/* ------------------------------------------------- transports, protocols -- */

/*
 * asyncio's transports and protocols. A protocol is a table of callbacks
 * and a pointer (proto) handed back to each; every member may be NULL, and
 * members past a short size count as NULL (a NULL table means no
 * callbacks). A size below sizeof(size_t) is -EINVAL from the calls that
 * take a table, and a bug (it asserts) in a table a factory returns.
 * The transport is the library's: it stays valid until connection_lost has
 * returned (take a reference with tide_transport_ref to keep it longer).
 * Callbacks run on the loop thread, never re-entrantly from a transport
 * call made inside another callback.
 */
struct tide_transport;

struct tide_protocol_ops {
	size_t size; /* sizeof(struct tide_protocol_ops) */
	void (*connection_made)(struct tide_transport *t, void *proto);
	/* data is valid during the call only. Not called for a buffered protocol. */
	void (*data_received)(struct tide_transport *t, const void *data, size_t n, void *proto);
	/* The peer shut down its side. Return non-zero to keep the transport
	 * open for writing (half-close); 0 closes it. */
	int (*eof_received)(struct tide_transport *t, void *proto);
	/* Exactly once, last: 0 for a clean close, else -errno (-ECONNRESET). */
	void (*connection_lost)(struct tide_transport *t, int err, void *proto);
	/* The write buffer went above the high-water mark / back to the low one. */
	void (*pause_writing)(struct tide_transport *t, void *proto);
	void (*resume_writing)(struct tide_transport *t, void *proto);
	/*
	 * Buffered protocol (asyncio.BufferedProtocol), used when get_buffer is
	 * set: get_buffer gives where the next bytes go (at least 1 byte; return
	 * < 0 to abort the connection with that error), buffer_updated says how
	 * many arrived there. On the readiness paths the kernel writes straight
	 * into that buffer; from io_uring's provided buffers it is one copy.
	 */
	int (*get_buffer)(struct tide_transport *t, size_t sizehint, void **buf, size_t *len, void *proto);
	void (*buffer_updated)(struct tide_transport *t, size_t n, void *proto);
	/* Datagram endpoints (asyncio.DatagramProtocol). */
	void (*datagram_received)(struct tide_transport *t, const void *data, size_t n,
				  const struct sockaddr *addr, socklen_t addrlen, void *proto);
	void (*error_received)(struct tide_transport *t, int err, void *proto);
};

/*
 * A server's protocol factory: called for each accepted connection to make
 * its protocol (*ops and *proto; arg is the one given to create_server).
 * Return < 0 to refuse the connection (it is closed).
 */
typedef int (*tide_protocol_factory_cb)(const struct tide_protocol_ops **ops, void **proto, void *arg);

TIDE_EXTERN struct tide_transport *tide_transport_ref(struct tide_transport *t);
TIDE_EXTERN void tide_transport_unref(struct tide_transport *t);
TIDE_EXTERN struct tide_loop *tide_transport_loop(const struct tide_transport *t);
/*
 * The data is copied. TIDE_ECLOSED after close/abort, -EPIPE after
 * write_eof, -EINVAL past SSIZE_MAX bytes in all, -ENOMEM when it cannot
 * be buffered (then none of it is).
 */
TIDE_EXTERN int tide_transport_write(struct tide_transport *t, const void *data, size_t n);
TIDE_EXTERN int tide_transport_writelines(struct tide_transport *t, const struct iovec *iov, int iovcnt);
/* Shuts the write side down once the buffer is flushed. */
TIDE_EXTERN int tide_transport_write_eof(struct tide_transport *t);
TIDE_EXTERN int tide_transport_can_write_eof(const struct tide_transport *t);
/* Flushes what is buffered, then closes; connection_lost(0) follows. */
TIDE_EXTERN void tide_transport_close(struct tide_transport *t);
/*
 * Drops the buffer and closes now; connection_lost(0) follows, whatever
 * the ops it cancels report. On io_uring a zero-copy send in flight (a
 * flush of 32 KiB or more) is cut short with a reset, since a peer that
 * does not read would otherwise hold its pages, and the connection, open.
 */
TIDE_EXTERN void tide_transport_abort(struct tide_transport *t);
TIDE_EXTERN int tide_transport_is_closing(const struct tide_transport *t);
TIDE_EXTERN int tide_transport_pause_reading(struct tide_transport *t);
TIDE_EXTERN int tide_transport_resume_reading(struct tide_transport *t);
TIDE_EXTERN int tide_transport_is_reading(const struct tide_transport *t);
/*
 * 0 stands for asyncio's None: high 0 is 4 * low, or 64 KiB when low is 0
 * too; low 0 is high / 4. low > high is -EINVAL. Marks past 4 GiB count
 * as 4 GiB.
 */
TIDE_EXTERN int tide_transport_set_write_buffer_limits(struct tide_transport *t, size_t high, size_t low);
TIDE_EXTERN size_t tide_transport_get_write_buffer_size(const struct tide_transport *t);
TIDE_EXTERN void tide_transport_get_write_buffer_limits(const struct tide_transport *t, size_t *high, size_t *low);
/*
 * A connection's timeouts, in seconds; 0 means none (a new transport has
 * none). When one expires the transport is aborted (its buffers dropped,
 * as tide_transport_abort does) and connection_lost gets -ETIMEDOUT. They
 * run while the transport is open and while tide_transport_close flushes
 * it, so a peer that stops reading cannot hold a closing connection open.
 *
 *  - idle: no byte received and no byte sent for this long. A byte
 *    counts as received when the kernel hands it over (also while
 *    reading is paused: a multishot receive holds it), as sent when the
 *    kernel takes it (a send completes); writing into the buffer is not
 *    traffic, and pausing reading does not stop the clock.
 *  - write: bytes wait to be sent and none went for this long (a peer
 *    that does not read). The clock starts when bytes are written to an
 *    empty buffer, and again at each send's progress.
 *
 * Traffic costs no timer operation and no clock read: a receive or a
 * send sets a bit of the transport. The connection's one timer looks at
 * the bits every eighth of its shortest timeout and dates what it finds
 * at that look, the latest it can have been: an expiry is never early,
 * and late by at most an eighth of the timeout (and what the loop is busy
 * with). A connection therefore wakes its timer eight times per timeout,
 * however many messages it carries.
 */
struct tide_timeouts {
	size_t size;  /* sizeof(struct tide_timeouts) */
	double idle;  /* seconds without traffic either way */
	double write; /* seconds of buffered bytes without a send's progress */
};
/*
 * Sets t's timeouts, replacing earlier ones (to NULL, or zeroed: none);
 * each clock starts again now. Returns 0; -EINVAL for a NULL t, a short
 * to->size, or a timeout that is negative, NaN, infinite or past 1e10 s;
 * -EOPNOTSUPP on a datagram endpoint;
 * TIDE_ECLOSED once the transport is aborted or lost; -ENOMEM. After an
 * error nothing changed.
 */
TIDE_EXTERN int tide_transport_set_timeouts(struct tide_transport *t, const struct tide_timeouts *to);
/*
 * An absolute deadline for the connection, in loop time (tide_loop_time()
 * seconds): then it is aborted and connection_lost gets -ETIMEDOUT,
 * whatever its traffic (a request that must be whole by then); a time
 * past already expires on the next iteration. 0 clears it. It is kept
 * to the nanosecond, not to a look. A deadline later than the timer's
 * next wake-up costs no timer operation (it is looked at then); an
 * earlier one moves the timer. Errors as tide_transport_set_timeouts,
 * -EINVAL for a negative, NaN or infinite when.
 */
TIDE_EXTERN int tide_transport_set_deadline(struct tide_transport *t, double when);
/*
 * asyncio's get_extra_info: "peername" and "sockname" copy a struct
 * sockaddr into buf (*len in: its size, out: the address length);
 * "socket" an int fd. -ENOENT for another name, -ENOSPC if buf is short,
 * TIDE_ECLOSED once connection_lost ran (the socket is closed by then).
 */
TIDE_EXTERN int tide_transport_get_extra_info(const struct tide_transport *t, const char *name, void *buf, socklen_t *len);
TIDE_EXTERN void *tide_transport_get_protocol(const struct tide_transport *t);
/* Datagram transports: send one datagram (addr NULL: the connected peer). */
TIDE_EXTERN int tide_transport_sendto(struct tide_transport *t, const void *data, size_t n,
				      const struct sockaddr *addr, socklen_t addrlen);

/* Options of connections and servers; a NULL opts means the defaults. */
struct tide_tls_opts;
struct tide_server_opts {
	size_t size;            /* sizeof(struct tide_server_opts) */
	int backlog;            /* 0 means 100, as asyncio */
	int no_reuse_address;   /* non-zero: no SO_REUSEADDR (asyncio sets it on Unix, and so do we) */
	int reuse_port;         /* SO_REUSEPORT: several loops (threads) share the port */
	int defer_serving;      /* non-zero: listen, but accept only after tide_server_start_serving */
	/* TLS for every connection (asyncio's ssl=), see "TLS" below; NULL:
	 * plain. Copied by the call (the context is referenced). The factory
	 * is called after the handshake: a connection whose handshake fails
	 * never makes a protocol. */
	const struct tide_tls_opts *tls;
};

/*
 * asyncio's create_connection: resolves host (on the executor unless
 * numeric), connects to the addresses in turn, and calls connection_made.
 * The future's ptr is the transport; the future holds a reference on it,
 * so the pointer stays valid while the future does (also when
 * connection_made closed it at once). A caller who takes the ptr takes
 * that reference: tide_transport_unref() it when done. Either way the
 * connection stays open until closed.
 */
TIDE_EXTERN int tide_create_connection(struct tide_loop *loop, const char *host, int port,
				       const struct tide_protocol_ops *ops, void *proto, struct tide_future **out);
TIDE_EXTERN int tide_create_unix_connection(struct tide_loop *loop, const char *path,
					    const struct tide_protocol_ops *ops, void *proto, struct tide_future **out);
/*
 * asyncio's create_server: listens on every address of hosts (NULL,
 * {NULL} or {""}: all interfaces, IPv4 and IPv6; an address given twice
 * is served once), port (0: one free port shared by all when possible).
 * The future's ptr is the server, and the future owns it: its last
 * reference frees the server (tide_server_free: it stops listening). To
 * keep serving past the future, take the server (tide_future_take_ptr)
 * and free it with tide_server_free() when done.
 */
struct tide_server;
TIDE_EXTERN int tide_create_server(struct tide_loop *loop, const char *const *hosts, size_t nhosts, int port,
				   const struct tide_server_opts *opts, tide_protocol_factory_cb factory, void *arg,
				   struct tide_future **out);
TIDE_EXTERN int tide_create_unix_server(struct tide_loop *loop, const char *path,
					const struct tide_server_opts *opts, tide_protocol_factory_cb factory, void *arg,
					struct tide_future **out);
/* Stops listening at once: a connect that comes after is refused (the
 * connections go on). Idempotent. A socket of tide_create_server_sock's
 * is closed, never shut down, as it may be shared with another process:
 * on io_uring it may still take a connection (reset when the close
 * completes, an iteration later). */
TIDE_EXTERN void tide_server_close(struct tide_server *s);
/* Closes the server's connections as well (asyncio's close_clients/abort_clients). */
TIDE_EXTERN void tide_server_close_clients(struct tide_server *s, int abort);
TIDE_EXTERN int tide_server_start_serving(struct tide_server *s);
TIDE_EXTERN int tide_server_is_serving(const struct tide_server *s);
/* Inside a task: waits until the server is closed and its connections are gone. */
TIDE_EXTERN int tide_server_wait_closed(struct tide_server *s);
/* Inside a task: serves until cancelled (then closes the server), as asyncio. */
TIDE_EXTERN int tide_server_serve_forever(struct tide_server *s);
/* The listening fds, up to cap of them into fds; returns how many there are. */
TIDE_EXTERN size_t tide_server_sockets(const struct tide_server *s, int *fds, size_t cap);
/* The port of the first listening socket (useful with port 0). */
TIDE_EXTERN int tide_server_port(const struct tide_server *s);
/* Closes if needed; frees once its connections are gone. */
TIDE_EXTERN void tide_server_free(struct tide_server *s);

struct tide_datagram_opts {
	size_t size;             /* sizeof(struct tide_datagram_opts) */
	const char *local_host;  /* bind here (NULL and local_port 0: no bind) */
	int local_port;
	const char *remote_host; /* connect here (NULL: not connected, use sendto) */
	int remote_port;
	int family;              /* AF_INET, AF_INET6 or 0 (from the addresses) */
	int reuse_port;
	int allow_broadcast;
};
/* asyncio's create_datagram_endpoint; the future's ptr is the transport (held, and taken, as by create_connection). */
TIDE_EXTERN int tide_create_datagram_endpoint(struct tide_loop *loop, const struct tide_datagram_opts *opts,
					      const struct tide_protocol_ops *ops, void *proto,
					      struct tide_future **out);

/* ------------------------------------------------------------------ TLS -- */

/*
 * TLS over OpenSSL 3 (asyncio's ssl= and sslproto): a TLS transport is a
 * transport over the plain one, and its protocol sees plaintext only:
 * connection_made after the handshake, data_received (or get_buffer /
 * buffer_updated) with decrypted bytes, eof_received when the peer's
 * close_notify came, connection_lost with the TLS error, if any (a peer
 * that closes without close_notify is
 * TIDE_ETLS_REASON(SSL_R_UNEXPECTED_EOF_WHILE_READING)). Every transport
 * call works on it: write buffer sizes and marks count plaintext not yet
 * encrypted and sent; pause_reading stops reading ciphertext;
 * write_eof sends close_notify once the buffer is flushed (reading goes
 * on); close flushes, sends close_notify and waits shutdown_timeout at
 * most for the peer's (or its EOF), then closes the socket (past the
 * timeout it is aborted, and connection_lost says -ETIMEDOUT); abort
 * closes at once.
 * The timeouts and deadline of tide_transport_set_timeouts apply to the
 * connection under it.
 *
 * A library built without OpenSSL (configure --without-openssl) returns
 * -ENOTSUP from every call that takes TLS options or starts TLS;
 * tide_tls_available() says which it is.
 *
 * The caller passes its own SSL_CTX, as asyncio takes an ssl.SSLContext,
 * and tide configures nothing on it behind the caller's back, except: a
 * server's ALPN list installs an ALPN selection callback on the context
 * (OpenSSL has no per-connection one), which picks the first of the
 * server's protocols the client offers and refuses the handshake
 * (no_application_protocol) when none match. It is installed once per
 * context, by the first such call, so servers on several threads may
 * share a context. On each connection's SSL
 * object tide sets SSL_OP_NO_RENEGOTIATION (renegotiation is refused, as
 * asyncio's), the SNI name and the host to verify (SSL_set1_host), the
 * client's ALPN list, and its own BIO. The context is referenced
 * (SSL_CTX_up_ref) by each call that takes it, so the caller may free it
 * once the call returned.
 */
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */
struct tide_tls_opts {
	size_t size;                 /* sizeof(struct tide_tls_opts) */
	struct ssl_ctx_st *ctx;      /* required: the caller's context */
	/*
	 * A client's SNI name and the name its peer's certificate must carry
	 * (asyncio's server_hostname). NULL: the host given to
	 * create_connection / open_connection; a client context that verifies
	 * its peer (SSL_VERIFY_PEER) without either (a unix connection,
	 * start_tls) is -EINVAL. Ignored on the server side.
	 */
	const char *server_hostname;
	/* ALPN protocols, in preference order, NULL-terminated ({"h2",
	 * "http/1.1", NULL}); NULL: no ALPN. Each 1 to 255 bytes (else -EINVAL). */
	const char *const *alpn;
	/* Seconds; 0 means asyncio's defaults, 60 and 30; negative, NaN,
	 * infinite or past 1e10 is -EINVAL. When the handshake times out the
	 * connection is closed and the error is -ETIMEDOUT. */
	double handshake_timeout;
	double shutdown_timeout;
};

/* Options of a connection; NULL means the defaults (plain TCP). */
struct tide_connect_opts {
	size_t size;                      /* sizeof(struct tide_connect_opts) */
	const struct tide_tls_opts *tls;  /* TLS (asyncio's ssl=); NULL: plain */
};
/*
 * tide_create_connection / tide_create_unix_connection with options: with
 * TLS, the future completes after the handshake, with the TLS transport,
 * or with the handshake's error (a verification failure is
 * TIDE_ETLS_VERIFY(why); connection_made was never called).
 */
TIDE_EXTERN int tide_create_connection_ex(struct tide_loop *loop, const char *host, int port,
					  const struct tide_connect_opts *opts, const struct tide_protocol_ops *ops,
					  void *proto, struct tide_future **out);
TIDE_EXTERN int tide_create_unix_connection_ex(struct tide_loop *loop, const char *path,
					       const struct tide_connect_opts *opts,
					       const struct tide_protocol_ops *ops, void *proto,
					       struct tide_future **out);
/*
 * Wrapping a socket the caller already has (asyncio's sock= and
 * connect_accepted_socket). fd must be a SOCK_STREAM socket (TCP over
 * IPv4 or IPv6, or AF_UNIX); tide makes it non-blocking and close-on-exec.
 * Ownership: when the call returns 0 the fd is tide's, whatever the
 * future's outcome (it is closed with the transport, or when the TLS
 * handshake fails); when it returns an error the fd stays the caller's,
 * untouched. Errors: -EINVAL (bad arguments, or fd < 0), -ENOTSOCK (fd is
 * not a socket), -EBADF (fd is not open), -EPROTOTYPE (not SOCK_STREAM),
 * -ENOTCONN (a client or accepted socket that is not connected, including
 * a non-blocking connect still in progress), -ENOTSUP (TLS asked without
 * OpenSSL), TIDE_ECLOSED (the loop is closed), -ENOMEM. The future comes
 * soon after the call (asyncio's order: the future, then connection_made);
 * cancelled before that, it closes fd with no callback.
 *
 * asyncio's create_connection(sock=sock): a connected client socket. The
 * future completes as tide_create_connection's, with the transport (after
 * the handshake with opts->tls, which then needs server_hostname unless
 * verification is off).
 */
TIDE_EXTERN int tide_create_connection_sock(struct tide_loop *loop, int fd, const struct tide_connect_opts *opts,
					    const struct tide_protocol_ops *ops, void *proto,
					    struct tide_future **out);
/*
 * asyncio's connect_accepted_socket: fd is a socket the caller accepted;
 * with opts->tls tide is the TLS server on it. The future completes as
 * tide_create_connection's, after the handshake with TLS.
 */
TIDE_EXTERN int tide_connect_accepted_socket(struct tide_loop *loop, int fd, const struct tide_connect_opts *opts,
					     const struct tide_protocol_ops *ops, void *proto,
					     struct tide_future **out);
/*
 * asyncio's create_server(sock=...): serves on the nfds (>= 1) bound
 * stream sockets fds, calling listen(2) on each with opts->backlog
 * (listening already is fine). From a 0 return every fd is the server's
 * (closed by tide_server_close); on error none is taken. Otherwise as
 * tide_create_server (opts->no_reuse_address and reuse_port are ignored:
 * the sockets are already bound). Besides the errors above (-ENOTCONN
 * aside), -EINVAL for a connected socket or an fd listed twice, and
 * listen(2)'s error for a socket it refuses (an unbound AF_UNIX one): an
 * fd before it in fds may then be listening already, still the caller's.
 * The future is done on return.
 */
TIDE_EXTERN int tide_create_server_sock(struct tide_loop *loop, const int *fds, size_t nfds,
					const struct tide_server_opts *opts, tide_protocol_factory_cb factory,
					void *arg, struct tide_future **out);
/*
 * asyncio's loop.start_tls: upgrades the open stream transport t
 * (STARTTLS) to TLS, as a client (server_side 0) or a server, with ops and
 * proto as the TLS transport's protocol. The future completes after the
 * handshake with the TLS transport (held, and taken, as
 * tide_create_connection's) or with the error, and then the connection
 * is closed.
 * From the call on, t belongs to the TLS layer: its protocol gets
 * nothing more, and calls on it other than tide_transport_ref/unref and
 * the getters return TIDE_ESSL_CLOSED. -EINVAL for a datagram or pipe
 * transport, or one already under TLS; TIDE_ECLOSED once t is closing.
 * Bytes t received but its protocol has not read are the first bytes of
 * the handshake.
 */
TIDE_EXTERN int tide_start_tls(struct tide_transport *t, int server_side, const struct tide_tls_opts *tls,
			       const struct tide_protocol_ops *ops, void *proto, struct tide_future **out);
/* 1 when the library was built with OpenSSL, else 0. */
TIDE_EXTERN int tide_tls_available(void);
/*
 * asyncio's ssl.create_default_context(): a client context that trusts
 * the system's certificates and verifies the peer and its host name,
 * TLS 1.2 at least. *out is the caller's (SSL_CTX_free). 0, -ENOMEM,
 * TIDE_ETLS..., -ENOTSUP without OpenSSL.
 */
TIDE_EXTERN int tide_tls_client_context_new(struct ssl_ctx_st **out);
/*
 * A server context from a PEM certificate chain file and a PEM private
 * key file (key NULL: in the certificate file), TLS 1.2 at least. -ENOENT
 * or -EACCES for a file that cannot be read, TIDE_ETLS_REASON(...) for
 * one that is not a certificate or key, or a key that does not match.
 */
TIDE_EXTERN int tide_tls_server_context_new(const char *certfile, const char *keyfile, struct ssl_ctx_st **out);
/*
 * get_extra_info on a TLS transport (tide_transport_get_extra_info,
 * tide_stream_get_extra_info) also answers, besides the plain ones:
 *  - "ssl_object": the connection's SSL * (sizeof(void *) bytes), valid
 *    until connection_lost returned; read it, do not drive it;
 *  - "sslcontext": its SSL_CTX *;
 *  - "peercert": the peer's certificate, DER-encoded (-ENOENT if none);
 *  - "cipher": the cipher's name, a NUL-terminated string;
 *  - "version": the protocol version, e.g. "TLSv1.3";
 *  - "compression": -ENOENT (OpenSSL 3 does no TLS compression; asyncio
 *    says None);
 *  - "alpn_protocol": the protocol agreed on, NUL-terminated (-ENOENT if
 *    none);
 *  - "server_hostname": the name a client verified and sent as SNI, or
 *    that a server received (-ENOENT if none).
 * Strings are copied with their NUL into buf (*len in: its size, out: the
 * length with the NUL); -ENOSPC if buf is short.
 */

/* --------------------------------------------------------------- streams -- */

/*
 * asyncio's StreamReader and StreamWriter, for tasks. Calls that wait must
 * be made inside a task and return -ECANCELED when it is cancelled; no data
 * is lost by a cancelled read (it stays buffered for the next one). One
 * read at a time (asyncio's RuntimeError): from its start until it returns,
 * a read (readexactly, readuntil, readline, peek) owns the reader, and a
 * read, peek or consume beside it gets -EBUSY, even with bytes buffered
 * and while it is woken but has yet to run (the bytes are its own).
 * A read or readexactly of at least a receive's worth that waits on an
 * empty buffer has the bytes received straight into buf.
 */
struct tide_stream_reader;
struct tide_stream_writer;

/* Inside a task: connects; 0 with the pair, or -errno. Free with tide_stream_free. */
TIDE_EXTERN int tide_open_connection(const char *host, int port, struct tide_stream_reader **r,
				     struct tide_stream_writer **w);
TIDE_EXTERN int tide_open_unix_connection(const char *path, struct tide_stream_reader **r,
					  struct tide_stream_writer **w);
/* The same with options (TLS): as tide_create_connection_ex; the call
 * returns after the handshake. */
TIDE_EXTERN int tide_open_connection_ex(const char *host, int port, const struct tide_connect_opts *opts,
					struct tide_stream_reader **r, struct tide_stream_writer **w);
TIDE_EXTERN int tide_open_unix_connection_ex(const char *path, const struct tide_connect_opts *opts,
					     struct tide_stream_reader **r, struct tide_stream_writer **w);
/*
 * Inside a task: asyncio's open_connection(sock=sock); returns after the
 * handshake with opts->tls. The checks' errors of
 * tide_create_connection_sock (-EINVAL, -ENOTSOCK, -EBADF, -EPROTOTYPE,
 * -ENOTCONN, -ENOTSUP) and TIDE_ENOT_IN_TASK leave fd the caller's,
 * untouched; past them fd is tide's: 0 gives it to the pair, and any
 * other error (the handshake's, -ECANCELED, -ENOMEM) has closed it.
 */
TIDE_EXTERN int tide_open_connection_sock(int fd, const struct tide_connect_opts *opts,
					  struct tide_stream_reader **r, struct tide_stream_writer **w);
/*
 * Inside a task: asyncio's StreamWriter.start_tls. Upgrades the pair's
 * connection to TLS (STARTTLS) and returns after the handshake: 0, and
 * the pair reads and writes through TLS from then on; or the error
 * (-ETIMEDOUT, TIDE_ETLS_VERIFY(...), ...), after which the connection
 * is closed. -EBUSY while a read is under way; bytes the reader holds
 * are the first bytes of the handshake.
 */
TIDE_EXTERN int tide_stream_start_tls(struct tide_stream_reader *r, struct tide_stream_writer *w, int server_side,
				      const struct tide_tls_opts *tls);
/*
 * A task per connection runs handler(r, w, arg); the pair is closed and
 * freed when it returns. The future's ptr is the server, owned as
 * create_server's is: take it to keep it, then tide_server_free() it.
 */
typedef int64_t (*tide_stream_handler_cb)(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg);
TIDE_EXTERN int tide_start_server(struct tide_loop *loop, const char *const *hosts, size_t nhosts, int port,
				  const struct tide_server_opts *opts, tide_stream_handler_cb handler, void *arg,
				  struct tide_future **out);
TIDE_EXTERN int tide_start_unix_server(struct tide_loop *loop, const char *path, const struct tide_server_opts *opts,
				       tide_stream_handler_cb handler, void *arg, struct tide_future **out);
/* asyncio's start_server(sock=...): as tide_create_server_sock, with a
 * task per connection as tide_start_server. */
TIDE_EXTERN int tide_start_server_sock(struct tide_loop *loop, const int *fds, size_t nfds,
				       const struct tide_server_opts *opts, tide_stream_handler_cb handler,
				       void *arg, struct tide_future **out);
/* Closes the connection if needed and frees the pair (from open_connection).
 * Either half may be NULL: a process's pipe streams have only one. */
TIDE_EXTERN void tide_stream_free(struct tide_stream_reader *r, struct tide_stream_writer *w);

/* The most bytes readline/readuntil buffer looking for a separator (64 KiB by default). */
TIDE_EXTERN int tide_stream_set_limit(struct tide_stream_reader *r, size_t limit);
/*
 * Up to n bytes (at least 1), or 0 at EOF.
 *
 * buf is the call's until it returns, as a buffer handed to read(2) or to
 * an io_uring receive is: a read that waits lends buf to the connection,
 * whose bytes land in it as they arrive, while the task waits and after
 * it is woken, until it runs. So two tasks must not wait in reads on one
 * buffer (a scratch buffer shared by a thread's handlers would mix their
 * connections' bytes). Past the count returned, buf's content is
 * unspecified. The same holds for readexactly.
 */
TIDE_EXTERN ssize_t tide_stream_read(struct tide_stream_reader *r, void *buf, size_t n);
/*
 * Exactly n bytes, or TIDE_EINCOMPLETE_READ at EOF with the partial bytes
 * copied to buf and their count in *partial (may be NULL). buf is the
 * call's until it returns (see read).
 */
TIDE_EXTERN ssize_t tide_stream_readexactly(struct tide_stream_reader *r, void *buf, size_t n, size_t *partial);
/*
 * Up to and including sep, copied into buf (cap bytes). EOF first:
 * TIDE_EINCOMPLETE_READ with the partial bytes in buf and *partial. No
 * separator within min(limit, cap) bytes: TIDE_ELIMIT_OVERRUN, and the
 * data stays buffered (asyncio's LimitOverrunError).
 */
TIDE_EXTERN ssize_t tide_stream_readuntil(struct tide_stream_reader *r, const void *sep, size_t seplen,
					  void *buf, size_t cap, size_t *partial);
/*
 * A line with its '\n'; at EOF the partial line (0 at EOF with nothing
 * buffered). Past the limit: TIDE_ELIMIT_OVERRUN, and the line is
 * discarded up to its end, as asyncio's readline.
 */
TIDE_EXTERN ssize_t tide_stream_readline(struct tide_stream_reader *r, void *buf, size_t cap);
/*
 * Waits until the reader holds a byte (or EOF, or the connection's error)
 * and points *data at the bytes it holds, without copying or consuming
 * them: the first contiguous run of them, count returned (> 0). 0 at EOF
 * with nothing buffered (*data NULL), or the connection's error; -EBUSY
 * while another read is under way (waits, or was woken and has not run),
 * -ECANCELED,
 * TIDE_ENOT_IN_TASK when it would wait outside a task. As Rust's
 * BufRead::fill_buf, for parsers and proxies that need not copy: on
 * io_uring a peek waiting on an empty reader is handed the receive's ring
 * buffer itself, so an echo needs no buffer of its own (its write still
 * copies, as every write does). peek never waits while bytes are held:
 * a message split over two receives shows as two runs, so read or
 * readexactly what must be contiguous.
 *
 * The view holds until the next read, peek or consume on this reader, or
 * until the task next waits (in drain, a sleep, any await): bytes that
 * arrive meanwhile may move the reader's buffer. Write or copy what it
 * shows before waiting. A ring buffer goes back to the ring when its
 * bytes are consumed, when another read copies them into the reader's
 * buffer, or when the connection is lost (they move there too): consume
 * soon, as with any io_uring provided buffer.
 */
TIDE_EXTERN ssize_t tide_stream_peek(struct tide_stream_reader *r, const void **data);
/*
 * asyncio's read(-1): every byte until EOF, in one buffer the library
 * allocates (*data, freed with tide_free(); also for 0 bytes). Returns
 * the count, or the connection's error, -ECANCELED, -ENOMEM, -EBUSY as
 * read; then *data is NULL and the bytes it had taken are back in the
 * reader (nothing is lost). It reads past the limit: the limit bounds a
 * separator's search, not this.
 */
TIDE_EXTERN ssize_t tide_stream_read_all(struct tide_stream_reader *r, void **data);
/*
 * asyncio's StreamReader made by hand, for a protocol of the caller's to
 * feed: feed_data (copied; TIDE_EINVALID_STATE after feed_eof, -ENOMEM),
 * feed_eof, and set_exception (err < 0: reads return it once the bytes
 * before it are read). limit 0 is the default 64 KiB. Free with
 * tide_stream_free(r, NULL). The feed calls are -EINVAL on a reader a
 * connection feeds.
 */
TIDE_EXTERN int tide_stream_reader_new(struct tide_loop *loop, size_t limit, struct tide_stream_reader **out);
TIDE_EXTERN int tide_stream_feed_data(struct tide_stream_reader *r, const void *data, size_t n);
TIDE_EXTERN int tide_stream_feed_eof(struct tide_stream_reader *r);
TIDE_EXTERN int tide_stream_set_exception(struct tide_stream_reader *r, int err);
/* Drops the first n buffered bytes (what peek showed): 0, -EINVAL past
 * what is buffered, -EBUSY while a read is under way (waits, or was woken
 * and has not run). */
TIDE_EXTERN int tide_stream_consume(struct tide_stream_reader *r, size_t n);
/* 1 once EOF (or the connection's error) came and every byte before it
 * was read: none buffered, nor waiting in a woken read's hands. */
TIDE_EXTERN int tide_stream_at_eof(const struct tide_stream_reader *r);
/* Buffered; never waits. TIDE_ECLOSED once closing, or the connection's error. */
TIDE_EXTERN int tide_stream_write(struct tide_stream_writer *w, const void *data, size_t n);
TIDE_EXTERN int tide_stream_writelines(struct tide_stream_writer *w, const struct iovec *iov, int iovcnt);
/* Waits while the write buffer is above the high-water mark; 0 or the connection's error. */
TIDE_EXTERN int tide_stream_drain(struct tide_stream_writer *w);
TIDE_EXTERN int tide_stream_write_eof(struct tide_stream_writer *w);
TIDE_EXTERN int tide_stream_can_write_eof(const struct tide_stream_writer *w);
TIDE_EXTERN void tide_stream_close(struct tide_stream_writer *w);
TIDE_EXTERN int tide_stream_is_closing(const struct tide_stream_writer *w);
/* Waits until the connection is closed (connection_lost); 0 or its error. */
TIDE_EXTERN int tide_stream_wait_closed(struct tide_stream_writer *w);
TIDE_EXTERN int tide_stream_get_extra_info(const struct tide_stream_writer *w, const char *name, void *buf, socklen_t *len);
TIDE_EXTERN struct tide_transport *tide_stream_transport(const struct tide_stream_writer *w);
/*
 * The stream's connection's timeouts and deadline (those of
 * tide_transport_set_timeouts and tide_transport_set_deadline): on expiry
 * the connection is aborted, and -ETIMEDOUT is what a read waiting (or
 * the next, once the bytes buffered before are read), drain and
 * wait_closed return. Unlike tide_wait_for around one read, a deadline
 * costs no timer per read, and ends the connection, not the read.
 * -ENOTCONN before the connection is made; else as those calls.
 */
TIDE_EXTERN int tide_stream_set_timeouts(struct tide_stream_writer *w, const struct tide_timeouts *to);
TIDE_EXTERN int tide_stream_set_deadline(struct tide_stream_writer *w, double when);

/* -------------------------------------------------------------- signals -- */

/*
 * asyncio's add_signal_handler: cb(arg) runs on the loop's thread as a
 * ready callback (never in signal context) after signo arrives. Signals
 * that arrive in a burst coalesce into one call, but a signal that arrives
 * after the callback last started always causes another call; one that
 * arrives while the loop is not running is delivered by its next run.
 * Returns 0 (replacing an earlier handler of this loop for signo); -EINVAL
 * for a NULL loop or cb, SIGKILL, SIGSTOP, a number out of range (below 1
 * or above 64) or one the C library keeps for itself (glibc's 32 and 33);
 * -ENOSPC past 256 loops with signals at once; -ENOMEM; TIDE_ECLOSED on a
 * closed loop; TIDE_EFORKED in a forked child. Several loops (in several
 * threads) may each have a handler for one signal: each of them runs, on
 * its own loop's thread, whichever thread the kernel interrupted (a signal
 * sent to one thread with pthread_kill too). While any loop has a handler
 * the signal's disposition is the library's (a process-wide handler with
 * SA_RESTART; no signal mask changes); when the last is removed (or its
 * loop closed or freed: tide_loop_close removes the loop's handlers, as
 * asyncio's close does) the disposition the program had before the first
 * is restored. A child of fork(2) starts with the program's dispositions
 * back: the parent's loops are not its own. Do not call sigaction(2) for
 * a signal while a loop handles it: the library's handler would be
 * replaced, and removing the last handler would later overwrite yours
 * with the disposition saved at the first.
 */
TIDE_EXTERN int tide_loop_add_signal_handler(struct tide_loop *loop, int signo, tide_call_cb cb, void *arg);
/* 1 if a handler was removed, 0 if there was none; -EINVAL for a NULL
 * loop or a number add refuses as such. A handler may remove itself. */
TIDE_EXTERN int tide_loop_remove_signal_handler(struct tide_loop *loop, int signo);
/*
 * Inside a task: waits until signo arrives (after the call), on the
 * task's loop. Returns signo, -ECANCELED (also when a cancellation is
 * owed to the task), TIDE_ENOT_IN_TASK outside a task, or the errors of
 * tide_loop_add_signal_handler. While it waits the signal's disposition
 * is the library's, as with a handler; each task waiting for signo wakes,
 * beside the loop's handler of it, if any.
 */
TIDE_EXTERN int tide_signal_wait(int signo);
/* The loop running on the calling thread (inside one of its callbacks or
 * tasks), or NULL. A callback that runs another loop's iteration sees that
 * loop inside it, its own after. */
TIDE_EXTERN struct tide_loop *tide_get_running_loop(void);

/* ---------------------------------------------------------------- pipes -- */

/*
 * asyncio's connect_read_pipe / connect_write_pipe: a transport over fd, a
 * pipe, FIFO, socket or character device (else -EINVAL; -EBADF for an fd
 * that is not open). The transport owns fd from then on: it makes it
 * non-blocking and closes it at the end, also on error. The future's ptr
 * is the transport, held (and taken) as tide_create_connection's.
 *
 * A read pipe transport reads (pause_reading, resume_reading) and calls
 * eof_received then connection_lost(0) at the end of the data; writing to
 * it is -EOPNOTSUPP. A write pipe transport writes with the socket
 * transport's flow control; write_eof closes fd once the buffer is
 * flushed; when the reading end is closed, connection_lost(-EPIPE) (a
 * reader going away is noticed even with nothing to write, on a pipe, FIFO
 * or socket; asyncio says None there when nothing was buffered). As
 * write(2), a write that finds the reader gone raises SIGPIPE: programs
 * ignore it (signal(SIGPIPE, SIG_IGN)), as Python does for asyncio.
 * get_extra_info("pipe") is fd. On an error the call returns fd is closed
 * (unless it is not open) and no transport is made.
 */
TIDE_EXTERN int tide_connect_read_pipe(struct tide_loop *loop, int fd, const struct tide_protocol_ops *ops, void *proto,
				       struct tide_future **out);
TIDE_EXTERN int tide_connect_write_pipe(struct tide_loop *loop, int fd, const struct tide_protocol_ops *ops,
					void *proto, struct tide_future **out);

/* ---------------------------------------------------------- subprocesses -- */

/* How a child's stdin, stdout or stderr is set up (a zero means INHERIT). */
enum tide_stdio_mode {
	TIDE_STDIO_INHERIT = 0, /* the parent's (asyncio's None) */
	TIDE_STDIO_PIPE,        /* a pipe to the parent: a stream or pipe transport */
	TIDE_STDIO_DEVNULL,     /* /dev/null */
	TIDE_STDIO_FD,          /* the fd given (dup'ed into place; the caller keeps it) */
	TIDE_STDIO_STDOUT,      /* stderr only: where stdout goes */
};
struct tide_stdio {
	enum tide_stdio_mode mode;
	int fd; /* TIDE_STDIO_FD */
};

/* A zeroed struct (or NULL) means asyncio's defaults. */
struct tide_subprocess_opts {
	size_t size;                   /* sizeof(struct tide_subprocess_opts) */
	struct tide_stdio stdio[3];    /* stdin, stdout, stderr */
	const char *cwd;               /* NULL: the parent's */
	const char *const *env;        /* NULL-terminated "NAME=value"s; NULL: the parent's environ */
	const int *pass_fds;           /* fds the child keeps, at the same numbers */
	size_t npass_fds;
	int start_new_session;         /* setsid() in the child */
	int set_process_group;         /* setpgid(0, process_group) in the child */
	pid_t process_group;
	size_t limit;                  /* the stream readers' limit; 0: 64 KiB */
};

/*
 * asyncio's SubprocessProtocol. Every member may be NULL; members past
 * size count as NULL. fd is 0, 1 or 2 (the child's stdin, stdout, stderr).
 */
struct tide_subprocess_transport;
struct tide_subprocess_protocol_ops {
	size_t size; /* sizeof(struct tide_subprocess_protocol_ops) */
	void (*connection_made)(struct tide_subprocess_transport *t, void *proto);
	void (*pipe_data_received)(struct tide_subprocess_transport *t, int fd, const void *data, size_t n,
				   void *proto);
	/* A pipe closed: 0 at EOF, else -errno. */
	void (*pipe_connection_lost)(struct tide_subprocess_transport *t, int fd, int err, void *proto);
	/* The child exited (get_returncode answers from now on). */
	void (*process_exited)(struct tide_subprocess_transport *t, void *proto);
	/* Exactly once, last: after the child exited and every pipe closed. */
	void (*connection_lost)(struct tide_subprocess_transport *t, int err, void *proto);
	/* The stdin pipe's write buffer crossed its marks. */
	void (*pause_writing)(struct tide_subprocess_transport *t, void *proto);
	void (*resume_writing)(struct tide_subprocess_transport *t, void *proto);
};

/*
 * asyncio's loop.subprocess_exec / subprocess_shell: spawns the child at
 * once (argv[0] looked up in PATH, or in opts' env's PATH when given; a
 * shell command runs as /bin/sh -c cmd). A failed start is the call's
 * return, -errno (-ENOENT, -EACCES, -ENOEXEC, the cwd's -ENOENT...), with
 * no child left behind; NULL or empty argv, a bad mode or an fd that is
 * not open give -EINVAL / -EBADF. On success the future's ptr is the
 * transport, held as tide_create_connection's: take it and
 * tide_subprocess_transport_unref() it when done.
 *
 * The child starts with default signal dispositions and an empty signal
 * mask, and holds no fd but its stdio and pass_fds.
 */
TIDE_EXTERN int tide_subprocess_exec(struct tide_loop *loop, const struct tide_subprocess_protocol_ops *ops,
				     void *proto, const char *const *argv, const struct tide_subprocess_opts *opts,
				     struct tide_future **out);
TIDE_EXTERN int tide_subprocess_shell(struct tide_loop *loop, const struct tide_subprocess_protocol_ops *ops,
				      void *proto, const char *cmd, const struct tide_subprocess_opts *opts,
				      struct tide_future **out);
TIDE_EXTERN struct tide_subprocess_transport *tide_subprocess_transport_ref(struct tide_subprocess_transport *t);
TIDE_EXTERN void tide_subprocess_transport_unref(struct tide_subprocess_transport *t);
TIDE_EXTERN pid_t tide_subprocess_transport_get_pid(const struct tide_subprocess_transport *t);
/* 1 with *code set once the child exited (negative: the signal that killed it), else 0. */
TIDE_EXTERN int tide_subprocess_transport_get_returncode(const struct tide_subprocess_transport *t, int *code);
/* The pipe transport of the child's fd (0, 1, 2), or NULL. */
TIDE_EXTERN struct tide_transport *tide_subprocess_transport_get_pipe_transport(const struct tide_subprocess_transport *t,
										 int fd);
/* 0; -ESRCH once the child was reaped (asyncio's ProcessLookupError); -EINVAL. */
TIDE_EXTERN int tide_subprocess_transport_send_signal(struct tide_subprocess_transport *t, int signo);
TIDE_EXTERN int tide_subprocess_transport_terminate(struct tide_subprocess_transport *t);
TIDE_EXTERN int tide_subprocess_transport_kill(struct tide_subprocess_transport *t);
/*
 * Closes the pipes and, if the child still runs, kills it (SIGKILL), as
 * asyncio's close does; it is reaped on the loop all the same.
 */
TIDE_EXTERN void tide_subprocess_transport_close(struct tide_subprocess_transport *t);

/*
 * asyncio's create_subprocess_exec / create_subprocess_shell: the
 * future's ptr is a process whose PIPE stdio are streams. It is the
 * future's: take it (tide_future_take_ptr) to keep it past the future,
 * then free it with tide_process_free.
 *
 * Children and the loop: a child is reaped by the loop that spawned it,
 * and never a process it did not spawn (no waitpid(-1)). Freeing a
 * process before its child exited leaves the child running; the loop
 * still reaps it when it exits. A loop freed with children running kills
 * none: it hands their pidfds to a reaper (waitid in a detached thread),
 * so none is left a zombie.
 */
struct tide_process;
TIDE_EXTERN int tide_create_subprocess_exec(struct tide_loop *loop, const char *const *argv,
					    const struct tide_subprocess_opts *opts, struct tide_future **out);
TIDE_EXTERN int tide_create_subprocess_shell(struct tide_loop *loop, const char *cmd,
					     const struct tide_subprocess_opts *opts, struct tide_future **out);
/*
 * Closes its pipes; the child runs on (and is reaped when it exits).
 * Tasks in tide_process_wait get -ECANCELED; a communicate under way is
 * cancelled and returns -ECANCELED, and the process is freed as it returns.
 */
TIDE_EXTERN void tide_process_free(struct tide_process *p);
TIDE_EXTERN pid_t tide_process_pid(const struct tide_process *p);
/* 1 with *code once the child exited (negative: the killing signal), else 0. */
TIDE_EXTERN int tide_process_returncode(const struct tide_process *p, int *code);
/* The PIPE stdio (NULL for the others). */
TIDE_EXTERN struct tide_stream_writer *tide_process_stdin(const struct tide_process *p);
TIDE_EXTERN struct tide_stream_reader *tide_process_stdout(const struct tide_process *p);
TIDE_EXTERN struct tide_stream_reader *tide_process_stderr(const struct tide_process *p);
/*
 * Inside a task: waits for the child to exit; 0 with its return code in
 * *code (may be NULL), or -ECANCELED (the child runs on, and a later wait
 * still sees it end).
 */
TIDE_EXTERN int tide_process_wait(struct tide_process *p, int *code);
/*
 * Inside a task: writes input (n bytes, may be NULL) to stdin and closes
 * it, reads stdout and stderr to EOF, and waits for the child, all at
 * once (no deadlock however much flows each way). *out and *err (when
 * those are PIPEs and the pointers are not NULL) get buffers from the
 * library's allocator, freed with tide_free(), with a NUL after the
 * bytes (NULL where that stream is not a PIPE); their lengths in *outlen,
 * *errlen. Returns the child's return code in *code and 0, or -errno:
 * -EINVAL for input without a stdin PIPE. A child that exits or closes
 * its stdin before reading all the input is no error (asyncio's rule).
 * -EBUSY while another communicate of p is under way. Cancelled, it
 * returns -ECANCELED at once, whatever the child does with its pipes;
 * what was read is dropped, the child runs on.
 */
TIDE_EXTERN int tide_process_communicate(struct tide_process *p, const void *input, size_t n, char **out,
					 size_t *outlen, char **err, size_t *errlen, int *code);
/* As the transport's: 0, -ESRCH once the child was reaped. */
TIDE_EXTERN int tide_process_send_signal(struct tide_process *p, int signo);
TIDE_EXTERN int tide_process_terminate(struct tide_process *p);
TIDE_EXTERN int tide_process_kill(struct tide_process *p);

#ifdef __cplusplus
}
#endif
#endif /* TIDE_H */
