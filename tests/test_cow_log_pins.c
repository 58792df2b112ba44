/*
 * test_cow_log_pins.c -- what a heap that logs (format 1.9) must keep, and
 * what readers must not keep, found by a review of the page-log engine and
 * kept as tests (each failed before its fix):
 *  - a cow fork child's persisted pages lie over the parent's newest
 *    checkpoint (base_id), not the image both map (source): the parent's
 *    retention must keep it while the child lives;
 *  - a second process continuing the same lineage must not free the
 *    running heap's newest checkpoint either;
 *  - ckpt-inspect's cached log of a segment is dropped when a refreshed
 *    snapshot finds the segment holding another checkpoint;
 *  - a page dropped with MADV_DONTNEED after the tracker re-armed is still
 *    reported written (it reads as the pinned base's again), and the next
 *    checkpoint verifies.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_cow_util.h"
#include "inspect.h"
#include "sums.h"


/* every test's pool: cow, keep 2 (a lineage that recycles, and logs) */
static const struct ckpt_config lineage_cfg = TC_CONFIG(32u << 20, 2);

/* new_pool -- a new cow pool at path (keep 2) holding the test structure at gen 1 */
static ckpt_pool *
new_pool(const char *path, struct ts_state **s)
{
	return tc_create(path, &lineage_cfg, TC_NODES, s, 0);
}


static void
test_child_base_kept(void **state)
{
	(void)state;
	const char *path = tu_path("forkbase.pool");
	struct ts_state *s;
	ckpt_pool *p = new_pool(path, &s);
	ckpt_id id;
	uint64_t gen = 1;
	/* until the parent logs and its base is not its newest checkpoint */
	for (; gen < 4; gen++) {
		if (gen > 1)
			assert_int_equal(ts_modify(p, s, gen, 13), 0);
		assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);
	}
	if (!p->eng->logging) {
		printf("SKIPPED: not logging\n");
		skip();
	}
	printf("parent: base_seg %u base_id %" PRIu64 " newest %" PRIu64 "\n",
			p->eng->base_seg, p->eng->base_id, id);
	struct fk_chan ch;
	pid_t pid = fk_fork(&ch);
	if (pid == 0) {
		/* the child persists a page and stays alive until told */
		char b = 0;
		if (ckpt_persist(p, p->heap_map.addr, 4096) < 0) {
			fprintf(stderr, "child persist: %s\n", ckpt_errormsg());
			_exit(2);
		}
		if (write(ch.up[1], &b, 1) != 1 || read(ch.down[0], &b, 1) != 1)
			_exit(3);
		_exit(0);
	}
	char b = 0;
	assert_int_equal(read(ch.up[0], &b, 1), 1);
	/* the parent goes on: its retention keeps 2 */
	for (int k = 0; k < 3; k++, gen++) {
		assert_int_equal(ts_modify(p, s, gen, 13), 0);
		assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);
	}
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int bad = 0;
	for (uint32_t i = 0; i < c.n; i++) {
		const struct cat_entry *e = &c.e[i];
		if (e->state != CAT_LIVE || i == p->seg || e->base_id == 0)
			continue;
		int bi = ckpt_index(&c, e->base_id);
		printf("child entry %u: source %u base_id %" PRIu64 " -> %s\n", i, e->source,
				e->base_id, bi < 0 ? "GONE" : "present");
		bad |= bi < 0;
	}
	tu_catalog_free(&c);
	assert_int_equal(write(ch.down[1], &b, 1), 1);
	assert_int_equal(tu_wait_exit(pid), 0);
	ckpt_close(p);
	if (bad)
		fail_msg("the dead fork child's persisted pages lost their base checkpoint");
}


