#!/bin/sh
# SPDX-License-Identifier: MIT
# table.sh: turns bench JSON lines into a markdown table (stdout).
#   bench/table.sh loop.jsonl > loop.md          markdown table
#   bench/table.sh --dat loop.jsonl > ratios.dat  "workload ratio" pairs for gnuplot
#   bench/table.sh --peers task.jsonl > task.md   one row per (workload, peer):
#       every "ratio_<peer>" key of a line names a peer (bench-task's lines
#       have several: ucontext, asyncio, libuv), and its "goal" is shown
#   bench/table.sh --wide proc.jsonl > proc.md    one row per line, a column
#       per peer (the "ratio_<peer>" keys of the first line that has some):
#       "value (ratio, lo-hi)" where the line has the paired ratio's spread
#       ("lo_<peer>", "hi_<peer>", bench-proc), "value (lo-hi)" where it
#       has only a spread of the value itself; then a column "posix_spawn
#       vs asyncio" where the lines have "posix_spawn_vs_asyncio" (raw
#       posix_spawn's own paired ratio to asyncio, and its spread)
# The JSON is the flat one-object-per-line form the bench programs print, so
# POSIX awk (mawk is enough) reads it without jq.
set -e
mode=md
if [ "$1" = "--dat" ]; then
	mode=dat
	shift
elif [ "$1" = "--peers" ]; then
	mode=peers
	shift
elif [ "$1" = "--wide" ]; then
	mode=wide
	shift
fi
[ $# -ge 1 ] || { echo "usage: $0 [--dat|--peers|--wide] FILE.jsonl" >&2; exit 2; }

awk -v mode="$mode" "$(cat "$(dirname "$0")/json.awk")"'
# Human-readable numbers: 12.3 M, 456.7 k, 0.000.
function human(v) {
	if (v == "null")
		return "n/a"
	v += 0
	if (v >= 1e9) return sprintf("%.2f G", v / 1e9)
	if (v >= 1e6) return sprintf("%.2f M", v / 1e6)
	if (v >= 1e4) return sprintf("%.1f k", v / 1e3)
	if (v >= 1e3) return sprintf("%.0f", v)
	return sprintf("%.3g", v)
}
BEGIN {
	if (mode == "md") {
		print "| workload | unit | tide | libuv | ratio |"
		print "|---|---|---:|---:|---:|"
	} else if (mode == "peers") {
		print "| workload | unit | tide | peer | peer value | tide vs peer | goal |"
		print "|---|---|---:|---|---:|---:|---|"
	}
}
# A value and what goes with it: its paired ratio and the spread of that ratio,
# or the spread of the value itself.
function cell(line, key,    v, r, lo, hi, s) {
	v = get(line, key); r = get(line, "ratio_" key)
	lo = get(line, "lo_" key); hi = get(line, "hi_" key)
	s = human(v)
	if (r != "null")
		s = s sprintf(" (%.2fx", r) (lo != "null" ? sprintf(", %.2f-%.2f", lo, hi) : "") ")"
	else if (lo != "null")
		s = s sprintf(" (%.2f-%.2f)", lo, hi)
	return s
}
mode == "wide" && /^\{/ {
	if (npeers == 0) {
		rest = $0
		while ((i = index(rest, "\"ratio_")) > 0) {
			rest = substr(rest, i + 7)
			peer[++npeers] = substr(rest, 1, index(rest, "\"") - 1)
		}
		if (npeers == 0)
			next
		ceiling = get($0, "posix_spawn_vs_asyncio") != "null"
		printf "| workload | unit | tide |"
		for (k = 1; k <= npeers; k++) printf " %s |", peer[k]
		if (ceiling) printf " posix_spawn vs asyncio |"
		printf " goal |\n|---|---|---:|"
		for (k = 1; k <= npeers; k++) printf "---:|"
		if (ceiling) printf "---:|"
		printf "---|\n"
	}
	goal = get($0, "goal"); if (goal == "null") goal = ""
	b = get($0, "backend")
	if (!(b in seen)) { seen[b] = 1; backends = backends (backends == "" ? "" : ", ") b }
	printf "| %s | %s | %s |", get($0, "bench"), get($0, "unit"), cell($0, "tide")
	for (k = 1; k <= npeers; k++) printf " %s |", cell($0, peer[k])
	if (ceiling) {
		r = get($0, "posix_spawn_vs_asyncio"); lo = get($0, "lo_posix_spawn_vs_asyncio")
		if (r == "null")
			printf " |"
		else
			printf " %.2fx%s |", r, (lo != "null" ? sprintf(" (%.2f-%.2f)", lo, get($0, "hi_posix_spawn_vs_asyncio")) : "")
	}
	printf " %s |\n", goal
	next
}
mode == "peers" && /^\{/ {
	b = get($0, "bench"); u = get($0, "unit"); t = get($0, "tide")
	goal = get($0, "goal"); if (goal == "null") goal = ""
	backend = get($0, "backend")
	rest = $0; np = 0
	while ((i = index(rest, "\"ratio_")) > 0) {
		rest = substr(rest, i + 7)
		p = substr(rest, 1, index(rest, "\"") - 1)
		r = get($0, "ratio_" p)
		printf "| %s | %s | %s | %s | %s | %s | %s |\n", b, u, human(t), p, \
			human(get($0, p)), (r == "null" ? "n/a" : sprintf("%.2fx", r)), goal
		np++
	}
	if (np == 0)
		printf "| %s | %s | %s | | | | %s |\n", b, u, human(t), goal
	next
}
/^\{/ {
	b = get($0, "bench"); u = get($0, "unit")
	t = get($0, "tide"); l = get($0, "libuv"); r = get($0, "ratio_libuv")
	if (mode == "dat") {
		if (r != "null")
			printf "%s %s\n", b, r
		next
	}
	backend = get($0, "backend")
	printf "| %s | %s | %s | %s | %s |\n", b, u, human(t), human(l), \
		(r == "null" ? "n/a" : sprintf("%.2fx", r))
}
END {
	if (mode == "md" && backend != "")
		printf "\ntide backend: %s. ratio = tide / libuv (higher is better for tide).\n", backend
	if (mode == "peers" && backend != "")
		printf "\ntide backend: %s. tide vs peer > 1 means tide wins: tide / peer for rates, peer / tide for costs (ns, KiB).\n", backend
	if (mode == "wide" && backends != "")
		printf "\ntide backends: %s (each row says which, as \"backend\" in its JSON line). In brackets: the median over the rounds of the paired ratio, > 1 when tide wins (tide / peer for rates, peer / tide for costs), and its min-max.\n", backends
	if (mode == "wide" && ceiling)
		printf "posix_spawn vs asyncio: raw posix_spawn'"'"'s own paired ratio to asyncio, the same way (> 1 when posix_spawn wins).\n"
}
' "$1"
