# test_remote_lib.sh -- the remote-store scenarios both backends run
# (test_remote_redis.sh, test_remote_rados.sh source it). The backend script
# sets URL and defines:
#   store_set NAME FILE   overwrite object NAME with FILE's bytes
#   store_del NAME        delete object NAME
#   store_count PREFIX    number of objects whose names start with PREFIX
#   store_dump FILE       every object in the store, its bytes, into FILE
# and sets DOWN_URL plus DOWN_ENV (a store that does not answer; DOWN_RETRIES
# retries of it) and
# BAD_AUTH_URL plus BAD_AUTH_ENV (wrong credentials).
#   . test_remote_lib.sh  with WL, REMOTE, INSPECT, T set
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
json() { jq -r "$1"; }

# manifests -- the manifest names in the store, oldest first
manifests() { "$REMOTE" list "$URL" --json | json '.manifests[] | select(.damaged == null) | .manifest'; }

# wait_state POOL ID STATE -- until POOL.remote records STATE for checkpoint ID (30 s)
wait_state() {
	i=0
	while [ $i -lt 300 ]; do
		s=$("$INSPECT" list "$1" --json | jq -r ".segments[] | select(.checkpoint == $2) | .remote.state // empty")
		[ "$s" = "$3" ] && return 0
		i=$((i + 1))
		sleep 0.1
	done
	return 1
}

