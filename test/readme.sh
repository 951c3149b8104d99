#!/bin/bash
# SPDX-License-Identifier: MIT
#
# readme.sh: README.md opens with a complete program; it must be
# examples/readme-echo.c to the letter (so it compiles, with the rest of the
# examples), and it must echo a line back over a real connection. Skipped
# (77) when the examples are not built (--disable-examples). An automake
# test, run from the top build folder.
set -u
me=test/readme.sh
src=${srcdir:-.}
prog=examples/readme-echo
if [ "${TIDE_EXAMPLES:-yes}" = no ]; then
	echo "Skipped: 2 checks: the README example: this build has no examples (--disable-examples)"
	exit 77
fi
[ -x "$prog" ] || { echo "$me: $prog is missing (run make first)"; exit 99; }
block=$(awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on' "$src/README.md")
if [ "$block" != "$(cat "$src/examples/readme-echo.c")" ]; then
	echo "$me: README.md's first C block differs from examples/readme-echo.c:"
	diff <(printf '%s\n' "$block") "$src/examples/readme-echo.c" | head -20
	echo "50%: Checks: 2, Failures: 1, Errors: 0"
	exit 1
fi
for try in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 40000))
	# Somebody else's port would answer for us: pick another.
	if (exec 4<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		continue
	fi
	out=$(mktemp)
	"$prog" "$port" > "$out" 2>&1 &
	pid=$!
	up=
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		if exec 3<>"/dev/tcp/127.0.0.1/$port"; then
			up=1
			break
		fi 2>/dev/null
		sleep 0.1
	done
	if [ -n "$up" ]; then
		reply=
		printf 'hello, tide\n' >&3
		read -r -t 5 reply <&3
		exec 3<&-
		kill "$pid"; wait "$pid" 2>/dev/null
		rm -f "$out"
		if [ "$reply" = "hello, tide" ]; then
			echo "$me: README's block is $prog, and it echoed a line on port $port"
			echo "100%: Checks: 2, Failures: 0, Errors: 0"
			exit 0
		fi
		echo "$me: $prog on port $port answered '$reply', not 'hello, tide'"
		echo "50%: Checks: 2, Failures: 1, Errors: 0"
		exit 1
	fi
	kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
	cat "$out"; rm -f "$out"
done
echo "$me: $prog never started listening"
echo "50%: Checks: 2, Failures: 1, Errors: 0"
exit 1
