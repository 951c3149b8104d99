/* SPDX-License-Identifier: MIT */
/*
 * proc-cpu.h: a process's CPU time from /proc, for the load generators
 * (bench/echo-load.c, bench/tls-load.c), which rank servers by it.
 */
#ifndef TIDE_BENCH_PROC_CPU_H
#define TIDE_BENCH_PROC_CPU_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* /proc/PID/stat's utime and stime (every thread), in ns: the kernel
 * charges each tick to one of them, so over a measured interval of a few
 * hundred ticks their ratio says how the CPU time splits between the
 * server's own code and the kernel's. 0 if they cannot be read. */
static int proc_user_sys_ns(int pid, uint64_t *user, uint64_t *sys)
{
	char path[64], buf[1024];
	unsigned long long ut = 0, st = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the command may contain spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	uint64_t tick = 1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK);
	*user = ut * tick;
	*sys = st * tick;
	return 1;
}

/* CPU time of every thread of pid, in ns; 0 if it cannot be read. */
static uint64_t proc_cpu_ns(int pid)
{
	char path[64];
	uint64_t total = 0;
	int found = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			char p[320];
			snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", pid, e->d_name);
			FILE *f = fopen(p, "r");
			unsigned long long run = 0;
			if (f) {
				if (fscanf(f, "%llu", &run) == 1) {
					total += run;
					found = 1;
				}
				fclose(f);
			}
		}
		closedir(d);
	}
	if (found)
		return total;
	/* No schedstat (CONFIG_SCHEDSTATS off): utime + stime in ticks. */
	uint64_t ut, st;
	return proc_user_sys_ns(pid, &ut, &st) ? ut + st : 0;
}

#endif /* TIDE_BENCH_PROC_CPU_H */