run_scenarios() {
	A=$T/hostA/app.pool
	B=$T/hostB/app.pool
	mkdir -p "$T/hostA" "$T/hostB" "$T/hostC"

	# push a first checkpoint, list it
	id1=$("$WL" create "$A" 32 8) || fail "create"
	out=$("$REMOTE" push "$A" latest "$URL" --json) || fail "push: $out"
	m1=$(echo "$out" | json .manifest)
	sent1=$(echo "$out" | json .transferred_bytes)
	img=$(echo "$out" | json .image_bytes)
	[ "$(manifests)" = "$m1" ] && ok "push and list" || fail "list does not show $m1"
	"$INSPECT" list "$A" --json | jq -e ".segments[] | select(.checkpoint == $id1) | .remote.state == \"pushed\"" >/dev/null &&
		ok "ckpt-inspect list shows the push" || fail "ckpt-inspect list lacks the push state"

	# pushing the same checkpoint again sends no chunk
	out=$("$REMOTE" push "$A" "$id1" "$URL" --json) || fail "second push"
	[ "$(echo "$out" | json .transferred_chunks)" = 0 ] && ok "second push sends nothing" ||
		fail "second push sent $(echo "$out" | json .transferred_chunks) chunks"

	# pull on "another machine" (its own directory) and restart there
	"$REMOTE" pull "$URL" "$m1" "$B" || fail "pull to a fresh pool"
	"$WL" verify "$B" >/dev/null && ok "restart from a pulled pool" || fail "verify pulled pool"
	"$INSPECT" verify "$B" >/dev/null || fail "ckpt-inspect verify of the pulled pool"
	[ "$("$INSPECT" info "$A" --json | json .uuid)" = "$("$INSPECT" info "$B" --json | json .uuid)" ] ||
		fail "pulled pool has another uuid"

	lazy_scenario

	# 1% of the pages change: the push sends about 1%
	id2=$("$WL" mutate "$A" 10) || fail "mutate"
	out=$("$REMOTE" push "$A" latest "$URL" --json) || fail "delta push"
	m2=$(echo "$out" | json .manifest)
	sent2=$(echo "$out" | json .transferred_bytes)
	[ $((sent2 * 50)) -le "$img" ] && ok "delta push sent $sent2 of $img bytes" ||
		fail "delta push sent $sent2 of $img bytes (over 2%)"

	# pull into the existing pool of the same uuid; again (idempotent)
	"$REMOTE" pull "$URL" "$m2" "$B" || fail "pull into an existing pool"
	"$REMOTE" pull "$URL" "$m2" "$B" || fail "pull of a checkpoint the pool has"
	"$WL" verify "$B" "$id2" | grep -q "generation 1" && ok "pull into existing pool" ||
		fail "verify checkpoint $id2 in the existing pool"
	"$WL" verify "$B" "$id1" >/dev/null || fail "older checkpoint lost in the existing pool"

	# another pool (other uuid) refuses the checkpoint
	"$WL" create "$T/hostC/other.pool" 32 1 >/dev/null
	if "$REMOTE" pull "$URL" "$m2" "$T/hostC/other.pool" 2>"$T/err"; then
		fail "pull into a pool of another uuid succeeded"
	else
		grep -q "uuid" "$T/err" && ok "other pool refused" || fail "unclear: $(cat "$T/err")"
	fi

	# a push killed before its manifest leaves no manifest; GC removes its chunks
	"$WL" mutate "$A" 10 >/dev/null
	before=$(manifests | wc -l)
	# (its lease outlives it: a short one, so the GC below waits 2 s, not 60)
	CKPT_REMOTE_LEASE_TTL=2 CKPT_TEST_CRASH_AT=remote:before-manifest "$REMOTE" push "$A" latest "$URL" >/dev/null 2>&1
	rc=$?
	[ $rc -eq 137 ] || fail "push not killed at remote:before-manifest (exit $rc)"
	[ "$(manifests | wc -l)" = "$before" ] && ok "killed push left no manifest" ||
		fail "killed push left a manifest"
	chunks=$(store_count ckpt.c.)
	out=$("$REMOTE" prune "$URL" --keep 100 --json) || fail "prune after a killed push"
	[ "$(echo "$out" | json .deleted_chunks)" -gt 0 ] && [ "$(store_count ckpt.c.)" -lt "$chunks" ] &&
		ok "GC removed the killed push's chunks" || fail "GC removed nothing: $out"
	for m in $(manifests); do
		rm -f "$T/hostC/check.pool"
		"$REMOTE" pull "$URL" "$m" "$T/hostC/check.pool" || fail "$m unusable after GC"
	done

	# GC waits for (here: gives up on) a live push lease; an expired one is ignored
	now=$(date +%s%N)
	echo $((now + 600000000000)) >"$T/lease"
	store_set ckpt.lock.push.999.test "$T/lease"
	if CKPT_REMOTE_LOCK_WAIT=1 "$REMOTE" prune "$URL" --keep 100 2>"$T/err"; then
		fail "prune ran while a push held its lease"
	else
		grep -q "busy" "$T/err" && ok "GC refused during a push" || fail "unclear: $(cat "$T/err")"
	fi
	echo $((now - 1000000000)) >"$T/lease"
	store_set ckpt.lock.push.999.test "$T/lease"
	CKPT_REMOTE_LOCK_WAIT=1 "$REMOTE" prune "$URL" --keep 100 >/dev/null &&
		ok "expired lease ignored" || fail "expired push lease blocked GC"

	# a corrupted chunk is refused, named; the half-made pool is removed
	chunk=$("$REMOTE" list "$URL" --json >/dev/null; printf 'ckpt.c.%s' "$(chunk_of "$m2")")
	printf 'garbage' >"$T/garbage"
	store_set "$chunk" "$T/garbage"
	if "$REMOTE" pull "$URL" "$m2" "$T/hostC/c.pool" 2>"$T/err"; then
		fail "pull of a corrupted chunk succeeded"
	else
		grep -q "$chunk" "$T/err" && grep -q corrupt "$T/err" && ok "corrupted chunk named" ||
			fail "unclear: $(cat "$T/err")"
	fi
	[ ! -e "$T/hostC/c.pool" ] || fail "failed pull left a pool"
	store_del "$chunk"
	if "$REMOTE" pull "$URL" "$m2" "$T/hostC/c.pool" 2>"$T/err"; then
		fail "pull with a missing chunk succeeded"
	else
		grep -q "missing" "$T/err" && ok "missing chunk named" || fail "unclear: $(cat "$T/err")"
	fi
	# a push trusts the chunks its pool's newest manifest lists; --check-all
	# asks the store about every one, and so repairs it
	out=$("$REMOTE" push "$A" "$id2" "$URL" --check-all --json) || fail "push --check-all"
	[ "$(echo "$out" | json .transferred_chunks)" = 1 ] || fail "repair sent: $out"
	"$REMOTE" pull "$URL" "$m2" "$T/hostC/c.pool" && ok "push --check-all repaired the store" ||
		fail "store not repaired"

	# a damaged manifest: listed as damaged, refused by pull, removed by prune
	store_set "$m1" "$T/garbage"
	"$REMOTE" list "$URL" | grep -q "DAMAGED" && ok "damaged manifest listed" ||
		fail "damaged manifest not listed"
	if "$REMOTE" pull "$URL" "$m1" "$T/hostC/d.pool" 2>"$T/err"; then
		fail "pull of a damaged manifest succeeded"
	else
		grep -q "damaged" "$T/err" && ok "damaged manifest refused" || fail "unclear: $(cat "$T/err")"
	fi

	# background push with CKPT_REMOTE: the checkpoint returns, the push follows
	id=$(CKPT_REMOTE=$URL CKPT_REMOTE_TOOL=$REMOTE "$WL" mutate "$A" 10) || fail "checkpoint with CKPT_REMOTE"
	wait_state "$A" "$id" pushed && ok "background push" || fail "background push of $id not recorded"
	m3=$(jq -r ".segments[] | select(.checkpoint == $id) | .remote.manifest" \
		<<EOF2
$("$INSPECT" list "$A" --json)
EOF2
)
	rm -rf "$T/hostB"; mkdir -p "$T/hostB"
	"$REMOTE" pull "$URL" "$m3" "$B" && "$WL" verify "$B" >/dev/null &&
		ok "restart from the background push" || fail "background-pushed checkpoint unusable"

	# store down: the checkpoint still succeeds, the state says why the push failed
	id=$(env $DOWN_ENV CKPT_REMOTE=$DOWN_URL CKPT_REMOTE_RETRIES=0 CKPT_REMOTE_TOOL=$REMOTE "$WL" mutate "$A" 10) ||
		fail "checkpoint failed with the store down"
	wait_state "$A" "$id" failed && ok "push to a down store recorded as failed" ||
		fail "no failed state for $id"
	"$INSPECT" list "$A" | grep -q "remote: failed: " || fail "ckpt-inspect list shows no failure"
	env $DOWN_ENV CKPT_REMOTE_RETRIES=$DOWN_RETRIES "$REMOTE" push "$A" "$id" "$DOWN_URL" 2>"$T/err" &&
		fail "push to a down store succeeded"
	grep -q "after $DOWN_RETRIES retries" "$T/err" && ok "retried, then failed" || fail "unclear: $(cat "$T/err")"

	# wrong credentials: a clear error
	if env $BAD_AUTH_ENV "$REMOTE" push "$A" latest "$BAD_AUTH_URL" 2>"$T/err"; then
		fail "push with wrong credentials succeeded"
	else
		grep -qi "credentials\|keyring\|denied\|auth" "$T/err" && ok "wrong credentials: $(head -c 200 "$T/err")" ||
			fail "unclear: $(cat "$T/err")"
	fi

	# prune by count: one manifest left per pool, still pullable
	out=$("$REMOTE" prune "$URL" --keep 1 --json) || fail "prune --keep 1"
	left=$(manifests)
	[ "$(echo "$left" | wc -l)" = 1 ] && ok "prune kept one manifest" || fail "prune left: $left"
	rm -rf "$T/hostB"; mkdir -p "$T/hostB"
	"$REMOTE" pull "$URL" "$left" "$B" && "$WL" verify "$B" >/dev/null ||
		fail "the manifest prune kept is unusable"

	# separate mount namespaces (root): the puller sees only its own tmpfs
	if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
		mkdir -p "$T/ns"
		if unshare -m sh -c "mount -t tmpfs -o size=256m none '$T/ns' &&
			'$REMOTE' pull '$URL' '$left' '$T/ns/app.pool' &&
			'$WL' verify '$T/ns/app.pool' >/dev/null && [ -e '$T/ns/app.pool' ]" 2>"$T/err"; then
			[ ! -e "$T/ns/app.pool" ] && ok "restart in a separate mount namespace" ||
				fail "the namespace's pool leaked out"
		else
			fail "pull in a mount namespace: $(cat "$T/err")"
		fi
	fi

	# usage errors exit 2
	"$REMOTE" frob 2>/dev/null; [ $? -eq 2 ] || fail "bad usage not exit 2"
	"$REMOTE" list ftp://x 2>"$T/err"; [ $? -eq 1 ] && grep -q "expected" "$T/err" ||
		fail "unknown scheme not refused clearly"
}

