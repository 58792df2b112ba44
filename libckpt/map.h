/*
 * map.h -- mapping pool ranges and making them durable.
 *
 * Whether a mapping is real pmem decides how it is persisted: on a DAX
 * file mapped with MAP_SYNC, user-space cache flushes (libpmem's
 * pmem_persist) are enough; on an ordinary file only msync is. Forcing the
 * pmem path on an ordinary file (PMEM_IS_PMEM_FORCE=1, honoured through
 * libpmem's pmem_is_pmem) runs the flush code for tests, and msync still
 * follows: forcing never decides how real data is persisted.
 */
#ifndef CKPT_MAP_H
#define CKPT_MAP_H 1

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

enum map_kind {
	MAP_KIND_EMULATED = 0,   /* ordinary file: msync */
	MAP_KIND_PMEM = 1,       /* DAX with MAP_SYNC: cache flushes */
	MAP_KIND_FORCED = 2,     /* ordinary file, pmem path forced: flushes + msync */
	MAP_KIND_IMAGE = 3,      /* private mapping of a checkpoint image: the heap
	                            is in memory, nothing reaches the file */
	MAP_KIND_SEALED = 4,     /* a sealed pool's heap: private anonymous
	                            memory, never in the pool file */
};

/* pmap -- one mapping of a file range; invariant: addr page aligned, len > 0 */
struct pmap {
	void *addr;
	size_t len;
	enum map_kind kind;
};

/*
 * map_file -- map [off, off+len) of fd shared. addr NULL: anywhere.
 * addr set: exactly there; with replace 0 never over an existing mapping
 * (EADDRINUSE and a message naming the range), with replace 1 over one the
 * caller owns (its own reservation or heap).
 */
CKPT_HIDDEN int map_file(struct pmap *m, int fd, uint64_t off, size_t len,
		void *addr, int replace);

/* map_reserve -- claim [addr, addr+len) with an inaccessible anonymous
 * mapping so nothing else lands there; EADDRINUSE if any of it is taken */
CKPT_HIDDEN int map_reserve(void *addr, size_t len);

/*
 * map_image -- map [off, off+len) of fd privately exactly at addr, over a
 * range the caller owns (its reservation, or the image it maps now): the
 * live heap of cow mode. Reads see the file until a page is written; a
 * written page is the process's own copy (kind MAP_KIND_IMAGE).
 */
CKPT_HIDDEN int map_image(struct pmap *m, int fd, uint64_t off, size_t len, void *addr);

/*
 * The lazy restart (engine/lazy.c) builds the heap chunk by chunk:
 * map_hole makes [addr, addr+len) (the caller's) fresh anonymous memory for
 * a userfaultfd to catch first accesses in; map_image_piece maps a verified
 * chunk of the image over part of it, privately, through description d
 * (map_description: one for all the pieces, so that they merge into one
 * mapping); map_poison makes a chunk that failed verification a range
 * where every access is SIGBUS (as past the end of a file) and kernel I/O
 * EFAULT.
 */
CKPT_HIDDEN int map_hole(void *addr, size_t len);
CKPT_HIDDEN int map_description(int fd);
CKPT_HIDDEN void map_description_end(int d, int fd);
CKPT_HIDDEN int map_image_piece(int d, uint64_t off, size_t len, void *addr);
CKPT_HIDDEN int map_poison(void *addr, size_t len);

/*
 * map_sealed_heap -- a sealed pool's live heap at addr (over a range the
 * caller owns): private anonymous memory of len bytes, so its pages are
 * the process's own and no file ever holds them; kept out of core dumps
 * (MADV_DONTDUMP). A fork child inherits it copy on write. Kind
 * MAP_KIND_SEALED: ckpt_persist is ENOTSUP. (Not a private mapping of a
 * memfd: there the first write to each page makes the kernel allocate the
 * memfd's page and then copy it, twice the memory and a copy per page.)
 */
CKPT_HIDDEN int map_sealed_heap(struct pmap *m, size_t len, void *addr);

/* map_sealed_clear -- make a sealed heap all zeros again (its pages dropped) */
CKPT_HIDDEN int map_sealed_clear(struct pmap *m);

/*
 * map_sealed_populate -- give the first len bytes of a sealed heap their
 * pages now, in one call, rather than one fault at a time while a restart
 * fills them (best effort: kernels before 5.14 fault them in as it writes)
 */
CKPT_HIDDEN void map_sealed_populate(struct pmap *m, size_t len);

/* map_unreserve -- give back a reservation (map_reserve) that was never replaced */
CKPT_HIDDEN void map_unreserve(void *addr, size_t len);

