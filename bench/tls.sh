#!/bin/sh
# SPDX-License-Identifier: MIT
# tls.sh: the TLS benchmarks (`make bench-tls`, issue 17). Writes
# OUT/tls.jsonl (every run, and the summaries) and OUT/tls.md (the tables).
#
#   bench/tls.sh --bin BUILD/bench --ex BUILD/examples --out DIR [--src SRCDIR]
#
# Sections (TLS_SECTIONS, default "https echo handshake"):
#   https      wrk -t1 -c100 (keep-alive: the record path) against
#              examples/https-hello and nginx over TLS, and against
#              examples/http-hello and nginx without TLS (the HTTP/HTTPS pair)
#   echo       bench/tls-load: 100 connections x 4 KiB messages against
#              tide's TLS echo (bench/tide-echo --cert), a raw OpenSSL echo
#              on epoll (bench/peers/tls-epoll-peer), Python asyncio's
#              (bench/peers/tls-echo.py), and two plain echoes (tls-load --plain):
#              tide's and raw epoll's (bench/peers/epoll-peer), for the TLS/plain
#              ratio of tide and of the raw floor
#   handshake  bench/tls-load --handshake: 32 connections at a time, each a
#              full handshake (or a resumed one, from the newest session
#              ticket), one request with "Connection: close", the server's
#              close; against https-hello and nginx. The server runs in a
#              cgroup capped at TLS_HS_CAP % of one CPU (default 25; 0: no
#              cap): a TLS client pays more per handshake than a server
#              (OpenSSL 3.0 spends about 5 M instructions on the client's
#              side, 2.8 M on the server's: decoding the certificate's key
#              alone is 1.5 M), so an uncapped server idles while the one
#              load core runs at 100 %, and the rate ranks the client.
#              Capped, the server is what limits the rate (its CPU % sits
#              at the cap, the load's below 100 %), as on a machine with
#              enough load cores. Needs a writable cgroup cpu controller
#              (v2 cpu.max, or v1 cpu.cfs_quota_us); without one the cells
#              run uncapped and the report says the rates are client-bound.
# Every server runs pinned to one CPU and the load to the other; a server
# is ranked by its CPU time per request, message or handshake (schedstat,
# read over the measured interval only), since one load-generator core
# caps the rates. The servers of a section take turns within each round
# (the starting one rotates), TLS_REPS rounds (default 9) are kept, and
# each row's figure is the median of the kept rounds; each ratio is the
# median of the per-round ratios of two servers measured in the same
# round, with its min-max and IQR.
#
# Steal: /proc/stat's steal time of the two CPUs over each cell's window;
# a round in which a cell saw more than TLS_STEAL_MAX % (default 10) is
# kept out of the figures (its lines stay in tls.jsonl, "kept":false) and
# another is run, TLS_MAX_ROUNDS at most (default 3 x TLS_REPS). "others"
# is the busy time of the two CPUs that was neither the server's nor the
# load generator's (other processes on this shared machine), in % of one CPU.
#
# TLS: a fresh ECDSA P-256 certificate for 127.0.0.1 made with the openssl
# CLI in a temporary folder (no key is ever checked in); every server and
# wrk run with OPENSSL_CONF pointing at a file that pins TLS 1.3,
# TLS_AES_128_GCM_SHA256 and X25519 (nginx.conf pins the same), and each
# TLS server's negotiated suite is checked with `openssl s_client` (no pins
# on its side) before it is measured.
#
# Environment: BENCH_SCALE (multiplies each cell's duration: 2 s measured
# after 0.5 s of warm-up; wrk runs 2 s), TLS_REPS, TLS_MAX_ROUNDS,
# TLS_STEAL_MAX, TLS_SECTIONS, TLS_SERVERS (a subset of server names),
# NET_SERVER_CPU / NET_LOAD_CPU (default 0 and 1), BENCH_PYTHON (python3),
# NGINX (the nginx binary; when it is missing and this runs as root with
# apt-get, it is installed with `apt-get install nginx-light` unless
# TLS_NO_INSTALL=1; else the nginx cells are skipped, and said so).
set -u

