#!/bin/sh
# SPDX-License-Identifier: MIT
#
# layering.sh: src/ is four layers, bottom up core < io < task < net (one
# folder each), and a layer never reaches up. Three checks:
#  1. calls: for every object of a layer, `nm -u` names no symbol that a
#     higher layer's object defines, except the loop's teardown hub (the
#     calls core.h declares for tide_loop_new/free/shutdown to reach io and
#     task, as libuv's uv_close switches over handle types);
#  2. includes: no file of a layer includes a higher layer's header;
#  3. the net layer talks to the I/O backends only through ops: no file of
#     src/net includes liburing or reads an io_uring CQE or SQE flag.
# An automake test, run from the top build folder (objects in src/<layer>/).
set -u
me=test/layering.sh
src=${srcdir:-.}/src
layers="core io task net"
# The hub: the only upward calls, each from core's loop.c.
hub="tide__io_open tide__io_settle tide__io_close tide__tasks_fini tide__tasks_cancel_since"

command -v nm >/dev/null 2>&1 || { echo "$me: nm is missing (binutils)"; exit 99; }
for l in $layers; do
	ls src/$l/*.o >/dev/null 2>&1 || { echo "$me: no objects in src/$l (run make first)"; exit 99; }
done
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

rank=0
for l in $layers; do
	for o in src/$l/*.o; do
		nm --defined-only "$o" | awk -v l="$l" -v r="$rank" -v o="$o" \
			'$2 ~ /^[TDBRVW]$/ { print $3, l, r, o }'
	done
	rank=$((rank + 1))
done > "$tmp/defs"

checks=0
failures=0
rank=0
for l in $layers; do
	for o in src/$l/*.o; do
		checks=$((checks + 1))
		base=$(basename "$o" .o)
		base=${base#libtide_internal_la-}
		nm -u "$o" | awk '{ print $NF }' | sort -u > "$tmp/undef"
		bad=$(awk -v r="$rank" -v hub=" $hub " -v base="$base" -v l="$l" '
			NR == FNR { want[$1] = 1; next }
			($1 in want) && $3 > r {
				if (l == "core" && base == "loop" && index(hub, " " $1 " "))
					next
				print "    " $1 " (defined in " $2 ": " $4 ")"
			}' "$tmp/undef" "$tmp/defs" | sort -u)
		if [ -n "$bad" ]; then
			echo "$me: src/$l/$base calls up into a higher layer:"
			echo "$bad"
			failures=$((failures + 1))
		fi
	done
	rank=$((rank + 1))
done

rank=0
for l in $layers; do
	higher=$(echo "$layers" | tr ' ' '\n' | awk -v r="$rank" 'NR - 1 > r' | paste -sd'|' -)
	if [ -n "$higher" ]; then
		for f in "$src/$l"/*.c "$src/$l"/*.h; do
			checks=$((checks + 1))
			if grep -nE "^#[[:space:]]*include[[:space:]]+\"($higher)/" "$f"; then
				echo "$me: $f includes a higher layer's header"
				failures=$((failures + 1))
			fi
		done
	fi
	rank=$((rank + 1))
done

for f in "$src/net"/*.c "$src/net"/*.h; do
	checks=$((checks + 1))
	if grep -nE 'liburing|IORING_|IOSQE_|io_uring_(cqe|sqe)' "$f"; then
		echo "$me: $f reaches past the op layer into io_uring"
		failures=$((failures + 1))
	fi
done

echo "$me: layers: $layers; the teardown hub: $hub"
# The summary line in Check's format, which ./quickstart test reads.
echo "$(( (checks - failures) * 100 / checks ))%: Checks: $checks, Failures: $failures, Errors: 0"
[ "$failures" -eq 0 ]
