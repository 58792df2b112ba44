/*
 * dirty.c -- exact dirty-page tracking of a mapped range (see dirty.h).
 *
 * The methods
 * -----------
 * 1. DIRTY_WP_ASYNC. A userfaultfd with UFFD_FEATURE_WP_ASYNC (and
 *    UFFD_FEATURE_WP_UNPOPULATED where the kernel has it) registers the
 *    range in UFFDIO_REGISTER_MODE_WP and UFFDIO_WRITEPROTECT protects all
 *    of it; holes get a uffd-wp marker. A write to a protected page, by the
 *    program or by the kernel on its behalf (copy_to_user of read(2),
 *    get_user_pages of O_DIRECT), takes one minor fault that the kernel
 *    resolves itself by dropping the page's uffd-wp bit: nothing is ever
 *    delivered to user space, so nothing blocks and nothing is EFAULT, and
 *    UFFD_USER_MODE_ONLY (which makes kernel-mode *delivered* faults
 *    EFAULT) changes nothing here. PAGEMAP_SCAN on /proc/self/pagemap then
 *    lists the pages without the bit (PAGE_IS_WRITTEN); with
 *    PM_SCAN_WP_MATCHING the same ioctl protects again exactly the pages it
 *    reports, each under its page-table lock, so a racing write lands
 *    either before (in this report) or after (in the next). An entry the
 *    kernel drops after a write (measured: MADV_DONTNEED, and MADV_PAGEOUT
 *    of a written page after msync, as reclaim does) is a hole without a
 *    marker, and PAGEMAP_SCAN reports a hole in a WP-async range as
 *    written: a dirty page is never lost, the worst is a page reported that
 *    did not change. PM_SCAN_CHECK_WPASYNC makes a scan fail (EPERM)
 *    instead of reporting nonsense if part of the range is no longer
 *    registered. Where the kernel maps a huge page (THP, hugetlb), a write
 *    reports its whole 2 MiB.
 * 2. DIRTY_PRIVATE_SCAN. In a MAP_PRIVATE mapping of a file, a written
 *    page is an anonymous copy, an unwritten one is the file's page cache
 *    page (or not present). PAGEMAP_SCAN for pages present or swapped and
 *    not PAGE_IS_FILE gives exactly the pages written since the mapping was
 *    made, with no userfaultfd and no privilege; there is nothing to re-arm
 *    (short of mapping again), so its reports are cumulative.
 * 3. DIRTY_ALL. No kernel help: every collect reports the whole span.
 *
 * Not methods, and why (this kernel): soft-dirty bits are compiled out
 * (CONFIG_MEM_SOFT_DIRTY is not set); mprotect + SIGSEGV costs 17-30 us a
 * page and a read(2) into a PROT_READ page is EFAULT (measured), which
 * breaks kernel writes; userfaultfd WP in synchronous mode is EINVAL on
 * ext4 mappings and makes a kernel write sleep until a handler thread
 * resolves it.
 *
 * Measured on the project's machine (Debian 12 VM, kernel 6.18, 2 vCPUs,
 * ext4) with bench/dirty_facts.c (`bench/run-dirty.sh --facts` prints
 * every fact below again) and bench/dirty_bench.c (the costs):
 *   (a) WP async registers and tracks on ext4 MAP_SHARED, ext4 MAP_PRIVATE,
 *       memfd and anonymous memory (WP sync and MISSING are EINVAL on ext4).
 *   (b) read(2) from a pipe and pread(2) from a file into protected pages,
 *       populated or not, succeed and are tracked, with and without
 *       UFFD_USER_MODE_ONLY. Unprivileged (uid 65534, vm.unprivileged_
 *       userfaultfd = 0): userfaultfd(0) is EPERM, /dev/userfaultfd (0600
 *       root) EACCES, userfaultfd(UFFD_USER_MODE_ONLY) works, kernel writes
 *       included. So user-mode-only is the unprivileged path, taken only
 *       after a self-test (below) proves a kernel write into a protected
 *       page succeeds and is tracked.
 *   (c) O_DIRECT pread into protected pages: succeeds and is tracked.
 *   (d) collect cost, 1% of pages written at scattered places: see the
 *       table in COSTS below.
 *
 * Fallback rules (dirty_start, first that works; why[] records each refusal)
 *   - CKPT_TEST_NO_UFFD=1 (testhook.h) skips userfaultfd, as a kernel or a
 *     seccomp filter that refuses it would;
 *   - /proc/self/pagemap must open (a non-dumpable process, e.g. one that
 *     changed uid, cannot): else DIRTY_ALL;
 *   - a userfaultfd from userfaultfd(2), else /dev/userfaultfd, else
 *     userfaultfd(2) with UFFD_USER_MODE_ONLY -- each must accept
 *     UFFDIO_API with WP_ASYNC (WP_UNPOPULATED asked for, not required:
 *     file-backed memory gets markers without it), UFFDIO_REGISTER (WP) of
 *     a scratch page, pass the self-test (read(2) from a pipe into the
 *     protected scratch page succeeds and PAGEMAP_SCAN reports it written),
 *     then register and protect the range and pass a PAGEMAP_SCAN with
 *     PM_SCAN_CHECK_WPASYNC over it;
 *   - else DIRTY_PRIVATE_SCAN if the caller says the range is a MAP_PRIVATE
 *     file mapping and a PAGEMAP_SCAN of it works;
 *   - else DIRTY_ALL.
 *   A collect whose scan fails (the registration vanished: the range was
 *   unmapped or remapped under us) reports what it has not scanned as
 *   written and switches to DIRTY_ALL with the reason.
 *
 * Fork (no UFFD_FEATURE_EVENT_FORK: it needs CAP_SYS_PTRACE), measured:
 *   the child's copy of the range is not registered (PAGEMAP_SCAN with
 *   PM_SCAN_CHECK_WPASYNC is EPERM there; without it every page reads
 *   written: a MAP_SHARED range has no page tables in the child, a private
 *   one has its entries copied with the uffd-wp bits cleared); the
 *   inherited userfaultfd still belongs to the parent's mm (UFFDIO_
 *   WRITEPROTECT on it from the child succeeds and protects the PARENT's
 *   pages: a page the parent had written then reads clean there, a lost
 *   dirty page), and so does the inherited /proc/self/pagemap fd (a scan
 *   of it in the child reads the parent). The parent's tracking is
 *   unaffected as long as the child leaves the inherited fd alone, but it
 *   never sees the child's writes to a shared file (they go through the
 *   child's page tables). A new userfaultfd registered in the child
 *   works and tracks exactly from then on. So dirty_after_fork_child closes
 *   both fds without an ioctl, re-arms, and reports everything once, unless
 *   the caller holds the parent's pre-fork set (a collect without re-arm
 *   just before fork(), about 2 ms per GiB) and says so with
 *   dirty_assume_clean.
 *
 * Not seen by any method: writes to the same file pages through another
 * mapping or process, or through write(2) to the file itself.
 *
 * COSTS, measured 2026-12-02 with `bench/run-dirty.sh --sizes 64,1024
 * --reps 7` (medians of 7, populated ranges, 1% of the pages written at
 * scattered places between collects; the machine was shared, load 8-10 on
 * 2 vCPUs, so take ratios, and read 1 GiB figures as +-2x):
 *
 *   backing       size     method        start  write/pg   find  collect  clean  fork  memcpy
 *   ext4 shared   64 MiB   wp-async      0.7ms   27 us    0.15ms  0.13ms 0.11ms 0.24ms  20 ms
 *   ext4 private  64 MiB   wp-async      0.7ms  3.3 us    0.13ms  0.12ms 0.11ms 0.93ms  10 ms
 *   memfd         64 MiB   wp-async      5.0ms  1.1 us    0.13ms  0.12ms 0.13ms 0.21ms  14 ms
 *   ext4 private  64 MiB   private-scan  0.4ms  3.0 us    0.43ms  0.32ms 0.33ms 0.79ms  18 ms
 *   ext4 shared   64 MiB   all (none)    0.04ms  12 us       -       -      -   0.22ms  13 ms
 *   ext4 shared   1 GiB    wp-async       18ms   30 us     2.1ms   2.1ms  1.9ms 0.27ms 220 ms
 *   ext4 private  1 GiB    wp-async      9.0ms  3.3 us     6.3ms   2.2ms  3.7ms   18ms 229 ms
 *   memfd         1 GiB    wp-async       30ms  1.2 us     4.5ms   2.3ms  2.1ms 0.21ms 189 ms
 *   ext4 private  1 GiB    private-scan  6.0ms  3.5 us      11ms   8.9ms  9.6ms   12ms 195 ms
 *   ext4 shared   1 GiB    all (none)    0.06ms  35 us       -       -      -   0.23ms 238 ms
 *
 *   start: dirty_start (probe, self-test, register, UFFDIO_WRITEPROTECT of
 *   every page); write/pg: first write to a page after a collect; find:
 *   collect without re-arm; collect: with re-arm (one pass); clean: a
 *   re-arming collect that finds nothing; fork: the parent's fork() pause
 *   with the range tracked; memcpy: copying the whole range once, the
 *   least a checkpoint costs when every page is reported (DIRTY_ALL).
 *   Reading: a collect costs ~2 ms per GiB, 1% of a full copy, and the same
 *   with or without re-arm; WP async adds nothing measurable to a write on
 *   ext4 MAP_SHARED (its first write after writeback costs 30-35 us with or
 *   without tracking: ext4's page_mkwrite) and ~1 us on memfd; fork of a
 *   tracked MAP_SHARED range stays ~0.2 ms at any size (no page tables are
 *   copied: the child's copy is unregistered), a MAP_PRIVATE range copies
 *   its page tables with or without tracking. private-scan costs 3-5x a
 *   WP-async collect (it inspects every present entry's page).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>

#include "engine/dirty.h"
#include "engine/uffd.h"
#include "testhook.h"

#define VEC_LEN 256   /* page_region entries per PAGEMAP_SCAN call (6 KiB of stack) */

