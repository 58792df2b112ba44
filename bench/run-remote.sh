#!/bin/bash
# run-remote.sh -- remote checkpoints (issue 14) against the store's own
# tools, in one run, alternating, medians of --reps:
#   1. first push of a checkpoint of SIZE MiB of distinct pages (4 KiB
#      chunks, into an empty store) vs the store writing the same number of
#      objects of the same size with its own client (redis-benchmark SET -P
#      256 / rados bench write -t 256), as MiB/s and their ratio;
#   2. a push after 1% of the pages changed: bytes sent / image bytes;
#   3. pull into a fresh pool vs the store reading the same objects with
#      its own client (redis-benchmark GET / rados bench seq -t 256);
#   4. the restart from the pulled pool: ckpt_open (lazy in fork mode cow,
#      the pulled checkpoint keeping its page sums) and the full read and
#      check of every page after it;
#   5. a lazy pull (ckpt-remote pull --lazy) and a restart at once: the
#      time from the pull's start to the first read of the root after
#      ckpt_open (ready), and to the end of the full read and check of
#      every page (the filler fetching in the background, the regions the
#      program touches first), against the store client reading the same
#      objects (3.).
# The load average is printed before and after: the machine may be shared.
#
#   bench/run-remote.sh [--backend redis|rados|both] [--size MIB] [--reps N]
#                       [--fork-mode MODE] [--build-dir DIR] [--dir DIR]
#
# Uses the binaries of an existing build (default build/: ckpt-remote and
# tests/remote_workload). Starts its own redis-server and Ceph cluster
# (tests/ceph_cluster.sh) on loopback.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
backend=both size=1024 reps=3 build=$root/build dir=/var/tmp mode=cow
while [ $# -gt 0 ]; do
	case "$1" in
	--backend) backend=$2; shift 2 ;;
	--size) size=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--fork-mode) mode=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	*) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
