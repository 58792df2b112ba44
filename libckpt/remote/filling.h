/*
 * filling.h -- a checkpoint being pulled lazily from a remote store
 * (`ckpt-remote pull --lazy`, format 1.6): the side files its filler
 * process and the restarting library share, and the library's side of
 * them (filling.c; the filler is remote/filler.c, in ckpt-remote).
 *
 * Next to the pool file POOL:
 *   POOL.fill       what is being pulled (store URL, manifest name,
 *                   checkpoint id; mode 0600: a URL may hold a password);
 *                   the running filler holds an exclusive flock on it, so
 *                   "no filler" is a lock anyone can take;
 *   POOL.fill.map   struct fill_map, then one 32-bit word per region of
 *                   FILL_REGION bytes of the image: 0 not there yet,
 *                   FILL_DONE its bytes and page sums are in the pool file,
 *                   FILL_BAD it can never come (a corrupted or missing chunk;
 *                   why in bad_reason). The filler sets a word after
 *                   writing the region's bytes and sums and wakes its
 *                   waiters (a futex on the shared mapping);
 *   POOL.fill.sock  a datagram socket the filler reads: a restarting
 *                   process sends a region's index (8 bytes) to have it
 *                   fetched next;
 *   POOL.fill.log   the background filler's messages.
 * All but the log are removed by the filler after the publish.
 */
#ifndef CKPT_REMOTE_FILLING_H
#define CKPT_REMOTE_FILLING_H 1

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define FILL_REGION ((uint64_t)2 << 20)
#define FILL_MAP_MAGIC 0x50414d4c4c49464bull   /* "KFILLMAP" */
#define FILL_MAP_WORDS_OFF 4096u
#define FILL_DONE 1u
#define FILL_BAD 2u
#define FILL_PATH_MAX 4200

/*
 * fill_map -- the head of POOL.fill.map. Invariants: magic; region a power
 * of two >= FILL_REGION (a multiple of the manifest's chunk size);
 * nregions == ceil(used / region); the words follow at FILL_MAP_WORDS_OFF.
 * stopped is set (with why) by a filler that gives up (the store failed
 * past its retries); a new filler clears it.
 */
struct fill_map {
	uint64_t magic;
	uint64_t ckpt_id;
	uint64_t used;
	uint64_t region;
	uint64_t nregions;
	uint32_t stopped;
	uint32_t reserved;
	char stop_reason[512];
	char bad_reason[512];       /* the first FILL_BAD region's reason */
};

/* fill_path -- POOL + suffix (".fill", ".fill.map", ...) into out (FILL_PATH_MAX) */
CKPT_HIDDEN int fill_path(char *out, const char *pool, const char *suffix);

/* fill_map_size -- bytes of POOL.fill.map for nregions */
static inline size_t
fill_map_size(uint64_t nregions)
{
	return FILL_MAP_WORDS_OFF + (size_t)nregions * sizeof(uint32_t);
}

/* fill_words -- the region words after the head */
static inline uint32_t *
fill_words(struct fill_map *m)
{
	return (uint32_t *)((char *)m + FILL_MAP_WORDS_OFF);
}

/* fill_wake -- wake every process waiting on word w (futex, shared) */
CKPT_HIDDEN void fill_wake(uint32_t *w);

struct fill_client;

/*
 * fill_client_open -- the restart's side of checkpoint id (used bytes, in
 * segment seg of the pool p) being filled: maps POOL.fill.map, checked
 * against the checkpoint; NULL with a message when the side files are
 * missing or do not match it (the pull's state is lost: pull again)
 */
struct ckpt_pool;
CKPT_HIDDEN struct fill_client *fill_client_open(struct ckpt_pool *p, uint32_t seg,
		uint64_t id, uint64_t used);

/*
 * fill_client_fetch -- lazy.c's fetch hook (lazy_fetch): make the image's
 * bytes [off, off + len) present, asking the filler for the regions not
 * there yet and waiting (wait nonzero) at most the pool's fill wait
 * (CKPT_REMOTE_FILL_TIMEOUT) for each, then read their page sums from the
 * pool's page-sum slot into sums[0, len / 4096). 1: present; 0: not yet
 * (wait 0 only); -1: they cannot come (a corrupted chunk, the filler gone
 * or stopped, the wait over), with a message saying why and what to do.
 */
CKPT_HIDDEN int fill_client_fetch(void *arg, uint64_t off, uint64_t len, int wait,
		uint64_t *sums);

/* fill_client_end -- release (lazy_fetch's end) */
CKPT_HIDDEN void fill_client_end(void *arg);

#endif
