/*
 * recorder.c -- an LD_PRELOAD object that records what a power loss could
 * leave of one file: every write that can reach it, and every ordering
 * point that makes some of them durable (issue 17).
 *
 * Use: LD_PRELOAD=libckpt_recorder.so CKPT_REC_POOL=/path/pool CKPT_REC_LOG=dir
 * PROGRAM. The log goes to dir/rec.log (format: reclog.h); crashcheck reads
 * it and builds the crash states. Without CKPT_REC_POOL every interposed
 * call just forwards.
 *
 * The model. The file's *durable* contents are what a power loss keeps; its
 * *visible* contents are what pread returns (the page cache, which also
 * holds every store made through a MAP_SHARED mapping). Between two ordering
 * points the page cache may write back any subset of the dirty data, in any
 * order, torn at the sector size (512 B; 64 B cache lines in pmem mode):
 * so every change of the visible contents since it was last made durable is
 * a write in flight. An ordering point makes durable what was visible when
 * it was called, in its range:
 *   fdatasync, fsync, syncfs, sync      the whole file, and its size
 *   msync(MS_SYNC), pmem_msync          the pages of the range (through the
 *                                       mapping: address -> file offset)
 *   pwritev2 with RWF_DSYNC or RWF_SYNC exactly the bytes it wrote: not the
 *                                       rest of their pages, nor the size
 *                                       (the kernel syncs both: safe side)
 *   pmem mode (CKPT_REC_PMEM=1, with PMEM_IS_PMEM_FORCE=1): pmem_persist
 *   the 64 B lines of its range; pmem_flush and pmem_memcpy_nodrain flush
 *   their range, the same thread's next pmem_drain makes it durable.
 * msync(MS_ASYNC), sync_file_range (it starts writeback, but flushes no
 * device cache and writes no metadata) and, outside pmem mode, the pmem
 * cache flushes make nothing durable (on an ordinary file they do not);
 * neither does a plain write to an O_DSYNC descriptor (safe side: in
 * flight until a later point). Metadata changes (fallocate, punch-hole,
 * clones, ftruncate) are modelled by the contents they produce (a punched
 * range reads zeros) and are in flight like data; the size only becomes
 * durable at a whole-file point. An fsync/fdatasync of the pool's
 * directory is logged too (REC_DIRSYNC): it makes the file's name durable,
 * which crashcheck --posix-dir checks. A file written under another name
 * (or none) and then linked to the pool's path is taken, at the link, as
 * written and durable (see named()).
 *
 * How stores are captured without instrumenting them: a shadow holds the
 * visible contents as last seen. At each ordering point the recorder diffs
 * the file (pread; SEEK_DATA/SEEK_HOLE skip holes, a bitmap of the shadow's
 * nonzero pages skips the rest) against the shadow at sector granularity,
 * logs every changed run of sectors (never crossing a 4 KiB page) as a
 * REC_WRITE, and updates the shadow. Interposed writes (pwrite, pwritev,
 * pwritev2, write, copy_file_range, FICLONE/FICLONERANGE, fallocate,
 * ftruncate) diff just their range right after the call, so a sector
 * written twice between ordering points logs both values and the log order
 * follows the program; sync_file_range diffs its range before the call
 * (the contents it sends to the disk). A pwritev2 with RWF_DSYNC/RWF_SYNC
 * logs its range point right after its own diff, with that diff's sequence
 * number as cutoff. Any other ordering point is logged after the real call
 * returns, with the sequence number of its diff (taken before the call) as
 * cutoff: writes logged later (by another process meanwhile) stay in
 * flight.
 *
 * Several processes (fork children, background checkpoints) write the same
 * file, and each one's diff sees every process's stores: the shadow, the
 * sequence counter and the lock live in MAP_SHARED anonymous memory made by
 * the constructor and inherited across fork; the log descriptor is shared
 * with O_APPEND. The address -> offset table of mappings is per process
 * (mmap/munmap are interposed). Exec'd programs are not recorded
 * (LD_PRELOAD is removed from the environment at start).
 *
 * Limits: stores made between the diff and the real ordering call are
 * logged at the next point (they stay in flight, which is the safe side);
 * a value a sector held only briefly between two diffs, written through a
 * mapping, is not seen (the page cache may have written it back). Driver
 * markers: ckpt_rec_mark(text) (the driver finds it with dlsym).
 *
 * Over 800 lines: one preloaded object must interpose every call that can
 * write to or order the file (write family, mappings, syncs, writeback,
 * metadata, the pmem primitives), and each interposer is a few lines
 * around one logging helper; splitting it would only spread that helper
 * across files.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "reclog.h"

#define PAGE 4096u
#define DIFF_BUF ((size_t)1 << 20)
#define MAX_MAPS 256
#define DEFAULT_MAX ((uint64_t)1 << 30)

/* shared -- state of the whole recorded run (MAP_SHARED, inherited across fork) */
struct shared {
	pthread_mutex_t mu;
	uint64_t seq;
	uint64_t size_seen;     /* the file's size as last seen */
	int known;              /* dev/ino set */
	dev_t dev;
	ino_t ino;
};

