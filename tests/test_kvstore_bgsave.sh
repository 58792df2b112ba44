#!/bin/sh
# test_kvstore_bgsave -- BGSAVE while clients write: redis-benchmark runs
# SETs of random keys and a redis-cli --pipe writes seq:0, seq:1, ... in
# order, while BGSAVE checkpoints through a forked child. After kill -9 and
# a restart from that checkpoint, the dataset must be the one of a single
# instant: the hash table is consistent (--check), the known keys are all
# there, and the seq keys present are exactly a prefix seq:0..seq:K-1 (a
# checkpoint torn by concurrent writes would show holes or a later key).
#   sh test_kvstore_bgsave.sh KVSTORE CKPT_INSPECT
KVSTORE=$1 INSPECT=$2
. "$(dirname "$0")/test_kvstore_lib.sh"
command -v redis-benchmark >/dev/null ||
	die "redis-benchmark not found: scripts/deps.sh installs it (Debian package redis-tools)"
M=${KV_TEST_SEQ:-300000}

start_kv --checkpoint-every 0
load_keys 0 49999

echo "== writers: redis-benchmark (random SETs) and seq:0..seq:$((M - 1)) in order"
redis-benchmark -s "$SOCK" -t set -n 400000 -r 1000000 -c 8 -P 8 -q >"$T/bench.out" 2>&1 &
benchpid=$!
awk -v m=$M 'BEGIN { for (i = 0; i < m; i++) { k = "seq:" i; v = i "";
	printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }' |
	timeout 120 redis-cli -s "$SOCK" --pipe >"$T/seq.out" 2>&1 &
seqpid=$!
bgpids="$benchpid $seqpid"
i=0
until [ "$(cli exists seq:1000)" = 1 ]; do
	i=$((i + 1))
	[ $i -lt 1000 ] || die "the seq writer never started"
	sleep 0.01
done

echo "== BGSAVE during the writes"
before=$(info_field checkpoints_taken)
r=$(cli bgsave)
[ "$r" = "Background saving started" ] || fail "BGSAVE answered '$r'"
r2=$(cli bgsave)
case "$r2" in
*"already in progress"*|"Background saving started") ;;   # the first may be done already
*) fail "a second BGSAVE answered '$r2'" ;;
esac
wait_bgsave
[ "$(info_field rdb_last_bgsave_status)" = ok ] || fail "rdb_last_bgsave_status is not ok"
[ "$(info_field checkpoints_taken)" -gt "$before" ] || fail "checkpoints_taken did not grow"
grep -q "background checkpoint [0-9]* done" "$LOG" || fail "no 'background checkpoint done' log line"
wait $benchpid || fail "redis-benchmark failed: $(tail -c 300 "$T/bench.out")"
wait $seqpid || fail "the seq writer failed: $(cat "$T/seq.out")"
bgpids=
grep -q "errors: 0, replies: $M" "$T/seq.out" || fail "seq writer: $(tail -n 1 "$T/seq.out")"
live_keys=$(cli dbsize)
echo "   $live_keys keys when killed"
kill9_kv

echo "== restart from the BGSAVE checkpoint"
start_kv --checkpoint-every 0 --check
grep -q "check: hash table consistent" "$LOG" || fail "--check did not pass"
n=$(cli dbsize)
check_keys 0 49999
# seq keys present: must be seq:0..seq:K-1, each with its number
i=0 K=-1 bad=0
while [ $i -lt $M ]; do
	j=$((i + 9999 < M - 1 ? i + 9999 : M - 1))
	cli mget $(seq -f 'seq:%.0f' $i $j) >"$T/mget"
	r=$(awk -v base=$i -v K=$K '
		$0 != "" { if (K >= 0 || $0 != base + NR - 1) { print "bad " base + NR - 1; exit } next }
		K < 0 { K = base + NR - 1 }
		END { if (K >= 0) print "end " K }' "$T/mget")
	case "$r" in
	bad*) fail "seq keys are not a prefix: ${r#bad } is out of place (K=$K)"; bad=1; break ;;
	end*) K=${r#end } ;;
	esac
	i=$((j + 1))
done
[ $K -lt 0 ] && K=$M
echo "   restarted with $n keys; seq keys: exactly seq:0..seq:$((K - 1)) (of $M written)"
[ $bad -eq 0 ] && [ $K -ge 1000 ] || fail "the checkpoint holds $K seq keys, but seq:1000 existed before BGSAVE"
[ "$n" -le "$live_keys" ] || fail "more keys after the restart ($n) than when killed ($live_keys)"
stop_kv
"$INSPECT" verify "$POOL" >"$T/verify" 2>&1 || { fail "ckpt-inspect verify"; cat "$T/verify"; }
finish
