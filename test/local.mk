# SPDX-License-Identifier: MIT
# The Check test programs, one per area. Each loop-level test runs as three
# TCases (io_uring, io_uring-masked, epoll); see test/helpers.h.
# Paths are relative to the top folder (included from the top Makefile.am).

# The sanitizer builds are several times slower: stretch Check's per-tcase
# timeouts instead of shortening the tests.
TIDE_TESTS_ENVIRONMENT =
if ENABLE_ASAN
TIDE_TESTS_ENVIRONMENT += CK_TIMEOUT_MULTIPLIER=4; export CK_TIMEOUT_MULTIPLIER;
else
if ENABLE_TSAN
TIDE_TESTS_ENVIRONMENT += CK_TIMEOUT_MULTIPLIER=4; export CK_TIMEOUT_MULTIPLIER;
else
if CORO_UCONTEXT
# So is the ucontext switch (a sigprocmask system call per swapcontext):
# the streams' byte-at-a-time tests make 32 million switches.
TIDE_TESTS_ENVIRONMENT += CK_TIMEOUT_MULTIPLIER=3; export CK_TIMEOUT_MULTIPLIER;
endif
endif
endif
AM_TESTS_ENVIRONMENT = $(TIDE_TESTS_ENVIRONMENT)

# Without Check (configure says so), make check fails at once with the
# reason: the library and the examples build all the same.

# make -j starts the tests in the order of TESTS: the longest go first, so
# that the slots finish together (test/subprocess takes about 2.5 min
# alone on two cores, its 10,000 spawn cycles on five configurations;
# realclients.sh and test/task about 35 and 25 s; the rest under 12 s each).
if HAVE_CHECK
TESTS += test/subprocess
endif
TESTS += test/realclients.sh

if HAVE_CHECK
TIDE_TESTS = test/task test/loop test/load test/tls test/transport test/timeouts \
	test/combinators test/stream-reader test/timer test/sockops \
	test/ops test/stream-socket test/executor test/sync test/datagram \
	test/server test/pipe test/coro-aarch64 test/backend test/future test/resolve \
	test/coro test/exports test/opts test/ownership test/fork test/threads test/parsers \
	test/slowclients test/signal test/cancel \
	test/conformance/asyncio test/conformance/threadsafe test/conformance/server test/conformance/sock \
	test/conformance/locks test/conformance/queues test/conformance/tasks \
	test/conformance/streams test/conformance/subprocess test/conformance/events
check_PROGRAMS += test/subprocess
check_PROGRAMS += $(TIDE_TESTS)
TESTS += $(TIDE_TESTS)
# test/sockops, test/transport and test/ops again, with half the io_uring
# backend's io_uring_enter calls failing on purpose (TIDE_FAULT_ENTER):
# about 10 s on two cores.
TESTS += test/faults.sh
CLEANFILES += test/faults-*.log

TEST_HELPERS = test/helpers.c test/helpers.h
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
TEST_LDADD = src/libtide.la $(CHECK_LIBS)
# The tests that reach the library's hidden symbols (test hooks, the
# context switch) link its objects directly.
TEST_INTERNAL_LDADD = src/libtide-internal.la $(CHECK_LIBS)

test_loop_SOURCES = test/loop.c $(TEST_HELPERS)
test_loop_CFLAGS = $(TEST_CFLAGS)
test_loop_LDADD = $(TEST_LDADD)

test_timer_SOURCES = test/timer.c $(TEST_HELPERS)
test_timer_CFLAGS = $(TEST_CFLAGS)
test_timer_LDADD = $(TEST_LDADD)

