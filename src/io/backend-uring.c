/* SPDX-License-Identifier: MIT */
/*
 * backend-uring.c: the completion backend. An op becomes one SQE whose CQE
 * carries its result; an op whose opcode the running kernel lacks (or that
 * TIDE_DISABLE_OPS masks) takes the readiness path: POLL_ADD, then the
 * non-blocking perform of op.c, re-armed on EAGAIN.
 *
 * The hard parts: an SQE is never refused (a full SQ is flushed, and an op
 * that still finds no room waits on a backlog drained at the next wait);
 * no CQE is lost (CQEs are copied out and the CQ advanced before any
 * completion runs, and an overflowed CQ is flushed with GETEVENTS); and a
 * loop may be driven by one thread and later by another, so the ring is
 * bound to none (no SINGLE_ISSUER, DEFER_TASKRUN or registered ring fd,
 * which all tie it to one task), and an op whose submitting thread exited,
 * which the kernel then cancels, is submitted again by the present one.
 */
#include "io/io.h"
#include "io/compat-uring.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define CQE_BATCH 128
/* user_data of SQEs whose CQE carries nothing to deliver (cancel requests). */
#define UD_IGNORE 0
/* user_data of a POLL_REMOVE (the cancel where ASYNC_CANCEL is missing or
 * masked), whose result is looked at: -EALREADY means the poll was busy
 * with a wake-up, which may re-arm it, and the cancel must go again. Ops
 * are aligned, so 1 is no op's address. */
#define UD_POLL_REMOVE 1

struct uring_bd {
	struct io_uring ring;
	/* The thread that last entered the ring, and a count of changes of
	 * it: an op records the count when its SQE is prepared (sub_gen). */
	pthread_t driver;
	uint32_t driver_gen;
	bool have_async_cancel;     /* IORING_OP_ASYNC_CANCEL in the probe (unmasked) */
	bool native[TIDE_OP_KIND_MAX]; /* op kind runs as its own SQE */
	unsigned setup_flags;       /* what io_uring_setup accepted */
	struct tide__op *backlog;   /* ops that found no SQE even after a flush */
	struct tide__op **backlog_tailp;
	struct tide__op *cancel_backlog; /* in-flight ops whose cancel SQE found no room */
	/* In-flight ops a POLL_REMOVE went for (linked through next, as the
	 * backlog is: free while in flight), until their final completion;
	 * after a POLL_REMOVE came back -EALREADY (poll_retry) they all get
	 * another one, since which op it was for cannot be told safely. */
	struct tide__op *poll_removing;
	bool poll_retry;
	/* The provided-buffer ring (group 0) multishot receives draw from. */
	struct io_uring_buf_ring *br; /* the ring the kernel reads buffer addresses from */
	char *pbufs;                /* count * size bytes, touched only as the kernel fills them */
	size_t br_bytes;            /* the ring's mapping length */
	unsigned br_mask;           /* count - 1 */
	/* TIDE_FAULT_ENTER (enter_fault): a testing aid, 0 in production. */
	unsigned fault_pct;         /* percent of enter calls failed on purpose */
	uint64_t fault_seed;        /* the generator's first state, for the report */
	uint64_t fault_rng;         /* splitmix64 state */
	uint64_t enters;            /* enter calls seen while faults were on */
	uint64_t faults[3];         /* EINTR, EAGAIN, EBUSY injected */
};


static struct uring_bd *bd_of(const struct tide_loop *loop)
{
	return loop->bd;
}

/*
 * TIDE_FAULT_ENTER: before each call into liburing that enters the kernel,
 * a share of them fail here with EINTR, EAGAIN or EBUSY, as if
 * io_uring_enter had said so without doing anything, so that tests prove
 * the backend rides out every such answer. Always built in: off, it costs
 * one load and one predicted branch beside a system call, and every build
 * (the sanitizer one too) can then be tested with it. The report at
 * uring_fini names the seed, with which TIDE_FAULT_ENTER=PCT:SEED repeats
 * a loop's faults.
 */
static TIDE__OUTLINE __attribute__((cold)) int enter_fault_roll(struct tide_loop *loop, struct uring_bd *bd)
{
	static const int errs[3] = { -EINTR, -EAGAIN, -EBUSY };
	uint64_t x;
	unsigned which;

	bd->enters++;
	x = bd->fault_rng += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	x ^= x >> 31;
	if (x % 100 >= bd->fault_pct)
		return 0;
	which = (unsigned)(x / 100 % 3);
	bd->faults[which]++;
	loop->stats.enter_faults++;
	return errs[which];
}

