/* SPDX-License-Identifier: MIT */
/*
 * test/signal.c: signal handlers of loops (src/core/signal.c), on every
 * backend configuration: the handler runs on the loop thread outside
 * signal context; a flood of 100,000 signals from another thread or
 * another process coalesces but the last one is never lost; two loops on
 * two threads both get a signal; the disposition the program had comes
 * back when the last handler goes (removed, by itself, by close, or with
 * its loop freed) and in a forked child; bad numbers are refused;
 * tide_signal_wait in a task, cancelled too; tide_get_running_loop; the
 * library's own watch beside a user's handler.
 *
 * The hard part is a test of "never lost" that cannot pass by luck: the
 * sender's last act is to publish the count it reached, then signal; the
 * handler must see the final count, so a handler run that came before the
 * last signal does not do.
 *
 * A forked child reports through its exit status, never through Check.
 */
#include "config.h"
#include "helpers.h"

#include "core/core.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLOOD 100000

/* ---------------------------------------------------------------- utils -- */

static void program_handler(int signo)
{
	(void)signo;
}

static void program_action(int signo, siginfo_t *si, void *uc)
{
	(void)signo;
	(void)si;
	(void)uc;
}

/* Sets the program's own disposition of signo (as a program would before
 * any loop), so that the tests can see it come back. */
static void set_program_disposition(int signo, bool siginfo)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	if (siginfo) {
		sa.sa_sigaction = program_action;
		sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	} else {
		sa.sa_handler = program_handler;
	}
	ck_assert_int_eq(sigaction(signo, &sa, NULL), 0);
}

static struct sigaction disposition(int signo)
{
	struct sigaction sa;

	ck_assert_int_eq(sigaction(signo, NULL, &sa), 0);
	return sa;
}

static bool is_program_disposition(int signo, bool siginfo)
{
	struct sigaction sa = disposition(signo);

	if (siginfo)
		return sa.sa_sigaction == program_action && (sa.sa_flags & (SA_SIGINFO | SA_ONSTACK)) ==
								   (SA_SIGINFO | SA_ONSTACK);
	return sa.sa_handler == program_handler && !(sa.sa_flags & SA_SIGINFO);
}

/* Whether the library holds signo: not SIG_DFL, SIG_IGN nor the program's. */
static bool is_library_disposition(int signo)
{
	struct sigaction sa = disposition(signo);

	return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN &&
	       sa.sa_handler != program_handler;
}

/*
 * Runs the loop until *done, asleep in its backend between callbacks (no
 * polling: only the signal's wake-up can end a wait); a timer far away
 * turns a lost wake-up into a failure rather than a hang.
 */
struct until {
	struct tide_loop *loop;
	const bool *done;
	bool gave_up;
};

static void until_check(void *arg)
{
	struct until *u = arg;

	if (*u->done)
		tide_loop_stop(u->loop);
}

static void until_give_up(void *arg)
{
	struct until *u = arg;

	u->gave_up = true;
	tide_loop_stop(u->loop);
}

/* hit_cb's callers call this after it: stops the run once done. */
static struct until *g_until;

static void run_until_hit(struct tide_loop *loop, const bool *done, double secs)
{
	struct until u = {.loop = loop, .done = done};
	struct tide_handle timer;

	g_until = &u;
	ck_assert_int_eq(tide_call_later(loop, secs * slow_factor(), until_give_up, &u, &timer), 0);
	while (!*done && !u.gave_up)
		ck_assert_int_eq(tide_loop_run(loop), 0);
	tide_handle_cancel(&timer);
	g_until = NULL;
	ck_assert_msg(*done && !u.gave_up, "[%s] the signal's handler did not run before the timer (a lost wake-up)", tt_cfg->name);
}

struct hits {
	struct tide_loop *loop;
	int signo;
	unsigned calls;
	bool blocked_in_cb;         /* the signal was blocked while cb ran: signal context */
	pthread_t thread;           /* where cb last ran */
	struct tide_loop *running;  /* tide_get_running_loop() in cb */
	atomic_ulong *counter;      /* the flood's published count */
	unsigned long seen;         /* its value when cb last ran */
	bool remove_self;
	unsigned want_calls;        /* done once calls reach it (0: unused) */
	bool done;                  /* calls == want_calls, or seen == FLOOD */
};

