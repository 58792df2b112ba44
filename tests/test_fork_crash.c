/*
 * test_fork_crash.c -- fork under fire (issue 5): SIGKILL at the crash
 * points of fork (testhook.h) leaves a consistent pool whose leftovers are
 * dead and reclaimed; fork while other threads allocate and free in a loop
 * gives children sound heaps.
 *
 * The points, all exercised here:
 *   fork:before-copy        parent's prepare, the child's segment reserved
 *   fork:mid-copy           parent's prepare, after the first chunk of the
 *                           copy into the child's segment (segcopy; 1 MiB
 *                           chunks while armed), more of the heap to come
 *   fork:after-copy         parent's prepare, the segment filled
 *   fork:child-before-claim the child, before it claims its segment
 *   fork:child-ready        the child, its segment claimed
 *
 * The copy into a child's segment is made by the forking process in
 * prepare, before fork() creates the child, so "a child killed mid-copy"
 * (issue 5) is a process killed while copying the heap for its child. It
 * is tested both ways: the forking process is a helper sharing the pool
 * with this process, and the forking process is a fork child of this
 * process (which must go on unaffected).
 *
 * What a kill in the parent's prepare means: the fork has not happened, no
 * child exists, and the process that dies is the forking parent itself,
 * holding the heap locks and a (half-)filled reservation. Its live segment
 * and the reservation must both read dead (the reservation's lease died
 * with it), the pool must verify, other processes using the pool go on,
 * and the space comes back when needed (reservation leftovers first).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_fork_util.h"
#include "layout.h"
#include "pool.h"

#define MIB ((uint64_t)1 << 20)
#define BLOB (3 * MIB)       /* more than one 1 MiB chunk of the armed mid-copy point */

/* helper: open the pool at its latest checkpoint, write, fork (the crash point fires) */
static int
helper_fork_crash(const char *path)
{
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p) {
		fprintf(stderr, "open: %s\n", ckpt_errormsg());
		return 60;
	}
	uint64_t *v = ckpt_root(p);
	v[1] = 77;
	printf("seg %u\n", p->seg);
	fflush(stdout);
	pid_t pid = fork();           /* killed in prepare: never returns */
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		tu_wait_exit(pid);
	return 61;
}

/* a pool with a root of 8 words (v[3]: a 3 MiB blob of 0xB1) and one checkpoint, max_segments n */
static void
make_pool(const char *path, unsigned n)
{
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, n);
	uint64_t *v = ckpt_calloc(p, 8, sizeof(uint64_t));
	v[0] = 42;
	void *blob = ckpt_alloc(p, BLOB);
	assert_non_null(blob);
	memset(blob, 0xB1, BLOB);
	v[3] = (uint64_t)(uintptr_t)blob;
	assert_int_equal(ckpt_set_root(p, v), 0);
	assert_int_equal(ckpt_checkpoint(p, "base", NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
}

/* all_zero -- 1 if buf[0..n) holds only zero bytes */
static int
all_zero(const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (buf[i])
			return 0;
	return 1;
}

/*
 * assert_half_copied -- reservation res holds the first 1 MiB chunk of the
 * heap of segment from and nothing of its next len - 1 MiB, which the
 * heap does hold: the copy was stopped after its first chunk.
 */
static void
assert_half_copied(const char *path, uint32_t res, uint32_t from, uint64_t len)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	uint8_t *r = tu_read_range(path, layout_seg_off(&c.hdr, res), len);
	uint8_t *f = tu_read_range(path, layout_seg_off(&c.hdr, from), len);
	tu_catalog_free(&c);
	assert_memory_equal(r, f, MIB);
	assert_false(all_zero(f + MIB, len - MIB));
	assert_true(all_zero(r + MIB, len - MIB));
	free(r);
	free(f);
}

