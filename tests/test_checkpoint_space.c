/*
 * test_checkpoint_space.c -- where checkpoints' space goes (issue 4):
 * retention (a pool setting and ckpt_set_keep_checkpoints) frees old
 * checkpoints and punches their blocks; ENOSPC in the middle of a
 * checkpoint on a small filesystem leaves the previous checkpoint intact,
 * the process running on a usable heap and the reserved segment released;
 * dead segments stay listed until ckpt_reclaim or until the pool needs a
 * segment, oldest (and crashed checkpoints' leftovers) first.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <sys/statvfs.h>

#include "test_checkpoint_util.h"
#include "heap.h"
#include "inspect.h"

#define NODES 20000

/* ckpt_ids -- the checkpoint ids in the catalog, ascending, into ids; count returned */
static unsigned
ckpt_ids(const char *path, ckpt_id *ids, unsigned max)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	unsigned n = 0;
	for (ckpt_id want = 1; want < c.h->next_ckpt_id; want++)
		if (ckpt_index(&c, want) >= 0 && n < max)
			ids[n++] = want;
	tu_catalog_free(&c);
	return n;
}

/* check_free_punched -- every free segment of the pool holds no blocks */
static void
check_free_punched(const char *path)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_FREE && tu_seg_has_data(path, &c.hdr, i))
			fail_msg("segment %u is free but still holds data blocks", i);
	tu_catalog_free(&c);
}

/* next_gen -- move to generation gen with a fresh 1 MiB block of data (the old one freed) */
static void
next_gen(ckpt_pool *p, struct ts_state *s, uint64_t gen, void **blob)
{
	assert_int_equal(ts_modify(p, s, gen, 4), 0);
	ckpt_free(p, *blob);
	*blob = ckpt_alloc(p, MiB);
	assert_non_null(*blob);
	memset(*blob, (int)gen, MiB);
}

static void
test_retention_config(void **state)
{
	(void)state;
	const char *path = tu_path("keep-config.pool");
	struct ckpt_config cfg = { .heap_size = 16 * MiB, .max_segments = 8,
		.keep_checkpoints = 2 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	struct ts_state *s = ts_build(p, NODES, 0);
	assert_non_null(s);
	void *blob = NULL;
	uint64_t blocks2 = 0, ckpt_size = 0;
	for (uint64_t g = 1; g <= 6; g++) {
		next_gen(p, s, g, &blob);
		ckpt_id id;
		assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);
		assert_int_equal(id, g);
		ckpt_id ids[8];
		unsigned n = ckpt_ids(path, ids, 8);
		/* the newest two, and nothing older */
		assert_int_equal(n, g < 2 ? g : 2);
		assert_int_equal(ids[n - 1], g);
		if (n == 2)
			assert_int_equal(ids[0], g - 1);
		check_free_punched(path);
		uint64_t blocks = file_blocks(path);
		if (g == 2) {
			struct tu_catalog c;
			tu_catalog_read(path, &c);
			ckpt_size = c.e[ckpt_index(&c, 2)].used;
			tu_catalog_free(&c);
			blocks2 = blocks;
		} else if (g > 2 && blocks > blocks2 + ckpt_size / 2) {
			/* a third checkpoint's worth of blocks would be kept */
			fail_msg("after checkpoint %llu the pool occupies %llu bytes, "
				"after checkpoint 2 %llu (a checkpoint is %llu)",
				(unsigned long long)g, (unsigned long long)blocks,
				(unsigned long long)blocks2, (unsigned long long)ckpt_size);
		}
	}
	assert_int_equal(ckpt_close(p), 0);

	/* what retention dropped is gone; what it kept opens */
	errno = 0;
	assert_null(ckpt_open(path, 4, NULL));
	assert_int_equal(errno, ENOENT);
	p = ckpt_open(path, 5, NULL);
	assert_non_null(p);
	char err[256];
	assert_int_equal(ts_check(ckpt_root(p), NODES, err, sizeof(err)), 5);
	assert_int_equal(ckpt_close(p), 0);
}

