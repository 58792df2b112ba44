/*
 * restart.c -- giving an opened pool's process a live segment whose heap
 * equals a checkpoint: a restart is a fork from the past.
 *
 * Steps:
 *   1. choose the checkpoint (an id, or the newest) and verify its bytes
 *      against its checksum; CKPT_LATEST falls back to the newest one that
 *      verifies;
 *   2. in the same catalog transaction, take a segment (seg_take) and claim
 *      it BUSY, as a new life continuing the checkpoint's lineage (format.h),
 *      its lease taken first;
 *   3. outside the lock, fill it from the checkpoint (segcopy: a clone, else
 *      a copy; the checkpoint is immutable and the segment ours), with the
 *      restart:mid-copy crash point;
 *   4. publish it LIVE, with the checkpoint as its source, and attach the
 *      heap.
 * CKPT_LATEST on a pool that has never had a checkpoint (its creator died
 * before the first) skips 1-3: the new segment gets an empty heap, as
 * ckpt_create's does (restart_empty).
 * A crash before 4 leaves a BUSY entry of a dead owner (garbage reclaimed
 * on demand); a failure gives the segment back. The checkpoint is never
 * written.
 *
 * In a sealed pool (seal/chunks.c) there is no segment to fill: step 1
 * decrypts the checkpoint into the heap's memory (every chunk
 * authenticated), and step 2's transaction publishes the new entry LIVE,
 * in memory, pinning nothing (restart_sealed). Where the lazy restart can
 * run, step 1 checks only the seal record and hands the heap to a lazy
 * fill (engine/lazy.c) whose source decrypts each chunk on first access.
 *
 * In cow mode (engine/image.c) there is no step 3: the heap is a private
 * mapping of the checkpoint itself, so the new entry is published LIVE in
 * step 2's transaction, flagged in memory and naming the checkpoint as its
 * source, which pins it: nothing may change it while the heap maps it.
 *
 * A checkpoint still being pulled from a remote store (FILLING, format
 * 1.6) is restarted from only lazily: its bytes arrive as the program
 * touches them, through the fetch hook this file registers with lazy.c
 * (remote/filling.c asks the filler process and waits). Where the restart
 * cannot be lazy, ckpt_open refuses it with EBUSY: nothing waits for a
 * whole pull inside ckpt_open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filesize.h"
#include "pool.h"
#include "restart.h"
#include "segcopy.h"
#include "segment.h"
#include "sums.h"
#include "engine/fold.h"
#include "engine/image.h"
#include "engine/lazy.h"
#include "seal/chunks.h"
#include "remote/filling.h"

#define VERIFY_PIECE ((uint64_t)2 << 20)   /* checkpoint_verify reads this much at a time */

/*
 * find_checkpoint -- index of checkpoint id (CKPT_LATEST: newest), or -1;
 * one still being pulled (FILLING) counts
 */
static int
find_checkpoint(const struct cat_view *v, ckpt_id id)
{
	int best = -1;
	for (uint32_t i = 0; i < v->n; i++) {
		if (v->e[i].state != CAT_CKPT && v->e[i].state != CAT_FILLING)
			continue;
		if (id != CKPT_LATEST ? v->e[i].ckpt_id == id
		    : (best < 0 || v->e[i].ckpt_id > v->e[best].ckpt_id))
			best = (int)i;
	}
	return best;
}

/* older_checkpoint -- index of the newest checkpoint older than id, or -1 */
static int
older_checkpoint(const struct cat_view *v, ckpt_id id)
{
	int best = -1;
	for (uint32_t i = 0; i < v->n; i++)
		if (v->e[i].state == CAT_CKPT && v->e[i].ckpt_id < id &&
		    (best < 0 || v->e[i].ckpt_id > v->e[best].ckpt_id))
			best = (int)i;
	return best;
}

/*
 * checkpoint_in_file -- a checkpoint lies in the file before it is mapped
 * (a mapping past the end faults with SIGBUS): a file cut shorter than its
 * catalog needs (format.h, POOL_F_SIZE_FOLLOWS) is refused by name
 */
