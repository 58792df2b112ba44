/*
 * segcopy.h -- copying one segment of the pool file to another: the single
 * machinery behind restart, checkpoint and fork (copy/reflink modes).
 * segcopy.c's top comment gives the order of the copy paths.
 */
#ifndef CKPT_SEGCOPY_H
#define CKPT_SEGCOPY_H 1

#include <stdint.h>

#include "internal.h"
#include "map.h"

enum segcopy_how {
	SEGCOPY_ANY = 0,        /* clone if the filesystem can, else copy */
	SEGCOPY_CLONE,          /* FICLONERANGE only (ENOTSUP where impossible) */
	SEGCOPY_COPY,           /* copy_file_range, pmem memcpy or pread/pwrite */
	SEGCOPY_UNSHARED,       /* a copy that shares no blocks with the source:
	                           pread/pwrite (copy_file_range clones where the
	                           filesystem can), for an image that will be
	                           rewritten in place */
};

/* kind value: the caller has no mapping of the pool; segcopy maps to find out */
#define SEGCOPY_KIND_PROBE (-1)

/*
 * segcopy_opts -- what the caller knows about the copy (NULL: the defaults,
 * { SEGCOPY_KIND_PROBE, NULL }).
 *  kind       how the pool file maps (enum map_kind: its heap's pmap.kind).
 *             MAP_KIND_PMEM and MAP_KIND_FORCED allow the pmem memcpy path
 *             where copy_file_range cannot be used; MAP_KIND_EMULATED never
 *             takes it (a cache flush makes nothing durable on an ordinary
 *             file). SEGCOPY_KIND_PROBE: map the ranges and see (map_file).
 *  mid_point  a crash point name (testhook.h) fired after the first chunk
 *             of data when more of the range follows; NULL for none.
 */
struct segcopy_opts {
	int kind;
	const char *mid_point;
	int keep_rest;          /* dst past len need not read as zeroes: no
	                           punch first (a young fork child's heap, which
	                           reads nothing past its high-water mark; a
	                           punch writes the range's dirty pages back) */
};

/*
 * segcopy_stats -- bytes each copy path has moved in this process, for
 * tests to see which path a copy took (not an interface: counters only).
 */
struct segcopy_stats {
	uint64_t cloned;        /* FICLONERANGE (the clone's length) */
	uint64_t range;         /* copy_file_range */
	uint64_t pmem;          /* pmem_memcpy_nodrain through mappings */
	uint64_t plain;         /* pread/pwrite */
};
CKPT_HIDDEN extern struct segcopy_stats segcopy_stats;

/*
 * segcopy -- make [dst, dst+seg_size) hold bytes [src, src+len) followed by
 * zeros (holes), not durable yet (the caller fdatasyncs; on real pmem the
 * memcpy path is durable already). Holes in the source stay holes; the
 * copied prefix is then allocated so a later store into it cannot SIGBUS on
 * a full filesystem. *cloned tells whether the filesystem cloned it. ENOSPC
 * and other errors leave dst undefined (the caller still owns it as a
 * reserved segment). o says what the caller knows (NULL: the defaults).
 */
CKPT_HIDDEN int segcopy(int fd, uint64_t src, uint64_t dst, uint64_t len,
		uint64_t seg_size, enum segcopy_how how, const struct segcopy_opts *o,
		int *cloned);

/* segcopy_can_clone -- 1 if fd's filesystem implements FICLONERANGE (reflink) */
CKPT_HIDDEN int segcopy_can_clone(int fd);

/*
 * segcopy_small_cow -- on a filesystem that clones (XFS), ask that a write
 * into shared blocks copy only the blocks written (copy-on-write extent
 * size hint of one page) rather than the default 32-block extents: the cow
 * engine writes scattered pages into cloned images. Best effort.
 */
CKPT_HIDDEN void segcopy_small_cow(int fd);

/* segcopy_punch -- return [off, off+len) of the pool file to the filesystem */
CKPT_HIDDEN int segcopy_punch(int fd, uint64_t off, uint64_t len);

#endif
