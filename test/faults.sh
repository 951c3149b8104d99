#!/bin/bash
# SPDX-License-Identifier: MIT
#
# faults.sh: the socket and cancel tests once more, with a share of the
# io_uring backend's io_uring_enter calls failing on purpose with EINTR,
# EAGAIN or EBUSY (TIDE_FAULT_ENTER, read by the library at loop
# creation): test/sockops (the socket ops, fd reuse, closes under ops),
# test/transport (transports and protocols) and test/ops (the op families,
# cancels, a completion storm on a 4-entry ring). They must pass as they
# do without faults. Every loop the library frees reports on stderr what it
# injected ("tide: TIDE_FAULT_ENTER=50:SEED: N of M io_uring_enter calls
# failed on purpose (EINTR a, EAGAIN b, EBUSY c)"); this script adds the
# reports up, and fails if no fault was injected at all where io_uring ran.
# TIDE_TEST_FAULT_ENTER sets the share (default 50); a SEED from a report
# repeats that loop's faults (TIDE_FAULT_ENTER=50:SEED).
#
# An automake test, run from the top build folder. Only the programs'
# own failure lines and this script's summary are printed; their full
# output goes to test/faults-PROGRAM.log. Skipped (77) when io_uring is
# unavailable (the fault mode then has nothing to act on), a failure with
# TIDE_TEST_REQUIRE_URING=1 as for every other test.
set -u
me=test/faults.sh
pct=${TIDE_TEST_FAULT_ENTER:-50}
progs="test/sockops test/transport test/ops"
checks=0 failures=0 errors=0 bad=0
loops=0 faults=0 enters=0 eintr=0 eagain=0 ebusy=0

for p in $progs; do
	[ -x "$p" ] || { echo "$me: $p is missing (run make check, which builds it)"; exit 99; }
done
for p in $progs; do
	log=test/faults-${p#test/}.log
	TIDE_FAULT_ENTER=$pct "./$p" > "$log" 2>&1
	rc=$?
	# The program's own Check lines, not at the start of a line here: the
	# summary below is this script's one.
	read -r c f e < <(awk '/^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+/ {
		gsub(/,/, ""); c += $3; f += $5; e += $7 } END { print c + 0, f + 0, e + 0 }' "$log")
	read -r n fa en a b d < <(awk '/^tide: TIDE_FAULT_ENTER=/ {
		n++; fa += $3; en += $5; gsub(/[(),]/, ""); a += $(NF - 4); b += $(NF - 2); d += $NF }
		END { print n + 0, fa + 0, en + 0, a + 0, b + 0, d + 0 }' "$log")
	echo "$me: $p under TIDE_FAULT_ENTER=$pct: $c checks, $f failures, $e errors (exit $rc);" \
		"$fa of $en io_uring_enter calls failed on purpose in $n loops"
	grep -E ':[FE]:' "$log" | head -n 20 | sed 's|^|  |'
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ "$((f + e))" -eq 0 ]; then
		echo "  $p exited with $rc after its checks passed; last lines of $log:"
		tail -n 10 "$log" | sed 's|^|  |'
		bad=$((bad + 1))
	fi
	checks=$((checks + c)) failures=$((failures + f)) errors=$((errors + e))
	loops=$((loops + n)) faults=$((faults + fa)) enters=$((enters + en))
	eintr=$((eintr + a)) eagain=$((eagain + b)) ebusy=$((ebusy + d))
done
echo "$me: $faults of $enters io_uring_enter calls failed on purpose" \
	"(EINTR $eintr, EAGAIN $eagain, EBUSY $ebusy) in $loops io_uring loops"
if [ "$loops" -eq 0 ]; then
	if [ "${TIDE_TEST_REQUIRE_URING:-0}" = 1 ]; then
		echo "$me: no io_uring loop ran, and TIDE_TEST_REQUIRE_URING=1"
		echo "0%: Checks: 1, Failures: 1, Errors: 0"
		exit 1
	fi
	echo "Skipped: 1 check: the fault-injection run: io_uring is unavailable here"
	exit 77
fi
if [ "$faults" -eq 0 ]; then
	echo "$me: io_uring loops ran but no fault was injected: TIDE_FAULT_ENTER had no effect"
	failures=$((failures + 1))
fi
failures=$((failures + bad))
total=$((checks + 1))
echo "$(( (total - failures - errors) * 100 / total ))%: Checks: $total, Failures: $failures, Errors: $errors"
[ "$((failures + errors))" -eq 0 ]
