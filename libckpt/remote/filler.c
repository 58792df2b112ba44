/*
 * filler.c -- a lazy pull (`ckpt-remote pull --lazy`): the checkpoint is
 * published FILLING at once, and a filler process brings its bytes while
 * a program may already run on it (filling.h has the side files,
 * filling.c the restarting library's side).
 *
 * remote_pull_lazy prepares: the manifest is fetched and checked (a paged
 * checksum is needed, so each page can be verified on first access), the
 * pool created or opened as a pull does (import.c), the side files
 * written and the pull's lock taken, then the reserved segment is
 * published FILLING. The same process goes on as the filler, remote_fill,
 * with the store connection and the manifest it has (ckpt-remote forks
 * before it connects, the child pulls and fills, the parent returns once
 * the checkpoint is published). Region 0, which a restart's ckpt_open
 * reads first, is fetched by a thread of its own while the pool is
 * created ("The first region" below).
 *
 * The filler holds an exclusive flock on POOL.fill while it runs (so a
 * second filler, or a library asking whether one runs, can tell), and
 * fetches the image in regions of FILL_REGION bytes, with the pipelining
 * of a pull (pull.c): a fetch thread brings the next region (the oldest
 * one a restarting process asked for over POOL.fill.sock, else the next in
 * address order) while this thread checks the last one: every chunk
 * against its name, then writes its bytes and its page sums into the
 * segment and its page-sum slot, and sets its word in POOL.fill.map
 * (waking the processes waiting on it). A chunk that is corrupted or
 * missing on the store makes its region FILL_BAD (a restarting process
 * fences it with the reason) and the pull fails at the end; a store that
 * fails past its retries stops the filler (stopped, with why), leaving
 * the pull to be resumed. When every region is there, the page sums are
 * checked against the checkpoint's checksum and stored whole, the image
 * made durable and the entry published CKPT in one commit; the side files
 * go. A filler killed at any point leaves the entry FILLING and the side
 * files; `ckpt-remote fill POOL` resumes it (the regions already marked
 * are kept if the pool file still holds their chunks, their page sums
 * recomputed from it; a machine crash may have lost bytes of either).
 *
 * Over 800 lines: the pull's start, the first region, the fetch thread,
 * the take, the resume and the publish all work on struct filler and its
 * slots; split, each file would need the whole of it in a header.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "libckpt.h"
#include "layout.h"
#include "pool.h"
#include "segment.h"
#include "sums.h"
#include "testhook.h"
#include "remote/filling.h"
#include "remote/import.h"
#include "remote/remote.h"

#define FILLER_SLOTS 2u
#define FILLER_ASKED 64u        /* regions asked for, remembered at once */

/* filler_slot -- one region: fetched by the fetch thread, taken by the caller's */
struct filler_slot {
	uint64_t r;
	char *buf;
	char (*names)[CHUNK_NAME_MAX];
	const char **np;
	void **bufs;
	size_t *lens;
	unsigned g;                 /* non-zero chunks fetched */
	int ready, err;
	char msg[CKPT_ERRMSG_MAX];
};

/* filler -- one fill under way */
struct filler {
	const char *path;
	struct store *st;
	struct manifest m;
	char mname[MANIFEST_NAME_MAX];
	struct fill_map *map;
	size_t map_len;
	struct import im;
	int sock;
	uint64_t region, nregions, per;     /* per: chunks per region */
	uint8_t *taken;             /* the fetch thread chose region r */
	uint64_t cursor;            /* next region in address order */
	uint64_t stall;             /* test: no region in order past this (asked ones only) */
	uint64_t asked[FILLER_ASKED];
	unsigned nasked;
	uint64_t *sums;             /* used / 4096 page sums */
	uint64_t bad;               /* regions that cannot come */
	struct filler_slot slot[FILLER_SLOTS];
	struct fill_first *first;   /* region 0, fetched during the pull's start */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
};

/* write_info -- POOL.fill: url, manifest, checkpoint id (0600) */
static int
write_info(const char *f, const char *url, const char *mname, uint64_t id)
{
	int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ckpt_err_set(errno, "cannot write %s: %s", f, strerror(errno));
	int ok = dprintf(fd, "%s\n%s\n%llu\n", url, mname, (unsigned long long)id) > 0;
	int e = errno;
	close(fd);
	return ok ? 0 : ckpt_err_set(e, "cannot write %s: %s", f, strerror(e));
}