/*
 * map_snapshot -- anonymous private memory of len bytes, anywhere, holding
 * a copy of [src, src+used) and zeros after it: a fork child's private
 * heap when it can have no segment. It needs no file descriptor (it must
 * work when the process has none left); the child inherits it as any
 * private memory and moves it into place with map_adopt_snapshot. NULL
 * on failure. map_snapshot_end unmaps it (the parent, after the fork).
 */
CKPT_HIDDEN void *map_snapshot(const void *src, size_t used, size_t len);
CKPT_HIDDEN void map_snapshot_end(void *snap, size_t len);
/*
 * map_shared_scratch -- len bytes of zeroed anonymous memory that a fork
 * child shares with its parent (a child's report too big for a pipe); NULL
 * on failure (errno). map_shared_scratch_end unmaps it.
 */
CKPT_HIDDEN void *map_shared_scratch(size_t len);
CKPT_HIDDEN void map_shared_scratch_end(void *addr, size_t len);
/*
 * map_adopt_snapshot -- move a snapshot exactly to addr, replacing what the
 * caller owns there: writes stay in this process and reach no file (kind
 * MAP_KIND_EMULATED, nothing to persist)
 */
CKPT_HIDDEN int map_adopt_snapshot(struct pmap *m, void *snap, size_t len, void *addr);

/*
 * map_view -- read-only shared mapping of [off, off+len) of fd anywhere,
 * for reading a segment (verify); len 0 maps nothing. map_view_end undoes it.
 * Read it only where map_view_read said yes: a page the file cannot supply
 * (an I/O error; a hole on a full tmpfs) raises SIGBUS when touched.
 */
CKPT_HIDDEN int map_view(int fd, uint64_t off, size_t len, const void **addr);
/*
 * map_view_read -- read [addr, addr+len) of a view into its page tables:
 * 0, or -1 with EIO and a message when a page cannot be read
 */
CKPT_HIDDEN int map_view_read(const void *addr, size_t len);
CKPT_HIDDEN void map_view_end(const void *addr, size_t len);
/*
 * map_read_direct -- 1 if an image in fd may be checked with pread
 * (sums_update_file, sums_check_file) before it is mapped privately, 0 if
 * it must be read through a view and map_view_read: on tmpfs, whose pread
 * of a hole allocates nothing, while the first touch of that hole in a
 * private mapping must allocate a page, which a full tmpfs refuses with
 * SIGBUS; the view's populate allocates it at once or says it cannot.
 * (Elsewhere a hole read through a mapping takes memory, never disk.)
 */
CKPT_HIDDEN int map_read_direct(int fd);

/* map_unmap -- unmap m (no-op if unmapped) */
CKPT_HIDDEN void map_unmap(struct pmap *m);

/* map_persist -- make [addr, addr+len) inside m durable */
CKPT_HIDDEN int map_persist(const struct pmap *m, const void *addr, size_t len);

/*
 * map_purge -- give back the memory behind [addr, addr+len) inside m, whose
 * bytes the caller no longer needs (free heap pages): 0 if given back, 1 if
 * kept. A shared file mapping (kind emulated or forced) punches a hole in
 * the file (MADV_REMOVE: its blocks and page cache pages go, it reads as
 * zeros, and the next write needs a block again: the caller fallocates it
 * first); private memory (a cow image, a sealed heap, a fork child's
 * snapshot) drops the process's own copies (MADV_DONTNEED: an image's
 * pages read as the image file's bytes again, anonymous memory as zeros).
 * Real pmem (DAX) keeps its pages: they are not DRAM, and a hole would
 * cost a filesystem block allocation and zeroing at the next write.
 * A filesystem that cannot punch holes keeps them too.
 */
CKPT_HIDDEN int map_purge(const struct pmap *m, void *addr, size_t len);

/*
 * map_no_readaround -- a page fault in [addr, addr + len) brings in its own
 * page only, not the read-ahead window around it (8 MiB on some disks): for
 * an empty heap in a shared or private mapping of holes, whose read-around
 * would allocate and zero megabytes of page cache per fault
 */
CKPT_HIDDEN void map_no_readaround(void *addr, size_t len);

/* map_is_dax -- 1 if fd's file can be mapped with MAP_SYNC (real pmem); read-only fds work */
CKPT_HIDDEN int map_is_dax(int fd);

/* map_kind_name -- "pmem", "emulated", "emulated (pmem path forced)" */
CKPT_HIDDEN const char *map_kind_name(enum map_kind k);

#endif
