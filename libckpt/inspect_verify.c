/*
 * inspect_verify.c -- ckpt-inspect verify: every check a pool file can be
 * put through without changing it.
 *
 * The walk goes top down and reports each problem as a finding (error,
 * warning or note) through the caller's function, then goes on: the
 * header (layout_check, the reserved bytes, the key id), the catalog's
 * commit word and both copies (a damaged current copy is reported and the
 * other one used), then every segment the catalog names: its range against
 * the file, a checkpoint's checksum (a sealed one's ciphertext; its heap
 * only with the key), a lazy pull's FILLING entry, and the heap inside
 * (heap_check, the untrusted walker), read with inspect.c's bounded reads.
 * A dead cow heap's persisted pages are laid over its base first
 * (inspect_persist.c). Nothing here writes to the file or trusts a byte of
 * it before checking it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filesize.h"
#include "heap.h"
#include "libckpt.h"
#include "inspect.h"
#include "layout.h"
#include "owner.h"
#include "sums.h"

struct vctx {
	struct inspect *in;
	unsigned flags;
	inspect_finding_fn fn;
	void *arg;
	inspect_progress_fn progress;
	void *parg;
	struct inspect_verify_result *res;
};

static void
finding(struct vctx *v, enum inspect_severity sev, const char *where, int64_t seg,
		uint64_t off, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void
finding(struct vctx *v, enum inspect_severity sev, const char *where, int64_t seg,
		uint64_t off, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sev == INSPECT_ERROR)
		v->res->errors++;
	else if (sev == INSPECT_WARNING)
		v->res->warnings++;
	else
		v->res->notes++;
	if (v->fn) {
		struct inspect_finding f = {
			.severity = sev, .where = where, .segment = seg,
			.offset = off, .message = msg,
		};
		v->fn(v->arg, &f);
	}
}

static int
all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i])
			return 0;
	return 1;
}

static void
verify_header(struct vctx *v)
{
	const struct pool_hdr *h = &v->in->hdr;
	/* layout_check passed at open: magic, version, checksum, geometry */
	if (h->minor == 0 && !all_zero(h->reserved, sizeof(h->reserved)))
		finding(v, INSPECT_WARNING, "header", -1, offsetof(struct pool_hdr, reserved),
			"reserved bytes are not zero in a version %u.0 pool", h->major);
	if (!(h->flags & POOL_F_SEALED) && !all_zero(h->key_id, sizeof(h->key_id)))
		finding(v, INSPECT_WARNING, "header", -1, offsetof(struct pool_hdr, key_id),
			"a key id is set in a pool that is not sealed");
	if (v->in->file_size > h->file_size)
		finding(v, INSPECT_NOTE, "header", -1, UINT64_MAX,
			"file is %" PRIu64 " bytes, %" PRIu64 " more than the pool uses",
			v->in->file_size, v->in->file_size - h->file_size);
}

/* commit_word_now -- the commit word as it is now */
static uint64_t
commit_word_now(const struct inspect *in)
{
	return __atomic_load_n((const volatile uint64_t *)((const char *)in->meta +
				POOL_COMMIT_OFF), __ATOMIC_ACQUIRE);
}

/*
 * verify_backup_copy -- describe the catalog copy the commit word w does not
 * name: the backup, holding the catalog as it was before the last change
 * (the fallback if the current copy is ever damaged)
 */
