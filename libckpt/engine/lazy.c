/*
 * lazy.c -- the lazy restart: a heap that is ready at once and whose
 * every chunk is verified against its page sums before the program sees it.
 *
 * A cow restart maps its checkpoint image privately as the heap
 * (image.c). Verifying the whole image first costs a full read of it
 * (about 50-60 ms per GiB from a warm page cache, seconds cold), while the
 * program may need a few pages. A private file mapping offers no hook
 * between the page cache and the program's first read, so this file makes
 * one:
 *
 *   1. The range [base, base + len) (the image's used bytes rounded up to
 *      a chunk, 2 MiB or more) is replaced by empty anonymous memory
 *      registered with a userfaultfd in MISSING mode: the first access to
 *      any of it, by the program or by the kernel on its behalf (read(2)
 *      into a heap buffer), waits for this file's thread.
 *   2. The thread takes the faults first: for the faulting chunk it reads
 *      the image's pages (verify, below), checks each against its
 *      stored page sum (format 1.2, sums.h), maps the chunk of the image
 *      privately over the hole (map_image_piece: the page cache's pages,
 *      no copy; the pieces merge into one mapping) and wakes the waiters,
 *      whose fault is retried on the new mapping.
 *   3. Between faults it does the same for the next chunk in address
 *      order (prefetch), so a program that walks its whole heap finds
 *      most of it mapped, and when every chunk is done the thread exits:
 *      the heap is then exactly what image.c maps without lazy restart,
 *      with nothing left of this machinery.
 *
 * A chunk that fails verification (or cannot be read) is never shown:
 * it is fenced (map_poison: every access raises SIGBUS, as past the end
 * of a mapped file, and kernel I/O into it fails with EFAULT), and a
 * message naming the checkpoint, the page and the chunk goes to stderr.
 * The program dies only if it touches the damaged chunk; `ckpt-inspect
 * verify` names the same page.
 *
 * What needs what: kernel faults must wait, so the userfaultfd is made
 * without UFFD_USER_MODE_ONLY, which needs CAP_SYS_PTRACE or
 * vm.unprivileged_userfaultfd=1, or access to /dev/userfaultfd. Without
 * them (or with CKPT_RESTART=eager, under valgrind, or an image without
 * stored sums) the restart verifies the whole image before it returns, as
 * before.
 *
 * A source of the bytes other than a file (struct lazy_source, lazy.h):
 * a caller whose heap is private anonymous memory (a sealed pool's, whose
 * checkpoint is ciphertext) gives a produce callback instead of an image.
 * The thread then has produce write the chunk's bytes, already checked,
 * into a buffer of its own (anonymous memory, out of core dumps, wiped at
 * the end), copies them into the hole with UFFDIO_COPY (which wakes the
 * waiters) and unregisters the chunk, which from then on is ordinary
 * memory of the caller's mapping. A chunk produce fails is fenced as
 * above, with produce's message. This file never learns what the bytes
 * are or how they were checked.
 *
 * A fork child would not inherit the userfaultfd (that needs
 * UFFD_FEATURE_EVENT_FORK and CAP_SYS_PTRACE) and would read zeros from
 * the holes, so a fork first completes the fill (lazy_finish), as does a
 * checkpoint, which copies the base image. Both cost at most the rest of
 * one verification pass.
 *
 * An image whose bytes are still arriving (a checkpoint being pulled from
 * a remote store) comes with a fetch hook (struct lazy_fetch, registered
 * by the caller: this file knows nothing of where the bytes come from):
 * before a chunk is verified the hook makes its bytes and page sums
 * present, waiting for them; a chunk the hook cannot deliver is fenced
 * with the hook's reason. The prefetch asks without waiting and, when the
 * next chunk is not there yet, the thread sleeps on the faults for
 * LAZY_IDLE_MS before it looks again.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "libckpt.h"
#include "map.h"
#include "sums.h"
#include "testhook.h"
#include "threads.h"
#include "engine/lazy.h"
#include "engine/uffd.h"

#define LAZY_CHUNK ((uint64_t)2 << 20)
#define LAZY_MAX_CHUNKS ((uint64_t)1 << 14)  /* bounds the mappings a fill can leave */
#define LAZY_IDLE_MS 1          /* prefetch waiting for a fetched chunk */


