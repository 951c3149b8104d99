/* SPDX-License-Identifier: MIT */
/*
 * resolve-hooks.h: src/resolve.c's test hook, shared with test/resolve.c (a
 * statically linked test reaches this hidden symbol). Not part of the API.
 *
 * A test of name-resolution errors must not ask the machine's resolver:
 * that sends DNS queries off the machine. With a hook set, every lookup that
 * may reach the system resolver calls the hook instead, with getaddrinfo's
 * contract: tide_getaddrinfo's lookups of hosts that are not numeric, on
 * the executor (create_connection's and create_datagram_endpoint's names
 * go through it; their numeric hosts never reach a resolver). A
 * result list it returns is freed with freeaddrinfo, so a hook that answers
 * with addresses gets them from getaddrinfo on a numeric host.
 */
#ifndef TIDE_RESOLVE_HOOKS_H
#define TIDE_RESOLVE_HOOKS_H

#include <netdb.h>

typedef int (*tide__getaddrinfo_cb)(const char *host, const char *port, const struct addrinfo *hints,
				    struct addrinfo **res);

/* Sets the hook (NULL: the system's getaddrinfo again). Call it while no
 * lookup runs. */
void tide__set_getaddrinfo_hook(tide__getaddrinfo_cb fn);

#endif /* TIDE_RESOLVE_HOOKS_H */
