/* SPDX-License-Identifier: MIT */
/*
 * tls.c: TLS transports over OpenSSL 3, in asyncio's sslproto shape: the
 * app's transport (kind TIDE__T_TLS, the first member of struct tls) is a
 * transport over a plain stream transport, whose protocol is this file's
 * raw_ops. The public transport calls test the kind at their top and come
 * here; the stream under it is driven through the tide__t_* calls, its
 * public calls refusing it (TIDE_ESSL_CLOSED).
 *
 * OpenSSL reads and writes through a BIO of ours, not a pair of memory
 * BIOs: its read hands OpenSSL the ciphertext the raw transport delivers,
 * where it lies (a multishot receive's ring buffer, the readiness paths'
 * receive buffer), and its write appends a record to the raw transport's
 * write buffer (or sends it at once on the readiness paths). A memory BIO
 * would cost a copy more each way, and no syscall is made per record:
 * ciphertext comes and goes in whatever pieces the transport moves.
 * Plaintext is read (SSL_read_ex) straight into a buffered protocol's
 * get_buffer (a stream's buffer, or the buffer a waiting read lent), or
 * into the loop's one record-sized buffer for data_received.
 *
 * The hard parts:
 * - Reading paused (the app's pause_reading): OpenSSL takes one record at
 *   a time (without read-ahead it asks for a header, then the body, and
 *   keeps a partial record itself), so what it has not taken of a
 *   delivery when the app pauses is kept (pend, from the pools), the raw
 *   transport pauses too, and resume_reading hands over OpenSSL's pending
 *   record, then pend, before the raw transport reads on.
 * - The end. connection_lost comes once, after the raw transport's (the
 *   socket is closed by then), with the TLS error if any; a handshake
 *   that fails never reaches the protocol (ready() hears of it). close
 *   sends close_notify and reads on, discarding, until the peer's comes
 *   (or its EOF, or shutdown_timeout), then closes the raw transport.
 */
#include "net/net.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#ifdef TIDE_HAVE_OPENSSL

#include <arpa/inet.h>
#include <pthread.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* asyncio's ssl_handshake_timeout and ssl_shutdown_timeout. */
#define DEFAULT_HANDSHAKE_S 60.0
#define DEFAULT_SHUTDOWN_S 30.0

/* A copy of a call's struct tide_tls_opts; a server shares it among its
 * connections, each of which holds a reference. */
struct tide__tls_conf {
	unsigned refs;
	bool server;
	bool host_ip;            /* host is an IP address: verified, never sent as SNI (RFC 6066) */
	SSL_CTX *ctx;            /* referenced (SSL_CTX_up_ref) */
	char *host;              /* a client's SNI name and the name verified; NULL: none */
	unsigned char *alpn;     /* ALPN names in wire format (a length byte before each), or NULL */
	size_t alpn_len;
	uint64_t hs_ns;          /* handshake_timeout */
	uint64_t sd_ns;          /* shutdown_timeout */
};

struct tls {
	struct tide_transport t;     /* the app's transport: kind TIDE__T_TLS */
	struct tide_transport *raw;  /* the stream under it (a reference), NULL once lost */
	SSL *ssl;                    /* freed once connection_lost returned */
	struct tide__tls_conf *conf; /* a reference, until the end */
	/*
	 * The ciphertext the BIO hands OpenSSL: during a delivery the raw
	 * transport's own bytes, else what pend keeps (from pend_off). Only
	 * bytes OpenSSL has not taken when reading stops are copied there.
	 */
	const char *in_p;
	size_t in_len;
	struct tide__wbuf pend;
	size_t pend_off;
	struct tide__handle *timer;  /* the handshake's, or the shutdown's (close, a failure) */
	tide__tls_ready_cb ready;    /* until the handshake is over (see net.h) */
	void *ready_arg;
	int werr;                    /* why the raw transport refused a record OpenSSL wrote */
	bool hs_done;                /* the handshake is over (and ready ran) */
	bool made;                   /* the app's connection_made ran */
	bool in_eof;                 /* the raw transport's EOF: the BIO says EOF once in_len is 0 */
	bool peer_closed;            /* the peer's close_notify came */
	bool sd_sent;                /* our close_notify is written (write_eof, close) */
	bool raw_lost;               /* the raw transport's connection_lost ran */
	bool failed;                 /* a TLS error, a refusal or an abort: nothing more is read */
	bool counted;                /* counted in the loop's net_closing */
	bool pump_queued;            /* a pump is in the ready queue */
	bool app_wpaused;            /* the app's pause_writing was called, resume_writing not yet */
};

static struct tls *of(const struct tide_transport *t)
{
	return tide__container_of(t, struct tls, t);
}

/* ------------------------------------------------------------- globals -- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static BIO_METHOD *g_meth;
static int g_idx = -1;
/* Marks a caller's context whose ALPN callback tide has set, so that it is
 * set once: servers on several loop threads may share one context, and a
 * second set would write what a handshake on another thread reads. */
static int g_ctx_idx = -1;
static pthread_mutex_t g_ctx_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Empties this thread's OpenSSL error queue, before an SSL call whose
 * SSL_get_error must see only its own errors and after an error was read.
 * Clearing costs about 800 instructions even when the queue is empty (it
 * resets all 16 slots), paid several times per record; peeking first is
 * a tenth of that, and SSL_get_error itself tells errors by that peek.
 */
