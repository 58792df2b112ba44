/*
 * persist.h -- ckpt_persist in cow mode (persist.c; format 1.7).
 */
#ifndef CKPT_PERSIST_H
#define CKPT_PERSIST_H 1

#include <stddef.h>

#include "libckpt.h"
#include "internal.h"

struct ckpt_pool;

/*
 * image_persist -- make the pages of [addr, addr + len) durable in the
 * live entry's own segment, tagged with the heap's base (persist.c): 0
 * once they are (fdatasync), or -1 with a message (EINVAL: outside the
 * heap; ENOTSUP: a pool older than 1.7; EBUSY: a fork child maps our
 * segment; EIO: the heap's base is not the published one; a write error)
 */
CKPT_HIDDEN int image_persist(struct ckpt_pool *p, const void *addr, size_t len);

/* image_persist_before_fork -- in the fork prepare handler (pool mutex held) */
CKPT_HIDDEN void image_persist_before_fork(struct ckpt_pool *p);
/* image_persist_after_fork_child -- in the child, before it claims its segment */
CKPT_HIDDEN void image_persist_after_fork_child(struct ckpt_pool *p);

#endif
