/*
 * test_checkpoint_crash.c -- crash atomicity of ckpt_checkpoint (issue 4).
 *
 * Named points: a child restarts from the pool's checkpoint (generation
 * 1), moves its heap to generation 2 and checkpoints with
 * CKPT_TEST_CRASH_AT set, which kills it (SIGKILL) at that point. Then the
 * pool opens, ckpt-inspect verify passes, the old checkpoint is byte-identical,
 * CKPT_LATEST is exactly the checkpoint the point implies (old before the
 * publishing commit, new after), opens with its checksum verified and holds
 * exactly that generation; a mid-copy kill leaves half a copy in a dead
 * busy segment that nothing reads.
 *
 * Restart: a process restarting from a checkpoint is killed mid-copy
 * ("restart:mid-copy"): the checkpoint is byte-identical, the half-filled
 * segment reads dead, verify passes, and the next restart uses the same
 * checkpoint and finds it whole.
 *
 * Random points: >= 200 times, a child loops modify + checkpoint and the
 * parent SIGKILLs it after a random delay; after each kill the pool opens,
 * ckpt-inspect verify passes, and the newest checkpoint is one of the
 * states the child froze (between the last checkpoint that returned and the
 * last one begun), complete and exact.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <sys/mman.h>

#include "test_checkpoint_util.h"
#include "heap.h"
#include "inspect.h"

#define NODES 20000

/* check_pool_sound -- after a crash: the library's reader opens the pool
 * and ckpt-inspect verify passes (exit 0, else the test fails) */
static void
check_pool_sound(const char *path)
{
	struct inspect in;
	if (inspect_open(&in, path) < 0)
		fail_msg("inspect_open %s after a crash: %s", path, ckpt_errormsg());
	inspect_close(&in);
	tu_inspect_verify(path);
}

/* restart_check -- open LATEST here, check it holds n nodes; returns the
 * generation; *from gets the checkpoint id it was restarted from */
static int64_t
restart_check(const char *path, uint64_t n, ckpt_id *from)
{
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p)
		fail_msg("restart from latest after a crash: %s", ckpt_errormsg());
	char err[256];
	int64_t gen = ts_check(ckpt_root(p), n, err, sizeof(err));
	if (gen < 0)
		fail_msg("restarted heap is wrong: %s", err);
	*from = own_live_entry(path).ckpt_id;
	assert_int_equal(ckpt_close(p), 0);
	return gen;
}

/* owned_by -- index of the entry in state st owned by pid, or -1 */
static int
owned_by(const struct tu_catalog *c, uint32_t st, pid_t pid)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->e[i].state == st && c->e[i].owner.pid == pid)
			return (int)i;
	return -1;
}

static const struct {
	const char *name;
	int published;      /* the new checkpoint is in the catalog */
	int busy_left;      /* a reserved segment is left behind */
} points[] = {
	{ "checkpoint:before-reserve", 0, 0 },
	{ "checkpoint:before-copy", 0, 1 },
	{ "checkpoint:mid-copy", 0, 1 },
	{ "checkpoint:before-persist", 0, 1 },
	{ "checkpoint:after-persist", 0, 1 },
	{ "checkpoint:before-publish", 0, 1 },
	{ "checkpoint:after-publish", 1, 0 },
};

/* check_half_copy -- the busy segment holds a prefix of the live heap, not all of it */
static void
check_half_copy(const char *path, const struct tu_catalog *c, int busy, int live)
{
	unsigned char *hdr = seg_bytes(path, &c->hdr, (uint32_t)live, HEAP_HDR_BYTES);
	uint64_t hw;
	if (heap_peek_high_water(hdr, c->hdr.seg_size, &hw) < 0)
		fail_msg("dead child's heap: %s", ckpt_errormsg());
	free(hdr);
	unsigned char *l = seg_bytes(path, &c->hdr, (uint32_t)live, hw);
	unsigned char *b = seg_bytes(path, &c->hdr, (uint32_t)busy, hw);
	uint64_t half = (hw / 2) & ~(((uint64_t)64 << 10) - 1);
	assert_true(half > 0);
	if (memcmp(l, b, half) != 0)
		fail_msg("mid-copy: first half of the copy differs from the heap");
	int rest_zero = 1, live_rest_data = 0;
	for (uint64_t k = half; k < hw; k++) {
		rest_zero &= b[k] == 0;
		live_rest_data |= l[k] != 0;
	}
	if (!rest_zero)
		fail_msg("mid-copy: the second half was copied too");
	if (!live_rest_data)
		fail_msg("mid-copy: the heap's second half is empty; the test proves nothing");
	free(l);
	free(b);
}

