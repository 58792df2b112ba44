/*
 * test_pool_size.c -- the pool file's apparent size follows the segments in
 * use (issue 16, item 7; format 1.3, libckpt/filesize.c).
 *
 * A pool used to be created at its full size (a default pool showed 68 GB
 * in `ls -l`). Here, with real files and processes, the size is checked
 * against what the catalog needs (the end of the highest segment that is
 * not FREE) after create, checkpoints, retention, close, a dead heap and
 * ckpt_reclaim; a process killed between the extension and the commit, or
 * between the commit and the cut (crash points catalog:after-grow,
 * catalog:before-trim), leaves a pool that opens and verifies, and the
 * next commit brings the size back; a file cut short is refused by
 * ckpt_open and reported by ckpt-inspect verify, naming the truncation; a
 * pool of format 1.2 (full size) opens and keeps its size. Those four run
 * on pools of format 1.7 (CKPT_TEST_FORMAT_1_7), whose size follows the
 * segments exactly and is synced at every growth.
 *
 * Format 1.8 (the durable size in the catalog, headroom in the file):
 * test_durable_size checks the record after each commit (stamped with the
 * catalog's generation, never more than the file), that a commit within
 * the recorded size does not sync (a process armed at catalog:after-grow
 * is not killed) while one past it does (killed there), and that a commit of
 * an older libckpt, which copies the record without maintaining it,
 * makes the next commit sync again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "libckpt.h"
#include "layout.h"
#include "testutil.h"

#define MiB ((size_t)1 << 20)

static const struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 8,
	.keep_checkpoints = 2 };

/* size_of -- the file's apparent size */
static uint64_t
size_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* need_of -- what the current catalog needs: the end of its highest segment in use */
static uint64_t
need_of(const char *path, struct pool_hdr *hdr)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	uint64_t need = c.hdr.data_off;
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state != CAT_FREE)
			need = layout_seg_off(&c.hdr, i) + c.hdr.seg_size;
	if (hdr)
		*hdr = c.hdr;
	tu_catalog_free(&c);
	return need;
}

/* expect_size -- the file is exactly what its catalog needs, and segs segments long */
#define expect_size(path, segs) expect_size_((path), (segs), __LINE__)
static void
expect_size_(const char *path, unsigned segs, int line)
{
	struct pool_hdr h;
	uint64_t need = need_of(path, &h), size = size_of(path);
	if (size != need || size != h.data_off + segs * h.seg_size)
		fail_msg("line %d: file is %llu bytes; the catalog needs %llu, expected %u "
			"segments (%llu)", line, (unsigned long long)size,
			(unsigned long long)need, segs,
			(unsigned long long)(h.data_off + segs * h.seg_size));
}

/* with_checkpoint -- a new pool at path whose checkpoint 1 has a root; still open */
static ckpt_pool *
with_checkpoint(const char *path)
{
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	assert_int_equal(ckpt_set_root(p, ckpt_alloc(p, 64)), 0);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	return p;
}

/* inspect_verify -- ckpt-inspect verify's exit status and output */
static int
inspect_verify(const char *path, char *out, size_t len)
{
	const char *bindir = getenv("CKPT_TEST_BINDIR");
	if (!bindir)
		fail_msg("CKPT_TEST_BINDIR is not set: run the test with ctest");
	char tool[1024];
	snprintf(tool, sizeof(tool), "%s/tools/ckpt-inspect", bindir);
	char *const argv[] = { tool, (char *)"verify", (char *)path, (char *)"--no-progress",
		NULL };
	return tu_run_capture(out, len, argv);
}

