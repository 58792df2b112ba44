/*
 * test_checkpoint_util.h -- what the checkpoint tests share: a linked
 * structure in the heap whose every byte derives from a generation number
 * (so any checkpointed state can be recognised and checked exactly), and
 * small readers of a pool file's segments.
 *
 * The structure: root -> struct ts_state {magic, gen, n, head, sum}; a list
 * of n nodes linked by next, node i holding idx == i, val == ts_val(gen, i)
 * and skip pointing at node ts_skip(i, n), so pointers run both ways through
 * the heap. Children and helpers use the ts_* functions, which never assert:
 * they return an error text instead.
 */
#ifndef TEST_CHECKPOINT_UTIL_H
#define TEST_CHECKPOINT_UTIL_H 1

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libckpt.h"
#include "testutil.h"
#include "format.h"
#include "layout.h"

#define MiB ((uint64_t)1 << 20)
#define TS_MAGIC 0x5453544154534b43ull     /* "CKSTATST" */

struct ts_node {
	struct ts_node *next;
	struct ts_node *skip;
	uint64_t idx;
	uint64_t val;
};

struct ts_state {
	uint64_t magic;
	uint64_t gen;
	uint64_t n;
	struct ts_node *head;
	uint64_t sum;           /* sum of every val */
};

static inline uint64_t
ts_val(uint64_t gen, uint64_t i)
{
	uint64_t z = gen * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull + 1;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t
ts_skip(uint64_t i, uint64_t n)
{
	return (i * 7919 + 1) % n;
}

/* ts_link -- set val/skip of every node from arr and gen, then gen and sum */
static inline void
ts_link(struct ts_state *s, struct ts_node **arr, uint64_t gen)
{
	uint64_t sum = 0;
	for (uint64_t i = 0; i < s->n; i++) {
		arr[i]->val = ts_val(gen, i);
		arr[i]->skip = arr[ts_skip(i, s->n)];
		sum += arr[i]->val;
	}
	s->sum = sum;
	s->gen = gen;
}

/* ts_build -- a fresh structure of n nodes at generation gen, set as root; NULL on failure */
static inline struct ts_state *
ts_build(ckpt_pool *p, uint64_t n, uint64_t gen)
{
	struct ts_state *s = ckpt_calloc(p, 1, sizeof(*s));
	struct ts_node **arr = malloc(n * sizeof(*arr));
	if (!s || !arr) {
		free(arr);
		return NULL;
	}
	s->magic = TS_MAGIC;
	s->n = n;
	struct ts_node **link = &s->head;
	for (uint64_t i = 0; i < n; i++) {
		struct ts_node *x = ckpt_alloc(p, sizeof(*x));
		if (!x) {
			free(arr);
			return NULL;
		}
		x->idx = i;
		x->next = NULL;
		*link = x;
		link = &x->next;
		arr[i] = x;
	}
	ts_link(s, arr, gen);
	free(arr);
	if (ckpt_set_root(p, s) < 0)
		return NULL;
	return s;
}

/*
 * ts_modify -- move the structure to generation gen: replace every node
 * with (idx + gen) % every == 0 by a new block (freeing the old one), then
 * rewrite every val and skip. 0, or -1 if an allocation failed.
 */
static inline int
ts_modify(ckpt_pool *p, struct ts_state *s, uint64_t gen, uint64_t every)
{
	struct ts_node **arr = malloc(s->n * sizeof(*arr));
	if (!arr)
		return -1;
	struct ts_node **link = &s->head;
	for (uint64_t i = 0; i < s->n; i++) {
		struct ts_node *x = *link;
		if (every && (i + gen) % every == 0) {
			struct ts_node *y = ckpt_alloc(p, sizeof(*y));
			if (!y) {
				free(arr);
				return -1;
			}
			*y = *x;
			*link = y;
			memset(x, 0xdd, sizeof(*x));
			ckpt_free(p, x);
			x = y;
		}
		arr[i] = x;
		link = &x->next;
	}
	ts_link(s, arr, gen);
	free(arr);
	return 0;
}

/*
 * ts_check -- walk the structure reached from root and check every byte of
 * it against its generation. Returns the generation, or -1 with err filled.
 */
static inline int64_t
ts_check(const void *root, uint64_t want_n, char *err, size_t errlen)
{
	const struct ts_state *s = root;
	if (!s) {
		snprintf(err, errlen, "no root");
		return -1;
	}
	if (s->magic != TS_MAGIC || s->n != want_n) {
		snprintf(err, errlen, "root: magic %llx n %llu (want %llu)",
			(unsigned long long)s->magic, (unsigned long long)s->n,
			(unsigned long long)want_n);
		return -1;
	}
	/* nodes by index, to check skip pointers after the walk */
	const struct ts_node **arr = malloc(s->n * sizeof(*arr));
	if (!arr) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const struct ts_node *x = s->head;
	uint64_t sum = 0, i;
	for (i = 0; i < s->n; i++, x = x->next) {
		if (!x || x->idx != i || x->val != ts_val(s->gen, i)) {
			snprintf(err, errlen, "gen %llu: node %llu is %s",
				(unsigned long long)s->gen, (unsigned long long)i,
				!x ? "missing" : x->idx != i ? "out of order" : "wrong");
			free(arr);
			return -1;
		}
		arr[i] = x;
		sum += x->val;
	}
	int64_t ret = (int64_t)s->gen;
	if (x != NULL) {
		snprintf(err, errlen, "list longer than %llu", (unsigned long long)s->n);
		ret = -1;
	} else if (sum != s->sum) {
		snprintf(err, errlen, "gen %llu: sum mismatch", (unsigned long long)s->gen);
		ret = -1;
	}
	for (i = 0; ret >= 0 && i < s->n; i++)
		if (arr[i]->skip != arr[ts_skip(i, s->n)]) {
			snprintf(err, errlen, "gen %llu: node %llu: skip pointer wrong",
				(unsigned long long)s->gen, (unsigned long long)i);
			ret = -1;
		}
	free(arr);
	return ret;
}

/* -- reading pool files ------------------------------------------------- */

/* seg_bytes -- bytes [0, len) of segment i of the pool at path (malloc'd) */
static inline void *
seg_bytes(const char *path, const struct pool_hdr *h, uint32_t i, uint64_t len)
{
	return tu_read_range(path, layout_seg_off(h, i), len);
}

/* file_blocks -- bytes the file occupies on disk */
static inline uint64_t
file_blocks(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* newest_ckpt -- index of the catalog's newest checkpoint, or -1 */
static inline int
newest_ckpt(const struct tu_catalog *c)
{
	int best = -1;
	for (uint32_t i = 0; i < c->n; i++)
		if (c->e[i].state == CAT_CKPT &&
		    (best < 0 || c->e[i].ckpt_id > c->e[best].ckpt_id))
			best = (int)i;
	return best;
}

/* ckpt_index -- catalog index of checkpoint id, or -1 */
static inline int
ckpt_index(const struct tu_catalog *c, ckpt_id id)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->e[i].state == CAT_CKPT && c->e[i].ckpt_id == id)
			return (int)i;
	return -1;
}