bin=
ex=
out=
src=$(dirname "$0")/..
while [ $# -gt 0 ]; do
	case $1 in
	--bin) bin=$2; shift 2 ;;
	--ex) ex=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--src) src=$2; shift 2 ;;
	*) echo "usage: $0 --bin BUILD/bench --ex BUILD/examples --out DIR [--src SRCDIR]" >&2; exit 2 ;;
	esac
done
[ -n "$bin" ] && [ -n "$ex" ] && [ -n "$out" ] || {
	echo "usage: $0 --bin BUILD/bench --ex BUILD/examples --out DIR [--src SRCDIR]" >&2
	exit 2
}
unset TIDE_BACKEND
json_awk=$(cat "$src/bench/json.awk") || exit 1
mkdir -p "$out" || exit 1
eload=$bin/echo-load
tload=$bin/tls-load

scale=${BENCH_SCALE:-1}
dur=$(awk -v s="$scale" 'BEGIN { d = 2 * s; if (d < 0.2) d = 0.2; printf "%.2f", d }')
warm=$(awk -v s="$scale" 'BEGIN { d = 0.5 * s; if (d < 0.1) d = 0.1; printf "%.2f", d }')
wrkdur=$(awk -v s="$scale" 'BEGIN { d = 2 * s; if (d < 1) d = 1; printf "%d", d + 0.5 }')
reps=${TLS_REPS:-9}
max_rounds=${TLS_MAX_ROUNDS:-$((3 * reps))}
steal_max=${TLS_STEAL_MAX:-10}
sections=${TLS_SECTIONS:-https echo handshake}
scpu=${NET_SERVER_CPU:-0}
lcpu=${NET_LOAD_CPU:-1}
tck=$(getconf CLK_TCK)

srv_pin=
load_pin=
if command -v taskset >/dev/null 2>&1 && [ "$(getconf _NPROCESSORS_ONLN)" -ge 2 ]; then
	srv_pin="taskset -c $scpu"
	load_pin="taskset -c $lcpu"
else
	echo "tls.sh: no taskset or one CPU: server and load are not pinned" >&2
fi

command -v openssl >/dev/null 2>&1 || { echo "tls.sh: the openssl CLI is needed (apt-get install openssl)" >&2; exit 1; }
[ -x "$tload" ] || { echo "tls.sh: $tload missing (configure found no OpenSSL 3?)" >&2; exit 1; }
have_wrk=0
command -v wrk >/dev/null 2>&1 && have_wrk=1
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
if [ ! -x "$nginx" ] && [ "$(id -u)" = 0 ] && [ "${TLS_NO_INSTALL:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
	echo "tls.sh: nginx missing: apt-get install nginx-light (TLS_NO_INSTALL=1 skips this)" >&2
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light; } >&2 ||
		echo "tls.sh: could not install nginx" >&2
	nginx=$(command -v nginx || echo /usr/sbin/nginx)
fi
have_nginx=0
[ -x "$nginx" ] && have_nginx=1
python=${BENCH_PYTHON:-python3}
python=$("$python" -c 'import sys; print(sys.executable)' 2>/dev/null) || python=

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tide-tls.XXXXXX") || exit 1
spid=
mpid=
cg=        # the cgroup of the capped cells (handshake), or empty
capped=0   # whether the next server starts in it
cleanup() {
	if [ -n "$spid" ]; then
		kill "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
	fi
	spid=
	mpid=
}
trap 'cleanup; rm -rf "$tmp"; [ -z "$cg" ] || rmdir "$cg" 2>/dev/null' EXIT
trap 'exit 130' INT TERM

