/*
 * catalog.c -- the crash-atomic segment table (see catalog.h and
 * docs/FORMAT.md, "Catalog").
 *
 * Two copies, one commit word. A change is written into the copy the commit
 * word does not name and persisted before the word that publishes it, so a
 * crash at any instant leaves the named copy intact.
 *
 * Damage. If the named copy is not intact (a flipped bit on the media),
 * readers and writers use the newest intact copy whose generation is the
 * word's or one less (cat_fallback): the other copy, which holds the
 * catalog as it was before the last change, so that change is lost and
 * said so. A writer (cat_begin) then repairs before it hands out the
 * catalog: it rewrites the damaged copy from the intact one as generation
 * N+1 and publishes it, then the intact one as N+2, so generations only
 * grow and the pool has two intact copies again (docs/FORMAT.md, "Commit
 * word"); the ids the lost change may have given out are skipped. It
 * refuses when a running heap holds the lease of a segment the older copy
 * calls free (cat_check_leases).
 *
 * Origins. cat_commit stamps each newly published checkpoint with the
 * checkpoint its heap was restarted from (cat_stamp_origins), so the
 * lineage stays visible after the heap is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "libckpt.h"
#include "catalog.h"
#include "fileio.h"
#include "filesize.h"
#include "layout.h"
#include "owner.h"
#include "testhook.h"

static uint64_t
cat_checksum(const void *copy, uint64_t cat_size)
{
	XXH64_state_t st;
	struct cat_hdr h;
	memcpy(&h, copy, sizeof(h));
	h.checksum = 0;
	XXH64_reset(&st, 0);
	XXH64_update(&st, &h, sizeof(h));
	XXH64_update(&st, (const char *)copy + sizeof(h), cat_size - sizeof(h));
	return XXH64_digest(&st);
}

static void
cat_seal(void *copy, uint64_t cat_size)
{
	struct cat_hdr *h = copy;
	h->checksum = cat_checksum(copy, cat_size);
}

void
cat_free_entry(struct cat_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->parent = CAT_NONE;
	e->source = CAT_NONE;
}

int
cat_init_file(int fd, const struct pool_hdr *hdr, cat_first_fn first, void *arg,
		uint64_t *need)
{
	void *copy = calloc(1, hdr->cat_size);
	if (!copy)
		return ckpt_err_set(ENOMEM, "out of memory");
	struct cat_view v;
	cat_view_of(&v, copy, hdr->max_segments);
	v.h->magic = CAT_MAGIC;
	v.h->generation = 1;
	v.h->nentries = hdr->max_segments;
	v.h->next_ckpt_id = 1;
	v.h->next_life = 1;
	for (uint32_t i = 0; i < v.n; i++)
		cat_free_entry(&v.e[i]);
	if (first && first(arg, &v) < 0) {
		free(copy);
		return -1;
	}
	*need = fsize_named(hdr, &v);
	cat_seal(copy, hdr->cat_size);
	if (first && cat_validate(hdr, copy, 1) < 0) {
		ckpt_err_prefix("the first catalog of a new pool: ");
		free(copy);
		return -1;
	}
	struct pool_commit cw = { .word = (1ull << 1) | 0 };
	char page[POOL_PAGE];
	memset(page, 0, sizeof(page));
	memcpy(page, &cw, sizeof(cw));
	int ret = 0;
	if (fio_pwrite_all(fd, copy, hdr->cat_size, layout_cat_off(hdr, 0)) < 0 ||
	    fio_pwrite_all(fd, page, sizeof(page), POOL_COMMIT_OFF) < 0)
		ret = ckpt_err_set(errno, "cannot write the catalog: %s", strerror(errno));
	free(copy);
	return ret;
}

int
cat_attach(struct catalog *c, int fd, const struct pool_hdr *hdr)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->hdr = *hdr;
	c->scratch = malloc(hdr->cat_size);
	if (!c->scratch)
		return ckpt_err_set(ENOMEM, "out of memory");
	if (map_file(&c->meta, fd, 0, layout_meta_len(hdr), NULL, 0) < 0) {
		free(c->scratch);
		c->scratch = NULL;
		return -1;
	}
	pthread_mutex_init(&c->mu, NULL);
	return 0;
}

void
cat_detach(struct catalog *c)
{
	map_unmap(&c->meta);
	free(c->scratch);
	c->scratch = NULL;
	pthread_mutex_destroy(&c->mu);
}

/* ofd_lock -- take or drop the pool's cross-process lock (one byte at the commit word) */
static int
ofd_lock(int fd, short type)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET,
		.l_start = POOL_COMMIT_OFF, .l_len = 1,
	};
	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
		if (errno != EINTR)
			return ckpt_err_set(errno, "cannot lock the pool: %s", strerror(errno));
	}
	return 0;
}

