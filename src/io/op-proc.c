/* SPDX-License-Identifier: MIT */
/*
 * op-proc.c: the waitid op family and the children the loop reaps. A
 * child's exit is one op: IORING_OP_WAITID on its pidfd where the probe
 * has it (6.7; prepared by hand for liburing 2.3), else the pidfd's
 * readiness then waitid(P_PIDFD, WNOHANG), and a child without a pidfd
 * waits on the loop for SIGCHLD, then waitpid(pid, WNOHANG). Only
 * children the loop spawned are ever waited for (never waitpid(-1)).
 *
 * The hard part is that no child is left a zombie whoever goes first: an
 * owner that lets go of a running child leaves it to the loop, and a loop
 * freed with children running hands their pidfds (or pids) to a detached
 * reaper thread, which waits for them after the loop is gone.
 */
#include "io/io.h"
#include "io/compat-uring.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static struct tide__child *child_of(struct tide__op *op)
{
	return tide__container_of(op, struct tide__child, op);
}

/* ------------------------------------------------------------- the op -- */

/* A child with a pidfd waits on it; one without, on the loop (SIGCHLD). */
int tide__waitid_route(struct tide__op *op, bool native)
{
	if (op->fd < 0)
		op->path = TIDE_PATH_LOOP;
	else
		op->path = native ? TIDE_PATH_URING : TIDE_PATH_READINESS;
	return 0;
}

/*
 * The kernel reads sqe->len as the idtype, sqe->fd as the id,
 * sqe->file_index as the options and sqe->addr2 as the siginfo pointer
 * (io_uring/waitid.c, io_waitid_prep); addr, buf_index, addr3 and the
 * waitid flags must be 0, which io_uring_prep_rw leaves them. P_PIDFD
 * works through the ring op: kernel_waitid_prepare resolves the pidfd
 * as waitid(2) does.
 */
void tide__waitid_prep(struct io_uring_sqe *sqe, struct tide__op *op)
{
	io_uring_prep_rw(TIDE_IORING_OP_WAITID, sqe, op->fd, NULL, P_PIDFD, 0);
	sqe->file_index = WEXITED;
	sqe->addr2 = (uint64_t)(uintptr_t)op->buf;
}

void tide__waitid_defined(struct tide__op *op, int res)
{
	(void)res;
	VALGRIND_MAKE_MEM_DEFINED(op->buf, sizeof(siginfo_t));
}

/* waitpid's status as the siginfo the other paths fill. */
static void status_to_info(siginfo_t *si, pid_t pid, int st)
{
	memset(si, 0, sizeof(*si));
	si->si_signo = SIGCHLD;
	si->si_pid = pid;
	if (WIFEXITED(st)) {
		si->si_code = CLD_EXITED;
		si->si_status = WEXITSTATUS(st);
	} else {
		si->si_code = WCOREDUMP(st) ? CLD_DUMPED : CLD_KILLED;
		si->si_status = WTERMSIG(st);
	}
}

/* The non-blocking step: 0 once reaped (the exit in op->buf), -EAGAIN
 * while the child runs. */
