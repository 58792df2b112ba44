#!/bin/sh
# run-kvstore.sh -- samples/kvstore against redis-server on the same
# machine, in one run (docs/BENCHMARKS.md, "Key-value sample vs Redis"):
#
#  1. throughput: redis-benchmark SET and GET, the same client settings for
#     both servers (Unix socket, -c 50, random keys), without and with
#     pipelining; rounds alternate kvstore, redis, kvstore, redis ...;
#     medians and the ratio. Redis runs with persistence off
#     (--save "" --appendonly no) and kvstore with --checkpoint-every 0:
#     neither writes anything to disk during the measurement.
#  2. restart with 1 GiB of data (1,048,576 keys of 1 KiB random hex values,
#     the same bytes loaded into both with redis-cli --pipe): kvstore restarting from
#     its checkpoint (SAVE, kill -9, start) vs redis-server loading its RDB
#     (SAVE, SHUTDOWN NOSAVE, start). Figures: each server's own log line
#     (kvstore "restarted ... in X ms", redis "DB loaded from disk: X
#     seconds") and the wall time from exec to the first PONG; warm (files
#     in the page cache) and cold (after drop_caches).
#
# usage: bench/run-kvstore.sh [--smoke] [--build DIR] [--rounds N]
#   --smoke: seconds-long run on small data (CI); prints, asserts nothing.
# Installs redis-server (Debian) if it is missing.
set -eu
build=build
rounds=3
smoke=0
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1 ;;
	--build) build=$2; shift ;;
	--rounds) rounds=$2; shift ;;
	*) echo "usage: $0 [--smoke] [--build DIR] [--rounds N]" >&2; exit 2 ;;
	esac
	shift
done
KVSTORE=$build/samples/kvstore
[ -x "$KVSTORE" ] || { echo "$KVSTORE is not built" >&2; exit 1; }
if ! command -v redis-server >/dev/null; then
	echo "installing redis-server (Debian package) ..."
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }
fi
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing: scripts/deps.sh" >&2; exit 1; }

if [ $smoke = 1 ]; then
	NREQ=20000 KEYS=20000 VAL=100 rounds=1
else
	NREQ=${KV_BENCH_REQUESTS:-1000000} KEYS=${KV_BENCH_KEYS:-1048576} VAL=${KV_BENCH_VALUE:-1024}
fi
D=$(mktemp -d /var/tmp/ckpt-bench-kv.XXXXXX)
spid=
trap '[ -n "$spid" ] && kill -9 $spid 2>/dev/null; rm -rf "$D"' EXIT
S=$D/sock