static int
checkpoint_in_file(struct ckpt_pool *p, const struct cat_entry *e, uint32_t seg)
{
	struct stat st;
	if (fstat(p->fd, &st) < 0)
		return ckpt_err_set(errno, "cannot stat pool %s: %s", p->path, strerror(errno));
	if (!fsize_covers(&p->hdr, (uint64_t)st.st_size, seg))
		return ckpt_err_set(EINVAL, "checkpoint %llu (segment %u) lies past the end of "
			"the file (%llu bytes, it needs %llu): the pool file is truncated",
			(unsigned long long)e->ckpt_id, seg, (unsigned long long)st.st_size,
			(unsigned long long)(seg_off(p, seg) + p->hdr.seg_size));
	return 0;
}

/* checksum_matches -- 0 if sum is checkpoint e's recorded checksum, else EINVAL */
static int
checksum_matches(const struct cat_entry *e, uint32_t seg, uint64_t sum)
{
	if (sum != e->checksum)
		return ckpt_err_set(EINVAL,
			"checkpoint %llu (segment %u) is damaged: checksum mismatch",
			(unsigned long long)e->ckpt_id, seg);
	return 0;
}

/*
 * checkpoint_verify -- check a checkpoint's bytes against its recorded
 * checksum; page_sums (may be NULL) receives the sum of each page
 */
static int
checkpoint_verify(struct ckpt_pool *p, const struct cat_entry *e, uint32_t seg,
		uint64_t *page_sums)
{
	const void *m;
	if (checkpoint_in_file(p, e, seg) < 0)
		return -1;
	struct sums s;
	sums_begin(&s, (e->flags & CAT_F_PAGE_SUMS) != 0, page_sums);
	char *buf = map_read_direct(p->fd) ? malloc(SUMS_READ) : NULL;
	if (buf) {
		/* pread (sums.h says why); where it may not stand in for the
		 * view (tmpfs), or without a buffer, through the view below */
		uint64_t at;
		int rc = sums_update_file(&s, p->fd, seg_off(p, seg), e->used, buf, &at);
		int err = errno;
		free(buf);
		if (rc < 0)
			return ckpt_err_set(err, "checkpoint %llu (segment %u) at offset %llu: "
				"cannot read it: %s", (unsigned long long)e->ckpt_id, seg,
				(unsigned long long)at, strerror(err));
		return checksum_matches(e, seg, sums_end(&s));
	}
	if (map_view(p->fd, seg_off(p, seg), e->used, &m) < 0) {
		ckpt_err_prefix("checkpoint %llu: ", (unsigned long long)e->ckpt_id);
		return -1;
	}
	/* in pieces, each read in before it is hashed: an unreadable page is
	 * an error here, not a SIGBUS */
	for (uint64_t off = 0; off < e->used; off += VERIFY_PIECE) {
		uint64_t n = e->used - off < VERIFY_PIECE ? e->used - off : VERIFY_PIECE;
		if (map_view_read((const char *)m + off, n) < 0) {
			map_view_end(m, e->used);
			ckpt_err_prefix("checkpoint %llu (segment %u) at offset %llu: ",
				(unsigned long long)e->ckpt_id, seg, (unsigned long long)off);
			return -1;
		}
		sums_update(&s, (const char *)m + off, n);
	}
	uint64_t sum = sums_end(&s);
	map_view_end(m, e->used);
	return checksum_matches(e, seg, sum);
}

/*
 * stored_sums -- a lazy restart's verification: the checkpoint's stored
 * page sums, checked against its checksum, into page_sums (its pages are
 * verified on first access); -1 (message set) when it has none or they are
 * damaged, and the whole image must be verified instead
 */
static int
stored_sums(struct ckpt_pool *p, const struct cat_entry *e, uint32_t seg, uint64_t *page_sums)
{
	if (!(e->flags & CAT_F_SUMS_STORED) || !(p->hdr.flags & POOL_F_SUMS_AREA) ||
	    e->used % SUMS_PAGE)
		return ckpt_err_set(ENOENT, "no stored page sums");
	if (checkpoint_in_file(p, e, seg) < 0)
		return -1;
	return sums_load(p->fd, layout_sums_off(&p->hdr, seg), e->used / SUMS_PAGE,
			e->checksum, page_sums);
}

/* clear_sums -- zero page_sums (may be NULL), one sum per page of a segment */
static void
clear_sums(const struct ckpt_pool *p, uint64_t *page_sums)
{
	if (page_sums)
		memset(page_sums, 0, p->hdr.seg_size / SUMS_PAGE * sizeof(*page_sums));
}