int tide__waitid_perform(struct tide__op *op)
{
	struct tide__child *c = child_of(op);
	siginfo_t *si = op->buf;
	int r, st;

	if (op->path == TIDE_PATH_LOOP) {
		do
			r = waitpid(c->pid, &st, WNOHANG);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EAGAIN;
		status_to_info(si, c->pid, st);
		return 0;
	}
	si->si_pid = 0;
	do
		r = waitid((idtype_t)P_PIDFD, (id_t)op->fd, si, WEXITED | WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return si->si_pid ? 0 : -EAGAIN;
}

/* ------------------------------------------------ the SIGCHLD path -- */

/*
 * Without a pidfd the op waits on the loop: the loop's SIGCHLD watch,
 * armed while such children live, scans them with waitpid(pid, WNOHANG),
 * each pid its own, never waitpid(-1). A child that exited before the
 * watch was armed sent its SIGCHLD to nobody: a scan is queued as the
 * watch starts, and at each spawn.
 */
static void sigchld_scan(struct tide_loop *loop)
{
	struct tide__op *done = NULL, **tailp = &done, *op;
	struct tide__list *n;
	bool waiting = false;
	int r;

	/* Reaped first, completed after: a completion may spawn or release. */
	tide__list_for_each(n, &loop->children) {
		op = &tide__list_entry(n, struct tide__child, link)->op;
		if (op->path != TIDE_PATH_LOOP || !(op->flags & TIDE__OP_INFLIGHT))
			continue;
		r = tide__waitid_perform(op);
		if (r == -EAGAIN) {
			waiting = true;
			continue;
		}
		op->res = r;
		op->next = NULL;
		*tailp = op;
		tailp = &op->next;
	}
	while ((op = done)) {
		done = op->next;
		tide__op_complete(op, op->res);
	}
	/* The last one reaped: SIGCHLD goes back to its owner. */
	if (!waiting && loop->sigchld && !loop->sigchld_scan) {
		tide__signal_unwatch(loop->sigchld);
		loop->sigchld = NULL;
	}
}

/* The watch's callback, after SIGCHLD arrived. */
static void sigchld_arrived(void *arg)
{
	sigchld_scan(arg);
}

/* The scan queued as a child's op starts. */
static void sigchld_queued(void *arg)
{
	struct tide_loop *loop = arg;

	loop->sigchld_scan = false;
	sigchld_scan(loop);
}

/* The watch, before such a child's op starts (tide__child_spawn). */
static int sigchld_watch(struct tide_loop *loop)
{
	if (loop->sigchld)
		return 0;
	return tide__signal_watch(loop, SIGCHLD, sigchld_arrived, loop, &loop->sigchld);
}

int tide__waitid_start(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;

	if (op->path != TIDE_PATH_LOOP)
		return -EINPROGRESS;
	/* Never inside the spawn call: the scan runs from the ready queue.
	 * Without memory for it the next SIGCHLD scans. */
	if (!loop->sigchld_scan && tide__call_soon_internal(loop, sigchld_queued, loop) == 0)
		loop->sigchld_scan = true;
	return -EINPROGRESS;
}

void tide__waitid_cancel(struct tide__op *op)
{
	tide__op_complete(op, -ECANCELED);
}

/* ----------------------------------------------------------- children -- */

static void child_free(struct tide__child *c)
{
	if (c->op.fd >= 0)
		close(c->op.fd);
	tide__free(c);
}

/* Exit status or minus the signal, as asyncio's returncode. */
static int info_code(const siginfo_t *si)
{
	if (si->si_code == CLD_EXITED)
		return si->si_status;
	return -si->si_status;
}

static void child_done(struct tide__op *op)
{
	struct tide__child *c = child_of(op);
	struct tide_loop *loop = op->loop;
	int res = op->res;

	/* Cancelled: only tide_loop_free cancels, and hands the child to
	 * the reaper (tide__children_abandon). */
	if (res == -ECANCELED)
		return;
	tide__list_del(&c->link);
	loop->live_children--;
	if (res == 0) {
		c->code = info_code(&c->info);
		if (op->path == TIDE_PATH_URING)
			loop->stats.children_reaped_waitid++;
		else if (op->path == TIDE_PATH_READINESS)
			loop->stats.children_reaped_pidfd++;
		else
			loop->stats.children_reaped_sigchld++;
	} else {
		/* Someone else reaped it (SIGCHLD set to SIG_IGN, a waitpid(-1)
		 * elsewhere in the program): the status is lost. asyncio's
		 * watchers say 255 then. */
		c->code = 255;
		tide__report(loop, "tide: a child of the loop was reaped elsewhere; its return code is unknown (255)",
			     res, NULL, NULL);
	}
	c->reaped = true;
	/* The pidfd names a reaped process now: it goes at once. */
	if (op->fd >= 0) {
		close(op->fd);
		op->fd = -1;
	}
	if (c->released)
		tide__free(c);
	else if (c->exited)
		c->exited(c, c->owner);
}

int tide__child_spawn(struct tide_loop *loop, const struct tide__spawn_req *r, tide__child_cb exited, void *owner,
		      struct tide__child **out)
{
	struct tide__child *c;
	int err, pidfd;
	pid_t pid;

	if ((err = tide__loop_refuses(loop)))
		return err;
	if (!(c = tide__calloc(1, sizeof(*c))))
		return -ENOMEM;
	if ((err = tide__spawn(r, &pid, &pidfd))) {
		tide__free(c);
		return err;
	}
	/* No pidfd: the loop must hear SIGCHLD, or the child cannot be
	 * reaped; then it is not kept (killed and reaped here). */
	if (pidfd < 0 && (err = sigchld_watch(loop))) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		tide__free(c);
		return err;
	}
	tide__op_init(loop, TIDE_OP_WAITID, &c->op);
	c->op.fd = pidfd;
	c->op.buf = &c->info;
	c->op.owner = c;
	c->op.done = child_done;
	/* On the readiness paths the child has not exited yet, or hardly:
	 * wait for the pidfd rather than try first (and never complete
	 * inside this call). */
	c->op.flags |= TIDE__OP_NO_TRY;
	c->pid = pid;
	c->exited = exited;
	c->owner = owner;
	tide__list_add_head(&loop->children, &c->link);
	loop->live_children++;
	*out = c;
	/* Once routed an op always completes, a failure being its result. */
	err = tide__op_submit(&c->op);
	tide__bug_on(err != 0, "a child's reaping op refused");
	return 0;
}

void tide__child_release(struct tide__child *c)
{
	if (c->reaped)
		child_free(c);
	else
		c->released = true;
}

int tide__child_signal(struct tide__child *c, int signo)
{
	long r;

	if (signo <= 0 || signo >= _NSIG)
		return -EINVAL;
	if (c->reaped)
		return -ESRCH;
	/* A pidfd names this child even if it was reaped elsewhere and its
	 * pid reused; without one the pid is ours until we reap it. */
	if (c->op.fd >= 0)
		r = syscall(SYS_pidfd_send_signal, c->op.fd, signo, NULL, 0);
	else
		r = kill(c->pid, signo);
	return r < 0 ? -errno : 0;
}

