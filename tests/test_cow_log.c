/*
 * test_cow_log.c -- page logs in a cow pool (format 1.9; pagelog.c,
 * engine/fold.c, docs/DESIGN.md): real processes, files and kills.
 *
 *  - once the lineage recycles, a checkpoint writes its pages as a log and
 *    the heap keeps its mapping; the published entry is logged until the
 *    background fold is done and the next commit clears it; ckpt_close
 *    leaves nothing logged;
 *  - with the fold held back (CKPT_TEST_NO_FOLD) a logged checkpoint is
 *    read through its log: ckpt-inspect verify, a restart of it (which
 *    folds it first and clears the flag), a restart of the newest;
 *  - a process killed with its last checkpoint logged: the next process
 *    restarts from it;
 *  - a damaged log: verify reports it, a restart of that checkpoint fails
 *    with a message naming the log, CKPT_LATEST falls back to the one
 *    before, and the pool is otherwise untouched;
 *  - a pool of format 1.8 (no log slots) never logs and still works;
 *  - a process killed at every named point of a logged checkpoint, and a
 *    restart killed in its fold: the pool verifies and restarts;
 *  - ENOSPC in the middle of a log (a small ext4): the checkpoint fails
 *    clearly, nothing listed is lost, and the heap goes on;
 *  - a heap that grows past what its interval tracker covers: every byte
 *    written in the new part is in the next checkpoints.
 * Where the kernel gives no write-protect tracking, the heap re-bases as
 * before and these tests say so and skip.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_cow_util.h"
#include "layout.h"
#include "pagelog.h"

static const struct ckpt_config log_cfg = TC_CONFIG(32 * MiB, 2);

/* entry_of -- checkpoint id's catalog entry in path (asserts it exists) */
static struct cat_entry
entry_of(const char *path, ckpt_id id, uint32_t *seg)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_CKPT && c.e[i].ckpt_id == id) {
			struct cat_entry e = c.e[i];
			if (seg)
				*seg = i;
			tu_catalog_free(&c);
			return e;
		}
	fail_msg("checkpoint %" PRIu64 " is not in %s", id, path);
	abort();
}

/* logged_count -- checkpoints of path whose entry is logged */
static unsigned
logged_count(const char *path)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	unsigned n = 0;
	for (uint32_t i = 0; i < c.n; i++)
		n += c.e[i].state == CAT_CKPT && (c.e[i].flags & CAT_F_LOGGED);
	tu_catalog_free(&c);
	return n;
}

/*
 * until_logged -- a new cow pool at path, checkpointed (generations 1, 2,
 * ...) until one writes a log; *gen: its generation, *id: its id. NULL
 * (the test skips) where the heap cannot stop re-basing.
 */
static ckpt_pool *
until_logged(const char *path, struct ts_state **s, int64_t *gen, ckpt_id *id)
{
	ckpt_pool *p = tc_create(path, &log_cfg, TC_NODES, s, 1);
	for (*gen = 1; *gen <= 6; ++*gen) {
		if (*gen > 1)
			assert_int_equal(ts_modify(p, *s, (uint64_t)*gen, 13), 0);
		assert_int_equal(ckpt_checkpoint(p, NULL, id), 0);
		if (p->eng->last_logged)
			return p;
	}
	printf("SKIPPED: the heap never logged (%s)\n", p->eng->logging ? "logging" :
			dirty_why(&p->eng->tracker));
	assert_int_equal(ckpt_close(p), 0);
	return NULL;
}

/*
 * logged_closed -- until_logged with the fold held back (CKPT_TEST_NO_FOLD),
 * then closed: the newest checkpoint of path (*id, generation *gen) stays
 * logged. Skips the test where the heap never logs.
 */
static void
logged_closed(const char *path, int64_t *gen, ckpt_id *id)
{
	setenv("CKPT_TEST_NO_FOLD", "1", 1);
	struct ts_state *s;
	ckpt_pool *p = until_logged(path, &s, gen, id);
	if (p)
		assert_int_equal(ckpt_close(p), 0);
	unsetenv("CKPT_TEST_NO_FOLD");
	if (!p)
		skip();
}

