/* SPDX-License-Identifier: MIT */
/*
 * conformance/subprocess.c: cases ported from CPython 3.11's
 * Lib/test/test_asyncio/test_subprocess.py and test_unix_events.py (signal
 * handlers, unix sockets, the read and write pipe transports), each named
 * <python module>__<python test> (with the test's class where a name
 * repeats across classes), run on every backend configuration.
 * test/conformance/README.md maps each Python test to its case.
 *
 * asyncio's tests run `python -c ...` children; these run /bin/sh and the
 * usual commands (cat, wc, head, sleep) to the same effect. asyncio's pipe
 * transport tests mock os.read and os.write; these use real pipes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "../helpers.h"

static struct tide_loop *g_loop;

/* --------------------------------------------------------------- helpers -- */

static struct tide_subprocess_opts opts_pipes(enum tide_stdio_mode in, enum tide_stdio_mode out,
					      enum tide_stdio_mode err)
{
	struct tide_subprocess_opts o = {
		.size = sizeof(o),
		.stdio = { { .mode = in }, { .mode = out }, { .mode = err } },
	};

	return o;
}

/* create_subprocess_exec / _shell from a task: the process, taken. */
static struct tide_process *spawn(const char *const *argv, const char *cmd, const struct tide_subprocess_opts *o)
{
	struct tide_future *f = NULL;
	struct tide_process *p;
	int rc = argv ? tide_create_subprocess_exec(g_loop, argv, o, &f) : tide_create_subprocess_shell(g_loop, cmd, o, &f);

	ck_assert_msg(rc == 0, "[%s] spawn: %s", tt_cfg->name, tide_strerror(rc));
	ck_assert_int_eq(tide_await(f), 0);
	p = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_ptr_nonnull(p);
	return p;
}

static int wait_code(struct tide_process *p)
{
	int code = 12345;

	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	return code;
}

/* The number of fds this process has open. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own */
}

/* communicate(input) of `sh -c cmd` with the given stdio; out and err
 * come back (tide_free them), the code is returned. */
struct comm {
	char *out, *err;
	size_t outlen, errlen;
	int code;
};

static void communicate(struct tide_process *p, const char *input, size_t n, struct comm *c)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->code = 12345;
	rc = tide_process_communicate(p, input, n, &c->out, &c->outlen, &c->err, &c->errlen, &c->code);
	ck_assert_msg(rc == 0, "[%s] communicate: %s", tt_cfg->name, tide_strerror(rc));
}

static void comm_free(struct comm *c)
{
	tide_free(c->out);
	tide_free(c->err);
}

/* ------------------------------------------------------------ processes -- */

/* test_subprocess.test_stdin_stdout: write to cat's stdin, drain, close
 * it, read its stdout to EOF, wait: 0 and the bytes. */
static int64_t stdin_stdout_main(void *arg)
{
	static const char *const argv[] = { "/bin/cat", NULL };
	struct tide_subprocess_opts o = opts_pipes(TIDE_STDIO_PIPE, TIDE_STDIO_PIPE, TIDE_STDIO_INHERIT);
	struct tide_process *p = spawn(argv, NULL, &o);
	struct tide_stream_writer *in = tide_process_stdin(p);
	void *all = NULL;

	(void)arg;
	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_null(tide_process_stderr(p));
	ck_assert_int_eq(tide_stream_write(in, "some data", 9), 0);
	ck_assert_int_eq(tide_stream_drain(in), 0);
	tide_stream_close(in);
	ck_assert_int_eq(tide_stream_read_all(tide_process_stdout(p), &all), 9);
	ck_assert_int_eq(memcmp(all, "some data", 9), 0);
	tide_free(all);
	ck_assert_int_eq(wait_code(p), 0);
	tide_process_free(p);
	return 0;
}

START_TEST(test_subprocess__test_stdin_stdout)
{
	tt_run_main(&g_loop, stdin_stdout_main, NULL);
}
END_TEST

/* test_subprocess.test_communicate: communicate(b'some data') with cat. */
static int64_t communicate_main(void *arg)
{
	static const char *const argv[] = { "/bin/cat", NULL };
	struct tide_subprocess_opts o = opts_pipes(TIDE_STDIO_PIPE, TIDE_STDIO_PIPE, TIDE_STDIO_INHERIT);
	struct tide_process *p = spawn(argv, NULL, &o);
	struct comm c;
	int code;

	(void)arg;
	communicate(p, "some data", 9, &c);
	ck_assert_int_eq(c.code, 0);
	ck_assert_uint_eq(c.outlen, 9);
	ck_assert_str_eq(c.out, "some data");
	ck_assert_ptr_null(c.err);
	ck_assert_int_eq(tide_process_returncode(p, &code), 1);
	ck_assert_int_eq(code, 0);
	comm_free(&c);
	tide_process_free(p);
	return 0;
}

START_TEST(test_subprocess__test_communicate)
{
	tt_run_main(&g_loop, communicate_main, NULL);
}
END_TEST

/* test_subprocess.test_shell: create_subprocess_shell('exit 7') waits to 7. */
static int64_t shell_main(void *arg)
{
	struct tide_process *p = spawn(NULL, "exit 7", NULL);

	(void)arg;
	ck_assert_int_eq(wait_code(p), 7);
	tide_process_free(p);
	return 0;
}

START_TEST(test_subprocess__test_shell)
{
	tt_run_main(&g_loop, shell_main, NULL);
}
END_TEST

/* test_subprocess.test_start_new_session: 'exit 8' with
 * start_new_session; the shell also checks that it leads its session
 * (field 6 of its /proc stat is its own pid), else exits 1. */
static int64_t new_session_main(void *arg)
{
	struct tide_subprocess_opts o = { .size = sizeof(o), .start_new_session = 1 };
	struct tide_process *p =
		spawn(NULL, "read pid comm st ppid pgrp sid rest </proc/$$/stat; [ \"$sid\" = $$ ] || exit 1; exit 8", &o);

	(void)arg;
	ck_assert_int_eq(wait_code(p), 8);
	tide_process_free(p);
	return 0;
}

START_TEST(test_subprocess__test_start_new_session)
{
	tt_run_main(&g_loop, new_session_main, NULL);
}
END_TEST

/* test_subprocess.test_kill / test_terminate: a blocked child killed
 * (-SIGKILL) or terminated (-SIGTERM). */
static int64_t kill_main(void *arg)
{
	static const char *const argv[] = { "/bin/sleep", "1", NULL };
	int how = (int)(intptr_t)arg;
	struct tide_process *p = spawn(argv, NULL, NULL);

	ck_assert_int_eq(how == SIGKILL ? tide_process_kill(p) : tide_process_terminate(p), 0);
	ck_assert_int_eq(wait_code(p), -how);
	tide_process_free(p);
	return 0;
}

START_TEST(test_subprocess__test_kill)
{
	tt_run_main(&g_loop, kill_main, (void *)(intptr_t)SIGKILL);
}
END_TEST

START_TEST(test_subprocess__test_terminate)
{
	tt_run_main(&g_loop, kill_main, (void *)(intptr_t)SIGTERM);
}
END_TEST

/* test_subprocess.test_kill_issue43884: a shell whose own child holds its
 * stdout pipe is killed; wait returns -SIGKILL as the shell dies, not
 * when the grandchild lets the pipe go. (asyncio sleeps 1 s first; 0.1
 * here.) */