/* ------------------------------------------------------------- reaper -- */

/* What tide_loop_free leaves to the reaper: pidfds, or pids without. */
struct reaper {
	size_t n;
	struct {
		int pidfd;
		pid_t pid;
	} k[];
};

/* A detached thread: waits for each child and reaps it, then ends. */
static void *reaper_main(void *arg)
{
	struct reaper *rp = arg;
	struct pollfd *pf = tide__calloc(rp->n ? rp->n : 1, sizeof(*pf));
	size_t i, npf;
	siginfo_t si;
	int r;

	for (;;) {
		/* The pidfds first, in one poll: whichever exits is reaped at once. */
		npf = 0;
		for (i = 0; pf && i < rp->n; i++)
			if (rp->k[i].pidfd >= 0)
				pf[npf++] = (struct pollfd){ .fd = rp->k[i].pidfd, .events = POLLIN };
		if (!npf)
			break;
		if (poll(pf, npf, -1) < 0 && errno != EINTR)
			break;
		for (i = 0; i < rp->n; i++) {
			if (rp->k[i].pidfd < 0)
				continue;
			si.si_pid = 0;
			r = waitid((idtype_t)P_PIDFD, (id_t)rp->k[i].pidfd, &si, WEXITED | WNOHANG);
			if (r == 0 && !si.si_pid)
				continue;
			close(rp->k[i].pidfd);
			rp->k[i].pidfd = -1;
		}
	}
	/* Then the rest one by one, each wait blocking until that one exits
	 * (pids without pidfds, or pidfds if poll could not be had). */
	for (i = 0; i < rp->n; i++) {
		if (rp->k[i].pidfd >= 0) {
			do
				r = waitid((idtype_t)P_PIDFD, (id_t)rp->k[i].pidfd, &si, WEXITED);
			while (r < 0 && errno == EINTR);
			close(rp->k[i].pidfd);
		} else if (rp->k[i].pid > 0) {
			do
				r = waitpid(rp->k[i].pid, NULL, 0);
			while (r < 0 && errno == EINTR);
		}
	}
	tide__free(pf);
	tide__free(rp);
	return NULL;
}

static void reaper_start(struct tide_loop *loop, struct reaper *rp)
{
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t th;
	int err;

	/* Every signal blocked in the reaper: the program's handlers run on
	 * its own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	err = pthread_create(&th, &attr, reaper_main, rp);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		/* No thread: these children stay zombies once they exit. */
		tide__report(loop, "tide_loop_free: no reaper thread for the children still running", -err, NULL, NULL);
		for (size_t i = 0; i < rp->n; i++)
			if (rp->k[i].pidfd >= 0)
				close(rp->k[i].pidfd);
		tide__free(rp);
	}
}

static bool children_inflight(struct tide_loop *loop)
{
	struct tide__list *n;

	tide__list_for_each(n, &loop->children)
		if (tide__list_entry(n, struct tide__child, link)->op.flags & TIDE__OP_INFLIGHT)
			return true;
	return false;
}

void tide__children_abandon(struct tide_loop *loop)
{
	struct tide__list *n, *tmp;
	struct tide__child *c;
	struct reaper *rp;
	bool forked = tide__loop_forked(loop);
	size_t cnt = 0;
	int laps;

	/* tide__signal_fini freed the SIGCHLD watch already. */
	loop->sigchld = NULL;
	if (!loop->live_children)
		return;
	/* Each op's final completion first (the kernel holds the siginfo
	 * until then): a cancelled one leaves its child to the reaper, one
	 * that raced the cancel reaped its child already. A forked child's
	 * copy cancels nothing: the ops and the children are the parent's. */
	if (!forked) {
		tide__list_for_each(n, &loop->children) {
			c = tide__list_entry(n, struct tide__child, link);
			c->released = true; /* the owners are gone: free would have said -EBUSY */
			tide__op_cancel(&c->op);
		}
		for (laps = 0; children_inflight(loop) && laps < 1000; laps++)
			loop->backend->wait(loop, 1000000);
	}
	tide__list_for_each(n, &loop->children)
		cnt++;
	rp = forked ? NULL : tide__malloc(sizeof(*rp) + cnt * sizeof(rp->k[0]));
	if (rp)
		rp->n = 0;
	tide__list_for_each_safe(n, tmp, &loop->children) {
		c = tide__list_entry(n, struct tide__child, link);
		tide__list_del(&c->link);
		if (c->op.flags & TIDE__OP_INFLIGHT) {
			/* A cancel that never came back (a bug, or a forked copy):
			 * the memory stays, for the kernel may still write it. */
			c->op.flags &= ~TIDE__OP_INFLIGHT;
			loop->ops_inflight--;
			if (!forked)
				continue;
		}
		if (rp && !forked) {
			rp->k[rp->n].pidfd = c->op.fd;
			rp->k[rp->n].pid = c->pid;
			rp->n++;
			c->op.fd = -1;
		}
		child_free(c);
	}
	loop->live_children = 0;
	if (rp && rp->n)
		reaper_start(loop, rp);
	else
		tide__free(rp);
}
