/* SPDX-License-Identifier: MIT */
/*
 * transport.c: asyncio's socket transports over the op layer. A stream
 * transport reads in one of two ways, chosen once per transport:
 *
 *  - multishot: one recv-multishot op drawing from the loop's
 *    provided-buffer ring; each result's ring buffer (the op layer hands
 *    it over as {buf, len, id}) goes straight to data_received and back to
 *    the ring. No syscall per message.
 *  - readiness: a POLLIN op (POLL_ADD or epoll), then recv(2) into the
 *    loop's shared buffer (or the buffered protocol's own buffer).
 *
 * Writes append to a buffer and one send op at a time sends it (the ring
 * batches those SQEs into the loop's next io_uring_enter); on the readiness
 * paths a write with nothing buffered first tries send(2) at once, as
 * asyncio's selector transports do. Big flushes use zero-copy sends.
 *
 * Pipe transports (pipe.c makes them: a pipe, FIFO or character device)
 * are these stream transports with the pipe bit: a READ_MULTISHOT instead
 * of the multishot recv, read(2) instead of recv(2) after readiness, WRITE
 * ops instead of SEND (never a write(2) at write time: on the readiness
 * paths the op's first attempt is one), no zero-copy, and a write_eof that
 * closes the fd once flushed (there is no shutdown). A write pipe's
 * read op watches for its reader going away (asyncio's add_reader on the
 * write end), for connection_lost(-EPIPE) even when idle.
 *
 * The hard part is the end: connection_lost must come exactly once, after
 * the last op's final completion (the kernel may still read the write
 * buffer or fill a receive), with no callback after it; and data a
 * multishot receive delivers while reading is paused must be held back and
 * handed over, in order, on resume_reading.
 */
#include "net/net.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_HIGH (64 * 1024)
/* Flushes this big go out as zero-copy sends where the kernel has them. */
#define ZC_THRESHOLD (32 * 1024)
/*
 * The most one send op asks for. A TCP send larger than about 64 KiB into
 * a small SO_SNDBUF crawls at 2 MB/s (the kernel's, not io_uring's: a
 * blocking write(2) does the same), while sends below it run at full
 * speed; a bigger flush simply takes several sends.
 */
#define SEND_MAX 60000

static void write_kick(struct tide_transport *t);
static void on_eof(struct tide_transport *t);
static void t_abort(struct tide_transport *t);

/* ---------------------------------------------------------- helpers -- */

static size_t wsize(const struct tide_transport *t)
{
	return (t->wa.len - t->wa_off) + t->wb.len + (t->kind == TIDE__T_DGRAM ? t->dq_bytes : 0);
}

/*
 * The half being sent is emptied: a provided buffer it was sending from
 * goes back to the receive ring (see write_iov); storage zero-copy sends
 * still read goes to their pin, back to its pool with the last
 * notification; else as tide__wbuf_reset.
 */
static void wa_reset(struct tide_transport *t)
{
	struct tide_loop *loop = tloop(t);

	if (t->wa_pin) {
		t->wa_pin->p = t->wa.p;
		t->wa_pin->cap = t->wa.cap;
		t->wa_pin = NULL;
		t->wa.p = NULL;
		t->wa.len = t->wa.cap = 0;
		return;
	}
	if (t->wa_lent) {
		t->wa_lent = 0;
		tide__pbuf_return(loop, (unsigned)t->wa.cap);
		t->wa.p = NULL;
		t->wa.len = t->wa.cap = 0;
		return;
	}
	tide__wbuf_reset(loop->net, &t->wa);
}

int tide__t_new_op(struct tide_transport *t, int kind, tide__op_done_cb done, struct tide__op **out)
{
	int err = tide__op_new(tloop(t), kind, out);

	if (err)
		return err;
	(*out)->fd = t->fd;
	(*out)->owner = t;
	(*out)->done = done;
	/* The transport closes its fd through the loop (fd_close). */
	(*out)->flags |= TIDE__OP_LAZY;
	return 0;
}

/* The protocol reached the write buffer's high-water mark, or left it. */
void tide__t_maybe_pause(struct tide_transport *t)
{
	if (!t->write_paused && !t->lost && wsize(t) > t->high) {
		t->write_paused = true;
		if (PROTO_CB(t, pause_writing))
			PROTO_CB(t, pause_writing)(t, t->proto);
	}
}

void tide__t_maybe_resume(struct tide_transport *t)
{
	if (t->write_paused && !t->lost && wsize(t) <= t->low) {
		t->write_paused = false;
		if (PROTO_CB(t, resume_writing))
			PROTO_CB(t, resume_writing)(t, t->proto);
	}
}

/* A fatal error: the first one is what connection_lost reports. */
void tide__t_fatal(struct tide_transport *t, int err)
{
	/* After an abort, what the cancelled ops say is not news. */
	if (!t->error && !t->aborted)
		t->error = err;
	t_abort(t);
}

/* ------------------------------------------------------------- reading -- */

static size_t held_len(const struct tide_transport *t)
{
	return t->held.len;
}

static int held_append(struct tide_transport *t, const void *data, size_t n)
{
	if (tide__wbuf_reserve(tloop(t)->net, &t->held, n) < 0)
		return -ENOMEM;
	memcpy(t->held.p + t->held.len, data, n);
	t->held.len += n;
	return 0;
}

static void held_drop(struct tide_transport *t)
{
	tide__wbuf_reset(tloop(t)->net, &t->held);
}

