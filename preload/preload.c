/*
 * preload.c -- libckpt-preload.so: an unmodified, dynamically linked
 * program's heap served from a pool, so it can be checkpointed and
 * inspected (ckpt-inspect) after the program exits or dies. Loaded with
 * LD_PRELOAD, normally by ckpt-run(1).
 *
 * This file interposes the malloc family and owns the process's life on
 * the pool; vmem.c interposes anonymous private mmap and its relatives,
 * and brk/sbrk (vprot.c keeps the protections of what it serves).
 *
 * Start-up. The constructor attaches a fresh, empty heap in a new segment
 * of the pool CKPT_POOL (creating the pool with CKPT_HEAP_SIZE if it does
 * not exist) through libckpt's internal hook attach_empty_heap. Before
 * that (the loader, libc and the constructors of libraries that run
 * earlier allocate) and whenever the calling thread is inside libckpt
 * (which allocates for itself: the handle, per-thread records, messages),
 * the program is served by the bootstrap allocator: a bump arena in .bss,
 * then raw mmap for large blocks. Those few blocks are never in the pool;
 * free() recognises them by address and leaves the arena's alone. A
 * process that cannot attach prints why and exits with 127 before main.
 *
 * fork. libckpt's pthread_atfork handlers give the child its own segment
 * (the pool's fork mode). Ours are registered after them, so our prepare
 * runs first (it marks the thread as inside libckpt, so the handlers'
 * allocations go to the bootstrap allocator while the heap is locked, and
 * takes vmem.c's lock) and our parent/child handlers run last. vfork and
 * posix_spawn run no handlers and share the parent's memory until exec.
 *
 * exec. The pool's descriptor is close-on-exec, so the old image's
 * segment reads dead at once; the new image inherits LD_PRELOAD and
 * CKPT_POOL and attaches a fresh heap of its own in the same pool (a
 * program that clears them runs without the pool).
 *
 * Young heaps. The heap starts young (attach.c, pool format 1.5): held by
 * the process's lease, not in the catalog, so a process that lives
 * milliseconds pays no durable commit. libckpt publishes it before a fork
 * or a checkpoint, and as it grows after CKPT_RUN_DURABLE_AFTER ms
 * (default 200; 0: at start). Fork children start young too.
 *
 * exit. The segment is never closed: when a published process ends,
 * however it ends, its heap stays in the pool as a dead segment for
 * inspection (until a later process needs the segment); one that ends
 * young leaves a free segment. With CKPT_RUN_ON_EXIT=checkpoint, an
 * exit() of the process ckpt-run started (CKPT_RUN_PID) first takes a
 * checkpoint labelled "exit".
 *
 * Outside checkpoints. CKPT_RUN_CHECKPOINT_EVERY=SECS and
 * CKPT_RUN_CHECKPOINT_ON=SIGNUM start, in the process ckpt-run started, a
 * thread that takes a background checkpoint (ckpt_checkpoint_background:
 * a fork child checkpoints the heap as it was at the fork, while the
 * program runs on) every SECS seconds and whenever SIGNUM arrives (its
 * handler only writes a byte to a pipe). Labels: "periodic", "signal".
 * In fork mode cow and in a sealed pool a checkpoint reads the heap's
 * memory, pages the program made PROT_NONE too: the exit checkpoint makes
 * them readable for its while (vprot.c), a background checkpoint's child
 * in its own copy (our child handler: a fork made inside libckpt).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach.h"
#include "config.h"
#include "preload.h"

ckpt_pool *preload_pool;
uintptr_t preload_base, preload_end;
__thread int preload_in_lib __attribute__((tls_model("initial-exec")));

#define PAGE 4096UL
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uintptr_t)(a) - 1))

/* ---- the bootstrap allocator ---- */

#define BOOT_ARENA (4UL << 20)          /* bytes of the .bss arena */
#define BOOT_BIG (64UL << 10)           /* larger blocks get a mapping of their own */
#define BOOT_MAGIC 0x63b00710ca7ab1e5ULL

