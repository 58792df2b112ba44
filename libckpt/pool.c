/*
 * pool.c -- creating, opening and closing pools; giving the calling process
 * its live segment.
 *
 * Order of work in create/open is chosen so that a failure changes nothing
 * the user owns: every check that can fail (file, header, catalog, base
 * address) runs before the catalog is changed, and a pool file is removed
 * on failure only if this call created it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "layout.h"
#include "owner.h"
#include "pool.h"
#include "segcopy.h"

uint64_t
pool_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
pool_seg_off(const struct ckpt_pool *p, uint32_t i)
{
	return layout_seg_off(&p->hdr, i);
}

int
pool_usable(const struct ckpt_pool *p)
{
	if (!p)
		return ckpt_err_set(EINVAL, "pool is NULL");
	if (p->detached)
		return ckpt_err_set(ENOSPC,
			"this process has no durable segment: the pool had none free "
			"when it was forked, so its heap is a private volatile copy");
	return 0;
}

const char *
pool_kind_name(const struct ckpt_pool *p)
{
	return map_kind_name(p->heap_map.kind);
}

int
pool_entry_dead(const struct ckpt_pool *p, const struct cat_view *v, uint32_t i)
{
	const struct cat_entry *e = &v->e[i];
	/* a fork reservation belongs to whoever holds its lease (the parent
	 * while it fills it, then the child until it claims it), whatever
	 * owner it records: one of our own can be abandoned (fork failed) */
	int fork_pending = e->state == CAT_BUSY && (e->flags & CAT_F_FORK_PENDING);
	if (!fork_pending && owner_equal(&e->owner, &p->self))
		return 0;
	return cat_entry_dead(p->fd, e, i);
}

int
pool_take_segment(struct ckpt_pool *p, struct cat_view *v, uint64_t *punch)
{
	*punch = 0;
	for (uint32_t i = 0; i < v->n; i++)
		if (v->e[i].state == CAT_FREE)
			return (int)i;
	/* none free: reclaim the oldest dead one, leftovers of crashed
	 * checkpoints and forks (BUSY) before dead heaps (LIVE) */
	int best = -1;
	for (uint32_t i = 0; i < v->n; i++) {
		const struct cat_entry *e = &v->e[i];
		if (!pool_entry_dead(p, v, i))
			continue;
		if (best < 0) {
			best = (int)i;
			continue;
		}
		const struct cat_entry *b = &v->e[best];
		if ((e->state == CAT_BUSY && b->state != CAT_BUSY) ||
		    (e->state == b->state && e->time_ns < b->time_ns))
			best = (int)i;
	}
	if (best < 0)
		return ckpt_err_set(ENOSPC, "no free segment: all %u segments of the pool are in use",
				v->n);
	*punch = p->hdr.seg_size;
	cat_free_entry(&v->e[best]);
	return best;
}

int
pool_grow(void *arg, uint64_t off, uint64_t len)
{
	struct ckpt_pool *p = arg;
	if (p->detached)
		return 0;           /* a private volatile copy: no blocks of ours to back */
	if (fallocate(p->fd, 0, (off_t)(pool_seg_off(p, p->seg) + off), (off_t)len) < 0 &&
	    errno != EOPNOTSUPP)
		return ckpt_err_set(errno, "cannot extend the heap on disk: %s",
				strerror(errno));
	return 0;
}

