#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-man.sh: the man pages against groff and against the library.
#
# - lint: every page (not the .so links) formats with groff -man -ww -z and
#   with man --warnings (when man-db is installed) without a single warning,
#   its .TH names the page, its section and "tide VERSION", it has the
#   sections a page of its kind needs, and (under make check) man/local.mk
#   installs it.
# - synopsis: in every section 3 page, the functions of the NAME line are
#   exactly those the SYNOPSIS declares, the page's own name among them,
#   src/libtide.map exports every one of them, and each declaration reads as
#   include/tide.h's (white space aside).
# - symbols: every function src/libtide.map exports is in the NAME line (and
#   so the SYNOPSIS) of exactly one page, and `man NAME` finds that page:
#   the page is NAME.3, or NAME.3 is a .so link to it.
# - links: every .so page is one line, ".so man3/PAGE.3", naming an existing
#   page that is not itself a link and whose NAME line lists the link's
#   name; under make check, man/local.mk installs it.
# - examples: the code of every EXAMPLE section compiles against
#   include/tide.h (cc -std=gnu11 -Wall -Werror -fsyntax-only).
#
# An automake test, run from the top build folder; srcdir (which the harness
# exports) is the top source folder. man/local.mk passes TIDE_MAN_PAGES (the
# pages it installs), TIDE_MAN_VERSION (configure's) and TIDE_MAN_CC. It
# prints what it checked, one Check-style line per failure
# ("FILE:LINE:F:GROUP:ITEM: what"), and Check's summary line, which
# ./quickstart test counts. It exits 77 (skip) when groff is not installed.
set -u

me=man/check-man.sh
top_srcdir=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
mandir=$top_srcdir/man
map=$top_srcdir/src/libtide.map
incdir=$top_srcdir/include

if ! command -v groff >/dev/null 2>&1; then
	echo "SKIP: $me: groff is not installed (Debian: apt-get install groff-base)"
	exit 77
fi
for f in "$map" "$incdir/tide.h"; do
	if [ ! -f "$f" ]; then
		echo "$me: $f is missing (is srcdir=$top_srcdir the top source folder?)"
		exit 99
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tide-check-man.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT

# Formatting is slow next to everything else: run it on every CPU.
cpus=$(nproc 2>/dev/null || echo 2)
running=0
# spawn CMD...: runs CMD in the background, at most $cpus at a time.
spawn() {
	if [ $running -ge "$cpus" ]; then
		wait -n
		running=$((running - 1))
	fi
	"$@" &
	running=$((running + 1))
}
wait_all() {
	wait
	running=0
}

checks=0
failures=0
check_failed=0

# One check: begin_check, any number of fail, then end_check, which returns
# 1 if the check failed. Failures counts checks, as Check does.
begin_check() {
	checks=$((checks + 1))
	check_failed=0
}
end_check() {
	[ $check_failed -eq 0 ] && return 0
	failures=$((failures + 1))
	return 1
}

# fail FILE LINE GROUP ITEM MESSAGE: what failed, in Check's format.
fail() {
	check_failed=1
	echo "$1:$2:F:$3:$4: $5"
}

# The exported functions.
declare -A exported
mapfile -t symbols < <(grep -oE '^[[:space:]]*tide_[a-z0-9_]+;' "$map" | tr -d ' \t;' | sort -u)
for sym in "${symbols[@]}"; do
	exported[$sym]=1
done

# tide.h's declarations of them, one "name<TAB>declaration" a line, with
# the comments out and the white space normalized (see norm in
# names_and_decls).
awk '{ text = text " " $0 }
     END {
	while ((i = index(text, "/*")) > 0) {
		out = out substr(text, 1, i - 1)
		text = substr(text, i + 2)
		text = substr(text, index(text, "*/") + 2)
	}
	out = out text
	while ((i = index(out, "TIDE_EXTERN ")) > 0) {
		out = substr(out, i + 12)
		d = substr(out, 1, index(out, ";"))
		if (d ~ /^__attribute__/ || !match(d, /tide_[a-z0-9_]+\(/))
			continue
		name = substr(d, RSTART, RLENGTH - 1)
		gsub(/[ \t]+/, " ", d)
		gsub(/\( /, "(", d)
		gsub(/ \)/, ")", d)
		sub(/^ /, "", d)
		print name "\t" d
	}
     }' "$incdir/tide.h" >"$tmp/protos"
declare -A proto
while IFS=$'\t' read -r n d; do
	proto[$n]=$d
done <"$tmp/protos"

# The pages: real ones and .so links.
real=()
links=()
for f in "$mandir"/*.3 "$mandir"/*.7; do
	[ -f "$f" ] || continue
	first=
	read -r first <"$f"
	if [ "${first#.so }" != "$first" ]; then
		links+=("$f")
	else
		real+=("$f")
	fi
done
if [ ${#real[@]} -eq 0 ]; then
	echo "$me: no pages in $mandir"
	exit 99
fi

# What man/local.mk installs (under make check), by file name.
listed=no
declare -A installed
if [ -n "${TIDE_MAN_PAGES+set}" ]; then
	listed=yes
	for p in $TIDE_MAN_PAGES; do
		installed[${p##*/}]=1
	done
