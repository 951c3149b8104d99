#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# packaging/build-deb.sh: build tide's Debian packages (libtide1 and
# libtide-dev) from the release tarball of a clean export of this tree,
# then check them with lintian. A trial of what a distribution does with a
# release; CI does not run it.
#
#   packaging/build-deb.sh [--out DIR] [--keep]
#
#   --out DIR  where the .debs, .changes, .buildinfo, the source package
#              and the logs go (default: build-deb/ in the top folder)
#   --keep     keep the temporary folder (its path is printed)
#
# Steps:
#  1. install what is missing (build-essential, dpkg-dev, debhelper,
#     devscripts, lintian, then the Build-Depends of packaging/debian/control
#     with apt-get build-dep), as root or through sudo;
#  2. export the tree into a temporary folder with `git archive HEAD` in a
#     git checkout (what is not committed is not packaged: a warning says
#     so); an unpacked release tarball is taken as it is;
#  3. make the release tarball from it (autoreconf when it has no
#     configure, configure in a folder of its own, make dist), the
#     tide_VERSION.orig.tar.gz, and unpack it;
#  4. copy packaging/debian to debian/, make the source package
#     (dpkg-source -b) and build the binary ones (dpkg-buildpackage -us -uc
#     -b), which runs `make check` unless DEB_BUILD_OPTIONS has nocheck;
#  5. lintian on the .changes and on the .dsc: any error or warning fails.
#
# DEB_BUILD_OPTIONS (nocheck, parallel=N) reaches dpkg-buildpackage;
# LINTIAN_ARGS adds lintian options (for example -I for the info tags).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf 'build-deb: %s\n' "$*"; }
die() { printf 'build-deb: error: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '4,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

out=$top/build-deb
keep=no
while [ $# -gt 0 ]; do
	case $1 in
	--out) [ $# -ge 2 ] || die "--out needs a folder"; out=$2; shift ;;
	--out=*) out=${1#--out=} ;;
	--keep) keep=yes ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
case $out in /*) ;; *) out=$PWD/$out ;; esac

t0=$SECONDS
command -v dpkg-query >/dev/null 2>&1 || die "not a Debian system (no dpkg-query)"

# ------------------------------------------------------------ 1. packages --

sudo=()
can_install=yes
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else can_install=no; fi
fi
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
updated=no
apt_update() {
	[ $updated = yes ] && return 0
	"${apt[@]}" update -q || die "apt-get update failed"
	updated=yes
}

missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' ||
			printf '%s\n' "$p"
	done
}

tools=(build-essential dpkg-dev debhelper devscripts lintian)
mapfile -t need < <(missing_packages "${tools[@]}")
if [ ${#need[@]} -gt 0 ]; then
	[ $can_install = yes ] || die "missing ${need[*]}, and not root, without sudo: install them, then run again"
	say "installing: ${need[*]}"
	apt_update
	"${apt[@]}" install -y -q --no-install-recommends "${need[@]}" ||
		die "apt-get install failed for: ${need[*]}"
fi

debian_src=$top/packaging/debian
[ -f "$debian_src/changelog" ] || die "no packaging/debian/changelog in $top"
version=$(dpkg-parsechangelog -l "$debian_src/changelog" -SVersion)
upstream=${version%-*}
upstream=${upstream#*:}
ac_version=$(sed -n 's/^AC_INIT(\[tide\], \[\([^]]*\)\].*/\1/p' "$top/configure.ac")
[ "$ac_version" = "$upstream" ] ||
	die "configure.ac says $ac_version but packaging/debian/changelog says $upstream: add a changelog entry (dch -v $ac_version-1)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tide-deb.XXXXXX")
if [ $keep = yes ]; then
	trap 'say "kept $tmp"' EXIT
else
	trap 'rm -rf "$tmp"' EXIT
fi

# Build-Depends, from packaging/debian/control (apt-get build-dep reads a
# folder's debian/control; DEB_BUILD_PROFILES such as nocheck apply).
mkdir -p "$tmp/deps/debian"
cp "$debian_src/control" "$tmp/deps/debian/control"
if ! (cd "$tmp/deps" && dpkg-checkbuilddeps >/dev/null 2>&1); then
	[ $can_install = yes ] || die "unmet Build-Depends (dpkg-checkbuilddeps), and not root, without sudo"
	say "installing the Build-Depends: apt-get build-dep"
	apt_update
	"${apt[@]}" build-dep -y -q --no-install-recommends "$tmp/deps" ||
		die "apt-get build-dep failed"
fi
(cd "$tmp/deps" && dpkg-checkbuilddeps) || die "Build-Depends still unmet"

# -------------------------------------------------------------- 2. export --

if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	export_dir=$tmp/export
	mkdir -p "$export_dir"
	head=$(git -C "$top" rev-parse --short HEAD)
	if [ -n "$(git -C "$top" status --porcelain --untracked-files=no)" ]; then
		say "warning: uncommitted changes in $top are not packaged (building $head)"
	fi
	say "exporting git HEAD ($head)"
	git -C "$top" archive --format=tar HEAD | tar -x -C "$export_dir"
