/* SPDX-License-Identifier: MIT */
/*
 * net.h: what transport.c, server.c and resolve.c share: the transport
 * object and the few calls servers and connectors make on it.
 *
 * The hard part it encodes is the transport's life: it is the library's
 * until connection_lost has run, and connection_lost runs only once every
 * op of the transport has delivered its final completion, so that the fd
 * is closed after the kernel let go of it (DESIGN.md, rule 3).
 */
#ifndef TIDE_NET_H
#define TIDE_NET_H

#include "task/task.h"

#include <sys/socket.h>

struct tide_server;

/*
 * A transport's kind: a socket stream (pipes too), a datagram endpoint,
 * or a TLS transport (tls.c), which is the app's side of a TLS
 * connection over a stream transport: the public calls test the kind at
 * their top and hand a TLS transport to tls.c.
 */
enum { TIDE__T_STREAM, TIDE__T_DGRAM, TIDE__T_TLS };

/* The readiness paths' one read (and a datagram's largest). */
#define TIDE__READ_CHUNK (64 * 1024)
#define TIDE__WB_CLASSES 17 /* write-buffer pools: 64 B to 4 MiB (pbuf.c) */
/* The most plaintext one TLS record carries (2^14 bytes). */
#define TIDE__TLS_RECORD 16384

/*
 * The net layer's per-loop state (pbuf.c), hung on the loop by the first
 * transport or server (tide__net_get) and freed by the loop's net_fini.
 */
struct tide__net {
	/* The ring buffer whose bytes data_received is reading (NULL outside
	 * it), which a write of those bytes may keep and send from instead of
	 * copying; its length and ring id. */
	const char *lend_p;
	size_t lend_len;
	unsigned lend_bid;
	/* Transports' empty write buffers of 64 << i bytes, linked through
	 * their first bytes. */
	char *wbuf_pool[TIDE__WB_CLASSES];
	unsigned wbuf_pooled[TIDE__WB_CLASSES];
	size_t wbuf_big;            /* bytes the pools above 4 KiB keep */
	char *rbuf;                 /* readiness-path receive buffer shared by every transport */
	/* The plaintext a TLS record decrypts to, for a protocol that is not
	 * a buffered one (tls.c; TIDE__TLS_RECORD bytes), and whether a
	 * delivery is reading it. */
	char *tls_buf;
	bool tls_buf_busy;
	/* Zero-copy sends: the bytes of those awaiting their notification,
	 * loop-wide; after one failed for want of lockable memory
	 * (zc_nomem), sends copy until those bytes fall below zc_nomem_mark
	 * or the loop's clock reaches zc_retry (zc_backoff seconds later). */
	size_t zc_pinned;
	size_t zc_nomem_mark;
	bool zc_nomem;
	unsigned zc_backoff;
	uint64_t zc_retry;
};

/*
 * The protocol extension hook for ring buffers a protocol keeps instead of
 * having them copied (stream.c's tide_stream_peek): a transport with a
 * keep hook offers it each whole ring buffer it delivers, while the ring
 * can spare it; true means the protocol took it, and gives it back with
 * tide__pbuf_return. Set before data flows (connection_made at the latest).
 */
struct tide_transport;
typedef bool (*tide__keep_cb)(struct tide_transport *t, const char *data, size_t n, unsigned bid, void *proto);
/* The owner of an accepted connection (a listener) hears when it is gone,
 * after connection_lost: gone(t, owner). */
typedef void (*tide__gone_cb)(struct tide_transport *t, void *owner);

/* One half of the write buffer: len bytes at p, cap allocated. */
struct tide__wbuf {
	char *p;
	size_t len;
	size_t cap;
};

struct tide__tdl; /* transport.c */

/*
 * The storage of a write buffer that zero-copy sends are sending from:
 * the kernel reads it until each send's notification, after the send
 * itself completed and the transport moved on. Once the transport lets go
 * of it (retired), p is the storage, freed with the last notification.
 */
struct tide__zcpin {
	struct tide_transport *t;
	char *p;        /* NULL while it is still the transport's wa */
	size_t cap;
	unsigned pins;  /* zero-copy sends of it awaiting their notification */
};

/* A datagram waiting for the socket to become writable. */
struct tide__dgram {
	struct tide__dgram *next;
	size_t len;
	socklen_t alen;
	struct sockaddr_storage addr;
	char data[];
};

