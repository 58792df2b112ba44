/*
 * bgsave.c -- background checkpoints, Redis BGSAVE style (beyond API.md).
 *
 * ckpt_checkpoint_background() forks. The child continues on its own
 * segment, a copy of the parent's heap at the instant of fork (fork.c), and
 * checkpoints it while the parent goes on changing its heap; the checkpoint
 * therefore equals the parent's heap at fork. The child checkpoints under the
 * parent's life and lineage and then shows the checkpoint as taken by the
 * parent (source = parent segment, taker = the parent), so the parent's
 * keep_checkpoints retention counts it like a checkpoint the parent took
 * itself (without that, every background checkpoint would start a lineage
 * of its own and none would ever be trimmed), closes every pool (its live segment is freed at once, it
 * does not linger as dead) and _exits, reporting through a pipe. A young
 * heap (attach.c) has no life or lineage until it is published: the
 * parent publishes before it reads them (the fork's prepare handler would
 * publish only after), and a young child publishes its own heap before it
 * takes the parent's (the checkpoint's publication would give it a
 * lineage of its own).
 *
 * In cow mode the child also leaves, in memory it shares with the parent,
 * the pages its image changed from the parent's base; ckpt_checkpoint_wait
 * hands them to the engine, so a later checkpoint (the parent's or another
 * child's) can recycle that image instead of copying the base
 * (engine/image.h, background checkpoints).
 *
 * ckpt_checkpoint_wait() collects that report: the checkpoint id, or the
 * child's errno and message. It reaps the child with waitpid; if the
 * application reaped it first (its own SIGCHLD handler) the pipe still holds
 * the report.
 *
 * The forked path of ckpt_checkpoint is the two in one call (forked_sync,
 * the hook checkpoint.c runs): in cow mode, a checkpoint that would re-base
 * the heap while the program's other threads store into it, in a heap
 * that cannot log instead, is taken this way, since a fork takes the heap
 * as it is at one instant and the parent keeps its mapping (checkpoint.c,
 * step 0).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bgsave.h"
#include "checkpoint.h"
#include "fork.h"
#include "map.h"
#include "engine/image.h"
#include "owner.h"

#define BG_MAGIC 0x56415347u   /* "GSAV" */

/* bg_report -- what the child writes (well under PIPE_BUF: one atomic write) */
struct bg_report {
	uint32_t magic;
	int32_t err;            /* 0: success */
	uint64_t id;
	char msg[CKPT_ERRMSG_MAX];
};

/* bg_job -- a background checkpoint not yet collected */
struct bg_job {
	struct bg_job *next;
	struct ckpt_pool *pool;
	pid_t pid;
	int fd;                 /* read end of the report pipe */
	/* cow mode: the pages the child's image changed from the parent's
	 * base, shared with the child (engine/image.h, background
	 * checkpoints); NULL when there is no engine */
	uint64_t *written;
	size_t written_len;
	uint64_t epoch;         /* the parent's base at the fork */
};

/* job_free -- close and free a job taken off the list */
static void
job_free(struct bg_job *j)
{
	close(j->fd);
	map_shared_scratch_end(j->written, j->written_len);
	free(j);
}

static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct bg_job *jobs;
static pthread_once_t hook_once = PTHREAD_ONCE_INIT;

static void bgsave_forget(struct ckpt_pool *p);

/* hook_install -- have ckpt_close forget a closing pool's jobs (bgsave_forget) */
static void
hook_install(void)
{
	pool_on_close(bgsave_forget);
}

/*
 * adopt_checkpoint -- in the child: show checkpoint id as taken by the
 * parent from its segment (it already belongs to the parent's lineage, so
 * the parent's retention counts it)
 */
static int
adopt_checkpoint(struct ckpt_pool *p, ckpt_id id, uint32_t parent_seg,
		const struct cat_owner *parent)
{
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	for (uint32_t i = 0; i < v.n; i++) {
		struct cat_entry *e = &v.e[i];
		if (e->state == CAT_CKPT && e->ckpt_id == id) {
			e->source = parent_seg;
			e->owner = *parent;
			return cat_commit(&p->cat);
		}
	}
	cat_end(&p->cat);
	return ckpt_err_set(ENOENT, "checkpoint %llu vanished before it could be "
			"attributed to the parent", (unsigned long long)id);
}

