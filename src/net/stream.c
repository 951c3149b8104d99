/* SPDX-License-Identifier: MIT */
/*
 * stream.c: asyncio's StreamReader and StreamWriter (Lib/asyncio/streams.py)
 * for tasks, built the way streams.py builds them: a protocol (asyncio's
 * StreamReaderProtocol) on the public transport API feeds a reader's byte
 * buffer and wakes the one task waiting in it; the writer is the transport
 * plus drain() and wait_closed(), whose waiters park on their own stacks
 * (tide__park, as sync.c does).
 *
 * The hard parts:
 * - Linear time. The reader's buffer is consumed from the front through a
 *   head offset and compacted only when the bytes to move are paid for by
 *   bytes consumed since (else it doubles), and readuntil()/readline()
 *   remember how far the separator search got (asyncio's `offset`), also
 *   across calls for the same separator, so 16 MiB arriving one byte at a
 *   time is scanned once.
 * - Lifetime. A reader/writer pair is one object that two parties hold:
 *   the user (tide_stream_free, or the end of a server's handler task) and
 *   the connection (connection_made .. connection_lost). Tasks waiting
 *   inside a call hold it too, so a wake-up never lands in freed memory.
 *   The pair holds a reference on its transport, so tide_stream_transport()
 *   and is_closing() stay valid after connection_lost.
 * - Cancellation loses no data: a read copies and consumes only once it can
 *   complete, and a cancelled wait leaves the buffer as it was.
 *
 * The protocol is a buffered one (get_buffer/buffer_updated): on the
 * readiness paths recv(2) writes straight into the reader's buffer, or,
 * when a read(n) or readexactly(n) waits on an empty one, into the
 * caller's own buffer (an idle connection then has no reader buffer at
 * all). One
 * deliberate difference from asyncio: the connection's error (asyncio's
 * set_exception) is returned once the bytes buffered before it are read,
 * not in their place.
 */
#include "net/net.h"
#include "net/stream-hooks.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>

/* asyncio's _DEFAULT_LIMIT (2 ** 16). */
#define STREAM_DEFAULT_LIMIT ((size_t)64 * 1024)
/* The smallest buffer allocated, and the first receive size offered. */
#define STREAM_MIN_BUF ((size_t)4096)
/* Separators up to this long keep their search position across calls. */
#define STREAM_SEP_CACHE 32
/* The most free space get_buffer makes room for, for one receive. */
#define STREAM_READ_HINT ((size_t)64 * 1024)

/* ------------------------------------------------------------ objects -- */

/* The caller's buffer of a waiting read(n), and what landed in it. */
struct read_lend {
	unsigned char *p;
	size_t len;
	size_t got;
};

/*
 * Field order is locality: a server with thousands of connections finds
 * each one cold, so what every read, wake-up and receive touches comes
 * first (with struct stream's own, 96 bytes in all), and what only
 * buffering, separator searches and flow control use comes after.
 */
struct tide_stream_reader {
	size_t head;               /* first unread byte */
	size_t tail;               /* end of the data; cap - tail is free at the end */
	/*
	 * A read(n) waiting on an empty buffer lends its destination (when
	 * it can take a whole receive, n >= rhint), and so does readexactly(n)
	 * with what is left of its own: the next bytes land there
	 * (recv(2) straight into it on the readiness paths, one copy from the
	 * ring buffer on io_uring), and the reader's own buffer is neither
	 * touched nor allocated. lend is that read's, while it waits and
	 * until it runs (more bytes land while there is room); landed is a
	 * read woken with bytes in its buffer that has not run yet: those
	 * bytes come before any buffered (other reads get -EBUSY until it
	 * has: see busy).
	 */
	struct read_lend *lend;
	struct read_lend *landed;
	struct tide__park *waiter; /* the one read waiting for data (asyncio's _waiter) */
	/*
	 * A peek waiting on an empty reader takes the next io_uring ring
	 * buffer as it is (stream_keep): its unread bytes [kp, kp +
	 * klen) come before the buffer's, and the ring has it back (kbid)
	 * once they are consumed. Any other read first copies them into the
	 * buffer (unkeep), so only peek and consume know of them.
	 */
	const unsigned char *kp;
	size_t klen;
	/*
	 * How much room get_buffer makes for a receive: it doubles while
	 * receives fill it (a bulk stream reads 64 KiB per syscall) and halves
	 * when they use little of it, so a connection of small messages keeps
	 * a small buffer. An empty buffer larger than this is freed.
	 */
	size_t rhint;
	bool eof;                  /* feed_eof: nothing more will arrive */
	/*
	 * A read call (read, readexactly, readuntil, readline, peek) is under
	 * way: from its start to its return it owns the buffer, so a read,
	 * peek or consume beside it gets -EBUSY, even while it is woken and
	 * has not run yet. One call at a time is what keeps a separator
	 * search's position (its own, and scan_off) true across its waits.
	 */
	bool busy;
	bool paused;               /* we paused the transport's reading (buffer > 2 * limit) */
	bool holding;              /* a readexactly holds bytes it took, across its waits */
	bool peeking;              /* the waiting read is a peek: it may keep a ring buffer */
	unsigned kbid;             /* the kept ring buffer's id (kp != NULL) */
	int err;                   /* the connection's error (with eof), returned once the buffer is empty */
	struct tide__stream_stats stats; /* waits and direct first: counted per read */
	unsigned char *buf;        /* bytes [head, tail) are buffered, unread */
	size_t cap;                /* allocated size of buf */
	size_t limit;              /* readline/readuntil limit; flow control at 2 * limit */
	/*
	 * Separator search position kept across calls: no occurrence of
	 * scan_sep starts in [head, head + scan_off). Consuming n bytes moves
	 * it back by n; a call with another separator starts again at 0.
	 */
	size_t scan_seplen;        /* 0: nothing cached */
	size_t scan_off;
	unsigned char scan_sep[STREAM_SEP_CACHE];
};

struct tide_stream_writer {
	bool paused;               /* between pause_writing and resume_writing */
	struct tide__wlist drainers;    /* tasks in drain() */
	struct tide__wlist closers;     /* tasks in wait_closed() */
};

struct stream_server;

/* The pair: one allocation, the protocol object of its transport. */
struct stream {
	unsigned refs;              /* the user's, the connection's, and one per call inside a wait */
	bool made;                  /* connection_made ran */
	bool lost;                  /* connection_lost ran */
	bool released;              /* the user let go (tide_stream_free, handler done) */
	struct tide_loop *loop;
	struct tide_transport *t;   /* a reference, from connection_made until the pair goes */
	struct tide_stream_reader r; /* its hot fields follow these (see the reader) */
	struct tide_stream_writer w;
	struct stream_server *srv;  /* server connections: the handler (a reference), else NULL */
	int lost_err;               /* its error (0: clean close) */
};

/*
 * A server's handler. The server keeps it as its factory argument and
 * each live connection holds a reference; see start_server for when the
 * server's own reference goes.
 */
struct stream_server {
	struct tide_loop *loop;
	tide_stream_handler_cb handler;
	void *arg;
	unsigned refs;
};

static struct stream *of_reader(const struct tide_stream_reader *r)
{
	return tide__container_of(r, struct stream, r);
}