# can_lazy -- 0 if this process may make a userfaultfd that takes kernel
# faults (what a lazy restart needs: root, or vm.unprivileged_userfaultfd)
can_lazy() {
	[ "$(id -u)" = 0 ] || [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" = 1 ]
}

# flip_page_byte POOL PAGE -- flip the first byte of the workload's data
# page PAGE (generation 0) where it lies in POOL's file
flip_page_byte() {
	python3 - "$1" "$2" <<'PY'
import sys
path, i = sys.argv[1], int(sys.argv[2])
M = (1 << 64) - 1
x = ((i + 1) * 0x9e3779b97f4a7c15) & M
x ^= (x << 13) & M; x ^= x >> 7; x ^= (x << 17) & M
pat = x.to_bytes(8, 'little')
with open(path, 'r+b') as f:
    b = f.read()
    at = b.find(pat)
    if at < 0 or b.find(pat, at + 1) >= 0:
        sys.exit('page %d not found once in %s' % (i, path))
    f.seek(at)
    f.write(bytes([b[at] ^ 0xff]))
PY
}

# lazy_scenario -- a pulled copy-on-write checkpoint keeps its page sums
# (format 1.2 slot), so the restart from it is lazy: a page damaged after
# the pull is caught on first access (SIGBUS + message), not at open
lazy_scenario() {
	L=$T/hostL
	mkdir -p "$L/a" "$L/b"
	CKPT_FORK_MODE=cow "$WL" create "$L/a/app.pool" 32 8 >/dev/null || fail "create (cow)"
	m=$("$REMOTE" push "$L/a/app.pool" latest "$URL") || fail "push (cow)"
	"$REMOTE" pull "$URL" "$m" "$L/b/app.pool" || fail "pull (cow)"
	"$INSPECT" list "$L/b/app.pool" --json | jq -e '[.segments[] | select(.state == "checkpoint")
		| .lazy_restart] == [true]' >/dev/null &&
		ok "pulled checkpoint has its page sums stored" || fail "pulled checkpoint has no page sums"
	"$INSPECT" verify "$L/b/app.pool" >/dev/null || fail "verify of the pulled page sums"
	CKPT_FORK_MODE=cow CKPT_RESTART=lazy "$WL" verify "$L/b/app.pool" >/dev/null ||
		fail "lazy restart from the pulled pool"
	if ! can_lazy; then
		echo "ok: (no userfaultfd for kernel faults here: lazy restart not checked)"
		store_del "$m"
		return
	fi
	flip_page_byte "$L/b/app.pool" 1500 || fail "cannot damage the pulled image"
	# (under AddressSanitizer: the SIGBUS left to kill the process, as without it)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_sigbus=0 CKPT_FORK_MODE=cow \
		CKPT_RESTART=lazy "$WL" verify "$L/b/app.pool" >/dev/null 2>"$T/err"
	rc=$?
	[ $rc -eq 135 ] && grep -q "fails its checksum" "$T/err" &&
		ok "lazy restart from a pulled pool fences a damaged page on first touch" ||
		fail "damaged pulled page: exit $rc, $(cat "$T/err")"
	CKPT_FORK_MODE=cow CKPT_RESTART=eager "$WL" verify "$L/b/app.pool" >/dev/null 2>"$T/err" &&
		fail "eager restart of a damaged pulled image succeeded"
	store_del "$m"   # the scenarios below count one pool's manifests
}

