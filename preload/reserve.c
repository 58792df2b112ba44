/*
 * reserve.c -- address reservations: PROT_NONE memory the program commits
 * later, outside the pool, counted so that the exit can say so.
 *
 * An anonymous private mmap with PROT_NONE reserves addresses, not memory
 * (a garbage collector's or a JIT's arena, a thread pool's stacks-to-be).
 * vmem.c leaves it to the kernel: serving it from the pool would take pool
 * space for nothing, and a reservation can be far larger than the heap.
 * The program commits parts of it later, with mprotect or with a MAP_FIXED
 * anonymous mmap inside it, and those bytes are ordinary memory of the
 * program that is not in the pool: not checkpointed, not in the dead heap.
 * That is a documented limitation; this file makes it visible instead of
 * silent.
 *
 * The reservations are kept in a small fixed table (no allocation: this
 * runs inside mmap). reserve_note() records one when vmem.c passes a
 * PROT_NONE mapping to the kernel, reserve_forget() trims or drops it on
 * munmap, reserve_commit() adds the bytes of a commit that falls inside
 * one, and reserve_report() writes one line to stderr at exit when any was
 * committed. Thread stacks (MAP_STACK) are not recorded: glibc reserves
 * them with PROT_NONE and commits all but the guard page, which is the
 * kernel's business. When the table is full, further reservations are not
 * recorded and the report says that the count may be short.
 *
 * The table has its own mutex, taken around fork by reserve_atfork_*() so
 * that a child never inherits it held.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "preload.h"

#define NRES 64

struct resv {
	uintptr_t start, end;   /* [start, end), page-aligned; end == 0: unused */
};

static pthread_mutex_t rmu = PTHREAD_MUTEX_INITIALIZER;
static struct resv res[NRES];
static int res_full;                        /* a reservation went unrecorded */
static _Atomic uint64_t committed_bytes;
static _Atomic uint64_t committed_calls;

/* reserve_note -- [a, a + len) was just mapped PROT_NONE, anonymous, private */
void
reserve_note(uintptr_t a, size_t len)
{
	pthread_mutex_lock(&rmu);
	int i;
	for (i = 0; i < NRES && res[i].end; i++)
		;
	if (i < NRES)
		res[i] = (struct resv){ a, a + len };
	else
		res_full = 1;
	pthread_mutex_unlock(&rmu);
}

/* reserve_forget -- [a, e) was unmapped: drop or trim the reservations it meets */
void
reserve_forget(uintptr_t a, uintptr_t e)
{
	pthread_mutex_lock(&rmu);
	for (int i = 0; i < NRES; i++) {
		struct resv *r = &res[i];
		if (!r->end || e <= r->start || a >= r->end)
			continue;
		if (a <= r->start && e >= r->end)
			*r = (struct resv){ 0, 0 };
		else if (a <= r->start)
			r->start = e;
		else if (e >= r->end)
			r->end = a;
		/* a hole in the middle: the reservation is kept whole */
	}
	pthread_mutex_unlock(&rmu);
}

/* reserve_commit -- [a, a + len) became accessible outside the pool: count
 * the bytes of it that lie in a reservation */
void
reserve_commit(uintptr_t a, size_t len)
{
	uintptr_t e = a + len;
	uint64_t n = 0;
	pthread_mutex_lock(&rmu);
	for (int i = 0; i < NRES; i++) {
		const struct resv *r = &res[i];
		if (!r->end || e <= r->start || a >= r->end)
			continue;
		uintptr_t lo = a > r->start ? a : r->start;
		uintptr_t hi = e < r->end ? e : r->end;
		n += hi - lo;
	}
	pthread_mutex_unlock(&rmu);
	if (n) {
		atomic_fetch_add_explicit(&committed_bytes, n, memory_order_relaxed);
		atomic_fetch_add_explicit(&committed_calls, 1, memory_order_relaxed);
	}
}

/* reserve_report -- at exit: one line on stderr if reserved memory was committed */
void
reserve_report(void)
{
	uint64_t n = atomic_load_explicit(&committed_bytes, memory_order_relaxed);
	if (!n)
		return;
	char buf[320];
	int len = snprintf(buf, sizeof(buf),
		"libckpt-preload: the program committed %llu KiB in %llu calls inside PROT_NONE "
		"address reservations (mprotect or MAP_FIXED mmap); that memory is not in the "
		"pool%s\n", (unsigned long long)(n >> 10),
		(unsigned long long)atomic_load_explicit(&committed_calls, memory_order_relaxed),
		res_full ? " (more reservations than were tracked: the count may be short)" : "");
	if (len > 0 && write(2, buf, (size_t)len < sizeof(buf) ? (size_t)len : sizeof(buf) - 1) < 0) {
		/* stderr is gone */
	}
}

/* reserve_atfork_prepare / reserve_atfork_release -- the table's mutex around fork */
void
reserve_atfork_prepare(void)
{
	pthread_mutex_lock(&rmu);
}

void
reserve_atfork_release(void)
{
	pthread_mutex_unlock(&rmu);
}