static inline int enter_fault(struct tide_loop *loop, struct uring_bd *bd)
{
	return TIDE__UNLIKELY(bd->fault_pct) ? enter_fault_roll(loop, bd) : 0;
}

/* The first line of a /proc file, without its newline ("" if unreadable). */
static void read_proc(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* Whether a seccomp filter is installed on this thread (Seccomp: 2). */
static bool seccomp_filtered(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	bool on = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Seccomp:", 8)) {
			on = atoi(line + 8) == 2;
			break;
		}
	fclose(f);
	return on;
}

/*
 * Why io_uring_setup failed, in words a user can act on: the errno and the
 * setting behind it (the sysctl, a seccomp filter, the locked-memory
 * limit), read from /proc and the process's limits.
 */
static void explain_setup_error(const struct tide_loop *loop, int err, char *buf, size_t len)
{
	char dis[16], grp[32];
	struct rlimit rl;

	switch (err) {
	case -EPERM:
		read_proc("/proc/sys/kernel/io_uring_disabled", dis, sizeof(dis));
		if (!strcmp(dis, "2")) {
			snprintf(buf, len, "EPERM: the sysctl kernel.io_uring_disabled is 2 (io_uring is off for every process)");
		} else if (!strcmp(dis, "1")) {
			read_proc("/proc/sys/kernel/io_uring_group", grp, sizeof(grp));
			snprintf(buf, len, "EPERM: the sysctl kernel.io_uring_disabled is 1 and this process is not "
				 "root nor in the group kernel.io_uring_group (gid %s)", grp[0] ? grp : "?");
		} else if (seccomp_filtered()) {
			snprintf(buf, len, "EPERM: a seccomp filter denies io_uring_setup (Docker's and Podman's "
				 "default profiles do)");
		} else {
			snprintf(buf, len, "EPERM: io_uring_setup was refused (no seccomp filter, "
				 "kernel.io_uring_disabled is %s: a security module?)", dis[0] ? dis : "absent");
		}
		break;
	case -ENOSYS:
		snprintf(buf, len, "ENOSYS: %s", seccomp_filtered()
			 ? "a seccomp filter answers io_uring_setup with ENOSYS, or the kernel has no io_uring"
			 : "this kernel has no io_uring (older than 5.1, or built without CONFIG_IO_URING)");
		break;
	case -ENOMEM:
		if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
			snprintf(buf, len, "ENOMEM: no memory for a ring of %u entries; the locked-memory limit "
				 "(RLIMIT_MEMLOCK, ulimit -l) is %llu KiB, and kernels before 5.12 charge rings to it",
				 loop->ring_entries, (unsigned long long)rl.rlim_cur / 1024);
		else
			snprintf(buf, len, "ENOMEM: no memory for a ring of %u entries", loop->ring_entries);
		break;
	case -EMFILE:
	case -ENFILE:
		snprintf(buf, len, "%s: no file descriptor left for the ring (RLIMIT_NOFILE)",
			 err == -EMFILE ? "EMFILE" : "ENFILE");
		break;
	case -EINVAL:
		snprintf(buf, len, "EINVAL: the kernel refused a ring of %u entries with every set of setup flags",
			 loop->ring_entries);
		break;
	default:
		snprintf(buf, len, "%s (%d)", strerror(-err), err);
	}
}

/* "EPERM" for -EPERM (glibc 2.32's strerrorname_np), or the number. */
static const char *errname(int err, char *buf, size_t len)
{
	const char *n = strerrorname_np(-err);

	if (n)
		return n;
	snprintf(buf, len, "errno %d", -err);
	return buf;
}

/*
 * Some seccomp profiles allow io_uring_setup but deny io_uring_enter or
 * io_uring_register (the opcode probe is a register call): the ring exists
 * but cannot be driven, and the loop must learn it now, while epoll can
 * still take over, not at its first wait. Writes the reason and returns
 * the refusal, or 0. An enter that submits and waits for nothing reaches
 * the kernel and does nothing (EBADFD, from a ring set up R_DISABLED,
 * which tide's is not, would say the call was let through all the same).
 */
