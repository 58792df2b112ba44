/*
 * test_pool_errors.c -- bad input gets a clear error, and nothing is
 * clobbered or lost (issue 2, item 4).
 *
 * Every case checks three things: errno, that ckpt_errormsg() names the
 * problem, and that a pool file that existed before the call is
 * byte-identical afterwards (compared with a copy taken before). Real
 * files, real mounts (tmpfs, read-only bind mounts in a private mount
 * namespace), real processes.
 *
 * Over 800 lines: each bad input is a short case around one shared check
 * (errno, message, pool byte-identical).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "libckpt.h"
#include "testutil.h"
#include "format.h"
#include "layout.h"

#define MiB ((size_t)1 << 20)
#define ROOT_TEXT "pool-errors root"

static const struct ckpt_config small_cfg = { .heap_size = 4 * MiB, .max_segments = 4 };

/* check_err -- the failed call left errno e == want and a message containing word */
#define check_err(e, want, word) check_err_((e), (want), (word), __FILE__, __LINE__)
static void
check_err_(int e, int want, const char *word, const char *file, int line)
{
	const char *m = ckpt_errormsg();
	if (e != want || !m || !strcasestr(m, word))
		fail_msg("%s:%d: errno %d (%s), want %d (%s); message \"%s\" should mention \"%s\"",
			file, line, e, strerror(e), want, strerror(want), m ? m : "(null)", word);
}

/* check_same -- path still holds exactly the bytes of copy */
#define check_same(path, copy) do { \
	if (!tu_files_equal((path), (copy))) \
		fail_msg("%s was changed by a failing call", (path)); \
} while (0)

static int
exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* make_pool -- a real, closed pool at path with one checkpoint holding ROOT_TEXT */
static void
make_pool(const char *path, const struct ckpt_config *cfg)
{
	ckpt_pool *p = ckpt_create(path, cfg ? cfg : &small_cfg);
	if (!p)
		fail_msg("ckpt_create %s: %s", path, ckpt_errormsg());
	char *s = ckpt_alloc(p, sizeof(ROOT_TEXT));
	assert_non_null(s);
	strcpy(s, ROOT_TEXT);
	assert_int_equal(ckpt_set_root(p, s), 0);
	ckpt_id id = 0;
	if (ckpt_checkpoint(p, "first", &id) != 0)
		fail_msg("ckpt_checkpoint: %s", ckpt_errormsg());
	assert_true(id > 0);
	assert_int_equal(ckpt_close(p), 0);
}

/* try_open -- ckpt_open that must fail; returns its errno */
static int
try_open(const char *path)
{
	errno = 0;
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
	int e = errno;
	if (p) {
		ckpt_close(p);
		fail_msg("ckpt_open %s succeeded; it must fail", path);
	}
	return e;
}

/* try_create -- ckpt_create that must fail; returns its errno */
static int
try_create(const char *path, const struct ckpt_config *cfg)
{
	errno = 0;
	ckpt_pool *p = ckpt_create(path, cfg);
	int e = errno;
	if (p) {
		ckpt_close(p);
		fail_msg("ckpt_create %s succeeded; it must fail", path);
	}
	return e;
}

static void
read_hdr(const char *path, struct pool_hdr *h)
{
	void *b = tu_read_range(path, 0, sizeof(*h));
	memcpy(h, b, sizeof(*h));
	free(b);
}

static void
write_hdr(const char *path, const struct pool_hdr *h)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, h, sizeof(*h), 0), sizeof(*h));
	close(fd);
}

/* reseal -- recompute the header checksum as format.h defines it */
static void
reseal(struct pool_hdr *h)
{
	h->checksum = XXH64(h, offsetof(struct pool_hdr, checksum), 0);
}

/* the opened pool still works: its root is the text make_pool stored */
static void
check_opens(const char *path)
{
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p)
		fail_msg("ckpt_open %s: %s", path, ckpt_errormsg());
	assert_non_null(ckpt_root(p));
	assert_string_equal(ckpt_root(p), ROOT_TEXT);
	assert_int_equal(ckpt_close(p), 0);
}

