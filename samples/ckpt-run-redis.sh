#!/bin/sh
# ckpt-run-redis.sh -- the point of ckpt-run in one run: the stock Debian
# redis-server, not rebuilt, runs with its heap in a libckpt pool. It takes
# writes, saves in the background with BGSAVE (its fork child works on a
# segment of its own), and is killed with kill -9. Its heap is still in the
# pool: ckpt-inspect lists the dead segment and dumps the bytes of the key
# and the value at the addresses redis-server used.
# Every step is checked: if one fails, the sample says which and exits 1.
# usage: samples/ckpt-run-redis.sh [BUILD_DIR]
set -eu
build=${1:-build}
run=$build/tools/ckpt-run
inspect=$build/tools/ckpt-inspect
for f in "$run" "$inspect"; do
	[ -x "$f" ] || { echo "sample: $f is not built (cmake --build $build)" >&2; exit 1; }
done
for p in redis-server redis-cli python3; do
	command -v $p >/dev/null ||
		{ echo "sample: $p is missing: run scripts/deps.sh" >&2; exit 1; }
done
dir=$(mktemp -d /var/tmp/ckpt-run-redis.XXXXXX)
pool=$dir/redis.pool
sock=$dir/redis.sock
runpid=
cleanup() {
	rc=$?
	[ -z "$runpid" ] || kill -9 "$runpid" 2>/dev/null || true
	[ $rc -eq 0 ] || { echo "sample: FAILED; redis-server's log:" >&2; cat "$dir/redis.log" >&2 || true; }
	rm -rf "$dir"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
die() { echo "sample: $*" >&2; exit 1; }

step "redis-server under ckpt-run, heap in $pool"
"$run" --pool "$pool" -- redis-server --port 0 --unixsocket "$sock" --save "" --dir "$dir" \
	>"$dir/redis.log" 2>&1 &
runpid=$!
i=0
until redis-cli -s "$sock" ping >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -lt 500 ] || die "redis-server did not start"; sleep 0.02
done
redis-cli -s "$sock" set greeting "hello from a dead heap"
for i in $(seq 1 1000); do echo "SET key:$i value:$i"; done | redis-cli -s "$sock" >/dev/null

step "BGSAVE: redis-server forks; the child writes dump.rdb on its own segment"
redis-cli -s "$sock" bgsave
i=0
while [ "$(redis-cli -s "$sock" info persistence | tr -d '\r' | sed -n 's/^rdb_bgsave_in_progress://p')" != 0 ]; do
	i=$((i + 1)); [ $i -lt 3000 ] || die "BGSAVE never finished"; sleep 0.02
done
redis-cli -s "$sock" info persistence | tr -d '\r' | grep '^rdb_last_bgsave_status:ok' ||
	die "BGSAVE failed"

pid=$(redis-cli -s "$sock" info server | tr -d '\r' | sed -n 's/^process_id://p')
step "kill -9 $pid"
kill -9 "$pid"
wait "$runpid" 2>/dev/null || true
runpid=

step "ckpt-inspect list: the killed server's heap is a dead segment (a short BGSAVE child runs young on a segment of its own and leaves none: ckpt-run --durable-after)"
"$inspect" list "$pool"
seg=$("$inspect" list "$pool" --json | python3 -c '
import json, sys
for s in json.load(sys.stdin)["segments"]:
    if s["state"] == "dead" and s["pid"] == int(sys.argv[1]) and s["parent"] is None:
        print(s["segment"])' "$pid")
[ -n "$seg" ] || die "no dead segment of pid $pid"

step "ckpt-inspect dump: the key and its value, where redis-server had them"
"$inspect" heap "$pool" "seg:$seg" --json >"$dir/heap.json"
found=$(python3 - "$inspect" "$pool" "seg:$seg" "$dir/heap.json" <<'PY'
import json, subprocess, sys
inspect, pool, ref, heapjson = sys.argv[1:]
h = json.load(open(heapjson))
blocks = [b for b in h["blocks"] if b["state"] == "allocated"]
lo = int(h["base"], 16)
hi = max(int(b["address"], 16) + b["size"] for b in blocks)
d = json.loads(subprocess.run([inspect, "dump", pool, ref, hex(lo), str(hi - lo), "--json"],
                              capture_output=True, check=True).stdout)
mem = bytes.fromhex(d["data"])
for want in (b"greeting", b"hello from a dead heap"):
    at = mem.find(want)
    while at >= 0:
        a = lo + at
        b = [b for b in blocks if int(b["address"], 16) <= a < int(b["address"], 16) + b["size"]]
        if b and b[0]["size"] <= 4096:
            print(b[0]["address"], b[0]["size"])
            break
        at = mem.find(want, at + 1)
PY
)
[ "$(echo "$found" | grep -c .)" = 2 ] || die "the key or the value is not in the dead heap"
echo "$found" | while read -r addr size; do
	"$inspect" dump "$pool" "seg:$seg" "$addr" "$size"
done
step "sample done: redis-server's data, read back from its heap after kill -9"