static void hit_cb(void *arg)
{
	struct hits *h = arg;
	sigset_t cur;

	h->calls++;
	h->thread = pthread_self();
	h->running = tide_get_running_loop();
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
	if (sigismember(&cur, h->signo))
		h->blocked_in_cb = true;
	if (h->counter)
		h->seen = atomic_load(h->counter);
	if (h->remove_self)
		ck_assert_int_eq(tide_loop_remove_signal_handler(h->loop, h->signo), 1);
	if ((h->want_calls && h->calls >= h->want_calls) || (h->counter && h->seen == FLOOD))
		h->done = true;
	if (h->done && g_until)
		until_check(g_until);
}

/* ---------------------------------------------------------------- tests -- */

/*
 * A signal sent before the loop runs, then one from another thread while
 * it sleeps: cb runs on the loop's thread, as a callback of the loop
 * (tide_get_running_loop), with the signal not blocked (not in a handler).
 */
static void *kill_later(void *arg)
{
	int signo = *(int *)arg;

	tt_sleep_ms(50);
	/* Directed at this thread: its handler runs here, and must wake the
	 * loop (a kill(2) of the process would go to the main thread, and
	 * interrupt the loop's wait itself). */
	raise(signo);
	return NULL;
}

START_TEST(test_handler_runs_on_loop_thread)
{
	struct tide_loop *loop = tt_loop_new();
	struct hits h = {.loop = loop, .signo = SIGUSR1};
	int signo = SIGUSR1;
	pthread_t th;

	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGUSR1, hit_cb, &h), 0);
	ck_assert(is_library_disposition(SIGUSR1));
	/* Arrives while the loop does not run: the next run delivers it. */
	ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
	ck_assert_uint_eq(h.calls, 0);
	RUN_UNTIL(loop, h.calls == 1);
	ck_assert(pthread_equal(h.thread, pthread_self()));
	ck_assert_ptr_eq(h.running, loop);
	ck_assert(!h.blocked_in_cb);
	/* From another thread, the loop asleep in its backend. */
	h.want_calls = 2;
	ck_assert_int_eq(pthread_create(&th, NULL, kill_later, &signo), 0);
	run_until_hit(loop, &h.done, TT_HANG_S);
	ck_assert_uint_eq(h.calls, 2);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert(pthread_equal(h.thread, pthread_self()));
	ck_assert(!h.blocked_in_cb);
	/* Nothing more comes: no spurious call. */
	ck_assert_int_ge(tide_loop_run_once(loop, 0.05), 0);
	ck_assert_uint_eq(h.calls, 2);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGUSR1), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* A second add replaces the first handler of that loop. */
START_TEST(test_add_replaces)
{
	struct tide_loop *loop = tt_loop_new();
	struct hits a = {.loop = loop, .signo = SIGUSR2}, b = a;

	set_program_disposition(SIGUSR2, false);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGUSR2, hit_cb, &a), 0);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGUSR2, hit_cb, &b), 0);
	ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
	RUN_UNTIL(loop, b.calls == 1);
	ck_assert_uint_eq(a.calls, 0);
	/* One removal undoes both adds. */
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGUSR2), 1);
	ck_assert(is_program_disposition(SIGUSR2, false));
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGUSR2), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/*
 * The flood: the sender publishes i, then signals; its last i is FLOOD.
 * Either each signal is raised at the sender's own thread (the handler
 * runs there and wakes the loop through its door), or the process is
 * sent it with the sender blocking it (the loop's thread, the main one,
 * takes each: its wait is interrupted).
 */
struct flood {
	atomic_ulong *counter;
	int signo;
	bool to_loop_thread;
};

static void *flood_thread(void *arg)
{
	struct flood *f = arg;
	unsigned long i;

	if (f->to_loop_thread) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, f->signo);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
	}
	for (i = 1; i <= FLOOD; i++) {
		atomic_store(f->counter, i);
		if (f->to_loop_thread)
			kill(getpid(), f->signo);
		else
			raise(f->signo);
	}
	return NULL;
}

