/*
 * segcopy.c -- segment-to-segment copies inside one pool file.
 *
 * Preference order: a filesystem clone (FICLONERANGE: O(extents), blocks
 * shared until written), then copy_file_range over the source's data
 * extents only (SEEK_DATA/SEEK_HOLE, so a big segment holding little copies
 * little), then plain pread/pwrite where the kernel cannot offload.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segcopy.h"

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

/* copy_plain -- pread/pwrite fallback for [src, src+len) -> dst */
static int
copy_plain(int fd, uint64_t src, uint64_t dst, uint64_t len)
{
	size_t bufsz = 1 << 20;
	char *buf = malloc(bufsz);
	if (!buf)
		return ckpt_err_set(ENOMEM, "out of memory");
	int ret = 0;
	while (len) {
		size_t n = len < bufsz ? (size_t)len : bufsz;
		ssize_t r = pread(fd, buf, n, (off_t)src);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			ret = ckpt_err_set(r < 0 ? errno : EIO, "cannot read the pool: %s",
					r < 0 ? strerror(errno) : "short read");
			break;
		}
		ssize_t w = pwrite(fd, buf, (size_t)r, (off_t)dst);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			ret = ckpt_err_set(errno, "cannot write the pool: %s", strerror(errno));
			break;
		}
		src += (uint64_t)w;
		dst += (uint64_t)w;
		len -= (uint64_t)w;
	}
	free(buf);
	return ret;
}

/* copy_range -- copy_file_range [src, src+len) -> dst, falling back to copy_plain */
static int
copy_range(int fd, uint64_t src, uint64_t dst, uint64_t len)
{
	while (len) {
		loff_t si = (loff_t)src, di = (loff_t)dst;
		size_t n = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t r = copy_file_range(fd, &si, fd, &di, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
			    errno == EINVAL)
				return copy_plain(fd, src, dst, len);
			return ckpt_err_set(errno, "copy_file_range failed: %s", strerror(errno));
		}
		if (r == 0)
			return copy_plain(fd, src, dst, len);
		src += (uint64_t)r;
		dst += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

/* copy_data_extents -- copy only the data extents of [src, src+len) */
static int
copy_data_extents(int fd, uint64_t src, uint64_t dst, uint64_t len)
{
	uint64_t pos = 0;
	while (pos < len) {
		off_t d = lseek(fd, (off_t)(src + pos), SEEK_DATA);
		if (d < 0) {
			if (errno == ENXIO)
				return 0;           /* only holes remain */
			/* no SEEK_DATA support: copy everything */
			return copy_range(fd, src + pos, dst + pos, len - pos);
		}
		if ((uint64_t)d >= src + len)
			return 0;
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			h = (off_t)(src + len);
		uint64_t start = (uint64_t)d - src;
		uint64_t end = (uint64_t)h - src;
		if (end > len)
			end = len;
		if (copy_range(fd, src + start, dst + start, end - start) < 0)
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

int
segcopy(int fd, uint64_t src, uint64_t dst, uint64_t len, uint64_t seg_size,
		enum segcopy_how how, int *cloned)
{
	*cloned = 0;
	if (segcopy_punch(fd, dst, seg_size) < 0)
		return -1;
	if (len == 0)
		return 0;
	if (how != SEGCOPY_COPY) {
		uint64_t bs = block_size(fd);
		uint64_t clen = align_up(len, bs);
		if (clen > seg_size)
			clen = seg_size;
		struct file_clone_range r = {
			.src_fd = fd, .src_offset = src, .src_length = clen,
			.dest_offset = dst,
		};
		if (ioctl(fd, FICLONERANGE, &r) == 0) {
			*cloned = 1;
			return 0;
		}
		if (errno == ENOSPC)
			return ckpt_err_set(ENOSPC, "filesystem full while cloning a segment");
		if (how == SEGCOPY_CLONE)
			return ckpt_err_set(ENOTSUP,
				"the pool's filesystem cannot clone ranges (FICLONERANGE: %s)",
				strerror(errno));
	}
	if (copy_data_extents(fd, src, dst, len) < 0)
		return -1;
	/* back the copied prefix with blocks: the heap writes there through
	 * a mapping, where a full filesystem would be a SIGBUS */
	if (fallocate(fd, 0, (off_t)dst, (off_t)len) < 0 && errno != EOPNOTSUPP)
		return ckpt_err_set(errno, "cannot allocate a segment: %s", strerror(errno));
	return 0;
}