static void
test_retention_call(void **state)
{
	(void)state;
	const char *path = tu_path("keep-call.pool");
	struct ckpt_config cfg = { .heap_size = 16 * MiB, .max_segments = 12 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	struct ts_state *s = ts_build(p, NODES, 0);
	assert_non_null(s);
	ckpt_id base;
	assert_int_equal(ckpt_checkpoint(p, "base", &base), 0);

	/* a fork child's heap is a lineage of its own: not ours to drop */
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(ckpt_checkpoint(p, "other", NULL) == 0 && ckpt_close(p) == 0 ? 0 : 1);
	assert_int_equal(tu_wait_exit(pid), 0);
	ckpt_id other = base + 1;

	void *blob = NULL;
	uint64_t g = 1;
	ckpt_id mine[32];
	unsigned nmine = 0;
	/* the default keeps 4 of our lineage: base and the first goes */
	for (; g <= 5; g++) {
		next_gen(p, s, g, &blob);
		assert_int_equal(ckpt_checkpoint(p, NULL, &mine[nmine++]), 0);
	}
	ckpt_id ids[16];
	assert_int_equal(ckpt_ids(path, ids, 16), 1 + 4);
	assert_int_equal(ids[0], other);
	assert_int_equal(ids[1], mine[nmine - 4]);

	/* lowering it applies at once */
	uint64_t before = file_blocks(path);
	assert_int_equal(ckpt_set_keep_checkpoints(p, 1), 0);
	unsigned n = ckpt_ids(path, ids, 16);
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], other);                /* the child's */
	assert_int_equal(ids[1], mine[nmine - 1]);
	check_free_punched(path);
	if (file_blocks(path) >= before)
		fail_msg("dropping 3 checkpoints left the pool at %llu bytes (was %llu)",
			(unsigned long long)file_blocks(path), (unsigned long long)before);

	errno = 0;
	assert_int_equal(ckpt_set_keep_checkpoints(p, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(ckpt_errormsg(), "keep_checkpoints"));

	for (int k = 0; k < 2; k++, g++) {
		next_gen(p, s, g, &blob);
		assert_int_equal(ckpt_checkpoint(p, NULL, &mine[nmine++]), 0);
		assert_int_equal(ckpt_ids(path, ids, 16), 2);
		assert_int_equal(ids[1], mine[nmine - 1]);
	}
	/* raising it keeps more from now on */
	assert_int_equal(ckpt_set_keep_checkpoints(p, 3), 0);
	for (int k = 0; k < 4; k++, g++) {
		next_gen(p, s, g, &blob);
		assert_int_equal(ckpt_checkpoint(p, NULL, &mine[nmine++]), 0);
		assert_int_equal(ckpt_ids(path, ids, 16), 1 + (k < 2 ? k + 2 : 3));
	}
	n = ckpt_ids(path, ids, 16);
	assert_int_equal(ids[n - 3], mine[nmine - 3]);
	assert_int_equal(ids[n - 1], mine[nmine - 1]);
	check_free_punched(path);
	assert_int_equal(ckpt_close(p), 0);

	/* a restart continues the lineage: its checkpoints and its
	 * predecessors' share one window, so restarts do not pile up */
	for (int r = 0; r < 6; r++) {
		p = ckpt_open(path, CKPT_LATEST, &(struct ckpt_config){ .keep_checkpoints = 3 });
		assert_non_null(p);
		assert_int_equal(ckpt_checkpoint(p, "restarted", &mine[nmine++]), 0);
		assert_int_equal(ckpt_close(p), 0);
		n = ckpt_ids(path, ids, 16);
		assert_int_equal(n, 1 + 3);
		assert_int_equal(ids[0], other);
		assert_int_equal(ids[n - 1], mine[nmine - 1]);
		assert_int_equal(ids[n - 3], mine[nmine - 3]);
	}
	check_free_punched(path);
}

