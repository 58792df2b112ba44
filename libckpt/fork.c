/*
 * fork.c -- what happens to open pools across fork(), and the fork modes.
 *
 * pthread_atfork handlers, registered with the first open pool:
 *
 *  prepare  (parent, before fork): for each pool, hold its mutex and every
 *           heap lock (so the heap bytes are consistent and no thread is
 *           inside the allocator), reserve a segment for the child in the
 *           catalog (BUSY, fork-pending, owned by the parent) and fill it
 *           from the parent's heap: a filesystem clone in reflink mode, a
 *           copy (copy_file_range) in copy mode.
 *  parent   (parent, after fork): release the locks.
 *  child    (child, after fork): reopen the pool file (a new open file
 *           description, so the pool lock and lease are the child's own),
 *           map the reserved segment over the inherited mapping at the same
 *           base, claim the catalog entry (LIVE, child's pid, parent
 *           segment), take its lease, reset the heap's per-thread records.
 *
 * When no segment can be had (pool full, filesystem full), the child must
 * never share the parent's heap. prepare then snapshots the heap into a
 * memfd and the child maps that privately: the child runs on a volatile
 * copy, and every pool call that would need durability fails in it with
 * ENOSPC and a message saying so (see pool_usable). The parent is never
 * affected.
 *
 * vfork() and posix_spawn() run no atfork handlers and share the parent's
 * memory until exec, so they need nothing. A child that execs drops its
 * close-on-exec descriptor and with it the lease: its segment reads dead.
 *
 * shared mode (unsafe, for comparison): the child keeps the parent's
 * segment; the two processes write one heap.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "owner.h"
#include "pool.h"
#include "segcopy.h"
#include "testhook.h"

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ckpt_pool *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* fork_prepare_pool -- reserve and fill the child's segment, heap locked */
static void
fork_prepare_pool(struct ckpt_pool *p)
{
	p->fork_seg = -1;
	p->fork_memfd = -1;
	pthread_mutex_lock(&p->mu);
	heap_lock_all(p->heap);
	if (p->fork_mode == CKPT_FORK_SHARED)
		return;
	p->fork_used = heap_high_water(p->heap);
	if (p->detached)
		return;             /* a private copy forks as anonymous memory does */

	struct cat_view v;
	uint64_t punch;
	if (cat_begin(&p->cat, &v) == 0) {
		int seg = pool_take_segment(p, &v, &punch);
		if (seg >= 0) {
			v.e[seg].state = CAT_BUSY;
			v.e[seg].flags = CAT_F_FORK_PENDING;
			v.e[seg].owner = p->self;
			v.e[seg].parent = p->seg;
			v.e[seg].time_ns = pool_now_ns();
			if (cat_commit(&p->cat) == 0)
				p->fork_seg = seg;
		} else {
			cat_end(&p->cat);
		}
	}
	if (p->fork_seg >= 0) {
		test_point("fork:before-copy");
		int cloned;
		enum segcopy_how how = p->fork_mode == CKPT_FORK_REFLINK ? SEGCOPY_CLONE
			: SEGCOPY_COPY;
		if (segcopy(p->fd, pool_seg_off(p, p->seg), pool_seg_off(p, (uint32_t)p->fork_seg),
				p->fork_used, p->hdr.seg_size, how, &cloned) == 0) {
			test_point("fork:after-copy");
			return;
		}
		/* give the segment back; the child gets a private copy */
		if (cat_begin(&p->cat, &v) == 0) {
			cat_free_entry(&v.e[p->fork_seg]);
			cat_commit(&p->cat);
		}
		p->fork_seg = -1;
	}
	/* no segment: snapshot the heap for a private child copy */
	int fd = memfd_create("ckpt-fork-snapshot", MFD_CLOEXEC);
	if (fd >= 0) {
		const char *src = p->heap_map.addr;
		uint64_t done = 0;
		if (ftruncate(fd, (off_t)p->hdr.seg_size) == 0) {
			while (done < p->fork_used) {
				ssize_t n = write(fd, src + done, p->fork_used - done);
				if (n <= 0)
					break;
				done += (uint64_t)n;
			}
		}
		if (done == p->fork_used)
			p->fork_memfd = fd;
		else
			close(fd);
	}
}

/* fork_prepare -- pthread_atfork prepare handler */
static void
fork_prepare(void)
{
	pthread_mutex_lock(&registry_mu);
	for (struct ckpt_pool *p = registry; p; p = p->next)
		fork_prepare_pool(p);
}

