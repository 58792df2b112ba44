/*
 * test_lazy_util.h -- what the lazy restart tests (test_lazy.c: cow mode,
 * test_seal_lazy.c: sealed pools) share: a heap of three 5 MiB blocks (A,
 * B, C, chunks of their own) filled with a known pattern, restarts run in
 * forked children with an environment of their own, and the children that
 * read (the kernel too), touch a damaged chunk, fork and checkpoint in the
 * middle of a fill.
 *
 * The including file defines, before including this one:
 *   static struct ckpt_config lazy_cfg(void);      its pools' config
 *   static int lazy_fill_on(const ckpt_pool *p);   1 while p's restart fill is lazy
 * Children never assert: they return a status (0 or 20 fine, 10.. what failed).
 */
#ifndef TEST_LAZY_UTIL_H
#define TEST_LAZY_UTIL_H 1

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libckpt.h"
#include "testutil.h"
#include "layout.h"
#include "engine/lazy.h"

#ifndef MiB
#define MiB ((uint64_t)1 << 20)
#endif
#define BLOCK (5 * MiB)

/* the root: three blocks and the seed of each one's pattern */
struct root {
	uint64_t seed[3];
	unsigned char *blk[3];
};

/* pattern -- byte i of block b under seed */
static unsigned char
pattern(uint64_t seed, int b, size_t i)
{
	return (unsigned char)((i * 131 + (size_t)b * 7 + seed) ^ (i >> 12));
}

/* block_ok -- 1 if block b of r holds its pattern */
static int
block_ok(const struct root *r, int b)
{
	for (size_t i = 0; i < BLOCK; i++)
		if (r->blk[b][i] != pattern(r->seed[b], b, i))
			return 0;
	return 1;
}

/* rewrite_block -- give block b of r a new seed and write its pattern */
static void
rewrite_block(struct root *r, int b)
{
	r->seed[b]++;
	for (size_t i = 0; i < BLOCK; i++)
		r->blk[b][i] = pattern(r->seed[b], b, i);
}

/* seg_of -- the segment offset of checkpoint id in path */
static uint64_t
seg_of(const char *path, ckpt_id id)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	uint64_t off = 0;
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_CKPT && c.e[i].ckpt_id == id)
			off = layout_seg_off(&c.hdr, i);
	tu_catalog_free(&c);
	assert_true(off != 0);
	return off;
}

/* make_pool -- a pool at path with A, B and C filled; its checkpoint id */
static ckpt_id
make_pool(const char *path, uint64_t seed)
{
	unlink(path);
	struct ckpt_config c = lazy_cfg();
	ckpt_pool *p = ckpt_create(path, &c);
	assert_non_null(p);
	struct root *r = ckpt_alloc(p, sizeof(*r));
	assert_non_null(r);
	for (int b = 0; b < 3; b++) {
		r->seed[b] = seed;
		r->blk[b] = ckpt_alloc(p, BLOCK);
		assert_non_null(r->blk[b]);
		for (size_t i = 0; i < BLOCK; i++)
			r->blk[b][i] = pattern(seed, b, i);
	}
	assert_int_equal(ckpt_set_root(p, r), 0);
	ckpt_id id;
	assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);
	assert_int_equal(ckpt_close(p), 0);
	return id;
}

/* lazy_possible -- 1 if this process may take kernel faults with a userfaultfd */
static int
lazy_possible(void)
{
	int fd = lazy_open();
	if (fd < 0) {
		print_message("lazy restart impossible here (%s): skipped\n", ckpt_errormsg());
		return 0;
	}
	close(fd);
	return 1;
}

/* in_child -- run fn in a forked child with env set ("N=V"; "N" unsets); its status */
static int
in_child(int (*fn)(const char *), const char *path, const char *const *env,
		const char *errfile)
{
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (; env && *env; env++) {
			const char *eq = strchr(*env, '=');
			if (eq) {
				char name[64];
				snprintf(name, sizeof(name), "%.*s", (int)(eq - *env), *env);
				setenv(name, eq + 1, 1);
			} else {
				unsetenv(*env);
			}
		}
		if (errfile) {
			int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 || dup2(fd, 2) < 0)
				_exit(90);
			close(fd);
		}
		_exit(fn(path));
	}
	return tu_wait_exit(pid);
}

/* open_lazy -- open latest; NULL (and a message) unless the fill is lazy */
static ckpt_pool *
open_lazy(const char *path)
{
	struct ckpt_config c = lazy_cfg();
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &c);
	if (!p) {
		fprintf(stderr, "open: %s\n", ckpt_errormsg());
		return NULL;
	}
	if (!lazy_fill_on(p)) {
		fprintf(stderr, "the restart was not lazy\n");
		ckpt_close(p);
		return NULL;
	}
	return p;
}

/* child_all_ok -- open latest and check every block, C first; 20 if the restart was lazy */
static int
child_all_ok(const char *path)
{
	struct ckpt_config c = lazy_cfg();
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &c);
	if (!p) {
		printf("open: %s\n", ckpt_errormsg());
		return 10;
	}
	int lazy = lazy_fill_on(p);
	struct root *r = ckpt_root(p);
	for (int b = 2; b >= 0; b--)        /* backwards: not the prefetch's order */
		if (!block_ok(r, b))
			return 11 + b;
	if (ckpt_close(p) != 0)
		return 15;
	return lazy ? 20 : 0;
}

