/*
 * pool.h -- the pool's own steps: creating and opening the file, attaching
 * a live segment, closing. The handle they fill is handle.h's; segment
 * bookkeeping and the engine's heap images are below; restart, checkpoint,
 * fork and background checkpoints are above and learn of a close through
 * hooks.
 */
#ifndef CKPT_POOL_H
#define CKPT_POOL_H 1

#include "config.h"
#include "handle.h"

/*
 * pool_create -- create the pool file path with the settings c, and make
 * its segment 0 the caller's live segment holding an empty heap. The file
 * is written nameless (newfile.c) and linked to path only when complete, so
 * a crash never leaves a half-made pool there; on failure nothing remains.
 * Crash points create:mid-write, create:before-publish,
 * create:after-publish. The caller arms fork handling.
 */
CKPT_HIDDEN struct ckpt_pool *pool_create(const char *path, struct pool_config *c);

/*
 * pool_create_keyless -- create the pool file path as pool_create does,
 * sealed with the key whose id is c->key_id (16 bytes) without the key,
 * and with no heap: the file holds its header and empty catalog only (a
 * sealed checkpoint pulled from a remote store goes in next). 0, or -1
 * with nothing left at path.
 */
CKPT_HIDDEN int pool_create_keyless(const char *path, struct pool_config *c);

/* pool_first -- what pool_create_first hands its first(): the creator, the caller's arg */
struct pool_first {
	struct cat_owner self;      /* the creating process, for the entries' owner */
	void *arg;
};

/*
 * pool_create_first -- create the pool file path, unsealed, at c->base,
 * with no heap and with the first catalog first(pf) fills (called with pf:
 * a lazy pull's FILLING entry, format 1.6), so the pool and that entry are
 * made durable together: one fdatasync of the file (its size covering the
 * segments the catalog names), then the name and one fsync of the
 * directory. A crash leaves no pool at path or the whole one. Crash
 * points create:mid-write, create:before-publish, create:after-publish.
 * 0, or -1 with nothing left at path.
 */
CKPT_HIDDEN int pool_create_first(const char *path, struct pool_config *c, cat_first_fn first,
		struct pool_first *pf);

/*
 * pool_open -- open the pool file path, validate its header, attach its
 * catalog, settle c against what the pool records (config_from_pool,
 * config_fork_mode) and reserve its base address range. The handle has no
 * live segment yet: restart_into() gives it one. Undo with pool_discard.
 */
CKPT_HIDDEN struct ckpt_pool *pool_open(const char *path, struct pool_config *c);

/*
 * pool_open_path -- pool_open for a caller's path and ckpt_config (may be
 * NULL): an empty path is EINVAL, and the configuration is resolved for
 * an open (config_resolve) first
 */
CKPT_HIDDEN struct ckpt_pool *pool_open_path(const char *path, const struct ckpt_config *cfg);

/*
 * pool_new_heap_entry -- inside a catalog transaction: segment seg (FREE,
 * its lease ours) becomes our LIVE entry, an empty heap of a new life and
 * lineage (in memory in cow mode). Attach it fresh after the commit.
 */
CKPT_HIDDEN void pool_new_heap_entry(struct ckpt_pool *p, struct cat_view *v, uint32_t seg);

/* what pool_attach_segment finds in the segment */
enum pool_attach_how {
	POOL_ATTACH_HEAP = 0,           /* a heap: validate and adopt it */
	POOL_ATTACH_FORMAT = 1,         /* anything: format an empty heap */
	POOL_ATTACH_FORMAT_ZEROED = 2,  /* zeroes (a new or punched segment):
	                                   format an empty heap writing only
	                                   its nonzero bytes */
};

/*
 * pool_attach_segment -- map the live heap at the base (over our
 * reservation) and attach it, formatting an empty heap first as how says.
 * The heap
 * is segment p->seg, shared; in cow mode it is a private image of segment
 * image (image_used bytes, checkpoint image_id, or 0 for an empty image).
 */
CKPT_HIDDEN int pool_attach_segment(struct ckpt_pool *p, enum pool_attach_how how, uint32_t image,
		uint64_t image_used, ckpt_id image_id);

/*
 * pool_fill_settle -- a sealed pool's lazy restart fill under way is
 * completed (before a fork, whose child would not inherit it, and before
 * a checkpoint, which reads the whole heap); the chunks it fenced are
 * added to p->fenced. pool_fill_stop -- stopped at once (close: the heap
 * is unmapped next).
 */
CKPT_HIDDEN void pool_fill_settle(struct ckpt_pool *p);
CKPT_HIDDEN void pool_fill_stop(struct ckpt_pool *p);

/*
 * pool_discard -- undo a pool_open or pool_create that did not finish: the
 * base reservation, the mapping, the handle. Keeps errno.
 */
CKPT_HIDDEN void pool_discard(struct ckpt_pool *p);

/* pool_grow -- heap_grow_fn of a live segment: back it with blocks */
CKPT_HIDDEN int pool_grow(void *arg, uint64_t off, uint64_t len);

/*
 * pool_purge -- heap_purge_fn of a live heap: give the memory behind
 * [addr, addr + len) back (map_purge: 0), or keep it while a lazy fill
 * runs (1: a dropped page would fault to the fill again)
 */
CKPT_HIDDEN int pool_purge(void *arg, void *addr, uint64_t off, uint64_t len);

/*
 * Close hooks. A layer above the pool that keeps per-pool state (the fork
 * registry, background checkpoints) registers a hook once; ckpt_close runs
 * every hook, in registration order, before it releases the pool, with no
 * lock held. At most POOL_MAX_HOOKS; registering the same hook twice is a
 * no-op.
 */
#define POOL_MAX_HOOKS 4
typedef void (*pool_close_hook)(struct ckpt_pool *p);
CKPT_HIDDEN void pool_on_close(pool_close_hook hook);

#endif
