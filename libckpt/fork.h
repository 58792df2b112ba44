/*
 * fork.h -- what happens to open pools across fork() (fork.c's top comment
 * tells the handlers and the modes).
 */
#ifndef CKPT_FORK_H
#define CKPT_FORK_H 1

#include "pool.h"

/*
 * fork_register -- arm fork handling for a pool that just got its live
 * segment: the pthread_atfork handlers (installed once), the registry of
 * open pools they walk, the heap mapping kept out of children made
 * without them. ckpt_close takes the pool out again (a close hook).
 */
CKPT_HIDDEN void fork_register(struct ckpt_pool *p);

/* fork_close_all -- ckpt_close every open pool (a background-checkpoint child before _exit) */
CKPT_HIDDEN void fork_close_all(void);

#endif
