#!/bin/sh
# test_preload -- real, unmodified Debian programs under ckpt-run (issue 13).
#   sh test_preload.sh WHAT CKPT_RUN CKPT_INSPECT
# Each WHAT runs a program on a fresh pool, lets the program's own checks
# decide whether it ran correctly, and then checks what the pool holds:
# `ckpt-inspect verify` passes, the segments are the ones ckpt-run(1)
# documents (one per process image; a fork child's names its parent), and
# a marker the program put in its heap is found in the dead segment with
# `ckpt-inspect dump` (so the heap really was in the pool). The quick
# variants run in CI; CKPT_TEST_LONG=1 runs the long ones.
#
#   python  python3 on a subset of its own test suite that allocates heavily
#           (dicts, lists, sets, bytes, the cyclic GC: obmalloc arenas come
#           from mmap, objects from malloc), and a fork + exec from Python
#   sqlite  sqlite3 building, indexing, deleting from and vacuuming a real
#           database file, then PRAGMA integrity_check: its page cache and
#           sorter are heap memory the database must survive
#   bash    a pipeline with subshells and command substitution: many short
#           processes, forks with and without exec
#   git     init, add, commit, log, gc, fsck --full on a real repository:
#           a program that forks, execs and mmaps packs (file mappings must
#           be left alone)
#   gcc     compiling and linking a multi-file C program (the driver
#           posix_spawns cc1, as and collect2; cc1's GC heap is mmap)
#   redis   stock redis-server: redis-benchmark, BGSAVE (its fork child on
#           its own segment, kept with --durable-after 0), and after kill -9
#           a key in the dead heap
#   young   young heaps (format 1.5): a process that ends within its first
#           --durable-after ms leaves no segment, one that forks or grows
#           after that publishes its heap; two young processes never share
#           a segment, and a young heap past the end of the file is not cut
#           off by another process's commit; kill -9 at every named point
#           of a young start-up and of a publish leaves a pool that verifies
#           and serves the next process; fork children start young too; a
#           publication inside the durable size (format 1.8) does not sync
#           the file, one past the headroom does (kill -9 there); a young
#           heap's background checkpoint (fork modes copy and cow) is taken
#           and carries the heap's lineage
#   sealed  a sealed pool (CKPT_KEY_FILE) under ckpt-run: the exit checkpoint
#           holds the program's data, readable with the key only, and the
#           pool file holds none of it in the clear; without a key the
#           preload library does not load libcrypto (crypto_lazy.c)
#   vmem    anonymous memory served from the pool reads as zeroes, as the
#           kernel's would: after munmap and mmap again, MADV_DONTNEED and
#           mremap growth, and after mprotect PROT_NONE then
#           MADV_DONTNEED (no write permission while zeroed), in sizes
#           zeroed by memset, by page-cache residency (cached pages in
#           place, the rest by a zero-range of the file) and by a
#           zero-range whole; in one range half evicted (written back full
#           of bytes, MADV_PAGEOUT); in four threads mapping, filling and
#           freeing at once; in the next process that takes the
#           segment a young process left full of bytes; and all but the
#           half-evicted range again on a sealed pool and in fork mode cow
#           (a private mapping of an image, zeroed by stores), where the
#           exit checkpoint must hold the zeroes of a decommit and not the
#           bytes they replaced. Protections as the kernel keeps them
#           (/proc/self/maps): pages mremap grows a window over after it
#           was trimmed while PROT_NONE are the mapping's (a store there
#           must not fault), a read-only mapping grown or moved stays
#           read-only, MADV_DONTNEED of read-only memory zeroes it and
#           leaves it read-only, read-only memory unmapped and mapped
#           again is writable zeroes
#   errors  what ckpt-run refuses, with its exit status
set -eu
WHAT=${1:?usage: test_preload.sh WHAT CKPT_RUN CKPT_INSPECT}
CKPT_RUN=${2:?} INSPECT=${3:?}
. "$(dirname "$0")/test_preload_lib.sh"

case $WHAT in
python)
	P=$T/py.pool
	if long; then
		tests="test_dict test_list test_set test_deque test_gc test_bytes test_unicode
			test_collections test_itertools test_json test_pickle test_re test_sort"
	else
		tests="test_dict test_set"
	fi
	# shellcheck disable=SC2086
	run "$P" /usr/bin/python3 -m test -q $tests >"$T/py.out" 2>&1 ||
		{ tail -20 "$T/py.out"; fail "python3 -m test $tests"; }
	grep -q "Tests result: SUCCESS" "$T/py.out" || fail "python3 test suite did not succeed"
	# a fork child and an exec'd image each get a segment (--durable-after
	# 0: published at start, however short their lives); kill -9 leaves the heap
	"$CKPT_RUN" --quiet --durable-after 0 --pool "$P" -- /usr/bin/python3 -c '
import os, sys
keep = ["MARKER-" + "python-heap-%d" % i for i in range(1000)]
pid = os.fork()
if pid == 0:
    os.execv("/usr/bin/python3", ["python3", "-c", "print(7)"])
