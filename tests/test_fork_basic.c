/*
 * test_fork_basic.c -- fork() of a process with an open pool (issue 5):
 * every mode on ext4 (copy, auto, shared; reflink is refused here and tested
 * on XFS/btrfs in test_fork_reflink.c), isolation both ways with both
 * checkpoints read back, what the catalog and `ckpt-inspect list --json`
 * record, grandchildren, 16 children at once, a child that dies without
 * ckpt_close, fork + exec, vfork and posix_spawn, a pool with no free
 * segment, a fork() that fails, and a child made without the atfork
 * handlers (_Fork).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <valgrind/valgrind.h>

#include "test_fork_util.h"
#include "pool.h"

extern char **environ;

static void
test_isolation_copy(void **state)
{
	(void)state;
	ckpt_pool *p = fk_isolation(tu_path("copy.pool"), CKPT_FORK_COPY, 0);
	assert_int_equal(p->fork_mode, CKPT_FORK_COPY);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(tu_path("copy.pool"));
}

static void
test_isolation_auto(void **state)
{
	(void)state;
	ckpt_pool *p = fk_isolation(tu_path("auto.pool"), CKPT_FORK_AUTO, 0);
	/* a new pool (format 1.7) on an ordinary file: auto settles to cow */
	assert_int_equal(p->fork_mode, CKPT_FORK_COW);
	assert_int_equal(ckpt_close(p), 0);
}

static void
test_shared_is_unsafe(void **state)
{
	(void)state;
	ckpt_pool *p = fk_isolation(tu_path("shared.pool"), CKPT_FORK_SHARED, 1);
	assert_int_equal(p->fork_mode, CKPT_FORK_SHARED);
	/* and the child got no segment of its own */
	struct tu_catalog c;
	tu_catalog_read(tu_path("shared.pool"), &c);
	assert_int_equal(tu_catalog_count(&c, CAT_LIVE), 1);
	tu_catalog_free(&c);
	assert_int_equal(ckpt_close(p), 0);
}

static void
test_env_overrides_mode(void **state)
{
	(void)state;
	const char *path = tu_path("env.pool");
	struct ckpt_config c = { .heap_size = 16 << 20, .max_segments = 4,
		.fork_mode = CKPT_FORK_COPY };
	unlink(path);
	setenv("CKPT_FORK_MODE", "shared", 1);
	ckpt_pool *p = ckpt_create(path, &c);
	assert_non_null(p);
	assert_int_equal(p->fork_mode, CKPT_FORK_SHARED);
	assert_int_equal(ckpt_close(p), 0);
	setenv("CKPT_FORK_MODE", "bogus", 1);
	assert_null(ckpt_open(path, CKPT_LATEST, NULL));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(ckpt_errormsg(), "CKPT_FORK_MODE"));
	unsetenv("CKPT_FORK_MODE");
}

/* auto_mode -- the mode auto settles to for a new pool created with env set */
static enum ckpt_fork_mode
auto_mode(const char *name, const char *env, const char *key)
{
	const char *path = tu_path(name);
	unlink(path);
	if (env)
		setenv(env, "1", 1);
	struct ckpt_config c = { .heap_size = 16 << 20, .max_segments = 4, .key_file = key };
	ckpt_pool *p = ckpt_create(path, &c);
	if (env)
		unsetenv(env);
	assert_non_null(p);
	enum ckpt_fork_mode m = p->fork_mode;
	assert_int_equal(ckpt_close(p), 0);
	/* an open (config auto) settles it again, by the same rules */
	if (env)
		setenv(env, "1", 1);
	struct ckpt_config o = { .key_file = key };
	p = ckpt_open(path, CKPT_LATEST, &o);
	if (env)
		unsetenv(env);
	assert_non_null(p);
	assert_int_equal(p->fork_mode, m);
	assert_int_equal(ckpt_close(p), 0);
	unlink(path);
	return m;
}

