/*
 * inspect_persist.c -- what a cow heap left in the file: its base
 * checkpoint with the pages ckpt_persist wrote laid over it (format 1.7;
 * the writer is engine/persist.c, the reasons docs/DESIGN.md).
 *
 * A live entry kept in memory (fork mode cow) names the checkpoint its
 * heap maps (source) and the one its pages are persisted over (base_id:
 * the same one, or in a pool of format 1.9 whose heap logs and so no
 * longer re-bases, the last one it published) and holds, in its
 * own segment, the pages its process persisted, each with its sum in the
 * segment's page-sum slot, seeded with the heap's life and base_id. The
 * heap as its process last made it durable is the base's bytes with every
 * page whose sum matches under that seed put over them. A page that does
 * not match was torn by a crash, persisted under an older base (a later
 * checkpoint holds it), or left by an earlier life of the segment: the
 * base's page stands. The file is untrusted: sums are checked page by
 * page, every read is bounded by the segment and the file, and the heap
 * the result holds is checked by the caller (heap_check) like any other.
 *
 * The base is gone when the checkpoint source names is not the one
 * base_id says (retention may drop the base of a heap that died: only a
 * running heap pins it); then nothing is shown (ENOENT, said why).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "inspect.h"
#include "layout.h"
#include "sums.h"

#define PAGE ((uint64_t)SUMS_PAGE)
#define SLOT_BATCH 4096u        /* sums read at a time */

int
inspect_is_cow_heap(const struct inspect *in, uint32_t seg)
{
	if (!in->cat.h || seg >= in->cat.n)
		return 0;
	const struct cat_entry *e = &in->cat.e[seg];
	return (e->state == CAT_LIVE || e->state == CAT_BUSY) && (e->flags & CAT_F_IN_MEMORY) &&
		!(in->hdr.flags & POOL_F_SEALED) && (in->hdr.flags & POOL_F_SUMS_AREA) &&
		in->hdr.minor >= POOL_MINOR_PERSISTED_PAGES;
}

/*
 * base_of -- the base checkpoint's segment (*bseg, CAT_NONE for an empty
 * base) and used bytes; -1 (ENOENT, message) when the base is gone
 */
static int
base_of(const struct inspect *in, const struct cat_entry *e, uint32_t *bseg, uint64_t *bused)
{
	*bseg = CAT_NONE;
	*bused = 0;
	const struct cat_entry *b = e->source < in->cat.n ? &in->cat.e[e->source] : NULL;
	if (e->base_id == 0) {
		/* no checkpoint base (a new heap, or a fork child of one): empty;
		 * or an entry a libckpt older than 1.7 wrote: the checkpoint it
		 * maps, and nothing persisted */
		if (b && b->state == CAT_CKPT && !(b->flags & CAT_F_SEALED)) {
			*bseg = e->source;
			*bused = b->used;
		}
		return 0;
	}
	/* a heap that logs (format 1.9) does not re-base: it maps source while
	 * its pages are persisted over the last checkpoint it published */
	uint32_t at = e->source;
	if (in->hdr.flags & POOL_F_LOG_AREA)
		for (uint32_t i = 0; (!b || b->ckpt_id != e->base_id) && i < in->cat.n; i++)
			if (in->cat.e[i].state == CAT_CKPT && in->cat.e[i].ckpt_id == e->base_id) {
				b = &in->cat.e[i];
				at = i;
			}
	if (!b || b->state != CAT_CKPT || b->ckpt_id != e->base_id || (b->flags & CAT_F_SEALED))
		return ckpt_err_set(ENOENT, "its base, checkpoint %" PRIu64 ", is gone (dropped "
				"after the heap's process ended): the pages it persisted cannot "
				"be shown without it", e->base_id);
	*bseg = at;
	*bused = b->used;
	return 0;
}

