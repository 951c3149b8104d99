# SPDX-License-Identifier: MIT
# bench/: loop benchmarks against libuv, built and run only by `make bench`
# (EXTRA_PROGRAMS: never built by plain `make` or `make check`).
#
#   make bench                       build, run, write $(BENCH_RESULTS)/loop.{jsonl,md,svg}
#   make bench BENCH_REPS=9          more repetitions (median kept)
#   make bench BENCH_SCALE=0.1       smaller workloads (a quick smoke run)
#   make bench BENCH_RESULTS=/tmp/r  write the results somewhere else
#   TIDE_BACKEND=epoll make bench    measure the epoll backend
#
#   make bench-loop / bench-task / bench-net / bench-proc   one group only
#                                    (`make bench` runs them all, in turn)
#   make bench-tls                   TLS against nginx, OpenSSL and asyncio
#                                    (not part of `make bench`: needs nginx)
#
# See bench/README.md for what each workload does and how the peers are built.

BENCH_BINS = \
	bench/bench-call-soon \
	bench/bench-timers \
	bench/bench-threadsafe \
	bench/bench-executor \
	bench/bench-alloc
# Tasks against ucontext, asyncio (bench/pingpong.py) and libuv: task.{jsonl,md}.
TASK_BENCH_BINS = bench/bench-task
# Networking (bench-net): servers on tide and three peers, driven by one
# load generator (bench/net.sh; results net.{jsonl,md,svg}).
NET_BENCH_BINS = bench/echo-load bench/tide-echo bench/peers/epoll-peer bench/peers/uring-peer
if HAVE_LIBUV
NET_BENCH_BINS += bench/peers/uv-peer
endif
# Subprocesses and pipes against libuv, asyncio (bench/spawn.py) and raw
# posix_spawn (issue 16): proc.{jsonl,md}.
PROC_BENCH_BINS = bench/bench-proc
# TLS (bench-tls, issue 17): tide's TLS servers against nginx, a raw
# OpenSSL echo on epoll and asyncio, driven by wrk and bench/tls-load
# (bench/tls.sh; results tls.{jsonl,md}). Needs OpenSSL 3 at configure.
TLS_BENCH_BINS = bench/echo-load bench/tide-echo bench/peers/epoll-peer
if HAVE_OPENSSL
TLS_BENCH_BINS += bench/tls-load bench/peers/tls-epoll-peer
endif
TLS_BENCH_EXAMPLES =
if ENABLE_EXAMPLES
TLS_BENCH_EXAMPLES += examples/http-hello
if HAVE_OPENSSL
TLS_BENCH_EXAMPLES += examples/https-hello
endif
endif
EXTRA_PROGRAMS += $(BENCH_BINS) $(TASK_BENCH_BINS) $(NET_BENCH_BINS) $(PROC_BENCH_BINS) \
	bench/tls-load bench/peers/tls-epoll-peer
CLEANFILES += $(BENCH_BINS) $(TASK_BENCH_BINS) bench/echo-load bench/tide-echo \
	bench/peers/epoll-peer bench/peers/uring-peer bench/peers/uv-peer $(PROC_BENCH_BINS) \
	bench/tls-load bench/peers/tls-epoll-peer
EXTRA_DIST += bench/README.md bench/table.sh bench/loop.gp bench/pingpong.py \
	bench/net.sh bench/net-table.sh bench/net.gp bench/json.awk bench/spawn.py \
	bench/tls.sh bench/peers/tls-echo.py bench/peers/nginx.conf.in
# The committed results that README.md quotes and links to.
EXTRA_DIST += bench/results/loop.jsonl bench/results/loop.md bench/results/loop.svg \
	bench/results/task.jsonl bench/results/task.md \
	bench/results/net.jsonl bench/results/net.md bench/results/net.svg \
	bench/results/proc.jsonl bench/results/proc.md \
	bench/results/tls.jsonl bench/results/tls.md

# Benchmarks are always optimised, whatever CFLAGS the build uses for the
# library (user CFLAGS come last on the command line and can still override).
BENCH_CFLAGS = $(AM_CFLAGS) -O2
BENCH_LDADD = src/libtide.la -lm
if HAVE_LIBUV
BENCH_CFLAGS += $(LIBUV_CFLAGS) -DTIDE_BENCH_LIBUV=1
BENCH_LDADD += $(LIBUV_LIBS)
endif