else
	# An unpacked release tarball: make dist below, configured in a folder
	# of its own, takes exactly its distributed files.
	export_dir=$top
	[ -x "$top/configure" ] || die "$top is neither a git checkout nor an unpacked release tarball (no configure)"
	[ ! -e "$top/config.status" ] ||
		die "$top was configured in place: run 'make distclean' there first"
	say "not a git checkout: taking $top as an unpacked release tarball"
fi

# ------------------------------------------------------- 3. release tarball --

say "making the release tarball (make dist)"
(
	if [ ! -x "$export_dir/configure" ]; then
		cd "$export_dir" && autoreconf -fi || exit 1
	fi
	mkdir -p "$tmp/dist" && cd "$tmp/dist" && "$export_dir/configure" && make dist
) >"$tmp/dist.log" 2>&1 ||
	{ tail -n 30 "$tmp/dist.log" >&2; die "the release tarball failed (the end of its log is above)"; }
tarball=$tmp/dist/tide-$upstream.tar.gz
[ -f "$tarball" ] || die "make dist made no $(basename "$tarball")"
cp "$tarball" "$tmp/tide_$upstream.orig.tar.gz"
src=$tmp/tide-$upstream
tar -xzf "$tarball" -C "$tmp"
[ -d "$src/packaging/debian" ] || die "the release tarball has no packaging/debian (EXTRA_DIST)"

# ---------------------------------------------------------------- 4. build --

# The packaging is kept out of the top folder (packaging/debian): copied in
# here, where dpkg-source and dpkg-buildpackage look for it.
cp -a "$src/packaging/debian" "$src/debian"

say "dpkg-source -b tide-$upstream"
(cd "$tmp" && dpkg-source -b "tide-$upstream") >"$tmp/source.log" 2>&1 ||
	{ cat "$tmp/source.log" >&2; die "dpkg-source -b failed"; }
dsc=$tmp/tide_${version#*:}.dsc
[ -f "$dsc" ] || die "no $(basename "$dsc")"

# Tests run in parallel too, unless DEB_BUILD_OPTIONS already says parallel=.
jobs=()
case " ${DEB_BUILD_OPTIONS:-} " in
*" parallel="*) ;;
*) jobs=(-Jauto) ;;
esac
say "dpkg-buildpackage -us -uc -b ${jobs[*]} (DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-})"
tb=$SECONDS
(cd "$src" && dpkg-buildpackage -us -uc -b "${jobs[@]}") >"$tmp/build.log" 2>&1 || {
	tail -n 60 "$tmp/build.log" >&2
	mkdir -p "$out" && cp "$tmp/build.log" "$out/"
	die "dpkg-buildpackage failed: the end of its log is above, all of it in $out/build.log"
}
say "dpkg-buildpackage done in $((SECONDS - tb)) s (log: build.log)"
# make check's verdict per program and its summary (none with nocheck).
grep -E '^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR): |^# (TOTAL|PASS|SKIP|FAIL|ERROR): ' "$tmp/build.log" |
	sed 's/^/  /' || say "no test ran (DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-})"

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
changes=$tmp/tide_${version#*:}_$arch.changes
[ -f "$changes" ] || die "no $(basename "$changes")"

# -------------------------------------------------------------- 5. lintian --

read -ra lintian_args <<<"${LINTIAN_ARGS:-}"
say "lintian --fail-on error,warning ${lintian_args[*]} $(basename "$changes") $(basename "$dsc")"
lintian_rc=0
# (lintian says on stderr that it runs as root; only its tags are kept.)
lintian --fail-on error,warning "${lintian_args[@]}" "$changes" "$dsc" \
	>"$tmp/lintian.log" 2>"$tmp/lintian.err" || lintian_rc=$?
if [ -s "$tmp/lintian.log" ]; then
	sed 's/^/  /' "$tmp/lintian.log"
else
	say "lintian: no tags"
fi
grep -v 'running with root privileges' "$tmp/lintian.err" >&2 || true

# -------------------------------------------------------------- results --

mkdir -p "$out"
files_of() { # the files a .changes or .dsc lists
	sed -n '/^Files:/,/^[^ ]/s/^ [0-9a-f]\{32\} [0-9]*\( [^ ]* [^ ]*\)\{0,1\} //p' "$1"
}
mapfile -t files < <(files_of "$changes"; files_of "$dsc")
for f in "${files[@]}"; do
	cp "$tmp/$f" "$out/"
done
cp "$changes" "$dsc" "$tmp/dist.log" "$tmp/build.log" "$tmp/lintian.log" "$out/"
say "packages in $out:"
for f in "${files[@]}"; do
	case $f in *.deb) printf '  %s\n' "$out/$f" ;; esac
done
say "done in $((SECONDS - t0)) s"
[ $lintian_rc -eq 0 ] || die "lintian reported errors or warnings (exit $lintian_rc)"