static int64_t kill_43884_main(void *arg)
{
	struct tide_subprocess_opts o = opts_pipes(TIDE_STDIO_INHERIT, TIDE_STDIO_PIPE, TIDE_STDIO_INHERIT);
	struct tide_process *p = spawn(NULL, "sleep 1; sleep 1", &o);

	(void)arg;
	ck_assert_int_eq(tide_sleep(0.1), 0);
	ck_assert_int_eq(tide_process_kill(p), 0);
	ck_assert_int_eq(wait_code(p), -SIGKILL);
	tide_process_free(p);
	return 0;
}

START_TEST(test_subprocess__test_kill_issue43884)
{
	tt_run_main(&g_loop, kill_43884_main, NULL);
}
END_TEST

/* test_subprocess.test_send_signal: with SIGHUP ignored in the parent,
 * the child still gets the default disposition (bpo-31034): it says
 * "sleeping", gets SIGHUP, and dies of it. */
static int64_t send_signal_main(void *arg)
{
	struct tide_subprocess_opts o = opts_pipes(TIDE_STDIO_INHERIT, TIDE_STDIO_PIPE, TIDE_STDIO_INHERIT);
	void (*old)(int) = signal(SIGHUP, SIG_IGN);
	struct tide_process *p = spawn(NULL, "echo sleeping; exec sleep 1", &o);
	char line[32];

	(void)arg;
	ck_assert_int_eq(tide_stream_readline(tide_process_stdout(p), line, sizeof(line)), 9);
	ck_assert_int_eq(memcmp(line, "sleeping\n", 9), 0);
	ck_assert_int_eq(tide_process_send_signal(p, SIGHUP), 0);
	ck_assert_int_eq(wait_code(p), -SIGHUP);
	tide_process_free(p);
	signal(SIGHUP, old);
	return 0;
}

START_TEST(test_subprocess__test_send_signal)
{
	tt_run_main(&g_loop, send_signal_main, NULL);
}
END_TEST

/* test_subprocess.test_stdin_broken_pipe: the child exits (after one
 * byte on a passed pipe) while its stdin buffer is full: drain gives
 * BrokenPipeError or ConnectionResetError (-EPIPE, -ECONNRESET). */
#define LARGE (4u << 20)

static int64_t broken_pipe_main(void *arg)
{
	struct tide_subprocess_opts o = opts_pipes(TIDE_STDIO_PIPE, TIDE_STDIO_INHERIT, TIDE_STDIO_INHERIT);
	struct tide_process *p;
	char cmd[96], *large = malloc(LARGE);
	int fds[2], rc;

	(void)arg;
	ck_assert_ptr_nonnull(large);
	memset(large, 'x', LARGE);
	tt_pipe(fds, 0);
	o.pass_fds = &fds[0];
	o.npass_fds = 1;
	snprintf(cmd, sizeof(cmd), "head -c 1 </proc/self/fd/%d >/dev/null", fds[0]);
	p = spawn(NULL, cmd, &o);
	ck_assert_int_eq(tide_stream_write(tide_process_stdin(p), large, LARGE), 0);
	tt_write_all(fds[1], "go", 2);
	rc = tide_stream_drain(tide_process_stdin(p));
	ck_assert_msg(rc == -EPIPE || rc == -ECONNRESET, "[%s] drain: %d (%s)", tt_cfg->name, rc, tide_strerror(rc));
	ck_assert_int_eq(wait_code(p), 0);
	tide_process_free(p);
	close(fds[0]);
	close(fds[1]);
	free(large);
	return 0;
}

START_TEST(test_subprocess__test_stdin_broken_pipe)
{
	tt_run_main(&g_loop, broken_pipe_main, NULL);
}
END_TEST

/* test_subprocess.test_communicate_ignore_broken_pipe: a child that exits
 * without reading its stdin is no error for communicate. */
static int64_t ignore_broken_main(void *arg)
{
	static const char *const argv[] = { "/bin/true", NULL };
	struct tide_subprocess_opts o = opts_pipes(TIDE_STDIO_PIPE, TIDE_STDIO_INHERIT, TIDE_STDIO_INHERIT);
	struct tide_process *p = spawn(argv, NULL, &o);
	char *large = malloc(LARGE);
	struct comm c;

	(void)arg;
	ck_assert_ptr_nonnull(large);
	memset(large, 'x', LARGE);
	tide_loop_set_exception_handler(g_loop, NULL, NULL);
	communicate(p, large, LARGE, &c);
	ck_assert_int_eq(c.code, 0);
	ck_assert_ptr_null(c.out);
	ck_assert_int_eq(wait_code(p), 0);
	comm_free(&c);
	tide_process_free(p);
	free(large);
	return 0;
}

START_TEST(test_subprocess__test_communicate_ignore_broken_pipe)
{
	tt_run_main(&g_loop, ignore_broken_main, NULL);
}
END_TEST

/* test_subprocess.test_pause_reading: with a stream limit of 10 the child
 * writes 21 bytes; communicate still gets all of them. (asyncio also
 * mocks the pipe transport to see pause_reading and resume_reading
 * called; tide's stdout pipe transport is not reachable from a process.) */
static int64_t pause_reading_main(void *arg)
{
	struct tide_subprocess_opts o = opts_pipes(TIDE_STDIO_PIPE, TIDE_STDIO_PIPE, TIDE_STDIO_INHERIT);
	struct tide_process *p;
	struct comm c;

	(void)arg;
	o.limit = 10;
	p = spawn(NULL, "printf xxxxxxxxxxxxxxxxxxxxx", &o);
	communicate(p, NULL, 0, &c);
	ck_assert_int_eq(c.code, 0);
	ck_assert_uint_eq(c.outlen, 21);
	ck_assert_str_eq(c.out, "xxxxxxxxxxxxxxxxxxxxx");
	comm_free(&c);
	tide_process_free(p);
	return 0;
}

START_TEST(test_subprocess__test_pause_reading)
{
	tt_run_main(&g_loop, pause_reading_main, NULL);
}
END_TEST

/* `sh -c cmd` with the given stdio, communicate(input): its stdout with
 * the trailing newline taken off, and the code. */
struct wc_case {
	const char *cmd;
	enum tide_stdio_mode in, out, err;
	const char *input;
	const char *expect_out; /* NULL: stdout is not a PIPE */
	int expect_err_null;
};

static int64_t wc_main(void *arg)
{
	const struct wc_case *w = arg;
	struct tide_subprocess_opts o = opts_pipes(w->in, w->out, w->err);
	struct tide_process *p = spawn(NULL, w->cmd, &o);
	struct comm c;

	communicate(p, w->input, w->input ? strlen(w->input) : 0, &c);
	ck_assert_int_eq(c.code, 0);
	if (w->expect_out) {
		ck_assert_ptr_nonnull(c.out);
		while (c.outlen && (c.out[c.outlen - 1] == '\n' || c.out[c.outlen - 1] == ' '))
			c.out[--c.outlen] = '\0';
		ck_assert_str_eq(c.out, w->expect_out);
	} else {
		ck_assert_ptr_null(c.out);
	}
	if (w->expect_err_null)
		ck_assert_ptr_null(c.err);
	else
		ck_assert_ptr_nonnull(c.err);
	ck_assert_int_eq(wait_code(p), 0);
	comm_free(&c);
	tide_process_free(p);
	return 0;
}

