/*
 * map.c -- mapping pool ranges at fixed addresses and persisting them.
 *
 * Segments live at the pool's base address in every process, so raw
 * pointers stored in a heap stay valid. Fixed mappings use
 * MAP_FIXED_NOREPLACE so an address already in use is an error, never a
 * silent clobber. This is the only file of the library that maps or unmaps
 * pool segments (live heaps, private copies, reservations, read-only views),
 * and of the memory a sealed pool's heap lives in. Durability goes through
 * libpmem: pmem_persist on real pmem, pmem_msync otherwise (see map.h for
 * the forced case).
 */
#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "map.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

#define POOL_PROBE_LEN 4096

/* mmap_at -- mmap at a fixed address without replacing, detecting kernels that ignore the flag */
static void *
mmap_at(void *addr, size_t len, int prot, int flags, int fd, uint64_t off, int replace)
{
	int fixed = addr ? (replace ? MAP_FIXED : MAP_FIXED_NOREPLACE) : 0;
	void *p = mmap(addr, len, prot, flags | fixed, fd, (off_t)off);
	if (p == MAP_FAILED)
		return p;
	if (addr && p != addr) {
		/* pre-4.17 kernels treat MAP_FIXED_NOREPLACE as a hint */
		munmap(p, len);
		errno = EEXIST;
		return MAP_FAILED;
	}
	return p;
}

/*
 * own_description -- a new open file description of fd's file for a
 * mapping to hold, or fd itself where /proc cannot give one. A mapping
 * keeps its description alive for as long as it exists, in every process
 * that inherits it; the pool's locks (the catalog lock, leases, pins) live
 * on the process's own description, so a mapping made through that one
 * would keep a dead process's locks held while a fork child maps its heap.
 * A description of its own holds no lock. The caller closes it (if it is
 * not fd) once mmap returned.
 */
static int
own_description(int fd, int writable)
{
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	int d = open(self, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	return d >= 0 ? d : fd;
}

/* release_description -- close what own_description opened, keeping errno */
static void
release_description(int d, int fd)
{
	int e = errno;
	if (d != fd)
		close(d);
	errno = e;
}

static int
addr_in_use(void *addr, size_t len)
{
	return ckpt_err_set(EADDRINUSE,
		"address range [%p, %p) is already mapped in this process",
		addr, (void *)((char *)addr + len));
}

int
map_file(struct pmap *m, int fd, uint64_t off, size_t len, void *addr, int replace)
{
	int prot = PROT_READ | PROT_WRITE;
	enum map_kind kind = MAP_KIND_PMEM;
	int d = own_description(fd, 1);
	void *p = mmap_at(addr, len, prot, MAP_SHARED_VALIDATE | MAP_SYNC, d, off, replace);
	if (p == MAP_FAILED && (errno == EOPNOTSUPP || errno == EINVAL)) {
		kind = MAP_KIND_EMULATED;
		p = mmap_at(addr, len, prot, MAP_SHARED, d, off, replace);
	}
	release_description(d, fd);
	if (p == MAP_FAILED) {
		if (errno == EEXIST)
			return addr_in_use(addr, len);
		return ckpt_err_set(errno, "cannot map %zu bytes of the pool: %s",
				len, strerror(errno));
	}
	if (kind == MAP_KIND_EMULATED && pmem_is_pmem(p, len))
		kind = MAP_KIND_FORCED;
	m->addr = p;
	m->len = len;
	m->kind = kind;
	return 0;
}

int
map_reserve(void *addr, size_t len)
{
	void *p = mmap_at(addr, len, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, 0);
	if (p == MAP_FAILED) {
		if (errno == EEXIST)
			return addr_in_use(addr, len);
		return ckpt_err_set(errno, "cannot reserve %zu bytes at %p: %s",
				len, addr, strerror(errno));
	}
	return 0;
}

void
map_unreserve(void *addr, size_t len)
{
	munmap(addr, len);
}

void *
map_snapshot(const void *src, size_t used, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		ckpt_err_set(errno, "cannot map a private copy of the heap: %s",
				strerror(errno));
		return NULL;
	}
	memcpy(p, src, used);
	return p;
}

