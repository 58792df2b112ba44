#!/bin/sh
# test_kvstore_layout -- kvstore's dataset layouts: a pool written as
# kvstore's layout 1 wrote it (every value after its key in one block; made
# by kvstore_v1_pool) is upgraded when kvstore starts on it (long values
# moved to blocks of their own, checkpointed once), every key keeps its
# value, the heap no longer holds 1000-byte values in 1,280 B blocks, and
# SETs that move a value between the inline and the split form survive a
# kill -9 and a restart; a pool of an unknown layout is refused.
#   sh test_kvstore_layout.sh KVSTORE CKPT_INSPECT KVSTORE_V1_POOL
KVSTORE=$1 INSPECT=$2 V1POOL=$3
. "$(dirname "$0")/test_kvstore_lib.sh"
N=4000

# check_v1_values -- every key:I holds the value kvstore_v1_pool gave it
check_v1_values() {
	got=$(cli mget $(seq -f 'key:%.0f' 0 $((N - 1))) | md5sum)
	want=$(awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) { v = "value:" i
		w = i % 4 == 0 ? 1000 : i % 4 == 1 ? 200 : 0
		if (w) { v = v ":"; while (length(v) < w) v = v "x" }
		print v } }' | md5sum)
	[ "$got" = "$want" ] || fail "$1: not every key:I holds its layout-1 value"
}

# blocks_of SIZE -- allocated blocks of SIZE bytes in the latest checkpoint's heap
blocks_of() {
	"$INSPECT" heap "$POOL" latest >"$T/blocks" 2>&1 ||
		{ fail "ckpt-inspect heap"; tail -n 5 "$T/blocks"; }
	awk -v s="$1" '$2 == s && $NF == "allocated" { n++ } END { print n + 0 }' "$T/blocks"
}

echo "== a layout-1 pool: $N keys, a quarter of 1000 B values, a quarter of 200 B"
"$V1POOL" "$POOL" $N kvstore-1 || die "kvstore_v1_pool failed"
[ "$(blocks_of 1280)" = $((N / 4)) ] ||
	fail "the layout-1 pool does not hold $((N / 4)) blocks of 1280 B"

echo "== kvstore upgrades it at start, once"
start_kv --checkpoint-every 0 --check
grep -q "upgraded the dataset from layout 1 to 2 in .* ms: $((N / 2)) values moved" "$LOG" ||
	fail "no upgrade line moving $((N / 2)) values"
grep -q "check: hash table consistent, $N keys" "$LOG" || fail "--check did not pass"
check_v1_values "after the upgrade"
[ "$(blocks_of 1280)" = 0 ] || fail "1000 B values still in 1280 B blocks after the upgrade"
[ "$(blocks_of 1024)" = $((N / 4)) ] || fail "the 1000 B values are not in $((N / 4)) blocks of 1024 B"
kill9_kv
start_kv --checkpoint-every 0 --check
[ "$(grep -c "upgraded the dataset" "$LOG")" = 1 ] || fail "the upgrade ran again after it was saved"
check_v1_values "after a restart"

echo "== SETs between the inline and the split forms survive kill -9"
long=$(printf '%01500d' 7)
cli set key:2 "$long" >/dev/null                # inline, short -> split
cli set key:0 short >/dev/null                  # split: in place
cli set key:4 "$long$long" >/dev/null           # split: a bigger value block
cli set newkey "$long" >/dev/null               # new, split
cli set newsmall tiny >/dev/null                # new, inline
cli del key:8 key:3 >/dev/null                  # a split one, an inline one
[ "$(cli save)" = OK ] || fail "SAVE"
kill9_kv
start_kv --checkpoint-every 0 --check
grep -q "check: hash table consistent, $((N + 2 - 2)) keys" "$LOG" || fail "--check after the SETs"
[ "$(cli get key:2)" = "$long" ] || fail "key:2 (inline -> split)"
[ "$(cli get key:0)" = short ] || fail "key:0 (split, in place)"
[ "$(cli get key:4)" = "$long$long" ] || fail "key:4 (split, a new value block)"
[ "$(cli get newkey)" = "$long" ] || fail "newkey"
[ "$(cli get newsmall)" = tiny ] || fail "newsmall"
[ "$(cli exists key:8 key:3)" = 0 ] || fail "deleted keys came back"
[ "$(cli get key:5)" = "$(printf 'value:5:%0192d' 0 | tr 0 x)" ] || fail "key:5 (200 B) changed"
cli flushall >/dev/null
[ "$(cli dbsize)" = 0 ] || fail "FLUSHALL"
stop_kv
"$INSPECT" verify "$POOL" >"$T/verify" 2>&1 || { fail "ckpt-inspect verify"; cat "$T/verify"; }

echo "== a pool of an unknown layout is refused"
rm -f "$POOL"
"$V1POOL" "$POOL" 10 kvstore-9 || die "kvstore_v1_pool failed"
"$KVSTORE" --pool "$POOL" --port 0 --unixsocket "$SOCK" >>"$LOG" 2>&1 &&
	fail "kvstore started on a pool of layout 9"
grep -q "does not hold a kvstore dataset of layout 1 or 2 (its root is a kvstore dataset of another layout)" "$LOG" ||
	fail "no clear refusal of layout 9"
finish
