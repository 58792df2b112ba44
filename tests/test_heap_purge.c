/*
 * test_heap_purge.c -- the heap gives the memory of long free page runs
 * back (heap/purge.c, docs/HEAP.md "Purge"), in every kind of live heap:
 * fork mode copy (a shared mapping of the pool file: a hole is punched),
 * fork mode cow (a private image: the process's copies are dropped and the
 * pages read as the image again, stale bytes) and a sealed pool (private
 * anonymous memory).
 *
 * For each: a 16 MiB block is written and freed; the heap's resident
 * memory (Rss of its mapping in /proc/self/smaps) drops by most of it, and
 * in copy mode so do the pool file's allocated blocks. Without the purge
 * neither moves. Then the freed run is used again (backed again first) and
 * checked, calloc memory reads zero over the stale image bytes, and
 * checkpoints taken before and after the purge restart in the same
 * process with every live byte intact, and verify with ckpt-inspect. A
 * fork child (copy and cow) purges its own heap while the parent's block
 * stays intact. A cow or sealed restart that fills its heap lazily does
 * not purge until the fill is settled by a checkpoint.
 *
 * The delay: with CKPT_PURGE_DELAY_MS a freed run is not given back by the
 * free, nor when it is reused at once, only by a page-level operation
 * after the delay (the test sleeps past two periods: no timed assertion). With
 * CKPT_PURGE_MIN=off nothing is given back. A malformed setting fails
 * ckpt_create with EINVAL and a message naming the variable, and leaves no
 * pool behind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "libckpt.h"
#include "pool.h"
#include "engine/image.h"

#define MiB (1024ull * 1024)
#define HEAP (64 * MiB)
#define BIG big_bytes()
#define SMALL (1 * MiB)

/* big_bytes -- the freed block: 16 MiB, 4 MiB under valgrind (CKPT_TEST_SCALE=small) */
static uint64_t
big_bytes(void)
{
	const char *s = getenv("CKPT_TEST_SCALE");
	return s && !strcmp(s, "small") ? 4 * MiB : 16 * MiB;
}

struct rec {
	char *a;              /* SMALL bytes of pattern 1 */
	char *b;              /* BIG bytes of pattern b_seed, or NULL */
	uint64_t b_seed;
};

/* fill -- pattern seed over n bytes */
static void
fill(char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
		memcpy(p + i, &v, 8);
	}
}

/* same -- 1 if p holds pattern seed */
static int
same(const char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed, w;
		memcpy(&w, p + i, 8);
		if (v != w)
			return 0;
	}
	return 1;
}

/* heap_rss -- resident bytes of the mappings inside p's heap range */
static uint64_t
heap_rss(ckpt_pool *p)
{
	uintptr_t lo = (uintptr_t)p->hdr.base, hi = lo + p->hdr.seg_size;
	FILE *f = fopen("/proc/self/smaps", "r");
	assert_non_null(f);
	char line[512];
	int in = 0;
	uint64_t kb = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b, v;
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = a >= lo && b <= hi;
		else if (in && sscanf(line, "Rss: %lu kB", &v) == 1)
			kb += v;
	}
	fclose(f);
	return kb * 1024;
}

