/*
 * filesize.c -- the pool file's apparent size follows the segments in use.
 *
 * A pool of format 1.1 was created at its full size, data_off + heap_size
 * x max_segments: sparse, but `ls -l` showed 68 GB for a default pool and
 * cp, tar and backup tools tripped on it. A pool of format 1.3
 * (POOL_F_SIZE_FOLLOWS) keeps one invariant instead:
 *
 *   the file covers every segment the current catalog names as not FREE
 *   (and every FREE one a heap still maps: a pinned image), whole.
 *
 * Only a catalog commit changes which segments are in use, so the commit
 * keeps the invariant, under the catalog lock:
 *   - before it publishes (fsize_cover): if the new catalog needs more, the
 *     file is extended (ftruncate: a hole, no blocks) and the size made
 *     durable with fdatasync, so a crash can never leave a published
 *     catalog naming a segment past the end of the file. A crash after
 *     the extension and before the publish leaves the file longer than
 *     needed, which is harmless; the next commit trims it. The size is
 *     synced whenever the new catalog names a segment higher than the
 *     published one did, even if the file is long enough already: a young
 *     heap (format 1.5, attach.c) extends the file under the catalog lock
 *     without a sync, so the length seen may not be on the disk;
 *   - after it published (fsize_trim): if the new catalog needs less (the
 *     top segments were freed), the file is cut back. A crash before the
 *     cut leaves it longer than needed; a cut that reached the disk before
 *     the catalog could not, since the catalog was durable first.
 * Everything else that maps or writes a segment does so only after the
 * commit that gave it a role, so no mapping faults past the end (SIGBUS).
 * A FREE segment above the rest that a heap still maps (a cow image pinned
 * without a catalog entry, a young heap) is kept through the keep hook the
 * pool layer registers.
 *
 * A truncated file (the invariant broken from outside) is found where a
 * segment is read: restart checks a checkpoint lies in the file before it
 * maps it, and ckpt-inspect verify reports every segment past the end.
 * What remains: a segment in use counts its whole seg_size towards the
 * apparent size, however little of it the heap uses (its holes take no
 * disk space), and a freed segment below the highest one in use stays in
 * the size (as a hole).
 *
 * The durable size (format 1.8, pool minor >= POOL_MINOR_DURABLE_SIZE).
 * The sync above is an fdatasync of the whole file: it also writes back
 * every dirty page of it, the heaps of processes that exited without a
 * checkpoint (nothing promises their bytes durable) and the publisher's
 * own heap. Under ckpt-run a young heap publishes into a segment past the
 * end almost every time, so a python3 run paid about half a second for
 * other processes' garbage. So the catalog records the size it knows
 * durable (cat_hdr.durable_size, stamped with the generation that recorded
 * it: format.h) and the file keeps headroom:
 *   - a commit syncs only when the catalog it publishes names a segment
 *     that ends past the recorded durable size (or the record is stale:
 *     an older libckpt committed, or the catalog was repaired);
 *   - when it extends the file, it extends it by headroom past what it
 *     needs (fsize_want: FSIZE_HEADROOM segments or a quarter of those in
 *     use, whichever is more, up to max_segments), and so does a young
 *     heap that takes a segment past the end (fsize_extend_to, unsynced);
 *     young heaps take segments inside the file first, so their
 *     publications find the size durable already; after a sync the record
 *     is the file's size then;
 *   - the trim cuts only a file longer than twice that headroom, back to
 *     fsize_want, and never below the recorded durable size: a commit that
 *     will cut lowers the record in the catalog it publishes, which is
 *     durable before the cut, so no durable catalog ever claims more than
 *     the file can have on the disk.
 * The claim is only ever made after the fdatasync that earned it
 * returned, and travels in the catalog copy, which is itself durable
 * before the word that names it. The crash-state suite checks it
 * (docs/CRASH-STATES.md): every workload's pool has it, and
 * CKPT_TEST_SKIP_SIZE_SYNC, which records a size without syncing it, must
 * make states fail.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filesize.h"
#include "layout.h"
#include "testhook.h"

/* segments of headroom an extension adds at least (format 1.8) */
#define FSIZE_HEADROOM 4u

int
fsize_covers(const struct pool_hdr *hdr, uint64_t size, uint32_t i)
{
	return i < hdr->max_segments && layout_seg_off(hdr, i) + hdr->seg_size <= size;
}

uint64_t
fsize_need(struct catalog *c, const struct cat_view *v)
{
	for (uint32_t i = v->n; i-- > 0;)
		if (v->e[i].state != CAT_FREE || (c->keep && c->keep(c->keep_arg, v, i)))
			return layout_seg_off(&c->hdr, i) + c->hdr.seg_size;
	return c->hdr.data_off;
}

/* file_size -- the file's size now, or -1 */
static int
file_size(int fd, uint64_t *size)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	*size = (uint64_t)st.st_size;
	return 0;
}

uint64_t
fsize_named(const struct pool_hdr *hdr, const struct cat_view *v)
{
	for (uint32_t i = v->n; i-- > 0;)
		if (v->e[i].state != CAT_FREE)
			return layout_seg_off(hdr, i) + hdr->seg_size;
	return hdr->data_off;
}

