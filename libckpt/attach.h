/*
 * attach.h -- internal hooks for the preload library (preload/): what an
 * unmodified program run on a pool needs from libckpt that the public API
 * does not give. Not exported from libckpt.so (only ckpt_ names are); the
 * preload library links the library's objects and calls these directly.
 *
 * A program under the preload library gets a fresh, empty heap in a new
 * segment of an existing pool (not a restart from a checkpoint, which is
 * ckpt_open's job), so every process image (each fork child, each exec) of
 * one run has its own segment in the pool (one that ends young leaves none). The rest answers where the
 * heap is, and zeroes a range of it the way the kernel zeroes anonymous
 * memory (mmap, madvise MADV_DONTNEED) without touching every page.
 */
#ifndef CKPT_ATTACH_H
#define CKPT_ATTACH_H 1

#include <stddef.h>
#include <stdint.h>

#include "libckpt.h"
#include "internal.h"

/*
 * attach_empty_heap -- open the existing pool path (cfg as for ckpt_open:
 * fork_mode and keep_checkpoints; the environment's CKPT_FORK_MODE over
 * it) and give the calling process a segment of its own holding an empty
 * heap; arm fork handling. With publish_after_ns > 0 on a pool of format
 * 1.5 the heap may start young: held by the process's lease alone, FREE in
 * the catalog, published as a LIVE entry of a new life and lineage by
 * attach_publish, or by the first growth of the heap after
 * publish_after_ns; otherwise it is published at once. NULL on failure,
 * with errno and ckpt_errormsg().
 */
CKPT_HIDDEN ckpt_pool *attach_empty_heap(const char *path, const struct ckpt_config *cfg,
		uint64_t publish_after_ns);

/*
 * attach_publish -- make a young heap of p an entry of the catalog (LIVE,
 * a new life and lineage), durably; nothing if it is not young. Call it
 * before anything that needs the entry: fork, a checkpoint. 0, or -1 with
 * errno and ckpt_errormsg() (the heap stays young).
 */
CKPT_HIDDEN int attach_publish(ckpt_pool *p);

/*
 * attach_check -- would attach_empty_heap(path, cfg) get past opening the
 * pool? Opens it read-write, validates its header and catalog, settles the
 * fork mode and reserves its base in this process, then lets go, writing
 * nothing. *heap_size gets the pool's segment size. 0, or -1 with errno and
 * ckpt_errormsg(). For ckpt-run, before it starts a program on the pool.
 */
CKPT_HIDDEN int attach_check(const char *path, const struct ckpt_config *cfg,
		size_t *heap_size);

/* attach_heap_range -- the live heap's address range [*base, *base + *size) */
CKPT_HIDDEN void attach_heap_range(const ckpt_pool *p, uintptr_t *base, size_t *size);

/* attach_usable_size -- malloc_usable_size of a block of the live heap (heap_block_size) */
CKPT_HIDDEN size_t attach_usable_size(ckpt_pool *p, const void *ptr);

/* attach_segment -- the catalog index of the caller's live segment */
CKPT_HIDDEN uint32_t attach_segment(const ckpt_pool *p);

/*
 * attach_zero -- make [addr, addr + len) of the live heap read as zeroes
 * (addr and len page-aligned). Where the heap is a shared mapping of the
 * pool file: seg_clear (the pages still in the page cache written through
 * the file, the others by a zero-range of it; its blocks stay allocated, so
 * later writes cannot fail for space), which works whatever the range's
 * protection; a sealed heap's pages dropped (MADV_DONTNEED, again whatever
 * the protection); where the heap is private memory (cow mode, a detached
 * heap: MADV_DONTNEED would bring back the image's bytes, not zeroes), a
 * memset. A memset needs the range writable: writable 0 says it may not
 * be (the program changed its protection), and then, where a memset is
 * the way (private memory, a sealed heap while a lazy fill runs, a heap
 * mapping seg_clear does not clear), attach_zero returns -1 having
 * written nothing: the caller, which knows the range's protection, makes
 * it writable for a memset of its own. 0: zeroed.
 */
CKPT_HIDDEN int attach_zero(ckpt_pool *p, void *addr, size_t len, int writable);

#endif
