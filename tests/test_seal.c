/*
 * test_seal.c -- sealed pools (issue 15): the heap in memory, checkpoints
 * encrypted and authenticated, the key checked.
 *
 * Every test runs real processes on real files. The heap holds a state
 * whose every byte derives from a generation number, and a buffer full of
 * a secret pattern; a child creates or restarts the pool, writes, takes
 * checkpoints and is killed with SIGKILL; the test then restarts from what
 * it left and checks the state exactly, and scans every byte of the pool
 * file for the secret. The same workload on an unsealed pool leaves the
 * secret in the file, so the scan can fail.
 *
 * Keys, tampering and refusals: a wrong key (EKEYREJECTED), no key
 * (ENOKEY), a malformed key file and a key for an unsealed pool (EINVAL)
 * are refused before anything is decrypted; a flipped byte anywhere in a
 * checkpoint's ciphertext, in its tags or in its seal record is refused
 * naming the chunk (EBADMSG) or the record (EINVAL), and CKPT_LATEST
 * falls back to the older checkpoint. Fork children, background
 * checkpoints and retention work on sealed heaps (a fork with no
 * descriptor left gives a detached child); fork modes that cannot
 * (cow, reflink, shared) are refused; a pool of format 1.3 still opens.
 * ckpt-inspect reads headers and catalogs without the key, heaps only
 * with it. Key rotation (ckpt_reseal) re-seals every checkpoint into a new
 * pool that only the new key opens, and seals a pool that was not.
 * Under valgrind (CKPT_TEST_SCALE=small) every other tamper case and every
 * third crash point run.
 *
 * Over 800 lines: every case shares the generation-derived workload, the
 * killed child and the secret scan; apart they would each need a copy.
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libckpt.h"
#include "testutil.h"
#include "format.h"
#include "handle.h"
#include "layout.h"

#define MiB ((uint64_t)1 << 20)
#define ST_MAGIC 0x4c41455354534b43ull      /* "CKSTSEAL" */
#define SECRET "S3cr3t-P4tt3rn:libckpt-seal-test"
#define SECRET_BYTES (5 * MiB / 2)           /* more than one 2 MiB chunk */
#define WORDS ((size_t)(3 * MiB) / 8)

/* small -- CKPT_TEST_SCALE=small (the valgrind run): fewer crash points and tamper cases */
static int
small(void)
{
	const char *s = getenv("CKPT_TEST_SCALE");
	return s && strcmp(s, "small") == 0;
}

/* st -- the heap's state: a generation, words derived from it, the secret buffer */
struct st {
	uint64_t magic;
	uint64_t gen;
	uint64_t *words;        /* WORDS of them */
	char *secret;           /* SECRET_BYTES of the pattern */
};

static uint64_t
word_of(uint64_t gen, size_t i)
{
	uint64_t z = gen * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull + 1;
	z = (z ^ (z >> 31)) * 0x94d049bb133111ebull;
	return z ^ (z >> 29);
}

/* st_build -- a fresh state of generation gen as the root; NULL on failure */
static struct st *
st_build(ckpt_pool *p, uint64_t gen)
{
	struct st *s = ckpt_alloc(p, sizeof(*s));
	if (!s)
		return NULL;
	s->magic = ST_MAGIC;
	s->words = ckpt_alloc(p, WORDS * 8);
	s->secret = ckpt_alloc(p, SECRET_BYTES);
	if (!s->words || !s->secret)
		return NULL;
	for (size_t i = 0; i + sizeof(SECRET) - 1 <= SECRET_BYTES; i += sizeof(SECRET) - 1)
		memcpy(s->secret + i, SECRET, sizeof(SECRET) - 1);
	for (size_t i = 0; i < WORDS; i++)
		s->words[i] = word_of(gen, i);
	s->gen = gen;
	return ckpt_set_root(p, s) == 0 ? s : NULL;
}

/* st_set_gen -- move the state to generation gen */
static void
st_set_gen(struct st *s, uint64_t gen)
{
	for (size_t i = 0; i < WORDS; i++)
		s->words[i] = word_of(gen, i);
	s->gen = gen;
}