_, st = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(st) == 0
sys.stdout.flush()
os.kill(os.getpid(), 9)' >"$T/py2.out" 2>&1 && fail "python3 was not killed"
	grep -qx 7 "$T/py2.out" || fail "the exec'd python3 did not run"
	pid=$("$INSPECT" list "$P" --json | /usr/bin/python3 -c '
import json, sys
print(max((s["time_ns"], s["pid"]) for s in json.load(sys.stdin)["segments"]
          if s["state"] == "dead" and s["parent"] is None)[1])')
	ref=$(dead_ref "$P" "$pid")
	[ -n "$ref" ] || fail "no dead segment"
	"$INSPECT" list "$P" --json | /usr/bin/python3 -c '
import json, sys
segs = json.load(sys.stdin)["segments"]
kids = [s for s in segs if s["parent"] is not None]
assert kids, "no fork child segment"' || fail "the fork child has no segment naming its parent"
	# outside checkpoints: one on a signal, one at exit; both hold the heap
	"$CKPT_RUN" --quiet --pool "$P" --checkpoint-on USR2 --on-exit checkpoint -- \
		/usr/bin/python3 -c '
import json, os, signal, subprocess, sys, time
keep = ["MARKER-" + "outside-checkpoint-%d" % i for i in range(100)]
os.kill(os.getpid(), signal.SIGUSR2)
for _ in range(600):    # until the background checkpoint is listed
    out = subprocess.run([sys.argv[1], "list", sys.argv[2], "--json"],
                         capture_output=True, check=True).stdout
    if any(s["label"] == "signal" for s in json.loads(out)["segments"]):
        break
    time.sleep(0.05)
else:
    sys.exit("no checkpoint labelled signal")' "$INSPECT" "$P" || fail "python3 with --checkpoint-on"
	for label in signal exit; do
		id=$("$INSPECT" list "$P" --json | /usr/bin/python3 -c '
import json, sys
c = [s["checkpoint"] for s in json.load(sys.stdin)["segments"] if s["label"] == sys.argv[1]]
print(c[0] if c else "")' $label)
		if [ -z "$id" ]; then
			fail "no checkpoint labelled $label"
		elif [ "$(heap_has "$P" "$id" MARKER-outside-checkpoint-7)" != 1 ]; then
			fail "checkpoint $label ($id) does not hold the program's data"
		fi
	done
	verify_pool "$P"
	;;
sqlite)
	P=$T/sq.pool
	n=50000
	long && n=1000000
	run "$P" /usr/bin/sqlite3 "$T/t.db" "
create table t(id integer primary key, v text, w blob);
with recursive c(x) as (select 1 union all select x + 1 from c where x < $n)
insert into t select x, printf('row-%d', x), randomblob(100) from c;
create index iv on t(v);
delete from t where id % 3 = 0;
vacuum;
pragma integrity_check;
select count(*) from t;" >"$T/sq.out" 2>&1 || { cat "$T/sq.out"; fail "sqlite3"; }
	[ "$(sed -n 1p "$T/sq.out")" = ok ] || fail "integrity_check: $(head -3 "$T/sq.out")"
	[ "$(sed -n 2p "$T/sq.out")" = $((n - n / 3)) ] || fail "row count $(sed -n 2p "$T/sq.out")"
	# the heap of the killed process holds the query text
	"$CKPT_RUN" --quiet --durable-after 0 --pool "$P" -- /bin/sh -c 'exec /usr/bin/sqlite3 "$1" \
		"select \"MARKER-sqlite-heap\"; select * from t limit 1;" >/dev/null; ' sh "$T/t.db" ||
		fail "sqlite3 (2)"
	ref=$("$INSPECT" list "$P" --json | /usr/bin/python3 -c '
import json, sys
s = max((s["time_ns"], s["segment"]) for s in json.load(sys.stdin)["segments"] if s["state"] == "dead")
print("seg:%d" % s[1])')
	[ "$(heap_has "$P" "$ref" MARKER-sqlite-heap)" = 1 ] ||
		fail "the query text is not in the dead heap $ref"
	verify_pool "$P"
	;;
bash)
	P=$T/sh.pool
	n=5
	long && n=100
	out=$(run "$P" /bin/bash -c '
total=0
for i in $(seq 1 '"$n"'); do
	c=$( (echo "line $i"; echo other; (echo nested)) | sort | uniq | wc -l )
	total=$((total + c))
done
echo "$total $(echo abc | tr a-c x-z) $( { echo x; echo y; } | tac | paste -sd, )"') ||
		fail "bash exited $?"
	[ "$out" = "$((3 * n)) xyz y,x" ] || fail "bash printed '$out'"
	forks=$("$INSPECT" list "$P" --json | /usr/bin/python3 -c '
import json, sys
print(sum(1 for s in json.load(sys.stdin)["segments"] if s["parent"] is not None))')
	[ "$forks" -gt 0 ] || fail "no segment of a fork child names its parent"
	[ "$(segments "$P" live)" = 0 ] || fail "a live segment is left"
	verify_pool "$P"
	;;
git)
	P=$T/git.pool
	n=3
	long && n=30
	mkdir "$T/repo"
	cd "$T/repo"
	g() { run "$P" /usr/bin/git -c user.name=t -c user.email=t@example.org "$@"; }
	g init -q . || fail "git init"
	i=1
	while [ $i -le $n ]; do
		seq 1 $((i * 2000)) >"f$i.txt"
		echo "MARKER-git-commit-$i" >>"f$i.txt"
		g add "f$i.txt" || fail "git add $i"
		g commit -qm "commit $i" || fail "git commit $i"
		i=$((i + 1))
	done
	[ "$(g log --oneline | wc -l)" = "$n" ] || fail "git log does not show $n commits"
	g gc -q || fail "git gc"
	g fsck --full >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; fail "git fsck"; }
	g grep -q "MARKER-git-commit-$n" || fail "git grep"
	cd "$T"
	verify_pool "$P"
	;;
gcc)
	P=$T/gcc.pool
	mkdir "$T/src"
	nfiles=4
	long && nfiles=40
	: >"$T/src/all.h"
	i=0
	while [ $i -lt $nfiles ]; do
		echo "int f$i(int);" >>"$T/src/all.h"
		cat >"$T/src/f$i.c" <<EOC
