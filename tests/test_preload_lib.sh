# test_preload_lib.sh -- shared by the test_preload_*.sh tests (sourced):
# a scratch directory, ckpt-run and ckpt-inspect, and the checks every
# program test makes of the pool its run left behind.
#   . test_preload_lib.sh   with CKPT_RUN and INSPECT set
set -eu
: "${CKPT_RUN:?}" "${INSPECT:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/ckpt-preload.XXXXXX")
cleanup_hooks=""
cleanup() {
	for h in $cleanup_hooks; do $h || true; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
unset CKPT_POOL CKPT_FORK_MODE LD_PRELOAD
fails=0
die() { echo "FAIL: $*"; exit 1; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
long() { [ "${CKPT_TEST_LONG:-0}" = 1 ]; }

# run POOL ARGS... -- ckpt-run, quiet, on pool POOL
run() { p=$1; shift; "$CKPT_RUN" --quiet --pool "$p" -- "$@"; }

# verify_pool POOL -- ckpt-inspect verify passes on it
verify_pool() {
	"$INSPECT" verify "$1" >"$T/verify.out" 2>&1 ||
		{ cat "$T/verify.out"; fail "ckpt-inspect verify $1"; }
}

# segments POOL STATE -- how many segments of POOL are in STATE
segments() {
	"$INSPECT" list "$1" --json | /usr/bin/python3 -c '
import json, sys
print(sum(1 for s in json.load(sys.stdin)["segments"] if s["state"] == sys.argv[1]))' "$2"
}

# heap_has POOL REF STRING -- 1 if STRING is in the heap bytes of REF (the
# whole high-water range, as ckpt-inspect dump shows them), else 0; with
# HEAP_KEY set, a sealed pool's, read with that key file
heap_has() {
	"$INSPECT" heap "$1" "$2" --json ${HEAP_KEY:+--key-file "$HEAP_KEY"} >"$T/heap.json" ||
		{ echo 0; return; }
	/usr/bin/python3 - "$INSPECT" "$1" "$2" "$3" "$T/heap.json" "${HEAP_KEY:-}" <<'PY'
import json, subprocess, sys
inspect, pool, ref, needle, heapjson, key = sys.argv[1:]
keyargs = ["--key-file", key] if key else []
h = json.load(open(heapjson))
blocks = [b for b in h["blocks"] if b["state"] == "allocated"]
if not blocks:
    print(0); sys.exit(0)
lo = int(h["base"], 16)
hi = max(int(b["address"], 16) + b["size"] for b in blocks)
d = json.loads(subprocess.run([inspect, "dump", pool, ref, hex(lo), str(hi - lo), "--json"] + keyargs,
                              check=True, capture_output=True).stdout)
print(1 if needle.encode() in bytes.fromhex(d["data"]) else 0)
PY
}

# dead_ref POOL PID -- "seg:N" of the dead segment PID left, or ""
dead_ref() {
	"$INSPECT" list "$1" --json | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin)["segments"]:
    if s["state"] == "dead" and s.get("pid") == int(sys.argv[1]):
        print("seg:%d" % s["segment"]); break' "$2"
}

finish() {
	[ "$fails" = 0 ] || { echo "FAIL: $fails check(s) failed"; exit 1; }
	echo PASS
}