# Cases ported from CPython's test_asyncio (test/conformance/README.md).
test_conformance_asyncio_SOURCES = test/conformance/asyncio.c $(TEST_HELPERS)
test_conformance_asyncio_CFLAGS = $(TEST_CFLAGS)
test_conformance_asyncio_LDADD = $(TEST_LDADD)
EXTRA_DIST += test/conformance/README.md
# asyncio.run_coroutine_threadsafe (test_tasks' RunCoroutineThreadsafeTests)
# and the handle's lifetimes across threads.
test_conformance_threadsafe_SOURCES = test/conformance/threadsafe.c $(TEST_HELPERS)
test_conformance_threadsafe_CFLAGS = $(TEST_CFLAGS)
test_conformance_threadsafe_LDADD = $(TEST_LDADD)
# test_streams, test_protocols, test_buffered_proto.
test_conformance_streams_SOURCES = test/conformance/streams.c $(TEST_HELPERS)
test_conformance_streams_CFLAGS = $(TEST_CFLAGS)
test_conformance_streams_LDADD = $(TEST_LDADD)
# test_subprocess and test_unix_events (signals, unix sockets, pipes).
# It starts no thread, and is not in TSAN_TESTS (nor is test/subprocess):
# clang-14's TSan runtime fails its own CHECK (tsan_rtl.cpp:234, in
# ForkAfter) at tide's clone() spawn; signals are test/signal's there.
test_conformance_subprocess_SOURCES = test/conformance/subprocess.c $(TEST_HELPERS)
test_conformance_subprocess_CFLAGS = $(TEST_CFLAGS)
test_conformance_subprocess_LDADD = $(TEST_LDADD)

# asyncio's sock= and connect_accepted_socket (issue 18): the *_sock calls
# on the caller's sockets, their refusals (fd untouched) and the fds tide
# closes; the TLS cases against test/tls-fixture.c's certificates.
test_conformance_server_SOURCES = test/conformance/server.c
test_conformance_server_CFLAGS = $(TEST_CFLAGS) $(OPENSSL_CFLAGS)
test_conformance_server_LDADD = $(NET_LDADD) $(OPENSSL_LIBS)
if HAVE_OPENSSL
test_conformance_server_SOURCES += test/tls-fixture.c test/tls-fixture.h
endif
# test_sock_lowlevel: the awaitable socket ops (tide_accept, tide_connect,
# tide_recv, tide_send, tide_sendmsg, tide_recvmsg) as loop.sock_*.
test_conformance_sock_SOURCES = test/conformance/sock.c $(TEST_HELPERS)
test_conformance_sock_CFLAGS = $(TEST_CFLAGS)
test_conformance_sock_LDADD = $(TEST_LDADD)

# test_locks (Lock, Event, Condition, Semaphore, Barrier) and test_queues.
test_conformance_locks_SOURCES = test/conformance/locks.c $(TEST_HELPERS)
test_conformance_locks_CFLAGS = $(TEST_CFLAGS)
test_conformance_locks_LDADD = $(TEST_LDADD)
test_conformance_queues_SOURCES = test/conformance/queues.c $(TEST_HELPERS)
test_conformance_queues_CFLAGS = $(TEST_CFLAGS)
test_conformance_queues_LDADD = $(TEST_LDADD)

# test_futures, test_tasks, test_waitfor, test_timeouts and test_taskgroups.
test_conformance_tasks_SOURCES = test/conformance/tasks.c $(TEST_HELPERS)
test_conformance_tasks_CFLAGS = $(TEST_CFLAGS)
test_conformance_tasks_LDADD = $(TEST_LDADD)

# test_events and test_base_events (test/conformance/README.md).
test_conformance_events_SOURCES = test/conformance/events.c $(TEST_HELPERS)
test_conformance_events_CFLAGS = $(TEST_CFLAGS)
test_conformance_events_LDADD = $(TEST_LDADD) -lm

test_cancel_SOURCES = test/cancel.c $(TEST_HELPERS)
test_cancel_CFLAGS = $(TEST_CFLAGS)
test_cancel_LDADD = $(TEST_LDADD)

test_future_SOURCES = test/future.c $(TEST_HELPERS)
test_future_CFLAGS = $(TEST_CFLAGS)
test_future_LDADD = $(TEST_LDADD)

test_backend_SOURCES = test/backend.c $(TEST_HELPERS)
test_backend_CFLAGS = $(TEST_CFLAGS)
test_backend_LDADD = $(TEST_LDADD)
if HAVE_SECCOMP
test_backend_CFLAGS += $(SECCOMP_CFLAGS)
test_backend_LDADD += $(SECCOMP_LIBS)
endif

