/*
 * heap/private.h -- what the files of the heap share: the functions one
 * file calls in another (all named heap_*, hidden), and the inline helpers
 * that the fast paths of heap/api.c and the generic paths of heap/slab.c
 * and heap/thread.c are both built from. A step of the allocator (pop a
 * block off a slab's free list, mark it, push a freed block, enter and
 * leave a busy section) is written once here; the fast paths are these
 * helpers with fewer checks around them, never a copy of them.
 *
 * Files, bottom to top (calls go down):
 *   types.h    geometry, structures and their invariants
 *   classes.c  the size-class table
 *   pages.c    the page allocator: page bitmap, high-water mark (heap.lock)
 *   purge.c    giving the memory of long free page runs back (heap.lock)
 *   slab.c     slabs: lists, refill, collecting remote frees, adoption
 *   large.c    page-granular large blocks
 *   tcache.c   the per-slot front caches of freed small blocks: the drain
 *   thread.c   thread slots, the busy flag, quiescing (lock_all, fork, exit)
 *   validate.c checking each slab of an attached heap on its first use
 *   attach.c   format, attach (metadata check), upgrade of older versions, detach
 *   walk.c     the walker of an untrusted segment (uses only types.h)
 *   api.c      heap.h's allocation API and its fast paths
 */
#ifndef CKPT_HEAP_PRIVATE_H
#define CKPT_HEAP_PRIVATE_H 1

#include <errno.h>

#include "heap/types.h"

/* -- classes.c ------------------------------------------------------------------ */

/* heap_cls_init -- compute the class table once (every entry point calls it) */
CKPT_HIDDEN void heap_cls_init(void);

/* size_class -- the class of a request of n bytes, n <= SMALL_MAX (n == 0: class 0) */
static inline unsigned
size_class(size_t n)
{
	if (n <= 1024)
		return heap_cls_small[(n + 15) >> 4];
	unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
	return 8 + (k - 7) * 4 + (unsigned)(((n - 1) >> (k - 2)) & 3);
}

/* -- pages.c (heap.lock held) ---------------------------------------------------- */

CKPT_HIDDEN int heap_layout_of(uint64_t seg_size, struct layout *l);
CKPT_HIDDEN void heap_bits_set(uint64_t *bits, uint32_t i, uint32_t n, int v);
CKPT_HIDDEN uint32_t heap_next_with(const uint64_t *bits, uint32_t i, uint32_t limit, int v);
CKPT_HIDDEN uint32_t heap_next_union(const uint64_t *a, const uint64_t *b, const uint64_t *c,
		uint32_t i, uint32_t limit, int v);
CKPT_HIDDEN int heap_grow_to(struct heap *h, uint64_t end);
CKPT_HIDDEN uint32_t heap_pages_alloc(struct heap *h, uint32_t n, uint64_t align);
CKPT_HIDDEN uint32_t heap_pages_alloc_below(struct heap *h, uint32_t n);
CKPT_HIDDEN void heap_pages_free(struct heap *h, uint32_t pg, uint32_t n);

/* -- purge.c (heap.lock held; called by pages.c, and large.c's in-place growth) -- */

/* heap_purge_tick -- a page-level operation: give back what aged a period, once a period */
CKPT_HIDDEN void heap_purge_tick(struct heap *h);
/* heap_purge_freed -- pages [pg, pg+n) were just freed (fresh; delay 0: given back now) */
CKPT_HIDDEN void heap_purge_freed(struct heap *h, uint32_t pg, uint32_t n);
/* heap_purge_grown -- pages [pg, pg+n) are new below the high-water mark: fresh */
CKPT_HIDDEN void heap_purge_grown(struct heap *h, uint32_t pg, uint32_t n);
/* heap_purge_back -- pages about to be handed out: back the purged ones again; 0 or -1 ENOMEM */
CKPT_HIDDEN int heap_purge_back(struct heap *h, uint32_t pg, uint32_t n);
/* heap_purge_fini -- free the purge state (heap_detach; no lock) */
CKPT_HIDDEN void heap_purge_fini(struct heap *h);

/* -- thread.c: the busy flag ----------------------------------------------------- */