/* file_bytes -- bytes of disk (or tmpfs memory) the file at path holds */
static uint64_t
file_bytes(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* purged -- bytes p's heap gave back since it was attached */
static uint64_t
purged(ckpt_pool *p)
{
	return heap_purged_bytes(p->heap);
}

/* filling -- 1 while a lazy fill of p's heap is under way */
static int
filling(ckpt_pool *p)
{
	return p->fill || (p->eng && p->eng->lazy);
}

struct mode {
	const char *name;
	enum ckpt_fork_mode fm;
	int sealed;
};

/* config_of -- the pool config of mode m */
static struct ckpt_config
config_of(const struct mode *m)
{
	struct ckpt_config c = { .heap_size = HEAP, .max_segments = 8, .fork_mode = m->fm,
		.keep_checkpoints = 4 };
	if (m->sealed) {
		char hex[66];
		for (unsigned i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", (unsigned char)(i * 7 + 1));
		hex[64] = '\n';
		tu_write_file(tu_path("key"), hex, 65);
		c.key_file = tu_path("key");
		c.fork_mode = CKPT_FORK_AUTO;
	}
	return c;
}

/* free_big -- free r->b (written just before) and check that its memory went back */
static void
free_big(ckpt_pool *p, struct rec *r, int copy_mode, const char *path)
{
	uint64_t r1 = heap_rss(p), f1 = copy_mode ? file_bytes(path) : 0, g1 = purged(p);
	assert_true(r1 >= BIG);
	ckpt_free(p, r->b);
	r->b = NULL;
	uint64_t r2 = heap_rss(p), f2 = copy_mode ? file_bytes(path) : 0;
	if (purged(p) < g1 + BIG - MiB || r2 + BIG * 3 / 4 > r1 || (copy_mode && f2 + BIG * 3 / 4 > f1))
		fail_msg("freeing %llu KiB gave back %llu KiB: heap resident %llu -> %llu KiB, "
				"file %llu -> %llu KiB", BIG >> 10,
				(unsigned long long)((purged(p) - g1) >> 10),
				(unsigned long long)r1 >> 10, (unsigned long long)r2 >> 10,
				(unsigned long long)f1 >> 10, (unsigned long long)f2 >> 10);
}

/* fork_child_purges -- a fork child frees and purges the big block; the parent's stays */
static void
fork_child_purges(ckpt_pool *p, struct rec *r)
{
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int ok = same(r->b, BIG, r->b_seed);    /* also makes it resident */
		uint64_t g = purged(p), r1 = heap_rss(p);
		ckpt_free(p, r->b);
		ok = ok && purged(p) >= g + BIG - MiB && heap_rss(p) + BIG * 3 / 4 <= r1;
		char *c = ckpt_alloc(p, BIG);     /* the run again, written */
		ok = ok && c;
		if (c) {
			fill(c, BIG, 99);
			ok = ok && same(c, BIG, 99) && same(r->a, SMALL, 1);
		}
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_true(same(r->b, BIG, r->b_seed));
	assert_true(same(r->a, SMALL, 1));
}

/* reopen -- open path at id in this process; its root, checked */
static ckpt_pool *
reopen(const char *path, ckpt_id id, const struct ckpt_config *c, struct rec **r)
{
	ckpt_pool *p = ckpt_open(path, id, c);
	if (!p)
		fail_msg("ckpt_open(%" PRIu64 "): %s", id, ckpt_errormsg());
	*r = ckpt_root(p);
	assert_non_null(*r);
	assert_true(same((*r)->a, SMALL, 1));
	if ((*r)->b)
		assert_true(same((*r)->b, BIG, (*r)->b_seed));
	return p;
}

/* run_mode -- the whole scenario in mode m */
static void
run_mode(const struct mode *m)
{
	setenv("CKPT_PURGE_DELAY_MS", "0", 1);
	unsetenv("CKPT_PURGE_MIN");
	unsetenv("CKPT_FORK_MODE");
	char name[64];
	snprintf(name, sizeof(name), "%s.pool", m->name);
	const char *path = strdup(tu_path(name));
	struct ckpt_config c = config_of(m);
	int copy_mode = m->fm == CKPT_FORK_COPY;
	unlink(path);
	ckpt_pool *p = ckpt_create(path, &c);
	if (!p)
		fail_msg("ckpt_create (%s): %s", m->name, ckpt_errormsg());
	if (m->fm == CKPT_FORK_COW)
		assert_non_null(p->eng);
	if (m->sealed)
		assert_non_null(p->seal);
	struct rec *r = ckpt_calloc(p, 1, sizeof(*r));
	assert_non_null(r);
	assert_int_equal(ckpt_set_root(p, r), 0);
	r->a = ckpt_alloc(p, SMALL);
	assert_non_null(r->a);
	fill(r->a, SMALL, 1);
	r->b = ckpt_alloc(p, BIG);
	assert_non_null(r->b);
	r->b_seed = 7;
	fill(r->b, BIG, 7);

	/* a checkpoint with the block in it: in cow mode its pages are the
	 * image's from here, and what a purge leaves them reading */
	ckpt_id c0, c1, c2;
	assert_int_equal(ckpt_checkpoint(p, "with-b", &c0), 0);
	fill(r->b, BIG, 7);          /* resident again (a cow checkpoint drops the copies) */
	if (!m->sealed)
		fork_child_purges(p, r);
	free_big(p, r, copy_mode, path);
	assert_true(same(r->a, SMALL, 1));
	assert_int_equal(ckpt_checkpoint(p, "purged", &c1), 0);

	/* the run again: zeroed memory reads zero over whatever the purge left */
	char *z = ckpt_calloc(p, 1, BIG / 2);
	assert_non_null(z);
	for (size_t i = 0; i < BIG / 2; i++)
		if (z[i])
			fail_msg("calloc byte %zu is %d", i, z[i]);
	ckpt_free(p, z);
	r->b = ckpt_alloc(p, BIG);
	assert_non_null(r->b);
	r->b_seed = 8;
	fill(r->b, BIG, 8);
	assert_int_equal(ckpt_checkpoint(p, "reused", &c2), 0);
	assert_int_equal(ckpt_close(p), 0);

	/* both checkpoints restart intact; a restarted heap purges too, once
	 * its lazy fill (if any) is settled */
	p = reopen(path, c2, &c, &r);
	assert_int_equal(ckpt_close(p), 0);
	p = reopen(path, c1, &c, &r);
	assert_null(r->b);
	r->b = ckpt_alloc(p, BIG);
	assert_non_null(r->b);
	r->b_seed = 9;
	fill(r->b, BIG, 9);
	if (filling(p)) {
		uint64_t g = purged(p);
		char *t = r->b;
		r->b = NULL;
		ckpt_free(p, t);
		assert_int_equal(purged(p), g);     /* skipped while the fill runs */
		ckpt_id s;
		assert_int_equal(ckpt_checkpoint(p, "settle", &s), 0);
		assert_false(filling(p));
		r->b = ckpt_alloc(p, BIG);
		assert_non_null(r->b);
		fill(r->b, BIG, 9);
	}
	free_big(p, r, copy_mode, path);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
	p = reopen(path, c0, &c, &r);
	assert_int_equal(ckpt_close(p), 0);
	unlink(path);
	free((void *)path);
}

static void
test_purge_copy(void **state)
{
	(void)state;
	const struct mode m = { "copy", CKPT_FORK_COPY, 0 };
	run_mode(&m);
}

static void
test_purge_cow(void **state)
{
	(void)state;
	const struct mode m = { "cow", CKPT_FORK_COW, 0 };
	run_mode(&m);
}

static void
test_purge_sealed(void **state)
{
	(void)state;
	const struct mode m = { "sealed", CKPT_FORK_AUTO, 1 };
	run_mode(&m);
}

/* the delay, and CKPT_PURGE_MIN=off */
static void
test_purge_delay(void **state)
{
	(void)state;
	const char *path = tu_path("delay.pool");
	struct ckpt_config c = { .heap_size = HEAP, .max_segments = 4,
		.fork_mode = CKPT_FORK_COPY };
	unsetenv("CKPT_FORK_MODE");
	unsetenv("CKPT_PURGE_MIN");

	/* a run reused within the delay is never given back */
	setenv("CKPT_PURGE_DELAY_MS", "60000", 1);
	unlink(path);
	ckpt_pool *p = ckpt_create(path, &c);
	assert_non_null(p);
	for (int i = 0; i < 4; i++) {
		char *b = ckpt_alloc(p, BIG);
		assert_non_null(b);
		memset(b, 0x5a, BIG);
		ckpt_free(p, b);
	}
	assert_int_equal(purged(p), 0);
	assert_int_equal(ckpt_close(p), 0);

	/* a run left free goes with the first page operation after the delay */
	setenv("CKPT_PURGE_DELAY_MS", "20", 1);
	unlink(path);
	p = ckpt_create(path, &c);
	assert_non_null(p);
	char *b = ckpt_alloc(p, BIG);
	assert_non_null(b);
	memset(b, 0x5a, BIG);
	uint64_t r1 = heap_rss(p);
	ckpt_free(p, b);
	assert_int_equal(purged(p), 0);
	/* two periods, each ended by a page-level operation: the first sweep
	 * finds the run freshly freed, the second gives it back */
	for (int i = 0; i < 2; i++) {
		struct timespec ts = { 0, 40 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		char *s = ckpt_alloc(p, 128 * 1024);
		assert_non_null(s);
		ckpt_free(p, s);
	}
	assert_true(purged(p) >= BIG - MiB);
	assert_true(heap_rss(p) + BIG * 3 / 4 <= r1);
	assert_int_equal(ckpt_close(p), 0);

	/* off: never */
	setenv("CKPT_PURGE_DELAY_MS", "0", 1);
	setenv("CKPT_PURGE_MIN", "off", 1);
	unlink(path);
	p = ckpt_create(path, &c);
	assert_non_null(p);
	b = ckpt_alloc(p, BIG);
	assert_non_null(b);
	memset(b, 0x5a, BIG);
	r1 = heap_rss(p);
	ckpt_free(p, b);
	assert_int_equal(purged(p), 0);
	assert_true(heap_rss(p) + MiB >= r1);
	assert_int_equal(ckpt_close(p), 0);
	unsetenv("CKPT_PURGE_MIN");
	unlink(path);
}

/* a malformed CKPT_PURGE_MIN or CKPT_PURGE_DELAY_MS is refused, naming it */
static void
test_purge_bad_settings(void **state)
{
	(void)state;
	static const struct { const char *var, *val; } bad[] = {
		{ "CKPT_PURGE_MIN", "lots" }, { "CKPT_PURGE_MIN", "12Q" },
		{ "CKPT_PURGE_DELAY_MS", "-1" }, { "CKPT_PURGE_DELAY_MS", "60001" },
		{ "CKPT_PURGE_DELAY_MS", "5s" },
	};
	const char *path = tu_path("bad-setting.pool");
	struct ckpt_config c = { .heap_size = 64 * MiB };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsetenv("CKPT_PURGE_MIN");
		unsetenv("CKPT_PURGE_DELAY_MS");
		setenv(bad[i].var, bad[i].val, 1);
		unlink(path);
		errno = 0;
		ckpt_pool *p = ckpt_create(path, &c);
		if (p)
			fail_msg("%s=%s was accepted", bad[i].var, bad[i].val);
		assert_int_equal(errno, EINVAL);
		assert_non_null(strstr(ckpt_errormsg(), bad[i].var));
		assert_int_equal(access(path, F_OK), -1);
	}
	unsetenv("CKPT_PURGE_MIN");
	unsetenv("CKPT_PURGE_DELAY_MS");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_purge_copy),
		cmocka_unit_test(test_purge_cow),
		cmocka_unit_test(test_purge_sealed),
		cmocka_unit_test(test_purge_delay),
		cmocka_unit_test(test_purge_bad_settings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
