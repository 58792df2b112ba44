#!/bin/sh
# test_inspect_live -- ckpt-inspect against a pool a service is using: a
# process that allocates, frees, checkpoints and forks checkpointing children
# (test_inspect_mkpool service) while list/info/verify/heap/dump run in a
# loop. ckpt-inspect must never crash or hang, verify must never report
# damage (exit 1) caused by the races, heap/dump of a checkpoint must work or
# say it went away (exit 2); live heaps are allowed to be mid-operation.
#   sh test_inspect_live.sh CKPT_INSPECT MKPOOL SRCDIR
set -u
INSPECT=$1 MKPOOL=$2
SECONDS_RUN=${CKPT_INSPECT_LIVE_SECONDS:-8}
T=$(mktemp -d "${CKPT_TEST_TMPDIR:-/var/tmp}/ckpt-inspect-live-XXXXXX")
P=$T/pool
svc=
cleanup() { [ -n "$svc" ] && kill "$svc" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$MKPOOL" "$P" service "$SECONDS_RUN" >"$T/svc.out" 2>"$T/svc.err" &
svc=$!
i=0
while ! grep -q ready "$T/svc.out" 2>/dev/null; do
	sleep 0.05
	i=$((i + 1))
	[ $i -gt 200 ] && { echo "FAIL: service never ready"; cat "$T/svc.err"; exit 1; }
done

# run CODES... -- CMD: run with a time limit; exit status must be one of CODES
run() {
	codes=
	while [ "$1" != -- ]; do codes="$codes $1"; shift; done
	shift
	timeout -s KILL 60 "$@" >"$T/out" 2>"$T/err"
	rc=$?
	case " $codes " in
	*" $rc "*) ;;
	*) fail "'$*' exited $rc (allowed:$codes)"; head -5 "$T/err"; head -c 400 "$T/out"; echo ;;
	esac
	return 0
}

rounds=0
while kill -0 "$svc" 2>/dev/null; do
	run 0 -- "$INSPECT" list "$P" --json
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/out" || fail "list --json: not JSON"
	run 0 -- "$INSPECT" info "$P"
	run 0 -- "$INSPECT" verify "$P" --json
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["ok"] else 1)' "$T/out" \
		|| fail "verify reported damage on a sound pool in use"
	run 0 -- "$INSPECT" verify "$P"
	# a checkpoint may be removed by retention between resolving and reading
	run 0 2 -- "$INSPECT" heap "$P" latest --summary --json
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/out" || fail "heap --json: not JSON"
	run 0 2 -- "$INSPECT" heap "$P" latest
	# the service's own live heap: changes constantly, may be mid-operation
	run 0 1 2 -- "$INSPECT" heap "$P" seg:0 --summary   # 2: closed at the end
	run 0 2 -- "$INSPECT" dump "$P" latest 0x300000000000 256
	rounds=$((rounds + 1))
done
wait "$svc"
rc=$?
svc=
[ $rc = 0 ] || { fail "service exited $rc"; cat "$T/svc.err"; }
[ $rounds -ge 2 ] || fail "only $rounds rounds ran"
# once quiet, the pool verifies clean, strictly
run 0 -- "$INSPECT" verify "$P" --strict
echo "test_inspect_live: $rounds rounds against a busy pool"
[ $fails = 0 ] && echo "test_inspect_live: all passed" && exit 0
echo "test_inspect_live: $fails failure(s)"
exit 1
