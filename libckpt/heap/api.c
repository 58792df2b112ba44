/*
 * heap/api.c -- heap.h's allocation API: alloc, free, realloc, the block
 * queries and the root, over the slabs (heap/slab.c) and large blocks
 * (heap/large.c).
 *
 * heap_alloc and heap_free have fast paths for the common case: a thread
 * with its own slot (cached in heap_tl), a slab block (up to 64 KiB), its
 * front cache of the class (every slab class has one) or the current slab
 * of the class with a block on its free list (alloc), a live block of a
 * slab the thread owns (free). They are built from the same inline steps
 * as the generic paths (heap/private.h: tc_pop, tc_push, slab_unlink_free,
 * slab_mark, slab_push_local, fast_enter); anything else goes to the slow path, which
 * starts over and checks and reports every invalid pointer (locate).
 */
#include <errno.h>
#include <string.h>

#include "heap/private.h"

/*
 * locate -- classify p: the start of a slab block position or of a large
 * block position. -1 with EINVAL and a message (prefixed by `what`) when p
 * cannot be a block start. Says nothing about the block being allocated.
 */
static int
locate(const struct heap *h, const void *p, const char *what, struct binfo *bi)
{
	uint64_t off = (uint64_t)((uintptr_t)p - (uintptr_t)h->seg);
	if (off >= h->size)
		return ckpt_err_set(EINVAL, "%s(%p): not a block of this heap: outside "
				"the heap [%p, %p)", what, p, (void *)h->seg,
				(void *)(h->seg + h->size));
	uint32_t pg = (uint32_t)(off >> HP_SHIFT);
	if (pg >= h->npages)
		return ckpt_err_set(EINVAL, "%s(%p): not a block: past the last heap page", what, p);
	uint32_t e = pm_get(h, pg);
	bi->off = off;
	switch (PM_KIND(e)) {
	case PM_TAIL:
		if (PM_VAL(e) > pg || PM_KIND(pm_get(h, pg - PM_VAL(e))) != PM_SLAB)
			return ckpt_err_set(EINVAL, "%s(%p): damaged page map at page %u", what, p, pg);
		pg -= PM_VAL(e);
		e = pm_get(h, pg);
		/* fall through */
	case PM_SLAB: {
		unsigned c = PM_VAL(e);
		if (c >= NCLASS)
			return ckpt_err_set(EINVAL, "%s(%p): damaged page map at page %u", what, p, pg);
		const struct cls *k = &heap_cls_tab[c];
		uint64_t base = ((uint64_t)pg << HP_SHIFT) + k->dstart;
		if (off < base)
			return ckpt_err_set(EINVAL, "%s(%p): not a block: inside the heap's "
					"metadata (slab header at %p)", what, p,
					(void *)(h->seg + ((uint64_t)pg << HP_SHIFT)));
		uint32_t idx = blk_index(k, pg, off);
		if (idx >= k->cap)
			return ckpt_err_set(EINVAL, "%s(%p): not a block: in the unused tail "
					"of a slab", what, p);
		uint64_t start = base + (uint64_t)idx * k->bsize;
		if (start != off)
			return ckpt_err_set(EINVAL, "%s(%p): not the start of a block: %llu "
					"bytes inside the %u-byte block at %p", what, p,
					(unsigned long long)(off - start), k->bsize,
					(void *)(h->seg + start));
		bi->pg = pg;
		bi->idx = idx;
		bi->c = c;
		bi->large = 0;
		return 0;
	}
	case PM_LARGE:
		if (off & (HP_SIZE - 1))
			return ckpt_err_set(EINVAL, "%s(%p): not the start of a block: %llu "
					"bytes inside the large block at %p", what, p,
					(unsigned long long)(off & (HP_SIZE - 1)),
					(void *)(h->seg + ((uint64_t)pg << HP_SHIFT)));
		bi->pg = pg;
		bi->large = 1;
		return 0;
	case PM_FREE:
		if (bit_get(h->pbits, pg)) {
			uint32_t q = pg;
			while (q > h->data_page && PM_KIND(pm_get(h, q)) == PM_FREE)
				q--;
			return ckpt_err_set(EINVAL, "%s(%p): not the start of a block: inside "
					"the large block at %p", what, p,
					(void *)(h->seg + ((uint64_t)q << HP_SHIFT)));
		}
		if (off & (HP_SIZE - 1))
			return ckpt_err_set(EINVAL, "%s(%p): not a block: in free heap space", what, p);
		bi->pg = pg;
		bi->large = 1;
		return 0;       /* a free page start: the caller reports ENOENT */
	default:
		return ckpt_err_set(EINVAL, "%s(%p): not a block: inside the heap's metadata",
				what, p);
	}
}

