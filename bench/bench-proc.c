/* SPDX-License-Identifier: MIT */
/*
 * bench-proc: subprocesses and their pipes against libuv, Python's asyncio
 * and raw posix_spawn, each peer measured in the same run (issue 16,
 * "Benchmarks"; bench/README.md has the table and how to read it).
 *
 * Workloads:
 *   spawn_true_<rss>  spawn /bin/true and wait for it, N times in turn
 *                     (stdio inherited), with this process at about 10 MiB
 *                     and at 1 GiB resident: a ballast of anonymous 4 KiB
 *                     pages, every one touched, tops VmRSS up to the size
 *                     (THP is left as the system has it: madvise here, so
 *                     small pages). Both sizes are measured in every round.
 *   pipe_read_1g      `head -c 1073741824 /dev/zero` with stdout piped to
 *                     this process, read to EOF in 64 KiB pieces.
 * Sides (tide's four each on its own loop, made once and kept warm):
 *   tide           the task API on io_uring: tide_create_subprocess_exec,
 *                  awaited in a task, then tide_process_wait (spawn);
 *                  tide_stream_read of tide_process_stdout to EOF (pipe).
 *   tide_protocol  the protocol API on io_uring: tide_subprocess_exec, the
 *                  loop run until connection_lost (spawn);
 *                  pipe_data_received counting the bytes (pipe).
 *   tide_epoll, tide_protocol_epoll  the same two on the epoll backend
 *                  (both backends in every run: $TIDE_BACKEND is not read).
 *   libuv          uv_spawn with exit_cb (stdio inherited through
 *                  UV_INHERIT_FD); uv_read_start on a UV_CREATE_PIPE stdout
 *                  into one 64 KiB buffer. A fresh uv_loop_t per repetition.
 *   asyncio        bench/spawn.py (python3 or $BENCH_PYTHON), one process
 *                  per repetition, timed inside the script; it grows itself
 *                  to the same RSS. Pipe: `await proc.stdout.read(65536)`
 *                  on 1/16 of the bytes (it reads 30-100x slower).
 *   posix_spawn    raw glibc posix_spawn + blocking waitpid; for the pipe,
 *                  posix_spawnp with a dup2 file action and blocking read().
 *
 * Each measured value is a sample of wall time and CPU time of this process
 * (RUSAGE_SELF: every thread) and of its reaped children (RUSAGE_CHILDREN),
 * reported three ways: the rate (wall), CPU per operation of parent +
 * children, and CPU per operation of the parent alone.
 *
 * The measuring rule (stricter than bench.h's, for a noisy shared machine):
 * one discarded warm-up per side, then rounds; in each round every side
 * runs once (for spawn: at both sizes), the side that goes first rotating.
 * Steal time is sampled from /proc/stat around each round and a round
 * with more than $BENCH_STEAL_MAX % (default 20) is discarded and run again
 * (at most 2 x BENCH_REPS extra rounds); the CPU share of other processes
 * in the round is logged (stderr) and its median reported, not acted on. "ratio_<peer>" is the median over
 * the kept rounds of the paired ratio tide / peer for rates, peer / tide
 * for costs (> 1: tide wins), "lo_<peer>" and "hi_<peer>" its min and max;
 * "tide" and the peers' keys are the medians of each side's values.
 * "posix_spawn_vs_asyncio" is the same paired ratio of raw posix_spawn to
 * asyncio: on the spawn workload, the bound the child's own exec puts on
 * any library's lead over asyncio.
 *
 * Environment: BENCH_REPS (default 9 here), BENCH_SCALE, BENCH_ONLY (spawn,
 * pipe), BENCH_NO_PEER, BENCH_SIDES (a comma-separated list of the sides to
 * run, e.g. "tide" under callgrind), BENCH_STEAL_MAX, BENCH_PYTHON,
 * BENCH_PYTHON_SCRIPT.
 */
#define _GNU_SOURCE /* pipe2 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef TIDE_BENCH_SRCDIR
#define TIDE_BENCH_SRCDIR "bench"
#endif

#define READ_CHUNK 65536
#define TRUE_PATH "/bin/true"


/* ------------------------------------------------------------ samples -- */

/* One run of one side: wall and CPU time, what it counted (spawns, bytes). */
struct sample {
	double wall_ns, self_ns, child_ns, count, rss_kib;
};

struct meter {
	uint64_t wall, self, child;
};

