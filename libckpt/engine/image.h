/*
 * image.h -- the copy-on-write engine's live heap and checkpoint images
 * (cow mode; image.c's top comment tells the design, docs/DESIGN.md the
 * reasons).
 */
#ifndef CKPT_IMAGE_H
#define CKPT_IMAGE_H 1

#include <stdint.h>

#include "libckpt.h"
#include "catalog.h"
#include "dirty.h"
#include "engine/fold.h"
#include "engine/lazy.h"

struct ckpt_pool;

/* IMAGE_RING -- checkpoints of one heap whose written pages are remembered */
#define IMAGE_RING 16u

/*
 * image_interval -- one checkpoint this heap wrote (or its base image):
 * the segment and id it was published with, and the pages written in the
 * interval that ended with it (none for the base).
 */
struct image_interval {
	ckpt_id id;
	uint32_t seg;
	uint64_t *written;      /* bitmap, one bit per 4 KiB page of the segment */
};

/*
 * image_bg -- a checkpoint a background child wrote from this heap's
 * current base: the pages written since the base as of its fork. The image
 * is the base with those pages changed, so it can be recycled by writing
 * them and the pages written since the base now (image_bg_published).
 */
struct image_bg {
	ckpt_id id;
	uint64_t *written;
};

/*
 * engine -- per-pool state of cow mode.
 * Invariants: the heap maps segment base_seg privately at the pool's base;
 * tracker reports the pages written since that mapping was made; ring[0 ..
 * n) are consecutive checkpoints of this heap, oldest first, the last one
 * being the newest this heap published (or its base image), each with the
 * pages written since the one before it. bg[0 .. nbg) are background
 * checkpoints made from the current base (epoch counts the bases: an entry
 * from another epoch is never added, and a re-base empties the list).
 * logging (format 1.9, write-protect tracking): the heap does not re-base
 * after a checkpoint; interval reports the pages written since the last
 * checkpoint this heap published (re-armed by each collect), and cur holds
 * what a checkpoint that failed collected from it (cur_kept) until one is
 * published. Without logging, each checkpoint re-bases onto its image and
 * tracker's report is the interval.
 */
struct engine {
	struct dirty tracker;   /* valid while tracking */
	int tracking;
	uint32_t base_seg;      /* the image the heap maps */
	uint64_t base_used;     /* its used bytes (0: an empty heap, no image) */
	int base_is_ckpt;       /* base_seg is a published checkpoint */
	int can_clone;          /* the pool's filesystem clones (XFS, btrfs) */
	int on_tmpfs;           /* the pool's file is on tmpfs: no page logs */
	uint64_t words;         /* bitmap words per interval */
	unsigned n;
	struct image_interval ring[IMAGE_RING];
	uint64_t *cur;          /* scratch bitmap: written since the base */
	struct image_bg bg[IMAGE_RING];
	unsigned nbg;
	uint64_t epoch;         /* image_attach count */
	uint64_t *recycling;    /* image_reserve took a background checkpoint to
	                           recycle: its pages (image_build's, then freed) */
	uint64_t *sums;         /* the sum of each page of the heap as of the last
	                           checkpoint or the base (sums.h): a checkpoint
	                           rehashes only the pages written since;
	                           [0, sums_valid) written, the rest untouched
	                           memory standing for zero pages (sums_upto) */
	uint64_t sums_valid;
	int lazy_uffd;          /* image_attach of a restart starts a lazy fill
	                           with it (image_lazy), else -1 */
	struct lazy *lazy;      /* the lazy fill under way, or NULL (lazy.h) */
	/* ckpt_persist (engine/persist.c, format 1.7) */
	ckpt_id base_id;        /* the checkpoint the heap's persisted pages are
	                           over, their tag: the one base_seg holds, or
	                           while logging the last one published; 0 for none */
	int persist_ok;         /* the catalog names this base (0 between a
	                           re-base and its publication, and after a
	                           publication that failed) */
	int own_shared;         /* a fork child may map our own segment (we
	                           forked while it was our base): persist checks
	                           the catalog before it writes there */
	uint64_t persisted;     /* pages the last ckpt_persist wrote (tests) */
	struct lazy_fetch lazy_fetch;   /* image_lazy's fetch hook until lazy_start */
	/* figures of the last checkpoint, for tests and ckpt-inspect */
	uint64_t last_written;  /* bytes written from the heap */
	int last_recycled;      /* 1 if it recycled an old checkpoint (2: a background one) */
	int last_cloned;        /* 1 if the base image was cloned */
	int last_logged;        /* 1 if it wrote a page log (pagelog.h) */
	/* format 1.9: no re-base, page logs (see the invariants above) */
	int logging;
	struct dirty interval;  /* valid while logging */
	int cur_kept;           /* cur holds a collected interval not yet published */
	uint64_t *since;        /* scratch: pages written since the base mapping */
	struct fold fold;       /* the background fold of the last logged checkpoint */
};

/*
 * image_attach -- make the heap of p a private image of segment seg (used
 * bytes; id: the checkpoint seg holds, or 0 for p's own empty segment or an
 * unpublished image) at the pool's base, and start tracking it.
 */
CKPT_HIDDEN int image_attach(struct ckpt_pool *p, uint32_t seg, uint64_t used, ckpt_id id);

/*
 * image_prepare -- before image_attach of a restart: the engine's state,
 * with the page sums of the checkpoint it maps (from its verification)
 */
CKPT_HIDDEN int image_prepare(struct ckpt_pool *p, const uint64_t *sums);