# The certificate, and the pins every server (and wrk) starts with.
cert=$tmp/cert.pem
key=$tmp/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	-keyout "$key" -out "$cert" 2>"$tmp/openssl.log" || { cat "$tmp/openssl.log" >&2; exit 1; }
cat > "$tmp/openssl.cnf" <<EOF
openssl_conf = tide_bench
[tide_bench]
ssl_conf = tide_bench_ssl
[tide_bench_ssl]
system_default = tide_bench_tls
[tide_bench_tls]
MinProtocol = TLSv1.3
Ciphersuites = TLS_AES_128_GCM_SHA256
Groups = X25519
EOF
pinned="env OPENSSL_CONF=$tmp/openssl.cnf"
suite=TLS_AES_128_GCM_SHA256

# The handshake cells' CPU cap: a cgroup of this run (v2 or v1's cpu).
hs_cap=${TLS_HS_CAP:-25}
case " $sections " in *" handshake "*) ;; *) hs_cap=0 ;; esac
if [ "$hs_cap" -gt 0 ] 2>/dev/null; then
	period=20000
	quota=$((period * hs_cap / 100))
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
			echo +cpu > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
		d=/sys/fs/cgroup/tide-bench.$$
		mkdir "$d" 2>/dev/null && echo "$quota $period" > "$d/cpu.max" 2>/dev/null && cg=$d
	elif [ -d /sys/fs/cgroup/cpu ]; then
		d=/sys/fs/cgroup/cpu/tide-bench.$$
		mkdir "$d" 2>/dev/null && echo "$period" > "$d/cpu.cfs_period_us" 2>/dev/null &&
			echo "$quota" > "$d/cpu.cfs_quota_us" 2>/dev/null && cg=$d
	fi
	if [ -z "$cg" ]; then
		[ -n "${d:-}" ] && rmdir "$d" 2>/dev/null
		echo "tls.sh: no writable cgroup cpu controller (root, cgroup v2 cpu.max or v1 cpu):" \
			"handshake servers run uncapped, their rates are the load generator's" >&2
	fi
fi

# Whether server $1 runs TLS.
is_tls() {
	case $1 in tide-http|nginx-http|tide-plain|epoll-plain) return 1 ;; esac
	return 0
}

# The command line of server $1 on port $2.
server_cmd() {
	case $1 in
	tide-https) echo "$ex/https-hello --host 127.0.0.1 --port $2 --cert $cert --key $key" ;;
	tide-http) echo "$ex/http-hello --host 127.0.0.1 --port $2" ;;
	nginx-https|nginx-http) echo "$nginx -p $tmp/nginx -c $tmp/nginx/nginx.conf" ;;
	tide-tls) echo "$bin/tide-echo --api protocol --port $2 --cert $cert --key $key" ;;
	tide-plain) echo "$bin/tide-echo --api protocol --port $2" ;;
	openssl-epoll) echo "$bin/peers/tls-epoll-peer --port $2 --cert $cert --key $key" ;;
	python-asyncio) echo "$python $src/bench/peers/tls-echo.py --port $2 --cert $cert --key $key" ;;
	epoll-plain) echo "$bin/peers/epoll-peer --mode echo --port $2" ;;
	*) return 1 ;;
	esac
}

