/*
 * test_lazy.c -- the lazy restart (engine/lazy.c): a cow restart returns
 * with the heap's range empty and each chunk arrives, verified against its
 * stored page sums, on first access or by prefetch.
 *
 * The pools here hold three blocks of 5 MiB (A, B, C: chunks of their
 * own, 2 MiB each) filled with a known pattern, in a format 1.2 pool whose
 * checkpoints store their page sums. Each restart runs in a forked child
 * (a SIGBUS there is what one test wants), and most run with
 * CKPT_TEST_LAZY_NO_PREFETCH=1 so a first access is known to meet a hole
 * rather than a chunk the prefetch already mapped:
 *
 *   - reads by the program and by the kernel (write(2) from the heap,
 *     read(2) and O_DIRECT pread(2) into it) return the checkpoint's bytes;
 *   - a damaged byte in C's chunk: ckpt_open still returns at once, A and B
 *     read right, the first touch of C dies with SIGBUS and a message on
 *     stderr naming the page; CKPT_RESTART=eager (and a restart that cannot
 *     start a thread) refuses the checkpoint instead;
 *   - a damaged byte in the heap's metadata (which attaching the heap
 *     reads at once): even a lazy ckpt_open refuses the checkpoint by its
 *     checksum, not a SIGBUS in the open;
 *   - a fork and a checkpoint in the middle of a fill complete it first:
 *     the child and the new checkpoint hold every byte, not holes;
 *   - a full filesystem (a small tmpfs, root) fails a checkpoint taken in
 *     the middle of a fill with ENOSPC, never the fill: the heap stays
 *     whole and the pool verifies; on a tmpfs full to the last page, where
 *     the image's holes cannot be read, eager and lazy restarts fail with
 *     the reason;
 *   - a damaged page-sum slot is named by ckpt-inspect verify, and the
 *     restart verifies the whole image instead;
 *   - CKPT_RESTART=eager, CKPT_TEST_NO_UFFD=1 and a format 1.1 pool (no
 *     stored sums) restart eagerly, with the same bytes; a bad
 *     CKPT_RESTART is refused.
 *
 * Lazy restart needs a userfaultfd that takes kernel faults (root here);
 * where the test runs without one the lazy tests skip with a message.
 * There is no valgrind run: valgrind has no userfaultfd, so it would only
 * repeat test_cow's eager restarts.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_checkpoint_util.h"
#include "pool.h"
#include "engine/image.h"

#define HEAP (64 * MiB)

static const struct ckpt_config cow_cfg = {
	.heap_size = HEAP, .max_segments = 8, .fork_mode = CKPT_FORK_COW,
	.keep_checkpoints = 3,
};

/* lazy_cfg, lazy_fill_on -- for test_lazy_util.h: cow pools, the engine's fill */
static struct ckpt_config
lazy_cfg(void)
{
	return cow_cfg;
}

static int
lazy_fill_on(const ckpt_pool *p)
{
	return p->eng && p->eng->lazy;
}

#include "test_lazy_util.h"

static void
test_lazy_kernel_io(void **state)
{
	(void)state;
	if (!lazy_possible())
		skip();
	const char *path = tu_path("io.pool");
	make_pool(path, 1);
	const char *env[] = { "CKPT_TEST_LAZY_NO_PREFETCH=1", NULL };
	assert_int_equal(in_child(child_kernel_io, path, env, NULL), 0);
	/* and with prefetch racing the accesses */
	assert_int_equal(in_child(child_kernel_io, path, NULL, NULL), 0);
	tu_inspect_verify(path);
}

/* child_refused -- the damaged (and only) checkpoint must be refused, by checksum */
static int
child_refused(const char *path)
{
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &cow_cfg);
	if (p)
		return 10;
	fprintf(stderr, "%s\n", ckpt_errormsg());
	return strstr(ckpt_errormsg(), "checksum") ? 0 : 11;
}

/* damage -- flip one byte in the middle of block C of the newest image */
static void
damage(const char *path)
{
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &cow_cfg);
	assert_non_null(p);
	struct root *r = ckpt_root(p);
	uint64_t at = (uint64_t)(uintptr_t)(r->blk[2] + BLOCK / 2) - p->hdr.base;
	ckpt_id id = ckpt_restarted_from(p);
	assert_int_equal(ckpt_close(p), 0);
	tu_flip_byte(path, seg_of(path, id) + at, 0x10);
}