wait_pong() {
	i=0
	until redis-cli -s "$S" ping 2>/dev/null | grep -q PONG; do
		i=$((i + 1)); [ $i -lt 6000 ] || { echo "server did not start" >&2; exit 1; }
		sleep 0.005
	done
}
now_ns() { date +%s%N; }
# start_kv POOL, start_redis DIR: background server on $S, wait for PONG;
# $ready_ms gets the time from exec to the first PONG
start_kv() {
	rm -f "$S"; t0=$(now_ns)
	"$KVSTORE" --pool "$1" --port 0 --unixsocket "$S" --checkpoint-every 0 \
		--heap-size 3G 2>>"$D/kv.log" &
	spid=$!; wait_pong; ready_ms=$(( ($(now_ns) - t0) / 1000000 ))
}
start_redis() {
	rm -f "$S"; t0=$(now_ns)
	redis-server --port 0 --unixsocket "$S" --save "" --appendonly no --dir "$1" \
		--dbfilename dump.rdb --logfile "$D/redis.log" --daemonize no &
	spid=$!; wait_pong; ready_ms=$(( ($(now_ns) - t0) / 1000000 ))
}
stop() { kill -9 $spid 2>/dev/null; wait $spid 2>/dev/null || true; spid=; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# -- 1. throughput ------------------------------------------------------------
echo "machine: $(nproc) cpus, kernel $(uname -r), $(redis-server --version | cut -d' ' -f3)"
echo "== throughput: redis-benchmark -s SOCK -t set,get -n $NREQ -r 1000000 -c 50 [-P 16], $rounds rounds"
for r in $(seq 1 "$rounds"); do
	for srv in kvstore redis; do
		rm -rf "$D/tp"; mkdir -p "$D/tp"
		if [ $srv = kvstore ]; then start_kv "$D/tp/pool"; else start_redis "$D/tp"; fi
		for p in 1 16; do
			redis-benchmark -s "$S" -t set,get -n "$NREQ" -r 1000000 -c 50 -P $p -q 2>/dev/null |
				tr '\r' '\n' | sed -n 's/^\(SET\|GET\): \([0-9.]*\) requests per second.*/\1 \2/p' |
				while read -r op rps; do echo "$srv $op P$p $rps"; done >>"$D/tp.txt"
		done
		stop
	done
done
printf '%-8s %-4s %16s %16s %8s\n' op pipe "kvstore req/s" "redis req/s" ratio
for p in P1 P16; do
	for op in SET GET; do
		k=$(awk -v o=$op -v p=$p '$1 == "kvstore" && $2 == o && $3 == p { print $4 }' "$D/tp.txt" | median)
		r=$(awk -v o=$op -v p=$p '$1 == "redis" && $2 == o && $3 == p { print $4 }' "$D/tp.txt" | median)
		printf '%-8s %-4s %16.0f %16.0f %8.2f\n' $op $p "$k" "$r" "$(echo "$k $r" | awk '{ print $1 / $2 }')"
	done
done

# -- 2. restart with KEYS x VAL bytes ------------------------------------------
echo "== restart: $KEYS keys of $VAL-byte values, loaded with redis-cli --pipe"
python3 - "$KEYS" "$VAL" >"$D/load.resp" <<'EOF'
import random, sys
n, size = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
rnd = random.Random(7)          # incompressible values: RDB's LZF gains nothing
for i in range(n):
    k = b"key:%d" % i
    v = rnd.randbytes(size // 2 + 1).hex().encode()[:size]
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
EOF
mkdir -p "$D/kv" "$D/redis"
start_kv "$D/kv/pool"
redis-cli -s "$S" --pipe <"$D/load.resp" | tail -n 1
redis-cli -s "$S" save >/dev/null
kv_keys=$(redis-cli -s "$S" dbsize)
stop
start_redis "$D/redis"
redis-cli -s "$S" --pipe <"$D/load.resp" | tail -n 1
redis-cli -s "$S" save >/dev/null
redis_mem=$(redis-cli -s "$S" info memory | tr -d '\r' | sed -n 's/^used_memory_human://p')
redis-cli -s "$S" shutdown nosave >/dev/null 2>&1 || true
wait $spid 2>/dev/null || true; spid=
rm -f "$D/load.resp"
echo "kvstore: $kv_keys keys, pool $(du -h "$D/kv/pool" | cut -f1) on disk;" \
	"redis: used_memory $redis_mem, RDB $(du -h "$D/redis/dump.rdb" | cut -f1)"

for mode in warm cold; do
	for r in $(seq 1 "$rounds"); do
		[ $mode = cold ] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
		start_kv "$D/kv/pool"
		kv_ms=$(grep 'restarted from' "$D/kv.log" | tail -n 1 | sed 's/.* in \([0-9.]*\) ms.*/\1/')
		n=$(redis-cli -s "$S" dbsize)
		[ "$n" = "$KEYS" ] || echo "kvstore restarted with $n keys, want $KEYS" >&2
		echo "kvstore $mode $kv_ms $ready_ms" >>"$D/rs.txt"
		stop                            # kill -9: the next start restarts again
		[ $mode = cold ] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
		start_redis "$D/redis"
		rd_ms=$(grep 'DB loaded from disk' "$D/redis.log" | tail -n 1 |
			sed 's/.*DB loaded from disk: \([0-9.]*\) seconds.*/\1/' | awk '{ print $1 * 1000 }')
		n=$(redis-cli -s "$S" dbsize)
		[ "$n" = "$KEYS" ] || echo "redis loaded $n keys, want $KEYS" >&2
		echo "redis $mode $rd_ms $ready_ms" >>"$D/rs.txt"
		redis-cli -s "$S" shutdown nosave >/dev/null 2>&1 || true
		wait $spid 2>/dev/null || true; spid=
	done
done
printf '%-6s %22s %22s %8s %22s %22s %8s\n' cache "kvstore restart ms" "redis RDB load ms" ratio \
	"kvstore exec->PONG ms" "redis exec->PONG ms" ratio
for mode in warm cold; do
	k=$(awk -v m=$mode '$1 == "kvstore" && $2 == m { print $3 }' "$D/rs.txt" | median)
	r=$(awk -v m=$mode '$1 == "redis" && $2 == m { print $3 }' "$D/rs.txt" | median)
	kp=$(awk -v m=$mode '$1 == "kvstore" && $2 == m { print $4 }' "$D/rs.txt" | median)
	rp=$(awk -v m=$mode '$1 == "redis" && $2 == m { print $4 }' "$D/rs.txt" | median)
	printf '%-6s %22.1f %22.1f %8.3f %22.0f %22.0f %8.3f\n' $mode "$k" "$r" \
		"$(echo "$k $r" | awk '{ print $1 / $2 }')" "$kp" "$rp" "$(echo "$kp $rp" | awk '{ print $1 / $2 }')"
done
echo "raw: $(tr '\n' ';' <"$D/rs.txt")"
