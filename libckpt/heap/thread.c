/*
 * heap/thread.c -- thread slots and quiescing. A thread that first uses a
 * heap claims one of its 127 own slots (slot 0 is shared, under a mutex, by
 * any threads beyond), remembered in a pthread key (its destructor hands
 * the slot's slabs back at thread exit) and cached in the thread-local
 * heap_tl for the fast paths.
 *
 * Every operation runs inside a busy section of its slot (a DRAM flag).
 * heap_lock_all sets stop, makes the busy stores visible (membarrier, so
 * the fast paths need only a compiler barrier), and waits until no slot is
 * busy: the segment is then consistent and may be copied (checkpoint,
 * fork). Threads that see stop sleep until heap_unlock_all. A fork child
 * keeps the forking thread's slot and releases every other.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "heap/private.h"

__thread struct tl_ent heap_tl __attribute__((tls_model("initial-exec")));
static _Atomic uint64_t heap_ids;

/* heap_busy_wait -- stop is set: step out, sleep until heap_unlock_all, step back in */
void __attribute__((noinline))
heap_busy_wait(struct heap *h, struct tslot *ts, uint32_t slot)
{
	if (atomic_load(&h->stopper) == (void *)&heap_tl)
		return;         /* the thread holding heap_lock_all may use the heap */
	do {
		atomic_store_explicit(&h->busy[slot].v, 0, memory_order_release);
		if (slot == 0)
			pthread_mutex_unlock(&h->shared_mx);
		pthread_mutex_lock(&h->wait_mx);
		while (atomic_load_explicit(&h->stop, RELAXED))
			pthread_cond_wait(&h->wait_cv, &h->wait_mx);
		pthread_mutex_unlock(&h->wait_mx);
		if (slot == 0)
			pthread_mutex_lock(&h->shared_mx);
		atomic_store_explicit(&h->busy[slot].v, 1, RELAXED);
		busy_fence(h);
	} while (atomic_load_explicit(&h->stop, RELAXED));
}


/*
 * orphan_claim -- take over an orphan slot with its lists as they are (its
 * list heads checked first: a damaged one is never taken); NSLOTS if none
 */
static uint32_t
orphan_claim(struct heap *h)
{
	for (uint32_t i = 1; i < NSLOTS; i++) {
		uint8_t one = 1;
		if (atomic_load_explicit(&h->orphan[i], RELAXED) != 1 ||
		    !atomic_compare_exchange_strong(&h->orphan[i], &one, 0))
			continue;
		atomic_fetch_sub(&h->norphans, 1);
		int saved = errno;
		int ok = heap_heads_check(h, i) == 0;
		errno = saved;
		if (ok)
			return i;
		atomic_store(&h->orphan[i], 2);
	}
	return NSLOTS;
}

/* heap_tl_lookup -- find or claim the calling thread's slot in h (an orphan
 * first: see heap/attach.c); fills heap_tl */
void __attribute__((noinline))
heap_tl_lookup(struct heap *h)
{
	struct tl_rec *r = h->key_ok ? pthread_getspecific(h->key) : NULL;
	if (!r) {
		uint32_t i = atomic_load_explicit(&h->norphans, RELAXED) ? orphan_claim(h) : NSLOTS;
		int orphan = i < NSLOTS;
		for (uint32_t j = 1; j < NSLOTS && i == NSLOTS; j++) {
			uint32_t exp = 0;
			if (atomic_load_explicit(&h->slots[j].state, RELAXED) == 0 &&
			    atomic_compare_exchange_strong(&h->slots[j].state, &exp, 1))
				i = j;
		}
		if (i == NSLOTS)
			i = 0;
		r = &h->recs[i];
		if (h->key_ok && pthread_setspecific(h->key, r) != 0 && i != 0) {
			/* no key: the slot goes back as it was; the thread shares slot 0 */
			if (orphan) {
				atomic_store(&h->orphan[i], 1);
				atomic_fetch_add(&h->norphans, 1);
			} else {
				atomic_store_explicit(&h->slots[i].state, 0, memory_order_release);
			}
			r = &h->recs[0];
		}
	}
	heap_tl.hid = h->hid;
	heap_tl.fhid = r->slot ? h->hid : 0;
	heap_tl.busy = &h->busy[r->slot].v;
	heap_tl.ts = &h->slots[r->slot];
	heap_tl.tc = &h->tc[r->slot];
	heap_tl.slot = r->slot;
	heap_tl.own = r->slot + 1;
}

/* op_enter -- the calling thread's slot, marked busy; *slot set */

/* membarrier_ok -- register for expedited membarrier; 0 if usable */
static int
membarrier_ok(void)
{
	return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 ? 0 : -1;
}