# Starts server $1; sets $port, $spid (the process started) and $mpid (the
# one to measure: nginx's worker). Fails if it does not listen or does not
# negotiate the pinned suite.
start_server() {
	port=$("$eload" --free-port) || return 1
	case $1 in
	nginx-*)
		[ "$have_nginx" = 1 ] || return 1
		ssl=
		[ "$1" = nginx-https ] && ssl=ssl
		mkdir -p "$tmp/nginx/tmp"
		sed -e "s|@DIR@|$tmp/nginx|g" -e "s|@PORT@|$port|g" -e "s|@SSL@|$ssl|g" \
			-e "s|@CERT@|$cert|g" -e "s|@KEY@|$key|g" \
			"$src/bench/peers/nginx.conf.in" > "$tmp/nginx/nginx.conf" || return 1
		;;
	esac
	cmd=$(server_cmd "$1" "$port") || return 1
	# exec all the way (taskset, env, libtool's wrapper): $! is the server.
	if [ "$capped" = 1 ] && [ -n "$cg" ]; then
		sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" $srv_pin $pinned $cmd > "$tmp/server.log" 2>&1 &
	else
		$srv_pin $pinned $cmd > "$tmp/server.log" 2>&1 &
	fi
	spid=$!
	mpid=$spid
	if ! "$eload" --port "$port" --wait 2>/dev/null || ! kill -0 "$spid" 2>/dev/null; then
		echo "tls.sh: $1 did not start: $(tail -n 3 "$tmp/server.log" | tr '\n' ' ')" >&2
		cleanup
		return 1
	fi
	case $1 in
	nginx-*)
		i=0
		mpid=
		while [ -z "$mpid" ] && [ $i -lt 50 ]; do
			mpid=$(cat "/proc/$spid/task/$spid/children" 2>/dev/null | awk '{ print $1 }')
			[ -n "$mpid" ] || sleep 0.1
			i=$((i + 1))
		done
		[ -n "$mpid" ] || { echo "tls.sh: no nginx worker" >&2; cleanup; return 1; }
		;;
	esac
	if is_tls "$1"; then
		got=$(openssl s_client -connect "127.0.0.1:$port" -brief < /dev/null 2>&1 |
			awk -F': *' '/^Ciphersuite/ { print $2; exit }')
		if [ "$got" != "$suite" ]; then
			echo "tls.sh: $1 negotiated '$got', not $suite" >&2
			cleanup
			return 1
		fi
	fi
}

# "busy steal total" ticks of CPUs $scpu and $lcpu, then the shell's
# children's CPU ticks (the load generator's, once it was waited for).
sample() {
	awk -v a="cpu$scpu" -v b="cpu$lcpu" '$1 == a || $1 == b {
		busy += $2 + $3 + $4 + $7 + $8; steal += $9; tot += $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }
		END { printf "%d %d %d", busy, steal, tot }' /proc/stat
	awk '{ sub(/^.*\) /, ""); printf " %d\n", $14 + $15 }' "/proc/$$/stat"
}

now_ns() { date +%s%N; }