static struct shared *S;
static unsigned char *shadow;   /* visible contents as last seen, max_size bytes */
static unsigned char *nzmap;    /* one byte per page: shadow page may be nonzero */
static uint64_t max_size;
static unsigned grain = 512;
static int pmem_mode;
static int active;
static int logfd = -1;
static char pool_path[4096];
static __thread int busy;       /* inside the recorder: forward only */

/* per process: MAP_SHARED mappings of regular files (the pool's are those
 * whose dev/ino match; a file mapped before it was given the pool's name
 * becomes one then) */
struct map { uintptr_t addr; size_t len; uint64_t off; dev_t dev; ino_t ino; };
static struct map maps[MAX_MAPS];
static pthread_mutex_t maps_mu = PTHREAD_MUTEX_INITIALIZER;
static int rdfd = -1;           /* our own read descriptor of the pool, per process */
static pid_t rdfd_pid;

/* -- the real functions ------------------------------------------------ */

#define REAL(name) \
	static __typeof__(name) *real_##name; \
	if (!real_##name) \
		real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* libpmem's functions, declared here so the recorder needs no libpmem headers */
void pmem_persist(const void *addr, size_t len);
void pmem_flush(const void *addr, size_t len);
void pmem_drain(void);
int pmem_msync(const void *addr, size_t len);
void *pmem_memcpy_nodrain(void *dst, const void *src, size_t len);
void ckpt_rec_mark(const char *text);

static ssize_t
raw_write(int fd, const void *buf, size_t n)
{
	return syscall(SYS_write, fd, buf, n);
}

static ssize_t
raw_pread(int fd, void *buf, size_t n, off_t off)
{
	return syscall(SYS_pread64, fd, buf, n, off);
}

static void
die(const char *what)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "recorder: %s: %s\n", what, strerror(errno));
	if (n > 0)
		raw_write(2, msg, (size_t)n);
	_exit(99);
}

/* -- the shared lock --------------------------------------------------- */

static void
lock(void)
{
	int r = pthread_mutex_lock(&S->mu);
	if (r == EOWNERDEAD)
		pthread_mutex_consistent(&S->mu);
	else if (r != 0) {
		errno = r;
		die("lock");
	}
}

static void
unlock(void)
{
	pthread_mutex_unlock(&S->mu);
}

/* -- the log ----------------------------------------------------------- */

/* log_rec -- append one record (lock held); returns its seq */
static uint64_t
log_rec(uint16_t type, uint16_t op, uint64_t off, uint64_t len, uint64_t arg,
		const void *pay, uint32_t paylen)
{
	struct rec_hdr h = {
		.magic = REC_MAGIC, .type = type, .op = op,
		.pid = (uint32_t)getpid(), .tid = (uint32_t)syscall(SYS_gettid),
		.seq = ++S->seq, .off = off, .len = len, .arg = arg,
		.paylen = paylen, .grain = grain,
	};
	static const char pad[8];
	size_t npad = REC_PAD(paylen) - paylen;
	struct iovec iov[3] = { { &h, sizeof(h) }, { (void *)pay, paylen },
		{ (void *)pad, npad } };
	size_t want = sizeof(h) + paylen + npad;
	ssize_t n = syscall(SYS_writev, logfd, iov, 3);
	if (n != (ssize_t)want)
		die("writing the log");
	return h.seq;
}

/* -- which descriptors and addresses are the pool ------------------------ */

