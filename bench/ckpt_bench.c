/*
 * ckpt_bench.c -- checkpoint and restart time of libckpt against what a
 * program without libckpt does: write() its data to a file + fdatasync()
 * to save, read() it back to load. Run by bench/run-checkpoint.sh.
 *
 *   ckpt_bench [--sizes 64M,1G] [--reps N] [--dir DIR] [--rewrite PCT]
 *              [--keep N] [--chunk BYTES] [--threads N] [--smoke]
 *
 * The fork mode is the environment's (CKPT_FORK_MODE, e.g. cow), retention
 * --keep (default 1). --rewrite PCT (default 100) rewrites that percentage
 * of the 4 KiB pages before each save, scattered (a hash of the page and
 * the repetition picks them), in both programs. --threads N starts N more
 * threads that wait on a pipe for the whole run: in fork mode cow, a
 * checkpoint that re-bases the heap is then taken by a forked child
 * (docs/API.md, the thread rule), and this times that path.
 *
 * The data, per size S (user data actually written): S bytes in chunks of
 * 64 KiB - 64 B (--chunk: another size; 1 MiB makes them large blocks, no
 * slabs), linked from the root (struct root -> chunk -> chunk ...),
 * every word written. The plain program holds the same bytes in one
 * malloc'd buffer, touched before measuring.
 *
 * Per repetition, alternating (libckpt, then plain):
 *   save     libckpt: one word of every 4 KiB page rewritten, then
 *            ckpt_checkpoint() (copy, checksum, fdatasync, publish).
 *            plain: the same words rewritten, then write() of the whole
 *            buffer to a file + fdatasync().
 *   restart  libckpt: ckpt_open(LATEST) + the first ckpt_alloc (checksum
 *            verify, copy of the checkpoint into a new live segment);
 *            then to having read the whole structure from the root (walk
 *            every chunk, sum every word).
 *            plain: open() + read() of the whole file into a fresh malloc'd
 *            buffer (first touch of its pages included, as a restarting
 *            program pays it), then the same sum over it; and read() into
 *            a buffer faulted in beforehand (the plain program at its best),
 *            quoted beside.
 * The page cache is warm for both (files just written): restart from a cold
 * cache is not measured here. Repetition 0 is a warm-up and is dropped;
 * medians over the rest. Prints one markdown table per size.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libckpt.h>

#include "bench_rand.h"
#define BENCH_NAME "ckpt_bench"
#include "bench_stats.h"

#define MiB ((uint64_t)1 << 20)
/* the size of each chunk of user data (--chunk; the default is a slab class) */
static uint64_t chunk_bytes = (64u << 10) - 64;
/* CKPT_TEST_STEP_TIMES=1: libckpt writes each checkpoint step's time to
 * stderr; a line before each checkpoint says which (bench/ckpt_steps.py) */
static int step_times;
#define ROOT_MAGIC 0x54524f4f5242434bull

struct chunk {
	struct chunk *next;
	uint64_t nwords;
	uint64_t data[];
};

struct root {
	uint64_t magic;
	uint64_t nchunks;
	uint64_t bytes;           /* user data in the chunks */
	struct chunk *head;
};

/* build -- the root structure holding `bytes` of data, every word written */
static struct root *
build(ckpt_pool *p, uint64_t bytes)
{
	struct root *r = ckpt_calloc(p, 1, sizeof(*r));
	if (!r)
		die("ckpt_calloc: %s", ckpt_errormsg());
	r->magic = ROOT_MAGIC;
	struct chunk **link = &r->head;
	uint64_t left = bytes, k = 0;
	while (left) {
		uint64_t n = left < chunk_bytes ? left : chunk_bytes;
		struct chunk *c = ckpt_alloc(p, sizeof(*c) + n);
		if (!c)
			die("ckpt_alloc of chunk %llu: %s", (unsigned long long)k,
				ckpt_errormsg());
		c->next = NULL;
		c->nwords = n / 8;
		for (uint64_t i = 0; i < c->nwords; i++)
			c->data[i] = k * 8191 + i;
		*link = c;
		link = &c->next;
		left -= n;
		k++;
	}
	r->nchunks = k;
	r->bytes = bytes;
	if (ckpt_set_root(p, r) < 0)
		die("ckpt_set_root: %s", ckpt_errormsg());
	return r;
}

