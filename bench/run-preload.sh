#!/bin/bash
# run-preload.sh -- overhead of ckpt-run: each workload run by the same
# unmodified Debian program plainly and under ckpt-run, alternating
# (plain, ckpt-run, plain, ...), medians of wall time and their ratio.
#
#   bench/run-preload.sh [--smoke] [--reps N] [--dir DIR] [--build-dir DIR]
#                        [--before BUILD-DIR] [--only NAME,...]
#
# --before BUILD-DIR adds a third mode, the same workload under the ckpt-run
# of another build (an earlier commit's), in the same alternation (plain,
# before, ckpt-run, plain, ...), with its own column and ratio.
#
# Workloads (names for --only):
#   python  python3, a pyperformance-style loop: dict/list/str churn,
#           object graphs and sorting, about a second
#   sqlite  sqlite3 inserting 1,000,000 rows (one transaction) into a new
#           database file, with an index
#   redis   redis-benchmark -t set,get,lpush,incr -n 200000 -P 16 against a
#           redis-server started plainly or under ckpt-run (the figure is
#           redis-benchmark's wall time; the server start is not timed)
#   gcc     gcc -O2 compiling and linking a 24-file C program
#   bash    a bash loop starting 200 short processes (/bin/true): the cost
#           of attaching a heap per process image
# The pool of each workload is made once, on DIR (default /var/tmp), and
# reused by every ckpt-run rep (dead segments are taken again). --smoke:
# one rep, small sizes: seconds; checks only that everything ran.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
reps=5 smoke=0 dir=/var/tmp build=$root/build only=python,sqlite,redis,gcc,bash before=
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1; reps=1 ;;
	--reps) reps=$2; shift ;;
	--dir) dir=$2; shift ;;
	--build-dir) build=$2; shift ;;
	--only) only=$2; shift ;;
	--before) before=$2; shift ;;
	*) echo "usage: $0 [--smoke] [--reps N] [--dir DIR] [--build-dir DIR] [--before BUILD-DIR] [--only NAME,...]" >&2; exit 2 ;;
	esac
	shift
done
run=$build/tools/ckpt-run
[ -x "$run" ] || { echo "run-preload: $run is not built" >&2; exit 1; }
modes="plain ckpt"
if [ -n "$before" ]; then
	[ -x "$before/tools/ckpt-run" ] || { echo "run-preload: $before/tools/ckpt-run is not built" >&2; exit 1; }
	modes="plain before ckpt"
fi
T=$(mktemp -d "$dir/ckpt-bench-preload.XXXXXX")
srv=
trap '[ -z "$srv" ] || kill -9 $srv 2>/dev/null; rm -rf "$T"' EXIT

rows=1000000 pyn=300000 rn=200000 bn=200 nfiles=24
if [ $smoke = 1 ]; then rows=10000 pyn=3000 rn=2000 bn=5 nfiles=3; fi

