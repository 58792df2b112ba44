/*
 * heap/pages.c -- the page allocator: where the metadata of a segment goes
 * (its layout), the page bitmap (one bit per 16 KiB page: in use), first-fit
 * runs of free pages above the free-page hint, and the high-water mark below
 * which every byte the heap ever wrote lies (raised through the pool's grow
 * callback, so a full filesystem is ENOMEM, not SIGBUS). Slabs and large
 * blocks are both runs of pages from here; a slab's run is looked for
 * below the mark first (heap_pages_alloc_below), so that the slab path
 * can steal before the heap grows (slab.c). A freed run goes to purge.c,
 * which may give its memory back, and a run handed out is backed again
 * there first (heap_purge_back). Everything but heap_layout_of runs under
 * heap.lock.
 */
#include <errno.h>

#include "heap/private.h"

/* heap_layout_of -- the layout for seg_size bytes; -1 if no heap fits */
int
heap_layout_of(uint64_t seg_size, struct layout *l)
{
	if (seg_size < HEAP_MIN_SIZE || (seg_size >> HP_SHIFT) >= MAX_PAGES ||
	    (seg_size & 4095))
		return -1;
	l->npages = (uint32_t)(seg_size >> HP_SHIFT);
	l->slots_off = HDR_SIZE;
	l->pmap_off = HDR_SIZE + (uint64_t)NSLOTS * SLOT_SIZE;
	l->pbits_off = align_up(l->pmap_off + 4ull * l->npages, 64);
	uint64_t end = l->pbits_off + 8ull * ((l->npages + 63) / 64);
	l->data_off = align_up(end, HP_SIZE);
	l->data_page = (uint32_t)(l->data_off >> HP_SHIFT);
	if ((uint64_t)l->data_page + 16 > l->npages)
		return -1;
	return 0;
}

/* heap_bits_set -- set (v=1) or clear pages [i, i+n) in the page bitmap */
void
heap_bits_set(uint64_t *bits, uint32_t i, uint32_t n, int v)
{
	while (n) {
		uint32_t b = i & 63, k = 64 - b < n ? 64 - b : n;
		uint64_t m = (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;
		uint64_t w = ld64(&bits[i >> 6]);
		st64(&bits[i >> 6], v ? (w | m) : (w & ~m));
		i += k;
		n -= k;
	}
}

/* heap_next_with -- first page >= i and < limit whose bit equals v, else limit */
uint32_t
heap_next_with(const uint64_t *bits, uint32_t i, uint32_t limit, int v)
{
	return heap_next_union(bits, NULL, NULL, i, limit, v);
}

/* heap_next_union -- heap_next_with of the union a | b | c of bitmaps (b, c may be NULL) */
uint32_t
heap_next_union(const uint64_t *a, const uint64_t *b, const uint64_t *c, uint32_t i,
		uint32_t limit, int v)
{
	while (i < limit) {
		uint64_t w = ld64(&a[i >> 6]) | (b ? b[i >> 6] : 0) | (c ? c[i >> 6] : 0);
		if (!v)
			w = ~w;
		w >>= (i & 63);
		if (w) {
			uint32_t r = i + (uint32_t)__builtin_ctzll(w);
			return r < limit ? r : limit;
		}
		i = (i | 63) + 1;
	}
	return limit;
}

/* heap_grow_to -- raise the high-water mark to cover byte end (calls the grow callback) */
int
heap_grow_to(struct heap *h, uint64_t end)
{
	uint64_t hw = h->hdr->high_water;
	if (end <= hw)
		return 0;
	uint64_t nhw = align_up(end, HEAP_GROW_STEP);
	if (nhw > h->size)
		nhw = h->size;
	if (h->grow && h->grow(h->grow_arg, hw, nhw - hw) < 0) {
		ckpt_err_prefix("heap cannot grow to %llu bytes: ", (unsigned long long)nhw);
		errno = ENOMEM;
		return -1;
	}
	__atomic_store_n(&h->hdr->high_water, nhw, __ATOMIC_RELAXED);
	heap_purge_grown(h, (uint32_t)(hw >> HP_SHIFT), (uint32_t)((nhw - hw) >> HP_SHIFT));
	return 0;
}

/*
 * pages_take -- the lowest run of n free pages whose address is aligned to
 * `align` bytes (power of two), anywhere (grow: the high-water mark is
 * raised over it) or below the mark; marks them used. 0 if none (with
 * ENOMEM if grow).
 */
static uint32_t
pages_take(struct heap *h, uint32_t n, uint64_t align, int grow)
{
	uint32_t limit = grow ? h->npages
		: (uint32_t)((h->hdr->high_water + HP_SIZE - 1) >> HP_SHIFT);
	uint32_t i = h->hdr->free_hint;
	uint64_t apg = align > HP_SIZE ? align >> HP_SHIFT : 1;
	uint64_t base_pg = (uint64_t)(uintptr_t)h->seg >> HP_SHIFT;
	heap_purge_tick(h);
	if (n == 0 || n >= limit)
		goto full;
	for (;;) {
		i = heap_next_with(h->pbits, i, limit, 0);
		if (apg > 1) {
			uint64_t a = align_up(base_pg + i, apg) - base_pg;
			i = a < limit ? (uint32_t)a : limit;
		}
		if (i >= limit || limit - i < n)
			goto full;
		uint32_t j = heap_next_with(h->pbits, i, i + n, 1);
		if (j == i + n)
			break;
		i = j;
	}
	if (heap_grow_to(h, (uint64_t)(i + n) << HP_SHIFT) < 0 || heap_purge_back(h, i, n) < 0)
		return 0;
	heap_bits_set(h->pbits, i, n, 1);
	if (i == h->hdr->free_hint)
		h->hdr->free_hint = i + n;
	return i;
full:
	if (grow)
		ckpt_err_set(ENOMEM, "heap full: no run of %u free %llu-byte pages (heap of %llu "
				"bytes)", n, (unsigned long long)HP_SIZE, (unsigned long long)h->size);
	return 0;
}

/* heap_pages_alloc -- pages_take anywhere: 0 with ENOMEM if no run fits */
uint32_t
heap_pages_alloc(struct heap *h, uint32_t n, uint64_t align)
{
	return pages_take(h, n, align, 1);
}

/* heap_pages_alloc_below -- heap_pages_alloc of n pages below the high-water mark, or 0
 * (nothing set: the heap would have to grow) */
uint32_t
heap_pages_alloc_below(struct heap *h, uint32_t n)
{
	return pages_take(h, n, 1, 0);
}

/* heap_pages_free -- mark pages [pg, pg+n) free; their page map entries must be 0 */
void
heap_pages_free(struct heap *h, uint32_t pg, uint32_t n)
{
	heap_bits_set(h->pbits, pg, n, 0);
	if (pg < h->hdr->free_hint)
		h->hdr->free_hint = pg;
	heap_purge_freed(h, pg, n);       /* fresh first: a sweep now leaves them */
	heap_purge_tick(h);
}