static void flood_from_thread(bool to_loop_thread)
{
	struct tide_loop *loop = tt_loop_new();
	atomic_ulong counter = 0;
	struct hits h = {.loop = loop, .signo = SIGUSR1, .counter = &counter};
	struct flood f = {.counter = &counter, .signo = SIGUSR1, .to_loop_thread = to_loop_thread};
	pthread_t th;

	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGUSR1, hit_cb, &h), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, flood_thread, &f), 0);
	run_until_hit(loop, &h.done, 60.0);
	ck_assert_uint_eq(h.seen, FLOOD);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_uint_ge(h.calls, 1);
	ck_assert_uint_le(h.calls, FLOOD);
	ck_assert(!h.blocked_in_cb);
	ck_assert(pthread_equal(h.thread, pthread_self()));
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

START_TEST(test_flood_from_thread)
{
	flood_from_thread(false);
}
END_TEST

START_TEST(test_flood_from_thread_to_loop_thread)
{
	flood_from_thread(true);
}
END_TEST

/* From a forked child (plain kill(2) calls), the count in shared memory. */
START_TEST(test_flood_from_process)
{
	struct tide_loop *loop = tt_loop_new();
	atomic_ulong *counter = mmap(NULL, sizeof(*counter), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct hits h = {.loop = loop, .signo = SIGUSR2};
	pid_t parent = getpid(), pid;
	int st = 0;

	ck_assert_ptr_ne(counter, MAP_FAILED);
	atomic_store(counter, 0);
	h.counter = counter;
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGUSR2, hit_cb, &h), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		unsigned long i;

		for (i = 1; i <= FLOOD; i++) {
			atomic_store(counter, i);
			if (kill(parent, SIGUSR2) < 0)
				_exit(1);
		}
		_exit(0);
	}
	run_until_hit(loop, &h.done, 60.0);
	ck_assert_uint_eq(h.seen, FLOOD);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_uint_ge(h.calls, 1);
	ck_assert_uint_le(h.calls, FLOOD);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	munmap(counter, sizeof(*counter));
}
END_TEST

/* Two loops, each on its own thread, each with a handler of SIGUSR1. */
struct loop_thread {
	pthread_barrier_t *ready;
	struct hits h;
	int add, free_rc, stopped;
};

static void stop_on_hit(void *arg)
{
	struct loop_thread *lt = arg;

	hit_cb(&lt->h);
	tide_loop_stop(lt->h.loop);
}

static void give_up(void *arg)
{
	struct loop_thread *lt = arg;

	lt->stopped = -1;
	tide_loop_stop(lt->h.loop);
}

static void *loop_thread_main(void *arg)
{
	struct loop_thread *lt = arg;
	struct tide_handle timer;

	lt->add = tide_loop_add_signal_handler(lt->h.loop, SIGUSR1, stop_on_hit, lt);
	pthread_barrier_wait(lt->ready);
	/* The timer only tells a lost signal from a hang. */
	tide_call_later(lt->h.loop, TT_HANG_S * slow_factor(), give_up, lt, &timer);
	tide_loop_run(lt->h.loop);
	tide_handle_cancel(&timer);
	lt->free_rc = tide_loop_free(lt->h.loop);
	return NULL;
}

START_TEST(test_two_loops_two_threads)
{
	pthread_barrier_t ready;
	struct loop_thread lt[2];
	pthread_t th[2];
	int i;

	set_program_disposition(SIGUSR1, true);
	ck_assert_int_eq(pthread_barrier_init(&ready, NULL, 3), 0);
	for (i = 0; i < 2; i++) {
		memset(&lt[i], 0, sizeof(lt[i]));
		lt[i].ready = &ready;
		lt[i].h.loop = tt_loop_new();
		lt[i].h.signo = SIGUSR1;
		ck_assert_int_eq(pthread_create(&th[i], NULL, loop_thread_main, &lt[i]), 0);
	}
	pthread_barrier_wait(&ready);
	ck_assert_int_eq(lt[0].add, 0);
	ck_assert_int_eq(lt[1].add, 0);
	/* One signal, both loops. */
	ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(lt[i].stopped, 0);
		ck_assert_uint_eq(lt[i].h.calls, 1);
		ck_assert(pthread_equal(lt[i].h.thread, th[i]));
		ck_assert_ptr_eq(lt[i].h.running, lt[i].h.loop);
		ck_assert_int_eq(lt[i].free_rc, 0);
	}
	/* Each loop was freed with its handler: the program's comes back. */
	ck_assert(is_program_disposition(SIGUSR1, true));
	pthread_barrier_destroy(&ready);
}
END_TEST