static inline void err_clear(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

static int bio_read(BIO *b, char *buf, size_t n, size_t *got);
static int bio_write(BIO *b, const char *data, size_t n, size_t *done);
static long bio_ctrl(BIO *b, int cmd, long num, void *ptr);

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void init_once(void)
{
	BIO_METHOD *m;

	g_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	g_ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tide transport");
	if (m && BIO_meth_set_read_ex(m, bio_read) && BIO_meth_set_write_ex(m, bio_write) &&
	    BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
		g_meth = m;
	else
		BIO_meth_free(m);
}

static int tls_init(void)
{
	pthread_once(&g_once, init_once);
	return g_meth && g_idx >= 0 && g_ctx_idx >= 0 ? 0 : -ENOMEM;
}

/* ---------------------------------------------------------------- BIO -- */

/* OpenSSL reads ciphertext: what the raw transport delivered, no copy before. */
static int bio_read(BIO *b, char *buf, size_t n, size_t *got)
{
	struct tls *s = BIO_get_data(b);
	size_t k = n < s->in_len ? n : s->in_len;

	BIO_clear_retry_flags(b);
	*got = k;
	if (k) {
		memcpy(buf, s->in_p, k);
		s->in_p += k;
		s->in_len -= k;
		return 1;
	}
	/* Nothing: more may come (retry), or the peer's EOF (no retry). */
	if (!s->in_eof)
		BIO_set_retry_read(b);
	return 0;
}

/* OpenSSL writes a record: appended to the raw transport's write buffer. */
static int bio_write(BIO *b, const char *data, size_t n, size_t *done)
{
	struct tls *s = BIO_get_data(b);
	struct iovec iov = { .iov_base = (void *)data, .iov_len = n };
	int err;

	BIO_clear_retry_flags(b);
	*done = 0;
	if (s->raw_lost) {
		s->werr = TIDE_ECLOSED;
		return 0;
	}
	if ((err = tide__t_writev(s->raw, &iov, 1)) < 0) {
		s->werr = err;
		return 0;
	}
	*done = n;
	return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls *s = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* the raw transport flushes on its own */
	case BIO_CTRL_PENDING:
		return (long)s->in_len;
	case BIO_CTRL_EOF:
		return s->in_eof && !s->in_len;
	default:
		return 0; /* BIO_CTRL_WPENDING and the rest (no kTLS here) */
	}
}

/*
 * OpenSSL hands the BIO one record at a time: a server's first flight is
 * four writes, its session tickets two more, a response and the
 * close_notify after it one each. Each call into OpenSSL corks the raw
 * transport, so what the call wrote leaves in one send when it returns (a
 * handshake: two sends a connection, not five). NULL: nothing to undo (the
 * raw transport is gone, or an outer call corked it).
 */
static struct tide_transport *hold_writes(struct tls *s)
{
	if (s->raw_lost || !tide__t_cork(s->raw))
		return NULL;
	/* Held: a synchronous end (ENOMEM in call_soon) must not free it. */
	return tide_transport_ref(s->raw);
}

static void send_held(struct tide_transport *raw)
{
	if (!raw)
		return;
	tide__t_uncork(raw);
	tide_transport_unref(raw);
}

/* -------------------------------------------------------------- errors -- */

/*
 * OpenSSL's error as tide's: a failed verification is
 * TIDE_ETLS_VERIFY(X509_V_ERR_*), an SSL-library error TIDE_ETLS_REASON
 * of its reason (the first in the queue: the cause, before what it led
 * to), a refused write the raw transport's error. The thread's error
 * queue is left empty.
 */
static int map_error(struct tls *s, int e)
{
	unsigned long code;
	int reason = 0, mismatch = 0;

	while ((code = ERR_get_error()) != 0) {
		if (!reason && ERR_GET_LIB(code) == ERR_LIB_SSL)
			reason = ERR_GET_REASON(code);
		/* A key that is not the certificate's says so only in the
		 * X509 library's words: it is the SSL library's reason. */
		if (ERR_GET_LIB(code) == ERR_LIB_X509 &&
		    (ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH || ERR_GET_REASON(code) == X509_R_KEY_TYPE_MISMATCH))
			mismatch = 1;
	}
	if (!reason && mismatch)
		reason = SSL_R_PRIVATE_KEY_MISMATCH;
	if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && s && s->ssl) {
		long v = SSL_get_verify_result(s->ssl);

		if (v != X509_V_OK)
			return TIDE_ETLS_VERIFY((int)v);
	}
	if (reason)
		return TIDE_ETLS_REASON(reason);
	if (e == SSL_ERROR_SYSCALL && s && s->werr)
		return s->werr;
	if (e == SSL_ERROR_ZERO_RETURN)
		return -ECONNRESET; /* close_notify in the middle of a handshake */
	return TIDE_ETLS;
}

/* For the context helpers: the first SSL-library reason of the queue. */
static int queue_error(void)
{
	return map_error(NULL, SSL_ERROR_SSL);
}

/* --------------------------------------------------------------- conf -- */

