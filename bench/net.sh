#!/bin/sh
# SPDX-License-Identifier: MIT
# net.sh: the networking benchmarks (`make bench-net`). Runs every server
# (tide's three APIs, tide on its epoll backend, libuv, raw epoll, raw
# io_uring) against every workload, one fresh server process per cell,
# and writes OUT/net.jsonl, OUT/net.md and OUT/net.svg.
#
#   bench/net.sh --bin BUILD/bench --out RESULTS_DIR [--src SRCDIR]
#
# The server runs pinned to CPU 0 and the load (bench/echo-load, or wrk for
# HTTP) to CPU 1, so that the server's CPU time per message, read from
# /proc by the load generator over the measured interval only, is the
# number to compare; throughput is capped by the single-threaded load
# generator and is shown for completeness.
#
# Environment:
#   BENCH_SCALE   multiplies the duration of each cell (default 1: 2 s
#                 measured after a 0.5 s warm-up)
#   NET_REPS      runs of each cell (default 1), interleaved across the
#                 servers; the run with the median server CPU per message
#                 is kept
#   NET_SERVERS   space-separated subset of the server names below
#   NET_WORKLOADS space-separated subset of the workload names below
#   NET_SERVER_CPU, NET_LOAD_CPU  the CPUs to pin to (default 0 and 1)
#   TIDE_BACKEND  must not be set: the tide-epoll server sets it itself
#
# The hard parts: (1) ports: each cell asks the kernel for a free port
# (echo-load --free-port: bind to port 0, read it back, close) right before
# starting the server, so that runs in parallel never collide; (2) no
# stray servers: a trap kills the current one on any exit.
set -u

bin=
out=
src=$(dirname "$0")/..
while [ $# -gt 0 ]; do
	case $1 in
	--bin) bin=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--src) src=$2; shift 2 ;;
	*) echo "usage: $0 --bin BUILD/bench --out DIR [--src SRCDIR]" >&2; exit 2 ;;
	esac
done
[ -n "$bin" ] && [ -n "$out" ] || { echo "usage: $0 --bin BUILD/bench --out DIR" >&2; exit 2; }
if [ -n "${TIDE_BACKEND:-}" ]; then
	echo "net.sh: unset TIDE_BACKEND (the tide-epoll server sets it itself)" >&2
	exit 2
fi
load=$bin/echo-load
json_awk=$(cat "$src/bench/json.awk") || exit 1
mkdir -p "$out" || exit 1

scale=${BENCH_SCALE:-1}
dur=$(awk -v s="$scale" 'BEGIN { d = 2 * s; if (d < 0.2) d = 0.2; printf "%.2f", d }')
warm=$(awk -v s="$scale" 'BEGIN { d = 0.5 * s; if (d < 0.1) d = 0.1; printf "%.2f", d }')
wrkdur=$(awk -v s="$scale" 'BEGIN { d = 2 * s; if (d < 1) d = 1; printf "%d", d + 0.5 }')
reps=${NET_REPS:-1}

# Pinning: server on CPU 0, load on CPU 1 (by default), when there are two
# CPUs and taskset.
srv_pin=
load_pin=
if command -v taskset >/dev/null 2>&1 && [ "$(getconf _NPROCESSORS_ONLN)" -ge 2 ]; then
	srv_pin="taskset -c ${NET_SERVER_CPU:-0}"
	load_pin="taskset -c ${NET_LOAD_CPU:-1}"
else
	echo "net.sh: no taskset or one CPU: server and load are not pinned" >&2
fi

all_servers="tide-protocol tide-buffered tide-stream tide-peek tide-epoll libuv epoll liburing"
[ -x "$bin/peers/uv-peer" ] || all_servers=$(echo "$all_servers" | sed 's/ libuv//')
servers=${NET_SERVERS:-$all_servers}
all_workloads="echo_1c_64B echo_100c_64B echo_100c_512B echo_1000c_64B echo_1000c_512B echo_100c_4KiB echo_50c_64B_d16 http_100c idle_1000c"
workloads=${NET_WORKLOADS:-$all_workloads}
have_wrk=0
command -v wrk >/dev/null 2>&1 && have_wrk=1