/* walk -- read every word reachable from the root; returns their sum */
static uint64_t
walk(const struct root *r)
{
	if (!r || r->magic != ROOT_MAGIC)
		die("restarted heap has no root structure");
	uint64_t sum = 0, k = 0, bytes = 0;
	for (const struct chunk *c = r->head; c; c = c->next, k++) {
		for (uint64_t i = 0; i < c->nwords; i++)
			sum += c->data[i];
		bytes += c->nwords * 8;
	}
	if (k != r->nchunks || bytes != r->bytes)
		die("restarted structure: %llu chunks, %llu bytes; expected %llu, %llu",
			(unsigned long long)k, (unsigned long long)bytes,
			(unsigned long long)r->nchunks, (unsigned long long)r->bytes);
	return sum;
}

static unsigned rewrite_pct = 100;
static unsigned keep = 1;

/* picked -- whether page g is rewritten at stamp s (rewrite_pct of them, scattered) */
static int
picked(uint64_t g, uint64_t s)
{
	if (rewrite_pct >= 100)
		return 1;
	uint64_t z = (g + 1) * 0x9e3779b97f4a7c15ull ^ s * 0xbf58476d1ce4e5b9ull;
	z ^= z >> 31;
	z *= 0x94d049bb133111ebull;
	z ^= z >> 29;
	return z % 10000 < rewrite_pct * 100ull;
}

/* dirty -- rewrite one word in each picked 4 KiB of the structure (stamp s) */
static void
dirty(struct root *r, uint64_t s)
{
	uint64_t g = 0;
	for (struct chunk *c = r->head; c; c = c->next)
		for (uint64_t i = 0; i < c->nwords; i += 512, g++)
			if (picked(g, s))
				c->data[i] += s;
}

/* plain_dirty -- the same words of the plain program's buffer (same chunking) */
static void
plain_dirty(uint64_t *buf, uint64_t words, uint64_t s)
{
	const uint64_t per = chunk_bytes / 8;
	uint64_t g = 0;
	for (uint64_t w = 0; w < words; w += per)
		for (uint64_t i = 0; i < per && w + i < words; i += 512, g++)
			if (picked(g, s))
				buf[w + i] += s;
}

static uint64_t
sum_buf(const uint64_t *b, uint64_t words)
{
	uint64_t sum = 0;
	for (uint64_t i = 0; i < words; i++)
		sum += b[i];
	return sum;
}

static void
write_all(int fd, const void *buf, uint64_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write: %s", strerror(errno));
		}
		p += n;
		len -= (uint64_t)n;
	}
}

static void
read_all(int fd, void *buf, uint64_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len > (1u << 30) ? (1u << 30) : len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			die("read: %s", n < 0 ? strerror(errno) : "short file");
		}
		p += n;
		len -= (uint64_t)n;
	}
}

/* plain_save -- what a program without libckpt does to save: the whole buffer */
static void
plain_save(const char *path, const void *buf, uint64_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	write_all(fd, buf, len);
	if (fdatasync(fd) < 0)
		die("fdatasync: %s", strerror(errno));
	close(fd);
}

/* plain_load -- open + read the whole file into buf */
static void
plain_load(const char *path, void *buf, uint64_t len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	read_all(fd, buf, len);
	close(fd);
}

struct result {
	double grow;                      /* pool's allocated bytes added per checkpoint, median */
	double ck_save, pl_save;
	double ck_first, ck_walk;         /* restart to first alloc, to whole walk */
	double pl_load, pl_walk;          /* fresh buffer: read, read + sum */
	double pl_load_warm, pl_walk_warm; /* pre-faulted buffer */
};