static bool is_ip(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* A timeout option: 0 is the default, else 0 < s <= 1e10 seconds. */
static int timeout_ns(double s, double dflt, uint64_t *ns)
{
	if (!(s >= 0) || !isfinite(s))
		return -EINVAL; /* negative, NaN, infinite */
	return tide__seconds_to_ns(s == 0 ? dflt : s, ns);
}

/*
 * The server's ALPN selection (OpenSSL has no per-connection callback):
 * the connection's own list, through the SSL object; the first of the
 * server's names that the client offers, else the handshake fails with
 * no_application_protocol. An SSL object that is not tide's is not
 * answered.
 */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	struct tls *s = g_idx >= 0 ? SSL_get_ex_data(ssl, g_idx) : NULL;
	const unsigned char *p, *q;

	(void)arg;
	if (!s || !s->conf || !s->conf->alpn)
		return SSL_TLSEXT_ERR_NOACK;
	for (p = s->conf->alpn; p < s->conf->alpn + s->conf->alpn_len; p += 1 + p[0])
		for (q = in; q + 1 <= in + inlen && q + 1 + q[0] <= in + inlen; q += 1 + q[0])
			if (q[0] == p[0] && memcmp(q + 1, p + 1, p[0]) == 0) {
				*out = q + 1;
				*outlen = q[0];
				return SSL_TLSEXT_ERR_OK;
			}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

void tide__tls_conf_unref(struct tide__tls_conf *c)
{
	if (!c || --c->refs)
		return;
	SSL_CTX_free(c->ctx);
	tide__free(c->host);
	tide__free(c->alpn);
	tide__free(c);
}

int tide__tls_conf_new(const struct tide_tls_opts *o, const char *host, bool server, struct tide__tls_conf **out)
{
	SSL_CTX *ctx = TIDE__OPT(o, ctx, NULL);
	const char *const *alpn = TIDE__OPT(o, alpn, NULL);
	const char *name = server ? NULL : TIDE__OPT(o, server_hostname, NULL);
	struct tide__tls_conf *c;
	uint64_t hs, sd;
	size_t wire = 0, i;
	int err;

	if (!o || TIDE__OPTS_BAD(o) || !ctx)
		return -EINVAL;
	if ((err = timeout_ns(TIDE__OPT(o, handshake_timeout, 0.0), DEFAULT_HANDSHAKE_S, &hs)) ||
	    (err = timeout_ns(TIDE__OPT(o, shutdown_timeout, 0.0), DEFAULT_SHUTDOWN_S, &sd)))
		return err;
	for (i = 0; alpn && alpn[i]; i++) {
		size_t n = strlen(alpn[i]);

		if (n < 1 || n > 255)
			return -EINVAL;
		wire += 1 + n;
	}
	if (wire > 65535)
		return -EINVAL; /* more than the extension can carry */
	if (!name)
		name = server ? NULL : host;
	if (name && !*name)
		return -EINVAL;
	/* A client that verifies its peer must know whom it expects. */
	if (!server && !name && (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER))
		return -EINVAL;
	if ((err = tls_init()))
		return err;
	if (!(c = tide__calloc(1, sizeof(*c))))
		return -ENOMEM;
	c->refs = 1;
	c->server = server;
	c->hs_ns = hs;
	c->sd_ns = sd;
	if (name) {
		if (!(c->host = tide__malloc(strlen(name) + 1)))
			goto nomem;
		strcpy(c->host, name);
		c->host_ip = is_ip(name);
	}
	if (wire) {
		unsigned char *p;

		if (!(p = c->alpn = tide__malloc(wire)))
			goto nomem;
		for (i = 0; alpn[i]; i++) {
			size_t n = strlen(alpn[i]);

			*p++ = (unsigned char)n;
			memcpy(p, alpn[i], n);
			p += n;
		}
		c->alpn_len = wire;
	}
	if (!SSL_CTX_up_ref(ctx))
		goto nomem;
	c->ctx = ctx;
	/* The one thing set on the caller's context (tide.h says so), once. */
	if (server && wire) {
		int ok = 1;

		pthread_mutex_lock(&g_ctx_lock);
		if (!SSL_CTX_get_ex_data(ctx, g_ctx_idx)) {
			SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
			ok = SSL_CTX_set_ex_data(ctx, g_ctx_idx, ctx);
		}
		pthread_mutex_unlock(&g_ctx_lock);
		if (!ok)
			goto nomem;
	}
	*out = c;
	return 0;
nomem:
	tide__tls_conf_unref(c);
	return -ENOMEM;
}

/* --------------------------------------------------------- the engine -- */

static void run(struct tls *s);
static void tls_fail(struct tls *s, int err);

/* The TLS transport starts closing: the loop's shutdown waits for its end. */
static void set_closing(struct tls *s)
{
	if (s->t.closing)
		return;
	s->t.closing = 1;
	if (!s->raw_lost) {
		s->counted = true;
		tloop(&s->t)->net_closing++;
	}
}

static void timer_fired(void *arg)
{
	struct tls *s = arg;

	s->timer = NULL;
	if (s->raw_lost)
		return;
	/* The handshake's: the peer stopped in the middle (asyncio's
	 * TimeoutError); the shutdown's: no close_notify came in time, or
	 * the alert of a failure could not be flushed. */
	if (!s->t.error && !s->t.aborted)
		s->t.error = -ETIMEDOUT;
	s->failed = true;
	set_closing(s);
	tide__t_fatal(s->raw, 0);
}

static int arm_timer(struct tls *s, uint64_t ns)
{
	struct tide_loop *loop = tloop(&s->t);

	if (s->timer)
		return 0;
	s->timer = tide__call_at_ns(loop, tide__clock_ns() + ns, timer_fired, s);
	return s->timer ? 0 : -ENOMEM;
}

/* The raw transport closes: what is buffered (records, an alert) is
 * flushed first, for shutdown_timeout at most. */
static void close_raw(struct tls *s)
{
	if (s->raw_lost || s->raw->closing)
		return;
	if (arm_timer(s, s->conf->sd_ns) < 0) {
		tide__t_fatal(s->raw, 0);
		return;
	}
	tide__t_close(s->raw);
}

/* A TLS error (or the peer's close_notify mid-handshake, a refusal):
 * nothing more is read; the alert OpenSSL wrote goes out, then the end. */
static void tls_fail(struct tls *s, int err)
{
	err_clear();
	if (s->failed)
		return;
	s->failed = true;
	if (!s->t.error && !s->t.aborted)
		s->t.error = err;
	set_closing(s);
	close_raw(s);
}

/*
 * The raw transport reads while the TLS layer wants ciphertext: for the
 * handshake, while the app reads (and nothing is kept in pend), and while
 * a close waits for the peer's close_notify.
 */
static void sync_reading(struct tls *s)
{
	bool want;

	if (s->raw_lost || s->raw->closing)
		return;
	if (s->failed || s->peer_closed || s->pend.len > s->pend_off)
		want = false;
	else if (!s->hs_done || s->t.closing)
		want = true;
	else
		want = s->t.reading;
	if (want && !s->raw->reading)
		tide__t_resume_reading(s->raw);
	else if (!want && s->raw->reading)
		tide__t_pause_reading(s->raw);
}

/* The peer's close_notify: asyncio's eof_received. */
static void peer_closed(struct tls *s)
{
	int keep = 0;

	err_clear();
	s->peer_closed = true;
	if (s->t.closing) {
		/* Our close waited for it. */
		close_raw(s);
		return;
	}
	if (!s->made)
		return;
	s->t.eof_done = 1;
	if (PROTO_CB(&s->t, eof_received))
		keep = PROTO_CB(&s->t, eof_received)(&s->t, s->t.proto);
	/* keep: half-closed, the app may still write (asyncio's rule). */
	if (!keep)
		tide__tls_close(&s->t);
}

/* The plaintext buffer of a protocol that is not a buffered one. */
static char *plain_buf(struct tide__net *net, bool *own)
{
	*own = false;
	if (!net->tls_buf_busy) {
		if (!net->tls_buf && !(net->tls_buf = tide__malloc(TIDE__TLS_RECORD)))
			return NULL;
		net->tls_buf_busy = true;
		return net->tls_buf;
	}
	/* A delivery inside another's (never seen; kept correct all the same). */
	*own = true;
	return tide__malloc(TIDE__TLS_RECORD);
}

static void plain_done(struct tide__net *net, char *b, bool own)
{
	if (own)
		tide__free(b);
	else if (b)
		net->tls_buf_busy = false;
}

/* Decrypts what there is for the app, record by record, while it reads. */
static void read_records(struct tls *s)
{
	struct tide__net *net = tloop(&s->t)->net;

	for (;;) {
		bool discard = s->t.closing, own = false;
		bool buffered = !discard && PROTO_CB(&s->t, get_buffer);
		void *b = NULL;
		size_t blen = 0, n = 0;
		int e, ok;

		if (s->failed || s->raw_lost || s->peer_closed)
			return;
		if (!discard && !s->t.reading)
			return;
		/* Nothing to decrypt: OpenSSL would only ask the BIO for more. */
		if (!s->in_len && !s->in_eof && !SSL_has_pending(s->ssl))
			return;
		if (buffered) {
			int err = PROTO_CB(&s->t, get_buffer)(&s->t, TIDE__TLS_RECORD, &b, &blen, s->t.proto);

			if (err < 0 || !b || !blen) {
				tls_fail(s, err < 0 ? err : -ENOBUFS);
				return;
			}
		} else if (!(b = plain_buf(net, &own))) {
			tls_fail(s, -ENOMEM);
			return;
		} else {
			blen = TIDE__TLS_RECORD;
		}
		err_clear();
		ok = SSL_read_ex(s->ssl, b, blen, &n);
		if (ok && !discard) {
			/* The app's callback may pause, close or abort: the
			 * loop's tests see it next. */
			if (buffered) {
				if (PROTO_CB(&s->t, buffer_updated))
					PROTO_CB(&s->t, buffer_updated)(&s->t, n, s->t.proto);
			} else if (PROTO_CB(&s->t, data_received)) {
				PROTO_CB(&s->t, data_received)(&s->t, b, n, s->t.proto);
			}
		}
		plain_done(net, buffered ? NULL : b, own);
		if (ok)
			continue;
		e = SSL_get_error(s->ssl, 0);
		if (e == SSL_ERROR_WANT_READ) {
			err_clear();
			return;
		}
		if (e == SSL_ERROR_ZERO_RETURN) {
			peer_closed(s);
			return;
		}
		if (discard && s->sd_sent && s->in_eof && !s->in_len) {
			/* Our close_notify went, and the peer closed the
			 * connection without its own: as good as one. */
			err_clear();
			s->peer_closed = true;
			close_raw(s);
			return;
		}
		tls_fail(s, map_error(s, e));
		return;
	}
}

/* The handshake is over: ready (a future, a server's factory), then connection_made. */
static void hs_complete(struct tls *s)
{
	int err = 0;

	s->hs_done = true;
	if (s->timer) {
		tide__timer_cancel(tloop(&s->t), s->timer);
		s->timer = NULL;
	}
	if (s->ready) {
		tide__tls_ready_cb ready = s->ready;

		s->ready = NULL;
		err = ready(&s->t, 0, s->ready_arg);
	}
	if (err < 0) {
		/* Refused (a factory's error, a cancelled connect): closed
		 * before the protocol knew of it. */
		s->failed = true;
		set_closing(s);
		tide__t_fatal(s->raw, 0);
		return;
	}
	if (s->t.closing)
		return;
	s->made = true;
	/* A stream upgraded by start_tls whose writer waited for a drain. */
	s->app_wpaused = s->raw->write_paused;
	if (PROTO_CB(&s->t, connection_made))
		PROTO_CB(&s->t, connection_made)(&s->t, s->t.proto);
}

static void handshake(struct tls *s)
{
	int r, e;

	err_clear();
	r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		err_clear();
		hs_complete(s);
		return;
	}
	e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		err_clear();
		return;
	}
	tls_fail(s, map_error(s, e));
}

