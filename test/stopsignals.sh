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
. "$(dirname "${BASH_SOURCE[0]}")/servers.sh"
servers_init stopsignals

if [ "${TIDE_EXAMPLES:-yes}" = no ] || [ ! -x "$ex/http-hello" ] || [ ! -x "$ex/mini-redis" ]; then
	echo "Skipped: 72 checks: the example servers on SIGTERM and SIGINT: the examples are not built"
	exit 77
fi

# one NAME SIGNAL REQUEST: the whole scenario for one server and signal.
one() {
	local name=$1 sig=$2 request=$3 log=$tmp/$1-$2.log line
	start_server "$log" "$ex/$name" --port 0 --threads 2 || return
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
	await_exit "$name stops on $sig"
	check "$name exits 0 on $sig" [ $server_rc -eq 0 ] || sed 's/^/  | /' "$log"
	check "$name's summary on $sig" grep -qx "$name: stopped by $sig after 2 connections, 2 requests" "$log" ||
		sed 's/^/  | /' "$log"
}

for c in io_uring io_uring-masked epoll; do
	use_config "$c"
	for sig in SIGTERM SIGINT; do
		one http-hello $sig 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'
		one mini-redis $sig 'PING\r\n'
	done
done

servers_summary