# chunk_of MANIFEST -- the first non-zero chunk hash a manifest lists (hex)
chunk_of() {
	"$REMOTE" pull "$URL" "$1" "$T/hostC/probe.pool" >/dev/null 2>&1
	rm -f "$T/hostC/probe.pool"
	store_get "$1" "$T/man"
	# the header is 256 bytes; entries are 16 bytes, hi then lo, little-endian
	python3 - "$T/man" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
n = (len(b) - 264) // 16
for i in range(n):
    hi, lo = struct.unpack_from('<QQ', b, 256 + 16 * i)
    if hi or lo:
        print('%016x%016x' % (hi, lo)); break
PY
}

# chunk_at MANIFEST I -- the name of chunk I of a manifest
chunk_at() {
	store_get "$1" "$T/man"
	python3 - "$T/man" "$2" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
hi, lo = struct.unpack_from('<QQ', b, 256 + 16 * int(sys.argv[2]))
print('ckpt.c.%016x%016x' % (hi, lo))
PY
}

# filling_state POOL -- the state ckpt-inspect list gives the pool's checkpoint
filling_state() {
	"$INSPECT" list "$1" --json | jq -r '[.segments[] | select(.checkpoint != null)
		| .state] | join(",")'
}

# no_side_files POOL -- 0 if the lazy pull left nothing but its log
no_side_files() {
	[ ! -e "$1.fill" ] && [ ! -e "$1.fill.map" ] && [ ! -e "$1.fill.sock" ]
}

# wait_regions POOL N -- until the lazy pull into POOL has its first N regions (10 s)
wait_regions() {
	python3 - "$1.fill.map" "$2" <<'PY'
import struct, sys, time
for _ in range(1000):
    b = open(sys.argv[1], 'rb').read()
    if all(struct.unpack_from('<I', b, 4096 + 4 * i)[0] == 1 for i in range(int(sys.argv[2]))):
        sys.exit(0)
    time.sleep(0.01)
sys.exit('the first regions never arrived')
PY
}

# sigbus_env -- run a lazy restart whose SIGBUS must kill it (also under ASan)
sigbus_env() {
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_sigbus=0 CKPT_FORK_MODE=cow "$@"
}

