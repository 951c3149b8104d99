/* SPDX-License-Identifier: MIT */
/*
 * op.c: the life of an op, whatever its kind: allocation, routing by its
 * row of the op table (io_uring SQE, readiness then perform, executor, or
 * the loop itself), completion, cancellation, the provided-buffer ring's
 * accounting, and the futures that the public tide_op_* calls return. What
 * a kind means is its row (opdef.c) and its family file (op-*.c).
 *
 * The hard part is that an op completes exactly once, whatever path it took
 * and however a cancel raced it, and that its memory stays with it until
 * then (DESIGN.md, ownership rule 2).
 */
#include "io/io.h"

#include <errno.h>

int tide__op_new(struct tide_loop *loop, int kind, struct tide__op **out)
{
	struct tide__op *op = loop->free_ops;

	if (op)
		loop->free_ops = op->next;
	else if (!(op = tide__malloc(sizeof(*op))))
		return -ENOMEM;
	tide__op_init(loop, kind, op);
	*out = op;
	return 0;
}

void tide__op_init(struct tide_loop *loop, int kind, struct tide__op *op)
{
	memset(op, 0, sizeof(*op));
	op->loop = loop;
	op->kind = (uint8_t)kind;
	op->fd = -1;
	if (tide__opdefs[kind].flags & TIDE__OPF_OFFSET)
		op->off = -1; /* the current position, unless the caller says */
}

void tide__op_release(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;

	tide__bug_on(op->flags & TIDE__OP_INFLIGHT, "op released while the kernel may still use it");
	if (tide__opdefs[op->kind].release)
		tide__opdefs[op->kind].release(op);
	op->next = loop->free_ops;
	loop->free_ops = op;
}

/* ---------------------------------------------- what the table says -- */

int tide__op_perform(struct tide__op *op)
{
	return tide__opdefs[op->kind].perform(op);
}

uint32_t tide__op_wait_events(const struct tide__op *op)
{
	uint32_t ev = tide__opdefs[op->kind].events;

	return ev ? ev : op->events;
}

/* The executor path: the blocking syscall, on a worker thread. */
int64_t tide__op_blocking(void *arg)
{
	struct tide__op *op = arg;

	return tide__opdefs[op->kind].blocking(op);
}

void tide__op_fd_closing(struct tide_loop *loop, int fd)
{
	/* A forked child's epoll_ctl would change the parent's epoll set. */
	if (loop->backend->fd_close && !tide__loop_forked(loop))
		loop->backend->fd_close(loop, fd);
}

/* ------------------------------------------------------------ routing -- */

int tide__op_submit(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;
	const struct tide__opdef *d = &tide__opdefs[op->kind];
	bool native;
	int err = 0;

	/* A forked child shares the parent's ring and epoll set: nothing of
	 * it may reach them (the caller undoes the op, as for any refusal). */
	if (tide__loop_forked(loop))
		return TIDE_EFORKED;
	native = loop->backend->native(loop, op->kind);
	if (d->route) {
		/* On failure (a closed fd) the path stays URING (0) for the stats. */
		err = d->route(op, native);
	} else if (native) {
		op->path = TIDE_PATH_URING;
	} else if (d->fallback == TIDE__NO_PATH) {
		/* Only io_uring has these; callers ask tide_loop_op_native first
		 * (and the cancel kind is never submitted by itself). */
		return d->prep ? -EOPNOTSUPP : -EINVAL;
	} else {
		op->path = d->fallback;
	}
	if (d->flags & TIDE__OPF_CLOSES_FD)
		tide__op_fd_closing(loop, op->fd);
	/* The loop's own wake-up read would blur what users count. */
	if (!(op->flags & TIDE__OP_INTERNAL))
		loop->stats.ops_submitted[op->kind][op->path]++;
	op->flags |= TIDE__OP_INFLIGHT;
	loop->ops_inflight++;
	if (err) {
		/* fstat failed (a closed fd): the op fails like the syscall would. */
		tide__op_complete(op, err);
		return 0;
	}
	switch (op->path) {
	case TIDE_PATH_LOOP:
		/* Never blocks (shutdown, close), or waits on the loop's own
		 * timer (a timeout): it runs right here. */
		err = d->start ? d->start(op) : d->perform(op);
		if (err != -EINPROGRESS)
			tide__op_complete(op, err);
		return 0;
	case TIDE_PATH_EXECUTOR:
		err = tide__op_submit_executor(op);
		break;
	case TIDE_PATH_READINESS:
		/* connect(2) itself starts a connection: run it before waiting,
		 * then wait for POLLOUT before looking at the outcome. */
		if (d->start && !(op->flags & TIDE__OP_STARTED)) {
			err = d->start(op);
			if (err != -EINPROGRESS) {
				tide__op_complete(op, err);
				return 0;
			}
		}
		err = loop->backend->submit(loop, op);
		break;
	default:
		err = loop->backend->submit(loop, op);
		break;
	}
	/* Past routing an op always completes: a failure to start is its result. */
	if (err)
		tide__op_complete(op, err);
	return 0;
}