# One cell: workload $1 on server $2; prints a flat JSON object (without
# workload/server/round) or nothing on failure.
run_cell() {
	cw=$1 cs=$2
	case $cw in handshake_*) capped=1 ;; *) capped=0 ;; esac
	start_server "$cs" || { capped=0; return 1; }
	capped=0
	cap=null
	case $cw in handshake_*) [ -n "$cg" ] && cap=$hs_cap ;; esac
	s0=$(sample); p0=$("$eload" --proc "$mpid"); w0=$(now_ns)
	case $cw in
	https_100c|http_100c)
		scheme=http
		[ "$cw" = https_100c ] && scheme=https
		wout=$($load_pin $pinned wrk -t1 -c100 -d"${wrkdur}s" "$scheme://127.0.0.1:$port/" 2>&1)
		w1=$(now_ns); p1=$("$eload" --proc "$mpid"); s1=$(sample)
		reqs=$(echo "$wout" | awk '/requests in/ { print $1; exit }')
		secs=$(echo "$wout" | awk '/requests in/ { sub(/s,?$/, "", $4); print $4 + 0; exit }')
		errs=$(echo "$wout" | awk '/Socket errors/ { gsub(/[^0-9 ]/, " "); for (i = 1; i <= NF; i++) e += $i }
			/Non-2xx/ { e += $NF } END { print e + 0 }')
		if [ -z "$reqs" ] || [ -z "$secs" ]; then
			echo "tls.sh: wrk failed: $wout" >&2
			cleanup
			return 1
		fi
		cipher=none
		[ "$scheme" = https ] && cipher=$suite
		line=$(echo "$p0 $p1" | awk -v reqs="$reqs" -v secs="$secs" -v errs="$errs" -v c="$cipher" "$json_awk"'
			{ split($0, a, " ")
			  cpu = (get(a[2], "cpu_ns") - get(a[1], "cpu_ns")) / 1e3
			  ut = get(a[2], "user_ns") - get(a[1], "user_ns"); st = get(a[2], "sys_ns") - get(a[1], "sys_ns")
			  user = (ut + st > 0 && reqs > 0) ? sprintf("%.3f", cpu * ut / (ut + st) / reqs) : "null"
			  printf "{\"cipher\":\"%s\",\"seconds\":%s,\"ops\":%s,\"ops_per_s\":%.1f,\"errors\":%d,", c, secs, reqs, reqs / secs, errs
			  printf "\"server_cpu_pct\":%.1f,\"cpu_us_per_op\":%.3f,\"user_us_per_op\":%s,\"load\":\"wrk -t1 -c100\"}\n", \
				cpu / 1e4 / secs, (reqs > 0 ? cpu / reqs : 0), user }')
		;;
	echo_100c_4KiB)
		plain=
		is_tls "$cs" || plain=--plain
		line=$($load_pin "$tload" --port "$port" --conns 100 --size 4096 $plain \
			--duration "$dur" --warmup "$warm" --server-pid "$mpid" | grep '^{')
		w1=$(now_ns); p1=$("$eload" --proc "$mpid"); s1=$(sample)
		;;
	handshake_full|handshake_resumed)
		resume=
		[ "$cw" = handshake_resumed ] && resume=--resume
		line=$($load_pin "$tload" --port "$port" --handshake --conc 32 $resume \
			--duration "$dur" --warmup "$warm" --server-pid "$mpid" | grep '^{')
		w1=$(now_ns); p1=$("$eload" --proc "$mpid"); s1=$(sample)
		;;
	*)
		cleanup
		return 1
		;;
	esac
	cleanup
	[ -n "$line" ] || return 1
	# Steal and the others' CPU over the cell's window.
	env=$(echo "$s0 $s1 $p0 $p1 $w0 $w1" | awk -v tck="$tck" "$json_awk"'{
		busy = $5 - $1; steal = $6 - $2; tot = $7 - $3; load = $8 - $4
		srv = (get($10, "cpu_ns") - get($9, "cpu_ns")) / 1e9 * tck
		wall = ($12 - $11) / 1e9 * tck
		others = wall > 0 ? (busy - srv - load) / wall * 100 : 0
		if (others < 0) others = 0
		printf "\"steal_pct\":%.1f,\"others_pct\":%.1f", (tot > 0 ? steal / tot * 100 : 0), others }')
	env="$env,\"server_cap_pct\":$cap"
	echo "{$env,${line#\{}"
}

jget() {
	echo "$1" | awk -v k="$2" "$json_awk"'{ print get($0, k) }'
}

# The servers of each section (TLS_SERVERS filters them).
section_servers() {
	case $1 in
	https) s="tide-https nginx-https tide-http nginx-http" ;;
	echo) s="tide-tls openssl-epoll python-asyncio tide-plain epoll-plain" ;;
	handshake) s="tide-https nginx-https" ;;
	esac
	[ -z "${TLS_SERVERS:-}" ] && { echo "$s"; return; }
	for x in $s; do
		case " $TLS_SERVERS " in *" $x "*) printf '%s ' "$x" ;; esac
	done
}
section_workloads() {
	case $1 in
	https) echo "https_100c http_100c" ;;
	echo) echo "echo_100c_4KiB" ;;
	handshake) echo "handshake_full handshake_resumed" ;;
	esac
}
# Which workload a server runs within its section.
serves() {
	case $1:$2 in
	https_100c:tide-https|https_100c:nginx-https|http_100c:tide-http|http_100c:nginx-http) return 0 ;;
	echo_*) return 0 ;;
	handshake_*) return 0 ;;
	esac
	return 1
}

echo "tls.sh: ${dur} s per cell after ${warm} s of warm-up (wrk ${wrkdur} s), $reps rounds kept" \
	"(at most $max_rounds), steal above ${steal_max} % discards a round" >&2