void
map_snapshot_end(void *snap, size_t len)
{
	if (snap)
		munmap(snap, len);
}

void *
map_shared_scratch(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void
map_shared_scratch_end(void *addr, size_t len)
{
	if (addr)
		munmap(addr, len);
}

int
map_adopt_snapshot(struct pmap *m, void *snap, size_t len, void *addr)
{
	void *p = mremap(snap, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr);
	if (p == MAP_FAILED)
		return ckpt_err_set(errno, "cannot move a private copy of the heap into place: %s",
				strerror(errno));
	m->addr = p;
	m->len = len;
	m->kind = MAP_KIND_EMULATED;
	return 0;
}

int
map_sealed_heap(struct pmap *m, size_t len, void *addr)
{
	void *p = mmap_at(addr, len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, 1);
	if (p == MAP_FAILED)
		return ckpt_err_set(errno, "cannot map the memory of a sealed heap: %s",
				strerror(errno));
	madvise(p, len, MADV_DONTDUMP);
	m->addr = p;
	m->len = len;
	m->kind = MAP_KIND_SEALED;
	return 0;
}

void
map_sealed_populate(struct pmap *m, size_t len)
{
	if (len > m->len)
		len = m->len;
	len = (len + 4095) & ~(size_t)4095;
	if (len)
		(void)madvise(m->addr, len, MADV_POPULATE_WRITE);
}

int
map_sealed_clear(struct pmap *m)
{
	if (madvise(m->addr, m->len, MADV_DONTNEED) < 0)
		return ckpt_err_set(errno, "cannot clear a sealed heap: %s", strerror(errno));
	return 0;
}

int
map_image(struct pmap *m, int fd, uint64_t off, size_t len, void *addr)
{
	int d = own_description(fd, 0);
	void *p = mmap_at(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
			d, off, 1);
	release_description(d, fd);
	if (p == MAP_FAILED)
		return ckpt_err_set(errno, "cannot map a checkpoint image as the heap: %s",
				strerror(errno));
	m->addr = p;
	m->len = len;
	m->kind = MAP_KIND_IMAGE;
	return 0;
}

int
map_hole(void *addr, size_t len)
{
	void *p = mmap_at(addr, len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0, 1);
	if (p == MAP_FAILED)
		return ckpt_err_set(errno, "cannot map the heap's range for a lazy restart: %s",
				strerror(errno));
	return 0;
}

int
map_description(int fd)
{
	return own_description(fd, 0);
}

void
map_description_end(int d, int fd)
{
	release_description(d, fd);
}

int
map_image_piece(int d, uint64_t off, size_t len, void *addr)
{
	void *p = mmap_at(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
			d, off, 1);
	if (p == MAP_FAILED)
		return ckpt_err_set(errno, "cannot map a verified chunk of the image: %s",
				strerror(errno));
	return 0;
}

int
map_poison(void *addr, size_t len)
{
	/* an empty file mapped privately: every page is past its end */
	int fd = memfd_create("libckpt-damaged", MFD_CLOEXEC);
	if (fd < 0)
		return ckpt_err_set(errno, "memfd_create: %s", strerror(errno));
	void *p = mmap_at(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
			fd, 0, 1);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return ckpt_err_set(e, "cannot fence a damaged chunk: %s", strerror(e));
	return 0;
}

int
map_view(int fd, uint64_t off, size_t len, const void **addr)
{
	*addr = NULL;
	if (len == 0)
		return 0;
	int d = own_description(fd, 0);
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, d, (off_t)off);
	release_description(d, fd);
	if (p == MAP_FAILED)
		return ckpt_err_set(errno, "cannot map %zu bytes of the pool: %s", len,
				strerror(errno));
	*addr = p;
	return 0;
}

