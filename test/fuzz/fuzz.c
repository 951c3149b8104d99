/* SPDX-License-Identifier: MIT */
/*
 * fuzz.c: fuzz.h's functions, linked into both builds of every target
 * (libFuzzer's and the replay's), so a target never needs to know which
 * main it runs under.
 */
#include "config.h"
#include "fuzz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int fuzz_pass;
/* A target that sets nothing gets one pass per input. */
__attribute__((weak)) const int fuzz_replay_passes = 1;
unsigned fuzz_skips;
const char *fuzz_skip_why;

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: invariant broken (%s): ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

void fuzz_skip(const char *why)
{
	fuzz_skips++;
	fuzz_skip_why = why;
}
