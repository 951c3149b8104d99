# SPDX-License-Identifier: MIT
# The fuzz targets (included from the top Makefile.am; paths from the top
# folder). A target is test/fuzz/<name>.c (libFuzzer's entry point, and
# fuzz.h), its corpus test/fuzz/corpus/<name>/ (seeds and every crasher
# found), and its path without .c in this list: that is all it takes to add
# one.
FUZZ_TARGETS = test/fuzz/stream-reader test/fuzz/http-parse test/fuzz/resp-parse

# Built two ways, by the pattern rules below (so the list above is the
# only line a new target needs):
#  - test/fuzz/<name>.replay, with the configured compiler and flags and
#    test/fuzz/replay.c's main(): it replays the corpus in make check;
#  - test/fuzz/<name>-fuzzer, by make fuzz, with clang's libFuzzer
#    (-fsanitize=fuzzer,address,undefined) against the library's sources
#    compiled the same way, so the fuzzer sees tide's branches.
# A target may use the examples' pure parsers (examples/*-parse.c): both
# builds link them.
FUZZ_PARSERS = $(wildcard $(top_srcdir)/examples/*-parse.c)
FUZZ_COMMON = $(top_srcdir)/test/fuzz/fuzz.c
FUZZ_DEPS_H = $(top_srcdir)/test/fuzz/fuzz.h $(top_srcdir)/include/tide.h \
	$(top_srcdir)/src/net/stream-hooks.h
FUZZ_CPPFLAGS = -I$(top_builddir) $(AM_CPPFLAGS) -I$(top_srcdir)/test/fuzz -I$(top_srcdir)/examples

# A replay program is named <target>.replay: automake runs the tests of a
# registered extension through a suffix rule, which a list made by
# substitution needs (it writes explicit rules only for names it sees,
# and reads no substitution but a suffix one).
FUZZ_REPLAY = $(FUZZ_TARGETS:=.replay)
TEST_EXTENSIONS = .replay
TESTS += $(FUZZ_REPLAY)
# Named here, they are made for make check and kept (not intermediate).
check_SCRIPTS = $(FUZZ_REPLAY)
CLEANFILES += $(FUZZ_REPLAY)
EXTRA_DIST += test/fuzz/local.mk test/fuzz/fuzz.h test/fuzz/fuzz.c test/fuzz/replay.c \
	$(FUZZ_TARGETS:=.c) test/fuzz/corpus

# One link line: the target, the replay's main and the library's objects
# (the targets reach hidden test hooks).
test/fuzz/%.replay: $(top_srcdir)/test/fuzz/%.c $(top_srcdir)/test/fuzz/replay.c $(FUZZ_COMMON) \
		$(FUZZ_DEPS_H) $(FUZZ_PARSERS) src/libtide-internal.la
	@$(MKDIR_P) test/fuzz
	$(AM_V_CCLD)$(LIBTOOL) $(AM_V_lt) --tag=CC --mode=link $(CC) $(DEFS) $(FUZZ_CPPFLAGS) $(CPPFLAGS) \
	  -DFUZZ_CORPUS_DIR='"$(abs_top_srcdir)/test/fuzz/corpus/$*"' $(AM_CFLAGS) $(CFLAGS) \
	  $(AM_LDFLAGS) $(LDFLAGS) -o $@ $< $(top_srcdir)/test/fuzz/replay.c $(FUZZ_COMMON) $(FUZZ_PARSERS) \
	  src/libtide-internal.la $(LIBS)

# ------------------------------------------------------------ make fuzz --
#
# make fuzz [FUZZ_SECONDS=N] [FUZZ_TARGETS=...] [FUZZ_FLAGS=...]: builds
# each target with libFuzzer and runs it for FUZZ_SECONDS (CI: 60), one
# worker, starting from its corpus; new inputs go to
# test/fuzz/work/<name>/ in the build folder, a crash to
# test/fuzz/artifacts/ (and make fuzz fails). Where FUZZ_CC cannot build
# a libFuzzer program it says why and skips (exit 0), unless
# FUZZ_REQUIRE=1. ./quickstart installs clang-14 and libclang-rt-14-dev.
FUZZ_SECONDS = 10
FUZZ_CC = clang-14
FUZZ_REQUIRE = 0
FUZZ_SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer $(FUZZ_SANITIZE)
# Passed to each fuzzer run, e.g. FUZZ_FLAGS=-dict=... or -jobs=2.
FUZZ_FLAGS =
FUZZ_LIBSRC = $(filter %.c %.S,$(src_libtide_internal_la_SOURCES))
FUZZ_LIB_OBJECTS = $(patsubst %,test/fuzz/obj/%.o,$(basename $(FUZZ_LIBSRC) $(FUZZ_PARSERS:$(top_srcdir)/%=%)))
FUZZ_BINS = $(FUZZ_TARGETS:=-fuzzer)

test/fuzz/obj/%.o: $(top_srcdir)/%.c $(FUZZ_DEPS_H)
	@$(MKDIR_P) $(@D)
	$(AM_V_CC)$(FUZZ_CC) $(DEFS) $(FUZZ_CPPFLAGS) $(LIBURING_CFLAGS) $(OPENSSL_CFLAGS) $(FUZZ_CFLAGS) \
	  -fsanitize=fuzzer-no-link -c -o $@ $<
test/fuzz/obj/%.o: $(top_srcdir)/%.S
	@$(MKDIR_P) $(@D)
	$(AM_V_CC)$(FUZZ_CC) $(DEFS) $(FUZZ_CPPFLAGS) -c -o $@ $<
test/fuzz/libtide-fuzz.a: $(FUZZ_LIB_OBJECTS)
	$(AM_V_AR)rm -f $@ && $(AR) cr $@ $(FUZZ_LIB_OBJECTS)
test/fuzz/%-fuzzer: $(top_srcdir)/test/fuzz/%.c $(FUZZ_COMMON) $(FUZZ_DEPS_H) test/fuzz/libtide-fuzz.a
	$(AM_V_CCLD)$(FUZZ_CC) $(DEFS) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ \
	  $< $(FUZZ_COMMON) test/fuzz/libtide-fuzz.a $(LIBURING_LIBS) $(OPENSSL_LIBS) $(LIBS)

fuzz:
	@probe=test/fuzz/probe-$$$$; $(MKDIR_P) test/fuzz; \
	if ! printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' | \
	    $(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SANITIZE) -x c -o $$probe - >/dev/null 2>&1; then \
	  rm -f $$probe; \
	  echo "make fuzz: skipped: '$(FUZZ_CC)' cannot build a libFuzzer program" \
	       "(Debian: apt-get install clang-14 libclang-rt-14-dev; or make fuzz FUZZ_CC=clang)"; \
	  test "$(FUZZ_REQUIRE)" != 1; exit $$?; \
	fi; rm -f $$probe; \
	$(MAKE) $(AM_MAKEFLAGS) $(FUZZ_BINS) || exit 1; \
	for t in $(notdir $(FUZZ_TARGETS)); do \
	  $(MKDIR_P) test/fuzz/work/$$t test/fuzz/artifacts; \
	  echo "make fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  ./test/fuzz/$$t-fuzzer -max_total_time=$(FUZZ_SECONDS) -timeout=60 -rss_limit_mb=4096 \
	    -print_final_stats=1 -artifact_prefix=test/fuzz/artifacts/$$t- $(FUZZ_FLAGS) \
	    test/fuzz/work/$$t $(abs_top_srcdir)/test/fuzz/corpus/$$t || \
	    { echo "make fuzz: $$t failed: the input is in test/fuzz/artifacts/ (replay it with test/fuzz/$$t.replay FILE)"; exit 1; }; \
	done

clean-local: clean-fuzz
clean-fuzz:
	rm -rf test/fuzz/obj test/fuzz/libtide-fuzz.a $(FUZZ_BINS) test/fuzz/.libs