#include "all.h"
struct node { int v; struct node *next; };
static int walk(struct node *n) { int s = 0; for (; n; n = n->next) s += n->v; return s; }
int f$i(int x) { struct node c = { x, 0 }, b = { $i, &c }; return walk(&b); }
EOC
		i=$((i + 1))
	done
	{
		echo '#include <stdio.h>'
		echo '#include "all.h"'
		echo 'int main(void) { long s = 0;'
		i=0
		while [ $i -lt $nfiles ]; do echo "s += f$i(1);"; i=$((i + 1)); done
		printf '%s\n' 'printf("%ld\n", s); return 0; }'
	} >"$T/src/main.c"
	# --durable-after 0: every process publishes its heap at start, so
	# each leaves a segment, however short-lived
	"$CKPT_RUN" --quiet --durable-after 0 --pool "$P" -- \
		/usr/bin/gcc -O2 -Wall -Werror -o "$T/prog" "$T"/src/*.c || fail "gcc failed"
	want=$((nfiles + nfiles * (nfiles - 1) / 2))
	[ "$("$T/prog")" = "$want" ] || fail "the compiled program printed $("$T/prog")"
	[ "$(segments "$P" dead)" -ge 3 ] || fail "gcc, cc1, as and ld left fewer than 3 segments"
	verify_pool "$P"
	;;
redis)
	command -v redis-server >/dev/null || die "redis-server not found: scripts/deps.sh installs it"
	P=$T/redis.pool
	SOCK=$T/redis.sock
	"$CKPT_RUN" --quiet --durable-after 0 --pool "$P" -- /usr/bin/redis-server --port 0 --unixsocket "$SOCK" --save "" --dir "$T" \
		--appendonly no >"$T/redis.log" 2>&1 &
	runpid=$!
	stop_redis() { kill -9 "$runpid" 2>/dev/null; }
	cleanup_hooks="stop_redis"
	i=0
	until redis-cli -s "$SOCK" ping >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 500 ] || { cat "$T/redis.log"; die "redis-server did not start"; }
		sleep 0.02
	done
	n=20000
	long && n=400000
	redis-benchmark -s "$SOCK" -t set,get,lpush,incr -n $n -r 100000 -q >"$T/bench.out" 2>&1 ||
		{ cat "$T/bench.out"; fail "redis-benchmark"; }
	redis-cli -s "$SOCK" set MARKER-redis-key MARKER-redis-value >/dev/null
	[ "$(redis-cli -s "$SOCK" bgsave)" = "Background saving started" ] || fail "BGSAVE refused"
	i=0
	while [ "$(redis-cli -s "$SOCK" info persistence | tr -d '\r' |
			sed -n 's/^rdb_bgsave_in_progress://p')" != 0 ]; do
		i=$((i + 1))
		[ $i -lt 3000 ] || die "BGSAVE never finished"
		sleep 0.02
	done
	redis-cli -s "$SOCK" info persistence | tr -d '\r' | grep -q '^rdb_last_bgsave_status:ok' ||
		fail "BGSAVE failed: $(tail -3 "$T/redis.log")"
	[ -s "$T/dump.rdb" ] || fail "BGSAVE wrote no dump.rdb"
	pid=$(redis-cli -s "$SOCK" info server | tr -d '\r' | sed -n 's/^process_id://p')
	kill -9 "$pid"
	wait "$runpid" 2>/dev/null || true
	ref=$(dead_ref "$P" "$pid")
	[ -n "$ref" ] || fail "redis-server's heap is not a dead segment"
	child=$("$INSPECT" list "$P" --json | /usr/bin/python3 -c '
import json, sys
print(sum(1 for s in json.load(sys.stdin)["segments"] if s["parent"] is not None))')
	[ "$child" -ge 1 ] || fail "the BGSAVE child has no segment naming its parent"
	[ "$(heap_has "$P" "$ref" MARKER-redis-key)" = 1 ] || fail "the key is not in $ref"
	[ "$(heap_has "$P" "$ref" MARKER-redis-value)" = 1 ] || fail "the value is not in $ref"
	verify_pool "$P"
	;;
young)
	P=$T/y.pool
	run "$P" /bin/true || fail "the first run"
	inuse() { echo $(($(segments "$P" live) + $(segments "$P" dead) + $(segments "$P" busy))); }
	newest_dead() {         # newest_dead POOL all|child -- "seg:N" of the newest dead heap, or ""
		"$INSPECT" list "$1" --json | /usr/bin/python3 -c '
import json, sys
d = [s for s in json.load(sys.stdin)["segments"] if s["state"] == "dead" and
     (sys.argv[1] == "all" or s["parent"] is not None)]
print("seg:%d" % max((s["time_ns"], s["segment"]) for s in d)[1] if d else "")' "$2"
	}
	# ends young: nothing left, whatever it allocated (--durable-after
	# 60000: no growth publishes it, however slow the machine)
	run_young() { p=$1; shift; "$CKPT_RUN" --quiet --durable-after 60000 --pool "$p" -- "$@"; }
	n0=$(inuse)
	run_young "$P" /usr/bin/python3 -c 'x = ["MARKER-young-%d" % i for i in range(100000)]' ||
		fail "python3, young"
	[ "$(inuse)" = "$n0" ] || fail "a process that ended young left a segment"
	# while it runs, ckpt-inspect marks its free segment young; then not
	nyoung() {
		"$INSPECT" list "$P" --json | /usr/bin/python3 -c '
import json, sys
print(sum(1 for s in json.load(sys.stdin)["segments"] if s["young"]))'
	}
	run_young "$P" /usr/bin/python3 -c '
import os, sys, time
open(sys.argv[1], "w").close()
time.sleep(1)' "$T/y-started" &
	yp=$!
	i=0
	until [ -e "$T/y-started" ]; do
		i=$((i + 1)); [ $i -lt 1500 ] || break; sleep 0.02
	done
	[ "$(nyoung)" = 1 ] || fail "a running young heap is not listed as young"
	wait $yp || fail "the sleeping python3 failed"
	[ "$(nyoung)" = 0 ] || fail "a young heap is listed after its process ended"
	# a background checkpoint of a heap still young, in fork modes copy and
	# cow: the heap is published first and the checkpoint carries its
	# lineage (its retention counts it). The program does not fork (a fork
	# would publish the heap first): the shell watches for the checkpoint
	for mode in copy cow; do
		B=$T/bg-$mode.pool
		rm -f "$T/bg-seen"
		"$CKPT_RUN" --quiet --durable-after 60000 --fork-mode $mode --pool "$B" \
			--checkpoint-on USR2 --on-exit checkpoint -- /usr/bin/python3 -c '
import os, signal, sys, time
os.kill(os.getpid(), signal.SIGUSR2)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)' "$T/bg-seen" >"$T/bg.out" 2>&1 &
		bp=$!
		i=0
		until "$INSPECT" list "$B" 2>/dev/null | grep -q " signal "; do
			i=$((i + 1)); [ $i -lt 1500 ] || break; sleep 0.02
		done
		touch "$T/bg-seen"
		wait $bp || fail "fork mode $mode: the young program failed: $(cat "$T/bg.out")"
		[ -s "$T/bg.out" ] && fail "fork mode $mode, young: $(cat "$T/bg.out")"
		"$INSPECT" list "$B" --json | /usr/bin/python3 -c '
import json, sys
segs = json.load(sys.stdin)["segments"]
lin = {s["label"]: s["lineage"] for s in segs if s["state"] == "checkpoint"}
heap = [s["lineage"] for s in segs if s["state"] == "dead"]
assert set(lin) == {"signal", "exit"}, "checkpoints: %s" % lin
assert lin["signal"] == lin["exit"] == heap[0], "lineages: %s, heap %s" % (lin, heap)' ||
			fail "fork mode $mode: a young heap's background checkpoint"
		verify_pool "$B"
	done
	# grows after --durable-after: published; kill -9 leaves its heap
	set +e
	"$CKPT_RUN" --quiet --durable-after 100 --pool "$P" -- /usr/bin/python3 -c '
import os, time
time.sleep(0.3)
x = ["MARKER-grown-%d" % i for i in range(300000)]
os.kill(os.getpid(), 9)'
	got=$?
	set -e
	[ "$got" = 137 ] || fail "the growing python3 exited $got"
	ref=$(newest_dead "$P" all)
	if [ -z "$ref" ]; then
		fail "a heap that grew after --durable-after was not published"
	elif [ "$(heap_has "$P" "$ref" MARKER-grown-7)" != 1 ]; then
		fail "the published heap $ref does not hold the program's data"
	fi
	verify_pool "$P"
	# fork children start young: one that exits at once leaves nothing, one
	# that grows after --durable-after publishes, naming its parent
	n0=$(inuse)
	set +e
	"$CKPT_RUN" --quiet --durable-after 100 --pool "$P" -- /usr/bin/python3 -c '
import os, time
keep = ["MARKER-parent-%d" % i for i in range(1000)]
pid = os.fork()
if pid == 0: os._exit(0)
os.waitpid(pid, 0)
pid = os.fork()
if pid == 0:
    time.sleep(0.3)
    x = ["MARKER-child-%d" % i for i in range(300000)]
    os.kill(os.getpid(), 9)
os.waitpid(pid, 0)
os.kill(os.getpid(), 9)'
	got=$?
	set -e
	[ "$got" = 137 ] || fail "the forking python3 exited $got"
	[ "$(inuse)" = $((n0 + 2)) ] || fail "a parent and one grown child: $(inuse) segments in use, want $((n0 + 2))"
	kid=$(newest_dead "$P" child)
	if [ -z "$kid" ]; then
		fail "the grown fork child has no segment naming its parent"
	elif [ "$(heap_has "$P" "$kid" MARKER-child-7)" != 1 ]; then
		fail "the fork child's segment $kid does not hold its data"
	fi
	verify_pool "$P"
	# two young processes at once: B holds a segment, A one past the end
	# of the file; B publishes (a commit that trims the file) and exits;
	# A then fills 64 MiB (SIGBUS if its segment was cut off), publishes
	# by forking and is killed: both heaps dead, each with its own marker
	Q=$T/two.pool
	run "$Q" /bin/true || fail "the first run on two.pool"
	"$CKPT_RUN" --quiet --pool "$Q" -- /usr/bin/python3 -c '
import os, sys, time
t = sys.argv[1]
keep = ["MARKER-B-%d" % i for i in range(1000)]
open(t + "/b-started", "w").close()
while not os.path.exists(t + "/a-started"): time.sleep(0.01)
pid = os.fork()
if pid == 0: os._exit(0)
os.waitpid(pid, 0)' "$T" &
	b=$!
	"$CKPT_RUN" --quiet --pool "$Q" -- /usr/bin/python3 -c '
import os, sys, time
t = sys.argv[1]
while not os.path.exists(t + "/b-started"): time.sleep(0.01)
keep = ["MARKER-A-%d" % i for i in range(1000)]
open(t + "/a-started", "w").close()
while not os.path.exists(t + "/b-done"): time.sleep(0.01)
big = bytearray(64 << 20)
for i in range(0, len(big), 4096): big[i] = 1
pid = os.fork()
if pid == 0: os._exit(0)
os.waitpid(pid, 0)
os.kill(os.getpid(), 9)' "$T" &
	a=$!
	wait $b || fail "process B failed"
	: >"$T/b-done"
	set +e
	wait $a
	got=$?
	set -e
	[ "$got" = 137 ] || fail "process A exited $got (135: SIGBUS, its segment was cut off)"
	"$INSPECT" list "$Q" --json >"$T/two.json"
	for who in A B; do
		ref=$(/usr/bin/python3 -c '
import json, sys
d = [s for s in json.load(open(sys.argv[1]))["segments"] if s["state"] == "dead" and s["parent"] is None]
print(" ".join("seg:%d" % s["segment"] for s in d))' "$T/two.json")
		found=0
		for r in $ref; do [ "$(heap_has "$Q" "$r" "MARKER-$who-5")" = 1 ] && found=1; done
		[ $found = 1 ] || fail "no dead heap holds process $who's data (dead: $ref)"
	done
	verify_pool "$Q"
	# a python3 that forks (a fork publishes a young heap) and waits
	forker='import os
pid = os.fork()
if pid == 0: os._exit(0)
os.waitpid(pid, 0)'
	# kill -9 at each named point: the pool verifies, and serves the next
	# (fork:*: a young child's reservation, the parent or the child killed)
	for point in attach:young-claimed attach:young-formatted attach:before-publish \
			attach:after-publish fork:after-copy fork:child-before-claim; do
		n0=$(inuse)
		set +e
		CKPT_TEST_CRASH_AT=$point "$CKPT_RUN" --quiet --pool "$P" -- /usr/bin/python3 -c '
import os
keep = ["MARKER-point-%d" % i for i in range(1000)]
pid = os.fork()
if pid == 0: os._exit(0)
os.waitpid(pid, 0)' >"$T/point.out" 2>&1
		got=$?
		set -e
		case $point:$got in
		fork:child-before-claim:0 | *:137) ;;
		*) fail "$point: not killed there (exit $got): $(cat "$T/point.out")" ;;
		esac
		verify_pool "$P"
		case $point in
		attach:after-publish)
			[ "$(inuse)" -gt "$n0" ] || fail "$point: the published heap left no segment" ;;
		attach:young-*)
			[ "$(inuse)" = "$n0" ] || fail "$point: a young heap left a segment" ;;
		esac
		run "$P" /usr/bin/python3 -c "$forker" ||
			fail "after a kill at $point the next process cannot run"
	done
	# the size sync (format 1.8): a publication inside the durable size the
	# catalog records does not sync, so a process armed at
	# catalog:after-grow lives; the dead heaps fill the file's headroom
	# until one publishes past it: that one syncs and is killed there; the
	# pool verifies and serves the next, whose publication syncs
	R=$T/durable.pool
	run "$R" /bin/true || fail "the first run on durable.pool"
	lived=0 killed=0
	for i in $(seq 1 16); do
		set +e
		CKPT_TEST_CRASH_AT=catalog:after-grow "$CKPT_RUN" --quiet --pool "$R" -- \
			/usr/bin/python3 -c "$forker" >"$T/point.out" 2>&1
		got=$?
		set -e
		case $got in
		0) lived=$((lived + 1)) ;;
		137) killed=1; break ;;
		*) fail "catalog:after-grow: exit $got: $(cat "$T/point.out")" ;;
		esac
	done
	[ $lived -ge 2 ] || fail "catalog:after-grow: $lived publications inside the durable size did not sync, want >= 2"
	[ $killed = 1 ] || fail "catalog:after-grow: no publication past the file's headroom synced in 16 runs"
	verify_pool "$R"
	run "$R" /usr/bin/python3 -c "$forker" ||
		fail "after a kill at catalog:after-grow the next process cannot run"
	verify_pool "$R"
	# on a pool of format 1.7 every publication past the old end syncs
	CKPT_TEST_FORMAT_1_7=1 run "$T/old17.pool" /bin/true || fail "a 1.7 pool"
	set +e
	CKPT_TEST_CRASH_AT=catalog:after-grow "$CKPT_RUN" --quiet --pool "$T/old17.pool" -- \
		/usr/bin/python3 -c "$forker" >"$T/point.out" 2>&1
	got=$?
	set -e
	[ $got = 137 ] || fail "catalog:after-grow on a 1.7 pool: not killed there (exit $got)"
	verify_pool "$T/old17.pool"
	# a pool of format 1.3 (no young heaps): every heap is published at start
	CKPT_TEST_FORMAT_1_3=1 run "$T/old.pool" /bin/true || fail "a 1.3 pool"
	n1=$(segments "$T/old.pool" dead)
	run "$T/old.pool" /bin/true || fail "true on a 1.3 pool"
	[ "$(segments "$T/old.pool" dead)" -gt "$n1" ] || fail "a 1.3 pool: the heap was not published"
	verify_pool "$T/old.pool"
	;;
sealed)
	P=$T/s.pool
	head -c 32 /dev/urandom >"$T/key"
	# a pool that is not sealed: libcrypto is never mapped
	n=$(run "$P.plain" /bin/sh -c 'grep -c libcrypto /proc/$$/maps || :') ||
		fail "/bin/sh on a plain pool"
	[ "$n" = 0 ] || fail "libcrypto is mapped by a process on a pool that is not sealed"
	CKPT_KEY_FILE=$T/key "$CKPT_RUN" --quiet --pool "$P" --size 64M --on-exit checkpoint -- \
		/usr/bin/python3 -c '
import hashlib
keep = ["MARKER-" + "sealed-heap-%d" % i for i in range(1000)]
assert hashlib.sha256(b"x").hexdigest().startswith("2d711642")' ||
		fail "python3 on a sealed pool"
	grep -q "MARKER-sealed-heap" "$P" && fail "plaintext of the heap in the sealed pool file"
	id=$("$INSPECT" list "$P" --json | /usr/bin/python3 -c '
import json, sys
c = [s["checkpoint"] for s in json.load(sys.stdin)["segments"] if s["label"] == "exit"]
print(c[0] if c else "")')
	if [ -z "$id" ]; then
		fail "no exit checkpoint on the sealed pool"
	else
		[ "$(HEAP_KEY=$T/key heap_has "$P" "$id" MARKER-sealed-heap-7)" = 1 ] ||
			fail "the sealed exit checkpoint does not hold the program's data"
		"$INSPECT" heap "$P" "$id" >/dev/null 2>&1 &&
			fail "ckpt-inspect heap read a sealed checkpoint without the key"
	fi
	verify_pool "$P"
	;;
vmem)
	command -v gcc >/dev/null || die "no gcc: cannot build the probe"
	cat >"$T/vmem.c" <<'EOC'
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#define PG 4096UL
/* sizes: memset (< 64 KiB), by residency (<= 8 MiB), zero-range (> 8 MiB) */
static const size_t sizes[] = { 16 << 10, 64 << 10, 2 << 20, 8 << 20, 24 << 20 };
static volatile int bad;
static void check(const char *what, size_t sz, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i]) {
			printf("FAIL: %s, %zu KiB: byte %zu is 0x%02x\n", what, sz >> 10, i, p[i]);
			bad = 1;
			return;
		}
}
static unsigned char *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) { perror("mmap"); exit(2); }
	return p;
}
/* perms -- the kernel's protection of the page at a, as /proc/self/maps
 * spells it ("rw-", "r--", "---"), or "?" */
