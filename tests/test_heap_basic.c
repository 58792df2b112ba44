/*
 * test_heap_basic.c -- every behaviour of the allocator's interface, one at
 * a time: size classes, alignment, realloc in place, calloc, ENOMEM and
 * recovery, usable sizes, every kind of invalid free, the root, the grow
 * callback, threads, quiescing and fork.
 *
 * Over 800 lines: 25 short cases, one per behaviour, sharing one heap
 * fixture; related behaviours stay next to each other.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "test_heap_common.h"
#include "heap/types.h"     /* TC_CAP */

#define SEG_SIZE ((size_t)32 << 20)

static struct th_seg seg;
static struct heap *H;

static int
setup(void **state)
{
	(void)state;
	H = th_new_heap(&seg, "heap", SEG_SIZE, 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	heap_detach(H);
	th_unmap(&seg);
	return 0;
}

/* check_ok -- the heap passes heap_check and holds exactly `bytes` in live blocks */
static void
check_ok(uint64_t bytes)
{
	th_check_exact(H, seg.addr, bytes);
}

static void
test_sizes(void **state)
{
	(void)state;
	static void *p[2000];
	uint64_t total = 0;
	size_t n = 0;
	for (size_t sz = 0; sz <= 70000; sz += sz < 300 ? 1 : sz / 7) {
		void *q = heap_alloc(H, sz);
		assert_non_null(q);
		assert_int_equal((uintptr_t)q % 16, 0);
		size_t u = heap_usable_size(H, q);
		assert_true(u >= sz && u >= 16);
		assert_int_equal(heap_block_size(H, q), u);
		errno = 0;
		assert_int_equal(heap_block_size(H, (char *)q + 8), 0);   /* inside: refused */
		assert_int_equal(errno, EINVAL);
		if (sz > 64)
			assert_true(u - sz <= sz / 4);   /* fragmentation bound */
		else
			assert_true(u - (sz ? sz : 1) < 16);
		memset(q, 0xa5, u);                  /* every usable byte is ours */
		assert_int_equal(heap_is_block(H, q), 1);
		total += u;
		p[n++] = q;
	}
	check_ok(total);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(heap_free(H, p[i]), 0);
	check_ok(0);
}

static void
test_zero_and_null(void **state)
{
	(void)state;
	void *a = heap_alloc(H, 0), *b = heap_alloc(H, 0);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_int_equal(heap_usable_size(H, a), 16);
	assert_int_equal(heap_free(H, NULL), 0);
	heap_free(H, a);
	heap_free(H, b);
	check_ok(0);
}

static void
test_alignment(void **state)
{
	(void)state;
	for (size_t a = 16; a <= ((size_t)1 << 20); a <<= 1) {
		size_t sizes[] = { 1, 16, a / 2 + 1, a, a + 1, 3 * a / 2, 70000 };
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			void *p = heap_aligned_alloc(H, a, sizes[i]);
			assert_non_null(p);
			assert_int_equal((uintptr_t)p % a, 0);
			size_t u = heap_usable_size(H, p);
			assert_true(u >= sizes[i]);
			assert_int_equal(heap_block_size(H, p), u);
			memset(p, 1, u);
			assert_int_equal(heap_free(H, p), 0);
		}
	}
	errno = 0;
	assert_null(heap_aligned_alloc(H, 48, 10));
	assert_int_equal(errno, EINVAL);
	assert_true(th_errmsg_has("power of two"));
	assert_null(heap_aligned_alloc(H, 0, 10));
	assert_int_equal(errno, EINVAL);
	check_ok(0);
}

/*
 * test_block_size_offsets -- heap_block_size at the bytes of runs of
 * blocks of every class up to 1 KiB (one-page slabs up to 512 B, the fast
 * path's; longer slabs above) and a few larger sizes: a block's start
 * gives its usable size, any byte inside it 0 with EINVAL. The fast path
 * checks a start with one multiplication (blk_at_page), so a wrong
 * constant would take an inner byte for a start or a start for an inner
 * byte; every inner byte of the first block of each run is tried.
 */
static void
test_block_size_offsets(void **state)
{
	(void)state;
	static const size_t big[] = { 1500, 3000, 9000, 40000, 100000 };
	enum { NB = sizeof(big) / sizeof(big[0]), RUN = 5 };
	for (size_t i = 0; i < 64 + NB; i++) {
		size_t sz = i < 64 ? 16 * (i + 1) : big[i - 64];
		char *b[RUN];
		for (int k = 0; k < RUN; k++) {
			b[k] = heap_alloc(H, sz);
			assert_non_null(b[k]);
		}
		size_t u = heap_usable_size(H, b[0]);
		assert_true(u >= sz);
		for (int k = 0; k < RUN; k++) {
			assert_int_equal(heap_block_size(H, b[k]), u);
			size_t step = k == 0 && u <= 16384 ? 1 : u / 5 + 1;
			for (size_t o = 1; o < u; o += step) {
				errno = 0;
				assert_int_equal(heap_block_size(H, b[k] + o), 0);
				assert_int_equal(errno, EINVAL);
			}
			errno = 0;
			assert_int_equal(heap_block_size(H, b[k] + u - 1), 0);
			assert_int_equal(errno, EINVAL);
		}
		for (int k = 0; k < RUN; k++)
			assert_int_equal(heap_free(H, b[k]), 0);
	}
	check_ok(0);
}

static void
test_realloc_inplace(void **state)
{
	(void)state;
	char *p = heap_alloc(H, 100);           /* class 112 */
	memset(p, 7, 100);
	assert_ptr_equal(heap_realloc(H, p, 110), p);
	assert_ptr_equal(heap_realloc(H, p, 60), p);
	char *q = heap_realloc(H, p, 1000);
	assert_non_null(q);
	for (int i = 0; i < 60; i++)
		assert_int_equal(q[i], 7);
	/* large: grows into the following free pages, shrinks in place */
	char *l = heap_alloc(H, 100000);
	memset(l, 3, 100000);
	size_t u = heap_usable_size(H, l);
	assert_ptr_equal(heap_realloc(H, l, 300000), l);
	assert_true(heap_usable_size(H, l) >= 300000);
	assert_ptr_equal(heap_realloc(H, l, 200000), l);
	assert_true(heap_usable_size(H, l) >= 200000 && heap_usable_size(H, l) < 300000);
	for (int i = 0; i < 100000; i += 999)
		assert_int_equal(l[i], 3);
	(void)u;
	/* blocked by a neighbour: moves, keeps the contents */
	char *n = heap_alloc(H, 100000);
	char *l2 = heap_realloc(H, l, 1 << 20);
	assert_non_null(l2);
	assert_int_equal(l2[99999], 3);
	/* NULL and invalid */
	char *z = heap_realloc(H, NULL, 50);
	assert_non_null(z);
	assert_null(heap_realloc(H, z + 8, 100));
	assert_int_equal(errno, EINVAL);
	heap_free(H, z);
	heap_free(H, q);
	heap_free(H, n);
	heap_free(H, l2);
	check_ok(0);
}