/* test_subprocess.test_stdin_not_inheritable: communicate(b'abc') to a
 * child counting its stdin with all three pipes returns (the stdin pipe's
 * write end does not leak into the child): 3. */
START_TEST(test_subprocess__test_stdin_not_inheritable)
{
	static const struct wc_case w = { "wc -c", TIDE_STDIO_PIPE, TIDE_STDIO_PIPE, TIDE_STDIO_PIPE, "abc", "3", 0 };

	tt_run_main(&g_loop, wc_main, (void *)&w);
}
END_TEST

/* test_subprocess.test_empty_input: communicate(b'') closes stdin: 0. */
START_TEST(test_subprocess__test_empty_input)
{
	static const struct wc_case w = { "wc -c", TIDE_STDIO_PIPE, TIDE_STDIO_PIPE, TIDE_STDIO_PIPE, "", "0", 0 };

	tt_run_main(&g_loop, wc_main, (void *)&w);
}
END_TEST

/* test_subprocess.test_devnull_input: stdin DEVNULL reads nothing: 0. */
START_TEST(test_subprocess__test_devnull_input)
{
	static const struct wc_case w = { "wc -c", TIDE_STDIO_DEVNULL, TIDE_STDIO_PIPE, TIDE_STDIO_PIPE, NULL, "0", 0 };

	tt_run_main(&g_loop, wc_main, (void *)&w);
}
END_TEST

/* test_subprocess.test_devnull_output: stdout DEVNULL: communicate's
 * stdout is None (NULL). */
START_TEST(test_subprocess__test_devnull_output)
{
	static const struct wc_case w = { "wc -c", TIDE_STDIO_PIPE, TIDE_STDIO_DEVNULL, TIDE_STDIO_PIPE, "abc", NULL, 0 };

	tt_run_main(&g_loop, wc_main, (void *)&w);
}
END_TEST

/* test_subprocess.test_devnull_error: stderr DEVNULL: its stderr is None. */
START_TEST(test_subprocess__test_devnull_error)
{
	static const struct wc_case w = { "wc -c", TIDE_STDIO_PIPE, TIDE_STDIO_PIPE, TIDE_STDIO_DEVNULL, "abc", "3", 1 };

	tt_run_main(&g_loop, wc_main, (void *)&w);
}
END_TEST

/* test_subprocess.test_devstdin_input: the child opens /dev/stdin (the
 * stdin pipe) itself: 3. */
START_TEST(test_subprocess__test_devstdin_input)
{
	static const struct wc_case w = { "wc -c </dev/stdin", TIDE_STDIO_PIPE, TIDE_STDIO_PIPE, TIDE_STDIO_PIPE,
					  "abc", "3", 0 };

	tt_run_main(&g_loop, wc_main, (void *)&w);
}
END_TEST

/* test_subprocess.test_cancel_process_wait: a wait cancelled (issue
 * #23140) leaves the process usable: a second cancel does nothing, and
 * after a kill, a new wait sees it end. */
static struct tide_process *g_proc;

static int64_t waiter_body(void *arg)
{
	(void)arg;
	return tide_process_wait(g_proc, NULL);
}

static int64_t cancel_wait_main(void *arg)
{
	static const char *const argv[] = { "/bin/sleep", "1", NULL };
	struct tide_future *t;

	(void)arg;
	g_proc = spawn(argv, NULL, NULL);
	ck_assert_int_eq(tide_task_spawn(g_loop, waiter_body, NULL, NULL, &t), 0);
	ck_assert_int_eq(tide_yield(), 0); /* the waiter waits */
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_await(t), -ECANCELED);
	ck_assert_int_eq(tide_future_cancelled(t), 1);
	ck_assert_int_eq(tide_task_cancel(t), 0);
	tide_future_unref(t);
	ck_assert_int_eq(tide_process_kill(g_proc), 0);
	ck_assert_int_eq(wait_code(g_proc), -SIGKILL);
	tide_process_free(g_proc);
	return 0;
}

START_TEST(test_subprocess__test_cancel_process_wait)
{
	tt_run_main(&g_loop, cancel_wait_main, NULL);
}
END_TEST

/* test_subprocess.test_popen_error / test_popen_error_with_stdin_pipe: a
 * spawn that fails is the call's error, and leaves nothing behind: no
 * future, no fd (the stdin pipe's included), and the loop frees. */
static int64_t popen_error_main(void *arg)
{
	static const char *const argv[] = { "/nonexistent/tide-conformance", NULL };
	struct tide_subprocess_opts o = opts_pipes((enum tide_stdio_mode)(intptr_t)arg, TIDE_STDIO_INHERIT,
						   TIDE_STDIO_INHERIT);
	struct tide_future *f = NULL;
	int before = count_fds();

	ck_assert_int_eq(tide_create_subprocess_exec(g_loop, argv, &o, &f), -ENOENT);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(count_fds(), before);
	return 0;
}

START_TEST(test_subprocess__test_popen_error)
{
	tt_run_main(&g_loop, popen_error_main, (void *)(intptr_t)TIDE_STDIO_INHERIT);
}
END_TEST

START_TEST(test_subprocess__test_popen_error_with_stdin_pipe)
{
	tt_run_main(&g_loop, popen_error_main, (void *)(intptr_t)TIDE_STDIO_PIPE);
}
END_TEST

/* test_subprocess.test_read_stdout_after_process_exit: the child writes
 * 256 KiB and exits 1 while the parent reads slowly; every byte is read
 * after the exit, then EOF. (asyncio sleeps 0.3 s per read; 0.05 here.) */
static int64_t read_after_exit_main(void *arg)
{
	struct tide_subprocess_opts o = opts_pipes(TIDE_STDIO_INHERIT, TIDE_STDIO_PIPE, TIDE_STDIO_INHERIT);
	struct tide_process *p = spawn(NULL, "head -c 262144 /dev/zero; exit 1", &o);
	static char buf[65536];
	size_t total = 0;
	ssize_t n;

	(void)arg;
	while ((n = tide_stream_read(tide_process_stdout(p), buf, sizeof(buf))) > 0) {
		total += (size_t)n;
		ck_assert_int_eq(tide_sleep(0.05), 0);
	}
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(total, 262144);
	ck_assert_int_eq(wait_code(p), 1);
	tide_process_free(p);
	return 0;
}

START_TEST(test_subprocess__test_read_stdout_after_process_exit)
{
	tt_run_main(&g_loop, read_after_exit_main, NULL);
}
END_TEST

/* test_subprocess.test_subprocess_communicate_stdout: ten communicates at
 * once (gather), each gets its own child's output (issue 100133). */
static int64_t echo_one(void *arg)
{
	int i = (int)(intptr_t)arg;
	struct tide_subprocess_opts o = opts_pipes(TIDE_STDIO_INHERIT, TIDE_STDIO_PIPE, TIDE_STDIO_INHERIT);
	struct tide_process *p;
	char cmd[32], want[16];
	struct comm c;

	snprintf(cmd, sizeof(cmd), "echo foo%d", i);
	snprintf(want, sizeof(want), "foo%d\n", i);
	p = spawn(NULL, cmd, &o);
	communicate(p, NULL, 0, &c);
	ck_assert_int_eq(c.code, 0);
	ck_assert_str_eq(c.out, want);
	comm_free(&c);
	tide_process_free(p);
	return 0;
}

