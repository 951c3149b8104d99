/* SPDX-License-Identifier: MIT */
/*
 * test/subprocess.c: children spawned and reaped on the loop
 * (tide_create_subprocess_*, tide_subprocess_*), on every backend
 * configuration, plus io_uring with only WAITID masked (the pidfd's
 * readiness) and the path without pidfds (SIGCHLD then waitpid, forced by
 * a test hook of src/io/spawn-hooks.h).
 *
 * The hard part is proving what did not happen: no zombie left (every
 * test scans /proc for children of this process), no fd leaked into a
 * child (the child lists its own), no signal disposition or mask carried
 * over (the child reads its /proc/self/status).
 */
#include "config.h"
#include "helpers.h"
#include "io/spawn-hooks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The two configurations of this program only. */
static const struct tt_config cfg_nowaitid = { "io_uring-nowaitid", "io_uring", "waitid", 1 };
static const struct tt_config cfg_nopidfd = { "no-pidfd", "io_uring", NULL, 1 };

static void setup_nowaitid(void)
{
	tt_cfg = &cfg_nowaitid;
}

static void setup_nopidfd(void)
{
	tt_cfg = &cfg_nopidfd;
	tide__set_spawn_no_pidfd(true);
}

/* ------------------------------------------------------------ helpers -- */

/* Children of this process in /proc: all of them, and the zombies. */
static void scan_children(int *all, int *zombies)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t me = getpid();

	ck_assert_ptr_nonnull(d);
	*all = *zombies = 0;
	while ((e = readdir(d))) {
		char path[300], buf[512], *p, st;
		int ppid;
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (!fgets(buf, sizeof(buf), f)) {
			fclose(f);
			continue;
		}
		fclose(f);
		/* pid (comm) state ppid: comm may hold spaces, so from the last ')'. */
		if (!(p = strrchr(buf, ')')) || sscanf(p + 1, " %c %d", &st, &ppid) != 2)
			continue;
		if (ppid != me)
			continue;
		(*all)++;
		if (st == 'Z')
			(*zombies)++;
	}
	closedir(d);
}

/* No child of this process is left, zombie or running (after a wait of
 * up to the hang bound for ones that are still exiting). */
static void assert_no_children(void)
{
	uint64_t end = tt_mono_ns() + (uint64_t)(TT_HANG_S * slow_factor() * 1e9);
	int all, zombies;

	for (;;) {
		scan_children(&all, &zombies);
		if (!all || tt_mono_ns() > end)
			break;
		tt_sleep_ms(10);
	}
	ck_assert_msg(all == 0, "[%s] %d children left (%d zombies)", tt_cfg->name, all, zombies);
}

/* The children this loop reaped, by path. */
static uint64_t reaped(struct tide_loop *loop)
{
	struct tide_loop_stats st;

	tt_stats(loop, &st);
	return st.children_reaped_waitid + st.children_reaped_pidfd + st.children_reaped_sigchld;
}

/* The path this configuration must reap by: its counter only moved. */
static void assert_reaped_by_config(struct tide_loop *loop, uint64_t n)
{
	struct tide_loop_stats st;

	tt_stats(loop, &st);
	if (tt_cfg == &cfg_nopidfd) {
		ck_assert_uint_eq(st.children_reaped_sigchld, n);
	} else if (tt_is_uring() && tide_loop_op_native(loop, TIDE_OP_WAITID)) {
		ck_assert_uint_eq(st.children_reaped_waitid, n);
	} else {
		ck_assert_uint_eq(st.children_reaped_pidfd, n);
	}
	ck_assert_uint_eq(st.children_reaped_waitid + st.children_reaped_pidfd + st.children_reaped_sigchld, n);
}

static struct tide_subprocess_opts opts_zero(void)
{
	struct tide_subprocess_opts o;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	return o;
}

/* Spawns argv as a process (asserted) and takes it from its future. */
static struct tide_process *spawn(struct tide_loop *loop, const char *const *argv, const struct tide_subprocess_opts *o)
{
	struct tide_future *f = NULL;
	struct tide_process *p;
	int err = tide_create_subprocess_exec(loop, argv, o, &f);

	ck_assert_msg(err == 0, "[%s] spawn %s: %s", tt_cfg->name, argv[0], tide_strerror(err));
	ck_assert(tide_future_done(f));
	p = tide_future_take_ptr(f);
	ck_assert_ptr_nonnull(p);
	tide_future_unref(f);
	return p;
}

/* A temporary file, open for reading and writing, already unlinked. */
static int tmpfile_fd(void)
{
	char path[] = "/tmp/tide-subprocess-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	return fd;
}

/* All of fd from the start, NUL-terminated (static buffer). */
static const char *slurp(int fd)
{
	static char buf[65536];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	return buf;
}

/* Runs argv with stdout into a temporary file; waits; returns its output. */
struct run_req {
	struct tide_loop *loop;
	const char *const *argv;
	struct tide_subprocess_opts o;
	int code;
	const char *out;
};

static int64_t run_capture_task(void *arg)
{
	struct run_req *r = arg;
	int fd = tmpfile_fd();
	struct tide_process *p;

	r->o.stdio[1].mode = TIDE_STDIO_FD;
	r->o.stdio[1].fd = fd;
	p = spawn(r->loop, r->argv, &r->o);
	ck_assert_int_eq(tide_process_wait(p, &r->code), 0);
	tide_process_free(p);
	r->out = slurp(fd);
	close(fd);
	return 0;
}

/* --------------------------------------------------------------- tests -- */

struct codes {
	struct tide_loop *loop;
};

static int64_t exit_codes_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *t[] = { "/bin/true", NULL }, *f[] = { "false", NULL };
	const char *three[] = { "/bin/sh", "-c", "exit 3", NULL };
	struct tide_process *p;
	int code = -1;

	p = spawn(*loopp, t, NULL);
	ck_assert_int_gt(tide_process_pid(p), 0);
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	ck_assert_int_eq(code, 0);
	ck_assert_int_eq(tide_process_returncode(p, &code), 1);
	ck_assert_int_eq(code, 0);
	tide_process_free(p);

	p = spawn(*loopp, f, NULL); /* looked up in PATH */
	ck_assert_int_eq(tide_process_returncode(p, &code), 0);
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	ck_assert_int_eq(code, 1);
	tide_process_free(p);

	p = spawn(*loopp, three, NULL);
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	ck_assert_int_eq(code, 3);
	/* Waiting again answers at once. */
	code = -1;
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	ck_assert_int_eq(code, 3);
	tide_process_free(p);
	assert_reaped_by_config(*loopp, 3);
	return 0;
}