static void
verify_backup_copy(struct vctx *v, uint64_t w)
{
	const struct pool_hdr *hdr = &v->in->hdr;
	unsigned other = (unsigned)(w & 1) ^ 1;
	char where[32];
	snprintf(where, sizeof(where), "catalog copy %u", other);
	uint64_t off = layout_cat_off(hdr, other);
	void *copy = malloc(hdr->cat_size);
	if (!copy)
		return;
	memcpy(copy, (const char *)v->in->meta + off, hdr->cat_size);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	int moved = commit_word_now(v->in) != w;
	struct cat_hdr ch;
	memcpy(&ch, copy, sizeof(ch));
	uint64_t cur = w >> 1;
	char why[CKPT_ERRMSG_MAX] = "generation not older than the current copy's";
	int bad = cat_validate(hdr, copy, ch.generation) < 0;
	if (bad)
		snprintf(why, sizeof(why), "%s", ckpt_errormsg());
	if (moved) {
		finding(v, INSPECT_NOTE, where, -1, off,
			"backup copy: being rewritten by a catalog change in progress; not judged");
	} else if (all_zero(copy, hdr->cat_size)) {
		finding(v, INSPECT_NOTE, where, -1, off,
			"backup copy: not written yet (the pool has had no catalog change since "
			"it was created); there is no fallback until the next change");
	} else if (ch.generation == cur + 1) {
		/* written with the next generation, never named: a change that
		 * was interrupted (or is being written), and is not part of the pool */
		finding(v, INSPECT_NOTE, where, -1, off,
			"backup copy: holds a catalog change that was not completed (a process "
			"stopped while changing the catalog, or one is changing it now); ignored, "
			"the next change rewrites it");
	} else if (bad || ch.generation >= cur) {
		finding(v, INSPECT_WARNING, where, -1, off,
			"backup copy is damaged (%s); the pool has no fallback if the current "
			"copy is damaged before the next catalog change rewrites it", why);
	} else if (ch.generation + 1 == cur) {
		finding(v, INSPECT_NOTE, where, -1, off,
			"backup copy: intact, the catalog as it was before the last change "
			"(used if the current copy is ever damaged)");
	} else {
		finding(v, INSPECT_WARNING, where, -1, off,
			"backup copy: intact but %" PRIu64 " changes behind the current copy, too "
			"old to fall back to; the next catalog change rewrites it",
			cur - ch.generation);
	}
	free(copy);
}

/* verify_fallback -- the current copy is damaged and the catalog was read from the other */
static void
verify_fallback(struct vctx *v)
{
	const struct cat_source *s = &v->in->src;
	const struct pool_hdr *hdr = &v->in->hdr;
	unsigned named = (unsigned)(s->word & 1);
	uint64_t gen = s->word >> 1;
	char where[32];
	if (s->generation == gen) {
		/* the word names the wrong copy: the other one is the current generation */
		finding(v, INSPECT_ERROR, "commit word", -1, POOL_COMMIT_OFF,
			"names catalog copy %u, which is not intact (%s), while copy %u holds "
			"the current catalog intact: nothing is lost; the next catalog change "
			"(any process opening the pool) rewrites both copies and the word",
			named, s->damage, s->copy);
		return;
	}
	if (s->copy == named) {
		/* the named copy is intact but one generation behind the word */
		finding(v, INSPECT_ERROR, "commit word", -1, POOL_COMMIT_OFF,
			"names catalog copy %u as generation %" PRIu64 ", which holds the "
			"one before, intact: the word is damaged, or the last catalog change "
			"is lost; the pool is read from that copy, and the next catalog "
			"change rewrites both copies and the word", named, gen);
		return;
	}
	snprintf(where, sizeof(where), "catalog copy %u", named);
	finding(v, INSPECT_ERROR, where, -1, layout_cat_off(hdr, named),
		"the current catalog copy is damaged (%s); the pool is read from copy %u, "
		"the catalog as it was before the last change: that change is lost (a "
		"checkpoint it published is not listed, a segment it freed or took shows "
		"as before); the next catalog change (any process opening the pool) "
		"rewrites both copies", s->damage, s->copy);
}

