/*
 * fork_bench.c -- fork pause of a process whose heap is a libckpt pool, in
 * each fork mode, side by side with a plain fork() of a process holding the
 * same amount of touched anonymous memory (what a Redis BGSAVE pays).
 *
 * One run, alternating (copy, reflink, cow, auto: the default, shared,
 * plain, copy, ...), for each heap size and each fraction of pages
 * rewritten between forks (0%: a clean heap, persisted; 1%: every 100th
 * page; 100%: every page). Per fork:
 *   parent pause -- from just before fork() to its return in the parent;
 *   child start  -- from just before fork() to the child's first statement.
 * Medians of --reps forks, the first (warm-up) fork of every configuration
 * dropped. Ratios are to the plain fork of the same size and fraction.
 * Also measured in the same rotation: copy_file_range of the same number of
 * bytes between two files on the copy-mode filesystem (into an emptied
 * destination, like copy mode's punched segment), the bound copy mode is
 * judged by. The reference for the target is measured first, per size, in
 * the same run: --reps copies (after a warm-up) before any fork of that size,
 * so nothing the forks leave behind slows it; the in-rotation copies are
 * printed beside it. Before each timed step (each fork, each reference copy) the
 * main process calls sync(), untimed, and the reference copy is dropped
 * after it is timed, as a child's segment is when it exits: every step
 * starts with nothing dirty left over from the one before.
 *
 * Each configuration lives in its own worker process holding only its own
 * heap (a fork's cost depends on everything the process maps), driven over
 * pipes by the main process, which holds nothing large.
 *
 * Usage: fork_bench --dir DIR [--reflink-dir DIR] [--sizes 64,256,1024]
 *                   [--reps N] [--smoke]
 * Children close the pool before exiting, so no dead segments accumulate.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libckpt.h>

#define PAGE 4096ul
#define MAXREPS 64

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum kind { K_COPY, K_REFLINK, K_COW, K_AUTO, K_SHARED, K_PLAIN, NKIND };
static const char *kind_name[] = { "copy", "reflink", "cow", "auto", "shared", "plain fork" };

/* subject -- one thing that forks: a pool in one mode, or anonymous memory */
struct subject {
	enum kind k;
	int ok;
	ckpt_pool *pool;
	char path[1024];
	char *mem;              /* the heap bytes (one big block) or the anonymous region */
	size_t len;
};

static int
subject_open(struct subject *s, enum kind k, const char *dir, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->k = k;
	s->len = len;
	if (k == K_PLAIN) {
		s->mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (s->mem == MAP_FAILED)
			return -1;
		madvise(s->mem, len, MADV_NOHUGEPAGE);   /* 4 KiB pages, as Redis runs */
		memset(s->mem, 1, len);
		s->ok = 1;
		return 0;
	}
	if (!dir)
		return -1;
	snprintf(s->path, sizeof(s->path), "%s/fork-bench-%s.pool", dir, kind_name[k]);
	unlink(s->path);
	static const enum ckpt_fork_mode modes[] = { CKPT_FORK_COPY, CKPT_FORK_REFLINK,
		CKPT_FORK_COW, CKPT_FORK_AUTO, CKPT_FORK_SHARED };
	struct ckpt_config c = { .heap_size = len + len / 8 + (64ul << 20), .max_segments = 4,
		.fork_mode = modes[k] };
	s->pool = ckpt_create(s->path, &c);
	if (!s->pool) {
		fprintf(stderr, "# %s: %s (skipped)\n", kind_name[k], ckpt_errormsg());
		return -1;
	}
	s->mem = ckpt_alloc(s->pool, len);
	if (!s->mem) {
		fprintf(stderr, "# %s: alloc: %s\n", kind_name[k], ckpt_errormsg());
		return -1;
	}
	memset(s->mem, 1, len);
	s->ok = 1;
	return 0;
}