struct tide_transport {
	uint32_t refs;              /* the open connection holds one; users may add theirs */
	int fd;                     /* the socket, closed by the loop after the last op */
	int error;                  /* the first fatal error, reported by connection_lost */
	unsigned kind : 2;          /* TIDE__T_STREAM, TIDE__T_DGRAM or TIDE__T_TLS */
	unsigned multishot : 1;     /* reads come from a multishot recv on the buffer ring */
	unsigned direct_send : 1;   /* readiness paths: try send(2) at write time */
	unsigned reading : 1;       /* the user wants data (pause_reading clears it) */
	unsigned closing : 1;       /* close or abort was called, or a fatal error came */
	unsigned aborted : 1;       /* abort was called (or a fatal error): no later error counts */
	unsigned eof_seen : 1;      /* the peer shut down its side */
	unsigned eof_done : 1;      /* eof_received was called (once per connection) */
	unsigned eof_pending : 1;   /* write_eof: shut down once the buffer is flushed */
	unsigned write_shut : 1;    /* SHUT_WR done */
	unsigned write_paused : 1;  /* pause_writing was called, resume_writing not yet */
	unsigned lost : 1;          /* connection_lost ran: no callback after it */
	unsigned lost_queued : 1;   /* the final step is scheduled */
	unsigned held_queued : 1;   /* a delivery of held bytes is scheduled */
	unsigned rop_busy : 1;      /* rop is in flight */
	unsigned zc_checked : 1;    /* zc says whether zero-copy sends work here */
	unsigned zc : 1;
	unsigned wa_lent : 1;       /* wa is a ring buffer (its id in wa.cap), back to the ring once sent */
	unsigned ms_ok : 1;         /* multishot receives work here (multishot: in use now) */
	unsigned rx_seen : 1;       /* bytes came in since the timeouts last looked (dl) */
	unsigned tx_seen : 1;       /* bytes went out since then */
	unsigned pipe : 1;          /* a pipe transport (pipe.c): read/write, no shutdown nor zero-copy */
	unsigned pipe_rd : 1;       /* a read pipe: writing is -EOPNOTSUPP (else a write pipe, whose
				     * read op watches for its reader going away) */
	unsigned arming : 1;        /* a pipe's read op is being submitted (see pipe_read_arm) */
	unsigned tls_raw : 1;       /* the stream under a TLS transport (tls.c): its public calls
				     * say TIDE_ESSL_CLOSED, tls.c drives it through tide__t_* */
	unsigned corked : 1;        /* writes wait in the buffer until tide__t_uncork (tls.c) */
	uint16_t rd_run;            /* full ring buffers in a row this iteration, or small reads in a row */
	uint32_t rd_iter;           /* the loop iteration of the last full ring buffer */
	const struct tide_protocol_ops *ops;
	void *proto;
	tide__keep_cb keep;         /* the protocol's ring-buffer hook, or NULL */
	/* The write side, then the read op: a receive and an echo's send
	 * touch the first 180 bytes (see tide__op's field order). */
	struct tide__op *wop;       /* the write side's op awaiting its result (send or poll) */
	struct tide__zcpin *wa_pin; /* zero-copy sends from wa awaiting their notification, or NULL */
	uint32_t zc_pending;        /* every zero-copy send of this transport awaiting its notification */
	struct tide__wbuf wa;       /* what the write op is sending (the kernel's until it completes),
				     * or a provided buffer it sends from (wa_lent) */
	size_t wa_off;              /* how much of wa is sent */
	struct tide__wbuf wb;       /* what was written since: sent next */
	uint32_t high, low;         /* write buffer limits */
	/* Multishot data that arrived after pause_reading (or before a
	 * delivery of earlier held data): given to the protocol on resume. */
	struct tide__wbuf held;
	/* The timeouts and deadline (tide_transport_set_timeouts), made when
	 * first set; NULL for most connections. */
	struct tide__tdl *dl;
	/*
	 * The read op (recv multishot or POLLIN) lives here, so an idle
	 * connection is one allocation of about 270 bytes; its loop field is
	 * the transport's loop (tloop()).
	 */
	struct tide__op rop;
	union {
		struct {                    /* stream transports */
			struct tide_server *server; /* the server that accepted it, or NULL */
			tide__gone_cb gone;         /* tells the server it is gone */
			struct tide__list srv_link; /* in the server's conns */
		};
		struct {                    /* datagram transports */
			struct tide__dgram *dq;     /* datagrams waiting for POLLOUT */
			struct tide__dgram **dq_tailp;
			size_t dq_bytes;
		};
	};
};

