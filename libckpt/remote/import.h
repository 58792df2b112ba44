/*
 * import.h -- adding a checkpoint that arrives from elsewhere (a remote
 * store, or another pool re-sealed by ckpt_reseal) to a pool: the
 * pool-side half of a pull, below the store code.
 *
 * The steps mirror a local checkpoint's (checkpoint.c): reserve a segment
 * as BUSY and ours, write the image's bytes into it, make them durable,
 * then publish it as a checkpoint with one catalog commit. A crash before
 * the commit leaves a dead BUSY entry (reclaimed as garbage) and the
 * catalog as it was.
 */
#ifndef CKPT_REMOTE_IMPORT_H
#define CKPT_REMOTE_IMPORT_H 1

#include <stdint.h>

#include "format.h"
#include "internal.h"

/* import_desc -- what the new checkpoint and, if it is created, the pool are */
struct import_desc {
	uint8_t uuid[16];
	uint64_t base, heap_size;
	uint32_t max_segments;
	uint32_t flags;             /* CAT_F_PAGE_SUMS | CAT_F_ORIGIN, or CAT_F_SEALED
	                               | CAT_F_ORIGIN for a sealed image */
	uint32_t keep;              /* keep_checkpoints of a created pool; 0: default */
	const char *key_file;       /* the pool's key: it is (created) sealed, and
	                               the caller writes the sealed image itself
	                               (seal_write_image into im->p); NULL: unsealed,
	                               or sealed without the key (keyless) */
	int keyless;                /* with CAT_F_SEALED and no key_file: the image is
	                               ciphertext sealed elsewhere (a pull): the pool is
	                               created and opened without the key, and must be
	                               sealed with the key whose id is key_id; the
	                               caller writes the seal record (remote/sealed.h) */
	uint8_t key_id[16];
	uint64_t ckpt_id, used, in_use, time_ns, life, lineage, restarted_from, checksum;
	char label[CAT_LABEL_MAX];
	int lazy;                   /* a lazy pull: the pool is created with
	                               POOL_F_REMOTE_FILL, an existing one must have it,
	                               and the segment is reserved FILLING (the side
	                               files, remote/filling.h, must exist already) */
};

struct ckpt_pool;

/* import -- an import under way */
struct import {
	struct ckpt_pool *p;
	uint32_t seg;
	int created;                /* the pool file is ours: removed on abort */
	int present;                /* the pool holds this checkpoint already */
	int sums_stored;            /* import_sums wrote the page-sum slot */
	int filling;                /* the segment is published FILLING: kept on abort */
};

/*
 * import_begin -- open the pool at path (creating it with d's uuid, base,
 * heap size and segment count when it does not exist) and reserve a
 * segment. An existing pool must have d's uuid, base and heap size (EINVAL
 * otherwise); if it holds checkpoint d->ckpt_id already with d's checksum,
 * im->present is set and nothing is reserved; with another checksum EEXIST.
 * A lazy import (d->lazy) into a new unsealed pool creates it with the
 * FILLING entry in its first catalog, in one durable step
 * (pool_create_first), and leaves it closed: im->p is NULL, im->seg 0.
 */
CKPT_HIDDEN int import_begin(struct import *im, const char *path, const struct import_desc *d);

/* import_write -- len bytes of the image at offset off */
CKPT_HIDDEN int import_write(struct import *im, uint64_t off, const void *buf, size_t len);

/*
 * import_sums -- store the image's npages page sums (used / 4096 of them,
 * whose XXH3-64 is the checkpoint's paged checksum) in the segment's
 * page-sum slot, so a restart can verify each page on first access (lazy
 * restart, format 1.2). Does nothing (0) when the pool has no slots or
 * the checkpoint's checksum is not paged: it then restarts eagerly.
 */
CKPT_HIDDEN int import_sums(struct import *im, const struct import_desc *d,
		const uint64_t *sums, uint64_t npages);

/* import_commit -- make the image durable and publish it; ends the import */
CKPT_HIDDEN int import_commit(struct import *im, const struct import_desc *d);

/*
 * import_resume -- the filler's import: open the pool at path and find
 * checkpoint id (*out: its entry); im->present if it is published already
 */
CKPT_HIDDEN int import_resume(struct import *im, const char *path, uint64_t id,
		struct cat_entry *out);

/*
 * import_fill_commit -- make the filled image durable and publish it:
 * FILLING becomes CKPT (with its stored page sums) in one commit; ends the
 * import
 */
CKPT_HIDDEN int import_fill_commit(struct import *im, uint64_t id);

/* import_abort -- give the reservation back (remove a pool we created); keeps errno */
CKPT_HIDDEN void import_abort(struct import *im);

#endif
