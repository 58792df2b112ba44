/*
 * test_cow_crash.c -- the copy-on-write engine (fork mode cow) under fire
 * (issue 11, "Done when"): kill -9 at random instants and at named points,
 * ENOSPC in the middle of an incremental checkpoint, a damaged image.
 *
 * Random kills (test_cow_random_kills): a worker process (its own process
 * group) restarts from the pool's latest checkpoint in cow mode and loops
 * in one of these modes, reporting each acknowledged checkpoint's
 * generation over a pipe before it goes on:
 *   loop  modify + checkpoint (keep 3: on a filesystem without clones every
 *         checkpoint from the 4th on recycles the oldest of the lineage)
 *   restart  modify + checkpoint, close, restart (cow: map the checkpoint),
 *         check the heap is that generation
 *   fork  modify to g, fork; the child checks it sees g, checkpoints it and
 *         scribbles on its heap; the parent meanwhile moves to g+1, waits
 *         for the child, checks its own heap is still g+1 and checkpoints
 *   bg    modify to g, ckpt_checkpoint_background, move to g+1 (not in the
 *         image), wait for the background checkpoint
 * The parent SIGKILLs the whole process group after a random delay (from
 * right away -- inside the cow restart -- to several cycles in), reaps every
 * process of it (this process is a child subreaper), checks that every
 * busy or live entry left reads dead, then runs `ckpt-inspect verify` and
 * restarts: the restart must use the newest checkpoint and find exactly an
 * acknowledged generation or a newer one whose checkpoint was begun (never
 * a torn or post-fork state).
 * Delays come from a seeded generator: CKPT_TEST_SEED=N replays the same
 * delays (the printed seed of a failing run); the instants they land on
 * still depend on timing. CI: 4 × 80 kills (4 × 8 under CKPT_TEST_SCALE=small);
 * CKPT_TEST_LONG=1: 4 × 750; CKPT_TEST_KILLS=N: N per mode.
 *
 * Named points: fork:child-before-claim and fork:child-ready in a cow fork
 * child (the parent's prepare in cow mode copies nothing and has no point
 * of its own); every checkpoint:* point in a cow fork child's first
 * checkpoint (its base is the parent's image, pinned by the reservation).
 * After each: the parent's heap is untouched, the pool verifies, restart
 * finds the right generation, the parent checkpoints on. And the other way:
 * a cow fork child that has written nothing (every page its parent's base
 * image's), its parent killed at every checkpoint:* point of the
 * checkpoint that would recycle that base on a keep-2 lineage: the child
 * still reads exactly its generation, checkpoints it, and it restarts --
 * and checkpoint:before-publish, inside the catalog transaction, in a
 * regression test of its own (test_cow_bug_child_keeps_dead_parent_lock:
 * the bug it found is fixed in map.c).
 * There is no named point of the cow restart (it maps, restart:mid-copy is
 * a copy's) nor of a cow parent's fork prepare (one lock, no commit): the
 * random kills land there (the "inside the restart" count).
 *
 * ENOSPC (root, small tmpfs): an incremental cow checkpoint runs out of
 * space on the copy path (a taken segment filled by copy_file_range of the
 * base, then the written pages) and on the recycle path (the oldest
 * checkpoint taken over, the pages written since it rewritten). The
 * checkpoint fails with ENOSPC; the checkpoints DESIGN.md keeps stay
 * byte-identical and restartable (the recycled one is gone: it stopped
 * being a checkpoint in the first transaction); the process runs on; after
 * freeing space a checkpoint succeeds and the lineage goes on recycling,
 * every image exact, the pages written before the failure included.
 *
 * Damage: a byte flipped in a cow image is refused by ckpt_open of that id
 * (EINVAL, a message naming the checkpoint and the checksum mismatch) and
 * CKPT_LATEST falls back to the previous checkpoint.
 *
 * Over 800 lines: one harness (the worker, its modes, the subreaper that
 * kills and reaps a process group, the restart check) serves every case
 * below; the cases are short, the harness is most of the file.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_cow_util.h"
#include "inspect.h"

static const struct ckpt_config cow_cfg = TC_CONFIG(32 * MiB, 3);

/* cow_create -- a new cow pool at path (cfg) holding the structure of n nodes at gen 1 */
static ckpt_pool *
cow_create(const char *path, const struct ckpt_config *cfg, unsigned n, struct ts_state **s)
{
	return tc_create(path, cfg, n, s, 1);
}

/* no_held_leftovers -- every busy or live entry but the parent's (seg) reads dead */
static void
no_held_leftovers(const char *path, uint32_t seg, const char *pt)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	struct inspect in;
	if (inspect_open(&in, path) < 0)
		fail_msg("%s: inspect_open: %s", pt, ckpt_errormsg());
	for (uint32_t i = 0; i < c.n; i++) {
		if (i == seg || (c.e[i].state != CAT_BUSY && c.e[i].state != CAT_LIVE))
			continue;
		const char *name = inspect_state_name(&in, i);
		if (strcmp(name, "dead") != 0)
			fail_msg("%s: segment %u is %s after the child died", pt, i, name);
	}
	inspect_close(&in);
	tu_catalog_free(&c);
}

