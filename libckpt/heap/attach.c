/*
 * heap/attach.c -- a heap's life cycle in a segment: heap_format writes an
 * empty one; heap_attach checks the metadata of the heap a segment holds
 * (header, slots, page map and bitmap: heap_meta_check; a damaged one is
 * refused, never run on) and leaves the slabs to be checked on first use
 * (heap/validate.c), so that attaching a lazily restarted heap touches a
 * few pages. The slots claimed in the segment become orphans, taken over
 * with their lists by the threads of this life (heap/thread.c). A heap of
 * an older format version is checked whole, upgraded in place and rebuilt
 * (every slot reset, every slab abandoned or freed, the free-page hint
 * recomputed); heap_detach frees the DRAM handle.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/private.h"

/*
 * upgrade -- bring an attached heap of an older version to HEAP_VERSION
 * (heap_check passed on it); rebuild() follows. Version 1 differs from 2
 * only in what it allowed less of (its full slabs never held local free
 * blocks). Version 2 differs from 3 in the last three words of each slab
 * header (the class geometry, which version 3 ignores) and in that its
 * attach rebuilt the per-thread state. Versions 1 to 3 differ from 4 in the
 * word at 40 of a slab header: the head of a list of the blocks with rbit
 * 1, where version 4 has the remote-free hint (0 or 1) and rbits alone.
 * So first every slab's remote frees are collected (heap_collect: the hint
 * written 0, the blocks with rbit 1 freed locally), which leaves a valid
 * heap of the old version with no remote list; then the version is raised,
 * and rebuild() resets every slot and slab header (epoch over the version
 * 2 geometry): a crash in between leaves a valid version 4 heap, and an
 * older library refuses the heap from then on.
 */
static void
upgrade(struct heap *h)
{
	if (h->hdr->version == HEAP_VERSION)
		return;
	for (uint32_t p = h->data_page; p < h->npages; p++) {
		uint32_t e = pm_get(h, p);
		if (bit_get(h->pbits, p) && PM_KIND(e) == PM_SLAB)
			heap_collect(h, SLAB(h, p), p);
	}
	h->hdr->version = HEAP_VERSION;
}

/*
 * format -- write an empty heap into [seg, seg+size); zeroed: the segment
 * already reads as zeroes, so only the bytes that are not zero are stored
 * (a few pages instead of every page of the metadata)
 */
static int
format(void *seg, size_t size, heap_grow_fn grow, void *grow_arg, int zeroed)
{
	heap_cls_init();
	struct layout l;
	if ((uintptr_t)seg & (HP_SIZE - 1))
		return ckpt_err_set(EINVAL, "heap_format: segment %p is not aligned to %llu bytes",
				seg, (unsigned long long)HP_SIZE);
	if (heap_layout_of(size, &l) < 0)
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
	if (!zeroed)
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
	heap_bits_set((uint64_t *)(b + l.pbits_off), 0, l.data_page, 1);
	return 0;
}

/* heap_format -- write an empty heap into [seg, seg+size) (heap.h) */
int
heap_format(void *seg, size_t size, heap_grow_fn grow, void *grow_arg)
{
	return format(seg, size, grow, grow_arg, 0);
}

/* heap_format_zeroed -- heap_format for a segment that reads as zeroes (heap.h) */
int
heap_format_zeroed(void *seg, size_t size, heap_grow_fn grow, void *grow_arg)
{
	return format(seg, size, grow, grow_arg, 1);
}

/* rebuild -- after the upgrade of an older heap: reset every slot, abandon
 * every slab (each checked: epoch vfull), recount (single-threaded) */
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
			uint32_t n = heap_cls_tab[s->cls].pages;
			s->reserved = 0;
			atomic_store_explicit(&s->epoch, h->vfull, RELAXED);
			heap_collect(h, s, p);
			atomic_store_explicit(&s->owner, 0, RELAXED);
			atomic_store_explicit(&s->in_full, 0, RELAXED);
			s->next = s->prev = 0;
			s->list = LIST_NONE;
			if (s->used == 0) {
				heap_slab_free_pages(h, p);
			} else {
				heap_abandoned_push(h, p);
			}
			p += n;
		} else if (PM_KIND(e) == PM_LARGE) {
			p += PM_VAL(e);
		} else {
			p++;
		}
	}
}

/* heap_meta_len -- bytes at a segment's start heap_attach reads (heap.h) */
uint64_t
heap_meta_len(uint64_t seg_size)
{
	struct layout l;
	return heap_layout_of(seg_size, &l) < 0 ? 0 : l.data_off;
}

/*
 * attach -- heap_attach, or (fresh) heap_attach_formatted: the header
 * checked, nothing else read (no slot but 0 claimed, no slab)
 */
