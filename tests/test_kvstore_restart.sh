#!/bin/sh
# test_kvstore_restart -- kvstore as a user runs it: 100,000 known keys
# loaded with redis-cli --pipe, SAVE, more writes, kill -9, restart: every
# saved key is back with its value, nothing written after the checkpoint
# is; then again across a periodic checkpoint and a clean SHUTDOWN, and the
# pool passes ckpt-inspect verify.
#   sh test_kvstore_restart.sh KVSTORE CKPT_INSPECT
KVSTORE=$1 INSPECT=$2
. "$(dirname "$0")/test_kvstore_lib.sh"
N=${KV_TEST_KEYS:-100000}

echo "== load $N keys, SAVE, write more, kill -9"
start_kv --checkpoint-every 0
load_keys 0 $((N - 1))
[ "$(cli dbsize)" = "$N" ] || fail "DBSIZE $(cli dbsize) after loading $N keys"
[ "$(cli save)" = OK ] || fail "SAVE did not answer OK"
load_keys $N $((N + 999))                       # after the checkpoint: lost
cli del key:0 key:1 >/dev/null                  # likewise: they come back
kill9_kv

echo "== restart: all $N keys back, nothing after SAVE"
start_kv --checkpoint-every 0 --check
grep -q "restarted from the latest checkpoint of $POOL in .* ms: $N keys" "$LOG" ||
	fail "no restart log line with the time and $N keys"
grep -q "check: hash table consistent, $N keys" "$LOG" || fail "--check did not pass"
[ "$(cli dbsize)" = "$N" ] || fail "DBSIZE $(cli dbsize) after restart, want $N"
check_keys 0 $((N - 1))
[ "$(cli exists key:$N key:$((N + 999)))" = 0 ] || fail "keys written after SAVE survived"
[ "$(info_field restarted_from_checkpoint)" = 1 ] || fail "INFO: restarted_from_checkpoint"
[ "$(info_field last_restart_keys)" = "$N" ] || fail "INFO: last_restart_keys"

echo "== the periodic checkpoint (every 1 s) keeps later writes"
kill9_kv
start_kv --checkpoint-every 1
cli flushall >/dev/null
load_keys 0 9999
i=0
until [ "$(info_field rdb_changes_since_last_save)" = 0 ] && [ "$(info_field rdb_bgsave_in_progress)" = 0 ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { fail "no periodic checkpoint within 10 s"; break; }
	sleep 0.1
done
kill9_kv
start_kv --checkpoint-every 0 --check
[ "$(cli dbsize)" = 10000 ] || fail "DBSIZE $(cli dbsize) after the periodic checkpoint, want 10000"
check_keys 0 9999

echo "== SHUTDOWN checkpoints; the next start finds everything"
cli set after-shutdown-test yes >/dev/null
stop_kv
start_kv --checkpoint-every 0
[ "$(cli get after-shutdown-test)" = yes ] || fail "a key set before SHUTDOWN is missing"
stop_kv

echo "== ckpt-inspect"
"$INSPECT" list "$POOL" >"$T/list" || fail "ckpt-inspect list failed"
grep -q shutdown "$T/list" || fail "ckpt-inspect list shows no shutdown checkpoint"
"$INSPECT" heap "$POOL" latest --summary >"$T/heap" || fail "ckpt-inspect heap --summary failed"
"$INSPECT" verify "$POOL" >"$T/verify" 2>&1 || { fail "ckpt-inspect verify"; cat "$T/verify"; }
finish