/* -- random kills --------------------------------------------------------- */

#define RK_NODES 2000u

static const struct ckpt_config rk_cfg = {
	.heap_size = 8 * MiB, .max_segments = 64, .fork_mode = CKPT_FORK_COW,
	.keep_checkpoints = 3,
};

enum rk_mode { RK_LOOP, RK_RESTART, RK_FORK, RK_BG, RK_MODES };
static const char *const rk_names[RK_MODES] = { "loop", "restart", "fork", "bg" };

/* shared with the worker and its children (MAP_SHARED, anonymous) */
struct rk_shared {
	volatile uint64_t ready;        /* the worker restarted */
	volatile uint64_t started;      /* highest generation whose checkpoint was begun */
	volatile uint64_t cycle_us;     /* duration of the last cycle */
	volatile uint64_t open_us;      /* duration of the restart */
	volatile uint64_t recycled;     /* checkpoints that recycled an image */
};

/* ack -- report an acknowledged checkpoint's generation; the worker dies if it cannot */
static void
ack(int fd, uint64_t g)
{
	if (write(fd, &g, sizeof(g)) != sizeof(g))
		_exit(40);
}

/*
 * rk_checkpoint -- generation g's checkpoint marked begun (sh->started),
 * then taken; the worker dies with code if it fails
 */
static void
rk_checkpoint(ckpt_pool *p, struct rk_shared *sh, uint64_t g, int code)
{
	sh->started = g;
	__sync_synchronize();
	if (ckpt_checkpoint(p, NULL, NULL) < 0) {
		fprintf(stderr, "worker: checkpoint: %s\n", ckpt_errormsg());
		_exit(code);
	}
}

static void __attribute__((noreturn))
rk_worker(const char *path, enum rk_mode m, int ackfd, struct rk_shared *sh)
{
	setpgid(0, 0);
	uint64_t t0 = now_us();
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &rk_cfg);
	if (!p || !p->eng) {
		fprintf(stderr, "worker: open: %s\n", ckpt_errormsg());
		_exit(20);
	}
	struct ts_state *s = ckpt_root(p);
	char err[256];
	int64_t g0 = ts_check(s, RK_NODES, err, sizeof(err));
	if (g0 < 0) {
		fprintf(stderr, "worker: restarted heap: %s\n", err);
		_exit(21);
	}
	uint64_t g = (uint64_t)g0;
	sh->open_us = now_us() - t0;
	__sync_synchronize();
	sh->ready = 1;
	for (;;) {
		t0 = now_us();
		g++;
		if (ts_modify(p, s, g, 9) < 0)
			_exit(22);
		if (m == RK_LOOP) {
			rk_checkpoint(p, sh, g, 23);
			sh->recycled += p->eng->last_recycled != 0;
			ack(ackfd, g);
		} else if (m == RK_RESTART) {
			rk_checkpoint(p, sh, g, 23);
			ack(ackfd, g);
			/* and restart from it: close, open latest, check */
			if (ckpt_close(p) < 0)
				_exit(35);
			p = ckpt_open(path, CKPT_LATEST, &rk_cfg);
			if (!p || !p->eng) {
				fprintf(stderr, "worker: reopen: %s\n", ckpt_errormsg());
				_exit(36);
			}
			s = ckpt_root(p);
			if (ts_check(s, RK_NODES, err, sizeof(err)) != (int64_t)g) {
				fprintf(stderr, "worker: reopened heap: %s\n", err);
				_exit(37);
			}
		} else if (m == RK_FORK) {
			sh->started = g;
			__sync_synchronize();
			pid_t c = fork();
			if (c < 0)
				_exit(24);
			if (c == 0) {
				/* the child: sees exactly g, checkpoints it, then
				 * scribbles on its own heap */
				if (ts_check(ckpt_root(p), RK_NODES, err, sizeof(err)) != (int64_t)g)
					_exit(30);
				if (ckpt_checkpoint(p, NULL, NULL) < 0) {
					fprintf(stderr, "fork child: checkpoint: %s\n", ckpt_errormsg());
					_exit(31);
				}
				ack(ackfd, g);
				if (ts_modify(p, ckpt_root(p), g + 1000000, 5) < 0)
					_exit(32);
				_exit(ckpt_close(p) == 0 ? 0 : 33);
			}
			/* meanwhile the parent moves on */
			g++;
			if (ts_modify(p, s, g, 7) < 0)
				_exit(25);
			int st;
			if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "worker: fork child status %#x\n", st);
				_exit(26);
			}
			if (ts_check(s, RK_NODES, err, sizeof(err)) != (int64_t)g) {
				fprintf(stderr, "worker: after the child: %s\n", err);
				_exit(27);
			}
			rk_checkpoint(p, sh, g, 28);
			sh->recycled += p->eng->last_recycled != 0;
			ack(ackfd, g);
		} else {
			sh->started = g;
			__sync_synchronize();
			pid_t c = ckpt_checkpoint_background(p, NULL);
			if (c < 0) {
				fprintf(stderr, "worker: background: %s\n", ckpt_errormsg());
				_exit(29);
			}
			/* after the fork: never in the image */
			if (ts_modify(p, s, g + 1, 7) < 0)
				_exit(25);
			ckpt_id id;
			if (ckpt_checkpoint_wait(p, c, &id, 0) < 0) {
				fprintf(stderr, "worker: wait: %s\n", ckpt_errormsg());
				_exit(34);
			}
			ack(ackfd, g);
			g++;
		}
		sh->cycle_us = now_us() - t0;
		__sync_synchronize();
	}
}

