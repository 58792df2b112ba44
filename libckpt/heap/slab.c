/*
 * heap/slab.c -- slabs: runs of pages cut into blocks of one size class,
 * each owned by one thread slot (slab.owner), on one list: its owner's avail
 * list (may have free blocks; the first is the one allocated from), its
 * owner's full list, or the abandoned list of its class (owner 0: the thread
 * left, or the heap was attached anew).
 *
 * The owner allocates and frees locally without atomics (bitmap abits, the
 * local free list); another thread's free is one atomic OR of the block's
 * rbit (which also finds a second free of it), then sets the slab's rhint
 * if it was clear, and sets the owner's pending bit if the slab is on the
 * full list. The owner collects a slab's rbits when its current slab runs
 * dry and the hint is set (heap_collect), and whatever the hint says when
 * it abandons or adopts a slab, or reclaims before ENOMEM. A thread that
 * stays idle collects nothing, so before the heap grows for a new slab a
 * thread may stop the others and take their slabs (heap_steal_idle: each
 * other slot lets go of them as at its thread's exit), which it and any
 * other thread then adopt instead of fresh pages. This file holds
 * the generic paths; the steps that the fast paths share with them (pop,
 * mark, push) are inline in heap/private.h. Page runs come from
 * heap/pages.c under heap.lock.
 *
 * Memory order of a remote free against a collection (format 4): the
 * freer does OR(rbits) then, if it loads rhint == 0, stores rhint = 1; the
 * owner stores rhint = 0 then loads rbits. All four are seq_cst, so if the
 * owner's load misses the freer's bit, the owner's store of 0 precedes the
 * freer's load of rhint in the single total order: the freer sees 0 and
 * sets the hint again (a freer that saw 1 saw it before the owner cleared
 * it, so its bit was before the owner's load). So, read seq_cst by the
 * owner, a clear hint says every free whose hint step came before was
 * collected. On x86 only the hint store that finds it clear is a second
 * locked instruction: once per slab per collection, not per free. The same
 * order makes slab_try_full's store of in_full then load of the hint
 * against the freer's hint step then load of in_full a Dekker pair: the
 * owner sees the hint set, or the freer sees in_full and sets pending.
 */
#include <errno.h>
#include <string.h>

#include "heap/private.h"

/* list_push -- put slab pg at the front of *head */
static void
list_push(struct heap *h, uint32_t *head, uint32_t pg)
{
	struct slab *s = SLAB(h, pg);
	s->prev = 0;
	s->next = *head;
	if (*head)
		SLAB(h, *head)->prev = pg;
	*head = pg;
}

/* list_push_second -- put slab pg right after the head of *head (first if empty) */
static void
list_push_second(struct heap *h, uint32_t *head, uint32_t pg)
{
	if (!*head) {
		list_push(h, head, pg);
		return;
	}
	struct slab *f = SLAB(h, *head), *s = SLAB(h, pg);
	s->prev = *head;
	s->next = f->next;
	if (f->next)
		SLAB(h, f->next)->prev = pg;
	f->next = pg;
}

/* list_unlink -- take slab pg out of *head */
static void
list_unlink(struct heap *h, uint32_t *head, uint32_t pg)
{
	struct slab *s = SLAB(h, pg);
	if (s->prev)
		SLAB(h, s->prev)->next = s->next;
	else
		*head = s->next;
	if (s->next)
		SLAB(h, s->next)->prev = s->prev;
	s->next = s->prev = 0;
}

/* unlink_full -- take slab pg (on the full list of class c) off it; the caller files it next */
static void
unlink_full(struct heap *h, struct tslot *ts, struct slab *s, uint32_t pg, unsigned c)
{
	list_unlink(h, &ts->full[c], pg);
	atomic_store_explicit(&s->in_full, 0, RELAXED);
}

/*
 * slab_at -- slab pg, met on the list `list` of owner `owner` (as its first
 * slab: head), ready for its list holder: checked on first use
 * (heap/validate.c) and naming that list. NULL with EINVAL and a message if
 * it is damaged: the caller stops there and leaves it as it is.
 */