int
cat_lock(struct catalog *c)
{
	pthread_mutex_lock(&c->mu);
	if (ofd_lock(c->fd, F_WRLCK) < 0) {
		pthread_mutex_unlock(&c->mu);
		return -1;
	}
	c->locked = 1;
	return 0;
}

void
cat_unlock(struct catalog *c)
{
	c->locked = 0;
	ofd_lock(c->fd, F_UNLCK);
	pthread_mutex_unlock(&c->mu);
}

static volatile uint64_t *
commit_word(const struct catalog *c)
{
	return (volatile uint64_t *)((char *)c->meta.addr + POOL_COMMIT_OFF);
}

/*
 * cat_fallback -- the copy to use when the one the commit word w names is not
 * intact: the newest intact copy whose generation is the word's (the word's
 * copy bit is wrong) or one less (the named copy is damaged: its change is
 * lost). named and other hold the bytes of both copies. 0 and *src filled
 * (src->fallback = 1), or -1 with EINVAL and a message naming both copies.
 */
static int
cat_fallback(const struct pool_hdr *hdr, uint64_t w, const void *named, const void *other,
		struct cat_source *src)
{
	unsigned n = (unsigned)(w & 1);
	uint64_t gen = w >> 1;
	memset(src, 0, sizeof(*src));
	src->word = w;
	src->copy = n;
	src->generation = gen;
	if (w == 0)
		return ckpt_err_set(EINVAL, "catalog: commit word is 0");
	if (gen == 0 || gen > (UINT64_MAX >> 2))
		return ckpt_err_set(EINVAL, "catalog: commit word names generation %llu",
				(unsigned long long)gen);
	if (cat_validate(hdr, named, gen) == 0)
		return 0;   /* intact after all (the caller read it while it changed) */
	snprintf(src->damage, sizeof(src->damage), "%s", ckpt_errormsg());
	const void *copy[2];
	copy[n] = named;
	copy[n ^ 1] = other;
	char why[CKPT_ERRMSG_MAX] = "";
	int best = -1;
	uint64_t best_gen = 0;
	for (unsigned k = 0; k < 2; k++) {
		unsigned i = n ^ k;   /* the named copy first: it wins a tie */
		struct cat_hdr h;
		memcpy(&h, copy[i], sizeof(h));
		if (h.generation + 1 != gen && h.generation != gen) {
			if (i != n)
				snprintf(why, sizeof(why), "copy %u holds generation %llu", i,
					(unsigned long long)h.generation);
			continue;
		}
		if (cat_validate(hdr, copy[i], h.generation) < 0) {
			if (i != n)
				snprintf(why, sizeof(why), "copy %u: %s", i, ckpt_errormsg());
			continue;
		}
		if (best < 0 || h.generation > best_gen) {
			best = (int)i;
			best_gen = h.generation;
		}
	}
	if (best < 0)
		return ckpt_err_set(EINVAL, "catalog copy %u: %s; no intact copy to fall back "
				"to (%s)", n, src->damage, why);
	src->copy = (unsigned)best;
	src->generation = best_gen;
	src->fallback = 1;
	return 0;
}

/*
 * cat_publish -- write the scratch catalog into copy dst as generation gen,
 * persist it, then name it in the commit word and persist that. On a failed
 * persist of the word the old word is put back, so this process never acts
 * on a change that may be lost. With sync set (cat_commit_after) the copy is
 * made durable by sync(arg) instead of its own msync.
 */