/*
 * auto settles to cow wherever the engine does all a heap may ask: not on
 * a pool older than 1.7 (ckpt_persist would be ENOTSUP there: a 1.3 pool
 * here), not on pmem (forced here: the heap stays MAP_SHARED on it), not
 * on a sealed pool (its heap is in memory and only copy applies); there it
 * keeps the old choice, copy on this filesystem (no clones).
 */
static void
test_auto_choices(void **state)
{
	(void)state;
	unsetenv("CKPT_FORK_MODE");
	assert_int_equal(auto_mode("auto-new.pool", NULL, NULL), CKPT_FORK_COW);
	assert_int_equal(auto_mode("auto-13.pool", "CKPT_TEST_FORMAT_1_3", NULL),
			CKPT_FORK_COPY);
	assert_int_equal(auto_mode("auto-pmem.pool", "PMEM_IS_PMEM_FORCE", NULL),
			CKPT_FORK_COPY);
	const char *key = tu_path("auto.key");
	FILE *f = fopen(key, "w");
	assert_non_null(f);
	fputs("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(auto_mode("auto-sealed.pool", NULL, key), CKPT_FORK_COPY);
	unlink(key);
}

/*
 * On open, a config's fork mode counts whatever its value: CKPT_FORK_AUTO
 * overrides the mode the pool was created with, and no config (NULL) keeps
 * it. A bad value is refused before the pool is touched, on create too.
 */
static void
test_open_config_mode(void **state)
{
	(void)state;
	const char *path = tu_path("openmode.pool");
	unlink(path);
	unsetenv("CKPT_FORK_MODE");
	struct ckpt_config c = { .heap_size = 16 << 20, .max_segments = 4,
		.fork_mode = CKPT_FORK_SHARED };
	ckpt_pool *p = ckpt_create(path, &c);
	assert_non_null(p);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);

	p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	assert_int_equal(p->fork_mode, CKPT_FORK_SHARED);   /* the pool's */
	assert_int_equal(ckpt_close(p), 0);

	struct ckpt_config a = { .fork_mode = CKPT_FORK_AUTO };
	p = ckpt_open(path, CKPT_LATEST, &a);
	assert_non_null(p);
	assert_int_equal(p->fork_mode, CKPT_FORK_COW);      /* auto, a 1.7 pool */
	assert_int_equal(ckpt_close(p), 0);

	struct ckpt_config bad = { .fork_mode = (enum ckpt_fork_mode)9 };
	assert_null(ckpt_open(path, CKPT_LATEST, &bad));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(ckpt_errormsg(), "fork mode"));
	const char *path2 = tu_path("openmode2.pool");
	unlink(path2);
	assert_null(ckpt_create(path2, &bad));
	assert_int_equal(errno, EINVAL);
	struct ckpt_config keep = { .keep_checkpoints = 5000 };
	assert_null(ckpt_create(path2, &keep));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(ckpt_errormsg(), "keep_checkpoints"));
	struct ckpt_config base = { .base = (void *)(uintptr_t)0x300000001000ull };
	assert_null(ckpt_create(path2, &base));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(access(path2, F_OK), -1);   /* nothing left behind */
	unlink(path);
}

/* reflink on ext4 is refused at create and open, with ENOTSUP (cow works anywhere: test_cow.c) */
static void
test_reflink_refused_on_ext4(void **state)
{
	(void)state;
	const char *path = tu_path("reflink.pool");
	unlink(path);
	unsetenv("CKPT_FORK_MODE");
	struct ckpt_config c = { .heap_size = 16 << 20, .max_segments = 4,
		.fork_mode = CKPT_FORK_REFLINK };
	assert_null(ckpt_create(path, &c));
	assert_int_equal(errno, ENOTSUP);
	assert_non_null(strstr(ckpt_errormsg(), "reflink"));
	assert_int_equal(access(path, F_OK), -1);   /* nothing left behind */

	/* open with reflink asked for, by config or environment */
	c.fork_mode = CKPT_FORK_COPY;
	ckpt_pool *p = ckpt_create(path, &c);
	assert_non_null(p);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);
	c.fork_mode = CKPT_FORK_REFLINK;
	assert_null(ckpt_open(path, CKPT_LATEST, &c));
	assert_int_equal(errno, ENOTSUP);
	setenv("CKPT_FORK_MODE", "reflink", 1);
	assert_null(ckpt_open(path, CKPT_LATEST, NULL));
	assert_int_equal(errno, ENOTSUP);
	unsetenv("CKPT_FORK_MODE");
	p = ckpt_open(path, CKPT_LATEST, NULL);
	assert_non_null(p);
	assert_int_equal(ckpt_close(p), 0);
}

