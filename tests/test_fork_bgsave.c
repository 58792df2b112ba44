/*
 * test_fork_bgsave.c -- background checkpoint, Redis BGSAVE style
 * (ckpt_checkpoint_background / ckpt_checkpoint_wait, beyond API.md): the
 * checkpoint equals the parent's heap at the instant of fork while the
 * parent keeps changing it; it is attributed to the parent's segment and
 * retention trims it; the child leaves no segment behind; failures come
 * back with the child's errno and message.
 *
 * And step 0 of ckpt_checkpoint (checkpoint.c): in fork mode cow, where a
 * checkpoint would re-base the heap, threads that keep writing their
 * blocks lose no store, to background checkpoints or to ckpt_checkpoint,
 * which beside them starts the heap logging (on tmpfs or disk) or, where
 * it cannot log, forks, and only beside the program's threads (libckpt's
 * own do not count: threads.c); a heap that starts logging late recycles
 * its older images correctly; a logging heap whose tracking cannot grow
 * starts it afresh, or forks, or fails rather than re-base beside them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_fork_util.h"
#include "pool.h"
#include "threads.h"
#include "engine/image.h"

/* forks -- fork()s this process made (a pthread_atfork prepare handler) */
static _Atomic int forks;

static void
count_fork(void)
{
	atomic_fetch_add(&forks, 1);
}

#define NV (256u << 10)     /* 2 MiB of uint64_t */

static void
test_bgsave_snapshot_at_fork(void **state)
{
	(void)state;
	const char *path = tu_path("bg.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 8);
	uint64_t *v = ckpt_alloc(p, NV * sizeof(uint64_t));
	assert_non_null(v);
	for (uint64_t i = 0; i < NV; i++)
		v[i] = i;
	assert_int_equal(ckpt_set_root(p, v), 0);
	pid_t pid = ckpt_checkpoint_background(p, "bgsave");
	assert_true(pid > 0);
	/* the parent keeps changing its heap while the child checkpoints */
	uint64_t gen = 0;
	ckpt_id id = 0;
	int rc;
	do {
		gen++;
		for (uint64_t i = 0; i < NV; i += 61)
			v[i] = gen << 32 | i;
		void *x = ckpt_alloc(p, 1000);
		ckpt_free(p, x);
		rc = ckpt_checkpoint_wait(p, pid, &id, CKPT_WNOHANG);
		assert_true(rc == 0 || errno == EAGAIN);
	} while (rc != 0);
	assert_true(id > 0);
	assert_int_equal(kill(pid, 0), -1);         /* reaped */
	assert_int_equal(v[61], gen << 32 | 61);

	/* the checkpoint is the heap as it was at fork */
	size_t len;
	uint32_t seg;
	uint64_t *h = fk_read_ckpt(path, id, &len, &seg);
	const uint64_t *cv = fk_at(h, len, fk_base(path), v);
	for (uint64_t i = 0; i < NV; i++)
		if (cv[i] != i)
			fail_msg("checkpoint word %llu is %llx, not its value at fork",
				(unsigned long long)i, (unsigned long long)cv[i]);
	inspect_free_heap(h, len);

	/* attributed to the parent; the child's segment was freed, not left dead */
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(c.e[seg].source, p->seg);
	assert_int_equal(c.e[seg].owner.pid, getpid());
	assert_string_equal(c.e[seg].label, "bgsave");
	assert_int_equal(tu_catalog_count(&c, CAT_LIVE), 1);
	assert_int_equal(tu_catalog_count(&c, CAT_BUSY), 0);
	tu_catalog_free(&c);

	/* and it restarts like any checkpoint */
	assert_int_equal(ckpt_close(p), 0);
	p = ckpt_open(path, id, NULL);
	assert_non_null(p);
	assert_ptr_equal(ckpt_root(p), v);
	assert_int_equal(v[61], 61);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

/* keep_checkpoints applies to background checkpoints as to the parent's own */
static void
test_bgsave_retention(void **state)
{
	(void)state;
	const char *path = tu_path("bgkeep.pool");
	struct ckpt_config cfg = { .heap_size = 16 << 20, .max_segments = 6,
		.fork_mode = CKPT_FORK_COPY, .keep_checkpoints = 2 };
	unlink(path);
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	uint64_t *v = ckpt_calloc(p, 1, 8);
	ckpt_id ids[6];
	for (int k = 0; k < 6; k++) {      /* more than the pool could hold untrimmed */
		*v = (uint64_t)k;
		if (k == 3) {
			assert_int_equal(ckpt_checkpoint(p, "own", &ids[k]), 0);
			continue;
		}
		pid_t pid = ckpt_checkpoint_background(p, "bg");
		assert_true(pid > 0);
		if (ckpt_checkpoint_wait(p, pid, &ids[k], 0) < 0)
			fail_msg("round %d: %s", k, ckpt_errormsg());
	}
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_CKPT), 2);
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_CKPT)
			assert_true(c.e[i].ckpt_id == ids[4] || c.e[i].ckpt_id == ids[5]);
	tu_catalog_free(&c);
	assert_int_equal(ckpt_close(p), 0);
}

