/*
 * segcopy.h -- copying one segment of the pool file to another: the single
 * machinery behind restart, checkpoint and fork (copy/reflink modes).
 */
#ifndef CKPT_SEGCOPY_H
#define CKPT_SEGCOPY_H 1

#include <stdint.h>

#include "internal.h"

enum segcopy_how {
	SEGCOPY_ANY = 0,        /* clone if the filesystem can, else copy */
	SEGCOPY_CLONE,          /* FICLONERANGE only (ENOTSUP where impossible) */
	SEGCOPY_COPY,           /* copy_file_range/pread+pwrite only */
};

/*
 * segcopy -- make [dst, dst+seg_size) hold bytes [src, src+len) followed by
 * zeros (holes), not durable yet (the caller fdatasyncs). Holes in the
 * source stay holes; the copied prefix is then allocated so a later store
 * into it cannot SIGBUS on a full filesystem. *cloned tells whether the
 * filesystem cloned it. ENOSPC and other errors leave dst undefined (the
 * caller still owns it as a reserved segment).
 */
CKPT_HIDDEN int segcopy(int fd, uint64_t src, uint64_t dst, uint64_t len,
		uint64_t seg_size, enum segcopy_how how, int *cloned);

/* segcopy_punch -- return [off, off+len) of the pool file to the filesystem */
CKPT_HIDDEN int segcopy_punch(int fd, uint64_t off, uint64_t len);

#endif