/* OpenSSL works on the ciphertext at in_p: the handshake, then records. */
static void run(struct tls *s)
{
	struct tide_transport *held;

	tide_transport_ref(&s->t);
	held = hold_writes(s);
	if (!s->hs_done && !s->failed && !s->raw_lost)
		handshake(s);
	if (s->hs_done && !s->t.lost)
		read_records(s);
	send_held(held);
	tide_transport_unref(&s->t);
}

static int pend_append(struct tls *s, const void *data, size_t n)
{
	struct tide__net *net = tloop(&s->t)->net;

	/* Consumed bytes in front go first: pend never grows past what waits. */
	if (s->pend_off && s->pend_off == s->pend.len) {
		s->pend.len = s->pend_off = 0;
	} else if (s->pend_off >= s->pend.len / 2 && s->pend_off) {
		memmove(s->pend.p, s->pend.p + s->pend_off, s->pend.len - s->pend_off);
		s->pend.len -= s->pend_off;
		s->pend_off = 0;
	}
	if (tide__wbuf_reserve(net, &s->pend, n) < 0)
		return -ENOMEM;
	memcpy(s->pend.p + s->pend.len, data, n);
	s->pend.len += n;
	return 0;
}

/* Runs OpenSSL on what pend keeps; what it has taken leaves pend. */
static void run_pend(struct tls *s)
{
	size_t have = s->pend.len - s->pend_off;

	s->in_p = s->pend.p + s->pend_off;
	s->in_len = have;
	run(s);
	if (!s->raw_lost)
		s->pend_off += have - s->in_len;
	s->in_p = NULL;
	s->in_len = 0;
	if (s->raw_lost || s->failed || s->peer_closed || s->pend_off == s->pend.len) {
		tide__wbuf_reset(tloop(&s->t)->net, &s->pend);
		s->pend_off = 0;
	}
	sync_reading(s);
}

