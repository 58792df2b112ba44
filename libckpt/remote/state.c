/*
 * state.c -- POOL.remote, the push state of a pool's checkpoints.
 *
 * A line is "ID STATE TIME_NS URL DETAIL\n" (DETAIL: the rest of the line,
 * newlines and tabs made spaces). Writers append one line with a single
 * write() on an O_APPEND descriptor, so concurrent pushes of one pool
 * never interleave within a line; readers take the last line of an id.
 * The file is information, not a commit: a lost line costs a display.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return ckpt_err_set(errno, "cannot write %s: %s", path, strerror(errno));
	ssize_t w = write(fd, line, (size_t)n);
	int e = w == n ? 0 : w < 0 ? errno : EIO;
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
