# test_kvstore_lib.sh -- helpers the kvstore integration tests source: a
# temporary directory, starting kvstore and waiting for it, redis-cli on its
# Unix socket, loading and checking the known keys key:I = value:I.
#   . test_kvstore_lib.sh   with KVSTORE and INSPECT set
set -u
command -v redis-cli >/dev/null || {
	echo "FAIL: redis-cli not found: scripts/deps.sh installs it (Debian package redis-tools)"
	exit 1
}
T=$(mktemp -d "${CKPT_TEST_TMPDIR:-/var/tmp}/ckpt-kvstore-XXXXXX")
POOL=$T/kv.pool
SOCK=$T/kv.sock
LOG=$T/kvstore.log
kvpid=
bgpids=
fails=0
cleanup() {
	for p in $kvpid $bgpids; do kill -9 "$p" 2>/dev/null; done
	if [ $fails -ne 0 ] && [ -f "$LOG" ]; then
		echo "--- kvstore log (last 30 lines)"; tail -n 30 "$LOG"
	fi
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
die() { echo "FAIL: $*"; fails=$((fails + 1)); exit 1; }
cli() { timeout 60 redis-cli -s "$SOCK" "$@"; }

# start_kv [ARGS] -- start kvstore on $POOL/$SOCK, wait until it answers PING
# (with KV_NOFILE set, under ulimit -n $KV_NOFILE)
start_kv() {
	rm -f "$SOCK"
	(
		[ -z "${KV_NOFILE:-}" ] || ulimit -n "$KV_NOFILE"
		exec "$KVSTORE" --pool "$POOL" --port 0 --unixsocket "$SOCK" --heap-size 256M "$@"
	) 2>>"$LOG" &
	kvpid=$!
	i=0
	until [ -S "$SOCK" ] && cli ping 2>/dev/null | grep -q PONG; do
		if ! kill -0 "$kvpid" 2>/dev/null; then
			# a port someone else holds: the caller may try another
			[ -n "${KV_PORT_RETRY:-}" ] && tail -n 1 "$LOG" | grep -q "cannot listen" &&
				{ kvpid=; return 1; }
			die "kvstore exited at start"
		fi
		i=$((i + 1))
		[ $i -lt 1000 ] || die "kvstore did not answer PING within 10 s"
		sleep 0.01
	done
}

# kill9_kv -- kill -9 the server and reap it
kill9_kv() {
	kill -9 "$kvpid"
	wait "$kvpid" 2>/dev/null
	kvpid=
}

# stop_kv -- SHUTDOWN (checkpoint, clean exit); its exit status must be 0
stop_kv() {
	cli shutdown >/dev/null 2>&1
	wait "$kvpid"
	rc=$?
	kvpid=
	[ $rc -eq 0 ] || fail "kvstore exited $rc after SHUTDOWN"
}

# load_keys FIRST LAST -- SET key:I value:I for I in FIRST..LAST with --pipe
load_keys() {
	awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++) { k = "key:" i; v = "value:" i;
		printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v } }' |
		cli --pipe >"$T/pipe.out" 2>&1
	grep -q "errors: 0, replies: $(($2 - $1 + 1))" "$T/pipe.out" ||
		fail "redis-cli --pipe: $(tail -n 1 "$T/pipe.out")"
}

# check_keys FIRST LAST -- every key:I in FIRST..LAST holds value:I (MGET in chunks)
check_keys() {
	i=$1
	while [ "$i" -le "$2" ]; do
		j=$((i + 9999 < $2 ? i + 9999 : $2))
		got=$(cli mget $(seq -f 'key:%.0f' "$i" "$j") | md5sum)
		want=$(seq -f 'value:%.0f' "$i" "$j" | md5sum)
		[ "$got" = "$want" ] || { fail "keys key:$i..key:$j are not all value:I"; return 1; }
		i=$((j + 1))
	done
	return 0
}

# info_field NAME -- one field of INFO
info_field() { cli info | tr -d '\r' | sed -n "s/^$1://p"; }

# wait_bgsave -- until no BGSAVE runs (at most 60 s)
wait_bgsave() {
	i=0
	while [ "$(info_field rdb_bgsave_in_progress)" != 0 ]; do
		i=$((i + 1))
		[ $i -lt 600 ] || { fail "BGSAVE still running after 60 s"; return 1; }
		sleep 0.1
	done
}

finish() {
	if [ $fails -ne 0 ]; then
		echo "$fails failure(s)"
		exit 1
	fi
	echo "PASS"
	exit 0
}
