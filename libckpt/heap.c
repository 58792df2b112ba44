/*
 * heap.c -- the allocator whose whole state lives in one segment: size
 * classes served from thread-owned slabs, page-granular large blocks under a
 * mutex, the quiescing protocol for fork and checkpoint, and the walker that
 * checks an untrusted copy of a segment.
 *
 * docs/HEAP.md describes the on-media layout field by field, the size classes
 * and their fragmentation bound, the threading model and what invalid frees
 * are detected when. Summary:
 *
 *   segment = header (4 KiB) | thread slots | page map | page bitmap | pages
 *
 * Pages are 16 KiB. A page is free, metadata, part of a slab (a run of pages
 * cut into blocks of one size class, owned by one thread slot) or part of a
 * large block (a run of pages). Every reference stored in the segment is an
 * offset or a page index, never a pointer. Locks and the thread-local slot
 * cache live in DRAM (struct heap, tl_c); nothing that matters does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "heap.h"

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
#define HEAP_VERSION 2u
#define HEAP_VERSION_MIN 1u    /* a version 1 heap is a valid version 2 heap: see heap_attach */
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
 * slab -- at the start of a slab's first page, followed by two bitmaps of
 * `words` uint64 each: abits (block allocated) then rbits (block freed by a
 * non-owner, on the remote list); blocks start at dstart.
 * Invariants:
 *  - magic == SLAB_MAGIC; cls < NCLASS and cap, dstart, bsize, words equal
 *    the class table; block i is at dstart + i * bsize from the slab start,
 *  - bump <= cap: blocks [bump, cap) were never handed out (abits 0),
 *  - used == popcount(abits) (blocks allocated or on the remote list),
 *  - free: singly linked list (segment offsets, 0: end; the link is in the
 *    first 8 bytes of each block) of exactly the blocks < bump with abit 0,
 *  - remote: same, of exactly the blocks with rbit 1; rbits is a subset of
 *    abits. A block is live iff abit == 1 and rbit == 0,
 *  - owner: slot index + 1, or 0 when abandoned; list says which list the
 *    slab is on (LIST_ABANDONED iff owner == 0), in_full == (list == FULL),
 *  - next/prev link it into that list (page indexes, 0: none).
 * The owner writes everything but remote, rbits (atomic, any thread) and
 * the owner field during adoption (under heap.lock).
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
	_Atomic uint64_t remote;     /* 40 */
	uint32_t list;               /* 48 */
	uint32_t dstart;             /* 52 */
	uint32_t bsize;              /* 56 */
	uint32_t words;              /* 60 */
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

/* layout_of -- the layout for seg_size bytes; -1 if no heap fits */
static int
layout_of(uint64_t seg_size, struct layout *l)
{
	if (seg_size < HEAP_MIN_SIZE || (seg_size >> HP_SHIFT) >= MAX_PAGES ||
	    (seg_size & 4095))
		return -1;
	l->npages = (uint32_t)(seg_size >> HP_SHIFT);
	l->slots_off = HDR_SIZE;
	l->pmap_off = HDR_SIZE + (uint64_t)NSLOTS * SLOT_SIZE;
	l->pbits_off = align_up(l->pmap_off + 4ull * l->npages, 64);
	uint64_t end = l->pbits_off + 8ull * ((l->npages + 63) / 64);
	l->data_off = align_up(end, HP_SIZE);
	l->data_page = (uint32_t)(l->data_off >> HP_SHIFT);
	if ((uint64_t)l->data_page + 16 > l->npages)
		return -1;
	return 0;
}

/* -- size classes ------------------------------------------------------------ */

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
	uint64_t mul;
};
static struct cls cls_tab[NCLASS];
static uint8_t cls_small[65];       /* [(n + 15) >> 4]: class of n <= 1024 bytes */
static pthread_once_t cls_once = PTHREAD_ONCE_INIT;

/* class_bsize -- block size of class c: 16..128 by 16, then 4 per power of two */
static uint32_t
class_bsize(unsigned c)
{
	if (c < 8)
		return 16u * (c + 1);
	unsigned k = 7 + (c - 8) / 4, j = (c - 8) % 4;
	return (1u << k) + (j + 1) * (1u << (k - 2));
}

/* cls_compute -- fill cls_tab: smallest slab with >= 8 (4 above 8 KiB) blocks and <= 1/8 waste */
static void
cls_compute(void)
{
	for (unsigned c = 0; c < NCLASS; c++) {
		struct cls *k = &cls_tab[c];
		uint32_t b = class_bsize(c);
		uint32_t a = b & (0u - b);
		if (a > SMALL_ALIGN_MAX)
			a = SMALL_ALIGN_MAX;
		uint32_t minb = b <= 8192 ? 8 : 4;
		for (uint32_t p = 1; p <= SLAB_MAX_PAGES; p++) {
			uint64_t bytes = p * HP_SIZE;
			uint64_t cap0 = (bytes - SLAB_HDR) / b;
			if (cap0 == 0)
				continue;
			uint64_t words = (cap0 + 63) / 64;
			uint64_t ds = align_up(SLAB_HDR + 16 * words, a);
			if (ds >= bytes)
				continue;
			uint64_t cap = (bytes - ds) / b;
			uint64_t waste = bytes - ds - cap * b;
			if (cap < minb || (waste * 8 > bytes && p < SLAB_MAX_PAGES))
				continue;
			k->bsize = b;
			k->pages = p;
			k->cap = (uint32_t)cap;
			k->dstart = (uint32_t)ds;
			k->words = (uint32_t)words;
			k->span = (uint32_t)(cap * b);
			k->sbytes = (uint32_t)bytes;
			k->refill = (uint32_t)((cap + 7) / 8);
			k->mul = (((uint64_t)1 << 40) + b - 1) / b;
			break;
		}
	}
	for (unsigned i = 0; i <= 64; i++) {
		unsigned c = 0;
		while (class_bsize(c) < 16 * i)
			c++;
		cls_small[i] = (uint8_t)c;
	}
}

/* cls_init -- compute the class table once */
static void
cls_init(void)
{
	pthread_once(&cls_once, cls_compute);
}

/* size_class -- the class of a request of n bytes, n <= SMALL_MAX (n == 0: class 0) */
static inline unsigned
size_class(size_t n)
{
	if (n <= 1024)
		return cls_small[(n + 15) >> 4];
	unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
	return 8 + (k - 7) * 4 + (unsigned)(((n - 1) >> (k - 2)) & 3);
}

/* -- DRAM handle and thread-local slot cache -------------------------------- */

struct tl_rec {              /* pthread key value: which slot of which heap */
	struct heap *h;
	uint32_t slot;
};

/*
 * heap -- the DRAM side of an attached heap. Invariants: seg..seg+size is
 * the mapped segment; hdr/slots/pmap/pbits point into it; hid is unique
 * among every heap attached in this process's life (tl_c is keyed by it, so
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
	int fence;                  /* 1: no membarrier; busy sections use a full fence */
	/* gate: stop | fence << 1, what the inlined fast paths load after their
	 * busy store instead of stop (they have no fence: nonzero sends them to
	 * the slow path, which fences when it must and waits out stop) */
	_Atomic uint32_t gate;
	heap_grow_fn grow;
	void *grow_arg;
	_Atomic uint32_t stop;      /* heap_lock_all in progress or held */
	void *_Atomic stopper;      /* &tl_c of the thread holding heap_lock_all */
	pthread_mutex_t lock;       /* page allocator, abandoned lists, hdr counters */
	pthread_mutex_t shared_mx;  /* threads on the shared slot 0 */
	pthread_mutex_t wait_mx;    /* with wait_cv: threads waiting for !stop */
	pthread_cond_t wait_cv;
	pthread_key_t key;
	int key_ok;
	struct tl_rec recs[NSLOTS];
	/* busy[i]: slot i's thread is inside a heap call (DRAM only: a thread
	 * that sees stop sets it transiently while the segment is being copied) */
	struct {
		_Atomic uint32_t v;
		char pad[60];
	} busy[NSLOTS] __attribute__((aligned(64)));
};

/*
 * tl_ent -- the calling thread's slot in the heap it used last. fhid is hid
 * when the slot is the thread's own (not the shared slot 0), else 0: the
 * fast paths test only fhid. busy points at the slot's busy flag.
 */
struct tl_ent {
	uint64_t fhid;
	_Atomic uint32_t *busy;
	struct tslot *ts;
	uint64_t hid;
	uint32_t slot;
};
static __thread struct tl_ent tl_c __attribute__((tls_model("initial-exec")));
static _Atomic uint64_t heap_ids;

#define SLAB(h, pg) ((struct slab *)((h)->seg + ((uint64_t)(pg) << HP_SHIFT)))
/* the allocated / remote-freed bitmap words holding block i (interleaved pairs) */
#define ABW(s, i) (((uint64_t *)((uint8_t *)(s) + SLAB_HDR))[2 * ((i) >> 6)])
#define RBW(s, i) (((uint64_t *)((uint8_t *)(s) + SLAB_HDR))[2 * ((i) >> 6) + 1])
#define RELAXED memory_order_relaxed
#define ALWAYS_INLINE inline __attribute__((always_inline))

static inline uint32_t
pm_get(const struct heap *h, uint32_t pg)
{
	return __atomic_load_n(&h->pmap[pg], __ATOMIC_RELAXED);
}

static inline void
pm_set(struct heap *h, uint32_t pg, uint32_t e)
{
	__atomic_store_n(&h->pmap[pg], e, __ATOMIC_RELAXED);
}

static inline uint64_t
ld64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

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

/* -- quiescing: the busy flag ------------------------------------------------ */

/* busy_fence -- order the busy store before the stop load (see heap_lock_all) */
static inline void
busy_fence(const struct heap *h)
{
	if (CKPT_UNLIKELY(h->fence))
		atomic_thread_fence(memory_order_seq_cst);
	else
		atomic_signal_fence(memory_order_seq_cst);
}

/* busy_wait -- stop is set: step out, sleep until heap_unlock_all, step back in */
static void __attribute__((noinline))
busy_wait(struct heap *h, struct tslot *ts, uint32_t slot)
{
	if (atomic_load(&h->stopper) == (void *)&tl_c)
		return;         /* the thread holding heap_lock_all may use the heap */
	do {
		atomic_store_explicit(&h->busy[slot].v, 0, memory_order_release);
		if (slot == 0)
			pthread_mutex_unlock(&h->shared_mx);
		pthread_mutex_lock(&h->wait_mx);
		while (atomic_load_explicit(&h->stop, RELAXED))
			pthread_cond_wait(&h->wait_cv, &h->wait_mx);
		pthread_mutex_unlock(&h->wait_mx);
		if (slot == 0)
			pthread_mutex_lock(&h->shared_mx);
		atomic_store_explicit(&h->busy[slot].v, 1, RELAXED);
		busy_fence(h);
	} while (atomic_load_explicit(&h->stop, RELAXED));
}