static void
test_calloc_overflow(void **state)
{
	(void)state;
	errno = 0;
	assert_null(heap_calloc(H, SIZE_MAX / 2, 3));
	assert_int_equal(errno, ENOMEM);
	assert_true(th_errmsg_has("overflow"));
	unsigned char *p = heap_alloc(H, 4000);
	memset(p, 0xff, 4000);
	heap_free(H, p);
	unsigned char *q = heap_calloc(H, 40, 100);
	for (int i = 0; i < 4000; i++)
		assert_int_equal(q[i], 0);
	heap_free(H, q);
	check_ok(0);
}

static void
test_enomem_then_recover(void **state)
{
	(void)state;
	static void *big[64];
	static void *small[200000];
	size_t nb = 0, ns = 0;
	while (nb < 64 && (big[nb] = heap_alloc(H, (size_t)1 << 20)) != NULL)
		nb++;
	assert_true(nb < 64);
	assert_int_equal(errno, ENOMEM);
	assert_true(th_errmsg_has("full"));
	while (ns < 200000 && (small[ns] = heap_alloc(H, 4000)) != NULL)
		ns++;
	assert_true(ns < 200000);
	assert_int_equal(errno, ENOMEM);
	assert_null(heap_alloc(H, (size_t)1 << 20));
	struct heap_summary s;
	th_walk_ok(seg.addr, heap_high_water(H), NULL, &s);
	heap_free(H, big[0]);
	void *again = heap_alloc(H, (size_t)1 << 20);
	assert_non_null(again);
	heap_free(H, again);
	for (size_t i = 1; i < nb; i++)
		heap_free(H, big[i]);
	for (size_t i = 0; i < ns; i++)
		heap_free(H, small[i]);
	check_ok(0);
	/* everything freed: the whole heap is usable again by large blocks */
	nb = 0;
	while (nb < 64 && (big[nb] = heap_alloc(H, (size_t)1 << 20)) != NULL)
		nb++;
	assert_true(nb >= 30);
	for (size_t i = 0; i < nb; i++)
		heap_free(H, big[i]);
	check_ok(0);
}

/* expect_bad_free -- free(p) fails with err and a message naming `word`, heap intact */
static void
expect_bad_free(void *p, int err, const char *word, uint64_t live)
{
	ckpt_err_clear();
	errno = 0;
	assert_int_equal(heap_free(H, p), -1);
	assert_int_equal(errno, err);
	if (!th_errmsg_has(word))
		fail_msg("message '%s' does not say '%s'", ckpt_errormsg(), word);
	check_ok(live);
	void *t = heap_alloc(H, 40);
	assert_non_null(t);
	heap_free(H, t);
}

/* count64 -- walk callback: counts the 64-byte slab blocks (free or live) */
static int
count64(const struct heap_block_info *b, void *arg)
{
	if (b->size == 64)
		(*(uint64_t *)arg)++;
	return 0;
}

static uint64_t
capacity64(void)
{
	uint64_t n = 0;
	assert_int_equal(heap_walk(seg.addr, heap_high_water(H), count64, &n, NULL), 0);
	return n;
}

/*
 * test_full_slabs_reused -- slabs that filled up and then got frees (they
 * stay on the full list, see HEAP.md "Slow path") give their blocks back:
 * refilling does not add slabs, a double free into such a slab is caught
 * at the call, and random replacement at a constant live count keeps the
 * slab capacity within the documented bound (an eighth left in full
 * slabs, plus the slab being filled and one more).
 */
static void
test_full_slabs_reused(void **state)
{
	(void)state;
	enum { N = 4096, CAP64 = 254 };
	static void *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = heap_alloc(H, 64);
		assert_non_null(p[i]);
		memset(p[i], 0xa5, 64);
	}
	uint64_t c0 = capacity64();
	assert_true(c0 >= N && c0 < N + 2 * CAP64);
	for (int i = 0; i < N; i += 2)
		assert_int_equal(heap_free(H, p[i]), 0);
	check_ok((uint64_t)N / 2 * 64);
	/* a double free into a full slab's free list is caught at once */
	expect_bad_free(p[0], ENOENT, "not allocated", (uint64_t)N / 2 * 64);
	expect_bad_free(p[N - 2], ENOENT, "not allocated", (uint64_t)N / 2 * 64);
	for (int i = 0; i < N; i += 2) {
		p[i] = heap_alloc(H, 64);
		assert_non_null(p[i]);
	}
	check_ok((uint64_t)N * 64);
	assert_int_equal(capacity64(), c0);     /* every freed block was reused */
	/* steady state: random replacement, live count constant */
	uint64_t r = 42;
	for (int k = 0; k < 200000; k++) {
		unsigned i = (unsigned)(th_rand(&r) % N);
		assert_int_equal(heap_free(H, p[i]), 0);
		p[i] = heap_alloc(H, 64);
		assert_non_null(p[i]);
		*(uint64_t *)p[i] = (uint64_t)k;
	}
	check_ok((uint64_t)N * 64);
	uint64_t c1 = capacity64();
	assert_true(c1 * 7 <= ((uint64_t)N + 2 * CAP64) * 8);
	for (int i = 0; i < N; i++)
		assert_int_equal(heap_free(H, p[i]), 0);
	check_ok(0);
}

/*
 * test_sparse_holes_before_enomem -- blocks freed too sparsely for their
 * full slabs to be refiled (fewer than an eighth per slab) are still all
 * handed out again before the heap reports ENOMEM.
 */
static void
test_sparse_holes_before_enomem(void **state)
{
	(void)state;
	enum { MAX = SEG_SIZE / 64 };
	static void *p[MAX];
	size_t n = 0;
	while (n < MAX && (p[n] = heap_alloc(H, 64)) != NULL)
		n++;
	assert_true(n < MAX && n > MAX / 2);
	assert_int_equal(errno, ENOMEM);
	size_t freed = 0;
	for (size_t i = 0; i < n; i += 32, freed++)
		assert_int_equal(heap_free(H, p[i]), 0);
	check_ok((uint64_t)(n - freed) * 64);
	for (size_t i = 0; i < n; i += 32) {
		p[i] = heap_alloc(H, 64);
		assert_non_null(p[i]);
	}
	check_ok((uint64_t)n * 64);
	assert_null(heap_alloc(H, 64));
	assert_int_equal(errno, ENOMEM);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(heap_free(H, p[i]), 0);
	check_ok(0);
}

