/*
 * segment.c -- segment bookkeeping (see segment.h).
 *
 * Who may reuse a segment is the question every path asks, and it has one
 * answer here: a FREE segment first; otherwise one whose owner is provably
 * gone (cat_entry_dead: the process is gone, or nobody holds the lease of
 * a heap or of a fork reservation), oldest first and garbage before heaps,
 * so a crashed process's heap stays inspectable for as long as the pool
 * has room. Checkpoints are never taken: only retention frees them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "filesize.h"
#include "owner.h"
#include "segcopy.h"
#include "segment.h"

int
seg_dead(const struct ckpt_pool *p, const struct cat_view *v, uint32_t i)
{
	const struct cat_entry *e = &v->e[i];
	/* a fork reservation belongs to whoever holds its lease (the parent
	 * while it fills it, then the child until it claims it), whatever
	 * owner it records: one of our own can be abandoned (fork failed) */
	int fork_pending = e->state == CAT_BUSY && (e->flags & CAT_F_FORK_PENDING);
	if (!fork_pending && owner_equal(&e->owner, &p->self))
		return 0;
	return cat_entry_dead(p->fd, e, i);
}

int
seg_pinned(const struct ckpt_pool *p, const struct cat_view *v, uint32_t i)
{
	if (p->eng && p->eng_base == i)
		return 1;
	/* a young heap: FREE, held by its process's lease (format 1.5) */
	if (v->e[i].state == CAT_FREE && (p->hdr.flags & POOL_F_YOUNG_HEAPS) && p->fd >= 0 &&
	    cat_lease_held(p->fd, i))
		return 1;
	/* a heap that logs (format 1.9) maps source and has its persisted
	 * pages, and its fold, over the checkpoint base_id names: both stay */
	int by_id = (p->hdr.flags & POOL_F_LOG_AREA) && v->e[i].state == CAT_CKPT;
	for (uint32_t j = 0; j < v->n; j++) {
		const struct cat_entry *e = &v->e[j];
		if ((e->state == CAT_LIVE || e->state == CAT_BUSY) &&
		    (e->flags & CAT_F_IN_MEMORY) && j != i &&
		    (e->source == i || (by_id && e->base_id == v->e[i].ckpt_id)) &&
		    !seg_dead(p, v, j))
			return 1;
	}
	return p->fd >= 0 && cat_pin_held(p->fd, i);
}

/* keep_pinned -- the catalog's keep hook: a pinned segment stays in the file */
static int
keep_pinned(void *arg, const struct cat_view *v, uint32_t i)
{
	return seg_pinned(arg, v, i);
}

void
seg_keep_hook(struct ckpt_pool *p)
{
	p->cat.keep = keep_pinned;
	p->cat.keep_arg = p;
}

/* more_reclaimable -- 1 if dead entry a should go before dead entry b */
static int
more_reclaimable(const struct cat_entry *a, const struct cat_entry *b)
{
	if (a->state != b->state)
		return a->state == CAT_BUSY;
	return a->time_ns < b->time_ns;
}

/* most_reclaimable -- the dead entry to reuse first (more_reclaimable), or -1 */
static int
most_reclaimable(const struct ckpt_pool *p, const struct cat_view *v)
{
	int best = -1;
	for (uint32_t i = 0; i < v->n; i++)
		if (seg_dead(p, v, i) && !seg_pinned(p, v, i) &&
		    (best < 0 || more_reclaimable(&v->e[i], &v->e[best])))
			best = (int)i;
	return best;
}

int
seg_take(struct ckpt_pool *p, struct cat_view *v, uint64_t *punch)
{
	*punch = 0;
	for (uint32_t i = 0; i < v->n; i++)
		if (v->e[i].state == CAT_FREE && !seg_pinned(p, v, i))
			return (int)i;
	int best = most_reclaimable(p, v);
	if (best < 0)
		return ckpt_err_set(ENOSPC, "no free segment: all %u segments of the pool are in use",
				v->n);
	*punch = p->hdr.seg_size;
	cat_free_entry(&v->e[best]);
	return best;
}

