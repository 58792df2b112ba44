/*
 * image.c -- the copy-on-write engine: a live heap that is a private image
 * of a checkpoint, and checkpoints that cost what changed (cow mode; the
 * reasons and the measurements are in docs/DESIGN.md).
 *
 * The live heap is a MAP_PRIVATE mapping, at the pool's base, of a segment
 * of the pool file: its base image (a checkpoint, or the process's own
 * empty segment for a new heap). Reads see the image; the first write to a
 * page gives the process its own copy (the kernel's copy on write), which
 * is also what isolates a fork child. The pages written since the mapping
 * was made are found by the tracker (dirty.c).
 *
 * A checkpoint (checkpoint.c's steps, with these in cow mode):
 *   1. image_reserve: the segment for the new image. When the lineage
 *      already holds keep_checkpoints checkpoints (at least two), the
 *      oldest one this publication drops anyway that is not pinned and
 *      whose difference from the heap is known is recycled: it stops being
 *      a checkpoint (BUSY, ours) in this transaction, and only the pages
 *      that differ are rewritten. Known: one this heap wrote (the ring: the
 *      pages written since), or one a background child wrote from the base
 *      the heap still maps (bg: the base with the pages that child found
 *      written; those and the pages written since the base). Otherwise a
 *      segment is taken as for any checkpoint.
 *   2. image_build (heap quiesced): a taken segment first gets the base
 *      image's bytes (segcopy: a clone where the filesystem can, else
 *      copy_file_range; nothing for an empty base); then every page written
 *      since the base (since the recycled checkpoint, when recycling) is
 *      pwritten from the heap. The checksum covers the heap's [0, used).
 *   3. (checkpoint.c) fdatasync, inside the publication's commit: its
 *      catalog copy is written first and made durable with the image.
 *   4. image_rebase: the heap maps the new image instead of the old base.
 *      Its private copies are dropped; the page cache has the image (the
 *      written pages were just written through it, a copy_file_range'd
 *      base too; a cloned base's pages are read back from the disk). The
 *      tracker starts from zero, so the next checkpoint's pages are exactly
 *      those written after this one.
 *   5. (checkpoint.c) publish: the commit word of the catalog copy that
 *      names the new checkpoint and our live entry with it as its source
 *      (the pin moves); retention skips pinned images.
 * The heap stays quiesced from 2 to 5: a write between the copy and the
 * re-base would be lost. Quiescing stops allocator calls only, so a
 * checkpoint that re-bases (image_rebases) never runs beside the
 * program's other threads: checkpoint.c's step 0 has the heap start
 * logging instead (image_log_now), or a forked child take the checkpoint
 * while the heap keeps its mapping. A failure before 4 gives the segment
 * back (a recycled one is lost to the lineage, which is one short until
 * the next checkpoint); a failure of the publish after 4 leaves the heap
 * on the unpublished image, which stays ours (BUSY) until we exit.
 *
 * Pins: a base image must never change while a heap maps it. Every heap in
 * memory says which image it maps (CAT_F_IN_MEMORY, source), and a fork
 * child not yet in the catalog is covered by a pin lock its parent took on
 * the child's open file description (catalog.h), so retention, reclaim and
 * recycling leave the image alone (image_pinned) until that heap re-bases,
 * closes or dies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>

#include "image.h"
#include "handle.h"
#include "heap.h"
#include "layout.h"
#include "pagelog.h"
#include "segcopy.h"
#include "segment.h"
#include "sums.h"
#include "testhook.h"
#include "threads.h"
#include "engine/lazy.h"

#define PAGE ((uint64_t)4096)

/* bits -- a zeroed bitmap of e->words words */
static uint64_t *
bits_new(const struct engine *e)
{
	return calloc(e->words, sizeof(uint64_t));
}

/* bg_clear -- forget the background checkpoints of the base (a new base, or detach) */
static void
bg_clear(struct engine *e)
{
	for (unsigned i = 0; i < e->nbg; i++)
		free(e->bg[i].written);
	e->nbg = 0;
	free(e->recycling);
	e->recycling = NULL;
}

static void
ring_drop_front(struct engine *e)
{
	free(e->ring[0].written);
	memmove(&e->ring[0], &e->ring[1], (e->n - 1) * sizeof(e->ring[0]));
	e->n--;
	memset(&e->ring[e->n], 0, sizeof(e->ring[0]));
}