static int
cat_publish(struct catalog *c, unsigned dst, uint64_t gen, int (*sync)(void *), void *arg)
{
	volatile uint64_t *cw = commit_word(c);
	uint64_t w = *cw;
	struct cat_hdr *h = c->scratch;
	h->generation = gen;
	cat_seal(c->scratch, c->hdr.cat_size);
	char *d = (char *)c->meta.addr + layout_cat_off(&c->hdr, dst);
	memcpy(d, c->scratch, c->hdr.cat_size);
	/* an fdatasync flushes no CPU cache: on pmem the copy persists itself */
	if ((!sync || c->meta.kind != MAP_KIND_EMULATED) &&
	    map_persist(&c->meta, d, c->hdr.cat_size) < 0)
		return -1;
	if (sync && sync(arg) < 0)
		return -1;
	__atomic_store_n(cw, (gen << 1) | dst, __ATOMIC_RELEASE);
	if (map_persist(&c->meta, (const void *)cw, sizeof(*cw)) < 0) {
		__atomic_store_n(cw, w, __ATOMIC_RELEASE);
		return -1;
	}
	return 0;
}

/*
 * cat_check_leases -- refuse to fall back to a catalog that calls free a
 * segment whose lease a running heap holds: the lost change gave it that
 * segment, and handing it out again would put two heaps in one segment. The
 * leases are tested through a new open file description, so this process's
 * own leases count too.
 */
static int
cat_check_leases(struct catalog *c)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", c->fd);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int qfd = fd >= 0 ? fd : c->fd;
	struct cat_view v;
	cat_view_of(&v, c->scratch, c->hdr.max_segments);
	int ret = 0;
	for (uint32_t i = 0; i < v.n && ret == 0; i++)
		if (v.e[i].state == CAT_FREE && cat_lease_held(qfd, i))
			ret = ckpt_err_set(EBUSY, "segment %u is in use by a running process "
				"but free in the older copy; stop the processes using the pool "
				"and open it again", i);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* cat_warn_repair -- one line on stderr: a catalog change was lost and the copies rewritten */
static void
cat_warn_repair(const struct catalog *c, const struct cat_source *src)
{
	char link[64], path[512];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", c->fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	path[n > 0 ? n : 0] = '\0';
	int lost = src->generation != src->word >> 1;
	fprintf(stderr, "libckpt: pool %s: catalog copy %u (the current one) is damaged "
		"(%s); rewrote both copies from copy %u%s\n", n > 0 ? path : "?",
		(unsigned)(src->word & 1), src->damage, src->copy,
		lost ? ": the last catalog change is lost" : ", which holds the current "
		"catalog: nothing is lost");
}

/*
 * cat_recover -- with the lock held and the scratch holding the damaged
 * copy the commit word w names: load the newest intact copy (cat_fallback),
 * then rewrite both copies from it, each as a new generation (the damaged
 * copy first, so a crash in between leaves an intact current copy), so the
 * pool has two intact copies again before the caller changes anything.
 */
static int
cat_recover(struct catalog *c, uint64_t w)
{
	unsigned n = (unsigned)(w & 1);
	void *other = malloc(c->hdr.cat_size);
	if (!other)
		return ckpt_err_set(ENOMEM, "out of memory");
	memcpy(other, (const char *)c->meta.addr + layout_cat_off(&c->hdr, n ^ 1),
			c->hdr.cat_size);
	struct cat_source src;
	int rc = cat_fallback(&c->hdr, w, c->scratch, other, &src);
	if (rc == 0 && src.copy != n)
		memcpy(c->scratch, other, c->hdr.cat_size);
	free(other);
	if (rc < 0 || !src.fallback)
		return rc;
	if (cat_check_leases(c) < 0) {
		ckpt_err_prefix("catalog copy %u is damaged, copy %u (generation %llu) is "
				"intact: ", n, src.copy, (unsigned long long)src.generation);
		return -1;
	}
	uint64_t gen = w >> 1;
	if (src.generation + 1 == gen) {
		/* the lost change may have given out a checkpoint id (a publish)
		 * or a life id (a restart or fork): never give them out again */
		struct cat_hdr *h = c->scratch;
		h->next_ckpt_id++;
		h->next_life++;
	}
	if (cat_publish(c, src.copy ^ 1, gen + 1, NULL, NULL) < 0 ||
	    (test_point("catalog:repair-mid"), cat_publish(c, src.copy, gen + 2, NULL, NULL) < 0)) {
		ckpt_err_prefix("cannot repair the damaged catalog copy: ");
		return -1;
	}
	cat_warn_repair(c, &src);
	return 0;
}