/*
 * lazy -- one lazy fill.
 * Invariants: [base, base + len) is the range taken over, len a multiple of
 * chunk (or the last chunk short); chunk i is mapped from the image (or
 * fenced) iff done[i]; left counts the chunks not done; only the thread
 * (or lazy_start's caller, when there is no thread) changes done, left and
 * the mappings until lazy_finish/lazy_stop joined it.
 */
struct lazy {
	int uffd;
	int stopfd;             /* eventfd: lazy_stop asks the thread to end */
	int desc;               /* the description every chunk is mapped through */
	int fd;
	uint64_t img_off;       /* the image's offset in fd */
	char *base;
	uint64_t len, chunk, nchunks, used;
	uint64_t *sums;
	struct lazy_fetch fetch;   /* fetch.fetch NULL: the image is all there */
	int idle;               /* the prefetch found the next chunk not fetched yet */
	const char *view;       /* read-only view of the image's [0, used) */
	char *rbuf;             /* SUMS_READ bytes: verify's pread buffer (NULL:
	                           the image is read through view) */
	uint8_t *done;
	uint64_t left, next, damaged;
	struct lazy_source src;  /* produce set: chunks come from it, not fd */
	char *buf;              /* produce's buffer: one chunk (src only) */
	int registered;         /* the range is registered with uffd */
	pthread_t thread;
	int prefetching;        /* the thread fills chunks nobody asked for
	                           (off only under CKPT_TEST_LAZY_NO_PREFETCH) */
	_Atomic int finishing;  /* lazy_finish: fill the rest, then end */
	char what[160];
};