# The command line of server $1 in mode $2 (echo or http), port $3.
server_cmd() {
	case $1 in
	tide-protocol) echo "$bin/tide-echo --api protocol --mode $2 --port $3" ;;
	tide-buffered) echo "$bin/tide-echo --api buffered --mode $2 --port $3" ;;
	tide-stream) echo "$bin/tide-echo --api stream --mode $2 --port $3" ;;
	tide-peek) echo "$bin/tide-echo --api stream-peek --mode $2 --port $3" ;;
	tide-epoll) echo "env TIDE_BACKEND=epoll $bin/tide-echo --api protocol --mode $2 --port $3" ;;
	libuv) echo "$bin/peers/uv-peer --mode $2 --port $3" ;;
	epoll) echo "$bin/peers/epoll-peer --mode $2 --port $3" ;;
	liburing) echo "$bin/peers/uring-peer --mode $2 --port $3" ;;
	*) return 1 ;;
	esac
}

# echo-load's arguments for workload $1: conns size depth.
echo_args() {
	case $1 in
	echo_1c_64B) echo "1 64 1" ;;
	echo_100c_64B) echo "100 64 1" ;;
	echo_100c_512B) echo "100 512 1" ;;
	echo_1000c_64B) echo "1000 64 1" ;;
	echo_1000c_512B) echo "1000 512 1" ;;
	echo_100c_4KiB) echo "100 4096 1" ;;
	echo_50c_64B_d16) echo "50 64 16" ;;
	*) return 1 ;;
	esac
}

spid=
cleanup() {
	if [ -n "$spid" ]; then
		kill "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
	fi
	spid=
}
tmp=$out/net-$$
trap 'cleanup; rm -f "$tmp".*' EXIT
trap 'exit 130' INT TERM
: > "$tmp.raw"

# Starts server $1 in mode $2; sets $port and $spid. Fails if it does not listen.
start_server() {
	port=$("$load" --free-port) || return 1
	cmd=$(server_cmd "$1" "$2" "$port") || return 1
	# exec: $! is the server itself (taskset, env and the libtool wrapper
	# all exec), so /proc/$spid is the process to measure.
	$srv_pin $cmd &
	spid=$!
	if ! "$load" --port "$port" --wait || ! kill -0 "$spid" 2>/dev/null; then
		echo "net.sh: $1 did not start" >&2
		cleanup
		return 1
	fi
}

# Microseconds from a wrk duration ("85.00us", "1.23ms", "2.00s").
to_us() {
	awk -v v="$1" 'BEGIN { n = v + 0
		if (v ~ /us$/) f = 1; else if (v ~ /ms$/) f = 1e3; else if (v ~ /s$/) f = 1e6; else f = 1
		printf "%.2f", n * f }'
}