START_TEST(test_exit_codes)
{
	struct tide_loop *loop;

	tt_run_main(&loop, exit_codes_task, &loop);
	assert_no_children();
}
END_TEST

static int64_t shell_task(void *arg)
{
	struct tide_loop **loopp = arg;
	struct tide_future *f = NULL;
	struct tide_process *p;
	int code = -1;

	ck_assert_int_eq(tide_create_subprocess_shell(*loopp, "exit $((6 * 7))", NULL, &f), 0);
	p = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	ck_assert_int_eq(code, 42);
	tide_process_free(p);
	return 0;
}

START_TEST(test_shell)
{
	struct tide_loop *loop;

	tt_run_main(&loop, shell_task, &loop);
	assert_no_children();
}
END_TEST

static int64_t signals_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *sl[] = { "sleep", "30", NULL };
	struct tide_process *p;
	int code = 0;

	p = spawn(*loopp, sl, NULL);
	ck_assert_int_eq(tide_process_kill(p), 0);
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	ck_assert_int_eq(code, -SIGKILL);
	/* Reaped: the pid is no longer ours to signal. */
	ck_assert_int_eq(tide_process_kill(p), -ESRCH);
	ck_assert_int_eq(tide_process_send_signal(p, SIGTERM), -ESRCH);
	tide_process_free(p);

	p = spawn(*loopp, sl, NULL);
	ck_assert_int_eq(tide_process_send_signal(p, 0), -EINVAL);
	ck_assert_int_eq(tide_process_send_signal(p, 9999), -EINVAL);
	ck_assert_int_eq(tide_process_terminate(p), 0);
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	ck_assert_int_eq(code, -SIGTERM);
	tide_process_free(p);
	return 0;
}

START_TEST(test_signals_returncode)
{
	struct tide_loop *loop;

	tt_run_main(&loop, signals_task, &loop);
	assert_no_children();
}
END_TEST

static int64_t exits_first_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *t[] = { "/bin/sh", "-c", "exit 5", NULL };
	struct tide_process *p;
	int all, zombies, code = -1;
	uint64_t end;

	p = spawn(*loopp, t, NULL);
	/* Without running the loop, until the child is a zombie. */
	end = tt_mono_ns() + (uint64_t)(TT_HANG_S * slow_factor() * 1e9);
	do {
		tt_sleep_ms(5);
		scan_children(&all, &zombies);
	} while (!zombies && tt_mono_ns() < end);
	ck_assert_int_eq(zombies, 1);
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	ck_assert_int_eq(code, 5);
	ck_assert_int_eq(tide_process_kill(p), -ESRCH);
	tide_process_free(p);
	return 0;
}

START_TEST(test_exits_before_wait)
{
	struct tide_loop *loop;

	tt_run_main(&loop, exits_first_task, &loop);
	assert_no_children();
}
END_TEST

struct waitarg {
	struct tide_process *p;
	int code;
	int rc;
};

static int64_t wait_task(void *arg)
{
	struct waitarg *w = arg;

	w->rc = tide_process_wait(w->p, &w->code);
	return 0;
}

static int64_t cancel_wait_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *sl[] = { "sleep", "30", NULL };
	struct waitarg w = { 0 };
	struct tide_future *t;
	int code = 0;

	w.p = spawn(*loopp, sl, NULL);
	ck_assert_int_eq(tide_task_spawn(*loopp, wait_task, &w, NULL, &t), 0);
	ck_assert_int_eq(tide_sleep(0.01), 0);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_await(t), 0); /* its wait took the cancel */
	tide_future_unref(t);
	ck_assert_int_eq(w.rc, -ECANCELED);
	/* The child runs on, and a wait after the cancelled one sees it end. */
	ck_assert_int_eq(tide_process_returncode(w.p, NULL), 0);
	ck_assert_int_eq(tide_process_kill(w.p), 0);
	ck_assert_int_eq(tide_process_wait(w.p, &code), 0);
	ck_assert_int_eq(code, -SIGKILL);
	tide_process_free(w.p);
	return 0;
}

START_TEST(test_wait_cancelled_then_again)
{
	struct tide_loop *loop;

	tt_run_main(&loop, cancel_wait_task, &loop);
	assert_no_children();
}
END_TEST

/* Two tasks wait for the same child: both see it end, once each. */
static int64_t two_waiters_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *sl[] = { "sleep", "0.05", NULL };
	struct waitarg a = { 0 }, b = { 0 };
	struct tide_future *ta, *tb;

	a.p = b.p = spawn(*loopp, sl, NULL);
	a.rc = b.rc = 1;
	a.code = b.code = -1;
	ck_assert_int_eq(tide_task_spawn(*loopp, wait_task, &a, NULL, &ta), 0);
	ck_assert_int_eq(tide_task_spawn(*loopp, wait_task, &b, NULL, &tb), 0);
	ck_assert_int_eq(tide_await(ta), 0);
	ck_assert_int_eq(tide_await(tb), 0);
	tide_future_unref(ta);
	tide_future_unref(tb);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_int_eq(b.rc, 0);
	ck_assert_int_eq(a.code, 0);
	ck_assert_int_eq(b.code, 0);
	tide_process_free(a.p);
	assert_reaped_by_config(*loopp, 1);
	return 0;
}

START_TEST(test_two_waiters)
{
	struct tide_loop *loop;

	tt_run_main(&loop, two_waiters_task, &loop);
	assert_no_children();
}
END_TEST