static void pump_cb(void *arg)
{
	struct tls *s = arg;

	s->pump_queued = false;
	if (!s->raw_lost) {
		if (s->pend.len > s->pend_off)
			run_pend(s);
		else {
			run(s);
			sync_reading(s);
		}
	}
	tide_transport_unref(&s->t);
}

/*
 * A pump runs soon (resume_reading, close): OpenSSL's pending record and
 * pend first. An internal call: a close right before tide_loop_close
 * still reads the peer's close_notify (and the reference comes back).
 */
static void queue_pump(struct tls *s)
{
	if (s->pump_queued || s->raw_lost)
		return;
	s->pump_queued = true;
	tide_transport_ref(&s->t);
	if (tide__call_soon_internal(tloop(&s->t), pump_cb, s) < 0) {
		s->pump_queued = false;
		tide_transport_unref(&s->t);
		tls_fail(s, -ENOMEM);
	}
}

/* -------------------------------------------------- the raw protocol -- */

static void raw_made(struct tide_transport *raw, void *proto)
{
	struct tls *s = proto;

	(void)raw;
	run(s); /* a client's ClientHello */
}

static void raw_data(struct tide_transport *raw, const void *data, size_t n, void *proto)
{
	struct tls *s = proto;

	(void)raw;
	if (s->failed || s->peer_closed)
		return; /* after an error or close_notify, nothing counts */
	if (s->pend.len > s->pend_off) {
		/* Behind what was kept (a resume raced these bytes). */
		if (pend_append(s, data, n) < 0) {
			tls_fail(s, -ENOMEM);
			return;
		}
		run_pend(s);
		return;
	}
	s->in_p = data;
	s->in_len = n;
	run(s);
	/* The app paused reading: OpenSSL did not take the rest; it waits in
	 * pend (the only copy of ciphertext there is), the raw transport
	 * pauses. */
	if (s->in_len && !s->raw_lost && !s->failed && !s->peer_closed && pend_append(s, s->in_p, s->in_len) < 0)
		tls_fail(s, -ENOMEM);
	s->in_p = NULL;
	s->in_len = 0;
	sync_reading(s);
}

static int raw_eof(struct tide_transport *raw, void *proto)
{
	struct tls *s = proto;

	(void)raw;
	s->in_eof = true;
	if (s->pend.len > s->pend_off)
		run_pend(s);
	else
		run(s);
	/* The raw transport stays open for our writes: the TLS layer closes it. */
	return 1;
}

static void raw_pause_writing(struct tide_transport *raw, void *proto)
{
	struct tls *s = proto;

	(void)raw;
	if (s->made && !s->t.lost && !s->app_wpaused) {
		s->app_wpaused = true;
		if (PROTO_CB(&s->t, pause_writing))
			PROTO_CB(&s->t, pause_writing)(&s->t, s->t.proto);
	}
}

static void raw_resume_writing(struct tide_transport *raw, void *proto)
{
	struct tls *s = proto;

	(void)raw;
	if (s->made && !s->t.lost && s->app_wpaused) {
		s->app_wpaused = false;
		if (PROTO_CB(&s->t, resume_writing))
			PROTO_CB(&s->t, resume_writing)(&s->t, s->t.proto);
	}
}

/* The socket is closed: the end of the TLS transport too. */
static void raw_lost(struct tide_transport *raw, int err, void *proto)
{
	struct tls *s = proto;
	struct tide_loop *loop = tloop(&s->t);

	s->raw_lost = true;
	if (s->timer) {
		tide__timer_cancel(loop, s->timer);
		s->timer = NULL;
	}
	if (!s->t.error && !s->t.aborted && err)
		s->t.error = err;
	set_closing(s);
	s->t.lost = 1;
	if (!s->made) {
		if (s->ready) {
			tide__tls_ready_cb ready = s->ready;

			s->ready = NULL;
			ready(&s->t, s->t.error ? s->t.error : -ECONNABORTED, s->ready_arg);
		}
	} else if (PROTO_CB(&s->t, connection_lost)) {
		PROTO_CB(&s->t, connection_lost)(&s->t, s->t.error, s->t.proto);
	}
	if (s->t.gone)
		s->t.gone(&s->t, s->t.server);
	if (s->counted)
		loop->net_closing--;
	s->counted = false;
	err_clear();
	SSL_free(s->ssl);
	s->ssl = NULL;
	tide__wbuf_reset(loop->net, &s->pend);
	s->pend_off = 0;
	tide__tls_conf_unref(s->conf);
	s->conf = NULL;
	s->raw = NULL;
	tide_transport_unref(raw);
	tide_transport_unref(&s->t); /* the open connection's */
}

static const struct tide_protocol_ops raw_ops = {
	.size = sizeof(struct tide_protocol_ops),
	.connection_made = raw_made,
	.data_received = raw_data,
	.eof_received = raw_eof,
	.connection_lost = raw_lost,
	.pause_writing = raw_pause_writing,
	.resume_writing = raw_resume_writing,
};

/* ------------------------------------------------------------ wrapping -- */

