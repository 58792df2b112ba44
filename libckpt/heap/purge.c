/*
 * heap/purge.c -- giving the memory of long free page runs back.
 *
 * The page allocator (pages.c) never shrinks the high-water mark: a run of
 * pages freed below it (an empty slab, a large block, the old place of a
 * block that realloc moved) stays resident, in the page cache of the pool
 * file (copy mode), as the process's private copy (cow mode) or as its
 * anonymous memory (a sealed heap), until it is reused. A workload that
 * grows blocks (realloc growth) leaves runs of hundreds of pages behind
 * that way: 2.5x the resident memory of glibc's malloc, which gives such
 * memory back.
 *
 * Here, with a delay as mimalloc's purge and jemalloc's decay have: a
 * freed page is marked fresh (a DRAM bitmap). Once per period of delay_ns
 * (CKPT_PURGE_DELAY_MS, config.c), at the page allocator's first operation
 * after the period is over, a sweep gives back, through the pool's purge
 * hook, every free page below the high-water mark that is not fresh (so it
 * was free for a whole period), not given back already, and part of a free
 * run of at least min_pages (CKPT_PURGE_MIN); then it clears every fresh
 * mark. So a run reused at once (the next realloc step, the next phase of a
 * churning program) costs nothing, and one left free goes within two
 * periods of the heap's page-level operations; the sweep reads two bitmaps
 * a word at a time (a 1 GiB heap: 1024 words). With delay 0 a freed run
 * goes as it is freed. What giving back means is the pool's business
 * (heap.h's heap_purge_fn, map.c's map_purge): a hole punched in the file,
 * or a private copy dropped.
 *
 * (A queue of freed runs, each due a delay after its free, was tried
 * first: a program that frees thousands of slabs in a burst overflowed it,
 * and purging the oldest early then cost 3-4x the throughput of bench
 * churn's frag workload in punched and refaulted pages.)
 *
 * A page given back may have no memory or disk blocks behind it, so before
 * the allocator hands it out again heap_purge_back calls the grow callback
 * for it, as for a page above the high-water mark: a full filesystem is
 * ENOMEM from the allocator, never SIGBUS on a store. Which pages those are
 * is DRAM state (heap.purge.gone); a heap just attached does not know what
 * an earlier process gave back, so every free page below the mark counts
 * as gone until it is handed out once.
 *
 * The bytes of a page given back are never relied on: a free page has no
 * content the heap reads (a slab is formatted from its header, calloc
 * clears, the walker looks only at pages the page map calls used). A copy
 * of the segment (checkpoint, fork) copies whatever the page reads then,
 * zeros or older bytes, and a restart of it finds a free page either way.
 *
 * The page bitmap is read with pages.c's helpers (leaf functions); pages.c
 * calls heap_purge_tick, heap_purge_freed and heap_purge_back. All of it runs under
 * heap.lock.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "heap/private.h"

/* purge_clock_ns -- CLOCK_MONOTONIC in ns */
static uint64_t
purge_clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* bitmap_bytes -- bytes of a bitmap of a heap of npages (one bit a page) */
static size_t
bitmap_bytes(uint32_t npages)
{
	return (((size_t)npages + 63) / 64) * 8;
}

/* hw_page -- the first page at or past the high-water mark */
static uint32_t
hw_page(const struct heap *h)
{
	return (uint32_t)((h->hdr->high_water + HP_SIZE - 1) >> HP_SHIFT);
}

/* free_start -- the first page of the free run that ends just before page i (i if page i-1 is used) */
static uint32_t
free_start(const struct heap *h, uint32_t i)
{
	uint32_t lo = h->data_page;
	while (i > lo) {
		uint32_t j = i - 1, b = j & 63;
		uint64_t w = ld64(&h->pbits[j >> 6]);
		if (b != 63)
			w &= (2ull << b) - 1;
		if (w) {
			uint32_t r = (j & ~63u) + 64 - (uint32_t)__builtin_clzll(w);
			return r > lo ? r : lo;
		}
		i = j & ~63u;
	}
	return lo;
}

/*
 * next_cand -- first page >= i and < limit that is (v=1) or is not (v=0) a
 * candidate: free, not gone, and (aged) not fresh
 */
static uint32_t
next_cand(const struct heap *h, uint32_t i, uint32_t limit, int v, int aged)
{
	return heap_next_union(h->pbits, h->purge.gone, aged ? h->purge.fresh : NULL,
			i, limit, !v);
}

/* give -- hand pages [i, e) (free, not gone) to the pool's hook; gone if it gave them back */
static void
give(struct heap *h, uint32_t i, uint32_t e)
{
	struct heap_purge *q = &h->purge;
	uint64_t off = (uint64_t)i << HP_SHIFT, len = (uint64_t)(e - i) << HP_SHIFT;
	int saved = errno;
	if (q->fn(q->arg, h->seg + off, off, len) == 0) {
		heap_bits_set(q->gone, i, e - i, 1);
		q->purged += e - i;
	}
	errno = saved;
}

/*
 * purge_range -- give back the candidates of pages [a, b) (next_cand) that
 * are in a free run of min_pages; each free run is measured once
 */
