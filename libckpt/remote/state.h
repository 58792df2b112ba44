/*
 * state.h -- the push state of a pool's checkpoints, kept beside the pool
 * in POOL.remote (a text file: one line per event, the last line of a
 * checkpoint wins; docs/FORMAT.md, "Push state"). Outside the pool file,
 * so recording it never touches the catalog and a push never delays or
 * fails a checkpoint.
 */
#ifndef CKPT_REMOTE_STATE_H
#define CKPT_REMOTE_STATE_H 1

#include <stdint.h>

#include "internal.h"

#define REMOTE_STATE_SUFFIX ".remote"
#define REMOTE_STATE_MAX_BYTES ((size_t)4 << 20)   /* read at most the last 4 MiB */
#define REMOTE_STATE_COMPACT_BYTES ((size_t)1 << 20) /* a writer compacts past this */
#define REMOTE_STATE_KEEP_IDS 1024u                  /* checkpoints a compaction keeps */

/* remote_state -- the last recorded event of one checkpoint */
struct remote_state {
	char state[16];             /* "pending", "pushed", "failed" */
	uint64_t time_ns;
	char url[256];
	char detail[256];           /* pushed: the manifest; failed: why */
};

/* remote_state_record -- append an event for checkpoint id of the pool at pool */
CKPT_HIDDEN int remote_state_record(const char *pool, uint64_t id, const char *state,
		const char *url, const char *detail);

/* remote_state_get -- 1 and *out if checkpoint id has a recorded state, else 0 */
CKPT_HIDDEN int remote_state_get(const char *pool, uint64_t id, struct remote_state *out);

#endif
