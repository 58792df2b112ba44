/*
 * testhook.c -- crash points for the test suite (see testhook.h).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testhook.h"

void
test_point(const char *name)
{
	const char *at = getenv("CKPT_TEST_CRASH_AT");
	if (CKPT_UNLIKELY(at != NULL) && strcmp(at, name) == 0) {
		kill(getpid(), SIGKILL);
		pause();
	}
}
