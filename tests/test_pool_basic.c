/*
 * test_pool_basic.c -- the pool's life cycle (issue 2, items 2 and 3):
 * create/close/open round trips, restarts in new processes, missing
 * checkpoints, immutability of checkpoints, the catalog under kill -9, and
 * the persistence paths (msync and, forced, pmem).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "libckpt.h"
#include "testutil.h"
#include "pool.h"

#define MiB ((size_t)1 << 20)

/* a linked list in the heap: raw pointers must survive restarts */
struct node {
	struct node *next;
	uint64_t value;
	char text[48];
};

static void
copy_path(char *dst, size_t len, const char *name)
{
	snprintf(dst, len, "%s", tu_path(name));
}

/* build_list -- n nodes value base+i, text "node i"; returns the head */
static struct node *
build_list(ckpt_pool *p, int n, uint64_t base)
{
	struct node *head = NULL;
	for (int i = n - 1; i >= 0; i--) {
		struct node *x = ckpt_alloc(p, sizeof(*x));
		assert_non_null(x);
		x->next = head;
		x->value = base + (uint64_t)i;
		snprintf(x->text, sizeof(x->text), "node %d", i);
		head = x;
	}
	return head;
}

/* list_string -- "v0,v1,..." of the list at head, into buf */
static void
list_string(const struct node *head, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (const struct node *x = head; x && o < len; x = x->next)
		o += (size_t)snprintf(buf + o, len - o, "%s%llu", o ? "," : "",
				(unsigned long long)x->value);
}

static ckpt_pool *
must_open(const char *path, ckpt_id id)
{
	ckpt_pool *p = ckpt_open(path, id, NULL);
	if (!p)
		fail_msg("ckpt_open %s @%llu: %s", path, (unsigned long long)id, ckpt_errormsg());
	return p;
}

/* find_ckpt -- catalog index of checkpoint id, or -1 */
static int
find_ckpt(const struct tu_catalog *c, ckpt_id id)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->e[i].state == CAT_CKPT && c->e[i].ckpt_id == id)
			return (int)i;
	return -1;
}

static ckpt_id
newest_ckpt(const struct tu_catalog *c)
{
	ckpt_id best = 0;
	for (uint32_t i = 0; i < c->n; i++)
		if (c->e[i].state == CAT_CKPT && c->e[i].ckpt_id > best)
			best = c->e[i].ckpt_id;
	return best;
}

/* check_ckpt_sums -- every checkpoint's bytes match its recorded checksum */
static void
check_ckpt_sums(const char *path, const struct tu_catalog *c)
{
	for (uint32_t i = 0; i < c->n; i++) {
		const struct cat_entry *e = &c->e[i];
		if (e->state != CAT_CKPT)
			continue;
		void *b = tu_read_range(path, c->hdr.data_off + (uint64_t)i * c->hdr.seg_size,
				e->used);
		if (XXH3_64bits(b, e->used) != e->checksum)
			fail_msg("checkpoint %llu (segment %u): bytes do not match its checksum",
				(unsigned long long)e->ckpt_id, i);
		free(b);
	}
}

/* ---------------------------------------------------------------------- */

static void
round_trip(void **state)
{
	char path[512];
	copy_path(path, sizeof(path), "rt.pool");
	struct ckpt_config cfg = { .heap_size = 8 * MiB, .max_segments = 6, .keep_checkpoints = 3 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	assert_null(ckpt_root(p));
	struct node *head = build_list(p, 5, 100);
	assert_int_equal(ckpt_set_root(p, head), 0);
	ckpt_id id1 = 0, id2 = 0;
	assert_int_equal(ckpt_checkpoint(p, "first", &id1), 0);
	assert_true(id1 > 0);
	head->value = 999;                   /* after the checkpoint: not in id1 */
	assert_int_equal(ckpt_checkpoint(p, "second", &id2), 0);
	assert_true(id2 > id1);
	assert_int_equal(ckpt_close(p), 0);

	/* after close: two checkpoints, nothing live */
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_CKPT), 2);
	assert_int_equal(tu_catalog_count(&c, CAT_FREE), c.n - 2);
	int s1 = find_ckpt(&c, id1);
	assert_true(s1 >= 0);
	assert_string_equal(c.e[s1].label, "first");
	check_ckpt_sums(path, &c);
	tu_catalog_free(&c);

	char buf[256];
	p = must_open(path, CKPT_LATEST);
	assert_ptr_equal(ckpt_root(p), head);       /* same address: fixed base */
	list_string(ckpt_root(p), buf, sizeof(buf));
	assert_string_equal(buf, "999,101,102,103,104");
	assert_string_equal(((struct node *)ckpt_root(p))->next->text, "node 1");
	assert_int_equal(ckpt_close(p), 0);

	p = must_open(path, id1);
	list_string(ckpt_root(p), buf, sizeof(buf));
	assert_string_equal(buf, "100,101,102,103,104");
	/* the restarted heap allocates and checkpoints on its own */
	struct node *more = build_list(p, 2, 7);
	((struct node *)ckpt_root(p))->next->next->next->next->next = more;
	ckpt_id id3 = 0;
	assert_int_equal(ckpt_checkpoint(p, "third", &id3), 0);
	assert_true(id3 > id2);
	assert_int_equal(ckpt_close(p), 0);
	p = must_open(path, id3);
	list_string(ckpt_root(p), buf, sizeof(buf));
	assert_string_equal(buf, "100,101,102,103,104,7,8");
	assert_int_equal(ckpt_close(p), 0);
}

