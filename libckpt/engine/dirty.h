/*
 * dirty.h -- which 4 KiB pages of a mapped range were written: the engine's
 * dirty tracking (dirty.c's top comment gives the methods and their costs).
 */
#ifndef CKPT_DIRTY_H
#define CKPT_DIRTY_H 1

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

enum dirty_method {
	DIRTY_WP_ASYNC,         /* userfaultfd WP async + PAGEMAP_SCAN: since the last collect */
	DIRTY_PRIVATE_SCAN,     /* present or swapped, not-file pages of a MAP_PRIVATE
	                           file mapping: since the mapping was made */
	DIRTY_ALL,              /* no kernel help: every page is reported */
};

/* dirty -- tracking of [addr, addr+len); invariant: addr and len page aligned */
struct dirty {
	void *addr;
	size_t len;
	enum dirty_method method;
	const char *why;        /* why this method (for messages) */
	int pagemap_fd;         /* /proc/self/pagemap, or -1 */
};

/* dirty_start -- track [addr, addr+len); private_file_mapping: 1 for a MAP_PRIVATE file mapping */
CKPT_HIDDEN int dirty_start(struct dirty *d, void *addr, size_t len, int private_file_mapping);

/*
 * dirty_collect -- call fn for every written run in [0, limit), as offsets
 * from addr, coalesced, in increasing order; rearm: start counting anew
 * (methods that can). A nonzero fn return stops and is returned.
 */
CKPT_HIDDEN int dirty_collect(struct dirty *d, uint64_t limit, int rearm,
		int (*fn)(void *arg, uint64_t off, uint64_t len), void *arg);

/* dirty_stop -- end tracking */
CKPT_HIDDEN void dirty_stop(struct dirty *d);

/* dirty_after_fork_child -- what a fork child must do to keep tracking */
CKPT_HIDDEN void dirty_after_fork_child(struct dirty *d);

/* dirty_method_name -- "wp-async", "private-scan", "all" */
CKPT_HIDDEN const char *dirty_method_name(enum dirty_method m);

#endif
