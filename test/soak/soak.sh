#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# soak.sh: the body of make check-soak. For each backend, it starts
# test/soak/stream-echo (a stream echo server, until SIGTERM) and sends
# SOAK_CONNS short connections through it with test/soak/echo-churn,
# SOAK_CONCURRENCY at a time, in rounds of SOAK_STEP. After each round (all
# of its connections closed) it samples the server's VmRSS from /proc.
# It fails when
#   - a connection's echo is wrong (echo-churn checks every byte);
#   - the RSS grew by more than SOAK_RSS_SLACK_KIB from the end of the
#     first round (the warm-up: pools, the receive ring, the allocator's
#     arenas fill) to the end of the last;
#   - the server does not end cleanly on SIGTERM: its loop must free (no
#     object left alive), and in the sanitizer build (configure
#     --enable-asan) LeakSanitizer must find nothing at exit.
#
#   test/soak/soak.sh DIR     DIR holds the two programs (make check-soak)
#
# Environment: SOAK_BACKENDS (default "io_uring epoll"), SOAK_CONNS
# (100000), SOAK_STEP (10000), SOAK_CONCURRENCY (64), SOAK_RSS_SLACK_KIB
# (8192), SOAK_ASAN (yes in the sanitizer build: said in the report).
#
# ASan keeps freed blocks in a quarantine (256 MiB by default) to catch
# uses after free; a churn of 100,000 connections would fill it and show
# as growth that is not the server's. The soak runs with a 16 MiB
# quarantine, which the first round fills, and LeakSanitizer on.
set -u

dir=${1:?usage: soak.sh DIR}
backends=${SOAK_BACKENDS:-io_uring epoll}
conns=${SOAK_CONNS:-100000}
step=${SOAK_STEP:-10000}
concurrency=${SOAK_CONCURRENCY:-64}
slack=${SOAK_RSS_SLACK_KIB:-8192}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=16}

passed=0 failed=0
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

soak_one() {
	local backend=$1 log out pid port done=0 t0 rss warm= last= samples= rc
	log=$(mktemp "${TMPDIR:-/tmp}/soak-server.XXXXXX")
	TIDE_BACKEND=$backend "$dir/stream-echo" >"$log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		port=$(sed -n 's/^port \([0-9]*\).*/\1/p' "$log")
		[ -n "$port" ] && break
		sleep 0.1
	done
	if [ -z "$port" ]; then
		echo "soak: $backend: the server did not start:"
		sed 's/^/  /' "$log"
		kill "$pid" 2>/dev/null
		rm -f "$log"
		return 1
	fi
	echo "soak: $backend: $(head -n 1 "$log"), pid $pid; $conns connections, $concurrency at a time"
	t0=$SECONDS
	while [ "$done" -lt "$conns" ]; do
		local n=$((conns - done < step ? conns - done : step))
		if ! "$dir/echo-churn" --port "$port" --conns "$n" --first "$done" \
			--concurrency "$concurrency" >/dev/null; then
			echo "soak: $backend: the echo failed after $done connections"
			kill "$pid" 2>/dev/null
			wait "$pid"
			sed 's/^/  /' "$log"
			rm -f "$log"
			return 1
		fi
		done=$((done + n))
		sleep 0.2 # the last connections' ends run on the server's loop
		rss=$(rss_kib "$pid")
		[ -n "$warm" ] || warm=$rss
		last=$rss
		samples="$samples $done:$rss"
	done
	echo "soak: $backend: $conns connections in $((SECONDS - t0)) s; VmRSS (KiB) after each round:$samples"
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	out=$(cat "$log")
	rm -f "$log"
	echo "$out" | sed -n 's/^served/soak: '"$backend"': the server served/p'
	if [ "$rc" -ne 0 ]; then
		echo "soak: $backend: the server ended with status $rc:"
		echo "$out" | tail -n 40 | sed 's/^/  /'
		return 1
	fi
	if [ $((last - warm)) -gt "$slack" ]; then
		echo "soak: $backend: VmRSS grew by $((last - warm)) KiB after the first round (limit $slack KiB)"
		return 1
	fi
	echo "soak: $backend: VmRSS growth after the first round: $((last - warm)) KiB (limit $slack KiB)"
	return 0
}

if [ "${SOAK_ASAN:-no}" = yes ]; then
	echo "soak: sanitizer build: LeakSanitizer checks the server's exit ($ASAN_OPTIONS)"
else
	echo "soak: not a sanitizer build: no leak check at exit (configure --enable-asan for it)"
fi
for b in $backends; do
	if soak_one "$b"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "soak: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
