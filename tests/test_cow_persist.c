/*
 * test_cow_persist.c -- ckpt_persist in fork mode cow (format 1.7): the
 * pages of the range go to the live entry's own segment with their sums
 * seeded by the heap's life and base checkpoint, and a process killed
 * (kill -9) between checkpoints leaves its base with the pages whose sums
 * match laid over it, which ckpt-inspect shows (heap, dump, verify).
 *
 * Every case runs in a new process (a helper) killed at a named point of
 * the persist or of the checkpoint after it; the test then reads the dead
 * heap as ckpt-inspect does (inspect_read_cow_heap), maps it at the pool's
 * base and checks the structure's generation byte for byte
 * (test_checkpoint_util.h). Which generation each point must leave:
 *
 *   persist:before-sums   the pages written, no sum: the base (gen G)
 *   persist:before-sync   written, not synced: kill -9 keeps the page
 *                         cache, so all of it (G + 1)
 *   persist:after-sync    G + 1
 *   checkpoint:before-publish after the persist, a checkpoint of G + 2
 *                         written and re-based but not published: the
 *                         catalog still names the old base, whose
 *                         persisted pages still count (G + 1)
 *   checkpoint:after-publish the new base (G + 2); the persisted pages of
 *                         the old base are stale
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_cow_util.h"
#include "heap.h"
#include "inspect.h"

#define N_NODES 5000u
#define HEAP (16 * MiB)

static const struct ckpt_config cow_cfg = TC_CONFIG(HEAP, 2);

/* persist_heap -- ckpt_persist of the heap's whole used range */
static int
persist_heap(ckpt_pool *p)
{
	return ckpt_persist(p, (void *)(uintptr_t)p->hdr.base, heap_high_water(p->heap));
}

/* dead_cow_seg -- the segment of the newest dead cow heap of path, or -1 */
static int
dead_cow_seg(struct inspect *in)
{
	int seg = -1;
	for (uint32_t i = 0; i < in->cat.n; i++)
		if (inspect_is_cow_heap(in, i) && strcmp(inspect_state_name(in, i), "dead") == 0 &&
		    (seg < 0 || in->cat.e[i].life > in->cat.e[seg].life))
			seg = (int)i;
	return seg;
}

/*
 * dead_gen -- the generation of the structure in the dead cow heap of
 * path (-1: it does not check; the reason printed); info filled
 */
static int64_t
dead_gen(const char *path, struct inspect_cow_info *info, int *segp)
{
	struct inspect in;
	assert_int_equal(inspect_open(&in, path), 0);
	int seg = dead_cow_seg(&in);
	assert_true(seg >= 0);
	*segp = seg;
	void *buf;
	size_t len;
	if (inspect_read_cow_heap(&in, (uint32_t)seg, &buf, &len, info) < 0)
		fail_msg("inspect_read_cow_heap: %s", ckpt_errormsg());
	struct heap_summary sum;
	int64_t gen = -1;
	char err[256] = "heap_check failed";
	if (heap_check(buf, len, &sum) == 0 && sum.root_offset) {
		/* the structure's pointers are addresses at the pool's base */
		void *at = mmap((void *)(uintptr_t)in.hdr.base, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		assert_true(at == (void *)(uintptr_t)in.hdr.base);
		memcpy(at, buf, len);
		gen = ts_check((char *)at + sum.root_offset, N_NODES, err, sizeof(err));
		munmap(at, len);
	}
	if (gen < 0)
		print_message("dead heap: %s\n", err);
	inspect_free_heap(buf, len);
	inspect_close(&in);
	return gen;
}

/* new_pool -- a cow pool at path whose latest checkpoint holds gen 1 */
static void
new_pool(const char *path)
{
	struct ts_state *s;
	ckpt_pool *p = tc_create(path, &cow_cfg, N_NODES, &s, 0);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
}

/* kill -9 at every point of a persist and of the checkpoint after it */
static void
test_persist_killed(void **state)
{
	(void)state;
	static const struct {
		const char *point;
		int64_t want;       /* gen after G, the base's */
		int stale;          /* the persisted pages are of an older base */
	} cases[] = {
		{ "persist:before-sums", 0, 0 },
		{ "persist:before-sync", 1, 0 },
		{ "persist:after-sync", 1, 0 },
		{ "checkpoint:before-publish", 1, 0 },
		{ "checkpoint:after-publish", 2, 1 },
	};
	const char *path = tu_path("killed.pool");
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		new_pool(path);
		tc_run_killed(path, cases[i].point, 1);
		struct inspect_cow_info ci;
		int seg;
		int64_t got = dead_gen(path, &ci, &seg);
		if (got != 1 + cases[i].want)
			fail_msg("%s: the dead heap holds gen %" PRId64 ", want %" PRId64
				" (%" PRIu64 " persisted pages laid over, %" PRIu64 " ignored)",
				cases[i].point, got, 1 + cases[i].want, ci.pages, ci.stale);
		if (cases[i].want == 1)
			assert_true(ci.pages > 0);
		if (cases[i].stale) {
			assert_int_equal(ci.pages, 0);
			assert_true(ci.stale > 0);
		}
		tu_inspect_verify(path);
	}
}

/*
 * ckpt-inspect of a dead cow heap: heap walks it, dump shows the persisted
 * bytes (the root's magic), verify names what it is made of
 */
