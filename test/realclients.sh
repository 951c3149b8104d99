#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# realclients.sh: the example servers against real clients, on each backend
# configuration (io_uring, io_uring with the optional ops masked, epoll):
#
# - examples/http-hello (2 threads, SO_REUSEPORT) under `wrk -t1 -c50 -d2s`:
#   wrk must report requests and neither socket errors nor non-2xx answers;
#   then three pipelined requests, answered byte for byte (Date aside).
# - examples/mini-redis (2 threads, one shared keyspace) under
#   `redis-benchmark -n 20000 -c 50 -t ping,set,get,incr -q`, plain and
#   pipelined (-P 16): each test must finish without an error, and the
#   counter INCR'd by it must hold exactly the INCRs sent (none lost across
#   the threads); then redis-cli's SET/GET/DEL/INCR/EXPIRE answers and a
#   raw RESP pipeline, byte for byte, and an EXPIRE'd key removed by its
#   timer (DBSIZE never expires keys lazily).
# - Every server must exit 0 on SIGTERM (its loops freed: nothing leaked).
#
# The servers listen on port 0 of 127.0.0.1 and say which port they got.
# The hard part is driving real clients from a test without flakiness:
# nothing here asserts a speed, every client runs under `timeout`, and a
# server that does not start or stop in time is a failure with its output.
#
# An automake test: run from the top build folder (where examples/ holds
# the built examples), it prints a Check-style summary line for
# ./quickstart test, and exits 77 (skip) when neither wrk nor
# redis-benchmark and redis-cli are installed, or when
# TIDE_TEST_REALCLIENTS=0 (a Debian package build: those clients are not
# its Build-Depends, so whether it ran would depend on the build machine).
# TIDE_TEST_REQUIRE_URING=1 makes the io_uring configurations fail when
# they fall back to epoll.
set -u

top_builddir=${TIDE_TOP_BUILDDIR:-$PWD}
ex=$top_builddir/examples
. "$(dirname "${BASH_SOURCE[0]}")/servers.sh"
servers_init realclients

# stop_server LOG: SIGTERM, as Ctrl-C; the server must exit 0 within 30 s.
stop_server() {
	local log=$1
	kill -TERM "$server_pid" 2>/dev/null
	await_exit "stop $(basename "$log" .log)"
	if ! check "$(basename "$log" .log) exits 0 on SIGTERM" [ $server_rc -eq 0 ]; then
		sed 's/^/  | /' "$log"
	fi
}

if [ "${TIDE_TEST_REALCLIENTS:-}" = 0 ]; then
	echo "Skipped: 2 checks: http-hello and mini-redis against real clients: TIDE_TEST_REALCLIENTS=0"
	exit 77
fi
if [ "${TIDE_EXAMPLES:-yes}" = no ]; then
	echo "Skipped: 2 checks: http-hello and mini-redis against real clients: configured with --disable-examples"
	exit 77
fi
have_wrk=no
have_redis=no
command -v wrk >/dev/null 2>&1 && have_wrk=yes
command -v redis-benchmark >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && have_redis=yes
if [ $have_wrk = no ] && [ $have_redis = no ]; then
	echo "Skipped: 2 checks: http-hello and mini-redis against real clients: neither wrk nor redis-benchmark and redis-cli are installed"
	exit 77
fi
# Each missing client skips its server's group of checks (counted as one).
[ $have_wrk = yes ] || echo "Skipped: 1 check: http-hello against wrk: wrk is not installed"
[ $have_redis = yes ] || echo "Skipped: 1 check: mini-redis against redis-benchmark and redis-cli: not installed"
for p in http-hello mini-redis; do
	if [ ! -x "$ex/$p" ]; then
		echo "$me: $ex/$p is not built (run make first)"
		exit 99
	fi
done

# ------------------------------------------------------------ http-hello --

# Three pipelined requests in one write; the last asks to close.
send_pipelined() {
	printf 'GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'
}

