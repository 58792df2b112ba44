/*
 * test_heap_remote.c -- frees from a thread that does not own the block's
 * slab (remote frees), in heap format 4 (docs/HEAP.md, "Remote frees"): one
 * atomic OR of the block's rbit, a hint in the slab header, the owner
 * collecting the rbits when its slab runs dry.
 *
 *  - a block freed by one thread and again by another is refused with
 *    ENOENT and a message, before and after the owner collected it, and
 *    the heap is untouched (walk, bytes in use);
 *  - two threads freeing the same blocks at once: exactly one free of each
 *    succeeds;
 *  - the owner hands remote-freed blocks out again (the high-water mark
 *    does not move), in this process, in a fork child, and in a copy of
 *    the quiesced segment attached anew (what a checkpoint holds);
 *  - a slab whose blocks wait in rbits with the hint cleared (a process
 *    killed between a remote free's OR and its hint store) is a valid heap
 *    whose blocks are collected all the same;
 *  - kill -9 of a process with remote frees waiting in a file-backed
 *    segment: the dead heap walks, attaches, and its blocks are reused;
 *  - a heap made by the format 3 code, with remote-free lists
 *    (tests/fixtures/heap_v3.h, from tests/fixtures/gen_heap_v3.c), walks
 *    and attaches: the upgrade collects the lists, its live blocks are
 *    intact, its freed ones are refused and handed out again;
 *  - an owner that stays idle: another thread frees all its blocks and then
 *    allocates as many; before the heap grows it takes the idle owner's
 *    slabs (heap_steal_idle), so the high-water mark stays where it was
 *    (without it, it grows by the blocks' whole size), and the owner goes
 *    on allocating and freeing (adopting slabs as any thread does);
 *  - two threads that free each other's blocks while the heap grows (so
 *    each takes the other's slabs while it is running): every block is
 *    handed out once (its pattern intact), the heap exact at the end;
 *  - heap_validate_all while another thread, inside the heap, grows it
 *    for a new slab: the slabs it counts and those on the lists are of
 *    the same instant (a check that read the high-water mark before the
 *    others had left the heap missed the new slab and called the heap
 *    damaged).
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "test_heap_common.h"
#include "fixtures/heap_v3.h"
#include "heap/types.h"

#define SEG_SIZE ((size_t)64 << 20)
#define M 20000                 /* blocks of BSZ bytes a test allocates */
#define BSZ 64
#define SLACK ((size_t)4 << 16) /* growth of the high-water mark allowed for reuse */

static struct th_seg seg;
static struct heap *H;
static void *blk[M];

static int
setup(void **state)
{
	(void)state;
	H = th_new_heap(&seg, "remote.seg", SEG_SIZE, 0);
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

/* what a freeing thread does: free blk[i] for i = from, from + step, ... until to, counting */
struct job {
	int from, to, step;
	int ok, enoent, bad;            /* bad: -1 with another errno, or no message */
	const char *want;               /* the message a refusal must hold */
	pthread_barrier_t *start;
};

static void *
freer(void *arg)
{
	struct job *j = arg;
	if (j->start)
		pthread_barrier_wait(j->start);
	for (int i = j->from; i != j->to; i += j->step) {
		ckpt_err_clear();
		errno = 0;
		if (heap_free(H, blk[i]) == 0)
			j->ok++;
		else if (errno == ENOENT && (!j->want || th_errmsg_has(j->want)))
			j->enoent++;
		else
			j->bad++;
	}
	return NULL;
}

/* run_freer -- run one freeing thread to its end */
static void
run_freer(struct job *j)
{
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, freer, j), 0);
	pthread_join(t, NULL);
}

/* alloc_all -- blk[0, n) = n new blocks of BSZ bytes from this thread */
static void
alloc_all(int n)
{
	for (int i = 0; i < n; i++) {
		blk[i] = heap_alloc(H, BSZ);
		assert_non_null(blk[i]);
		memset(blk[i], i & 0xff, BSZ);
	}
}

/* reuse_ok -- this thread allocates n blocks of BSZ bytes: the high-water mark
 * stays within SLACK (the remote-freed blocks were collected), then frees them */