static void
test_enospc_mid_checkpoint(void **state)
{
	(void)state;
	const char *dir = tu_path("small-fs");
	char path[TU_SMALL_PATH], filler[TU_SMALL_PATH];
	tu_small_tmpfs(dir, "size=64m", path, filler);
	struct ckpt_config cfg = { .heap_size = 16 * MiB, .max_segments = 4 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p)
		fail_msg("create on tmpfs: %s", ckpt_errormsg());
	struct ts_state *s = ts_build(p, NODES, 1);
	assert_non_null(s);
	void *blob = ckpt_alloc(p, 3 * MiB);
	assert_non_null(blob);
	memset(blob, 1, 3 * MiB);
	ckpt_id id1;
	assert_int_equal(ckpt_checkpoint(p, "before", &id1), 0);

	/* generation 2, bigger, and spare blocks to free and reuse later */
	assert_int_equal(ts_modify(p, s, 2, 3), 0);
	void *blob2 = ckpt_alloc(p, 5 * MiB);
	assert_non_null(blob2);
	memset(blob2, 2, 5 * MiB);
	void *spare[64];
	for (int k = 0; k < 64; k++) {
		spare[k] = ckpt_alloc(p, 256);
		assert_non_null(spare[k]);
		memset(spare[k], 3, 256);
	}

	/* fill the filesystem but 2 MiB: the copy of ~10 MiB runs out midway */
	tu_fill_fs(filler, 2 * MiB);

	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int oi = ckpt_index(&c, id1);
	struct cat_entry old = c.e[oi];
	void *old_bytes = seg_bytes(path, &c.hdr, (uint32_t)oi, old.used);
	unsigned nseg_busy = tu_catalog_count(&c, CAT_BUSY);
	tu_catalog_free(&c);
	uint64_t pool_blocks = file_blocks(path), free_before = tu_fs_free(dir);

	checkpoint_enospc(p, "checkpoint on a full filesystem");

	/* the previous checkpoint is intact, the reserved segment released */
	tu_catalog_read(path, &c);
	assert_int_equal(nseg_busy, 0);
	assert_int_equal(tu_catalog_count(&c, CAT_BUSY), 0);
	assert_int_equal(tu_catalog_count(&c, CAT_CKPT), 1);
	assert_memory_equal(&c.e[oi], &old, sizeof(old));
	void *now = seg_bytes(path, &c.hdr, (uint32_t)oi, old.used);
	assert_memory_equal(now, old_bytes, old.used);
	free(now);
	free(old_bytes);
	tu_catalog_free(&c);
	check_free_punched(path);
	if (file_blocks(path) > pool_blocks || tu_fs_free(dir) < free_before)
		fail_msg("the failed checkpoint kept blocks: pool %llu -> %llu bytes, "
			"free %llu -> %llu", (unsigned long long)pool_blocks,
			(unsigned long long)file_blocks(path), (unsigned long long)free_before,
			(unsigned long long)tu_fs_free(dir));

	/* the process runs on, with its heap, on the still-full filesystem */
	char err[256];
	assert_int_equal(ts_check(ckpt_root(p), NODES, err, sizeof(err)), 2);
	assert_int_equal(ts_modify(p, s, 3, 0), 0);
	for (int k = 0; k < 64; k++)
		ckpt_free(p, spare[k]);
	for (int k = 0; k < 64; k++) {
		spare[k] = ckpt_alloc(p, 256);
		assert_non_null(spare[k]);
		memset(spare[k], 4, 256);
	}
	assert_int_equal(ts_check(ckpt_root(p), NODES, err, sizeof(err)), 3);

	/* room again: checkpoints work, both states restart */
	assert_int_equal(unlink(filler), 0);
	ckpt_id id3;
	if (ckpt_checkpoint(p, "after", &id3) != 0)
		fail_msg("checkpoint after freeing space: %s", ckpt_errormsg());
	assert_int_equal(ckpt_close(p), 0);
	p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	assert_int_equal(ts_check(ckpt_root(p), NODES, err, sizeof(err)), 3);
	assert_int_equal(ckpt_close(p), 0);
	p = ckpt_open(path, id1, NULL);
	assert_non_null(p);
	assert_int_equal(ts_check(ckpt_root(p), NODES, err, sizeof(err)), 1);
	assert_int_equal(ckpt_close(p), 0);
	tu_umount(dir);
}

/*
 * A restart, and a checkpoint, on a full filesystem give up the dead heap
 * of a crashed process in the same pool before they fail: the space is
 * there, held by nobody (issue 16, item 5).
 */