/* test_size_follows_use -- create, checkpoints, retention, close, reclaim */
static void
test_size_follows_use(void **state)
{
	(void)state;
	setenv("CKPT_TEST_FORMAT_1_7", "1", 1);
	const char *path = tu_path("follows.pool");
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	expect_size(path, 1);                    /* segment 0: the live heap */
	struct pool_hdr h;
	need_of(path, &h);
	assert_int_equal(h.minor, 7);
	struct tu_catalog tc;                    /* 1.7: no durable size recorded */
	tu_catalog_read(path, &tc);
	assert_int_equal(tc.h->durable_size, 0);
	assert_int_equal(tc.h->durable_gen, 0);
	tu_catalog_free(&tc);
	assert_true(size_of(path) < h.file_size);
	assert_non_null(ckpt_alloc(p, 100000));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
		assert_int_equal(size_of(path), need_of(path, NULL));
	}
	/* keep 2: checkpoints in segments 1 and 2 became 2 and 3, or 1 and 3 */
	assert_int_equal(size_of(path), h.data_off + 4 * h.seg_size);

	/* a fork child's heap, left dead above the rest, then reclaimed */
	pid_t pid = tu_fork();
	if (pid == 0)
		_exit(ckpt_alloc(p, 1000) ? 0 : 1);   /* no close: a dead heap */
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_int_equal(size_of(path), need_of(path, NULL));
	unsigned n = 0;
	assert_int_equal(ckpt_reclaim(p, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(size_of(path), need_of(path, NULL));
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(size_of(path), need_of(path, NULL));
	tu_inspect_verify(path);

	/* a pool whose creator closed before any checkpoint: metadata alone */
	const char *empty = tu_path("empty.pool");
	p = ckpt_create(empty, &cfg);
	assert_non_null(p);
	assert_int_equal(ckpt_close(p), 0);
	expect_size(empty, 0);
	p = ckpt_open(empty, CKPT_LATEST, NULL);    /* an empty heap again */
	assert_non_null(p);
	expect_size(empty, 1);
	assert_int_equal(ckpt_close(p), 0);
	expect_size(empty, 0);
	tu_inspect_verify(empty);
}

/*
 * run_killed -- in a fork child (a heap of its own, in a segment above the
 * rest): arm point, then checkpoint (the file must grow) or close (it may
 * shrink); the child must be killed there
 */
static void
run_killed(ckpt_pool *q, const char *point, int close_it)
{
	pid_t pid = tu_fork();
	if (pid == 0) {
		setenv("CKPT_TEST_CRASH_AT", point, 1);
		if (close_it)
			ckpt_close(q);
		else
			ckpt_checkpoint(q, NULL, NULL);
		_exit(3);
	}
	int rc = tu_wait_exit(pid);
	if (rc != 128 + SIGKILL)
		fail_msg("%s: the child was not killed there (status %d)", point, rc);
}

/* test_killed_between -- kill -9 between a size change and its commit */
static void
test_killed_between(void **state)
{
	(void)state;
	setenv("CKPT_TEST_FORMAT_1_7", "1", 1);
	const char *path = tu_path("killed.pool");
	ckpt_pool *p = with_checkpoint(path);
	expect_size(path, 2);

	/* extended for a checkpoint that was never published: longer than
	 * needed, which opens, verifies, and is cut back by the next commit */
	run_killed(p, "catalog:after-grow", 0);
	struct pool_hdr h;
	uint64_t need = need_of(path, &h);
	assert_true(size_of(path) > need);
	tu_inspect_verify(path);
	assert_int_equal(ckpt_reclaim(p, NULL), 0);
	assert_int_equal(size_of(path), need_of(path, NULL));

	/* a heap freed by its close, the cut not made */
	run_killed(p, "catalog:before-trim", 1);
	assert_true(size_of(path) > need_of(path, NULL));
	tu_inspect_verify(path);
	char out[1024];
	int rc = tu_run_helper(out, sizeof(out), NULL, "open", path, NULL);
	if (rc != 0)
		fail_msg("the pool does not open in a new process (status %d): %s", rc, out);
	assert_int_equal(size_of(path), need_of(path, NULL));
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

/* test_truncated_refused -- a file cut inside a segment in use */
static void
test_truncated_refused(void **state)
{
	(void)state;
	setenv("CKPT_TEST_FORMAT_1_7", "1", 1);
	const char *path = tu_path("cut.pool");
	ckpt_pool *p = with_checkpoint(path);
	assert_int_equal(ckpt_close(p), 0);
	uint64_t size = size_of(path);
	assert_int_equal(truncate(path, (off_t)(size - 4096)), 0);
	errno = 0;
	assert_null(ckpt_open(path, CKPT_LATEST, NULL));
	assert_int_equal(errno, EINVAL);
	if (!strstr(ckpt_errormsg(), "truncated") || !strstr(ckpt_errormsg(), "checkpoint 1"))
		fail_msg("message should name the checkpoint and the truncation: %s",
				ckpt_errormsg());
	char out[4096];
	int rc = inspect_verify(path, out, sizeof(out));
	if (rc != 1 || !strstr(out, "truncated") || !strstr(out, "past the end of the file"))
		fail_msg("verify of a truncated pool exited %d:\n%s", rc, out);
}

/* test_old_pool_keeps_size -- a format 1.2 pool is full size and stays so */
static void
test_old_pool_keeps_size(void **state)
{
	(void)state;
	setenv("CKPT_TEST_FORMAT_1_7", "1", 1);
	const char *path = tu_path("old.pool");
	ckpt_pool *p = with_checkpoint(path);
	assert_int_equal(ckpt_close(p), 0);
	/* as a libckpt of format 1.2 wrote it: no flag, the full size */
	struct pool_hdr h;
	need_of(path, &h);
	h.minor = 2;
	h.flags &= ~POOL_F_SIZE_FOLLOWS;
	layout_seal(&h);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	assert_int_equal(ftruncate(fd, (off_t)h.file_size), 0);
	close(fd);
	p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	assert_non_null(ckpt_root(p));
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(size_of(path), h.file_size);
	tu_inspect_verify(path);
}

static const struct ckpt_config cfg16 = { .heap_size = 4 * MiB, .max_segments = 16,
	.keep_checkpoints = 16 };

/*
 * check_record -- the catalog of path (format 1.8) records a durable size
 * stamped with its generation, covering every segment it names, and no
 * larger than the file; returns it
 */
#define check_record(path) check_record_((path), __LINE__)
static uint64_t
check_record_(const char *path, int line)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	uint64_t rec = c.h->durable_size, gen = c.h->generation, stamp = c.h->durable_gen;
	tu_catalog_free(&c);
	uint64_t need = need_of(path, NULL), size = size_of(path);
	if (stamp != gen || rec < need || rec > size)
		fail_msg("line %d: durable size %llu (stamp %llu, generation %llu), the "
			"catalog needs %llu, the file is %llu", line, (unsigned long long)rec,
			(unsigned long long)stamp, (unsigned long long)gen,
			(unsigned long long)need, (unsigned long long)size);
	return rec;
}

/* expect_durable -- the record (check_record) and the file are both segs segments long */
#define expect_durable(path, segs) expect_durable_((path), (segs), __LINE__)
static void
expect_durable_(const char *path, unsigned segs, int line)
{
	struct pool_hdr h;
	need_of(path, &h);
	uint64_t want = h.data_off + segs * h.seg_size;
	uint64_t rec = check_record_(path, line), size = size_of(path);
	if (rec != want || size != want)
		fail_msg("line %d: durable size %llu, file %llu, want both %llu (%u segments)",
			line, (unsigned long long)rec, (unsigned long long)size,
			(unsigned long long)want, segs);
}

/*
 * open_armed -- a new process opens path (ckpt_open reserves a segment for
 * its heap: a commit) with catalog:after-grow (the size sync) armed, and
 * closes it; 1 if it was killed there, 0 if it opened and closed
 */
static int
open_armed(const char *path)
{
	const char *env[] = { "CKPT_TEST_CRASH_AT=catalog:after-grow", NULL };
	char out[1024];
	int rc = tu_run_helper(out, sizeof(out), env, "open", path, NULL);
	if (rc != 0 && rc != 128 + SIGKILL)
		fail_msg("the helper failed (status %d): %s", rc, out);
	return rc != 0;
}

/*
 * old_library_commit -- what a commit of a libckpt older than 1.8 does to
 * the catalog header: the current copy rewritten into the other as the
 * next generation, durable_size and durable_gen copied unchanged
 */
static void
old_library_commit(const char *path)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint64_t w;
	assert_int_equal(pread(fd, &w, sizeof(w), POOL_COMMIT_OFF), (ssize_t)sizeof(w));
	unsigned dst = (unsigned)(w & 1) ^ 1;
	c.h->generation++;
	c.h->checksum = 0;
	c.h->checksum = XXH64(c.copy, c.hdr.cat_size, 0);
	assert_int_equal(pwrite(fd, c.copy, c.hdr.cat_size, layout_cat_off(&c.hdr, dst)),
			(ssize_t)c.hdr.cat_size);
	w = (c.h->generation << 1) | dst;
	assert_int_equal(pwrite(fd, &w, sizeof(w), POOL_COMMIT_OFF), (ssize_t)sizeof(w));
	assert_int_equal(fdatasync(fd), 0);
	close(fd);
	tu_catalog_free(&c);
}

