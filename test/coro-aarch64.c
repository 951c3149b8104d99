/* SPDX-License-Identifier: MIT */
/*
 * coro-aarch64.c (test): builds test/coro-driver.c with src/task/coro.c and
 * src/task/coro-aarch64.S for AArch64 with the cross compiler and runs it under
 * qemu-user, so the AArch64 switch is tested on an x86-64 machine. Exits 77
 * (skip) where aarch64-linux-gnu-gcc or qemu-aarch64 is missing.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int have(const char *tool)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

START_TEST(test_aarch64_switch_under_qemu)
{
	char dir[] = "/tmp/tide-aarch64-XXXXXX", cmd[2048], out[512] = "";
	FILE *p;
	int rc;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* coro.c wants a config.h: an empty one (no Valgrind, asm switch). */
	snprintf(cmd, sizeof(cmd), "touch %s/config.h && aarch64-linux-gnu-gcc -static -O2 -DCORO_DRIVER_MAIN "
		 "-I%s -I%s/src -I%s/include -o %s/driver %s/test/coro-driver.c %s/src/task/coro.c "
		 "%s/src/task/coro-aarch64.S -lm 2>&1",
		 dir, dir, TOP_SRCDIR, TOP_SRCDIR, dir, TOP_SRCDIR, TOP_SRCDIR, TOP_SRCDIR);
	rc = system(cmd);
	ck_assert_msg(rc == 0, "cross build failed: %s", cmd);
	snprintf(cmd, sizeof(cmd), "qemu-aarch64 %s/driver 2>&1", dir);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	if (!fgets(out, sizeof(out), p))
		out[0] = '\0';
	rc = pclose(p);
	printf("aarch64 under qemu: %s", out);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	ck_assert_msg(rc == 0 && strstr(out, "all checks passed"), "aarch64 driver: %s", out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("coro-aarch64");
	TCase *tc = tcase_create("qemu");
	SRunner *sr;
	int failed;

	if (!have("aarch64-linux-gnu-gcc") || !have("qemu-aarch64")) {
		printf("Skipped: 1 check: the aarch64 context switch: aarch64-linux-gnu-gcc or qemu-aarch64 is missing\n");
		return 77;
	}
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_aarch64_switch_under_qemu);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
