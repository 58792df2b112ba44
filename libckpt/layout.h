/*
 * layout.h -- pool geometry: computing it for a new pool and checking the
 * header of an existing (untrusted) one. Shared by the library and tools.
 */
#ifndef CKPT_LAYOUT_H
#define CKPT_LAYOUT_H 1

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "internal.h"

#define POOL_DEFAULT_HEAP ((uint64_t)1 << 30)
#define POOL_DEFAULT_SEGMENTS 64u
#define POOL_DEFAULT_KEEP 4u
/*
 * POOL_DEFAULT_BASE -- where segments are mapped unless the config says
 * otherwise: 48 TiB, far below where Linux places ordinary mmaps (top-down
 * from just under 128 TiB) and above the executable, brk heap and the
 * sanitizers' shadow regions. Further pools in one process step up by
 * POOL_BASE_STEP until a free range is found.
 */
#define POOL_DEFAULT_BASE ((uint64_t)0x300000000000ull)
#define POOL_BASE_STEP ((uint64_t)1 << 40)
/* POOL_BASE_ALIGN -- bases are 2 MiB aligned: huge pages on DAX, and more
 * than the heap's own alignment (HEAP_SEG_ALIGN) */
#define POOL_BASE_ALIGN POOL_DATA_ALIGN
#define POOL_USER_TOP ((uint64_t)0x7ffffffff000ull)

/* LAYOUT_SUMS_RATIO -- a segment's page-sum slot is seg_size / this (8 bytes per 4 KiB) */
#define LAYOUT_SUMS_RATIO 512u
/* LAYOUT_LOG_RATIO -- a segment's page-log slot is seg_size / this: a log
 * holds a checkpoint that differs from its segment in up to about 6% of it */
#define LAYOUT_LOG_RATIO 16u

/*
 * layout_compute -- fill hdr's geometry for heap_size/max_segments, with a
 * page-sum area if flags has POOL_F_SUMS_AREA; EINVAL/EOVERFLOW on bad values
 */
CKPT_HIDDEN int layout_compute(struct pool_hdr *hdr, uint64_t heap_size, uint64_t max_segments,
		uint32_t flags);

/* layout_seal -- compute and store the header checksum */
CKPT_HIDDEN void layout_seal(struct pool_hdr *hdr);

/*
 * layout_check -- validate an untrusted header read from a file of
 * file_size bytes: magic, version, checksum, geometry. EINVAL (damage),
 * ENOTSUP (newer major format) with a message naming the problem.
 */
CKPT_HIDDEN int layout_check(const struct pool_hdr *hdr, uint64_t file_size);

/* layout_seg_off -- file offset of segment i (i < max_segments, checked by caller) */
static inline uint64_t
layout_seg_off(const struct pool_hdr *hdr, uint32_t i)
{
	return hdr->data_off + (uint64_t)i * hdr->seg_size;
}

/* layout_sums_off -- file offset of segment i's page-sum slot (POOL_F_SUMS_AREA only) */
static inline uint64_t
layout_sums_off(const struct pool_hdr *hdr, uint32_t i)
{
	return hdr->sums_off + (uint64_t)i * (hdr->seg_size / LAYOUT_SUMS_RATIO);
}

/* layout_log_off -- file offset of segment i's page-log slot (POOL_F_LOG_AREA only) */
static inline uint64_t
layout_log_off(const struct pool_hdr *hdr, uint32_t i)
{
	return hdr->log_off + (uint64_t)i * (hdr->seg_size / LAYOUT_LOG_RATIO);
}

/*
 * layout_meta_len -- the bytes of the file that hold its metadata (header,
 * commit word, both catalog copies): what the catalog maps. The page-sum
 * and page-log slots after them are read and written with pread/pwrite
 * only: mapped, a tool that touches every page (valgrind, a scan) would
 * give a sparse slot blocks on tmpfs.
 */
static inline uint64_t
layout_meta_len(const struct pool_hdr *hdr)
{
	return POOL_CATALOG_OFF + 2 * hdr->cat_size;
}

/* layout_cat_off -- file offset of catalog copy c (0 or 1) */
static inline uint64_t
layout_cat_off(const struct pool_hdr *hdr, unsigned c)
{
	return POOL_CATALOG_OFF + (uint64_t)c * hdr->cat_size;
}

#endif
