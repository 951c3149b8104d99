/* SPDX-License-Identifier: MIT */
/*
 * list.h: the one intrusive doubly linked list (circular, with the head as
 * sentinel, as the kernel's list_head and libuv's queue): a node lives
 * inside its object, so linking never allocates, and unlinking is O(1)
 * from the node alone. Used for the loop's live ops and tasks, a server's
 * connections and an executor's queue.
 *
 * The hard part is a node's state: one that is in no list points at
 * itself (tide__list_init, and again after tide__list_del), so that
 * tide__list_linked answers and a second del is harmless.
 */
#ifndef TIDE_LIST_H
#define TIDE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct tide__list {
	struct tide__list *next;
	struct tide__list *prev;
};

static inline void tide__list_init(struct tide__list *h)
{
	h->next = h->prev = h;
}

static inline bool tide__list_empty(const struct tide__list *h)
{
	return h->next == h;
}

/* Whether node n is in a list (it was added and not deleted since). */
static inline bool tide__list_linked(const struct tide__list *n)
{
	return n->next != n;
}

static inline void tide__list_insert(struct tide__list *prev, struct tide__list *n, struct tide__list *next)
{
	n->next = next;
	n->prev = prev;
	prev->next = n;
	next->prev = n;
}

static inline void tide__list_add_head(struct tide__list *h, struct tide__list *n)
{
	tide__list_insert(h, n, h->next);
}

static inline void tide__list_add_tail(struct tide__list *h, struct tide__list *n)
{
	tide__list_insert(h->prev, n, h);
}

static inline void tide__list_del(struct tide__list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	tide__list_init(n);
}

/* The first node, or NULL when the list is empty. */
static inline struct tide__list *tide__list_first(const struct tide__list *h)
{
	return h->next == h ? NULL : h->next;
}

#define tide__list_entry(node, type, member) tide__container_of(node, type, member)
/* Walks h; the body may delete pos (tmp is read first). */
#define tide__list_for_each_safe(pos, tmp, h) \
	for ((pos) = (h)->next, (tmp) = (pos)->next; (pos) != (h); (pos) = (tmp), (tmp) = (pos)->next)
#define tide__list_for_each(pos, h) for ((pos) = (h)->next; (pos) != (h); (pos) = (pos)->next)

#endif /* TIDE_LIST_H */
