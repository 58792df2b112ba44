/*
 * test_fork_space.c -- fork on a full filesystem (issue 5): when the copy
 * into the child's segment runs out of space (ENOSPC) midway, the child
 * never shares the parent's heap. It gets the documented fallback (README,
 * "fork()"; fork.c): a private volatile copy of the heap, where allocation
 * works and every call needing a durable segment fails with ENOSPC and a
 * message saying so. Writes on either side stay invisible to the other;
 * the parent's heap and checkpoints are intact; the half-copied segment is
 * given back (free, its blocks punched), the pool verifies, and with room
 * again the parent checkpoints and forks as before.
 *
 * The filesystem is a small tmpfs in a private mount namespace (root; skips
 * with a message where mounting is impossible). Run twice: with the copy
 * by copy_file_range, and by pread/pwrite (CKPT_TEST_NO_OFFLOAD=1).
 *
 * The same fallback when the process has no file descriptor left (EMFILE
 * at the fork: the child's own description of the pool cannot be opened),
 * in copy mode and in cow mode, where without a description nothing could
 * pin the base image the child maps: the child gets the private copy (made
 * without a descriptor) and runs on it, never exits for want of one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include "test_fork_util.h"
#include "layout.h"
#include "pool.h"
#include "segcopy.h"

#define MIB ((uint64_t)1 << 20)
#define BIG (6 * MIB)

/* child_side -- in the child: the fallback, isolation; exit status bits say what failed */
static int
child_side(ckpt_pool *p, struct fk_root *r, struct fk_chan *ch)
{
	int bad = 0;
	if (!p->detached)
		bad |= 1;               /* it must not have a (half-filled) segment */
	if (ckpt_root(p) != r || r->a[0] != 0xA0 || !fk_all(r->big, 'P', BIG))
		bad |= 2;               /* it starts from the parent's heap */
	/* the documented fallback: pool calls needing durability fail clearly */
	errno = 0;
	/* ... and name the real cause: the filesystem was full, not the pool */
	if (ckpt_checkpoint(p, "child", NULL) != -1 || errno != ENOSPC ||
	    !strstr(ckpt_errormsg(), "private volatile copy") ||
	    !strstr(ckpt_errormsg(), "filling its segment failed") ||
	    !strstr(ckpt_errormsg(), strerror(ENOSPC)))
		bad |= 4;
	errno = 0;
	if (ckpt_persist(p, r, sizeof(*r)) != -1 || errno != ENOSPC)
		bad |= 4;
	/* its own writes, allocation included */
	r->a[1] = 0xC1;
	memset(r->big, 'C', BIG);
	r->child_block = ckpt_alloc(p, 4096);
	if (!r->child_block)
		bad |= 8;
	else
		r->child_block[0] = 0xCB;
	fk_send(ch->up[1], 1);
	if (fk_recv(ch->down[0]) != 2)
		return 90;
	/* the parent wrote a[2] and its own byte of big meanwhile */
	if (r->a[2] != 0 || r->big[0] != 'C' || !fk_all(r->big, 'C', BIG))
		bad |= 16;
	if (ckpt_close(p) != 0)
		bad |= 32;
	return bad;
}