static const char *perms(const void *a)
{
	static char got[4];
	unsigned long lo, hi;
	char line[512], pr[5];
	FILE *f = fopen("/proc/self/maps", "r");
	strcpy(got, "?");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, pr) == 3 &&
		    lo <= (uintptr_t)a && (uintptr_t)a < hi) {
			memcpy(got, pr, 3);
			break;
		}
	if (f)
		fclose(f);
	return got;
}
static void want_perms(const char *what, const void *a, const char *want)
{
	if (strcmp(perms(a), want)) {
		printf("FAIL: %s: the page is %s, want %s\n", what, perms(a), want);
		bad = 1;
	}
}
/* protections -- what the kernel does to protections: a window grown over
 * pages trimmed while PROT_NONE takes the protection of the mapping (a
 * store there must not fault); read-only memory unmapped, mapped again,
 * grown or moved; zeroed while read-only */
static void protections(void)
{
	unsigned char *p = map(4 * PG);
	memset(p, 0xa5, 4 * PG);
	if (mprotect(p + 2 * PG, 2 * PG, PROT_NONE) || munmap(p + 2 * PG, 2 * PG) ||
	    mremap(p, 2 * PG, 4 * PG, 0) != p) { perror("trim and grow"); exit(2); }
	want_perms("pages grown over a PROT_NONE tail", p + 3 * PG, "rw-");
	check("pages grown over a PROT_NONE tail", 4 * PG, p + 2 * PG, 2 * PG);
	memset(p + 2 * PG, 0x11, 2 * PG);       /* SIGSEGV if still PROT_NONE */
	/* a read-only mapping grows read-only */
	if (munmap(p + 2 * PG, 2 * PG) || mprotect(p, 2 * PG, PROT_READ) ||
	    mremap(p, 2 * PG, 4 * PG, 0) != p) { perror("trim, protect, grow"); exit(2); }
	want_perms("a read-only mapping grown", p + 3 * PG, "r--");
	check("a read-only mapping grown", 4 * PG, p + 2 * PG, 2 * PG);
	/* zeroed read-only (MADV_DONTNEED leaves the protection) */
	if (madvise(p, 4 * PG, MADV_DONTNEED)) { perror("madvise"); exit(2); }
	check("MADV_DONTNEED of read-only memory", 4 * PG, p, 4 * PG);
	want_perms("MADV_DONTNEED of read-only memory", p, "r--");
	/* moved read-only: its bytes, read-only */
	if (mprotect(p, 4 * PG, PROT_READ | PROT_WRITE)) { perror("mprotect"); exit(2); }
	memset(p, 0x42, 4 * PG);
	if (mprotect(p, 4 * PG, PROT_READ)) { perror("mprotect"); exit(2); }
	unsigned char *q = mremap(p, 4 * PG, 64 * PG, MREMAP_MAYMOVE);
	if (q == MAP_FAILED) { perror("mremap"); exit(2); }
	for (size_t i = 0; i < 4 * PG; i++)
		if (q[i] != 0x42) { printf("FAIL: moved: byte %zu is 0x%02x\n", i, q[i]); bad = 1; break; }
	check("a read-only mapping moved", 64 * PG, q + 4 * PG, 60 * PG);
	want_perms("a read-only mapping moved", q + 63 * PG, "r--");
	munmap(q, 64 * PG);
	/* read-only memory unmapped and mapped again: zeroes, writable */
	for (int k = 0; k < 8; k++) {
		p = map(16 * PG);
		memset(p, 0x5a, 16 * PG);
		if (mprotect(p, 16 * PG, PROT_READ)) { perror("mprotect"); exit(2); }
		munmap(p, 16 * PG);
	}
	p = map(16 * PG);
	check("read-only memory unmapped, mapped again", 16 * PG, p, 16 * PG);
	memset(p, 1, 16 * PG);
	munmap(p, 16 * PG);
}
/* cycle -- one thread's mappings: each must read as zeroes though the
 * others keep filling and freeing blocks of the same heap meanwhile */
