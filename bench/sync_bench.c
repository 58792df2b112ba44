/*
 * sync_bench.c -- what a checkpoint's write pattern costs the disk, without
 * libckpt: the time to pwrite and fdatasync a few percent of a file's pages
 * in the patterns a checkpoint could write them, against writing the whole
 * file. It measures the case for a page log (docs/DESIGN.md, "What a
 * steady-state checkpoint costs"): a recycled image takes 2% of the pages
 * scattered, a log would take 1% in sequence.
 *
 *   sync_bench [--size 256M] [--reps 5] [--dir /var/tmp] [--small-folios]
 *
 * A file of --size is written whole and fdatasynced first (its blocks
 * allocated, as a pool's images are). Then per repetition, alternating:
 *   2% scattered   one 4 KiB page in every 50, a different page each
 *                  repetition, each its own pwrite, then fdatasync
 *   1% scattered   one page in every 100, the same way
 *   1% sequential  as many pages as "1% scattered", in one pwrite at a
 *                  place that moves each repetition, then fdatasync
 *   2% direct      the pages of "2% scattered", written with O_DIRECT by
 *                  DIRECT_THREADS threads at once (a deep queue, no page
 *                  cache), then fdatasync: what a recycled image would
 *                  take written that way instead of through the cache
 *   whole          the whole file in one pwrite, then fdatasync
 *   2% logged      the page log folded in place (docs/DESIGN.md): the pages
 *                  of "2% scattered" pwritten into the page cache where they
 *                  belong (the fold, not waited for), then the same pages
 *                  in one sequence into a log area past the image with
 *                  pwritev2(RWF_DSYNC), which makes only that range durable.
 *                  Timed: both writes. Then, untimed, the fdatasync that
 *                  makes the fold durable (what a background writeback
 *                  would do before the image is recycled), shown apart.
 * Prints the medians (pwrite + fdatasync, ms) and each against "whole".
 * The file is --size plus room for the log (2% and a page).
 *
 * The file is first written in one piece, so ext4 caches it in 2 MiB
 * folios, into which a 4 KiB write costs several times what it costs into
 * a small folio (docs/BENCHMARKS.md, "Where the small folios come from,
 * and why the images keep them").
 * A cow checkpoint's images sit in small folios; --small-folios writes the
 * file page by page first, as they are.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench_rand.h"
#define BENCH_NAME "sync_bench"
#include "bench_stats.h"

#define PAGE 4096u
#define NPAT 6
#define WHOLE 4     /* the pattern every other is compared with */
#define LOGGED 5    /* the page log's pattern, timed in parts */
#define DIRECT_THREADS 32

/* put -- pwrite all of len bytes at off, or die */
static void
put(int fd, const char *buf, uint64_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);
		if (n <= 0)
			die("pwrite: %m");
		buf += n;
		len -= (uint64_t)n;
		off += (uint64_t)n;
	}
}

/* the O_DIRECT writers' shared plan: every DIRECT_THREADS-th page of the pattern each */
struct direct {
	int fd;
	const char *buf;
	uint64_t first, step, npages;
	unsigned id;
};

/* direct_writer -- one thread's share of the "2% direct" pattern */
static void *
direct_writer(void *arg)
{
	const struct direct *d = arg;
	uint64_t stride = d->step * DIRECT_THREADS;
	for (uint64_t pg = d->first + d->id * d->step; pg < d->npages; pg += stride)
		put(d->fd, d->buf, PAGE, pg * PAGE);
	return NULL;
}

/*
 * logged -- pattern LOGGED of repetition k (see the top); seconds timed, of
 * which *cache the writes into the page cache; *fold the untimed rest
 */
static double
logged(int fd, const char *buf, uint64_t size, int k, double *cache, double *fold)
{
	uint64_t npages = size / PAGE, n = 0;
	double t0 = now_s();
	for (uint64_t pg = (uint64_t)k % 50; pg < npages; pg += 50, n++)
		put(fd, buf, PAGE, pg * PAGE);
	*cache = now_s() - t0;
	for (uint64_t done = 0; done < n * PAGE;) {
		struct iovec v = { (void *)buf, n * PAGE - done };
		ssize_t w = pwritev2(fd, &v, 1, (off_t)(size + done), RWF_DSYNC);
		if (w <= 0)
			die("pwritev2 RWF_DSYNC: %m");
		done += (uint64_t)w;
	}
	double t1 = now_s();
	if (fdatasync(fd) < 0)
		die("fdatasync: %m");
	*fold = now_s() - t1;
	return t1 - t0;
}