/* durable_tracked -- 1 if the pool records its durable size (format 1.8) */
static int
durable_tracked(const struct catalog *c)
{
	return c->hdr.minor >= POOL_MINOR_DURABLE_SIZE;
}

/* durable_of -- the durable size catalog copy v records, 0 when its stamp is stale */
static uint64_t
durable_of(const struct cat_view *v)
{
	return v->h->durable_gen == v->h->generation ? v->h->durable_size : 0;
}

/* segs_to -- segments of hdr a file of size bytes covers whole */
static uint64_t
segs_to(const struct pool_hdr *hdr, uint64_t size)
{
	return size > hdr->data_off ? (size - hdr->data_off) / hdr->seg_size : 0;
}

/*
 * fsize_want -- the size an extension gives a file that must be need bytes:
 * need plus headroom (FSIZE_HEADROOM segments or a quarter of those need
 * covers, the larger), within the pool's max_segments; times is 1 for the
 * extension, 2 for the length past which the trim cuts
 */
static uint64_t
fsize_want(const struct pool_hdr *hdr, uint64_t need, unsigned times)
{
	uint64_t n = segs_to(hdr, need + hdr->seg_size - 1);
	uint64_t room = n / 4 > FSIZE_HEADROOM ? n / 4 : FSIZE_HEADROOM;
	n += times * room;
	if (n > hdr->max_segments)
		n = hdr->max_segments;
	uint64_t want = hdr->data_off + n * hdr->seg_size;
	return want > need ? want : need;
}

uint64_t
fsize_extend_to(const struct catalog *c, uint64_t need)
{
	/* the self-test skips the sync, and keeps no headroom so that its
	 * workload reaches a growth */
	if (!durable_tracked(c) || test_flag("CKPT_TEST_SKIP_SIZE_SYNC"))
		return need;
	return fsize_want(&c->hdr, need, 1);
}

/*
 * cover_tracked -- fsize_cover for a pool of format 1.8: sync only when v
 * names a segment past the durable size old records; record in v the
 * durable size v publishes (lowered to what the trim after it leaves)
 */
static int
cover_tracked(struct catalog *c, struct cat_view *v, const struct cat_view *old,
		uint64_t need, uint64_t size)
{
	uint64_t durable = durable_of(old), named = fsize_named(&c->hdr, v);
	uint64_t want = fsize_extend_to(c, need);
	int skip_sync = test_flag("CKPT_TEST_SKIP_SIZE_SYNC");
	if (size < need) {
		if (ftruncate(c->fd, (off_t)want) < 0)
			goto fail;
		size = want;
	}
	if (named > durable) {
		if (!skip_sync && fdatasync(c->fd) < 0)
			goto fail;
		durable = size;
		test_point("catalog:after-grow");
	}
	/* the trim after this commit (fsize_trim) cuts a file longer than
	 * twice the headroom back to fsize_want, never below the record */
	if (size > fsize_want(&c->hdr, need, 2) && durable > want)
		durable = want;
	v->h->durable_size = durable;
	v->h->durable_gen = old->h->generation + 1;
	return 0;
fail:
	return ckpt_err_set(errno == EFBIG ? ENOSPC : errno,
			"cannot extend the pool file to %llu bytes: %s",
			(unsigned long long)want, strerror(errno));
}

int
fsize_cover(struct catalog *c, struct cat_view *v, const struct cat_view *old)
{
	if (!(c->hdr.flags & POOL_F_SIZE_FOLLOWS))
		return 0;
	uint64_t need = fsize_need(c, v), size;
	if (file_size(c->fd, &size) < 0)
		return ckpt_err_set(errno, "cannot stat the pool file: %s", strerror(errno));
	if (durable_tracked(c))
		return cover_tracked(c, v, old, need, size);
	/* a file long enough may not be durably so where v names more than
	 * the published catalog did: a young heap's extension (format 1.5)
	 * or a crashed one was never synced */
	if (size >= need && fsize_named(&c->hdr, v) <= fsize_named(&c->hdr, old))
		return 0;
	if ((size < need && ftruncate(c->fd, (off_t)need) < 0) || fdatasync(c->fd) < 0)
		return ckpt_err_set(errno == EFBIG ? ENOSPC : errno,
				"cannot extend the pool file to %llu bytes: %s",
				(unsigned long long)need, strerror(errno));
	test_point("catalog:after-grow");
	return 0;
}

void
fsize_trim(struct catalog *c, const struct cat_view *v)
{
	if (!(c->hdr.flags & POOL_F_SIZE_FOLLOWS))
		return;
	uint64_t need = fsize_need(c, v), size;
	if (file_size(c->fd, &size) < 0 || size <= need)
		return;
	if (durable_tracked(c)) {
		/* cut only a file longer than twice the headroom, and never
		 * below the durable size the published catalog records */
		if (size <= fsize_want(&c->hdr, need, 2))
			return;
		need = fsize_want(&c->hdr, need, 1);
		if (need < durable_of(v))
			need = durable_of(v);
		if (size <= need)
			return;
	}
	test_point("catalog:before-trim");
	if (ftruncate(c->fd, (off_t)need) < 0)
		return;
}
