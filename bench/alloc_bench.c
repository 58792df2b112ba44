/*
 * alloc_bench.c -- alloc/free throughput of ckpt_alloc against its peers.
 *
 * One process measures one allocator on one workload; bench/run-alloc.sh
 * runs the processes side by side (alternating, several rounds) and
 * bench/alloc_summary.py turns their output into medians and ratios.
 *
 *   alloc_bench --allocator malloc|ckpt|pmemobj --workload small|mixed
 *               [--threads N] [--ops N] [--window N] [--seed S] [--dir DIR]
 *               [--label NAME] [--pool-size BYTES]
 *
 * "malloc" calls malloc/free, whichever library provides them: the plain
 * binary measures glibc, and the same binary under LD_PRELOAD of
 * libjemalloc.so.2 / libmimalloc.so.2 measures those (the output names the
 * library malloc was resolved to, so a preload that did not take is seen).
 *
 * The pattern, per thread: a window of W slots is filled, then each step
 * draws a random slot, frees its block and allocates a block of a random
 * size into it, writing the block's first 16 bytes (its address and size);
 * the free checks those bytes, so an allocator that hands out overlapping
 * blocks is caught. Thread t uses the random sequence of seed + t, the same
 * for every allocator. The window is filled and churned (4*W steps) before
 * timing, so the timed part is the steady state: the first touch of the
 * working set is not in it (page faults during the timed part are counted
 * and printed). The figure is pairs (one free + one alloc) per second over
 * all threads, wall clock from the first thread's start to the last one's
 * end.
 *
 * Sizes: "small" is uniform in 16..256 B. "mixed" is 80% uniform in
 * 16..256 B, 15% uniform in 257 B..4 KiB, 5% uniform in 4 KiB+1..64 KiB.
 *
 * Output: one JSON object on one line on stdout. Exit 0 on success, 1 on a
 * failure (allocation failed, corrupted block), 2 on bad usage.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <libckpt.h>
#include <libpmemobj.h>

#include "bench_rand.h"

enum kind { K_MALLOC, K_CKPT, K_PMEMOBJ };

struct opts {
	enum kind kind;
	const char *kind_name;
	const char *label;
	int mixed;
	unsigned threads;
	uint64_t ops;      /* timed pairs per thread */
	uint64_t window;   /* live slots per thread */
	uint64_t seed;
	const char *dir;
	uint64_t pool_size;
};

static struct opts O = {
	.kind = K_MALLOC, .kind_name = "malloc", .label = NULL, .mixed = 0,
	.threads = 1, .ops = 2000000, .window = 8192, .seed = 42,
	.dir = "/dev/shm", .pool_size = 0,
};

static ckpt_pool *g_ckpt;
static PMEMobjpool *g_pop;

#define TAG_MAGIC 0x9e3779b97f4a7c15ull

struct slot {
	void *p;
	PMEMoid oid;   /* pmemobj only */
};

struct worker {
	pthread_t tid;
	unsigned idx;
	struct slot *slots;
	uint64_t rng;
	double t_start, t_end;
	uint64_t corrupt;
	int failed;
	char errmsg[256];
};

static pthread_barrier_t g_barrier;

/*
 * draw -- one step: slot from bits 32..63, size class from bits 16..31,
 * size within the class from bits 0..15.
 */
static inline size_t
draw_size(uint64_t r, int mixed)
{
	uint64_t lo16 = r & 0xffff;
	if (!mixed)
		return in_range(lo16, 16, 256);
	uint64_t cls = (r >> 16) & 0xffff;     /* 0..65535 */
	if (cls < 52429)                       /* 80% */
		return in_range(lo16, 16, 256);
	if (cls < 52429 + 9830)                /* 15% */
		return in_range(lo16, 257, 4096);
	return in_range(lo16, 4097, 65536);    /* 5% */
}

static inline uint64_t
draw_slot(uint64_t r, uint64_t window)
{
	return ((r >> 32) * window) >> 32;
}

static inline void
stamp(void *p, size_t size)
{
	uint64_t *q = p;
	q[0] = (uint64_t)(uintptr_t)p ^ TAG_MAGIC;
	q[1] = size;
}

