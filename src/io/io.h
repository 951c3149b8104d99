/* SPDX-License-Identifier: MIT */
/*
 * io.h: the I/O layer (src/io): ops, the op table, the op families, the
 * two backends behind the loop's backend seam, and the executor. It sits on
 * src/core and knows nothing above it (tasks, transports).
 *
 * The hard part it encodes is ownership rule 2 of DESIGN.md: an op owns
 * what the kernel can see until its final completion, even after a cancel,
 * and completes exactly once whatever path it took.
 */
#ifndef TIDE_IO_H
#define TIDE_IO_H

#include "core/core.h"

#include <signal.h>

/* ------------------------------------------------------------------ ops -- */

enum {
	TIDE__OP_INFLIGHT = 1u << 0,   /* the backend holds it; the kernel may touch its memory */
	TIDE__OP_CANCELLING = 1u << 1, /* a cancel was requested; wait for the final completion */
	TIDE__OP_INTERNAL = 1u << 2,   /* the loop's own (wake-up eventfd): not a live user object */
	TIDE__OP_CHARDEV = 1u << 4,    /* the fd is a character device (tty): io_uring runs it in io-wq */
	TIDE__OP_MORE = 1u << 5,       /* done() is seeing one result of a multishot op; more follow */
	TIDE__OP_STARTED = 1u << 6,    /* readiness connect: connect(2) ran, wait for SO_ERROR */
	TIDE__OP_ZC_RESULT = 1u << 7,  /* zero-copy send: its result was delivered (TIDE__OP_MORE); the
					* final completion is the notification */
	TIDE__OP_NO_TRY = 1u << 8,     /* readiness path: wait before the first attempt (it would say EAGAIN) */
	TIDE__OP_LAZY = 1u << 9,       /* the fd is closed through the loop (fd_close): epoll may keep it registered */
	TIDE__OP_REAPED = 1u << 10,    /* epoll: performed, its completion is queued (a cancel is too late) */
	TIDE__OP_PBUF = 1u << 11,      /* done() sees a ring buffer: buf, res bytes, its id in bid */
	TIDE__OP_ORPHAN = 1u << 12,    /* io_uring: a zero-copy send cancelled with its thread; its
					* notification submits it again (backend-uring.c) */
};

/* A zero-copy send's final completion (its notification) says the
 * kernel copied the bytes after all. */
#define TIDE__ZC_COPIED 1

struct tide__op;
/* Called on the loop thread with the op's one result, exactly once. */
typedef void (*tide__op_done_cb)(struct tide__op *op);

/*
 * The unit of I/O. It owns every argument the kernel reads later (the
 * timespec is copied in here) and the buffer pointer until the final
 * completion, even after a cancel.
 *
 * Field order: what completing an op touches (kind, flags, res, bid,
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
	uint32_t bid;               /* TIDE__OP_PBUF: the ring buffer's id (buf is its address) */
	tide__op_done_cb done;      /* completion: called once on the loop thread */
	union {
		struct {                    /* public ops (tide_op_*) */
			struct tide_future *fut;    /* the future to complete (a reference) */
			struct tide__list live;     /* in the loop's live_list (for free) */
		};
		void *owner;                /* internal ops: the object done() works for (a transport) */
	};
	void *buf;                  /* read/write buffer (the caller's, valid until done) */
	size_t len;                 /* its length */
	union {
		int64_t off;        /* read/write: file offset, -1 for the current position */
		struct {
			int msg_flags;  /* socket ops: send/recv flags, shutdown's how */
		};
		socklen_t caddrlen; /* connect: the address copy's length */
	};
	uint32_t events;            /* poll: requested mask; readiness path: what to wait for */
	uint32_t sub_gen;           /* io_uring: the ring's driver_gen when its SQE was prepared */
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
/* A multishot op's non-final result: done() runs with TIDE__OP_MORE set
 * and the op stays in flight. */
