/*
 * test_cow.c -- the copy-on-write engine (fork mode cow): a live heap that
 * is a private image of a checkpoint, incremental checkpoints (clone or
 * recycled images), restart without a copy, fork by the kernel's copy on
 * write. Real files, real processes, kill -9 at named points; every state
 * is checked byte for byte (test_checkpoint_util.h's generation structure)
 * and with ckpt-inspect verify.
 *
 * Helpers (a new process each, as a restarted service would be):
 *   --helper restart POOL ID N       open at ID (0: latest) in cow mode, check
 *                                    the structure of N nodes, print its gen
 *   --helper advance POOL GEN        open latest, move to GEN, checkpoint
 *                                    (the crash tests arm a point first)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_cow_util.h"

#define HEAP (32 * MiB)

static const struct ckpt_config cow_cfg = TC_CONFIG(HEAP, 3);

/* cow_create -- a new cow pool at path holding the structure at gen 1 */
static ckpt_pool *
cow_create(const char *path, const struct ckpt_config *cfg, struct ts_state **s)
{
	return tc_create(path, cfg, TC_NODES, s, 1);
}

/* checkpoint, restart and the meaning of ckpt_persist in cow mode */
static void
test_cow_basic(void **state)
{
	(void)state;
	const char *path = tu_path("basic.pool");
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cow_cfg, &s);
	ckpt_id a, b;
	assert_int_equal(ckpt_checkpoint(p, "one", &a), 0);
	/* persist writes the range's pages into our own segment (format 1.7:
	 * test_cow_persist.c); outside the heap it is EINVAL, as in every mode */
	assert_int_equal(ckpt_persist(p, s, sizeof(*s)), 0);
	assert_int_equal(p->eng->persisted, 1 + ((uintptr_t)s % 4096 + sizeof(*s) > 4096));
	assert_int_equal(ckpt_persist(p, (char *)p->hdr.base + p->hdr.seg_size, 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ts_modify(p, s, 2, 7), 0);
	assert_int_equal(ckpt_checkpoint(p, "two", &b), 0);
	char err[256];
	assert_int_equal(ts_check(ckpt_root(p), TC_NODES, err, sizeof(err)), 2);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(tc_gen(path, a), 1);
	assert_int_equal(tc_gen(path, b), 2);
	assert_int_equal(tc_gen(path, 0), 2);
	tu_inspect_verify(path);
}

/*
 * On a filesystem without clones, once the lineage holds keep checkpoints
 * each new one recycles the oldest and writes only the pages written since
 * it; every checkpoint kept restarts to exactly its generation.
 */
static void
test_cow_recycle(void **state)
{
	(void)state;
	const char *path = tu_path("recycle.pool");
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cow_cfg, &s);
	/* and a big block far up the heap, a few scattered pages of it
	 * rewritten each time (the checksum and verify see every byte) */
	const size_t tail_len = 6 * MiB;
	unsigned char *tail = ckpt_alloc(p, tail_len);
	assert_non_null(tail);
	memset(tail, 0x11, tail_len);
	ckpt_id ids[12];
	int64_t gens[12];
	unsigned recycled = 0;
	for (unsigned k = 0; k < 12; k++) {
		if (k > 0)
			assert_int_equal(ts_modify(p, s, k + 1, 97), 0);
		for (size_t pg = k % 7; pg < tail_len / 4096; pg += 7 + k)
			tail[pg * 4096 + k] = (unsigned char)(k + 1);
		assert_int_equal(ckpt_checkpoint(p, NULL, &ids[k]), 0);
		gens[k] = (int64_t)k + 1;
		uint64_t used = heap_high_water(p->heap);
		if (p->eng->last_recycled) {
			recycled++;
			/* what changed, not the heap: a structure rewrite touches
			 * its nodes' pages, never the untouched rest */
			assert_true(p->eng->last_written < used);
		}
	}
	if (!p->eng->last_cloned)
		assert_true(recycled >= 8);
	/* and, with page logs (format 1.9: the heap no longer re-bases), the
	 * checkpoint the heap maps, pinned */
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_CKPT),
			cow_cfg.keep_checkpoints + (p->eng->logging ? 1 : 0));
	tu_catalog_free(&c);
	assert_int_equal(ckpt_close(p), 0);
	for (unsigned k = 12 - cow_cfg.keep_checkpoints; k < 12; k++)
		assert_int_equal(tc_gen(path, ids[k]), gens[k]);
	tu_inspect_verify(path);
}

