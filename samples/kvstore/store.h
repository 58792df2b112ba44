/*
 * store.h -- kvstore's dataset in a libckpt pool: opening or creating the
 * pool, the root block that everything hangs from, and the three ways the
 * dataset becomes durable: SAVE (ckpt_checkpoint, the server waits), BGSAVE
 * (ckpt_checkpoint_background: a forked child checkpoints the heap as of
 * the fork while the server goes on), and the periodic checkpoint (a
 * BGSAVE every --checkpoint-every seconds when something changed).
 *
 * One server per pool: the server holds an exclusive flock on the pool
 * file while it runs, and a second kvstore on the same pool refuses to
 * start (two servers would each take a live segment and silently share one
 * retention window). BGSAVE children close their copy of the lock's
 * descriptor, so a child outliving its server never keeps the pool locked.
 *
 * Owns the pool handle, its lock and the persistence statistics INFO reports.
 */
#ifndef KV_STORE_H
#define KV_STORE_H

#include <stdint.h>
#include <sys/types.h>

#include <libckpt.h>

#include "dict.h"

/*
 * The dataset's layout version is in the root's magic. Layout 2 keeps
 * values of KV_SPLIT_MIN bytes or more in blocks of their own (dict.h);
 * layout 1 kept every value after its key. A layout-1 dataset is upgraded
 * when it is opened (and checkpointed at once, so that happens once); a
 * kvstore that knows only layout 1 refuses a layout-2 dataset.
 */
#define KV_MAGIC "kvstore-2"
#define KV_MAGIC_V1 "kvstore-1"

/* kv_root -- the pool's root block: the whole dataset is reachable from here */
struct kv_root {
	char magic[16];         /* KV_MAGIC (or KV_MAGIC_V1): this heap is a kvstore's */
	struct kv_dict dict;
	int64_t created;        /* unix time the store was created */
};

/* store -- the open dataset and what INFO says about its persistence */
struct store {
	ckpt_pool *pool;
	int lock_fd;            /* the pool file, flock'd exclusively; -1: none */
	struct kv_root *root;
	const char *path;
	size_t heap_size;

	/* restart */
	int restarted;          /* 1: opened from a checkpoint, 0: created */
	ckpt_id restart_from;   /* not known through the API: 0 */
	double restart_ms;      /* ckpt_open + finding the root */
	uint64_t restart_keys;
	int64_t restart_time;   /* unix time of the last (re)start */

	/* checkpoints */
	uint64_t dirty;         /* changes since the last checkpoint began */
	uint64_t dirty_at_bgsave;
	uint64_t checkpoints;   /* taken by this process, SAVE and BGSAVE */
	ckpt_id last_id;
	int64_t last_save_time; /* unix time of the last successful checkpoint */
	double last_save_ms;    /* duration of the last SAVE, or of the last
	                           BGSAVE from fork to collection */
	int last_status_ok;
	pid_t bg_pid;           /* running background checkpoint, or 0 */
	int64_t bg_start_us;
	long long latest_fork_usec;
	char last_error[256];
};

/*
 * store_open -- restart from the latest checkpoint of path if it exists,
 * else create it (heap_size bytes per segment) with an empty dataset and a
 * first checkpoint, and lock it. Logs what it did and how long the restart
 * took. 0, or -1 after logging why (another server holds the pool's lock,
 * among others).
 */
int store_open(struct store *st, const char *path, size_t heap_size);

/* store_save -- checkpoint now (SAVE); 0 or -1 (st->last_error says why) */
int store_save(struct store *st, const char *label);

/*
 * store_bgsave -- start a background checkpoint (BGSAVE); 0, or -1 with
 * st->last_error (EBUSY: one is running)
 */
int store_bgsave(struct store *st, const char *label);

/* store_poll -- collect a finished background checkpoint, if any (no wait) */
void store_poll(struct store *st);

/* store_close -- wait for a running BGSAVE, close the pool, drop its lock */
void store_close(struct store *st);

/* store_close_lock_in_child -- a forked child gives up its copy of the lock's descriptor */
void store_close_lock_in_child(struct store *st);

/* now_us -- wall-clock microseconds */
int64_t now_us(void);

#endif /* KV_STORE_H */