/* verify_catalog -- 0 if the current catalog is usable for the segment checks */
static int
verify_catalog(struct vctx *v)
{
	struct inspect *in = v->in;
	const struct pool_hdr *hdr = &in->hdr;
	if (!in->cat.h && inspect_refresh(in) < 0) {
		char where[32];
		uint64_t w2 = in->src.word;
		if (w2 == 0) {
			finding(v, INSPECT_ERROR, "commit word", -1, POOL_COMMIT_OFF,
				"commit word is 0: no catalog copy is current");
			return -1;
		}
		snprintf(where, sizeof(where), "catalog copy %u", (unsigned)(w2 & 1));
		finding(v, INSPECT_ERROR, where, -1, layout_cat_off(hdr, w2 & 1),
			"current catalog copy is damaged: %s", ckpt_errormsg());
		return -1;
	}
	uint64_t w = in->src.word;
	if (in->src.fallback)
		verify_fallback(v);
	else
		verify_backup_copy(v, w);

	const struct cat_view *c = &in->cat;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct cat_entry *e = &c->e[i];
		char where[32];
		snprintf(where, sizeof(where), "catalog entry %u", i);
		uint64_t off = layout_cat_off(hdr, in->src.copy) + sizeof(struct cat_hdr) +
			(uint64_t)i * sizeof(struct cat_entry);
		if (e->state == CAT_FREE) {
			struct cat_entry z;
			cat_free_entry(&z);
			if (memcmp(&z, e, sizeof(z)) != 0)
				finding(v, INSPECT_WARNING, where, i, off,
					"free entry with fields that are not reset");
			continue;
		}
		if ((e->state == CAT_LIVE || e->state == CAT_BUSY) && e->owner.pid <= 0)
			finding(v, INSPECT_ERROR, where, i, off, "%s entry with owner pid %d",
				e->state == CAT_LIVE ? "live" : "busy", e->owner.pid);
		if (e->parent == i)
			finding(v, INSPECT_ERROR, where, i, off, "segment is its own parent");
		if (e->source == i)
			finding(v, INSPECT_ERROR, where, i, off, "segment is its own source");
		if (e->state == CAT_CKPT && e->parent != CAT_NONE)
			finding(v, INSPECT_WARNING, where, i, off,
				"checkpoint with a parent segment (%u)", e->parent);
		if (e->flags & ~(CAT_F_FORK_PENDING | CAT_F_IN_MEMORY | CAT_F_PAGE_SUMS |
		    CAT_F_ORIGIN | CAT_F_SUMS_STORED | CAT_F_SEALED | CAT_F_LOGGED))
			finding(v, INSPECT_WARNING, where, i, off, "unknown flags 0x%x", e->flags);
		if ((e->flags & CAT_F_ORIGIN) && e->state != CAT_CKPT)
			finding(v, INSPECT_WARNING, where, i, off,
				"restarted-from record on an entry that is not a checkpoint");
		else if ((e->flags & CAT_F_ORIGIN) && e->restarted_from >= c->h->next_ckpt_id)
			finding(v, INSPECT_WARNING, where, i, off, "checkpoint %" PRIu64
				" records its heap as restarted from checkpoint %" PRIu64
				", an id never given out", e->ckpt_id, e->restarted_from);
	}
	return 0;
}

int
inspect_entry_unchanged(struct inspect *in, uint32_t seg, const struct cat_entry *old)
{
	void *copy = malloc(in->hdr.cat_size);
	if (!copy)
		return 1;
	int same = 1;
	if (cat_snapshot(&in->hdr, in->meta, copy) == 0) {
		struct cat_view cv;
		cat_view_of(&cv, copy, in->hdr.max_segments);
		const struct cat_entry *e = &cv.e[seg];
		same = e->state == old->state && e->ckpt_id == old->ckpt_id &&
			e->time_ns == old->time_ns && e->used == old->used &&
			e->checksum == old->checksum && owner_equal(&e->owner, &old->owner);
	}
	free(copy);
	return same;
}

struct vprog {
	struct vctx *v;
	char what[64];
};

static void
vprogress(void *arg, const char *step, uint64_t done, uint64_t total)
{
	struct vprog *p = arg;
	char what[96];
	snprintf(what, sizeof(what), "%s: %s", p->what, step);
	p->v->progress(p->v->parg, what, done, total);
}