static void
subject_close(struct subject *s)
{
	if (s->pool) {
		ckpt_close(s->pool);
		unlink(s->path);
	} else if (s->mem && s->k == K_PLAIN) {
		munmap(s->mem, s->len);
	}
	memset(s, 0, sizeof(*s));
}

/* rewrite -- write one byte in pct% of the pages (spread evenly); pct 0: make the heap clean */
static void
rewrite(struct subject *s, int pct, int round)
{
	if (pct == 0) {
		/* cow (and auto, which settles to it on a new pool off pmem)
		 * keeps the heap in memory: a checkpoint makes it clean */
		if (s->pool && (s->k == K_COW || s->k == K_AUTO))
			ckpt_checkpoint(s->pool, NULL, NULL);
		else if (s->pool)
			ckpt_persist(s->pool, s->mem, s->len);
		return;
	}
	size_t step = pct >= 100 ? 1 : 100 / (size_t)pct;
	for (size_t pg = (size_t)round % step; pg < s->len / PAGE; pg += step)
		s->mem[pg * PAGE] = (char)round;
}

/* fork_once -- one measured fork: parent pause and child start, seconds */
static int
fork_once(struct subject *s, double *pause, double *start)
{
	int fds[2];
	if (pipe(fds) < 0)
		return -1;
	double t0 = now();
	pid_t pid = fork();
	if (pid == 0) {
		double t2 = now();
		if (write(fds[1], &t2, sizeof(t2)) < 0)
			_exit(1);
		if (s->pool)
			ckpt_close(s->pool);    /* free the child's segment now */
		_exit(0);
	}
	double t1 = now();
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return -1;
	}
	double t2 = 0;
	ssize_t n = read(fds[0], &t2, sizeof(t2));
	close(fds[0]);
	int st;
	waitpid(pid, &st, 0);
	if (n != sizeof(t2) || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	*pause = t1 - t0;
	*start = t2 - t0;
	return 0;
}

/* worker -- a process holding one subject, forking on command */
struct worker {
	pid_t pid;
	int cmd, res;           /* pipes: commands in, results out */
	int ok;
};
struct wcmd { int pct, round; };
struct wres { int rc; double pause, start; };

static void __attribute__((noreturn))
worker_loop(enum kind k, const char *dir, size_t len, int cmd, int res)
{
	struct subject s;
	int ok = dir || k == K_PLAIN ? subject_open(&s, k, dir, len) == 0 : 0;
	if (write(res, &ok, sizeof(ok)) != sizeof(ok))
		_exit(1);
	struct wcmd c;
	while (read(cmd, &c, sizeof(c)) == (ssize_t)sizeof(c) && c.pct >= 0) {
		struct wres r = { 0, 0, 0 };
		rewrite(&s, c.pct, c.round);
		r.rc = fork_once(&s, &r.pause, &r.start);
		if (write(res, &r, sizeof(r)) != sizeof(r))
			break;
	}
	if (ok)
		subject_close(&s);
	_exit(0);
}

static void
worker_start(struct worker *w, enum kind k, const char *dir, size_t len)
{
	int a[2], b[2];
	memset(w, 0, sizeof(*w));
	if (pipe(a) < 0 || pipe(b) < 0)
		return;
	fflush(NULL);
	w->pid = fork();
	if (w->pid == 0) {
		close(a[1]);
		close(b[0]);
		worker_loop(k, dir, len, a[0], b[1]);
	}
	close(a[0]);
	close(b[1]);
	w->cmd = a[1];
	w->res = b[0];
	if (w->pid < 0 || read(w->res, &w->ok, sizeof(w->ok)) != sizeof(w->ok))
		w->ok = 0;
}

static int
worker_fork(struct worker *w, int pct, int round, double *pause, double *start)
{
	struct wcmd c = { pct, round };
	struct wres r;
	if (write(w->cmd, &c, sizeof(c)) != sizeof(c) ||
	    read(w->res, &r, sizeof(r)) != sizeof(r) || r.rc < 0)
		return -1;
	*pause = r.pause;
	*start = r.start;
	return 0;
}