static struct heap *
attach(void *seg, size_t size, heap_grow_fn grow, void *grow_arg, int fresh)
{
	heap_cls_init();
	struct heap_hdr H;
	struct layout l;
	if ((uintptr_t)seg & (HP_SIZE - 1)) {
		ckpt_err_set(EINVAL, "heap_attach: segment %p is not aligned to %llu bytes",
				seg, (unsigned long long)HP_SIZE);
		return NULL;
	}
	if (heap_hdr_check(seg, size, &H, &l, 1) < 0) {
		ckpt_err_prefix("heap_attach: ");
		return NULL;
	}
	if (H.seg_size != size) {
		ckpt_err_set(EINVAL, "heap_attach: heap was formatted for %llu bytes, the "
				"segment has %zu", (unsigned long long)H.seg_size, size);
		return NULL;
	}
	/* an older version is checked whole and rebuilt; version 4 only in its metadata */
	int old = H.version < HEAP_VERSION;
	if (fresh && old) {
		ckpt_err_set(EINVAL, "heap_attach: a heap just formatted has version %u",
				H.version);
		return NULL;
	}
	if (!fresh && (old ? heap_check(seg, (size_t)H.high_water, NULL) :
			heap_meta_check(seg, (size_t)H.high_water)) < 0) {
		ckpt_err_prefix("heap_attach: ");
		return NULL;
	}
	struct heap *h = mmap(NULL, sizeof(*h) + l.npages, PROT_READ | PROT_WRITE,
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
	heap_threads_init(h);
	heap_epoch_new(h);
	if (old) {
		upgrade(h);
		rebuild(h);
		return h;
	}
	/* the shared slot 0 goes on as it is; the other claimed slots are orphans */
	if (heap_heads_check(h, 0) < 0) {
		ckpt_err_prefix("heap_attach: ");
		heap_detach(h);
		return NULL;
	}
	for (uint32_t i = 1; i < NSLOTS && !fresh; i++) {
		if (atomic_load_explicit(&h->slots[i].state, RELAXED)) {
			atomic_store_explicit(&h->orphan[i], 1, RELAXED);
			h->norphans++;
		}
	}
	return h;
}

/* heap_attach -- validate, upgrade and adopt the heap in [seg, seg+size) (heap.h) */
struct heap *
heap_attach(void *seg, size_t size, heap_grow_fn grow, void *grow_arg)
{
	return attach(seg, size, grow, grow_arg, 0);
}

/* heap_attach_formatted -- heap_attach of a heap just formatted here (heap.h) */
struct heap *
heap_attach_formatted(void *seg, size_t size, heap_grow_fn grow, void *grow_arg)
{
	return attach(seg, size, grow, grow_arg, 1);
}

/* heap_detach -- free the DRAM handle (heap.h) */
void
heap_detach(struct heap *h)
{
	if (!h)
		return;
	heap_purge_fini(h);         /* first: the pool's mapping is going away */
	heap_tc_drain_all(h);       /* the live segment may be the durable heap */
	heap_threads_fini(h);
	munmap(h, sizeof(*h) + h->npages);
}


/* heap_downgrade -- rewrite a quiescent version 4 heap as version ver (1..3) wrote it (heap.h) */
void
heap_downgrade(void *seg, uint32_t ver)
{
	heap_cls_init();
	struct heap_hdr *H = seg;
	uint8_t *b = seg;
	uint32_t *pmap = (uint32_t *)(b + H->pmap_off);
	uint32_t hwp = (uint32_t)(H->high_water >> HP_SHIFT);
	for (uint32_t p = H->data_page; p < hwp; p++) {
		if (PM_KIND(pmap[p]) != PM_SLAB)
			continue;
		const struct cls *k = &heap_cls_tab[PM_VAL(pmap[p])];
		uint64_t base = (uint64_t)p << HP_SHIFT;
		struct slab *s = (struct slab *)(b + base);
		/* the remote list: the blocks with rbit 1, linked as version 3's
		 * CAS pushes linked them (the last pushed first) */
		uint64_t head = 0;
		for (uint32_t i = 0; i < s->bump; i++) {
			if (!((RBW(s, i) >> (i & 63)) & 1))
				continue;
			uint64_t off = base + k->dstart + (uint64_t)i * k->bsize;
			memcpy(b + off, &head, sizeof(head));
			head = off;
		}
		atomic_store_explicit(&s->rhint, head, RELAXED);
		if (ver <= 2) {
			uint32_t geo[3] = { k->dstart, k->bsize, k->words };
			memcpy(b + base + 52, geo, sizeof(geo));
		}
	}
	H->version = ver;
}
