/*
 * churn_bench.c -- the service-shaped workloads of issue 12, item 5, for
 * ckpt_alloc and its peers: throughput, resident memory, and the bytes the
 * allocator holds per byte the program asked for.
 *
 * One process measures one allocator on one workload; bench/run-churn.sh
 * runs them side by side (alternating, several rounds, medians, ratios).
 *
 *   churn_bench --allocator malloc|ckpt --workload larson|prodcons|realloc|frag
 *               [--ops N] [--window N] [--seed S] [--dir DIR] [--label NAME]
 *
 * "malloc" is whichever malloc the process resolves (glibc, or jemalloc /
 * mimalloc under LD_PRELOAD, as in alloc_bench.c).
 *
 * Workloads (sizes uniform in 16..256 B unless said):
 *   larson    two threads, each churning its own window of W slots (free a
 *             random slot, allocate into it); every 2*W steps the threads
 *             swap windows at a barrier, so from then on each frees the
 *             blocks the other allocated (a server's request objects
 *             handed between threads). ops = steps per thread.
 *   prodcons  a producer thread allocates blocks and passes them through a
 *             ring of 4096 entries to a consumer thread that frees them:
 *             every free is remote. ops = blocks.
 *   realloc   one thread, window W: pick a slot, grow its block by half
 *             again (16 B up to 64 KiB, then free it and start at 16 B
 *             again): a buffer growing with its input. ops = reallocs.
 *   frag      one thread, a long-running service compressed: ops steps in
 *             phases of W steps; each phase favours a different size band
 *             (16..256 B, 257 B..2 KiB, 2..16 KiB, then back), frees a
 *             random live block and allocates one, and at the end of each
 *             phase frees 3/4 of what is live. What is left says how the
 *             allocator reuses memory whose shape changed.
 *
 * Memory: rss_kb is VmRSS at the end with the live blocks still allocated,
 * minus VmRSS before the allocator was first used (ckpt: before
 * ckpt_create; its pool in /dev/shm counts, as shared memory). live_bytes
 * is the sum of the sizes asked for of the blocks live at that moment;
 * overhead = rss_kb * 1024 / live_bytes (1.0: nothing but the blocks).
 * peak_live_bytes is the most that was live at a phase end (frag) or the
 * final window (others), overhead_peak = rss_kb * 1024 / peak_live_bytes
 * (frag: the resident memory kept after the peak, per byte of the peak).
 *
 * Output: one JSON object on one line. Exit 0, 1 on a failure, 2 on usage.
 */
#include <errno.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libckpt.h>

#include "bench_rand.h"

enum kind { K_MALLOC, K_CKPT };
enum wl { W_LARSON, W_PRODCONS, W_REALLOC, W_FRAG };

static struct {
	enum kind kind;
	const char *kind_name, *label, *wl_name, *dir;
	enum wl wl;
	uint64_t ops, window, seed;
} O = { K_MALLOC, "malloc", NULL, "larson", "/dev/shm", W_LARSON, 2000000, 4096, 42 };

static ckpt_pool *g_ckpt;
static char pool_path[4096];
static pthread_barrier_t g_bar;

/* -- the allocator under test -------------------------------------------------- */

static inline __attribute__((always_inline)) void *
a_alloc(size_t n)
{
	return O.kind == K_CKPT ? ckpt_alloc(g_ckpt, n) : malloc(n);
}

static inline __attribute__((always_inline)) void
a_free(void *p)
{
	if (O.kind == K_CKPT)
		ckpt_free(g_ckpt, p);
	else
		free(p);
}

static inline __attribute__((always_inline)) void *
a_realloc(void *p, size_t n)
{
	return O.kind == K_CKPT ? ckpt_realloc(g_ckpt, p, n) : realloc(p, n);
}

/* -- helpers -------------------------------------------------------------------- */

/* pick -- uniform in [lo, hi] from the low 16 bits of r */
static inline size_t
pick(uint64_t r, size_t lo, size_t hi)
{
	return in_range(r & 0xffff, lo, hi);
}