test_ops_SOURCES = test/ops.c $(TEST_HELPERS)
test_ops_CFLAGS = $(TEST_CFLAGS)
test_ops_LDADD = $(TEST_LDADD)

test_executor_SOURCES = test/executor.c $(TEST_HELPERS)
test_executor_CFLAGS = $(TEST_CFLAGS)
test_executor_LDADD = $(TEST_LDADD)

test_task_SOURCES = test/task.c $(TEST_HELPERS)
test_task_CFLAGS = $(TEST_CFLAGS)
test_task_LDADD = $(TEST_LDADD)

# The networking programs share one fixture (test/net-fixture.h), built
# once with the helpers into a check-only library: the loop helpers,
# loopback sockets, the logging protocol, the stream tests' main task, and
# their main(). Its net-fixture-stream.c reaches
# the hidden stream hooks: only the programs linked with the library's
# objects pull that member out of the archive. Each program's source is
# test/<name>.c; their tests keep the per-test timeouts of test/net.c
# (300 s) and test/stream.c (120 s), which they were split from.
check_LTLIBRARIES = test/libnetfixture.la
test_libnetfixture_la_SOURCES = test/net-fixture.c test/net-fixture-stream.c test/net-fixture.h \
	$(TEST_HELPERS)
test_libnetfixture_la_CFLAGS = $(TEST_CFLAGS)
NET_LDADD = test/libnetfixture.la $(TEST_LDADD)
NET_INTERNAL_LDADD = test/libnetfixture.la $(TEST_INTERNAL_LDADD)

# Socket ops as futures and in tasks (accept, connect to a full backlog,
# recv/send, sendmsg/recvmsg, SCM_RIGHTS, shutdown, close, fd reuse).
test_sockops_CFLAGS = $(TEST_CFLAGS)
test_sockops_LDADD = $(NET_LDADD)
# Name resolution (getaddrinfo, getnameinfo, create_connection's lookup),
# linked with the library's objects for the resolver hook
# (src/net/resolve-hooks.h): name-resolution errors without asking the
# machine's resolver.
test_resolve_CFLAGS = $(TEST_CFLAGS)
test_resolve_LDADD = $(NET_INTERNAL_LDADD)
# Protocols and stream transports: callback order, create_connection,
# half-close, reset, abort and close, flow control, extra info, buffered
# protocols, sends from the receive ring.
test_transport_CFLAGS = $(TEST_CFLAGS)
test_transport_LDADD = $(NET_LDADD)
# A connection's timeouts and deadline (protocols and streams): idle
# expiry, traffic that keeps it, changing and clearing, peers that do not
# read, bad values, a loop freed with timers armed.
test_timeouts_CFLAGS = $(TEST_CFLAGS)
test_timeouts_LDADD = $(NET_LDADD)
# Servers: several hosts, factories, close and wait_closed, close_clients,
# serve_forever, start_serving, Unix; freed from callbacks or before
# tide_loop_close.
test_server_CFLAGS = $(TEST_CFLAGS)
test_server_LDADD = $(NET_LDADD)
# Pipe transports (read and write pipes, FIFOs, devices, refused fds, 64
# MiB both ways, the multishot read masked) and the streams over one pipe
# end, which it reaches through the library's objects.
test_pipe_CFLAGS = $(TEST_CFLAGS)
test_pipe_LDADD = $(NET_INTERNAL_LDADD)
# TLS transports (src/net/tls.c) and streams over TLS, against
# certificates made at start (test/tls-fixture.c): without OpenSSL the
# program only says why it skips (77).
test_tls_SOURCES = test/tls.c
test_tls_CFLAGS = $(TEST_CFLAGS) $(OPENSSL_CFLAGS)
test_tls_LDADD = $(NET_LDADD) $(OPENSSL_LIBS)
if HAVE_OPENSSL
test_tls_SOURCES += test/tls-fixture.c test/tls-fixture.h
# test/tls-certs DIR: the fixture's PEM files written into DIR, for the
# shell tests of real clients (openssl s_client, curl, openssl s_server).
check_PROGRAMS += test/tls-certs
test_tls_certs_SOURCES = test/tls-certs.c test/tls-fixture.c test/tls-fixture.h
test_tls_certs_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)
test_tls_certs_LDADD = $(OPENSSL_LIBS)
else
EXTRA_DIST += test/tls-certs.c test/tls-fixture.c test/tls-fixture.h
endif
# Datagram endpoints: echo, connected, error_received (ICMP, a queue to flush).
test_datagram_CFLAGS = $(TEST_CFLAGS)
test_datagram_LDADD = $(NET_LDADD)
# The load cases: 1,000 clients, 64 MiB through small buffers, EMFILE,
# ENOBUFS. The longest program: its deadlines reach 240 s of a 300 s timeout.
test_load_CFLAGS = $(TEST_CFLAGS)
test_load_LDADD = $(NET_LDADD)
# StreamReader semantics fed by hand (the exact asyncio cases, read(n)
# lending, peek, linear time) through the library's hidden test hooks (a
# pair fed directly), which is why it links the library's objects.
test_stream_reader_CFLAGS = $(TEST_CFLAGS)
test_stream_reader_LDADD = $(NET_INTERNAL_LDADD)
# Streams over real connections (src/net/stream.c): echo, scripted and slow
# peers, cancel, flow control, errors, the writer API, handler lifecycle,
# leaks counted; the hidden hooks read the reader's state, so it links the
# library's objects too.
test_stream_socket_CFLAGS = $(TEST_CFLAGS)
test_stream_socket_LDADD = $(NET_INTERNAL_LDADD)
# Every struct that begins with its size, zeroed but for it (or short):
# the same as NULL, asyncio's defaults.
test_opts_SOURCES = test/opts.c $(TEST_HELPERS)
test_opts_CFLAGS = $(TEST_CFLAGS)
test_opts_LDADD = $(TEST_LDADD)

