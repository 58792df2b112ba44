/*
 * preload.h -- what the two halves of the preload library share: the pool
 * the process runs on, the guard that keeps libckpt's own allocations out
 * of the pool, and the internal allocator that serves them.
 *
 * preload.c interposes the malloc family and owns start-up, fork, exit and
 * the outside checkpoints; vmem.c interposes anonymous mmap and its
 * relatives, and brk/sbrk (vprot.c remembers the protection of what it
 * serves, reserve.c the address reservations it leaves to the kernel). Both serve the program from the pool once
 * preload_pool is set, and from boot_alloc (static arena, then raw mmap)
 * before that and whenever the calling thread is inside libckpt.
 */
#ifndef CKPT_PRELOAD_H
#define CKPT_PRELOAD_H 1

#include <stddef.h>
#include <stdint.h>

#include "libckpt.h"

#define PRELOAD_API __attribute__((visibility("default")))

/* the pool, once attached (NULL before, and if the program runs without one) */
extern ckpt_pool *preload_pool;
extern uintptr_t preload_base;   /* heap range [preload_base, preload_end) */
extern uintptr_t preload_end;

/* preload_in_lib -- nonzero while this thread runs inside libckpt */
extern __thread int preload_in_lib __attribute__((tls_model("initial-exec")));

/* preload_ready -- 1 if a call by this thread may be served from the pool */
static inline int
preload_ready(void)
{
	return preload_pool != NULL && !preload_in_lib;
}

/* preload_in_heap -- 1 if p is in the pool's heap range */
static inline int
preload_in_heap(const void *p)
{
	return (uintptr_t)p >= preload_base && (uintptr_t)p < preload_end;
}

/* boot_alloc / boot_free / boot_size -- the internal allocator (preload.c) */
void *boot_alloc(size_t size, size_t align);
int boot_owns(const void *p);
void boot_free(void *p);
size_t boot_size(const void *p);

/* vmem_init -- after the pool is attached; vmem_atfork_* around fork (vmem.c) */
void vmem_init(void);
void vmem_atfork_prepare(void);
void vmem_atfork_release(void);
/* vmem_checkpoint_begin / _end -- around a checkpoint made in this process:
 * what the program made unreadable readable for it, then its protections
 * again; vmem_atfork_reveal -- in a background checkpoint's child, with
 * vmem's lock held (between vmem_atfork_prepare and _release) */
void vmem_checkpoint_begin(void);
void vmem_checkpoint_end(void);
void vmem_atfork_reveal(void);
/* vmem_brk_moved -- 1 if the real program break moved since start (raw brk) */
int vmem_brk_moved(void);

/*
 * vprot_* -- the protection of the pool pages vmem.c serves (vprot.c),
 * called with vmem.c's mutex held. vprot_set: mprotect [a, e) to prot and
 * record it (runs merged within [lo, hi), the block's bounds); -1 with
 * errno, nothing changed. vprot_rw: 1 if all of [a, e) is read-write.
 * vprot_at: the protection of the page at a. vprot_zero: memset [a, e)
 * to zero, made writable for the while, its protection given back.
 * vprot_reveal: every page the program made unreadable readable, for a
 * checkpoint (the table unchanged); vprot_apply: every recorded
 * protection given to the kernel again.
 */
int vprot_set(uintptr_t a, uintptr_t e, int prot, uintptr_t lo, uintptr_t hi);
int vprot_rw(uintptr_t a, uintptr_t e);
int vprot_at(uintptr_t a);
void vprot_zero(uintptr_t a, uintptr_t e);
void vprot_reveal(void);
void vprot_apply(void);
size_t vprot_runs(void);        /* how many runs are recorded (tests) */

/* reserve_* -- PROT_NONE reservations and what is committed in them (reserve.c) */
void reserve_note(uintptr_t a, size_t len);
void reserve_forget(uintptr_t a, uintptr_t e);
void reserve_commit(uintptr_t a, size_t len);
void reserve_report(void);
void reserve_atfork_prepare(void);
void reserve_atfork_release(void);

/* raw_mmap / raw_munmap -- the kernel's, bypassing interposition */
void *raw_mmap(void *addr, size_t len, int prot, int flags, int fd, long off);
int raw_munmap(void *addr, size_t len);

#endif