int tide__tls_wrap(struct tide_transport *raw, struct tide__tls_conf *conf, const struct tide_protocol_ops *ops,
		   void *proto, tide__tls_ready_cb ready, void *arg, struct tide_transport **out)
{
	struct tide_loop *loop = tloop(raw);
	struct tls *s;
	BIO *bio;
	int ok = 1, err;

	if ((err = tls_init()))
		return err;
	if (!(s = tide__calloc(1, sizeof(*s))))
		return -ENOMEM;
	tide__op_init(loop, TIDE_OP_POLL, &s->t.rop); /* its loop is the transport's (tloop) */
	s->t.refs = 1;
	s->t.fd = -1;
	s->t.kind = TIDE__T_TLS;
	s->t.reading = 1;
	s->t.high = raw->high;
	s->t.low = raw->low;
	tide__transport_bind(&s->t, ops, proto);
	s->ready = ready;
	s->ready_arg = arg;
	err_clear();
	if (!(s->ssl = SSL_new(conf->ctx)) || !(bio = BIO_new(g_meth)))
		goto fail;
	BIO_set_data(bio, s);
	SSL_set_bio(s->ssl, bio, bio);
	if (!SSL_set_ex_data(s->ssl, g_idx, s))
		goto fail;
	/* Renegotiation is refused, as asyncio's (tide.h). */
	SSL_set_options(s->ssl, SSL_OP_NO_RENEGOTIATION);
	if (conf->server) {
		SSL_set_accept_state(s->ssl);
	} else {
		SSL_set_connect_state(s->ssl);
		if (conf->host && conf->host_ip)
			ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), conf->host);
		else if (conf->host)
			ok = SSL_set_tlsext_host_name(s->ssl, conf->host) && SSL_set1_host(s->ssl, conf->host);
		/* (SSL_set_alpn_protos says 0 for success.) */
		if (ok && conf->alpn)
			ok = SSL_set_alpn_protos(s->ssl, conf->alpn, (unsigned)conf->alpn_len) == 0;
		if (!ok)
			goto fail;
	}
	if (!(s->timer = tide__call_at_ns(loop, tide__clock_ns() + conf->hs_ns, timer_fired, s)))
		goto fail;
	conf->refs++;
	s->conf = conf;
	s->raw = tide_transport_ref(raw);
	/* The raw transport is the TLS layer's from here on. */
	raw->ops = &raw_ops;
	raw->proto = s;
	raw->keep = NULL;
	raw->tls_raw = 1;
	*out = &s->t;
	return 0;
fail:
	err = ERR_peek_error() ? queue_error() : -ENOMEM;
	SSL_free(s->ssl);
	tide__free(s);
	return err;
}

void tide__tls_cancel(struct tide_transport *t, int err)
{
	struct tls *s = of(t);

	if (s->hs_done || s->raw_lost || s->failed)
		return;
	if (!s->t.error)
		s->t.error = err;
	s->failed = true;
	set_closing(s);
	tide__t_fatal(s->raw, 0);
}

struct tide_transport *tide__tls_raw(const struct tide_transport *t)
{
	const struct tls *s = of(t);

	return s->raw_lost ? NULL : s->raw;
}

void tide__tls_free(struct tide_transport *t)
{
	struct tls *s = of(t);

	/* Freed before it ever started (a failed create call). */
	SSL_free(s->ssl);
	tide__tls_conf_unref(s->conf);
	if (s->raw)
		tide_transport_unref(s->raw);
	tide__free(s);
}

/* ------------------------------------------------- the public calls -- */

