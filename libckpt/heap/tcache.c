/*
 * heap/tcache.c -- the front caches: per thread slot, per slab class, a
 * LIFO of blocks the slot's thread freed, which its next allocations of the
 * class take back without touching the slab (struct tcache in
 * heap/types.h states the invariants).
 *
 * The caches are DRAM, the heap's durable state is the segment: a cached
 * block stays allocated in its slab's bitmap and count, so the segment is a
 * valid heap at every instant (a process that dies with blocks cached
 * leaves them allocated: leaked, never handed out twice). Every quiesce
 * makes it exact: heap_lock_all (checkpoint, fork, heap_validate_all)
 * drains every slot's cache once no thread is inside the heap, a thread's
 * exit and a slot's release drain the slot's, heap_reclaim drains the
 * caller's before it looks for free pages, and heap_detach drains them all.
 * Draining a block is the owner's free of it on the generic path
 * (slab_release in heap/private.h); putting it in and taking it out are
 * the inline steps tc_push and tc_pop that the fast paths of heap/api.c
 * use. A free finds a block's tag (its first word) when the block is
 * cached: the owner's free confirms it with heap_tc_holds, another
 * thread's free, a usable-size or a set-root reports it at once.
 */
#include "heap/private.h"

/* heap_tc_drain -- give every block in slot i's front cache back to its slab */
void
heap_tc_drain(struct heap *h, uint32_t i)
{
	struct tcache *tc = &h->tc[i];
	struct tslot *ts = &h->slots[i];
	for (unsigned c = 0; c < TC_NCLASS; c++) {
		uint32_t n = tc->n[c];
		tc->n[c] = 0;
		/* oldest first: the newest ends at the head of its slab's free list */
		for (uint32_t j = 0; j < n; j++) {
			void *p = tc->b[c][j];
			uint64_t off = (uint64_t)((uint8_t *)p - h->seg);
			uint32_t pg = slab_first(h, off);
			struct slab *s = SLAB(h, pg);
			uint32_t idx = blk_index(&heap_cls_tab[c], pg, off);
			uint64_t *aw = &ABW(s, idx);
			slab_release(h, ts, s, pg, c, aw, ld64(aw), 1ull << (idx & 63), p, off);
		}
	}
}

/* heap_tc_drain_all -- heap_tc_drain of every slot with a block cached */
void
heap_tc_drain_all(struct heap *h)
{
	for (uint32_t i = 1; i < NSLOTS; i++) {
		const struct tcache *tc = &h->tc[i];
		uint32_t any = 0;
		for (unsigned c = 0; c < TC_NCLASS; c++)
			any |= tc->n[c];
		if (any)
			heap_tc_drain(h, i);
	}
}

/* heap_tc_holds -- 1 if block p of class c is in the front cache tc */
int
heap_tc_holds(const struct tcache *tc, unsigned c, const void *p)
{
	for (uint32_t j = 0; j < tc->n[c]; j++)
		if (tc->b[c][j] == p)
			return 1;
	return 0;
}

/* heap_tc_bytes -- bytes in every front cache (racy while threads run) */
uint64_t
heap_tc_bytes(const struct heap *h)
{
	uint64_t t = 0;
	for (uint32_t i = 1; i < NSLOTS; i++)
		for (unsigned c = 0; c < TC_NCLASS; c++)
			t += (uint64_t)__atomic_load_n(&h->tc[i].n[c], __ATOMIC_RELAXED) *
				heap_cls_tab[c].bsize;
	return t;
}