static void
run_size(const char *dir, uint64_t bytes, int reps, struct result *res)
{
	char pool[4200], file[4200];
	snprintf(pool, sizeof(pool), "%s/bench.pool", dir);
	snprintf(file, sizeof(file), "%s/bench.plain", dir);
	unlink(pool);
	unlink(file);

	/* room for the data with allocator overhead; live + keep + 2 checkpoints */
	struct ckpt_config cfg = {
		.heap_size = (size_t)(bytes + bytes / 4 + 64 * MiB),
		.max_segments = keep + 3,
		.keep_checkpoints = keep,
	};
	ckpt_pool *p = ckpt_create(pool, &cfg);
	if (!p)
		die("ckpt_create %s: %s", pool, ckpt_errormsg());
	struct root *r = build(p, bytes);
	uint64_t words = bytes / 8;
	uint64_t *buf = malloc(bytes);
	if (!buf)
		die("out of memory");
	{
		uint64_t w = 0;
		for (struct chunk *c = r->head; c; c = c->next) {
			memcpy(buf + w, c->data, c->nwords * 8);
			w += c->nwords;
		}
	}

	double *v[8];
	for (int i = 0; i < 8; i++)
		v[i] = calloc((size_t)reps + 1, sizeof(double));

	/* save, alternating; the pool's allocated bytes before and after each */
	double *grow = calloc((size_t)reps + 1, sizeof(double));
	if (!grow)
		die("out of memory");
	for (int k = 0; k <= reps; k++) {
		dirty(r, (uint64_t)k + 1);
		struct stat st0, st1;
		stat(pool, &st0);
		if (step_times)
			fprintf(stderr, "ckpt-bench checkpoint %llu %d\n",
				(unsigned long long)(bytes / MiB), k);
		double t0 = now_s();
		if (ckpt_checkpoint(p, "bench", NULL) < 0)
			die("ckpt_checkpoint: %s", ckpt_errormsg());
		v[0][k] = now_s() - t0;
		stat(pool, &st1);
		grow[k] = ((double)st1.st_blocks - (double)st0.st_blocks) * 512.0;

		plain_dirty(buf, words, (uint64_t)k + 1);
		t0 = now_s();
		plain_save(file, buf, bytes);
		v[1][k] = now_s() - t0;
	}
	uint64_t want = sum_buf(buf, words);
	if (walk(r) != want)
		die("libckpt and plain data diverged");
	if (ckpt_close(p) < 0)
		die("ckpt_close: %s", ckpt_errormsg());

	/* restart, alternating */
	uint64_t *warm = malloc(bytes);
	if (!warm)
		die("out of memory");
	memset(warm, 1, bytes);
	for (int k = 0; k <= reps; k++) {
		double t0 = now_s();
		ckpt_pool *q = ckpt_open(pool, CKPT_LATEST, NULL);
		if (!q)
			die("ckpt_open: %s", ckpt_errormsg());
		void *x = ckpt_alloc(q, 64);
		if (!x)
			die("ckpt_alloc after restart: %s", ckpt_errormsg());
		double t1 = now_s();
		uint64_t s = walk(ckpt_root(q));
		double t2 = now_s();
		if (s != want)
			die("restarted data differs");
		v[2][k] = t1 - t0;
		v[3][k] = t2 - t0;
		if (ckpt_close(q) < 0)
			die("ckpt_close: %s", ckpt_errormsg());

		t0 = now_s();
		uint64_t *fresh = malloc(bytes);
		if (!fresh)
			die("out of memory");
		plain_load(file, fresh, bytes);
		t1 = now_s();
		s = sum_buf(fresh, words);
		t2 = now_s();
		if (s != want)
			die("plain reload differs");
		v[4][k] = t1 - t0;
		v[5][k] = t2 - t0;
		free(fresh);

		t0 = now_s();
		plain_load(file, warm, bytes);
		t1 = now_s();
		s = sum_buf(warm, words);
		t2 = now_s();
		if (s != want)
			die("plain reload differs");
		v[6][k] = t1 - t0;
		v[7][k] = t2 - t0;
	}
	/* repetition 0 is the warm-up */
	double *m[8];
	for (int i = 0; i < 8; i++)
		m[i] = &v[i][1];
	res->grow = median(&grow[1], reps);
	free(grow);
	res->ck_save = median(m[0], reps);
	res->pl_save = median(m[1], reps);
	res->ck_first = median(m[2], reps);
	res->ck_walk = median(m[3], reps);
	res->pl_load = median(m[4], reps);
	res->pl_walk = median(m[5], reps);
	res->pl_load_warm = median(m[6], reps);
	res->pl_walk_warm = median(m[7], reps);
	for (int i = 0; i < 8; i++)
		free(v[i]);
	free(buf);
	free(warm);
	unlink(pool);
	unlink(file);
}