static void
test_bgsave_errors(void **state)
{
	(void)state;
	/* shared mode: the child would see the parent's writes */
	const char *path = tu_path("bgshared.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_SHARED, 4);
	assert_int_equal(ckpt_checkpoint_background(p, NULL), -1);
	assert_int_equal(errno, ENOTSUP);
	assert_int_equal(ckpt_close(p), 0);

	path = tu_path("bgerr.pool");
	p = fk_create(path, CKPT_FORK_COPY, 2);
	char longlabel[200];
	memset(longlabel, 'x', sizeof(longlabel) - 1);
	longlabel[sizeof(longlabel) - 1] = '\0';
	assert_int_equal(ckpt_checkpoint_background(p, longlabel), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ckpt_checkpoint_wait(p, getpid(), NULL, 0), -1);
	assert_int_equal(errno, ECHILD);
	assert_int_equal(ckpt_checkpoint_wait(p, 1, NULL, 42), -1);
	assert_int_equal(errno, EINVAL);

	/* two segments: the child gets the second, none is left for its checkpoint */
	pid_t pid = ckpt_checkpoint_background(p, "full");
	assert_true(pid > 0);
	assert_int_equal(ckpt_checkpoint_wait(p, pid, NULL, 0), -1);
	assert_int_equal(errno, ENOSPC);
	assert_non_null(strstr(ckpt_errormsg(), "background checkpoint"));
	/* collected once only */
	assert_int_equal(ckpt_checkpoint_wait(p, pid, NULL, 0), -1);
	assert_int_equal(errno, ECHILD);

	/* a child killed before publishing: EIO naming the signal, pool unchanged */
	assert_int_equal(ckpt_close(p), 0);
	path = tu_path("bgkill.pool");
	p = fk_create(path, CKPT_FORK_COPY, 4);
	setenv("CKPT_TEST_CRASH_AT", "checkpoint:before-publish", 1);
	pid = ckpt_checkpoint_background(p, "killed");
	unsetenv("CKPT_TEST_CRASH_AT");
	assert_true(pid > 0);
	assert_int_equal(ckpt_checkpoint_wait(p, pid, NULL, 0), -1);
	assert_int_equal(errno, EIO);
	assert_non_null(strstr(ckpt_errormsg(), "signal 9"));
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_CKPT), 0);
	tu_catalog_free(&c);
	/* and the parent checkpoints normally afterwards */
	assert_int_equal(ckpt_checkpoint(p, "after", NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

/* the application reaped the child itself (its own SIGCHLD handling): the report still arrives */
static void
test_bgsave_reaped_by_application(void **state)
{
	(void)state;
	const char *path = tu_path("bgreap.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 4);
	pid_t pid = ckpt_checkpoint_background(p, "reaped");
	assert_true(pid > 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ckpt_id id = 0;
	assert_int_equal(ckpt_checkpoint_wait(p, pid, &id, 0), 0);
	assert_true(id > 0);
	assert_int_equal(ckpt_close(p), 0);
}

/* a thread that waits until its pipe's write end closes */
static void *
blocker(void *arg)
{
	char c;
	while (read(*(int *)arg, &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

struct held {
	int fd[2];
	pthread_t t;
};

static void
held_start(struct held *h, int own)
{
	assert_int_equal(pipe(h->fd), 0);
	if (own)
		assert_int_equal(lib_thread_start(&h->t, "ckpt-lazy", 0, blocker, &h->fd[0]), 0);
	else
		assert_int_equal(pthread_create(&h->t, NULL, blocker, &h->fd[0]), 0);
}

static void
held_end(struct held *h)
{
	close(h->fd[1]);
	assert_int_equal(pthread_join(h->t, NULL), 0);
	close(h->fd[0]);
}

/* alone -- wait until threads_of_program() is 0: a joined thread of ours is
 * no longer listed (the kernel wakes the joiner before it takes the thread
 * out of the group), a thread of libckpt's has taken its name */
static void
alone(void)
{
	for (int i = 0; threads_of_program() != 0; i++) {
		if (i == 2000)
			fail_msg("a joined thread is still listed after 2 s");
		usleep(1000);
	}
}

/* -- threads writing while a cow heap checkpoints in the background -- */

#define WR_WORDS (64u << 10)    /* 512 KiB per writer: 128 pages */
#define WR_THREADS 2
struct writer {
	uint64_t *v;
	unsigned id;
	_Atomic int *stop;
	uint64_t gens;          /* passes done */
	long lost;              /* words found with an older pass's value */
};

/* writer_main -- pass after pass, check every word holds the last pass's
 * value, then write the next: a store lost from the heap shows as an older one */
static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	for (uint64_t gen = 1; !atomic_load(w->stop); gen++) {
		for (uint64_t i = 0; i < WR_WORDS; i++) {
			uint64_t want = (gen - 1) << 20 | (uint64_t)w->id << 16 | (i & 0xffff);
			if (gen > 1 && w->v[i] != want)
				w->lost++;
			w->v[i] = gen << 20 | (uint64_t)w->id << 16 | (i & 0xffff);
		}
		__atomic_store_n(&w->gens, gen, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* wr_root -- the writers' blocks, found again after a restart */
struct wr_root {
	uint64_t *v[WR_THREADS];
};

/*
 * writers_run -- two threads writing their blocks of a new cow heap across
 * six checkpoints, background ones (sync 0) or ckpt_checkpoint (sync 1),
 * on tmpfs (disk 0) or in the test directory (disk 1); a heap that can log
 * starts at the first and nothing forks, one that cannot (nolog:
 * CKPT_TEST_NO_LOG) has each checkpoint forked: no store is lost from the
 * heap, and a restart from the checkpoint taken after the writers stopped
 * holds their last pass
 */
static void
writers_run(int sync, int disk, int nolog)
{
	char path[4096];
	if (disk) {
		snprintf(path, sizeof(path), "%s", tu_path("bgw.pool"));
	} else {
		if (access("/dev/shm", W_OK) != 0)
			skip();
		snprintf(path, sizeof(path), "/dev/shm/ckpt-test-bgw-%d.pool", (int)getpid());
	}
	unlink(path);
	ckpt_pool *p = fk_create(path, CKPT_FORK_COW, 8);
	assert_int_equal(p->fork_mode, CKPT_FORK_COW);
	if (disk && p->eng->on_tmpfs) {
		assert_int_equal(ckpt_close(p), 0);
		skip();         /* the test directory is on tmpfs */
	}
	assert_true(disk || p->eng->on_tmpfs);
	_Atomic int stop = 0;
	struct writer w[WR_THREADS];
	pthread_t t[WR_THREADS];
	struct wr_root *root = ckpt_alloc(p, sizeof(*root));
	assert_non_null(root);
	assert_int_equal(ckpt_set_root(p, root), 0);
	for (unsigned k = 0; k < WR_THREADS; k++) {
		w[k] = (struct writer){ .v = ckpt_alloc(p, WR_WORDS * sizeof(uint64_t)), .id = k,
				.stop = &stop };
		assert_non_null(w[k].v);
		memset(w[k].v, 0, WR_WORDS * sizeof(uint64_t));
		root->v[k] = w[k].v;
	}
	for (unsigned k = 0; k < WR_THREADS; k++)
		assert_int_equal(pthread_create(&t[k], NULL, writer_main, &w[k]), 0);
	int f0 = atomic_load(&forks);
	if (nolog)
		setenv("CKPT_TEST_NO_LOG", "1", 1);
	for (int n = 0; n < 6; n++) {
		ckpt_id id = 0;
		if (sync) {
			if (ckpt_checkpoint(p, NULL, &id) < 0)
				fail_msg("checkpoint: %s", ckpt_errormsg());
		} else {
			pid_t pid = ckpt_checkpoint_background(p, NULL);
			assert_true(pid > 0);
			assert_int_equal(ckpt_checkpoint_wait(p, pid, &id, 0), 0);
		}
		assert_true(id > 0);
	}
	/* and the writers ran across them: a pass or more after the last one */
	uint64_t g0 = w[0].gens;
	while (__atomic_load_n(&w[0].gens, __ATOMIC_RELAXED) < g0 + 2)
		usleep(1000);
	atomic_store(&stop, 1);
	for (unsigned k = 0; k < WR_THREADS; k++) {
		assert_int_equal(pthread_join(t[k], NULL), 0);
		if (w[k].lost)
			fail_msg("writer %u: %ld stores lost from the heap", k, w[k].lost);
	}
	unsetenv("CKPT_TEST_NO_LOG");
	int forked = atomic_load(&forks) - f0;
	if (!sync || nolog)
		assert_int_equal(forked, 6);
	else if (p->eng->logging)
		assert_int_equal(forked, 0);
	else    /* no write-protect tracking here: forked */
		assert_int_equal(forked, 6);
	alone();
	assert_int_equal(ckpt_checkpoint(p, "after", NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p)
		fail_msg("restart: %s", ckpt_errormsg());
	root = ckpt_root(p);
	assert_non_null(root);
	for (unsigned k = 0; k < WR_THREADS; k++) {
		assert_ptr_equal(root->v[k], w[k].v);
		for (uint64_t i = 0; i < WR_WORDS; i++) {
			uint64_t want = w[k].gens << 20 | (uint64_t)k << 16 | (i & 0xffff);
			if (root->v[k][i] != want)
				fail_msg("after the restart, writer %u word %llu reads %#llx, "
					"not %#llx", k, (unsigned long long)i,
					(unsigned long long)root->v[k][i], (unsigned long long)want);
		}
	}
	assert_int_equal(ckpt_close(p), 0);
	unlink(path);
}

static void
test_bgsave_cow_writers_lose_nothing(void **state)
{
	(void)state;
	writers_run(0, 0, 0);
}

static void
test_checkpoint_cow_forked_writers_lose_nothing(void **state)
{
	(void)state;
	writers_run(1, 0, 1);
}

static void
test_checkpoint_cow_tmpfs_writers_lose_nothing(void **state)
{
	(void)state;
	writers_run(1, 0, 0);
}

static void
test_checkpoint_cow_disk_writers_lose_nothing(void **state)
{
	(void)state;
	writers_run(1, 1, 0);
}

/* threads.c: the program's threads are counted, libckpt's own are not */
static void
test_threads_counted(void **state)
{
	(void)state;
	assert_int_equal(threads_of_program(), 0);
	struct held own, prog;
	held_start(&own, 1);
	alone();        /* once it has taken its name, ours does not count */
	held_start(&prog, 0);
	assert_int_equal(threads_of_program(), 1);
	held_end(&prog);
	held_end(&own);
	alone();
}

/*
 * a heap that cannot log (CKPT_TEST_NO_LOG): alone, a cow checkpoint
 * re-bases in place (no fork), with libckpt's own thread alive too; with
 * one more thread of the program's it forks, and the heap holds what it did
 */
static void
test_checkpoint_cow_forks_only_beside_threads(void **state)
{
	(void)state;
	if (access("/dev/shm", W_OK) != 0)
		skip();
	char path[64];
	snprintf(path, sizeof(path), "/dev/shm/ckpt-test-bga-%d.pool", (int)getpid());
	setenv("CKPT_TEST_NO_LOG", "1", 1);    /* a heap that cannot log: forked */
	ckpt_pool *p = fk_create(path, CKPT_FORK_COW, 8);
	uint64_t *v = ckpt_alloc(p, NV * sizeof(uint64_t));
	assert_non_null(v);
	for (uint64_t i = 0; i < NV; i++)
		v[i] = i;
	int f0 = atomic_load(&forks);
	ckpt_id id;
	assert_int_equal(ckpt_checkpoint(p, "alone", &id), 0);
	struct held own, prog;
	held_start(&own, 1);
	alone();
	assert_int_equal(ckpt_checkpoint(p, "with ours", &id), 0);
	assert_int_equal(atomic_load(&forks), f0);
	held_start(&prog, 0);
	v[7] = 77;
	assert_int_equal(ckpt_checkpoint(p, "beside", &id), 0);
	assert_int_equal(atomic_load(&forks), f0 + 1);
	held_end(&prog);
	held_end(&own);
	alone();
	v[8] = 88;
	assert_int_equal(ckpt_checkpoint(p, "alone again", &id), 0);
	assert_int_equal(atomic_load(&forks), f0 + 1);
	unsetenv("CKPT_TEST_NO_LOG");
	for (uint64_t i = 0; i < NV; i++)
		if (v[i] != (i == 7 ? 77 : i == 8 ? 88 : i))
			fail_msg("word %llu reads %llu", (unsigned long long)i,
				(unsigned long long)v[i]);
	assert_int_equal(ckpt_close(p), 0);
	unlink(path);
}

/*
 * a logging heap (format 1.9, not tmpfs) grown past its tracking, which
 * cannot grow (CKPT_TEST_NO_GROW), beside another thread: the tracking
 * starts afresh over the grown heap, no fork; when it cannot start either
 * (CKPT_TEST_NO_LOG) the checkpoint is forked rather than re-base; when
 * the heap grows during the checkpoint itself (CKPT_TEST_SKIP_STEP0) it
 * fails with ENOMEM rather than re-base; a restart holds every word
 */
static void
test_checkpoint_cow_no_grow_beside_threads(void **state)
{
	(void)state;
	const char *path = tu_path("bgnogrow.pool");
	unlink(path);
	struct ckpt_config c = { .heap_size = 64 << 20, .max_segments = 8,
		.fork_mode = CKPT_FORK_COW };
	ckpt_pool *p = ckpt_create(path, &c);
	assert_non_null(p);
	assert_int_equal(ckpt_checkpoint(p, "first", NULL), 0);     /* re-bases */
	if (!p->eng->logging) {
		assert_int_equal(ckpt_close(p), 0);
		skip();         /* tmpfs, or no write-protect tracking here */
	}
	struct held prog;
	held_start(&prog, 0);
	size_t n = (8u << 20) / sizeof(uint64_t);
	uint64_t *v = ckpt_alloc(p, n * sizeof(uint64_t));
	assert_non_null(v);
	assert_int_equal(ckpt_set_root(p, v), 0);
	for (uint64_t i = 0; i < n; i++)
		v[i] = ~i;
	int f0 = atomic_load(&forks);
	setenv("CKPT_TEST_NO_GROW", "1", 1);
	assert_int_equal(ckpt_checkpoint(p, "afresh", NULL), 0);
	assert_true(p->eng->logging);
	assert_int_equal(atomic_load(&forks), f0);
	v[n - 1] = 1;
	/* grow past the fresh interval too (it covers 8 MiB and a little
	 * more), then it neither grows nor starts */
	size_t n2 = (24u << 20) / sizeof(uint64_t);
	unsigned char *v2 = ckpt_alloc(p, n2 * sizeof(uint64_t));
	if (!v2) {
		unsetenv("CKPT_TEST_NO_GROW");
		fail_msg("alloc: %s", ckpt_errormsg());
	}
	memset(v2, 0x5a, n2 * sizeof(uint64_t));
	v[0] = (uint64_t)(uintptr_t)v2;
	setenv("CKPT_TEST_NO_LOG", "1", 1);
	int rc = ckpt_checkpoint(p, "forked", NULL);
	unsetenv("CKPT_TEST_NO_GROW");
	unsetenv("CKPT_TEST_NO_LOG");
	if (rc < 0)
		fail_msg("checkpoint: %s", ckpt_errormsg());
	assert_false(p->eng->logging);
	assert_int_equal(atomic_load(&forks), f0 + 1);
	/* logging again (it can start now), the heap grows during a checkpoint
	 * (step 0 skipped: the build meets the growth) and the tracking can
	 * neither grow nor start: it fails rather than re-base, the heap
	 * untouched, and the next one is forked */
	assert_int_equal(ckpt_checkpoint(p, "logs again", NULL), 0);
	assert_true(p->eng->logging);
	assert_int_equal(atomic_load(&forks), f0 + 1);
	unsigned char *v3 = ckpt_alloc(p, 12u << 20);
	assert_non_null(v3);
	memset(v3, 0x3c, 12u << 20);
	v[1] = 11;
	setenv("CKPT_TEST_SKIP_STEP0", "1", 1);
	setenv("CKPT_TEST_NO_GROW", "1", 1);
	setenv("CKPT_TEST_NO_LOG", "1", 1);
	errno = 0;
	rc = ckpt_checkpoint(p, "grows", NULL);
	int err = errno;
	unsetenv("CKPT_TEST_SKIP_STEP0");
	unsetenv("CKPT_TEST_NO_GROW");
	assert_int_equal(rc, -1);
	assert_int_equal(err, ENOMEM);
	assert_non_null(strstr(ckpt_errormsg(), "not safe while other threads run"));
	assert_int_equal(atomic_load(&forks), f0 + 1);
	assert_false(p->eng->logging);
	assert_int_equal(ckpt_checkpoint(p, "forked again", NULL), 0);
	unsetenv("CKPT_TEST_NO_LOG");
	assert_int_equal(atomic_load(&forks), f0 + 2);
	held_end(&prog);
	assert_int_equal(ckpt_close(p), 0);
	p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p)
		fail_msg("restart: %s", ckpt_errormsg());
	v = ckpt_root(p);
	assert_ptr_equal((void *)(uintptr_t)v[0], v2);
	for (uint64_t i = 1; i < n; i++)
		assert_true(v[i] == (i == n - 1 ? 1 : i == 1 ? 11 : ~i));
	for (size_t i = 0; i < (12u << 20); i++)
		if (v3[i] != 0x3c)
			fail_msg("after the restart, byte %zu of the last block reads %#x", i,
				v3[i]);
	for (size_t i = 0; i < n2 * sizeof(uint64_t); i++)
		if (v2[i] != 0x5a)
			fail_msg("after the restart, byte %zu of the grown block reads %#x", i,
				v2[i]);
	assert_int_equal(ckpt_close(p), 0);
}

/*
 * a heap that re-based alone (CKPT_TEST_NO_LOG),
 * so its ring holds its own checkpoints, writes more, then checkpoints
 * beside a thread: it starts logging over its last image, counting what it
 * wrote since that image as written, and the next checkpoints recycle the
 * older images from the ring: a restart of the newest holds every word
 */
static void
test_checkpoint_cow_logs_late_and_recycles(void **state)
{
	(void)state;
	const char *path = tu_path("bglate.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COW, 8);
	if (p->eng->on_tmpfs) {
		assert_int_equal(ckpt_close(p), 0);
		skip();
	}
	uint64_t *v = ckpt_alloc(p, NV * sizeof(uint64_t));
	assert_non_null(v);
	assert_int_equal(ckpt_set_root(p, v), 0);
	setenv("CKPT_TEST_NO_LOG", "1", 1);
	for (uint64_t g = 1; g <= 3; g++) {
		for (uint64_t i = 0; i < NV; i += 512 * g)
			v[i] = g << 32 | i;
		assert_int_equal(ckpt_checkpoint(p, "alone", NULL), 0);
	}
	unsetenv("CKPT_TEST_NO_LOG");
	assert_false(p->eng->logging);
	/* written since the last image, before the tracking starts */
	for (uint64_t i = 7; i < NV; i += 1024)
		v[i] = 0x700 | i;
	struct held prog;
	held_start(&prog, 0);
	int f0 = atomic_load(&forks);
	assert_int_equal(ckpt_checkpoint(p, "starts", NULL), 0);
	if (!p->eng->logging) {
		held_end(&prog);
		assert_int_equal(ckpt_close(p), 0);
		skip();         /* no write-protect tracking here */
	}
	/* keep 4: the two first recycle the oldest images re-based alone, whose
	 * difference from the heap runs through the interval seeded above */
	int recycled = 0;
	for (uint64_t g = 4; g <= 6; g++) {
		for (uint64_t i = 3; i < NV; i += 2048 * g)
			v[i] = g << 32 | i;
		assert_int_equal(ckpt_checkpoint(p, "logged", NULL), 0);
		recycled += p->eng->last_recycled == 1;
	}
	assert_int_equal(atomic_load(&forks), f0);
	assert_true(recycled >= 2);
	uint64_t *want = malloc(NV * sizeof(uint64_t));
	assert_non_null(want);
	memcpy(want, v, NV * sizeof(uint64_t));
	held_end(&prog);
	assert_int_equal(ckpt_close(p), 0);
	p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p)
		fail_msg("restart: %s", ckpt_errormsg());
	v = ckpt_root(p);
	for (uint64_t i = 0; i < NV; i++)
		if (v[i] != want[i])
			fail_msg("after the restart, word %llu reads %#llx, not %#llx",
				(unsigned long long)i, (unsigned long long)v[i],
				(unsigned long long)want[i]);
	free(want);
	assert_int_equal(ckpt_close(p), 0);
}

/*
 * a forked checkpoint (a heap that cannot log: CKPT_TEST_NO_LOG) needs a
 * segment for the child's live entry besides its image: in a pool of three
 * segments the second one fails with ENOSPC, and the heap is untouched
 */
static void
test_checkpoint_cow_forked_enospc(void **state)
{
	(void)state;
	if (access("/dev/shm", W_OK) != 0)
		skip();
	char path[64];
	snprintf(path, sizeof(path), "/dev/shm/ckpt-test-bgn-%d.pool", (int)getpid());
	setenv("CKPT_TEST_NO_LOG", "1", 1);    /* a heap that cannot log: forked */
	ckpt_pool *p = fk_create(path, CKPT_FORK_COW, 3);
	uint64_t *v = ckpt_alloc(p, NV * sizeof(uint64_t));
	assert_non_null(v);
	for (uint64_t i = 0; i < NV; i++)
		v[i] = i;
	struct held prog;
	held_start(&prog, 0);
	assert_int_equal(ckpt_checkpoint(p, "one", NULL), 0);
	v[5] = 55;
	errno = 0;
	assert_int_equal(ckpt_checkpoint(p, "two", NULL), -1);
	assert_int_equal(errno, ENOSPC);
	held_end(&prog);
	for (uint64_t i = 0; i < NV; i++)
		assert_true(v[i] == (i == 5 ? 55 : i));
	alone();
	assert_int_equal(ckpt_set_keep_checkpoints(p, 1), 0);
	assert_int_equal(ckpt_checkpoint(p, "alone", NULL), 0);    /* in place */
	unsetenv("CKPT_TEST_NO_LOG");
	assert_int_equal(ckpt_close(p), 0);
	unlink(path);
}

int
main(void)
{
	unsetenv("CKPT_FORK_MODE");
	unsetenv("CKPT_TEST_CRASH_AT");
	pthread_atfork(count_fork, NULL, NULL);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bgsave_snapshot_at_fork),
		cmocka_unit_test(test_bgsave_retention),
		cmocka_unit_test(test_bgsave_errors),
		cmocka_unit_test(test_bgsave_reaped_by_application),
		cmocka_unit_test(test_bgsave_cow_writers_lose_nothing),
		cmocka_unit_test(test_checkpoint_cow_forked_writers_lose_nothing),
		cmocka_unit_test(test_checkpoint_cow_tmpfs_writers_lose_nothing),
		cmocka_unit_test(test_checkpoint_cow_disk_writers_lose_nothing),
		cmocka_unit_test(test_threads_counted),
		cmocka_unit_test(test_checkpoint_cow_forks_only_beside_threads),
		cmocka_unit_test(test_checkpoint_cow_no_grow_beside_threads),
		cmocka_unit_test(test_checkpoint_cow_logs_late_and_recycles),
		cmocka_unit_test(test_checkpoint_cow_forked_enospc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