static void
purge_range(struct heap *h, uint32_t a, uint32_t b, int aged)
{
	uint32_t hw = hw_page(h);
	if (b > hw)
		b = hw;
	uint32_t i = heap_next_with(h->pbits, a, b, 0);
	while (i < b) {
		uint32_t fs = free_start(h, i), fe = heap_next_with(h->pbits, i, hw, 1);
		uint32_t lim = fe < b ? fe : b;
		if (fe - fs >= h->purge.min_pages) {
			uint32_t c = next_cand(h, i, lim, 1, aged);
			while (c < lim) {
				uint32_t e = next_cand(h, c, lim, 0, aged);
				give(h, c, e);
				c = next_cand(h, e, lim, 1, aged);
			}
		}
		i = heap_next_with(h->pbits, lim, b, 0);
	}
}

/* heap_purge_tick -- a page-level operation: sweep if the period is over */
void
heap_purge_tick(struct heap *h)
{
	struct heap_purge *q = &h->purge;
	if (!q->fn || !q->delay_ns)
		return;
	uint64_t now = purge_clock_ns();
	if (now < q->next_sweep)
		return;
	uint32_t hw = hw_page(h);
	purge_range(h, h->data_page, hw, 1);
	memset(q->fresh, 0, bitmap_bytes(hw));
	q->next_sweep = now + q->delay_ns;
}

/* heap_purge_freed -- pages [pg, pg+n) were just freed: fresh, or (delay 0) given back now */
void
heap_purge_freed(struct heap *h, uint32_t pg, uint32_t n)
{
	struct heap_purge *q = &h->purge;
	if (!q->fn)
		return;
	if (q->delay_ns) {
		heap_bits_set(q->fresh, pg, n, 1);
		return;
	}
	uint32_t fs = free_start(h, pg), fe = heap_next_with(h->pbits, pg + n, hw_page(h), 1);
	if (fe > fs && fe - fs >= q->min_pages)
		purge_range(h, fs, fe, 0);
}

/*
 * heap_purge_grown -- pages [pg, pg+n) just came below the high-water mark:
 * fresh, so the free ones among them are not given back before they had a
 * period to be used (with delay 0, left alone: never written, nothing to
 * give back)
 */
void
heap_purge_grown(struct heap *h, uint32_t pg, uint32_t n)
{
	struct heap_purge *q = &h->purge;
	if (q->fn && q->delay_ns && n)
		heap_bits_set(q->fresh, pg, n, 1);
}

/* heap_purge_back -- pages [pg, pg+n) are about to be handed out: back the gone ones again */
int
heap_purge_back(struct heap *h, uint32_t pg, uint32_t n)
{
	struct heap_purge *q = &h->purge;
	if (!q->gone)
		return 0;
	uint32_t i = heap_next_with(q->gone, pg, pg + n, 1);
	while (i < pg + n) {
		uint32_t e = heap_next_with(q->gone, i, pg + n, 0);
		uint64_t off = (uint64_t)i << HP_SHIFT, len = (uint64_t)(e - i) << HP_SHIFT;
		if (h->grow && h->grow(h->grow_arg, off, len) < 0) {
			ckpt_err_prefix("heap cannot take back %llu bytes at offset %llu: ",
					(unsigned long long)len, (unsigned long long)off);
			errno = ENOMEM;
			return -1;
		}
		heap_bits_set(q->gone, i, e - i, 0);
		i = heap_next_with(q->gone, e, pg + n, 1);
	}
	return 0;
}

/* heap_on_purge -- start (or stop) purging (heap.h) */
void
heap_on_purge(struct heap *h, heap_purge_fn fn, void *arg, uint64_t min_bytes,
		uint64_t delay_ns)
{
	pthread_mutex_lock(&h->lock);
	struct heap_purge *q = &h->purge;
	if (!fn || !min_bytes) {
		q->fn = NULL;
		pthread_mutex_unlock(&h->lock);
		return;
	}
	if (!q->gone) {
		/* both bitmaps in one mapping: gone, then fresh */
		uint8_t *g = mmap(NULL, 2 * bitmap_bytes(h->npages), PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (g == MAP_FAILED) {   /* no purge, nothing else lost */
			pthread_mutex_unlock(&h->lock);
			return;
		}
		q->gone = (uint64_t *)g;
		q->fresh = (uint64_t *)(g + bitmap_bytes(h->npages));
		/* what an earlier process gave back is unknown: every free page
		 * below the high-water mark is backed again before its reuse */
		uint32_t hw = hw_page(h);
		for (uint32_t w = 0; w < (hw + 63) / 64; w++)
			q->gone[w] = ~ld64(&h->pbits[w]);
		if (hw & 63)
			q->gone[hw >> 6] &= (1ull << (hw & 63)) - 1;
	}
	uint64_t mp = (min_bytes + HP_SIZE - 1) >> HP_SHIFT;
	q->min_pages = mp > h->npages ? h->npages : (uint32_t)mp;
	q->delay_ns = delay_ns;
	q->next_sweep = purge_clock_ns() + delay_ns;
	q->fn = fn;
	q->arg = arg;
	pthread_mutex_unlock(&h->lock);
}

/* heap_purge_fini -- stop purging and free the purge state of a handle being detached */
void
heap_purge_fini(struct heap *h)
{
	h->purge.fn = NULL;
	if (h->purge.gone)
		munmap(h->purge.gone, 2 * bitmap_bytes(h->npages));
	h->purge.gone = h->purge.fresh = NULL;
}

/* heap_purged_bytes -- bytes given back since the attach (heap.h) */
uint64_t
heap_purged_bytes(struct heap *h)
{
	pthread_mutex_lock(&h->lock);
	uint64_t n = h->purge.purged << HP_SHIFT;
	pthread_mutex_unlock(&h->lock);
	return n;
}