# One run of cell (workload $1, server $2): prints the echo-load style JSON
# object (without the workload and server keys) or nothing on failure.
# Called with its output redirected, not in $(...): a subshell would keep
# $spid from the EXIT trap.
run_cell() {
	cw=$1 cs=$2
	case $cw in
	echo_*)
		set -- $(echo_args "$cw")
		start_server "$cs" echo || return 1
		$load_pin "$load" --port "$port" --conns "$1" --size "$2" --depth "$3" \
			--duration "$dur" --warmup "$warm" --server-pid "$spid"
		cleanup
		;;
	idle_1000c)
		start_server "$cs" echo || return 1
		$load_pin "$load" --port "$port" --idle --conns 1000 --server-pid "$spid"
		cleanup
		;;
	http_100c)
		[ "$have_wrk" = 1 ] || return 1
		start_server "$cs" http || return 1
		before=$("$load" --proc "$spid")
		wout=$($load_pin wrk -t1 -c100 -d"${wrkdur}s" --latency "http://127.0.0.1:$port/" 2>&1)
		after=$("$load" --proc "$spid")
		cleanup
		reqs=$(echo "$wout" | awk '/requests in/ { print $1; exit }')
		secs=$(echo "$wout" | awk '/requests in/ { sub(/s,?$/, "", $4); print $4 + 0; exit }')
		rps=$(echo "$wout" | awk '/^Requests\/sec:/ { print $2; exit }')
		p50=$(to_us "$(echo "$wout" | awk '$1 == "50%" { print $2; exit }')")
		p99=$(to_us "$(echo "$wout" | awk '$1 == "99%" { print $2; exit }')")
		errs=$(echo "$wout" | awk '/Socket errors/ { gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) e += $i }
			/Non-2xx/ { e += $NF } END { print e + 0 }')
		[ -n "$reqs" ] && [ -n "$rps" ] || { echo "net.sh: wrk failed: $wout" >&2; return 1; }
		echo "$before $after" | awk -v reqs="$reqs" -v rps="$rps" -v secs="$secs" -v p50="$p50" \
			-v p99="$p99" -v errs="$errs" "$json_awk"'
		{ split($0, a, " ")
		  cpu = (get(a[2], "cpu_ns") - get(a[1], "cpu_ns")) / 1e3
		  ut = get(a[2], "user_ns") - get(a[1], "user_ns"); st = get(a[2], "sys_ns") - get(a[1], "sys_ns")
		  user = (ut + st > 0 && reqs > 0) ? sprintf("%.3f", cpu * ut / (ut + st) / reqs) : "null"
		  printf "{\"conns\":100,\"seconds\":%s,\"msgs\":%s,\"msgs_per_s\":%s,\"p50_us\":%s,\"p99_us\":%s,", secs, reqs, rps, p50, p99
		  printf "\"errors\":%d,\"server_cpu_pct\":%.1f,\"cpu_us_per_msg\":%.3f,\"user_us_per_msg\":%s,", \
			errs, (secs > 0 ? cpu / 1e4 / secs : 0), (reqs > 0 ? cpu / reqs : 0), user
		  printf "\"rss_kib\":%d,\"hwm_kib\":%d,\"load\":\"wrk -t1 -c100\"}\n", get(a[2], "rss_kib"), get(a[2], "hwm_kib") }'
		;;
	*)
		return 1
		;;
	esac
}

# The value of "key" in a flat JSON line (a number, or null).
jget() {
	echo "$1" | awk -v k="$2" "$json_awk"'{ print get($0, k) }'
}

echo "net.sh: ${dur}s per cell after ${warm}s of warm-up, $reps run(s) each; servers: $servers" >&2
failed=0
for w in $workloads; do
	if [ "$w" = http_100c ] && [ "$have_wrk" = 0 ]; then
		echo "net.sh: wrk not installed (apt-get install wrk): http_100c skipped" >&2
		continue
	fi
	# The servers in turn within a workload, and the runs of a cell
	# interleaved with the other servers' (run 1 of every server, then run
	# 2...), so that the numbers compared in one table row were measured
	# close in time and a slow minute of this shared machine does not land
	# on one server's runs only.
	for s in $servers; do : > "$tmp.reps.$s"; done
	r=0
	while [ "$r" -lt "$reps" ]; do
		for s in $servers; do
			run_cell "$w" "$s" > "$tmp.cell"
			line=$(grep '^{' "$tmp.cell" | tail -n 1)
			if [ -n "$line" ]; then
				echo "$line" >> "$tmp.reps.$s"
			else
				echo "net.sh: $w on $s failed" >&2
				failed=1
			fi
		done
		r=$((r + 1))
	done
	for s in $servers; do
		[ -s "$tmp.reps.$s" ] || continue
		# The median run by server CPU per message (RSS per connection for idle).
		key=cpu_us_per_msg
		[ "$w" = idle_1000c ] && key=rss_per_conn_kib
		line=$(while read -r l; do echo "$(jget "$l" "$key") $l"; done < "$tmp.reps.$s" |
			sort -g | awk '{ a[NR] = $0 } END { l = a[int((NR + 1) / 2)]; sub(/^[^ ]* /, "", l); print l }')
		if [ "$w" = idle_1000c ]; then
			# The common keys, so that one table reads every line.
			line=$(echo "$line" | sed 's/"rss_after_kib"/"rss_kib"/')
		fi
		full="{\"workload\":\"$w\",\"server\":\"$s\",${line#\{}"
		echo "$full" >&2
		echo "$full" >> "$tmp.raw"
		errs=$(jget "$line" errors)
		[ "$errs" = 0 ] || { echo "net.sh: $w on $s: $errs errors" >&2; failed=1; }
	done