/* block_usable -- usable size of the live block p, or 0 with ENOENT/EINVAL and a message */
static size_t
block_usable(struct heap *h, const void *p, const char *what)
{
	struct binfo bi;
	if (!p) {
		ckpt_err_set(EINVAL, "%s(NULL): not a block", what);
		return 0;
	}
	if (locate(h, p, what, &bi) < 0)
		return 0;
	if (bi.large) {
		uint32_t e = pm_get(h, bi.pg);
		if (PM_KIND(e) == PM_LARGE)
			return (size_t)PM_VAL(e) << HP_SHIFT;
	} else {
		struct slab *s = SLAB(h, bi.pg);
		uint64_t m = 1ull << (bi.idx & 63);
		if (slab_ready(h, s, bi.pg, 0) < 0)
			return 0;
		if ((ld64(&ABW(s, bi.idx)) & m) && !(ld64(&RBW(s, bi.idx)) & m) &&
		    !(bi.c < TC_NCLASS && tc_tagged(h, p, bi.off)))
			return heap_cls_tab[bi.c].bsize;
	}
	ckpt_err_set(ENOENT, "%s(%p): block is not allocated (already freed, or never "
			"handed out)", what, p);
	return 0;
}

/* -- the API ----------------------------------------------------------------------- */

/* class_alloc -- a block of class c in a busy section of the calling thread's slot */
static void *
class_alloc(struct heap *h, unsigned c)
{
	uint32_t slot;
	struct tslot *ts = op_enter(h, &slot);
	void *p = slab_alloc(h, ts, slot, c);
	busy_leave(h, ts, slot);
	return p;
}

/* alloc_slow -- heap_alloc when the fast path cannot serve it */
static void * __attribute__((noinline))
alloc_slow(struct heap *h, size_t size)
{
	if (CKPT_LIKELY(size <= SMALL_MAX))
		return class_alloc(h, size_class(size));
	return heap_large_alloc(h, size, HP_SIZE);
}

/*
 * slab_pop_fast -- the fast allocation from the calling thread's current slab of
 * class c: a free-list block of a slab checked in this attach, else NULL
 * (busy held)
 */
static ALWAYS_INLINE void *
slab_pop_fast(struct heap *h, unsigned c)
{
	uint32_t pg = heap_tl.ts->avail[c];
	if (CKPT_LIKELY(pg != 0)) {
		struct slab *s = SLAB(h, pg);
		uint64_t b = s->free;
		if (CKPT_LIKELY(b != 0 &&
				atomic_load_explicit(&s->epoch, RELAXED) == h->vfull)) {
			slab_mark(s, slab_unlink_free(h, s, &heap_cls_tab[c], pg, b));
			return h->seg + b;
		}
	}
	return NULL;
}

/*
 * alloc_in_section -- the rest of a fast allocation of size <= SMALL_MAX
 * bytes that found no block in the front cache or on the current slab's
 * free list: the generic slab_alloc (the slab's untouched blocks, the avail
 * list, remote frees, adoption, new pages), run inside the busy section the
 * fast path opened, which it leaves. That section is the one class_alloc
 * would open: the thread's own slot (not the shared slot 0, so no
 * shared_mx), busy set, and gate clear (stop clear, membarrier in use, so no
 * fence is owed). Out of line and given size, not the class (found again
 * here), so that the fast paths tail-call it with their arguments as they
 * came and keep no value across a call.
 */
static void * __attribute__((noinline))
alloc_in_section(struct heap *h, size_t size)
{
	void *p = slab_alloc(h, heap_tl.ts, heap_tl.slot, size_class(size));
	fast_leave(heap_tl.busy);
	return p;
}

