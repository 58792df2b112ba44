/*
 * vprot.c -- the protection of the pool pages vmem.c serves, as the
 * kernel has it, so that vmem.c can do what the kernel would without
 * asking it.
 *
 * Why. The program sees its anonymous mappings; the kernel sees one
 * shared (or, in cow mode, private) mapping of the pool, split by the
 * program's mprotect calls. Two things need the protection of a given
 * page, and the kernel cannot be asked for it short of parsing
 * /proc/self/maps (slow, and absent where /proc is not mounted):
 *  - zeroing a range the program may have taken the write permission
 *    from (mprotect PROT_NONE, then MADV_DONTNEED, as allocators
 *    decommit) where the heap is private memory (cow mode, a detached
 *    heap): a store is the only way to zero it there (MADV_DONTNEED on a
 *    private file mapping brings the file's bytes back), so the range is
 *    made writable for the store and given its protection back
 *    (vprot_zero);
 *  - mremap: the kernel gives the pages a mapping grows by, and a mapping
 *    it moves, the protection of the mapping, while the pages vmem.c
 *    grows a window over keep whatever they had when it was trimmed;
 *  - checkpoints that read the heap's memory (fork mode cow writes the
 *    pages written since its base from it, a sealed pool encrypts it)
 *    would fail (EFAULT) or fault on a page the program made PROT_NONE:
 *    vprot_reveal makes those readable for the checkpoint (in a
 *    background checkpoint's child only, its own copy), vprot_apply
 *    gives every run its protection back after a checkpoint in the
 *    process (which, in cow mode, maps the heap anew: read-write).
 *
 * How. A sorted table of runs [start, end) with a protection other than
 * PROT_READ | PROT_WRITE; a page in no run is read-write (what serve()
 * gives a new block). Runs never cross a block's bounds (vprot_set merges
 * neighbours only within the bounds it is given), so forgetting a block's
 * runs never splits one and never allocates. vprot_set makes the
 * mprotect call and records it only when the call succeeded, with the
 * room for the record taken first: the table and the kernel never
 * disagree. Pages of a block the program unmapped keep their run: it is
 * still the kernel's protection there, until the window grows over them
 * again or the block is freed.
 *
 * Cost: nothing for a program that never changes a protection (no run: a
 * binary search of an empty table). The zeroing of a protected range in a
 * heap in memory takes two mprotect calls per run it meets and a memset;
 * measured against a pwrite of zeroes through /proc/self/mem (the
 * kernel's FOLL_FORCE writes through any protection of a private
 * mapping, on kernels built with PROC_MEM_ALWAYS_FORCE only), on a
 * MAP_PRIVATE file mapping: 2.5 us against 7.7 us for 16 KiB, 98 us
 * against 425 us for 2 MiB.
 *
 * The table is vmem.c's: every function here is called with its mutex
 * held. Its memory comes from boot_alloc, never from the pool.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload.h"

#define RW (PROT_READ | PROT_WRITE)

struct prun {
	uintptr_t start, end;   /* page-aligned, start < end */
	int prot;               /* never RW */
};

static struct prun *run;
static size_t nrun, caprun;

/* run_find -- index of the first run whose end is above a (nrun if none) */
static size_t
run_find(uintptr_t a)
{
	size_t lo = 0, hi = nrun;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (run[mid].end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* run_room -- room for more runs; -1 (ENOMEM) */
static int
run_room(size_t more)
{
	if (nrun + more <= caprun)
		return 0;
	size_t ncap = caprun ? caprun * 2 : 64;
	while (ncap < nrun + more)
		ncap *= 2;
	struct prun *n = boot_alloc(ncap * sizeof(*n), 16);
	if (!n) {
		errno = ENOMEM;
		return -1;
	}
	if (run) {
		memcpy(n, run, nrun * sizeof(*n));
		boot_free(run);
	}
	run = n;
	caprun = ncap;
	return 0;
}

/* run_insert -- a run at index i (room taken) */
static void
run_insert(size_t i, uintptr_t start, uintptr_t end, int prot)
{
	memmove(&run[i + 1], &run[i], (nrun - i) * sizeof(*run));
	run[i] = (struct prun){ start, end, prot };
	nrun++;
}

/* record -- [a, e) has protection prot now; merge within [lo, hi) (room taken) */
static void
record(uintptr_t a, uintptr_t e, int prot, uintptr_t lo, uintptr_t hi)
{
	size_t i = run_find(a);
	if (i < nrun && run[i].start < a) {
		if (run[i].end > e)     /* [a, e) inside it: its tail stays */
			run_insert(i + 1, e, run[i].end, run[i].prot);
		run[i].end = a;
		i++;
	}
	size_t j = i;
	while (j < nrun && run[j].end <= e)
		j++;
	if (j < nrun && run[j].start < e)
		run[j].start = e;
	memmove(&run[i], &run[j], (nrun - j) * sizeof(*run));
	nrun -= j - i;
	if (prot == RW)
		return;
	int left = i > 0 && run[i - 1].end == a && run[i - 1].prot == prot &&
		run[i - 1].start >= lo;
	int right = i < nrun && run[i].start == e && run[i].prot == prot && run[i].end <= hi;
	if (left && right) {
		run[i - 1].end = run[i].end;
		memmove(&run[i], &run[i + 1], (nrun - i - 1) * sizeof(*run));
		nrun--;
	} else if (left) {
		run[i - 1].end = e;
	} else if (right) {
		run[i].start = a;
	} else {
		run_insert(i, a, e, prot);
	}
}

int
vprot_rw(uintptr_t a, uintptr_t e)
{
	size_t i = run_find(a);
	return !(i < nrun && run[i].start < e);
}

int
vprot_at(uintptr_t a)
{
	size_t i = run_find(a);
	return i < nrun && run[i].start <= a ? run[i].prot : RW;
}

int
vprot_set(uintptr_t a, uintptr_t e, int prot, uintptr_t lo, uintptr_t hi)
{
	if (a & 4095) {
		errno = EINVAL;
		return -1;
	}
	if (e <= a)
		return (int)syscall(SYS_mprotect, a, 0, prot);
	if (prot == RW && vprot_rw(a, e))
		return 0;       /* read-write already: no call */
	size_t i = run_find(a);
	size_t split = i < nrun && run[i].start < a && run[i].end > e;
	if (run_room(split + (prot != RW)) < 0)
		return -1;
	if (syscall(SYS_mprotect, a, e - a, prot) != 0)
		return -1;
	record(a, e, prot, lo, hi);
	return 0;
}

void
vprot_zero(uintptr_t a, uintptr_t e)
{
	if (vprot_rw(a, e)) {
		memset((void *)a, 0, e - a);
		return;
	}
	syscall(SYS_mprotect, a, e - a, RW);
	memset((void *)a, 0, e - a);
	for (size_t i = run_find(a); i < nrun && run[i].start < e; i++) {
		uintptr_t s = run[i].start > a ? run[i].start : a;
		uintptr_t t = run[i].end < e ? run[i].end : e;
		syscall(SYS_mprotect, s, t - s, run[i].prot);
	}
}

void
vprot_reveal(void)
{
	for (size_t i = 0; i < nrun; i++)
		if (!(run[i].prot & PROT_READ))
			syscall(SYS_mprotect, run[i].start, run[i].end - run[i].start,
				run[i].prot | PROT_READ);
}

void
vprot_apply(void)
{
	for (size_t i = 0; i < nrun; i++)
		syscall(SYS_mprotect, run[i].start, run[i].end - run[i].start, run[i].prot);
}

size_t
vprot_runs(void)
{
	return nrun;
}
