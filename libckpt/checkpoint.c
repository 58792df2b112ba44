/*
 * checkpoint.c -- freezing the live heap into an immutable checkpoint
 * segment, and retention of old checkpoints.
 *
 * Steps (each a named crash point, see testhook.h; step 0 is cow mode's):
 *   0. in cow mode, a checkpoint that will re-base the heap (engine/image.c:
 *      a heap that is not logging, keep 1, or a logging heap grown past a
 *      tracking that cannot grow) must not run beside stores
 *      from the program's other threads: the heap is quiesced for
 *      allocator calls only, and a page stored into between the image's
 *      copy and the re-base would revert to the copy. When the process
 *      has threads besides the caller and libckpt's own (threads.c), a
 *      heap that can log (format 1.9) starts logging now instead, on a new
 *      heap's own segment too (image_log_now), and does not re-base; else
 *      the checkpoint is taken by a forked child, as a background one is,
 *      and waited for (checkpoint_on_threads: bgsave.c's hook), and the
 *      heap keeps its mapping;
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
 * In a sealed pool (seal/chunks.c) step 1 also gives the checkpoint its id
 * (the encryption binds it), and step 2 encrypts the heap into the segment
 * chunk by chunk: no plaintext reaches the file.
 *
 * In cow mode the engine (engine/image.c) takes steps 1 and 2: step 1 may
 * recycle the checkpoint that retention drops at this publication, step 2
 * writes the base image's bytes and the pages written since; 3 happens
 * inside 4's commit (cat_commit_after): the publication's catalog copy is
 * written, one fdatasync makes the image and that copy durable, the heap is
 * re-based on the new image, and only then the commit word, which moves its
 * pin there. One device flush fewer than fdatasync, then a commit of two.
 *
 * After a checkpoint is published, the hooks layers above registered
 * (checkpoint_on_publish: the background push of remote/trigger.c) run,
 * with no lock held; they cannot change the checkpoint's outcome.
 *
 * Also here: retention set on an open pool (ckpt_set_keep_checkpoints) and
 * the explicit reclaim of dead segments (ckpt_reclaim).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "owner.h"
#include "checkpoint.h"
#include "pool.h"
#include "segcopy.h"
#include "segment.h"
#include "testhook.h"
#include "threads.h"
#include "engine/image.h"
#include "seal/chunks.h"

static pthread_mutex_t publish_hooks_mu = PTHREAD_MUTEX_INITIALIZER;
static checkpoint_publish_hook publish_hooks[CHECKPOINT_MAX_HOOKS];
static unsigned npublish_hooks;

void
checkpoint_on_publish(checkpoint_publish_hook hook)
{
	pthread_mutex_lock(&publish_hooks_mu);
	unsigned i = 0;
	while (i < npublish_hooks && publish_hooks[i] != hook)
		i++;
	if (i == npublish_hooks && npublish_hooks < CHECKPOINT_MAX_HOOKS)
		publish_hooks[npublish_hooks++] = hook;
	pthread_mutex_unlock(&publish_hooks_mu);
}

static _Atomic checkpoint_forked_hook forked_hook;

void
checkpoint_on_threads(checkpoint_forked_hook hook)
{
	atomic_store(&forked_hook, hook);
}

/* run_publish_hooks -- tell the layers above that checkpoint id was published */
static void
run_publish_hooks(struct ckpt_pool *p, ckpt_id id)
{
	pthread_mutex_lock(&publish_hooks_mu);
	unsigned n = npublish_hooks;
	checkpoint_publish_hook h[CHECKPOINT_MAX_HOOKS];
	memcpy(h, publish_hooks, sizeof(h));
	pthread_mutex_unlock(&publish_hooks_mu);
	int e = errno;
	for (unsigned i = 0; i < n; i++)
		h[i](p, id);
	errno = e;
}

/*
 * apply_retention -- free the checkpoints of this heap's lineage beyond the
 * newest keep; the freed segments' indices go to out (count returned). The
 * lineage (format.h) is this live heap and the earlier lives it was
 * restarted from, so a service that restarts keeps one window of
 * checkpoints; a fork child's lineage is its own. A checkpoint that a heap
 * in memory maps (seg_pinned) stays until a later pass finds it free.
 */
