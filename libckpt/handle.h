/*
 * handle.h -- the open-pool handle every file of the library shares: its
 * fields and their invariants, and the two questions every entry point asks
 * of it. Data only, at the bottom of the layers: the files that act on a
 * pool (pool.c, segment.c, engine/, checkpoint.c, fork.c ...) include it.
 */
#ifndef CKPT_HANDLE_H
#define CKPT_HANDLE_H 1

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "libckpt.h"
#include "catalog.h"
#include "format.h"
#include "heap.h"
#include "map.h"

struct engine;
struct lazy;
struct seal_key;
struct seal_reader;

/*
 * ckpt_pool -- one open pool in this process.
 * Invariants: the catalog entry seg is LIVE and owned by self (or, while
 * young, FREE with our lease on it: a heap of the preload library not yet
 * published, attach.c), and heap_map
 * maps the heap at hdr.base: segment seg of fd, shared; or in cow mode
 * (eng != NULL) the image in segment eng->base_seg, privately, the entry
 * flagged in memory and naming that segment as its source. In a sealed pool
 * (seal != NULL) heap_map is private memory (map_sealed_heap), the entry is
 * flagged in memory with no source, and the segment holds none of it. In a fork child
 * that could not get a segment, detached == 1 and heap_map is a private
 * copy that no entry describes.
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
	uint32_t eng_base;           /* cow mode: the segment the heap maps (eng->base_seg) */
	struct seal_key *seal;       /* sealed pool (format 1.4): its key; else NULL */
	struct lazy *fill;           /* sealed: a lazy restart's fill under way
	                                (engine/lazy.h, restart.c), or NULL */
	struct seal_reader *fill_src;   /* the checkpoint it decrypts, or NULL */
	uint64_t fenced;             /* sealed: chunks of the heap its lazy restart
	                                fenced (damaged): a checkpoint refuses */
	enum ckpt_fork_mode fork_mode;
	unsigned keep;
	int eager_restart;           /* CKPT_RESTART=eager (config.h) */
	unsigned fill_wait_ms;       /* CKPT_REMOTE_FILL_TIMEOUT (config.h) */
	uint64_t purge_min;          /* CKPT_PURGE_MIN (config.h) */
	unsigned purge_delay_ms;     /* CKPT_PURGE_DELAY_MS (config.h) */
	struct cat_owner self;
	pthread_mutex_t mu;          /* checkpoint and close against each other and fork */
	int detached;                /* no durable segment: pool calls fail */
	char detach_why[160];        /* why the fork gave this child none */
	int base_reserved;           /* [base, base+seg_size) is ours (reserved or mapped) */
	struct ckpt_pool *next;      /* all open pools, for fork handling */
	/* fork state, valid between the prepare and parent/child handlers */
	int fork_seg;                /* segment reserved for the child, or -1 */
	void *fork_snap;             /* private snapshot when no segment (map_snapshot), or NULL */
	int fork_fd;                 /* the child's own open file description of
	                                the pool (holds the reservation's lease), or -1 */
	uint64_t fork_used;          /* high-water mark at fork */
	/* young heap (attach.c): seg is FREE in the catalog and held by our
	 * lease alone until it is published */
	_Atomic int young;           /* 1 until published */
	uint64_t young_due_ns;       /* CLOCK_MONOTONIC after which a heap growth publishes it */
	uint64_t young_after_ns;     /* how long a new heap may stay young; 0: never
	                                young (a fork child of ours included) */
	uint32_t young_parent;       /* a young fork child: its parent's segment, else CAT_NONE */
	uint64_t young_parent_life;  /* and the parent's life */
	int fork_young;              /* fork state: the reservation is a young hold */
	void (*on_grow)(struct ckpt_pool *p);   /* hooks of a higher layer (attach.c):
	                                           called as the heap grows, or NULL; */
	int (*publish)(struct ckpt_pool *p);    /* publishes a young heap (pool_published) */
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

/*
 * pool_published -- before anything that needs our catalog entry (a
 * checkpoint, a fork): a young heap is published first (attach.c's hook).
 * 0, or -1 with a message.
 */
static inline int
pool_published(struct ckpt_pool *p)
{
	if (atomic_load(&p->young) && p->publish)
		return p->publish(p);
	return 0;
}

/*
 * pool_heap_in_memory -- 1 if p's live heap is kept in the process's memory
 * (fork mode cow, or a sealed pool): its entry is flagged CAT_F_IN_MEMORY
 */
static inline int
pool_heap_in_memory(const struct ckpt_pool *p)
{
	return p->fork_mode == CKPT_FORK_COW || p->seal != NULL;
}

/* pool_kind_name -- how the live heap is persisted: map_kind_name() of its mapping */
static inline const char *
pool_kind_name(const struct ckpt_pool *p)
{
	return map_kind_name(p->heap_map.kind);
}

#endif