/* slot_of -- uniform slot in [0, n) from the high 32 bits of r */
static inline uint64_t
slot_of(uint64_t r, uint64_t n)
{
	return ((r >> 32) * n) >> 32;
}

/* rss_kb -- VmRSS of this process */
static long
rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void
fail(const char *what)
{
	fprintf(stderr, "churn_bench: %s: %s\n", what,
		O.kind == K_CKPT ? ckpt_errormsg() : strerror(errno));
	exit(1);
}

/* blk -- a live block and the size asked for it */
struct blk {
	void *p;
	size_t n;
};

/* put -- allocate n bytes into b, touching the first and last 8 bytes */
static inline void
put(struct blk *b, size_t n)
{
	b->p = a_alloc(n);
	if (!b->p)
		fail("allocation failed");
	b->n = n;
	memset(b->p, 0xa5, 8);
	memset((char *)b->p + n - 8, 0x5a, 8);
}

static inline void
drop(struct blk *b)
{
	if (b->p)
		a_free(b->p);
	b->p = NULL;
	b->n = 0;
}

static uint64_t
live_of(const struct blk *v, uint64_t n)
{
	uint64_t t = 0;
	for (uint64_t i = 0; i < n; i++)
		t += v[i].n;
	return t;
}

/* -- larson ---------------------------------------------------------------------- */

static struct blk *g_win[2];

struct lw {
	unsigned idx;
	uint64_t rng;
};

static void *
larson_thread(void *arg)
{
	struct lw *w = arg;
	uint64_t per = 2 * O.window, done = 0;
	unsigned turn = 0;
	pthread_barrier_wait(&g_bar);
	while (done < O.ops) {
		struct blk *v = g_win[(w->idx + turn) & 1];
		uint64_t n = O.ops - done < per ? O.ops - done : per;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t r = rnd(&w->rng);
			struct blk *b = &v[slot_of(r, O.window)];
			drop(b);
			put(b, pick(r, 16, 256));
		}
		done += n;
		turn++;
		pthread_barrier_wait(&g_bar);   /* swap windows: frees become remote */
	}
	pthread_barrier_wait(&g_bar);
	return NULL;
}

/* larson -- returns ops done over both threads; *live set */
static uint64_t
larson(double *secs, uint64_t *live)
{
	uint64_t rng = O.seed;
	for (int t = 0; t < 2; t++) {
		g_win[t] = calloc(O.window, sizeof(struct blk));
		if (!g_win[t])
			fail("calloc");
		for (uint64_t i = 0; i < O.window; i++)
			put(&g_win[t][i], pick(rnd(&rng), 16, 256));
	}
	pthread_barrier_init(&g_bar, NULL, 3);
	pthread_t tid[2];
	struct lw w[2] = { { 0, O.seed + 1 }, { 1, O.seed + 2 } };
	for (int t = 0; t < 2; t++)
		pthread_create(&tid[t], NULL, larson_thread, &w[t]);
	pthread_barrier_wait(&g_bar);
	double t0 = now_s();
	/* the threads meet at every swap; the main thread follows them */
	uint64_t per = 2 * O.window;
	for (uint64_t done = 0; done < O.ops; done += per)
		pthread_barrier_wait(&g_bar);
	pthread_barrier_wait(&g_bar);
	*secs = now_s() - t0;
	for (int t = 0; t < 2; t++)
		pthread_join(tid[t], NULL);
	*live = live_of(g_win[0], O.window) + live_of(g_win[1], O.window);
	return 2 * O.ops;
}

/* -- producer / consumer ----------------------------------------------------------- */

#define RING 4096u
static struct blk g_ring[RING];
static _Atomic uint64_t g_head, g_tail;      /* head: produced, tail: consumed */

