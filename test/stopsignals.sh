#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# stopsignals.sh: the example servers (http-hello, mini-redis, two threads
# each) stop gracefully on SIGTERM and on SIGINT, on each backend
# configuration: a client served and gone, another still connected when
# the signal comes; the server must close that one (its read sees the
# end), exit 0, and print "NAME: stopped by SIGxxx after 2 connections,
# 2 requests". No client program is needed: bash's /dev/tcp is the client,
# on 127.0.0.1 only.
#
# An automake test run from the top build folder; it prints a Check-style
# summary line and exits 77 when the examples are not built.
set -u

top_builddir=${TIDE_TOP_BUILDDIR:-$PWD}
ex=$top_builddir/examples
me=test/stopsignals.sh
checks=0
failures=0
config=none
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tide-stopsignals.XXXXXX") || exit 99
server_pid=

cleanup() {
	[ -z "$server_pid" ] || kill -KILL "$server_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# check NAME COMMAND...: one check, in Check's failure format when it fails.
check() {
	local name=$1
	shift
	checks=$((checks + 1))
	if ! "$@"; then
		failures=$((failures + 1))
		echo "$me:${BASH_LINENO[0]}:F:$config:$name: failed: $*"
		return 1
	fi
	return 0
}

if [ "${TIDE_EXAMPLES:-yes}" = no ] || [ ! -x "$ex/http-hello" ] || [ ! -x "$ex/mini-redis" ]; then
	echo "Skipped: 72 checks: the example servers on SIGTERM and SIGINT: the examples are not built"
	exit 77
fi

# one NAME SIGNAL REQUEST: the whole scenario for one server and signal.
one() {
	local name=$1 sig=$2 request=$3 log=$tmp/$1-$2.log port= i rc=0 line
	: >"$log"
	"$ex/$name" --port 0 --threads 2 >"$log" 2>&1 &
	server_pid=$!
	for ((i = 0; i < 600; i++)); do
		port=$(sed -n "s/^Serving on ('[^']*', \([0-9]*\).*/\1/p" "$log")
		[ -n "$port" ] && break
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.05
	done
	if ! check "$name starts" [ -n "$port" ]; then
		sed 's/^/  | /' "$log"
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
		server_pid=
		return
	fi
	# A client served, then gone.
	exec 3<>"/dev/tcp/127.0.0.1/$port"
	printf '%b' "$request" >&3
	line=
	IFS= read -r -t 10 line <&3
	exec 3<&-
	check "$name answers" [ -n "$line" ]
	# A client served and still there when the signal comes.
	exec 4<>"/dev/tcp/127.0.0.1/$port"
	printf '%b' "$request" >&4
	line=
	IFS= read -r -t 10 line <&4
	check "$name answers the second client" [ -n "$line" ]
	kill "-$sig" "$server_pid"
	# The server closes it: the rest of its answer, then the end.
	check "$name closes the open connection on $sig" timeout 10 cat <&4 >/dev/null
	exec 4<&-
	for ((i = 0; i < 600; i++)); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$server_pid" 2>/dev/null; then
		check "$name stops on $sig within 30 s" false
		kill -KILL "$server_pid" 2>/dev/null
	fi
	wait "$server_pid" || rc=$?
	server_pid=
	check "$name exits 0 on $sig" [ $rc -eq 0 ] || sed 's/^/  | /' "$log"
	check "$name's summary on $sig" grep -qx "$name: stopped by $sig after 2 connections, 2 requests" "$log" ||
		sed 's/^/  | /' "$log"
}

for config in io_uring io_uring-masked epoll; do
	case $config in
	io_uring) unset TIDE_BACKEND TIDE_DISABLE_OPS ;;
	io_uring-masked) unset TIDE_BACKEND; export TIDE_DISABLE_OPS=all-optional ;;
	epoll) unset TIDE_DISABLE_OPS; export TIDE_BACKEND=epoll ;;
	esac
	for sig in SIGTERM SIGINT; do
		one http-hello $sig 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'
		one mini-redis $sig 'PING\r\n'
	done
done

pct=100
[ $checks -eq 0 ] || pct=$(((checks - failures) * 100 / checks))
echo "$pct%: Checks: $checks, Failures: $failures, Errors: 0"
[ $failures -eq 0 ]