/* a restarted heap maps its checkpoint (pinned), then checkpoints on */
static void
test_cow_restart_continues(void **state)
{
	(void)state;
	const char *path = tu_path("cont.pool");
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cow_cfg, &s);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	for (uint64_t gen = 2; gen < 8; gen++) {
		p = ckpt_open(path, CKPT_LATEST, &cow_cfg);
		assert_non_null(p);
		assert_non_null(p->eng);
		char err[256];
		s = ckpt_root(p);
		assert_int_equal(ts_check(s, TC_NODES, err, sizeof(err)), (int64_t)gen - 1);
		assert_int_equal(ts_modify(p, s, gen, 13), 0);
		assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
		assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);   /* nothing changed */
		assert_int_equal(ckpt_close(p), 0);
		assert_int_equal(tc_gen(path, 0), (int64_t)gen);
	}
	tu_inspect_verify(path);
}

/* fork: the kernel's copy on write isolates both ways; both heaps checkpoint */
static void
test_cow_fork_isolation(void **state)
{
	(void)state;
	const char *path = tu_path("fork.pool");
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cow_cfg, &s);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ts_modify(p, s, 2, 5), 0);     /* unsaved, seen by the child */
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];
		close(pfd[0]);
		int bad = ts_check(ckpt_root(p), TC_NODES, err, sizeof(err)) != 2;
		bad |= ts_modify(p, s, 100, 3) != 0;
		ckpt_id id = 0;
		bad |= ckpt_checkpoint(p, "child", &id) != 0;
		/* it wrote the pages written since the base (the parent's
		 * before the fork, its own), not the whole heap */
		if (p->eng->tracker.method != DIRTY_ALL &&
		    p->eng->last_written >= heap_high_water(p->heap) / 2)
			bad |= 2;
		bad |= ts_check(ckpt_root(p), TC_NODES, err, sizeof(err)) != 100;
		bad |= write(pfd[1], &id, sizeof(id)) != sizeof(id);
		bad |= ckpt_close(p) != 0;
		_exit(bad);
	}
	close(pfd[1]);
	assert_int_equal(ts_modify(p, s, 50, 11), 0);
	ckpt_id child_id = 0;
	assert_int_equal(read(pfd[0], &child_id, sizeof(child_id)), sizeof(child_id));
	close(pfd[0]);
	assert_int_equal(tu_wait_exit(pid), 0);
	char err[256];
	assert_int_equal(ts_check(ckpt_root(p), TC_NODES, err, sizeof(err)), 50);
	ckpt_id mine;
	assert_int_equal(ckpt_checkpoint(p, "parent", &mine), 0);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(tc_gen(path, child_id), 100);
	assert_int_equal(tc_gen(path, mine), 50);
	tu_inspect_verify(path);
}

/*
 * A fork child maps its parent's base image: however fast the parent
 * checkpoints on (keep 1 drops the old image at once), the image stays until
 * the child is done with it, and is freed after.
 */
