#!/bin/sh
# demo.sh -- the README's first command ends here. kvstore, a Redis-protocol
# key-value server whose whole dataset lives in a libckpt pool, is loaded
# with 100,000 keys, checkpointed, killed with kill -9 and restarted: every
# key is back, without loading or parsing anything. Then ckpt-inspect shows
# what the pool file holds. Clients are the stock redis-cli.
# usage: samples/demo.sh [BUILD_DIR]
set -eu
build=${1:-build}
kvstore=$build/samples/kvstore
inspect=$build/tools/ckpt-inspect
N=100000
for f in "$kvstore" "$inspect"; do
	[ -x "$f" ] || { echo "demo: $f is not built (cmake --build $build)" >&2; exit 1; }
done
command -v redis-cli >/dev/null ||
	{ echo "demo: redis-cli is missing: run scripts/deps.sh (Debian package redis-tools)" >&2; exit 1; }

dir=$(mktemp -d /var/tmp/ckpt-demo.XXXXXX)
pool=$dir/kv.pool
sock=$dir/kv.sock
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

if [ -t 1 ]; then bold=$(printf '\033[1m') plain=$(printf '\033[0m'); else bold= plain=; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
cli() { redis-cli -s "$sock" "$@"; }

# start -- run kvstore in the background and wait until it answers PING
start() {
	"$kvstore" --pool "$pool" --port 0 --unixsocket "$sock" --heap-size 256M \
		--checkpoint-every 0 2>>"$dir/kvstore.log" &
	pid=$!
	i=0
	until [ -S "$sock" ] && cli ping >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 500 ] || { echo "demo: kvstore did not start:"; cat "$dir/kvstore.log"; exit 1; }
		kill -0 "$pid" 2>/dev/null || { echo "demo: kvstore exited:"; cat "$dir/kvstore.log"; exit 1; }
		sleep 0.01
	done
}

now_ms() { date +%s%3N; }

say "1. start kvstore on a new pool ($pool, an ordinary file emulating pmem)"
echo "   $kvstore --pool $pool --unixsocket $sock"
start
tail -n 3 "$dir/kvstore.log" | sed 's/^/   log: /'

say "2. load $N keys key:0..key:$((N - 1)) (values value:0..) with redis-cli --pipe"
awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) { k = "key:" i; v = "value:" i;
	printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }' |
	cli --pipe | sed 's/^/   /'
echo "   DBSIZE: $(cli dbsize)"

say "3. SAVE: checkpoint the heap (an immutable, crash-atomic image in the pool)"
echo "   SAVE: $(cli save)"
grep 'SAVE' "$dir/kvstore.log" | tail -n 1 | sed 's/^/   log: /'

say "4. write a little more after the checkpoint (this part will be lost)"
echo "   SET unsaved yes: $(cli set unsaved yes)   DBSIZE: $(cli dbsize)"

say "5. kill -9 the server (pid $pid): no shutdown, no chance to save anything"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
cli ping >/dev/null 2>&1 && { echo "demo: server still answers"; exit 1; }
echo "   the server is gone; its heap stays in the pool as a dead segment"

say "6. restart it: ckpt_open copies the latest checkpoint into a new segment, mapped at the same address"
t0=$(now_ms)
start
t1=$(now_ms)
grep 'restarted from' "$dir/kvstore.log" | tail -n 1 | sed 's/^/   log: /'
echo "   from exec to answering PING: $((t1 - t0)) ms"

say "7. is every key back?"
echo "   DBSIZE: $(cli dbsize)"
for k in key:0 key:12345 key:99999; do
	echo "   GET $k: $(cli get $k)"
done
echo "   GET unsaved: \"$(cli get unsaved)\" (written after the checkpoint: gone, as expected)"
# check all N with MGET, 10,000 keys a call
bad=0
i=0
while [ $i -lt $N ]; do
	j=$((i + 10000 < N ? i + 10000 : N))
	got=$(cli mget $(seq -f 'key:%.0f' $i $((j - 1))) | md5sum)
	want=$(seq -f 'value:%.0f' $i $((j - 1)) | md5sum)
	[ "$got" = "$want" ] || { echo "   MISMATCH in key:$i..key:$((j - 1))"; bad=1; }
	i=$j
done
if [ $bad -eq 0 ] && [ "$(cli dbsize)" = $N ]; then
	echo "   checked with MGET: all $N keys are back, each with its value"
else
	echo "demo: keys are missing or wrong after the restart"; exit 1
fi

say "8. what the pool holds: ckpt-inspect list"
"$inspect" list "$pool" | sed 's/^/   /'

say "9. the latest checkpoint's heap: ckpt-inspect heap latest --summary"
"$inspect" heap "$pool" latest --summary | sed 's/^/   /'

say "10. SHUTDOWN: kvstore checkpoints once more and exits"
cli shutdown 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=
tail -n 2 "$dir/kvstore.log" | sed 's/^/   log: /'
echo
echo "demo done: the pool was in $dir (removed now)"
