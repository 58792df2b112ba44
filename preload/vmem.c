/*
 * vmem.c -- anonymous private memory of an unmodified program served from
 * the pool: mmap, munmap, mremap, mprotect, madvise on those ranges, and
 * brk/sbrk emulated inside the pool.
 *
 * What is served. mmap with MAP_PRIVATE | MAP_ANONYMOUS, readable or
 * writable (PROT_NONE is an address reservation, not memory: reserve.c
 * counts what the program commits inside one), without
 * MAP_FIXED, MAP_STACK, MAP_GROWSDOWN or MAP_HUGETLB, becomes a
 * page-aligned block of the pool's heap, zeroed as the kernel would
 * (attach_zero: the pages still in the page cache in place, the rest by a
 * zero-range of the pool file, so a large mapping costs no page touches
 * and a mapping the last process left cached costs no page-cache misses;
 * where the heap is private memory, in fork mode cow or detached, by
 * stores, which the dirty tracker counts as the program's own writes).
 * Everything else (file and shared
 * mappings, thread stacks, reservations) goes to the kernel untouched.
 * Calls made from inside libckpt (mapping the pool itself) always do.
 *
 * The blocks are kept in a sorted table (vblk) that remembers, per block,
 * the window [lo, hi) still mapped; vprot.c remembers the protection of
 * their pages where the program changed it:
 *  - munmap of a whole window frees the block (its protection restored
 *    first, since the allocator writes next to it); trimming the head or
 *    the tail (what jemalloc does to align a chunk) narrows the window; a
 *    hole in the middle is left allocated until the rest goes;
 *  - mremap shrinks in place, grows in place within the block, else moves
 *    (MREMAP_MAYMOVE: a new block, a copy, the old one unmapped); the
 *    pages grown by, or the block moved to, get the protection of the
 *    old range's last page, as the kernel gives them the mapping's (not
 *    what trimmed pages kept); MREMAP_FIXED and MREMAP_DONTUNMAP on the
 *    pool are EINVAL;
 *  - mprotect passes to the kernel for ranges inside blocks (vprot_set,
 *    which records it) and is ENOMEM on pool bytes outside them (the
 *    allocator's own);
 *  - madvise MADV_DONTNEED and MADV_REMOVE zero the range (the program
 *    relies on it, as jemalloc does), whatever its protection: a program
 *    decommits with mprotect PROT_NONE, then MADV_DONTNEED, so a range
 *    that is not read-write is zeroed through the pool file, or, in a
 *    heap in memory (where MADV_DONTNEED would bring back the image's
 *    bytes), by vprot_zero: made writable for the store, its protection
 *    given back, under the table's mutex (the program's mprotect waits);
 *    MADV_FREE is a no-op (the contents may stay); MADV_DONTFORK,
 *    MADV_WIPEONFORK and their inverses are ignored (the pool's fork
 *    handling owns what a child gets); other advice goes to the kernel.
 * MAP_FIXED onto the pool's range replaces the contents of a block's
 * window (protection set, then zeroed) and is ENOMEM anywhere else there: it
 * must never replace the pool's own mapping.
 *
 * brk/sbrk. The break lives in one block of BRK_AREA bytes, taken on the
 * first call; growing zeroes the new bytes; beyond the area is ENOMEM.
 * A program that moves its break by a raw system call bypasses this:
 * vmem_brk_moved() compares the kernel's break with the one at start-up,
 * and the exit path reports it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "attach.h"
#include "preload.h"

#define PAGE 4096UL
#define PAGE_UP(x) (((x) + PAGE - 1) & ~(PAGE - 1))
#define ZERO_BY_FILE (64UL << 10)       /* smaller ranges are memset */
#define BRK_AREA (32UL << 20)

struct vblk {
	uintptr_t start, end;   /* the block, page-aligned */
	uintptr_t lo, hi;       /* the window still mapped */
};

static pthread_mutex_t vmu = PTHREAD_MUTEX_INITIALIZER;
static struct vblk *tab;
static size_t ntab, captab;
static uintptr_t brk_lo, brk_cur, brk_hi;
static uintptr_t kernel_brk0;

/* enter / leave -- calls into libckpt from here */
#define LIB(expr) ({ int was_ = preload_in_lib; preload_in_lib = 1; \
	__typeof__(expr) r_ = (expr); preload_in_lib = was_; r_; })

void
vmem_init(void)
{
	kernel_brk0 = (uintptr_t)syscall(SYS_brk, 0);
}

int
vmem_brk_moved(void)
{
	return kernel_brk0 && (uintptr_t)syscall(SYS_brk, 0) != kernel_brk0;
}