/* overlay -- put the pages of seg whose sums match seed over buf; counts in *info */
static int
overlay(struct inspect *in, uint32_t seg, uint64_t seed, char *buf, uint64_t *top,
		struct inspect_cow_info *info)
{
	uint64_t npages = in->hdr.seg_size / PAGE;
	uint64_t so = layout_seg_off(&in->hdr, seg), slot = layout_sums_off(&in->hdr, seg);
	uint64_t *sums = malloc(SLOT_BATCH * sizeof(uint64_t));
	char *page = malloc(PAGE);
	int rc = 0;
	if (!sums || !page)
		rc = ckpt_err_set(ENOMEM, "out of memory");
	for (uint64_t first = 0; rc == 0 && first < npages; first += SLOT_BATCH) {
		uint64_t n = npages - first < SLOT_BATCH ? npages - first : SLOT_BATCH;
		memset(sums, 0, n * sizeof(uint64_t));
		ssize_t have = inspect_pread(in->fd, sums, n * sizeof(uint64_t),
				slot + first * sizeof(uint64_t));
		if (have < 0) {
			rc = ckpt_err_set(errno, "cannot read the page sums of segment %u: %s",
					seg, strerror(errno));
			break;
		}
		if ((uint64_t)have < n * sizeof(uint64_t))
			npages = first + n;     /* the file ends in the slots: the last batch */
		for (uint64_t i = 0; i < n; i++) {
			if (sums[i] == 0)
				continue;       /* a hole: never persisted */
			uint64_t pg = first + i;
			ssize_t got = inspect_pread(in->fd, page, PAGE, so + pg * PAGE);
			if (got < 0) {
				rc = ckpt_err_set(errno, "cannot read segment %u: %s", seg,
						strerror(errno));
				break;
			}
			if ((uint64_t)got < PAGE || sums_persist_page(page, seed) != sums[i]) {
				info->stale++;
				continue;
			}
			memcpy(buf + pg * PAGE, page, PAGE);
			info->pages++;
			if ((pg + 1) * PAGE > *top)
				*top = (pg + 1) * PAGE;
		}
	}
	free(sums);
	free(page);
	return rc;
}

int
inspect_read_cow_heap(struct inspect *in, uint32_t seg, void **bufp, size_t *lenp,
		struct inspect_cow_info *info)
{
	struct inspect_cow_info local;
	if (!info)
		info = &local;
	memset(info, 0, sizeof(*info));
	*bufp = NULL;
	*lenp = 0;
	const struct cat_entry *e = &in->cat.e[seg];
	info->base_id = e->base_id;
	uint32_t bseg;
	uint64_t bused;
	if (base_of(in, e, &bseg, &bused) < 0)
		return -1;
	info->base_seg = bseg;
	if (bused > in->hdr.seg_size)
		return ckpt_err_set(EINVAL, "its base checkpoint's used bytes exceed the segment");
	size_t cap = (size_t)in->hdr.seg_size;
	char *buf = mmap(NULL, cap, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (buf == MAP_FAILED)
		return ckpt_err_set(errno, "cannot allocate %zu bytes for segment %u: %s", cap,
				seg, strerror(errno));
	uint64_t top = 0;
	if (bseg != CAT_NONE) {
		ssize_t got = inspect_pread(in->fd, buf, (size_t)bused, layout_seg_off(&in->hdr, bseg));
		if (got < 0 || (uint64_t)got < bused) {
			int err = got < 0 ? errno : EIO;
			munmap(buf, cap);
			return ckpt_err_set(err, "cannot read its base (segment %u): %s", bseg,
					got < 0 ? strerror(err) : "the file ends first (truncated)");
		}
		if (inspect_overlay(in, bseg, buf, bused, 0) < 0) {
			munmap(buf, cap);
			return -1;
		}
		top = bused;
	}
	uint64_t seed = sums_persist_seed(e->life, e->base_id);
	if (e->base_id != 0 || bseg == CAT_NONE) {
		if (overlay(in, seg, seed, buf, &top, info) < 0) {
			int saved = errno;
			munmap(buf, cap);
			errno = saved;
			return -1;
		}
	}
	/* keep [0, top) (at least a page: inspect_free_heap unmaps len or 1) */
	size_t keep = top ? (size_t)top : (size_t)PAGE;
	if (keep < cap)
		munmap(buf + keep, cap - keep);
	*bufp = buf;
	*lenp = (size_t)top;
	return 0;
}
