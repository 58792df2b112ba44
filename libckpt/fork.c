/*
 * fork.c -- what happens to open pools across fork(), and the fork modes.
 *
 * pthread_atfork handlers, registered with the first open pool. Lock order,
 * the same as ckpt_checkpoint's: registry, then per pool its mutex, then
 * every heap lock, then (inside) the catalog lock. Threads allocating at
 * the instant of fork wait in the allocator; their thread records are
 * released in the child (heap_after_fork_child).
 *
 * Young children (format 1.5). A pool the preload library attached with
 * young heaps (young_after_ns, attach.c) reserves a child's segment
 * without a commit: a FREE segment held by the lease on fork_fd alone
 * (seg_take_young), filled as below; the child maps it and runs young,
 * publishing its entry (parent recorded) as attach.c says, or leaving
 * nothing if it execs or ends first. The parent of such a fork is
 * published before it forks (the preload library's prepare handler).
 *
 *  prepare  (parent, before fork): for each pool, hold its mutex and every
 *           heap lock (so the heap bytes are consistent and no thread is
 *           inside the allocator); open a new open file description of the
 *           pool for the child (fork_fd); reserve a segment for the child in
 *           the catalog (BUSY, fork-pending, parent segment recorded) with
 *           its lease taken on fork_fd *before* the reservation is
 *           published; fill it from the parent's heap: a filesystem clone in
 *           reflink mode, a copy in copy mode (segcopy: copy_file_range,
 *           else a pmem memcpy on pmem, else pread/pwrite). Crash points
 *           (testhook.h): fork:before-copy, fork:mid-copy (after the first
 *           chunk), fork:after-copy.
 *  parent   (parent, after fork, whether fork succeeded or not): close the
 *           parent's reference to fork_fd, release the locks. If nobody
 *           holds the reservation's lease any more, no child exists (fork
 *           failed, or it died at once): give the segment back now.
 *  child    (child, after fork): adopt fork_fd as the pool descriptor (the
 *           pool lock and the lease are the child's own, and the lease
 *           already covers the reserved segment), map the reserved segment
 *           over the inherited address range at the same base, claim the
 *           catalog entry (LIVE, child's pid, parent segment, checked to be
 *           the reservation its parent made), reset the heap's per-thread
 *           records.
 *
 * Who holds a reservation is decided by its lease, never by its recorded
 * owner: the parent (through fork_fd) while it fills it, then the child
 * (which inherited fork_fd) until it claims it. The kernel drops the lease
 * when the last holder closes fork_fd, dies or execs, so a reservation
 * whose fork failed, whose parent was killed mid-copy or whose child was
 * killed before claiming reads dead at once and is reclaimed
 * (cat_entry_dead), and one that a child is about to claim is never taken
 * from it, even if the parent dies or closes the pool first.
 *
 * The heap mapping is marked MADV_DONTFORK (all modes but shared): a child
 * made without the atfork handlers (glibc's _Fork, a raw clone) finds
 * nothing at the base instead of silently sharing the parent's heap, and
 * so does a child forked while another thread closes the pool.
 *
 * When no segment can be had (pool full, filesystem full), the child must
 * never share the parent's heap. prepare then snapshots the heap into
 * anonymous private memory (no file descriptor needed: it works when the
 * process has none left) and the child moves that into place at the
 * heap's address (mremap): the child runs on a volatile
 * copy, and every pool call that would need durability fails in it with
 * ENOSPC and a message saying so (see pool_usable). The parent is never
 * affected. If even that is impossible (or the child cannot map or claim
 * its segment), the child writes why to stderr and _exits with 127.
 *
 * vfork() and posix_spawn() run no atfork handlers and share the parent's
 * memory until exec, so they need nothing and reserve nothing. A child that
 * execs drops its close-on-exec descriptor and with it the lease: its
 * segment reads dead.
 *
 * shared mode (unsafe, for comparison): the child keeps the parent's
 * segment; the two processes write one heap. The child still gets its own
 * open file description so the two never share the catalog lock.
 *
 * cow mode (engine/image.c): the heap is a private mapping, so the kernel's
 * copy on write already isolates the child. prepare copies nothing and
 * commits nothing: it reopens the pool for the child and takes a pin lock
 * on the parent's base image on that description (catalog.h, Pins); the
 * child claims a segment itself (child_claim_cow), which pins the image
 * through the catalog, and then drops the lock.
 *
 * Sealed pools: the heap is private memory too (map_sealed_heap), so a fork
 * is a plain fork as in cow mode, with nothing to pin: prepare reopens the
 * pool for the child, and the child claims a segment for its entry (LIVE,
 * in memory; child_claim_memory). Its heap never reaches the file; its
 * checkpoints are sealed with the key it inherited.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fork.h"
#include "owner.h"
#include "segcopy.h"
#include "segment.h"
#include "testhook.h"
#include "engine/image.h"
#include "engine/persist.h"

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ckpt_pool *registry;
static pthread_once_t install_once_flag = PTHREAD_ONCE_INIT;

/* dontfork -- keep the heap mapping out of children made without our handlers */
static void
dontfork(struct ckpt_pool *p)
{
	/* (cow, sealed: the child inherits the private mapping, which is its heap) */
	if (p->fork_mode != CKPT_FORK_SHARED && !pool_heap_in_memory(p) && p->heap_map.addr)
		madvise(p->heap_map.addr, p->heap_map.len, MADV_DONTFORK);
}