# lazy_pull_scenario -- ckpt-remote pull --lazy: the checkpoint is
# restarted from while a filler brings its bytes (regions asked for first);
# a filler killed midway is resumed; a corrupted chunk is refused by name
# (CKPT_TEST_FILL_STALL=2 keeps the filler at the first two regions, so the
# tests know which regions are missing)
lazy_pull_scenario() {
	Z=$T/hostZ
	mkdir -p "$Z/a" "$Z/b" "$Z/c" "$Z/d" "$Z/e"
	CKPT_FORK_MODE=cow "$WL" create "$Z/a/app.pool" 32 16 >/dev/null || fail "create (lazy pull)"
	zm=$("$REMOTE" push "$Z/a/app.pool" latest "$URL") || fail "push (lazy pull)"
	"$REMOTE" pull --lazy "$URL" "$zm" "$Z/b/app.pool" || fail "pull --lazy"
	if ! can_lazy; then
		CKPT_FORK_MODE=cow "$WL" verify "$Z/b/app.pool" >/dev/null 2>"$T/err"
		"$REMOTE" fill "$Z/b/app.pool" || fail "fill (waiting for the filler)"
		CKPT_FORK_MODE=cow "$WL" verify "$Z/b/app.pool" >/dev/null || fail "verify after a lazy pull"
		echo "ok: (no userfaultfd for kernel faults here: restart during a lazy pull not checked)"
		return
	fi
	CKPT_FORK_MODE=cow "$WL" verify "$Z/b/app.pool" >/dev/null && ok "restart during a lazy pull" ||
		fail "restart during a lazy pull"
	"$REMOTE" fill "$Z/b/app.pool" || fail "fill (waiting for the filler)"
	[ "$(filling_state "$Z/b/app.pool")" = checkpoint ] && no_side_files "$Z/b/app.pool" &&
		"$INSPECT" verify "$Z/b/app.pool" >/dev/null &&
		"$INSPECT" list "$Z/b/app.pool" --json | jq -e '[.segments[] | select(.state == "checkpoint")
			| .lazy_restart] == [true]' >/dev/null &&
		ok "the filler publishes the pulled checkpoint with its page sums" ||
		fail "after the fill: $(filling_state "$Z/b/app.pool"), $(ls "$Z/b")"
	# every unsealed pool says 1.9 since the page logs (FORMAT.md); the
	# lazily pulled one also has the 1.6 flag, which a 1.5 libckpt refuses
	[ "$("$INSPECT" info "$Z/b/app.pool" --json | json .format_version)" = 1.9 ] &&
		[ "$("$INSPECT" info "$Z/a/app.pool" --json | json .format_version)" = 1.9 ] ||
		fail "a lazily pulled pool or an ordinary one is not format 1.9"
	# a pool an eager pull made (format 1.5) cannot take a lazy pull
	"$REMOTE" pull "$URL" "$zm" "$Z/g.pool" || fail "pull (eager, for --lazy into it)"
	"$REMOTE" pull --lazy "$URL" "$zm" "$Z/g.pool" 2>"$T/err" && fail "lazy pull into a 1.5 pool"
	grep -q "not created by a lazy pull" "$T/err" || fail "unclear: $(cat "$T/err")"

	# stalled: ckpt-inspect shows it filling; an eager restart is refused;
	# a lazy one gets every region it touches by asking for it
	CKPT_TEST_FILL_STALL=2 "$REMOTE" pull --lazy "$URL" "$zm" "$Z/c/app.pool" || fail "pull --lazy (stalled)"
	[ "$(filling_state "$Z/c/app.pool")" = filling ] && "$INSPECT" list "$Z/c/app.pool" | grep -q "being pulled" &&
		ok "ckpt-inspect list shows the checkpoint filling" || fail "inspect: $(filling_state "$Z/c/app.pool")"
	"$INSPECT" verify "$Z/c/app.pool" >/dev/null || fail "ckpt-inspect verify of a pool being filled"
	CKPT_FORK_MODE=cow CKPT_RESTART=eager "$WL" verify "$Z/c/app.pool" >/dev/null 2>"$T/err" &&
		fail "eager restart during a lazy pull succeeded"
	grep -q "still being pulled" "$T/err" && ok "eager restart during a lazy pull refused" ||
		fail "unclear: $(cat "$T/err")"
	CKPT_FORK_MODE=cow "$WL" verify "$Z/c/app.pool" >/dev/null &&
		ok "restart reads regions the filler had not reached (asked for)" ||
		fail "restart from a stalled fill"
	"$REMOTE" fill "$Z/c/app.pool" || fail "fill (stalled filler, every region asked)"

	# the filler killed midway: touching a missing region fences it, named;
	# ckpt-remote fill resumes the pull
	pid=$(CKPT_TEST_FILL_STALL=2 "$REMOTE" pull --lazy "$URL" "$zm" "$Z/d/app.pool" --json | jq -r .filler_pid)
	wait_regions "$Z/d/app.pool" 2 || fail "the filler did not start"
	kill -9 "$pid" 2>/dev/null || fail "no filler to kill"
	sigbus_env "$WL" verify "$Z/d/app.pool" >/dev/null 2>"$T/err"
	rc=$?
	[ $rc -eq 135 ] && grep -q "no filler is running" "$T/err" && grep -q "ckpt-remote fill" "$T/err" &&
		ok "a missing region without a filler is fenced: $(grep -o 'region [0-9]* .*running' "$T/err" | head -1)" ||
		fail "filler killed: exit $rc, $(cat "$T/err")"
	[ "$(filling_state "$Z/d/app.pool")" = filling ] || fail "a killed filler's checkpoint is not filling"
	"$REMOTE" fill "$Z/d/app.pool" && [ "$(filling_state "$Z/d/app.pool")" = checkpoint ] &&
		CKPT_FORK_MODE=cow "$WL" verify "$Z/d/app.pool" >/dev/null && no_side_files "$Z/d/app.pool" &&
		ok "ckpt-remote fill resumes a killed filler" || fail "resume after kill -9"

	# a pull killed while it makes the new pool, whose first catalog holds
	# the FILLING entry (one durable step): before the pool has its name,
	# nothing is at the path and the side files are stale, not a pull;
	# after, the pool is whole, its checkpoint FILLING, and fill resumes it
	for at in create:mid-write create:before-publish; do
		rm -rf "$Z/h"
		mkdir -p "$Z/h"
		CKPT_TEST_CRASH_AT=$at "$REMOTE" pull --lazy "$URL" "$zm" \
			"$Z/h/app.pool" 2>"$T/err" && fail "a pull killed at $at succeeded"
		grep -q "died" "$T/err" || fail "unclear: $(cat "$T/err")"
		[ ! -e "$Z/h/app.pool" ] && [ -z "$(ls -A "$Z/h" | grep -v '^app.pool.fill')" ] ||
			fail "a pull killed at $at left a pool: $(ls -A "$Z/h")"
		"$REMOTE" fill "$Z/h/app.pool" && no_side_files "$Z/h/app.pool" ||
			fail "fill of a pull killed at $at"
		"$REMOTE" pull --lazy "$URL" "$zm" "$Z/h/app.pool" && "$REMOTE" fill "$Z/h/app.pool" &&
			CKPT_FORK_MODE=cow "$WL" verify "$Z/h/app.pool" >/dev/null &&
			ok "a lazy pull killed at $at leaves no pool, nothing in the way" ||
			fail "lazy pull after one killed at $at"
	done
	rm -rf "$Z/h"
	mkdir -p "$Z/h"
	CKPT_TEST_CRASH_AT=create:after-publish "$REMOTE" pull --lazy "$URL" "$zm" \
		"$Z/h/app.pool" 2>"$T/err" && fail "a pull killed at create:after-publish succeeded"
	[ "$(filling_state "$Z/h/app.pool")" = filling ] && "$INSPECT" verify "$Z/h/app.pool" >/dev/null ||
		fail "a pull killed once its pool is named: $(filling_state "$Z/h/app.pool")"
	"$REMOTE" pull --lazy "$URL" "$zm" "$Z/h/app.pool" 2>"$T/err" &&
		fail "a second lazy pull into a pool being pulled succeeded"
	"$REMOTE" fill "$Z/h/app.pool" && [ "$(filling_state "$Z/h/app.pool")" = checkpoint ] &&
		no_side_files "$Z/h/app.pool" && CKPT_FORK_MODE=cow "$WL" verify "$Z/h/app.pool" >/dev/null &&
		ok "a lazy pull killed once its pool is named is resumed by fill" ||
		fail "fill after a pull killed at create:after-publish"
	# a later checkpoint pulled lazily into that pool (it exists: reserved
	# FILLING in a commit), killed before the commit: the pool keeps its
	# first checkpoint alone, the side files are stale
	cp --sparse=always "$Z/a/app.pool" "$Z/h/src.pool"
	CKPT_FORK_MODE=cow "$WL" mutate "$Z/h/src.pool" 10 >/dev/null || fail "mutate (second lazy pull)"
	zm2=$("$REMOTE" push "$Z/h/src.pool" latest "$URL") || fail "push (second lazy pull)"
	CKPT_TEST_CRASH_AT=remote:before-filling-publish "$REMOTE" pull --lazy "$URL" "$zm2" \
		"$Z/h/app.pool" 2>"$T/err" && fail "a pull into a pool killed before its commit succeeded"
	grep -q "died" "$T/err" || fail "unclear: $(cat "$T/err")"
	[ "$(filling_state "$Z/h/app.pool")" = checkpoint ] ||
		fail "a pull killed before its commit changed the pool: $(filling_state "$Z/h/app.pool")"
	"$REMOTE" fill "$Z/h/app.pool" && no_side_files "$Z/h/app.pool" || fail "fill of a stale pull"
	"$REMOTE" pull --lazy "$URL" "$zm2" "$Z/h/app.pool" && "$REMOTE" fill "$Z/h/app.pool" &&
		[ "$(filling_state "$Z/h/app.pool")" = checkpoint,checkpoint ] &&
		CKPT_FORK_MODE=cow "$WL" verify "$Z/h/app.pool" >/dev/null &&
		ok "a lazy pull into a pool killed before its commit leaves nothing in the way" ||
		fail "lazy pull into a pool after one killed before its commit"

	# a corrupted chunk (region 5) is refused by name, by the restart and the fill
	bad=$(chunk_at "$zm" 2600)
	store_get "$bad" "$T/goodchunk"
	head -c 4096 /dev/urandom >"$T/badchunk"
	store_set "$bad" "$T/badchunk"
	pid=$(CKPT_TEST_FILL_STALL=2 "$REMOTE" pull --lazy "$URL" "$zm" "$Z/e/app.pool" --json | jq -r .filler_pid)
	sigbus_env "$WL" verify "$Z/e/app.pool" >/dev/null 2>"$T/err"
	rc=$?
	[ $rc -eq 135 ] && grep -q "$bad.*corrupted" "$T/err" &&
		ok "a corrupted chunk is fenced by name on first touch" || fail "corrupted chunk: exit $rc, $(cat "$T/err")"
	kill -9 "$pid" 2>/dev/null
	"$REMOTE" fill "$Z/e/app.pool" 2>"$T/err" && fail "fill with a corrupted chunk succeeded"
	grep -q "$bad" "$T/err" && ok "fill refuses the corrupted chunk by name" || fail "unclear: $(cat "$T/err")"
	[ "$(filling_state "$Z/e/app.pool")" = filling ] || fail "a failed fill published"
	store_set "$bad" "$T/goodchunk"
	"$REMOTE" fill "$Z/e/app.pool" && CKPT_FORK_MODE=cow "$WL" verify "$Z/e/app.pool" >/dev/null &&
		ok "fill completes once the chunk is repaired" || fail "fill after repair"
}

