/*
 * heap.h -- the allocator whose whole state lives inside one segment.
 *
 * A segment is a byte range [seg, seg + size) mapped at the pool's base.
 * heap_format() writes an empty heap into it; heap_attach() adopts the heap
 * a segment already holds (a fresh one, a fork child's copy, or a copy of a
 * checkpoint) and builds the DRAM-only handle (locks, thread-local lookup).
 * Nothing that matters after a restart is kept in DRAM: copying the
 * segment's bytes copies the heap.
 *
 * On-media references inside the heap are offsets from the segment start,
 * never raw pointers, so tools can read a segment at any address. User data
 * may hold raw pointers: the segment is always mapped at the pool base.
 *
 * The walker (heap_walk/heap_check) never trusts the bytes: it is what
 * ckpt-inspect and verify use on damaged files, and it works on any copy of
 * a segment (mapped read-only anywhere, or read into a buffer).
 *
 * Errors follow internal.h: -1/NULL, errno, ckpt_err_set() message.
 */
#ifndef CKPT_HEAP_H
#define CKPT_HEAP_H 1

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

struct heap;  /* DRAM-side handle of an attached heap; opaque outside heap/ */

/* smallest segment a heap can be formatted in (metadata plus some pages) */
#define HEAP_MIN_SIZE ((size_t)4 << 20)

/*
 * heap_grow_fn -- called before the heap first writes bytes [off, off+len)
 * of the segment (whenever its high-water mark rises, in steps of at least
 * HEAP_GROW_STEP), and before it hands out again pages below the mark that
 * may have lost their memory (purged, heap_on_purge; or free when the heap
 * was attached). The pool backs the range with disk blocks (fallocate) so a
 * full filesystem turns into ENOMEM from the allocator instead of SIGBUS on
 * a store. Returns 0, or -1 with errno and a message; the heap then fails the
 * allocation with ENOMEM, unchanged. May be NULL.
 */
typedef int (*heap_grow_fn)(void *arg, uint64_t off, uint64_t len);
#define HEAP_GROW_STEP ((uint64_t)2 << 20)

/*
 * heap_purge_fn -- give back the memory behind [addr, addr+len) of the
 * segment (offset off): every heap page there is free. Returns 0 if it
 * was given back (the range then reads as zeros, or as older bytes of the
 * mapping's file: the heap relies on neither), 1 if it was kept (this
 * mapping cannot, or not now), -1 on an error (kept). Called under the
 * heap's lock, from allocation and free; a range given back goes through
 * heap_grow_fn again before the heap writes it. See heap/purge.c.
 */
typedef int (*heap_purge_fn)(void *arg, void *addr, uint64_t off, uint64_t len);

/* seg must be aligned to HEAP_SEG_ALIGN (the allocator's page) */
#define HEAP_SEG_ALIGN ((size_t)16 << 10)

/* heap_format -- write an empty heap into [seg, seg+size); size page-aligned */
CKPT_HIDDEN int heap_format(void *seg, size_t size, heap_grow_fn grow, void *grow_arg);

/*
 * heap_format_zeroed -- heap_format for a segment that already reads as
 * zeroes (a new file's range, a punched segment): only the bytes that are
 * not zero are written, a few pages instead of the whole metadata (which
 * would cost a page fault and a dirty page-cache page each)
 */
CKPT_HIDDEN int heap_format_zeroed(void *seg, size_t size, heap_grow_fn grow,
		void *grow_arg);

/*
 * heap_attach -- check the heap's metadata in [seg, seg+size) (header, thread
 * slots, page map and bitmap: a few pages, not the slabs) and return a
 * handle. Each slab is checked on its first use (heap/validate.c): an
 * operation that meets a damaged slab fails with EINVAL and a message. The
 * thread slots found claimed are kept with their lists as they are, as
 * orphans: the threads that held them belong to another process or another
 * life; new threads take them over, and what they hold is reused, not leaked.
 * A version 1 or 2 heap is checked whole and upgraded to version 3. Fails
 * with EINVAL and a message naming the damage.
 */
CKPT_HIDDEN struct heap *heap_attach(void *seg, size_t size,
		heap_grow_fn grow, void *grow_arg);

/*
 * heap_attach_formatted -- heap_attach of a heap heap_format (or
 * heap_format_zeroed) just wrote into [seg, seg+size), in this process:
 * its header is checked, the rest is known (one claimed slot, no slab, a
 * page map of zeros past the metadata) and not read. The metadata check
 * reads the whole page map and slot table, which a new heap's pages do not
 * need in memory (a 1 GiB segment: 320 KiB).
 */
CKPT_HIDDEN struct heap *heap_attach_formatted(void *seg, size_t size,
		heap_grow_fn grow, void *grow_arg);

/*
 * heap_meta_len -- the bytes at the start of a segment of seg_size that
 * hold the metadata heap_attach reads (a lazy restart has them checked
 * before the attach); 0 if no heap fits seg_size
 */
CKPT_HIDDEN uint64_t heap_meta_len(uint64_t seg_size);

/*
 * heap_validate_all -- check every slab of an attached heap now, as its
 * first use would, and that every slab is on a list: what heap_check would
 * report about the slabs, through the allocator's own checks. 0, or -1 with
 * EINVAL and a message.
 */
CKPT_HIDDEN int heap_validate_all(struct heap *h);

/*
 * heap_downgrade -- for tests of the upgrade: rewrite the quiescent
 * version 4 heap in seg (detached) as the code of version ver (1, 2 or 3)
 * wrote it: version field ver; the blocks freed by other threads and not
 * yet collected (rbit 1) linked into each slab's remote-free list (its head
 * at offset 40 of the slab header); for versions 1 and 2, the class
 * geometry in each slab header's last three words
 */
