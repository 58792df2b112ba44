/*
 * trigger.h -- the background push: with a remote store configured
 * (CKPT_REMOTE or per pool), every published
 * checkpoint of a pool this process opened is pushed by a ckpt-remote
 * process of its own (trigger.c).
 */
#ifndef CKPT_REMOTE_TRIGGER_H
#define CKPT_REMOTE_TRIGGER_H 1

#include "handle.h"

/*
 * remote_arm -- push p's checkpoints as they are published, each to the
 * remote store configured at that moment (CKPT_REMOTE, else the pool's
 * POOL.remote.url; none: no push)
 */
CKPT_HIDDEN void remote_arm(struct ckpt_pool *p);

#endif