static char boot_arena[BOOT_ARENA] __attribute__((aligned(4096)));
static _Atomic size_t boot_top;

/* a block's header, just before it: its size and, for a mapping, the magic */
struct boot_hdr {
	uint64_t size;
	uint64_t magic;
};

void *
raw_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int
raw_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

/* boot_alloc -- size bytes aligned to align (a power of two), zeroed; NULL */
void *
boot_alloc(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	if (size > SIZE_MAX / 2 || align > PAGE)
		return errno = ENOMEM, NULL;
	if (size < BOOT_BIG) {
		size_t top = atomic_load(&boot_top);
		for (;;) {
			uintptr_t p = ALIGN_UP((uintptr_t)boot_arena + top + sizeof(struct boot_hdr),
					align);
			size_t ntop = p + size - (uintptr_t)boot_arena;
			if (ntop > BOOT_ARENA)
				break;
			if (atomic_compare_exchange_weak(&boot_top, &top, ntop)) {
				((struct boot_hdr *)p)[-1].size = size;
				return (void *)p;
			}
		}
	}
	/* own mapping: the header at the page's start, the block 16 bytes in */
	size_t len = ALIGN_UP(size + sizeof(struct boot_hdr), PAGE);
	void *m = raw_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((long)m < 0 && (long)m > -4096)
		return errno = ENOMEM, NULL;
	struct boot_hdr *h = m;
	h->size = size;
	h->magic = BOOT_MAGIC;
	return h + 1;
}

/* boot_owns -- 1 if p is a block of the bootstrap allocator */
int
boot_owns(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (a >= (uintptr_t)boot_arena && a < (uintptr_t)boot_arena + BOOT_ARENA)
		return 1;
	return (a & (PAGE - 1)) == sizeof(struct boot_hdr) &&
		((const struct boot_hdr *)p)[-1].magic == BOOT_MAGIC;
}

size_t
boot_size(const void *p)
{
	return ((const struct boot_hdr *)p)[-1].size;
}

/* boot_free -- give back a mapping; arena blocks stay (there are few) */
void
boot_free(void *p)
{
	uintptr_t a = (uintptr_t)p;
	if (a >= (uintptr_t)boot_arena && a < (uintptr_t)boot_arena + BOOT_ARENA)
		return;
	struct boot_hdr *h = (struct boot_hdr *)p - 1;
	h->magic = 0;
	raw_munmap(h, ALIGN_UP(h->size + sizeof(*h), PAGE));
}

/* ---- the malloc family ---- */

/* from_pool -- size bytes aligned to align from the pool (align 0: malloc's) */
static void *
from_pool(size_t align, size_t size, int zero)
{
	preload_in_lib = 1;
	void *r = zero ? ckpt_calloc(preload_pool, 1, size) : align ?
		ckpt_aligned_alloc(preload_pool, align, size) :
		ckpt_alloc(preload_pool, size);
	preload_in_lib = 0;
	if (!r)
		errno = ENOMEM;
	return r;
}

/* any_alloc -- the one allocation path of the family */
static void *
any_alloc(size_t align, size_t size, int zero)
{
	if (preload_ready())
		return from_pool(align, size, zero);
	return boot_alloc(size, align);  /* zeroed: the arena is never reused */
}

/*
 * malloc and free are any_alloc's and the heap branch of free written out
 * for their hot path alone, the rest out of line (cold), so that the path
 * of a program that allocates a lot saves as few registers as it can:
 * redis-server pays these wrappers on every call (docs/BENCHMARKS.md,
 * "Where redis-server's time goes under ckpt-run").
 */

/* boot_malloc -- malloc before the pool is attached, or inside libckpt */
static void * __attribute__((noinline, cold))
boot_malloc(size_t size)
{
	return boot_alloc(size, 0);
}

/* no_memory -- a failed allocation from the pool: NULL, errno ENOMEM */
static void * __attribute__((noinline, cold))
no_memory(void)
{
	errno = ENOMEM;
	return NULL;
}