/* busy_enter -- mark the slot inside an operation (waits out heap_lock_all) */
static ALWAYS_INLINE void
busy_enter(struct heap *h, struct tslot *ts, uint32_t slot)
{
	if (CKPT_UNLIKELY(slot == 0))
		pthread_mutex_lock(&h->shared_mx);
	atomic_store_explicit(&h->busy[slot].v, 1, RELAXED);
	busy_fence(h);
	if (CKPT_UNLIKELY(atomic_load_explicit(&h->stop, RELAXED)))
		busy_wait(h, ts, slot);
}

/* busy_leave -- publish the operation's writes and leave */
static ALWAYS_INLINE void
busy_leave(struct heap *h, struct tslot *ts, uint32_t slot)
{
	atomic_store_explicit(&h->busy[slot].v, 0, memory_order_release);
	if (CKPT_UNLIKELY(slot == 0))
		pthread_mutex_unlock(&h->shared_mx);
}

static void tl_destructor(void *v);

/* tl_lookup -- find or claim the calling thread's slot in h; fills tl_c */
static void __attribute__((noinline))
tl_lookup(struct heap *h)
{
	struct tl_rec *r = h->key_ok ? pthread_getspecific(h->key) : NULL;
	if (!r) {
		uint32_t i;
		for (i = 1; i < NSLOTS; i++) {
			uint32_t exp = 0;
			if (atomic_load_explicit(&h->slots[i].state, RELAXED) == 0 &&
			    atomic_compare_exchange_strong(&h->slots[i].state, &exp, 1))
				break;
		}
		if (i == NSLOTS)
			i = 0;
		r = &h->recs[i];
		if (h->key_ok && pthread_setspecific(h->key, r) != 0 && i != 0) {
			atomic_store_explicit(&h->slots[i].state, 0, memory_order_release);
			r = &h->recs[0];
		}
	}
	tl_c.hid = h->hid;
	tl_c.fhid = r->slot ? h->hid : 0;
	tl_c.busy = &h->busy[r->slot].v;
	tl_c.ts = &h->slots[r->slot];
	tl_c.slot = r->slot;
}

/* op_enter -- the calling thread's slot, marked busy; *slot set */
static ALWAYS_INLINE struct tslot *
op_enter(struct heap *h, uint32_t *slot)
{
	if (CKPT_UNLIKELY(tl_c.hid != h->hid))
		tl_lookup(h);
	struct tslot *ts = tl_c.ts;
	*slot = tl_c.slot;
	busy_enter(h, ts, *slot);
	return ts;
}

/* -- page allocator (heap.lock held) ----------------------------------------- */

static inline int
bit_get(const uint64_t *bits, uint32_t i)
{
	return (int)((ld64(&bits[i >> 6]) >> (i & 63)) & 1);
}