int
seg_take_young(struct ckpt_pool *p, const struct cat_view *v)
{
	struct stat st;
	if (fstat(p->fd, &st) < 0)
		return ckpt_err_set(errno, "cannot stat the pool file: %s", strerror(errno));
	int past = -1;
	for (uint32_t i = 0; i < v->n; i++) {
		if (v->e[i].state != CAT_FREE || seg_pinned(p, v, i))
			continue;
		if (fsize_covers(&p->hdr, (uint64_t)st.st_size, i))
			return (int)i;
		if (past < 0)
			past = (int)i;
	}
	if (past < 0)
		return ckpt_err_set(ENOSPC, "no free segment for a young heap");
	/* with headroom (format 1.8): the young heaps after us take segments
	 * inside the file, whose size our publication makes durable */
	uint64_t to = fsize_extend_to(&p->cat, seg_off(p, (uint32_t)past) + p->hdr.seg_size);
	if (ftruncate(p->fd, (off_t)to) < 0)
		return ckpt_err_set(errno, "cannot extend the pool file: %s", strerror(errno));
	return past;
}

unsigned
seg_free_oldest_dead(struct ckpt_pool *p, struct cat_view *v, uint32_t *out, unsigned max)
{
	unsigned n = 0;
	while (n < max) {
		int best = most_reclaimable(p, v);
		if (best < 0)
			break;
		cat_free_entry(&v->e[best]);
		out[n++] = (uint32_t)best;
	}
	return n;
}

unsigned
seg_free_dead(struct ckpt_pool *p, struct cat_view *v, uint32_t *out)
{
	unsigned n = 0;
	for (uint32_t i = 0; i < v->n; i++) {
		if (seg_dead(p, v, i) && !seg_pinned(p, v, i)) {
			cat_free_entry(&v->e[i]);
			out[n++] = i;
		}
	}
	return n;
}

int
seg_reclaim(struct ckpt_pool *p, unsigned *n)
{
	struct cat_view v;
	if (n)
		*n = 0;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	uint32_t freed[POOL_MAX_SEGMENTS];
	unsigned k = seg_free_dead(p, &v, freed);
	if (k == 0) {
		cat_end(&p->cat);
		return 0;
	}
	if (cat_commit(&p->cat) < 0)
		return -1;
	seg_punch(p, freed, k);
	if (n)
		*n = k;
	return 0;
}

int
seg_space_freed(struct ckpt_pool *p)
{
	char msg[CKPT_ERRMSG_MAX];
	snprintf(msg, sizeof(msg), "%s", ckpt_errormsg());
	unsigned n = 0;
	if (seg_reclaim(p, &n) == 0 && n > 0)
		return 1;
	ckpt_err_set(ENOSPC, "%s", msg);
	return 0;
}

void
seg_punch(const struct ckpt_pool *p, const uint32_t *segs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		segcopy_punch(p->fd, seg_off(p, segs[i]), p->hdr.seg_size);
}

int
seg_zero(const struct ckpt_pool *p, uint32_t seg)
{
	return fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			(off_t)seg_off(p, seg), (off_t)p->hdr.seg_size) == 0;
}

/*
 * Clearing pages (seg_clear). A zero-range of the file drops the range's
 * pages from the page cache, and each page the program then touches is a
 * miss: a page allocated and zeroed, the extent's conversion, its
 * writeback. A compiler's processes map and unmap the same megabytes of a
 * segment the last process left cached, so the pages still cached are
 * cleared in place (mincore says which; it only guides the cost: a page
 * evicted meanwhile reads as zeroes after either path).
 *
 * In place means written through the file (pwritev from one zero page),
 * not through the mapping: the program may have taken the write permission
 * away (mprotect PROT_NONE, then MADV_DONTNEED, as allocators decommit),
 * and a store would then be SIGSEGV. The page cache is one: the shared
 * mapping reads what the write left, and a write to a cached page costs
 * about what the kernel's zeroing of a fresh one does. A write is also an
 * error, never SIGBUS, where the filesystem has no space for a block. Each
 * way stands in for the other when it fails; a memset is the last resort
 * (the range's blocks are reserved: the heap grew over it, pool_grow).
 */