/* st_check -- the root's generation if the state is exact, else -1 */
static int64_t
st_check(ckpt_pool *p)
{
	struct st *s = ckpt_root(p);
	if (!s || s->magic != ST_MAGIC)
		return -1;
	for (size_t i = 0; i < WORDS; i++)
		if (s->words[i] != word_of(s->gen, i))
			return -1;
	if (memcmp(s->secret, SECRET, sizeof(SECRET) - 1) != 0)
		return -1;
	return (int64_t)s->gen;
}

/* write_key -- a key file at name: 64 hex digits derived from seed, or raw */
static const char *
write_key(const char *name, unsigned seed, int raw)
{
	unsigned char k[32];
	char hex[66];
	for (unsigned i = 0; i < 32; i++)
		k[i] = (unsigned char)(seed * 131 + i * 7 + 1);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", k[i]);
	hex[64] = '\n';
	const char *path = tu_path(name);
	if (raw)
		tu_write_file(path, k, 32);
	else
		tu_write_file(path, hex, 65);
	return path;
}

static struct ckpt_config
cfg_for(const char *key)
{
	struct ckpt_config c = { .heap_size = 16 * MiB, .max_segments = 8, .key_file = key };
	return c;
}

/* contains -- 1 if the file at path holds needle anywhere */
static int
contains(const char *path, const char *needle)
{
	size_t len, n = strlen(needle);
	char *buf = tu_read_file(path, &len);
	assert_non_null(buf);
	int found = memmem(buf, len, needle, n) != NULL;
	free(buf);
	return found;
}

/*
 * child_workload -- in a child: create (or restart) the pool, checkpoint
 * generation 1 and 2, move to generation 3 without checkpointing, and be
 * killed with SIGKILL before closing (status 128 + 9). Exit 1..: what failed.
 */
static int
child_workload(const char *path, const char *key, int create)
{
	pid_t pid = tu_fork();
	if (pid == 0) {
		struct ckpt_config c = cfg_for(key);
		ckpt_pool *p = create ? ckpt_create(path, &c) : ckpt_open(path, CKPT_LATEST, &c);
		if (!p)
			_exit(1);
		struct st *s = create ? st_build(p, 1) : ckpt_root(p);
		if (!s)
			_exit(2);
		st_set_gen(s, 1);
		if (ckpt_checkpoint(p, "one", NULL) < 0)
			_exit(3);
		st_set_gen(s, 2);
		if (ckpt_checkpoint(p, "two", NULL) < 0)
			_exit(4);
		st_set_gen(s, 3);
		raise(SIGKILL);
		_exit(5);
	}
	return tu_wait_exit(pid);
}

/* open_gen -- open path at from with key, check the state; its generation (asserts) */
static int64_t
open_gen(const char *path, const char *key, ckpt_id from)
{
	struct ckpt_config c = cfg_for(key);
	ckpt_pool *p = ckpt_open(path, from, &c);
	if (!p)
		fail_msg("ckpt_open %s: %s", path, ckpt_errormsg());
	int64_t g = st_check(p);
	assert_int_equal(ckpt_close(p), 0);
	return g;
}

/* the header of a pool file */
static struct pool_hdr
header_of(const char *path)
{
	struct pool_hdr h;
	void *b = tu_read_range(path, 0, sizeof(h));
	memcpy(&h, b, sizeof(h));
	free(b);
	return h;
}

/* find_ckpt -- the segment of checkpoint id in path's catalog (asserts) */
static uint32_t
find_ckpt(const char *path, ckpt_id id, struct cat_entry *out)
{
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_CKPT && c.e[i].ckpt_id == id) {
			if (out)
				*out = c.e[i];
			tu_catalog_free(&c);
			return i;
		}
	tu_catalog_free(&c);
	fail_msg("no checkpoint %llu", (unsigned long long)id);
	return 0;
}

