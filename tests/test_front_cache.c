/*
 * test_front_cache.c -- the heap's per-thread front caches (docs/HEAP.md,
 * "Front cache") seen through a pool, in real processes: blocks a thread
 * has just freed sit in a DRAM cache of its own, allocated as far as the
 * segment says, until a quiesce drains them.
 *
 *  - a checkpoint taken with blocks cached holds them free: a new process
 *    restarted from it finds every freed block not allocated, every live
 *    one intact, hands out no live block, and ckpt-inspect verifies it;
 *  - a fork with blocks cached: parent and child each find the freed blocks
 *    free (a second free fails with ENOENT), the live ones intact, and
 *    allocate without overlapping a live block; the child's checkpoint
 *    verifies;
 *  - kill -9 between checkpoints in fork mode copy (the live segment is the
 *    durable heap) with blocks cached: the dead heap walks and validates
 *    (ckpt-inspect verify --strict walks dead heaps and fails on any error).
 *
 * The state: a root array of N pointers to blocks (each stamped with its
 * index), half of 16..256 bytes, half of 513 bytes..20 KiB (the classes on
 * one-page slabs up to 512 B, and the larger ones, up to 2-page slabs,
 * whose caches hold fewer blocks), every other one freed by the same
 * thread just before the quiesce, so that up to each class's capacity
 * (64 blocks up to 512 B, 32 KiB worth above) is in its cache.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "libckpt.h"

#define N 512
#define MiB (1024ull * 1024)

struct state {
	uint64_t n;
	char *blk[N];         /* blk[i]: live for odd i, freed for even i */
	size_t size[N];
};

/* blk_size -- the request size of block i: freed (even) and live (odd) ones of
 * both kinds, i & 2 picking a class above 512 B */
static size_t
blk_size(unsigned i)
{
	return i & 2 ? 513 + (i * 997) % 20000 : 16 + (i * 37) % 241;
}

/* make_state -- the root: N blocks, stamped; every even one freed (most cached) */
static struct state *
make_state(ckpt_pool *p)
{
	struct state *st = ckpt_calloc(p, 1, sizeof(*st));
	assert_non_null(st);
	assert_int_equal(ckpt_set_root(p, st), 0);
	st->n = N;
	for (unsigned i = 0; i < N; i++) {
		st->size[i] = blk_size(i);
		st->blk[i] = ckpt_alloc(p, st->size[i]);
		assert_non_null(st->blk[i]);
		memset(st->blk[i], (int)(i & 0xff), st->size[i]);
	}
	for (unsigned i = 0; i < N; i += 2)
		ckpt_free(p, st->blk[i]);
	return st;
}

/* freed_errno -- errno and the message say the block just asked about is not allocated */
static int
freed_errno(void)
{
	return errno == ENOENT || (errno == EINVAL && strstr(ckpt_errormsg(), "free heap space"));
}

/*
 * check_state -- in the process holding the heap now: freed blocks are not
 * allocated (a second free fails with ENOENT when do_free), live ones are
 * intact, and 4*N new blocks overlap no live block. Returns 0 or a code.
 */
static int
check_state(ckpt_pool *p, int do_free)
{
	struct state *st = ckpt_root(p);
	if (!st || st->n != N)
		return 1;
	for (unsigned i = 0; i < N; i++) {
		if (i % 2 == 0) {
			/* not allocated: ENOENT, or EINVAL once its slab's last block
			 * was freed and its pages went back (free heap space) */
			if (ckpt_usable_size(p, st->blk[i]) != 0 || !freed_errno())
				return 2;
			errno = 0;
			if (do_free && (ckpt_free(p, st->blk[i]), !freed_errno()))
				return 3;
			continue;
		}
		if (ckpt_usable_size(p, st->blk[i]) < st->size[i])
			return 4;
		for (size_t j = 0; j < st->size[i]; j++)
			if ((unsigned char)st->blk[i][j] != (i & 0xff))
				return 5;
	}
	for (unsigned k = 0; k < 4 * N; k++) {
		char *q = ckpt_alloc(p, blk_size(k));
		if (!q)
			return 6;
		for (unsigned i = 1; i < N; i += 2)
			if (q < st->blk[i] + st->size[i] && st->blk[i] < q + blk_size(k))
				return 7;
		memset(q, 0xee, blk_size(k));
	}
	return 0;
}

