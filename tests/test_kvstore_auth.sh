#!/bin/sh
# test_kvstore_auth -- who may use a kvstore, and which kvstore may use a
# pool (issue 16, item 11), with the stock redis-cli and redis-benchmark:
#
#  - --requirepass: NOAUTH before AUTH (QUIT allowed), WRONGPASS for a wrong
#    password or user, AUTH [default] PASSWORD, redis-cli -a and
#    redis-benchmark -a work; AUTH on a server without a password is an error.
#  - --unixsocketperm: the socket's mode, and another user (nobody) refused
#    by 700 and served with 777.
#  - the pool lock: a second kvstore on the same pool refuses to start and
#    names the first one's pid, also after a BGSAVE (its forked child must
#    not release the lock), and a BGSAVE child caught alive holds no
#    descriptor of the lock (it must not keep the pool locked if it
#    outlives its server); once the first is killed, the second starts.
#  - protected mode, in a network namespace of its own (nothing is exposed
#    outside this machine) where lo also has 10.211.0.1: bound to
#    0.0.0.0 without a password, a client from 10.211.0.1 gets -DENIED and
#    is closed while 127.0.0.1 and the Unix socket are served; with
#    --requirepass it gets NOAUTH, then AUTH works; --protected-mode no
#    serves it.
#   sh test_kvstore_auth.sh KVSTORE CKPT_INSPECT
KVSTORE=$1 INSPECT=$2
. "$(dirname "$0")/test_kvstore_lib.sh"
expect() {  # expect WHAT GOT WANT
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

# -- protected mode, run by the outer test inside "unshare -n" -----------------
if [ "${3:-}" = netns ]; then
	{ ip link set lo up && ip addr add 10.211.0.1/32 dev lo; } ||
		die "cannot set up the namespace's interfaces"
	PORT=6390                               # the namespace is ours: it is free
	# from ADDR [LINE...] -- send each LINE from ADDR to PORT, print the replies
	# (CRLF shown as |) until the server closes ("<closed>") or 2 s pass
	# without a byte
	cat >"$T/from.py" <<'EOF'
import socket, sys, time
src, port, lines = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.socket()
s.settimeout(2)
s.bind((src, 0))
s.connect(("127.0.0.1" if src == "127.0.0.1" else "10.211.0.1", port))
out = b""
try:
    for line in lines:
        try:
            s.sendall(line.encode() + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            break                       # closed by the server: read why
        time.sleep(0.05)
    while True:
        b = s.recv(65536)
        if not b:
            out += b"<closed>"
            break
        out += b
except (BrokenPipeError, ConnectionResetError):
    out += b"<closed>"                  # closed with our request unread: a reset
except socket.timeout:
    pass
sys.stdout.write(out.decode().replace("\r\n", "|"))
EOF
	from() { a=$1; shift; timeout 30 python3 "$T/from.py" "$a" "$PORT" "$@"; }
	echo "== protected mode, bound to 0.0.0.0, no password"
	start_kv --bind 0.0.0.0 --port $PORT --checkpoint-every 0
	grep -q "protected mode: no --requirepass is set" "$LOG" || fail "no protected-mode warning at start"
	r=$(from 10.211.0.1 PING)
	case "$r" in
	"-DENIED kvstore is running in protected mode"*"|<closed>") ;;
	*) fail "a client from 10.211.0.1 got '$r', want -DENIED and a close" ;;
	esac
	expect "PING from 127.0.0.1" "$(from 127.0.0.1 PING)" "+PONG|"
	expect "PING on the Unix socket" "$(cli ping)" PONG
	[ "$(info_field rejected_connections)" = 1 ] || fail "rejected_connections is not 1"
	kill9_kv
	echo "== protected mode with --requirepass: the client must AUTH"
	export REDISCLI_AUTH=pw-10
	start_kv --bind 0.0.0.0 --port $PORT --checkpoint-every 0 --requirepass pw-10
	unset REDISCLI_AUTH
	expect "10.211.0.1 before and after AUTH" \
		"$(from 10.211.0.1 PING "AUTH pw-10" PING)" \
		"-NOAUTH Authentication required.|+OK|+PONG|"
	kill9_kv
	echo "== --protected-mode no"
	start_kv --bind 0.0.0.0 --port $PORT --checkpoint-every 0 --protected-mode no
	expect "PING from 10.211.0.1" "$(from 10.211.0.1 PING)" "+PONG|"
	kill9_kv
	finish
fi

echo "== --requirepass"
export REDISCLI_AUTH=s3cret-pw        # start_kv's PING authenticates with it
start_kv --checkpoint-every 0 --requirepass s3cret-pw
unset REDISCLI_AUTH
expect "PING before AUTH" "$(cli ping)" "NOAUTH Authentication required."
expect "GET before AUTH" "$(cli get x)" "NOAUTH Authentication required."
expect "unknown before AUTH" "$(cli frobnicate)" "NOAUTH Authentication required."
expect "QUIT before AUTH" "$(cli quit)" OK
expect "AUTH wrong" "$(cli auth wrong)" \
	"WRONGPASS invalid username-password pair or user is disabled."
expect "AUTH other user" "$(cli auth bob s3cret-pw)" \
	"WRONGPASS invalid username-password pair or user is disabled."
expect "AUTH a longer guess" "$(cli auth s3cret-pw-and-more)" \
	"WRONGPASS invalid username-password pair or user is disabled."
