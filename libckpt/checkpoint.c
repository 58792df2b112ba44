/*
 * checkpoint.c -- freezing the live heap into an immutable checkpoint
 * segment, and retention of old checkpoints.
 *
 * Steps (each a named crash point, see testhook.h):
 *   1. reserve a free segment in the catalog as BUSY (owned by us);
 *   2. quiesce the heap, copy its high-water prefix into the segment
 *      (segcopy: clone, else copy_file_range, else a pmem memcpy on pmem,
 *      else pread/pwrite; in two halves with the mid-copy crash point
 *      between them) and checksum it, un-quiesce;
 *   3. fdatasync the pool file: the copy is durable;
 *   4. publish: one catalog commit turns BUSY into CHECKPOINT with its id,
 *      and frees the checkpoints retention no longer keeps;
 *   5. punch the freed segments' blocks.
 * A crash before 4 leaves a BUSY entry of a dead owner, which is garbage
 * reclaimed on demand; the catalog's checkpoints are as they were. A
 * failure before 4 (ENOSPC while copying, fdatasync) gives the reserved
 * segment back and leaves the pool as it was.
 *
 * Also here: retention set on an open pool (ckpt_set_keep_checkpoints) and
 * the explicit reclaim of dead segments (ckpt_reclaim).
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
 * apply_retention -- free the checkpoints of this heap's lineage beyond the
 * newest keep; the freed segments' indices go to out (count returned). The
 * lineage (format.h) is this live heap and the earlier lives it was
 * restarted from, so a service that restarts keeps one window of
 * checkpoints; a fork child's lineage is its own.
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
			if (e->state != CAT_CKPT || e->lineage != p->lineage)
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

/* punch_all -- give back the blocks of freed segments (after their commit) */
static void
punch_all(struct ckpt_pool *p, const uint32_t *segs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		segcopy_punch(p->fd, pool_seg_off(p, segs[i]), p->hdr.seg_size);
}

/* split alignment of the two copy halves: a multiple of any clone granularity */
#define COPY_SPLIT_ALIGN ((uint64_t)64 << 10)

/*
 * copy_live -- copy the live heap's [0, used) into segment seg (the rest
 * of it holes), in two halves with the "checkpoint:mid-copy" crash point
 * between them, so the crash tests can stop a checkpoint with half its
 * data written. Two clones or two copy_file_range calls cost what one does.
 */
static int
copy_live(struct ckpt_pool *p, uint32_t seg, uint64_t used)
{
	uint64_t src = pool_seg_off(p, p->seg), dst = pool_seg_off(p, seg);
	uint64_t half = (used / 2) & ~(COPY_SPLIT_ALIGN - 1);
	/* the heap's mapping tells segcopy whether the pmem memcpy path applies */
	const struct segcopy_opts o = { .kind = (int)p->heap_map.kind };
	int cloned;
	if (segcopy(p->fd, src, dst, half, p->hdr.seg_size, SEGCOPY_ANY, &o, &cloned) < 0)
		return -1;
	test_point("checkpoint:mid-copy");
	return segcopy(p->fd, src + half, dst + half, used - half,
			p->hdr.seg_size - half, SEGCOPY_ANY, &o, &cloned);
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
	v.e[seg].life = p->life;
	v.e[seg].lineage = p->lineage;
	v.e[seg].time_ns = pool_now_ns();
	if (cat_commit(&p->cat) < 0)
		goto out;

	/* 2. copy and checksum a quiescent heap */
	test_point("checkpoint:before-copy");
	heap_lock_all(p->heap);
	uint64_t used = heap_high_water(p->heap);
	uint64_t in_use = heap_bytes_in_use(p->heap);
	int rc = copy_live(p, (uint32_t)seg, used);
	uint64_t sum = rc == 0 ? XXH3_64bits(p->heap_map.addr, used) : 0;
	heap_unlock_all(p->heap);
	if (rc < 0) {
		ckpt_err_prefix("checkpoint failed, pool unchanged: ");
		release_busy(p, (uint32_t)seg);
		goto out;
	}

	/* 3. durable */
	test_point("checkpoint:before-persist");
	/* CKPT_TEST_SKIP_FLUSH: a broken ordering the crash-state checker must catch */
	if (!test_flag("CKPT_TEST_SKIP_FLUSH") && fdatasync(p->fd) < 0) {
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
	punch_all(p, freed, nfreed);
	if (id)
		*id = cid;
	ret = 0;
out:
	pthread_mutex_unlock(&p->mu);
	return ret;
}

CKPT_EXPORT int
ckpt_set_keep_checkpoints(ckpt_pool *p, unsigned n)
{
	if (pool_usable(p) < 0)
		return -1;
	if (n == 0)
		return ckpt_err_set(EINVAL, "keep_checkpoints must be at least 1");
	if (n > POOL_MAX_SEGMENTS)
		return ckpt_err_set(EINVAL, "keep_checkpoints %u exceeds the %u segments "
				"a pool can have", n, POOL_MAX_SEGMENTS);
	pthread_mutex_lock(&p->mu);
	int ret = -1;
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		goto out;
	unsigned old = p->keep;
	p->keep = n;
	/* a lower setting applies at once, not at the next checkpoint */
	uint32_t freed[POOL_MAX_SEGMENTS];
	unsigned nfreed = apply_retention(p, &v, freed);
	if (nfreed == 0) {
		cat_end(&p->cat);
	} else if (cat_commit(&p->cat) < 0) {
		p->keep = old;
		goto out;
	}
	punch_all(p, freed, nfreed);
	ret = 0;
out:
	pthread_mutex_unlock(&p->mu);
	return ret;
}

CKPT_EXPORT int
ckpt_reclaim(ckpt_pool *p, unsigned *reclaimed)
{
	if (reclaimed)
		*reclaimed = 0;
	if (pool_usable(p) < 0)
		return -1;
	pthread_mutex_lock(&p->mu);
	int ret = -1;
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		goto out;
	uint32_t freed[POOL_MAX_SEGMENTS];
	unsigned n = 0;
	for (uint32_t i = 0; i < v.n; i++) {
		if (pool_entry_dead(p, &v, i)) {
			cat_free_entry(&v.e[i]);
			freed[n++] = i;
		}
	}
	if (n == 0)
		cat_end(&p->cat);
	else if (cat_commit(&p->cat) < 0)
		goto out;
	punch_all(p, freed, n);
	if (reclaimed)
		*reclaimed = n;
	ret = 0;
out:
	pthread_mutex_unlock(&p->mu);
	return ret;
}
