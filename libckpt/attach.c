/*
 * attach.c -- the internal hooks of attach.h for the preload library: a
 * new process's heap, young until it is worth a catalog commit.
 *
 * attach_empty_heap is ckpt_open without the checkpoint: resolve the
 * settings (config.c), open the pool and reserve its base (pool_open),
 * take a segment, format an empty heap in it (pool_attach_segment) and arm
 * fork handling. A heap published at start punches its segment whole first
 * (one that held a dead heap, or a FREE one holding a young heap's or a
 * crash's leftovers), so it starts on zeroes and is formatted writing only
 * its nonzero bytes, a few pages (heap_format_zeroed). A young heap
 * formats over whatever its segment holds (all of the metadata written,
 * the rest never read before the heap writes it): on ext4 a punch first
 * writes the range's dirty pages back, the last owner's heap, which under
 * I/O load took longer than a short process lives. In cow mode the
 * segment is the heap's base image and is punched in every case.
 *
 * Young heaps (format 1.5, POOL_F_YOUNG_HEAPS). Most processes of a shell
 * or a compiler driver live milliseconds; a durable catalog commit for each
 * (msync of the catalog, and fdatasync when the file grows, which writes
 * back every dirty page of the file) cost more than the process. So a heap
 * starts young: the process takes a FREE segment that lies inside the file
 * and that nobody holds, under the catalog lock, and holds it by its lease
 * alone (cat_lease_take), writing nothing to the catalog. Every other
 * process reads a FREE segment with a held lease as taken (seg_pinned):
 * seg_take, reclaim and the file's trim leave it alone. The heap is
 * published (a LIVE entry of a new life, durable like any other) by
 * attach_publish: before the process forks or checkpoints (the library
 * calls it through p->publish: pool_published), and at the first growth
 * of its heap after publish_after_ns (p->on_grow). A fork child of such a
 * process starts young too (fork.c), and records its parent when it
 * publishes. A young process that
 * ends, however it ends, leaves nothing: its lease goes with it and its
 * segment is FREE, as the catalog said all along; the next taker punches
 * it. No crash at any instant leaves the catalog naming bytes it does not
 * describe. Crash points: attach:young-claimed (lease held, not yet
 * formatted), attach:young-formatted, attach:before-publish (inside the
 * transaction), attach:after-publish.
 *
 * Which segment. A FREE one inside the file; else a FREE one past its end,
 * the file extended to cover it under the catalog lock, without a sync
 * (the next commit that names the segment syncs the size: filesize.c; in
 * a pool of format 1.8 with headroom, which that sync makes durable too,
 * so the next young heaps publish inside the durable size, unsynced), so
 * dead heaps stay inspectable for as long as the pool has room. When only
 * dead segments are left, the oldest ATTACH_FREE_BATCH of them are freed
 * in one commit, so the next few processes start young again without a
 * commit each. A pool without POOL_F_YOUNG_HEAPS (made before 1.5), or
 * publish_after_ns == 0, publishes every heap at start, as seg_take
 * chooses (a FREE segment, else the oldest dead one).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "config.h"
#include "filesize.h"
#include "bgsave.h"
#include "fork.h"
#include "map.h"
#include "pool.h"
#include "segment.h"
#include "testhook.h"

/* dead segments freed by one commit when no FREE one is left */
#define ATTACH_FREE_BATCH 8u

/* claim_published -- take a segment (seg_take) and publish it LIVE, empty, as ours */
static int
claim_published(struct ckpt_pool *p)
{
	struct cat_view v;
	uint64_t punch;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	int seg = seg_take(p, &v, &punch);
	if (seg < 0 || cat_lease_take(p->fd, (uint32_t)seg) < 0) {
		cat_end(&p->cat);
		return -1;
	}
	(void)punch;    /* every segment is punched whole: seg_zero */
	pool_new_heap_entry(p, &v, (uint32_t)seg);
	return cat_commit(&p->cat);
}

/*
 * claim_young -- hold a FREE segment by our lease, writing nothing to the
 * catalog: 1 if we did (p->seg set), 0 if there is none to be had that way
 * (the caller publishes instead), -1. When the pool holds only dead
 * segments, frees a batch of the oldest in one commit first.
 */
static int
claim_young(struct ckpt_pool *p)
{
	for (int round = 0; round < 2; round++) {
		struct cat_view v;
		if (cat_begin(&p->cat, &v) < 0)
			return -1;
		int seg = seg_take_young(p, &v);
		if (seg < 0 && errno != ENOSPC) {
			cat_end(&p->cat);
			return 0;       /* the published path says what is wrong */
		}
		if (seg >= 0) {
			int rc = cat_lease_take(p->fd, (uint32_t)seg);
			cat_end(&p->cat);
			if (rc < 0)
				return -1;
			p->seg = (uint32_t)seg;
			return 1;
		}
		uint32_t freed[ATTACH_FREE_BATCH];
		unsigned n = round == 0 ? seg_free_oldest_dead(p, &v, freed, ATTACH_FREE_BATCH) : 0;
		if (n == 0) {
			cat_end(&p->cat);
			return 0;
		}
		if (cat_commit(&p->cat) < 0)
			return -1;
		/* their blocks stay until a taker formats over them (young) or
		 * punches them (published) */
	}
	return 0;
}

