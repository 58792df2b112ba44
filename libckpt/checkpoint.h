/*
 * checkpoint.h -- what checkpoint.c offers the layers above it: a hook run
 * after each published checkpoint (ckpt_checkpoint itself is public).
 */
#ifndef CKPT_CHECKPOINT_H
#define CKPT_CHECKPOINT_H 1

#include "handle.h"

/*
 * Publish hooks. A layer above that acts on new checkpoints (the
 * background push, remote/trigger.c) registers a hook once; ckpt_checkpoint
 * runs every hook after the checkpoint is published and durable, with no
 * lock held, in the calling thread. A hook must be quick and must not fail
 * the checkpoint (it returns nothing; errno is kept for the caller).
 */
#define CHECKPOINT_MAX_HOOKS 4
typedef void (*checkpoint_publish_hook)(struct ckpt_pool *p, ckpt_id id);
CKPT_HIDDEN void checkpoint_on_publish(checkpoint_publish_hook hook);

/*
 * The forked path. In cow mode a checkpoint that re-bases the heap would
 * lose the stores the program's other threads make during it (step 0 in
 * checkpoint.c); such a checkpoint is taken by a forked child instead, by
 * the hook the layer that forks them registers (bgsave.c), with no lock
 * held. It returns what ckpt_checkpoint returns. Without a hook
 * ckpt_checkpoint refuses such a checkpoint.
 */
typedef int (*checkpoint_forked_hook)(struct ckpt_pool *p, const char *label, ckpt_id *id);
CKPT_HIDDEN void checkpoint_on_threads(checkpoint_forked_hook hook);

#endif
