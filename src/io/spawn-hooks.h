/* SPDX-License-Identifier: MIT */
/*
 * spawn-hooks.h: src/io/spawn.c's test hook, shared with test/subprocess.c
 * (a test linked with libtide-internal reaches this hidden symbol). Not
 * part of the API.
 *
 * The path without pidfds (kernels before 5.3, or a seccomp filter that
 * denies them) must be tested on a kernel that has them: with the hook on,
 * children are spawned without a pidfd, so the loop reaps them through
 * SIGCHLD and waitpid(pid, WNOHANG) as it would there.
 */
#ifndef TIDE_SPAWN_HOOKS_H
#define TIDE_SPAWN_HOOKS_H

#include <stdbool.h>

/* Children spawned from now on get no pidfd (true), or do again (false). */
void tide__set_spawn_no_pidfd(bool on);

#endif /* TIDE_SPAWN_HOOKS_H */
