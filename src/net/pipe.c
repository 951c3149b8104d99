/* SPDX-License-Identifier: MIT */
/*
 * pipe.c: asyncio's connect_read_pipe and connect_write_pipe. A pipe
 * transport is a stream transport (transport.c) with the pipe bit, which
 * reads and writes with read/write ops instead of recv/send; this file
 * checks the fd and makes it, for the public calls and for the
 * subprocess code's stdio pipes (tide__pipe_transport_new, net.h).
 *
 * The hard part is the fd's ownership: from the call on it is the
 * transport's, closed on every error too, except one that is not open
 * (-EBADF), which nobody may close (its number may be another thread's by
 * then).
 */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Can fd be a pipe transport's in direction dir? 0, or why not (*open:
 * whether fd is open, to be closed). */
static int pipe_fd_check(int fd, int dir, struct stat *st, bool *open)
{
	int fl = fcntl(fd, F_GETFL), acc;

	if (fl < 0)
		return -errno;
	*open = true;
	/* An O_PATH fd reads and writes nothing: read(2) would say EBADF. */
	if (fl & O_PATH)
		return -EBADF;
	if (fstat(fd, st) < 0)
		return -errno;
	/* A regular file or a directory never reports readiness, nor ends
	 * as a pipe does: asyncio refuses them too. */
	if (!S_ISFIFO(st->st_mode) && !S_ISSOCK(st->st_mode) && !S_ISCHR(st->st_mode))
		return -EINVAL;
	acc = fl & O_ACCMODE;
	if (acc != O_RDWR && acc != (dir == TIDE__PIPE_READ ? O_RDONLY : O_WRONLY))
		return -EINVAL; /* the other end, or opened the other way */
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || (!(fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0))
		return -errno;
	return 0;
}

int tide__pipe_transport_new(struct tide_loop *loop, int fd, int dir, const struct tide_protocol_ops *ops,
			     void *proto, struct tide_transport **out)
{
	struct tide_transport *t;
	struct stat st;
	bool open = false;
	int err;

	if (fd < 0)
		return -EBADF;
	if (!loop || !out || (dir != TIDE__PIPE_READ && dir != TIDE__PIPE_WRITE))
		err = -EINVAL, open = fcntl(fd, F_GETFD) >= 0;
	else
		err = pipe_fd_check(fd, dir, &st, &open);
	if (err) {
		if (open)
			close(fd);
		return err;
	}
	if ((err = tide__transport_new(loop, fd, TIDE__T_STREAM, ops, proto, NULL, &t)))
		return err; /* it closed fd */
	t->pipe = 1;
	t->pipe_rd = dir == TIDE__PIPE_READ;
	/* No zero-copy writes: asked once and answered now. */
	t->zc_checked = 1;
	t->zc = 0;
	/* Multishot reads need a file that polls: a character device may not
	 * (/dev/zero), so it reads after readiness. */
	t->multishot = t->ms_ok = t->pipe_rd && !S_ISCHR(st.st_mode) && tide__op_native(loop, TIDE_OP_READ_MULTISHOT);
	/* Writes go by WRITE op on every path (the readiness paths try it at
	 * once): the sockets' direct send(2) stays free of a pipe test. */
	t->direct_send = 0;
	/* A write pipe's read op watches for its reader going away, where
	 * there is one to watch (asyncio: FIFOs and sockets). */
	t->reading = t->pipe_rd || !S_ISCHR(st.st_mode);
	*out = t;
	return 0;
}

/* ------------------------------------------------------------ the API -- */

struct pipe_req {
	struct tide_transport *t;
	struct tide_future *f;
};

/* Soon after the call, as asyncio's: the future, then connection_made. */
static void pipe_started(void *arg)
{
	struct pipe_req *r = arg;
	struct tide_transport *t = r->t;

	if (tide_future_done(r->f)) {
		/* Cancelled meanwhile: nobody wants the transport. */
		tide__transport_discard(t);
		t = NULL;
	} else {
		tide__future_end_transport(r->f, 0, t);
	}
	tide_future_unref(r->f);
	tide__free(r);
	if (t)
		tide__transport_start(t);
}

static int connect_pipe(struct tide_loop *loop, int fd, int dir, const struct tide_protocol_ops *ops, void *proto,
			struct tide_future **out)
{
	struct tide_transport *t;
	struct pipe_req *r;
	int err;

	if (out)
		*out = NULL;
	if ((err = tide__pipe_transport_new(loop, fd, dir, ops, proto, out ? &t : NULL)))
		return err;
	if (!(r = tide__calloc(1, sizeof(*r)))) {
		tide__transport_discard(t);
		return -ENOMEM;
	}
	r->t = t;
	if ((err = tide_future_new(loop, &r->f)) || (err = tide__call_soon_internal(loop, pipe_started, r))) {
		if (r->f)
			tide_future_unref(r->f);
		tide__free(r);
		tide__transport_discard(t);
		return err;
	}
	*out = tide_future_ref(r->f);
	return 0;
}

TIDE_EXTERN int tide_connect_read_pipe(struct tide_loop *loop, int fd, const struct tide_protocol_ops *ops, void *proto,
				       struct tide_future **out)
{
	return connect_pipe(loop, fd, TIDE__PIPE_READ, ops, proto, out);
}

TIDE_EXTERN int tide_connect_write_pipe(struct tide_loop *loop, int fd, const struct tide_protocol_ops *ops,
					void *proto, struct tide_future **out)
{
	return connect_pipe(loop, fd, TIDE__PIPE_WRITE, ops, proto, out);
}