/*
 * A protocol's callback m, or NULL. A table from a program built against
 * an older, shorter struct tide_protocol_ops has no member past its size:
 * reading one would read whatever follows the table, so those count as
 * NULL, the default of every member.
 */
#define PROTO_CB(t, m)                                                                  \
	((t)->ops->size >= offsetof(struct tide_protocol_ops, m) + sizeof((t)->ops->m) \
		 ? (t)->ops->m                                                          \
		 : NULL)

static inline struct tide_loop *tloop(const struct tide_transport *t)
{
	return t->rop.loop;
}

/*
 * The lending of the ring buffer being delivered (inline: every receive
 * and every echo's write on io_uring goes through them). tide__lent_bytes:
 * whether [p, p + n) lies inside it (compared as addresses: bytes before
 * it, or past its end, are not its bytes). tide__lend_keep: a send or a
 * stream keeps it, one owner. tide__lend_deliver: a multishot receive's
 * ring buffer (op->buf, op->res bytes) goes through deliver, lent for the
 * call, and back to the ring unless kept.
 */
static inline bool tide__lent_bytes(const struct tide__net *net, const void *p, size_t n)
{
	uintptr_t b = (uintptr_t)net->lend_p, a = (uintptr_t)p;

	return net->lend_p && a >= b && a - b <= net->lend_len && n <= net->lend_len - (a - b);
}

static inline void tide__lend_keep(struct tide_loop *loop)
{
	tide__pbuf_keep(loop);
	loop->net->lend_p = NULL;
}

static inline void tide__lend_deliver(struct tide_transport *t, struct tide__op *op, void (*deliver)(struct tide_transport *, const char *, size_t))
{
	struct tide_loop *loop = op->loop;
	struct tide__net *net = loop->net;
	const char *lp = net->lend_p;
	size_t ll = net->lend_len;
	unsigned lb = net->lend_bid;

	/* Lent to whatever write sends these bytes while data_received
	 * runs; back to the ring now unless a send or a stream kept it. The
	 * window is saved and restored around the call, so that a delivery
	 * nested in it leaves the outer one as it was. */
	net->lend_p = op->buf;
	net->lend_len = (size_t)op->res;
	net->lend_bid = op->bid;
	deliver(t, op->buf, (size_t)op->res);
	if (net->lend_p)
		tide__pbuf_recycle(loop, op->bid);
	net->lend_p = lp;
	net->lend_len = ll;
	net->lend_bid = lb;
}

/* The loop's net state, made on first use; NULL when out of memory. */
struct tide__net *tide__net_get(struct tide_loop *loop);
/* The shared receive buffer of TIDE__READ_CHUNK bytes (NULL: ENOMEM). */
char *tide__net_rbuf(struct tide__net *net);
/* Room for n more bytes in b: 0, or -ENOMEM (b unchanged). */
int tide__wbuf_reserve(struct tide__net *net, struct tide__wbuf *b, size_t n);
/* Emptied: the memory goes back (to its pool if it came from one). */
void tide__wbuf_reset(struct tide__net *net, struct tide__wbuf *b);
/* Frees pooled write buffers beyond keep per class. */
void tide__wbuf_pool_trim(struct tide__net *net, unsigned keep);
/*
 * A transport on fd (connected, non-blocking, close-on-exec); on error fd
 * is closed. tide__transport_start then calls connection_made and starts
 * reading: in between, the caller links it where it belongs (a server's
 * list, a future's result), so that what connection_made does to it (close
 * it, free the server) finds everything in place.
 */
int tide__transport_new(struct tide_loop *loop, int fd, int kind, const struct tide_protocol_ops *ops, void *proto,
			struct tide_server *server, struct tide_transport **out);
void tide__transport_start(struct tide_transport *t);
/*
 * A pipe transport (pipe.c) on fd, a pipe, FIFO, socket or character
 * device, for reading (TIDE__PIPE_READ) or writing (TIDE__PIPE_WRITE): fd
 * is made non-blocking and close-on-exec; on error it is closed (unless
 * not open: -EBADF); -EINVAL for another kind of file or an fd opened the
 * other way. Then tide__transport_start, as for sockets.
 */
enum { TIDE__PIPE_READ, TIDE__PIPE_WRITE };
int tide__pipe_transport_new(struct tide_loop *loop, int fd, int dir, const struct tide_protocol_ops *ops, void *proto,
			     struct tide_transport **out);