/* The program's disposition comes back when the last loop lets go. */
START_TEST(test_remove_restores_disposition)
{
	struct tide_loop *a = tt_loop_new(), *b = tt_loop_new();
	struct hits ha = {.loop = a, .signo = SIGUSR1}, hb = {.loop = b, .signo = SIGUSR1};

	set_program_disposition(SIGUSR1, true);
	ck_assert_int_eq(tide_loop_add_signal_handler(a, SIGUSR1, hit_cb, &ha), 0);
	ck_assert(is_library_disposition(SIGUSR1));
	ck_assert_int_eq(tide_loop_add_signal_handler(b, SIGUSR1, hit_cb, &hb), 0);
	ck_assert_int_eq(tide_loop_remove_signal_handler(a, SIGUSR1), 1);
	ck_assert(is_library_disposition(SIGUSR1));
	ck_assert_int_eq(tide_loop_remove_signal_handler(b, SIGUSR1), 1);
	ck_assert(is_program_disposition(SIGUSR1, true));
	/* SIG_IGN and SIG_DFL come back as well. */
	signal(SIGUSR2, SIG_IGN);
	ck_assert_int_eq(tide_loop_add_signal_handler(a, SIGUSR2, hit_cb, &ha), 0);
	ck_assert(is_library_disposition(SIGUSR2));
	ck_assert_int_eq(tide_loop_remove_signal_handler(a, SIGUSR2), 1);
	ck_assert_ptr_eq((void *)disposition(SIGUSR2).sa_handler, (void *)SIG_IGN);
	signal(SIGUSR2, SIG_DFL);
	ck_assert_int_eq(tide_loop_add_signal_handler(a, SIGUSR2, hit_cb, &ha), 0);
	ck_assert_int_eq(tide_loop_remove_signal_handler(a, SIGUSR2), 1);
	ck_assert_ptr_eq((void *)disposition(SIGUSR2).sa_handler, (void *)SIG_DFL);
	/* tide_loop_close removes the loop's handlers (asyncio's close). */
	ck_assert_int_eq(tide_loop_add_signal_handler(a, SIGUSR1, hit_cb, &ha), 0);
	ck_assert_int_eq(tide_loop_close(a), 0);
	ck_assert(is_program_disposition(SIGUSR1, true));
	ck_assert_int_eq(tide_loop_remove_signal_handler(a, SIGUSR1), 0);
	ck_assert_int_eq(tide_loop_add_signal_handler(a, SIGUSR1, hit_cb, &ha), TIDE_ECLOSED);
	ck_assert_int_eq(tide_loop_free(a), 0);
	ck_assert_int_eq(tide_loop_free(b), 0);
	ck_assert_uint_eq(ha.calls + hb.calls, 0);
}
END_TEST

/* A handler that removes itself: it ran once, and the next signal finds
 * the program's disposition (SIG_IGN here) again. */
START_TEST(test_handler_removes_itself)
{
	struct tide_loop *loop = tt_loop_new();
	struct hits h = {.loop = loop, .signo = SIGUSR2, .remove_self = true};

	signal(SIGUSR2, SIG_IGN);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGUSR2, hit_cb, &h), 0);
	ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
	RUN_UNTIL(loop, h.calls == 1);
	ck_assert_ptr_eq((void *)disposition(SIGUSR2).sa_handler, (void *)SIG_IGN);
	ck_assert_int_eq(kill(getpid(), SIGUSR2), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.05), 0);
	ck_assert_uint_eq(h.calls, 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

START_TEST(test_bad_numbers)
{
	struct tide_loop *loop = tt_loop_new();
	struct hits h = {.loop = loop};
	static const int bad[] = {SIGKILL, SIGSTOP, 0, 65, -1, 1000};
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(tide_loop_add_signal_handler(loop, bad[i], hit_cb, &h), -EINVAL);
		ck_assert_int_eq(tide_loop_remove_signal_handler(loop, bad[i]), -EINVAL);
	}
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGUSR1, NULL, &h), -EINVAL);
	ck_assert_int_eq(tide_loop_add_signal_handler(NULL, SIGUSR1, hit_cb, &h), -EINVAL);
	ck_assert_int_eq(tide_loop_remove_signal_handler(NULL, SIGUSR1), -EINVAL);
	/* A number the C library keeps for itself (glibc's SIGCANCEL):
	 * sigaction refuses it, and nothing stays registered. */
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, 32, hit_cb, &h), -EINVAL);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, 32), 0);
	/* Valid but never added. */
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGUSR1), 0);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, 64), 0);
	ck_assert_int_eq(tide_signal_wait(SIGUSR1), TIDE_ENOT_IN_TASK);
	ck_assert_ptr_null(tide_get_running_loop());
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* tide_signal_wait in a task: the signal, then a cancelled wait. */
static struct tide_loop *g_loop;

