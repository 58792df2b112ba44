/*
 * test_fork_util.h -- helpers shared by the fork tests (tests/test_fork_*.c):
 * pools with a given fork mode, pipes to step parent and child in lock
 * step, reading a checkpoint's heap back through libckpt/inspect.h, and the
 * catalog entry of a process.
 */
#ifndef TEST_FORK_UTIL_H
#define TEST_FORK_UTIL_H 1

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libckpt.h"
#include "testutil.h"
#include "heap.h"
#include "inspect.h"

/* fk_create -- a pool of max_segments segments of 16 MiB with fork mode mode (asserts) */
static inline ckpt_pool *
fk_create(const char *path, enum ckpt_fork_mode mode, unsigned max_segments)
{
	struct ckpt_config c = { .heap_size = 16 << 20, .max_segments = max_segments,
		.fork_mode = mode };
	unsetenv("CKPT_FORK_MODE");
	unlink(path);
	ckpt_pool *p = ckpt_create(path, &c);
	if (!p)
		fail_msg("ckpt_create %s: %s", path, ckpt_errormsg());
	return p;
}

/* a pair of pipes: parent->child and child->parent, one byte or word per step */
struct fk_chan {
	int down[2], up[2];
};

/*
 * fk_fork -- a new channel and tu_fork (asserted): the child keeps down[0]
 * (from the parent) and up[1] (to it), the parent down[1] and up[0], the
 * other ends closed, so either side reads EOF once the other is gone.
 * Returns the pid, as fork does.
 */
static inline pid_t
fk_fork(struct fk_chan *c)
{
	assert_int_equal(pipe(c->down), 0);
	assert_int_equal(pipe(c->up), 0);
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	close(pid == 0 ? c->down[1] : c->down[0]);
	close(pid == 0 ? c->up[0] : c->up[1]);
	return pid;
}

static inline int
fk_send(int fd, uint64_t v)
{
	return write(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) ? 0 : -1;
}

/* fk_recv -- next word, or UINT64_MAX at EOF/error */
static inline uint64_t
fk_recv(int fd)
{
	uint64_t v;
	size_t got = 0;
	while (got < sizeof(v)) {
		ssize_t n = read(fd, (char *)&v + got, sizeof(v) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return UINT64_MAX;
		got += (size_t)n;
	}
	return v;
}

/*
 * fk_read_ckpt -- the heap of checkpoint id of pool path, read through
 * inspect (a private copy), checked with heap_check. *seg gets its segment.
 */
static inline void *
fk_read_ckpt(const char *path, ckpt_id id, size_t *len, uint32_t *seg)
{
	struct inspect in;
	if (inspect_open(&in, path) < 0)
		fail_msg("inspect_open: %s", ckpt_errormsg());
	char ref[32];
	snprintf(ref, sizeof(ref), "%llu", (unsigned long long)id);
	uint32_t s;
	if (inspect_resolve(&in, ref, &s) < 0)
		fail_msg("inspect_resolve %s: %s", ref, ckpt_errormsg());
	void *buf;
	if (inspect_read_heap(&in, s, &buf, len, NULL, NULL) < 0)
		fail_msg("inspect_read_heap: %s", ckpt_errormsg());
	struct heap_summary sum;
	if (heap_check(buf, *len, &sum) < 0)
		fail_msg("checkpoint %llu: heap_check: %s", (unsigned long long)id, ckpt_errormsg());
	if (seg)
		*seg = s;
	inspect_close(&in);
	return buf;
}

/* fk_at -- the bytes at heap address a inside a heap copy read from base */
static inline const void *
fk_at(const void *heapbuf, size_t len, const void *base, const void *a)
{
	uint64_t off = (uint64_t)((const char *)a - (const char *)base);
	assert_true(off < len);
	return (const char *)heapbuf + off;
}

/* fk_base -- the pool's base address (where the heap is mapped) */
static inline void *
fk_base(const char *path)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	void *b = (void *)(uintptr_t)c.hdr.base;
	tu_catalog_free(&c);
	return b;
}

/* fk_entry_of -- index of the LIVE entry owned by pid, or -1 */
static inline int
fk_entry_of(const char *path, pid_t pid, struct cat_entry *out)
{
	if (out)
		memset(out, 0, sizeof(*out));
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int found = -1;
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_LIVE && c.e[i].owner.pid == pid) {
			found = (int)i;
			if (out)
				*out = c.e[i];
		}
	tu_catalog_free(&c);
	return found;
}

/* fk_state_name -- what inspect says segment i is ("dead", "live", ...) */
static inline const char *
fk_state_name(const char *path, uint32_t i)
{
	static char name[32];
	struct inspect in;
	if (inspect_open(&in, path) < 0)
		fail_msg("inspect_open: %s", ckpt_errormsg());
	snprintf(name, sizeof(name), "%s", inspect_state_name(&in, i));
	inspect_close(&in);
	return name;
}

/* fk_count_state -- segments inspect names state */
static inline unsigned
fk_count_state(const char *path, const char *state)
{
	struct inspect in;
	if (inspect_open(&in, path) < 0)
		fail_msg("inspect_open: %s", ckpt_errormsg());
	unsigned n = 0;
	for (uint32_t i = 0; i < in.hdr.max_segments; i++)
		n += strcmp(inspect_state_name(&in, i), state) == 0;
	inspect_close(&in);
	return n;
}