bench_bench_call_soon_SOURCES = bench/bench-call-soon.c bench/bench.h
bench_bench_call_soon_CFLAGS = $(BENCH_CFLAGS)
bench_bench_call_soon_LDADD = $(BENCH_LDADD)
bench_bench_timers_SOURCES = bench/bench-timers.c bench/bench.h
bench_bench_timers_CFLAGS = $(BENCH_CFLAGS)
bench_bench_timers_LDADD = $(BENCH_LDADD)
bench_bench_threadsafe_SOURCES = bench/bench-threadsafe.c bench/bench.h
bench_bench_threadsafe_CFLAGS = $(BENCH_CFLAGS)
bench_bench_threadsafe_LDADD = $(BENCH_LDADD)
bench_bench_executor_SOURCES = bench/bench-executor.c bench/bench.h
bench_bench_executor_CFLAGS = $(BENCH_CFLAGS)
bench_bench_executor_LDADD = $(BENCH_LDADD)
bench_bench_alloc_SOURCES = bench/bench-alloc.c bench/bench.h
bench_bench_alloc_CFLAGS = $(BENCH_CFLAGS)
bench_bench_alloc_LDADD = $(BENCH_LDADD)
# bench-task also assembles the library's own context switch (hidden inside
# libtide) to time it raw: the coro_switch row, x86-64 only.
# (Per-target CPPFLAGS give its objects their own names, so that this copy
# of src/task/coro-x86_64.S does not clash with the library's.)
bench_bench_task_SOURCES = bench/bench-task.c bench/bench.h
bench_bench_task_CPPFLAGS = $(AM_CPPFLAGS) -DTIDE_BENCH_SRCDIR='"$(abs_top_srcdir)/bench"'
bench_bench_task_CFLAGS = $(BENCH_CFLAGS)
bench_bench_task_LDADD = $(BENCH_LDADD)
if CORO_X86_64
bench_bench_task_SOURCES += src/task/coro-x86_64.S
bench_bench_task_CPPFLAGS += -DTIDE_BENCH_RAW_SWITCH=1
endif
bench_bench_proc_SOURCES = bench/bench-proc.c bench/bench.h
bench_bench_proc_CPPFLAGS = $(AM_CPPFLAGS) -DTIDE_BENCH_SRCDIR='"$(abs_top_srcdir)/bench"'
bench_bench_proc_CFLAGS = $(BENCH_CFLAGS)
bench_bench_proc_LDADD = $(BENCH_LDADD)

# The networking programs: the load generator and the peers use no tide at
# all (the peers link only their own library), tide-echo links libtide.
bench_echo_load_SOURCES = bench/echo-load.c bench/proc-cpu.h
bench_echo_load_CFLAGS = $(AM_CFLAGS) -O2
bench_tide_echo_SOURCES = bench/tide-echo.c bench/peers/peer.h
bench_tide_echo_CFLAGS = $(BENCH_CFLAGS)
bench_tide_echo_LDADD = src/libtide.la -lpthread
bench_peers_epoll_peer_SOURCES = bench/peers/epoll.c bench/peers/peer.h
bench_peers_epoll_peer_CFLAGS = $(AM_CFLAGS) -O2
bench_peers_uring_peer_SOURCES = bench/peers/uring.c bench/peers/peer.h
bench_peers_uring_peer_CFLAGS = $(AM_CFLAGS) -O2 $(LIBURING_CFLAGS)
bench_peers_uring_peer_LDADD = $(LIBURING_LIBS)
bench_tls_load_SOURCES = bench/tls-load.c bench/proc-cpu.h
bench_tls_load_CFLAGS = $(AM_CFLAGS) -O2 $(OPENSSL_CFLAGS)
bench_tls_load_LDADD = $(OPENSSL_LIBS)
bench_peers_tls_epoll_peer_SOURCES = bench/peers/tls-epoll.c bench/peers/peer.h
bench_peers_tls_epoll_peer_CFLAGS = $(AM_CFLAGS) -O2 $(OPENSSL_CFLAGS)
bench_peers_tls_epoll_peer_LDADD = $(OPENSSL_LIBS)
if HAVE_LIBUV
bench_peers_uv_peer_SOURCES = bench/peers/uv.c bench/peers/peer.h
bench_peers_uv_peer_CFLAGS = $(AM_CFLAGS) -O2 $(LIBUV_CFLAGS)
bench_peers_uv_peer_LDADD = $(LIBUV_LIBS)
endif

