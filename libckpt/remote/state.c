/*
 * state.c -- POOL.remote, the push state of a pool's checkpoints.
 *
 * A line is "ID STATE TIME_NS URL DETAIL\n" (DETAIL: the rest of the line,
 * newlines and tabs made spaces). Writers append one line with a single
 * write() on an O_APPEND descriptor, so concurrent pushes of one pool
 * never interleave within a line; readers take the last line of an id.
 * The file is information, not a commit: a lost line costs a display.
 *
 * Compaction keeps the file bounded: a writer that finds it past
 * REMOTE_STATE_COMPACT_BYTES rewrites it with the last line of each of the
 * REMOTE_STATE_KEEP_IDS checkpoints whose last event is the most recent
 * (a pool holds far fewer checkpoints than that unless it keeps thousands),
 * into POOL.remote.compact, renamed over POOL.remote. Writers append
 * under a shared flock of the file and compact under an exclusive one; a
 * writer that finds, once it holds the lock, that the name now points to
 * another file (a compaction renamed over it) reopens it, so no line is
 * appended to a file that has just been replaced. Readers take no lock: the
 * rename is atomic.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remote/state.h"

/* state_path -- POOL.remote into out */
static int
state_path(const char *pool, char *out, size_t len)
{
	if ((size_t)snprintf(out, len, "%s%s", pool, REMOTE_STATE_SUFFIX) >= len)
		return ckpt_err_set(ENAMETOOLONG, "pool path too long");
	return 0;
}

/* flatten -- copy s into out without newlines or tabs, cut at len */
static void
flatten(char *out, size_t len, const char *s)
{
	size_t k = 0;
	for (; s && *s && k + 1 < len; s++)
		out[k++] = (*s == '\n' || *s == '\r' || *s == '\t') ? ' ' : *s;
	out[k] = 0;
}

/* redact -- hide a URL's user and password: what precedes '@' becomes stars */
static void
redact(char *u)
{
	char *s = strstr(u, "://"), *at = s ? strchr(s + 3, '@') : NULL;
	if (!at)
		return;
	size_t stars = (size_t)(at - (s + 3)) < 3 ? (size_t)(at - (s + 3)) : 3;
	memmove(s + 3 + stars, at, strlen(at) + 1);
	memset(s + 3, '*', stars);
}

/* same_file -- 1 if fd is still the file path names */
static int
same_file(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
		a.st_ino == b.st_ino;
}

/*
 * open_locked -- path opened for appending under a shared flock, the file
 * the name points to once the lock is held; -1 with errno
 */
static int
open_locked(const char *path)
{
	for (int tries = 0; tries < 100; tries++) {
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0)
			return -1;
		if (flock(fd, LOCK_SH) < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (same_file(fd, path))
			return fd;
		close(fd);              /* compacted meanwhile: the new file */
	}
	errno = EAGAIN;
	return -1;
}

/* line_id -- the id a line starts with; 0 for a line that is not an event */
static uint64_t
line_id(const char *line)
{
	char *end;
	uint64_t id = strtoull(line, &end, 10);
	return end != line && *end == ' ' ? id : 0;
}

#define KEEP_SLOTS (2 * REMOTE_STATE_KEEP_IDS)   /* a power of two */

/* id_add -- add id to the open-addressing set ids (0: empty slot); 1 if it was new */
static int
id_add(uint64_t *ids, uint64_t id)
{
	size_t h = (size_t)(id * 0x9e3779b97f4a7c15ull >> 32) & (KEEP_SLOTS - 1);
	while (ids[h] && ids[h] != id)
		h = (h + 1) & (KEEP_SLOTS - 1);
	if (ids[h])
		return 0;
	ids[h] = id;
	return 1;
}

/*
 * keep_lines -- mark in keep the lines (starts in lines[0, n)) that are the
 * last of their id, for the REMOTE_STATE_KEEP_IDS ids last seen
 */
static void
keep_lines(char **lines, size_t n, uint8_t *keep)
{
	uint64_t *ids = calloc(KEEP_SLOTS, sizeof(*ids));
	size_t nids = 0;
	if (!ids)
		return;                 /* keeps nothing: the caller then leaves the file */
	for (size_t i = n; i-- > 0 && nids < REMOTE_STATE_KEEP_IDS;) {
		uint64_t id = line_id(lines[i]);
		if (id && id_add(ids, id)) {
			nids++;
			keep[i] = 1;
		}
	}
	free(ids);
}

/*
 * compact -- rewrite path (open as fd) with the lines keep_lines keeps;
 * best effort: on any failure the file stays as it was
 */
