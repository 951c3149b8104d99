/* SPDX-License-Identifier: MIT */
/*
 * coro.h: stackful coroutines: guarded stacks, the context switch, and the
 * sanitizer and Valgrind annotations that let ASan, TSan and memcheck follow
 * every switch. Tasks (task.c) are the only user.
 *
 * The hard part is that every switch is between a task and its loop's
 * scheduler context (the thread's own stack), never task to task, which is
 * what lets the ASan bookkeeping stay this small.
 */
#ifndef TIDE_CORO_H
#define TIDE_CORO_H

#include "task/task.h"

/*
 * Control-flow enforcement: where the compiler was asked for shadow stacks
 * (-fcf-protection, __CET__ bit 2), the assembly switch, which returns by
 * an indirect jump and keeps one shadow stack for every task, must not run
 * under an active shadow stack: tasks then switch with ucontext, whose
 * glibc implementation gives each context its own shadow stack
 * (tide__coro_uses_ucontext; a shadow stack is on for a whole process).
 */
#if !defined(TIDE_CORO_UCONTEXT) && defined(__x86_64__) && defined(__CET__) && (__CET__ & 2)
#define TIDE_CORO_SHSTK_FALLBACK 1
#endif
#if defined(TIDE_CORO_UCONTEXT) || defined(TIDE_CORO_SHSTK_FALLBACK)
#include <ucontext.h>
#define TIDE_CORO_HAVE_UCONTEXT 1
#endif

/* One guarded stack: [guard page][usable ... top). */
struct tide__stack {
	struct tide__stack *next; /* pool free list */
	void *map;                /* mmap base (the guard page) */
	size_t map_len;           /* guard + usable */
	void *lo;                 /* lowest usable byte (just above the guard) */
	size_t size;              /* usable bytes */
	unsigned vg_id;           /* Valgrind's id for the registered stack */
};

struct tide__coro {
	void *sp;                 /* saved stack pointer while switched out */
	struct tide__stack *stack; /* NULL for the scheduler (thread) context */
	void *asan_fake;          /* ASan's fake stack saved across a switch */
	const void *lo;           /* stack bounds, for ASan's switch annotations */
	size_t size;
	void *tsan_fiber;         /* TSan's fiber for this context */
#if defined(TIDE_CORO_HAVE_UCONTEXT)
	ucontext_t uc;            /* the ucontext fallback's saved state */
	bool on_uc;               /* a task prepared with ucontext: switch it so */
#endif
};

/* Stack pool of a loop: stacks of the loop's default size are reused. */
int tide__stack_get(struct tide_loop *loop, size_t size, struct tide__stack **out);
void tide__stack_put(struct tide_loop *loop, struct tide__stack *s);
void tide__stack_pool_fini(struct tide_loop *loop);

/* Lays out c on its stack so the first switch to it calls entry(arg). */
void tide__coro_prepare(struct tide__coro *c, struct tide__stack *s, void (*entry)(void *), void *arg);
/* Whether tasks switch with ucontext: always with --with-coro=ucontext,
 * and under an active shadow stack in a -fcf-protection build. */
bool tide__coro_uses_ucontext(void);
#if defined(TIDE_CORO_SHSTK_FALLBACK)
/* Test hook: takes the shadow-stack fallback; change it only while no
 * task exists. */
extern bool tide__coro_force_ucontext;
#endif
/* The scheduler context of this thread (no stack of ours). */
void tide__coro_init_sched(struct tide__coro *c);
/*
 * Switches from `from` to `to`. exiting: `from` will never be resumed (its
 * stack goes back to the pool), which ASan must be told.
 */
void tide__coro_switch_to(struct tide__coro *from, struct tide__coro *to, bool exiting);
/* Called first thing on a new coroutine's stack. */
void tide__coro_started(struct tide__coro *self, struct tide__coro *sched);
/* The task's context is gone for good (after its last switch out). */
void tide__coro_destroy(struct tide__coro *c);

/*
 * Stack overflow: a SIGSEGV in the running coroutine's guard page ends the
 * process with a message naming it. The stack of the running coroutine is
 * one thread-local pointer, set around every step; the name comes from
 * tide__overflow_name (task.c), only ever called from the handler.
 */
void tide__overflow_arm(void);
extern TIDE__TLS const struct tide__stack *tide__cur_stack;
const char *tide__overflow_name(void);

#endif /* TIDE_CORO_H */