/* a sealed pool survives kill -9: restart gives exactly the last checkpoint */
static void
test_seal_kill_restart(void **state)
{
	(void)state;
	const char *key = write_key("k1", 1, 0);
	char path[4096];
	snprintf(path, sizeof(path), "%s", tu_path("sealed.pool"));
	assert_int_equal(child_workload(path, key, 1), 128 + SIGKILL);

	struct pool_hdr h = header_of(path);
	assert_true(h.flags & POOL_F_SEALED);
	assert_int_equal(h.minor, 4);
	struct cat_entry e;
	find_ckpt(path, 2, &e);
	assert_true(e.flags & CAT_F_SEALED);
	assert_int_equal(open_gen(path, key, CKPT_LATEST), 2);
	assert_int_equal(open_gen(path, key, 1), 1);

	/* a restarted heap is sealed too: in memory, never persisted */
	struct ckpt_config c = cfg_for(key);
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &c);
	assert_non_null(p);
	struct st *s = ckpt_root(p);
	assert_int_equal(ckpt_persist(p, s, 64), -1);
	assert_int_equal(errno, ENOTSUP);
	assert_int_equal(ckpt_close(p), 0);

	/* and a second life restarts and is killed again */
	assert_int_equal(child_workload(path, key, 0), 128 + SIGKILL);
	assert_int_equal(open_gen(path, key, CKPT_LATEST), 2);
	tu_inspect_verify(path);
}

/*
 * kill -9 at every named point of a sealed checkpoint (and a restart):
 * the pool opens at the checkpoint the point implies, verify passes, and
 * no byte of the secret is in the file, half-written image included
 */
static void
test_seal_crash_points(void **state)
{
	(void)state;
	static const struct {
		const char *point;
		int64_t gen;            /* what CKPT_LATEST holds afterwards */
	} pts[] = {
		{ "checkpoint:before-reserve", 1 }, { "checkpoint:before-copy", 1 },
		{ "checkpoint:mid-copy", 1 }, { "checkpoint:before-persist", 1 },
		{ "checkpoint:after-persist", 1 }, { "checkpoint:before-publish", 1 },
		{ "checkpoint:after-publish", 2 },
	};
	const char *key = write_key("k10", 13, 0);
	for (size_t i = 0; i < sizeof(pts) / sizeof(pts[0]); i += small() ? 3 : 1) {
		char path[4096];
		snprintf(path, sizeof(path), "%s", tu_path("crash.pool"));
		unlink(path);
		pid_t pid = tu_fork();
		if (pid == 0) {
			struct ckpt_config c = cfg_for(key);
			ckpt_pool *p = ckpt_create(path, &c);
			struct st *s = p ? st_build(p, 1) : NULL;
			if (!s || ckpt_checkpoint(p, "one", NULL) < 0)
				_exit(1);
			st_set_gen(s, 2);
			setenv("CKPT_TEST_CRASH_AT", pts[i].point, 1);
			ckpt_checkpoint(p, "two", NULL);
			_exit(2);       /* the point was never reached */
		}
		int rc = tu_wait_exit(pid);
		if (rc != 128 + SIGKILL)
			fail_msg("%s: child exited %d", pts[i].point, rc);
		if (open_gen(path, key, CKPT_LATEST) != pts[i].gen)
			fail_msg("%s: the latest checkpoint is not generation %lld",
				pts[i].point, (long long)pts[i].gen);
		tu_inspect_verify(path);
		assert_false(contains(path, SECRET));
		assert_false(contains(path, "libckpt-seal-test"));
	}
}

/* no byte of the secret reaches the file; the unsealed control does leak it */
static void
test_seal_no_plaintext(void **state)
{
	(void)state;
	const char *key = write_key("k2", 2, 1);
	char sealed[4096], clear[4096];
	snprintf(sealed, sizeof(sealed), "%s", tu_path("secret-sealed.pool"));
	snprintf(clear, sizeof(clear), "%s", tu_path("secret-clear.pool"));
	assert_int_equal(child_workload(sealed, key, 1), 128 + SIGKILL);
	assert_int_equal(child_workload(sealed, key, 0), 128 + SIGKILL);
	assert_int_equal(child_workload(clear, NULL, 1), 128 + SIGKILL);
	assert_true(contains(clear, SECRET));         /* the scan can fail */
	assert_false(contains(sealed, SECRET));
	assert_false(contains(sealed, "S3cr3t-P"));   /* nor any part of it */
	assert_false(contains(sealed, "libckpt-seal-test"));
	assert_int_equal(open_gen(sealed, key, CKPT_LATEST), 2);
}

