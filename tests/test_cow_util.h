/*
 * test_cow_util.h -- what the copy-on-write tests (tests/test_cow*.c: fork
 * mode cow, page logs, ckpt_persist in cow mode) share, on top of
 * test_checkpoint_util.h's generation structure: their pool config
 * (TC_CONFIG: only the heap size and the retention differ), a new cow pool
 * holding that structure (TC_NODES nodes but in test_cow_persist.c), and
 * the helper processes that read a pool back as a restarted service would.
 *
 * A "restart" helper is this test binary run again (tu_run_helper) as
 * "--helper restart POOL ID N": it opens POOL at checkpoint ID (0: the
 * latest) with the including file's config, checks the structure of N
 * nodes and prints its generation. The parent side, tc_restart_gen, reads
 * that number back; the helper side, tc_helper_restart, serves the
 * "restart" entry of the file's tu_helper table (testutil.h's
 * tu_helper_main). An "advance" helper (each file writes its own:
 * what it does before it dies differs) is run by tc_run_killed with a
 * named kill point armed.
 * Helpers never assert: they print what went wrong and exit nonzero.
 * Parent and fork child step each other over test_fork_util.h's channel
 * (fk_fork).
 */
#ifndef TEST_COW_UTIL_H
#define TEST_COW_UTIL_H 1

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_checkpoint_util.h"
#include "test_fork_util.h"
#include "pool.h"
#include "engine/image.h"

/* TC_NODES -- the nodes of the structure a cow test's pool holds */
#define TC_NODES 20000u

/* TC_CONFIG -- a cow test's pool: a heap of heap bytes, 16 segments, fork mode cow, keep keep */
#define TC_CONFIG(heap, keep) { .heap_size = (heap), .max_segments = 16, \
	.fork_mode = CKPT_FORK_COW, .keep_checkpoints = (keep) }

/*
 * tc_create -- a new pool at path (the file replaced, CKPT_FORK_MODE of the
 * environment ignored) made with cfg; with n > 0, the structure of n nodes
 * at generation 1 as its root, in *s. With want_cow, asserts the pool runs
 * the copy-on-write engine (fork mode cow, p->eng).
 */
static inline ckpt_pool *
tc_create(const char *path, const struct ckpt_config *cfg, unsigned n, struct ts_state **s,
		int want_cow)
{
	unlink(path);
	unsetenv("CKPT_FORK_MODE");
	ckpt_pool *p = ckpt_create(path, cfg);
	if (!p)
		fail_msg("create %s: %s", path, ckpt_errormsg());
	if (want_cow) {
		assert_int_equal(p->fork_mode, CKPT_FORK_COW);
		assert_non_null(p->eng);
	}
	if (n) {
		*s = ts_build(p, n, 1);
		assert_non_null(*s);
	}
	return p;
}

/*
 * tc_run_restart -- run the helper "restart PATH ID N" with env applied
 * (as tu_run_helper's); its output in out, its exit status returned
 */
static inline int
tc_run_restart(char *out, size_t outlen, const char *const *env, const char *path,
		ckpt_id id, unsigned n)
{
	char ids[32], ns[32];
	snprintf(ids, sizeof(ids), "%" PRIu64, id);
	snprintf(ns, sizeof(ns), "%u", n);
	return tu_run_helper(out, outlen, env, "restart", path, ids, ns, NULL);
}

/*
 * tc_restart_gen -- the generation a new process finds at checkpoint id
 * (0: latest) of path, checking n nodes; -1 if the helper failed. Its
 * output goes to out, or, with out NULL, to a buffer of its own, printed
 * when the helper failed.
 */
static inline int64_t
tc_restart_gen(const char *path, ckpt_id id, unsigned n, char *out, size_t outlen)
{
	char own[512];
	int st = tc_run_restart(out ? out : own, out ? outlen : sizeof(own), NULL, path, id, n);
	if (st != 0) {
		if (!out)
			print_error("restart helper exited %d: %s\n", st, own);
		return -1;
	}
	return strtoll(out ? out : own, NULL, 10);
}

/* tc_gen -- tc_restart_gen of the TC_NODES structure, the helper's output printed if it failed */
static inline int64_t
tc_gen(const char *path, ckpt_id id)
{
	return tc_restart_gen(path, id, TC_NODES, NULL, 0);
}

/* tc_helper_open -- a helper's ckpt_open of pool at id with cfg; NULL, the error printed */
static inline ckpt_pool *
tc_helper_open(const char *pool, ckpt_id id, const struct ckpt_config *cfg)
{
	ckpt_pool *p = ckpt_open(pool, id, cfg);
	if (!p)
		printf("open: %s\n", ckpt_errormsg());
	return p;
}

/*
 * tc_helper_restart -- the helper side of "restart POOL ID N" (arg: POOL,
 * ID, N): open with cfg, print the structure's generation; with want_cow,
 * a pool that did not open in cow mode fails. The exit status.
 */
static inline int
tc_helper_restart(char **arg, const struct ckpt_config *cfg, int want_cow)
{
	ckpt_pool *p = tc_helper_open(arg[0], strtoull(arg[1], NULL, 10), cfg);
	if (!p)
		return 1;
	if (want_cow && !p->eng) {
		printf("not in cow mode\n");
		return 1;
	}
	char err[256];
	int64_t gen = ts_check(ckpt_root(p), strtoull(arg[2], NULL, 10), err, sizeof(err));
	if (gen < 0) {
		printf("check: %s\n", err);
		return 1;
	}
	printf("%" PRId64 "\n", gen);
	return ckpt_close(p) == 0 ? 0 : 1;
}

/*
 * tc_run_killed -- run the file's helper "advance PATH GEN" with
 * CKPT_TEST_CRASH_AT=point; fails the test unless it was killed there
 */
static inline void
tc_run_killed(const char *path, const char *point, int64_t gen)
{
	char env[96], gs[32], out[512];
	snprintf(env, sizeof(env), "CKPT_TEST_CRASH_AT=%s", point);
	snprintf(gs, sizeof(gs), "%" PRId64, gen);
	const char *const e[] = { env, NULL };
	int st = tu_run_helper(out, sizeof(out), e, "advance", path, gs, NULL);
	if (st != 128 + SIGKILL)
		fail_msg("%s: helper exited %d, not killed: %s", point, st, out);
}

#endif
