/*
 * test_checkpoint_restart.c -- restart from a checkpoint in a new process
 * (issue 4): a child builds ~100,000 linked nodes, checkpoints and exits; a
 * freshly exec'd process opens the checkpoint by id and as CKPT_LATEST and
 * walks every pointer; the checkpoint's segment stays byte-identical. And a
 * checkpoint whose commit reached the file while its data did not is
 * refused by its checksum, with CKPT_LATEST falling back to the newest
 * valid one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/falloc.h>

#include "test_checkpoint_util.h"

#define NODES 100000

/*
 * helper "restart PATH ID N [advance]": ckpt_open(PATH, ID) (0: latest),
 * walk and check N nodes, print "ok gen G"; with "advance", move to the
 * next generation, checkpoint, and print " ckpt ID". Errors: "err ..." and
 * a nonzero exit.
 */
static int
helper_restart(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	ckpt_id id = strtoull(argv[1], NULL, 0);
	uint64_t n = strtoull(argv[2], NULL, 0);
	ckpt_pool *p = ckpt_open(argv[0], id, NULL);
	if (!p) {
		printf("err open %d %s\n", errno, ckpt_errormsg());
		return 1;
	}
	char err[256];
	int64_t gen = ts_check(ckpt_root(p), n, err, sizeof(err));
	if (gen < 0) {
		printf("err check %s\n", err);
		return 1;
	}
	printf("ok gen %lld", (long long)gen);
	if (argc > 3 && strcmp(argv[3], "advance") == 0) {
		ckpt_id nid = 0;
		if (ts_modify(p, ckpt_root(p), (uint64_t)gen + 1, 7) < 0 ||
		    ckpt_checkpoint(p, "advanced", &nid) < 0) {
			printf(" err advance %s\n", ckpt_errormsg());
			return 1;
		}
		printf(" ckpt %llu", (unsigned long long)nid);
	}
	printf("\n");
	return ckpt_close(p) == 0 ? 0 : 1;
}

/* run_restart -- run the restart helper, assert it succeeded, return its output */
static const char *
run_restart(const char *path, ckpt_id id, uint64_t n, int advance)
{
	static char out[512];
	char ids[32], ns[32];
	snprintf(ids, sizeof(ids), "%llu", (unsigned long long)id);
	snprintf(ns, sizeof(ns), "%llu", (unsigned long long)n);
	int rc = tu_run_helper(out, sizeof(out), NULL, "restart", path, ids, ns,
			advance ? "advance" : NULL, NULL);
	if (rc != 0)
		fail_msg("restart helper (id %s) exited %d: %s", ids, rc, out);
	return out;
}

static void
test_restart_100k_nodes(void **state)
{
	(void)state;
	const char *path = tu_path("restart.pool");
	uint64_t n = test_scale_small() ? 20000 : NODES;

	/* a child builds, checkpoints and exits */
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ckpt_config cfg = { .heap_size = 32 * MiB, .max_segments = 8 };
		ckpt_pool *p = ckpt_create(path, &cfg);
		if (!p)
			_exit(10);
		if (!ts_build(p, n, 1))
			_exit(11);
		if (ckpt_checkpoint(p, "built", NULL) < 0)
			_exit(12);
		_exit(ckpt_close(p) == 0 ? 0 : 13);
	}
	assert_int_equal(tu_wait_exit(pid), 0);

	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_CKPT), 1);
	int ci = newest_ckpt(&c);
	ckpt_id id1 = c.e[ci].ckpt_id;
	assert_true(c.e[ci].used >= n * sizeof(struct ts_node));
	assert_string_equal(c.e[ci].label, "built");
	uint64_t seg_size = c.hdr.seg_size;
	void *before = seg_bytes(path, &c.hdr, (uint32_t)ci, seg_size);

	/* a new process restarts from it by id and walks every node */
	assert_string_equal(run_restart(path, id1, n, 0), "ok gen 1\n");
	/* ... and as CKPT_LATEST, then moves on and checkpoints again */
	char want[64];
	snprintf(want, sizeof(want), "ok gen 1 ckpt %llu\n", (unsigned long long)id1 + 1);
	assert_string_equal(run_restart(path, CKPT_LATEST, n, 1), want);
	/* the newest now holds generation 2; the first is unchanged */
	assert_string_equal(run_restart(path, CKPT_LATEST, n, 0), "ok gen 2\n");
	assert_string_equal(run_restart(path, id1, n, 0), "ok gen 1\n");

	tu_catalog_free(&c);
	tu_catalog_read(path, &c);
	assert_int_equal(c.e[ci].state, CAT_CKPT);
	assert_int_equal(c.e[ci].ckpt_id, id1);
	void *after = seg_bytes(path, &c.hdr, (uint32_t)ci, seg_size);
	if (memcmp(before, after, seg_size) != 0)
		fail_msg("checkpoint %llu changed after three restarts from it",
			(unsigned long long)id1);
	/* restarted processes closed: only the two checkpoints remain */
	assert_int_equal(tu_catalog_count(&c, CAT_CKPT), 2);
	assert_int_equal(tu_catalog_count(&c, CAT_LIVE), 0);
	assert_int_equal(tu_catalog_count(&c, CAT_BUSY), 0);
	free(before);
	free(after);
	tu_catalog_free(&c);
}