fi

# is_listed FILE: whether man/local.mk installs FILE (yes when unknown).
is_listed() {
	[ $listed = no ] || [ -n "${installed[${1##*/}]:-}" ]
}

# render FILE: the page as plain text, a paragraph a line (no line breaks
# in filled text, no hyphenation), so that no name is ever split.
render() {
	groff -man -Tascii -rLL=2000n -rHY=0 -P-cbu "$1" 2>/dev/null
}

# names_and_decls < rendered page: "N name" for each name of the NAME line
# ("a, b, c - what they do": groff -Tascii renders \- as -), "D name" for
# each identifier that the SYNOPSIS follows with "(", the functions it
# declares (a function pointer's name is followed by ")"), and "P name
# declaration" for each declaration of a tide_ function there, from its
# name's line to the ";", with the white space normalized.
names_and_decls() {
	awk 'function norm(d) {
		gsub(/[ \t]+/, " ", d)
		gsub(/\( /, "(", d)
		gsub(/ \)/, ")", d)
		sub(/^ /, "", d)
		sub(/ $/, "", d)
		return d
	     }
	     /^[A-Z][A-Z ]*$/ { sec = $0; next }
	     sec == "NAME" { names = names " " $0 }
	     sec == "SYNOPSIS" {
		s = $0
		while (match(s, /[A-Za-z_][A-Za-z0-9_]*\(/)) {
			print "D " substr(s, RSTART, RLENGTH - 1)
			s = substr(s, RSTART + RLENGTH)
		}
		if (decl == "" && match($0, /tide_[a-z0-9_]+\(/))
			dname = substr($0, RSTART, RLENGTH - 1)
		if (dname != "") {
			decl = decl " " $0
			if (index($0, ";")) {
				print "P " dname " " norm(decl)
				decl = dname = ""
			}
		}
	     }
	     END {
		sub(/ - .*/, "", names)
		n = split(names, a, ",")
		for (i = 1; i <= n; i++) {
			gsub(/^[ \t]+|[ \t]+$/, "", a[i])
			if (a[i] != "")
				print "N " a[i]
		}
	     }'
}

# ------------------------------------------------------------------ lint --

have_man=no
command -v man >/dev/null 2>&1 && have_man=yes

# lint_format FILE: groff's and man's warnings into $tmp/lint.NAME, and the
# rendered text into $tmp/text.NAME.
lint_format() {
	local base=${1##*/}
	{
		groff -man -ww -z -Tutf8 "$1" 2>&1 | sed 's/^/groff -man -ww: /'
		if [ $have_man = yes ]; then
			MANWIDTH=80 man --warnings -E UTF-8 -l "$1" 2>&1 >/dev/null | sed 's/^/man --warnings: /'
		fi
	} >"$tmp/lint.$base"
	render "$1" >"$tmp/text.$base"
}
for f in "${real[@]}"; do
	spawn lint_format "$f"
done
wait_all

version=${TIDE_MAN_VERSION:-}
lint_failed=0
for f in "${real[@]}"; do
	base=${f##*/}
	rel=man/$base
	name=${base%.*}
	sec=${base##*.}
	begin_check
	while IFS= read -r line; do
		# "troff: man/x.3:12: warning ...": the line number, when there is one.
		ln=0
		[[ $line =~ :([0-9]+):\ (warning|error) ]] && ln=${BASH_REMATCH[1]}
		fail "$rel" "$ln" lint "$name" "$line"
	done <"$tmp/lint.$base"
	mapfile -t src <"$f"
	th=
	thline=0
	unset has
	declare -A has=()
	for i in "${!src[@]}"; do
		case ${src[i]} in
		.TH\ *) [ -n "$th" ] || { th=${src[i]}; thline=$((i + 1)); } ;;
		.SH\ *) s=${src[i]#.SH }; s=${s#\"}; has[${s%\"}]=1 ;;
		esac
	done
	case $th in
	".TH $name $sec "*) ;;
	*) fail "$rel" "$thline" lint "$name" ".TH must begin \".TH $name $sec\", found \"$th\"" ;;
	esac
	if [ -n "$version" ] && [[ $th != *"\"tide $version\""* ]]; then
		fail "$rel" "$thline" lint "$name" ".TH must name \"tide $version\", configure's version"
	fi
	if [ "$sec" = 3 ]; then
		need=(NAME SYNOPSIS DESCRIPTION "RETURN VALUE" "SEE ALSO")
	else
		need=(NAME DESCRIPTION "SEE ALSO")
	fi
	for s in "${need[@]}"; do
		[ -n "${has[$s]:-}" ] || fail "$rel" 0 lint "$name" "no .SH $s section"
	done
	is_listed "$f" || fail "$rel" 0 lint "$name" "not installed: add it to dist_man${sec}_MANS in man/local.mk"
	end_check || lint_failed=$((lint_failed + 1))
done
lint_with="groff -man -ww -z"
[ $have_man = no ] || lint_with="$lint_with and man --warnings"
echo "$me: lint: ${#real[@]} pages, with $lint_with, their .TH${version:+ (tide $version)} and sections: $((${#real[@]} - lint_failed)) clean"

# -------------------------------------------------------------- synopsis --

# For the symbol and link checks: the pages whose NAME line lists a name,
# and each page's NAME line (as "name page" keys).
declare -A owners in_name_of
syn_failed=0
npages3=0
for f in "${real[@]}"; do
	base=${f##*/}
	[ "${base##*.}" = 3 ] || continue
	npages3=$((npages3 + 1))
	rel=man/$base
	name=${base%.3}
	begin_check
	names=()
	decls=()
	unset in_names in_decls
	declare -A in_names=() in_decls=()
	unset decl_of
	declare -A decl_of=()
	while read -r kind word rest; do
		if [ "$kind" = P ]; then
			decl_of[$word]=$rest
		elif [ "$kind" = N ]; then
			names+=("$word")
			in_names[$word]=1
			in_name_of["$word $name"]=1
		elif [ -z "${in_decls[$word]:-}" ]; then
			decls+=("$word")
			in_decls[$word]=1
		fi
	done < <(names_and_decls <"$tmp/text.$base")
	[ -n "${in_names[$name]:-}" ] ||
		fail "$rel" 0 synopsis "$name" "the NAME line does not list the page's own name, $name"
	for n in "${names[@]}"; do
		[ -n "${exported[$n]:-}" ] ||
			fail "$rel" 0 synopsis "$n" "in the NAME line, but src/libtide.map does not export $n"
		[ -n "${in_decls[$n]:-}" ] ||
			fail "$rel" 0 synopsis "$n" "in the NAME line, but the SYNOPSIS does not declare $n()"
		owners[$n]="${owners[$n]:-}${owners[$n]:+ }$name"
	done
	for n in "${decls[@]}"; do
		[ -n "${exported[$n]:-}" ] ||
			fail "$rel" 0 synopsis "$n" "the SYNOPSIS declares $n(), which src/libtide.map does not export"
		[ -z "${proto[$n]:-}" ] || [ "${decl_of[$n]:-}" = "${proto[$n]}" ] ||
			fail "$rel" 0 synopsis "$n" "the SYNOPSIS declares \"${decl_of[$n]:-?}\", tide.h \"${proto[$n]}\""
		[ -n "${in_names[$n]:-}" ] ||
			fail "$rel" 0 synopsis "$n" "the SYNOPSIS declares $n(), which the NAME line does not list"
	done
	end_check || syn_failed=$((syn_failed + 1))
done
echo "$me: synopsis: $npages3 section 3 pages, NAME line = SYNOPSIS, all exported, declared as in tide.h: $((npages3 - syn_failed)) right"

# --------------------------------------------------------------- symbols --

sym_failed=0
for sym in "${symbols[@]}"; do
	begin_check
	pages=${owners[$sym]:-}
	l=$mandir/$sym.3
	line=
	[ -f "$l" ] && read -r line <"$l"
	if [ -z "$pages" ]; then
		fail src/libtide.map 0 symbols "$sym" "exported, but in no page's NAME line and SYNOPSIS"
	elif [ "$pages" != "${pages% *}" ]; then
		fail src/libtide.map 0 symbols "$sym" "in the NAME line of several pages: $pages"
	elif [ "$sym" = "$pages" ]; then
		: # the page's own name: man finds it
	elif [ ! -f "$l" ]; then
		fail "man/$sym.3" 0 symbols "$sym" "missing: \`man $sym\` finds nothing (the link \".so man3/$pages.3\")"
	elif [ "$line" != ".so man3/$pages.3" ]; then
		fail "man/$sym.3" 1 symbols "$sym" "should be the link \".so man3/$pages.3\", to the page whose NAME line lists $sym"
	fi
	end_check || sym_failed=$((sym_failed + 1))
done
echo "$me: symbols: ${#symbols[@]} functions that src/libtide.map exports, each in one page's NAME and SYNOPSIS and found by man NAME: $((${#symbols[@]} - sym_failed)) right"

# ----------------------------------------------------------------- links --

link_failed=0
for f in "${links[@]}"; do
	base=${f##*/}
	rel=man/$base
	name=${base%.*}
	begin_check
	mapfile -t body <"$f"
	target=
	if [ ${#body[@]} -eq 1 ] && [[ ${body[0]} =~ ^\.so\ (man[1-9]/[^[:space:]/]+)$ ]]; then
		target=${BASH_REMATCH[1]}
	fi
	t=$mandir/${target#*/}
	tname=${target#*/}
	tname=${tname%.*}
	first=
	[ -f "$t" ] && read -r first <"$t"
	if [ -z "$target" ]; then
		fail "$rel" 1 links "$name" "a link page is one line, \".so manN/PAGE.N\""
	elif [ ! -f "$t" ]; then
		fail "$rel" 1 links "$name" "points to $target, which does not exist"
	elif [ "${first#.so }" != "$first" ]; then
		fail "$rel" 1 links "$name" "points to $target, itself a link (man follows one level)"
	elif [ -z "${in_name_of["$name $tname"]:-}" ]; then
		fail "$rel" 1 links "$name" "points to $target, whose NAME line does not list $name"
	fi
	is_listed "$f" || fail "$rel" 0 links "$name" "not installed: add it to dist_man3_MANS in man/local.mk"
	end_check || link_failed=$((link_failed + 1))
done
echo "$me: links: ${#links[@]} .so pages, each to a page whose NAME line lists it: $((${#links[@]} - link_failed)) right"
if [ $listed = no ]; then
	echo "$me: TIDE_MAN_PAGES is not set: whether man/local.mk installs each page was not checked"
fi

# -------------------------------------------------------------- examples --

cc=${TIDE_MAN_CC:-}
if [ -z "$cc" ]; then
	cc=$(command -v cc || command -v gcc || true)
fi
# compile_example FILE: the .EX blocks of the page's EXAMPLE section,
# formatted as text, into $tmp/NAME.c, and the compiler's verdict into
# $tmp/NAME.cc (no such file: the page has no example).
compile_example() {
	local base=${1##*/} rc=0
	local name=${base%.*}

	awk '/^\.SH / { on = ($0 == ".SH EXAMPLE"); next }
	     on && /^\.EX/ { ex = 1; next }
	     on && /^\.EE/ { ex = 0; next }
	     on && ex' "$1" >"$tmp/$name.roff"
	[ -s "$tmp/$name.roff" ] || return 0
	{
		echo '.nf'
		cat "$tmp/$name.roff"
	} | groff -Tascii -P-cbu 2>&1 | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$tmp/$name.c"
	# $cc may carry arguments ("gcc -m32"): split it.
	# shellcheck disable=SC2086
	$cc -std=gnu11 -Wall -Werror -fsyntax-only -I"$incdir" "$tmp/$name.c" >"$tmp/$name.out" 2>&1 || rc=$?
	echo $rc >"$tmp/$name.cc"
}
if [ -z "$cc" ]; then
	echo "$me: examples: no C compiler (TIDE_MAN_CC, cc): the EXAMPLE sections were not compiled"
else
	for f in "${real[@]}"; do
		spawn compile_example "$f"
	done
	wait_all
	nex=0
	ex_failed=0
	for f in "${real[@]}"; do
		base=${f##*/}
		name=${base%.*}
		[ -f "$tmp/$name.cc" ] || continue
		nex=$((nex + 1))
		begin_check
		read -r rc <"$tmp/$name.cc"
		if [ "$rc" != 0 ]; then
			fail "man/$base" 0 examples "$name" "the EXAMPLE does not compile (exit $rc):"
			sed "s|$tmp/$name.c|EXAMPLE|; s/^/    /" "$tmp/$name.out" | head -n 20
		fi
		end_check || ex_failed=$((ex_failed + 1))
	done
	echo "$me: examples: $nex EXAMPLE sections, with $cc -std=gnu11 -Wall -Werror -fsyntax-only: $((nex - ex_failed)) compile"
fi

pct=100
[ $checks -eq 0 ] || pct=$(((checks - failures) * 100 / checks))
echo "$pct%: Checks: $checks, Failures: $failures, Errors: 0"
[ $failures -eq 0 ]
