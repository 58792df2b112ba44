/*
 * segcopy.c -- segment-to-segment copies inside one pool file.
 *
 * Preference order, the first that works:
 *   1. a filesystem clone (FICLONERANGE: O(extents), blocks shared until
 *      written; XFS with reflink, btrfs), unless the caller asked for a copy;
 *   2. copy_file_range over the source's data extents only (SEEK_DATA /
 *      SEEK_HOLE, so a big segment holding little copies little);
 *   3. on pmem -- the pool maps with MAP_SYNC (MAP_KIND_PMEM), or the pmem
 *      path is forced for tests (MAP_KIND_FORCED, PMEM_IS_PMEM_FORCE=1) --
 *      through mappings of both ranges with libpmem's pmem_memcpy_nodrain
 *      and one pmem_drain at the end. The destination range is allocated
 *      (fallocate) before it is mapped, so a full filesystem is an ENOSPC
 *      error, never a SIGBUS; a filesystem that cannot allocate ahead gets
 *      path 4 instead;
 *   4. pread/pwrite through a buffer: the path after 2 on an ordinary file,
 *      where a cache flush makes nothing durable (the caller's fdatasync
 *      does, as it does after 2 and after 3 when the pmem path is forced).
 * Paths 3 and 4 are taken only where copy_file_range fails (EXDEV, ENOSYS,
 * EOPNOTSUPP, EINVAL, or copies nothing), and stay taken for the rest of
 * that copy.
 *
 * Data moves in chunks of at most COPY_CHUNK bytes: one copy_file_range or
 * one memcpy each (pread/pwrite go through a 1 MiB buffer), no other system
 * call per chunk. A caller may name a crash point (testhook.h) to fire after
 * the first chunk when more of the range follows; when that point is armed
 * the chunks are COPY_CHUNK_TEST bytes, so the crash tests stop a copy with
 * part of a small heap written.
 *
 * SEGCOPY_UNSHARED skips paths 1 and 2 (copy_file_range clones on XFS and
 * btrfs): the copy owns its blocks, so a later rewrite of a page in place
 * is an overwrite, not a filesystem copy on write.
 *
 * Test-only: CKPT_TEST_NO_OFFLOAD=1 makes paths 1 and 2 unavailable, as on a
 * filesystem and kernel that offer neither (testhook.h). segcopy_stats
 * counts the bytes each path moved.
 */
#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segcopy.h"
#include "testhook.h"

#define COPY_CHUNK ((uint64_t)64 << 20)       /* bound of one copy step */
#define COPY_CHUNK_TEST ((uint64_t)1 << 20)   /* with the mid point armed */
#define PLAIN_BUF ((size_t)1 << 20)           /* pread/pwrite buffer */
#define PAGE ((uint64_t)4096)                 /* mmap offset granularity (x86-64) */

struct segcopy_stats segcopy_stats;

/* stat_add -- count n bytes moved by one path */
static inline void
stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

int
segcopy_can_clone(int fd)
{
	/* a zero-length clone at EOF copies nothing but is refused with
	 * EOPNOTSUPP/EXDEV/EINVAL by filesystems without reflink */
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 0;
	struct file_clone_range r = {
		.src_fd = fd, .src_offset = (uint64_t)st.st_size, .src_length = 0,
		.dest_offset = (uint64_t)st.st_size,
	};
	return ioctl(fd, FICLONERANGE, &r) == 0;
}

void
segcopy_small_cow(int fd)
{
	struct fsxattr fa;
	if (ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0)
		return;
	fa.fsx_xflags |= FS_XFLAG_COWEXTSIZE;
	fa.fsx_cowextsize = 4096;
	int e = errno;
	if (ioctl(fd, FS_IOC_FSSETXATTR, &fa) < 0)
		errno = e;
}

int
segcopy_punch(int fd, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			(off_t)off, (off_t)len) < 0 && errno != EOPNOTSUPP)
		return ckpt_err_set(errno, "cannot punch a hole in the pool: %s",
				strerror(errno));
	return 0;
}

enum copy_path {
	PATH_RANGE,             /* copy_file_range */
	PATH_PMEM,              /* pmem_memcpy_nodrain between sm and dm */
	PATH_PLAIN,             /* pread/pwrite through buf */
};

/*
 * copier -- the state of one segcopy. Offsets handed to the copy functions
 * are relative to src and dst; invariant: they stay below len. sm and dm
 * map all of [src, src+len) and [dst, dst+len) when path is PATH_PMEM.
 */
