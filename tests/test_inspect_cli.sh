#!/bin/sh
# test_inspect_cli -- ckpt-inspect as a user runs it, on a real pool:
# every command in text and --json (parsed with python3's json), REF forms,
# exit codes, dump against hexdump -C, --help, the man page.
#   sh test_inspect_cli.sh CKPT_INSPECT MKPOOL SRCDIR
set -u
INSPECT=$1 MKPOOL=$2 SRC=$3
T=$(mktemp -d "${CKPT_TEST_TMPDIR:-/var/tmp}/ckpt-inspect-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect CODE CMD... -- run, compare the exit status, keep stdout in $T/out
expect() {
	want=$1; shift
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	[ "$got" = "$want" ] || { fail "'$*' exited $got, expected $want"; cat "$T/err"; }
}
# json PYEXPR -- evaluate a python expression on the JSON in $T/out (d)
json() {
	python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
sys.exit(0 if ok else 1)' "$T/out" "$1" || { fail "json check '$1' on:"; head -c 600 "$T/out"; echo; }
}

P=$T/pool
"$MKPOOL" "$P" basic >"$T/mk" || { echo "FAIL: mkpool"; exit 1; }

# info
expect 0 "$INSPECT" info "$P"
grep -q "^format version *1\.9" "$T/out" || fail "info: no format version"
grep -q "emulated" "$T/out" || fail "info: not emulated"
expect 0 "$INSPECT" info "$P" --json
json 'd["format_version"] == "1.9" and d["segments_total"] == 8 and d["segments_used"] == 5'
json 'd["base"].startswith("0x") and d["heap_size"] == 4<<20 and d["persistence"] == "emulated"'
json 'len(d["uuid"]) == 36 and d["fork_mode"] == "copy"'

# list: every segment, tree, states, labels (API.md: free, live, dead, checkpoint)
expect 0 "$INSPECT" list "$P" --json
json 'sorted(s["segment"] for s in d["segments"]) == list(range(8))'
json 'sum(s["state"] != "free" for s in d["segments"]) == 5'
json '[s["segment"] for s in d["segments"] if s["state"] == "free"] == [5, 6, 7]'
json 'all(s["state"] in ("free", "live", "dead", "checkpoint") and s["busy"] is False for s in d["segments"])'
json 'sorted(s["label"] for s in d["segments"] if s["state"] == "checkpoint") == ["child", "first", "second"]'
json 'sum(s["state"] == "dead" for s in d["segments"]) == 2'
json 'all(s["owner_alive"] is False for s in d["segments"] if s["state"] == "dead")'
# the child's dead heap hangs under the parent's, its checkpoint under it
json '[s for s in d["segments"] if s["label"] == "child"][0]["depth"] == 2'
json 'all(s["tree_parent"] is None or any(t["segment"] == s["tree_parent"] and s["segment"] in t["children"] for t in d["segments"]) for s in d["segments"])'
expect 0 "$INSPECT" list "$P"
grep -q "└─" "$T/out" || fail "list: no tree drawn"
grep -q "dead" "$T/out" || fail "list: no dead owner shown"
head -1 "$T/out" | grep -q "SEGMENT *STATE *PARENT *CKPT *FROM *LABEL" || fail "list: header"
grep -q "^5-7 *free " "$T/out" || fail "list: free segments 5-7 not on one row"
grep -q "└─ 4 *checkpoint *3 *3 *- *child " "$T/out" || fail "list: the child's checkpoint row (parent 3, id 3, not restarted)"

# heap by every REF form
for ref in latest 1 2 3 seg:0; do
	expect 0 "$INSPECT" heap "$P" "$ref" --json
	json 'd["error"] is None and d["summary"]["blocks"] == len(d["blocks"]) > 0'
	json 'd["summary"]["bytes_allocated"] == sum(b["size"] for b in d["blocks"] if b["state"] == "allocated")'
	json 'd["summary"]["largest_free"] == max([b["size"] for b in d["blocks"] if b["state"] == "free"] or [0])'
	json 'all(int(b["address"], 16) == int(d["base"], 16) + b["offset"] for b in d["blocks"])'
	json 'd["root"] is not None and 0 <= d["summary"]["fragmentation"] < 1'
done
expect 0 "$INSPECT" heap "$P" latest --json
json 'd["checkpoint"] == 3'
expect 0 "$INSPECT" heap "$P" 1 --summary --json
json '"blocks" not in d and d["summary"]["blocks_allocated"] > 60'
expect 0 "$INSPECT" heap "$P" 1 --summary
grep -q "^fragmentation" "$T/out" || fail "heap --summary: no fragmentation"
grep -q "^0x3" "$T/out" && fail "heap --summary lists blocks"
expect 0 "$INSPECT" heap "$P" 1
grep -q "allocated$" "$T/out" || fail "heap: no allocated block listed"

# the root holds the list the pool maker built: dump it and find its bytes
expect 0 "$INSPECT" heap "$P" 1 --json
ROOT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["root"])' "$T/out")
expect 0 "$INSPECT" dump "$P" 1 "$ROOT" 64
head -1 "$T/out" | grep -q "^${ROOT#0x}  " || fail "dump: first line does not start at the root address"
# dump matches hexdump -C of the same bytes (address column aside)
expect 0 "$INSPECT" info "$P" --json
BASE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["base"])' "$T/out")
expect 0 "$INSPECT" dump "$P" 1 "$BASE" 4100 --json
python3 -c 'import json,sys; open(sys.argv[2],"wb").write(bytes.fromhex(json.load(open(sys.argv[1]))["data"]))' "$T/out" "$T/bytes"
[ "$(wc -c <"$T/bytes")" -eq 4100 ] || fail "dump --json: wrong length"
head -c 8 "$T/bytes" | grep -q CKPTHEAP || fail "dump: segment does not start with the heap magic"
# (hexdump is in bsdextrautils, which scripts/deps.sh installs: no skipping)
if command -v hexdump >/dev/null; then
	expect 0 "$INSPECT" dump "$P" 1 "$BASE" 4100
	cut -c13- "$T/out" >"$T/ours"
	hexdump -C "$T/bytes" | cut -c9- >"$T/theirs"
	cmp -s "$T/ours" "$T/theirs" || { fail "dump differs from hexdump -C"; diff "$T/ours" "$T/theirs" | head; }