/*
 * alloc_fast -- the fast allocation of size bytes, class c, for a thread with
 * its own slot: the block its front cache got last of the class (tc_pop),
 * else the free list of its current slab of the class (slab_pop_fast). A
 * current slab without a free-list block sends it on to the generic
 * slab_alloc inside the same busy section (alloc_in_section); stop set or
 * no membarrier to alloc_slow, which starts over. One body for heap_alloc
 * (up to TC_MAX bytes) and alloc_paged (the larger classes).
 */
static ALWAYS_INLINE void *
alloc_fast(struct heap *h, size_t size, unsigned c)
{
	_Atomic uint32_t *busy = heap_tl.busy;
	void *q = NULL;
	if (CKPT_LIKELY(fast_enter(h, busy))) {
		struct tcache *tc = heap_tl.tc;
		uint32_t n = tc->n[c];
		if (CKPT_LIKELY(n != 0)) {
			q = tc_pop(tc, c, n);
			fast_leave(busy);
			return q;
		}
		q = slab_pop_fast(h, c);
		if (CKPT_UNLIKELY(q == NULL))
			return alloc_in_section(h, size);
	}
	fast_leave(busy);
	if (CKPT_LIKELY(q != NULL))
		return q;
	return alloc_slow(h, size);     /* stop set, or no membarrier */
}

/* alloc_paged -- heap_alloc of a small block above TC_MAX bytes (a class on
 * multi-page slabs, or a one-page one above 512 B), out of line */
static void * __attribute__((noinline))
alloc_paged(struct heap *h, size_t size)
{
	return alloc_fast(h, size, size_class(size));
}

/*
 * heap_alloc -- fast path: a thread with its own slot (cached in heap_tl)
 * takes a block of the class from its front cache, else its current slab
 * (alloc_fast: inline up to TC_MAX bytes, in alloc_paged for the larger
 * classes); the rest (first call, shared slot, large) goes to alloc_slow.
 */
void * __attribute__((hot))
heap_alloc(struct heap *h, size_t size)
{
	if (CKPT_UNLIKELY(heap_tl.fhid != h->hid))
		return alloc_slow(h, size);
	if (CKPT_UNLIKELY(size > TC_MAX))
		return size <= SMALL_MAX ? alloc_paged(h, size) : alloc_slow(h, size);
	return alloc_fast(h, size, heap_cls_small[(size + 15) >> 4]);
}

/* heap_calloc -- nmemb * size zeroed bytes (ENOMEM on overflow) */
void *
heap_calloc(struct heap *h, size_t nmemb, size_t size)
{
	uint64_t n;
	if (mul_overflows(nmemb, size, &n) || n > SIZE_MAX) {
		ckpt_err_set(ENOMEM, "calloc(%zu, %zu): size overflows", nmemb, size);
		return NULL;
	}
	void *p = heap_alloc(h, (size_t)n);
	if (p)
		memset(p, 0, (size_t)n);
	return p;
}

/* heap_aligned_alloc -- a block aligned to alignment: a class whose blocks are, or a large block */
void *
heap_aligned_alloc(struct heap *h, size_t alignment, size_t size)
{
	if (alignment == 0 || (alignment & (alignment - 1))) {
		ckpt_err_set(EINVAL, "aligned_alloc: alignment %zu is not a power of two", alignment);
		return NULL;
	}
	if (alignment <= 16)
		return heap_alloc(h, size);
	if (alignment <= SMALL_ALIGN_MAX && size <= SMALL_MAX) {
		size_t n = size < alignment ? alignment : size;
		unsigned c = size_class(n);
		uint32_t b = heap_cls_tab[c].bsize;
		if (b & (alignment - 1)) {
			/* the next power of two is a class and a multiple of alignment */
			b = 1u << (32 - __builtin_clz(b));
			c = size_class(b);
		}
		if (b <= SMALL_MAX)
			return class_alloc(h, c);
	}
	return heap_large_alloc(h, size, alignment);
}

/* free_slow -- what the fast path of heap_free does not take: NULL, large blocks, other
 * owners' blocks, the shared slot, stop set, and every invalid pointer (checked, reported) */
static int __attribute__((noinline))
free_slow(struct heap *h, void *p)
{
	if (!p)
		return 0;
	struct binfo bi;
	if (locate(h, p, "free", &bi) < 0)
		return -1;
	uint32_t slot;
	struct tslot *ts = op_enter(h, &slot);
	int ret = bi.large ? heap_large_free(h, &bi, p) : slab_free(h, ts, slot, &bi, p);
	busy_leave(h, ts, slot);
	return ret;
}

