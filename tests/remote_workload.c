/*
 * remote_workload -- the program the remote-store tests and benchmark
 * drive: a heap with a linked list (raw pointers) and an array of pages
 * whose checksum the root records, so a heap rebuilt elsewhere proves
 * both its bytes and its base.
 *
 *   remote_workload create POOL HEAP_MB DATA_MB [SECRET]
 *                                                 new pool, fill, checkpoint;
 *                                                 with SECRET, 3 MiB more of
 *                                                 that pattern, repeated (the
 *                                                 sealed scans look for it)
 *   remote_workload mutate POOL PERMILLE          restart, rewrite that many
 *                                                 pages per 1000 (scattered),
 *                                                 checkpoint
 *   remote_workload verify POOL [ID]              restart from ID (latest),
 *                                                 check everything; exit 0
 *   remote_workload resum FILE                    rewrite the last 8 bytes of
 *                                                 FILE (a manifest) as the
 *                                                 XXH64 of the bytes before
 *                                                 them: a forger's manifest
 * create and mutate print the new checkpoint id; verify prints its
 * generation, how long ckpt_open and the full check took, and the wall
 * clock (CLOCK_REALTIME, seconds) when the root was first read and when
 * the check ended (for the benchmark: nothing asserts on them).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include <libckpt.h>

#define PAGE 4096u
#define NODES 1000u
#define MAGIC 0x524d4f5445574c31ull

struct node {
	struct node *next;
	uint64_t value;
};

struct root {
	uint64_t magic;
	struct node *head;
	unsigned char *data;
	uint64_t pages;
	uint64_t sum;
	uint64_t generation;
	char *secret;           /* SECRET_BYTES of the pattern, or NULL */
	uint64_t secret_len;    /* the pattern's length */
};

#define SECRET_BYTES ((uint64_t)3 << 20)

/* die -- report and exit 1 */
static void
die(const char *what)
{
	fprintf(stderr, "remote_workload: %s: %s\n", what, ckpt_errormsg());
	exit(1);
}

/* fill_page -- page i's bytes for generation g */
static void
fill_page(unsigned char *p, uint64_t i, uint64_t g)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ g;
	for (unsigned k = 0; k < PAGE; k += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + k, &x, 8);
	}
}

/* ms_now -- CLOCK_MONOTONIC in milliseconds */
static double
ms_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* wall_now -- CLOCK_REALTIME in seconds (comparable across processes) */
static double
wall_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* checkpoint -- take one and print its id */
static void
checkpoint(ckpt_pool *p, const char *label)
{
	ckpt_id id;
	if (ckpt_checkpoint(p, label, &id) < 0)
		die("checkpoint");
	printf("%llu\n", (unsigned long long)id);
}

/* resum -- the manifest file at path gets a valid trailing XXH64 */
static int
resum(const char *path)
{
	FILE *f = fopen(path, "r+b");
	static unsigned char buf[(size_t)1 << 24];
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (n < 8 || n == sizeof(buf)) {
		fprintf(stderr, "remote_workload: cannot read %s\n", path);
		return 1;
	}
	uint64_t sum = XXH64(buf, n - 8, 0);
	if (fseek(f, (long)(n - 8), SEEK_SET) != 0 || fwrite(&sum, 8, 1, f) != 1)
		return 1;
	return fclose(f) != 0;
}

int
main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: remote_workload create|mutate|verify POOL ...\n");
		return 2;
	}
	const char *cmd = argv[1], *path = argv[2];
	if (strcmp(cmd, "resum") == 0)
		return resum(path);
	if (strcmp(cmd, "create") == 0 && (argc == 5 || argc == 6)) {
		struct ckpt_config cfg = { .heap_size = strtoull(argv[3], NULL, 10) << 20 };
		uint64_t pages = (strtoull(argv[4], NULL, 10) << 20) / PAGE;
		ckpt_pool *p = ckpt_create(path, &cfg);
		if (!p)
			die("create");
		struct root *r = ckpt_calloc(p, 1, sizeof(*r));
		r->data = ckpt_aligned_alloc(p, PAGE, pages * PAGE);
		if (!r || !r->data)
			die("alloc");
		r->pages = pages;
		if (argc == 6 && *argv[5]) {
			size_t n = strlen(argv[5]);
			if (!(r->secret = ckpt_alloc(p, SECRET_BYTES)))
				die("alloc");
			for (uint64_t i = 0; i + n <= SECRET_BYTES; i += n)
				memcpy(r->secret + i, argv[5], n);
			r->secret_len = n;
		}
		for (uint64_t i = 0; i < pages; i++)
			fill_page(r->data + i * PAGE, i, 0);
		r->sum = XXH64(r->data, pages * PAGE, 0);
		for (unsigned i = 0; i < NODES; i++) {
			struct node *n = ckpt_alloc(p, sizeof(*n));
			n->value = i;
			n->next = r->head;
			r->head = n;
		}
		r->magic = MAGIC;
		ckpt_set_root(p, r);
		checkpoint(p, "created");
		return ckpt_close(p) < 0;
	}
	ckpt_id from = argc > 3 && strcmp(cmd, "verify") == 0 ? strtoull(argv[3], NULL, 10) :
		CKPT_LATEST;
	double t0 = ms_now();
	ckpt_pool *p = ckpt_open(path, from, NULL);
	if (!p)
		die("open");
	double t1 = ms_now();
	struct root *r = ckpt_root(p);
	if (!r || r->magic != MAGIC)
		die("root");
	double at_root = wall_now();
	if (strcmp(cmd, "mutate") == 0 && argc == 4) {
		uint64_t permille = strtoull(argv[3], NULL, 10);
		uint64_t n = r->pages * permille / 1000, step = n ? r->pages / n : 1;
		r->generation++;
		for (uint64_t k = 0; k < n; k++)
			fill_page(r->data + (k * step + r->generation % step) * PAGE, k, r->generation);
		r->sum = XXH64(r->data, r->pages * PAGE, 0);
		checkpoint(p, "mutated");
		return ckpt_close(p) < 0;
	}
	if (strcmp(cmd, "verify") != 0)
		return 2;
	unsigned count = 0;
	uint64_t expect = NODES;
	for (struct node *n = r->head; n; n = n->next, count++)
		if (n->value != --expect) {
			fprintf(stderr, "remote_workload: list node %u holds %llu\n", count,
					(unsigned long long)n->value);
			return 1;
		}
	if (count != NODES || XXH64(r->data, r->pages * PAGE, 0) != r->sum) {
		fprintf(stderr, "remote_workload: %s\n", count != NODES ? "list length wrong" :
				"data checksum wrong");
		return 1;
	}
	for (uint64_t i = r->secret_len; r->secret && i + r->secret_len <= SECRET_BYTES;
			i += r->secret_len)
		if (memcmp(r->secret + i, r->secret, r->secret_len) != 0) {
			fprintf(stderr, "remote_workload: the secret pattern is damaged\n");
			return 1;
		}
	printf("ok generation %llu open_ms %.2f check_ms %.2f root_at %.6f done_at %.6f\n",
		(unsigned long long)r->generation, t1 - t0, ms_now() - t1, at_root, wall_now());
	return ckpt_close(p) < 0;
}
