/* SPDX-License-Identifier: MIT */
/*
 * replay.c: the main() of a fuzz target built without libFuzzer: it runs
 * the target on inputs kept as files, so the corpus (the seeds and every
 * crasher found, test/fuzz/corpus/<target>/) is a regression test in
 * make check, on any compiler.
 *
 *   <target>-replay [FILE|DIR]...
 *
 * With no argument it replays the corpus folder it was built for
 * (FUZZ_CORPUS_DIR). A folder's files run in name order. Each input runs
 * fuzz_replay_passes times (fuzz.h). The end is a summary line in Check's
 * format, which ./quickstart test reads, and "Skipped: N checks: why"
 * for the passes the target could not run here.
 *
 * The hard part is a hang: an input that never returns would stall make
 * check without saying which input it was, so each pass runs under an
 * alarm (FUZZ_REPLAY_TIMEOUT seconds, default 120) whose handler names
 * the input and aborts.
 */
#include "config.h"
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FUZZ_CORPUS_DIR
#error "FUZZ_CORPUS_DIR: the folder replayed when no argument is given"
#endif

/* What runs now, for the alarm's message. */
static const char *current;
static unsigned current_pass;
static unsigned timeout_s = 120;

static void on_alarm(int sig)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "replay: %s (pass %u) did not finish in %u s: a hang\n",
			 current ? current : "?", current_pass, timeout_s);

	(void)sig;
	if (n > 0)
		(void)!write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	abort();
}

/* The whole file, in a buffer of exactly its size (so ASan sees an
 * overread); *n its length. NULL with errno on failure. */
static uint8_t *read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc(len ? (size_t)len : 1);
		if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
			free(buf);
			buf = NULL;
			errno = EIO;
		}
		*n = (size_t)len;
	}
	fclose(f);
	return buf;
}

/* Runs every pass of one input file; -1 if it cannot be read. */
static int replay_file(const char *path, unsigned *runs)
{
	size_t n = 0;
	uint8_t *data = read_file(path, &n);

	if (!data) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	current = path;
	for (int pass = 0; pass < fuzz_replay_passes; pass++) {
		unsigned skips = fuzz_skips;

		printf("replay: %s (%zu bytes, pass %d)\n", path, n, pass);
		fflush(stdout);
		current_pass = (unsigned)pass;
		fuzz_pass = pass;
		alarm(timeout_s);
		LLVMFuzzerTestOneInput(data, n);
		alarm(0);
		if (fuzz_skips == skips)
			(*runs)++;
	}
	free(data);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order; -1 if dir cannot be read. */
static int replay_dir(const char *dir, unsigned *runs, unsigned *files)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t count = 0, cap = 0;
	int rc = 0;

	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (count == cap) {
			char **nn = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*names));

			if (!nn)
				abort();
			names = nn;
		}
		if (!(names[count] = malloc(strlen(dir) + strlen(e->d_name) + 2)))
			abort();
		sprintf(names[count++], "%s/%s", dir, e->d_name);
	}
	closedir(d);
	qsort(names, count, sizeof(*names), by_name);
	for (size_t i = 0; i < count; i++) {
		struct stat st;

		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
			(*files)++;
			if (replay_file(names[i], runs) < 0)
				rc = -1;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	static const char *const fallback[] = { FUZZ_CORPUS_DIR };
	const char *const *paths = argc > 1 ? (const char *const *)argv + 1 : fallback;
	int npaths = argc > 1 ? argc - 1 : 1, failed = 0;
	unsigned runs = 0, files = 0;
	const char *t = getenv("FUZZ_REPLAY_TIMEOUT");

	if (t && atoi(t) > 0)
		timeout_s = (unsigned)atoi(t);
	signal(SIGALRM, on_alarm);
	for (int i = 0; i < npaths; i++) {
		struct stat st;

		if (stat(paths[i], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", paths[i], strerror(errno));
			failed = 1;
		} else if (S_ISDIR(st.st_mode)) {
			failed |= replay_dir(paths[i], &runs, &files) < 0;
		} else {
			files++;
			failed |= replay_file(paths[i], &runs) < 0;
		}
	}
	if (!files) {
		fprintf(stderr, "replay: no input found\n");
		failed = 1;
	}
	/* An input that broke an invariant aborted above: whatever is
	 * left here ran to its end. */
	printf("%u inputs, %u passes run\n", files, runs);
	if (fuzz_skips)
		printf("Skipped: %u checks: %s\n", fuzz_skips, fuzz_skip_why);
	printf("%u%%: Checks: %u, Failures: %d, Errors: 0\n", failed ? 0 : 100, runs + (unsigned)failed, failed);
	if (failed)
		return 1;
	return runs ? 0 : 77;
}
