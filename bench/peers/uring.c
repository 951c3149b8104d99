/* SPDX-License-Identifier: MIT */
/*
 * uring.c: the raw io_uring peer of the networking benchmarks (liburing
 * 2.3): the best hand-tuned server we know how to write, as the bar tide is
 * held to. A persistent echo server, or a minimal pipelining HTTP/1.1
 * server (--mode http), on one thread:
 *
 * - IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (completions run only when
 *   we wait for them: no interrupts of the loop), falling back to
 *   COOP_TASKRUN, then to no flags, on kernels that refuse them (-EINVAL);
 * - one multishot accept on the listener;
 * - one multishot recv per connection, its data landing in a provided
 *   buffer ring (io_uring_register_buf_ring), prefaulted so that the pool
 *   is paid for at start-up and not billed to the first connections;
 * - echo sends straight from the provided buffer (no copy); the buffer goes
 *   back to the ring when the send completes.
 *
 * The hard parts: (1) byte order. Two sends in flight on one socket may
 * complete out of order (one waits for space, the next finds it), so each
 * connection has at most one send in flight; what arrives meanwhile is
 * copied into a pending buffer and goes out in one send when the current
 * one completes. (2) Multishot requests end without warning: a recv CQE
 * without IORING_CQE_F_MORE (-ENOBUFS when the ring ran dry, or the kernel
 * giving up) must be re-armed. (3) A connection is freed only when neither
 * its recv nor its send is in flight, since their user_data points at it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "peer.h"

/* 256 buffers of 32 KiB (8 MiB): large enough that a 4 KiB message burst
 * is one recv, few enough that the pool stays warm in the caches (every
 * recv takes the ring's next buffer, so the whole pool is the working set;
 * 2048 x 4 KiB measured slower at 4 KiB and no better at 64 B). With 1000
 * connections the ring can run dry: -ENOBUFS, re-armed below. */
#define BUF_SIZE 32768
#define NBUFS 256 /* a power of two: the buffer ring's size */
#define BGID 0

enum { TAG_ACCEPT = 1, TAG_RECV = 2, TAG_SEND = 3, TAG_MASK = 7 };

struct conn {
	int fd;
	int http_state;
	int recv_armed;
	int send_busy;
	int closing;
	int send_bid;            /* the provided buffer being sent from, or -1 */
	const char *send_ptr;    /* what the send in flight still has to send */
	size_t send_left;
	char *pend;              /* echo: bytes that arrived during the send */
	size_t pend_len, pend_cap;
	char *inflight;          /* echo: the buffer pend was swapped into */
	size_t inflight_cap;
	size_t pend_resp;        /* http: responses owed */
};

static enum peer_mode mode;
static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static unsigned recycled; /* buffers added to the ring since the last advance */
static int lfd;

static struct io_uring_sqe *get_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	while (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	return sqe;
}

static void recycle(int bid)
{
	io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
			      io_uring_buf_ring_mask(NBUFS), (int)recycled);
	recycled++;
}

static void arm_accept(void)
{
	struct io_uring_sqe *sqe = get_sqe();
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, TAG_ACCEPT);
}

static void arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = get_sqe();
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | TAG_RECV);
	c->recv_armed = 1;
}

static void submit_send(struct conn *c)
{
	struct io_uring_sqe *sqe = get_sqe();
	/* MSG_WAITALL: io_uring retries a short send on a stream socket itself. */
	io_uring_prep_send(sqe, c->fd, c->send_ptr, c->send_left, MSG_WAITALL | MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | TAG_SEND);
	c->send_busy = 1;
}

static void maybe_free(struct conn *c)
{
	if (!c->closing || c->recv_armed || c->send_busy)
		return;
	close(c->fd);
	free(c->pend);
	free(c->inflight);
	free(c);
}

static void start_close(struct conn *c)
{
	if (!c->closing) {
		c->closing = 1;
		/* Ends the multishot recv (it completes with 0). */
		if (c->recv_armed)
			shutdown(c->fd, SHUT_RDWR);
	}
	maybe_free(c);
}

/* Starts the next send if none is in flight and something is owed. */
static void send_next(struct conn *c)
{
	if (c->send_busy || c->closing)
		return;
	if (mode == PEER_HTTP) {
		if (c->pend_resp == 0)
			return;
		size_t b = c->pend_resp < PEER_RESPONSE_BATCH ? c->pend_resp : PEER_RESPONSE_BATCH;
		c->pend_resp -= b;
		c->send_ptr = peer_responses();
		c->send_left = b * PEER_RESPONSE_LEN;
		c->send_bid = -1;
		submit_send(c);
		return;
	}
	if (c->pend_len == 0)
		return;
	/* Swap: the pending bytes go out from inflight, new arrivals fill pend. */
	char *t = c->inflight;
	size_t tc = c->inflight_cap;
	c->inflight = c->pend;
	c->inflight_cap = c->pend_cap;
	c->pend = t;
	c->pend_cap = tc;
	c->send_ptr = c->inflight;
	c->send_left = c->pend_len;
	c->pend_len = 0;
	c->send_bid = -1;
	submit_send(c);
}