/*
 * A stream over one end of a pipe (stream.c), for a process's stdin
 * (writer), stdout and stderr (readers): limit 0 is the default 64 KiB.
 * Freed with tide_stream_free(r, NULL) or tide_stream_free(NULL, w); on
 * error fd is closed as tide__pipe_transport_new says.
 */
int tide__stream_pipe_reader(struct tide_loop *loop, int fd, size_t limit, struct tide_stream_reader **r);
int tide__stream_pipe_writer(struct tide_loop *loop, int fd, struct tide_stream_writer **w);
/* The protocol of a transport made with none (NULL ops: every callback a
 * no-op); before tide__transport_start only. */
void tide__transport_bind(struct tide_transport *t, const struct tide_protocol_ops *ops, void *proto);
/* A transport that never started: closes its fd and frees it, no callback. */
void tide__transport_discard(struct tide_transport *t);
/* Streams: fn(arg) runs when the server is freed (the factory's argument). */
void tide__server_set_arg_free(struct tide_server *s, void (*fn)(void *arg));
/*
 * The protocol extension hook for ring buffers a protocol keeps instead of
 * having them copied (stream.c's tide_stream_peek): a transport with a
 * keep hook offers it each whole ring buffer it delivers, while the ring
 * can spare it; true means the protocol took it, and gives it back with
 * tide__pbuf_return. Set before data flows (connection_made at the latest).
 */
void tide__transport_set_keep(struct tide_transport *t, tide__keep_cb keep);

/*
 * The transport's machinery that its two kinds share (transport.c), for
 * the datagram side (datagram.c): a fatal error ends it (asyncio's
 * _fatal_error); read_arm starts reading if reading is wanted;
 * maybe_finish ends it once closing and quiet; maybe_pause/resume keep the
 * write-buffer marks; new_op and submit_wop make and start the write
 * side's op.
 */
void tide__t_fatal(struct tide_transport *t, int err);
void tide__t_read_arm(struct tide_transport *t);
void tide__t_maybe_finish(struct tide_transport *t);
void tide__t_maybe_pause(struct tide_transport *t);
void tide__t_maybe_resume(struct tide_transport *t);
int tide__t_new_op(struct tide_transport *t, int kind, tide__op_done_cb done, struct tide__op **out);
void tide__t_submit_wop(struct tide_transport *t, struct tide__op *op);
/*
 * The calls tls.c makes on the stream under a TLS transport, whose
 * public calls refuse it (tls_raw): a write (all of it or none, as
 * tide_transport_write), close, pause and resume reading, the
 * write-buffer marks and size, timeouts and deadline.
 */
int tide__t_writev(struct tide_transport *t, const struct iovec *iov, int iovcnt);
/*
 * Corking (tls.c): while corked, writes only append to the buffer (and
 * pause_writing comes as it would); uncork starts the one send of all of it (on the
 * readiness paths tried at once, as a write with nothing buffered is).
 * tide__t_cork says false when the transport was corked already: the
 * outer caller uncorks.
 */
static inline bool tide__t_cork(struct tide_transport *t)
{
	if (t->corked)
		return false;
	t->corked = 1;
	return true;
}
void tide__t_uncork(struct tide_transport *t);
void tide__t_close(struct tide_transport *t);
int tide__t_pause_reading(struct tide_transport *t);
int tide__t_resume_reading(struct tide_transport *t);
int tide__t_set_limits(struct tide_transport *t, size_t high, size_t low);
size_t tide__t_wsize(const struct tide_transport *t);
int tide__t_set_timeouts(struct tide_transport *t, const struct tide_timeouts *to);
int tide__t_set_deadline(struct tide_transport *t, double when);

/*
 * TLS (tls.c): a TLS transport (kind TIDE__T_TLS) over a stream
 * transport, asyncio's sslproto shape. The options of a call are copied
 * into a conf (the context referenced, the ALPN list in wire format),
 * which a server shares among its connections. tide__tls_wrap puts a new
 * TLS transport over raw (which it takes over: its protocol becomes
 * tls.c's) and starts the handshake once raw is started (new
 * connections: tide__transport_start(raw)) or at once (start_tls). When
 * the handshake is over, ready(tls, 0, arg) runs first (a client's future
 * completes, a server calls its factory and binds the protocol: a
 * negative return refuses the connection), then connection_made; a
 * handshake that fails calls ready(tls, err, arg) once the socket is
 * closed, and the protocol never hears of it. Without OpenSSL every one
 * of these says -ENOTSUP.
 */
