/*
 * test_heap_upgrade_v2.c -- a heap made by the format 2 code upgraded by
 * this one (docs/HEAP.md, the format versions).
 *
 * tests/fixtures/heap_v2.h holds a 4 MiB segment that the library of a
 * format 2 commit wrote (tests/fixtures/gen_heap_v2.c says how): blocks of
 * three slab classes and two large blocks, some freed by their owner, some
 * by another thread (format 2 linked those into each slab's remote list),
 * a slab on its owner's full list holding a local free block (allowed from
 * format 2 on), a root. test_heap_basic's test_format_versions covers the
 * older formats with heap_downgrade, a rewrite by this code; this test
 * covers what the old code itself left behind:
 *
 *  - the segment rebuilt from the fixture is version 2, holds the remote
 *    list and the full slab, and the walker accepts it with exactly the
 *    live blocks' bytes;
 *  - heap_attach raises the version to 4 and leaves a heap the walker
 *    accepts with the same bytes; the remote list is collected (the word
 *    at 40 of that slab is 0);
 *  - every live block keeps its stamp and usable size, the root is the
 *    same block; every freed block is not live (usable size 0, a free of
 *    it fails with ENOENT and changes nothing);
 *  - the freed blocks' room is handed out again below the high-water mark,
 *    never on a live block; the new blocks' stamps and the old ones survive
 *    a detach and a second attach, after which everything frees to an
 *    exact empty heap.
 */
#include "test_heap_common.h"
#include "fixtures/heap_v2.h"

#define NLIVE (sizeof(v2_live) / sizeof(v2_live[0]))
#define NFREED (sizeof(v2_freed) / sizeof(v2_freed[0]))
#define NWORDS (sizeof(v2_words) / sizeof(v2_words[0]))

static uint64_t
word_at(const uint8_t *b, uint64_t off)
{
	uint64_t w;
	memcpy(&w, b + off, 8);
	return w;
}

/* live_bytes -- the usable bytes of the fixture's live blocks */
static uint64_t
live_bytes(void)
{
	uint64_t n = 0;
	for (size_t i = 0; i < NLIVE; i++)
		n += v2_live[i].usable;
	return n;
}

/* check_old_blocks -- every live block of the fixture intact, the root the same */
static void
check_old_blocks(struct heap *h, uint8_t *b)
{
	for (size_t i = 0; i < NLIVE; i++) {
		assert_int_equal(word_at(b, v2_live[i].off), v2_live[i].stamp);
		assert_int_equal(heap_usable_size(h, b + v2_live[i].off), v2_live[i].usable);
	}
	assert_ptr_equal(heap_root(h), b + V2_ROOT);
}

/* test_upgrade_v2_fixture -- the format 2 code's heap (see the top) upgraded */
static void
test_upgrade_v2_fixture(void **state)
{
	(void)state;
	uint8_t *b = th_fixture(V2_SIZE, v2_words, NWORDS);
	uint32_t *ver = (uint32_t *)(b + 8);
	assert_int_equal(*ver, 2);
	/* format 2 slab header: free list at 32, remote list at 40, list at 48 (2: full) */
	assert_int_equal((uint32_t)word_at(b, V2_FULL_SLAB + 48), 2);
	assert_int_not_equal(word_at(b, V2_FULL_SLAB + 32), 0);
	assert_int_not_equal(word_at(b, V2_REMOTE_SLAB + 40), 0);
	assert_int_equal((uint32_t)word_at(b, V2_EMPTY_SLAB), 0x42414c53);    /* "SLAB" */
	struct heap_summary s;
	th_walk_ok(b, V2_HW, NULL, &s);
	assert_int_equal(s.blocks_allocated, NLIVE);
	assert_int_equal(s.bytes_allocated, live_bytes());
	assert_int_equal(s.root_offset, V2_ROOT);

	struct heap *h = heap_attach(b, V2_SIZE, NULL, NULL);
	if (!h)
		fail_msg("heap_attach of the format 2 heap: %s", ckpt_errormsg());
	assert_int_equal(*ver, 4);
	assert_int_equal(word_at(b, V2_REMOTE_SLAB + 40), 0);  /* collected */
	th_walk_ok(b, V2_HW, NULL, &s);
	assert_int_equal(s.blocks_allocated, NLIVE);
	assert_int_equal(s.bytes_allocated, live_bytes());
	check_old_blocks(h, b);
	for (size_t i = 0; i < NFREED; i++) {
		void *p = b + v2_freed[i].off;
		assert_int_equal(heap_usable_size(h, p), 0);
		/* the emptied slab's pages went back to the free pages at the
		 * upgrade: its blocks are no blocks now (EINVAL), but one that
		 * starts a page is a free page's start, refused as a freed large
		 * block is (ENOENT) */
		int want = ENOENT;
		if (v2_freed[i].off >= V2_EMPTY_SLAB && v2_freed[i].off < V2_EMPTY_END &&
		    v2_freed[i].off % HEAP_SEG_ALIGN != 0)
			want = EINVAL;
		errno = 0;
		assert_int_equal(heap_free(h, p), -1);
		if (errno != want)
			fail_msg("free of freed block %zu (at %llu): errno %d: %s", i,
					(unsigned long long)v2_freed[i].off, errno, ckpt_errormsg());
	}
	th_check_exact(h, b, live_bytes());

	/* the freed room again: a block of each freed block's size, none on a
	 * live block, all below the high-water mark */
	void *again[NFREED];
	uint64_t usable[NFREED];
	for (size_t i = 0; i < NFREED; i++) {
		size_t want = v2_freed[i].usable;
		assert_non_null(again[i] = heap_alloc(h, want));
		usable[i] = heap_usable_size(h, again[i]);
		assert_true(usable[i] >= want);
		assert_true((uint8_t *)again[i] + usable[i] <= b + V2_HW);
		for (size_t k = 0; k < NLIVE; k++)
			assert_true((uint8_t *)again[i] + usable[i] <= b + v2_live[k].off ||
					(uint8_t *)again[i] >= b + v2_live[k].off + v2_live[k].usable);
		for (size_t k = 0; k < i; k++)
			assert_ptr_not_equal(again[i], again[k]);
		uint64_t v = 0x9900000000000000ull | i;
		memcpy(again[i], &v, 8);
	}
	uint64_t bytes = live_bytes();
	for (size_t i = 0; i < NFREED; i++)
		bytes += usable[i];
	th_check_exact(h, b, bytes);
	assert_int_equal(heap_high_water(h), V2_HW);

	/* detach and attach again: still version 4, every block as it was */
	heap_detach(h);
	h = heap_attach(b, V2_SIZE, NULL, NULL);
	if (!h)
		fail_msg("second heap_attach: %s", ckpt_errormsg());
	assert_int_equal(*ver, 4);
	check_old_blocks(h, b);
	for (size_t i = 0; i < NFREED; i++) {
		assert_int_equal(word_at(again[i], 0), 0x9900000000000000ull | i);
		assert_int_equal(heap_usable_size(h, again[i]), usable[i]);
		assert_int_equal(heap_free(h, again[i]), 0);
	}
	assert_int_equal(heap_set_root(h, NULL), 0);
	for (size_t i = 0; i < NLIVE; i++)
		assert_int_equal(heap_free(h, b + v2_live[i].off), 0);
	th_check_exact(h, b, 0);
	heap_detach(h);
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upgrade_v2_fixture),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