static void
ms(char *out, size_t n, double s)
{
	snprintf(out, n, "%.1f", s * 1e3);
}

static void
row(const char *what, double ck, const char *peer_what, double pl)
{
	char a[32], b[32];
	ms(a, sizeof(a), ck);
	ms(b, sizeof(b), pl);
	printf("| %s | %s | %s | %s | %.2f |\n", what, a, peer_what, b, pl > 0 ? ck / pl : 0);
}

/* idle -- a thread of the program that waits for the end of the run */
static void *
idle(void *arg)
{
	char c;
	while (read(*(int *)arg, &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

int
main(int argc, char **argv)
{
	int threads = 0;
	const char *sizes = "64M,1G";
	const char *dir = "/var/tmp";
	int reps = 5;
	const char *st = getenv("CKPT_TEST_STEP_TIMES");
	step_times = st && strcmp(st, "1") == 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
			sizes = argv[++i];
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--rewrite") == 0 && i + 1 < argc)
			rewrite_pct = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc)
			keep = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
			chunk_bytes = size_arg(argv[++i]) & ~(uint64_t)7;
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--smoke") == 0) {
			sizes = "4M,8M";
			reps = 1;
		} else {
			fprintf(stderr, "usage: ckpt_bench [--sizes 64M,1G] [--reps N] "
				"[--dir DIR] [--rewrite PCT] [--keep N] [--chunk BYTES] "
				"[--threads N] [--smoke]\n");
			return 2;
		}
	}
	if (reps < 1)
		die("--reps must be at least 1");
	if (chunk_bytes < 64)
		die("--chunk must be at least 64 bytes");
	static int idle_fd[2];
	if (threads < 0 || threads > 64)
		die("--threads must be 0 to 64");
	if (threads && pipe(idle_fd) < 0)
		die("pipe: %s", strerror(errno));
	for (int t = 0; t < threads; t++) {
		pthread_t th;
		if (pthread_create(&th, NULL, idle, &idle_fd[0]) != 0)
			die("pthread_create failed");
		pthread_detach(th);
	}
	char work[4096];
	snprintf(work, sizeof(work), "%s/ckpt-bench-XXXXXX", dir);
	if (!mkdtemp(work))
		die("mkdtemp in %s: %s", dir, strerror(errno));

	char *list = strdup(sizes);
	for (char *save, *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t bytes = size_arg(tok) & ~(uint64_t)7;
		struct result res;
		run_size(work, bytes, reps, &res);
		const char *fm = getenv("CKPT_FORK_MODE");
		const char *rs = getenv("CKPT_RESTART");
		printf("\n### %s of user data in chunks of %llu B, %u%% of pages rewritten, "
			"fork mode %s, restart %s, keep %u, %d idle thread%s (medians of %d, "
			"after 1 warm-up; ms)\n\n",
			tok, (unsigned long long)chunk_bytes, rewrite_pct,
			fm && *fm ? fm : "auto", rs && *rs ? rs : "lazy", keep, threads,
			threads == 1 ? "" : "s", reps);
		printf("| libckpt | ms | without libckpt | ms | ratio |\n");
		printf("| --- | ---: | --- | ---: | ---: |\n");
		row("checkpoint (ckpt_checkpoint)", res.ck_save,
			"write() + fdatasync()", res.pl_save);

		row("restart to first ckpt_alloc", res.ck_first,
			"read() into a fresh buffer", res.pl_load);
		row("restart + read whole structure", res.ck_walk,
			"read() into a fresh buffer + read it", res.pl_walk);
		row("restart to first ckpt_alloc", res.ck_first,
			"read() into a pre-faulted buffer", res.pl_load_warm);
		row("restart + read whole structure", res.ck_walk,
			"read() into a pre-faulted buffer + read it", res.pl_walk_warm);
		printf("\nThe pool's allocated bytes grew by %.1f MiB per checkpoint "
			"(median; %.1f%% of the data).\n", res.grow / (1 << 20),
			100.0 * res.grow / (double)bytes);
		fflush(stdout);
	}
	free(list);
	rmdir(work);
	return 0;
}
