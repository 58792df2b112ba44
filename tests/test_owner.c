/*
 * test_owner.c -- dead owners (issue 2, item 5): a live segment whose
 * process ended without ckpt_close is dead, and neither pid reuse, a
 * reboot (another boot id), a zombie nor an exec fools the check.
 *
 * Real processes: children that exit without closing, children killed with
 * SIGKILL, zombies held unreaped (waitid WNOWAIT), and a process created
 * with the pid of a dead owner (clone3 set_tid).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libckpt.h"
#include "testutil.h"
#include "catalog.h"
#include "owner.h"

#define MiB ((size_t)1 << 20)

/* entry_dead -- cat_entry_dead of entry i, asked through a descriptor of our own */
static int
entry_dead(const char *path, const struct cat_entry *e, uint32_t i)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	int d = cat_entry_dead(fd, e, i);
	close(fd);
	return d;
}

/* seg_of -- catalog index of the LIVE entry owned by pid, or -1 */
static int
seg_of(const struct tu_catalog *c, pid_t pid)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->e[i].state == CAT_LIVE && c->e[i].owner.pid == pid)
			return (int)i;
	return -1;
}

/* wait_zombie -- wait until pid has exited, leaving it unreaped */
static void
wait_zombie(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0)
		assert_int_equal(errno, EINTR);
	assert_int_equal(si.si_pid, pid);
	/* still there, as a zombie */
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	char *p = strrchr(buf, ')');
	assert_non_null(p);
	assert_int_equal(p[2], 'Z');
}

/*
 * owner_child -- in a forked child (no pool open in the parent): create the
 * pool and checkpoint it (or open its newest checkpoint), report readiness on ready, wait for
 * a byte on go (or EOF), then leave as told: 'x' exit() without ckpt_close,
 * 'c' ckpt_close and exit.
 */
static void
owner_child(const char *path, int create, int ready, int go)
{
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 3 };
	ckpt_pool *p = create ? ckpt_create(path, &cfg) : ckpt_open(path, CKPT_LATEST, NULL);
	if (!p) {
		fprintf(stderr, "owner child: %s\n", ckpt_errormsg());
		_exit(2);
	}
	if (create) {
		char *s = ckpt_alloc(p, 32);
		if (!s)
			_exit(3);
		strcpy(s, "owner child");
		if (ckpt_set_root(p, s) != 0 || ckpt_checkpoint(p, "child", NULL) != 0)
			_exit(4);
	}
	if (write(ready, "r", 1) != 1)
		_exit(5);
	char how = 'x';
	if (read(go, &how, 1) != 1)
		how = 'x';
	if (how == 'c')
		exit(ckpt_close(p) == 0 ? 0 : 6);
	exit(0);      /* atexit handlers run; the pool is simply never closed */
}

struct kid {
	pid_t pid;
	int ready, go;
};

static struct kid
start_owner(const char *path, int create)
{
	int r[2], g[2];
	assert_int_equal(pipe(r), 0);
	assert_int_equal(pipe(g), 0);
	struct kid k;
	k.pid = tu_fork();
	assert_true(k.pid >= 0);
	if (k.pid == 0) {
		close(r[0]);
		close(g[1]);
		owner_child(path, create, r[1], g[0]);
	}
	close(r[1]);
	close(g[0]);
	k.ready = r[0];
	k.go = g[1];
	char b;
	if (read(k.ready, &b, 1) != 1)
		fail_msg("owner child %d failed to start (status %d)", (int)k.pid,
			tu_wait_exit(k.pid));
	return k;
}

static void
end_fds(struct kid *k)
{
	close(k->ready);
	close(k->go);
}

/* ---------------------------------------------------------------------- */

static void
exit_without_close(void **state)
{
	char path[512];
	snprintf(path, sizeof(path), "%s", tu_path("exit.pool"));
	struct kid k = start_owner(path, 1);

	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int seg = seg_of(&c, k.pid);
	assert_true(seg >= 0);
	struct cat_entry e = c.e[seg];
	tu_catalog_free(&c);
	/* running: alive, not dead */
	assert_int_equal(owner_alive(&e.owner), 1);
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 0);

	assert_int_equal(write(k.go, "x", 1), 1);
	wait_zombie(k.pid);
	/* exited, not reaped: a zombie is not alive */
	tu_catalog_read(path, &c);
	assert_int_equal(c.e[seg].state, CAT_LIVE);      /* nobody cleaned up */
	assert_true(owner_equal(&c.e[seg].owner, &e.owner));
	assert_int_equal(owner_alive(&c.e[seg].owner), 0);
	assert_int_equal(entry_dead(path, &c.e[seg], (uint32_t)seg), 1);
	tu_catalog_free(&c);

	assert_int_equal(tu_wait_exit(k.pid), 0);
	end_fds(&k);
	/* reaped: gone */
	assert_int_equal(owner_alive(&e.owner), 0);
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 1);

	/*
	 * The pool is full (3 segments: the dead heap, its checkpoint, and one
	 * more taken by a live process): the next process gets the dead one.
	 */
	struct kid k2 = start_owner(path, 0);
	tu_catalog_read(path, &c);
	assert_int_equal(tu_catalog_count(&c, CAT_FREE), 0);
	assert_int_equal(entry_dead(path, &c.e[seg], (uint32_t)seg), 1);
	tu_catalog_free(&c);
	ckpt_pool *p = ckpt_open(path, CKPT_LATEST, NULL);
	if (!p)
		fail_msg("opening a pool whose only spare segment is dead: %s", ckpt_errormsg());
	assert_string_equal(ckpt_root(p), "owner child");
	tu_catalog_read(path, &c);
	assert_int_equal(seg_of(&c, getpid()), seg);      /* reclaimed */
	assert_true(seg_of(&c, k2.pid) >= 0);             /* the live one was not */
	tu_catalog_free(&c);
	assert_int_equal(ckpt_close(p), 0);
	assert_int_equal(write(k2.go, "c", 1), 1);
	assert_int_equal(tu_wait_exit(k2.pid), 0);
	end_fds(&k2);
}