static void
test_cow_fork_pins_base(void **state)
{
	(void)state;
	const char *path = tu_path("pin.pool");
	struct ckpt_config c = cow_cfg;
	c.keep_checkpoints = 1;
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &c, &s);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);   /* the base: gen 1 */
	struct fk_chan ch;
	pid_t pid = fk_fork(&ch);
	if (pid == 0) {
		char b, err[256];
		if (read(ch.down[0], &b, 1) != 1)
			_exit(3);
		/* every page of it still reads from the parent's old image */
		int bad = ts_check(ckpt_root(p), TC_NODES, err, sizeof(err)) != 1;
		bad |= ckpt_close(p) != 0;
		if (write(ch.up[1], "d", 1) != 1)
			bad |= 4;
		_exit(bad);
	}
	for (uint64_t gen = 2; gen < 5; gen++) {
		assert_int_equal(ts_modify(p, s, gen, 2), 0);
		assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	}
	/* the child's image outlived retention */
	struct tu_catalog cat;
	tu_catalog_read(path, &cat);
	assert_int_equal(tu_catalog_count(&cat, CAT_CKPT), 2);
	tu_catalog_free(&cat);
	assert_int_equal(write(ch.down[1], "g", 1), 1);
	char b;
	assert_int_equal(read(ch.up[0], &b, 1), 1);
	assert_int_equal(tu_wait_exit(pid), 0);
	/* and is freed by the next pass once the child is gone */
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	tu_catalog_read(path, &cat);
	assert_int_equal(tu_catalog_count(&cat, CAT_CKPT), 1);
	tu_catalog_free(&cat);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

/*
 * A heap that never checkpointed maps its own (empty) segment: a fork child
 * maps it too, and when the parent closes, that segment is free in the
 * catalog yet still the child's image: nobody may take it, the child's own
 * first checkpoint included.
 */
static void
test_cow_fresh_fork_pins_parent_segment(void **state)
{
	(void)state;
	const char *path = tu_path("fresh.pool");
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cow_cfg, &s);     /* no checkpoint yet */
	const uint32_t parent_seg = p->seg;
	struct fk_chan ch;
	pid_t pid = fk_fork(&ch);
	if (pid == 0) {
		char b, err[256];
		/* the fork handlers have run: this heap has its own entry */
		if (write(ch.up[1], "r", 1) != 1 || read(ch.down[0], &b, 1) != 1)
			_exit(3);
		/* the parent is gone and its segment free: still this heap's image */
		int bad = ckpt_checkpoint(p, "child", NULL) != 0;
		bad |= (ckpt_root(p) == NULL ||
			ts_check(ckpt_root(p), TC_NODES, err, sizeof(err)) != 1) << 1;
		struct tu_catalog c;
		tu_catalog_read(path, &c);
		for (uint32_t i = 0; i < c.n; i++)
			if (c.e[i].state == CAT_CKPT && i == parent_seg)
				bad |= 4;   /* the image was written over the child's base */
		tu_catalog_free(&c);
		bad |= (ckpt_close(p) != 0) << 3;
		_exit(bad);
	}
	char r;
	assert_int_equal(read(ch.up[0], &r, 1), 1);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(write(ch.down[1], "g", 1), 1);
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_int_equal(tc_gen(path, 0), 1);
	tu_inspect_verify(path);
}

/*
 * Kernel I/O into and out of the heap right after a restart and right after
 * a fork: read(2), pread(2), O_DIRECT reads into pages never touched since
 * the mapping was made, write(2) from them; the kernel's writes are
 * tracked like the program's, so the next checkpoint holds them.
 */
#define IO_LEN (256u << 10)

static void
fill_file(const char *f, unsigned seed)
{
	unsigned char *b = malloc(IO_LEN);
	assert_non_null(b);
	for (unsigned i = 0; i < IO_LEN; i++)
		b[i] = (unsigned char)(i * 31 + seed);
	tu_write_file(f, b, IO_LEN);
	free(b);
}

/* kernel_io -- the checks, never asserting (children use them): 0 or -1 */
static int
kernel_io(unsigned char *buf, const char *f, unsigned seed)
{
	int fd = open(f, O_RDONLY);
	if (fd < 0 || read(fd, buf, IO_LEN / 2) != IO_LEN / 2 ||
	    pread(fd, buf + IO_LEN / 2, IO_LEN / 4, IO_LEN / 2) != IO_LEN / 4)
		return -1;
	close(fd);
	/* O_DIRECT where the filesystem has it (tmpfs has not) */
	fd = open(f, O_RDONLY | O_DIRECT);
	if (fd < 0 && errno == EINVAL)
		fd = open(f, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, buf + 3 * (IO_LEN / 4), IO_LEN / 4, 3 * (IO_LEN / 4));
	close(fd);
	if (n != IO_LEN / 4)
		return -1;
	for (unsigned i = 0; i < IO_LEN; i++)
		if (buf[i] != (unsigned char)(i * 31 + seed))
			return -1;
	/* and out of the heap */
	char out[64];
	snprintf(out, sizeof(out), "%s.out", f);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, buf, IO_LEN) != IO_LEN)
		return -1;
	close(fd);
	return tu_files_equal(f, out) ? 0 : -1;
}