void tide__op_deliver_more(struct tide__op *op, int res);
/* What a readiness-path op waits for (POLLIN / POLLOUT...). */
uint32_t tide__op_wait_events(const struct tide__op *op);
/* Whether kind runs natively on this loop (the io_uring probe, unmasked). */
static inline bool tide__op_native(const struct tide_loop *loop, int kind)
{
	return loop->backend->native(loop, kind);
}
/* The loop is about to close fd itself (a transport's or listener's): the
 * backend forgets it (epoll's lazy registration). */
void tide__op_fd_closing(struct tide_loop *loop, int fd);
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

/* ------------------------------------------------ provided-buffer ring -- */

/*
 * The ring buffers multishot receives draw from (io_uring only). The
 * backend resolves a CQE's buffer id into the op (buf, bid, TIDE__OP_PBUF);
 * whoever done() hands it to gives it back with tide__pbuf_recycle at once,
 * or keeps it a while (tide__pbuf_keep, at most a quarter of the ring: a
 * send from it, a stream's peek) and later returns it (tide__pbuf_return).
 */
#define TIDE__PBUF_GROUP 0
static inline void tide__pbuf_recycle(struct tide_loop *loop, unsigned bid)
{
	loop->backend->pbuf_recycle(loop, bid);
}

/* At most a quarter of the ring leaves it for a while, lest slow peers
 * starve every receive. */
static inline bool tide__pbuf_spare(const struct tide_loop *loop)
{
	return loop->pbufs_lent < loop->recv_buf_count / 4;
}

static inline void tide__pbuf_keep(struct tide_loop *loop)
{
	loop->pbufs_lent++;
}

static inline void tide__pbuf_return(struct tide_loop *loop, unsigned bid)
{
	loop->pbufs_lent--;
	loop->backend->pbuf_recycle(loop, bid);
}

/* ----------------------------------------------------------- op table -- */

/* The kinds of tide.h's enum tide_op_kind: its last kind moves this. */
enum { TIDE__OP_KINDS = TIDE_OP_READ_MULTISHOT + 1 };
/* An op kind without a path where its opcode is missing (-EOPNOTSUPP). */
#define TIDE__NO_PATH 0xff

enum {
	TIDE__OPF_SOCKET = 1u << 0,       /* a socket op (MSG_* flags, readiness by the socket) */
	TIDE__OPF_NEEDS_CANCEL = 1u << 1, /* native only with ASYNC_CANCEL: it may wait forever */
	TIDE__OPF_UNMASKABLE = 1u << 2,   /* TIDE_DISABLE_OPS cannot mask it (the readiness path itself) */
	TIDE__OPF_WAIT_ONLY = 1u << 3,    /* nothing to perform: the readiness is the result (poll) */
	TIDE__OPF_CLOSES_FD = 1u << 4,    /* the backend forgets the fd at submit (close) */
	TIDE__OPF_NOTIF = 1u << 6,        /* io_uring: its result comes as a TIDE__OP_MORE delivery, the
					   * notification CQE that follows completes it (zero-copy) */
	TIDE__OPF_OFFSET = 1u << 5,       /* takes a file offset, -1 (the current position) by default */
};

struct io_uring_sqe;

