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
	return XXH3_64bits(page, SUMS_PAGE);
}

/* sums_top -- a paged image's checksum from its npages page sums */
static inline uint64_t
sums_top(const uint64_t *sums, uint64_t npages)
{
	return XXH3_64bits(sums, npages * sizeof(uint64_t));
}

CKPT_HIDDEN void sums_begin(struct sums *s, int paged, uint64_t *out);
CKPT_HIDDEN void sums_update(struct sums *s, const void *data, size_t len);
CKPT_HIDDEN uint64_t sums_end(struct sums *s);

#endif
