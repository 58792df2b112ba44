/*
 * test_vprot.c -- the preload library's record of the protections it set
 * (preload/vprot.c), against the kernel's: random mprotect sequences on
 * real blocks of real memory, after each step every page's recorded
 * protection compared with a reference and with /proc/self/maps; runs
 * split, trimmed, merged within a block and never across blocks (so
 * forgetting a block never allocates); vprot_zero, vprot_reveal and
 * vprot_apply on the protections they must give back. vprot.c is linked
 * in directly; boot_alloc is malloc here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "testutil.h"
#include "preload.h"

#define PG 4096UL
#define NBLK 4
#define BLKPG 16        /* pages per block */
#define NPG (NBLK * BLKPG)
#define RW (PROT_READ | PROT_WRITE)

static size_t nallocs;

void *
boot_alloc(size_t size, size_t align)
{
	void *p = NULL;
	nallocs++;
	return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

void
boot_free(void *p)
{
	free(p);
}

static char *base;
static int ref[NPG];

/* kernel_prot -- the protection /proc/self/maps gives the page at a */
static int
kernel_prot(const void *a)
{
	FILE *f = fopen("/proc/self/maps", "r");
	assert_non_null(f);
	char line[512], pr[5];
	unsigned long lo, hi;
	int prot = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, pr) == 3 &&
		    lo <= (uintptr_t)a && (uintptr_t)a < hi) {
			prot = (pr[0] == 'r' ? PROT_READ : 0) | (pr[1] == 'w' ? PROT_WRITE : 0);
			break;
		}
	fclose(f);
	return prot;
}

/* same -- every page: recorded == reference == the kernel's */
static void
same(const char *what)
{
	for (size_t i = 0; i < NPG; i++) {
		uintptr_t a = (uintptr_t)base + i * PG;
		if (vprot_at(a) != ref[i] || kernel_prot((void *)a) != ref[i])
			fail_msg("%s: page %zu: recorded %d, kernel %d, want %d", what, i,
				vprot_at(a), kernel_prot((void *)a), ref[i]);
		assert_int_equal(vprot_rw(a, a + PG), ref[i] == RW);
	}
}

/* set -- vprot_set pages [p, q) of block blk to prot, and the reference */
static void
set(size_t p, size_t q, int prot)
{
	size_t blk = p / BLKPG;
	uintptr_t lo = (uintptr_t)base + blk * BLKPG * PG;
	assert_int_equal(vprot_set((uintptr_t)base + p * PG, (uintptr_t)base + q * PG, prot,
			lo, lo + BLKPG * PG), 0);
	for (size_t i = p; i < q; i++)
		ref[i] = prot;
}

static void
test_random(void **state)
{
	(void)state;
	static const int prots[] = { PROT_NONE, PROT_READ, RW, RW };
	base = mmap(NULL, NPG * PG, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(base != MAP_FAILED);
	for (size_t i = 0; i < NPG; i++)
		ref[i] = RW;
	same("fresh");
	srand(7);
	for (int step = 0; step < 400; step++) {
		size_t blk = (size_t)rand() % NBLK;
		size_t p = (size_t)rand() % BLKPG, q = p + 1 + (size_t)rand() % (BLKPG - p);
		set(blk * BLKPG + p, blk * BLKPG + q, prots[rand() % 4]);
		if (step % 10 == 0)
			same("random steps");
	}
	same("after the random steps");
	/* whole blocks: each is one run or none, never merged with a neighbour */
	for (size_t b = 0; b < NBLK; b++)
		set(b * BLKPG, (b + 1) * BLKPG, PROT_READ);
	same("every block read-only");
	assert_int_equal(vprot_runs(), NBLK);
	/* within a block, neighbours of one protection are one run */
	set(3 * BLKPG + 2, 3 * BLKPG + 4, PROT_NONE);
	assert_int_equal(vprot_runs(), NBLK + 2);
	set(3 * BLKPG + 2, 3 * BLKPG + 4, PROT_READ);        /* joins both sides */
	assert_int_equal(vprot_runs(), NBLK);
	set(3 * BLKPG + 4, 3 * BLKPG + 6, PROT_NONE);
	set(3 * BLKPG + 2, 3 * BLKPG + 4, PROT_NONE);        /* joins the right */
	assert_int_equal(vprot_runs(), NBLK + 2);
	set(3 * BLKPG + 6, 3 * BLKPG + 7, PROT_NONE);        /* joins the left */
	assert_int_equal(vprot_runs(), NBLK + 2);
	set(3 * BLKPG + 2, 3 * BLKPG + 7, PROT_READ);
	assert_int_equal(vprot_runs(), NBLK);
	same("runs joined");
	/* forgetting a block splits nothing, so it needs no room */
	size_t before = nallocs;
	set(BLKPG, 2 * BLKPG, RW);
	set(0, BLKPG, RW);
	assert_int_equal(nallocs, before);
	same("two blocks forgotten");
	/* a hole in the middle of a run: the run's tail stays */
	set(2 * BLKPG + 5, 2 * BLKPG + 7, PROT_NONE);
	set(2 * BLKPG + 3, 2 * BLKPG + 9, RW);
	same("a hole punched in a run");
	/* unaligned: EINVAL, nothing recorded */
	assert_int_equal(vprot_set((uintptr_t)base + 1, (uintptr_t)base + PG, PROT_NONE,
			(uintptr_t)base, (uintptr_t)base + BLKPG * PG), -1);
	assert_int_equal(errno, EINVAL);
	same("after an unaligned call");
	for (size_t b = 0; b < NBLK; b++)
		set(b * BLKPG, (b + 1) * BLKPG, RW);
	same("all read-write again");
	assert_int_equal(vprot_runs(), 0);
	munmap(base, NPG * PG);
}

static void
test_zero_reveal_apply(void **state)
{
	(void)state;
	base = mmap(NULL, NPG * PG, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(base != MAP_FAILED);
	for (size_t i = 0; i < NPG; i++)
		ref[i] = RW;
	memset(base, 0x5a, NPG * PG);
	set(2, 4, PROT_NONE);
	set(4, 6, PROT_READ);
	set(9, 10, PROT_NONE);
	/* zeroed across read-write, PROT_NONE and read-only pages */
	uintptr_t a = (uintptr_t)base + PG, e = (uintptr_t)base + 12 * PG;
	vprot_zero(a, e);
	same("after vprot_zero");
	set(0, BLKPG, RW);
	for (size_t i = 0; i < NPG * PG; i++) {
		int z = i >= PG && i < 12 * PG;
		if ((unsigned char)base[i] != (z ? 0 : 0x5a))
			fail_msg("byte %zu is 0x%02x", i, (unsigned char)base[i]);
	}
	/* reveal: unreadable pages readable, nothing recorded changes */
	set(BLKPG + 1, BLKPG + 3, PROT_NONE);
	set(BLKPG + 5, BLKPG + 6, PROT_READ);
	vprot_reveal();
	assert_int_equal(kernel_prot(base + (BLKPG + 1) * PG), PROT_READ);
	assert_int_equal(kernel_prot(base + (BLKPG + 5) * PG), PROT_READ);
	assert_int_equal(vprot_at((uintptr_t)base + (BLKPG + 1) * PG), PROT_NONE);
	vprot_apply();
	same("after vprot_reveal and vprot_apply");
	/* apply after the range was mapped anew (cow's re-base): all back */
	assert_true(mmap(base, NPG * PG, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == base);
	vprot_apply();
	same("vprot_apply after a new mapping");
	set(BLKPG, 2 * BLKPG, RW);
	munmap(base, NPG * PG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_zero_reveal_apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