else
	fail "hexdump not found (Debian: bsdextrautils, see scripts/deps.sh): cannot compare dump with hexdump -C"
fi
expect 0 "$INSPECT" dump "$P" seg:0 "$BASE" 16K
expect 0 "$INSPECT" dump "$P" 1 "$BASE" 0

# verify: sound pool
expect 0 "$INSPECT" verify "$P"
grep -q "^ok: 0 errors" "$T/out" || fail "verify: not ok"
# the backup catalog copy in words a user knows (issue 16, item 10)
grep -q "^note  *catalog copy [01] .*backup copy: intact" "$T/out" || fail "verify: no backup copy note"
grep -q "generation" "$T/out" && fail "verify: internal wording (generation) in: $(cat "$T/out")"
expect 0 "$INSPECT" verify "$P" --json
json 'd["ok"] is True and d["errors"] == 0 and d["checkpoints_verified"] == 3 and d["heaps_walked"] == 5'
json 'all(set(f) == {"severity","where","segment","offset","message"} for f in d["findings"])'
json 'any(f["where"].startswith("catalog copy") and f["severity"] == "note" for f in d["findings"])'

# progress: only when stderr is a terminal, never with --no-progress
expect 0 "$INSPECT" verify "$P"
[ -s "$T/err" ] && fail "verify wrote to stderr that is not a terminal"
if command -v script >/dev/null 2>&1; then
	script -qec "$INSPECT verify $P >/dev/null" /dev/null >"$T/tty" 2>&1 || fail "verify under script"
	grep -q "checksum" "$T/tty" || fail "verify: no progress on a terminal"
	script -qec "$INSPECT verify $P --no-progress >/dev/null" /dev/null >"$T/tty" 2>&1
	grep -q "checksum" "$T/tty" && fail "verify --no-progress still shows progress"
