/*
 * seal_bench.c -- a sealed pool's checkpoint and restart against the same
 * pool unsealed: what encryption costs. Run by bench/run-seal.sh.
 *
 *   seal_bench [--sizes 256M,1G] [--reps N] [--dir DIR] [--smoke]
 *
 * Per size S: two pools in DIR, fork mode copy both (the only mode of a
 * sealed pool), keep 1, each heap holding S bytes of user data in blocks
 * of 1 MiB linked from the root, every word written. The sealed pool's key
 * is a 32-byte random key file in DIR.
 *
 * Per repetition, alternating (unsealed, then sealed):
 *   checkpoint  one word of every 4 KiB page rewritten, then
 *               ckpt_checkpoint(): unsealed, copy_file_range of the heap's
 *               segment + checksum + fdatasync + publish; sealed, AES-256-GCM
 *               of the heap into the segment (pwrite) + fdatasync + publish.
 *   restart     ckpt_open(LATEST) to the first ckpt_alloc: unsealed, verify
 *               the checksum + copy the checkpoint into a new segment;
 *               sealed, lazy where userfaultfd allows (the seal record and
 *               the heap's metadata chunk decrypted, the rest on first
 *               access or by the fill thread's prefetch), and sealed eager
 *               (CKPT_RESTART=eager: read + decrypt + authenticate all of
 *               it into memory first). Then "+ read": the whole structure
 *               read from the root.
 * The page cache is warm for both. Repetition 0 is a warm-up and is
 * dropped; medians over the rest, ratio = sealed / unsealed. Beside the
 * elapsed times, the process's CPU time of the same steps (user + system,
 * CLOCK_PROCESS_CPUTIME_ID): on a loaded machine elapsed time stretches
 * CPU work by the load, CPU time much less; waiting for the disk
 * (fdatasync) is elapsed time only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libckpt.h>

#include "bench_rand.h"
#define BENCH_NAME "seal_bench"
#include "bench_stats.h"

#define MiB ((uint64_t)1 << 20)
#define BLOCK (MiB - 64)
#define ROOT_MAGIC 0x4c41455354534542ull

struct block {
	struct block *next;
	uint64_t nwords;
	uint64_t data[];
};

struct root {
	uint64_t magic;
	struct block *head;
};

/* build -- bytes of user data in blocks linked from a new root */
static struct root *
build(ckpt_pool *p, uint64_t bytes)
{
	struct root *r = ckpt_alloc(p, sizeof(*r));
	if (!r)
		die("ckpt_alloc: %s", ckpt_errormsg());
	r->magic = ROOT_MAGIC;
	r->head = NULL;
	struct block **tail = &r->head;
	for (uint64_t done = 0; done < bytes;) {
		uint64_t n = bytes - done < BLOCK - sizeof(struct block) ?
			bytes - done : BLOCK - sizeof(struct block);
		struct block *b = ckpt_alloc(p, sizeof(*b) + n);
		if (!b)
			die("ckpt_alloc: %s", ckpt_errormsg());
		b->next = NULL;
		b->nwords = n / 8;
		for (uint64_t i = 0; i < b->nwords; i++)
			b->data[i] = done / 8 + i;
		*tail = b;
		tail = &b->next;
		done += n;
	}
	if (ckpt_set_root(p, r) < 0)
		die("ckpt_set_root: %s", ckpt_errormsg());
	return r;
}

/* dirty -- rewrite one word of every 4 KiB page */
static void
dirty(struct root *r, uint64_t k)
{
	for (struct block *b = r->head; b; b = b->next)
		for (uint64_t i = 0; i < b->nwords; i += 512)
			b->data[i] += k;
}

/* walk -- sum every word */
static uint64_t
walk(const struct root *r)
{
	if (!r || r->magic != ROOT_MAGIC)
		die("restarted heap has no root");
	uint64_t s = 0;
	for (const struct block *b = r->head; b; b = b->next)
		for (uint64_t i = 0; i < b->nwords; i++)
			s += b->data[i];
	return s;
}