/* inspect_verify_fails -- ckpt-inspect verify of path exits nonzero, saying what */
static void
inspect_verify_fails(const char *path, const char *what)
{
	char tool[1024], out[8192];
	snprintf(tool, sizeof(tool), "%s/tools/ckpt-inspect", getenv("CKPT_TEST_BINDIR"));
	char *const argv[] = { tool, (char *)"verify", (char *)path, (char *)"--no-progress", NULL };
	int rc = tu_run_capture(out, sizeof(out), argv);
	if (rc == 0 || !strstr(out, what))
		fail_msg("verify exited %d, want an error naming \"%s\":\n%s", rc, what, out);
}

/* logs while recycling, folds in the background, leaves nothing logged at close */
static void
test_log_and_fold(void **state)
{
	(void)state;
	const char *path = tu_path("log.pool");
	struct ts_state *s;
	int64_t gen;
	ckpt_id id;
	ckpt_pool *p = until_logged(path, &s, &gen, &id);
	if (!p)
		skip();
	/* published logged; the heap still maps the image it mapped before */
	assert_true(entry_of(path, id, NULL).flags & CAT_F_LOGGED);
	assert_true(p->eng->last_written < heap_high_water(p->heap));
	uint32_t base = p->eng->base_seg;
	/* the next checkpoint clears it once its fold is done */
	assert_int_equal(ts_modify(p, s, (uint64_t)++gen, 13), 0);
	ckpt_id next;
	assert_int_equal(ckpt_checkpoint(p, NULL, &next), 0);
	assert_false(entry_of(path, id, NULL).flags & CAT_F_LOGGED);
	assert_int_equal(p->eng->base_seg, base);
	/* and the one after recycles the folded image, logging again */
	assert_int_equal(ts_modify(p, s, (uint64_t)++gen, 13), 0);
	assert_int_equal(ckpt_checkpoint(p, NULL, &next), 0);
	assert_int_equal(p->eng->last_recycled, 1);
	assert_int_equal(p->eng->last_logged, 1);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(logged_count(path), 0);
	assert_int_equal(tc_gen(path, next), gen);
	tu_inspect_verify(path);
}

/* a logged checkpoint read through its log: verify, restart of it, of the newest */
static void
test_log_read_through(void **state)
{
	(void)state;
	const char *path = tu_path("through.pool");
	int64_t gen;
	ckpt_id id;
	logged_closed(path, &gen, &id);
	uint32_t seg;
	struct cat_entry e = entry_of(path, id, &seg);
	assert_true(e.flags & CAT_F_LOGGED);
	/* the segment's own bytes are not the image; with the log they are */
	tu_inspect_verify(path);
	assert_int_equal(tc_gen(path, 0), gen);
	/* the restart folded it first */
	assert_false(entry_of(path, id, NULL).flags & CAT_F_LOGGED);
	assert_int_equal(tc_gen(path, id), gen);
	tu_inspect_verify(path);
}

/* killed with its last checkpoint logged: the next process restarts from it */
static void
test_log_killed(void **state)
{
	(void)state;
	const char *path = tu_path("killed.pool");
	int res[2];
	assert_int_equal(pipe(res), 0);
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(res[0]);
		setenv("CKPT_TEST_NO_FOLD", "1", 1);
		struct ts_state *s;
		int64_t gen;
		ckpt_id id;
		ckpt_pool *p = until_logged(path, &s, &gen, &id);
		if (write(res[1], &gen, sizeof(gen)) != sizeof(gen))
			_exit(3);
		if (!p)
			_exit(0);
		/* written after it, never checkpointed */
		ts_modify(p, s, (uint64_t)gen + 1, 5);
		raise(SIGKILL);
		_exit(4);
	}
	close(res[1]);
	int64_t gen = 0;
	assert_int_equal(read(res[0], &gen, sizeof(gen)), sizeof(gen));
	close(res[0]);
	int rc = tu_wait_exit(pid);
	if (rc == 0)
		skip();         /* it never logged: said why */
	assert_int_equal(rc, 128 + SIGKILL);
	assert_int_equal(logged_count(path), 1);
	tu_inspect_verify(path);
	assert_int_equal(tc_gen(path, 0), gen);
	assert_int_equal(logged_count(path), 0);
}

