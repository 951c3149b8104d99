#!/bin/sh
# SPDX-License-Identifier: MIT
#
# cet.sh: where the compiler was asked for control-flow protection
# (-fcf-protection: __CET__ defined), every object of the library, the
# assembly context switch included, must carry the GNU property note for
# the IBT and SHSTK it was asked for, and so must libtide.so. The linker
# keeps a property only when every input has it, the toolchain's start
# files too: where they lack it (Debian 12's glibc crti.o does), no shared
# object linked on that machine can have it, which is said and not counted
# against the library. Skipped (77) without __CET__. An automake test, run
# from the top build folder; the Makefile passes CC and CFLAGS.
set -u
me=test/cet.sh
ar=src/.libs/libtide-internal.a
so=src/.libs/libtide.so

cet=$(echo | ${CC:-cc} ${CFLAGS:-} -dM -E - 2>/dev/null | sed -n 's/^#define __CET__ //p')
if [ -z "$cet" ]; then
	echo "Skipped: 1 check: the CET property notes: the compiler was not asked for -fcf-protection (CFLAGS: ${CFLAGS:-none})"
	exit 77
fi
command -v readelf >/dev/null 2>&1 || { echo "$me: readelf is missing (binutils)"; exit 99; }
[ -e "$ar" ] || { echo "$me: $ar is missing (run make first)"; exit 99; }
want=
[ $((cet & 1)) -ne 0 ] && want="IBT"
[ $((cet & 2)) -ne 0 ] && want="${want:+$want }SHSTK"
checks=0
failures=0
# has FILE FEATURE: the (single) object FILE carries FEATURE.
has() {
	readelf -n "$1" 2>/dev/null | sed -n 's/.*x86 feature: *//p' | tr ',' '\n' | sed 's/^ *//' | grep -qx "$2"
}
check() {
	checks=$((checks + 1))
	if [ "$1" = ok ]; then
		echo "$me: $2"
	else
		failures=$((failures + 1))
		echo "$me: FAIL: $2"
	fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tide-cet.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && ar x "$OLDPWD/$ar") || exit 99
for f in $want; do
	n=0
	missing=
	for o in "$tmp"/*.o; do
		n=$((n + 1))
		has "$o" "$f" || missing="$missing ${o##*/}"
	done
	if [ -z "$missing" ]; then
		check ok "$f: all $n objects of the library are marked"
	else
		check fail "$f: not marked:$missing"
	fi
done

if [ -e "$so" ]; then
	# What this toolchain can give a shared object at all.
	echo 'int tide_cet_probe(void) { return 0; }' > "$tmp/probe.c"
	${CC:-cc} ${CFLAGS:-} -shared -fPIC -o "$tmp/probe.so" "$tmp/probe.c" 2>/dev/null || exit 99
	for f in $want; do
		if has "$tmp/probe.so" "$f"; then
			if has "$so" "$f"; then check ok "$f: $so keeps it"; else check fail "$f: $so lacks it"; fi
		else
			echo "$me: $f: this toolchain's start files (crti.o, crtn.o) are not marked, so no shared object linked here has it; libtide's own objects do"
		fi
	done
fi
echo "$(( (checks - failures) * 100 / checks ))%: Checks: $checks, Failures: $failures, Errors: 0"
[ "$failures" -eq 0 ]