/* fork_parent -- pthread_atfork parent handler */
static void
fork_parent(void)
{
	for (struct ckpt_pool *p = registry; p; p = p->next) {
		if (p->fork_memfd >= 0)
			close(p->fork_memfd);
		p->fork_memfd = -1;
		p->fork_seg = -1;
		heap_unlock_all(p->heap);
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_unlock(&registry_mu);
}

/* child_die -- the child cannot continue safely: never share the parent's heap */
static void
child_die(struct ckpt_pool *p, const char *what)
{
	char msg[512];
	int n = snprintf(msg, sizeof(msg),
		"libckpt: fork child %d cannot take its own heap of pool %s (%s: %s); "
		"exiting rather than sharing the parent's heap\n",
		(int)getpid(), p->path, what, ckpt_errormsg());
	if (n > 0 && write(2, msg, (size_t)n) < 0)
		n = 0;
	_exit(127);
}

/* child_go_private -- run on a private volatile copy read from fd (memfd) */
static void
child_go_private(struct ckpt_pool *p, int fd)
{
	void *base = (void *)(uintptr_t)p->hdr.base;
	void *m = mmap(base, p->hdr.seg_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_FIXED, fd, 0);
	if (m == MAP_FAILED) {
		ckpt_err_set(errno, "mmap: %s", strerror(errno));
		child_die(p, "private copy");
	}
	close(fd);
	p->heap_map.kind = MAP_KIND_EMULATED;
	p->detached = 1;
}

/* fork_child_pool -- take over the reserved segment in the child */
static void
fork_child_pool(struct ckpt_pool *p)
{
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->cat.mu, NULL);
	if (p->fork_mode == CKPT_FORK_SHARED) {
		owner_self(&p->self);
		heap_after_fork_child(p->heap);
		return;
	}
	if (p->detached) {
		heap_after_fork_child(p->heap);
		return;
	}
	if (owner_self(&p->self) < 0)
		child_die(p, "process identity");
	if (p->fork_seg < 0) {
		if (p->fork_memfd < 0)
			child_die(p, "no segment and no private copy");
		child_go_private(p, p->fork_memfd);
		p->fork_memfd = -1;
		heap_after_fork_child(p->heap);
		return;
	}

	/* a new open file description: the lock and lease become ours */
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", p->fd);
	int fd = open(self, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ckpt_err_set(errno, "reopen: %s", strerror(errno));
		child_die(p, "reopening the pool");
	}
	close(p->fd);
	p->fd = fd;
	p->cat.fd = fd;

	uint32_t parent = p->seg, seg = (uint32_t)p->fork_seg;
	void *base = (void *)(uintptr_t)p->hdr.base;
	struct pmap m;
	if (map_file(&m, fd, pool_seg_off(p, seg), p->hdr.seg_size, base, 1) < 0)
		child_die(p, "mapping its segment");
	p->heap_map = m;
	p->seg = seg;
	p->fork_seg = -1;

	struct cat_view v;
	if (cat_lease_take(fd, seg) < 0 || cat_begin(&p->cat, &v) < 0)
		child_die(p, "claiming its segment");
	struct cat_entry *e = &v.e[seg];
	if (e->state != CAT_BUSY || !(e->flags & CAT_F_FORK_PENDING) || e->parent != parent) {
		cat_end(&p->cat);
		ckpt_err_set(EINVAL, "segment %u is no longer reserved for this child", seg);
		child_die(p, "claiming its segment");
	}
	e->state = CAT_LIVE;
	e->flags = 0;
	e->owner = p->self;
	e->used = p->fork_used;
	e->ckpt_id = 0;
	e->source = CAT_NONE;
	e->time_ns = pool_now_ns();
	if (cat_commit(&p->cat) < 0)
		child_die(p, "claiming its segment");
	heap_after_fork_child(p->heap);
}

/* fork_child -- pthread_atfork child handler */
static void
fork_child(void)
{
	pthread_mutex_init(&registry_mu, NULL);
	for (struct ckpt_pool *p = registry; p; p = p->next)
		fork_child_pool(p);
	test_point("fork:child-ready");
}

static void
atfork_install(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

int
fork_register(struct ckpt_pool *p)
{
	pthread_once(&atfork_once, atfork_install);
	pthread_mutex_lock(&registry_mu);
	p->next = registry;
	registry = p;
	pthread_mutex_unlock(&registry_mu);
	return 0;
}

void
fork_unregister(struct ckpt_pool *p)
{
	pthread_mutex_lock(&registry_mu);
	for (struct ckpt_pool **pp = &registry; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_mu);
}

/* clone_supported -- 1 if the pool's filesystem implements FICLONERANGE */
static int
clone_supported(int fd, uint64_t file_size)
{
	/* a zero-length clone at EOF copies nothing but is refused with
	 * EOPNOTSUPP/EXDEV/EINVAL by filesystems without reflink */
	struct file_clone_range r = {
		.src_fd = fd, .src_offset = file_size, .src_length = 0,
		.dest_offset = file_size,
	};
	return ioctl(fd, FICLONERANGE, &r) == 0;
}

/* parse_mode -- CKPT_FORK_MODE value to enum; -1 if unknown */
static int
parse_mode(const char *s)
{
	static const char *names[] = { "auto", "copy", "reflink", "cow", "shared" };
	for (int i = 0; i < 5; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

int
fork_mode_resolve(struct ckpt_pool *p, enum ckpt_fork_mode mode)
{
	const char *env = getenv("CKPT_FORK_MODE");
	if (env && *env) {
		int m = parse_mode(env);
		if (m < 0)
			return ckpt_err_set(EINVAL,
				"CKPT_FORK_MODE=%s: expected auto, copy, reflink, cow or shared", env);
		mode = (enum ckpt_fork_mode)m;
	}
	int can_clone = clone_supported(p->fd, p->hdr.file_size);
	if (mode == CKPT_FORK_REFLINK && !can_clone)
		return ckpt_err_set(ENOTSUP,
			"fork mode reflink: the filesystem of %s cannot clone file ranges",
			p->path);
	if (mode == CKPT_FORK_COW)
		return ckpt_err_set(ENOTSUP, "fork mode cow is not implemented yet");
	if (mode == CKPT_FORK_AUTO)
		mode = can_clone ? CKPT_FORK_REFLINK : CKPT_FORK_COPY;
	p->fork_mode = mode;
	return 0;
}