/* inspect -- run ckpt-inspect with args (NULL-terminated); exit status, output in out */
static int
inspect(char *out, size_t outlen, const char *a1, const char *a2, const char *a3)
{
	const char *bindir = getenv("CKPT_TEST_BINDIR");
	if (!bindir)
		fail_msg("CKPT_TEST_BINDIR is not set: run the test with ctest");
	char tool[1024];
	snprintf(tool, sizeof(tool), "%s/tools/ckpt-inspect", bindir);
	char *const argv[] = { tool, (char *)a1, (char *)a2, (char *)a3,
		(char *)"--no-progress", NULL };
	return tu_run_capture(out, outlen, argv);
}

/* new_pool -- a pool of 64 MiB heaps in fork mode copy */
static ckpt_pool *
new_pool(const char *path)
{
	struct ckpt_config cfg = { .heap_size = 64 * MiB, .max_segments = 16,
		.fork_mode = CKPT_FORK_COPY };
	unlink(path);
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p)
		fail_msg("create %s: %s", path, ckpt_errormsg());
	return p;
}

/* test_checkpoint_with_cached_blocks -- restart from a checkpoint taken with blocks cached */
static void
test_checkpoint_with_cached_blocks(void **state)
{
	(void)state;
	const char *path = tu_path("tc-ckpt.pool");
	ckpt_pool *p = new_pool(path);
	make_state(p);
	ckpt_id id;
	assert_int_equal(ckpt_checkpoint(p, "cached", &id), 0);
	/* the process goes on (its caches refill); the checkpoint stays as taken */
	assert_int_equal(check_state(p, 0), 0);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
	pid_t pid = tu_fork();
	if (pid == 0) {
		ckpt_pool *q = ckpt_open(path, id, NULL);
		_exit(q ? 10 + check_state(q, 1) + (ckpt_close(q) != 0) * 20 : 9);
	}
	assert_int_equal(tu_wait_exit(pid), 10);
}

/* test_fork_with_cached_blocks -- parent and child after a fork with blocks cached */
static void
test_fork_with_cached_blocks(void **state)
{
	(void)state;
	const char *path = tu_path("tc-fork.pool");
	ckpt_pool *p = new_pool(path);
	make_state(p);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = check_state(p, 1);
		if (rc == 0 && ckpt_checkpoint(p, "child", NULL) != 0)
			rc = 8;
		_exit(10 + rc + (ckpt_close(p) != 0) * 20);
	}
	assert_int_equal(check_state(p, 1), 0);
	assert_int_equal(tu_wait_exit(pid), 10);
	assert_int_equal(ckpt_checkpoint(p, "parent", NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

/* test_kill_with_cached_blocks -- kill -9 in copy mode with blocks cached: the dead heap verifies */
static void
test_kill_with_cached_blocks(void **state)
{
	(void)state;
	const char *path = tu_path("tc-kill.pool");
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = tu_fork();
	if (pid == 0) {
		close(fds[0]);
		ckpt_pool *p = new_pool(path);
		make_state(p);
		if (ckpt_checkpoint(p, "before", NULL) != 0)
			_exit(1);
		/* after the checkpoint: more blocks, freed into the caches again */
		struct state *st = ckpt_root(p);
		for (unsigned i = 0; i < N; i += 2)
			st->blk[i] = ckpt_alloc(p, st->size[i]);
		for (unsigned i = 0; i < N; i += 2)
			ckpt_free(p, st->blk[i]);
		if (ckpt_persist(p, st, sizeof(*st)) != 0)
			_exit(2);
		if (write(fds[1], "r", 1) != 1)
			_exit(3);
		pause();
		_exit(4);
	}
	close(fds[1]);
	char c;
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	kill(pid, SIGKILL);
	assert_int_equal(tu_wait_exit(pid), 128 + SIGKILL);
	char out[8192];
	int rc = inspect(out, sizeof(out), "list", path, NULL);
	if (rc != 0 || !strstr(out, "dead"))
		fail_msg("ckpt-inspect list exited %d, no dead heap listed:\n%s", rc, out);
	rc = inspect(out, sizeof(out), "verify", path, "--strict");
	if (rc != 0)
		fail_msg("ckpt-inspect verify --strict exited %d:\n%s", rc, out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpoint_with_cached_blocks),
		cmocka_unit_test(test_fork_with_cached_blocks),
		cmocka_unit_test(test_kill_with_cached_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
