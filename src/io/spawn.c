/* SPDX-License-Identifier: MIT */
/*
 * spawn.c: starting a child process, at the system-call level (under
 * tide_subprocess_exec and tide_create_subprocess_exec). One clone with
 * CLONE_VM | CLONE_VFORK | CLONE_PIDFD on a small stack of its own (one
 * per thread, kept): the child shares the parent's memory until it
 * execs, so the parent's page tables are never copied (a parent with
 * 1 GiB resident spawns as fast as a small one), the pidfd comes with
 * the child (no window in which the
 * pid could be reaped and reused), and an exec that fails reports its
 * errno through the shared memory before the parent resumes. DESIGN.md
 * has the measurement against fork and posix_spawn.
 *
 * The hard part is the child's life between clone and exec: it runs on
 * the parent's memory with the parent's thread-local storage, so it calls
 * only thin system-call wrappers (no lock, no allocation, nothing a
 * sanitizer instruments), and no handler of the parent may run in it:
 * every signal is blocked across the clone, and the child sets each
 * disposition to the default before it unblocks them.
 */
#include "io/io.h"
#include "io/spawn-hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char **environ;

/* The child's own stack: its frames and the kernel's signal frame never
 * reach this (signals are blocked until exec). */
#define CHILD_STACK (64 * 1024)

/*
 * One child stack per thread, mapped at its first spawn and kept until
 * the thread exits (the key's destructor unmaps it). CLONE_VFORK
 * suspends the calling thread until its child has exec'd (on its own new
 * memory from then on) or exited, so no two children of one thread ever
 * run on it; another thread's children have that thread's stack. A
 * mapping per spawn (mmap, the child faulting its pages in, munmap) cost
 * the parent about 40 % more CPU a spawn (DESIGN.md has the figures).
 */
static pthread_key_t stack_key;
static pthread_once_t stack_once = PTHREAD_ONCE_INIT;
static bool stack_keyed;

static void stack_unmap(void *stack)
{
	munmap(stack, CHILD_STACK);
}

static void stack_key_make(void)
{
	stack_keyed = pthread_key_create(&stack_key, stack_unmap) == 0;
}

/* This thread's child stack, or NULL without memory; *kept false when it
 * could not be kept (no key): the caller unmaps it after the clone. */
static char *child_stack(bool *kept)
{
	char *stack;

	pthread_once(&stack_once, stack_key_make);
	if (stack_keyed && (stack = pthread_getspecific(stack_key))) {
		*kept = true;
		return stack;
	}
	stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return NULL;
	*kept = stack_keyed && pthread_setspecific(stack_key, stack) == 0;
	return stack;
}

/* The child runs on the parent's memory: nothing a sanitizer instruments
 * (its shadow writes would outlive the child's stack), never inlined into
 * an instrumented caller. */
#define CHILD_CODE __attribute__((noinline, no_sanitize("address", "thread", "undefined")))

static atomic_bool no_pidfd_hook;

void tide__set_spawn_no_pidfd(bool on)
{
	atomic_store(&no_pidfd_hook, on);
}

/* What the child reads (the parent prepared it) and writes back (err). */
struct spawn_ctx {
	const struct tide__spawn_req *r;
	char **paths;            /* the files to exec, in PATH order */
	size_t npaths;
	char *const *envp;
	int *keep;               /* pass_fds, sorted, without duplicates */
	size_t nkeep;
	int err;                 /* the child's errno when it failed, else 0 */
};

/* The kernel's struct sigaction for rt_sigaction (glibc's sigaction
 * refuses its own internal signals, which must be reset too). */
struct k_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

CHILD_CODE static void child_close_from(unsigned lo, unsigned hi)
{
	struct {
		uint64_t cur, max;
	} rl; /* the kernel's struct rlimit64 */
	unsigned maxfd = 1u << 20;

	if (lo > hi)
		return;
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
	/* Before 5.9: one close per number, up to the fd limit, asked here
	 * so that kernels with close_range never pay for it. */
	if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) == 0 && rl.cur < maxfd)
		maxfd = (unsigned)rl.cur;
	for (unsigned fd = lo; fd <= hi && fd < maxfd; fd++)
		syscall(SYS_close, fd);
}

