#!/bin/sh
# test_packages.sh SOURCE_DIR WORK_DIR
#
# The Debian packages (issue 16): builds libckpt1, libckpt-dev and
# ckpt-tools with scripts/build-debs.sh (cpack -G DEB, its own build tree in
# WORK_DIR, kept between runs so a rerun rebuilds only what changed), then:
#   1. names, sections, Depends (libckpt-dev on libckpt1 of the same
#      version), the shlibs file and ldconfig trigger of libckpt1, what each
#      package holds, and that together they hold every file
#      `cmake --install` installs (nothing forgotten by a new install rule);
#   2. lintian, when installed: no error (warnings are printed);
#   3. installs them with dpkg into a scratch root (--root, a dpkg database
#      holding only the packages they depend on, copied from this system's:
#      dpkg checks the dependencies; maintainer scripts run outside a chroot
#      with a stand-in ldconfig, so nothing of the real system changes);
#   4. builds tests/install/app.c against the scratch root's header and
#      library, as a user would: pkg-config (PKG_CONFIG_SYSROOT_DIR and
#      PKG_CONFIG_LIBDIR into the root), shared and static, and CMake
#      find_package with CMAKE_PREFIX_PATH; runs each, the shared ones
#      loading libckpt.so.1 from the root; runs the root's ckpt-inspect on
#      the pool they made; renders every man page of the root with man -l.
# Exit 77 (ctest SKIP_RETURN_CODE) when cpack or dpkg-deb is missing.
set -eu

src=${1:?usage: test_packages.sh SOURCE_DIR WORK_DIR}
work=${2:?usage: test_packages.sh SOURCE_DIR WORK_DIR}
cc=${CC:-cc}
fail() { echo "FAIL: $*"; exit 1; }
for tool in cpack dpkg-deb; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool not found: cannot build Debian packages here"
		exit 77
	fi
done

pb=$work/build                    # the packaging build tree (kept)
debs=$work/debs
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-packages-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
root=$tmp/root
mkdir -p "$work"

# -- build ------------------------------------------------------------------------
CKPT_LINTIAN=0 sh "$src/scripts/build-debs.sh" "$pb" "$debs" >"$tmp/build.log" 2>&1 ||
	{ cat "$tmp/build.log"; fail "scripts/build-debs.sh"; }
version=$(sed -n 's/^libckpt (\([^)]*\)).*/\1/p;q' "$src/packaging/debian/changelog")
project=$(sed -n 's/^project(libckpt VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
case $version in
"$project"-*) ;;
*) fail "packaging/debian/changelog's latest entry is $version; the project is $project (add an entry)" ;;
esac
arch=$(dpkg --print-architecture)
deb() { echo "$debs/${1}_${version}_$arch.deb"; }
for p in libckpt1 libckpt-dev ckpt-tools; do
	[ -f "$(deb $p)" ] || fail "no $(basename "$(deb $p)") in $debs: $(ls "$debs")"
done
[ "$(ls "$debs"/*.deb | wc -l)" = 3 ] || fail "expected 3 packages, got: $(ls "$debs")"

# -- 1. control fields and contents -------------------------------------------------
field() { dpkg-deb -f "$(deb "$1")" "$2"; }
[ "$(field libckpt1 Section)" = libs ] || fail "libckpt1: section $(field libckpt1 Section)"
[ "$(field libckpt-dev Section)" = libdevel ] || fail "libckpt-dev: section"
[ "$(field ckpt-tools Section)" = utils ] || fail "ckpt-tools: section"
field libckpt-dev Depends | grep -q "libckpt1 (= $version)" ||
	fail "libckpt-dev does not depend on libckpt1 (= $version): $(field libckpt-dev Depends)"
for p in libckpt1 ckpt-tools; do
	field $p Depends | grep -q "libpmem1" || fail "$p: no libpmem1 in Depends: $(field $p Depends)"
done
dpkg-deb -e "$(deb libckpt1)" "$tmp/ctl"
grep -qx "libckpt 1 libckpt1 (>= $version)" "$tmp/ctl/shlibs" ||
	fail "libckpt1 shlibs: $(cat "$tmp/ctl/shlibs")"
grep -qx "activate-noawait ldconfig" "$tmp/ctl/triggers" || fail "libckpt1: no ldconfig trigger"

# contents: paths of regular files and links, without the leading "."
contents() { dpkg-deb --fsys-tarfile "$(deb "$1")" | tar -t | sed -n 's|^\./|/|; /[^/]$/p' | sort; }
libdir=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
contents libckpt1 >"$tmp/libckpt1.list"
contents libckpt-dev >"$tmp/libckpt-dev.list"
contents ckpt-tools >"$tmp/ckpt-tools.list"
expect_in() {   # PACKAGE PATH-REGEX
	grep -qx "$2" "$tmp/$1.list" || { cat "$tmp/$1.list"; fail "$1 holds no $2"; }
}
expect_in libckpt1 "$libdir/libckpt\.so\.1"
expect_in libckpt1 "$libdir/libckpt\.so\.$project"
[ "$(grep -vc '^/usr/share/doc/' "$tmp/libckpt1.list")" = 2 ] ||
	{ cat "$tmp/libckpt1.list"; fail "libckpt1 holds more than the library"; }