/* two_checkpoints -- pool at path with checkpoints of generations 1 and 2 */
static void
two_checkpoints(const char *path, uint64_t n, ckpt_id *id1, ckpt_id *id2)
{
	struct ckpt_config cfg = { .heap_size = 8 * MiB, .max_segments = 4 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p)
		fail_msg("create: %s", ckpt_errormsg());
	struct ts_state *s = ts_build(p, n, 1);
	assert_non_null(s);
	assert_int_equal(ckpt_checkpoint(p, "one", id1), 0);
	assert_int_equal(ts_modify(p, s, 2, 5), 0);
	assert_int_equal(ckpt_checkpoint(p, "two", id2), 0);
	assert_int_equal(ckpt_close(p), 0);
}

/* damage -- change bytes inside checkpoint id's data, as a lost write would:
 * punch: the blocks never reached the file (zeros); else flip some bytes */
static void
damage(const char *path, ckpt_id id, int punch)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int i = ckpt_index(&c, id);
	assert_true(i >= 0);
	uint64_t used = c.e[i].used;
	uint64_t off = layout_seg_off(&c.hdr, (uint32_t)i);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	if (punch) {
		/* the second half of the bytes it holds (the heap's high-water
		 * prefix may end in zeros, whose loss would change nothing) */
		unsigned char *b = seg_bytes(path, &c.hdr, (uint32_t)i, used);
		uint64_t last = used;
		while (last > 0 && b[last - 1] == 0)
			last--;
		free(b);
		assert_true(last > 8192);
		uint64_t from = (last / 2) & ~(uint64_t)4095;
		uint64_t to = (last + 4095) & ~(uint64_t)4095;
		assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				(off_t)(off + from), (off_t)(to - from)), 0);
	} else {
		unsigned char b[16];
		uint64_t at = used / 2;
		assert_int_equal(pread(fd, b, sizeof(b), (off_t)(off + at)), sizeof(b));
		for (size_t k = 0; k < sizeof(b); k++)
			b[k] ^= 0x5a;
		assert_int_equal(pwrite(fd, b, sizeof(b), (off_t)(off + at)), sizeof(b));
	}
	assert_int_equal(fsync(fd), 0);
	close(fd);
	tu_catalog_free(&c);
}

static void
check_damaged(int punch)
{
	const char *path = tu_path(punch ? "holes.pool" : "flipped.pool");
	const char *copy = tu_path("damaged.copy");
	uint64_t n = 2000;
	ckpt_id id1, id2;
	two_checkpoints(path, n, &id1, &id2);
	damage(path, id2, punch);
	tu_copy_file(path, copy);

	/* asked for by id: refused, naming the checksum; nothing changed */
	errno = 0;
	ckpt_pool *p = ckpt_open(path, id2, NULL);
	int e = errno;
	assert_null(p);
	assert_int_equal(e, EINVAL);
	const char *m = ckpt_errormsg();
	char idtext[32];
	snprintf(idtext, sizeof(idtext), "checkpoint %llu", (unsigned long long)id2);
	if (!strstr(m, "checksum") || !strstr(m, idtext))
		fail_msg("message \"%s\" should name the checksum and %s", m, idtext);
	assert_true(tu_files_equal(path, copy));

	/* latest: falls back to the newest valid one, generation 1 */
	p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p)
		fail_msg("open latest: %s", ckpt_errormsg());
	char err[256];
	int64_t gen = ts_check(ckpt_root(p), n, err, sizeof(err));
	if (gen != 1)
		fail_msg("latest after damage: gen %lld: %s", (long long)gen, err);
	assert_int_equal(own_live_entry(path).ckpt_id, id1);
	assert_int_equal(ckpt_restarted_from(p), id1);  /* the caller can tell */
	assert_int_equal(ckpt_close(p), 0);

	/* both damaged: latest is refused too, with the reason */
	damage(path, id1, punch);
	errno = 0;
	p = ckpt_open(path, CKPT_LATEST, NULL);
	e = errno;
	assert_null(p);
	assert_int_equal(e, EINVAL);
	m = ckpt_errormsg();
	if (!strstr(m, "no valid checkpoint") || !strstr(m, "checksum"))
		fail_msg("message \"%s\" should say no checkpoint is valid, and why", m);
}

static void
test_damaged_checkpoint_flipped(void **state)
{
	(void)state;
	check_damaged(0);
}

static void
test_damaged_checkpoint_lost_blocks(void **state)
{
	(void)state;
	check_damaged(1);
}

int
main(int argc, char **argv)
{
	/* fork mode copy: these tests are about the copying checkpoint and
	 * restart, damaged copies refused; auto settles to cow on a new pool
	 * (test_cow*.c), so ask for copy explicitly */
	setenv("CKPT_FORK_MODE", "copy", 1);
	if (argc >= 3 && strcmp(argv[1], "--helper") == 0 && strcmp(argv[2], "restart") == 0)
		return helper_restart(argc - 3, argv + 3);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restart_100k_nodes),
		cmocka_unit_test(test_damaged_checkpoint_flipped),
		cmocka_unit_test(test_damaged_checkpoint_lost_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
