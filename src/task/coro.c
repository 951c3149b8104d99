/* SPDX-License-Identifier: MIT */
/*
 * coro.c: guarded stacks (mmap with a PROT_NONE guard page, pooled per
 * loop), the switch wrapper around the assembly (or ucontext) switch, the
 * ASan/TSan/Valgrind annotations, and the stack-overflow report.
 *
 * The hard part is the overflow report: the fault happens on the stack that
 * overflowed, so the SIGSEGV handler runs on a per-thread alternate signal
 * stack, reads only thread-local state set at each switch, and writes its
 * message with write(2). A fault outside the running task's guard page is
 * not ours: the previous handler (or the default action) gets it.
 */
#include "task/coro.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TIDE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TIDE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define TIDE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TIDE_TSAN 1
#endif
#endif

#ifdef TIDE_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
/* A task's last frame never returns, so ASan's redzones in it outlive the
 * task: clear them before the stack serves another one or goes back. */
#define STACK_UNPOISON(s) ASAN_UNPOISON_MEMORY_REGION((s)->lo, (s)->size)
#else
#define STACK_UNPOISON(s) ((void)(s))
#endif
#ifdef TIDE_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

#if !defined(TIDE_CORO_UCONTEXT)
void tide__coro_switch(void **save_sp, void *load_sp);
void tide__coro_trampoline(void);
#endif

