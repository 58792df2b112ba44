/*
 * sums.h -- checkpoint checksums, the one definition shared by the library
 * (checkpoint, restart) and the tools (verify).
 *
 * Two kinds, told apart by the checkpoint entry's flags (format.h):
 *  - whole (format 1.0 and every copy-mode checkpoint): XXH3-64 of the
 *    segment's bytes [0, used);
 *  - paged (CAT_F_PAGE_SUMS, format 1.1, cow-mode images): XXH3-64 of the
 *    array of the XXH3-64 of each 4 KiB page of [0, used) (used is a
 *    multiple of 4 KiB). A checkpoint that rewrites a few pages rehashes
 *    only those, and a reader can verify any page on its own.
 * Readers feed the bytes in order through sums_update, in pieces that are
 * multiples of SUMS_PAGE but for the last.
 *
 * A paged image may also have its page sums stored (CAT_F_SUMS_STORED,
 * format 1.2) in its segment's page-sum slot: sums_store writes them,
 * sums_load reads them back and checks them against the image's checksum,
 * after which any one page can be verified against its sum alone (the
 * lazy restart, engine/lazy.c).
 */
#ifndef CKPT_SUMS_H
#define CKPT_SUMS_H 1

#include <stddef.h>
#include <stdint.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "internal.h"

#define SUMS_PAGE ((uint64_t)4096)

/*
 * sums_xxh3 -- XXH3-64 of len bytes: libxxhash's, or on a CPU with AVX2
 * the same hash built for it (sums_avx2.c; sums.c chooses once, at load)
 */
CKPT_HIDDEN extern uint64_t (*sums_xxh3_fn)(const void *data, size_t len);
CKPT_HIDDEN uint64_t sums_xxh3_avx2(const void *data, size_t len);

static inline uint64_t
sums_xxh3(const void *data, size_t len)
{
	return sums_xxh3_fn(data, len);
}

/*
 * sums -- a checksum being computed; out (may be NULL) receives the page
 * sums, of a whole-checksum image too (the cow engine keeps them)
 */
struct sums {
	XXH3_state_t st;
	int paged;
	uint64_t *out;
	uint64_t npages;
};

/* sums_page -- the sum of one page of a paged image */
static inline uint64_t
sums_page(const void *page)
{
	return sums_xxh3(page, SUMS_PAGE);
}

/* sums_top -- a paged image's checksum from its npages page sums */
static inline uint64_t
sums_top(const uint64_t *sums, uint64_t npages)
{
	return XXH3_64bits(sums, npages * sizeof(uint64_t));
}

/*
 * sums_persist_seed -- the seed of the page sums of the pages ckpt_persist
 * writes for heap life while it maps checkpoint base_id (0: no checkpoint),
 * format 1.7: a page persisted under another base or by another life of
 * the segment never matches (engine/persist.c)
 */
static inline uint64_t
sums_persist_seed(uint64_t life, uint64_t base_id)
{
	const uint64_t k[3] = { 0x7473697372657070ull /* "ppersist" */, life, base_id };
	return XXH3_64bits(k, sizeof(k));
}

/* sums_persist_page -- the stored sum of one persisted page under seed */
static inline uint64_t
sums_persist_page(const void *page, uint64_t seed)
{
	return XXH3_64bits_withSeed(page, SUMS_PAGE, seed);
}

/*
 * sums_store -- write npages page sums at file offset off of fd (not
 * durable: the checkpoint's fdatasync covers them)
 */
CKPT_HIDDEN int sums_store(int fd, uint64_t off, const uint64_t *sums, uint64_t npages);

/*
 * sums_load -- read npages page sums from file offset off of fd into out
 * and check that their XXH3-64 is checksum; EINVAL (damaged) or EIO with a
 * message
 */
CKPT_HIDDEN int sums_load(int fd, uint64_t off, uint64_t npages, uint64_t checksum,
		uint64_t *out);

/*
 * sums_check_stored -- sums_load's check without keeping the sums (bounded
 * memory, for verify): 0, or -1 with EINVAL (damaged) or EIO and a message
 */
CKPT_HIDDEN int sums_check_stored(int fd, uint64_t off, uint64_t npages, uint64_t checksum);

CKPT_HIDDEN void sums_begin(struct sums *s, int paged, uint64_t *out);
CKPT_HIDDEN void sums_update(struct sums *s, const void *data, size_t len);
CKPT_HIDDEN uint64_t sums_end(struct sums *s);

/*
 * Reading an image with pread to check it: a copy out of the page cache
 * into a buffer that stays in the CPU's cache while it is hashed costs
 * less than the page tables of a mapped view (populated page by page,
 * then torn down), and a page that cannot be read is an error, never a
 * SIGBUS. The caller decides whether pread may stand in for the view
 * (map_read_direct: not on tmpfs). SUMS_READ is the buffer both take.
 */
#define SUMS_READ ((uint64_t)128 << 10)

/*
 * sums_update_file -- sums_update with the len bytes at file offset off
 * of fd, read SUMS_READ at a time into buf; 0, or -1 with errno (EIO for
 * a short read) and *at the offset (from off) of the piece that failed
 */
CKPT_HIDDEN int sums_update_file(struct sums *s, int fd, uint64_t off, uint64_t len,
		char *buf, uint64_t *at);

/*
 * sums_check -- check the pages of bytes [0, len) (len a multiple of
 * SUMS_PAGE) against want (one sum per page): 0, or -1 with *bad the
 * offset of the first page whose sum differs
 */
CKPT_HIDDEN int sums_check(const char *bytes, uint64_t len, const uint64_t *want,
		uint64_t *bad);

/*
 * sums_check_file -- sums_check of the pages of [off, off + len) of fd
 * (len a multiple of SUMS_PAGE, off too) against want,
 * reading SUMS_READ at a time into buf: 0; -1 with *bad the offset (from
 * off) of the first page whose sum differs; -2 with *bad that of the
 * first page of a piece that cannot be read (errno set)
 */
CKPT_HIDDEN int sums_check_file(int fd, uint64_t off, uint64_t len, const uint64_t *want,
		char *buf, uint64_t *bad);

#endif
