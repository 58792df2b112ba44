/*
 * import.c -- a checkpoint from elsewhere becomes a checkpoint of a local
 * pool (import.h has the steps).
 *
 * A new pool is created with the origin's uuid, base, heap size and
 * segment count, so a restart maps the heap at the same address and every
 * pointer in it stays valid; its first live segment is given back at once
 * (nobody runs on it). A checkpoint with a paged checksum gets its page sums
 * stored beside the image (format 1.2), as a local cow checkpoint does, so
 * a restart from it is lazy. The imported entry keeps the origin's checkpoint id,
 * life and lineage: the catalog's counters are raised past them, so later
 * checkpoints and lives never reuse them, and a process restarted from it
 * continues its lineage as it would on the origin machine.
 *
 * A lazy pull (format 1.6) reserves its segment as FILLING at once, with
 * every field of the checkpoint it will be, and leaves the bytes to a
 * filler (remote/filler.c), which resumes the import (import_resume) and
 * ends it with one commit, FILLING to CKPT (import_fill_commit). Only
 * pools created by a lazy pull can hold a FILLING entry
 * (POOL_F_REMOTE_FILL). A lazy pull into a new pool, the restart on a
 * fresh machine whose time to first read counts, makes the pool and its
 * FILLING entry durable together: the entry is in the pool's first
 * catalog (pool_create_first), so the file gets one fdatasync and its
 * directory one fsync, where creating the pool (a live heap, formatted,
 * then given back) and reserving in a second commit took four catalog
 * commits, two of them growing the file. A crash leaves no pool, or the
 * pool with its entry FILLING, as a filler killed later does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "owner.h"
#include "pool.h"
#include "segment.h"
#include "sums.h"
#include "testhook.h"
#include "remote/import.h"

static int first_filling(void *arg, struct cat_view *v);

/*
 * create_pool -- a new pool file at path shaped as d says, with no live
 * heap: 0; or 1 for a lazy pull, whose pool is made with the FILLING entry
 * in its first catalog (segment 0), durable in one step
 */
static int
create_pool(const char *path, const struct import_desc *d)
{
	struct pool_config c;
	struct ckpt_config cfg = { .heap_size = d->heap_size, .max_segments = d->max_segments,
		.base = (void *)(uintptr_t)d->base, .keep_checkpoints = d->keep,
		.key_file = d->key_file };
	if (config_resolve(&c, &cfg, 1) < 0)
		return -1;
	c.uuid = d->uuid;
	c.remote_fill = d->lazy;
	if (d->keyless) {
		c.key_id = d->key_id;
		return pool_create_keyless(path, &c);
	}
	if (d->lazy && !c.key_file && !c.key_fn) {
		struct pool_first pf = { .arg = (void *)d };
		return pool_create_first(path, &c, first_filling, &pf) < 0 ? -1 : 1;
	}
	struct ckpt_pool *p = pool_create(path, &c);
	if (!p)
		return -1;
	return ckpt_close(p);
}

/* find_ckpt -- the segment holding checkpoint id (complete or FILLING), or -1 */
static int
find_ckpt(const struct cat_view *v, uint64_t id)
{
	for (uint32_t i = 0; i < v->n; i++)
		if ((v->e[i].state == CAT_CKPT || v->e[i].state == CAT_FILLING) &&
		    v->e[i].ckpt_id == id)
			return (int)i;
	return -1;
}

/*
 * describe -- entry e becomes the checkpoint d describes, in state (CKPT,
 * or FILLING for a lazy pull); the catalog's counters move past it
 */
static void
describe(const struct import *im, struct cat_view *v, struct cat_entry *e,
		const struct import_desc *d, uint32_t state)
{
	e->state = state;
	e->flags = d->flags & (CAT_F_PAGE_SUMS | CAT_F_ORIGIN | CAT_F_SEALED);
	if (im->sums_stored)
		e->flags |= CAT_F_SUMS_STORED;
	e->parent = CAT_NONE;
	e->source = CAT_NONE;
	e->ckpt_id = d->ckpt_id;
	e->used = d->used;
	e->in_use = d->in_use;
	e->checksum = d->checksum;
	e->time_ns = d->time_ns;
	e->life = d->life;
	e->parent_life = 0;
	e->lineage = d->lineage;
	e->restarted_from = d->restarted_from;
	memcpy(e->label, d->label, sizeof(e->label));
	e->label[CAT_LABEL_MAX - 1] = 0;
	if (v->h->next_ckpt_id <= d->ckpt_id)
		v->h->next_ckpt_id = d->ckpt_id + 1;
	uint64_t top = d->life > d->lineage ? d->life : d->lineage;
	if (v->h->next_life <= top)
		v->h->next_life = top + 1;
}

/*
 * first_filling -- a lazy pull's new pool: its first catalog has segment 0
 * FILLING as d describes, owned by the pulling process (pool_create_first)
 */