START_TEST(test_exec_errors)
{
	struct tide_loop *loop = tt_loop_new();
	const char *missing[] = { "/nonexistent/tide-no-such-program", NULL };
	const char *missing_path[] = { "tide-no-such-program-in-path", NULL };
	const char *t[] = { "/bin/true", NULL };
	char noexec[] = "/tmp/tide-noexec-XXXXXX", garbage[] = "/tmp/tide-garbage-XXXXXX";
	struct tide_subprocess_opts o = opts_zero();
	struct tide_future *f = NULL;
	const char *argv[2] = { NULL, NULL };
	int fd;

	ck_assert_int_eq(tide_create_subprocess_exec(loop, missing, NULL, &f), -ENOENT);
	ck_assert_ptr_null(f);
	ck_assert_int_eq(tide_create_subprocess_exec(loop, missing_path, NULL, &f), -ENOENT);
	/* A file we may not run. */
	fd = mkstemp(noexec);
	ck_assert_int_ge(fd, 0);
	tt_write_all(fd, "#!/bin/sh\n", 10);
	close(fd);
	chmod(noexec, 0644);
	argv[0] = noexec;
	ck_assert_int_eq(tide_create_subprocess_exec(loop, argv, NULL, &f), -EACCES);
	/* An executable the kernel cannot run: no shell fallback. */
	fd = mkstemp(garbage);
	ck_assert_int_ge(fd, 0);
	tt_write_all(fd, "\x01\x02\x03\x04 not a program\n", 19);
	close(fd);
	chmod(garbage, 0755);
	argv[0] = garbage;
	ck_assert_int_eq(tide_create_subprocess_exec(loop, argv, NULL, &f), -ENOEXEC);
	unlink(noexec);
	unlink(garbage);
	/* A cwd that is not there. */
	o.cwd = "/nonexistent/tide-no-such-dir";
	ck_assert_int_eq(tide_create_subprocess_exec(loop, t, &o, &f), -ENOENT);
	ck_assert_int_eq(tide_subprocess_exec(loop, NULL, NULL, t, &o, &f), -ENOENT);
	ck_assert_ptr_null(f);
	ck_assert_uint_eq(reaped(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	assert_no_children();
}
END_TEST

START_TEST(test_bad_input)
{
	struct tide_loop *loop = tt_loop_new();
	const char *empty[] = { NULL }, *blank[] = { "", NULL }, *t[] = { "/bin/true", NULL };
	struct tide_subprocess_opts o = opts_zero();
	struct tide_future *f = NULL;
	int fds[2], closed_fd;

	tt_pipe(fds, 0);
	closed_fd = fds[1];
	close(fds[1]);
	ck_assert_int_eq(tide_create_subprocess_exec(loop, NULL, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_create_subprocess_exec(loop, empty, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_create_subprocess_exec(loop, blank, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_create_subprocess_exec(NULL, t, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_create_subprocess_exec(loop, t, NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_create_subprocess_shell(loop, NULL, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_subprocess_exec(loop, NULL, NULL, NULL, NULL, &f), -EINVAL);
	ck_assert_int_eq(tide_subprocess_shell(loop, NULL, NULL, NULL, NULL, &f), -EINVAL);
	/* An fd that is not open, as stdio and as a pass_fd. */
	o.stdio[0].mode = TIDE_STDIO_FD;
	o.stdio[0].fd = closed_fd;
	ck_assert_int_eq(tide_create_subprocess_exec(loop, t, &o, &f), -EBADF);
	o.stdio[0].fd = -1;
	ck_assert_int_eq(tide_create_subprocess_exec(loop, t, &o, &f), -EBADF);
	o = opts_zero();
	o.pass_fds = &closed_fd;
	o.npass_fds = 1;
	ck_assert_int_eq(tide_create_subprocess_exec(loop, t, &o, &f), -EBADF);
	o.pass_fds = NULL;
	ck_assert_int_eq(tide_create_subprocess_exec(loop, t, &o, &f), -EINVAL);
	/* Modes that do not exist, or not for that stream. */
	o = opts_zero();
	o.stdio[1].mode = (enum tide_stdio_mode)77;
	ck_assert_int_eq(tide_create_subprocess_exec(loop, t, &o, &f), -EINVAL);
	o = opts_zero();
	o.stdio[0].mode = TIDE_STDIO_STDOUT;
	ck_assert_int_eq(tide_create_subprocess_exec(loop, t, &o, &f), -EINVAL);
	o = opts_zero();
	o.size = 1;
	ck_assert_int_eq(tide_create_subprocess_exec(loop, t, &o, &f), -EINVAL);
	ck_assert_ptr_null(f);
	/* NULL objects. */
	ck_assert_int_eq(tide_process_pid(NULL), -EINVAL);
	ck_assert_int_eq(tide_process_returncode(NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_process_kill(NULL), -EINVAL);
	ck_assert_int_eq(tide_process_wait(NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_process_communicate(NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL), -EINVAL);
	ck_assert_ptr_null(tide_process_stdout(NULL));
	ck_assert_int_eq(tide_subprocess_transport_get_pid(NULL), -EINVAL);
	ck_assert_int_eq(tide_subprocess_transport_get_returncode(NULL, NULL), -EINVAL);
	ck_assert_int_eq(tide_subprocess_transport_terminate(NULL), -EINVAL);
	ck_assert_ptr_null(tide_subprocess_transport_get_pipe_transport(NULL, 1));
	tide_subprocess_transport_close(NULL);
	tide_subprocess_transport_unref(NULL);
	tide_process_free(NULL);
	close(fds[0]);
	ck_assert_uint_eq(reaped(loop), 0);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	assert_no_children();
}
END_TEST

/* The child's fds: only stdio and pass_fds, though the parent holds an
 * inheritable fd and the loop's own. */
static int64_t fds_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *ls[] = { "/bin/ls", "/proc/self/fd", NULL };
	struct run_req r = { .loop = *loopp, .argv = ls };
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC: only close_range keeps it out */
	int pass[2], keep;
	char want[256];

	ck_assert_int_ge(leak, 3);
	tt_pipe(pass, 0);
	keep = fcntl(pass[0], F_DUPFD_CLOEXEC, 40);
	ck_assert_int_eq(keep, 40);
	r.o = opts_zero();
	r.o.pass_fds = &keep;
	r.o.npass_fds = 1;
	/* The parent's pipe ends stay out too. */
	r.o.stdio[0].mode = TIDE_STDIO_PIPE;
	r.o.stdio[2].mode = TIDE_STDIO_PIPE;
	run_capture_task(&r);
	ck_assert_int_eq(r.code, 0);
	/* ls opens the directory itself (3): that one is its own. */
	snprintf(want, sizeof(want), "0\n1\n2\n3\n%d\n", keep);
	ck_assert_str_eq(r.out, want);
	close(leak);
	close(pass[0]);
	close(pass[1]);
	close(keep);
	return 0;
}

START_TEST(test_child_fds)
{
	struct tide_loop *loop;

	tt_run_main(&loop, fds_task, &loop);
	assert_no_children();
}
END_TEST

/* Every fd the library made for the loop and the child is close-on-exec
 * (the child closes the rest anyway: this is what other programs the
 * process starts see). */
static void open_fds(bool *open, int n)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	ck_assert_ptr_nonnull(d);
	memset(open, 0, (size_t)n * sizeof(*open));
	while ((e = readdir(d)))
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && atoi(e->d_name) < n)
			open[atoi(e->d_name)] = true;
	/* The directory's own fd is gone once closed. */
	open[dirfd(d)] = false;
	closedir(d);
}

START_TEST(test_library_fds_cloexec)
{
	enum { N = 1024 };
	static bool before[N], after[N];
	const char *sl[] = { "sleep", "30", NULL };
	struct tide_subprocess_opts o = opts_zero();
	struct tide_loop *loop;
	struct tide_process *p;
	int made = 0;

	open_fds(before, N);
	loop = tt_loop_new();
	o.stdio[0].mode = o.stdio[1].mode = o.stdio[2].mode = TIDE_STDIO_PIPE;
	p = spawn(loop, sl, &o);
	open_fds(after, N);
	for (int fd = 0; fd < N; fd++) {
		if (!after[fd] || before[fd])
			continue;
		made++;
		ck_assert_msg(fcntl(fd, F_GETFD) & FD_CLOEXEC, "[%s] fd %d is not close-on-exec", tt_cfg->name, fd);
	}
	/* The loop's own, the child's pidfd (where it has one) and three pipes. */
	ck_assert_int_ge(made, 4);
	ck_assert_int_eq(tide_process_kill(p), 0);
	RUN_UNTIL(loop, tide_process_returncode(p, NULL) == 1);
	tide_process_free(p);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	assert_no_children();
}
END_TEST

/* The child's signal mask and dispositions: clean, though this thread
 * blocks SIGUSR1 and the process ignores SIGUSR2 and SIGPIPE. */
static int64_t sigstate_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *cat[] = { "/bin/cat", "/proc/self/status", NULL };
	struct run_req r = { .loop = *loopp, .argv = cat };
	sigset_t usr1, old;
	const char *blk, *ign;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &usr1, &old), 0);
	signal(SIGUSR2, SIG_IGN);
	r.o = opts_zero();
	run_capture_task(&r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	signal(SIGUSR2, SIG_DFL);
	ck_assert_int_eq(r.code, 0);
	blk = strstr(r.out, "SigBlk:");
	ign = strstr(r.out, "SigIgn:");
	ck_assert_ptr_nonnull(blk);
	ck_assert_ptr_nonnull(ign);
	ck_assert_msg(!strncmp(blk, "SigBlk:\t0000000000000000\n", 25), "[%s] %.25s", tt_cfg->name, blk);
	ck_assert_msg(!strncmp(ign, "SigIgn:\t0000000000000000\n", 25), "[%s] %.25s", tt_cfg->name, ign);
	return 0;
}

START_TEST(test_child_signal_state)
{
	struct tide_loop *loop;

	tt_run_main(&loop, sigstate_task, &loop);
	assert_no_children();
}
END_TEST

static int64_t cwd_env_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *sh[] = { "sh", "-c", "pwd; echo \"$TIDE_X\"; echo \"${HOME-unset}\"", NULL };
	const char *env[] = { "TIDE_X=forty two", "PATH=/usr/bin:/bin", NULL };
	struct run_req r = { .loop = *loopp, .argv = sh };

	r.o = opts_zero();
	r.o.cwd = "/proc";
	r.o.env = env;
	run_capture_task(&r);
	ck_assert_int_eq(r.code, 0);
	ck_assert_str_eq(r.out, "/proc\nforty two\nunset\n");
	return 0;
}

START_TEST(test_cwd_env)
{
	struct tide_loop *loop;

	tt_run_main(&loop, cwd_env_task, &loop);
	assert_no_children();
}
END_TEST

static int64_t session_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *sl[] = { "sleep", "30", NULL };
	struct tide_subprocess_opts o = opts_zero();
	struct tide_process *p;
	int code;

	o.start_new_session = 1;
	p = spawn(*loopp, sl, &o);
	ck_assert_int_eq(getsid(tide_process_pid(p)), tide_process_pid(p));
	ck_assert_int_eq(getpgid(tide_process_pid(p)), tide_process_pid(p));
	ck_assert_int_eq(tide_process_kill(p), 0);
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	tide_process_free(p);

	o = opts_zero();
	o.set_process_group = 1; /* a group of its own (process_group 0) */
	p = spawn(*loopp, sl, &o);
	ck_assert_int_eq(getsid(tide_process_pid(p)), getsid(0));
	ck_assert_int_eq(getpgid(tide_process_pid(p)), tide_process_pid(p));
	ck_assert_int_eq(tide_process_kill(p), 0);
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	tide_process_free(p);

	o = opts_zero();
	p = spawn(*loopp, sl, &o);
	ck_assert_int_eq(getpgid(tide_process_pid(p)), getpgid(0));
	ck_assert_int_eq(tide_process_kill(p), 0);
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	tide_process_free(p);
	return 0;
}

START_TEST(test_session_and_group)
{
	struct tide_loop *loop;

	tt_run_main(&loop, session_task, &loop);
	assert_no_children();
}
END_TEST

/* A process freed while its child runs: the loop still reaps it. */
START_TEST(test_freed_before_exit)
{
	struct tide_loop *loop = tt_loop_new();
	const char *sl[] = { "sleep", "0.1", NULL };
	struct tide_future *f = NULL;

	ck_assert_int_eq(tide_create_subprocess_exec(loop, sl, NULL, &f), 0);
	tide_future_unref(f); /* the process goes with its future */
	RUN_UNTIL(loop, reaped(loop) == 1);
	assert_reaped_by_config(loop, 1);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	assert_no_children();
}
END_TEST

/* A loop freed with children running kills none and leaves no zombie: a
 * reaper thread waits for them. */
START_TEST(test_loop_freed_with_children)
{
	struct tide_loop *loop = tt_loop_new();
	const char *sl[] = { "sleep", "1", NULL };
	pid_t pids[3];

	for (int i = 0; i < 3; i++) {
		struct tide_process *p = spawn(loop, sl, NULL);

		pids[i] = tide_process_pid(p);
		tide_process_free(p);
	}
	ck_assert_int_eq(tide_loop_free(loop), 0);
	/* Running still (or a zombie the reaper is about to take): the loop
	 * killed none. */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(kill(pids[i], 0), 0);
	assert_no_children();
}
END_TEST

/* A process not freed keeps the loop from being freed. */
START_TEST(test_live_process_keeps_loop)
{
	struct tide_loop *loop = tt_loop_new();
	const char *t[] = { "/bin/true", NULL };
	struct tide_process *p = spawn(loop, t, NULL);

	ck_assert_int_eq(tide_loop_free(loop), -EBUSY);
	RUN_UNTIL(loop, tide_process_returncode(p, NULL) == 1);
	tide_process_free(p);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	assert_no_children();
}
END_TEST

/* The low level: a subprocess protocol's callbacks, in order, once each. */
struct sub_rec {
	int made, exited, lost, pipe_lost;
	int order; /* 1 made, 2 exited, 3 lost: each must come after the one before */
	int bad;
	struct tide_subprocess_transport *t;
};

static void rec_made(struct tide_subprocess_transport *t, void *proto)
{
	struct sub_rec *r = proto;

	r->made++;
	r->bad |= r->order != 0;
	r->order = 1;
	r->t = t;
}

static void rec_exited(struct tide_subprocess_transport *t, void *proto)
{
	struct sub_rec *r = proto;
	int code;

	r->exited++;
	r->bad |= r->order != 1 || tide_subprocess_transport_get_returncode(t, &code) != 1;
	r->order = 2;
}

static void rec_lost(struct tide_subprocess_transport *t, int err, void *proto)
{
	struct sub_rec *r = proto;

	(void)t;
	r->lost++;
	r->bad |= r->order != 2 || err != 0;
	r->order = 3;
}

static const struct tide_subprocess_protocol_ops rec_ops = {
	.size = sizeof(rec_ops),
	.connection_made = rec_made,
	.process_exited = rec_exited,
	.connection_lost = rec_lost,
};

START_TEST(test_transport_callbacks)
{
	struct tide_loop *loop = tt_loop_new();
	const char *sh[] = { "/bin/sh", "-c", "exit 7", NULL }, *sl[] = { "sleep", "30", NULL };
	struct sub_rec a = { 0 }, b = { 0 };
	struct tide_subprocess_transport *t;
	struct tide_future *f = NULL;
	int code = 0;

	ck_assert_int_eq(tide_subprocess_exec(loop, &rec_ops, &a, sh, NULL, &f), 0);
	ck_assert_int_eq(a.made, 1);
	t = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_ptr_eq(t, a.t);
	ck_assert_int_gt(tide_subprocess_transport_get_pid(t), 0);
	ck_assert_ptr_null(tide_subprocess_transport_get_pipe_transport(t, 1));
	ck_assert_ptr_null(tide_subprocess_transport_get_pipe_transport(t, 9));
	RUN_UNTIL(loop, a.lost == 1);
	ck_assert_int_eq(tide_subprocess_transport_get_returncode(t, &code), 1);
	ck_assert_int_eq(code, 7);
	ck_assert_int_eq(tide_subprocess_transport_kill(t), -ESRCH);
	tide_subprocess_transport_close(t);
	tide_subprocess_transport_unref(t);

	/* close kills a child that still runs; it is reaped all the same. */
	ck_assert_int_eq(tide_subprocess_shell(loop, &rec_ops, &b, "sleep 30", NULL, &f), 0);
	t = tide_future_take_ptr(f);
	tide_future_unref(f);
	ck_assert_int_eq(tide_subprocess_transport_get_returncode(t, &code), 0);
	tide_subprocess_transport_close(t);
	tide_subprocess_transport_unref(t);
	RUN_UNTIL(loop, b.lost == 1);
	(void)sl;
	ck_assert_int_eq(a.made + a.exited + a.lost, 3);
	ck_assert_int_eq(b.made + b.exited + b.lost, 3);
	ck_assert_int_eq(a.bad | b.bad, 0);
	assert_reaped_by_config(loop, 2);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	assert_no_children();
}
END_TEST

/* 1,000 children at once, each waited for exactly once. */
#define MANY 1000
static int many_lost[MANY];

static void many_exited(struct tide_subprocess_transport *t, void *proto)
{
	(void)t;
	many_lost[(intptr_t)proto] += 100;
}

static void many_conn_lost(struct tide_subprocess_transport *t, int err, void *proto)
{
	(void)t;
	(void)err;
	many_lost[(intptr_t)proto]++;
}

static const struct tide_subprocess_protocol_ops many_ops = {
	.size = sizeof(many_ops),
	.process_exited = many_exited,
	.connection_lost = many_conn_lost,
};

START_TEST(test_thousand_children)
{
	struct tide_loop *loop = tt_loop_new();
	const char *t[] = { "/bin/true", NULL };
	int done;

	memset(many_lost, 0, sizeof(many_lost));
	for (intptr_t i = 0; i < MANY; i++) {
		struct tide_future *f = NULL;

		ck_assert_int_eq(tide_subprocess_exec(loop, &many_ops, (void *)i, t, NULL, &f), 0);
		tide_future_unref(f);
	}
	RUN_UNTIL_FOR(loop, reaped(loop) == MANY, 120);
	/* The connection_lost calls are ready calls after the last exit. */
	ck_assert_int_ge(tide_loop_run_once(loop, 0), 0);
	done = 0;
	for (int i = 0; i < MANY; i++)
		done += many_lost[i] == 101;
	ck_assert_int_eq(done, MANY);
	assert_reaped_by_config(loop, MANY);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	assert_no_children();
}
END_TEST

/*
 * Several threads spawning at once, each on a loop of its own: each
 * thread keeps one child stack (src/io/spawn.c), which CLONE_VFORK makes
 * safe for that thread's children only, so children of different threads
 * must never share one. Each child exits with a code of its own, and
 * every eighth program is missing: its errno comes back through the
 * memory the child shares with the thread that spawned it.
 */
#define SPAWN_THREADS 4
#define THREAD_SPAWNS 24
struct spawner {
	struct tide_loop *loop;
	int idx;
	int good;     /* children that exited with their own code */
	int missing;  /* spawns of the missing program refused with -ENOENT */
};

static int64_t spawner_task(void *arg)
{
	struct spawner *s = arg;
	const char *missing[] = { "/nonexistent/tide-no-such-program", NULL };

	for (int i = 0; i < THREAD_SPAWNS; i++) {
		struct tide_future *f = NULL;
		struct tide_process *p;
		char script[32];
		const char *sh[] = { "/bin/sh", "-c", script, NULL };
		int want = s->idx * 32 + i, code = -1;

		if (i % 8 == 7) {
			s->missing += tide_create_subprocess_exec(s->loop, missing, NULL, &f) == -ENOENT && !f;
			continue;
		}
		snprintf(script, sizeof(script), "exit %d", want);
		p = spawn(s->loop, sh, NULL);
		if (tide_process_wait(p, &code) == 0 && code == want)
			s->good++;
		tide_process_free(p);
	}
	return 0;
}

static void *spawner_main(void *arg)
{
	struct spawner *s = arg;

	tt_run_main(&s->loop, spawner_task, s);
	return NULL;
}

START_TEST(test_threads_spawn_at_once)
{
	struct spawner s[SPAWN_THREADS];
	pthread_t th[SPAWN_THREADS];
	int i;

	memset(s, 0, sizeof(s));
	for (i = 0; i < SPAWN_THREADS; i++) {
		s[i].idx = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, spawner_main, &s[i]), 0);
	}
	for (i = 0; i < SPAWN_THREADS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	for (i = 0; i < SPAWN_THREADS; i++) {
		ck_assert_msg(s[i].good == THREAD_SPAWNS - THREAD_SPAWNS / 8, "[%s] thread %d: %d of %d children exited right",
			      tt_cfg->name, i, s[i].good, THREAD_SPAWNS - THREAD_SPAWNS / 8);
		ck_assert_int_eq(s[i].missing, THREAD_SPAWNS / 8);
	}
	assert_no_children();
}
END_TEST

/* Spawn, kill, start a wait and cancel it, many times over; a second
 * wait on each sees the exit; no zombie after. */
#define CYCLES 10000
struct cycles {
	struct tide_loop *loop;
	int n;
};

static int64_t cycles_task(void *arg)
{
	struct cycles *c = arg;
	const char *sl[] = { "/bin/sleep", "30", NULL };
	struct tide_process *procs[32];
	int batch = 32, code;

	for (int i = 0; i < c->n; i += batch) {
		int k = c->n - i < batch ? c->n - i : batch;

		for (int j = 0; j < k; j++) {
			struct waitarg w = { .p = NULL, .rc = 1 };
			struct tide_future *t;

			procs[j] = w.p = spawn(c->loop, sl, NULL);
			ck_assert_int_eq(tide_task_spawn(c->loop, wait_task, &w, NULL, &t), 0);
			ck_assert_int_eq(tide_yield(), 0); /* it starts and parks on the child */
			ck_assert_int_eq(tide_task_cancel(t), 1);
			ck_assert_int_eq(tide_await(t), 0); /* its wait took the cancel */
			tide_future_unref(t);
			ck_assert_int_eq(w.rc, -ECANCELED);
			ck_assert_int_eq(tide_process_kill(procs[j]), 0);
		}
		for (int j = 0; j < k; j++) {
			ck_assert_int_eq(tide_process_wait(procs[j], &code), 0);
			ck_assert_int_eq(code, -SIGKILL);
			tide_process_free(procs[j]);
		}
	}
	assert_reaped_by_config(c->loop, (uint64_t)c->n);
	return 0;
}

START_TEST(test_spawn_kill_cancel_cycles)
{
	struct cycles c = { .n = CYCLES };

	tt_run_main(&c.loop, cycles_task, &c);
	assert_no_children();
}
END_TEST

/* ----------------------------------------------------------------- pipes -- */

static int64_t communicate_task(void *arg)
{
	struct tide_loop **loopp = arg;
	/* Everything read comes back on stdout and on stderr. */
	const char *tee[] = { "/bin/sh", "-c", "tee /dev/fd/2", NULL };
	struct tide_subprocess_opts o = opts_zero();
	const size_t n = (size_t)16 << 20;
	char *in = malloc(n), *out = NULL, *err = NULL;
	size_t outlen = 0, errlen = 0;
	struct tide_process *p;
	int code = -1;

	ck_assert_ptr_nonnull(in);
	for (size_t i = 0; i < n; i++)
		in[i] = (char)(i * 7 + i / 4093);
	o.stdio[0].mode = o.stdio[1].mode = o.stdio[2].mode = TIDE_STDIO_PIPE;
	p = spawn(*loopp, tee, &o);
	ck_assert_ptr_nonnull(tide_process_stdin(p));
	ck_assert_ptr_nonnull(tide_process_stdout(p));
	ck_assert_ptr_nonnull(tide_process_stderr(p));
	ck_assert_int_eq(tide_process_communicate(p, in, n, &out, &outlen, &err, &errlen, &code), 0);
	ck_assert_int_eq(code, 0);
	ck_assert_uint_eq(outlen, n);
	ck_assert_uint_eq(errlen, n);
	ck_assert(memcmp(out, in, n) == 0);
	ck_assert(memcmp(err, in, n) == 0);
	tide_free(out);
	tide_free(err);
	free(in);
	tide_process_free(p);
	return 0;
}

START_TEST(test_communicate_16mib)
{
	struct tide_loop *loop;

	tt_run_main(&loop, communicate_task, &loop);
	assert_no_children();
}
END_TEST

static int64_t communicate_small_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *sh[] = { "/bin/sh", "-c", "echo a; echo b >&2; exit 9", NULL };
	const char *cat[] = { "cat", NULL };
	struct tide_subprocess_opts o = opts_zero();
	struct tide_process *p;
	char *out = NULL, *err = NULL;
	size_t outlen = 1, errlen = 1;
	int code = -1;

	/* stderr into stdout; no stdin pipe, so input is refused. */
	o.stdio[1].mode = TIDE_STDIO_PIPE;
	o.stdio[2].mode = TIDE_STDIO_STDOUT;
	p = spawn(*loopp, sh, &o);
	ck_assert_ptr_null(tide_process_stdin(p));
	ck_assert_ptr_null(tide_process_stderr(p));
	ck_assert_int_eq(tide_process_communicate(p, "x", 1, &out, &outlen, &err, &errlen, &code), -EINVAL);
	ck_assert_int_eq(tide_process_communicate(p, NULL, 0, &out, &outlen, &err, &errlen, &code), 0);
	ck_assert_int_eq(code, 9);
	ck_assert_uint_eq(outlen, 4);
	ck_assert_str_eq(out, "a\nb\n");
	ck_assert_ptr_null(err);
	ck_assert_uint_eq(errlen, 0);
	tide_free(out);
	tide_process_free(p);

	/* stdin from /dev/null: cat sees EOF at once. */
	o = opts_zero();
	o.stdio[0].mode = TIDE_STDIO_DEVNULL;
	o.stdio[1].mode = TIDE_STDIO_PIPE;
	p = spawn(*loopp, cat, &o);
	ck_assert_int_eq(tide_process_communicate(p, NULL, 0, &out, &outlen, NULL, NULL, &code), 0);
	ck_assert_int_eq(code, 0);
	ck_assert_uint_eq(outlen, 0);
	tide_free(out);
	tide_process_free(p);
	return 0;
}

START_TEST(test_communicate_small)
{
	struct tide_loop *loop;

	tt_run_main(&loop, communicate_small_task, &loop);
	assert_no_children();
}
END_TEST

/* A communicate that another task cancels, or whose process another
 * task frees, while the child keeps its pipes open and runs on. */
struct comm_cancel {
	struct tide_process *p;
	int rc;
	bool returned;
};

static int64_t comm_cancel_task(void *arg)
{
	struct comm_cancel *cc = arg;
	char *out = NULL, *err = NULL;
	size_t outlen = 0, errlen = 0;
	int code = 0;

	cc->rc = tide_process_communicate(cc->p, NULL, 0, &out, &outlen, &err, &errlen, &code);
	cc->returned = true;
	ck_assert_ptr_null(out);
	ck_assert_ptr_null(err);
	return 0;
}

static int64_t communicate_cancelled_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *sl[] = { "sleep", "30", NULL };
	struct tide_subprocess_opts o = opts_zero();
	struct comm_cancel cc = { 0 };
	struct tide_future *t;
	pid_t pid;
	int code = 0;

	/* Cancelled: it returns at once, the child runs on. */
	o.stdio[0].mode = o.stdio[1].mode = o.stdio[2].mode = TIDE_STDIO_PIPE;
	cc.p = spawn(*loopp, sl, &o);
	ck_assert_int_eq(tide_task_spawn(*loopp, comm_cancel_task, &cc, NULL, &t), 0);
	ck_assert_int_eq(tide_sleep(0.05), 0);
	ck_assert(!cc.returned);
	ck_assert_int_eq(tide_task_cancel(t), 1);
	ck_assert_int_eq(tide_await(t), 0);
	tide_future_unref(t);
	ck_assert(cc.returned);
	ck_assert_int_eq(cc.rc, -ECANCELED);
	ck_assert_int_eq(tide_process_returncode(cc.p, NULL), 0);
	ck_assert_int_eq(tide_process_kill(cc.p), 0);
	ck_assert_int_eq(tide_process_wait(cc.p, &code), 0);
	ck_assert_int_eq(code, -SIGKILL);
	tide_process_free(cc.p);

	/* The process freed under it: it returns -ECANCELED, frees it, and
	 * the loop reaps the child, killed by pid (not reaped yet: still its). */
	memset(&cc, 0, sizeof(cc));
	cc.p = spawn(*loopp, sl, &o);
	pid = tide_process_pid(cc.p);
	ck_assert_int_eq(tide_task_spawn(*loopp, comm_cancel_task, &cc, NULL, &t), 0);
	ck_assert_int_eq(tide_sleep(0.05), 0);
	tide_process_free(cc.p);
	ck_assert_int_eq(tide_await(t), 0);
	tide_future_unref(t);
	ck_assert(cc.returned);
	ck_assert_int_eq(cc.rc, -ECANCELED);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	return 0;
}