/* bits_set -- set (v=1) or clear pages [i, i+n) in the page bitmap */
static void
bits_set(uint64_t *bits, uint32_t i, uint32_t n, int v)
{
	while (n) {
		uint32_t b = i & 63, k = 64 - b < n ? 64 - b : n;
		uint64_t m = (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;
		uint64_t w = ld64(&bits[i >> 6]);
		st64(&bits[i >> 6], v ? (w | m) : (w & ~m));
		i += k;
		n -= k;
	}
}

/* next_with -- first page >= i and < limit whose bit equals v, else limit */
static uint32_t
next_with(const uint64_t *bits, uint32_t i, uint32_t limit, int v)
{
	while (i < limit) {
		uint64_t w = ld64(&bits[i >> 6]);
		if (!v)
			w = ~w;
		w >>= (i & 63);
		if (w) {
			uint32_t r = i + (uint32_t)__builtin_ctzll(w);
			return r < limit ? r : limit;
		}
		i = (i | 63) + 1;
	}
	return limit;
}

/* grow_to -- raise the high-water mark to cover byte end (calls the grow callback) */
static int
grow_to(struct heap *h, uint64_t end)
{
	uint64_t hw = h->hdr->high_water;
	if (end <= hw)
		return 0;
	uint64_t nhw = align_up(end, HEAP_GROW_STEP);
	if (nhw > h->size)
		nhw = h->size;
	if (h->grow && h->grow(h->grow_arg, hw, nhw - hw) < 0) {
		ckpt_err_prefix("heap cannot grow to %llu bytes: ", (unsigned long long)nhw);
		errno = ENOMEM;
		return -1;
	}
	__atomic_store_n(&h->hdr->high_water, nhw, __ATOMIC_RELAXED);
	return 0;
}

/*
 * pages_alloc -- the lowest run of n free pages whose address is aligned to
 * `align` bytes (power of two); marks them used. 0 with ENOMEM if none.
 */
static uint32_t
pages_alloc(struct heap *h, uint32_t n, uint64_t align)
{
	uint32_t limit = h->npages, i = h->hdr->free_hint;
	uint64_t apg = align > HP_SIZE ? align >> HP_SHIFT : 1;
	uint64_t base_pg = (uint64_t)(uintptr_t)h->seg >> HP_SHIFT;
	if (n == 0 || n >= limit)
		goto full;
	for (;;) {
		i = next_with(h->pbits, i, limit, 0);
		if (apg > 1) {
			uint64_t a = align_up(base_pg + i, apg) - base_pg;
			i = a < limit ? (uint32_t)a : limit;
		}
		if (i >= limit || limit - i < n)
			goto full;
		uint32_t j = next_with(h->pbits, i, i + n, 1);
		if (j == i + n)
			break;
		i = j;
	}
	if (grow_to(h, (uint64_t)(i + n) << HP_SHIFT) < 0)
		return 0;
	bits_set(h->pbits, i, n, 1);
	if (i == h->hdr->free_hint)
		h->hdr->free_hint = i + n;
	return i;
full:
	ckpt_err_set(ENOMEM, "heap full: no run of %u free %llu-byte pages (heap of %llu bytes)",
			n, (unsigned long long)HP_SIZE, (unsigned long long)h->size);
	return 0;
}

/* pages_free -- mark pages [pg, pg+n) free; their page map entries must be 0 */
static void
pages_free(struct heap *h, uint32_t pg, uint32_t n)
{
	bits_set(h->pbits, pg, n, 0);
	if (pg < h->hdr->free_hint)
		h->hdr->free_hint = pg;
}

/* -- slabs ---------------------------------------------------------------------- */

/* list_push -- put slab pg at the front of *head */
static void
list_push(struct heap *h, uint32_t *head, uint32_t pg)
{
	struct slab *s = SLAB(h, pg);
	s->prev = 0;
	s->next = *head;
	if (*head)
		SLAB(h, *head)->prev = pg;
	*head = pg;
}

/* list_push_second -- put slab pg right after the head of *head (first if empty) */
static void
list_push_second(struct heap *h, uint32_t *head, uint32_t pg)
{
	if (!*head) {
		list_push(h, head, pg);
		return;
	}
	struct slab *f = SLAB(h, *head), *s = SLAB(h, pg);
	s->prev = *head;
	s->next = f->next;
	if (f->next)
		SLAB(h, f->next)->prev = pg;
	f->next = pg;
}

/* list_unlink -- take slab pg out of *head */
static void
list_unlink(struct heap *h, uint32_t *head, uint32_t pg)
{
	struct slab *s = SLAB(h, pg);
	if (s->prev)
		SLAB(h, s->prev)->next = s->next;
	else
		*head = s->next;
	if (s->next)
		SLAB(h, s->next)->prev = s->prev;
	s->next = s->prev = 0;
}

/* unlink_full -- take slab pg (on the full list of class c) off it; the caller files it next */
static void
unlink_full(struct heap *h, struct tslot *ts, struct slab *s, uint32_t pg, unsigned c)
{
	list_unlink(h, &ts->full[c], pg);
	atomic_store_explicit(&s->in_full, 0, RELAXED);
}

/* slab_free_pages -- give an empty slab's pages back (heap.lock held) */
static void
slab_free_pages(struct heap *h, uint32_t pg)
{
	struct slab *s = SLAB(h, pg);
	uint32_t n = cls_tab[s->cls].pages;
	s->magic = 0;
	for (uint32_t i = 0; i < n; i++)
		pm_set(h, pg + i, 0);
	pages_free(h, pg, n);
}

/* slab_init -- format fresh pages [pg, pg+pages) as an empty slab of class c */
static void
slab_init(struct heap *h, uint32_t pg, unsigned c, uint16_t owner, uint32_t list)
{
	const struct cls *k = &cls_tab[c];
	struct slab *s = SLAB(h, pg);
	memset(s, 0, k->dstart);
	s->magic = SLAB_MAGIC;
	s->cls = (uint16_t)c;
	s->cap = k->cap;
	s->dstart = k->dstart;
	s->bsize = k->bsize;
	s->words = k->words;
	s->list = list;
	atomic_store_explicit(&s->owner, owner, RELAXED);
	for (uint32_t i = 1; i < k->pages; i++)
		pm_set(h, pg + i, PM(PM_TAIL, i));
	pm_set(h, pg, PM(PM_SLAB, c));
}

/* blk_index -- index of the block at segment offset off in slab pg (no checks) */
static ALWAYS_INLINE uint32_t
blk_index(const struct cls *k, uint32_t pg, uint64_t off)
{
	uint64_t rel = off - ((uint64_t)pg << HP_SHIFT) - k->dstart;
	return (uint32_t)((rel * k->mul) >> 40);
}

/*
 * collect -- the owner takes the slab's remote-free list and frees its
 * blocks locally. Stops at the first entry that is not a remote-freed block
 * of this slab (never follows garbage; what is left is reported by the walker).
 */
static uint32_t
collect(struct heap *h, struct slab *s, uint32_t pg)
{
	uint64_t b = atomic_exchange_explicit(&s->remote, 0, memory_order_acquire);
	const struct cls *k = &cls_tab[s->cls];
	uint64_t lo = ((uint64_t)pg << HP_SHIFT) + k->dstart;
	uint32_t n = 0;
	while (b && n < s->cap) {
		if (b < lo || b - lo >= (uint64_t)k->cap * k->bsize || (b - lo) % k->bsize)
			break;
		uint32_t idx = blk_index(k, pg, b);
		uint64_t m = 1ull << (idx & 63);
		if (idx >= s->bump || !(ld64(&ABW(s, idx)) & m) ||
		    !(__atomic_load_n(&RBW(s, idx), __ATOMIC_ACQUIRE) & m))
			break;
		uint64_t next = *(uint64_t *)(h->seg + b);
		st64(&ABW(s, idx), ld64(&ABW(s, idx)) & ~m);
		__atomic_fetch_and(&RBW(s, idx), ~m, __ATOMIC_RELEASE);
		*(uint64_t *)(h->seg + b) = s->free;
		s->free = b;
		used_set(s, s->used - 1);
		n++;
		b = next;
	}
	return n;
}

/* slab_try_full -- mark the slab full unless a remote free raced in (Dekker with remote_free) */
static int
slab_try_full(struct slab *s)
{
	atomic_store(&s->in_full, 1);
	if (atomic_load(&s->remote) != 0) {
		atomic_store_explicit(&s->in_full, 0, RELAXED);
		return 0;
	}
	return 1;
}

/* slab_has_room -- the slab can hand out a block without collecting */
static inline int
slab_has_room(const struct slab *s)
{
	return s->free != 0 || s->bump < s->cap;
}

/* slab_pop -- take one block from a slab with room (owner) */
static ALWAYS_INLINE void *
slab_pop(struct heap *h, struct tslot *ts, struct slab *s, uint32_t pg, unsigned c)
{
	const struct cls *k = &cls_tab[c];
	uint64_t b = s->free;
	uint32_t idx;
	if (CKPT_LIKELY(b != 0)) {
		uint64_t next = *(uint64_t *)(h->seg + b);
		uint64_t base = (uint64_t)pg << HP_SHIFT;
		/* a corrupted link (use after free) is dropped, never followed */
		s->free = next - base < (uint64_t)k->pages << HP_SHIFT ? next : 0;
		idx = blk_index(k, pg, b);
	} else {
		idx = s->bump++;
		b = ((uint64_t)pg << HP_SHIFT) + k->dstart + (uint64_t)idx * k->bsize;
	}
	uint64_t *w = &ABW(s, idx);
	st64(w, ld64(w) | (1ull << (idx & 63)));
	used_set(s, s->used + 1);
	return h->seg + b;
}

/* abandoned_push -- put slab pg on the abandoned list of its class (heap.lock held) */
static void
abandoned_push(struct heap *h, uint32_t pg)
{
	struct slab *s = SLAB(h, pg);
	s->list = LIST_ABANDONED;
	list_push(h, &h->hdr->abandoned[s->cls], pg);
}

/* slab_abandon -- the owner lets go of a slab: free it if empty, else abandon it */
static void
slab_abandon(struct heap *h, uint32_t pg)
{
	struct slab *s = SLAB(h, pg);
	collect(h, s, pg);
	s->next = s->prev = 0;
	s->list = LIST_NONE;
	atomic_store_explicit(&s->in_full, 0, RELAXED);
	atomic_store_explicit(&s->owner, 0, memory_order_release);
	pthread_mutex_lock(&h->lock);
	if (s->used == 0 && atomic_load(&s->remote) == 0)
		slab_free_pages(h, pg);
	else
		abandoned_push(h, pg);
	pthread_mutex_unlock(&h->lock);
}

/* slot_release -- abandon every slab of slot i (no other op of slot i runs); the caller frees the slot */
static void
slot_release(struct heap *h, uint32_t i)
{
	struct tslot *ts = &h->slots[i];
	for (unsigned c = 0; c < NCLASS; c++) {
		uint32_t *lists[2] = { &ts->avail[c], &ts->full[c] };
		for (int l = 0; l < 2; l++) {
			uint32_t pg = *lists[l], steps = 0;
			while (pg && steps++ < h->npages) {
				uint32_t next = SLAB(h, pg)->next;
				slab_abandon(h, pg);
				pg = next;
			}
			*lists[l] = 0;
		}
	}
	atomic_store_explicit(&ts->pending, 0, RELAXED);
}

/*
 * scan_full -- move the full slabs of class c that got frees since back to
 * avail: those with a remote list, and those with at least `min` blocks on
 * their local free list (1: any). Returns how many it moved.
 */
static uint32_t
scan_full(struct heap *h, struct tslot *ts, unsigned c, uint32_t min)
{
	uint32_t pg = ts->full[c], moved = 0, steps = 0;
	while (pg && steps++ < h->npages) {
		struct slab *s = SLAB(h, pg);
		uint32_t next = s->next;
		if ((s->free != 0 && s->cap - s->used >= min) ||
		    atomic_load_explicit(&s->remote, RELAXED)) {
			unlink_full(h, ts, s, pg, c);
			s->list = LIST_AVAIL;
			list_push(h, &ts->avail[c], pg);
			moved++;
		}
		pg = next;
	}
	return moved;
}

/* reclaim_own -- before failing with ENOMEM: give back every empty slab this slot owns */
static uint32_t
reclaim_own(struct heap *h, struct tslot *ts)
{
	uint32_t freed = 0;
	for (unsigned c = 0; c < NCLASS; c++) {
		scan_full(h, ts, c, 1);
		uint32_t pg = ts->avail[c], steps = 0;
		while (pg && steps++ < h->npages) {
			struct slab *s = SLAB(h, pg);
			uint32_t next = s->next;
			if (atomic_load_explicit(&s->remote, RELAXED))
				collect(h, s, pg);
			if (s->used == 0) {
				list_unlink(h, &ts->avail[c], pg);
				s->list = LIST_NONE;
				pthread_mutex_lock(&h->lock);
				slab_free_pages(h, pg);
				pthread_mutex_unlock(&h->lock);
				freed++;
			}
			pg = next;
		}
	}
	return freed;
}

/* reclaim_abandoned -- free abandoned slabs whose blocks were all freed (heap.lock held) */
static uint32_t
reclaim_abandoned(struct heap *h)
{
	uint32_t freed = 0;
	for (unsigned c = 0; c < NCLASS; c++) {
		uint32_t pg = h->hdr->abandoned[c], steps = 0;
		while (pg && steps++ < h->npages) {
			struct slab *s = SLAB(h, pg);
			uint32_t next = s->next;
			if (atomic_load_explicit(&s->remote, RELAXED))
				collect(h, s, pg);
			if (s->used == 0) {
				list_unlink(h, &h->hdr->abandoned[c], pg);
				s->list = LIST_NONE;
				slab_free_pages(h, pg);
				freed++;
			}
			pg = next;
		}
	}
	return freed;
}

/* reclaim -- before failing with ENOMEM: free every empty slab this thread can reach */
static uint32_t
reclaim(struct heap *h, struct tslot *ts)
{
	int saved = errno;
	uint32_t n = reclaim_own(h, ts);
	pthread_mutex_lock(&h->lock);
	n += reclaim_abandoned(h);
	pthread_mutex_unlock(&h->lock);
	errno = saved;
	return n;
}

/* adopt -- take abandoned slabs of class c (heap.lock held); returns one with room, or 0 */
static uint32_t
adopt(struct heap *h, struct tslot *ts, uint16_t own, unsigned c)
{
	for (int tries = 0; tries < 16; tries++) {
		uint32_t pg = h->hdr->abandoned[c];
		if (!pg)
			return 0;
		struct slab *s = SLAB(h, pg);
		list_unlink(h, &h->hdr->abandoned[c], pg);
		atomic_store_explicit(&s->owner, own, memory_order_release);
		collect(h, s, pg);
		if (!slab_has_room(s) && slab_try_full(s)) {
			s->list = LIST_FULL;
			list_push(h, &ts->full[c], pg);
			continue;
		}
		if (!slab_has_room(s))
			collect(h, s, pg);
		s->list = LIST_AVAIL;
		list_push(h, &ts->avail[c], pg);
		if (slab_has_room(s))
			return pg;
	}
	return 0;
}

/* slab_alloc_slow -- the current slab of class c is exhausted: find or make another */
static void * __attribute__((noinline))
slab_alloc_slow(struct heap *h, struct tslot *ts, uint16_t own, unsigned c)
{
	int reclaimed = 0;
	for (;;) {
		uint32_t pg = ts->avail[c], steps = 0;
		while (pg && steps++ < 4 * h->npages) {
			struct slab *s = SLAB(h, pg);
			if (!slab_has_room(s) && atomic_load_explicit(&s->remote, RELAXED))
				collect(h, s, pg);
			if (slab_has_room(s)) {
				if (pg != ts->avail[c]) {
					list_unlink(h, &ts->avail[c], pg);
					list_push(h, &ts->avail[c], pg);
				}
				return slab_pop(h, ts, s, pg, c);
			}
			uint32_t next = s->next;
			if (!slab_try_full(s))
				continue;       /* a remote free raced in: collect it */
			list_unlink(h, &ts->avail[c], pg);
			s->list = LIST_FULL;
			list_push(h, &ts->full[c], pg);
			pg = next;
		}
		/*
		 * The avail list is dry. Local frees refile a full slab
		 * themselves once it has cls.refill free blocks; remote frees
		 * into full slabs set pending: then take back the full slabs with
		 * a remote list (or refill local free blocks). Before failing,
		 * reclaim takes back every free block.
		 */
		uint64_t bit = 1ull << c;
		if (atomic_load_explicit(&ts->pending, RELAXED) & bit) {
			atomic_fetch_and(&ts->pending, ~bit);
			if (scan_full(h, ts, c, cls_tab[c].refill))
				continue;
		}
		pthread_mutex_lock(&h->lock);
		pg = adopt(h, ts, own, c);
		if (!pg) {
			pg = pages_alloc(h, cls_tab[c].pages, 1);
			if (pg) {
				slab_init(h, pg, c, own, LIST_AVAIL);
				list_push(h, &ts->avail[c], pg);
			}
		}
		pthread_mutex_unlock(&h->lock);
		if (pg)
			continue;
		if (!reclaimed) {
			/* free what can be freed, take back every free block, retry once */
			reclaimed = 1;
			reclaim(h, ts);
			continue;
		}
		return NULL;
	}
}

/* slab_alloc -- a block of class c for the calling thread (busy held) */
static ALWAYS_INLINE void *
slab_alloc(struct heap *h, struct tslot *ts, uint32_t slot, unsigned c)
{
	uint32_t pg = ts->avail[c];
	if (CKPT_LIKELY(pg != 0)) {
		struct slab *s = SLAB(h, pg);
		if (CKPT_LIKELY(slab_has_room(s)))
			return slab_pop(h, ts, s, pg, c);
	}
	return slab_alloc_slow(h, ts, (uint16_t)(slot + 1), c);
}

/* -- locating blocks ------------------------------------------------------------ */

/* binfo -- what a pointer designates (filled by locate) */
struct binfo {
	uint64_t off;      /* from the segment start */
	uint32_t pg;       /* slab: first page; large: first page */
	uint32_t idx;      /* slab block index */
	unsigned c;        /* slab class */
	int large;
};

/*
 * locate -- classify p: the start of a slab block position or of a large
 * block position. -1 with EINVAL and a message (prefixed by `what`) when p
 * cannot be a block start. Says nothing about the block being allocated.
 */
static int
locate(const struct heap *h, const void *p, const char *what, struct binfo *bi)
{
	uint64_t off = (uint64_t)((uintptr_t)p - (uintptr_t)h->seg);
	if (off >= h->size)
		return ckpt_err_set(EINVAL, "%s(%p): not a block of this heap: outside "
				"the heap [%p, %p)", what, p, (void *)h->seg,
				(void *)(h->seg + h->size));
	uint32_t pg = (uint32_t)(off >> HP_SHIFT);
	if (pg >= h->npages)
		return ckpt_err_set(EINVAL, "%s(%p): not a block: past the last heap page", what, p);
	uint32_t e = pm_get(h, pg);
	bi->off = off;
	switch (PM_KIND(e)) {
	case PM_TAIL:
		if (PM_VAL(e) > pg || PM_KIND(pm_get(h, pg - PM_VAL(e))) != PM_SLAB)
			return ckpt_err_set(EINVAL, "%s(%p): damaged page map at page %u", what, p, pg);
		pg -= PM_VAL(e);
		e = pm_get(h, pg);
		/* fall through */
	case PM_SLAB: {
		unsigned c = PM_VAL(e);
		if (c >= NCLASS)
			return ckpt_err_set(EINVAL, "%s(%p): damaged page map at page %u", what, p, pg);
		const struct cls *k = &cls_tab[c];
		uint64_t base = ((uint64_t)pg << HP_SHIFT) + k->dstart;
		if (off < base)
			return ckpt_err_set(EINVAL, "%s(%p): not a block: inside the heap's "
					"metadata (slab header at %p)", what, p,
					(void *)(h->seg + ((uint64_t)pg << HP_SHIFT)));
		uint32_t idx = blk_index(k, pg, off);
		if (idx >= k->cap)
			return ckpt_err_set(EINVAL, "%s(%p): not a block: in the unused tail "
					"of a slab", what, p);
		uint64_t start = base + (uint64_t)idx * k->bsize;
		if (start != off)
			return ckpt_err_set(EINVAL, "%s(%p): not the start of a block: %llu "
					"bytes inside the %u-byte block at %p", what, p,
					(unsigned long long)(off - start), k->bsize,
					(void *)(h->seg + start));
		bi->pg = pg;
		bi->idx = idx;
		bi->c = c;
		bi->large = 0;
		return 0;
	}
	case PM_LARGE:
		if (off & (HP_SIZE - 1))
			return ckpt_err_set(EINVAL, "%s(%p): not the start of a block: %llu "
					"bytes inside the large block at %p", what, p,
					(unsigned long long)(off & (HP_SIZE - 1)),
					(void *)(h->seg + ((uint64_t)pg << HP_SHIFT)));
		bi->pg = pg;
		bi->large = 1;
		return 0;
	case PM_FREE:
		if (bit_get(h->pbits, pg)) {
			uint32_t q = pg;
			while (q > h->data_page && PM_KIND(pm_get(h, q)) == PM_FREE)
				q--;
			return ckpt_err_set(EINVAL, "%s(%p): not the start of a block: inside "
					"the large block at %p", what, p,
					(void *)(h->seg + ((uint64_t)q << HP_SHIFT)));
		}
		if (off & (HP_SIZE - 1))
			return ckpt_err_set(EINVAL, "%s(%p): not a block: in free heap space", what, p);
		bi->pg = pg;
		bi->large = 1;
		return 0;       /* a free page start: the caller reports ENOENT */
	default:
		return ckpt_err_set(EINVAL, "%s(%p): not a block: inside the heap's metadata",
				what, p);
	}
}

/* block_usable -- usable size of the live block p, or 0 with ENOENT/EINVAL and a message */
static size_t
block_usable(struct heap *h, const void *p, const char *what)
{
	struct binfo bi;
	if (!p) {
		ckpt_err_set(EINVAL, "%s(NULL): not a block", what);
		return 0;
	}
	if (locate(h, p, what, &bi) < 0)
		return 0;
	if (bi.large) {
		uint32_t e = pm_get(h, bi.pg);
		if (PM_KIND(e) == PM_LARGE)
			return (size_t)PM_VAL(e) << HP_SHIFT;
	} else {
		struct slab *s = SLAB(h, bi.pg);
		uint64_t m = 1ull << (bi.idx & 63);
		if ((ld64(&ABW(s, bi.idx)) & m) && !(ld64(&RBW(s, bi.idx)) & m))
			return cls_tab[bi.c].bsize;
	}
	ckpt_err_set(ENOENT, "%s(%p): block is not allocated (already freed, or never "
			"handed out)", what, p);
	return 0;
}

/* -- large blocks ------------------------------------------------------------------- */

/* large_alloc -- a page-granular block of n bytes aligned to align (power of two) */
static void *
large_alloc(struct heap *h, size_t n, size_t align)
{
	if (n > h->size) {
		ckpt_err_set(ENOMEM, "heap full: %zu bytes requested from a heap of %llu bytes",
				n, (unsigned long long)h->size);
		return NULL;
	}
	uint32_t np = (uint32_t)((n + HP_SIZE - 1) >> HP_SHIFT), slot;
	if (np == 0)
		np = 1;
	struct tslot *ts = op_enter(h, &slot);
	void *p = NULL;
	for (int attempt = 0; attempt < 2 && !p; attempt++) {
		pthread_mutex_lock(&h->lock);
		uint32_t pg = pages_alloc(h, np, align);
		if (pg) {
			pm_set(h, pg, PM(PM_LARGE, np));
			p = h->seg + ((uint64_t)pg << HP_SHIFT);
		}
		pthread_mutex_unlock(&h->lock);
		if (!p && (attempt > 0 || !reclaim(h, ts)))
			break;
	}
	busy_leave(h, ts, slot);
	if (!p)
		errno = ENOMEM;
	return p;
}

/* large_free -- free the large block at bi (busy held) */
static int
large_free(struct heap *h, const struct binfo *bi, const void *p)
{
	int ret = 0;
	pthread_mutex_lock(&h->lock);
	uint32_t e = pm_get(h, bi->pg);
	if (PM_KIND(e) == PM_LARGE) {
		uint32_t np = PM_VAL(e);
		pm_set(h, bi->pg, 0);
		pages_free(h, bi->pg, np);
	} else {
		ret = ckpt_err_set(ENOENT, "free(%p): block is not allocated (double free, "
				"or never handed out)", p);
	}
	pthread_mutex_unlock(&h->lock);
	return ret;
}

/* large_resize -- grow or shrink the large block at pg to n bytes in place; 0 or -1 */
static int
large_resize(struct heap *h, uint32_t pg, size_t n)
{
	uint64_t np64 = (n + HP_SIZE - 1) >> HP_SHIFT;
	if (np64 == 0)
		np64 = 1;
	if (np64 >= h->npages)
		return -1;
	uint32_t np = (uint32_t)np64, slot;
	struct tslot *ts = op_enter(h, &slot);
	int ret = -1;
	pthread_mutex_lock(&h->lock);
	uint32_t e = pm_get(h, pg);
	if (PM_KIND(e) == PM_LARGE) {
		uint32_t old = PM_VAL(e);
		if (np <= old) {
			if (np < old)
				pages_free(h, pg + np, old - np);
			ret = 0;
		} else if ((uint64_t)pg + np <= h->npages &&
			   next_with(h->pbits, pg + old, pg + np, 1) == pg + np &&
			   grow_to(h, (uint64_t)(pg + np) << HP_SHIFT) == 0) {
			bits_set(h->pbits, pg + old, np - old, 1);
			ret = 0;
		}
		if (ret == 0)
			pm_set(h, pg, PM(PM_LARGE, np));
	}
	pthread_mutex_unlock(&h->lock);
	busy_leave(h, ts, slot);
	return ret;
}

/* -- the API ----------------------------------------------------------------------- */

/* alloc_slow -- heap_alloc when the fast path cannot serve it */
static void * __attribute__((noinline))
alloc_slow(struct heap *h, size_t size)
{
	if (CKPT_LIKELY(size <= SMALL_MAX)) {
		unsigned c = size_class(size);
		uint32_t slot;
		struct tslot *ts = op_enter(h, &slot);
		void *p = slab_alloc(h, ts, slot, c);
		busy_leave(h, ts, slot);
		return p;
	}
	return large_alloc(h, size, HP_SIZE);
}

/*
 * heap_alloc -- fast path: a thread with its own slot (cached in tl_c) pops
 * the free list of its current slab of the class. Anything else (first call,
 * shared slot, stop set, current slab without a free-list block) goes to
 * alloc_slow, which starts over.
 */
void * __attribute__((hot))
heap_alloc(struct heap *h, size_t size)
{
	if (CKPT_LIKELY(size <= SMALL_MAX && tl_c.fhid == h->hid)) {
		unsigned c = size_class(size);
		struct tslot *ts = tl_c.ts;
		_Atomic uint32_t *busy = tl_c.busy;
		atomic_store_explicit(busy, 1, RELAXED);
		atomic_signal_fence(memory_order_seq_cst);
		uint32_t pg = ts->avail[c];
		if (CKPT_LIKELY(!atomic_load_explicit(&h->gate, RELAXED) && pg != 0)) {
			struct slab *s = SLAB(h, pg);
			uint64_t b = s->free;
			if (CKPT_LIKELY(b != 0)) {
				const struct cls *k = &cls_tab[c];
				uint64_t base = (uint64_t)pg << HP_SHIFT;
				uint64_t next = *(uint64_t *)(h->seg + b);
				/* a corrupted link (use after free) is dropped, never followed */
				s->free = next - base < k->sbytes ? next : 0;
				uint32_t idx = (uint32_t)(((b - base - k->dstart) * k->mul) >> 40);
				uint64_t *w = &ABW(s, idx);
				st64(w, ld64(w) | (1ull << (idx & 63)));
				used_set(s, s->used + 1);
				atomic_store_explicit(busy, 0, memory_order_release);
				return h->seg + b;
			}
		}
		atomic_store_explicit(busy, 0, memory_order_release);
	}
	return alloc_slow(h, size);
}

void *
heap_calloc(struct heap *h, size_t nmemb, size_t size)
{
	uint64_t n;
	if (mul_overflows(nmemb, size, &n) || n > SIZE_MAX) {
		ckpt_err_set(ENOMEM, "calloc(%zu, %zu): size overflows", nmemb, size);
		return NULL;
	}
	void *p = heap_alloc(h, (size_t)n);
	if (p)
		memset(p, 0, (size_t)n);
	return p;
}

void *
heap_aligned_alloc(struct heap *h, size_t alignment, size_t size)
{
	if (alignment == 0 || (alignment & (alignment - 1))) {
		ckpt_err_set(EINVAL, "aligned_alloc: alignment %zu is not a power of two", alignment);
		return NULL;
	}
	if (alignment <= 16)
		return heap_alloc(h, size);
	if (alignment <= SMALL_ALIGN_MAX && size <= SMALL_MAX) {
		size_t n = size < alignment ? alignment : size;
		unsigned c = size_class(n);
		uint32_t b = cls_tab[c].bsize;
		if (b & (alignment - 1)) {
			/* the next power of two is a class and a multiple of alignment */
			b = 1u << (32 - __builtin_clz(b));
			c = size_class(b);
		}
		if (b <= SMALL_MAX) {
			uint32_t slot;
			struct tslot *ts = op_enter(h, &slot);
			void *p = slab_alloc(h, ts, slot, c);
			busy_leave(h, ts, slot);
			return p;
		}
	}
	return large_alloc(h, size, alignment);
}

/* remote_free -- free a block of a slab another slot owns (busy held) */
static int
remote_free(struct heap *h, struct tslot *ts, struct slab *s, const struct binfo *bi, void *p)
{
	uint64_t m = 1ull << (bi->idx & 63);
	uint64_t *rw = &RBW(s, bi->idx);
	if (__atomic_fetch_or(rw, m, __ATOMIC_ACQ_REL) & m)
		return ckpt_err_set(ENOENT, "free(%p): block already freed (double free; "
				"the first free came from another thread)", p);
	if (!(__atomic_load_n(&ABW(s, bi->idx), __ATOMIC_ACQUIRE) & m)) {
		__atomic_fetch_and(rw, ~m, __ATOMIC_RELEASE);
		return ckpt_err_set(ENOENT, "free(%p): block is not allocated (double free, "
				"or never handed out)", p);
	}
	uint64_t old = atomic_load_explicit(&s->remote, RELAXED);
	do {
		*(uint64_t *)p = old;
	} while (!atomic_compare_exchange_weak(&s->remote, &old, bi->off));
	if (CKPT_UNLIKELY(atomic_load(&s->in_full))) {
		unsigned o = atomic_load_explicit(&s->owner, RELAXED);
		if (o >= 1 && o <= NSLOTS)
			atomic_fetch_or(&h->slots[o - 1].pending, 1ull << bi->c);
	}
	return 0;
}

/*
 * local_free_has_work -- after a local free left `used` blocks in slab s of
 * class k: it emptied the slab, or brought a full slab to k->refill free
 * blocks (free_local_slow then has something to do)
 */
static ALWAYS_INLINE int
local_free_has_work(const struct slab *s, const struct cls *k, uint32_t used)
{
	return used == 0 || (s->list != LIST_AVAIL && s->cap - used >= k->refill);
}

/*
 * free_local_slow -- after a local free that emptied a slab, or that brought
 * a slab on the full list to cls.refill free blocks. An emptied slab that
 * is not the current one goes back to the pages; a full slab with refill
 * free blocks goes back to avail, behind the current slab. (Refiling a
 * full slab on every free made slabs bounce between the lists; with the
 * threshold, each refiled slab serves an eighth of its blocks before it
 * can be full again.)
 */
static void __attribute__((noinline))
free_local_slow(struct heap *h, struct tslot *ts, struct slab *s, uint32_t pg, unsigned c)
{
	if (s->used == 0 && ts->avail[c] != pg && atomic_load(&s->remote) == 0) {
		if (s->list == LIST_FULL)
			unlink_full(h, ts, s, pg, c);
		else
			list_unlink(h, &ts->avail[c], pg);
		s->list = LIST_NONE;
		pthread_mutex_lock(&h->lock);
		slab_free_pages(h, pg);
		pthread_mutex_unlock(&h->lock);
		return;
	}
	if (s->list == LIST_FULL && s->cap - s->used >= cls_tab[c].refill) {
		/* second on avail: the current slab stays current, and this one
		 * gathers more frees before it is allocated from */
		unlink_full(h, ts, s, pg, c);
		s->list = LIST_AVAIL;
		list_push_second(h, &ts->avail[c], pg);
	}
}

/* slab_free -- free block idx of the slab at page pg (busy held) */
static ALWAYS_INLINE int
slab_free(struct heap *h, struct tslot *ts, uint32_t slot, const struct binfo *bi, void *p)
{
	struct slab *s = SLAB(h, bi->pg);
	if (CKPT_UNLIKELY(atomic_load_explicit(&s->owner, RELAXED) != slot + 1))
		return remote_free(h, ts, s, bi, p);
	uint32_t idx = bi->idx;
	uint64_t m = 1ull << (idx & 63);
	uint64_t *aw = &ABW(s, idx);
	uint64_t a = ld64(aw);
	if (CKPT_UNLIKELY(!(a & m) || (ld64(&RBW(s, idx)) & m)))
		return ckpt_err_set(ENOENT, "free(%p): block is not allocated (double free, "
				"or never handed out)", p);
	st64(aw, a & ~m);
	*(uint64_t *)p = s->free;
	s->free = bi->off;
	used_set(s, s->used - 1);
	if (CKPT_UNLIKELY(local_free_has_work(s, &cls_tab[bi->c], s->used)))
		free_local_slow(h, ts, s, bi->pg, bi->c);
	return 0;
}

/* free_slow -- what the fast path of heap_free does not take: NULL, large blocks, other
 * owners' blocks, the shared slot, stop set, and every invalid pointer (checked, reported) */
static int __attribute__((noinline))
free_slow(struct heap *h, void *p)
{
	if (!p)
		return 0;
	struct binfo bi;
	if (locate(h, p, "free", &bi) < 0)
		return -1;
	uint32_t slot;
	struct tslot *ts = op_enter(h, &slot);
	int ret = bi.large ? large_free(h, &bi, p) : slab_free(h, ts, slot, &bi, p);
	busy_leave(h, ts, slot);
	return ret;
}

/* free_fixup -- heap_free's tail when free_local_slow has work (busy held; released here) */
static int __attribute__((noinline))
free_fixup(struct heap *h, struct slab *s, uint32_t pg, unsigned c, uint32_t slot)
{
	free_local_slow(h, tl_c.ts, s, pg, c);
	atomic_store_explicit(&h->busy[slot].v, 0, memory_order_release);
	return 0;
}

/*
 * heap_free -- fast path: an allocated block of a slab that the calling
 * thread (with its own slot, cached in tl_c) owns: clear its abit, push it
 * on the slab's free list. Anything else (NULL, large blocks, other owners,
 * the shared slot, stop set, and every invalid free) goes to free_slow,
 * which starts over, checks and reports.
 */
int __attribute__((hot))
heap_free(struct heap *h, void *p)
{
	uint64_t off = (uint64_t)((uintptr_t)p - (uintptr_t)h->seg);
	if (CKPT_UNLIKELY(off >= h->limit || tl_c.fhid != h->hid))
		return free_slow(h, p);
	uint64_t base = off & ~(HP_SIZE - 1);       /* the slab's first page */
	uint32_t e = pm_get(h, (uint32_t)(off >> HP_SHIFT));
	uint32_t c = e - PM(PM_SLAB, 0);
	if (CKPT_UNLIKELY(c >= NCLASS)) {
		/* a later page of a slab: find its first page; else large or not a block */
		if (PM_KIND(e) != PM_TAIL || PM_VAL(e) > (off >> HP_SHIFT))
			return free_slow(h, p);
		base -= (uint64_t)PM_VAL(e) << HP_SHIFT;
		c = pm_get(h, (uint32_t)(base >> HP_SHIFT)) - PM(PM_SLAB, 0);
		if (c >= NCLASS)
			return free_slow(h, p);
	}
	const struct cls *k = &cls_tab[c];
	uint64_t rel = off - base - k->dstart;
	uint32_t idx = (uint32_t)((rel * k->mul) >> 40);
	if (CKPT_UNLIKELY(rel >= k->span || (uint64_t)idx * k->bsize != rel))
		return free_slow(h, p);
	struct slab *s = (struct slab *)(h->seg + base);
	_Atomic uint32_t *busy = tl_c.busy;
	atomic_store_explicit(busy, 1, RELAXED);
	atomic_signal_fence(memory_order_seq_cst);
	uint64_t m = 1ull << (idx & 63);
	uint64_t *aw = &ABW(s, idx);
	uint64_t a = ld64(aw);
	if (CKPT_UNLIKELY(atomic_load_explicit(&h->gate, RELAXED) ||
			atomic_load_explicit(&s->owner, RELAXED) != tl_c.slot + 1 ||
			((a & ~ld64(aw + 1)) & m) == 0)) {
		atomic_store_explicit(busy, 0, memory_order_release);
		return free_slow(h, p);     /* remote free, or not allocated: checks and reports */
	}
	st64(aw, a & ~m);
	*(uint64_t *)p = s->free;
	s->free = off;
	uint32_t used = s->used - 1;
	used_set(s, used);
	if (CKPT_UNLIKELY(local_free_has_work(s, k, used)))
		return free_fixup(h, s, (uint32_t)(base >> HP_SHIFT), c, tl_c.slot);
	atomic_store_explicit(busy, 0, memory_order_release);
	return 0;
}

size_t
heap_usable_size(struct heap *h, const void *ptr)
{
	return block_usable(h, ptr, "usable_size");
}

int
heap_is_block(struct heap *h, const void *ptr)
{
	int saved = errno;
	int r = ptr && (uint64_t)((uintptr_t)ptr - (uintptr_t)h->seg) < h->size &&
		block_usable(h, ptr, "is_block") != 0;
	errno = saved;
	return r;
}

void *
heap_realloc(struct heap *h, void *ptr, size_t size)
{
	if (!ptr)
		return heap_alloc(h, size);
	size_t old = block_usable(h, ptr, "realloc");
	if (!old)
		return NULL;
	if (old <= SMALL_MAX) {
		if (size <= old && (size >= old / 2 || (size <= SMALL_MAX &&
				cls_tab[size_class(size)].bsize == old)))
			return ptr;
	} else if (size > SMALL_MAX || size >= old / 2) {
		uint32_t pg = (uint32_t)(((uint8_t *)ptr - h->seg) >> HP_SHIFT);
		if (large_resize(h, pg, size) == 0)
			return ptr;
	}
	void *q = heap_alloc(h, size);
	if (!q)
		return NULL;
	memcpy(q, ptr, old < size ? old : size);
	heap_free(h, ptr);
	return q;
}

void *
heap_root(struct heap *h)
{
	uint64_t r = __atomic_load_n(&h->hdr->root, __ATOMIC_RELAXED);
	return r ? h->seg + r : NULL;
}

int
heap_set_root(struct heap *h, void *ptr)
{
	if (ptr && !block_usable(h, ptr, "set_root")) {
		errno = EINVAL;
		return -1;
	}
	uint64_t off = ptr ? (uint64_t)((uint8_t *)ptr - h->seg) : 0;
	__atomic_store_n(&h->hdr->root, off, __ATOMIC_RELAXED);
	return 0;
}

size_t
heap_high_water(struct heap *h)
{
	return (size_t)__atomic_load_n(&h->hdr->high_water, __ATOMIC_RELAXED);
}

size_t
heap_bytes_in_use(struct heap *h)
{
	uint64_t t = 0;
	uint32_t hwp = (uint32_t)(heap_high_water(h) >> HP_SHIFT);
	for (uint32_t p = h->data_page; p < hwp && p < h->npages; p++) {
		uint32_t e = pm_get(h, p);
		if (PM_KIND(e) == PM_SLAB && PM_VAL(e) < NCLASS) {
			/* live = allocated minus freed by other threads, not yet collected */
			const struct cls *k = &cls_tab[PM_VAL(e)];
			struct slab *s = SLAB(h, p);
			int64_t n = __atomic_load_n(&s->used, __ATOMIC_RELAXED);
			for (uint32_t w = 0; w < k->words; w++)
				n -= __builtin_popcountll(ld64(&RBW(s, 64 * w)));
			t += n > 0 ? (uint64_t)n * k->bsize : 0;
		}
		else if (PM_KIND(e) == PM_LARGE)
			t += (uint64_t)PM_VAL(e) << HP_SHIFT;
	}
	return (size_t)t;
}

/* -- quiescing ------------------------------------------------------------------------ */

/* membarrier_ok -- register for expedited membarrier; 0 if usable */
static int
membarrier_ok(void)
{
	return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 ? 0 : -1;
}

/*
 * heap_lock_all -- stop the world for this heap. Sets stop, then makes every
 * thread's busy store visible (membarrier: a full barrier on every running
 * thread, so the fast path needs only a compiler barrier between its busy
 * store and its stop load), then waits until no slot is busy. Threads that
 * see stop step out and sleep on wait_cv. No thread is then inside the heap
 * and none holds heap.lock (it is only taken inside busy sections). The
 * calling thread itself may go on using the heap (fork handlers that
 * allocate do not deadlock); the copy is consistent only if it does not.
 */
void
heap_lock_all(struct heap *h)
{
	pthread_mutex_lock(&h->wait_mx);
	atomic_store(&h->stop, 1);
	atomic_store(&h->gate, 1u | (uint32_t)h->fence << 1);
	pthread_mutex_unlock(&h->wait_mx);
	if (h->fence || syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
		atomic_thread_fence(memory_order_seq_cst);
	for (uint32_t i = 0; i < NSLOTS; i++)
		while (atomic_load_explicit(&h->busy[i].v, memory_order_acquire))
			sched_yield();
	atomic_store(&h->stopper, (void *)&tl_c);
}

/* heap_unlock_all -- let the threads stopped by heap_lock_all go on */
void
heap_unlock_all(struct heap *h)
{
	atomic_store(&h->stopper, NULL);
	pthread_mutex_lock(&h->wait_mx);
	atomic_store(&h->stop, 0);
	atomic_store(&h->gate, (uint32_t)h->fence << 1);
	pthread_cond_broadcast(&h->wait_cv);
	pthread_mutex_unlock(&h->wait_mx);
}

/* locks_init -- (re)initialise the DRAM locks */
static void
locks_init(struct heap *h)
{
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->shared_mx, NULL);
	pthread_mutex_init(&h->wait_mx, NULL);
	pthread_cond_init(&h->wait_cv, NULL);
}

void
heap_after_fork_child(struct heap *h)
{
	locks_init(h);
	if (!h->fence && membarrier_ok() < 0)
		h->fence = 1;
	/* the forking thread keeps its slot; its pthread key says which (tl_c
	 * only describes the heap it used last, maybe another pool's) */
	struct tl_rec *r = h->key_ok ? pthread_getspecific(h->key) : NULL;
	uint32_t me = r ? r->slot : NSLOTS;
	for (uint32_t i = 1; i < NSLOTS; i++) {
		if (i != me && atomic_load(&h->slots[i].state)) {
			slot_release(h, i);
			atomic_store(&h->slots[i].state, 0);
		}
	}
	atomic_store(&h->stopper, NULL);
	atomic_store(&h->stop, 0);
	atomic_store(&h->gate, (uint32_t)h->fence << 1);
}

/* tl_destructor -- thread exit: hand the slot's slabs back, free the slot */
static void
tl_destructor(void *v)
{
	struct tl_rec *r = v;
	struct heap *h = r->h;
	if (r->slot == 0)
		return;
	struct tslot *ts = &h->slots[r->slot];
	busy_enter(h, ts, r->slot);
	slot_release(h, r->slot);
	busy_leave(h, ts, r->slot);
	atomic_store_explicit(&ts->state, 0, memory_order_release);
	if (tl_c.hid == h->hid)
		tl_c.hid = tl_c.fhid = 0;
}

/*
 * upgrade -- bring an attached heap of an older version to HEAP_VERSION.
 * Version 1 differs only in what it allowed less of: its full slabs never
 * held local free blocks, so a version 1 heap is a valid version 2 heap.
 * The version is raised so that an older library, which would break on
 * full slabs with free blocks, refuses the heap from now on.
 */
static void
upgrade(struct heap *h)
{
	if (h->hdr->version == HEAP_VERSION)
		return;
	h->hdr->version = HEAP_VERSION;
}

/* -- format, attach, detach ------------------------------------------------------------ */

int
heap_format(void *seg, size_t size, heap_grow_fn grow, void *grow_arg)
{
	cls_init();
	struct layout l;
	if ((uintptr_t)seg & (HP_SIZE - 1))
		return ckpt_err_set(EINVAL, "heap_format: segment %p is not aligned to %llu bytes",
				seg, (unsigned long long)HP_SIZE);
	if (layout_of(size, &l) < 0)
		return ckpt_err_set(EINVAL, "heap_format: segment size %zu out of range [%zu, %llu)",
				size, (size_t)HEAP_MIN_SIZE, (unsigned long long)(MAX_PAGES << HP_SHIFT));
	uint64_t hw = align_up(l.data_off, HEAP_GROW_STEP);
	if (hw > size)
		hw = size;
	if (grow && grow(grow_arg, 0, hw) < 0) {
		ckpt_err_prefix("heap_format: ");
		errno = ENOMEM;
		return -1;
	}
	uint8_t *b = seg;
	memset(b, 0, l.data_off);
	struct heap_hdr *H = seg;
	memcpy(H->magic, HEAP_MAGIC, 8);
	H->version = HEAP_VERSION;
	H->page_shift = HP_SHIFT;
	H->seg_size = size;
	H->npages = l.npages;
	H->nslots = NSLOTS;
	H->nclass = NCLASS;
	H->data_page = l.data_page;
	H->slots_off = l.slots_off;
	H->pmap_off = l.pmap_off;
	H->pbits_off = l.pbits_off;
	H->data_off = l.data_off;
	H->high_water = hw;
	H->free_hint = l.data_page;
	struct tslot *slots = (struct tslot *)(b + l.slots_off);
	atomic_store_explicit(&slots[0].state, 1, RELAXED);
	uint32_t *pmap = (uint32_t *)(b + l.pmap_off);
	for (uint32_t i = 0; i < l.data_page; i++)
		pmap[i] = PM(PM_META, 0);
	bits_set((uint64_t *)(b + l.pbits_off), 0, l.data_page, 1);
	return 0;
}

static int hdr_check(const uint8_t *b, size_t len, struct heap_hdr *H, struct layout *l,
		int need_hw);

/* rebuild -- after attach: reset every slot, abandon every slab, recount (single-threaded) */
static void
rebuild(struct heap *h)
{
	struct heap_hdr *H = h->hdr;
	for (uint32_t i = 0; i < NSLOTS; i++) {
		memset(&h->slots[i], 0, sizeof(h->slots[i]));
		atomic_store_explicit(&h->slots[i].state, i == 0, RELAXED);
	}
	memset(H->abandoned, 0, sizeof(H->abandoned));
	H->free_hint = h->npages;
	uint32_t p = h->data_page;
	while (p < h->npages) {
		uint32_t e = pm_get(h, p);
		if (!bit_get(h->pbits, p)) {
			if (p < H->free_hint)
				H->free_hint = p;
			p++;
			continue;
		}
		if (PM_KIND(e) == PM_SLAB) {
			struct slab *s = SLAB(h, p);
			uint32_t n = cls_tab[s->cls].pages;
			collect(h, s, p);
			atomic_store_explicit(&s->owner, 0, RELAXED);
			atomic_store_explicit(&s->in_full, 0, RELAXED);
			s->next = s->prev = 0;
			s->list = LIST_NONE;
			if (s->used == 0) {
				slab_free_pages(h, p);
			} else {
				abandoned_push(h, p);
			}
			p += n;
		} else if (PM_KIND(e) == PM_LARGE) {
			p += PM_VAL(e);
		} else {
			p++;
		}
	}
}

struct heap *
heap_attach(void *seg, size_t size, heap_grow_fn grow, void *grow_arg)
{
	cls_init();
	struct heap_hdr H;
	struct layout l;
	if ((uintptr_t)seg & (HP_SIZE - 1)) {
		ckpt_err_set(EINVAL, "heap_attach: segment %p is not aligned to %llu bytes",
				seg, (unsigned long long)HP_SIZE);
		return NULL;
	}
	if (hdr_check(seg, size, &H, &l, 1) < 0) {
		ckpt_err_prefix("heap_attach: ");
		return NULL;
	}
	if (H.seg_size != size) {
		ckpt_err_set(EINVAL, "heap_attach: heap was formatted for %llu bytes, the "
				"segment has %zu", (unsigned long long)H.seg_size, size);
		return NULL;
	}
	if (heap_check(seg, (size_t)H.high_water, NULL) < 0) {
		ckpt_err_prefix("heap_attach: ");
		return NULL;
	}
	struct heap *h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h == MAP_FAILED) {
		ckpt_err_set(ENOMEM, "heap_attach: cannot allocate the heap handle: %s",
				strerror(errno));
		return NULL;
	}
	uint8_t *b = seg;
	h->seg = b;
	h->size = size;
	h->hdr = seg;
	h->slots = (struct tslot *)(b + l.slots_off);
	h->pmap = (uint32_t *)(b + l.pmap_off);
	h->pbits = (uint64_t *)(b + l.pbits_off);
	h->npages = l.npages;
	h->limit = (uint64_t)l.npages << HP_SHIFT;
	h->data_page = l.data_page;
	h->grow = grow;
	h->grow_arg = grow_arg;
	h->hid = atomic_fetch_add(&heap_ids, 1) + 1;
	h->fence = membarrier_ok() < 0;
	atomic_store(&h->gate, (uint32_t)h->fence << 1);
	locks_init(h);
	for (uint32_t i = 0; i < NSLOTS; i++) {
		h->recs[i].h = h;
		h->recs[i].slot = i;
	}
	h->key_ok = pthread_key_create(&h->key, tl_destructor) == 0;
	upgrade(h);
	rebuild(h);
	return h;
}