/* freer -- frees the block arg from another thread (a remote free) */
static void *
freer(void *arg)
{
	return (void *)(intptr_t)heap_free(H, arg);
}

/* freer_many -- frees the NULL-terminated array of blocks arg from another thread */
static void *
freer_many(void *arg)
{
	intptr_t rc = 0;
	for (void **b = arg; *b; b++)
		rc |= heap_free(H, *b);
	return (void *)rc;
}

/*
 * test_format_versions -- a version 3 heap (as the version 3 code wrote it:
 * heap_downgrade links the blocks other threads freed into each slab's
 * remote-free list), holding slabs of several classes, remote frees
 * pending (a few in one slab, and every block of another) and a large
 * block, is walked and attached, and attaching raises it to version 4 with
 * its blocks intact and usable and the remote-freed blocks collected:
 * handed out again, never twice. So are a version 2 heap (heap_downgrade
 * puts the class geometry back in every slab header too) and a version 1
 * heap (the same bytes: version 2 only allowed more). A version this
 * library does not know is refused by both, with the version named, and
 * the bytes are left as they were.
 */
static void
test_format_versions(void **state)
{
	(void)state;
	uint32_t *ver = (uint32_t *)((char *)seg.addr + 8);
	enum { NR = 40 };
	for (uint32_t old = 3; old >= 1; old--) {
		char *p = heap_alloc(H, 100), *q = heap_alloc(H, 5000);
		char *big = heap_alloc(H, 200000), *r = heap_alloc(H, 100);
		void *many[NR + 4];     /* r and three more of p's class; NR of a class of their own */
		assert_non_null(p);
		assert_non_null(q);
		assert_non_null(big);
		assert_non_null(r);
		memset(p, 0x11, 100);
		memset(q, 0x22, 5000);
		many[0] = r;
		for (int i = 1; i < 4; i++)
			assert_non_null(many[i] = heap_alloc(H, 100));
		for (int i = 4; i < NR + 4; i++)
			assert_non_null(many[i] = heap_alloc(H, 3000));
		void *list[NR + 5];
		memcpy(list, many, sizeof(many));
		list[NR + 4] = NULL;
		pthread_t t;            /* they wait for collection (rbits; a v3 remote list) */
		void *rc;
		assert_int_equal(pthread_create(&t, NULL, freer_many, list), 0);
		pthread_join(t, &rc);
		assert_int_equal((intptr_t)rc, 0);
		assert_int_equal(*ver, 4);
		heap_detach(H);

		heap_downgrade(seg.addr, old);
		assert_int_equal(*ver, old);
		if (old == 3)   /* a v3 remote list heads r's slab: the blocks linked */
			assert_int_not_equal(*(uint64_t *)(((uintptr_t)r & ~(uintptr_t)16383) + 40),
					0);
		th_walk_ok(seg.addr, SEG_SIZE, NULL, NULL);
		H = heap_attach(seg.addr, SEG_SIZE, NULL, NULL);
		assert_non_null(H);
		assert_int_equal(*ver, 4);
		th_walk_ok(seg.addr, SEG_SIZE, NULL, NULL);
		assert_int_equal(heap_usable_size(H, p), 112);
		assert_int_equal((unsigned char)p[99], 0x11);
		assert_int_equal((unsigned char)q[4999], 0x22);
		check_ok(112 + heap_usable_size(H, q) + heap_usable_size(H, big));
		for (int i = 0; i < NR + 4; i++) {    /* freed before the upgrade */
			assert_int_equal(heap_free(H, many[i]), -1);
			/* (EINVAL: the slab emptied and its pages were freed) */
			assert_true(errno == ENOENT || (i >= 4 && errno == EINVAL));
		}
		/* collected: allocating them all again hands each out once */
		void *again[NR];
		for (int i = 0; i < NR; i++) {
			assert_non_null(again[i] = heap_alloc(H, 3000));
			for (int j = 0; j < i; j++)
				assert_ptr_not_equal(again[i], again[j]);
		}
		check_ok(112 + heap_usable_size(H, q) + heap_usable_size(H, big) +
				NR * heap_usable_size(H, again[0]));
		for (int i = 0; i < NR; i++)
			assert_int_equal(heap_free(H, again[i]), 0);
		assert_int_equal(heap_free(H, p), 0);
		assert_int_equal(heap_free(H, q), 0);
		assert_int_equal(heap_free(H, big), 0);
		check_ok(0);
	}
	heap_detach(H);

	static const uint32_t bad[] = { 0, 5, 0xffffffffu };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		*ver = bad[i];
		errno = 0;
		assert_int_equal(heap_check(seg.addr, SEG_SIZE, NULL), -1);
		assert_int_equal(errno, EINVAL);
		assert_true(th_errmsg_has("version"));
		errno = 0;
		assert_null(heap_attach(seg.addr, SEG_SIZE, NULL, NULL));
		assert_int_equal(errno, EINVAL);
		if (!th_errmsg_has("not supported"))
			fail_msg("message '%s' does not refuse the version", ckpt_errormsg());
		assert_int_equal(*ver, bad[i]);
	}
	*ver = 4;
	H = heap_attach(seg.addr, SEG_SIZE, NULL, NULL);
	assert_non_null(H);
	check_ok(0);
}

/*
 * test_attach_reads_metadata_only -- attaching a heap full of slabs of many
 * classes (two threads' worth: an orphan slot, remote frees pending) reads
 * nothing past the metadata: it succeeds with every data page PROT_NONE
 * (a lazy restart then faults in no slab before the program runs). Then
 * the heap works: the blocks are there, the orphan slot is taken over,
 * frees and allocations of every class succeed, the walker is content.
 */