/* no_checkpoint -- ENOENT: the pool has no checkpoint from */
static int
no_checkpoint(const struct ckpt_pool *p, ckpt_id from)
{
	if (from == CKPT_LATEST)
		return ckpt_err_set(ENOENT, "pool %s has no checkpoint to open", p->path);
	return ckpt_err_set(ENOENT, "pool %s has no checkpoint %llu", p->path,
			(unsigned long long)from);
}

/*
 * choose -- step 1: the index of the checkpoint to restart from, verified
 * (its page sums into page_sums, may be NULL); -1. With lazy (may be
 * NULL), a checkpoint whose stored page sums check is taken with *lazy 1,
 * its pages left to be verified on first access. A logged checkpoint (format
 * 1.9) is -2 with refold (may be NULL) counted: the caller folds and asks
 * again; without refold it is one that does not verify.
 */
static int
choose(struct ckpt_pool *p, const struct cat_view *v, ckpt_id from, uint64_t *page_sums,
		int *lazy, int *refold)
{
	int src = find_checkpoint(v, from);
	if (src < 0)
		return no_checkpoint(p, from);
	if (v->e[src].state == CAT_FILLING) {
		if (lazy && checkpoint_in_file(p, &v->e[src], (uint32_t)src) == 0) {
			*lazy = 1;      /* its page sums come with its bytes */
			return src;
		}
		if (lazy)
			return -1;
		return ckpt_err_set(EBUSY, "pool %s: checkpoint %llu is still being pulled from "
				"its remote store, and a restart before the pull completes must "
				"be lazy (fork mode cow, userfaultfd, CKPT_RESTART not eager); "
				"`ckpt-remote fill %s` waits for the pull", p->path,
				(unsigned long long)v->e[src].ckpt_id, p->path);
	}
	/* page_sums comes zeroed; a failed attempt's sums must not outlive it */
	for (;;) {
		/* logged: published after fold_all (fold again, at most three
		 * times), or its log could not be folded */
		if ((v->e[src].flags & CAT_F_LOGGED) && refold) {
			++*refold;
			return -2;
		}
		if (v->e[src].flags & CAT_F_LOGGED) {
			ckpt_err_set(EIO, "checkpoint %llu: its page log could not be folded "
					"into its segment (damaged, or the file could not be "
					"written: ckpt-inspect verify says which)",
					(unsigned long long)v->e[src].ckpt_id);
		} else if (lazy) {
			if (stored_sums(p, &v->e[src], (uint32_t)src, page_sums) == 0) {
				*lazy = 1;
				break;
			}
			clear_sums(p, page_sums);   /* it may have read some */
		}
		if (!(v->e[src].flags & CAT_F_LOGGED) &&
		    checkpoint_verify(p, &v->e[src], (uint32_t)src, page_sums) == 0)
			break;
		int next = from == CKPT_LATEST ? older_checkpoint(v, v->e[src].ckpt_id) : -1;
		if (next < 0) {
			if (from == CKPT_LATEST)
				ckpt_err_prefix("pool %s has no valid checkpoint; last tried: ",
						p->path);
			return -1;
		}
		clear_sums(p, page_sums);
		src = next;
	}
	return src;
}

/* never_checkpointed -- 1 if the pool has never published a checkpoint */
static int
never_checkpointed(const struct cat_view *v)
{
	for (uint32_t i = 0; i < v->n; i++)
		if (v->e[i].state == CAT_CKPT)
			return 0;
	return v->h->next_ckpt_id == 1;
}

/*
 * restart_empty -- CKPT_LATEST on a pool that never had a checkpoint: an
 * empty heap in a segment of our own, as ckpt_create gives. The creator
 * may have died before its first checkpoint; refusing would leave a pool
 * that neither ckpt_open nor ckpt_create (EEXIST) can ever use.
 */
static int
restart_empty(struct ckpt_pool *p, struct cat_view *v)
{
	uint64_t punch;
	int seg = seg_take(p, v, &punch);
	if (seg < 0 || cat_lease_take(p->fd, (uint32_t)seg) < 0) {
		cat_end(&p->cat);
		return -1;
	}
	pool_new_heap_entry(p, v, (uint32_t)seg);
	if (cat_commit(&p->cat) < 0)
		return -1;
	if (punch)
		seg_punch(p, &p->seg, 1);
	if (pool_attach_segment(p, POOL_ATTACH_FORMAT, p->seg, 0, 0) < 0) {
		seg_release(p, p->seg, SEG_OURS);
		return -1;
	}
	return 0;
}

