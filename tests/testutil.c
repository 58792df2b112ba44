/*
 * testutil.c -- scratch directories and file helpers for the tests.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libckpt.h"
#include "testutil.h"
#include "catalog.h"
#include "layout.h"

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

pid_t
tu_fork(void)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT };
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], SIG_DFL);
	}
	return pid;
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

/* env_apply -- environ with edits ("NAME=VALUE" sets, "NAME" unsets), malloc'd */
static char **
env_apply(const char *const *edits)
{
	extern char **environ;
	size_t n = 0, m = 0;
	while (environ[n])
		n++;
	while (edits && edits[m])
		m++;
	char **out = calloc(n + m + 1, sizeof(*out));
	assert_non_null(out);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int drop = 0;
		for (size_t j = 0; j < m; j++) {
			size_t len = strcspn(edits[j], "=");
			if (strncmp(environ[i], edits[j], len) == 0 && environ[i][len] == '=')
				drop = 1;
		}
		if (!drop)
			out[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		if (strchr(edits[j], '='))
			out[k++] = (char *)edits[j];
	out[k] = NULL;
	return out;
}

void
tu_helper_main(int argc, char **argv, const struct tu_helper *h)
{
	if (argc < 3 || strcmp(argv[1], "--helper") != 0)
		return;
	for (; h->name; h++)
		if (strcmp(argv[2], h->name) == 0 && argc == 3 + h->nargs)
			exit(h->fn(argv + 3));
	fprintf(stderr, "unknown helper\n");
	exit(2);
}

/* spawn_helper -- posix_spawn "exe --helper args", stdout into a pipe whose read end is returned */
static pid_t
spawn_helper(int *outfd, const char *const *env, const char *arg, va_list ap)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	const char *argv[32];
	int argc = 0;
	argv[argc++] = exe;
	argv[argc++] = "--helper";
	for (const char *a = arg; a; a = va_arg(ap, const char *)) {
		assert_true(argc < 31);
		argv[argc++] = a;
	}
	argv[argc] = NULL;

	/*
	 * posix_spawn, not fork: it runs no atfork handlers, so a test with a
	 * pool open does not hand a heap copy to a process that only execs
	 * (what a real program should do too).
	 */
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	posix_spawn_file_actions_t fa;
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, fds[1], 1), 0);
	char **envp = env_apply(env);
	fflush(NULL);
	pid_t pid;
	int rc = posix_spawn(&pid, exe, &fa, NULL, (char *const *)argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(fds[1]);
	if (rc != 0)
		fail_msg("posix_spawn %s: %s", exe, strerror(rc));
	*outfd = fds[0];
	return pid;
}

pid_t
tu_spawn_helper(int *outfd, const char *const *env, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	pid_t pid = spawn_helper(outfd, env, arg, ap);
	va_end(ap);
	return pid;
}

/* read_into -- read fd to its end into out[0..outlen) (NUL-terminated, the rest dropped); closes fd */
static void
read_into(int fd, char *out, size_t outlen)
{
	size_t got = 0;
	for (;;) {
		char sink[256];
		char *dst = got + 1 < outlen ? out + got : sink;
		size_t room = got + 1 < outlen ? outlen - 1 - got : sizeof(sink);
		ssize_t r = read(fd, dst, room);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (dst != sink)
			got += (size_t)r;
	}
	close(fd);
	if (outlen)
		out[got] = '\0';
}

int
tu_run_helper(char *out, size_t outlen, const char *const *env, const char *arg, ...)
{
	int fd;
	va_list ap;
	va_start(ap, arg);
	pid_t pid = spawn_helper(&fd, env, arg, ap);
	va_end(ap);
	read_into(fd, out, outlen);
	return tu_wait_exit(pid);
}

int
tu_run_capture(char *out, size_t outlen, char *const argv[])
{
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	posix_spawn_file_actions_t fa;
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, fds[1], 1), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, fds[1], 2), 0);
	extern char **environ;
	fflush(NULL);
	pid_t pid;
	int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (err != 0) {
		close(fds[0]);
		fail_msg("posix_spawn %s: %s", argv[0], strerror(err));
	}
	read_into(fds[0], out, outlen);
	return tu_wait_exit(pid);
}

void
tu_inspect_verify(const char *path)
{
	const char *bindir = getenv("CKPT_TEST_BINDIR");
	if (!bindir)
		fail_msg("CKPT_TEST_BINDIR is not set: run the test with ctest, or "
			 "set it to the build directory holding tools/ckpt-inspect");
	char tool[1024];
	snprintf(tool, sizeof(tool), "%s/tools/ckpt-inspect", bindir);
	if (access(tool, X_OK) != 0)
		fail_msg("%s: %s (build the ckpt-inspect target)", tool, strerror(errno));
	char *const argv[] = { tool, (char *)"verify", (char *)path,
		(char *)"--no-progress", NULL };
	char out[4096];
	int rc = tu_run_capture(out, sizeof(out), argv);
	if (rc != 0)
		fail_msg("ckpt-inspect verify %s exited %d%s:\n%s", path, rc,
			rc == 1 ? " (damaged pool or failed check)" :
			rc == 2 ? " (usage error)" : rc > 128 ? " (killed by a signal)" : "",
			out);
	/* a flag this library writes is never unknown to its own inspector */
	if (strstr(out, "unknown flags"))
		fail_msg("ckpt-inspect verify %s:\n%s", path, out);
}

