/* SPDX-License-Identifier: MIT */
/*
 * process.c: asyncio's create_subprocess_exec / create_subprocess_shell
 * and its Process: a child whose PIPE stdio are streams, waited for by
 * tasks (wait, communicate).
 *
 * The hard part is that a process and its child part at any time: a
 * process freed while its child runs leaves it to the loop (which reaps
 * it, or hands it to a reaper at tide_loop_free), and the waits of tasks
 * parked on it end (-ECANCELED) rather than touch freed memory.
 */
#include "net/net.h"

#include <errno.h>
#include <unistd.h>

/* A task parked in tide_process_wait: its future, on its own stack. */
struct waiter {
	struct tide__list link;
	struct tide_future *f;
};

struct tide_process {
	struct tide_loop *loop;
	struct tide__child *child;   /* released when the process is freed */
	pid_t pid;
	int code;                    /* the return code once exited */
	bool exited;
	struct tide__list waiters;   /* struct waiter, completed at exit */
	struct tide_stream_writer *in;
	struct tide_stream_reader *out, *err;
	/* A communicate under way: its tasks (on its frame), which use the
	 * streams. tide_process_free then cancels them and leaves the free
	 * to the communicate (freed), which returns -ECANCELED. */
	struct tide_future **comm;
	bool freed;
};

static void proc_destroy(struct tide_process *p);

static void proc_exited(struct tide__child *c, void *owner)
{
	struct tide_process *p = owner;
	struct tide__list *n, *tmp;

	p->code = c->code;
	p->exited = true;
	tide__list_for_each_safe(n, tmp, &p->waiters) {
		struct waiter *w = tide__list_entry(n, struct waiter, link);

		tide__list_del(&w->link);
		if (!tide_future_done(w->f))
			tide_future_set_result(w->f, 0, NULL);
	}
}

static int proc_new(struct tide_loop *loop, const char *const *argv, const struct tide_subprocess_opts *opts,
		    struct tide_future **out)
{
	struct tide_process *p;
	struct tide_future *f;
	int pipes[3], err;

	if (!out)
		return -EINVAL;
	if (!(p = tide__calloc(1, sizeof(*p))))
		return -ENOMEM;
	tide__list_init(&p->waiters);
	p->loop = loop;
	if ((err = tide_future_new(loop, &f)) < 0) {
		tide__free(p);
		return err;
	}
	if ((err = tide__subprocess_start(loop, argv, opts, proc_exited, p, pipes, &p->child))) {
		tide_future_unref(f);
		tide__free(p);
		return err;
	}
	p->pid = p->child->pid;
	loop->live_net++;
	/* Each stream owns its fd from here, on error too. */
	if (pipes[0] >= 0)
		err = tide__stream_pipe_writer(loop, pipes[0], &p->in);
	if (pipes[1] >= 0 && !err)
		err = tide__stream_pipe_reader(loop, pipes[1], TIDE__OPT(opts, limit, 0), &p->out);
	else if (pipes[1] >= 0)
		close(pipes[1]);
	if (pipes[2] >= 0 && !err)
		err = tide__stream_pipe_reader(loop, pipes[2], TIDE__OPT(opts, limit, 0), &p->err);
	else if (pipes[2] >= 0)
		close(pipes[2]);
	if (err) {
		/* The child runs: killed, and left to the loop to reap. */
		tide__child_signal(p->child, SIGKILL);
		tide_future_unref(f);
		tide_process_free(p);
		return err;
	}
	f->ptr_release = (void (*)(void *))tide_process_free;
	tide_future_set_result(f, 0, p);
	*out = f;
	return 0;
}

TIDE_EXTERN int tide_create_subprocess_exec(struct tide_loop *loop, const char *const *argv,
					    const struct tide_subprocess_opts *opts, struct tide_future **out)
{
	if (!loop)
		return -EINVAL;
	return proc_new(loop, argv, opts, out);
}