/* free_fixup -- heap_free's tail when heap_free_local_slow has work on slab s (busy held;
 * released here); takes only s so that the fast path keeps fewer values live */
static int __attribute__((noinline))
free_fixup(struct heap *h, struct slab *s)
{
	uint32_t pg = (uint32_t)(((uint8_t *)s - h->seg) >> HP_SHIFT);
	/* the class as the fast path found it, in the page map (not the slab header) */
	heap_free_local_slow(h, heap_tl.ts, s, pg, PM_VAL(pm_get(h, pg)));
	fast_leave(heap_tl.busy);
	return 0;
}

/* blk_at -- idx of the block starting at segment offset off of a slab of class k at
 * segment offset base; UINT32_MAX if off is not a block start */
static ALWAYS_INLINE uint32_t
blk_at(const struct cls *k, uint64_t off, uint64_t base)
{
	uint64_t rel = off - base - k->dstart;
	uint32_t idx = (uint32_t)((rel * k->mul) >> 40);
	if (CKPT_UNLIKELY(rel >= k->span || (uint64_t)idx * k->bsize != rel))
		return UINT32_MAX;
	return idx;
}

/*
 * blk_at_page -- idx of the block starting at segment offset off of a
 * one-page slab of class k < TC_PAGE_NCLASS (up to 512 B); UINT32_MAX if off
 * is not a block start. With M = ceil(2^32 / bsize), rel * M >> 32 is
 * rel / bsize and (rel * M) mod 2^32 < M iff bsize divides rel, for
 * rel < 2^14 and bsize < 2^10 (Lemire, Kaser, Kurz, "Faster remainder by
 * direct computation", 2019; checked for every class and offset): one
 * multiplication where blk_at needs two.
 */
static ALWAYS_INLINE uint32_t
blk_at_page(const struct cls *k, uint64_t off)
{
	uint32_t rel = (uint32_t)(off & (HP_SIZE - 1)) - k->dstart;
	uint64_t prod = (uint64_t)rel * k->mul32;
	if (CKPT_UNLIKELY(rel >= k->span || (uint32_t)prod >= k->mul32))
		return UINT32_MAX;
	return (uint32_t)(prod >> 32);
}

/*
 * free_push -- the tail of a fast free by the owner (busy section open, the
 * block checked live): push block idx of class c (at p, segment offset off,
 * abits word aw holding a) on its slab s's free list, refile or free the
 * slab when that has work (free_fixup), leave the section
 */
static ALWAYS_INLINE int
free_push(struct heap *h, struct slab *s, uint64_t *aw, uint64_t a, uint32_t idx, uint32_t c,
		void *p, uint64_t off)
{
	uint32_t used = slab_push_local(s, aw, a, 1ull << (idx & 63), p, off);
	if (CKPT_UNLIKELY(local_free_has_work(s, &heap_cls_tab[c], used)))
		return free_fixup(h, s);
	fast_leave(heap_tl.busy);
	return 0;
}

/*
 * free_cache_full -- the rest of the fast free of the block p at segment
 * offset off whose class's front cache is full: inside the busy section
 * free_owned opened and after its checks (the block is live, its slab the
 * caller's, its page map entries checked), back on its slab's free list.
 * The slab's first page and the class come from the page map again (as
 * heap_tc_drain finds them). Out of line and given only (h, p, off), so
 * that the fast path keeps no more values live for it.
 */
static int __attribute__((noinline))
free_cache_full(struct heap *h, void *p, uint64_t off)
{
	uint32_t pg = slab_first(h, off);
	struct slab *s = SLAB(h, pg);
	uint32_t c = PM_VAL(pm_get(h, pg));
	uint32_t idx = blk_index(&heap_cls_tab[c], pg, off);
	uint64_t *aw = &ABW(s, idx);
	return free_push(h, s, aw, ld64(aw), idx, c, p, off);
}

