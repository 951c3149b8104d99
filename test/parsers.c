/* SPDX-License-Identifier: MIT */
/*
 * test/parsers.c: the example servers' request parsers (examples/
 * http-parse.c for http-hello, examples/resp-parse.c for mini-redis) fed
 * their bytes in pieces, as a connection receives them: byte by byte, in
 * 4 KiB pieces (io_uring's receives), and cut at random, each must give
 * exactly what the whole input given at once gives (the same requests,
 * the same error after the same requests).
 *
 * The driver keeps what has not been parsed, from the first byte of the
 * pending request on, as net-common.c's connections do, and moves it to a
 * fresh allocation before every call: a parser that kept a pointer into
 * earlier bytes would read freed memory (which the sanitizer build
 * catches) or stale bytes (which the comparison catches).
 *
 * No loop is involved: these run once, not per backend configuration.
 */
#include "config.h"

#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "helpers.h"
#include "../examples/http-parse.h"
#include "../examples/resp-parse.h"

/* ------------------------------------------------------------ output -- */

/* What a parse of a whole input produced, as text to compare. */
struct out {
	char *p;
	size_t len, cap;
};

static void out_put(struct out *o, const void *p, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->p = realloc(o->p, o->cap);
		ck_assert_ptr_nonnull(o->p);
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...)
{
	char b[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	ck_assert(n >= 0 && (size_t)n < sizeof(b));
	out_put(o, b, (size_t)n);
}

/* A deterministic generator (xorshift64*), so that a failure repeats. */
static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
	rng_state = s * 0x9E3779B97F4A7C15ull + 1;
}

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static size_t rng_below(size_t n)
{
	return n ? (size_t)(rng() % n) : 0;
}

/* ----------------------------------------------------------- driving -- */

/* How an input is cut: whole, every byte, fixed pieces, or at random. */
enum cut { CUT_WHOLE, CUT_BYTES, CUT_4K, CUT_RANDOM };

static size_t next_piece(enum cut cut, size_t left)
{
	size_t k;

	switch (cut) {
	case CUT_WHOLE:
		return left;
	case CUT_BYTES:
		return 1;
	case CUT_4K:
		k = 4096;
		break;
	default:
		/* Mostly small pieces, sometimes big ones. */
		k = rng_below(8) ? 1 + rng_below(64) : 1 + rng_below(8192);
		break;
	}
	return k < left ? k : left;
}

/*
 * The pending bytes, as a connection keeps them: appended to, consumed
 * from the front, and moved to a fresh allocation before every parse.
 */
struct pending {
	char *p;
	size_t len;
};

static void pending_add(struct pending *pd, const char *p, size_t n)
{
	char *np = malloc(pd->len + n + 1);

	ck_assert_ptr_nonnull(np);
	if (pd->len)
		memcpy(np, pd->p, pd->len);
	if (n)
		memcpy(np + pd->len, p, n);
	free(pd->p);
	pd->p = np;
	pd->len += n;
}

static void pending_move(struct pending *pd)
{
	pending_add(pd, "", 0);
}

static void pending_drop(struct pending *pd, size_t n)
{
	memmove(pd->p, pd->p + n, pd->len - n);
	pd->len -= n;
}

/*
 * One protocol's step: parse what is pending. Returns the bytes taken by
 * a whole request (> 0, written to o), 0 for more, or -1 after writing
 * the error to o.
 */
typedef long (*step_cb)(void *st, const char *p, size_t n, struct out *o, void *arg);

/*
 * The transcript of feeding in (n bytes) cut as cut to one connection's
 * parser state st (zeroed by the caller): requests, then an error or the
 * bytes left.
 */
static void drive(const char *in, size_t n, enum cut cut, step_cb step, void *st, void *arg, struct out *o)
{
	struct pending pd = { 0 };
	size_t off = 0;
	int failed = 0;

	while (off < n && !failed) {
		size_t k = next_piece(cut, n - off);

		pending_add(&pd, in + off, k);
		off += k;
		for (;;) {
			long r;

			pending_move(&pd);
			r = step(st, pd.p, pd.len, o, arg);
			if (r < 0) {
				failed = 1;
				break;
			}
			if (r == 0)
				break;
			ck_assert_uint_le((size_t)r, pd.len);
			pending_drop(&pd, (size_t)r);
		}
	}
	if (!failed)
		out_printf(o, "left %zu\n", pd.len);
	free(pd.p);
}

/* The same on a fresh state of st_size bytes. */
static void drive_fresh(const char *in, size_t n, enum cut cut, step_cb step, size_t st_size, void *arg,
			struct out *o)
{
	void *st = calloc(1, st_size);

	ck_assert_ptr_nonnull(st);
	drive(in, n, cut, step, st, arg, o);
	free(st);
}