struct sample {
	double ckpt, first, read;           /* elapsed */
	double ckpt_cpu, first_cpu, read_cpu;   /* process CPU time (every thread) */
	double efirst, eread, efirst_cpu, eread_cpu;   /* sealed, CKPT_RESTART=eager */
};

/* cpu_s -- this process's CPU time, seconds */
static double
cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* restart -- open path at its latest checkpoint, timed; its sum */
static uint64_t
restart(const char *path, const struct ckpt_config *c, struct sample *s)
{
	double c0 = cpu_s(), t0 = now_s();
	ckpt_pool *q = ckpt_open(path, CKPT_LATEST, c);
	if (!q)
		die("ckpt_open %s: %s", path, ckpt_errormsg());
	if (!ckpt_alloc(q, 64))
		die("ckpt_alloc after restart: %s", ckpt_errormsg());
	double t1 = now_s();
	s->first_cpu = cpu_s() - c0;
	uint64_t sum = walk(ckpt_root(q));
	double t2 = now_s();
	s->read_cpu = cpu_s() - c0;
	s->first = t1 - t0;
	s->read = t2 - t0;
	if (ckpt_close(q) < 0)
		die("ckpt_close: %s", ckpt_errormsg());
	return sum;
}

static void
run_size(const char *dir, const char *key, uint64_t bytes, int reps)
{
	char plain[4200], sealed[4200];
	snprintf(plain, sizeof(plain), "%s/unsealed.pool", dir);
	snprintf(sealed, sizeof(sealed), "%s/sealed.pool", dir);
	struct ckpt_config cu = {
		.heap_size = (size_t)(bytes + bytes / 8 + 64 * MiB), .max_segments = 4,
		.keep_checkpoints = 1, .fork_mode = CKPT_FORK_COPY,
	};
	struct ckpt_config cs = cu;
	cs.key_file = key;
	ckpt_pool *pu = ckpt_create(plain, &cu);
	if (!pu)
		die("ckpt_create %s: %s", plain, ckpt_errormsg());
	ckpt_pool *ps = ckpt_create(sealed, &cs);
	if (!ps)
		die("ckpt_create %s: %s", sealed, ckpt_errormsg());
	struct root *ru = build(pu, bytes), *rs = build(ps, bytes);
	struct sample *u = calloc((size_t)reps + 1, sizeof(*u));
	struct sample *s = calloc((size_t)reps + 1, sizeof(*s));
	if (!u || !s)
		die("out of memory");
	for (int k = 0; k <= reps; k++) {
		dirty(ru, (uint64_t)k + 1);
		double c0 = cpu_s(), t0 = now_s();
		if (ckpt_checkpoint(pu, NULL, NULL) < 0)
			die("ckpt_checkpoint: %s", ckpt_errormsg());
		u[k].ckpt = now_s() - t0;
		u[k].ckpt_cpu = cpu_s() - c0;
		dirty(rs, (uint64_t)k + 1);
		c0 = cpu_s();
		t0 = now_s();
		if (ckpt_checkpoint(ps, NULL, NULL) < 0)
			die("ckpt_checkpoint (sealed): %s", ckpt_errormsg());
		s[k].ckpt = now_s() - t0;
		s[k].ckpt_cpu = cpu_s() - c0;
	}
	uint64_t want = walk(ru);
	if (walk(rs) != want)
		die("the two heaps diverged");
	if (ckpt_close(pu) < 0 || ckpt_close(ps) < 0)
		die("ckpt_close: %s", ckpt_errormsg());
	for (int k = 0; k <= reps; k++) {
		struct sample e;
		if (restart(plain, &cu, &u[k]) != want || restart(sealed, &cs, &s[k]) != want)
			die("restarted data differs");
		setenv("CKPT_RESTART", "eager", 1);
		if (restart(sealed, &cs, &e) != want)
			die("restarted data differs");
		unsetenv("CKPT_RESTART");
		s[k].efirst = e.first;
		s[k].eread = e.read;
		s[k].efirst_cpu = e.first_cpu;
		s[k].eread_cpu = e.read_cpu;
	}
	double v[6][3][reps];
	for (int k = 1; k <= reps; k++) {
		v[3][0][k - 1] = u[k].ckpt_cpu;
		v[3][1][k - 1] = s[k].ckpt_cpu;
		v[4][0][k - 1] = u[k].first_cpu;
		v[4][1][k - 1] = s[k].first_cpu;
		v[0][0][k - 1] = u[k].ckpt;
		v[0][1][k - 1] = s[k].ckpt;
		v[1][0][k - 1] = u[k].first;
		v[1][1][k - 1] = s[k].first;
		v[2][0][k - 1] = u[k].read;
		v[2][1][k - 1] = s[k].read;
		v[0][2][k - 1] = 0;
		v[1][2][k - 1] = s[k].efirst;
		v[2][2][k - 1] = s[k].eread;
		v[3][2][k - 1] = 0;
		v[4][2][k - 1] = s[k].efirst_cpu;
		v[5][0][k - 1] = u[k].read_cpu;
		v[5][1][k - 1] = s[k].read_cpu;
		v[5][2][k - 1] = s[k].eread_cpu;
	}
	static const char *what[6] = { "checkpoint (ckpt_checkpoint)",
		"restart to first ckpt_alloc", "restart + read whole structure",
		"checkpoint, CPU time", "restart to first ckpt_alloc, CPU time",
		"restart + read whole structure, CPU time" };
	printf("| step | unsealed ms | sealed ms | ratio | sealed eager ms | ratio | "
		"sealed GB/s |\n");
	printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int i = 0; i < 6; i++) {
		double a = median(v[i][0], reps), b = median(v[i][1], reps);
		double c = median(v[i][2], reps);
		char eager[64] = "- | -";
		if (c > 0)
			snprintf(eager, sizeof(eager), "%.1f | %.2f", c * 1e3, a > 0 ? c / a : 0);
		printf("| %s | %.1f | %.1f | %.2f | %s | %.2f |\n", what[i], a * 1e3, b * 1e3,
			a > 0 ? b / a : 0, eager, (double)bytes / b / 1e9);
	}
	fflush(stdout);
	free(u);
	free(s);
	unlink(plain);
	unlink(sealed);
}