struct tide__tls_conf;
typedef int (*tide__tls_ready_cb)(struct tide_transport *tls, int err, void *arg);
int tide__tls_conf_new(const struct tide_tls_opts *o, const char *host, bool server, struct tide__tls_conf **out);
void tide__tls_conf_unref(struct tide__tls_conf *c);
int tide__tls_wrap(struct tide_transport *raw, struct tide__tls_conf *conf, const struct tide_protocol_ops *ops,
		   void *proto, tide__tls_ready_cb ready, void *arg, struct tide_transport **out);
/* A handshake under way ends with err (a create_connection cancelled). */
void tide__tls_cancel(struct tide_transport *tls, int err);
/* tide_start_tls with early bytes (a stream reader's): the first of the handshake. */
int tide__tls_start(struct tide_transport *t, int server_side, const struct tide_tls_opts *o,
		    const struct tide_protocol_ops *ops, void *proto, const void *early, size_t nearly,
		    struct tide_future **out);
/* The public transport calls on a TLS transport. */
int tide__tls_writev(struct tide_transport *t, const struct iovec *iov, int iovcnt);
int tide__tls_write_eof(struct tide_transport *t);
void tide__tls_close(struct tide_transport *t);
void tide__tls_abort(struct tide_transport *t);
int tide__tls_pause_reading(struct tide_transport *t);
int tide__tls_resume_reading(struct tide_transport *t);
int tide__tls_set_limits(struct tide_transport *t, size_t high, size_t low);
size_t tide__tls_wsize(const struct tide_transport *t);
int tide__tls_get_extra_info(const struct tide_transport *t, const char *name, void *buf, socklen_t *len);
/* The stream under it, or NULL once it is gone. */
struct tide_transport *tide__tls_raw(const struct tide_transport *t);
/* Its last reference went. */
void tide__tls_free(struct tide_transport *t);

/*
 * Connection timeouts (timeouts.c). Traffic only sets a bit (one
 * instruction, no branch: cheaper than testing whether timeouts are set):
 * rx_seen when bytes came in from the kernel, tx_seen when it took bytes
 * to send; the connection's timer looks at them.
 */
static inline void tide__t_rx_seen(struct tide_transport *t)
{
	t->rx_seen = 1;
}

static inline void tide__t_tx_seen(struct tide_transport *t)
{
	t->tx_seen = 1;
}

/* The transport finishes or goes: its timer and timeout state go too. */
void tide__t_timeouts_free(struct tide_transport *t);
/* datagram.c: the socket is readable: one datagram to the protocol. */
void tide__dgram_read(struct tide_transport *t);

/* Ends f with err, or (err 0) with the transport as its ptr, valid for as
 * long as the future is (it holds a reference): connection_made may close
 * it before the caller looks. */
void tide__future_end_transport(struct tide_future *f, int err, struct tide_transport *t);

/* TCP_NODELAY on a new connection, as asyncio sets it (connect.c). */
void tide__set_nodelay(int fd);
/*
 * A socket the caller already has (connect.c, for the *_sock calls of
 * tide.h): tide__sock_check says whether fd is a stream socket tide can
 * take (connected: with a peer), 0 or the contract's error, fd untouched;
 * tide__sock_take makes the checked fd non-blocking and close-on-exec,
 * once nothing can fail any more.
 */
int tide__sock_check(int fd, bool connected);
void tide__sock_take(int fd);
/* A unix socket address for path: -EINVAL (empty), -ENAMETOOLONG, or 0. */
struct sockaddr_un;
int tide__unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *len);

/*
 * A child started from tide_subprocess_opts (subprocess.c, for the
 * subprocess transport and process.c): the options checked and turned
 * into a spawn request, the child spawned and reaped by the loop
 * (exited(c, owner) at its exit). The parent's ends of the PIPE stdio
 * come back in pipes[] (non-blocking, close-on-exec; -1 for the others).
 */
int tide__subprocess_start(struct tide_loop *loop, const char *const *argv, const struct tide_subprocess_opts *opts,
			   tide__child_cb exited, void *owner, int pipes[3], struct tide__child **out);

/* getaddrinfo's EAI_* as tide's error currency. */
int tide__eai_error(int eai, int saved_errno);
/* getaddrinfo, or the test hook of resolve-hooks.h when one is set: every
 * lookup that may ask the system's resolver goes through here. */
int tide__system_getaddrinfo(const char *host, const char *port, const struct addrinfo *hints,
			     struct addrinfo **res);

#endif /* TIDE_NET_H */