PRELOAD_API void *
malloc(size_t size)
{
	ckpt_pool *p = preload_pool;
	if (CKPT_UNLIKELY(!p || preload_in_lib))
		return boot_malloc(size);
	preload_in_lib = 1;
	void *r = ckpt_alloc(p, size);
	preload_in_lib = 0;
	if (CKPT_UNLIKELY(!r))
		return no_memory();
	return r;
}

/* free_in_heap -- free of a block in the heap's range; errno kept. The
 * thread is marked inside libckpt by a count, not a saved value (free may
 * come while it is marked already: a program's atfork handler), so that
 * one register less lives across the call. */
static void
free_in_heap(void *ptr)
{
	int *e = &errno;
	int saved = *e;
	preload_in_lib++;
	ckpt_free(preload_pool, ptr);
	preload_in_lib--;
	*e = saved;
}

/* free_other -- free of anything else: a bootstrap block, or the loader's */
static void __attribute__((noinline, cold))
free_other(void *ptr)
{
	int saved = errno;
	if (boot_owns(ptr))
		boot_free(ptr);
	/* else: the loader's own early blocks; never ours to give back */
	errno = saved;
}

PRELOAD_API void
free(void *ptr)
{
	if (CKPT_LIKELY(preload_in_heap(ptr)))
		free_in_heap(ptr);
	else if (ptr)
		free_other(ptr);
}

PRELOAD_API void *
calloc(size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n))
		return errno = ENOMEM, NULL;
	return any_alloc(0, n, 1);
}

/*
 * usable -- bytes usable at ptr, 0 if it is not a block we know. Unlike
 * the other calls into libckpt it does not mark the thread inside the
 * library: the heap's path (attach_usable_size, heap_block_size and its
 * error path) allocates nothing (a message goes to error.c's fixed
 * buffer) and takes no lock but heap_slab_validate's leaf mutex, so no
 * malloc can come back into the preload library from it. Without the
 * mark it is a tail call: redis-server calls malloc_usable_size on every
 * allocation and free (docs/BENCHMARKS.md, "Where redis-server's time
 * goes under ckpt-run").
 */
static inline size_t
usable(const void *ptr)
{
	if (preload_in_heap(ptr))
		return attach_usable_size(preload_pool, ptr);
	return boot_owns(ptr) ? boot_size(ptr) : 0;
}

PRELOAD_API void *
realloc(void *ptr, size_t size)
{
	if (!ptr)
		return malloc(size);
	if (size == 0) {
		free(ptr);
		return NULL;
	}
	if (preload_in_heap(ptr) && preload_ready()) {
		preload_in_lib = 1;
		void *r = ckpt_realloc(preload_pool, ptr, size);
		preload_in_lib = 0;
		if (!r)
			errno = ENOMEM;
		return r;
	}
	size_t old = usable(ptr);
	void *r = malloc(size);
	if (r) {
		memcpy(r, ptr, old < size ? old : size);
		free(ptr);
	}
	return r;
}

PRELOAD_API void *
reallocarray(void *ptr, size_t nmemb, size_t size)
{
	size_t n;
	if (__builtin_mul_overflow(nmemb, size, &n))
		return errno = ENOMEM, NULL;
	return realloc(ptr, n);
}

PRELOAD_API int
posix_memalign(void **memptr, size_t alignment, size_t size)
{
	if (alignment < sizeof(void *) || (alignment & (alignment - 1)))
		return EINVAL;
	int saved = errno;
	void *r = any_alloc(alignment, size ? size : 1, 0);
	if (!r)
		return ENOMEM;
	errno = saved;
	*memptr = r;
	return 0;
}

PRELOAD_API void *
aligned_alloc(size_t alignment, size_t size)
{
	if (alignment == 0 || (alignment & (alignment - 1)))
		return errno = EINVAL, NULL;
	return any_alloc(alignment < 16 ? 16 : alignment, size, 0);
}

PRELOAD_API void *
memalign(size_t alignment, size_t size)
{
	return aligned_alloc(alignment, size);
}

PRELOAD_API void *
valloc(size_t size)
{
	return any_alloc(PAGE, size, 0);
}

