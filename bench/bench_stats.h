/*
 * bench_stats.h -- what the checkpoint benchmarks (ckpt_bench.c,
 * seal_bench.c) share besides the clock (bench_rand.h): medians of their
 * repetitions and the sizes their command lines take.
 */
#ifndef CKPT_BENCH_STATS_H
#define CKPT_BENCH_STATS_H 1

#include <stdint.h>
#include <stdlib.h>

/* cmp_double -- qsort order of doubles */
static inline int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* median -- of v[0, n) (sorts v) */
static inline double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* parse_size -- "64M", "1G", "4096" in bytes; 0 if s is malformed */
static inline uint64_t
parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 10);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	return *end ? 0 : v;
}

#endif