static int ring_calls_allowed(struct tide_loop *loop, struct uring_bd *bd, struct io_uring_probe **probe)
{
	const size_t psz = sizeof(**probe) + 256 * sizeof((*probe)->ops[0]);
	const char *call = "io_uring_enter";
	char nb[24];
	int err = 0;

	*probe = NULL;
	if (syscall(__NR_io_uring_enter, bd->ring.ring_fd, 0, 0, 0, NULL, 0) < 0 && errno != EBADFD)
		err = -errno;
	if (!err) {
		call = "io_uring_register";
		if (!(*probe = tide__calloc(1, psz)))
			return -ENOMEM;
		err = io_uring_register_probe(&bd->ring, *probe, 256);
		if (err > 0)
			err = 0;
		if (err == -EINVAL) {
			/* The call went through: this kernel has no probe (before 5.6). */
			tide__free(*probe);
			*probe = NULL;
			snprintf(loop->reason, sizeof(loop->reason),
				 "io_uring_register: EINVAL: this kernel cannot report its opcodes (older than 5.6)");
			return -ENOSYS;
		}
	}
	if (!err)
		return 0;
	tide__free(*probe);
	*probe = NULL;
	snprintf(loop->reason, sizeof(loop->reason), "%s denied: %s, though io_uring_setup was allowed (%s)",
		 call, errname(err, nb, sizeof(nb)),
		 seccomp_filtered() ? "a seccomp filter denies it" : "no seccomp filter: a security module?");
	return err;
}

/*
 * The setup flags, newest first; EINVAL means the kernel does not know a
 * flag. Not SINGLE_ISSUER nor DEFER_TASKRUN: they bind the ring to the
 * task that first submits (any other gets EEXIST), and a loop may be
 * driven by another thread later. What they saved, measured with
 * bench/ab (DESIGN.md), is a few per cent of the CPU time per message.
 */
static int ring_setup(struct tide_loop *loop, struct uring_bd *bd)
{
	static const unsigned tries[] = {
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		0,
	};
	unsigned i;
	int err = -EINVAL;

	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p = { .flags = tries[i] };
		err = io_uring_queue_init_params(loop->ring_entries, &bd->ring, &p);
		if (err == 0) {
			bd->setup_flags = tries[i];
			return 0;
		}
		if (err != -EINVAL)
			break;
	}
	return err;
}

/*
 * Which kinds run as their own SQE: each row of the op table names the
 * opcodes the probe must show, whether it also needs ASYNC_CANCEL (an op
 * that may wait forever must be cancellable), and a base kind that must be
 * native too; TIDE_DISABLE_OPS masks what it names.
 */
static void probe_ops(struct tide_loop *loop, struct uring_bd *bd, struct io_uring_probe *p)
{
	uint64_t off = loop->disabled_ops;
	int k;
#define HAS(opc) (p && io_uring_opcode_supported(p, (opc)))

	/* First the cancel that the others may need. */
	bd->native[TIDE_OP_CANCEL] = HAS(tide__opdefs[TIDE_OP_CANCEL].opcode) && !(off & (1ull << TIDE_OP_CANCEL));
	bd->have_async_cancel = bd->native[TIDE_OP_CANCEL];
	/* In the table's order: a multishot variant's base comes before it. */
	for (k = 0; k < TIDE__OP_KINDS; k++) {
		const struct tide__opdef *d = &tide__opdefs[k];

		if (k == TIDE_OP_CANCEL)
			continue;
		bd->native[k] = d->opcode && HAS(d->opcode) && (!d->also || HAS(d->also)) &&
				(!(off & (1ull << k)) || (d->flags & TIDE__OPF_UNMASKABLE)) &&
				(!(d->flags & TIDE__OPF_NEEDS_CANCEL) || bd->have_async_cancel) &&
				(!d->base || bd->native[d->base]);
	}
#undef HAS
}

/*
 * Maps and registers the provided-buffer ring. The buffers are a
 * MAP_NORESERVE mapping: a page costs memory only once the kernel wrote
 * into it, so a big ring on a quiet loop is cheap.
 */