/* walk_heap -- read and heap_check segment seg; 0 sound, -1 with message */
static int
walk_heap(struct vctx *v, uint32_t seg, struct vprog *vp)
{
	void *buf;
	size_t len;
	if (inspect_read_heap(v->in, seg, &buf, &len, v->progress ? vprogress : NULL, vp) < 0)
		return -1;
	struct heap_summary sum;
	int rc = heap_check(buf, len, &sum);
	int saved = errno;
	inspect_free_heap(buf, len);
	errno = saved;
	v->res->segments_walked++;
	return rc;
}

/*
 * stored_sums_bad -- 1 (message set) if checkpoint e of segment i says its
 * page sums are stored and they are missing or do not match its checksum
 */
static int
stored_sums_bad(struct inspect *in, uint32_t i, const struct cat_entry *e)
{
	if (!(e->flags & CAT_F_SUMS_STORED))
		return 0;
	if (!(e->flags & CAT_F_PAGE_SUMS) || !(in->hdr.flags & POOL_F_SUMS_AREA) ||
	    e->used % SUMS_PAGE) {
		ckpt_err_set(EINVAL, "says its page sums are stored, where none can be");
		return 1;
	}
	return sums_check_stored(in->fd, layout_sums_off(&in->hdr, i), e->used / SUMS_PAGE,
			e->checksum) < 0;
}

/*
 * verify_cow_heap -- a dead cow heap: its base with its persisted pages
 * over it, walked as any dead heap is (a note says what it is made of)
 */
static void
verify_cow_heap(struct vctx *v, uint32_t i, const struct cat_entry *e, const char *where,
		uint64_t off, struct vprog *vp)
{
	struct inspect_cow_info ci;
	void *buf;
	size_t len;
	if (inspect_read_cow_heap(v->in, i, &buf, &len, &ci) < 0) {
		finding(v, INSPECT_NOTE, where, i, off, "dead heap (pid %d), kept in memory "
			"(fork mode cow): %s", e->owner.pid, ckpt_errormsg());
		return;
	}
	inspect_free_heap(buf, len);
	if (ci.base_seg == CAT_NONE && ci.pages == 0) {
		finding(v, INSPECT_NOTE, where, i, off, "dead heap (pid %d), kept in memory "
			"(fork mode cow): no checkpoint and nothing persisted; nothing to "
			"check", e->owner.pid);
		return;
	}
	char base[48] = "an empty base";
	if (ci.base_seg != CAT_NONE)
		snprintf(base, sizeof(base), "checkpoint %" PRIu64, v->in->cat.e[ci.base_seg].ckpt_id);
	finding(v, INSPECT_NOTE, where, i, off, "dead heap (pid %d), kept in memory (fork mode "
		"cow): %s with %" PRIu64 " persisted page(s) over it%s", e->owner.pid, base,
		ci.pages, ci.stale ? " (older or torn pages ignored)" : "");
	if (v->flags & INSPECT_VERIFY_NO_HEAPS)
		return;
	if (walk_heap(v, i, vp) < 0)
		finding(v, (v->flags & INSPECT_VERIFY_STRICT) ? INSPECT_ERROR : INSPECT_WARNING,
			where, i, off, "dead heap (pid %d): %s", e->owner.pid, ckpt_errormsg());
}

