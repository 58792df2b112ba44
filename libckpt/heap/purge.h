/*
 * heap/purge.h -- the DRAM state of the purge (heap/purge.c): which pages
 * may have lost their memory, and the free runs waiting out their delay.
 * Nothing of it is in the segment: a purged page is a free page, and the
 * segment says so already.
 */
#ifndef CKPT_HEAP_PURGE_H
#define CKPT_HEAP_PURGE_H 1

#include <stdint.h>

#include "heap.h"

#define PURGE_QCAP 64u         /* free runs waiting for their delay; more purge the oldest early */

/*
 * heap_purge -- in struct heap. Invariants (under heap.lock):
 *  - gone (npages bits, or NULL when the heap never purges) has bit p set
 *    only for a free page below the high-water mark whose memory may have
 *    been given back (purged, or free when the heap was attached: unknown);
 *    heap_purge_back clears it (through the grow callback) before the page
 *    is handed out again;
 *  - q[(head + k) % PURGE_QCAP], k < qlen: a run of pages that was free
 *    and at least min_pages long when it was queued, due at `due`
 *    (CLOCK_MONOTONIC ns), oldest first; its pages may have been reused
 *    since (they are looked at again when it is due).
 */
struct heap_purge {
	heap_purge_fn fn;           /* NULL: the heap never purges */
	void *arg;
	uint32_t min_pages;         /* shorter free runs stay */
	uint64_t delay_ns;          /* how long a run stays free before it goes */
	uint64_t *gone;
	uint32_t head, qlen;
	struct {
		uint32_t pg, n;
		uint64_t due;
	} q[PURGE_QCAP];
	uint64_t purged;            /* pages given back since the attach */
};

#endif /* CKPT_HEAP_PURGE_H */