static void *cycle(void *arg)
{
	size_t seed = (size_t)arg;
	for (int i = 0; i < 200; i++) {
		size_t sz = (size_t)(1 + (seed + (size_t)i * 7) % 32) << 15;  /* 32 KiB .. 1 MiB */
		unsigned char *p = map(sz);
		check("a mapping among threads", sz, p, sz);
		memset(p, 0x11 + (int)seed, sz);
		if (i % 3 == 0) {
			if (madvise(p, sz, MADV_DONTNEED)) { perror("madvise"); exit(2); }
			check("MADV_DONTNEED among threads", sz, p, sz);
		}
		munmap(p, sz);
	}
	return NULL;
}
int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);   /* each FAIL: out before a crash */
	int fill = argc > 1 && argv[1][0] == 'f';   /* leave every page full for the next process */
	int first = argc > 1 && argv[1][0] == 'c';  /* check what a fresh mapping reads */
	/* sealed: anonymous memory; private: cow mode, a private mapping of
	 * an image: no page cache to evict; both: checkpoints read memory */
	int priv = argc > 1 && (argv[1][0] == 's' || argv[1][0] == 'p');
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t sz = sizes[k];
		unsigned char *p = map(sz);
		check("a fresh mapping", sz, p, sz);
		if (first)
			continue;
		memset(p, 0xa5, sz);
		if (fill)
			continue;
		/* half the pages cached and mapped, half only cached */
		munmap(p, sz);
		p = map(sz);
		check("mmap after munmap", sz, p, sz);
		memset(p, 0x5a, sz / 2);
		if (madvise(p, sz, MADV_DONTNEED)) { perror("madvise"); return 2; }
		check("after MADV_DONTNEED", sz, p, sz);
		/* decommitted as allocators do: no write permission when zeroed */
		memset(p, 0x77, sz);
		if (mprotect(p, sz, PROT_NONE) || madvise(p, sz, MADV_DONTNEED) ||
		    mprotect(p, sz, PROT_READ | PROT_WRITE)) { perror("decommit"); return 2; }
		check("after PROT_NONE and MADV_DONTNEED", sz, p, sz);
		memset(p, 0x3c, sz);
		unsigned char *q = mremap(p, sz, 2 * sz, MREMAP_MAYMOVE);
		if (q == MAP_FAILED) { perror("mremap"); return 2; }
		check("mremap's new half", sz, q + sz, sz);
		munmap(q, 2 * sz);
	}
	if (!first && !fill)
		protections();
	if (!first && !fill && !priv) {
		/* one range, every other 64 KiB still cached: the rest written
		 * back full of bytes and evicted, so a run left out of either
		 * the in-place clearing or the zero-range reads them again */
		size_t sz = 2 << 20, chunk = 64 << 10, cached = 0;
		unsigned char *p = map(sz), vec[(2 << 20) / 4096];
		memset(p, 0xa5, sz);
		if (msync(p, sz, MS_SYNC)) { perror("msync"); return 2; }
		for (size_t o = 0; o < sz; o += 2 * chunk)
			if (madvise(p + o, chunk, MADV_PAGEOUT)) { perror("MADV_PAGEOUT"); return 2; }
		if (mincore(p, sz, vec)) { perror("mincore"); return 2; }
		for (size_t i = 0; i < sizeof(vec); i++)
			cached += vec[i] & 1;
		if (cached == 0 || cached == sizeof(vec)) {
			printf("FAIL: %zu of %zu pages cached, not a mix\n", cached, sizeof(vec));
			return 2;
		}
		if (madvise(p, sz, MADV_DONTNEED)) { perror("madvise"); return 2; }
		check("a partly cached range after MADV_DONTNEED", sz, p, sz);
		munmap(p, sz);
	}
	if (!first && !fill) {
		pthread_t t[4];
		for (size_t i = 0; i < 4; i++)
			if (pthread_create(&t[i], NULL, cycle, (void *)i)) { puts("pthread_create"); return 2; }
		for (size_t i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
	}
	if (priv && argc > 3) {
		/* for the checkpoints (a background one on SIGUSR2, then the
		 * exit's): one marker kept, one zeroed by a decommit (the
		 * zeroes must count as written), one left PROT_NONE (the
		 * checkpoints read the heap's memory here) */
		unsigned char *k = map(16 * PG), *d = map(16 * PG), *u = map(16 * PG);
		strcpy((char *)k, "MARKER-vmem-kept");
		for (size_t o = 0; o + 32 <= 16 * PG; o += 32)
			strcpy((char *)d + o, "MARKER-vmem-decommitted");
		if (mprotect(d, 16 * PG, PROT_NONE) || madvise(d, 16 * PG, MADV_DONTNEED) ||
		    mprotect(d, 16 * PG, PROT_READ | PROT_WRITE)) { perror("decommit"); return 2; }
		check("decommitted before the checkpoints", 16 * PG, d, 16 * PG);
		strcpy((char *)u, "MARKER-vmem-unreadable");
		if (mprotect(u, 16 * PG, PROT_NONE)) { perror("mprotect"); return 2; }
		/* argv[2] list argv[3]: until the background checkpoint is listed */
		char cmd[4096], line[4096];
		snprintf(cmd, sizeof(cmd), "'%s' list '%s'", argv[2], argv[3]);
		raise(SIGUSR2);
		for (int listed = 0, i = 0; !listed; i++) {
			if (i == 600) { puts("FAIL: no checkpoint labelled signal"); return 2; }
			FILE *f = popen(cmd, "r");
			while (f && fgets(line, sizeof(line), f))
				listed |= strstr(line, " signal ") != NULL;
			if (f)
				pclose(f);
			if (!listed)
				usleep(50000);
		}
	}
	if (!bad)
		puts("vmem ok");
	return bad;
}
EOC
	gcc -O1 -pthread -o "$T/vmem" "$T/vmem.c" || die "cannot build the probe"
	P=$T/v.pool
	out=$(run "$P" "$T/vmem") || fail "vmem in one process: $out"
	echo "$out"
	# a young process leaves its segment FREE and full of bytes (cached); the
	# next young process formats over them and must see zeroes in its mappings
	young() { "$CKPT_RUN" --quiet --durable-after 60000 --pool "$P" -- "$@"; }
	young "$T/vmem" fill || fail "the filling process"
	out=$(young "$T/vmem" check) || fail "the next process: $out"
	echo "$out"
	verify_pool "$P"
	# ckpt_labelled POOL LABEL -- the checkpoint labelled LABEL, or ""
	ckpt_labelled() {
		"$INSPECT" list "$1" --json | /usr/bin/python3 -c '
import json, sys
c = [s["checkpoint"] for s in json.load(sys.stdin)["segments"] if s["label"] == sys.argv[1]]
print(c[0] if c else "")' "$2"
	}
	# check_ckpts POOL WHAT -- the background and the exit checkpoints hold
	# the kept and the unreadable markers, not the decommitted one
	check_ckpts() {
		for label in signal exit; do
			id=$(ckpt_labelled "$1" $label)
			if [ -z "$id" ]; then
				fail "$2: no checkpoint labelled $label"
				continue
			fi
			[ "$(heap_has "$1" "$id" MARKER-vmem-kept)" = 1 ] ||
				fail "$2: checkpoint $label does not hold the program's data"
			[ "$(heap_has "$1" "$id" MARKER-vmem-unreadable)" = 1 ] ||
				fail "$2: checkpoint $label does not hold the PROT_NONE page"
			[ "$(heap_has "$1" "$id" MARKER-vmem-decommitted)" = 0 ] ||
				fail "$2: checkpoint $label holds bytes the program decommitted"
		done
	}
	ckpts="--checkpoint-on USR2 --on-exit checkpoint"
	# a sealed pool's heap is private anonymous memory, zeroed its own way
	head -c 32 /dev/urandom >"$T/key"
	P=$T/s.pool
	# shellcheck disable=SC2086
	out=$(CKPT_KEY_FILE=$T/key "$CKPT_RUN" --quiet --pool "$P" --size 256M $ckpts -- \
		"$T/vmem" sealed "$INSPECT" "$P") || fail "vmem on a sealed pool: $out"
	echo "$out"
	HEAP_KEY=$T/key check_ckpts "$P" "sealed"
	verify_pool "$P"
	# cow mode: the heap is a private mapping of an image, zeroed by
	# stores (MADV_DONTNEED would bring the image's bytes back), also
	# where the program took the write permission away
	P=$T/c.pool
	# shellcheck disable=SC2086
	out=$("$CKPT_RUN" --quiet --fork-mode cow --pool "$P" $ckpts -- \
		"$T/vmem" private "$INSPECT" "$P") || fail "vmem in fork mode cow: $out"
	echo "$out"
	check_ckpts "$P" "fork mode cow"
	verify_pool "$P"
	;;
