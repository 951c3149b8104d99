/* SPDX-License-Identifier: MIT */
/*
 * cancel.c: no cancellation is ever lost, whatever ops the cancel paths
 * may use. Besides the three usual configurations, the tests run with the
 * ops the cancel paths depend on masked one at a time: ASYNC_CANCEL
 * ("cancel": readiness ops are then cancelled by POLL_REMOVE, which a
 * poll busy with a wake-up answers -EALREADY and then re-arms) and
 * TIMEOUT/TIMEOUT_REMOVE ("timeout").
 *
 * Each cycle arms a receive and cancels it while its socket's wait queue
 * is busy: one thread sends bytes to it and another takes them, so the
 * receive's poll is woken by bytes that are gone when it looks, and
 * re-arms. The cancelled op must complete (cancelled, or with bytes it
 * won): a lost cancel shows as a cycle that never ends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

static const struct tt_config cfg_nocancel = {"io_uring-nocancel", "io_uring", "cancel", 1};
static const struct tt_config cfg_notimeout = {"io_uring-notimeout", "io_uring", "timeout", 1};

static void use_nocancel(void)
{
	tt_cfg = &cfg_nocancel;
}

static void use_notimeout(void)
{
	tt_cfg = &cfg_notimeout;
}

struct pump {
	int peer;        /* sends a byte at a time to the loop's socket */
	int mine;        /* the loop's socket, which this thread reads too */
	atomic_bool stop;
};

static void *pump_send(void *arg)
{
	struct pump *p = arg;

	while (!atomic_load(&p->stop))
		if (send(p->peer, "x", 1, MSG_DONTWAIT) < 0 && errno != EAGAIN)
			break;
	return NULL;
}

static void *pump_drain(void *arg)
{
	struct pump *p = arg;
	char buf[65536];

	while (!atomic_load(&p->stop))
		if (recv(p->mine, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno != EAGAIN)
			break;
	return NULL;
}

/* Runs until f is done; fails the test past the hang bound. */
static void run_until_done(struct tide_loop *loop, struct tide_future *f, int cycle)
{
	uint64_t end = tt_mono_ns() + TT_HANG_NS;

	while (!tide_future_done(f)) {
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
		ck_assert_msg(tt_mono_ns() < end, "[%s] cycle %d: a cancelled op never completed (cancel lost)",
			      tt_cfg->name, cycle);
	}
}

START_TEST(test_recv_cancel_under_wakeups)
{
	struct tide_loop *loop = tt_loop_new();
	struct pump p = {0};
	pthread_t ts, td;
	int sv[2], cycles = getenv("TT_CYCLES") ? atoi(getenv("TT_CYCLES")) : 3000;
	char buf[64];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	p.mine = sv[0];
	p.peer = sv[1];
	ck_assert_int_eq(pthread_create(&ts, NULL, pump_send, &p), 0);
	ck_assert_int_eq(pthread_create(&td, NULL, pump_drain, &p), 0);
	for (int i = 0; i < cycles; i++) {
		struct tide_future *f;

		ck_assert_int_eq(tide_op_recv(loop, sv[0], buf, sizeof(buf), 0, &f), 0);
		if (i & 1)
			ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
		tide_future_cancel(f);
		run_until_done(loop, f, i);
		/* Cancelled, or the bytes it won the race for. */
		{
			int64_t n = 0;
			int r = tide_future_result(f, &n, NULL);
			ck_assert_msg(r == -ECANCELED || (r == 0 && n > 0), "[%s] cycle %d: %d", tt_cfg->name, i, r);
		}
		tide_future_unref(f);
	}
	atomic_store(&p.stop, true);
	pthread_join(ts, NULL);
	pthread_join(td, NULL);
	ck_assert_int_eq(tide_loop_shutdown(loop, TT_HANG_S), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_timeout_cancel_cycles)
{
	struct tide_loop *loop = tt_loop_new();

	for (int i = 0; i < 3000; i++) {
		struct tide_future *f;

		ck_assert_int_eq(tide_op_timeout(loop, 60, &f), 0);
		if (i & 1)
			ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
		ck_assert_int_eq(tide_future_cancel(f), 1);
		run_until_done(loop, f, i);
		ck_assert(tide_future_cancelled(f));
		tide_future_unref(f);
	}
	ck_assert_int_eq(tide_loop_shutdown(loop, TT_HANG_S), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

int main(void)
{
	struct tt_suite ts;
	TCase *tc;

	tt_suite_init(&ts, "cancel", 120);
	tt_add(&ts, test_recv_cancel_under_wakeups);
	tt_add(&ts, test_timeout_cancel_cycles);
	if (ts.tc[TT_URING]) {
		tc = tt_tcase(&ts, "io_uring-nocancel");
		tcase_add_checked_fixture(tc, use_nocancel, NULL);
		tcase_add_test(tc, test_recv_cancel_under_wakeups);
		tcase_add_test(tc, test_timeout_cancel_cycles);
		tc = tt_tcase(&ts, "io_uring-notimeout");
		tcase_add_checked_fixture(tc, use_notimeout, NULL);
		tcase_add_test(tc, test_recv_cancel_under_wakeups);
		tcase_add_test(tc, test_timeout_cancel_cycles);
	}
	return tt_run(&ts);
}