PRELOAD_API void *
pvalloc(size_t size)
{
	return any_alloc(PAGE, ALIGN_UP(size ? size : 1, PAGE), 0);
}

PRELOAD_API size_t
malloc_usable_size(void *ptr)
{
	return ptr ? usable(ptr) : 0;
}

/* ---- life on the pool ---- */

static pid_t main_pid;          /* the process ckpt-run started, or 0 */
static int wake_fd[2] = { -1, -1 };

/* die -- before main: say why the program cannot run on the pool, exit 127 */
static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(2, buf, (size_t)n) < 0) {
		/* nothing more to say */
	}
	_exit(127);
}

/* durable_after -- CKPT_RUN_DURABLE_AFTER: ms a heap may stay young (default 200; 0: never) */
static uint64_t
durable_after_ns(void)
{
	const char *v = getenv("CKPT_RUN_DURABLE_AFTER");
	if (!v || !*v)
		return 200 * 1000000ull;
	char *end;
	errno = 0;
	unsigned long long ms = strtoull(v, &end, 10);
	if (errno || *end || v[0] == '-' || ms > 86400000ull)
		die("libckpt-preload: CKPT_RUN_DURABLE_AFTER=%s: not a number of milliseconds "
		    "(0 to 86400000)", v);
	return ms * 1000000ull;
}

/* attach -- the heap of this process image: a new segment of pool path */
static ckpt_pool *
attach(const char *path)
{
	uint64_t after = durable_after_ns();
	ckpt_pool *p = attach_empty_heap(path, NULL, after);
	if (p || errno != ENOENT)
		return p;
	struct ckpt_config cfg = { 0 };
	const char *hs = getenv("CKPT_HEAP_SIZE");
	if (hs && *hs) {
		uint64_t n;
		if (config_parse_size(hs, &n) < 0) {
			ckpt_err_prefix("CKPT_HEAP_SIZE: ");
			return NULL;
		}
		cfg.heap_size = n;
	}
	p = ckpt_create(path, &cfg);
	if (!p && errno == EEXIST)      /* another process created it first */
		p = attach_empty_heap(path, NULL, after);
	return p;
}

static __thread int fork_saved_in_lib __attribute__((tls_model("initial-exec")));

/* say -- one line on stderr: "libckpt-preload: what: the library's message" */
static void
say(const char *what)
{
	char buf[320];
	int n = snprintf(buf, sizeof(buf), "libckpt-preload: %s: %s\n", what, ckpt_errormsg());
	if (n > 0 && write(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1) < 0) {
		/* stderr is gone */
	}
}

/* atfork_prepare -- the forking thread is inside libckpt until the fork is done */
static void
atfork_prepare(void)
{
	vmem_atfork_prepare();
	reserve_atfork_prepare();
	fork_saved_in_lib = preload_in_lib;
	preload_in_lib = 1;
}

/* atfork_release -- parent and child: back to what the thread was */
static void
atfork_release(void)
{
	preload_in_lib = fork_saved_in_lib;
	reserve_atfork_release();
	vmem_atfork_release();
}

/* atfork_child -- the child: a background checkpoint's (forked inside
 * libckpt) reads the heap, the pages the program made unreadable too */
static void
atfork_child(void)
{
	if (fork_saved_in_lib)
		vmem_atfork_reveal();
	atfork_release();
}

/* checkpoint_now -- a checkpoint labelled label, in this thread */
static void
checkpoint_now(const char *label)
{
	int was = preload_in_lib;
	preload_in_lib = 1;
	vmem_checkpoint_begin();
	int rc = ckpt_checkpoint(preload_pool, label, NULL);
	vmem_checkpoint_end();
	if (rc < 0) {
		char what[96];
		snprintf(what, sizeof(what), "checkpoint '%s' failed", label);
		say(what);
	}
	preload_in_lib = was;
}

/* at_exit -- exit(): the final checkpoint when asked; a raw brk and memory
 * committed in PROT_NONE reservations reported */
