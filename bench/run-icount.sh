#!/bin/bash
# run-icount.sh -- instructions and L1 data misses per alloc+free pair, for
# ckpt_alloc and its peers, counted by valgrind's cachegrind (exact and
# repeatable, unlike a timing).
#
#   bench/run-icount.sh [--workload small|mixed] [--build-dir DIR | --bin PATH]
#
# Runs bench/alloc_bench (one thread, window 8192) under
# `valgrind --tool=cachegrind --cache-sim=yes` twice per allocator, with
# 200000 and 400000 timed pairs, and divides the difference of the totals by
# the 200000 extra pairs: setup, warm-up and teardown cancel out, what is
# left is one step of the loop: the harness's own work (about 55
# instructions: random numbers, the 16-byte stamp and its check) plus one
# free and one alloc. Allocators: ckpt (pool in /dev/shm), glibc, and
# jemalloc / mimalloc by LD_PRELOAD when their Debian libraries are
# installed. The simulated caches are cachegrind's defaults for this CPU.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=""
build="$root/build-bench"
workload=small
JE=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
MI=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--workload) workload=$2; shift 2 ;;
	--bin) bin=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	-h|--help) usage ;;
	*) echo "run-icount.sh: unknown argument $1" >&2; usage ;;
	esac
done
command -v valgrind >/dev/null || { echo "run-icount.sh: valgrind not installed" >&2; exit 1; }
if [ -z "$bin" ]; then
	if [ ! -f "$build/CMakeCache.txt" ]; then
		cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
			-DCKPT_BUILD_TESTS=OFF >/dev/null
	fi
	cmake --build "$build" --target alloc_bench -j2 >/dev/null
	bin="$build/bench/alloc_bench"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# count VARIANT OPS -- prints "irefs d1misses" of one run
count() {
	local v=$1 ops=$2 pre="" args=(--allocator malloc --label "$1")
	case "$v" in
	ckpt) args=(--allocator ckpt --dir /dev/shm) ;;
	jemalloc) pre=$JE ;;
	mimalloc) pre=$MI ;;
	esac
	env -u LD_PRELOAD ${pre:+LD_PRELOAD=$pre} valgrind --tool=cachegrind --cache-sim=yes \
		--cachegrind-out-file="$tmp/cg.out" "$bin" "${args[@]}" --workload "$workload" \
		--threads 1 --window 8192 --ops "$ops" >"$tmp/out" 2>"$tmp/err" ||
		{ echo "run-icount.sh: $v failed: $(tail -3 "$tmp/err")" >&2; exit 1; }
	local ir d1r d1w
	ir=$(sed -n 's/.*I *refs: *\([0-9,]*\).*/\1/p' "$tmp/err" | tr -d ,)
	d1r=$(sed -n 's/.*D1  misses: *\([0-9,]*\) *( *\([0-9,]*\) rd *+ *\([0-9,]*\) wr).*/\1/p' "$tmp/err" | tr -d ,)
	echo "$ir ${d1r:-0}"
}

variants="ckpt glibc"
[ -f "$JE" ] && variants="$variants jemalloc"
[ -f "$MI" ] && variants="$variants mimalloc"
n1=200000
n2=400000
echo "cachegrind, alloc_bench --workload $workload --threads 1 --window 8192, ($n2 - $n1) pairs; git $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "| allocator | instructions per pair | D1 misses per pair |"
echo "| --- | --- | --- |"
for v in $variants; do
	read -r i1 m1 <<<"$(count "$v" $n1)"
	read -r i2 m2 <<<"$(count "$v" $n2)"
	awk -v v="$v" -v i1="$i1" -v i2="$i2" -v m1="$m1" -v m2="$m2" -v n=$((n2 - n1)) \
		'BEGIN { printf "| %s | %.1f | %.2f |\n", v, (i2 - i1) / n, (m2 - m1) / n }'
done