/* wrong, missing, malformed keys, and a key for an unsealed pool */
static void
test_seal_keys(void **state)
{
	(void)state;
	const char *key = write_key("k3", 3, 0);
	const char *other = write_key("k3-other", 4, 0);
	char path[4096], clear[4096];
	snprintf(path, sizeof(path), "%s", tu_path("keys.pool"));
	snprintf(clear, sizeof(clear), "%s", tu_path("keys-clear.pool"));
	assert_int_equal(child_workload(path, key, 1), 128 + SIGKILL);

	struct ckpt_config c = cfg_for(other);
	assert_null(ckpt_open(path, CKPT_LATEST, &c));
	assert_int_equal(errno, EKEYREJECTED);
	assert_non_null(strstr(ckpt_errormsg(), "wrong key"));

	unsetenv("CKPT_KEY_FILE");
	c = cfg_for(NULL);
	assert_null(ckpt_open(path, CKPT_LATEST, &c));
	assert_int_equal(errno, ENOKEY);
	assert_non_null(strstr(ckpt_errormsg(), "is sealed"));
	assert_null(ckpt_open(path, CKPT_LATEST, NULL));
	assert_int_equal(errno, ENOKEY);

	/* CKPT_KEY_FILE when the config names none */
	setenv("CKPT_KEY_FILE", key, 1);
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	assert_int_equal(st_check(p), 2);
	assert_int_equal(ckpt_close(p), 0);
	unsetenv("CKPT_KEY_FILE");

	const char *bad = tu_path("k3-bad");
	tu_write_file(bad, "0123456789abcdef\n", 17);
	c = cfg_for(bad);
	assert_null(ckpt_open(path, CKPT_LATEST, &c));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(ckpt_errormsg(), "64 hexadecimal digits"));
	c = cfg_for(tu_path("k3-missing"));
	assert_null(ckpt_create(tu_path("never.pool"), &c));
	assert_int_equal(errno, ENOENT);
	assert_int_equal(access(tu_path("never.pool"), F_OK), -1);

	assert_int_equal(child_workload(clear, NULL, 1), 128 + SIGKILL);
	c = cfg_for(key);
	assert_null(ckpt_open(clear, CKPT_LATEST, &c));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(ckpt_errormsg(), "not sealed"));
}

/* expect_refused -- opening checkpoint id fails with err, the message holding what */
static void
expect_refused(const char *path, const char *key, ckpt_id id, int err, const char *what)
{
	struct ckpt_config c = cfg_for(key);
	ckpt_pool *p = ckpt_open(path, id, &c);
	if (p)
		fail_msg("checkpoint %llu opened after tampering (%s)",
			(unsigned long long)id, what);
	assert_int_equal(errno, err);
	if (!strstr(ckpt_errormsg(), what))
		fail_msg("message '%s' does not say '%s'", ckpt_errormsg(), what);
}

/*
 * flipping any byte of a sealed checkpoint is refused, naming the chunk
 * (an eager restart: a lazy one fences a damaged chunk past the heap's
 * metadata instead, test_seal_lazy.c)
 */
static void
test_seal_tamper(void **state)
{
	(void)state;
	setenv("CKPT_RESTART", "eager", 1);
	const char *key = write_key("k4", 5, 0);
	char path[4096], work[4096];
	snprintf(path, sizeof(path), "%s", tu_path("tamper.pool"));
	snprintf(work, sizeof(work), "%s", tu_path("tamper-work.pool"));
	assert_int_equal(child_workload(path, key, 1), 128 + SIGKILL);
	struct pool_hdr h = header_of(path);
	struct cat_entry e = { 0 };
	uint32_t seg = find_ckpt(path, 2, &e);
	uint64_t so = layout_seg_off(&h, seg), slot = layout_sums_off(&h, seg);
	assert_true(e.used > 2 * 2 * MiB);

	struct {
		uint64_t off;
		int err;
		const char *what;
	} cases[] = {
		{ so + 17, EBADMSG, "chunk 0 (bytes 0-2097151)" },
		{ so + 2 * MiB + 4096, EBADMSG, "chunk 1 (bytes 2097152-" },
		{ so + e.used - 1, EBADMSG, "fails authentication" },
		{ slot + 128 + 16 + 3, EBADMSG, "chunk 1 " },          /* chunk 1's tag */
		{ slot + 72 + 5, EBADMSG, "chunk 0 " },                /* the salt */
		{ slot + 16, EINVAL, "record of another checkpoint" }, /* its id */
		{ slot, EINVAL, "seal record damaged" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i += small() ? 2 : 1) {
		tu_copy_file(path, work);
		tu_flip_byte(work, cases[i].off, 0x01);
		expect_refused(work, key, 2, cases[i].err, cases[i].what);
		/* the newest fails: CKPT_LATEST falls back to checkpoint 1 */
		struct ckpt_config c = cfg_for(key);
		ckpt_pool *p = ckpt_open(work, CKPT_LATEST, &c);
		assert_non_null(p);
		assert_int_equal(ckpt_restarted_from(p), 1);
		assert_int_equal(st_check(p), 1);
		assert_int_equal(ckpt_close(p), 0);
	}
	/* a ciphertext chunk moved to another place fails too */
	tu_copy_file(path, work);
	void *c0 = tu_read_range(work, so, 4096);
	void *c1 = tu_read_range(work, so + 2 * MiB, 4096);
	int fd = open(work, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, c1, 4096, (off_t)so), 4096);
	assert_int_equal(pwrite(fd, c0, 4096, (off_t)(so + 2 * MiB)), 4096);
	close(fd);
	free(c0);
	free(c1);
	expect_refused(work, key, 2, EBADMSG, "chunk 0 ");
	/* the untouched original still opens */
	assert_int_equal(open_gen(path, key, 2), 2);
	unsetenv("CKPT_RESTART");
}