/*
 * sums_upto -- make e->sums[0, n) valid: the entries past sums_valid were
 * never written since image_prepare and stand for zero pages (the base
 * holds nothing there)
 */
static void
sums_upto(struct engine *e, uint64_t n)
{
	if (n <= e->sums_valid)
		return;
	static const char zero[PAGE];
	uint64_t z = sums_page(zero);
	for (uint64_t i = e->sums_valid; i < n; i++)
		e->sums[i] = z;
	e->sums_valid = n;
}

int
image_prepare(struct ckpt_pool *p, const uint64_t *sums)
{
	struct engine *e = p->eng;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return ckpt_err_set(ENOMEM, "out of memory");
		uint64_t npages = p->hdr.seg_size / PAGE;
		e->words = (npages + 63) / 64;
		e->cur = bits_new(e);
		/* untouched until sums_upto writes it: a new heap's base has
		 * no page but zeros, and the program's heap may stay a small
		 * part of the segment (1 GiB of segment: 2 MiB of sums) */
		void *m = mmap(NULL, npages * sizeof(uint64_t), PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		e->sums = m == MAP_FAILED ? NULL : m;
		e->can_clone = segcopy_can_clone(p->fd);
		struct statfs fs;
		e->on_tmpfs = fstatfs(p->fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
		e->lazy_uffd = -1;
		p->eng = e;
		if (!e->cur || !e->sums) {
			image_detach(p);
			return ckpt_err_set(ENOMEM, "out of memory");
		}
	}
	/* pages the base does not hold are zeros; the sums are written as
	 * far as the base holds pages (a new heap: none), the rest as far
	 * as a checkpoint reads them */
	e->sums_valid = 0;
	if (sums) {
		uint64_t n = p->hdr.seg_size / PAGE;
		while (n > 0 && !sums[n - 1])
			n--;
		sums_upto(e, n);
		for (uint64_t i = 0; i < n; i++)
			if (sums[i])
				e->sums[i] = sums[i];
	}
	return 0;
}

int
image_rebases(const struct ckpt_pool *p, uint64_t used)
{
	const struct engine *e = p->eng;
	return e && (!e->logging || p->keep < 2 || used > e->interval.len);
}

void
image_lazy(struct ckpt_pool *p, int uffd, const struct lazy_fetch *fetch)
{
	p->eng->lazy_uffd = uffd;
	if (fetch)
		p->eng->lazy_fetch = *fetch;
}

/* start_lazy -- image_attach of a lazy restart: hand the image's range to lazy.c */
static int
start_lazy(struct ckpt_pool *p, uint32_t seg, uint64_t used, ckpt_id id)
{
	struct engine *e = p->eng;
	char what[160];
	snprintf(what, sizeof(what), "pool %s, checkpoint %llu", p->path,
		(unsigned long long)id);
	int uffd = e->lazy_uffd, done;
	e->lazy_uffd = -1;
	/* the heap's metadata, which attaching it reads at once, is checked
	 * before lazy_start returns (a restart that fails, not a SIGBUS) */
	struct lazy_source first = { .first = heap_meta_len(p->hdr.seg_size) };
	sums_upto(e, (used + PAGE - 1) / PAGE);
	e->lazy = lazy_start(uffd, p->fd, seg_off(p, seg), (void *)(uintptr_t)p->hdr.base,
			used, e->sums, what, &done, e->lazy_fetch.fetch ? &e->lazy_fetch : NULL,
			&first);
	memset(&e->lazy_fetch, 0, sizeof(e->lazy_fetch));   /* lazy.c's now */
	return e->lazy || done ? 0 : -1;
}

/*
 * interval_len -- how much of the heap's range the interval tracker covers
 * for a heap of used bytes: a little more than used, so the heap can grow
 * a while before grow_interval. Not all of the segment: write protection
 * of a file mapping puts a marker in every page-table entry it covers, and
 * a fork copies those page tables (a 2.5 GiB segment holding 1 GiB of heap
 * paid 5 MiB of them, twice what a plain process with the data has).
 */
static uint64_t
interval_len(const struct ckpt_pool *p, uint64_t used)
{
	const uint64_t chunk = (uint64_t)2 << 20;
	uint64_t len = align_up(used + used / 8, chunk) + chunk;
	return len < p->hdr.seg_size ? len : p->hdr.seg_size;
}

/*
 * start_logging -- format 1.9, once no lazy fill holds the range: with
 * write-protect tracking of the interval (which re-arms; the private scan
 * cannot), the heap stops re-basing and recycling checkpoints write page
 * logs. Without it (no log area, no userfaultfd, a lazy fill under way),
 * nothing changes: the heap re-bases, and a later re-base tries again.
 * Nor while the heap maps its own segment (a new heap), unless own (image_
 * log_now: the program's threads forbid the re-base): a fork child would
 * map it too, and ckpt_persist writes there (persist.c), refused while
 * such a child lives; so a new heap's first checkpoint re-bases where it
 * can. Nor on tmpfs, where the images are memory and there is no disk for
 * a log to spare, unless own again: the other way, a forked checkpoint,
 * does not re-base either and costs a fork and a copy of every page
 * written since the base. Nor with keep 1, where nothing is recycled: every
 * checkpoint copies its base, and a base that stays would mean copying
 * more and more of what was written since it (image_build stops logging
 * when the setting drops to 1).
 */
static void
start_logging(struct ckpt_pool *p, uint32_t seg, uint64_t used, int own)
{
	struct engine *e = p->eng;
	if (e->logging || e->lazy || (seg == p->seg && !own) || p->keep < 2 || (e->on_tmpfs && !own) ||
	    !(p->hdr.flags & POOL_F_LOG_AREA) || test_flag("CKPT_TEST_NO_LOG"))
		return;
	if (dirty_start(&e->interval, (void *)(uintptr_t)p->hdr.base, interval_len(p, used),
			0) < 0)
		return;
	if (e->interval.method != DIRTY_WP_ASYNC) {
		dirty_stop(&e->interval);
		return;
	}
	e->logging = 1;
	e->cur_kept = 0;
}

void
image_settle(struct ckpt_pool *p)
{
	struct engine *e = p->eng;
	if (e && e->lazy) {
		lazy_finish(e->lazy);
		e->lazy = NULL;
	}
	/* and the last log's fold: no engine thread runs across a fork, and a
	 * checkpoint's fdatasync takes the folded pages with it */
	if (e)
		fold_wait(&e->fold);
}

int
image_attach(struct ckpt_pool *p, uint32_t seg, uint64_t used, ckpt_id id)
{
	if (!p->eng && image_prepare(p, NULL) < 0)
		return -1;
	struct engine *e = p->eng;
	void *base = (void *)(uintptr_t)p->hdr.base;
	struct pmap m;
	if (map_image(&m, p->fd, seg_off(p, seg), p->hdr.seg_size, base) < 0)
		return -1;
	p->heap_map = m;
	int rebase = e->tracking;
	if (rebase)
		dirty_stop(&e->tracker);
	e->tracking = 0;
	/* a lazy restart takes the image's range over before the tracker
	 * looks at it (lazy.c; the tracker then scans the chunks it maps) */
	if (e->lazy_uffd >= 0 && start_lazy(p, seg, used, id) < 0)
		return -1;
	if (dirty_start(&e->tracker, base, p->hdr.seg_size, 1) < 0)
		return -1;
	e->tracking = 1;
	/* a checkpoint's image (a restart) or one just written (a re-base);
	 * not a new heap's empty base */
	if (id || rebase)
		start_logging(p, seg, used, 0);
	/* a re-base: the image we leave may have been pinned by a lock of
	 * ours (an unpublished one, checkpoint.c); nothing maps it now */
	if (rebase && e->base_seg != seg)
		cat_pin_drop(p->fd, e->base_seg);
	e->base_seg = seg;
	p->eng_base = seg;
	e->epoch++;
	bg_clear(e);            /* they were made from the old base */
	e->base_used = used;
	e->base_is_ckpt = id != 0;
	e->base_id = id;
	e->persist_ok = 1;      /* a re-base clears it until its publication */
	/* a checkpoint base opens the ring: recycling it needs no bitmap of
	 * its own, only those of the intervals after it */
	if (id && e->n == 0) {
		e->ring[0] = (struct image_interval){ .id = id, .seg = seg };
		e->n = 1;
	}
	return 0;
}

void
image_detach(struct ckpt_pool *p)
{
	struct engine *e = p->eng;
	if (!e)
		return;
	lazy_stop(e->lazy);
	if (e->lazy_uffd >= 0)
		close(e->lazy_uffd);
	if (e->lazy_fetch.end)
		e->lazy_fetch.end(e->lazy_fetch.arg);
	if (e->tracking)
		dirty_stop(&e->tracker);
	fold_wait(&e->fold);
	if (e->logging)
		dirty_stop(&e->interval);
	while (e->n)
		ring_drop_front(e);
	bg_clear(e);
	free(e->since);
	free(e->cur);
	if (e->sums)
		munmap(e->sums, p->hdr.seg_size / PAGE * sizeof(uint64_t));
	free(e);
	p->eng = NULL;
}

uint64_t
image_epoch(const struct ckpt_pool *p)
{
	return p->eng ? p->eng->epoch : 0;
}

size_t
image_bitmap_bytes(const struct ckpt_pool *p)
{
	return p->eng ? p->eng->words * sizeof(uint64_t) : 0;
}

void
image_copy_interval(const struct ckpt_pool *p, uint64_t *dst)
{
	const struct engine *e = p->eng;
	/* the interval the last checkpoint closed: its image is the base it
	 * was made from with these pages changed */
	if (e && e->n && e->ring[e->n - 1].written)
		memcpy(dst, e->ring[e->n - 1].written, e->words * sizeof(uint64_t));
}

void
image_bg_published(struct ckpt_pool *p, ckpt_id id, uint64_t epoch, const uint64_t *written)
{
	struct engine *e = p->eng;
	if (!e || epoch != e->epoch)
		return;         /* re-based since the fork: made from another base */
	uint64_t *b = bits_new(e);
	if (!b)
		return;         /* only a chance to recycle is lost */
	memcpy(b, written, e->words * sizeof(uint64_t));
	if (e->nbg == IMAGE_RING) {
		free(e->bg[0].written);
		memmove(&e->bg[0], &e->bg[1], (IMAGE_RING - 1) * sizeof(e->bg[0]));
		e->nbg--;
	}
	e->bg[e->nbg++] = (struct image_bg){ .id = id, .written = b };
}

void
image_after_fork_child(struct ckpt_pool *p)
{
	struct engine *e = p->eng;
	if (!e)
		return;
	/* a fork our prepare handler saw settled the fill; after any other
	 * the thread is not in this process (and its holes read as zeros) */
	e->lazy = NULL;
	dirty_after_fork_child(&e->tracker);
	while (e->n)
		ring_drop_front(e);
	/* the parent's fold and interval are the parent's: the child's first
	 * checkpoint re-bases (from the pages written since the base, which
	 * the private scan knows), and its next ones log */
	fold_forget(&e->fold);
	if (e->logging)
		dirty_stop(&e->interval);   /* another process: closes, no ioctl */
	e->logging = 0;
	e->cur_kept = 0;
}

/*
 * recyclable -- the checkpoint to recycle: one of the lineage that this
 * publication's retention drops anyway (keep newer ones counting the new
 * one; at least two in the lineage), not pinned, and whose difference from
 * the heap is known: a ring entry (every page written since it is
 * remembered; its index returned), else a background checkpoint of the
 * current base (-1, its index in *bg). -1 and *bg -1: none. The oldest
 * qualifies first; in a lineage whose oldest is a pinned base (a heap that
 * only checkpoints in the background keeps mapping it) a newer one does.
 */
static int
recyclable(struct ckpt_pool *p, const struct cat_view *v, int *bg)
{
	struct engine *e = p->eng;
	unsigned count = 0;
	*bg = -1;
	for (uint32_t i = 0; i < v->n; i++)
		count += v->e[i].state == CAT_CKPT && v->e[i].lineage == p->lineage;
	if (count < p->keep || count < 2)
		return -1;
	int best = -1, best_k = -1;
	for (uint32_t i = 0; i < v->n; i++) {
		const struct cat_entry *c = &v->e[i];
		if (c->state != CAT_CKPT || c->lineage != p->lineage)
			continue;
		unsigned newer = 1;     /* the one being made */
		for (uint32_t j = 0; j < v->n; j++)
			newer += v->e[j].state == CAT_CKPT && v->e[j].lineage == p->lineage &&
				v->e[j].ckpt_id > c->ckpt_id;
		if (newer < p->keep || (best >= 0 && c->ckpt_id > v->e[best].ckpt_id) ||
		    seg_pinned(p, v, i))
			continue;
		/* a logged image's bytes are not its checkpoint's until folded */
		if ((c->flags & CAT_F_LOGGED) &&
		    !(e->fold.done && e->fold.seg == i && e->fold.id == c->ckpt_id))
			continue;
		int k = -1, b = -1;
		for (unsigned r = 0; r + 1 < e->n; r++)
			if (e->ring[r].seg == i && e->ring[r].id == c->ckpt_id)
				k = (int)r;
		for (unsigned r = 0; r < e->nbg && k < 0; r++)
			if (e->bg[r].id == c->ckpt_id)
				b = (int)r;
		if (k >= 0 || b >= 0) {
			best = (int)i;
			best_k = k;
			*bg = b;
		}
	}
	return best_k;
}

int
image_reserve(struct ckpt_pool *p, struct cat_view *v, int *recycled)
{
	struct engine *e = p->eng;
	*recycled = 0;
	int bg, k = recyclable(p, v, &bg);
	int seg;
	free(e->recycling);     /* a checkpoint that failed before its build */
	e->recycling = NULL;
	if (k >= 0) {
		seg = (int)e->ring[k].seg;
		cat_free_entry(&v->e[seg]);
		/* the bitmaps of what came before it are no longer needed */
		while (k-- > 0)
			ring_drop_front(e);
		*recycled = 1;
	} else if (bg >= 0) {
		/* the entry moves to image_build; the recycled image is gone */
		seg = -1;
		for (uint32_t i = 0; i < v->n; i++)
			if (v->e[i].state == CAT_CKPT && v->e[i].ckpt_id == e->bg[bg].id)
				seg = (int)i;
		cat_free_entry(&v->e[seg]);
		e->recycling = e->bg[bg].written;
		e->bg[bg] = e->bg[--e->nbg];
		*recycled = 2;
	} else {
		uint64_t punch;         /* image_build punches or copies over it */
		seg = seg_take(p, v, &punch);
		if (seg < 0)
			return -1;
	}
	return seg;
}

/* mark -- dirty_collect callback: set the bits of a written run */
static int
mark(void *arg, uint64_t off, uint64_t len)
{
	uint64_t *b = arg;
	for (uint64_t pg = off / PAGE; pg < (off + len) / PAGE; pg++)
		b[pg / 64] |= 1ull << (pg % 64);
	return 0;
}

/*
 * write_runs -- pwrite the pages set in b, below used, from the heap into
 * segment seg, in address order, runs of pages as one write each. Nothing
 * here starts their writeback: the checkpoint's fdatasync submits it all
 * at once, in order, as synchronous writes. (Starting it every MiB written,
 * sync_file_range with SYNC_FILE_RANGE_WRITE, was measured worse on a busy
 * machine: the copy waited in those calls for up to hundreds of ms, likely
 * the block layer throttling background writeback on a contended disk,
 * and the fdatasync gained less; docs/BENCHMARKS.md.)
 */
static int
write_runs(struct ckpt_pool *p, uint32_t seg, const uint64_t *b, uint64_t used)
{
	struct engine *e = p->eng;
	const char *heap = p->heap_map.addr;
	uint64_t dst = seg_off(p, seg), npages = (used + PAGE - 1) / PAGE;
	e->last_written = 0;
	for (uint64_t pg = 0; pg < npages;) {
		if (!(b[pg / 64] >> (pg % 64) & 1)) {
			pg++;
			continue;
		}
		uint64_t end = pg;
		while (end < npages && (b[end / 64] >> (end % 64) & 1))
			end++;
		uint64_t off = pg * PAGE, len = (end - pg) * PAGE;
		while (len) {
			ssize_t n = pwrite(p->fd, heap + off, len, (off_t)(dst + off));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return ckpt_err_set(n < 0 ? errno : EIO,
					"cannot write the checkpoint image: %s",
					strerror(n < 0 ? errno : EIO));
			off += (uint64_t)n;
			len -= (uint64_t)n;
			e->last_written += (uint64_t)n;
		}
		if (e->last_written && end < npages)
			test_point("checkpoint:mid-copy");
		pg = end;
	}
	return 0;
}

/*
 * image_sum -- the image's checksum from the page sums, rehashing the pages
 * written since the base (the others still hold the base's bytes)
 */
static void
image_sum(struct ckpt_pool *p, uint64_t used, uint64_t *sum, uint32_t *flags)
{
	struct engine *e = p->eng;
	const char *heap = p->heap_map.addr;
	if (used % PAGE) {
		/* never with the heap's page-multiple high-water mark; whole then */
		*sum = XXH3_64bits(heap, used);
		*flags = 0;
		return;
	}
	uint64_t npages = used / PAGE;
	sums_upto(e, npages);
	for (uint64_t w = 0; w < e->words && w * 64 < npages; w++)
		for (uint64_t bits = e->cur[w]; bits; bits &= bits - 1) {
			uint64_t pg = w * 64 + (uint64_t)__builtin_ctzll(bits);
			if (pg < npages)
				e->sums[pg] = sums_page(heap + pg * PAGE);
		}
	*sum = sums_top(e->sums, npages);
	*flags = CAT_F_PAGE_SUMS;
}

/*
 * private_scan -- e->since: the private scan's report below used, every
 * page written since the base mapping; NULL (ckpt_err_set) if it cannot
 */
static const uint64_t *
private_scan(struct ckpt_pool *p, uint64_t used)
{
	struct engine *e = p->eng;
	if (!e->since && !(e->since = bits_new(e))) {
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	memset(e->since, 0, e->words * sizeof(uint64_t));
	return dirty_collect(&e->tracker, used, 0, mark, e->since) < 0 ? NULL : e->since;
}

/* stop_logging -- back to a heap that re-bases at its next checkpoint */
static void
stop_logging(struct engine *e)
{
	dirty_stop(&e->interval);
	e->logging = 0;
	e->cur_kept = 0;        /* the private scan's report covers the interval */
}

/*
 * grow_interval -- a heap grown to used bytes past what the interval
 * tracker covers: cover it from now on, and count what was written in the
 * new part as this interval's (the private scan's report there: every page
 * written since the base, more than the interval's, never less). -1 with
 * the growth not tracked: the caller stops logging.
 */
static int
grow_interval(struct ckpt_pool *p, uint64_t used)
{
	struct engine *e = p->eng;
	uint64_t old = e->interval.len;
	if (used <= old)
		return 0;
	if (test_flag("CKPT_TEST_NO_GROW") ||
	    dirty_grow(&e->interval, interval_len(p, used)) < 0 || !private_scan(p, used)) {
		ckpt_err_clear();
		return -1;
	}
	if (!e->cur_kept)
		memset(e->cur, 0, e->words * sizeof(uint64_t));
	for (uint64_t pg = old / PAGE; pg < (used + PAGE - 1) / PAGE; pg++)
		e->cur[pg / 64] |= e->since[pg / 64] & (1ull << (pg % 64));
	e->cur_kept = 1;        /* image_build adds the interval's own report */
	return 0;
}

/*
 * since_base -- the pages written since the base mapping: the interval
 * itself without logging (the heap re-based at the last checkpoint), else
 * the private scan's report (about 10 ms a GiB, only for builds that do
 * not recycle one of this heap's own checkpoints)
 */
static const uint64_t *
since_base(struct ckpt_pool *p, uint64_t used)
{
	struct engine *e = p->eng;
	if (!e->logging)
		return e->cur;
	if (!private_scan(p, used))
		return NULL;
	/* what the interval saw is written since the base too (a page the
	 * program dropped with MADV_DONTNEED is the base's again, and the
	 * private scan misses it: the union covers it) */
	for (uint64_t i = 0; i < e->words; i++)
		e->since[i] |= e->cur[i];
	return e->since;
}

int
image_log_now(struct ckpt_pool *p, uint64_t used)
{
	struct engine *e = p->eng;
	/* a logging heap grown past its interval: grown, or started afresh */
	if (e->logging && grow_interval(p, used) < 0)
		stop_logging(e);
	if (e->logging)
		return 1;
	image_settle(p);        /* a lazy fill's range is free for the interval */
	start_logging(p, e->base_seg, used, 1);
	if (!e->logging)
		return 0;
	/* armed first, scanned second: a page written in between is in both */
	if (!private_scan(p, used)) {
		ckpt_err_clear();
		stop_logging(e);
		return 0;
	}
	memcpy(e->cur, e->since, e->words * sizeof(uint64_t));
	e->cur_kept = 1;        /* image_build adds the interval's own report */
	return 1;
}

/* write_log -- the pages of w as the log of seg (1), or 0: they go in place */
static int
write_log(struct ckpt_pool *p, uint32_t seg, const uint64_t *w, uint64_t used, uint64_t sum)
{
	struct engine *e = p->eng;
	uint64_t bytes;
	int rc = plog_write(p->fd, layout_log_off(&p->hdr, seg), p->hdr.seg_size / LAYOUT_LOG_RATIO,
			p->heap_map.addr, w, used, e->sums, sum, &bytes);
	if (rc == 1) {
		e->last_written = bytes;
		test_point("checkpoint:after-log");
	}
	return rc;
}

int
image_build(struct ckpt_pool *p, uint32_t seg, int recycled, uint64_t used, uint64_t *sum,
		uint32_t *flags)
{
	struct engine *e = p->eng;
	image_settle(p);
	/* nothing will be recycled with keep 1: re-base again (start_logging;
	 * checkpoint.c's step 0 saw to the program's threads) */
	if (e->logging && p->keep < 2)
		stop_logging(e);
	/* a heap grown past the interval's range has it grown, or re-bases;
	 * beside the program's threads (checkpoint.c, step 0, which tried the
	 * same before the reserve: the heap grew since) it starts a fresh
	 * interval over the grown heap instead, or fails */
	if (e->logging && grow_interval(p, used) < 0) {
		stop_logging(e);
		if (threads_of_program() != 0 && !image_log_now(p, used))
			return ckpt_err_set(ENOMEM, "the heap grew past what its write-protect "
					"tracking covers, which could neither grow nor start "
					"again; re-basing the heap instead is not safe while "
					"other threads run (the next checkpoint logs, or is "
					"taken by a forked child)");
	}
	/* the interval: logging re-arms, so what a failed checkpoint collected
	 * stays in cur for the next one */
	if (!e->cur_kept)
		memset(e->cur, 0, e->words * sizeof(uint64_t));
	if (dirty_collect(e->logging ? &e->interval : &e->tracker, used, e->logging, mark,
			e->cur) < 0)
		return -1;
	e->cur_kept = e->logging;
	test_step("scan");
	e->last_recycled = recycled;
	e->last_cloned = 0;
	e->last_logged = 0;
	const uint64_t *w = NULL;
	uint64_t *u = NULL;
	if (recycled == 2) {
		/* a background image of this base: the base with the pages it
		 * found written changed; what differs from the heap now is
		 * among those and the pages written since the base (a page
		 * written then dropped, MADV_DONTNEED, is back to the base's
		 * bytes here, not there: the union covers it) */
		u = e->recycling;
		e->recycling = NULL;
		const uint64_t *b = since_base(p, used);
		if (!b) {
			free(u);
			return -1;
		}
		for (uint64_t i = 0; i < e->words; i++)
			u[i] |= b[i];
		w = u;
	} else if (recycled) {
		/* written since the recycled checkpoint: every later interval
		 * and the current one */
		u = bits_new(e);
		if (!u)
			return ckpt_err_set(ENOMEM, "out of memory");
		memcpy(u, e->cur, e->words * sizeof(uint64_t));
		for (unsigned k = 1; k < e->n; k++)
			for (uint64_t i = 0; i < e->words; i++)
				u[i] |= e->ring[k].written[i];
		w = u;
	} else {
		if (!(w = since_base(p, used)))
			return -1;
		if (e->base_used) {
			/* an image that retention will recycle is rewritten in
			 * place later: give it blocks of its own (on XFS a write
			 * into a clone is a copy on write); with keep 1 nothing
			 * is recycled: clone */
			const struct segcopy_opts o = { .kind = SEGCOPY_KIND_PROBE };
			enum segcopy_how how = p->keep >= 2 && e->can_clone ? SEGCOPY_UNSHARED
				: SEGCOPY_ANY;
			if (segcopy(p->fd, seg_off(p, e->base_seg), seg_off(p, seg), e->base_used,
					p->hdr.seg_size, how, &o, &e->last_cloned) < 0)
				return -1;
		} else if (segcopy_punch(p->fd, seg_off(p, seg), p->hdr.seg_size) < 0) {
			return -1;
		}
	}
	test_step("base");
	image_sum(p, used, sum, flags);
	/* format 1.9: a recycled image of this heap's takes the pages in its
	 * log, in sequence, when they fit; else (and before 1.9) in place */
	int rc = 0;
	if (e->logging && recycled == 1 && (*flags & CAT_F_PAGE_SUMS) &&
	    (p->hdr.flags & POOL_F_LOG_AREA))
		rc = write_log(p, seg, w, used, *sum);
	if (rc == 1) {
		e->last_logged = 1;
		*flags |= CAT_F_LOGGED;
	} else if (rc == 0) {
		rc = write_runs(p, seg, w, used);
	}
	free(u);
	if (rc < 0)
		return -1;          /* a retry writes the same pages again */
	test_step("write");
	if (recycled == 1)
		ring_drop_front(e); /* the recycled checkpoint is gone */
	/* format 1.2: the page sums go beside the image, so that a restart
	 * can verify each page on first access (lazy.c) */
	if ((*flags & CAT_F_PAGE_SUMS) && (p->hdr.flags & POOL_F_SUMS_AREA)) {
		if (sums_store(p->fd, layout_sums_off(&p->hdr, seg), e->sums, used / PAGE) < 0)
			return -1;
		*flags |= CAT_F_SUMS_STORED;
	}
	test_step("sums");
	return 0;
}

/*
 * ring_push -- remember the interval that ends with the new image in seg
 * (its pages: cur, copied into b; its id comes with image_published)
 */
static void
ring_push(struct engine *e, uint32_t seg, uint64_t *b)
{
	if (e->n == IMAGE_RING)
		ring_drop_front(e);
	memcpy(b, e->cur, e->words * sizeof(uint64_t));
	e->ring[e->n++] = (struct image_interval){ .id = 0, .seg = seg, .written = b };
	e->cur_kept = 0;        /* the ring has the interval now */
}

int
image_rebase(struct ckpt_pool *p, uint32_t seg, uint64_t used)
{
	struct engine *e = p->eng;
	uint64_t *b = bits_new(e);
	if (!b)
		return ckpt_err_set(ENOMEM, "out of memory");
	e->persist_ok = 0;      /* from here the heap may map the new image */
	if (image_attach(p, seg, used, 0) < 0) {
		free(b);
		return -1;
	}
	e->persist_ok = 0;      /* the catalog still names the old base */
	ring_push(e, seg, b);
	return 0;
}

int
image_keep_base(struct ckpt_pool *p, uint32_t seg)
{
	struct engine *e = p->eng;
	uint64_t *b = bits_new(e);
	if (!b)
		return ckpt_err_set(ENOMEM, "out of memory");
	ring_push(e, seg, b);
	return 0;
}

void
image_publishing(struct ckpt_pool *p, struct cat_view *v, uint32_t seg, ckpt_id id)
{
	struct engine *e = p->eng;
	if (!e->logging)
		v->e[p->seg].source = seg;
	/* the pages persisted under the old base are stale from here */
	if (p->hdr.minor >= POOL_MINOR_PERSISTED_PAGES)
		v->e[p->seg].base_id = id;
	fold_clear(&e->fold, v);
}

void
image_published(struct ckpt_pool *p, uint32_t seg, ckpt_id id, uint64_t used, uint64_t sum)
{
	struct engine *e = p->eng;
	if (e->n && e->ring[e->n - 1].seg == seg)
		e->ring[e->n - 1].id = id;
	if (!e->logging)
		e->base_is_ckpt = 1;
	e->base_id = id;
	e->persist_ok = 1;
	fold_cleared(&e->fold);     /* the publication cleared its flag */
	if (e->last_logged)
		fold_start(&e->fold, p, seg, id, used, sum);
}

int
image_fold_finish(struct ckpt_pool *p)
{
	struct engine *e = p->eng;
	if (!e)
		return 0;
	fold_wait(&e->fold);
	if (!e->fold.done)
		return 0;
	if (fdatasync(p->fd) < 0)
		return ckpt_err_set(errno, "fdatasync: %s", strerror(errno));
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	fold_clear(&e->fold, &v);
	if (cat_commit(&p->cat) < 0)
		return -1;
	fold_cleared(&e->fold);
	return 0;
}
