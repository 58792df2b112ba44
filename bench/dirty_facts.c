/*
 * dirty_facts.c -- the kernel facts libckpt/engine/dirty.c is built on,
 * measured again on the machine it runs on (bench/run-dirty.sh --facts).
 * Prints one line per fact; asserts nothing (exit 0 unless it cannot run).
 *
 *   (a) does userfaultfd WP async register on an ext4 MAP_SHARED mapping,
 *       an ext4 MAP_PRIVATE one, a memfd, anonymous memory;
 *   (b)(c) with and without UFFD_USER_MODE_ONLY: read(2) from a pipe,
 *       pread(2) and O_DIRECT pread(2) into protected pages (populated and
 *       not): do they succeed, are they reported written;
 *   fork (no UFFD_FEATURE_EVENT_FORK): in the child, is the range still
 *       registered, how do its pages read, does the inherited userfaultfd
 *       act on the parent, does a new one work;
 *   unprivileged (root only: a child drops to uid 65534): which ways to a
 *       userfaultfd work, and do kernel writes work through it.
 *
 *   dirty_facts [--dir DIR]     (files in DIR, default /var/tmp)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/uffd_uapi.h"

#define PG 4096
#define NP 64   /* pages 0..31 populated (read), 32..63 not */

static const char *dir = "/var/tmp";
static const char *const kinds[] = { "ext4-shared", "ext4-private", "memfd", "anon" };

/* written -- PAGEMAP_SCAN: 1 if page i of p reads PAGE_IS_WRITTEN, -errno on failure */
static int
written(int pm, char *p, int i, int check)
{
	struct page_region v[1];
	struct pm_scan_arg a;
	memset(&a, 0, sizeof(a));
	memset(v, 0, sizeof(v));
	a.size = sizeof(a);
	a.flags = check ? PM_SCAN_CHECK_WPASYNC : 0;
	a.start = (uint64_t)(uintptr_t)(p + (size_t)i * PG);
	a.end = a.start + PG;
	a.vec = (uint64_t)(uintptr_t)v;
	a.vec_len = 1;
	a.category_anyof_mask = PAGE_IS_WRITTEN;
	a.return_mask = PAGE_IS_WRITTEN;
	long n = ioctl(pm, PAGEMAP_SCAN, &a);
	return n < 0 ? -errno : (int)n;
}

/* count_written -- pages of [p, p+NP) reading written (no WP-async check) */
static int
count_written(int pm, char *p)
{
	int n = 0;
	for (int i = 0; i < NP; i++)
		n += written(pm, p, i, 0) == 1;
	return n;
}

