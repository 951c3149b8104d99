# SPDX-License-Identifier: MIT
# The tutorial's examples, built with the library (not installed) and run by
# ./quickstart demo.
noinst_PROGRAMS += examples/seed-stopper examples/seed-future \
	examples/seed-print-sum examples/seed-task
examples_seed_stopper_SOURCES = examples/seed-stopper.c
examples_seed_stopper_LDADD = src/libtide.la
examples_seed_future_SOURCES = examples/seed-future.c
examples_seed_future_LDADD = src/libtide.la
examples_seed_print_sum_SOURCES = examples/seed-print-sum.c
examples_seed_print_sum_LDADD = src/libtide.la
examples_seed_task_SOURCES = examples/seed-task.c
examples_seed_task_LDADD = src/libtide.la

# CI's script travels with the tarball too (quickstart and README.md are in
# the top Makefile.am's EXTRA_DIST).
EXTRA_DIST += .ci/run
