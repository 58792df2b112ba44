/*
 * remote.h -- shipping checkpoints to a remote store and back: the
 * operations ckpt-remote and the background push run (push.c, pull.c,
 * prune.c), above the store interface (store.h).
 */
#ifndef CKPT_REMOTE_REMOTE_H
#define CKPT_REMOTE_REMOTE_H 1

#include <stdint.h>

#include "internal.h"
#include "remote/manifest.h"
#include "remote/store.h"

#define REMOTE_DEFAULT_CHUNK ((uint32_t)4096)

/* remote_stats -- what an operation moved */
struct remote_stats {
	uint64_t ckpt_id;           /* the checkpoint (push: once REF is resolved) */
	uint64_t image_bytes;       /* the checkpoint's bytes [0, used) */
	uint64_t chunks, zero_chunks;
	uint64_t sent_chunks, sent_bytes;   /* chunk payload written to the store */
	uint64_t manifest_bytes;
};

/*
 * remote_push -- push checkpoint ref ("7", "latest") of the pool at path to
 * st in chunks of chunk_size; the manifest's name goes to name
 * (MANIFEST_NAME_MAX). Chunks the store has are not sent (those the
 * pool's newest manifest lists are taken to be there, unless flags has
 * REMOTE_PUSH_CHECK_ALL); the manifest is
 * written last. Fails (pushing nothing that a manifest references) if the
 * checkpoint does not match its checksum or is freed while being read.
 */
#define REMOTE_PUSH_CHECK_ALL 0x1u  /* trust no earlier manifest: ask the store
                                      about every chunk */
CKPT_HIDDEN int remote_push(struct store *st, const char *path, const char *ref,
		uint32_t chunk_size, unsigned flags, char *name, struct remote_stats *stats);

/*
 * remote_pushable -- 0 if the pool at path can be pushed (its header is
 * valid), checked before any store is contacted; a sealed pool is pushed
 * as ciphertext with its seal records (remote/sealed.h), without its key
 */
CKPT_HIDDEN int remote_pushable(const char *path);

/*
 * remote_pull -- the checkpoint manifest names, into the pool at path
 * (created when absent); every chunk checked against its name and the
 * image against the checkpoint's checksum before it is published
 */
CKPT_HIDDEN int remote_pull(struct store *st, const char *manifest, const char *path,
		struct remote_stats *stats);

/* remote_desc_of -- the import description (import.h) of a manifest */
struct import_desc;
CKPT_HIDDEN void remote_desc_of(struct import_desc *d, const struct manifest_hdr *h);

/*
 * remote_fill_start -- what a lazy pull hands to the filler that goes on
 * in the same process: the pull's lock on POOL.fill (held, so that no
 * restart finds the pull without a filler), its request socket (-1 if
 * none), the connected store and the loaded manifest (and the fetch of
 * the first region, started while the pool was created)
 */
struct fill_first;
struct remote_fill_start {
	int lockfd, sock;
	struct store *st;
	struct manifest m;
	struct fill_first *first;   /* region 0 being fetched already (filler.c), or NULL */
};

/*
 * remote_pull_lazy -- the first half of `ckpt-remote pull --lazy`: the
 * manifest fetched and checked, the pool at path created (format 1.6) or
 * opened, the filler's side files written (filling.h) and its lock taken,
 * the checkpoint published FILLING; *fs then holds what remote_fill goes
 * on with (st included: the caller no longer closes it). *complete: the
 * pool holds the checkpoint already, nothing to fill (fs unset, st the
 * caller's).
 */
CKPT_HIDDEN int remote_pull_lazy(struct store *st, const char *manifest, const char *url,
		const char *path, int *complete, struct remote_stats *stats,
		struct remote_fill_start *fs);

/*
 * remote_fill -- the filler (filler.c): fetch the rest of the checkpoint
 * being pulled into the pool at path, serving the regions restarting
 * processes ask for first, then publish it and remove the side files.
 * fs: remote_pull_lazy's (consumed), or NULL to resume a pull: then with
 * wait a filler already running is waited for instead of refused. 0 when
 * the checkpoint is published (by this filler or the one waited for), or
 * when the pool has none being pulled.
 */
CKPT_HIDDEN int remote_fill(const char *path, int wait, struct remote_fill_start *fs);

/* remote_manifest_fn -- one manifest of a listing */
typedef int (*remote_manifest_fn)(void *arg, const char *name, const struct manifest *m);

/*
 * remote_list -- every manifest in the store, decoded, oldest checkpoint
 * time first; one that cannot be read is reported with m == NULL, the
 * reason in ckpt_errormsg() and errno EINVAL (damaged) or ENOTSUP (a
 * version newer than this libckpt reads: not damaged, its chunks unknown)
 */
CKPT_HIDDEN int remote_list(struct store *st, remote_manifest_fn fn, void *arg);

/* remote_load_manifest -- fetch and decode one manifest */
CKPT_HIDDEN int remote_load_manifest(struct store *st, const char *name, struct manifest *m);

/*
 * remote_prune -- delete manifests beyond the newest keep of each pool
 * (keep 0: no count limit) and those older than max_age_s (0: no age
 * limit), then collect garbage: delete every chunk no manifest references,
 * under a GC lease (lock.c). *deleted_m / *deleted_c get the counts.
 */
CKPT_HIDDEN int remote_prune(struct store *st, unsigned keep, uint64_t max_age_s,
		unsigned *deleted_m, unsigned *deleted_c);

#endif