/* helper "read PATH ID": open checkpoint ID, print its list */
static int
helper_read(const char *path, const char *id)
{
	ckpt_pool *p = ckpt_open(path, strtoull(id, NULL, 10), NULL);
	if (!p) {
		printf("err %d %s\n", errno, ckpt_errormsg());
		return 1;
	}
	char buf[256];
	list_string(ckpt_root(p), buf, sizeof(buf));
	printf("root %p list %s\n", ckpt_root(p), buf);
	return ckpt_close(p) == 0 ? 0 : 2;
}

/* helper "write PATH": create a pool, store a list, checkpoint, exit without closing */
static int
helper_write(const char *path)
{
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 4 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p) {
		printf("err %d %s\n", errno, ckpt_errormsg());
		return 1;
	}
	/* by hand: helpers must not use cmocka asserts */
	struct node *head = NULL;
	for (int i = 2; i >= 0; i--) {
		struct node *x = ckpt_alloc(p, sizeof(*x));
		if (!x)
			return 3;
		x->next = head;
		x->value = 40 + (uint64_t)i;
		head = x;
	}
	ckpt_id id;
	if (ckpt_set_root(p, head) != 0 || ckpt_checkpoint(p, "helper", &id) != 0) {
		printf("err %d %s\n", errno, ckpt_errormsg());
		return 1;
	}
	printf("id %llu root %p\n", (unsigned long long)id, (void *)head);
	return 0;             /* no ckpt_close: a process that just ends */
}

static void
root_survives_new_process(void **state)
{
	char path[512];
	copy_path(path, sizeof(path), "np.pool");
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 4 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	struct node *head = build_list(p, 4, 10);
	assert_int_equal(ckpt_set_root(p, head), 0);
	ckpt_id id = 0;
	assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);
	head->value = 77;                    /* live heap only */

	char want[128], out[512], idbuf[32];
	snprintf(want, sizeof(want), "root %p list 10,11,12,13\n", (void *)head);
	snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)id);
	/* while we still run on our live heap ... */
	int rc = tu_run_helper(out, sizeof(out), NULL, "read", path, idbuf, NULL);
	if (rc != 0)
		fail_msg("helper rc %d: %s", rc, out);
	assert_string_equal(out, want);
	assert_int_equal(head->value, 77);   /* its restart did not touch our heap */
	assert_int_equal(ckpt_close(p), 0);
	/* ... and after we are gone */
	rc = tu_run_helper(out, sizeof(out), NULL, "read", path, "0", NULL);
	if (rc != 0)
		fail_msg("helper rc %d: %s", rc, out);
	assert_string_equal(out, want);

	/* the other direction: written by another process, read here */
	char path2[512];
	copy_path(path2, sizeof(path2), "np2.pool");
	rc = tu_run_helper(out, sizeof(out), NULL, "write", path2, NULL);
	if (rc != 0)
		fail_msg("helper rc %d: %s", rc, out);
	unsigned long long hid;
	void *hroot;
	assert_int_equal(sscanf(out, "id %llu root %p", &hid, &hroot), 2);
	p = must_open(path2, hid);
	assert_ptr_equal(ckpt_root(p), hroot);
	char buf[128];
	list_string(ckpt_root(p), buf, sizeof(buf));
	assert_string_equal(buf, "40,41,42");
	assert_int_equal(ckpt_close(p), 0);
}

