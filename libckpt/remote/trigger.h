/*
 * trigger.h -- the background push: with CKPT_REMOTE set, every published
 * checkpoint of a pool this process opened is pushed by a ckpt-remote
 * process of its own (trigger.c).
 */
#ifndef CKPT_REMOTE_TRIGGER_H
#define CKPT_REMOTE_TRIGGER_H 1

#include "handle.h"

/* remote_arm -- if CKPT_REMOTE is set, push p's checkpoints as they are published */
CKPT_HIDDEN void remote_arm(struct ckpt_pool *p);

#endif
