/*
 * test_seal_lazy.c -- the lazy sealed restart (restart.c, engine/lazy.c
 * with a produce source, seal/chunks.c's reader): ckpt_open of a sealed
 * pool checks the seal record and the chunks of the heap's metadata, and
 * returns; each other 2 MiB chunk is decrypted and authenticated on first
 * access (or by prefetch) into a buffer of the fill's thread and copied
 * into the heap.
 *
 * The pools hold three blocks of 5 MiB (A, B, C: chunks of their own)
 * filled with a known pattern, sealed with a test key. Each restart runs
 * in a forked child (a SIGBUS there is what one test wants), most with
 * CKPT_TEST_LAZY_NO_PREFETCH=1 so that a first access meets a hole:
 *
 *   - the program reads the checkpoint's bytes, with prefetch and without;
 *   - the kernel writes into holes (read(2), pread(2) into a heap buffer)
 *     and reads from them (write(2) from the heap);
 *   - a flipped byte in C's ciphertext: ckpt_open returns, A and B read
 *     right, the first touch of C dies with SIGBUS and stderr names the
 *     checkpoint, segment, chunk and byte range; a checkpoint of that heap
 *     is refused (EIO), never a SIGBUS in the library; CKPT_RESTART=eager
 *     refuses the checkpoint (EBADMSG); a flipped byte in the heap's
 *     metadata chunk is refused by the lazy restart too;
 *   - a fork and a checkpoint in the middle of a fill complete it first:
 *     the child and the new checkpoint hold every byte; the pool file never
 *     holds the plaintext;
 *   - CKPT_RESTART=eager restarts eagerly, with the same bytes.
 *
 * The pools, the children and the mid-fill sequence are test_lazy.c's
 * (test_lazy_util.h). It needs a userfaultfd that takes kernel faults (root here); without
 * one the tests skip with a message. No valgrind run (valgrind has no
 * userfaultfd: test_seal covers the eager path under it).
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
#include <sys/wait.h>
#include <unistd.h>

#include "libckpt.h"
#include "testutil.h"
#include "handle.h"
#include "layout.h"

#define MiB ((uint64_t)1 << 20)
#define CHUNK (2 * MiB)

static char key_path[4096];

/* lazy_cfg, lazy_fill_on -- for test_lazy_util.h: sealed pools, the restart's fill */
static struct ckpt_config
lazy_cfg(void)
{
	struct ckpt_config c = { .heap_size = 64 * MiB, .max_segments = 6,
		.keep_checkpoints = 2, .key_file = key_path };
	return c;
}

static int
lazy_fill_on(const ckpt_pool *p)
{
	return p->fill != NULL;
}

#include "test_lazy_util.h"

static void
test_seal_lazy_reads(void **state)
{
	(void)state;
	if (!lazy_possible())
		skip();
	const char *path = tu_path("reads.pool");
	make_pool(path, 3);
	const char *noprefetch[] = { "CKPT_TEST_LAZY_NO_PREFETCH=1", "CKPT_RESTART", NULL };
	assert_int_equal(in_child(child_all_ok, path, noprefetch, NULL), 20);
	const char *prefetch[] = { "CKPT_TEST_LAZY_NO_PREFETCH", "CKPT_RESTART", NULL };
	assert_int_equal(in_child(child_all_ok, path, prefetch, NULL), 20);
	/* CKPT_RESTART=eager: every chunk decrypted before ckpt_open returns */
	const char *eager[] = { "CKPT_RESTART=eager", NULL };
	assert_int_equal(in_child(child_all_ok, path, eager, NULL), 0);
	/* no thread: decrypted in ckpt_open, same bytes */
	const char *nothread[] = { "CKPT_TEST_LAZY_NO_THREAD=1", NULL };
	assert_int_equal(in_child(child_all_ok, path, nothread, NULL), 0);
}

static void
test_seal_lazy_kernel_io(void **state)
{
	(void)state;
	if (!lazy_possible())
		skip();
	const char *path = tu_path("kio.pool");
	make_pool(path, 5);
	const char *env[] = { "CKPT_TEST_LAZY_NO_PREFETCH=1", "CKPT_RESTART", NULL };
	assert_int_equal(in_child(child_kernel_io, path, env, NULL), 0);
}

/* c_offset -- the heap offset of the middle of block C of the newest checkpoint */
static uint64_t
c_offset(const char *path)
{
	setenv("CKPT_RESTART", "eager", 1);
	struct ckpt_config c = lazy_cfg();
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &c);
	unsetenv("CKPT_RESTART");
	assert_non_null(p);
	struct root *r = ckpt_root(p);
	uint64_t at = (uint64_t)(uintptr_t)(r->blk[2] + BLOCK / 2) - p->hdr.base;
	assert_int_equal(ckpt_close(p), 0);
	return at;
}

/* child_no_checkpoint -- a heap with a fenced chunk: its checkpoint is refused */
static int
child_no_checkpoint(const char *path)
{
	ckpt_pool *p = open_lazy(path);
	if (!p)
		return 10;
	errno = 0;
	if (ckpt_checkpoint(p, NULL, NULL) == 0)
		return 11;
	if (errno != EIO || !strstr(ckpt_errormsg(), "fenced")) {
		fprintf(stderr, "checkpoint: %s\n", ckpt_errormsg());
		return 12;
	}
	struct root *r = ckpt_root(p);
	for (int b = 0; b < 2; b++)
		if (!block_ok(r, b))
			return 13 + b;
	return ckpt_close(p) == 0 ? 0 : 15;
}