TIDE_EXTERN int tide_create_subprocess_shell(struct tide_loop *loop, const char *cmd,
					     const struct tide_subprocess_opts *opts, struct tide_future **out)
{
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };

	if (!loop || !cmd)
		return -EINVAL;
	return proc_new(loop, argv, opts, out);
}

TIDE_EXTERN void tide_process_free(struct tide_process *p)
{
	struct tide__list *n, *tmp;

	if (!p || p->freed)
		return;
	/* Tasks still waiting end cancelled; the child runs on, the loop's. */
	tide__list_for_each_safe(n, tmp, &p->waiters) {
		struct waiter *w = tide__list_entry(n, struct waiter, link);

		tide__list_del(&w->link);
		tide_future_cancel(w->f);
	}
	if (p->comm) {
		/* The communicate's tasks read and write the streams: they end
		 * first, and the communicate frees the rest. */
		p->freed = true;
		for (int i = 0; i < 3; i++)
			if (p->comm[i])
				tide_task_cancel(p->comm[i]);
		return;
	}
	proc_destroy(p);
}

static void proc_destroy(struct tide_process *p)
{
	if (p->in)
		tide_stream_free(NULL, p->in);
	if (p->out)
		tide_stream_free(p->out, NULL);
	if (p->err)
		tide_stream_free(p->err, NULL);
	tide__child_release(p->child);
	p->loop->live_net--;
	tide__free(p);
}

TIDE_EXTERN pid_t tide_process_pid(const struct tide_process *p)
{
	return p ? p->pid : -EINVAL;
}

TIDE_EXTERN int tide_process_returncode(const struct tide_process *p, int *code)
{
	if (!p)
		return -EINVAL;
	if (!p->exited)
		return 0;
	if (code)
		*code = p->code;
	return 1;
}

TIDE_EXTERN struct tide_stream_writer *tide_process_stdin(const struct tide_process *p)
{
	return p ? p->in : NULL;
}

TIDE_EXTERN struct tide_stream_reader *tide_process_stdout(const struct tide_process *p)
{
	return p ? p->out : NULL;
}

TIDE_EXTERN struct tide_stream_reader *tide_process_stderr(const struct tide_process *p)
{
	return p ? p->err : NULL;
}

TIDE_EXTERN int tide_process_wait(struct tide_process *p, int *code)
{
	struct waiter w;
	int64_t r;
	int err;

	if (!p)
		return -EINVAL;
	if (!p->exited) {
		if ((err = tide_future_new(p->loop, &w.f)))
			return err;
		tide__list_add_tail(&p->waiters, &w.link);
		r = tide_await(w.f);
		/* Unlinked already if the child exited or the process was freed. */
		tide__list_del(&w.link);
		tide_future_unref(w.f);
		if (r < 0)
			return (int)r;
	}
	if (code)
		*code = p->code;
	return 0;
}

/* ---------------------------------------------------------- communicate -- */

/* One of communicate's three tasks: feed stdin, or drain stdout or stderr. */
struct comm_io {
	struct tide_process *p;
	struct tide_stream_reader *r; /* a reader's task */
	const void *input;            /* the writer's task */
	size_t n;
	char *buf;                    /* what was read (the library's allocator) */
	size_t len, cap;
};

/* Writes the input and closes stdin. A child that exits or closes its
 * stdin without reading all is no error (asyncio ignores BrokenPipe). */
static int64_t comm_feed(void *arg)
{
	struct comm_io *io = arg;
	struct tide_stream_writer *w = io->p->in;
	int err = 0;

	if (io->n)
		err = tide_stream_write(w, io->input, io->n);
	if (!err)
		err = tide_stream_drain(w);
	tide_stream_close(w);
	if (err == -EPIPE || err == -ECONNRESET || err == TIDE_ECLOSED)
		err = 0;
	if (!err)
		err = tide_stream_wait_closed(w);
	return err == -EPIPE || err == -ECONNRESET ? 0 : err;
}