/* damage -- flip a byte of checkpoint id's log table in path */
static void
damage_log(const char *path, ckpt_id id)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	uint32_t seg;
	entry_of(path, id, &seg);
	uint64_t at = layout_log_off(&c.hdr, seg) + PLOG_PAGE + 8;
	tu_catalog_free(&c);
	tu_flip_byte(path, at, 0x40);
}

/* a damaged log: verify says so; its restart fails clearly; LATEST falls back */
static void
test_log_damaged(void **state)
{
	(void)state;
	const char *path = tu_path("damaged.pool");
	int64_t gen;
	ckpt_id id;
	logged_closed(path, &gen, &id);
	damage_log(path, id);
	inspect_verify_fails(path, "page log");
	char out[512];
	assert_int_equal(tc_restart_gen(path, id, TC_NODES, out, sizeof(out)), -1);
	if (!strstr(out, "page log") && !strstr(out, "checksum"))
		fail_msg("the restart of a damaged logged checkpoint said: %s", out);
	/* the newest that verifies is the one before it */
	assert_int_equal(tc_gen(path, 0), gen - 1);
	/* still logged, still damaged: nothing wrote over it */
	assert_true(entry_of(path, id, NULL).flags & CAT_F_LOGGED);
}

/* format 1.8: no log slots; the heap re-bases as it always did */
static void
test_log_old_format(void **state)
{
	(void)state;
	const char *path = tu_path("old18.pool");
	unlink(path);
	setenv("CKPT_TEST_FORMAT_1_8", "1", 1);
	ckpt_pool *p = ckpt_create(path, &log_cfg);
	unsetenv("CKPT_TEST_FORMAT_1_8");
	assert_non_null(p);
	assert_int_equal(p->hdr.minor, 8);
	assert_false(p->hdr.flags & POOL_F_LOG_AREA);
	struct ts_state *s = ts_build(p, TC_NODES, 1);
	assert_non_null(s);
	ckpt_id id = 0;
	for (int64_t g = 1; g <= 6; g++) {
		if (g > 1)
			assert_int_equal(ts_modify(p, s, (uint64_t)g, 13), 0);
		assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);
		assert_int_equal(p->eng->last_logged, 0);
		assert_int_equal(p->eng->logging, 0);
	}
	assert_int_equal(p->eng->last_recycled, 1);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(tc_gen(path, id), 6);
	tu_inspect_verify(path);
}

/*
 * a logging heap that grows past the range its interval tracker covers
 * (a little more than the heap it started with): the tracker is grown,
 * what was written in the new part is in the next checkpoints, and a
 * restart of each finds every byte
 */
static void
test_log_growth(void **state)
{
	(void)state;
	const char *path = tu_path("growth.pool");
	struct ts_state *s;
	int64_t gen;
	ckpt_id id;
	ckpt_pool *p = until_logged(path, &s, &gen, &id);
	if (!p)
		skip();
	uint64_t covered = p->eng->interval.len;
	/* a block that ends past what the tracker covers */
	size_t len = (size_t)(covered - heap_high_water(p->heap)) + (4u << 20);
	unsigned char *big = ckpt_alloc(p, len);
	assert_non_null(big);
	assert_true((uint64_t)((uintptr_t)big - p->hdr.base) + len > covered);
	memset(big, 0x77, len);
	uint64_t off = (uint64_t)((uintptr_t)big - p->hdr.base);
	ckpt_id a, b;
	assert_int_equal(ckpt_checkpoint(p, NULL, &a), 0);
	assert_true(p->eng->logging);
	assert_true(p->eng->interval.len > covered);
	/* a few pages of it, and of the rest, written again */
	for (size_t i = 0; i < len; i += len / 7)
		big[i] = 0x78;
	assert_int_equal(ts_modify(p, s, (uint64_t)gen + 1, 13), 0);
	assert_int_equal(ckpt_checkpoint(p, NULL, &b), 0);
	assert_int_equal(ts_modify(p, s, (uint64_t)gen + 2, 13), 0);
	ckpt_id c;
	assert_int_equal(ckpt_checkpoint(p, NULL, &c), 0);
	assert_int_equal(ckpt_close(p), 0);
	char out[512];
	assert_int_equal(tc_gen(path, b), gen + 1);
	assert_int_equal(tc_gen(path, c), gen + 2);
	/* every byte of the block, in both */
	char offs[32], lens[32], ids[32];
	snprintf(offs, sizeof(offs), "%" PRIu64, off);
	snprintf(lens, sizeof(lens), "%zu", len);
	for (int k = 0; k < 2; k++) {
		snprintf(ids, sizeof(ids), "%" PRIu64, k ? c : b);
		int st = tu_run_helper(out, sizeof(out), NULL, "growcheck", path, ids, offs, lens,
				NULL);
		if (st != 0)
			fail_msg("checkpoint %s: %s", ids, out);
	}
	tu_inspect_verify(path);
}