static struct stream *of_writer(const struct tide_stream_writer *w)
{
	return tide__container_of(w, struct stream, w);
}

static void srv_unref(struct stream_server *srv)
{
	if (--srv->refs == 0)
		tide__free(srv);
}

static struct stream *stream_new(struct tide_loop *loop)
{
	struct stream *s = tide__calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->loop = loop;
	s->r.limit = STREAM_DEFAULT_LIMIT;
	s->r.rhint = STREAM_MIN_BUF;
	s->refs = 1; /* the user's */
	return s;
}

/* The kept ring buffer goes back to the ring. */
static void keep_drop(struct stream *s)
{
	struct tide_stream_reader *r = &s->r;

	if (r->kp) {
		tide__pbuf_return(s->loop, r->kbid);
		r->kp = NULL;
		r->klen = 0;
	}
}

static void stream_destroy(struct stream *s)
{
	keep_drop(s);
	tide__free(s->r.buf);
	if (s->t)
		tide_transport_unref(s->t);
	if (s->srv)
		srv_unref(s->srv);
	tide__free(s);
}

static struct stream *stream_hold(struct stream *s)
{
	s->refs++;
	return s;
}

static void stream_unref(struct stream *s)
{
	tide__bug_on(s->refs == 0, "stream reference count underflow");
	if (--s->refs == 0)
		stream_destroy(s);
}

/* Whether the running task may wait on s: 0, TIDE_ENOT_IN_TASK, -EINVAL. */
static int may_wait(const struct stream *s)
{
	struct tide_future *task = tide_current_task();

	if (!task)
		return TIDE_ENOT_IN_TASK;
	return tide_future_loop(task) == s->loop ? 0 : -EINVAL;
}

/*
 * A read call starts: -EBUSY while another is under way (see busy: a
 * read woken with bytes in its own buffer, a readexactly holding bytes it
 * took, a readline that searched part of the buffer all come first).
 * Peek keeps a kept ring buffer as it is; the other reads move it into
 * the buffer first.
 */
static int unkeep(struct stream *s);

static int reader_begin(struct tide_stream_reader *r, bool peek, struct stream **s)
{
	if (r->busy)
		return -EBUSY;
	if (!peek && r->kp && unkeep(of_reader(r)) < 0)
		return -ENOMEM;
	r->busy = true;
	*s = stream_hold(of_reader(r));
	return 0;
}

/* The read call returns: the next may start. */
static void reader_end(struct stream *s)
{
	s->r.busy = false;
	stream_unref(s);
}

/* ------------------------------------------------------------- waiters -- */

/* Parks the running task in l until woken (the code) or cancelled. */
static int wl_wait(struct stream *s, struct tide__wlist *l)
{
	struct tide__waiter w;
	int rc;

	if ((rc = may_wait(s)))
		return rc;
	tide__wl_push(l, &w);
	rc = tide__park(&w.park);
	if (w.list)
		tide__wl_unlink(&w);
	return rc;
}

/* -------------------------------------------------------------- buffer -- */

static size_t rlen(const struct tide_stream_reader *r)
{
	return r->tail - r->head;
}

/*
 * Makes room for n more bytes at the tail. Compaction moves the unread
 * bytes only when at least as many were consumed in front of them (so
 * each move is paid for by consumed bytes); otherwise the buffer doubles.
 * Either way the cost is amortised O(1) per byte.
 */
static int reserve(struct tide_stream_reader *r, size_t n)
{
	size_t len = rlen(r);
	size_t ncap;
	unsigned char *nb;

	if (r->cap - r->tail >= n)
		return 0;
	if (r->head >= len && r->cap - len >= n) {
		memmove(r->buf, r->buf + r->head, len);
		r->stats.moved += len;
		r->head = 0;
		r->tail = len;
		return 0;
	}
	if (len > SIZE_MAX / 2 - n)
		return -ENOMEM;
	ncap = r->cap ? r->cap : STREAM_MIN_BUF;
	while (ncap - len < n || ncap < 2 * len)
		ncap *= 2;
	if (!(nb = tide__malloc(ncap)))
		return -ENOMEM;
	if (len)
		memcpy(nb, r->buf + r->head, len);
	tide__free(r->buf);
	r->stats.moved += len;
	r->stats.grows++;
	r->buf = nb;
	r->cap = ncap;
	r->head = 0;
	r->tail = len;
	return 0;
}

/* Drops n bytes from the front (they were copied out or discarded). */
static void consume(struct tide_stream_reader *r, size_t n)
{
	r->head += n;
	r->scan_off = r->scan_off > n ? r->scan_off - n : 0;
	if (r->head == r->tail) {
		r->head = r->tail = 0;
		/* A burst (a backlog, a big readexactly, a long line) need not
		 * pin its buffer: what receives use now is rhint. */
		if (r->cap > r->rhint) {
			tide__free(r->buf);
			r->buf = NULL;
			r->cap = 0;
		}
	}
}

/* asyncio's _maybe_resume_transport: reading goes on at limit or below. */
static void maybe_resume(struct stream *s)
{
	struct tide_stream_reader *r = &s->r;

	if (r->paused && rlen(r) <= r->limit) {
		r->paused = false;
		if (s->t && !s->lost)
			tide_transport_resume_reading(s->t);
	}
}

/* The first n buffered bytes go to buf; reading resumes if it may. */
static ssize_t take(struct stream *s, void *buf, size_t n)
{
	struct tide_stream_reader *r = &s->r;

	memcpy(buf, r->buf + r->head, n);
	consume(r, n);
	maybe_resume(s);
	return (ssize_t)n;
}

/* asyncio's feed_data check: past 2 * limit the transport stops reading. */
static void maybe_pause(struct stream *s)
{
	struct tide_stream_reader *r = &s->r;

	if (!r->paused && s->t && !s->lost && rlen(r) > 2 * r->limit &&
	    tide_transport_pause_reading(s->t) == 0)
		r->paused = true;
}

/* The bytes a cancelled read had received go back in front of the buffer. */
static int put_back(struct stream *s, const void *data, size_t n)
{
	struct tide_stream_reader *r = &s->r;
	size_t len = rlen(r);

	if (r->head >= n) {
		r->head -= n;
	} else {
		if (reserve(r, n) < 0)
			return -ENOMEM;
		memmove(r->buf + r->head + n, r->buf + r->head, len);
		r->stats.moved += len;
		r->tail += n;
	}
	memcpy(r->buf + r->head, data, n);
	r->scan_off = 0; /* new bytes in front: the separator search starts over */
	maybe_pause(s);
	return 0;
}

/* Wakes the read waiting for data, if any (asyncio's _wakeup_waiter). */
static void wakeup_reader(struct tide_stream_reader *r)
{
	if (r->waiter) {
		tide__unpark(r->waiter, 0);
		r->waiter = NULL;
	}
	r->lend = NULL; /* chosen (or cancelled): nothing more lands there */
	r->peeking = false; /* nor is a ring buffer kept for it */
}

/* A read other than peek starts: the kept bytes move into the buffer, in
 * front of what arrived after them, and the ring has its buffer back. */
static int unkeep(struct stream *s)
{
	struct tide_stream_reader *r = &s->r;

	if (put_back(s, r->kp, r->klen) < 0)
		return -ENOMEM;
	keep_drop(s);
	return 0;
}