static void
test_lineage(void **state)
{
	(void)state;
	const char *path = tu_path("lineage.pool");
	unlink(path);
	unsetenv("CKPT_FORK_MODE");
	struct fk_chan ch;      /* up: A to B, down: B to A */
	pid_t a = fk_fork(&ch);
	if (a == 0) {
		ckpt_pool *p = ckpt_create(path, &lineage_cfg);
		if (!p)
			_exit(2);
		char *x = ckpt_alloc(p, 4096);
		ckpt_id id = 0;
		char b = 0;
		for (int g = 0; g < 5; g++) {
			x[0] = (char)g;
			if (ckpt_checkpoint(p, NULL, &id) < 0)
				_exit(3);
		}
		b = (char)(p->eng->logging);
		if (write(ch.up[1], &b, 1) != 1 || read(ch.down[0], &b, 1) != 1)
			_exit(4);
		/* one more while B runs: A's newest, logged, A's base_id */
		x[0] = 99;
		if (ckpt_checkpoint(p, NULL, &id) < 0)
			_exit(5);
		printf("A: newest %" PRIu64 " (logged %d), live entry source %u\n", id,
				p->eng->last_logged, p->eng->base_seg);
		fflush(stdout);
		if (write(ch.up[1], &id, sizeof(id)) != sizeof(id) || read(ch.down[0], &b, 1) != 1)
			_exit(6);
		ckpt_close(p);
		_exit(0);
	}
	char b;
	assert_int_equal(read(ch.up[0], &b, 1), 1);
	if (!b) {
		printf("SKIPPED: A does not log\n");
		assert_int_equal(write(ch.down[1], &b, 1), 1);
		ckpt_id id;
		assert_int_equal(read(ch.up[0], &id, sizeof(id)), sizeof(id));
		assert_int_equal(write(ch.down[1], &b, 1), 1);
		tu_wait_exit(a);
		skip();
	}
	ckpt_pool *q = ckpt_open(path, CKPT_LATEST, &lineage_cfg);      /* B, A's lineage */
	assert_non_null(q);
	assert_int_equal(write(ch.down[1], &b, 1), 1);
	ckpt_id newest;
	assert_int_equal(read(ch.up[0], &newest, sizeof(newest)), sizeof(newest));
	char *y = ckpt_alloc(q, 4096);
	assert_non_null(y);
	for (int k = 0; k < 2; k++) {
		y[0] = (char)k;
		assert_int_equal(ckpt_checkpoint(q, NULL, NULL), 0);
	}
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int there = ckpt_index(&c, newest) >= 0;
	tu_catalog_free(&c);
	printf("B: A is alive; A's newest checkpoint %" PRIu64 " is %s\n", newest,
			there ? "kept" : "FREED by B's retention");
	assert_int_equal(write(ch.down[1], &b, 1), 1);
	assert_int_equal(tu_wait_exit(a), 0);
	ckpt_close(q);
	if (!there)
		fail_msg("a live heap's newest checkpoint (its base_id) was freed");
}

/* image_ok -- inspect reads checkpoint segment seg whole, and it matches its checksum */
static int
image_ok(struct inspect *in, uint32_t seg)
{
	const struct cat_entry *e = &in->cat.e[seg];
	void *buf = malloc(e->used);
	assert_non_null(buf);
	if (inspect_read(in, seg, 0, buf, e->used) < 0) {
		printf("inspect_read: %s\n", ckpt_errormsg());
		free(buf);
		return 0;
	}
	struct sums sm;
	sums_begin(&sm, (e->flags & CAT_F_PAGE_SUMS) != 0, NULL);
	sums_update(&sm, buf, e->used);
	int ok = sums_end(&sm) == e->checksum;
	free(buf);
	return ok;
}