static unsigned
apply_retention(struct ckpt_pool *p, struct cat_view *v, uint32_t *out)
{
	unsigned n = 0, newer;
	for (uint32_t i = 0; i < v->n; i++) {
		struct cat_entry *e = &v->e[i];
		if (e->state != CAT_CKPT || e->lineage != p->lineage)
			continue;
		newer = 0;
		for (uint32_t j = 0; j < v->n; j++)
			if (v->e[j].state == CAT_CKPT && v->e[j].lineage == p->lineage &&
			    v->e[j].ckpt_id > e->ckpt_id)
				newer++;
		if (newer >= p->keep && !seg_pinned(p, v, i))
			out[n++] = i;
	}
	for (unsigned k = 0; k < n; k++)
		cat_free_entry(&v->e[out[k]]);
	return n;
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
	uint64_t src = seg_off(p, p->seg), dst = seg_off(p, seg);
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

/*
 * build -- step 2's copy and checksum: the engine's image, a sealed image
 * (checkpoint id: its id, given at the reservation), or a copy of the live
 * segment
 */
static int
build(struct ckpt_pool *p, uint32_t seg, int recycled, uint64_t used, ckpt_id id,
		uint64_t *sum, uint32_t *flags)
{
	if (p->seal) {
		*flags = CAT_F_SEALED;
		pool_fill_settle(p);    /* a lazy restart's holes: filled first */
		if (p->fenced)
			return ckpt_err_set(EIO, "the heap has %llu chunk(s) its restart fenced "
					"(their checkpoint was damaged; touching them raises "
					"SIGBUS): it cannot be checkpointed",
					(unsigned long long)p->fenced);
		return seal_write_image(p->fd, &p->hdr, seg, p->heap_map.addr, used, id,
				p->seal, sum);
	}
	if (p->eng)
		return image_build(p, seg, recycled, used, sum, flags);
	if (copy_live(p, seg, used) < 0)
		return -1;
	*sum = XXH3_64bits(p->heap_map.addr, used);
	*flags = 0;
	return 0;
}

/*
 * reserve -- step 1: a segment for the checkpoint, BUSY and ours; in cow
 * mode the engine may recycle an old checkpoint (*recycled); in a sealed
 * pool the entry gets the checkpoint's id now (*id; else 0)
 */
static int
reserve(struct ckpt_pool *p, int *recycled, ckpt_id *id)
{
	struct cat_view v;
	uint64_t punch;         /* the copy punches the whole segment anyway */
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	*recycled = 0;
	int seg = p->eng ? image_reserve(p, &v, recycled) : seg_take(p, &v, &punch);
	if (seg < 0) {
		cat_end(&p->cat);
		return -1;
	}
	v.e[seg].state = CAT_BUSY;
	v.e[seg].owner = p->self;
	v.e[seg].source = p->seg;
	v.e[seg].life = p->life;
	v.e[seg].lineage = p->lineage;
	v.e[seg].time_ns = now_ns();
	*id = 0;
	if (p->seal)
		v.e[seg].ckpt_id = *id = v.h->next_ckpt_id++;
	return cat_commit(&p->cat) < 0 ? -1 : seg;
}

/* image_durable -- what durable_then_rebase needs: the image, and whether it re-based */
struct image_durable {
	struct ckpt_pool *p;
	uint32_t seg;
	uint64_t used;
	int rebased;            /* the heap maps the new image */
};

/* make_durable -- step 3: fdatasync the pool file (the image; in cow mode the catalog copy too) */
static int
make_durable(struct ckpt_pool *p)
{
	test_point("checkpoint:before-persist");
	/* CKPT_TEST_SKIP_FLUSH: a broken ordering the crash-state checker must catch */
	if (!test_flag("CKPT_TEST_SKIP_FLUSH") && fdatasync(p->fd) < 0)
		return ckpt_err_set(errno, "checkpoint failed, pool unchanged: fdatasync: %s",
				strerror(errno));
	test_point("checkpoint:after-persist");
	return 0;
}

/*
 * durable_then_rebase -- cat_commit_after's sync in cow mode: the image and
 * the publication's catalog copy become durable in one fdatasync, then the
 * heap re-bases on the image; the commit word follows
 */
static int
durable_then_rebase(void *arg)
{
	struct image_durable *d = arg;
	test_step("catalog-copy");
	if (make_durable(d->p) < 0)
		return -1;
	test_step("fdatasync");
	if (d->p->eng->logging) {
		/* the heap keeps its mapping (engine/image.c) */
		if (image_keep_base(d->p, d->seg) < 0)
			return -1;
	} else {
		if (image_rebase(d->p, d->seg, d->used) < 0)
			return -1;
		d->rebased = 1;
	}
	test_step("rebase");
	test_point("checkpoint:before-publish");
	return 0;
}

/*
 * publish -- step 4: BUSY becomes the checkpoint, retention applies, and
 * in cow mode our live entry names the new image as the one it maps (the
 * pin moves with the publication). Freed segments go to freed. In cow mode
 * (d) step 3 and the re-base happen inside the commit: its new catalog
 * copy is written first, so the image's fdatasync makes it durable too, and
 * the commit word follows the re-base.
 */
static int
publish(struct ckpt_pool *p, uint32_t seg, const char *label, uint64_t used,
		uint64_t in_use, uint64_t sum, uint32_t flags, ckpt_id *cid, uint32_t *freed,
		unsigned *nfreed, struct image_durable *d)
{
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	struct cat_entry *e = &v.e[seg];
	if (e->state != CAT_BUSY || !owner_equal(&e->owner, &p->self) || e->life != p->life ||
	    (p->seal && e->ckpt_id == 0)) {
		/* the reservation was lost (a damaged catalog copy fell back
		 * past it): publish nothing over what is there now */
		cat_end(&p->cat);
		return ckpt_err_set(EIO, "segment %u is no longer reserved for this "
				"checkpoint", seg);
	}
	/* a sealed image was encrypted for the id its reservation got */
	*cid = p->seal ? e->ckpt_id : v.h->next_ckpt_id++;
	e->state = CAT_CKPT;
	e->flags = flags;
	e->ckpt_id = *cid;
	e->used = used;
	e->in_use = in_use;
	e->checksum = sum;
	e->time_ns = now_ns();
	memset(e->label, 0, sizeof(e->label));
	if (label)
		memcpy(e->label, label, strlen(label));
	v.e[p->seg].used = used;
	if (p->eng)
		image_publishing(p, &v, seg, *cid);
	if (d) {
		/* the word follows the re-base: our old base is not ours to
		 * pin any more in the catalog it publishes (seg_pinned) */
		uint32_t was = p->eng_base;
		if (!p->eng->logging)
			p->eng_base = seg;
		*nfreed = apply_retention(p, &v, freed);
		int rc = cat_commit_after(&p->cat, durable_then_rebase, d);
		if (!d->rebased)
			p->eng_base = was;
		return rc;
	}
	*nfreed = apply_retention(p, &v, freed);
	test_point("checkpoint:before-publish");
	return cat_commit(&p->cat);
}

/* log_now -- step 0: image_log_now with the heap quiesced (its used bytes
 * cannot grow past the private scan), 1 if the heap now logs */
static int
log_now(struct ckpt_pool *p)
{
	if (p->keep < 2)
		return 0;
	heap_lock_all(p->heap);
	int r = image_log_now(p, heap_high_water(p->heap));
	heap_unlock_all(p->heap);
	return r;
}

CKPT_EXPORT int
ckpt_checkpoint(ckpt_pool *p, const char *label, ckpt_id *id)
{
	if (pool_usable(p) < 0 || pool_published(p) < 0)
		return -1;
	if (label && strlen(label) >= CAT_LABEL_MAX)
		return ckpt_err_set(EINVAL, "checkpoint label longer than %d bytes",
				CAT_LABEL_MAX - 1);
	pthread_mutex_lock(&p->mu);
	int ret = -1, recycled, quiesced = 0, rebased = 0;
	ckpt_id cid_out = 0, sealed_id;

	/* 0. cow mode: beside the program's threads, a heap that would
	 * re-base logs from now on where it can, else goes forked */
	if (p->eng && image_rebases(p, heap_high_water(p->heap)) &&
	    !test_flag("CKPT_TEST_SKIP_STEP0") && threads_of_program() != 0 && !log_now(p)) {
		pthread_mutex_unlock(&p->mu);
		checkpoint_forked_hook hook = atomic_load(&forked_hook);
		if (!hook)
			return ckpt_err_set(ENOTSUP, "checkpoint refused: in fork mode cow it "
					"would re-base the heap while other threads run, and "
					"no forked path is armed");
		return hook(p, label, id);
	}

	/* 1. reserve */
	test_point("checkpoint:before-reserve");
	test_step(NULL);
	int seg = reserve(p, &recycled, &sealed_id);
	if (seg < 0)
		goto out;
	test_step("reserve");

	/* 2. copy and checksum a quiescent heap (in cow mode it stays
	 * quiesced until the re-base: engine/image.c) */
	test_point("checkpoint:before-copy");
	heap_lock_all(p->heap);
	quiesced = 1;
	uint64_t used = heap_high_water(p->heap);
	uint64_t in_use = heap_bytes_in_use(p->heap);
	uint64_t sum = 0;
	uint32_t flags = 0;
	int rc = build(p, (uint32_t)seg, recycled, used, sealed_id, &sum, &flags);
	if (rc < 0 && errno == ENOSPC) {
		/* the filesystem is full: dead heaps go before a live process
		 * is refused its checkpoint */
		if (seg_space_freed(p))
			rc = build(p, (uint32_t)seg, recycled, used, sealed_id, &sum, &flags);
	}
	if (!p->eng) {
		heap_unlock_all(p->heap);
		quiesced = 0;
	}
	test_step("build");
	if (rc < 0) {
		ckpt_err_prefix(recycled ? "checkpoint failed, the oldest checkpoint of the "
				"lineage (recycled for it) given up: " :
				"checkpoint failed, pool unchanged: ");
		goto release;
	}

	/* 3. durable (in cow mode inside 4, then the re-base) */
	struct image_durable d = { .p = p, .seg = (uint32_t)seg, .used = used };
	if (!p->eng && make_durable(p) < 0)
		goto release;
	if (!p->eng)
		test_step("fdatasync");
	/* 4. publish */
	ckpt_id cid = 0;
	uint32_t freed[POOL_MAX_SEGMENTS];
	unsigned nfreed = 0;
	rc = publish(p, (uint32_t)seg, label, used, in_use, sum, flags, &cid, freed, &nfreed,
			p->eng ? &d : NULL);
	rebased = d.rebased;
	if (rc < 0)
		goto release;
	test_step("publish");
	test_point("checkpoint:after-publish");
	if (p->eng)
		image_published(p, (uint32_t)seg, cid, used, sum);

	/* 5. give back the space of what retention dropped */
	seg_punch(p, freed, nfreed);
	test_step("punch");
	cid_out = cid;
	if (id)
		*id = cid;
	ret = 0;
	goto out;
release:
	/*
	 * A heap re-based on the image keeps it: the entry stays BUSY and
	 * ours (until we exit) when the commit failed; when the reservation
	 * itself was lost, a pin lock keeps others from taking the segment
	 * (seg_pinned), and this process never takes its own base.
	 */
	if (!rebased)
		seg_release(p, (uint32_t)seg, SEG_OURS);
	else
		cat_pin_take(p->fd, (uint32_t)seg);
out:
	if (quiesced)
		heap_unlock_all(p->heap);
	pthread_mutex_unlock(&p->mu);
	if (ret == 0)
		run_publish_hooks(p, cid_out);
	return ret;
}

CKPT_EXPORT int
ckpt_set_keep_checkpoints(ckpt_pool *p, unsigned n)
{
	if (pool_usable(p) < 0)
		return -1;
	if (n == 0)
		return ckpt_err_set(EINVAL, "keep_checkpoints must be at least 1");
	if (config_check_keep(n) < 0)
		return -1;
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
	seg_punch(p, freed, nfreed);
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
	int ret = seg_reclaim(p, reclaimed);
	pthread_mutex_unlock(&p->mu);
	return ret;
}
