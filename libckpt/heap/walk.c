/*
 * heap/walk.c -- reading an untrusted segment: heap_walk checks every
 * invariant of types.h on a copy of a segment (mapped read-only anywhere,
 * or read into a buffer) and lists its blocks in address order. It is what
 * ckpt-inspect and verify run on damaged files and what heap_attach runs
 * before it trusts a heap. It never trusts a byte: every read is a memcpy
 * from an offset checked against len, every list is bounded by the blocks
 * it could hold, and it stops at the first violation with a message naming
 * it and its offset. It uses only the geometry and the class table, none of
 * the allocator's code, so a bug in the allocator cannot hide from it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heap/private.h"

/* rd32 -- the u32 at b + off, unaligned-safe */
static inline uint32_t
rd32(const uint8_t *b, uint64_t off)
{
	uint32_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

/* rd64 -- the u64 at b + off, unaligned-safe */
static inline uint64_t
rd64(const uint8_t *b, uint64_t off)
{
	uint64_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

/*
 * heap_hdr_check -- validate the header of an untrusted heap in b[0..len): fields,
 * layout, and (need_hw) that the high-water mark lies within len.
 */
int
heap_hdr_check(const uint8_t *b, size_t len, struct heap_hdr *H, struct layout *l, int need_hw)
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
	if (heap_layout_of(H->seg_size, l) < 0)
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

/* heap_peek_high_water -- the checked high-water mark of an untrusted header (heap.h) */
int
heap_peek_high_water(const void *buf, size_t len, uint64_t *hw)
{
	heap_cls_init();
	struct heap_hdr H;
	struct layout l;
	if (heap_hdr_check(buf, len, &H, &l, 1) < 0)
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
	int deep;               /* 0: the metadata pass of heap_attach (no slab headers) */
	uint32_t *heads, nheads; /* metadata pass: the lists' first pages */
	uint64_t nslabs;
};

/* w_pm -- page map entry of page pg of the walked copy */
static inline uint32_t
w_pm(const struct walker *w, uint32_t pg)
{
	return rd32(w->b, w->L.pmap_off + 4ull * pg);
}

/* w_bit -- page bitmap bit of page pg of the walked copy */
static inline int
w_bit(const struct walker *w, uint32_t pg)
{
	return (int)((rd64(w->b, w->L.pbits_off + 8ull * (pg >> 6)) >> (pg & 63)) & 1);
}

/*
 * w_free_to -- the first page at or after p that is not free (page-map
 * entry 0 and bitmap bit clear), or npages. Where a bitmap word and its 64
 * page-map entries are all zero (most of a heap past its high-water mark:
 * every attach walks the whole map) it steps 64 pages at once; one page at
 * a time elsewhere
 */
static uint32_t
w_free_to(const struct walker *w, uint32_t p)
{
	while (p < w->L.npages) {
		if ((p & 63) == 0 && p + 64 <= w->L.npages &&
		    rd64(w->b, w->L.pbits_off + 8ull * (p >> 6)) == 0) {
			uint64_t any = 0;
			for (unsigned i = 0; i < 64; i += 2)
				any |= rd64(w->b, w->L.pmap_off + 4ull * (p + i));
			if (!any) {
				p += 64;
				continue;
			}
		}
		if (w_pm(w, p) != 0 || w_bit(w, p))
			return p;
		p++;
	}
	return p;
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

/* walk_blocks_list -- follow one free list of a slab; checks entries, counts them, no loops */
static int
walk_blocks_list(const uint8_t *b, const struct cls *k, uint64_t base, const struct slab *sh,
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
		off = rd64(b, off);
	}
	*count = n;
	return 0;
}

/*
 * heap_slab_check -- check the header, bitmaps and free list of the slab
 * of class c at page pg of the heap b (format version ver), whose pages
 * were checked to lie below its high-water mark; copies the header to *sh
 * and the bitmaps to ab, rb (SLAB_MAX_WORDS each). Format 4: rhint (at 40)
 * is 0 or 1, and any rbits subset of abits is valid (the hint may be 0
 * with bits set: a free whose process died before its hint store).
 * Versions 1 to 3: the word at 40 heads the remote-free list, which holds
 * exactly the blocks with rbit 1.
 */
int
heap_slab_check(const uint8_t *b, uint32_t ver, uint32_t pg, unsigned c, struct slab *sh,
		uint64_t *ab, uint64_t *rb)
{
	const struct cls *k = &heap_cls_tab[c];
	uint64_t base = (uint64_t)pg << HP_SHIFT;
	memcpy(sh, b + base, sizeof(*sh));
	unsigned own = atomic_load_explicit(&sh->owner, RELAXED);
	unsigned inf = atomic_load_explicit(&sh->in_full, RELAXED);
	/* versions 1 and 2 repeated the class geometry at 52, 56, 60 */
	int geo_ok = ver >= 3 || (rd32(b, base + 52) == k->dstart &&
			rd32(b, base + 56) == k->bsize && rd32(b, base + 60) == k->words);
	if (sh->magic != SLAB_MAGIC || sh->cls != c || sh->cap != k->cap || !geo_ok)
		return ckpt_err_set(EINVAL, "damaged heap: slab header at offset 0x%llx does not "
				"match its class %u", (unsigned long long)base, c);
	if (sh->bump > sh->cap || sh->used > sh->bump)
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx: counts out of "
				"range (used %u, carved %u, capacity %u)", (unsigned long long)base,
				sh->used, sh->bump, sh->cap);
	if (sh->list < LIST_AVAIL || sh->list > LIST_ABANDONED || own > NSLOTS ||
	    (sh->list == LIST_ABANDONED) != (own == 0) || inf != (sh->list == LIST_FULL))
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx: bad list state "
				"(list %u, owner %u, full flag %u)", (unsigned long long)base,
				sh->list, own, inf);
	uint32_t pa = 0, pr = 0;
	for (uint32_t i = 0; i < k->words; i++) {
		ab[i] = rd64(b, base + SLAB_HDR + 16ull * i);
		rb[i] = rd64(b, base + SLAB_HDR + 16ull * i + 8);
		uint64_t lo = 64ull * i, valid;
		valid = sh->bump >= lo + 64 ? ~0ull : sh->bump <= lo ? 0 :
			(1ull << (sh->bump - lo)) - 1;
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
	if (pa != sh->used)
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx: used count %u, "
				"bitmap has %u", (unsigned long long)base, sh->used, pa);
	uint64_t w40 = atomic_load_explicit(&sh->rhint, RELAXED);
	if (ver >= 4 && w40 > 1)
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx: remote-free "
				"hint %llu at offset 0x%llx is neither 0 nor 1", (unsigned long long)base,
				(unsigned long long)w40, (unsigned long long)(base + 40));
	uint32_t nf, nr = pr;
	if (walk_blocks_list(b, k, base, sh, ab, rb, sh->free, 0, &nf) < 0 ||
	    (ver < 4 && walk_blocks_list(b, k, base, sh, ab, rb, w40, 1, &nr) < 0))
		return -1;
	if (nf != sh->bump - pa || nr != pr)
		return ckpt_err_set(EINVAL, "damaged heap: slab at offset 0x%llx: free lists hold "
				"%u + %u blocks, bitmaps say %u + %u", (unsigned long long)base,
				nf, nr, sh->bump - pa, pr);
	return 0;
}

