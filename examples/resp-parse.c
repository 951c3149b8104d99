/* SPDX-License-Identifier: MIT */
/*
 * resp-parse.c: mini-redis's request parser (resp-parse.h says how it is
 * called). Multibulk commands are parsed as Redis's processMultibulkBuffer
 * checks them, inline ones split as its sdssplitargs splits them.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp-parse.h"

int resp_string2ll(const char *p, size_t n, long long *out)
{
	unsigned long long v = 0, limit;
	int neg = 0;
	size_t i = 0;

	if (n == 0 || n > 20)
		return -1;
	if (n == 1 && p[0] == '0') {
		*out = 0;
		return 0;
	}
	if (p[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i >= n || p[i] < '1' || p[i] > '9')
		return -1;
	limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		if (v > (limit - (unsigned)(p[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	*out = neg ? (long long)(0 - v) : (long long)v;
	return 0;
}

void resp_cmd_free(struct resp_cmd *cmd)
{
	free(cmd->argv);
	free(cmd->scratch);
	cmd->argv = NULL;
	cmd->scratch = NULL;
	cmd->argc = cmd->cap = cmd->scratch_cap = 0;
}

/* The connection cannot go on: its state no longer matters. */
static long fail(struct resp_cmd *cmd, const char *why)
{
	cmd->error = why;
	return RESP_ERROR;
}

static int args_reserve(struct resp_cmd *cmd, size_t n)
{
	if (n > cmd->cap) {
		size_t cap = cmd->cap ? cmd->cap : 16;
		struct resp_arg *a;

		while (cap < n)
			cap *= 2;
		a = realloc(cmd->argv, cap * sizeof(*a));
		if (!a)
			return -1;
		cmd->argv = a;
		cmd->cap = cap;
	}
	return 0;
}

/*
 * The "\r\n" that ends the line starting at p[start], searched in
 * [start, n) from where the last call for this line stopped (st->scan):
 * its position, or NULL. Not found, the search resumes at the last byte
 * next time (it may be the line's '\r'), so a line arriving a byte at a
 * time is searched once. Counts what it looked at.
 */
static const char *find_crlf(struct resp_state *st, const char *p, size_t start, size_t n)
{
	size_t from = st->scan > start ? st->scan : start;
	const char *s = p + from, *e = p + n;

	while (s < e && (s = memchr(s, '\r', (size_t)(e - s))) && e - s >= 2) {
		if (s[1] == '\n') {
			st->examined += (uint64_t)(s - (p + from)) + 2;
			return s;
		}
		s++;
	}
	st->examined += n - from;
	st->scan = n > start + 1 ? n - 1 : start;
	return NULL;
}

/*
 * Whether the line at p (n bytes from p on, its "\r\n" at eol or not
 * found) is longer than max_inline: decided the same however the bytes
 * were split, since without its end in sight the line is known to be too
 * long only once more than max_inline + 1 bytes are there (the last may
 * be its '\r').
 */
static int line_too_long(const struct resp_limits *lim, const char *p, const char *eol, size_t n)
{
	return eol ? (size_t)(eol - p) > lim->max_inline : n > lim->max_inline + 1;
}

/* A decimal count after a '*' or '$' at p, up to "\r\n" at eol. */
static int parse_count(const char *p, const char *eol, long long *out)
{
	return resp_string2ll(p, (size_t)(eol - p), out);
}

/* The next command starts from scratch; examined keeps counting. */
static void state_reset(struct resp_state *st)
{
	uint64_t examined = st->examined;

	memset(st, 0, sizeof(*st));
	st->examined = examined;
}

/*
 * The arguments of the whole multibulk command at p, checked already:
 * one more walk over their "$len" lines (the earlier calls could not keep
 * pointers: the bytes move between calls).
 */
static long collect_args(struct resp_state *st, struct resp_cmd *cmd, const char *p)
{
	size_t pos = st->first;

	if (args_reserve(cmd, (size_t)st->argc) < 0)
		return fail(cmd, "out of memory");
	for (long long i = 0; i < st->argc; i++) {
		const char *eol = memchr(p + pos, '\r', st->pos - pos);
		long long len = 0;

		st->examined += (uint64_t)(eol - (p + pos)) + 2;
		parse_count(p + pos + 1, eol, &len);
		pos = (size_t)(eol - p) + 2;
		cmd->argv[i].p = p + pos;
		cmd->argv[i].n = (size_t)len;
		pos += (size_t)len + 2;
	}
	cmd->argc = (size_t)st->argc;
	pos = st->pos;
	state_reset(st);
	return (long)pos;
}

/*
 * One RESP multibulk command at p (n bytes, p[0] == '*'), parsed on from
 * where the last call stopped: the count line, then each argument's
 * "$len" line and its bytes (skipped, not examined, until their "\r\n").
 */
