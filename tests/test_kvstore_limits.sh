#!/bin/sh
# test_kvstore_limits -- kvstore's limits on clients against clients that
# push them (issue 16, items 1 and 2), real sockets, every wait bounded:
#
#  1. under ulimit -n 64, 80 connections: maxclients is lowered to 32 at
#     start, 32 clients are served and 48 get "-ERR max number of clients
#     reached" and are closed; then the limit is lowered under a running
#     server (prlimit) so accept itself fails with EMFILE: every connection
#     is still served or refused, none hangs. In both cases the loop does
#     not spin (INFO eventloop_cycles grows by a handful a second, not by
#     millions) and the log does not flood.
#  2. client-output-buffer-limit: MGET of a 1 MiB value 1,500 times in one
#     request (a 1.5 GB reply) with a 64 MiB limit: the client is closed
#     without a byte of it and the server's peak RSS grows by less than
#     256 MiB. client-query-buffer-limit and -total: one client past its
#     limit (40 MiB) is closed; three clients holding 30 MB each of unfinished
#     requests with a 64 MiB total: the one holding the most is closed and
#     the total stays under it.
#   sh test_kvstore_limits.sh KVSTORE CKPT_INSPECT
KVSTORE=$1 INSPECT=$2
. "$(dirname "$0")/test_kvstore_lib.sh"
command -v prlimit >/dev/null || die "prlimit not found (Debian package util-linux)"

# clients.py MODE: the hostile clients, in Python (sockets, bounded timeouts)
cat >"$T/clients.py" <<'EOF'
import socket, sys, time, re
path, mode = sys.argv[1], sys.argv[2]
failed = 0

def fail(msg):
    global failed
    print("FAIL: " + msg)
    failed += 1

def conn():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    return s

def recv_until_close(s, limit=1 << 30):
    out = b""
    try:
        while len(out) < limit:
            b = s.recv(1 << 20)
            if not b:
                return out, True
            out += b
    except socket.timeout:
        return out, False
    except OSError:
        return out, True
    return out, False

def info(s, field):
    s.sendall(b"*1\r\n$4\r\nINFO\r\n")
    data = b""
    while True:
        data += s.recv(65536)
        m = re.match(rb"\$(\d+)\r\n", data)
        if m and len(data) >= m.end() + int(m.group(1)) + 2:
            break
    m = re.search(rb"\r\n" + field.encode() + rb":(\d+)\r\n", data)
    if not m:
        fail("INFO has no " + field)
        return -1
    return int(m.group(1))

def hold(n, want_served):
    """open n connections, PING on each; served ones stay open"""
    served, refused, other = [], 0, 0
    for i in range(n):
        try:
            s = conn()
            try:
                s.sendall(b"PING\r\n")
            except BrokenPipeError:     # refused before the PING: read why
                pass
            r = s.recv(100)
        except OSError as e:
            fail("connection %d: %s" % (i, e))
            other += 1
            continue
        if r == b"+PONG\r\n":
            served.append(s)
        elif r == b"-ERR max number of clients reached\r\n":
            _, closed = recv_until_close(s)
            if not closed:
                fail("connection %d refused but not closed" % i)
            refused += 1
            s.close()
        else:
            fail("connection %d answered %r" % (i, r[:80]))
            other += 1
    print("   %d connections: %d served, %d refused" % (n, len(served), refused))
    if want_served is not None and len(served) != want_served:
        fail("%d served, want %d" % (len(served), want_served))
    if len(served) + refused != n:
        fail("%d connections neither served nor refused" % (n - len(served) - refused))
    return served

def no_spin(s):
    """the event loop sleeps while nothing happens: over one second it wakes
    for its 100 ms timer and these INFO requests, not thousands of times"""
    a = info(s, "eventloop_cycles")
    time.sleep(1)
    b = info(s, "eventloop_cycles")
    print("   event loop cycles in one idle second: %d" % (b - a))
    if b - a > 1000:
        fail("the event loop spun: %d cycles in one idle second" % (b - a))

if mode == "maxclients":
    served = hold(80, int(sys.argv[3]))
    if served:
        no_spin(served[0])
        if info(served[0], "rejected_connections") < 80 - len(served):
            fail("rejected_connections is too small")
    for s in served:
        s.close()
elif mode == "emfile":
    served = hold(80, None)
    if not 20 <= len(served) < 64:
        fail("%d served under a 64-descriptor limit" % len(served))
    if served:
        no_spin(served[0])
    for s in served:
        s.close()
    time.sleep(0.2)
    # descriptors are free again: the server accepts as before
    served = hold(80, None)
    if not 20 <= len(served) < 64:
        fail("after the clients left: %d served" % len(served))
    for s in served:
        s.close()