static int pbuf_setup(struct tide_loop *loop, struct uring_bd *bd)
{
	unsigned n = loop->recv_buf_count, i;
	size_t sz = loop->recv_buf_size;
	struct io_uring_buf_reg reg = { 0 };
	int err;

	bd->br_bytes = ((size_t)n * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
	bd->br = mmap(NULL, bd->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (bd->br == MAP_FAILED) {
		bd->br = NULL;
		return -ENOMEM;
	}
	bd->pbufs = mmap(NULL, (size_t)n * sz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (bd->pbufs == MAP_FAILED) {
		munmap(bd->br, bd->br_bytes);
		bd->br = NULL;
		bd->pbufs = NULL;
		return -ENOMEM;
	}
	reg.ring_addr = (uint64_t)(uintptr_t)bd->br;
	reg.ring_entries = n;
	reg.bgid = TIDE__PBUF_GROUP;
	err = io_uring_register_buf_ring(&bd->ring, &reg, 0);
	if (err) {
		munmap(bd->pbufs, (size_t)n * sz);
		munmap(bd->br, bd->br_bytes);
		bd->br = NULL;
		bd->pbufs = NULL;
		return err;
	}
	bd->br_mask = (unsigned)io_uring_buf_ring_mask(n);
	io_uring_buf_ring_init(bd->br);
	for (i = 0; i < n; i++)
		io_uring_buf_ring_add(bd->br, bd->pbufs + (size_t)i * sz, (unsigned)sz, (unsigned short)i,
				      (int)bd->br_mask, (int)i);
	io_uring_buf_ring_advance(bd->br, (int)n);
	return 0;
}

static void uring_pbuf_recycle(struct tide_loop *loop, unsigned bid)
{
	struct uring_bd *bd = bd_of(loop);

	io_uring_buf_ring_add(bd->br, bd->pbufs + (size_t)bid * loop->recv_buf_size,
			      (unsigned)loop->recv_buf_size, (unsigned short)bid, (int)bd->br_mask, 0);
	io_uring_buf_ring_advance(bd->br, 1);
}

static int uring_init(struct tide_loop *loop, const struct tide_loop_opts *opts)
{
	struct uring_bd *bd = tide__calloc(1, sizeof(*bd));
	struct io_uring_probe *probe;
	int err;

	if (!bd)
		return -ENOMEM;
	err = ring_setup(loop, bd);
	if (err) {
		char why[sizeof(loop->reason) - 16];

		explain_setup_error(loop, err, why, sizeof(why));
		snprintf(loop->reason, sizeof(loop->reason), "io_uring_setup: %s", why);
		tide__free(bd);
		return err;
	}
	err = ring_calls_allowed(loop, bd, &probe);
	if (err) {
		io_uring_queue_exit(&bd->ring);
		tide__free(bd);
		return err;
	}
	probe_ops(loop, bd, probe);
	tide__free(probe);
	if (!bd->native[TIDE_OP_POLL]) {
		/* The readiness path itself is missing: this kernel is too old. */
		io_uring_queue_exit(&bd->ring);
		tide__free(bd);
		snprintf(loop->reason, sizeof(loop->reason), "io_uring lacks IORING_OP_POLL_ADD");
		return -ENOSYS;
	}
	/* Both multishot reads draw from the ring: without it, plain reads. */
	if ((bd->native[TIDE_OP_RECV_MULTISHOT] || bd->native[TIDE_OP_READ_MULTISHOT]) && pbuf_setup(loop, bd) < 0)
		bd->native[TIDE_OP_RECV_MULTISHOT] = bd->native[TIDE_OP_READ_MULTISHOT] = false;
	bd->backlog_tailp = &bd->backlog;
	/* After the checks above, which must see the kernel's own answers. */
	if ((bd->fault_pct = loop->fault_enter)) {
		/* The given seed, or one of the process's own per loop. */
		static uint64_t loops;

		bd->fault_seed = loop->fault_seeded ? loop->fault_seed
			: ((uint64_t)getpid() << 20) + __atomic_fetch_add(&loops, 1, __ATOMIC_RELAXED);
		bd->fault_rng = bd->fault_seed;
	}
	loop->bd = bd;
	snprintf(loop->reason, sizeof(loop->reason), "io_uring available (%s%s%s)",
		 bd->setup_flags & IORING_SETUP_COOP_TASKRUN ? "COOP_TASKRUN" : "no setup flags",
		 bd->setup_flags & IORING_SETUP_TASKRUN_FLAG ? "|TASKRUN_FLAG" : "",
		 loop->disabled_ops ? ", ops masked by TIDE_DISABLE_OPS" : "");
	return 0;
}

/*
 * The calling thread is about to enter the ring: the requests it submits
 * become its own (the kernel cancels them if it exits). A change of thread
 * moves driver_gen on. pthread_self is a read of the thread pointer.
 */
static inline void note_driver(struct uring_bd *bd)
{
	pthread_t self = pthread_self();

	if (TIDE__UNLIKELY(!pthread_equal(self, bd->driver))) {
		bd->driver = self;
		bd->driver_gen++;
	}
}

/* Hands the SQ to the kernel, riding out EINTR; EBUSY/EAGAIN mean "reap first". */
static int ring_flush(struct tide_loop *loop, struct uring_bd *bd)
{
	int r;

	note_driver(bd);
	do
		r = enter_fault(loop, bd) ?: io_uring_submit(&bd->ring);
	while (r == -EINTR);
	return r;
}

static struct io_uring_sqe *get_sqe(struct tide_loop *loop, struct uring_bd *bd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&bd->ring);

	if (TIDE__LIKELY(sqe != NULL))
		return sqe;
	loop->stats.sq_full_waits++;
	ring_flush(loop, bd);
	return io_uring_get_sqe(&bd->ring);
}

/* Fills an SQE for op; false when there is no room (the op goes to the backlog). */
static bool prep_op(struct tide_loop *loop, struct uring_bd *bd, struct tide__op *op)
{
	struct io_uring_sqe *sqe = get_sqe(loop, bd);

	if (!sqe)
		return false;
	if (op->path == TIDE_PATH_READINESS)
		io_uring_prep_poll_add(sqe, op->fd, tide__op_wait_events(op));
	else
		tide__opdefs[op->kind].prep(sqe, op);
	io_uring_sqe_set_data(sqe, op);
	op->sub_gen = bd->driver_gen;
	return true;
}

static void backlog_add(struct uring_bd *bd, struct tide__op *op)
{
	op->next = NULL;
	*bd->backlog_tailp = op;
	bd->backlog_tailp = &op->next;
}

static int uring_submit(struct tide_loop *loop, struct tide__op *op)
{
	struct uring_bd *bd = bd_of(loop);

	/* Keep FIFO with ops already waiting for room. */
	if (TIDE__UNLIKELY(bd->backlog != NULL) || !prep_op(loop, bd, op))
		backlog_add(bd, op);
	return 0;
}

static void drain_backlog(struct tide_loop *loop, struct uring_bd *bd)
{
	struct tide__op *op;

	while ((op = bd->backlog)) {
		if (!prep_op(loop, bd, op))
			return;
		bd->backlog = op->next;
		if (!bd->backlog)
			bd->backlog_tailp = &bd->backlog;
		op->next = NULL;
	}
}

static bool prep_cancel(struct tide_loop *loop, struct uring_bd *bd, struct tide__op *op);

static void uring_cancel(struct tide_loop *loop, struct tide__op *op)
{
	struct uring_bd *bd = bd_of(loop);
	struct tide__op **pp;

	/* Still in the backlog: the kernel never saw it. */
	for (pp = &bd->backlog; *pp; pp = &(*pp)->next) {
		if (*pp == op) {
			*pp = op->next;
			if (!bd->backlog)
				bd->backlog_tailp = &bd->backlog;
			else if (!op->next)
				bd->backlog_tailp = pp;
			tide__op_complete(op, -ECANCELED);
			return;
		}
	}
	if (!prep_cancel(loop, bd, op)) {
		/* No room even after a flush: the cancel waits for the next
		 * wait, which has reaped (op->next is free while in flight). */
		op->next = bd->cancel_backlog;
		bd->cancel_backlog = op;
	}
}

/* The cancel SQE for op; false when the SQ has no room. */
static bool prep_cancel(struct tide_loop *loop, struct uring_bd *bd, struct tide__op *op)
{
	struct io_uring_sqe *sqe = get_sqe(loop, bd);

	if (!sqe)
		return false;
	/* TIMEOUT_REMOVE and ASYNC_CANCEL never lose a cancel: when they
	 * miss (-ENOENT, -EALREADY, -EBUSY) the op is completing already. */
	if (op->path == TIDE_PATH_URING && tide__opdefs[op->kind].cancel_opcode == IORING_OP_TIMEOUT_REMOVE) {
		io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)op, 0);
		io_uring_sqe_set_data64(sqe, UD_IGNORE);
	} else if (bd->have_async_cancel) {
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
		io_uring_sqe_set_data64(sqe, UD_IGNORE);
	} else {
		io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)op);
		io_uring_sqe_set_data64(sqe, UD_POLL_REMOVE);
		op->next = bd->poll_removing;
		bd->poll_removing = op;
	}
	loop->stats.ops_submitted[TIDE_OP_CANCEL][TIDE_PATH_URING]++;
	return true;
}