/* learn -- find the pool's identity once it exists (lock not needed) */
static int
learn(void)
{
	if (S->known)
		return 1;
	struct stat st;
	if (stat(pool_path, &st) < 0)
		return 0;
	S->dev = st.st_dev;
	S->ino = st.st_ino;
	__atomic_store_n(&S->known, 1, __ATOMIC_RELEASE);
	return 1;
}

static int
is_pool_fd(int fd)
{
	if (!active || busy || fd < 0)
		return 0;
	if (!learn())
		return 0;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 0;
	return st.st_dev == S->dev && st.st_ino == S->ino;
}

/* reader -- this process's read descriptor of the pool */
static int
reader(void)
{
	if (rdfd >= 0 && rdfd_pid == getpid())
		return rdfd;
	if (rdfd >= 0)
		close(rdfd);    /* inherited from the parent: fine, but keep one per process */
	rdfd = open(pool_path, O_RDONLY | O_CLOEXEC);
	if (rdfd < 0)
		die("opening the pool to read it");
	rdfd_pid = getpid();
	return rdfd;
}

/* -- diffing ----------------------------------------------------------- */

static void
shadow_set(uint64_t off, const unsigned char *data, size_t len)
{
	memcpy(shadow + off, data, len);
	for (uint64_t pg = off / PAGE; pg <= (off + len - 1) / PAGE; pg++)
		nzmap[pg] = 1;
}

/*
 * diff_buf -- compare cur (the visible bytes of [off, off+len), grain
 * aligned) with the shadow, log each changed run of sectors within a page
 */
static void
diff_buf(uint16_t op, uint64_t off, const unsigned char *cur, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if (memcmp(cur + i, shadow + off + i, grain) == 0) {
			i += grain;
			continue;
		}
		size_t j = i + grain;
		while (j < len && (off + j) % PAGE != 0 &&
		       memcmp(cur + j, shadow + off + j, grain) != 0)
			j += grain;
		log_rec(REC_WRITE, op, off + i, j - i, 0, cur + i, (uint32_t)(j - i));
		shadow_set(off + i, cur + i, j - i);
		i = j;
	}
}

static unsigned char *diffbuf;

/* diff_data -- diff [off, off+len) reading the file */
static void
diff_data(uint16_t op, int fd, uint64_t off, uint64_t len)
{
	while (len) {
		size_t n = len < DIFF_BUF ? (size_t)len : DIFF_BUF;
		ssize_t r = raw_pread(fd, diffbuf, n, (off_t)off);
		if (r < 0)
			die("reading the pool");
		if ((size_t)r < n)
			memset(diffbuf + r, 0, n - (size_t)r);  /* past EOF: zeros */
		diff_buf(op, off, diffbuf, n);
		off += n;
		len -= n;
	}
}

/* diff_hole -- [off, off+len) reads zeros: diff only the shadow's nonzero pages */
static void
diff_hole(uint16_t op, uint64_t off, uint64_t len)
{
	static const unsigned char zero[PAGE];
	uint64_t end = off + len;
	while (off < end) {
		uint64_t pg = off / PAGE;
		uint64_t pend = (pg + 1) * PAGE < end ? (pg + 1) * PAGE : end;
		if (nzmap[pg])
			diff_buf(op, off, zero + off % PAGE, (size_t)(pend - off));
		off = pend;
	}
}

/*
 * diff_range -- log the changes of [off, off+len) (clamped, grain aligned)
 * and of the size; lock held
 */
static void
diff_range(uint16_t op, uint64_t off, uint64_t len)
{
	int fd = reader();
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("fstat of the pool");
	uint64_t size = (uint64_t)st.st_size;
	if (size > max_size) {
		errno = EFBIG;
		die("pool larger than CKPT_REC_MAX");
	}
	uint64_t top = size > S->size_seen ? size : S->size_seen;
	if (size != S->size_seen) {
		log_rec(REC_SIZE, op, size, 0, 0, NULL, 0);
		S->size_seen = size;
	}
	uint64_t end = len == REC_ALL || off + len > top ? top : off + len;
	off -= off % grain;
	end = (end + grain - 1) / grain * grain;
	if (end > max_size)
		end = max_size;
	uint64_t pos = off;
	while (pos < end) {
		off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
		uint64_t dstart, dend;
		if (d < 0) {
			if (errno != ENXIO) {       /* no SEEK_DATA: all data */
				diff_data(op, fd, pos, end - pos);
				return;
			}
			dstart = dend = end;
		} else {
			dstart = (uint64_t)d < end ? (uint64_t)d : end;
			off_t h = lseek(fd, d, SEEK_HOLE);
			dend = h < 0 || (uint64_t)h > end ? end : (uint64_t)h;
		}
		dstart -= dstart % grain;
		if (dstart < pos)
			dstart = pos;
		dend = (dend + grain - 1) / grain * grain;
		if (dend > end)
			dend = end;
		if (dstart > pos)
			diff_hole(op, pos, dstart - pos);
		if (dend > dstart)
			diff_data(op, fd, dstart, dend - dstart);
		pos = dend > dstart ? dend : dstart;
		if (pos == dstart && dstart == end)
			break;
	}
}