/* fk_inspect_bin -- path of the built ckpt-inspect */
static inline const char *
fk_inspect_bin(void)
{
	static char b[1024];
	const char *d = getenv("CKPT_TEST_BINDIR");
	snprintf(b, sizeof(b), "%s/tools/ckpt-inspect", d ? d : ".");
	return b;
}


/* fk_root -- the root of the fork tests' heaps: words to write, a big block, a child's block */
struct fk_root {
	uint64_t a[8];
	char *big;
	uint64_t *child_block;
};
#define FK_BIG (1u << 20)

static inline int
fk_all(const char *p, char c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != c)
			return 0;
	return 1;
}

/*
 * fk_new_root -- a new root of p: a struct fk_root with a[0] = 0xA0 and,
 * with big_len > 0, a block of big_len bytes of 'P' (asserts)
 */
static inline struct fk_root *
fk_new_root(ckpt_pool *p, size_t big_len)
{
	struct fk_root *r = ckpt_calloc(p, 1, sizeof(*r));
	assert_non_null(r);
	assert_int_equal(ckpt_set_root(p, r), 0);
	if (big_len) {
		r->big = ckpt_alloc(p, big_len);
		assert_non_null(r->big);
		memset(r->big, 'P', big_len);
	}
	r->a[0] = 0xA0;
	return r;
}

/*
 * fk_isolation -- the two-way isolation scenario, in pool path created with
 * mode. The parent's heap holds a root struct and a 1 MiB block of 'P'.
 * After fork, in lock step: the child writes (a[1], the block to 'C', a new
 * block), the parent checks it sees none of that and writes a[2]; the child
 * checks it does not see a[2]; both checkpoint; both checkpoints are read
 * back through inspect and each holds exactly its own writes. With
 * shared != 0 (fork mode shared) the opposite is asserted: each sees the
 * other's writes, the unsafe behaviour the mode exists to show.
 * Returns the pool, still open, for further checks.
 */
static inline ckpt_pool *
fk_isolation(const char *path, enum ckpt_fork_mode mode, int shared)
{
	ckpt_pool *p = fk_create(path, mode, 8);
	struct fk_root *r = fk_new_root(p, FK_BIG);
	void *base = fk_base(path);

	struct fk_chan ch;
	pid_t pid = fk_fork(&ch);
	if (pid == 0) {
		int bad = 0;
		if (ckpt_root(p) != r || r->a[0] != 0xA0 || !fk_all(r->big, 'P', FK_BIG))
			bad |= 1;       /* the child starts with the parent's heap */
		r->a[1] = 0xC1;
		memset(r->big, 'C', FK_BIG);
		r->child_block = ckpt_alloc(p, 4096);
		if (!r->child_block)
			bad |= 2;
		else
			r->child_block[0] = 0xCB;
		fk_send(ch.up[1], 1);
		if (fk_recv(ch.down[0]) != 2)
			_exit(90);
		/* the parent wrote a[2] = 0xB2 and checked our writes */
		if (shared ? r->a[2] != 0xB2 : r->a[2] != 0)
			bad |= 4;
		if (!fk_all(r->big, 'C', FK_BIG))
			bad |= 8;
		ckpt_id id = 0;
		if (ckpt_checkpoint(p, "child", &id) < 0)
			bad |= 16;
		fk_send(ch.up[1], id);
		_exit(bad);
	}
	assert_int_equal(fk_recv(ch.up[0]), 1);
	if (shared) {
		assert_int_equal(r->a[1], 0xC1);         /* unsafe: the child's writes show */
		assert_true(fk_all(r->big, 'C', FK_BIG));
		assert_non_null(r->child_block);
	} else {
		assert_int_equal(r->a[1], 0);            /* isolated */
		assert_true(fk_all(r->big, 'P', FK_BIG));
		assert_null(r->child_block);
	}
	r->a[2] = 0xB2;
	assert_int_equal(fk_send(ch.down[1], 2), 0);
	ckpt_id cid = fk_recv(ch.up[0]);
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_true(cid != 0 && cid != UINT64_MAX);
	ckpt_id pidc;
	assert_int_equal(ckpt_checkpoint(p, "parent", &pidc), 0);
	if (!shared)
		assert_true(fk_all(r->big, 'P', FK_BIG));

	/* both checkpoints, as saved */
	size_t lc, lp;
	void *hc = fk_read_ckpt(path, cid, &lc, NULL);
	void *hp = fk_read_ckpt(path, pidc, &lp, NULL);
	const struct fk_root *rc = fk_at(hc, lc, base, r), *rp = fk_at(hp, lp, base, r);
	assert_int_equal(rc->a[0], 0xA0);
	assert_int_equal(rp->a[0], 0xA0);
	assert_int_equal(rc->a[1], 0xC1);
	assert_int_equal(rp->a[1], shared ? 0xC1 : 0);
	assert_int_equal(rc->a[2], shared ? 0xB2 : 0);
	assert_int_equal(rp->a[2], 0xB2);
	assert_true(fk_all(fk_at(hc, lc, base, r->big), 'C', FK_BIG));
	assert_true(fk_all(fk_at(hp, lp, base, r->big), shared ? 'C' : 'P', FK_BIG));
	assert_non_null(rc->child_block);
	assert_int_equal(*(const uint64_t *)fk_at(hc, lc, base, rc->child_block), 0xCB);
	if (!shared)
		assert_null(rp->child_block);
	inspect_free_heap(hc, lc);
	inspect_free_heap(hp, lp);
	close(ch.down[1]);
	close(ch.up[0]);
	return p;
}

#endif