expect "AUTH, then PING, one connection" "$(printf 'AUTH s3cret-pw\nPING\n' | cli | tr '\n' ' ')" "OK PONG "
expect "AUTH default" "$(printf 'AUTH default s3cret-pw\nSET k v\nGET k\n' | cli | tr '\n' ' ')" "OK OK v "
expect "redis-cli -a" "$(cli -a s3cret-pw --no-auth-warning get k)" v
redis-benchmark -s "$SOCK" -a s3cret-pw -t set,get -n 2000 -q >"$T/bench" 2>&1 ||
	fail "redis-benchmark -a: $(tail -c 300 "$T/bench")"
grep -q "GET: .* requests per second" "$T/bench" || fail "redis-benchmark -a: $(cat "$T/bench")"
kill9_kv
start_kv --checkpoint-every 0
expect "AUTH without requirepass" "$(cli auth x)" "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
kill9_kv
"$KVSTORE" --pool "$POOL" --unixsocket "$SOCK" --requirepass "$(head -c 513 /dev/zero | tr '\0' x)" \
	>/dev/null 2>"$T/long"
expect "a 513-byte requirepass: exit status" $? 2

echo "== --unixsocketperm"
chmod 755 "$T"                          # nobody may reach the socket's directory
as_nobody() { timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups redis-cli -s "$SOCK" "$@" 2>&1; }
start_kv --checkpoint-every 0 --unixsocketperm 700
expect "mode with 700" "$(stat -c %a "$SOCK")" 700
case "$(as_nobody ping)" in
*"Permission denied"*) ;;
*) fail "nobody reached a 700 socket: $(as_nobody ping)" ;;
esac
kill9_kv
start_kv --checkpoint-every 0 --unixsocketperm 777
expect "mode with 777" "$(stat -c %a "$SOCK")" 777
expect "nobody on a 777 socket" "$(as_nobody ping)" PONG
kill9_kv
"$KVSTORE" --pool "$POOL" --unixsocket "$SOCK" --unixsocketperm 8 >/dev/null 2>&1
expect "--unixsocketperm 8: exit status" $? 2

echo "== one kvstore per pool"
# second -- a second kvstore on $POOL; its exit status (it must not start)
second() {
	timeout 60 "$KVSTORE" --pool "$POOL" --port 0 --unixsocket "$T/second.sock" \
		--checkpoint-every 0 2>"$T/second.log" &
	spid=$!
	bgpids=$spid
	i=0
	until [ -S "$T/second.sock" ] || ! kill -0 $spid 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 3000 ] || break; sleep 0.01
	done
	kill $spid 2>/dev/null                  # it started: stop it (SIGTERM)
	wait $spid
	rc=$?
	bgpids=
	return $rc
}
start_kv --checkpoint-every 0
load_keys 0 9999
second
expect "second kvstore: exit status" $? 1
grep -q "pool $POOL is in use by another kvstore (pid $kvpid)" "$T/second.log" ||
	fail "the second kvstore did not say why: $(cat "$T/second.log")"
expect "the first still serves" "$(cli dbsize)" 10000
expect BGSAVE "$(cli bgsave)" "Background saving started"
wait_bgsave
second
expect "second kvstore after a BGSAVE: exit status" $? 1
expect "the first serves after the BGSAVE" "$(cli dbsize)" 10000
# catch a BGSAVE child alive once its fork handlers ran (its epoll
# descriptor is gone: kvstore's handler closes the lock's descriptor before
# it): none of its descriptors may hold the pool's flock, or the child would
# keep the pool locked if it outlived its server (/proc/PID/fdinfo lists
# the locks of each descriptor). SIGSTOP keeps it alive while it is looked at.
caught=
for try in $(seq 1 30); do
	cli bgsave >/dev/null
	child=$(sed -n 's/.*background checkpoint started by pid \([0-9]*\).*/\1/p' "$LOG" | tail -n 1)
	bgpids=$child
	i=0
	while [ -n "$child" ] && [ $i -lt 500 ] && kill -STOP "$child" 2>/dev/null &&
	      ls -l "/proc/$child/fd" 2>/dev/null | grep -q .; do
		if ! ls -l "/proc/$child/fd" | grep -q eventpoll; then
			caught=$child
			break
		fi
		kill -CONT "$child"
		i=$((i + 1))
	done
	[ -n "$caught" ] && break
	kill -CONT "$child" 2>/dev/null
	wait_bgsave
done
if [ -n "$caught" ]; then
	echo "   caught BGSAVE child $caught after its fork handlers (attempt $try)"
	grep -l FLOCK /proc/"$caught"/fdinfo/* 2>/dev/null | grep -q . &&
		fail "the BGSAVE child holds the pool's flock: $(grep -h FLOCK /proc/"$caught"/fdinfo/*)"
	grep -h FLOCK /proc/"$kvpid"/fdinfo/* 2>/dev/null | grep -q . ||
		fail "the server holds no flock"
	kill -9 "$caught"
	wait_bgsave
else
	echo "   no BGSAVE child caught alive in 30 tries: its descriptors not checked"
fi
bgpids=
kill9_kv
second
expect "second kvstore once the first is killed: exit status (SIGTERM: 0)" $? 0
grep -q "restarted from the latest checkpoint" "$T/second.log" ||
	fail "the second kvstore did not restart: $(cat "$T/second.log")"

echo "== protected mode (in a network namespace)"
if unshare -n true 2>/dev/null; then
	unshare -n sh "$0" "$KVSTORE" "$INSPECT" netns >"$T/netns.out" 2>&1
	rc=$?
	sed 's/^/   /' "$T/netns.out"
	[ $rc -eq 0 ] && tail -n 1 "$T/netns.out" | grep -q PASS || fail "protected mode"
else
	echo "   skipped: cannot make a network namespace here (unshare -n needs root)"
fi
finish
