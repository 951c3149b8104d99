#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# stress.sh: the whole test suite under load, to find tests that depend on a
# timing margin. Not run by `make check`; run it by hand from anywhere:
#
#   test/stress.sh [-r ROUNDS] [-j COPIES] [-l LOGDIR] [BUILDDIR]
#
# Each round runs COPIES (default 4) copies of the suite at once: every copy
# runs every test program of BUILDDIR (default: the build folder next to
# this script's folder, as ./quickstart makes it) one after the other, each
# with its own log file, so a 2-core machine runs four programs at a time.
# A round ends when all the copies are done. For each failure it prints the
# round, copy, program, TCase, test and message (Check's failure line), and
# at the end "rounds R, runs N, failures F" (N: program runs, F: failed
# checks plus programs that failed without a Check failure line). The same
# line, cumulative, ends every round, so a run stopped early (Ctrl-C, or a
# deadline) still says how far it got. Exit 1 when anything failed.
#
# Everything the tests do stays on loopback (127.0.0.1, ::1, Unix sockets);
# the logs stay in LOGDIR (default: a fresh folder under ${TMPDIR:-/tmp}).
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
srcdir=$(dirname "$here")
rounds=20 copies=4 logdir=
while getopts r:j:l: opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	j) copies=$OPTARG ;;
	l) logdir=$OPTARG ;;
	*) echo "usage: $0 [-r ROUNDS] [-j COPIES] [-l LOGDIR] [BUILDDIR]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
build=$(cd "${1:-$srcdir/build}" && pwd) || exit 2
[ -n "$logdir" ] || logdir=$(mktemp -d "${TMPDIR:-/tmp}/tide-stress.XXXXXX") || exit 2
mkdir -p "$logdir" || exit 2

programs=(loop timer future backend ops executor exports task sockops resolve transport server datagram load
	stream-reader stream-socket coro coro-aarch64 sync combinators)
for p in "${programs[@]}"; do
	if [ ! -x "$build/test/$p" ]; then
		echo "$0: $build/test/$p is not built (run make -C $build check first)" >&2
		exit 2
	fi
done
realclients=yes
[ -x "$build/examples/http-hello" ] || realclients=no

echo "stress: $rounds rounds x $copies copies of $build, logs in $logdir"

# one_copy ROUND COPY: runs every program once; each failing run leaves its
# log name in ROUND-COPY.failed.
one_copy() {
	local r=$1 c=$2 p log rc
	: >"$logdir/$r-$c.failed"
	for p in "${programs[@]}" realclients; do
		log=$logdir/$r-$c-$p.log
		if [ $p = realclients ]; then
			[ $realclients = yes ] || continue
			(cd "$build" && "$srcdir/test/realclients.sh") >"$log" 2>&1
		else
			(cd "$build" && "./test/$p") >"$log" 2>&1
		fi
		rc=$?
		echo "$p $rc" >>"$logdir/$r-$c.runs"
		[ $rc -eq 0 ] || [ $rc -eq 77 ] || echo "$p $rc" >>"$logdir/$r-$c.failed"
	done
}

runs=0 failures=0 done_rounds=0
for ((r = 1; r <= rounds; r++)); do
	start=$(date +%s)
	pids=()
	for ((c = 1; c <= copies; c++)); do
		one_copy $r $c &
		pids+=($!)
	done
	wait "${pids[@]}"
	round_failures=0
	for ((c = 1; c <= copies; c++)); do
		runs=$((runs + $(wc -l <"$logdir/$r-$c.runs")))
		while read -r p rc; do
			log=$logdir/$r-$c-$p.log
			# Check's failure lines: FILE:LINE:F|E:TCASE:TEST:...: MESSAGE
			lines=$(grep -E '^[^ :]+:[0-9]+:[FE]:' "$log")
			if [ -n "$lines" ]; then
				n=$(printf '%s\n' "$lines" | wc -l)
				printf '%s\n' "$lines" | sed "s|^|stress: round $r copy $c $p: |"
			else
				n=1
				echo "stress: round $r copy $c $p: exit $rc without a Check failure line; its log ends:"
				tail -5 "$log" | sed 's/^/  | /'
			fi
			round_failures=$((round_failures + n))
		done <"$logdir/$r-$c.failed"
	done
	failures=$((failures + round_failures))
	done_rounds=$r
	echo "stress: round $r done in $(($(date +%s) - start)) s, $round_failures failures ($(date -u +%H:%M:%S) UTC)"
	echo "stress: so far: rounds $done_rounds, runs $runs, failures $failures"
done
echo "rounds $done_rounds, runs $runs, failures $failures"
[ $failures -eq 0 ]