static size_t page_size(void)
{
	static size_t ps;

	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

/* --------------------------------------------------------------- stacks -- */

/*
 * A stack of size usable bytes above a PROT_NONE guard of guard bytes (at
 * least a page). A frame bigger than the guard would step over it onto
 * whatever lies below, silently: the guard is 64 KiB by default
 * (tide_loop_opts.stack_guard_size), and costs address space, not memory.
 */
static int stack_new(size_t size, size_t guard, struct tide__stack **out)
{
	size_t ps = page_size(), usable = (size + ps - 1) & ~(ps - 1);
	struct tide__stack *s = tide__malloc(sizeof(*s));
	void *map;

	if (!s)
		return -ENOMEM;
	/* MAP_NORESERVE: an idle task costs only the pages it touched. */
	guard = guard > ps ? (guard + ps - 1) & ~(ps - 1) : ps;
	map = mmap(NULL, usable + guard, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (map == MAP_FAILED) {
		tide__free(s);
		return -ENOMEM;
	}
	/* The guard sits below the stack, which grows down into it. */
	if (mprotect(map, guard, PROT_NONE) < 0) {
		int err = -errno;
		munmap(map, usable + guard);
		tide__free(s);
		return err == -ENOMEM ? -ENOMEM : err; /* ENOMEM: vm.max_map_count reached */
	}
	s->map = map;
	s->map_len = usable + guard;
	s->lo = (char *)map + guard;
	s->size = usable;
	s->vg_id = VALGRIND_STACK_REGISTER(s->lo, (char *)s->lo + usable);
	*out = s;
	return 0;
}

static void stack_free(struct tide__stack *s)
{
	STACK_UNPOISON(s);
	VALGRIND_STACK_DEREGISTER(s->vg_id);
	munmap(s->map, s->map_len);
	tide__free(s);
}

int tide__stack_get(struct tide_loop *loop, size_t size, struct tide__stack **out)
{
	struct tide__stack *s = loop->free_stacks;

	if (size == loop->task_stack_size && s) {
		loop->free_stacks = s->next;
		loop->free_stacks_n--;
		*out = s;
		return 0;
	}
	return stack_new(size, loop->task_guard_size, out);
}

void tide__stack_put(struct tide_loop *loop, struct tide__stack *s)
{
	STACK_UNPOISON(s);
	/* Keep a bounded pool of default-size stacks; the rest go back. */
	if (s->size == loop->task_stack_size && loop->free_stacks_n < 1024) {
		s->next = loop->free_stacks;
		loop->free_stacks = s;
		loop->free_stacks_n++;
		return;
	}
	stack_free(s);
}

void tide__stack_pool_fini(struct tide_loop *loop)
{
	struct tide__stack *s;

	while ((s = loop->free_stacks)) {
		loop->free_stacks = s->next;
		stack_free(s);
	}
	loop->free_stacks_n = 0;
}

/* ---------------------------------------------------------------- switch -- */

#if defined(TIDE_CORO_SHSTK_FALLBACK)
bool tide__coro_force_ucontext;

/* A shadow stack is active when the shadow-stack pointer is not 0 (rdssp
 * is a no-op, leaving 0, where there is none). */
static bool shstk_active(void)
{
	unsigned long long ssp = 0;

	__asm__ volatile("rdsspq %0" : "+r"(ssp));
	return ssp != 0;
}
#endif

bool tide__coro_uses_ucontext(void)
{
#if defined(TIDE_CORO_UCONTEXT)
	return true;
#elif defined(TIDE_CORO_SHSTK_FALLBACK)
	return tide__coro_force_ucontext || shstk_active();
#else
	return false;
#endif
}

#if defined(TIDE_CORO_HAVE_UCONTEXT)

static void uc_entry(unsigned hi, unsigned lo, unsigned ehi, unsigned elo)
{
	void *arg = (void *)(((uintptr_t)hi << 32) | lo);
	void (*entry)(void *) = (void (*)(void *))(((uintptr_t)ehi << 32) | elo);

	entry(arg);
	abort(); /* the entry never returns */
}

static void uc_prepare(struct tide__coro *c, struct tide__stack *s, void (*entry)(void *), void *arg)
{
	uintptr_t a = (uintptr_t)arg, e = (uintptr_t)entry;

	memset(c, 0, sizeof(*c));
	c->stack = s;
	c->lo = s->lo;
	c->size = s->size;
	c->on_uc = true;
	getcontext(&c->uc);
	c->uc.uc_stack.ss_sp = s->lo;
	c->uc.uc_stack.ss_size = s->size;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, (void (*)(void))uc_entry, 4, (unsigned)(a >> 32), (unsigned)a, (unsigned)(e >> 32),
		    (unsigned)e);
#ifdef TIDE_TSAN
	c->tsan_fiber = __tsan_create_fiber(0);
#endif
}

#endif

#if !defined(TIDE_CORO_UCONTEXT)

static void asm_prepare(struct tide__coro *c, struct tide__stack *s, void (*entry)(void *), void *arg)
{
	uintptr_t top = ((uintptr_t)s->lo + s->size) & ~(uintptr_t)15;
	void **sp;

	memset(c, 0, sizeof(*c));
	c->stack = s;
	c->lo = s->lo;
	c->size = s->size;
#if defined(__x86_64__)
	/* What tide__coro_switch pops, lowest address first: MXCSR/x87 CW,
	 * r15, r14, r13 (entry), r12 (arg), rbx, rbp, then the return address.
	 * After the ret, rsp is 16-byte aligned for the trampoline's call. */
	sp = (void **)(top - 16) - 8;
	{
		/* The new context starts with this thread's FP control state. */
		struct { uint32_t mxcsr; uint16_t fcw, pad; } csr = { 0, 0, 0 };
		__asm__ volatile("stmxcsr %0" : "=m"(csr.mxcsr));
		__asm__ volatile("fnstcw %0" : "=m"(csr.fcw));
		memcpy(&sp[0], &csr, sizeof(csr));
	}
	sp[1] = NULL;             /* r15 */
	sp[2] = NULL;             /* r14 */
	sp[3] = (void *)entry;    /* r13 */
	sp[4] = arg;              /* r12 */
	sp[5] = NULL;             /* rbx */
	sp[6] = NULL;             /* rbp: ends frame-pointer walks */
	sp[7] = (void *)tide__coro_trampoline;
	/* sp + 8 == top - 16: 16-byte aligned after the ret pops sp[7]. */
#elif defined(__aarch64__)
	/* The 176-byte frame tide__coro_switch restores: x19 (arg), x20
	 * (entry), x21-x28, x29 (frame pointer, 0), x30 (trampoline), d8-d15,
	 * FPCR. */
	sp = (void **)(top - 176);
	memset(sp, 0, 176);
	sp[0] = arg;
	sp[1] = (void *)entry;
	sp[11] = (void *)tide__coro_trampoline;
	{
		uint64_t fpcr;
		__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
		sp[20] = (void *)(uintptr_t)fpcr;
	}
#else
#error "no context switch for this architecture: configure --with-coro=ucontext"
#endif
	c->sp = sp;
#ifdef TIDE_TSAN
	c->tsan_fiber = __tsan_create_fiber(0);
#endif
}

#endif

void tide__coro_prepare(struct tide__coro *c, struct tide__stack *s, void (*entry)(void *), void *arg)
{
#if defined(TIDE_CORO_UCONTEXT)
	uc_prepare(c, s, entry, arg);
#else
#if defined(TIDE_CORO_SHSTK_FALLBACK)
	if (tide__coro_uses_ucontext()) {
		uc_prepare(c, s, entry, arg);
		return;
	}
#endif
	asm_prepare(c, s, entry, arg);
#endif
}

/*
 * The scheduler context is the stack of whichever thread steps the task,
 * and a loop may be driven by one thread and later by another: what the
 * sanitizers must know of it (its stack bounds, its TSan fiber) is kept
 * per thread, never in the loop's struct tide__coro.
 */
void tide__coro_init_sched(struct tide__coro *c)
{
	memset(c, 0, sizeof(*c));
}

#ifdef TIDE_ASAN
/* This thread's stack bounds, learnt from ASan whenever a task starts or
 * resumes on it. */
static TIDE__TLS const void *sched_lo;
static TIDE__TLS size_t sched_size;
#endif
#ifdef TIDE_TSAN
/* This thread's own fiber, taken as it switches to a task. */
static TIDE__TLS void *sched_fiber;
#endif
/* This thread has its alternate signal stack (tide__overflow_arm). */
static TIDE__TLS bool overflow_armed;

void tide__coro_started(struct tide__coro *self, struct tide__coro *sched)
{
#ifdef TIDE_ASAN
	__sanitizer_finish_switch_fiber(NULL, &sched_lo, &sched_size);
#endif
}

void tide__coro_switch_to(struct tide__coro *from, struct tide__coro *to, bool exiting)
{
	/* A thread that steps a task has the stack its overflow report
	 * runs on (the one that spawned it may have been another). */
	if (!from->stack && TIDE__UNLIKELY(!overflow_armed))
		tide__overflow_arm();
#ifdef TIDE_ASAN
	/* Passing NULL for an exiting context lets ASan drop its fake stack.
	 * To the scheduler: this thread's stack. */
	__sanitizer_start_switch_fiber(exiting ? NULL : &from->asan_fake, to->stack ? to->lo : sched_lo,
				       to->stack ? to->size : sched_size);
#endif
#ifdef TIDE_TSAN
	if (!from->stack)
		sched_fiber = __tsan_get_current_fiber();
	__tsan_switch_to_fiber(to->stack ? to->tsan_fiber : sched_fiber, 0);
#endif
#if defined(TIDE_CORO_UCONTEXT)
	swapcontext(&from->uc, &to->uc);
#else
#if defined(TIDE_CORO_SHSTK_FALLBACK)
	/* One side is a task (the other the scheduler): its way decides. */
	if (from->on_uc || to->on_uc)
		swapcontext(&from->uc, &to->uc);
	else
#endif
		tide__coro_switch(&from->sp, to->sp);
#endif
#ifdef TIDE_ASAN
	{
		const void *lo;
		size_t size;
		__sanitizer_finish_switch_fiber(from->asan_fake, &lo, &size);
		/* Back on `from`: if it is a task, we came from the scheduler. */
		if (from->stack) {
			sched_lo = lo;
			sched_size = size;
		}
	}
#endif
}

void tide__coro_destroy(struct tide__coro *c)
{
#if defined(TIDE_CORO_SHSTK_FALLBACK)
	/* Under a shadow stack glibc's makecontext mapped one for the context
	 * (base and size in __ssp[1], __ssp[2]), which it frees only when the
	 * context function returns: a task's never does. */
	if (c->on_uc && c->uc.__ssp[2]) {
		munmap((void *)(uintptr_t)c->uc.__ssp[1], (size_t)c->uc.__ssp[2]);
		c->uc.__ssp[2] = 0;
	}
#endif
#ifdef TIDE_TSAN
	if (c->tsan_fiber)
		__tsan_destroy_fiber(c->tsan_fiber);
	c->tsan_fiber = NULL;
#endif
}

/* ------------------------------------------------------ overflow report -- */

TIDE__TLS const struct tide__stack *tide__cur_stack;
static TIDE__TLS void *altstack;
static struct sigaction old_segv, old_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

static void say(const char *s)
{
	ssize_t r = write(STDERR_FILENO, s, strlen(s));
	(void)r;
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	const struct tide__stack *s = tide__cur_stack;
	uintptr_t a = (uintptr_t)si->si_addr;
	struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;

	if (s && a >= (uintptr_t)s->map && a < (uintptr_t)s->lo + 256) {
		say("tide: task '");
		say(tide__overflow_name());
		say("' overflowed its stack (hit the guard page); raise tide_task_opts.stack_size\n");
		signal(SIGABRT, SIG_DFL);
		abort();
	}
	/* Not ours: hand it to whoever had it before. */
	if (old->sa_flags & SA_SIGINFO) {
		old->sa_sigaction(sig, si, uc);
	} else if (old->sa_handler == SIG_IGN) {
		return;
	} else if (old->sa_handler != SIG_DFL) {
		old->sa_handler(sig);
	} else {
		signal(sig, SIG_DFL); /* the fault repeats and the default acts */
	}
}

static void install_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
}

void tide__overflow_arm(void)
{
	stack_t ss;

	if (overflow_armed)
		return;
	/* Once per thread, whether or not the stack can be had. */
	overflow_armed = true;
	pthread_once(&handler_once, install_handler);
	if (altstack)
		return;
	/* The alternate stack is per thread and lives as long as the thread. */
	ss.ss_size = 64 * 1024;
	ss.ss_sp = mmap(NULL, ss.ss_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ss.ss_flags = 0;
	if (ss.ss_sp == MAP_FAILED)
		return;
	if (sigaltstack(&ss, NULL) == 0)
		altstack = ss.ss_sp;
	else
		munmap(ss.ss_sp, ss.ss_size);
}