static int64_t communicate_stdout_main(void *arg)
{
	struct tide_future *t[10], *g;

	(void)arg;
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(tide_task_spawn(g_loop, echo_one, (void *)(intptr_t)i, NULL, &t[i]), 0);
	ck_assert_int_eq(tide_gather(g_loop, t, 10, 0, &g), 0);
	ck_assert_int_eq(tide_await(g), 0);
	tide_future_unref(g);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(tide_future_error(t[i]), 0);
		tide_future_unref(t[i]);
	}
	return 0;
}

START_TEST(test_subprocess__test_subprocess_communicate_stdout)
{
	tt_run_main(&g_loop, communicate_stdout_main, NULL);
}
END_TEST

/* ------------------------------------------- the subprocess transport -- */

struct sp {
	struct tide_subprocess_transport *t;
	char seq[8];
	int n;
	int lost_err;
	int code_at_exit, had_code;
};
static struct sp g_sp;

static void sp_made(struct tide_subprocess_transport *t, void *proto)
{
	(void)proto;
	g_sp.t = t;
	g_sp.seq[g_sp.n++] = 'M';
}

static void sp_exited(struct tide_subprocess_transport *t, void *proto)
{
	(void)proto;
	g_sp.seq[g_sp.n++] = 'X';
	g_sp.had_code = tide_subprocess_transport_get_returncode(t, &g_sp.code_at_exit);
}

static void sp_lost(struct tide_subprocess_transport *t, int err, void *proto)
{
	(void)t;
	(void)proto;
	g_sp.seq[g_sp.n++] = 'L';
	g_sp.lost_err = err;
}

static const struct tide_subprocess_protocol_ops sp_ops = {
	.size = sizeof(sp_ops), .connection_made = sp_made, .process_exited = sp_exited, .connection_lost = sp_lost,
};

static struct tide_subprocess_transport *sp_spawn(struct tide_loop *loop, const struct tide_subprocess_protocol_ops *ops,
						  const char *const *argv)
{
	struct tide_subprocess_transport *t;
	struct tide_future *f;

	memset(&g_sp, 0, sizeof(g_sp));
	ck_assert_int_eq(tide_subprocess_exec(loop, ops, NULL, argv, NULL, &f), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, f), 0);
	t = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_ptr_nonnull(t);
	return t;
}

/* test_subprocess.test_proc_exited: a child that exits 6: connection_made,
 * process_exited, connection_lost(None) in that order, the return code 6,
 * and send_signal, terminate and kill then raise ProcessLookupError
 * (-ESRCH); close after that is fine. */
START_TEST(test_subprocess__test_proc_exited)
{
	static const char *const argv[] = { "/bin/sh", "-c", "exit 6", NULL };
	struct tide_loop *loop = tt_loop_new();
	struct tide_subprocess_transport *t = sp_spawn(loop, &sp_ops, argv);
	int code = 0;

	RUN_UNTIL(loop, g_sp.n == 3);
	ck_assert_str_eq(g_sp.seq, "MXL");
	ck_assert_ptr_eq(g_sp.t, t);
	ck_assert_int_eq(g_sp.had_code, 1);
	ck_assert_int_eq(g_sp.code_at_exit, 6);
	ck_assert_int_eq(g_sp.lost_err, 0);
	ck_assert_int_eq(tide_subprocess_transport_get_returncode(t, &code), 1);
	ck_assert_int_eq(code, 6);
	ck_assert_int_eq(tide_subprocess_transport_send_signal(t, SIGTERM), -ESRCH);
	ck_assert_int_eq(tide_subprocess_transport_terminate(t), -ESRCH);
	ck_assert_int_eq(tide_subprocess_transport_kill(t), -ESRCH);
	tide_subprocess_transport_close(t);
	tide_subprocess_transport_unref(t);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_subprocess.test_close_kill_running: close() on the transport of a
 * child still running kills it: no return code before, -SIGKILL after. */
START_TEST(test_subprocess__test_close_kill_running)
{
	static const char *const argv[] = { "/bin/sleep", "1", NULL };
	struct tide_loop *loop = tt_loop_new();
	struct tide_subprocess_transport *t = sp_spawn(loop, &sp_ops, argv);
	int code = 0;

	ck_assert_int_eq(tide_subprocess_transport_get_returncode(t, &code), 0);
	tide_subprocess_transport_close(t);
	RUN_UNTIL(loop, tide_subprocess_transport_get_returncode(t, &code) == 1);
	ck_assert_int_eq(code, -SIGKILL);
	RUN_UNTIL(loop, g_sp.n == 3);
	ck_assert_str_eq(g_sp.seq, "MXL");
	tide_subprocess_transport_unref(t);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_protocols.test_subprocess_protocol: a SubprocessProtocol with every
 * callback left out (SubprocessProtocol's do nothing) is served: the
 * child runs, exits and is reaped, its output pipe drained and dropped. */
START_TEST(test_protocols__test_subprocess_protocol)
{
	static const char *const argv[] = { "/bin/sh", "-c", "echo dropped; exit 3", NULL };
	const struct tide_subprocess_protocol_ops none = { .size = sizeof(none) };
	struct tide_subprocess_opts o = opts_pipes(TIDE_STDIO_INHERIT, TIDE_STDIO_PIPE, TIDE_STDIO_INHERIT);
	struct tide_loop *loop = tt_loop_new();
	struct tide_subprocess_transport *t;
	struct tide_future *f;
	int code = 0;

	for (int pass = 0; pass < 2; pass++) {
		ck_assert_int_eq(tide_subprocess_exec(loop, pass ? NULL : &none, NULL, argv, &o, &f), 0);
		ck_assert_int_eq(tide_loop_run_until_complete(loop, f), 0);
		t = tide_future_take_ptr(f);
		tide_future_unref(f);
		RUN_UNTIL(loop, tide_subprocess_transport_get_returncode(t, &code) == 1);
		ck_assert_int_eq(code, 3);
		/* Its stdout pipe may still be open (EOF not read yet): the
		 * transport is the caller's to close, as asyncio's. */
		tide_subprocess_transport_close(t);
		tide_subprocess_transport_unref(t);
		ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	}
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* -------------------------------------------------------------- signals -- */

static int g_sig_calls;

static void sig_cb(void *arg)
{
	(void)arg;
	g_sig_calls++;
}

static void (*disposition(int signo))(int)
{
	struct sigaction sa;

	ck_assert_int_eq(sigaction(signo, NULL, &sa), 0);
	return sa.sa_handler;
}

/* test_unix_events.test_check_signal: a number that is not a signal (0,
 * negative, past the last) is refused, ValueError here -EINVAL, by add
 * and remove alike; add also refuses SIGKILL, SIGSTOP and the C
 * library's own 32 and 33. Differing on purpose for remove of those
 * (tide_loop_remove_signal_handler, test/signal.c's test_bad_numbers):
 * SIGKILL and SIGSTOP are -EINVAL where asyncio says False, and 32 is 0
 * (nothing registered) where asyncio raises ValueError. */
START_TEST(test_unix_events__test_check_signal)
{
	struct tide_loop *loop = tt_loop_new();
	static const int bad[] = { 0, -1, 65, 1000 };
	static const int refused[] = { SIGKILL, SIGSTOP, 32, 33 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(tide_loop_add_signal_handler(loop, bad[i], sig_cb, NULL), -EINVAL);
		ck_assert_int_eq(tide_loop_remove_signal_handler(loop, bad[i]), -EINVAL);
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		ck_assert_int_eq(tide_loop_add_signal_handler(loop, refused[i], sig_cb, NULL), -EINVAL);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGKILL), -EINVAL);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGSTOP), -EINVAL);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, 32), 0);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGHUP, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_loop_add_signal_handler(NULL, SIGHUP, sig_cb, NULL), -EINVAL);
	ck_assert_ptr_eq(disposition(SIGHUP), SIG_DFL);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_unix_events.test_add_signal_handler: the handler is installed and
 * its callback runs on the loop when the signal comes. */