/* Reads to EOF into a buffer that grows by doubling. */
static int64_t comm_drain(void *arg)
{
	struct comm_io *io = arg;
	ssize_t r;

	for (;;) {
		if (io->cap - io->len < 65536) {
			size_t cap = io->cap ? io->cap * 2 : 65536;
			char *nb = tide__realloc(io->buf, cap + 1);

			if (!nb)
				return -ENOMEM;
			io->buf = nb;
			io->cap = cap;
		}
		r = tide_stream_read(io->r, io->buf + io->len, io->cap - io->len);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		io->len += (size_t)r;
	}
	io->buf[io->len] = '\0'; /* room kept for it: text reads as a string */
	return 0;
}

TIDE_EXTERN int tide_process_communicate(struct tide_process *p, const void *input, size_t n, char **out,
					 size_t *outlen, char **err, size_t *errlen, int *code)
{
	struct comm_io io[3];
	struct tide_future *t[3] = { NULL, NULL, NULL };
	tide_task_cb fn[3] = { comm_feed, comm_drain, comm_drain };
	int64_t r;
	int rc = 0, i;

	if (!p || p->freed || (!input && n) || (n && !p->in))
		return -EINVAL;
	if (!tide_current_task())
		return TIDE_ENOT_IN_TASK;
	if (p->comm)
		return -EBUSY;
	memset(io, 0, sizeof(io));
	for (i = 0; i < 3; i++)
		io[i].p = p;
	io[0].input = input;
	io[0].n = n;
	io[1].r = p->out;
	io[2].r = p->err;
	/* All three at once: a child that fills one pipe while we write the
	 * other never waits on us. */
	for (i = 0; i < 3 && !rc; i++) {
		if (i == 0 ? !p->in : !io[i].r)
			continue;
		rc = tide_task_spawn(p->loop, fn[i], &io[i], NULL, &t[i]);
	}
	p->comm = t;
	/* Every task is awaited to its end, even after a failure or a
	 * cancel: they use this frame. A cancel of this task reaches the
	 * one awaited (tide_await passes it on) and ends it: the others
	 * are cancelled then too, or a child that keeps its pipes open
	 * would hold the cancelled caller until it exits. */
	for (i = 0; i < 3; i++) {
		if (!t[i])
			continue;
		while (!tide_future_done(t[i])) {
			r = tide_await(t[i]);
			if (r == -ECANCELED && rc != -ECANCELED) {
				rc = -ECANCELED;
				for (int j = 0; j < 3; j++)
					if (t[j] && !tide_future_done(t[j]))
						tide_task_cancel(t[j]);
			}
		}
		r = tide_future_error(t[i]);
		if (!r)
			tide_future_result(t[i], &r, NULL);
		if (r < 0 && !rc)
			rc = (int)r;
		tide_future_unref(t[i]);
	}
	p->comm = NULL;
	if (p->freed) {
		proc_destroy(p);
		rc = -ECANCELED;
	}
	if (!rc)
		rc = tide_process_wait(p, code);
	if (rc) {
		tide__free(io[1].buf);
		tide__free(io[2].buf);
		return rc;
	}
	if (out) {
		*out = io[1].buf;
		io[1].buf = NULL;
	}
	if (outlen)
		*outlen = io[1].len;
	if (err) {
		*err = io[2].buf;
		io[2].buf = NULL;
	}
	if (errlen)
		*errlen = io[2].len;
	tide__free(io[1].buf);
	tide__free(io[2].buf);
	return 0;
}

TIDE_EXTERN int tide_process_send_signal(struct tide_process *p, int signo)
{
	return p ? tide__child_signal(p->child, signo) : -EINVAL;
}

TIDE_EXTERN int tide_process_terminate(struct tide_process *p)
{
	return tide_process_send_signal(p, SIGTERM);
}

TIDE_EXTERN int tide_process_kill(struct tide_process *p)
{
	return tide_process_send_signal(p, SIGKILL);
}
