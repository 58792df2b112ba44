#!/bin/sh
# test_kvstore_proto -- kvstore's commands and protocol as the stock tools
# and hostile clients use them: redis-cli over TCP and a Unix socket, every
# command, redis-benchmark with pipelining, then malformed RESP, huge bulk
# and multibulk lengths, oversized inline requests, binary junk and
# half-sent requests: each gets an error reply and a closed connection
# (or is simply dropped), never a crash, and the server keeps serving.
#   sh test_kvstore_proto.sh KVSTORE CKPT_INSPECT
KVSTORE=$1 INSPECT=$2
. "$(dirname "$0")/test_kvstore_lib.sh"
command -v redis-benchmark >/dev/null ||
	die "redis-benchmark not found: scripts/deps.sh installs it (Debian package redis-tools)"

# a free TCP port: kvstore refuses to start if it is taken, so try a few
KV_PORT_RETRY=1
for try in 1 2 3 4 5 6 7 8; do
	PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 20000))
	start_kv --port "$PORT" --checkpoint-every 0 && break
	[ $try -lt 8 ] || die "no free TCP port found"
done
KV_PORT_RETRY=
tcp() { timeout 60 redis-cli -p "$PORT" "$@"; }
expect() {  # expect WHAT GOT WANT
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

echo "== commands over TCP $PORT and the Unix socket"
expect PING "$(tcp ping)" PONG
expect "PING msg" "$(tcp ping hello)" hello
expect ECHO "$(cli echo 'a b')" "a b"
expect SET "$(tcp set k1 v1)" OK
expect "GET (unix)" "$(cli get k1)" v1
expect "GET missing" "$(cli get nope)" ""
expect "SET overwrite" "$(cli set k1 a-longer-value-than-before-so-the-entry-moves)" OK
expect "GET overwritten" "$(tcp get k1)" a-longer-value-than-before-so-the-entry-moves
printf 'binary\000value\r\nwith CRLF' | cli -x set bin >/dev/null
expect "binary value" "$(cli get bin | od -An -c | tr -s ' ')" \
	"$(printf 'binary\000value\r\nwith CRLF\n' | od -An -c | tr -s ' ')"
expect "SET empty" "$(cli set empty '')" OK
expect "EXISTS" "$(cli exists k1 nope empty k1)" 3
expect "DBSIZE" "$(cli dbsize)" 3
expect "DEL" "$(cli del k1 nope)" 1
expect "MGET" "$(cli mget bin nope | wc -l)" 3
expect "MSET" "$(cli mset m1 a m2 b m1 c)" OK
expect "MGET after MSET" "$(cli mget m1 m2 | tr '\n' ' ')" "c b "
expect "MSET odd" "$(cli mset m1 a m2)" "ERR wrong number of arguments for 'mset' command"
expect "SET NX (unsupported)" "$(cli set a b nx)" "ERR syntax error"
expect "wrong arity" "$(cli get)" "ERR wrong number of arguments for 'get' command"
expect "unknown" "$(cli frobnicate x)" "ERR unknown command 'frobnicate'"
expect "CONFIG GET save" "$(cli config get save | head -n 1)" save
expect "COMMAND COUNT" "$(cli command count | grep -c '^[0-9]')" 1
expect "SELECT 0" "$(cli select 0)" OK
expect "SELECT 1" "$(cli select 1)" "ERR DB index is out of range"
for f in redis_version tcp_port last_restart_time last_restart_ms checkpoints_taken \
	rdb_last_save_time rdb_bgsave_in_progress connected_clients; do
	[ -n "$(info_field $f)" ] || fail "INFO has no $f"
done
expect "INFO tcp_port" "$(info_field tcp_port)" "$PORT"
expect "LASTSAVE" "$(cli lastsave)" "$(info_field rdb_last_save_time)"
expect SAVE "$(cli save)" OK
expect FLUSHALL "$(cli flushall)" OK
expect "DBSIZE after FLUSHALL" "$(cli dbsize)" 0

echo "== redis-benchmark, pipelined and not, both sockets"
redis-benchmark -p "$PORT" -t ping,set,get,mset -n 20000 -r 10000 -P 16 -q >"$T/b1" 2>&1 ||
	fail "redis-benchmark -P 16 failed: $(tail -c 300 "$T/b1")"
redis-benchmark -s "$SOCK" -t set,get -n 20000 -r 10000 -c 20 -d 1000 -q >"$T/b2" 2>&1 ||
	fail "redis-benchmark -d 1000 failed: $(tail -c 300 "$T/b2")"
grep -q "GET: .* requests per second" "$T/b1" || fail "no GET figure: $(cat "$T/b1")"
[ "$(cli dbsize)" -gt 5000 ] || fail "benchmark left only $(cli dbsize) keys"
# the table grew through incremental rehashes and is consistent
kill9_kv
start_kv --checkpoint-every 0 --check
grep -q "check: hash table consistent" "$LOG" || fail "--check after a restart"

echo "== hostile input"
python3 - "$SOCK" <<'EOF' || fails=$((fails + 1))
import socket, sys, time
path = sys.argv[1]
failed = 0

def conn():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    return s

def reply_and_close(data):
    """send data, return everything until the server closes"""
    s = conn()
    try:
        s.sendall(data)
    except OSError:
        pass
    out = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except socket.timeout:
        out += b"<TIMEOUT: not closed>"
    except OSError:
        pass
    s.close()
    return out

def alive():
    s = conn()
    s.sendall(b"PING\r\n")
    r = s.recv(100)
    s.close()
    return r == b"+PONG\r\n"

cases = [
    (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length"),
    (b"*1\r\n$99999999999\r\n", b"-ERR Protocol error: invalid bulk length"),
    (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length"),
    (b"*1\r\n$" + b"9" * 40 + b"\r\n", b"-ERR Protocol error: invalid bulk length"),
    (b"*99999999\r\n", b"-ERR Protocol error: invalid multibulk length"),
    (b"*2\r\n$3\r\nGET\r\n:1\r\n", b"-ERR Protocol error: expected '$', got ':'"),
    (b"*1\r\n$4\r\nPINGxx", b"-ERR Protocol error: bulk not terminated by CRLF"),
    (b"A" * 70000, b"-ERR Protocol error: too big inline request"),
    (b"*1\r\n$" + b"1" * 31, b"-ERR Protocol error: invalid bulk length"),
    (b"PING\r\nQUIT\r\n", b"+PONG\r\n+OK\r\n"),
]
for data, want in cases:
    got = reply_and_close(data)
    if not got.startswith(want):
        print("FAIL: sent %r..., got %r, want %r" % (data[:40], got[:120], want))
        failed += 1
    if not alive():
        print("FAIL: server dead after %r" % data[:40])
        sys.exit(1)

# pipelining: 10,000 requests in one write, replies in order
s = conn()
s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\np%d\r\n$1\r\nx\r\n" % (len(b"p%d" % i), i)
                   for i in range(10000)) + b"*1\r\n$4\r\nPING\r\n")
want = b"+OK\r\n" * 10000 + b"+PONG\r\n"
got = b""
while len(got) < len(want):
    b = s.recv(65536)
    if not b:
        break
    got += b
s.close()
if got != want:
    print("FAIL: pipelined replies: %d bytes, want %d" % (len(got), len(want)))
    failed += 1

# a client that sends without reading: the server must not buffer without bound
s = conn()
s.setblocking(False)
req = b"*2\r\n$4\r\nECHO\r\n$1000\r\n" + b"x" * 1000 + b"\r\n"
sent = 0
end = time.time() + 3
while time.time() < end:
    try:
        sent += s.send(req * 100)
    except BlockingIOError:
        time.sleep(0.01)
s.close()
if not alive():
    print("FAIL: server dead after a client that never reads")
    sys.exit(1)

# half a request, then gone; junk bytes; a 10 MB value in small pieces
for data in (b"*3\r\n$3\r\nSET\r\n$1\r\na", bytes(range(256)) * 4):
    s = conn()
    s.sendall(data)
    s.close()
s = conn()
val = b"v" * (10 << 20)
msg = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n" % (len(val), val)
for i in range(0, len(msg), 65000):
    s.sendall(msg[i:i + 65000])
s.settimeout(30)
r = s.recv(100)
if r != b"+OK\r\n":
    print("FAIL: 10 MB SET answered %r" % r)
    failed += 1
s.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")
got = b""
want = b"$%d\r\n%s\r\n" % (len(val), val)
while len(got) < len(want):
    b = s.recv(1 << 20)
    if not b:
        break
    got += b
if got != want:
    print("FAIL: 10 MB GET returned %d bytes" % len(got))
    failed += 1
s.close()
if not alive():
    print("FAIL: server dead at the end")
    sys.exit(1)
sys.exit(1 if failed else 0)
EOF
kill -0 "$kvpid" 2>/dev/null || die "kvstore died during the hostile input"
expect "DBSIZE still answers" "$(cli exists big)" 1
stop_kv
finish