# Results go to the source tree by default so that they can be committed
# beside the README that quotes them.
# BENCH_REPS and BENCH_SCALE reach the programs through the environment
# (make exports command-line and environment variables); not set here.
BENCH_RESULTS = $(top_srcdir)/bench/results

# Each program prints one JSON line per workload; they are collected in
# temporary files named after this shell's pid (two builds sharing the source
# tree may run `make bench` at once) and moved into place only when every
# program succeeded. Two benches at once on one machine skew each other's
# numbers, of course: run one at a time when the numbers matter.
bench:
	@$(MAKE) $(AM_MAKEFLAGS) bench-loop && $(MAKE) $(AM_MAKEFLAGS) bench-task && \
	  $(MAKE) $(AM_MAKEFLAGS) bench-net && $(MAKE) $(AM_MAKEFLAGS) bench-proc

bench-loop: $(BENCH_BINS)
	@$(MKDIR_P) $(BENCH_RESULTS); \
	out=$(BENCH_RESULTS); tmp=$$out/loop-$$$$; \
	trap 'rm -f $$tmp.*.tmp' EXIT; \
	if test -z "$(LIBUV_LIBS)"; then \
	  echo "bench: libuv not found by configure: the libuv columns will be null"; fi; \
	: > $$tmp.jsonl.tmp; \
	for p in $(BENCH_BINS); do \
	  ./$$p > $$tmp.part.tmp || { echo "bench: $$p failed" >&2; exit 1; }; \
	  cat $$tmp.part.tmp; cat $$tmp.part.tmp >> $$tmp.jsonl.tmp; \
	done; \
	{ $(SHELL) $(top_srcdir)/bench/table.sh $$tmp.jsonl.tmp; \
	  echo; \
	  echo "Made by \`make bench\` on $$(date -u +%Y-%m-%d), $$(uname -sr)," \
	       "$$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')," \
	       "$$(getconf _NPROCESSORS_ONLN) CPUs, libuv $$($(PKG_CONFIG) --modversion libuv 2>/dev/null || echo none)."; \
	} > $$tmp.md.tmp || exit 1; \
	mv -f $$tmp.jsonl.tmp $$out/loop.jsonl; mv -f $$tmp.md.tmp $$out/loop.md; \
	echo "bench: wrote $$out/loop.jsonl and $$out/loop.md"; \
	if command -v gnuplot >/dev/null 2>&1; then \
	  $(SHELL) $(top_srcdir)/bench/table.sh --dat $$out/loop.jsonl > $$tmp.dat.tmp || exit 1; \
	  if test -s $$tmp.dat.tmp; then \
	    gnuplot -e "datafile='$$tmp.dat.tmp'; outfile='$$tmp.svg.tmp'" \
	      $(top_srcdir)/bench/loop.gp && mv -f $$tmp.svg.tmp $$out/loop.svg && \
	      echo "bench: wrote $$out/loop.svg"; \
	  else echo "bench: no ratios to plot, loop.svg not written"; fi; \
	else \
	  echo "bench: gnuplot not found (apt-get install gnuplot-nox): loop.svg not written"; \
	fi

# The same for the task programs; their lines name several peers, so the
# table has one row per (workload, peer) (table.sh --peers). No chart: the
# ratios span 1x to 100x and more.
bench-task: $(TASK_BENCH_BINS)
	@$(MKDIR_P) $(BENCH_RESULTS); \
	out=$(BENCH_RESULTS); tmp=$$out/task-$$$$; \
	trap 'rm -f $$tmp.*.tmp' EXIT; \
	: > $$tmp.jsonl.tmp; \
	for p in $(TASK_BENCH_BINS); do \
	  BENCH_PYTHON_SCRIPT=$(abs_top_srcdir)/bench/pingpong.py \
	    ./$$p > $$tmp.part.tmp || { echo "bench: $$p failed" >&2; exit 1; }; \
	  cat $$tmp.part.tmp; cat $$tmp.part.tmp >> $$tmp.jsonl.tmp; \
	done; \
	{ $(SHELL) $(top_srcdir)/bench/table.sh --peers $$tmp.jsonl.tmp; \
	  echo; \
	  echo "Made by \`make bench\` on $$(date -u +%Y-%m-%d), $$(uname -sr)," \
	       "$$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')," \
	       "$$(getconf _NPROCESSORS_ONLN) CPUs, libuv $$($(PKG_CONFIG) --modversion libuv 2>/dev/null || echo none)," \
	       "$$($${BENCH_PYTHON:-python3} --version 2>&1 || echo 'no python3')."; \
	} > $$tmp.md.tmp || exit 1; \
	mv -f $$tmp.jsonl.tmp $$out/task.jsonl; mv -f $$tmp.md.tmp $$out/task.md; \
	echo "bench: wrote $$out/task.jsonl and $$out/task.md"