static void drain_cancel_backlog(struct tide_loop *loop, struct uring_bd *bd)
{
	struct tide__op *op;

	while ((op = bd->cancel_backlog) && prep_cancel(loop, bd, op)) {
		bd->cancel_backlog = op->next;
		op->next = NULL;
	}
}

/* A final completion takes its op off the cancel backlog and the
 * POLL_REMOVE list: a cancel aimed at it later would hit whatever reuses
 * its memory. */
static void cancel_backlog_forget(struct uring_bd *bd, struct tide__op *op)
{
	struct tide__op **lists[] = {&bd->cancel_backlog, &bd->poll_removing}, **pp;

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		for (pp = lists[i]; *pp; pp = &(*pp)->next)
			if (*pp == op) {
				*pp = op->next;
				op->next = NULL;
				return;
			}
}

/* A POLL_REMOVE came back -EALREADY: every op still waiting for its
 * POLL_REMOVE's effect gets another (the kernel tells which are gone by
 * -ENOENT; their final completions took them off the list). */
static void poll_remove_again(struct uring_bd *bd)
{
	struct tide__op *op;

	bd->poll_retry = false;
	while ((op = bd->poll_removing)) {
		bd->poll_removing = op->next;
		op->next = bd->cancel_backlog;
		bd->cancel_backlog = op;
	}
}