/* rk_new_pool -- a cow pool at path whose one checkpoint holds generation 1 */
static void
rk_new_pool(const char *path)
{
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &rk_cfg, RK_NODES, &s);
	assert_int_equal(ckpt_checkpoint(p, "start", NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
}

/* rk_reap -- wait for the worker and every process of its group; the worker's status */
static int
rk_reap(pid_t pid)
{
	int rc = tu_wait_exit(pid);
	int st;
	/* orphans of the group were re-parented to us (subreaper) before the
	 * worker became waitable */
	while (waitpid(-pid, &st, 0) > 0)
		;
	return rc;
}

/* rk_restart -- open LATEST in cow mode here: its generation; the restart
 * must have mapped the newest checkpoint */
static int64_t
rk_restart(const char *path, const char *what)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int ni = newest_ckpt(&c);
	assert_true(ni >= 0);
	tu_catalog_free(&c);
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &rk_cfg);
	if (!p)
		fail_msg("%s: restart from latest: %s", what, ckpt_errormsg());
	if (!p->eng)
		fail_msg("%s: restart is not in cow mode", what);
	char err[256];
	int64_t gen = ts_check(ckpt_root(p), RK_NODES, err, sizeof(err));
	if (gen < 0)
		fail_msg("%s: restarted heap is wrong: %s", what, err);
	uint32_t source = own_live_entry(path).source;
	if (source != (uint32_t)ni)
		fail_msg("%s: restart mapped segment %u, not the newest checkpoint's %d", what,
			source, ni);
	assert_int_equal(ckpt_close(p), 0);
	return gen;
}

static unsigned
env_uint(const char *name, unsigned dflt)
{
	const char *v = getenv(name);
	return v && *v ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

/* xorshift: the delays, reproducible from the seed */
static uint64_t rk_rng;

static uint64_t
rk_rand(void)
{
	rk_rng ^= rk_rng << 13;
	rk_rng ^= rk_rng >> 7;
	rk_rng ^= rk_rng << 17;
	return rk_rng;
}

struct rk_stats {
	unsigned kills, advanced, mid_checkpoint, before_ready, acks;
	uint64_t recycled, verify_us;
};

static void
rk_run_mode(enum rk_mode m, unsigned kills, struct rk_shared *sh, struct rk_stats *st)
{
	/* each killed worker leaves its dead heap, its reservations and up to
	 * keep checkpoints of its lineage (retention is per live heap): a
	 * fresh pool every few kills */
	const unsigned per_pool = 6;
	char path[600] = "";
	uint64_t prev = 0, cycle = 20000, open_us = 5000;
	for (unsigned it = 0; it < kills; it++) {
		char what[96];
		snprintf(what, sizeof(what), "%s kill %u", rk_names[m], it);
		if (it % per_pool == 0) {
			if (path[0])
				unlink(path);
			char n[64];
			snprintf(n, sizeof(n), "rk-%s-%u.pool", rk_names[m], it / per_pool);
			snprintf(path, sizeof(path), "%s", tu_path(n));
			rk_new_pool(path);
			prev = 1;
		}
		memset((void *)sh, 0, sizeof(*sh));
		int pfd[2];
		assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
		pid_t pid = tu_fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			rk_worker(path, m, pfd[1], sh);
		}
		setpgid(pid, pid);      /* either side's call wins the race */
		close(pfd[1]);

		/* when: a quarter right away (inside the cow restart), the rest
		 * at a random instant of the first 1..8 cycles */
		uint64_t r = rk_rand();
		uint64_t delay;
		if (r % 4 == 0)
			delay = (r >> 8) % (open_us + 1);
		else
			delay = open_us + (r >> 8) % (cycle * (1 + (r >> 40) % 8) + 1);
		uint64_t t0 = now_us();
		while (now_us() - t0 < delay) {
			int ws;
			if (waitpid(pid, &ws, WNOHANG) == pid)
				fail_msg("%s: the worker ended by itself (status %#x)", what, ws);
			uint64_t left = delay - (now_us() - t0);
			usleep((useconds_t)(left < 500 ? left : 500));
		}
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		int rc = rk_reap(pid);
		if (rc != 128 + SIGKILL)
			fail_msg("%s: the worker exited %d before the kill", what, rc);
		uint64_t lo = prev, g;
		while (read(pfd[0], &g, sizeof(g)) == sizeof(g)) {
			lo = g > lo ? g : lo;
			st->acks++;
		}
		close(pfd[0]);
		uint64_t hi = sh->ready && sh->started > prev ? sh->started : prev;
		if (sh->ready) {
			if (sh->cycle_us)
				cycle = (cycle * 3 + sh->cycle_us) / 4;
			open_us = (open_us * 3 + sh->open_us) / 4;
		} else if (delay >= open_us && open_us < 4000000) {
			open_us *= 2;   /* slower than thought (valgrind): reach past it */
		}

		/* every process of the group is gone: whatever it held reads dead */
		no_held_leftovers(path, UINT32_MAX, what);
		uint64_t v0 = now_us();
		tu_inspect_verify(path);
		int64_t gen = rk_restart(path, what);
		st->verify_us += now_us() - v0;
		if ((uint64_t)gen < lo || (uint64_t)gen > hi)
			fail_msg("%s: latest holds generation %" PRId64 "; acknowledged %" PRIu64
				", begun %" PRIu64, what, gen, lo, hi);
		st->kills++;
		st->advanced += (uint64_t)gen > prev;
		st->mid_checkpoint += sh->ready && sh->started > lo;
		st->before_ready += !sh->ready;
		st->recycled += sh->recycled;
		prev = (uint64_t)gen;
	}
	if (path[0]) {
		tu_inspect_verify(path);
		unlink(path);
	}
}

