#!/bin/sh
# ceph_cluster.sh -- a throwaway one-monitor, one-OSD Ceph cluster on
# 127.0.0.1 for the remote-store tests and benchmark: memstore (RAM, no
# disk), cephx authentication, no manager, pool size 1.
#   ceph_cluster.sh start DIR [POOL]  start it in DIR, create POOL (default
#                                     ckpt); prints CEPH_CONF=DIR/ceph.conf
#   ceph_cluster.sh stop DIR          kill its daemons
# Readiness is a `rados stat` under timeout: without a manager `ceph pg
# stat` and `ceph df` would hang. The monitor refuses to start with little
# free disk unless told otherwise (mon data avail crit), and memstore needs
# its size set (MEMSTORE_BYTES, default 3 GiB).
set -eu
cmd=$1 D=$2 POOL=${3:-ckpt}

stop() {
	for f in "$D"/run/*.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
	done
}

if [ "$cmd" = stop ]; then
	stop
	exit 0
fi
[ "$cmd" = start ] || { echo "usage: ceph_cluster.sh start|stop DIR [POOL]" >&2; exit 2; }
for t in ceph-mon ceph-osd ceph ceph-authtool monmaptool rados uuidgen; do
	command -v $t >/dev/null || { echo "ceph_cluster.sh: $t not installed" >&2; exit 3; }
done
mkdir -p "$D/run" "$D/mon" "$D/osd"
fsid=$(uuidgen)
port=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000))
cat >"$D/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$port
ms bind msgr2 = false
ms bind ipv4 = true
ms bind ipv6 = false
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/keyring
run dir = $D/run
pid file = $D/run/\$name.pid
admin socket = $D/run/\$name.asok
log file = $D/\$name.log
mon data = $D/mon/\$name
osd data = $D/osd/\$name
osd objectstore = memstore
memstore device bytes = ${MEMSTORE_BYTES:-3221225472}
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
osd max object size = 268435456
mon warn on pool no redundancy = false
CONF
export CEPH_CONF="$D/ceph.conf"
ceph-authtool "$D/keyring" --create-keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' \
	--cap osd 'allow *' --cap mgr 'allow *' >/dev/null
monmaptool --create --addv a "[v1:127.0.0.1:$port]" --fsid "$fsid" "$D/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring" >/dev/null 2>&1
ceph-mon -i a </dev/null >/dev/null 2>&1
osd_uuid=$(uuidgen)
id=$(timeout 30 ceph osd new "$osd_uuid")
mkdir -p "$D/osd/osd.$id"
ceph-authtool "$D/osd/osd.$id/keyring" --create-keyring --gen-key -n "osd.$id" >/dev/null
timeout 30 ceph auth add "osd.$id" osd 'allow *' mon 'allow profile osd' \
	-i "$D/osd/osd.$id/keyring" >/dev/null 2>&1
ceph-osd -i "$id" --mkfs --osd-uuid "$osd_uuid" --keyring "$D/osd/osd.$id/keyring" >/dev/null 2>&1
ceph-osd -i "$id" --keyring "$D/osd/osd.$id/keyring" </dev/null >/dev/null 2>&1
timeout 30 ceph osd pool create "$POOL" 8 >/dev/null 2>&1
timeout 30 ceph osd pool set "$POOL" size 1 --yes-i-really-mean-it >/dev/null 2>&1 || true
i=0
until timeout 5 rados -p "$POOL" stat ceph-cluster-ready 2>&1 | grep -q "No such file"; do
	i=$((i + 1))
	[ $i -lt 60 ] || { echo "ceph_cluster.sh: cluster not ready after 60 tries" >&2; stop; exit 1; }
	sleep 0.5
done
echo "CEPH_CONF=$D/ceph.conf"
