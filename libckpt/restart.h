/*
 * restart.h -- a live segment for an opened pool, filled from a checkpoint
 * (restart.c's top comment gives the steps).
 */
#ifndef CKPT_RESTART_H
#define CKPT_RESTART_H 1

#include "pool.h"

/*
 * restart_into -- give p (from pool_open, no live segment yet) a live
 * segment whose heap equals checkpoint from (CKPT_LATEST: the newest that
 * verifies), mapped at the base and attached. On failure the pool's
 * catalog is as it was (ENOENT: no such checkpoint; EINVAL: damaged; ENOSPC).
 */
CKPT_HIDDEN int restart_into(struct ckpt_pool *p, ckpt_id from);

#endif