/* -- recording primitives (each takes the lock) ------------------------- */

/*
 * rec_written -- after a write call on the pool: log what [off, off+len)
 * now holds; the sequence number of that diff (the cutoff of an ordering
 * point that covers it)
 */
static uint64_t
rec_written(uint16_t op, uint64_t off, uint64_t len)
{
	busy++;
	lock();
	diff_range(op, off, len);
	uint64_t seq = S->seq;
	unlock();
	busy--;
	return seq;
}

/* rec_before_point -- before an ordering point: diff everything, return the cutoff */
static uint64_t
rec_before_point(uint16_t op)
{
	return rec_written(op, 0, REC_ALL);
}

/* rec_point -- after the real call succeeded: [off, off+len) durable up to cutoff */
static void
rec_point(uint16_t type, uint16_t op, uint64_t off, uint64_t len, uint64_t cutoff)
{
	busy++;
	lock();
	log_rec(type, op, off, len, cutoff, NULL, 0);
	unlock();
	busy--;
}

/* -- mappings ---------------------------------------------------------- */

static void
maps_remove(uintptr_t a, size_t len)
{
	uintptr_t e = a + len;
	for (int i = 0; i < MAX_MAPS; i++) {
		struct map *m = &maps[i];
		if (!m->len || m->addr >= e || m->addr + m->len <= a)
			continue;
		uintptr_t me = m->addr + m->len;
		if (m->addr < a && me > e) {
			/* split: keep the head here, the tail in a free slot */
			for (int j = 0; j < MAX_MAPS; j++)
				if (!maps[j].len) {
					maps[j] = (struct map){ e, me - e, m->off + (e - m->addr),
						m->dev, m->ino };
					break;
				}
			m->len = a - m->addr;
		} else if (m->addr < a) {
			m->len = a - m->addr;
		} else if (me > e) {
			m->off += e - m->addr;
			m->len = me - e;
			m->addr = e;
		} else {
			m->len = 0;
		}
	}
}

static void
maps_add(uintptr_t a, size_t len, uint64_t off, const struct stat *st, int pool)
{
	for (int i = 0; i < MAX_MAPS; i++)
		if (!maps[i].len) {
			maps[i] = (struct map){ a, len, off, st->st_dev, st->st_ino };
			return;
		}
	if (!pool)
		return;         /* another file's: it may never be the pool */
	errno = ENOMEM;
	die("too many mappings of the pool");
}

/*
 * addr_ranges -- the file ranges [addr, addr+len) maps (page-rounded when
 * page is set, else grain-rounded); up to max of them into out; count returned
 */
struct frange { uint64_t off, len; };

static int
addr_ranges(const void *addr, size_t len, int page, struct frange *out, int max)
{
	uintptr_t al = page ? PAGE : 64;
	uintptr_t a = (uintptr_t)addr & ~(al - 1);
	uintptr_t e = ((uintptr_t)addr + len + al - 1) & ~(al - 1);
	int n = 0;
	pthread_mutex_lock(&maps_mu);
	for (int i = 0; i < MAX_MAPS && n < max; i++) {
		struct map *m = &maps[i];
		if (!m->len || m->addr >= e || m->addr + m->len <= a ||
		    !S->known || m->dev != S->dev || m->ino != S->ino)
			continue;
		uintptr_t s = a > m->addr ? a : m->addr;
		uintptr_t t = e < m->addr + m->len ? e : m->addr + m->len;
		out[n++] = (struct frange){ m->off + (s - m->addr), t - s };
	}
	pthread_mutex_unlock(&maps_mu);
	return n;
}