CHILD_CODE static int child_main(void *arg)
{
	struct spawn_ctx *x = arg;
	const struct tide__spawn_req *r = x->r;
	struct k_sigaction dfl = { .handler = SIG_DFL };
	unsigned long none = 0;
	unsigned lo = 3;
	int e = 0, i, sig;
	size_t k;

	/* Default dispositions, SIG_IGN ones too; signals are blocked, so no
	 * handler of the parent's ran here meanwhile. */
	for (sig = 1; sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
	if (r->setsid && syscall(SYS_setsid) < 0)
		goto fail;
	if (r->setpgid && syscall(SYS_setpgid, 0, r->pgid) < 0)
		goto fail;
	/* Sources are 3 or above: putting one in place never clobbers another. */
	for (i = 0; i < 3; i++) {
		int src = r->stdio[i];

		if (src == TIDE__STDIO_TO_STDOUT)
			src = 1;
		if (src >= 0 && syscall(SYS_dup2, src, i) < 0)
			goto fail;
	}
	/* pass_fds are kept: inheritable, and outside every range closed. */
	for (k = 0; k < x->nkeep; k++) {
		if (x->keep[k] < 3)
			continue;
		if (syscall(SYS_fcntl, x->keep[k], F_SETFD, 0) < 0)
			goto fail;
		child_close_from(lo, (unsigned)x->keep[k] - 1);
		lo = (unsigned)x->keep[k] + 1;
	}
	child_close_from(lo, ~0u);
	if (r->cwd && syscall(SYS_chdir, r->cwd) < 0)
		goto fail;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
	/* execvpe's rules: a file that is missing is skipped, one we may
	 * not run is remembered (EACCES wins over a later ENOENT), anything
	 * else ends the search. */
	for (k = 0; k < x->npaths; k++) {
		syscall(SYS_execve, x->paths[k], r->argv, x->envp);
		switch (errno) {
		case EACCES:
			e = EACCES;
			/* fallthrough */
		case ENOENT:
		case ENOTDIR:
		case ESTALE:
		case ENODEV:
		case ETIMEDOUT:
			continue;
		}
		break;
	}
	if (!e || k < x->npaths)
		e = errno;
	x->err = e;
	syscall(SYS_exit_group, 127);
	return 127;
fail:
	x->err = errno;
	syscall(SYS_exit_group, 127);
	return 127;
}

/* The candidates for argv[0]: itself when it holds a '/', else each
 * directory of PATH (envp's when given, else ours) joined with it. */
static int find_paths(const char *name, const char *const *envp, char ***out, size_t *n)
{
	const char *path = NULL, *p, *end;
	size_t cnt = 1, len = strlen(name), i = 0;
	char **v;

	if (!*name)
		return -ENOENT;
	if (strchr(name, '/')) {
		if (!(v = tide__malloc(sizeof(*v))) || !(v[0] = tide__malloc(len + 1))) {
			tide__free(v);
			return -ENOMEM;
		}
		memcpy(v[0], name, len + 1);
		*out = v;
		*n = 1;
		return 0;
	}
	if (envp) {
		for (; *envp; envp++)
			if (!strncmp(*envp, "PATH=", 5)) {
				path = *envp + 5;
				break;
			}
	} else {
		path = getenv("PATH");
	}
	if (!path)
		path = "/bin:/usr/bin"; /* glibc's _CS_PATH */
	for (p = path; *p; p++)
		cnt += *p == ':';
	if (!(v = tide__calloc(cnt, sizeof(*v))))
		return -ENOMEM;
	for (p = path;; p = end + 1) {
		size_t dl;

		end = strchr(p, ':');
		if (!end)
			end = p + strlen(p);
		dl = (size_t)(end - p);
		/* An empty element is the current directory. */
		if (!(v[i] = tide__malloc(dl + len + 3)))
			goto nomem;
		if (dl)
			memcpy(v[i], p, dl);
		else
			v[i][dl++] = '.';
		v[i][dl] = '/';
		memcpy(v[i] + dl + 1, name, len + 1);
		i++;
		if (!*end)
			break;
	}
	*out = v;
	*n = i;
	return 0;
nomem:
	while (i)
		tide__free(v[--i]);
	tide__free(v);
	return -ENOMEM;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Reaps a child that never ran the program (it exits at once). */
static void reap_failed(pid_t pid, int pidfd)
{
	siginfo_t si;
	int r;

	do
		r = pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED) : waitpid(pid, NULL, 0);
	while (r < 0 && errno == EINTR);
}

/*
 * Whether waitid(P_PIDFD) works (5.4): clone gives pidfds from 5.2 and
 * they poll from 5.3, but a pidfd the loop cannot reap by is worth
 * nothing, so such kernels take the SIGCHLD path. Asked once: an fd
 * never open (INT_MAX, past any RLIMIT_NOFILE) is EBADF where P_PIDFD is
 * known, EINVAL where it is not (a negative one is EINVAL on both).
 */
static bool pidfd_waitable(void)
{
	static atomic_int known; /* 0 not asked, 1 yes, 2 no */
	int k = atomic_load(&known);

	if (!k) {
		siginfo_t si;
		int saved = errno;

		k = waitid((idtype_t)P_PIDFD, (id_t)INT_MAX, &si, WEXITED | WNOHANG) < 0 && errno == EINVAL ? 2 : 1;
		errno = saved;
		atomic_store(&known, k);
	}
	return k == 1;
}

/* pidfd_open for a kernel (5.2) whose clone gave none; -1 where there is none. */
static int open_pidfd(pid_t pid)
{
	long fd = syscall(SYS_pidfd_open, pid, 0);

	return fd < 0 ? -1 : (int)fd;
}

int tide__spawn(const struct tide__spawn_req *r, pid_t *pidp, int *pidfdp)
{
	struct spawn_ctx x = { .r = r };
	unsigned long all = ~0ul, old;
	int pidfd = -1, err = 0, saved = errno;
	bool want_pidfd = !atomic_load(&no_pidfd_hook) && pidfd_waitable();
	unsigned long flags;
	bool kept;
	char *stack;
	pid_t pid;
	size_t i;

	if (!r->argv || !r->argv[0])
		return -EINVAL;
	if ((err = find_paths(r->argv[0], r->envp, &x.paths, &x.npaths)))
		return err;
	x.envp = r->envp ? (char *const *)r->envp : environ;
	if (r->nkeep) {
		if (!(x.keep = tide__malloc(r->nkeep * sizeof(*x.keep)))) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(x.keep, r->keep, r->nkeep * sizeof(*x.keep));
		qsort(x.keep, r->nkeep, sizeof(*x.keep), cmp_int);
		for (i = 0; i < r->nkeep; i++)
			if (!i || x.keep[i] != x.keep[x.nkeep - 1])
				x.keep[x.nkeep++] = x.keep[i];
	}
	if (!(stack = child_stack(&kept))) {
		err = -ENOMEM;
		goto out;
	}
	/* Every signal blocked (glibc's own too): none may run a handler of
	 * ours in the child, which shares our memory. */
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof(all));
	flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
	pid = clone(child_main, stack + CHILD_STACK, (int)(flags | (want_pidfd ? CLONE_PIDFD : 0)), &x, &pidfd);
	if (pid < 0 && errno == EINVAL && want_pidfd) {
		/* Before 5.2 clone knows no CLONE_PIDFD. */
		pidfd = -1;
		pid = clone(child_main, stack + CHILD_STACK, (int)flags, &x, NULL);
		if (pid > 0)
			pidfd = open_pidfd(pid);
	}
	if (pid < 0)
		err = -errno;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, sizeof(old));
	if (!kept)
		munmap(stack, CHILD_STACK);
	if (err)
		goto out;
	if (!want_pidfd)
		pidfd = -1;
	/* CLONE_VFORK: we resume once the child exec'd or exited. */
	if (x.err) {
		reap_failed(pid, pidfd);
		if (pidfd >= 0)
			close(pidfd);
		err = -x.err;
		goto out;
	}
	*pidp = pid;
	*pidfdp = pidfd;
out:
	for (i = 0; i < x.npaths; i++)
		tide__free(x.paths[i]);
	tide__free(x.paths);
	tide__free(x.keep);
	errno = saved;
	return err;
}