for f in /usr/include/libckpt\\.h "$libdir/libckpt\\.so" "$libdir/libckpt\\.a" \
	"$libdir/pkgconfig/libckpt\\.pc" "$libdir/cmake/libckpt/libckptConfig\\.cmake" \
	/usr/share/man/man3/libckpt\\.3\\.gz; do
	expect_in libckpt-dev "$f"
done
expect_in ckpt-tools /usr/bin/ckpt-inspect
expect_in ckpt-tools /usr/share/man/man1/ckpt-inspect\\.1\\.gz
expect_in ckpt-tools /usr/bin/ckpt-run
expect_in ckpt-tools /usr/share/man/man1/ckpt-run\\.1\\.gz
expect_in ckpt-tools "$libdir/libckpt/libckpt-preload\\.so"
for p in libckpt1 libckpt-dev ckpt-tools; do
	expect_in $p "/usr/share/doc/$p/copyright"
	expect_in $p "/usr/share/doc/$p/changelog\\.Debian\\.gz"
done
# every function of the header has a man page in libckpt-dev
for f in $(sed -n 's/^[^#/ ].*[ *]\(ckpt_[a-z_0-9]*\)(.*/\1/p' "$src/include/libckpt.h"); do
	expect_in libckpt-dev "/usr/share/man/man3/$f\\.3\\.gz"
done
# the packages hold exactly what `cmake --install` installs (plus their docs)
cmake --install "$pb" --prefix "$tmp/plain" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "cmake --install of the packaging build"; }
(cd "$tmp/plain" && find . ! -type d | sed 's|^\./|/usr/|' | sort) >"$tmp/plain.list"
sort "$tmp/libckpt1.list" "$tmp/libckpt-dev.list" "$tmp/ckpt-tools.list" |
	grep -v '^/usr/share/doc/' >"$tmp/packaged.list"
if ! cmp -s "$tmp/plain.list" "$tmp/packaged.list"; then
	diff "$tmp/plain.list" "$tmp/packaged.list" || true
	fail "the packages and cmake --install differ (<: only installed, >: only packaged);" \
		"give every install() rule a COMPONENT (runtime, dev or tools)"
fi
if [ "$(sort "$tmp/packaged.list" | uniq -d)" ]; then
	fail "files in two packages: $(sort "$tmp/packaged.list" | uniq -d)"
fi
echo "contents: $(wc -l <"$tmp/packaged.list") files in 3 packages, as cmake --install"

# -- 2. lintian ----------------------------------------------------------------------
# Linting takes seconds; packages whose control data and contents (file
# checksums, modes, links) are those of the last lint-clean run are not
# linted again.
signature() {
	for p in libckpt1 libckpt-dev ckpt-tools; do
		dpkg-deb -I "$(deb $p)" | grep -v '^ new Debian package\|^ size '
		dpkg-deb -e "$(deb $p)" "$tmp/sig-$p" && cat "$tmp/sig-$p"/*
		dpkg-deb -c "$(deb $p)" | awk '{ $2 = ""; $4 = ""; $5 = ""; print }'
	done | md5sum | cut -d' ' -f1
}
if command -v lintian >/dev/null 2>&1; then
	sig=$(signature)
	if [ -f "$work/lintian.ok" ] && [ "$(cat "$work/lintian.ok")" = "$sig" ]; then
		echo "lintian: packages unchanged since the last lint-clean run"
	else
		rm -f "$work/lintian.ok"
		lintian --fail-on error --tag-display-limit 0 "$debs"/*.deb >"$tmp/lintian.log" 2>&1 ||
			{ cat "$tmp/lintian.log"; fail "lintian reports errors"; }
		grep '^[EW]:' "$tmp/lintian.log" || true
		echo "$sig" >"$work/lintian.ok"
		echo "lintian: no errors"
	fi
else
	echo "lintian not installed (scripts/deps.sh installs it): packages not linted"
fi

# -- 3. install into a scratch root ----------------------------------------------------
# A dpkg database holding the packages ours depend on, as this system has them.
admin=$root/var/lib/dpkg
mkdir -p "$admin/info" "$admin/updates" "$admin/triggers" "$tmp/shim"
: >"$admin/status"
: >"$admin/available"
ours=" libckpt1 libckpt-dev ckpt-tools "
deps=$(for p in libckpt1 libckpt-dev ckpt-tools; do field $p Depends; done |
	tr ',' '\n' | sed 's/([^)]*)//; s/|.*//; s/[[:space:]]//g' | sort -u)
for d in $deps; do
	case $ours in *" $d "*) continue ;; esac
	dpkg-query -s "$d" >>"$admin/status" 2>/dev/null ||
		fail "dependency $d is not installed on this system (scripts/deps.sh installs it)"
	echo >>"$admin/status"
	: >"$admin/info/$(dpkg-query -W -f='${binary:Package}' "$d").list"
