/* SPDX-License-Identifier: MIT */
/*
 * pbuf.c: the net layer's per-loop state (struct tide__net): the pools of
 * write buffers, the readiness paths' shared receive buffer, and the
 * lending of the ring buffer being delivered (a write of those very bytes
 * may keep the buffer and send from it instead of copying). Made by the
 * first transport or server, freed by the loop through its net_fini hook.
 *
 * The hard part is the lending window: a ring buffer is lent only while
 * data_received reads it; once a send or a stream keeps it, it has one
 * owner, which gives it back to the ring (tide__pbuf_return), and at most
 * a quarter of the ring is ever kept (tide__pbuf_spare).
 */
#include "net/net.h"

#include <errno.h>

/*
 * Write buffers (and bytes held while reading is paused) come from the
 * loop's pools, one per power-of-two size from 64 bytes to 4 MiB, and go
 * back to them once empty: an idle connection holds none, a busy one
 * mallocs nothing, and what the pools keep is in proportion to the bytes
 * that were in flight at once, not to the writes (a burst of one-byte
 * echoes keeps 64-byte buffers, not pages). The classes to 4 KiB keep up
 * to POOL_MAX buffers each; the bigger ones BIG_KEEP bytes in all, so that
 * a full-duplex flow, whose buffers grow to hundreds of KiB and empty
 * every few milliseconds, does not have malloc give the pages back to the
 * kernel and fault them in again each time (that cost the io_uring echo
 * 8 times the CPU of epoll's). Bigger than 4 MiB is realloc's.
 */
#define WB_MIN_SHIFT 6
#define WB_MAX_SHIFT (WB_MIN_SHIFT + TIDE__WB_CLASSES - 1) /* 4 MiB */
#define WB_SMALL_SHIFT 12                                    /* 4 KiB */
#define POOL_MAX 1024                                        /* per small class */
#define BIG_KEEP ((size_t)8 << 20)

static void net_fini(struct tide_loop *loop)
{
	struct tide__net *net = loop->net;

	tide__wbuf_pool_trim(net, 0);
	tide__free(net->rbuf);
	tide__free(net->tls_buf);
	tide__free(net);
	loop->net = NULL;
	loop->net_fini = NULL;
}

struct tide__net *tide__net_get(struct tide_loop *loop)
{
	if (TIDE__LIKELY(loop->net != NULL))
		return loop->net;
	if (!(loop->net = tide__calloc(1, sizeof(*loop->net))))
		return NULL;
	loop->net_fini = net_fini;
	return loop->net;
}

char *tide__net_rbuf(struct tide__net *net)
{
	if (!net->rbuf)
		net->rbuf = tide__malloc(TIDE__READ_CHUNK);
	return net->rbuf;
}

/* ------------------------------------------------------- write buffers -- */

/* The pool class of a buffer of cap bytes, or -1 if it is not pooled. */
static int wb_class(size_t cap)
{
	if (cap < ((size_t)1 << WB_MIN_SHIFT) || cap > ((size_t)1 << WB_MAX_SHIFT))
		return -1;
	return (int)(63 - __builtin_clzll((unsigned long long)cap)) - WB_MIN_SHIFT;
}

static bool big_class(int c)
{
	return c > WB_SMALL_SHIFT - WB_MIN_SHIFT;
}

static char *pool_get(struct tide__net *net, int c)
{
	char *p = net->wbuf_pool[c];

	if (!p)
		return tide__malloc((size_t)1 << (c + WB_MIN_SHIFT));
	memcpy(&net->wbuf_pool[c], p, sizeof(char *));
	net->wbuf_pooled[c]--;
	if (big_class(c))
		net->wbuf_big -= (size_t)1 << (c + WB_MIN_SHIFT);
	return p;
}

static void pool_put(struct tide__net *net, int c, char *p)
{
	size_t size = (size_t)1 << (c + WB_MIN_SHIFT);

	if (big_class(c) ? net->wbuf_big + size > BIG_KEEP : net->wbuf_pooled[c] >= POOL_MAX) {
		tide__free(p);
		return;
	}
	if (big_class(c))
		net->wbuf_big += size;
	memcpy(p, &net->wbuf_pool[c], sizeof(char *));
	net->wbuf_pool[c] = p;
	net->wbuf_pooled[c]++;
}

int tide__wbuf_reserve(struct tide__net *net, struct tide__wbuf *b, size_t n)
{
	/* Bounded so that doubling cannot wrap (a length near SIZE_MAX). */
	if (n > SIZE_MAX / 4 - b->len)
		return -ENOMEM;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : (size_t)1 << WB_MIN_SHIFT;
		int oc = wb_class(b->cap), nc;
		char *p;

		while (cap < b->len + n)
			cap *= 2;
		nc = wb_class(cap);
		if (nc >= 0 || oc >= 0) {
			/* From one pool's size to the next, or out of the pools. */
			p = nc >= 0 ? pool_get(net, nc) : tide__malloc(cap);
			if (p && b->cap) {
				memcpy(p, b->p, b->len);
				pool_put(net, oc, b->p);
			}
		} else
			p = tide__realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	return 0;
}

void tide__wbuf_reset(struct tide__net *net, struct tide__wbuf *b)
{
	int c = wb_class(b->cap);

	b->len = 0;
	if (!b->cap)
		return;
	if (c >= 0)
		pool_put(net, c, b->p);
	else
		tide__free(b->p);
	b->p = NULL;
	b->cap = 0;
}

void tide__wbuf_pool_trim(struct tide__net *net, unsigned keep)
{
	char *p;

	for (int c = 0; c < TIDE__WB_CLASSES; c++)
		while (net->wbuf_pooled[c] > keep && net->wbuf_pool[c]) {
			p = pool_get(net, c);
			tide__free(p);
		}
}
