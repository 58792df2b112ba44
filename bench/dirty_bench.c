/*
 * dirty_bench.c -- cost of dirty-page tracking (libckpt/engine/dirty.c,
 * issue 11 point 2) on this machine: per backing (ext4 MAP_SHARED, ext4
 * MAP_PRIVATE, memfd) and size, with 1% of the pages written at scattered
 * places between collects:
 *   start      dirty_start on a fully populated range (probe + protect)
 *   write/pg   first write to a protected page (the WP async fault), per page
 *   find       dirty_collect without re-arm (list only)
 *   collect    dirty_collect with re-arm (list and re-protect in one pass)
 *   clean      dirty_collect with re-arm when nothing was written
 *   fork       the parent's pause in fork() with the range tracked (the
 *              child exits at once)
 *   memcpy     reference: copying the whole range once (what a method
 *              that reports every page makes a checkpoint do at least)
 * Medians of --reps runs. Prints a table; asserts nothing about speed.
 *
 *   dirty_bench [--smoke] [--reps N] [--sizes 64,1024] [--dir DIR]
 *
 * --smoke: 8 MiB, 2 reps: seconds, checks only that each collect found
 * every written page.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/dirty.h"

#define PG ((size_t)4096)

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int
count_fn(void *arg, uint64_t off, uint64_t len)
{
	(void)off;
	*(uint64_t *)arg += len / PG;
	return 0;
}

enum kind { K_SHARED, K_PRIVATE, K_MEMFD };
static const char *const kind_name[] = { "ext4-shared", "ext4-private", "memfd" };

/* write_scattered -- write 1% of npages, distinct pages spread over the range */
static size_t
write_scattered(char *p, size_t npages, unsigned rep)
{
	size_t n = npages / 100 ? npages / 100 : 1;
	size_t stride = 40503;   /* odd: a permutation of a power-of-two page count */
	for (size_t i = 0; i < n; i++) {
		size_t pg = (i * stride + rep * 7919u) % npages;
		p[pg * PG + (i * 64) % PG] = (char)(rep + 1);
	}
	return n;
}

static int
run(enum kind k, size_t mib, int reps, const char *dir, int no_uffd)
{
	size_t len = mib << 20, npages = len / PG;
	int fd;
	char path[4096];
	if (k == K_MEMFD) {
		fd = memfd_create("dirty_bench", MFD_CLOEXEC);
	} else {
		snprintf(path, sizeof(path), "%s/dirty_bench.%d", dir, (int)getpid());
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0 || ftruncate(fd, (off_t)len) != 0) {
		perror("dirty_bench: file");
		return 1;
	}
	/* real data in the file (not a hole) so a private mapping maps file pages */
	char *buf = malloc(1 << 20);
	memset(buf, 'h', 1 << 20);
	for (size_t o = 0; o < len; o += 1 << 20)
		if (pwrite(fd, buf, 1 << 20, (off_t)o) != 1 << 20) {
			perror("dirty_bench: pwrite");
			return 1;
		}
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			k == K_PRIVATE ? MAP_PRIVATE : MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("dirty_bench: mmap");
		return 1;
	}
	volatile char sink = 0;
	for (size_t i = 0; i < npages; i++)   /* populated, as a used heap is */
		sink += p[i * PG];
	(void)sink;
	/* the reference copy's buffer stays out of the fork column's children */
	char *copy = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (copy == MAP_FAILED || madvise(copy, len, MADV_DONTFORK) != 0) {
		perror("dirty_bench: copy buffer");
		return 1;
	}
	memcpy(copy, p, len);

	if (no_uffd)
		setenv("CKPT_TEST_NO_UFFD", "1", 1);
	struct dirty d;
	double t0 = now_ms();
	if (dirty_start(&d, p, len, k == K_PRIVATE) != 0) {
		perror("dirty_start");
		return 1;
	}
	double start = now_ms() - t0;
	unsetenv("CKPT_TEST_NO_UFFD");

	double *wr = calloc((size_t)reps, sizeof(double)), *fi = calloc((size_t)reps, sizeof(double));
	double *co = calloc((size_t)reps, sizeof(double)), *cl = calloc((size_t)reps, sizeof(double));
	double *mc = calloc((size_t)reps, sizeof(double)), *fk = calloc((size_t)reps, sizeof(double));
	int bad = 0;
	for (int r = 0; r < reps; r++) {
		t0 = now_ms();
		size_t n = write_scattered(p, npages, (unsigned)r);
		wr[r] = (now_ms() - t0) * 1e3 / (double)n;
		uint64_t found = 0;
		t0 = now_ms();
		dirty_collect(&d, len, 0, count_fn, &found);
		fi[r] = now_ms() - t0;
		uint64_t found2 = 0;
		t0 = now_ms();
		dirty_collect(&d, len, 1, count_fn, &found2);
		co[r] = now_ms() - t0;
		uint64_t found3 = 0;
		t0 = now_ms();
		dirty_collect(&d, len, 1, count_fn, &found3);
		cl[r] = now_ms() - t0;
		t0 = now_ms();
		memcpy(copy, p, len);
		mc[r] = now_ms() - t0;
		fflush(stdout);
		t0 = now_ms();
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		fk[r] = now_ms() - t0;
		if (pid > 0)
			waitpid(pid, NULL, 0);
		if (d.method == DIRTY_WP_ASYNC && (found != n || found2 != n || found3 != 0))
			bad = 1;
		if (d.method == DIRTY_PRIVATE_SCAN && found < n)
			bad = 1;
		if (d.method == DIRTY_ALL && found != npages)
			bad = 1;
	}
	printf("%-13s %6zu MiB  %-12s %8.2f ms %8.2f us %8.3f ms %8.3f ms %8.3f ms %8.3f ms %8.2f ms\n",
			kind_name[k], mib, dirty_method_name(d.method), start,
			median(wr, reps), median(fi, reps), median(co, reps), median(cl, reps),
			median(fk, reps), median(mc, reps));
	if (bad)
		fprintf(stderr, "dirty_bench: %s %zu MiB: a collect missed written pages (%s)\n",
				kind_name[k], mib, dirty_why(&d));
	dirty_stop(&d);
	free(wr); free(fi); free(co); free(cl); free(mc); free(fk);
	munmap(copy, len);
	free(buf);
	munmap(p, len);
	close(fd);
	return bad;
}

int
main(int argc, char **argv)
{
	int reps = 5, smoke = 0;
	const char *sizes = "64,1024", *dir = "/var/tmp";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--smoke")) {
			smoke = 1;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			reps = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
			sizes = argv[++i];
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [--smoke] [--reps N] [--sizes MiB,...] [--dir DIR]\n",
					argv[0]);
			return 2;
		}
	}
	if (smoke) {
		reps = 2;
		sizes = "8";
	}
	if (reps < 1)
		reps = 1;
	printf("# 1%% of pages written at scattered places between collects; medians of %d\n", reps);
	printf("%-13s %10s  %-12s %11s %11s %11s %11s %11s %11s %11s\n", "backing", "size",
			"method", "start", "write/pg", "find", "collect", "clean", "fork", "memcpy");
	int rc = 0;
	char *list = strdup(sizes), *save = NULL;
	for (char *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		size_t mib = (size_t)strtoul(s, NULL, 10);
		if (!mib)
			continue;
		for (int k = 0; k < 3; k++)
			rc |= run((enum kind)k, mib, reps, dir, 0);
		rc |= run(K_PRIVATE, mib, reps, dir, 1);   /* private-scan */
		rc |= run(K_SHARED, mib, reps, dir, 1);    /* all */
	}
	free(list);
	return rc;
}