/* The transport's keep hook (net.h): a waiting peek takes a whole ring buffer. */
static bool stream_keep(struct tide_transport *t, const char *data, size_t n, unsigned bid, void *proto)
{
	struct stream *s = proto;
	struct tide_stream_reader *r = &s->r;

	(void)t;
	if (!r->waiter || !r->peeking || r->kp || rlen(r) || r->eof)
		return false;
	r->kp = (const unsigned char *)data;
	r->klen = n;
	r->kbid = bid;
	r->stats.kept += n;
	r->stats.fed += n;
	wakeup_reader(r);
	return true;
}

/* Adapts rhint to a receive of n bytes (see the reader's rhint). */
static void rhint_update(struct tide_stream_reader *r, size_t n)
{
	if (n >= r->rhint && r->rhint < STREAM_READ_HINT)
		r->rhint *= 2;
	else if (n < r->rhint / 4 && r->rhint > STREAM_MIN_BUF)
		r->rhint /= 2;
}

/*
 * n more bytes landed in the lent buffer: the read waiting there is done.
 * Until it runs, what else arrives lands there too, while there is room
 * (a batch of io_uring receives fills it in turn).
 */
static void lend_filled(struct tide_stream_reader *r, size_t n)
{
	struct read_lend *l = r->lend;

	/* The first receive says how big receives are; a lend's last,
	 * partial fill says nothing. */
	if (!l->got)
		rhint_update(r, n);
	l->got += n;
	r->landed = l;
	if (l->got == l->len) {
		wakeup_reader(r);
	} else if (r->waiter) {
		tide__unpark(r->waiter, 0);
		r->waiter = NULL;
	}
}

/* Whether the next bytes go to a waiting read's own buffer. */
static bool lend_open(const struct tide_stream_reader *r)
{
	return r->lend && r->lend->got < r->lend->len && r->head == r->tail && !r->eof;
}

/* Out of memory for bytes that arrived: the stream fails as a whole, like a reset. */
static void fail_nomem(struct stream *s)
{
	struct tide_stream_reader *r = &s->r;

	r->eof = true;
	r->err = -ENOMEM;
	wakeup_reader(r);
	if (s->t && !s->lost)
		tide_transport_abort(s->t);
}

static void feed_data(struct stream *s, const void *data, size_t n)
{
	struct tide_stream_reader *r = &s->r;

	if (!n || r->eof)
		return;
	r->stats.fed += n;
	if (lend_open(r)) {
		struct read_lend *l = r->lend;
		size_t k = n < l->len - l->got ? n : l->len - l->got;

		memcpy(l->p + l->got, data, k);
		lend_filled(r, k);
		data = (const char *)data + k;
		if (!(n -= k))
			return;
	}
	if (reserve(r, n) < 0) {
		fail_nomem(s);
		return;
	}
	memcpy(r->buf + r->tail, data, n);
	r->tail += n;
	wakeup_reader(r);
	maybe_pause(s);
}

static void feed_eof(struct stream *s, int err)
{
	struct tide_stream_reader *r = &s->r;

	if (!r->eof) {
		r->eof = true;
		r->err = err;
	} else if (err && !r->err) {
		/* EOF first, then a reset: the error still counts. */
		r->err = err;
	}
	wakeup_reader(r);
}

/*
 * asyncio's _wait_for_data: parks until data, EOF or an error arrives.
 * Only the read call under way waits (reader_begin refused the others
 * with -EBUSY, asyncio's RuntimeError).
 * read(n) and readexactly(n) on an empty buffer pass their buffer (see
 * the reader's lend): then the bytes that landed there (> 0) are the
 * result. Cancelled after bytes landed, it puts them back in front of the
 * buffer, so a cancelled read consumes nothing.
 */
static ssize_t reader_wait(struct stream *s, void *buf, size_t n)
{
	struct tide_stream_reader *r = &s->r;
	struct read_lend l = { .p = buf, .len = n };
	struct tide__park p;
	int rc;

	tide__bug_on(r->waiter != NULL, "stream: a second read waits beside the one under way");
	if ((rc = may_wait(s)))
		return rc;
	/* A read that needs more than 2 * limit (readexactly) resumes reading. */
	if (r->paused) {
		r->paused = false;
		if (s->t && !s->lost)
			tide_transport_resume_reading(s->t);
	}
	if (buf && n >= r->rhint)
		r->lend = &l;
	r->waiter = &p;
	r->stats.waits++;
	rc = tide__park(&p);
	if (r->waiter == &p)
		r->waiter = NULL; /* cancelled: no wake-up took it off */
	if (r->lend == &l)
		r->lend = NULL;
	if (r->landed == &l)
		r->landed = NULL;
	if (!l.got)
		return rc;
	if (rc < 0) {
		if (put_back(s, buf, l.got) == 0)
			return rc;
		/* No memory to keep them: the read returns the bytes after all,
		 * and the cancel stays owed to the task's next wait. */
		tide__park_owe_cancel();
	}
	r->stats.direct += l.got;
	return (ssize_t)l.got;
}

/* ---------------------------------------------------------- protocol -- */

static void server_connection_made(struct stream *s);

static void proto_connection_made(struct tide_transport *t, void *proto)
{
	struct stream *s = proto;

	if (s->made) {
		/* tide_stream_start_tls: the TLS transport takes the place of
		 * the one under it, and the connection's reference goes on. */
		tide_transport_unref(s->t);
		s->t = tide_transport_ref(t);
		return;
	}
	s->t = tide_transport_ref(t);
	tide__transport_set_keep(s->t, stream_keep);
	s->made = true;
	s->refs++; /* the connection's, until connection_lost */
	if (s->srv)
		server_connection_made(s);
}

/*
 * asyncio.BufferedProtocol: the transport reads (or copies) straight into
 * the reader's buffer, which saves the copy data_received would make. The
 * buffer is not moved between get_buffer and buffer_updated: both run in
 * the same transport callback, and only reads (in tasks) consume from it.
 */
static int proto_get_buffer(struct tide_transport *t, size_t sizehint, void **buf, size_t *len, void *proto)
{
	struct stream *s = proto;
	struct tide_stream_reader *r = &s->r;
	int err;

	if (lend_open(r)) {
		*buf = r->lend->p + r->lend->got;
		*len = r->lend->len - r->lend->got;
		return 0;
	}
	/* sizehint is the transport's chunk (64 KiB) or a copy's size: rhint
	 * decides, and a copy that does not fit asks again. */
	if ((err = reserve(r, r->rhint)) < 0)
		return err; /* the transport fails with it: connection_lost(-ENOMEM) */
	*buf = r->buf + r->tail;
	*len = r->cap - r->tail;
	return 0;
}

static void proto_buffer_updated(struct tide_transport *t, size_t n, void *proto)
{
	struct stream *s = proto;
	struct tide_stream_reader *r = &s->r;

	if (!n || r->eof)
		return;
	r->stats.fed += n;
	if (lend_open(r)) {
		lend_filled(r, n);
		return;
	}
	r->tail += n;
	rhint_update(r, n);
	wakeup_reader(r);
	maybe_pause(s);
}

static int proto_eof_received(struct tide_transport *t, void *proto)
{
	feed_eof(proto, 0);
	/* asyncio's StreamReaderProtocol: keep the write side open (half-close);
	 * the writer's close (or the end of the handler) closes it. */
	return 1;
}

