#!/bin/sh
# test_remote_redis.sh -- remote checkpoints on a redis-server this test
# starts on loopback (scenarios in test_remote_lib.sh).
#   test_remote_redis.sh REMOTE_WORKLOAD CKPT_REMOTE CKPT_INSPECT
set -u
WL=$1 REMOTE=$2 INSPECT=$3
command -v redis-server >/dev/null || {
	echo "SKIP: redis-server not installed (scripts/deps.sh installs redis-server); PASS"
	exit 0
}
T=$(mktemp -d "${CKPT_TEST_TMPDIR:-/var/tmp}/ckpt-remote-redis-XXXXXX")
pids=
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

# start_redis PORT [ARGS] -- a server on 127.0.0.1:PORT, answering PING
start_redis() {
	port=$1
	shift
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$T" "$@" >"$T/redis-$port.log" 2>&1 &
	pids="$pids $!"
	i=0
	until redis-cli -p "$port" ${RPASS:+-a "$RPASS"} --no-auth-warning ping 2>/dev/null | grep -q PONG; do
		kill -0 "$!" 2>/dev/null || return 1
		i=$((i + 1)); [ $i -lt 500 ] || return 1
		sleep 0.02
	done
}
# a free port: try a few
PORT=
for try in 1 2 3 4 5 6 7 8; do
	p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000))
	if start_redis "$p"; then PORT=$p; break; fi
done
[ -n "$PORT" ] || { echo "FAIL: cannot start redis-server"; exit 1; }
URL=redis://127.0.0.1:$PORT/3
DOWN_RETRIES=2
DOWN_URL=redis://127.0.0.1:1/0
DOWN_ENV=
# a second server that wants a password
APORT=
for try in 1 2 3 4 5 6 7 8; do
	p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000))
	if RPASS=s3cret start_redis "$p" --requirepass s3cret; then APORT=$p; break; fi
done
[ -n "$APORT" ] || { echo "FAIL: cannot start the second redis-server"; exit 1; }
BAD_AUTH_URL=redis://:wrong@127.0.0.1:$APORT/0
BAD_AUTH_ENV=CKPT_REMOTE_RETRIES=0

rcli() { redis-cli -p "$PORT" -n 3 "$@"; }
store_set() { rcli -x set "$1" <"$2" >/dev/null; }
store_get() { rcli --raw get "$1" | head -c -1 >"$2"; }
store_del() { rcli del "$1" >/dev/null; }
store_count() { rcli --scan --pattern "$1*" | wc -l; }
store_dump() { rcli --scan | sed 's/^/GET /' | rcli --raw >"$1" 2>&1; }

. "$(dirname "$0")/test_remote_lib.sh"
run_scenarios
sealed_scenario

# the password is accepted when right
"$REMOTE" push "$A" latest "redis://:s3cret@127.0.0.1:$APORT/0" >/dev/null &&
	echo "ok: password accepted" || fail "push with the right password"
grep -q "s3cret" "$A.remote" && fail "POOL.remote records the password"

# a chunk the store cannot give (here: a key of another type) fails the
# pull from the fetch thread with the store's reason, after the retries;
# the half-made pool is removed
chunk=ckpt.c.$(chunk_of "$left")
rcli del "$chunk" >/dev/null
rcli rpush "$chunk" x >/dev/null
rm -f "$T/hostC/w.pool"
if CKPT_REMOTE_RETRIES=1 "$REMOTE" pull "$URL" "$left" "$T/hostC/w.pool" 2>"$T/err"; then
	fail "pull with an unreadable chunk succeeded"
else
	grep -q "WRONGTYPE" "$T/err" && ok "unreadable chunk: $(head -c 160 "$T/err")" ||
		fail "unclear: $(cat "$T/err")"
fi
[ ! -e "$T/hostC/w.pool" ] || fail "failed pull left a pool"
rcli del "$chunk" >/dev/null