void
vmem_atfork_prepare(void)
{
	pthread_mutex_lock(&vmu);
}

void
vmem_atfork_release(void)
{
	pthread_mutex_unlock(&vmu);
}

void
vmem_atfork_reveal(void)
{
	vprot_reveal();
}

void
vmem_checkpoint_begin(void)
{
	pthread_mutex_lock(&vmu);
	vprot_reveal();
	pthread_mutex_unlock(&vmu);
}

void
vmem_checkpoint_end(void)
{
	pthread_mutex_lock(&vmu);
	vprot_apply();
	pthread_mutex_unlock(&vmu);
}

/* overlaps_heap -- 1 if [a, a + len) meets the pool's heap range */
static int
overlaps_heap(uintptr_t a, size_t len)
{
	return preload_pool && a < preload_end && a + len > preload_base;
}

/* find -- index of the first block whose end is above a (ntab if none) */
static size_t
find(uintptr_t a)
{
	size_t lo = 0, hi = ntab;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (tab[mid].end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * zero -- make [a, a + len) of the heap read as zeroes; protected: the
 * range may not be writable (a program decommits with mprotect PROT_NONE,
 * then MADV_DONTNEED), so no memset of ours: attach_zero writes through the
 * pool file, or, where the heap is private memory (cow mode, a detached
 * heap), vprot_zero stores with the write permission granted for the while
 */
static void
zero(uintptr_t a, size_t len, int protected)
{
	if (len < ZERO_BY_FILE && !protected) {
		memset((void *)a, 0, len);
		return;
	}
	if (LIB(attach_zero(preload_pool, (void *)a, len, !protected)) == 0)
		return;
	pthread_mutex_lock(&vmu);
	vprot_zero(a, a + len);
	pthread_mutex_unlock(&vmu);
}

/* tab_insert -- remember a new block; -1 when the table cannot grow */
static int
tab_insert(uintptr_t start, uintptr_t end)
{
	if (ntab == captab) {
		size_t ncap = captab ? captab * 2 : 256;
		struct vblk *n = boot_alloc(ncap * sizeof(*n), 16);
		if (!n)
			return -1;
		if (tab) {
			memcpy(n, tab, ntab * sizeof(*n));
			boot_free(tab);
		}
		tab = n;
		captab = ncap;
	}
	size_t i = find(start);
	memmove(&tab[i + 1], &tab[i], (ntab - i) * sizeof(*tab));
	tab[i] = (struct vblk){ start, end, start, end };
	ntab++;
	return 0;
}

/* release -- free block i and forget it */
static void
release(size_t i)
{
	struct vblk *b = &tab[i];
	vprot_set(b->start, b->end, PROT_READ | PROT_WRITE, b->start, b->end);
	LIB((ckpt_free(preload_pool, (void *)b->start), 0));
	memmove(&tab[i], &tab[i + 1], (ntab - i - 1) * sizeof(*tab));
	ntab--;
}

/* serve -- a new zeroed block of len bytes with protection prot; MAP_FAILED */
static void *
serve(size_t len, int prot)
{
	void *p = LIB(ckpt_aligned_alloc(preload_pool, PAGE, len));
	if (!p) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	zero((uintptr_t)p, len, 0);
	uintptr_t a = (uintptr_t)p;
	pthread_mutex_lock(&vmu);
	if (tab_insert(a, a + len) < 0) {
		pthread_mutex_unlock(&vmu);
		LIB((ckpt_free(preload_pool, p), 0));
		errno = ENOMEM;
		return MAP_FAILED;
	}
	int rc = vprot_set(a, a + len, prot, a, a + len), err = errno;
	if (rc < 0)
		release(find(a));
	pthread_mutex_unlock(&vmu);
	if (rc < 0) {
		errno = err;
		return MAP_FAILED;
	}
	return p;
}

/* inside_window -- the block whose window holds [a, a + len), or NULL (vmu held) */
static struct vblk *
inside_window(uintptr_t a, size_t len)
{
	size_t i = find(a);
	if (i < ntab && tab[i].lo <= a && a + len <= tab[i].hi)
		return &tab[i];
	return NULL;
}

/*
 * protect -- give [a, a + len) protection prot (vprot_set), where it lies
 * in one block's window: 0, or -1 with errno (ENOMEM outside the windows)
 */
static int
protect(uintptr_t a, size_t len, int prot)
{
	pthread_mutex_lock(&vmu);
	struct vblk *b = inside_window(a, len);
	int rc = b ? vprot_set(a, a + len, prot, b->start, b->end) : -1;
	if (!b)
		errno = ENOMEM;
	pthread_mutex_unlock(&vmu);
	return rc;
}

/* fixed -- MAP_FIXED onto the pool: new contents for part of a window */
static void *
fixed(uintptr_t a, size_t len, int prot)
{
	if (protect(a, len, prot) < 0)
		return MAP_FAILED;
	zero(a, len, prot != (PROT_READ | PROT_WRITE));
	return (void *)a;
}

PRELOAD_API void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (!preload_ready() || len == 0)
		return raw_mmap(addr, len, prot, flags, fd, off);
	size_t n = PAGE_UP(len);
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		if (!overlaps_heap((uintptr_t)addr, n)) {
			void *r = raw_mmap(addr, len, prot, flags, fd, off);
			if (r != MAP_FAILED && prot != PROT_NONE && (flags & MAP_ANONYMOUS))
				reserve_commit((uintptr_t)r, n);
			return r;
		}
		if ((flags & MAP_FIXED_NOREPLACE) || !(flags & MAP_ANONYMOUS) ||
		    (flags & MAP_TYPE) != MAP_PRIVATE) {
			errno = (flags & MAP_FIXED_NOREPLACE) ? EEXIST : ENOMEM;
			return MAP_FAILED;
		}
		return fixed((uintptr_t)addr, n, prot);
	}
	int anon = (flags & MAP_ANONYMOUS) && (flags & MAP_TYPE) == MAP_PRIVATE;
	if (!anon || (flags & (MAP_STACK | MAP_GROWSDOWN | MAP_HUGETLB)))
		return raw_mmap(addr, len, prot, flags, fd, off);
	if (prot == PROT_NONE) {
		void *r = raw_mmap(addr, len, prot, flags, fd, off);
		if (r != MAP_FAILED)
			reserve_note((uintptr_t)r, n);
		return r;
	}
	return serve(n, prot);
}