static int pend_append(struct conn *c, const char *p, size_t n)
{
	return peer_buf_append(&c->pend, &c->pend_len, &c->pend_cap, p, n);
}

static void on_accept(struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_accept();
	if (cqe->res < 0)
		return;
	int fd = cqe->res;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->send_bid = -1;
	arm_recv(c);
}

static void on_recv(struct conn *c, struct io_uring_cqe *cqe)
{
	int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
	if (!more)
		c->recv_armed = 0;
	if (cqe->res <= 0) {
		if (cqe->res == -ENOBUFS && !c->closing) {
			arm_recv(c); /* the ring ran dry; buffers come back as sends complete */
			return;
		}
		if (more) /* cannot happen for 0 or an error, but be safe */
			shutdown(c->fd, SHUT_RDWR);
		start_close(c);
		return;
	}
	int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
	const char *data = bufs + (size_t)bid * BUF_SIZE;
	size_t n = (size_t)cqe->res;
	if (c->closing) {
		recycle(bid);
	} else if (mode == PEER_HTTP) {
		c->pend_resp += peer_count_requests(data, n, &c->http_state);
		recycle(bid);
		send_next(c);
	} else if (!c->send_busy) {
		/* Zero copy: send from the provided buffer, recycle it after. */
		c->send_bid = bid;
		c->send_ptr = data;
		c->send_left = n;
		submit_send(c);
	} else {
		int rc = pend_append(c, data, n);
		recycle(bid);
		if (rc < 0)
			start_close(c);
	}
	if (!more && !c->closing)
		arm_recv(c);
	else if (!more)
		maybe_free(c);
}

static void on_send(struct conn *c, struct io_uring_cqe *cqe)
{
	if (cqe->res > 0 && (size_t)cqe->res < c->send_left) {
		c->send_ptr += cqe->res;
		c->send_left -= (size_t)cqe->res;
		submit_send(c);
		return;
	}
	c->send_busy = 0;
	if (c->send_bid >= 0) {
		recycle(c->send_bid);
		c->send_bid = -1;
	}
	if (cqe->res < 0) {
		start_close(c);
		return;
	}
	if (c->closing)
		maybe_free(c);
	else
		send_next(c);
}

static int ring_init(void)
{
	static const unsigned flags[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int rc = -EINVAL;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		p.flags = flags[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = 16384;
		rc = io_uring_queue_init_params(1024, &ring, &p);
		if (rc != -EINVAL)
			break;
	}
	return rc;
}

static int bufs_init(void)
{
	size_t ring_bytes = NBUFS * sizeof(struct io_uring_buf);
	br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
		  -1, 0);
	bufs = mmap(NULL, (size_t)NBUFS * BUF_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (br == MAP_FAILED || bufs == MAP_FAILED)
		return -ENOMEM;
	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = NBUFS;
	reg.bgid = BGID;
	int rc = io_uring_register_buf_ring(&ring, &reg, 0);
	if (rc < 0)
		return rc;
	io_uring_buf_ring_init(br);
	for (int i = 0; i < NBUFS; i++)
		recycle(i);
	io_uring_buf_ring_advance(br, (int)recycled);
	recycled = 0;
	return 0;
}

int main(int argc, char **argv)
{
	struct peer_args a;
	peer_parse_args(argc, argv, &a, 0);
	peer_setup_process();
	mode = a.mode;
	peer_responses();

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a.port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 4096) < 0) {
		perror("uring peer: listen");
		return 1;
	}
	int rc = ring_init();
	if (rc == 0)
		rc = bufs_init();
	/* Saves an fd lookup per io_uring_enter; optional (kernel 5.18+). */
	if (rc == 0)
		io_uring_register_ring_fd(&ring);
	if (rc < 0) {
		fprintf(stderr, "uring peer: %s\n", strerror(-rc));
		return 1;
	}
	arm_accept();
	for (;;) {
		if (recycled) {
			io_uring_buf_ring_advance(br, (int)recycled);
			recycled = 0;
		}
		rc = io_uring_submit_and_wait(&ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
			fprintf(stderr, "uring peer: io_uring_submit_and_wait: %s\n", strerror(-rc));
			return 1;
		}
		struct io_uring_cqe *cqe;
		unsigned head, count = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			count++;
			uint64_t ud = cqe->user_data;
			struct conn *c = (struct conn *)(uintptr_t)(ud & ~(uint64_t)TAG_MASK);
			switch (ud & TAG_MASK) {
			case TAG_ACCEPT:
				on_accept(cqe);
				break;
			case TAG_RECV:
				on_recv(c, cqe);
				break;
			case TAG_SEND:
				on_send(c, cqe);
				break;
			}
		}
		io_uring_cq_advance(&ring, count);
	}
}