START_TEST(test_communicate_cancelled)
{
	struct tide_loop *loop;

	tt_run_main(&loop, communicate_cancelled_task, &loop);
	assert_no_children();
}
END_TEST

/* A child that closes its stdout and runs on: EOF first, exit later. */
static int64_t stdout_closed_task(void *arg)
{
	struct tide_loop **loopp = arg;
	const char *sh[] = { "/bin/sh", "-c", "echo hi; exec >&-; sleep 30", NULL };
	struct tide_subprocess_opts o = opts_zero();
	struct tide_process *p;
	char buf[16];
	int code;

	o.stdio[1].mode = TIDE_STDIO_PIPE;
	p = spawn(*loopp, sh, &o);
	ck_assert_int_eq(tide_stream_readexactly(tide_process_stdout(p), buf, 3, NULL), 3);
	ck_assert_int_eq(memcmp(buf, "hi\n", 3), 0);
	ck_assert_int_eq(tide_stream_read(tide_process_stdout(p), buf, sizeof(buf)), 0);
	ck_assert_int_eq(tide_process_returncode(p, NULL), 0);
	ck_assert_int_eq(tide_process_kill(p), 0);
	ck_assert_int_eq(tide_process_wait(p, &code), 0);
	ck_assert_int_eq(code, -SIGKILL);
	tide_process_free(p);
	return 0;
}

