/* SPDX-License-Identifier: MIT */
/*
 * net-fixture.h: what the networking test programs share (sockops,
 * resolve, transport, server, datagram, load, stream-reader,
 * stream-socket), built once as the check-only library
 * test/libnetfixture.la: running the loop until a condition holds or for
 * a while, plain-socket utilities on the loopback, the logging protocol
 * (struct conn, struct srv) whose callbacks every transport test
 * compares, the stream tests' main task (and their use of helpers.h's
 * counting allocator), and the one main() of them all.
 *
 * The hard part is the bookkeeping of callbacks: every protocol logs its
 * callbacks (M made, D data runs, E eof, L lost) so a test compares the
 * whole sequence, and anything that arrives after connection_lost is
 * counted, never silently dropped. Transports are touched only before their
 * connection_lost returned, or through a reference (tide_transport_ref, or
 * the future of create_connection that holds one).
 *
 * net-fixture.c uses only the public API, so programs linked with
 * libtide.la use it; net-fixture-stream.c reaches the hidden stream hooks
 * (src/net/stream-hooks.h), and only the stream programs, linked with the
 * library's objects, pull it out of the archive.
 */
#ifndef TIDE_TEST_NET_FIXTURE_H
#define TIDE_TEST_NET_FIXTURE_H

#include "helpers.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* ----------------------------------------------------------- the loop -- */


/* n short iterations: long enough for a pending op to stay pending. */
void spin(struct tide_loop *loop, int n);
/* Runs the loop for secs (for checks that something does NOT happen). */
void run_for(struct tide_loop *loop, double secs);
/*
 * Lets deferred closes finish (a few idle iterations), then frees the loop,
 * which must succeed: every transport, server and future is gone.
 */
void finish(struct tide_loop *loop);
/* The result of a done future that holds a pointer, asserted error-free. */
void *fut_ptr(struct tide_future *f);
/* Takes a done future's ptr: the caller frees it as its producer says. */
void *fut_take(struct tide_future *f);
/* Runs the loop until f is done and drops f: its error (0 if none). */
int done_error(struct tide_loop *loop, struct tide_future *f);

/* -------------------------------------------------- plain sockets -- */

/* fd is O_NONBLOCK and FD_CLOEXEC. */
void check_nb_cloexec(int fd);
void set_nonblock(int fd);
/* The loopback address of family with port. */
socklen_t loopback(struct sockaddr_storage *ss, int family, int port);
int addr_port(const void *sa);
int sock_port(int fd);
int is_loopback4(const void *sa);
/* A plain socket bound to the loopback at a free port (listening if a stream). */
int bound_socket(int family, int type, int *port);
/* A port nobody listens on (bound, then closed: nothing else takes it in the meantime). */
int closed_port(int type);
/*
 * A blocking connect to the loopback: the kernel completes it through the
 * backlog. rcvbuf > 0 sets SO_RCVBUF first (the window is set then).
 */
int raw_connect_rcvbuf(int family, int port, int rcvbuf);
int raw_connect(int family, int port);
/* Reads exactly n bytes from the plain socket fd, running the loop meanwhile. */
void loop_recv_exact(struct tide_loop *loop, int fd, void *buf, size_t n);
/* fd is closed: fcntl says EBADF. */
void check_fd_closed(int fd, const char *what);
/* The peer of a plain socket fd closed it: EOF within a few seconds (the loop is gone). */
void check_peer_eof(int fd);
/*
 * A TCP listener whose accept queue is full: listen(backlog), then nfill
 * connects nobody accepts. The kernel drops further SYNs, so a connect
 * stays in SYN_SENT (its SYN is sent again after 1 s, 3 s...).
 */
int full_listener(int backlog, int *port, int *fill, int nfill);
/* Makes room: the filling clients go, and what they left queued is accepted and closed. */
void drain_listener(int lfd, int *fill, int nfill);
/* A socket a connect said is connected: getpeername agrees, with the listener's port. */
void check_connected(int fd, int port, const char *what);

/* n deterministic bytes for the stream seed, malloc'd. */
unsigned char *pat_buf(uint32_t seed, size_t n);

/* --------------------------------------------- the logging protocol -- */

struct dgram {
	char data[64];
	size_t n;
	struct sockaddr_storage from;
	socklen_t fromlen;
};

