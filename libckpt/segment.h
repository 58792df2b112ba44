/*
 * segment.h -- segment bookkeeping: the catalog steps that every path
 * giving a segment a new role shares (restart, checkpoint, fork, close,
 * reclaim), below all of them.
 *
 * Everything here but seg_release works inside a catalog transaction the
 * caller opened (cat_begin) and commits itself. A segment freed in a
 * transaction keeps its blocks until the caller punches them (seg_punch),
 * after the commit: a crash between the two leaves blocks in a FREE
 * segment, which the next taker's copy punches anyway.
 */
#ifndef CKPT_SEGMENT_H
#define CKPT_SEGMENT_H 1

#include <stdint.h>

#include "catalog.h"
#include "layout.h"
#include "handle.h"

/* seg_off -- file offset of segment i of p */
static inline uint64_t
seg_off(const struct ckpt_pool *p, uint32_t i)
{
	return layout_seg_off(&p->hdr, i);
}

/*
 * seg_dead -- 1 if entry i is LIVE or BUSY, not ours, and its owner is
 * gone (cat_entry_dead). A fork reservation is judged by its lease alone,
 * even one that records us as its owner (see fork.c).
 */
CKPT_HIDDEN int seg_dead(const struct ckpt_pool *p, const struct cat_view *v, uint32_t i);

/*
 * seg_pinned -- 1 if segment i is the image some heap in memory maps (fork
 * mode cow), so it must not change: this process's own base, an image a
 * live in-memory entry names as its source, or one another description
 * pins with a lock (a fork child not yet in the catalog; a heap whose image
 * was never published), or a young heap (a FREE segment whose lease a
 * process holds, attach.c). Retention, reclaim, recycling and seg_take
 * leave it alone, and the file keeps it.
 */
CKPT_HIDDEN int seg_pinned(const struct ckpt_pool *p, const struct cat_view *v, uint32_t i);

/*
 * seg_take -- find a segment for a new LIVE or BUSY entry: a FREE one,
 * else the oldest dead one (BUSY leftovers of crashed checkpoints and forks
 * before dead heaps), reset to FREE. Returns its index, with *punch set to
 * the bytes that held data (to punch after the commit), or -1 with ENOSPC.
 */
CKPT_HIDDEN int seg_take(struct ckpt_pool *p, struct cat_view *v, uint64_t *punch);

/*
 * seg_take_young -- for a young heap (format 1.5, attach.c): a FREE
 * segment nobody holds (seg_pinned), one inside the file first; the file
 * is extended, without a sync, to cover one past its end (the catalog does
 * not name it; the commit that first does syncs the size, filesize.c).
 * The caller takes its lease before it ends the transaction, and commits
 * nothing. Returns the index, or -1 with ENOSPC (none) or the error.
 */
CKPT_HIDDEN int seg_take_young(struct ckpt_pool *p, const struct cat_view *v);

/*
 * seg_free_oldest_dead -- reset the max oldest dead entries (seg_take's
 * order) to FREE; their indices go to out, the count is returned
 */
CKPT_HIDDEN unsigned seg_free_oldest_dead(struct ckpt_pool *p, struct cat_view *v, uint32_t *out,
		unsigned max);

/*
 * seg_free_dead -- reset every dead entry to FREE; their indices go to out
 * (POOL_MAX_SEGMENTS entries), the count is returned.
 */
CKPT_HIDDEN unsigned seg_free_dead(struct ckpt_pool *p, struct cat_view *v, uint32_t *out);

/*
 * seg_reclaim -- one transaction of its own: free every dead segment and
 * punch its blocks; *n (may be NULL) gets how many. For ckpt_reclaim, and
 * for a restart or checkpoint that ran out of disk space: dead heaps are
 * given up before a live process is refused.
 */
CKPT_HIDDEN int seg_reclaim(struct ckpt_pool *p, unsigned *n);

/*
 * seg_space_freed -- after an ENOSPC from the filesystem: reclaim dead
 * segments (seg_reclaim). 1 if any were freed (worth trying once more);
 * else 0, with errno ENOSPC and the thread's message as they were.
 */
CKPT_HIDDEN int seg_space_freed(struct ckpt_pool *p);

/*
 * seg_keep_hook -- register with p's catalog that a FREE segment a heap of
 * ours or another process still maps (seg_pinned) stays in the file when
 * a commit trims it (filesize.c)
 */
CKPT_HIDDEN void seg_keep_hook(struct ckpt_pool *p);

/* seg_punch -- give the blocks of n freed segments back (after their commit) */
CKPT_HIDDEN void seg_punch(const struct ckpt_pool *p, const uint32_t *segs, unsigned n);

/*
 * seg_zero -- punch all of segment seg (ours, after the commit that gave it
 * to us): 1 if it now reads as zeroes, 0 if the filesystem cannot punch
 * (it then holds what it held)
 */
CKPT_HIDDEN int seg_zero(const struct ckpt_pool *p, uint32_t seg);

/*
 * seg_clear -- make [addr, addr + len) of our live segment's shared mapping
 * of the pool file read as zeroes (addr and len page-aligned; its blocks
 * reserved: the heap grew over it), writing as few pages as it can: the
 * pages still in the page cache are cleared in place (written through the
 * file descriptor, never stored through the mapping, so the range may have
 * any protection), the others by a zero-range of the file, and a range over
 * 8 MiB by a zero-range whole (taken as sparse). 0, or -1 for another kind
 * of mapping: the caller then writes the zeroes itself.
 */
CKPT_HIDDEN int seg_clear(const struct ckpt_pool *p, void *addr, size_t len);

/* which entries seg_release may free */
enum seg_whose {
	SEG_OURS,               /* any entry that records us as its owner */
	SEG_OUR_RESERVATION,    /* our fork reservation for a child of our live
	                           segment that nobody holds (no child can
	                           claim it any more) */
};

/*
 * seg_release -- one transaction: free entry seg if it is still ours as
 * whose says, then punch its blocks. For the failure paths of restart,
 * checkpoint and fork: it keeps errno and the thread's message, and a
 * failure of its own leaves the entry to be reclaimed as dead.
 */
CKPT_HIDDEN void seg_release(struct ckpt_pool *p, uint32_t seg, enum seg_whose whose);

#endif