/* one -- write pattern pat of repetition k and fdatasync; seconds (x: LOGGED's parts) */
static double
one(int fd, int dfd, const char *buf, uint64_t size, int pat, int k, double x[2])
{
	uint64_t npages = size / PAGE, few = npages / 100;
	if (pat == LOGGED)
		return logged(fd, buf, size, k, &x[0], &x[1]);
	double t0 = now_s();
	if (pat == 3) {
		struct direct d[DIRECT_THREADS];
		pthread_t t[DIRECT_THREADS];
		for (unsigned i = 0; i < DIRECT_THREADS; i++) {
			d[i] = (struct direct){ dfd, buf, (uint64_t)(k + 25) % 50, 50, npages, i };
			if (pthread_create(&t[i], NULL, direct_writer, &d[i]) != 0)
				die("pthread_create failed");
		}
		for (unsigned i = 0; i < DIRECT_THREADS; i++)
			pthread_join(t[i], NULL);
		fd = dfd;
	} else if (pat == 0 || pat == 1) {
		uint64_t step = pat == 0 ? 50 : 100;
		for (uint64_t pg = (uint64_t)k % step; pg < npages; pg += step)
			put(fd, buf, PAGE, pg * PAGE);
	} else if (pat == 2) {
		uint64_t span = npages - few;
		put(fd, buf, few * PAGE, ((uint64_t)k * 7919 % (span ? span : 1)) * PAGE);
	} else {
		put(fd, buf, size, 0);
	}
	if (fdatasync(fd) < 0)
		die("fdatasync: %m");
	return now_s() - t0;
}

int
main(int argc, char **argv)
{
	uint64_t size = 256ull << 20;
	int reps = 5;
	const char *dir = "/var/tmp";
	int small = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
			size = size_arg(argv[++i]);
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--small-folios") == 0)
			small = 1;
		else
			die("usage: sync_bench [--size 256M] [--reps 5] [--dir DIR] "
				"[--small-folios]");
	}
	if (reps < 1 || size < 100 * PAGE)
		die("--reps must be >= 1 and --size >= 400K");
	size -= size % PAGE;
	char path[4200];
	snprintf(path, sizeof(path), "%s/sync_bench.file", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("open %s: %m", path);
	char *buf = aligned_alloc(PAGE, size);
	if (!buf)
		die("out of memory");
	memset(buf, 0x5a, size);
	int dfd = open(path, O_RDWR | O_DIRECT);
	if (dfd < 0)
		die("open %s with O_DIRECT: %m", path);
	double x[2];
	/* the whole file, its log room too: every block allocated */
	put(fd, buf, size / 50 + PAGE, size);
	for (uint64_t off = 0; small && off < size; off += PAGE)
		put(fd, buf, PAGE, off);
	one(fd, dfd, buf, size, WHOLE, 0, x);
	static const char *const names[NPAT] = {
		"2% of the pages, scattered", "1% of the pages, scattered",
		"1% of the pages, sequential",
		"2% of the pages, scattered, O_DIRECT from 32 threads", "the whole file",
		"2% logged: scattered into the cache, in sequence with RWF_DSYNC",
	};
	double *v[NPAT], *cache = calloc((size_t)reps, sizeof(double));
	double *folds = calloc((size_t)reps, sizeof(double));
	for (int p = 0; p < NPAT; p++)
		if (!(v[p] = calloc((size_t)reps, sizeof(double))) || !cache || !folds)
			die("out of memory");
	for (int k = 0; k < reps; k++)
		for (int p = 0; p < NPAT; p++) {
			v[p][k] = one(fd, dfd, buf, size, p, k, x);
			if (p == LOGGED) {
				cache[k] = x[0];
				folds[k] = x[1];
			}
		}
	double m[NPAT];
	for (int p = 0; p < NPAT; p++)
		m[p] = median(v[p], reps) * 1e3;
	printf("\n### pwrite + fdatasync into a %llu MiB file%s (medians of %d; ms)\n\n",
		(unsigned long long)(size >> 20), small ? " in small folios" : "", reps);
	printf("| pattern | ms | against the whole file |\n| --- | ---: | ---: |\n");
	for (int p = 0; p < NPAT; p++)
		printf("| %s | %.1f | %.3f |\n", names[p], m[p], m[p] / m[WHOLE]);
	printf("\nOf \"2%% logged\", the pwrites into the page cache: %.1f ms; the fold's "
		"writeback after it (fdatasync, untimed there): %.1f ms\n",
		median(cache, reps) * 1e3, median(folds, reps) * 1e3);
	close(dfd);
	close(fd);
	unlink(path);
	return 0;
}
