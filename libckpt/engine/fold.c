/*
 * fold.c -- folding a logged checkpoint's page log into its segment
 * (format 1.9; the log itself is pagelog.c, the reasons docs/DESIGN.md).
 *
 * A cow checkpoint that recycles an image writes the pages that differ
 * into the image's log slot and publishes the checkpoint with
 * CAT_F_LOGGED: the image is the segment's bytes with the log over them.
 * The fold makes the segment's own bytes the image, so that the flag can
 * go and the image can be recycled again (a recycled image's bytes must
 * be its checkpoint's: only the pages written since are rewritten).
 *
 * In the background (fold_start), right after the engine publishes:
 *   1. a thread reads the log back (plog_load: the page cache has it) and
 *      writes each page to its place (plog_fold), then starts and waits
 *      for their writeback, all off the checkpoint's path;
 *   2. the engine's next checkpoint joins the thread before its own
 *      fdatasync (fold_wait), which makes the folded pages durable with
 *      its log (written back already, they cost it little), and clears
 *      the flag in its publication's commit (fold_clear). ckpt_close does
 *      the same with an fdatasync and a commit of its own.
 * Nothing in 1 is durable on its own and nothing needs to be: until the
 * flag is cleared the log still says what the image is, and the fold
 * writes exactly the log's bytes, so a crash at any point of it leaves the
 * checkpoint whole. A process killed before 2 leaves the flag; the next
 * reader that maps or copies the image folds it first (fold_now), and
 * read-only readers (ckpt-inspect) lay the log over what they read.
 *
 * At once (fold_now), for a reader about to map or copy a checkpoint:
 * pin the segment (so that nobody recycles it during the fold), fold,
 * fdatasync, clear the flag in one commit. Folding a log that another
 * process is folding too is harmless: both write the same bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/fold.h"
#include "handle.h"
#include "layout.h"
#include "pagelog.h"
#include "testhook.h"
#include "threads.h"

/* fold_one -- load the log of (seg_off, slot) and fold it; 0 or -1 (ckpt_err_set) */
static int
fold_one(int fd, uint64_t seg_off, uint64_t slot_off, uint64_t slot_len, uint64_t used,
		uint64_t sum)
{
	struct plog l;
	if (plog_load(fd, slot_off, slot_len, used, sum, &l) < 0)
		return -1;
	int rc = plog_fold(fd, seg_off, &l);
	plog_free(&l);
	return rc;
}

static void *
fold_main(void *arg)
{
	struct fold *f = arg;
	f->rc = fold_one(f->fd, f->seg_off, f->slot_off, f->slot_len, f->used, f->sum) < 0 ?
		(errno ? errno : EIO) : 0;
	return NULL;
}

void
fold_wait(struct fold *f)
{
	if (!f->running)
		return;
	pthread_join(f->th, NULL);
	f->running = 0;
	f->done = f->rc == 0;
}

void
fold_start(struct fold *f, struct ckpt_pool *p, uint32_t seg, ckpt_id id, uint64_t used,
		uint64_t sum)
{
	fold_wait(f);
	f->done = 0;
	f->fd = p->fd;
	f->seg = seg;
	f->id = id;
	f->used = used;
	f->sum = sum;
	f->seg_off = layout_seg_off(&p->hdr, seg);
	f->slot_off = layout_log_off(&p->hdr, seg);
	f->slot_len = p->hdr.seg_size / LAYOUT_LOG_RATIO;
	if (test_flag("CKPT_TEST_NO_FOLD"))
		return;         /* the flag stays: readers must fold or overlay */
	f->running = lib_thread_start(&f->th, "ckpt-fold", 0, fold_main, f) == 0;
}

/* unflag -- clear c's CAT_F_LOGGED if it still is checkpoint id and logged; 1 if it did */
static int
unflag(struct cat_entry *c, ckpt_id id)
{
	if (c->state != CAT_CKPT || c->ckpt_id != id || !(c->flags & CAT_F_LOGGED))
		return 0;
	c->flags &= ~CAT_F_LOGGED;
	return 1;
}

void
fold_clear(struct fold *f, struct cat_view *v)
{
	if (f->done)
		unflag(&v->e[f->seg], f->id);
}

void
fold_cleared(struct fold *f)
{
	f->done = 0;
}

void
fold_forget(struct fold *f)
{
	/* the thread, if any, runs in the parent only: nothing to join here */
	f->running = 0;
	f->done = 0;
}

int
fold_now(struct ckpt_pool *p, uint32_t seg)
{
	if (!(p->hdr.flags & POOL_F_LOG_AREA))
		return 0;
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0)
		return -1;
	struct cat_entry e = v.e[seg];
	int pinned = e.state == CAT_CKPT && (e.flags & CAT_F_LOGGED) &&
		cat_pin_take(p->fd, seg) == 0;
	cat_end(&p->cat);
	if (e.state != CAT_CKPT || !(e.flags & CAT_F_LOGGED))
		return 0;
	if (!pinned)
		return ckpt_err_set(errno ? errno : EIO, "checkpoint %llu: cannot pin it to fold "
				"its page log: %s", (unsigned long long)e.ckpt_id, ckpt_errormsg());
	int rc = fold_one(p->fd, layout_seg_off(&p->hdr, seg), layout_log_off(&p->hdr, seg),
			p->hdr.seg_size / LAYOUT_LOG_RATIO, e.used, e.checksum);
	test_point("fold:before-sync");
	if (rc == 0 && fdatasync(p->fd) < 0)
		rc = ckpt_err_set(errno, "fdatasync: %s", strerror(errno));
	if (rc == 0 && (rc = cat_begin(&p->cat, &v)) == 0) {
		if (unflag(&v.e[seg], e.ckpt_id))
			rc = cat_commit(&p->cat);
		else
			cat_end(&p->cat);
	}
	cat_pin_drop(p->fd, seg);
	if (rc < 0)
		ckpt_err_prefix("checkpoint %llu of pool %s: cannot fold its page log: ",
				(unsigned long long)e.ckpt_id, p->path);
	return rc;
}

void
fold_all(struct ckpt_pool *p)
{
	if (!(p->hdr.flags & POOL_F_LOG_AREA))
		return;
	struct cat_view v;
	if (cat_begin(&p->cat, &v) < 0) {
		ckpt_err_clear();
		return;
	}
	uint32_t n = 0, *segs = malloc(v.n * sizeof(*segs));
	for (uint32_t i = 0; segs && i < v.n; i++)
		if (v.e[i].state == CAT_CKPT && (v.e[i].flags & CAT_F_LOGGED))
			segs[n++] = i;
	cat_end(&p->cat);
	for (uint32_t k = 0; k < n; k++)
		if (fold_now(p, segs[k]) < 0)
			ckpt_err_clear();
	free(segs);
}
