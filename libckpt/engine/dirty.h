/*
 * dirty.h -- which 4 KiB pages of a mapped range were written between two
 * collects, kernel writes (read(2), pread(2), O_DIRECT) included.
 *
 * The methods, their costs on the project's machines and the fallback
 * rules are in the essay at the top of dirty.c. In short: userfaultfd
 * write-protection in async mode read back with PAGEMAP_SCAN where the
 * kernel allows it, else (for a MAP_PRIVATE file mapping) the pages that
 * are no longer the file's, else every page. dirty_start never fails only
 * because the kernel refuses a method: it falls back and says why
 * (dirty_why).
 *
 * One collector at a time per struct dirty; any thread (and the kernel) may
 * write the range meanwhile.
 */
#ifndef CKPT_ENGINE_DIRTY_H
#define CKPT_ENGINE_DIRTY_H 1

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal.h"

#define DIRTY_PAGE ((uint64_t)4096)   /* tracking granularity */

enum dirty_method {
	/* userfaultfd WP async + PAGEMAP_SCAN: exact since the last collect
	 * that re-armed (or since dirty_start) */
	DIRTY_WP_ASYNC = 0,
	/* PAGEMAP_SCAN for present or swapped pages that are not the file's
	 * in a MAP_PRIVATE file mapping: exact since the mapping was made;
	 * collects cannot re-arm (a report is cumulative) */
	DIRTY_PRIVATE_SCAN = 1,
	/* no kernel help: every page is reported dirty */
	DIRTY_ALL = 2,
};

/*
 * dirty -- tracking state of one range [addr, addr + len).
 *
 * Invariants (between calls):
 *   addr is 4 KiB aligned, len > 0 and a multiple of 4 KiB;
 *   pid is the process whose page tables uffd and pagemap describe (both
 *   are per-mm: a fork child holding them sees and changes its PARENT's
 *   page tables, so every call first compares pid with getpid());
 *   method DIRTY_WP_ASYNC: uffd >= 0 has [addr, addr + len) registered in
 *     WP mode with UFFD_FEATURE_WP_ASYNC, pagemap >= 0; a page reads
 *     PAGE_IS_WRITTEN iff it may differ from what the last re-arming
 *     collect reported (written since, or its page-table entry dropped);
 *   method DIRTY_PRIVATE_SCAN: uffd == -1, pagemap >= 0;
 *   method DIRTY_ALL: uffd == -1, pagemap == -1;
 *   report_all: the next collect reports its whole span (the kernel's
 *     record was lost: a fork child re-armed, a collect aborted midway);
 *     cleared by a re-arming collect of the whole range;
 *   why: NUL-terminated, never empty after dirty_start.
 */
struct dirty {
	uintptr_t addr;
	size_t len;
	enum dirty_method method;
	int uffd;
	int pagemap;
	pid_t pid;
	int private_file;      /* dirty_start's private_file_mapping */
	int user_mode_only;    /* uffd was made with UFFD_USER_MODE_ONLY */
	int report_all;
	char why[320];         /* the method and why (fallback reasons) */
};

/*
 * dirty_start -- start tracking [addr, addr + len) (4 KiB aligned, len > 0)
 * with the best method this mapping and process get: WP async, else
 * PRIVATE_SCAN if private_file_mapping (addr is a MAP_PRIVATE mapping of a
 * file), else ALL. Every page counts as clean afterwards (for PRIVATE_SCAN:
 * every page still the file's). Fails (-1, ckpt_err_set) only on bad
 * arguments.
 */
CKPT_HIDDEN int dirty_start(struct dirty *d, void *addr, size_t len,
		int private_file_mapping);

/*
 * dirty_collect -- call fn(arg, off, len) for every run of written pages
 * in [0, limit) (offsets from addr, limit clamped to len and rounded up to
 * a page), in increasing order, adjacent runs coalesced. rearm (WP_ASYNC
 * only): write-protect again, in the same ioctl, exactly the pages
 * reported, so a write racing with the collect is either in this report or
 * in the next: fn may copy the run it is handed (already re-protected), and
 * a write racing with that copy shows up in the next collect. rearm is
 * ignored by PRIVATE_SCAN (reports are cumulative) and ALL. Runs are
 * computed per PAGEMAP_SCAN call of up to 256 runs and handed out as they
 * come. A nonzero return of fn stops the collect and is returned;
 * the pages not yet handed to fn stay dirty. Returns 0, fn's value, or -1
 * (ckpt_err_set) only if reporting itself is impossible (never because the
 * kernel lost the registration: that switches to DIRTY_ALL, says why, and
 * reports the unscanned rest as written).
 */
CKPT_HIDDEN int dirty_collect(struct dirty *d, uint64_t limit, int rearm,
		int (*fn)(void *arg, uint64_t off, uint64_t len), void *arg);

/*
 * dirty_grow -- DIRTY_WP_ASYNC: track [addr, addr + len) from now on, len
 * (4 KiB multiple) above the current one; the pages added count as clean
 * (the caller knows what was written there before). 0, or -1
 * (ckpt_err_set) with the tracking unchanged. Other methods: EINVAL.
 */
CKPT_HIDDEN int dirty_grow(struct dirty *d, size_t len);

/* dirty_stop -- stop tracking, release the kernel objects (idempotent) */
CKPT_HIDDEN void dirty_stop(struct dirty *d);

/*
 * dirty_after_fork_child -- call in a fork child before it writes the
 * range. Without UFFD_FEATURE_EVENT_FORK (which needs CAP_SYS_PTRACE) the
 * child's copy of the mapping is no longer registered and its entries lost
 * their write-protection, while the inherited userfaultfd and pagemap fds
 * still act on the parent: the child closes both without an ioctl, opens
 * its own, and re-arms (WP_ASYNC; its first collect then reports the whole
 * range, since what the parent had not collected before the fork is not
 * known here; see dirty_assume_clean) or falls back with a reason. PRIVATE_SCAN only reopens the
 * pagemap (pages the parent wrote stay non-file pages in the child).
 * dirty_collect does this itself if it finds itself in a new process.
 */
CKPT_HIDDEN void dirty_after_fork_child(struct dirty *d);

/*
 * dirty_assume_clean -- drop a pending whole-range report (report_all):
 * the caller has its own record of what was written before the last
 * re-arm, e.g. a fork engine that collected without re-arm in the parent
 * just before fork() and hands that set to the child. The next collect then
 * reports only what the kernel saw since the child re-armed.
 */
CKPT_HIDDEN void dirty_assume_clean(struct dirty *d);

/* dirty_method_name -- "wp-async", "private-scan", "all" */
CKPT_HIDDEN const char *dirty_method_name(enum dirty_method m);

/* dirty_why -- the method in use and why (for messages and inspect) */
CKPT_HIDDEN const char *dirty_why(const struct dirty *d);

#endif /* CKPT_ENGINE_DIRTY_H */