CKPT_HIDDEN void heap_busy_wait(struct heap *h, struct tslot *ts, uint32_t slot);
CKPT_HIDDEN void heap_tl_lookup(struct heap *h);
/* heap_threads_init -- locks, membarrier, slot records, the thread-exit key of a new handle */
CKPT_HIDDEN void heap_threads_init(struct heap *h);
/* heap_threads_fini -- undo heap_threads_init */
CKPT_HIDDEN void heap_threads_fini(struct heap *h);

/* busy_fence -- order the busy store before the stop load (see heap_lock_all) */
static inline void
busy_fence(const struct heap *h)
{
	if (CKPT_UNLIKELY(h->fence))
		atomic_thread_fence(memory_order_seq_cst);
	else
		atomic_signal_fence(memory_order_seq_cst);
}

/* busy_enter -- mark the slot inside an operation (waits out heap_lock_all) */
static ALWAYS_INLINE void
busy_enter(struct heap *h, struct tslot *ts, uint32_t slot)
{
	if (CKPT_UNLIKELY(slot == 0))
		pthread_mutex_lock(&h->shared_mx);
	atomic_store_explicit(&h->busy[slot].v, 1, RELAXED);
	busy_fence(h);
	if (CKPT_UNLIKELY(atomic_load_explicit(&h->stop, RELAXED)))
		heap_busy_wait(h, ts, slot);
}

/* busy_leave -- publish the operation's writes and leave */
static ALWAYS_INLINE void
busy_leave(struct heap *h, struct tslot *ts, uint32_t slot)
{
	(void)ts;
	atomic_store_explicit(&h->busy[slot].v, 0, memory_order_release);
	if (CKPT_UNLIKELY(slot == 0))
		pthread_mutex_unlock(&h->shared_mx);
}

/*
 * fast_enter -- the fast paths' busy section: only for a thread with its
 * own slot (heap_tl.fhid == h->hid). No fence: heap_lock_all's membarrier
 * orders the store; gate (stop | fence << 1) sends them to the slow path.
 * Returns nonzero when the caller may go on.
 */
static ALWAYS_INLINE int
fast_enter(struct heap *h, _Atomic uint32_t *busy)
{
	atomic_store_explicit(busy, 1, RELAXED);
	atomic_signal_fence(memory_order_seq_cst);
	return !atomic_load_explicit(&h->gate, RELAXED);
}

/* fast_leave -- end of a fast path's busy section */
static ALWAYS_INLINE void
fast_leave(_Atomic uint32_t *busy)
{
	atomic_store_explicit(busy, 0, memory_order_release);
}

/* op_enter -- the calling thread's slot, marked busy; *slot set */
static ALWAYS_INLINE struct tslot *
op_enter(struct heap *h, uint32_t *slot)
{
	if (CKPT_UNLIKELY(heap_tl.hid != h->hid))
		heap_tl_lookup(h);
	struct tslot *ts = heap_tl.ts;
	*slot = heap_tl.slot;
	busy_enter(h, ts, *slot);
	return ts;
}

/* -- validate.c -------------------------------------------------------------------- */

CKPT_HIDDEN int heap_slab_validate(struct heap *h, uint32_t pg, int full);
CKPT_HIDDEN int heap_heads_check(struct heap *h, uint32_t slot);
CKPT_HIDDEN void heap_epoch_new(struct heap *h);

/*
 * slab_ready -- slab s at page pg may be used: by its list holder (full:
 * the owner, or heap.lock for an abandoned slab), or by a thread that
 * frees into it (!full). The first use in this attach checks it
 * (heap_slab_validate); -1 with EINVAL and a message if it is damaged.
 */
static ALWAYS_INLINE int
slab_ready(struct heap *h, struct slab *s, uint32_t pg, int full)
{
	uint64_t e = atomic_load_explicit(&s->epoch, memory_order_acquire);
	if (CKPT_LIKELY(e == h->vfull || (!full && e == h->epoch)))
		return 0;
	return heap_slab_validate(h, pg, full);
}

/* -- slab.c ------------------------------------------------------------------------ */

