/* SPDX-License-Identifier: MIT */
/*
 * stream-reader.c: the fuzz target of the stream reader (src/net/stream.c):
 * a program of reads and random chunking over a real socket.
 *
 * An input decodes to a configuration and two programs, interleaved in it
 * op by op (an op byte's top bit says whose it is):
 * - the configuration: the backend (io_uring, io_uring with the optional
 *   ops masked, epoll; the replay runs every input on all three), the
 *   io_uring receive ring (small rings run dry and split messages), TCP or
 *   a Unix socket, how the writer ends (shutdown, close, reset) and the
 *   reader's limit;
 * - the writer's program, in one task: chunks sent with tide_send on the
 *   raw peer socket (bytes from the input, runs of one byte, repeats),
 *   yields and short sleeps, then the end;
 * - the reader's program, in another: read, readexactly, readuntil,
 *   readline, peek, consume, at_eof, set_limit, yields, and a read in a
 *   second task that main may read beside and cancel.
 * Then the reader reads to the end, and the loop must free cleanly.
 *
 * The model is W, every byte the writer sent, and pos, how many of them
 * the reader has consumed. A read consumes at the moment it returns (not
 * before: a cancelled read consumes nothing), so each call is checked
 * right then against W[pos..]: the bytes it returns are W's next ones,
 * and its result is one the documentation allows.
 *
 * The hard part is timing: what a call returns depends on when bytes
 * arrive, which the model cannot know. So every check says what holds
 * whatever the timing (a separator found is W's first one after pos and
 * within the limit; an overrun saw limit + seplen bytes without one; EOF
 * comes after every byte written), and the reader's own count of the
 * bytes it received (tide__stream_stats.fed) less those it holds must
 * equal pos whenever no read is under way. That count also says how many
 * bytes a readline overrun discarded, which depends on what had arrived.
 */
#include "config.h"
#include "fuzz.h"
#include "net/stream-hooks.h"
#include "tide.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Every input runs on the three backend configurations in the replay. */
const int fuzz_replay_passes = 3;

/* At most this much is written per input (small rings take a CQE per
 * few bytes), and slept. */
#define W_MAX ((size_t)512 * 1024)
#define SLEEP_MAX_MS 50

/* ---------------------------------------------------------- programs -- */

enum rkind { R_READ, R_EXACT, R_UNTIL, R_LINE, R_PEEK, R_CONSUME, R_ATEOF, R_YIELD, R_LIMIT, R_CHILD, R_KINDS };
static const char *const rnames[R_KINDS] = { "read", "readexactly", "readuntil", "readline", "peek",
					     "consume", "at_eof", "yield", "set_limit", "child" };
enum wkind { W_BYTES, W_FILL, W_REPEAT, W_YIELD, W_SLEEP, W_KINDS };

/* A reader op. A child op is followed by its task's op, then by main's
 * op beside it if concurrent. */
struct rop {
	enum rkind kind;
	bool bad;       /* invalid arguments: the call must say -EINVAL */
	bool nopartial; /* partial pointer NULL */
	size_t n;       /* size, cap, count or limit */
	uint8_t sep[4];
	size_t seplen;
	unsigned k;     /* yields */
	bool cancel, concurrent;
};

struct wop {
	enum wkind kind;
	const uint8_t *p; /* W_BYTES */
	size_t n;
	uint8_t c;        /* W_FILL */
	unsigned k;       /* repeats, yields, milliseconds */
};

/*
 * The encoding, for writing seeds by hand: byte 0 is the configuration
 * (bits 0-1 the backend, 2 a Unix socket, 3-4 the end, 5-7 the ring: see
 * LLVMFuzzerTestOneInput), then a size (the limit, 0 the default), then
 * ops to the end. An op byte with bit 7 set is the writer's (kind: bits
 * 0-6 modulo W_KINDS), else the reader's (kind: bits 0-3 modulo R_KINDS;
 * bit 4 passes no partial pointer; bits 4-6 all set, invalid arguments).
 * Sizes: a byte below 0x80 is itself; 0x80-0xbf and the next byte make
 * 14 bits; 0xc0-0xff and the next make 14 bits times 16, up to 256 KiB.
 */
