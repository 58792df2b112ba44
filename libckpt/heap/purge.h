/*
 * heap/purge.h -- the DRAM state of the purge (heap/purge.c): which pages
 * may have lost their memory, and which were freed lately.
 * Nothing of it is in the segment: a purged page is a free page, and the
 * segment says so already.
 */
#ifndef CKPT_HEAP_PURGE_H
#define CKPT_HEAP_PURGE_H 1

#include <stdint.h>

#include "heap.h"

/*
 * heap_purge -- in struct heap. Invariants (under heap.lock):
 *  - gone (npages bits, or NULL when the heap never purges) has bit p set
 *    only for a free page below the high-water mark whose memory may have
 *    been given back (purged, or free when the heap was attached: unknown);
 *    heap_purge_back clears it (through the grow callback) before the page
 *    is handed out again;
 *  - fresh (npages bits) has bit p set if page p was freed since the last
 *    sweep: a page free at a sweep without it has been free for a whole
 *    period (delay_ns) at least;
 *  - next_sweep: CLOCK_MONOTONIC ns at or after which the next page-level
 *    operation sweeps.
 */
struct heap_purge {
	heap_purge_fn fn;           /* NULL: the heap never purges */
	void *arg;
	uint32_t min_pages;         /* shorter free runs stay */
	uint64_t delay_ns;          /* how long a run stays free before it goes */
	uint64_t *gone;
	uint64_t *fresh;
	uint64_t next_sweep;
	uint64_t purged;            /* pages given back since the attach */
};

#endif /* CKPT_HEAP_PURGE_H */