static inline int
stamp_ok(const void *p)
{
	const uint64_t *q = p;
	return q[0] == ((uint64_t)(uintptr_t)p ^ TAG_MAGIC) && q[1] >= 16 && q[1] <= 65536;
}

/* -- the three allocators, inlined into their own copy of the loop ------- */

static inline __attribute__((always_inline)) int
do_alloc(enum kind k, struct slot *s, size_t size)
{
	switch (k) {
	case K_MALLOC:
		s->p = malloc(size);
		break;
	case K_CKPT:
		s->p = ckpt_alloc(g_ckpt, size);
		break;
	case K_PMEMOBJ:
		if (pmemobj_alloc(g_pop, &s->oid, size, 0, NULL, NULL) != 0)
			s->p = NULL;
		else
			s->p = pmemobj_direct(s->oid);
		break;
	}
	if (__builtin_expect(s->p == NULL, 0))
		return -1;
	stamp(s->p, size);
	return 0;
}

static inline __attribute__((always_inline)) void
do_free(enum kind k, struct slot *s)
{
	switch (k) {
	case K_MALLOC:
		free(s->p);
		break;
	case K_CKPT:
		ckpt_free(g_ckpt, s->p);
		break;
	case K_PMEMOBJ:
		pmemobj_free(&s->oid);
		break;
	}
	s->p = NULL;
}

static const char *
alloc_error(enum kind k)
{
	switch (k) {
	case K_CKPT: return ckpt_errormsg();
	case K_PMEMOBJ: return pmemobj_errormsg();
	default: return strerror(errno);
	}
}

/* steps -- n free+alloc steps on w's window; -1 on allocation failure */
static inline __attribute__((always_inline)) int
steps(enum kind k, struct worker *w, uint64_t n)
{
	const uint64_t window = O.window;
	const int mixed = O.mixed;
	struct slot *slots = w->slots;
	uint64_t rng = w->rng;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = rnd(&rng);
		struct slot *s = &slots[draw_slot(r, window)];
		if (__builtin_expect(!stamp_ok(s->p), 0))
			w->corrupt++;
		do_free(k, s);
		if (__builtin_expect(do_alloc(k, s, draw_size(r, mixed)) != 0, 0)) {
			w->rng = rng;
			return -1;
		}
	}
	w->rng = rng;
	return 0;
}

static inline __attribute__((always_inline)) void
run_worker(enum kind k, struct worker *w)
{
	int ok = 1;
	/* fill the window, then churn it: first touch happens here, untimed */
	for (uint64_t i = 0; i < O.window && ok; i++) {
		uint64_t r = rnd(&w->rng);
		if (do_alloc(k, &w->slots[i], draw_size(r, O.mixed)) != 0)
			ok = 0;
	}
	if (ok && steps(k, w, 4 * O.window) != 0)
		ok = 0;
	if (!ok) {
		w->failed = 1;
		snprintf(w->errmsg, sizeof(w->errmsg), "warm-up allocation failed: %s",
			 alloc_error(k));
	}

	pthread_barrier_wait(&g_barrier);
	w->t_start = now_s();
	if (ok && steps(k, w, O.ops) != 0) {
		w->failed = 1;
		snprintf(w->errmsg, sizeof(w->errmsg), "allocation failed: %s",
			 alloc_error(k));
	}
	w->t_end = now_s();
	pthread_barrier_wait(&g_barrier);

	/* hand everything back (untimed) so pools close clean */
	for (uint64_t i = 0; i < O.window; i++) {
		if (w->slots[i].p) {
			if (!stamp_ok(w->slots[i].p))
				w->corrupt++;
			do_free(k, &w->slots[i]);
		}
	}
}

static void *thr_malloc(void *a) { run_worker(K_MALLOC, a); return NULL; }
static void *thr_ckpt(void *a) { run_worker(K_CKPT, a); return NULL; }
static void *thr_pmemobj(void *a) { run_worker(K_PMEMOBJ, a); return NULL; }

