# SPDX-License-Identifier: MIT
#
# servers.sh: what the scripts that run the example servers share
# (test/realclients.sh, test/stopsignals.sh source it): the check
# counters and Check-style failure lines, a temporary folder, and starting
# a server on port 0 and waiting for it to exit. Not a test by itself.

# servers_init NAME: the script's name for failure lines, the counters,
# a temporary folder ($tmp), removed with any server left at exit.
servers_init() {
	me=test/$1.sh
	checks=0
	failures=0
	config=none
	server_pid=
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/tide-$1.XXXXXX") || exit 99
	trap servers_cleanup EXIT
}

servers_cleanup() {
	[ -z "$server_pid" ] || kill -KILL "$server_pid" 2>/dev/null
	rm -rf "$tmp"
}

# servers_summary: Check's summary line of the counters; the script's
# exit status (1 if a check failed).
servers_summary() {
	local pct=100
	[ $checks -eq 0 ] || pct=$(((checks - failures) * 100 / checks))
	echo "$pct%: Checks: $checks, Failures: $failures, Errors: 0"
	[ $failures -eq 0 ] || exit 1
	exit 0
}

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

# same NAME EXPECTED ACTUAL: check that two strings are equal, showing both.
same() {
	checks=$((checks + 1))
	if [ "$2" != "$3" ]; then
		failures=$((failures + 1))
		echo "$me:${BASH_LINENO[0]}:F:$config:$1: expected $(printf '%q' "$2"), got $(printf '%q' "$3")"
		return 1
	fi
	return 0
}

# start_server LOG CMD...: sets server_pid and port once "Serving on" shows.
start_server() {
	local log=$1 i
	shift
	: >"$log" # before the server opens it: sed reads it at once
	"$@" >"$log" 2>&1 &
	server_pid=$!
	port=
	for ((i = 0; i < 600; i++)); do
		port=$(sed -n "s/^Serving on ('[^']*', \([0-9]*\).*/\1/p" "$log")
		[ -n "$port" ] && break
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.05
	done
	if ! check "start $(basename "$1")" [ -n "$port" ]; then
		sed 's/^/  | /' "$log"
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
		server_pid=
		return 1
	fi
	# A server that names its backend ("Serving on ... (backend X)":
	# http-hello, https-hello, mini-redis) must name io_uring when CI
	# requires it. The echo servers print the tutorial's line alone; the
	# https-hello runs of the same configuration stand for them.
	if [ "${TIDE_TEST_REQUIRE_URING:-0}" = 1 ] && [ "$config" != epoll ] && grep -q '(backend ' "$log"; then
		check "io_uring required" grep -q 'backend io_uring' "$log"
	fi
	return 0
}

# await_exit WHAT: waits up to 30 s for the server to exit (a failed
# check "WHAT within 30 s", and SIGKILL, past that); its status in
# server_rc.
await_exit() {
	local i
	server_rc=0
	for ((i = 0; i < 600; i++)); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$server_pid" 2>/dev/null; then
		check "$1 within 30 s" false
		kill -KILL "$server_pid" 2>/dev/null
	fi
	wait "$server_pid" || server_rc=$?
	server_pid=
}

# use_config CONFIG: the environment of one backend configuration
# (io_uring, io_uring-masked or epoll), as the Check programs' TCases.
use_config() {
	config=$1
	case $config in
	io_uring) unset TIDE_BACKEND TIDE_DISABLE_OPS ;;
	io_uring-masked) unset TIDE_BACKEND; export TIDE_DISABLE_OPS=all-optional ;;
	epoll) unset TIDE_DISABLE_OPS; export TIDE_BACKEND=epoll ;;
	esac
}