/*
 * A pool whose creator ended before its first checkpoint (issue 16, item
 * 6): CKPT_LATEST gives an empty heap, as ckpt_create would have, in a
 * segment of its own; an explicit id is still refused with ENOENT and
 * leaves the file as it was.
 */
static void
open_latest_without_checkpoint(void **state)
{
	char path[512], copy[512];
	copy_path(path, sizeof(path), "nock.pool");
	copy_path(copy, sizeof(copy), "nock.copy");
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 3 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	assert_non_null(ckpt_alloc(p, 100));
	assert_int_equal(ckpt_close(p), 0);
	tu_copy_file(path, copy);

	errno = 0;
	assert_null(ckpt_open(path, 1, NULL));
	assert_int_equal(errno, ENOENT);
	assert_non_null(strcasestr(ckpt_errormsg(), "checkpoint 1"));
	assert_true(tu_files_equal(path, copy));

	p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	assert_null(ckpt_root(p));
	assert_int_equal(ckpt_restarted_from(p), 0);
	void *x = ckpt_alloc(p, 100);
	assert_non_null(x);
	assert_int_equal(ckpt_set_root(p, x), 0);
	ckpt_id id = 0;
	assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);
	assert_int_equal(id, 1);      /* the first checkpoint keeps its id */
	assert_int_equal(ckpt_close(p), 0);
	p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	assert_ptr_equal(ckpt_root(p), x);
	assert_int_equal(ckpt_restarted_from(p), 1);
	assert_int_equal(ckpt_close(p), 0);

	/* a pool still in use by its creator, no checkpoint yet: another
	 * process gets an empty heap of its own */
	char path2[512], out[512];
	copy_path(path2, sizeof(path2), "nock2.pool");
	p = ckpt_create(path2, &cfg);
	assert_non_null(p);
	int rc = tu_run_helper(out, sizeof(out), NULL, "read", path2, "0", NULL);
	if (rc != 0 || !strstr(out, "root (nil)"))
		fail_msg("helper: rc %d, %s", rc, out);
	assert_int_equal(ckpt_close(p), 0);
}

static void
open_missing_id(void **state)
{
	char path[512], copy[512];
	copy_path(path, sizeof(path), "miss.pool");
	copy_path(copy, sizeof(copy), "miss.copy");
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 4, .keep_checkpoints = 1 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	ckpt_id id1 = 0, id2 = 0;
	assert_int_equal(ckpt_checkpoint(p, NULL, &id1), 0);
	assert_int_equal(ckpt_checkpoint(p, NULL, &id2), 0);   /* retention drops id1 */
	assert_int_equal(ckpt_close(p), 0);
	tu_copy_file(path, copy);

	const ckpt_id missing[] = { id1, id2 + 1, 999, UINT64_MAX };
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		errno = 0;
		assert_null(ckpt_open(path, missing[i], NULL));
		assert_int_equal(errno, ENOENT);
		char want[64];
		snprintf(want, sizeof(want), "checkpoint %llu", (unsigned long long)missing[i]);
		if (!strstr(ckpt_errormsg(), want))
			fail_msg("message \"%s\" should name \"%s\"", ckpt_errormsg(), want);
		assert_true(tu_files_equal(path, copy));
	}
	p = must_open(path, id2);
	assert_int_equal(ckpt_close(p), 0);
}