static void *
consumer(void *arg)
{
	(void)arg;
	uint64_t tail = 0;
	while (tail < O.ops) {
		uint64_t head = atomic_load_explicit(&g_head, memory_order_acquire);
		if (head == tail) {
			sched_yield();
			continue;
		}
		while (tail < head) {
			struct blk *b = &g_ring[tail % RING];
			if (((unsigned char *)b->p)[0] != 0xa5) {
				fprintf(stderr, "churn_bench: block overwritten\n");
				exit(1);
			}
			drop(b);
			tail++;
		}
		atomic_store_explicit(&g_tail, tail, memory_order_release);
	}
	return NULL;
}

static uint64_t
prodcons(double *secs, uint64_t *live)
{
	pthread_t tid;
	uint64_t rng = O.seed;
	double t0 = now_s();
	pthread_create(&tid, NULL, consumer, NULL);
	for (uint64_t head = 0; head < O.ops; head++) {
		while (head - atomic_load_explicit(&g_tail, memory_order_acquire) >= RING)
			sched_yield();
		put(&g_ring[head % RING], pick(rnd(&rng), 16, 256));
		if ((head & 63) == 63 || head + 1 == O.ops)
			atomic_store_explicit(&g_head, head + 1, memory_order_release);
	}
	pthread_join(tid, NULL);
	*secs = now_s() - t0;
	*live = 0;
	return O.ops;
}

/* -- realloc growth ----------------------------------------------------------------- */

static uint64_t
realloc_growth(double *secs, uint64_t *live)
{
	struct blk *v = calloc(O.window, sizeof(*v));
	uint64_t rng = O.seed;
	if (!v)
		fail("calloc");
	for (uint64_t i = 0; i < O.window; i++)
		put(&v[i], pick(rnd(&rng), 16, 256));
	double t0 = now_s();
	for (uint64_t i = 0; i < O.ops; i++) {
		uint64_t r = rnd(&rng);
		struct blk *b = &v[slot_of(r, O.window)];
		size_t n = b->n + b->n / 2;
		if (n > 65536) {
			drop(b);
			put(b, 16);
			continue;
		}
		void *q = a_realloc(b->p, n);
		if (!q)
			fail("realloc failed");
		if (((unsigned char *)q)[0] != 0xa5) {
			fprintf(stderr, "churn_bench: realloc lost the block's bytes\n");
			exit(1);
		}
		b->p = q;
		b->n = n;
		memset((char *)q + n - 8, 0x5a, 8);
	}
	*secs = now_s() - t0;
	*live = live_of(v, O.window);
	return O.ops;
}

/* -- fragmentation ------------------------------------------------------------------- */

static uint64_t g_peak_live;

static uint64_t
frag(double *secs, uint64_t *live)
{
	static const size_t band[4][2] = { { 16, 256 }, { 257, 2048 }, { 2049, 16384 }, { 16, 512 } };
	uint64_t cap = 4 * O.window;
	struct blk *v = calloc(cap, sizeof(*v));
	uint64_t rng = O.seed, n = 0, phase = 0;
	if (!v)
		fail("calloc");
	double t0 = now_s();
	for (uint64_t i = 0; i < O.ops; i++) {
		uint64_t r = rnd(&rng);
		const size_t *bd = band[phase & 3];
		if (n > 0 && (r >> 16 & 1)) {
			uint64_t k = slot_of(r, n);
			drop(&v[k]);
			v[k] = v[--n];
		}
		if (n < cap)
			put(&v[n++], pick(r, bd[0], bd[1]));
		if ((i + 1) % O.window == 0) {
			uint64_t l = live_of(v, n);
			if (l > g_peak_live)
				g_peak_live = l;
			/* the end of a phase: most of it goes */
			for (uint64_t k = 0; k < n;) {
				if (rnd(&rng) & 3) {
					drop(&v[k]);
					v[k] = v[--n];
				} else {
					k++;
				}
			}
			phase++;
		}
	}
	*secs = now_s() - t0;
	*live = live_of(v, n);
	return O.ops;
}

/* -- setup ----------------------------------------------------------------------------- */

