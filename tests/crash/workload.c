/*
 * workload.c -- the programs whose persistence the recorder logs (issue
 * 17): each drives one durability path of libckpt through the public API,
 * and tells the checker what it was promised with markers.
 *
 *   crashwork WORKLOAD POOL        (run under the recorder, see run.sh)
 *
 * Workloads:
 *   create     create, three checkpoints with changes (and a larger block)
 *              between them
 *   restart    restart from the latest checkpoint, change, checkpoint;
 *              restart from an older one, change, checkpoint
 *   fork       fork (copy mode): the child changes its heap and takes two
 *              checkpoints of its own lineage and closes; the parent
 *              checkpoints; a second child exits without closing (dead)
 *   reflink    as fork in reflink mode; exits 77 (skip) where the pool's
 *              filesystem cannot clone
 *   retention  keep_checkpoints 2, five checkpoints, lowered to 1 at once,
 *              a dead child, ckpt_reclaim, one more checkpoint
 *   bgsave     ckpt_checkpoint_background while the parent changes its
 *              heap, twice, with a synchronous checkpoint between
 *   enospc     the pool in a small tmpfs (private mount namespace; root):
 *              a checkpoint that fails with ENOSPC mid-copy, then one that
 *              succeeds once space is back; exits 77 where it cannot mount
 *   cow        cow mode (the copy-on-write engine), keep_checkpoints 2:
 *              five checkpoints with scattered changes (from the third
 *              on each recycles the oldest), close, a cow restart from
 *              the latest (mapped, not copied), three more checkpoints
 *              (the first copies the base, the next two recycle)
 *   cow-fork   cow mode, keep 2: a fork child changes its heap and takes
 *              three checkpoints of its own lineage (its first writes an
 *              image of the parent's base it pinned at the fork) while the
 *              parent takes three; then a dead child and one more
 *   cow-bgsave cow mode, keep 2: ckpt_checkpoint_background while the
 *              parent changes its heap, three times, with synchronous
 *              checkpoints between (three in a row: the last recycles),
 *              then four in a row (the last two recycle background ones)
 *   cow-persist  cow mode, keep 2: ckpt_persist of the whole heap before
 *              the first checkpoint (an empty base), after it twice, a
 *              checkpoint, one more persist, then exit without closing:
 *              the dead heap must hold the generation of the last
 *              persist that returned (rule 6)
 *   cow-threads  cow mode, keep 2, beside an idle thread of the program's
 *              (checkpoint.c, step 0): a persist over the new heap's empty
 *              base, five checkpoints with scattered changes (the first
 *              starts logging on the heap's own segment instead of
 *              re-basing, the second writes every page once more, from the
 *              third on each recycles the oldest into its page log), one
 *              more persist, then exit without closing (rule 6)
 *   cow-reflink  cow-fork where the filesystem clones (run.sh mounts an
 *              XFS loop filesystem): the base image of a new checkpoint is
 *              cloned, not copied; exits 77 where the pool's directory
 *              cannot clone
 *
 * Markers (ckpt_rec_mark, found with dlsym so the program also runs
 * without the recorder):
 *   created                      ckpt_create returned
 *   keep GROUP K                 retention of a lineage (before it applies)
 *   begin GROUP GEN NODES        a checkpoint of GROUP is called, its heap
 *                                at generation GEN (in cow mode it may
 *                                recycle the lineage's oldest checkpoint
 *                                until it is acknowledged; once published,
 *                                before its ack, it holds GEN)
 *   ack ID GROUP GEN NODES       checkpoint ID returned to the caller; its
 *                                heap holds the ts_* structure of NODES
 *                                nodes at generation GEN
 *   persisting GEN               ckpt_persist of the whole heap is called
 *   persisted GEN NODES          it returned: the heap was at generation GEN
 * GROUP names a lineage (format.h): "main" for the created heap and the
 * heaps restarted from its checkpoints, "childN" for fork children.
 * Exit status: 0 done, 77 skipped, anything else a failure (message on stderr).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include "test_checkpoint_util.h"

#define NODES 2000
#define KEEP 4

static void (*mark_fn)(const char *);

static void
mark(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (mark_fn)
		mark_fn(buf);
}

static void
die(const char *what)
{
	fprintf(stderr, "crashwork: %s: %s\n", what, ckpt_errormsg());
	exit(1);
}

static const char *pool_path;

/* make -- the pool: 4 MiB heaps, nseg segments, fork mode, retention keep */
static ckpt_pool *
make(unsigned nseg, enum ckpt_fork_mode mode, unsigned keep)
{
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = nseg,
		.fork_mode = mode, .keep_checkpoints = keep };
	ckpt_pool *p = ckpt_create(pool_path, &cfg);
	if (!p)
		return NULL;
	mark("created");
	mark("keep main %u", keep);
	return p;
}

