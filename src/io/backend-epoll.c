/* SPDX-License-Identifier: MIT */
/*
 * backend-epoll.c: the readiness backend, for where io_uring is missing or
 * blocked. An op is tried once without blocking; if the fd is not ready it
 * waits on the fd's record, and is performed again when epoll reports the
 * fd ready. Regular files never get here (op.c routes them to the executor).
 *
 * The hard part is keeping epoll's registration in step with the waiters
 * cheaply: registrations are level-triggered and updated lazily (an fd
 * whose last waiter left stays registered until it reports an event nobody
 * wants), which saves the ADD/DEL pair a request/response pattern would
 * otherwise pay on every op. A registration can outlive the fd number
 * (closed and reused): MOD then says ENOENT and we ADD.
 *
 * A caller's fd closed with close(2) under a waiting op is the other
 * stale case: the kernel keys an epoll item by file and number and drops
 * it only with the file's last reference, so the item we believe in may
 * be gone (the number's new file is then never watched) or may linger
 * (and report the number ready for a file nobody can read). A caller's
 * op that joins a registered fd, or that readiness woke for nothing, asks
 * the kernel with a MOD whether the number's current file is the one
 * registered; if not, the old waiters fail with -EBADF and the whole set
 * is made anew at the next wait, which is the only way to drop an item
 * whose number no longer names its file.
 */
#include "io/io.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define EPOLL_BATCH 256

/*
 * What epoll knows of one fd, indexed by the fd number: 12 bytes, since the
 * table spans every fd number up to the highest (it is most of what an
 * idle connection costs the backend). The waiters are a FIFO through the
 * ops' next and prev_w, circular backwards: head->prev_w is the tail.
 */
struct fdrec {
	struct tide__op *head;  /* waiting ops */
	uint32_t registered;    /* events epoll holds for this fd, | IN_EPOLL */
} __attribute__((packed, aligned(4)));

/* registered: the fd is (believed) registered. EPOLLET's bit: tide's
 * registrations are level-triggered, so no op may ask for it. */
#define IN_EPOLL EPOLLET

struct epoll_bd {
	int epfd;
	struct fdrec *fds;      /* grown to the highest fd seen */
	int nfds;
	bool no_pwait2;         /* epoll_pwait2 is missing (kernel < 5.11) */
	bool renew;             /* an item of a closed file may linger: make the set anew */
	struct tide__op *failed; /* waiters whose fd was closed under them, completed at the next wait */
	struct tide__op **failed_tailp;
	struct epoll_event ev[EPOLL_BATCH];
};

static struct epoll_bd *bd_of(const struct tide_loop *loop)
{
	return loop->bd;
}

static struct fdrec *fdrec_get(struct epoll_bd *bd, int fd)
{
	if (fd >= bd->nfds) {
		int n = bd->nfds ? bd->nfds : 64;
		struct fdrec *nf;

		while (n <= fd)
			n *= 2;
		nf = tide__realloc(bd->fds, (size_t)n * sizeof(*nf));
		if (!nf)
			return NULL;
		memset(nf + bd->nfds, 0, (size_t)(n - bd->nfds) * sizeof(*nf));
		bd->fds = nf;
		bd->nfds = n;
	}
	return &bd->fds[fd];
}

/* POLL* bits are the same as EPOLL* on Linux. */
static uint32_t op_events(const struct tide__op *op)
{
	return tide__op_wait_events(op);
}

static void waiter_add(struct fdrec *rec, struct tide__op *op)
{
	struct tide__op *head = rec->head;

	op->next = NULL;
	if (!head) {
		rec->head = op;
		op->prev_w = op;
		return;
	}
	op->prev_w = head->prev_w;
	head->prev_w->next = op;
	head->prev_w = op;
}

static void waiter_del(struct fdrec *rec, struct tide__op *op)
{
	struct tide__op *head = rec->head;

	if (op == head)
		rec->head = op->next;
	else
		op->prev_w->next = op->next;
	if (op->next)
		op->next->prev_w = op->prev_w;
	else if (op != head)
		head->prev_w = op->prev_w; /* the tail left: its predecessor is */
	op->next = op->prev_w = NULL;
}