static inline struct slab *
slab_at(struct heap *h, uint32_t pg, unsigned owner, uint32_t list, int head)
{
	struct slab *s = SLAB(h, pg);
	if (slab_ready(h, s, pg, 1) < 0)
		return NULL;
	if (s->list != list || atomic_load_explicit(&s->owner, RELAXED) != owner ||
	    (head && s->prev != 0)) {
		ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx is met on a list it does "
				"not name (list %u, owner %u)", (unsigned long long)pg << HP_SHIFT,
				s->list, atomic_load_explicit(&s->owner, RELAXED));
		return NULL;
	}
	return s;
}

/* heap_slab_free_pages -- give an empty slab's pages back (heap.lock held) */
void
heap_slab_free_pages(struct heap *h, uint32_t pg)
{
	struct slab *s = SLAB(h, pg);
	uint32_t n = heap_cls_tab[s->cls].pages;
	h->pown[pg] = 0;
	s->magic = 0;
	for (uint32_t i = 0; i < n; i++)
		pm_set(h, pg + i, 0);
	heap_pages_free(h, pg, n);
}

/* slab_init -- format fresh pages [pg, pg+pages) as an empty slab of class c */
static void
slab_init(struct heap *h, uint32_t pg, unsigned c, uint16_t owner, uint32_t list)
{
	const struct cls *k = &heap_cls_tab[c];
	struct slab *s = SLAB(h, pg);
	/* the header and both bitmaps; the padding up to dstart (up to 4 KiB for
	 * the aligned classes) is never read */
	memset(s, 0, SLAB_HDR + 16 * k->words);
	s->magic = SLAB_MAGIC;
	s->cls = (uint16_t)c;
	s->cap = k->cap;
	s->list = list;
	atomic_store_explicit(&s->owner, owner, RELAXED);
	atomic_store_explicit(&s->epoch, h->vfull, RELAXED);
	for (uint32_t i = 1; i < k->pages; i++)
		pm_set(h, pg + i, PM(PM_TAIL, i));
	pm_set(h, pg, PM(PM_SLAB, c));
}

/*
 * heap_collect -- the owner (or heap.lock's holder for an abandoned slab)
 * frees locally the blocks other threads freed into slab s: clears the
 * hint, then per nonzero rbits word takes the bits whose abit is set,
 * clears their abits, pushes them on the free list, and clears the bits it
 * read with one AND (a bit without its abit is the trace of a double free
 * that raced with the first free: dropped). Returns how many blocks it
 * collected.
 */
uint32_t
heap_collect(struct heap *h, struct slab *s, uint32_t pg)
{
	const struct cls *k = &heap_cls_tab[s->cls];
	uint64_t lo = ((uint64_t)pg << HP_SHIFT) + k->dstart;
	uint32_t n = 0;
	atomic_store(&s->rhint, 0);
	for (uint32_t w = 0; w < k->words; w++) {
		uint64_t *rw = &RBW(s, 64 * w), *aw = &ABW(s, 64 * w);
		uint64_t r = __atomic_load_n(rw, __ATOMIC_SEQ_CST);
		if (!r)
			continue;
		uint64_t a = ld64(aw), take = r & a;
		if (!take) {
			__atomic_fetch_and(rw, ~r, __ATOMIC_RELEASE);
			continue;
		}
		st64(aw, a & ~take);
		uint64_t head = s->free;
		uint32_t got = 0;       /* counted here: no popcount libcall without -mpopcnt */
		for (uint64_t t = take; t; t &= t - 1, got++) {
			uint64_t b = lo + (64ull * w + (unsigned)__builtin_ctzll(t)) * k->bsize;
			*(uint64_t *)(h->seg + b) = head;
			head = b;
		}
		s->free = head;
		used_set(s, s->used - got);
		n += got;
		__atomic_fetch_and(rw, ~r, __ATOMIC_RELEASE);
	}
	return n;
}

/* slab_try_full -- mark the slab full unless a remote free raced in (Dekker with
 * heap_remote_free: see above) */
static int
slab_try_full(struct slab *s)
{
	atomic_store(&s->in_full, 1);
	if (atomic_load(&s->rhint)) {
		atomic_store_explicit(&s->in_full, 0, RELAXED);
		return 0;
	}
	return 1;
}

/* heap_abandoned_push -- put slab pg on the abandoned list of its class (heap.lock held) */
void
heap_abandoned_push(struct heap *h, uint32_t pg)
{
	struct slab *s = SLAB(h, pg);
	s->list = LIST_ABANDONED;
	list_push(h, &h->hdr->abandoned[s->cls], pg);
}