/* binfo -- what a pointer designates (filled by heap_locate) */
struct binfo {
	uint64_t off;      /* from the segment start */
	uint32_t pg;       /* slab: first page; large: first page */
	uint32_t idx;      /* slab block index */
	unsigned c;        /* slab class */
	int large;
};

CKPT_HIDDEN void heap_slab_free_pages(struct heap *h, uint32_t pg);
CKPT_HIDDEN uint32_t heap_collect(struct heap *h, struct slab *s, uint32_t pg);
CKPT_HIDDEN void heap_abandoned_push(struct heap *h, uint32_t pg);
CKPT_HIDDEN int heap_slot_release(struct heap *h, uint32_t i);
CKPT_HIDDEN int heap_orphan_release_one(struct heap *h);
CKPT_HIDDEN int heap_steal_due(struct heap *h, uint32_t me);
CKPT_HIDDEN void heap_steal_idle(struct heap *h, uint32_t me);
CKPT_HIDDEN int heap_stop_others(struct heap *h, uint32_t me);
CKPT_HIDDEN uint32_t heap_reclaim(struct heap *h, struct tslot *ts);
CKPT_HIDDEN void *heap_slab_alloc_slow(struct heap *h, struct tslot *ts, uint16_t own,
		unsigned c);
CKPT_HIDDEN int heap_remote_free(struct heap *h, struct slab *s, const struct binfo *bi,
		void *p);
CKPT_HIDDEN void heap_free_local_slow(struct heap *h, struct tslot *ts, struct slab *s,
		uint32_t pg, unsigned c);

/* slab_first -- the first page of the slab holding segment offset off (its page map
 * entry is PM_SLAB or a PM_TAIL already checked: a block the caller holds) */
static ALWAYS_INLINE uint32_t
slab_first(const struct heap *h, uint64_t off)
{
	uint32_t pg = (uint32_t)(off >> HP_SHIFT);
	uint32_t e = pm_get(h, pg);
	return PM_KIND(e) == PM_TAIL ? pg - PM_VAL(e) : pg;
}

/* blk_index -- index of the block at segment offset off in slab pg (no checks) */
static ALWAYS_INLINE uint32_t
blk_index(const struct cls *k, uint32_t pg, uint64_t off)
{
	uint64_t rel = off - ((uint64_t)pg << HP_SHIFT) - k->dstart;
	return (uint32_t)((rel * k->mul) >> 40);
}

/* slab_has_room -- the slab can hand out a block without collecting */
static inline int
slab_has_room(const struct slab *s)
{
	return s->free != 0 || s->bump < s->cap;
}

/*
 * slab_unlink_free -- take block b, the head of s's local free list (b != 0),
 * off the list; returns its index. A corrupted link (use after free) is
 * dropped, never followed.
 */
static ALWAYS_INLINE uint32_t
slab_unlink_free(struct heap *h, struct slab *s, const struct cls *k, uint32_t pg, uint64_t b)
{
	uint64_t next = *(uint64_t *)(h->seg + b);
	uint64_t base = (uint64_t)pg << HP_SHIFT;
	s->free = next - base < k->sbytes ? next : 0;
	return blk_index(k, pg, b);
}

/* slab_mark -- block idx of s is handed out: set its abit, count it */
static ALWAYS_INLINE void
slab_mark(struct slab *s, uint32_t idx)
{
	uint64_t *w = &ABW(s, idx);
	st64(w, ld64(w) | (1ull << (idx & 63)));
	used_set(s, s->used + 1);
}

/* slab_pop -- take one block from a slab with room (owner) */
static ALWAYS_INLINE void *
slab_pop(struct heap *h, struct slab *s, uint32_t pg, unsigned c)
{
	const struct cls *k = &heap_cls_tab[c];
	uint64_t b = s->free;
	uint32_t idx;
	if (CKPT_LIKELY(b != 0)) {
		idx = slab_unlink_free(h, s, k, pg, b);
	} else {
		idx = s->bump++;
		b = ((uint64_t)pg << HP_SHIFT) + k->dstart + (uint64_t)idx * k->bsize;
	}
	slab_mark(s, idx);
	return h->seg + b;
}