#define CLEAR_PAGE ((size_t)4096)
#define CLEAR_BATCH 1024u                       /* pages one mincore call asks */
#define CLEAR_IN_PLACE_MAX ((size_t)8 << 20)    /* larger: zero-ranged whole */
#define CLEAR_IOV 256u                          /* zero pages one pwritev writes */

/* write_zeroes -- write len zero bytes at off of fd: 0, or -1 (errno) */
static int
write_zeroes(int fd, off_t off, size_t len)
{
	static const char zero[CLEAR_PAGE];
	struct iovec iov[CLEAR_IOV];
	while (len) {
		unsigned n = 0;
		for (size_t l = len; n < CLEAR_IOV && l; n++) {
			iov[n].iov_base = (void *)zero;
			iov[n].iov_len = l < CLEAR_PAGE ? l : CLEAR_PAGE;
			l -= iov[n].iov_len;
		}
		ssize_t w = pwritev(fd, iov, (int)n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += w;
		len -= (size_t)w;
	}
	return 0;
}

/* zero_range -- a zero-range of [off, off + len) of fd: 0, or -1 (errno) */
static int
zero_range(int fd, off_t off, size_t len)
{
	return fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, (off_t)len);
}

/* clear_run -- clear one run of pages, all cached or all not (seg_clear) */
static void
clear_run(const struct ckpt_pool *p, char *a, size_t len, int cached)
{
	off_t off = (off_t)(seg_off(p, p->seg) + ((uintptr_t)a - p->hdr.base));
	int (*first)(int, off_t, size_t) = cached ? write_zeroes : zero_range;
	int (*then)(int, off_t, size_t) = cached ? zero_range : write_zeroes;
	if (first(p->fd, off, len) < 0 && then(p->fd, off, len) < 0)
		memset(a, 0, len);
}

int
seg_clear(const struct ckpt_pool *p, void *addr, size_t len)
{
	if (p->heap_map.kind == MAP_KIND_PMEM || p->heap_map.kind == MAP_KIND_FORCED) {
		clear_run(p, addr, len, 0);     /* no page cache: the file's zero-range */
		return 0;
	}
	if (p->heap_map.kind != MAP_KIND_EMULATED)
		return -1;
	if (len > CLEAR_IN_PLACE_MAX) {
		clear_run(p, addr, len, 0);
		return 0;
	}
	char *a = addr;
	size_t pages = len / CLEAR_PAGE;
	unsigned char vec[CLEAR_BATCH];
	while (pages) {
		size_t n = pages < CLEAR_BATCH ? pages : CLEAR_BATCH;
		if (mincore(a, n * CLEAR_PAGE, vec) < 0)
			memset(vec, 0, n);
		for (size_t i = 0; i < n;) {
			int cached = vec[i] & 1;
			size_t j = i + 1;
			while (j < n && (vec[j] & 1) == cached)
				j++;
			clear_run(p, a + i * CLEAR_PAGE, (j - i) * CLEAR_PAGE, cached);
			i = j;
		}
		a += n * CLEAR_PAGE;
		pages -= n;
	}
	return 0;
}

/* still_ours -- whether seg_release may free entry seg */
static int
still_ours(const struct ckpt_pool *p, const struct cat_entry *e, uint32_t seg,
		enum seg_whose whose)
{
	if (e->state == CAT_FREE || !owner_equal(&e->owner, &p->self))
		return 0;
	if (whose == SEG_OURS)
		return 1;
	return e->state == CAT_BUSY && (e->flags & CAT_F_FORK_PENDING) &&
		e->parent == p->seg && !cat_lease_held(p->fd, seg);
}

void
seg_release(struct ckpt_pool *p, uint32_t seg, enum seg_whose whose)
{
	int saved = errno;
	char msg[CKPT_ERRMSG_MAX];
	snprintf(msg, sizeof(msg), "%s", ckpt_errormsg());
	struct cat_view v;
	if (cat_begin(&p->cat, &v) == 0) {
		if (still_ours(p, &v.e[seg], seg, whose)) {
			cat_free_entry(&v.e[seg]);
			if (cat_commit(&p->cat) == 0)
				seg_punch(p, &seg, 1);
		} else {
			cat_end(&p->cat);
		}
	}
	ckpt_err_set(saved, "%s", msg);
}