static void send_sigusr1(void *arg)
{
	(void)arg;
	kill(getpid(), SIGUSR1);
}

static int64_t waiter_task(void *arg)
{
	(void)arg;
	return tide_signal_wait(SIGUSR1);
}

static int64_t signal_wait_main(void *arg)
{
	struct tide_future *t;
	struct tide_handle h;

	(void)arg;
	ck_assert_ptr_eq(tide_get_running_loop(), g_loop);
	/* A bad number in a task. */
	ck_assert_int_eq(tide_signal_wait(SIGKILL), -EINVAL);
	ck_assert_int_eq(tide_signal_wait(0), -EINVAL);
	/* The signal ends the wait with its number. */
	ck_assert_int_eq(tide_call_later(g_loop, 0.02, send_sigusr1, NULL, &h), 0);
	ck_assert_int_eq(tide_signal_wait(SIGUSR1), SIGUSR1);
	ck_assert(is_program_disposition(SIGUSR1, false));
	/* Cancelled while it waits: -ECANCELED, the disposition given back. */
	ck_assert_int_eq(tide_task_spawn(g_loop, waiter_task, NULL, NULL, &t), 0);
	ck_assert_int_eq(tide_sleep(0.02), 0);
	ck_assert(is_library_disposition(SIGUSR1));
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_await(t), -ECANCELED);
	tide_future_unref(t);
	ck_assert(is_program_disposition(SIGUSR1, false));
	/* Two tasks wait for one signal: both wake. */
	{
		struct tide_future *t2;

		ck_assert_int_eq(tide_task_spawn(g_loop, waiter_task, NULL, NULL, &t), 0);
		ck_assert_int_eq(tide_task_spawn(g_loop, waiter_task, NULL, NULL, &t2), 0);
		ck_assert_int_eq(tide_sleep(0.01), 0);
		ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
		ck_assert_int_eq(tide_await(t), SIGUSR1);
		ck_assert_int_eq(tide_await(t2), SIGUSR1);
		tide_future_unref(t);
		tide_future_unref(t2);
	}
	/* A cancel owed before the wait is taken at once. */
	ck_assert_int_eq(tide_task_cancel(tide_current_task()), 1);
	ck_assert_int_eq(tide_signal_wait(SIGUSR1), -ECANCELED);
	ck_assert(is_program_disposition(SIGUSR1, false));
	return 0;
}

START_TEST(test_signal_wait)
{
	set_program_disposition(SIGUSR1, false);
	tt_run_main(&g_loop, signal_wait_main, NULL);
	ck_assert(is_program_disposition(SIGUSR1, false));
}
END_TEST

/* Freed with a handler and watches: the disposition comes back, and
 * nothing the library allocated is left (the counting allocator). */
static void noop_cb(void *arg)
{
	(void)arg;
}

START_TEST(test_free_with_handler)
{
	bool counting = tt_count_allocs() == 0;
	struct tide_loop *loop = tt_loop_new();
	struct tide__sigwatch *w1, *w2;
	struct hits h = {.loop = loop, .signo = SIGUSR1};

	set_program_disposition(SIGUSR1, true);
	set_program_disposition(SIGCHLD, false);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGUSR1, hit_cb, &h), 0);
	ck_assert_int_eq(tide__signal_watch(loop, SIGCHLD, noop_cb, NULL, &w1), 0);
	ck_assert_int_eq(tide__signal_watch(loop, SIGCHLD, noop_cb, NULL, &w2), 0);
	/* A signal taken, its dispatch queued, then the loop closed and freed. */
	ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	ck_assert_uint_eq(h.calls, 0);
	ck_assert(is_program_disposition(SIGUSR1, true));
	ck_assert(is_program_disposition(SIGCHLD, false));
	/* Open, with a signal pending, freed without close. */
	loop = tt_loop_new();
	h.loop = loop;
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGUSR1, hit_cb, &h), 0);
	ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	ck_assert(is_program_disposition(SIGUSR1, true));
	if (counting)
		ck_assert_int_eq(tt_live_allocs(), 0);
	else
		fprintf(stderr, "test_free_with_handler: allocations not counted (no fork mode)\n");
}
END_TEST

