/*
 * heap/types.h -- the allocator's geometry and structures, each with its
 * invariants stated above it (the on-media ones field by field in
 * docs/HEAP.md): the segment header, the thread slots, the slab header, the
 * page map encoding, the size-class record, and the DRAM handle with its
 * thread-local slot cache. Only definitions and one-line accessors live
 * here; what the files of the heap share as code is in heap/private.h.
 *
 *   segment = header (4 KiB) | thread slots | page map | page bitmap | pages
 *
 * Pages are 16 KiB. A page is free, metadata, part of a slab (a run of pages
 * cut into blocks of one size class, owned by one thread slot) or part of a
 * large block (a run of pages). Every reference stored in the segment is an
 * offset or a page index, never a pointer. Locks, the thread-local slot
 * cache and the per-slot front caches of freed blocks (struct
 * tcache) live in DRAM (struct heap, heap_tl); a block in a front cache is
 * allocated as far as the segment says, so the segment alone is always a
 * valid heap, exact (nothing cached) whenever the heap is quiesced.
 */
#ifndef CKPT_HEAP_TYPES_H
#define CKPT_HEAP_TYPES_H 1

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "heap.h"
#include "heap/purge.h"

/* -- geometry --------------------------------------------------------------- */

#define HP_SHIFT 14u
#define HP_SIZE ((uint64_t)1 << HP_SHIFT)      /* heap page: 16 KiB */
#define NCLASS 44u                             /* 16 B .. 64 KiB */
#define SMALL_MAX 65536u                       /* largest slab block */
#define SMALL_ALIGN_MAX 4096u                  /* slab blocks can be this aligned */
#define NSLOTS 128u                            /* slot 0 is shared (overflow) */
#define SLOT_SIZE 512u
#define HDR_SIZE 4096u
#define SLAB_HDR 64u
#define SLAB_MAX_PAGES 64u
#define SLAB_MAX_WORDS 16u                     /* bitmap words per slab, max */
#define SLAB_MAGIC 0x42414c53u                 /* "SLAB" */
#define HEAP_MAGIC "CKPTHEAP"
#define HEAP_VERSION 4u
#define HEAP_VERSION_MIN 1u    /* versions 1, 2 and 3 are upgraded by heap_attach */
#define MAX_PAGES ((uint64_t)1 << 28)          /* pmap value field: 28 bits */

/* page map entry: kind in the top 4 bits, value in the low 28 */
#define PM_FREE 0u   /* free page, or a page inside a large block (not its first) */
#define PM_META 1u   /* header, slots, page map, bitmap */
#define PM_SLAB 2u   /* first page of a slab; value = size class */
#define PM_TAIL 3u   /* later page of a slab; value = distance to its first page */
#define PM_LARGE 4u  /* first page of a large block; value = its page count */
#define PM_KIND(e) ((e) >> 28)
#define PM_VAL(e) ((e) & 0x0fffffffu)
#define PM(k, v) (((uint32_t)(k) << 28) | (uint32_t)(v))

/* which list a slab is on (slab.list) */
enum { LIST_NONE = 0, LIST_AVAIL = 1, LIST_FULL = 2, LIST_ABANDONED = 3 };

/*
 * heap_hdr -- at offset 0 of the segment.
 * Invariants (checked by heap_walk and heap_attach):
 *  - magic == HEAP_MAGIC, HEAP_VERSION_MIN <= version <= HEAP_VERSION
 *    (heap_attach raises it to HEAP_VERSION), page_shift == HP_SHIFT,
 *    nslots == NSLOTS, nclass == NCLASS,
 *  - npages == seg_size >> page_shift < 2^28; slots_off, pmap_off, pbits_off,
 *    data_off, data_page are exactly what layout_of(seg_size) computes,
 *  - data_off <= high_water <= seg_size; every page at or past
 *    high_water >> page_shift is free and was never written,
 *  - root == 0 or data_off <= root < high_water, 16-aligned,
 *  - data_page <= free_hint <= the lowest free page,
 *  - abandoned[c] heads a list of slabs of class c with owner 0.
 * Written only under heap.lock, except root (atomic store).
 */
