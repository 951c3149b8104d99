/* SPDX-License-Identifier: MIT */
/*
 * signal.c: signal handlers of loops (asyncio's add_signal_handler), the
 * library's own watches (SIGCHLD for the subprocess code), and the
 * process-wide registry behind both.
 *
 * The mechanism (DESIGN.md, "Signals"): while any loop wants a signal, one
 * process-wide sigaction handler owns it (SA_RESTART; SA_NOCLDSTOP for
 * SIGCHLD). The handler does two async-signal-safe things per loop that
 * wants the signal: it sets the signal's bit in the loop's pending mask
 * and wakes the loop through its cross-thread door (ts_nonempty, then the
 * eventfd unless a write is pending already). The loop's drain takes the
 * mask with an exchange and queues one ready callback that runs the
 * handlers: never in signal context, and a signal that arrives after the
 * exchange sets the bit again, so it is never lost. No signal mask
 * changes, hence nothing for other threads or children to inherit.
 *
 * The hard part is the registry, read by the handler on any thread while
 * another adds or removes, and a loop freed meanwhile. It is a fixed array
 * of slots in static memory (never freed), one per loop with signals.
 * The handler enters a slot (busy++), then reads its mask and, if the bit
 * is there, the loop; whoever clears a loop's mask for good (its free)
 * then waits for busy to drop to 0. Both sides are seq_cst (a store then
 * a load each, Dekker's pattern), so either the handler sees the cleared
 * mask or the free sees it busy: no handler is inside a loop once free
 * closes its eventfd. Changes (not the handler) take reg_lock.
 *
 * fork(2): the child's copy of the registry names the parent's loops,
 * which the child cannot run. An atfork child handler puts back the
 * dispositions the library took and empties the registry, so the child
 * behaves as the program would without tide until it registers a loop of
 * its own. The handler also checks the pid, for a child of _Fork() or a
 * raw clone, which runs no atfork handler (it then drops the signal).
 */
#include "core/core.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

/* Signals 1 .. TIDE__NSIG - 1: one bit each in a 64-bit mask. */
#define TIDE__NSIG 65
_Static_assert(TIDE__NSIG - 1 <= 64, "a signal mask is 64 bits");
/* At most this many loops with signal handlers or watches at once. */
#define SIG_SLOTS 256

#define SIG_BIT(signo) ((uint64_t)1 << ((signo) - 1))

struct sig_slot {
	_Atomic(struct tide_loop *) loop; /* the owner; NULL when free */
	atomic_int pid;                   /* the process the owner belongs to */
	_Atomic uint64_t mask;            /* signals the owner wants */
	_Atomic uint64_t pending;         /* arrived, not yet taken by the owner */
	atomic_uint busy;                 /* handlers inside this slot */
};

static struct sig_slot slots[SIG_SLOTS];
static atomic_uint slots_used; /* the handler scans [0, slots_used) */
/* Guards what follows, and every change of a slot but its pending bits. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	unsigned users;       /* slots whose mask has the signal */
	struct sigaction old; /* the disposition before the first */
} reg[TIDE__NSIG];
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static int fork_once_err;

/* A loop's side: only its thread touches it. */
struct tide__sigwatch {
	struct tide__sigwatch *next;
	struct tide__sigwatch **pprev;
	struct tide_loop *loop;
	int signo;
	tide_call_cb cb;
	void *arg;
};

struct tide__sigloop {
	int slot;          /* index in slots[], -1 until taken */
	bool queued;       /* the dispatch is in the ready queue */
	uint64_t fired;    /* taken from the slot, for that dispatch */
	tide_call_cb cb[TIDE__NSIG]; /* the user's handlers */
	void *arg[TIDE__NSIG];
	struct tide__sigwatch *watches[TIDE__NSIG];
	struct tide__sigwatch *cursor; /* the dispatch's next watch (unwatch moves it on) */
};

static bool signo_ok(int signo)
{
	return signo >= 1 && signo < TIDE__NSIG && signo != SIGKILL && signo != SIGSTOP;
}