static void
checkpoint_unchanged_by_open(void **state)
{
	char path[512];
	copy_path(path, sizeof(path), "imm.pool");
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 5 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	struct node *head = build_list(p, 20, 500);
	assert_int_equal(ckpt_set_root(p, head), 0);
	ckpt_id id = 0;
	assert_int_equal(ckpt_checkpoint(p, "frozen", &id), 0);
	assert_int_equal(ckpt_close(p), 0);

	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int seg = find_ckpt(&c, id);
	assert_true(seg >= 0);
	struct cat_entry before = c.e[seg];
	uint64_t off = c.hdr.data_off + (uint64_t)seg * c.hdr.seg_size;
	void *bytes = tu_read_range(path, off, c.hdr.seg_size);
	tu_catalog_free(&c);

	/* restart from it, in this process and in another, and scribble */
	char idbuf[32], out[512];
	snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)id);
	for (int round = 0; round < 2; round++) {
		p = must_open(path, id);
		for (struct node *x = ckpt_root(p); x; x = x->next) {
			x->value = 0xdead;
			memset(x->text, 'X', sizeof(x->text));
		}
		for (int i = 0; i < 100; i++)
			assert_non_null(ckpt_alloc(p, 1000));
		assert_int_equal(ckpt_set_root(p, NULL), 0);
		assert_int_equal(ckpt_checkpoint(p, "later", NULL), 0);
		int rc = tu_run_helper(out, sizeof(out), NULL, "read", path, idbuf, NULL);
		if (rc != 0)
			fail_msg("helper rc %d: %s", rc, out);
		assert_int_equal(ckpt_close(p), 0);
	}

	tu_catalog_read(path, &c);
	assert_int_equal(c.e[seg].state, CAT_CKPT);
	assert_int_equal(c.e[seg].ckpt_id, id);
	if (memcmp(&c.e[seg], &before, sizeof(before)) != 0)
		fail_msg("the catalog entry of checkpoint %llu changed", (unsigned long long)id);
	void *after = tu_read_range(path, off, c.hdr.seg_size);
	if (memcmp(bytes, after, c.hdr.seg_size) != 0)
		fail_msg("the bytes of checkpoint %llu changed after being opened",
			(unsigned long long)id);
	tu_catalog_free(&c);
	free(bytes);
	free(after);
}

/*
 * The crash test's heap: a struct whose fields are all derived from one
 * counter, so any checkpoint can be checked for being whole.
 */
#define CRASH_MAGIC 0x6372617368746573ull
#define CRASH_WORDS 2000
struct crash_state {
	uint64_t magic;
	uint64_t counter;
	uint64_t words[CRASH_WORDS];
	uint64_t counter_again;
};

/*
 * crash_child -- open the newest checkpoint and checkpoint in a loop, each
 * time with the next counter. Writes one byte to ready after the first
 * checkpoint. Never returns normally: killed, or exits with an error code.
 */
static void
crash_child(const char *path, int ready, int rounds)
{
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p) {
		fprintf(stderr, "crash child: open: %s\n", ckpt_errormsg());
		_exit(2);
	}
	struct crash_state *s = ckpt_root(p);
	if (!s || s->magic != CRASH_MAGIC)
		_exit(3);
	for (int i = 0; rounds < 0 || i < rounds; i++) {
		uint64_t c = s->counter + 1;
		s->counter = c;
		for (int w = 0; w < CRASH_WORDS; w++)
			s->words[w] = c * 1000003u + (uint64_t)w;
		s->counter_again = c;
		if (ckpt_checkpoint(p, "crash", NULL) != 0) {
			fprintf(stderr, "crash child: checkpoint: %s\n", ckpt_errormsg());
			_exit(4);
		}
		if (i == 0 && ready >= 0 && write(ready, "r", 1) != 1)
			_exit(5);
	}
	_exit(0);
}

/* check_crash_pool -- the catalog is sound, every checkpoint intact, the
 * newest one opens and is whole; returns its counter */
static uint64_t
check_crash_pool(const char *path, ckpt_id *newest)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);        /* validates checksums, ids, ranges */
	check_ckpt_sums(path, &c);
	*newest = newest_ckpt(&c);
	assert_true(*newest > 0);
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_CKPT)
			assert_true(c.e[i].ckpt_id < c.h->next_ckpt_id);
	tu_catalog_free(&c);

	ckpt_pool *p = must_open(path, CKPT_LATEST);
	const struct crash_state *s = ckpt_root(p);
	assert_non_null(s);
	assert_true(s->magic == CRASH_MAGIC);
	uint64_t cnt = s->counter;
	if (s->counter_again != cnt)
		fail_msg("torn checkpoint: counter %llu, counter_again %llu",
			(unsigned long long)cnt, (unsigned long long)s->counter_again);
	for (int w = 0; w < CRASH_WORDS; w++)
		if (s->words[w] != cnt * 1000003u + (uint64_t)w)
			fail_msg("torn checkpoint: word %d of counter %llu", w,
				(unsigned long long)cnt);
	assert_int_equal(ckpt_close(p), 0);
	return cnt;
}