static void
test_attach_reads_metadata_only(void **state)
{
	(void)state;
	static void *p[3000];
	uint64_t total = 0;
	for (int i = 0; i < 3000; i++) {
		p[i] = heap_alloc(H, (size_t)(i * 37) % 5000 + 1);
		assert_non_null(p[i]);
		memset(p[i], i & 0xff, 1);
	}
	pthread_t t;      /* frees from another thread: remote lists, another slot */
	void *rc;
	for (int i = 0; i < 3000; i += 7) {
		assert_int_equal(pthread_create(&t, NULL, freer, p[i]), 0);
		pthread_join(t, &rc);
		assert_int_equal((intptr_t)rc, 0);
		p[i] = NULL;
	}
	heap_detach(H);
	uint64_t data_off;
	memcpy(&data_off, (char *)seg.addr + 64, 8);
	assert_true(data_off > 0 && data_off < SEG_SIZE);
	assert_int_equal(mprotect((char *)seg.addr + data_off, SEG_SIZE - data_off, PROT_NONE), 0);
	H = heap_attach(seg.addr, SEG_SIZE, NULL, NULL);
	assert_int_equal(mprotect((char *)seg.addr + data_off, SEG_SIZE - data_off,
			PROT_READ | PROT_WRITE), 0);
	assert_non_null(H);
	for (int i = 0; i < 3000; i++) {
		if (!p[i])
			continue;
		assert_int_equal(*(unsigned char *)p[i], i & 0xff);
		total += heap_usable_size(H, p[i]);
	}
	check_ok(total);
	for (int i = 0; i < 3000; i++) {
		assert_int_equal(heap_free(H, p[i]), 0);
		p[i] = heap_alloc(H, (size_t)(i * 53) % 5000 + 1);
		assert_non_null(p[i]);
	}
	for (int i = 0; i < 3000; i++)
		assert_int_equal(heap_free(H, p[i]), 0);
	assert_int_equal(heap_validate_all(H), 0);
	check_ok(0);
}

static void *
free_twice_thread(void *arg)
{
	void **pp = arg;
	int rc1 = heap_free(H, pp[0]);
	int rc2 = heap_free(H, pp[0]);
	int e2 = errno;
	pp[1] = (void *)(intptr_t)(rc1 == 0 && rc2 == -1 && e2 == ENOENT &&
			th_errmsg_has("already freed"));
	return NULL;
}

static void
test_invalid_free(void **state)
{
	(void)state;
	int local;
	char *p = heap_alloc(H, 64);
	char *l = heap_alloc(H, 200000);
	uint64_t live = 64 + heap_usable_size(H, l);
	void *m = malloc(32);
	expect_bad_free(&local, EINVAL, "outside", live);
	expect_bad_free(m, EINVAL, "outside", live);
	expect_bad_free(p + 16, EINVAL, "inside", live);
	expect_bad_free(p + 1, EINVAL, "inside", live);
	expect_bad_free(l + 16384, EINVAL, "inside", live);
	expect_bad_free(l + 8, EINVAL, "inside", live);
	expect_bad_free(seg.addr + 100, EINVAL, "metadata", live);
	free(m);

	/* another pool's block is outside this heap */
	struct th_seg seg2;
	struct heap *h2 = th_new_heap(&seg2, "heap2", 8 << 20, 0);
	void *o = heap_alloc(h2, 64);
	expect_bad_free(o, EINVAL, "outside", live);
	assert_int_equal(heap_free(h2, o), 0);
	assert_int_equal(heap_check(seg2.addr, heap_high_water(h2), NULL), 0);
	heap_detach(h2);
	th_unmap(&seg2);

	/* double free, same thread: small (in the front cache: "already freed
	 * (double free; ...front cache)"), after a quiesce (on its slab's free
	 * list: "not allocated (double free, ...)"), and large */
	assert_int_equal(heap_free(H, p), 0);
	live -= 64;
	expect_bad_free(p, ENOENT, "front cache", live);
	expect_bad_free(p, ENOENT, "not allocated", live);
	assert_int_equal(heap_free(H, l), 0);
	live = 0;
	expect_bad_free(l, ENOENT, "not allocated", live);
	/* never handed out: a fresh heap's first slab has handed out one block */
	h2 = th_new_heap(&seg2, "heap3", 8 << 20, 0);
	char *q = heap_alloc(h2, 64);
	ckpt_err_clear();
	errno = 0;
	assert_int_equal(heap_free(h2, q + 64 * 50), -1);
	assert_int_equal(errno, ENOENT);
	if (!th_errmsg_has("not allocated"))
		fail_msg("message '%s' does not say 'not allocated'", ckpt_errormsg());
	assert_int_equal(heap_free(h2, q), 0);
	assert_int_equal(heap_check(seg2.addr, heap_high_water(h2), NULL), 0);
	heap_detach(h2);
	th_unmap(&seg2);

	/* double free from another thread, and after another thread's free */
	void *args[2] = { heap_alloc(H, 48), NULL };
	pthread_t t;
	pthread_create(&t, NULL, free_twice_thread, args);
	pthread_join(t, NULL);
	assert_true(args[1] != NULL);
	expect_bad_free(args[0], ENOENT, "free", 0);
	check_ok(0);
	/* usable_size of a freed block */
	assert_int_equal(heap_usable_size(H, args[0]), 0);
	assert_int_equal(errno, ENOENT);
}

/*
 * test_invalid_free_fast -- for each class with a front cache, once the
 * fast free knows the slab (a block of it was freed first, which sets
 * pown), every address inside a live block, in the slab's header and in its
 * unused tail is refused with EINVAL, and the heap stays exact. The fast free
 * finds the block index and the block start with one multiplication
 * (blk_at_page in heap/api.c): this tries it at every offset.
 */
static void
test_invalid_free_fast(void **state)
{
	(void)state;
	uint64_t live = heap_bytes_in_use(H);
	for (size_t size = 16; size <= 512; size += size < 128 ? 16 : size < 256 ? 32 : 64) {
		char *a = heap_alloc(H, size), *b = heap_alloc(H, size);
		assert_non_null(a);
		assert_non_null(b);
		size_t bs = heap_usable_size(H, b);
		assert_int_equal(bs, size);
		assert_int_equal(heap_free(H, a), 0);
		for (size_t k = 1; k < bs; k++) {
			errno = 0;
			assert_int_equal(heap_free(H, b + k), -1);
			assert_int_equal(errno, EINVAL);
		}
		char *pg = (char *)((uintptr_t)b & ~(uintptr_t)16383);
		for (size_t k = 0; k < 16384; k += 8) {
			/* the header, and the tail past the last block (locate names both) */
			errno = 0;
			if (heap_usable_size(H, pg + k) != 0 || errno != EINVAL ||
			    !(th_errmsg_has("metadata") || th_errmsg_has("unused tail")))
				continue;
			errno = 0;
			assert_int_equal(heap_free(H, pg + k), -1);
			assert_int_equal(errno, EINVAL);
		}
		assert_int_equal(heap_free(H, b), 0);
		check_ok(live);
	}
}