: > "$tmp/raw"
failed=0
for sec in $sections; do
	if [ "$sec" = https ] && [ "$have_wrk" = 0 ]; then
		echo "tls.sh: wrk not installed (apt-get install wrk): https section skipped" >&2
		continue
	fi
	# Servers that cannot start (not built yet, no nginx) are dropped
	# once, with the reason, rather than failing every round.
	servers=
	for s in $(section_servers "$sec"); do
		case $s in
		nginx-*) [ "$have_nginx" = 1 ] || { echo "tls.sh: no nginx (apt-get install nginx-light): $s skipped" >&2; continue; } ;;
		python-asyncio) [ -n "$python" ] || { echo "tls.sh: no python3: $s skipped" >&2; continue; } ;;
		esac
		if start_server "$s"; then
			cleanup
			servers="$servers $s"
		else
			echo "tls.sh: $s skipped in section $sec" >&2
			failed=1
		fi
	done
	[ -n "$servers" ] || continue
	cells=
	for w in $(section_workloads "$sec"); do
		for s in $servers; do
			serves "$w" "$s" && cells="$cells $w:$s"
		done
	done
	n=$(echo $cells | wc -w)
	kept=0
	round=0
	while [ "$kept" -lt "$reps" ] && [ "$round" -lt "$max_rounds" ]; do
		round=$((round + 1))
		: > "$tmp/round"
		ok=1
		# Rotate the order: the first cell of round r is cell r.
		i=0
		set -- $cells
		while [ $i -lt "$n" ]; do
			k=$(( (i + round - 1) % n + 1 ))
			eval c=\${$k}
			w=${c%%:*} s=${c#*:}
			line=$(run_cell "$w" "$s")
			if [ -z "$line" ]; then
				echo "tls.sh: $w on $s failed (round $round)" >&2
				ok=0
				failed=1
			else
				echo "{\"workload\":\"$w\",\"server\":\"$s\",\"round\":$round,${line#\{}" >> "$tmp/round"
			fi
			i=$((i + 1))
		done
		worst=$(awk "$json_awk"'{ v = get($0, "steal_pct") + 0; if (v > m) m = v } END { printf "%.1f", m + 0 }' "$tmp/round")
		keep=true
		if [ "$ok" = 0 ] || awk -v a="$worst" -v b="$steal_max" 'BEGIN { exit !(a > b) }'; then
			keep=false
		fi
		[ "$keep" = true ] && kept=$((kept + 1))
		echo "tls.sh: $sec round $round: worst steal ${worst} %, kept $keep ($kept/$reps)" >&2
		sed "s/}\$/,\"kept\":$keep}/" "$tmp/round" | tee -a "$tmp/raw" >&2
	done
	[ "$kept" -ge "$reps" ] || { echo "tls.sh: $sec: only $kept rounds with steal <= ${steal_max} %" >&2; failed=1; }
done
[ -s "$tmp/raw" ] || { echo "tls.sh: no results" >&2; exit 1; }

# Summaries: per (workload, server), medians over the kept rounds; per
# ratio, the median of the per-round ratios with min-max and IQR. A ratio
# "A / B of key" is A's value over B's in the same round. For CPU per
# operation it is written peer / tide, so > 1 means tide spends less.
awk "$json_awk"'
function sort(a, n,    i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
function q(a, n, p,    x, i) { if (n == 0) return "null"; x = 1 + (n - 1) * p; i = int(x); return i >= n ? a[n] : a[i] + (x - i) * (a[i + 1] - a[i]) }
function stat(list, key,    n, a, i, parts) {
	n = split(list, parts, " "); delete a
	for (i = 1; i <= n; i++) a[i] = parts[i] + 0
	sort(a, n)
	return sprintf("\"%s_median\":%.3f,\"%s_min\":%.3f,\"%s_max\":%.3f,\"%s_q1\":%.3f,\"%s_q3\":%.3f", \
		key, q(a, n, .5), key, a[1], key, a[n], key, q(a, n, .25), key, q(a, n, .75))
}
{ print; if (get($0, "kept") != "true") next
  w = get($0, "workload"); s = get($0, "server"); r = get($0, "round")
  if (!((w, s) in seen)) { seen[w, s] = 1; order[++no] = w SUBSEP s }
  n[w, s]++
  for (k = 1; k <= nk; k++) v[w, s, keys[k]] = v[w, s, keys[k]] " " get($0, keys[k])
  cpu[w, s, r] = get($0, "cpu_us_per_op"); rate[w, s, r] = get($0, "ops_per_s"); rounds[w, r] = 1 }
BEGIN { nk = split("cpu_us_per_op user_us_per_op ops_per_s server_cpu_pct load_cpu_pct steal_pct others_pct", keys, " ")
	# workload, numerator, denominator, metric, what it says, goal
	nr = 0
	R[++nr] = "https_100c nginx-https tide-https cpu https-hello spends <= nginx CPU per request: >= 1"
	R[++nr] = "http_100c nginx-http tide-http cpu -"
	R[++nr] = "https_100c tide-https nginx-https rate -"
	R[++nr] = "https_100c@http_100c tide-https tide-http cpu -"
	R[++nr] = "https_100c@http_100c nginx-https nginx-http cpu -"
	R[++nr] = "echo_100c_4KiB tide-tls tide-plain cpu TLS echo CPU per message <= 2x plain: <= 2"
	R[++nr] = "echo_100c_4KiB openssl-epoll tide-tls cpu -"
	R[++nr] = "echo_100c_4KiB python-asyncio tide-tls cpu -"
	R[++nr] = "echo_100c_4KiB openssl-epoll epoll-plain cpu -"
	R[++nr] = "handshake_full nginx-https tide-https cpu -"
	R[++nr] = "handshake_full tide-https nginx-https rate handshakes/s >= nginx: >= 1"
	R[++nr] = "handshake_resumed nginx-https tide-https cpu -"
	R[++nr] = "handshake_resumed tide-https nginx-https rate handshakes/s >= nginx: >= 1"
}
END {
	for (i = 1; i <= no; i++) {
		split(order[i], p, SUBSEP); w = p[1]; s = p[2]
		l = sprintf("{\"summary\":\"server\",\"workload\":\"%s\",\"server\":\"%s\",\"rounds\":%d", w, s, n[w, s])
		for (k = 1; k <= nk; k++) l = l "," stat(v[w, s, keys[k]], keys[k])
		print l "}"
	}
	for (j = 1; j <= nr; j++) {
		split(R[j], f, " "); goal = R[j]; sub(/^[^ ]* [^ ]* [^ ]* [^ ]* /, "", goal)
		split(f[1], ww, "@"); wa = ww[1]; wb = (2 in ww) ? ww[2] : ww[1]
		list = ""; m = 0
		for (r = 1; r <= 1000; r++) {
			if (!((wa, r) in rounds) || !((wb, r) in rounds)) continue
			if (f[4] == "cpu") { a = cpu[wa, f[2], r]; b = cpu[wb, f[3], r] }
			else { a = rate[wa, f[2], r]; b = rate[wb, f[3], r] }
			if (a == "" || b == "" || a + 0 <= 0 || b + 0 <= 0) continue
			list = list " " (a / b); m++
		}
		if (m == 0) continue
		printf "{\"summary\":\"ratio\",\"workload\":\"%s\",\"num\":\"%s\",\"den\":\"%s\",\"of\":\"%s\",\"rounds\":%d,%s,\"goal\":\"%s\"}\n", \
			f[1], f[2], f[3], f[4] == "cpu" ? "cpu_us_per_op" : "ops_per_s", m, stat(list, "ratio"), goal
	}
}' "$tmp/raw" > "$tmp/tls.jsonl" || exit 1

# The tables.
{
	awk "$json_awk"'
	function h(v) { v += 0; if (v >= 1e4) return sprintf("%.1f k", v / 1e3); if (v >= 100) return sprintf("%.0f", v); if (v >= 10) return sprintf("%.1f", v); return sprintf("%.2f", v) }
	get($0, "summary") == "server" {
		if (!t1++) {
			print "Per server, the median over the kept rounds (min-max), server pinned to one CPU, load to the other:"
			print ""
			print "| workload | server | CPU µs/op | of it user | ops/s | server CPU % | load CPU % | steal % | others % | rounds |"
			print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		}
		load = get($0, "load_cpu_pct_median") + 0
		printf "| %s | %s | %s (%s-%s) | %s | %s (%s-%s) | %s | %s | %s | %s | %d |\n", get($0, "workload"), get($0, "server"),
			h(get($0, "cpu_us_per_op_median")), h(get($0, "cpu_us_per_op_min")), h(get($0, "cpu_us_per_op_max")),
			h(get($0, "user_us_per_op_median")),
			h(get($0, "ops_per_s_median")), h(get($0, "ops_per_s_min")), h(get($0, "ops_per_s_max")),
			h(get($0, "server_cpu_pct_median")), (load > 0 ? h(load) : "-"),
			h(get($0, "steal_pct_median")), h(get($0, "others_pct_median")), get($0, "rounds")
	}
	get($0, "summary") == "ratio" {
		if (!t2++) {
			print ""
			print "Paired ratios (the two servers of a row measured in the same round; median of the rounds, min-max, IQR):"
			print ""
			print "| workload | ratio | median | min-max | IQR | rounds | goal |"
			print "|---|---|---:|---:|---:|---:|---|"
		}
		of = get($0, "of") == "cpu_us_per_op" ? "CPU/op" : "ops/s"
		printf "| %s | %s %s / %s | %.2fx | %.2f-%.2f | %.2f-%.2f | %d | %s |\n", get($0, "workload"), of, get($0, "num"), get($0, "den"),
			get($0, "ratio_median"), get($0, "ratio_min"), get($0, "ratio_max"), get($0, "ratio_q1"), get($0, "ratio_q3"),
			get($0, "rounds"), get($0, "goal") == "-" ? "" : get($0, "goal")
	}
	get($0, "kept") == "false" { dropped++ }
	get($0, "kept") != "null" { cells++; e += get($0, "errors") }
	get($0, "kept") != "null" && get($0, "workload") ~ /^handshake/ { hs++; c = get($0, "server_cap_pct"); if (c != "null" && c != "") cap = c }
	END { print ""; printf "%d cells, %d in rounds discarded for steal or a failure; errors (wrong bytes, failed connections, HTTP errors) over all cells: %d.\n", cells, dropped, e
		if (hs && cap != "") printf "\nHandshake cells: every server capped at %s %% of one CPU (a cgroup), so that the server, not the one-core load generator, limits the rate (server CPU %% at the cap, load CPU %% below 100).\n", cap
		else if (hs) printf "\nHandshake cells: uncapped (no writable cgroup cpu controller): the load generator limits the rate, which therefore does not rank the servers; CPU per handshake does.\n" }
	' "$tmp/tls.jsonl"
	echo
	echo "Made by \`make bench-tls\` on $(date -u +%Y-%m-%d), $(uname -sr)," \
		"$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')," \
		"$(getconf _NPROCESSORS_ONLN) CPUs, $(openssl version | awk '{ print $1, $2 }')," \
		"$([ "$have_nginx" = 1 ] && "$nginx" -v 2>&1 | sed 's/.*: //' || echo 'no nginx')," \
		"$(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2; exit }' || echo 'no wrk')," \
		"$([ -n "$python" ] && "$python" --version 2>&1 || echo 'no python');" \
		"${dur} s per cell after ${warm} s of warm-up (wrk ${wrkdur} s), steal limit ${steal_max} %."
} > "$tmp/tls.md" || exit 1
mv -f "$tmp/tls.jsonl" "$out/tls.jsonl"
mv -f "$tmp/tls.md" "$out/tls.md"
echo "tls.sh: wrote $out/tls.jsonl and $out/tls.md" >&2
cat "$out/tls.md"
exit $failed