static void proto_connection_lost(struct tide_transport *t, int err, void *proto)
{
	struct stream *s = proto;

	s->lost = true;
	s->lost_err = err;
	s->r.paused = false;
	/* No ring buffer outlives its connection (the loop may go next): kept
	 * bytes move into the buffer, or without the memory the stream fails. */
	if (s->r.kp && unkeep(s) < 0) {
		keep_drop(s);
		feed_eof(s, -ENOMEM);
	}
	feed_eof(s, err);
	/* asyncio: drain waiters get the error (or return on a clean close),
	 * the closed future gets the error or None. */
	tide__wl_wake_all(&s->w.drainers, UINT_MAX, err);
	tide__wl_wake_all(&s->w.closers, UINT_MAX, err);
	stream_unref(s);
}

static void proto_pause_writing(struct tide_transport *t, void *proto)
{
	struct stream *s = proto;

	s->w.paused = true;
}

static void proto_resume_writing(struct tide_transport *t, void *proto)
{
	struct stream *s = proto;

	s->w.paused = false;
	tide__wl_wake_all(&s->w.drainers, UINT_MAX, 0);
}

static const struct tide_protocol_ops stream_proto_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = proto_connection_made,
	.eof_received = proto_eof_received,
	.connection_lost = proto_connection_lost,
	.pause_writing = proto_pause_writing,
	.resume_writing = proto_resume_writing,
	.get_buffer = proto_get_buffer,
	.buffer_updated = proto_buffer_updated,
};

/* ------------------------------------------------------------- reading -- */

TIDE_EXTERN int tide_stream_set_limit(struct tide_stream_reader *r, size_t limit)
{
	struct stream *s;

	if (!r || !limit || limit > SIZE_MAX / 4)
		return -EINVAL;
	s = of_reader(r);
	r->limit = limit;
	maybe_resume(s);
	maybe_pause(s);
	return 0;
}

TIDE_EXTERN int tide_stream_at_eof(const struct tide_stream_reader *r)
{
	/* Bytes a woken read has yet to return (landed in its buffer, or
	 * held by readexactly) are not read yet either. */
	return r && r->eof && rlen(r) == 0 && !r->kp && !r->landed && !r->holding;
}

/* At EOF with the buffer empty: 0 for a clean EOF, else the connection's error. */
static ssize_t eof_result(const struct tide_stream_reader *r)
{
	return r->err;
}

TIDE_EXTERN ssize_t tide_stream_read(struct tide_stream_reader *r, void *buf, size_t n)
{
	struct stream *s;
	ssize_t rc = 0;
	size_t got = 0, m;

	if (!r || (!buf && n))
		return -EINVAL;
	if (n == 0)
		return 0; /* asyncio: read(0) is b'' */
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	if ((rc = reader_begin(r, false, &s)))
		return rc;
	while (!rlen(r) && !r->eof) {
		if ((rc = reader_wait(s, buf, n)) < 0)
			goto out;
		if (rc > 0) {
			got = (size_t)rc; /* they landed in buf */
			break;
		}
	}
	/* What arrived behind bytes that landed in buf tops them up. */
	m = rlen(r) < n - got ? rlen(r) : n - got;
	if (m)
		rc = (ssize_t)got + take(s, (char *)buf + got, m);
	else
		rc = got ? (ssize_t)got : eof_result(r);
out:
	reader_end(s);
	return rc;
}

TIDE_EXTERN ssize_t tide_stream_peek(struct tide_stream_reader *r, const void **data)
{
	struct stream *s;
	ssize_t rc = 0;

	if (data)
		*data = NULL;
	if (!r || !data)
		return -EINVAL;
	if ((rc = reader_begin(r, true, &s)))
		return rc;
	while (!r->kp && !rlen(r) && !r->eof) {
		r->peeking = true;
		rc = reader_wait(s, NULL, 0);
		r->peeking = false;
		if (rc < 0)
			goto out;
	}
	if (r->kp) {
		*data = r->kp;
		rc = (ssize_t)r->klen;
	} else if (rlen(r)) {
		*data = r->buf + r->head;
		rc = (ssize_t)rlen(r);
	} else {
		rc = eof_result(r);
	}
out:
	reader_end(s);
	return rc;
}

TIDE_EXTERN int tide_stream_consume(struct tide_stream_reader *r, size_t n)
{
	struct stream *s;
	size_t k;

	if (!r)
		return -EINVAL;
	if (r->busy)
		return -EBUSY;
	if (n > r->klen + rlen(r))
		return -EINVAL;
	s = of_reader(r);
	k = n < r->klen ? n : r->klen;
	if (k) {
		r->kp += k;
		r->klen -= k;
		if (!r->klen)
			keep_drop(s);
		n -= k;
	}
	if (n) {
		consume(r, n);
		maybe_resume(s);
	}
	return 0;
}

TIDE_EXTERN ssize_t tide_stream_readexactly(struct tide_stream_reader *r, void *buf, size_t n, size_t *partial)
{
	struct stream *s;
	ssize_t rc = 0;
	size_t got = 0, len; /* got: bytes that landed in buf (see reader_wait) */

	if (partial)
		*partial = 0;
	if (!r || (!buf && n) || n > SSIZE_MAX)
		return -EINVAL;
	if (n == 0)
		return 0;
	if ((rc = reader_begin(r, false, &s)))
		return rc;
	while (got + rlen(r) < n) {
		if (r->eof) {
			len = rlen(r);
			if (!got && !len && r->err) {
				rc = r->err;
				goto out;
			}
			/* asyncio's IncompleteReadError: the partial bytes go with it. */
			if (len)
				take(s, (char *)buf + got, len);
			if (partial)
				*partial = got + len;
			rc = TIDE_EINCOMPLETE_READ;
			goto out;
		}
		/*
		 * When what is missing could take a whole receive, the buffered
		 * bytes move to buf and the wait lends the rest of it; from
		 * then on this read holds them (r->holding: at_eof counts
		 * them). A wait that cannot start moves nothing.
		 */
		len = rlen(r);
		if (!(rc = may_wait(s)) && n - got - len >= r->rhint) {
			if (len) {
				take(s, (char *)buf + got, len);
				got += len;
				r->holding = true;
			}
			rc = reader_wait(s, (char *)buf + got, n - got);
		} else if (!rc) {
			rc = reader_wait(s, NULL, 0);
		}
		if (rc < 0)
			goto give_back;
		got += (size_t)rc;
		r->holding = got > 0;
	}
	if (got < n)
		take(s, (char *)buf + got, n - got);
	rc = (ssize_t)n;
	goto out;
give_back:
	/* Cancelled: what landed in earlier waits goes back in front (of what
	 * this wait put back), so nothing is consumed. Without memory for
	 * that, the stream fails, and what came after those bytes goes too:
	 * the next read gets -ENOMEM, not bytes with a gap before them. */
	if (got && put_back(s, buf, got) < 0) {
		r->head = r->tail = 0;
		fail_nomem(s);
		rc = -ENOMEM;
	}
out:
	r->holding = false;
	reader_end(s);
	return rc;
}

