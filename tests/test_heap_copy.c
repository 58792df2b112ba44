/*
 * test_heap_copy.c -- copying a segment's bytes copies the heap. A heap in a
 * file-backed MAP_SHARED segment at a fixed address is filled, walked and
 * copied (its high-water prefix) to another offset of the file. A forked
 * child unmaps the original, maps the copy at the same address, checks the
 * walk is identical, attaches, and goes on allocating and freeing against a
 * shadow model: no block handed out twice (no overlap with a live block),
 * contents intact, and after freeing everything nothing is leaked (0 bytes
 * allocated, and as much room for large blocks as a fresh heap).
 */
#include <sys/wait.h>

#include "test_heap_common.h"

#define SEG_SIZE ((size_t)32 << 20)
#define COPY_OFF ((off_t)64 << 20)
#define BASE ((void *)0x6f0000000000ull)
#define NB 6000

struct sblk {
	uint8_t *p;
	size_t size;
	uint64_t id;
};

static struct sblk blks[NB];
static size_t nblk;

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "child: %s:%d: %s (%s)\n", \
	__FILE__, __LINE__, #c, ckpt_errormsg()); _exit(1); } } while (0)

static void
fill(uint8_t *p, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(id * 131 + i);
}

static int
intact(const uint8_t *p, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)(id * 131 + i))
			return 0;
	return 1;
}

/* count_mib -- how many 1 MiB blocks the heap can still give (then frees them) */
static size_t
count_mib(struct heap *h)
{
	static void *p[64];
	size_t n = 0;
	while (n < 64 && (p[n] = heap_alloc(h, (size_t)1 << 20)) != NULL)
		n++;
	for (size_t i = 0; i < n; i++)
		heap_free(h, p[i]);
	return n;
}

static void
child(int fd, struct th_rec *want, uint64_t hw)
{
	CHECK(munmap(BASE, SEG_SIZE) == 0);
	uint8_t *a = mmap(BASE, SEG_SIZE, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_FIXED_NOREPLACE, fd, COPY_OFF);
	CHECK(a == BASE);
	/* the copy's walk equals the original's */
	struct th_rec got = { 0 };
	CHECK(heap_walk(a, hw, th_rec_cb, &got, NULL) == 0);
	CHECK(got.n == want->n);
	CHECK(memcmp(got.b, want->b, got.n * sizeof(got.b[0])) == 0);
	free(got.b);
	struct heap *h = heap_attach(a, SEG_SIZE, NULL, NULL);
	CHECK(h != NULL);
	for (size_t i = 0; i < nblk; i++) {
		CHECK(intact(blks[i].p, blks[i].size, blks[i].id));
		CHECK(heap_usable_size(h, blks[i].p) >= blks[i].size);
	}
	uint64_t r = 4242, id = 1000000;
	for (int op = 0; op < 200000; op++) {
		size_t k = th_rand(&r) % NB;
		if (k < nblk) {
			struct sblk *b = &blks[k];
			CHECK(intact(b->p, b->size, b->id));
			CHECK(heap_free(h, b->p) == 0);
			*b = blks[--nblk];
			continue;
		}
		size_t sz = th_rand(&r) % 16 ? th_rand(&r) % 2000 : th_rand(&r) % 200000;
		uint8_t *p = heap_alloc(h, sz);
		if (!p)
			continue;
		size_t u = heap_usable_size(h, p);
		for (size_t i = 0; i < nblk; i++)   /* never overlaps a live block */
			CHECK(p + u <= blks[i].p || blks[i].p + heap_usable_size(h, blks[i].p) <= p);
		blks[nblk] = (struct sblk){ p, sz, id++ };
		fill(p, sz, blks[nblk].id);
		nblk++;
	}
	struct heap_summary s;
	CHECK(heap_check(a, heap_high_water(h), &s) == 0);
	for (size_t i = 0; i < nblk; i++) {
		CHECK(intact(blks[i].p, blks[i].size, blks[i].id));
		CHECK(heap_free(h, blks[i].p) == 0);
	}
	th_quiesce(h);
	CHECK(heap_check(a, heap_high_water(h), &s) == 0);
	CHECK(s.bytes_allocated == 0 && s.blocks_allocated == 0);
	CHECK(heap_bytes_in_use(h) == 0);
	size_t room = count_mib(h);
	/* the first count may be cut short by slabs freed only when the heap ran
	 * out (their pages are then scattered); after that the heap is one run */
	room = count_mib(h);
	CHECK(heap_check(a, heap_high_water(h), &s) == 0);
	CHECK(s.blocks_free == 1 && s.largest_free == s.bytes_free);
	/* a fresh heap of the same size in another file: same room */
	heap_detach(h);
	CHECK(munmap(a, SEG_SIZE) == 0);
	uint8_t *f = mmap(BASE, SEG_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(f == BASE);
	CHECK(heap_format(f, SEG_SIZE, NULL, NULL) == 0);
	struct heap *fresh = heap_attach(f, SEG_SIZE, NULL, NULL);
	size_t fresh_room = count_mib(fresh);
	if (room != fresh_room)
		fprintf(stderr, "child: room %zu MiB, fresh heap %zu MiB\n", room, fresh_room);
	CHECK(room == fresh_room);
	_exit(0);
}

static void
test_copy(void **state)
{
	(void)state;
	int fd = open(tu_path("pool"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, COPY_OFF + (off_t)SEG_SIZE), 0);
	uint8_t *a = mmap(BASE, SEG_SIZE, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	if (a == MAP_FAILED)
		skip();
	assert_ptr_equal(a, BASE);
	assert_int_equal(heap_format(a, SEG_SIZE, NULL, NULL), 0);
	struct heap *h = heap_attach(a, SEG_SIZE, NULL, NULL);
	assert_non_null(h);
	uint64_t r = 7;
	for (uint64_t id = 1; nblk < NB / 2; id++) {
		size_t sz = th_rand(&r) % 10 ? th_rand(&r) % 3000 : th_rand(&r) % 100000;
		uint8_t *p = heap_alloc(h, sz);
		assert_non_null(p);
		fill(p, sz, id);
		blks[nblk++] = (struct sblk){ p, sz, id };
		if (th_rand(&r) % 3 == 0) {         /* leave holes */
			size_t k = th_rand(&r) % nblk;
			assert_int_equal(heap_free(h, blks[k].p), 0);
			blks[k] = blks[--nblk];
		}
	}
	assert_int_equal(heap_set_root(h, blks[0].p), 0);
	heap_lock_all(h);
	uint64_t hw = heap_high_water(h);
	struct th_rec want = { 0 };
	th_walk_ok(a, hw, &want, NULL);
	/* copy the used prefix only; the rest of the copy stays a hole */
	loff_t in = 0, out = COPY_OFF;
	size_t left = hw;
	while (left) {
		ssize_t n = copy_file_range(fd, &in, fd, &out, left, 0);
		assert_true(n > 0);
		left -= (size_t)n;
	}
	heap_unlock_all(h);
	pid_t pid = fork();
	if (pid == 0)
		child(fd, &want, hw);
	assert_int_equal(tu_wait_exit(pid), 0);
	/* the parent's heap is untouched by the child */
	th_walk_ok(a, heap_high_water(h), NULL, NULL);
	for (size_t i = 0; i < nblk; i++)
		assert_true(intact(blks[i].p, blks[i].size, blks[i].id));
	free(want.b);
	heap_detach(h);
	munmap(a, SEG_SIZE);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