/* checkpoint -- take one and acknowledge it: the heap holds gen */
static ckpt_id
checkpoint(ckpt_pool *p, const char *group, uint64_t gen)
{
	ckpt_id id;
	char label[32];
	snprintf(label, sizeof(label), "%s-%llu", group, (unsigned long long)gen);
	mark("begin %s %llu %d", group, (unsigned long long)gen, NODES);
	if (ckpt_checkpoint(p, label, &id) < 0)
		die("ckpt_checkpoint");
	mark("ack %llu %s %llu %d", (unsigned long long)id, group,
			(unsigned long long)gen, NODES);
	return id;
}

/* change -- move the structure to generation gen */
static void
change(ckpt_pool *p, uint64_t gen)
{
	if (ts_modify(p, ckpt_root(p), gen, 5) < 0)
		die("ts_modify");
}

/* big -- a block of n bytes of one value, so copies span more pages */
static void
big(ckpt_pool *p, size_t n, int v)
{
	void *b = ckpt_alloc(p, n);
	if (!b)
		die("ckpt_alloc");
	memset(b, v, n);
}

static ckpt_pool *
start(unsigned nseg, enum ckpt_fork_mode mode, unsigned keep)
{
	ckpt_pool *p = make(nseg, mode, keep);
	if (!p)
		die("ckpt_create");
	if (!ts_build(p, NODES, 1))
		die("ts_build");
	return p;
}

static int
w_create(void)
{
	ckpt_pool *p = start(6, CKPT_FORK_COPY, KEEP);
	checkpoint(p, "main", 1);
	change(p, 2);
	checkpoint(p, "main", 2);
	change(p, 3);
	big(p, 256 << 10, 0x5a);
	checkpoint(p, "main", 3);
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	return 0;
}

static ckpt_pool *
reopen(ckpt_id from, uint64_t want_gen)
{
	ckpt_pool *p = ckpt_open(pool_path, from, NULL);
	if (!p)
		die("ckpt_open");
	char err[256];
	if (ts_check(ckpt_root(p), NODES, err, sizeof(err)) != (int64_t)want_gen) {
		fprintf(stderr, "crashwork: restarted heap: %s\n", err);
		exit(1);
	}
	return p;
}

static int
w_restart(void)
{
	ckpt_pool *p = start(6, CKPT_FORK_COPY, KEEP);
	ckpt_id first = checkpoint(p, "main", 1);
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	p = reopen(CKPT_LATEST, 1);
	change(p, 2);
	checkpoint(p, "main", 2);
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	p = reopen(first, 1);
	change(p, 3);
	checkpoint(p, "main", 3);
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	return 0;
}

static int
w_fork(enum ckpt_fork_mode mode)
{
	ckpt_pool *p = make(8, mode, KEEP);
	if (!p) {
		if (mode == CKPT_FORK_REFLINK && errno == ENOTSUP) {
			printf("SKIP: reflink: %s\n", ckpt_errormsg());
			return 77;
		}
		die("ckpt_create");
	}
	if (!ts_build(p, NODES, 1))
		die("ts_build");
	checkpoint(p, "main", 1);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		mark("keep child1 %u", KEEP);
		change(p, 10);
		checkpoint(p, "child1", 10);
		change(p, 11);
		checkpoint(p, "child1", 11);
		_exit(ckpt_close(p) < 0 ? 1 : 0);
	}
	change(p, 2);
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "crashwork: fork child failed (%d)\n", st);
		return 1;
	}
	checkpoint(p, "main", 2);
	/* a child that changes its heap and dies without closing: a dead heap */
	pid = fork();
	if (pid == 0) {
		change(p, 20);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	change(p, 3);
	checkpoint(p, "main", 3);
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	return 0;
}