/*
 * ENOSPC in the middle of a log, on a small ext4: a log bigger than any
 * before in its slot needs new blocks and the filesystem has none. The
 * checkpoint fails with ENOSPC and says so; every listed checkpoint still
 * verifies and restarts; with space again, the heap checkpoints on.
 */
static void
test_log_enospc(void **state)
{
	(void)state;
	const char *dir = tu_path("small-ext4");
	if (tu_mount_ext4(dir, 128) < 0) {
		printf("SKIPPED: cannot make and loop-mount a small ext4 here (needs root, "
		       "mkfs.ext4, loop devices and mount namespaces)\n");
		skip();
	}
	char path[600], filler[600];
	snprintf(path, sizeof(path), "%s/pool", dir);
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	struct ts_state *s;
	int64_t gen;
	ckpt_id id;
	ckpt_pool *p = until_logged(path, &s, &gen, &id);
	if (!p) {
		tu_umount(dir);
		skip();
	}
	/* both images' slots used once, by small logs */
	assert_int_equal(ts_modify(p, s, (uint64_t)++gen, 13), 0);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(p->eng->last_logged, 1);
	/* 1.2 MiB of new pages: a log that fits the slot (2 MiB), not its blocks */
	size_t big_len = 1200u << 10;
	unsigned char *big = ckpt_alloc(p, big_len);
	assert_non_null(big);
	memset(big, 0x5a, big_len);
	assert_int_equal(ts_modify(p, s, (uint64_t)gen + 1, 13), 0);
	tu_fill_fs(filler, 256u << 10);
	checkpoint_enospc(p, "a log on a full filesystem");
	assert_int_equal(p->eng->last_recycled, 1);
	tu_inspect_verify(path);
	assert_int_equal(tc_gen(path, 0), gen);
	/* space again: the heap goes on from where it is */
	assert_int_equal(unlink(filler), 0);
	ckpt_id good;
	assert_int_equal(ckpt_checkpoint(p, NULL, &good), 0);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(tc_gen(path, good), gen + 1);
	tu_inspect_verify(path);
	tu_umount(dir);
}

/*
 * killed at each point of a logged checkpoint (a helper process: a new
 * pool logged once, then one more checkpoint killed at the point): the
 * pool verifies, and a restart finds the checkpoint before, or the new one
 * once published; and a restart killed in the middle of its fold leaves a
 * pool the next restart folds
 */
