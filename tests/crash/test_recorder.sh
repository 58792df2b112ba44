#!/bin/sh
# test_recorder.sh -- the recorder logs every interposed call of rectest.c
# (see its top comment) with the right range, in file mode and pmem mode;
# and its range sequence (pwritev2 with and without RWF_DSYNC/RWF_SYNC,
# sync_file_range) gives the crash states it must (crashcheck --probe).
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

# states P N COND -- how many states of the N-th crash point (0: the log's
# start) of probe output P satisfy the awk condition COND ($5...: the ranges)
states() {
	awk -v n="$2" 'BEGIN { k = -1 } $1 == "probe" { if ($2 != k) { k = $2; i++ } }
		$1 == "probe" && i - 1 == n && ('"$3"') { c++ } END { print c + 0 }' "$1"
}
# some P N COND WHAT / none P N COND WHAT
some() {
	if [ "$(states "$1" "$2" "$3")" = 0 ]; then
		echo "FAIL: no state at crash point $2 where $4"
		bad=1
	fi
}
none() {
	if [ "$(states "$1" "$2" "$3")" != 0 ]; then
		echo "FAIL: a state at crash point $2 where $4"
		bad=1
	fi
}

# the range sequence (rectest.c's top comment); probed: the pages of E, F,
# G, H/I and D ($5 ... $9 of each probe line)
ranges=0x1000:4096,0x3000:4096,0x5000:4096,0x7000:4096,0x100000:4096
for mode in file pmem; do
	dir=$tmp/range-$mode
	mkdir -p "$dir"
	pm=0; [ $mode = pmem ] && pm=1
	env LD_PRELOAD="$preload" CKPT_REC_POOL="$dir/f" CKPT_REC_LOG="$dir" \
		CKPT_REC_PMEM=$pm "$build/tests/crash/crash_rectest" "$dir/f" range
	"$build/tests/crash/crashcheck" --dump "$dir" >"$dir/dump"
	d=$dir/dump
	expect $d 'WRITE x1 pwritev2 4096 bytes in \[0x1000, 0x2000\)'
	expect $d 'DURABLE pwritev2 \[0x1000, \+0x1000\)'
	expect $d 'WRITE x1 pwrite 4096 bytes in \[0x3000, 0x4000\)'
	expect $d 'WRITE x1 pwritev2 4096 bytes in \[0x5000, 0x6000\)'
	expect $d 'WRITE x1 sync_file_range 4096 bytes in \[0x7000, 0x8000\)'
	expect $d 'SIZE pwritev2 size 1052672'
	expect $d 'DURABLE pwritev2 \[0x100000, \+0x1000\)'
	p=$dir/probe
	"$build/tests/crash/crashcheck" --probe $ranges "$dir" >"$p"
	# the ordering points, in order: no point at the plain pwritev2 (b)
	# nor at sync_file_range (c)
	pts=$(awk 'BEGIN { k = -1 } $1 == "probe" && $2 != k { k = $2; printf "%s ", $3 }' "$p")
	if [ "$pts" != "start fdatasync pwritev2 fdatasync pwritev2 " ]; then
		echo "FAIL: crash points after: $pts"
		bad=1
	fi
	# (a) after pwritev2 RWF_DSYNC: its page in every state, the later
	# writes in flight; (b) the plain pwritev2 too; (c) sync_file_range
	# made nothing durable, but its H may be on the disk
	some $p 2 1 "(any state)"
	none $p 2 '$5 != "45"' "the RWF_DSYNC page is not E"
	some $p 2 '$6 == "00"' "the plain pwrite F is lost"
	some $p 2 '$6 == "46"' "the plain pwrite F is there"
	some $p 2 '$7 == "00"' "the pwritev2 without RWF_DSYNC (G) is lost"
	some $p 2 '$7 == "47"' "the pwritev2 without RWF_DSYNC (G) is there"
	some $p 2 '$8 == "00"' "the sync_file_range page (H, then I) is lost"
	some $p 2 '$8 == "48"' "the sync_file_range page holds H (what it wrote back)"
	# (d) after pwritev64v2 RWF_SYNC past the end: its bytes durable, the
	# size not (the model's safe side)
	some $p 4 1 "(any state)"
	none $p 4 '$5 $6 $7 $8 != "45464749"' "the fdatasync'd pages changed"
	none $p 4 '$9 != "44" && $9 != "-"' "the RWF_SYNC page is there but not D"
	some $p 4 '$9 == "-"' "the file keeps its old size (1 MiB)"
	some $p 4 '$9 == "44"' "the file is grown and holds D"
	[ $bad = 0 ] || { echo "dump (range, $mode):"; cat $d; exit 1; }
done
# the append sequence: RWF_APPEND is logged where it wrote; with RWF_DSYNC
# it is refused loudly (exit 99, a marker in the log), not modelled wrongly
dir=$tmp/append
mkdir -p "$dir"
st=0
env LD_PRELOAD="$preload" CKPT_REC_POOL="$dir/f" CKPT_REC_LOG="$dir" \
	"$build/tests/crash/crash_rectest" "$dir/f" append 2>"$dir/err" || st=$?
"$build/tests/crash/crashcheck" --dump "$dir" >"$dir/dump"
d=$dir/dump
expect $d 'WRITE x1 pwritev2 4096 bytes in \[0x1000, 0x2000\)'
expect $d 'SIZE pwritev2 size 8192'
expect $d 'MARK none "recorder: refused: pwritev2 appending with RWF_DSYNC/RWF_SYNC"'
if [ $st != 99 ] || ! grep -q 'not modelled' "$dir/err"; then
	echo "FAIL: pwritev2 RWF_APPEND | RWF_DSYNC: exit status $st (not 99), stderr:"
	cat "$dir/err"
	bad=1
fi
[ $bad = 0 ] || { echo "dump (append):"; cat $d; exit 1; }
echo "PASS: the recorder logged every call of rectest in file and pmem mode;" \
	"pwritev2 RWF_DSYNC/RWF_SYNC is a range point, pwritev2 and sync_file_range are not;" \
	"an appending RWF_DSYNC write is refused"
