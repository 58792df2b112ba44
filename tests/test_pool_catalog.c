/*
 * test_pool_catalog.c -- a damaged current catalog copy does not make the
 * pool unopenable (issue 16, item 4).
 *
 * Real pools made by real processes, one bit flipped in the catalog copy
 * the commit word names (as a failing disk would), then:
 *   - ckpt-inspect verify reports the damage (exit 1) and what is lost;
 *     list still works, with a warning;
 *   - ckpt_open(CKPT_LATEST) succeeds on the backup copy (the catalog as it
 *     was before the last change), with the checkpoints it lists;
 *   - that open repairs both copies (generations only grow, the ids the
 *     lost change may have given out are not given again), and verify is
 *     clean afterwards; a later checkpoint commits as usual;
 *   - a lost publish loses exactly that checkpoint, said so;
 *   - a running heap whose segment the backup copy calls free makes the
 *     fallback refuse (EBUSY), for other processes and for itself, and
 *     leaves the file untouched;
 *   - a process killed between the two rewrites of the repair leaves a pool
 *     that opens, with verify clean;
 *   - a damaged backup copy is a warning (verify exits 0), nothing is lost
 *     and the next change rewrites it;
 *   - lockless readers see an intact catalog while copies are damaged and
 *     repaired under them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libckpt.h"
#include "testutil.h"
#include "catalog.h"
#include "layout.h"

static const struct ckpt_config cfg = { .heap_size = 4u << 20, .max_segments = 6,
	.fork_mode = CKPT_FORK_COPY };

/* make_pool -- checkpoints "a" (root "a") and "b" (root "b"); closed if close_it */
static void
make_pool(const char *path, int close_it)
{
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ckpt_pool *p = ckpt_create(path, &cfg);
		if (!p)
			_exit(3);
		char *s = ckpt_alloc(p, 16);
		if (!s)
			_exit(4);
		strcpy(s, "a");
		ckpt_set_root(p, s);
		ckpt_id id;
		if (ckpt_checkpoint(p, "a", &id) < 0 || id != 1)
			_exit(5);
		strcpy(s, "b");
		if (ckpt_checkpoint(p, "b", &id) < 0 || id != 2)
			_exit(6);
		if (close_it && ckpt_close(p) < 0)
			_exit(7);
		_exit(0);
	}
	assert_int_equal(tu_wait_exit(pid), 0);
}

static struct pool_hdr
read_hdr(const char *path)
{
	struct pool_hdr h;
	void *b = tu_read_range(path, 0, sizeof(h));
	memcpy(&h, b, sizeof(h));
	free(b);
	return h;
}

static uint64_t
read_word(const char *path)
{
	uint64_t w;
	void *b = tu_read_range(path, POOL_COMMIT_OFF, 8);
	memcpy(&w, b, 8);
	free(b);
	return w;
}