/* pool_new -- allocate a handle with nothing open */
static struct ckpt_pool *
pool_new(const char *path)
{
	struct ckpt_pool *p = calloc(1, sizeof(*p));
	if (!p) {
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	p->fd = -1;
	p->fork_seg = -1;
	p->fork_memfd = -1;
	p->fork_fd = -1;
	p->path = strdup(path);
	if (!p->path) {
		free(p);
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	return p;
}

/* pool_free -- release a handle; unmaps what is mapped, closes the file */
static void
pool_free(struct ckpt_pool *p)
{
	if (p->heap)
		heap_detach(p->heap);
	map_unmap(&p->heap_map);
	if (p->cat.scratch)
		cat_detach(&p->cat);
	if (p->fd >= 0)
		close(p->fd);
	pthread_mutex_destroy(&p->mu);
	free(p->path);
	free(p);
}

_Static_assert(POOL_BASE_ALIGN % HEAP_SEG_ALIGN == 0,
	"pool bases must satisfy the heap's segment alignment");

/* pool_pick_base -- reserve the base for a new pool: cfg's, or the first free default range */
static int
pool_pick_base(const struct ckpt_config *cfg, uint64_t seg_size, uint64_t *base)
{
	if (cfg && cfg->base) {
		uint64_t b = (uint64_t)(uintptr_t)cfg->base, top;
		if (b % POOL_BASE_ALIGN != 0 || add_overflows(b, seg_size, &top) ||
		    top > POOL_USER_TOP)
			return ckpt_err_set(EINVAL, "base %p is not a 2 MiB-aligned user address "
					"with room for a segment", cfg->base);
		*base = b;
		return map_reserve(cfg->base, seg_size);
	}
	uint64_t step = align_up(seg_size, POOL_BASE_STEP);
	for (uint64_t b = POOL_DEFAULT_BASE; b + seg_size <= POOL_USER_TOP; b += step) {
		if (map_reserve((void *)(uintptr_t)b, seg_size) == 0) {
			*base = b;
			return 0;
		}
	}
	return ckpt_err_set(EADDRINUSE, "no free address range for a pool's heap");
}

/* format_grow -- pool_grow for heap_format, remembering the errno of a failure */
struct format_grow_arg {
	struct ckpt_pool *p;
	int err;
};

static int
format_grow(void *arg, uint64_t off, uint64_t len)
{
	struct format_grow_arg *a = arg;
	if (pool_grow(a->p, off, len) < 0) {
		a->err = errno;
		return -1;
	}
	return 0;
}

/*
 * pool_attach_segment -- map segment seg at the base (over our reservation)
 * and attach its heap; fresh: format an empty heap first.
 */
static int
pool_attach_segment(struct ckpt_pool *p, int fresh)
{
	void *base = (void *)(uintptr_t)p->hdr.base;
	if (map_file(&p->heap_map, p->fd, pool_seg_off(p, p->seg), p->hdr.seg_size, base, 1) < 0)
		return -1;
	struct format_grow_arg fg = { p, 0 };
	if (fresh && heap_format(base, p->hdr.seg_size, format_grow, &fg) < 0) {
		/* heap_format reports a failed grow as ENOMEM, as an allocation
		 * does; creating a pool, the disk's reason (ENOSPC, EIO) is the answer */
		if (fg.err)
			errno = fg.err;
		return -1;
	}
	p->heap = heap_attach(base, p->hdr.seg_size, pool_grow, p);
	if (!p->heap) {
		ckpt_err_prefix("segment %u: ", p->seg);
		return -1;
	}
	return 0;
}

/* pool_release_segment -- free our catalog entry after a failed start */
static void
pool_release_segment(struct ckpt_pool *p)
{
	struct cat_view v;
	int saved = errno;
	char msg[CKPT_ERRMSG_MAX];
	snprintf(msg, sizeof(msg), "%s", ckpt_errormsg());
	if (cat_begin(&p->cat, &v) == 0) {
		if (v.e[p->seg].state != CAT_FREE && owner_equal(&v.e[p->seg].owner, &p->self)) {
			cat_free_entry(&v.e[p->seg]);
			if (cat_commit(&p->cat) == 0)
				segcopy_punch(p->fd, pool_seg_off(p, p->seg), p->hdr.seg_size);
		} else {
			cat_end(&p->cat);
		}
	}
	ckpt_err_set(saved, "%s", msg);
}

/* config_keep -- keep_checkpoints from cfg, with its default */
static unsigned
config_keep(const struct ckpt_config *cfg, unsigned fallback)
{
	return cfg && cfg->keep_checkpoints ? cfg->keep_checkpoints : fallback;
}

CKPT_EXPORT ckpt_pool *
ckpt_create(const char *path, const struct ckpt_config *cfg)
{
	if (!path || !*path) {
		ckpt_err_set(EINVAL, "pool path is empty");
		return NULL;
	}
	struct pool_hdr hdr;
	memset(&hdr, 0, sizeof(hdr));
	uint64_t heap_size = cfg && cfg->heap_size ? cfg->heap_size : POOL_DEFAULT_HEAP;
	uint64_t nseg = cfg && cfg->max_segments ? cfg->max_segments : POOL_DEFAULT_SEGMENTS;
	if (cfg && (unsigned)cfg->fork_mode > CKPT_FORK_SHARED) {
		ckpt_err_set(EINVAL, "unknown fork mode %d", (int)cfg->fork_mode);
		return NULL;
	}
	if (layout_compute(&hdr, heap_size, nseg) < 0)
		return NULL;
	memcpy(hdr.magic, POOL_MAGIC, sizeof(hdr.magic));
	hdr.major = POOL_FORMAT_MAJOR;
	hdr.minor = POOL_FORMAT_MINOR;
	hdr.created_ns = pool_now_ns();
	hdr.fork_mode = cfg ? (uint32_t)cfg->fork_mode : CKPT_FORK_AUTO;
	hdr.keep_checkpoints = config_keep(cfg, POOL_DEFAULT_KEEP);
	if (getrandom(hdr.uuid, sizeof(hdr.uuid), 0) != (ssize_t)sizeof(hdr.uuid)) {
		ckpt_err_set(EIO, "cannot get random bytes for the pool uuid");
		return NULL;
	}

	struct ckpt_pool *p = pool_new(path);
	if (!p)
		return NULL;
	if (owner_self(&p->self) < 0 || pool_pick_base(cfg, hdr.seg_size, &hdr.base) < 0) {
		pool_free(p);
		return NULL;
	}
	layout_seal(&hdr);
	p->hdr = hdr;

	mode_t mode = cfg && cfg->mode ? cfg->mode : 0600;
	int created = 0;
	p->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (p->fd < 0) {
		ckpt_err_set(errno, "cannot create pool %s: %s", path, strerror(errno));
		goto fail;
	}
	created = 1;
	char page[POOL_PAGE];
	memset(page, 0, sizeof(page));
	memcpy(page, &hdr, sizeof(hdr));
	if (ftruncate(p->fd, (off_t)hdr.file_size) < 0) {
		ckpt_err_set(errno == EINVAL ? EFBIG : errno,
			"cannot size pool %s to %llu bytes: %s", path,
			(unsigned long long)hdr.file_size, strerror(errno));
		goto fail;
	}
	if (fallocate(p->fd, 0, 0, (off_t)hdr.data_off) < 0 && errno != EOPNOTSUPP) {
		ckpt_err_set(errno, "cannot allocate pool %s: %s", path, strerror(errno));
		goto fail;
	}
	if (cat_init_file(p->fd, &hdr) < 0)
		goto fail;
	if (pwrite(p->fd, page, sizeof(page), POOL_HDR_OFF) != (ssize_t)sizeof(page)) {
		ckpt_err_set(errno ? errno : EIO, "cannot write the pool header: %s",
				strerror(errno));
		goto fail;
	}
	if (fdatasync(p->fd) < 0) {
		ckpt_err_set(errno, "cannot make pool %s durable: %s", path, strerror(errno));
		goto fail;
	}
	if (cat_attach(&p->cat, p->fd, &hdr) < 0)
		goto fail;
	p->fork_mode = (enum ckpt_fork_mode)hdr.fork_mode;
	p->keep = hdr.keep_checkpoints;

	/* segment 0 becomes our live heap */
	struct cat_view v;
	if (cat_lease_take(p->fd, 0) < 0 || cat_begin(&p->cat, &v) < 0)
		goto fail;
	p->seg = 0;
	p->life = p->lineage = v.h->next_life++;
	v.e[0].life = v.e[0].lineage = p->life;
	v.e[0].state = CAT_LIVE;
	v.e[0].owner = p->self;
	v.e[0].time_ns = pool_now_ns();
	if (cat_commit(&p->cat) < 0)
		goto fail;
	if (pool_attach_segment(p, 1) < 0 || fork_mode_resolve(p, p->fork_mode) < 0 ||
	    fork_register(p) < 0)
		goto fail;
	return p;
fail:
	{
		int saved = errno;
		if (created)
			unlink(path);
		if (p->heap_map.addr == NULL)
			munmap((void *)(uintptr_t)hdr.base, hdr.seg_size);
		pool_free(p);
		errno = saved;
	}
	return NULL;
}

/* pool_read_header -- pread and validate the header of an opened file */
static int
pool_read_header(struct ckpt_pool *p)
{
	struct stat st;
	if (fstat(p->fd, &st) < 0)
		return ckpt_err_set(errno, "cannot stat %s: %s", p->path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode))
		return ckpt_err_set(EINVAL, "%s is not a regular file or device", p->path);
	uint64_t size = (uint64_t)st.st_size;
	memset(&p->hdr, 0, sizeof(p->hdr));
	ssize_t n = pread(p->fd, &p->hdr, sizeof(p->hdr), POOL_HDR_OFF);
	if (n < 0)
		return ckpt_err_set(errno, "cannot read %s: %s", p->path, strerror(errno));
	if (layout_check(&p->hdr, (uint64_t)n < sizeof(p->hdr) ? (uint64_t)n : size) < 0) {
		ckpt_err_prefix("%s: ", p->path);
		return -1;
	}
	return 0;
}

/* find_checkpoint -- index of checkpoint id (CKPT_LATEST: newest), or -1 ENOENT */
static int
find_checkpoint(const struct cat_view *v, ckpt_id id)
{
	int best = -1;
	for (uint32_t i = 0; i < v->n; i++) {
		if (v->e[i].state != CAT_CKPT)
			continue;
		if (id != CKPT_LATEST ? v->e[i].ckpt_id == id
		    : (best < 0 || v->e[i].ckpt_id > v->e[best].ckpt_id))
			best = (int)i;
	}
	return best;
}

/* older_checkpoint -- index of the newest checkpoint older than id, or -1 */
static int
older_checkpoint(const struct cat_view *v, ckpt_id id)
{
	int best = -1;
	for (uint32_t i = 0; i < v->n; i++)
		if (v->e[i].state == CAT_CKPT && v->e[i].ckpt_id < id &&
		    (best < 0 || v->e[i].ckpt_id > v->e[best].ckpt_id))
			best = (int)i;
	return best;
}

/*
 * checkpoint_verify -- check a checkpoint's contents against its recorded
 * checksum, reading the segment through a temporary read-only mapping.
 */
static int
checkpoint_verify(struct ckpt_pool *p, const struct cat_entry *e, uint32_t seg)
{
	if (e->used == 0)
		return e->checksum == XXH3_64bits("", 0) ? 0 :
			ckpt_err_set(EINVAL, "checkpoint %llu: checksum mismatch",
				(unsigned long long)e->ckpt_id);
	void *m = mmap(NULL, e->used, PROT_READ, MAP_SHARED, p->fd,
			(off_t)pool_seg_off(p, seg));
	if (m == MAP_FAILED)
		return ckpt_err_set(errno, "cannot map checkpoint %llu: %s",
				(unsigned long long)e->ckpt_id, strerror(errno));
	uint64_t sum = XXH3_64bits(m, e->used);
	munmap(m, e->used);
	if (sum != e->checksum)
		return ckpt_err_set(EINVAL,
			"checkpoint %llu (segment %u) is damaged: checksum mismatch",
			(unsigned long long)e->ckpt_id, seg);
	return 0;
}

CKPT_EXPORT ckpt_pool *
ckpt_open(const char *path, ckpt_id from, const struct ckpt_config *cfg)
{
	if (!path || !*path) {
		ckpt_err_set(EINVAL, "pool path is empty");
		return NULL;
	}
	if (cfg && (unsigned)cfg->fork_mode > CKPT_FORK_SHARED) {
		ckpt_err_set(EINVAL, "unknown fork mode %d", (int)cfg->fork_mode);
		return NULL;
	}
	struct ckpt_pool *p = pool_new(path);
	if (!p)
		return NULL;
	int reserved = 0;
	if (owner_self(&p->self) < 0)
		goto fail;
	p->fd = open(path, O_RDWR | O_CLOEXEC);
	if (p->fd < 0) {
		ckpt_err_set(errno, "cannot open pool %s: %s", path, strerror(errno));
		goto fail;
	}
	if (pool_read_header(p) < 0)
		goto fail;
	if (cat_attach(&p->cat, p->fd, &p->hdr) < 0)
		goto fail;
	p->fork_mode = cfg && cfg->fork_mode ? cfg->fork_mode
		: (enum ckpt_fork_mode)p->hdr.fork_mode;
	p->keep = config_keep(cfg, p->hdr.keep_checkpoints ? p->hdr.keep_checkpoints
			: POOL_DEFAULT_KEEP);
	if (fork_mode_resolve(p, p->fork_mode) < 0)
		goto fail;
	if (map_reserve((void *)(uintptr_t)p->hdr.base, p->hdr.seg_size) < 0) {
		ckpt_err_prefix("cannot open pool %s at its base: ", path);
		goto fail;
	}
	reserved = 1;

	/* choose the checkpoint and a segment, and claim it (BUSY) */
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		goto fail;
	int src = find_checkpoint(&v, from);
	if (src < 0) {
		cat_end(&p->cat);
		if (from == CKPT_LATEST)
			ckpt_err_set(ENOENT, "pool %s has no checkpoint to open", path);
		else
			ckpt_err_set(ENOENT, "pool %s has no checkpoint %llu", path,
					(unsigned long long)from);
		goto fail;
	}
	/* a checkpoint is used only if its bytes match its checksum;
	 * CKPT_LATEST falls back to the newest one that does */
	while (checkpoint_verify(p, &v.e[src], (uint32_t)src) < 0) {
		int next = from == CKPT_LATEST ? older_checkpoint(&v, v.e[src].ckpt_id) : -1;
		if (next < 0) {
			cat_end(&p->cat);
			if (from == CKPT_LATEST)
				ckpt_err_prefix("pool %s has no valid checkpoint; last tried: ", path);
			goto fail;
		}
		src = next;
	}
	uint64_t punch;
	int seg = pool_take_segment(p, &v, &punch);
	if (seg < 0) {
		cat_end(&p->cat);
		goto fail;
	}
	if (cat_lease_take(p->fd, (uint32_t)seg) < 0) {
		cat_end(&p->cat);
		goto fail;
	}
	struct cat_entry srce = v.e[src];
	p->seg = (uint32_t)seg;
	/* a restarted heap continues the checkpoint's lineage (format.h) */
	p->life = v.h->next_life++;
	p->lineage = srce.lineage;
	p->restarted_from = srce.ckpt_id;
	v.e[seg].life = p->life;
	v.e[seg].lineage = p->lineage;
	v.e[seg].state = CAT_BUSY;
	v.e[seg].owner = p->self;
	v.e[seg].time_ns = pool_now_ns();
	if (cat_commit(&p->cat) < 0)
		goto fail;

	/* copy outside the lock: the checkpoint is immutable, the segment ours */
	int cloned;
	const struct segcopy_opts o = { .kind = SEGCOPY_KIND_PROBE,
		.mid_point = "restart:mid-copy" };
	if (segcopy(p->fd, pool_seg_off(p, (uint32_t)src), pool_seg_off(p, p->seg),
			srce.used, p->hdr.seg_size, SEGCOPY_ANY, &o, &cloned) < 0)
		goto fail_release;
	if (cat_begin(&p->cat, &v) < 0)
		goto fail_release;
	v.e[seg].state = CAT_LIVE;
	v.e[seg].source = (uint32_t)src;
	v.e[seg].ckpt_id = srce.ckpt_id;
	v.e[seg].used = srce.used;
	v.e[seg].time_ns = pool_now_ns();
	if (cat_commit(&p->cat) < 0)
		goto fail_release;
	if (pool_attach_segment(p, 0) < 0 || fork_register(p) < 0)
		goto fail_release;
	return p;
fail_release:
	pool_release_segment(p);
fail:
	{
		int saved = errno;
		if (reserved && p->heap_map.addr == NULL)
			munmap((void *)(uintptr_t)p->hdr.base, p->hdr.seg_size);
		pool_free(p);
		errno = saved;
	}
	return NULL;
}

CKPT_EXPORT int
ckpt_close(ckpt_pool *p)
{
	if (!p)
		return ckpt_err_set(EINVAL, "pool is NULL");
	fork_unregister(p);
	bgsave_forget(p);
	pthread_mutex_lock(&p->mu);
	int ret = 0;
	if (p->heap) {
		heap_detach(p->heap);
		p->heap = NULL;
	}
	map_unmap(&p->heap_map);
	if (!p->detached) {
		struct cat_view v;
		if (cat_begin(&p->cat, &v) < 0) {
			ret = -1;
		} else {
			/* our live segment, and reservations for fork children
			 * that never claimed them (the fork failed or the child
			 * died first: nobody holds their lease). A reservation
			 * whose lease is held belongs to a child about to claim
			 * it and is left alone. */
			uint32_t freed[POOL_MAX_SEGMENTS], n = 0;
			for (uint32_t i = 0; i < v.n; i++) {
				struct cat_entry *e = &v.e[i];
				int mine = (i == p->seg && e->state == CAT_LIVE) ||
					(e->state == CAT_BUSY && (e->flags & CAT_F_FORK_PENDING) &&
					 !cat_lease_held(p->fd, i));
				if (mine && owner_equal(&e->owner, &p->self)) {
					cat_free_entry(e);
					freed[n++] = i;
				}
			}
			if (n == 0)
				cat_end(&p->cat);
			else if (cat_commit(&p->cat) < 0)
				ret = -1;
			else
				for (uint32_t i = 0; i < n; i++)
					segcopy_punch(p->fd, pool_seg_off(p, freed[i]),
							p->hdr.seg_size);
		}
	}
	pthread_mutex_unlock(&p->mu);
	int saved = errno;
	pool_free(p);
	errno = saved;
	return ret;
}

CKPT_EXPORT ckpt_id
ckpt_restarted_from(ckpt_pool *p)
{
	return p ? p->restarted_from : 0;
}

CKPT_EXPORT int
ckpt_persist(ckpt_pool *p, const void *addr, size_t len)
{
	if (pool_usable(p) < 0)
		return -1;
	return map_persist(&p->heap_map, addr, len);
}