/* child_run -- the background child: checkpoint, report, exit */
static void __attribute__((noreturn))
child_run(struct ckpt_pool *p, const char *label, int wfd, uint64_t *written,
		uint32_t parent_seg, struct cat_owner parent, uint64_t parent_life,
		uint64_t parent_lineage)
{
	/* checkpoint as the parent's heap: its life and lineage, so its
	 * retention applies (the heap is the parent's as of fork). A young
	 * child publishes its own heap first, as the checkpoint would: its
	 * publication gives the heap a life and lineage of its own, which
	 * must not be the checkpoint's */
	struct bg_report r;
	memset(&r, 0, sizeof(r));
	r.magic = BG_MAGIC;
	ckpt_id id = 0;
	int published = pool_published(p);
	p->life = parent_life;
	p->lineage = parent_lineage;
	if (published < 0 || ckpt_checkpoint(p, label, &id) < 0 ||
	    adopt_checkpoint(p, id, parent_seg, &parent) < 0) {
		r.err = errno ? errno : EIO;
		snprintf(r.msg, sizeof(r.msg), "background checkpoint: %s", ckpt_errormsg());
	} else {
		r.id = id;
		if (written)
			image_copy_interval(p, written);
	}
	fork_close_all();
	ssize_t n = write(wfd, &r, sizeof(r));
	_exit(n == (ssize_t)sizeof(r) && r.err == 0 ? 0 : 1);
}

CKPT_EXPORT pid_t
ckpt_checkpoint_background(ckpt_pool *p, const char *label)
{
	if (pool_usable(p) < 0)
		return -1;
	if (label && strlen(label) >= CAT_LABEL_MAX)
		return ckpt_err_set(EINVAL, "checkpoint label longer than %d bytes",
				CAT_LABEL_MAX - 1);
	if (p->fork_mode == CKPT_FORK_SHARED)
		return ckpt_err_set(ENOTSUP, "background checkpoint needs a child with its own "
				"heap; pool %s uses fork mode shared", p->path);
	/* the child checkpoints under our life and lineage, read below before
	 * the fork: a young heap gets them by its publication, which must not
	 * wait for the fork's own (fork.c's prepare handler) */
	if (pool_published(p) < 0)
		return -1;
	pthread_once(&hook_once, hook_install);
	struct bg_job *job = calloc(1, sizeof(*job));
	if (!job)
		return ckpt_err_set(ENOMEM, "out of memory");
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(job);
		return ckpt_err_set(errno, "background checkpoint: pipe: %s", strerror(errno));
	}
	/* cow: room for what the child's image changed (without it the image
	 * is only never recycled) */
	pthread_mutex_lock(&p->mu);
	job->written_len = image_bitmap_bytes(p);
	job->epoch = image_epoch(p);
	pthread_mutex_unlock(&p->mu);
	if (job->written_len)
		job->written = map_shared_scratch(job->written_len);
	/* who the child attributes its checkpoint to; read before fork, the
	 * child's handlers replace them */
	uint32_t parent_seg = p->seg;
	struct cat_owner parent = p->self;
	uint64_t parent_life = p->life, parent_lineage = p->lineage;
	char lab[CAT_LABEL_MAX] = "";
	if (label)
		memcpy(lab, label, strlen(label) + 1);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(fds[1]);
		job->fd = fds[0];
		job_free(job);
		return ckpt_err_set(e, "background checkpoint: fork: %s", strerror(e));
	}
	if (pid == 0) {
		uint64_t *written = job->written;
		free(job);      /* the parent's bookkeeping */
		close(fds[0]);
		child_run(p, label ? lab : NULL, fds[1], written, parent_seg, parent,
				parent_life, parent_lineage);
	}
	close(fds[1]);
	job->pool = p;
	job->pid = pid;
	job->fd = fds[0];
	pthread_mutex_lock(&jobs_mu);
	job->next = jobs;
	jobs = job;
	pthread_mutex_unlock(&jobs_mu);
	return pid;
}

/* take_job -- unlink and return the job of (p, pid), or NULL */
static struct bg_job *
take_job(struct ckpt_pool *p, pid_t pid)
{
	pthread_mutex_lock(&jobs_mu);
	struct bg_job *j = NULL;
	for (struct bg_job **jp = &jobs; *jp; jp = &(*jp)->next) {
		if ((*jp)->pool == p && (*jp)->pid == pid) {
			j = *jp;
			*jp = j->next;
			break;
		}
	}
	pthread_mutex_unlock(&jobs_mu);
	return j;
}