static size_t dec_size(struct fuzz_in *in)
{
	unsigned b = fuzz_u8(in);

	if (b < 0x80)
		return b;
	if (b < 0xc0)
		return (size_t)((b & 0x3f) << 8 | fuzz_u8(in));
	return (size_t)((b & 0x3f) << 8 | fuzz_u8(in)) * 16;
}

static void dec_rop(struct fuzz_in *in, unsigned c, bool top, struct rop *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = (enum rkind)((c & 0x0f) % R_KINDS);
	if (!top && o->kind >= R_YIELD)
		o->kind = (enum rkind)(o->kind % R_YIELD);
	o->nopartial = c & 0x10;
	o->bad = (c & 0x70) == 0x70;
	switch (o->kind) {
	case R_READ:
	case R_EXACT:
	case R_LINE:
	case R_CONSUME:
	case R_LIMIT:
		o->n = dec_size(in);
		break;
	case R_UNTIL:
		o->seplen = (fuzz_u8(in) & 3) + 1;
		for (size_t i = 0; i < o->seplen; i++)
			o->sep[i] = (uint8_t)fuzz_u8(in);
		o->n = dec_size(in);
		break;
	case R_YIELD:
		o->k = fuzz_u8(in) % 8 + 1;
		break;
	case R_CHILD: {
		unsigned f = fuzz_u8(in);

		o->k = f & 7;
		o->cancel = f & 8;
		o->concurrent = f & 16;
		break;
	}
	default:
		break;
	}
}

