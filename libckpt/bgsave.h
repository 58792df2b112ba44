/*
 * bgsave.h -- what bgsave.c offers the layers above it (its public calls,
 * ckpt_checkpoint_background and ckpt_checkpoint_wait, are in libckpt.h).
 */
#ifndef CKPT_BGSAVE_H
#define CKPT_BGSAVE_H 1

#include "internal.h"

/*
 * bgsave_arm -- once per process, before its first pool is used: register
 * the forked path of ckpt_checkpoint (checkpoint.h), a checkpoint that
 * must not re-base the heap beside the program's threads taken by a child
 * and waited for
 */
CKPT_HIDDEN void bgsave_arm(void);

#endif