static void
parent_killed_at(const char *point)
{
	char name[64];
	snprintf(name, sizeof(name), "crash-%s.pool", strchr(point, ':') + 1);
	const char *path = tu_path(name);
	/* 4 segments: checkpoint, a bystander's live heap, the helper's, the reservation */
	make_pool(path, 4);
	ckpt_pool *by = ckpt_open(path, CKPT_LATEST, NULL);    /* bystander (this process) */
	assert_non_null(by);
	uint64_t *bv = ckpt_root(by);

	char env[128], out[256];
	snprintf(env, sizeof(env), "CKPT_TEST_CRASH_AT=%s", point);
	const char *envv[] = { env, NULL };
	int rc = tu_run_helper(out, sizeof(out), envv, "fork-crash", path, (char *)NULL);
	assert_int_equal(rc, 128 + SIGKILL);
	unsigned hseg;
	assert_int_equal(sscanf(out, "seg %u", &hseg), 1);

	/* consistent: catalog valid, the helper's heap and its reservation dead */
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_FREE), 0);
	int res = -1;
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_BUSY) {
			assert_true(c.e[i].flags & CAT_F_FORK_PENDING);
			assert_int_equal(c.e[i].parent, hseg);
			res = (int)i;
		}
	tu_catalog_free(&c);
	assert_true(res >= 0);
	assert_string_equal(fk_state_name(path, hseg), "dead");
	assert_string_equal(fk_state_name(path, (uint32_t)res), "dead");
	assert_string_equal(fk_state_name(path, by->seg), "live");
	if (strcmp(point, "fork:mid-copy") == 0)
		assert_half_copied(path, (uint32_t)res, hseg, 4 * MIB);
	tu_inspect_verify(path);

	/* the bystander goes on: its fork reclaims the reservation leftover first */
	bv[2] = 5;
	pid_t pid = tu_fork();
	if (pid == 0)
		_exit(by->detached ? 1 : fk_entry_of(path, getpid(), NULL) == res ? 0 : 2);
	assert_int_equal(tu_wait_exit(pid), 0);
	/* and a later open restarts from the checkpoint, unharmed */
	assert_int_equal(ckpt_close(by), 0);
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	assert_int_equal(((uint64_t *)ckpt_root(p))[0], 42);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

static void
test_parent_killed_before_copy(void **state)
{
	(void)state;
	parent_killed_at("fork:before-copy");
}

static void
test_parent_killed_mid_copy(void **state)
{
	(void)state;
	parent_killed_at("fork:mid-copy");
}

static void
test_parent_killed_after_copy(void **state)
{
	(void)state;
	parent_killed_at("fork:after-copy");
}

/*
 * A child of this process killed mid-copy: the child C forks a grandchild,
 * and is killed in its prepare with the first 1 MiB chunk of its heap
 * copied into the grandchild's segment. This process (C's parent) is
 * unaffected: its heap is intact and it checkpoints and forks on the same
 * pool, whose three segments (ours, C's, C's half-filled reservation) are
 * all taken, so both calls must reclaim C's dead leftovers.
 */
static void
test_child_killed_mid_copy(void **state)
{
	(void)state;
	const char *path = tu_path("child-mid-copy.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 3);
	uint64_t *v = ckpt_calloc(p, 8, sizeof(uint64_t));
	assert_non_null(v);
	assert_int_equal(ckpt_set_root(p, v), 0);
	uint8_t *blob = ckpt_alloc(p, BLOB);
	assert_non_null(blob);
	memset(blob, 'T', BLOB);
	v[0] = 42;

	pid_t c = tu_fork();
	assert_true(c >= 0);
	if (c == 0) {
		if (p->detached)
			_exit(1);
		memset(blob, 'C', MIB);     /* C's own write, in C's heap only */
		v[1] = 7;
		setenv("CKPT_TEST_CRASH_AT", "fork:mid-copy", 1);
		pid_t g = fork();           /* C dies in prepare, mid-copy */
		if (g == 0)
			_exit(0);
		_exit(2);
	}
	assert_int_equal(tu_wait_exit(c), 128 + SIGKILL);

	/* the parent: unaffected */
	assert_int_equal(v[0], 42);
	assert_int_equal(v[1], 0);
	for (size_t i = 0; i < BLOB; i++)
		if (blob[i] != 'T')
			fail_msg("parent heap byte %zu changed to 0x%x", i, blob[i]);

	/* C's segment and its half-filled reservation: dead, nothing free */
	struct tu_catalog cat;
	tu_catalog_read(path, &cat);
	assert_int_equal(tu_catalog_count(&cat, CAT_FREE), 0);
	int cseg = -1, res = -1;
	for (uint32_t i = 0; i < cat.n; i++) {
		if (cat.e[i].state == CAT_LIVE && cat.e[i].owner.pid == c)
			cseg = (int)i;
		if (cat.e[i].state == CAT_BUSY && (cat.e[i].flags & CAT_F_FORK_PENDING))
			res = (int)i;
	}
	tu_catalog_free(&cat);
	assert_true(cseg >= 0 && res >= 0);
	assert_int_equal(fk_entry_of(path, c, NULL), cseg);
	assert_string_equal(fk_state_name(path, (uint32_t)cseg), "dead");
	assert_string_equal(fk_state_name(path, (uint32_t)res), "dead");
	assert_string_equal(fk_state_name(path, p->seg), "live");
	assert_half_copied(path, (uint32_t)res, (uint32_t)cseg, 4 * MIB);
	tu_inspect_verify(path);

	/* it checkpoints (reclaiming a dead segment) ... */
	v[2] = 3;
	assert_int_equal(ckpt_persist(p, v, 64), 0);
	ckpt_id id;
	if (ckpt_checkpoint(p, "after", &id) != 0)
		fail_msg("checkpoint after the child's crash: %s", ckpt_errormsg());
	size_t len;
	void *h = fk_read_ckpt(path, id, &len, NULL);
	void *base = fk_base(path);
	const uint64_t *hv = fk_at(h, len, base, v);
	assert_int_equal(hv[0], 42);
	assert_int_equal(hv[1], 0);
	assert_int_equal(hv[2], 3);
	const uint8_t *hb = fk_at(h, len, base, blob);
	for (size_t i = 0; i < BLOB; i++)
		if (hb[i] != 'T')
			fail_msg("checkpoint byte %zu of the blob is 0x%x", i, hb[i]);
	inspect_free_heap(h, len);
	tu_inspect_verify(path);

	/* ... and forks (reclaiming the other): the child gets a real segment */
	pid_t pid = tu_fork();
	if (pid == 0) {
		int bad = p->detached || fk_entry_of(path, getpid(), NULL) < 0;
		for (size_t i = 0; i < BLOB; i++)
			bad |= blob[i] != 'T';
		_exit(bad | (ckpt_close(p) == 0 ? 0 : 2));
	}
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);

	/* and the pool opens at that checkpoint */
	p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p)
		fail_msg("open after the crash: %s", ckpt_errormsg());
	v = ckpt_root(p);
	assert_int_equal(v[0], 42);
	assert_int_equal(v[2], 3);
	assert_int_equal(((uint8_t *)blob)[BLOB - 1], 'T');
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

