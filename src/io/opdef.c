/* SPDX-License-Identifier: MIT */
/*
 * opdef.c: the op table. One const row per op kind says everything tide
 * knows about that kind: its name (TIDE_DISABLE_OPS), the opcodes the
 * io_uring probe must show for it to run natively, the path it takes
 * without them, what it waits for on the readiness path, and the
 * functions of its family file that perform it, prepare its SQE, route it,
 * cancel it on the loop path and release what it owns (as the kernel's
 * io_uring/opdef.c). A new op kind is one row here plus its family file.
 *
 * The hard part is the _Static_assert below: the table must have exactly
 * one row per kind of tide.h's enum, in the enum's order, so that a kind
 * added there without a row fails the build instead of running off the
 * end of the table.
 */
#include "io/io.h"
#include "io/compat-uring.h"

#include <liburing.h>
#include <poll.h>

const struct tide__opdef tide__opdefs[] = {
	[TIDE_OP_READ] = {
		.name = "read", .opcode = IORING_OP_READ, .flags = TIDE__OPF_NEEDS_CANCEL | TIDE__OPF_OFFSET,
		.fallback = TIDE_PATH_READINESS, .events = POLLIN,
		.route = tide__rw_route, .perform = tide__rw_perform, .blocking = tide__rw_blocking,
		.prep = tide__rw_prep, .defined = tide__buf_defined,
	},
	[TIDE_OP_WRITE] = {
		.name = "write", .opcode = IORING_OP_WRITE, .flags = TIDE__OPF_NEEDS_CANCEL | TIDE__OPF_OFFSET,
		.fallback = TIDE_PATH_READINESS, .events = POLLOUT,
		.route = tide__rw_route, .perform = tide__rw_perform, .blocking = tide__rw_blocking,
		.prep = tide__rw_prep,
	},
	[TIDE_OP_POLL] = {
		/* The readiness path itself: never masked, nothing to perform. */
		.name = "poll", .opcode = IORING_OP_POLL_ADD, .flags = TIDE__OPF_UNMASKABLE | TIDE__OPF_WAIT_ONLY,
		.fallback = TIDE_PATH_READINESS, .prep = tide__poll_prep,
	},
	[TIDE_OP_TIMEOUT] = {
		.name = "timeout", .opcode = IORING_OP_TIMEOUT, .also = IORING_OP_TIMEOUT_REMOVE,
		.cancel_opcode = IORING_OP_TIMEOUT_REMOVE, .fallback = TIDE_PATH_LOOP,
		.start = tide__timeout_start, .loop_cancel = tide__timeout_cancel, .prep = tide__timeout_prep,
	},
	[TIDE_OP_CANCEL] = {
		/* Not submitted by itself: the cancel requests of the other
		 * kinds, counted and masked under this name. */
		.name = "cancel", .opcode = IORING_OP_ASYNC_CANCEL, .fallback = TIDE__NO_PATH,
	},
	[TIDE_OP_ACCEPT] = {
		.name = "accept", .opcode = IORING_OP_ACCEPT, .flags = TIDE__OPF_SOCKET | TIDE__OPF_NEEDS_CANCEL,
		.fallback = TIDE_PATH_READINESS, .events = POLLIN,
		.perform = tide__accept_perform, .prep = tide__accept_prep, .defined = tide__accept_defined,
	},
	[TIDE_OP_CONNECT] = {
		.name = "connect", .opcode = IORING_OP_CONNECT, .flags = TIDE__OPF_SOCKET | TIDE__OPF_NEEDS_CANCEL,
		.fallback = TIDE_PATH_READINESS, .events = POLLOUT,
		.start = tide__connect_start, .perform = tide__connect_perform, .prep = tide__connect_prep,
		.release = tide__connect_release,
	},
	[TIDE_OP_RECV] = {
		.name = "recv", .opcode = IORING_OP_RECV, .flags = TIDE__OPF_SOCKET | TIDE__OPF_NEEDS_CANCEL,
		.fallback = TIDE_PATH_READINESS, .events = POLLIN,
		.perform = tide__recv_perform, .prep = tide__recv_prep, .defined = tide__buf_defined,
	},
	[TIDE_OP_SEND] = {
		.name = "send", .opcode = IORING_OP_SEND, .flags = TIDE__OPF_SOCKET | TIDE__OPF_NEEDS_CANCEL,
		.fallback = TIDE_PATH_READINESS, .events = POLLOUT,
		.perform = tide__send_perform, .prep = tide__send_prep,
	},
	[TIDE_OP_SENDMSG] = {
		.name = "sendmsg", .opcode = IORING_OP_SENDMSG, .flags = TIDE__OPF_SOCKET | TIDE__OPF_NEEDS_CANCEL,
		.fallback = TIDE_PATH_READINESS, .events = POLLOUT,
		.perform = tide__sendmsg_perform, .prep = tide__sendmsg_prep,
	},
	[TIDE_OP_RECVMSG] = {
		.name = "recvmsg", .opcode = IORING_OP_RECVMSG, .flags = TIDE__OPF_SOCKET | TIDE__OPF_NEEDS_CANCEL,
		.fallback = TIDE_PATH_READINESS, .events = POLLIN,
		.perform = tide__recvmsg_perform, .prep = tide__recvmsg_prep, .defined = tide__recvmsg_defined,
	},
	[TIDE_OP_SHUTDOWN] = {
		/* Never blocks: without the opcode it runs on the loop at submit. */
		.name = "shutdown", .opcode = IORING_OP_SHUTDOWN, .flags = TIDE__OPF_SOCKET | TIDE__OPF_NEEDS_CANCEL,
		.fallback = TIDE_PATH_LOOP, .perform = tide__shutdown_perform, .prep = tide__shutdown_prep,
	},
	[TIDE_OP_CLOSE] = {
		.name = "close", .opcode = IORING_OP_CLOSE,
		.flags = TIDE__OPF_SOCKET | TIDE__OPF_NEEDS_CANCEL | TIDE__OPF_CLOSES_FD,
		.fallback = TIDE_PATH_LOOP, .perform = tide__close_perform, .prep = tide__close_prep,
	},
	[TIDE_OP_SEND_ZC] = {
		/* The result comes first, then the notification that the kernel
		 * let go of the buffer (the backend completes on the latter). */
		.name = "send-zc", .opcode = IORING_OP_SEND_ZC,
		.flags = TIDE__OPF_SOCKET | TIDE__OPF_NEEDS_CANCEL | TIDE__OPF_NOTIF,
		.fallback = TIDE__NO_PATH, .prep = tide__send_zc_prep,
	},
	[TIDE_OP_RECV_MULTISHOT] = {
		/* A flag on an older opcode, so the probe cannot see it: the
		 * opcode of the same release (6.0) stands in; it also needs the
		 * provided-buffer ring (the backend registers it). */
		.name = "recv-multishot", .opcode = IORING_OP_RECV, .also = IORING_OP_SEND_ZC,
		.base = TIDE_OP_RECV, .flags = TIDE__OPF_SOCKET | TIDE__OPF_NEEDS_CANCEL,
		.fallback = TIDE__NO_PATH, .prep = tide__recv_ms_prep,
	},
	[TIDE_OP_ACCEPT_MULTISHOT] = {
		/* Multishot accept came with IORING_OP_SOCKET (5.19). */
		.name = "accept-multishot", .opcode = IORING_OP_ACCEPT, .also = IORING_OP_SOCKET,
		.base = TIDE_OP_ACCEPT, .flags = TIDE__OPF_SOCKET | TIDE__OPF_NEEDS_CANCEL,
		.fallback = TIDE__NO_PATH, .prep = tide__accept_ms_prep,
	},
	[TIDE_OP_WAITID] = {
		/* A child's exit: IORING_OP_WAITID (6.7) on its pidfd, else the
		 * pidfd's readiness then waitid(WNOHANG); a child without a
		 * pidfd waits on the loop for SIGCHLD (route). */
		.name = "waitid", .opcode = TIDE_IORING_OP_WAITID, .flags = TIDE__OPF_NEEDS_CANCEL,
		.fallback = TIDE_PATH_READINESS, .events = POLLIN,
		.route = tide__waitid_route, .start = tide__waitid_start, .perform = tide__waitid_perform,
		.prep = tide__waitid_prep, .loop_cancel = tide__waitid_cancel, .defined = tide__waitid_defined,
	},
	[TIDE_OP_READ_MULTISHOT] = {
		/* A pipe's reads from the provided-buffer ring (6.7): without it
		 * a pipe transport reads after readiness (POLL_ADD or epoll). */
		.name = "read-multishot", .opcode = TIDE_IORING_OP_READ_MULTISHOT, .base = TIDE_OP_READ,
		.flags = TIDE__OPF_NEEDS_CANCEL, .fallback = TIDE__NO_PATH, .prep = tide__read_ms_prep,
	},
};

/* One row per kind, no more, no less (the kernel's BUILD_BUG_ON on its own
 * table): a kind added to tide.h moves TIDE__OP_KINDS and needs its row. */
_Static_assert(sizeof(tide__opdefs) / sizeof(tide__opdefs[0]) == TIDE__OP_KINDS,
	       "src/io/opdef.c: one row per enum tide_op_kind");
_Static_assert((int)TIDE__OP_KINDS <= (int)TIDE_OP_KIND_MAX, "tide_loop_stats has a column per kind");

int tide__opdef_find(const char *name, size_t len)
{
	for (int k = 0; k < TIDE__OP_KINDS; k++)
		if (strlen(tide__opdefs[k].name) == len && !strncmp(tide__opdefs[k].name, name, len))
			return k;
	return -1;
}