const char *
dirty_method_name(enum dirty_method m)
{
	switch (m) {
	case DIRTY_WP_ASYNC: return "wp-async";
	case DIRTY_PRIVATE_SCAN: return "private-scan";
	case DIRTY_ALL: return "all";
	}
	return "?";
}

const char *
dirty_why(const struct dirty *d)
{
	return d->why;
}

/* why_add -- append "; text" (or text) to d->why, truncating */
static void
why_add(struct dirty *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void
why_add(struct dirty *d, const char *fmt, ...)
{
	size_t n = strlen(d->why);
	if (n + 3 >= sizeof(d->why))
		return;
	if (n) {
		memcpy(d->why + n, "; ", 3);
		n += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->why + n, sizeof(d->why) - n, fmt, ap);
	va_end(ap);
}

/* close_fd -- close *fd if open, set it to -1 */
static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		int e = errno;
		close(*fd);
		errno = e;
		*fd = -1;
	}
}

/* scan_args -- a PAGEMAP_SCAN request over [start, end) for method m */
static void
scan_args(struct pm_scan_arg *a, enum dirty_method m, uint64_t start, uint64_t end,
		uint64_t flags, struct page_region *vec, size_t vec_len)
{
	memset(a, 0, sizeof(*a));
	/* defined for memory checkers that do not know this ioctl writes vec */
	memset(vec, 0, vec_len * sizeof(*vec));
	a->size = sizeof(*a);
	a->flags = flags;
	a->start = start;
	a->end = end;
	a->vec = (uint64_t)(uintptr_t)vec;
	a->vec_len = vec_len;
	if (m == DIRTY_WP_ASYNC) {
		a->category_anyof_mask = PAGE_IS_WRITTEN;
		a->return_mask = PAGE_IS_WRITTEN;
	} else {
		/* not the file's, and there (in memory or in swap) */
		a->category_inverted = PAGE_IS_FILE;
		a->category_mask = PAGE_IS_FILE;
		a->category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
		a->return_mask = PAGE_IS_FILE;
	}
}

