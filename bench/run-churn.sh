#!/bin/bash
# run-churn.sh -- the service-shaped workloads of bench/churn_bench.c
# (larson, prodcons, realloc, frag) for ckpt_alloc side by side with glibc
# malloc, jemalloc and mimalloc, in one run.
#
#   bench/run-churn.sh [--rounds N] [--smoke] [--dir DIR]
#                      [--build-dir DIR | --bin PATH] [--out FILE.jsonl]
#                      [--base-bin PATH] [--workloads LIST]
#
# Builds bench/churn_bench (Release, in build-bench/ unless --bin is given),
# then for each round, for each workload, runs one process per allocator in
# a fixed order: ckpt, glibc, jemalloc, mimalloc (jemalloc and mimalloc by
# LD_PRELOAD of the Debian libraries libjemalloc2 / libmimalloc2.0, skipped
# with a note when not installed). Round 0 is a warm-up, left out of the
# medians over rounds 1..N. Prints, per workload and allocator, the median
# ops/s, resident memory (KiB), resident bytes per live byte, and the
# ckpt/peer throughput ratios. Raw results: one JSON line per process.
#
# --base-bin PATH: also run PATH (a churn_bench linked with the library
# before a change) as "ckpt-base", right after ckpt: before and after in
# one run.
# --workloads LIST: only these (comma-separated: larson,prodcons,realloc,frag).
# --smoke: every allocator on every workload with a few thousand ops, one
# round; checks that each ran (never a speed). Seconds.
# Exit 0 when every process ran clean.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rounds=5
smoke=0
bin=""
base_bin=""
workloads=""
build="$root/build-bench"
dir=/dev/shm
out=""
JE=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
MI=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2

usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--smoke) smoke=1; shift ;;
	--bin) bin=$2; shift 2 ;;
	--base-bin) base_bin=$2; shift 2 ;;
	--workloads) workloads=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h|--help) usage ;;
	*) echo "run-churn.sh: unknown argument $1" >&2; usage ;;
	esac
done

if [ -z "$bin" ]; then
	if [ ! -f "$build/CMakeCache.txt" ]; then
		cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
			-DCKPT_BUILD_TESTS=OFF >/dev/null
	fi
	cmake --build "$build" --target churn_bench -j2 >/dev/null
	bin="$build/bench/churn_bench"
fi
[ -x "$bin" ] || { echo "run-churn.sh: no binary $bin" >&2; exit 1; }
[ -d "$dir" ] && [ -w "$dir" ] || { echo "run-churn.sh: $dir is not a writable directory" >&2; exit 1; }

variants="ckpt glibc"
[ -n "$base_bin" ] && variants="ckpt ckpt-base glibc"
[ -f "$JE" ] && variants="$variants jemalloc" || echo "run-churn.sh: $JE missing, jemalloc left out" >&2
[ -f "$MI" ] && variants="$variants mimalloc" || echo "run-churn.sh: $MI missing, mimalloc left out" >&2

# workload ops window (ops: larson steps per thread, prodcons blocks, realloc reallocs, frag steps)
if [ "$smoke" = 1 ]; then
	rounds=0
	sizes="larson 5000 256
prodcons 5000 0
realloc 5000 256
frag 20000 1024"
else
	sizes="larson 3000000 8192
prodcons 5000000 0
realloc 500000 2048
frag 10000000 32768"
fi

if [ -n "$workloads" ]; then
	sizes=$(grep -E "^(${workloads//,/|}) " <<<"$sizes") ||
		{ echo "run-churn.sh: no workload in '$workloads'" >&2; exit 2; }
fi

if [ -z "$out" ]; then
	if [ "$smoke" = 1 ]; then
		tmpd=$(mktemp -d)
		trap 'rm -rf "$tmpd"' EXIT
		out="$tmpd/churn.jsonl"
	else
		mkdir -p "$build/bench-results"
		out="$build/bench-results/churn-$(date +%Y%m%d-%H%M%S).jsonl"
	fi
fi
: >"$out"
echo "{\"meta\":true,\"date\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"nproc\":$(nproc),\"kernel\":\"$(uname -r)\",\"git\":\"$(git -C "$root" describe --always --dirty 2>/dev/null || echo '?')\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"rounds\":$rounds}" >>"$out"