/* The starting point of a search for sep: the cached one, if it is for sep. */
static size_t scan_start(struct tide_stream_reader *r, const unsigned char *sep, size_t seplen)
{
	if (r->scan_seplen == seplen && memcmp(r->scan_sep, sep, seplen) == 0)
		return r->scan_off;
	if (seplen <= STREAM_SEP_CACHE) {
		memcpy(r->scan_sep, sep, seplen);
		r->scan_seplen = seplen;
	} else {
		r->scan_seplen = 0;
	}
	r->scan_off = 0;
	return 0;
}

static const unsigned char *find_sep(const unsigned char *p, size_t n, const unsigned char *sep, size_t seplen)
{
	if (seplen == 1)
		return memchr(p, sep[0], n);
	return memmem(p, n, sep, seplen);
}

/*
 * asyncio's readuntil loop. Returns 0 with *where = the separator's
 * offset (isep <= lim), TIDE_ELIMIT_OVERRUN with *where = asyncio's
 * `consumed`, TIDE_EINCOMPLETE_READ at EOF (nothing consumed yet), or the
 * wait's error. Each byte is searched once, plus seplen - 1 bytes of
 * overlap per wake-up.
 */
static ssize_t scan_until(struct stream *s, const unsigned char *sep, size_t seplen, size_t lim, size_t *where)
{
	struct tide_stream_reader *r = &s->r;
	size_t off = scan_start(r, sep, seplen);
	const unsigned char *p;
	ssize_t rc;

	for (;;) {
		size_t len = rlen(r);

		if (len >= off && len - off >= seplen) {
			p = find_sep(r->buf + r->head + off, len - off, sep, seplen);
			if (p) {
				size_t isep = (size_t)(p - (r->buf + r->head));

				r->stats.scanned += isep + seplen - off;

				r->scan_off = r->scan_seplen ? isep : 0;
				*where = isep;
				return isep > lim ? TIDE_ELIMIT_OVERRUN : 0;
			}
			r->stats.scanned += len - off;
			off = len + 1 - seplen;
			if (r->scan_seplen)
				r->scan_off = off;
			if (off > lim) {
				*where = off;
				return TIDE_ELIMIT_OVERRUN;
			}
		}
		/* A position cached by a call with a larger limit (or cap). */
		if (off > lim) {
			*where = off;
			return TIDE_ELIMIT_OVERRUN;
		}
		if (r->eof)
			return TIDE_EINCOMPLETE_READ;
		if ((rc = reader_wait(s, NULL, 0)) < 0)
			return rc;
	}
}

/* At EOF before a separator: the rest goes to buf (asyncio's e.partial). */
static ssize_t take_partial(struct stream *s, void *buf, size_t *partial)
{
	struct tide_stream_reader *r = &s->r;
	size_t len = rlen(r);

	if (!len)
		return eof_result(r);
	take(s, buf, len);
	if (partial)
		*partial = len;
	return TIDE_EINCOMPLETE_READ;
}

TIDE_EXTERN ssize_t tide_stream_readuntil(struct tide_stream_reader *r, const void *sep, size_t seplen,
					  void *buf, size_t cap, size_t *partial)
{
	struct stream *s;
	size_t where = 0, lim;
	ssize_t rc;

	if (partial)
		*partial = 0;
	if (!r || !sep || !seplen || !buf || cap < seplen || cap > SSIZE_MAX)
		return -EINVAL;
	if ((rc = reader_begin(r, false, &s)))
		return rc;
	lim = cap - seplen < r->limit ? cap - seplen : r->limit;
	rc = scan_until(s, sep, seplen, lim, &where);
	if (rc == 0) {
		rc = take(s, buf, where + seplen);
	} else if (rc == TIDE_EINCOMPLETE_READ) {
		rc = take_partial(s, buf, partial);
		if (rc == 0)
			rc = TIDE_EINCOMPLETE_READ; /* asyncio: IncompleteReadError(b'') */
	}
	/* TIDE_ELIMIT_OVERRUN: the data stays buffered (asyncio). */
	reader_end(s);
	return rc;
}

TIDE_EXTERN ssize_t tide_stream_readline(struct tide_stream_reader *r, void *buf, size_t cap)
{
	static const unsigned char nl = '\n';
	struct stream *s;
	size_t where = 0, lim, partial = 0;
	ssize_t rc;

	if (!r || !buf || !cap || cap > SSIZE_MAX)
		return -EINVAL;
	if ((rc = reader_begin(r, false, &s)))
		return rc;
	lim = cap - 1 < r->limit ? cap - 1 : r->limit;
	rc = scan_until(s, &nl, 1, lim, &where);
	if (rc == 0) {
		rc = take(s, buf, where + 1);
	} else if (rc == TIDE_EINCOMPLETE_READ) {
		/* asyncio: at EOF, the partial line (b'' when nothing is left). */
		rc = take_partial(s, buf, &partial);
		if (rc == TIDE_EINCOMPLETE_READ)
			rc = (ssize_t)partial;
	} else if (rc == TIDE_ELIMIT_OVERRUN) {
		/* asyncio's readline: the line goes up to its newline if one is
		 * there, else the whole buffer does. */
		if (where < rlen(r) && r->buf[r->head + where] == '\n')
			consume(r, where + 1);
		else
			consume(r, rlen(r));
		maybe_resume(s);
	}
	reader_end(s);
	return rc;
}

/* ------------------------------------------------------------- writing -- */

/* What a writer call returns once the connection is gone. */
static int lost_result(const struct stream *s, int clean)
{
	return s->lost_err ? s->lost_err : clean;
}

/* The transport a write goes to, or why there is none (0 or an error). */
static int writer_transport(struct tide_stream_writer *w, struct tide_transport **t)
{
	struct stream *s = of_writer(w);

	if (s->lost)
		return lost_result(s, TIDE_ECLOSED);
	if (!s->t)
		return -ENOTCONN;
	*t = s->t;
	return 0;
}

TIDE_EXTERN int tide_stream_writelines(struct tide_stream_writer *w, const struct iovec *iov, int iovcnt)
{
	struct tide_transport *t;
	int err;

	if (!w || iovcnt < 0 || (!iov && iovcnt))
		return -EINVAL;
	if ((err = writer_transport(w, &t)))
		return err;
	return tide_transport_writelines(t, iov, iovcnt);
}

TIDE_EXTERN int tide_stream_write(struct tide_stream_writer *w, const void *data, size_t n)
{
	struct iovec iov = { .iov_base = (void *)data, .iov_len = n };

	if (!data && n)
		return -EINVAL;
	return tide_stream_writelines(w, &iov, 1);
}

TIDE_EXTERN int tide_stream_drain(struct tide_stream_writer *w)
{
	struct stream *s;
	int rc = 0;

	if (!w)
		return -EINVAL;
	s = stream_hold(of_writer(w));
	/* asyncio: after connection_lost, drain raises its exception or
	 * ConnectionResetError('Connection lost'). */
	if (s->lost) {
		rc = lost_result(s, -ECONNRESET);
		goto out;
	}
	if (!s->t) {
		rc = -ENOTCONN;
		goto out;
	}
	if (tide_transport_is_closing(s->t) && tide_current_task()) {
		/* asyncio yields once so that connection_lost can run first. */
		if ((rc = tide_yield()) < 0)
			goto out;
		if (s->lost) {
			rc = lost_result(s, -ECONNRESET);
			goto out;
		}
	}
	if (w->paused)
		rc = wl_wait(s, &w->drainers);
out:
	stream_unref(s);
	return rc;
}