/*
 * free_remote -- the rest of the fast free of the block p (block idx of
 * class c at segment offset off, in the slab at page pg, checked by the
 * caller as free_slow's locate would) when the calling thread is not
 * marked as the slab's owner (pown): inside the busy section the fast path
 * opened, the generic remote free (heap_remote_free: the slab checked on
 * its first use in this attach, the block's abit tested, its rbit set
 * with one atomic OR, the slab's hint set if clear; a double or
 * invalid free reported there, the heap untouched), instead of leaving
 * and finding the block again through free_slow. A slab that is the
 * caller's own after all (pown is set by the owner's first free through
 * slab_free) goes to free_slow, as before. Out of line: the local free
 * keeps its registers; six arguments (the slab from pg), so that the fast
 * paths jump to it (a seventh, on the stack, made it a call with a frame).
 */
static int __attribute__((noinline))
free_remote(struct heap *h, void *p, uint64_t off, uint64_t pg, uint32_t idx, uint32_t c)
{
	struct slab *s = SLAB(h, pg);
	if (atomic_load_explicit(&s->owner, RELAXED) == heap_tl.slot + 1) {
		fast_leave(heap_tl.busy);
		return free_slow(h, p);
	}
	struct binfo bi = { .off = off, .pg = (uint32_t)pg, .idx = idx, .c = c, .large = 0 };
	int ret = heap_remote_free(h, s, &bi, p);
	fast_leave(heap_tl.busy);
	return ret;
}

/*
 * free_owned -- the fast free of the block p at segment offset off, the
 * start of block idx of class c in the slab s at page pg (checked by the
 * caller): a live block of a slab the calling thread owns goes into its
 * front cache, which holds cap blocks of the class (TC_CAP, a constant, in
 * heap_free; the class's tcap in free_paged), or when that is full back on
 * the slab's free list (free_cache_full); a block of a slab another thread
 * owns to free_remote. Anything else goes to free_slow. One body for
 * heap_free (the one-page classes) and free_paged (the others).
 */
static ALWAYS_INLINE int
free_owned(struct heap *h, void *p, uint64_t off, struct slab *s, uint64_t pg, uint32_t idx,
		uint32_t c, uint32_t cap)
{
	_Atomic uint32_t *busy = heap_tl.busy;
	if (CKPT_UNLIKELY(!fast_enter(h, busy))) {
		fast_leave(busy);
		return free_slow(h, p);     /* stop set, or no membarrier */
	}
	if (CKPT_UNLIKELY(h->pown[pg] != heap_tl.own))
		return free_remote(h, p, off, pg, idx, c);
	uint64_t *aw = &ABW(s, idx);
	uint64_t a = ld64(aw);
	if (CKPT_UNLIKELY(!blk_live(a, ld64(aw + 1), idx))) {
		fast_leave(busy);
		return free_slow(h, p);     /* not allocated: checks and reports */
	}
	if (CKPT_UNLIKELY(tc_tagged(h, p, off))) {
		fast_leave(busy);
		return free_slow(h, p);     /* cached: a double free, checked there */
	}
	if (CKPT_UNLIKELY(!tc_push(h, heap_tl.tc, c, p, off, cap)))
		return free_cache_full(h, p, off);  /* the slab's free list */
	fast_leave(busy);
	return 0;
}

/* free_paged -- heap_free of a block not on a one-page slab of the first
 * TC_PAGE_NCLASS classes: a later page of a slab, a slab of a larger class,
 * else free_slow. Its slab's first page comes from the page map (a slab of a
 * one-page class met here through a damaged page map's later-page entry
 * too: the checks are the same) */
static int __attribute__((noinline))
free_paged(struct heap *h, void *p, uint64_t off, uint32_t e)
{
	uint64_t base = off & ~(HP_SIZE - 1);
	uint32_t c = e - PM(PM_SLAB, 0);
	if (c >= NCLASS) {
		/* a later page of a slab: find its first page; else large or not a block */
		if (PM_KIND(e) != PM_TAIL || PM_VAL(e) > (off >> HP_SHIFT))
			return free_slow(h, p);
		base -= (uint64_t)PM_VAL(e) << HP_SHIFT;
		c = pm_get(h, (uint32_t)(base >> HP_SHIFT)) - PM(PM_SLAB, 0);
		if (c >= NCLASS)
			return free_slow(h, p);
	}
	uint32_t idx = blk_at(&heap_cls_tab[c], off, base);
	if (CKPT_UNLIKELY(idx == UINT32_MAX))
		return free_slow(h, p);
	return free_owned(h, p, off, (struct slab *)(h->seg + base), base >> HP_SHIFT,
			idx, c, heap_cls_tab[c].tcap);
}