/* tide_get_running_loop: NULL outside, the loop in its callbacks and
 * tasks, and the inner loop while a callback runs another loop. */
struct running {
	struct tide_loop *outer, *inner;
	struct tide_loop *in_outer, *in_inner, *after_inner;
};

static void note_inner(void *arg)
{
	struct running *r = arg;

	r->in_inner = tide_get_running_loop();
}

static void note_outer(void *arg)
{
	struct running *r = arg;

	r->in_outer = tide_get_running_loop();
	ck_assert_int_eq(tide_call_soon(r->inner, note_inner, r, NULL), 0);
	ck_assert_int_ge(tide_loop_run_once(r->inner, 0), 1);
	r->after_inner = tide_get_running_loop();
}

static int64_t running_task(void *arg)
{
	return tide_get_running_loop() == arg ? 0 : 1;
}

START_TEST(test_get_running_loop)
{
	struct running r = {0};
	struct tide_future *t;

	ck_assert_ptr_null(tide_get_running_loop());
	r.outer = tt_loop_new();
	r.inner = tt_loop_new();
	ck_assert_ptr_null(tide_get_running_loop());
	ck_assert_int_eq(tide_call_soon(r.outer, note_outer, &r, NULL), 0);
	RUN_UNTIL(r.outer, r.after_inner != NULL);
	ck_assert_ptr_eq(r.in_outer, r.outer);
	ck_assert_ptr_eq(r.in_inner, r.inner);
	ck_assert_ptr_eq(r.after_inner, r.outer);
	ck_assert_ptr_null(tide_get_running_loop());
	ck_assert_int_eq(tide_task_spawn(r.outer, running_task, r.outer, NULL, &t), 0);
	tt_run_until_complete(r.outer, t, 0);
	ck_assert_int_eq(tt_result(t), 0);
	tide_future_unref(t);
	ck_assert_ptr_null(tide_get_running_loop());
	ck_assert_int_eq(tide_loop_free(r.inner), 0);
	ck_assert_int_eq(tide_loop_free(r.outer), 0);
}
END_TEST

/* The library's watch beside a user's handler of the same signal. */
struct watched {
	struct tide__sigwatch *self;
	unsigned calls;
	bool unwatch_self;
	struct tide__sigwatch **drop; /* another watch, dropped from this one */
};

static void watch_cb(void *arg)
{
	struct watched *w = arg;

	w->calls++;
	if (w->unwatch_self) {
		tide__signal_unwatch(w->self);
		w->self = NULL;
	}
	if (w->drop && *w->drop) {
		tide__signal_unwatch(*w->drop);
		*w->drop = NULL;
	}
}

