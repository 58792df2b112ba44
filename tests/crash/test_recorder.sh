#!/bin/sh
# test_recorder.sh -- the recorder logs every interposed call of rectest.c
# (see its top comment) with the right range, in file mode and pmem mode.
# usage: test_recorder.sh BUILD_DIR
set -eu
build=$(cd "$1" && pwd)
rec=$build/tests/crash/libckpt_recorder.so
preload=$rec
asan=$(ldd "$rec" 2>/dev/null | sed -n 's/^[[:space:]]*libasan[^ ]* => \([^ ]*\) .*/\1/p')
[ -n "$asan" ] && preload="$asan $rec"
tmp=$(mktemp -d "${CKPT_TEST_TMPDIR:-/var/tmp}/ckpt-rectest-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
bad=0

# expect DUMP PATTERN -- the dump has a line matching the extended regex
expect() {
	if ! grep -Eq "$2" "$1"; then
		echo "FAIL: no line matching: $2"
		bad=1
	fi
}

for mode in file pmem; do
	dir=$tmp/$mode
	mkdir -p "$dir"
	pm=0; [ $mode = pmem ] && pm=1
	env LD_PRELOAD="$preload" CKPT_REC_POOL="$dir/f" CKPT_REC_LOG="$dir" \
		CKPT_REC_PMEM=$pm PMEM_IS_PMEM_FORCE=$pm "$build/tests/crash/crash_rectest" "$dir/f"
	"$build/tests/crash/crashcheck" --dump "$dir" >"$dir/dump"
	d=$dir/dump
	expect $d 'SIZE ftruncate size 1048576'
	# the dump merges the runs of one op: pwrite's page and pwritev's 1024 bytes
	expect $d 'WRITE x2 pwrite 5120 bytes in \[0, 0x2400\)'
	expect $d 'WRITE x1 write 1024 bytes in \[0x4000, 0x4400\)'
	expect $d 'DURABLE fdatasync \[0, \+0xffffffffffffffff\)'
	expect $d 'WRITE x2 msync .* in \[0x5000, 0xa[0-9a-f]{3}\)'
	expect $d 'DURABLE msync \[0x5000, \+0x1000\)'
	expect $d 'WRITE x1 copy_file_range 4096 bytes in \[0x10000, 0x11000\)'
	expect $d 'WRITE x1 punch 4096 bytes in \[0, 0x1000\)'
	expect $d 'DURABLE pmem_msync \[0xa000, \+0x1000\)'
	expect $d 'DURABLE fsync \[0, \+0xffffffffffffffff\)'
	expect $d 'MARK none "done"'
	if [ $mode = pmem ]; then
		expect $d 'WRITE x1 pmem_persist 64 bytes in \[0xa000, 0xa040\)'
		expect $d 'DURABLE pmem_persist \[0xa000, \+0x40\)'
	elif grep -q pmem_persist $d; then
		echo "FAIL: pmem_persist is an ordering point outside pmem mode"
		bad=1
	fi
	[ $bad = 0 ] || { echo "dump ($mode):"; cat $d; exit 1; }
done
echo "PASS: the recorder logged every call of rectest in file and pmem mode"