/* -- setup ---------------------------------------------------------------- */

static void
die_usage(const char *msg)
{
	fprintf(stderr, "alloc_bench: %s\n"
		"usage: alloc_bench --allocator malloc|ckpt|pmemobj --workload small|mixed\n"
		"       [--threads N] [--ops N] [--window N] [--seed S] [--dir DIR]\n"
		"       [--label NAME] [--pool-size BYTES]\n", msg);
	exit(2);
}

static uint64_t
parse_u64(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		die_usage(what);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		die_usage(what);
	return v;
}

static void
parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			die_usage("help");
		if (!v)
			die_usage("missing value");
		i++;
		if (!strcmp(a, "--allocator")) {
			O.kind_name = v;
			if (!strcmp(v, "malloc")) O.kind = K_MALLOC;
			else if (!strcmp(v, "ckpt")) O.kind = K_CKPT;
			else if (!strcmp(v, "pmemobj")) O.kind = K_PMEMOBJ;
			else die_usage("unknown allocator");
		} else if (!strcmp(a, "--workload")) {
			if (!strcmp(v, "small")) O.mixed = 0;
			else if (!strcmp(v, "mixed")) O.mixed = 1;
			else die_usage("unknown workload");
		} else if (!strcmp(a, "--threads")) {
			O.threads = (unsigned)parse_u64(v, "bad --threads");
		} else if (!strcmp(a, "--ops")) {
			O.ops = parse_u64(v, "bad --ops");
		} else if (!strcmp(a, "--window")) {
			O.window = parse_u64(v, "bad --window");
		} else if (!strcmp(a, "--seed")) {
			O.seed = parse_u64(v, "bad --seed");
		} else if (!strcmp(a, "--dir")) {
			O.dir = v;
		} else if (!strcmp(a, "--label")) {
			O.label = v;
		} else if (!strcmp(a, "--pool-size")) {
			O.pool_size = parse_u64(v, "bad --pool-size");
		} else {
			die_usage("unknown option");
		}
	}
	if (O.threads < 1 || O.threads > 64 || O.window < 1 || O.window > (1u << 24))
		die_usage("threads must be 1..64, window 1..16M");
	if (!O.label)
		O.label = O.kind_name;
}

/* malloc_lib -- the file that provides the malloc this process calls */
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

static const char *
fs_name(const char *dir)
{
	struct statfs sf;
	if (statfs(dir, &sf) != 0)
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case 0x01021994: return "tmpfs";
	case 0xEF53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	default: return "other";
	}
}

static char pool_path[4096];

static double
setup(void)
{
	double t0 = now_s();
	switch (O.kind) {
	case K_MALLOC:
		break;
	case K_CKPT: {
		snprintf(pool_path, sizeof(pool_path), "%s/alloc_bench-ckpt-%d.pool",
			 O.dir, (int)getpid());
		unlink(pool_path);
		struct ckpt_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		cfg.heap_size = O.pool_size ? O.pool_size : (size_t)1 << 30;
		cfg.max_segments = 4;
		g_ckpt = ckpt_create(pool_path, &cfg);
		if (!g_ckpt) {
			fprintf(stderr, "alloc_bench: ckpt_create %s: %s\n", pool_path,
				ckpt_errormsg());
			exit(1);
		}
		break;
	}
	case K_PMEMOBJ: {
		snprintf(pool_path, sizeof(pool_path), "%s/alloc_bench-pmemobj-%d.pool",
			 O.dir, (int)getpid());
		unlink(pool_path);
		size_t sz = O.pool_size ? O.pool_size : (size_t)512 << 20;
		g_pop = pmemobj_create(pool_path, "alloc_bench", sz, 0600);
		if (!g_pop) {
			fprintf(stderr, "alloc_bench: pmemobj_create %s: %s\n", pool_path,
				pmemobj_errormsg());
			exit(1);
		}
		break;
	}
	}
	return now_s() - t0;
}