START_TEST(test_watch_beside_handler)
{
	struct tide_loop *loop = tt_loop_new();
	struct hits h = {.loop = loop, .signo = SIGUSR1};
	struct watched a = {0}, b = {0}, c = {0};
	struct tide__sigwatch *w;

	set_program_disposition(SIGUSR1, false);
	ck_assert_int_eq(tide__signal_watch(loop, SIGKILL, watch_cb, &a, &w), -EINVAL);
	ck_assert_ptr_null(w);
	ck_assert_int_eq(tide__signal_watch(loop, SIGUSR1, NULL, &a, &w), -EINVAL);
	ck_assert_int_eq(tide__signal_watch(loop, SIGUSR1, watch_cb, &a, &a.self), 0);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGUSR1, hit_cb, &h), 0);
	ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
	RUN_UNTIL(loop, a.calls == 1 && h.calls == 1);
	/* The user's handler goes: the watch keeps the signal. */
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGUSR1), 1);
	ck_assert(is_library_disposition(SIGUSR1));
	ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
	RUN_UNTIL(loop, a.calls == 2);
	ck_assert_uint_eq(h.calls, 1);
	/* Watches that drop themselves and each other while they run: b
	 * (the newest, so the first to run) drops itself and c, a runs. */
	ck_assert_int_eq(tide__signal_watch(loop, SIGUSR1, watch_cb, &c, &c.self), 0);
	ck_assert_int_eq(tide__signal_watch(loop, SIGUSR1, watch_cb, &b, &b.self), 0);
	b.unwatch_self = true;
	b.drop = &c.self;
	ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
	RUN_UNTIL(loop, a.calls == 3);
	ck_assert_uint_eq(b.calls, 1);
	ck_assert_uint_eq(c.calls, 0);
	ck_assert_ptr_null(b.self);
	ck_assert_ptr_null(c.self);
	/* The last watch goes: the program's disposition is back. */
	tide__signal_unwatch(a.self);
	ck_assert(is_program_disposition(SIGUSR1, false));
	tide__signal_unwatch(NULL);
	/* SIGCHLD is taken with SA_NOCLDSTOP: a stopped child is no event. */
	ck_assert_int_eq(tide__signal_watch(loop, SIGCHLD, watch_cb, &a, &a.self), 0);
	ck_assert(disposition(SIGCHLD).sa_flags & SA_NOCLDSTOP);
	ck_assert(disposition(SIGCHLD).sa_flags & SA_RESTART);
	tide__signal_unwatch(a.self);
	ck_assert_ptr_eq((void *)disposition(SIGCHLD).sa_handler, (void *)SIG_DFL);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* A child of fork(2) gets the program's dispositions back (the parent's
 * loops are not its own), and its own loop can take the signal anew. */
START_TEST(test_fork_child_gets_disposition)
{
	struct tide_loop *loop = tt_loop_new();
	struct hits h = {.loop = loop, .signo = SIGUSR1};
	pid_t pid;
	int st = 0;

	set_program_disposition(SIGUSR1, true);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGUSR1, hit_cb, &h), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct tide_loop *mine;
		struct tide_loop_opts opts;
		struct hits hc = {.signo = SIGUSR1};
		struct sigaction sa;
		int i;

		if (sigaction(SIGUSR1, NULL, &sa) < 0 || sa.sa_sigaction != program_action)
			_exit(10);
		if (tide_loop_add_signal_handler(loop, SIGUSR1, hit_cb, &h) != TIDE_EFORKED)
			_exit(11);
		tt_opts_init(&opts);
		if (tide_loop_new(&opts, &mine) != 0)
			_exit(12);
		hc.loop = mine;
		if (tide_loop_add_signal_handler(mine, SIGUSR1, hit_cb, &hc) != 0)
			_exit(13);
		kill(getpid(), SIGUSR1);
		for (i = 0; i < 200 && !hc.calls; i++)
			tide_loop_run_once(mine, 0.05);
		if (hc.calls != 1)
			_exit(14);
		/* The parent's loop (a copy) goes without touching the registry. */
		if (tide_loop_free(loop) != 0)
			_exit(15);
		if (tide_loop_free(mine) != 0)
			_exit(16);
		if (sigaction(SIGUSR1, NULL, &sa) < 0 || sa.sa_sigaction != program_action)
			_exit(17);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "[%s] child status %#x", tt_cfg->name, st);
	/* The parent still holds the signal. */
	ck_assert(is_library_disposition(SIGUSR1));
	ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
	RUN_UNTIL(loop, h.calls == 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	ck_assert(is_program_disposition(SIGUSR1, true));
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "signal", 120);
	tt_add(&ts, test_handler_runs_on_loop_thread);
	tt_add(&ts, test_add_replaces);
	tt_add(&ts, test_flood_from_thread);
	tt_add(&ts, test_flood_from_thread_to_loop_thread);
	tt_add(&ts, test_flood_from_process);
	tt_add(&ts, test_two_loops_two_threads);
	tt_add(&ts, test_remove_restores_disposition);
	tt_add(&ts, test_handler_removes_itself);
	tt_add(&ts, test_bad_numbers);
	tt_add(&ts, test_signal_wait);
	tt_add(&ts, test_free_with_handler);
	tt_add(&ts, test_get_running_loop);
	tt_add(&ts, test_watch_beside_handler);
	tt_add(&ts, test_fork_child_gets_disposition);
	return tt_run(&ts);
}