/* slab_abandon -- the owner lets go of a slab: free it if empty, else abandon it */
static void
slab_abandon(struct heap *h, uint32_t pg)
{
	struct slab *s = SLAB(h, pg);
	heap_collect(h, s, pg);
	s->next = s->prev = 0;
	s->list = LIST_NONE;
	atomic_store_explicit(&s->in_full, 0, RELAXED);
	h->pown[pg] = 0;
	atomic_store_explicit(&s->owner, 0, memory_order_release);
	pthread_mutex_lock(&h->lock);
	if (s->used == 0)       /* no abit: no block can wait (rbits ⊆ abits) */
		heap_slab_free_pages(h, pg);
	else
		heap_abandoned_push(h, pg);
	pthread_mutex_unlock(&h->lock);
}

/*
 * heap_slot_release -- abandon every slab of slot i (no other op of slot i
 * runs); the caller frees the slot (or, heap_steal_idle, keeps it). Each
 * slab is taken off the front of its list (so the next one is a checked
 * list's first); a damaged slab stops its list there, and the slot keeps
 * what is left (returns -1).
 */
int
heap_slot_release(struct heap *h, uint32_t i)
{
	struct tslot *ts = &h->slots[i];
	int ret = 0;
	heap_tc_drain(h, i);
	for (unsigned c = 0; c < NCLASS; c++) {
		uint32_t *lists[2] = { &ts->avail[c], &ts->full[c] };
		for (int l = 0; l < 2; l++) {
			uint32_t steps = 0;
			while (*lists[l] && steps++ < h->npages) {
				uint32_t pg = *lists[l];
				struct slab *s = slab_at(h, pg, i + 1, l ? LIST_FULL : LIST_AVAIL, 1);
				if (!s) {
					ret = -1;
					break;
				}
				list_unlink(h, lists[l], pg);
				slab_abandon(h, pg);
			}
		}
	}
	atomic_store_explicit(&ts->pending, 0, RELAXED);
	return ret;
}

/*
 * heap_orphan_release_one -- take one orphan slot (heap/thread.c) and
 * abandon its slabs, so that any thread can adopt them; 1 if one was
 * released (busy held by the caller's own slot)
 */
int
heap_orphan_release_one(struct heap *h)
{
	for (uint32_t i = 1; i < NSLOTS; i++) {
		uint8_t one = 1;
		if (atomic_load_explicit(&h->orphan[i], RELAXED) == 1 &&
		    atomic_compare_exchange_strong(&h->orphan[i], &one, 0)) {
			atomic_fetch_sub(&h->norphans, 1);
			if (heap_slot_release(h, i) < 0) {
				atomic_store(&h->orphan[i], 2);     /* damaged: never taken */
				return 1;
			}
			atomic_store_explicit(&h->slots[i].state, 0, memory_order_release);
			return 1;
		}
	}
	return 0;
}

/* steal_slot -- slot i is another thread's and has had slabs in this attach */
static int
steal_slot(const struct heap *h, uint32_t i, uint32_t me)
{
	return i != me && __atomic_load_n(&h->slabbed[i], __ATOMIC_RELAXED) &&
		atomic_load_explicit(&h->slots[i].state, RELAXED) &&
		!atomic_load_explicit(&h->orphan[i], RELAXED);
}

/*
 * heap_steal_due -- slot me needs fresh pages for a slab and none fit below
 * the high-water mark (heap.lock held): 1 if the mark grew by an eighth
 * (at least HEAP_GROW_STEP) since the last steal, and another thread's
 * slot has had slabs, which may hold blocks other threads freed that it
 * does not collect (it is idle: docs/HEAP.md, "Threads").
 * Whether it is idle is not asked: a running thread's current slab and
 * counts are in its slot, which it reads again at every call, and the
 * steals are few (one per 2 MiB of growth up to 16 MiB, then per eighth)
 */
int
heap_steal_due(struct heap *h, uint32_t me)
{
	uint64_t hw = h->hdr->high_water, step = h->steal_hw / 8;
	if (step < HEAP_GROW_STEP)
		step = HEAP_GROW_STEP;
	if (atomic_load_explicit(&h->nslabbed, RELAXED) < 2 || hw < h->steal_hw + step)
		return 0;
	for (uint32_t i = 0; i < NSLOTS; i++) {
		if (steal_slot(h, i, me)) {
			h->steal_hw = hw;
			return 1;
		}
	}
	return 0;
}