/*
 * checkpoint_enospc -- a checkpoint of p on a full filesystem: it must fail
 * with ENOSPC, say the checkpoint failed and leave its id 0; what names
 * the case in the failure message
 */
static inline void
checkpoint_enospc(ckpt_pool *p, const char *what)
{
	errno = 0;
	ckpt_id id = 0;
	assert_int_equal(ckpt_checkpoint(p, "too big", &id), -1);
	int e = errno;
	const char *m = ckpt_errormsg();
	if (e != ENOSPC || !strstr(m, "checkpoint failed"))
		fail_msg("%s: errno %d, \"%s\"; want ENOSPC and a message saying the "
			"checkpoint failed", what, e, m);
	assert_int_equal(id, 0);
}

/* own_live_entry -- this process's live entry in the catalog of path (asserts it has exactly one) */
static inline struct cat_entry
own_live_entry(const char *path)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	struct cat_entry e;
	memset(&e, 0, sizeof(e));
	unsigned found = 0;
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_LIVE && c.e[i].owner.pid == getpid()) {
			e = c.e[i];
			found++;
		}
	tu_catalog_free(&c);
	assert_int_equal(found, 1);
	return e;
}

/* now_us -- CLOCK_MONOTONIC in µs */
static inline uint64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* test_scale_small -- CKPT_TEST_SCALE=small (valgrind runs) */
static inline int
test_scale_small(void)
{
	const char *s = getenv("CKPT_TEST_SCALE");
	return s && strcmp(s, "small") == 0;
}

#endif