static void
test_lazy_damaged_chunk(void **state)
{
	(void)state;
	if (!lazy_possible())
		skip();
	const char *path = tu_path("damaged.pool");
	make_pool(path, 2);
	damage(path);
	char errfile[4096];
	snprintf(errfile, sizeof(errfile), "%s.stderr", path);
	for (int prefetch = 0; prefetch < 2; prefetch++) {
		const char *env[] = { prefetch ? "CKPT_TEST_LAZY_NO_PREFETCH" :
			"CKPT_TEST_LAZY_NO_PREFETCH=1", NULL };
		int st = in_child(child_damaged, path, env, errfile);
		size_t n;
		char *msg = tu_read_file(errfile, &n);
		if (st != 128 + SIGBUS)
			fail_msg("the first touch of the damaged chunk: status %d, want SIGBUS; "
				"stderr: \"%s\"", st, msg);
		if (!strstr(msg, "fails its checksum") || !strstr(msg, "fenced"))
			fail_msg("no message naming the damaged page on stderr: \"%s\"", msg);
		free(msg);
	}
	/* eager restarts refuse it before the program runs */
	const char *eager[] = { "CKPT_RESTART=eager", NULL };
	assert_int_equal(in_child(child_refused, path, eager, NULL), 0);
	const char *nothread[] = { "CKPT_TEST_LAZY_NO_THREAD=1", NULL };
	assert_int_equal(in_child(child_refused, path, nothread, NULL), 0);
	unlink(errfile);
}

/*
 * a damaged page of the heap's metadata, which attaching the heap reads at
 * once: even a lazy ckpt_open refuses the checkpoint by its checksum,
 * where the fill would fence the chunk and the open die of SIGBUS
 */
static void
test_lazy_damaged_metadata(void **state)
{
	(void)state;
	if (!lazy_possible())
		skip();
	const char *path = tu_path("meta.pool");
	ckpt_id id = make_pool(path, 9);
	tu_flip_byte(path, seg_of(path, id) + 4096 + 100, 0x10);
	assert_int_equal(in_child(child_refused, path, NULL, NULL), 0);
	const char *noprefetch[] = { "CKPT_TEST_LAZY_NO_PREFETCH=1", NULL };
	assert_int_equal(in_child(child_refused, path, noprefetch, NULL), 0);
}

static void
test_lazy_fork_and_checkpoint_mid_fill(void **state)
{
	(void)state;
	if (!lazy_possible())
		skip();
	const char *path = tu_path("midfill.pool");
	make_pool(path, 3);
	const char *env[] = { "CKPT_TEST_LAZY_NO_PREFETCH=1", NULL };
	mid_fill_checks(path, env);
}

/* child_enospc -- rewrite A mid-fill on a full filesystem, checkpoint (must fail), read all */
static int
child_enospc(const char *path)
{
	ckpt_pool *p = open_lazy(path);
	if (!p)
		return 10;
	struct root *r = ckpt_root(p);
	rewrite_block(r, 0);
	errno = 0;
	if (ckpt_checkpoint(p, NULL, NULL) == 0)
		return 11;              /* the filler left too little room */
	if (errno != ENOSPC) {
		fprintf(stderr, "checkpoint: %s\n", ckpt_errormsg());
		return 12;
	}
	/* the heap is whole: the fill needed no disk, and the failed checkpoint
	 * changed nothing */
	for (int b = 0; b < 3; b++)
		if (!block_ok(r, b))
			return 13 + b;
	return ckpt_close(p) == 0 ? 0 : 16;
}

/* child_unreadable -- a restart from an image it cannot read: a clear error */
static int
child_unreadable(const char *path)
{
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &cow_cfg);
	if (p)
		return 10;
	fprintf(stderr, "%s\n", ckpt_errormsg());
	return strstr(ckpt_errormsg(), "cannot read") ||
		strstr(ckpt_errormsg(), "cannot be read") ? 0 : 11;
}

/*
 * a lazy fill needs no disk space: a full filesystem fails the checkpoint,
 * not the fill; and where even reading needs space (a full tmpfs
 * allocates a page to read a hole) an eager restart says so, and a lazy
 * one too for the heap's metadata it reads at once: no SIGBUS
 */
static void
test_lazy_full_filesystem(void **state)
{
	(void)state;
	if (!lazy_possible())
		skip();
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/small", tu_tmpdir());
	char path[TU_SMALL_PATH], filler[TU_SMALL_PATH];
	tu_small_tmpfs(dir, "size=64m", path, filler);
	make_pool(path, 7);
	/* room for the pages tmpfs must allocate to read the image's holes
	 * (it has no shared zero page), not for a checkpoint's 15 MiB */
	tu_fill_fs(filler, 4 * MiB);
	const char *env[] = { "CKPT_TEST_LAZY_NO_PREFETCH=1", NULL };
	assert_int_equal(in_child(child_enospc, path, env, NULL), 0);
	assert_int_equal(unlink(filler), 0);
	tu_inspect_verify(path);
	/* the checkpoint that failed is not there: A is as it was */
	assert_int_equal(in_child(child_all_ok, path, NULL, NULL), 20);
	/* a new pool (reading materialised the old one's holes), then full to
	 * the last page: the image's holes cannot be read */
	assert_int_equal(unlink(path), 0);
	make_pool(path, 8);
	tu_fill_fs(filler, 0);
	const char *eager[] = { "CKPT_RESTART=eager", NULL };
	assert_int_equal(in_child(child_unreadable, path, eager, NULL), 0);
	/* lazily too: the heap's metadata is checked before ckpt_open
	 * returns, so the open fails with the reason, not a SIGBUS */
	assert_int_equal(in_child(child_unreadable, path, NULL, NULL), 0);
	unlink(filler);
	unlink(path);
	tu_umount(dir);
}