static void
killed_owner(void **state)
{
	char path[512];
	snprintf(path, sizeof(path), "%s", tu_path("killed.pool"));
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 3 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	assert_int_equal(ckpt_checkpoint(p, NULL, NULL), 0);
	assert_int_equal(ckpt_close(p), 0);

	/* started from a checkpoint, not created */
	struct kid k = start_owner(path, 0);
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int seg = seg_of(&c, k.pid);
	assert_true(seg >= 0);
	struct cat_entry e = c.e[seg];
	tu_catalog_free(&c);
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 0);

	assert_int_equal(kill(k.pid, SIGKILL), 0);
	wait_zombie(k.pid);
	assert_int_equal(owner_alive(&e.owner), 0);
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 1);
	assert_int_equal(tu_wait_exit(k.pid), 128 + SIGKILL);
	end_fds(&k);
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 1);
}

/* a LIVE entry with a given owner, for the checks below */
static struct cat_entry
live_entry(const struct cat_owner *o)
{
	struct cat_entry e;
	cat_free_entry(&e);
	e.state = CAT_LIVE;
	e.owner = *o;
	return e;
}

static void
identity_fields(void **state)
{
	/* a pool this process holds open: its own entry, the lease held */
	char path[512];
	snprintf(path, sizeof(path), "%s", tu_path("ident.pool"));
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 2 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	assert_non_null(p);
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int seg = seg_of(&c, getpid());
	assert_true(seg >= 0);
	struct cat_entry real = c.e[seg];
	tu_catalog_free(&c);

	struct cat_owner me;
	assert_int_equal(owner_self(&me), 0);
	assert_true(owner_equal(&me, &real.owner));
	assert_int_equal(owner_alive(&me), 1);
	assert_int_equal(entry_dead(path, &real, (uint32_t)seg), 0);

	/* same pid, another start time: an earlier or later process with our pid */
	struct cat_owner o = me;
	o.start_time = me.start_time + 1;
	assert_int_equal(owner_alive(&o), 0);
	struct cat_entry e = live_entry(&o);
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 1);
	o.start_time = me.start_time - 1;
	assert_int_equal(owner_alive(&o), 0);
	o.start_time = 0;
	assert_int_equal(owner_alive(&o), 0);

	/* a live process (our parent) with a start time that is not its own */
	o = me;
	o.pid = (int32_t)getppid();
	o.start_time = me.start_time + 12345;
	assert_true(kill(getppid(), 0) == 0);
	assert_int_equal(owner_alive(&o), 0);
	e = live_entry(&o);
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 1);

	/* another boot: every pid and start time is meaningless */
	o = me;
	o.boot_id[0] ^= 0x01;
	assert_int_equal(owner_alive(&o), 0);
	e = live_entry(&o);
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 1);
	o = me;
	o.boot_id[15] ^= 0x80;
	assert_int_equal(owner_alive(&o), 0);

	/* pids that cannot be a process */
	o = me;
	o.pid = 0;
	assert_int_equal(owner_alive(&o), 0);
	o.pid = -1;
	assert_int_equal(owner_alive(&o), 0);
	o.pid = INT32_MAX;
	assert_int_equal(owner_alive(&o), 0);

	/* only LIVE/BUSY entries can be dead */
	o = me;
	o.start_time += 1;
	e = live_entry(&o);
	e.state = CAT_CKPT;
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 0);
	e.state = CAT_FREE;
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 0);
	e.state = CAT_BUSY;
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 1);

	assert_int_equal(ckpt_close(p), 0);
}

/* start_ticks -- /proc/PID/stat field 22 */
static uint64_t
start_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	char *p = strrchr(buf, ')');
	assert_non_null(p);
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		assert_non_null(p);
		p++;
	}
	return strtoull(p, NULL, 10);
}

/* boot_ticks -- now, in the clock ticks /proc/PID/stat counts start times in */
static uint64_t
boot_ticks(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	uint64_t hz = (uint64_t)sysconf(_SC_CLK_TCK);
	return (uint64_t)ts.tv_sec * hz + (uint64_t)ts.tv_nsec / (1000000000ull / hz);
}