/*
 * An op's request came back -ECANCELED (or -EINTR, from an io-wq worker
 * stopped) though nobody cancelled it, and a thread other than the one
 * driving the loop now prepared it: io_uring cancels a task's requests
 * when the task exits, when they would complete (a poll that fires) or at
 * once (io-wq work). The op still owns its memory and the request did
 * nothing, so the present driver submits it again, as its own; a thread
 * change lets each op through here once, never in a loop. (A connect is
 * cancelled so when its poll fires, that is once the handshake is over:
 * connect(2) issued again then says 0, or the handshake's error.)
 */
static bool orphaned(const struct uring_bd *bd, const struct tide__op *op, int res)
{
	return TIDE__UNLIKELY(res == -ECANCELED || res == -EINTR) && !(op->flags & TIDE__OP_CANCELLING) &&
	       op->sub_gen != bd->driver_gen;
}

static void resubmit_orphan(struct tide_loop *loop, struct uring_bd *bd, struct tide__op *op)
{
	op->flags &= ~(TIDE__OP_ZC_RESULT | TIDE__OP_PBUF | TIDE__OP_ORPHAN);
	if (TIDE__UNLIKELY(bd->backlog != NULL) || !prep_op(loop, bd, op))
		backlog_add(bd, op);
}

/* One CQE: deliver, or perform after readiness and re-arm on EAGAIN. */
static void handle_cqe(struct tide_loop *loop, struct uring_bd *bd, uint64_t ud, int res, uint32_t cflags)
{
	struct tide__op *op = (struct tide__op *)(uintptr_t)ud;

	if (ud == LIBURING_UDATA_TIMEOUT)
		return; /* liburing's own wait timeout on kernels without EXT_ARG */
	if (ud == UD_IGNORE) {
		loop->stats.ops_completed[TIDE_OP_CANCEL][TIDE_PATH_URING]++;
		return;
	}
	if (ud == UD_POLL_REMOVE) {
		loop->stats.ops_completed[TIDE_OP_CANCEL][TIDE_PATH_URING]++;
		/* The poll was busy with a wake-up (its task work owns it): if
		 * what woke it is gone when it looks, it re-arms, and this
		 * cancel would be lost. 0 (removed) and -ENOENT (completing,
		 * or done) need nothing more. */
		if (res == -EALREADY)
			bd->poll_retry = true;
		return;
	}
	/* A multishot receive's data is in a ring buffer: the op gets its
	 * address and id, never the CQE's flags. */
	if (cflags & IORING_CQE_F_BUFFER) {
		unsigned bid = cflags >> IORING_CQE_BUFFER_SHIFT;

		op->bid = bid;
		op->buf = bd->pbufs + (size_t)bid * loop->recv_buf_size;
		op->flags |= TIDE__OP_PBUF;
	} else if (TIDE__UNLIKELY(op->flags & TIDE__OP_PBUF)) {
		op->flags &= ~TIDE__OP_PBUF;
	}
	if (TIDE__UNLIKELY(cflags & (IORING_CQE_F_MORE | IORING_CQE_F_NOTIF))) {
		if (!(tide__opdefs[op->kind].flags & TIDE__OPF_NOTIF)) {
			/* One result of a multishot op; more follow. */
			tide__op_deliver_more(op, res);
			return;
		}
		/* Zero-copy: the result comes first (F_MORE), and the owner
		 * sees it at once (the bytes are sent, the next send may go);
		 * then the notification that the kernel let go of the buffer
		 * completes the op, its result reduced to TIDE__ZC_COPIED. */
		if (!(cflags & IORING_CQE_F_NOTIF)) {
			/* Cancelled with its thread (orphaned, above): it sent
			 * nothing, and its notification, which still follows,
			 * is where it goes again; the owner sees neither. */
			if (orphaned(bd, op, res)) {
				op->flags |= TIDE__OP_ORPHAN;
				return;
			}
			op->flags |= TIDE__OP_ZC_RESULT;
			tide__op_deliver_more(op, res);
			return;
		}
		if (TIDE__UNLIKELY(op->flags & TIDE__OP_ORPHAN)) {
			resubmit_orphan(loop, bd, op);
			return;
		}
		res = (uint32_t)res & IORING_NOTIF_USAGE_ZC_COPIED ? TIDE__ZC_COPIED : 0;
	}
	if (TIDE__UNLIKELY(bd->cancel_backlog != NULL || bd->poll_removing != NULL))
		cancel_backlog_forget(bd, op);
	if (orphaned(bd, op, res)) {
		resubmit_orphan(loop, bd, op);
		return;
	}
	if (op->path == TIDE_PATH_READINESS && res >= 0) {
		res = tide__op_perform(op);
		if (res == -EAGAIN) {
			/* Spurious readiness. A cancel aimed at the poll that just
			 * finished would miss the re-armed one: honour it now. */
			if (op->flags & TIDE__OP_CANCELLING)
				res = -ECANCELED;
			else {
				if (!prep_op(loop, bd, op))
					backlog_add(bd, op);
				return;
			}
		}
	}
	tide__op_complete(op, res);
}