REMOTE=$build/tools/ckpt-remote WL=$build/tests/remote_workload
T=$(mktemp -d "$dir/ckpt-bench-remote-XXXXXX")
rpid=
cleanup() {
	[ -n "$rpid" ] && kill -9 "$rpid" 2>/dev/null
	sh "$root/tests/ceph_cluster.sh" stop "$T/ceph" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
objs=$((size * 256))
export CKPT_FORK_MODE=$mode

echo "# remote bench: $size MiB of distinct 4 KiB pages, $reps reps, medians, fork mode $mode; $(date -u +%FT%TZ)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$WL" create "$T/a.pool" $((size + 64)) "$size" >/dev/null

run_backend() {
	local be=$1 url peer_w=() peer_r=() peer_rs=() ours_w=() ours_r=() restart=() opens=() checks=() sent
	local lready=() lfull=() lpull=() first=()
	for i in $(seq "$reps"); do
		# the store's own client, same object count and size
		if [ "$be" = redis ]; then
			redis-cli -p "$port" flushall >/dev/null
			t0=$(now)
			redis-benchmark -p "$port" -t set -d 4096 -n "$objs" -r "$objs" -P 256 -q >/dev/null
			t1=$(now)
			redis-benchmark -p "$port" -t get -d 4096 -n "$objs" -r "$objs" -P 256 -q >/dev/null
			t2=$(now)
			redis-cli -p "$port" flushall >/dev/null
			url=redis://127.0.0.1:$port/0
		else
			t0=$(now)
			rados -p ckpt bench 3600 write -b 4096 -O 4096 -t 256 --max-objects "$objs" --no-cleanup --run-name peer$i >/dev/null 2>&1
			t1=$(now)
			rados -p ckpt bench 3600 seq -t 256 --run-name peer$i >/dev/null 2>&1
			t2=$(now)
			rados -p ckpt cleanup --run-name peer$i >/dev/null 2>&1
			url=rados://ckpt/rep$i
		fi
		peer_w+=("$(echo "$size / ($t1 - $t0)" | bc -l)")
		peer_r+=("$(echo "$size / ($t2 - $t1)" | bc -l)")
		peer_rs+=("$(echo "$t2 - $t1" | bc -l)")
		# ours: first push into an empty store, then pull + restart elsewhere
		t0=$(now)
		m=$("$REMOTE" push "$T/a.pool" 1 "$url")
		t1=$(now)
		rm -rf "$T/b"; mkdir -p "$T/b"
		"$REMOTE" pull "$url" "$m" "$T/b/a.pool"
		t2=$(now)
		v=$("$WL" verify "$T/b/a.pool")
		t3=$(now)
		opens+=("$(echo "$v" | awk '{print $5}')")
		checks+=("$(echo "$v" | awk '{print $7}')")
		ours_w+=("$(echo "$size / ($t1 - $t0)" | bc -l)")
		ours_r+=("$(echo "$size / ($t2 - $t1)" | bc -l)")
		restart+=("$(echo "$t3 - $t1" | bc -l)")
		# the store client's first answer from a fresh process (a floor for ready)
		t0=$(now)
		if [ "$be" = redis ]; then
			redis-cli -p "$port" exists "$m" >/dev/null
		else
			rados -p ckpt -N "rep$i" stat "$m" >/dev/null
		fi
		first+=("$(echo "($(now) - $t0) * 1000" | bc -l)")
		# a lazy pull, restarted from at once
		rm -rf "$T/c"; mkdir -p "$T/c"
		t0=$(now)
		"$REMOTE" pull --lazy "$url" "$m" "$T/c/a.pool"
		lpull+=("$(echo "($(now) - $t0) * 1000" | bc -l)")
		v=$("$WL" verify "$T/c/a.pool")
		"$REMOTE" fill "$T/c/a.pool"      # the filler's end (publish)
		lready+=("$(echo "$v" | awk -v t="$t0" '{print ($9 - t) * 1000}')")
		lfull+=("$(echo "$v" | awk -v t="$t0" '{print $11 - t}')")
		echo "# $be rep $i: lazy ready ${lready[-1]} ms, every page ${lfull[-1]} s; store client read ${peer_rs[-1]} s"
		if [ "$i" = 1 ]; then
			# 1% of the pages change: what the next push sends
			cp --sparse=always "$T/a.pool" "$T/d.pool"
			"$WL" mutate "$T/d.pool" 10 >/dev/null
			out=$("$REMOTE" push "$T/d.pool" latest "$url" --json)
			sent=$(echo "$out" | jq -r '"\(.transferred_bytes) \(.manifest_bytes) \(.image_bytes)"')
		fi
		[ "$be" = redis ] && redis-cli -p "$port" flushall >/dev/null
		[ "$be" = rados ] && "$REMOTE" prune "$url" --max-age 1 >/dev/null 2>&1 || true
	done
	pw=$(printf '%s\n' "${peer_w[@]}" | median); ow=$(printf '%s\n' "${ours_w[@]}" | median)
	pr=$(printf '%s\n' "${peer_r[@]}" | median); or=$(printf '%s\n' "${ours_r[@]}" | median)
	rs=$(printf '%s\n' "${restart[@]}" | median)
	op=$(printf '%s\n' "${opens[@]}" | median); ck=$(printf '%s\n' "${checks[@]}" | median)
	lr=$(printf '%s\n' "${lready[@]}" | median); lf=$(printf '%s\n' "${lfull[@]}" | median)
	prs=$(printf '%s\n' "${peer_rs[@]}" | median)
	lp=$(printf '%s\n' "${lpull[@]}" | median); fa=$(printf '%s\n' "${first[@]}" | median)
	read -r chunks man img <<<"$sent"
	printf '%s first push   %8.1f MiB/s  store client %8.1f MiB/s  ratio %.2f\n' "$be" "$ow" "$pw" "$(echo "$ow / $pw" | bc -l)"
	printf '%s pull         %8.1f MiB/s  store client %8.1f MiB/s  ratio %.2f\n' "$be" "$or" "$pr" "$(echo "$or / $pr" | bc -l)"
	printf '%s pull+restart %8.2f s (pull, ckpt_open, read and check every page)\n' "$be" "$rs"
	printf '%s restart      ckpt_open %.1f ms, then read and check every page %.1f ms\n' "$be" "$op" "$ck"
	printf '%s lazy pull    ready %.1f ms (pull --lazy start to the root read; the pull --lazy command alone %.1f ms; the store client'"'"'s first answer from a fresh process %.1f ms)\n' "$be" "$lr" "$lp" "$fa"
	printf '%s lazy pull    every page read and checked %.2f s after the pull'"'"'s start, store client read of the same objects %.2f s, ratio %.2f\n' "$be" "$lf" "$prs" "$(echo "$lf / $prs" | bc -l)"
	printf '%s 1%% changed   sent %d chunk bytes + %d manifest bytes of %d: %.2f%%\n' "$be" "$chunks" "$man" "$img" "$(echo "100 * ($chunks + $man) / $img" | bc -l)"
}

if [ "$backend" != rados ]; then
	port=$((20000 + RANDOM % 30000))
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" >/dev/null 2>&1 &
	rpid=$!
	until redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; do sleep 0.05; done
	run_backend redis
fi
if [ "$backend" != redis ]; then
	MEMSTORE_BYTES=$(( (size * 4 + 2048) << 20 )) sh "$root/tests/ceph_cluster.sh" start "$T/ceph" >/dev/null
	export CEPH_CONF=$T/ceph/ceph.conf
	run_backend rados
fi
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