/* Brings epoll's view of fd to the waiters' interest; lazy when it shrinks to 0. */
static int fd_sync(struct epoll_bd *bd, int fd, struct fdrec *rec)
{
	struct epoll_event ev = { 0 };
	struct tide__op *op;
	uint32_t want = 0;
	int how, r;

	for (op = rec->head; op; op = op->next)
		want |= op_events(op);
	want &= ~(uint32_t)IN_EPOLL;
	if (!want || rec->registered == (want | IN_EPOLL))
		return 0;
	ev.events = want;
	ev.data.fd = fd;
	how = rec->registered & IN_EPOLL ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	r = epoll_ctl(bd->epfd, how, fd, &ev);
	if (r < 0 && errno == ENOENT && how == EPOLL_CTL_MOD)
		r = epoll_ctl(bd->epfd, EPOLL_CTL_ADD, fd, &ev); /* closed and reused */
	else if (r < 0 && errno == EEXIST && how == EPOLL_CTL_ADD)
		r = epoll_ctl(bd->epfd, EPOLL_CTL_MOD, fd, &ev);
	if (r < 0)
		return -errno;
	rec->registered = want | IN_EPOLL;
	return 0;
}

static void fd_forget(struct epoll_bd *bd, int fd, struct fdrec *rec)
{
	/* A DEL that finds nothing: the file was closed behind our back, and
	 * its item may linger where no DEL can reach it. */
	if ((rec->registered & IN_EPOLL) && epoll_ctl(bd->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 &&
	    (errno == ENOENT || errno == EBADF))
		bd->renew = true;
	rec->registered = 0;
}

/* Every waiter of rec fails with err at the next wait (never here: a
 * completion could submit on this fd while we hold its record). */
static void fail_waiters(struct epoll_bd *bd, struct fdrec *rec, int err)
{
	struct tide__op *op;

	while ((op = rec->head)) {
		waiter_del(rec, op);
		op->res = err;
		op->flags |= TIDE__OP_REAPED;
		*bd->failed_tailp = op;
		bd->failed_tailp = &op->next;
	}
}

/*
 * Whether fd's registration is still its current file's (see the top of
 * the file): a MOD, to the registered events plus more, succeeds only for
 * the file epoll knows under this number. If it is not, the waiters were
 * the closed file's: they fail with -EBADF, and the set is made anew.
 */
static void fd_check(struct epoll_bd *bd, int fd, struct fdrec *rec, uint32_t more)
{
	struct epoll_event ev = { 0 };

	ev.events = (rec->registered | more) & ~(uint32_t)IN_EPOLL;
	ev.data.fd = fd;
	if (epoll_ctl(bd->epfd, EPOLL_CTL_MOD, fd, &ev) == 0) {
		rec->registered = ev.events | IN_EPOLL;
		return;
	}
	/* ENOENT: another file has the number; EBADF: none has. */
	if (errno != ENOENT && errno != EBADF)
		return;
	fail_waiters(bd, rec, -EBADF);
	rec->registered = 0;
	bd->renew = true;
}

/*
 * A new epoll set, with the registrations the waiters need: closing the
 * old one drops every item in it, those of files closed behind our back
 * too. Lazy registrations without waiters are made again when next
 * wanted. Only after a caller closed an fd under its ops.
 */
static void epoll_renew(struct epoll_bd *bd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), fd, err;

	if (ep < 0)
		return; /* the old set serves on; the next wait tries again */
	close(bd->epfd);
	bd->epfd = ep;
	bd->renew = false;
	for (fd = 0; fd < bd->nfds; fd++) {
		struct fdrec *rec = &bd->fds[fd];

		if (!(rec->registered & IN_EPOLL))
			continue;
		rec->registered = 0;
		if (rec->head && (err = fd_sync(bd, fd, rec)) < 0)
			fail_waiters(bd, rec, err);
	}
}