static void
test_cow_random_kills(void **state)
{
	(void)state;
	unsigned per_mode = test_scale_small() ? 8 : 80;
	if (getenv("CKPT_TEST_LONG") && strcmp(getenv("CKPT_TEST_LONG"), "1") == 0)
		per_mode = 750;
	per_mode = env_uint("CKPT_TEST_KILLS", per_mode);
	uint64_t seed = getenv("CKPT_TEST_SEED") ? strtoull(getenv("CKPT_TEST_SEED"), NULL, 10)
		: now_us();
	rk_rng = seed ? seed : 1;
	printf("cow random kills: %u per mode, seed %" PRIu64 " (CKPT_TEST_SEED=%" PRIu64
	       " replays the delays)\n", per_mode, seed, seed);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	struct rk_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	unsigned total = 0;
	for (int m = 0; m < RK_MODES; m++) {
		struct rk_stats st = { 0 };
		uint64_t t0 = now_us();
		rk_run_mode((enum rk_mode)m, per_mode, sh, &st);
		printf("  %-4s: %u kills in %.1f s: %u advanced the latest checkpoint, "
		       "%u inside a checkpoint, %u inside the restart; %u acks, "
		       "%" PRIu64 " recycled images; verify + restart mean %" PRIu64 " us\n",
		       rk_names[m], st.kills, (double)(now_us() - t0) / 1e6, st.advanced,
		       st.mid_checkpoint, st.before_ready, st.acks, st.recycled,
		       st.verify_us / (st.kills ? st.kills : 1));
		total += st.kills;
		/* the kills must have landed all over, or the test proved little */
		if (per_mode >= 40) {
			assert_true(st.advanced > 0);
			assert_true(st.mid_checkpoint > 0);
			assert_true(st.before_ready > 0);
			if (m == RK_LOOP)
				assert_true(st.recycled > 0);
		}
	}
	printf("cow random kills: %u in all\n", total);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	munmap(sh, sizeof(*sh));
}

/* -- named points in a cow fork child ------------------------------------ */

/*
 * A cow fork child killed at a named point: in its atfork handler (before
 * and after it claims the reserved segment) or in any step of its first
 * checkpoint. The parent's heap is untouched, the pool verifies, restart
 * finds the child's checkpoint once it was published and the parent's
 * otherwise, and the parent checkpoints on.
 */