/* write_map -- a new POOL.fill.map: the head, every region missing */
static int
write_map(const char *f, const struct manifest *m, uint64_t region)
{
	struct fill_map h = { .magic = FILL_MAP_MAGIC, .ckpt_id = m->h.ckpt_id,
		.used = m->h.used, .region = region,
		.nregions = (m->h.used + region - 1) / region };
	int fd = open(f, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return ckpt_err_set(errno, "cannot write %s: %s", f, strerror(errno));
	int ok = ftruncate(fd, (off_t)fill_map_size(h.nregions)) == 0 &&
		pwrite(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h);
	int e = errno;
	close(fd);
	return ok ? 0 : ckpt_err_set(e, "cannot write %s: %s", f, strerror(e));
}

/* region_of -- the region size for a manifest: 0 if it cannot be filled lazily */
static uint64_t
region_of(const struct manifest *m)
{
	uint64_t r = m->h.chunk_size > FILL_REGION ? m->h.chunk_size : FILL_REGION;
	return r % m->h.chunk_size == 0 && (r & (r - 1)) == 0 ? r : 0;
}

/*
 * filling_id -- the id of a checkpoint being pulled into the pool at path,
 * 0 if none (or no pool there), -1 if the pool cannot be read
 */
static int64_t
filling_id(const char *path)
{
	struct pool_config c;
	struct stat sb;
	if (stat(path, &sb) < 0 && errno == ENOENT)
		return 0;
	if (config_resolve(&c, NULL, 0) < 0)
		return -1;
	struct ckpt_pool *p = pool_open(path, &c);
	struct cat_view v;
	if (!p || cat_begin(&p->cat, &v) < 0) {
		if (p)
			pool_discard(p);
		return -1;
	}
	int64_t id = 0;
	for (uint32_t i = 0; i < v.n; i++)
		if (v.e[i].state == CAT_FILLING)
			id = (int64_t)v.e[i].ckpt_id;
	cat_end(&p->cat);
	pool_discard(p);
	return id;
}

/*
 * nothing_to_fill -- POOL.fill is gone, or names no checkpoint of the
 * pool (left by a pull that died before its commit): 0 if the pool has no
 * checkpoint being pulled, else why it cannot be resumed
 */
static int
nothing_to_fill(const char *path)
{
	int64_t id = filling_id(path);
	if (id > 0)
		return ckpt_err_set(ENOENT, "pool %s: checkpoint %lld is being pulled, but the "
				"pull's side files (%s.fill) are gone or damaged: pull it again "
				"into a new pool", path, (long long)id, path);
	return id < 0 ? -1 : 0;
}

static int lock_info(const char *path, int wait);
static int bind_socket(const char *path);
static void remove_side_files(const char *path);
static void fetch_region(struct filler *fl, struct filler_slot *sl, uint64_t r);

/* slot_alloc -- sl's buffers for a region of per chunks: 0, or -1 (ENOMEM) */
static int
slot_alloc(struct filler_slot *sl, uint64_t region, uint64_t per)
{
	int ok = (sl->buf = malloc(region)) && (sl->names = calloc(per, CHUNK_NAME_MAX)) &&
		(sl->np = calloc(per, sizeof(*sl->np))) &&
		(sl->bufs = calloc(per, sizeof(*sl->bufs))) &&
		(sl->lens = calloc(per, sizeof(*sl->lens)));
	return ok ? 0 : ckpt_err_set(ENOMEM, "out of memory");
}

/* slot_free -- sl's buffers */
static void
slot_free(struct filler_slot *sl)
{
	free(sl->buf);
	free(sl->names);
	free(sl->np);
	free(sl->bufs);
	free(sl->lens);
	memset(sl, 0, sizeof(*sl));
}

/*
 * The first region. A program restarting from the pull opens the heap,
 * whose metadata is in region 0, so ckpt_open waits for it. Fetched by the
 * filler after the checkpoint is published, it came after the pool's
 * durable creation and the filler's start, while the program was already
 * waiting. So as soon as the manifest is there, a thread of its own
 * fetches region 0 (on the pull's store connection, which nothing else
 * uses until the filler's fetch thread starts) while this thread creates
 * the pool and publishes the checkpoint; the filler takes it as its first
 * region (run) once the thread is joined. Only the bytes come early: they
 * are checked, written and marked as any region's, after the publish.
 */
struct fill_first {
	pthread_t th;
	struct filler fl;           /* st, m (a copy), per: what fetch_region reads */
	struct filler_slot sl;
	int joined;
};

/* first_thread -- fetch region 0 into the slot */
static void *
first_thread(void *arg)
{
	struct fill_first *ff = arg;
	fetch_region(&ff->fl, &ff->sl, 0);
	return NULL;
}

/* first_start -- region 0 of m from st, in a thread; NULL if it cannot start (no error) */
static struct fill_first *
first_start(struct store *st, const struct manifest *m, uint64_t region)
{
	struct fill_first *ff = calloc(1, sizeof(*ff));
	if (!ff)
		return NULL;
	ff->fl.st = st;
	ff->fl.m = *m;
	ff->fl.per = region / m->h.chunk_size;
	if (m->h.nchunks && slot_alloc(&ff->sl, region, ff->fl.per) == 0 &&
	    pthread_create(&ff->th, NULL, first_thread, ff) == 0)
		return ff;
	ckpt_err_clear();
	slot_free(&ff->sl);
	free(ff);
	return NULL;
}

/* first_join -- wait for region 0's fetch (its error, if any, is in the slot) */
static void
first_join(struct fill_first *ff)
{
	if (ff && !ff->joined) {
		pthread_join(ff->th, NULL);
		ff->joined = 1;
	}
}

/* first_end -- join and free (the slot's buffers too, unless taken) */
static void
first_end(struct fill_first *ff)
{
	if (!ff)
		return;
	first_join(ff);
	slot_free(&ff->sl);
	free(ff);
}

int
remote_pull_lazy(struct store *st, const char *mname, const char *url, const char *path,
		int *complete, struct remote_stats *stats, struct remote_fill_start *fs)
{
	struct manifest m;
	memset(stats, 0, sizeof(*stats));
	*complete = 0;
	fs->lockfd = fs->sock = -1;
	fs->first = NULL;
	if (remote_load_manifest(st, mname, &m) < 0)
		return -1;
	int ret = -1;
	char f[FILL_PATH_MAX];
	struct fill_first *first = NULL;
	if (!(m.h.flags & CAT_F_PAGE_SUMS) || (m.h.flags & CAT_F_SEALED) || !region_of(&m)) {
		ckpt_err_set(ENOTSUP, "manifest %s cannot be pulled lazily (%s): pull it "
				"without --lazy", mname, (m.h.flags & CAT_F_SEALED) ?
				"it is sealed" : !(m.h.flags & CAT_F_PAGE_SUMS) ?
				"its checksum is not paged" : "its chunk size");
		goto out;
	}
	first = first_start(st, &m, region_of(&m));
	struct import_desc d;
	remote_desc_of(&d, &m.h);
	d.lazy = 1;
	struct import im;
	stats->image_bytes = m.h.used;
	stats->chunks = m.h.nchunks;
	stats->manifest_bytes = m.len;
	/* the side files and the lock before the entry: a FILLING entry always
	 * has them (a pull under way into the pool is refused here: its lock) */
	char info[FILL_PATH_MAX];
	struct stat sb;
	if (fill_path(info, path, ".fill") < 0)
		goto out;
	/* side files of a pull that died before its commit are stale */
	if (stat(info, &sb) == 0 && filling_id(path) != 0) {
		ckpt_err_set(EBUSY, "pool %s: a lazy pull is under way (`ckpt-remote fill %s` "
				"resumes or waits for it)", path, path);
		goto out;
	}
	if (fill_path(f, path, ".fill.map") < 0 || write_map(f, &m, region_of(&m)) < 0 ||
	    write_info(info, url, mname, m.h.ckpt_id) < 0 ||
	    (fs->lockfd = lock_info(path, 0)) < 0)
		goto unside;
	fs->sock = bind_socket(path);
	if (import_begin(&im, path, &d) < 0)
		goto unside;
	if (im.present) {
		*complete = 1;
		ret = import_commit(&im, &d);
		goto unside;
	}
	if (im.p)
		pool_discard(im.p);
	fs->st = st;
	fs->m = m;              /* the filler's now */
	fs->first = first;
	return 0;
unside:
	;
	int e = errno;
	remove_side_files(path);
	if (fs->lockfd >= 0)
		close(fs->lockfd);
	if (fs->sock >= 0)
		close(fs->sock);
	fs->lockfd = fs->sock = -1;
	errno = e;
out:
	;
	int e2 = errno;
	first_end(first);       /* before the manifest it reads goes */
	errno = e2;
	manifest_free(&m);
	return ret;
}

/* read_info -- POOL.fill's url, manifest name and checkpoint id */
static int
read_info(int fd, const char *f, char *url, size_t urlmax, char *mname, uint64_t *id)
{
	char buf[8192];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return ckpt_err_set(errno, "cannot read %s: %s", f, strerror(errno));
	buf[n] = 0;
	char *a = buf, *b = strchr(a, '\n'), *c = b ? strchr(b + 1, '\n') : NULL;
	if (!b || !c || (size_t)(b - a) >= urlmax || (size_t)(c - b - 1) >= MANIFEST_NAME_MAX)
		return ckpt_err_set(EINVAL, "%s is damaged", f);
	*b = *c = 0;
	memcpy(url, a, (size_t)(b - a) + 1);
	memcpy(mname, b + 1, (size_t)(c - b));
	char *end;
	*id = strtoull(c + 1, &end, 10);
	if (*id == 0 || *end != '\n')
		return ckpt_err_set(EINVAL, "%s is damaged", f);
	return 0;
}

/* remove_side_files -- the pull is over: its side files go (the log stays) */
static void
remove_side_files(const char *path)
{
	static const char *const sfx[] = { ".fill.map", ".fill.sock", ".fill" };
	char f[FILL_PATH_MAX];
	for (unsigned i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
		if (fill_path(f, path, sfx[i]) == 0)
			unlink(f);
}

/* open_map -- POOL.fill.map mapped shared, checked against checkpoint id */
static int
open_map(struct filler *fl, uint64_t id, uint64_t used)
{
	char f[FILL_PATH_MAX];
	struct stat st;
	if (fill_path(f, fl->path, ".fill.map") < 0)
		return -1;
	int fd = open(f, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ckpt_err_set(errno, "%s: %s", f, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	void *m = (size_t)st.st_size < fill_map_size(0) ? MAP_FAILED :
		mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return ckpt_err_set(EINVAL, "cannot map %s", f);
	fl->map = m;
	fl->map_len = (size_t)st.st_size;
	const struct fill_map *h = fl->map;
	if (h->magic != FILL_MAP_MAGIC || h->ckpt_id != id || h->used != used ||
	    h->region != fl->region || h->nregions != fl->nregions ||
	    fill_map_size(h->nregions) > fl->map_len)
		return ckpt_err_set(EINVAL, "%s does not describe checkpoint %llu", f,
				(unsigned long long)id);
	return 0;
}

/*
 * bind_socket -- POOL.fill.sock, where restarting processes ask for
 * regions; -1 if it cannot be made (regions then come in address order)
 */
static int
bind_socket(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char f[FILL_PATH_MAX];
	if (fill_path(f, path, ".fill.sock") < 0 || strlen(f) >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, f, strlen(f) + 1);
	unlink(f);
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
		chmod(f, 0666);     /* any process that can open the pool may ask */
		return s;
	}
	if (s >= 0)
		close(s);
	return -1;
}

/* lock_info -- open POOL.fill and take its lock (wait: block for it) */
static int
lock_info(const char *path, int wait)
{
	char f[FILL_PATH_MAX];
	if (fill_path(f, path, ".fill") < 0)
		return -1;
	int fd = open(f, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_set(errno, errno == ENOENT ? "pool %s has no lazy pull under way "
				"(%s: %s)" : "pool %s: %s: %s", path, f, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 ||
	    (errno == EWOULDBLOCK && wait && flock(fd, LOCK_EX) == 0))
		return fd;
	int e = errno;
	close(fd);
	return e == EWOULDBLOCK ? ckpt_err_set(EBUSY, "pool %s: a filler is running already",
			path) : ckpt_err_set(e, "cannot lock %s: %s", f, strerror(e));
}


/* word -- region r's word in the shared map */
static _Atomic uint32_t *
word(struct filler *fl, uint64_t r)
{
	return (_Atomic uint32_t *)&fill_words(fl->map)[r];
}

/*
 * next_region -- the fetch thread's choice: asked for first, then address
 * order; -1: none left; -2: none now (stalled by CKPT_TEST_FILL_STALL)
 */
static int64_t
next_region(struct filler *fl)
{
	uint64_t r;
	while (fl->sock >= 0 && recv(fl->sock, &r, sizeof(r), MSG_DONTWAIT) == (ssize_t)sizeof(r))
		if (r < fl->nregions && !fl->taken[r] && fl->nasked < FILLER_ASKED)
			fl->asked[fl->nasked++] = r;
	while (fl->nasked) {
		r = fl->asked[0];
		memmove(fl->asked, fl->asked + 1, --fl->nasked * sizeof(fl->asked[0]));
		if (!fl->taken[r])
			return (int64_t)r;
	}
	while (fl->cursor < fl->nregions && fl->taken[fl->cursor])
		fl->cursor++;
	if (fl->stall && fl->cursor >= fl->stall && fl->cursor < fl->nregions)
		return -2;
	return fl->cursor < fl->nregions ? (int64_t)fl->cursor : -1;
}

/* fetch_region -- region r's non-zero chunks into sl (no lock held) */
static void
fetch_region(struct filler *fl, struct filler_slot *sl, uint64_t r)
{
	const struct manifest *m = &fl->m;
	uint64_t first = r * fl->per;
	uint64_t n = m->h.nchunks - first < fl->per ? m->h.nchunks - first : fl->per;
	sl->r = r;
	sl->g = 0;
	for (uint64_t k = 0; k < n; k++) {
		const struct chunk_hash *c = &m->chunks[first + k];
		if (chunk_is_zero(c))
			continue;
		chunk_name(c, sl->names[sl->g]);
		sl->np[sl->g] = sl->names[sl->g];
		sl->bufs[sl->g] = sl->buf + k * m->h.chunk_size;
		sl->g++;
	}
	sl->err = 0;
	if (store_get(fl->st, sl->g, sl->np, sl->bufs, m->h.chunk_size, sl->lens) < 0) {
		sl->err = errno ? errno : EIO;
		snprintf(sl->msg, sizeof(sl->msg), "%s", ckpt_errormsg());
	}
}

/* fetch_thread -- region after region into the slots in turn; ends after the last, or stop */
static void *
fetch_thread(void *arg)
{
	struct filler *fl = arg;
	for (uint64_t b = fl->first != NULL;; b++) {
		struct filler_slot *sl = &fl->slot[b % FILLER_SLOTS];
		pthread_mutex_lock(&fl->mu);
		while (sl->ready && !fl->stop)
			pthread_cond_wait(&fl->cv, &fl->mu);
		int stop = fl->stop;
		pthread_mutex_unlock(&fl->mu);
		int64_t r = stop ? -1 : next_region(fl);
		while (r == -2) {   /* stalled (a test): only asked-for regions */
			struct pollfd pf = { .fd = fl->sock, .events = POLLIN };
			poll(&pf, fl->sock >= 0 ? 1 : 0, 100);
			pthread_mutex_lock(&fl->mu);
			stop = fl->stop;
			pthread_mutex_unlock(&fl->mu);
			r = stop ? -1 : next_region(fl);
		}
		if (r >= 0) {
			fl->taken[r] = 1;
			fetch_region(fl, sl, (uint64_t)r);
		}
		pthread_mutex_lock(&fl->mu);
		sl->r = r < 0 ? UINT64_MAX : (uint64_t)r;
		sl->ready = 1;
		pthread_cond_broadcast(&fl->cv);
		pthread_mutex_unlock(&fl->mu);
		if (r < 0 || sl->err)
			break;
	}
	return NULL;
}

/* mark -- region r is done (or bad): set its word, wake its waiters */
static void
mark(struct filler *fl, uint64_t r, uint32_t v)
{
	atomic_store_explicit(word(fl, r), v, memory_order_release);
	fill_wake((uint32_t *)word(fl, r));
}

/*
 * take_region -- check sl's chunks against their names; write the
 * region's bytes and page sums, then mark it (bad, with the first reason,
 * if a chunk is corrupted or missing); -1 only when the pool cannot be
 * written
 */
static int
take_region(struct filler *fl, struct filler_slot *sl)
{
	const struct manifest *m = &fl->m;
	uint32_t cs = m->h.chunk_size;
	uint64_t r = sl->r, first = r * fl->per, off = r * fl->region;
	uint64_t end = off + fl->region < m->h.used ? off + fl->region : m->h.used;
	unsigned g = 0;
	char why[CKPT_ERRMSG_MAX] = "";
	for (uint64_t i = first; i * cs < end; i++) {
		char *b = sl->buf + (i - first) * cs;
		size_t want = (size_t)(m->h.used - i * cs < cs ? m->h.used - i * cs : cs);
		const struct chunk_hash *c = &m->chunks[i];
		if (chunk_is_zero(c)) {
			memset(b, 0, want);
			continue;
		}
		size_t got = sl->lens[g];
		const char *nm = sl->names[g++];
		struct chunk_hash h = got == want ? chunk_hash_of(b, got) : (struct chunk_hash){ 0, 0 };
		if (got == STORE_MISSING || got != want || h.hi != c->hi || h.lo != c->lo) {
			snprintf(why, sizeof(why), "chunk %s (chunk %llu of manifest %s) is %s", nm,
				(unsigned long long)i, fl->mname, got == STORE_MISSING ?
				"missing from the store" : got != want ? "corrupted: wrong size" :
				"corrupted: its content does not match its name");
			break;
		}
	}
	if (why[0]) {
		if (!fl->bad++)
			snprintf(fl->map->bad_reason, sizeof(fl->map->bad_reason), "%s", why);
		fprintf(stderr, "ckpt-remote: fill %s: %s\n", fl->path, why);
		mark(fl, r, FILL_BAD);
		return 0;
	}
	for (uint64_t o = off; o < end; o += SUMS_PAGE)
		fl->sums[o / SUMS_PAGE] = sums_page(sl->buf + (o - off));
	struct ckpt_pool *p = fl->im.p;
	/* zero chunks stay holes: the segment was punched when it was reserved */
	for (uint64_t i = first; i * cs < end;) {
		if (chunk_is_zero(&m->chunks[i])) {
			i++;
			continue;
		}
		uint64_t e = i;
		while (e * cs < end && !chunk_is_zero(&m->chunks[e]))
			e++;
		uint64_t a = i * cs, z = e * cs < end ? e * cs : end;
		if (import_write(&fl->im, a, sl->buf + (a - off), (size_t)(z - a)) < 0)
			return -1;
		i = e;
	}
	if (sums_store(p->fd, layout_sums_off(&p->hdr, fl->im.seg) + off / SUMS_PAGE * 8,
			fl->sums + off / SUMS_PAGE, (end - off) / SUMS_PAGE) < 0)
		return -1;
	mark(fl, r, FILL_DONE);
	return 0;
}

/*
 * region_intact -- the pool file's region [off, end) (in buf) holds the
 * manifest's chunks: an earlier filler marked it, but neither the file nor
 * the map were made durable before a machine crash
 */
static int
region_intact(const struct filler *fl, const char *buf, uint64_t off, uint64_t end)
{
	uint32_t cs = fl->m.h.chunk_size;
	for (uint64_t a = off; a < end; a += cs) {
		size_t n = (size_t)(end - a < cs ? end - a : cs);
		const struct chunk_hash *c = &fl->m.chunks[a / cs];
		const char *b = buf + (a - off);
		if (chunk_is_zero(c)) {
			if (b[0] || memcmp(b, b + 1, n - 1))
				return 0;
			continue;
		}
		struct chunk_hash h = chunk_hash_of(b, n);
		if (h.hi != c->hi || h.lo != c->lo)
			return 0;
	}
	return 1;
}

/*
 * resum_done -- the regions an earlier filler marked: checked against the
 * manifest (fetched again if they do not match), their page sums computed
 * from the pool file
 */
static int
resum_done(struct filler *fl)
{
	struct ckpt_pool *p = fl->im.p;
	char *buf = fl->slot[0].buf;
	for (uint64_t r = 0; r < fl->nregions; r++) {
		uint32_t v = atomic_load(word(fl, r));
		if (v != FILL_DONE) {
			if (v == FILL_BAD)
				mark(fl, r, 0);     /* the store may have it right now */
			continue;
		}
		uint64_t off = r * fl->region;
		uint64_t end = off + fl->region < fl->m.h.used ? off + fl->region : fl->m.h.used;
		if (pread(p->fd, buf, (size_t)(end - off), (off_t)(seg_off(p, fl->im.seg) + off)) !=
		    (ssize_t)(end - off))
			return ckpt_err_set(EIO, "cannot read pool %s", fl->path);
		if (!region_intact(fl, buf, off, end)) {
			mark(fl, r, 0);
			continue;
		}
		fl->taken[r] = 1;
		for (uint64_t o = off; o < end; o += SUMS_PAGE)
			fl->sums[o / SUMS_PAGE] = sums_page(buf + (o - off));
	}
	return 0;
}

/* run -- fetch (thread) and take (here) every region not done yet */
static int
run(struct filler *fl)
{
	if (fl->first && fl->taken[0]) {       /* resumed with region 0 there */
		first_end(fl->first);
		fl->first = NULL;
	}
	if (fl->first) {        /* region 0 is slot 0's, the fetch thread starts at 1 */
		first_join(fl->first);
		slot_free(&fl->slot[0]);
		fl->slot[0] = fl->first->sl;
		memset(&fl->first->sl, 0, sizeof(fl->first->sl));
		fl->slot[0].ready = 1;
		fl->taken[0] = 1;
	}
	pthread_t t;
	int rc = pthread_create(&t, NULL, fetch_thread, fl);
	if (rc != 0)
		return ckpt_err_set(rc, "cannot start the fetch thread: %s", strerror(rc));
	int ret = 0;
	for (uint64_t b = 0;; b++) {
		struct filler_slot *sl = &fl->slot[b % FILLER_SLOTS];
		pthread_mutex_lock(&fl->mu);
		while (!sl->ready)
			pthread_cond_wait(&fl->cv, &fl->mu);
		pthread_mutex_unlock(&fl->mu);
		if (sl->r == UINT64_MAX)
			break;
		if (sl->err) {
			ret = ckpt_err_set(sl->err, "%s", sl->msg);
			break;
		}
		ret = take_region(fl, sl);
		pthread_mutex_lock(&fl->mu);
		sl->ready = 0;
		fl->stop = ret < 0;
		pthread_cond_broadcast(&fl->cv);
		pthread_mutex_unlock(&fl->mu);
		if (ret < 0)
			break;
	}
	int e = errno;
	pthread_mutex_lock(&fl->mu);
	fl->stop = 1;
	pthread_cond_broadcast(&fl->cv);
	pthread_mutex_unlock(&fl->mu);
	pthread_join(t, NULL);
	errno = e;
	return ret;
}

/* finish -- every region there: check, store the sums, publish */
static int
finish(struct filler *fl, uint64_t id)
{
	uint64_t npages = fl->m.h.used / SUMS_PAGE;
	if (fl->bad)
		return ckpt_err_set(EIO, "%llu region(s) cannot be pulled; the first: %s",
				(unsigned long long)fl->bad, fl->map->bad_reason);
	if (sums_top(fl->sums, npages) != fl->m.h.checksum)
		return ckpt_err_set(EINVAL, "manifest %s: the image rebuilt from its chunks does "
				"not match the checkpoint's checksum", fl->mname);
	struct import_desc d = { .flags = CAT_F_PAGE_SUMS, .used = fl->m.h.used };
	if (import_sums(&fl->im, &d, fl->sums, npages) < 0)
		return -1;
	return import_fill_commit(&fl->im, id);
}

/* filler_free -- release what fl holds (the import included) */
static void
filler_free(struct filler *fl)
{
	first_end(fl->first);   /* before the store it uses closes */
	for (unsigned i = 0; i < FILLER_SLOTS; i++)
		slot_free(&fl->slot[i]);
	if (fl->im.p)
		pool_discard(fl->im.p);
	if (fl->map)
		munmap(fl->map, fl->map_len);
	if (fl->sock >= 0)
		close(fl->sock);
	free(fl->taken);
	free(fl->sums);
	store_close(fl->st);
	manifest_free(&fl->m);
}

/*
 * prepare -- the store and manifest (fs's, or fetched), the map, the
 * buffers of a new or resumed fill
 */
static int
prepare(struct filler *fl, const char *url, const struct cat_entry *e,
		struct remote_fill_start *fs)
{
	if (fs && fs->st) {
		fl->st = fs->st;
		fl->m = fs->m;
		fl->first = fs->first;
		fs->st = NULL;
		fs->first = NULL;
	} else if (!(fl->st = store_open(url)) ||
		   remote_load_manifest(fl->st, fl->mname, &fl->m) < 0) {
		return -1;
	}
	const struct manifest_hdr *h = &fl->m.h;
	if (h->ckpt_id != e->ckpt_id || h->used != e->used || h->checksum != e->checksum ||
	    !region_of(&fl->m) || h->used % SUMS_PAGE)
		return ckpt_err_set(EINVAL, "manifest %s does not describe checkpoint %llu "
				"being pulled", fl->mname, (unsigned long long)e->ckpt_id);
	fl->region = region_of(&fl->m);
	fl->per = fl->region / h->chunk_size;
	fl->nregions = (h->used + fl->region - 1) / fl->region;
	if (open_map(fl, e->ckpt_id, e->used) < 0)
		return -1;
	fl->taken = calloc(fl->nregions ? fl->nregions : 1, 1);
	fl->sums = calloc(h->used / SUMS_PAGE + 1, sizeof(*fl->sums));
	int ok = fl->taken && fl->sums;
	if (!ok)
		return ckpt_err_set(ENOMEM, "out of memory");
	for (unsigned i = 0; i < FILLER_SLOTS; i++)
		if (slot_alloc(&fl->slot[i], fl->region, fl->per) < 0)
			return -1;
	return 0;
}


int
remote_fill(const char *path, int wait, struct remote_fill_start *fs)
{
	struct filler fl;
	memset(&fl, 0, sizeof(fl));
	fl.path = path;
	fl.sock = fs ? fs->sock : -1;
	int lockfd = fs ? fs->lockfd : -1;
	char f[FILL_PATH_MAX], url[4096];
	uint64_t id = 0;
	int ret = -1;
	if (lockfd < 0 && (lockfd = lock_info(path, wait)) < 0) {
		if (errno == ENOENT)
			ret = nothing_to_fill(path);
		goto out;
	}
	if (fill_path(f, path, ".fill") < 0 ||
	    read_info(lockfd, f, url, sizeof(url), fl.mname, &id) < 0)
		goto out;
	struct cat_entry e;
	if (import_resume(&fl.im, path, id, &e) < 0) {
		if (errno == ENOENT && (ret = nothing_to_fill(path)) == 0)
			remove_side_files(path);    /* stale: left before a commit */
		goto out;
	}
	if (fl.im.present) {        /* another filler published it */
		remove_side_files(path);
		ret = 0;
		goto out;
	}
	if (prepare(&fl, url, &e, fs) < 0)
		goto out;
	fl.map->stopped = 0;
	fl.stall = test_number("CKPT_TEST_FILL_STALL");
	if (fl.sock < 0)
		fl.sock = bind_socket(path);
	if (resum_done(&fl) < 0)
		goto out;
	pthread_mutex_init(&fl.mu, NULL);
	pthread_cond_init(&fl.cv, NULL);
	ret = run(&fl);
	pthread_cond_destroy(&fl.cv);
	pthread_mutex_destroy(&fl.mu);
	if (ret == 0)
		ret = finish(&fl, id);
	if (ret == 0) {
		remove_side_files(path);
	} else {
		snprintf(fl.map->stop_reason, sizeof(fl.map->stop_reason), "%s", ckpt_errormsg());
		atomic_store((_Atomic uint32_t *)&fl.map->stopped, 1);
	}
out:
	;
	int en = errno;
	if (fs && fs->st) {         /* not taken over */
		first_end(fs->first);
		fs->first = NULL;
		store_close(fs->st);
		manifest_free(&fs->m);
		fs->st = NULL;
	}
	filler_free(&fl);
	if (lockfd >= 0)
		close(lockfd);
	errno = en;
	return ret;
}