done
# libckpt1's postinst calls ldconfig: a stand-in, never the system's
printf '#!/bin/sh\necho "ldconfig $*" >>"%s/ldconfig.calls"\n' "$tmp" >"$tmp/shim/ldconfig"
chmod +x "$tmp/shim/ldconfig"
PATH=$tmp/shim:$PATH dpkg --root="$root" --force-not-root --force-script-chrootless \
	--log=/dev/null -i "$(deb libckpt1)" "$(deb libckpt-dev)" "$(deb ckpt-tools)" \
	>"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i into $root"; }
for p in libckpt1 libckpt-dev ckpt-tools; do
	st=$(dpkg-query --admindir="$admin" -W -f='${Status}' $p)
	[ "$st" = "install ok installed" ] || fail "$p: $st after dpkg -i"
done
echo "dpkg: installed into a scratch root, dependencies met by this system"

# -- 4. build and run a program against the root ----------------------------------------
rlib=$root$libdir
export PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_LIBDIR="$rlib/pkgconfig"
cflags=$(pkg-config --cflags libckpt) || fail "pkg-config does not find libckpt in $rlib/pkgconfig"
libs=$(pkg-config --libs libckpt)
slibs=$(pkg-config --static --libs libckpt | sed 's/-lckpt\( \|$\)/-l:libckpt.a\1/')
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
echo "pkg-config: $cflags $libs"
case " $cflags " in *" -I$root/usr/include "*) ;; *) fail "cflags do not point into the root: $cflags" ;; esac
case " $libs " in *" -L$rlib "*) ;; *) fail "libs do not point into the root: $libs" ;; esac
# shellcheck disable=SC2086
$cc $cflags -o "$tmp/app" "$src/tests/install/app.c" $libs || fail "building app with pkg-config"
# shellcheck disable=SC2086
$cc $cflags -o "$tmp/app_static" "$src/tests/install/app.c" $slibs ||
	fail "building app statically with pkg-config --static"
cmake -S "$src/tests/install" -B "$tmp/cmake-app" -DCMAKE_PREFIX_PATH="$root/usr" \
	-DCMAKE_C_COMPILER="$cc" >"$tmp/cmake.log" 2>&1 ||
	{ cat "$tmp/cmake.log"; fail "configuring the find_package app against $root/usr"; }
grep -q "^libckpt_DIR:PATH=$rlib/cmake/libckpt$" "$tmp/cmake-app/CMakeCache.txt" ||
	fail "find_package found libckpt elsewhere: $(grep libckpt_DIR "$tmp/cmake-app/CMakeCache.txt")"
cmake --build "$tmp/cmake-app" >"$tmp/cmake-build.log" 2>&1 ||
	{ cat "$tmp/cmake-build.log"; fail "building the find_package app"; }

run_app() {     # NAME BINARY SHARED(1/0)
	lib=$(LD_LIBRARY_PATH=$rlib ldd "$2" | awk '/libckpt\.so/ { print $3 }')
	if [ "$3" = 1 ]; then
		case $(readlink -f "$lib") in
		"$rlib"/*) ;;
		*) fail "$1: loads '$lib', not the root's libckpt.so.1" ;;
		esac
	else
		[ -z "$lib" ] || fail "$1: linked statically but needs $lib"
	fi
	rm -f "$tmp/$1.pool"
	out=$(LD_LIBRARY_PATH=$rlib "$2" "$tmp/$1.pool") || fail "$1: exit $? ($out)"
	case $out in
	"ok "[1-9]*) echo "$1: $out" ;;
	*) fail "$1: printed '$out'" ;;
	esac
}
run_app app_pc "$tmp/app" 1
run_app app_pc_static "$tmp/app_static" 0
run_app app_cmake "$tmp/cmake-app/app" 1
run_app app_cmake_static "$tmp/cmake-app/app_static" 0

"$root/usr/bin/ckpt-inspect" verify "$tmp/app_pc.pool" >"$tmp/verify.log" 2>&1 ||
	{ cat "$tmp/verify.log"; fail "the root's ckpt-inspect verify"; }
"$root/usr/bin/ckpt-inspect" list "$tmp/app_pc.pool" | grep -q install ||
	fail "the root's ckpt-inspect list does not show the checkpoint"
echo "ckpt-inspect: verify and list of the app's pool"

# man pages: every link names a page of the root; every page renders
n=0
for page in "$root"/usr/share/man/man1/*.gz "$root"/usr/share/man/man3/*.gz; do
	so=$(zcat "$page" | sed -n 's/^\.so //p')
	if [ -n "$so" ]; then
		[ -f "$root/usr/share/man/$so.gz" ] || fail "$(basename "$page"): .so $so: no such page"
		continue
	fi
	out=$(cd "$root/usr/share/man" && MANWIDTH=80 man -l -P cat "$page" 2>&1) ||
		fail "man -l $(basename "$page"): $out"
	echo "$out" | grep -q "^NAME" || fail "man -l $(basename "$page") shows no NAME: $out"
	n=$((n + 1))
done
echo "man: $n pages render, every link resolves"
echo "PASS: packages built, linted, installed into a scratch root and used"
