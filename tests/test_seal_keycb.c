/*
 * test_seal_keycb.c -- the program's key callback (ckpt_set_key_callback):
 * a source of keys for sealed pools besides key files.
 *
 * One callback stands for the program's key store: it counts its calls,
 * records the path it was asked for, and answers with key 1, key 2, no key
 * or a failure, as the test sets it. On real pool files:
 *   - ckpt_create with the callback giving a key makes a sealed pool (its
 *     open without a key is ENOKEY); giving none makes an unsealed one;
 *   - ckpt_open of the sealed pool with the callback's key restarts it
 *     exactly; the key file holding the same key opens it too; another key
 *     is EKEYREJECTED, no key ENOKEY, a failing callback its errno (EACCES),
 *     with a message naming the callback;
 *   - ckpt_config.key_file wins over the callback (not even asked), and an
 *     unsealed pool never asks it;
 *   - ckpt_set_key_callback(NULL, ...) removes it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libckpt.h"
#include "testutil.h"

#define MiB ((size_t)1 << 20)
#define PATTERN "key-callback-pattern"

/* what the callback answers, how often it was asked, and for which pool */
static struct {
	int answer;             /* 1, 2: that key; 0: none; -1: fail with EACCES */
	int calls;
	char path[4096];
} cb;

/* fill_key -- test key n (1 or 2) */
static void
fill_key(int n, unsigned char key[32])
{
	for (int i = 0; i < 32; i++)
		key[i] = (unsigned char)(n * 59 + i * 3);
}

/* key_cb -- the program's key store */
static int
key_cb(void *arg, const char *path, unsigned char key[32])
{
	assert_ptr_equal(arg, &cb);
	cb.calls++;
	snprintf(cb.path, sizeof(cb.path), "%s", path);
	if (cb.answer < 0) {
		errno = EACCES;
		return -1;
	}
	if (cb.answer == 0)
		return 0;
	fill_key(cb.answer, key);
	return 1;
}

static const struct ckpt_config cfg = { .heap_size = 16 * MiB, .max_segments = 4 };

/* refused -- ckpt_open of path fails with err; the message holds what */
static void
refused(const char *path, int err, const char *what)
{
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &cfg);
	if (p)
		fail_msg("%s opened; expected errno %d", path, err);
	assert_int_equal(errno, err);
	if (!strstr(ckpt_errormsg(), what))
		fail_msg("message '%s' does not say '%s'", ckpt_errormsg(), what);
}

/* opens_with -- ckpt_open of path with c restarts the pattern */
static void
opens_with(const char *path, const struct ckpt_config *c)
{
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, c);
	if (!p)
		fail_msg("ckpt_open %s: %s", path, ckpt_errormsg());
	const char *s = ckpt_root(p);
	assert_non_null(s);
	assert_string_equal(s, PATTERN);
	assert_int_equal(ckpt_close(p), 0);
}

/* create_with_pattern -- create path (cfg, callback as set), root the pattern, checkpoint */
static void
create_with_pattern(const char *path)
{
	unlink(path);
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p)
		fail_msg("ckpt_create %s: %s", path, ckpt_errormsg());
	char *s = ckpt_alloc(p, sizeof(PATTERN));
	assert_non_null(s);
	memcpy(s, PATTERN, sizeof(PATTERN));
	assert_int_equal(ckpt_set_root(p, s), 0);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
}

static void
test_keycb_sealed(void **state)
{
	(void)state;
	const char *path = tu_path("cb-sealed.pool");
	assert_int_equal(ckpt_set_key_callback(key_cb, &cb), 0);
	cb.answer = 1;
	cb.calls = 0;
	create_with_pattern(path);
	assert_int_equal(cb.calls, 1);
	assert_string_equal(cb.path, path);
	/* the callback's key restarts it; no secret in the file */
	opens_with(path, &cfg);
	assert_int_equal(cb.calls, 2);
	size_t len;
	char *file = tu_read_file(path, &len);
	assert_null(memmem(file, len, PATTERN, strlen(PATTERN)));
	free(file);
	/* another key, no key, a failing callback */
	cb.answer = 2;
	refused(path, EKEYREJECTED, "wrong key");
	cb.answer = 0;
	refused(path, ENOKEY, "key callback");
	cb.answer = -1;
	refused(path, EACCES, "the key callback failed");
	/* a key file with the same key opens it, and the callback is not asked */
	unsigned char k[32];
	fill_key(1, k);
	const char *kf = tu_path("cb-key1");
	tu_write_file(kf, k, sizeof(k));
	struct ckpt_config c = cfg;
	c.key_file = kf;
	cb.answer = 2;
	int calls = cb.calls;
	opens_with(path, &c);
	assert_int_equal(cb.calls, calls);
	/* removed: the pool is sealed and no key is given */
	assert_int_equal(ckpt_set_key_callback(NULL, NULL), 0);
	refused(path, ENOKEY, "is sealed");
	assert_int_equal(cb.calls, calls);
}

static void
test_keycb_unsealed(void **state)
{
	(void)state;
	const char *path = tu_path("cb-plain.pool");
	assert_int_equal(ckpt_set_key_callback(key_cb, &cb), 0);
	/* no key for this pool: an unsealed one */
	cb.answer = 0;
	cb.calls = 0;
	create_with_pattern(path);
	assert_int_equal(cb.calls, 1);
	size_t len;
	char *file = tu_read_file(path, &len);
	assert_non_null(memmem(file, len, PATTERN, strlen(PATTERN)));
	free(file);
	/* an unsealed pool never asks for a key */
	cb.answer = 1;
	opens_with(path, &cfg);
	assert_int_equal(cb.calls, 1);
	/* a failing callback fails the create, which leaves no file */
	const char *bad = tu_path("cb-fail.pool");
	unlink(bad);
	cb.answer = -1;
	assert_null(ckpt_create(bad, &cfg));
	assert_int_equal(errno, EACCES);
	assert_int_equal(access(bad, F_OK), -1);
	assert_int_equal(ckpt_set_key_callback(NULL, NULL), 0);
}

int
main(void)
{
	unsetenv("CKPT_KEY_FILE");
	unsetenv("CKPT_FORK_MODE");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keycb_sealed),
		cmocka_unit_test(test_keycb_unsealed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