/* One connection's protocol: what happened to it, and how it behaves. */
struct conn {
	struct tide_transport *t; /* from connection_made; unused after connection_lost */
	struct tide_loop *loop;
	int id;
	char log[64];             /* M made, D data (a run is one D), E eof, L lost */
	size_t nlog;
	int made, eofs, lost, lost_err, after_lost;
	size_t datas;             /* data_received / buffer_updated calls */
	unsigned char *rx;        /* what arrived (unless verify is set) */
	size_t rxlen, rxcap;
	/* behaviour */
	int echo;                 /* write back what arrives */
	int eof_ret;              /* eof_received's return */
	int eof_reply;            /* after eof: write "reply:" + rx on a later callback, then close */
	size_t close_after;       /* close once this many bytes arrived (0: never) */
	int pause_on_made;
	void (*made_hook)(struct conn *c);
	void (*resume_hook)(struct conn *c);
	/* sending: tx[0..txlen) in pieces */
	unsigned char *tx;
	size_t txlen, txoff;
	int close_sent;
	/* receiving into a reference instead of rx */
	const unsigned char *verify;
	size_t vlen;
	/* read pausing driven by the test */
	int rpaused, data_while_paused, ntoggle;
	size_t pause_every;       /* pause_reading inside every nth data_received */
	struct tide_handle toggle_h;
	/* write flow control */
	int wpaused, npause, nresume;
	size_t high, low, max_buffered;
	/* buffered protocol */
	unsigned char *bbuf;
	size_t bbuf_len, nget;
	int get_buffer_err;
	/* datagrams */
	int echo_dgram, ndgram, nerr, last_err;
	struct dgram dg[16];
};

/* A new zeroed conn, freed by conns_free. */
struct conn *conn_new(void);
/* Logs the callback ev (a run of D is one D); counts what comes after L. */
void note(struct conn *c, char ev);
/* Keeps (or, with verify, checks) the bytes that arrived. */
void rx_append(struct conn *c, const void *data, size_t n);
/* close_after: closes once that many bytes arrived. */
void after_data(struct conn *c);
/* A timer callback (arg: a conn) that pauses and resumes c's reading
 * every millisecond, so it is paused half the time (counted in ntoggle),
 * until c is lost or closing; cancel c->toggle_h when done. */
void toggle_cb(void *arg);

/* The callbacks of conn_ops, for protocols made of some of them. */
void on_made(struct tide_transport *t, void *p);
int on_eof(struct tide_transport *t, void *p);
void on_lost(struct tide_transport *t, int err, void *p);
void on_dgram(struct tide_transport *t, const void *data, size_t n, const struct sockaddr *addr, socklen_t addrlen,
	      void *p);
void on_dgram_error(struct tide_transport *t, int err, void *p);

/* What every logging protocol has: its size, made and lost (the logging ones). */
#define LOG_OPS .size = sizeof(struct tide_protocol_ops), .connection_made = on_made, .connection_lost = on_lost
/* The same with the logging eof_received, for a stream protocol. */
#define LOG_STREAM_OPS LOG_OPS, .eof_received = on_eof

/* The logging stream protocol and the logging datagram protocol. */
extern const struct tide_protocol_ops conn_ops, dgram_ops;

/* A server's accepted connections, each a copy of tmpl. */
struct srv {
	struct conn tmpl;
	const struct tide_protocol_ops *ops; /* NULL: conn_ops */
	struct conn **conns;
	size_t n, cap;
	int refuse;
};

/* The protocol factory of a struct srv (arg). */
int srv_factory(const struct tide_protocol_ops **ops, void **proto, void *arg);
/* Frees every conn and the servers' conns arrays. */
void conns_free(void);
/* s's connections that were made (if made) and lost (if lost). */
size_t srv_count(const struct srv *s, int made, int lost);

extern const char *const lo4[1]; /* { "127.0.0.1" } */

/* A server on hosts (the first nhosts) whose connections copy s->tmpl. */
struct tide_server *serve(struct tide_loop *loop, const char *const *hosts, size_t nhosts,
			  const struct tide_server_opts *opts, struct srv *s);
void server_end(struct tide_server *sv);
/* create_connection; as in asyncio, connection_made has run when the future completes. */
struct conn *dial(struct tide_loop *loop, const char *host, int port, struct conn *c);
/* c logged exactly log, and was lost once with err. */
void check_conn(const struct conn *c, const char *log, int err);
/* The server side of a server's only connection, once accepted. */
struct conn *accepted(struct tide_loop *loop, struct srv *s);
/* Both ends of a server's only connection (cli its client) are gone. */
int both_lost(const struct conn *cli, const struct srv *s);
/* The end of a protocol test: the server (if any), the loop, the conns. */
void finish_all(struct tide_loop *loop, struct tide_server *sv);
/* A client sends "ping" to the echo server s at host:port, whose connection
 * number before it is: both ends log a whole exchange. */
