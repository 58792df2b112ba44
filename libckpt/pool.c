/*
 * pool.c -- the pool's own steps: creating and opening the file, attaching
 * the calling process's live segment, closing.
 *
 * The public entry points that compose these steps are in open.c (create,
 * open) and here (close). Order of work is chosen so that a failure changes
 * nothing the user owns: every check that can fail (settings, file,
 * header, catalog, base address) runs before the catalog is changed, and a
 * pool file is removed on failure only if this call created it.
 *
 * Closing releases what the process holds in the catalog: its live
 * segment, and fork reservations of its own that no child will claim. The
 * layers above learn of a close through the hooks they registered
 * (pool_on_close): fork.c forgets the pool, bgsave.c its jobs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

#include "layout.h"
#include "newfile.h"
#include "owner.h"
#include "pool.h"
#include "segcopy.h"
#include "segment.h"
#include "testhook.h"
#include "engine/image.h"
#include "engine/lazy.h"
#include "engine/persist.h"
#include "seal/chunks.h"
#include "seal/key.h"

static pthread_mutex_t hooks_mu = PTHREAD_MUTEX_INITIALIZER;
static pool_close_hook hooks[POOL_MAX_HOOKS];
static unsigned nhooks;

void
pool_on_close(pool_close_hook hook)
{
	pthread_mutex_lock(&hooks_mu);
	unsigned i = 0;
	while (i < nhooks && hooks[i] != hook)
		i++;
	if (i == nhooks && nhooks < POOL_MAX_HOOKS)
		hooks[nhooks++] = hook;
	pthread_mutex_unlock(&hooks_mu);
}

/* run_close_hooks -- tell the layers above that p is closing */
static void
run_close_hooks(struct ckpt_pool *p)
{
	pthread_mutex_lock(&hooks_mu);
	unsigned n = nhooks;
	pool_close_hook h[POOL_MAX_HOOKS];
	memcpy(h, hooks, sizeof(h));
	pthread_mutex_unlock(&hooks_mu);
	for (unsigned i = 0; i < n; i++)
		h[i](p);
}

int
pool_grow(void *arg, uint64_t off, uint64_t len)
{
	struct ckpt_pool *p = arg;
	if (p->on_grow)
		p->on_grow(p);
	if (p->detached || p->eng || p->seal)
		return 0;           /* a heap in memory: no blocks of ours to back */
	if (fallocate(p->fd, 0, (off_t)(seg_off(p, p->seg) + off), (off_t)len) < 0 &&
	    errno != EOPNOTSUPP)
		return ckpt_err_set(errno, "cannot extend the heap on disk: %s",
				strerror(errno));
	return 0;
}

/*
 * pool_purge -- heap_purge_fn of a live heap: give the memory of free pages
 * back (map_purge), except while a lazy fill is under way: its thread
 * fills the heap's range chunk by chunk through a userfaultfd, and a page
 * dropped from a range still registered would fault to it again (the fill
 * ends at the next checkpoint or fork, or when the pool closes)
 */
int
pool_purge(void *arg, void *addr, uint64_t off, uint64_t len)
{
	struct ckpt_pool *p = arg;
	(void)off;
	if (__atomic_load_n(&p->fill, __ATOMIC_ACQUIRE) ||
	    (p->eng && __atomic_load_n(&p->eng->lazy, __ATOMIC_ACQUIRE)))
		return 1;
	return map_purge(&p->heap_map, addr, (size_t)len);
}

static void pool_free(struct ckpt_pool *p);

void
pool_fill_settle(struct ckpt_pool *p)
{
	if (!p->fill)
		return;
	p->fenced += lazy_finish(p->fill);
	p->fill = NULL;
	seal_reader_free(p->fill_src);
	p->fill_src = NULL;
}

void
pool_fill_stop(struct ckpt_pool *p)
{
	lazy_stop(p->fill);
	p->fill = NULL;
	seal_reader_free(p->fill_src);
	p->fill_src = NULL;
}

