/*
 * testutil.c -- scratch directories and file helpers for the tests.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char tmpdir[256];
static pid_t tmpdir_owner;

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(p);
}

static void
rm_tmpdir(void)
{
	if (tmpdir[0] && getpid() == tmpdir_owner && !getenv("CKPT_TEST_KEEP"))
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *
tu_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("CKPT_TEST_TMPDIR");
		if (!base)
			base = "/var/tmp";
		snprintf(tmpdir, sizeof(tmpdir), "%s/ckpt-test-XXXXXX", base);
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			abort();
		}
		tmpdir_owner = getpid();
		atexit(rm_tmpdir);
	}
	return tmpdir;
}

const char *
tu_path(const char *name)
{
	static char bufs[8][512];
	static unsigned next;
	char *b = bufs[next++ % 8];
	snprintf(b, 512, "%s/%s", tu_tmpdir(), name);
	return b;
}

void *
tu_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (len)
		*len = got;
	return buf;
}

void
tu_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

int
tu_files_equal(const char *a, const char *b)
{
	size_t la, lb;
	void *x = tu_read_file(a, &la), *y = tu_read_file(b, &lb);
	int eq = x && y && la == lb && memcmp(x, y, la) == 0;
	free(x);
	free(y);
	return eq;
}

void
tu_copy_file(const char *from, const char *to)
{
	size_t len;
	void *buf = tu_read_file(from, &len);
	assert_non_null(buf);
	tu_write_file(to, buf, len);
	free(buf);
}

int
tu_wait_exit(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}