/* ---------------------------------------------------------------------- */

static void
create_path_exists(void **state)
{
	const char *path = tu_path("exists.pool"), *copy = tu_path("exists.copy");
	make_pool(path, NULL);
	tu_copy_file(path, copy);
	check_err(try_create(path, &small_cfg), EEXIST, "exists");
	check_same(path, copy);
	check_opens(copy);

	/* an existing file that is not a pool is not replaced either */
	const char *other = tu_path("exists.txt"), *ocopy = tu_path("exists.txt.copy");
	tu_write_file(other, "precious data\n", 14);
	tu_copy_file(other, ocopy);
	check_err(try_create(other, &small_cfg), EEXIST, "exists");
	check_same(other, ocopy);

	/* nor a symlink pointing nowhere (O_EXCL: never follow) */
	const char *link = tu_path("exists.link");
	assert_int_equal(symlink(tu_path("nowhere"), link), 0);
	check_err(try_create(link, &small_cfg), EEXIST, "exists");
	assert_false(exists(tu_path("nowhere")));
}

static void
open_random_bytes(void **state)
{
	static const size_t sizes[] = { 100, 4096, 16 * MiB };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		const char *path = tu_path("random.pool"), *copy = tu_path("random.copy");
		char *buf = malloc(sizes[i]);
		assert_non_null(buf);
		for (size_t o = 0; o < sizes[i]; o += 256)
			assert_true(getrandom(buf + o, sizes[i] - o < 256 ? sizes[i] - o : 256, 0) > 0);
		tu_write_file(path, buf, sizes[i]);
		free(buf);
		tu_copy_file(path, copy);
		check_err(try_open(path), EINVAL, "not a libckpt pool");
		check_same(path, copy);
	}
}

static void
open_empty_file(void **state)
{
	const char *path = tu_path("empty.pool");
	tu_write_file(path, "", 0);
	check_err(try_open(path), EINVAL, "not a libckpt pool");
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
}

static void
open_truncated(void **state)
{
	char orig[512];
	snprintf(orig, sizeof(orig), "%s", tu_path("trunc.orig"));
	make_pool(orig, NULL);
	struct pool_hdr h;
	read_hdr(orig, &h);
	struct stat st;
	assert_int_equal(stat(orig, &st), 0);
	/* the file ends after its checkpoint, segment 1 (format 1.3) */
	assert_int_equal((uint64_t)st.st_size, h.data_off + 2 * h.seg_size);
	/* cut inside the checkpoint's segment, before it, at the segments,
	 * inside the catalog, inside the header */
	const uint64_t cuts[] = { (uint64_t)st.st_size - 1, h.data_off + h.seg_size,
		h.data_off, POOL_CATALOG_OFF + 100, 200 };
	const char *words[] = { "truncated", "truncated", "truncated", "truncated",
		"not a libckpt pool" };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		const char *path = tu_path("trunc.pool"), *copy = tu_path("trunc.copy");
		tu_copy_file(orig, path);
		assert_int_equal(truncate(path, (off_t)cuts[i]), 0);
		tu_copy_file(path, copy);
		check_err(try_open(path), EINVAL, words[i]);
		check_same(path, copy);
	}
	check_opens(orig);

	/* a pool of format 1.2 has its full size: shorter is truncated */
	const char *path = tu_path("trunc-old.pool"), *copy = tu_path("trunc-old.copy");
	tu_copy_file(orig, path);
	h.minor = 2;
	h.flags &= ~POOL_F_SIZE_FOLLOWS;
	layout_seal(&h);
	write_hdr(path, &h);
	assert_int_equal(truncate(path, (off_t)h.file_size), 0);
	check_opens(path);
	assert_int_equal(truncate(path, (off_t)h.file_size - 1), 0);
	tu_copy_file(path, copy);
	check_err(try_open(path), EINVAL, "truncated");
	check_same(path, copy);
}