/* claim -- step 2: take a segment and claim it BUSY for the restarted heap */
static int
claim(struct ckpt_pool *p, struct cat_view *v, const struct cat_entry *src)
{
	uint64_t punch;             /* segcopy punches the whole segment anyway */
	int seg = seg_take(p, v, &punch);
	if (seg < 0 || cat_lease_take(p->fd, (uint32_t)seg) < 0)
		return -1;
	p->seg = (uint32_t)seg;
	/* a restarted heap continues the checkpoint's lineage (format.h) */
	p->life = v->h->next_life++;
	p->lineage = src->lineage;
	p->restarted_from = src->ckpt_id;
	struct cat_entry *e = &v->e[seg];
	e->life = p->life;
	e->lineage = p->lineage;
	e->state = CAT_BUSY;
	e->owner = p->self;
	e->time_ns = now_ns();
	return seg;
}

/*
 * fill -- step 3: copy the checkpoint into our segment; on a full
 * filesystem, reclaim dead segments (a crashed process's heap) and try once
 * more before the restart is refused
 */
static int
fill(struct ckpt_pool *p, uint32_t src, const struct cat_entry *srce)
{
	int cloned;
	const struct segcopy_opts o = { .kind = SEGCOPY_KIND_PROBE,
		.mid_point = "restart:mid-copy" };
	int rc = segcopy(p->fd, seg_off(p, src), seg_off(p, p->seg), srce->used,
			p->hdr.seg_size, SEGCOPY_ANY, &o, &cloned);
	if (rc < 0 && errno == ENOSPC && seg_space_freed(p))
		rc = segcopy(p->fd, seg_off(p, src), seg_off(p, p->seg), srce->used,
				p->hdr.seg_size, SEGCOPY_ANY, &o, &cloned);
	return rc;
}

/* publish -- step 4: the filled segment becomes LIVE, restarted from src */
static int
publish(struct ckpt_pool *p, uint32_t src, const struct cat_entry *srce)
{
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	struct cat_entry *e = &v.e[p->seg];
	e->state = CAT_LIVE;
	e->source = src;
	e->ckpt_id = srce->ckpt_id;
	e->used = srce->used;
	e->time_ns = now_ns();
	return cat_commit(&p->cat);
}

/*
 * restart_image -- cow mode: steps 2-4 in one: the new live entry is LIVE
 * at once, in memory, pinning the checkpoint it maps (source); nothing is
 * copied. uffd >= 0 (consumed): the heap is attached lazily (engine/lazy.c);
 * a checkpoint still being pulled, with remote/filling.c's fetch hook.
 */
static int
restart_image(struct ckpt_pool *p, struct cat_view *v, uint32_t src, const uint64_t *sums,
		int uffd)
{
	struct cat_entry srce = v->e[src];
	struct lazy_fetch fetch = { .fetch = fill_client_fetch, .end = fill_client_end };
	if (srce.state == CAT_FILLING)
		fetch.arg = fill_client_open(p, src, srce.ckpt_id, srce.used);
	if ((srce.state == CAT_FILLING && !fetch.arg) || claim(p, v, &srce) < 0) {
		cat_end(&p->cat);
		if (uffd >= 0)
			close(uffd);
		fill_client_end(fetch.arg);
		return -1;
	}
	struct cat_entry *e = &v->e[p->seg];
	e->state = CAT_LIVE;
	e->flags = CAT_F_IN_MEMORY;
	e->source = src;
	e->ckpt_id = srce.ckpt_id;
	if (p->hdr.minor >= POOL_MINOR_PERSISTED_PAGES)
		e->base_id = srce.ckpt_id;      /* what ckpt_persist tags pages with */
	e->used = srce.used;
	int rc = cat_commit(&p->cat);
	if (rc == 0 && image_prepare(p, sums) == 0) {
		if (uffd >= 0)
			image_lazy(p, uffd, fetch.arg ? &fetch : NULL);
		else
			fill_client_end(fetch.arg);
		fetch.arg = NULL;
		uffd = -1;
		rc = pool_attach_segment(p, POOL_ATTACH_HEAP, src, srce.used, srce.ckpt_id);
		if (rc < 0)
			seg_release(p, p->seg, SEG_OURS);
	} else if (rc == 0) {
		seg_release(p, p->seg, SEG_OURS);
		rc = -1;
	}
	if (uffd >= 0)
		close(uffd);
	fill_client_end(fetch.arg);
	return rc;
}

