/*
 * test_readme_snippet.c -- the README's first code snippet survives a kill
 * -9 at any instant of its first run (issue 16, item 6).
 *
 * The program under test ("--helper snippet PATH ROUNDS") is the snippet:
 * ckpt_open(path, CKPT_LATEST, NULL), else ckpt_create(path, NULL), the
 * root if there is one, else a new one set as root, then work and
 * ckpt_checkpoint(pool, "hourly", NULL). Its work is ROUNDS times: a node
 * onto a list the root holds, the count in the root, a checkpoint, and
 * "ack N" on stdout once the checkpoint has returned. It starts by printing
 * "start N", the count it found, after checking the list holds N nodes.
 *
 * Before the fix a first run killed after ckpt_create and before its
 * first checkpoint, or inside ckpt_create, left a pool that neither
 * ckpt_open (ENOENT) nor ckpt_create (EEXIST) would take: every later run
 * failed. Here each first run is killed, at a named crash point (inside
 * ckpt_create: create:mid-write, create:before-publish,
 * create:after-publish; inside the first checkpoint, the default (cow)
 * one's points included; inside a restart's copy, in fork mode copy) or
 * at a random instant, in a fresh directory; the next run must
 * succeed and start from the last acknowledged count or the one after it
 * (a checkpoint under way may have been published), and the directory
 * must hold nothing but the pool.
 *
 * The default configuration, as in the README: a sparse pool file of 64
 * segments of 1 GiB (only what is used takes disk space).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libckpt.h"
#include "testutil.h"

struct node {
	struct node *next;
	uint64_t value;
};

struct state {
	uint64_t n;             /* nodes on the list: checkpointed rounds */
	struct node *list;
};

/* helper_snippet -- the README's snippet, then ROUNDS rounds of work */
static int
helper_snippet(const char *path, int rounds)
{
	ckpt_pool *pool = ckpt_open(path, CKPT_LATEST, NULL);   /* restart... */
	if (!pool)
		pool = ckpt_create(path, NULL);                 /* ...or begin */
	if (!pool) {
		printf("err %d %s\n", errno, ckpt_errormsg());
		return 1;
	}
	struct state *s = ckpt_root(pool);
	if (!s) {
		s = ckpt_calloc(pool, 1, sizeof(*s));
		if (!s || ckpt_set_root(pool, s) != 0)
			return 2;
	}
	uint64_t len = 0;
	for (struct node *x = s->list; x; x = x->next, len++)
		if (x->value != s->n - len)
			return 3;
	if (len != s->n) {
		printf("err list of %llu nodes, count %llu\n", (unsigned long long)len,
				(unsigned long long)s->n);
		return 3;
	}
	printf("start %llu\n", (unsigned long long)s->n);
	fflush(stdout);
	for (int r = 0; r < rounds; r++) {
		struct node *x = ckpt_alloc(pool, sizeof(*x));
		if (!x)
			return 4;
		x->value = s->n + 1;
		x->next = s->list;
		s->list = x;
		s->n++;
		if (ckpt_checkpoint(pool, "hourly", NULL) != 0) {
			printf("err %d %s\n", errno, ckpt_errormsg());
			return 5;
		}
		printf("ack %llu\n", (unsigned long long)s->n);
		fflush(stdout);
	}
	return ckpt_close(pool) == 0 ? 0 : 6;
}

/* last_ack -- the last "ack N" in out, 0 if none */
static uint64_t
last_ack(const char *out)
{
	uint64_t a = 0;
	for (const char *q = strstr(out, "ack "); q; q = strstr(q + 1, "ack "))
		a = strtoull(q + 4, NULL, 10);
	return a;
}

/* fresh_dir -- an empty directory for one first run; its pool's path into path */
static void
fresh_dir(char *path, size_t len, const char *name)
{
	const char *d = tu_path(name);
	assert_int_equal(mkdir(d, 0755), 0);
	snprintf(path, len, "%s/app.pool", d);
}

/*
 * only_the_pool -- the directory of path holds the pool and nothing else,
 * but for hidden files ".app.pool.XXXXXX" if stray is set (a create killed
 * before it removed its hidden name); returns how many
 */
static int
only_the_pool(const char *path, int stray)
{
	char d[512];
	snprintf(d, sizeof(d), "%s", path);
	*strrchr(d, '/') = 0;
	DIR *dir = opendir(d);
	assert_non_null(dir);
	struct dirent *e;
	int pool = 0, hidden = 0;
	while ((e = readdir(dir))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (stray && !strncmp(e->d_name, ".app.pool.", 10) && strlen(e->d_name) == 16) {
			hidden++;
			continue;
		}
		if (strcmp(e->d_name, "app.pool"))
			fail_msg("%s: a stray file %s beside the pool", d, e->d_name);
		pool = 1;
	}
	closedir(dir);
	assert_true(pool);
	return hidden;
}

/*
 * next_run -- run the snippet again, to completion: it must start from
 * acked or acked + 1 and check its list
 */
static void
next_run(const char *path, uint64_t acked, const char *what, const char *const *env)
{
	char out[4096];
	int rc = tu_run_helper(out, sizeof(out), env, "snippet", path, "1", NULL);
	unsigned long long start = ~0ull;
	if (rc != 0 || sscanf(out, "start %llu", &start) != 1)
		fail_msg("%s: the next run failed (status %d): %s", what, rc, out);
	if (start != acked && start != acked + 1)
		fail_msg("%s: the next run started from %llu, %llu was acknowledged",
				what, start, (unsigned long long)acked);
	/* the hidden-name runs were all killed before the hidden name went */
	if (only_the_pool(path, env != NULL) != (env != NULL))
		fail_msg("%s: expected %d stray hidden file", what, env != NULL);
}

