#!/bin/sh
# deps.sh -- install what building and testing libckpt needs on Debian 12
# (run as root). Each package and why is listed in the README.
# clang with libclang-rt-14-dev (only recommended by clang, and recommends are
# not installed here) is the libFuzzer runtime of the fuzz smoke;
# bsdextrautils is hexdump, which test_inspect_cli compares dump against.
# Packaging and documentation: dpkg-dev (in build-essential) gives cpack
# dpkg-shlibdeps and scripts/build-debs.sh dpkg-buildflags; lintian checks
# the .deb files (scripts/build-debs.sh, test_packages); man-db renders the
# installed man pages (test_packages) and brings groff-base, whose groff
# -ww lints their sources, as mandoc -Tlint does too (test_docs).
# The ckpt-run tests (test_preload) run real Debian programs unchanged:
# redis-server, sqlite3, git, gcc (build-essential) and python3 with its own
# test suite (libpython3.11-testsuite).
# Remote stores (ckpt-remote): libhiredis-dev and librados-dev are the
# client libraries; redis-server, ceph-mon, ceph-osd (and ceph-common for
# the ceph, ceph-authtool, monmaptool and rados commands) are the servers
# the remote tests start on loopback; uuid-runtime gives them uuidgen.
# Sealed pools: libssl-dev is OpenSSL's libcrypto (AES-256-GCM, HMAC-SHA256).
set -eu
export DEBIAN_FRONTEND=noninteractive
pkgs="build-essential cmake pkg-config libpmem-dev libxxhash-dev libcmocka-dev
      valgrind python3 jq xfsprogs btrfs-progs
      libjemalloc-dev libmimalloc-dev libpmemobj-dev
      redis-tools bsdextrautils clang libclang-rt-14-dev iproute2 util-linux
      lintian man-db groff-base mandoc
      libhiredis-dev librados-dev redis-server ceph-mon ceph-osd ceph-common
      uuid-runtime sqlite3 git libpython3.11-testsuite libssl-dev"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