static void
open_wrong_magic(void **state)
{
	const char *path = tu_path("magic.pool"), *copy = tu_path("magic.copy");
	make_pool(path, NULL);
	struct pool_hdr h;
	read_hdr(path, &h);
	memcpy(h.magic, "CKPTPOOX", 8);
	reseal(&h);          /* so only the magic is wrong */
	write_hdr(path, &h);
	tu_copy_file(path, copy);
	check_err(try_open(path), EINVAL, "magic");
	check_same(path, copy);
}

static void
open_newer_format(void **state)
{
	const char *path = tu_path("newer.pool"), *copy = tu_path("newer.copy");
	make_pool(path, NULL);
	struct pool_hdr h;
	read_hdr(path, &h);
	struct pool_hdr orig = h;

	/* a newer major, correctly sealed: the version check itself refuses */
	h.major = POOL_FORMAT_MAJOR + 1;
	reseal(&h);
	write_hdr(path, &h);
	tu_copy_file(path, copy);
	check_err(try_open(path), ENOTSUP, "newer");
	check_same(path, copy);
	/* the message names both versions */
	char want[64];
	snprintf(want, sizeof(want), "%u.%u", POOL_FORMAT_MAJOR + 1, h.minor);
	assert_non_null(strstr(ckpt_errormsg(), want));

	/* a far newer major too (no wraparound in the comparison) */
	h.major = UINT32_MAX;
	reseal(&h);
	write_hdr(path, &h);
	tu_copy_file(path, copy);
	check_err(try_open(path), ENOTSUP, "newer");
	check_same(path, copy);

	/* a newer minor of the same major is compatible and opens */
	h = orig;
	h.minor = POOL_FORMAT_MINOR + 7;
	reseal(&h);
	write_hdr(path, &h);
	check_opens(path);
}

static void
open_header_checksum_mismatch(void **state)
{
	char orig[512];
	snprintf(orig, sizeof(orig), "%s", tu_path("csum.orig"));
	make_pool(orig, NULL);
	/* a flipped bit in the uuid, in the base, in reserved bytes, in the
	 * checksum itself: every one is damage */
	const size_t offs[] = { offsetof(struct pool_hdr, uuid) + 3,
		offsetof(struct pool_hdr, base) + 5,
		offsetof(struct pool_hdr, reserved) + 17,
		offsetof(struct pool_hdr, checksum) };
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		const char *path = tu_path("csum.pool"), *copy = tu_path("csum.copy");
		tu_copy_file(orig, path);
		struct pool_hdr h;
		read_hdr(path, &h);
		((unsigned char *)&h)[offs[i]] ^= 0x10;
		write_hdr(path, &h);
		tu_copy_file(path, copy);
		check_err(try_open(path), EINVAL, "checksum");
		check_same(path, copy);
	}
}

/* map_probe -- map one page at addr (never replacing) and fill it with a pattern */
static void *
map_probe(uint64_t addr)
{
	void *m = mmap((void *)(uintptr_t)addr, 4096, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (m == MAP_FAILED || m != (void *)(uintptr_t)addr)
		fail_msg("cannot map a probe page at 0x%llx: %s",
			(unsigned long long)addr, strerror(errno));
	memset(m, 0x5a, 4096);
	return m;
}

static void
check_probe(void *m)
{
	for (size_t i = 0; i < 4096; i++)
		if (((unsigned char *)m)[i] != 0x5a)
			fail_msg("the mapping at %p was clobbered (byte %zu)", m, i);
	assert_int_equal(munmap(m, 4096), 0);
}

static void
open_base_in_use(void **state)
{
	const char *path = tu_path("base.pool"), *copy = tu_path("base.copy");
	make_pool(path, NULL);
	struct pool_hdr h;
	read_hdr(path, &h);
	tu_copy_file(path, copy);

	/* something already lives at the start of the pool's range ... */
	void *m = map_probe(h.base);
	check_err(try_open(path), EADDRINUSE, "already mapped");
	check_same(path, copy);
	check_probe(m);

	/* ... or at its very end: the whole segment range is checked */
	m = map_probe(h.base + h.seg_size - 4096);
	check_err(try_open(path), EADDRINUSE, "already mapped");
	check_same(path, copy);
	check_probe(m);

	/* with the range free again, the same file opens */
	check_opens(path);
}

static void
open_same_pool_twice(void **state)
{
	const char *path = tu_path("twice.pool"), *copy = tu_path("twice.copy");
	ckpt_pool *p = ckpt_create(path, &small_cfg);
	assert_non_null(p);
	char *s = ckpt_alloc(p, 64);
	assert_non_null(s);
	strcpy(s, "first process heap");
	assert_int_equal(ckpt_set_root(p, s), 0);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	tu_copy_file(path, copy);

	check_err(try_open(path), EADDRINUSE, "already mapped");
	check_same(path, copy);

	/* the open pool was not disturbed */
	assert_ptr_equal(ckpt_root(p), s);
	assert_string_equal(s, "first process heap");
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
}

/* helper "open PATH": ckpt_open(LATEST) in a new process; prints "ok" or "err ERRNO MSG" */
static int
helper_open(const char *path)
{
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p) {
		int e = errno;
		printf("err %d %s\n", e, ckpt_errormsg());
		return 1;
	}
	printf("ok\n");
	ckpt_close(p);
	return 0;
}