static void
test_cow_fork_points(void **state)
{
	(void)state;
	static const char *const points[] = {
		"fork:child-before-claim", "fork:child-ready",
		"checkpoint:before-reserve", "checkpoint:before-copy", "checkpoint:mid-copy",
		"checkpoint:before-persist", "checkpoint:after-persist",
		"checkpoint:before-publish", "checkpoint:after-publish",
	};
	const char *path = tu_path("forkpoints.pool");
	struct ts_state *s;
	struct ckpt_config cfg = cow_cfg;
	cfg.max_segments = 40;
	ckpt_pool *p = cow_create(path, &cfg, TC_NODES, &s);
	ckpt_id first;
	assert_int_equal(ckpt_checkpoint(p, NULL, &first), 0);
	uint64_t gen = 1;
	const uint32_t parent_seg = p->seg;
	char err[256];
	for (unsigned i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		const char *pt = points[i];
		int in_fork = strncmp(pt, "fork:", 5) == 0;
		/* unsaved, seen by the child */
		assert_int_equal(ts_modify(p, s, ++gen, 3), 0);
		if (in_fork)
			setenv("CKPT_TEST_CRASH_AT", pt, 1);
		pid_t pid = tu_fork();
		if (in_fork)
			unsetenv("CKPT_TEST_CRASH_AT");
		assert_true(pid >= 0);
		if (pid == 0) {
			if (in_fork)
				_exit(12);      /* the point was never reached */
			if (ts_check(ckpt_root(p), TC_NODES, err, sizeof(err)) != (int64_t)gen)
				_exit(13);
			if (ts_modify(p, s, 1000 + i, 5) < 0)
				_exit(14);
			setenv("CKPT_TEST_CRASH_AT", pt, 1);
			ckpt_checkpoint(p, NULL, NULL);
			_exit(12);
		}
		/* the parent moves on while the child dies */
		assert_int_equal(ts_modify(p, s, ++gen, 7), 0);
		int rc = tu_wait_exit(pid);
		if (rc != 128 + SIGKILL)
			fail_msg("%s: the cow fork child exited %d, not killed at the point", pt, rc);
		if (ts_check(ckpt_root(p), TC_NODES, err, sizeof(err)) != (int64_t)gen)
			fail_msg("%s: the parent's heap after the child died: %s", pt, err);
		/* what the child held: dead (its lease died with it) or free
		 * again, never live or busy-and-held */
		no_held_leftovers(path, p->seg, pt);
		tu_inspect_verify(path);
		int published = strcmp(pt, "checkpoint:after-publish") == 0;
		int64_t want = published ? 1000 + (int64_t)i : (int64_t)gen - 2;
		if (i == 0)
			want = 1;
		int64_t got = tc_gen(path, 0);
		if (got != want)
			fail_msg("%s: restart found gen %" PRId64 ", want %" PRId64, pt, got, want);
		/* the parent checkpoints on; its checkpoint restarts exactly */
		ckpt_id id;
		if (ckpt_checkpoint(p, NULL, &id) != 0)
			fail_msg("%s: the parent's checkpoint: %s", pt, ckpt_errormsg());
		assert_int_equal(tc_gen(path, id), (int64_t)gen);
		assert_int_equal(tc_gen(path, 0), (int64_t)gen);
		tu_inspect_verify(path);
	}
	/* the next fork child gets a segment of its own, a real one */
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(!p->detached && p->seg != parent_seg ? 0 : 1);
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
	unlink(path);
}

/* catalog_lock_free -- 1 if the pool's catalog lock can be taken now (probed, never waited for) */
static int
catalog_lock_free(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
		.l_start = POOL_COMMIT_OFF, .l_len = 1 };
	int rc = fcntl(fd, F_OFD_SETLK, &fl);
	int e = errno;
	close(fd);      /* drops the probe's lock */
	if (rc < 0 && e != EAGAIN && e != EACCES)
		fail_msg("probing the catalog lock: %s", strerror(e));
	return rc == 0;
}

/*
 * pinned_case -- a cow fork child maps its parent's base image; the parent
 * goes on, checkpoints, and is killed at point pt of its next checkpoint,
 * which on a keep-2 lineage would recycle that very base (the pin must
 * forbid it). The child, which has written nothing, still reads the image
 * through the page cache: it must see exactly its generation, checkpoint
 * it, and restart to it.
 */