/* inspect -- run "ckpt-inspect SUB [OPT] PATH" as a user would, output into out; its status */
static int
inspect(char *out, size_t len, const char *sub, const char *opt, const char *path)
{
	char bin[4096];
	snprintf(bin, sizeof(bin), "%s/tools/ckpt-inspect", getenv("CKPT_TEST_BINDIR"));
	char *argv[] = { bin, (char *)sub, (char *)(opt ? opt : path), opt ? (char *)path : NULL,
		NULL };
	return tu_run_capture(out, len, argv);
}

/* a damaged page-sum slot: verify names it, restarts become eager and work */
static void
test_lazy_damaged_sums_slot(void **state)
{
	(void)state;
	const char *path = tu_path("slot.pool");
	ckpt_id id = make_pool(path, 6);
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int i = ckpt_index(&c, id);
	assert_true(i >= 0);
	assert_true(c.e[i].flags & CAT_F_SUMS_STORED);
	uint64_t off = layout_sums_off(&c.hdr, (uint32_t)i) + 8 * 7;
	tu_catalog_free(&c);
	tu_flip_byte(path, off, 0x01);

	char out[8192];
	int st = inspect(out, sizeof(out), "verify", NULL, path);
	if (st == 0 || !strstr(out, "stored page sums are damaged"))
		fail_msg("verify of a damaged page-sum slot: status %d, output \"%s\"", st, out);
	/* the image itself is intact: the restart verifies it all and goes on */
	assert_int_equal(in_child(child_all_ok, path, NULL, NULL), 0);
}

/* list_says -- 1 if `ckpt-inspect list --json path` holds needle */
static int
list_says(const char *path, const char *needle)
{
	static char out[16384];
	assert_int_equal(inspect(out, sizeof(out), "list", "--json", path), 0);
	return strstr(out, needle) != NULL;
}

/* the eager restarts: by choice, without userfaultfd, from a 1.1 pool */
static void
test_lazy_eager_cases(void **state)
{
	(void)state;
	const char *path = tu_path("eager.pool");
	make_pool(path, 4);
	assert_true(list_says(path, "\"lazy_restart\":true"));
	const char *eager[] = { "CKPT_RESTART=eager", NULL };
	assert_int_equal(in_child(child_all_ok, path, eager, NULL), 0);
	const char *nouffd[] = { "CKPT_TEST_NO_UFFD=1", NULL };
	assert_int_equal(in_child(child_all_ok, path, nouffd, NULL), 0);
	if (lazy_possible()) {
		assert_int_equal(in_child(child_all_ok, path, NULL, NULL), 20);
		const char *explicit[] = { "CKPT_RESTART=lazy", NULL };
		assert_int_equal(in_child(child_all_ok, path, explicit, NULL), 20);
	}
	const char *bad[] = { "CKPT_RESTART=sometimes", NULL };
	assert_int_equal(in_child(child_all_ok, path, bad, NULL), 10);

	/* a format 1.1 pool stores no page sums: its restarts are eager */
	setenv("CKPT_TEST_FORMAT_1_1", "1", 1);
	make_pool(path, 5);
	unsetenv("CKPT_TEST_FORMAT_1_1");
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(c.hdr.minor, 1);
	tu_catalog_free(&c);
	assert_true(list_says(path, "\"lazy_restart\":false"));
	assert_int_equal(in_child(child_all_ok, path, NULL, NULL), 0);
	tu_inspect_verify(path);
}

int
main(void)
{
	unsetenv("CKPT_FORK_MODE");
	unsetenv("CKPT_RESTART");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lazy_kernel_io),
		cmocka_unit_test(test_lazy_damaged_chunk),
		cmocka_unit_test(test_lazy_fork_and_checkpoint_mid_fill),
		cmocka_unit_test(test_lazy_damaged_metadata),
		cmocka_unit_test(test_lazy_full_filesystem),
		cmocka_unit_test(test_lazy_damaged_sums_slot),
		cmocka_unit_test(test_lazy_eager_cases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
