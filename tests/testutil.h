/*
 * testutil.h -- helpers shared by the tests: scratch directories, pool
 * paths, file comparison, child-process helpers. Real files, real processes.
 */
#ifndef CKPT_TESTUTIL_H
#define CKPT_TESTUTIL_H 1

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "format.h"

/* tu_tmpdir -- a fresh scratch directory for this test (removed at exit) */
const char *tu_tmpdir(void);
/* tu_path -- "<tmpdir>/<name>" in a static rotating buffer */
const char *tu_path(const char *name);
/* tu_read_file -- whole file into malloc'd buffer; *len set; NULL on error */
void *tu_read_file(const char *path, size_t *len);
/* tu_write_file -- create/replace path with exactly buf[0..len) */
void tu_write_file(const char *path, const void *buf, size_t len);
/* tu_files_equal -- 1 if both files have identical bytes */
int tu_files_equal(const char *a, const char *b);
/* tu_copy_file -- byte copy of a file */
void tu_copy_file(const char *from, const char *to);
/*
 * tu_fork -- fork() for tests: flushes stdio first, and in the child puts
 * the signals cmocka catches back to their defaults, so a crash in the child
 * kills the child (seen by tu_wait_exit as 128+signal) instead of resuming
 * the test runner there. Children end with _exit and never use assert_*.
 */
pid_t tu_fork(void);
/* tu_wait_exit -- waitpid, return exit status, or 128+signal */
int tu_wait_exit(pid_t pid);

/*
 * tu_run_helper -- run this test binary again in a NEW PROCESS (posix_spawn
 * of /proc/self/exe) as "BINARY --helper ARGS...", with env entries applied
 * first ("NAME=VALUE" sets, "NAME" unsets; env may be NULL). Its stdout is
 * captured into out[0..outlen) (NUL-terminated). Returns the exit status as
 * tu_wait_exit does. Test mains dispatch "--helper" themselves.
 */
int tu_run_helper(char *out, size_t outlen, const char *const *env,
		const char *arg, ...) __attribute__((sentinel));

/*
 * tu_helper -- a helper a test binary runs as ("--helper NAME ARGS...",
 * started by tu_run_helper): its name, how many ARGS it takes, and fn, which
 * gets them and returns the process's exit status. Helpers never assert.
 */
struct tu_helper {
	const char *name;
	int nargs;
	int (*fn)(char **args);
};
/*
 * tu_helper_main -- first thing in main: if this process is "--helper NAME
 * ARGS...", run the helper of h (ended by a { NULL } entry) with that name
 * and number of ARGS and exit with its status ("unknown helper" on stderr
 * and 2 when none matches); otherwise return, and main runs the tests
 */
void tu_helper_main(int argc, char **argv, const struct tu_helper *h);

/*
 * tu_run_capture -- run argv[0] with argv (posix_spawn: no atfork handler
 * runs, so this is safe with a pool open), its stdout and stderr captured
 * into out[0..outlen) (NUL-terminated); returns the exit status as
 * tu_wait_exit does. Failing to start it fails the test.
 */
int tu_run_capture(char *out, size_t outlen, char *const argv[]);

/*
 * tu_inspect_verify -- "ckpt-inspect verify PATH", run as a user would with
 * the tool built in this tree (CKPT_TEST_BINDIR, set by ctest), must exit 0.
 * A missing tool, a failure to start it, or any other exit status fails the
 * test, with the tool's output (stdout and stderr, first 4 KiB) in the
 * message.
 */
void tu_inspect_verify(const char *path);

/*
 * tu_spawn_helper -- as tu_run_helper, without waiting: returns the pid and
 * in *outfd the read end of a pipe on the helper's stdout (close it, then
 * tu_wait_exit the pid).
 */
pid_t tu_spawn_helper(int *outfd, const char *const *env, const char *arg, ...)
	__attribute__((sentinel));

/*
 * tu_mount_tmpfs -- mount a tmpfs with mount options opts (e.g. "size=1m")
 * on dir (created if missing). The first call moves this process into its
 * own mount namespace, so every mount disappears when the test exits, even
 * on a crash. Returns 0, or -1 with errno if mounting is impossible here
 * (not root, no namespaces): the caller skips with a message.
 */
int tu_mount_tmpfs(const char *dir, const char *opts);
/*
 * tu_mount_ext4 -- a new ext4 filesystem of mib MiB in an image file beside
 * dir (dir.img), loop-mounted on dir in this process's own mount namespace
 * (as tu_mount_tmpfs); 0, or -1 when mkfs.ext4 or a loop mount is not to
 * be had here: the caller skips with a message
 */
int tu_mount_ext4(const char *dir, unsigned mib);
/*
 * tu_small_tmpfs -- a small filesystem to run out of space on: a tmpfs
 * mounted on dir with opts (as tu_mount_tmpfs), path and filler (each
 * TU_SMALL_PATH bytes) set to "<dir>/pool" and "<dir>/filler". Where it
 * cannot be mounted here, prints why and skips the test.
 */
#define TU_SMALL_PATH 600
void tu_small_tmpfs(const char *dir, const char *opts, char *path, char *filler);
/* tu_bind_ro -- bind-mount dir onto target read-only; 0 or -1 with errno */
int tu_bind_ro(const char *dir, const char *target);
/* tu_umount -- detach the mount at dir (lazy), asserting success */
void tu_umount(const char *dir);

/* tu_catalog -- the current catalog of a pool file, read without the lock */
struct tu_catalog {
	struct pool_hdr hdr;
	void *copy;             /* cat_size bytes */
	struct cat_entry *e;    /* hdr.max_segments entries */
	struct cat_hdr *h;
	uint32_t n;
};
/* tu_catalog_read -- validate header and current catalog copy of path (asserts) */
void tu_catalog_read(const char *path, struct tu_catalog *c);
void tu_catalog_free(struct tu_catalog *c);
/* tu_catalog_count -- entries in state (enum cat_state) */
unsigned tu_catalog_count(const struct tu_catalog *c, uint32_t state);
/* tu_read_range -- len bytes of path at off into a malloc'd buffer (asserts) */
void *tu_read_range(const char *path, uint64_t off, uint64_t len);

/* tu_flip_byte -- xor the byte at off of path with mask, made durable (fsync; asserts) */
void tu_flip_byte(const char *path, uint64_t off, unsigned char mask);

/*
 * tu_fds_exhaust -- leave the process no file descriptor: RLIMIT_NOFILE
 * lowered to a little above those in use and every free one below it
 * taken, so the next open or dup fails with EMFILE (asserts);
 * tu_fds_restore gives them and the limit back
 */
struct tu_fds {
	struct rlimit old;
	int fd[64];
	int n;
};
void tu_fds_exhaust(struct tu_fds *f);
void tu_fds_restore(struct tu_fds *f);

/* tu_fs_free -- free bytes (for an unprivileged user) of the filesystem holding path */
uint64_t tu_fs_free(const char *path);

/*
 * tu_fill_fs -- create file and give it all the free space of its
 * filesystem but `leave` bytes (asserts there was more than 2 × leave)
 */
void tu_fill_fs(const char *file, uint64_t leave);

/* tu_seg_has_data -- 1 if any byte of segment i of the pool at path is a data extent */
int tu_seg_has_data(const char *path, const struct pool_hdr *h, uint32_t i);

#endif
