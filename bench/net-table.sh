#!/bin/sh
# SPDX-License-Identifier: MIT
# net-table.sh: turns bench/net.sh's JSON lines into markdown tables (stdout).
#   bench/net-table.sh net.jsonl > net.md      the tables
#   bench/net-table.sh --dat net.jsonl > d.dat  CPU us/msg, one row per
#       workload and one column per server, for bench/net.gp
# One line per (workload, server); the servers are the columns, in the
# order they first appear. POSIX awk (mawk is enough), no jq.
set -e
mode=md
if [ "$1" = "--dat" ]; then
	mode=dat
	shift
fi
[ $# -ge 1 ] || { echo "usage: $0 [--dat] FILE.jsonl" >&2; exit 2; }

awk -v mode="$mode" "$(cat "$(dirname "$0")/json.awk")"'
function human(v) {
	if (v == "null" || v == "")
		return "n/a"
	v += 0
	if (v >= 1e6) return sprintf("%.2f M", v / 1e6)
	if (v >= 1e4) return sprintf("%.1f k", v / 1e3)
	if (v >= 100) return sprintf("%.0f", v)
	if (v >= 10) return sprintf("%.1f", v)
	return sprintf("%.2f", v)
}
function cell(w, s, key) {
	return ((w, s) in row) ? get(row[w, s], key) : "null"
}
function header(title,    j, sep) {
	print ""
	print title
	print ""
	printf "| workload |"
	sep = "|---|"
	for (j = 1; j <= ns; j++) {
		printf " %s |", srv[j]
		sep = sep "---:|"
	}
	print ""
	print sep
}
# One table of key over every echo/http workload; fmt "x" for ratios.
function table(title, key, fmt,    i, j, v) {
	header(title)
	for (i = 1; i <= nw; i++) {
		if (wl[i] == "idle_1000c")
			continue
		printf "| %s |", wl[i]
		for (j = 1; j <= ns; j++) {
			v = cell(wl[i], srv[j], key)
			printf " %s |", (v == "null" ? "n/a" : (fmt == "x" ? sprintf("%.2fx", v) : human(v)))
		}
		print ""
	}
}
/^\{/ {
	w = get($0, "workload"); s = get($0, "server")
	if (!(w in seen_w)) { seen_w[w] = 1; wl[++nw] = w }
	if (!(s in seen_s)) { seen_s[s] = 1; srv[++ns] = s }
	row[w, s] = $0
}
END {
	if (mode == "dat") {
		printf "workload"
		for (j = 1; j <= ns; j++)
			printf " %s", srv[j]
		print ""
		for (i = 1; i <= nw; i++) {
			if (wl[i] == "idle_1000c")
				continue
			printf "%s", wl[i]
			for (j = 1; j <= ns; j++) {
				v = cell(wl[i], srv[j], "cpu_us_per_msg")
				printf " %s", (v == "null" || v + 0 <= 0) ? "?" : v
			}
			print ""
		}
		exit
	}
	table("Server CPU time per message (µs; per request for http_100c), lower is better:", "cpu_us_per_msg", "")
	table("Of that, user space (µs per message: the total split as /proc/PID/stat splits utime and stime); the rest is kernel time:", "user_us_per_msg", "")
	table("The same as a ratio to raw liburing (liburing / server; > 1: the server spends less CPU than liburing):", "ratio_liburing", "x")
	table("The same as a ratio to libuv (libuv / server):", "ratio_libuv", "x")
	table("Throughput (messages/s; requests/s for http_100c). The load generator is one core, so it often caps this:", "msgs_per_s", "")
	table("Latency p50 (µs), from queueing a message to its last echoed byte:", "p50_us", "")
	table("Latency p99 (µs):", "p99_us", "")
	if (("idle_1000c" in seen_w)) {
		header("Memory (KiB):")
		printf "| RSS per idle connection (1000 connections) |"
		for (j = 1; j <= ns; j++)
			printf " %s |", human(cell("idle_1000c", srv[j], "rss_per_conn_kib"))
		print ""
		printf "| RSS with 1000 idle connections |"
		for (j = 1; j <= ns; j++)
			printf " %s |", human(cell("idle_1000c", srv[j], "rss_kib"))
		print ""
	}
	if (("echo_1000c_512B" in seen_w)) {
		printf "| peak RSS, echo_1000c_512B |"
		for (j = 1; j <= ns; j++)
			printf " %s |", human(cell("echo_1000c_512B", srv[j], "hwm_kib"))
		print ""
	}
	errs = 0
	for (k in row)
		errs += get(row[k], "errors")
	print ""
	printf "Errors (wrong bytes, lost connections, HTTP errors) over all cells: %d.\n", errs
}
' "$1"