static void
dead_child(ckpt_pool *p)
{
	pid_t pid = fork();
	if (pid == 0) {
		change(p, 99);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
}

static int
w_retention(void)
{
	ckpt_pool *p = start(8, CKPT_FORK_COPY, 2);
	for (uint64_t g = 1; g <= 5; g++) {
		if (g > 1)
			change(p, g);
		checkpoint(p, "main", g);
	}
	mark("keep main 1");
	if (ckpt_set_keep_checkpoints(p, 1) < 0)
		die("ckpt_set_keep_checkpoints");
	dead_child(p);
	dead_child(p);
	unsigned n;
	if (ckpt_reclaim(p, &n) < 0)
		die("ckpt_reclaim");
	if (n != 2) {
		fprintf(stderr, "crashwork: reclaimed %u segments, expected 2\n", n);
		return 1;
	}
	change(p, 6);
	checkpoint(p, "main", 6);
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	return 0;
}

/* bg -- a background checkpoint of gen while the parent moves to next */
static void
bg(ckpt_pool *p, uint64_t gen, uint64_t next)
{
	mark("begin main %llu %d", (unsigned long long)gen, NODES);
	pid_t pid = ckpt_checkpoint_background(p, "bg");
	if (pid < 0)
		die("ckpt_checkpoint_background");
	change(p, next);
	ckpt_id id;
	if (ckpt_checkpoint_wait(p, pid, &id, 0) < 0)
		die("ckpt_checkpoint_wait");
	mark("ack %llu main %llu %d", (unsigned long long)id, (unsigned long long)gen, NODES);
}

static int
w_bgsave(void)
{
	ckpt_pool *p = start(8, CKPT_FORK_COPY, KEEP);
	bg(p, 1, 2);
	checkpoint(p, "main", 2);
	big(p, 128 << 10, 0x33);
	bg(p, 2, 3);
	checkpoint(p, "main", 3);
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	return 0;
}

/* fill -- a file taking all free space of dir's filesystem but leave bytes */
static int
fill(const char *file, uint64_t leave)
{
	struct statvfs sv;
	if (statvfs(file, &sv) < 0) {
		char dir[4200];
		snprintf(dir, sizeof(dir), "%s", file);
		*strrchr(dir, '/') = '\0';
		if (statvfs(dir, &sv) < 0)
			return -1;
	}
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	int fd = open(file, O_WRONLY | O_CREAT, 0600);
	if (fd < 0 || avail <= leave)
		return -1;
	int r = fallocate(fd, 0, 0, (off_t)(avail - leave));
	close(fd);
	return r;
}

static int
w_enospc(void)
{
	/* the pool's directory becomes a 24 MiB tmpfs, visible to this process only */
	char dir[4000];
	snprintf(dir, sizeof(dir), "%.3999s", pool_path);
	char *slash = strrchr(dir, '/');
	if (!slash) {
		fprintf(stderr, "crashwork: enospc needs a path with a directory\n");
		return 1;
	}
	*slash = '\0';
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=24m") < 0) {
		printf("SKIP: enospc: cannot mount a tmpfs on %s: %s\n", dir, strerror(errno));
		return 77;
	}
	ckpt_pool *p = start(4, CKPT_FORK_COPY, KEEP);
	checkpoint(p, "main", 1);
	change(p, 2);
	big(p, 512 << 10, 0x77);
	char filler[4200];
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	if (fill(filler, 256 << 10) < 0) {
		fprintf(stderr, "crashwork: cannot fill the tmpfs: %s\n", strerror(errno));
		return 1;
	}
	if (ckpt_checkpoint(p, "full", NULL) == 0 || errno != ENOSPC) {
		fprintf(stderr, "crashwork: checkpoint on a full filesystem: %s (%s)\n",
			strerror(errno), ckpt_errormsg());
		return 1;
	}
	unlink(filler);
	checkpoint(p, "main", 2);
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	return 0;
}

/* -- the copy-on-write engine (cow mode) -------------------------------- */