# A loop across fork(2): the child is refused the parent's loop
# (TIDE_EFORKED), runs its own, and frees its copy without touching the
# kernel objects it shares with the parent.
test_fork_SOURCES = test/fork.c $(TEST_HELPERS)
test_fork_CFLAGS = $(TEST_CFLAGS)
test_fork_LDADD = $(TEST_LDADD)

# Children spawned and reaped on the loop: every configuration, plus
# io_uring with WAITID masked and the path without pidfds (a test hook of
# src/io/spawn-hooks.h, hence the library's objects).
test_subprocess_SOURCES = test/subprocess.c $(TEST_HELPERS)
test_subprocess_CFLAGS = $(TEST_CFLAGS)
test_subprocess_LDADD = $(TEST_INTERNAL_LDADD)

# One loop driven by several threads in turn: each turn works fully, ops
# and transports outlive the thread that started them, a second thread is
# refused while one runs, a third frees it; the net fixture makes the
# connections. It drives a zero-copy send op itself, hence the library's
# objects.
test_threads_CFLAGS = $(TEST_CFLAGS)
test_threads_LDADD = $(NET_INTERNAL_LDADD)

# Signal handlers of loops: on the loop thread, floods of 100,000 from a
# thread and from a process with none lost after the last, two loops on two
# threads, the program's disposition given back (removed, closed, freed,
# forked), tide_signal_wait, tide_get_running_loop, and the library's own
# watch (src/core/core.h), hence the library's objects.
test_signal_SOURCES = test/signal.c $(TEST_HELPERS)
test_signal_CFLAGS = $(TEST_CFLAGS)
test_signal_LDADD = $(TEST_INTERNAL_LDADD)

# Who frees a future's ptr: counted through a replaced allocator and an
# interposed getaddrinfo/freeaddrinfo, taken or not, nothing leaks or is
# freed twice.
test_ownership_SOURCES = test/ownership.c $(TEST_HELPERS)
test_ownership_CFLAGS = $(TEST_CFLAGS)
test_ownership_LDADD = $(TEST_LDADD)