/* pool_new -- allocate a handle with nothing open */
static struct ckpt_pool *
pool_new(const char *path, const struct pool_config *c)
{
	struct ckpt_pool *p = calloc(1, sizeof(*p));
	if (!p) {
		ckpt_err_set(ENOMEM, "out of memory");
		return NULL;
	}
	p->fd = -1;
	p->fork_seg = -1;
	p->fork_fd = -1;
	p->fork_mode = c->fork_mode;
	p->keep = c->keep;
	p->purge_min = c->purge_min;
	p->purge_delay_ms = c->purge_delay_ms;
	pthread_mutex_init(&p->mu, NULL);
	p->path = strdup(path);
	if (!p->path) {
		ckpt_err_set(ENOMEM, "out of memory");
		pool_free(p);
		return NULL;
	}
	if (owner_self(&p->self) < 0) {
		pool_free(p);
		return NULL;
	}
	return p;
}

/* pool_free -- release a handle; unmaps what is mapped, closes the file */
static void
pool_free(struct ckpt_pool *p)
{
	image_detach(p);        /* first: a lazy fill maps into the heap's range */
	pool_fill_stop(p);
	if (p->heap)
		heap_detach(p->heap);
	map_unmap(&p->heap_map);
	if (p->cat.scratch)
		cat_detach(&p->cat);
	if (p->fd >= 0)
		close(p->fd);
	seal_key_free(p->seal);
	pthread_mutex_destroy(&p->mu);
	free(p->path);
	free(p);
}

void
pool_discard(struct ckpt_pool *p)
{
	int saved = errno;
	if (p->base_reserved && p->heap_map.addr == NULL)
		map_unreserve((void *)(uintptr_t)p->hdr.base, p->hdr.seg_size);
	pool_free(p);
	errno = saved;
}

_Static_assert(POOL_BASE_ALIGN % HEAP_SEG_ALIGN == 0,
	"pool bases must satisfy the heap's segment alignment");