static void
verify_segment(struct vctx *v, uint32_t i)
{
	struct inspect *in = v->in;
	struct cat_entry e = in->cat.e[i];
	char where[32];
	snprintf(where, sizeof(where), "segment %u", i);
	uint64_t off = layout_seg_off(&in->hdr, i);
	struct vprog vp = { .v = v };
	const char *st = inspect_state_name(in, i);
	if (e.state == CAT_CKPT)
		snprintf(vp.what, sizeof(vp.what), "segment %u (checkpoint %" PRIu64 ")", i,
			e.ckpt_id);
	else
		snprintf(vp.what, sizeof(vp.what), "segment %u (%s)", i, st);

	/* a segment in use lies in the file (format.h): a fresh size, since a
	 * running pool grows after we opened it (never under a listed entry) */
	struct stat fst;
	if (e.state != CAT_FREE && fstat(in->fd, &fst) == 0 &&
	    !fsize_covers(&in->hdr, (uint64_t)fst.st_size, i)) {
		if (!inspect_entry_unchanged(in, i, &e)) {
			v->res->skipped++;
			finding(v, INSPECT_NOTE, where, i, off, "%s was freed while verify read "
				"it; not judged", vp.what);
			return;
		}
		finding(v, INSPECT_ERROR, where, i, off, "%s lies past the end of the file "
			"(%" PRIu64 " bytes; the segment ends at %" PRIu64 "): the pool file "
			"is truncated", vp.what, (uint64_t)fst.st_size, off + in->hdr.seg_size);
		return;
	}

	if (e.state == CAT_CKPT) {
		uint64_t sum;
		int rc = inspect_ckpt_checksum(in, i, e.used, e.flags, &sum,
				v->progress ? vprogress : NULL, &vp);
		if (rc < 0 || sum != e.checksum) {
			char msg[CKPT_ERRMSG_MAX];
			snprintf(msg, sizeof(msg), "%s", rc < 0 ? ckpt_errormsg() : "");
			if (!inspect_entry_unchanged(in, i, &e)) {
				v->res->skipped++;
				finding(v, INSPECT_NOTE, where, i, off, "checkpoint %" PRIu64
					" was removed while verify read it; not judged", e.ckpt_id);
				return;
			}
			if (rc < 0)
				finding(v, INSPECT_ERROR, where, i, off, "checkpoint %" PRIu64 ": %s",
					e.ckpt_id, msg);
			else
				finding(v, INSPECT_ERROR, where, i, off, "checkpoint %" PRIu64
					": checksum mismatch: catalog says 0x%016" PRIx64
					", bytes [0, %" PRIu64 ") hash to 0x%016" PRIx64,
					e.ckpt_id, e.checksum, e.used, sum);
		} else if (stored_sums_bad(in, i, &e)) {
			char msg[CKPT_ERRMSG_MAX];
			snprintf(msg, sizeof(msg), "%s", ckpt_errormsg());
			if (inspect_entry_unchanged(in, i, &e))
				finding(v, INSPECT_ERROR, where, i, layout_sums_off(&in->hdr, i),
					"checkpoint %" PRIu64 ": %s", e.ckpt_id, msg);
		} else {
			v->res->checkpoints_verified++;
		}
		if (v->flags & INSPECT_VERIFY_NO_HEAPS)
			return;
		if ((e.flags & CAT_F_SEALED) && !in->key) {
			finding(v, INSPECT_NOTE, where, i, off, "checkpoint %" PRIu64 " is "
				"sealed: its ciphertext matches its checksum; its heap is not "
				"checked without the key (--key-file)", e.ckpt_id);
			return;
		}
		if (walk_heap(v, i, &vp) < 0) {
			char msg[CKPT_ERRMSG_MAX];
			snprintf(msg, sizeof(msg), "%s", ckpt_errormsg());
			if (!inspect_entry_unchanged(in, i, &e)) {
				v->res->skipped++;
				finding(v, INSPECT_NOTE, where, i, off, "checkpoint %" PRIu64
					" was removed while verify read it; not judged", e.ckpt_id);
				return;
			}
			finding(v, INSPECT_ERROR, where, i, off, "checkpoint %" PRIu64
				": heap: %s", e.ckpt_id, msg);
		}
		return;
	}
	if (e.state == CAT_FILLING) {
		finding(v, INSPECT_NOTE, where, i, off, "checkpoint %" PRIu64 " is being "
			"pulled from a remote store (ckpt-remote pull --lazy): its bytes are "
			"checked by the pull before it is published; not checked", e.ckpt_id);
		return;
	}
	if (e.state == CAT_BUSY) {
		finding(v, INSPECT_NOTE, where, i, off, strcmp(st, "dead") == 0 ?
			"busy segment of a process that is gone (left by an interrupted "
			"checkpoint, fork or restart; reclaimed when needed): not checked" :
			"busy: being written by pid %d; not checked", e.owner.pid);
		return;
	}
	if (inspect_is_cow_heap(in, i) && strcmp(st, "dead") == 0) {
		verify_cow_heap(v, i, &e, where, off, &vp);
		return;
	}
	if (e.flags & CAT_F_IN_MEMORY) {
		finding(v, INSPECT_NOTE, where, i, off, "%s heap (pid %d) is kept in the "
			"process's memory (%s): its segment holds none of it; "
			"not checked", st, e.owner.pid, (in->hdr.flags & POOL_F_SEALED) ?
			"a sealed pool" : "fork mode cow");
		return;
	}
	/* live or dead heap: bytes may be mid-operation (live) or left by a crash
	 * mid-operation (dead); a live one gets a few tries */
	if (v->flags & INSPECT_VERIFY_NO_HEAPS)
		return;
	int dead = strcmp(st, "dead") == 0;
	char msg[CKPT_ERRMSG_MAX] = "";
	int ok = 0;
	for (int tries = 0; tries < (dead ? 1 : 3) && !ok; tries++) {
		if (walk_heap(v, i, &vp) == 0)
			ok = 1;
		else
			snprintf(msg, sizeof(msg), "%s", ckpt_errormsg());
		if (!ok && !inspect_entry_unchanged(in, i, &e)) {
			v->res->skipped++;
			finding(v, INSPECT_NOTE, where, i, off,
				"%s heap was released while verify read it; not judged", st);
			return;
		}
	}
	if (!ok)
		finding(v, (v->flags & INSPECT_VERIFY_STRICT) ? INSPECT_ERROR : INSPECT_WARNING,
			where, i, off, "%s heap (pid %d): %s%s", st, e.owner.pid, msg,
			dead ? "" : " (a live heap may be mid-operation)");
}