int tide__tls_writev(struct tide_transport *t, const struct iovec *iov, int iovcnt)
{
	struct tls *s = of(t);
	struct tide_transport *held;
	size_t total = 0;
	int i, rc = 0;

	if (t->closing || t->lost || s->failed)
		return TIDE_ECLOSED;
	if (!s->hs_done)
		return -ENOTCONN;
	if (tide__loop_forked(tloop(t)))
		return TIDE_EFORKED;
	if (s->sd_sent)
		return -EPIPE;
	for (i = 0; i < iovcnt; i++) {
		if ((!iov[i].iov_base && iov[i].iov_len) || iov[i].iov_len > (size_t)SSIZE_MAX - total)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	held = hold_writes(s);
	for (i = 0; i < iovcnt; i++) {
		size_t w = 0;

		if (!iov[i].iov_len)
			continue;
		s->werr = 0;
		err_clear();
		if (SSL_write_ex(s->ssl, iov[i].iov_base, iov[i].iov_len, &w))
			continue;
		/* The raw transport is going (its error is connection_lost's),
		 * or OpenSSL failed: records may be half out, the stream cannot
		 * go on (asyncio: the error goes to connection_lost). */
		if (s->werr == TIDE_ECLOSED) {
			err_clear();
			rc = TIDE_ECLOSED;
		} else {
			tls_fail(s, map_error(s, SSL_get_error(s->ssl, 0)));
		}
		break;
	}
	send_held(held);
	return rc;
}

/* Our close_notify, in the send of the records before it if they still wait. */
static void send_shutdown(struct tls *s)
{
	struct tide_transport *held = hold_writes(s);

	err_clear();
	SSL_shutdown(s->ssl);
	err_clear();
	s->sd_sent = true;
	send_held(held);
}

int tide__tls_write_eof(struct tide_transport *t)
{
	struct tls *s = of(t);

	if (t->closing || t->lost || s->failed)
		return TIDE_ECLOSED;
	if (!s->hs_done)
		return -ENOTCONN;
	if (tide__loop_forked(tloop(t)))
		return TIDE_EFORKED;
	if (s->sd_sent)
		return 0;
	/* close_notify follows the records written before it in the raw
	 * transport's buffer: "once the buffer is flushed" by construction. */
	send_shutdown(s);
	t->write_shut = 1;
	return 0;
}

void tide__tls_close(struct tide_transport *t)
{
	struct tls *s = of(t);

	if (t->closing)
		return;
	set_closing(s);
	if (s->raw_lost)
		return;
	if (!s->hs_done || s->failed) {
		/* No close_notify before the handshake is over. */
		s->failed = true;
		tide__t_fatal(s->raw, 0);
		return;
	}
	if (!s->sd_sent && !tide__loop_forked(tloop(t)))
		send_shutdown(s);
	if (s->peer_closed || s->in_eof) {
		close_raw(s);
		return;
	}
	/* The peer's close_notify is awaited (read, the plaintext before it
	 * dropped), for shutdown_timeout at most. */
	if (arm_timer(s, s->conf->sd_ns) < 0) {
		tide__t_fatal(s->raw, 0);
		return;
	}
	sync_reading(s);
	queue_pump(s);
}

void tide__tls_abort(struct tide_transport *t)
{
	struct tls *s = of(t);

	set_closing(s);
	t->aborted = 1;
	s->failed = true;
	if (!s->raw_lost)
		tide__t_fatal(s->raw, 0);
}

int tide__tls_pause_reading(struct tide_transport *t)
{
	struct tls *s = of(t);

	if (t->closing || !t->reading)
		return 0;
	t->reading = 0;
	sync_reading(s);
	return 0;
}

int tide__tls_resume_reading(struct tide_transport *t)
{
	struct tls *s = of(t);

	if (t->closing || t->reading)
		return 0;
	t->reading = 1;
	/* OpenSSL's pending record and pend go first (a pump soon), then
	 * the raw transport reads on. */
	if (s->pend.len > s->pend_off || SSL_has_pending(s->ssl) || s->in_eof)
		queue_pump(s);
	else
		sync_reading(s);
	return 0;
}

int tide__tls_set_limits(struct tide_transport *t, size_t high, size_t low)
{
	struct tls *s = of(t);
	int err;

	/* The marks are the raw transport's (they count the records not
	 * yet sent, and its pause_writing is the app's). */
	if ((err = tide__t_set_limits(t, high, low)) < 0)
		return err;
	if (!s->raw_lost)
		return tide__t_set_limits(s->raw, high, low);
	return 0;
}

size_t tide__tls_wsize(const struct tide_transport *t)
{
	const struct tls *s = of(t);

	return s->raw_lost ? 0 : tide__t_wsize(s->raw);
}

static int copy_str(const char *str, void *buf, socklen_t *len)
{
	size_t n;

	if (!str)
		return -ENOENT;
	n = strlen(str) + 1;
	if (*len < n)
		return -ENOSPC;
	memcpy(buf, str, n);
	*len = (socklen_t)n;
	return 0;
}

static int copy_ptr(const void *p, void *buf, socklen_t *len)
{
	if (*len < sizeof(p))
		return -ENOSPC;
	memcpy(buf, &p, sizeof(p));
	*len = sizeof(p);
	return 0;
}

int tide__tls_get_extra_info(const struct tide_transport *t, const char *name, void *buf, socklen_t *len)
{
	const struct tls *s = of(t);
	static const char *const names[] = { "ssl_object", "sslcontext", "peercert", "cipher", "version",
					     "compression", "alpn_protocol", "server_hostname" };
	bool tls_name = false;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		tls_name |= !strcmp(name, names[i]);
	if (!tls_name)
		return s->raw_lost ? TIDE_ECLOSED : tide_transport_get_extra_info(s->raw, name, buf, len);
	if (!s->ssl)
		return TIDE_ECLOSED;
	if (!strcmp(name, "ssl_object"))
		return copy_ptr(s->ssl, buf, len);
	if (!strcmp(name, "sslcontext"))
		return copy_ptr(SSL_get_SSL_CTX(s->ssl), buf, len);
	if (!strcmp(name, "peercert")) {
		X509 *x = SSL_get0_peer_certificate(s->ssl);
		unsigned char *p = buf;
		int n;

		if (!x)
			return -ENOENT;
		if ((n = i2d_X509(x, NULL)) <= 0)
			return queue_error();
		if (*len < (socklen_t)n)
			return -ENOSPC;
		i2d_X509(x, &p);
		*len = (socklen_t)n;
		return 0;
	}
	if (!strcmp(name, "cipher"))
		return s->hs_done ? copy_str(SSL_get_cipher_name(s->ssl), buf, len) : -ENOENT;
	if (!strcmp(name, "version"))
		return copy_str(SSL_get_version(s->ssl), buf, len);
	if (!strcmp(name, "alpn_protocol")) {
		const unsigned char *p = NULL;
		unsigned n = 0;

		SSL_get0_alpn_selected(s->ssl, &p, &n);
		if (!n)
			return -ENOENT;
		if (*len < n + 1)
			return -ENOSPC;
		memcpy(buf, p, n);
		((char *)buf)[n] = '\0';
		*len = n + 1;
		return 0;
	}
	if (!strcmp(name, "server_hostname"))
		return copy_str(s->conf->server ? SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name) : s->conf->host,
				buf, len);
	return -ENOENT; /* compression: OpenSSL 3 does none (asyncio says None) */
}

/* -------------------------------------------------------- start_tls -- */

static int start_ready(struct tide_transport *tls, int err, void *arg)
{
	struct tide_future *f = arg;

	f->cancel_hook = NULL;
	tide__future_end_transport(f, err, tls);
	tide_future_unref(f);
	return 0;
}

static int start_cancel(struct tide_future *f, void *arg)
{
	(void)f;
	tide__tls_cancel(arg, -ECANCELED);
	return 1;
}

int tide__tls_start(struct tide_transport *t, int server_side, const struct tide_tls_opts *o,
		    const struct tide_protocol_ops *ops, void *proto, const void *early, size_t nearly,
		    struct tide_future **out)
{
	struct tide__tls_conf *conf;
	struct tide_transport *tls;
	struct tide_future *f;
	struct tls *s;
	int err;

	if (!t || !o || !out || (ops && ops->size < sizeof(size_t)))
		return -EINVAL;
	if (t->kind != TIDE__T_STREAM || t->pipe || t->tls_raw)
		return -EINVAL;
	if (t->closing || t->lost)
		return TIDE_ECLOSED;
	if ((err = tide__loop_refuses(tloop(t))))
		return err;
	if ((err = tide__tls_conf_new(o, NULL, server_side != 0, &conf)))
		return err;
	if ((err = tide_future_new(tloop(t), &f))) {
		tide__tls_conf_unref(conf);
		return err;
	}
	err = tide__tls_wrap(t, conf, ops, proto, start_ready, f, &tls);
	tide__tls_conf_unref(conf);
	if (err) {
		tide_future_unref(f);
		return err;
	}
	s = of(tls);
	if (nearly && pend_append(s, early, nearly) < 0)
		tls_fail(s, -ENOMEM);
	/* The future is the caller's and ready's (until it ran). */
	*out = tide_future_ref(f);
	f->cancel_hook = start_cancel;
	f->cancel_arg = tls;
	if (s->pend.len)
		run_pend(s);
	else {
		run(s);
		sync_reading(s);
	}
	return 0;
}

