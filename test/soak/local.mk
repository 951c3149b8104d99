# SPDX-License-Identifier: MIT
# make check-soak (not in make check, not in CI: it takes minutes): 100,000
# connections through a stream echo server on io_uring and on epoll,
# checking that the server's RSS stays flat after a warm-up and, in the
# sanitizer build (configure --enable-asan), that it ends without a leak.
# test/soak/soak.sh says what it measures and its knobs (SOAK_CONNS...).
# Paths are relative to the top folder (included from the top Makefile.am).
SOAK_BINS = test/soak/stream-echo test/soak/echo-churn
EXTRA_PROGRAMS += $(SOAK_BINS)
CLEANFILES += $(SOAK_BINS)
# The server uses the public API only; -no-install: no libtool wrapper
# script, so the pid soak.sh starts is the server's own (its /proc).
test_soak_stream_echo_SOURCES = test/soak/stream-echo.c
test_soak_stream_echo_LDADD = src/libtide.la
test_soak_stream_echo_LDFLAGS = $(AM_LDFLAGS) -no-install
test_soak_echo_churn_SOURCES = test/soak/echo-churn.c
EXTRA_DIST += test/soak/local.mk test/soak/soak.sh

if ENABLE_ASAN
SOAK_ASAN = yes
else
SOAK_ASAN = no
endif

check-soak: $(SOAK_BINS)
	@SOAK_ASAN=$(SOAK_ASAN) $(SHELL) $(top_srcdir)/test/soak/soak.sh test/soak