/*
 * unseal -- step 1 of a sealed restart: decrypt checkpoint src into the
 * heap's memory, every chunk authenticated
 */
static int
unseal(struct ckpt_pool *p, const struct cat_entry *e, uint32_t src)
{
	if (!(e->flags & CAT_F_SEALED))
		return ckpt_err_set(EINVAL, "checkpoint %llu (segment %u) of sealed pool %s "
				"is not sealed: the catalog is damaged",
				(unsigned long long)e->ckpt_id, src, p->path);
	if (checkpoint_in_file(p, e, src) < 0)
		return -1;
	if (e->used <= p->hdr.seg_size)
		map_sealed_populate(&p->heap_map, (size_t)e->used);
	return seal_read_image(p->fd, &p->hdr, src, e, p->seal, p->heap_map.addr);
}

/* produce_sealed -- the lazy fill's source (engine/lazy.h): decrypted, authenticated chunks */
static int
produce_sealed(void *ctx, uint64_t off, uint64_t len, void *buf)
{
	return seal_reader_read(ctx, off, len, buf);
}

/*
 * unseal_lazily -- step 1 of a lazy sealed restart: the record of
 * checkpoint src checked, then the heap handed to a lazy fill (uffd,
 * consumed) whose thread decrypts each chunk on first access into a
 * buffer of its own and copies it into the heap (engine/lazy.c), a chunk
 * that fails its tag fenced; 0, or -1 with the heap as empty as before
 * (the caller then restarts eagerly)
 */
static int
unseal_lazily(struct ckpt_pool *p, const struct cat_entry *e, uint32_t src, int uffd)
{
	struct seal_reader *rd = NULL;
	if (!(e->flags & CAT_F_SEALED) || e->used == 0 || checkpoint_in_file(p, e, src) < 0 ||
	    !(rd = seal_reader_open(p->fd, &p->hdr, src, e, p->seal))) {
		close(uffd);
		return -1;
	}
	char what[160];
	snprintf(what, sizeof(what), "pool %s, checkpoint %llu", p->path,
		(unsigned long long)e->ckpt_id);
	/* the heap's metadata, which the attach reads, is checked now: a
	 * chunk of it that fails refuses the checkpoint as an eager restart
	 * does, instead of killing ckpt_open with SIGBUS */
	const struct lazy_source from = { .produce = produce_sealed, .ctx = rd,
		.first = heap_meta_len(p->hdr.seg_size) };
	int done;
	p->fill = lazy_start(uffd, -1, 0, p->heap_map.addr, e->used, NULL, what, &done,
			NULL, &from);
	if (p->fill) {
		p->fill_src = rd;
		return 0;
	}
	seal_reader_free(rd);
	if (done)
		return 0;       /* no thread: every chunk decrypted already */
	/* fenced chunks, bytes of a failed try: start again from empty memory */
	return map_sealed_heap(&p->heap_map, p->hdr.seg_size, p->heap_map.addr) < 0 ? -2 : -1;
}

/*
 * restart_sealed -- a sealed pool: decrypt the checkpoint into the heap's
 * memory (under the catalog lock, as choose() verifies); CKPT_LATEST falls
 * back to an older checkpoint when one fails, saying so on stderr (it may
 * have been tampered with), the memory cleared between tries so no
 * unauthenticated byte survives; then one commit publishes the new entry
 * LIVE, in memory, restarted from it. Nothing is written to the segment.
 * With uffd >= 0 (consumed) the restart is lazy where it can be
 * (unseal_lazily): the record is checked now, each chunk on first access,
 * and a chunk that fails is fenced instead of refusing the checkpoint.
 */