START_TEST(test_unix_events__test_add_signal_handler)
{
	struct tide_loop *loop = tt_loop_new();

	g_sig_calls = 0;
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGHUP, sig_cb, NULL), 0);
	ck_assert_ptr_ne(disposition(SIGHUP), SIG_DFL);
	ck_assert_int_eq(kill(getpid(), SIGHUP), 0);
	RUN_UNTIL(loop, g_sig_calls == 1);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGHUP), 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_unix_events.test_remove_signal_handler: remove says True and puts
 * SIG_DFL back; a second remove says False (0). */
START_TEST(test_unix_events__test_remove_signal_handler)
{
	struct tide_loop *loop = tt_loop_new();

	ck_assert_ptr_eq(disposition(SIGHUP), SIG_DFL);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGHUP, sig_cb, NULL), 0);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGHUP), 1);
	ck_assert_ptr_eq(disposition(SIGHUP), SIG_DFL);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGHUP), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_unix_events.test_remove_signal_handler_2: removing the SIGINT
 * handler puts back what the program had (Python's default_int_handler;
 * a handler of this program here), and a signal then reaches it. */
static volatile sig_atomic_t g_int_seen;

static void program_int_handler(int signo)
{
	(void)signo;
	g_int_seen = 1;
}

START_TEST(test_unix_events__test_remove_signal_handler_2)
{
	struct tide_loop *loop = tt_loop_new();
	void (*old)(int) = signal(SIGINT, program_int_handler);

	g_int_seen = 0;
	g_sig_calls = 0;
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGINT, sig_cb, NULL), 0);
	ck_assert_ptr_ne(disposition(SIGINT), program_int_handler);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGINT), 1);
	ck_assert_ptr_eq(disposition(SIGINT), program_int_handler);
	ck_assert_int_eq(kill(getpid(), SIGINT), 0);
	ck_assert_int_eq(g_int_seen, 1);
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	ck_assert_int_eq(g_sig_calls, 0);
	signal(SIGINT, old);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_unix_events.test_close: closing the loop removes its handlers
 * (SIGHUP and SIGCHLD) and puts the dispositions back. */
START_TEST(test_unix_events__test_close)
{
	struct tide_loop *loop = tt_loop_new();
	void (*chld)(int) = disposition(SIGCHLD);

	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGHUP, sig_cb, NULL), 0);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGCHLD, sig_cb, NULL), 0);
	ck_assert_int_eq(tide_loop_close(loop), 0);
	ck_assert_ptr_eq(disposition(SIGHUP), SIG_DFL);
	ck_assert_ptr_eq(disposition(SIGCHLD), chld);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGHUP), 0);
	ck_assert_int_eq(tide_loop_remove_signal_handler(loop, SIGCHLD), 0);
	ck_assert_int_eq(tide_loop_add_signal_handler(loop, SIGHUP, sig_cb, NULL), TIDE_ECLOSED);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ---------------------------------------------------------- unix sockets -- */

static char g_path[108];

static void set_path(const char *tag)
{
	snprintf(g_path, sizeof(g_path), "/tmp/tide-conf-sub-%ld-%s", (long)getpid(), tag);
	unlink(g_path);
}

static int null_factory(const struct tide_protocol_ops **ops, void **proto, void *arg)
{
	(void)arg;
	*ops = NULL;
	*proto = NULL;
	return 0;
}

static int64_t null_handler(struct tide_stream_reader *r, struct tide_stream_writer *w, void *arg)
{
	(void)r;
	(void)w;
	(void)arg;
	return 0;
}

static void unix_server_close(struct tide_loop *loop, struct tide_future *f)
{
	struct tide_server *s;

	ck_assert_int_eq(tide_loop_run_until_complete(loop, f), 0);
	s = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_int_eq(tide_server_is_serving(s), 1);
	tide_server_free(s);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
}

/* test_unix_events.test_create_unix_server_existing_path_sock: a socket
 * file left by a closed listener does not stop a new server there. */