# lazy_pull_store_down STOP -- the store stops (STOP: a command) during a
# lazy pull: touching a missing region fences it with the reason, bounded
# by CKPT_REMOTE_FILL_TIMEOUT, no hang
lazy_pull_store_down() {
	can_lazy || return 0
	Z=$T/hostZ
	mkdir -p "$Z/f"
	pid=$(CKPT_REMOTE_RETRIES=0 CKPT_TEST_FILL_STALL=2 "$REMOTE" pull --lazy "$URL" "$zm" "$Z/f/app.pool" --json |
		jq -r .filler_pid)
	wait_regions "$Z/f/app.pool" 2 || fail "the filler did not start"
	$1
	CKPT_REMOTE_FILL_TIMEOUT=3 sigbus_env "$WL" verify "$Z/f/app.pool" >/dev/null 2>"$T/err"
	rc=$?
	[ $rc -eq 135 ] && grep -q "cannot be pulled" "$T/err" &&
		ok "store down: a missing region is fenced: $(grep -o 'cannot be pulled: [^;]*' "$T/err" | head -1 | cut -c1-200)" ||
		fail "store down: exit $rc, $(cat "$T/err")"
	kill -9 "$pid" 2>/dev/null
	[ "$(filling_state "$Z/f/app.pool")" = filling ] || fail "store down: the checkpoint is not filling"
}