now() { date +%s%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# workload NAME WRAPPER... -- run NAME once, plainly (no wrapper) or wrapped
workload() {
	name=$1; shift
	case $name in
	python)
		"$@" /usr/bin/python3 -c "
import random
random.seed(1)
d = {}
for i in range($pyn):
    k = 'k%d' % random.randrange($pyn)
    d[k] = [i, str(i) * 3, {'x': i}]
    if i % 7 == 0:
        d.pop('k%d' % random.randrange($pyn), None)
class Node:
    __slots__ = ('v', 'kids')
    def __init__(self, v): self.v = v; self.kids = []
root = Node(0); nodes = [root]
for i in range($pyn // 3):
    n = Node(i); random.choice(nodes).kids.append(n); nodes.append(n)
s = sorted(d.items(), key=lambda kv: kv[1][1])
print(len(s), len(nodes))" >/dev/null ;;
	sqlite)
		rm -f "$T/b.db"
		"$@" /usr/bin/sqlite3 "$T/b.db" "create table t(id integer primary key, v text, w integer);
begin;
with recursive c(x) as (select 1 union all select x + 1 from c where x < $rows)
insert into t select x, printf('value-%d', x * 7919 % $rows), x % 1000 from c;
commit;
create index iw on t(w);
select count(*) from t;" >/dev/null ;;
	redis)
		rm -f "$T/r.sock"
		"$@" /usr/bin/redis-server --port 0 --unixsocket "$T/r.sock" --save "" \
			--appendonly no >/dev/null 2>&1 &
		srv=$!
		until redis-cli -s "$T/r.sock" ping >/dev/null 2>&1; do sleep 0.02; done
		t0=$(now)
		redis-benchmark -s "$T/r.sock" -t set,get,lpush,incr -n $rn -P 16 -r 100000 -q >/dev/null
		t1=$(now)
		redis-cli -s "$T/r.sock" shutdown nosave >/dev/null 2>&1 || true
		wait $srv 2>/dev/null || true
		srv=
		echo $(((t1 - t0) / 1000)) >"$T/redis.us" ;;
	gcc)
		"$@" /usr/bin/gcc -O2 -o "$T/prog" "$T"/src/*.c ;;
	bash)
		"$@" /bin/bash -c "for i in \$(seq $bn); do /bin/true; done" ;;
	esac
}

mkdir "$T/src"
for i in $(seq 0 $((nfiles - 1))); do
	cat >"$T/src/f$i.c" <<EOC
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct rec$i { char name[32]; int vals[16]; struct rec$i *next; };
static int cmp$i(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
int f$i(int n) {
	struct rec$i *head = NULL;
	for (int k = 0; k < n; k++) {
		struct rec$i *r = calloc(1, sizeof(*r));
		snprintf(r->name, sizeof(r->name), "r%d-%d", $i, k);
		for (int j = 0; j < 16; j++) r->vals[j] = (k * 31 + j * 17) % 97;
		qsort(r->vals, 16, sizeof(int), cmp$i);
		r->next = head; head = r;
	}
	int s = 0;
	while (head) { struct rec$i *nx = head->next; s += head->vals[0] + (int)strlen(head->name); free(head); head = nx; }
	return s;
}
EOC
done
{ for i in $(seq 0 $((nfiles - 1))); do echo "int f$i(int);"; done
  echo 'int main(void) { long s = 0;'
  for i in $(seq 0 $((nfiles - 1))); do echo "s += f$i(100);"; done
  echo 'return (int)(s & 1); }'; } >"$T/src/main.c"

echo "# run-preload: $(date -u +%FT%TZ), $(nproc) cores, kernel $(uname -r), reps $reps, pools on $dir, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$before" ]; then
	printf '%-8s %12s %12s %12s %8s %8s\n' workload plain_ms before_ms ckptrun_ms before ratio
else
	printf '%-8s %12s %12s %8s\n' workload plain_ms ckptrun_ms ratio
fi
for w in ${only//,/ }; do
	pool=$T/$w.pool
	: >"$T/plain" ; : >"$T/ckpt"; : >"$T/before"
	for r in $(seq 0 "$reps"); do       # rep 0 is a warm-up, not counted
		for mode in $modes; do
			case $mode in
			plain) wrap=() ;;
			before) wrap=("$before/tools/ckpt-run" --quiet --pool "$pool.before" --) ;;
			*) wrap=("$run" --quiet --pool "$pool" --) ;;
			esac
			t0=$(now)
			workload "$w" "${wrap[@]}"
			t1=$(now)
			us=$(((t1 - t0) / 1000))
			[ "$w" != redis ] || us=$(cat "$T/redis.us")
			[ "$r" = 0 ] || echo "$us" >>"$T/$mode"
		done
	done
	p=$(median <"$T/plain") c=$(median <"$T/ckpt")
	if [ -n "$before" ]; then
		b=$(median <"$T/before")
		printf '%-8s %12.1f %12.1f %12.1f %7.2fx %7.2fx\n' "$w" "$(echo "$p / 1000" | bc -l)" \
			"$(echo "$b / 1000" | bc -l)" "$(echo "$c / 1000" | bc -l)" \
			"$(echo "$b / $p" | bc -l)" "$(echo "$c / $p" | bc -l)"
	else
		printf '%-8s %12.1f %12.1f %7.2fx\n' "$w" "$(echo "$p / 1000" | bc -l)" \
			"$(echo "$c / 1000" | bc -l)" "$(echo "$c / $p" | bc -l)"
	fi
done
