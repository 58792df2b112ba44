#!/bin/sh
# test_prefork -- the pre-forking sample as a user runs it: K workers on a
# Unix socket, each counting its requests in its own durable heap. While
# it runs, `ckpt-inspect list` shows each worker's live segment under the
# parent's; after SIGTERM each worker's final checkpoint holds exactly the
# requests it answered (read back with prefork --show and ckpt-inspect
# heap/dump); after kill -9 of the whole group the dead worker heaps stay,
# with their parent, for post-mortem inspection.
#   sh test_prefork.sh PREFORK CKPT_INSPECT
set -u
PREFORK=$1 INSPECT=$2
K=3
T=$(mktemp -d "${CKPT_TEST_TMPDIR:-/var/tmp}/ckpt-prefork-XXXXXX")
P=$T/pool S=$T/sock
pid=
fails=0
cleanup() {
	[ -n "$pid" ] && kill -s KILL -- -"$pid" 2>/dev/null
	[ $fails -ne 0 ] && { echo "--- prefork log"; cat "$T/log"; }
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
die() { fail "$*"; exit 1; }

# start -- run prefork in its own process group, wait until it is ready
start() {
	: >"$T/log"
	setsid "$PREFORK" --pool "$P" --unixsocket "$S" --workers $K --checkpoint-every 7 \
		2>>"$T/log" &
	pid=$!
	i=0
	until grep -q ready "$T/log" && [ "$(grep -c '"worker [0-9]* start"' "$T/log")" -ge $K ]; do
		i=$((i + 1))
		[ $i -lt 500 ] || die "prefork not ready"
		sleep 0.02
	done
}

# requests N -- N connections of 5 lines each; prints "worker W" per reply
requests() {
	python3 - "$S" "$1" <<'EOF'
import socket, sys
for c in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sys.argv[1])
    f = s.makefile("rw")
    for i in range(5):
        f.write("conn %d line %d\n" % (c, i))
        f.flush()
        r = f.readline()
        if not r.endswith("conn %d line %d\n" % (c, i)):
            sys.exit("bad reply %r" % r)
        print(" ".join(r.split()[:2]))
    s.close()
EOF
}

echo "== $K workers, 40 connections of 5 requests"
start
requests 40 >"$T/replies" || fail "requests failed"
[ "$(wc -l <"$T/replies")" = 200 ] || fail "$(wc -l <"$T/replies") replies, want 200"

echo "== ckpt-inspect list while it runs: a live segment per worker, under the parent's"
"$INSPECT" list "$P" --json >"$T/list.json" || fail "ckpt-inspect list --json"
python3 - "$T/list.json" "$pid" $K <<'EOF' || fail "live worker segments not shown under the parent"
import json, sys
d = json.load(open(sys.argv[1]))
segs = d["segments"]
parent = [s for s in segs if s["state"] == "live" and not s.get("busy") and s["pid"] == int(sys.argv[2])]
assert len(parent) == 1, "parent's live segment: %r" % parent
pseg = parent[0]["segment"]
workers = [s for s in segs if s["state"] == "live" and not s.get("busy") and s["parent"] == pseg]
assert len(workers) == int(sys.argv[3]), "live children of segment %d: %r" % (pseg, workers)
print("   parent segment %d; worker segments %s" % (pseg, [w["segment"] for w in workers]))
EOF
"$INSPECT" list "$P" | sed 's/^/   /'

echo "== SIGTERM: each worker checkpoints ('worker W final') and exits"
kill -TERM "$pid"
wait "$pid" || fail "prefork exited $? after SIGTERM"
pid=
"$INSPECT" list "$P" --json >"$T/list.json"
total=0
for w in $(seq 0 $((K - 1))); do
	id=$(python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print(max(s["checkpoint"] for s in d["segments"] if s["label"] == "worker %s final" % sys.argv[2]))' "$T/list.json" $w) ||
		{ fail "no final checkpoint of worker $w"; continue; }
	served=$(grep -c "^worker $w\$" "$T/replies")
	total=$((total + served))
	"$PREFORK" --pool "$P" --show "$id" >"$T/show" || fail "prefork --show $id"
	grep -q "^worker $w pid [0-9]*: $served requests" "$T/show" ||
		fail "worker $w's checkpoint $id: '$(head -n 1 "$T/show")', want $served requests"
	# the same heap through ckpt-inspect: the root block holds the worker's magic
	root=$("$INSPECT" heap "$P" "$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["root"])')
	"$INSPECT" dump "$P" "$id" "$root" 16 | grep -q "prefork-worker" ||
		fail "ckpt-inspect dump of checkpoint $id's root ($root) shows no prefork-worker"
	echo "   worker $w: checkpoint $id, $served requests: $(head -n 1 "$T/show")"
done
[ $total = 200 ] || fail "workers' checkpoints account for $total requests, want 200"

echo "== restart, then kill -9 the whole group: dead worker heaps stay, with their parent"
start
grep -q "started 2 times" "$T/log" || fail "the parent's heap did not count the second start"
requests 6 >/dev/null || fail "requests after restart"
kill -s KILL -- -"$pid"
wait "$pid" 2>/dev/null || true
pid=
sleep 0.2
"$INSPECT" list "$P" --json >"$T/list.json"
python3 - "$T/list.json" $K <<'EOF' || fail "dead worker segments not shown under the dead parent"
import json, sys
segs = json.load(open(sys.argv[1]))["segments"]
dead = {s["segment"]: s for s in segs if s["state"] == "dead"}
kids = [s for s in dead.values() if s["parent"] in dead]
assert len(kids) == int(sys.argv[2]), "dead children of a dead parent: %r" % kids
EOF
"$INSPECT" list "$P" | sed 's/^/   /'
"$INSPECT" verify "$P" >"$T/verify" 2>&1 || { fail "ckpt-inspect verify"; cat "$T/verify"; }
[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo PASS