/*
 * The kernel parked CQEs that did not fit: have it flush them. False when
 * it refused: the flag stays up, and the next wait's enter flushes them
 * (the caller gets what came so far).
 */
static TIDE__OUTLINE bool flush_overflow(struct tide_loop *loop, struct uring_bd *bd)
{
	int r;

	loop->stats.cq_overflows++;
	do
		r = enter_fault(loop, bd) ?: io_uring_get_events(&bd->ring);
	while (r == -EINTR);
	return r >= 0;
}

/* Copies CQEs out and advances the CQ before running any completion. */
static unsigned reap(struct tide_loop *loop, struct uring_bd *bd)
{
	struct { uint64_t ud; int res; uint32_t flags; } batch[CQE_BATCH];
	unsigned total = 0;

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0, i;

		io_uring_for_each_cqe(&bd->ring, head, cqe) {
			batch[n].ud = cqe->user_data;
			batch[n].res = cqe->res;
			batch[n].flags = cqe->flags;
			if (++n == CQE_BATCH)
				break;
		}
		io_uring_cq_advance(&bd->ring, n);
		for (i = 0; i < n; i++)
			handle_cqe(loop, bd, batch[i].ud, batch[i].res, batch[i].flags);
		total += n;
		if (n == CQE_BATCH)
			continue;
		if (io_uring_cq_has_overflow(&bd->ring) && flush_overflow(loop, bd))
			continue;
		return total;
	}
}

/* One enter that submits what the SQ holds and waits up to timeout_ns
 * (UINT64_MAX: no limit) for a first completion, 0: not at all. */
static inline int enter_once(struct tide_loop *loop, struct uring_bd *bd, uint64_t timeout_ns)
{
	struct __kernel_timespec ts;
	struct io_uring_cqe *cqe;
	int r;

	if ((r = enter_fault(loop, bd)))
		return r;
	if (timeout_ns == 0)
		return io_uring_submit_and_get_events(&bd->ring);
	ts.tv_sec = (long long)(timeout_ns / 1000000000u);
	ts.tv_nsec = (long long)(timeout_ns % 1000000000u);
	return io_uring_submit_and_wait_timeout(&bd->ring, &cqe, 1, timeout_ns == UINT64_MAX ? NULL : &ts, NULL);
}

/* Refusals in a row, with nothing reaped between, before a wait gives up. */
#define ENTER_TRIES 1000

