#!/bin/sh
# run-kvstore-rb.sh -- samples/kvstore against redis-server with the stock
# redis-benchmark, SET, GET, MSET (10 keys) and PING (inline and multibulk),
# without pipelining and with -P 16 (docs/BENCHMARKS.md, "kvstore vs
# redis-server: redis-benchmark"). Both servers run side by side for the
# whole run, each on its own Unix socket, with persistence off (redis:
# --save "" --appendonly no; kvstore: --checkpoint-every 0). Each test is
# one redis-benchmark command pointed at one server and at once at the
# other (kvstore first in odd rounds, redis first in even ones), so the two
# runs of a pair see the same load on a shared machine. Per test: the
# medians of the rounds, their ratio kvstore / redis, the median of the
# ratios of the pairs, and each server's CPU time (user + system, from
# /proc/PID/stat) per request, which other load on the machine moves less
# than throughput.
#
# usage: bench/run-kvstore-rb.sh [--smoke] [--build DIR] [--rounds N]
#                                [--requests N] [--clients N] [--value BYTES]
#   --value: redis-benchmark's -d, the size of SET's values (3).
#   --smoke: a seconds-long run (CI); prints, asserts nothing.
# Installs redis-server (Debian) if it is missing.
set -eu
build=build
rounds=5
requests=
clients=50
value=3
smoke=0
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1 ;;
	--build) build=$2; shift ;;
	--rounds) rounds=$2; shift ;;
	--requests) requests=$2; shift ;;
	--clients) clients=$2; shift ;;
	--value) value=$2; shift ;;
	*) echo "usage: $0 [--smoke] [--build DIR] [--rounds N] [--requests N] [--clients N] [--value BYTES]" >&2
	   exit 2 ;;
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
[ $smoke = 0 ] || { rounds=1; requests=${requests:-10000}; }
# requests per test: enough for a second or more of each
n1=${requests:-200000}
n16=${requests:-1000000}

D=$(mktemp -d /var/tmp/ckpt-bench-kvrb.XXXXXX)
kvpid= rdpid=
trap 'for p in $kvpid $rdpid; do kill -9 $p 2>/dev/null; done; rm -rf "$D"' EXIT
wait_pong() {
	i=0
	until redis-cli -s "$1" ping 2>/dev/null | grep -q PONG; do
		i=$((i + 1)); [ $i -lt 2000 ] || { echo "server on $1 did not start" >&2; exit 1; }
		sleep 0.01
	done
}
"$KVSTORE" --pool "$D/kv.pool" --port 0 --unixsocket "$D/kv.sock" --checkpoint-every 0 \
	--heap-size 2G 2>"$D/kv.log" &
kvpid=$!
redis-server --port 0 --unixsocket "$D/redis.sock" --save "" --appendonly no --dir "$D" \
	--logfile "$D/redis.log" --daemonize no &
rdpid=$!
wait_pong "$D/kv.sock"
wait_pong "$D/redis.sock"

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# cpu_ticks PID -- user + system time of a process, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# bench SERVER TEST P N -- one redis-benchmark run; appends
# "server op P rps cpu-us-per-request"
bench() {
	[ "$1" = kv ] && pid=$kvpid || pid=$rdpid
	t0=$(cpu_ticks $pid)
	redis-benchmark -s "$D/$1.sock" -t "$2" -n "$4" -r 1000000 -c "$clients" \
		-d "$value" -P "$3" -q 2>/dev/null |
		tr '\r' '\n' | sed -n 's/^\([A-Z_]*\)[^:]*: \([0-9.]*\) requests per second.*/\1 \2/p' \
		>"$D/one.txt"
	us=$(echo "$t0 $(cpu_ticks $pid) $hz $4" | awk '{ printf "%.3f", ($2 - $1) * 1e6 / $3 / $4 }')
	while read -r op rps; do echo "$1 $op P$3 $rps $us"; done <"$D/one.txt" >>"$D/rps.txt"
}

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cpus, kernel $(uname -r);" \
	"$(redis-server --version | cut -d' ' -f1-3)"
echo "command: redis-benchmark -s SOCK -t TEST -n N -r 1000000 -c $clients -d $value -P {1,16} -q" \
	"for TEST in set get mset ping_inline ping_mbulk; N = $n1 (P1), $n16 (P16);" \
	"$rounds rounds, kvstore and redis back to back per test, order swapped every round"
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) = 1 ]; then order="kv redis"; else order="redis kv"; fi
	for p in 1 16; do
		[ $p = 1 ] && n=$n1 || n=$n16
		for t in set get mset ping_inline ping_mbulk; do
			for srv in $order; do bench $srv $t $p $n; done
		done
	done
	echo "round $r done"
done
printf '%-12s %-4s %14s %14s %7s %8s %9s %9s   %s\n' test pipe "kvstore req/s" "redis req/s" \
	ratio "pair med" "kv us/req" "rd us/req" "ratios of the pairs, by round"
for p in P1 P16; do
	for op in SET GET MSET PING_INLINE PING_MBULK; do
		k=$(awk -v o=$op -v p=$p '$1 == "kv" && $2 == o && $3 == p { print $4 }' "$D/rps.txt" | median)
		r=$(awk -v o=$op -v p=$p '$1 == "redis" && $2 == o && $3 == p { print $4 }' "$D/rps.txt" | median)
		per=$(awk -v o=$op -v p=$p '$2 == o && $3 == p { v[$1, ++n[$1]] = $4 }
			END { for (i = 1; i <= n["kv"]; i++) printf "%.2f ", v["kv", i] / v["redis", i] }' "$D/rps.txt")
		pmed=$(echo "$per" | tr ' ' '\n' | grep . | median)
		kc=$(awk -v o=$op -v p=$p '$1 == "kv" && $2 == o && $3 == p { print $5 }' "$D/rps.txt" | median)
		rc=$(awk -v o=$op -v p=$p '$1 == "redis" && $2 == o && $3 == p { print $5 }' "$D/rps.txt" | median)
		printf '%-12s %-4s %14.0f %14.0f %7.2f %8.2f %9.2f %9.2f   %s\n' $op $p "$k" "$r" \
			"$(echo "$k $r" | awk '{ print $2 ? $1 / $2 : 0 }')" "$pmed" "$kc" "$rc" "$per"
	done
done