/* test_named_points -- a first run killed at each crash point on its way */
static void
test_named_points(void **state)
{
	(void)state;
	static const char *const points[] = {
		"create:mid-write", "create:before-publish", "create:after-publish",
		"checkpoint:before-reserve", "checkpoint:before-copy", "checkpoint:mid-copy",
		"checkpoint:before-persist", "checkpoint:after-persist",
		"checkpoint:before-publish", "checkpoint:after-publish",
	};
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		char path[512], name[64], env[128], out[4096];
		snprintf(name, sizeof(name), "named-%zu", i);
		fresh_dir(path, sizeof(path), name);
		snprintf(env, sizeof(env), "CKPT_TEST_CRASH_AT=%s", points[i]);
		const char *const e[] = { env, NULL };
		int rc = tu_run_helper(out, sizeof(out), e, "snippet", path, "2", NULL);
		if (rc != 128 + SIGKILL)
			fail_msg("%s: the first run was not killed there (status %d): %s",
					points[i], rc, out);
		next_run(path, last_ack(out), points[i], NULL);
		next_run(path, last_ack(out) + 1, points[i], NULL);
	}
	/* where O_TMPFILE is refused: a hidden name, linked when complete; a
	 * kill before the link may leave it behind, nothing else */
	for (size_t i = 0; i < 3; i++) {
		char path[512], name[64], env[128], out[4096];
		snprintf(name, sizeof(name), "hidden-%zu", i);
		fresh_dir(path, sizeof(path), name);
		snprintf(env, sizeof(env), "CKPT_TEST_CRASH_AT=%s", points[i]);
		const char *const e[] = { env, "CKPT_TEST_NO_TMPFILE=1", NULL };
		int rc = tu_run_helper(out, sizeof(out), e, "snippet", path, "2", NULL);
		if (rc != 128 + SIGKILL)
			fail_msg("%s, hidden name: not killed there (status %d): %s", points[i],
					rc, out);
		const char *const e2[] = { "CKPT_TEST_NO_TMPFILE=1", NULL };
		next_run(path, 0, points[i], e2);
	}
	/* killed inside the copy of its first restart, then run again: the
	 * default (cow) restart maps the checkpoint and copies nothing, so
	 * this restart runs in fork mode copy, and the next in the default */
	char path[512], out[4096];
	fresh_dir(path, sizeof(path), "named-restart");
	assert_int_equal(tu_run_helper(out, sizeof(out), NULL, "snippet", path, "2", NULL), 0);
	const char *const e[] = { "CKPT_TEST_CRASH_AT=restart:mid-copy",
		"CKPT_FORK_MODE=copy", NULL };
	int rc = tu_run_helper(out, sizeof(out), e, "snippet", path, "1", NULL);
	if (rc != 128 + SIGKILL)
		fail_msg("restart:mid-copy: not killed there (status %d): %s", rc, out);
	next_run(path, 2, "restart:mid-copy", NULL);
}

/* now_us -- CLOCK_MONOTONIC in microseconds */
static uint64_t
now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

/* test_random_instants -- first runs killed at random instants of their life */
static void
test_random_instants(void **state)
{
	(void)state;
	const char *long_env = getenv("CKPT_TEST_LONG");
	int runs = long_env && !strcmp(long_env, "1") ? 400 : 40;
	/* how long a whole first run takes here: the kills spread over it */
	char path[512], out[4096];
	fresh_dir(path, sizeof(path), "timing");
	uint64_t t0 = now_us();
	assert_int_equal(tu_run_helper(out, sizeof(out), NULL, "snippet", path, "3", NULL), 0);
	uint64_t span = now_us() - t0 + 1;
	unsigned killed = 0;
	for (int i = 0; i < runs; i++) {
		char name[64];
		snprintf(name, sizeof(name), "random-%d", i);
		fresh_dir(path, sizeof(path), name);
		uint32_t r;
		assert_int_equal(getrandom(&r, sizeof(r), 0), (ssize_t)sizeof(r));
		int fd;
		pid_t pid = tu_spawn_helper(&fd, NULL, "snippet", path, "3", NULL);
		assert_true(pid > 0);
		usleep((useconds_t)(r % span));
		kill(pid, SIGKILL);
		size_t n = 0;
		ssize_t k;
		while (n + 1 < sizeof(out) && (k = read(fd, out + n, sizeof(out) - 1 - n)) > 0)
			n += (size_t)k;
		out[n] = 0;
		close(fd);
		int rc = tu_wait_exit(pid);
		if (rc == 128 + SIGKILL)
			killed++;
		else if (rc != 0)
			fail_msg("run %d: the first run failed (status %d): %s", i, rc, out);
		next_run(path, last_ack(out), name, NULL);
	}
	printf("%d first runs, %u killed before they ended\n", runs, killed);
	assert_true(killed > 0);
}

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--helper") == 0 && strcmp(argv[2], "snippet") == 0)
		return helper_snippet(argv[3], atoi(argv[4]));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_named_points),
		cmocka_unit_test(test_random_instants),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