/* fork children and background checkpoints: sealed heaps of their own */
static void
test_seal_fork_bgsave(void **state)
{
	(void)state;
	const char *key = write_key("k5", 6, 0);
	char path[4096];
	snprintf(path, sizeof(path), "%s", tu_path("fork.pool"));
	struct ckpt_config c = cfg_for(key);
	ckpt_pool *p = ckpt_create(path, &c);
	assert_non_null(p);
	struct st *s = st_build(p, 10);
	assert_non_null(s);

	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = tu_fork();
	if (pid == 0) {
		close(pfd[0]);
		/* the child's heap is its own copy: change it and checkpoint */
		st_set_gen(s, 11);
		ckpt_id id = 0;
		if (ckpt_checkpoint(p, "child", &id) < 0)
			_exit(1);
		if (write(pfd[1], &id, sizeof(id)) != (ssize_t)sizeof(id))
			_exit(2);
		raise(SIGKILL);
	}
	close(pfd[1]);
	ckpt_id child_id = 0;
	assert_int_equal(read(pfd[0], &child_id, sizeof(child_id)), (ssize_t)sizeof(child_id));
	close(pfd[0]);
	assert_int_equal(tu_wait_exit(pid), 128 + SIGKILL);
	assert_int_equal(st_check(p), 10);        /* the parent's is untouched */

	pid_t bg = ckpt_checkpoint_background(p, "bg");
	assert_true(bg > 0);
	st_set_gen(s, 12);                         /* after the fork: not in it */
	ckpt_id bg_id = 0;
	if (ckpt_checkpoint_wait(p, bg, &bg_id, 0) < 0)
		fail_msg("background checkpoint: %s", ckpt_errormsg());
	ckpt_id own = 0;
	assert_int_equal(ckpt_checkpoint(p, "own", &own), 0);
	assert_int_equal(ckpt_close(p), 0);

	assert_false(contains(path, SECRET));
	assert_int_equal(open_gen(path, key, child_id), 11);
	assert_int_equal(open_gen(path, key, bg_id), 10);
	assert_int_equal(open_gen(path, key, own), 12);
	tu_inspect_verify(path);
}

/*
 * a fork with no descriptor left (EMFILE): the child cannot claim an entry,
 * and runs on its inherited private memory, detached; the parent goes on
 */
static void
test_seal_fork_emfile(void **state)
{
	(void)state;
	const char *key = write_key("k11", 14, 0);
	const char *path = tu_path("emfile.pool");
	struct ckpt_config c = cfg_for(key);
	ckpt_pool *p = ckpt_create(path, &c);
	assert_non_null(p);
	struct st *s = st_build(p, 40);
	assert_non_null(s);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);

	struct tu_fds fds;
	tu_fds_exhaust(&fds);
	pid_t pid = tu_fork();
	if (pid == 0) {
		int bad = 0;
		if (!p->detached)
			bad |= 1;
		if (st_check(p) != 40)
			bad |= 2;
		errno = 0;
		if (ckpt_checkpoint(p, "child", NULL) != -1 || errno != ENOSPC)
			bad |= 4;
		st_set_gen(s, 41);
		if (ckpt_close(p) != 0)
			bad |= 8;
		_exit(bad);
	}
	tu_fds_restore(&fds);
	int rc = tu_wait_exit(pid);
	if (rc != 0)
		fail_msg("child status %d (bits: 1 has an entry, 2 not the parent's heap, "
			"4 checkpoint did not fail with ENOSPC, 8 close)", rc);
	assert_int_equal(st_check(p), 40);      /* the child's write: invisible */
	st_set_gen(s, 42);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(open_gen(path, key, CKPT_LATEST), 42);
	tu_inspect_verify(path);
}