/*
 * The kernel's "not now" answers to enter_once never reach the loop as a
 * wait that did nothing: EINTR (a signal) is retried with the time left;
 * EAGAIN and EBUSY (no memory for a request now; completions the CQ has
 * no room for) are retried once the CQ was reaped, which is what EBUSY
 * asks for. If the reap found completions the wait is over: the loop runs
 * them, and what the SQ still holds rides the next enter (a refused enter
 * leaves its SQEs there: none is dropped). Only ENTER_TRIES refusals in a
 * row end the wait with the error, so a kernel that keeps refusing cannot
 * make the loop spin. Out of line: the common wait never gets here.
 */
static TIDE__OUTLINE int enter_refused(struct tide_loop *loop, struct uring_bd *bd, uint64_t timeout_ns, int r)
{
	/* The wait began at the loop's clock of this iteration (core reads it
	 * before a finite wait), so the wait itself read no clock. */
	const uint64_t deadline = timeout_ns > UINT64_MAX - loop->now ? UINT64_MAX : loop->now + timeout_ns;
	unsigned refused = 0;

	for (;;) {
		if (r != -EINTR && r != -EAGAIN && r != -EBUSY)
			return r;
		if (reap(loop, bd))
			return 0;
		if (r != -EINTR && ++refused == ENTER_TRIES)
			return r;
		if (timeout_ns != 0 && deadline != UINT64_MAX) {
			uint64_t now = tide__clock_ns();

			if (now >= deadline)
				return 0;
			timeout_ns = deadline - now;
		}
		r = enter_once(loop, bd, timeout_ns);
		if (r >= 0 || r == -ETIME) {
			reap(loop, bd);
			return 0;
		}
	}
}

static int uring_wait(struct tide_loop *loop, uint64_t timeout_ns)
{
	struct uring_bd *bd = bd_of(loop);
	int r;

	note_driver(bd);
	drain_backlog(loop, bd);
	if (TIDE__UNLIKELY(bd->poll_retry))
		poll_remove_again(bd);
	drain_cancel_backlog(loop, bd);
	if (timeout_ns == 0) {
		/* Callbacks are waiting: reap without sleeping, or not at all
		 * when no user op can have completed. */
		if (!tide__io_pending(loop) && !io_uring_sq_ready(&bd->ring) && !bd->backlog)
			return 0;
		/* Nothing to submit, and the kernel says it holds no completion
		 * (IORING_SQ_TASKRUN is set while task work waits to post one):
		 * the CQ ring already has all there is, so skip the syscall. */
		if (!io_uring_sq_ready(&bd->ring) && (bd->setup_flags & IORING_SETUP_TASKRUN_FLAG) &&
		    !(IO_URING_READ_ONCE(*bd->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))) {
			reap(loop, bd);
			return 0;
		}
	}
	r = enter_once(loop, bd, timeout_ns);
	loop->stats.backend_waits++;
	if (TIDE__UNLIKELY(r < 0) && r != -ETIME) {
		if ((r = enter_refused(loop, bd, timeout_ns, r)) < 0)
			return r;
	} else {
		reap(loop, bd);
	}
	/* Completions may have made room for what waited in the backlog. */
	if (bd->backlog) {
		drain_backlog(loop, bd);
		ring_flush(loop, bd);
	}
	return 0;
}

static void uring_fini(struct tide_loop *loop)
{
	struct uring_bd *bd = bd_of(loop);

	/* What the testing aid did, for the run that asked for it. */
	if (bd->fault_pct)
		fprintf(stderr, "tide: TIDE_FAULT_ENTER=%u:%llu: %llu of %llu io_uring_enter calls failed on purpose "
			"(EINTR %llu, EAGAIN %llu, EBUSY %llu)\n", bd->fault_pct, (unsigned long long)bd->fault_seed,
			(unsigned long long)(bd->faults[0] + bd->faults[1] + bd->faults[2]),
			(unsigned long long)bd->enters, (unsigned long long)bd->faults[0],
			(unsigned long long)bd->faults[1], (unsigned long long)bd->faults[2]);

	io_uring_queue_exit(&bd->ring);
	if (bd->br) {
		munmap(bd->pbufs, (size_t)loop->recv_buf_count * loop->recv_buf_size);
		munmap(bd->br, bd->br_bytes);
	}
	tide__free(bd);
	loop->bd = NULL;
}

static bool uring_native(const struct tide_loop *loop, int kind)
{
	return bd_of(loop)->native[kind];
}

const struct tide__backend_ops tide__backend_uring = {
	.name = "io_uring",
	.init = uring_init,
	.fini = uring_fini,
	.submit = uring_submit,
	.cancel = uring_cancel,
	.wait = uring_wait,
	.native = uring_native,
	.pbuf_recycle = uring_pbuf_recycle,
};
