/*
 * inspect.h -- read-only access to a pool for tools: never writes a byte,
 * never takes the pool lock, never trusts the file.
 */
#ifndef CKPT_INSPECT_H
#define CKPT_INSPECT_H 1

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "format.h"

/* inspect -- an open pool; invariant: hdr passed layout_check, cat is a
 * validated snapshot of the current catalog */
struct inspect {
	int fd;
	uint64_t file_size;
	struct pool_hdr hdr;
	const void *meta;        /* read-only mapping of [0, data_off) */
	void *cat_copy;          /* cat_size bytes */
	struct cat_view cat;
	int dax;                 /* the file accepts MAP_SYNC: real pmem */
};

/* inspect_open -- open path read-only and snapshot its catalog */
CKPT_HIDDEN int inspect_open(struct inspect *in, const char *path);
CKPT_HIDDEN void inspect_close(struct inspect *in);

/* inspect_refresh -- take a new catalog snapshot */
CKPT_HIDDEN int inspect_refresh(struct inspect *in);

/*
 * inspect_map_segment -- read-only mapping of segment i, of *len bytes:
 * the segment, cut short where the file is (so a truncated file cannot
 * SIGBUS). Unmap with inspect_unmap_segment.
 */
CKPT_HIDDEN const void *inspect_map_segment(struct inspect *in, uint32_t i, size_t *len);
CKPT_HIDDEN void inspect_unmap_segment(const void *addr, size_t len);

/* inspect_state_name -- "free", "live", "dead", "checkpoint" or "busy" for segment i */
CKPT_HIDDEN const char *inspect_state_name(const struct inspect *in, uint32_t i);

#endif