static void
make_crash_pool(const char *path, unsigned max_segments)
{
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = max_segments,
		.keep_checkpoints = 1 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	struct crash_state *s = ckpt_calloc(p, 1, sizeof(*s));
	assert_non_null(s);
	s->magic = CRASH_MAGIC;
	for (int w = 0; w < CRASH_WORDS; w++)
		s->words[w] = (uint64_t)w;          /* counter 0 */
	assert_int_equal(ckpt_set_root(p, s), 0);
	assert_int_equal(ckpt_checkpoint(p, "start", NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
}

/* each named crash point of a checkpoint: before publish nothing changed, after it the new one is there */
static void
crash_points(void **state)
{
	static const struct { const char *point; int published; } pts[] = {
		{ "checkpoint:before-reserve", 0 },
		{ "checkpoint:before-copy", 0 },
		{ "checkpoint:before-persist", 0 },
		{ "checkpoint:after-persist", 0 },
		{ "checkpoint:before-publish", 0 },
		{ "checkpoint:after-publish", 1 },
	};
	char path[512];
	copy_path(path, sizeof(path), "points.pool");
	make_crash_pool(path, 12);
	ckpt_id last;
	uint64_t cnt = check_crash_pool(path, &last);
	for (size_t i = 0; i < sizeof(pts) / sizeof(pts[0]); i++) {
		pid_t pid = tu_fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			setenv("CKPT_TEST_CRASH_AT", pts[i].point, 1);
			crash_child(path, -1, 1);
		}
		int rc = tu_wait_exit(pid);
		if (rc != 128 + SIGKILL)
			fail_msg("%s: child ended with %d, not at the crash point", pts[i].point, rc);
		ckpt_id now;
		uint64_t c2 = check_crash_pool(path, &now);
		if (pts[i].published) {
			assert_true(now > last);
			assert_int_equal(c2, cnt + 1);
		} else {
			assert_int_equal(now, last);
			assert_int_equal(c2, cnt);
		}
		last = now;
		cnt = c2;
	}
}

static int
scale_small(void)
{
	const char *s = getenv("CKPT_TEST_SCALE");
	return s && strcmp(s, "small") == 0;
}

/* kill -9 at random instants during repeated checkpoints (catalog commits) */
static void
crash_random_kills(void **state)
{
	const int rounds = scale_small() ? 8 : 40;
	char path[512];
	copy_path(path, sizeof(path), "kills.pool");
	/* each killed process leaves its newest checkpoint (keep 1) for good,
	 * plus a dead heap and maybe a half-made checkpoint, reclaimed later */
	make_crash_pool(path, (unsigned)rounds + 8);
	ckpt_id last;
	uint64_t cnt = check_crash_pool(path, &last);
	for (int r = 0; r < rounds; r++) {
		int fds[2];
		assert_int_equal(pipe(fds), 0);
		pid_t pid = tu_fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(path, fds[1], -1);
		}
		close(fds[1]);
		char b;
		ssize_t n = read(fds[0], &b, 1);
		close(fds[0]);
		if (n == 1) {
			uint32_t delay;
			assert_int_equal(getrandom(&delay, sizeof(delay), 0), sizeof(delay));
			usleep(delay % 20000);
			kill(pid, SIGKILL);
		}
		int rc = tu_wait_exit(pid);
		if (rc != 128 + SIGKILL)
			fail_msg("round %d: child ended with %d before it was killed", r, rc);
		ckpt_id now;
		uint64_t c2 = check_crash_pool(path, &now);
		/* never goes back; the first checkpoint of each child was published */
		assert_true(now > last);
		assert_true(c2 > cnt);
		last = now;
		cnt = c2;
	}
}