static void
worker_stop(struct worker *w)
{
	if (w->pid <= 0)
		return;
	/* say quit: later workers inherited this pipe too, so no EOF comes */
	struct wcmd quit = { -1, 0 };
	if (write(w->cmd, &quit, sizeof(quit)) < 0)
		kill(w->pid, SIGKILL);
	close(w->cmd);
	close(w->res);
	waitpid(w->pid, NULL, 0);
}

/*
 * cfr -- the copy_file_range reference: len bytes from file a to file b in
 * the copy-mode directory, timed once per repetition inside the same
 * rotation as the forks, so it meets the same page-cache and writeback
 * state as copy mode does.
 */
struct cfr {
	char a[1024], b[1024];
	int fa, fb;
	size_t len;
};

static int
cfr_open(struct cfr *c, const char *dir, size_t len)
{
	snprintf(c->a, sizeof(c->a), "%s/fork-bench-cfr-a", dir);
	snprintf(c->b, sizeof(c->b), "%s/fork-bench-cfr-b", dir);
	c->len = len;
	c->fa = open(c->a, O_RDWR | O_CREAT | O_TRUNC, 0600);
	c->fb = open(c->b, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (c->fa < 0 || c->fb < 0)
		return -1;
	char *buf = malloc(1 << 20);
	memset(buf, 1, 1 << 20);
	for (size_t off = 0; off < len; off += 1 << 20)
		if (pwrite(c->fa, buf, 1 << 20, (off_t)off) < 0)
			break;
	free(buf);
	return 0;
}

/* cfr_once -- seconds to copy the bytes into an emptied destination (emptied again after), -1 on failure */
static double
cfr_once(struct cfr *c)
{
	if (ftruncate(c->fb, 0) < 0)
		return -1;
	loff_t si = 0, di = 0;
	double t0 = now();
	size_t left = c->len;
	while (left) {
		ssize_t r = copy_file_range(c->fa, &si, c->fb, &di, left, 0);
		if (r <= 0)
			return -1;
		left -= (size_t)r;
	}
	double t = now() - t0;
	/* drop the copy now, as a fork child's segment is punched when it
	 * exits: else its gigabyte of dirty page cache is still waiting for
	 * writeback when the next configuration copies, which then meets the
	 * dirty-page throttling this copy left behind */
	if (ftruncate(c->fb, 0) < 0)
		return -1;
	return t;
}

static void
cfr_close(struct cfr *c)
{
	close(c->fa);
	close(c->fb);
	unlink(c->a);
	unlink(c->b);
}

/*
 * settle -- before each timed step (untimed): write back what earlier steps
 * left dirty, so every fork and every reference copy starts from the same
 * writeback state and none pays for another's dirty pages (at 1 GiB a step
 * leaves a gigabyte, enough to reach the kernel's dirty throttling). Twice:
 * the reflink pool's XFS sits on a loop device, whose writeback during the
 * first sync() dirties its backing file on the ext4 the copies use.
 */
static void
settle(void)
{
	sync();
	sync();
}

int
main(int argc, char **argv)
{
	const char *dir = NULL, *rdir = NULL, *sizes = "64,256,1024";
	int reps = 5, smoke = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--reflink-dir") && i + 1 < argc)
			rdir = argv[++i];
		else if (!strcmp(argv[i], "--sizes") && i + 1 < argc)
			sizes = argv[++i];
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--smoke"))
			smoke = 1;
		else {
			fprintf(stderr, "usage: %s --dir DIR [--reflink-dir DIR] [--sizes MiB,...] "
					"[--reps N] [--smoke]\n", argv[0]);
			return 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "fork_bench: --dir is required\n");
		return 2;
	}
	if (smoke) {
		sizes = "8";
		reps = 2;
	}
	if (reps < 2 || reps > MAXREPS - 1)
		reps = 5;
	unsetenv("CKPT_FORK_MODE");
	static const int pcts[] = { 0, 1, 100 };
	printf("# fork pause: medians of %d forks (first fork of each configuration dropped)\n",
			reps);
	printf("# pause = fork() call to its return in the parent; start = to the child's "
			"first statement\n");
	printf("%-6s %-5s %-10s %10s %10s %8s %8s\n", "MiB", "rewr", "mode", "pause_ms",
			"start_ms", "x_plain", "x_start");
	char *list = strdup(sizes);
	int fails = 0;
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		size_t mib = strtoul(tok, NULL, 10);
		size_t len = mib << 20;
		struct worker s[NKIND];
		for (int k = 0; k < NKIND; k++)
			worker_start(&s[k], (enum kind)k, k == K_REFLINK ? rdir : dir, len);
		struct cfr cf;
		int have_cfr = cfr_open(&cf, dir, len) == 0;
		/* the reference: copy_file_range alone, before any fork of this size */
		double ref = 0;
		if (have_cfr) {
			double rt[MAXREPS];
			int nr = 0;
			for (int r = 0; r <= reps; r++) {
				settle();
				double t = cfr_once(&cf);
				if (r > 0 && t > 0)
					rt[nr++] = t;
			}
			ref = nr ? median(rt, nr) : 0;
			printf("%-6zu %-5s %-10s %10.3f %10s %8s   reference: %.2f GB/s\n", mib, "-",
					"(cfr ref)", ref * 1e3, "-", "-", ref > 0 ? (double)len / ref / 1e9 : 0);
		}
		for (size_t pi = 0; pi < sizeof(pcts) / sizeof(pcts[0]); pi++) {
			double pause[NKIND][MAXREPS], start[NKIND][MAXREPS], cft[MAXREPS];
			int n[NKIND] = { 0 }, ncf = 0;
			for (int r = 0; r <= reps; r++) {       /* A B C D E A B C D E ... */
				settle();
				double t = have_cfr ? cfr_once(&cf) : -1;
				if (r > 0 && t > 0)
					cft[ncf++] = t;
				for (int k = 0; k < NKIND; k++) {
					if (!s[k].ok)
						continue;
					double a, b;
					settle();
					if (worker_fork(&s[k], pcts[pi], r + 1, &a, &b) < 0) {
						fails++;
						continue;
					}
					if (r == 0)
						continue;       /* warm-up */
					pause[k][n[k]] = a;
					start[k][n[k]] = b;
					n[k]++;
				}
			}
			double cfr = ncf ? median(cft, ncf) : 0;
			double pp = 0, ps = 0;
			if (n[K_PLAIN]) {
				pp = median(pause[K_PLAIN], n[K_PLAIN]);
				ps = median(start[K_PLAIN], n[K_PLAIN]);
			}
			for (int k = 0; k < NKIND; k++) {
				if (!n[k])
					continue;
				double mp = median(pause[k], n[k]), ms = median(start[k], n[k]);
				printf("%-6zu %3d%%  %-10s %10.3f %10.3f %8.2f %8.2f\n", mib, pcts[pi],
						kind_name[k], mp * 1e3, ms * 1e3, pp > 0 ? mp / pp : 0,
						ps > 0 ? ms / ps : 0);
				if (k == K_COPY && cfr > 0 && ref > 0)
					printf("%-6zu %3d%%  %-10s %10.3f %10s %8s   copy at %.0f%% of "
						"the reference (in rotation: %.0f%%, %.2f GB/s)\n", mib,
						pcts[pi], "(cfr)", cfr * 1e3, "-", "-", 100 * ref / mp,
						100 * cfr / mp, (double)len / cfr / 1e9);
			}
			fflush(stdout);
		}
		for (int k = 0; k < NKIND; k++)
			worker_stop(&s[k]);
		if (have_cfr)
			cfr_close(&cf);
	}
	free(list);
	if (fails)
		fprintf(stderr, "fork_bench: %d forks failed\n", fails);
	return fails ? 1 : 0;
}