static void
test_persist_inspect_cli(void **state)
{
	(void)state;
	const char *path = tu_path("cli.pool");
	new_pool(path);
	tc_run_killed(path, "persist:after-sync", 1);
	struct inspect_cow_info ci;
	int seg;
	assert_int_equal(dead_gen(path, &ci, &seg), 2);
	const char *bindir = getenv("CKPT_TEST_BINDIR");
	assert_non_null(bindir);
	char tool[1024], ref[32], out[65536];
	snprintf(tool, sizeof(tool), "%s/tools/ckpt-inspect", bindir);
	snprintf(ref, sizeof(ref), "seg:%d", seg);
	char *const heap[] = { tool, (char *)"heap", (char *)path, ref, (char *)"--summary",
		(char *)"--json", NULL };
	assert_int_equal(tu_run_capture(out, sizeof(out), heap), 0);
	const char *root = strstr(out, "\"root\":\"0x");
	assert_non_null(root);
	char addr[32];
	assert_int_equal(sscanf(root + 8, "%31[0-9a-fx]", addr), 1);
	char *const dump[] = { tool, (char *)"dump", (char *)path, ref, addr, (char *)"8",
		(char *)"--json", NULL };
	assert_int_equal(tu_run_capture(out, sizeof(out), dump), 0);
	assert_non_null(strstr(out, "434b535441545354"));   /* TS_MAGIC, little-endian */
	char *const verify[] = { tool, (char *)"verify", (char *)path, (char *)"--strict",
		(char *)"--no-progress", NULL };
	assert_int_equal(tu_run_capture(out, sizeof(out), verify), 0);
	assert_non_null(strstr(out, "persisted page(s) over it"));
}

/*
 * A heap that never checkpointed persists over an empty base; once it
 * forks, its child maps its segment, and persist refuses (EBUSY) until
 * the child is gone
 */
static void
test_persist_fresh_and_fork(void **state)
{
	(void)state;
	const char *path = tu_path("fresh.pool");
	struct ts_state *s;
	ckpt_pool *p = tc_create(path, &cow_cfg, N_NODES, &s, 0);
	assert_int_equal(persist_heap(p), 0);
	assert_true(p->eng->persisted > 0);
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t pid = tu_fork();
	if (pid == 0) {
		char c;
		close(go[1]);
		_exit(read(go[0], &c, 1) == 0 ? 0 : 1);   /* until the parent closes it */
	}
	close(go[0]);
	assert_int_equal(ts_modify(p, s, 2, 5), 0);
	assert_int_equal(persist_heap(p), -1);
	assert_int_equal(errno, EBUSY);
	assert_non_null(strstr(ckpt_errormsg(), "fork child"));
	/* a checkpoint still works, and the child still pins our segment */
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(persist_heap(p), -1);
	assert_int_equal(errno, EBUSY);
	close(go[1]);
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_int_equal(ts_modify(p, s, 3, 5), 0);
	assert_int_equal(persist_heap(p), 0);
	/* the parent is killed now: its dead heap is gen 3 */
	pid = tu_fork();
	if (pid == 0) {
		assert_int_equal(ts_modify(p, s, 4, 5), 0);
		if (persist_heap(p) < 0)
			_exit(1);
		kill(getpid(), SIGKILL);
	}
	assert_int_equal(tu_wait_exit(pid), 128 + SIGKILL);
	assert_int_equal(ckpt_close(p), 0);
	/* the child's dead heap: the parent's base (checkpoint of gen 2) with
	 * its persisted pages (gen 4) over it */
	struct inspect_cow_info ci;
	int seg;
	assert_int_equal(dead_gen(path, &ci, &seg), 4);
	assert_true(ci.base_id > 0);
	tu_inspect_verify(path);
}

/*
 * A pool of format 1.5 (made by an older libckpt) opens in cow mode as
 * before; ckpt_persist is refused there with ENOTSUP and says why, and
 * checkpoints work
 */
static void
test_persist_old_pool(void **state)
{
	(void)state;
	const char *path = tu_path("old.pool");
	new_pool(path);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	struct pool_hdr h;
	assert_int_equal(pread(fd, &h, sizeof(h), 0), sizeof(h));
	assert_int_equal(h.minor, POOL_FORMAT_MINOR);
	h.minor = 5;
	layout_seal(&h);
	assert_int_equal(pwrite(fd, &h, sizeof(h), 0), sizeof(h));
	close(fd);
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, &cow_cfg);
	assert_non_null(p);
	assert_int_equal(persist_heap(p), -1);
	assert_int_equal(errno, ENOTSUP);
	assert_non_null(strstr(ckpt_errormsg(), "format 1.7"));
	assert_non_null(strstr(ckpt_errormsg(), "1.5"));
	char err[256];
	assert_int_equal(ts_modify(p, ckpt_root(p), 2, 5), 0);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ts_check(ckpt_root(p), N_NODES, err, sizeof(err)), 2);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

/* helper_advance -- "advance POOL GEN": open latest, gen + 1, persist, gen + 2, checkpoint */
static int
helper_advance(char **arg)
{
	ckpt_pool *p = tc_helper_open(arg[0], CKPT_LATEST, &cow_cfg);
	if (!p)
		return 1;
	uint64_t gen = strtoull(arg[1], NULL, 10);
	if (ts_modify(p, ckpt_root(p), gen + 1, 5) < 0 || persist_heap(p) < 0 ||
	    ts_modify(p, ckpt_root(p), gen + 2, 5) < 0 ||
	    ckpt_checkpoint(p, NULL, NULL) < 0) {
		printf("advance: %s\n", ckpt_errormsg());
		return 1;
	}
	kill(getpid(), SIGKILL);    /* dead, not closed, in every case */
	return 3;       /* not reached */
}

int
main(int argc, char **argv)
{
	static const struct tu_helper helpers[] = { { "advance", 2, helper_advance }, { NULL } };
	tu_helper_main(argc, argv, helpers);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_persist_killed),
		cmocka_unit_test(test_persist_inspect_cli),
		cmocka_unit_test(test_persist_fresh_and_fork),
		cmocka_unit_test(test_persist_old_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
