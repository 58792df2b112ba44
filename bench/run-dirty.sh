#!/bin/bash
# run-dirty.sh -- cost of dirty-page tracking (libckpt/engine/dirty.c,
# issue 11 point 2): start, first write per page, find, find-and-re-protect
# and clean collects with 1% of pages written at scattered places, per
# backing (ext4 MAP_SHARED / MAP_PRIVATE, memfd) and method, with a memcpy
# of the whole range as the reference. See the top of dirty_bench.c.
#
#   bench/run-dirty.sh [--smoke] [--facts] [--reps N] [--sizes 64,1024]
#                      [--dir DIR] [--build-dir DIR | --bin PATH --facts-bin PATH]
#
# Builds bench/dirty_bench and bench/dirty_facts (Release, in build-bench/
# unless --bin is given); files go to --dir (default /var/tmp, the ext4
# root). --smoke: 8 MiB, two repetitions, checks only that every collect
# found the written pages, then prints the facts. --facts: only the kernel
# facts dirty.c is built on (which backings register WP async, kernel
# writes with and without UFFD_USER_MODE_ONLY, fork children, an
# unprivileged child); see the top of dirty_facts.c.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=""
facts_bin=""
facts=0
smoke=0
dir=/var/tmp
build="$root/build-bench"
args=()
usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) args+=(--smoke); smoke=1; shift ;;
	--facts) facts=1; shift ;;
	--dir) dir=$2; args+=("$1" "$2"); shift 2 ;;
	--reps|--sizes) args+=("$1" "$2"); shift 2 ;;
	--bin) bin=$2; shift 2 ;;
	--facts-bin) facts_bin=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	-h|--help) usage ;;
	*) usage ;;
	esac
done
if [ -z "$bin" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$build" --target dirty_bench dirty_facts -j"$(nproc)" >/dev/null
	bin="$build/bench/dirty_bench"
	facts_bin="$build/bench/dirty_facts"
fi
if [ "$facts" = 1 ]; then
	echo "# kernel facts for dirty tracking: $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), uid $(id -u)"
	exec "$facts_bin" --dir "$dir"
fi
echo "# dirty tracking: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
     "kernel $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
     "THP $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo '?')"
echo "# command: bench/run-dirty.sh ${args[*]:-}"
"$bin" "${args[@]}"
if [ "$smoke" = 1 ] && [ -n "$facts_bin" ]; then
	"$facts_bin" --dir "$dir"
fi