/*
 * heap_free -- fast path: an allocated block of a slab that the calling
 * thread (with its own slot, cached in heap_tl) owns goes into the
 * thread's front cache (tc_push) unless that is full; else clear its abit,
 * push it on the slab's free list (free_owned). Blocks of the classes up
 * to TC_MAX are on one-page slabs, found inline; the rest go through
 * free_paged. A cached block (its tag) goes to free_slow, which
 * reports the double free. Anything else (NULL, large blocks, other owners,
 * the shared slot, stop set, and every invalid free) goes to free_slow,
 * which starts over, checks and reports.
 */
int __attribute__((hot))
heap_free(struct heap *h, void *p)
{
	uint64_t off = (uint64_t)((uintptr_t)p - (uintptr_t)h->seg);
	if (CKPT_UNLIKELY(off >= h->limit || heap_tl.fhid != h->hid))
		return free_slow(h, p);
	uint32_t e = pm_get(h, off >> HP_SHIFT);       /* off < limit: a page of the map */
	uint32_t c = e - PM(PM_SLAB, 0);
	if (CKPT_UNLIKELY(c >= TC_PAGE_NCLASS))
		return free_paged(h, p, off, e);
	uint32_t idx = blk_at_page(&heap_cls_tab[c], off);
	if (CKPT_UNLIKELY(idx == UINT32_MAX))
		return free_slow(h, p);
	/* a one-page slab: its header is p's page (the segment is HP_SIZE-aligned,
	 * heap_attach checks it), found from p without reloading h->seg */
	struct slab *s = (struct slab *)((uintptr_t)p & ~(uintptr_t)(HP_SIZE - 1));
	return free_owned(h, p, off, s, off >> HP_SHIFT, idx, c, TC_CAP);
}

/* heap_usable_size -- usable bytes of a live block (heap.h) */
size_t
heap_usable_size(struct heap *h, const void *ptr)
{
	return block_usable(h, ptr, "usable_size");
}

/*
 * block_size_paged -- heap_block_size of what its fast path does not take:
 * a block of a slab of a larger class (its first page or a later one), a
 * large block, and anything odd. It repeats locate's page-map steps on the
 * success path instead of calling it (with locate, out of line with every
 * check and message site, malloc_usable_size was 7% of redis-server's
 * profile under ckpt-run); anything odd goes to block_usable, so errors
 * and messages stay locate's.
 */
static size_t __attribute__((noinline))
block_size_paged(struct heap *h, const void *ptr)
{
	uint64_t off = (uint64_t)((uintptr_t)ptr - (uintptr_t)h->seg);
	if (off < h->size) {
		uint32_t pg = (uint32_t)(off >> HP_SHIFT);
		uint32_t e = pm_get(h, pg);
		if (PM_KIND(e) == PM_TAIL && PM_VAL(e) <= pg) {
			pg -= PM_VAL(e);
			e = pm_get(h, pg);
		}
		if (PM_KIND(e) == PM_SLAB && PM_VAL(e) < NCLASS) {
			const struct cls *k = &heap_cls_tab[PM_VAL(e)];
			uint64_t base = ((uint64_t)pg << HP_SHIFT) + k->dstart;
			uint32_t idx = off >= base ? blk_index(k, pg, off) : UINT32_MAX;
			if (idx < k->cap && base + (uint64_t)idx * k->bsize == off)
				return k->bsize;
		}
		if (PM_KIND(e) == PM_LARGE && !(off & (HP_SIZE - 1)))
			return (size_t)PM_VAL(e) << HP_SHIFT;
	}
	return block_usable(h, ptr, "usable_size");
}

/*
 * heap_block_size -- heap.h. Fast path, as heap_free's: a block of a class
 * up to TC_MAX is on a one-page slab, so one page-map entry and one
 * multiplication (blk_at_page) find and check it; the rest goes to
 * block_size_paged, out of line, so this path saves no registers. A stock
 * redis-server calls malloc_usable_size on every allocation and free: this
 * took its cost from 54 to 25 instructions a call (24 on this path;
 * callgrind, docs/BENCHMARKS.md "Where redis-server's time goes under
 * ckpt-run").
 */
