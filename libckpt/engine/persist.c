/*
 * persist.c -- ckpt_persist in cow mode: the pages of a range made durable
 * in the live entry's own segment (format 1.7; docs/DESIGN.md, "ckpt_persist
 * in cow mode", has the reasons and the crash argument).
 *
 * In cow mode the heap is a private image of its base (a checkpoint, or
 * for a heap that never checkpointed its own empty segment), and the live
 * entry's own segment holds nothing of it. A persist writes the pages of
 * its range there, at their own offsets, and the sum of each page in the
 * segment's page-sum slot (format 1.2's slot, one 8-byte sum per page),
 * then fdatasyncs. The sums are seeded with the heap's life and its base
 * checkpoint's id (sums_persist_seed): a page counts only when its bytes
 * match its sum under the seed of the base the catalog names now. So:
 *
 *   - a page whose write (or whose sum's write) did not complete before a
 *     crash fails its sum and is ignored: that page reads as the base's;
 *   - a checkpoint's publication, which moves the entry's base (base_id,
 *     and source with it unless the heap logs and keeps its mapping:
 *     format 1.9; one commit), makes every page persisted before it stale
 *     at once, and the new base holds them (the checkpoint copied the heap
 *     after those persists returned: both hold the pool's mutex);
 *   - pages left by an earlier life of the segment never match (the life
 *     is in the seed; life ids are never reused).
 *
 * What a dead heap is, then: its base with the pages whose sums match
 * laid over it (inspect_persist.c reads it so for ckpt-inspect).
 *
 * Each page is copied out of the heap before it is summed and written, so
 * a thread that writes the page meanwhile cannot make its bytes and its
 * sum disagree. Nothing is written while the base the catalog names is not
 * the one the heap's pages are over (between a checkpoint's re-base and
 * its publication, or after a publication that failed: persist_ok), and
 * nothing into our own segment while a fork child may map it: a heap that
 * forked before its first checkpoint gave the child its own segment as the
 * child's base, and a write there would change the child's unwritten pages
 * (own_shared; the catalog says when no child pins it any more).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "engine/persist.h"
#include "engine/image.h"
#include "handle.h"
#include "layout.h"
#include "segment.h"
#include "sums.h"
#include "testhook.h"

#define PAGE ((uint64_t)4096)
#define CHUNK_PAGES 64u         /* pages copied, summed and written at a time */

/* write_all -- pwrite all of len bytes at off, saying what failed */
static int
write_all(int fd, const void *buf, uint64_t len, uint64_t off, const char *what)
{
	if (fio_pwrite_all(fd, buf, len, off) < 0)
		return ckpt_err_set(errno, "ckpt_persist: cannot write %s: %s", what,
				strerror(errno));
	return 0;
}

/*
 * own_still_shared -- 1 if a fork child may still map our own segment (an
 * entry in memory that is not dead names it as its base, or a pin lock
 * of another description holds it), 0 if not (own_shared is cleared), -1
 * on error
 */
static int
own_still_shared(struct ckpt_pool *p)
{
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	int shared = 0;
	for (uint32_t j = 0; j < v.n && !shared; j++) {
		const struct cat_entry *c = &v.e[j];
		shared = j != p->seg && (c->state == CAT_LIVE || c->state == CAT_BUSY) &&
			(c->flags & CAT_F_IN_MEMORY) && c->source == p->seg && !seg_dead(p, &v, j);
	}
	if (!shared)
		shared = cat_pin_held(p->fd, p->seg);
	cat_end(&p->cat);
	if (!shared)
		p->eng->own_shared = 0;
	return shared;
}