errors)
	expect() {      # expect STATUS MESSAGE-PATTERN ckpt-run-args...
		want=$1 pat=$2
		shift 2
		set +e
		"$CKPT_RUN" "$@" >"$T/out" 2>&1
		got=$?
		set -e
		[ "$got" = "$want" ] || fail "ckpt-run $*: exit $got, want $want: $(cat "$T/out")"
		grep -q "$pat" "$T/out" || fail "ckpt-run $*: no '$pat' in: $(cat "$T/out")"
	}
	expect 2 "no PROGRAM" --pool "$T/a.pool"
	expect 2 "unknown option" --frobnicate -- true
	expect 2 "expected auto" --fork-mode sideways -- true
	expect 2 "size" --size 12Q -- true
	expect 2 "not a signal" --checkpoint-on SIGNOPE -- true
	expect 2 "expected checkpoint or none" --on-exit maybe -- true
	expect 2 "expected milliseconds" --durable-after soon -- true
	expect 2 "expected milliseconds" --durable-after -5 -- true
	set +e
	CKPT_POOL=$T/a.pool CKPT_RUN_DURABLE_AFTER=x \
		LD_PRELOAD=$(dirname "$CKPT_RUN")/../preload/libckpt-preload.so /bin/true 2>"$T/out"
	got=$?
	set -e
	[ "$got" = 127 ] && grep -q "CKPT_RUN_DURABLE_AFTER" "$T/out" ||
		fail "a bad CKPT_RUN_DURABLE_AFTER: exit $got: $(cat "$T/out")"
	expect 127 "command not found" --pool "$T/a.pool" -- no-such-program-here
	mkdir "$T/ro"
	chmod 0555 "$T/ro"
	if [ "$(id -u)" != 0 ]; then
		expect 127 "cannot create pool" --pool "$T/ro/p.pool" -- true
	fi
	expect 127 "No such file or directory" --pool "$T/nodir/p.pool" -- true
	# an existing pool of another size
	"$CKPT_RUN" --quiet --pool "$T/b.pool" --size 64M -- true || fail "a 64M pool"
	expect 127 "exists with a heap" --pool "$T/b.pool" --size 128M -- true
	# a pool that is not a pool
	echo "not a pool" >"$T/junk.pool"
	expect 127 "cannot run on pool" --pool "$T/junk.pool" -- true
	# a pool of another base: one whose heap would cover where the loader
	# puts the shared libraries when ASLR is off (setarch -R). It is made
	# by a process with ASLR on, whose own stack or libraries may sit at
	# that base by chance: up to three processes (three layouts) try
	cat >"$T/base.py" <<'PY'