/* -- set-up ------------------------------------------------------------ */

static void *
shared_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		die("mapping the shadow");
	return p;
}

__attribute__((constructor)) static void
rec_init(void)
{
	const char *pool = getenv("CKPT_REC_POOL");
	const char *dir = getenv("CKPT_REC_LOG");
	if (!pool || !*pool || !dir || !*dir)
		return;
	busy++;
	unsetenv("LD_PRELOAD");         /* exec'd programs are not recorded */
	snprintf(pool_path, sizeof(pool_path), "%s", pool);
	const char *mx = getenv("CKPT_REC_MAX");
	max_size = mx ? strtoull(mx, NULL, 0) : DEFAULT_MAX;
	const char *pm = getenv("CKPT_REC_PMEM");
	pmem_mode = pm && strcmp(pm, "1") == 0;
	grain = pmem_mode ? 64 : 512;
	char path[4200];
	snprintf(path, sizeof(path), "%s/rec.log", dir);
	logfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0)
		die("creating the log");
	S = shared_map(sizeof(*S));
	shadow = shared_map(max_size);
	nzmap = shared_map(max_size / PAGE + 1);
	diffbuf = malloc(DIFF_BUF);
	if (!diffbuf)
		die("malloc");
	pthread_mutexattr_t at;
	pthread_mutexattr_init(&at);
	pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&S->mu, &at);
	active = 1;
	lock();
	log_rec(REC_BEGIN, OP_NONE, 0, 0, (uint64_t)pmem_mode, pool_path,
			(uint32_t)strlen(pool_path));
	if (learn()) {
		/* an existing file starts durable as it is */
		diff_range(OP_INIT, 0, REC_ALL);
		log_rec(REC_DURABLE, OP_INIT, 0, REC_ALL, S->seq, NULL, 0);
	}
	unlock();
	busy--;
}

/* -- the marker -------------------------------------------------------- */

void
ckpt_rec_mark(const char *text)
{
	if (!active)
		return;
	busy++;
	lock();
	log_rec(REC_MARK, OP_NONE, 0, 0, 0, text, (uint32_t)strlen(text));
	unlock();
	busy--;
}

/* -- interposed: writes ------------------------------------------------- */

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite);
	ssize_t r = real_pwrite(fd, buf, n, off);
	if (r > 0 && is_pool_fd(fd))
		rec_written(OP_PWRITE, (uint64_t)off, (uint64_t)r);
	return r;
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(pwritev);
	ssize_t r = real_pwritev(fd, iov, cnt, off);
	if (r > 0 && is_pool_fd(fd))
		rec_written(OP_PWRITE, (uint64_t)off, (uint64_t)r);
	return r;
}

ssize_t
pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

/*
 * rec_pwritev2 -- pwritev2 and pwritev64v2 (one function in glibc on a
 * 64-bit target, like pwritev and pwritev64). The write is logged as
 * pwritev's is, by a diff of its range after the call. Off -1 writes at
 * the file position (read before the call, as write() does). RWF_APPEND
 * (or O_APPEND on the descriptor) writes at the end: the whole file is
 * diffed, as write() does with O_APPEND. RWF_HIPRI and RWF_NOWAIT change
 * nothing the model sees.
 *
 * With RWF_DSYNC or RWF_SYNC the call is also a range ordering point,
 * modelled as msync(MS_SYNC) of [pos, pos+written) is: a REC_DURABLE of
 * exactly that range, with the sequence number of its diff as cutoff
 * (taken under the same lock, so nothing another process logs later is
 * covered). The kernel (generic_write_sync -> vfs_fsync_range) writes
 * back whole pages and, when the write grew the file, the new size; the
 * model makes durable neither the rest of those pages nor the size (a
 * range point never makes the size durable, crashlog.c): the safe side,
 * more crash states. An appending write with RWF_DSYNC/RWF_SYNC is
 * refused (logged as a marker, then exit 99): which range it synced
 * cannot be told when another writer may grow the file meanwhile.
 */