# A request split right after a CR, then a HEAD (headers only), then a
# request that asks to close.
send_split() {
	printf 'GET / HTTP/1.1\r\nHost: a\r'
	sleep 0.2
	printf '\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n'
}

# exchange NAME SEND FORMAT: SEND writes requests to http-hello on $port;
# all it answers until it closes (Date blanked) must be printf FORMAT.
exchange() {
	local got

	if ! exec 3<>"/dev/tcp/127.0.0.1/$port"; then
		check "connect to http-hello" false
		return
	fi
	"$2" >&3
	timeout 10 cat <&3 | sed 's/^Date: [A-Za-z0-9 ,:]* GMT/Date: -/' >"$tmp/http.out"
	exec 3<&-
	printf "$3" >"$tmp/http.expected"
	got=$(cmp "$tmp/http.expected" "$tmp/http.out" 2>&1 && echo same)
	same "$1" same "$got" || od -c "$tmp/http.out" | head -20 | sed 's/^/  | /'
}

test_http() {
	local log=$tmp/http-hello.log out reqs expected

	start_server "$log" "$ex/http-hello" --host 127.0.0.1 --port 0 --threads 2 || return

	out=$(timeout 60 wrk -t1 -c50 -d2s "http://127.0.0.1:$port/" 2>&1)
	check "wrk exits 0" [ $? -eq 0 ]
	echo "$out" | sed -n "s/^/  $config: wrk: /;/requests in\|Requests\/sec\|errors\|Non-2xx/p"
	reqs=$(echo "$out" | sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p')
	check "wrk counted requests" [ "${reqs:-0}" -gt 0 ]
	check "wrk saw no socket errors" eval '! echo "$out" | grep -q "Socket errors"'
	check "wrk saw only 2xx answers" eval '! echo "$out" | grep -q "Non-2xx"'

	expected='HTTP/1.1 200 OK\r\nServer: tide\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: -\r\n'
	exchange "pipelined answers, byte for byte" send_pipelined \
		"$expected\\r\\nHello, World!$expected\\r\\nHello, World!${expected}Connection: close\\r\\n\\r\\nHello, World!"
	exchange "split request, HEAD, close: byte for byte" send_split \
		"$expected\\r\\nHello, World!$expected\\r\\n${expected}Connection: close\\r\\n\\r\\nHello, World!"

	stop_server "$log"
}

# ------------------------------------------------------------ mini-redis --

# cli ARGS...: redis-cli's answer, annotated with its type (--no-raw).
cli() {
	timeout 10 redis-cli --no-raw -p "$port" "$@" 2>&1
}

test_redis() {
	local log=$tmp/mini-redis.log out pipeline incrs=0 name

	start_server "$log" "$ex/mini-redis" --port 0 --threads 2 || return

	for pipeline in 1 16; do
		out=$(set -o pipefail
		      timeout 120 redis-benchmark -p "$port" -n 20000 -c 50 -t ping,set,get,incr -q \
			      -P $pipeline 2>&1 | tr '\r' '\n')
		check "redis-benchmark -P $pipeline exits 0" [ $? -eq 0 ]
		for name in PING_INLINE PING_MBULK SET GET INCR; do
			check "redis-benchmark -P $pipeline: $name" \
				grep -q "^ *$name: [0-9.]* requests per second" <<<"$out"
		done
		check "redis-benchmark -P $pipeline: no error or warning" \
			eval '! grep -qi "error\|warning\|ERR" <<<"$out"'
		echo "$out" | grep 'requests per second' | sed "s/^ */  $config: -P $pipeline: /;s/, p50.*//"
		# Its INCR test INCRs one key 20000 times: every one must count.
		incrs=$((incrs + 20000))
		same "INCRs counted after -P $pipeline" "\"$incrs\"" "$(cli GET 'counter:__rand_int__')"
	done

	# redis-cli's answers, types included.
	same "FLUSHALL" "OK" "$(cli FLUSHALL)"
	same "PING" "PONG" "$(cli PING)"
	same "SET" "OK" "$(cli SET foo bar)"
	same "GET" '"bar"' "$(cli GET foo)"
	same "INCR new key" "(integer) 1" "$(cli INCR n)"
	same "INCR" "(integer) 2" "$(cli INCR n)"
	same "INCR not a number" "(error) ERR value is not an integer or out of range" "$(cli INCR foo)"
	same "DEL" "(integer) 2" "$(cli DEL foo n missing)"
	same "GET deleted" "(nil)" "$(cli GET foo)"
	same "SET to expire" "OK" "$(cli SET e v)"
	t0=$(date +%s%N)
	same "EXPIRE" "(integer) 1" "$(cli EXPIRE e 1)"
	# Not removed early: when this answer came within the second, the key
	# must be there (a loaded machine may take longer: then nothing is said).
	out=$(cli EXISTS e)
	[ $(($(date +%s%N) - t0)) -ge 900000000 ] || same "EXISTS before its EXPIRE" "(integer) 1" "$out"
	same "EXPIRE missing key" "(integer) 0" "$(cli EXPIRE missing 1)"
	# TTL rounds to whole seconds: a far deadline, so that no delay of the
	# machine between the two commands changes it by more than a few.
	same "SET EX far" "OK" "$(cli SET e3 v EX 1000)"
	out=$(cli TTL e3)
	check "TTL of a 1000 s key, got '$out'" eval '[[ "$out" =~ ^\(integer\)\ (99[0-9]|1000)$ ]]'
	same "DEL far" "(integer) 1" "$(cli DEL e3)"
	same "SET EX" "OK" "$(cli SET e2 v EX 1)"
	same "unknown command" "(error) ERR unknown command 'FOO', with args beginning with: 'a' " "$(cli FOO a)"
	same "wrong arity" "(error) ERR wrong number of arguments for 'get' command" "$(cli GET)"
	# DBSIZE counts without expiring: 0 means the timers removed both keys.
	# Waited for (bounded), not for a fixed 1.5 s that a loaded machine
	# can overrun: the timers are due a second after their commands.
	for ((i = 0; i < 300; i++)); do
		out=$(cli DBSIZE)
		[ "$out" = "(integer) 0" ] && break
		sleep 0.1
	done
	same "keys removed by their EXPIRE timers" "(integer) 0" "$out"
	same "GET expired" "(nil)" "$(cli GET e)"
	same "TTL expired" "(integer) -2" "$(cli TTL e)"

	# A raw pipeline, multibulk and inline, byte for byte; QUIT closes.
	if exec 3<>"/dev/tcp/127.0.0.1/$port"; then
		printf '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nINCR cnt\r\n*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n*3\r\n$6\r\nEXPIRE\r\n$1\r\nk\r\n$2\r\n10\r\n*2\r\n$3\r\nTTL\r\n$1\r\nk\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nECHO "a b"\r\nPING\r\nQUIT\r\n' >&3
		timeout 10 cat <&3 >"$tmp/resp.out"
		exec 3<&-
		printf '+OK\r\n$2\r\nv1\r\n:1\r\n-ERR value is not an integer or out of range\r\n:1\r\n:10\r\n:1\r\n$-1\r\n$3\r\na b\r\n+PONG\r\n+OK\r\n' >"$tmp/resp.expected"
		got=$(cmp "$tmp/resp.expected" "$tmp/resp.out" 2>&1 && echo same)
		same "RESP pipeline, byte for byte" same "$got" || od -c "$tmp/resp.out" | head -20 | sed 's/^/  | /'
	else
		check "connect to mini-redis" false
	fi

	stop_server "$log"
}

# ----------------------------------------------------------------- run --

for c in io_uring io_uring-masked epoll; do
	use_config "$c"
	echo "$me: configuration $config"
	[ $have_wrk = no ] || test_http
	[ $have_redis = no ] || test_redis
done

servers_summary
