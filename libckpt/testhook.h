/*
 * testhook.h -- named points where the test suite can stop the process
 * (kill -9 semantics) to prove crash atomicity. Set CKPT_TEST_CRASH_AT to a
 * point name (e.g. "checkpoint:before-publish"); the process then sends
 * itself SIGKILL when it reaches that point. Unset, a point costs one
 * predictable branch.
 */
#ifndef CKPT_TESTHOOK_H
#define CKPT_TESTHOOK_H 1

#include "internal.h"

/* test_point -- SIGKILL the process if CKPT_TEST_CRASH_AT names this point */
CKPT_HIDDEN void test_point(const char *name);

#endif