static void dec_wop(struct fuzz_in *in, unsigned c, struct wop *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = (enum wkind)((c & 0x7f) % W_KINDS);
	switch (o->kind) {
	case W_BYTES:
		o->n = fuzz_bytes(in, &o->p, fuzz_u8(in));
		break;
	case W_FILL:
		o->n = dec_size(in);
		o->c = (uint8_t)fuzz_u8(in);
		break;
	case W_REPEAT:
		o->k = fuzz_u8(in) % 64 + 1;
		break;
	case W_YIELD:
		o->k = fuzz_u8(in) % 16 + 1;
		break;
	case W_SLEEP:
		o->k = fuzz_u8(in) % 3;
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------- state -- */

enum end { END_SHUTDOWN, END_CLOSE, END_RESET };

static struct {
	struct tide_loop *loop;
	struct tide_stream_reader *r;
	struct tide_stream_writer *w;
	bool unix_sock;
	enum end end;
	bool clean;       /* the end is an EOF (not a reset): every byte arrives */
	size_t limit0;    /* the limit set first (0: the default) */
	struct rop *rops;
	size_t nrops;
	struct wop *wops;
	size_t nwops;
	/* the writer */
	int wfd;
	uint8_t *W;
	size_t wlen, wcap;
	bool wdone;       /* the writer ended its side */
	unsigned slept_ms;
	/* the reader */
	size_t pos;       /* bytes of W consumed */
	size_t limit;
	bool main_in_op;  /* main is inside a reader call */
	bool child_live;  /* a child task exists and has not returned */
	bool child_cancelled;
	size_t op;        /* the reader op under way, for messages */
	bool trace;       /* FUZZ_TRACE=1: each op's result on stderr */
} g;

/* ---------------------------------------------------------- checking -- */

/* Bytes a call returned (or consumed): they must be W's next ones. */
static void take(const char *what, const void *p, size_t n)
{
	const uint8_t *b = p;

	FUZZ_CHECK(g.pos + n <= g.wlen, "op %zu (%s): %zu bytes at offset %zu, but %zu were written", g.op, what, n,
		   g.pos, g.wlen);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(b[i] == g.W[g.pos + i], "op %zu (%s): byte %zu of %zu (offset %zu) is %#x, written %#x",
			   g.op, what, i, n, g.pos + i, b[i], g.W[g.pos + i]);
	g.pos += n;
}

/* What the reader received, less what it holds: what reads took. */
static size_t consumed_by_reader(void)
{
	struct tide__stream_stats st;
	size_t held = tide__stream_buffered(g.r);

	tide__stream_get_stats(g.r, &st);
	FUZZ_CHECK(st.fed >= held, "the reader holds %zu bytes but received %llu", held,
		   (unsigned long long)st.fed);
	FUZZ_CHECK(st.fed <= g.wlen, "the reader received %llu bytes, %zu were written", (unsigned long long)st.fed,
		   g.wlen);
	return (size_t)st.fed - held;
}

/* No read under way: the reader consumed exactly what the model says. */
static void check_quiet(void)
{
	size_t c = consumed_by_reader();

	FUZZ_CHECK(c == g.pos, "after op %zu (%s): the reader consumed %zu bytes, the reads returned %zu", g.op,
		   g.op < g.nrops ? rnames[g.rops[g.op].kind] : "drain", c, g.pos);
}

/* The reader says EOF: on a clean end every byte written came first. */
static void check_eof(const char *what)
{
	FUZZ_CHECK(g.wdone, "op %zu (%s): EOF before the writer ended", g.op, what);
	if (g.clean)
		FUZZ_CHECK(g.pos == g.wlen, "op %zu (%s): EOF at offset %zu of %zu written", g.op, what, g.pos,
			   g.wlen);
}

/* An error the documentation allows here, or a failure. */
static void check_error(const char *what, ssize_t rc, bool child)
{
	if (rc == -EBUSY && (child ? g.main_in_op : g.child_live))
		return; /* one read at a time: the other task's is under way */
	if (rc == -ECANCELED && child && g.child_cancelled)
		return;
	if (rc == -ECONNRESET && !g.clean && g.wdone)
		return;
	FUZZ_CHECK(0, "op %zu (%s%s): unexpected %zd (%s)", g.op, what, child ? ", in the child" : "", rc,
		   tide_strerror((int)rc));
}

/* Whether W[from, from + seplen) is the separator. */
static bool sep_at(size_t from, const uint8_t *sep, size_t seplen)
{
	return from + seplen <= g.wlen && memcmp(g.W + from, sep, seplen) == 0;
}

/* The first separator at or after pos starting at most at pos + max, as an
 * offset from pos, or SIZE_MAX. */
static size_t first_sep(const uint8_t *sep, size_t seplen, size_t max)
{
	for (size_t i = 0; i <= max && g.pos + i + seplen <= g.wlen; i++)
		if (sep_at(g.pos + i, sep, seplen))
			return i;
	return SIZE_MAX;
}

/*
 * readuntil/readline returned a chunk of n bytes (the separator's end, or
 * the partial bytes at EOF when partial): they are W's next, and the
 * separator found is the first, within lim.
 */
static void check_until(const char *what, const uint8_t *buf, size_t n, const uint8_t *sep, size_t seplen,
			size_t lim, bool partial)
{
	size_t f;

	if (!partial) {
		FUZZ_CHECK(n >= seplen && memcmp(buf + n - seplen, sep, seplen) == 0,
			   "op %zu (%s): %zu bytes that do not end with the separator", g.op, what, n);
		f = first_sep(sep, seplen, n - seplen);
		FUZZ_CHECK(f == n - seplen, "op %zu (%s): the separator at %zu, but one starts at %zu", g.op, what,
			   n - seplen, f);
		FUZZ_CHECK(n - seplen <= lim, "op %zu (%s): a separator at %zu, past the limit %zu", g.op, what,
			   n - seplen, lim);
	} else {
		f = first_sep(sep, seplen, n);
		FUZZ_CHECK(f == SIZE_MAX || f + seplen > n, "op %zu (%s): partial bytes hold a separator at %zu",
			   g.op, what, f);
		/* Past the limit the search would have said so first. */
		FUZZ_CHECK(n < seplen || n + 1 - seplen <= lim, "op %zu (%s): %zu partial bytes, limit %zu", g.op,
			   what, n, lim);
	}
	take(what, buf, n);
	if (partial)
		check_eof(what);
}

/* An overrun: the search saw lim + seplen bytes without a separator
 * starting within lim. */
static void check_overrun(const char *what, const uint8_t *sep, size_t seplen, size_t lim)
{
	size_t f = first_sep(sep, seplen, lim);

	FUZZ_CHECK(f == SIZE_MAX, "op %zu (%s): overrun, but a separator starts at %zu (limit %zu)", g.op, what, f,
		   lim);
	FUZZ_CHECK(g.pos + lim + seplen <= g.wlen, "op %zu (%s): overrun with only %zu bytes written after %zu",
		   g.op, what, g.wlen - g.pos, g.pos);
}

/* ----------------------------------------------------------- reading -- */

/*
 * Runs one reader op in the calling task (child: the second task) and
 * checks what it returned. Returns the call's result.
 */
static ssize_t run_op(const struct rop *o, bool child)
{
	const char *what = rnames[o->kind];
	uint8_t *buf = NULL;
	size_t partial = 0, *pp = o->nopartial ? NULL : &partial;
	size_t lim, before;
	const void *view = NULL;
	ssize_t rc = 0;

	if (!child)
		g.main_in_op = true;
	switch (o->kind) {
	case R_READ:
		buf = malloc(o->n ? o->n : 1);
		rc = tide_stream_read(g.r, o->bad ? NULL : buf, o->n);
		if (o->bad && o->n)
			FUZZ_CHECK(rc == -EINVAL, "read(NULL, %zu): %zd", o->n, rc);
		else if (o->n == 0)
			FUZZ_CHECK(rc == 0, "read(0): %zd", rc);
		else if (rc > 0) {
			FUZZ_CHECK((size_t)rc <= o->n, "read(%zu): %zd", o->n, rc);
			take(what, buf, (size_t)rc);
		} else if (rc == 0)
			check_eof(what);
		else
			check_error(what, rc, child);
		break;
	case R_EXACT:
		buf = malloc(o->n ? o->n : 1);
		rc = tide_stream_readexactly(g.r, o->bad ? NULL : buf, o->n, pp);
		if (o->bad && o->n) {
			FUZZ_CHECK(rc == -EINVAL, "readexactly(NULL, %zu): %zd", o->n, rc);
		} else if (o->n == 0) {
			FUZZ_CHECK(rc == 0, "readexactly(0): %zd", rc);
		} else if (rc >= 0) {
			FUZZ_CHECK((size_t)rc == o->n, "readexactly(%zu): %zd", o->n, rc);
			take(what, buf, o->n);
		} else if (rc == TIDE_EINCOMPLETE_READ) {
			/* Without *partial the count is what the reader let go. */
			if (!pp)
				partial = consumed_by_reader() - g.pos;
			FUZZ_CHECK(partial < o->n, "readexactly(%zu): incomplete with %zu bytes", o->n, partial);
			take(what, buf, partial);
			check_eof(what);
		} else {
			FUZZ_CHECK(partial == 0, "readexactly: error %zd with %zu partial bytes", rc, partial);
			check_error(what, rc, child);
		}
		break;
	case R_UNTIL:
		buf = malloc(o->n ? o->n : 1);
		rc = tide_stream_readuntil(g.r, o->bad ? NULL : o->sep, o->seplen, buf, o->n, pp);
		lim = o->n >= o->seplen ? o->n - o->seplen : 0;
		lim = lim < g.limit ? lim : g.limit;
		if (o->bad || o->n < o->seplen) {
			FUZZ_CHECK(rc == -EINVAL, "readuntil(sep %s, cap %zu < seplen %zu): %zd", o->bad ? "NULL" : "set",
				   o->n, o->seplen, rc);
		} else if (rc > 0) {
			FUZZ_CHECK((size_t)rc <= o->n, "readuntil(cap %zu): %zd", o->n, rc);
			check_until(what, buf, (size_t)rc, o->sep, o->seplen, lim, false);
		} else if (rc == TIDE_EINCOMPLETE_READ) {
			if (!pp)
				partial = consumed_by_reader() - g.pos;
			check_until(what, buf, partial, o->sep, o->seplen, lim, true);
		} else if (rc == TIDE_ELIMIT_OVERRUN) {
			check_overrun(what, o->sep, o->seplen, lim);
		} else {
			FUZZ_CHECK(rc != 0, "readuntil returned 0");
			check_error(what, rc, child);
		}
		break;
	case R_LINE: {
		static const uint8_t nl = '\n';

		buf = malloc(o->n ? o->n : 1);
		rc = tide_stream_readline(g.r, o->bad ? NULL : buf, o->n);
		lim = o->n ? o->n - 1 : 0;
		lim = lim < g.limit ? lim : g.limit;
		if (o->bad || o->n == 0) {
			FUZZ_CHECK(rc == -EINVAL, "readline(%s, %zu): %zd", o->bad ? "NULL" : "buf", o->n, rc);
		} else if (rc > 0) {
			FUZZ_CHECK((size_t)rc <= o->n, "readline(cap %zu): %zd", o->n, rc);
			check_until(what, buf, (size_t)rc, &nl, 1, lim, buf[rc - 1] != '\n');
		} else if (rc == 0) {
			check_eof(what);
		} else if (rc == TIDE_ELIMIT_OVERRUN) {
			/* The line goes, up to its end if it had arrived: the
			 * reader's count says how much that was. */
			size_t d = consumed_by_reader() - g.pos;
			size_t f = first_sep(&nl, 1, SIZE_MAX - g.pos - 1);

			check_overrun(what, &nl, 1, lim);
			FUZZ_CHECK(d > lim && (f == SIZE_MAX || d <= f + 1),
				   "readline overrun discarded %zu bytes (limit %zu, newline at %zu)", d, lim, f);
			take(what, g.W + g.pos, d);
		} else {
			check_error(what, rc, child);
		}
		break;
	}
	case R_PEEK:
		rc = tide_stream_peek(g.r, o->bad ? NULL : &view);
		if (o->bad) {
			FUZZ_CHECK(rc == -EINVAL, "peek(NULL): %zd", rc);
		} else if (rc > 0) {
			before = g.pos;
			FUZZ_CHECK(view != NULL, "peek: %zd bytes at NULL", rc);
			take(what, view, (size_t)rc);
			g.pos = before; /* peek consumes nothing */
		} else if (rc == 0) {
			FUZZ_CHECK(view == NULL, "peek at EOF: a view");
			check_eof(what);
		} else {
			check_error(what, rc, child);
		}
		break;
	case R_CONSUME: {
		size_t held = tide__stream_buffered(g.r);

		rc = tide_stream_consume(o->bad ? NULL : g.r, o->n);
		if (!o->bad && rc == -EBUSY) {
			/* Beside a read under way, before the count is looked at. */
			check_error(what, rc, child);
		} else if (o->bad || o->n > held) {
			FUZZ_CHECK(rc == -EINVAL, "consume(%zu) of %zu held: %zd", o->n, held, rc);
		} else if (rc == 0) {
			FUZZ_CHECK(g.pos + o->n <= g.wlen, "consume(%zu) past the bytes written", o->n);
			g.pos += o->n;
		} else {
			check_error(what, rc, child);
		}
		break;
	}
	case R_ATEOF:
		rc = tide_stream_at_eof(g.r);
		FUZZ_CHECK(rc == 0 || rc == 1, "at_eof: %zd", rc);
		if (rc)
			check_eof(what);
		break;
	case R_LIMIT:
		rc = tide_stream_set_limit(g.r, o->bad ? SIZE_MAX : o->n);
		if (o->bad || o->n == 0) {
			FUZZ_CHECK(rc == -EINVAL, "set_limit(%zu): %zd", o->bad ? SIZE_MAX : o->n, rc);
		} else {
			FUZZ_CHECK(rc == 0, "set_limit(%zu): %zd", o->n, rc);
			g.limit = o->n;
		}
		break;
	case R_YIELD:
		for (unsigned i = 0; i < o->k; i++)
			FUZZ_CHECK(tide_yield() == 0, "yield failed");
		break;
	default:
		break;
	}
	free(buf);
	if (!child)
		g.main_in_op = false;
	if (g.trace)
		fprintf(stderr, "op %zu%s: %s(%zu)%s = %zd, at %zu of %zu written\n", g.op, child ? " (child)" : "",
			what, o->n, o->bad ? " bad" : "", rc, g.pos, g.wlen);
	return rc;
}

/* The child task: one read, checked as it returns. */
static int64_t child_main(void *arg)
{
	run_op(arg, true);
	g.child_live = false;
	return 0;
}

/*
 * A read in a second task: it starts, main yields, may read beside it
 * (one of the two gets -EBUSY unless the data satisfies both in turn),
 * may cancel it (it then consumes nothing, or returns what it received),
 * and joins it.
 */
static void run_child(const struct rop *o, const struct rop *inner, const struct rop *beside)
{
	struct tide_future *t = NULL;

	FUZZ_CHECK(tide_task_spawn(g.loop, child_main, (void *)inner, NULL, &t) == 0, "spawn");
	g.child_live = true;
	g.child_cancelled = false;
	for (unsigned i = 0; i < o->k; i++)
		FUZZ_CHECK(tide_yield() == 0, "yield failed");
	if (beside)
		run_op(beside, false);
	if (o->cancel) {
		g.child_cancelled = true;
		tide_task_cancel(t);
	}
	/* Its outcome is the read's (checked in the task), or cancelled. */
	tide_await(t);
	FUZZ_CHECK(tide_future_done(t), "the child is not done after its await");
	tide_future_unref(t);
	/* Cancelled before it started, its body never ran. */
	g.child_live = false;
}

/* ------------------------------------------------------------ writing -- */

/* Appends n bytes (W holds them before they are sent, so a read that
 * returns them finds them) and sends them; false past W_MAX. */
static bool send_chunk(const uint8_t *p, size_t n, uint8_t fill)
{
	size_t off = g.wlen;

	if (!n || g.wlen + n > W_MAX)
		return false;
	if (g.wlen + n > g.wcap) {
		size_t cap = g.wcap ? g.wcap : 4096;
		uint8_t *nw;

		while (cap < g.wlen + n)
			cap *= 2;
		nw = realloc(g.W, cap);
		FUZZ_CHECK(nw != NULL, "out of memory");
		g.W = nw;
		g.wcap = cap;
	}
	if (p)
		memcpy(g.W + off, p, n);
	else
		memset(g.W + off, fill, n);
	g.wlen += n;
	/* Only the writer grows W, and not while its send is in flight. */
	while (off < g.wlen) {
		ssize_t rc = tide_send(g.wfd, g.W + off, g.wlen - off, MSG_NOSIGNAL);

		FUZZ_CHECK(rc > 0, "the writer's send: %zd (%s)", rc, tide_strerror((int)rc));
		off += (size_t)rc;
	}
	return true;
}

static int64_t writer_main(void *arg)
{
	const uint8_t *last = NULL;
	size_t lastn = 0;

	(void)arg;
	for (size_t i = 0; i < g.nwops; i++) {
		const struct wop *o = &g.wops[i];

		switch (o->kind) {
		case W_BYTES:
			if (send_chunk(o->p, o->n, 0)) {
				last = o->p;
				lastn = o->n;
			}
			break;
		case W_FILL:
			send_chunk(NULL, o->n, o->c);
			break;
		case W_REPEAT:
			for (unsigned k = 0; k < o->k && last; k++)
				send_chunk(last, lastn, 0);
			break;
		case W_YIELD:
			for (unsigned k = 0; k < o->k; k++)
				FUZZ_CHECK(tide_yield() == 0, "yield failed");
			break;
		case W_SLEEP:
			if (g.slept_ms + o->k <= SLEEP_MAX_MS) {
				g.slept_ms += o->k;
				FUZZ_CHECK(tide_sleep(o->k / 1000.0) == 0, "sleep failed");
			}
			break;
		default:
			break;
		}
	}
	/* Ended from here on: tide_close suspends this task, and the reader
	 * may see the EOF (its receive completing first) before it resumes. */
	g.wdone = true;
	if (g.end == END_SHUTDOWN) {
		FUZZ_CHECK(shutdown(g.wfd, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
	} else {
		if (g.end == END_RESET) {
			struct linger l = { .l_onoff = 1, .l_linger = 0 };

			FUZZ_CHECK(setsockopt(g.wfd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) == 0, "SO_LINGER");
		}
		FUZZ_CHECK(tide_close(g.wfd) == 0, "close");
		g.wfd = -1;
	}
	return 0;
}

/* ---------------------------------------------------------- the socket -- */

/* One listener of each kind per process; the writer is accepted from it. */
static int tcp_lfd = -1, tcp_port, unix_lfd = -1;
static char unix_path[108];

static void unlink_path(void)
{
	unlink(unix_path);
}

static int listener(bool unix_sock)
{
	if (unix_sock && unix_lfd < 0) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };

		snprintf(unix_path, sizeof(unix_path), "%s/tide-fuzz-%d.sock",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", unix_path);
		unlink(unix_path);
		unix_lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		FUZZ_CHECK(unix_lfd >= 0 && bind(unix_lfd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
				   listen(unix_lfd, 16) == 0,
			   "unix listener %s: %s", unix_path, strerror(errno));
		atexit(unlink_path);
	} else if (!unix_sock && tcp_lfd < 0) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(a);

		tcp_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		FUZZ_CHECK(tcp_lfd >= 0 && bind(tcp_lfd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
				   listen(tcp_lfd, 16) == 0 && getsockname(tcp_lfd, (struct sockaddr *)&a, &len) == 0,
			   "tcp listener: %s", strerror(errno));
		tcp_port = ntohs(a.sin_port);
	}
	return unix_sock ? unix_lfd : tcp_lfd;
}

/* The peer of the connection just made: it is in the listener's queue. */
static int accept_peer(int lfd)
{
	for (int tries = 0; tries < 100; tries++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		if (fd >= 0)
			return fd;
		FUZZ_CHECK(errno == EAGAIN || errno == EINTR, "accept: %s", strerror(errno));
		poll(&p, 1, 100);
	}
	fuzz_fail(__FILE__, __LINE__, "accept", "the connection never reached the listener");
}

/* ---------------------------------------------------------- the input -- */

static int64_t main_task(void *arg)
{
	int lfd = listener(g.unix_sock), one = 1, rc;
	struct tide_future *writer = NULL;
	struct rop drain = { .kind = R_READ, .n = 65536 };

	(void)arg;
	rc = g.unix_sock ? tide_open_unix_connection(unix_path, &g.r, &g.w)
			 : tide_open_connection("127.0.0.1", tcp_port, &g.r, &g.w);
	FUZZ_CHECK(rc == 0, "open_connection: %s", tide_strerror(rc));
	g.wfd = accept_peer(lfd);
	if (!g.unix_sock)
		setsockopt(g.wfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (g.limit0)
		FUZZ_CHECK(tide_stream_set_limit(g.r, g.limit0) == 0, "set_limit(%zu)", g.limit0);
	g.limit = g.limit0 ? g.limit0 : 64 * 1024;
	FUZZ_CHECK(tide_task_spawn(g.loop, writer_main, NULL, NULL, &writer) == 0, "spawn the writer");

	for (g.op = 0; g.op < g.nrops; g.op++) {
		const struct rop *o = &g.rops[g.op];

		if (o->kind == R_CHILD) {
			const struct rop *inner = g.op + 1 < g.nrops ? &g.rops[g.op + 1] : NULL;
			const struct rop *beside = o->concurrent && g.op + 2 < g.nrops ? &g.rops[g.op + 2] : NULL;

			if (inner)
				run_child(o, inner, beside);
			g.op += beside ? 2 : 1;
		} else {
			run_op(o, false);
		}
		check_quiet();
	}
	/* The rest, to the end: every byte, then EOF (or the reset). */
	g.op = g.nrops;
	do
		rc = (int)run_op(&drain, false);
	while (rc > 0);
	check_quiet();
	if (g.clean) {
		FUZZ_CHECK(rc == 0, "the drain ended with %d (%s)", rc, tide_strerror(rc));
		FUZZ_CHECK(tide_stream_at_eof(g.r) == 1, "at_eof is 0 after EOF");
	}
	FUZZ_CHECK(tide_await(writer) == 0, "the writer failed");
	tide_future_unref(writer);
	tide_stream_free(g.r, g.w);
	if (g.wfd >= 0)
		FUZZ_CHECK(tide_close(g.wfd) == 0, "close");
	return 0;
}

/* io_uring receive rings: {size, count}; 0 is the default. */
static const struct {
	size_t size;
	unsigned count;
} rings[8] = { { 0, 0 }, { 64, 2 }, { 100, 4 }, { 512, 1 }, { 4096, 2 }, { 0, 1 }, { 16384, 8 }, { 256, 16 } };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const backends[3] = { "io_uring", "io_uring", "epoll" };
	struct fuzz_in in = { data, size };
	struct tide_loop_opts lo = { .size = sizeof(lo) };
	struct tide_future *t = NULL;
	unsigned cfg = fuzz_u8(&in), backend = ((cfg & 3) % 3 + (unsigned)fuzz_pass) % 3;
	int rc;

	memset(&g, 0, sizeof(g));
	g.wfd = -1;
	g.trace = getenv("FUZZ_TRACE") != NULL;
	g.unix_sock = cfg & 4;
	g.end = (enum end)((cfg >> 3) & 3) % 3;
	g.clean = g.end != END_RESET || g.unix_sock; /* a Unix socket has no reset */
	g.limit0 = dec_size(&in);
	lo.backend = backends[backend];
	lo.disable_ops = backend == 1 ? "all-optional" : NULL;
	lo.recv_buf_size = rings[cfg >> 5].size;
	lo.recv_buf_count = rings[cfg >> 5].count;

	g.rops = calloc(in.n + 1, sizeof(*g.rops));
	g.wops = calloc(in.n + 1, sizeof(*g.wops));
	FUZZ_CHECK(g.rops && g.wops, "out of memory");
	while (in.n) {
		unsigned c = fuzz_u8(&in);

		if (c & 0x80) {
			dec_wop(&in, c, &g.wops[g.nwops++]);
		} else {
			bool child = (c & 0x0f) % R_KINDS == R_CHILD;

			dec_rop(&in, c, true, &g.rops[g.nrops++]);
			/* A child's op, and main's beside it: never a child. */
			for (int i = 0; child && i < 1 + g.rops[g.nrops - 1].concurrent && in.n; i++)
				dec_rop(&in, fuzz_u8(&in), false, &g.rops[g.nrops++]);
		}
	}

	rc = tide_loop_new(&lo, &g.loop);
	if (rc < 0 && backend < 2) {
		const char *req = getenv("TIDE_TEST_REQUIRE_URING");

		FUZZ_CHECK(!req || strcmp(req, "1") != 0, "io_uring required: %s", tide_loop_new_error());
		fuzz_skip("io_uring unavailable here");
		goto out;
	}
	FUZZ_CHECK(rc == 0, "tide_loop_new(%s): %s", lo.backend, tide_loop_new_error());
	FUZZ_CHECK(tide_task_spawn(g.loop, main_task, NULL, NULL, &t) == 0, "spawn");
	rc = tide_loop_run_until_complete(g.loop, t);
	FUZZ_CHECK(rc == 0, "the main task: %s", tide_strerror(rc));
	tide_future_unref(t);
	rc = tide_loop_shutdown(g.loop, 30.0);
	FUZZ_CHECK(rc == 0, "tide_loop_shutdown: %s", tide_strerror(rc));
	rc = tide_loop_free(g.loop);
	FUZZ_CHECK(rc == 0, "tide_loop_free: %s", tide_strerror(rc));
out:
	free(g.rops);
	free(g.wops);
	free(g.W);
	return 0;
}
