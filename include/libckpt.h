/*
 * libckpt.h -- the public interface of libckpt: durable, fork-safe,
 * checkpointable heaps in a pool file on persistent memory.
 *
 * This is the only header a user includes. The reference is docs/API.md in
 * the source tree, and the man pages libckpt(3), ckpt_create(3),
 * ckpt_alloc(3), ckpt_checkpoint(3) and ckpt_errormsg(3). Names, argument
 * order and documented semantics are stable: later versions add, never
 * change. Every exported symbol starts with ckpt_, every macro with CKPT_.
 *
 * Errors: a call that fails returns NULL or -1, sets errno, and leaves a
 * one-line reason in ckpt_errormsg(). Every call is thread-safe.
 */
#ifndef LIBCKPT_H
#define LIBCKPT_H 1

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_VERSION_MAJOR 0
#define CKPT_VERSION_MINOR 2

typedef struct ckpt_pool ckpt_pool;       /* opaque */
typedef uint64_t ckpt_id;                 /* checkpoint id, > 0, increasing per pool */
#define CKPT_LATEST ((ckpt_id)0)

enum ckpt_fork_mode {
	CKPT_FORK_AUTO = 0,  /* COW on a pool of format 1.7 or later neither sealed
	                        nor on pmem; else REFLINK where the filesystem
	                        clones, else COPY (a sealed pool: COPY) */
	CKPT_FORK_COPY,      /* child's segment copied before fork returns */
	CKPT_FORK_REFLINK,   /* filesystem clone; open fails (ENOTSUP) where unsupported */
	CKPT_FORK_COW,       /* copy-on-write engine: the heap is a private image of
	                        a checkpoint; fork is a plain fork; checkpoints
	                        write what changed; ckpt_persist writes the
	                        range's pages into the heap's own segment */
	CKPT_FORK_SHARED,    /* child shares the parent's segment: unsafe, for comparison only */
};

struct ckpt_config {          /* all-zero means every default */
	size_t heap_size;         /* capacity of one segment, bytes; 0: 1 GiB */
	unsigned max_segments;    /* segments the pool can hold; 0: 64 */
	void *base;               /* address segments are mapped at; NULL: library default */
	enum ckpt_fork_mode fork_mode;
	unsigned keep_checkpoints; /* checkpoints kept per lineage (see docs/API.md);
	                              older ones are freed once a newer one is
	                              published; 0: 4 */
	mode_t mode;              /* permissions of a created pool; 0: 0600 */
	const char *key_file;     /* sealed pool: file holding a 32-byte key (raw, or
	                             64 hex digits); NULL: unsealed, unless
	                             CKPT_KEY_FILE is set or the key callback
	                             (ckpt_set_key_callback) gives a key (read at
	                             create and open) */
};

/* Pools. */
ckpt_pool *ckpt_create(const char *path, const struct ckpt_config *cfg);
ckpt_pool *ckpt_open(const char *path, ckpt_id from, const struct ckpt_config *cfg);
int ckpt_close(ckpt_pool *pool);

/* The heap. As their libc namesakes; blocks are at least 16-byte aligned. */
void  *ckpt_alloc(ckpt_pool *pool, size_t size);
void  *ckpt_calloc(ckpt_pool *pool, size_t nmemb, size_t size);
void  *ckpt_realloc(ckpt_pool *pool, void *ptr, size_t size);
void  *ckpt_aligned_alloc(ckpt_pool *pool, size_t alignment, size_t size);
void   ckpt_free(ckpt_pool *pool, void *ptr);
size_t ckpt_usable_size(ckpt_pool *pool, const void *ptr);

/* The root: one pointer into the heap that survives checkpoints and restarts. */
void *ckpt_root(ckpt_pool *pool);
int   ckpt_set_root(ckpt_pool *pool, void *ptr);

/*
 * Durability. ckpt_persist makes a range of the live heap durable now;
 * ckpt_checkpoint freezes the live heap into a new checkpoint (label: at most
 * 63 bytes, or NULL; id may be NULL), durable and published when it returns 0.
 */
