/*
 * testhook.c -- crash points and switches for the test suite (see testhook.h).
 *
 * Between a fork's prepare and its child handler, the child may have no
 * heap at the base yet (the mapping is MADV_DONTFORK), and the environment
 * can live there: a program run with the preload library, or one that
 * moved environ into its heap (redis-server does, for its process title).
 * So the fork handlers read the crash point before the fork
 * (test_fork_snapshot) and the points in between use that copy.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testhook.h"

static char fork_at[64];        /* CKPT_TEST_CRASH_AT at the fork, "" if unset */
static int fork_snap;           /* 1 between the prepare and the child handler */

void
test_fork_snapshot(int on)
{
	if (on) {
		const char *at = getenv("CKPT_TEST_CRASH_AT");
		size_t n = at ? strlen(at) : 0;
		if (n >= sizeof(fork_at))
			n = sizeof(fork_at) - 1;
		memcpy(fork_at, at ? at : "", n);
		fork_at[n] = '\0';
	}
	fork_snap = on;
}

int
test_armed(const char *name)
{
	const char *at = fork_snap ? (fork_at[0] ? fork_at : NULL) : getenv("CKPT_TEST_CRASH_AT");
	return CKPT_UNLIKELY(at != NULL) && strcmp(at, name) == 0;
}

void
test_point(const char *name)
{
	if (test_armed(name)) {
		kill(getpid(), SIGKILL);
		pause();
	}
}

int
test_flag(const char *env)
{
	const char *v = getenv(env);
	return CKPT_UNLIKELY(v != NULL) && strcmp(v, "1") == 0;
}

void
test_step(const char *name)
{
	static __thread uint64_t last_ns;
	if (!test_flag("CKPT_TEST_STEP_TIMES"))
		return;
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	uint64_t ns = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
	if (name && last_ns) {
		char line[96];
		int n = snprintf(line, sizeof(line), "ckpt-step %s %llu\n", name,
				(unsigned long long)((ns - last_ns) / 1000));
		if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
			(void)0;        /* a lost line of a benchmark's aid */
	}
	last_ns = ns;
}

unsigned long
test_number(const char *env)
{
	const char *v = getenv(env);
	return CKPT_UNLIKELY(v != NULL) ? strtoul(v, NULL, 10) : 0;
}
