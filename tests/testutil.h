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
#include <sys/types.h>

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
/* tu_wait_exit -- waitpid, return exit status, or 128+signal */
int tu_wait_exit(pid_t pid);

#endif