/* helper_err -- parse "err ERRNO MSG" from a helper's output */
static int
helper_err(const char *out, const char **msg)
{
	int e = -1, n = 0;
	if (sscanf(out, "err %d %n", &e, &n) != 1 || n == 0)
		fail_msg("helper printed \"%s\", expected an error", out);
	*msg = out + n;
	return e;
}

static void
no_free_segment(void **state)
{
	const char *path = tu_path("full.pool"), *copy = tu_path("full.copy");
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 2 };
	ckpt_pool *p = ckpt_create(path, &cfg);          /* segment 0: live */
	assert_non_null(p);
	char *s = ckpt_alloc(p, 64);
	assert_non_null(s);
	strcpy(s, "kept");
	assert_int_equal(ckpt_set_root(p, s), 0);
	ckpt_id id1 = 0;
	assert_int_equal(ckpt_checkpoint(p, "one", &id1), 0); /* segment 1 */
	tu_copy_file(path, copy);

	/* a second checkpoint has nowhere to go */
	errno = 0;
	ckpt_id id2 = 12345;
	assert_int_equal(ckpt_checkpoint(p, "two", &id2), -1);
	check_err(errno, ENOSPC, "no free segment");
	assert_int_equal(id2, 12345);
	check_same(path, copy);

	/* another process cannot start from the checkpoint while we live */
	char out[512];
	int rc = tu_run_helper(out, sizeof(out), NULL, "open", path, NULL);
	assert_int_equal(rc, 1);
	const char *msg;
	int e = helper_err(out, &msg);
	if (e != ENOSPC || !strcasestr(msg, "no free segment"))
		fail_msg("helper: errno %d, message \"%s\"; want ENOSPC, \"no free segment\"",
			e, msg);
	check_same(path, copy);

	/* the pool still works and, once we close, the other process gets in */
	assert_string_equal(s, "kept");
	assert_int_equal(ckpt_close(p), 0);
	rc = tu_run_helper(out, sizeof(out), NULL, "open", path, NULL);
	if (rc != 0)
		fail_msg("helper after close: rc %d: %s", rc, out);
}

/* mnt_or_skip -- a fresh tmpfs at dir, or skip the test */
static int
mnt_or_skip(const char *dir, const char *opts)
{
	if (tu_mount_tmpfs(dir, opts) < 0) {
		print_message("cannot mount a tmpfs (%s): %s; skipping\n", opts, strerror(errno));
		return -1;
	}
	return 0;
}

static void
check_fs_empty(const char *dir)
{
	struct statvfs vs;
	assert_int_equal(statvfs(dir, &vs), 0);
	if (vs.f_bfree != vs.f_blocks)
		fail_msg("%s: %llu of %llu blocks still used after a failed create", dir,
			(unsigned long long)(vs.f_blocks - vs.f_bfree),
			(unsigned long long)vs.f_blocks);
}