static void
test_cow_kernel_io(void **state)
{
	(void)state;
	const char *path = tu_path("io.pool");
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cow_cfg, &s);
	unsigned char *buf = ckpt_aligned_alloc(p, 4096, IO_LEN);
	assert_non_null(buf);
	memset(buf, 0xee, IO_LEN);
	/* buf is found again at the same address after the restart */
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);

	/* right after a restart: nothing of buf was touched since the mapping */
	p = ckpt_open(path, CKPT_LATEST, &cow_cfg);
	assert_non_null(p);
	const char *f1 = tu_path("io1.bin"), *f2 = tu_path("io2.bin");
	fill_file(f1, 1);
	fill_file(f2, 2);
	assert_int_equal(kernel_io(buf, f1, 1), 0);
	ckpt_id after_io;
	assert_int_equal(ckpt_checkpoint(p, NULL, &after_io), 0);

	/* right after a fork, in both processes, on pages neither touched */
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);    /* re-based: all clean */
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(kernel_io(buf, f2, 2) == 0 ? 0 : 1);
	assert_int_equal(tu_wait_exit(pid), 0);
	/* the child's reads stayed in the child */
	for (unsigned i = 0; i < IO_LEN; i++)
		if (buf[i] != (unsigned char)(i * 31 + 1))
			fail_msg("byte %u of the parent's buffer changed by the child", i);
	assert_int_equal(ckpt_close(p), 0);

	/* the kernel's writes reached the checkpoint */
	p = ckpt_open(path, after_io, &cow_cfg);
	assert_non_null(p);
	for (unsigned i = 0; i < IO_LEN; i++)
		if (buf[i] != (unsigned char)(i * 31 + 1))
			fail_msg("byte %u of the checkpointed buffer is wrong", i);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

/*
 * kill -9 at every named point of a checkpoint, recycling included: the
 * pool verifies, and a restart finds the previous generation, or the new
 * one once it was published.
 */
static void
test_cow_crash_points(void **state)
{
	(void)state;
	static const char *const points[] = {
		"checkpoint:before-reserve", "checkpoint:before-copy", "checkpoint:mid-copy",
		"checkpoint:before-persist", "checkpoint:after-persist",
		"checkpoint:before-publish", "checkpoint:after-publish",
	};
	const char *path = tu_path("crash.pool");
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cow_cfg, &s);
	for (unsigned k = 0; k < 4; k++) {   /* the lineage is full: the next recycles */
		assert_int_equal(ts_modify(p, s, k + 2, 3), 0);
		assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	}
	assert_int_equal(ckpt_close(p), 0);
	int64_t gen = 5;
	for (unsigned i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		tc_run_killed(path, points[i], gen + 1);
		tu_inspect_verify(path);
		int64_t got = tc_gen(path, 0);
		int64_t want = strcmp(points[i], "checkpoint:after-publish") == 0 ? gen + 1 : gen;
		if (got != want)
			fail_msg("%s: restart found gen %" PRId64 ", want %" PRId64, points[i],
				got, want);
		gen = got;
	}
}

/* a background checkpoint forks (a plain fork) and the child writes the image */
static void
test_cow_background(void **state)
{
	(void)state;
	const char *path = tu_path("bg.pool");
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cow_cfg, &s);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ts_modify(p, s, 2, 5), 0);
	pid_t pid = ckpt_checkpoint_background(p, "bg");
	assert_true(pid > 0);
	assert_int_equal(ts_modify(p, s, 3, 5), 0);     /* after the fork: not in it */
	ckpt_id id;
	assert_int_equal(ckpt_checkpoint_wait(p, pid, &id, 0), 0);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(tc_gen(path, id), 2);
	tu_inspect_verify(path);
}