/* child_fork_mid_fill -- fork while most chunks are holes; both sides read every block */
static int
child_fork_mid_fill(const char *path)
{
	ckpt_pool *p = open_lazy(path);
	if (!p)
		return 10;
	struct root *r = ckpt_root(p);
	pid_t pid = fork();
	if (pid < 0)
		return 11;
	if (pid == 0) {
		/* the child's heap is the checkpoint's, not holes (it has no fill thread) */
		for (int b = 0; b < 3; b++)
			if (!block_ok(r, b))
				_exit(30 + b);
		_exit(0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 12;
	for (int b = 0; b < 3; b++)
		if (!block_ok(r, b))
			return 13;
	return ckpt_close(p) == 0 ? 0 : 14;
}

/* child_checkpoint_mid_fill -- rewrite A, checkpoint while B and C are holes */
static int
child_checkpoint_mid_fill(const char *path)
{
	ckpt_pool *p = open_lazy(path);
	if (!p)
		return 10;
	struct root *r = ckpt_root(p);
	rewrite_block(r, 0);
	if (ckpt_checkpoint(p, NULL, NULL) != 0)
		return 11;
	return ckpt_close(p) == 0 ? 0 : 12;
}

/* child_checkpoint_untouched -- a checkpoint right after a lazy restart */
static int
child_checkpoint_untouched(const char *path)
{
	ckpt_pool *p = open_lazy(path);
	if (!p)
		return 10;
	if (ckpt_checkpoint(p, NULL, NULL) != 0)
		return 11;
	return ckpt_close(p) == 0 ? 0 : 12;
}

/* child_kernel_io -- the kernel reads and writes holes right after a restart */
static int
child_kernel_io(const char *path)
{
	ckpt_pool *p = open_lazy(path);
	if (!p)
		return 10;
	struct root *r = ckpt_root(p);     /* its chunk arrives: the first fault */
	/* write(2) from A (a hole): the kernel's read of the heap waits for it */
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.a", path);
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, r->blk[0], BLOCK) != (ssize_t)BLOCK)
		return 11;
	unsigned char *back = malloc(BLOCK);
	if (!back || pread(fd, back, BLOCK, 0) != (ssize_t)BLOCK)
		return 12;
	for (size_t i = 0; i < BLOCK; i++)
		if (back[i] != pattern(r->seed[0], 0, i))
			return 13;
	/* read(2) into B (a hole): the kernel's write into the heap waits too;
	 * the file holds A's pattern, so B now holds it */
	if (pread(fd, r->blk[1], BLOCK, 0) != (ssize_t)BLOCK)
		return 14;
	if (memcmp(r->blk[1], back, BLOCK) != 0)
		return 15;
	for (size_t i = 0; i < BLOCK; i++)
		r->blk[1][i] = pattern(r->seed[1], 1, i);     /* back as it was */
	close(fd);
	/* O_DIRECT pread into C (a hole), page-aligned within the block */
	fd = open(tmp, O_RDONLY | O_DIRECT);
	if (fd >= 0) {
		unsigned char *dst = (unsigned char *)(((uintptr_t)r->blk[2] + 4095) & ~(uintptr_t)4095);
		if (pread(fd, dst, 1 * MiB, 0) != (ssize_t)(1 * MiB))
			return 16;
		if (memcmp(dst, back, 1 * MiB) != 0)
			return 17;
		/* the rest of C is the checkpoint's */
		size_t skip = (size_t)(dst - r->blk[2]) + 1 * MiB;
		for (size_t i = skip; i < BLOCK; i++)
			if (r->blk[2][i] != pattern(r->seed[2], 2, i))
				return 18;
		close(fd);
	}
	unlink(tmp);
	free(back);
	return ckpt_close(p) == 0 ? 0 : 19;
}

/* child_damaged -- A and B read right, then the first touch of C */
static int
child_damaged(const char *path)
{
	ckpt_pool *p = open_lazy(path);
	if (!p)
		return 10;
	struct root *r = ckpt_root(p);
	if (!block_ok(r, 0) || !block_ok(r, 1))
		return 11;
	volatile unsigned char x = r->blk[2][BLOCK / 2];   /* SIGBUS */
	(void)x;
	return 12;
}

/*
 * mid_fill_checks -- with env (no prefetch): a fork mid-fill, a checkpoint
 * of an untouched lazy heap and one of a heap with A rewritten mid-fill;
 * each new checkpoint reads right, lazily and eagerly, and verifies
 */
static void
mid_fill_checks(const char *path, const char *const *env)
{
	assert_int_equal(in_child(child_fork_mid_fill, path, env, NULL), 0);
	assert_int_equal(in_child(child_checkpoint_untouched, path, env, NULL), 0);
	assert_int_equal(in_child(child_all_ok, path, env, NULL), 20);
	assert_int_equal(in_child(child_checkpoint_mid_fill, path, env, NULL), 0);
	const char *eager[] = { "CKPT_RESTART=eager", NULL };
	assert_int_equal(in_child(child_all_ok, path, eager, NULL), 0);
	tu_inspect_verify(path);
}

#endif