/* child_refused -- the damaged checkpoint (the only one) must be refused, naming a chunk */
static int
child_refused(const char *path)
{
	struct ckpt_config c = lazy_cfg();
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &c);
	if (p)
		return 10;
	fprintf(stderr, "%s\n", ckpt_errormsg());
	if (errno != EBADMSG)
		return 11;
	return strstr(ckpt_errormsg(), "fails authentication") ? 0 : 12;
}

static void
test_seal_lazy_damaged_chunk(void **state)
{
	(void)state;
	if (!lazy_possible())
		skip();
	const char *path = tu_path("damaged.pool");
	ckpt_id id = make_pool(path, 7);
	uint64_t at = c_offset(path);
	tu_flip_byte(path, seg_of(path, id) + at, 0x10);
	char errfile[4096], want[128];
	snprintf(errfile, sizeof(errfile), "%s.stderr", path);
	uint64_t chunk = at / CHUNK;
	snprintf(want, sizeof(want), "chunk %llu (bytes %llu-%llu) fails authentication",
		(unsigned long long)chunk, (unsigned long long)(chunk * CHUNK),
		(unsigned long long)((chunk + 1) * CHUNK - 1));
	for (int prefetch = 0; prefetch < 2; prefetch++) {
		const char *env[] = { prefetch ? "CKPT_TEST_LAZY_NO_PREFETCH" :
			"CKPT_TEST_LAZY_NO_PREFETCH=1", "CKPT_RESTART", NULL };
		int st = in_child(child_damaged, path, env, errfile);
		size_t n;
		char *msg = tu_read_file(errfile, &n);
		if (st != 128 + SIGBUS)
			fail_msg("the first touch of the damaged chunk: status %d, want SIGBUS; "
				"stderr: \"%s\"", st, msg);
		char ckpt[64];
		snprintf(ckpt, sizeof(ckpt), "sealed checkpoint %llu (segment ",
			(unsigned long long)id);
		if (!strstr(msg, want) || !strstr(msg, ckpt) || !strstr(msg, "fenced"))
			fail_msg("no message naming the damaged chunk (\"%s\") on stderr: \"%s\"",
				want, msg);
		free(msg);
	}
	const char *env[] = { "CKPT_RESTART", NULL };
	assert_int_equal(in_child(child_no_checkpoint, path, env, errfile), 0);
	/* an eager restart refuses it before the program runs */
	const char *eager[] = { "CKPT_RESTART=eager", NULL };
	assert_int_equal(in_child(child_refused, path, eager, errfile), 0);
	/* the chunk of the heap's metadata is checked before ckpt_open returns:
	 * damage there refuses the checkpoint, lazily too */
	tu_flip_byte(path, seg_of(path, id) + at, 0x10);   /* C whole again */
	tu_flip_byte(path, seg_of(path, id) + 64, 0x01);   /* the heap's header */
	assert_int_equal(in_child(child_refused, path, env, errfile), 0);
	size_t n;
	char *msg = tu_read_file(errfile, &n);
	if (!strstr(msg, "chunk 0 (bytes 0-2097151)"))
		fail_msg("the refusal does not name chunk 0: \"%s\"", msg);
	free(msg);
	unlink(errfile);
}

/* child_close_mid_fill -- close with holes left: the fill stops, no hang */
static int
child_close_mid_fill(const char *path)
{
	ckpt_pool *p = open_lazy(path);
	if (!p)
		return 10;
	return ckpt_close(p) == 0 ? 0 : 11;
}

static void
test_seal_lazy_fork_and_checkpoint_mid_fill(void **state)
{
	(void)state;
	if (!lazy_possible())
		skip();
	const char *path = tu_path("midfill.pool");
	make_pool(path, 9);
	const char *env[] = { "CKPT_TEST_LAZY_NO_PREFETCH=1", "CKPT_RESTART", NULL };
	assert_int_equal(in_child(child_close_mid_fill, path, env, NULL), 0);
	mid_fill_checks(path, env);
	/* the fills' plaintext never reached the file: no 4 KiB of B's pattern */
	unsigned char needle[4096];
	for (size_t i = 0; i < sizeof(needle); i++)
		needle[i] = pattern(9, 1, i);
	size_t len;
	char *file = tu_read_file(path, &len);
	assert_non_null(file);
	assert_null(memmem(file, len, needle, sizeof(needle)));
	free(file);
}

int
main(void)
{
	unsetenv("CKPT_KEY_FILE");
	unsetenv("CKPT_FORK_MODE");
	unsigned char k[32];
	for (unsigned i = 0; i < 32; i++)
		k[i] = (unsigned char)(i * 37 + 11);
	snprintf(key_path, sizeof(key_path), "%s", tu_path("lazy.key"));
	tu_write_file(key_path, k, sizeof(k));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_lazy_reads),
		cmocka_unit_test(test_seal_lazy_kernel_io),
		cmocka_unit_test(test_seal_lazy_damaged_chunk),
		cmocka_unit_test(test_seal_lazy_fork_and_checkpoint_mid_fill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