static void
create_fs_full(void **state)
{
	/* 8 KiB: the metadata (16 KiB: header, commit word, two catalog copies;
	 * the page-sum slots stay sparse) does not fit; 2 MiB: it fits, the
	 * first heap extent does not */
	static const char *sizes[] = { "size=8k", "size=2m" };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		const char *dir = tu_path("fsfull");
		if (mnt_or_skip(dir, sizes[i]) < 0) {
			skip();
			return;
		}
		char path[600];
		snprintf(path, sizeof(path), "%s/full.pool", dir);
		struct ckpt_config cfg = { .heap_size = 8 * MiB, .max_segments = 4 };
		check_err(try_create(path, &cfg), ENOSPC, "space");
		if (exists(path))
			fail_msg("%s (%s): a half-made pool file was left behind", path, sizes[i]);
		check_fs_empty(dir);
		tu_umount(dir);
	}
}

/*
 * alloc_fs_full child: fill a heap on a filesystem that runs out of space
 * before the heap does. Exit codes: 0 ok; 2..9 a failed expectation (message
 * on stderr); a SIGBUS shows as 128+7.
 */
static int
fill_heap_child(const char *path)
{
	struct ckpt_config cfg = { .heap_size = 32 * MiB, .max_segments = 2 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p) {
		fprintf(stderr, "create: %s\n", ckpt_errormsg());
		return 2;
	}
	size_t n = 0, blk = 256 * 1024;
	void *b;
	while ((b = ckpt_alloc(p, blk)) != NULL) {
		memset(b, 0xab, blk);       /* a store into unbacked pages would SIGBUS */
		n++;
		if (n * blk > 2 * cfg.heap_size) {
			fprintf(stderr, "allocated more than the heap holds\n");
			return 3;
		}
	}
	int e = errno;
	if (e != ENOMEM) {
		fprintf(stderr, "alloc failed with errno %d (%s), want ENOMEM; %s\n", e,
			strerror(e), ckpt_errormsg());
		return 4;
	}
	if (n * blk >= 16 * MiB) {
		fprintf(stderr, "%zu bytes allocated on an 8 MiB filesystem\n", n * blk);
		return 5;
	}
	/* small blocks from the space already backed may still work; a
	 * checkpoint needs disk space and must fail cleanly, not crash */
	errno = 0;
	if (ckpt_checkpoint(p, NULL, NULL) == 0) {
		fprintf(stderr, "checkpoint on a full filesystem succeeded\n");
		return 6;
	}
	if (errno != ENOSPC) {
		fprintf(stderr, "checkpoint errno %d (%s), want ENOSPC\n", errno, ckpt_errormsg());
		return 7;
	}
	if (ckpt_close(p) != 0) {
		fprintf(stderr, "close: %s\n", ckpt_errormsg());
		return 8;
	}
	printf("%zu blocks\n", n);
	return 0;
}

static void
alloc_fs_full(void **state)
{
	const char *dir = tu_path("fsfull-heap");
	if (mnt_or_skip(dir, "size=8m") < 0) {
		skip();
		return;
	}
	char path[600];
	snprintf(path, sizeof(path), "%s/heap.pool", dir);
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fill_heap_child(path));
	int rc = tu_wait_exit(pid);
	if (rc == 128 + SIGBUS)
		fail_msg("the heap took SIGBUS on a full filesystem instead of failing with ENOMEM");
	assert_int_equal(rc, 0);
	/* the failed checkpoint left nothing behind, the close freed the heap */
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_FREE), c.n);
	tu_catalog_free(&c);
	tu_umount(dir);
}

static void
open_read_only_mount(void **state)
{
	const char *dir = tu_path("rw"), *view = tu_path("ro");
	assert_int_equal(mkdir(dir, 0755), 0);
	char path[600], rpath[600], newpath[600];
	snprintf(path, sizeof(path), "%s/p.pool", dir);
	snprintf(rpath, sizeof(rpath), "%s/p.pool", view);
	snprintf(newpath, sizeof(newpath), "%s/new.pool", view);
	make_pool(path, NULL);
	const char *copy = tu_path("ro.copy");
	tu_copy_file(path, copy);
	if (tu_bind_ro(dir, view) < 0) {
		print_message("cannot make a read-only bind mount: %s; skipping\n", strerror(errno));
		skip();
		return;
	}
	check_err(try_open(rpath), EROFS, "read-only");
	check_same(path, copy);
	check_err(try_create(newpath, &small_cfg), EROFS, "read-only");
	assert_false(exists(newpath));
	tu_umount(view);
	check_opens(path);
}