/* --------------------------------------------------------------- handler -- */

static void on_signal(int signo)
{
	int saved = errno;
	uint64_t bit = SIG_BIT(signo);
	unsigned i, n = atomic_load(&slots_used);
	pid_t me = 0;

	for (i = 0; i < n && i < SIG_SLOTS; i++) {
		struct sig_slot *s = &slots[i];
		struct tide_loop *loop;

		if (!(atomic_load_explicit(&s->mask, memory_order_relaxed) & bit))
			continue;
		atomic_fetch_add(&s->busy, 1);
		if ((atomic_load(&s->mask) & bit) && (loop = atomic_load(&s->loop))) {
			if (!me)
				me = getpid();
			if (atomic_load(&s->pid) == me) {
				atomic_fetch_or(&s->pending, bit);
				atomic_store(&loop->ts_nonempty, true);
				if (!atomic_exchange(&loop->ts_wake_pending, true)) {
					uint64_t one = 1;
					ssize_t r;
					do
						r = write(loop->wake_fd, &one, sizeof(one));
					while (r < 0 && errno == EINTR);
				}
			}
		}
		atomic_fetch_sub(&s->busy, 1);
	}
	errno = saved;
}

/* ---------------------------------------------------------------- fork -- */

static void fork_prepare(void)
{
	pthread_mutex_lock(&reg_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&reg_lock);
}

/* The child, one thread: the parent's loops are not its own (see the top). */
static void fork_child(void)
{
	int signo;
	unsigned i;

	for (signo = 1; signo < TIDE__NSIG; signo++) {
		if (reg[signo].users)
			sigaction(signo, &reg[signo].old, NULL);
		reg[signo].users = 0;
	}
	for (i = 0; i < SIG_SLOTS; i++) {
		atomic_store(&slots[i].mask, 0);
		atomic_store(&slots[i].pending, 0);
		atomic_store(&slots[i].busy, 0);
		atomic_store(&slots[i].loop, NULL);
	}
	atomic_store(&slots_used, 0);
	/* Held by fork_prepare, for the parent's thread: the child's own now. */
	pthread_mutex_init(&reg_lock, NULL);
}

static void fork_register(void)
{
	fork_once_err = pthread_atfork(fork_prepare, fork_parent, fork_child) ? -ENOMEM : 0;
}

/* ------------------------------------------------------------ registry -- */

/* The loop's slot, taken on first use; reg_lock held. */
static int slot_take(struct tide_loop *loop, struct tide__sigloop *sl)
{
	unsigned i, n = atomic_load(&slots_used);

	if (sl->slot >= 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!atomic_load(&slots[i].loop))
			break;
	if (i == n) {
		if (n == SIG_SLOTS)
			return -ENOSPC;
		atomic_store(&slots_used, n + 1);
	}
	atomic_store(&slots[i].pending, 0);
	atomic_store(&slots[i].pid, (int)getpid());
	atomic_store(&slots[i].loop, loop);
	sl->slot = (int)i;
	return 0;
}

static bool wants(const struct tide__sigloop *sl, int signo)
{
	return sl->cb[signo] || sl->watches[signo];
}

/*
 * Makes the slot's bit for signo match what the loop wants, taking or
 * putting back the disposition when the first slot comes or the last goes.
 * reg_lock held. The bit is set before the handler is installed, so a
 * signal just after finds it.
 */
