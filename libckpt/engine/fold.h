/*
 * fold.h -- folding a logged checkpoint's page log into its segment (format
 * 1.9): in the background after the engine publishes one, or at once for
 * a reader that is about to map or copy one (fold.c's top comment).
 */
#ifndef CKPT_ENGINE_FOLD_H
#define CKPT_ENGINE_FOLD_H 1

#include <pthread.h>
#include <stdint.h>

#include "libckpt.h"
#include "catalog.h"

struct ckpt_pool;

/*
 * fold -- the background fold of the last checkpoint the engine logged.
 * Invariants: running: th was started for (seg, id) and not yet joined;
 * done: a joined fold wrote every page of that log into the segment (the
 * page cache), and the entry's CAT_F_LOGGED is still to be cleared by a
 * commit that follows an fdatasync begun after the join; neither: nothing
 * pending (seg and id mean nothing).
 */
struct fold {
	pthread_t th;
	int running;
	int done;
	int rc;                 /* the thread's result (0, or an errno) */
	int fd;
	uint32_t seg;
	ckpt_id id;
	uint64_t seg_off, slot_off, slot_len, used, sum;
};

/*
 * fold_start -- fold checkpoint id, just published in segment seg with
 * used bytes and checksum sum, in a thread of its own. A fold still
 * pending is waited for first and, if done, forgotten: its entry keeps
 * CAT_F_LOGGED (correct; a reader folds it again). Never fails: without
 * a thread the entry just stays logged.
 */
CKPT_HIDDEN void fold_start(struct fold *f, struct ckpt_pool *p, uint32_t seg, ckpt_id id,
		uint64_t used, uint64_t sum);

/* fold_wait -- join a running fold (afterwards done says whether it folded) */
CKPT_HIDDEN void fold_wait(struct fold *f);

/*
 * fold_clear -- in transaction v, whose commit follows an fdatasync of the
 * pool file begun after fold_wait: clear CAT_F_LOGGED of the folded
 * checkpoint if its entry still is that checkpoint; fold_cleared once that
 * commit succeeded forgets the fold (a failed one leaves it to the next)
 */
CKPT_HIDDEN void fold_clear(struct fold *f, struct cat_view *v);
CKPT_HIDDEN void fold_cleared(struct fold *f);

/* fold_forget -- a fork child: the parent's fold is not the child's */
CKPT_HIDDEN void fold_forget(struct fold *f);

/*
 * fold_now -- before a reader maps or copies checkpoint segment seg: if it
 * is logged, fold its log into it and make that durable, then clear the
 * flag (one commit). The segment is pinned meanwhile, so nobody recycles
 * it under the fold. 0 when seg holds its image's bytes (folded or never
 * logged); -1 (ckpt_err_set) on a damaged log or an I/O error, the
 * checkpoint left as it was.
 */
CKPT_HIDDEN int fold_now(struct ckpt_pool *p, uint32_t seg);

/*
 * fold_all -- fold_now every logged checkpoint of the pool (a restart's
 * first step: it verifies, maps or copies segments). One that cannot be
 * folded stays logged, and a reader of its segment finds it does not
 * verify. Never fails.
 */
CKPT_HIDDEN void fold_all(struct ckpt_pool *p);

#endif /* CKPT_ENGINE_FOLD_H */
