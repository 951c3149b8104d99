/* SPDX-License-Identifier: MIT */
/*
 * heap.h: the timer min-heap, a 4-ary heap of handle pointers ordered by
 * (when, seq). Each handle keeps its index, so a cancel removes it at once
 * in O(log n): a mass cancel never leaves the heap bloated (asyncio instead
 * purges lazily when more than half are cancelled). A 4-ary array heap
 * touches fewer cache lines per level than libuv's pointer-linked binary
 * heap, which is where timer throughput comes from.
 */
#ifndef TIDE_HEAP_H
#define TIDE_HEAP_H

#include "core/core.h"

#include <errno.h>

static inline bool heap_less(const struct tide__handle *a, const struct tide__handle *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static inline void heap_place(struct tide__handle **heap, uint32_t i, struct tide__handle *h)
{
	heap[i] = h;
	h->heap_idx = i;
}

static inline void heap_up(struct tide__handle **heap, uint32_t i, struct tide__handle *h)
{
	while (i > 0) {
		uint32_t parent = (i - 1) / 4;
		if (!heap_less(h, heap[parent]))
			break;
		heap_place(heap, i, heap[parent]);
		i = parent;
	}
	heap_place(heap, i, h);
}

static inline void heap_down(struct tide__handle **heap, uint32_t len, uint32_t i, struct tide__handle *h)
{
	for (;;) {
		uint32_t first = 4 * i + 1, best, end, c;
		if (first >= len)
			break;
		best = first;
		end = first + 4 < len ? first + 4 : len;
		for (c = first + 1; c < end; c++)
			if (heap_less(heap[c], heap[best]))
				best = c;
		if (!heap_less(heap[best], h))
			break;
		heap_place(heap, i, heap[best]);
		i = best;
	}
	heap_place(heap, i, h);
}

/* Removes the element at i; the caller has the handle already. */
static inline void heap_remove_at(struct tide__handle **heap, uint32_t *len, uint32_t i)
{
	struct tide__handle *last = heap[--*len];

	if (i == *len)
		return;
	if (i > 0 && heap_less(last, heap[(i - 1) / 4]))
		heap_up(heap, i, last);
	else
		heap_down(heap, *len, i, last);
}

/* Room for one more timer: 0, or -ENOMEM. Inline, with tide__timer_arm:
 * every call_later and call_at arms one. */
static inline int tide__timer_reserve(struct tide_loop *loop)
{
	if (TIDE__UNLIKELY(loop->heap_len == loop->heap_cap)) {
		uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct tide__handle **n = tide__realloc(loop->heap, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		loop->heap = n;
		loop->heap_cap = cap;
	}
	return 0;
}

static inline void tide__timer_arm(struct tide_loop *loop, struct tide__handle *h, uint64_t when)
{
	h->when = when;
	h->seq = loop->timer_seq++;
	h->flags |= TIDE__H_TIMER;
	heap_up(loop->heap, loop->heap_len++, h);
}

#endif /* TIDE_HEAP_H */