PRELOAD_API void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

/* unmap -- the pool part of munmap (vmu held) */
static void
unmap(uintptr_t a, uintptr_t e)
{
	size_t i = find(a);
	while (i < ntab && tab[i].start < e) {
		struct vblk *b = &tab[i];
		if (a <= b->lo && e >= b->hi) {
			release(i);
			continue;
		}
		if (a <= b->lo && e > b->lo)
			b->lo = e;
		else if (e >= b->hi && a < b->hi)
			b->hi = a;
		i++;
	}
}

PRELOAD_API int
munmap(void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;
	if (preload_in_lib || !overlaps_heap(a, len)) {
		int r = raw_munmap(addr, len);
		if (r == 0 && preload_pool)
			reserve_forget(a, a + PAGE_UP(len));
		return r;
	}
	if ((a & (PAGE - 1)) || len == 0) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&vmu);
	unmap(a, a + PAGE_UP(len));
	pthread_mutex_unlock(&vmu);
	return 0;
}

PRELOAD_API void *
mremap(void *old, size_t oldlen, size_t newlen, int flags, ...)
{
	void *naddr = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		naddr = va_arg(ap, void *);
		va_end(ap);
	}
	uintptr_t a = (uintptr_t)old;
	if (preload_in_lib || !overlaps_heap(a, oldlen ? oldlen : 1))
		return (void *)syscall(SYS_mremap, old, oldlen, newlen, flags, naddr);
	if ((flags & (MREMAP_FIXED | MREMAP_DONTUNMAP)) || (a & (PAGE - 1)) || newlen == 0) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	size_t on = PAGE_UP(oldlen), nn = PAGE_UP(newlen);
	pthread_mutex_lock(&vmu);
	struct vblk *b = inside_window(a, on);
	if (!b) {
		pthread_mutex_unlock(&vmu);
		errno = EFAULT;
		return MAP_FAILED;
	}
	if (nn <= on) {
		unmap(a + nn, a + on);
		pthread_mutex_unlock(&vmu);
		return old;
	}
	/* the kernel gives the pages a mapping grows by, or the mapping it
	 * moves, the mapping's protection: [a, a + on) is one mapping for the
	 * program, its last page says which */
	int prot = vprot_at(a + on - PAGE);
	if (a + on == b->hi && a + nn <= b->end) {      /* grow in place */
		/* the new pages may still have what they had when the
		 * window was trimmed over them */
		if (vprot_set(a + on, a + nn, prot, b->start, b->end) < 0) {
			pthread_mutex_unlock(&vmu);
			return MAP_FAILED;
		}
		b->hi = a + nn;
		pthread_mutex_unlock(&vmu);
		zero(a + on, nn - on, prot != (PROT_READ | PROT_WRITE));
		return old;
	}
	uintptr_t bs = b->start, be = b->end;
	pthread_mutex_unlock(&vmu);
	if (!(flags & MREMAP_MAYMOVE)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	void *n = serve(nn, PROT_READ | PROT_WRITE);
	if (n == MAP_FAILED)
		return n;
	if (prot == (PROT_READ | PROT_WRITE)) {
		memcpy(n, old, on);
	} else {
		uintptr_t m = (uintptr_t)n;
		pthread_mutex_lock(&vmu);
		/* the copy reads the old pages: readable for it (they go next) */
		int rc = prot & PROT_READ ? 0 : vprot_set(a, a + on, prot | PROT_READ, bs, be);
		if (rc == 0) {
			memcpy(n, old, on);
			rc = vprot_set(m, m + nn, prot, m, m + nn);
		}
		pthread_mutex_unlock(&vmu);
		if (rc < 0) {
			int err = errno;
			munmap(n, nn);
			errno = err;
			return MAP_FAILED;
		}
	}
	munmap(old, on);
	return n;
}