/*
 * scatter -- changes spread over the heap: a new block of n bytes, and
 * every 7th page of the blocks given (written since the last checkpoint,
 * so the next image rewrites exactly those pages)
 */
static unsigned char *
scatter(ckpt_pool *p, size_t n, int v, unsigned char *old, size_t oldn)
{
	if (old)
		for (size_t off = 0; off < oldn; off += 7 * 4096)
			old[off] = (unsigned char)v;
	unsigned char *b = ckpt_alloc(p, n);
	if (!b)
		die("ckpt_alloc");
	memset(b, v, n);
	return b;
}

static int
w_cow(void)
{
	ckpt_pool *p = start(8, CKPT_FORK_COW, 2);
	unsigned char *blk = scatter(p, 192 << 10, 0x11, NULL, 0);
	checkpoint(p, "main", 1);
	for (uint64_t g = 2; g <= 5; g++) {
		change(p, g);
		scatter(p, 24 << 10, (int)g, blk, 192 << 10);
		checkpoint(p, "main", g);       /* from 3 on: recycles the oldest */
	}
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	p = reopen(CKPT_LATEST, 5);
	for (uint64_t g = 6; g <= 8; g++) {
		change(p, g);
		scatter(p, 16 << 10, (int)g, NULL, 0);
		checkpoint(p, "main", g);
	}
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	return 0;
}

/* can_clone -- 1 if the directory of path can clone (FICLONE) a file */
static int
can_clone(const char *path)
{
	char a[4200], b[4200];
	snprintf(a, sizeof(a), "%s.clone-a", path);
	snprintf(b, sizeof(b), "%s.clone-b", path);
	int fa = open(a, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int fb = open(b, O_RDWR | O_CREAT | O_TRUNC, 0600);
	char buf[4096];
	memset(buf, 1, sizeof(buf));
	int ok = fa >= 0 && fb >= 0 && pwrite(fa, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) &&
		ioctl(fb, FICLONE, fa) == 0;
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	unlink(a);
	unlink(b);
	return ok;
}

static int
w_cow_fork(int need_clone)
{
	if (need_clone && !can_clone(pool_path)) {
		printf("SKIP: cow-reflink: the pool's filesystem cannot clone\n");
		return 77;
	}
	ckpt_pool *p = start(10, CKPT_FORK_COW, 2);
	unsigned char *blk = scatter(p, 128 << 10, 0x21, NULL, 0);
	checkpoint(p, "main", 1);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		mark("keep child1 2");
		for (uint64_t g = 10; g <= 12; g++) {
			change(p, g);
			scatter(p, 16 << 10, (int)g, blk, 128 << 10);
			checkpoint(p, "child1", g);
		}
		_exit(ckpt_close(p) < 0 ? 1 : 0);
	}
	for (uint64_t g = 2; g <= 4; g++) {
		change(p, g);
		scatter(p, 16 << 10, (int)g, blk, 128 << 10);
		checkpoint(p, "main", g);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "crashwork: fork child failed (%d)\n", st);
		return 1;
	}
	dead_child(p);
	change(p, 5);
	checkpoint(p, "main", 5);
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	return 0;
}

