#!/bin/bash
# run-preload-icount.sh -- where a stock redis-server spends its instructions
# plainly (Debian's, on jemalloc) and on a pool through the preload library,
# counted by valgrind's callgrind: exact and repeatable, unlike the wall
# times of run-preload.sh, and unmoved by other work on the machine.
#
#   bench/run-preload-icount.sh [--build-dir DIR] [--before BUILD-DIR]
#                               [-n REQUESTS] [--dir DIR] [--keep]
#
# Each mode starts /usr/bin/redis-server (persistence off, a unix socket)
# under `valgrind --tool=callgrind`, serves `redis-benchmark -t
# set,get,lpush,incr -n REQUESTS -P 16 -r 100000` (run-preload.sh's redis
# workload, scaled down: default 20000 requests a test), and is shut down.
# Modes: plain; ckpt, with LD_PRELOAD=libckpt-preload.so of --build-dir
# (default build-bench) on a pool made once by its ckpt-run; and with
# --before, the same with another build's library (an earlier commit's).
# The preload library is set in the server's environment as ckpt-run sets
# it (CKPT_POOL, CKPT_FORK_MODE=copy), not by running valgrind under
# ckpt-run, which would put valgrind's launcher on the pool too.
#
# Prints per mode the server's total instructions and their ratio to plain,
# the instructions in the allocator's object (libjemalloc or the preload
# library) and the calls and instructions per call of malloc, free and
# malloc_usable_size (inclusive). --keep leaves the callgrind files in DIR
# for callgrind_annotate.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=$root/build-bench before= n=20000 dir=/var/tmp keep=0
while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) build=$2; shift ;;
	--before) before=$2; shift ;;
	-n) n=$2; shift ;;
	--dir) dir=$2; shift ;;
	--keep) keep=1 ;;
	*) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
	esac
	shift
done
for c in valgrind callgrind_annotate redis-server redis-benchmark redis-cli; do
	command -v $c >/dev/null || { echo "run-preload-icount: $c is not installed" >&2; exit 1; }
done
for b in "$build" ${before:+"$before"}; do
	[ -f "$b/preload/libckpt-preload.so" ] && [ -x "$b/tools/ckpt-run" ] ||
		{ echo "run-preload-icount: $b has no preload library or ckpt-run built" >&2; exit 1; }
done
T=$(mktemp -d "$dir/ckpt-icount.XXXXXX")
srv=
trap '[ -z "$srv" ] || kill -9 $srv 2>/dev/null; [ $keep = 1 ] || rm -rf "$T"' EXIT

# serve MODE BUILD -- one server under callgrind, the workload, $T/cg.MODE
serve() {
	local mode=$1 b=${2:-} env=(env)
	if [ -n "$b" ]; then
		"$b/tools/ckpt-run" --quiet --pool "$T/$mode.pool" -- /bin/true
		env=(env LD_PRELOAD="$b/preload/libckpt-preload.so" CKPT_POOL="$T/$mode.pool"
			CKPT_FORK_MODE=copy)
	fi
	rm -f "$T/r.sock"
	"${env[@]}" valgrind --tool=callgrind --callgrind-out-file="$T/cg.$mode" \
		/usr/bin/redis-server --port 0 --unixsocket "$T/r.sock" --save "" \
		--appendonly no >"$T/$mode.log" 2>&1 &
	srv=$!
	until redis-cli -s "$T/r.sock" ping >/dev/null 2>&1; do
		kill -0 $srv 2>/dev/null || { cat "$T/$mode.log" >&2; exit 1; }
		sleep 0.2
	done
	redis-benchmark -s "$T/r.sock" -t set,get,lpush,incr -n "$n" -P 16 -r 100000 -q >/dev/null
	redis-cli -s "$T/r.sock" shutdown nosave >/dev/null 2>&1 || true
	wait $srv 2>/dev/null || true
	srv=
}

# report MODE -- totals, the allocator's object, and the three calls, read
# from the callgrind file itself (callgrind_annotate's listing splits a
# function of a build with debug information by the files inlined into it)
report() {
	local f=$T/cg.$1 total
	total=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
	[ -n "$base" ] || base=$total
	printf '%-8s %14d %7.3fx' "$1" "$total" "$(echo "$total / $base" | bc -l)"
	awk '
	# name -- a compressed name of space sp (objects, files, functions):
	# "(id) name" defines id, "(id)" uses it
	function name(sp, v,   id) {
		if (match(v, /^\([0-9]+\)/)) {
			id = sp substr(v, 2, RLENGTH - 2)
			if (RLENGTH < length(v))
				names[id] = substr(v, RLENGTH + 2)
			return names[id]
		}
		return v
	}
	{ eq = index($0, "="); key = eq ? substr($0, 1, eq - 1) : ""; val = substr($0, eq + 1) }
	key == "ob" { ob = name("o", val); next }
	key == "cob" { name("o", val); next }
	key == "fn" { name("n", val); next }
	key == "cfn" { cfn = name("n", val); next }
	key ~ /^(fl|fi|fe|cfl|cfi)$/ { name("f", val); next }
	/^calls=/ { split(substr($0, 7), c, " "); ncalls = c[1]; incall = 1; next }
	/^[0-9+*-]/ {
		if (incall) {           # the inclusive cost of the call above
			if (cfn in want) { calls[cfn] += ncalls; cost[cfn] += $2 }
			incall = 0
		} else if (ob ~ /libjemalloc|libckpt-preload/) {
			lib += $2
		}
	}
	BEGIN { want["malloc"]; want["free"]; want["malloc_usable_size"] }
	END {
		printf " %14d", lib
		n = split("malloc free malloc_usable_size", fns, " ")
		for (i = 1; i <= n; i++)
			printf " %10d %6.1f", calls[fns[i]], calls[fns[i]] ? cost[fns[i]] / calls[fns[i]] : 0
		printf "\n"
	}' "$f"
}

echo "# run-preload-icount: $(date -u +%FT%TZ), -n $n, build $build${before:+, before $before}, load $(cut -d' ' -f1-3 /proc/loadavg)"
serve plain
[ -z "$before" ] || serve before "$before"
serve ckpt "$build"
printf '%-8s %14s %8s %14s %10s %6s %10s %6s %10s %6s\n' mode instructions ratio allocator \
	malloc i/call free i/call usable i/call
base=
for m in plain ${before:+before} ckpt; do report $m; done
[ $keep = 0 ] || echo "# callgrind files kept in $T"