static void
usage(const char *msg)
{
	fprintf(stderr, "churn_bench: %s\nusage: churn_bench --allocator malloc|ckpt "
		"--workload larson|prodcons|realloc|frag\n"
		"       [--ops N] [--window N] [--seed S] [--dir DIR] [--label NAME]\n", msg);
	exit(2);
}

static const char *
malloc_lib(void)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	if (sym && dladdr(sym, &info) && info.dli_fname) {
		const char *b = strrchr(info.dli_fname, '/');
		return b ? b + 1 : info.dli_fname;
	}
	return "unknown";
}

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage("missing value");
		if (!strcmp(a, "--allocator")) {
			O.kind_name = v;
			if (!strcmp(v, "malloc")) O.kind = K_MALLOC;
			else if (!strcmp(v, "ckpt")) O.kind = K_CKPT;
			else usage("unknown allocator");
		} else if (!strcmp(a, "--workload")) {
			O.wl_name = v;
			if (!strcmp(v, "larson")) O.wl = W_LARSON;
			else if (!strcmp(v, "prodcons")) O.wl = W_PRODCONS;
			else if (!strcmp(v, "realloc")) O.wl = W_REALLOC;
			else if (!strcmp(v, "frag")) O.wl = W_FRAG;
			else usage("unknown workload");
		} else if (!strcmp(a, "--ops")) {
			O.ops = strtoull(v, NULL, 0);
		} else if (!strcmp(a, "--window")) {
			O.window = strtoull(v, NULL, 0);
		} else if (!strcmp(a, "--seed")) {
			O.seed = strtoull(v, NULL, 0);
		} else if (!strcmp(a, "--dir")) {
			O.dir = v;
		} else if (!strcmp(a, "--label")) {
			O.label = v;
		} else {
			usage("unknown option");
		}
	}
	if (O.ops < 1 || O.window < 1 || O.window > (1u << 22))
		usage("ops >= 1, window 1..4M");
	if (!O.label)
		O.label = O.kind_name;

	long rss0 = rss_kb();
	if (O.kind == K_CKPT) {
		snprintf(pool_path, sizeof(pool_path), "%s/churn_bench-%d.pool", O.dir,
			 (int)getpid());
		unlink(pool_path);
		struct ckpt_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		cfg.heap_size = (size_t)1 << 30;
		cfg.max_segments = 4;
		g_ckpt = ckpt_create(pool_path, &cfg);
		if (!g_ckpt)
			fail("ckpt_create");
	}
	double secs = 0;
	uint64_t live = 0, ops = 0;
	switch (O.wl) {
	case W_LARSON: ops = larson(&secs, &live); break;
	case W_PRODCONS: ops = prodcons(&secs, &live); break;
	case W_REALLOC: ops = realloc_growth(&secs, &live); break;
	case W_FRAG: ops = frag(&secs, &live); break;
	}
	long rss1 = rss_kb();
	uint64_t peak = g_peak_live > live ? g_peak_live : live;
	long drss = rss1 - rss0;
	printf("{\"allocator\":\"%s\",\"label\":\"%s\",\"malloc_lib\":\"%s\",\"workload\":\"%s\","
	       "\"ops\":%" PRIu64 ",\"window\":%" PRIu64 ",\"seconds\":%.6f,\"ops_per_s\":%.1f,"
	       "\"rss_kb\":%ld,\"live_bytes\":%" PRIu64 ",\"peak_live_bytes\":%" PRIu64 ","
	       "\"overhead\":%.3f,\"overhead_peak\":%.3f,\"ok\":true}\n",
	       O.kind_name, O.label, O.kind == K_CKPT ? "libckpt" : malloc_lib(), O.wl_name,
	       ops, O.window, secs, secs > 0 ? ops / secs : 0.0, drss, live, peak,
	       live ? drss * 1024.0 / live : 0.0, peak ? drss * 1024.0 / peak : 0.0);
	if (g_ckpt) {
		ckpt_close(g_ckpt);
		unlink(pool_path);
	}
	return 0;
}
