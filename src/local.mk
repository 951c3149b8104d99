# SPDX-License-Identifier: MIT
# The library (included from the top Makefile.am; paths from the top folder).

# The library's objects, as a convenience library: src/libtide.la is made of
# it, and the tests that reach hidden symbols (test hooks, the context
# switch) link it directly, which works with --disable-static too.
noinst_LTLIBRARIES = src/libtide-internal.la
#
# Four layers, one folder each, bottom up; a folder includes and calls only
# its own and lower ones (test/layering.sh checks it in make check):
# core: the loop, handles and timers, futures, the cross-thread door and
# the signals that knock on it, the allocator.
TIDE_CORE = src/core/core.h src/core/list.h src/core/heap.h \
	src/core/util.c src/core/loop.c src/core/timer.c src/core/threadsafe.c \
	src/core/signal.c src/core/future.c
# io: ops and the op table, the op families, the backends, the executor.
TIDE_IO = src/io/io.h src/io/compat-uring.h src/io/spawn-hooks.h \
	src/io/io.c src/io/op.c src/io/opdef.c \
	src/io/op-rw.c src/io/op-poll.c src/io/op-timeout.c src/io/op-net.c \
	src/io/op-proc.c src/io/spawn.c \
	src/io/backend-uring.c src/io/backend-epoll.c src/io/executor.c
# task: coroutines and their switch, tasks, sync primitives, combinators.
TIDE_TASK = src/task/task.h src/task/coro.h \
	src/task/coro.c src/task/task.c src/task/await.c src/task/sync.c \
	src/task/combinators.c src/task/cfuture.c
# net: buffer pools, stream and datagram transports, TLS, listeners,
# connecting, resolving, streams.
TIDE_NET = src/net/net.h src/net/resolve-hooks.h src/net/stream-hooks.h \
	src/net/pbuf.c src/net/transport.c src/net/pipe.c src/net/datagram.c \
	src/net/listener.c src/net/connect.c src/net/resolve.c src/net/stream.c \
	src/net/timeouts.c src/net/subprocess.c src/net/process.c src/net/tls.c
src_libtide_internal_la_SOURCES = $(TIDE_CORE) $(TIDE_IO) $(TIDE_TASK) $(TIDE_NET)
# The context switch: one small assembly file per architecture, or
# ucontext (configure --with-coro=ucontext) anywhere else.
if CORO_X86_64
src_libtide_internal_la_SOURCES += src/task/coro-x86_64.S
endif
if CORO_AARCH64
src_libtide_internal_la_SOURCES += src/task/coro-aarch64.S
endif
src_libtide_internal_la_CFLAGS = $(AM_CFLAGS) $(TIDE_LIB_CFLAGS) -fvisibility=hidden $(LIBURING_CFLAGS) $(OPENSSL_CFLAGS)
# OpenSSL (TLS, src/net/tls.c; tide_strerror's texts) when configure found it.
src_libtide_internal_la_LIBADD = $(LIBURING_LIBS) $(OPENSSL_LIBS)

lib_LTLIBRARIES = src/libtide.la
src_libtide_la_SOURCES =
# No source of its own: this names the linker (C).
nodist_EXTRA_src_libtide_la_SOURCES = src/dummy.c
src_libtide_la_LIBADD = src/libtide-internal.la
# The ABI: -version-info current:revision:age, by libtool's rules for each
# release that changes the library's code:
#  - interfaces removed or changed (an ABI break): current+1:0:0, and the
#    SONAME (libtide.so.<current - age>) changes with it;
#  - interfaces only added: current+1:0:age+1 (same SONAME);
#  - code changed, interfaces not: current:revision+1:age.
# 1:0:0 (libtide.so.1): the API traps were removed, by changing and
# removing interfaces (0:0:0 was libtide.so.0). Debian's package is named
# after the SONAME (packaging/debian: libtide1). The version script exports
# exactly the TIDE_EXTERN names (test/exports checks it).
src_libtide_la_LDFLAGS = $(AM_LDFLAGS) -version-info 1:0:0 -no-undefined \
	-Wl,--version-script=$(top_srcdir)/src/libtide.map
EXTRA_src_libtide_la_DEPENDENCIES = src/libtide.map

EXTRA_DIST += src/task/coro-x86_64.S src/task/coro-aarch64.S