static void
pinned_case(const char *pt)
{
	struct ckpt_config cfg = cow_cfg;
	cfg.keep_checkpoints = 2;
	const char *path = tu_path("pinned.pool");
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cfg, TC_NODES, &s);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	int go[2], res[2];
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	assert_int_equal(pipe2(res, O_CLOEXEC), 0);
	pid_t w = tu_fork();
	assert_true(w >= 0);
	if (w == 0) {
		close(go[1]);
		close(res[0]);
		p = ckpt_open(path, CKPT_LATEST, &cfg);
		if (!p)
			_exit(40);
		s = ckpt_root(p);
		/* the lineage full, the ring remembering: 2, 3, 4 */
		for (uint64_t g = 2; g <= 4; g++)
			if (ts_modify(p, s, g, 3) < 0 || ckpt_checkpoint(p, NULL, NULL) < 0)
				_exit(41);
		pid_t c = fork();
		if (c < 0)
			_exit(42);
		if (c == 0) {
			/* the child: nothing written, every page its base's */
			pid_t me = getpid();
			char b, err[256];
			if (write(res[1], &me, sizeof(me)) != sizeof(me) ||
			    read(go[0], &b, 1) != 1)
				_exit(50);
			int64_t g = ts_check(ckpt_root(p), TC_NODES, err, sizeof(err));
			if (g != 4) {
				fprintf(stderr, "pinned child: %s\n", g < 0 ? err : "wrong gen");
				_exit(51);
			}
			ckpt_id id;
			if (ckpt_checkpoint(p, NULL, &id) < 0 ||
			    write(res[1], &id, sizeof(id)) != sizeof(id))
				_exit(52);
			_exit(ckpt_close(p) == 0 ? 0 : 53);
		}
		/* the parent: 5 (a new image), then 6, which would recycle
		 * the child's base, killed at the point */
		if (ts_modify(p, s, 5, 3) < 0 || ckpt_checkpoint(p, NULL, NULL) < 0 ||
		    ts_modify(p, s, 6, 3) < 0)
			_exit(43);
		setenv("CKPT_TEST_CRASH_AT", pt, 1);
		ckpt_checkpoint(p, NULL, NULL);
		_exit(12);
	}
	close(go[0]);
	close(res[1]);
	pid_t c = 0;
	assert_int_equal(read(res[0], &c, sizeof(c)), sizeof(c));
	int rc = tu_wait_exit(w);
	if (rc != 128 + SIGKILL) {
		kill(c, SIGKILL);
		tu_wait_exit(c);
		fail_msg("%s: the parent exited %d, not killed at the point", pt, rc);
	}
	/* the parent is dead; whatever it locked is free again (the child
	 * still maps its base image) */
	if (!catalog_lock_free(path)) {
		kill(c, SIGKILL);
		tu_wait_exit(c);
		int freed = catalog_lock_free(path);
		fail_msg("%s: BUG cow-child-keeps-dead-parent-lock: the cow parent, killed "
			"inside a catalog transaction, still holds the pool's catalog lock while "
			"its fork child lives (%s once the child was killed): every other "
			"process's open or checkpoint, the child's own included, blocks forever",
			pt, freed ? "released" : "still held");
	}
	tu_inspect_verify(path);
	int64_t want = strcmp(pt, "checkpoint:after-publish") == 0 ? 6 : 5;
	int64_t got = tc_gen(path, 0);
	if (got != want) {
		kill(c, SIGKILL);
		tu_wait_exit(c);
		fail_msg("%s: restart found gen %" PRId64 ", want %" PRId64, pt, got, want);
	}
	assert_int_equal(write(go[1], "g", 1), 1);
	ckpt_id cid = 0;
	ssize_t n = read(res[0], &cid, sizeof(cid));
	rc = tu_wait_exit(c);
	if (rc != 0 || n != sizeof(cid))
		fail_msg("%s: the pinned child exited %d (its base changed under it?)", pt, rc);
	close(go[1]);
	close(res[0]);
	tu_inspect_verify(path);
	assert_int_equal(tc_gen(path, cid), 4);
	assert_int_equal(tc_gen(path, 0), 4);
	unlink(path);
}