START_TEST(test_stdout_closed_early)
{
	struct tide_loop *loop;

	tt_run_main(&loop, stdout_closed_task, &loop);
	assert_no_children();
}
END_TEST

/* The low level with pipes: data per fd, each pipe's end, the exit, then
 * connection_lost last. */
struct pipe_rec {
	char data[3][64];
	size_t len[3];
	int pipe_lost[3], pipe_err[3];
	int exited, lost, bad;
};

static void prec_data(struct tide_subprocess_transport *t, int fd, const void *data, size_t n, void *proto)
{
	struct pipe_rec *r = proto;

	(void)t;
	if (fd < 1 || fd > 2 || r->len[fd] + n > sizeof(r->data[fd]) || r->pipe_lost[fd]) {
		r->bad = 1;
		return;
	}
	memcpy(r->data[fd] + r->len[fd], data, n);
	r->len[fd] += n;
}

static void prec_pipe_lost(struct tide_subprocess_transport *t, int fd, int err, void *proto)
{
	struct pipe_rec *r = proto;

	r->bad |= r->lost || fd < 0 || fd > 2 || tide_subprocess_transport_get_pipe_transport(t, fd) != NULL;
	if (fd >= 0 && fd <= 2) {
		r->pipe_lost[fd]++;
		r->pipe_err[fd] = err;
	}
}