/*
 * gen1_pool -- a new pool at path (8 MiB heap, nseg segments) holding the
 * NODES-node structure at generation 1 and, when big, a big-byte block of
 * 0x5a, checkpointed as "gen1" and closed. Returns the checkpoint id; *entry
 * gets its catalog entry and *bytes (malloc'd) its whole segment.
 */
static ckpt_id
gen1_pool(const char *path, uint32_t nseg, uint64_t big, struct cat_entry *entry,
		void **bytes)
{
	struct ckpt_config cfg = { .heap_size = 8 * MiB, .max_segments = nseg };
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p)
		fail_msg("create: %s", ckpt_errormsg());
	assert_non_null(ts_build(p, NODES, 1));
	if (big) {
		void *b = ckpt_alloc(p, big);
		assert_non_null(b);
		memset(b, 0x5a, big);
	}
	ckpt_id id;
	assert_int_equal(ckpt_checkpoint(p, "gen1", &id), 0);
	assert_int_equal(ckpt_close(p), 0);
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int i = ckpt_index(&c, id);
	assert_true(i >= 0);
	*entry = c.e[i];
	*bytes = seg_bytes(path, &c.hdr, (uint32_t)i, c.hdr.seg_size);
	tu_catalog_free(&c);
	return id;
}

/* ckpt_unchanged -- after a crash: checkpoint `id` has the same entry and every byte as before */
static void
ckpt_unchanged(const char *path, const struct tu_catalog *c, ckpt_id id,
		const struct cat_entry *old, const void *old_bytes, const char *point)
{
	int i = ckpt_index(c, id);
	assert_true(i >= 0);
	assert_int_equal(c->e[i].state, CAT_CKPT);
	assert_memory_equal(&c->e[i], old, sizeof(*old));
	void *now = seg_bytes(path, &c->hdr, (uint32_t)i, c->hdr.seg_size);
	if (memcmp(now, old_bytes, c->hdr.seg_size) != 0)
		fail_msg("%s: the previous checkpoint's segment changed", point);
	free(now);
}

static void
crash_at(const char *point, int published, int busy_left)
{
	char name[128];
	snprintf(name, sizeof(name), "crash-%s.pool", strchr(point, ':') + 1);
	const char *path = tu_path(name);

	/* generation 1, checkpointed */
	struct cat_entry old;
	void *old_bytes;
	ckpt_id id1 = gen1_pool(path, 8, 0, &old, &old_bytes);

	/* a child restarts, moves to generation 2, and dies checkpointing it */
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ckpt_pool *q = ckpt_open(path, CKPT_LATEST, NULL);
		if (!q)
			_exit(10);
		if (ts_modify(q, ckpt_root(q), 2, 3) < 0)
			_exit(11);
		/* a large block too, so the heap's data reaches well into the
		 * second half of what the checkpoint copies */
		void *big = ckpt_alloc(q, 3 * MiB);
		if (!big)
			_exit(11);
		memset(big, 0xab, 3 * MiB);
		setenv("CKPT_TEST_CRASH_AT", point, 1);
		ckpt_checkpoint(q, "gen2", NULL);
		_exit(12);                 /* the point was never reached */
	}
	int rc = tu_wait_exit(pid);
	if (rc != 128 + SIGKILL)
		fail_msg("%s: child exited %d, expected to be killed at the point", point, rc);

	check_pool_sound(path);
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	/* the old checkpoint: same entry, same bytes */
	ckpt_unchanged(path, &c, id1, &old, old_bytes, point);
	free(old_bytes);

	assert_int_equal(tu_catalog_count(&c, CAT_CKPT), published ? 2 : 1);
	int ni = newest_ckpt(&c);
	ckpt_id want = published ? id1 + 1 : id1;
	assert_int_equal(c.e[ni].ckpt_id, want);
	int live = owned_by(&c, CAT_LIVE, pid);
	int busy = owned_by(&c, CAT_BUSY, pid);
	assert_true(live >= 0);                 /* the child's heap, dead */
	assert_int_equal(busy >= 0, busy_left);
	struct inspect in;
	assert_int_equal(inspect_open(&in, path), 0);
	assert_string_equal(inspect_state_name(&in, (uint32_t)live), "dead");
	if (busy >= 0)
		assert_string_equal(inspect_state_name(&in, (uint32_t)busy), "dead");
	inspect_close(&in);
	if (strcmp(point, "checkpoint:mid-copy") == 0)
		check_half_copy(path, &c, busy, live);
	if (published) {
		/* exactly the child's frozen heap: its dead live segment is
		 * untouched since the checkpoint was taken */
		uint64_t used = c.e[ni].used;
		assert_int_equal(c.e[ni].source, (uint32_t)live);
		void *a = seg_bytes(path, &c.hdr, (uint32_t)ni, used);
		void *b = seg_bytes(path, &c.hdr, (uint32_t)live, used);
		if (memcmp(a, b, used) != 0)
			fail_msg("%s: the new checkpoint differs from the heap it froze", point);
		free(a);
		free(b);
	}
	tu_catalog_free(&c);

	/* restart: the checksum verifies and the content is that generation */
	ckpt_id from;
	int64_t gen = restart_check(path, NODES, &from);
	assert_int_equal(from, want);
	assert_int_equal(gen, published ? 2 : 1);
	check_pool_sound(path);
}

