#!/bin/bash
# run-alloc.sh -- alloc/free throughput of ckpt_alloc side by side with
# glibc malloc, jemalloc, mimalloc and libpmemobj, in one run.
#
#   bench/run-alloc.sh [--rounds N] [--smoke] [--dir DIR] [--msync-dir DIR]
#                      [--build-dir DIR | --bin PATH] [--out FILE.jsonl]
#                      [--peers-only] [--base-bin PATH]
#
# Builds bench/alloc_bench (Release, in build-bench/ unless --bin is given),
# then for each round, for each workload (small, mixed) and thread count
# (1, 2), runs one process per allocator in a fixed order:
#   ckpt, glibc, jemalloc, mimalloc, pmemobj, pmemobj-msync
# Round 0 is a warm-up (page cache, binaries) reported apart; the medians
# are over rounds 1..N. bench/alloc_summary.py prints medians and the
# ckpt/peer ratios against the targets. Raw results: one JSON line per
# process in the .jsonl file named at the end, the tables in the .md beside it.
#
# Allocators as their users run them:
#   glibc     the plain binary
#   jemalloc  the same binary, LD_PRELOAD=libjemalloc.so.2 (Debian)
#   mimalloc  the same binary, LD_PRELOAD=libmimalloc.so.2 (Debian)
#   ckpt      ckpt_alloc/ckpt_free on a new pool in --dir (1 GiB heap, sparse)
#   pmemobj   pmemobj_alloc/pmemobj_free on a new 512 MiB pool in --dir,
#             PMEM_IS_PMEM_FORCE=1 (cache flushes, as on pmem): the figure
#             the ratio is taken against; 1/20 of the ops (it is slow)
#   pmemobj-msync  the same without PMEM_IS_PMEM_FORCE on an ordinary file
#             in --msync-dir (ext4: every allocation msyncs); quoted beside
#             only, window 256 and a few hundred ops so it finishes
#
# --smoke: every allocator on every workload with a few thousand ops, one
# round; checks that each ran and printed a number (never a speed). Seconds.
# --peers-only: leave ckpt out (its column shows "pending").
# --base-bin PATH: also run PATH (an alloc_bench linked with the library
# before a change) as "ckpt-base", right after ckpt in every round: before
# and after side by side in one run.
# Exit 0 when every process ran clean.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rounds=5
smoke=0
peers_only=0
bin=""
base_bin=""
build="$root/build-bench"
dir=/dev/shm
msync_dir=/var/tmp
out=""
JE=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
MI=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--smoke) smoke=1; shift ;;
	--peers-only) peers_only=1; shift ;;
	--bin) bin=$2; shift 2 ;;
	--base-bin) base_bin=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--msync-dir) msync_dir=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h|--help) usage ;;
	*) echo "run-alloc.sh: unknown argument $1" >&2; usage ;;
	esac
done

if [ -z "$bin" ]; then
	# Release; no test suite (the bench needs only the library and itself)
	if [ ! -f "$build/CMakeCache.txt" ]; then
		cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
			-DCKPT_BUILD_TESTS=OFF >/dev/null
	fi
	cmake --build "$build" --target alloc_bench -j2 >/dev/null
	bin="$build/bench/alloc_bench"
fi
[ -x "$bin" ] || { echo "run-alloc.sh: no binary $bin" >&2; exit 1; }
for lib in "$JE" "$MI"; do
	[ -f "$lib" ] || { echo "run-alloc.sh: $lib missing (apt-get install libjemalloc-dev libmimalloc-dev)" >&2; exit 1; }
done
for d in "$dir" "$msync_dir"; do
	[ -d "$d" ] && [ -w "$d" ] || { echo "run-alloc.sh: $d is not a writable directory" >&2; exit 1; }
done

# Sizes: ops are timed free+alloc pairs per thread.
if [ "$smoke" = 1 ]; then
	rounds=0
	window=1024
	ops_small=20000; ops_mixed=10000
	pm_div=10
	ms_window=64; ms_ops=20
	pm_pool=256M
else
	window=8192
	ops_small=16000000; ops_mixed=8000000
	pm_div=20
	ms_window=256; ms_ops=300
	pm_pool=512M
fi

if [ -z "$out" ]; then
	if [ "$smoke" = 1 ]; then
		tmpd=$(mktemp -d)
		trap 'rm -rf "$tmpd"' EXIT
		out="$tmpd/alloc.jsonl"
	else
		mkdir -p "$build/bench-results"
		out="$build/bench-results/alloc-$(date +%Y%m%d-%H%M%S).jsonl"
	fi