int
lazy_open(void)
{
	if (test_flag("CKPT_TEST_NO_UFFD"))
		return ckpt_err_set(EPERM, "userfaultfd disabled (CKPT_TEST_NO_UFFD=1)");
	/* valgrind runs one thread at a time: a thread blocked in a fault on
	 * the hole would hold it, and the fill thread could never serve it */
	if (RUNNING_ON_VALGRIND)
		return ckpt_err_set(EPERM, "no lazy restart under valgrind");
	char why[256] = "";
	for (int way = 0; way < UFFD_WAY_USER_ONLY; way++) {
		int fd = uffd_open(way);
		struct uffdio_api api = { .api = UFFD_API };
		if (fd >= 0 && ioctl(fd, UFFDIO_API, &api) == 0 &&
		    (api.ioctls & (1ull << _UFFDIO_REGISTER)))
			return fd;
		size_t n = strlen(why);
		snprintf(why + n, sizeof(why) - n, "%s%s: %s", n ? "; " : "",
			uffd_way_name(way), strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	return ckpt_err_set(EPERM, "no userfaultfd for kernel faults (%s)", why);
}

/* wake -- let the faults waiting in [off, off + len) retry */
static void
wake(struct lazy *l, uint64_t off, uint64_t len)
{
	struct uffdio_range r = { .start = (uintptr_t)l->base + off, .len = len };
	ioctl(l->uffd, UFFDIO_WAKE, &r);
}

/*
 * verify -- check the image's pages in [off, end) against their sums;
 * 0, or with *bad the offset of the first page that fails: -1 (its sum
 * does not match) or -2 (it cannot be read: an I/O error, or a hole a
 * full tmpfs cannot supply, reported instead of a SIGBUS). With pread
 * into rbuf (sums_check_file), or where that is not safe (tmpfs:
 * map_read_direct says why) through the view, populated first.
 */
static int
verify(struct lazy *l, uint64_t off, uint64_t end, uint64_t *bad)
{
	if (end <= off)
		return 0;
	if (l->rbuf) {
		/* whole pages (used is a multiple of a page for a lazy restart) */
		uint64_t n = (end - off + SUMS_PAGE - 1) / SUMS_PAGE * SUMS_PAGE;
		int rc = sums_check_file(l->fd, l->img_off + off, n, l->sums + off / SUMS_PAGE,
				l->rbuf, bad);
		if (rc < 0)
			*bad += off;
		return rc;
	}
	const char *v = l->view + off;
	if (map_view_read(v, end - off) < 0) {
		*bad = off;
		return -2;
	}
	if (sums_check(v, end - off, l->sums + off / SUMS_PAGE, bad) < 0) {
		*bad += off;
		return -1;
	}
	/* the view's page tables are not needed again (the page cache stays) */
	madvise((void *)v, end - off, MADV_DONTNEED);
	return 0;
}

/* copy_in -- map_image_piece failed (out of mappings?): copy the verified chunk in */
static int
copy_in(struct lazy *l, uint64_t off, uint64_t len)
{
	uint64_t vlen = l->used > off ? l->used - off : 0;
	struct uffdio_copy c = {
		.dst = (uintptr_t)l->base + off,
		.src = (uintptr_t)l->view + off,
		.len = vlen < len ? vlen : len,
	};
	if (c.len == 0)
		return map_hole(l->base + off, len);  /* past the image: zeros */
	return ioctl(l->uffd, UFFDIO_COPY, &c) == 0 || errno == EEXIST ? 0 : -1;
}

/*
 * place -- UFFDIO_COPY n bytes of src (zero: UFFDIO_ZEROPAGE) to heap
 * offset off, waking the waiters; a page already there is kept. Without a
 * registration the range is ordinary memory: plain stores.
 */
static int
place(struct lazy *l, uint64_t off, const char *src, uint64_t n)
{
	if (!l->registered) {
		if (src)
			memcpy(l->base + off, src, n);
		else
			memset(l->base + off, 0, n);
		return 0;
	}
	uint64_t done = 0;
	while (done < n) {
		uint64_t dst = (uintptr_t)l->base + off + done;
		int64_t got;
		int rc;
		if (src) {
			struct uffdio_copy c = { .dst = dst, .src = (uintptr_t)src + done,
				.len = n - done };
			rc = ioctl(l->uffd, UFFDIO_COPY, &c);
			got = c.copy;
		} else {
			struct uffdio_zeropage z = { .range = { .start = dst, .len = n - done } };
			rc = ioctl(l->uffd, UFFDIO_ZEROPAGE, &z);
			got = z.zeropage;
		}
		if (rc == 0)
			return 0;
		if (got > 0)
			done += (uint64_t)got;          /* partly done: go on */
		else if (errno == EEXIST)
			done += SUMS_PAGE;              /* a page is there already */
		else if (errno != EAGAIN)
			return ckpt_err_set(errno, "cannot fill the heap: %s", strerror(errno));
	}
	return 0;
}

/*
 * produced -- chunk [off, off + len) from the source: produce writes the
 * image's bytes into the buffer, the buffer goes into the hole, the rest
 * of the chunk past the image reads as zeros, and the chunk is
 * unregistered (ordinary memory from now on; a page the program later
 * drops reads as zeros, as anywhere in private anonymous memory). -1 with
 * a message: nothing of the chunk was shown.
 */
static int
produced(struct lazy *l, uint64_t off, uint64_t len)
{
	uint64_t n = l->used > off ? l->used - off : 0;
	if (n > len)
		n = len;
	uint64_t whole = (n + SUMS_PAGE - 1) / SUMS_PAGE * SUMS_PAGE;
	if (n && l->src.produce(l->src.ctx, off, n, l->buf) < 0)
		return -1;
	memset(l->buf + n, 0, whole - n);
	/* past the image: zeros (unregistered, the caller's empty memory is) */
	if (place(l, off, l->buf, whole) < 0 ||
	    (l->registered && place(l, off + whole, NULL, len - whole) < 0))
		return -1;
	struct uffdio_range r = { .start = (uintptr_t)l->base + off, .len = len };
	if (l->registered)
		ioctl(l->uffd, UFFDIO_UNREGISTER, &r);
	return 0;
}

/* fill -- verify chunk i and map it (or fence it), then wake its waiters */
static void
fill(struct lazy *l, uint64_t i)
{
	if (l->done[i])
		return;
	uint64_t off = i * l->chunk;
	uint64_t len = l->len - off < l->chunk ? l->len - off : l->chunk;
	if (l->src.produce) {
		if (produced(l, off, len) == 0)
			goto out;
		fprintf(stderr, "libckpt: %s: %s; chunk [%p, %p) is fenced: touching it "
			"raises SIGBUS\n", l->what, ckpt_errormsg(), (void *)(l->base + off),
			(void *)(l->base + off + len));
		goto fence;
	}
	uint64_t vend = l->used < off + len ? l->used : off + len, bad;
	if (l->fetch.fetch && vend > off &&
	    l->fetch.fetch(l->fetch.arg, off, vend - off, 1, l->sums + off / SUMS_PAGE) < 0) {
		fprintf(stderr, "libckpt: %s: %s; chunk [%p, %p) is fenced: touching it raises "
			"SIGBUS\n", l->what, ckpt_errormsg(), (void *)(l->base + off),
			(void *)(l->base + off + len));
		goto fence;
	}
	int rc = verify(l, off, vend, &bad);
	if (rc == 0) {
		if (map_image_piece(l->desc, l->img_off + off, len, l->base + off) < 0 &&
		    copy_in(l, off, len) < 0)
			goto fence;
	} else {
		fprintf(stderr, "libckpt: %s: the page at heap offset 0x%llx (address %p) "
			"%s; chunk [%p, %p) is fenced: touching it raises SIGBUS\n", l->what,
			(unsigned long long)bad, (void *)(l->base + bad),
			rc == -1 ? "fails its checksum" : "cannot be read (I/O error, or a full tmpfs)",
			(void *)(l->base + off), (void *)(l->base + off + len));
		goto fence;
	}
	goto out;
fence:
	l->damaged++;
	if (map_poison(l->base + off, len) < 0)
		fprintf(stderr, "libckpt: %s: %s\n", l->what, ckpt_errormsg());
out:
	l->done[i] = 1;
	l->left--;
	wake(l, off, len);
}

/* serve -- fill the chunks of every pending fault; 0, or -1 when there was none */
static int
serve(struct lazy *l)
{
	struct uffd_msg m[16];
	ssize_t n = read(l->uffd, m, sizeof(m));
	if (n <= 0)
		return -1;
	for (ssize_t k = 0; k < n / (ssize_t)sizeof(m[0]); k++) {
		if (m[k].event != UFFD_EVENT_PAGEFAULT)
			continue;
		uint64_t a = m[k].arg.pagefault.address - (uintptr_t)l->base;
		if (a < l->len)
			fill(l, a / l->chunk);
	}
	return 0;
}

/*
 * prefetch -- fill the next chunk not done in address order; with a fetch
 * hook and wait 0, only once its bytes are there (else l->idle is set)
 */
static void
prefetch(struct lazy *l, int wait)
{
	while (l->next < l->nchunks && l->done[l->next])
		l->next++;
	l->idle = 0;
	if (l->next >= l->nchunks)
		return;
	if (l->fetch.fetch && !wait) {
		uint64_t off = l->next * l->chunk;
		uint64_t end = l->used < off + l->chunk ? l->used : off + l->chunk;
		if (end > off && l->fetch.fetch(l->fetch.arg, off, end - off, 0,
				l->sums + off / SUMS_PAGE) == 0) {
			l->idle = 1;
			return;
		}
	}
	fill(l, l->next);
}

/*
 * lazy_thread -- faults first, then the next chunk; a word on stopfd ends
 * it at once (lazy_stop) or turns prefetch on until every chunk is done
 * (lazy_finish)
 */
static void *
lazy_thread(void *arg)
{
	struct lazy *l = arg;
	while (l->left) {
		struct pollfd pf[2] = { { .fd = l->uffd, .events = POLLIN },
			{ .fd = l->stopfd, .events = POLLIN } };
		int n = poll(pf, 2, !l->prefetching ? -1 : l->idle ? LAZY_IDLE_MS : 0);
		if (n > 0 && pf[1].revents) {
			if (!l->finishing)
				break;
			uint64_t v;
			ssize_t r = read(l->stopfd, &v, sizeof(v));
			(void)r;
			l->prefetching = 1;
		}
		if (n > 0 && (pf[0].revents & POLLIN) && serve(l) == 0)
			continue;
		if (l->prefetching)
			prefetch(l, l->finishing);   /* finishing: wait for each chunk */
	}
	return NULL;
}

/* lazy_free -- release everything but the mappings of the heap */
static void
lazy_free(struct lazy *l)
{
	map_view_end(l->view, l->used);
	if (l->desc >= 0)
		map_description_end(l->desc, l->fd);
	if (l->uffd >= 0)
		close(l->uffd);
	if (l->stopfd >= 0)
		close(l->stopfd);
	if (l->fetch.end)
		l->fetch.end(l->fetch.arg);
	if (l->buf) {
		explicit_bzero(l->buf, l->chunk);   /* the last chunk's bytes */
		munmap(l->buf, l->chunk);
	}
	free(l->rbuf);
	free(l->done);
	free(l);
}

/*
 * produce_first -- the chunks of [0, src.first) now, before the thread
 * runs; -1 (message set, nothing fenced) if one fails
 */
static int
produce_first(struct lazy *l)
{
	for (uint64_t i = 0; i < l->nchunks && i * l->chunk < l->src.first; i++) {
		uint64_t off = i * l->chunk;
		if (produced(l, off, l->len - off < l->chunk ? l->len - off : l->chunk) < 0)
			return -1;
		l->done[i] = 1;
		l->left--;
	}
	return 0;
}

/*
 * check_first -- the image's pages in [0, src.first), which the caller
 * reads at once (the heap's metadata), checked before lazy_start returns:
 * where one cannot be read or fails its sum, the fill would fence its
 * chunk and the caller's first read would be SIGBUS; the restart fails
 * with the reason instead. -1 (message set, nothing fenced). The fill
 * thread checks the chunk again when it maps it (a few hundred KiB to
 * read and hash twice at each restart).
 */
static int
check_first(struct lazy *l)
{
	uint64_t end = l->src.first < l->used ? l->src.first : l->used, bad = 0;
	if (end == 0)
		return 0;
	if (l->fetch.fetch && l->fetch.fetch(l->fetch.arg, 0, end, 1, l->sums) < 0) {
		ckpt_err_prefix("%s: ", l->what);
		return -1;
	}
	int rc = verify(l, 0, end, &bad);
	if (rc == 0)
		return 0;
	return ckpt_err_set(rc == -1 ? EINVAL : EIO, "%s: the page at heap offset 0x%llx %s",
			l->what, (unsigned long long)bad, rc == -1 ? "fails its checksum" :
			"cannot be read (an I/O error, or a full tmpfs that must allocate a page "
			"to read a hole)");
}

/* run_here -- no thread: fill every chunk now; -1 if any was damaged */
static int
run_here(struct lazy *l)
{
	while (l->left)
		prefetch(l, 1);
	return l->damaged ? -1 : 0;
}

/* source_buffer -- produce's buffer: one chunk, out of core dumps; -1 */
static int
source_buffer(struct lazy *l)
{
	void *b = mmap(NULL, l->chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	if (b == MAP_FAILED)
		return ckpt_err_set(errno, "cannot start a lazy restart: %s", strerror(errno));
	madvise(b, l->chunk, MADV_DONTDUMP);
	l->buf = b;
	return 0;
}

struct lazy *
lazy_start(int uffd, int fd, uint64_t img_off, void *base, uint64_t used,
		uint64_t *sums, const char *what, int *done, const struct lazy_fetch *fetch,
		const struct lazy_source *src)
{
	*done = 0;
	struct lazy *l = calloc(1, sizeof(*l));
	if (!l) {
		close(uffd);
		if (fetch && fetch->end)
			fetch->end(fetch->arg);
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	l->uffd = uffd;
	l->fd = fd;
	l->desc = -1;
	l->img_off = img_off;
	l->base = base;
	l->used = used;
	l->sums = sums;
	if (fetch)
		l->fetch = *fetch;
	if (src)
		l->src = *src;
	snprintf(l->what, sizeof(l->what), "%s", what);
	l->prefetching = !test_flag("CKPT_TEST_LAZY_NO_PREFETCH");
	l->chunk = LAZY_CHUNK;
	while (used / l->chunk > LAZY_MAX_CHUNKS)
		l->chunk *= 2;
	l->nchunks = (used + l->chunk - 1) / l->chunk;
	l->len = l->nchunks * l->chunk;
	l->left = l->nchunks;
	l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->done = calloc(l->nchunks ? l->nchunks : 1, 1);
	if (l->stopfd < 0 || !l->done) {
		ckpt_err_set(errno ? errno : ENOMEM, "cannot start a lazy restart: %s",
			strerror(errno ? errno : ENOMEM));
		lazy_free(l);
		return NULL;
	}
	if (l->src.produce) {
		/* the caller's memory is the hole (empty, private, anonymous) */
		if (source_buffer(l) < 0) {
			lazy_free(l);
			return NULL;
		}
	} else {
		l->desc = map_description(fd);
		if (map_read_direct(fd))
			l->rbuf = malloc(SUMS_READ);  /* none: every chunk through the view */
		if (map_view(fd, img_off, used, (const void **)&l->view) < 0) {
			lazy_free(l);
			return NULL;
		}
	}
	/* 1. the hole, registered; from here on a failure must still leave a
	 * verified heap or none, so the caller learns which through *done */
	if (!l->src.produce && map_hole(base, l->len) < 0) {
		lazy_free(l);
		return NULL;
	}
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)base, .len = l->len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int registered = l->registered = ioctl(uffd, UFFDIO_REGISTER, &r) == 0;
	/* the heap attached next registers for private expedited membarrier
	 * (its quiescing); registering waits for an RCU grace period once the
	 * process has a second thread, 15 ms and more on a busy machine, and
	 * costs nothing before: do it while the fill thread is not there yet */
	syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0);
	if (l->src.produce ? produce_first(l) < 0 : check_first(l) < 0) {
		lazy_free(l);
		return NULL;
	}
	/* 2, 3. the thread (one of libckpt's own: threads.c) */
	int threaded = registered && !test_flag("CKPT_TEST_LAZY_NO_THREAD") &&
		lib_thread_start(&l->thread, "ckpt-lazy", 0, lazy_thread, l) == 0;
	if (threaded)
		return l;
	/* no thread (or no registration): verify and map it all now */
	int rc = run_here(l);
	if (rc < 0)
		ckpt_err_set(EINVAL, "%s is damaged: %s in %llu chunk(s)", what,
			l->src.produce ? "refused by its source" : "checksum mismatch",
			(unsigned long long)l->damaged);
	lazy_free(l);
	*done = rc == 0;
	return NULL;
}

/* join -- wait for the thread, then free */
static void
join(struct lazy *l)
{
	pthread_join(l->thread, NULL);
	lazy_free(l);
}

/* tell -- wake the thread through stopfd (finishing says what for) */
static void
tell(struct lazy *l, int finishing)
{
	uint64_t one = 1;
	l->finishing = finishing;
	ssize_t w = write(l->stopfd, &one, sizeof(one));   /* cannot fail: a count of 1 */
	(void)w;
}

uint64_t
lazy_finish(struct lazy *l)
{
	if (!l)
		return 0;
	tell(l, 1);
	pthread_join(l->thread, NULL);
	uint64_t damaged = l->damaged;
	lazy_free(l);
	return damaged;
}

void
lazy_stop(struct lazy *l)
{
	if (!l)
		return;
	tell(l, 0);
	join(l);
}