import ctypes, sys
class Cfg(ctypes.Structure):
    _fields_ = [("heap_size", ctypes.c_size_t), ("max_segments", ctypes.c_uint),
                ("base", ctypes.c_void_p), ("fork_mode", ctypes.c_int),
                ("keep", ctypes.c_uint), ("mode", ctypes.c_uint), ("key_file", ctypes.c_char_p)]
lib = ctypes.CDLL(sys.argv[1])
lib.ckpt_create.restype = ctypes.c_void_p
lib.ckpt_create.argtypes = [ctypes.c_char_p, ctypes.POINTER(Cfg)]
lib.ckpt_close.argtypes = [ctypes.c_void_p]
lib.ckpt_errormsg.restype = ctypes.c_char_p
c = Cfg(heap_size=128 << 20, max_segments=4, base=0x7ffff0000000)
p = lib.ckpt_create(sys.argv[2].encode(), ctypes.byref(c))
if not p:
    sys.exit("ckpt_create at 0x7ffff0000000 failed: " + lib.ckpt_errormsg().decode())
lib.ckpt_close(p)
PY
	made=0
	for try in 1 2 3; do
		rm -f "$T/base.pool"
		if /usr/bin/python3 "$T/base.py" "$(dirname "$CKPT_RUN")/../libckpt/libckpt.so" "$T/base.pool"; then
			made=1
			break
		fi
	done
	[ $made = 1 ] || fail "cannot make a pool at 0x7ffff0000000"
	if setarch -R true 2>/dev/null; then
		set +e
		setarch -R "$CKPT_RUN" --pool "$T/base.pool" -- true >"$T/out" 2>&1
		got=$?
		set -e
		cat "$T/out"
		[ "$got" = 127 ] && grep -q "base" "$T/out" ||
			fail "a pool at a taken base: exit $got: $(cat "$T/out")"
	else
		echo "setarch -R not permitted: the taken-base check is not run"
	fi
	# a static program and a setuid one are refused before they run
	if command -v gcc >/dev/null && echo 'int main(void){return 0;}' >"$T/s.c" &&
	   gcc -static -o "$T/static" "$T/s.c" 2>/dev/null; then
		expect 127 "statically linked" --pool "$T/a.pool" -- "$T/static"
	else
		echo "no static libc: the static-program check is not run"
	fi
	# what is not served from the pool is reported at exit: memory
	# committed inside a PROT_NONE reservation, a break moved by a raw brk;
	# a thread's stack (reserved PROT_NONE by glibc) and a reservation never
	# committed are not
	if command -v gcc >/dev/null; then
		cat >"$T/unserved.c" <<'EOC'
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
static void *idle(void *a) { return a; }
int main(int argc, char **argv)
{
	char what = argc > 1 ? argv[1][0] : 'n';
	pthread_t t;
	if (pthread_create(&t, NULL, idle, NULL) || pthread_join(t, NULL))
		return 3;
	char *p = mmap(NULL, 4 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 4;
	if (what == 'm' && mprotect(p, 256 << 10, PROT_READ | PROT_WRITE))
		return 5;
	if (what == 'f' && mmap(p + (1 << 20), 512 << 10, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return 6;
	if (what == 'm')
		p[0] = 1;
	if (what == 'b') {
		char *b = (char *)syscall(SYS_brk, 0);
		syscall(SYS_brk, b + (1 << 20));
	}
	return 0;
}
EOC
		gcc -O2 -pthread -o "$T/unserved" "$T/unserved.c" || die "cannot build the unserved-memory probe"
		unserved() {    # unserved MODE PATTERN|-
			set +e
			"$CKPT_RUN" --quiet --pool "$T/a.pool" -- "$T/unserved" "$1" >"$T/out" 2>&1
			got=$?
			set -e
			[ "$got" = 0 ] || fail "unserved $1: exit $got: $(cat "$T/out")"
			if [ "$2" = - ]; then
				! grep -q "libckpt-preload" "$T/out" || fail "unserved $1 reported: $(cat "$T/out")"
			else
				grep -q "$2" "$T/out" || fail "unserved $1: no '$2' in: $(cat "$T/out")"
			fi
		}
		unserved n -
		unserved m "committed 256 KiB in 1 calls inside PROT_NONE"
		unserved f "committed 512 KiB in 1 calls inside PROT_NONE"
		unserved b "raw brk"
	else
		echo "no gcc: the unserved-memory reports are not checked"
	fi
	cp /bin/true "$T/suid"
	chown nobody "$T/suid" 2>/dev/null || true
	chmod 4755 "$T/suid"
	if [ "$(stat -c %U "$T/suid")" != "$(id -un)" ]; then
		expect 127 "setuid" --pool "$T/a.pool" -- "$T/suid"
	fi
	# the preload library without a pool says so
	set +e
	LD_PRELOAD=$(dirname "$CKPT_RUN")/../preload/libckpt-preload.so /bin/true 2>"$T/out"
	got=$?
	set -e
	[ "$got" = 127 ] && grep -q "CKPT_POOL is not set" "$T/out" ||
		fail "preload without CKPT_POOL: exit $got: $(cat "$T/out")"
	# the program's status comes back; a killed one is 128 + signal
	set +e
	"$CKPT_RUN" --quiet --pool "$T/a.pool" -- /bin/sh -c 'exit 42'
	got=$?
	"$CKPT_RUN" --quiet --pool "$T/a.pool" -- /bin/sh -c 'kill -9 $$'
	got2=$?
	set -e
	[ "$got" = 42 ] || fail "exit status 42 came back as $got"
	[ "$got2" = 137 ] || fail "a program killed by signal 9 came back as $got2"
	;;
*)
	die "unknown test $WHAT"
	;;
esac
finish
