/* SPDX-License-Identifier: MIT */
/*
 * io.c: the io layer's part in a loop's life: the options it reads, which
 * backend runs and why, the loop's own read on its wake-up eventfd, and
 * the teardown (core's loop.c reaches this file only through the hub
 * declared in core.h).
 *
 * The hard part is the backend choice: io_uring first, epoll when
 * io_uring_setup, or the first io_uring_enter or io_uring_register on the
 * new ring, is refused; but a backend the caller forced must start or
 * fail with its reason, never fall back silently.
 */
#include "io/io.h"

#include <errno.h>
#include <stdlib.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

/*
 * "read,write" or "all-optional" into a bit per op kind, by the op table's
 * names. what names the setting (the variable or the option) for the
 * error text.
 */
static int parse_disabled_ops(const char *what, const char *s, uint64_t *mask)
{
	const char *all = s;
	uint64_t unmaskable = 0;
	int k;

	for (k = 0; k < TIDE__OP_KINDS; k++)
		if (tide__opdefs[k].flags & TIDE__OPF_UNMASKABLE)
			unmaskable |= 1ull << k;
	while (s && *s) {
		size_t len = strcspn(s, ", ");

		if (len == 12 && !strncmp(s, "all-optional", len))
			*mask |= ~0ull;
		else if ((k = tide__opdef_find(s, len)) >= 0)
			*mask |= 1ull << k;
		else if (len) {
			char names[400];
			size_t n = 0;

			for (k = 0; k < TIDE__OP_KINDS; k++)
				if (!(unmaskable & (1ull << k)))
					n += (size_t)snprintf(names + n, n < sizeof(names) ? sizeof(names) - n : 0, ", %s",
							      tide__opdefs[k].name);
			return tide__loop_new_failed(-EINVAL, "%s='%s': no op is called '%.*s' (names: all-optional%s)",
						     what, all, (int)len, s, names);
		}
		s += len;
		s += strspn(s, ", ");
	}
	/* The readiness path itself cannot be masked. */
	*mask &= ~unmaskable;
	return 0;
}

static int backend_start(struct tide_loop *loop, const struct tide_loop_opts *opts)
{
	const char *asked = TIDE__OPT(opts, backend, NULL);
	const char *want = asked ? asked : tide__getenv("TIDE_BACKEND");
	const char *setting = asked ? "opts.backend" : "TIDE_BACKEND";
	int err;

	if (want && !strcmp(want, "epoll")) {
		loop->backend = &tide__backend_epoll;
		snprintf(loop->reason, sizeof(loop->reason), "epoll requested");
		return loop->backend->init(loop, opts);
	}
	if (want && strcmp(want, "io_uring"))
		return tide__loop_new_failed(-EINVAL, "%s='%s': expected io_uring or epoll", setting, want);
	loop->backend = &tide__backend_uring;
	err = loop->backend->init(loop, opts);
	if (err && want) /* a forced io_uring that cannot start is the caller's error */
		return tide__loop_new_failed(err, "io_uring was asked for (%s=io_uring) but cannot start: %s",
					     setting, loop->reason);
	if (err == 0)
		return 0;
	/* io_uring is unavailable: the uring backend wrote why into reason. */
	loop->backend = &tide__backend_epoll;
	return loop->backend->init(loop, opts);
}

/*
 * TIDE_FAULT_ENTER=PERCENT[:SEED]: the percent (0 to 99) of io_uring_enter
 * calls the io_uring backend fails on purpose, a testing aid
 * (backend-uring.c, enter_fault), and the seed of the choice, to repeat a
 * run (by default one per process, which the loop's report names). 100
 * would leave the loop nothing that works.
 */
static int parse_fault_enter(struct tide_loop *loop, const char *s)
{
	unsigned long v;
	unsigned long long seed = 0;
	char *end;

	if (!s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end == ':' && end[1] >= '0' && end[1] <= '9') {
		seed = strtoull(end + 1, &end, 10);
		loop->fault_seeded = true;
	}
	if (*s < '0' || *s > '9' || *end || errno || v > 99)
		return tide__loop_new_failed(-EINVAL, "TIDE_FAULT_ENTER='%s': expected a percent from 0 to 99, "
					     "and maybe :SEED", s);
	loop->fault_enter = (unsigned)v;
	loop->fault_seed = seed;
	return 0;
}

