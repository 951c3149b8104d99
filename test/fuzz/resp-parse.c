/* SPDX-License-Identifier: MIT */
/*
 * test/fuzz/resp-parse.c: mini-redis's command parser
 * (examples/resp-parse.c) fed a connection's bytes two ways, whole and in
 * pieces (sizes from the input), as mini-redis feeds it: the pending bytes
 * from the first byte of the command on. Both ways must give the same
 * commands (every argument's bytes) and the same error, and never claim
 * bytes they were not given.
 */
#include "fuzz.h"
#include "resp-parse.h"

#include <stdlib.h>
#include <string.h>

static void feed(const uint8_t *data, size_t n, uint32_t seed, int whole, struct fuzz_seen *s)
{
	const struct resp_limits lim = { .max_bulk = 1024, .max_args = 64, .max_inline = 256 };
	struct resp_state st = { 0 };
	struct resp_cmd cmd = { 0 };
	struct fuzz_in in = { data, n };
	char *buf = malloc(n + 1);
	size_t len = 0;

	while (buf && in.n && !s->error) {
		fuzz_next_piece(&in, &seed, whole, buf, &len);
		while (len) {
			long r = resp_parse(&st, &lim, &cmd, buf, len);

			if (r == RESP_NEED_MORE)
				break;
			if (r < 0) {
				FUZZ_CHECK(cmd.error != NULL, "error %ld without a reason", r);
				s->error = r;
				fuzz_mix(s, cmd.error, strlen(cmd.error));
				break;
			}
			FUZZ_CHECK((size_t)r <= len, "answered %ld bytes of %zu", r, len);
			/* (max_args bounds a multibulk command; an inline one is
			 * bounded by max_inline bytes.) */
			s->answers++;
			fuzz_mix(s, &r, sizeof(r));
			fuzz_mix(s, &cmd.argc, sizeof(cmd.argc));
			for (size_t i = 0; i < cmd.argc; i++) {
				FUZZ_CHECK(cmd.argv[i].n <= lim.max_bulk, "an argument of %zu bytes", cmd.argv[i].n);
				fuzz_mix(s, &cmd.argv[i].n, sizeof(cmd.argv[i].n));
				fuzz_mix(s, cmd.argv[i].p, cmd.argv[i].n);
			}
			memmove(buf, buf + r, len - (size_t)r);
			len -= (size_t)r;
		}
	}
	resp_cmd_free(&cmd);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_whole_vs_pieces(data, size, feed);
	return 0;
}
