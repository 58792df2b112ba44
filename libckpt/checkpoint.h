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

#endif