/*
 * A heap that checkpoints only in the background (Redis's BGSAVE model)
 * keeps mapping its base image, pinned. Each background checkpoint is that
 * base with the pages written since changed, so once retention drops one,
 * the next background child recycles it (its segment, written with the
 * pages that differ) instead of copying the base into a new segment. Every
 * one restarts to exactly the generation of its fork.
 */
static void
test_cow_background_recycles(void **state)
{
	(void)state;
	const char *path = tu_path("bgrecycle.pool");
	struct ckpt_config cfg = cow_cfg;
	cfg.keep_checkpoints = 2;
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cfg, &s);
	assert_int_equal(ckpt_checkpoint(p, "base", NULL), 0);
	unsigned recycled = 0;
	for (unsigned k = 0; k < 6; k++) {
		const int64_t gen = 10 + k;
		assert_int_equal(ts_modify(p, s, (uint64_t)gen, 7), 0);
		struct tu_catalog c;
		tu_catalog_read(path, &c);
		unsigned char was_ckpt[64] = { 0 };
		for (uint32_t i = 0; i < c.n && i < 64; i++)
			was_ckpt[i] = c.e[i].state == CAT_CKPT;
		tu_catalog_free(&c);
		pid_t pid = ckpt_checkpoint_background(p, "bg");
		assert_true(pid > 0);
		assert_int_equal(ts_modify(p, s, 100 + k, 7), 0);   /* not in it */
		ckpt_id id = 0;
		assert_int_equal(ckpt_checkpoint_wait(p, pid, &id, 0), 0);
		/* recycled: its segment held a checkpoint before it began */
		tu_catalog_read(path, &c);
		for (uint32_t i = 0; i < c.n && i < 64; i++)
			if (c.e[i].state == CAT_CKPT && c.e[i].ckpt_id == id)
				recycled += was_ckpt[i];
		tu_catalog_free(&c);
		assert_int_equal(tc_gen(path, id), gen);
	}
	/* the first two take segments (the lineage is the pinned base and
	 * then one more); from the third on, each recycles the one before
	 * the last */
	assert_int_equal(recycled, 4);
	assert_int_equal(ckpt_checkpoint(p, "sync", NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(tc_gen(path, 0), 105);
	tu_inspect_verify(path);
}

/* a pool made by format 1.0 cannot hold heaps in memory: cow is refused clearly */
static void
test_cow_old_pool_refused(void **state)
{
	(void)state;
	const char *path = tu_path("old.pool");
	unlink(path);
	struct ckpt_config c = { .heap_size = HEAP, .max_segments = 4,
		.fork_mode = CKPT_FORK_COPY };
	setenv("CKPT_TEST_FORMAT_1_1", "1", 1);    /* the geometry 1.0 had */
	ckpt_pool *p = ckpt_create(path, &c);
	unsetenv("CKPT_TEST_FORMAT_1_1");
	assert_non_null(p);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	/* make it a 1.0 pool, as an older libckpt wrote it */
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	struct pool_hdr h;
	assert_int_equal(pread(fd, &h, sizeof(h), 0), sizeof(h));
	h.minor = 0;
	h.flags = 0;
	layout_seal(&h);
	assert_int_equal(pwrite(fd, &h, sizeof(h), 0), sizeof(h));
	close(fd);
	assert_null(ckpt_open(path, CKPT_LATEST, &cow_cfg));
	assert_int_equal(errno, ENOTSUP);
	assert_non_null(strstr(ckpt_errormsg(), "format 1.0"));
	p = ckpt_open(path, CKPT_LATEST, &c);
	assert_non_null(p);
	assert_int_equal(ckpt_close(p), 0);
}

/*
 * CKPT_TEST_STEP_TIMES: a checkpoint that recycles says, on stderr, how long
 * each of its steps took, in the order they run; unset, nothing is written
 */
static void
test_cow_step_times(void **state)
{
	(void)state;
	const char *path = tu_path("steps.pool");
	const char *log = tu_path("steps.txt");
	struct ckpt_config cfg = cow_cfg;
	cfg.keep_checkpoints = 2;
	struct ts_state *s;
	ckpt_pool *p = cow_create(path, &cfg, &s);
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(2);
	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	unsetenv("CKPT_TEST_STEP_TIMES");
	int rc0 = ckpt_checkpoint(p, NULL, NULL);
	int rc1 = ts_modify(p, s, 2, 7) == 0 ? ckpt_checkpoint(p, NULL, NULL) : -1;
	/* a heap that logs keeps its base: the third checkpoint still copies */
	if (rc1 == 0 && ts_modify(p, s, 3, 7) == 0)
		rc1 = ckpt_checkpoint(p, NULL, NULL);
	size_t quiet = (size_t)lseek(fd, 0, SEEK_CUR);
	setenv("CKPT_TEST_STEP_TIMES", "1", 1);
	int rc2 = ts_modify(p, s, 4, 7) == 0 ? ckpt_checkpoint(p, NULL, NULL) : -1;
	unsetenv("CKPT_TEST_STEP_TIMES");
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	close(fd);
	assert_int_equal(rc0, 0);
	assert_int_equal(rc1, 0);
	assert_int_equal(rc2, 0);
	assert_int_equal(quiet, 0);
	assert_int_equal(p->eng->last_recycled, 1);
	assert_int_equal(p->eng->last_logged, p->eng->logging);
	size_t len;
	char *text = tu_read_file(log, &len);
	assert_non_null(text);
	text[len] = '\0';      /* tu_read_file leaves a byte for it */
	static const char *const steps[] = {
		"reserve", "scan", "base", "write", "sums", "build", "catalog-copy",
		"fdatasync", "rebase", "publish", "punch",
	};
	const char *at = text;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char name[64];
		unsigned long long us;
		int n = 0;
		assert_int_equal(sscanf(at, "ckpt-step %63s %llu\n%n", name, &us, &n), 2);
		assert_string_equal(name, steps[i]);
		assert_true(n > 0);
		at += n;
	}
	assert_int_equal(*at, '\0');
	free(text);
	assert_int_equal(ckpt_close(p), 0);
}