static void
test_log_crash_points(void **state)
{
	(void)state;
	static const char *const points[] = {
		"checkpoint:before-copy", "checkpoint:mid-copy", "checkpoint:after-log",
		"checkpoint:before-persist", "checkpoint:after-persist",
		"checkpoint:before-publish", "checkpoint:after-publish",
	};
	const char *path = tu_path("points.pool");
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		char out[512];
		int st = tu_run_helper(out, sizeof(out), NULL, "logkill", path, points[i], NULL);
		if (st == 0)
			skip();         /* it never logged (the helper said why) */
		if (st != 128 + SIGKILL)
			fail_msg("%s: the helper exited %d, not killed at the point: %s", points[i],
				st, out);
		int64_t gen = strtoll(out, NULL, 10);   /* the last one published */
		tu_inspect_verify(path);
		int after = strcmp(points[i], "checkpoint:after-publish") == 0;
		if (tc_restart_gen(path, 0, TC_NODES, out, sizeof(out)) != gen + after)
			fail_msg("%s: restart found %s, want generation %" PRId64, points[i], out,
				gen + after);
		tu_inspect_verify(path);
	}
	/* the restart's own fold, killed before its fdatasync */
	char out[512];
	const char *const nofold[] = { "CKPT_TEST_NO_FOLD=1", NULL };
	assert_int_equal(tu_run_helper(out, sizeof(out), nofold, "logkill", path, "none", NULL),
			0);
	int64_t gen = strtoll(out, NULL, 10);
	assert_true(logged_count(path) >= 1);
	const char *const at[] = { "CKPT_TEST_CRASH_AT=fold:before-sync", NULL };
	assert_int_equal(tc_run_restart(out, sizeof(out), at, path, 0, TC_NODES), 128 + SIGKILL);
	tu_inspect_verify(path);
	assert_int_equal(tc_gen(path, 0), gen);
	assert_int_equal(logged_count(path), 0);
}

/* helper_growcheck -- "growcheck POOL ID OFF LEN": test_log_growth's block in checkpoint ID */
static int
helper_growcheck(char **arg)
{
	/* test_log_growth's block: 0x77, and 0x78 every len / 7 bytes */
	ckpt_pool *p = tc_helper_open(arg[0], strtoull(arg[1], NULL, 10), &log_cfg);
	if (!p)
		return 1;
	size_t len = strtoull(arg[3], NULL, 10);
	const unsigned char *big = (const unsigned char *)(uintptr_t)
		(p->hdr.base + strtoull(arg[2], NULL, 10));
	for (size_t i = 0; i < len; i++)
		if (big[i] != (i % (len / 7) == 0 ? 0x78 : 0x77)) {
			printf("byte %zu of the block is 0x%02x\n", i, big[i]);
			return 1;
		}
	printf("ok\n");
	return ckpt_close(p) == 0 ? 0 : 1;
}

/*
 * helper_logkill -- "logkill POOL POINT": a new pool logged once, then a
 * checkpoint killed at POINT ("none": not killed), printing the last
 * generation published first
 */
static int
helper_logkill(char **arg)
{
	struct ts_state *s;
	int64_t gen;
	ckpt_id id;
	ckpt_pool *p = until_logged(arg[0], &s, &gen, &id);
	if (!p)
		return 0;
	if (ts_modify(p, s, (uint64_t)gen + 1, 13) < 0)
		return 3;
	if (strcmp(arg[1], "none") == 0) {
		if (ckpt_checkpoint(p, NULL, NULL) < 0 || !p->eng->last_logged)
			return 5;
		printf("%" PRId64 "\n", gen + 1);
		fflush(stdout);
		_exit(0);       /* as a kill would leave it: no close */
	}
	printf("%" PRId64 "\n", gen);
	fflush(stdout);
	setenv("CKPT_TEST_CRASH_AT", arg[1], 1);
	ckpt_checkpoint(p, NULL, NULL);
	return 4;
}

/* helper_restart -- "restart POOL ID N" (test_cow_util.h) */
static int
helper_restart(char **arg)
{
	return tc_helper_restart(arg, &log_cfg, 0);
}

int
main(int argc, char **argv)
{
	static const struct tu_helper helpers[] = {
		{ "growcheck", 4, helper_growcheck }, { "logkill", 2, helper_logkill },
		{ "restart", 3, helper_restart }, { NULL },
	};
	tu_helper_main(argc, argv, helpers);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_and_fold),
		cmocka_unit_test(test_log_read_through),
		cmocka_unit_test(test_log_killed),
		cmocka_unit_test(test_log_damaged),
		cmocka_unit_test(test_log_old_format),
		cmocka_unit_test(test_log_crash_points),
		cmocka_unit_test(test_log_enospc),
		cmocka_unit_test(test_log_growth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