/* the parent killed at every checkpoint point outside a catalog transaction */
static void
test_cow_parent_killed_child_pinned(void **state)
{
	(void)state;
	static const char *const points[] = {
		"checkpoint:before-reserve", "checkpoint:before-copy", "checkpoint:mid-copy",
		"checkpoint:before-persist", "checkpoint:after-persist",
		"checkpoint:after-publish",
	};
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	for (unsigned i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		pinned_case(points[i]);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/*
 * Regression test of a bug this suite found, fixed in map.c (every mapping
 * holds an open file description of its own, which never holds a lock): a
 * cow fork child inherits the parent's
 * MAP_PRIVATE heap mapping of the pool file, and a mapping holds a
 * reference to the open file description it was made from: the parent's
 * (p->fd). OFD locks go only with the description's last reference, so
 * when the parent is killed inside a catalog transaction
 * (checkpoint:before-publish) its catalog lock stays held as long as the
 * child maps that heap: every ckpt_open/ckpt_checkpoint of the pool blocks
 * forever in F_OFD_SETLKW, the child's own first checkpoint included. (The
 * parent's lease on its live segment outlives it the same way, so its dead
 * heap reads live.)
 */
static void
test_cow_bug_child_keeps_dead_parent_lock(void **state)
{
	(void)state;
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	pinned_case("checkpoint:before-publish");
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* -- ENOSPC ---------------------------------------------------------------- */

struct ckpt_snap {
	ckpt_id id;
	int64_t gen;
	struct cat_entry e;
	void *bytes;
};

static void
snap_take(const char *path, ckpt_id id, int64_t gen, struct ckpt_snap *sn)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int i = ckpt_index(&c, id);
	assert_true(i >= 0);
	sn->id = id;
	sn->gen = gen;
	sn->e = c.e[i];
	sn->bytes = seg_bytes(path, &c.hdr, (uint32_t)i, c.e[i].used);
	tu_catalog_free(&c);
}

/* snap_check -- checkpoint sn is still listed with the same entry and bytes */
static void
snap_check(const char *path, const struct ckpt_snap *sn, const char *what)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int i = ckpt_index(&c, sn->id);
	if (i < 0)
		fail_msg("%s: checkpoint %" PRIu64 " is gone", what, sn->id);
	if (memcmp(&c.e[i], &sn->e, sizeof(sn->e)) != 0)
		fail_msg("%s: checkpoint %" PRIu64 "'s entry changed", what, sn->id);
	void *now = seg_bytes(path, &c.hdr, (uint32_t)i, sn->e.used);
	if (memcmp(now, sn->bytes, sn->e.used) != 0)
		fail_msg("%s: checkpoint %" PRIu64 "'s bytes changed", what, sn->id);
	free(now);
	tu_catalog_free(&c);
}

/*
 * enospc_case -- on a 96 MiB tmpfs: a cow pool with `before` checkpoints
 * (a lineage of keep 3 is full after 3: the next recycles), then a big new
 * block written and the filesystem filled but 2 MiB, then a checkpoint that
 * must fail with ENOSPC.
 */
static void
enospc_case(unsigned before, int want_recycle)
{
	const char *dir = tu_path(want_recycle ? "small-fs-recycle" : "small-fs-copy");
	char path[TU_SMALL_PATH], filler[TU_SMALL_PATH];
	tu_small_tmpfs(dir, "size=96m", path, filler);
	struct ckpt_config cfg = cow_cfg;
	cfg.heap_size = 16 * MiB;
	cfg.max_segments = 8;
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cfg, TC_NODES, &s);
	struct ckpt_snap sn[8];
	assert_true(before <= 8);
	int64_t gen = 1;
	for (unsigned k = 0; k < before; k++) {
		if (k > 0)
			assert_int_equal(ts_modify(p, s, ++gen, 3), 0);
		ckpt_id id;
		assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);
		assert_int_equal(p->eng->last_recycled != 0, k >= 3 && !p->eng->last_cloned);
		snap_take(path, id, gen, &sn[k]);
	}
	/* generation gen+1, and 6 MiB of new pages past everything any
	 * image holds */
	assert_int_equal(ts_modify(p, s, ++gen, 3), 0);
	unsigned char *blob = ckpt_alloc(p, 6 * MiB);
	assert_non_null(blob);
	memset(blob, 0x6b, 6 * MiB);
	tu_fill_fs(filler, 2 * MiB);

	checkpoint_enospc(p, "cow checkpoint on a full filesystem");
	if (p->eng->last_recycled != want_recycle)
		fail_msg("the failed checkpoint %s; the test meant the %s path",
			p->eng->last_recycled ? "recycled" : "did not recycle",
			want_recycle ? "recycle" : "copy");

	/* what DESIGN.md keeps: every checkpoint, but a recycled one, which
	 * stopped being a checkpoint in the first transaction */
	unsigned first = want_recycle ? 1 : 0;
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_CKPT), before - first);
	assert_int_equal(tu_catalog_count(&c, CAT_BUSY), 0);
	if (want_recycle)
		assert_int_equal(ckpt_index(&c, sn[0].id), -1);
	tu_catalog_free(&c);
	for (unsigned k = first; k < before; k++)
		snap_check(path, &sn[k], "after ENOSPC");
	tu_inspect_verify(path);

	/* the process runs on, on the still-full filesystem */
	char err[256];
	assert_int_equal(ts_check(ckpt_root(p), TC_NODES, err, sizeof(err)), gen);
	assert_int_equal(ts_modify(p, s, ++gen, 5), 0);
	for (size_t k = 0; k < 6 * MiB; k += 4096)
		assert_int_equal(blob[k], 0x6b);
	blob[12345] = 0x11;
	/* a restart from each checkpoint kept, meanwhile */
	for (unsigned k = first; k < before; k++)
		assert_int_equal(tc_gen(path, sn[k].id), sn[k].gen);

	/* room again: a checkpoint succeeds and restarts exactly */
	assert_int_equal(unlink(filler), 0);
	ckpt_id id;
	if (ckpt_checkpoint(p, "after", &id) != 0)
		fail_msg("checkpoint after freeing space: %s", ckpt_errormsg());
	for (unsigned k = first; k < before; k++)
		snap_check(path, &sn[k], "after the next checkpoint");
	assert_int_equal(tc_gen(path, id), gen);
	/* and the lineage goes on, recycling again: every image exact,
	 * the pages written before the failed checkpoint included */
	ckpt_id more[4];
	for (unsigned k = 0; k < 4; k++) {
		assert_int_equal(ts_modify(p, s, gen + 1 + k, 3), 0);
		blob[(k + 1) * MiB] = (unsigned char)(0x20 + k);
		if (ckpt_checkpoint(p, NULL, &more[k]) != 0)
			fail_msg("checkpoint %u after freeing space: %s", k, ckpt_errormsg());
	}
	assert_int_equal(ckpt_close(p), 0);
	for (unsigned k = 1; k < 4; k++)
		assert_int_equal(tc_gen(path, more[k]), gen + 1 + k);
	gen += 4;
	assert_int_equal(tc_gen(path, 0), gen);
	p = ckpt_open(path, CKPT_LATEST, &cfg);
	assert_non_null(p);
	unsigned char *b2 = (unsigned char *)blob;     /* same address after restart */
	assert_int_equal(b2[12345], 0x11);
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(b2[(k + 1) * MiB], 0x20 + k);
	for (size_t k = 0; k < 6 * MiB; k += 4096)
		if (k != 12288 && k % MiB != 0 && b2[k] != 0x6b)
			fail_msg("byte %zu of the block written before the failed checkpoint "
				"is %#x after the restart", k, b2[k]);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
	for (unsigned k = 0; k < before; k++)
		free(sn[k].bytes);
	tu_umount(dir);
}