/* persist -- ckpt_persist of the heap's whole range at generation gen */
static void
persist(ckpt_pool *p, uint64_t gen)
{
	/* the heap is the pool's base and segment size (its header) */
	struct pool_hdr h;
	int fd = open(pool_path, O_RDONLY);
	if (fd < 0 || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		die("reading the pool header");
	mark("persisting %llu", (unsigned long long)gen);
	if (ckpt_persist(p, (void *)(uintptr_t)h.base, h.seg_size) < 0)
		die("ckpt_persist");
	mark("persisted %llu %d", (unsigned long long)gen, NODES);
	/* two ordering points that make nothing else durable (msync of the
	 * header page, which never changes): the crash point after the first
	 * follows the marker, and its epoch ends before the next persist or
	 * checkpoint begins, so rule 6 applies there, to whatever the
	 * persist's own fdatasync made durable */
	void *hp = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (hp == MAP_FAILED || msync(hp, 4096, MS_SYNC) < 0 || msync(hp, 4096, MS_SYNC) < 0)
		die("msync of the header page");
	munmap(hp, 4096);
	close(fd);
}

static int
w_cow_persist(void)
{
	ckpt_pool *p = start(8, CKPT_FORK_COW, 2);
	persist(p, 1);                  /* over the empty base of a new heap */
	checkpoint(p, "main", 1);
	for (uint64_t g = 2; g <= 3; g++) {
		change(p, g);
		persist(p, g);
	}
	change(p, 4);
	checkpoint(p, "main", 4);       /* the pages persisted at 2 and 3 are stale */
	change(p, 5);
	persist(p, 5);
	_exit(0);                       /* dead, not closed: the heap is what persist left */
}

/* idle -- a thread of the program's that waits for the process to end */
static void *
idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static int
w_cow_threads(void)
{
	ckpt_pool *p = start(8, CKPT_FORK_COW, 2);
	pthread_t t;
	if (pthread_create(&t, NULL, idle, NULL) != 0)
		die("pthread_create");
	unsigned char *blk = scatter(p, 192 << 10, 0x41, NULL, 0);
	persist(p, 1);                  /* over the empty base of a new heap */
	checkpoint(p, "main", 1);       /* beside the thread: logs, no re-base */
	for (uint64_t g = 2; g <= 5; g++) {
		change(p, g);
		scatter(p, 24 << 10, (int)g + 0x40, blk, 192 << 10);
		checkpoint(p, "main", g);
	}
	change(p, 6);
	persist(p, 6);
	_exit(0);                       /* dead, not closed: the heap is what persist left */
}

static int
w_cow_bgsave(void)
{
	ckpt_pool *p = start(10, CKPT_FORK_COW, 2);
	bg(p, 1, 2);
	checkpoint(p, "main", 2);
	big(p, 128 << 10, 0x33);
	bg(p, 2, 3);
	/* after a background checkpoint the lineage's oldest is the parent's
	 * base (pinned) or the child's image (not in the parent's ring): the
	 * third synchronous checkpoint in a row is the first to recycle */
	checkpoint(p, "main", 3);
	change(p, 4);
	checkpoint(p, "main", 4);
	change(p, 5);
	checkpoint(p, "main", 5);
	bg(p, 5, 6);
	checkpoint(p, "main", 6);
	/* background only, as a Redis-style service: the parent keeps its
	 * base (pinned); from the third on, each child recycles a background
	 * checkpoint that retention drops */
	bg(p, 6, 7);
	bg(p, 7, 8);
	bg(p, 8, 9);
	bg(p, 9, 10);
	if (ckpt_close(p) < 0)
		die("ckpt_close");
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: crashwork create|restart|fork|reflink|retention|"
			"bgsave|enospc|cow|cow-fork|cow-bgsave|cow-persist|cow-reflink POOL\n");
		return 2;
	}
	mark_fn = (void (*)(const char *))dlsym(RTLD_DEFAULT, "ckpt_rec_mark");
	pool_path = argv[2];
	const char *w = argv[1];
	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(w, "create") == 0)
		return w_create();
	if (strcmp(w, "restart") == 0)
		return w_restart();
	if (strcmp(w, "fork") == 0)
		return w_fork(CKPT_FORK_COPY);
	if (strcmp(w, "reflink") == 0)
		return w_fork(CKPT_FORK_REFLINK);
	if (strcmp(w, "retention") == 0)
		return w_retention();
	if (strcmp(w, "bgsave") == 0)
		return w_bgsave();
	if (strcmp(w, "enospc") == 0)
		return w_enospc();
	if (strcmp(w, "cow") == 0)
		return w_cow();
	if (strcmp(w, "cow-fork") == 0)
		return w_cow_fork(0);
	if (strcmp(w, "cow-bgsave") == 0)
		return w_cow_bgsave();
	if (strcmp(w, "cow-persist") == 0)
		return w_cow_persist();
	if (strcmp(w, "cow-threads") == 0)
		return w_cow_threads();
	if (strcmp(w, "cow-reflink") == 0)
		return w_cow_fork(1);
	fprintf(stderr, "crashwork: unknown workload %s\n", w);
	return 2;
}