static int slot_sync(struct tide__sigloop *sl, int signo)
{
	struct sig_slot *s = &slots[sl->slot];
	uint64_t bit = SIG_BIT(signo);
	bool have = atomic_load(&s->mask) & bit;

	if (wants(sl, signo) && !have) {
		atomic_fetch_or(&s->mask, bit);
		if (reg[signo].users++ == 0) {
			struct sigaction sa;

			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = on_signal;
			sigemptyset(&sa.sa_mask);
			sa.sa_flags = SA_RESTART | (signo == SIGCHLD ? SA_NOCLDSTOP : 0);
			if (sigaction(signo, &sa, &reg[signo].old) < 0) {
				int err = -errno;
				reg[signo].users = 0;
				atomic_fetch_and(&s->mask, ~bit);
				return err;
			}
		}
	} else if (!wants(sl, signo) && have) {
		/* The program's disposition goes back before the bit goes: a
		 * signal in between meets one or the other, never neither (a
		 * SIGTERM would vanish, where the default kills). */
		if (--reg[signo].users == 0)
			sigaction(signo, &reg[signo].old, NULL);
		atomic_fetch_and(&s->mask, ~bit);
		/* A mark left would fire a handler added later for an old
		 * signal: wait out the handlers that saw the bit before it
		 * went (they may mark still), then clear. */
		while (atomic_load(&s->busy))
			sched_yield();
		atomic_fetch_and(&s->pending, ~bit);
	}
	return 0;
}

/* The loop's state, made on first use. */
static struct tide__sigloop *sigloop(struct tide_loop *loop)
{
	struct tide__sigloop *sl = loop->sig;

	if (sl)
		return sl;
	if (!(sl = tide__calloc(1, sizeof(*sl))))
		return NULL;
	sl->slot = -1;
	loop->sig = sl;
	return sl;
}

/* Puts the registry in step with what the loop now wants for signo. */
static int sync_signal(struct tide_loop *loop, int signo)
{
	struct tide__sigloop *sl = loop->sig;
	int err;

	/* A forked child's loop: the registry forgot it (fork_child). */
	if (tide__loop_forked(loop))
		return 0;
	pthread_mutex_lock(&reg_lock);
	err = slot_take(loop, sl);
	if (!err)
		err = slot_sync(sl, signo);
	pthread_mutex_unlock(&reg_lock);
	return err;
}

/* What adding a handler or a watch checks first; the state, or NULL and *err. */
static struct tide__sigloop *may_add(struct tide_loop *loop, int signo, tide_call_cb cb, int *err)
{
	struct tide__sigloop *sl;

	*err = -EINVAL;
	if (!loop || !cb || !signo_ok(signo))
		return NULL;
	if ((*err = tide__loop_refuses(loop)))
		return NULL;
	if ((*err = pthread_once(&fork_once, fork_register) ? -ENOMEM : fork_once_err))
		return NULL;
	if (!(sl = sigloop(loop)))
		*err = -ENOMEM;
	return sl;
}

/* ------------------------------------------------------------ dispatch -- */

/* The ready callback: every signal taken since it was queued, in number order. */
static void dispatch(void *arg)
{
	struct tide_loop *loop = arg;
	struct tide__sigloop *sl = loop->sig;
	uint64_t bits = sl->fired;

	sl->fired = 0;
	sl->queued = false;
	while (bits) {
		int signo = __builtin_ctzll(bits) + 1;
		struct tide__sigwatch *w;

		bits &= bits - 1;
		/* Looked up now: a handler removed meanwhile does not run. */
		if (sl->cb[signo])
			sl->cb[signo](sl->arg[signo]);
		/* Watches added by these calls wait for the next signal (they
		 * go to the head); one dropped moves the cursor on. */
		for (w = sl->watches[signo]; w; w = sl->cursor) {
			sl->cursor = w->next;
			w->cb(w->arg);
		}
		sl->cursor = NULL;
	}
}

void tide__signal_take(struct tide_loop *loop)
{
	struct tide__sigloop *sl = loop->sig;
	struct sig_slot *s;
	uint64_t bits;

	if (sl->slot < 0)
		return;
	s = &slots[sl->slot];
	/* The drain cleared ts_nonempty (seq_cst) before this exchange: a
	 * handler's mark either shows here or sets ts_nonempty again. */
	if (!atomic_load(&s->pending) || !(bits = atomic_exchange(&s->pending, 0)))
		return;
	/* A closed loop runs no callback: dropped, as close drops _ready. */
	if (tide__loop_closed(loop))
		return;
	sl->fired |= bits;
	if (!sl->queued) {
		sl->queued = true;
		tide__ready_call_must(loop, dispatch, loop);
	}
}