static void
enospc_at_fork(const char *variant, int no_offload)
{
	char name[64];
	snprintf(name, sizeof(name), "small-fs-%s", variant);
	const char *dir = tu_path(name);
	char path[TU_SMALL_PATH], filler[TU_SMALL_PATH];
	tu_small_tmpfs(dir, "size=64m", path, filler);
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 4);
	struct fk_root *r = fk_new_root(p, BIG);
	ckpt_id base_id;
	assert_int_equal(ckpt_checkpoint(p, "base", &base_id), 0);

	/* fill the filesystem but 2 MiB: the child's ~6 MiB copy runs out midway */
	tu_fill_fs(filler, 2 * MIB);

	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int ci = -1;
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_CKPT)
			ci = (int)i;
	assert_true(ci >= 0);
	struct cat_entry ckpt_before = c.e[ci];
	void *ckpt_bytes = tu_read_range(path, layout_seg_off(&c.hdr, (uint32_t)ci),
			ckpt_before.used);
	assert_int_equal(tu_catalog_count(&c, CAT_FREE), 2);
	tu_catalog_free(&c);
	uint64_t free_before = tu_fs_free(dir);
	struct segcopy_stats st0 = segcopy_stats;

	if (no_offload)
		setenv("CKPT_TEST_NO_OFFLOAD", "1", 1);
	struct fk_chan ch;
	pid_t pid = fk_fork(&ch);
	if (pid == 0)
		_exit(child_side(p, r, &ch));
	unsetenv("CKPT_TEST_NO_OFFLOAD");
	/* the copy did start and stopped short: ENOSPC midway, not "no segment" */
	uint64_t moved = no_offload ? segcopy_stats.plain - st0.plain
		: segcopy_stats.range - st0.range;
	if (moved == 0 || moved >= BIG)
		fail_msg("%s: the fork copy moved %llu bytes; want some, less than the heap",
			variant, (unsigned long long)moved);
	assert_int_equal(p->detached, 0);

	assert_int_equal(fk_recv(ch.up[0]), 1);
	assert_int_equal(r->a[1], 0);           /* the child's writes: invisible */
	assert_true(fk_all(r->big, 'P', BIG));
	assert_null(r->child_block);
	r->a[2] = 0xB2;
	r->big[0] = 'Q';
	assert_int_equal(fk_send(ch.down[1], 2), 0);
	int rc = tu_wait_exit(pid);
	if (rc != 0)
		fail_msg("%s: child status %d (bits: 1 has a segment, 2 not the parent's "
			"heap, 4 pool calls did not fail with ENOSPC, 8 alloc, 16 saw the "
			"parent's writes, 32 close)", variant, rc);
	close(ch.down[1]);
	close(ch.up[0]);

	/* nothing half-copied is left live or holding blocks */
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_BUSY), 0);
	assert_int_equal(tu_catalog_count(&c, CAT_LIVE), 1);
	assert_int_equal(tu_catalog_count(&c, CAT_FREE), 2);
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_FREE && tu_seg_has_data(path, &c.hdr, i))
			fail_msg("%s: free segment %u still holds blocks", variant, i);
	/* the checkpoint: untouched */
	assert_memory_equal(&c.e[ci], &ckpt_before, sizeof(ckpt_before));
	void *now = tu_read_range(path, layout_seg_off(&c.hdr, (uint32_t)ci), ckpt_before.used);
	assert_memory_equal(now, ckpt_bytes, ckpt_before.used);
	free(now);
	free(ckpt_bytes);
	tu_catalog_free(&c);
	if (tu_fs_free(dir) < free_before)
		fail_msg("%s: the failed fork copy kept %llu bytes", variant,
			(unsigned long long)(free_before - tu_fs_free(dir)));
	assert_string_equal(fk_state_name(path, p->seg), "live");
	assert_int_equal(fk_count_state(path, "live"), 1);
	tu_inspect_verify(path);

	/* the parent's heap: its own writes only */
	assert_int_equal(r->a[0], 0xA0);
	assert_int_equal(r->a[2], 0xB2);
	assert_int_equal(r->big[0], 'Q');
	assert_true(fk_all(r->big + 1, 'P', BIG - 1));
	assert_int_equal(ckpt_persist(p, r, sizeof(*r)), 0);

	/* room again: the parent checkpoints and forks as before */
	assert_int_equal(unlink(filler), 0);
	ckpt_id id;
	if (ckpt_checkpoint(p, "after", &id) != 0)
		fail_msg("%s: checkpoint after freeing space: %s", variant, ckpt_errormsg());
	pid = tu_fork();
	if (pid == 0)
		_exit(p->detached || r->a[2] != 0xB2 || ckpt_close(p) != 0);
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_int_equal(ckpt_close(p), 0);
	p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p)
		fail_msg("%s: reopen: %s", variant, ckpt_errormsg());
	r = ckpt_root(p);
	assert_int_equal(r->a[2], 0xB2);
	assert_null(r->child_block);
	assert_int_equal(r->big[0], 'Q');
	assert_int_equal(ckpt_close(p), 0);
	p = ckpt_open(path, base_id, NULL);
	assert_non_null(p);
	r = ckpt_root(p);
	assert_int_equal(r->a[2], 0);
	assert_true(fk_all(r->big, 'P', BIG));
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
	tu_umount(dir);
}

