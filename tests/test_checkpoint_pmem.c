/*
 * test_checkpoint_pmem.c -- the copy paths of checkpoint and restart
 * (issue 4; segcopy.c): clone, else copy_file_range, else a PMDK memcpy on
 * pmem, else pread/pwrite.
 *
 * Real pmem is not available here, so the pmem path is forced on an
 * ordinary file (PMEM_IS_PMEM_FORCE=1) and the kernel's offloads are turned
 * off (CKPT_TEST_NO_OFFLOAD=1, testhook.h). A helper process builds a heap
 * (a linked list and a pseudo-random 3 MiB blob) and checkpoints it; the
 * checkpoint must equal the heap byte for byte. A second one restarts from
 * it: every stored byte must be back and the heap sound; it checkpoints
 * again, and that checkpoint must equal its heap byte for byte. Each
 * reports, from segcopy_stats, how many bytes each copy path moved. With the pmem path forced, all of it must go through
 * pmem_memcpy_nodrain; without forcing, through pread/pwrite, never the
 * pmem path (a cache flush is not durable on an ordinary file); with
 * offloads on, through the kernel (copy_file_range or a clone).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>

#include "test_fork_util.h"
#include "layout.h"
#include "pool.h"
#include "segcopy.h"

#define NODES 20000
#define BLOB ((size_t)3 << 20)

struct node {
	struct node *next;
	uint64_t i, sq;
};

struct root {
	struct node *head;
	uint8_t *blob;
	uint64_t seed;
};

static uint8_t
blob_byte(uint64_t seed, size_t i)
{
	uint64_t x = (seed + i) * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	return (uint8_t)(x * 0xBF58476D1CE4E5B9ull >> 56);
}

/* check_root -- 0 if the list and the blob are as built */
static int
check_root(const struct root *r)
{
	uint64_t n = 0;
	for (const struct node *x = r->head; x; x = x->next, n++)
		if (x->i != NODES - 1 - n || x->sq != x->i * x->i)
			return 1;
	if (n != NODES)
		return 2;
	for (size_t i = 0; i < BLOB; i++)
		if (r->blob[i] != blob_byte(r->seed, i))
			return 3;
	return 0;
}

/* seg_equals_heap -- 0 if segment seg's bytes [0, used) in the file equal the mapped heap's */
static int
seg_equals_heap(const char *path, ckpt_pool *p, uint32_t seg, uint64_t used)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	void *bytes = tu_read_range(path, layout_seg_off(&c.hdr, seg), used);
	tu_catalog_free(&c);
	int ne = memcmp(bytes, p->heap_map.addr, used) != 0;
	free(bytes);
	return ne;
}

/* print_stats -- the bytes each copy path moved since s0 */
static void
print_stats(const char *what, const struct segcopy_stats *s0)
{
	printf("%s cloned %" PRIu64 " range %" PRIu64 " pmem %" PRIu64 " plain %" PRIu64 "\n",
		what, segcopy_stats.cloned - s0->cloned, segcopy_stats.range - s0->range,
		segcopy_stats.pmem - s0->pmem, segcopy_stats.plain - s0->plain);
}

/* latest -- index and used bytes of the newest checkpoint */
static int
latest(const char *path, uint64_t *used)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int found = -1;
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_CKPT &&
		    (found < 0 || c.e[i].ckpt_id > c.e[found].ckpt_id))
			found = (int)i;
	if (found >= 0)
		*used = c.e[found].used;
	tu_catalog_free(&c);
	return found;
}

/* helper make: build, checkpoint, compare the checkpoint with the heap */
static int
helper_make(const char *path)
{
	struct ckpt_config cfg = { .heap_size = 16 << 20, .max_segments = 4 };
	unlink(path);
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p) {
		fprintf(stderr, "create: %s\n", ckpt_errormsg());
		return 10;
	}
	struct root *r = ckpt_calloc(p, 1, sizeof(*r));
	if (!r || ckpt_set_root(p, r) < 0)
		return 11;
	r->seed = 12345;
	for (uint64_t i = 0; i < NODES; i++) {
		struct node *x = ckpt_alloc(p, sizeof(*x));
		if (!x)
			return 12;
		x->i = i;
		x->sq = i * i;
		x->next = r->head;
		r->head = x;
	}
	r->blob = ckpt_alloc(p, BLOB);
	if (!r->blob)
		return 13;
	for (size_t i = 0; i < BLOB; i++)
		r->blob[i] = blob_byte(r->seed, i);
	printf("kind %s\n", pool_kind_name(p));
	struct segcopy_stats s0 = segcopy_stats;
	ckpt_id id;
	if (ckpt_checkpoint(p, "pmem", &id) < 0) {
		fprintf(stderr, "checkpoint: %s\n", ckpt_errormsg());
		return 14;
	}
	print_stats("checkpoint", &s0);
	uint64_t used;
	int seg = latest(path, &used);
	if (seg < 0 || used < BLOB)
		return 15;
	printf("used %" PRIu64 "\n", used);
	if (seg_equals_heap(path, p, (uint32_t)seg, used))
		return 16;
	return ckpt_close(p) == 0 ? 0 : 17;
}

/*
 * helper restart: open at the checkpoint; every byte the program stored
 * (the list, the 3 MiB blob) must be back, and the heap sound. The heap as
 * a whole is not byte-identical to the checkpoint after ckpt_open: opening
 * rewrites the allocator's per-life records in the page headers. So it is
 * then checkpointed again (same path) and that checkpoint compared with it
 * byte for byte.
 */