static void
test_stale_log_cache(void **state)
{
	(void)state;
	const char *path = tu_path("cache.pool");
	struct ts_state *s;
	ckpt_pool *p = new_pool(path, &s);
	ckpt_id id = 0;
	uint64_t gen = 1;
	for (; gen <= 8 && !(p->eng->last_logged); gen++) {
		if (gen > 1)
			assert_int_equal(ts_modify(p, s, gen, 13), 0);
		assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);
	}
	if (!p->eng->last_logged) {
		printf("SKIPPED: never logged\n");
		skip();
	}
	struct inspect in;
	assert_int_equal(inspect_open(&in, path), 0);
	int seg = ckpt_index(&(struct tu_catalog){ .n = in.cat.n, .e = in.cat.e }, id);
	assert_true(seg >= 0);
	assert_true(in.cat.e[seg].flags & CAT_F_LOGGED);
	assert_true(image_ok(&in, (uint32_t)seg));      /* loads and caches its log */
	printf("checkpoint %" PRIu64 " logged in segment %d: reads whole\n", id, seg);
	/* the writer goes on until that segment holds another logged checkpoint */
	int again = 0;
	for (int k = 0; k < 8 && !again; k++, gen++) {
		/* a few pages only: a much smaller table than before */
		char *x = ckpt_alloc(p, 3 * 4096);
		assert_non_null(x);
		memset(x, k + 1, 3 * 4096);
		assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);
		assert_int_equal(inspect_refresh(&in), 0);
		again = in.cat.e[seg].state == CAT_CKPT && in.cat.e[seg].ckpt_id == id &&
			(in.cat.e[seg].flags & CAT_F_LOGGED);
	}
	if (!again) {
		printf("SKIPPED: segment %d never logged again\n", seg);
		inspect_close(&in);
		skip();
	}
	printf("checkpoint %" PRIu64 " now logged in segment %d\n", id, seg);
	int ok = image_ok(&in, (uint32_t)seg);
	inspect_close(&in);
	/* a fresh inspect reads it whole: only the cache is wrong */
	assert_int_equal(inspect_open(&in, path), 0);
	int fresh = in.cat.e[seg].ckpt_id == id ? image_ok(&in, (uint32_t)seg) : -1;
	inspect_close(&in);
	printf("after refresh: %s; fresh inspect: %s\n", ok ? "whole" : "CHECKSUM MISMATCH",
			fresh < 0 ? "(changed)" : fresh ? "whole" : "mismatch");
	ckpt_close(p);
	if (!ok)
		fail_msg("inspect laid a stale cached log over a recycled segment");
}

static void
test_dontneed(void **state)
{
	(void)state;
	const char *path = tu_path("dontneed.pool");
	ckpt_pool *p = tc_create(path, &lineage_cfg, 0, NULL, 0);
	ckpt_id id;
	char *filler = ckpt_alloc(p, 4096);
	assert_non_null(filler);
	memset(filler, 1, 4096);
	assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);     /* C1: the base */
	if (!p->eng->logging) {
		printf("SKIPPED: not logging\n");
		skip();
	}
	/* a page written after the base */
	char *blk = ckpt_alloc(p, 64 * 1024);
	assert_non_null(blk);
	char *pg = (char *)(((uintptr_t)blk + 4095) & ~(uintptr_t)4095);
	memset(pg, 0xab, 4096);
	assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);     /* C2: has it */
	filler[0]++;
	assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);     /* C3: re-arms it */
	/* the program drops it: it reads as the base's bytes now */
	assert_int_equal(madvise(pg, 4096, MADV_DONTNEED), 0);
	printf("after MADV_DONTNEED the page reads 0x%02x (was 0xab)\n", (unsigned char)pg[0]);
	filler[0]++;
	assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);     /* C4: recycles C2 */
	printf("C4 = %" PRIu64 ": recycled %d logged %d\n", id, p->eng->last_recycled,
			p->eng->last_logged);
	struct inspect in;
	assert_int_equal(inspect_open(&in, path), 0);
	int seg = -1;
	for (uint32_t i = 0; i < in.cat.n; i++)
		if (in.cat.e[i].state == CAT_CKPT && in.cat.e[i].ckpt_id == id)
			seg = (int)i;
	assert_true(seg >= 0);
	int ok = image_ok(&in, (uint32_t)seg);
	inspect_close(&in);
	printf("checkpoint %" PRIu64 ": %s\n", id, ok ? "verifies" : "DOES NOT VERIFY");
	ckpt_close(p);
	if (!ok)
		fail_msg("a checkpoint after MADV_DONTNEED does not match its checksum");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_child_base_kept),
		cmocka_unit_test(test_lineage),
		cmocka_unit_test(test_stale_log_cache),
		cmocka_unit_test(test_dontneed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