/* the copy path: the second checkpoint of a lineage copies its base, then the written pages */
static void
test_cow_enospc_copy(void **state)
{
	(void)state;
	enospc_case(1, 0);
}

/* the recycle path: the fourth checkpoint of a keep-3 lineage recycles the oldest */
static void
test_cow_enospc_recycle(void **state)
{
	(void)state;
	enospc_case(3, 1);
}

/* -- a damaged image --------------------------------------------------------- */

static void
test_cow_damaged_image(void **state)
{
	(void)state;
	const char *path = tu_path("damaged.pool");
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cow_cfg, TC_NODES, &s);
	ckpt_id a, b;
	assert_int_equal(ckpt_checkpoint(p, NULL, &a), 0);
	assert_int_equal(ts_modify(p, s, 2, 3), 0);
	assert_int_equal(ckpt_checkpoint(p, NULL, &b), 0);
	assert_int_equal(ckpt_close(p), 0);

	/* flip a byte in the middle of b's image */
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int bi = ckpt_index(&c, b);
	assert_true(bi >= 0);
	uint64_t off = layout_seg_off(&c.hdr, (uint32_t)bi) + c.e[bi].used / 2 + 17;
	tu_catalog_free(&c);
	tu_flip_byte(path, off, 0x40);

	/* an eager restart verifies the whole image first (a lazy one fences
	 * the damaged chunk instead: test_lazy.c) */
	setenv("CKPT_RESTART", "eager", 1);
	errno = 0;
	assert_null(ckpt_open(path, b, &cow_cfg));
	int e = errno;
	const char *m = ckpt_errormsg();
	char want[64];
	snprintf(want, sizeof(want), "checkpoint %" PRIu64, b);
	if (e != EINVAL || !strstr(m, want) || !strstr(m, "checksum mismatch"))
		fail_msg("open of the damaged checkpoint: errno %d, \"%s\"; want EINVAL and "
			"a message naming %s and the checksum mismatch", e, m, want);

	/* latest falls back to the previous one */
	p = ckpt_open(path, CKPT_LATEST, &cow_cfg);
	if (!p)
		fail_msg("open latest with the newest damaged: %s", ckpt_errormsg());
	assert_non_null(p->eng);
	char err[256];
	assert_int_equal(ts_check(ckpt_root(p), TC_NODES, err, sizeof(err)), 1);
	/* and goes on from it */
	assert_int_equal(ts_modify(p, ckpt_root(p), 3, 3), 0);
	ckpt_id d;
	assert_int_equal(ckpt_checkpoint(p, NULL, &d), 0);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(tc_gen(path, d), 3);
	assert_int_equal(tc_gen(path, a), 1);
	unsetenv("CKPT_RESTART");
}

/* helper_restart -- "restart POOL ID N" (test_cow_util.h), in cow mode or failing */
static int
helper_restart(char **arg)
{
	return tc_helper_restart(arg, &cow_cfg, 1);
}

int
main(int argc, char **argv)
{
	static const struct tu_helper helpers[] = { { "restart", 3, helper_restart }, { NULL } };
	tu_helper_main(argc, argv, helpers);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cow_damaged_image),
		cmocka_unit_test(test_cow_fork_points),
		cmocka_unit_test(test_cow_parent_killed_child_pinned),
		cmocka_unit_test(test_cow_bug_child_keeps_dead_parent_lock),
		cmocka_unit_test(test_cow_enospc_copy),
		cmocka_unit_test(test_cow_enospc_recycle),
		cmocka_unit_test(test_cow_random_kills),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