/*
 * The child killed right after fork: before it claims its reservation, and
 * once it has (fork:child-ready). The parent goes on unaffected and the
 * pool, which has exactly one spare segment, gets it back for the next fork.
 */
static void
child_killed_at(const char *point)
{
	char name[64];
	snprintf(name, sizeof(name), "child-%s.pool", strchr(point, ':') + 1);
	const char *path = tu_path(name);
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 2);
	uint64_t *v = ckpt_calloc(p, 4, sizeof(uint64_t));
	v[0] = 1;
	setenv("CKPT_TEST_CRASH_AT", point, 1);
	pid_t pid = tu_fork();
	if (pid == 0)
		_exit(0);               /* not reached: the crash point kills the child */
	unsetenv("CKPT_TEST_CRASH_AT");
	assert_int_equal(tu_wait_exit(pid), 128 + SIGKILL);
	assert_int_equal(v[0], 1);
	/* the spare segment: free again (the parent gave an orphaned
	 * reservation back) or dead; never live, never busy-and-held */
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	uint32_t spare = p->seg == 0 ? 1 : 0;
	uint32_t st = c.e[spare].state;
	tu_catalog_free(&c);
	if (st != CAT_FREE)
		assert_string_equal(fk_state_name(path, spare), "dead");
	tu_inspect_verify(path);
	/* the next fork gets that segment, a real one */
	pid = tu_fork();
	if (pid == 0)
		_exit(!p->detached && fk_entry_of(path, getpid(), NULL) == (int)spare ? 0 : 1);
	assert_int_equal(tu_wait_exit(pid), 0);
	v[1] = 2;
	assert_int_equal(ckpt_persist(p, v, 32), 0);
	assert_int_equal(ckpt_close(p), 0);
}

static void
test_child_killed_before_claim(void **state)
{
	(void)state;
	child_killed_at("fork:child-before-claim");
}

static void
test_child_killed_when_ready(void **state)
{
	(void)state;
	child_killed_at("fork:child-ready");
}

/* -- fork while other threads allocate and free ---------------------------- */

#define NTHREADS 3
#define RING 64

static ckpt_pool *tpool;
static _Atomic int tstop;
static uint8_t *_Atomic ring[NTHREADS][RING];   /* published blocks, filled with a pattern */

static size_t
blk_size(unsigned t, unsigned i)
{
	static const size_t sizes[] = { 16, 48, 200, 1000, 4096, 20000, 70000, 300000 };
	return sizes[(t * 7 + i) % 8];
}

static uint8_t
blk_byte(unsigned t, unsigned i)
{
	return (uint8_t)(0x11 * (t + 1) + i);
}

