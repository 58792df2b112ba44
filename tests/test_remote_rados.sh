#!/bin/sh
# test_remote_rados.sh -- remote checkpoints on a one-monitor, one-OSD Ceph
# cluster this test starts on loopback (tests/ceph_cluster.sh; scenarios in
# test_remote_lib.sh).
#   test_remote_rados.sh REMOTE_WORKLOAD CKPT_REMOTE CKPT_INSPECT
set -u
WL=$1 REMOTE=$2 INSPECT=$3
HERE=$(dirname "$0")
for t in ceph-mon ceph-osd ceph rados ceph-authtool monmaptool uuidgen; do
	command -v $t >/dev/null || {
		echo "SKIP: $t not installed (scripts/deps.sh installs ceph-mon, ceph-osd, ceph-common, uuid-runtime); PASS"
		exit 0
	}
done
T=$(mktemp -d "${CKPT_TEST_TMPDIR:-/var/tmp}/ckpt-remote-rados-XXXXXX")
C=$T/cluster
cleanup() {
	sh "$HERE/ceph_cluster.sh" stop "$C"
	rm -rf "$T"
}
trap cleanup EXIT
if ! sh "$HERE/ceph_cluster.sh" start "$C" ckpt >"$T/start.log" 2>&1; then
	echo "FAIL: cannot start the Ceph cluster:"; tail -5 "$T/start.log"
	for l in "$C"/*.log; do echo "--- $l"; tail -5 "$l"; done
	exit 1
fi
export CEPH_CONF=$C/ceph.conf
URL=rados://ckpt/test
# a cluster nobody runs: its monitor's port is closed; short timeouts
sed "s|^mon host = .*|mon host = v1:127.0.0.1:1|" "$CEPH_CONF" >"$T/down.conf"
DOWN_RETRIES=1   # each attempt waits for librados' 10 s mount timeout
DOWN_URL=$URL
DOWN_ENV="CEPH_CONF=$T/down.conf"
# the right cluster, the wrong key
sed "s|^keyring = .*|keyring = $T/bad.keyring|" "$CEPH_CONF" >"$T/bad.conf"
ceph-authtool "$T/bad.keyring" --create-keyring --gen-key -n client.admin >/dev/null
BAD_AUTH_URL=$URL
BAD_AUTH_ENV="CEPH_CONF=$T/bad.conf CKPT_REMOTE_RETRIES=0"

r() { timeout 30 rados -p ckpt -N test "$@"; }
store_set() { r put "$1" "$2"; }
store_get() { r get "$1" "$2"; }
store_del() { r rm "$1"; }
store_count() { r ls | grep -c "^$1"; }
store_dump() { timeout 60 rados -p ckpt export "$1" >/dev/null; }

. "$HERE/test_remote_lib.sh"
run_scenarios
sealed_scenario

# a pool the cluster does not have: named
"$REMOTE" list rados://nosuchpool 2>"$T/err" && fail "list of a missing pool succeeded"
grep -q "no pool 'nosuchpool'" "$T/err" && echo "ok: missing pool named" || fail "unclear: $(cat "$T/err")"

# last (it stops the OSD): the store going down during a lazy pull; its
# requests then hang, so the library's wait bound ends the touch
stop_store() { for f in "$C"/run/osd.*.pid; do kill -9 "$(cat "$f")"; done; }
lazy_pull_scenario
lazy_pull_store_down stop_store

[ $fails -eq 0 ] && echo PASS || echo "FAIL: $fails failures"