int
map_view_read(const void *addr, size_t len)
{
	/* one call fills the page tables far faster than a fault per 64 KiB,
	 * and reports what a fault would turn into SIGBUS */
	if (len && madvise((void *)addr, len, MADV_POPULATE_READ) < 0 && errno != EINVAL)
		return ckpt_err_set(EIO, "cannot read %zu bytes of the pool: %s", len,
			errno == EFAULT ? "a page could not be read in (an I/O error, or a "
			"full tmpfs that must allocate a page to read a hole)" : strerror(errno));
	return 0;
}

int
map_read_direct(int fd)
{
	struct statfs fs;
	return fstatfs(fd, &fs) == 0 && fs.f_type != TMPFS_MAGIC;
}

void
map_view_end(const void *addr, size_t len)
{
	if (addr)
		munmap((void *)addr, len);
}

void
map_unmap(struct pmap *m)
{
	if (m->addr)
		munmap(m->addr, m->len);
	m->addr = NULL;
	m->len = 0;
}

int
map_persist(const struct pmap *m, const void *addr, size_t len)
{
	if (len == 0)
		return 0;
	const char *a = addr, *b = (const char *)m->addr;
	if (a < b || a + len < a || a + len > b + m->len)
		return ckpt_err_set(EINVAL, "range [%p, +%zu) is outside the mapping", addr, len);
	switch (m->kind) {
	case MAP_KIND_IMAGE:
		return ckpt_err_set(ENOTSUP, "the heap is in memory between checkpoints "
				"(fork mode cow): only ckpt_checkpoint makes it durable");
	case MAP_KIND_SEALED:
		return ckpt_err_set(ENOTSUP, "the pool is sealed: its heap is kept in "
				"memory, never in the file; only ckpt_checkpoint makes it "
				"durable (encrypted)");
	case MAP_KIND_PMEM:
		pmem_persist(addr, len);
		return 0;
	case MAP_KIND_FORCED:
		pmem_persist(addr, len);
		/* an ordinary file is durable only after msync */
		__attribute__((fallthrough));
	case MAP_KIND_EMULATED:
	default:
		if (pmem_msync(addr, len) != 0)
			return ckpt_err_set(errno, "msync failed: %s", strerror(errno));
		return 0;
	}
}

int
map_purge(const struct pmap *m, void *addr, size_t len)
{
	switch (m->kind) {
	case MAP_KIND_PMEM:
		return 1;        /* DAX: not DRAM; a hole would cost a zeroed block at reuse */
	case MAP_KIND_IMAGE:
	case MAP_KIND_SEALED:
		return madvise(addr, len, MADV_DONTNEED) < 0 ? 1 : 0;
	case MAP_KIND_FORCED:
	case MAP_KIND_EMULATED:
	default:
		if (madvise(addr, len, MADV_REMOVE) == 0)
			return 0;
		/* EINVAL: private memory (a fork child's snapshot), or locked */
		if (errno == EINVAL && madvise(addr, len, MADV_DONTNEED) == 0)
			return 0;
		return 1;        /* EOPNOTSUPP: the filesystem punches no holes */
	}
}

void
map_no_readaround(void *addr, size_t len)
{
	madvise(addr, len, MADV_RANDOM);
}

int
map_is_dax(int fd)
{
	void *p = mmap(NULL, POOL_PROBE_LEN, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	if (p == MAP_FAILED)
		return 0;
	munmap(p, POOL_PROBE_LEN);
	return 1;
}

const char *
map_kind_name(enum map_kind k)
{
	switch (k) {
	case MAP_KIND_PMEM:
		return "pmem";
	case MAP_KIND_FORCED:
		return "emulated (pmem path forced)";
	case MAP_KIND_IMAGE:
		return "in memory (private image)";
	case MAP_KIND_SEALED:
		return "in memory (sealed)";
	default:
		return "emulated";
	}
}