/*
 * heap_steal_idle -- before the heap grows: with every other thread out of
 * the heap (heap_stop_others), each other claimed slot lets go of its
 * slabs as at its thread's exit (heap_slot_release: its front cache goes
 * back to its slabs, each slab is collected, freed if empty, else
 * abandoned), but keeps its claim: the calling thread, or any other, adopts
 * them before it takes fresh pages, and their owner takes them back (or
 * others) as any thread adopts slabs. The blocks other threads freed into
 * the slabs of a thread that no longer allocates are so reused. Busy held
 * by slot me. Nothing if another thread stops the world already.
 */
void
heap_steal_idle(struct heap *h, uint32_t me)
{
	if (!heap_stop_others(h, me))
		return;
	for (uint32_t i = 0; i < NSLOTS; i++)
		if (steal_slot(h, i, me))
			heap_slot_release(h, i);    /* a damaged slab stays with its slot */
	heap_unlock_all(h);
}

/*
 * scan_full -- move the full slabs of class c that got frees since back to
 * avail: those whose hint says remote frees wait (seq_cst: a freer that
 * found the pending bit already set did not set it again, but its hint
 * step precedes the caller's clearing of the bit in the total order), and
 * those with at least `min` blocks on
 * their local free list (1: any). Returns how many it moved.
 */
static uint32_t
scan_full(struct heap *h, struct tslot *ts, unsigned c, uint32_t min)
{
	uint32_t pg = ts->full[c], moved = 0, steps = 0;
	unsigned own = (unsigned)(ts - h->slots) + 1;
	while (pg && steps++ < h->npages) {
		struct slab *s = slab_at(h, pg, own, LIST_FULL, pg == ts->full[c]);
		if (!s)
			break;
		uint32_t next = s->next;
		if ((s->free != 0 && s->cap - s->used >= min) ||
		    atomic_load(&s->rhint)) {
			unlink_full(h, ts, s, pg, c);
			s->list = LIST_AVAIL;
			list_push(h, &ts->avail[c], pg);
			moved++;
		}
		pg = next;
	}
	return moved;
}

/* reclaim_own -- before failing with ENOMEM: give back every empty slab this slot owns */
static uint32_t
reclaim_own(struct heap *h, struct tslot *ts)
{
	uint32_t freed = 0;
	for (unsigned c = 0; c < NCLASS; c++) {
		scan_full(h, ts, c, 1);
		uint32_t pg = ts->avail[c], steps = 0;
		unsigned own = (unsigned)(ts - h->slots) + 1;
		while (pg && steps++ < h->npages) {
			struct slab *s = slab_at(h, pg, own, LIST_AVAIL, pg == ts->avail[c]);
			if (!s)
				break;
			uint32_t next = s->next;
			heap_collect(h, s, pg);     /* whatever the hint says */
			if (s->used == 0) {
				list_unlink(h, &ts->avail[c], pg);
				s->list = LIST_NONE;
				pthread_mutex_lock(&h->lock);
				heap_slab_free_pages(h, pg);
				pthread_mutex_unlock(&h->lock);
				freed++;
			}
			pg = next;
		}
	}
	return freed;
}

/* reclaim_abandoned -- free abandoned slabs whose blocks were all freed (heap.lock held) */
static uint32_t
reclaim_abandoned(struct heap *h)
{
	uint32_t freed = 0;
	for (unsigned c = 0; c < NCLASS; c++) {
		uint32_t pg = h->hdr->abandoned[c], steps = 0;
		while (pg && steps++ < h->npages) {
			struct slab *s = slab_at(h, pg, 0, LIST_ABANDONED, pg == h->hdr->abandoned[c]);
			if (!s)
				break;
			uint32_t next = s->next;
			heap_collect(h, s, pg);     /* whatever the hint says */
			if (s->used == 0) {
				list_unlink(h, &h->hdr->abandoned[c], pg);
				s->list = LIST_NONE;
				heap_slab_free_pages(h, pg);
				freed++;
			}
			pg = next;
		}
	}
	return freed;
}