static int
first_filling(void *arg, struct cat_view *v)
{
	struct pool_first *pf = arg;
	const struct import none = { 0 };
	v->e[0].owner = pf->self;
	describe(&none, v, &v->e[0], pf->arg, CAT_FILLING);
	return 0;
}

/*
 * reserve -- a BUSY segment of ours for the image (a lazy pull: published
 * FILLING at once, in the same commit), its old blocks punched
 */
static int
reserve(struct import *im, const struct import_desc *d)
{
	struct ckpt_pool *p = im->p;
	struct cat_view v;
	uint64_t punch;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	int have = find_ckpt(&v, d->ckpt_id);
	if (have >= 0) {
		int same = v.e[have].checksum == d->checksum && v.e[have].used == d->used;
		int filling = v.e[have].state == CAT_FILLING;
		cat_end(&p->cat);
		if (same && filling)
			return ckpt_err_set(EBUSY, "pool %s is already pulling checkpoint %llu "
					"(`ckpt-remote fill %s` resumes or waits for it)", p->path,
					(unsigned long long)d->ckpt_id, p->path);
		if (!same)
			return ckpt_err_set(EEXIST, "pool %s already has a different "
					"checkpoint %llu", p->path,
					(unsigned long long)d->ckpt_id);
		im->present = 1;
		return 0;
	}
	int seg = seg_take(p, &v, &punch);
	if (seg < 0) {
		cat_end(&p->cat);
		return -1;
	}
	v.e[seg].owner = p->self;
	if (d->lazy) {
		describe(im, &v, &v.e[seg], d, CAT_FILLING);
		test_point("remote:before-filling-publish");
	} else {
		v.e[seg].state = CAT_BUSY;
		v.e[seg].time_ns = now_ns();
	}
	if (cat_commit(&p->cat) < 0)
		return -1;
	im->seg = (uint32_t)seg;
	im->filling = d->lazy;
	uint32_t s = (uint32_t)seg;
	seg_punch(p, &s, 1);     /* nothing reads a FILLING region before it is marked */
	return 0;
}

int
import_begin(struct import *im, const char *path, const struct import_desc *d)
{
	memset(im, 0, sizeof(*im));
	struct stat sb;
	if (stat(path, &sb) < 0) {
		if (errno != ENOENT)
			return ckpt_err_set(errno, "cannot stat %s: %s", path, strerror(errno));
		int made = create_pool(path, d);
		if (made < 0)
			return -1;
		im->created = 1;
		if (made == 1) {
			/* created with the entry: nothing to check, nothing to reserve */
			im->seg = 0;
			im->filling = 1;
			return 0;
		}
	}
	struct pool_config c;
	const struct ckpt_config keyed = { .key_file = d->key_file };
	if (config_resolve(&c, d->key_file ? &keyed : NULL, 0) < 0)
		goto fail;
	c.keyless = !d->key_file;       /* nothing here decrypts: the checks below
	                                   refuse what does not match */
	im->p = pool_open(path, &c);
	if (!im->p)
		goto fail;
	const struct pool_hdr *h = &im->p->hdr;
	if ((h->flags & POOL_F_SEALED) && !(d->flags & CAT_F_SEALED)) {
		ckpt_err_set(EINVAL, "pool %s is sealed: it cannot take an unsealed "
				"checkpoint (its heap would be stored in the clear)", path);
		goto fail;
	}
	if ((h->flags & POOL_F_SEALED) && d->keyless &&
	    memcmp(h->key_id, d->key_id, sizeof(h->key_id)) != 0) {
		ckpt_err_set(EKEYREJECTED, "pool %s is sealed with another key than the "
				"checkpoint's", path);
		goto fail;
	}
	if (!(h->flags & POOL_F_SEALED) && (d->flags & CAT_F_SEALED)) {
		ckpt_err_set(EINVAL, "pool %s is not sealed: it cannot take a sealed "
				"checkpoint", path);
		goto fail;
	}
	if (memcmp(h->uuid, d->uuid, sizeof(h->uuid)) != 0) {
		ckpt_err_set(EINVAL, "pool %s is another pool (its uuid differs from the "
				"checkpoint's)", path);
		goto fail;
	}
	if (d->lazy && !(h->flags & POOL_F_REMOTE_FILL)) {
		ckpt_err_set(ENOTSUP, "pool %s was not created by a lazy pull (format 1.6): "
				"pull into it without --lazy, or lazily into a new pool", path);
		goto fail;
	}
	if (h->base != d->base || h->heap_size != d->heap_size) {
		ckpt_err_set(EINVAL, "pool %s has another base or heap size than the "
				"checkpoint's pool", path);
		goto fail;
	}
	if (reserve(im, d) < 0)
		goto fail;
	return 0;
fail:
	if (im->created && !im->p) {
		int e = errno;
		unlink(path);
		errno = e;
	}
	import_abort(im);
	return -1;
}