static int epoll_init(struct tide_loop *loop, const struct tide_loop_opts *opts)
{
	struct epoll_bd *bd = tide__calloc(1, sizeof(*bd));

	if (!bd)
		return -ENOMEM;
	bd->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (bd->epfd < 0) {
		int err = -errno;
		tide__free(bd);
		return err;
	}
	bd->failed_tailp = &bd->failed;
	loop->bd = bd;
	return 0;
}

static void epoll_fini(struct tide_loop *loop)
{
	struct epoll_bd *bd = bd_of(loop);

	close(bd->epfd);
	tide__free(bd->fds);
	tide__free(bd);
	loop->bd = NULL;
}

static int epoll_submit(struct tide_loop *loop, struct tide__op *op)
{
	struct epoll_bd *bd = bd_of(loop);
	struct fdrec *rec;
	int err;

	if (!(tide__opdefs[op->kind].flags & TIDE__OPF_WAIT_ONLY) && !(op->flags & TIDE__OP_NO_TRY)) {
		/* Optimistic: data already buffered costs no epoll round trip. */
		int r = tide__op_perform(op);
		if (r != -EAGAIN) {
			tide__op_complete(op, r);
			return 0;
		}
	}
	if (!(rec = fdrec_get(bd, op->fd)))
		return -ENOMEM;
	/* A caller's fd may have been closed and its number reused under the
	 * waiters: then nothing watches the new file. A transport's or
	 * listener's fd is closed only through the loop (fd_close). */
	if (!(op->flags & TIDE__OP_LAZY) && (rec->registered & IN_EPOLL))
		fd_check(bd, op->fd, rec, op_events(op));
	waiter_add(rec, op);
	err = fd_sync(bd, op->fd, rec);
	if (err) {
		waiter_del(rec, op);
		/* epoll refuses regular files; poll(2) calls them always ready. */
		if (err == -EPERM && (tide__opdefs[op->kind].flags & TIDE__OPF_WAIT_ONLY))
			err = (int)(op->events & (POLLIN | POLLOUT));
		tide__op_complete(op, err);
	}
	return 0;
}

static void epoll_cancel(struct tide_loop *loop, struct tide__op *op)
{
	struct epoll_bd *bd = bd_of(loop);
	struct fdrec *rec;

	/* Already performed and about to complete (a completion earlier in
	 * the same batch cancels it): its result stands, it is not lost. */
	if (op->flags & TIDE__OP_REAPED) {
		op->flags &= ~TIDE__OP_CANCELLING;
		return;
	}
	/* Otherwise it is on its fd's list: nothing else holds it. */
	rec = &bd->fds[op->fd];
	waiter_del(rec, op);
	/* A caller's fd is often closed right after a cancel (a connect that
	 * timed out) and its number reused: its registration cannot stay. */
	if (!rec->head && !(op->flags & TIDE__OP_LAZY))
		fd_forget(bd, op->fd, rec);
	tide__op_complete(op, -ECANCELED);
}