/* slab_alloc -- a block of class c for the calling thread (busy held) */
static ALWAYS_INLINE void *
slab_alloc(struct heap *h, struct tslot *ts, uint32_t slot, unsigned c)
{
	uint32_t pg = ts->avail[c];
	if (CKPT_LIKELY(pg != 0)) {
		struct slab *s = SLAB(h, pg);
		if (CKPT_LIKELY(atomic_load_explicit(&s->epoch, RELAXED) == h->vfull &&
				slab_has_room(s)))
			return slab_pop(h, s, pg, c);
	}
	return heap_slab_alloc_slow(h, ts, (uint16_t)(slot + 1), c);
}

/* blk_live -- abits word a and rbits word r say block idx is live (its bit,
 * idx mod 64, tested where it is: no mask to build; the rbits word of
 * ABW(s, i) is the next one: ABW(s, i) + 1 == &RBW(s, i)) */
static ALWAYS_INLINE int
blk_live(uint64_t a, uint64_t r, uint32_t idx)
{
	return (int)(((a & ~r) >> (idx & 63)) & 1);
}

/*
 * slab_push_local -- the owner frees the live block p at segment offset off
 * (bit m of abits word aw, which holds a): clear the abit, push the block on
 * the local free list. Returns the slab's new block count.
 */
static ALWAYS_INLINE uint32_t
slab_push_local(struct slab *s, uint64_t *aw, uint64_t a, uint64_t m, void *p, uint64_t off)
{
	st64(aw, a & ~m);
	*(uint64_t *)p = s->free;
	s->free = off;
	uint32_t used = s->used - 1;
	used_set(s, used);
	return used;
}

/*
 * local_free_has_work -- after a local free left `used` blocks in slab s of
 * class k: it emptied the slab, or brought a full slab to k->refill free
 * blocks (heap_free_local_slow then has something to do)
 */
static ALWAYS_INLINE int
local_free_has_work(const struct slab *s, const struct cls *k, uint32_t used)
{
	return used == 0 || (s->list != LIST_AVAIL && s->cap - used >= k->refill);
}

/*
 * slab_release -- the owner frees block idx of slab s (page pg, class c),
 * known to be live (bit m of abits word aw, which holds a), at segment
 * offset off: push it, and refile or free the slab when that has work
 */
static ALWAYS_INLINE void
slab_release(struct heap *h, struct tslot *ts, struct slab *s, uint32_t pg, unsigned c,
		uint64_t *aw, uint64_t a, uint64_t m, void *p, uint64_t off)
{
	uint32_t used = slab_push_local(s, aw, a, m, p, off);
	if (CKPT_UNLIKELY(local_free_has_work(s, &heap_cls_tab[c], used)))
		heap_free_local_slow(h, ts, s, pg, c);
}

/* -- tcache.c: the front cache (see struct tcache) --------------------------------- */

/* heap_tc_drain -- give every block in slot i's front cache back to its slab (no other
 * op of slot i runs: its thread's busy section, or the heap quiesced, or no thread) */
CKPT_HIDDEN void heap_tc_drain(struct heap *h, uint32_t i);
/* heap_tc_drain_all -- heap_tc_drain of every slot (the heap quiesced, or detaching) */
CKPT_HIDDEN void heap_tc_drain_all(struct heap *h);
/* heap_tc_holds -- 1 if block p of class c is in the front cache tc */
CKPT_HIDDEN int heap_tc_holds(const struct tcache *tc, unsigned c, const void *p);
/* heap_tc_bytes -- bytes in every front cache (racy while threads run) */
CKPT_HIDDEN uint64_t heap_tc_bytes(const struct heap *h);

/* tc_tag -- what a cached block at segment offset off holds in its first 8 bytes
 * (bit 63 of tckey is set: never a free-list link, never 0) */
static ALWAYS_INLINE uint64_t
tc_tag(const struct heap *h, uint64_t off)
{
	return off ^ h->tckey;
}

/* tc_tagged -- the block p at offset off holds its tag: it is in a front cache */
static ALWAYS_INLINE int
tc_tagged(const struct heap *h, const void *p, uint64_t off)
{
	return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED) == tc_tag(h, off);
}

/* tc_pop -- the last of the n > 0 blocks cached of class c < TC_NCLASS (n == tc->n[c]),
 * its tag cleared */
