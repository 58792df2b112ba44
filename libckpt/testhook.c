/*
 * testhook.c -- crash points and switches for the test suite (see testhook.h).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testhook.h"

int
test_armed(const char *name)
{
	const char *at = getenv("CKPT_TEST_CRASH_AT");
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
