/*
 * layout.c -- pool geometry and header validation.
 *
 * The header is the root of trust for everything else read from a pool, so
 * every field is checked here, with overflow-safe arithmetic, before any
 * other code uses it. docs/FORMAT.md describes the same rules.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <xxhash.h>

#include "libckpt.h"
#include "layout.h"

int
layout_compute(struct pool_hdr *hdr, uint64_t heap_size, uint64_t max_segments, uint32_t flags)
{
	if (heap_size < POOL_MIN_HEAP || heap_size > POOL_MAX_HEAP)
		return ckpt_err_set(EINVAL,
			"heap size %llu out of range [%llu, %llu]",
			(unsigned long long)heap_size,
			(unsigned long long)POOL_MIN_HEAP,
			(unsigned long long)POOL_MAX_HEAP);
	if (max_segments < 1 || max_segments > POOL_MAX_SEGMENTS)
		return ckpt_err_set(EINVAL, "segment count %llu out of range [1, %u]",
			(unsigned long long)max_segments, POOL_MAX_SEGMENTS);

	uint64_t seg_size = align_up(heap_size, POOL_DATA_ALIGN);
	uint64_t cat_size = align_up(sizeof(struct cat_hdr) +
			max_segments * sizeof(struct cat_entry), POOL_PAGE);
	uint64_t sums_off = 0, sums_len = 0, log_off = 0, log_len = 0, data_off, data_len,
		file_size;
	if ((flags & POOL_F_LOG_AREA) && !(flags & POOL_F_SUMS_AREA))
		return ckpt_err_set(EINVAL, "a page-log area needs a page-sum area");
	if (flags & POOL_F_SUMS_AREA) {
		sums_off = POOL_CATALOG_OFF + 2 * cat_size;
		sums_len = max_segments * (seg_size / LAYOUT_SUMS_RATIO);
	}
	if (flags & POOL_F_LOG_AREA) {
		/* seg_size / 16 per segment: at most 2^40 each, 2^52 in all */
		log_off = align_up(sums_off + sums_len, POOL_PAGE);
		log_len = max_segments * (seg_size / LAYOUT_LOG_RATIO);
	}
	data_off = align_up(POOL_CATALOG_OFF + 2 * cat_size + sums_len, POOL_DATA_ALIGN);
	if (log_len)
		data_off = align_up(log_off + log_len, POOL_DATA_ALIGN);
	if (mul_overflows(seg_size, max_segments, &data_len) ||
	    add_overflows(data_off, data_len, &file_size) ||
	    file_size > (uint64_t)INT64_MAX)
		return ckpt_err_set(EOVERFLOW,
			"pool size overflows: %llu segments of %llu bytes",
			(unsigned long long)max_segments,
			(unsigned long long)seg_size);

	hdr->heap_size = heap_size;
	hdr->seg_size = seg_size;
	hdr->max_segments = (uint32_t)max_segments;
	hdr->cat_size = cat_size;
	hdr->sums_off = sums_off;
	hdr->log_off = log_off;
	hdr->data_off = data_off;
	hdr->file_size = file_size;
	return 0;
}

void
layout_seal(struct pool_hdr *hdr)
{
	hdr->checksum = XXH64(hdr, offsetof(struct pool_hdr, checksum), 0);
}

int
layout_check(const struct pool_hdr *hdr, uint64_t file_size)
{
	if (file_size < sizeof(*hdr))
		return ckpt_err_set(EINVAL,
			"not a libckpt pool: file is %llu bytes, shorter than a pool header",
			(unsigned long long)file_size);
	if (memcmp(hdr->magic, POOL_MAGIC, sizeof(hdr->magic)) != 0)
		return ckpt_err_set(EINVAL, "not a libckpt pool: bad magic");
	if (hdr->checksum != XXH64(hdr, offsetof(struct pool_hdr, checksum), 0))
		return ckpt_err_set(EINVAL, "pool header checksum mismatch: header is damaged");
	if (hdr->major > POOL_FORMAT_MAJOR)
		return ckpt_err_set(ENOTSUP,
			"pool format version %u.%u is newer than this libckpt supports (%u.%u)",
			hdr->major, hdr->minor, POOL_FORMAT_MAJOR, POOL_FORMAT_MINOR);
	if (hdr->major < POOL_FORMAT_MAJOR || hdr->major == 0)
		return ckpt_err_set(ENOTSUP, "pool format version %u.%u is not supported",
			hdr->major, hdr->minor);
	if (hdr->flags & ~POOL_F_KNOWN)
		return ckpt_err_set(EINVAL, "pool header: unknown flags 0x%x", hdr->flags & ~POOL_F_KNOWN);

	struct pool_hdr want;
	memset(&want, 0, sizeof(want));
	if (layout_compute(&want, hdr->heap_size, hdr->max_segments, hdr->flags) < 0) {
		ckpt_err_prefix("pool header: ");
		return -1;
	}
	if (want.seg_size != hdr->seg_size || want.cat_size != hdr->cat_size ||
	    want.data_off != hdr->data_off || want.file_size != hdr->file_size ||
	    want.sums_off != hdr->sums_off || want.log_off != hdr->log_off)
		return ckpt_err_set(EINVAL, "pool header: inconsistent geometry");
	uint64_t top;
	if (hdr->base == 0 || hdr->base % POOL_BASE_ALIGN != 0 ||
	    add_overflows(hdr->base, hdr->seg_size, &top) || top > POOL_USER_TOP)
		return ckpt_err_set(EINVAL, "pool header: bad base address 0x%llx",
			(unsigned long long)hdr->base);
	if (hdr->fork_mode > CKPT_FORK_SHARED)
		return ckpt_err_set(EINVAL, "pool header: bad fork mode %u", hdr->fork_mode);
	if (hdr->flags & POOL_F_SIZE_FOLLOWS) {
		/* the segments in use are checked where they are read */
		if (file_size < hdr->data_off)
			return ckpt_err_set(EINVAL,
				"pool file truncated: %llu bytes, its header and catalog "
				"take %llu", (unsigned long long)file_size,
				(unsigned long long)hdr->data_off);
	} else if (file_size < hdr->file_size) {
		return ckpt_err_set(EINVAL,
			"pool file truncated: %llu bytes, header says %llu",
			(unsigned long long)file_size,
			(unsigned long long)hdr->file_size);
	}
	return 0;
}
