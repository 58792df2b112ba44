/*
 * bench_rand.h -- what the allocator workloads (alloc_bench.c,
 * churn_bench.c) draw their sizes and slots with, and their clock: one
 * generator, so both programs ask every allocator for the same sequence.
 */
#ifndef CKPT_BENCH_RAND_H
#define CKPT_BENCH_RAND_H 1

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* now_s -- CLOCK_MONOTONIC in seconds */
static inline double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* rnd -- splitmix64: small, fast, good enough, and the same everywhere */
static inline uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* in_range -- uniform in [lo, hi] from 16 random bits */
static inline size_t
in_range(uint64_t bits16, size_t lo, size_t hi)
{
	return lo + (size_t)((bits16 * (hi - lo + 1)) >> 16);
}

#endif