static void prec_exited(struct tide_subprocess_transport *t, void *proto)
{
	struct pipe_rec *r = proto;

	(void)t;
	r->bad |= r->lost;
	r->exited++;
}

static void prec_lost(struct tide_subprocess_transport *t, int err, void *proto)
{
	struct pipe_rec *r = proto;

	(void)t;
	r->bad |= err != 0 || !r->exited || r->pipe_lost[0] != 1 || r->pipe_lost[1] != 1 || r->pipe_lost[2] != 1;
	r->lost++;
}

static const struct tide_subprocess_protocol_ops prec_ops = {
	.size = sizeof(prec_ops),
	.pipe_data_received = prec_data,
	.pipe_connection_lost = prec_pipe_lost,
	.process_exited = prec_exited,
	.connection_lost = prec_lost,
};

START_TEST(test_transport_pipes)
{
	struct tide_loop *loop = tt_loop_new();
	const char *sh[] = { "/bin/sh", "-c", "echo out; echo err >&2; read x; echo \"got $x\"", NULL };
	struct tide_subprocess_opts o = opts_zero();
	struct tide_subprocess_transport *t;
	struct tide_transport *in;
	struct tide_future *f = NULL;
	struct pipe_rec r;
	int code = -1;

	memset(&r, 0, sizeof(r));
	o.stdio[0].mode = o.stdio[1].mode = o.stdio[2].mode = TIDE_STDIO_PIPE;
	ck_assert_int_eq(tide_subprocess_exec(loop, &prec_ops, &r, sh, &o, &f), 0);
	t = tide_future_take_ptr(f);
	tide_future_unref(f);
	in = tide_subprocess_transport_get_pipe_transport(t, 0);
	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(tide_subprocess_transport_get_pipe_transport(t, 1));
	ck_assert_ptr_nonnull(tide_subprocess_transport_get_pipe_transport(t, 2));
	ck_assert_int_eq(tide_transport_write(in, "hi\n", 3), 0);
	tide_transport_close(in);
	RUN_UNTIL(loop, r.lost == 1);
	ck_assert_int_eq(r.bad, 0);
	ck_assert_uint_eq(r.len[1], 11);
	ck_assert_int_eq(memcmp(r.data[1], "out\ngot hi\n", 11), 0);
	ck_assert_uint_eq(r.len[2], 4);
	ck_assert_int_eq(memcmp(r.data[2], "err\n", 4), 0);
	ck_assert_int_eq(r.pipe_err[1], 0);
	ck_assert_int_eq(r.pipe_err[2], 0);
	ck_assert_int_eq(tide_subprocess_transport_get_returncode(t, &code), 1);
	ck_assert_int_eq(code, 0);
	tide_subprocess_transport_close(t);
	tide_subprocess_transport_unref(t);
	ck_assert_int_eq(tide_loop_free(loop), 0);
	assert_no_children();
}
END_TEST