# per-pool configuration (POOL.remote.url): used without CKPT_REMOTE,
# which overrides it ("none": no push from that process)
P=$T/hostP/app.pool
mkdir -p "$T/hostP"
"$WL" create "$P" 32 1 >/dev/null || fail "create (per-pool config)"
[ "$("$REMOTE" config "$P")" = none ] || fail "a new pool has a remote store"
"$REMOTE" config "$P" "$URL" >/dev/null || fail "config POOL URL"
[ "$("$REMOTE" config "$P" --json | jq -r .url)" = "$URL" ] || fail "config does not print the URL"
[ "$(stat -c %a "$P.remote.url")" = 600 ] || fail "POOL.remote.url is not mode 0600"
id=$(env -u CKPT_REMOTE CKPT_REMOTE_TOOL=$REMOTE "$WL" mutate "$P" 10) || fail "checkpoint (per-pool config)"
wait_state "$P" "$id" pushed && ok "background push to the pool's own store" ||
	fail "no push to the pool's own store"
id=$(CKPT_REMOTE=none CKPT_REMOTE_TOOL=$REMOTE "$WL" mutate "$P" 10) || fail "checkpoint (CKPT_REMOTE=none)"
grep -q "^$id " "$P.remote" && fail "CKPT_REMOTE=none did not override the pool's store"
"$REMOTE" config "$P" none >/dev/null && [ ! -e "$P.remote.url" ] || fail "config POOL none"
id=$(env -u CKPT_REMOTE CKPT_REMOTE_TOOL=$REMOTE "$WL" mutate "$P" 10) || fail "checkpoint (no store)"
grep -q "^$id " "$P.remote" && fail "a pool without a store pushed"
"$REMOTE" config "$P" ftp://x 2>"$T/err"
[ $? -eq 1 ] && grep -q "expected" "$T/err" && [ ! -e "$P.remote.url" ] || fail "bad URL accepted by config"
"$REMOTE" config "$T/hostP/nopool" "$URL" 2>/dev/null && fail "config of a missing pool succeeded"

# POOL.remote stays bounded: a writer that finds it past 1 MiB keeps the
# last event of each of the 1024 checkpoints last seen; writers racing
# with the compaction lose no line (their checkpoints' seeded "failed"
# would show)
ids=$("$INSPECT" list "$A" --json | jq -r '.segments[] | select(.state == "checkpoint") | .checkpoint')
python3 - "$A.remote" $ids <<'PY'
import sys
path, ids = sys.argv[1], sys.argv[2:]
with open(path, 'a') as f:
    for k in range(10000):
        f.write('%d pushed %d redis://127.0.0.1:1/0 ckpt.m.%032x.%d.%016x\n'
                % (100000 + k % 3000, 1796283816249718500 + k, k, k, k))
    for i in ids:
        f.write('%s failed 1796283816249718500 redis://127.0.0.1:1/0 seeded\n' % i)
PY
[ "$(stat -c %s "$A.remote")" -gt 1048576 ] || fail "the seeded POOL.remote is too small"
pushes=
for i in $ids; do
	"$REMOTE" push "$A" "$i" "$URL" >/dev/null &
	pushes="$pushes $!"
done
for p in $pushes; do wait "$p" || fail "push $p"; done
size=$(stat -c %s "$A.remote")
lines=$(wc -l <"$A.remote")
distinct=$(cut -d' ' -f1 "$A.remote" | sort -u | wc -l)
# (the pushes that came after the compaction appended a line each)
[ "$size" -lt 262144 ] && [ "$lines" -le $((distinct + 4)) ] && [ "$distinct" -le 1024 ] &&
	ok "POOL.remote compacted to $size bytes, $lines checkpoints" ||
	fail "POOL.remote not compacted: $size bytes, $lines lines, $distinct checkpoints"
# 101500's last event is older than those of 1024 other checkpoints
grep -q "^101500 " "$A.remote" && fail "compaction kept an old checkpoint's event"
grep -q "^100999 " "$A.remote" || fail "compaction dropped a recent checkpoint's event"
[ ! -e "$A.remote.compact" ] || fail "compaction left its temporary file"
for i in $ids; do
	"$INSPECT" list "$A" --json | jq -e ".segments[] | select(.checkpoint == $i) |
		.remote.state == \"pushed\"" >/dev/null || fail "checkpoint $i lost its push state"
done

# last (it stops the server): the store going down during a lazy pull
stop_store() { rcli shutdown nosave >/dev/null 2>&1; }
lazy_pull_scenario
lazy_pull_store_down stop_store

[ $fails -eq 0 ] && echo PASS || echo "FAIL: $fails failures"