/* the catalog records the child's pid and its parent's segment; so does ckpt-inspect */
static void
test_catalog_records_child(void **state)
{
	(void)state;
	const char *path = tu_path("cat.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 8);
	uint32_t pseg = p->seg;
	struct fk_chan ch;
	pid_t pid = fk_fork(&ch);
	if (pid == 0) {
		fk_send(ch.up[1], p->seg);
		fk_recv(ch.down[0]);
		_exit(ckpt_close(p) == 0 ? 0 : 1);
	}
	uint64_t cseg = fk_recv(ch.up[0]);
	assert_true(cseg != pseg && cseg < 8);
	struct cat_entry e;
	assert_int_equal(fk_entry_of(path, pid, &e), (int)cseg);
	assert_int_equal(e.parent, pseg);
	assert_int_equal(e.flags, 0);
	assert_string_equal(fk_state_name(path, (uint32_t)cseg), "live");

	char cmd[4096];
	snprintf(cmd, sizeof(cmd),
		"%s list %s --json | python3 -c 'import json,sys\n"
		"d=json.load(sys.stdin)\n"
		"s=[x for x in d[\"segments\"] if x[\"pid\"]==%d]\n"
		"assert len(s)==1, s\n"
		"assert s[0][\"segment\"]==%u and s[0][\"state\"]==\"live\" and s[0][\"parent\"]==%u, s\n"
		"'", fk_inspect_bin(), path, (int)pid, (unsigned)cseg, pseg);
	assert_int_equal(system(cmd), 0);

	fk_send(ch.down[1], 1);
	assert_int_equal(tu_wait_exit(pid), 0);
	/* the child's ckpt_close freed its segment */
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(c.e[cseg].state, CAT_FREE);
	assert_int_equal(tu_catalog_count(&c, CAT_BUSY), 0);
	tu_catalog_free(&c);
	assert_int_equal(ckpt_close(p), 0);
}

/* parent -> child -> grandchild: three heaps, three segments, a chain in the catalog */
static void
test_grandchildren(void **state)
{
	(void)state;
	const char *path = tu_path("nest.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 8);
	uint64_t *v = ckpt_calloc(p, 4, sizeof(uint64_t));
	assert_non_null(v);
	v[0] = 1;
	uint32_t s0 = p->seg;
	struct fk_chan ch;
	pid_t pid = fk_fork(&ch);
	if (pid == 0) {
		uint32_t s1 = p->seg;
		v[1] = 2;
		int pp[2];
		if (pipe(pp) < 0)
			_exit(80);
		pid_t g = fork();
		if (g == 0) {
			close(pp[1]);
			int bad = v[0] != 1 || v[1] != 2 || v[2] != 0;
			v[2] = 3;
			struct cat_entry e;
			if (fk_entry_of(path, getpid(), &e) != (int)p->seg || e.parent != s1)
				bad |= 2;
			char x;
			if (read(pp[0], &x, 1) != 1)     /* the child wrote v[3] meanwhile */
				bad |= 4;
			if (v[3] != 0)
				bad |= 8;
			ckpt_id id;
			if (ckpt_checkpoint(p, "grandchild", &id) < 0)
				bad |= 16;
			_exit(bad);
		}
		close(pp[0]);
		v[3] = 4;
		if (write(pp[1], "x", 1) != 1)
			_exit(81);
		int st = tu_wait_exit(g);
		int bad = st ? 32 + st : 0;
		if (v[2] != 0 || v[0] != 1)
			bad |= 1;
		struct cat_entry e;
		if (fk_entry_of(path, getpid(), &e) != (int)s1 || e.parent != s0)
			bad |= 2;
		fk_send(ch.up[1], bad);
		_exit(ckpt_close(p) == 0 ? 0 : 1);
	}
	assert_int_equal(fk_recv(ch.up[0]), 0);
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_int_equal(v[1], 0);
	assert_int_equal(v[2], 0);
	assert_int_equal(v[3], 0);
	/* the grandchild's checkpoint holds all three generations' writes but v[3] */
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	ckpt_id gid = 0;
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_CKPT && strcmp(c.e[i].label, "grandchild") == 0)
			gid = c.e[i].ckpt_id;
	tu_catalog_free(&c);
	assert_true(gid > 0);
	size_t len;
	void *h = fk_read_ckpt(path, gid, &len, NULL);
	const uint64_t *gv = fk_at(h, len, fk_base(path), v);
	assert_int_equal(gv[0], 1);
	assert_int_equal(gv[1], 2);
	assert_int_equal(gv[2], 3);
	assert_int_equal(gv[3], 0);
	inspect_free_heap(h, len);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

#define NKIDS 16

/* 16 children at once, all live together, each on its own segment */
static void
test_sixteen_children(void **state)
{
	(void)state;
	const char *path = tu_path("sixteen.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 1 + 2 * NKIDS + 2);
	uint64_t *slots = ckpt_calloc(p, NKIDS, sizeof(uint64_t));
	assert_non_null(slots);
	int go[2], ready[2];
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	pid_t pids[NKIDS];
	for (int k = 0; k < NKIDS; k++) {
		pids[k] = tu_fork();
		assert_true(pids[k] >= 0);
		if (pids[k] == 0) {
			close(go[1]);
			close(ready[0]);
			int bad = 0;
			for (int j = 0; j < NKIDS; j++)
				if (slots[j] != 0)
					bad |= 1;   /* no sibling's write, nor the parent's */
			slots[k] = 100 + (uint64_t)k;
			uint64_t *mine = ckpt_alloc(p, 64 << 10);
			if (!mine)
				bad |= 2;
			else
				memset(mine, k, 64 << 10);
			if (write(ready[1], "r", 1) != 1)
				bad |= 4;
			char x;
			if (read(go[0], &x, 1) != 0)    /* EOF: the parent says go */
				bad |= 8;
			for (int j = 0; j < NKIDS; j++)
				if (slots[j] != (j == k ? 100 + (uint64_t)k : 0))
					bad |= 16;
			char label[32];
			snprintf(label, sizeof(label), "kid%d", k);
			if (ckpt_checkpoint(p, label, NULL) < 0)
				bad |= 32;
			_exit(bad);
		}
	}
	close(go[0]);
	close(ready[1]);
	for (int k = 0; k < NKIDS; k++) {
		char x;
		assert_int_equal(read(ready[0], &x, 1), 1);
	}
	/* all 16 live at once, each on its own segment, each child of ours */
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_LIVE), 1 + NKIDS);
	assert_int_equal(tu_catalog_count(&c, CAT_BUSY), 0);
	for (int k = 0; k < NKIDS; k++) {
		int seg = -1;
		for (uint32_t i = 0; i < c.n; i++)
			if (c.e[i].state == CAT_LIVE && c.e[i].owner.pid == pids[k])
				seg = (int)i;
		assert_true(seg >= 0);
		assert_int_equal(c.e[seg].parent, p->seg);
	}
	tu_catalog_free(&c);
	for (int k = 0; k < NKIDS; k++)
		slots[k] = 7;               /* invisible to every child */
	close(go[1]);
	for (int k = 0; k < NKIDS; k++)
		assert_int_equal(tu_wait_exit(pids[k]), 0);
	/* each checkpoint holds only its child's writes */
	tu_catalog_read(path, &c);
	void *base = fk_base(path);
	unsigned seen = 0;
	for (uint32_t i = 0; i < c.n; i++) {
		int k;
		if (c.e[i].state != CAT_CKPT || sscanf(c.e[i].label, "kid%d", &k) != 1)
			continue;
		size_t len;
		void *h = fk_read_ckpt(path, c.e[i].ckpt_id, &len, NULL);
		const uint64_t *s = fk_at(h, len, base, slots);
		for (int j = 0; j < NKIDS; j++)
			assert_int_equal(s[j], j == k ? 100 + (uint64_t)k : 0);
		inspect_free_heap(h, len);
		seen |= 1u << k;
	}
	tu_catalog_free(&c);
	assert_int_equal(seen, (1u << NKIDS) - 1);
	/* the children exited without ckpt_close: 16 dead segments */
	assert_int_equal(fk_count_state(path, "dead"), NKIDS);
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

/* a child that exits without ckpt_close leaves a dead segment, reclaimed when needed */
static void
test_dead_child_reclaimed(void **state)
{
	(void)state;
	const char *path = tu_path("dead.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 2);
	pid_t pid = tu_fork();
	if (pid == 0)
		_exit(fk_entry_of(path, getpid(), NULL) >= 0 ? 0 : 1);   /* no ckpt_close */
	assert_int_equal(tu_wait_exit(pid), 0);
	int dseg = -1;
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_LIVE && c.e[i].owner.pid == pid)
			dseg = (int)i;
	tu_catalog_free(&c);
	assert_true(dseg >= 0);
	assert_string_equal(fk_state_name(path, (uint32_t)dseg), "dead");
	/* the pool is full (2 segments); the next fork takes the dead one */
	pid = tu_fork();
	if (pid == 0)
		_exit(fk_entry_of(path, getpid(), NULL) == dseg && !p->detached ? 0 : 1);
	assert_int_equal(tu_wait_exit(pid), 0);
	assert_int_equal(ckpt_close(p), 0);
}

/*
 * fork + exec: the exec'd child drops its lease with its close-on-exec
 * descriptor, so its segment reads dead while the process still runs, and a
 * full pool reclaims it.
 */
static void
test_exec_child_segment_dead(void **state)
{
	(void)state;
	const char *path = tu_path("exec.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 2);
	int cl[2];
	assert_int_equal(pipe2(cl, O_CLOEXEC), 0);
	pid_t pid = tu_fork();
	if (pid == 0) {
		close(cl[0]);
		execl("/bin/sleep", "sleep", "600", (char *)NULL);
		_exit(127);
	}
	close(cl[1]);
	char x;
	assert_int_equal(read(cl[0], &x, 1), 0);    /* EOF: exec happened */
	close(cl[0]);
	int seg = -1;
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	for (uint32_t i = 0; i < c.n; i++)
		if (c.e[i].state == CAT_LIVE && c.e[i].owner.pid == pid)
			seg = (int)i;
	tu_catalog_free(&c);
	assert_true(seg >= 0);
	assert_int_equal(kill(pid, 0), 0);          /* still running... */
	assert_string_equal(fk_state_name(path, (uint32_t)seg), "dead");   /* ...but dead */
	/* no leak: the pool is full and the next fork reclaims that segment */
	pid_t pid2 = tu_fork();
	if (pid2 == 0)
		_exit(fk_entry_of(path, getpid(), NULL) == seg && !p->detached ? 0 : 1);
	assert_int_equal(tu_wait_exit(pid2), 0);
	kill(pid, SIGKILL);
	tu_wait_exit(pid);
	assert_int_equal(ckpt_close(p), 0);
}

/* vfork and posix_spawn: work, reserve nothing, leave the catalog untouched */
static void
test_vfork_and_posix_spawn(void **state)
{
	(void)state;
	const char *path = tu_path("spawn.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 4);
	uint64_t *v = ckpt_alloc(p, 64);
	assert_non_null(v);
	*v = 5;
	struct tu_catalog before, after;
	tu_catalog_read(path, &before);

	fflush(NULL);
	pid_t pid = vfork();
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	assert_true(pid > 0);
	assert_int_equal(tu_wait_exit(pid), 0);
	/* a vfork child reads the heap it shares with the parent; valgrind
	 * turns vfork into a fork without atfork handlers, so not there */
	if (!RUNNING_ON_VALGRIND) {
		pid = vfork();
		if (pid == 0)
			_exit(*v == 5 ? 7 : 8);
		assert_int_equal(tu_wait_exit(pid), 7);
	}

	char *argv[] = { "sh", "-c", "exit 3", NULL };
	assert_int_equal(posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ), 0);
	assert_int_equal(tu_wait_exit(pid), 3);
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_USEVFORK);
	char *targv[] = { "true", NULL };
	assert_int_equal(posix_spawnp(&pid, "true", NULL, &at, targv, environ), 0);
	posix_spawnattr_destroy(&at);
	assert_int_equal(tu_wait_exit(pid), 0);

	tu_catalog_read(path, &after);
	/* the same catalog generation: no segment was reserved or claimed */
	assert_int_equal(after.h->generation, before.h->generation);
	assert_memory_equal(after.e, before.e, sizeof(struct cat_entry) * before.n);
	tu_catalog_free(&before);
	tu_catalog_free(&after);
	assert_int_equal(*v, 5);
	assert_int_equal(ckpt_close(p), 0);
}

/*
 * No free segment at fork: the child runs on a private volatile copy; it
 * can read and allocate, but checkpoint/persist fail with ENOSPC and say
 * why; its writes never reach the parent; a grandchild forks from it too.
 */
static void
test_pool_full_private_child(void **state)
{
	(void)state;
	const char *path = tu_path("full.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 2);
	uint64_t *v = ckpt_calloc(p, 8, sizeof(uint64_t));
	assert_non_null(v);
	v[0] = 11;
	assert_int_equal(ckpt_checkpoint(p, "fills", NULL), 0);   /* segment 1: full now */
	struct tu_catalog before, after;
	tu_catalog_read(path, &before);
	struct fk_chan ch;
	pid_t pid = fk_fork(&ch);
	if (pid == 0) {
		int bad = 0;
		if (!p->detached || v[0] != 11)
			bad |= 1;
		v[1] = 22;                       /* private: the parent must not see it */
		uint64_t *b = ckpt_alloc(p, 1 << 20);
		if (!b)
			bad |= 2;
		else
			memset(b, 1, 1 << 20);
		errno = 0;
		if (ckpt_checkpoint(p, "nope", NULL) != -1 || errno != ENOSPC ||
		    !strstr(ckpt_errormsg(), "private"))
			bad |= 4;
		if (ckpt_persist(p, v, 8) != -1 || errno != ENOSPC)
			bad |= 8;
		pid_t g = fork();       /* a private copy forks as anonymous memory */
		if (g == 0)
			_exit(v[1] == 22 && v[0] == 11 && p->detached ? 0 : 1);
		if (g < 0 || tu_wait_exit(g) != 0)
			bad |= 16;
		fk_send(ch.up[1], (uint64_t)bad);
		fk_recv(ch.down[0]);
		if (v[2] != 0)
			bad |= 32;
		_exit(bad | (ckpt_close(p) == 0 ? 0 : 64));
	}
	assert_int_equal(fk_recv(ch.up[0]), 0);
	assert_int_equal(v[1], 0);               /* never shared */
	v[2] = 33;
	fk_send(ch.down[1], 1);
	assert_int_equal(tu_wait_exit(pid), 0);
	/* the parent is unaffected: the catalog is as it was, and it still works */
	tu_catalog_read(path, &after);
	assert_memory_equal(after.e, before.e, sizeof(struct cat_entry) * before.n);
	tu_catalog_free(&before);
	tu_catalog_free(&after);
	assert_int_equal(v[0], 11);
	assert_int_equal(ckpt_persist(p, v, 64), 0);
	assert_non_null(ckpt_alloc(p, 100));
	assert_int_equal(ckpt_close(p), 0);
	tu_inspect_verify(path);
}

/* seccomp filter: clone and clone3 fail with EAGAIN (fork() fails) */
static int
forbid_fork(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/*
 * fork() fails (EAGAIN): errno is the kernel's, the reservation made in
 * prepare is given back at once (no BUSY entry left), the parent goes on.
 * Runs in a helper process: the filter cannot be removed.
 */
static int
helper_fork_fails(const char *path)
{
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 2);
	uint64_t *v = ckpt_alloc(p, 64);
	*v = 9;
	if (forbid_fork() < 0)
		return 70;
	for (int round = 0; round < 3; round++) {   /* repeatedly: nothing accumulates */
		errno = 0;
		if (fork() != -1 || errno != EAGAIN)
			return 71;
		struct tu_catalog c;
		tu_catalog_read(path, &c);
		unsigned busy = tu_catalog_count(&c, CAT_BUSY), fr = tu_catalog_count(&c, CAT_FREE);
		tu_catalog_free(&c);
		if (busy != 0 || fr != 1)
			return 72;
	}
	if (*v != 9 || ckpt_checkpoint(p, "after", NULL) < 0)   /* the one free segment */
		return 73;
	return ckpt_close(p) == 0 ? 0 : 74;
}

static void
test_fork_failure(void **state)
{
	(void)state;
	char out[256];
	int rc = tu_run_helper(out, sizeof(out), NULL, "fork-fails", tu_path("ff.pool"),
			(char *)NULL);
	assert_int_equal(rc, 0);
}

/*
 * A child made without the atfork handlers (glibc's _Fork) finds no heap at
 * the base (MADV_DONTFORK) and faults, rather than writing the parent's.
 */
static void
test_fork_without_handlers_never_shares(void **state)
{
	(void)state;
	if (RUNNING_ON_VALGRIND)
		skip();         /* valgrind's own map of the process does not know MADV_DONTFORK */
	const char *path = tu_path("rawfork.pool");
	ckpt_pool *p = fk_create(path, CKPT_FORK_COPY, 4);
	uint64_t *v = ckpt_alloc(p, 64);
	*v = 1;
	fflush(NULL);
	pid_t pid = _Fork();
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		*(volatile uint64_t *)v = 2;
		_exit(0);
	}
	assert_true(pid > 0);
	assert_int_equal(tu_wait_exit(pid), 128 + SIGSEGV);
	assert_int_equal(*v, 1);
	assert_int_equal(ckpt_close(p), 0);
}

int
main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--helper") == 0) {
		/* _exit: LeakSanitizer's exit-time check needs clone, which the
		 * helper's filter forbids */
		if (strcmp(argv[2], "fork-fails") == 0 && argc == 4)
			_exit(helper_fork_fails(argv[3]));
		return 2;
	}
	unsetenv("CKPT_FORK_MODE");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_isolation_copy),
		cmocka_unit_test(test_isolation_auto),
		cmocka_unit_test(test_auto_choices),
		cmocka_unit_test(test_shared_is_unsafe),
		cmocka_unit_test(test_env_overrides_mode),
		cmocka_unit_test(test_reflink_refused_on_ext4),
		cmocka_unit_test(test_open_config_mode),
		cmocka_unit_test(test_catalog_records_child),
		cmocka_unit_test(test_grandchildren),
		cmocka_unit_test(test_sixteen_children),
		cmocka_unit_test(test_dead_child_reclaimed),
		cmocka_unit_test(test_exec_child_segment_dead),
		cmocka_unit_test(test_vfork_and_posix_spawn),
		cmocka_unit_test(test_pool_full_private_child),
		cmocka_unit_test(test_fork_failure),
		cmocka_unit_test(test_fork_without_handlers_never_shares),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