/* clone_with_pid -- a child with exactly this pid (clone3 set_tid), or -1 */
static pid_t
clone_with_pid(pid_t want, const int go[2])
{
	struct clone_args args;
	memset(&args, 0, sizeof(args));
	pid_t tid = want;
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)(uintptr_t)&tid;
	args.set_tid_size = 1;
	fflush(NULL);
	long r = syscall(SYS_clone3, &args, sizeof(args));
	if (r == 0) {
		char b;
		close(go[1]);
		ssize_t n = read(go[0], &b, 1);
		_exit(n < 0 ? 1 : 0);
	}
	return (pid_t)r;
}

/*
 * Real pid reuse: the owner of a heap dies, and a new process gets its pid.
 * The entry must read dead while the impostor runs.
 */
static void
pid_reuse(void **state)
{
	char path[512];
	snprintf(path, sizeof(path), "%s", tu_path("reuse.pool"));
	struct kid k = start_owner(path, 1);
	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int seg = seg_of(&c, k.pid);
	assert_true(seg >= 0);
	struct cat_entry e = c.e[seg];
	tu_catalog_free(&c);
	assert_int_equal(write(k.go, "x", 1), 1);
	assert_int_equal(tu_wait_exit(k.pid), 0);
	end_fds(&k);

	/* start times count clock ticks: let at least one pass, so the new
	 * process differs from the old one as any real reuse does */
	while (boot_ticks() <= e.owner.start_time + 1)
		usleep(2000);

	int g[2];
	assert_int_equal(pipe(g), 0);
	pid_t imp = clone_with_pid(k.pid, g);
	if (imp < 0) {
		int err = errno;
		close(g[0]);
		close(g[1]);
		print_message("cannot create a process with pid %d (clone3 set_tid: %s); "
			"skipping the real pid-reuse case\n", (int)k.pid, strerror(err));
		skip();
		return;
	}
	close(g[0]);
	assert_int_equal(imp, k.pid);
	assert_true(start_ticks(imp) != e.owner.start_time);

	/* the impostor runs with the owner's pid: still dead */
	assert_int_equal(kill(imp, 0), 0);
	assert_int_equal(owner_alive(&e.owner), 0);
	assert_int_equal(entry_dead(path, &e, (uint32_t)seg), 1);
	tu_catalog_read(path, &c);
	assert_int_equal(entry_dead(path, &c.e[seg], (uint32_t)seg), 1);
	tu_catalog_free(&c);

	close(g[1]);
	assert_int_equal(tu_wait_exit(imp), 0);
}

/* helper "exec PATH": create a pool, then exec a program that keeps our pid */
static int
helper_exec(const char *path)
{
	struct ckpt_config cfg = { .heap_size = 4 * MiB, .max_segments = 2 };
	ckpt_pool *p = ckpt_create(path, &cfg);
	if (!p) {
		fprintf(stderr, "helper exec: %s\n", ckpt_errormsg());
		return 2;
	}
	/* our stdout pipe closes at exec: that is the parent's signal */
	if (fcntl(1, F_SETFD, FD_CLOEXEC) < 0)
		return 3;
	execl("/bin/sleep", "sleep", "600", (char *)NULL);
	return 4;
}

/*
 * A process that execs keeps its pid and start time but loses its heap
 * (the mapping and the pool descriptor): its segment is dead although
 * owner_alive still says the process runs.
 */
static void
owner_execs(void **state)
{
	char path[512];
	snprintf(path, sizeof(path), "%s", tu_path("exec.pool"));
	int fd;
	pid_t pid = tu_spawn_helper(&fd, NULL, "exec", path, NULL);
	char b;
	ssize_t n;
	while ((n = read(fd, &b, 1)) < 0 && errno == EINTR)
		;
	close(fd);
	assert_int_equal(n, 0);      /* EOF: exec'd (or died) */
	assert_int_equal(kill(pid, 0), 0);
	char exe[256] = "";
	char link[64];
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	assert_true(readlink(link, exe, sizeof(exe) - 1) > 0);
	if (!strstr(exe, "sleep"))
		fail_msg("helper did not exec sleep (exe %s, status %d)", exe,
			(kill(pid, SIGKILL), tu_wait_exit(pid)));

	struct tu_catalog c;
	tu_catalog_read(path, &c);
	int seg = seg_of(&c, pid);
	assert_true(seg >= 0);
	assert_int_equal(owner_alive(&c.e[seg].owner), 1);     /* same process */
	assert_int_equal(entry_dead(path, &c.e[seg], (uint32_t)seg), 1);
	tu_catalog_free(&c);
	kill(pid, SIGKILL);
	assert_int_equal(tu_wait_exit(pid), 128 + SIGKILL);
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--helper") == 0 && strcmp(argv[2], "exec") == 0)
		return helper_exec(argv[3]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exit_without_close),
		cmocka_unit_test(killed_owner),
		cmocka_unit_test(identity_fields),
		cmocka_unit_test(pid_reuse),
		cmocka_unit_test(owner_execs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