static char *
mk(int k, int *fdp)
{
	int fd = -1;
	if (k == 3) {
		*fdp = -1;
		return mmap(NULL, NP * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (k == 2) {
		fd = memfd_create("facts", MFD_CLOEXEC);
	} else {
		char path[4096];
		snprintf(path, sizeof(path), "%s/dirty_facts.%d", dir, (int)getpid());
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		unlink(path);
	}
	char buf[PG];
	memset(buf, 'f', PG);
	for (int i = 0; i < NP; i++)
		if (fd < 0 || pwrite(fd, buf, PG, (off_t)i * PG) != PG)
			return MAP_FAILED;
	*fdp = fd;
	return mmap(NULL, NP * PG, PROT_READ | PROT_WRITE, k == 1 ? MAP_PRIVATE : MAP_SHARED, fd, 0);
}

/* arm -- userfaultfd (flags), WP async, register and protect p; fd or -errno, *step set */
static int
arm(char *p, int flags, const char **step)
{
	*step = "userfaultfd";
	int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | flags);
	if (u < 0)
		return -errno;
	struct uffdio_api api = { .api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	struct uffdio_register r = { .range = { (uint64_t)(uintptr_t)p, NP * PG },
		.mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect w = { .range = { (uint64_t)(uintptr_t)p, NP * PG },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP };
	*step = "UFFDIO_API";
	if (ioctl(u, UFFDIO_API, &api) == 0) {
		*step = "UFFDIO_REGISTER";
		if (ioctl(u, UFFDIO_REGISTER, &r) == 0) {
			*step = "UFFDIO_WRITEPROTECT";
			if (ioctl(u, UFFDIO_WRITEPROTECT, &w) == 0)
				return u;
		}
	}
	int e = errno;
	close(u);
	return -e;
}

static const char *
io_result(ssize_t n, ssize_t want, int err, int tracked)
{
	static char buf[8][64];
	static int i;
	char *b = buf[i++ % 8];
	if (n == want)
		snprintf(b, 64, "ok/%s", tracked == 1 ? "tracked" : "NOT-tracked");
	else
		snprintf(b, 64, "%s", n < 0 ? strerror(err) : "short");
	return b;
}

static void
kernel_writes(int k, int umo, int pm)
{
	int fd;
	const char *step;
	char *p = mk(k, &fd);
	if (p == MAP_FAILED) {
		printf("%-12s: cannot make the mapping: %s\n", kinds[k], strerror(errno));
		return;
	}
	volatile char sink = 0;
	for (int i = 0; i < NP / 2; i++)
		sink += p[i * PG];
	(void)sink;
	int u = arm(p, umo ? UFFD_USER_MODE_ONLY : 0, &step);
	if (u < 0) {
		printf("(a) %-12s %-15s WP async: %s: %s\n", kinds[k], umo ? "user-mode-only" : "",
				step, strerror(-u));
		goto out;
	}
	char src[2 * PG];
	memset(src, 'k', sizeof(src));
	char path[4096];
	snprintf(path, sizeof(path), "%s/dirty_facts_src.%d", dir, (int)getpid());
	int s = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int pf[2];
	if (s < 0 || pwrite(s, src, sizeof(src), 0) != (ssize_t)sizeof(src) || fsync(s) != 0 ||
			pipe2(pf, O_CLOEXEC | O_NONBLOCK) != 0) {
		printf("cannot set up the sources: %s\n", strerror(errno));
		goto out;
	}
	int dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	unlink(path);
	p[1 * PG] = 1;
	int uw = written(pm, p, 1, 1);
	const char *r[6];
	int pages[2] = { 3, 35 };   /* populated, not */
	for (int j = 0; j < 2; j++) {
		ssize_t n;
		int e;
		char *at = p + (size_t)pages[j] * PG;
		n = write(pf[1], src, PG) == PG ? read(pf[0], at, PG) : -1;
		e = errno;
		r[j * 3] = io_result(n, PG, e, written(pm, p, pages[j], 1));
		n = pread(s, at + 2 * PG, PG, 0);
		e = errno;
		r[j * 3 + 1] = io_result(n, PG, e, written(pm, p, pages[j] + 2, 1));
		n = dfd >= 0 ? pread(dfd, at + 4 * PG, PG, 0) : -1;
		e = dfd >= 0 ? errno : EINVAL;
		r[j * 3 + 2] = io_result(n, PG, e, written(pm, p, pages[j] + 4, 1));
	}
	printf("(a) %-12s %-15s WP async registers; user write %s\n", kinds[k],
			umo ? "user-mode-only" : "", uw == 1 ? "tracked" : "NOT tracked");
	printf("(b) %-12s %-15s read(pipe) %s / %s (populated / not); pread %s / %s\n",
			kinds[k], umo ? "user-mode-only" : "", r[0], r[3], r[1], r[4]);
	printf("(c) %-12s %-15s O_DIRECT pread %s / %s\n", kinds[k],
			umo ? "user-mode-only" : "", r[2], r[5]);
	if (dfd >= 0)
		close(dfd);
	close(s);
	close(pf[0]);
	close(pf[1]);
	close(u);
out:
	munmap(p, NP * PG);
	if (fd >= 0)
		close(fd);
}

static void
fork_facts(int k, int pm)
{
	int fd;
	const char *step;
	char *p = mk(k, &fd);
	if (p == MAP_FAILED)
		return;
	volatile char sink = 0;
	for (int i = 0; i < NP; i++)
		sink += p[i * PG];
	(void)sink;
	int u = arm(p, 0, &step);
	if (u < 0) {
		printf("fork %-12s: cannot arm: %s\n", kinds[k], strerror(-u));
		goto out;
	}
	p[5 * PG] = 1;   /* written in the parent before the fork, not collected */
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		int own = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		int chk = written(own, p, 0, 1);
		int inh = written(pm, p, 5, 1);
		printf("fork %-12s child: PAGEMAP_SCAN with CHECK_WPASYNC: %s; pages reading "
				"written without the check: %d of %d; the inherited pagemap fd reads the "
				"parent (page the parent wrote: %s)\n", kinds[k],
				chk < 0 ? strerror(-chk) : "ok (still registered)",
				count_written(own, p), NP, inh == 1 ? "written" : "not written");
		/* the inherited userfaultfd: protect the page the parent wrote */
		struct uffdio_writeprotect w = { .range = { (uint64_t)(uintptr_t)(p + 5 * PG), PG },
			.mode = UFFDIO_WRITEPROTECT_MODE_WP };
		int rc = ioctl(u, UFFDIO_WRITEPROTECT, &w);
		printf("fork %-12s child: UFFDIO_WRITEPROTECT on the inherited userfaultfd: %s\n",
				kinds[k], rc ? strerror(errno) : "ok");
		close(u);
		int nu = arm(p, 0, &step);
		if (nu >= 0) {
			p[7 * PG] = 1;
			printf("fork %-12s child: a new userfaultfd registers; a write after it %s, "
					"pages reading written: %d\n", kinds[k],
					written(own, p, 7, 1) == 1 ? "tracked" : "NOT tracked",
					count_written(own, p));
			close(nu);
		} else {
			printf("fork %-12s child: a new userfaultfd: %s: %s\n", kinds[k], step,
					strerror(-nu));
		}
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, NULL, 0);
	int w5 = written(pm, p, 5, 1);
	printf("fork %-12s parent after the child: still registered: %s; the page it wrote "
			"before the fork reads %s%s\n", kinds[k], w5 < 0 ? strerror(-w5) : "yes",
			w5 == 1 ? "written" : "NOT written",
			w5 == 0 ? " (the child's ioctl on the inherited fd protected the PARENT's page)" : "");
	close(u);
out:
	munmap(p, NP * PG);
	if (fd >= 0)
		close(fd);
}

static void
unprivileged(void)
{
	if (geteuid() != 0) {
		printf("unprivileged: not root, cannot drop to uid 65534: skipped\n");
		return;
	}
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(1);
		int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		printf("unprivileged: right after the uid change /proc/self/pagemap: %s\n",
				pm < 0 ? strerror(errno) : "ok");
		if (pm >= 0)
			close(pm);
		prctl(PR_SET_DUMPABLE, 1);
		pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
		printf("unprivileged: userfaultfd(0): %s\n", u < 0 ? strerror(errno) : "ok");
		if (u >= 0)
			close(u);
		int d = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		printf("unprivileged: /dev/userfaultfd: %s\n", d < 0 ? strerror(errno) : "ok");
		if (d >= 0)
			close(d);
		FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
		int v = -1;
		if (f) {
			if (fscanf(f, "%d", &v) != 1)
				v = -1;
			fclose(f);
		}
		printf("unprivileged: vm.unprivileged_userfaultfd = %d\n", v);
		if (pm >= 0) {
			dir = "/tmp";
			kernel_writes(0, 1, pm);
			kernel_writes(1, 1, pm);
		}
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, NULL, 0);
}

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [--dir DIR]\n", argv[0]);
			return 2;
		}
	}
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0) {
		perror("/proc/self/pagemap");
		return 1;
	}
	for (int umo = 0; umo < 2; umo++)
		for (int k = 0; k < 4; k++)
			kernel_writes(k, umo, pm);
	for (int k = 0; k < 4; k++)
		fork_facts(k, pm);
	unprivileged();
	return 0;
}