static void
test_enospc_copy_file_range(void **state)
{
	(void)state;
	enospc_at_fork("cfr", 0);
}

static void
test_enospc_pwrite(void **state)
{
	(void)state;
	enospc_at_fork("pwrite", 1);
}

/*
 * emfile_at_fork -- fork with every descriptor in use: the child runs on a
 * private copy (detached), isolated both ways; the parent is unaffected
 */
static void
emfile_at_fork(enum ckpt_fork_mode mode)
{
	char path[600];
	snprintf(path, sizeof(path), "%s", tu_path(mode == CKPT_FORK_COW ? "emfile-cow" : "emfile-copy"));
	ckpt_pool *p = fk_create(path, mode, 6);
	struct fk_root *r = fk_new_root(p, 0);
	assert_int_equal(ckpt_checkpoint(p, "base", NULL), 0);
	r->a[3] = 0xA3;         /* in cow mode: a page the base image does not hold */

	/* no descriptor left */
	struct tu_fds fds;
	tu_fds_exhaust(&fds);

	pid_t pid = fork();
	if (pid == 0) {
		int bad = 0;
		if (!p->detached)
			bad |= 1;
		if (ckpt_root(p) != r || r->a[0] != 0xA0 || r->a[3] != 0xA3)
			bad |= 2;
		errno = 0;
		if (ckpt_checkpoint(p, "child", NULL) != -1 || errno != ENOSPC ||
		    !strstr(ckpt_errormsg(), "private volatile copy"))
			bad |= 4;
		r->a[1] = 0xC1;
		if (!ckpt_alloc(p, 4096))
			bad |= 8;
		if (ckpt_close(p) != 0)
			bad |= 16;
		_exit(bad);
	}
	tu_fds_restore(&fds);
	assert_true(pid > 0);
	int rc = tu_wait_exit(pid);
	if (rc != 0)
		fail_msg("%s: child status %d (127: it exited for want of a descriptor; bits: "
			"1 has a segment, 2 not the parent's heap, 4 checkpoint did not fail "
			"with ENOSPC, 8 alloc, 16 close)",
			mode == CKPT_FORK_COW ? "cow" : "copy", rc);
	assert_int_equal(r->a[1], 0);   /* the child's write: invisible */
	assert_int_equal(p->detached, 0);
	assert_int_equal(ckpt_checkpoint(p, "after", NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(fk_count_state(path, "live"), 0);
	assert_int_equal(fk_count_state(path, "busy"), 0);
	tu_inspect_verify(path);
	p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	r = ckpt_root(p);
	assert_int_equal(r->a[3], 0xA3);
	assert_int_equal(r->a[1], 0);
	assert_int_equal(ckpt_close(p), 0);
}

static void
test_emfile_copy(void **state)
{
	(void)state;
	emfile_at_fork(CKPT_FORK_COPY);
}

static void
test_emfile_cow(void **state)
{
	(void)state;
	emfile_at_fork(CKPT_FORK_COW);
}

int
main(void)
{
	unsetenv("CKPT_FORK_MODE");
	unsetenv("CKPT_TEST_CRASH_AT");
	unsetenv("CKPT_TEST_NO_OFFLOAD");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_enospc_copy_file_range),
		cmocka_unit_test(test_enospc_pwrite),
		cmocka_unit_test(test_emfile_copy),
		cmocka_unit_test(test_emfile_cow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