/* uffd_api -- enable WP async on a fresh uffd; 0, or -1 with errno */
static int
uffd_api(int fd, int *unpopulated)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};
	if (ioctl(fd, UFFDIO_API, &api) == 0) {
		*unpopulated = 1;
		return 0;
	}
	return -1;
}

/* uffd_protect -- register [start, start+len) in WP mode and protect it */
static int
uffd_protect(int fd, uint64_t start, uint64_t len, const char **step)
{
	struct uffdio_register r = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	*step = "UFFDIO_REGISTER";
	if (ioctl(fd, UFFDIO_REGISTER, &r) != 0)
		return -1;
	struct uffdio_writeprotect w = {
		.range = { .start = start, .len = len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	*step = "UFFDIO_WRITEPROTECT";
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &w) != 0) {
		int e = errno;
		ioctl(fd, UFFDIO_UNREGISTER, &r.range);
		errno = e;
		return -1;
	}
	return 0;
}

/*
 * self_test -- on a protected scratch page registered with fd: read(2) into
 * it from a pipe must succeed (no EFAULT, no block: the pipe is
 * non-blocking and holds the bytes) and PAGEMAP_SCAN must call it written.
 */
static int
self_test(int fd, int pagemap, const char **step)
{
	int ok = -1;
	int p[2] = { -1, -1 };
	void *page = mmap(NULL, DIRTY_PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	*step = "scratch mmap";
	if (page == MAP_FAILED)
		return -1;
	*(volatile char *)page = 0;  /* populated: works with or without WP_UNPOPULATED */
	uint64_t start = (uint64_t)(uintptr_t)page;
	if (uffd_protect(fd, start, DIRTY_PAGE, step) != 0)
		goto out;
	*step = "pipe";
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0)
		goto out_unreg;
	static const char probe[64] = "libckpt dirty self-test";
	*step = "read(2) into a protected page";
	if (write(p[1], probe, sizeof(probe)) != (ssize_t)sizeof(probe) ||
			read(p[0], page, sizeof(probe)) != (ssize_t)sizeof(probe))
		goto out_unreg;
	struct page_region v[1];
	struct pm_scan_arg a;
	scan_args(&a, DIRTY_WP_ASYNC, start, start + DIRTY_PAGE,
			PM_SCAN_CHECK_WPASYNC, v, 1);
	*step = "PAGEMAP_SCAN of the self-test page";
	long n = ioctl(pagemap, PAGEMAP_SCAN, &a);
	if (n < 0)
		goto out_unreg;
	*step = "self-test: a kernel write was not tracked";
	if (n != 1 || v[0].start != start || v[0].end != start + DIRTY_PAGE) {
		errno = ENOTRECOVERABLE;
		goto out_unreg;
	}
	ok = 0;
out_unreg:;
	int e = errno;
	struct uffdio_range r = { .start = start, .len = DIRTY_PAGE };
	ioctl(fd, UFFDIO_UNREGISTER, &r);
	errno = e;
out:
	e = errno;
	close_fd(&p[0]);
	close_fd(&p[1]);
	munmap(page, DIRTY_PAGE);
	errno = e;
	return ok;
}