struct heap_hdr {
	char magic[8];              /* 0 */
	uint32_t version;           /* 8 */
	uint32_t page_shift;        /* 12 */
	uint64_t seg_size;          /* 16 */
	uint32_t npages;            /* 24 */
	uint32_t nslots;            /* 28 */
	uint32_t nclass;            /* 32 */
	uint32_t data_page;         /* 36 */
	uint64_t slots_off;         /* 40 */
	uint64_t pmap_off;          /* 48 */
	uint64_t pbits_off;         /* 56 */
	uint64_t data_off;          /* 64 */
	uint64_t root;              /* 72: offset of the root block, 0: none */
	uint64_t high_water;        /* 80: bytes ever used, from offset 0 */
	uint32_t free_hint;         /* 88: no free page below this one */
	uint32_t reserved0;         /* 92 */
	uint64_t reserved1[2];      /* 96: zero */
	uint32_t abandoned[NCLASS]; /* 112: first page of each abandoned list, 0: empty */
};

/*
 * tslot -- one per thread using the heap (slot 0: shared by threads beyond
 * NSLOTS-1, under heap.shared_mx), SLOT_SIZE bytes at slots_off.
 * Invariants:
 *  - state is 0 (free) or 1 (claimed); slot 0 is always claimed,
 *  - avail[c] / full[c] head doubly linked lists (slab.next/prev, page
 *    indexes, 0: end) of the slabs of class c this slot owns: avail holds
 *    slabs that may have free blocks (the first is the one allocated from),
 *    full holds slabs found full, each with in_full == 1,
 *  - a free slot has empty lists,
 *  - a slab on full has fewer than cls.refill blocks on its local free list
 *    (a local free that brings it to refill moves it back to avail),
 *  - pending bit c: a remote free went to one of its full slabs of class c.
 * Only the owning thread writes avail/full; pending is atomic.
 */
struct tslot {
	_Atomic uint32_t state;           /* 0 */
	uint32_t reserved1;               /* 4 */
	uint64_t reserved0;               /* 8 */
	_Atomic uint64_t pending;         /* 16 */
	uint8_t reserved[40];             /* 24 */
	uint32_t avail[NCLASS];           /* 64 */
	uint32_t full[NCLASS];            /* 240 */
	uint8_t reserved2[SLOT_SIZE - 64 - 8 * NCLASS]; /* 416 */
};

/*
 * slab -- at the start of a slab's first page, followed by the class's
 * `words` pairs of uint64: abits (block allocated) then rbits (block freed
 * by a non-owner, not yet collected); blocks start at the class's dstart.
 * Invariants (format 4):
 *  - magic == SLAB_MAGIC; cls < NCLASS and cap equal the class table;
 *    block i is at dstart + i * bsize from the slab start,
 *  - bump <= cap: blocks [bump, cap) were never handed out (abits 0),
 *  - used == popcount(abits) (blocks allocated, or remote-freed and not
 *    yet collected),
 *  - free: singly linked list (segment offsets, 0: end; the link is in the
 *    first 8 bytes of each block) of exactly the blocks < bump with abit 0,
 *  - rbits is a subset of abits: rbits alone say which blocks wait for
 *    their owner (there is no remote list); a block is live iff abit == 1
 *    and rbit == 0. A remote free is one atomic OR into its rbits word
 *    (which also finds a double free); the owner collects a word with a
 *    load, clears the collected blocks' abits, pushes them on free, then
 *    clears their rbits with one AND (abit before rbit: a second free of
 *    the block in between still finds its rbit set, and after it its abit
 *    clear),
 *  - rhint: 0 or 1, a hint only: 1 says remote frees may wait in rbits.
 *    A remote free that finds it 0 sets it after its OR; the owner clears
 *    it before it scans rbits (seq_cst: a free the scan missed sees the
 *    hint cleared and sets it again). A slab with rbits but rhint 0 (a
 *    process killed between the two) is valid: its first check in an
 *    attach sets the hint, and adoption, abandoning and reclaim collect
 *    whatever the hint says,
 *  - owner: slot index + 1, or 0 when abandoned; list says which list the
 *    slab is on (LIST_ABANDONED iff owner == 0), in_full == (list == FULL),
 *  - next/prev link it into that list (page indexes, 0: none),
 *  - epoch: any value on media. In a live heap, heap.epoch (the slab was
 *    checked in this attach: its blocks, bitmaps and free list) or
 *    heap.epoch | 1 (and its list fields against its neighbours and list
 *    head): see heap/validate.c. Versions 1 and 2 held the class's dstart,
 *    bsize, words at 52, 56, 60; version 3 and 4 ignore bytes 52..63 on
 *    media. Versions 1 to 3 held at 40 the head of a remote-free list (the
 *    blocks with rbit 1, linked as free is); heap_attach's upgrade
 *    collects them and writes rhint 0.
 * The owner writes everything but rbits and rhint (atomic, any thread) and
 * the owner field during adoption (under heap.lock); epoch is written
 * under heap.vmx.
 */
