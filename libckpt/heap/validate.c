/*
 * heap/validate.c -- checking an attached heap's slabs on first use.
 *
 * heap_attach reads only the heap's metadata (header, thread slots, page
 * map, page bitmap: heap_meta_check), which is small and contiguous, so
 * that a restart that maps a checkpoint and fetches pages on first access
 * (the lazy restart) touches a few pages before the program runs, not
 * every slab. Each slab is checked when the allocator first uses it in
 * this attach, before anything of it is trusted:
 *
 *   - by any thread that frees into it, or asks whether a block of it is
 *     live: the header against the class, the counts, both bitmaps, the
 *     free list, the remote-free hint (heap_slab_check, the walker's own
 *     check of a slab); the slab's epoch field is then set to heap.epoch,
 *     and its hint to 1 if blocks wait in rbits (a process that died
 *     between a remote free's OR and its hint store left it 0);
 *   - by its list holder (its owner, or a holder of heap.lock for an
 *     abandoned slab) before it allocates from it, frees locally into it or
 *     moves it between lists: the above, and its list links (its previous
 *     slab points back at it, or it is the head of the list its owner and
 *     list fields name; its next slab points back at it); epoch is then
 *     heap.epoch | 1, which is what the fast paths compare with.
 *
 * heap.epoch is random and new at every attach, so a stored epoch never
 * passes for a check made in this attach (a damaged or hostile image cannot
 * guess it). A fork child keeps it, with its slabs already checked. Checks
 * run one at a time under heap.vmx; nothing else writes a slab before it is
 * checked except the link fields (a neighbour's list operation), which only
 * the full check reads, and only its list holder writes.
 *
 * A damaged slab makes the operation that first meets it fail with EINVAL
 * and the walker's message, and every later one that meets it, and it is
 * never written; the rest of the heap goes on working.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "heap/private.h"

/* heap_epoch_new -- a fresh random even epoch for h (never 0) */
void
heap_epoch_new(struct heap *h)
{
	uint64_t e = 0;
	if (getrandom(&e, sizeof(e), GRND_NONBLOCK) != (ssize_t)sizeof(e)) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		e = ((uint64_t)t.tv_nsec << 32) ^ (uint64_t)t.tv_sec ^ (uint64_t)(uintptr_t)h ^
			h->hid * 0x9e3779b97f4a7c15ull;
	}
	e &= ~1ull;
	if (e == 0)
		e = 2;
	h->epoch = e;
	h->vfull = e | 1;
	/* the front caches' tag key: as random, bit 63 set (never a link, never 0) */
	h->tckey = (e * 0x9e3779b97f4a7c15ull) | (1ull << 63);
}

/* list_head -- where the head of the list slab s (class c) names lives */
static uint32_t *
list_head(struct heap *h, const struct slab *s, unsigned c)
{
	unsigned own = atomic_load_explicit(&s->owner, RELAXED);
	if (s->list == LIST_ABANDONED)
		return &h->hdr->abandoned[c];
	return s->list == LIST_AVAIL ? &h->slots[own - 1].avail[c] : &h->slots[own - 1].full[c];
}

/* link_ok -- page q is a slab of class c on the same list as s whose next (want_next) or
 * prev link is pg */
static int
link_ok(struct heap *h, const struct slab *s, uint32_t q, unsigned c, uint32_t pg, int want_next)
{
	if (q < h->data_page || q >= h->npages || pm_get(h, q) != PM(PM_SLAB, c))
		return 0;
	const struct slab *n = SLAB(h, q);
	return (want_next ? n->next : n->prev) == pg && n->list == s->list &&
		atomic_load_explicit(&n->owner, RELAXED) == atomic_load_explicit(&s->owner, RELAXED);
}

/* links_check -- the list links of the checked slab s at page pg of class c */
static int
links_check(struct heap *h, const struct slab *s, uint32_t pg, unsigned c)
{
	uint32_t prev = s->prev, next = s->next;
	if (prev ? !link_ok(h, s, prev, c, pg, 1) : *list_head(h, s, c) != pg)
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx (class %u) is not "
				"linked from its previous slab (page %u) or its list's head",
				(unsigned long long)pg << HP_SHIFT, c, prev);
	if (next && !link_ok(h, s, next, c, pg, 0))
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx (class %u): its "
				"next slab (page %u) does not link back to it",
				(unsigned long long)pg << HP_SHIFT, c, next);
	return 0;
}

