/*
 * catalog.h -- the crash-atomic table of segments, and its lock.
 *
 * Writers: cat_begin() takes the process mutex and the pool's OFD lock
 * (released by the kernel if the process dies), and copies the current
 * catalog into a DRAM scratch copy that the caller edits through the view;
 * cat_commit() writes it into the other on-media copy with the next
 * generation, persists it, then publishes it with one persisted 8-byte
 * store of the commit word; cat_end() drops the lock without a change.
 * Readers without the lock (tools) use cat_snapshot().
 *
 * When the copy the commit word names is damaged, both fall back to the
 * newest intact copy of the word's generation or the one before
 * (struct cat_source says which); cat_begin then rewrites both copies from
 * it before the caller sees the catalog (catalog.c, "Damage").
 */
#ifndef CKPT_CATALOG_H
#define CKPT_CATALOG_H 1

#include <pthread.h>
#include <stdint.h>

#include "format.h"
#include "map.h"

/* cat_view -- a catalog copy: header and entries (n == max_segments) */
struct cat_view {
	struct cat_hdr *h;
	struct cat_entry *e;
	uint32_t n;
};

/* cat_source -- which catalog copy a read used, and why */
struct cat_source {
	uint64_t word;              /* the commit word read */
	unsigned copy;              /* the copy used, 0 or 1 */
	uint64_t generation;        /* its generation */
	int fallback;               /* 1: the copy the word names is not intact */
	char damage[CKPT_ERRMSG_MAX]; /* fallback: what is wrong with that copy */
};

/* catalog -- DRAM handle; invariant: meta maps [0, layout_meta_len) of fd */
struct catalog {
	int fd;
	struct pool_hdr hdr;        /* validated copy of the header */
	struct pmap meta;
	pthread_mutex_t mu;
	void *scratch;              /* cat_size bytes */
	int locked;
	/* keep -- set by the pool layer: 1 if FREE segment i must stay in the
	 * file (a heap maps it), so a commit does not cut it off (filesize.c) */
	int (*keep)(void *arg, const struct cat_view *v, uint32_t i);
	void *keep_arg;
};

/*
 * cat_first_fn -- fills a new pool's first catalog v (entries and counters)
 * before it is sealed and written; 0, or -1 with a message
 */
typedef int (*cat_first_fn)(void *arg, struct cat_view *v);

/*
 * cat_init_file -- write the first catalog (generation 1, all FREE, then
 * as first, if given, fills it) and commit word with pwrite; *need: the
 * bytes the file must have for it (filesize.c's invariant)
 */
CKPT_HIDDEN int cat_init_file(int fd, const struct pool_hdr *hdr, cat_first_fn first,
		void *arg, uint64_t *need);

/* cat_attach -- map the metadata of a pool whose header hdr was validated */
CKPT_HIDDEN int cat_attach(struct catalog *c, int fd, const struct pool_hdr *hdr);
CKPT_HIDDEN void cat_detach(struct catalog *c);

/* cat_lock/cat_unlock -- the cross-process lock alone (fork uses them) */
CKPT_HIDDEN int cat_lock(struct catalog *c);
CKPT_HIDDEN void cat_unlock(struct catalog *c);

CKPT_HIDDEN int cat_begin(struct catalog *c, struct cat_view *v);
CKPT_HIDDEN int cat_commit(struct catalog *c);

/*
 * cat_commit_after -- cat_commit whose new copy, once written, is made
 * durable by sync(arg) instead of its own msync: an fdatasync of the pool
 * file the caller needs before the commit anyway (a cow checkpoint's image),
 * then whatever must happen between that and the commit word (its re-base).
 * The word is written and persisted only if sync returns 0; a failure of
 * sync leaves the catalog unchanged (the copy written is the one no word
 * names) and its message as it set it. One device flush fewer per commit.
 */
CKPT_HIDDEN int cat_commit_after(struct catalog *c, int (*sync)(void *arg), void *arg);
CKPT_HIDDEN void cat_end(struct catalog *c);

/*
 * cat_validate -- check a catalog copy read from an untrusted file against
 * hdr and the generation the commit word names. EINVAL and a message
 * naming the first problem (entry index and field).
 */
CKPT_HIDDEN int cat_validate(const struct pool_hdr *hdr, const void *copy, uint64_t gen);

/*
 * cat_snapshot -- lockless consistent copy of the current catalog from a
 * metadata mapping (meta = file bytes [0, layout_meta_len)) into out (cat_size).
 * Retries while a writer publishes. If the copy the commit word names is
 * damaged, the intact previous one (see above); EINVAL if neither is usable.
 */
CKPT_HIDDEN int cat_snapshot(const struct pool_hdr *hdr, const void *meta, void *out);

/* cat_snapshot_src -- cat_snapshot, and which copy it used in *src (also on EINVAL) */
CKPT_HIDDEN int cat_snapshot_src(const struct pool_hdr *hdr, const void *meta, void *out,
		struct cat_source *src);

/* cat_view_of -- view over a catalog copy buffer */
static inline void
cat_view_of(struct cat_view *v, void *copy, uint32_t n)
{
	v->h = copy;
	v->e = (struct cat_entry *)((char *)copy + sizeof(struct cat_hdr));
	v->n = n;
}

/*
 * Leases. A process holds an OFD read lock on one byte per live segment it
 * owns, at CAT_LEASE_OFF(i) (far past the end of the file: lock offsets
 * need no data), through a close-on-exec descriptor. The kernel drops it
 * when the process dies or execs, so a held lease proves the heap is in
 * use, whatever the pid has become.
 */
#define CAT_LEASE_OFF(i) ((1ll << 62) + (long long)(i))
CKPT_HIDDEN int cat_lease_take(int fd, uint32_t seg);
CKPT_HIDDEN void cat_lease_drop(int fd, uint32_t seg);
/* cat_lease_held -- 1 if another open file description holds seg's lease */
CKPT_HIDDEN int cat_lease_held(int fd, uint32_t seg);

/*
 * Pins. An OFD read lock on one byte per segment at CAT_PIN_OFF(i) says
 * "a heap maps this checkpoint image privately and it must not change"
 * without a catalog commit: a cow fork's parent takes it, in its prepare
 * handler, on the open file description its child inherits, so the child's
 * base image is pinned from the instant of the fork until the child's own
 * catalog entry pins it (or the child dies: the kernel drops the lock).
 */
#define CAT_PIN_OFF(i) ((1ll << 62) + (1ll << 40) + (long long)(i))
CKPT_HIDDEN int cat_pin_take(int fd, uint32_t seg);
CKPT_HIDDEN void cat_pin_drop(int fd, uint32_t seg);
/* cat_pin_held -- 1 if another open file description pins seg */
CKPT_HIDDEN int cat_pin_held(int fd, uint32_t seg);

/*
 * cat_entry_dead -- 1 if entry i is LIVE or BUSY and its owner is gone:
 * the process no longer runs (owner_alive), or, for LIVE, nobody holds
 * its lease (the owner exited or exec'd). A BUSY fork reservation
 * (CAT_F_FORK_PENDING) is dead exactly when nobody holds its lease, whoever
 * its recorded owner is (see fork.c). fd: any descriptor of the pool.
 */
CKPT_HIDDEN int cat_entry_dead(int fd, const struct cat_entry *e, uint32_t i);

/* cat_free_entry -- reset an entry to the FREE state */
CKPT_HIDDEN void cat_free_entry(struct cat_entry *e);

#endif