TIDE_EXTERN int tide_stream_write_eof(struct tide_stream_writer *w)
{
	struct tide_transport *t;
	int err;

	if (!w)
		return -EINVAL;
	if ((err = writer_transport(w, &t)))
		return err;
	return tide_transport_write_eof(t);
}

TIDE_EXTERN int tide_stream_can_write_eof(const struct tide_stream_writer *w)
{
	const struct stream *s;

	if (!w)
		return 0;
	s = of_writer(w);
	return s->t ? tide_transport_can_write_eof(s->t) : 0;
}

TIDE_EXTERN void tide_stream_close(struct tide_stream_writer *w)
{
	struct stream *s;

	if (!w)
		return;
	s = of_writer(w);
	if (s->t && !s->lost)
		tide_transport_close(s->t);
}

TIDE_EXTERN int tide_stream_is_closing(const struct tide_stream_writer *w)
{
	const struct stream *s;

	if (!w)
		return 1;
	s = of_writer(w);
	if (s->lost || !s->t)
		return 1;
	return tide_transport_is_closing(s->t);
}

TIDE_EXTERN int tide_stream_wait_closed(struct tide_stream_writer *w)
{
	struct stream *s;
	int rc;

	if (!w)
		return -EINVAL;
	s = stream_hold(of_writer(w));
	if (s->lost)
		rc = s->lost_err;
	else if (!s->made)
		rc = -ENOTCONN;
	else
		rc = wl_wait(s, &w->closers);
	stream_unref(s);
	return rc;
}

TIDE_EXTERN int tide_stream_get_extra_info(const struct tide_stream_writer *w, const char *name, void *buf,
					   socklen_t *len)
{
	const struct stream *s;

	if (!w || !name)
		return -EINVAL;
	s = of_writer(w);
	if (!s->t)
		return -ENOTCONN;
	return tide_transport_get_extra_info(s->t, name, buf, len);
}

TIDE_EXTERN struct tide_transport *tide_stream_transport(const struct tide_stream_writer *w)
{
	return w ? of_writer(w)->t : NULL;
}

/*
 * The connection's timeouts are its transport's: on expiry it is aborted,
 * and connection_lost's -ETIMEDOUT reaches the waiting read (after the
 * bytes buffered before it), drain and wait_closed, as any error does.
 */
TIDE_EXTERN int tide_stream_set_timeouts(struct tide_stream_writer *w, const struct tide_timeouts *to)
{
	struct tide_transport *t = tide_stream_transport(w);

	return !w ? -EINVAL : !t ? -ENOTCONN : tide_transport_set_timeouts(t, to);
}

TIDE_EXTERN int tide_stream_set_deadline(struct tide_stream_writer *w, double when)
{
	struct tide_transport *t = tide_stream_transport(w);

	return !w ? -EINVAL : !t ? -ENOTCONN : tide_transport_set_deadline(t, when);
}

/* The user lets go: close the connection if needed, drop the user's reference. */
static void stream_release(struct stream *s)
{
	tide__bug_on(s->released, "tide_stream_free: the pair was freed already");
	s->released = true;
	if (s->t && !s->lost)
		tide_transport_close(s->t);
	stream_unref(s);
}

TIDE_EXTERN void tide_stream_free(struct tide_stream_reader *r, struct tide_stream_writer *w)
{
	struct stream *s;

	if (!r && !w)
		return;
	s = r ? of_reader(r) : of_writer(w);
	tide__bug_on(r && w && of_writer(w) != s, "tide_stream_free: reader and writer of different pairs");
	tide__bug_on(s->srv != NULL, "tide_stream_free: a server's pair is freed when its handler returns");
	stream_release(s);
}

/* ----------------------------------------------------------- connecting -- */

/* Connects to host:port, to the unix path, or (sock non-NULL) over the
 * caller's socket *sock. */
static int open_common(const char *host, int port, const char *path, const int *sock,
		       const struct tide_connect_opts *opts, struct tide_stream_reader **rp,
		       struct tide_stream_writer **wp)
{
	struct tide_future *task = tide_current_task();
	struct tide_future *f = NULL;
	struct tide_loop *loop;
	struct stream *s;
	int64_t rc;
	void *tp = NULL;
	int err;

	if (!rp || !wp)
		return -EINVAL;
	*rp = NULL;
	*wp = NULL;
	if (!task)
		return TIDE_ENOT_IN_TASK;
	loop = tide_future_loop(task);
	/* The caller's socket: the checks first, which leave it the
	 * caller's; from there on it is closed on any failure. */
	if (sock && (err = tide__sock_check(*sock, true)))
		return err;
	if (!(s = stream_new(loop))) {
		if (sock)
			close(*sock);
		return -ENOMEM;
	}
	if (sock)
		err = tide_create_connection_sock(loop, *sock, opts, &stream_proto_ops, s, &f);
	else if (path)
		err = tide_create_unix_connection_ex(loop, path, opts, &stream_proto_ops, s, &f);
	else
		err = tide_create_connection_ex(loop, host, port, opts, &stream_proto_ops, s, &f);
	if (err) {
		if (sock && err == -ENOMEM)
			close(*sock);
		stream_unref(s);
		return err;
	}
	rc = tide_await(f);
	/* The future is done here, whatever the await says (a cancellation
	 * never abandons what it awaits): did a transport come out of it? */
	err = tide_future_result(f, NULL, &tp);
	tide_future_unref(f);
	if (rc >= 0 && err == 0 && s->made) {
		*rp = &s->r;
		*wp = &s->w;
		return 0;
	}
	/* Failed or cancelled: a connection made meanwhile is closed, and
	 * the pair goes once connection_lost has run. */
	stream_release(s);
	if (rc >= 0)
		rc = err ? err : -EPROTO;
	return (int)rc;
}

TIDE_EXTERN int tide_open_connection(const char *host, int port, struct tide_stream_reader **r,
				     struct tide_stream_writer **w)
{
	return open_common(host, port, NULL, NULL, NULL, r, w);
}

TIDE_EXTERN int tide_open_unix_connection(const char *path, struct tide_stream_reader **r,
					  struct tide_stream_writer **w)
{
	if (!path)
		return -EINVAL;
	return open_common(NULL, 0, path, NULL, NULL, r, w);
}

TIDE_EXTERN int tide_open_connection_ex(const char *host, int port, const struct tide_connect_opts *opts,
					struct tide_stream_reader **r, struct tide_stream_writer **w)
{
	return open_common(host, port, NULL, NULL, opts, r, w);
}

TIDE_EXTERN int tide_open_unix_connection_ex(const char *path, const struct tide_connect_opts *opts,
					     struct tide_stream_reader **r, struct tide_stream_writer **w)
{
	if (!path)
		return -EINVAL;
	return open_common(NULL, 0, path, NULL, opts, r, w);
}

TIDE_EXTERN int tide_open_connection_sock(int fd, const struct tide_connect_opts *opts,
					  struct tide_stream_reader **r, struct tide_stream_writer **w)
{
	return open_common(NULL, 0, NULL, &fd, opts, r, w);
}