static int epoll_wait_ns(struct epoll_bd *bd, uint64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	int n, ms;

	if (timeout_ns != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
		ts.tv_nsec = (long)(timeout_ns % 1000000000u);
		tsp = &ts;
	}
	if (!bd->no_pwait2) {
		n = epoll_pwait2(bd->epfd, bd->ev, EPOLL_BATCH, tsp, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n < 0 ? -errno : n;
		bd->no_pwait2 = true;
	}
	/* Milliseconds, rounded up: waking early only costs another lap. */
	if (timeout_ns == UINT64_MAX)
		ms = -1;
	else if (timeout_ns >= (uint64_t)INT32_MAX * 1000000u)
		ms = INT32_MAX;
	else
		ms = (int)((timeout_ns + 999999u) / 1000000u);
	n = epoll_wait(bd->epfd, bd->ev, EPOLL_BATCH, ms);
	return n < 0 ? -errno : n;
}

static int epoll_backend_wait(struct tide_loop *loop, uint64_t timeout_ns)
{
	struct epoll_bd *bd = bd_of(loop);
	struct tide__op *done = NULL, **done_tailp = &done, *op, *next;
	int n, i, err;

	/* Nothing of the user's can be ready in the kernel: skip the syscall.
	 * (Cross-thread calls are seen through ts_nonempty without one.) */
	if (timeout_ns == 0 && !tide__io_pending(loop) && !bd->failed)
		return 0;
	if (TIDE__UNLIKELY(bd->renew))
		epoll_renew(bd);
	/* Ops already failed: complete them without sleeping. */
	n = epoll_wait_ns(bd, bd->failed ? 0 : timeout_ns);
	loop->stats.backend_waits++;
	if (n < 0) {
		err = n == -EINTR ? 0 : n;
		n = 0;
	} else {
		err = 0;
	}
	for (i = 0; i < n; i++) {
		int fd = bd->ev[i].data.fd;
		uint32_t rev = bd->ev[i].events;
		struct fdrec *rec = &bd->fds[fd];
		bool served = false, woken_for_nothing = false;
		int res;

		if (TIDE__UNLIKELY(!(rec->registered & IN_EPOLL))) {
			/* An item we never made or already dropped: a closed
			 * file's, which no DEL can reach. */
			bd->renew = true;
			continue;
		}
		for (op = rec->head; op; op = next) {
			next = op->next;
			if (!(rev & (op_events(op) | EPOLLERR | EPOLLHUP)))
				continue;
			if (tide__opdefs[op->kind].flags & TIDE__OPF_WAIT_ONLY) {
				res = (int)(rev & (op->events | POLLERR | POLLHUP | POLLNVAL));
			} else if ((res = tide__op_perform(op)) == -EAGAIN) {
				woken_for_nothing |= !(op->flags & TIDE__OP_LAZY);
				continue;
			}
			waiter_del(rec, op);
			op->res = res;
			op->flags |= TIDE__OP_REAPED;
			*done_tailp = op;
			done_tailp = &op->next;
			served |= !!(op->flags & TIDE__OP_LAZY);
		}
		/* A caller's op woken for nothing: maybe by a closed file's
		 * item, under a number reused since. */
		if (TIDE__UNLIKELY(woken_for_nothing) && rec->head)
			fd_check(bd, fd, rec, 0);
		if (!rec->head) {
			/* Lazy for fds the loop closes itself (transports): a
			 * waiter just served is likely re-armed by its completion
			 * (request/response), so only an event nobody wanted
			 * costs the registration. A caller's fd may be closed and
			 * reused behind our back: forget it at once. */
			if (!served)
				fd_forget(bd, fd, rec);
		} else if ((res = fd_sync(bd, fd, rec)) < 0) {
			/* The fd went bad under its waiters: they fail, never hang. */
			fail_waiters(bd, rec, res);
			fd_forget(bd, fd, rec);
		}
	}
	/* Then the waiters whose fd was closed under them. */
	if (bd->failed) {
		*done_tailp = bd->failed;
		done_tailp = bd->failed_tailp;
		bd->failed = NULL;
		bd->failed_tailp = &bd->failed;
	}
	*done_tailp = NULL;
	/* Complete after the scan: completions may submit on these same fds. */
	for (op = done; op; op = next) {
		next = op->next;
		op->next = NULL;
		op->flags &= ~TIDE__OP_REAPED;
		tide__op_complete(op, op->res);
	}
	return err;
}

/* The loop is about to close fd: drop the lazy registration first. Ops
 * still waiting on it (a caller's, closed too early) fail with -EBADF:
 * left waiting, they would serve whatever file takes the number next. */
static void epoll_fd_close(struct tide_loop *loop, int fd)
{
	struct epoll_bd *bd = bd_of(loop);

	if (fd < bd->nfds) {
		fail_waiters(bd, &bd->fds[fd], -EBADF);
		fd_forget(bd, fd, &bd->fds[fd]);
	}
}

static bool epoll_native(const struct tide_loop *loop, int kind)
{
	return false;
}

const struct tide__backend_ops tide__backend_epoll = {
	.name = "epoll",
	.init = epoll_init,
	.fini = epoll_fini,
	.submit = epoll_submit,
	.cancel = epoll_cancel,
	.wait = epoll_backend_wait,
	.native = epoll_native,
	.fd_close = epoll_fd_close,
};