int
cat_begin(struct catalog *c, struct cat_view *v)
{
	if (cat_lock(c) < 0)
		return -1;
	uint64_t w = *commit_word(c);
	const char *cur = (const char *)c->meta.addr + layout_cat_off(&c->hdr, w & 1);
	memcpy(c->scratch, cur, c->hdr.cat_size);
	if ((w >> 1 == 0 || cat_validate(&c->hdr, c->scratch, w >> 1) < 0) &&
	    cat_recover(c, w) < 0) {
		cat_unlock(c);
		return -1;
	}
	cat_view_of(v, c->scratch, c->hdr.max_segments);
	return 0;
}

/*
 * cat_stamp_origins -- record on every checkpoint not stamped yet the
 * checkpoint its heap was restarted from (restarted_from, CAT_F_ORIGIN):
 * the ckpt_id of the live entry of the same life, 0 for a created or forked
 * heap. A checkpoint is published while its heap is live, so this stamps it
 * in the commit that publishes it; the record then outlives the heap, and
 * ckpt-inspect shows the lineage of checkpoints whose heaps are gone.
 * Checkpoints published by a format 1.0 libckpt whose heap is gone stay
 * unstamped (unknown).
 */
static void
cat_stamp_origins(struct catalog *c)
{
	struct cat_view v;
	cat_view_of(&v, c->scratch, c->hdr.max_segments);
	for (uint32_t i = 0; i < v.n; i++) {
		struct cat_entry *e = &v.e[i];
		if (e->state != CAT_CKPT || (e->flags & CAT_F_ORIGIN))
			continue;
		for (uint32_t j = 0; j < v.n; j++)
			if (v.e[j].state == CAT_LIVE && v.e[j].life == e->life) {
				e->restarted_from = v.e[j].ckpt_id;
				e->flags |= CAT_F_ORIGIN;
				break;
			}
	}
}

int
cat_commit(struct catalog *c)
{
	return cat_commit_after(c, NULL, NULL);
}

int
cat_commit_after(struct catalog *c, int (*sync)(void *arg), void *arg)
{
	cat_stamp_origins(c);
	struct cat_view v, old;
	cat_view_of(&v, c->scratch, c->hdr.max_segments);
	uint64_t w = *commit_word(c);
	cat_view_of(&old, (char *)c->meta.addr + layout_cat_off(&c->hdr, w & 1),
			c->hdr.max_segments);
	if (fsize_cover(c, &v, &old) < 0) {
		cat_unlock(c);
		return -1;
	}
	if (cat_publish(c, (unsigned)(w & 1) ^ 1, (w >> 1) + 1, sync, arg) < 0) {
		if (!sync)
			ckpt_err_prefix("cannot persist the catalog: ");
		cat_unlock(c);
		return -1;
	}
	fsize_trim(c, &v);
	cat_unlock(c);
	return 0;
}

void
cat_end(struct catalog *c)
{
	cat_unlock(c);
}