/* heap_reclaim -- before failing with ENOMEM: free every empty slab this thread can reach */
uint32_t
heap_reclaim(struct heap *h, struct tslot *ts)
{
	int saved = errno;
	if (ts != &h->slots[0])
		heap_tc_drain(h, (uint32_t)(ts - h->slots));
	while (atomic_load_explicit(&h->norphans, RELAXED) && heap_orphan_release_one(h))
		;
	uint32_t n = reclaim_own(h, ts);
	pthread_mutex_lock(&h->lock);
	n += reclaim_abandoned(h);
	pthread_mutex_unlock(&h->lock);
	errno = saved;
	return n;
}

/* adopt -- take abandoned slabs of class c (heap.lock held); returns one with room, or 0 */
static uint32_t
adopt(struct heap *h, struct tslot *ts, uint16_t own, unsigned c)
{
	for (int tries = 0; tries < 16; tries++) {
		uint32_t pg = h->hdr->abandoned[c];
		if (!pg)
			return 0;
		struct slab *s = slab_at(h, pg, 0, LIST_ABANDONED, 1);
		if (!s)
			return 0;
		list_unlink(h, &h->hdr->abandoned[c], pg);
		atomic_store_explicit(&s->owner, own, memory_order_release);
		heap_collect(h, s, pg);
		if (!slab_has_room(s) && slab_try_full(s)) {
			s->list = LIST_FULL;
			list_push(h, &ts->full[c], pg);
			continue;
		}
		if (!slab_has_room(s))
			heap_collect(h, s, pg);
		s->list = LIST_AVAIL;
		list_push(h, &ts->avail[c], pg);
		if (slab_has_room(s))
			return pg;
	}
	return 0;
}

/* heap_slab_alloc_slow -- the current slab of class c is exhausted: find or make another */
void * __attribute__((noinline))
heap_slab_alloc_slow(struct heap *h, struct tslot *ts, uint16_t own, unsigned c)
{
	int reclaimed = 0;
	if (CKPT_UNLIKELY(!h->slabbed[own - 1])) {     /* once: no shared line written again */
		__atomic_store_n(&h->slabbed[own - 1], 1, __ATOMIC_RELAXED);
		atomic_fetch_add_explicit(&h->nslabbed, 1, RELAXED);
	}
	for (;;) {
		uint32_t pg = ts->avail[c], steps = 0;
		while (pg && steps++ < 4 * h->npages) {
			struct slab *s = slab_at(h, pg, own, LIST_AVAIL, pg == ts->avail[c]);
			if (!s)
				return NULL;
			if (!slab_has_room(s) && atomic_load_explicit(&s->rhint, RELAXED))
				heap_collect(h, s, pg);
			if (slab_has_room(s)) {
				if (pg != ts->avail[c]) {
					list_unlink(h, &ts->avail[c], pg);
					list_push(h, &ts->avail[c], pg);
				}
				return slab_pop(h, s, pg, c);
			}
			uint32_t next = s->next;
			if (!slab_try_full(s)) {
				heap_collect(h, s, pg);     /* a remote free raced in */
				continue;
			}
			list_unlink(h, &ts->avail[c], pg);
			s->list = LIST_FULL;
			list_push(h, &ts->full[c], pg);
			pg = next;
		}
		/*
		 * The avail list is dry. Local frees refile a full slab
		 * themselves once it has cls.refill free blocks; remote frees
		 * into full slabs set pending: then take back the full slabs
		 * whose hint is set (or with refill local free blocks). Before failing,
		 * reclaim takes back every free block.
		 */
		uint64_t bit = 1ull << c;
		if (atomic_load_explicit(&ts->pending, RELAXED) & bit) {
			atomic_fetch_and(&ts->pending, ~bit);
			if (scan_full(h, ts, c, heap_cls_tab[c].refill))
				continue;
		}
		pthread_mutex_lock(&h->lock);
		pg = adopt(h, ts, own, c);
		int orphans = atomic_load_explicit(&h->norphans, RELAXED) != 0;
		if (!pg && !orphans) {
			uint32_t n = heap_cls_tab[c].pages;
			pg = heap_pages_alloc_below(h, n);
			if (!pg && heap_steal_due(h, own - 1u)) {
				/* the heap would grow: take the other slots' slabs first */
				pthread_mutex_unlock(&h->lock);
				heap_steal_idle(h, own - 1u);
				continue;
			}
			if (!pg)
				pg = heap_pages_alloc(h, n, 1);
			if (pg) {
				slab_init(h, pg, c, own, LIST_AVAIL);
				list_push(h, &ts->avail[c], pg);
			}
		}
		pthread_mutex_unlock(&h->lock);
		if (pg)
			continue;
		/* before new pages: the slabs of a slot no thread took over */
		if (orphans && heap_orphan_release_one(h))
			continue;
		if (!reclaimed) {
			/* free what can be freed, take back every free block, retry once */
			reclaimed = 1;
			heap_reclaim(h, ts);
			continue;
		}
		return NULL;
	}
}