fi
: >"$out"

ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
gitrev=$(git -C "$root" describe --always --dirty 2>/dev/null || echo "?")
cmd="bench/run-alloc.sh"
[ "$smoke" = 1 ] && cmd="$cmd --smoke"
[ "$peers_only" = 1 ] && cmd="$cmd --peers-only"
[ -n "$base_bin" ] && cmd="$cmd --base-bin BASE"
[ "$smoke" = 0 ] && [ "$rounds" != 5 ] && cmd="$cmd --rounds $rounds"
fstype() { findmnt -n -o FSTYPE --target "$1" | tail -n 1; }
M_COMMAND=$cmd M_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) M_NPROC=$(nproc) M_KERNEL=$(uname -r) \
M_CPU=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //') \
M_LOAD=$(cut -d' ' -f1-3 /proc/loadavg) M_GIT=$gitrev \
M_GLIBC=$(ver libc6) M_JE=$(ver libjemalloc2) M_MI=$(ver libmimalloc2.0) M_PMEMOBJ=$(ver libpmemobj1) \
M_ROUNDS=$rounds M_WINDOW=$window M_OPS_SMALL=$ops_small M_OPS_MIXED=$ops_mixed \
M_PM_DIV=$pm_div M_MS_WINDOW=$ms_window M_MS_OPS=$ms_ops \
M_DIR=$dir M_FS=$(fstype "$dir") M_MS_DIR=$msync_dir M_MS_FS=$(fstype "$msync_dir") \
M_PEERS_ONLY=$peers_only M_SMOKE=$smoke \
python3 - "$out" <<'EOF'
import json, os, sys
e = os.environ
meta = {
  "meta": True, "command": e["M_COMMAND"], "date": e["M_DATE"], "nproc": e["M_NPROC"],
  "kernel": e["M_KERNEL"], "cpu": e["M_CPU"], "loadavg_start": e["M_LOAD"], "git": e["M_GIT"],
  "versions": {"glibc": e["M_GLIBC"], "jemalloc": e["M_JE"], "mimalloc": e["M_MI"],
               "libpmemobj": e["M_PMEMOBJ"]},
  "rounds": int(e["M_ROUNDS"]), "window": int(e["M_WINDOW"]),
  "ops_small": int(e["M_OPS_SMALL"]), "ops_mixed": int(e["M_OPS_MIXED"]),
  "pmemobj_ops_divisor": int(e["M_PM_DIV"]), "msync_window": int(e["M_MS_WINDOW"]),
  "msync_ops": int(e["M_MS_OPS"]), "dir": e["M_DIR"], "fs": e["M_FS"],
  "msync_dir": e["M_MS_DIR"], "msync_fs": e["M_MS_FS"],
  "peers_only": e["M_PEERS_ONLY"] == "1", "smoke": e["M_SMOKE"] == "1",
}
open(sys.argv[1], "a").write(json.dumps(meta) + "\n")
EOF

variants="ckpt glibc jemalloc mimalloc pmemobj pmemobj-msync"
[ "$peers_only" = 1 ] && variants="glibc jemalloc mimalloc pmemobj pmemobj-msync"
[ -n "$base_bin" ] && [ "$peers_only" = 0 ] && variants="ckpt ckpt-base ${variants#ckpt }"
failures=0
errlog=$(mktemp)
trap 'rm -f "$errlog"; [ -n "${tmpd:-}" ] && rm -rf "$tmpd"' EXIT

# run ROUND VARIANT WORKLOAD THREADS
run() {
	local r=$1 v=$2 wl=$3 th=$4 ops
	ops=$ops_small; [ "$wl" = mixed ] && ops=$ops_mixed
	local base=(--workload "$wl" --threads "$th" --window "$window" --ops "$ops")
	local clean=(env -u LD_PRELOAD -u PMEM_IS_PMEM_FORCE)
	local line rc=0
	case "$v" in
	ckpt)     line=$("${clean[@]}" "$bin" --allocator ckpt --dir "$dir" "${base[@]}" 2>"$errlog") || rc=$? ;;
	ckpt-base) line=$("${clean[@]}" "$base_bin" --allocator ckpt --label ckpt-base --dir "$dir" "${base[@]}" 2>"$errlog") || rc=$? ;;
	glibc)    line=$("${clean[@]}" "$bin" --allocator malloc --label glibc "${base[@]}" 2>"$errlog") || rc=$? ;;
	jemalloc) line=$("${clean[@]}" LD_PRELOAD="$JE" "$bin" --allocator malloc --label jemalloc "${base[@]}" 2>"$errlog") || rc=$? ;;
	mimalloc) line=$("${clean[@]}" LD_PRELOAD="$MI" "$bin" --allocator malloc --label mimalloc "${base[@]}" 2>"$errlog") || rc=$? ;;
	pmemobj)  line=$("${clean[@]}" PMEM_IS_PMEM_FORCE=1 "$bin" --allocator pmemobj --label pmemobj \
			--dir "$dir" --pool-size "$pm_pool" --workload "$wl" --threads "$th" \
			--window "$window" --ops $((ops / pm_div)) 2>"$errlog") || rc=$? ;;
	pmemobj-msync) line=$("${clean[@]}" "$bin" --allocator pmemobj --label pmemobj-msync \
			--dir "$msync_dir" --pool-size "$pm_pool" --workload "$wl" --threads "$th" \
			--window "$ms_window" --ops "$ms_ops" 2>"$errlog") || rc=$? ;;
	esac
	if [ "$rc" != 0 ] || [ -z "$line" ]; then
		failures=$((failures + 1))
		echo "run-alloc.sh: $v $wl ${th}t round $r failed (exit $rc): $(tr '\n' ' ' <"$errlog")" >&2
		line="{\"ok\":false,\"label\":\"$v\",\"workload\":\"$wl\",\"threads\":$th,\"exit\":$rc}"
	fi
	echo "{\"round\":$r,\"variant\":\"$v\",${line#\{}" >>"$out"
}

echo "alloc bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), nproc $(nproc), kernel $(uname -r), rounds 0..$rounds (0 = warm-up), results $out" >&2
for r in $(seq 0 "$rounds"); do
	for wl in small mixed; do
		for th in 1 2; do
			for v in $variants; do
				run "$r" "$v" "$wl" "$th"
			done
		done
	done
	[ "$smoke" = 1 ] || echo "  round $r done ($(date +%T))" >&2
done

echo "{\"meta_end\":true,\"loadavg_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"date_end\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" >>"$out"

md="${out%.jsonl}.md"
check=()
[ "$smoke" = 1 ] && check=(--check)
python3 "$here/alloc_summary.py" "${check[@]}" "$out" | tee "$md"
rc=${PIPESTATUS[0]}
[ "$smoke" = 1 ] || echo "results: $out and $md" >&2
if [ "$failures" != 0 ]; then
	echo "run-alloc.sh: $failures run(s) failed" >&2
	exit 1
fi
exit "$rc"