static void
compact(const char *path, int fd)
{
	char tmp[4200];
	if (flock(fd, LOCK_EX) < 0 || !same_file(fd, path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.compact", path) >= sizeof(tmp))
		return;                 /* another writer compacted it first */
	char *buf = NULL, **lines = NULL;
	uint8_t *keep = NULL;
	int rfd = open(path, O_RDONLY | O_CLOEXEC), out = -1;
	struct stat st;
	if (rfd < 0 || fstat(rfd, &st) < 0)
		goto done;
	size_t len = (size_t)st.st_size < REMOTE_STATE_MAX_BYTES ? (size_t)st.st_size :
		REMOTE_STATE_MAX_BYTES;
	buf = malloc(len + 1);
	size_t maxl = len / 2 + 1;  /* a line has at least two bytes */
	lines = malloc(maxl * sizeof(*lines));
	keep = calloc(maxl, 1);
	if (!buf || !lines || !keep || pread(rfd, buf, len, st.st_size - (off_t)len) != (ssize_t)len)
		goto done;
	buf[len] = 0;
	char *start = buf;
	if ((off_t)len < st.st_size && (start = strchr(buf, '\n')) == NULL)
		goto done;
	size_t n = 0;
	char *save;
	for (char *l = strtok_r(start, "\n", &save); l && n < maxl; l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	keep_lines(lines, n, keep);
	if (!memchr(keep, 1, n))
		goto done;              /* nothing to keep (out of memory?): leave it */
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		goto done;
	for (size_t i = 0; i < n; i++) {
		if (!keep[i])
			continue;
		size_t ll = strlen(lines[i]);
		lines[i][ll] = '\n';   /* its terminator, put back */
		if (write(out, lines[i], ll + 1) != (ssize_t)(ll + 1))
			goto done;
	}
	if (close(out) == 0 && rename(tmp, path) == 0)
		tmp[0] = 0;
	out = -1;
done:
	if (out >= 0)
		close(out);
	if (tmp[0])
		unlink(tmp);
	if (rfd >= 0)
		close(rfd);
	free(keep);
	free(lines);
	free(buf);
}

int
remote_state_record(const char *pool, uint64_t id, const char *state, const char *url,
		const char *detail)
{
	char path[4096], u[256], d[512], line[1024];
	if (state_path(pool, path, sizeof(path)) < 0)
		return -1;
	flatten(u, sizeof(u), url);
	redact(u);
	for (char *c = u; *c; c++)
		if (*c == ' ')
			*c = '+';
	flatten(d, sizeof(d), detail);
	int n = snprintf(line, sizeof(line), "%" PRIu64 " %s %" PRIu64 " %s %s\n", id, state,
			now_ns(), u[0] ? u : "-", d[0] ? d : "-");
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1, line[n - 1] = '\n';
	int fd = open_locked(path);
	if (fd < 0)
		return ckpt_err_set(errno, "cannot write %s: %s", path, strerror(errno));
	ssize_t w = write(fd, line, (size_t)n);
	int e = w == n ? 0 : w < 0 ? errno : EIO;
	struct stat st;
	if (!e && fstat(fd, &st) == 0 && (size_t)st.st_size > REMOTE_STATE_COMPACT_BYTES)
		compact(path, fd);
	close(fd);
	if (e)
		return ckpt_err_set(e, "cannot write %s: %s", path, strerror(e));
	return 0;
}

/* parse_line -- fill out from one line if it is about id; 1 if it was */
static int
parse_line(char *line, uint64_t id, struct remote_state *out)
{
	char *save, *f[4];
	for (int i = 0; i < 4; i++) {
		f[i] = strtok_r(i ? NULL : line, " ", &save);
		if (!f[i])
			return 0;
	}
	char *end;
	if (strtoull(f[0], &end, 10) != id || *end)
		return 0;
	char *rest = strtok_r(NULL, "", &save);
	snprintf(out->state, sizeof(out->state), "%s", f[1]);
	out->time_ns = strtoull(f[2], NULL, 10);
	snprintf(out->url, sizeof(out->url), "%s", f[3]);
	snprintf(out->detail, sizeof(out->detail), "%s", rest ? rest : "");
	return 1;
}

int
remote_state_get(const char *pool, uint64_t id, struct remote_state *out)
{
	char path[4096];
	if (state_path(pool, path, sizeof(path)) < 0)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	char *buf = NULL;
	int found = 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto out;
	size_t len = (size_t)st.st_size < REMOTE_STATE_MAX_BYTES ? (size_t)st.st_size :
		REMOTE_STATE_MAX_BYTES;
	off_t from = st.st_size - (off_t)len;
	buf = malloc(len + 1);
	if (!buf)
		goto out;
	ssize_t n = pread(fd, buf, len, from);
	if (n <= 0)
		goto out;
	buf[n] = 0;
	char *start = buf;
	if (from > 0 && (start = strchr(buf, '\n')) == NULL)
		goto out;               /* one cut line: nothing whole to read */
	char *save, *line = strtok_r(start, "\n", &save);
	for (; line; line = strtok_r(NULL, "\n", &save)) {
		struct remote_state s;
		if (parse_line(line, id, &s)) {
			*out = s;
			found = 1;
		}
	}
out:
	free(buf);
	close(fd);
	return found;
}