static int
restart_sealed(struct ckpt_pool *p, struct cat_view *v, ckpt_id from, int uffd)
{
	int src = find_checkpoint(v, from);
	if (src < 0 || map_sealed_heap(&p->heap_map, p->hdr.seg_size,
			(void *)(uintptr_t)p->hdr.base) < 0) {
		cat_end(&p->cat);
		if (uffd >= 0)
			close(uffd);
		return src < 0 ? no_checkpoint(p, from) : -1;
	}
	int lazy = uffd >= 0 ? unseal_lazily(p, &v->e[src], (uint32_t)src, uffd) : -1;
	if (lazy == -2) {
		cat_end(&p->cat);
		return -1;
	}
	while (lazy < 0 && unseal(p, &v->e[src], (uint32_t)src) < 0) {
		int next = from == CKPT_LATEST ? older_checkpoint(v, v->e[src].ckpt_id) : -1;
		if (next < 0 || map_sealed_clear(&p->heap_map) < 0) {
			if (from == CKPT_LATEST)
				ckpt_err_prefix("pool %s has no valid checkpoint; last tried: ",
						p->path);
			cat_end(&p->cat);
			return -1;
		}
		fprintf(stderr, "libckpt: pool %s: %s; restarting from the older "
			"checkpoint %llu\n", p->path, ckpt_errormsg(),
			(unsigned long long)v->e[next].ckpt_id);
		src = next;
	}
	struct cat_entry srce = v->e[src];
	if (claim(p, v, &srce) < 0) {
		cat_end(&p->cat);
		return -1;
	}
	struct cat_entry *e = &v->e[p->seg];
	e->state = CAT_LIVE;
	e->flags = CAT_F_IN_MEMORY;
	e->ckpt_id = srce.ckpt_id;
	e->used = srce.used;
	if (cat_commit(&p->cat) < 0)
		return -1;
	if (pool_attach_segment(p, 0, 0, 0, 0) < 0) {
		seg_release(p, p->seg, SEG_OURS);
		return -1;
	}
	return 0;
}

int
restart_into(struct ckpt_pool *p, ckpt_id from)
{
	struct cat_view v;
	uint64_t *sums = NULL;
	int uffd = -1, lazy = 0;
	if (p->fork_mode == CKPT_FORK_COW) {
		sums = calloc(p->hdr.seg_size / SUMS_PAGE, sizeof(*sums));
		if (!sums)
			return ckpt_err_set(ENOMEM, "out of memory");
		/* a lazy restart where the kernel lets us (lazy.c says what it needs) */
		if (!p->eager_restart && (p->hdr.flags & POOL_F_SUMS_AREA))
			uffd = lazy_open();
	} else if (p->seal && !p->eager_restart) {
		uffd = lazy_open();     /* a lazy sealed restart (restart_sealed) */
	}
	/* format 1.9: a checkpoint is verified, mapped and copied as its
	 * segment's bytes, which a logged one's are once folded; a writer may
	 * publish another logged one before the lock is ours: fold again */
	int refold = 0;
again:
	fold_all(p);
	if (cat_begin(&p->cat, &v) < 0) {
		free(sums);
		if (uffd >= 0)
			close(uffd);
		return -1;
	}
	if (from == CKPT_LATEST && never_checkpointed(&v)) {
		free(sums);
		if (uffd >= 0)
			close(uffd);
		return restart_empty(p, &v);
	}
	if (p->seal)
		return restart_sealed(p, &v, from, uffd);
	int src = choose(p, &v, from, sums, uffd >= 0 ? &lazy : NULL, refold < 3 ? &refold : NULL);
	if (src == -2) {
		cat_end(&p->cat);
		clear_sums(p, sums);
		goto again;
	}
	if (uffd >= 0 && !lazy) {
		close(uffd);
		uffd = -1;
	}
	if (src >= 0 && sums) {
		int rc = restart_image(p, &v, (uint32_t)src, sums, uffd);
		free(sums);
		return rc;
	}
	if (uffd >= 0)
		close(uffd);
	free(sums);
	int seg = src < 0 ? -1 : claim(p, &v, &v.e[src]);
	if (seg < 0) {
		cat_end(&p->cat);
		return -1;
	}
	struct cat_entry srce = v.e[src];
	if (cat_commit(&p->cat) < 0)
		return -1;

	/* 3. fill outside the lock */
	if (fill(p, (uint32_t)src, &srce) < 0 ||
	    publish(p, (uint32_t)src, &srce) < 0 || pool_attach_segment(p, POOL_ATTACH_HEAP, 0, 0, 0) < 0) {
		seg_release(p, p->seg, SEG_OURS);
		return -1;
	}
	return 0;
}
