#!/bin/bash
# SPDX-License-Identifier: MIT
#
# seed-zen.sh: examples/seed-zen (the tutorial's zen()) prints exactly what
# `python3 -c "import this"` prints, and says so clearly, with a non-zero
# exit and no hang, when the interpreter it is given does not exist or
# fails. Skipped (77) when the examples are not built (--disable-examples)
# or python3 is missing. An automake test, run from the top build folder.
set -u
me=test/seed-zen.sh
prog=examples/seed-zen
if [ "${TIDE_EXAMPLES:-yes}" = no ]; then
	echo "Skipped: 3 checks: seed-zen: this build has no examples (--disable-examples)"
	exit 77
fi
[ -x "$prog" ] || { echo "$me: $prog is missing (run make first)"; exit 99; }
if ! command -v python3 >/dev/null 2>&1; then
	echo "Skipped: 3 checks: seed-zen: no python3 (./quickstart installs it)"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
	echo "$me: $*"
	failures=$((failures + 1))
}

# 1. The Zen, line for line, on each backend.
python3 -c "import this" > "$tmp/want" || { echo "$me: python3 -c 'import this' failed"; exit 99; }
for backend in io_uring epoll; do
	rc=0
	TIDE_BACKEND=$backend timeout 60 "$prog" > "$tmp/got" 2> "$tmp/err" || rc=$?
	if [ "$rc" -ne 0 ] || ! cmp -s "$tmp/want" "$tmp/got"; then
		fail "$prog on $backend (exit $rc) differs from python3 -c 'import this':"
		diff "$tmp/want" "$tmp/got" | head -10
		cat "$tmp/err"
	fi
done
[ "$failures" -eq 0 ] && echo "$me: $prog printed the Zen of Python ($(wc -l < "$tmp/want") lines) on io_uring and epoll"

# 2. No such interpreter: an error naming it, exit 1, nothing on stdout.
rc=0
timeout 60 "$prog" "$tmp/no-such-python" > "$tmp/got" 2> "$tmp/err" || rc=$?
if [ "$rc" -ne 1 ] || [ -s "$tmp/got" ] || ! grep -q "cannot run $tmp/no-such-python" "$tmp/err"; then
	fail "with a missing interpreter: exit $rc (want 1), stderr: $(cat "$tmp/err")"
fi

# 3. An interpreter that prints something and fails: its lines, then the
# exit status said, exit 1.
printf '#!/bin/sh\necho "Beautiful is better than ugly."\nexit 3\n' > "$tmp/failing-python"
chmod +x "$tmp/failing-python"
rc=0
timeout 60 "$prog" "$tmp/failing-python" > "$tmp/got" 2> "$tmp/err" || rc=$?
if [ "$rc" -ne 1 ] || [ "$(cat "$tmp/got")" != "Beautiful is better than ugly." ] ||
	! grep -q "exited with 3" "$tmp/err"; then
	fail "with a failing interpreter: exit $rc (want 1), stdout: $(cat "$tmp/got"), stderr: $(cat "$tmp/err")"
fi

if [ "$failures" -eq 0 ]; then
	echo "$me: a missing and a failing interpreter are reported, exit 1"
	echo "100%: Checks: 3, Failures: 0, Errors: 0"
	exit 0
fi
echo "$((100 * (3 - failures) / 3))%: Checks: 3, Failures: $failures, Errors: 0"
exit 1