TIDE_EXTERN int tide_start_tls(struct tide_transport *t, int server_side, const struct tide_tls_opts *tls,
			       const struct tide_protocol_ops *ops, void *proto, struct tide_future **out)
{
	return tide__tls_start(t, server_side, tls, ops, proto, NULL, 0, out);
}

/* ----------------------------------------------------------- contexts -- */

TIDE_EXTERN int tide_tls_available(void)
{
	return 1;
}

TIDE_EXTERN int tide_tls_client_context_new(struct ssl_ctx_st **out)
{
	SSL_CTX *ctx;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	err_clear();
	if (!(ctx = SSL_CTX_new(TLS_client_method())))
		return ERR_peek_error() ? queue_error() : -ENOMEM;
	/* asyncio's create_default_context: the system's trust store, the
	 * peer and its name verified (the name per connection), TLS 1.2 at
	 * least. */
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) || !SSL_CTX_set_default_verify_paths(ctx)) {
		err = queue_error();
		SSL_CTX_free(ctx);
		return err;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	*out = ctx;
	return 0;
}

TIDE_EXTERN int tide_tls_server_context_new(const char *certfile, const char *keyfile, struct ssl_ctx_st **out)
{
	SSL_CTX *ctx;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!certfile)
		return -EINVAL;
	/* A file that cannot be read says why as errno does. */
	if (access(certfile, R_OK) < 0 || (keyfile && access(keyfile, R_OK) < 0))
		return -errno;
	err_clear();
	if (!(ctx = SSL_CTX_new(TLS_server_method())))
		return ERR_peek_error() ? queue_error() : -ENOMEM;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, certfile) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, keyfile ? keyfile : certfile, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		err = queue_error();
		SSL_CTX_free(ctx);
		return err;
	}
	*out = ctx;
	return 0;
}

#else /* !TIDE_HAVE_OPENSSL */

/*
 * Built without OpenSSL: every call that takes TLS options or starts TLS
 * says -ENOTSUP, and no TLS transport ever exists, so the dispatches in
 * transport.c never come here.
 */
struct tide__tls_conf {
	int unused;
};

int tide__tls_conf_new(const struct tide_tls_opts *o, const char *host, bool server, struct tide__tls_conf **out)
{
	(void)o;
	(void)host;
	(void)server;
	(void)out;
	return -ENOTSUP;
}

void tide__tls_conf_unref(struct tide__tls_conf *c)
{
	(void)c;
}

int tide__tls_wrap(struct tide_transport *raw, struct tide__tls_conf *conf, const struct tide_protocol_ops *ops,
		   void *proto, tide__tls_ready_cb ready, void *arg, struct tide_transport **out)
{
	(void)raw;
	(void)conf;
	(void)ops;
	(void)proto;
	(void)ready;
	(void)arg;
	(void)out;
	return -ENOTSUP;
}

void tide__tls_cancel(struct tide_transport *t, int err)
{
	(void)t;
	(void)err;
}

int tide__tls_start(struct tide_transport *t, int server_side, const struct tide_tls_opts *o,
		    const struct tide_protocol_ops *ops, void *proto, const void *early, size_t nearly,
		    struct tide_future **out)
{
	(void)t;
	(void)server_side;
	(void)o;
	(void)ops;
	(void)proto;
	(void)early;
	(void)nearly;
	(void)out;
	return -ENOTSUP;
}

int tide__tls_writev(struct tide_transport *t, const struct iovec *iov, int iovcnt)
{
	(void)t;
	(void)iov;
	(void)iovcnt;
	return -ENOTSUP;
}

int tide__tls_write_eof(struct tide_transport *t)
{
	(void)t;
	return -ENOTSUP;
}

void tide__tls_close(struct tide_transport *t)
{
	(void)t;
}

void tide__tls_abort(struct tide_transport *t)
{
	(void)t;
}

int tide__tls_pause_reading(struct tide_transport *t)
{
	(void)t;
	return -ENOTSUP;
}

int tide__tls_resume_reading(struct tide_transport *t)
{
	(void)t;
	return -ENOTSUP;
}

int tide__tls_set_limits(struct tide_transport *t, size_t high, size_t low)
{
	(void)t;
	(void)high;
	(void)low;
	return -ENOTSUP;
}

size_t tide__tls_wsize(const struct tide_transport *t)
{
	(void)t;
	return 0;
}

int tide__tls_get_extra_info(const struct tide_transport *t, const char *name, void *buf, socklen_t *len)
{
	(void)t;
	(void)name;
	(void)buf;
	(void)len;
	return -ENOTSUP;
}

struct tide_transport *tide__tls_raw(const struct tide_transport *t)
{
	(void)t;
	return NULL;
}

void tide__tls_free(struct tide_transport *t)
{
	(void)t;
}

TIDE_EXTERN int tide_start_tls(struct tide_transport *t, int server_side, const struct tide_tls_opts *tls,
			       const struct tide_protocol_ops *ops, void *proto, struct tide_future **out)
{
	(void)t;
	(void)server_side;
	(void)tls;
	(void)ops;
	(void)proto;
	(void)out;
	return -ENOTSUP;
}

TIDE_EXTERN int tide_tls_available(void)
{
	return 0;
}

TIDE_EXTERN int tide_tls_client_context_new(struct ssl_ctx_st **out)
{
	if (out)
		*out = NULL;
	return -ENOTSUP;
}

TIDE_EXTERN int tide_tls_server_context_new(const char *certfile, const char *keyfile, struct ssl_ctx_st **out)
{
	(void)certfile;
	(void)keyfile;
	if (out)
		*out = NULL;
	return -ENOTSUP;
}

#endif /* TIDE_HAVE_OPENSSL */
