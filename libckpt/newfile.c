/*
 * newfile.c -- a new pool file that appears at its path only when it is
 * complete.
 *
 * ckpt_create writes a header, two catalog copies and a first catalog
 * change before the pool is usable. Written in place, a kill -9 in the
 * middle would leave a half-written file at the path: ckpt_open refuses it
 * (damaged) and ckpt_create refuses it (it exists), so a program that
 * "opens, else creates" could never start again. Instead the file is built
 * without a name, or under a hidden temporary one, and given its name last
 * with link(2), which fails with EEXIST rather than replace anything: the
 * path either does not exist or names a whole pool.
 *
 *   1. newfile_open: an unnamed file in the target's directory (O_TMPFILE,
 *      named later through /proc/self/fd with linkat), or, where the
 *      filesystem or a missing /proc rules that out, a hidden name next to
 *      the target (".NAME.XXXXXX", O_EXCL). A kill -9 leaves nothing in the
 *      first case, and a stray hidden file nobody opens in the second;
 *   2. the caller writes and syncs the file through its descriptor;
 *   3. newfile_publish: link it to the target (EEXIST if the target
 *      appeared meanwhile: another creator won), drop the hidden name, and
 *      fsync the directory, so the name is as durable as the contents;
 *   4. or newfile_abandon: remove what step 1 made, never the target.
 * Locks taken on the descriptor (leases, OFD locks) belong to the inode,
 * so they hold before and after the name is given.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "newfile.h"
#include "testhook.h"

/* dir_of -- the directory part of path into out (as dirname(3)) */
static int
dir_of(const char *path, char *out, size_t len)
{
	char *d = strdup(path);
	if (!d)
		return ckpt_err_set(ENOMEM, "out of memory");
	int n = snprintf(out, len, "%s", dirname(d));
	free(d);
	if (n < 0 || (size_t)n >= len)
		return ckpt_err_set(ENAMETOOLONG, "pool path is too long");
	return 0;
}

/* hidden_name -- ".BASE.XXXXXX" beside path, with six random letters */
static int
hidden_name(const char *path, char *out, size_t len)
{
	char dir[NEWFILE_PATH_MAX];
	if (dir_of(path, dir, sizeof(dir)) < 0)
		return -1;
	char *b = strdup(path);
	if (!b)
		return ckpt_err_set(ENOMEM, "out of memory");
	unsigned char r[6];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		memset(r, 0, sizeof(r));
	char sfx[7];
	for (int i = 0; i < 6; i++)
		sfx[i] = "abcdefghijklmnopqrstuvwxyz"[r[i] % 26];
	sfx[6] = 0;
	int n = snprintf(out, len, "%s/.%s.%s", dir, basename(b), sfx);
	free(b);
	if (n < 0 || (size_t)n >= len)
		return ckpt_err_set(ENAMETOOLONG, "pool path is too long");
	return 0;
}

int
newfile_open(struct newfile *nf, const char *path, mode_t mode)
{
	memset(nf, 0, sizeof(*nf));
	nf->fd = -1;
	struct stat st;
	/* the common refusal, early and without writing anything; link(2)
	 * remains the authority */
	if (lstat(path, &st) == 0)
		return ckpt_err_set(EEXIST, "cannot create pool %s: %s", path, strerror(EEXIST));
	char dir[NEWFILE_PATH_MAX];
	if (dir_of(path, dir, sizeof(dir)) < 0)
		return -1;
	if (access("/proc/self/fd", X_OK) == 0 && !test_flag("CKPT_TEST_NO_TMPFILE")) {
		nf->fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, mode);
		if (nf->fd >= 0)
			return 0;
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return ckpt_err_set(errno, "cannot create pool %s: %s", path,
					strerror(errno));
	}
	for (int tries = 0; tries < 16; tries++) {
		if (hidden_name(path, nf->tmp, sizeof(nf->tmp)) < 0)
			return -1;
		nf->fd = open(nf->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (nf->fd >= 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	int e = errno;
	nf->tmp[0] = 0;
	return ckpt_err_set(e, "cannot create pool %s: %s", path, strerror(e));
}

/* sync_dir -- make the directory entries in dir durable */
static int
sync_dir(const char *dir, const char *path)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = dfd < 0 || fsync(dfd) < 0 ? errno : 0;
	if (dfd >= 0)
		close(dfd);
	if (e)
		return ckpt_err_set(e, "cannot make the directory entry of pool %s durable: %s",
				path, strerror(e));
	return 0;
}

int
newfile_publish(struct newfile *nf, const char *path)
{
	int rc;
	if (nf->tmp[0]) {
		rc = link(nf->tmp, path);
	} else {
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", nf->fd);
		rc = linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
	}
	if (rc < 0)
		return ckpt_err_set(errno, "cannot create pool %s: %s", path, strerror(errno));
	nf->linked = 1;
	test_point("create:after-publish");
	if (nf->tmp[0]) {
		unlink(nf->tmp);
		nf->tmp[0] = 0;
	}
	char dir[NEWFILE_PATH_MAX];
	if (dir_of(path, dir, sizeof(dir)) < 0 || sync_dir(dir, path) < 0)
		return -1;
	return 0;
}

void
newfile_abandon(struct newfile *nf, const char *path)
{
	int saved = errno;
	if (nf->tmp[0])
		unlink(nf->tmp);
	nf->tmp[0] = 0;
	/* linked, the name is ours: nobody else's link could have succeeded */
	if (nf->linked)
		unlink(path);
	nf->linked = 0;
	errno = saved;
}