/*
 * heap_remote_free -- free a block of a slab another slot owns (busy held):
 * its abit loaded (clear: not allocated), then one atomic OR of its rbit
 * (already set: freed by another thread, not yet collected); the hint and
 * pending stores are rare (see above). The abit is tested first, not after
 * the OR: the owner may collect the block between the OR and a later load
 * (and a legit free must never fail). Between the load and the OR the
 * owner clears the abit only if the block was freed meanwhile (collected,
 * or freed by the owner): a double free racing with the first free can
 * slip in and leave an rbit without its abit, which the next collection
 * drops (heap_collect) unless the block was handed out again (docs/HEAP.md,
 * "Remote frees").
 */
int
heap_remote_free(struct heap *h, struct slab *s, const struct binfo *bi, void *p)
{
	if (slab_ready(h, s, bi->pg, 0) < 0)
		return -1;
	if (bi->c < TC_NCLASS && tc_tagged(h, p, bi->off))
		return ckpt_err_set(ENOENT, "free(%p): block already freed (double free; "
				"it waits in its owner thread's front cache)", p);
	uint64_t m = 1ull << (bi->idx & 63);
	if (!(__atomic_load_n(&ABW(s, bi->idx), __ATOMIC_ACQUIRE) & m))
		return ckpt_err_set(ENOENT, "free(%p): block is not allocated (double free, "
				"or never handed out)", p);
	if (__atomic_fetch_or(&RBW(s, bi->idx), m, __ATOMIC_SEQ_CST) & m)
		return ckpt_err_set(ENOENT, "free(%p): block already freed (double free; "
				"the first free came from another thread)", p);
	if (CKPT_UNLIKELY(!atomic_load(&s->rhint)))
		atomic_store(&s->rhint, 1);
	if (CKPT_UNLIKELY(atomic_load(&s->in_full))) {
		unsigned o = atomic_load_explicit(&s->owner, RELAXED);
		uint64_t bit = 1ull << bi->c;
		if (o >= 1 && o <= NSLOTS && !(atomic_load(&h->slots[o - 1].pending) & bit))
			atomic_fetch_or(&h->slots[o - 1].pending, bit);
	}
	return 0;
}

/*
 * heap_free_local_slow -- after a local free that emptied a slab, or that brought
 * a slab on the full list to cls.refill free blocks. An emptied slab that
 * is not the current one goes back to the pages; a full slab with refill
 * free blocks goes back to avail, behind the current slab. (Refiling a
 * full slab on every free made slabs bounce between the lists; with the
 * threshold, each refiled slab serves an eighth of its blocks before it
 * can be full again.)
 */
void __attribute__((noinline))
heap_free_local_slow(struct heap *h, struct tslot *ts, struct slab *s, uint32_t pg, unsigned c)
{
	if (s->used == 0 && ts->avail[c] != pg) {   /* no abit: no block waits */
		if (s->list == LIST_FULL)
			unlink_full(h, ts, s, pg, c);
		else
			list_unlink(h, &ts->avail[c], pg);
		s->list = LIST_NONE;
		pthread_mutex_lock(&h->lock);
		heap_slab_free_pages(h, pg);
		pthread_mutex_unlock(&h->lock);
		return;
	}
	uint32_t head = ts->avail[c];
	if (s->list == LIST_FULL && s->cap - s->used >= heap_cls_tab[c].refill &&
	    (!head || slab_at(h, head, (unsigned)(ts - h->slots) + 1, LIST_AVAIL, 1))) {
		/* second on avail: the current slab stays current, and this one
		 * gathers more frees before it is allocated from */
		unlink_full(h, ts, s, pg, c);
		s->list = LIST_AVAIL;
		list_push_second(h, &ts->avail[c], pg);
	}
}