static uint64_t ru_ns(int who)
{
	struct rusage ru;
	BENCH_ASSERT(getrusage(who, &ru) == 0);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void meter_start(struct meter *m)
{
	m->self = ru_ns(RUSAGE_SELF);
	m->child = ru_ns(RUSAGE_CHILDREN);
	m->wall = bench_now_ns();
}

static void meter_stop(const struct meter *m, double count, long rss, struct sample *out)
{
	uint64_t wall = bench_now_ns();
	out->wall_ns = (double)(wall - m->wall);
	out->self_ns = (double)(ru_ns(RUSAGE_SELF) - m->self);
	out->child_ns = (double)(ru_ns(RUSAGE_CHILDREN) - m->child);
	out->count = count;
	out->rss_kib = (double)rss;
}

/* --------------------------------------------------------------- ballast -- */

static void *ballast;
static size_t ballast_len;
static long ballast_target = -1;

/* Grows VmRSS to about target_kib with anonymous pages, populated at once
 * (MAP_POPULATE: every page is there, as if touched), or drops the ballast
 * when target_kib is below what the process holds without it. Nothing is
 * done when the target is the one set last. */
static void ballast_set(long target_kib)
{
	if (target_kib == ballast_target)
		return;
	ballast_target = target_kib;
	if (ballast) {
		munmap(ballast, ballast_len);
		ballast = NULL;
	}
	long have = rss_kib();
	if (have < 0 || target_kib <= have)
		return;
	ballast_len = (size_t)(target_kib - have) * 1024;
	ballast = mmap(NULL, ballast_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	BENCH_ASSERT(ballast != MAP_FAILED);
	/* Written too, so that no page is the shared zero page. */
	long page = sysconf(_SC_PAGESIZE);
	for (size_t off = 0; off < ballast_len; off += (size_t)page)
		((volatile char *)ballast)[off] = 1;
}

/* ----------------------------------------------------------------- steal -- */

struct cpu_snap {
	unsigned long long total, steal, idle; /* clock ticks, all CPUs */
	uint64_t own_ns;                       /* this process and its reaped children */
};

static void cpu_snap(struct cpu_snap *s)
{
	unsigned long long v[10] = { 0 };
	FILE *f = fopen("/proc/stat", "r");

	s->total = s->steal = s->idle = 0;
	s->own_ns = ru_ns(RUSAGE_SELF) + ru_ns(RUSAGE_CHILDREN);
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
		/* guest and guest_nice (8, 9) are already in user and nice. */
		for (int i = 0; i < 8; i++)
			s->total += v[i];
		s->steal = v[7];
		s->idle = v[3] + v[4];
	}
	fclose(f);
}

static double steal_pct(const struct cpu_snap *a, const struct cpu_snap *b)
{
	unsigned long long dt = b->total - a->total;
	return dt ? 100.0 * (double)(b->steal - a->steal) / (double)dt : 0.0;
}

/* The share of the machine's CPU time that other processes used (busy time
 * minus ours and our children's): load that steal does not show. */
static double others_pct(const struct cpu_snap *a, const struct cpu_snap *b)
{
	double dt = (double)(b->total - a->total);
	double tick_ns = 1e9 / (double)sysconf(_SC_CLK_TCK);
	double busy = dt - (double)(b->idle - a->idle) - (double)(b->steal - a->steal);
	double own = (double)(b->own_ns - a->own_ns) / tick_ns;
	double v = dt > 0 ? 100.0 * (busy - own) / dt : 0.0;
	return v < 0 ? 0.0 : v;
}

/* ----------------------------------------------------------------- sides -- */

typedef int (*side_fn)(void *ctx, struct sample *out);

/* tide's four sides (two APIs on two backends) come first: NTIDE. */
enum {
	SIDE_TIDE,
	SIDE_TIDE_PROTO,
	SIDE_TIDE_EPOLL,
	SIDE_TIDE_PROTO_EPOLL,
	NTIDE,
	SIDE_LIBUV = NTIDE,
	SIDE_ASYNCIO,
	SIDE_POSIX,
	NSIDES
};
static const char *const side_names[NSIDES] = { "tide", "tide_protocol", "tide_epoll", "tide_protocol_epoll",
						 "libuv", "asyncio", "posix_spawn" };
static const char *const side_backend[NTIDE] = { "io_uring", "io_uring", "epoll", "epoll" };

struct side {
	side_fn fn; /* NULL: not built, or off */
	void *ctx;
	int broken; /* failed once: null from then on */
};

/* -------------------------------------------------------------- asyncio -- */

struct py_ctx {
	const char *mode; /* "spawn" or "read" */
	uint64_t n;       /* spawns or bytes */
	long rss_mib;     /* spawn only */
};

static int py_cmd(char *cmd, size_t n, const char *args)
{
	const char *py = getenv("BENCH_PYTHON");
	const char *script = getenv("BENCH_PYTHON_SCRIPT");

	if (!py || !*py)
		py = "python3";
	if (!script || !*script)
		script = TIDE_BENCH_SRCDIR "/spawn.py";
	return snprintf(cmd, n, "'%s' '%s' %s", py, script, args) >= (int)n ? -1 : 0;
}

static int py_run(void *ctx, struct sample *out)
{
	struct py_ctx *p = ctx;
	char args[128], cmd[1024], line[256];
	double v[5];
	int got = 0;
	FILE *f;

	if (!strcmp(p->mode, "spawn"))
		snprintf(args, sizeof(args), "spawn %llu %ld", (unsigned long long)p->n, p->rss_mib);
	else
		snprintf(args, sizeof(args), "read %llu", (unsigned long long)p->n);
	if (py_cmd(cmd, sizeof(cmd), args) < 0)
		return -1;
	fflush(stdout);
	if (!(f = popen(cmd, "r")))
		return -1;
	if (fgets(line, sizeof(line), f))
		got = sscanf(line, "%lf %lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3], &v[4]);
	if (pclose(f) != 0 || got != 5 || v[0] <= 0) {
		fprintf(stderr, "bench-proc: `%s` failed: the asyncio columns are null\n", cmd);
		return -1;
	}
	*out = (struct sample){ v[0], v[1], v[2], v[3], v[4] };
	return 0;
}

static void py_version(char *buf, size_t n)
{
	char cmd[1024], line[64];
	FILE *f;

	snprintf(buf, n, "null");
	if (py_cmd(cmd, sizeof(cmd), "version 2>/dev/null") < 0 || !(f = popen(cmd, "r")))
		return;
	if (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		snprintf(buf, n, "\"%s\"", line);
	}
	pclose(f);
}

/* ---------------------------------------------------------- posix_spawn -- */

struct raw_ctx {
	uint64_t n;     /* spawns, or bytes to read */
	char *buf;      /* pipe: READ_CHUNK bytes */
	char size[32];  /* pipe: head's -c argument */
};

static int raw_spawn_run(void *ctx, struct sample *out)
{
	struct raw_ctx *c = ctx;
	char *const argv[] = { (char *)TRUE_PATH, NULL };
	struct meter m;
	long rss = rss_kib();

	meter_start(&m);
	for (uint64_t i = 0; i < c->n; i++) {
		pid_t pid;
		int st;
		int rc = posix_spawn(&pid, TRUE_PATH, NULL, NULL, argv, environ);
		if (rc != 0) {
			fprintf(stderr, "bench-proc: posix_spawn: %s\n", strerror(rc));
			return -1;
		}
		while (waitpid(pid, &st, 0) < 0)
			BENCH_ASSERT(errno == EINTR);
		BENCH_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	meter_stop(&m, (double)c->n, rss, out);
	return 0;
}

static int raw_pipe_run(void *ctx, struct sample *out)
{
	struct raw_ctx *c = ctx;
	char *const argv[] = { (char *)"head", (char *)"-c", c->size, (char *)"/dev/zero", NULL };
	posix_spawn_file_actions_t fa;
	struct meter m;
	long rss = rss_kib();
	uint64_t got = 0;
	int p[2], st, rc;
	pid_t pid;

	meter_start(&m);
	BENCH_ASSERT(pipe2(p, O_CLOEXEC) == 0);
	BENCH_ASSERT(posix_spawn_file_actions_init(&fa) == 0);
	BENCH_ASSERT(posix_spawn_file_actions_adddup2(&fa, p[1], 1) == 0);
	rc = posix_spawnp(&pid, "head", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		fprintf(stderr, "bench-proc: posix_spawnp head: %s\n", strerror(rc));
		return -1;
	}
	for (;;) {
		ssize_t r = read(p[0], c->buf, READ_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		BENCH_ASSERT(r >= 0);
		if (r == 0)
			break;
		got += (uint64_t)r;
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0)
		BENCH_ASSERT(errno == EINTR);
	meter_stop(&m, (double)got, rss, out);
	BENCH_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0 && got == c->n);
	return 0;
}

/* ---------------------------------------------------------------- libuv -- */

#ifdef TIDE_BENCH_LIBUV
struct uv_ctx {
	uint64_t n;
	char *buf;
	char size[32];
	uint64_t got;
	int64_t status;
	int term_signal;
};

static void uv_on_exit(uv_process_t *p, int64_t status, int term_signal)
{
	struct uv_ctx *c = p->data;
	c->status = status;
	c->term_signal = term_signal;
	uv_close((uv_handle_t *)p, NULL);
}

static int uv_spawn_run(void *ctx, struct sample *out)
{
	struct uv_ctx *c = ctx;
	char *args[] = { (char *)TRUE_PATH, NULL };
	uv_stdio_container_t stdio[3];
	uv_process_options_t o;
	uv_process_t proc;
	uv_loop_t loop;
	struct meter m;
	long rss = rss_kib();

	memset(&o, 0, sizeof(o));
	for (int i = 0; i < 3; i++) {
		stdio[i].flags = UV_INHERIT_FD;
		stdio[i].data.fd = i;
	}
	o.exit_cb = uv_on_exit;
	o.file = TRUE_PATH;
	o.args = args;
	o.stdio = stdio;
	o.stdio_count = 3;
	meter_start(&m);
	BENCH_UV_CHECK(uv_loop_init(&loop));
	for (uint64_t i = 0; i < c->n; i++) {
		c->status = -1;
		proc.data = c;
		BENCH_UV_CHECK(uv_spawn(&loop, &proc, &o));
		BENCH_UV_CHECK(uv_run(&loop, UV_RUN_DEFAULT));
		BENCH_ASSERT(c->status == 0 && c->term_signal == 0);
	}
	BENCH_UV_CHECK(uv_loop_close(&loop));
	meter_stop(&m, (double)c->n, rss, out);
	return 0;
}

static void uv_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct uv_ctx *c = h->data;
	(void)hint;
	*buf = uv_buf_init(c->buf, READ_CHUNK);
}

static void uv_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct uv_ctx *c = s->data;
	(void)buf;
	if (n > 0) {
		c->got += (uint64_t)n;
	} else if (n < 0) {
		if (n != UV_EOF)
			fprintf(stderr, "bench-proc: libuv read: %s\n", uv_strerror((int)n));
		uv_close((uv_handle_t *)s, NULL);
	}
}

static int uv_pipe_run(void *ctx, struct sample *out)
{
	struct uv_ctx *c = ctx;
	char *args[] = { (char *)"head", (char *)"-c", c->size, (char *)"/dev/zero", NULL };
	uv_stdio_container_t stdio[3];
	uv_process_options_t o;
	uv_process_t proc;
	uv_pipe_t pipe;
	uv_loop_t loop;
	struct meter m;
	long rss = rss_kib();

	memset(&o, 0, sizeof(o));
	stdio[0].flags = UV_INHERIT_FD;
	stdio[0].data.fd = 0;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&pipe;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	o.exit_cb = uv_on_exit;
	o.file = "head";
	o.args = args;
	o.stdio = stdio;
	o.stdio_count = 3;
	c->got = 0;
	c->status = -1;
	meter_start(&m);
	BENCH_UV_CHECK(uv_loop_init(&loop));
	BENCH_UV_CHECK(uv_pipe_init(&loop, &pipe, 0));
	pipe.data = c;
	proc.data = c;
	BENCH_UV_CHECK(uv_spawn(&loop, &proc, &o));
	BENCH_UV_CHECK(uv_read_start((uv_stream_t *)&pipe, uv_on_alloc, uv_on_read));
	BENCH_UV_CHECK(uv_run(&loop, UV_RUN_DEFAULT));
	BENCH_UV_CHECK(uv_loop_close(&loop));
	meter_stop(&m, (double)c->got, rss, out);
	BENCH_ASSERT(c->status == 0 && c->term_signal == 0 && c->got == c->n);
	return 0;
}
#endif

/* ----------------------------------------------------------------- tide -- */

struct tide_ctx {
	struct tide_loop *loop;
	uint64_t n;     /* spawns, or bytes */
	char *buf;
	char size[32];
	/* the protocol side's state */
	struct tide_future *done;
	uint64_t got;
	int code;
};

/* The task API: create_subprocess_exec, await, wait; n times. */
static int64_t tide_spawn_task(void *arg)
{
	struct tide_ctx *c = arg;
	const char *const argv[] = { TRUE_PATH, NULL };

	for (uint64_t i = 0; i < c->n; i++) {
		struct tide_future *f;
		struct tide_process *p;
		int code = -1, rc;

		rc = tide_create_subprocess_exec(c->loop, argv, NULL, &f);
		if (rc < 0)
			return rc;
		int64_t r = tide_await(f);
		p = r < 0 ? NULL : tide_future_take_ptr(f);
		tide_future_unref(f);
		if (r < 0)
			return r;
		rc = tide_process_wait(p, &code);
		tide_process_free(p);
		if (rc < 0)
			return rc;
		if (code != 0)
			return -EPROTO;
	}
	return 0;
}

static int tide_run_task(struct tide_ctx *c, tide_task_cb fn)
{
	struct tide_future *t;
	int64_t v = -1;

	BENCH_CHECK(tide_task_spawn(c->loop, fn, c, NULL, &t));
	BENCH_CHECK(tide_loop_run_until_complete(c->loop, t));
	int rc = tide_future_result(t, &v, NULL);
	tide_future_unref(t);
	BENCH_CHECK(rc);
	BENCH_CHECK(v);
	return 0;
}

static int tide_spawn_run(void *ctx, struct sample *out)
{
	struct tide_ctx *c = ctx;
	struct meter m;
	long rss = rss_kib();

	meter_start(&m);
	tide_run_task(c, tide_spawn_task);
	meter_stop(&m, (double)c->n, rss, out);
	return 0;
}

/* The protocol API: the child's exit (and its pipes' end) completes done. */
static void proto_data(struct tide_subprocess_transport *t, int fd, const void *data, size_t n, void *proto)
{
	struct tide_ctx *c = proto;
	(void)t;
	(void)data;
	if (fd == 1)
		c->got += n;
}

static void proto_lost(struct tide_subprocess_transport *t, int err, void *proto)
{
	struct tide_ctx *c = proto;
	int code = -1;

	if (tide_subprocess_transport_get_returncode(t, &code) != 1)
		code = -1;
	c->code = code;
	tide_future_set_result(c->done, err, NULL);
}

static const struct tide_subprocess_protocol_ops proto_ops = {
	.size = sizeof(proto_ops),
	.pipe_data_received = proto_data,
	.connection_lost = proto_lost,
};

/* One child through tide_subprocess_exec, run until connection_lost. */
static void tide_proto_one(struct tide_ctx *c, const char *const *argv, const struct tide_subprocess_opts *o)
{
	struct tide_future *f;
	int64_t err = -1;

	BENCH_CHECK(tide_future_new(c->loop, &c->done));
	c->code = -1;
	BENCH_CHECK(tide_subprocess_exec(c->loop, &proto_ops, c, argv, o, &f));
	BENCH_CHECK(tide_loop_run_until_complete(c->loop, f));
	BENCH_CHECK(tide_loop_run_until_complete(c->loop, c->done));
	BENCH_CHECK(tide_future_result(f, NULL, NULL));
	struct tide_subprocess_transport *t = tide_future_take_ptr(f);
	BENCH_ASSERT(t);
	tide_subprocess_transport_unref(t);
	tide_future_unref(f);
	BENCH_CHECK(tide_future_result(c->done, &err, NULL));
	tide_future_unref(c->done);
	c->done = NULL;
	BENCH_CHECK(err);
	BENCH_ASSERT(c->code == 0);
}

static int tide_proto_spawn_run(void *ctx, struct sample *out)
{
	struct tide_ctx *c = ctx;
	const char *const argv[] = { TRUE_PATH, NULL };
	struct meter m;
	long rss = rss_kib();

	meter_start(&m);
	for (uint64_t i = 0; i < c->n; i++)
		tide_proto_one(c, argv, NULL);
	meter_stop(&m, (double)c->n, rss, out);
	return 0;
}

static void pipe_opts(struct tide_subprocess_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	o->stdio[1].mode = TIDE_STDIO_PIPE;
}

/* The task API: tide_stream_read of the child's stdout to EOF. */
static int64_t tide_pipe_task(void *arg)
{
	struct tide_ctx *c = arg;
	const char *const argv[] = { "head", "-c", c->size, "/dev/zero", NULL };
	struct tide_subprocess_opts o;
	struct tide_future *f;
	struct tide_process *p;
	int code = -1, rc;
	ssize_t r;

	pipe_opts(&o);
	rc = tide_create_subprocess_exec(c->loop, argv, &o, &f);
	if (rc < 0)
		return rc;
	int64_t v = tide_await(f);
	p = v < 0 ? NULL : tide_future_take_ptr(f);
	tide_future_unref(f);
	if (v < 0)
		return v;
	c->got = 0;
	while ((r = tide_stream_read(tide_process_stdout(p), c->buf, READ_CHUNK)) > 0)
		c->got += (uint64_t)r;
	rc = r < 0 ? (int)r : tide_process_wait(p, &code);
	tide_process_free(p);
	if (rc < 0)
		return rc;
	return code == 0 && c->got == c->n ? 0 : -EPROTO;
}

static int tide_pipe_run(void *ctx, struct sample *out)
{
	struct tide_ctx *c = ctx;
	struct meter m;
	long rss = rss_kib();

	meter_start(&m);
	tide_run_task(c, tide_pipe_task);
	meter_stop(&m, (double)c->got, rss, out);
	return 0;
}

static int tide_proto_pipe_run(void *ctx, struct sample *out)
{
	struct tide_ctx *c = ctx;
	const char *const argv[] = { "head", "-c", c->size, "/dev/zero", NULL };
	struct tide_subprocess_opts o;
	struct meter m;
	long rss = rss_kib();

	pipe_opts(&o);
	c->got = 0;
	meter_start(&m);
	tide_proto_one(c, argv, &o);
	meter_stop(&m, (double)c->got, rss, out);
	BENCH_ASSERT(c->got == c->n);
	return 0;
}

/* ---------------------------------------------------------------- rounds -- */

/*
 * A workload measured at nphase settings (spawn: two sizes): in each round,
 * for each phase (in an order that alternates), phase_setup then every side
 * once. v[phase][side][round] is what was measured.
 */
#define MAX_PHASES 2
#define MAX_ROUNDS 64

struct workload {
	const char *name;
	int nphase;
	long phase_rss_kib[MAX_PHASES];
	struct side side[MAX_PHASES][NSIDES];
	struct sample v[MAX_PHASES][NSIDES][MAX_ROUNDS];
	int kept;              /* rounds kept */
	int discarded;         /* rounds dropped for steal */
	double steal_max_kept; /* the worst steal % among kept rounds */
	int steal_high;        /* too few quiet rounds: every round kept */
	double steal[MAX_ROUNDS];
	double others[MAX_ROUNDS]; /* other processes' CPU share, % */
};

/* BENCH_SIDES: a comma-separated list of the sides to run (all by default). */
static int side_selected(int k)
{
	const char *l = getenv("BENCH_SIDES");
	size_t len = strlen(side_names[k]);

	if (!l || !*l)
		return 1;
	for (const char *p = l; (p = strstr(p, side_names[k])) != NULL; p += len)
		if ((p == l || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
			return 1;
	return 0;
}

static int side_active(const struct side *s, int k)
{
	const char *np = getenv("BENCH_NO_PEER");
	if (np && *np && *np != '0' && k >= NTIDE)
		return 0;
	return s->fn && !s->broken && side_selected(k);
}

static void run_side(struct side *s, int k, struct sample *out)
{
	out->count = NAN;
	if (!side_active(s, k))
		return;
	if (s->fn(s->ctx, out) < 0) {
		s->broken = 1;
		out->count = NAN;
	}
}

static void measure_workload(struct workload *w)
{
	int reps = bench_reps();
	const char *sm = getenv("BENCH_STEAL_MAX");
	double steal_max = sm && *sm ? atof(sm) : 20.0;
	struct sample scratch;
	int round = 0, tries = 0, max_tries = 3 * reps;

	if (reps > MAX_ROUNDS / 2)
		reps = MAX_ROUNDS / 2;
	/* Warm-up: every side once per phase. */
	for (int ph = 0; ph < w->nphase; ph++) {
		ballast_set(w->phase_rss_kib[ph]);
		for (int k = 0; k < NSIDES; k++)
			run_side(&w->side[ph][k], k, &scratch);
	}
	for (int ph = 0; ph < w->nphase; ph++)
		for (int k = 0; k < NSIDES; k++)
			for (int r = 0; r < MAX_ROUNDS; r++)
				w->v[ph][k][r].count = NAN; /* a side that does not run is null */
	w->kept = w->discarded = 0;
	w->steal_max_kept = 0;
	while (w->kept < reps && tries < max_tries && round < MAX_ROUNDS) {
		struct cpu_snap a, b;
		cpu_snap(&a);
		/* Each side runs at every phase back to back (so that its
		 * phases are compared a few seconds apart), the phases in an
		 * order that alternates from side to side: the ballast
		 * changes once per side. */
		for (int j = 0; j < NSIDES; j++) {
			int k = (j + tries) % NSIDES;
			for (int i = 0; i < w->nphase; i++) {
				int ph = (i + j + tries) % w->nphase;
				if (!side_active(&w->side[ph][k], k))
					continue;
				ballast_set(w->phase_rss_kib[ph]);
				run_side(&w->side[ph][k], k, &w->v[ph][k][round]);
			}
		}
		cpu_snap(&b);
		w->steal[round] = steal_pct(&a, &b);
		w->others[round] = others_pct(&a, &b);
		fprintf(stderr, "bench-proc: %s round %d: steal %.1f %%, other processes %.0f %%%s\n", w->name,
			tries + 1, w->steal[round], w->others[round],
			w->steal[round] > steal_max ? " (discarded)" : "");
		tries++;
		round++;
		if (w->steal[round - 1] > steal_max) {
			w->discarded++;
			continue;
		}
		w->kept++;
	}
	ballast_set(0);
	w->steal_high = w->kept < (reps + 1) / 2;
	/* Compact: the kept rounds first (all of them if too few were quiet). */
	int n = 0;
	for (int r = 0; r < round; r++) {
		if (!w->steal_high && w->steal[r] > steal_max)
			continue;
		for (int ph = 0; ph < w->nphase; ph++)
			for (int k = 0; k < NSIDES; k++)
				w->v[ph][k][n] = w->v[ph][k][r];
		if (w->steal[r] > w->steal_max_kept)
			w->steal_max_kept = w->steal[r];
		w->others[n] = w->others[r];
		n++;
	}
	w->kept = n;
}

/* What a line reports of a sample: a rate or a cost per operation. */
enum metric { M_RATE, M_CPU, M_PARENT_CPU };

static double metric_value(const struct sample *s, enum metric m, double scale)
{
	if (isnan(s->count) || s->count <= 0)
		return NAN;
	switch (m) {
	case M_RATE:
		return s->count / scale / (s->wall_ns / 1e9);
	case M_CPU:
		return (s->self_ns + s->child_ns) / 1e3 / (s->count / scale);
	case M_PARENT_CPU:
		return s->self_ns / 1e3 / (s->count / scale);
	}
	return NAN;
}

static double median_of(double *v, int n)
{
	int m = 0;
	for (int i = 0; i < n; i++)
		if (!isnan(v[i]))
			v[m++] = v[i];
	return m ? bench_median(v, m) : NAN;
}

/*
 * The median over the kept rounds of side a's paired ratio to side b (a / b
 * for rates, b / a for costs: > 1 when a wins), its min in *lo and max in
 * *hi; NAN where no round has both.
 */
static double paired_ratio(const struct workload *w, int ph, int a, int b, enum metric m, double scale, double *lo,
			   double *hi)
{
	double ratios[MAX_ROUNDS], med;
	int q = 0;

	for (int i = 0; i < w->kept; i++) {
		double x = metric_value(&w->v[ph][a][i], m, scale);
		double y = metric_value(&w->v[ph][b][i], m, scale);
		if (!isnan(x) && !isnan(y) && x > 0 && y > 0)
			ratios[q++] = m == M_RATE ? x / y : y / x;
	}
	*lo = *hi = NAN;
	if (!q)
		return NAN;
	med = bench_median(ratios, q); /* sorts */
	*lo = ratios[0];
	*hi = ratios[q - 1];
	return med;
}

/*
 * One JSON line: side `me` (tide or tide_protocol) as "tide", every peer by
 * name, the paired ratios. scale divides the count (bytes -> MiB or GiB).
 * "posix_spawn_vs_asyncio" is raw posix_spawn's own paired ratio to asyncio
 * (with "lo_" and "hi_"): how far any library in C can get ahead of asyncio
 * where the child's work dominates.
 */
static void emit(const struct workload *w, int ph, int me, const char *bench, const char *unit, enum metric m,
		 double scale, const char *goal, const char *extra)
{
	static const int peers[] = { SIDE_LIBUV, SIDE_ASYNCIO, SIDE_POSIX };
	double vals[MAX_ROUNDS], lo, hi, med;
	int n = w->kept;

	printf("{\"bench\":\"%s\",\"unit\":\"%s\",\"api\":\"%s\"", bench, unit, me % 2 ? "protocol" : "task");
	for (int i = 0; i < n; i++)
		vals[i] = metric_value(&w->v[ph][me][i], m, scale);
	bench_print_num("tide", median_of(vals, n));
	for (size_t p = 0; p < sizeof(peers) / sizeof(peers[0]); p++) {
		for (int i = 0; i < n; i++)
			vals[i] = metric_value(&w->v[ph][peers[p]][i], m, scale);
		bench_print_num(side_names[peers[p]], median_of(vals, n));
	}
	for (size_t p = 0; p < sizeof(peers) / sizeof(peers[0]); p++) {
		char key[48];

		med = paired_ratio(w, ph, me, peers[p], m, scale, &lo, &hi);
		snprintf(key, sizeof(key), "ratio_%s", side_names[peers[p]]);
		if (isnan(med))
			printf(",\"%s\":null", key);
		else
			printf(",\"%s\":%.3f", key, med);
		snprintf(key, sizeof(key), "lo_%s", side_names[peers[p]]);
		bench_print_num(key, lo);
		snprintf(key, sizeof(key), "hi_%s", side_names[peers[p]]);
		bench_print_num(key, hi);
	}
	med = paired_ratio(w, ph, SIDE_POSIX, SIDE_ASYNCIO, m, scale, &lo, &hi);
	bench_print_num("posix_spawn_vs_asyncio", med);
	bench_print_num("lo_posix_spawn_vs_asyncio", lo);
	bench_print_num("hi_posix_spawn_vs_asyncio", hi);
	if (goal)
		printf(",\"goal\":\"%s\"", goal);
	printf(",\"backend\":\"%s\",\"reps\":%d,\"stat\":\"median of paired ratios\"", side_backend[me], n);
	printf(",\"rounds_discarded\":%d,\"steal_pct_max\":%.1f%s", w->discarded, w->steal_max_kept,
	       w->steal_high ? ",\"steal_high\":true" : "");
	for (int i = 0; i < n; i++)
		vals[i] = w->others[i];
	bench_print_num("others_pct_median", median_of(vals, n));
	/* Each side's VmRSS when it ran (the asyncio side's is Python's). */
	for (int k = 0; k < NSIDES; k++) {
		char key[48];
		snprintf(key, sizeof(key), "rss_kib_%s", side_names[k]);
		for (int i = 0; i < n; i++)
			vals[i] = isnan(w->v[ph][k][i].count) ? NAN : w->v[ph][k][i].rss_kib;
		bench_print_num(key, median_of(vals, n));
	}
	printf("%s}\n", extra ? extra : "");
	fflush(stdout);
}

/*
 * How much each side slows down from the small parent to the big one: per
 * round, its rate at 1 GiB / its rate at 10 MiB (or the CPU cost at 10 MiB
 * / at 1 GiB), the median over the rounds, and its min and max. Side `me`
 * is "tide"; no ratio between sides (it is a ratio already).
 */
static void emit_size(const struct workload *w, int me, const char *bench, enum metric m, const char *goal)
{
	static const int order[] = { -1, SIDE_LIBUV, SIDE_ASYNCIO, SIDE_POSIX };
	double vals[MAX_ROUNDS];

	printf("{\"bench\":\"%s\",\"unit\":\"%s\",\"api\":\"%s\"", bench,
	       m == M_RATE ? "rate at 1 GiB / at 10 MiB" : "CPU at 10 MiB / at 1 GiB", me % 2 ? "protocol" : "task");
	for (size_t j = 0; j < sizeof(order) / sizeof(order[0]); j++) {
		int k = order[j] < 0 ? me : order[j];
		const char *name = order[j] < 0 ? "tide" : side_names[k];
		char key[48];
		int q = 0;
		for (int i = 0; i < w->kept; i++) {
			double a = metric_value(&w->v[0][k][i], m, 1), b = metric_value(&w->v[1][k][i], m, 1);
			if (!isnan(a) && !isnan(b) && a > 0 && b > 0)
				vals[q++] = m == M_RATE ? b / a : a / b;
		}
		bench_print_num(name, q ? bench_median(vals, q) : NAN);
		snprintf(key, sizeof(key), "lo_%s", name);
		bench_print_num(key, q ? vals[0] : NAN);
		snprintf(key, sizeof(key), "hi_%s", name);
		bench_print_num(key, q ? vals[q - 1] : NAN);
	}
	printf(",\"goal\":\"%s\",\"backend\":\"%s\",\"reps\":%d,\"stat\":\"median of paired ratios\"}\n", goal,
	       side_backend[me], w->kept);
	fflush(stdout);
}

/* ------------------------------------------------------------------ main -- */

/* A loop on one backend, debug off; NULL (its sides are then null) when
 * this machine cannot run that backend. */
static struct tide_loop *new_loop(const char *backend)
{
	struct tide_loop *loop;
	struct tide_loop_opts o;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.backend = backend;
	o.debug = -1;
	if (tide_loop_new(&o, &loop) < 0) {
		fprintf(stderr, "bench-proc: no %s loop here (%s): its columns are null\n", backend,
			tide_loop_new_error());
		return NULL;
	}
	return loop;
}

/* The suffix of a tide side's rows: "", "_protocol", "_epoll", "_protocol_epoll". */
static const char *side_suffix(int me)
{
	static const char *const sfx[NTIDE] = { "", "_protocol", "_epoll", "_protocol_epoll" };
	return sfx[me];
}

static void spawn_bench(const char *pyv)
{
	static struct workload w;
	static const long sizes[MAX_PHASES] = { 10 * 1024, 1024 * 1024 };
	static const char *const size_names[MAX_PHASES] = { "10m", "1g" };
	static const enum metric metrics[] = { M_RATE, M_CPU, M_PARENT_CPU };
	static const char *const units[] = { "spawns/s", "us CPU/spawn, parent+children", "us CPU/spawn, parent" };
	static const char *const msfx[] = { "", "_cpu", "_parent" };
	struct tide_loop *loops[2] = { new_loop("io_uring"), new_loop("epoll") };
	struct tide_ctx tc[MAX_PHASES][NTIDE];
	struct raw_ctx rc[MAX_PHASES];
	struct py_ctx py[MAX_PHASES];
	uint64_t n = bench_scaled(100, 10), n_py = bench_scaled(50, 5);
#ifdef TIDE_BENCH_LIBUV
	struct uv_ctx uc[MAX_PHASES];
#endif
	char extra[256], name[64];

	memset(&w, 0, sizeof(w));
	w.name = "spawn";
	w.nphase = 2;
	for (int ph = 0; ph < 2; ph++) {
		w.phase_rss_kib[ph] = sizes[ph];
		for (int k = 0; k < NTIDE; k++) {
			tc[ph][k] = (struct tide_ctx){ .loop = loops[k / 2], .n = n };
			w.side[ph][k] = (struct side){ k % 2 ? tide_proto_spawn_run : tide_spawn_run, &tc[ph][k], 0 };
			if (!loops[k / 2])
				w.side[ph][k].fn = NULL;
		}
		rc[ph] = (struct raw_ctx){ .n = n };
		py[ph] = (struct py_ctx){ "spawn", n_py, sizes[ph] / 1024 };
		w.side[ph][SIDE_ASYNCIO] = (struct side){ py_run, &py[ph], 0 };
		w.side[ph][SIDE_POSIX] = (struct side){ raw_spawn_run, &rc[ph], 0 };
#ifdef TIDE_BENCH_LIBUV
		uc[ph] = (struct uv_ctx){ .n = n };
		w.side[ph][SIDE_LIBUV] = (struct side){ uv_spawn_run, &uc[ph], 0 };
#endif
	}
	measure_workload(&w);
	snprintf(extra, sizeof(extra), ",\"n\":%llu,\"n_asyncio\":%llu,\"python\":%s", (unsigned long long)n,
		 (unsigned long long)n_py, pyv);
	for (int ph = 0; ph < 2; ph++)
		for (int m = 0; m < 3; m++)
			for (int me = 0; me < NTIDE; me++) {
				snprintf(name, sizeof(name), "spawn_true_%s%s%s", size_names[ph], side_suffix(me),
					 msfx[m]);
				emit(&w, ph, me, name, units[m], metrics[m], 1,
				     m == 0 ? ">= 1.0x libuv, >= 5x asyncio" : NULL, extra);
			}
	for (int m = 0; m < 2; m++)
		for (int me = 0; me < NTIDE; me++) {
			snprintf(name, sizeof(name), "spawn_true_1g_vs_10m%s%s", side_suffix(me), msfx[m]);
			emit_size(&w, me, name, metrics[m], "tide >= 0.9");
		}
	for (int b = 0; b < 2; b++)
		if (loops[b])
			bench_tide_loop_free(loops[b]);
}

static void pipe_bench(const char *pyv)
{
	static struct workload w;
	static const enum metric metrics[] = { M_RATE, M_CPU, M_PARENT_CPU };
	static const char *const units[] = { "MiB/s", "ms CPU/GiB, parent+children", "ms CPU/GiB, parent" };
	static const char *const msfx[] = { "", "_cpu", "_parent" };
	static const char *const api[NTIDE] = { "_stream", "_protocol", "_stream_epoll", "_protocol_epoll" };
	const double scales[] = { 1024.0 * 1024.0, (double)(1ull << 30) / 1e3, (double)(1ull << 30) / 1e3 };
	uint64_t bytes = bench_scaled(1ull << 30, 1 << 24);
	struct tide_loop *loops[2] = { new_loop("io_uring"), new_loop("epoll") };
	struct tide_ctx tc[NTIDE];
	struct raw_ctx rc;
	struct py_ctx py = { "read", bytes / 16, 0 };
	char *buf = malloc(READ_CHUNK);
#ifdef TIDE_BENCH_LIBUV
	struct uv_ctx uc;
#endif
	char extra[256], name[64];

	BENCH_ASSERT(buf);
	memset(&w, 0, sizeof(w));
	w.name = "pipe";
	w.nphase = 1;
	w.phase_rss_kib[0] = 10 * 1024;
	rc = (struct raw_ctx){ .n = bytes, .buf = buf };
	snprintf(rc.size, sizeof(rc.size), "%llu", (unsigned long long)bytes);
	for (int k = 0; k < NTIDE; k++) {
		tc[k] = (struct tide_ctx){ .loop = loops[k / 2], .n = bytes, .buf = buf };
		memcpy(tc[k].size, rc.size, sizeof(rc.size));
		w.side[0][k] = (struct side){ k % 2 ? tide_proto_pipe_run : tide_pipe_run, &tc[k], 0 };
		if (!loops[k / 2])
			w.side[0][k].fn = NULL;
	}
	w.side[0][SIDE_ASYNCIO] = (struct side){ py_run, &py, 0 };
	w.side[0][SIDE_POSIX] = (struct side){ raw_pipe_run, &rc, 0 };
#ifdef TIDE_BENCH_LIBUV
	uc = (struct uv_ctx){ .n = bytes, .buf = buf };
	memcpy(uc.size, rc.size, sizeof(rc.size));
	w.side[0][SIDE_LIBUV] = (struct side){ uv_pipe_run, &uc, 0 };
#endif
	measure_workload(&w);
	snprintf(extra, sizeof(extra), ",\"bytes\":%llu,\"bytes_asyncio\":%llu,\"chunk\":%d,\"python\":%s",
		 (unsigned long long)bytes, (unsigned long long)py.n, READ_CHUNK, pyv);
	for (int m = 0; m < 3; m++)
		for (int me = 0; me < NTIDE; me++) {
			snprintf(name, sizeof(name), "pipe_read_1g%s%s", api[me], msfx[m]);
			emit(&w, 0, me, name, units[m], metrics[m], scales[m], m == 0 ? ">= 1.0x libuv" : NULL, extra);
		}
	for (int b = 0; b < 2; b++)
		if (loops[b])
			bench_tide_loop_free(loops[b]);
	free(buf);
}

int main(void)
{
	char pyv[80];

	/* The default here is 9 rounds: the brief's minimum for a median of
	 * paired ratios on this machine. */
	setenv("BENCH_REPS", getenv("BENCH_REPS") ? getenv("BENCH_REPS") : "9", 1);
	py_version(pyv, sizeof(pyv));
	if (bench_selected("spawn"))
		spawn_bench(pyv);
	if (bench_selected("pipe"))
		pipe_bench(pyv);
	return 0;
}