/*
 * test_crash_restart_mid_copy -- kill -9 a process while ckpt_open copies a
 * checkpoint into its new live segment
 */
static void
test_crash_restart_mid_copy(void **state)
{
	(void)state;
	const char *path = tu_path("crash-restart.pool");
	/* a 3 MiB block: well past the 1 MiB first chunk, so the copy stops
	 * with data to go */
	struct cat_entry old;
	void *old_bytes;
	ckpt_id id = gen1_pool(path, 6, 3 * MiB, &old, &old_bytes);

	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("CKPT_TEST_CRASH_AT", "restart:mid-copy", 1);
		ckpt_pool *q = ckpt_open(path, CKPT_LATEST, NULL);
		_exit(q ? 12 : 10);        /* the point was never reached */
	}
	int rc = tu_wait_exit(pid);
	if (rc != 128 + SIGKILL)
		fail_msg("restart:mid-copy: child exited %d, expected to be killed", rc);

	check_pool_sound(path);
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	ckpt_unchanged(path, &c, id, &old, old_bytes, "restart:mid-copy");
	/* the half-filled segment: busy, the killed process's, dead; it holds
	 * the first chunk of the checkpoint and not the rest */
	int busy = owned_by(&c, CAT_BUSY, pid);
	assert_true(busy >= 0);
	assert_int_equal(owned_by(&c, CAT_LIVE, pid), -1);
	struct inspect in;
	assert_int_equal(inspect_open(&in, path), 0);
	assert_string_equal(inspect_state_name(&in, (uint32_t)busy), "dead");
	inspect_close(&in);
	unsigned char *b = seg_bytes(path, &c.hdr, (uint32_t)busy, old.used);
	const unsigned char *o = old_bytes;
	assert_memory_equal(b, o, MiB);
	int differs = 0;
	for (uint64_t k = MiB; k < old.used && !differs; k++)
		differs = b[k] != o[k];
	if (!differs)
		fail_msg("restart:mid-copy: the whole checkpoint was copied; the test proves nothing");
	free(b);
	free(old_bytes);
	tu_catalog_free(&c);

	/* the next restart uses the same checkpoint and finds it whole */
	ckpt_id from;
	assert_int_equal(restart_check(path, NODES, &from), 1);
	assert_int_equal(from, id);
	check_pool_sound(path);
}

static void
test_crash_named_points(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
		crash_at(points[i].name, points[i].published, points[i].busy_left);
}

/* shared with the random-kill child */
struct progress {
	volatile uint64_t ready;      /* the child restarted */
	volatile uint64_t started;    /* generation whose checkpoint was begun */
	volatile uint64_t done;       /* generation whose checkpoint returned */
	volatile uint64_t cycle_us;   /* duration of the last modify+checkpoint */
};

#define RANDOM_NODES 2000

static void __attribute__((noreturn))
random_child(const char *path, struct progress *pr)
{
	struct ckpt_config cfg = { .keep_checkpoints = 2 };
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &cfg);
	if (!p)
		_exit(20);
	struct ts_state *s = ckpt_root(p);
	uint64_t g = s->gen;
	pr->started = pr->done = g;
	__sync_synchronize();
	pr->ready = 1;
	for (;;) {
		uint64_t t0 = now_us();
		g++;
		if (ts_modify(p, s, g, 9) < 0)
			_exit(21);
		pr->started = g;
		__sync_synchronize();
		if (ckpt_checkpoint(p, "loop", NULL) < 0)
			_exit(22);
		pr->done = g;
		pr->cycle_us = now_us() - t0;
		__sync_synchronize();
	}
}