/* reopen_pool -- a new open file description of the pool (its own OFD locks) */
static int
reopen_pool(struct ckpt_pool *p)
{
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", p->fd);
	int fd = open(self, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_set(errno, "cannot reopen pool %s for a fork child: %s",
				p->path, strerror(errno));
	return fd;
}

/*
 * reserve_segment -- one catalog transaction: pick a segment for the child,
 * take its lease on fork_fd, record it BUSY fork-pending. The lease is taken
 * under the catalog lock before the commit, so no process ever sees the
 * reservation without a holder. Returns the segment or -1.
 */
static int
reserve_segment(struct ckpt_pool *p)
{
	struct cat_view v;
	uint64_t punch;             /* segcopy punches the whole segment anyway */
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	if (p->young_after_ns && (p->hdr.flags & POOL_F_YOUNG_HEAPS)) {
		/* a young child: held by the lease on fork_fd alone (attach.c) */
		int seg = seg_take_young(p, &v);
		if (seg >= 0 && cat_lease_take(p->fork_fd, (uint32_t)seg) == 0) {
			cat_end(&p->cat);
			p->fork_young = 1;
			return seg;
		}
	}
	int seg = seg_take(p, &v, &punch);
	if (seg < 0 || cat_lease_take(p->fork_fd, (uint32_t)seg) < 0) {
		cat_end(&p->cat);
		return -1;
	}
	struct cat_entry *e = &v.e[seg];
	e->state = CAT_BUSY;
	e->flags = CAT_F_FORK_PENDING;
	e->owner = p->self;
	e->parent = p->seg;
	/* the child's heap is a new life and starts its own lineage */
	e->life = e->lineage = v.h->next_life++;
	e->parent_life = p->life;
	e->time_ns = now_ns();
	if (cat_commit(&p->cat) < 0) {
		cat_lease_drop(p->fork_fd, (uint32_t)seg);
		return -1;
	}
	return seg;
}

/* fill_segment -- make segment seg hold the parent's heap (prefix fork_used) */
static int
fill_segment(struct ckpt_pool *p, uint32_t seg)
{
	int cloned;
	enum segcopy_how how = p->fork_mode == CKPT_FORK_REFLINK ? SEGCOPY_CLONE : SEGCOPY_COPY;
	const struct segcopy_opts o = { .kind = (int)p->heap_map.kind,
		.mid_point = "fork:mid-copy", .keep_rest = p->fork_young };
	return segcopy(p->fd, seg_off(p, p->seg), seg_off(p, seg), p->fork_used,
			p->hdr.seg_size, how, &o, &cloned);
}

/* snapshot_private -- a private copy of the heap's prefix for a child without a segment (map.c) */
static void
snapshot_private(struct ckpt_pool *p)
{
	p->fork_snap = map_snapshot(p->heap_map.addr, p->fork_used, p->hdr.seg_size);
}

/* fork_prepare_pool -- reserve and fill the child's segment, heap locked */
static void
fork_prepare_pool(struct ckpt_pool *p)
{
	p->fork_seg = -1;
	p->fork_snap = NULL;
	p->fork_fd = -1;
	p->fork_young = 0;
	/* the child's segment records ours: a young heap is published first
	 * (a failure leaves it young; the child's record names it anyway) */
	pool_published(p);
	pthread_mutex_lock(&p->mu);
	heap_lock_all(p->heap);
	p->fork_used = heap_high_water(p->heap);
	if (p->detached)
		return;             /* a private copy forks as anonymous memory does */
	p->fork_fd = reopen_pool(p);
	if (p->fork_mode == CKPT_FORK_SHARED)
		return;
	if (p->seal) {
		/* the child's heap is the kernel's copy of ours: nothing to
		 * copy, reserve or pin; the child claims its entry itself */
		snprintf(p->detach_why, sizeof(p->detach_why), "%s",
			p->fork_fd < 0 ? ckpt_errormsg() : "");
		return;
	}
	if (p->eng) {
		/* a lazy restart's holes would be zeros in the child */
		image_settle(p);
		image_persist_before_fork(p);
		/* cow: no copy and no catalog commit in the pause; the child's
		 * base image is pinned on the description it inherits, and the
		 * child chooses its segment itself */
		if (p->fork_fd >= 0 && cat_pin_take(p->fork_fd, p->eng->base_seg) < 0) {
			close(p->fork_fd);
			p->fork_fd = -1;
		}
		snprintf(p->detach_why, sizeof(p->detach_why), "%s",
			p->fork_fd < 0 ? ckpt_errormsg() : "");
		/* no description to pin the base with: the child's unwritten
		 * pages could change under it once the parent recycles that
		 * image, so it gets a private copy, as in the other modes */
		if (p->fork_fd < 0)
			snapshot_private(p);
		return;
	}
	snprintf(p->detach_why, sizeof(p->detach_why), "%s",
		p->fork_fd < 0 ? ckpt_errormsg() : "");
	if (p->fork_fd >= 0) {
		int seg = reserve_segment(p);
		if (seg < 0)
			snprintf(p->detach_why, sizeof(p->detach_why),
				"no segment could be reserved: %s", ckpt_errormsg());
		if (seg >= 0) {
			test_point("fork:before-copy");
			int rc = fill_segment(p, (uint32_t)seg);
			/* a full filesystem: dead heaps go first, then try again */
			if (rc < 0 && errno == ENOSPC && seg_space_freed(p))
				rc = fill_segment(p, (uint32_t)seg);
			if (rc == 0) {
				test_point("fork:after-copy");
				p->fork_seg = seg;
				return;
			}
			/* ENOSPC from the filesystem, an I/O error: give the
			 * segment back (our lease on fork_fd still holds it,
			 * so drop it first); the child gets a private copy */
			snprintf(p->detach_why, sizeof(p->detach_why),
				"filling its segment failed: %s", ckpt_errormsg());
			cat_lease_drop(p->fork_fd, (uint32_t)seg);
			seg_release(p, (uint32_t)seg, SEG_OUR_RESERVATION);
		}
		close(p->fork_fd);
		p->fork_fd = -1;
	}
	/* no segment: snapshot the heap for a private child copy */
	snapshot_private(p);
}

/* fork_prepare -- pthread_atfork prepare handler */
static void
fork_prepare(void)
{
	int saved = errno;
	test_fork_snapshot(1);
	pthread_mutex_lock(&registry_mu);
	for (struct ckpt_pool *p = registry; p; p = p->next)
		fork_prepare_pool(p);
	errno = saved;
}

/* fork_parent_pool -- after fork (or a failed fork) in the parent */
static void
fork_parent_pool(struct ckpt_pool *p)
{
	int seg = p->fork_seg;
	map_snapshot_end(p->fork_snap, p->hdr.seg_size);
	if (p->fork_fd >= 0)
		close(p->fork_fd);  /* the child holds its own reference */
	p->fork_snap = NULL;
	p->fork_fd = -1;
	p->fork_seg = -1;
	heap_unlock_all(p->heap);
	/* one fcntl on the common path; a catalog transaction only when the
	 * reservation is already orphaned: fork failed (EAGAIN, ENOMEM) or the
	 * child died before claiming it */
	if (seg >= 0 && !p->fork_young && !cat_lease_held(p->fd, (uint32_t)seg))
		seg_release(p, (uint32_t)seg, SEG_OUR_RESERVATION);
	p->fork_young = 0;      /* a young hold nobody has left is FREE already */
	pthread_mutex_unlock(&p->mu);
}

/* fork_parent -- pthread_atfork parent handler */
static void
fork_parent(void)
{
	int saved = errno;      /* glibc restores a failed fork's errno; be safe anyway */
	for (struct ckpt_pool *p = registry; p; p = p->next)
		fork_parent_pool(p);
	pthread_mutex_unlock(&registry_mu);
	test_fork_snapshot(0);
	errno = saved;
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

/* child_detach -- run on, volatile, holding none of the parent's descriptors */
static void
child_detach(struct ckpt_pool *p)
{
	p->detached = 1;
	/* its open file description carries the parent's lease, which must
	 * end with the parent (or its exec) */
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->cat.fd = -1;
}

/* child_go_private -- run on the private volatile copy prepare made (fork_snap) */
static void
child_go_private(struct ckpt_pool *p)
{
	void *base = (void *)(uintptr_t)p->hdr.base;
	if (!p->fork_snap)
		child_die(p, "no segment and no private copy");
	if (map_adopt_snapshot(&p->heap_map, p->fork_snap, p->hdr.seg_size, base) < 0)
		child_die(p, "private copy");
	p->fork_snap = NULL;
	child_detach(p);
}

/* adopt_fd -- make fd (the child's own open file description) the pool's descriptor */
static void
adopt_fd(struct ckpt_pool *p, int fd)
{
	close(p->fd);           /* the parent's description stays the parent's */
	p->fd = fd;
	p->cat.fd = fd;
}

/*
 * child_claim_memory -- the entry of a child whose heap is in memory (cow,
 * sealed): one catalog transaction takes a segment (it holds nothing
 * until the child's first checkpoint writes an image elsewhere) and
 * records it LIVE, in memory, naming source (cow: the parent's base image,
 * which the entry now pins; sealed: CAT_NONE). 0, or -1 after marking the
 * child detached: without a segment it runs on, volatile, its inherited
 * description keeping any pin until it exits. (Without a description of
 * its own, fork_child_pool never gets here: see there.)
 */
static int
child_claim_memory(struct ckpt_pool *p, uint32_t parent_seg, uint32_t source)
{
	const uint64_t parent_life = p->life;
	adopt_fd(p, p->fork_fd);
	p->fork_fd = -1;
	test_point("fork:child-before-claim");
	struct cat_view v;
	uint64_t punch;
	int seg = -1;
	if (cat_begin(&p->cat, &v) == 0) {
		seg = seg_take(p, &v, &punch);
		if (seg >= 0 && cat_lease_take(p->fd, (uint32_t)seg) < 0)
			seg = -1;
		if (seg < 0) {
			cat_end(&p->cat);
		} else {
			struct cat_entry *e = &v.e[seg];
			e->state = CAT_LIVE;
			e->flags = CAT_F_IN_MEMORY;
			e->owner = p->self;
			e->parent = parent_seg;
			e->source = source;
			/* the base its persisted pages are tagged with (format
			 * 1.7): the parent's, if the catalog names it */
			if (p->eng && p->eng->persist_ok &&
			    p->hdr.minor >= POOL_MINOR_PERSISTED_PAGES)
				e->base_id = p->eng->base_id;
			e->life = e->lineage = v.h->next_life++;
			e->parent_life = parent_life;
			e->used = p->fork_used;
			e->time_ns = now_ns();
			if (cat_commit(&p->cat) < 0) {
				cat_lease_drop(p->fd, (uint32_t)seg);
				seg = -1;
			} else {
				p->seg = (uint32_t)seg;
				p->life = p->lineage = e->life;
			}
		}
	}
	if (seg < 0) {
		snprintf(p->detach_why, sizeof(p->detach_why),
			"no segment could be had: %s", ckpt_errormsg());
		p->detached = 1;    /* the private mapping is its own copy already */
		return -1;
	}
	return 0;
}

/*
 * child_claim_cow -- a cow child's entry (child_claim_memory) maps the
 * parent's base image, whatever it is (a checkpoint, or the parent's own
 * segment or image); once the entry pins it, the parent's pin lock can go
 */
static void
child_claim_cow(struct ckpt_pool *p, uint32_t parent_seg)
{
	const uint32_t base = p->eng->base_seg;
	image_after_fork_child(p);
	image_persist_after_fork_child(p);
	if (child_claim_memory(p, parent_seg, base) == 0)
		cat_pin_drop(p->fd, base);
}

/* fork_child_pool -- take over the reserved segment in the child */
static void
fork_child_pool(struct ckpt_pool *p)
{
	const struct cat_owner parent = p->self;
	const uint32_t parent_seg = p->seg;
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->cat.mu, NULL);
	if (p->detached) {
		heap_after_fork_child(p->heap);
		return;
	}
	if (p->fork_mode == CKPT_FORK_SHARED) {
		owner_self(&p->self);
		if (p->fork_fd >= 0)
			adopt_fd(p, p->fork_fd);
		p->fork_fd = -1;
		heap_after_fork_child(p->heap);
		return;
	}
	/* sealed, no description of its own (no descriptors left): the
	 * inherited private memory is its own copy already; it runs on it,
	 * volatile, holding nothing of the parent's */
	if (p->seal && p->fork_fd < 0) {
		child_detach(p);
		heap_after_fork_child(p->heap);
		return;
	}
	/* no segment (or, cow, no description to pin the base with): the
	 * private copy prepare made; before anything that needs a descriptor */
	if (p->eng ? p->fork_fd < 0 : !p->seal && p->fork_seg < 0) {
		image_after_fork_child(p);
		image_detach(p);    /* a private copy tracks nothing */
		child_go_private(p);
		heap_after_fork_child(p->heap);
		return;
	}
	if (owner_self(&p->self) < 0)
		child_die(p, "process identity");
	if (p->eng || p->seal) {
		if (p->eng)
			child_claim_cow(p, parent_seg);
		else
			child_claim_memory(p, parent_seg, CAT_NONE);
		heap_after_fork_child(p->heap);
		return;
	}

	/* fork_fd already holds the lease of the reserved segment */
	adopt_fd(p, p->fork_fd);
	p->fork_fd = -1;
	uint32_t seg = (uint32_t)p->fork_seg;
	p->fork_seg = -1;
	test_point("fork:child-before-claim");

	void *base = (void *)(uintptr_t)p->hdr.base;
	struct pmap m;
	if (map_file(&m, p->fd, seg_off(p, seg), p->hdr.seg_size, base, 1) < 0)
		child_die(p, "mapping its segment");
	p->heap_map = m;
	p->seg = seg;
	dontfork(p);
	if (p->fork_young) {
		/* young: no entry until it publishes (attach.c), which records
		 * the parent */
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		p->fork_young = 0;
		p->young_parent = parent_seg;
		p->young_parent_life = p->life;
		p->young_due_ns = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec +
			p->young_after_ns;
		atomic_store(&p->young, 1);
		heap_after_fork_child(p->heap);
		return;
	}

	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		child_die(p, "claiming its segment");
	struct cat_entry *e = &v.e[seg];
	if (e->state != CAT_BUSY || !(e->flags & CAT_F_FORK_PENDING) ||
	    e->parent != parent_seg || !owner_equal(&e->owner, &parent)) {
		cat_end(&p->cat);
		ckpt_err_set(EINVAL, "segment %u is no longer reserved for this child", seg);
		child_die(p, "claiming its segment");
	}
	e->state = CAT_LIVE;
	e->flags = 0;
	e->owner = p->self;
	p->life = e->life;
	p->lineage = e->lineage;
	e->used = p->fork_used;
	e->ckpt_id = 0;
	e->source = CAT_NONE;
	e->time_ns = now_ns();
	if (cat_commit(&p->cat) < 0)
		child_die(p, "claiming its segment");
	heap_after_fork_child(p->heap);
}

/* fork_child -- pthread_atfork child handler */
static void
fork_child(void)
{
	int saved = errno;
	pthread_mutex_init(&registry_mu, NULL);
	for (struct ckpt_pool *p = registry; p; p = p->next)
		fork_child_pool(p);
	test_point("fork:child-ready");
	test_fork_snapshot(0);
	errno = saved;
}

/* fork_unregister -- the close hook: take p out of the registry */
static void
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

static void
install_once(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	pool_on_close(fork_unregister);
}

void
fork_register(struct ckpt_pool *p)
{
	pthread_once(&install_once_flag, install_once);
	dontfork(p);
	pthread_mutex_lock(&registry_mu);
	p->next = registry;
	registry = p;
	pthread_mutex_unlock(&registry_mu);
}

void
fork_close_all(void)
{
	for (;;) {
		pthread_mutex_lock(&registry_mu);
		struct ckpt_pool *p = registry;
		pthread_mutex_unlock(&registry_mu);
		if (!p)
			return;
		ckpt_close(p);      /* unregisters it */
	}
}
