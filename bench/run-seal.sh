#!/bin/bash
# run-seal.sh -- checkpoint and restart of a sealed pool side by side with
# the same pool unsealed, in one run, alternating, for heaps of 256 MiB and
# 1 GiB of user data; and OpenSSL's own AES-256-GCM speed on this CPU.
#
#   bench/run-seal.sh [--smoke] [--reps N] [--sizes LIST] [--dir DIR]
#                     [--build-dir DIR | --bin PATH]
#
# Builds bench/seal_bench (Release, in build-bench/ unless --bin is given)
# and runs it with its pools in --dir (default /var/tmp). Prints the
# machine, its load, the command and one markdown table per size (medians,
# ratio = sealed / unsealed). See the comment at the top of seal_bench.c.
#
# --smoke: 4 MiB and 8 MiB, one repetition: checks that everything runs and
# prints numbers (never a speed). Seconds.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=""
build="$root/build-bench"
args=()
smoke=0
usage() { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) args+=(--smoke); smoke=1; shift ;;
	--reps|--sizes|--dir) args+=("$1" "$2"); shift 2 ;;
	--bin) bin=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	*) usage ;;
	esac
done
if [ -z "$bin" ]; then
	cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$build" --target seal_bench -j2 >/dev/null
	bin="$build/bench/seal_bench"
fi
echo "# sealed vs unsealed: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
     "kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# command: bench/run-seal.sh ${args[*]:-}"
if [ "$smoke" = 0 ] && command -v openssl >/dev/null 2>&1; then
	echo "# openssl speed -evp aes-256-gcm, 2 MiB buffers (the chunk size), one core:"
	openssl speed -evp aes-256-gcm -bytes 2097152 -seconds 2 2>/dev/null |
		awk 'tolower($1) == "aes-256-gcm" { sub(/k$/, "", $2); printf "# %.0f MB/s\n", $2 / 1000 }'
fi
"$bin" "${args[@]}"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
