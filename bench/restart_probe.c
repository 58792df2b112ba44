/*
 * restart_probe.c -- what a restart costs up to the first allocation, in
 * wall time, page faults and CPU time (the faults and CPU time are the
 * steadier measure on a loaded machine, where ckpt_bench's wall times
 * spread).
 *
 *   restart_probe POOL make SIZE [MIB]
 *                                  create POOL holding MIB MiB (1024) of
 *                                  SIZE-byte blocks (linked from the root),
 *                                  checkpoint, close
 *   restart_probe POOL open [N]    N times (3): ckpt_open(CKPT_LATEST), then
 *                                  one ckpt_alloc(64); one line each
 *   restart_probe POOL walk [N]    N times (3): ckpt_open, then read every
 *                                  byte of every block of the list (a full
 *                                  walk after a restart); wall ms of open +
 *                                  walk, the walk's faults, and the CPU ms of
 *                                  the main thread and of the whole process
 *                                  (the rest is a lazy restart's fill thread)
 *
 * Each line: wall ms of open + first alloc, minor page faults in ckpt_open
 * and in the allocation, and the process's CPU ms over both (a lazy
 * restart's fill thread included). Run with the environment of the restart
 * to measure (CKPT_FORK_MODE=cow CKPT_RESTART=lazy; CKPT_TEST_LAZY_NO_PREFETCH=1
 * to count only what is touched). To compare two builds, make a pool with
 * each (a heap format the other cannot read) and run the same binary with
 * LD_LIBRARY_PATH set to each build's libckpt directory, alternating.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "libckpt.h"

/* ms -- the clock c in milliseconds */
static double
ms(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* minflt -- minor page faults of the process so far */
static long
minflt(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return r.ru_minflt;
}

/* make -- the pool: total bytes of n-byte blocks in a list from the root, one checkpoint */
static int
make(const char *path, size_t n, size_t total)
{
	struct ckpt_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.heap_size = total + total / 2;
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p) {
		fprintf(stderr, "ckpt_create %s: %s\n", path, ckpt_errormsg());
		return 1;
	}
	void *prev = NULL;
	for (size_t tot = 0; tot < total; tot += n) {
		void **c = ckpt_alloc(p, n);
		if (!c) {
			fprintf(stderr, "ckpt_alloc: %s\n", ckpt_errormsg());
			return 1;
		}
		memset(c, 1, n);
		c[0] = prev;
		prev = c;
	}
	if (ckpt_set_root(p, prev) < 0 || ckpt_checkpoint(p, NULL, NULL) < 0) {
		fprintf(stderr, "checkpoint: %s\n", ckpt_errormsg());
		return 1;
	}
	return ckpt_close(p) < 0;
}

/* walk -- open, then read every block of the list from the root */
static int
walk(const char *path, int reps)
{
	for (int k = 0; k < reps; k++) {
		double c0 = ms(CLOCK_PROCESS_CPUTIME_ID), m0 = ms(CLOCK_THREAD_CPUTIME_ID);
		double t0 = ms(CLOCK_MONOTONIC);
		ckpt_pool *q = ckpt_open(path, CKPT_LATEST, NULL);
		if (!q) {
			fprintf(stderr, "ckpt_open: %s\n", ckpt_errormsg());
			return 1;
		}
		long f0 = minflt();
		uint64_t sum = 0, blocks = 0;
		for (void **c = ckpt_root(q); c; c = c[0], blocks++) {
			size_t n = ckpt_usable_size(q, c) / sizeof(uint64_t);
			const volatile uint64_t *w = (const volatile uint64_t *)c;
			for (size_t i = 1; i < n; i++)
				sum += w[i];
		}
		double t1 = ms(CLOCK_MONOTONIC), c1 = ms(CLOCK_PROCESS_CPUTIME_ID);
		double m1 = ms(CLOCK_THREAD_CPUTIME_ID);
		printf("open + walk %.2f ms (%llu blocks, sum %llx), walk faults %ld, "
			"cpu main %.2f ms, process %.2f ms\n", t1 - t0,
			(unsigned long long)blocks, (unsigned long long)sum, minflt() - f0,
			m1 - m0, c1 - c0);
		ckpt_close(q);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[2], "make") == 0 && argc < 4)) {
		fprintf(stderr, "usage: restart_probe POOL make SIZE [MIB] | POOL open [N] | "
			"POOL walk [N]\n");
		return 2;
	}
	if (strcmp(argv[2], "make") == 0)
		return make(argv[1], strtoull(argv[3], NULL, 10),
			(size_t)(argc > 4 ? strtoull(argv[4], NULL, 10) : 1024) << 20);
	int reps = argc > 3 ? atoi(argv[3]) : 3;
	if (strcmp(argv[2], "walk") == 0)
		return walk(argv[1], reps);
	for (int k = 0; k < reps; k++) {
		long f0 = minflt();
		double c0 = ms(CLOCK_PROCESS_CPUTIME_ID), t0 = ms(CLOCK_MONOTONIC);
		ckpt_pool *q = ckpt_open(argv[1], CKPT_LATEST, NULL);
		if (!q) {
			fprintf(stderr, "ckpt_open: %s\n", ckpt_errormsg());
			return 1;
		}
		long f1 = minflt();
		void *x = ckpt_alloc(q, 64);
		double t1 = ms(CLOCK_MONOTONIC), c1 = ms(CLOCK_PROCESS_CPUTIME_ID);
		long f2 = minflt();
		if (!x) {
			fprintf(stderr, "ckpt_alloc: %s\n", ckpt_errormsg());
			return 1;
		}
		printf("open + first alloc %.2f ms, faults %ld + %ld, cpu %.2f ms\n",
			t1 - t0, f1 - f0, f2 - f1, c1 - c0);
		ckpt_close(q);
	}
	return 0;
}