static void
reuse_ok(struct heap *h, int n)
{
	size_t hw = heap_high_water(h);
	void **b = calloc((size_t)n, sizeof(*b));
	assert_non_null(b);
	for (int i = 0; i < n; i++)
		assert_non_null(b[i] = heap_alloc(h, BSZ));
	if (heap_high_water(h) > hw + SLACK)
		fail_msg("high-water mark grew from %zu to %zu: remote-freed blocks not reused",
				hw, (size_t)heap_high_water(h));
	for (int i = 0; i < n; i++)
		assert_int_equal(heap_free(h, b[i]), 0);
	free(b);
}

/*
 * test_double_free_two_threads -- blocks freed by one thread, then again by
 * another: refused ("already freed"), the heap exact; after the owner
 * collected them (it allocates until its slab runs dry), a third free from
 * another thread is refused as "not allocated", unless the block was handed
 * out again (then it is the owner's and the free is valid: not tried)
 */
static void
test_double_free_two_threads(void **state)
{
	(void)state;
	enum { N = 600 };
	alloc_all(N);
	struct job a = { .from = 0, .to = N, .step = 1 };
	run_freer(&a);
	assert_int_equal(a.ok, N);
	th_check_exact(H, seg.addr, 0);
	struct job b = { .from = 0, .to = N, .step = 1, .want = "already freed" };
	run_freer(&b);
	assert_int_equal(b.ok, 0);
	assert_int_equal(b.bad, 0);
	assert_int_equal(b.enoent, N);
	th_check_exact(H, seg.addr, 0);
	/* the owner collects: N allocations of the class run its slab dry */
	static void *again[N];
	int reused = 0;
	for (int i = 0; i < N; i++)
		assert_non_null(again[i] = heap_alloc(H, BSZ));
	for (int i = 0; i < N; i++) {
		int mine = 0;
		for (int k = 0; k < N && !mine; k++)
			mine = again[k] == blk[i];
		reused += mine;
		if (mine)
			blk[i] = NULL;
	}
	assert_true(reused > 0);
	for (int i = 0; i < N; i++) {
		if (!blk[i])
			continue;
		struct job c = { .from = i, .to = i + 1, .step = 1, .want = "not allocated" };
		run_freer(&c);
		assert_int_equal(c.enoent, 1);
	}
	th_check_exact(H, seg.addr, (uint64_t)N * BSZ);
	for (int i = 0; i < N; i++)
		assert_int_equal(heap_free(H, again[i]), 0);
	th_check_exact(H, seg.addr, 0);
}

/* test_free_race -- two threads free the same blocks at once: one free of each succeeds */
static void
test_free_race(void **state)
{
	(void)state;
	for (int round = 0; round < 4; round++) {
		alloc_all(M);
		pthread_barrier_t start;
		pthread_barrier_init(&start, NULL, 2);
		/* one forwards, one backwards: they meet in the middle */
		struct job a = { .from = 0, .to = M, .step = 1, .start = &start };
		struct job b = { .from = M - 1, .to = -1, .step = -1, .start = &start };
		pthread_t ta, tb;
		assert_int_equal(pthread_create(&ta, NULL, freer, &a), 0);
		assert_int_equal(pthread_create(&tb, NULL, freer, &b), 0);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		pthread_barrier_destroy(&start);
		assert_int_equal(a.bad + b.bad, 0);
		assert_int_equal(a.ok + b.ok, M);
		assert_int_equal(a.enoent + b.enoent, M);
		th_check_exact(H, seg.addr, 0);
		reuse_ok(H, M);
	}
}

/* test_reuse -- blocks freed by another thread are handed out again by their owner */
static void
test_reuse(void **state)
{
	(void)state;
	alloc_all(M);
	struct job a = { .from = 0, .to = M, .step = 1 };
	run_freer(&a);
	assert_int_equal(a.ok, M);
	th_check_exact(H, seg.addr, 0);
	reuse_ok(H, M);
	th_check_exact(H, seg.addr, 0);
}

/* test_collect_in_fork_child -- remote frees waiting at a fork: parent and
 * child each collect them (their own copy of the heap) */
