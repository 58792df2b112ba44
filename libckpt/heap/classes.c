/*
 * heap/classes.c -- the size classes: 44 classes, 16..128 B by 16 B, then
 * four per power of two up to 64 KiB, and for each the slab geometry (page
 * count, blocks, where block 0 starts, bitmap words) and the reciprocal that
 * turns a block offset into its index. The table is computed once, not
 * stored: the on-media format fixes it (docs/HEAP.md lists it), and the
 * walker and attach check every slab header against it.
 */
#include <pthread.h>
#include <stdlib.h>

#include "heap/private.h"

struct cls heap_cls_tab[NCLASS];
uint8_t heap_cls_small[65];
static pthread_once_t cls_once = PTHREAD_ONCE_INIT;

/* class_bsize -- block size of class c: 16..128 by 16, then 4 per power of two */
static uint32_t
class_bsize(unsigned c)
{
	if (c < 8)
		return 16u * (c + 1);
	unsigned k = 7 + (c - 8) / 4, j = (c - 8) % 4;
	return (1u << k) + (j + 1) * (1u << (k - 2));
}

/* tc_cap_of -- blocks of bsize b a front cache holds: TC_CAP up to TC_MAX
 * bytes, then TC_BYTES worth (at least TC_MIN, at most TC_CAP) */
static uint32_t
tc_cap_of(uint32_t b)
{
	if (b <= TC_MAX)
		return TC_CAP;
	uint32_t n = TC_BYTES / b;
	return n < TC_MIN ? TC_MIN : n > TC_CAP ? TC_CAP : n;
}

/* cls_compute -- fill cls_tab: smallest slab with >= 8 (4 above 8 KiB) blocks and <= 1/8 waste */
static void
cls_compute(void)
{
	for (unsigned c = 0; c < NCLASS; c++) {
		struct cls *k = &heap_cls_tab[c];
		uint32_t b = class_bsize(c);
		uint32_t a = b & (0u - b);
		if (a > SMALL_ALIGN_MAX)
			a = SMALL_ALIGN_MAX;
		uint32_t minb = b <= 8192 ? 8 : 4;
		for (uint32_t p = 1; p <= SLAB_MAX_PAGES; p++) {
			uint64_t bytes = p * HP_SIZE;
			uint64_t cap0 = (bytes - SLAB_HDR) / b;
			if (cap0 == 0)
				continue;
			uint64_t words = (cap0 + 63) / 64;
			uint64_t ds = align_up(SLAB_HDR + 16 * words, a);
			if (ds >= bytes)
				continue;
			uint64_t cap = (bytes - ds) / b;
			uint64_t waste = bytes - ds - cap * b;
			if (cap < minb || (waste * 8 > bytes && p < SLAB_MAX_PAGES))
				continue;
			k->bsize = b;
			k->pages = p;
			k->cap = (uint32_t)cap;
			k->dstart = (uint32_t)ds;
			k->words = (uint32_t)words;
			k->span = (uint32_t)(cap * b);
			k->sbytes = (uint32_t)bytes;
			k->refill = (uint32_t)((cap + 7) / 8);
			k->mul = (((uint64_t)1 << 40) + b - 1) / b;
			k->mul32 = (uint32_t)((((uint64_t)1 << 32) + b - 1) / b);
			k->tcap = tc_cap_of(b);
			break;
		}
	}
	for (unsigned i = 0; i <= 64; i++) {
		unsigned c = 0;
		while (class_bsize(c) < 16 * i)
			c++;
		heap_cls_small[i] = (uint8_t)c;
	}
	/* the fast paths of heap/api.c rely on these: a request of up to TC_MAX
	 * bytes has one of the first TC_PAGE_NCLASS classes, and those classes'
	 * slabs are one page (heap_free finds their first page without the page
	 * map) */
	if (heap_cls_small[(TC_MAX + 15) >> 4] != TC_PAGE_NCLASS - 1 ||
	    heap_cls_tab[TC_PAGE_NCLASS - 1].bsize != TC_MAX)
		abort();
	for (unsigned c = 0; c < TC_PAGE_NCLASS; c++)
		if (heap_cls_tab[c].pages != 1)
			abort();
}

/* heap_cls_init -- compute the class table once */
void
heap_cls_init(void)
{
	pthread_once(&cls_once, cls_compute);
}