static void *
churn(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	unsigned n = 0;
	while (!atomic_load(&tstop)) {
		unsigned i = n++ % RING;
		uint8_t *old = atomic_exchange(&ring[t][i], NULL);
		if (old)
			ckpt_free(tpool, old);
		size_t sz = blk_size(t, i);
		uint8_t *b = ckpt_alloc(tpool, sz);
		if (!b)
			continue;
		memset(b, blk_byte(t, i), sz);
		atomic_store(&ring[t][i], b);
	}
	return NULL;
}

/*
 * in the child: the heap is sound (heap_check on its own segment) and every
 * block the parent's threads had published is a live block of it (it was
 * allocated before prepare stopped the allocator). The blocks' contents are
 * not checked: like ckpt_checkpoint, fork copies the heap while other
 * threads may still store into their blocks (only allocator calls are
 * stopped), so a store made during fork may or may not be in the child.
 */
static int
child_check(void)
{
	int bad = 0;
	if (heap_check(tpool->heap_map.addr, tpool->hdr.seg_size, NULL) < 0) {
		fprintf(stderr, "child heap_check: %s\n", ckpt_errormsg());
		bad |= 1;
	}
	for (unsigned t = 0; t < NTHREADS; t++)
		for (unsigned i = 0; i < RING; i++) {
			uint8_t *b = atomic_load(&ring[t][i]);
			if (b && ckpt_usable_size(tpool, b) < blk_size(t, i))
				bad |= 2;
		}
	/* the allocator works in the child: the dead threads' records were released */
	for (unsigned t = 0; t < NTHREADS; t++)
		for (unsigned i = 0; i < RING; i++) {
			uint8_t *b = atomic_load(&ring[t][i]);
			if (b)
				ckpt_free(tpool, b);
		}
	for (int k = 0; k < 1000; k++) {
		void *x = ckpt_alloc(tpool, 16 + (size_t)k * 8);
		if (!x)
			bad |= 8;
		ckpt_free(tpool, x);
	}
	if (heap_check(tpool->heap_map.addr, tpool->hdr.seg_size, NULL) < 0)
		bad |= 16;
	ckpt_id id;
	if (ckpt_checkpoint(tpool, "threads", &id) < 0)
		bad |= 32;
	return bad;
}

static void
test_fork_while_threads_allocate(void **state)
{
	(void)state;
	const char *path = tu_path("threads.pool");
	struct ckpt_config c = { .heap_size = 64 << 20, .max_segments = 16,
		.fork_mode = CKPT_FORK_COPY, .keep_checkpoints = 1 };
	unlink(path);
	tpool = ckpt_create(path, &c);
	assert_non_null(tpool);
	atomic_store(&tstop, 0);
	pthread_t th[NTHREADS];
	for (unsigned t = 0; t < NTHREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, churn, (void *)(uintptr_t)t), 0);
	const char *scale = getenv("CKPT_TEST_SCALE");
	int rounds = scale && strcmp(scale, "small") == 0 ? 4 : 12;
	for (int r = 0; r < rounds; r++) {
		usleep(20000);          /* let the threads run: not a timing assertion */
		pid_t pid = tu_fork();
		if (pid == 0) {
			int bad = child_check();
			_exit(bad | (ckpt_close(tpool) == 0 ? 0 : 64));
		}
		assert_true(pid > 0);
		assert_int_equal(tu_wait_exit(pid), 0);
	}
	atomic_store(&tstop, 1);
	for (unsigned t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(heap_check(tpool->heap_map.addr, tpool->hdr.seg_size, NULL), 0);
	/* the children's checkpoints are sound heaps too */
	struct tu_catalog cat;
	tu_catalog_read(path, &cat);
	unsigned n = 0;
	for (uint32_t i = 0; i < cat.n; i++)
		if (cat.e[i].state == CAT_CKPT) {
			size_t len;
			void *h = fk_read_ckpt(path, cat.e[i].ckpt_id, &len, NULL);
			inspect_free_heap(h, len);
			n++;
		}
	tu_catalog_free(&cat);
	assert_true(n >= 1);
	memset(ring, 0, sizeof(ring));
	assert_int_equal(ckpt_close(tpool), 0);
	tu_inspect_verify(path);
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--helper") == 0 && strcmp(argv[2], "fork-crash") == 0)
		return helper_fork_crash(argv[3]);
	unsetenv("CKPT_FORK_MODE");
	unsetenv("CKPT_TEST_CRASH_AT");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parent_killed_before_copy),
		cmocka_unit_test(test_parent_killed_mid_copy),
		cmocka_unit_test(test_parent_killed_after_copy),
		cmocka_unit_test(test_child_killed_mid_copy),
		cmocka_unit_test(test_child_killed_before_claim),
		cmocka_unit_test(test_child_killed_when_ready),
		cmocka_unit_test(test_fork_while_threads_allocate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
