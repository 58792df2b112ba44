#!/bin/sh
# build-debs.sh -- build the Debian packages libckpt1, libckpt-dev and
# ckpt-tools with `cpack -G DEB`, from the source tree, and check them with
# lintian when it is installed (scripts/deps.sh installs it).
#
# usage: scripts/build-debs.sh [BUILD_DIR [OUT_DIR]]
#   BUILD_DIR  its own build tree, configured for /usr with Debian's build
#              flags (dpkg-buildflags); default build-deb
#   OUT_DIR    where the .deb files go; default BUILD_DIR/packages
# Only the library, ckpt-inspect and the man pages are built (no tests,
# benchmarks or samples). Exit status 1 if a step fails or lintian reports
# an error; lintian's warnings are printed and do not fail.
# CKPT_LINTIAN=0 skips lintian.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build-deb}
out=${2:-$build/packages}
fail() { echo "build-debs: $*" >&2; exit 1; }
for tool in cmake cpack dpkg-deb dpkg-shlibdeps dpkg-buildflags; do
	command -v "$tool" >/dev/null 2>&1 ||
		fail "$tool not found (Debian packages: cmake, dpkg-dev; see scripts/deps.sh)"
done

# Debian's hardening and optimisation flags, as a package build uses them,
# with every hardening feature (bindnow too)
export DEB_BUILD_MAINT_OPTIONS="${DEB_BUILD_MAINT_OPTIONS:-hardening=+all}"
cflags="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=None \
	-DCKPT_BUILD_TESTS=OFF -DCKPT_BUILD_BENCH=OFF \
	-DCMAKE_C_FLAGS="$cflags" -DCMAKE_SHARED_LINKER_FLAGS="$ldflags" \
	-DCMAKE_EXE_LINKER_FLAGS="$ldflags" >"$build.configure.log" 2>&1 ||
	{ cat "$build.configure.log"; fail "configuring $build"; }
rm -f "$build.configure.log" 2>/dev/null || true
cmake --build "$build" -j"$(nproc)" --target ckpt ckpt_static ckpt-inspect ckpt_man \
	ckpt_deb_changelog >/dev/null || fail "building in $build"
mkdir -p "$out"
rm -f "$out"/*.deb
(cd "$build" && cpack -G DEB -B "$out" >cpack.log 2>&1) ||
	{ cat "$build/cpack.log"; fail "cpack -G DEB"; }
rm -rf "$out/_CPack_Packages"
ls "$out"/*.deb

if [ "${CKPT_LINTIAN:-1}" = 0 ]; then
	exit 0
fi
if ! command -v lintian >/dev/null 2>&1; then
	echo "build-debs: lintian not installed, packages not checked" >&2
	exit 0
fi
# lintian exits non-zero on errors (E:) only, with --fail-on error
lintian --fail-on error --tag-display-limit 0 "$out"/*.deb ||
	fail "lintian reports errors"