static ALWAYS_INLINE void *
tc_pop(struct tcache *tc, unsigned c, uint32_t n)
{
	void *p = tc->b[c][n - 1];
	tc->n[c] = n - 1;
	__atomic_store_n((uint64_t *)p, 0, __ATOMIC_RELAXED);
	return p;
}

/* tc_push -- cache the live block p (offset off) of class c < TC_NCLASS, whose cache
 * holds cap blocks (heap_cls_tab[c].tcap; a constant in the one-page fast path); 0 if full */
static ALWAYS_INLINE int
tc_push(const struct heap *h, struct tcache *tc, unsigned c, void *p, uint64_t off, uint32_t cap)
{
	uint32_t n = tc->n[c];
	if (n >= cap)
		return 0;
	__atomic_store_n((uint64_t *)p, tc_tag(h, off), __ATOMIC_RELAXED);
	tc->b[c][n] = p;
	tc->n[c] = n + 1;
	return 1;
}

/* slab_free -- free block bi->idx of the slab at page bi->pg (busy held) */
static ALWAYS_INLINE int
slab_free(struct heap *h, struct tslot *ts, uint32_t slot, const struct binfo *bi, void *p)
{
	struct slab *s = SLAB(h, bi->pg);
	if (CKPT_UNLIKELY(atomic_load_explicit(&s->owner, RELAXED) != slot + 1))
		return heap_remote_free(h, s, bi, p);
	if (CKPT_UNLIKELY(slab_ready(h, s, bi->pg, 1) < 0))
		return -1;
	if (slot != 0)
		h->pown[bi->pg] = (uint8_t)(slot + 1);  /* owned and checked: the fast free may come */
	uint32_t idx = bi->idx;
	uint64_t m = 1ull << (idx & 63);
	uint64_t *aw = &ABW(s, idx);
	uint64_t a = ld64(aw);
	if (CKPT_UNLIKELY(!blk_live(a, ld64(aw + 1), idx)))
		return ckpt_err_set(ENOENT, "free(%p): block is not allocated (double free, "
				"or never handed out)", p);
	if (CKPT_UNLIKELY(bi->c < TC_NCLASS && tc_tagged(h, p, bi->off) &&
			heap_tc_holds(&h->tc[slot], bi->c, p)))
		return ckpt_err_set(ENOENT, "free(%p): block already freed (double free; "
				"it waits in this thread's front cache)", p);
	/* into the front cache, as the fast path does, unless the heap is being
	 * quiesced (the caches stay empty while stop is set) */
	if (bi->c < TC_NCLASS && slot != 0 && !atomic_load_explicit(&h->stop, RELAXED) &&
	    tc_push(h, &h->tc[slot], bi->c, p, bi->off, heap_cls_tab[bi->c].tcap))
		return 0;
	slab_release(h, ts, s, bi->pg, bi->c, aw, a, m, p, bi->off);
	return 0;
}

/* -- large.c ----------------------------------------------------------------------- */

CKPT_HIDDEN void *heap_large_alloc(struct heap *h, size_t n, size_t align);
CKPT_HIDDEN int heap_large_free(struct heap *h, const struct binfo *bi, const void *p);
CKPT_HIDDEN int heap_large_resize(struct heap *h, uint32_t pg, size_t n);

/* -- walk.c ------------------------------------------------------------------------ */

/*
 * heap_hdr_check -- validate the header of an untrusted heap in b[0..len):
 * fields, layout, and (need_hw) that the high-water mark lies within len.
 */
CKPT_HIDDEN int heap_hdr_check(const uint8_t *b, size_t len, struct heap_hdr *H,
		struct layout *l, int need_hw);
/* heap_meta_check -- the walk without the slabs' contents: header, page map and
 * bitmap, slots, the lists' heads (distinct, slabs of their class), free hint */
CKPT_HIDDEN int heap_meta_check(const void *buf, size_t len);
CKPT_HIDDEN int heap_slab_check(const uint8_t *b, uint32_t ver, uint32_t pg, unsigned c,
		struct slab *sh, uint64_t *ab, uint64_t *rb);

#endif /* CKPT_HEAP_PRIVATE_H */