static void
at_exit(void)
{
	if (getpid() != main_pid)
		return;
	if (vmem_brk_moved()) {
		static const char m[] = "libckpt-preload: the program moved its break with a raw "
			"brk system call; that memory is not in the pool\n";
		if (write(2, m, sizeof(m) - 1) < 0) {
			/* stderr is gone */
		}
	}
	reserve_report();
	const char *v = getenv("CKPT_RUN_ON_EXIT");
	if (v && strcmp(v, "checkpoint") == 0)
		checkpoint_now("exit");
}

static void
on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;
	if (write(wake_fd[1], &c, 1) < 0) {
		/* a wake-up is already pending */
	}
	errno = saved;
}

/* checkpointer -- the thread of outside checkpoints (every secs ms, or on a signal) */
static void *
checkpointer(void *arg)
{
	long ms = (long)(intptr_t)arg;
	preload_in_lib = 1;     /* this thread allocates only for libckpt */
	/* libckpt's name for it: a cow checkpoint does not count it among the
	 * program's threads (it stores nothing into the heap) */
	prctl(PR_SET_NAME, "ckpt-run-ckpt", 0, 0, 0);
	for (;;) {
		struct pollfd pfd = { .fd = wake_fd[0], .events = POLLIN };
		int n = poll(&pfd, 1, ms > 0 ? (int)ms : -1);
		if (n < 0 && errno == EINTR)
			continue;
		const char *label = "periodic";
		if (n > 0) {
			char buf[64];
			if (read(wake_fd[0], buf, sizeof(buf)) <= 0)
				continue;
			label = "signal";
		}
		pid_t pid = ckpt_checkpoint_background(preload_pool, label);
		if (pid < 0 || ckpt_checkpoint_wait(preload_pool, pid, NULL, 0) < 0) {
			char what[96];
			snprintf(what, sizeof(what), "checkpoint '%s' failed", label);
			say(what);
		}
	}
	return NULL;
}

/* start_checkpointer -- CKPT_RUN_CHECKPOINT_EVERY / _ON, for the main process */
static void
start_checkpointer(void)
{
	const char *every = getenv("CKPT_RUN_CHECKPOINT_EVERY");
	const char *on = getenv("CKPT_RUN_CHECKPOINT_ON");
	long secs = every && *every ? atol(every) : 0;
	int sig = on && *on ? atoi(on) : 0;
	if (secs <= 0 && sig <= 0)
		return;
	if (pipe2(wake_fd, O_CLOEXEC | O_NONBLOCK) < 0)
		die("libckpt-preload: cannot make a pipe: %s", strerror(errno));
	if (sig > 0) {
		struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
		sigemptyset(&sa.sa_mask);
		if (sigaction(sig, &sa, NULL) < 0)
			die("libckpt-preload: cannot catch signal %d: %s", sig, strerror(errno));
	}
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	/* the thread keeps signals to the program's threads */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&t, &a, checkpointer, (void *)(intptr_t)(secs * 1000));
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	if (rc)
		die("libckpt-preload: cannot start the checkpoint thread: %s", strerror(rc));
}

/* preload_start -- attach the heap before the program's main */
__attribute__((constructor(101))) static void
preload_start(void)
{
	const char *path = getenv("CKPT_POOL");
	if (!path || !*path)
		die("libckpt-preload: CKPT_POOL is not set: no pool to run the program on "
		    "(use ckpt-run, or set CKPT_POOL)");
	preload_in_lib = 1;
	ckpt_pool *p = attach(path);
	preload_in_lib = 0;
	if (!p)
		die("libckpt-preload: cannot run on pool %s: %s", path, ckpt_errormsg());
	uintptr_t base;
	size_t size;
	attach_heap_range(p, &base, &size);
	preload_base = base;
	preload_end = base + size;
	preload_pool = p;
	vmem_init();
	/* after libckpt's handlers: our prepare runs before theirs, our child after */
	pthread_atfork(atfork_prepare, atfork_release, atfork_child);
	const char *mp = getenv("CKPT_RUN_PID");
	main_pid = mp && *mp ? (pid_t)atol(mp) : getpid();
	if (getpid() == main_pid) {
		atexit(at_exit);
		start_checkpointer();
	}
}