static void
teardown(void)
{
	if (g_ckpt) {
		if (ckpt_close(g_ckpt) != 0)
			fprintf(stderr, "alloc_bench: ckpt_close: %s\n", ckpt_errormsg());
		g_ckpt = NULL;
	}
	if (g_pop) {
		pmemobj_close(g_pop);
		g_pop = NULL;
	}
	if (pool_path[0])
		unlink(pool_path);
}

int
main(int argc, char **argv)
{
	parse_args(argc, argv);
	double setup_s = setup();

	struct worker *ws = calloc(O.threads, sizeof(*ws));
	if (!ws)
		return 1;
	for (unsigned t = 0; t < O.threads; t++) {
		ws[t].idx = t;
		ws[t].rng = O.seed + t;
		/* the slot arrays come from the system allocator for everyone */
		ws[t].slots = calloc(O.window, sizeof(struct slot));
		if (!ws[t].slots)
			return 1;
	}
	void *(*fn)(void *) = O.kind == K_CKPT ? thr_ckpt :
			      O.kind == K_PMEMOBJ ? thr_pmemobj : thr_malloc;

	pthread_barrier_init(&g_barrier, NULL, O.threads + 1);
	for (unsigned t = 0; t < O.threads; t++) {
		if (pthread_create(&ws[t].tid, NULL, fn, &ws[t]) != 0) {
			fprintf(stderr, "alloc_bench: pthread_create failed\n");
			return 1;
		}
	}
	pthread_barrier_wait(&g_barrier);   /* warm-ups done */
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	pthread_barrier_wait(&g_barrier);   /* timed part done */
	getrusage(RUSAGE_SELF, &r1);
	for (unsigned t = 0; t < O.threads; t++)
		pthread_join(ws[t].tid, NULL);

	double t0 = ws[0].t_start, t1 = ws[0].t_end;
	uint64_t corrupt = 0;
	int failed = 0;
	for (unsigned t = 0; t < O.threads; t++) {
		if (ws[t].t_start < t0) t0 = ws[t].t_start;
		if (ws[t].t_end > t1) t1 = ws[t].t_end;
		corrupt += ws[t].corrupt;
		if (ws[t].failed) {
			failed = 1;
			fprintf(stderr, "alloc_bench: thread %u: %s\n", t, ws[t].errmsg);
		}
	}
	teardown();

	double secs = t1 - t0;
	uint64_t pairs = O.ops * O.threads;
	const char *force = getenv("PMEM_IS_PMEM_FORCE");
	struct utsname un;
	uname(&un);
	printf("{\"allocator\":\"%s\",\"label\":\"%s\",\"malloc_lib\":\"%s\","
	       "\"workload\":\"%s\",\"threads\":%u,\"window\":%" PRIu64 ",\"seed\":%" PRIu64 ","
	       "\"ops_per_thread\":%" PRIu64 ",\"pairs\":%" PRIu64 ",\"seconds\":%.6f,"
	       "\"pairs_per_s\":%.1f,\"ns_per_pair_per_thread\":%.2f,"
	       "\"minflt\":%ld,\"majflt\":%ld,\"setup_s\":%.4f,"
	       "\"dir\":\"%s\",\"fs\":\"%s\",\"pmem_is_pmem_force\":\"%s\","
	       "\"corrupt\":%" PRIu64 ",\"ok\":%s,\"kernel\":\"%s\"}\n",
	       O.kind_name, O.label, malloc_lib(),
	       O.mixed ? "mixed" : "small", O.threads, O.window, O.seed,
	       O.ops, pairs, secs,
	       secs > 0 ? pairs / secs : 0.0,
	       pairs ? secs * 1e9 * O.threads / pairs : 0.0,
	       r1.ru_minflt - r0.ru_minflt, r1.ru_majflt - r0.ru_majflt, setup_s,
	       O.kind == K_MALLOC ? "" : O.dir, O.kind == K_MALLOC ? "" : fs_name(O.dir),
	       force ? force : "",
	       corrupt, (failed || corrupt) ? "false" : "true", un.release);
	if (corrupt)
		fprintf(stderr, "alloc_bench: %" PRIu64 " blocks found overwritten\n", corrupt);
	return (failed || corrupt) ? 1 : 0;
}