struct slab {
	uint32_t magic;              /* 0 */
	uint16_t cls;                /* 4 */
	_Atomic uint16_t owner;      /* 6 */
	uint32_t cap;                /* 8 */
	uint32_t bump;               /* 12 */
	uint32_t used;               /* 16 */
	_Atomic uint32_t in_full;    /* 20 */
	uint32_t next;               /* 24 */
	uint32_t prev;               /* 28 */
	uint64_t free;               /* 32 */
	_Atomic uint64_t rhint;      /* 40: versions 1-3: the remote list's head */
	uint32_t list;               /* 48 */
	uint32_t reserved;           /* 52: version 2's dstart; ignored */
	_Atomic uint64_t epoch;      /* 56: version 2's bsize, words; see above */
};

_Static_assert(sizeof(struct heap_hdr) <= HDR_SIZE, "header fits its page");
_Static_assert(sizeof(struct tslot) == SLOT_SIZE, "slot size");
_Static_assert(sizeof(struct slab) == SLAB_HDR, "slab header size");
_Static_assert(NCLASS <= 64, "pending is a 64-bit mask");

/* layout -- where the metadata of a segment of a given size goes */
struct layout {
	uint64_t slots_off, pmap_off, pbits_off, data_off;
	uint32_t npages, data_page;
};

/* -- size classes (heap/classes.c) ------------------------------------------- */

/*
 * cls -- one size class: block size, slab geometry, and the reciprocal
 * that turns a block's offset in the slab into its index without dividing:
 * idx = (rel * mul) >> 40 is exact for rel < 2^20 (a slab is <= 1 MiB).
 */
struct cls {
	uint32_t bsize, pages, cap, dstart, words;
	uint32_t span;                  /* cap * bsize: blocks' bytes */
	uint32_t sbytes;                /* pages << HP_SHIFT: the slab's bytes */
	uint32_t refill;                /* ceil(cap / 8): free blocks that refile a full slab */
	uint32_t mul32;                 /* ceil(2^32 / bsize): see blk_at_page */
	uint32_t tcap;                  /* blocks the class's front cache holds, at most */
	uint64_t mul;
};
extern CKPT_HIDDEN struct cls heap_cls_tab[NCLASS];
extern CKPT_HIDDEN uint8_t heap_cls_small[65];   /* [(n + 15) >> 4]: class of n <= 1024 bytes */

/* -- DRAM handle and thread-local slot cache -------------------------------- */

/* classes with a front cache: every slab class (16 B .. 64 KiB). The
 * classes up to TC_MAX (16..512 B, the first TC_PAGE_NCLASS) have one-page
 * slabs, and the fast paths of heap/api.c take them inline (heap_free finds
 * their slab from the pointer); the others through the page map */
#define TC_NCLASS NCLASS
#define TC_PAGE_NCLASS 16u
/* blocks a front cache holds per class, at most: 64, not 16, since a random
 * mix of allocations and frees then reaches the cache's ends (the slab's
 * paths, a mispredicted branch) far less often: alloc_bench small, one
 * thread, +11% pairs/s (0.14 -> 0.02 mispredicted branches a pair under
 * cachegrind's branch simulation), mixed +3%. A class's own capacity,
 * cls.tcap, is TC_CAP up to TC_MAX bytes and TC_BYTES / bsize above
 * (at least TC_MIN): see heap/classes.c and docs/HEAP.md for the bound on
 * what a thread's caches hold */
#define TC_CAP 64u
#define TC_BYTES 32768u   /* bytes a class's cache holds, above TC_MAX */
#define TC_MIN 4u         /* blocks a class's cache holds, at least */
#define TC_MAX 512u       /* largest request of the one-page cached classes */