/* pool_pick_base -- reserve the base for a new pool: c's, or the first free default range */
static int
pool_pick_base(const struct pool_config *c, uint64_t seg_size, uint64_t *base)
{
	uint64_t top;
	if (c->base) {
		if (add_overflows(c->base, seg_size, &top) || top > POOL_USER_TOP)
			return ckpt_err_set(EINVAL, "base %p has no room for a segment below "
					"the top of user space", (void *)(uintptr_t)c->base);
		*base = c->base;
		return map_reserve((void *)(uintptr_t)c->base, seg_size);
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

int
pool_attach_segment(struct ckpt_pool *p, enum pool_attach_how how, uint32_t image,
		uint64_t image_used, ckpt_id image_id)
{
	void *base = (void *)(uintptr_t)p->hdr.base;
	if (p->seal) {
		/* a sealed restart decrypted into its memory already */
		if (!p->heap_map.addr &&
		    map_sealed_heap(&p->heap_map, p->hdr.seg_size, base) < 0)
			return -1;
	} else if (p->fork_mode == CKPT_FORK_COW) {
		if (image_attach(p, image, image_used, image_id) < 0)
			return -1;
	} else if (map_file(&p->heap_map, p->fd, seg_off(p, p->seg), p->hdr.seg_size,
			base, 1) < 0) {
		return -1;
	}
	if (how != POOL_ATTACH_HEAP)
		map_no_readaround(base, p->hdr.seg_size);
	struct format_grow_arg fg = { p, 0 };
	int (*format)(void *, size_t, heap_grow_fn, void *) =
		how == POOL_ATTACH_FORMAT_ZEROED ? heap_format_zeroed : heap_format;
	if (how != POOL_ATTACH_HEAP && format(base, p->hdr.seg_size, format_grow, &fg) < 0) {
		/* heap_format reports a failed grow as ENOMEM, as an allocation
		 * does; creating a pool, the disk's reason (ENOSPC, EIO) is the answer */
		if (fg.err)
			errno = fg.err;
		return -1;
	}
	p->heap = how == POOL_ATTACH_HEAP ? heap_attach(base, p->hdr.seg_size, pool_grow, p)
		: heap_attach_formatted(base, p->hdr.seg_size, pool_grow, p);
	if (!p->heap) {
		ckpt_err_prefix("segment %u: ", p->seg);
		return -1;
	}
	heap_on_purge(p->heap, pool_purge, p, p->purge_min, p->purge_delay_ms * 1000000ull);
	return 0;
}

/* new_header -- the header of a pool created with c; sealed with the key of id key (may be NULL) */
static int
new_header(struct pool_hdr *hdr, const struct pool_config *c, const uint8_t *key)
{
	memset(hdr, 0, sizeof(*hdr));
	/* a test may ask for a pool as format 1.1 made it (no page-sum area,
	 * full size), as 1.3 made it (no young heaps), as 1.7 made it (no
	 * durable size in the catalog: filesize.c), or as 1.8 made it (no
	 * page-log area); a sealed one keeps
	 * its records in the page-sum slots, and its heaps are never young */
	uint32_t flags = test_flag("CKPT_TEST_FORMAT_1_1") && !key ? POOL_F_IN_MEMORY_HEAPS
		: POOL_F_IN_MEMORY_HEAPS | POOL_F_SUMS_AREA | POOL_F_SIZE_FOLLOWS;
	if (key) {
		flags |= POOL_F_SEALED;
		memcpy(hdr->key_id, key, sizeof(hdr->key_id));
	} else if (!test_flag("CKPT_TEST_FORMAT_1_1") && !test_flag("CKPT_TEST_FORMAT_1_3")) {
		flags |= POOL_F_YOUNG_HEAPS;
		if (!test_flag("CKPT_TEST_FORMAT_1_7") && !test_flag("CKPT_TEST_FORMAT_1_8"))
			flags |= POOL_F_LOG_AREA;
	}
	if (c->remote_fill && !key)
		flags |= POOL_F_REMOTE_FILL;
	if (layout_compute(hdr, c->heap_size, c->max_segments, flags) < 0)
		return -1;
	memcpy(hdr->magic, POOL_MAGIC, sizeof(hdr->magic));
	hdr->major = POOL_FORMAT_MAJOR;
	hdr->minor = flags & (POOL_F_REMOTE_FILL | POOL_F_YOUNG_HEAPS) ?
		(test_flag("CKPT_TEST_FORMAT_1_7") ? 7 : test_flag("CKPT_TEST_FORMAT_1_8") ? 8 :
		 POOL_FORMAT_MINOR) :
		flags & POOL_F_SEALED ? 4 : flags & POOL_F_SUMS_AREA ? 3 : 1;
	hdr->created_ns = now_ns();
	hdr->fork_mode = (uint32_t)c->pool_fork_mode;
	hdr->flags = flags;
	hdr->keep_checkpoints = c->keep;
	if (c->uuid)
		memcpy(hdr->uuid, c->uuid, sizeof(hdr->uuid));
	else if (getrandom(hdr->uuid, sizeof(hdr->uuid), 0) != (ssize_t)sizeof(hdr->uuid))
		return ckpt_err_set(EIO, "cannot get random bytes for the pool uuid");
	return 0;
}

/*
 * write_file -- size the new (still nameless) file, write its catalog (as
 * first fills it, if given) and header, make them durable; crash point
 * create:mid-write between the catalog and the header
 */
static int
write_file(struct ckpt_pool *p, cat_first_fn first, void *arg)
{
	const struct pool_hdr *hdr = &p->hdr;
	/* the file starts with its metadata alone and grows with the segments
	 * in use (filesize.c); the full size is tried first, so a pool that
	 * could never reach it on this filesystem is refused now */
	if (ftruncate(p->fd, (off_t)hdr->file_size) < 0 ||
	    ((hdr->flags & POOL_F_SIZE_FOLLOWS) && ftruncate(p->fd, (off_t)hdr->data_off) < 0))
		return ckpt_err_set(errno == EINVAL ? EFBIG : errno,
			"cannot size pool %s to %llu bytes: %s", p->path,
			(unsigned long long)hdr->file_size, strerror(errno));
	/* the header and catalog are written through a shared mapping: their
	 * blocks are allocated now, so a full filesystem never turns a catalog
	 * store into SIGBUS; the page-sum slots (written with pwrite by the
	 * checkpoints that use them, 2 MiB per GiB of segments) stay sparse */
	uint64_t meta_end = hdr->sums_off ? hdr->sums_off : hdr->data_off;
	if (fallocate(p->fd, 0, 0, (off_t)meta_end) < 0 && errno != EOPNOTSUPP)
		return ckpt_err_set(errno, "cannot allocate pool %s: %s", p->path, strerror(errno));
	uint64_t need;
	if (cat_init_file(p->fd, hdr, first, arg, &need) < 0)
		return -1;
	/* a first catalog naming segments: the file covers them (filesize.c)
	 * before the one fdatasync below */
	if ((hdr->flags & POOL_F_SIZE_FOLLOWS) && need > hdr->data_off &&
	    ftruncate(p->fd, (off_t)need) < 0)
		return ckpt_err_set(errno == EFBIG ? ENOSPC : errno, "cannot size pool %s to "
				"%llu bytes: %s", p->path, (unsigned long long)need,
				strerror(errno));
	test_point("create:mid-write");
	char page[POOL_PAGE];
	memset(page, 0, sizeof(page));
	memcpy(page, hdr, sizeof(*hdr));
	if (pwrite(p->fd, page, sizeof(page), POOL_HDR_OFF) != (ssize_t)sizeof(page))
		return ckpt_err_set(errno ? errno : EIO, "cannot write the pool header: %s",
				strerror(errno));
	if (fdatasync(p->fd) < 0)
		return ckpt_err_set(errno, "cannot make pool %s durable: %s", p->path,
				strerror(errno));
	return 0;
}

void
pool_new_heap_entry(struct ckpt_pool *p, struct cat_view *v, uint32_t seg)
{
	p->seg = seg;
	p->life = p->lineage = v->h->next_life++;
	p->restarted_from = 0;
	struct cat_entry *e = &v->e[seg];
	e->life = e->lineage = p->life;
	e->state = CAT_LIVE;
	e->flags = pool_heap_in_memory(p) ? CAT_F_IN_MEMORY : 0;
	e->owner = p->self;
	e->time_ns = now_ns();
}

/* claim_first_segment -- segment 0 becomes our live heap, a new life and lineage */
static int
claim_first_segment(struct ckpt_pool *p)
{
	struct cat_view v;
	if (cat_lease_take(p->fd, 0) < 0 || cat_begin(&p->cat, &v) < 0)
		return -1;
	pool_new_heap_entry(p, &v, 0);
	return cat_commit(&p->cat);
}

struct ckpt_pool *
pool_create(const char *path, struct pool_config *c)
{
	struct pool_hdr hdr;
	struct seal_key *key = NULL;
	int none = 1;
	if (c->key_file && !(key = seal_key_load(c->key_file, c->key_from)))
		return NULL;
	/* the program's key callback: a key seals the new pool, none does not */
	if (!c->key_file && c->key_fn && !(key = seal_key_ask(c->key_fn, c->key_arg, path,
			&none)) && !none)
		return NULL;
	if (new_header(&hdr, c, key ? key->id : NULL) < 0) {
		seal_key_free(key);
		return NULL;
	}
	struct ckpt_pool *p = pool_new(path, c);
	if (!p) {
		seal_key_free(key);
		return NULL;
	}
	p->seal = key;
	if (pool_pick_base(c, hdr.seg_size, &hdr.base) < 0) {
		pool_discard(p);
		return NULL;
	}
	p->base_reserved = 1;
	layout_seal(&hdr);
	p->hdr = hdr;

	struct newfile nf;
	if (newfile_open(&nf, path, c->mode) < 0) {
		pool_discard(p);
		return NULL;
	}
	p->fd = nf.fd;
	if (write_file(p, NULL, NULL) < 0 || config_fork_mode(c, p->fd, path, &hdr) < 0)
		goto fail;
	p->fork_mode = c->fork_mode;
	if (p->fork_mode == CKPT_FORK_COW)
		segcopy_small_cow(p->fd);
	if (cat_attach(&p->cat, p->fd, &hdr) < 0 ||
	    (seg_keep_hook(p), claim_first_segment(p) < 0) ||
	    pool_attach_segment(p, POOL_ATTACH_FORMAT_ZEROED, 0, 0, 0) < 0)
		goto fail;
	test_point("create:before-publish");
	if (newfile_publish(&nf, path) < 0)
		goto fail;
	return p;
fail:
	newfile_abandon(&nf, path);
	pool_discard(p);
	return NULL;
}

/*
 * create_bare -- a new pool file at path with no live heap: its header
 * (sealed with key_id's key if given), its first catalog as first fills
 * it, made durable with one fdatasync, then named and its directory
 * synced (newfile.c); 0, or -1 with nothing left at path
 */
static int
create_bare(const char *path, struct pool_config *c, const uint8_t *key_id,
		cat_first_fn first, struct pool_first *pf)
{
	struct pool_hdr hdr;
	if (!c->base)
		return ckpt_err_set(EINVAL, "a pool made without a heap needs its base");
	if (new_header(&hdr, c, key_id) < 0)
		return -1;
	uint64_t top;
	if (add_overflows(c->base, hdr.seg_size, &top) || top > POOL_USER_TOP)
		return ckpt_err_set(EINVAL, "base %p has no room for a segment below the "
				"top of user space", (void *)(uintptr_t)c->base);
	hdr.base = c->base;
	layout_seal(&hdr);
	struct ckpt_pool *p = pool_new(path, c);
	if (!p)
		return -1;
	p->hdr = hdr;
	if (pf)
		pf->self = p->self;
	struct newfile nf;
	if (newfile_open(&nf, path, c->mode) < 0) {
		pool_discard(p);
		return -1;
	}
	p->fd = nf.fd;
	if (write_file(p, first, pf) < 0 ||
	    (!key_id && config_fork_mode(c, p->fd, path, &hdr) < 0) ||
	    (test_point("create:before-publish"), newfile_publish(&nf, path) < 0)) {
		newfile_abandon(&nf, path);
		pool_discard(p);
		return -1;
	}
	pool_discard(p);
	return 0;
}

int
pool_create_keyless(const char *path, struct pool_config *c)
{
	if (!c->key_id || !c->base)
		return ckpt_err_set(EINVAL, "a sealed pool made without its key needs its "
				"key id and base");
	return create_bare(path, c, c->key_id, NULL, NULL);
}

int
pool_create_first(const char *path, struct pool_config *c, cat_first_fn first,
		struct pool_first *pf)
{
	return create_bare(path, c, NULL, first, pf);
}

/*
 * open_key -- a sealed pool needs its key, checked against the header's
 * key id before anything is read with it; an unsealed pool takes none (a
 * key given for it would make the caller believe its checkpoints sealed)
 */
static int
open_key(struct ckpt_pool *p, const struct pool_config *c)
{
	if (!(p->hdr.flags & POOL_F_SEALED)) {
		if (c->key_file)
			return ckpt_err_set(EINVAL, "a key file was given (from %s) but pool "
					"%s is not sealed: its checkpoints are not encrypted; "
					"re-seal it into a new pool, or give no key",
					c->key_from, p->path);
		return 0;
	}
	if (c->keyless)
		return 0;       /* a pull adds ciphertext; nothing is decrypted */
	if (!c->key_file && c->key_fn) {
		int none;
		p->seal = seal_key_ask(c->key_fn, c->key_arg, p->path, &none);
		if (!p->seal && !none)
			return -1;
		char what[64 + 4096];
		snprintf(what, sizeof(what), "pool %s", p->path);
		if (p->seal && seal_key_check(p->seal, p->hdr.key_id, what) < 0) {
			seal_key_free(p->seal);
			p->seal = NULL;
			return -1;
		}
		if (p->seal)
			return 0;
	}
	if (!c->key_file)
		return ckpt_err_set(ENOKEY, "pool %s is sealed: its key is needed "
				"(ckpt_config.key_file, CKPT_KEY_FILE or the key callback)",
				p->path);
	p->seal = seal_key_open(c->key_file, c->key_from, p->hdr.key_id, p->path);
	return p->seal ? 0 : -1;
}

/* read_header -- pread and validate the header of an opened file */
static int
read_header(struct ckpt_pool *p)
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

struct ckpt_pool *
pool_open_path(const char *path, const struct ckpt_config *cfg)
{
	struct pool_config c;
	if (!path || !*path) {
		ckpt_err_set(EINVAL, "pool path is empty");
		return NULL;
	}
	if (config_resolve(&c, cfg, 0) < 0)
		return NULL;
	return pool_open(path, &c);
}

struct ckpt_pool *
pool_open(const char *path, struct pool_config *c)
{
	struct ckpt_pool *p = pool_new(path, c);
	if (!p)
		return NULL;
	p->fd = open(path, O_RDWR | O_CLOEXEC);
	if (p->fd < 0) {
		ckpt_err_set(errno, "cannot open pool %s: %s", path, strerror(errno));
		goto fail;
	}
	if (read_header(p) < 0 || open_key(p, c) < 0 ||
	    cat_attach(&p->cat, p->fd, &p->hdr) < 0)
		goto fail;
	seg_keep_hook(p);
	config_from_pool(c, &p->hdr);
	if (config_fork_mode(c, p->fd, path, &p->hdr) < 0)
		goto fail;
	p->fork_mode = c->fork_mode;
	p->keep = c->keep;
	p->eager_restart = c->eager_restart;
	p->fill_wait_ms = c->fill_wait_ms;
	if (p->fork_mode == CKPT_FORK_COW)
		segcopy_small_cow(p->fd);
	if (map_reserve((void *)(uintptr_t)p->hdr.base, p->hdr.seg_size) < 0) {
		ckpt_err_prefix("cannot open pool %s at its base: ", path);
		goto fail;
	}
	p->base_reserved = 1;
	return p;
fail:
	pool_discard(p);
	return NULL;
}

/*
 * release_entries -- free our live segment and the fork reservations of
 * ours that no child will claim (the fork failed or the child died first:
 * nobody holds their lease). A reservation whose lease is held belongs to
 * a child about to claim it and is left alone.
 */
static int
release_entries(struct ckpt_pool *p)
{
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
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
	if (n == 0) {
		cat_end(&p->cat);
		return 0;
	}
	if (cat_commit(&p->cat) < 0)
		return -1;
	seg_punch(p, freed, n);
	return 0;
}

CKPT_EXPORT int
ckpt_close(ckpt_pool *p)
{
	if (!p)
		return ckpt_err_set(EINVAL, "pool is NULL");
	run_close_hooks(p);
	pthread_mutex_lock(&p->mu);
	int ret = 0;
	/* the last logged checkpoint, folded: durable and no longer logged (a
	 * failure leaves it logged, which readers handle) */
	if (image_fold_finish(p) < 0)
		ckpt_err_clear();
	image_detach(p);        /* first: a lazy fill maps into the heap's range */
	pool_fill_stop(p);
	if (p->heap) {
		heap_detach(p->heap);
		p->heap = NULL;
	}
	map_unmap(&p->heap_map);
	if (!p->detached && release_entries(p) < 0)
		ret = -1;
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
	/* cow: the pages go to our own segment, tagged with the base (format 1.7) */
	if (p->eng)
		return image_persist(p, addr, len);
	return map_persist(&p->heap_map, addr, len);
}
