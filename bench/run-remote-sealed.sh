#!/bin/bash
# run-remote-sealed.sh -- sealed checkpoints in the remote tier against the
# same checkpoints unsealed, in one run, alternating, medians of --reps,
# on a redis-server it starts on loopback (4 KiB chunks):
#   1. first push of a checkpoint of SIZE MiB of distinct pages: seconds,
#      MiB/s, sealed / unsealed;
#   2. push after 1% of the pages changed: bytes sent / image bytes (an
#      unsealed checkpoint sends about 1%; a sealed one, encrypted under a
#      salt of its own, every chunk);
#   3. eager pull into a fresh pool (a sealed one without the key), then a
#      restart with a full read and check (CKPT_RESTART=eager).
# The load average is printed before and after: the machine may be shared.
#
#   bench/run-remote-sealed.sh [--size MIB] [--reps N] [--build-dir DIR] [--dir DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
size=64 reps=3 build=$root/build dir=/var/tmp
while [ $# -gt 0 ]; do
	case "$1" in
	--size) size=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	*) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
REMOTE=$build/tools/ckpt-remote WL=$build/tests/remote_workload
T=$(mktemp -d "$dir/ckpt-bench-rsealed-XXXXXX")
rpid=
cleanup() {
	[ -n "$rpid" ] && kill -9 "$rpid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/key"

port=$((20000 + RANDOM % 30000))
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" \
	>"$T/redis.log" 2>&1 &
rpid=$!
disown "$rpid"
until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do sleep 0.05; done
URL=redis://127.0.0.1:$port/0

echo "# sealed vs unsealed push/pull: $size MiB of distinct 4 KiB pages, $reps reps, medians; $(date -u +%FT%TZ)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for f in push delta pull restart; do : >"$T/sealed.$f"; : >"$T/plain.$f"; done
for r in $(seq "$reps"); do
	for kind in sealed plain; do
		key=; [ $kind = sealed ] && key=$T/key
		rm -rf "$T/a" "$T/b"; mkdir -p "$T/a" "$T/b"
		redis-cli -p "$port" flushall >/dev/null
		CKPT_KEY_FILE=$key "$WL" create "$T/a/p.pool" $((size + 64)) "$size" >/dev/null
		t0=$(now)
		out=$(env -u CKPT_KEY_FILE "$REMOTE" push "$T/a/p.pool" latest "$URL" --json)
		t1=$(now)
		img=$(echo "$out" | jq -r .image_bytes)
		m=$(echo "$out" | jq -r .manifest)
		echo "$t1 - $t0" | bc -l >>"$T/$kind.push"
		CKPT_KEY_FILE=$key "$WL" mutate "$T/a/p.pool" 10 >/dev/null
		sent=$(env -u CKPT_KEY_FILE "$REMOTE" push "$T/a/p.pool" latest "$URL" --json |
			jq -r .transferred_bytes)
		echo "$sent / $img" | bc -l >>"$T/$kind.delta"
		t0=$(now)
		env -u CKPT_KEY_FILE "$REMOTE" pull "$URL" "$m" "$T/b/p.pool"
		t1=$(now)
		echo "$t1 - $t0" | bc -l >>"$T/$kind.pull"
		t0=$(now)
		CKPT_RESTART=eager CKPT_KEY_FILE=$key "$WL" verify "$T/b/p.pool" >/dev/null
		t1=$(now)
		echo "$t1 - $t0" | bc -l >>"$T/$kind.restart"
	done
done
for what in push delta pull restart; do
	s=$(median <"$T/sealed.$what") p=$(median <"$T/plain.$what")
	printf '%-8s sealed %10.4f  unsealed %10.4f  ratio %6.2f\n' "$what" "$s" "$p" \
		"$(echo "$s / $p" | bc -l)"
done
echo "# push and pull in seconds, delta as bytes sent / image bytes; image $img bytes"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
