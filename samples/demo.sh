#!/bin/sh
# demo.sh -- the README's first command ends here. kvstore, a Redis-protocol
# key-value server whose whole dataset lives in a libckpt pool, is loaded
# with 100,000 keys, checkpointed, killed with kill -9 and restarted: every
# key is back, without loading or parsing anything. Then ckpt-inspect shows
# what the pool file holds. Clients are the stock redis-cli.
# Every step is checked: if one fails, the demo says which and exits 1.
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
# cleanup -- on exit: stop the server, show its log if the demo failed, remove the pool
cleanup() {
	rc=$?
	[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true
	if [ $rc -ne 0 ]; then
		echo "demo: FAILED (exit status $rc); kvstore's log:" >&2
		sed 's/^/   /' "$dir/kvstore.log" >&2 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

if [ -t 1 ]; then bold=$(printf '\033[1m') plain=$(printf '\033[0m'); else bold= plain=; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
fail() { echo "demo: $*" >&2; exit 1; }
cli() { redis-cli -s "$sock" "$@"; }

# run -- run a command and show its output, indented; stop the demo if it fails
run() {
	"$@" >"$dir/out" 2>&1 || { rc=$?; sed 's/^/   /' "$dir/out"; fail "'$*' failed (exit status $rc)"; }
	sed 's/^/   /' "$dir/out"
}

# ask -- send one command with redis-cli, check the reply is the expected one
ask() {
	want=$1; shift
	got=$(cli "$@") || fail "redis-cli $* failed"
	[ "$got" = "$want" ] || fail "$* answered '$got', expected '$want'"
	echo "   $*: ${got:-(nil)}"
}

# log -- show the server log's last line matching a pattern (it must be there)
log() {
	grep "$1" "$dir/kvstore.log" >"$dir/out" || fail "kvstore logged no '$1' line"
	tail -n 1 "$dir/out" | sed 's/^/   log: /'
}

# start -- run kvstore in the background and wait until it answers PING
start() {
	"$kvstore" --pool "$pool" --port 0 --unixsocket "$sock" --heap-size 256M \
		--checkpoint-every 0 2>>"$dir/kvstore.log" &
	pid=$!
	i=0
	until [ -S "$sock" ] && cli ping >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 500 ] || fail "kvstore did not answer PING within 5 s"
		kill -0 "$pid" 2>/dev/null || fail "kvstore exited"
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
	printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }' \
	>"$dir/load.resp"
run cli --pipe <"$dir/load.resp"
ask $N DBSIZE

say "3. SAVE: checkpoint the heap (an immutable, crash-atomic image in the pool)"
ask OK SAVE
log 'SAVE'

say "4. write a little more after the checkpoint (this part will be lost)"
ask OK SET unsaved yes
ask $((N + 1)) DBSIZE

say "5. kill -9 the server (pid $pid): no shutdown, no chance to save anything"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
if cli ping >/dev/null 2>&1; then fail "the server still answers after kill -9"; fi
echo "   the server is gone; its heap stays in the pool as a dead segment"

say "6. restart it: ckpt_open copies the latest checkpoint into a new segment, mapped at the same address"
t0=$(now_ms)
start
t1=$(now_ms)
log 'restarted from'
echo "   from exec to answering PING: $((t1 - t0)) ms"

say "7. is every key back?"
ask $N DBSIZE
for i in 0 12345 99999; do
	ask value:$i GET key:$i
done
ask "" GET unsaved
echo "   (unsaved was written after the checkpoint: gone, as expected)"
# check all N with MGET, 10,000 keys a call
bad=0
i=0
while [ $i -lt $N ]; do
	j=$((i + 10000 < N ? i + 10000 : N))
	cli mget $(seq -f 'key:%.0f' $i $((j - 1))) >"$dir/got" || fail "MGET failed"
	seq -f 'value:%.0f' $i $((j - 1)) | cmp -s - "$dir/got" ||
		{ echo "   MISMATCH in key:$i..key:$((j - 1))"; bad=1; }
	i=$j
done
if [ $bad -eq 0 ] && [ "$(cli dbsize)" = $N ]; then
	echo "   checked with MGET: all $N keys are back, each with its value"
else
	fail "keys are missing or wrong after the restart"
fi

say "8. what the pool holds: ckpt-inspect list"
run "$inspect" list "$pool"

say "9. the latest checkpoint's heap: ckpt-inspect heap latest --summary"
run "$inspect" heap "$pool" latest --summary

say "10. SHUTDOWN: kvstore checkpoints once more and exits"
cli shutdown >/dev/null 2>&1 || true   # the server closes the connection: no reply to check
rc=0
wait "$pid" || rc=$?
pid=
[ $rc -eq 0 ] || fail "kvstore exited with status $rc after SHUTDOWN"
log '(shutdown) taken'
echo
echo "demo done: the pool was in $dir (removed now)"