done

# Ratios against the raw liburing and libuv servers of the same workload,
# measured in this run. ratio_<peer>: peer's CPU per message / this one's,
# > 1 means this server spends less CPU per message (per idle connection:
# peer's KiB / this one's); tput_ratio_<peer>: this msgs_per_s / peer's.
awk "$json_awk"'
function ratio(a, b) { return (a == "null" || b == "null" || a + 0 <= 0 || b + 0 <= 0) ? "null" : sprintf("%.3f", a / b) }
{ line[NR] = $0; w = get($0, "workload"); s = get($0, "server")
  cost[w, s] = (w == "idle_1000c") ? get($0, "rss_per_conn_kib") : get($0, "cpu_us_per_msg")
  tput[w, s] = get($0, "msgs_per_s") }
END {
	for (i = 1; i <= NR; i++) {
		l = line[i]; w = get(l, "workload"); s = get(l, "server")
		sub(/}$/, "", l)
		for (k = 1; k <= 2; k++) {
			p = k == 1 ? "liburing" : "libuv"
			c = ((w, p) in cost) ? cost[w, p] : "null"
			t = ((w, p) in tput) ? tput[w, p] : "null"
			l = l ",\"ratio_" p "\":" ratio(c, cost[w, s])
			if (w != "idle_1000c")
				l = l ",\"tput_ratio_" p "\":" ratio(tput[w, s], t)
		}
		print l "}"
	}
}' "$tmp.raw" > "$tmp.jsonl" || exit 1
[ -s "$tmp.jsonl" ] || { echo "net.sh: no results" >&2; exit 1; }

pc=${PKG_CONFIG:-pkg-config}
{
	sh "$src/bench/net-table.sh" "$tmp.jsonl"
	echo
	echo "Made by \`make bench-net\` on $(date -u +%Y-%m-%d), $(uname -sr)," \
		"$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')," \
		"$(getconf _NPROCESSORS_ONLN) CPUs, libuv $($pc --modversion libuv 2>/dev/null || echo none)," \
		"liburing $($pc --modversion liburing 2>/dev/null || echo '?')," \
		"$(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2; exit }' || echo 'no wrk');" \
		"${dur} s per cell after ${warm} s of warm-up, ${reps} run(s) per cell."
} > "$tmp.md" || exit 1
mv -f "$tmp.jsonl" "$out/net.jsonl"
mv -f "$tmp.md" "$out/net.md"
echo "net.sh: wrote $out/net.jsonl and $out/net.md" >&2
if command -v gnuplot >/dev/null 2>&1; then
	sh "$src/bench/net-table.sh" --dat "$out/net.jsonl" > "$tmp.dat" &&
		gnuplot -e "datafile='$tmp.dat'; outfile='$tmp.svg'" "$src/bench/net.gp" &&
		mv -f "$tmp.svg" "$out/net.svg" && echo "net.sh: wrote $out/net.svg" >&2
else
	echo "net.sh: gnuplot not found (apt-get install gnuplot-nox): net.svg not written" >&2
fi
cat "$out/net.md"
exit $failed