/*
 * asyncio's StreamWriter.start_tls: the pair's transport goes under a TLS
 * one (tide__tls_start), whose connection_made puts it in s->t
 * (proto_connection_made). The read call it makes (reader_begin) keeps
 * other reads out meanwhile, and what the reader holds becomes the first
 * bytes of the handshake. A failure closes the connection: the transport
 * under TLS tells its protocol nothing more, so the pair ends here as
 * connection_lost would end it.
 */
TIDE_EXTERN int tide_stream_start_tls(struct tide_stream_reader *r, struct tide_stream_writer *w, int server_side,
				      const struct tide_tls_opts *tls)
{
	struct tide_transport *old;
	struct tide_future *f = NULL;
	struct stream *s;
	void *tp = NULL;
	int64_t rc;
	int err;

	if (!r || !w || of_reader(r) != of_writer(w) || !tls)
		return -EINVAL;
	s = of_reader(r);
	if ((err = may_wait(s)))
		return err;
	if (s->lost)
		return lost_result(s, TIDE_ECLOSED);
	if (!s->t)
		return -ENOTCONN;
	if (tide_transport_is_closing(s->t))
		return TIDE_ECLOSED;
	if ((err = reader_begin(r, false, &s)))
		return err;
	old = s->t;
	err = tide__tls_start(old, server_side, tls, &stream_proto_ops, s, rlen(r) ? r->buf + r->head : NULL, rlen(r),
			      &f);
	if (err) {
		reader_end(s);
		return err;
	}
	/* The held bytes are the TLS layer's now, and its reading is its own. */
	consume(r, rlen(r));
	r->paused = false;
	rc = tide_await(f);
	err = tide_future_result(f, NULL, &tp);
	tide_future_unref(f);
	if (s->t != old) {
		/* The TLS transport is the pair's (its connection_made ran);
		 * a cancel that came after the handshake closes it. */
		if (rc < 0)
			tide_transport_close(s->t);
		reader_end(s);
		return rc < 0 ? (int)rc : 0;
	}
	if (rc >= 0)
		rc = err ? err : -EPROTO;
	if (!s->lost) {
		s->lost = true;
		s->lost_err = (int)rc;
		feed_eof(s, (int)rc);
		tide__wl_wake_all(&s->w.drainers, UINT_MAX, (int)rc);
		tide__wl_wake_all(&s->w.closers, UINT_MAX, (int)rc);
		stream_unref(s); /* the connection's */
	}
	reader_end(s);
	return (int)rc;
}

/* ---------------------------------------------------------------- pipes -- */

/*
 * A stream over one end of a pipe (the subprocess code's stdin, stdout and
 * stderr): a pair whose transport is a pipe transport, of which the caller
 * gets the one half that makes sense, and frees it alone
 * (tide_stream_free(r, NULL) or tide_stream_free(NULL, w)). On error fd is
 * closed (tide__pipe_transport_new).
 */
static int stream_pipe(struct tide_loop *loop, int fd, int dir, size_t limit, struct stream **out)
{
	struct tide_transport *t;
	struct stream *s;
	int err;

	if (!loop || limit > SIZE_MAX / 4)
		s = NULL; /* -EINVAL below */
	else if (!(s = stream_new(loop))) {
		close(fd);
		return -ENOMEM;
	}
	if ((err = tide__pipe_transport_new(s ? loop : NULL, fd, dir, &stream_proto_ops, s, &t))) {
		if (s)
			stream_unref(s);
		return err;
	}
	if (limit)
		s->r.limit = limit;
	/* connection_made: the pair holds the transport from here on. */
	tide__transport_start(t);
	*out = s;
	return 0;
}

int tide__stream_pipe_reader(struct tide_loop *loop, int fd, size_t limit, struct tide_stream_reader **r)
{
	struct stream *s;
	int err;

	if (!r) {
		return stream_pipe(NULL, fd, TIDE__PIPE_READ, 0, &s);
	}
	*r = NULL;
	if ((err = stream_pipe(loop, fd, TIDE__PIPE_READ, limit, &s)))
		return err;
	*r = &s->r;
	return 0;
}

int tide__stream_pipe_writer(struct tide_loop *loop, int fd, struct tide_stream_writer **w)
{
	struct stream *s;
	int err;

	if (!w)
		return stream_pipe(NULL, fd, TIDE__PIPE_WRITE, 0, &s);
	*w = NULL;
	if ((err = stream_pipe(loop, fd, TIDE__PIPE_WRITE, 0, &s)))
		return err;
	*w = &s->w;
	return 0;
}

/* -------------------------------------------------------------- serving -- */

static int64_t handler_main(void *arg)
{
	struct stream *s = arg;

	return s->srv->handler(&s->r, &s->w, s->srv->arg);
}

/*
 * The handler's task is done (or was cancelled before it started): close
 * and let go of the pair. An error the handler returned goes to the
 * exception handler, as asyncio reports client_connected_cb's exception.
 */
static void handler_done(struct tide_future *task, void *arg)
{
	struct stream *s = arg;
	int err = tide_future_error(task);

	if (err < 0 && err != -ECANCELED) {
		struct tide_error_context ctx = {
			.size = sizeof(ctx),
			.message = "unhandled error in a stream server's handler",
			.error = err,
			.future = task,
		};

		tide_loop_call_exception_handler(s->loop, &ctx);
	}
	tide_future_unref(task);
	stream_release(s);
}

static void server_connection_made(struct stream *s)
{
	struct tide_future *task = NULL;
	int err;

	err = tide_task_spawn(s->loop, handler_main, s, NULL, &task);
	if (!err && (err = tide_future_add_done_callback(task, handler_done, s))) {
		/* Not started yet: cancelled, the body never runs. */
		tide_task_cancel(task);
		tide_future_unref(task);
	}
	if (err) {
		struct tide_error_context ctx = {
			.size = sizeof(ctx),
			.message = "cannot start a stream server's handler",
			.error = err,
		};

		tide_loop_call_exception_handler(s->loop, &ctx);
		s->released = true;
		tide_transport_abort(s->t);
		stream_unref(s);
	}
}

static int server_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	struct stream_server *srv = arg;
	struct stream *s = stream_new(srv->loop);

	if (!s)
		return -ENOMEM;
	/* The user's reference is the handler task's (taken at connection_made). */
	s->srv = srv;
	srv->refs++;
	*ops = &stream_proto_ops;
	*proto = s;
	return 0;
}

/*
 * The server's reference on srv must go when the server is gone, and only
 * server.c knows when that is: tide__server_set_arg_free (net.h) has it
 * call srv_server_gone from its deallocation.
 */
static void srv_server_gone(void *arg)
{
	srv_unref(arg);
}

/* The server exists (hand srv's reference to it) or never will (drop it). */
static void srv_created(struct tide_future *f, void *arg)
{
	struct stream_server *srv = arg;
	void *server = NULL;

	/* Failed or cancelled: the server was freed without calling the
	 * factory (it never served), so the reference is ours to drop. */
	if (tide_future_result(f, NULL, &server) != 0 || !server) {
		srv_unref(srv);
		return;
	}
	tide__server_set_arg_free(server, srv_server_gone);
}

