/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h: what tide's fuzz targets share. A target is one file,
 * test/fuzz/<name>.c, that defines libFuzzer's entry point
 * LLVMFuzzerTestOneInput and nothing else public; it is built two ways
 * (test/fuzz/local.mk):
 *
 * - with clang's libFuzzer (make fuzz): -fsanitize=fuzzer,address,undefined,
 *   against the library's sources compiled the same way, so the fuzzer
 *   sees tide's branches, not only the target's;
 * - as a plain program with test/fuzz/replay.c's main(), which runs every
 *   input of test/fuzz/corpus/<name>/ (make check) or the files named on
 *   its command line, so found crashers stay fixed without clang.
 *
 * The hard part is that one file serves both: the target may not assume
 * either main, so what the replay needs from it (how many passes an
 * input gets, why one was skipped) goes through this header.
 */
#ifndef TIDE_FUZZ_H
#define TIDE_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input, read front to back; past its end every read gives zeros. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline unsigned fuzz_u8(struct fuzz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* Up to want bytes of the input, in place: how many there were. */
static inline size_t fuzz_bytes(struct fuzz_in *in, const uint8_t **p, size_t want)
{
	size_t k = want < in->n ? want : in->n;

	*p = in->p;
	in->p += k;
	in->n -= k;
	return k;
}

/*
 * A broken invariant: prints the file, line and message and aborts, which
 * libFuzzer reports as a crash (keeping the input) and make check as a
 * failed test.
 */
__attribute__((noreturn, format(printf, 4, 5))) void fuzz_fail(const char *file, int line, const char *cond,
							       const char *fmt, ...);
#define FUZZ_CHECK(cond, ...)                                                 \
	do {                                                                  \
		if (!(cond))                                                  \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);    \
	} while (0)

/*
 * The replay runs each input fuzz_replay_passes times (a target sets it,
 * for instance to run an input on every backend configuration), with
 * fuzz_pass 0, 1, ...; under libFuzzer fuzz_pass stays 0.
 */
extern int fuzz_pass;
extern const int fuzz_replay_passes;

/* This input (or pass) cannot run on this machine, and why: the replay
 * counts it as a skipped check. */
void fuzz_skip(const char *why);

/*
 * The parser targets' check: feed(data, n, seed, whole, seen) feeds a
 * connection's bytes to a parser as its server does, whole or in pieces
 * (sizes drawn from seed), and records what it answered in seen (through
 * fuzz_mix, in order); both ways must agree. The input's first two bytes
 * are the seed.
 */
struct fuzz_seen {
	uint64_t digest;  /* of the answers, in order (fuzz_mix) */
	unsigned answers; /* requests or commands */
	long error;       /* the parser's error, 0 if none */
};
typedef void (*fuzz_feed_cb)(const uint8_t *data, size_t n, uint32_t seed, int whole, struct fuzz_seen *seen);
void fuzz_mix(struct fuzz_seen *s, const void *p, size_t n);
void fuzz_whole_vs_pieces(const uint8_t *data, size_t size, fuzz_feed_cb feed);
/*
 * A feed's step: the next piece of the connection's bytes in goes to the
 * end of buf (*len bytes so far, and room for all of in): all that is
 * left when whole, else 1 to 97 bytes (sizes drawn from *seed), fewer at
 * the end. Returns how many, 0 once in is empty.
 */
size_t fuzz_next_piece(struct fuzz_in *in, uint32_t *seed, int whole, char *buf, size_t *len);

/* The replay's side (fuzz.c): the skips so far, and the last reason. */
extern unsigned fuzz_skips;
extern const char *fuzz_skip_why;

#endif /* TIDE_FUZZ_H */