/* refused -- 0 if a persist may write now, else -1 with the reason */
static int
refused(struct ckpt_pool *p)
{
	struct engine *e = p->eng;
	if (p->hdr.minor < POOL_MINOR_PERSISTED_PAGES || !(p->hdr.flags & POOL_F_SUMS_AREA))
		return ckpt_err_set(ENOTSUP, "ckpt_persist in fork mode cow needs a pool of "
				"format 1.%u or later; pool %s is of format %u.%u (create a new "
				"pool, or use ckpt_checkpoint: only it makes this heap durable)",
				POOL_MINOR_PERSISTED_PAGES, p->path, p->hdr.major, p->hdr.minor);
	if (!e->persist_ok)
		return ckpt_err_set(EIO, "ckpt_persist: the heap maps a checkpoint image "
				"whose publication failed, so a persisted page could not be "
				"found again; a successful ckpt_checkpoint makes the heap "
				"durable and ckpt_persist work again");
	if (e->own_shared) {
		int s = own_still_shared(p);
		if (s < 0)
			return -1;
		if (s)
			return ckpt_err_set(EBUSY, "ckpt_persist: a fork child maps this heap's "
					"segment (the heap forked before its first checkpoint, "
					"or keeps that segment as its base after a first "
					"checkpoint beside other threads), so nothing may be "
					"written there until that child has re-based (at a "
					"checkpoint it takes with no other thread), closed or "
					"exited; ckpt_checkpoint makes the heap durable meanwhile");
	}
	return 0;
}

/* write_pages -- copy, sum and write the pages [lo, hi) of the heap under seed */
static int
write_pages(struct ckpt_pool *p, uint64_t lo, uint64_t hi, uint64_t seed)
{
	const char *heap = p->heap_map.addr;
	uint64_t seg = layout_seg_off(&p->hdr, p->seg);
	uint64_t slot = layout_sums_off(&p->hdr, p->seg);
	char *buf = malloc(CHUNK_PAGES * PAGE);
	uint64_t *sums = malloc(CHUNK_PAGES * sizeof(uint64_t));
	int rc = 0;
	if (!buf || !sums)
		rc = ckpt_err_set(ENOMEM, "ckpt_persist: out of memory");
	for (uint64_t off = lo; rc == 0 && off < hi;) {
		uint64_t n = hi - off < CHUNK_PAGES * PAGE ? hi - off : CHUNK_PAGES * PAGE;
		memcpy(buf, heap + off, n);
		for (uint64_t i = 0; i < n / PAGE; i++)
			sums[i] = sums_persist_page(buf + i * PAGE, seed);
		rc = write_all(p->fd, buf, n, seg + off, "the heap's pages");
		if (rc == 0) {
			test_point("persist:before-sums");
			rc = write_all(p->fd, sums, n / PAGE * sizeof(uint64_t),
					slot + off / PAGE * sizeof(uint64_t), "the pages' sums");
		}
		off += n;
		if (rc == 0 && off < hi)
			test_point("persist:mid-range");
	}
	free(buf);
	free(sums);
	return rc;
}

int
image_persist(struct ckpt_pool *p, const void *addr, size_t len)
{
	const char *a = addr, *heap = p->heap_map.addr;
	if (len == 0)
		return 0;
	if (a < heap || a + len < a || a + len > heap + p->heap_map.len)
		return ckpt_err_set(EINVAL, "range [%p, +%zu) is outside the mapping", addr, len);
	if (pool_published(p) < 0)
		return -1;
	pthread_mutex_lock(&p->mu);
	struct engine *e = p->eng;
	int rc = refused(p);
	if (rc == 0) {
		uint64_t lo = (uint64_t)(a - heap) & ~(PAGE - 1);
		uint64_t hi = ((uint64_t)(a - heap) + len + PAGE - 1) & ~(PAGE - 1);
		rc = write_pages(p, lo, hi, sums_persist_seed(p->life, e->base_id));
		if (rc == 0) {
			test_point("persist:before-sync");
			/* CKPT_TEST_SKIP_FLUSH: a broken ordering the crash-state
			 * checker must catch (tests/crash, rule 6) */
			if (!test_flag("CKPT_TEST_SKIP_FLUSH") && fdatasync(p->fd) < 0)
				rc = ckpt_err_set(errno, "ckpt_persist: fdatasync: %s",
						strerror(errno));
		}
		if (rc == 0) {
			test_point("persist:after-sync");
			e->persisted = (hi - lo) / PAGE;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void
image_persist_before_fork(struct ckpt_pool *p)
{
	/* the child maps our base: if that is our own segment, it is shared */
	if (p->eng && p->eng->base_seg == p->seg)
		p->eng->own_shared = 1;
}

void
image_persist_after_fork_child(struct ckpt_pool *p)
{
	/* the child's own segment is a new one, which nobody maps */
	if (p->eng)
		p->eng->own_shared = 0;
}
