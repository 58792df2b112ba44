/*
 * test_pool_memory.c -- the resident memory a pool costs its process beyond
 * the heap's own pages (issue 12, the allocator's memory target).
 *
 * The checkpoint engine keeps a sum of every 4 KiB page of the segment
 * (engine/image.c, e->sums: 1/512 of the segment). For a new heap they are
 * the zero page's sum, and writing them all made a pool with a 1 GiB heap
 * cost 2 MiB of resident memory at ckpt_create, more than glibc's malloc
 * needs for a whole producer/consumer run (docs/BENCHMARKS.md, "Resident
 * memory"). They are now written only as far as a checkpoint reads them
 * (the heap's used bytes). Nor does the attach of a heap just formatted
 * read its page map and slot table (heap_attach_formatted: 4 bytes per
 * 16 KiB page, 256 KiB for 1 GiB, which the metadata check read whole and
 * so brought into memory). Checked here, with /proc/self/statm:
 *
 *  - a new pool with an 8 GiB heap (16 MiB of sums, a page map of
 *    2 MiB), a few blocks allocated, adds less than half of the page
 *    map's size to the process's resident memory (the library's code and
 *    the DRAM handle: about 300 KiB);
 *  - what that checkpoint and a later one (the heap grown past what the
 *    first summed) hold restarts: the sums written so far verify, and the
 *    blocks hold their bytes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "libckpt.h"
#include "testutil.h"

#define HEAP ((size_t)8 << 30)
#define SUMS (HEAP / 4096 * 8)         /* the checkpoint engine's page sums */
#define PMAP (HEAP / 16384 * 4)        /* the heap's page map */
#define N 1000
#define BIG 200                 /* blocks of 64 KiB the second checkpoint adds: 12.5 MiB */

/* resident_kib -- this process's resident memory (statm), KiB */
static long
resident_kib(void)
{
	long pages = -1, rss = -1;
	FILE *f = fopen("/proc/self/statm", "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &pages, &rss), 2);
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

struct root {
	uint64_t *small[N];
	uint8_t *big[BIG];
	int nbig;
};

static void
check_blocks(const struct root *r)
{
	for (int i = 0; i < N; i++)
		assert_int_equal(r->small[i][0], (uint64_t)i * 7919);
	for (int i = 0; i < r->nbig; i++)
		for (size_t k = 0; k < 65536; k += 4093)
			assert_int_equal(r->big[i][k], (uint8_t)(i + k));
}

/*
 * test_new_pool_sums -- a new pool writes no sum past its heap's used bytes;
 * the checkpoints it takes restart and verify
 */
static void
test_new_pool_sums(void **state)
{
	(void)state;
	const char *path = tu_path("memory.pool");
	struct ckpt_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.heap_size = HEAP;
	long r0 = resident_kib();
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	struct root *r = ckpt_calloc(p, 1, sizeof(*r));
	assert_non_null(r);
	for (int i = 0; i < N; i++) {
		assert_non_null(r->small[i] = ckpt_alloc(p, 64));
		r->small[i][0] = (uint64_t)i * 7919;
	}
	assert_int_equal(ckpt_set_root(p, r), 0);
	long grown = resident_kib() - r0;
	if (grown * 1024 >= (long)PMAP / 2)
		fail_msg("a pool with a %zu MiB heap added %ld KiB of resident memory (its "
				"page sums are %zu KiB, its page map %zu KiB)", HEAP >> 20, grown,
				SUMS >> 10, PMAP >> 10);
	ckpt_id id1 = 0;
	assert_int_equal(ckpt_checkpoint(p, "small", &id1), 0);
	/* grow the heap past what the first checkpoint summed */
	for (int i = 0; i < BIG; i++) {
		assert_non_null(r->big[i] = ckpt_alloc(p, 65536));
		for (size_t k = 0; k < 65536; k++)
			r->big[i][k] = (uint8_t)(i + k);
		r->nbig = i + 1;
	}
	ckpt_id id2 = 0;
	assert_int_equal(ckpt_checkpoint(p, "big", &id2), 0);
	assert_int_equal(ckpt_close(p), 0);

	/* both restart with their bytes (each page checked against its sum) */
	const ckpt_id ids[2] = { id1, id2 };
	for (int k = 0; k < 2; k++) {
		p = ckpt_open(path, ids[k], &cfg);
		if (!p)
			fail_msg("ckpt_open of checkpoint %llu: %s", (unsigned long long)ids[k],
					ckpt_errormsg());
		r = ckpt_root(p);
		assert_non_null(r);
		assert_int_equal(r->nbig, k ? BIG : 0);
		check_blocks(r);
		assert_int_equal(ckpt_close(p), 0);
	}
	tu_inspect_verify(path);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_pool_sums),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