/* retention frees sealed checkpoints like any others */
static void
test_seal_retention(void **state)
{
	(void)state;
	const char *key = write_key("k6", 7, 0);
	const char *path = tu_path("keep.pool");
	struct ckpt_config c = cfg_for(key);
	c.keep_checkpoints = 2;
	ckpt_pool *p = ckpt_create(path, &c);
	assert_non_null(p);
	struct st *s = st_build(p, 20);
	assert_non_null(s);
	ckpt_id ids[5];
	for (int i = 0; i < 5; i++) {
		st_set_gen(s, 20 + (uint64_t)i);
		assert_int_equal(ckpt_checkpoint(p, NULL, &ids[i]), 0);
	}
	assert_int_equal(ckpt_close(p), 0);
	struct tu_catalog cat;
	tu_catalog_read(path, &cat);
	assert_int_equal(tu_catalog_count(&cat, CAT_CKPT), 2);
	tu_catalog_free(&cat);
	assert_int_equal(open_gen(path, key, ids[3]), 23);
	assert_int_equal(open_gen(path, key, ids[4]), 24);
	c = cfg_for(key);
	assert_null(ckpt_open(path, ids[2], &c));
	assert_int_equal(errno, ENOENT);
}

/* fork modes a sealed pool cannot use are refused; a 1.3 pool still opens */
static void
test_seal_modes_and_format(void **state)
{
	(void)state;
	const char *key = write_key("k7", 8, 0);
	const char *path = tu_path("modes.pool");
	struct ckpt_config c = cfg_for(key);
	c.fork_mode = CKPT_FORK_COW;
	assert_null(ckpt_create(path, &c));
	assert_int_equal(errno, ENOTSUP);
	assert_non_null(strstr(ckpt_errormsg(), "sealed"));
	assert_int_equal(access(path, F_OK), -1);

	c = cfg_for(key);
	ckpt_pool *p = ckpt_create(path, &c);
	assert_non_null(p);
	assert_non_null(st_build(p, 30));
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	setenv("CKPT_FORK_MODE", "reflink", 1);
	assert_null(ckpt_open(path, CKPT_LATEST, &c));
	assert_int_equal(errno, ENOTSUP);
	setenv("CKPT_FORK_MODE", "shared", 1);
	assert_null(ckpt_open(path, CKPT_LATEST, &c));
	assert_int_equal(errno, ENOTSUP);
	unsetenv("CKPT_FORK_MODE");
	assert_int_equal(open_gen(path, key, CKPT_LATEST), 30);

	/* (the remote tier takes sealed pools: tests/test_remote_lib.sh,
	 * sealed_scenario) */

	/* a pool as the 1.3 library wrote it (minor 3, no key id) opens */
	const char *old = tu_path("old.pool");
	assert_int_equal(child_workload(old, NULL, 1), 128 + SIGKILL);
	struct pool_hdr h = header_of(old);
	assert_int_equal(h.minor, POOL_FORMAT_MINOR); /* young heaps (1.5), cow persist (1.7) */
	assert_false(h.flags & POOL_F_SEALED);
	h.flags &= ~POOL_F_YOUNG_HEAPS;
	h.minor = 3;
	layout_seal(&h);
	int fd = open(old, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	assert_int_equal(open_gen(old, NULL, CKPT_LATEST), 2);
}

/* inspect -- run ckpt-inspect with up to 6 arguments (NULL-terminated); exit status */
static int
inspect(char *out, size_t outlen, const char *a0, const char *a1, const char *a2,
		const char *a3, const char *a4, const char *a5)
{
	const char *bindir = getenv("CKPT_TEST_BINDIR");
	if (!bindir)
		fail_msg("CKPT_TEST_BINDIR is not set: run the test with ctest");
	char tool[1024];
	snprintf(tool, sizeof(tool), "%s/tools/ckpt-inspect", bindir);
	char *const argv[] = { tool, (char *)a0, (char *)a1, (char *)a2, (char *)a3,
		(char *)a4, (char *)a5, NULL };
	return tu_run_capture(out, outlen, argv);
}

/* ckpt-inspect: header and catalog without the key; heaps only with it */
static void
test_seal_inspect(void **state)
{
	(void)state;
	const char *key = write_key("k8", 9, 0);
	const char *other = write_key("k8-other", 10, 1);
	char path[4096];
	snprintf(path, sizeof(path), "%s", tu_path("inspect.pool"));
	assert_int_equal(child_workload(path, key, 1), 128 + SIGKILL);
	/* where the secret lies in the heap */
	struct ckpt_config c = cfg_for(key);
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &c);
	assert_non_null(p);
	char addr[32];
	snprintf(addr, sizeof(addr), "%p", (void *)((struct st *)ckpt_root(p))->secret);
	assert_int_equal(ckpt_close(p), 0);

	static char out[1 << 16];
	assert_int_equal(inspect(out, sizeof(out), "info", path, NULL, NULL, NULL, NULL), 0);
	assert_non_null(strstr(out, "sealed           yes, key id "));
	assert_int_equal(inspect(out, sizeof(out), "list", path, "--no-progress", NULL,
			NULL, NULL), 0);
	assert_non_null(strstr(out, "two"));
	assert_int_equal(inspect(out, sizeof(out), "verify", path, "--no-progress", NULL,
			NULL, NULL), 0);
	assert_non_null(strstr(out, "not checked without the key"));
	assert_int_equal(inspect(out, sizeof(out), "heap", path, "latest", "--no-progress",
			NULL, NULL), 1);
	assert_non_null(strstr(out, "--key-file"));
	assert_int_equal(inspect(out, sizeof(out), "dump", path, "latest", addr, "64",
			"--no-progress"), 1);
	assert_null(strstr(out, "S3cr3t"));

	assert_int_equal(inspect(out, sizeof(out), "heap", path, "latest", "--key-file", key,
			"--summary"), 0);
	char kopt[4200];
	snprintf(kopt, sizeof(kopt), "--key-file=%s", key);
	assert_int_equal(inspect(out, sizeof(out), "dump", path, "latest", addr, "64", kopt), 0);
	assert_non_null(strstr(out, "|S3cr3t-P4tt3rn:l|"));
	assert_int_equal(inspect(out, sizeof(out), "verify", path, "--key-file", key,
			"--no-progress", NULL), 0);
	assert_null(strstr(out, "not checked without the key"));

	assert_int_equal(inspect(out, sizeof(out), "heap", path, "latest", "--key-file", other,
			NULL), 1);
	assert_non_null(strstr(out, "wrong key"));
	/* a tampered chunk: verify with the key names it */
	char work[4096];
	snprintf(work, sizeof(work), "%s", tu_path("inspect-work.pool"));
	tu_copy_file(path, work);
	struct pool_hdr h = header_of(work);
	uint32_t seg = find_ckpt(work, 2, NULL);
	tu_flip_byte(work, layout_seg_off(&h, seg) + 2 * MiB + 5, 0x80);
	assert_int_equal(inspect(out, sizeof(out), "verify", work, "--key-file", key,
			"--no-progress", NULL), 1);
	assert_non_null(strstr(out, "chunk 1 (bytes 2097152-"));
}