/*
 * image_lazy -- before the image_attach of a restart from checkpoint id:
 * attach lazily with uffd (lazy_open's; the engine's from here on): the
 * heap is ready at once and each chunk is verified against e->sums on
 * first access (lazy.c), which must be the image's stored page sums, or
 * with fetch (may be NULL; the engine's from here on) those the hook
 * brings with each chunk's bytes
 */
CKPT_HIDDEN void image_lazy(struct ckpt_pool *p, int uffd, const struct lazy_fetch *fetch);

/*
 * image_settle -- complete a lazy fill and wait for a fold under way
 * (before a fork or a checkpoint: afterwards the heap is an ordinary
 * private image, and no thread of the engine runs)
 */
CKPT_HIDDEN void image_settle(struct ckpt_pool *p);

/* image_detach -- stop tracking and free the engine's state (the mapping is the pool's) */
CKPT_HIDDEN void image_detach(struct ckpt_pool *p);

/* image_after_fork_child -- the child's engine: same base, no remembered checkpoints but
 * the background ones of that base */
CKPT_HIDDEN void image_after_fork_child(struct ckpt_pool *p);


/*
 * image_reserve -- checkpoint step 1 in cow mode, in transaction v: the
 * segment the new image goes into, claimed BUSY. Recycles the oldest
 * checkpoint of the lineage when its publication would drop it anyway and
 * the engine knows every page written since it (*recycled 1), else takes
 * a segment (seg_take). -1 with ENOSPC when there is none.
 */
CKPT_HIDDEN int image_reserve(struct ckpt_pool *p, struct cat_view *v, int *recycled);

/*
 * image_build -- checkpoint step 2 in cow mode, heap quiesced: write the
 * heap's bytes [0, used) into segment seg: the base image's bytes (a clone,
 * a copy, or already there when recycled) and the pages written since.
 * Not durable yet. *sum gets the image's checksum, *flags the entry flags
 * that say its kind (CAT_F_PAGE_SUMS).
 */
CKPT_HIDDEN int image_build(struct ckpt_pool *p, uint32_t seg, int recycled, uint64_t used,
		uint64_t *sum, uint32_t *flags);

/*
 * image_rebases -- whether p's next checkpoint, of a heap of used bytes,
 * may re-base the heap: it is not logging, or keep 1 stops its logging, or
 * the heap grew past its write-protect tracking, which re-bases if the
 * tracking cannot grow (image_log_now tries; what the heap grows after it
 * meets image_build, which beside the program's threads starts the
 * tracking afresh instead, or fails the checkpoint). Under p->mu.
 */
CKPT_HIDDEN int image_rebases(const struct ckpt_pool *p, uint64_t used);

/*
 * image_log_now -- instead of a re-base beside the program's threads
 * (checkpoint.c, step 0), heap of used bytes, quiesced: a logging heap
 * grown past its tracking grows it, else stops logging; a heap not logging
 * starts now, where it can log (format 1.9, keep >= 2, not tmpfs,
 * write-protect tracking), on a new heap's own segment too, counting the
 * pages written since the base as written since the last checkpoint. 1 if
 * the heap logs, so the checkpoint will not re-base. Under p->mu.
 */
CKPT_HIDDEN int image_log_now(struct ckpt_pool *p, uint64_t used);

/*
 * image_rebase -- after the image is durable and before it is published:
 * map it as the heap (the process's copies of written pages are dropped;
 * the page cache has the image) and remember the interval. On failure the
 * heap still maps the old base and is unchanged.
 */
CKPT_HIDDEN int image_rebase(struct ckpt_pool *p, uint32_t seg, uint64_t used);

/*
 * image_keep_base -- instead of image_rebase, when the engine is logging:
 * the heap keeps its mapping, and the interval goes into the ring
 */
CKPT_HIDDEN int image_keep_base(struct ckpt_pool *p, uint32_t seg);

/*
 * image_publishing -- in the publication's transaction v (its commit
 * follows the image's fdatasync): our live entry names the new image as
 * the one it maps when the heap re-based on it, and the checkpoint its
 * persisted pages are over; the checkpoint the last fold folded is no
 * longer logged
 */
CKPT_HIDDEN void image_publishing(struct ckpt_pool *p, struct cat_view *v, uint32_t seg,
		ckpt_id id);

/* image_published -- the new image got id: record it in the ring; fold its log */
CKPT_HIDDEN void image_published(struct ckpt_pool *p, uint32_t seg, ckpt_id id,
		uint64_t used, uint64_t sum);

/*
 * image_fold_finish -- before ckpt_close: wait for the fold under way and,
 * if it folded, make that durable and clear its checkpoint's flag (an
 * fdatasync and a commit). -1 (ckpt_err_set) leaves the checkpoint logged.
 */
CKPT_HIDDEN int image_fold_finish(struct ckpt_pool *p);

/*
 * Background checkpoints (bgsave.c). Before the fork the parent notes
 * image_epoch and gives the child image_bitmap_bytes of shared memory;
 * the child's checkpoint, made from the parent's base, copies the pages it
 * found written since that base there (image_copy_interval); once the
 * child reports, the parent hands them over with image_bg_published, which
 * keeps them only if the heap still maps the same base (same epoch). A
 * later checkpoint of the parent or of a background child may then recycle
 * that image when retention drops it. No engine: epoch 0, 0 bytes, no-ops.
 */
CKPT_HIDDEN uint64_t image_epoch(const struct ckpt_pool *p);
CKPT_HIDDEN size_t image_bitmap_bytes(const struct ckpt_pool *p);
CKPT_HIDDEN void image_copy_interval(const struct ckpt_pool *p, uint64_t *dst);
CKPT_HIDDEN void image_bg_published(struct ckpt_pool *p, ckpt_id id, uint64_t epoch,
		const uint64_t *written);

#endif