void echo_roundtrip(struct tide_loop *loop, const char *host, int port, struct srv *s, size_t before);
/* A datagram endpoint of dgram_ops for c, made. */
struct conn *endpoint(struct tide_loop *loop, const struct tide_datagram_opts *o, struct conn *c);
/* The same with ops, a protocol made of the logging callbacks. */
struct conn *endpoint_ops(struct tide_loop *loop, const struct tide_datagram_opts *o,
			  const struct tide_protocol_ops *ops, struct conn *c);
/* The "socket" extra info of a transport. */
int transport_fd(struct tide_transport *t);
/* Sets SO_SNDBUF or SO_RCVBUF on t's socket. */
void set_sockbuf(struct tide_transport *t, int opt, int sz);
/* SO_SNDBUF 4 KiB. */
void small_sndbuf(struct tide_transport *t);

/* ------------------------------------------ streams, in a main task -- */

/* The loop of the running stream test (run_main). */
extern struct tide_loop *g_loop;
/* The reader the helper tasks below read from. */
extern struct tide_stream_reader *g_r;

struct tide_future *spawn(tide_task_cb fn, void *arg);
/* Spawns fn(arg) and lets it run up to where it waits. */
struct tide_future *spawn_waiting(tide_task_cb fn, void *arg);
/* Awaits a child task and drops the reference: its outcome. */
int64_t join(struct tide_future *t);
/* Runs fn(arg) as the main task of a fresh loop; it must return 0, and nothing may leak. */
void run_main(tide_task_cb fn, void *arg);

/* A test that is run_main(fn, NULL). */
#define MAIN_TEST(name, fn)         \
	START_TEST(name)            \
	{                           \
		run_main(fn, NULL); \
	}                           \
	END_TEST

/* Asserts that a read returned exactly the bytes of want. */
#define ck_read_eq(n, buf, want)                                                        \
	do {                                                                            \
		ssize_t n_ = (n);                                                       \
		const char *w_ = (want);                                                \
		ck_assert_msg(n_ == (ssize_t)strlen(w_), "read returned %zd (%s), expected %zu (\"%s\")", \
			      n_, n_ < 0 ? tide_strerror((int)n_) : "bytes", strlen(w_), w_);      \
		ck_assert_msg(memcmp((buf), w_, strlen(w_)) == 0, "read \"%.*s\", expected \"%s\"", \
			      (int)n_, (const char *)(buf), w_);                        \
	} while (0)

/* A read big enough to be lent the next receive (the reader's first rhint). */
#define LEND 4096

/* readline(g_r) into arg (64 bytes). */
int64_t readline_task(void *arg);
/* read(g_r, LEND) into arg. */
int64_t read_lend_task(void *arg);
/* A string of n bytes (n <= 2 * LEND): 'a' to 'z' over and over. */
const char *pattern(size_t n);

/* The hidden stream hooks (net-fixture-stream.c: programs linked with the library's objects). */
/* A hook pair (no transport) on g_loop. */
void feed_pair(struct tide_stream_reader **r, struct tide_stream_writer **w);
void feed(struct tide_stream_reader *r, const char *s);
/* Bytes that landed straight in a waiting read's buffer. */
uint64_t direct_bytes(struct tide_stream_reader *r);
/* Bytes a waiting peek took in their ring buffer. */
uint64_t kept_bytes(struct tide_stream_reader *r);

/* --------------------------------------------- counting allocator -- */

/* The library allocates through the counting allocator of helpers.h:
 * false (skipped) when a loop exists already, as without Check's fork mode. */
bool counting_allocator(const char *test);

/* ------------------------------------------------------------ main -- */

/*
 * The suite name of a program: the tests each run on every backend
 * configuration, the fed ones (no I/O) once in a TCase "fed"; timeout is
 * Check's per-test timeout in seconds. TIDE_NET_ONLY=name[,name...] runs
 * only those tests (for debugging one case). tt_run's exit status.
 */
int net_main(const char *name, double timeout, const TTest *const *tests, size_t ntests, const TTest *const *fed,
	     size_t nfed);
#define NET_COUNT(a) (sizeof(a) / sizeof((a)[0]))

#endif