# sealed_manifest_edit IN OUT WHAT -- a forger's copy of a sealed manifest:
# WHAT "tag" flips a bit of chunk 1's GCM tag in the seal record (its
# trailing sum rewritten, so the store's checks pass)
sealed_manifest_edit() {
	python3 - "$1" "$2" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
n = struct.unpack_from('<Q', b, 120)[0]          # nchunks
b[256 + 16 * n + 128 + 16 * 1 + 3] ^= 0x10       # chunk 1's tag
open(sys.argv[2], 'wb').write(b)
PY
	"$WL" resum "$2"
}

# sealed_chunk_of MANIFEST -- the name of the first non-zero chunk of a sealed manifest
sealed_chunk_of() {
	store_get "$1" "$T/sman"
	python3 - "$T/sman" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack_from('<Q', b, 120)[0]
for i in range(n):
    hi, lo = struct.unpack_from('<QQ', b, 256 + 16 * i)
    if hi or lo:
        print('ckpt.c.%016x%016x' % (hi, lo)); break
PY
}

# sealed_scenario -- a sealed pool (issue 15) through the store: pushed and
# pulled without the key as ciphertext with its seal records, restarted
# with the key; wrong and missing keys, mixed pools, tampering, an older
# reader; and no byte of a known secret in the pool files or the store
# (the backend's store_dump FILE writes every object in the store to FILE),
# where the same run with an unsealed pool does find it
sealed_scenario() {
	SECRET="S3cr3t-P4tt3rn:libckpt-remote-scan"
	S=$T/sealA/app.pool
	S2=$T/sealB/app.pool
	mkdir -p "$T/sealA" "$T/sealB" "$T/sealC"
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/seal.key"
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/wrong.key"
	sid=$(CKPT_KEY_FILE=$T/seal.key "$WL" create "$S" 32 2 "$SECRET") || fail "create (sealed)"
	# push needs no key
	out=$(env -u CKPT_KEY_FILE "$REMOTE" push "$S" latest "$URL" --json) ||
		fail "push of a sealed pool: $out"
	sm=$(echo "$out" | json .manifest)
	simg=$(echo "$out" | json .image_bytes)
	"$REMOTE" list "$URL" --json | jq -e ".manifests[] | select(.manifest == \"$sm\") |
		.sealed == true and .key_id != null" >/dev/null &&
		ok "sealed push listed as sealed" || fail "sealed manifest not listed as sealed"
	out=$("$REMOTE" push "$S" "$sid" "$URL" --json) || fail "second sealed push"
	[ "$(echo "$out" | json .transferred_chunks)" = 0 ] && ok "second sealed push sends nothing" ||
		fail "second sealed push sent $(echo "$out" | json .transferred_chunks) chunks"
	# 1% of the pages change: each sealed checkpoint has its own salt, so
	# every chunk's ciphertext is new (measured, not bounded)
	CKPT_KEY_FILE=$T/seal.key "$WL" mutate "$S" 10 >/dev/null || fail "mutate (sealed)"
	out=$("$REMOTE" push "$S" latest "$URL" --json) || fail "sealed delta push"
	sm2=$(echo "$out" | json .manifest)
	ok "sealed delta push (1% of pages changed) sent $(echo "$out" | json .transferred_bytes) of $simg bytes"

	# pull without the key: a sealed pool of the same uuid and key id
	env -u CKPT_KEY_FILE "$REMOTE" pull "$URL" "$sm" "$S2" || fail "pull of a sealed checkpoint"
	for f in uuid key_id; do
		[ "$("$INSPECT" info "$S" --json | json ".$f")" = "$("$INSPECT" info "$S2" --json | json ".$f")" ] ||
			fail "pulled sealed pool has another $f"
	done
	"$INSPECT" info "$S2" --json | jq -e '.sealed == true' >/dev/null || fail "pulled pool not sealed"
	env -u CKPT_KEY_FILE "$REMOTE" pull "$URL" "$sm2" "$S2" || fail "pull into the sealed pool"
	"$INSPECT" verify "$S2" >/dev/null || fail "ckpt-inspect verify of the pulled sealed pool"
	CKPT_KEY_FILE=$T/seal.key "$WL" verify "$S2" "$sid" | grep -q "generation 0" &&
		CKPT_KEY_FILE=$T/seal.key "$WL" verify "$S2" | grep -q "generation 1" &&
		ok "restart of the pulled sealed pool with the key" || fail "verify of the pulled sealed pool"
	# wrong key, no key: the errors of a local sealed pool
	CKPT_KEY_FILE=$T/wrong.key "$WL" verify "$S" 2>&1 >/dev/null | sed "s|$S|POOL|" >"$T/err.local"
	CKPT_KEY_FILE=$T/wrong.key "$WL" verify "$S2" 2>&1 >/dev/null | sed "s|$S2|POOL|" >"$T/err"
	grep -q "sealed with key" "$T/err" && cmp -s "$T/err" "$T/err.local" &&
		ok "wrong key refused as for a local sealed pool" ||
		fail "wrong key: $(cat "$T/err") / local: $(cat "$T/err.local")"
	env -u CKPT_KEY_FILE "$WL" verify "$S2" 2>"$T/err" >/dev/null &&
		fail "restart without the key succeeded"
	grep -q "is sealed: its key is needed" "$T/err" && ok "missing key refused" ||
		fail "no key: $(cat "$T/err")"

	# mixing: sealed into an unsealed pool, plaintext into a sealed one, lazily
	"$WL" create "$T/sealC/plain.pool" 32 1 >/dev/null || fail "create (plain)"
	pm=$("$REMOTE" push "$T/sealC/plain.pool" latest "$URL") || fail "push (plain)"
	"$REMOTE" pull "$URL" "$sm" "$T/sealC/plain.pool" 2>"$T/err" &&
		fail "sealed checkpoint pulled into an unsealed pool"
	grep -q "not sealed: it cannot take a sealed checkpoint" "$T/err" &&
		ok "sealed checkpoint refused by an unsealed pool" || fail "unclear: $(cat "$T/err")"
	"$REMOTE" pull "$URL" "$pm" "$S2" 2>"$T/err" &&
		fail "plaintext checkpoint pulled into a sealed pool"
	grep -q "is sealed: it cannot take an unsealed checkpoint" "$T/err" &&
		ok "plaintext checkpoint refused by a sealed pool" || fail "unclear: $(cat "$T/err")"
	store_del "$pm"
	"$REMOTE" pull "$URL" "$sm" "$T/sealC/lazy.pool" --lazy 2>"$T/err" &&
		fail "lazy pull of a sealed checkpoint"
	grep -q "cannot be pulled lazily (it is sealed)" "$T/err" && [ ! -e "$T/sealC/lazy.pool" ] &&
		ok "lazy pull of a sealed checkpoint refused" || fail "unclear: $(cat "$T/err")"

	# an older reader (version 1 manifests only) refuses the sealed manifest by
	# version, and its prune keeps it and collects no chunk
	CKPT_TEST_MANIFEST_V1=1 "$REMOTE" pull "$URL" "$sm" "$T/sealC/old.pool" 2>"$T/err" &&
		fail "a version 1 reader pulled a sealed manifest"
	grep -q "has version 2, this libckpt reads versions up to 1" "$T/err" && [ ! -e "$T/sealC/old.pool" ] &&
		ok "version 1 reader refuses the sealed manifest" || fail "unclear: $(cat "$T/err")"
	CKPT_TEST_MANIFEST_V1=1 "$REMOTE" prune "$URL" --keep 100 2>"$T/err" &&
		fail "a version 1 reader collected garbage past a sealed manifest"
	grep -q "no chunk is collected" "$T/err" && [ "$(store_count "$sm")" = 1 ] &&
		ok "version 1 prune keeps the sealed manifest and collects nothing" ||
		fail "old prune: $(cat "$T/err")"

	# tampering: a chunk changed on the store is refused by its name; a seal
	# record forged past the store's checks by the GCM tag, the chunk named
	chunk=$(sealed_chunk_of "$sm")
	store_get "$chunk" "$T/chunk.orig"
	printf 'garbage' >"$T/garbage"
	store_set "$chunk" "$T/garbage"
	"$REMOTE" pull "$URL" "$sm" "$T/sealC/t.pool" 2>"$T/err" && fail "pull of a corrupted sealed chunk"
	grep -q "$chunk" "$T/err" && grep -q corrupt "$T/err" && ok "corrupted sealed chunk named" ||
		fail "unclear: $(cat "$T/err")"
	store_set "$chunk" "$T/chunk.orig"
	store_get "$sm" "$T/sman.orig"
	sealed_manifest_edit "$T/sman.orig" "$T/sman.forged"
	store_set "$sm" "$T/sman.forged"
	"$REMOTE" pull "$URL" "$sm" "$T/sealC/t.pool" || fail "pull of the forged sealed manifest"
	CKPT_RESTART=eager CKPT_KEY_FILE=$T/seal.key "$WL" verify "$T/sealC/t.pool" >/dev/null 2>"$T/err" &&
		fail "restart from a forged seal record succeeded"
	grep -q "chunk 1 (bytes 2097152-4194303) fails authentication" "$T/err" &&
		ok "forged seal record refused by its tag, chunk named" || fail "unclear: $(cat "$T/err")"
	store_set "$sm" "$T/sman.orig"

	# the scan: no byte of the secret in the pool files or in the store...
	store_dump "$T/store.dump"
	[ -s "$T/store.dump" ] || fail "the store dump is empty"
	found=
	for f in "$S"* "$S2"* "$T/store.dump"; do
		grep -qa -e "$SECRET" -e "S3cr3t-P4" -e "libckpt-remote-scan" "$f" && found="$found $f"
	done
	[ -z "$found" ] && ok "no trace of the secret in the sealed pools or the store" ||
		fail "the secret is in:$found"
	# ...and the same scan finds it after an unsealed pool's push
	"$WL" create "$T/sealC/clear.pool" 32 1 "$SECRET" >/dev/null || fail "create (clear)"
	cm=$("$REMOTE" push "$T/sealC/clear.pool" latest "$URL") || fail "push (clear)"
	store_dump "$T/store.dump"
	grep -qa -e "$SECRET" "$T/store.dump" && grep -qa -e "$SECRET" "$T/sealC/clear.pool" &&
		ok "the scan finds the secret of an unsealed pool" || fail "the scan cannot fail"
	store_del "$cm"
	rm -f "$T/store.dump"
}