/* The io options of tide_loop_opts, checked; the first bad one says why. */
static int read_opts(struct tide_loop *loop, const struct tide_loop_opts *opts)
{
	int err;

	err = parse_disabled_ops("TIDE_DISABLE_OPS", tide__getenv("TIDE_DISABLE_OPS"), &loop->disabled_ops);
	if (!err)
		err = parse_disabled_ops("opts.disable_ops", TIDE__OPT(opts, disable_ops, NULL), &loop->disabled_ops);
	if (!err)
		err = parse_fault_enter(loop, tide__getenv("TIDE_FAULT_ENTER"));
	if (err)
		return err;
	loop->ring_entries = TIDE__OPT(opts, ring_entries, 0u);
	if (!loop->ring_entries)
		loop->ring_entries = 256;
	loop->executor_threads = TIDE__OPT(opts, executor_threads, 0u);
	loop->recv_buf_count = TIDE__OPT(opts, recv_buf_count, 0u);
	if (!loop->recv_buf_count)
		loop->recv_buf_count = 1024;
	if (loop->recv_buf_count > 32768)
		return tide__loop_new_failed(-EINVAL, "opts.recv_buf_count is %u: at most 32768", loop->recv_buf_count);
	while (loop->recv_buf_count & (loop->recv_buf_count - 1))
		loop->recv_buf_count++; /* a power of two, as the kernel's ring mask needs */
	loop->recv_buf_size = TIDE__OPT(opts, recv_buf_size, (size_t)0);
	if (!loop->recv_buf_size)
		loop->recv_buf_size = 4096;
	if (loop->recv_buf_size > ((size_t)1 << 20))
		return tide__loop_new_failed(-EINVAL, "opts.recv_buf_size is %zu: at most 1 MiB", loop->recv_buf_size);
	return 0;
}

/* ------------------------------------------------------- wake-up read -- */

/* The wake-up read completed: consume it and read again, unless the loop is going away. */
static void wake_done(struct tide__op *op)
{
	struct tide_loop *loop = op->loop;

	if (loop->tearing_down)
		return;
	tide__ts_woken(loop);
	op->flags = TIDE__OP_INTERNAL;
	tide__op_submit(op);
}

static int wake_arm(struct tide_loop *loop)
{
	struct tide__op *op;
	int err = tide__op_new(loop, TIDE_OP_READ, &op);

	if (err)
		return err;
	op->flags = TIDE__OP_INTERNAL;
	op->fd = loop->wake_fd;
	op->buf = &loop->wake_buf;
	op->len = sizeof(loop->wake_buf);
	op->off = -1;
	op->done = wake_done;
	loop->wake_op = op;
	return tide__op_submit(op);
}

void tide__wake_disarm(struct tide_loop *loop)
{
	struct tide__op *op = loop->wake_op;
	int laps;

	if (!op)
		return;
	loop->tearing_down = true;
	/* In a forked child the read in flight is the parent's (the kernel's
	 * op reads into the parent's memory): only the child's copy goes. */
	if (tide__loop_forked(loop)) {
		tide__free(op);
		loop->wake_op = NULL;
		return;
	}
	/* The kernel may still write wake_buf: cancel and wait for the final
	 * completion before the memory goes (DESIGN.md, ownership rule 2). */
	tide__op_cancel(op);
	for (laps = 0; (op->flags & TIDE__OP_INFLIGHT) && laps < 1000; laps++)
		loop->backend->wait(loop, 1000000);
	/* Still in flight (a kernel that refuses every io_uring_enter): it
	 * goes with the backend, in tide__io_close. */
	if (!(op->flags & TIDE__OP_INFLIGHT)) {
		tide__op_release(op);
		loop->wake_op = NULL;
	}
}

/* -------------------------------------------------------- the hub -- */

int tide__io_open(struct tide_loop *loop, const struct tide_loop_opts *opts)
{
	int err = read_opts(loop, opts);

	if (err)
		return err;
	/* Memcheck cannot see io_uring fill a buffer: ops tell it, but only
	 * under it (a table lookup and a call per completion otherwise). */
	loop->under_valgrind = RUNNING_ON_VALGRIND != 0;
	err = backend_start(loop, opts);
	if (err)
		return err;
	err = wake_arm(loop);
	if (err)
		loop->backend->fini(loop);
	return err;
}

void tide__io_settle(struct tide_loop *loop)
{
	if (loop->live_ops)
		tide__ops_settle_abandoned(loop);
}

void tide__io_close(struct tide_loop *loop)
{
	struct tide__op *op;
	struct tide__job *job;

	if (loop->default_ex) {
		if (loop->default_ex_owned && tide__loop_forked(loop))
			tide__executor_forget(loop->default_ex);
		else if (loop->default_ex_owned)
			tide_executor_free(loop->default_ex);
		loop->default_ex = NULL;
	}
	/* Children still running go to a reaper thread, their ops reaped
	 * first, while the backend still runs. */
	tide__children_abandon(loop);
	/* Reap the loop's own read on the wake-up eventfd before any memory goes. */
	tide__wake_disarm(loop);
	loop->backend->fini(loop);
	if ((op = loop->wake_op)) {
		/* Never reaped: with the backend gone no completion can come
		 * (the kernel held only its buffer, the loop's wake_buf). */
		op->flags &= ~TIDE__OP_INFLIGHT;
		loop->ops_inflight--;
		tide__op_release(op);
		loop->wake_op = NULL;
	}
	while ((op = loop->free_ops)) {
		loop->free_ops = op->next;
		tide__free(op);
	}
	while ((job = loop->free_jobs)) {
		loop->free_jobs = job->next;
		tide__free(job);
	}
}

/* ------------------------------------------------------------- public -- */

TIDE_EXTERN const char *tide_loop_backend(const struct tide_loop *loop)
{
	return loop->backend->name;
}

TIDE_EXTERN int tide_loop_op_native(const struct tide_loop *loop, enum tide_op_kind kind)
{
	if (!loop || (unsigned)kind >= TIDE_OP_KIND_MAX)
		return 0;
	return loop->backend->native(loop, kind);
}