/* put_job -- give a job back (still running) */
static void
put_job(struct bg_job *j)
{
	pthread_mutex_lock(&jobs_mu);
	j->next = jobs;
	jobs = j;
	pthread_mutex_unlock(&jobs_mu);
}

/* read_report -- 1 and *r if the child's report is in the pipe, 0 if not yet/never */
static int
read_report(int fd, struct bg_report *r, int block)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int n;
	do
		n = poll(&pf, 1, block ? -1 : 0);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	ssize_t got;
	do
		got = read(fd, r, sizeof(*r));
	while (got < 0 && errno == EINTR);
	return got == (ssize_t)sizeof(*r) && r->magic == BG_MAGIC;
}

CKPT_EXPORT int
ckpt_checkpoint_wait(ckpt_pool *p, pid_t pid, ckpt_id *id, int flags)
{
	if (!p)
		return ckpt_err_set(EINVAL, "pool is NULL");
	if (flags & ~CKPT_WNOHANG)
		return ckpt_err_set(EINVAL, "unknown flags 0x%x", (unsigned)flags);
	struct bg_job *j = take_job(p, pid);
	if (!j)
		return ckpt_err_set(ECHILD, "process %d is not a background checkpoint of this "
				"pool still to be collected", (int)pid);
	int nohang = flags & CKPT_WNOHANG;
	int st = 0, reaped;
	pid_t w;
	do
		w = waitpid(pid, &st, nohang ? WNOHANG : 0);
	while (w < 0 && errno == EINTR);
	reaped = w == pid;
	if (w == 0) {
		put_job(j);
		return ckpt_err_set(EAGAIN, "background checkpoint %d is still running", (int)pid);
	}
	/* reaped by us: the report, if any, is already in the pipe. Reaped
	 * by someone else (w < 0, ECHILD): wait for the report or EOF. */
	struct bg_report r;
	int have = read_report(j->fd, &r, !reaped && !nohang);
	if (!have && !reaped && nohang) {
		/* cannot tell a running child from one that died unreported
		 * without waitpid; its write end closing tells */
		struct pollfd pf = { .fd = j->fd, .events = POLLIN };
		if (poll(&pf, 1, 0) == 0) {
			put_job(j);
			return ckpt_err_set(EAGAIN, "background checkpoint %d is still running",
					(int)pid);
		}
	}
	if (have && !r.err && j->written) {
		pthread_mutex_lock(&p->mu);
		image_bg_published(p, r.id, j->epoch, j->written);
		pthread_mutex_unlock(&p->mu);
	}
	job_free(j);
	if (!have) {
		if (reaped && WIFSIGNALED(st))
			return ckpt_err_set(EIO, "background checkpoint %d was killed by signal %d "
					"before it reported", (int)pid, WTERMSIG(st));
		if (reaped)
			return ckpt_err_set(EIO, "background checkpoint %d exited with status %d "
					"before it reported", (int)pid, WEXITSTATUS(st));
		return ckpt_err_set(EIO, "background checkpoint %d ended without reporting",
				(int)pid);
	}
	r.msg[sizeof(r.msg) - 1] = '\0';
	if (r.err)
		return ckpt_err_set(r.err, "%s", r.msg);
	if (id)
		*id = r.id;
	return 0;
}

/* bgsave_forget -- the close hook: drop the jobs of a closing pool, uncollected */
static void
bgsave_forget(struct ckpt_pool *p)
{
	pthread_mutex_lock(&jobs_mu);
	for (struct bg_job **jp = &jobs; *jp;) {
		struct bg_job *j = *jp;
		if (j->pool == p) {
			*jp = j->next;
			job_free(j);    /* the child still runs and is reaped by whoever waits */
		} else {
			jp = &j->next;
		}
	}
	pthread_mutex_unlock(&jobs_mu);
}

/*
 * forked_sync -- ckpt_checkpoint's forked path (checkpoint.c, step 0): a
 * background checkpoint, waited for
 */
static int
forked_sync(struct ckpt_pool *p, const char *label, ckpt_id *id)
{
	pid_t pid = ckpt_checkpoint_background(p, label);
	if (pid < 0)
		return -1;
	return ckpt_checkpoint_wait(p, pid, id, 0);
}

static void
arm_once(void)
{
	checkpoint_on_threads(forked_sync);
}

void
bgsave_arm(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, arm_once);
}