/*
 * tcache -- a slot's front cache: per class (all TC_NCLASS) a LIFO of up to
 * cls.tcap <= TC_CAP blocks its thread freed, handed out again by its next
 * allocations of the class without touching the slab. DRAM only, written
 * only by the slot's thread inside its busy section (the fast paths, and
 * its slow free while stop is clear), or by a thread that holds the heap
 * quiesced (heap_lock_all), has stopped the others (heap_steal_idle) or
 * owns the slot (thread exit, reclaim, detach): heap_tc_drain.
 * Invariants:
 *  - every cached block is a block of a slab of class c owned by the slot,
 *    checked in this attach (epoch | 1), live in the segment (abit 1,
 *    rbit 0, counted in used): to the segment it is allocated;
 *  - its first 8 bytes hold tc_tag(h, its offset) while it is cached, and
 *    no other block of the heap holds its own tag (an allocation from the
 *    cache clears it; a drain pushes the block on its slab's free list,
 *    which overwrites it): a free that finds the tag is a double free;
 *  - every cache is empty while stop is set by heap_lock_all (it drains
 *    them all before it returns, and the fast paths, the only users, see
 *    the gate); a steal (heap_steal_idle) sets stop too but drains only
 *    the slots it takes slabs from, and nothing reads the caches then.
 * So a checkpoint or fork copies an exact heap, and a segment that outlives
 * its process without a quiesce (a crash with the live segment as the
 * durable heap) is a valid heap with at most cls.tcap blocks per class and
 * thread leaked as allocated (TC_LEAK_MAX bytes a thread, heap/classes.c).
 */
struct tcache {
	uint32_t n[TC_NCLASS];                /* blocks cached per class */
	void *b[TC_NCLASS][TC_CAP];           /* b[c][0 .. n[c]): oldest first */
} __attribute__((aligned(64)));           /* slots' caches share no line */

struct tl_rec {              /* pthread key value: which slot of which heap */
	struct heap *h;
	uint32_t slot;
};

/*
 * heap -- the DRAM side of an attached heap. Invariants: seg..seg+size is
 * the mapped segment; hdr/slots/pmap/pbits point into it; hid is unique
 * among every heap attached in this process's life (heap_tl is keyed by it, so
 * a stale cache entry of a detached heap never matches).
 */
struct heap {
	uint8_t *seg;
	uint64_t size;
	uint64_t limit;             /* npages << HP_SHIFT: end of the last whole page */
	struct heap_hdr *hdr;
	struct tslot *slots;
	uint32_t *pmap;
	uint64_t *pbits;
	uint32_t npages, data_page;
	uint64_t hid;
	/* epoch: random and even, new at every attach; a slab whose epoch field
	 * is epoch was checked by heap_slab_validate, epoch | 1 (vfull) also its
	 * list links; the fast paths compare with vfull */
	uint64_t epoch, vfull;
	int fence;                  /* 1: no membarrier; busy sections use a full fence */
	/* gate: stop | fence << 1, what the inlined fast paths load after their
	 * busy store instead of stop (they have no fence: nonzero sends them to
	 * the slow path, which fences when it must and waits out stop) */
	_Atomic uint32_t gate;
	heap_grow_fn grow;
	void *grow_arg;
	_Atomic uint32_t stop;      /* heap_lock_all in progress or held */
	void *_Atomic stopper;      /* &heap_tl of the thread holding heap_lock_all */
	pthread_mutex_t lock;       /* page allocator, abandoned lists, hdr counters */
	pthread_mutex_t shared_mx;  /* threads on the shared slot 0 */
	pthread_mutex_t wait_mx;    /* with wait_cv: threads waiting for !stop */
	pthread_mutex_t vmx;        /* heap_slab_validate: one slab checked at a time */
	pthread_cond_t wait_cv;
	pthread_key_t key;
	int key_ok;
	struct tl_rec recs[NSLOTS];
	/* orphan[i]: slot i is claimed in the segment but no thread of this
	 * process holds it (its thread belonged to the process that wrote the
	 * heap, or did not survive a fork); a new thread claims it with its
	 * lists as they are; norphans counts them */
	_Atomic uint8_t orphan[NSLOTS];
	_Atomic uint32_t norphans;
	/* locker: 1 while a thread stops the others (heap_lock_all until
	 * heap_unlock_all, or heap_steal_idle): one at a time */
	_Atomic uint32_t locker;
	/* steal_hw: the high-water mark at the last heap_steal_idle (heap.lock);
	 * slabbed[i]: 1 once slot i's thread has gone to its slow path for a
	 * slab in this attach (stored once, by that thread; slot 0's under
	 * shared_mx), else 0 (slot 0 is claimed whether any thread uses it or
	 * not); nslabbed counts the slots with 1 */
	uint64_t steal_hw;
	uint8_t slabbed[NSLOTS];
	_Atomic uint32_t nslabbed;
	/* busy[i]: slot i's thread is inside a heap call (DRAM only: a thread
	 * that sees stop sets it transiently while the segment is being copied) */
	struct {
		_Atomic uint32_t v;
		char pad[60];
	} busy[NSLOTS] __attribute__((aligned(64)));
	/* tckey: random, new at every attach; a cached block at offset off holds
	 * off ^ tckey in its first 8 bytes (see tcache) */
	uint64_t tckey;
	/* tc[i]: slot i's front cache (slot 0, shared, has none: always empty) */
	struct tcache tc[NSLOTS] __attribute__((aligned(64)));
	struct heap_purge purge;    /* heap/purge.c: DRAM only, under lock */
	/* pown[pg] (DRAM, one byte a page, at the end of the handle): i + 1 only if the
	 * slab whose first page is pg is owned by slot i and was checked with
	 * its links in this attach (epoch | 1); 0 says nothing. Set by slot i's
	 * thread on its slow free into the slab; cleared before the slab's
	 * owner changes (slab_abandon) or its pages are freed. The fast free
	 * reads it instead of the slab header's owner and epoch (a dense table,
	 * not a line at 16 KiB alignment) */
	uint8_t pown[];
};