int
import_write(struct import *im, uint64_t off, const void *buf, size_t len)
{
	struct ckpt_pool *p = im->p;
	if (off > p->hdr.seg_size || len > p->hdr.seg_size - off)
		return ckpt_err_set(EINVAL, "image range outside the segment");
	const char *b = buf;
	uint64_t at = seg_off(p, im->seg) + off;
	while (len) {
		ssize_t n = pwrite(p->fd, b, len, (off_t)at);
		if (n <= 0)
			return ckpt_err_set(n < 0 ? errno : EIO, "cannot write pool %s: %s",
					p->path, n < 0 ? strerror(errno) : "short write");
		b += n;
		at += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int
import_sums(struct import *im, const struct import_desc *d, const uint64_t *sums,
		uint64_t npages)
{
	struct ckpt_pool *p = im->p;
	if (im->present || !(d->flags & CAT_F_PAGE_SUMS) || !(p->hdr.flags & POOL_F_SUMS_AREA))
		return 0;
	if (npages != d->used / SUMS_PAGE)
		return ckpt_err_set(EINVAL, "%llu page sums for an image of %llu bytes",
				(unsigned long long)npages, (unsigned long long)d->used);
	if (sums_store(p->fd, layout_sums_off(&p->hdr, im->seg), sums, npages) < 0)
		return -1;
	im->sums_stored = 1;
	return 0;
}

/* publish -- BUSY becomes the checkpoint d describes; the counters move past it */
static int
publish(struct import *im, const struct import_desc *d)
{
	struct ckpt_pool *p = im->p;
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	struct cat_entry *e = &v.e[im->seg];
	if (e->state != CAT_BUSY || !owner_equal(&e->owner, &p->self) ||
	    find_ckpt(&v, d->ckpt_id) >= 0) {
		cat_end(&p->cat);
		return ckpt_err_set(EIO, "segment %u is no longer reserved for checkpoint "
				"%llu (or another process added it meanwhile)", im->seg,
				(unsigned long long)d->ckpt_id);
	}
	describe(im, &v, e, d, CAT_CKPT);
	test_point("remote:before-import-publish");
	return cat_commit(&p->cat);
}

int
import_commit(struct import *im, const struct import_desc *d)
{
	int ret = 0;
	if (!im->present) {
		if (fdatasync(im->p->fd) < 0)
			ret = ckpt_err_set(errno, "cannot make pool %s durable: %s", im->p->path,
					strerror(errno));
		else
			ret = publish(im, d);
	}
	if (ret < 0) {
		import_abort(im);
		return -1;
	}
	pool_discard(im->p);
	im->p = NULL;
	return 0;
}

void
import_abort(struct import *im)
{
	int e = errno;
	if (im->p) {
		if (!im->present && !im->created && !im->filling)
			seg_release(im->p, im->seg, SEG_OURS);
		char *path = im->created ? strdup(im->p->path) : NULL;
		pool_discard(im->p);
		im->p = NULL;
		if (path) {
			unlink(path);
			free(path);
		}
	}
	errno = e;
}


int
import_resume(struct import *im, const char *path, uint64_t id, struct cat_entry *out)
{
	memset(im, 0, sizeof(*im));
	struct pool_config c;
	if (config_resolve(&c, NULL, 0) < 0)
		return -1;
	im->p = pool_open(path, &c);
	if (!im->p)
		return -1;
	struct cat_view v;
	if (cat_begin(&im->p->cat, &v) < 0)
		goto fail;
	int seg = find_ckpt(&v, id);
	if (seg >= 0)
		*out = v.e[seg];
	cat_end(&im->p->cat);
	if (seg < 0) {
		ckpt_err_set(ENOENT, "pool %s has no checkpoint %llu", path,
				(unsigned long long)id);
		goto fail;
	}
	im->seg = (uint32_t)seg;
	im->present = out->state == CAT_CKPT;    /* already published */
	return 0;
fail:
	pool_discard(im->p);
	im->p = NULL;
	return -1;
}

int
import_fill_commit(struct import *im, uint64_t id)
{
	struct ckpt_pool *p = im->p;
	int ret = 0;
	if (fdatasync(p->fd) < 0) {
		ret = ckpt_err_set(errno, "cannot make pool %s durable: %s", p->path,
				strerror(errno));
	} else {
		struct cat_view v;
		if (cat_begin(&p->cat, &v) < 0) {
			ret = -1;
		} else {
			struct cat_entry *e = &v.e[im->seg];
			if (e->state != CAT_FILLING || e->ckpt_id != id) {
				cat_end(&p->cat);
				ret = ckpt_err_set(EIO, "segment %u no longer holds checkpoint %llu "
						"being pulled", im->seg, (unsigned long long)id);
			} else {
				e->state = CAT_CKPT;
				if (im->sums_stored)
					e->flags |= CAT_F_SUMS_STORED;
				test_point("remote:before-fill-publish");
				ret = cat_commit(&p->cat);
			}
		}
	}
	pool_discard(p);
	im->p = NULL;
	return ret;
}