static void
test_enospc_reclaims_dead(void **state)
{
	(void)state;
	const char *dir = tu_path("small-fs2");
	char path[TU_SMALL_PATH], filler[TU_SMALL_PATH];
	tu_small_tmpfs(dir, "size=64m", path, filler);
	struct ckpt_config cfg = { .heap_size = 32 * MiB, .max_segments = 6,
		.fork_mode = CKPT_FORK_COPY };
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p)
		fail_msg("create on tmpfs: %s", ckpt_errormsg());
	struct ts_state *s = ts_build(p, NODES, 1);
	assert_non_null(s);
	void *blob = ckpt_alloc(p, 10 * MiB);
	assert_non_null(blob);
	memset(blob, 1, 10 * MiB);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);

	for (int round = 0; round < 2; round++) {
		/* a process restarts (a copy of ~12 MiB) and dies: its heap is
		 * dead; then a fork child of ours (its own copy) does */
		pid_t pid = tu_fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			ckpt_pool *q = round == 0 ? ckpt_open(path, CKPT_LATEST, &cfg) : p;
			_exit(q ? 0 : 1);   /* no ckpt_close: a crash */
		}
		assert_int_equal(tu_wait_exit(pid), 0);
		tu_fill_fs(filler, 2 * MiB);
		errno = 0;
		if (round == 0) {
			/* the restart needs ~12 MiB and finds it in the dead heap */
			p = ckpt_open(path, CKPT_LATEST, &cfg);
			if (!p)
				fail_msg("restart on a full filesystem with a dead heap: %s",
					ckpt_errormsg());
			char err[256];
			assert_int_equal(ts_check(ckpt_root(p), NODES, err, sizeof(err)), 1);
		} else {
			/* the checkpoint likewise */
			if (ckpt_checkpoint(p, NULL, NULL) != 0)
				fail_msg("checkpoint on a full filesystem with a dead heap: %s",
					ckpt_errormsg());
			assert_int_equal(ckpt_close(p), 0);
		}
		struct tu_catalog c;
		tu_catalog_read(path, &c);
		for (uint32_t i = 0; i < c.n; i++)
			if (c.e[i].state == CAT_LIVE && c.e[i].owner.pid == pid)
				fail_msg("round %d: the dead heap was not reclaimed", round);
		tu_catalog_free(&c);
		assert_int_equal(unlink(filler), 0);
	}
	tu_inspect_verify(path);
	tu_umount(dir);
}

/* -- dead segments -------------------------------------------------------- */

/* state_of -- inspect's name for segment i */
static const char *
state_of(const char *path, uint32_t i)
{
	static char name[32];
	struct inspect in;
	if (inspect_open(&in, path) < 0)
		fail_msg("inspect %s: %s", path, ckpt_errormsg());
	snprintf(name, sizeof(name), "%s", inspect_state_name(&in, i));
	inspect_close(&in);
	return name;
}

/* seg_of -- the index of the entry in state st owned by pid (asserts one) */
static uint32_t
seg_of(const char *path, uint32_t st, pid_t pid)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int found = -1;
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == st && c.e[i].owner.pid == pid) {
			assert_true(found < 0);
			found = (int)i;
		}
	tu_catalog_free(&c);
	if (found < 0)
		fail_msg("no entry in state %u owned by pid %d", st, (int)pid);
	return (uint32_t)found;
}

/* ckpt_seg -- the index of checkpoint id */
static uint32_t
ckpt_seg(const char *path, ckpt_id id)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int i = ckpt_index(&c, id);
	tu_catalog_free(&c);
	assert_true(i >= 0);
	return (uint32_t)i;
}

/* die_open -- a child restarts from the latest checkpoint and exits without
 * ckpt_close (crash_at: dies at that checkpoint point instead); returns its pid */
static pid_t
die_open(const char *path, const char *crash_at)
{
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
		if (!p)
			_exit(1);
		if (crash_at) {
			setenv("CKPT_TEST_CRASH_AT", crash_at, 1);
			ckpt_checkpoint(p, NULL, NULL);
			_exit(2);
		}
		_exit(0);
	}
	assert_int_equal(tu_wait_exit(pid), crash_at ? 128 + SIGKILL : 0);
	return pid;
}