# The networking benchmarks: bench/net.sh starts each server in turn (a
# fresh process per cell, on a free port it asks the kernel for), drives it
# with bench/echo-load or wrk, and writes net.{jsonl,md,svg} itself (into
# temporary files first, as above). BENCH_SCALE scales each cell's duration;
# NET_REPS, NET_SERVERS and NET_WORKLOADS are described in bench/README.md.
bench-net: $(NET_BENCH_BINS)
	@$(MKDIR_P) $(BENCH_RESULTS); \
	PKG_CONFIG='$(PKG_CONFIG)' $(SHELL) $(top_srcdir)/bench/net.sh \
	  --bin bench --out $(BENCH_RESULTS) --src $(top_srcdir)
# Subprocesses and pipes (bench/bench-proc.c): one program measures tide on
# both backends and its three peers, rounds interleaved; one table row per
# line, a column per peer (table.sh --wide). BENCH_REPS defaults to 9 here.
bench-proc: $(PROC_BENCH_BINS)
	@$(MKDIR_P) $(BENCH_RESULTS); \
	out=$(BENCH_RESULTS); tmp=$$out/proc-$$$$; \
	trap 'rm -f $$tmp.*.tmp' EXIT; \
	if test -z "$(LIBUV_LIBS)"; then \
	  echo "bench: libuv not found by configure: the libuv columns will be null"; fi; \
	BENCH_PYTHON_SCRIPT=$(abs_top_srcdir)/bench/spawn.py \
	  ./bench/bench-proc > $$tmp.jsonl.tmp || { echo "bench: bench/bench-proc failed" >&2; exit 1; }; \
	cat $$tmp.jsonl.tmp; \
	{ $(SHELL) $(top_srcdir)/bench/table.sh --wide $$tmp.jsonl.tmp; \
	  echo; \
	  echo "Made by \`make bench-proc\` on $$(date -u +%Y-%m-%d), $$(uname -sr)," \
	       "$$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')," \
	       "$$(getconf _NPROCESSORS_ONLN) CPUs, libuv $$($(PKG_CONFIG) --modversion libuv 2>/dev/null || echo none)," \
	       "$$($${BENCH_PYTHON:-python3} --version 2>&1 || echo 'no python3')."; \
	} > $$tmp.md.tmp || exit 1; \
	mv -f $$tmp.jsonl.tmp $$out/proc.jsonl; mv -f $$tmp.md.tmp $$out/proc.md; \
	echo "bench: wrote $$out/proc.jsonl and $$out/proc.md"
.PHONY: bench bench-loop bench-task bench-net bench-proc

# TLS (bench/tls.sh): every server in turn, rounds interleaved, paired
# ratios; TLS_REPS, TLS_SECTIONS, TLS_STEAL_MAX... are described there and
# in bench/README.md. Not part of `make bench`: it needs nginx (tls.sh
# installs Debian's nginx-light when run as root, else skips those cells).
bench-tls: $(TLS_BENCH_BINS) $(TLS_BENCH_EXAMPLES)
	@if test -z "$(OPENSSL_LIBS)"; then \
	  echo "bench-tls: configure found no OpenSSL 3 (apt-get install libssl-dev): skipped" >&2; exit 0; fi; \
	$(MKDIR_P) $(BENCH_RESULTS); \
	$(SHELL) $(top_srcdir)/bench/tls.sh --bin bench --ex examples --out $(BENCH_RESULTS) --src $(top_srcdir)
.PHONY: bench-tls

# bench/ab: one build folder against another, interleaved paired ratios
# and callgrind counts (bench/ab/README.md); run by hand.
EXTRA_DIST += bench/ab/README.md bench/ab/common.sh bench/ab/loop.sh bench/ab/net.sh \
	bench/ab/verify_maps.sh bench/ab/callgrind.sh bench/ab/callgrind-echo.sh \
	bench/ab/analyze.py bench/ab/cg_compare.py bench/ab/cg_echo_compare.py bench/ab/parse_json.py