int
main(int argc, char **argv)
{
	const char *sizes = "256M,1G";
	const char *dir = "/var/tmp";
	int reps = 5;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
			sizes = argv[++i];
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--smoke") == 0) {
			sizes = "4M,8M";
			reps = 1;
		} else {
			fprintf(stderr, "usage: seal_bench [--sizes 256M,1G] [--reps N] "
				"[--dir DIR] [--smoke]\n");
			return 2;
		}
	}
	if (reps < 1)
		die("--reps must be at least 1");
	unsetenv("CKPT_KEY_FILE");
	unsetenv("CKPT_FORK_MODE");
	char work[4096], key[4200];
	snprintf(work, sizeof(work), "%s/seal-bench-XXXXXX", dir);
	if (!mkdtemp(work))
		die("mkdtemp in %s: %s", dir, strerror(errno));
	snprintf(key, sizeof(key), "%s/key", work);
	unsigned char k[32];
	if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
		die("getrandom: %s", strerror(errno));
	int fd = open(key, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, k, sizeof(k)) != (ssize_t)sizeof(k) || close(fd) < 0)
		die("cannot write the key file %s", key);

	char *list = strdup(sizes);
	for (char *save, *tok = strtok_r(list, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		uint64_t bytes = size_arg(tok) & ~(uint64_t)7;
		printf("\n### %s of user data in 1 MiB blocks, every page rewritten, fork "
			"mode copy, keep 1 (medians of %d, after 1 warm-up)\n\n", tok, reps);
		run_size(work, key, bytes, reps);
	}
	free(list);
	unlink(key);
	rmdir(work);
	return 0;
}