# The example servers' request parsers (examples/http-parse.c,
# examples/resp-parse.c) fed in pieces: byte by byte, 4 KiB, at random.
test_parsers_SOURCES = test/parsers.c $(TEST_HELPERS) examples/http-parse.c examples/http-parse.h \
	examples/resp-parse.c examples/resp-parse.h
test_parsers_CFLAGS = $(TEST_CFLAGS)
test_parsers_LDADD = $(TEST_LDADD)

# The example servers against slow clients: run from the build folder's
# examples (built by make before make check), limited to 64 descriptors.
test_slowclients_SOURCES = test/slowclients.c $(TEST_HELPERS)
test_slowclients_CPPFLAGS = $(AM_CPPFLAGS) -DTOP_BUILDDIR='"$(abs_top_builddir)"'
test_slowclients_CFLAGS = $(TEST_CFLAGS)
test_slowclients_LDADD = $(TEST_LDADD)

# exports reads the map and header from the source tree and the built .so.
test_exports_SOURCES = test/exports.c
test_exports_CPPFLAGS = $(AM_CPPFLAGS) \
	-DTOP_SRCDIR='"$(abs_top_srcdir)"' -DTOP_BUILDDIR='"$(abs_top_builddir)"'
test_exports_CFLAGS = $(TEST_CFLAGS)
test_exports_LDADD = $(TEST_LDADD)


# The context switch, driven directly: natively (linked with the library's
# objects, for its internal symbols) and for AArch64 under qemu-user.
test_coro_SOURCES = test/coro.c test/coro-driver.c
test_coro_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
test_coro_LDADD = $(TEST_INTERNAL_LDADD) -lm
test_coro_aarch64_SOURCES = test/coro-aarch64.c
test_coro_aarch64_CPPFLAGS = $(AM_CPPFLAGS) -DTOP_SRCDIR='"$(abs_top_srcdir)"'
test_coro_aarch64_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
test_coro_aarch64_LDADD = $(CHECK_LIBS)

# Synchronisation primitives (src/sync.c): Lock, Event, Condition,
# Semaphore, Queue, Barrier, and the cancellation storm.
test_sync_SOURCES = test/sync.c $(TEST_HELPERS)
test_sync_CFLAGS = $(TEST_CFLAGS)
test_sync_LDADD = $(TEST_LDADD)

# Combinators and structured concurrency (gather ... TaskGroup), in tasks.
test_combinators_SOURCES = test/combinators.c $(TEST_HELPERS)
test_combinators_CFLAGS = $(TEST_CFLAGS)
test_combinators_LDADD = $(TEST_LDADD) -lm

# A subset under Valgrind's memcheck (the stack switches are registered with
# VALGRIND_STACK_REGISTER, io_uring reads marked defined): the task-level
# programs on io_uring and on epoll (`make check-valgrind`). test/combinators
# runs on epoll only: Valgrind 3.19 keeps its big lock across a blocking
# io_uring_enter, so an executor worker that must wake the loop never runs
# (the loop waits in io_cqring_wait, the worker on Valgrind's lock pipe).
VALGRIND_TESTS = test/future:io_uring test/future:epoll test/task:io_uring test/task:epoll \
	test/sync:io_uring test/sync:epoll test/combinators:epoll