/* private_mount_ns -- move this process into its own mount namespace, once */
static int
private_mount_ns(void)
{
	static int done;
	if (done)
		return 0;
	if (unshare(CLONE_NEWNS) < 0)
		return -1;
	/* keep our mounts from propagating back to the host (source and type
	 * are ignored here; named rather than NULL so valgrind does not flag them) */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	done = 1;
	return 0;
}

int
tu_mount_tmpfs(const char *dir, const char *opts)
{
	if (private_mount_ns() < 0)
		return -1;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -1;
	return mount("tmpfs", dir, "tmpfs", 0, opts);
}

void
tu_small_tmpfs(const char *dir, const char *opts, char *path, char *filler)
{
	if (tu_mount_tmpfs(dir, opts) < 0) {
		printf("SKIPPED: cannot mount a small tmpfs here (%s): needs root and "
		       "mount namespaces\n", strerror(errno));
		skip();
	}
	snprintf(path, TU_SMALL_PATH, "%s/pool", dir);
	snprintf(filler, TU_SMALL_PATH, "%s/filler", dir);
}

int
tu_mount_ext4(const char *dir, unsigned mib)
{
	if (private_mount_ns() < 0)
		return -1;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -1;
	char img[600], cmd[1400];
	snprintf(img, sizeof(img), "%s.img", dir);
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)mib << 20) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "mkfs.ext4 -q -F -m 0 '%s' >/dev/null 2>&1 && "
		"mount -o loop '%s' '%s' >/dev/null 2>&1", img, img, dir);
	fflush(NULL);
	int rc = system(cmd);
	unlink(img);            /* the loop device keeps it until the unmount */
	return rc == 0 ? 0 : -1;
}

int
tu_bind_ro(const char *dir, const char *target)
{
	if (private_mount_ns() < 0)
		return -1;
	if (mkdir(target, 0755) < 0 && errno != EEXIST)
		return -1;
	if (mount(dir, target, "none", MS_BIND, NULL) < 0)
		return -1;
	if (mount("none", target, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
		int e = errno;
		umount2(target, MNT_DETACH);
		errno = e;
		return -1;
	}
	return 0;
}

void
tu_umount(const char *dir)
{
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
	rmdir(dir);
}

void *
tu_read_range(const char *path, uint64_t off, uint64_t len)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	char *buf = malloc(len ? len : 1);
	assert_non_null(buf);
	uint64_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));
		assert_true(n > 0);
		got += (uint64_t)n;
	}
	close(fd);
	return buf;
}

void
tu_catalog_read(const char *path, struct tu_catalog *c)
{
	memset(c, 0, sizeof(*c));
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(pread(fd, &c->hdr, sizeof(c->hdr), 0), sizeof(c->hdr));
	if (layout_check(&c->hdr, (uint64_t)st.st_size) < 0)
		fail_msg("%s: %s", path, ckpt_errormsg());
	void *meta = mmap(NULL, c->hdr.data_off, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(meta != MAP_FAILED);
	c->copy = malloc(c->hdr.cat_size);
	assert_non_null(c->copy);
	if (cat_snapshot(&c->hdr, meta, c->copy) < 0)
		fail_msg("%s: catalog: %s", path, ckpt_errormsg());
	munmap(meta, c->hdr.data_off);
	close(fd);
	c->h = c->copy;
	c->e = (struct cat_entry *)((char *)c->copy + sizeof(struct cat_hdr));
	c->n = c->hdr.max_segments;
}

void
tu_catalog_free(struct tu_catalog *c)
{
	free(c->copy);
	c->copy = NULL;
}

unsigned
tu_catalog_count(const struct tu_catalog *c, uint32_t state)
{
	unsigned k = 0;
	for (uint32_t i = 0; i < c->n; i++)
		k += c->e[i].state == state;
	return k;
}

uint64_t
tu_fs_free(const char *path)
{
	struct statvfs sv;
	assert_int_equal(statvfs(path, &sv), 0);
	return (uint64_t)sv.f_bavail * sv.f_frsize;
}

void
tu_flip_byte(const char *path, uint64_t off, unsigned char mask)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	unsigned char x;
	assert_int_equal(pread(fd, &x, 1, (off_t)off), 1);
	x ^= mask;
	assert_int_equal(pwrite(fd, &x, 1, (off_t)off), 1);
	assert_int_equal(fsync(fd), 0);
	close(fd);
}

void
tu_fill_fs(const char *file, uint64_t leave)
{
	int fd = open(file, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	uint64_t avail = tu_fs_free(file);
	assert_true(avail > 2 * leave);
	assert_int_equal(fallocate(fd, 0, 0, (off_t)(avail - leave)), 0);
	close(fd);
}

int
tu_seg_has_data(const char *path, const struct pool_hdr *h, uint32_t i)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	uint64_t off = layout_seg_off(h, i);
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);
	close(fd);
	return d >= 0 && (uint64_t)d < off + h->seg_size;
}

void
tu_fds_exhaust(struct tu_fds *f)
{
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &f->old), 0);
	int probe = dup(0);
	assert_true(probe >= 0);
	struct rlimit low = f->old;
	low.rlim_cur = (rlim_t)probe + 16;
	close(probe);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	f->n = 0;
	while (f->n < 64 && (f->fd[f->n] = dup(0)) >= 0)
		f->n++;
	assert_int_equal(errno, EMFILE);
}

void
tu_fds_restore(struct tu_fds *f)
{
	for (int i = 0; i < f->n; i++)
		close(f->fd[i]);
	f->n = 0;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &f->old), 0);
}
