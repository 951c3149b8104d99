/* SPDX-License-Identifier: MIT */
/*
 * resp-parse.h: mini-redis's request parser, on its own so that it can be
 * unit-tested and fuzzed: RESP multibulk commands (what clients send) and
 * inline commands (what you type into nc or telnet), with Redis's quoting.
 * Pure: no tide call, no I/O; it only grows the argument arrays it is
 * given (malloc).
 *
 * The bytes of one connection arrive in pieces. The caller keeps what has
 * not been parsed yet from the first byte of the pending command on, and
 * calls resp_parse with all of it (the same bytes as the last call plus
 * the new ones; they may have moved). resp_parse answers one of:
 *
 *   > 0  a whole command of that many bytes: cmd->argc arguments in
 *        cmd->argv, valid until the next call with cmd (they point into
 *        the bytes given or into cmd's own memory);
 *   RESP_NEED_MORE (0)  not complete yet: call again with more bytes;
 *   RESP_ERROR (< 0)  a protocol error: cmd->error says what, in Redis's
 *        words ("invalid bulk length"); the connection cannot go on.
 *
 * A command of zero arguments ("*0\r\n", a blank inline line) is a
 * command with cmd->argc 0: there is nothing to run.
 */
#ifndef EXAMPLES_RESP_PARSE_H
#define EXAMPLES_RESP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* What a command may be; a zero field takes the default. */
struct resp_limits {
	size_t max_bulk;   /* one bulk argument, bytes (default RESP_MAX_BULK) */
	size_t max_args;   /* arguments of a multibulk command (default RESP_MAX_ARGS) */
	size_t max_inline; /* an inline command, or a count line, bytes (default RESP_MAX_INLINE) */
};

#define RESP_MAX_BULK ((size_t)64 * 1024 * 1024)
#define RESP_MAX_ARGS ((size_t)1024 * 1024)
#define RESP_MAX_INLINE ((size_t)64 * 1024)

struct resp_arg {
	const char *p;
	size_t n;
};

/*
 * A parsed command's arguments. Its memory is reused from command to
 * command (mini-redis keeps one per loop); zeroed to start, freed with
 * resp_cmd_free.
 */
struct resp_cmd {
	struct resp_arg *argv;
	size_t argc;
	size_t cap;        /* argv's room */
	char *scratch;     /* an inline command's arguments, unquoted */
	size_t scratch_cap;
	const char *error; /* after RESP_ERROR: what was wrong */
	char errbuf[64];
};

enum { RESP_PHASE_COUNT, RESP_PHASE_ARG, RESP_PHASE_DATA };

/*
 * What one connection keeps between calls, so that a command arriving in
 * pieces is parsed once (in time linear in its size), not again from its
 * first byte on every call: zeroed at the start, and by resp_parse once a
 * command is whole. examined counts the bytes the parser looked at, over
 * all calls (for the tests).
 */
struct resp_state {
	uint64_t examined;
	int phase;        /* multibulk: RESP_PHASE_* (the count line, an argument's "$len" line or bytes) */
	long long argc;   /* multibulk: the arguments the count line said */
	long long left;   /* multibulk: the arguments not parsed yet */
	size_t first;     /* multibulk: where the first argument's "$len" line starts */
	size_t pos;       /* the bytes parsed so far (whole lines and arguments) */
	size_t scan;      /* where the search for the current line's end resumes */
	size_t bulk;      /* RESP_PHASE_DATA: the argument's length */
};

enum { RESP_NEED_MORE = 0, RESP_ERROR = -1 };

/* lim may be NULL (the defaults). */
long resp_parse(struct resp_state *st, const struct resp_limits *lim, struct resp_cmd *cmd, const char *p,
		size_t n);
void resp_cmd_free(struct resp_cmd *cmd);

/* Redis's string2ll: the whole string, no spaces, no '+', no leading zero. 0 or -1. */
int resp_string2ll(const char *p, size_t n, long long *out);

#endif /* EXAMPLES_RESP_PARSE_H */