elif mode == "obuf":
    s = conn()
    s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1048576\r\n" + b"v" * 1048576 + b"\r\n")
    if s.recv(100) != b"+OK\r\n":
        fail("SET big")
    # under the limit: 10 MiB in one reply comes back whole
    s.sendall(b"*11\r\n$4\r\nMGET\r\n" + b"$3\r\nbig\r\n" * 10)
    want = b"*10\r\n" + (b"$1048576\r\n" + b"v" * 1048576 + b"\r\n") * 10
    got = b""
    while len(got) < len(want):
        b = s.recv(1 << 20)
        if not b:
            break
        got += b
    if got != want:
        fail("MGET of 10 MiB: %d bytes, want %d" % (len(got), len(want)))
    # over it: 1,500 x 1 MiB in one 13 KB request, the reply not read at first
    s.sendall(b"*1501\r\n$4\r\nMGET\r\n" + b"$3\r\nbig\r\n" * 1500)
    got, closed = recv_until_close(s, 1 << 31)
    if not closed:
        fail("the client over client-output-buffer-limit was not closed")
    if got:
        fail("the client over the limit got %d bytes of its reply" % len(got))
    s.close()
    s = conn()
    if info(s, "client_output_buffer_limit_disconnections") != 1:
        fail("client_output_buffer_limit_disconnections is not 1")
    s.close()
elif mode == "qbuf":
    # one client past client-query-buffer-limit (40 MiB)
    s = conn()
    try:
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n" + b"q" * (48 << 20))
    except OSError:
        pass
    got, closed = recv_until_close(s)
    if not closed or b"query buffer limit" not in got:
        fail("a client past client-query-buffer-limit: %r, closed %s" % (got[:80], closed))
    s.close()
    # three clients with 30 MB each of an unfinished 512 MiB value, total 64 MiB
    head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n"
    part = b"q" * (15 << 20)
    cl = []
    for i in range(3):
        c = conn()
        try:
            c.sendall(head + part)
            c.sendall(part)
        except OSError:
            pass
        cl.append(c)
    w = conn()
    # two clients of 30 MiB, and the INFO request being answered
    want = 2 * (len(head) + 2 * len(part)) + len(b"*1\r\n$4\r\nINFO\r\n")
    for i in range(100):            # the server reads what the sockets still hold
        total = info(w, "total_query_buffers")
        if total == want:
            break
        time.sleep(0.1)
    print("   total_query_buffers %d (want %d)" % (total, want))
    if total != want:
        fail("total_query_buffers %d, want %d" % (total, want))
    if info(w, "client_query_buffer_limit_disconnections") != 2:
        fail("client_query_buffer_limit_disconnections is not 2")
    closed = 0
    for c in cl:
        c.settimeout(0.5)
        got, eof = recv_until_close(c)
        if eof:
            closed += 1
            if not got.startswith(b"-ERR client-query-buffer-total reached"):
                fail("the closed client got %r" % got[:80])
        c.close()
    if closed != 1:
        fail("%d of the three clients were closed, want 1" % closed)
    w.sendall(b"PING\r\n")
    if w.recv(100) != b"+PONG\r\n":
        fail("no PONG after the query buffer limits")
    w.close()
sys.exit(1 if failed else 0)
EOF
clients() { timeout 120 python3 "$T/clients.py" "$SOCK" "$@" || fails=$((fails + 1)); }
# log_lines PATTERN -- how many log lines match
log_lines() { grep -c "$1" "$LOG"; }

echo "== ulimit -n 64, 80 connections: maxclients lowered to 32"
KV_NOFILE=64 start_kv --checkpoint-every 0
KV_NOFILE=
grep -q "maxclients has been reduced to 32" "$LOG" || fail "no log line lowering maxclients to 32"
[ "$(cli config get maxclients | tail -n 1)" = 32 ] || fail "CONFIG GET maxclients is not 32"
clients maxclients 32
n=$(log_lines "max number of clients reached")
[ "$n" -le 3 ] || fail "$n log lines about refused clients (rate limit: one a second)"
[ "$(cli ping)" = PONG ] || fail "no PONG after the clients left"
kill9_kv

echo "== the open files limit lowered under a running server: accept fails with EMFILE"
: >"$LOG"
start_kv --checkpoint-every 0
prlimit --pid "$kvpid" --nofile=64:64 || die "prlimit --nofile=64 failed"
clients emfile
n=$(wc -l <"$LOG")
echo "   $n log lines"
[ "$n" -le 20 ] || fail "$n log lines (an accept loop at EMFILE must not flood the log)"
log_lines "out of file descriptors" >/dev/null || fail "no log line about the descriptor limit"
[ "$(cli ping)" = PONG ] || fail "no PONG after the EMFILE clients left"
kill9_kv

echo "== client-output-buffer-limit 64M: MGET of 1,500 x 1 MiB in one request"
start_kv --checkpoint-every 0 --client-output-buffer-limit 64M
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$kvpid/status"; }
before=$(hwm)
clients obuf
after=$(hwm)
echo "   peak RSS ${before} kB before, ${after} kB after"
[ $((after - before)) -lt $((256 * 1024)) ] ||
	fail "peak RSS grew by $(((after - before) / 1024)) MiB (limit 64 MiB)"
grep -q "closed for overcoming of output buffer limits" "$LOG" || fail "no log line for the closed client"
[ "$(cli exists big)" = 1 ] || fail "the server lost big"
kill9_kv

echo "== client-query-buffer-limit 40M, client-query-buffer-total 64M"
start_kv --checkpoint-every 0 --client-query-buffer-limit 40M --client-query-buffer-total 64M
clients qbuf
grep -q "over client-query-buffer-total" "$LOG" || fail "no log line for the total"
[ "$(cli ping)" = PONG ] || fail "no PONG at the end"
stop_kv
finish
