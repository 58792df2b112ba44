/*
 * attach.c -- the internal hooks of attach.h for the preload library.
 *
 * attach_empty_heap is ckpt_open without the checkpoint: resolve the
 * settings (config.c), open the pool and reserve its base (pool_open),
 * then in one catalog transaction take a segment (seg_take: a free one,
 * else the oldest dead one) and publish it LIVE as a new life and lineage,
 * its lease taken first; format an empty heap in it (pool_attach_segment)
 * and arm fork handling. A segment that held a dead heap is punched after
 * the commit, so the new heap starts on zeroes. A crash between the commit
 * and the format leaves a LIVE entry of a dead owner: a dead segment,
 * reclaimed on demand like any other.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "attach.h"
#include "config.h"
#include "fork.h"
#include "pool.h"
#include "segment.h"

/* claim_empty -- take a segment and publish it LIVE, empty, as ours */
static int
claim_empty(struct ckpt_pool *p)
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
	p->seg = (uint32_t)seg;
	p->life = p->lineage = v.h->next_life++;
	struct cat_entry *e = &v.e[seg];
	e->life = e->lineage = p->life;
	e->state = CAT_LIVE;
	e->flags = pool_heap_in_memory(p) ? CAT_F_IN_MEMORY : 0;
	e->owner = p->self;
	e->time_ns = now_ns();
	if (cat_commit(&p->cat) < 0)
		return -1;
	if (punch)
		seg_punch(p, &p->seg, 1);
	return 0;
}

ckpt_pool *
attach_empty_heap(const char *path, const struct ckpt_config *cfg)
{
	struct pool_config c;
	if (!path || !*path) {
		ckpt_err_set(EINVAL, "pool path is empty");
		return NULL;
	}
	if (config_resolve(&c, cfg, 0) < 0)
		return NULL;
	struct ckpt_pool *p = pool_open(path, &c);
	if (!p)
		return NULL;
	if (claim_empty(p) < 0) {
		pool_discard(p);
		return NULL;
	}
	if (pool_attach_segment(p, 1, p->seg, 0, 0) < 0) {
		seg_release(p, p->seg, SEG_OURS);
		pool_discard(p);
		return NULL;
	}
	fork_register(p);
	return p;
}

int
attach_check(const char *path, const struct ckpt_config *cfg, size_t *heap_size)
{
	struct pool_config c;
	if (!path || !*path)
		return ckpt_err_set(EINVAL, "pool path is empty");
	if (config_resolve(&c, cfg, 0) < 0)
		return -1;
	struct ckpt_pool *p = pool_open(path, &c);
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

uint32_t
attach_segment(const ckpt_pool *p)
{
	return p->seg;
}

void
attach_zero(ckpt_pool *p, void *addr, size_t len)
{
	if (!p->detached && p->eng == NULL && p->heap_map.kind != MAP_KIND_IMAGE &&
	    p->heap_map.kind != MAP_KIND_SEALED) {
		off_t off = (off_t)(seg_off(p, p->seg) + ((uintptr_t)addr - p->hdr.base));
		if (fallocate(p->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off,
				(off_t)len) == 0)
			return;
	}
	memset(addr, 0, len);
}