void
heap_detach(struct heap *h)
{
	if (!h)
		return;
	if (h->key_ok)
		pthread_key_delete(h->key);
	if (tl_c.hid == h->hid)
		tl_c.hid = tl_c.fhid = 0;
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->shared_mx);
	pthread_mutex_destroy(&h->wait_mx);
	pthread_cond_destroy(&h->wait_cv);
	munmap(h, sizeof(*h));
}

/* -- reading an untrusted segment ------------------------------------------------------- */

static inline uint32_t
rd32(const uint8_t *b, uint64_t off)
{
	uint32_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

static inline uint64_t
rd64(const uint8_t *b, uint64_t off)
{
	uint64_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

/*
 * hdr_check -- validate the header of an untrusted heap in b[0..len): fields,
 * layout, and (need_hw) that the high-water mark lies within len.
 */
static int
hdr_check(const uint8_t *b, size_t len, struct heap_hdr *H, struct layout *l, int need_hw)
{
	if (len < sizeof(*H))
		return ckpt_err_set(EINVAL, "heap truncated: %zu bytes, the header needs %zu",
				len, sizeof(*H));
	memcpy(H, b, sizeof(*H));
	if (memcmp(H->magic, HEAP_MAGIC, 8) != 0)
		return ckpt_err_set(EINVAL, "not a heap: bad magic at offset 0x0");
	if (H->version < HEAP_VERSION_MIN || H->version > HEAP_VERSION)
		return ckpt_err_set(EINVAL, "heap format version %u not supported (this library "
				"reads %u to %u) at offset 0x8", H->version, HEAP_VERSION_MIN,
				HEAP_VERSION);
	if (H->page_shift != HP_SHIFT || H->nslots != NSLOTS || H->nclass != NCLASS)
		return ckpt_err_set(EINVAL, "heap geometry (page shift %u, %u slots, %u classes) "
				"differs from this library's (%u, %u, %u) at offset 0xc",
				H->page_shift, H->nslots, H->nclass, HP_SHIFT, NSLOTS, NCLASS);
	if (layout_of(H->seg_size, l) < 0)
		return ckpt_err_set(EINVAL, "heap size %llu out of range at offset 0x10",
				(unsigned long long)H->seg_size);
	if (H->npages != l->npages || H->data_page != l->data_page ||
	    H->slots_off != l->slots_off || H->pmap_off != l->pmap_off ||
	    H->pbits_off != l->pbits_off || H->data_off != l->data_off)
		return ckpt_err_set(EINVAL, "heap metadata offsets (offsets 0x18-0x47) do not "
				"match heap size %llu", (unsigned long long)H->seg_size);
	if (H->high_water < l->data_off || H->high_water > H->seg_size)
		return ckpt_err_set(EINVAL, "heap high-water mark %llu out of range [%llu, %llu] "
				"at offset 0x50", (unsigned long long)H->high_water,
				(unsigned long long)l->data_off, (unsigned long long)H->seg_size);
	if (need_hw && H->high_water > len)
		return ckpt_err_set(EINVAL, "heap truncated: high-water mark %llu is past the "
				"%zu bytes available", (unsigned long long)H->high_water, len);
	if (H->root && (H->root < l->data_off || H->root >= H->high_water || (H->root & 15)))
		return ckpt_err_set(EINVAL, "heap root offset 0x%llx is not inside the heap's "
				"blocks at offset 0x48", (unsigned long long)H->root);
	if (H->free_hint < l->data_page || H->free_hint > l->npages)
		return ckpt_err_set(EINVAL, "heap free-page hint %u out of range at offset 0x58",
				H->free_hint);
	return 0;
}

int
heap_peek_high_water(const void *buf, size_t len, uint64_t *hw)
{
	cls_init();
	struct heap_hdr H;
	struct layout l;
	if (hdr_check(buf, len, &H, &l, 1) < 0)
		return -1;
	*hw = H.high_water;
	return 0;
}

/* walker -- state of one heap_walk */
struct walker {
	const uint8_t *b;
	struct heap_hdr H;
	struct layout L;
	uint32_t hwpage;
	heap_walk_fn fn;
	void *arg;
	struct heap_summary S;
	int stop;
	uint64_t nslabs;
};

static inline uint32_t
w_pm(const struct walker *w, uint32_t pg)
{
	return rd32(w->b, w->L.pmap_off + 4ull * pg);
}

static inline int
w_bit(const struct walker *w, uint32_t pg)
{
	return (int)((rd64(w->b, w->L.pbits_off + 8ull * (pg >> 6)) >> (pg & 63)) & 1);
}

/* emit -- account one block and pass it to the callback; 1 if the callback stops the walk */
static int
emit(struct walker *w, uint64_t off, uint64_t size, enum heap_block_state st)
{
	if (st == HEAP_BLOCK_ALLOCATED) {
		w->S.blocks_allocated++;
		w->S.bytes_allocated += size;
	} else {
		w->S.blocks_free++;
		w->S.bytes_free += size;
		if (size > w->S.largest_free)
			w->S.largest_free = size;
	}
	if (w->fn) {
		struct heap_block_info bi;
		memset(&bi, 0, sizeof(bi));      /* padding too: callers may memcmp records */
		bi.offset = off;
		bi.size = size;
		bi.state = st;
		if (w->fn(&bi, w->arg))
			w->stop = 1;
	}
	return w->stop;
}

/* blk_of -- index of block off in a slab at base, or -1 if off is not a block below bump */
static int64_t
blk_of(const struct cls *k, uint64_t base, uint32_t bump, uint64_t off)
{
	uint64_t lo = base + k->dstart;
	if (off < lo || off - lo >= (uint64_t)bump * k->bsize || (off - lo) % k->bsize)
		return -1;
	return (int64_t)((off - lo) / k->bsize);
}

/* walk_list_of -- follow one free list of a slab; checks entries, counts them, no loops */
static int
walk_blocks_list(struct walker *w, const struct cls *k, uint64_t base, const struct slab *sh,
		const uint64_t *ab, const uint64_t *rb, uint64_t head, int remote, uint32_t *count)
{
	uint64_t seen[SLAB_MAX_WORDS] = { 0 };
	const char *name = remote ? "remote-free" : "free";
	uint32_t n = 0;
	uint64_t off = head;
	while (off) {
		if (n >= sh->bump)
			return ckpt_err_set(EINVAL, "damaged heap: %s list of the slab at offset "
					"0x%llx is longer than its blocks (loop?)", name,
					(unsigned long long)base);
		int64_t i = blk_of(k, base, sh->bump, off);
		if (i < 0)
			return ckpt_err_set(EINVAL, "damaged heap: %s list of the slab at offset "
					"0x%llx holds 0x%llx, not one of its blocks", name,
					(unsigned long long)base, (unsigned long long)off);
		uint64_t m = 1ull << (i & 63);
		int a = !!(ab[i >> 6] & m), r = !!(rb[i >> 6] & m);
		if (remote ? !(a && r) : a)
			return ckpt_err_set(EINVAL, "damaged heap: %s list of the slab at offset "
					"0x%llx holds block 0x%llx whose bitmap says %s", name,
					(unsigned long long)base, (unsigned long long)off,
					a ? (r ? "remote-freed" : "allocated") : "free");
		if (seen[i >> 6] & m)
			return ckpt_err_set(EINVAL, "damaged heap: %s list of the slab at offset "
					"0x%llx visits block 0x%llx twice (loop)", name,
					(unsigned long long)base, (unsigned long long)off);
		seen[i >> 6] |= m;
		n++;
		off = rd64(w->b, off);
	}
	*count = n;
	return 0;
}

/* walk_slab -- check the slab at page pg of class c and emit its blocks */
static int
walk_slab(struct walker *w, uint32_t pg, unsigned c)
{
	const struct cls *k = &cls_tab[c];
	uint64_t base = (uint64_t)pg << HP_SHIFT;
	if ((uint64_t)pg + k->pages > w->hwpage)
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx (class %u, %u "
				"pages) extends past the high-water mark", (unsigned long long)base,
				c, k->pages);
	for (uint32_t i = 0; i < k->pages; i++) {
		if (!w_bit(w, pg + i))
			return ckpt_err_set(EINVAL, "damaged heap: page %u (offset 0x%llx) of the "
					"slab at 0x%llx is free in the page bitmap", pg + i,
					(unsigned long long)(pg + i) << HP_SHIFT, (unsigned long long)base);
		if (i && w_pm(w, pg + i) != PM(PM_TAIL, i))
			return ckpt_err_set(EINVAL, "damaged heap: page %u (offset 0x%llx) inside "
					"the slab at 0x%llx has page-map entry 0x%x", pg + i,
					(unsigned long long)(pg + i) << HP_SHIFT, (unsigned long long)base,
					w_pm(w, pg + i));
	}
	struct slab sh;
	memcpy(&sh, w->b + base, sizeof(sh));
	unsigned own = atomic_load_explicit(&sh.owner, RELAXED);
	unsigned inf = atomic_load_explicit(&sh.in_full, RELAXED);
	if (sh.magic != SLAB_MAGIC || sh.cls != c || sh.cap != k->cap || sh.dstart != k->dstart ||
	    sh.bsize != k->bsize || sh.words != k->words)
		return ckpt_err_set(EINVAL, "damaged heap: slab header at offset 0x%llx does not "
				"match its class %u", (unsigned long long)base, c);
	if (sh.bump > sh.cap || sh.used > sh.bump)
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx: counts out of "
				"range (used %u, carved %u, capacity %u)", (unsigned long long)base,
				sh.used, sh.bump, sh.cap);
	if (sh.list < LIST_AVAIL || sh.list > LIST_ABANDONED || own > NSLOTS ||
	    (sh.list == LIST_ABANDONED) != (own == 0) || inf != (sh.list == LIST_FULL))
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx: bad list state "
				"(list %u, owner %u, full flag %u)", (unsigned long long)base,
				sh.list, own, inf);
	uint64_t ab[SLAB_MAX_WORDS], rb[SLAB_MAX_WORDS];
	uint32_t pa = 0, pr = 0;
	for (uint32_t i = 0; i < k->words; i++) {
		ab[i] = rd64(w->b, base + SLAB_HDR + 16ull * i);
		rb[i] = rd64(w->b, base + SLAB_HDR + 16ull * i + 8);
		uint64_t lo = 64ull * i, valid;
		valid = sh.bump >= lo + 64 ? ~0ull : sh.bump <= lo ? 0 :
			(1ull << (sh.bump - lo)) - 1;
		if (ab[i] & ~valid)
			return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx: bitmap "
					"marks blocks never handed out as allocated (offset 0x%llx)",
					(unsigned long long)base,
					(unsigned long long)(base + SLAB_HDR + 16ull * i));
		if (rb[i] & ~ab[i])
			return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx: remote-free "
					"bitmap marks unallocated blocks (offset 0x%llx)",
					(unsigned long long)base,
					(unsigned long long)(base + SLAB_HDR + 16ull * i + 8));
		pa += (uint32_t)__builtin_popcountll(ab[i]);
		pr += (uint32_t)__builtin_popcountll(rb[i]);
	}
	if (pa != sh.used)
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx: used count %u, "
				"bitmap has %u", (unsigned long long)base, sh.used, pa);
	uint32_t nf, nr;
	if (walk_blocks_list(w, k, base, &sh, ab, rb, sh.free, 0, &nf) < 0 ||
	    walk_blocks_list(w, k, base, &sh, ab, rb, atomic_load_explicit(&sh.remote, RELAXED),
			    1, &nr) < 0)
		return -1;
	if (nf != sh.bump - pa || nr != pr)
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx: free lists hold "
				"%u + %u blocks, bitmaps say %u + %u", (unsigned long long)base,
				nf, nr, sh.bump - pa, pr);
	for (uint32_t i = 0; i < k->cap; i++) {
		uint64_t m = 1ull << (i & 63);
		int live = i < sh.bump && (ab[i >> 6] & m) && !(rb[i >> 6] & m);
		if (emit(w, base + k->dstart + (uint64_t)i * k->bsize, k->bsize,
				live ? HEAP_BLOCK_ALLOCATED : HEAP_BLOCK_FREE))
			return 1;
	}
	return 0;
}

