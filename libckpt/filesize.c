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
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filesize.h"
#include "layout.h"
#include "testhook.h"

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

int
fsize_cover(struct catalog *c, const struct cat_view *v, const struct cat_view *old)
{
	if (!(c->hdr.flags & POOL_F_SIZE_FOLLOWS))
		return 0;
	uint64_t need = fsize_need(c, v), size;
	if (file_size(c->fd, &size) < 0)
		return ckpt_err_set(errno, "cannot stat the pool file: %s", strerror(errno));
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
	test_point("catalog:before-trim");
	if (ftruncate(c->fd, (off_t)need) < 0)
		return;
}