static void
persist(void **state)
{
	char path[512];
	copy_path(path, sizeof(path), "persist.pool");
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 2 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	const char *kind = pool_kind_name(p);
	assert_non_null(kind);
	print_message("pool kind here: %s\n", kind);

	unsigned char *b = ckpt_alloc(p, 8192);
	assert_non_null(b);
	memset(b, 0xc3, 8192);
	assert_int_equal(ckpt_persist(p, b, 8192), 0);
	assert_int_equal(ckpt_persist(p, b + 1, 100), 0);    /* unaligned */
	assert_int_equal(ckpt_persist(p, b, 0), 0);
	/* the bytes are the file's */
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	uint64_t off = c.hdr.data_off + (uintptr_t)b - c.hdr.base;
	unsigned char *disk = tu_read_range(path, off, 8192);
	assert_memory_equal(disk, b, 8192);
	free(disk);
	uint64_t base = c.hdr.base, seg_size = c.hdr.seg_size;
	tu_catalog_free(&c);

	/* outside the heap */
	int local = 0;
	errno = 0;
	assert_int_equal(ckpt_persist(p, &local, sizeof(local)), -1);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strcasestr(ckpt_errormsg(), "outside"));
	/* starting inside, running past the end */
	errno = 0;
	assert_int_equal(ckpt_persist(p, (void *)(uintptr_t)(base + seg_size - 16), 4096), -1);
	assert_int_equal(errno, EINVAL);
	/* starting just below */
	errno = 0;
	assert_int_equal(ckpt_persist(p, (void *)(uintptr_t)(base - 16), 32), -1);
	assert_int_equal(errno, EINVAL);
	/* wrapping around the address space */
	errno = 0;
	assert_int_equal(ckpt_persist(p, b, SIZE_MAX), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_int_equal(ckpt_persist(NULL, b, 16), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ckpt_close(p), 0);
}

/* helper "kind PATH": create, report the kind, persist, checkpoint, reopen */
static int
helper_kind(const char *path)
{
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 3 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p) {
		printf("err %d %s\n", errno, ckpt_errormsg());
		return 1;
	}
	printf("kind %s\n", pool_kind_name(p));
	char *s = ckpt_alloc(p, 64);
	if (!s)
		return 2;
	strcpy(s, "persisted");
	ckpt_id id;
	if (ckpt_persist(p, s, 64) != 0 || ckpt_set_root(p, s) != 0 ||
	    ckpt_checkpoint(p, "kind", &id) != 0 || ckpt_close(p) != 0) {
		printf("err %d %s\n", errno, ckpt_errormsg());
		return 3;
	}
	p = ckpt_open(path, id, NULL);
	if (!p) {
		printf("err %d %s\n", errno, ckpt_errormsg());
		return 4;
	}
	printf("reopened kind %s root %s\n", pool_kind_name(p), (char *)ckpt_root(p));
	if (ckpt_persist(p, ckpt_root(p), 64) != 0)
		return 5;
	return ckpt_close(p) == 0 ? 0 : 6;
}

static void
persist_kinds(void **state)
{
	char out[512];
	static const char *plain_env[] = { "PMEM_IS_PMEM_FORCE", NULL };
	static const char *forced_env[] = { "PMEM_IS_PMEM_FORCE=1", NULL };
	const struct {
		const char *const *env;
		const char *kind;
		const char *file;
	} runs[] = {
		{ plain_env, "emulated", "kind-plain.pool" },
		{ forced_env, "emulated (pmem path forced)", "kind-forced.pool" },
	};
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		char path[512], want[256];
		copy_path(path, sizeof(path), runs[i].file);
		int rc = tu_run_helper(out, sizeof(out), runs[i].env, "kind", path, NULL);
		if (rc != 0)
			fail_msg("%s: helper rc %d: %s", runs[i].file, rc, out);
		snprintf(want, sizeof(want), "kind %s\nreopened kind %s root persisted\n",
			runs[i].kind, runs[i].kind);
		assert_string_equal(out, want);
	}
}

int
main(int argc, char **argv)
{
	/* fork mode copy: these tests are about a heap in its own MAP_SHARED
	 * segment: what a dead process leaves, persist kinds; auto settles to
	 * cow on a new pool (test_cow*.c), so ask for copy explicitly */
	setenv("CKPT_FORK_MODE", "copy", 1);
	if (argc >= 3 && strcmp(argv[1], "--helper") == 0) {
		if (strcmp(argv[2], "read") == 0 && argc == 5)
			return helper_read(argv[3], argv[4]);
		if (strcmp(argv[2], "write") == 0 && argc == 4)
			return helper_write(argv[3]);
		if (strcmp(argv[2], "kind") == 0 && argc == 4)
			return helper_kind(argv[3]);
		fprintf(stderr, "unknown helper %s\n", argv[2]);
		return 100;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(root_survives_new_process),
		cmocka_unit_test(open_latest_without_checkpoint),
		cmocka_unit_test(open_missing_id),
		cmocka_unit_test(checkpoint_unchanged_by_open),
		cmocka_unit_test(crash_points),
		cmocka_unit_test(crash_random_kills),
		cmocka_unit_test(persist),
		cmocka_unit_test(persist_kinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
