/*
 * test_heap_walk_hostile.c -- the walker and heap_attach on damaged heaps.
 * A small formatted heap holding blocks of many classes, large blocks,
 * abandoned slabs and pending remote frees is copied, then damaged: bit
 * flips, random garbage, truncation, huge counts and offsets, free-list
 * loops. heap_walk must return 0, or -1 with EINVAL and a message, never
 * crash or hang; heap_attach (metadata) or the first-use checks of the slabs
 * (heap_validate_all) must refuse what the walker refuses, a damaged heap
 * that attached must take allocations and frees without crashing, and a
 * heap the walker accepts must still work (allocate, free, check).
 */
#include <pthread.h>

#include "test_heap_common.h"

#define SEG_SIZE ((size_t)4 << 20)

static uint8_t *orig;       /* the undamaged heap, HEAP_SEG_ALIGN-aligned */
static size_t orig_hw;
static struct th_rec blocks;
static uint64_t meta_end;   /* data_off: end of header, slots, page map, bitmap */

static void *
remote_frees(void *arg)
{
	void **p = arg;
	for (int i = 0; i < 40; i += 2)
		heap_free((struct heap *)p[100], p[i]);
	return NULL;
}

static void *
make_heap(void)
{
	void *seg = aligned_alloc(HEAP_SEG_ALIGN, SEG_SIZE);
	memset(seg, 0, SEG_SIZE);
	assert_int_equal(heap_format(seg, SEG_SIZE, NULL, NULL), 0);
	struct heap *h = heap_attach(seg, SEG_SIZE, NULL, NULL);
	assert_non_null(h);
	static void *p[101];
	for (int i = 0; i < 100; i++)
		p[i] = heap_alloc(h, (size_t)(i * 97) % 3000);
	void *big = heap_alloc(h, 100000);
	void *big2 = heap_alloc(h, 40000);
	for (int i = 50; i < 100; i += 3)
		heap_free(h, p[i]);
	heap_free(h, big);
	(void)big2;
	p[100] = h;
	pthread_t t;      /* another thread frees: pending remote-free lists */
	pthread_create(&t, NULL, remote_frees, p);
	pthread_join(t, NULL);
	heap_set_root(h, p[1]);
	orig_hw = heap_high_water(h);
	heap_detach(h);
	return seg;
}

static int
setup(void **state)
{
	(void)state;
	orig = make_heap();
	th_walk_ok(orig, orig_hw, &blocks, NULL);
	memcpy(&meta_end, orig + 64, 8);    /* heap_hdr.data_off */
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	free(orig);
	free(blocks.b);
	return 0;
}

/* pick_off -- a random offset, mostly in metadata: header, slots, maps, slab headers, free links */
static uint64_t
pick_off(uint64_t *r)
{
	switch (th_rand(r) % 5) {
	case 0:
		return th_rand(r) % 256;                       /* heap header */
	case 1:
		return th_rand(r) % meta_end;                  /* slots, page map, bitmap */
	case 2: {                                          /* slab headers and bitmaps */
		uint64_t pg = meta_end / 16384 + th_rand(r) % ((orig_hw - meta_end) / 16384);
		return pg * 16384 + th_rand(r) % 320;
	}
	case 3: {                                          /* first bytes of a block */
		struct heap_block_info *b = &blocks.b[th_rand(r) % blocks.n];
		return (b->offset + th_rand(r) % 16) % orig_hw;
	}
	default:
		return th_rand(r) % orig_hw;
	}
}

/* damage -- one random kind of damage to buf; returns the length to walk */
static size_t
damage(uint8_t *buf, uint64_t *r)
{
	size_t len = orig_hw;
	uint64_t off = pick_off(r);
	switch (th_rand(r) % 6) {
	case 0:                                            /* bit flips */
		for (int i = 1 + (int)(th_rand(r) % 3); i > 0; i--) {
			off = pick_off(r);
			buf[off] ^= (uint8_t)(1u << (th_rand(r) % 8));
		}
		break;
	case 1: {                                          /* garbage */
		size_t n = 1 + th_rand(r) % 64;
		for (size_t i = 0; i < n && off + i < len; i++)
			buf[off + i] = (uint8_t)th_rand(r);
		break;
	}
	case 2:                                            /* truncation */
		len = th_rand(r) % orig_hw;
		break;
	case 3: {                                          /* huge counts / offsets */
		uint64_t v[] = { ~0ull, 0x7fffffffffffffffull, 0xffffffffull, 1ull << 40,
				 SEG_SIZE, SEG_SIZE - 8, 0x10000000ull };
		uint64_t x = v[th_rand(r) % 7];
		off &= ~(uint64_t)3;
		memcpy(buf + off, &x, off + 8 <= len && th_rand(r) % 2 ? 8 : 4);
		break;
	}
	case 4: {                                          /* free-list loops */
		struct heap_block_info *b = &blocks.b[th_rand(r) % blocks.n];
		if (b->state == HEAP_BLOCK_FREE && b->size < 16384) {
			struct heap_block_info *c = &blocks.b[th_rand(r) % blocks.n];
			uint64_t to = th_rand(r) % 2 ? b->offset : c->offset;
			memcpy(buf + b->offset, &to, 8);
		}
		break;
	}
	default: {                                         /* a slab's free-list head */
		struct heap_block_info *b = &blocks.b[th_rand(r) % blocks.n];
		uint64_t slab = b->offset & ~(uint64_t)16383;
		uint64_t to = th_rand(r) % 2 ? b->offset : th_rand(r);
		memcpy(buf + slab + 32 + 8 * (th_rand(r) % 2), &to, 8);
		break;
	}
	}
	return len;
}