/* Every cut of in gives the whole input's transcript. */
static void check_cuts(const char *what, const char *in, size_t n, step_cb step, size_t st_size, void *arg)
{
	struct out whole = { 0 }, o;

	drive_fresh(in, n, CUT_WHOLE, step, st_size, arg, &whole);
	for (int cut = CUT_BYTES; cut <= CUT_RANDOM; cut++) {
		int reps = cut == CUT_RANDOM ? 8 : 1;

		for (int rep = 0; rep < reps; rep++) {
			memset(&o, 0, sizeof(o));
			drive_fresh(in, n, (enum cut)cut, step, st_size, arg, &o);
			ck_assert_msg(o.len == whole.len && !memcmp(o.p, whole.p, o.len),
				      "%s, cut %d (rep %d): got\n%s\nwhole:\n%s", what, cut, rep, o.p ? o.p : "",
				      whole.p ? whole.p : "");
			free(o.p);
		}
	}
	free(whole.p);
}

/*
 * 300 inputs of up to max requests made by gen (seeded, so a failure
 * repeats), each checked as check_cuts does, with the limits small for
 * every other one.
 */
static void check_random(const char *proto, void (*gen)(struct out *o), int max, step_cb step, size_t st_size,
			 void *small)
{
	for (uint64_t seed = 1; seed <= 300; seed++) {
		struct out in = { 0 };
		char what[64];

		rng_seed(seed);
		for (int k = 0; k < 1 + (int)rng_below((size_t)max); k++)
			gen(&in);
		snprintf(what, sizeof(what), "random %s, seed %llu", proto, (unsigned long long)seed);
		rng_seed(seed * 7919);
		check_cuts(what, in.p, in.len, step, st_size, seed % 2 ? small : NULL);
		free(in.p);
	}
}

/*
 * in fed cut as cut to the state st (zeroed), whose examined counter is
 * *examined: the first request parsed begins as first says, and the
 * bytes examined over every call stay within per_byte times in's.
 */
static void check_linear(const char *what, struct out *in, enum cut cut, step_cb step, void *st,
			 const uint64_t *examined, const char *first, unsigned per_byte)
{
	struct out o = { 0 };

	drive(in->p, in->len, cut, step, st, NULL, &o);
	printf("%s, %zu bytes: %llu bytes examined (%.2f per byte)\n", what, in->len,
	       (unsigned long long)*examined, (double)*examined / (double)in->len);
	ck_assert_msg(o.p && !strncmp(o.p, first, strlen(first)), "%s: parsed %.80s", what, o.p ? o.p : "");
	ck_assert_msg(*examined <= per_byte * in->len, "%s: %llu bytes examined for %zu", what,
		      (unsigned long long)*examined, in->len);
	free(in->p);
	free(o.p);
}

/* -------------------------------------------------------------- RESP -- */

static struct resp_limits resp_small = { .max_bulk = 300, .max_args = 12, .max_inline = 80 };

static long resp_step(void *st, const char *p, size_t n, struct out *o, void *arg)
{
	struct resp_cmd cmd = { 0 };
	long r = resp_parse(st, arg, &cmd, p, n);

	if (r < 0) {
		ck_assert_ptr_nonnull(cmd.error);
		out_printf(o, "error %s\n", cmd.error);
	} else if (r > 0) {
		out_printf(o, "command %zu:", cmd.argc);
		for (size_t i = 0; i < cmd.argc; i++) {
			out_printf(o, " [%zu]", cmd.argv[i].n);
			out_put(o, cmd.argv[i].p, cmd.argv[i].n);
		}
		out_printf(o, " (%ld bytes)\n", r);
	}
	resp_cmd_free(&cmd);
	return r < 0 ? -1 : r;
}

static void resp_check(const char *what, const char *in, size_t n, const struct resp_limits *lim)
{
	check_cuts(what, in, n, resp_step, sizeof(struct resp_state), (void *)lim);
}

#define RESP_CHECK(s) resp_check(s, s, sizeof(s) - 1, NULL)
#define RESP_CHECK_SMALL(s) resp_check(s, s, sizeof(s) - 1, &resp_small)

