/* SPDX-License-Identifier: MIT */
/*
 * subprocess.c: asyncio's loop.subprocess_exec and subprocess_shell: a
 * child and its pipe transports behind one subprocess transport and its
 * protocol (pipe_data_received, pipe_connection_lost, process_exited).
 * Also what tide_create_subprocess_* (process.c) share with it: turning
 * struct tide_subprocess_opts into a spawn request (src/io/spawn.c) and
 * the pipes it asks for.
 *
 * The hard part is the order of the ends: process_exited once the loop
 * reaped the child, each pipe's pipe_connection_lost once its transport
 * is gone, and connection_lost exactly once after all of them, whichever
 * came first; the transport is the library's until then, whatever the
 * user's references.
 */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* ----------------------------------------------------- spawn options -- */

/* An fd at 3 or above (close-on-exec), so that the child's dup2 into 0, 1
 * or 2 never clobbers another source; fd is closed if it was moved. */
static int fd_above_stdio(int fd)
{
	int nfd;

	if (fd >= 3)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		nfd = -errno;
	close(fd);
	return nfd;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

int tide__subprocess_start(struct tide_loop *loop, const char *const *argv, const struct tide_subprocess_opts *opts,
			   tide__child_cb exited, void *owner, int pipes[3], struct tide__child **out)
{
	static const struct tide_stdio inherit[3];
	const struct tide_stdio *stdio = inherit;
	struct tide__spawn_req r = { .argv = argv };
	int mine[3] = { -1, -1, -1 }, devnull = -1, err = 0, i;
	size_t k;

	pipes[0] = pipes[1] = pipes[2] = -1;
	if (!loop || !out || TIDE__OPTS_BAD(opts))
		return -EINVAL;
	if (!argv || !argv[0] || !argv[0][0])
		return -EINVAL;
	if ((err = tide__loop_refuses(loop)))
		return err;
	if (opts && opts->size >= offsetof(struct tide_subprocess_opts, stdio) + sizeof(opts->stdio))
		stdio = opts->stdio;
	r.cwd = TIDE__OPT(opts, cwd, NULL);
	r.envp = TIDE__OPT(opts, env, NULL);
	r.keep = TIDE__OPT(opts, pass_fds, NULL);
	r.nkeep = TIDE__OPT(opts, npass_fds, 0);
	r.setsid = TIDE__OPT(opts, start_new_session, 0) != 0;
	r.setpgid = TIDE__OPT(opts, set_process_group, 0) != 0;
	r.pgid = TIDE__OPT(opts, process_group, 0);
	if ((r.nkeep && !r.keep) || r.pgid < 0)
		return -EINVAL;
	/* Every fd named must be open now: the child would fail less clearly. */
	for (k = 0; k < r.nkeep; k++)
		if (r.keep[k] < 0 || fcntl(r.keep[k], F_GETFD) < 0)
			return -EBADF;
	for (i = 0; i < 3 && !err; i++) {
		int fds[2];

		switch (stdio[i].mode) {
		case TIDE_STDIO_INHERIT:
			r.stdio[i] = TIDE__STDIO_KEEP;
			break;
		case TIDE_STDIO_PIPE:
			if (pipe2(fds, O_CLOEXEC) < 0) {
				err = -errno;
				break;
			}
			/* The child reads its stdin's read end, writes the others'. */
			pipes[i] = fds[i ? 0 : 1];
			mine[i] = fd_above_stdio(fds[i ? 1 : 0]);
			if (mine[i] < 0)
				err = mine[i];
			else if (fcntl(pipes[i], F_SETFL, O_NONBLOCK) < 0)
				err = -errno;
			r.stdio[i] = mine[i];
			break;
		case TIDE_STDIO_DEVNULL:
			if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
				err = -errno;
			else if ((devnull = fd_above_stdio(devnull)) < 0)
				err = devnull;
			r.stdio[i] = devnull;
			break;
		case TIDE_STDIO_FD:
			/* A copy, so that the caller's fd may be anything (even 0-2). */
			if (stdio[i].fd < 0)
				err = -EBADF;
			else if ((mine[i] = fcntl(stdio[i].fd, F_DUPFD_CLOEXEC, 3)) < 0)
				err = -errno;
			r.stdio[i] = mine[i];
			break;
		case TIDE_STDIO_STDOUT:
			if (i != 2)
				err = -EINVAL;
			r.stdio[i] = TIDE__STDIO_TO_STDOUT;
			break;
		default:
			err = -EINVAL;
		}
	}
	if (!err)
		err = tide__child_spawn(loop, &r, exited, owner, out);
	/* The child has its copies (or none was made). */
	close_fds(mine, 3);
	if (devnull >= 0)
		close(devnull);
	if (err)
		close_fds(pipes, 3);
	return err;
}

/* ------------------------------------------------- the transport -- */

struct tide_subprocess_transport;

/* One pipe's protocol: which transport, which of the child's fds. */
struct sub_pipe {
	struct tide_subprocess_transport *st;
	int fd;
};

struct tide_subprocess_transport {
	uint32_t refs;               /* users', plus one until connection_lost ran */
	struct tide_loop *loop;
	struct tide__child *child;   /* released with the last reference */
	pid_t pid;
	int code;                    /* the return code once exited */
	bool exited;                 /* the loop reaped the child */
	bool closed;                 /* close was called */
	bool lost;                   /* connection_lost ran (or is queued) */
	const struct tide_subprocess_protocol_ops *ops;
	void *proto;
	struct tide_transport *pipes[3]; /* the pipe transports still open */
	struct sub_pipe pp[3];
};

static const struct tide_subprocess_protocol_ops no_ops = { .size = sizeof(no_ops) };

#define SUB_CB(st, m)                                                                                   \
	((st)->ops->size >= offsetof(struct tide_subprocess_protocol_ops, m) + sizeof((st)->ops->m) \
		 ? (st)->ops->m                                                                          \
		 : NULL)

static void sub_free(struct tide_subprocess_transport *st)
{
	tide__child_release(st->child);
	tide__free(st);
}

static void sub_lost(void *arg)
{
	struct tide_subprocess_transport *st = arg;
	void (*cb)(struct tide_subprocess_transport *, int, void *) = SUB_CB(st, connection_lost);

	if (cb)
		cb(st, 0, st->proto);
	st->loop->live_net--;
	tide_subprocess_transport_unref(st);
}

/* connection_lost once the child exited and every pipe is gone. */
static void sub_maybe_lost(struct tide_subprocess_transport *st)
{
	if (st->lost || !st->exited || st->pipes[0] || st->pipes[1] || st->pipes[2])
		return;
	st->lost = true;
	/* A ready call, as asyncio's: after the callbacks of this round. */
	if (tide__call_soon_internal(st->loop, sub_lost, st))
		sub_lost(st);
}

/* The pipes' protocol: each event said of the child's fd. */
static void pp_data(struct tide_transport *t, const void *data, size_t n, void *proto)
{
	struct sub_pipe *pp = proto;
	struct tide_subprocess_transport *st = pp->st;
	void (*cb)(struct tide_subprocess_transport *, int, const void *, size_t, void *) =
		SUB_CB(st, pipe_data_received);

	(void)t;
	if (cb && !st->lost)
		cb(st, pp->fd, data, n, st->proto);
}

/* The child closed its end: this pipe is done (no half-close here). */
static int pp_eof(struct tide_transport *t, void *proto)
{
	(void)t;
	(void)proto;
	return 0;
}

static void pp_lost(struct tide_transport *t, int err, void *proto)
{
	struct sub_pipe *pp = proto;
	struct tide_subprocess_transport *st = pp->st;
	void (*cb)(struct tide_subprocess_transport *, int, int, void *) = SUB_CB(st, pipe_connection_lost);

	(void)t;
	st->pipes[pp->fd] = NULL;
	if (cb && !st->lost)
		cb(st, pp->fd, err, st->proto);
	sub_maybe_lost(st);
}

static void pp_pause(struct tide_transport *t, void *proto)
{
	struct sub_pipe *pp = proto;
	void (*cb)(struct tide_subprocess_transport *, void *) = SUB_CB(pp->st, pause_writing);

	(void)t;
	if (cb)
		cb(pp->st, pp->st->proto);
}

static void pp_resume(struct tide_transport *t, void *proto)
{
	struct sub_pipe *pp = proto;
	void (*cb)(struct tide_subprocess_transport *, void *) = SUB_CB(pp->st, resume_writing);

	(void)t;
	if (cb)
		cb(pp->st, pp->st->proto);
}

static const struct tide_protocol_ops pp_ops = {
	.size = sizeof(pp_ops),
	.data_received = pp_data,
	.eof_received = pp_eof,
	.connection_lost = pp_lost,
	.pause_writing = pp_pause,
	.resume_writing = pp_resume,
};

static void sub_exited(struct tide__child *c, void *owner)
{
	struct tide_subprocess_transport *st = owner;
	void (*cb)(struct tide_subprocess_transport *, void *) = SUB_CB(st, process_exited);

	st->code = c->code;
	st->exited = true;
	if (cb)
		cb(st, st->proto);
	sub_maybe_lost(st);
}

static int sub_new(struct tide_loop *loop, const struct tide_subprocess_protocol_ops *ops, void *proto,
		   const char *const *argv, const struct tide_subprocess_opts *opts, struct tide_future **out)
{
	struct tide_subprocess_transport *st;
	struct tide_future *f;
	int pipes[3], err, i;

	if (!out || (ops && ops->size < sizeof(size_t)))
		return -EINVAL;
	if (!(st = tide__calloc(1, sizeof(*st))))
		return -ENOMEM;
	if ((err = tide__subprocess_start(loop, argv, opts, sub_exited, st, pipes, &st->child))) {
		tide__free(st);
		return err;
	}
	/* From here on the child runs: only pipes can still fail to come. */
	st->refs = 1;
	st->loop = loop;
	st->pid = st->child->pid;
	st->ops = ops ? ops : &no_ops;
	st->proto = proto;
	loop->live_net++;
	for (i = 0; i < 3; i++) {
		st->pp[i].st = st;
		st->pp[i].fd = i;
		if (pipes[i] < 0 || err)
			continue;
		/* The pipe transport owns the fd from here, on error too. */
		err = tide__pipe_transport_new(loop, pipes[i], i ? TIDE__PIPE_READ : TIDE__PIPE_WRITE, &pp_ops,
					       &st->pp[i], &st->pipes[i]);
		pipes[i] = -1;
	}
	if (!err)
		err = tide_future_new(loop, &f);
	if (err) {
		/* The child runs: killed, and reaped by the loop, with no
		 * callback to a protocol that never saw connection_made. */
		for (i = 0; i < 3; i++) {
			if (pipes[i] >= 0)
				close(pipes[i]);
			if (st->pipes[i]) {
				tide__transport_discard(st->pipes[i]);
				st->pipes[i] = NULL;
			}
		}
		st->ops = &no_ops;
		tide_subprocess_transport_close(st);
		return err; /* its own reference goes once the child is reaped */
	}
	f->ptr_release = (void (*)(void *))tide_subprocess_transport_unref;
	tide_future_set_result(f, 0, tide_subprocess_transport_ref(st));
	if (SUB_CB(st, connection_made))
		SUB_CB(st, connection_made)(st, st->proto);
	/* Reading starts after connection_made, as asyncio's. */
	for (i = 0; i < 3; i++)
		if (st->pipes[i])
			tide__transport_start(st->pipes[i]);
	*out = f;
	return 0;
}

TIDE_EXTERN int tide_subprocess_exec(struct tide_loop *loop, const struct tide_subprocess_protocol_ops *ops,
				     void *proto, const char *const *argv, const struct tide_subprocess_opts *opts,
				     struct tide_future **out)
{
	return sub_new(loop, ops, proto, argv, opts, out);
}

TIDE_EXTERN int tide_subprocess_shell(struct tide_loop *loop, const struct tide_subprocess_protocol_ops *ops,
				      void *proto, const char *cmd, const struct tide_subprocess_opts *opts,
				      struct tide_future **out)
{
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };

	if (!cmd)
		return -EINVAL;
	return sub_new(loop, ops, proto, argv, opts, out);
}

