/*
 * test_heap_stress.c -- randomized multi-threaded stress of the allocator
 * against a shadow model. Threads share a table of block slots: each
 * operation takes a random slot; a full slot's block is verified (its bytes
 * are a pattern derived from the block's id) and freed, often by a thread
 * other than the one that allocated it; an empty slot gets a new block of a
 * random size (every class, and large blocks). Between phases the threads
 * stop, the heap is walked and checked, and the walk is compared with the
 * shadow: same blocks, same usable sizes, same totals.
 *
 * CKPT_STRESS_SCALE (a float, default 1; 0.1 under sanitizers) scales the
 * operation count.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "test_heap_common.h"

#define SEG_SIZE ((size_t)256 << 20)
#define NTHREADS 4
#define NSLOT 8192
#define PHASES 6

struct blk {
	uint64_t id;
	size_t size;
	void *p;
};

static struct th_seg seg;
static struct heap *H;
static _Atomic(struct blk *) slots[NSLOT];
static _Atomic uint64_t next_id = 1;
static uint64_t ops_per_phase;
static _Atomic int failed;

/* fill -- the pattern of block id over size bytes */
static void
fill(void *p, size_t size, uint64_t id)
{
	uint64_t *w = p;
	size_t n = size / 8;
	for (size_t i = 0; i < n; i++)
		w[i] = id * 0x9e3779b97f4a7c15ull + i;
	for (size_t i = n * 8; i < size; i++)
		((uint8_t *)p)[i] = (uint8_t)(id + i);
}

/* verify -- 1 if the block still holds its pattern */
static int
verify(const void *p, size_t size, uint64_t id)
{
	const uint64_t *w = p;
	size_t n = size / 8;
	for (size_t i = 0; i < n; i++)
		if (w[i] != id * 0x9e3779b97f4a7c15ull + i)
			return 0;
	for (size_t i = n * 8; i < size; i++)
		if (((const uint8_t *)p)[i] != (uint8_t)(id + i))
			return 0;
	return 1;
}

/* pick_size -- mostly small, some medium, a few large */
static size_t
pick_size(uint64_t *r)
{
	uint64_t x = th_rand(r) % 1000;
	if (x < 700)
		return th_rand(r) % 257;
	if (x < 950)
		return th_rand(r) % 8193;
	if (x < 995)
		return th_rand(r) % 65537;
	return 65537 + th_rand(r) % (1 << 20);
}

static void *
worker(void *arg)
{
	uint64_t r = (uintptr_t)arg * 0x12345 + 99;
	for (uint64_t i = 0; i < ops_per_phase && !failed; i++) {
		unsigned k = (unsigned)(th_rand(&r) % NSLOT);
		struct blk *b = atomic_exchange(&slots[k], NULL);
		if (b) {
			if (!verify(b->p, b->size, b->id) ||
			    heap_usable_size(H, b->p) < b->size) {
				fprintf(stderr, "block %llu at %p corrupted\n",
					(unsigned long long)b->id, b->p);
				failed = 1;
			}
			if (heap_free(H, b->p) != 0) {
				fprintf(stderr, "free: %s\n", ckpt_errormsg());
				failed = 1;
			}
			free(b);
			continue;
		}
		if (th_rand(&r) % 16 == 0) {       /* short-lived, same thread */
			size_t sz = pick_size(&r);
			void *p = th_rand(&r) % 2 ? heap_alloc(H, sz) :
				heap_aligned_alloc(H, (size_t)16 << (th_rand(&r) % 9), sz);
			if (p) {
				memset(p, 0x5a, sz);
				if (th_rand(&r) % 4 == 0) {
					void *q = heap_realloc(H, p, pick_size(&r));
					if (q)
						p = q;
				}
				heap_free(H, p);
			}
			continue;
		}
		b = malloc(sizeof(*b));
		b->size = pick_size(&r);
		b->id = atomic_fetch_add(&next_id, 1);
		b->p = heap_alloc(H, b->size);
		if (!b->p) {             /* heap full: acceptable, try later */
			free(b);
			continue;
		}
		fill(b->p, b->size, b->id);
		struct blk *none = NULL;
		if (!atomic_compare_exchange_strong(&slots[k], &none, b)) {
			heap_free(H, b->p);
			free(b);
		}
	}
	return NULL;
}

static int
cmp_blk(const void *a, const void *b)
{
	const struct blk *x = *(struct blk *const *)a, *y = *(struct blk *const *)b;
	return x->p < y->p ? -1 : x->p > y->p;
}

/* check_against_shadow -- walk + check; allocated blocks == the shadow's */
static void
check_against_shadow(void)
{
	static struct blk *live[NSLOT];
	size_t n = 0;
	uint64_t bytes = 0;
	for (unsigned k = 0; k < NSLOT; k++)
		if (slots[k]) {
			live[n++] = slots[k];
			bytes += heap_usable_size(H, slots[k]->p);
		}
	qsort(live, n, sizeof(live[0]), cmp_blk);
	struct th_rec rec = { 0 };
	struct heap_summary s;
	th_walk_ok(seg.addr, heap_high_water(H), &rec, &s);
	size_t j = 0;
	for (size_t i = 0; i < rec.n; i++) {
		if (rec.b[i].state != HEAP_BLOCK_ALLOCATED)
			continue;
		assert_true(j < n);
		assert_int_equal(rec.b[i].offset, (uint64_t)((uint8_t *)live[j]->p - seg.addr));
		assert_int_equal(rec.b[i].size, heap_usable_size(H, live[j]->p));
		assert_true(verify(live[j]->p, live[j]->size, live[j]->id));
		j++;
	}
	assert_int_equal(j, n);
	assert_int_equal(s.blocks_allocated, n);
	assert_int_equal(s.bytes_allocated, bytes);
	assert_int_equal(heap_bytes_in_use(H), bytes);
	free(rec.b);
}

static void
test_stress(void **state)
{
	(void)state;
	double scale = 1.0;
#if defined(__SANITIZE_ADDRESS__)
	scale = 0.1;
#endif
	if (getenv("CKPT_STRESS_SCALE"))
		scale = atof(getenv("CKPT_STRESS_SCALE"));
	ops_per_phase = (uint64_t)(800000 * scale);
	th_map(&seg, tu_path("stress"), SEG_SIZE, 0);
	assert_int_equal(heap_format(seg.addr, SEG_SIZE, NULL, NULL), 0);
	H = heap_attach(seg.addr, SEG_SIZE, NULL, NULL);
	assert_non_null(H);
	for (int phase = 0; phase < PHASES; phase++) {
		pthread_t t[NTHREADS];
		/* fresh threads in odd phases: slots are released and slabs adopted */
		for (uintptr_t i = 0; i < NTHREADS; i++)
			pthread_create(&t[i], NULL, worker, (void *)(i + 1 + (uintptr_t)phase * 100));
		for (int i = 0; i < NTHREADS; i++)
			pthread_join(t[i], NULL);
		assert_false(failed);
		check_against_shadow();
		if (phase == PHASES / 2) {     /* restart: attach again */
			heap_detach(H);
			H = heap_attach(seg.addr, SEG_SIZE, NULL, NULL);
			assert_non_null(H);
			check_against_shadow();
		}
	}
	for (unsigned k = 0; k < NSLOT; k++) {
		struct blk *b = slots[k];
		if (b) {
			assert_true(verify(b->p, b->size, b->id));
			assert_int_equal(heap_free(H, b->p), 0);
			free(b);
			slots[k] = NULL;
		}
	}
	check_against_shadow();
	heap_detach(H);
	th_unmap(&seg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