/* new_random_pool -- a pool at path whose one checkpoint holds generation 1 */
static void
new_random_pool(const char *path)
{
	struct ckpt_config cfg = { .heap_size = 8 * MiB, .max_segments = 64,
		.keep_checkpoints = 2 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p)
		fail_msg("create: %s", ckpt_errormsg());
	assert_non_null(ts_build(p, RANDOM_NODES, 1));
	assert_int_equal(ckpt_checkpoint(p, "start", NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
}

static void
test_crash_random_points(void **state)
{
	(void)state;
	int iters = test_scale_small() ? 20 : 200;
	/* each killed child keeps up to keep_checkpoints checkpoints of its
	 * own (retention is per live segment): a fresh pool every 25 kills */
	const int per_pool = 25;
	struct progress *pr = mmap(NULL, sizeof(*pr), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(pr != MAP_FAILED);
	unsigned seed = (unsigned)now_us();
	printf("random kills: %d, seed %u\n", iters, seed);
	srand(seed);
	char path[600] = "";
	uint64_t prev = 0;
	int advanced = 0, mid_checkpoint = 0, before_ready = 0;
	uint64_t cycle_sum = 0, cycles = 0, verify_us = 0;
	for (int it = 0; it < iters; it++) {
		if (it % per_pool == 0) {
			char n[32];
			snprintf(n, sizeof(n), "random-%d.pool", it / per_pool);
			snprintf(path, sizeof(path), "%s", tu_path(n));
			new_random_pool(path);
			prev = 1;
		}
		memset((void *)pr, 0, sizeof(*pr));
		pid_t pid = tu_fork();
		assert_true(pid >= 0);
		if (pid == 0)
			random_child(path, pr);

		/* when to kill: right away (maybe while it restarts), or a
		 * random instant inside its 1st..3rd modify+checkpoint cycle */
		int k = rand() % 4;
		uint64_t cycle = cycles ? cycle_sum / cycles : 10000;
		if (k > 0) {
			while (!pr->ready || pr->started < prev + (uint64_t)k) {
				int st;
				if (waitpid(pid, &st, WNOHANG) == pid)
					fail_msg("iteration %d: child ended by itself (status %#x)",
						it, st);
				usleep(100);
			}
		}
		usleep((useconds_t)((uint64_t)rand() % (cycle + 1)));
		kill(pid, SIGKILL);
		int rc = tu_wait_exit(pid);
		if (rc != 128 + SIGKILL)
			fail_msg("iteration %d: child exited %d before the kill", it, rc);
		if (pr->cycle_us) {
			cycle_sum += pr->cycle_us;
			cycles++;
		}

		uint64_t v0 = now_us();
		check_pool_sound(path);
		verify_us += now_us() - v0;
		struct tu_catalog c;
		tu_catalog_read(path, &c);
		ckpt_id newest = c.e[newest_ckpt(&c)].ckpt_id;
		tu_catalog_free(&c);
		ckpt_id from;
		int64_t gen = restart_check(path, RANDOM_NODES, &from);
		/* the newest checkpoint is never torn: restart used it */
		assert_int_equal(from, newest);
		uint64_t lo = pr->ready ? pr->done : prev;
		uint64_t hi = pr->ready ? pr->started : prev;
		if ((uint64_t)gen < lo || (uint64_t)gen > hi)
			fail_msg("iteration %d: latest holds generation %lld; the child had "
				"checkpointed %llu and begun %llu", it, (long long)gen,
				(unsigned long long)lo, (unsigned long long)hi);
		advanced += (uint64_t)gen > prev;
		mid_checkpoint += pr->ready && pr->started > pr->done;
		before_ready += !pr->ready;
		prev = (uint64_t)gen;
	}
	printf("random kills: %d advanced the latest checkpoint, %d landed inside a "
	       "checkpoint, %d before the child had restarted; mean cycle %llu us; "
	       "open + verify after each kill: mean %llu us\n",
	       advanced, mid_checkpoint, before_ready,
	       (unsigned long long)(cycles ? cycle_sum / cycles : 0),
	       (unsigned long long)(verify_us / (uint64_t)iters));
	/* the kills must have landed all over, or the test proved little */
	assert_true(advanced > 0);
	assert_true(mid_checkpoint > 0);
	munmap(pr, sizeof(*pr));
}

int
main(void)
{
	/* fork mode copy: these tests are about the copying checkpoint and
	 * restart, killed mid-copy; auto settles to cow on a new pool
	 * (test_cow*.c), so ask for copy explicitly */
	setenv("CKPT_FORK_MODE", "copy", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_named_points),
		cmocka_unit_test(test_crash_restart_mid_copy),
		cmocka_unit_test(test_crash_random_points),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