/*
 * tl_ent -- the calling thread's slot in the heap it used last. fhid is hid
 * when the slot is the thread's own (not the shared slot 0), else 0: the
 * fast paths test only fhid. busy points at the slot's busy flag, tc at its
 * front cache.
 */
struct tl_ent {
	uint64_t fhid;
	_Atomic uint32_t *busy;
	struct tslot *ts;
	struct tcache *tc;          /* the slot's front cache */
	uint64_t hid;
	uint32_t slot;
	uint32_t own;               /* slot + 1: what pown holds for the slot's slabs */
};
extern __thread struct tl_ent heap_tl __attribute__((tls_model("initial-exec")));

#define SLAB(h, pg) ((struct slab *)((h)->seg + ((uint64_t)(pg) << HP_SHIFT)))
/* the allocated / remote-freed bitmap words holding block i (interleaved pairs);
 * ABW(s, 64 * w), RBW(s, 64 * w): the pair of word w */
#define ABW(s, i) (((uint64_t *)((uint8_t *)(s) + SLAB_HDR))[2 * ((i) >> 6)])
#define RBW(s, i) (((uint64_t *)((uint8_t *)(s) + SLAB_HDR))[2 * ((i) >> 6) + 1])
#define RELAXED memory_order_relaxed
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* pm_get -- page map entry of page pg < npages (relaxed: read racily by
 * heap_bytes_in_use; a 64-bit index: heap_free passes off >> HP_SHIFT as is) */
static inline uint32_t
pm_get(const struct heap *h, uint64_t pg)
{
	return __atomic_load_n(&h->pmap[pg], __ATOMIC_RELAXED);
}

/* pm_set -- set the page map entry of page pg */
static inline void
pm_set(struct heap *h, uint32_t pg, uint32_t e)
{
	__atomic_store_n(&h->pmap[pg], e, __ATOMIC_RELAXED);
}

/* ld64 -- relaxed load of a bitmap word (other threads read it racily) */
static inline uint64_t
ld64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* st64 -- relaxed store of a bitmap word */
static inline void
st64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* used_set -- the owner updates a slab's block count (read racily by heap_bytes_in_use) */
static inline void
used_set(struct slab *s, uint32_t v)
{
	__atomic_store_n(&s->used, v, __ATOMIC_RELAXED);
}

/* bit_get -- bit i of a bitmap (the page bitmap) */
static inline int
bit_get(const uint64_t *bits, uint32_t i)
{
	return (int)((ld64(&bits[i >> 6]) >> (i & 63)) & 1);
}

#endif /* CKPT_HEAP_TYPES_H */
