#!/bin/bash
# run-checkpoint.sh -- checkpoint and restart time of libckpt side by side
# with a program without libckpt (write() + fdatasync() to save, read() to
# load), in one run, alternating, for heaps of 64 MiB and 1 GiB of user data.
#
#   bench/run-checkpoint.sh [--smoke] [--reps N] [--sizes LIST] [--dir DIR]
#                           [--rewrite PCT] [--keep N] [--chunk BYTES]
#                           [--build-dir DIR | --bin PATH]
#
# The fork mode comes from the environment: CKPT_FORK_MODE=cow runs the
# copy-on-write engine.
#
# Builds bench/ckpt_bench (Release, in build-bench/ unless --bin is given)
# and runs it with pool and plain files in --dir (default /var/tmp, the ext4
# root). Prints the machine, the command and one markdown table per size
# (medians, ratio = libckpt / plain). See the comment at the top of
# ckpt_bench.c for exactly what each row times.
#
# --smoke: 4 MiB and 8 MiB, one repetition: checks that everything runs and
# prints numbers (never a speed). Seconds.
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
	--reps|--sizes|--dir|--rewrite|--keep|--chunk) args+=("$1" "$2"); shift 2 ;;
	--bin) bin=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	-h|--help) usage ;;
	*) usage ;;
	esac
done
if [ -z "$bin" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$build" --target ckpt_bench -j"$(nproc)" >/dev/null
	bin="$build/bench/ckpt_bench"
fi
echo "# checkpoint and restart: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
     "kernel $(uname -r), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
     "THP $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo '?')"
echo "# command: bench/run-checkpoint.sh ${args[*]:-}"
exec "$bin" "${args[@]}"
