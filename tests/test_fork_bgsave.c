/*
 * test_fork_bgsave.c -- background checkpoint, Redis BGSAVE style
 * (ckpt_checkpoint_background / ckpt_checkpoint_wait, beyond API.md): the
 * checkpoint equals the parent's heap at the instant of fork while the
 * parent keeps changing it; it is attributed to the parent's segment and
 * retention trims it; the child leaves no segment behind; failures come
 * back with the child's errno and message; in fork mode cow, where a
 * synchronous checkpoint re-bases the heap (tmpfs: every one), threads that
 * keep writing their blocks lose no store to background checkpoints
 * (API.md, "Conventions: errors and threads").
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

static void
test_bgsave_cow_writers_lose_nothing(void **state)
{
	(void)state;
	if (access("/dev/shm", W_OK) != 0)
		skip();
	char path[64];
	snprintf(path, sizeof(path), "/dev/shm/ckpt-test-bgw-%d.pool", (int)getpid());
	unlink(path);
	ckpt_pool *p = fk_create(path, CKPT_FORK_COW, 8);
	assert_int_equal(p->fork_mode, CKPT_FORK_COW);
	_Atomic int stop = 0;
	struct writer w[WR_THREADS];
	pthread_t t[WR_THREADS];
	for (unsigned k = 0; k < WR_THREADS; k++) {
		w[k] = (struct writer){ .v = ckpt_alloc(p, WR_WORDS * sizeof(uint64_t)), .id = k,
				.stop = &stop };
		assert_non_null(w[k].v);
		memset(w[k].v, 0, WR_WORDS * sizeof(uint64_t));
	}
	for (unsigned k = 0; k < WR_THREADS; k++)
		assert_int_equal(pthread_create(&t[k], NULL, writer_main, &w[k]), 0);
	for (int n = 0; n < 6; n++) {
		pid_t pid = ckpt_checkpoint_background(p, NULL);
		assert_true(pid > 0);
		ckpt_id id = 0;
		assert_int_equal(ckpt_checkpoint_wait(p, pid, &id, 0), 0);
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
	assert_int_equal(ckpt_close(p), 0);
	unlink(path);
}

int
main(void)
{
	unsetenv("CKPT_FORK_MODE");
	unsetenv("CKPT_TEST_CRASH_AT");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bgsave_snapshot_at_fork),
		cmocka_unit_test(test_bgsave_retention),
		cmocka_unit_test(test_bgsave_errors),
		cmocka_unit_test(test_bgsave_reaped_by_application),
		cmocka_unit_test(test_bgsave_cow_writers_lose_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