START_TEST(test_unix_events__test_create_unix_server_existing_path_sock)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f;
	int fd;

	set_path("stale");
	strcpy(sun.sun_path, g_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	close(fd);
	ck_assert_int_eq(tide_create_unix_server(loop, g_path, NULL, null_factory, NULL, &f), 0);
	unix_server_close(loop, f);
	unlink(g_path);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_unix_events.test_create_unix_server_existing_path_nonsock: a file
 * that is not a socket is left alone: "Address already in use". */
START_TEST(test_unix_events__test_create_unix_server_existing_path_nonsock)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = NULL;
	struct stat st;
	int fd;

	set_path("file");
	fd = open(g_path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(tide_create_unix_server(loop, g_path, NULL, null_factory, NULL, &f), -EADDRINUSE);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(tide_start_unix_server(loop, g_path, NULL, null_handler, NULL, &f), -EADDRINUSE);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(stat(g_path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	unlink(g_path);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* test_unix_events.test_create_unix_connection_pathlib: connecting to a
 * path where nothing is is FileNotFoundError (-ENOENT). */
START_TEST(test_unix_events__test_create_unix_connection_pathlib)
{
	struct tide_loop *loop = tt_loop_new();
	struct tide_future *f = NULL;
	int rc;

	set_path("nobody");
	rc = tide_create_unix_connection(loop, g_path, NULL, NULL, &f);
	if (rc == 0) {
		ck_assert_int_eq(tide_loop_run_until_complete(loop, f), -ENOENT);
		tide_future_unref(f);
	} else {
		ck_assert_int_eq(rc, -ENOENT);
	}
	ck_assert_int_eq(tide_loop_free(loop), 0);
}
END_TEST

/* ------------------------------------------------------------------ pipes -- */

struct rec {
	char seq[16];
	int n;
	char data[256];
	size_t len;
	int lost_err;
};
static struct rec g_rec;

static void rec_mark(char c)
{
	if (g_rec.n < (int)sizeof(g_rec.seq) - 1)
		g_rec.seq[g_rec.n++] = c;
}

static void rec_made(struct tide_transport *t, void *proto)
{
	(void)t;
	(void)proto;
	rec_mark('M');
}

static void rec_data(struct tide_transport *t, const void *data, size_t n, void *proto)
{
	(void)t;
	(void)proto;
	if (!g_rec.n || g_rec.seq[g_rec.n - 1] != 'D')
		rec_mark('D');
	ck_assert_uint_le(g_rec.len + n, sizeof(g_rec.data));
	memcpy(g_rec.data + g_rec.len, data, n);
	g_rec.len += n;
}

static int rec_eof(struct tide_transport *t, void *proto)
{
	(void)t;
	(void)proto;
	rec_mark('E');
	return 0;
}

static void rec_lost(struct tide_transport *t, int err, void *proto)
{
	(void)t;
	(void)proto;
	rec_mark('L');
	g_rec.lost_err = err;
}

static const struct tide_protocol_ops rec_ops = {
	.size = sizeof(rec_ops), .connection_made = rec_made, .data_received = rec_data,
	.eof_received = rec_eof, .connection_lost = rec_lost,
};

/* A read pipe transport of rec_ops; *wfd is the pipe's write end. */
static struct tide_transport *read_pipe(struct tide_loop *loop, int *wfd)
{
	struct tide_transport *t;
	struct tide_future *f;
	int fds[2];

	memset(&g_rec, 0, sizeof(g_rec));
	tt_pipe(fds, 0);
	ck_assert_int_eq(tide_connect_read_pipe(loop, fds[0], &rec_ops, NULL, &f), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, f), 0);
	t = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_str_eq(g_rec.seq, "M");
	*wfd = fds[1];
	return t;
}

/* A write pipe transport of rec_ops; *rfd is the pipe's (non-blocking) read end. */
static struct tide_transport *write_pipe(struct tide_loop *loop, int *rfd)
{
	struct tide_transport *t;
	struct tide_future *f;
	int fds[2];

	memset(&g_rec, 0, sizeof(g_rec));
	tt_pipe(fds, O_NONBLOCK);
	ck_assert_int_eq(tide_connect_write_pipe(loop, fds[1], &rec_ops, NULL, &f), 0);
	ck_assert_int_eq(tide_loop_run_until_complete(loop, f), 0);
	t = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_str_eq(g_rec.seq, "M");
	*rfd = fds[0];
	return t;
}

static void pipe_done(struct tide_loop *loop, struct tide_transport *t, int fd)
{
	if (fd >= 0)
		close(fd);
	tide_transport_unref(t);
	ck_assert_int_eq(tide_loop_shutdown(loop, 10), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
}

/* Reads rfd (non-blocking) while the loop runs, until EOF or cap bytes;
 * returns the count. */
static size_t read_raw(struct tide_loop *loop, int rfd, char *buf, size_t cap, int to_eof)
{
	uint64_t end = tt_mono_ns() + (uint64_t)(30 * slow_factor() * 1e9);
	size_t got = 0;
	ssize_t n;

	while (got < cap) {
		n = read(rfd, buf + got, cap - got);
		if (n == 0)
			return got;
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		ck_assert_int_eq(errno, EAGAIN);
		ck_assert_msg(tt_mono_ns() < end, "[%s] the pipe stayed silent", tt_cfg->name);
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	}
	if (to_eof) {
		char c;

		while ((n = read(rfd, &c, 1)) < 0 && errno == EAGAIN) {
			ck_assert_msg(tt_mono_ns() < end, "[%s] no EOF", tt_cfg->name);
			ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
		}
		ck_assert_int_eq(n, 0);
	}
	return got;
}

/* test_unix_events UnixReadPipeTransportTests.test__read_ready: bytes on
 * the pipe reach data_received. */
START_TEST(test_unix_events__UnixReadPipeTransportTests__test__read_ready)
{
	struct tide_loop *loop = tt_loop_new();
	int wfd;
	struct tide_transport *t = read_pipe(loop, &wfd);

	tt_write_all(wfd, "data", 4);
	RUN_UNTIL(loop, g_rec.len == 4);
	ck_assert_int_eq(memcmp(g_rec.data, "data", 4), 0);
	ck_assert_str_eq(g_rec.seq, "MD");
	ck_assert_int_eq(tide_transport_is_closing(t), 0);
	tide_transport_close(t);
	pipe_done(loop, t, wfd);
}
END_TEST

/* test_unix_events.test__read_ready_eof: at the pipe's end, eof_received,
 * then connection_lost(None), and the transport closes. */
START_TEST(test_unix_events__test__read_ready_eof)
{
	struct tide_loop *loop = tt_loop_new();
	int wfd;
	struct tide_transport *t = read_pipe(loop, &wfd);

	close(wfd);
	RUN_UNTIL(loop, g_rec.n == 3);
	ck_assert_str_eq(g_rec.seq, "MEL");
	ck_assert_int_eq(g_rec.lost_err, 0);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	pipe_done(loop, t, -1);
}
END_TEST

/* test_unix_events.test_pause_reading: a paused read pipe takes nothing
 * off the pipe (no data_received). */
START_TEST(test_unix_events__test_pause_reading)
{
	struct tide_loop *loop = tt_loop_new();
	int wfd;
	struct tide_transport *t = read_pipe(loop, &wfd);
	uint64_t end;

	ck_assert_int_eq(tide_transport_pause_reading(t), 0);
	ck_assert_int_eq(tide_transport_is_reading(t), 0);
	tt_write_all(wfd, "data", 4);
	end = tt_mono_ns() + 100000000ull;
	while (tt_mono_ns() < end)
		ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_uint_eq(g_rec.len, 0);
	ck_assert_str_eq(g_rec.seq, "M");
	tide_transport_close(t);
	pipe_done(loop, t, wfd);
}
END_TEST

/* test_unix_events.test_resume_reading: after resume_reading the pipe is
 * read again, and what came while paused is delivered. */
START_TEST(test_unix_events__test_resume_reading)
{
	struct tide_loop *loop = tt_loop_new();
	int wfd;
	struct tide_transport *t = read_pipe(loop, &wfd);

	ck_assert_int_eq(tide_transport_pause_reading(t), 0);
	tt_write_all(wfd, "data", 4);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.02), 0);
	ck_assert_int_eq(tide_transport_resume_reading(t), 0);
	ck_assert_int_eq(tide_transport_is_reading(t), 1);
	RUN_UNTIL(loop, g_rec.len == 4);
	ck_assert_int_eq(memcmp(g_rec.data, "data", 4), 0);
	tide_transport_close(t);
	pipe_done(loop, t, wfd);
}
END_TEST

/* test_unix_events UnixReadPipeTransportTests.test_close: close makes the
 * transport closing and connection_lost(None) follows. */
START_TEST(test_unix_events__UnixReadPipeTransportTests__test_close)
{
	struct tide_loop *loop = tt_loop_new();
	int wfd;
	struct tide_transport *t = read_pipe(loop, &wfd);

	tide_transport_close(t);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	tide_transport_close(t); /* test_close_already_closing: nothing more */
	RUN_UNTIL(loop, g_rec.n == 2);
	ck_assert_str_eq(g_rec.seq, "ML");
	ck_assert_int_eq(g_rec.lost_err, 0);
	pipe_done(loop, t, wfd);
}
END_TEST

/* test_unix_events.test_pause_reading_on_closed_pipe and
 * test_resume_reading_on_closed_pipe: on a transport closed and lost,
 * pause_reading and resume_reading do nothing, without error. */
START_TEST(test_unix_events__test_pause_reading_on_closed_pipe)
{
	struct tide_loop *loop = tt_loop_new();
	int wfd;
	struct tide_transport *t = read_pipe(loop, &wfd);

	tide_transport_close(t);
	RUN_UNTIL(loop, g_rec.n == 2);
	ck_assert_int_eq(tide_transport_pause_reading(t), 0);
	ck_assert_int_eq(tide_transport_resume_reading(t), 0);
	ck_assert_str_eq(g_rec.seq, "ML");
	pipe_done(loop, t, wfd);
}
END_TEST

/* test_unix_events.test_pause_reading_on_paused_pipe and
 * test_resume_reading_on_paused_pipe: a second pause, or a resume of a
 * pipe not paused, does nothing. */
START_TEST(test_unix_events__test_pause_reading_on_paused_pipe)
{
	struct tide_loop *loop = tt_loop_new();
	int wfd;
	struct tide_transport *t = read_pipe(loop, &wfd);

	ck_assert_int_eq(tide_transport_resume_reading(t), 0);
	ck_assert_int_eq(tide_transport_is_reading(t), 1);
	ck_assert_int_eq(tide_transport_pause_reading(t), 0);
	ck_assert_int_eq(tide_transport_pause_reading(t), 0);
	ck_assert_int_eq(tide_transport_is_reading(t), 0);
	ck_assert_int_eq(tide_transport_resume_reading(t), 0);
	tt_write_all(wfd, "x", 1);
	RUN_UNTIL(loop, g_rec.len == 1);
	tide_transport_close(t);
	pipe_done(loop, t, wfd);
}
END_TEST

/* test_unix_events.test_can_write_eof: a write pipe can write EOF; a read
 * pipe cannot be written (-EOPNOTSUPP). */
START_TEST(test_unix_events__test_can_write_eof)
{
	struct tide_loop *loop = tt_loop_new();
	int rfd, wfd;
	struct tide_transport *t = write_pipe(loop, &rfd);
	struct tide_transport *r;

	ck_assert_int_eq(tide_transport_can_write_eof(t), 1);
	tide_transport_close(t);
	RUN_UNTIL(loop, g_rec.n == 2);
	close(rfd);
	r = read_pipe(loop, &wfd);
	ck_assert_int_eq(tide_transport_write(r, "x", 1), -EOPNOTSUPP);
	tide_transport_close(r);
	tide_transport_unref(t);
	pipe_done(loop, r, wfd);
}
END_TEST

/* test_unix_events.test_write: the bytes written reach the pipe and
 * nothing stays buffered. */
START_TEST(test_unix_events__test_write)
{
	struct tide_loop *loop = tt_loop_new();
	int rfd;
	struct tide_transport *t = write_pipe(loop, &rfd);
	char buf[8];

	ck_assert_int_eq(tide_transport_write(t, "data", 4), 0);
	ck_assert_uint_eq(read_raw(loop, rfd, buf, 4, 0), 4);
	ck_assert_int_eq(memcmp(buf, "data", 4), 0);
	RUN_UNTIL(loop, tide_transport_get_write_buffer_size(t) == 0);
	tide_transport_close(t);
	pipe_done(loop, t, rfd);
}
END_TEST

/* test_unix_events.test_write_no_data: writing b'' writes and buffers
 * nothing. */
START_TEST(test_unix_events__test_write_no_data)
{
	struct tide_loop *loop = tt_loop_new();
	int rfd;
	struct tide_transport *t = write_pipe(loop, &rfd);
	char buf[8];

	ck_assert_int_eq(tide_transport_write(t, "", 0), 0);
	ck_assert_uint_eq(tide_transport_get_write_buffer_size(t), 0);
	tide_transport_close(t);
	ck_assert_uint_eq(read_raw(loop, rfd, buf, sizeof(buf), 1), 0);
	pipe_done(loop, t, rfd);
}
END_TEST

/* test_unix_events.test_write_partial (and test_write_buffer): what the
 * pipe cannot take at once stays buffered, later writes queue behind it,
 * and everything arrives in order. */
#define BIG (1u << 20)

START_TEST(test_unix_events__test_write_partial)
{
	struct tide_loop *loop = tt_loop_new();
	int rfd;
	struct tide_transport *t = write_pipe(loop, &rfd);
	char *out = malloc(BIG + 4), *in = malloc(BIG + 4);

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(in);
	for (size_t i = 0; i < BIG; i++)
		out[i] = (char)('a' + i % 23);
	memcpy(out + BIG, "data", 4);
	ck_assert_int_eq(tide_transport_write(t, out, BIG), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_uint_gt(tide_transport_get_write_buffer_size(t), 0);
	ck_assert_int_eq(tide_transport_write(t, "data", 4), 0);
	tide_transport_close(t);
	ck_assert_uint_eq(read_raw(loop, rfd, in, BIG + 4, 1), BIG + 4);
	ck_assert_int_eq(memcmp(in, out, BIG + 4), 0);
	free(out);
	free(in);
	pipe_done(loop, t, rfd);
}
END_TEST

/* test_unix_events.test_write_close, differing on purpose: once the
 * reader closed the pipe and the transport is lost, a write is refused
 * with TIDE_ECLOSED (tide_transport_write), where asyncio drops it and
 * counts it in _conn_lost. */
START_TEST(test_unix_events__test_write_close)
{
	struct tide_loop *loop = tt_loop_new();
	int rfd;
	struct tide_transport *t = write_pipe(loop, &rfd);

	close(rfd);
	RUN_UNTIL(loop, g_rec.n == 2);
	ck_assert_int_eq(tide_transport_write(t, "data", 4), TIDE_ECLOSED);
	ck_assert_int_eq(tide_transport_write(t, "data", 4), TIDE_ECLOSED);
	pipe_done(loop, t, -1);
}
END_TEST

/* test_unix_events UnixWritePipeTransportTests.test__read_ready, differing
 * on purpose: the reader closing the pipe with nothing buffered makes the
 * transport closing and then lost, with -EPIPE where asyncio says None
 * (tide_connect_write_pipe: the reader's going away is an error either
 * way). */
START_TEST(test_unix_events__UnixWritePipeTransportTests__test__read_ready)
{
	struct tide_loop *loop = tt_loop_new();
	int rfd;
	struct tide_transport *t = write_pipe(loop, &rfd);

	close(rfd);
	RUN_UNTIL(loop, g_rec.n == 2);
	ck_assert_str_eq(g_rec.seq, "ML");
	ck_assert_int_eq(g_rec.lost_err, -EPIPE);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	pipe_done(loop, t, -1);
}
END_TEST

/* test_unix_events.test_abort: abort drops what is buffered, closes at
 * once (no flush), and connection_lost(None) follows. */
START_TEST(test_unix_events__test_abort)
{
	struct tide_loop *loop = tt_loop_new();
	int rfd;
	struct tide_transport *t = write_pipe(loop, &rfd);
	char *out = malloc(BIG), *in = malloc(BIG);
	size_t got;

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(in);
	memset(out, 'z', BIG);
	ck_assert_int_eq(tide_transport_write(t, out, BIG), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_uint_gt(tide_transport_get_write_buffer_size(t), 0);
	tide_transport_abort(t);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	ck_assert_uint_eq(tide_transport_get_write_buffer_size(t), 0);
	RUN_UNTIL(loop, g_rec.n == 2);
	ck_assert_str_eq(g_rec.seq, "ML");
	ck_assert_int_eq(g_rec.lost_err, 0);
	got = read_raw(loop, rfd, in, BIG, 0); /* what the pipe had, then EOF */
	ck_assert_uint_lt(got, BIG);
	free(out);
	free(in);
	pipe_done(loop, t, rfd);
}
END_TEST

/* test_unix_events UnixWritePipeTransportTests.test_close: close flushes,
 * then ends the pipe (write_eof's doing in asyncio); a second close is
 * harmless; connection_lost(None). */
START_TEST(test_unix_events__UnixWritePipeTransportTests__test_close)
{
	struct tide_loop *loop = tt_loop_new();
	int rfd;
	struct tide_transport *t = write_pipe(loop, &rfd);
	char buf[8];

	ck_assert_int_eq(tide_transport_write(t, "data", 4), 0);
	tide_transport_close(t);
	tide_transport_close(t);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	ck_assert_uint_eq(read_raw(loop, rfd, buf, sizeof(buf), 1), 4);
	ck_assert_int_eq(memcmp(buf, "data", 4), 0);
	RUN_UNTIL(loop, g_rec.n == 2);
	ck_assert_str_eq(g_rec.seq, "ML");
	ck_assert_int_eq(g_rec.lost_err, 0);
	pipe_done(loop, t, rfd);
}
END_TEST

/* test_unix_events.test_write_eof: write_eof with nothing buffered closes
 * the pipe: the transport is closing, the reader sees EOF, and
 * connection_lost(None) follows. */
START_TEST(test_unix_events__test_write_eof)
{
	struct tide_loop *loop = tt_loop_new();
	int rfd;
	struct tide_transport *t = write_pipe(loop, &rfd);
	char buf[8];

	ck_assert_int_eq(tide_transport_write_eof(t), 0);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	ck_assert_uint_eq(read_raw(loop, rfd, buf, sizeof(buf), 1), 0);
	RUN_UNTIL(loop, g_rec.n == 2);
	ck_assert_str_eq(g_rec.seq, "ML");
	ck_assert_int_eq(g_rec.lost_err, 0);
	pipe_done(loop, t, rfd);
}
END_TEST

/* test_unix_events.test_write_eof_pending: write_eof with bytes buffered
 * makes the transport closing, but connection_lost waits for the flush;
 * the reader gets every byte, then EOF. */
START_TEST(test_unix_events__test_write_eof_pending)
{
	struct tide_loop *loop = tt_loop_new();
	int rfd;
	struct tide_transport *t = write_pipe(loop, &rfd);
	char *out = malloc(BIG), *in = malloc(BIG);

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(in);
	memset(out, 'q', BIG);
	ck_assert_int_eq(tide_transport_write(t, out, BIG), 0);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_int_eq(tide_transport_write_eof(t), 0);
	ck_assert_int_eq(tide_transport_is_closing(t), 1);
	ck_assert_int_ge(tide_loop_run_once(loop, 0.01), 0);
	ck_assert_str_eq(g_rec.seq, "M"); /* not lost: the reader has not read */
	ck_assert_uint_eq(read_raw(loop, rfd, in, BIG, 1), BIG);
	ck_assert_int_eq(memcmp(in, out, BIG), 0);
	RUN_UNTIL(loop, g_rec.n == 2);
	ck_assert_str_eq(g_rec.seq, "ML");
	ck_assert_int_eq(g_rec.lost_err, 0);
	free(out);
	free(in);
	pipe_done(loop, t, rfd);
}
END_TEST

int main(void)
{
	struct tt_suite ts;

	tt_suite_init(&ts, "conformance-subprocess", 30);
	tt_add(&ts, test_subprocess__test_proc_exited);
	tt_add(&ts, test_subprocess__test_stdin_stdout);
	tt_add(&ts, test_subprocess__test_communicate);
	tt_add(&ts, test_subprocess__test_shell);
	tt_add(&ts, test_subprocess__test_start_new_session);
	tt_add(&ts, test_subprocess__test_kill);
	tt_add(&ts, test_subprocess__test_kill_issue43884);
	tt_add(&ts, test_subprocess__test_terminate);
	tt_add(&ts, test_subprocess__test_send_signal);
	tt_add(&ts, test_subprocess__test_stdin_broken_pipe);
	tt_add(&ts, test_subprocess__test_communicate_ignore_broken_pipe);
	tt_add(&ts, test_subprocess__test_pause_reading);
	tt_add(&ts, test_subprocess__test_stdin_not_inheritable);
	tt_add(&ts, test_subprocess__test_empty_input);
	tt_add(&ts, test_subprocess__test_devnull_input);
	tt_add(&ts, test_subprocess__test_devnull_output);
	tt_add(&ts, test_subprocess__test_devnull_error);
	tt_add(&ts, test_subprocess__test_devstdin_input);
	tt_add(&ts, test_subprocess__test_cancel_process_wait);
	tt_add(&ts, test_subprocess__test_close_kill_running);
	tt_add(&ts, test_subprocess__test_popen_error);
	tt_add(&ts, test_subprocess__test_popen_error_with_stdin_pipe);
	tt_add(&ts, test_subprocess__test_read_stdout_after_process_exit);
	tt_add(&ts, test_subprocess__test_subprocess_communicate_stdout);
	tt_add(&ts, test_protocols__test_subprocess_protocol);
	tt_add(&ts, test_unix_events__test_check_signal);
	tt_add(&ts, test_unix_events__test_add_signal_handler);
	tt_add(&ts, test_unix_events__test_remove_signal_handler);
	tt_add(&ts, test_unix_events__test_remove_signal_handler_2);
	tt_add(&ts, test_unix_events__test_close);
	tt_add(&ts, test_unix_events__test_create_unix_server_existing_path_sock);
	tt_add(&ts, test_unix_events__test_create_unix_server_existing_path_nonsock);
	tt_add(&ts, test_unix_events__test_create_unix_connection_pathlib);
	tt_add(&ts, test_unix_events__UnixReadPipeTransportTests__test__read_ready);
	tt_add(&ts, test_unix_events__test__read_ready_eof);
	tt_add(&ts, test_unix_events__test_pause_reading);
	tt_add(&ts, test_unix_events__test_resume_reading);
	tt_add(&ts, test_unix_events__UnixReadPipeTransportTests__test_close);
	tt_add(&ts, test_unix_events__test_pause_reading_on_closed_pipe);
	tt_add(&ts, test_unix_events__test_pause_reading_on_paused_pipe);
	tt_add(&ts, test_unix_events__test_can_write_eof);
	tt_add(&ts, test_unix_events__test_write);
	tt_add(&ts, test_unix_events__test_write_no_data);
	tt_add(&ts, test_unix_events__test_write_partial);
	tt_add(&ts, test_unix_events__test_write_close);
	tt_add(&ts, test_unix_events__UnixWritePipeTransportTests__test__read_ready);
	tt_add(&ts, test_unix_events__test_abort);
	tt_add(&ts, test_unix_events__UnixWritePipeTransportTests__test_close);
	tt_add(&ts, test_unix_events__test_write_eof);
	tt_add(&ts, test_unix_events__test_write_eof_pending);
	return tt_run(&ts);
}