/* check_scan -- one PAGEMAP_SCAN over the range for method m works */
static int
check_scan(const struct dirty *d, enum dirty_method m)
{
	struct page_region v[1];
	struct pm_scan_arg a;
	scan_args(&a, m, d->addr, d->addr + d->len,
			m == DIRTY_WP_ASYNC ? PM_SCAN_CHECK_WPASYNC : 0, v, 1);
	return ioctl(d->pagemap, PAGEMAP_SCAN, &a) < 0 ? -1 : 0;
}

/* arm_wp_async -- try every way to a userfaultfd; 0 with d->uffd set, or -1 */
static int
arm_wp_async(struct dirty *d)
{
	if (test_flag("CKPT_TEST_NO_UFFD")) {
		why_add(d, "userfaultfd disabled (CKPT_TEST_NO_UFFD=1)");
		return -1;
	}
	for (int way = 0; way < UFFD_WAYS; way++) {
		const char *step = "open";
		int unpop = 0;
		int fd = uffd_open(way);
		if (fd < 0) {
			why_add(d, "%s: %s", uffd_way_name(way), strerror(errno));
			continue;
		}
		step = "UFFDIO_API WP_ASYNC";
		if (uffd_api(fd, &unpop) != 0) {
			/* a kernel with WP_ASYNC but not WP_UNPOPULATED: a new fd */
			close_fd(&fd);
			fd = uffd_open(way);
			struct uffdio_api api = { .api = UFFD_API,
				.features = UFFD_FEATURE_WP_ASYNC };
			if (fd < 0 || ioctl(fd, UFFDIO_API, &api) != 0)
				goto refused;
		}
		if (self_test(fd, d->pagemap, &step) != 0)
			goto refused;
		if (uffd_protect(fd, d->addr, d->len, &step) != 0)
			goto refused;
		step = "PAGEMAP_SCAN with PM_SCAN_CHECK_WPASYNC";
		if (check_scan(d, DIRTY_WP_ASYNC) != 0) {
			int e = errno;
			struct uffdio_range r = { .start = d->addr, .len = d->len };
			ioctl(fd, UFFDIO_UNREGISTER, &r);
			errno = e;
			goto refused;
		}
		d->uffd = fd;
		d->user_mode_only = way == UFFD_WAY_USER_ONLY;
		why_add(d, "wp-async via %s%s", uffd_way_name(way),
				unpop ? "" : " (no WP_UNPOPULATED)");
		return 0;
refused:
		why_add(d, "%s: %s: %s", uffd_way_name(way), step, strerror(errno));
		close_fd(&fd);
	}
	return -1;
}