/* Everything tide knows about one op kind (src/io/opdef.c). */
struct tide__opdef {
	const char *name;     /* as TIDE_DISABLE_OPS spells it */
	uint8_t opcode;       /* IORING_OP_* the probe must have for the native path (0: none) */
	uint8_t also;         /* a second opcode it must have (0: none) */
	uint8_t base;         /* a kind that must be native too (multishot variants; 0: none) */
	uint8_t cancel_opcode; /* how the native op is cancelled (0: ASYNC_CANCEL) */
	uint8_t fallback;     /* the path without the opcode: READINESS, LOOP or TIDE__NO_PATH */
	uint16_t flags;       /* TIDE__OPF_* */
	uint32_t events;      /* what the readiness path waits for (0: the op's own events) */
	/* Decides op->path itself (read and write look at the fd); NULL:
	 * native, else fallback. Returns 0 or the op's failure. */
	int (*route)(struct tide__op *op, bool native);
	/* On the fallback path, at submit: -EINPROGRESS once started (then it
	 * waits), else the op's result now. NULL: a loop-path op performs at
	 * once, a readiness-path op waits. */
	int (*start)(struct tide__op *op);
	/* The non-blocking step: the result, or -EAGAIN to wait again. */
	int (*perform)(struct tide__op *op);
	/* The executor path's blocking call (a job's function). */
	int64_t (*blocking)(void *op);
	/* The native path's SQE. */
	void (*prep)(struct io_uring_sqe *sqe, struct tide__op *op);
	/* A loop-path op in flight is cancelled here (a timeout's timer). */
	void (*loop_cancel)(struct tide__op *op);
	/* Valgrind: marks what the kernel wrote for a native op's result. */
	void (*defined)(struct tide__op *op, int res);
	/* Frees what the op owns, when it goes back to the free list. */
	void (*release)(struct tide__op *op);
};

extern const struct tide__opdef tide__opdefs[];
/* The kind called name[0..len), or -1. */
int tide__opdef_find(const char *name, size_t len);

/* The families' functions the table names (op-rw.c, op-poll.c,
 * op-timeout.c, op-net.c). */
int tide__rw_route(struct tide__op *op, bool native);
int tide__rw_perform(struct tide__op *op);
int64_t tide__rw_blocking(void *op);
void tide__rw_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__read_ms_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__buf_defined(struct tide__op *op, int res);
void tide__poll_prep(struct io_uring_sqe *sqe, struct tide__op *op);
int tide__timeout_start(struct tide__op *op);
void tide__timeout_cancel(struct tide__op *op);
void tide__timeout_prep(struct io_uring_sqe *sqe, struct tide__op *op);
int tide__connect_start(struct tide__op *op);
int tide__connect_perform(struct tide__op *op);
void tide__connect_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__connect_release(struct tide__op *op);
int tide__accept_perform(struct tide__op *op);
int tide__recv_perform(struct tide__op *op);
int tide__send_perform(struct tide__op *op);
int tide__sendmsg_perform(struct tide__op *op);
int tide__recvmsg_perform(struct tide__op *op);
int tide__shutdown_perform(struct tide__op *op);
int tide__close_perform(struct tide__op *op);
void tide__accept_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__accept_ms_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__recv_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__recv_ms_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__send_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__send_zc_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__sendmsg_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__recvmsg_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__shutdown_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__close_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__accept_defined(struct tide__op *op, int res);
void tide__recvmsg_defined(struct tide__op *op, int res);
int tide__waitid_route(struct tide__op *op, bool native);
int tide__waitid_start(struct tide__op *op);
int tide__waitid_perform(struct tide__op *op);
void tide__waitid_prep(struct io_uring_sqe *sqe, struct tide__op *op);
void tide__waitid_cancel(struct tide__op *op);
void tide__waitid_defined(struct tide__op *op, int res);

/* ------------------------------------------------------------ children -- */

/*
 * What a child is started with (spawn.c). The caller resolved the options:
 * every fd here is open, and stdio sources are 3 or above (dup'ed up), so
 * that putting one into place never overwrites another.
 */
enum { TIDE__STDIO_KEEP = -1, TIDE__STDIO_TO_STDOUT = -2 };
struct tide__spawn_req {
	const char *const *argv;    /* argv[0] is looked up in PATH unless it holds a '/' */
	const char *const *envp;    /* NULL: environ */
	const char *cwd;            /* NULL: the parent's */
	int stdio[3];               /* the fd each of 0, 1, 2 becomes, or TIDE__STDIO_KEEP, or
				     * (2 only) TIDE__STDIO_TO_STDOUT */
	const int *keep;            /* pass_fds: kept open, at the same numbers */
	size_t nkeep;
	bool setsid;                /* start_new_session */
	bool setpgid;               /* setpgid(0, pgid) */
	pid_t pgid;
};

