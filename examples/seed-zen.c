/* SPDX-License-Identifier: MIT */
/*
 * seed-zen: the asyncio tutorial's zen(), in C: runs another Python
 * process on `import this` with its stdout piped, reads that line by line
 * in a task, and prints the Zen of Python.
 *
 *     async def zen():
 *         code = 'import this'
 *         create = asyncio.create_subprocess_exec(
 *             sys.executable, '-c', code,
 *             stdout=asyncio.subprocess.PIPE)
 *         proc = await create
 *
 *         data = await proc.stdout.readline()
 *         while data:
 *             line = data.decode('ascii').rstrip()
 *             print(line)
 *             data = await proc.stdout.readline()
 *
 *         await proc.wait()
 *
 *     loop = asyncio.get_event_loop()
 *     loop.run_until_complete(zen())
 *
 * sys.executable is "python3" (looked up in PATH), or the first argument:
 *
 *     examples/seed-zen [PYTHON]
 *
 * What the tutorial would raise is an error here, said on stderr with a
 * non-zero exit: no such interpreter, a line that is not ASCII or longer
 * than the stream's limit (64 KiB), a child that fails. On an error after
 * the child started, it is killed and reaped before the program ends.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tide.h"

struct zen {
	struct tide_loop *loop;
	const char *python;
	int code; /* the child's exit status */
};

/* One line as the tutorial prints it: decode('ascii').rstrip(), print(). */
static int print_line(char *data, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)data[i] > 0x7f)
			return -EILSEQ; /* UnicodeDecodeError */
	while (n > 0 && strchr(" \t\n\r\v\f", data[n - 1]))
		n--;
	printf("%.*s\n", (int)n, data);
	return 0;
}

/* async def zen() */
static int64_t zen(void *arg)
{
	struct zen *z = arg;
	const char *const argv[] = { z->python, "-c", "import this", NULL };
	struct tide_subprocess_opts opts;
	struct tide_future *create;
	struct tide_process *proc;
	static char data[65536]; /* one line; this task is the only reader */
	ssize_t n;
	int err, code = -1;

	memset(&opts, 0, sizeof(opts));
	opts.size = sizeof(opts);
	opts.stdio[1].mode = TIDE_STDIO_PIPE; /* stdout=asyncio.subprocess.PIPE */
	/* create = asyncio.create_subprocess_exec(...); proc = await create */
	err = tide_create_subprocess_exec(z->loop, argv, &opts, &create);
	if (err < 0) {
		fprintf(stderr, "seed-zen: cannot run %s: %s\n", z->python, tide_strerror(err));
		return err;
	}
	err = (int)tide_await(create);
	proc = err < 0 ? NULL : tide_future_take_ptr(create);
	tide_future_unref(create);
	if (err < 0) {
		fprintf(stderr, "seed-zen: cannot run %s: %s\n", z->python, tide_strerror(err));
		return err;
	}

	/* data = await proc.stdout.readline(); while data: ... */
	while ((n = tide_stream_readline(tide_process_stdout(proc), data, sizeof(data))) > 0) {
		err = print_line(data, (size_t)n);
		if (err < 0) {
			fprintf(stderr, "seed-zen: %s printed a line that is not ASCII\n", z->python);
			break;
		}
	}
	if (n < 0) {
		err = (int)n;
		fprintf(stderr, "seed-zen: reading %s's output: %s\n", z->python, tide_strerror(err));
	}
	if (err < 0)
		tide_process_kill(proc); /* then reaped below */

	/* await proc.wait() */
	int rc = tide_process_wait(proc, &code);
	tide_process_free(proc);
	if (rc < 0) {
		fprintf(stderr, "seed-zen: waiting for %s: %s\n", z->python, tide_strerror(rc));
		return rc;
	}
	z->code = code;
	return err < 0 ? err : 0;
}

int main(int argc, char **argv)
{
	struct zen z = { NULL, argc > 1 ? argv[1] : "python3", -1 };
	struct tide_future *task;
	int err;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (tide_loop_new(NULL, &z.loop) < 0) {
		fprintf(stderr, "seed-zen: cannot start a loop: %s\n", tide_loop_new_error());
		return 1;
	}
	/* loop.run_until_complete(zen()) */
	err = tide_task_spawn(z.loop, zen, &z, NULL, &task);
	if (err < 0) {
		fprintf(stderr, "seed-zen: tide_task_spawn: %s\n", tide_strerror(err));
		tide_loop_free(z.loop);
		return 1;
	}
	err = tide_loop_run_until_complete(z.loop, task);
	if (tide_future_done(task))
		err = tide_future_result(task, NULL, NULL); /* zen() said what went wrong */
	else
		fprintf(stderr, "seed-zen: tide_loop_run_until_complete: %s\n", tide_strerror(err));
	tide_future_unref(task);
	if (tide_loop_free(z.loop) != 0) {
		fprintf(stderr, "seed-zen: tide_loop_free: busy\n");
		return 1;
	}
	if (err < 0)
		return 1;
	if (z.code != 0) {
		fprintf(stderr, "seed-zen: %s exited with %d\n", z.python, z.code);
		return 1;
	}
	return 0;
}