struct copier {
	int fd;
	uint64_t src, dst, len;
	uint64_t chunk;             /* COPY_CHUNK, or COPY_CHUNK_TEST */
	const char *mid;            /* crash point still to fire, or NULL */
	int kind;                   /* enum map_kind or SEGCOPY_KIND_PROBE */
	enum copy_path path;
	int allocated;              /* [dst, dst+len) already fallocated */
	struct pmap sm, dm;
	char *buf;
};

/*
 * alloc_dst -- back [dst, dst+len) with blocks, so a store through a mapping
 * cannot SIGBUS on a full filesystem: 0 done, 1 the filesystem cannot
 * allocate ahead (EOPNOTSUPP), -1 error (ENOSPC and such)
 */
static int
alloc_dst(int fd, uint64_t dst, uint64_t len)
{
	if (fallocate(fd, 0, (off_t)dst, (off_t)len) == 0)
		return 0;
	if (errno == EOPNOTSUPP)
		return 1;
	return ckpt_err_set(errno, "cannot allocate a segment: %s", strerror(errno));
}

/*
 * pmem_windows -- set up path 3: allocate the destination, map both ranges.
 * 0 ready, 1 not possible here (use path 4), -1 error (ENOSPC and such).
 */
static int
pmem_windows(struct copier *c)
{
	if (c->kind == MAP_KIND_EMULATED || c->src % PAGE || c->dst % PAGE ||
	    c->len > SIZE_MAX)
		return 1;
	int r = alloc_dst(c->fd, c->dst, c->len);
	if (r != 0)
		return r;       /* 1: a store could SIGBUS, do not map */
	c->allocated = 1;
	/* a mapping that fails only sends the copy to path 4: forget its error */
	if (map_file(&c->sm, c->fd, c->src, (size_t)c->len, NULL, 0) < 0) {
		ckpt_err_clear();
		return 1;
	}
	if (map_file(&c->dm, c->fd, c->dst, (size_t)c->len, NULL, 0) < 0) {
		ckpt_err_clear();
		map_unmap(&c->sm);
		return 1;
	}
	if (c->dm.kind == MAP_KIND_EMULATED) {
		/* probed: an ordinary file */
		map_unmap(&c->sm);
		map_unmap(&c->dm);
		return 1;
	}
	return 0;
}

/* leave_range -- copy_file_range cannot be used: pick path 3 or 4 */
static int
leave_range(struct copier *c)
{
	int r = pmem_windows(c);
	if (r < 0)
		return -1;
	if (r == 0) {
		c->path = PATH_PMEM;
		return 0;
	}
	c->buf = malloc(PLAIN_BUF);
	if (!c->buf)
		return ckpt_err_set(ENOMEM, "out of memory");
	c->path = PATH_PLAIN;
	return 0;
}

/* copy_plain -- pread/pwrite [off, off+n) */
static int
copy_plain(struct copier *c, uint64_t off, uint64_t n)
{
	uint64_t src = c->src + off, dst = c->dst + off;
	while (n) {
		size_t want = n < PLAIN_BUF ? (size_t)n : PLAIN_BUF;
		ssize_t r = pread(c->fd, c->buf, want, (off_t)src);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return ckpt_err_set(r < 0 ? errno : EIO, "cannot read the pool: %s",
					r < 0 ? strerror(errno) : "short read");
		}
		ssize_t w = pwrite(c->fd, c->buf, (size_t)r, (off_t)dst);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return ckpt_err_set(errno, "cannot write the pool: %s", strerror(errno));
		}
		stat_add(&segcopy_stats.plain, (uint64_t)w);
		src += (uint64_t)w;
		dst += (uint64_t)w;
		n -= (uint64_t)w;
	}
	return 0;
}

/* copy_chunk -- copy [off, off+n) (n <= chunk) by the current path */
static int
copy_chunk(struct copier *c, uint64_t off, uint64_t n)
{
	while (n) {
		switch (c->path) {
		case PATH_RANGE: {
			loff_t si = (loff_t)(c->src + off), di = (loff_t)(c->dst + off);
			ssize_t r = copy_file_range(c->fd, &si, c->fd, &di, (size_t)n, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && errno != EXDEV && errno != ENOSYS &&
			    errno != EOPNOTSUPP && errno != EINVAL)
				return ckpt_err_set(errno, "copy_file_range failed: %s",
						strerror(errno));
			if (r <= 0) {
				if (leave_range(c) < 0)
					return -1;
				continue;
			}
			stat_add(&segcopy_stats.range, (uint64_t)r);
			off += (uint64_t)r;
			n -= (uint64_t)r;
			break;
		}
		case PATH_PMEM:
			pmem_memcpy_nodrain((char *)c->dm.addr + off,
					(const char *)c->sm.addr + off, (size_t)n);
			stat_add(&segcopy_stats.pmem, n);
			return 0;
		case PATH_PLAIN:
			return copy_plain(c, off, n);
		}
	}
	return 0;
}