check-valgrind: test/future test/task test/sync test/combinators
	@fail=0; for tc in $(VALGRIND_TESTS); do t=$${tc%%:*}; c=$${tc#*:}; \
	  echo "memcheck: $$t ($$c)"; \
	  CK_RUN_CASE=$$c CK_TIMEOUT_MULTIPLIER=10 TIDE_TEST_UNDER_VALGRIND=1 \
	    $(LIBTOOL) --mode=execute valgrind -q --trace-children=yes --error-exitcode=9 \
	    ./$$t > $$t-$$c.memcheck.log 2>&1 || { fail=1; echo "memcheck: $$t ($$c) FAILED:"; tail -30 $$t-$$c.memcheck.log; }; \
	  grep -E '^[0-9]+%: Checks' $$t-$$c.memcheck.log || true; \
	done; exit $$fail
.PHONY: check-valgrind
CLEANFILES += test/*.memcheck.log

# The programs that use threads, under ThreadSanitizer (configure
# --enable-tsan): the cross-thread door (test/loop's threadsafe tests),
# the executor, a loop driven by several threads (with tasks: the context
# switch tells TSan of each fiber, src/task/coro.c), fork, and signals
# (their handler knocks on the same door). Only these
# are built and run, so CI's TSan build stays short; any report fails
# the program (TSan exits 66), and nothing of tide's is suppressed.
TSAN_TESTS = test/loop test/executor test/threads test/fork test/signal test/conformance/asyncio \
	test/conformance/threadsafe test/conformance/events
if ENABLE_TSAN
check-tsan:
	$(MAKE) $(AM_MAKEFLAGS) check-TESTS TESTS='$(TSAN_TESTS)' check_PROGRAMS='$(TSAN_TESTS)'
else
check-tsan:
	@echo "make check-tsan: configure this build folder with --enable-tsan (clang) first." >&2; exit 1
endif
.PHONY: check-tsan

else
check-tsan check-local:
	@echo "make check: Check (check >= 0.11) was not found when configure ran: the unit tests cannot be built." >&2
	@echo "  Install it (Debian: apt-get install check), run configure again, then make check." >&2
	@exit 1
endif

# The example servers against real clients (wrk, redis-benchmark,
# redis-cli) on each backend configuration; skipped (77) when the clients
# are missing or the examples are not built (--disable-examples). The examples it runs are noinst_PROGRAMS, built by `make`
# before `make check` runs the tests. It runs from the top build folder.
# (In TESTS first, above.)
EXTRA_DIST += test/realclients.sh

EXTRA_DIST += test/faults.sh

# The TLS examples (https-hello, tls-echo-server, tls-echo-client) against
# curl and the openssl command (s_client, s_server -rev), with
# certificates the script makes, on each backend configuration; skipped
# (77) without OpenSSL, the examples, or those two commands.
TESTS += test/tls-realclients.sh
EXTRA_DIST += test/tls-realclients.sh
if HAVE_OPENSSL
AM_TESTS_ENVIRONMENT += TIDE_OPENSSL=yes; export TIDE_OPENSSL;
else
AM_TESTS_ENVIRONMENT += TIDE_OPENSSL=no; export TIDE_OPENSSL;
endif

# The example servers stop gracefully on SIGTERM and SIGINT: a client
# still connected is closed, exit 0, one summary line (bash's /dev/tcp as
# the client).
TESTS += test/stopsignals.sh
EXTRA_DIST += test/stopsignals.sh test/servers.sh

# The four layers of src/ (core < io < task < net) never reach up: calls
# (nm -u of each object, but for the loop's teardown hub), includes, and
# no liburing in src/net.
TESTS += test/layering.sh
EXTRA_DIST += test/layering.sh

# README.md's opening program is examples/readme-echo.c, and it echoes.
TESTS += test/readme.sh
EXTRA_DIST += test/readme.sh

# The tutorial's zen() (examples/seed-zen) prints what python3 -c "import
# this" prints, on both backends, and reports a missing or failing
# interpreter.
TESTS += test/seed-zen.sh
EXTRA_DIST += test/seed-zen.sh

# With -fcf-protection in CFLAGS: libtide.so keeps the IBT and SHSTK notes.
TESTS += test/cet.sh
EXTRA_DIST += test/cet.sh
AM_TESTS_ENVIRONMENT += CC='$(CC)'; CFLAGS='$(CFLAGS)'; export CC CFLAGS;
if ENABLE_EXAMPLES
AM_TESTS_ENVIRONMENT += TIDE_EXAMPLES=yes; export TIDE_EXAMPLES;
else
AM_TESTS_ENVIRONMENT += TIDE_EXAMPLES=no; export TIDE_EXAMPLES;
endif

# The whole suite under load, by hand (not by make check): test/stress.sh
# runs rounds of four parallel copies of every test program of a build
# folder and lists each failure (program, TCase, test, message).
EXTRA_DIST += test/stress.sh