static ssize_t
rec_pwritev2(ssize_t (*call)(int, const struct iovec *, int, off_t, int),
		int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	if (!is_pool_fd(fd))
		return call(fd, iov, cnt, off, flags);
	int append = (flags & RWF_APPEND) || (fcntl(fd, F_GETFL) & O_APPEND);
	int dsync = flags & (RWF_DSYNC | RWF_SYNC);
	if (append && dsync) {
		ckpt_rec_mark("recorder: refused: pwritev2 appending with RWF_DSYNC/RWF_SYNC");
		errno = ENOTSUP;
		die("pwritev2 appending to the pool with RWF_DSYNC/RWF_SYNC is not modelled");
	}
	off_t pos = off == -1 && !append ? lseek(fd, 0, SEEK_CUR) : off;
	ssize_t r = call(fd, iov, cnt, off, flags);
	if (r <= 0)
		return r;
	if (append || pos < 0) {
		rec_written(OP_PWRITEV2, 0, REC_ALL);
		return r;
	}
	uint64_t cutoff = rec_written(OP_PWRITEV2, (uint64_t)pos, (uint64_t)r);
	if (dsync)
		rec_point(REC_DURABLE, OP_PWRITEV2, (uint64_t)pos, (uint64_t)r, cutoff);
	return r;
}

ssize_t
pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	REAL(pwritev2);
	return rec_pwritev2(real_pwritev2, fd, iov, cnt, off, flags);
}

ssize_t
pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	REAL(pwritev64v2);
	return rec_pwritev2(real_pwritev64v2, fd, iov, cnt, off, flags);
}

ssize_t
write(int fd, const void *buf, size_t n)
{
	REAL(write);
	if (!is_pool_fd(fd))
		return real_write(fd, buf, n);
	off_t pos = lseek(fd, 0, SEEK_CUR);
	ssize_t r = real_write(fd, buf, n);
	if (r > 0) {
		if ((fcntl(fd, F_GETFL) & O_APPEND) || pos < 0)
			rec_written(OP_WRITE, 0, REC_ALL);
		else
			rec_written(OP_WRITE, (uint64_t)pos, (uint64_t)r);
	}
	return r;
}

ssize_t
copy_file_range(int in, loff_t *oin, int out, loff_t *oout, size_t n, unsigned flags)
{
	REAL(copy_file_range);
	int pool = is_pool_fd(out);
	loff_t pos = pool ? (oout ? *oout : lseek(out, 0, SEEK_CUR)) : 0;
	ssize_t r = real_copy_file_range(in, oin, out, oout, n, flags);
	if (r > 0 && pool)
		rec_written(OP_COPY_RANGE, (uint64_t)pos, (uint64_t)r);
	return r;
}

int
ioctl(int fd, unsigned long req, ...)
{
	REAL(ioctl);
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	int r = real_ioctl(fd, req, arg);
	if (r == 0 && (req == FICLONE || req == FICLONERANGE) && is_pool_fd(fd)) {
		if (req == FICLONERANGE) {
			const struct file_clone_range *c = arg;
			rec_written(OP_CLONE, c->dest_offset,
					c->src_length ? c->src_length : REC_ALL);
		} else {
			rec_written(OP_CLONE, 0, REC_ALL);
		}
	}
	return r;
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	REAL(fallocate);
	int r = real_fallocate(fd, mode, off, len);
	if (r == 0 && is_pool_fd(fd))
		rec_written((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) ?
				OP_PUNCH : OP_FALLOCATE, (uint64_t)off, (uint64_t)len);
	return r;
}

int
fallocate64(int fd, int mode, off_t off, off_t len)
{
	return fallocate(fd, mode, off, len);
}

int
ftruncate(int fd, off_t len)
{
	REAL(ftruncate);
	int pool = is_pool_fd(fd);
	int r = real_ftruncate(fd, len);
	if (r == 0 && pool) {
		uint64_t from = (uint64_t)len < S->size_seen ? (uint64_t)len : S->size_seen;
		rec_written(OP_FTRUNCATE, from, REC_ALL);
	}
	return r;
}

int
ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

/*
 * sync_file_range -- starts (and may wait for) the writeback of a range.
 * It is not an ordering point: it flushes no device cache and writes no
 * metadata (not even the blocks' allocation), so a power loss may still
 * lose all of it; the model makes nothing durable. What it does change:
 * the range's contents as they are at the call are sent to the disk, so
 * they are diffed before it and logged as writes in flight (a mapped store
 * overwritten before the next ordering point may be what the disk holds).
 */