size_t
heap_block_size(struct heap *h, const void *ptr)
{
	uint64_t off = (uint64_t)((uintptr_t)ptr - (uintptr_t)h->seg);
	if (CKPT_LIKELY(off < h->size)) {
		uint32_t c = pm_get(h, (uint32_t)(off >> HP_SHIFT)) - PM(PM_SLAB, 0);
		if (CKPT_LIKELY(c < TC_PAGE_NCLASS && blk_at_page(&heap_cls_tab[c], off) != UINT32_MAX))
			return heap_cls_tab[c].bsize;
	}
	return block_size_paged(h, ptr);
}

/* heap_is_block -- 1 if ptr starts a live block; errno untouched */
int
heap_is_block(struct heap *h, const void *ptr)
{
	int saved = errno;
	int r = ptr && (uint64_t)((uintptr_t)ptr - (uintptr_t)h->seg) < h->size &&
		block_usable(h, ptr, "is_block") != 0;
	errno = saved;
	return r;
}

/* heap_realloc -- resize in place when the class or the page run allows, else move */
void *
heap_realloc(struct heap *h, void *ptr, size_t size)
{
	if (!ptr)
		return heap_alloc(h, size);
	size_t old = block_usable(h, ptr, "realloc");
	if (!old)
		return NULL;
	if (old <= SMALL_MAX) {
		if (size <= old && (size >= old / 2 || (size <= SMALL_MAX &&
				heap_cls_tab[size_class(size)].bsize == old)))
			return ptr;
	} else if (size > SMALL_MAX || size >= old / 2) {
		uint32_t pg = (uint32_t)(((uint8_t *)ptr - h->seg) >> HP_SHIFT);
		if (heap_large_resize(h, pg, size) == 0)
			return ptr;
	}
	void *q = heap_alloc(h, size);
	if (!q)
		return NULL;
	memcpy(q, ptr, old < size ? old : size);
	heap_free(h, ptr);
	return q;
}

/* heap_root -- the root block, or NULL */
void *
heap_root(struct heap *h)
{
	uint64_t r = __atomic_load_n(&h->hdr->root, __ATOMIC_RELAXED);
	return r ? h->seg + r : NULL;
}

/* heap_set_root -- make the live block ptr (or NULL) the root */
int
heap_set_root(struct heap *h, void *ptr)
{
	if (ptr && !block_usable(h, ptr, "set_root")) {
		errno = EINVAL;
		return -1;
	}
	uint64_t off = ptr ? (uint64_t)((uint8_t *)ptr - h->seg) : 0;
	__atomic_store_n(&h->hdr->root, off, __ATOMIC_RELAXED);
	return 0;
}

/* heap_high_water -- bytes from the segment start the heap has ever used */
size_t
heap_high_water(struct heap *h)
{
	return (size_t)__atomic_load_n(&h->hdr->high_water, __ATOMIC_RELAXED);
}

/* heap_bytes_in_use -- bytes in live blocks, summed over the page map (racy while threads run) */
size_t
heap_bytes_in_use(struct heap *h)
{
	uint64_t t = 0;
	uint32_t hwp = (uint32_t)(heap_high_water(h) >> HP_SHIFT);
	for (uint32_t p = h->data_page; p < hwp && p < h->npages; p++) {
		uint32_t e = pm_get(h, p);
		if (PM_KIND(e) == PM_SLAB && PM_VAL(e) < NCLASS) {
			/* live = allocated minus freed by other threads, not yet collected */
			const struct cls *k = &heap_cls_tab[PM_VAL(e)];
			struct slab *s = SLAB(h, p);
			int64_t n = __atomic_load_n(&s->used, __ATOMIC_RELAXED);
			for (uint32_t w = 0; w < k->words; w++)
				n -= __builtin_popcountll(ld64(&RBW(s, 64 * w)));
			t += n > 0 ? (uint64_t)n * k->bsize : 0;
		}
		else if (PM_KIND(e) == PM_LARGE)
			t += (uint64_t)PM_VAL(e) << HP_SHIFT;
	}
	uint64_t cached = heap_tc_bytes(h);
	return (size_t)(t > cached ? t - cached : 0);
}