/* copy_extent -- copy [off, off+n) in chunks; the mid point fires after the first */
static int
copy_extent(struct copier *c, uint64_t off, uint64_t n)
{
	while (n) {
		uint64_t k = n < c->chunk ? n : c->chunk;
		if (copy_chunk(c, off, k) < 0)
			return -1;
		off += k;
		n -= k;
		if (CKPT_UNLIKELY(c->mid != NULL)) {
			const char *point = c->mid;
			c->mid = NULL;
			if (off < c->len)
				test_point(point);
		}
	}
	return 0;
}

/* copy_data_extents -- copy only the data extents of the source range */
static int
copy_data_extents(struct copier *c)
{
	uint64_t pos = 0;
	while (pos < c->len) {
		off_t d = lseek(c->fd, (off_t)(c->src + pos), SEEK_DATA);
		if (d < 0) {
			if (errno == ENXIO)
				return 0;           /* only holes remain */
			/* no SEEK_DATA support: copy everything */
			return copy_extent(c, pos, c->len - pos);
		}
		if ((uint64_t)d >= c->src + c->len)
			return 0;
		off_t h = lseek(c->fd, d, SEEK_HOLE);
		if (h < 0)
			h = (off_t)(c->src + c->len);
		uint64_t start = (uint64_t)d - c->src;
		uint64_t end = (uint64_t)h - c->src;
		if (end > c->len)
			end = c->len;
		if (copy_extent(c, start, end - start) < 0)
			return -1;
		pos = end;
	}
	return 0;
}

/* block_size -- the filesystem's clone granularity */
static uint64_t
block_size(int fd)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_blksize > 0)
		return (uint64_t)st.st_blksize;
	return 4096;
}

/* try_clone -- path 1: 0 cloned, 1 not possible (copy instead), -1 error */
static int
try_clone(int fd, uint64_t src, uint64_t dst, uint64_t len, uint64_t seg_size,
		enum segcopy_how how, int offload)
{
	if (!offload) {
		if (how == SEGCOPY_CLONE)
			return ckpt_err_set(ENOTSUP, "the pool's filesystem cannot clone "
				"ranges (FICLONERANGE disabled by CKPT_TEST_NO_OFFLOAD)");
		return 1;
	}
	uint64_t clen = align_up(len, block_size(fd));
	if (clen > seg_size)
		clen = seg_size;
	struct file_clone_range r = {
		.src_fd = fd, .src_offset = src, .src_length = clen,
		.dest_offset = dst,
	};
	if (ioctl(fd, FICLONERANGE, &r) == 0) {
		stat_add(&segcopy_stats.cloned, clen);
		return 0;
	}
	if (errno == ENOSPC)
		return ckpt_err_set(ENOSPC, "filesystem full while cloning a segment");
	if (how == SEGCOPY_CLONE)
		return ckpt_err_set(ENOTSUP,
			"the pool's filesystem cannot clone ranges (FICLONERANGE: %s)",
			strerror(errno));
	return 1;
}

int
segcopy(int fd, uint64_t src, uint64_t dst, uint64_t len, uint64_t seg_size,
		enum segcopy_how how, const struct segcopy_opts *o, int *cloned)
{
	*cloned = 0;
	if (!(o && o->keep_rest && how == SEGCOPY_COPY) && segcopy_punch(fd, dst, seg_size) < 0)
		return -1;
	if (len == 0)
		return 0;
	int offload = !test_flag("CKPT_TEST_NO_OFFLOAD") && how != SEGCOPY_UNSHARED;
	if (how != SEGCOPY_COPY && how != SEGCOPY_UNSHARED) {
		int r = try_clone(fd, src, dst, len, seg_size, how, offload);
		if (r <= 0) {
			*cloned = r == 0;
			return r;
		}
	}

	struct copier c = {
		.fd = fd, .src = src, .dst = dst, .len = len, .chunk = COPY_CHUNK,
		.kind = o ? o->kind : SEGCOPY_KIND_PROBE, .path = PATH_RANGE,
	};
	if (o && o->mid_point && test_armed(o->mid_point)) {
		c.mid = o->mid_point;
		c.chunk = COPY_CHUNK_TEST;
	}
	int ret = offload ? 0 : leave_range(&c);
	if (ret == 0)
		ret = copy_data_extents(&c);
	if (c.path == PATH_PMEM) {
		pmem_drain();
		map_unmap(&c.sm);
		map_unmap(&c.dm);
	}
	free(c.buf);
	if (ret < 0)
		return -1;
	/* the heap writes to the copied prefix through a mapping */
	if (!c.allocated && alloc_dst(fd, dst, len) < 0)
		return -1;
	return 0;
}