fi

# bad usage: exit 2, and --json still prints one document
expect 2 "$INSPECT"
expect 2 "$INSPECT" frobnicate "$P"
expect 2 "$INSPECT" heap "$P"
expect 2 "$INSPECT" heap "$P" seg:x
expect 2 "$INSPECT" heap "$P" -- -1
expect 2 "$INSPECT" heap "$P" 0
expect 2 "$INSPECT" heap "$P" latest7
# a well-formed REF that names nothing in this pool is a failed lookup: 1
# with a message (issue 16, item 10)
for c in heap "dump"; do
	set -- 0x300000000000 16
	[ "$c" = heap ] && set --
	expect 1 "$INSPECT" $c "$P" 99 "$@"
	grep -q "no checkpoint 99 in the pool" "$T/err" || fail "$c 99: message: $(cat "$T/err")"
	expect 1 "$INSPECT" $c "$P" seg:8 "$@"
	grep -q "segment 8 does not exist" "$T/err" || fail "$c seg:8: message: $(cat "$T/err")"
	expect 1 "$INSPECT" $c "$P" seg:7 "$@"    # a free segment
	grep -q "segment 7 is free" "$T/err" || fail "$c seg:7: message: $(cat "$T/err")"
done
expect 1 "$INSPECT" heap "$P" 99 --json
json 'd["exit"] == 1 and "no checkpoint 99" in d["error"]'
expect 2 "$INSPECT" dump "$P" 1 0x1000 16
expect 2 "$INSPECT" dump "$P" 1 "$BASE" 5M
expect 2 "$INSPECT" dump "$P" 1 "$BASE" 0x
expect 2 "$INSPECT" dump "$P" 1 zork 16
expect 2 "$INSPECT" dump "$P" 1 0xffffffffffffffff 2
expect 2 "$INSPECT" info "$T/nonexistent"
expect 1 "$INSPECT" info "$T"               # a directory is not a pool
expect 2 "$INSPECT" list "$P" extra
expect 2 "$INSPECT" list "$P" --bogus
# not a pool: exit 1
head -c 10000 /dev/zero >"$T/zeros"
expect 1 "$INSPECT" info "$T/zeros"
expect 1 "$INSPECT" verify "$T/zeros" --json
json 'd["ok"] is False and d["findings"][0]["where"] == "header"'

# --help: one line per command, exit 0; the man page documents them all
expect 0 "$INSPECT" --help
for c in info list heap dump verify; do
	[ "$(grep -c "^  $c " "$T/out")" = 1 ] || fail "--help: command $c not on one line"
	grep -q "^\.B $c\b" "$SRC/docs/ckpt-inspect.1" || fail "man page lacks $c"
done
if command -v man >/dev/null && man -l /dev/null >/dev/null 2>&1; then
	MANWIDTH=80 man -l "$SRC/docs/ckpt-inspect.1" >/dev/null 2>"$T/manerr" || fail "man page does not render"
fi

# read-only: not one byte changed, the file never opened for writing
cp "$P" "$T/pool.before"
chmod 0400 "$P"
for c in info list verify; do "$INSPECT" $c "$P" >/dev/null 2>&1; done
"$INSPECT" heap "$P" latest >/dev/null 2>&1 || fail "heap on a read-only pool file"
cmp -s "$P" "$T/pool.before" || fail "ckpt-inspect changed the pool"

[ $fails = 0 ] && echo "test_inspect_cli: all passed" && exit 0
echo "test_inspect_cli: $fails failure(s)"
exit 1