static void
test_root(void **state)
{
	(void)state;
	assert_null(heap_root(H));
	char *p = heap_alloc(H, 128);
	assert_int_equal(heap_set_root(H, p), 0);
	assert_ptr_equal(heap_root(H), p);
	assert_int_equal(heap_set_root(H, p + 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(heap_set_root(H, (char *)&p), -1);
	assert_ptr_equal(heap_root(H), p);
	struct heap_summary s;
	th_walk_ok(seg.addr, heap_high_water(H), NULL, &s);
	assert_int_equal(s.root_offset, (uint64_t)(p - (char *)seg.addr));
	/* survives detach + attach */
	heap_detach(H);
	H = heap_attach(seg.addr, SEG_SIZE, NULL, NULL);
	assert_non_null(H);
	assert_ptr_equal(heap_root(H), p);
	assert_int_equal(heap_usable_size(H, p), 128);
	assert_int_equal(heap_set_root(H, NULL), 0);
	assert_null(heap_root(H));
	heap_free(H, p);
	check_ok(0);
}

/* grow_limit -- a grow callback that refuses to back bytes past *arg */
static uint64_t grow_calls, grow_max;
static int
grow_limit(void *arg, uint64_t off, uint64_t len)
{
	grow_calls++;
	if (len < HEAP_GROW_STEP && off + len != SEG_SIZE)
		return ckpt_err_set(EINVAL, "grow step too small");
	if (off + len > grow_max)
		grow_max = off + len;
	if (off + len > *(uint64_t *)arg)
		return ckpt_err_set(ENOSPC, "no space left on device (test)");
	return 0;
}

static void
test_grow(void **state)
{
	(void)state;
	heap_detach(H);
	uint64_t limit = 6 << 20;
	grow_calls = grow_max = 0;
	assert_int_equal(heap_format(seg.addr, SEG_SIZE, grow_limit, &limit), 0);
	assert_true(grow_calls == 1);
	H = heap_attach(seg.addr, SEG_SIZE, grow_limit, &limit);
	assert_non_null(H);
	static void *p[4096];
	size_t n = 0;
	while ((p[n] = heap_alloc(H, 300000)) != NULL) {
		memset(p[n], 1, 300000);
		assert_true((uint64_t)((uint8_t *)p[n] - seg.addr) + 300000 <= grow_max);
		n++;
	}
	assert_int_equal(errno, ENOMEM);
	assert_true(th_errmsg_has("no space"));
	struct heap_summary before, after;
	th_walk_ok(seg.addr, heap_high_water(H), NULL, &before);
	size_t hw = heap_high_water(H);
	assert_true(hw <= limit);
	assert_null(heap_alloc(H, 300000));
	while ((p[n] = heap_alloc(H, 100)) != NULL)
		n++;
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(heap_high_water(H), hw);
	th_walk_ok(seg.addr, heap_high_water(H), NULL, &after);
	assert_int_equal(after.high_water, before.high_water);
	for (size_t i = 0; i < n; i++)
		heap_free(H, p[i]);
	check_ok(0);
	limit = SEG_SIZE;
	assert_non_null(p[0] = heap_alloc(H, 10 << 20));
	heap_free(H, p[0]);
	check_ok(0);
}

/* -- threads ----------------------------------------------------------------- */

static _Atomic int stop_threads;

static void *
churn_thread(void *arg)
{
	uint64_t r = (uintptr_t)arg * 7919 + 1;
	void *mine[64] = { 0 };
	while (!stop_threads) {
		unsigned i = th_rand(&r) % 64;
		if (mine[i]) {
			heap_free(H, mine[i]);
			mine[i] = NULL;
		} else {
			size_t sz = th_rand(&r) % 8 == 0 ? 20000 + th_rand(&r) % 100000 : th_rand(&r) % 600;
			mine[i] = heap_alloc(H, sz);
			if (mine[i])
				memset(mine[i], (int)i, sz);
		}
	}
	for (unsigned i = 0; i < 64; i++)
		heap_free(H, mine[i]);
	return NULL;
}

static void *
leave_blocks_thread(void *arg)
{
	void **out = arg;
	for (int i = 0; i < 1000; i++)
		out[i] = heap_alloc(H, (size_t)(i * 37) % 5000);
	return NULL;
}

static void
test_thread_exit_and_adopt(void **state)
{
	(void)state;
	static void *blocks[1000];
	pthread_t t;
	pthread_create(&t, NULL, leave_blocks_thread, blocks);
	pthread_join(t, NULL);
	struct heap_summary s;
	th_walk_ok(seg.addr, heap_high_water(H), NULL, &s);
	assert_int_equal(s.blocks_allocated, 1000);
	for (int i = 0; i < 1000; i += 2)
		assert_int_equal(heap_free(H, blocks[i]), 0);
	/* allocations adopt the abandoned slabs' free blocks */
	for (int i = 0; i < 1000; i += 2)
		assert_non_null(blocks[i] = heap_alloc(H, (size_t)(i * 37) % 5000));
	for (int i = 0; i < 1000; i++)
		assert_int_equal(heap_free(H, blocks[i]), 0);
	check_ok(0);
}

static void
test_lock_all_while_running(void **state)
{
	(void)state;
	pthread_t t[3];
	stop_threads = 0;
	for (uintptr_t i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, churn_thread, (void *)i);
	void *copy = malloc(SEG_SIZE);
	for (int k = 0; k < 100; k++) {
		usleep(1000);
		heap_lock_all(H);
		void *mine = heap_alloc(H, 100);   /* the locking thread may use the heap */
		assert_non_null(mine);
		assert_int_equal(heap_free(H, mine), 0);
		size_t hw = heap_high_water(H);
		memcpy(copy, seg.addr, hw);
		size_t in_use = heap_bytes_in_use(H);
		heap_unlock_all(H);
		struct heap_summary s;
		th_walk_ok(copy, hw, NULL, &s);
		assert_int_equal(s.bytes_allocated, in_use);
	}
	free(copy);
	stop_threads = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	check_ok(0);
}

/*
 * test_fork_after_other_heap -- the forking thread's slot survives in the
 * child even when the thread's last heap call went to another heap (its
 * DRAM cache then names that heap, not this one)
 */
static void
test_fork_after_other_heap(void **state)
{
	(void)state;
	heap_detach(H);
	th_unmap(&seg);
	H = th_new_heap(&seg, "heapfork2", SEG_SIZE, 1);      /* private: the child's writes stay its own */
	char *mine = heap_alloc(H, 64);                     /* this thread takes a slot of H */
	assert_non_null(mine);
	struct th_seg seg2;
	struct heap *h2 = th_new_heap(&seg2, "heapfork2-other", 8 << 20, 1);
	void *o = heap_alloc(h2, 64);                       /* ... and last used h2 */
	assert_non_null(o);
	heap_lock_all(H);
	pid_t pid = fork();
	if (pid == 0) {
		heap_after_fork_child(H);
		int bad = 0;
		for (int i = 0; i < 1000 && !bad; i++)
			bad |= heap_alloc(H, 64) == NULL;
		/* a slot released in the child while still in use would show as a
		 * free slot owning slabs */
		if (!bad && heap_check(seg.addr, heap_high_water(H), NULL) != 0) {
			fprintf(stderr, "child: %s\n", ckpt_errormsg());
			bad = 1;
		}
		bad |= heap_free(H, mine) != 0;
		_exit(bad);
	}
	heap_unlock_all(H);
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_int_equal(heap_free(h2, o), 0);
	heap_detach(h2);
	th_unmap(&seg2);
	assert_int_equal(heap_free(H, mine), 0);
	check_ok(0);
}

static void
test_fork_while_running(void **state)
{
	(void)state;
	/* a private mapping, so the child's writes stay in the child */
	heap_detach(H);
	th_unmap(&seg);
	H = th_new_heap(&seg, "heapfork", SEG_SIZE, 1);
	pthread_t t[2];
	stop_threads = 0;
	for (uintptr_t i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn_thread, (void *)i);
	void *mine = heap_alloc(H, 1000);
	memset(mine, 9, 1000);
	for (int k = 0; k < 20; k++) {
		usleep(2000);
		heap_lock_all(H);
		pid_t pid = fork();
		if (pid == 0) {
			heap_after_fork_child(H);
			int bad = heap_check(seg.addr, heap_high_water(H), NULL) != 0;
			for (int i = 0; i < 20000 && !bad; i++) {
				void *x = heap_alloc(H, (size_t)i % 3000);
				bad |= x == NULL || heap_free(H, x) != 0;
			}
			bad |= ((char *)mine)[999] != 9 || heap_free(H, mine) != 0;
			bad |= heap_check(seg.addr, heap_high_water(H), NULL) != 0;
			if (bad)
				fprintf(stderr, "child: %s\n", ckpt_errormsg());
			_exit(bad);
		}
		heap_unlock_all(H);
		assert_int_equal(tu_wait_exit(pid), 0);
	}
	stop_threads = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	heap_free(H, mine);
	check_ok(0);
}

static void
test_attach_rejects(void **state)
{
	(void)state;
	heap_detach(H);
	H = NULL;
	/* wrong size */
	assert_null(heap_attach(seg.addr, SEG_SIZE - (1 << 20), NULL, NULL));
	assert_int_equal(errno, EINVAL);
	assert_true(*ckpt_errormsg());
	/* bad magic */
	seg.addr[0] ^= 1;
	assert_null(heap_attach(seg.addr, SEG_SIZE, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	assert_true(th_errmsg_has("magic"));
	seg.addr[0] ^= 1;
	/* version */
	seg.addr[8] += 1;
	assert_null(heap_attach(seg.addr, SEG_SIZE, NULL, NULL));
	assert_true(th_errmsg_has("version"));
	seg.addr[8] -= 1;
	uint64_t hw;
	assert_int_equal(heap_peek_high_water(seg.addr, SEG_SIZE, &hw), 0);
	assert_int_equal(heap_peek_high_water(seg.addr, 4096, &hw), -1);
	H = heap_attach(seg.addr, SEG_SIZE, NULL, NULL);
	assert_non_null(H);
}

/*
 * test_format_zeroed -- heap_format_zeroed on a segment of zeroes writes the
 * same bytes as heap_format on one full of garbage, up to the first data
 * page; heap_attach adopts it and the heap works and walks clean; a
 * fresh heap is walked the same way by heap_attach afterwards
 */
static void
test_format_zeroed(void **state)
{
	(void)state;
	struct th_seg z, g;
	th_map(&z, tu_path("zeroed"), SEG_SIZE, 0);
	th_map(&g, tu_path("garbage"), SEG_SIZE, 0);
	memset(g.addr, 0xa5, HEAP_GROW_STEP);
	assert_int_equal(heap_format_zeroed(z.addr, SEG_SIZE, NULL, NULL), 0);
	assert_int_equal(heap_format(g.addr, SEG_SIZE, NULL, NULL), 0);
	/* the first data page is the first byte the garbage survives in */
	size_t meta = 0;
	while (meta < HEAP_GROW_STEP && g.addr[meta] != 0xa5)
		meta++;
	for (size_t i = meta; i < HEAP_GROW_STEP && g.addr[i] == 0xa5; i++)
		assert_int_equal(z.addr[i], 0);
	assert_true(meta > 0 && meta < HEAP_GROW_STEP);
	assert_memory_equal(z.addr, g.addr, meta);
	struct heap *h = heap_attach(z.addr, SEG_SIZE, NULL, NULL);
	assert_non_null(h);
	void *p[64];
	for (int i = 0; i < 64; i++) {
		p[i] = heap_alloc(h, (size_t)(16 << (i % 12)));
		assert_non_null(p[i]);
		memset(p[i], i, (size_t)(16 << (i % 12)));
	}
	for (int i = 0; i < 64; i += 2)
		assert_int_equal(heap_free(h, p[i]), 0);
	th_walk_ok(z.addr, heap_high_water(h), NULL, NULL);
	heap_detach(h);
	h = heap_attach(z.addr, SEG_SIZE, NULL, NULL);
	assert_non_null(h);
	heap_detach(h);
	th_unmap(&z);
	th_unmap(&g);
}

/*
 * test_format_over_garbage -- heap_format over a segment full of another
 * heap's bytes (a young heap formats over the last owner's segment, a
 * young fork child's segment holds them past its high-water mark): every
 * class and large blocks work, calloc is zeroed, the walk is clean, and a
 * re-attach walks the same heap
 */
static void
test_format_over_garbage(void **state)
{
	(void)state;
	struct th_seg g;
	th_map(&g, tu_path("garbage2"), SEG_SIZE, 0);
	memset(g.addr, 0x5a, SEG_SIZE);
	assert_int_equal(heap_format(g.addr, SEG_SIZE, NULL, NULL), 0);
	struct heap *h = heap_attach(g.addr, SEG_SIZE, NULL, NULL);
	assert_non_null(h);
	static void *p[3000];
	for (int i = 0; i < 3000; i++) {
		size_t n = (size_t)1 << (i % 16);       /* 1 B .. 32 KiB */
		p[i] = i % 3 ? heap_alloc(h, n) : heap_calloc(h, 1, n);
		assert_non_null(p[i]);
		if (i % 3 == 0)
			for (size_t k = 0; k < n; k += 97)
				assert_int_equal(((unsigned char *)p[i])[k], 0);
		memset(p[i], i & 0xff, n);
	}
	for (int i = 0; i < 3000; i += 2)
		assert_int_equal(heap_free(h, p[i]), 0);
	th_walk_ok(g.addr, heap_high_water(h), NULL, NULL);
	heap_detach(h);
	h = heap_attach(g.addr, SEG_SIZE, NULL, NULL);
	assert_non_null(h);
	for (int i = 1; i < 3000; i += 2)
		assert_int_equal(heap_free(h, p[i]), 0);
	th_walk_ok(g.addr, heap_high_water(h), NULL, NULL);
	heap_detach(h);
	th_unmap(&g);
}

/* walk_bytes -- bytes in live blocks as the walker sees the segment now (no quiesce) */
static uint64_t
walk_bytes(void)
{
	struct heap_summary s;
	th_walk_ok(seg.addr, heap_high_water(H), NULL, &s);
	return s.bytes_allocated;
}

/* cache_and_exit -- a thread's body: allocate n 64-byte blocks, free them
 * all (the first TC_CAP go into its front cache), return the first */
static void *
cache_and_exit(void *arg)
{
	(void)arg;
	void *b[64];
	for (int i = 0; i < 64; i++)
		if (!(b[i] = heap_alloc(H, 64)))
			return NULL;
	for (int i = 0; i < 64; i++)
		if (heap_free(H, b[i]) != 0)
			return NULL;
	return b[0];
}

/* free_expect_enoent -- another thread's free of arg must fail with ENOENT */
static void *
free_expect_enoent(void *arg)
{
	int rc = heap_free(H, arg);
	return (void *)(intptr_t)(rc == -1 && errno == ENOENT &&
			th_errmsg_has("front cache"));
}

/* free_again -- a second free of p fails with ENOENT; its message names the
 * front cache iff in_cache (the block waits there, not on its slab) */
static void
free_again(void *p, int in_cache)
{
	assert_int_equal(heap_free(H, p), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(th_errmsg_has("front cache"), in_cache);
}

/*
 * test_front_cache -- blocks a thread frees go into its front cache and
 * stay allocated in the segment (a walk of the live segment counts them)
 * until a quiesce: heap_lock_all drains every cache, so the segment is
 * then exact; the next allocation of the class takes the block back
 * (LIFO). A cached block freed again, by its thread or another, fails with
 * ENOENT and the heap is unchanged; usable_size and set_root refuse it. A
 * thread's exit drains its cache (exact without a quiesce).
 */
static void
test_front_cache(void **state)
{
	(void)state;
	char *keep = heap_alloc(H, 64), *p = heap_alloc(H, 64), *q = heap_alloc(H, 300);
	assert_non_null(keep);
	assert_non_null(p);
	assert_non_null(q);
	assert_int_equal(heap_free(H, p), 0);
	assert_int_equal(heap_free(H, q), 0);
	/* cached: allocated to the segment */
	assert_int_equal(walk_bytes(), 64 + 64 + 320);
	assert_int_equal(heap_bytes_in_use(H), 64);
	/* double frees of cached blocks, by the owner and by another thread */
	free_again(p, 1);
	pthread_t t;
	void *rc;
	assert_int_equal(pthread_create(&t, NULL, free_expect_enoent, q), 0);
	pthread_join(t, &rc);
	assert_int_equal((intptr_t)rc, 1);
	assert_int_equal(heap_usable_size(H, p), 0);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(heap_set_root(H, q), -1);
	assert_false(heap_is_block(H, p));
	/* LIFO: the next allocations of the classes take them back */
	assert_ptr_equal(heap_alloc(H, 50), p);
	assert_ptr_equal(heap_alloc(H, 290), q);
	assert_int_equal(heap_usable_size(H, p), 64);
	assert_int_equal(heap_free(H, p), 0);
	assert_int_equal(heap_free(H, q), 0);
	/* a quiesce drains them: exact segment, the blocks free there */
	heap_lock_all(H);
	assert_int_equal(walk_bytes(), 64);
	heap_unlock_all(H);
	free_again(p, 0);
	/* a thread's exit drains its cache */
	assert_int_equal(pthread_create(&t, NULL, cache_and_exit, NULL), 0);
	pthread_join(t, &rc);
	assert_non_null(rc);
	assert_int_equal(walk_bytes(), 64);
	assert_int_equal(heap_free(H, keep), 0);
	check_ok(0);
}

/*
 * test_front_cache_full -- a thread frees three times as many blocks of a
 * class as its front cache holds: the first TC_CAP wait in the cache (still
 * allocated in the segment), the rest go back on their slab at once (free
 * in the segment). A second free of one of those is ENOENT as a slab's
 * double free, of a cached one as the cache's. The class's next
 * allocations take the cached blocks newest first, then the slab's free
 * list (the block freed last first), then, once it is dry, the slab's
 * untouched blocks and new slabs from within the fast path's section.
 */
static void
test_front_cache_full(void **state)
{
	(void)state;
	enum { N = 3 * TC_CAP, M = 600, SZ = 80 };   /* M: more than one 80 B slab (203) */
	static char *b[N], *more[M];
	th_quiesce(H);
	uint64_t base = walk_bytes();
	for (int i = 0; i < N; i++)
		assert_non_null(b[i] = heap_alloc(H, SZ));
	assert_int_equal(walk_bytes(), base + N * SZ);
	for (int i = 0; i < N; i++)
		assert_int_equal(heap_free(H, b[i]), 0);
	assert_int_equal(walk_bytes(), base + TC_CAP * SZ);
	free_again(b[N - 1], 0);
	free_again(b[0], 1);
	assert_int_equal(walk_bytes(), base + TC_CAP * SZ);      /* unchanged */
	for (int i = TC_CAP - 1; i >= 0; i--)
		assert_ptr_equal(heap_alloc(H, SZ), b[i]);
	assert_ptr_equal(heap_alloc(H, SZ), b[N - 1]);
	assert_int_equal(heap_free(H, b[N - 1]), 0);
	for (int i = 0; i < (int)TC_CAP; i++)
		assert_int_equal(heap_free(H, b[i]), 0);
	/* past the free lists: untouched blocks and fresh slabs */
	for (int i = 0; i < M; i++) {
		assert_non_null(more[i] = heap_alloc(H, SZ));
		memset(more[i], 0xa5, SZ);
	}
	th_quiesce(H);
	assert_int_equal(walk_bytes(), base + M * SZ);
	for (int i = 0; i < M; i++)
		assert_int_equal(heap_free(H, more[i]), 0);
	check_ok(base);
}

/* cache_large_and_exit -- a thread's body: allocate and free 4 blocks of each size
 * in arg (0-terminated), which wait in its front cache; return the first block */
static void *
cache_large_and_exit(void *arg)
{
	const size_t *sz = arg;
	void *first = NULL;
	for (; *sz; sz++) {
		void *b[4];
		for (int i = 0; i < 4; i++)
			if (!(b[i] = heap_alloc(H, *sz)))
				return NULL;
		for (int i = 0; i < 4; i++)
			if (heap_free(H, b[i]) != 0)
				return NULL;
		if (!first)
			first = b[0];
	}
	return first;
}

/*
 * test_front_cache_large -- the front cache of the classes above 512 B, on
 * one-page and multi-page slabs (a block on a slab's later page found
 * through the page map): a freed block waits in the cache, allocated to
 * the segment; freed again by its thread or another it fails with ENOENT
 * and a message naming the front cache, the heap unchanged; the class's
 * next allocation takes it back. A class's cache holds its tcap blocks
 * (4 of 40 KiB), the rest go back to the slab at once; a quiesce drains
 * every cache, and so does a thread's exit.
 */
static void
test_front_cache_large(void **state)
{
	(void)state;
	static const size_t sizes[] = { 600, 3000, 9000, 20000, 40000, 65536, 0 };
	enum { NS = 6, NE = 8 };
	char *keep[NS], *p[NS], *ext[NS][NE];
	int next[NS];
	th_quiesce(H);
	uint64_t base = walk_bytes();
	for (int i = 0; i < NS; i++) {
		assert_non_null(keep[i] = heap_alloc(H, sizes[i]));
		/* p[i]: on a later page than keep[i] (of its slab, when the class's
		 * slabs are several pages), or the NE+1st block */
		next[i] = 0;
		assert_non_null(p[i] = heap_alloc(H, sizes[i]));
		while ((uintptr_t)p[i] >> 14 == (uintptr_t)keep[i] >> 14 && next[i] < NE) {
			ext[i][next[i]++] = p[i];
			assert_non_null(p[i] = heap_alloc(H, sizes[i]));
		}
		memset(p[i], 0x5a, sizes[i]);
	}
	uint64_t live = walk_bytes(), cached = 0;
	for (int i = 0; i < NS; i++) {
		size_t bs = heap_usable_size(H, p[i]);
		assert_true(bs >= sizes[i]);
		assert_int_equal(heap_free(H, p[i]), 0);
		cached += bs;
		assert_int_equal(walk_bytes(), live);                  /* cached: allocated */
		free_again(p[i], 1);
		pthread_t t;
		void *rc;
		assert_int_equal(pthread_create(&t, NULL, free_expect_enoent, p[i]), 0);
		pthread_join(t, &rc);
		assert_int_equal((intptr_t)rc, 1);
		assert_int_equal(heap_usable_size(H, p[i]), 0);
		assert_int_equal(errno, ENOENT);
		assert_false(heap_is_block(H, p[i]));
		assert_int_equal(walk_bytes(), live);                  /* untouched */
	}
	assert_int_equal(heap_bytes_in_use(H), live - cached);
	for (int i = 0; i < NS; i++) {                              /* LIFO per class */
		assert_ptr_equal(heap_alloc(H, sizes[i]), p[i]);
		assert_int_equal(heap_free(H, p[i]), 0);
	}
	th_quiesce(H);                                              /* drained: exact */
	assert_int_equal(walk_bytes(), live - cached);
	for (int i = 0; i < NS; i++) {
		free_again(p[i], 0);                                    /* free in its slab now */
	}
	/* a full cache: 4 blocks of 40 KiB wait in it, the rest go back to the slab */
	enum { N = 7 };
	char *b[N];
	uint64_t before = walk_bytes();
	for (int i = 0; i < N; i++)
		assert_non_null(b[i] = heap_alloc(H, 40000));
	size_t bs = heap_usable_size(H, b[0]);
	for (int i = 0; i < N; i++)
		assert_int_equal(heap_free(H, b[i]), 0);
	assert_int_equal(walk_bytes(), before + 4 * bs);
	free_again(b[N - 1], 0);
	free_again(b[0], 1);
	assert_int_equal(walk_bytes(), before + 4 * bs);
	for (int i = 3; i >= 0; i--)
		assert_ptr_equal(heap_alloc(H, 40000), b[i]);
	for (int i = 0; i < 4; i++)
		assert_int_equal(heap_free(H, b[i]), 0);
	/* a thread's exit drains its caches of every class */
	pthread_t t;
	void *rc;
	uint64_t now = walk_bytes();
	assert_int_equal(pthread_create(&t, NULL, cache_large_and_exit, (void *)sizes), 0);
	pthread_join(t, &rc);
	assert_non_null(rc);
	assert_int_equal(walk_bytes(), now);
	for (int i = 0; i < NS; i++) {
		assert_int_equal(heap_free(H, keep[i]), 0);
		for (int j = 0; j < next[i]; j++)
			assert_int_equal(heap_free(H, ext[i][j]), 0);
	}
	check_ok(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_zero_and_null),
		cmocka_unit_test(test_alignment),
		cmocka_unit_test(test_realloc_inplace),
		cmocka_unit_test(test_calloc_overflow),
		cmocka_unit_test(test_enomem_then_recover),
		cmocka_unit_test(test_full_slabs_reused),
		cmocka_unit_test(test_sparse_holes_before_enomem),
		cmocka_unit_test(test_invalid_free),
		cmocka_unit_test(test_invalid_free_fast),
		cmocka_unit_test(test_root),
		cmocka_unit_test(test_front_cache),
		cmocka_unit_test(test_front_cache_full),
		cmocka_unit_test(test_front_cache_large),
		cmocka_unit_test(test_format_versions),
		cmocka_unit_test(test_attach_reads_metadata_only),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_thread_exit_and_adopt),
		cmocka_unit_test(test_lock_all_while_running),
		cmocka_unit_test(test_attach_rejects),
		cmocka_unit_test(test_fork_after_other_heap),
		cmocka_unit_test(test_fork_while_running),
		cmocka_unit_test(test_format_zeroed),
		cmocka_unit_test(test_format_over_garbage),
		cmocka_unit_test(test_block_size_offsets),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