/*
 * Starts a child: its pid and a pidfd (close-on-exec), or -1 in *pidfd
 * where the kernel gives none. A failed exec, chdir or dup is the
 * return, -errno, with the child already reaped.
 */
int tide__spawn(const struct tide__spawn_req *r, pid_t *pid, int *pidfd);

/*
 * A child the loop reaps (op-proc.c). Its op is the waitid that reaps it:
 * IORING_OP_WAITID on its pidfd, the pidfd's readiness then
 * waitid(WNOHANG), or with no pidfd SIGCHLD then waitpid(pid, WNOHANG).
 * The owner (a subprocess transport, a process) hears the exit through
 * exited(), on the loop thread, never from inside tide__child_spawn;
 * an owner that goes first releases the child, which the loop then reaps
 * alone, or hands to a reaper thread at tide_loop_free.
 */
struct tide__child;
typedef void (*tide__child_cb)(struct tide__child *c, void *owner);
struct tide__child {
	struct tide__op op;         /* the reaping op; fd is the pidfd, -1 without */
	struct tide__list link;     /* in loop->children until reaped */
	pid_t pid;
	bool reaped;                /* code holds the return code; pid may be reused */
	bool released;              /* the owner let go: the loop frees it once reaped */
	int code;                   /* exit status, or minus the killing signal */
	tide__child_cb exited;      /* the owner's, until released */
	void *owner;
	siginfo_t info;             /* the kernel's until the op completes (the exit is written here) */
};

/* Spawns (tide__spawn) and starts reaping; exited(c, owner) later. */
int tide__child_spawn(struct tide_loop *loop, const struct tide__spawn_req *r, tide__child_cb exited, void *owner,
		      struct tide__child **out);
/* The owner lets go: freed now if reaped, else by the loop once reaped. */
void tide__child_release(struct tide__child *c);
/* Sends signo (pidfd_send_signal where there is a pidfd): 0, -ESRCH once
 * reaped, -EINVAL for a bad signal. */
int tide__child_signal(struct tide__child *c, int signo);
/* tide_loop_free: cancels the reaping ops and hands the children left to
 * a detached reaper thread (they run on, and are reaped when they exit). */
void tide__children_abandon(struct tide_loop *loop);

/* ------------------------------------------------------------- executor -- */

/* An executor job; its completion crosses back through the threadsafe queue. */
struct tide__job {
	struct tide__tsnode node;   /* completion delivery to the loop (must be first) */
	struct tide__list qlink;    /* in the executor's queue (under its lock) */
	struct tide__job *next;     /* the loop's free list */
	struct tide_executor *ex;
	struct tide_loop *loop;
	tide_job_cb fn;             /* user job, or NULL with op set */
	void *arg;
	struct tide__op *op;        /* executor-path op, or NULL */
	struct tide_future *fut;    /* user job: the future (a reference) */
	int64_t result;
	int state;                  /* queued, running or cancelled (under the executor's lock) */
	bool queued_only;           /* TIDE_JOB_CANCEL_QUEUED_ONLY: a running job refuses cancel */
};

int tide__executor_submit(struct tide_loop *loop, struct tide_executor *ex, struct tide__job *job);
/* Removes a job that has not started; returns 1 if removed. */
int tide__executor_unqueue(struct tide__job *job);
/* A forked child's copy of an executor: its memory only (executor.c). */
void tide__executor_forget(struct tide_executor *ex);
struct tide_executor *tide__loop_executor(struct tide_loop *loop, int *err);
/* io.c: the loop's read on its wake-up eventfd, armed by tide__io_open. */
void tide__wake_disarm(struct tide_loop *loop);
extern const struct tide__backend_ops tide__backend_uring;
extern const struct tide__backend_ops tide__backend_epoll;

#endif /* TIDE_IO_H */