/* choose -- set d->method (and fds) for d->addr/len; never fails */
static void
choose(struct dirty *d)
{
	d->uffd = -1;
	d->report_all = 0;
	d->user_mode_only = 0;
	d->pid = getpid();
	d->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (d->pagemap < 0) {
		why_add(d, "/proc/self/pagemap: %s", strerror(errno));
		goto all;
	}
	/*
	 * A private file mapping is scanned first: exact since the mapping
	 * was made, with nothing to register or re-arm, and a fork child
	 * inherits it whole (the cow engine re-bases after each checkpoint,
	 * so "since the mapping" is "since the last checkpoint")
	 */
	if (d->private_file) {
		if (check_scan(d, DIRTY_PRIVATE_SCAN) == 0) {
			d->method = DIRTY_PRIVATE_SCAN;
			why_add(d, "private-scan: non-file pages of the MAP_PRIVATE mapping");
			return;
		}
		why_add(d, "private-scan: PAGEMAP_SCAN: %s", strerror(errno));
	}
	if (arm_wp_async(d) == 0) {
		d->method = DIRTY_WP_ASYNC;
		return;
	}
	close_fd(&d->pagemap);
all:
	d->method = DIRTY_ALL;
	why_add(d, "all: every page reported");
}

int
dirty_start(struct dirty *d, void *addr, size_t len, int private_file_mapping)
{
	uintptr_t a = (uintptr_t)addr;
	uint64_t end;
	memset(d, 0, sizeof(*d));
	d->uffd = d->pagemap = -1;
	d->method = DIRTY_ALL;
	if (a == 0 || a % DIRTY_PAGE || len == 0 || len % DIRTY_PAGE ||
			add_overflows(a, len, &end))
		return ckpt_err_set(EINVAL, "dirty tracking: range %p+%zu is not "
				"a non-empty run of whole 4 KiB pages", addr, len);
	d->addr = a;
	d->len = len;
	d->private_file = private_file_mapping != 0;
	choose(d);
	return 0;
}

int
dirty_grow(struct dirty *d, size_t len)
{
	uint64_t end;
	if (d->method != DIRTY_WP_ASYNC || d->pid != getpid() || len <= d->len ||
	    len % DIRTY_PAGE || add_overflows(d->addr, len, &end))
		return ckpt_err_set(EINVAL, "dirty tracking: cannot grow to %zu bytes", len);
	const char *step;
	if (uffd_protect(d->uffd, d->addr + d->len, len - d->len, &step) != 0)
		return ckpt_err_set(errno, "dirty tracking: %s of the range's growth: %s", step,
				strerror(errno));
	d->len = len;
	return 0;
}