/* slab_pages_check -- the pages of the slab at page pg of class c: below the
 * high-water mark, in use, and TAIL entries after the first */
static int
slab_pages_check(const struct walker *w, uint32_t pg, unsigned c)
{
	const struct cls *k = &heap_cls_tab[c];
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
	return 0;
}

/* walk_slab -- check the slab at page pg of class c and emit its blocks */
static int
walk_slab(struct walker *w, uint32_t pg, unsigned c)
{
	const struct cls *k = &heap_cls_tab[c];
	uint64_t base = (uint64_t)pg << HP_SHIFT;
	struct slab sh;
	uint64_t ab[SLAB_MAX_WORDS], rb[SLAB_MAX_WORDS];
	if (slab_pages_check(w, pg, c) < 0)
		return -1;
	if (!w->deep)
		return 0;
	if (heap_slab_check(w->b, w->H.version, pg, c, &sh, ab, rb) < 0)
		return -1;
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
		if (!w->deep) {
			w->heads[w->nheads++] = pg;
			return 0;
		}
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

/* cmp_u32 -- qsort order of page indexes */
static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* heads_distinct -- no two lists (metadata pass) start at the same slab */
static int
heads_distinct(struct walker *w)
{
	qsort(w->heads, w->nheads, sizeof(w->heads[0]), cmp_u32);
	for (uint32_t i = 1; i < w->nheads; i++)
		if (w->heads[i] == w->heads[i - 1])
			return ckpt_err_set(EINVAL, "damaged heap: two slab lists start at page %u "
					"(offset 0x%llx)", w->heads[i],
					(unsigned long long)w->heads[i] << HP_SHIFT);
	return 0;
}

/*
 * walk_run -- the walk of w->b (header already checked): page map and
 * bitmap, slabs (deep: their headers, bitmaps and free lists too), the free
 * hint, the slots and the lists of slabs (deep: followed to their ends and
 * counted; else only their heads, which must be distinct)
 */
static int
walk_run(struct walker *w0)
{
	struct walker w = *w0;
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
			p = w_free_to(&w, p + 1);
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
			p += heap_cls_tab[PM_VAL(e)].pages;
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
	if (w.deep && listed != w.nslabs)
		return ckpt_err_set(EINVAL, "damaged heap: %llu slabs but %llu on the allocator's "
				"lists", (unsigned long long)w.nslabs, (unsigned long long)listed);
	if (!w.deep && heads_distinct(&w) < 0)
		return -1;
stopped:
	*w0 = w;
	return 0;
}

/* heap_walk -- check every invariant of the copy in buf[0..len) and list its blocks (heap.h) */
int
heap_walk(const void *buf, size_t len, heap_walk_fn fn, void *arg, struct heap_summary *sum)
{
	heap_cls_init();
	struct walker w = { .b = buf, .fn = fn, .arg = arg, .deep = 1 };
	if (heap_hdr_check(buf, len, &w.H, &w.L, 1) < 0 || walk_run(&w) < 0)
		return -1;
	if (sum)
		*sum = w.S;
	return 0;
}

/* heap_meta_check -- the metadata pass of the walk over a heap whose header checked */
int
heap_meta_check(const void *buf, size_t len)
{
	struct walker w = { .b = buf, .deep = 0 };
	if (heap_hdr_check(buf, len, &w.H, &w.L, 1) < 0)
		return -1;
	w.heads = malloc(sizeof(w.heads[0]) * (NSLOTS * 2 + 1) * NCLASS);
	if (!w.heads)
		return ckpt_err_set(ENOMEM, "cannot allocate the heap check's list heads");
	int r = walk_run(&w);
	free(w.heads);
	return r;
}

/* heap_check -- heap_walk without a callback */
int
heap_check(const void *buf, size_t len, struct heap_summary *sum)
{
	return heap_walk(buf, len, NULL, NULL, sum);
}
