/*
 * test_heap_common.h -- helpers shared by the heap tests: a file-backed
 * segment mapped at an allocator-aligned address, a walk recorder, and a
 * small deterministic random generator.
 */
#ifndef TEST_HEAP_COMMON_H
#define TEST_HEAP_COMMON_H 1

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"
#include "libckpt.h"
#include "heap.h"

/* th_seg -- one mapped segment */
struct th_seg {
	int fd;
	uint8_t *addr;
	size_t size;
};

/* th_map -- create path (size bytes, sparse) and map it MAP_SHARED (or private) at a HEAP_SEG_ALIGN address */
static inline void
th_map(struct th_seg *s, const char *path, size_t size, int priv)
{
	s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(s->fd >= 0);
	assert_int_equal(ftruncate(s->fd, (off_t)size), 0);
	uint8_t *r = mmap(NULL, size + HEAP_SEG_ALIGN, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(r != MAP_FAILED);
	uint8_t *a = (uint8_t *)(((uintptr_t)r + HEAP_SEG_ALIGN - 1) & ~(uintptr_t)(HEAP_SEG_ALIGN - 1));
	void *m = mmap(a, size, PROT_READ | PROT_WRITE,
			(priv ? MAP_PRIVATE : MAP_SHARED) | MAP_FIXED, s->fd, 0);
	assert_true(m == a);
	if (a > r)
		munmap(r, (size_t)(a - r));
	munmap(a + size, (size_t)(r + size + HEAP_SEG_ALIGN - (a + size)));
	s->addr = a;
	s->size = size;
}

static inline void
th_unmap(struct th_seg *s)
{
	munmap(s->addr, s->size);
	close(s->fd);
}

/*
 * th_fixture -- a segment of size bytes (HEAP_SEG_ALIGN-aligned, malloc'd:
 * free it) rebuilt from a fixture's words, {offset, value} pairs, zero
 * elsewhere (tests/fixtures: heaps an older library made)
 */
static inline uint8_t *
th_fixture(size_t size, const uint64_t (*words)[2], size_t n)
{
	uint8_t *b = aligned_alloc(HEAP_SEG_ALIGN, size);
	assert_non_null(b);
	memset(b, 0, size);
	for (size_t i = 0; i < n; i++)
		memcpy(b + words[i][0], &words[i][1], 8);
	return b;
}

/* th_new_heap -- map file `name` (size bytes, private or shared) at s, format a heap
 * there, attach it */
static inline struct heap *
th_new_heap(struct th_seg *s, const char *name, size_t size, int priv)
{
	th_map(s, tu_path(name), size, priv);
	assert_int_equal(heap_format(s->addr, size, NULL, NULL), 0);
	struct heap *h = heap_attach(s->addr, size, NULL, NULL);
	assert_non_null(h);
	return h;
}

/* th_rec -- every block a walk reported */
struct th_rec {
	struct heap_block_info *b;
	size_t n, cap;
};

static inline int
th_rec_cb(const struct heap_block_info *b, void *arg)
{
	struct th_rec *r = arg;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 1024;
		r->b = realloc(r->b, r->cap * sizeof(*r->b));
	}
	r->b[r->n++] = *b;
	return 0;
}

/* th_quiesce -- make the live heap h exact as a checkpoint would (heap_lock_all
 * drains the threads' front caches into their slabs) before it is walked */
static inline void
th_quiesce(struct heap *h)
{
	heap_lock_all(h);
	heap_unlock_all(h);
}

/* th_walk_ok -- walk buf, assert success, address order and no overlap; fills rec (may be NULL) */
static inline void
th_walk_ok(const void *buf, size_t len, struct th_rec *rec, struct heap_summary *sum)
{
	struct th_rec tmp = { 0 };
	struct th_rec *r = rec ? rec : &tmp;
	r->n = 0;
	int rc = heap_walk(buf, len, th_rec_cb, r, sum);
	if (rc != 0)
		fail_msg("heap_walk: %s", ckpt_errormsg());
	for (size_t i = 1; i < r->n; i++)
		assert_true(r->b[i - 1].offset + r->b[i - 1].size <= r->b[i].offset);
	free(tmp.b);
}

/* th_check_exact -- quiesce h (its segment at base), walk it: it checks and holds
 * exactly `bytes` in live blocks, by the walk and by heap_bytes_in_use */
static inline void
th_check_exact(struct heap *h, const void *base, uint64_t bytes)
{
	struct heap_summary s;
	th_quiesce(h);
	th_walk_ok(base, heap_high_water(h), NULL, &s);
	assert_int_equal(s.bytes_allocated, bytes);
	assert_int_equal(heap_bytes_in_use(h), bytes);
}

/* th_rand -- xorshift64* */
static inline uint64_t
th_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 2685821657736338717ull;
}

/* th_errmsg_has -- the thread's error message mentions word */
static inline int
th_errmsg_has(const char *word)
{
	const char *m = ckpt_errormsg();
	return m && *m && strstr(m, word) != NULL;
}

#endif