/* walk_slab_list -- check one list of slabs (slot avail/full or abandoned) */
static int
walk_slab_list(struct walker *w, uint32_t pg, uint32_t list, unsigned owner, unsigned c,
		uint64_t *count)
{
	static const char *names[] = { "", "available", "full", "abandoned" };
	uint32_t prev = 0;
	uint64_t steps = 0;
	while (pg) {
		if (++steps > w->nslabs)
			return ckpt_err_set(EINVAL, "damaged heap: %s-slab list of class %u (slot "
					"%u) is longer than the number of slabs (loop)", names[list],
					c, owner ? owner - 1 : 0);
		if (pg < w->L.data_page || pg >= w->hwpage || w_pm(w, pg) != PM(PM_SLAB, c))
			return ckpt_err_set(EINVAL, "damaged heap: %s-slab list of class %u holds "
					"page %u, not a slab of that class", names[list], c, pg);
		struct slab sh;
		memcpy(&sh, w->b + ((uint64_t)pg << HP_SHIFT), sizeof(sh));
		unsigned own = atomic_load_explicit(&sh.owner, RELAXED);
		if (sh.list != list || own != owner || sh.prev != prev)
			return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx is on the "
					"%s list of class %u but says list %u, owner %u, previous page %u",
					(unsigned long long)pg << HP_SHIFT, names[list], c, sh.list,
					own, sh.prev);
		prev = pg;
		pg = sh.next;
	}
	*count += steps;
	return 0;
}