static void
test_dead_segments(void **state)
{
	(void)state;
	const char *path = tu_path("dead.pool");
	struct ckpt_config cfg = { .heap_size = 8 * MiB, .max_segments = 6 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	assert_non_null(ts_build(p, 2000, 1));
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);

	/* three processes die holding heaps, in this order */
	uint32_t a = seg_of(path, CAT_LIVE, die_open(path, NULL));
	uint32_t b = seg_of(path, CAT_LIVE, die_open(path, NULL));
	uint32_t c = seg_of(path, CAT_LIVE, die_open(path, NULL));
	assert_string_equal(state_of(path, a), "dead");
	assert_string_equal(state_of(path, b), "dead");
	assert_string_equal(state_of(path, c), "dead");

	/* one that runs on */
	int go[2], ready[2];
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	pid_t lp = tu_fork();
	assert_true(lp >= 0);
	if (lp == 0) {
		close(go[1]);
		ckpt_pool *q = ckpt_open(path, CKPT_LATEST, NULL);
		char x = q ? 'y' : 'n';
		if (write(ready[1], &x, 1) != 1)
			_exit(1);
		if (read(go[0], &x, 1) < 0)
			_exit(1);
		_exit(0);                  /* without ckpt_close, too */
	}
	close(go[0]);
	char x;
	assert_int_equal(read(ready[0], &x, 1), 1);
	assert_int_equal(x, 'y');
	uint32_t l = seg_of(path, CAT_LIVE, lp);
	assert_string_equal(state_of(path, l), "live");

	/* we take the last free segment; the dead stay while nothing needs them */
	p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	assert_string_equal(state_of(path, a), "dead");
	assert_string_equal(state_of(path, b), "dead");
	assert_string_equal(state_of(path, c), "dead");

	/* the pool needs a segment: the oldest dead one goes */
	ckpt_id id;
	assert_int_equal(ckpt_checkpoint(p, "took a", &id), 0);
	assert_int_equal(ckpt_seg(path, id), a);
	assert_string_equal(state_of(path, b), "dead");
	assert_string_equal(state_of(path, c), "dead");
	assert_string_equal(state_of(path, l), "live");

	/* a crashed checkpoint leaves a dead busy segment: it goes before
	 * any dead heap, even older ones. (We close first: a child forked
	 * while we hold the pool would continue on our heap, not open it.)
	 * The child gets our freed segment; its checkpoint reclaims b. */
	uint32_t ours = seg_of(path, CAT_LIVE, getpid());
	assert_int_equal(ckpt_close(p), 0);
	pid_t ep = die_open(path, "checkpoint:before-persist");
	uint32_t eheap = seg_of(path, CAT_LIVE, ep), ebusy = seg_of(path, CAT_BUSY, ep);
	assert_int_equal(eheap, ours);
	assert_int_equal(ebusy, b);
	assert_string_equal(state_of(path, eheap), "dead");
	assert_string_equal(state_of(path, ebusy), "dead");
	p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	assert_int_equal(seg_of(path, CAT_LIVE, getpid()), ebusy);
	assert_string_equal(state_of(path, c), "dead");
	assert_string_equal(state_of(path, eheap), "dead");

	/* explicit reclaim: the dead heaps only, their blocks returned */
	struct tu_catalog cat;
	tu_catalog_read(path, &cat);
	assert_true(tu_seg_has_data(path, &cat.hdr, eheap));
	assert_true(tu_seg_has_data(path, &cat.hdr, c));
	unsigned n = 99;
	assert_int_equal(ckpt_reclaim(p, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(state_of(path, eheap), "free");
	assert_string_equal(state_of(path, c), "free");
	assert_false(tu_seg_has_data(path, &cat.hdr, eheap));
	assert_false(tu_seg_has_data(path, &cat.hdr, c));
	assert_string_equal(state_of(path, l), "live");
	assert_int_equal(ckpt_reclaim(p, &n), 0);
	assert_int_equal(n, 0);

	/* the running one ends without closing: now it is reclaimed too */
	assert_int_equal(write(go[1], "x", 1), 1);
	assert_int_equal(tu_wait_exit(lp), 0);
	assert_string_equal(state_of(path, l), "dead");
	assert_int_equal(ckpt_reclaim(p, NULL), 0);
	assert_string_equal(state_of(path, l), "free");
	assert_false(tu_seg_has_data(path, &cat.hdr, l));

	/* checkpoints and our heap are untouched by all this */
	tu_catalog_free(&cat);
	tu_catalog_read(path, &cat);
	assert_int_equal(tu_catalog_count(&cat, CAT_CKPT), 2);
	assert_int_equal(tu_catalog_count(&cat, CAT_LIVE), 1);
	tu_catalog_free(&cat);
	char err[256];
	assert_int_equal(ts_check(ckpt_root(p), 2000, err, sizeof(err)), 1);
	assert_int_equal(ckpt_close(p), 0);
	close(go[1]);
	close(ready[0]);
	close(ready[1]);
}

int
main(void)
{
	/* fork mode copy: these tests are about segments a copying heap leaves
	 * dead, retention, ENOSPC; auto settles to cow on a new pool
	 * (test_cow*.c), so ask for copy explicitly */
	setenv("CKPT_FORK_MODE", "copy", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retention_config),
		cmocka_unit_test(test_retention_call),
		cmocka_unit_test(test_dead_segments),
		cmocka_unit_test(test_enospc_mid_checkpoint),
		cmocka_unit_test(test_enospc_reclaims_dead),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