int ckpt_persist(ckpt_pool *pool, const void *addr, size_t len);
int ckpt_checkpoint(ckpt_pool *pool, const char *label, ckpt_id *id);

/*
 * Restart, retention and reclaim (docs/API.md).
 *
 * ckpt_restarted_from -- the checkpoint this process's heap was restarted
 * from by ckpt_open (CKPT_LATEST falls back past damaged checkpoints, so it
 * may be older than the newest), or 0 for a heap made by ckpt_create.
 *
 * ckpt_set_keep_checkpoints -- retention of this process's heap from now on:
 * each publish keeps the newest n checkpoints of its lineage (1 <= n <= 4096,
 * else EINVAL). Lowering it frees the surplus at once. The pool's default
 * (ckpt_config.keep_checkpoints at create) does not change.
 *
 * ckpt_reclaim -- free every dead segment now (heaps of processes that ended
 * without ckpt_close, and segments left by a crashed checkpoint, fork or
 * restart) and return their blocks to the filesystem; *reclaimed (may be
 * NULL) gets how many. Without it they stay, listed dead by ckpt-inspect,
 * until the pool needs a segment: then the oldest goes first, half-written
 * leftovers before dead heaps.
 */
ckpt_id ckpt_restarted_from(ckpt_pool *pool);
int ckpt_set_keep_checkpoints(ckpt_pool *pool, unsigned n);
int ckpt_reclaim(ckpt_pool *pool, unsigned *reclaimed);

/*
 * Background checkpoint, Redis BGSAVE style (docs/API.md).
 *
 * ckpt_checkpoint_background -- fork a child that checkpoints its heap (the
 * caller's heap as of the fork) while the caller keeps running and changing
 * its own, then exits. Returns the child's pid, or -1 (ENOTSUP in fork mode
 * shared, EINVAL for a label of 64 bytes or more, fork's errno).
 * The checkpoint is attributed to the caller's live segment: it counts
 * against the caller's keep_checkpoints. Collect every one with
 * ckpt_checkpoint_wait (which also reaps the child).
 *
 * ckpt_checkpoint_wait -- wait for background checkpoint pid of pool and get
 * its id. 0: done, *id set (id may be NULL); -1: the child's errno and
 * message (e.g. ENOSPC: the pool had no free segment), EAGAIN with
 * CKPT_WNOHANG while it still runs, ECHILD if pid is not one to collect.
 */
#define CKPT_WNOHANG 1
pid_t ckpt_checkpoint_background(ckpt_pool *pool, const char *label);
int ckpt_checkpoint_wait(ckpt_pool *pool, pid_t pid, ckpt_id *id, int flags);

/*
 * Sealed pools (docs/API.md). ckpt_reseal -- key rotation: a new sealed
 * pool dst (it must not exist) holding every checkpoint of pool src, each
 * decrypted with key_file (NULL for a src that is not sealed: this seals
 * it) and encrypted anew under the key in new_key_file. src is only read.
 */
int ckpt_reseal(const char *src, const char *dst, const char *key_file,
		const char *new_key_file);

/*
 * ckpt_key_fn -- the program's source of keys for sealed pools, asked
 * when neither ckpt_config.key_file nor CKPT_KEY_FILE names a key file:
 * by ckpt_create (its pool is sealed if the callback gives a key) and by
 * ckpt_open of a sealed pool (an unsealed pool never asks). It is called
 * with the pool's path; it returns 1 with the 32-byte key in key, 0 if it
 * has no key for that pool (create: an unsealed pool; open: ENOKEY), or
 * -1 to fail the call (its errno is kept; 0 becomes EIO). The library
 * wipes its copy of key after use; the callback may run in any thread
 * that creates or opens a pool.
 * ckpt_set_key_callback -- register fn (with arg) for the whole process,
 * replacing any earlier one; NULL removes it. Returns 0.
 */
typedef int (*ckpt_key_fn)(void *arg, const char *path, unsigned char key[32]);
int ckpt_set_key_callback(ckpt_key_fn fn, void *arg);

/* The reason for the calling thread's last failure. */
const char *ckpt_errormsg(void);

#ifdef __cplusplus
}
#endif

#endif /* LIBCKPT_H */