failures=0
errlog=$(mktemp)
trap 'rm -f "$errlog"; [ -n "${tmpd:-}" ] && rm -rf "$tmpd"' EXIT
run() {
	local r=$1 v=$2 wl=$3 ops=$4 win=$5 line rc=0
	local base=(--workload "$wl" --ops "$ops")
	[ "$win" != 0 ] && base+=(--window "$win")
	local clean=(env -u LD_PRELOAD)
	case "$v" in
	ckpt)     line=$("${clean[@]}" "$bin" --allocator ckpt --dir "$dir" "${base[@]}" 2>"$errlog") || rc=$? ;;
	ckpt-base) line=$("${clean[@]}" "$base_bin" --allocator ckpt --label ckpt-base --dir "$dir" "${base[@]}" 2>"$errlog") || rc=$? ;;
	glibc)    line=$("${clean[@]}" "$bin" --allocator malloc --label glibc "${base[@]}" 2>"$errlog") || rc=$? ;;
	jemalloc) line=$("${clean[@]}" LD_PRELOAD="$JE" "$bin" --allocator malloc --label jemalloc "${base[@]}" 2>"$errlog") || rc=$? ;;
	mimalloc) line=$("${clean[@]}" LD_PRELOAD="$MI" "$bin" --allocator malloc --label mimalloc "${base[@]}" 2>"$errlog") || rc=$? ;;
	esac
	if [ "$rc" != 0 ] || [ -z "$line" ]; then
		failures=$((failures + 1))
		echo "run-churn.sh: $v $wl round $r failed (exit $rc): $(tr '\n' ' ' <"$errlog")" >&2
		line="{\"ok\":false,\"label\":\"$v\",\"workload\":\"$wl\"}"
	fi
	echo "{\"round\":$r,\"variant\":\"$v\",${line#\{}" >>"$out"
}

echo "churn bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), rounds 0..$rounds (0 = warm-up), results $out" >&2
for r in $(seq 0 "$rounds"); do
	while read -r wl ops win; do
		for v in $variants; do
			run "$r" "$v" "$wl" "$ops" "$win"
		done
	done <<<"$sizes"
	[ "$smoke" = 1 ] || echo "  round $r done ($(date +%T))" >&2
done

rc=0
python3 - "$out" "$smoke" <<'EOF' || rc=$?
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
smoke = sys.argv[2] == "1"
meta = rows[0]
res = [r for r in rows if not r.get("meta")]
bad = [r for r in res if not r.get("ok")]
if smoke:
    print("churn smoke: %d runs, %d failed" % (len(res), len(bad)))
    sys.exit(1 if bad else 0)
timed = [r for r in res if r["round"] >= 1 and r.get("ok")]
labels = []
for r in timed:
    if r["variant"] not in labels:
        labels.append(r["variant"])
print("churn bench %s, git %s, %s cores, load %s, medians of rounds 1..%d\n" %
      (meta["date"], meta["git"], meta["nproc"], meta["loadavg"], meta["rounds"]))
print("| workload | allocator | ops/s | resident KiB | resident / live | resident / peak live | ckpt/this |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for wl in ["larson", "prodcons", "realloc", "frag"]:
    med = {}
    for v in labels:
        rs = [r for r in timed if r["workload"] == wl and r["variant"] == v]
        if rs:
            med[v] = {k: statistics.median(r[k] for r in rs)
                      for k in ("ops_per_s", "rss_kb", "overhead", "overhead_peak")}
    for v, m in med.items():
        ratio = med["ckpt"]["ops_per_s"] / m["ops_per_s"] if "ckpt" in med else float("nan")
        print("| %s | %s | %.2f M | %d | %s | %s | %s |" % (
            wl, v, m["ops_per_s"] / 1e6, m["rss_kb"],
            "%.2f" % m["overhead"] if m["overhead"] else "-",
            "%.2f" % m["overhead_peak"] if m["overhead_peak"] else "-",
            "-" if v == "ckpt" else "%.2fx" % ratio))
sys.exit(1 if bad else 0)
EOF
[ "$smoke" = 1 ] || echo "results: $out" >&2
[ "$failures" = 0 ] || { echo "run-churn.sh: $failures run(s) failed" >&2; exit 1; }
exit "$rc"