int
cat_validate(const struct pool_hdr *hdr, const void *copy, uint64_t gen)
{
	struct cat_hdr h;
	memcpy(&h, copy, sizeof(h));
	if (h.magic != CAT_MAGIC)
		return ckpt_err_set(EINVAL, "catalog: bad magic");
	if (h.checksum != cat_checksum(copy, hdr->cat_size))
		return ckpt_err_set(EINVAL, "catalog: checksum mismatch (generation %llu)",
				(unsigned long long)gen);
	if (h.generation != gen)
		return ckpt_err_set(EINVAL, "catalog: generation %llu, commit word says %llu",
				(unsigned long long)h.generation, (unsigned long long)gen);
	if (h.nentries != hdr->max_segments)
		return ckpt_err_set(EINVAL, "catalog: %u entries, header says %u",
				h.nentries, hdr->max_segments);
	if (h.next_ckpt_id == 0)
		return ckpt_err_set(EINVAL, "catalog: next checkpoint id is 0");
	if (h.next_life == 0)
		return ckpt_err_set(EINVAL, "catalog: next life id is 0");
	const struct cat_entry *e =
		(const struct cat_entry *)((const char *)copy + sizeof(h));
	for (uint32_t i = 0; i < hdr->max_segments; i++) {
		struct cat_entry x;
		memcpy(&x, &e[i], sizeof(x));
		if (x.state > CAT_FILLING)
			return ckpt_err_set(EINVAL, "catalog entry %u: bad state %u", i, x.state);
		if (x.state == CAT_FILLING && !(hdr->flags & POOL_F_REMOTE_FILL))
			return ckpt_err_set(EINVAL, "catalog entry %u: a checkpoint being pulled "
					"(format 1.6) in a pool that cannot hold one", i);
		if (x.parent != CAT_NONE && x.parent >= hdr->max_segments)
			return ckpt_err_set(EINVAL, "catalog entry %u: parent %u out of range",
					i, x.parent);
		if (x.source != CAT_NONE && x.source >= hdr->max_segments)
			return ckpt_err_set(EINVAL, "catalog entry %u: source %u out of range",
					i, x.source);
		if (x.used > hdr->seg_size)
			return ckpt_err_set(EINVAL,
					"catalog entry %u: used %llu exceeds segment size",
					i, (unsigned long long)x.used);
		/* format 1.9: only a paged checkpoint with stored sums is logged */
		if ((x.flags & CAT_F_LOGGED) && (!(hdr->flags & POOL_F_LOG_AREA) ||
		    x.state != CAT_CKPT || (x.flags & (CAT_F_PAGE_SUMS | CAT_F_SUMS_STORED)) !=
		    (CAT_F_PAGE_SUMS | CAT_F_SUMS_STORED)))
			return ckpt_err_set(EINVAL, "catalog entry %u: logged (format 1.9) but "
					"not a checkpoint with page sums in a pool with log slots", i);
		int ckptlike = x.state == CAT_CKPT || x.state == CAT_FILLING;
		if ((x.state == CAT_LIVE || ckptlike) &&
		    (x.life == 0 || x.life >= h.next_life || x.lineage == 0 ||
		     x.lineage >= h.next_life || x.parent_life >= h.next_life))
			return ckpt_err_set(EINVAL,
				"catalog entry %u: life %llu / lineage %llu out of range",
				i, (unsigned long long)x.life, (unsigned long long)x.lineage);
		if (memchr(x.label, '\0', sizeof(x.label)) == NULL)
			return ckpt_err_set(EINVAL, "catalog entry %u: label not terminated", i);
		if (ckptlike) {
			if (x.ckpt_id == 0 || x.ckpt_id >= h.next_ckpt_id)
				return ckpt_err_set(EINVAL,
					"catalog entry %u: checkpoint id %llu out of range",
					i, (unsigned long long)x.ckpt_id);
			for (uint32_t j = 0; j < i; j++)
				if ((e[j].state == CAT_CKPT || e[j].state == CAT_FILLING) &&
				    e[j].ckpt_id == x.ckpt_id)
					return ckpt_err_set(EINVAL,
						"catalog entries %u and %u: same checkpoint id %llu",
						j, i, (unsigned long long)x.ckpt_id);
		}
	}
	return 0;
}