/* stop_world -- set stop and wait until no slot but skip is busy (locker held) */
static void
stop_world(struct heap *h, uint32_t skip)
{
	pthread_mutex_lock(&h->wait_mx);
	atomic_store(&h->stop, 1);
	atomic_store(&h->gate, 1u | (uint32_t)h->fence << 1);
	pthread_mutex_unlock(&h->wait_mx);
	if (h->fence || syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
		atomic_thread_fence(memory_order_seq_cst);
	for (uint32_t i = 0; i < NSLOTS; i++)
		while (i != skip && atomic_load_explicit(&h->busy[i].v, memory_order_acquire))
			sched_yield();
}

/*
 * heap_stop_others -- heap_lock_all for a thread inside a busy section of
 * slot me, which it keeps: 1 if no other thread is inside the heap now
 * (until heap_unlock_all; the front caches are not drained), 0 if another
 * thread stops the world already (nothing done)
 */
int
heap_stop_others(struct heap *h, uint32_t me)
{
	uint32_t z = 0;
	if (!atomic_compare_exchange_strong(&h->locker, &z, 1))
		return 0;
	stop_world(h, me);
	return 1;
}

/*
 * heap_lock_all -- stop the world for this heap. Sets stop, then makes every
 * thread's busy store visible (membarrier: a full barrier on every running
 * thread, so the fast path needs only a compiler barrier between its busy
 * store and its stop load), then waits until no slot is busy. Threads that
 * see stop step out and sleep on wait_cv. No thread is then inside the heap
 * and none holds heap.lock (it is only taken inside busy sections); every
 * front cache is then drained into its slabs, so the segment is exact. The
 * calling thread itself may go on using the heap (fork handlers that
 * allocate do not deadlock); the copy is consistent only if it does not.
 */
void
heap_lock_all(struct heap *h)
{
	uint32_t z = 0;
	while (!atomic_compare_exchange_weak(&h->locker, &z, 1)) {
		z = 0;
		sched_yield();      /* a heap_steal_idle: a few microseconds */
	}
	stop_world(h, NSLOTS);
	/* no thread is inside the heap, none goes in while stop is set: the
	 * front caches go back to their slabs and stay empty until unlock */
	heap_tc_drain_all(h);
	atomic_store(&h->stopper, (void *)&heap_tl);
}

/* heap_unlock_all -- let the threads stopped by heap_lock_all go on */
void
heap_unlock_all(struct heap *h)
{
	atomic_store(&h->stopper, NULL);
	pthread_mutex_lock(&h->wait_mx);
	atomic_store(&h->stop, 0);
	atomic_store(&h->gate, (uint32_t)h->fence << 1);
	pthread_cond_broadcast(&h->wait_cv);
	pthread_mutex_unlock(&h->wait_mx);
	atomic_store(&h->locker, 0);
}

/* locks_init -- (re)initialise the DRAM locks */
static void
locks_init(struct heap *h)
{
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->shared_mx, NULL);
	pthread_mutex_init(&h->wait_mx, NULL);
	pthread_mutex_init(&h->vmx, NULL);
	pthread_cond_init(&h->wait_cv, NULL);
}

/* heap_after_fork_child -- in the fork child: new locks, keep the forking
 * thread's slot; the others' threads did not survive: their slots become
 * orphans, taken over by the child's new threads with their lists */
void
heap_after_fork_child(struct heap *h)
{
	locks_init(h);
	if (!h->fence && membarrier_ok() < 0)
		h->fence = 1;
	/* the forking thread keeps its slot; its pthread key says which (heap_tl
	 * only describes the heap it used last, maybe another pool's) */
	struct tl_rec *r = h->key_ok ? pthread_getspecific(h->key) : NULL;
	uint32_t me = r ? r->slot : NSLOTS, n = 0;
	uint32_t slabbed = 0;
	for (uint32_t i = 1; i < NSLOTS; i++) {
		if (i != me && atomic_load(&h->slots[i].state) &&
		    atomic_load(&h->orphan[i]) != 2)
			atomic_store(&h->orphan[i], 1);
		n += atomic_load(&h->orphan[i]) == 1;
		/* an orphan has had no slab in this process: a steal leaves it
		 * alone while a new thread takes it over (orphan_claim reads its
		 * lists outside a busy section) */
		if (i != me)
			__atomic_store_n(&h->slabbed[i], 0, __ATOMIC_RELAXED);
		slabbed += h->slabbed[i];
	}
	atomic_store(&h->norphans, n);
	atomic_store(&h->nslabbed, slabbed + h->slabbed[0]);
	atomic_store(&h->stopper, NULL);
	atomic_store(&h->stop, 0);
	atomic_store(&h->gate, (uint32_t)h->fence << 1);
	atomic_store(&h->locker, 0);
}


static void
tl_destructor(void *v)
{
	struct tl_rec *r = v;
	struct heap *h = r->h;
	if (r->slot == 0)
		return;
	struct tslot *ts = &h->slots[r->slot];
	busy_enter(h, ts, r->slot);
	int ok = heap_slot_release(h, r->slot) == 0;
	busy_leave(h, ts, r->slot);
	if (ok)
		atomic_store_explicit(&ts->state, 0, memory_order_release);
	else
		atomic_store(&h->orphan[r->slot], 2);   /* a damaged slab stays where it is */
	if (heap_tl.hid == h->hid)
		heap_tl.hid = heap_tl.fhid = 0;
}

/* heap_threads_init -- the DRAM side of a new handle: id, fence mode, locks, slot records, key */
void
heap_threads_init(struct heap *h)
{
	h->hid = atomic_fetch_add(&heap_ids, 1) + 1;
	h->fence = membarrier_ok() < 0;
	atomic_store(&h->gate, (uint32_t)h->fence << 1);
	locks_init(h);
	for (uint32_t i = 0; i < NSLOTS; i++) {
		h->recs[i].h = h;
		h->recs[i].slot = i;
	}
	h->key_ok = pthread_key_create(&h->key, tl_destructor) == 0;
}

/* heap_threads_fini -- forget the handle's key, cache entry and locks */
void
heap_threads_fini(struct heap *h)
{
	if (h->key_ok)
		pthread_key_delete(h->key);
	if (heap_tl.hid == h->hid)
		heap_tl.hid = heap_tl.fhid = 0;
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->shared_mx);
	pthread_mutex_destroy(&h->wait_mx);
	pthread_mutex_destroy(&h->vmx);
	pthread_cond_destroy(&h->wait_cv);
}
