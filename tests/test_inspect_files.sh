#!/bin/sh
# test_inspect_files -- ckpt-inspect refuses what is not a pool file without
# blocking (issue 16, item 3): a FIFO (whose open would wait for a writer
# forever), a Unix socket, a directory, /dev/null, a symbolic link to a FIFO;
# every command exits 1 within a time limit with a message naming what the
# path is. A path that does not exist stays a usage error (2), and a symbolic
# link to a real pool works.
#   sh test_inspect_files.sh CKPT_INSPECT MKPOOL SRCDIR
set -u
INSPECT=$1 MKPOOL=$2
T=$(mktemp -d "${CKPT_TEST_TMPDIR:-/var/tmp}/ckpt-inspect-files-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect CODE WHAT CMD... -- run with a 20 s limit; compare the exit status;
# stderr must name WHAT (a hang is exit 124 from timeout)
expect() {
	want=$1 what=$2; shift 2
	timeout -s KILL 20 "$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" = 137 ]; then
		fail "'$*' hung (killed after 20 s)"
		return
	fi
	[ "$got" = "$want" ] || { fail "'$*' exited $got, expected $want"; cat "$T/err"; }
	[ -z "$what" ] || grep -q "$what" "$T/err" "$T/out" ||
		{ fail "'$*' does not say '$what':"; cat "$T/err" "$T/out"; }
}

mkfifo "$T/fifo.pool" || { echo "FAIL: mkfifo"; exit 1; }
ln -s "$T/fifo.pool" "$T/link-to-fifo.pool"
mkdir "$T/dir.pool"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
	"$T/sock.pool" || fail "cannot make a socket"

for c in info list verify "heap latest" "dump latest 0x300000000000 16"; do
	# shellcheck disable=SC2086 -- c is a command and its arguments
	set -- $c
	cmd=$1; shift
	expect 1 "is a FIFO" "$INSPECT" "$cmd" "$T/fifo.pool" "$@"
	expect 1 "is a FIFO" "$INSPECT" "$cmd" "$T/link-to-fifo.pool" "$@"
	expect 1 "is a socket" "$INSPECT" "$cmd" "$T/sock.pool" "$@"
	expect 1 "is a directory" "$INSPECT" "$cmd" "$T/dir.pool" "$@"
	expect 1 "not a libckpt pool" "$INSPECT" "$cmd" /dev/null "$@"
	expect 2 "No such file" "$INSPECT" "$cmd" "$T/none.pool" "$@"
done
# --json: still one document saying why
expect 1 "" "$INSPECT" info "$T/fifo.pool" --json
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if d["exit"] == 1 and "FIFO" in d["error"] else 1)' \
	"$T/out" || fail "info --json on a FIFO: $(cat "$T/out")"
expect 1 "" "$INSPECT" verify "$T/fifo.pool" --json
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); f = d["findings"][0]; sys.exit(0 if not d["ok"] and f["where"] == "file" and "FIFO" in f["message"] else 1)' \
	"$T/out" || fail "verify --json on a FIFO: $(cat "$T/out")"
# a real pool behind a symbolic link is fine
"$MKPOOL" "$T/real.pool" basic >/dev/null || { echo "FAIL: mkpool"; exit 1; }
ln -s "$T/real.pool" "$T/link.pool"
expect 0 "" "$INSPECT" info "$T/link.pool"
expect 0 "" "$INSPECT" verify "$T/link.pool"

[ $fails = 0 ] && echo "test_inspect_files: all passed" && exit 0
echo "test_inspect_files: $fails failure(s)"
exit 1