static void
test_collect_in_fork_child(void **state)
{
	(void)state;
	static struct th_seg ps;
	heap_detach(H);
	H = NULL;
	th_unmap(&seg);
	H = th_new_heap(&ps, "remote-priv.seg", SEG_SIZE, 1);    /* private: a fork copies it */
	alloc_all(M);
	struct job a = { .from = 0, .to = M, .step = 2 };
	run_freer(&a);
	assert_int_equal(a.ok, M / 2);
	pid_t pid = tu_fork();
	if (pid == 0) {
		size_t hw = heap_high_water(H);
		int bad = 0;
		for (int i = 0; i < M / 2 && !bad; i++)
			bad = heap_alloc(H, BSZ) == NULL;
		bad |= (heap_high_water(H) > hw + SLACK) << 1;
		for (int i = 1; i < M && !bad; i += 2)
			bad = (heap_free(H, blk[i]) != 0) << 2;
		th_quiesce(H);
		bad |= (heap_check(ps.addr, heap_high_water(H), NULL) != 0) << 3;
		_exit(bad);
	}
	assert_int_equal(tu_wait_exit(pid), 0);
	th_check_exact(H, ps.addr, (uint64_t)(M / 2) * BSZ);
	reuse_ok(H, M / 2);
	for (int i = 1; i < M; i += 2)
		assert_int_equal(heap_free(H, blk[i]), 0);
	th_check_exact(H, ps.addr, 0);
	heap_detach(H);
	H = NULL;
	th_unmap(&ps);
	setup(NULL);
}

/* copy_seg -- an aligned copy of the first len bytes of seg (the rest zero) */
static uint8_t *
copy_seg(size_t len)
{
	uint8_t *c = aligned_alloc(HEAP_SEG_ALIGN, SEG_SIZE);
	assert_non_null(c);
	memcpy(c, seg.addr, len);
	memset(c + len, 0, SEG_SIZE - len);
	return c;
}

/* test_collect_in_copy -- the quiesced segment with remote frees waiting (a
 * checkpoint's image) walks with them free, attaches, and they are reused */
static void
test_collect_in_copy(void **state)
{
	(void)state;
	alloc_all(M);
	struct job a = { .from = 0, .to = M, .step = 2 };
	run_freer(&a);
	th_check_exact(H, seg.addr, (uint64_t)(M / 2) * BSZ);
	size_t hw = heap_high_water(H);
	uint8_t *c = copy_seg(hw);
	struct heap_summary s;
	th_walk_ok(c, hw, NULL, &s);
	assert_int_equal(s.bytes_allocated, (uint64_t)(M / 2) * BSZ);
	struct heap *h2 = heap_attach(c, SEG_SIZE, NULL, NULL);
	assert_non_null(h2);
	reuse_ok(h2, M / 2);
	th_check_exact(h2, c, (uint64_t)(M / 2) * BSZ);
	heap_detach(h2);
	free(c);
	for (int i = 1; i < M; i += 2)
		assert_int_equal(heap_free(H, blk[i]), 0);
	th_check_exact(H, seg.addr, 0);
}

/* test_hint_lost -- rbits set and the hint 0 in every slab (a process killed
 * between the OR and the hint store): valid, and the blocks are collected */