static long parse_multibulk(struct resp_state *st, const struct resp_limits *lim, struct resp_cmd *cmd,
			    const char *p, size_t n)
{
	const char *eol;
	long long count, len;
	size_t pos;

	if (st->phase == RESP_PHASE_COUNT) {
		eol = find_crlf(st, p, 0, n);
		if (line_too_long(lim, p, eol, n))
			return fail(cmd, "too big mbulk count string");
		if (!eol)
			return RESP_NEED_MORE;
		if (parse_count(p + 1, eol, &count) < 0 || count > (long long)lim->max_args)
			return fail(cmd, "invalid multibulk length");
		pos = (size_t)(eol - p) + 2;
		if (count <= 0) {
			state_reset(st);
			return (long)pos; /* nothing to do, as Redis */
		}
		st->argc = st->left = count;
		st->first = st->pos = st->scan = pos;
		st->phase = RESP_PHASE_ARG;
	}
	while (st->left) {
		pos = st->pos;
		if (st->phase == RESP_PHASE_ARG) {
			if (pos >= n)
				return RESP_NEED_MORE;
			st->examined++;
			if (p[pos] != '$') {
				snprintf(cmd->errbuf, sizeof(cmd->errbuf), "expected '$', got '%c'", p[pos]);
				return fail(cmd, cmd->errbuf);
			}
			eol = find_crlf(st, p, pos, n);
			if (line_too_long(lim, p + pos, eol, n - pos))
				return fail(cmd, "too big bulk count string");
			if (!eol)
				return RESP_NEED_MORE;
			if (parse_count(p + pos + 1, eol, &len) < 0 || len < 0 || (size_t)len > lim->max_bulk)
				return fail(cmd, "invalid bulk length");
			st->bulk = (size_t)len;
			st->pos = pos = (size_t)(eol - p) + 2;
			st->phase = RESP_PHASE_DATA;
		}
		if (n - pos < st->bulk + 2)
			return RESP_NEED_MORE;
		st->examined += 2;
		if (p[pos + st->bulk] != '\r' || p[pos + st->bulk + 1] != '\n')
			return fail(cmd, "invalid bulk format");
		st->pos = st->scan = pos + st->bulk + 2;
		st->left--;
		st->phase = RESP_PHASE_ARG;
	}
	return collect_args(st, cmd, p);
}

static int hex(int c)
{
	return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/*
 * One inline command (a line). Arguments split as Redis's sdssplitargs:
 * blanks separate, "..." with \n \r \t \b \a \\ \" \xHH escapes, '...'
 * with \' only.
 */
static long parse_inline(struct resp_state *st, const struct resp_limits *lim, struct resp_cmd *cmd,
			 const char *p, size_t n)
{
	/* The search for the line's end resumes where the last call's stopped. */
	const char *nl = memchr(p + st->scan, '\n', n - st->scan), *s, *end;
	char *o;
	size_t count = 0;

	st->examined += nl ? (uint64_t)(nl - (p + st->scan)) + 1 : n - st->scan;
	/* Longer than the limit, whether its end came or not (so that how
	 * the bytes were split never decides). */
	if ((nl ? (size_t)(nl - p) : n) > lim->max_inline)
		return fail(cmd, "too big inline request");
	if (!nl) {
		st->scan = n;
		return RESP_NEED_MORE;
	}
	state_reset(st);
	end = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
	if ((size_t)(end - p) + 1 > cmd->scratch_cap) {
		char *sc = realloc(cmd->scratch, (size_t)(end - p) + 1);

		if (!sc)
			return fail(cmd, "out of memory");
		cmd->scratch = sc;
		cmd->scratch_cap = (size_t)(end - p) + 1;
	}
	o = cmd->scratch;
	for (s = p;;) {
		char *arg = o;

		while (s < end && isspace((unsigned char)*s))
			s++;
		if (s == end)
			break;
		if (*s == '"' || *s == '\'') {
			char q = *s++;

			for (;; s++) {
				if (s == end)
					return fail(cmd, "unbalanced quotes in request");
				if (*s == q) {
					s++;
					break;
				}
				if (*s == '\\' && s + 1 < end) {
					if (q == '\'') {
						if (s[1] == '\'') {
							*o++ = '\'';
							s++;
							continue;
						}
					} else if (s[1] == 'x' && s + 3 < end && isxdigit((unsigned char)s[2]) &&
						   isxdigit((unsigned char)s[3])) {
						*o++ = (char)(hex(s[2]) * 16 + hex(s[3]));
						s += 3;
						continue;
					} else {
						const char *from = "nrtba", *to = "\n\r\t\b\a";
						const char *f = memchr(from, s[1], 5);

						*o++ = f ? to[f - from] : s[1];
						s++;
						continue;
					}
				}
				*o++ = *s;
			}
			/* A closing quote must end the argument. */
			if (s < end && !isspace((unsigned char)*s))
				return fail(cmd, "unbalanced quotes in request");
		} else {
			while (s < end && !isspace((unsigned char)*s))
				*o++ = *s++;
		}
		if (args_reserve(cmd, count + 1) < 0)
			return fail(cmd, "out of memory");
		cmd->argv[count].p = arg;
		cmd->argv[count].n = (size_t)(o - arg);
		count++;
	}
	cmd->argc = count;
	return (long)(nl - p) + 1;
}

long resp_parse(struct resp_state *st, const struct resp_limits *lim, struct resp_cmd *cmd, const char *p,
		size_t n)
{
	struct resp_limits l = { RESP_MAX_BULK, RESP_MAX_ARGS, RESP_MAX_INLINE };

	if (lim) {
		l.max_bulk = lim->max_bulk ? lim->max_bulk : l.max_bulk;
		l.max_args = lim->max_args ? lim->max_args : l.max_args;
		l.max_inline = lim->max_inline ? lim->max_inline : l.max_inline;
	}
	cmd->argc = 0;
	cmd->error = NULL;
	/* Fewer bytes than the last call saw: not the same command (the
	 * caller broke the contract), so it starts again rather than read
	 * past the end. */
	if (st->pos > n || st->scan > n)
		state_reset(st);
	if (n == 0)
		return RESP_NEED_MORE;
	st->examined++;
	return p[0] == '*' ? parse_multibulk(st, &l, cmd, p, n) : parse_inline(st, &l, cmd, p, n);
}