/* -------------------------------------------------------------- public -- */

TIDE_EXTERN int tide_loop_add_signal_handler(struct tide_loop *loop, int signo, tide_call_cb cb, void *arg)
{
	struct tide__sigloop *sl;
	tide_call_cb old_cb;
	void *old_arg;
	int err;

	if (!(sl = may_add(loop, signo, cb, &err)))
		return err;
	old_cb = sl->cb[signo];
	old_arg = sl->arg[signo];
	sl->cb[signo] = cb;
	sl->arg[signo] = arg;
	if ((err = sync_signal(loop, signo))) {
		sl->cb[signo] = old_cb;
		sl->arg[signo] = old_arg;
	}
	return err;
}

TIDE_EXTERN int tide_loop_remove_signal_handler(struct tide_loop *loop, int signo)
{
	struct tide__sigloop *sl;

	if (!loop || !signo_ok(signo))
		return -EINVAL;
	if (!(sl = loop->sig) || !sl->cb[signo])
		return 0;
	sl->cb[signo] = NULL;
	sl->arg[signo] = NULL;
	/* Only ever gives back: cannot fail. */
	sync_signal(loop, signo);
	return 1;
}

int tide__signal_watch(struct tide_loop *loop, int signo, tide_call_cb cb, void *arg, struct tide__sigwatch **out)
{
	struct tide__sigloop *sl;
	struct tide__sigwatch *w;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!(sl = may_add(loop, signo, cb, &err)))
		return err;
	if (!(w = tide__malloc(sizeof(*w))))
		return -ENOMEM;
	w->loop = loop;
	w->signo = signo;
	w->cb = cb;
	w->arg = arg;
	w->pprev = &sl->watches[signo];
	w->next = sl->watches[signo];
	if (w->next)
		w->next->pprev = &w->next;
	sl->watches[signo] = w;
	if ((err = sync_signal(loop, signo))) {
		tide__signal_unwatch(w);
		return err;
	}
	*out = w;
	return 0;
}

void tide__signal_unwatch(struct tide__sigwatch *w)
{
	struct tide__sigloop *sl;

	if (!w)
		return;
	sl = w->loop->sig;
	if (sl->cursor == w)
		sl->cursor = w->next;
	*w->pprev = w->next;
	if (w->next)
		w->next->pprev = w->pprev;
	if (!sl->watches[w->signo])
		sync_signal(w->loop, w->signo);
	tide__free(w);
}

void tide__signal_close(struct tide_loop *loop)
{
	struct tide__sigloop *sl = loop->sig;
	int signo;

	if (!sl)
		return;
	for (signo = 1; signo < TIDE__NSIG; signo++)
		if (sl->cb[signo])
			tide_loop_remove_signal_handler(loop, signo);
	/* The dispatch queued (if any) went with the ready queue. */
	sl->fired = 0;
	sl->queued = false;
}

void tide__signal_fini(struct tide_loop *loop)
{
	struct tide__sigloop *sl = loop->sig;
	struct tide__sigwatch *w;
	int signo;

	if (!sl)
		return;
	for (signo = 1; signo < TIDE__NSIG; signo++) {
		sl->cb[signo] = NULL;
		while ((w = sl->watches[signo])) {
			sl->watches[signo] = w->next;
			tide__free(w);
		}
	}
	if (sl->slot >= 0 && !tide__loop_forked(loop)) {
		struct sig_slot *s = &slots[sl->slot];

		pthread_mutex_lock(&reg_lock);
		for (signo = 1; signo < TIDE__NSIG; signo++)
			slot_sync(sl, signo);
		/* The mask is 0: a handler entering from now on leaves the loop
		 * alone; wait for those inside (see the top of the file). */
		while (atomic_load(&s->busy))
			sched_yield();
		atomic_store(&s->pending, 0);
		atomic_store(&s->loop, NULL);
		pthread_mutex_unlock(&reg_lock);
	}
	tide__free(sl);
	loop->sig = NULL;
}