int main(void)
{
	struct tt_suite ts;
	const TTest *tests[] = {
		test_exit_codes, test_shell, test_signals_returncode, test_exits_before_wait,
		test_wait_cancelled_then_again, test_two_waiters, test_exec_errors, test_bad_input,
		test_child_fds, test_library_fds_cloexec, test_child_signal_state, test_cwd_env, test_session_and_group,
		test_freed_before_exit, test_loop_freed_with_children, test_live_process_keeps_loop,
		test_transport_callbacks, test_thousand_children, test_threads_spawn_at_once, test_spawn_kill_cancel_cycles,
		test_communicate_16mib, test_communicate_small, test_communicate_cancelled, test_stdout_closed_early, test_transport_pipes,
	};
	const size_t ntests = sizeof(tests) / sizeof(tests[0]);
	TCase *nowaitid, *nopidfd;

	tt_suite_init(&ts, "subprocess", 600);
	for (size_t i = 0; i < ntests; i++)
		tt_add(&ts, tests[i]);
	/* io_uring with only WAITID masked: the pidfd's readiness on the ring. */
	if (ts.tc[TT_URING]) {
		nowaitid = tt_tcase(&ts, cfg_nowaitid.name);
		tcase_add_checked_fixture(nowaitid, setup_nowaitid, NULL);
		/* Children without pidfds: SIGCHLD, then waitpid(pid, WNOHANG). */
		nopidfd = tt_tcase(&ts, cfg_nopidfd.name);
		tcase_add_checked_fixture(nopidfd, setup_nopidfd, NULL);
		for (size_t i = 0; i < ntests; i++) {
			tcase_add_test(nowaitid, tests[i]);
			tcase_add_test(nopidfd, tests[i]);
		}
	} else {
		tt_skip(&ts, (int)(2 * ntests), ts.uring_why);
	}
	return tt_run(&ts);
}
