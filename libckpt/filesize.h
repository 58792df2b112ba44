/*
 * filesize.h -- the pool file's apparent size follows the segments in use
 * (format 1.3, POOL_F_SIZE_FOLLOWS; see filesize.c). Part of the catalog
 * layer: cat_commit calls these with the catalog lock held.
 */
#ifndef CKPT_FILESIZE_H
#define CKPT_FILESIZE_H 1

#include <stdint.h>

#include "catalog.h"

/*
 * fsize_need -- bytes the file must have for catalog v: up to the end of
 * the highest segment that is not FREE, or that c's keep hook says some
 * heap still maps; data_off when there is none
 */
CKPT_HIDDEN uint64_t fsize_need(struct catalog *c, const struct cat_view *v);

/* fsize_named -- bytes up to the end of the highest segment v names as not FREE */
CKPT_HIDDEN uint64_t fsize_named(const struct pool_hdr *hdr, const struct cat_view *v);

/*
 * fsize_cover -- before a commit publishes v over the published catalog
 * old: extend the file to cover v, and make its size durable (fdatasync)
 * so the published catalog never names a segment past the end of the
 * file; synced too when v names a higher segment than old, the file
 * already long enough (a young heap's unsynced extension). No-op for a
 * pool of format 1.2 or older (full size), or when v needs no more than
 * the file and old. In a pool of format 1.8 the extension adds headroom,
 * the sync is made only when v names a segment past the durable size old
 * records, and v gets the durable size it publishes (cat_hdr.durable_size,
 * stamped). Crash point catalog:after-grow (after a sync).
 */
CKPT_HIDDEN int fsize_cover(struct catalog *c, struct cat_view *v,
		const struct cat_view *old);

/*
 * fsize_trim -- after v was published, the lock still held: cut the file
 * back to what v needs (freed top segments); in a pool of format 1.8 only
 * a file longer than twice the headroom, to need plus headroom and never
 * below the durable size v records. A failure changes nothing
 * (the file stays longer than needed) and is not reported. Crash point
 * catalog:before-trim.
 */
CKPT_HIDDEN void fsize_trim(struct catalog *c, const struct cat_view *v);

/*
 * fsize_extend_to -- the size a file that must be need bytes is extended to:
 * need plus headroom in a pool of format 1.8, else need. For a young heap
 * that takes a segment past the end (segment.c), under the catalog lock
 */
CKPT_HIDDEN uint64_t fsize_extend_to(const struct catalog *c, uint64_t need);

/* fsize_covers -- 1 if a file of size bytes holds all of segment i of hdr */
CKPT_HIDDEN int fsize_covers(const struct pool_hdr *hdr, uint64_t size, uint32_t i);

#endif