/* flip_copy -- flip one bit of catalog copy `which` (0 or 1) */
static void
flip_copy(const char *path, unsigned which)
{
	struct pool_hdr h = read_hdr(path);
	/* a byte of the last entry's label: only the checksum can tell */
	uint64_t off = layout_cat_off(&h, which) + sizeof(struct cat_hdr) +
		(uint64_t)(h.max_segments - 1) * sizeof(struct cat_entry) + 200;
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char b;
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

/* flip_current -- flip one bit of the catalog copy the commit word names; returns the word */
static uint64_t
flip_current(const char *path)
{
	uint64_t w = read_word(path);
	flip_copy(path, (unsigned)(w & 1));
	return w;
}

/* copy_gen -- generation of catalog copy i if it is intact, else 0 */
static uint64_t
copy_gen(const char *path, unsigned i)
{
	struct pool_hdr h = read_hdr(path);
	void *c = tu_read_range(path, layout_cat_off(&h, i), h.cat_size);
	struct cat_hdr ch;
	memcpy(&ch, c, sizeof(ch));
	uint64_t g = cat_validate(&h, c, ch.generation) == 0 ? ch.generation : 0;
	free(c);
	return g;
}

/* both_intact -- both copies intact, the named one current, the other one change behind */
static void
both_intact(const char *path)
{
	uint64_t w = read_word(path);
	uint64_t cur = copy_gen(path, w & 1), other = copy_gen(path, (w & 1) ^ 1);
	if (cur != w >> 1 || other + 1 != cur)
		fail_msg("%s: commit word generation %llu; copy %u holds %llu, copy %u %llu "
			"(0: damaged)", path, (unsigned long long)(w >> 1), (unsigned)(w & 1),
			(unsigned long long)cur, (unsigned)(w & 1) ^ 1,
			(unsigned long long)other);
}

/* inspect -- ckpt-inspect CMD PATH [--json] (the tool of this build); exit status, output in out */
static char out[16384];
static int
inspect_opt(const char *cmd, const char *path, const char *opt)
{
	const char *bindir = getenv("CKPT_TEST_BINDIR");
	if (!bindir)
		fail_msg("CKPT_TEST_BINDIR is not set: run the test with ctest");
	char tool[1024];
	snprintf(tool, sizeof(tool), "%s/tools/ckpt-inspect", bindir);
	char *const argv[] = { tool, (char *)cmd, (char *)path, (char *)"--no-progress",
		(char *)opt, NULL };
	return tu_run_capture(out, sizeof(out), argv);
}

static int
inspect(const char *cmd, const char *path)
{
	return inspect_opt(cmd, path, NULL);
}

static void
need_output(const char *what, const char *s)
{
	if (!strstr(out, s))
		fail_msg("%s: the output does not say \"%s\":\n%s", what, s, out);
}

/*
 * open_child -- in a new process: ckpt_open(path, CKPT_LATEST) must give root
 * text want, restarted from checkpoint from; then a checkpoint "c" (its id
 * written to *cid) and close. Exit status of the child (0 on success).
 */
static int
open_child(const char *path, const char *want, ckpt_id from, ckpt_id *cid)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = tu_fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
		if (!p) {
			fprintf(stderr, "ckpt_open: %s\n", ckpt_errormsg());
			_exit(3);
		}
		const char *s = ckpt_root(p);
		if (!s || strcmp(s, want) != 0)
			_exit(4);
		if (ckpt_restarted_from(p) != from)
			_exit(5);
		ckpt_id id;
		if (ckpt_checkpoint(p, "c", &id) < 0)
			_exit(6);
		if (write(fds[1], &id, sizeof(id)) != sizeof(id))
			_exit(7);
		_exit(ckpt_close(p) < 0 ? 8 : 0);
	}
	close(fds[1]);
	ckpt_id id = 0;
	if (read(fds[0], &id, sizeof(id)) != sizeof(id))
		id = 0;
	close(fds[0]);
	*cid = id;
	return tu_wait_exit(pid);
}

/* the lost change is the close: both checkpoints stay, the pool opens on "b" */
static void
test_fallback_lost_close(void **state)
{
	(void)state;
	const char *path = tu_path("close.pool");
	make_pool(path, 1);
	both_intact(path);
	uint64_t w = flip_current(path);

	assert_int_equal(inspect("verify", path), 1);
	need_output("verify", "the current catalog copy is damaged");
	need_output("verify", "that change is lost");
	assert_int_equal(inspect("list", path), 0);
	need_output("list", "warning: the current catalog copy");
	need_output("list", "checkpoint");
	assert_int_equal(inspect_opt("info", path, "--json"), 0);
	need_output("info --json", "\"catalog_fallback\":true");

	ckpt_id c;
	assert_int_equal(open_child(path, "b", 2, &c), 0);
	/* ids only grow: none the lost change may have given out is reused */
	assert_true(c > 2);
	assert_true(read_word(path) >> 1 > w >> 1);
	both_intact(path);
	tu_inspect_verify(path);
	assert_int_equal(inspect("verify", path), 0);
	need_output("verify", "backup copy: intact");
	assert_int_equal(inspect_opt("info", path, "--json"), 0);
	need_output("info --json", "\"catalog_fallback\":false");

	/* and it goes on as usual: another restart and checkpoint */
	ckpt_id c2;
	assert_int_equal(open_child(path, "b", c, &c2), 0);
	assert_true(c2 > c);
	both_intact(path);
	tu_inspect_verify(path);
}