/* Gives bytes to the protocol: data_received, or copied into get_buffer's. */
static void feed(struct tide_transport *t, const char *data, size_t n)
{
	struct tide_loop *loop = tloop(t);

	if (!PROTO_CB(t, get_buffer)) {
		if (PROTO_CB(t, data_received))
			PROTO_CB(t, data_received)(t, data, n, t->proto);
		return;
	}
	/* A whole ring buffer the protocol can take as it is (a stream's peek). */
	if (t->keep && data == loop->net->lend_p && n == loop->net->lend_len && tide__pbuf_spare(loop) &&
	    t->keep(t, data, n, loop->net->lend_bid, t->proto)) {
		tide__lend_keep(loop);
		return;
	}
	while (n && !t->closing) {
		void *b = NULL;
		size_t blen = 0, k;
		int err = PROTO_CB(t, get_buffer)(t, n, &b, &blen, t->proto);

		if (err < 0 || !b || !blen) {
			tide__t_fatal(t, err < 0 ? err : -ENOBUFS);
			return;
		}
		k = blen < n ? blen : n;
		memcpy(b, data, k);
		if (PROTO_CB(t, buffer_updated))
			PROTO_CB(t, buffer_updated)(t, k, t->proto);
		data += k;
		n -= k;
		/* start_tls from inside buffer_updated: the rest is the TLS
		 * layer's (its protocol is not a buffered one). */
		if (TIDE__UNLIKELY(t->tls_raw)) {
			if (n && PROTO_CB(t, data_received))
				PROTO_CB(t, data_received)(t, data, n, t->proto);
			return;
		}
		/* Paused in the middle: the rest waits for resume_reading. */
		if (n && !t->reading && !t->closing) {
			if (held_append(t, data, n) < 0)
				tide__t_fatal(t, -ENOMEM);
			return;
		}
	}
}

/* Bytes from the kernel: to the protocol now, or held while paused. */
static void deliver(struct tide_transport *t, const char *data, size_t n)
{
	if (t->closing)
		return; /* asyncio: no data_received once closing */
	if (!t->reading || held_len(t)) {
		if (held_append(t, data, n) < 0)
			tide__t_fatal(t, -ENOMEM);
		return;
	}
	feed(t, data, n);
}

/* resume_reading with held bytes: hand them over first, then read on. */
static void deliver_held(void *arg)
{
	struct tide_transport *t = arg;
	struct tide__wbuf h = t->held;

	t->held_queued = false;
	if (t->closing || !t->reading) {
		tide_transport_unref(t);
		return;
	}
	/* What feeding it holds again (another pause) starts a new buffer. */
	t->held = (struct tide__wbuf){ 0 };
	/* None when only an EOF waited (feed would take NULL, 0 for the
	 * ring buffer being lent outside the lending window: both NULL, 0). */
	if (h.len)
		feed(t, h.p, h.len);
	tide__wbuf_reset(tloop(t)->net, &h);
	if (!t->closing && t->reading) {
		if (t->eof_seen && !t->rop_busy)
			on_eof(t);
		else
			tide__t_read_arm(t);
	}
	tide_transport_unref(t);
}

/* deliver_held runs soon (once however often asked), reading on after it. */
static void queue_held(struct tide_transport *t)
{
	if (t->held_queued)
		return;
	t->held_queued = true;
	tide_transport_ref(t);
	if (tide__ready_call(tloop(t), deliver_held, t) < 0) {
		t->held_queued = false;
		tide_transport_unref(t);
		tide__t_fatal(t, -ENOMEM);
	}
}

/*
 * A reset reads as EOF when another call (a send) took the socket's error
 * first. TCP says which it was: a FIN leaves an open write side in
 * CLOSE_WAIT, a reset leaves CLOSED. (Once our side shut down too, an
 * orderly close also ends in CLOSED, via TIME_WAIT: no telling there.)
 */
