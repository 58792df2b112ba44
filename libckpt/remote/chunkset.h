/*
 * chunkset.h -- a set of chunk hashes (open addressing, grows by doubling):
 * which chunks a push knows the store has, which a GC saw referenced.
 */
#ifndef CKPT_REMOTE_CHUNKSET_H
#define CKPT_REMOTE_CHUNKSET_H 1

#include <stdint.h>

#include "internal.h"
#include "remote/manifest.h"

struct chunkset {
	struct chunk_hash *slot;    /* {0,0}: empty (zero chunks are never added) */
	uint64_t cap, n;
};

/* chunkset_add -- add c (not a zero chunk); 1 if it was new, 0 if present, -1 ENOMEM */
CKPT_HIDDEN int chunkset_add(struct chunkset *s, const struct chunk_hash *c);
CKPT_HIDDEN int chunkset_has(const struct chunkset *s, const struct chunk_hash *c);
CKPT_HIDDEN void chunkset_free(struct chunkset *s);

#endif