static void
test_hint_lost(void **state)
{
	(void)state;
	alloc_all(M);
	struct job a = { .from = 0, .to = M, .step = 1 };
	run_freer(&a);
	th_quiesce(H);
	heap_detach(H);
	H = NULL;
	int cleared = 0;
	for (int i = 0; i < M; i++) {    /* BSZ's slabs are one page: the header below */
		uint64_t *hint = (uint64_t *)(((uintptr_t)blk[i] & ~(uintptr_t)16383) + 40);
		cleared += *hint != 0;
		*hint = 0;
	}
	assert_true(cleared > 0);
	th_walk_ok(seg.addr, SEG_SIZE, NULL, NULL);
	H = heap_attach(seg.addr, SEG_SIZE, NULL, NULL);
	assert_non_null(H);
	th_check_exact(H, seg.addr, 0);
	reuse_ok(H, M);
	th_check_exact(H, seg.addr, 0);
	/* a hint that is neither 0 nor 1 is damage, named with its offset */
	void *x = heap_alloc(H, BSZ);
	assert_non_null(x);
	th_quiesce(H);
	heap_detach(H);
	H = NULL;
	uint64_t *hint = (uint64_t *)(((uintptr_t)x & ~(uintptr_t)16383) + 40);
	uint64_t keep = *hint;
	*hint = 0x1234;
	errno = 0;
	assert_int_equal(heap_check(seg.addr, SEG_SIZE, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(th_errmsg_has("hint"));
	*hint = keep;
	H = heap_attach(seg.addr, SEG_SIZE, NULL, NULL);
	assert_non_null(H);
}

/* test_kill_with_remote_frees -- a process killed with remote frees waiting
 * (and blocks in its front cache) leaves a file-backed heap that walks,
 * attaches, and whose remote-freed blocks are handed out again */
static void
test_kill_with_remote_frees(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = tu_fork();
	if (pid == 0) {
		close(fds[0]);
		alloc_all(M);
		struct job a = { .from = 0, .to = M, .step = 2 };
		run_freer(&a);
		for (int i = 1; i < 100; i += 2)
			heap_free(H, blk[i]);    /* into this thread's front cache (64 a class) */
		if (a.ok != M / 2 || write(fds[1], "r", 1) != 1)
			_exit(3);
		pause();
		_exit(4);
	}
	close(fds[1]);
	char ch;
	assert_int_equal(read(fds[0], &ch, 1), 1);
	close(fds[0]);
	kill(pid, SIGKILL);
	assert_int_equal(tu_wait_exit(pid), 128 + SIGKILL);
	heap_detach(H);     /* this process's handle: the child wrote the shared segment */
	H = NULL;
	struct heap_summary s;
	th_walk_ok(seg.addr, SEG_SIZE, NULL, &s);
	/* live: the odd blocks; the cached ones count as allocated (at most leaked) */
	assert_int_equal(s.bytes_allocated, (uint64_t)(M / 2) * BSZ);
	H = heap_attach(seg.addr, SEG_SIZE, NULL, NULL);
	assert_non_null(H);
	reuse_ok(H, M / 2);
	th_quiesce(H);
	assert_int_equal(heap_check(seg.addr, heap_high_water(H), NULL), 0);
}

/* test_upgrade_v3_fixture -- the format 3 code's heap (see the top) upgraded */
static void
test_upgrade_v3_fixture(void **state)
{
	(void)state;
	uint8_t *b = th_fixture(V3_SIZE, v3_words, sizeof(v3_words) / sizeof(v3_words[0]));
	uint32_t *ver = (uint32_t *)(b + 8);
	assert_int_equal(*ver, 3);
	/* remote lists: the small blocks' slab's list is not empty */
	uint64_t head;
	memcpy(&head, b + (v3_small[0] & ~(uint64_t)16383) + 40, 8);
	assert_int_not_equal(head, 0);
	struct heap_summary s, s4;
	th_walk_ok(b, V3_HW, NULL, &s);
	struct heap *h = heap_attach(b, V3_SIZE, NULL, NULL);
	assert_non_null(h);
	assert_int_equal(*ver, 4);
	th_walk_ok(b, V3_HW, NULL, &s4);
	/* live: small blocks 30..99 and the large one */
	uint64_t live = (uint64_t)(V3_NS - 30) * 112 + heap_usable_size(h, b + v3_big);
	assert_int_equal(s.bytes_allocated, live);
	assert_int_equal(s4.bytes_allocated, live);
	memcpy(&head, b + (v3_small[0] & ~(uint64_t)16383) + 40, 8);
	assert_int_equal(head, 0);      /* collected: the hint clear */
	for (int i = 0; i < V3_NS; i++) {
		void *p = b + v3_small[i];
		if (i < 30) {
			assert_int_equal(heap_usable_size(h, p), 0);
			continue;
		}
		uint64_t v;
		memcpy(&v, p, 8);
		assert_int_equal(v, 0x5500000000000000ull | (uint64_t)i);
		assert_int_equal(heap_usable_size(h, p), 112);
	}
	uint64_t v;
	memcpy(&v, b + v3_big, 8);
	assert_int_equal(v, 0x7700000000000000ull);
	assert_ptr_equal(heap_root(h), b + v3_small[30]);
	/* the freed small blocks are handed out again, each once, below the high-water mark */
	void *again[30];
	for (int i = 0; i < 30; i++) {
		assert_non_null(again[i] = heap_alloc(h, 100));
		assert_true((uint8_t *)again[i] < b + V3_HW);
		for (int k = 0; k < i; k++)
			assert_ptr_not_equal(again[i], again[k]);
		for (int k = 30; k < V3_NS; k++)
			assert_ptr_not_equal(again[i], b + v3_small[k]);
	}
	for (int i = 0; i < 30; i++)
		assert_int_equal(heap_free(h, again[i]), 0);
	for (int i = 30; i < V3_NS; i++)
		assert_int_equal(heap_free(h, b + v3_small[i]), 0);
	assert_int_equal(heap_set_root(h, NULL), 0);
	assert_int_equal(heap_free(h, b + v3_big), 0);
	th_check_exact(h, b, 0);
	heap_detach(h);
	free(b);
}

#define NI 60000                /* blocks of BSZ bytes of the idle owner: about 4 MiB of slabs */

struct refill {
	void **mine;            /* the idle owner's blocks: freed here */
	void **b;               /* then NI blocks allocated here */
	size_t hw;              /* the high-water mark after that */
};

static void *
refill_thread(void *arg)
{
	struct refill *r = arg;
	for (int i = 0; i < NI; i++)
		if (heap_free(H, r->mine[i]) != 0)
			return NULL;
	for (int i = 0; i < NI; i++) {
		if (!(r->b[i] = heap_alloc(H, BSZ)))
			return NULL;
		memset(r->b[i], 0x5a, BSZ);
	}
	r->hw = heap_high_water(H);
	return r;
}

/*
 * test_idle_owner -- this thread allocates NI blocks and stays idle while
 * another frees them all and allocates NI blocks itself: those come from
 * the idle owner's slabs (taken before the heap grew), not from fresh
 * pages. Then this thread allocates and frees again, and frees the other
 * thread's blocks: the heap is exact.
 */
static void
test_idle_owner(void **state)
{
	(void)state;
	struct refill r = { calloc(NI, sizeof(void *)), calloc(NI, sizeof(void *)), 0 };
	assert_non_null(r.mine);
	assert_non_null(r.b);
	for (int i = 0; i < NI; i++) {
		assert_non_null(r.mine[i] = heap_alloc(H, BSZ));
		memset(r.mine[i], 0xa5, BSZ);
	}
	size_t hw = heap_high_water(H);
	pthread_t t;
	void *ok = NULL;
	assert_int_equal(pthread_create(&t, NULL, refill_thread, &r), 0);
	pthread_join(t, &ok);
	assert_non_null(ok);
	if (r.hw > hw + SLACK)
		fail_msg("high-water mark grew from %zu to %zu: the idle owner's slabs, all "
				"of their blocks freed, were not taken", hw, r.hw);
	for (int i = 0; i < NI; i++) {
		assert_non_null(r.mine[i] = heap_alloc(H, BSZ));
		memset(r.mine[i], 0xa5, BSZ);
	}
	for (int i = 0; i < NI; i++) {
		for (int k = 0; k < BSZ; k++)
			assert_int_equal(((uint8_t *)r.b[i])[k], 0x5a);
		assert_int_equal(heap_free(H, r.b[i]), 0);
		assert_int_equal(heap_free(H, r.mine[i]), 0);
	}
	th_check_exact(H, seg.addr, 0);
	free(r.mine);
	free(r.b);
}

#define NX 4096                 /* blocks per batch of test_steal_busy */
#define ROUNDS 24

struct xchg {
	int me;
	pthread_barrier_t *bar;
	void *(*batch)[2][NX];  /* batch[round & 1][thread][i] */
	int bad;
};

/* xchg_thread -- per round: allocate a batch (growing sizes, own pattern),
 * meet, free and check the other thread's batch of the round */
static void *
xchg_thread(void *arg)
{
	struct xchg *x = arg;
	for (int r = 0; r < ROUNDS; r++) {
		size_t n = 16 + (size_t)(r * 37 + x->me * 11) % 1000;
		void **mine = x->batch[r & 1][x->me];
		for (int i = 0; i < NX; i++) {
			if (!(mine[i] = heap_alloc(H, n))) {
				x->bad++;
				mine[i] = NULL;
				continue;
			}
			memset(mine[i], 0x30 + x->me * 16 + (r & 15), n);
		}
		pthread_barrier_wait(x->bar);
		void **other = x->batch[r & 1][!x->me];
		size_t on = 16 + (size_t)(r * 37 + !x->me * 11) % 1000;
		for (int i = 0; i < NX; i++) {
			if (!other[i])
				continue;
			for (size_t k = 0; k < on; k++)
				if (((uint8_t *)other[i])[k] != 0x30 + !x->me * 16 + (r & 15)) {
					x->bad++;
					break;
				}
			if (heap_free(H, other[i]) != 0)
				x->bad++;
		}
		pthread_barrier_wait(x->bar);
	}
	return NULL;
}

/*
 * test_steal_busy -- two threads allocate batches of growing blocks and free
 * each other's: the heap grows while both run, so each takes the other's
 * slabs while that one is between calls. Every block keeps its pattern
 * until the other thread frees it (none handed out twice), the heap is
 * exact afterwards.
 */
static void
test_steal_busy(void **state)
{
	(void)state;
	static void *batch[2][2][NX];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 2);
	struct xchg x[2] = { { 0, &bar, batch, 0 }, { 1, &bar, batch, 0 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, xchg_thread, &x[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&bar);
	assert_int_equal(x[0].bad, 0);
	assert_int_equal(x[1].bad, 0);
	th_check_exact(H, seg.addr, 0);
}


/* a grow callback that, once armed, holds the growing thread inside the heap
 * until released */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int armed, inside, go;
} gate_cb = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static int
held_grow(void *arg, uint64_t off, uint64_t len)
{
	(void)arg;
	(void)off;
	(void)len;
	pthread_mutex_lock(&gate_cb.mu);
	if (gate_cb.armed) {
		gate_cb.armed = 0;
		gate_cb.inside = 1;
		pthread_cond_broadcast(&gate_cb.cv);
		while (!gate_cb.go)
			pthread_cond_wait(&gate_cb.cv, &gate_cb.mu);
	}
	pthread_mutex_unlock(&gate_cb.mu);
	return 0;
}

static struct heap *VH;

/* grower -- allocate BSZ blocks until the heap has grown once (its first
 * growth held in held_grow) */
static void *
grower(void *arg)
{
	(void)arg;
	size_t hw = heap_high_water(VH);
	while (heap_high_water(VH) == hw)
		if (!heap_alloc(VH, BSZ))
			return NULL;
	return VH;
}

static char vmsg[512];

static void *
validator(void *arg)
{
	int *rc = arg;
	*rc = heap_validate_all(VH);
	snprintf(vmsg, sizeof(vmsg), "%s", *rc ? ckpt_errormsg() : "");
	return NULL;
}

/*
 * test_validate_while_growing -- a thread is inside the heap, growing it
 * for a new slab (held in the grow callback), when heap_validate_all
 * starts; the validator waits for it (stop set), then it is let go: its new
 * slab lies past the high-water mark the validator found on entry.
 * heap_validate_all must count the slabs of the heap it holds quiesced.
 */
static void
test_validate_while_growing(void **state)
{
	(void)state;
	struct th_seg vs;
	th_map(&vs, tu_path("validate.seg"), SEG_SIZE, 0);
	assert_int_equal(heap_format(vs.addr, SEG_SIZE, held_grow, NULL), 0);
	VH = heap_attach(vs.addr, SEG_SIZE, held_grow, NULL);
	assert_non_null(VH);
	gate_cb.armed = 1;
	gate_cb.inside = gate_cb.go = 0;
	pthread_t g, v;
	assert_int_equal(pthread_create(&g, NULL, grower, NULL), 0);
	pthread_mutex_lock(&gate_cb.mu);
	while (!gate_cb.inside)
		pthread_cond_wait(&gate_cb.cv, &gate_cb.mu);
	pthread_mutex_unlock(&gate_cb.mu);
	/* the grower is inside the heap (busy): the validator stops the world
	 * and waits for it */
	int rc = -2;
	assert_int_equal(pthread_create(&v, NULL, validator, &rc), 0);
	while (!atomic_load(&VH->stop))
		sched_yield();
	pthread_mutex_lock(&gate_cb.mu);
	gate_cb.go = 1;
	pthread_cond_broadcast(&gate_cb.cv);
	pthread_mutex_unlock(&gate_cb.mu);
	void *ok = NULL;
	pthread_join(g, &ok);
	pthread_join(v, NULL);
	assert_non_null(ok);
	if (rc != 0)
		fail_msg("heap_validate_all: %s", vmsg);
	assert_int_equal(heap_validate_all(VH), 0);
	heap_detach(VH);
	th_unmap(&vs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_double_free_two_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collect_in_fork_child, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collect_in_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hint_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_with_remote_frees, setup, teardown),
		cmocka_unit_test(test_upgrade_v3_fixture),
		cmocka_unit_test_setup_teardown(test_idle_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_steal_busy, setup, teardown),
		cmocka_unit_test(test_validate_while_growing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