int
sync_file_range(int fd, off_t off, off_t len, unsigned int flags)
{
	REAL(sync_file_range);
	if (is_pool_fd(fd) && off >= 0 && len >= 0)
		rec_written(OP_SYNC_FILE_RANGE, (uint64_t)off, len ? (uint64_t)len : REC_ALL);
	return real_sync_file_range(fd, off, len, flags);
}

/* -- interposed: ordering points ---------------------------------------- */

/* is_pool_dir -- fd is the directory holding the pool (its name's durability) */
static int
is_pool_dir(int fd)
{
	if (!active || busy || fd < 0)
		return 0;
	char dir[sizeof(pool_path)];
	snprintf(dir, sizeof(dir), "%s", pool_path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	struct stat a, b;
	return fstat(fd, &a) == 0 && S_ISDIR(a.st_mode) && stat(dir, &b) == 0 &&
		a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* dir_point -- after a successful fsync/fdatasync of the pool's directory */
static void
dir_point(uint16_t op, int fd)
{
	if (is_pool_dir(fd))
		rec_point(REC_DIRSYNC, op, 0, 0, 0);
}

/* whole_file_point -- fdatasync and its kin */
static int
whole_file_point(uint16_t op, int pool, int (*call)(int), int fd)
{
	uint64_t cutoff = pool ? rec_before_point(op) : 0;
	int r = call(fd);
	if (r == 0 && pool)
		rec_point(REC_DURABLE, op, 0, REC_ALL, cutoff);
	return r;
}

int
fdatasync(int fd)
{
	REAL(fdatasync);
	int r = whole_file_point(OP_FDATASYNC, is_pool_fd(fd), real_fdatasync, fd);
	if (r == 0)
		dir_point(OP_FDATASYNC, fd);
	return r;
}

int
fsync(int fd)
{
	REAL(fsync);
	int r = whole_file_point(OP_FSYNC, is_pool_fd(fd), real_fsync, fd);
	if (r == 0)
		dir_point(OP_FSYNC, fd);
	return r;
}

int
syncfs(int fd)
{
	REAL(syncfs);
	struct stat st;
	int pool = active && !busy && learn() && fstat(fd, &st) == 0 && st.st_dev == S->dev;
	int r = whole_file_point(OP_SYNCFS, pool, real_syncfs, fd);
	if (r == 0 && pool)
		rec_point(REC_DIRSYNC, OP_SYNCFS, 0, 0, 0);
	return r;
}

void
sync(void)
{
	REAL(sync);
	int pool = active && !busy && learn();
	uint64_t cutoff = pool ? rec_before_point(OP_SYNC) : 0;
	real_sync();
	if (pool) {
		rec_point(REC_DURABLE, OP_SYNC, 0, REC_ALL, cutoff);
		rec_point(REC_DIRSYNC, OP_SYNC, 0, 0, 0);
	}
}

/* range_point -- an ordering point over the file ranges an address range maps */
static int
range_point(uint16_t op, uint16_t type, const void *addr, size_t len, int page,
		int (*call)(const void *, size_t, int), int flags)
{
	struct frange fr[16];
	int n = active && !busy && len ? addr_ranges(addr, len, page, fr, 16) : 0;
	uint64_t cutoff = n ? rec_before_point(op) : 0;
	int r = call(addr, len, flags);
	if (r == 0)
		for (int i = 0; i < n; i++)
			rec_point(type, op, fr[i].off, fr[i].len, cutoff);
	return r;
}

static int
call_msync(const void *a, size_t l, int f)
{
	REAL(msync);
	return real_msync((void *)a, l, f);
}

int
msync(void *addr, size_t len, int flags)
{
	if (!(flags & MS_SYNC))
		return call_msync(addr, len, flags);
	return range_point(OP_MSYNC, REC_DURABLE, addr, len, 1, call_msync, flags);
}

static int
call_pmem_msync(const void *a, size_t l, int f)
{
	REAL(pmem_msync);
	busy++;                 /* its own msync inside is this same point */
	int r = real_pmem_msync(a, l);
	busy--;
	return r;
}

int
pmem_msync(const void *addr, size_t len)
{
	return range_point(OP_PMEM_MSYNC, REC_DURABLE, addr, len, 1, call_pmem_msync, 0);
}

static int
call_pmem_persist(const void *a, size_t l, int f)
{
	REAL(pmem_persist);
	real_pmem_persist(a, l);
	return 0;
}

void
pmem_persist(const void *addr, size_t len)
{
	if (!pmem_mode) {
		call_pmem_persist(addr, len, 0);
		return;
	}
	range_point(OP_PMEM_PERSIST, REC_DURABLE, addr, len, 0, call_pmem_persist, 0);
}

static int
call_pmem_flush(const void *a, size_t l, int f)
{
	REAL(pmem_flush);
	real_pmem_flush(a, l);
	return 0;
}

void
pmem_flush(const void *addr, size_t len)
{
	if (!pmem_mode) {
		call_pmem_flush(addr, len, 0);
		return;
	}
	range_point(OP_PMEM_FLUSH, REC_FLUSH, addr, len, 0, call_pmem_flush, 0);
}

void
pmem_drain(void)
{
	REAL(pmem_drain);
	real_pmem_drain();
	if (pmem_mode && active && !busy)
		rec_point(REC_DRAIN, OP_PMEM_DRAIN, 0, 0, 0);
}

void *
pmem_memcpy_nodrain(void *dst, const void *src, size_t len)
{
	REAL(pmem_memcpy_nodrain);
	void *r = real_pmem_memcpy_nodrain(dst, src, len);
	struct frange fr[16];
	int n = pmem_mode && active && !busy && len ? addr_ranges(dst, len, 0, fr, 16) : 0;
	if (n) {
		/* the copy's stores are flushed (non-temporal); the drain orders them */
		uint64_t cutoff = 0;
		for (int i = 0; i < n; i++)
			cutoff = rec_written(OP_PMEM_MEMCPY, fr[i].off, fr[i].len);
		for (int i = 0; i < n; i++)
			rec_point(REC_FLUSH, OP_PMEM_MEMCPY, fr[i].off, fr[i].len, cutoff);
	}
	return r;
}

/* -- interposed: a file given the pool's name ---------------------------- */

/*
 * named -- after link/linkat succeeded: if the new name is the pool's, the
 * pool now exists, with what its file held (ckpt_create builds the pool
 * nameless and links it when complete). That content is logged as written
 * and durable at once: the recorder cannot see syncs of a file before it
 * has the pool's name, and takes the program's word (libckpt syncs the
 * file before it links it: pool.c, newfile.c). Crash states inside
 * creation are therefore not generated; the name's own durability still
 * waits for the directory's fsync (REC_DIRSYNC, --posix-dir).
 */
static void
named(const char *newpath)
{
	if (!active || busy || S->known)
		return;
	struct stat a, b;
	if (stat(newpath, &a) < 0 || stat(pool_path, &b) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino || !learn())
		return;
	uint64_t cutoff = rec_before_point(OP_LINK);
	rec_point(REC_DURABLE, OP_LINK, 0, REC_ALL, cutoff);
}

int
link(const char *old, const char *newpath)
{
	REAL(link);
	int r = real_link(old, newpath);
	if (r == 0)
		named(newpath);
	return r;
}

int
linkat(int olddir, const char *old, int newdir, const char *newpath, int flags)
{
	REAL(linkat);
	int r = real_linkat(olddir, old, newdir, newpath, flags);
	if (r == 0 && (newdir == AT_FDCWD || newpath[0] == '/'))
		named(newpath);
	return r;
}

/* -- interposed: mappings ----------------------------------------------- */

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	REAL(mmap);
	void *p = real_mmap(addr, len, prot, flags, fd, off);
	if (p == MAP_FAILED || !active || busy)
		return p;
	struct stat st;
	int file = !(flags & MAP_ANONYMOUS) && (flags & MAP_SHARED) && fd >= 0 &&
		fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	int pool = file && is_pool_fd(fd);
	pthread_mutex_lock(&maps_mu);
	maps_remove((uintptr_t)p, len);
	if (file)
		maps_add((uintptr_t)p, len, (uint64_t)off, &st, pool);
	pthread_mutex_unlock(&maps_mu);
	return p;
}

void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

int
munmap(void *addr, size_t len)
{
	REAL(munmap);
	int r = real_munmap(addr, len);
	if (r == 0 && active && !busy) {
		pthread_mutex_lock(&maps_mu);
		maps_remove((uintptr_t)addr, len);
		pthread_mutex_unlock(&maps_mu);
	}
	return r;
}