void tide__op_complete(struct tide__op *op, int res)
{
	struct tide_loop *loop = op->loop;

	tide__bug_on(!(op->flags & TIDE__OP_INFLIGHT), "op completed twice");
	op->flags &= ~(TIDE__OP_INFLIGHT | TIDE__OP_CANCELLING);
	loop->ops_inflight--;
	/* One currency: the kernel's -ETIME is -ETIMEDOUT everywhere. */
	if (res == -ETIME)
		res = -ETIMEDOUT;
	op->res = res;
	/* Memcheck cannot see the kernel fill a buffer from an io_uring CQE. */
	if (TIDE__UNLIKELY(loop->under_valgrind) && op->path == TIDE_PATH_URING && tide__opdefs[op->kind].defined)
		tide__opdefs[op->kind].defined(op, res);
	if (!(op->flags & TIDE__OP_INTERNAL))
		loop->stats.ops_completed[op->kind][op->path]++;
	op->done(op);
}

void tide__op_deliver_more(struct tide__op *op, int res)
{
	op->res = res;
	op->flags |= TIDE__OP_MORE;
	op->done(op);
	/* done() may have cancelled the op, never released it: it is in flight. */
	op->flags &= ~TIDE__OP_MORE;
}

void tide__op_cancel(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;

	if (!(op->flags & TIDE__OP_INFLIGHT) || (op->flags & TIDE__OP_CANCELLING))
		return;
	/* In a forked child the op is the parent's: the cancel would reach
	 * the shared ring or epoll set. It stays in flight (here, forever). */
	if (tide__loop_forked(loop))
		return;
	op->flags |= TIDE__OP_CANCELLING;
	switch (op->path) {
	case TIDE_PATH_LOOP:
		tide__opdefs[op->kind].loop_cancel(op);
		break;
	case TIDE_PATH_EXECUTOR:
		/* A job that started cannot be stopped: its result will come. */
		if (tide__op_cancel_executor(op))
			tide__op_complete(op, -ECANCELED);
		else
			op->flags &= ~TIDE__OP_CANCELLING;
		break;
	default:
		loop->backend->cancel(loop, op);
		break;
	}
}

/* ------------------------------------------------------ public futures -- */

static void live_add(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;

	tide__list_add_head(&loop->live_list, &op->live);
	loop->live_ops++;
}

static void live_del(struct tide__op *op)
{
	tide__list_del(&op->live);
	op->loop->live_ops--;
}

/*
 * For tide_loop_free: cancels every op whose future only the op still holds
 * (the caller let go of it) and reaps their final completions, so that a
 * closed loop, which runs no more, can still be freed. Ops whose futures the
 * caller holds are left alone: free then says -EBUSY.
 */
void tide__ops_settle_abandoned(struct tide_loop *loop)
{
	struct tide__list *n, *tmp;
	struct tide__op *op;
	bool any = false;
	int laps;

	tide__list_for_each_safe(n, tmp, &loop->live_list) {
		op = tide__list_entry(n, struct tide__op, live);
		if (op->fut && tide__future_refs(op->fut) == 1) {
			tide__op_cancel(op);
			any = true;
		}
	}
	/* The kernel answers a cancel promptly; the bound only guards a bug. */
	for (laps = 0; any && loop->live_ops && laps < 1000; laps++) {
		any = false;
		tide__list_for_each(n, &loop->live_list) {
			op = tide__list_entry(n, struct tide__op, live);
			if (op->fut && tide__future_refs(op->fut) == 1)
				any = true;
		}
		if (any)
			loop->backend->wait(loop, 1000000);
	}
}

static void op_future_done(struct tide__op *op)
{
	struct tide_future *f = op->fut;
	int res = op->res;

	op->fut = NULL;
	/* A timeout op's expiry is its success. */
	if (op->kind == TIDE_OP_TIMEOUT && res == -ETIMEDOUT)
		res = 0;
	live_del(op);
	tide__op_release(op);
	f->cancel_hook = NULL;
	tide__future_complete_res(f, res);
	tide_future_unref(f);
}

static int op_cancel_hook(struct tide_future *f, void *arg)
{
	struct tide__op *op = arg;

	tide__op_cancel(op);
	/* Cancelling a started executor job is refused; everything else is requested. */
	return (op->flags & TIDE__OP_CANCELLING) || tide_future_done(f);
}

int tide__op_start(struct tide_loop *loop, int kind, struct tide__op **opp, struct tide_future **out)
{
	struct tide_future *f;
	struct tide__op *op;
	int err;

	if (!loop || !out)
		return -EINVAL;
	if ((err = tide__loop_refuses(loop)))
		return err;
	err = tide_future_new(loop, &f);
	if (err)
		return err;
	err = tide__op_new(loop, kind, &op);
	if (err) {
		tide_future_unref(f);
		return err;
	}
	op->fut = tide_future_ref(f);
	op->done = op_future_done;
	f->cancel_hook = op_cancel_hook;
	f->cancel_arg = op;
	live_add(op);
	*opp = op;
	*out = f;
	return 0;
}

int tide__op_go(struct tide__op *op, struct tide_future **out)
{
	struct tide_future *f = *out;
	int err = tide__op_submit(op);

	if (err) {
		/* Never reached the kernel: undo as if it never existed. */
		op->flags &= ~TIDE__OP_INFLIGHT;
		live_del(op);
		f->cancel_hook = NULL;
		tide__op_release(op);
		tide_future_unref(f);
		tide_future_unref(f);
		*out = NULL;
	}
	return err;
}
