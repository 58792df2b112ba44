/*
 * threads.h -- the process's threads as libckpt sees them: its own, which
 * it starts and names, and the program's (threads.c).
 */
#ifndef CKPT_THREADS_H
#define CKPT_THREADS_H 1

#include <pthread.h>

#include "internal.h"

/*
 * lib_thread_start -- start fn(arg) on a thread of libckpt's own, named
 * name (one of the names threads.c knows for libckpt's: "ckpt-fold",
 * "ckpt-lazy", "ckpt-reaper"),
 * with every signal blocked (the program's handlers are for its threads),
 * detached or to be joined. 0, or an errno.
 */
CKPT_HIDDEN int lib_thread_start(pthread_t *t, const char *name, int detached,
		void *(*fn)(void *), void *arg);

/*
 * threads_of_program -- whether this process has threads other than the
 * caller that are not libckpt's own: 0 when the caller is the program's
 * only thread, 1 when it has another (counting stops at the first), -1
 * when it cannot tell (no /proc), which callers must read as "some"
 */
CKPT_HIDDEN int threads_of_program(void);

#endif