PRELOAD_API int
mprotect(void *addr, size_t len, int prot)
{
	uintptr_t a = (uintptr_t)addr;
	if (!preload_ready() || !overlaps_heap(a, len)) {
		int r = (int)syscall(SYS_mprotect, addr, len, prot);
		if (r == 0 && prot != PROT_NONE && preload_ready())
			reserve_commit(a, PAGE_UP(len));
		return r;
	}
	return protect(a, PAGE_UP(len), prot);
}

PRELOAD_API int
madvise(void *addr, size_t len, int advice)
{
	uintptr_t a = (uintptr_t)addr;
	if (!preload_ready() || !overlaps_heap(a, len))
		return (int)syscall(SYS_madvise, addr, len, advice);
	switch (advice) {
	case MADV_DONTNEED:
	case MADV_REMOVE: {
		pthread_mutex_lock(&vmu);
		struct vblk *b = inside_window(a, PAGE_UP(len));
		int pc = b && !vprot_rw(a, a + PAGE_UP(len));
		pthread_mutex_unlock(&vmu);
		if (!b) {
			errno = EINVAL;
			return -1;
		}
		zero(a, PAGE_UP(len), pc);
		return 0;
	}
	case MADV_FREE:
	case MADV_DONTFORK:
	case MADV_DOFORK:
	case MADV_WIPEONFORK:
	case MADV_KEEPONFORK:
		return 0;
	default:
		return (int)syscall(SYS_madvise, addr, len, advice);
	}
}

/* brk_setup -- the break's block, on the first call (vmu held); -1 */
static int
brk_setup(void)
{
	if (brk_lo)
		return 0;
	void *p = LIB(ckpt_aligned_alloc(preload_pool, PAGE, BRK_AREA));
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	brk_lo = brk_cur = (uintptr_t)p;
	brk_hi = brk_lo + BRK_AREA;
	return 0;
}

/*
 * brk_move -- move the break to v (rel 0) or by v (rel 1); the old break,
 * or (uintptr_t)-1 with errno
 */
static uintptr_t
brk_move(intptr_t v, int rel)
{
	pthread_mutex_lock(&vmu);
	uintptr_t old = (uintptr_t)-1;
	if (brk_setup() < 0)
		goto out;
	uintptr_t target = rel ? brk_cur + (uintptr_t)v : (uintptr_t)v;
	if (target < brk_lo || target > brk_hi || (rel && v > 0 && target < brk_cur)) {
		errno = ENOMEM;
		goto out;
	}
	old = brk_cur;
	if (target > old)
		memset((void *)old, 0, target - old);
	brk_cur = target;
out:
	pthread_mutex_unlock(&vmu);
	return old;
}

PRELOAD_API int
brk(void *addr)
{
	if (!preload_ready()) {
		void *r = (void *)syscall(SYS_brk, addr);
		if (r != addr) {
			errno = ENOMEM;
			return -1;
		}
		return 0;
	}
	return brk_move((intptr_t)addr, 0) == (uintptr_t)-1 ? -1 : 0;
}

PRELOAD_API void *
sbrk(intptr_t inc)
{
	if (!preload_ready()) {
		uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
		if (inc == 0)
			return (void *)cur;
		if ((uintptr_t)syscall(SYS_brk, cur + inc) != cur + inc) {
			errno = ENOMEM;
			return (void *)-1;
		}
		return (void *)cur;
	}
	return (void *)brk_move(inc, 1);
}
