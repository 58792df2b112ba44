/*
 * test_sums.c -- the page sums' hash gives libxxhash's XXH3-64 values
 * whichever build of it runs (sums_avx2.c on a CPU with AVX2, the
 * library's otherwise): a page sum written by one machine must verify on
 * any other, and every pool written before the AVX2 build must still open.
 * Compares sums_xxh3 and sums_page with the library's XXH3_64bits on
 * random bytes of every length up to a few pages and at unaligned starts,
 * and sums_update of a paged image with its definition. Under valgrind
 * too (valgrind emulates AVX2).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sums.h"

#define N (3 * 4096 + 257)

static unsigned char *
random_bytes(size_t n, unsigned seed)
{
	unsigned char *b = malloc(n);
	assert_non_null(b);
	srand(seed);
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)rand();
	return b;
}

/* every length 0..N at a few unaligned starts */
static void
test_xxh3_matches_library(void **state)
{
	(void)state;
	unsigned char *b = random_bytes(N + 64, 1);
	printf("page sums hash: %s\n", sums_xxh3_fn == sums_xxh3_avx2 ?
			"xxHash built for AVX2" : "libxxhash");
	for (size_t start = 0; start < 64; start += 13)
		for (size_t len = 0; len <= N; len += len < 300 ? 1 : 61)
			if (sums_xxh3(b + start, len) != XXH3_64bits(b + start, len))
				fail_msg("XXH3-64 of %zu bytes at +%zu differs from libxxhash's",
						len, start);
	free(b);
}

/* sums_page and a paged image's checksum (the sum of the page sums) */
static void
test_page_sums_match_definition(void **state)
{
	(void)state;
	enum { PAGES = 64 };
	unsigned char *b = random_bytes(PAGES * SUMS_PAGE, 2);
	uint64_t want[PAGES], got[PAGES];
	for (unsigned i = 0; i < PAGES; i++) {
		want[i] = XXH3_64bits(b + i * SUMS_PAGE, SUMS_PAGE);
		assert_true(sums_page(b + i * SUMS_PAGE) == want[i]);
	}
	struct sums s;
	sums_begin(&s, 1, got);
	/* pieces of odd page counts, as the readers feed them */
	for (unsigned i = 0; i < PAGES; i += 7) {
		unsigned n = PAGES - i < 7 ? PAGES - i : 7;
		sums_update(&s, b + i * SUMS_PAGE, n * SUMS_PAGE);
	}
	assert_memory_equal(got, want, sizeof(want));
	assert_true(sums_end(&s) == XXH3_64bits(want, sizeof(want)));
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xxh3_matches_library),
		cmocka_unit_test(test_page_sums_match_definition),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