TIDE_EXTERN struct tide_subprocess_transport *tide_subprocess_transport_ref(struct tide_subprocess_transport *t)
{
	if (t)
		t->refs++;
	return t;
}

TIDE_EXTERN void tide_subprocess_transport_unref(struct tide_subprocess_transport *t)
{
	if (t && !--t->refs)
		sub_free(t);
}

TIDE_EXTERN pid_t tide_subprocess_transport_get_pid(const struct tide_subprocess_transport *t)
{
	return t ? t->pid : -EINVAL;
}

TIDE_EXTERN int tide_subprocess_transport_get_returncode(const struct tide_subprocess_transport *t, int *code)
{
	if (!t)
		return -EINVAL;
	if (!t->exited)
		return 0;
	if (code)
		*code = t->code;
	return 1;
}

TIDE_EXTERN struct tide_transport *tide_subprocess_transport_get_pipe_transport(const struct tide_subprocess_transport *t,
										 int fd)
{
	return t && fd >= 0 && fd < 3 ? t->pipes[fd] : NULL;
}

TIDE_EXTERN int tide_subprocess_transport_send_signal(struct tide_subprocess_transport *t, int signo)
{
	return t ? tide__child_signal(t->child, signo) : -EINVAL;
}

TIDE_EXTERN int tide_subprocess_transport_terminate(struct tide_subprocess_transport *t)
{
	return tide_subprocess_transport_send_signal(t, SIGTERM);
}

TIDE_EXTERN int tide_subprocess_transport_kill(struct tide_subprocess_transport *t)
{
	return tide_subprocess_transport_send_signal(t, SIGKILL);
}

TIDE_EXTERN void tide_subprocess_transport_close(struct tide_subprocess_transport *t)
{
	if (!t || t->closed)
		return;
	t->closed = true;
	for (int i = 0; i < 3; i++)
		if (t->pipes[i])
			tide_transport_close(t->pipes[i]);
	/* asyncio's close: a child still running is killed (and reaped as
	 * any other). */
	if (!t->exited)
		tide__child_signal(t->child, SIGKILL);
}