START_TEST(test_resp_cases)
{
	/* What clients send, pipelined, with a command split anywhere. */
	RESP_CHECK("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
	/* Bulk bytes that look like the protocol. */
	RESP_CHECK("*2\r\n$4\r\nECHO\r\n$8\r\n\r\n*1\r\n$\r\n*1\r\n$4\r\nPING\r\n");
	RESP_CHECK("*0\r\n*-1\r\n*1\r\n$0\r\n\r\n");
	/* Inline commands with Redis's quoting, blank lines, bare LF. */
	RESP_CHECK("PING\r\nECHO \"a b\\x41\\n\" 'it''s' '\\'x'\r\n\r\n  \nSET k v\nGET k\r\n");
	/* Inline and multibulk mixed, a partial one left at the end. */
	RESP_CHECK("INCR cnt\r\n*2\r\n$4\r\nINCR\r\n$3\r\ncnt\r\n*2\r\n$3\r\nGE");
	/* Errors, after the commands before them. */
	RESP_CHECK("PING\r\n*2\r\n$3\r\nGET\r\n:1\r\n");
	RESP_CHECK("PING\r\n*x\r\n");
	RESP_CHECK("*1\r\n$-5\r\n");
	RESP_CHECK("*1\r\n$3\r\nabcXY*1\r\n$4\r\nPING\r\n");
	RESP_CHECK("ECHO \"unbalanced\r\nPING\r\n");
	RESP_CHECK("ECHO \"a\"b\r\n");
	/* The limits, reached the same way however the bytes come. */
	RESP_CHECK_SMALL("*13\r\n");
	RESP_CHECK_SMALL("*1\r\n$301\r\n");
	RESP_CHECK_SMALL("*1\r\n$300\r\n");
	RESP_CHECK_SMALL("*000000000000000000000000000000000000000000000000000000000000000000000000000000000001\r\n");
	RESP_CHECK_SMALL("*1\r\n$00000000000000000000000000000000000000000000000000000000000000000000000000000000001\r\n");
	RESP_CHECK_SMALL("ECHO 0123456789012345678901234567890123456789012345678901234567890123456789012345\r\n");
	RESP_CHECK_SMALL("ECHO 01234567890123456789012345678901234567890123456789012345678901234567890123\r\n");
	RESP_CHECK_SMALL("ECHO 012345678901234567890123456789012345678901234567890123456789012345678901234\r\n");
}
END_TEST

/* A random byte that is often one the protocol cares about. */
static char resp_byte(void)
{
	static const char special[] = "\r\n*$'\"\\ x0123456789-";

	return rng_below(3) ? special[rng_below(sizeof(special) - 1)] : (char)rng();
}

/* Appends a random command, well formed or (sometimes) broken. */
static void resp_gen(struct out *o)
{
	size_t argc = rng_below(6), len;

	if (rng_below(4) == 0) {
		/* Inline: words, quoted or not. */
		for (size_t i = 0; i < argc; i++) {
			len = rng_below(6);
			out_put(o, i ? " " : "", i ? 1 : 0);
			if (rng_below(3) == 0)
				out_put(o, "\"", 1);
			for (size_t k = 0; k < len; k++) {
				char c = (char)('a' + rng_below(26));

				out_put(o, &c, 1);
			}
			if (rng_below(3) == 0)
				out_put(o, "\"", 1);
		}
		out_put(o, "\r\n", rng_below(2) ? 2 : 1);
		return;
	}
	out_printf(o, "*%zu\r\n", argc);
	for (size_t i = 0; i < argc; i++) {
		len = rng_below(5) ? rng_below(40) : rng_below(400);
		out_printf(o, "$%zu\r\n", len);
		for (size_t k = 0; k < len; k++) {
			char c = resp_byte();

			out_put(o, &c, 1);
		}
		out_put(o, "\r\n", 2);
	}
	/* One damaged byte, now and then. */
	if (o->len && rng_below(12) == 0)
		o->p[rng_below(o->len)] = resp_byte();
}

START_TEST(test_resp_random)
{
	check_random("RESP", resp_gen, 12, resp_step, sizeof(struct resp_state), &resp_small);
}
END_TEST

/*
 * A command of 100,000 arguments arriving in 4 KiB pieces (io_uring's
 * receives) is parsed in work linear in its size: the bytes the parser
 * examines, over every call, stay within a small multiple of the
 * command's. A parser that starts again from the first byte on each
 * receive examines every argument's header again each time (quadratic:
 * the 1.1 MB command below cost 86 times its size that way).
 */
START_TEST(test_resp_linear)
{
	struct out in = { 0 };
	struct resp_state st = { 0 };
	const size_t nargs = 100000;

	out_printf(&in, "*%zu\r\n", nargs);
	for (size_t i = 0; i < nargs; i++)
		out_printf(&in, "$%zu\r\n%0*zu\r\n", 1 + i % 9, (int)(1 + i % 9), i % 9);
	check_linear("RESP, 100,000 arguments in 4 KiB pieces", &in, CUT_4K, resp_step, &st, &st.examined,
		     "command 100000:", 3);
}
END_TEST

/* -------------------------------------------------------------- HTTP -- */

static struct http_limits http_small = { .max_header = 120, .max_body = 50 };

/* As http-hello takes a request: its headers, then its body. */
static long http_step(void *st, const char *p, size_t n, struct out *o, void *arg)
{
	struct http_request req;
	long r = http_parse(st, arg, p, n, &req);

	if (r < 0) {
		out_printf(o, "error %ld\n", r);
		return -1;
	}
	if (r == 0 || n - (size_t)r < req.content_length)
		return 0;
	out_printf(o, "request head %d 1.%d keep-alive %d body %llu (%ld bytes of headers)\n", req.head,
		   req.version_minor, req.keep_alive, (unsigned long long)req.content_length, r);
	out_put(o, p + r, (size_t)req.content_length);
	out_put(o, "\n", 1);
	return r + (long)req.content_length;
}

static void http_check(const char *what, const char *in, size_t n, const struct http_limits *lim)
{
	check_cuts(what, in, n, http_step, sizeof(struct http_state), (void *)lim);
}

#define HTTP_CHECK(s) http_check(s, s, sizeof(s) - 1, NULL)
#define HTTP_CHECK_SMALL(s) http_check(s, s, sizeof(s) - 1, &http_small)

START_TEST(test_http_cases)
{
	HTTP_CHECK("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n"
		   "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
	HTTP_CHECK("HEAD / HTTP/1.0\r\nConnection: Keep-Alive, foo\r\n\r\n"
		   "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\n\r\n\r\n\rGET / HTTP/1.1\r\n\r\n");
	/* \r\n\r inside a header line, and an unfinished request. */
	HTTP_CHECK("GET / HTTP/1.1\r\nX: a\rb\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r");
	HTTP_CHECK("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	HTTP_CHECK("GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n");
	HTTP_CHECK("GET / HTTP/2.0\r\n\r\n");
	HTTP_CHECK("GET /\r\n\r\n");
	HTTP_CHECK("GET / HTTP/1.1\r\nno colon\r\n\r\n");
	HTTP_CHECK("GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n");
	/* The limits, reached the same way however the bytes come. */
	HTTP_CHECK_SMALL("GET / HTTP/1.1\r\nContent-Length: 51\r\n\r\n");
	HTTP_CHECK_SMALL("GET / HTTP/1.1\r\nContent-Length: 50\r\n\r\n01234567890123456789012345678901234567890123456789");
	HTTP_CHECK_SMALL("GET / HTTP/1.1\r\nX: 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234\r\n\r\n");
	HTTP_CHECK_SMALL("GET / HTTP/1.1\r\nX: 01234567890123456789012345678901234567890123456789012345678901234567890123456789012345\r\n\r\n");
	HTTP_CHECK_SMALL("GET / HTTP/1.1\r\nX: 012345678901234567890123456789012345678901234567890123456789012345678901234567890123456\r\n\r\n");
}
END_TEST

/* Appends a random request, well formed or (sometimes) broken. */
static void http_gen(struct out *o)
{
	static const char *const heads[] = { "Host: a", "Connection: close", "Connection: keep-alive",
					     "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "Accept: */*",
					     "Content-Length: 3", "content-length: 0" };
	size_t nh = rng_below(5), body = 0;

	out_printf(o, "%s /%zu HTTP/1.%d\r\n", rng_below(4) ? "GET" : "HEAD", rng_below(100), (int)rng_below(2));
	for (size_t i = 0; i < nh; i++) {
		const char *h = heads[rng_below(sizeof(heads) / sizeof(heads[0]))];

		if (!strncasecmp(h, "content-length", 14))
			body = strtoul(h + 16, NULL, 10);
		out_printf(o, "%s\r\n", h);
	}
	out_put(o, "\r\n", 2);
	out_put(o, "abc", body);
	if (o->len && rng_below(10) == 0)
		o->p[rng_below(o->len)] = "\r\n :x"[rng_below(5)];
}

START_TEST(test_http_random)
{
	check_random("HTTP", http_gen, 8, http_step, sizeof(struct http_state), &http_small);
}
END_TEST

/*
 * Headers of 8,000 bytes arriving a byte at a time (a slow client) are
 * searched for their end once, not once per byte (31 million bytes).
 */
START_TEST(test_http_linear)
{
	struct out in = { 0 };
	struct http_state st = { 0 };

	out_printf(&in, "GET / HTTP/1.1\r\n");
	while (in.len < 7900)
		out_printf(&in, "X-Filler-%zu: %s\r\n", in.len, "0123456789abcdef0123456789abcdef");
	out_printf(&in, "\r\n");
	check_linear("HTTP, headers a byte at a time", &in, CUT_BYTES, http_step, &st, &st.examined, "request ", 6);
}
END_TEST

int main(void)
{
	struct tt_suite ts;
	TCase *tc;

	tt_suite_init(&ts, "parsers", 120);
	tc = tt_tcase(&ts, "pieces");
	tcase_add_test(tc, test_resp_cases);
	tcase_add_test(tc, test_resp_random);
	tcase_add_test(tc, test_http_cases);
	tcase_add_test(tc, test_http_random);
	tcase_add_test(tc, test_resp_linear);
	tcase_add_test(tc, test_http_linear);
	return tt_run(&ts);
}