/* heap_slab_validate -- check slab pg on its first use in this attach (see above) */
int __attribute__((noinline))
heap_slab_validate(struct heap *h, uint32_t pg, int full)
{
	uint32_t e = pg >= h->data_page && pg < h->npages ? pm_get(h, pg) : 0;
	if (PM_KIND(e) != PM_SLAB || PM_VAL(e) >= NCLASS)
		return ckpt_err_set(EINVAL, "damaged heap: page %u is not the first page of a slab",
				pg);
	unsigned c = PM_VAL(e);
	struct slab *s = SLAB(h, pg);
	int r = 0;
	pthread_mutex_lock(&h->vmx);
	uint64_t ep = atomic_load_explicit(&s->epoch, RELAXED);
	if (ep != h->epoch && ep != h->vfull) {
		struct slab sh;
		uint64_t ab[SLAB_MAX_WORDS], rb[SLAB_MAX_WORDS];
		r = heap_slab_check(h->seg, h->hdr->version, pg, c, &sh, ab, rb);
		uint64_t waiting = 0;
		for (uint32_t w = 0; r == 0 && w < heap_cls_tab[c].words; w++)
			waiting |= rb[w];
		if (waiting)
			atomic_store(&s->rhint, 1);
		if (r == 0) {
			ep = h->epoch;
			atomic_store_explicit(&s->epoch, ep, memory_order_release);
		}
	}
	if (r == 0 && full && ep != h->vfull) {
		r = links_check(h, s, pg, c);
		if (r == 0)
			atomic_store_explicit(&s->epoch, h->vfull, memory_order_release);
	}
	int saved = errno;
	pthread_mutex_unlock(&h->vmx);
	errno = saved;
	return r;
}

/* head_ok -- the head pg of the list (owner, list) of class c names that list */
static int
head_ok(struct heap *h, uint32_t pg, unsigned owner, uint32_t list, unsigned c)
{
	const struct slab *s = SLAB(h, pg);
	return pm_get(h, pg) == PM(PM_SLAB, c) && s->prev == 0 && s->list == list &&
		atomic_load_explicit(&s->owner, RELAXED) == owner;
}

/*
 * heap_heads_check -- before a thread takes slot `slot` with its lists as
 * they are: each list's first slab says it is that list's first (the
 * metadata check knows only that heads are distinct slabs of their class;
 * a head pointing into another list would give one slab two owners).
 * Reads one header per non-empty list. 0, or -1 with EINVAL.
 */
int
heap_heads_check(struct heap *h, uint32_t slot)
{
	struct tslot *ts = &h->slots[slot];
	for (unsigned c = 0; c < NCLASS; c++) {
		if ((ts->avail[c] && !head_ok(h, ts->avail[c], slot + 1, LIST_AVAIL, c)) ||
		    (ts->full[c] && !head_ok(h, ts->full[c], slot + 1, LIST_FULL, c)))
			return ckpt_err_set(EINVAL, "damaged heap: thread slot %u: a list of class "
					"%u does not start at its first slab", slot, c);
	}
	return 0;
}

/* count_listed -- slabs on every list of h, each list followed at most `bound` steps */
static uint64_t
count_listed(struct heap *h, uint64_t bound)
{
	uint64_t n = 0;
	for (unsigned c = 0; c < NCLASS; c++) {
		for (uint32_t i = 0; i <= 2 * NSLOTS; i++) {
			uint32_t pg = i == 2 * NSLOTS ? h->hdr->abandoned[c] :
				i & 1 ? h->slots[i / 2].full[c] : h->slots[i / 2].avail[c];
			for (uint64_t k = 0; pg && k <= bound; k++, n++)
				pg = SLAB(h, pg)->next;
		}
	}
	return n;
}

/* heap_validate_all -- check every slab as its first use would (heap.h) */
int
heap_validate_all(struct heap *h)
{
	uint64_t nslabs = 0;
	heap_lock_all(h);
	/* the mark of the heap held quiesced: read before, it would miss the
	 * slabs of a thread that grew the heap while heap_lock_all waited */
	uint32_t hwp = (uint32_t)(heap_high_water(h) >> HP_SHIFT);
	int r = 0;
	for (uint32_t p = h->data_page; p < hwp && p < h->npages && r == 0; p++) {
		if (PM_KIND(pm_get(h, p)) == PM_SLAB) {
			r = heap_slab_validate(h, p, 1);
			nslabs++;
		}
	}
	/* every slab checked: each list is a chain of slabs linked both ways
	 * from its head; a slab on none is on a ring of its own */
	uint64_t listed = r == 0 ? count_listed(h, nslabs) : 0;
	if (r == 0 && listed != nslabs)
		r = ckpt_err_set(EINVAL, "damaged heap: %llu slabs but %llu on the allocator's "
				"lists", (unsigned long long)nslabs, (unsigned long long)listed);
	heap_unlock_all(h);
	return r;
}
