/*
 * checkpoint.c -- freezing the live heap into an immutable checkpoint
 * segment, and retention of old checkpoints.
 *
 * Steps (each a named crash point, see testhook.h):
 *   1. reserve a free segment in the catalog as BUSY (owned by us);
 *   2. quiesce the heap, copy its high-water prefix into the segment
 *      (clone or copy_file_range) and checksum it, un-quiesce;
 *   3. fdatasync the pool file: the copy is durable;
 *   4. publish: one catalog commit turns BUSY into CHECKPOINT with its id,
 *      and frees the checkpoints retention no longer keeps;
 *   5. punch the freed segments' blocks.
 * A crash before 4 leaves a BUSY entry of a dead owner, which is garbage
 * reclaimed on demand; the catalog's checkpoints are as they were.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "owner.h"
#include "pool.h"
#include "segcopy.h"
#include "testhook.h"

/* release_busy -- give back a reserved segment after a failed checkpoint */
static void
release_busy(struct ckpt_pool *p, uint32_t seg)
{
	int saved = errno;
	char msg[CKPT_ERRMSG_MAX];
	memcpy(msg, ckpt_errormsg(), sizeof(msg));
	struct cat_view v;
	if (cat_begin(&p->cat, &v) == 0) {
		cat_free_entry(&v.e[seg]);
		if (cat_commit(&p->cat) == 0)
			segcopy_punch(p->fd, pool_seg_off(p, seg), p->hdr.seg_size);
	}
	msg[sizeof(msg) - 1] = '\0';
	ckpt_err_set(saved, "%s", msg);
}

/*
 * apply_retention -- free this live segment's checkpoints beyond the newest
 * keep; returns a bitmap-free list of freed segments in out (count returned)
 */
static unsigned
apply_retention(struct ckpt_pool *p, struct cat_view *v, uint32_t *out)
{
	unsigned n = 0;
	for (;;) {
		unsigned count = 0;
		int oldest = -1;
		for (uint32_t i = 0; i < v->n; i++) {
			struct cat_entry *e = &v->e[i];
			if (e->state != CAT_CKPT || e->source != p->seg ||
			    !owner_equal(&e->owner, &p->self))
				continue;
			count++;
			if (oldest < 0 || e->ckpt_id < v->e[oldest].ckpt_id)
				oldest = (int)i;
		}
		if (count <= p->keep)
			return n;
		cat_free_entry(&v->e[oldest]);
		out[n++] = (uint32_t)oldest;
	}
}

CKPT_EXPORT int
ckpt_checkpoint(ckpt_pool *p, const char *label, ckpt_id *id)
{
	if (pool_usable(p) < 0)
		return -1;
	if (label && strlen(label) >= CAT_LABEL_MAX)
		return ckpt_err_set(EINVAL, "checkpoint label longer than %d bytes",
				CAT_LABEL_MAX - 1);
	pthread_mutex_lock(&p->mu);
	int ret = -1;
	struct cat_view v;

	/* 1. reserve */
	test_point("checkpoint:before-reserve");
	if (cat_begin(&p->cat, &v) < 0)
		goto out;
	uint64_t punch;
	int seg = pool_take_segment(p, &v, &punch);
	if (seg < 0) {
		cat_end(&p->cat);
		goto out;
	}
	v.e[seg].state = CAT_BUSY;
	v.e[seg].owner = p->self;
	v.e[seg].source = p->seg;
	v.e[seg].time_ns = pool_now_ns();
	if (cat_commit(&p->cat) < 0)
		goto out;

	/* 2. copy and checksum a quiescent heap */
	test_point("checkpoint:before-copy");
	heap_lock_all(p->heap);
	uint64_t used = heap_high_water(p->heap);
	uint64_t in_use = heap_bytes_in_use(p->heap);
	int cloned;
	int rc = segcopy(p->fd, pool_seg_off(p, p->seg), pool_seg_off(p, (uint32_t)seg),
			used, p->hdr.seg_size, SEGCOPY_ANY, &cloned);
	uint64_t sum = rc == 0 ? XXH3_64bits(p->heap_map.addr, used) : 0;
	heap_unlock_all(p->heap);
	if (rc < 0) {
		ckpt_err_prefix("checkpoint failed, pool unchanged: ");
		release_busy(p, (uint32_t)seg);
		goto out;
	}

	/* 3. durable */
	test_point("checkpoint:before-persist");
	if (fdatasync(p->fd) < 0) {
		ckpt_err_set(errno, "checkpoint failed, pool unchanged: fdatasync: %s",
				strerror(errno));
		release_busy(p, (uint32_t)seg);
		goto out;
	}
	test_point("checkpoint:after-persist");

	/* 4. publish */
	if (cat_begin(&p->cat, &v) < 0) {
		release_busy(p, (uint32_t)seg);
		goto out;
	}
	struct cat_entry *e = &v.e[seg];
	ckpt_id cid = v.h->next_ckpt_id++;
	e->state = CAT_CKPT;
	e->ckpt_id = cid;
	e->used = used;
	e->in_use = in_use;
	e->checksum = sum;
	e->time_ns = pool_now_ns();
	memset(e->label, 0, sizeof(e->label));
	if (label)
		memcpy(e->label, label, strlen(label));
	v.e[p->seg].used = used;
	uint32_t freed[POOL_MAX_SEGMENTS];
	unsigned nfreed = apply_retention(p, &v, freed);
	test_point("checkpoint:before-publish");
	if (cat_commit(&p->cat) < 0) {
		release_busy(p, (uint32_t)seg);
		goto out;
	}
	test_point("checkpoint:after-publish");

	/* 5. give back the space of what retention dropped */
	for (unsigned i = 0; i < nfreed; i++)
		segcopy_punch(p->fd, pool_seg_off(p, freed[i]), p->hdr.seg_size);
	if (id)
		*id = cid;
	ret = 0;
out:
	pthread_mutex_unlock(&p->mu);
	return ret;
}
