#!/bin/bash
# run-dirty.sh -- cost of dirty-page tracking (libckpt/engine/dirty.c,
# issue 11 point 2): start, first write per page, find, find-and-re-protect
# and clean collects with 1% of pages written at scattered places, per
# backing (ext4 MAP_SHARED / MAP_PRIVATE, memfd) and method, with a memcpy
# of the whole range as the reference. See the top of dirty_bench.c.
#
#   bench/run-dirty.sh [--smoke] [--reps N] [--sizes 64,1024] [--dir DIR]
#                      [--build-dir DIR | --bin PATH]
#
# Builds bench/dirty_bench (Release, in build-bench/ unless --bin is given);
# files go to --dir (default /var/tmp, the ext4 root). --smoke: 8 MiB, two
# repetitions, checks only that every collect found the written pages.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=""
build="$root/build-bench"
args=()
usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) args+=(--smoke); shift ;;
	--reps|--sizes|--dir) args+=("$1" "$2"); shift 2 ;;
	--bin) bin=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	-h|--help) usage ;;
	*) usage ;;
	esac
done
if [ -z "$bin" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$build" --target dirty_bench -j"$(nproc)" >/dev/null
	bin="$build/bench/dirty_bench"
fi
echo "# dirty tracking: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
     "kernel $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
     "THP $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo '?')"
echo "# command: bench/run-dirty.sh ${args[*]:-}"
exec "$bin" "${args[@]}"