static bool was_reset(const struct tide_transport *t)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (t->write_shut || t->eof_pending || t->pipe)
		return false;
	if (getsockopt(t->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return false; /* not TCP (a unix socket): an EOF is an EOF */
	return ti.tcpi_state == TCP_CLOSE;
}

static void on_eof(struct tide_transport *t)
{
	int keep = 0;

	if (t->closing || t->eof_done)
		return;
	if (was_reset(t)) {
		tide__t_fatal(t, -ECONNRESET);
		return;
	}
	t->eof_seen = true;
	/* Paused with bytes held: the EOF waits behind them (deliver_held). */
	if (!t->reading || held_len(t))
		return;
	t->eof_done = true; /* once per connection, as asyncio calls it */
	if (PROTO_CB(t, eof_received))
		keep = PROTO_CB(t, eof_received)(t, t->proto);
	/* keep: half-closed, the protocol may still write (asyncio's rule);
	 * a read pipe has nothing to write: it closes all the same. */
	if (!keep || t->pipe)
		tide__t_close(t);
}

/*
 * A bulk flow reads by readiness: a multishot receive hands a flow over
 * in ring-buffer pieces (4 KiB by default), each a completion, a
 * data_received and mostly a copy into the write buffer, where a recv(2)
 * after POLLIN takes 64 KiB at once: a 64 KiB echo cost 2.7 times epoll's
 * CPU. BULK_RUN full ring buffers in one loop iteration (that much was
 * queued at once) switch the transport to POLLIN + recv(2); SMALL_RUN
 * reads in a row shorter than a ring buffer switch it back.
 */
#define BULK_RUN 16
#define SMALL_RUN 16

static void bulk_check(struct tide_transport *t, struct tide__op *op)
{
	uint32_t iter = (uint32_t)tloop(t)->stats.iterations;

	t->rd_run = iter == t->rd_iter ? t->rd_run + 1 : 1;
	t->rd_iter = iter;
	if (t->rd_run >= BULK_RUN && (op->flags & TIDE__OP_MORE)) {
		/* The cancel's completion re-arms, as a POLLIN now; writes
		 * try send(2) at once, as on the readiness paths. */
		t->multishot = 0;
		t->direct_send = 1;
		t->rd_run = 0;
		tide__op_cancel(op);
	}
}

/* A multishot recv CQE: one buffer of data, or the end of the multishot. */
static void ms_done(struct tide__op *op)
{
	struct tide_transport *t = op->owner;
	int res = op->res;

	if (res > 0 && (op->flags & TIDE__OP_PBUF)) {
		tide__t_rx_seen(t);
		if (TIDE__UNLIKELY((size_t)res == op->loop->recv_buf_size))
			bulk_check(t, op);
		tide__lend_deliver(t, op, deliver);
	}
	if (op->flags & TIDE__OP_MORE)
		return;
	t->rop_busy = 0;
	if (res == 0)
		on_eof(t);
	else if (res < 0 && res != -ENOBUFS && res != -ECANCELED)
		tide__t_fatal(t, res);
	else
		/* The ring ran dry (ENOBUFS: its buffers are back by now), the
		 * kernel ended the multishot, or a pause's cancel finished:
		 * re-arm if reading is still wanted. */
		tide__t_read_arm(t);
	tide__t_maybe_finish(t);
}



/* The readiness paths' read: recv(2), or read(2) for a pipe. */
static TIDE__INLINE ssize_t rd(const struct tide_transport *t, void *b, size_t n)
{
	return TIDE__UNLIKELY(t->pipe) ? read(t->fd, b, n) : recv(t->fd, b, n, MSG_DONTWAIT);
}

/* Readiness path: the socket is readable; read once (level-triggered). */
static void poll_read_done(struct tide__op *op)
{
	struct tide_transport *t = op->owner;
	int res = op->res;
	ssize_t r;

	t->rop_busy = 0;
	if (res < 0) {
		if (res != -ECANCELED)
			tide__t_fatal(t, res);
		else
			tide__t_read_arm(t);
		tide__t_maybe_finish(t);
		return;
	}
	if (t->closing || !t->reading) {
		tide__t_maybe_finish(t);
		return;
	}
	if (t->kind == TIDE__T_DGRAM) {
		tide__dgram_read(t);
		return;
	}
	if (PROTO_CB(t, get_buffer)) {
		void *b = NULL;
		size_t blen = 0;
		int err = PROTO_CB(t, get_buffer)(t, TIDE__READ_CHUNK, &b, &blen, t->proto);

		if (err < 0 || !b || !blen) {
			tide__t_fatal(t, err < 0 ? err : -ENOBUFS);
			return;
		}
		do
			r = rd(t, b, blen);
		while (r < 0 && errno == EINTR);
		if (r > 0) {
			if (PROTO_CB(t, buffer_updated))
				PROTO_CB(t, buffer_updated)(t, (size_t)r, t->proto);
		}
	} else {
		char *b = tide__net_rbuf(tloop(t)->net);

		if (!b) {
			tide__t_fatal(t, -ENOMEM);
			return;
		}
		do
			r = rd(t, b, TIDE__READ_CHUNK);
		while (r < 0 && errno == EINTR);
		if (r > 0 && PROTO_CB(t, data_received))
			PROTO_CB(t, data_received)(t, b, (size_t)r, t->proto);
	}
	if (r > 0)
		tide__t_rx_seen(t);
	if (r > 0 && t->ms_ok) {
		/* Small reads again: back to the multishot (see BULK_RUN). */
		if ((size_t)r >= tloop(t)->recv_buf_size)
			t->rd_run = 0;
		else if (++t->rd_run >= SMALL_RUN) {
			t->rd_run = 0;
			t->multishot = 1;
			t->direct_send = !tide__op_native(tloop(t), TIDE_OP_SEND);
		}
	}
	if (r == 0)
		on_eof(t);
	else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		tide__t_fatal(t, -errno);
	else
		tide__t_read_arm(t);
	tide__t_maybe_finish(t);
}

/* The read op (kind, done) goes in flight: waiting for POLLIN if a poll. */
static TIDE__INLINE void rop_submit(struct tide_transport *t, int kind, tide__op_done_cb done)
{
	struct tide__op *op = &t->rop;
	int err;

	tide__op_init(tloop(t), kind, op);
	op->fd = t->fd;
	op->owner = t;
	op->done = done;
	op->flags |= TIDE__OP_LAZY;
	op->events = POLLIN;
	t->rop_busy = 1;
	err = tide__op_submit(op);
	if (err) {
		/* Never reached the backend (an unknown kind cannot happen). */
		t->rop_busy = 0;
		op->flags &= ~TIDE__OP_INFLIGHT;
		tide__t_fatal(t, err);
	}
}

/*
 * A write pipe's watch answered: its reader went away (POLLERR on a
 * pipe's write end; a socket's peer closing or sending, as asyncio reads
 * it), or the watch was cancelled. Bytes still buffered can go nowhere.
 */
static void pipe_gone_done(struct tide__op *op)
{
	struct tide_transport *t = op->owner;

	t->rop_busy = 0;
	if (op->res >= 0 && !(t->closing && !wsize(t)))
		tide__t_fatal(t, -EPIPE);
	else if (op->res < 0 && op->res != -ECANCELED)
		tide__t_fatal(t, op->res);
	tide__t_maybe_finish(t);
}

/* A pipe's read op: a multishot read, a poll then read(2), or a write
 * pipe's watch for its reader going away. */
static TIDE__OUTLINE void pipe_read_arm(struct tide_transport *t)
{
	if (!t->reading || t->closing || t->eof_seen || t->rop_busy || t->held.len)
		return;
	/*
	 * A completion inside the submit below (epoll calls a device it cannot
	 * watch, /dev/zero, always ready) comes back here with the submit
	 * still on the stack: the next read waits for the ready queue instead,
	 * lest a device that never runs dry recurse without end.
	 */
	if (t->arming) {
		queue_held(t);
		return;
	}
	t->arming = 1;
	if (t->pipe_rd)
		rop_submit(t, t->multishot ? TIDE_OP_READ_MULTISHOT : TIDE_OP_POLL, t->multishot ? ms_done : poll_read_done);
	else
		rop_submit(t, TIDE_OP_POLL, pipe_gone_done);
	t->arming = 0;
}

void tide__t_read_arm(struct tide_transport *t)
{
	/* The pipe bit shares the test of its neighbours: a socket's read
	 * pays nothing for it. */
	if (!t->reading || t->closing || t->eof_seen || t->rop_busy || t->pipe || t->held.len) {
		if (t->pipe)
			pipe_read_arm(t);
		return;
	}
	rop_submit(t, t->multishot ? TIDE_OP_RECV_MULTISHOT : TIDE_OP_POLL, t->multishot ? ms_done : poll_read_done);
}

/* ------------------------------------------------------------- writing -- */

static void shut_wr(struct tide_transport *t)
{
	t->eof_pending = false;
	if (!t->write_shut) {
		t->write_shut = true;
		shutdown(t->fd, SHUT_WR);
	}
}

/*
 * A zero-copy send of len bytes failed for want of lockable memory
 * (RLIMIT_MEMLOCK, shared by every process of the user): the loop sends by
 * copy until half of what its other zero-copy sends pinned came back, or
 * a while passed (1 s, doubling while it keeps failing, up to a minute).
 */
static void zc_nomem(struct tide_transport *t, size_t len)
{
	struct tide_loop *loop = tloop(t);
	struct tide__net *net = loop->net;
	size_t others = net->zc_pinned - len;

	loop->stats.sends_zc_nomem++;
	net->zc_nomem = true;
	net->zc_backoff = net->zc_backoff ? net->zc_backoff * 2 : 1;
	if (net->zc_backoff > 64)
		net->zc_backoff = 64;
	net->zc_retry = loop->now + net->zc_backoff * 1000000000u;
	net->zc_nomem_mark = others ? others / 2 + 1 : 0;
}

/* A send's result (the write op is done with): res bytes went, or an error. */
static TIDE__INLINE void sent(struct tide_transport *t, int res)
{
	if (res < 0) {
		if (res != -ECANCELED)
			tide__t_fatal(t, res);
		tide__t_maybe_finish(t);
		return;
	}
	if (res > 0)
		tide__t_tx_seen(t);
	t->wa_off += (size_t)res;
	if (t->wa_off >= t->wa.len) {
		wa_reset(t);
		t->wa_off = 0;
	}
	write_kick(t);
	if (!t->wop) {
		if (t->eof_pending)
			shut_wr(t);
	}
	tide__t_maybe_resume(t);
	tide__t_maybe_finish(t);
}

static void send_done(struct tide__op *op)
{
	struct tide_transport *t = op->owner;
	int res = op->res;

	t->wop = NULL;
	tide__op_release(op);
	sent(t, res);
}

/* A zero-copy send's result: as a send's, but where it sent nothing for
 * want of memory or support, the bytes go again by copy (zc_ok says no
 * after zc_nomem), and from now on on a socket that cannot send zero-copy
 * (or a kernel before 6.2, which refuses the usage report asked for). */
static void zc_sent(struct tide_transport *t, int res)
{
	if (!t->aborted && (res == -EOPNOTSUPP || res == -EINVAL || res == -ENOMEM)) {
		if (res != -ENOMEM)
			t->zc = 0;
		write_kick(t);
		return;
	}
	sent(t, res);
}

/* A zero-copy send's notification came (or its only completion): the
 * kernel is done with its bytes. */
static void zc_unpin(struct tide_transport *t, struct tide__zcpin *pin, size_t len)
{
	struct tide__net *net = tloop(t)->net;

	t->zc_pending--;
	net->zc_pinned -= len;
	if (--pin->pins)
		return;
	if (pin == t->wa_pin)
		t->wa_pin = NULL;
	else
		tide__wbuf_reset(net, &(struct tide__wbuf){ .p = pin->p, .cap = pin->cap });
	tide__free(pin);
}

/*
 * A zero-copy send completes twice: its result (TIDE__OP_MORE), which
 * lets the next send go at once, then its notification, which frees what
 * it pinned; or once, with a result, when the kernel kept nothing.
 */
static void zc_done(struct tide__op *op)
{
	struct tide__zcpin *pin = op->owner;
	struct tide_transport *t = pin->t;
	bool notif = op->flags & TIDE__OP_ZC_RESULT;
	int res = op->res;

	if (op->flags & TIDE__OP_MORE) {
		t->wop = NULL;
		if (res == -ENOMEM)
			zc_nomem(t, op->len);
		else if (res >= 0)
			tloop(t)->net->zc_backoff = 0;
		zc_sent(t, res);
		return;
	}
	if (!notif) {
		t->wop = NULL;
		if (res == -ENOMEM)
			zc_nomem(t, op->len);
	} else if (res == TIDE__ZC_COPIED && t->zc) {
		/* The kernel copied anyway (loopback): zero-copy only costs
		 * this connection a completion more per send. */
		t->zc = 0;
		tloop(t)->stats.sends_zc_copied++;
	}
	zc_unpin(t, pin, op->len);
	tide__op_release(op);
	if (!notif)
		zc_sent(t, res);
	else
		tide__t_maybe_finish(t);
}

/* The write side's op (a send, or a datagram's POLLOUT) goes in flight. */
void tide__t_submit_wop(struct tide_transport *t, struct tide__op *op)
{
	int err;

	t->wop = op;
	if ((err = tide__op_submit(op))) {
		/* Never reached the backend (an unknown kind cannot happen). */
		t->wop = NULL;
		op->flags &= ~TIDE__OP_INFLIGHT;
		tide__op_release(op);
		tide__t_fatal(t, err);
	}
}

/* Zero-copy sends are TCP's (AF_UNIX refuses them): asked once, when a
 * flush is first big enough to want one. */
static bool zc_ok(struct tide_transport *t)
{
	struct tide_loop *loop = tloop(t);
	int domain = 0;
	socklen_t len = sizeof(domain);

	if (!t->zc_checked) {
		t->zc_checked = 1;
		t->zc = tide__op_native(loop, TIDE_OP_SEND_ZC) &&
			getsockopt(t->fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
			(domain == AF_INET || domain == AF_INET6);
	}
	if (!t->zc || t->wa_lent)
		return false;
	if (TIDE__UNLIKELY(loop->net->zc_nomem)) {
		if (loop->now < loop->net->zc_retry && loop->net->zc_pinned >= loop->net->zc_nomem_mark)
			return false;
		loop->net->zc_nomem = false;
	}
	/* The pin that will free wa's storage once every notification is in. */
	if (!t->wa_pin) {
		if (!(t->wa_pin = tide__malloc(sizeof(*t->wa_pin))))
			return false;
		*t->wa_pin = (struct tide__zcpin){ .t = t };
	}
	return true;
}

/* Starts the next send if none is in flight and bytes wait. */
static void write_kick(struct tide_transport *t)
{
	struct tide__op *op;
	int kind, err;

	if (t->wop || t->error || t->corked)
		return;
	if (t->wa_off >= t->wa.len) {
		struct tide__wbuf tmp;

		if (!t->wb.len)
			return;
		/* What was written meanwhile becomes what is being sent. */
		wa_reset(t);
		t->wa_off = 0;
		tmp = t->wa;
		t->wa = t->wb;
		t->wb = tmp;
	}
	kind = TIDE_OP_SEND;
	if (t->wa.len - t->wa_off >= ZC_THRESHOLD && zc_ok(t))
		kind = TIDE_OP_SEND_ZC;
	if ((err = tide__t_new_op(t, kind, kind == TIDE_OP_SEND_ZC ? zc_done : send_done, &op))) {
		tide__t_fatal(t, err);
		return;
	}
	op->buf = t->wa.p + t->wa_off;
	op->len = t->wa.len - t->wa_off;
	if (op->len > SEND_MAX)
		op->len = SEND_MAX;
	if (kind == TIDE_OP_SEND_ZC) {
		op->owner = t->wa_pin;
		t->wa_pin->pins++;
		t->zc_pending++;
		tloop(t)->net->zc_pinned += op->len;
	}
	/*
	 * On the readiness paths send(2) was just tried: wait first. A pipe's
	 * send becomes a WRITE at the current position (never zero-copy).
	 * Both bits in one test: a socket's send on io_uring pays nothing for
	 * pipes (choosing the kind above cost it 6 instructions a message).
	 */
	if (TIDE__UNLIKELY(t->direct_send || t->pipe)) {
		if (t->direct_send)
			op->flags |= TIDE__OP_NO_TRY;
		if (t->pipe) {
			op->kind = TIDE_OP_WRITE;
			op->off = -1;
		}
	}
	tide__t_submit_wop(t, op);
}


/*
 * The readiness paths' write: send(2) at once, as asyncio does. Returns
 * the bytes sent (0 when the socket is full), or -errno. Out of line: a
 * server's echo on io_uring never comes here, and its msghdr would deepen
 * write_iov's frame on every task's stack.
 */
static TIDE__OUTLINE ssize_t send_now(struct tide_transport *t, const struct iovec *iov, int iovcnt)
{
	/* The kernel refuses more than IOV_MAX entries (EMSGSIZE): the rest
	 * is buffered, as what a full socket leaves. */
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)(iovcnt < IOV_MAX ? iovcnt : IOV_MAX) };
	ssize_t r;

	tloop(t)->stats.sends_direct++;
	do
		r = sendmsg(t->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	return r;
}

static TIDE__INLINE int write_body(struct tide_transport *t, const struct iovec *iov, int iovcnt)
{
	size_t total = 0, skip = 0;
	int i;

	if (t->closing || t->lost)
		return TIDE_ECLOSED;
	/* A forked child's send(2) would go out on the parent's connection. */
	if (tide__loop_forked(tloop(t)))
		return TIDE_EFORKED;
	if (t->eof_pending || t->write_shut)
		return -EPIPE;
	for (i = 0; i < iovcnt; i++) {
		/* No write is longer than write(2) can say (SSIZE_MAX). */
		if ((!iov[i].iov_base && iov[i].iov_len) || iov[i].iov_len > (size_t)SSIZE_MAX - total)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	if (!total)
		return 0;
	if (t->direct_send && !t->corked && !t->wop && wsize(t) == 0) {
		ssize_t r = send_now(t, iov, iovcnt);

		if (r < 0) {
			/* asyncio: the error goes to connection_lost, not the writer. */
			tide__t_fatal(t, (int)r);
			return 0;
		}
		if (r > 0)
			tide__t_tx_seen(t);
		if ((size_t)r == total)
			return 0;
		skip = (size_t)r;
	}
	/*
	 * An echo's or a proxy's write of the bytes data_received is reading
	 * from a ring buffer, with nothing else to send: the send goes out
	 * from that buffer, which returns to the ring when it completes (no
	 * copy, as a hand-written io_uring server does), while the ring can
	 * spare it (tide__pbuf_spare).
	 */
	if (iovcnt == 1 && !t->direct_send && tide__lent_bytes(tloop(t)->net, iov[0].iov_base, total) && !t->wop &&
	    !t->wa_lent && !t->wa.cap && !t->wb.len && tide__pbuf_spare(tloop(t))) {
		struct tide_loop *loop = tloop(t);

		t->wa.p = iov[0].iov_base;
		t->wa.len = total;
		t->wa.cap = loop->net->lend_bid;
		t->wa_off = 0;
		t->wa_lent = 1;
		loop->stats.sends_from_ring++;
		tide__lend_keep(loop);
		write_kick(t);
		tide__t_maybe_pause(t);
		return 0;
	}
	/* All of it or none: a write that fails buffered nothing. */
	if (tide__wbuf_reserve(tloop(t)->net, &t->wb, total - skip) < 0) {
		/* Part of it went out already: the stream cannot go on, and
		 * (asyncio's rule) the error goes to connection_lost. */
		if (skip) {
			tide__t_fatal(t, -ENOMEM);
			return 0;
		}
		return -ENOMEM;
	}
	for (i = 0; i < iovcnt; i++) {
		size_t n = iov[i].iov_len;
		const char *p = iov[i].iov_base;

		if (skip >= n) {
			skip -= n;
			continue;
		}
		memcpy(t->wb.p + t->wb.len, p + skip, n - skip);
		t->wb.len += n - skip;
		skip = 0;
	}
	write_kick(t);
	tide__t_maybe_pause(t);
	return 0;
}

/*
 * The public write: a TLS transport, the stream under one and a read pipe
 * share the one test of the kind's neighbour bits, so a socket's write
 * pays nothing for them.
 */
static int write_iov(struct tide_transport *t, const struct iovec *iov, int iovcnt)
{
	if (!t || (iovcnt && !iov) || iovcnt < 0)
		return -EINVAL;
	if (TIDE__UNLIKELY(t->kind != TIDE__T_STREAM || t->pipe_rd || t->tls_raw)) {
		if (t->tls_raw)
			return TIDE_ESSL_CLOSED;
		if (t->kind == TIDE__T_TLS)
			return tide__tls_writev(t, iov, iovcnt);
		return -EOPNOTSUPP;
	}
	return write_body(t, iov, iovcnt);
}

int tide__t_writev(struct tide_transport *t, const struct iovec *iov, int iovcnt)
{
	return write_body(t, iov, iovcnt);
}

void tide__t_uncork(struct tide_transport *t)
{
	t->corked = 0;
	/*
	 * The readiness paths: what waited is tried with send(2) at once, as
	 * write_body's direct path does, and the rest waits for POLLOUT. Not
	 * through a send op and sent(): that would call the protocol back
	 * (resume_writing) from inside the write that uncorks. Paused
	 * (pause_writing came while corked), the send waits for POLLOUT, so
	 * that its completion says resume_writing.
	 */
	if (t->direct_send && !t->wop && !t->error && !t->write_paused && t->wa_off >= t->wa.len && t->wb.len) {
		struct iovec iov = { .iov_base = t->wb.p, .iov_len = t->wb.len };
		ssize_t r = send_now(t, &iov, 1);

		if (r < 0) {
			tide__t_fatal(t, (int)r);
			return;
		}
		if (r > 0) {
			tide__t_tx_seen(t);
			if ((size_t)r == t->wb.len) {
				tide__wbuf_reset(tloop(t)->net, &t->wb);
			} else {
				struct tide__wbuf tmp;

				wa_reset(t);
				tmp = t->wa;
				t->wa = t->wb;
				t->wb = tmp;
				t->wa_off = (size_t)r;
			}
		}
	}
	write_kick(t);
	if (!t->wop && t->eof_pending)
		shut_wr(t);
	tide__t_maybe_finish(t);
}

TIDE_EXTERN int tide_transport_write(struct tide_transport *t, const void *data, size_t n)
{
	struct iovec iov = { .iov_base = (void *)data, .iov_len = n };

	return write_iov(t, &iov, 1);
}

TIDE_EXTERN int tide_transport_writelines(struct tide_transport *t, const struct iovec *iov, int iovcnt)
{
	return write_iov(t, iov, iovcnt);
}

TIDE_EXTERN int tide_transport_write_eof(struct tide_transport *t)
{
	if (!t)
		return -EINVAL;
	if (TIDE__UNLIKELY(t->kind == TIDE__T_TLS || t->tls_raw))
		return t->tls_raw ? TIDE_ESSL_CLOSED : tide__tls_write_eof(t);
	if (t->kind != TIDE__T_STREAM || t->pipe_rd)
		return -EOPNOTSUPP;
	if (t->closing || t->lost)
		return TIDE_ECLOSED;
	if (tide__loop_forked(tloop(t)))
		return TIDE_EFORKED; /* shutdown(2) would half-close the parent's */
	if (t->write_shut || t->eof_pending)
		return 0;
	/* A pipe has no half-close: its reader sees the end when the fd
	 * closes, once the buffer is flushed (asyncio's write pipe). */
	if (t->pipe) {
		tide_transport_close(t);
		return 0;
	}
	t->eof_pending = true;
	if (!t->wop && wsize(t) == 0)
		shut_wr(t);
	return 0;
}

TIDE_EXTERN int tide_transport_can_write_eof(const struct tide_transport *t)
{
	return t && (t->kind == TIDE__T_TLS || (t->kind == TIDE__T_STREAM && !t->pipe_rd));
}

/* -------------------------------------------------------- closing, end -- */

static void finish(void *arg)
{
	struct tide_transport *t = arg;
	struct tide_loop *loop = tloop(t);

	tide__op_fd_closing(loop, t->fd);
	close(t->fd);
	t->fd = -1;
	t->lost = true;
	if (t->dl)
		tide__t_timeouts_free(t);
	/* No op is in flight: the write buffers go back now, while the loop
	 * (its pools, its ring) is sure to exist. */
	wa_reset(t);
	t->wa_off = 0;
	tide__wbuf_reset(loop->net, &t->wb);
	loop->net_closing--;
	if (PROTO_CB(t, connection_lost))
		PROTO_CB(t, connection_lost)(t, t->error, t->proto);
	if (t->kind == TIDE__T_STREAM && t->gone)
		t->gone(t, t->server);
	loop->live_net--;
	tide_transport_unref(t);
}

/* Once closing, the last op's completion (or close itself) ends the transport. */
void tide__t_maybe_finish(struct tide_transport *t)
{
	if (!t->closing || t->lost_queued || t->rop_busy || t->wop || t->zc_pending)
		return;
	if (!t->error && wsize(t) && !t->lost)
		return; /* close() flushes first: send_done comes back here */
	t->lost_queued = true;
	/* asyncio calls connection_lost soon, not from inside close(); an
	 * internal call, so that a loop closed meanwhile still ends it. */
	if (tide__call_soon_internal(tloop(t), finish, t) < 0)
		finish(t);
}

/* The one way into closing: the loop counts transports on their way out. */
static void set_closing(struct tide_transport *t)
{
	if (!t->closing) {
		t->closing = 1;
		tloop(t)->net_closing++;
	}
}

TIDE_EXTERN void tide_transport_close(struct tide_transport *t)
{
	if (!t)
		return;
	if (TIDE__UNLIKELY(t->kind == TIDE__T_TLS || t->tls_raw)) {
		if (!t->tls_raw)
			tide__tls_close(t);
		return;
	}
	tide__t_close(t);
}

void tide__t_close(struct tide_transport *t)
{
	if (t->closing)
		return;
	set_closing(t);
	if (t->rop_busy)
		tide__op_cancel(&t->rop);
	held_drop(t);
	/* Stream bytes and datagrams still buffered go out first. */
	tide__t_maybe_finish(t);
}

TIDE_EXTERN void tide_transport_abort(struct tide_transport *t)
{
	if (!t)
		return;
	if (TIDE__UNLIKELY(t->kind == TIDE__T_TLS || t->tls_raw)) {
		if (!t->tls_raw)
			tide__tls_abort(t);
		return;
	}
	t_abort(t);
}

static void t_abort(struct tide_transport *t)
{
	struct tide__dgram *d;

	set_closing(t);
	t->aborted = 1;
	t->wb.len = 0;
	while (t->kind == TIDE__T_DGRAM && (d = t->dq)) {
		t->dq = d->next;
		tide__free(d);
	}
	if (t->kind == TIDE__T_DGRAM) {
		t->dq_tailp = &t->dq;
		t->dq_bytes = 0;
	}
	held_drop(t);
	/* Nothing more is flushed: the bytes of the send in flight count as
	 * gone, though their memory stays until that op answers. */
	t->wa_off = t->wa.len;
	if (t->rop_busy)
		tide__op_cancel(&t->rop);
	if (t->wop)
		tide__op_cancel(t->wop);
	/*
	 * A zero-copy send's notification comes only when the kernel lets go
	 * of its pages, and sent bytes a peer never reads (or acknowledges)
	 * keep them in the socket's send queue until the socket goes, while
	 * we close the fd only after every notification. Disconnecting
	 * (connect to AF_UNSPEC: tcp_disconnect, a reset) purges the queue,
	 * so the notifications come and the close follows; the fd stays ours
	 * meanwhile. Only for sends whose result came: one still waiting for
	 * room has queued nothing (a partial send completes), so the cancel
	 * ends it.
	 */
	if (t->zc_pending > (t->wop && t->wop->kind == TIDE_OP_SEND_ZC ? 1u : 0u) &&
	    !tide__loop_forked(tloop(t))) { /* not the parent's connection from a forked child */
		struct sockaddr sa = { .sa_family = AF_UNSPEC };

		(void)connect(t->fd, &sa, sizeof(sa));
	}
	tide__t_maybe_finish(t);
}

TIDE_EXTERN int tide_transport_is_closing(const struct tide_transport *t)
{
	return t ? t->closing : 1;
}

/* A write pipe's read op is its watch for the reader going away. */
static bool write_pipe(const struct tide_transport *t)
{
	return t->pipe && !t->pipe_rd;
}

TIDE_EXTERN int tide_transport_pause_reading(struct tide_transport *t)
{
	if (!t)
		return -EINVAL;
	if (TIDE__UNLIKELY(t->kind == TIDE__T_TLS || t->tls_raw))
		return t->tls_raw ? TIDE_ESSL_CLOSED : tide__tls_pause_reading(t);
	return tide__t_pause_reading(t);
}

int tide__t_pause_reading(struct tide_transport *t)
{
	if (write_pipe(t))
		return -EOPNOTSUPP;
	if (t->closing)
		return 0;
	if (!t->reading)
		return 0;
	t->reading = false;
	if (t->rop_busy)
		tide__op_cancel(&t->rop);
	return 0;
}

TIDE_EXTERN int tide_transport_resume_reading(struct tide_transport *t)
{
	if (!t)
		return -EINVAL;
	if (TIDE__UNLIKELY(t->kind == TIDE__T_TLS || t->tls_raw))
		return t->tls_raw ? TIDE_ESSL_CLOSED : tide__tls_resume_reading(t);
	return tide__t_resume_reading(t);
}

int tide__t_resume_reading(struct tide_transport *t)
{
	if (write_pipe(t))
		return -EOPNOTSUPP;
	if (t->closing || t->reading)
		return 0;
	t->reading = true;
	if (t->held.len || (t->eof_seen && !t->eof_done && !t->rop_busy)) {
		queue_held(t);
		return 0;
	}
	tide__t_read_arm(t);
	return 0;
}

TIDE_EXTERN int tide_transport_is_reading(const struct tide_transport *t)
{
	return t && t->reading && !t->closing && !write_pipe(t);
}

TIDE_EXTERN int tide_transport_set_write_buffer_limits(struct tide_transport *t, size_t high, size_t low)
{
	if (!t)
		return -EINVAL;
	if (TIDE__UNLIKELY(t->kind == TIDE__T_TLS || t->tls_raw))
		return t->tls_raw ? TIDE_ESSL_CLOSED : tide__tls_set_limits(t, high, low);
	return tide__t_set_limits(t, high, low);
}

int tide__t_set_limits(struct tide_transport *t, size_t high, size_t low)
{
	/* 0 is asyncio's None: high defaults to 4 * low, or 64 KiB. */
	if (!high)
		high = !low ? DEFAULT_HIGH : low > SIZE_MAX / 4 ? SIZE_MAX : 4 * low;
	if (low > high)
		return -EINVAL;
	/* Stored in 32 bits: a mark past 4 GiB is as good as 4 GiB. The
	 * default low is a quarter of the high mark that is kept. */
	t->high = high > UINT32_MAX ? UINT32_MAX : (uint32_t)high;
	t->low = !low ? t->high / 4 : low > t->high ? t->high : (uint32_t)low;
	tide__t_maybe_pause(t);
	tide__t_maybe_resume(t);
	return 0;
}

TIDE_EXTERN size_t tide_transport_get_write_buffer_size(const struct tide_transport *t)
{
	if (t && TIDE__UNLIKELY(t->kind == TIDE__T_TLS))
		return tide__tls_wsize(t);
	return t ? wsize(t) : 0;
}

size_t tide__t_wsize(const struct tide_transport *t)
{
	return wsize(t);
}

TIDE_EXTERN void tide_transport_get_write_buffer_limits(const struct tide_transport *t, size_t *high, size_t *low)
{
	if (high)
		*high = t ? t->high : 0;
	if (low)
		*low = t ? t->low : 0;
}

TIDE_EXTERN int tide_transport_get_extra_info(const struct tide_transport *t, const char *name, void *buf,
					      socklen_t *len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r;

	if (!t || !name || !buf || !len)
		return -EINVAL;
	if (TIDE__UNLIKELY(t->kind == TIDE__T_TLS))
		return tide__tls_get_extra_info(t, name, buf, len);
	if (!strcmp(name, "socket") || !strcmp(name, "pipe")) {
		/* A pipe transport's fd is its "pipe" (asyncio's pipe
		 * transports have no "socket", even over one). */
		if ((name[0] == 'p') != t->pipe)
			return -ENOENT;
		if (*len < sizeof(int))
			return -ENOSPC;
		memcpy(buf, &t->fd, sizeof(int));
		*len = sizeof(int);
		return t->fd < 0 ? TIDE_ECLOSED : 0;
	}
	if (t->pipe || (strcmp(name, "peername") && strcmp(name, "sockname")))
		return -ENOENT;
	/* The socket is gone once connection_lost ran (asyncio keeps copies
	 * of both addresses; an idle transport here has no room for them). */
	if (t->fd < 0)
		return TIDE_ECLOSED;
	if (!strcmp(name, "peername"))
		r = getpeername(t->fd, (struct sockaddr *)&ss, &sl);
	else
		r = getsockname(t->fd, (struct sockaddr *)&ss, &sl);
	if (r < 0)
		return t->closing ? TIDE_ECLOSED : -errno; /* an abort may have disconnected it */
	if (*len < sl)
		return -ENOSPC;
	memcpy(buf, &ss, sl);
	*len = sl;
	return 0;
}

TIDE_EXTERN void *tide_transport_get_protocol(const struct tide_transport *t)
{
	return t ? t->proto : NULL;
}

TIDE_EXTERN struct tide_loop *tide_transport_loop(const struct tide_transport *t)
{
	return t ? tloop(t) : NULL;
}

TIDE_EXTERN struct tide_transport *tide_transport_ref(struct tide_transport *t)
{
	if (t)
		t->refs++;
	return t;
}

TIDE_EXTERN void tide_transport_unref(struct tide_transport *t)
{
	struct tide__dgram *d;

	if (!t || --t->refs)
		return;
	if (TIDE__UNLIKELY(t->kind == TIDE__T_TLS)) {
		tide__tls_free(t);
		return;
	}
	tide__bug_on(t->rop_busy || t->wop, "transport freed with an op in flight");
	if (t->dl)
		tide__t_timeouts_free(t);
	wa_reset(t);
	tide__wbuf_reset(tloop(t)->net, &t->wb);
	held_drop(t);
	while (t->kind == TIDE__T_DGRAM && (d = t->dq)) {
		t->dq = d->next;
		tide__free(d);
	}
	tide__free(t);
}

/* ------------------------------------------------------------ creation -- */

static const struct tide_protocol_ops no_ops = { .size = sizeof(no_ops) };

int tide__transport_new(struct tide_loop *loop, int fd, int kind, const struct tide_protocol_ops *ops, void *proto,
			struct tide_server *server, struct tide_transport **out)
{
	struct tide_transport *t = tide__net_get(loop) ? tide__calloc(1, sizeof(*t)) : NULL;

	if (!t) {
		close(fd);
		return -ENOMEM;
	}
	tide__op_init(loop, TIDE_OP_POLL, &t->rop);
	t->refs = 1;
	t->fd = fd;
	t->kind = (uint8_t)kind;
	tide__transport_bind(t, ops, proto);
	t->reading = true;
	t->high = DEFAULT_HIGH;
	t->low = DEFAULT_HIGH / 4;
	if (kind == TIDE__T_DGRAM)
		t->dq_tailp = &t->dq;
	else
		t->server = server;
	t->multishot = t->ms_ok = kind == TIDE__T_STREAM && tide__op_native(loop, TIDE_OP_RECV_MULTISHOT);
	/* With native sends the SQE rides the next io_uring_enter; elsewhere
	 * a send(2) now saves waiting for POLLOUT. */
	t->direct_send = !tide__op_native(loop, TIDE_OP_SEND);
	loop->live_net++;
	*out = t;
	return 0;
}

void tide__transport_set_keep(struct tide_transport *t, tide__keep_cb keep)
{
	t->keep = keep;
}

void tide__transport_bind(struct tide_transport *t, const struct tide_protocol_ops *ops, void *proto)
{
	t->ops = ops ? ops : &no_ops;
	t->proto = proto;
}

void tide__transport_discard(struct tide_transport *t)
{
	close(t->fd);
	tloop(t)->live_net--;
	tide__free(t);
}

void tide__transport_start(struct tide_transport *t)
{
	/* The caller's reference keeps t while connection_made runs (it may
	 * close or abort; finish comes later, through the ready queue). */
	if (PROTO_CB(t, connection_made))
		PROTO_CB(t, connection_made)(t, t->proto);
	tide__t_read_arm(t);
}