CKPT_HIDDEN void heap_downgrade(void *seg, uint32_t ver);

/*
 * heap_on_purge -- from now on, a run of free pages of at least min_bytes
 * that stayed free for delay_ns is handed to fn (heap_purge_fn) to give
 * its memory back; fn NULL or min_bytes 0: never (the default). A run is
 * looked at again by the allocator's next page-level operation after its
 * delay (delay_ns 0: at once, as it is freed).
 */
CKPT_HIDDEN void heap_on_purge(struct heap *h, heap_purge_fn fn, void *arg,
		uint64_t min_bytes, uint64_t delay_ns);

/* heap_purged_bytes -- bytes the heap has given back since it was attached */
CKPT_HIDDEN uint64_t heap_purged_bytes(struct heap *h);

/* heap_detach -- free the DRAM handle; the segment's bytes are left as they are */
CKPT_HIDDEN void heap_detach(struct heap *h);

CKPT_HIDDEN void *heap_alloc(struct heap *h, size_t size);
CKPT_HIDDEN void *heap_calloc(struct heap *h, size_t nmemb, size_t size);
CKPT_HIDDEN void *heap_realloc(struct heap *h, void *ptr, size_t size);
CKPT_HIDDEN void *heap_aligned_alloc(struct heap *h, size_t alignment, size_t size);
/* heap_free -- 0, or -1 with EINVAL/ENOENT and a message; heap untouched on error */
CKPT_HIDDEN int heap_free(struct heap *h, void *ptr);
/* heap_usable_size -- exact usable bytes of a live block; 0 + errno if not one */
CKPT_HIDDEN size_t heap_usable_size(struct heap *h, const void *ptr);

/*
 * heap_block_size -- usable bytes of the block at ptr, read from the page
 * map alone: whether the block is live is not checked (malloc_usable_size
 * of a freed block is undefined, and this is the preload library's
 * malloc_usable_size, called by some programs on every allocation and
 * free). A pointer the page map does not place at a block's start in a
 * slab's blocks or at a large block's start goes to heap_usable_size.
 */
CKPT_HIDDEN size_t heap_block_size(struct heap *h, const void *ptr);
/* heap_is_block -- 1 if ptr is the start of a live block of this heap */
CKPT_HIDDEN int heap_is_block(struct heap *h, const void *ptr);

CKPT_HIDDEN void *heap_root(struct heap *h);
/* heap_set_root -- ptr must be a live block or NULL (EINVAL otherwise) */
CKPT_HIDDEN int heap_set_root(struct heap *h, void *ptr);

/*
 * heap_high_water -- bytes from the segment start that the heap has ever
 * used; everything past it is untouched (never written). Copies of the
 * segment (checkpoint, fork) copy only this prefix.
 */
CKPT_HIDDEN size_t heap_high_water(struct heap *h);
/* heap_bytes_in_use -- bytes in live blocks (approximate while threads run) */
CKPT_HIDDEN size_t heap_bytes_in_use(struct heap *h);

/*
 * Quiescing, for checkpoint and fork. heap_lock_all() takes every lock of
 * the heap (so its bytes are consistent and no thread is inside it) after
 * recording or handing back whatever thread-local caches hold, so a copy
 * made while locked is a complete heap. heap_unlock_all() releases them.
 * heap_after_fork_child() runs in the child of fork() (only the forking
 * thread exists): it reinitialises the locks, releases the per-thread
 * records of the threads that did not survive fork, and unlocks.
 */
CKPT_HIDDEN void heap_lock_all(struct heap *h);
CKPT_HIDDEN void heap_unlock_all(struct heap *h);
CKPT_HIDDEN void heap_after_fork_child(struct heap *h);

/* -- reading an untrusted segment ----------------------------------------- */

enum heap_block_state { HEAP_BLOCK_FREE = 0, HEAP_BLOCK_ALLOCATED = 1 };

struct heap_block_info {
	uint64_t offset;     /* from the segment start */
	uint64_t size;       /* usable size for allocated blocks, extent for free */
	enum heap_block_state state;
};

/* heap_walk_fn -- called per block in address order; nonzero stops the walk */
typedef int (*heap_walk_fn)(const struct heap_block_info *b, void *arg);

struct heap_summary {
	uint64_t root_offset;        /* 0: no root */
	uint64_t high_water;
	uint64_t blocks_allocated, bytes_allocated;
	uint64_t blocks_free, bytes_free, largest_free;
};

/*
 * heap_walk -- list every block of the heap held in buf[0..len) (a copy of a
 * segment, or its prefix of at least the high-water mark; a heap that needs
 * a byte at or past len is reported as truncated). Checks every invariant on the
 * way; on the first violation returns -1 with EINVAL and a message naming the
 * problem and its offset. Never crashes or loops on hostile bytes; bounded in
 * time by len. sum may be NULL.
 */
CKPT_HIDDEN int heap_walk(const void *buf, size_t len, heap_walk_fn fn, void *arg,
		struct heap_summary *sum);

/* heap_check -- heap_walk with no callback: 0 if the heap is sound */
CKPT_HIDDEN int heap_check(const void *buf, size_t len, struct heap_summary *sum);

/*
 * heap_peek_high_water -- the high-water mark recorded in an untrusted heap
 * header, checked against len (the bytes of the segment the caller has, or
 * its size): reads only the first HEAP_HDR_BYTES of buf, fails with EINVAL
 * if the header is damaged or the mark is past len.
 */
#define HEAP_HDR_BYTES 4096
CKPT_HIDDEN int heap_peek_high_water(const void *buf, size_t len, uint64_t *hw);

#endif /* CKPT_HEAP_H */
