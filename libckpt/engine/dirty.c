/*
 * dirty.c -- dirty tracking (provisional: the private-mapping scan and the
 * everything fallback; see dirty.h).
 *
 * DIRTY_PRIVATE_SCAN: in a MAP_PRIVATE file mapping, a page the process
 * (or the kernel on its behalf: read(2) into it) has written is an
 * anonymous copy; every other page is the file's. The PAGEMAP_SCAN ioctl on
 * /proc/self/pagemap (kernel 6.7) reports runs of pages that are present
 * or swapped and not file pages: exactly the pages written since the
 * mapping was made. Where the ioctl is missing, /proc/self/pagemap's
 * 8-byte entries say the same (bit 63 present, 62 swapped, 61 file page).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dirty.h"

#define PAGE ((uint64_t)4096)

#ifndef PAGEMAP_SCAN
struct page_region {
	uint64_t start;
	uint64_t end;
	uint64_t categories;
};
struct pm_scan_arg {
	uint64_t size;
	uint64_t flags;
	uint64_t start;
	uint64_t end;
	uint64_t walk_end;
	uint64_t vec;
	uint64_t vec_len;
	uint64_t max_pages;
	uint64_t category_inverted;
	uint64_t category_mask;
	uint64_t category_anyof_mask;
	uint64_t return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#endif

#define NREGIONS 512

const char *
dirty_method_name(enum dirty_method m)
{
	switch (m) {
	case DIRTY_WP_ASYNC:
		return "wp-async";
	case DIRTY_PRIVATE_SCAN:
		return "private-scan";
	default:
		return "all";
	}
}

int
dirty_start(struct dirty *d, void *addr, size_t len, int private_file_mapping)
{
	memset(d, 0, sizeof(*d));
	d->addr = addr;
	d->len = len;
	d->pagemap_fd = -1;
	d->method = DIRTY_ALL;
	d->why = "the mapping is shared: no kernel help without userfaultfd";
	if (!private_file_mapping)
		return 0;
	d->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (d->pagemap_fd < 0) {
		d->why = "cannot open /proc/self/pagemap";
		return 0;
	}
	d->method = DIRTY_PRIVATE_SCAN;
	d->why = "private file mapping: written pages are anonymous";
	return 0;
}

/* scan_ioctl -- PAGEMAP_SCAN for written runs; 1 if the ioctl is missing */
static int
scan_ioctl(struct dirty *d, uint64_t limit, int (*fn)(void *, uint64_t, uint64_t), void *arg)
{
	struct page_region r[NREGIONS];
	uint64_t base = (uint64_t)(uintptr_t)d->addr, pos = base, end = base + limit;
	uint64_t run_off = 0, run_len = 0;
	while (pos < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a), .start = pos, .end = end,
			.vec = (uint64_t)(uintptr_t)r, .vec_len = NREGIONS,
			.category_inverted = PAGE_IS_FILE, .category_mask = PAGE_IS_FILE,
			.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			.return_mask = PAGE_IS_FILE | PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		};
		long n = ioctl(d->pagemap_fd, PAGEMAP_SCAN, &a);
		if (n < 0) {
			if (pos == base && (errno == ENOTTY || errno == EINVAL))
				return 1;
			return ckpt_err_set(errno, "PAGEMAP_SCAN: %s", strerror(errno));
		}
		for (long i = 0; i < n; i++) {
			uint64_t o = r[i].start - base, l = r[i].end - r[i].start;
			if (run_len && run_off + run_len == o) {
				run_len += l;
				continue;
			}
			if (run_len) {
				int rc = fn(arg, run_off, run_len);
				if (rc)
					return rc;
			}
			run_off = o;
			run_len = l;
		}
		if (a.walk_end <= pos)
			break;
		pos = a.walk_end;
	}
	return run_len ? fn(arg, run_off, run_len) : 0;
}

/* scan_pagemap -- the same from /proc/self/pagemap entries */
static int
scan_pagemap(struct dirty *d, uint64_t limit, int (*fn)(void *, uint64_t, uint64_t), void *arg)
{
	uint64_t ent[NREGIONS];
	uint64_t first = (uint64_t)(uintptr_t)d->addr / PAGE, npages = limit / PAGE;
	uint64_t run_off = 0, run_len = 0;
	for (uint64_t i = 0; i < npages; i += NREGIONS) {
		uint64_t k = npages - i < NREGIONS ? npages - i : NREGIONS;
		ssize_t got = pread(d->pagemap_fd, ent, k * 8, (off_t)((first + i) * 8));
		if (got != (ssize_t)(k * 8))
			return ckpt_err_set(got < 0 ? errno : EIO, "cannot read /proc/self/pagemap");
		for (uint64_t j = 0; j < k; j++) {
			uint64_t e = ent[j];
			int written = ((e >> 63) & 1 || (e >> 62) & 1) && !((e >> 61) & 1);
			if (!written)
				continue;
			uint64_t o = (i + j) * PAGE;
			if (run_len && run_off + run_len == o) {
				run_len += PAGE;
				continue;
			}
			if (run_len) {
				int rc = fn(arg, run_off, run_len);
				if (rc)
					return rc;
			}
			run_off = o;
			run_len = PAGE;
		}
	}
	return run_len ? fn(arg, run_off, run_len) : 0;
}

int
dirty_collect(struct dirty *d, uint64_t limit, int rearm,
		int (*fn)(void *arg, uint64_t off, uint64_t len), void *arg)
{
	(void)rearm;
	limit = (limit + PAGE - 1) & ~(PAGE - 1);
	if (limit > d->len)
		limit = d->len;
	if (d->method == DIRTY_ALL)
		return limit ? fn(arg, 0, limit) : 0;
	int rc = scan_ioctl(d, limit, fn, arg);
	if (rc == 1)
		rc = scan_pagemap(d, limit, fn, arg);
	return rc;
}

void
dirty_stop(struct dirty *d)
{
	if (d->pagemap_fd >= 0)
		close(d->pagemap_fd);
	d->pagemap_fd = -1;
}

void
dirty_after_fork_child(struct dirty *d)
{
	/* the inherited descriptor reads the parent's page table */
	if (d->pagemap_fd < 0)
		return;
	close(d->pagemap_fd);
	d->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (d->pagemap_fd < 0) {
		d->method = DIRTY_ALL;
		d->why = "cannot open /proc/self/pagemap";
	}
}