/*
 * A file its owner may only read, opened by that (unprivileged) owner: root
 * would bypass the mode, so a child drops to nobody first.
 */
static void
open_read_only_file(void **state)
{
	const uid_t nobody = 65534;
	const gid_t nogroup = 65534;
	const char *dir = tu_path("ro-file");
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chmod(tu_tmpdir(), 0711), 0);
	char path[600], copy[600];
	snprintf(path, sizeof(path), "%s/p.pool", dir);
	snprintf(copy, sizeof(copy), "%s/p.copy", tu_tmpdir());
	make_pool(path, NULL);
	if (geteuid() != 0) {
		/* not root: the mode binds us directly */
		assert_int_equal(chmod(path, 0400), 0);
		tu_copy_file(path, copy);
		check_err(try_open(path), EACCES, "permission");
		check_same(path, copy);
		return;
	}
	assert_int_equal(chown(path, nobody, nogroup), 0);
	assert_int_equal(chmod(path, 0400), 0);
	tu_copy_file(path, copy);

	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		char msg[400];
		if (setgroups(0, NULL) < 0 || setgid(nogroup) < 0 || setuid(nobody) < 0)
			_exit(3);
		/* it is readable: what is refused is writing */
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			_exit(4);
		close(fd);
		errno = 0;
		ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
		int e = errno;
		int n = snprintf(msg, sizeof(msg), "%d %s", p ? 0 : e, p ? "" : ckpt_errormsg());
		if (write(fds[1], msg, (size_t)n) != n)
			_exit(5);
		_exit(p ? 1 : 0);
	}
	close(fds[1]);
	char buf[400] = "";
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	int rc = tu_wait_exit(pid);
	if (rc != 0 && rc != 1)
		fail_msg("unprivileged child failed before ckpt_open (rc %d)", rc);
	assert_true(n > 0);
	buf[n] = '\0';
	int e = atoi(buf);
	const char *msg = strchr(buf, ' ');
	if (rc != 0 || e != EACCES || !msg || !strcasestr(msg, "permission"))
		fail_msg("read-only file opened by its owner: rc %d, errno %d, \"%s\"; "
			"want EACCES, \"permission\"", rc, e, msg ? msg + 1 : "");
	check_same(path, copy);
}

