#!/bin/sh
# test_install.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]
#
# Installs the build into a fresh prefix with `cmake --install` and builds
# tests/install/app.c against the INSTALLED library, as a user would
# (issue 2, item 1):
#   1. pkg-config (PKG_CONFIG_PATH=PREFIX/.../pkgconfig), shared;
#   2. pkg-config --static, linked against libckpt.a;
#   3. CMake find_package(libckpt) + libckpt::ckpt and libckpt::ckpt_static.
# Each program creates a pool, allocates, checkpoints and restarts; the
# shared ones must load libckpt.so from the prefix, the static ones must not
# need it at all. EXTRA_CFLAGS (e.g. the sanitizer flags of the build) are
# passed to every compile and link.
set -eu

build=${1:?usage: test_install.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]}
src=${2:?usage: test_install.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]}
extra=${3:-}
cc=${CC:-cc}

work=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-install-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix
fail() { echo "FAIL: $*"; exit 1; }

# -- install -------------------------------------------------------------------
cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log"; fail "cmake --install"; }

pc=$(find "$prefix" -name libckpt.pc)
[ -n "$pc" ] || fail "no libckpt.pc installed"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
[ -f "$prefix/include/libckpt.h" ] || fail "no include/libckpt.h installed"
[ -f "$libdir/libckpt.a" ] || fail "no libckpt.a in $libdir"
ls "$libdir"/libckpt.so.*.*.* >/dev/null 2>&1 || fail "no versioned libckpt.so in $libdir"
[ -L "$libdir/libckpt.so" ] || fail "no libckpt.so link in $libdir"
[ -f "$libdir/cmake/libckpt/libckptConfig.cmake" ] || fail "no CMake package in $libdir/cmake/libckpt"
[ -x "$prefix/bin/ckpt-inspect" ] || fail "no bin/ckpt-inspect installed"
# nothing of the build or source tree may leak into what is installed
if grep -rl -e "$build" -e "$src/libckpt" "$pc" "$libdir/cmake/libckpt" 2>/dev/null; then
	fail "installed package files refer to the build or source tree"
fi

# installed_lib BINARY -- the libckpt.so the loader picks for BINARY
installed_lib() {
	LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ldd "$1" |
		awk '/libckpt\.so/ { print $3 }'
}

# run_app NAME BINARY SHARED(1/0)
run_app() {
	name=$1 bin=$2 shared=$3
	[ -x "$bin" ] || fail "$name: not built"
	lib=$(installed_lib "$bin")
	if [ "$shared" = 1 ]; then
		[ -n "$lib" ] || fail "$name: does not link libckpt.so"
		case $(readlink -f "$lib") in
		"$(readlink -f "$libdir")"/*) ;;
		*) fail "$name: loads $lib, not the installed library in $libdir" ;;
		esac
	else
		[ -z "$lib" ] || fail "$name: linked statically but needs $lib"
	fi
	rm -f "$work/$name.pool"
	out=$(LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$bin" "$work/$name.pool") ||
		fail "$name: exit $? ($out)"
	case $out in
	"ok "[1-9]*) echo "$name: $out" ;;
	*) fail "$name: printed '$out'" ;;
	esac
}

# -- 1. pkg-config, shared ------------------------------------------------------
export PKG_CONFIG_PATH="$pcdir"
pkg-config --exists libckpt || fail "pkg-config does not find libckpt in $pcdir"
[ "$(pkg-config --modversion libckpt)" != "" ] || fail "pkg-config: no version"
cflags=$(pkg-config --cflags libckpt)
libs=$(pkg-config --libs libckpt)
echo "pkg-config: $cflags $libs"
# shellcheck disable=SC2086
$cc $extra $cflags -o "$work/app_pc" "$src/tests/install/app.c" $libs ||
	fail "building app with pkg-config"
run_app app_pc "$work/app_pc" 1

# -- 2. pkg-config --static, against libckpt.a -----------------------------------
slibs=$(pkg-config --static --libs libckpt)
echo "pkg-config --static: $slibs"
# both libraries are installed side by side: ask for the archive explicitly
slibs=$(echo "$slibs" | sed 's/-lckpt\( \|$\)/-l:libckpt.a\1/')
# shellcheck disable=SC2086
$cc $extra $cflags -o "$work/app_pc_static" "$src/tests/install/app.c" $slibs ||
	fail "building app statically with pkg-config --static"
run_app app_pc_static "$work/app_pc_static" 0

# -- 3. CMake find_package ------------------------------------------------------
unset PKG_CONFIG_PATH
cmake -S "$src/tests/install" -B "$work/cmake-app" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$extra" \
	-DCMAKE_EXE_LINKER_FLAGS="$extra" >"$work/cmake.log" 2>&1 ||
	{ cat "$work/cmake.log"; fail "configuring the find_package app"; }
grep -q "libckpt" "$work/cmake-app/CMakeCache.txt" || fail "find_package did not record libckpt"
grep -q "libckpt_DIR:PATH=$libdir/cmake/libckpt" "$work/cmake-app/CMakeCache.txt" ||
	fail "find_package found libckpt elsewhere: $(grep libckpt_DIR "$work/cmake-app/CMakeCache.txt")"
cmake --build "$work/cmake-app" >"$work/build.log" 2>&1 ||
	{ cat "$work/build.log"; fail "building the find_package app"; }
run_app app_cmake "$work/cmake-app/app" 1
run_app app_cmake_static "$work/cmake-app/app_static" 0

echo "ok: installed to $prefix and used three ways"