int
cat_snapshot_src(const struct pool_hdr *hdr, const void *meta, void *out,
		struct cat_source *srcp)
{
	struct cat_source local;
	struct cat_source *src = srcp ? srcp : &local;
	const volatile uint64_t *cw =
		(const volatile uint64_t *)((const char *)meta + POOL_COMMIT_OFF);
	void *other = NULL;
	for (int tries = 0; tries < 100; tries++) {
		uint64_t w = __atomic_load_n(cw, __ATOMIC_ACQUIRE);
		unsigned n = (unsigned)(w & 1);
		memcpy(out, (const char *)meta + layout_cat_off(hdr, n), hdr->cat_size);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(cw, __ATOMIC_ACQUIRE) != w) {
			usleep(1000);
			continue;
		}
		memset(src, 0, sizeof(*src));
		src->word = w;
		src->copy = n;
		src->generation = w >> 1;
		if (w >> 1 != 0 && cat_validate(hdr, out, w >> 1) == 0) {
			free(other);
			return 0;
		}
		/* the named copy is not intact: the other one, read while the
		 * word stays the same (a writer repairing the named copy does
		 * not touch the other one until it publishes) */
		if (!other && !(other = malloc(hdr->cat_size)))
			return ckpt_err_set(ENOMEM, "out of memory");
		memcpy(other, (const char *)meta + layout_cat_off(hdr, n ^ 1), hdr->cat_size);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(cw, __ATOMIC_ACQUIRE) != w) {
			usleep(1000);
			continue;
		}
		int rc = cat_fallback(hdr, w, out, other, src);
		if (rc == 0 && src->copy != n)
			memcpy(out, other, hdr->cat_size);
		free(other);
		return rc;
	}
	free(other);
	return ckpt_err_set(EBUSY, "catalog keeps changing; try again");
}

int
cat_snapshot(const struct pool_hdr *hdr, const void *meta, void *out)
{
	return cat_snapshot_src(hdr, meta, out, NULL);
}

/* byte_op -- set or query a one-byte OFD lock at off; F_OFD_GETLK when query */
static int
byte_op(int fd, long long off, short type, int query)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET,
		.l_start = off, .l_len = 1,
	};
	if (fcntl(fd, query ? F_OFD_GETLK : F_OFD_SETLK, &fl) < 0)
		return -1;
	return query ? fl.l_type != F_UNLCK : 0;
}

/* lease_op -- set or query a lease lock */
static int
lease_op(int fd, uint32_t seg, short type, int query)
{
	return byte_op(fd, CAT_LEASE_OFF(seg), type, query);
}

int
cat_pin_take(int fd, uint32_t seg)
{
	if (byte_op(fd, CAT_PIN_OFF(seg), F_RDLCK, 0) < 0)
		return ckpt_err_set(errno, "cannot pin the image in segment %u: %s",
				seg, strerror(errno));
	return 0;
}

void
cat_pin_drop(int fd, uint32_t seg)
{
	byte_op(fd, CAT_PIN_OFF(seg), F_UNLCK, 0);
}

int
cat_pin_held(int fd, uint32_t seg)
{
	/* an error answers "held": never free an image on a guess */
	return byte_op(fd, CAT_PIN_OFF(seg), F_WRLCK, 1) != 0;
}

int
cat_lease_take(int fd, uint32_t seg)
{
	if (lease_op(fd, seg, F_RDLCK, 0) < 0)
		return ckpt_err_set(errno, "cannot take the lease of segment %u: %s",
				seg, strerror(errno));
	return 0;
}

void
cat_lease_drop(int fd, uint32_t seg)
{
	lease_op(fd, seg, F_UNLCK, 0);
}

int
cat_lease_held(int fd, uint32_t seg)
{
	/* an error answers "held": never call a heap dead on a guess */
	return lease_op(fd, seg, F_WRLCK, 1) != 0;
}

int
cat_entry_dead(int fd, const struct cat_entry *e, uint32_t i)
{
	if (e->state != CAT_LIVE && e->state != CAT_BUSY)
		return 0;
	/* a fork reservation is held through its lease by the parent while it
	 * fills it and by the child until it claims it; the parent may die
	 * first, and a reservation nobody holds (fork failed, child killed
	 * before claiming) is garbage however alive its recorded owner is */
	if (e->state == CAT_BUSY && (e->flags & CAT_F_FORK_PENDING))
		return !cat_lease_held(fd, i);
	if (!owner_alive(&e->owner))
		return 1;
	return e->state == CAT_LIVE && !cat_lease_held(fd, i);
}