/* helper_restart -- "restart POOL ID N" (test_cow_util.h) */
static int
helper_restart(char **arg)
{
	return tc_helper_restart(arg, &cow_cfg, 0);
}

/* helper_advance -- "advance POOL GEN": open latest, move to GEN, checkpoint */
static int
helper_advance(char **arg)
{
	ckpt_pool *p = tc_helper_open(arg[0], CKPT_LATEST, &cow_cfg);
	if (!p)
		return 1;
	if (ts_modify(p, ckpt_root(p), strtoull(arg[1], NULL, 10), 3) < 0 ||
	    ckpt_checkpoint(p, NULL, NULL) < 0) {
		printf("advance: %s\n", ckpt_errormsg());
		return 1;
	}
	return ckpt_close(p) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	static const struct tu_helper helpers[] = {
		{ "restart", 3, helper_restart }, { "advance", 2, helper_advance }, { NULL },
	};
	tu_helper_main(argc, argv, helpers);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cow_basic),
		cmocka_unit_test(test_cow_recycle),
		cmocka_unit_test(test_cow_restart_continues),
		cmocka_unit_test(test_cow_fork_isolation),
		cmocka_unit_test(test_cow_fork_pins_base),
		cmocka_unit_test(test_cow_fresh_fork_pins_parent_segment),
		cmocka_unit_test(test_cow_kernel_io),
		cmocka_unit_test(test_cow_crash_points),
		cmocka_unit_test(test_cow_background),
		cmocka_unit_test(test_cow_background_recycles),
		cmocka_unit_test(test_cow_old_pool_refused),
		cmocka_unit_test(test_cow_step_times),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
