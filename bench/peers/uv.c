/* SPDX-License-Identifier: MIT */
/*
 * uv.c: the libuv peer of the networking benchmarks (libuv 1.44): a
 * persistent echo server, or a minimal pipelining HTTP/1.1 server
 * (--mode http), on uv_tcp_t, uv_read_start and uv_write.
 *
 * The hard part is the buffer life cycle: reads land in one static buffer
 * (alloc_cb hands out the same 64 KiB every time, as the loop is
 * single-threaded and read_cb consumes it before the next read), but
 * uv_write needs its bytes to live until its callback. So each echo first
 * tries uv_try_write, which writes synchronously when nothing is queued
 * (the common case: no copy, no request), and only the unwritten rest is
 * copied into a malloc'd request for uv_write. uv_try_write refuses
 * (UV_EAGAIN) while writes are queued, which keeps the byte order. HTTP
 * responses are written from a static buffer and never need copying.
 */
#include <stdint.h>
#include <uv.h>

#include "peer.h"

#define READ_SIZE 65536

struct conn {
	uv_tcp_t tcp;
	int http_state;
};

/* A write request with the bytes it owns right behind it. */
struct wreq {
	uv_write_t req;
	size_t len;
	char data[];
};

static enum peer_mode mode;
static uv_loop_t *loop;
static char rbuf[READ_SIZE];

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	*buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_close(uv_handle_t *h)
{
	free(h->data);
}

static void on_write(uv_write_t *req, int status)
{
	(void)status; /* an error also shows up on the read side */
	free(req->data);
}

static void on_write_static(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

/* Sends p[0..n): synchronously when possible, else through uv_write, with
 * a copy unless is_static (p then outlives the request). */
static int conn_send(struct conn *c, const char *p, size_t n, int is_static)
{
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
	int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (w == UV_EAGAIN || w == UV_ENOSYS)
		w = 0;
	if (w < 0)
		return w;
	if ((size_t)w == n)
		return 0;
	p += w;
	n -= (size_t)w;
	if (is_static) {
		uv_write_t *req = malloc(sizeof(*req));
		if (!req)
			return UV_ENOMEM;
		b = uv_buf_init((char *)p, (unsigned)n);
		return uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_write_static);
	}
	struct wreq *r = malloc(sizeof(*r) + n);
	if (!r)
		return UV_ENOMEM;
	memcpy(r->data, p, n);
	r->len = n;
	r->req.data = r;
	b = uv_buf_init(r->data, (unsigned)n);
	return uv_write(&r->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	int rc = 0;
	if (n < 0) {
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	if (n == 0)
		return;
	if (mode == PEER_ECHO) {
		rc = conn_send(c, buf->base, (size_t)n, 0);
	} else {
		size_t k = peer_count_requests(buf->base, (size_t)n, &c->http_state);
		const char *resp = peer_responses();
		while (k > 0 && rc == 0) {
			size_t b = k < PEER_RESPONSE_BATCH ? k : PEER_RESPONSE_BATCH;
			rc = conn_send(c, resp, b * PEER_RESPONSE_LEN, 1);
			k -= b;
		}
	}
	if (rc < 0 && !uv_is_closing((uv_handle_t *)s))
		uv_close((uv_handle_t *)s, on_close);
}

static void on_connection(uv_stream_t *server, int status)
{
	if (status < 0)
		return;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		uv_close((uv_handle_t *)&c->tcp, on_close);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
	struct peer_args a;
	peer_parse_args(argc, argv, &a, 0);
	peer_setup_process();
	mode = a.mode;
	peer_responses();
	loop = uv_default_loop();

	uv_tcp_t server;
	struct sockaddr_in sin;
	uv_ip4_addr("127.0.0.1", a.port, &sin);
	uv_tcp_init(loop, &server);
	int rc = uv_tcp_bind(&server, (const struct sockaddr *)&sin, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&server, 4096, on_connection);
	if (rc < 0) {
		fprintf(stderr, "uv peer: listen: %s\n", uv_strerror(rc));
		return 1;
	}
	return uv_run(loop, UV_RUN_DEFAULT);
}
