/*
 * pool.h -- the open-pool handle shared by the library's files, and the
 * segment bookkeeping that open, checkpoint and fork have in common.
 */
#ifndef CKPT_POOL_H
#define CKPT_POOL_H 1

#include <pthread.h>
#include <stdint.h>

#include "libckpt.h"
#include "catalog.h"
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
	enum ckpt_fork_mode fork_mode;
	unsigned keep;
	struct cat_owner self;
	pthread_mutex_t mu;          /* checkpoint and close against each other and fork */
	int detached;                /* no durable segment: pool calls fail */
	struct ckpt_pool *next;      /* all open pools, for fork handling */
	/* fork state, valid between the prepare and parent/child handlers */
	int fork_seg;                /* segment reserved for the child, or -1 */
	int fork_memfd;              /* private snapshot when no segment, or -1 */
	int fork_fd;                 /* the child's own open file description of
	                                the pool (holds the reservation's lease), or -1 */
	uint64_t fork_used;          /* high-water mark at fork */
};

/*
 * pool_take_segment -- in an open transaction, find a segment for a new
 * LIVE/BUSY entry: a FREE one, else reclaim the oldest dead one (BUSY
 * leftovers first). Returns its index with the entry reset to FREE, and
 * *punch set to the bytes that held data (to punch after commit), or -1
 * with ENOSPC.
 */
CKPT_HIDDEN int pool_take_segment(struct ckpt_pool *p, struct cat_view *v, uint64_t *punch);

/* pool_entry_dead -- 1 if entry i is LIVE/BUSY, not ours, and its owner is gone */
CKPT_HIDDEN int pool_entry_dead(const struct ckpt_pool *p, const struct cat_view *v, uint32_t i);

/* pool_seg_off -- file offset of segment i */
CKPT_HIDDEN uint64_t pool_seg_off(const struct ckpt_pool *p, uint32_t i);

/* pool_usable -- 0 if pool calls may proceed; -1 with a message otherwise */
CKPT_HIDDEN int pool_usable(const struct ckpt_pool *p);

/* pool_kind_name -- how the live heap is persisted: map_kind_name() of its mapping */
CKPT_HIDDEN const char *pool_kind_name(const struct ckpt_pool *p);

/* pool_now_ns -- CLOCK_REALTIME in ns */
CKPT_HIDDEN uint64_t pool_now_ns(void);

/* pool_grow -- heap_grow_fn of a live segment: back it with blocks */
CKPT_HIDDEN int pool_grow(void *arg, uint64_t off, uint64_t len);

/* fork_register/fork_unregister -- track open pools for pthread_atfork (fork.c) */
CKPT_HIDDEN int fork_register(struct ckpt_pool *p);
CKPT_HIDDEN void fork_unregister(struct ckpt_pool *p);

/* fork_close_all -- ckpt_close every open pool (a background-checkpoint child before _exit) */
CKPT_HIDDEN void fork_close_all(void);

/* bgsave_forget -- drop the pending background checkpoints of a closing pool (bgsave.c) */
CKPT_HIDDEN void bgsave_forget(struct ckpt_pool *p);

/* fork_mode_resolve -- apply CKPT_FORK_MODE and check the filesystem; -1 ENOTSUP/EINVAL */
CKPT_HIDDEN int fork_mode_resolve(struct ckpt_pool *p, enum ckpt_fork_mode cfg_mode);

#endif