/* ckpt_reseal: key rotation into a new pool; sealing a pool that was not */
static void
test_seal_reseal(void **state)
{
	(void)state;
	const char *key = write_key("k9", 11, 0);
	const char *key2 = write_key("k9-new", 12, 1);
	char path[4096], rot[4096], clear[4096], sealed[4096];
	snprintf(path, sizeof(path), "%s", tu_path("rot-old.pool"));
	snprintf(rot, sizeof(rot), "%s", tu_path("rot-new.pool"));
	snprintf(clear, sizeof(clear), "%s", tu_path("rot-clear.pool"));
	snprintf(sealed, sizeof(sealed), "%s", tu_path("rot-sealed.pool"));
	assert_int_equal(child_workload(path, key, 1), 128 + SIGKILL);

	/* refusals first: nothing is made */
	assert_int_equal(ckpt_reseal(path, rot, NULL, key2), -1);
	assert_int_equal(errno, ENOKEY);
	assert_int_equal(ckpt_reseal(path, rot, key2, key2), -1);
	assert_int_equal(errno, EKEYREJECTED);
	assert_int_equal(ckpt_reseal(path, rot, key, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ckpt_reseal(path, path, key, key2), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(access(rot, F_OK), -1);

	assert_int_equal(ckpt_reseal(path, rot, key, key2), 0);
	struct pool_hdr ho = header_of(path), hn = header_of(rot);
	assert_true(hn.flags & POOL_F_SEALED);
	assert_memory_not_equal(ho.key_id, hn.key_id, sizeof(hn.key_id));
	assert_memory_not_equal(ho.uuid, hn.uuid, sizeof(hn.uuid));
	assert_int_equal(hn.base, ho.base);
	struct cat_entry eo, en;
	find_ckpt(path, 1, &eo);
	find_ckpt(rot, 1, &en);
	assert_string_equal(en.label, "one");
	assert_int_equal(en.lineage, eo.lineage);
	assert_int_equal(en.time_ns, eo.time_ns);
	assert_true(en.checksum != eo.checksum);     /* encrypted anew */
	assert_int_equal(open_gen(rot, key2, 1), 1);
	assert_int_equal(open_gen(rot, key2, CKPT_LATEST), 2);
	struct ckpt_config c = cfg_for(key);
	assert_null(ckpt_open(rot, CKPT_LATEST, &c));  /* the old key no longer opens it */
	assert_int_equal(errno, EKEYREJECTED);
	assert_false(contains(rot, SECRET));
	tu_inspect_verify(rot);
	/* the new pool lives on: checkpoints continue its ids */
	c = cfg_for(key2);
	ckpt_pool *p = ckpt_open(rot, CKPT_LATEST, &c);
	assert_non_null(p);
	ckpt_id id = 0;
	assert_int_equal(ckpt_checkpoint(p, NULL, &id), 0);
	assert_int_equal(id, 3);
	assert_int_equal(ckpt_close(p), 0);

	/* a pool that was not sealed gets sealed; its secret leaves the copy */
	assert_int_equal(child_workload(clear, NULL, 1), 128 + SIGKILL);
	assert_int_equal(ckpt_reseal(clear, sealed, key, key2), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ckpt_reseal(clear, sealed, NULL, key2), 0);
	assert_true(contains(clear, SECRET));
	assert_false(contains(sealed, SECRET));
	assert_int_equal(open_gen(sealed, key2, CKPT_LATEST), 2);

	/* a tampered old checkpoint fails the whole re-seal, naming it; nothing is left */
	char work[4096], out[4096];
	snprintf(work, sizeof(work), "%s", tu_path("rot-work.pool"));
	snprintf(out, sizeof(out), "%s", tu_path("rot-out.pool"));
	tu_copy_file(path, work);
	struct pool_hdr h = header_of(work);
	uint32_t seg = find_ckpt(work, 2, NULL);
	tu_flip_byte(work, layout_seg_off(&h, seg) + 100, 0x04);
	assert_int_equal(ckpt_reseal(work, out, key, key2), -1);
	assert_int_equal(errno, EBADMSG);
	assert_non_null(strstr(ckpt_errormsg(), "chunk 0 "));
	assert_int_equal(access(out, F_OK), -1);
}

int
main(void)
{
	unsetenv("CKPT_KEY_FILE");
	unsetenv("CKPT_FORK_MODE");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_kill_restart),
		cmocka_unit_test(test_seal_no_plaintext),
		cmocka_unit_test(test_seal_crash_points),
		cmocka_unit_test(test_seal_keys),
		cmocka_unit_test(test_seal_tamper),
		cmocka_unit_test(test_seal_fork_bgsave),
		cmocka_unit_test(test_seal_fork_emfile),
		cmocka_unit_test(test_seal_retention),
		cmocka_unit_test(test_seal_modes_and_format),
		cmocka_unit_test(test_seal_inspect),
		cmocka_unit_test(test_seal_reseal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