/* test_durable_size -- format 1.8: the record, the headroom, the skipped and the needed syncs */
static void
test_durable_size(void **state)
{
	(void)state;
	unsetenv("CKPT_TEST_FORMAT_1_7");
	const char *path = tu_path("durable.pool");
	ckpt_pool *p = ckpt_create(path, &cfg16);
	assert_non_null(p);
	struct pool_hdr h;
	need_of(path, &h);
	assert_int_equal(h.minor, POOL_FORMAT_MINOR);
	expect_durable(path, 5);        /* segment 0 in use, four of headroom */
	assert_int_equal(ckpt_set_root(p, ckpt_alloc(p, 100000)), 0);
	for (int i = 0; i < 4; i++)     /* checkpoints in segments 1 to 4 */
		assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	expect_durable(path, 5);

	/* past the record (a heap in segment 5): the file grows with
	 * headroom (six in use, four more), the size is synced, and the
	 * process is killed there */
	assert_int_equal(open_armed(path), 1);
	assert_int_equal(size_of(path), h.data_off + 10 * h.seg_size);
	tu_inspect_verify(path);
	/* the killed commit published nothing: the record is the old one */
	assert_int_equal(check_record(path), h.data_off + 5 * h.seg_size);
	/* the parent's next commit past the record syncs and records the file */
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);      /* segment 5 */
	expect_durable(path, 10);

	/* a commit inside the record does not sync: the armed process lives */
	assert_int_equal(open_armed(path), 0);
	assert_int_equal(check_record(path), h.data_off + 10 * h.seg_size);

	/* an older libckpt committed: the record's stamp is stale, so the
	 * next commit syncs although the file and the old record cover it */
	old_library_commit(path);
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_true(c.h->durable_gen != c.h->generation);
	assert_int_equal(c.h->durable_size, h.data_off + 10 * h.seg_size);
	tu_catalog_free(&c);
	assert_int_equal(open_armed(path), 1);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(check_record(path), h.data_off + 10 * h.seg_size);
	assert_int_equal(open_armed(path), 0);

	/* retention frees most segments: the file is cut back no further than
	 * its record, which the catalog lowered first */
	assert_int_equal(ckpt_set_keep_checkpoints(p, 1), 0);
	assert_int_equal(ckpt_reclaim(p, NULL), 0);
	check_record(path);
	assert_int_equal(ckpt_close(p), 0);
	check_record(path);
	tu_inspect_verify(path);
	p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	check_record(path);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

/* helper "open PATH": restart from the newest checkpoint, which has a root */
static int
helper_open(const char *path)
{
	ckpt_pool *q = ckpt_open(path, CKPT_LATEST, NULL);
	if (!q || !ckpt_root(q)) {
		printf("err %s\n", ckpt_errormsg());
		return 1;
	}
	return ckpt_close(q) == 0 ? 0 : 2;
}

int
main(int argc, char **argv)
{
	/* fork mode copy: these tests are about segments in use: the file size
	 * follows copy mode's segments; auto settles to cow on a new pool
	 * (test_cow*.c), so ask for copy explicitly */
	setenv("CKPT_FORK_MODE", "copy", 1);
	if (argc == 4 && strcmp(argv[1], "--helper") == 0 && strcmp(argv[2], "open") == 0)
		return helper_open(argv[3]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_follows_use),
		cmocka_unit_test(test_killed_between),
		cmocka_unit_test(test_truncated_refused),
		cmocka_unit_test(test_old_pool_keeps_size),
		cmocka_unit_test(test_durable_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
