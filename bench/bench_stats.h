/*
 * bench_stats.h -- what the checkpoint benchmarks (ckpt_bench.c,
 * seal_bench.c) share besides the clock (bench_rand.h): medians of their
 * repetitions, the sizes their command lines take, and dying with a
 * message. Define BENCH_NAME (the program's name) before including it.
 */
#ifndef CKPT_BENCH_STATS_H
#define CKPT_BENCH_STATS_H 1

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench_stats.h"
#endif

/* die -- print "BENCH_NAME: message" on stderr and exit 1 */
static inline void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, BENCH_NAME ": ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

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

/* size_arg -- a size from the command line, or die */
static inline uint64_t
size_arg(const char *s)
{
	uint64_t v = parse_size(s);
	if (!v)
		die("bad size %s", s);
	return v;
}

#endif