/* Serves hosts:port, the unix path, or (fds non-NULL) the caller's sockets. */
static int start_common(struct tide_loop *loop, const char *const *hosts, size_t nhosts, int port,
			const char *path, const int *fds, const struct tide_server_opts *opts,
			tide_stream_handler_cb handler, void *arg, struct tide_future **out)
{
	struct stream_server *srv;
	int err;

	if (!loop || !handler || !out)
		return -EINVAL;
	if (!(srv = tide__calloc(1, sizeof(*srv))))
		return -ENOMEM;
	srv->loop = loop;
	srv->handler = handler;
	srv->arg = arg;
	srv->refs = 1; /* the server's: it calls the factory with srv */
	if (fds)
		err = tide_create_server_sock(loop, fds, nhosts, opts, server_factory, srv, out);
	else if (path)
		err = tide_create_unix_server(loop, path, opts, server_factory, srv, out);
	else
		err = tide_create_server(loop, hosts, nhosts, port, opts, server_factory, srv, out);
	if (err) {
		srv_unref(srv);
		return err;
	}
	/*
	 * Done already (numeric hosts, unix paths): settle it now, before the
	 * caller can free the server. Else when the future completes: that
	 * callback runs before any waiter of the caller's is woken.
	 */
	if (tide_future_done(*out))
		srv_created(*out, srv);
	else if ((err = tide_future_add_done_callback(*out, srv_created, srv)) < 0) {
		tide_future_cancel(*out);
		tide_future_unref(*out);
		*out = NULL;
		/* The cancelled server never serves: srv is ours again. */
		srv_unref(srv);
		return err;
	}
	return 0;
}

TIDE_EXTERN int tide_start_server(struct tide_loop *loop, const char *const *hosts, size_t nhosts, int port,
				  const struct tide_server_opts *opts, tide_stream_handler_cb handler, void *arg,
				  struct tide_future **out)
{
	return start_common(loop, hosts, nhosts, port, NULL, NULL, opts, handler, arg, out);
}

TIDE_EXTERN int tide_start_unix_server(struct tide_loop *loop, const char *path, const struct tide_server_opts *opts,
				       tide_stream_handler_cb handler, void *arg, struct tide_future **out)
{
	if (!path)
		return -EINVAL;
	return start_common(loop, NULL, 0, 0, path, NULL, opts, handler, arg, out);
}

TIDE_EXTERN int tide_start_server_sock(struct tide_loop *loop, const int *fds, size_t nfds,
				       const struct tide_server_opts *opts, tide_stream_handler_cb handler,
				       void *arg, struct tide_future **out)
{
	if (!fds || !nfds)
		return -EINVAL;
	return start_common(loop, NULL, nfds, 0, NULL, fds, opts, handler, arg, out);
}

/* ------------------------------------------------- readers fed by hand -- */

TIDE_EXTERN int tide_stream_reader_new(struct tide_loop *loop, size_t limit, struct tide_stream_reader **out)
{
	struct stream *s;
	int err;

	if (!loop || !out)
		return -EINVAL;
	*out = NULL;
	if (tide__loop_closed(loop))
		return TIDE_ECLOSED;
	if (!(s = stream_new(loop)))
		return -ENOMEM;
	if (limit && (err = tide_stream_set_limit(&s->r, limit))) {
		stream_unref(s);
		return err;
	}
	*out = &s->r;
	return 0;
}

/* Only a reader without a connection is fed by hand: a connection's
 * reader has its bytes from the connection. */
static struct stream *fed_stream(struct tide_stream_reader *r)
{
	struct stream *s = r ? of_reader(r) : NULL;

	return s && !s->t && !s->srv ? s : NULL;
}

TIDE_EXTERN int tide_stream_feed_data(struct tide_stream_reader *r, const void *data, size_t n)
{
	struct stream *s = fed_stream(r);

	if (!s || (!data && n))
		return -EINVAL;
	/* asyncio asserts "feed_data after feed_eof". */
	if (r->eof)
		return TIDE_EINVALID_STATE;
	feed_data(s, data, n);
	return r->err == -ENOMEM ? -ENOMEM : 0;
}

TIDE_EXTERN int tide_stream_feed_eof(struct tide_stream_reader *r)
{
	struct stream *s = fed_stream(r);

	if (!s)
		return -EINVAL;
	feed_eof(s, 0);
	return 0;
}

TIDE_EXTERN int tide_stream_set_exception(struct tide_stream_reader *r, int err)
{
	struct stream *s = fed_stream(r);

	if (!s || err >= 0)
		return -EINVAL;
	feed_eof(s, err);
	return 0;
}

/*
 * asyncio's read(-1): everything until EOF, in one buffer. Cancelled, or
 * failed by the connection, the bytes it took go back in front of the
 * reader, so nothing is lost.
 */
TIDE_EXTERN ssize_t tide_stream_read_all(struct tide_stream_reader *r, void **data)
{
	struct stream *s;
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0, m;
	ssize_t rc;

	if (!r || !data)
		return -EINVAL;
	*data = NULL;
	if ((rc = reader_begin(r, false, &s)))
		return rc;
	for (;;) {
		while (!rlen(r) && !r->eof)
			if ((rc = reader_wait(s, NULL, 0)) < 0)
				goto fail;
		if (!(m = rlen(r))) {
			if ((rc = eof_result(r)) < 0)
				goto fail;
			break;
		}
		if (m > (size_t)SSIZE_MAX - len) {
			rc = -EOVERFLOW;
			goto fail;
		}
		if (cap - len < m) {
			size_t want = cap ? 2 * cap : 64 * 1024;

			while (want < len + m)
				want *= 2;
			if (!(nb = tide__realloc(buf, want))) {
				rc = -ENOMEM;
				goto fail;
			}
			buf = nb;
			cap = want;
		}
		len += take(s, buf + len, m);
	}
	reader_end(s);
	/* Empty at EOF: a buffer of 0 bytes all the same, so *data is
	 * always the caller's to free. */
	if (!buf && !(buf = tide__malloc(1)))
		return -ENOMEM;
	*data = buf;
	return (ssize_t)len;
fail:
	if (len && put_back(s, buf, len) < 0)
		rc = -ENOMEM; /* no room to give them back: they are lost, say so */
	tide__free(buf);
	reader_end(s);
	return rc;
}

/* ---------------------------------------------------------- test hooks -- */

int tide__stream_pair_new(struct tide_loop *loop, struct tide_stream_reader **r, struct tide_stream_writer **w)
{
	struct stream *s;

	if (!loop || !r || !w)
		return -EINVAL;
	if (!(s = stream_new(loop)))
		return -ENOMEM;
	*r = &s->r;
	*w = &s->w;
	return 0;
}

void tide__stream_feed_data(struct tide_stream_reader *r, const void *data, size_t n)
{
	feed_data(of_reader(r), data, n);
}

void tide__stream_feed_eof(struct tide_stream_reader *r, int err)
{
	feed_eof(of_reader(r), err);
}

void tide__stream_get_stats(const struct tide_stream_reader *r, struct tide__stream_stats *st)
{
	*st = r->stats;
}

size_t tide__stream_kept(const struct tide_stream_reader *r)
{
	return r->klen;
}

size_t tide__stream_buffered(const struct tide_stream_reader *r)
{
	return rlen(r) + r->klen;
}

int tide__stream_reading_paused(const struct tide_stream_reader *r)
{
	return r->paused;
}