/* the lost change is the publish of "b": "a" is the newest checkpoint left */
static void
test_fallback_lost_publish(void **state)
{
	(void)state;
	const char *path = tu_path("publish.pool");
	make_pool(path, 0);   /* no close: the last change published "b" */
	flip_current(path);
	assert_int_equal(inspect("verify", path), 1);
	need_output("verify", "a checkpoint it published is not listed");

	ckpt_id c;
	assert_int_equal(open_child(path, "a", 1, &c), 0);
	/* checkpoint 2 was published in the lost change: its id is not reused */
	assert_true(c > 2);
	pid_t pid = tu_fork();
	if (pid == 0) {
		ckpt_pool *p = ckpt_open(path, 2, NULL);
		_exit(p == NULL && errno == ENOENT ? 0 : 1);
	}
	assert_int_equal(tu_wait_exit(pid), 0);
	both_intact(path);
	tu_inspect_verify(path);
}

/*
 * A running heap the lost change created: the backup copy calls its segment
 * free. Nobody may fall back while it runs, not even the heap's own process.
 */
static void
test_fallback_refused_for_running_heap(void **state)
{
	(void)state;
	const char *path = tu_path("running.pool");
	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t a = tu_fork();
	assert_true(a >= 0);
	if (a == 0) {
		close(ready[0]);
		close(go[1]);
		ckpt_pool *p = ckpt_create(path, &cfg);   /* generation 2 names segment 0 */
		char c = p ? 'r' : 'x';
		if (write(ready[1], &c, 1) != 1 || !p)
			_exit(3);
		if (read(go[0], &c, 1) != 1)
			_exit(4);
		/* our own segment is free in the backup copy: refused */
		if (ckpt_checkpoint(p, "mine", NULL) == 0)
			_exit(5);
		if (errno != EBUSY || !strstr(ckpt_errormsg(), "running process"))
			_exit(6);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(c, 'r');
	flip_current(path);
	const char *copy = tu_path("running.copy");
	tu_copy_file(path, copy);

	pid_t b = tu_fork();
	if (b == 0) {
		ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
		if (p)
			_exit(3);
		_exit(errno == EBUSY && strstr(ckpt_errormsg(), "running process") ? 0 : 4);
	}
	assert_int_equal(tu_wait_exit(b), 0);
	if (!tu_files_equal(path, copy))
		fail_msg("a refused fallback changed the pool");

	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(tu_wait_exit(a), 0);
	close(ready[0]);
	close(go[1]);
	if (!tu_files_equal(path, copy))
		fail_msg("a refused fallback changed the pool");

	/* once the heap is gone, the fallback goes ahead: the older catalog
	 * holds no checkpoint */
	b = tu_fork();
	if (b == 0) {
		ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
		_exit(p == NULL && errno == ENOENT ? 0 : 1);
	}
	assert_int_equal(tu_wait_exit(b), 0);
	both_intact(path);
	tu_inspect_verify(path);
}

/* kill -9 between the two rewrites of the repair: the pool opens, verify is clean */
static void
test_repair_killed_midway(void **state)
{
	(void)state;
	const char *path = tu_path("midway.pool");
	make_pool(path, 1);
	uint64_t w = flip_current(path);
	pid_t pid = tu_fork();
	if (pid == 0) {
		setenv("CKPT_TEST_CRASH_AT", "catalog:repair-mid", 1);
		ckpt_open(path, CKPT_LATEST, NULL);
		_exit(3);   /* not reached */
	}
	assert_int_equal(tu_wait_exit(pid), 128 + SIGKILL);
	/* the damaged copy was rewritten and published; the other one is the
	 * older catalog, two changes behind */
	uint64_t w2 = read_word(path);
	assert_int_equal(w2 >> 1, (w >> 1) + 1);
	assert_int_equal(copy_gen(path, w2 & 1), (w >> 1) + 1);
	assert_int_equal(inspect("list", path), 0);
	if (strstr(out, "warning"))
		fail_msg("list warns about an intact pool:\n%s", out);
	assert_int_equal(inspect("verify", path), 0);
	need_output("verify", "too old to fall back to");

	ckpt_id c;
	assert_int_equal(open_child(path, "b", 2, &c), 0);
	both_intact(path);
	tu_inspect_verify(path);
}

/* a damaged backup copy: nothing is lost, verify warns (exit 0), the next change rewrites it */
static void
test_damaged_backup_copy(void **state)
{
	(void)state;
	const char *path = tu_path("backup.pool");
	make_pool(path, 1);
	uint64_t w = read_word(path);
	flip_copy(path, (unsigned)(w & 1) ^ 1);
	assert_int_equal(inspect("verify", path), 0);
	need_output("verify", "warning");
	need_output("verify", "backup copy is damaged");
	assert_int_equal(inspect("list", path), 0);
	if (strstr(out, "warning"))
		fail_msg("list warns although the current copy is intact:\n%s", out);
	ckpt_id c;
	assert_int_equal(open_child(path, "b", 2, &c), 0);
	assert_int_equal(c, 3);   /* nothing was lost: no id skipped */
	both_intact(path);
	assert_int_equal(inspect("verify", path), 0);
	need_output("verify", "backup copy: intact");
}

/*
 * Readers without the lock (ckpt-inspect's way) while processes repair
 * damaged copies again and again: every snapshot succeeds, from an intact
 * copy, and its checkpoints are the pool's.
 */
static void
test_readers_during_repair(void **state)
{
	(void)state;
	const char *path = tu_path("readers.pool");
	const char *stop = tu_path("readers.stop");
	make_pool(path, 1);
	pid_t reader = tu_fork();
	assert_true(reader >= 0);
	if (reader == 0) {
		struct pool_hdr h = read_hdr(path);
		int fd = open(path, O_RDONLY);
		void *meta = fd < 0 ? MAP_FAILED :
			mmap(NULL, h.data_off, PROT_READ, MAP_SHARED, fd, 0);
		void *copy = malloc(h.cat_size);
		if (meta == MAP_FAILED || !copy)
			_exit(3);
		unsigned long reads = 0, fallbacks = 0;
		while (access(stop, F_OK) != 0) {
			struct cat_source src;
			if (cat_snapshot_src(&h, meta, copy, &src) < 0) {
				fprintf(stderr, "snapshot %lu failed: %s\n", reads, ckpt_errormsg());
				_exit(4);
			}
			struct cat_view v;
			cat_view_of(&v, copy, h.max_segments);
			unsigned ck = 0;
			for (uint32_t i = 0; i < v.n; i++)
				ck += v.e[i].state == CAT_CKPT && v.e[i].ckpt_id <= 2;
			if (ck != 2) {   /* checkpoints 1 and 2 are never lost */
				fprintf(stderr, "snapshot %lu lists %u of checkpoints 1, 2\n", reads, ck);
				_exit(5);
			}
			reads++;
			fallbacks += (unsigned long)src.fallback;
		}
		printf("%lu snapshots, %lu from the backup copy\n", reads, fallbacks);
		fflush(stdout);
		_exit(reads > 0 ? 0 : 6);
	}
	for (int round = 0; round < 20; round++) {
		flip_current(path);
		pid_t pid = tu_fork();
		if (pid == 0) {
			ckpt_pool *p = ckpt_open(path, 2, NULL);
			_exit(p && ckpt_close(p) == 0 ? 0 : 3);
		}
		assert_int_equal(tu_wait_exit(pid), 0);
	}
	tu_write_file(stop, "", 0);
	assert_int_equal(tu_wait_exit(reader), 0);
	both_intact(path);
	tu_inspect_verify(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fallback_lost_close),
		cmocka_unit_test(test_fallback_lost_publish),
		cmocka_unit_test(test_fallback_refused_for_running_heap),
		cmocka_unit_test(test_repair_killed_midway),
		cmocka_unit_test(test_damaged_backup_copy),
		cmocka_unit_test(test_readers_during_repair),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