void
dirty_stop(struct dirty *d)
{
	if (d->uffd >= 0 && d->pid == getpid()) {
		/*
		 * Unregister explicitly: a fork child may still hold the fd,
		 * and closing ours would then not release the registration.
		 */
		struct uffdio_range r = { .start = d->addr, .len = d->len };
		int e = errno;
		ioctl(d->uffd, UFFDIO_UNREGISTER, &r);
		errno = e;
	}
	close_fd(&d->uffd);
	close_fd(&d->pagemap);
	d->method = DIRTY_ALL;
	d->report_all = 0;
}

void
dirty_after_fork_child(struct dirty *d)
{
	if (d->pid == getpid())
		return;
	enum dirty_method was = d->method;
	/* both fds act on the parent's mm: close without any ioctl */
	close_fd(&d->uffd);
	close_fd(&d->pagemap);
	if (was == DIRTY_ALL) {
		d->pid = getpid();
		return;
	}
	d->why[0] = '\0';
	why_add(d, "fork child of %d", (int)d->pid);
	if (was == DIRTY_PRIVATE_SCAN) {
		/* the pages the parent wrote are non-file pages here too */
		d->pid = getpid();
		d->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
		if (d->pagemap >= 0 && check_scan(d, DIRTY_PRIVATE_SCAN) == 0) {
			why_add(d, "private-scan: non-file pages of the MAP_PRIVATE mapping");
			return;
		}
		why_add(d, "private-scan: %s; all: every page reported", strerror(errno));
		close_fd(&d->pagemap);
		d->method = DIRTY_ALL;
		return;
	}
	choose(d);
	/*
	 * What the parent wrote and had not collected is lost with its WP
	 * bits (private-scan, if it came to that, still sees those pages)
	 */
	if (d->method == DIRTY_WP_ASYNC)
		d->report_all = 1;
}

void
dirty_assume_clean(struct dirty *d)
{
	d->report_all = 0;
}

/* run state of one collect: the coalescing run not yet handed to fn */
struct emit {
	struct dirty *d;
	int (*fn)(void *arg, uint64_t off, uint64_t len);
	void *arg;
	uint64_t off, len;   /* pending run, len 0: none */
	int rc;              /* fn's nonzero return, once it stopped */
};

/* emit_run -- add [off, off+len) to the pending run, handing out the previous one */
static int
emit_run(struct emit *e, uint64_t off, uint64_t len)
{
	if (e->len && e->off + e->len == off) {
		e->len += len;
		return 0;
	}
	if (e->len) {
		int rc = e->fn(e->arg, e->off, e->len);
		if (rc) {
			e->rc = rc;
			return rc;
		}
	}
	e->off = off;
	e->len = len;
	return 0;
}

/* emit_flush -- hand out the pending run */
static int
emit_flush(struct emit *e)
{
	if (!e->len)
		return 0;
	int rc = e->fn(e->arg, e->off, e->len);
	if (rc)
		e->rc = rc;
	else
		e->len = 0;
	return rc;
}

/* give_back -- mark [start, end) written again (un-protect) after an aborted re-arm */
static void
give_back(struct dirty *d, uint64_t start, uint64_t end)
{
	struct uffdio_writeprotect w = {
		.range = { .start = start, .len = end - start },
		.mode = 0,
	};
	int e = errno;
	if (end > start && ioctl(d->uffd, UFFDIO_WRITEPROTECT, &w) != 0)
		d->report_all = 1;
	errno = e;
}

/* lost -- a scan failed: the kernel no longer tracks the range; fall back to all */
static void
lost(struct dirty *d)
{
	why_add(d, "collect: PAGEMAP_SCAN: %s; now all", strerror(errno));
	if (d->uffd >= 0 && d->pid == getpid()) {
		struct uffdio_range r = { .start = d->addr, .len = d->len };
		ioctl(d->uffd, UFFDIO_UNREGISTER, &r);
	}
	close_fd(&d->uffd);
	close_fd(&d->pagemap);
	d->method = DIRTY_ALL;
	d->report_all = 0;
}