static void
test_hostile(void **state)
{
	(void)state;
	uint8_t *buf = aligned_alloc(HEAP_SEG_ALIGN, SEG_SIZE);
	uint64_t r = 12345;
	int iters = 10000, rejected = 0;
	if (getenv("CKPT_HOSTILE_ITERS"))
		iters = atoi(getenv("CKPT_HOSTILE_ITERS"));
	for (int it = 0; it < iters; it++) {
		memcpy(buf, orig, orig_hw);
		size_t len = damage(buf, &r);
		/* the walker on a copy at another address (the damage is the same) */
		ckpt_err_clear();
		errno = 0;
		struct heap_summary s;
		int wrc = heap_walk(buf, len, NULL, NULL, &s);
		if (wrc != 0) {
			assert_int_equal(wrc, -1);
			assert_int_equal(errno, EINVAL);
			assert_true(strlen(ckpt_errormsg()) > 0);
			rejected++;
		}
		uint64_t hw;
		int prc = heap_peek_high_water(buf, len, &hw);
		assert_true(prc == 0 || (prc == -1 && errno == EINVAL));
		if (len != orig_hw)
			continue;
		/* attach checks the metadata; each slab is checked on first use:
		 * what the walker refuses, attach or heap_validate_all (every slab's
		 * first-use check) refuses (given the whole segment: a damaged
		 * high-water mark may reach past the copy); a damaged heap that
		 * attached takes allocations and frees without crashing; an
		 * undamaged one works and stays sound */
		wrc = heap_walk(buf, SEG_SIZE, NULL, NULL, NULL);
		struct heap *h = heap_attach(buf, SEG_SIZE, NULL, NULL);
		if (!h && th_errmsg_has("formatted for"))
			continue;       /* a damaged size field the walker cannot know is wrong */
		if (!h && wrc == 0)
			fail_msg("walk accepted, attach refused: %s", ckpt_errormsg());
		if (!h) {
			assert_int_equal(errno, EINVAL);
			assert_true(strlen(ckpt_errormsg()) > 0);
			continue;
		}
		int vrc = heap_validate_all(h);
		if (wrc != 0 && vrc == 0)
			fail_msg("walk refused (%d), attach and first-use checks accepted", it);
		if (wrc == 0 && vrc != 0)
			fail_msg("walk accepted, first-use check refused: %s", ckpt_errormsg());
		if (vrc != 0) {
			assert_int_equal(errno, EINVAL);
			assert_true(th_errmsg_has("damaged heap"));
		}
		void *p[64];
		for (int i = 0; i < 64; i++)
			p[i] = heap_alloc(h, (size_t)i * 211);
		for (int i = 0; i < 64; i++)
			heap_free(h, p[i]);
		if (wrc == 0 && heap_check(buf, heap_high_water(h), NULL) != 0)
			fail_msg("accepted heap broke after use: %s", ckpt_errormsg());
		heap_detach(h);
	}
	print_message("%d of %d damaged heaps rejected\n", rejected, iters);
	assert_true(rejected > iters / 4);
	free(buf);
}

/* a loop in a free list is found, with a message naming it, in bounded time */
static void
test_loop_named(void **state)
{
	(void)state;
	uint8_t *buf = malloc(orig_hw + 1);      /* any address: misaligned on purpose */
	uint8_t *b = buf + 1;
	memcpy(b, orig, orig_hw);
	for (size_t i = 0; i < blocks.n; i++) {
		struct heap_block_info *x = &blocks.b[i];
		uint64_t slab = x->offset & ~(uint64_t)16383, head;
		memcpy(&head, b + slab + 32, 8);
		if (x->state == HEAP_BLOCK_FREE && x->size < 16384 && head == x->offset) {
			memcpy(b + x->offset, &x->offset, 8);   /* self loop */
			assert_int_equal(heap_walk(b, orig_hw, NULL, NULL, NULL), -1);
			assert_int_equal(errno, EINVAL);
			assert_true(th_errmsg_has("free list"));
			free(buf);
			return;
		}
	}
	free(buf);
	fail_msg("no free-list head found");
}

/*
 * a damaged slab is found on its first use: attach (metadata only) takes
 * the heap; a free into the slab fails with EINVAL naming it and leaves its
 * page as it was; blocks of other slabs still come and go; the check of
 * every slab (heap_validate_all) names it
 */
static void
test_first_use(void **state)
{
	(void)state;
	uint8_t *buf = aligned_alloc(HEAP_SEG_ALIGN, SEG_SIZE);
	memset(buf, 0, SEG_SIZE);
	memcpy(buf, orig, orig_hw);
	const struct heap_block_info *x = NULL;
	for (size_t i = 0; i < blocks.n && !x; i++)
		if (blocks.b[i].state == HEAP_BLOCK_ALLOCATED && blocks.b[i].size <= 1024)
			x = &blocks.b[i];
	assert_non_null(x);
	uint64_t so = x->offset & ~(uint64_t)16383;      /* one-page slab: its header */
	uint32_t used;
	memcpy(&used, buf + so + 16, 4);
	used += 1000;
	memcpy(buf + so + 16, &used, 4);
	uint8_t *before = malloc(16384);
	memcpy(before, buf + so, 16384);

	struct heap *h = heap_attach(buf, SEG_SIZE, NULL, NULL);
	assert_non_null(h);
	errno = 0;
	assert_int_equal(heap_free(h, buf + x->offset), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(th_errmsg_has("damaged heap"));
	assert_memory_equal(buf + so, before, 16384);
	void *q = heap_alloc(h, 40000);
	assert_non_null(q);
	assert_int_equal(heap_free(h, q), 0);
	assert_int_equal(heap_validate_all(h), -1);
	assert_true(th_errmsg_has("counts out of range"));
	heap_detach(h);
	free(before);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_named),
		cmocka_unit_test(test_first_use),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
