/*
 * pool.h -- the open-pool handle shared by the library's files, and the
 * pool's own steps: creating and opening the file, attaching a live
 * segment, closing. Segment bookkeeping is below it (segment.h); restart,
 * checkpoint, fork and background checkpoints are above it and tell it
 * what they need to know at close through hooks.
 */
#ifndef CKPT_POOL_H
#define CKPT_POOL_H 1

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#include "libckpt.h"
#include "catalog.h"
#include "config.h"
#include "format.h"
#include "heap.h"
#include "map.h"

/*
 * ckpt_pool -- one open pool in this process.
 * Invariants: heap_map maps segment seg of fd at hdr.base; the catalog
 * entry seg is LIVE and owned by self (or, in a fork child that could not
 * get a segment, detached == 1 and heap_map is a private copy).
 */
struct ckpt_pool {
	char *path;
	int fd;
	struct pool_hdr hdr;         /* validated copy */
	struct catalog cat;
	uint32_t seg;                /* this process's live segment */
	uint64_t life;               /* its life id (format.h, "Lives and lineages") */
	uint64_t lineage;            /* its retention group */
	ckpt_id restarted_from;      /* checkpoint ckpt_open started it from, or 0 */
	struct pmap heap_map;
	struct heap *heap;
	struct engine *eng;          /* cow mode: the heap is a private image (engine/image.h); else NULL */
	enum ckpt_fork_mode fork_mode;
	unsigned keep;
	struct cat_owner self;
	pthread_mutex_t mu;          /* checkpoint and close against each other and fork */
	int detached;                /* no durable segment: pool calls fail */
	char detach_why[160];        /* why the fork gave this child none */
	int base_reserved;           /* [base, base+seg_size) is ours (reserved or mapped) */
	struct ckpt_pool *next;      /* all open pools, for fork handling */
	/* fork state, valid between the prepare and parent/child handlers */
	int fork_seg;                /* segment reserved for the child, or -1 */
	int fork_memfd;              /* private snapshot when no segment, or -1 */
	int fork_fd;                 /* the child's own open file description of
	                                the pool (holds the reservation's lease), or -1 */
	uint64_t fork_used;          /* high-water mark at fork */
};

/* pool_usable -- 0 if pool calls may proceed; -1 with a message otherwise */
static inline int
pool_usable(const struct ckpt_pool *p)
{
	if (!p)
		return ckpt_err_set(EINVAL, "pool is NULL");
	if (p->detached)
		return ckpt_err_set(ENOSPC,
			"this process has no durable segment, so its heap is a private "
			"volatile copy: when it was forked, %s", p->detach_why[0] ?
			p->detach_why : "the pool could not give it one");
	return 0;
}

/* pool_kind_name -- how the live heap is persisted: map_kind_name() of its mapping */
static inline const char *
pool_kind_name(const struct ckpt_pool *p)
{
	return map_kind_name(p->heap_map.kind);
}

/*
 * pool_create -- create the pool file path with the settings c, and make
 * its segment 0 the caller's live segment holding an empty heap. Every
 * check that can fail runs before the file is written; on failure the file
 * is removed (it is ours: O_EXCL). The caller arms fork handling.
 */
CKPT_HIDDEN struct ckpt_pool *pool_create(const char *path, struct pool_config *c);

/*
 * pool_open -- open the pool file path, validate its header, attach its
 * catalog, settle c against what the pool records (config_from_pool,
 * config_fork_mode) and reserve its base address range. The handle has no
 * live segment yet: restart_into() gives it one. Undo with pool_discard.
 */
CKPT_HIDDEN struct ckpt_pool *pool_open(const char *path, struct pool_config *c);

/*
 * pool_attach_segment -- map the live heap at the base (over our
 * reservation) and attach it; fresh: format an empty heap first. The heap
 * is segment p->seg, shared; in cow mode it is a private image of segment
 * image (image_used bytes, checkpoint image_id, or 0 for an empty image).
 */
CKPT_HIDDEN int pool_attach_segment(struct ckpt_pool *p, int fresh, uint32_t image,
		uint64_t image_used, ckpt_id image_id);

/*
 * pool_discard -- undo a pool_open or pool_create that did not finish: the
 * base reservation, the mapping, the handle. Keeps errno.
 */
CKPT_HIDDEN void pool_discard(struct ckpt_pool *p);

/* pool_grow -- heap_grow_fn of a live segment: back it with blocks */
CKPT_HIDDEN int pool_grow(void *arg, uint64_t off, uint64_t len);

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
