#!/bin/bash
# run-fork.sh -- fork pause of a libckpt heap in each fork mode (copy on
# ext4, reflink on an XFS loop filesystem, shared) side by side with a plain
# fork() of the same amount of touched anonymous memory, 64 MiB / 256 MiB /
# 1 GiB, with 0% (clean heap), 1% and 100% of pages rewritten between forks.
#
#   bench/run-fork.sh [--smoke] [--reps N] [--sizes 64,256,1024] [--dir DIR]
#                     [--build-dir DIR | --bin PATH]
#
# Builds bench/fork_bench (Release, in build-bench/ unless --bin is given).
# --dir: where the copy/shared pools go (default /var/tmp, ext4 here). As
# root, an XFS filesystem (mkfs.xfs -m reflink=1) on a loop device is made
# in a temporary directory for the reflink pool and always removed again;
# without root (or loop devices) the reflink column is skipped with a note.
# --smoke: 8 MiB, two forks per configuration, no reflink filesystem: seconds;
# checks only that every fork ran.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
smoke=0
reps=5
sizes=64,256,1024
dir=/var/tmp
bin=
build_dir=$root/build-bench
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1 ;;
	--reps) reps=$2; shift ;;
	--sizes) sizes=$2; shift ;;
	--dir) dir=$2; shift ;;
	--bin) bin=$2; shift ;;
	--build-dir) build_dir=$2; shift ;;
	*) echo "usage: $0 [--smoke] [--reps N] [--sizes MiB,...] [--dir DIR] [--build-dir DIR | --bin PATH]" >&2; exit 2 ;;
	esac
	shift
done

if [ -z "$bin" ]; then
	cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCKPT_BUILD_TESTS=OFF >/dev/null
	cmake --build "$build_dir" --target fork_bench -j"$(nproc)" >/dev/null
	bin=$build_dir/bench/fork_bench
fi

if [ "$smoke" = 1 ]; then
	work=$(mktemp -d "$dir/fork-bench-smoke.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	exec_rc=0
	"$bin" --smoke --dir "$work" || exec_rc=$?
	exit $exec_rc
fi

tmp=$(mktemp -d /var/tmp/fork-bench.XXXXXX)
mnt=$tmp/xfs
loop=
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt" || umount -l "$mnt"; fi
	if [ -n "$loop" ]; then losetup -d "$loop" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
rargs=()
if [ "$(id -u)" = 0 ] && command -v mkfs.xfs >/dev/null; then
	truncate -s 8G "$tmp/xfs.img"
	mkfs.xfs -q -m reflink=1 "$tmp/xfs.img"
	mkdir -p "$mnt"
	if loop=$(losetup -f --show "$tmp/xfs.img") && mount "$loop" "$mnt"; then
		rargs=(--reflink-dir "$mnt")
	else
		echo "# reflink skipped: cannot attach or mount a loop device" >&2
	fi
else
	echo "# reflink skipped: needs root and mkfs.xfs for an XFS loop filesystem" >&2
fi

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(uname -r) nproc=$(nproc) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# copy/shared pools in $dir ($(findmnt -n -o FSTYPE -T "$dir")), reflink pool on XFS loop, plain = anonymous 4 KiB pages (MADV_NOHUGEPAGE)"
echo "# command: bench/run-fork.sh --reps $reps --sizes $sizes --dir $dir"
"$bin" --dir "$dir" "${rargs[@]}" --sizes "$sizes" --reps "$reps"