int
inspect_verify(struct inspect *in, unsigned flags, inspect_finding_fn fn, void *arg,
		inspect_progress_fn progress, void *parg, struct inspect_verify_result *res)
{
	struct inspect_verify_result local;
	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	struct vctx v = {
		.in = in, .flags = flags, .fn = fn, .arg = arg,
		.progress = progress, .parg = parg, .res = res,
	};
	verify_header(&v);
	if (verify_catalog(&v) == 0)
		for (uint32_t i = 0; i < in->cat.n; i++)
			if (in->cat.e[i].state != CAT_FREE)
				verify_segment(&v, i);
	return (int)res->errors;
}

int
inspect_verify_path(const char *path, unsigned flags, inspect_finding_fn fn, void *arg,
		struct inspect_verify_result *res)
{
	struct inspect in;
	if (inspect_open_header(&in, path) < 0) {
		struct inspect_verify_result local;
		if (!res)
			res = &local;
		memset(res, 0, sizeof(*res));
		struct vctx v = { .fn = fn, .arg = arg, .res = res };
		/* the header is at fault only if there is a file to hold one */
		struct stat st;
		int hdr = (errno == EINVAL || errno == ENOTSUP) && stat(path, &st) == 0 &&
			inspect_file_type(path, &st) == 0;
		finding(&v, INSPECT_ERROR, hdr ? "header" : "file", -1, hdr ? 0 : UINT64_MAX,
			"%s", ckpt_errormsg());
		return 1;
	}
	int rc = inspect_verify(&in, flags, fn, arg, NULL, NULL, res);
	inspect_close(&in);
	return rc;
}