/* collect_scan -- PAGEMAP_SCAN loop over [addr, addr+span) for WP_ASYNC / PRIVATE_SCAN */
static int
collect_scan(struct dirty *d, uint64_t span, int rearm, struct emit *e)
{
	struct page_region vec[VEC_LEN];
	uint64_t end = d->addr + span;
	uint64_t cur = d->addr;
	uint64_t flags = 0;
	if (d->method == DIRTY_WP_ASYNC)
		flags = PM_SCAN_CHECK_WPASYNC | (rearm ? PM_SCAN_WP_MATCHING : 0);
	while (cur < end) {
		struct pm_scan_arg a;
		scan_args(&a, d->method, cur, end, flags, vec, VEC_LEN);
		long n = ioctl(d->pagemap, PAGEMAP_SCAN, &a);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* the kernel lost the range: what is not scanned is unknown */
			lost(d);
			if (emit_run(e, cur - d->addr, end - cur))
				return e->rc;
			return 0;
		}
		for (long i = 0; i < n; i++) {
			if (emit_run(e, vec[i].start - d->addr, vec[i].end - vec[i].start)) {
				/*
				 * fn stopped: the pages it did not take were
				 * re-protected by this scan; make them dirty again
				 */
				if (rearm && d->method == DIRTY_WP_ASYNC) {
					give_back(d, d->addr + e->off, d->addr + e->off + e->len);
					for (long j = i; j < n; j++)
						give_back(d, vec[j].start, vec[j].end);
				}
				return e->rc;
			}
		}
		uint64_t next = a.walk_end;
		if (next <= cur && n == 0)
			return ckpt_err_set(EIO, "dirty collect: PAGEMAP_SCAN made no progress at %#llx",
					(unsigned long long)cur);
		cur = next > cur ? next : cur;
	}
	return 0;
}

int
dirty_collect(struct dirty *d, uint64_t limit, int rearm,
		int (*fn)(void *arg, uint64_t off, uint64_t len), void *arg)
{
	if (d->len == 0)
		return ckpt_err_set(EINVAL, "dirty collect: tracking not started");
	if (d->pid != getpid())
		dirty_after_fork_child(d);
	uint64_t span = limit < d->len ? align_up(limit, DIRTY_PAGE) : d->len;
	if (span > d->len)
		span = d->len;
	if (span == 0)
		return 0;
	struct emit e = { .d = d, .fn = fn, .arg = arg };

	if (d->method == DIRTY_ALL)
		return fn(arg, 0, span);

	if (d->report_all) {
		/* re-arm first (discarding the list), then report the whole span */
		int whole = span == d->len;
		if (rearm && d->method == DIRTY_WP_ASYNC) {
			uint64_t cur = d->addr, end = d->addr + span;
			struct page_region vec[VEC_LEN];
			while (cur < end) {
				struct pm_scan_arg a;
				scan_args(&a, DIRTY_WP_ASYNC, cur, end,
						PM_SCAN_CHECK_WPASYNC | PM_SCAN_WP_MATCHING,
						vec, VEC_LEN);
				long n = ioctl(d->pagemap, PAGEMAP_SCAN, &a);
				if (n < 0) {
					if (errno == EINTR)
						continue;
					lost(d);
					whole = 0;
					break;
				}
				if (a.walk_end <= cur && n == 0)
					break;
				cur = a.walk_end > cur ? a.walk_end : cur;
			}
		}
		int rc = fn(arg, 0, span);
		if (rc == 0 && rearm && whole && d->method == DIRTY_WP_ASYNC)
			d->report_all = 0;
		return rc;
	}

	int rc = collect_scan(d, span, rearm, &e);
	if (rc)
		return rc;
	if (emit_flush(&e)) {
		if (rearm && d->method == DIRTY_WP_ASYNC)
			give_back(d, d->addr + e.off, d->addr + e.off + e.len);
		return e.rc;
	}
	return 0;
}