int
attach_publish(ckpt_pool *p)
{
	if (!p || !atomic_load(&p->young))
		return 0;
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	if (!atomic_load(&p->young)) {     /* another thread did it */
		cat_end(&p->cat);
		return 0;
	}
	if (v.e[p->seg].state != CAT_FREE) {
		cat_end(&p->cat);
		return ckpt_err_set(EIO, "the catalog gave segment %u of this process's young "
				"heap to another role", p->seg);
	}
	pool_new_heap_entry(p, &v, p->seg);
	struct cat_entry *e = &v.e[p->seg];
	if (p->young_parent != CAT_NONE) {      /* a young fork child */
		e->parent = p->young_parent;
		e->parent_life = p->young_parent_life;
	}
	e->used = heap_high_water(p->heap);
	test_point("attach:before-publish");
	if (cat_commit(&p->cat) < 0)
		return -1;
	atomic_store(&p->young, 0);
	test_point("attach:after-publish");
	return 0;
}

/* publish_when_due -- the heap grew: publish a young heap older than its due time */
static void
publish_when_due(struct ckpt_pool *p)
{
	if (atomic_load(&p->young) && mono_ns() >= p->young_due_ns &&
	    attach_publish(p) < 0)
		p->young_due_ns = mono_ns() + 1000000000u;   /* try again in a second */
}

ckpt_pool *
attach_empty_heap(const char *path, const struct ckpt_config *cfg, uint64_t publish_after_ns)
{
	struct ckpt_pool *p = pool_open_path(path, cfg);
	if (!p)
		return NULL;
	int young = 0;
	p->young_parent = CAT_NONE;
	if (publish_after_ns > 0 && (p->hdr.flags & POOL_F_YOUNG_HEAPS)) {
		p->young_after_ns = publish_after_ns;
		young = claim_young(p);
	}
	if (young < 0 || (young == 0 && claim_published(p) < 0)) {
		pool_discard(p);
		return NULL;
	}
	if (young) {
		atomic_store(&p->young, 1);
		p->young_due_ns = mono_ns() + publish_after_ns;
		test_point("attach:young-claimed");
	}
	/* a young heap formats over what the segment holds (its metadata
	 * rewritten, the rest never read before it is written): a punch would
	 * first write the last owner's dirty pages back. In cow mode the
	 * segment is the heap's base image, whose pages a checkpoint copies
	 * as they are: punched, as every other heap's */
	int zeroed = (!young || p->fork_mode == CKPT_FORK_COW) && seg_zero(p, p->seg);
	if (pool_attach_segment(p, zeroed ? POOL_ATTACH_FORMAT_ZEROED : POOL_ATTACH_FORMAT,
			p->seg, 0, 0) < 0) {
		if (!young)
			seg_release(p, p->seg, SEG_OURS);
		pool_discard(p);        /* a young segment: our lease goes with the descriptor */
		return NULL;
	}
	if (young)
		test_point("attach:young-formatted");
	if (p->young_after_ns) {        /* for us, and for young fork children */
		p->on_grow = publish_when_due;
		p->publish = attach_publish;
	}
	fork_register(p);
	bgsave_arm();
	return p;
}

int
attach_check(const char *path, const struct ckpt_config *cfg, size_t *heap_size)
{
	struct ckpt_pool *p = pool_open_path(path, cfg);
	if (!p)
		return -1;
	*heap_size = (size_t)p->hdr.seg_size;
	pool_discard(p);
	return 0;
}

void
attach_heap_range(const ckpt_pool *p, uintptr_t *base, size_t *size)
{
	*base = (uintptr_t)p->hdr.base;
	*size = (size_t)p->hdr.seg_size;
}

size_t
attach_usable_size(ckpt_pool *p, const void *ptr)
{
	return p->heap ? heap_block_size(p->heap, ptr) : 0;
}

uint32_t
attach_segment(const ckpt_pool *p)
{
	return p->seg;
}

int
attach_zero(ckpt_pool *p, void *addr, size_t len, int writable)
{
	/* a heap in memory: a store is the only way (its pages count as
	 * written for the dirty tracker, as the program's own stores do) */
	if (p->detached || p->eng != NULL)
		goto store;
	/* a sealed heap is private anonymous memory: its pages dropped read as
	 * zeroes whatever the range's protection (pool_purge keeps them while
	 * a lazy fill would fault them in again from the image) */
	if (p->heap_map.kind == MAP_KIND_SEALED) {
		if (pool_purge(p, addr, 0, len) == 0)
			return 0;
		goto store;
	}
	if (seg_clear(p, addr, len) == 0)
		return 0;
store:
	if (!writable)
		return -1;
	memset(addr, 0, len);
	return 0;
}