int
heap_walk(const void *buf, size_t len, heap_walk_fn fn, void *arg, struct heap_summary *sum)
{
	cls_init();
	struct walker w = { .b = buf, .fn = fn, .arg = arg };
	if (hdr_check(buf, len, &w.H, &w.L, 1) < 0)
		return -1;
	w.hwpage = (uint32_t)(w.H.high_water >> HP_SHIFT);
	if (w.hwpage > w.L.npages)
		w.hwpage = w.L.npages;
	w.S.root_offset = w.H.root;
	w.S.high_water = w.H.high_water;
	for (uint32_t p = 0; p < w.L.data_page; p++)
		if (w_pm(&w, p) != PM(PM_META, 0) || !w_bit(&w, p))
			return ckpt_err_set(EINVAL, "damaged heap: metadata page %u is not marked "
					"as such in the page map (offset 0x%llx) or bitmap", p,
					(unsigned long long)(w.L.pmap_off + 4ull * p));
	uint32_t p = w.L.data_page, run = 0, first_free = w.L.npages;
	int in_run = 0, r;
	while (p < w.L.npages) {
		uint32_t e = w_pm(&w, p);
		int bit = w_bit(&w, p);
		if (e == 0 && !bit) {
			if (!in_run) {
				in_run = 1;
				run = p;
				if (p < first_free)
					first_free = p;
			}
			p++;
			continue;
		}
		if (in_run) {
			in_run = 0;
			if (emit(&w, (uint64_t)run << HP_SHIFT, (uint64_t)(p - run) << HP_SHIFT,
					HEAP_BLOCK_FREE))
				goto stopped;
		}
		if (p >= w.hwpage)
			return ckpt_err_set(EINVAL, "damaged heap: page %u (offset 0x%llx) past the "
					"high-water mark is in use", p, (unsigned long long)p << HP_SHIFT);
		if (!bit)
			return ckpt_err_set(EINVAL, "damaged heap: page %u (offset 0x%llx) has "
					"page-map entry 0x%x but is free in the bitmap", p,
					(unsigned long long)p << HP_SHIFT, e);
		switch (PM_KIND(e)) {
		case PM_SLAB:
			if (PM_VAL(e) >= NCLASS)
				return ckpt_err_set(EINVAL, "damaged heap: page %u (offset 0x%llx): "
						"slab of unknown class %u", p,
						(unsigned long long)p << HP_SHIFT, PM_VAL(e));
			r = walk_slab(&w, p, PM_VAL(e));
			if (r < 0)
				return -1;
			if (r > 0)
				goto stopped;
			w.nslabs++;
			p += cls_tab[PM_VAL(e)].pages;
			break;
		case PM_LARGE: {
			uint32_t np = PM_VAL(e);
			if (np == 0 || (uint64_t)p + np > w.hwpage)
				return ckpt_err_set(EINVAL, "damaged heap: large block at offset 0x%llx: "
						"%u pages run past the high-water mark",
						(unsigned long long)p << HP_SHIFT, np);
			for (uint32_t i = 1; i < np; i++)
				if (w_pm(&w, p + i) != 0 || !w_bit(&w, p + i))
					return ckpt_err_set(EINVAL, "damaged heap: page %u inside the "
							"large block at offset 0x%llx is marked %s", p + i,
							(unsigned long long)p << HP_SHIFT,
							w_bit(&w, p + i) ? "as another block" : "free");
			if (emit(&w, (uint64_t)p << HP_SHIFT, (uint64_t)np << HP_SHIFT,
					HEAP_BLOCK_ALLOCATED))
				goto stopped;
			p += np;
			break;
		}
		default:
			return ckpt_err_set(EINVAL, "damaged heap: page %u (offset 0x%llx) is in use "
					"but is not the start of a slab or block (page-map entry 0x%x at "
					"offset 0x%llx)", p, (unsigned long long)p << HP_SHIFT, e,
					(unsigned long long)(w.L.pmap_off + 4ull * p));
		}
	}
	if (in_run && emit(&w, (uint64_t)run << HP_SHIFT,
			((uint64_t)w.L.npages - run) << HP_SHIFT, HEAP_BLOCK_FREE))
		goto stopped;
	if (w.H.free_hint > first_free)
		return ckpt_err_set(EINVAL, "damaged heap: free-page hint %u (offset 0x58) is past "
				"the free page %u", w.H.free_hint, first_free);

	/* every slab is on exactly one list; slots are idle; counters add up */
	uint64_t listed = 0;
	for (uint32_t i = 0; i < NSLOTS; i++) {
		uint64_t so = w.L.slots_off + (uint64_t)i * SLOT_SIZE;
		struct tslot ts;
		memcpy(&ts, w.b + so, sizeof(ts));
		uint32_t st = atomic_load_explicit(&ts.state, RELAXED);
		if (st > 1 || (i == 0 && st != 1))
			return ckpt_err_set(EINVAL, "damaged heap: thread slot %u has state %u "
					"(offset 0x%llx)", i, st, (unsigned long long)so);
		for (unsigned c = 0; c < NCLASS; c++) {
			if (!st && (ts.avail[c] || ts.full[c]))
				return ckpt_err_set(EINVAL, "damaged heap: free thread slot %u owns slabs "
						"(offset 0x%llx)", i, (unsigned long long)so);
			if (walk_slab_list(&w, ts.avail[c], LIST_AVAIL, i + 1, c, &listed) < 0 ||
			    walk_slab_list(&w, ts.full[c], LIST_FULL, i + 1, c, &listed) < 0)
				return -1;
		}
	}
	for (unsigned c = 0; c < NCLASS; c++)
		if (walk_slab_list(&w, w.H.abandoned[c], LIST_ABANDONED, 0, c, &listed) < 0)
			return -1;
	if (listed != w.nslabs)
		return ckpt_err_set(EINVAL, "damaged heap: %llu slabs but %llu on the allocator's "
				"lists", (unsigned long long)w.nslabs, (unsigned long long)listed);
stopped:
	if (sum)
		*sum = w.S;
	return 0;
}

int
heap_check(const void *buf, size_t len, struct heap_summary *sum)
{
	return heap_walk(buf, len, NULL, NULL, sum);
}