static int
helper_restart(const char *path)
{
	struct segcopy_stats s0 = segcopy_stats;
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p) {
		fprintf(stderr, "open: %s\n", ckpt_errormsg());
		return 20;
	}
	print_stats("restart", &s0);
	int bad = check_root(ckpt_root(p));
	if (bad)
		return 20 + bad;
	if (heap_check(p->heap_map.addr, p->hdr.seg_size, NULL) < 0) {
		fprintf(stderr, "heap_check: %s\n", ckpt_errormsg());
		return 24;
	}
	s0 = segcopy_stats;
	if (ckpt_checkpoint(p, "again", NULL) < 0)
		return 25;
	print_stats("again", &s0);
	uint64_t used;
	int seg = latest(path, &used);
	if (seg < 0 || seg_equals_heap(path, p, (uint32_t)seg, used))
		return 26;
	return ckpt_close(p) == 0 ? 0 : 27;
}

struct moved {
	uint64_t cloned, range, pmem, plain;
};

/* parse -- the "WHAT cloned .. range .. pmem .. plain .." line of out */
static struct moved
parse(const char *out, const char *what)
{
	char key[64];
	snprintf(key, sizeof(key), "%s cloned ", what);
	const char *l = strstr(out, key);
	if (!l)
		fail_msg("no \"%s\" line in helper output:\n%s", what, out);
	struct moved m;
	char fmt[128];
	snprintf(fmt, sizeof(fmt), "%s cloned %%" SCNu64 " range %%" SCNu64 " pmem %%" SCNu64
		" plain %%" SCNu64, what);
	assert_int_equal(sscanf(l, fmt, &m.cloned, &m.range, &m.pmem, &m.plain), 4);
	return m;
}

enum want { WANT_PMEM, WANT_PLAIN, WANT_OFFLOAD };

static void
run(const char *file, const char *const *env, const char *kind, enum want want)
{
	const char *path = tu_path(file);
	char out[1024];
	int rc = tu_run_helper(out, sizeof(out), env, "make", path, (char *)NULL);
	if (rc != 0)
		fail_msg("%s: make helper rc %d (16: checkpoint differs from the heap):\n%s",
			file, rc, out);
	char k[128];
	snprintf(k, sizeof(k), "kind %s\n", kind);
	if (strncmp(out, k, strlen(k)) != 0)
		fail_msg("%s: want \"%s\", helper said:\n%s", file, kind, out);
	uint64_t used;
	assert_int_equal(sscanf(strstr(out, "used "), "used %" SCNu64, &used), 1);
	struct moved ck = parse(out, "checkpoint");
	tu_inspect_verify(path);

	rc = tu_run_helper(out, sizeof(out), env, "restart", path, (char *)NULL);
	if (rc != 0)
		fail_msg("%s: restart helper rc %d (21-23: list or blob bytes differ, "
			"24: heap unsound, 26: new checkpoint differs from the heap):\n%s",
			file, rc, out);
	struct moved rs = parse(out, "restart"), ag = parse(out, "again");
	tu_inspect_verify(path);

	const struct moved *all[] = { &ck, &rs, &ag };
	static const char *const names[] = { "checkpoint", "restart", "checkpoint again" };
	for (int i = 0; i < 3; i++) {
		const struct moved *m = all[i];
		const char *what = names[i];
		switch (want) {
		case WANT_PMEM:
			/* everything but holes went through pmem_memcpy_nodrain */
			if (m->pmem < used / 2 || m->plain || m->range || m->cloned)
				fail_msg("%s %s: want the pmem memcpy path, moved %s", file, what, out);
			break;
		case WANT_PLAIN:
			if (m->plain < used / 2 || m->pmem || m->range || m->cloned)
				fail_msg("%s %s: want pread/pwrite, moved %s", file, what, out);
			break;
		case WANT_OFFLOAD:
			if ((m->range < used / 2 && m->cloned < used / 2) || m->pmem || m->plain)
				fail_msg("%s %s: want clone or copy_file_range, moved %s",
					file, what, out);
			break;
		}
	}
}

static void
test_pmem_memcpy_path(void **state)
{
	(void)state;
	static const char *env[] = { "PMEM_IS_PMEM_FORCE=1", "CKPT_TEST_NO_OFFLOAD=1", NULL };
	run("forced.pool", env, "emulated (pmem path forced)", WANT_PMEM);
}

static void
test_plain_path_on_ordinary_file(void **state)
{
	(void)state;
	static const char *env[] = { "PMEM_IS_PMEM_FORCE", "CKPT_TEST_NO_OFFLOAD=1", NULL };
	run("plain.pool", env, "emulated", WANT_PLAIN);
}

static void
test_offload_first(void **state)
{
	(void)state;
	/* forcing pmem does not skip the kernel's copy where it works */
	static const char *env[] = { "PMEM_IS_PMEM_FORCE=1", "CKPT_TEST_NO_OFFLOAD", NULL };
	run("offload.pool", env, "emulated (pmem path forced)", WANT_OFFLOAD);
}

int
main(int argc, char **argv)
{
	/* fork mode copy: these tests are about the MAP_SHARED heap, on pmem and
	 * on an ordinary file; auto settles to cow on a new pool (test_cow*.c),
	 * so ask for copy explicitly */
	setenv("CKPT_FORK_MODE", "copy", 1);
	if (argc == 4 && strcmp(argv[1], "--helper") == 0) {
		if (strcmp(argv[2], "make") == 0)
			return helper_make(argv[3]);
		if (strcmp(argv[2], "restart") == 0)
			return helper_restart(argv[3]);
		return 100;
	}
	unsetenv("CKPT_TEST_CRASH_AT");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pmem_memcpy_path),
		cmocka_unit_test(test_plain_path_on_ordinary_file),
		cmocka_unit_test(test_offload_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
