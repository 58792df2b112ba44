/*
 * heap/large.c -- large blocks: requests above 64 KiB (or aligned beyond
 * what a slab gives) take a run of whole 16 KiB pages from the page
 * allocator, under heap.lock. The page map marks the first page LARGE with
 * the page count; realloc grows a large block in place when the pages
 * after it are free, and shrinks it in place.
 */
#include <errno.h>

#include "heap/private.h"

/* heap_large_alloc -- a page-granular block of n bytes aligned to align (power of two) */
void *
heap_large_alloc(struct heap *h, size_t n, size_t align)
{
	if (n > h->size) {
		ckpt_err_set(ENOMEM, "heap full: %zu bytes requested from a heap of %llu bytes",
				n, (unsigned long long)h->size);
		return NULL;
	}
	uint32_t np = (uint32_t)((n + HP_SIZE - 1) >> HP_SHIFT), slot;
	if (np == 0)
		np = 1;
	struct tslot *ts = op_enter(h, &slot);
	void *p = NULL;
	for (int attempt = 0; attempt < 2 && !p; attempt++) {
		pthread_mutex_lock(&h->lock);
		uint32_t pg = heap_pages_alloc(h, np, align);
		if (pg) {
			pm_set(h, pg, PM(PM_LARGE, np));
			p = h->seg + ((uint64_t)pg << HP_SHIFT);
		}
		pthread_mutex_unlock(&h->lock);
		if (!p && (attempt > 0 || !heap_reclaim(h, ts)))
			break;
	}
	busy_leave(h, ts, slot);
	if (!p)
		errno = ENOMEM;
	return p;
}

/* heap_large_free -- free the large block at bi (busy held) */
int
heap_large_free(struct heap *h, const struct binfo *bi, const void *p)
{
	int ret = 0;
	pthread_mutex_lock(&h->lock);
	uint32_t e = pm_get(h, bi->pg);
	if (PM_KIND(e) == PM_LARGE) {
		uint32_t np = PM_VAL(e);
		pm_set(h, bi->pg, 0);
		heap_pages_free(h, bi->pg, np);
	} else {
		ret = ckpt_err_set(ENOENT, "free(%p): block is not allocated (double free, "
				"or never handed out)", p);
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

/* heap_large_resize -- grow or shrink the large block at pg to n bytes in place; 0 or -1 */
int
heap_large_resize(struct heap *h, uint32_t pg, size_t n)
{
	uint64_t np64 = (n + HP_SIZE - 1) >> HP_SHIFT;
	if (np64 == 0)
		np64 = 1;
	if (np64 >= h->npages)
		return -1;
	uint32_t np = (uint32_t)np64, slot;
	struct tslot *ts = op_enter(h, &slot);
	int ret = -1;
	pthread_mutex_lock(&h->lock);
	uint32_t e = pm_get(h, pg);
	if (PM_KIND(e) == PM_LARGE) {
		uint32_t old = PM_VAL(e);
		if (np <= old) {
			if (np < old)
				heap_pages_free(h, pg + np, old - np);
			ret = 0;
		} else if ((uint64_t)pg + np <= h->npages &&
			   heap_next_with(h->pbits, pg + old, pg + np, 1) == pg + np &&
			   heap_grow_to(h, (uint64_t)(pg + np) << HP_SHIFT) == 0 &&
			   heap_purge_back(h, pg + old, np - old) == 0) {
			heap_bits_set(h->pbits, pg + old, np - old, 1);
			ret = 0;
		}
		if (ret == 0)
			pm_set(h, pg, PM(PM_LARGE, np));
	}
	pthread_mutex_unlock(&h->lock);
	busy_leave(h, ts, slot);
	return ret;
}

