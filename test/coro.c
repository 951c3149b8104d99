/* SPDX-License-Identifier: MIT */
/*
 * coro.c (test): the context switch of this machine's architecture, driven
 * directly (not through tasks) by coro-driver.c: callee-saved registers,
 * per-context floating-point control state, stack alignment, round robin
 * over several coroutines. test/coro-aarch64 runs the same driver under
 * qemu-user for AArch64.
 */
#include <check.h>
#include <stdlib.h>

#include "task/coro.h"

int coro_driver_run(struct tide_loop *loop, char *msg, size_t len);

START_TEST(test_switch)
{
	struct tide_loop loop;
	char msg[256] = "";

	memset(&loop, 0, sizeof(loop));
	loop.task_stack_size = 64 * 1024;
	ck_assert_msg(coro_driver_run(&loop, msg, sizeof(msg)) == 0, "%s", msg);
	/* The pool kept the stacks of the loop's default size: reuse them. */
	ck_assert_uint_eq(loop.free_stacks_n, 8);
	ck_assert_msg(coro_driver_run(&loop, msg, sizeof(msg)) == 0, "%s", msg);
	ck_assert_uint_eq(loop.free_stacks_n, 8);
	tide__stack_pool_fini(&loop);
	ck_assert_uint_eq(loop.free_stacks_n, 0);
}
END_TEST

#if defined(TIDE_CORO_SHSTK_FALLBACK)
/* A -fcf-protection build: the ucontext switch it takes under an active
 * shadow stack passes the same driver (forced here, where none is on). */
START_TEST(test_switch_shstk_fallback)
{
	struct tide_loop loop;
	char msg[256] = "";

	memset(&loop, 0, sizeof(loop));
	loop.task_stack_size = 64 * 1024;
	tide__coro_force_ucontext = true;
	ck_assert(tide__coro_uses_ucontext());
	ck_assert_msg(coro_driver_run(&loop, msg, sizeof(msg)) == 0, "%s", msg);
	tide__coro_force_ucontext = false;
	tide__stack_pool_fini(&loop);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("coro");
	TCase *tc = tcase_create("switch");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_switch);
#if defined(TIDE_CORO_SHSTK_FALLBACK)
	tcase_add_test(tc, test_switch_shstk_fallback);
#endif
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
