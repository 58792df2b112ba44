#!/bin/sh
# run-kvstore-bgsave.sh -- BGSAVE fork pause (or, with --save, the time of
# a foreground SAVE) of samples/kvstore against redis-server holding the
# same data, in one run: KEYS keys of VALUE bytes
# (random, the same bytes loaded into both with redis-cli --pipe), then
# ROUNDS background saves each, alternating kvstore, redis, kvstore, ...,
# each server's own latest_fork_usec read from INFO after every BGSAVE has
# finished. kvstore runs in the fork mode of CKPT_FORK_MODE (default: the
# pool's, auto); a few writes to 1% of the keys precede every BGSAVE of both.
#
# usage: bench/run-kvstore-bgsave.sh [--build DIR] [--keys N] [--value BYTES]
#                                    [--rounds N] [--dir DIR] [--save] [--fifo]
# --save: time each SAVE from the client (redis-cli returns when it is done)
# instead of reading latest_fork_usec.
# After the load and again after the last round it prints each server's
# resident memory and page tables (VmRSS and VmPTE of /proc/PID/status):
# the fork copies page tables, so the pause follows VmPTE.
# --fifo: both servers (every thread) run SCHED_FIFO during the rounds, so
# no other task on the machine preempts a fork: the pause is the kernel's
# work alone (the servers are idle between commands; their children, the
# saves, run as ordinary tasks: reset on fork).
set -eu
build=build keys=200000 value=1000 rounds=5 dir=/var/tmp save=0 fifo=0
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift ;;
	--keys) keys=$2; shift ;;
	--value) value=$2; shift ;;
	--rounds) rounds=$2; shift ;;
	--dir) dir=$2; shift ;;
	--save) save=1 ;;
	--fifo) fifo=1 ;;
	*) echo "usage: $0 [--build DIR] [--keys N] [--value BYTES] [--rounds N] [--dir DIR] [--save] [--fifo]" >&2
	   exit 2 ;;
	esac
	shift
done
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
T=$(mktemp -d "$dir/kv-bgsave-XXXXXX")
KP=$((20000 + $$ % 20000)) RP=$((KP + 1))
cleanup() {
	redis-cli -p "$KP" shutdown nosave >/dev/null 2>&1 || true
	redis-cli -p "$RP" shutdown nosave >/dev/null 2>&1 || true
	sleep 0.5
	rm -rf "$T"
}
trap cleanup EXIT
heap=$(( (keys * (value + 200)) / 1048576 * 2 + 256 ))M
"$build/samples/kvstore" --pool "$T/kv.pool" --port "$KP" --heap-size "$heap" \
	--checkpoint-every 0 >"$T/kv.log" 2>&1 &
kvpid=$!
redis-server --port "$RP" --dir "$T" --save "" --appendonly no --daemonize no \
	>"$T/redis.log" 2>&1 &
for p in $KP $RP; do
	for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
python3 - "$keys" "$value" >"$T/load.resp" <<'PY'
import os, sys
n, v = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
for i in range(n):
    k = b"key:%d" % i
    val = os.urandom(v // 2).hex().encode()[:v]
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(val), val))
PY
redis-cli -p "$KP" --pipe <"$T/load.resp" >/dev/null
redis-cli -p "$RP" --pipe <"$T/load.resp" >/dev/null
rdpid=$(redis-cli -p "$RP" info server | tr -d '\r' | awk -F: '/^process_id/ {print $2}')
memory() {  # when -> one line: VmRSS and VmPTE of both, and the ratios
	set -- "$1" $(awk '/^VmRSS|^VmPTE/ {print $2}' /proc/$kvpid/status) \
		$(awk '/^VmRSS|^VmPTE/ {print $2}' /proc/$rdpid/status)
	awk -v w="$1" -v kr="$2" -v kp="$3" -v rr="$4" -v rp="$5" 'BEGIN {
		printf "memory %s: kvstore VmRSS %d MiB VmPTE %d KiB; redis VmRSS %d MiB VmPTE %d KiB; " \
		       "ratios %.2f %.2f\n", w, kr / 1024, kp, rr / 1024, rp, kr / rr, kp / rp }'
}
# touch 1% of the keys, as a busy service does between saves
touch_some() {
	i=0
	while [ $i -lt $((keys / 100)) ]; do
		echo "SET key:$(( (i * 7919 + $2) % keys )) round$2"
		i=$((i + 1))
	done | redis-cli -p "$1" >/dev/null
}
bgsave() {  # port -> prints latest_fork_usec
	redis-cli -p "$1" bgsave >/dev/null
	for _ in $(seq 600); do
		st=$(redis-cli -p "$1" info persistence | tr -d '\r' | awk -F: '/^rdb_bgsave_in_progress/ {print $2}')
		[ "$st" = 0 ] && break
		sleep 0.1
	done
	redis-cli -p "$1" info | tr -d '\r' | awk -F: '/^latest_fork_usec/ {print $2}'
}
echo "# kvstore BGSAVE vs redis-server: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, kernel $(uname -r), load $(cut -d" " -f1-3 /proc/loadavg)"
echo "# $keys keys x $value B, fork mode ${CKPT_FORK_MODE:-auto}; latest_fork_usec of each BGSAVE, alternating"
save_us() {  # port -> microseconds the SAVE took, seen by the client
	t0=$(date +%s%N)
	redis-cli -p "$1" save >/dev/null
	echo $(( ($(date +%s%N) - t0) / 1000 ))
}
memory "after load"
if [ $fifo = 1 ]; then
	chrt -a -f -R -p 50 "$kvpid" && chrt -a -f -R -p 50 "$rdpid"
	echo "# both servers SCHED_FIFO 50, reset on fork (chrt -a -f -R) during the rounds"
fi
measure=bgsave
[ $save = 1 ] && measure=save_us && echo "# SAVE wall time from the client (us), not latest_fork_usec"
kv="" rd=""
for r in $(seq "$rounds"); do
	touch_some "$KP" "$r"
	kv="$kv $($measure "$KP")"
	touch_some "$RP" "$r"
	rd="$rd $($measure "$RP")"
done
median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
memory "after the rounds"
mk=$(median "$kv") mr=$(median "$rd")
echo "kvstore $measure:$kv (median $mk)"
echo "redis   $measure:$rd (median $mr)"
awk -v a="$mk" -v b="$mr" 'BEGIN {printf "ratio kvstore/redis: %.2f\n", a / b}'
echo "# load at the end: $(cut -d" " -f1-3 /proc/loadavg)"