static void
open_directory(void **state)
{
	const char *dir = tu_path("a-dir");
	assert_int_equal(mkdir(dir, 0755), 0);
	check_err(try_open(dir), EISDIR, "directory");
	check_err(try_create(dir, &small_cfg), EEXIST, "exists");
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

static void
create_size_overflow(void **state)
{
	const struct {
		struct ckpt_config cfg;
		const char *what;
	} cases[] = {
		{ { .heap_size = SIZE_MAX, .max_segments = 4 }, "SIZE_MAX heap" },
		{ { .heap_size = SIZE_MAX - 4096, .max_segments = 4 }, "heap rounding past 2^64" },
		{ { .heap_size = ((size_t)1 << 44) + 1, .max_segments = 4 }, "heap over 16 TiB" },
		{ { .heap_size = 4 * MiB, .max_segments = UINT_MAX }, "UINT_MAX segments" },
		{ { .heap_size = 4 * MiB, .max_segments = POOL_MAX_SEGMENTS + 1 }, "4097 segments" },
		{ { .heap_size = SIZE_MAX / 2, .max_segments = UINT_MAX / 2 }, "both huge" },
		{ { .heap_size = 4096, .max_segments = 4 }, "heap below the minimum" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path = tu_path("overflow.pool");
		errno = 0;
		ckpt_pool *p = ckpt_create(path, &cases[i].cfg);
		int e = errno;
		if (p)
			fail_msg("%s: ckpt_create succeeded", cases[i].what);
		if (e != EINVAL && e != EOVERFLOW)
			fail_msg("%s: errno %d (%s), want EINVAL or EOVERFLOW; \"%s\"",
				cases[i].what, e, strerror(e), ckpt_errormsg());
		const char *m = ckpt_errormsg();
		if (!strcasestr(m, "heap size") && !strcasestr(m, "segment count") &&
		    !strcasestr(m, "overflow"))
			fail_msg("%s: message \"%s\" does not name the bad value", cases[i].what, m);
		if (exists(path))
			fail_msg("%s: a file was created", cases[i].what);
	}

	/*
	 * Within the format's limits heap * segments cannot overflow 64 bits
	 * (16 TiB * 4096 = 2^56), but it can exceed what the filesystem holds
	 * (ext4: 16 TiB files):
	 * then the create fails (EFBIG) and removes what it began.
	 */
	const char *probe = tu_path("bigfile.probe");
	int fd = open(probe, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	int big_ok = ftruncate(fd, (off_t)1 << 56) == 0;
	close(fd);
	unlink(probe);
	if (big_ok) {
		print_message("filesystem of %s holds 2^56-byte files; "
			"skipping the too-big-for-the-filesystem case\n", tu_tmpdir());
		return;
	}
	const char *path = tu_path("toobig.pool");
	/* 1 TiB * 4096 = 4 PiB (a 16 TiB heap would do too, but reserving
	 * its address range is slow under valgrind) */
	struct ckpt_config big = { .heap_size = (size_t)1 << 40, .max_segments = POOL_MAX_SEGMENTS };
	int e = try_create(path, &big);
	if (e != EFBIG && e != EOVERFLOW && e != EINVAL)
		fail_msg("1 TiB * 4096 segments: errno %d (%s), want EFBIG; \"%s\"", e,
			strerror(e), ckpt_errormsg());
	assert_non_null(strcasestr(ckpt_errormsg(), "size"));
	if (exists(path))
		fail_msg("1 TiB * 4096 segments: a half-made file was left behind");
}

/* create_bad_base -- a base the heap cannot live at is refused, no file made */
static void
create_bad_base(void **state)
{
	(void)state;
	static const uintptr_t bad[] = {
		0x300000001000ull,              /* page but not 2 MiB aligned */
		0x300000004000ull,              /* the heap's 16 KiB, still not 2 MiB */
		0x7ffffff00000ull,              /* no room for the segment below the top */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *path = tu_path("bad-base.pool");
		struct ckpt_config cfg = { .heap_size = 8 << 20, .max_segments = 2,
			.base = (void *)bad[i] };
		errno = 0;
		ckpt_pool *p = ckpt_create(path, &cfg);
		int e = errno;
		assert_null(p);
		assert_int_equal(e, EINVAL);
		assert_non_null(strstr(ckpt_errormsg(), "base"));
		assert_int_equal(access(path, F_OK), -1);
	}
}

int
main(int argc, char **argv)
{
	/* fork mode copy: these tests are about the segment heap: a full
	 * filesystem met by its stores and copies; auto settles to cow on a new
	 * pool (test_cow*.c), so ask for copy explicitly */
	setenv("CKPT_FORK_MODE", "copy", 1);
	if (argc >= 4 && strcmp(argv[1], "--helper") == 0 && strcmp(argv[2], "open") == 0)
		return helper_open(argv[3]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_path_exists),
		cmocka_unit_test(open_random_bytes),
		cmocka_unit_test(open_empty_file),
		cmocka_unit_test(open_truncated),
		cmocka_unit_test(open_wrong_magic),
		cmocka_unit_test(open_newer_format),
		cmocka_unit_test(open_header_checksum_mismatch),
		cmocka_unit_test(open_base_in_use),
		cmocka_unit_test(open_same_pool_twice),
		cmocka_unit_test(no_free_segment),
		cmocka_unit_test(create_fs_full),
		cmocka_unit_test(alloc_fs_full),
		cmocka_unit_test(open_read_only_mount),
		cmocka_unit_test(open_read_only_file),
		cmocka_unit_test(open_directory),
		cmocka_unit_test(create_size_overflow),
		cmocka_unit_test(create_bad_base),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
