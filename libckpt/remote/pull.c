/*
 * pull.c -- rebuilding a pushed checkpoint in a local pool (import.c
 * does the pool's side).
 *
 * The manifest is fetched and validated, the pool opened or created with
 * the manifest's uuid, base and heap size, and the chunks fetched in
 * pipelined batches by a fetch thread, one batch ahead of the caller's
 * thread, which checks and writes them in order (so the store is sending
 * the next batch while this one is hashed and written). Every chunk is checked against its name (XXH3-128 of
 * its content) as it arrives, so a corrupted or truncated chunk is refused
 * naming it; the whole image is checked against the checkpoint's own
 * checksum before it is published. Zero chunks are not fetched: the
 * reserved segment was punched, so they read as zeros. The page sums the
 * paged checksum is made of are kept as they are computed and stored in
 * the segment's page-sum slot (import_sums), so the restart that follows
 * can be lazy, each page verified on first access.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libckpt.h"
#include "sums.h"
#include "remote/import.h"
#include "remote/remote.h"
#include "remote/sealed.h"

#define PULL_BATCH 256u     /* chunks per store request */
#define PULL_SLOTS 2u       /* batches in flight: one fetched, one checked */

void
remote_desc_of(struct import_desc *d, const struct manifest_hdr *h)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->uuid, h->uuid, sizeof(d->uuid));
	d->base = h->base;
	d->heap_size = h->heap_size;
	d->max_segments = h->max_segments;
	d->flags = h->flags;
	d->ckpt_id = h->ckpt_id;
	d->used = h->used;
	d->in_use = h->in_use;
	d->time_ns = h->time_ns;
	d->life = h->life;
	d->lineage = h->lineage;
	d->restarted_from = h->restarted_from;
	d->checksum = h->checksum;
	memcpy(d->label, h->label, sizeof(d->label));
}

/*
 * pull_slot -- one batch of chunks: fetched by the fetch thread, then
 * checked and written by the caller's thread, in batch order.
 * Invariant: the fetch thread touches a slot only while it is not ready,
 * the caller only while it is.
 */
struct pull_slot {
	uint64_t first;             /* the batch's first chunk */
	unsigned n;                 /* chunks in the batch */
	char *buf;                  /* n chunks, each at its offset in the batch */
	char names[PULL_BATCH][CHUNK_NAME_MAX];   /* of the non-zero chunks, in order */
	size_t lens[PULL_BATCH];
	int ready;
	int err;                    /* the fetch failed: errno, and msg */
	char msg[CKPT_ERRMSG_MAX];
};

/* pull_pipe -- the fetch thread's and the caller's shared state */
struct pull_pipe {
	struct store *st;
	const struct manifest *m;
	struct pull_slot slot[PULL_SLOTS];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;                   /* the caller gives up: the thread ends */
};

/* fetch_one -- the chunks of batch first into sl (no lock held) */
static void
fetch_one(struct pull_pipe *pp, struct pull_slot *sl, uint64_t first)
{
	const struct manifest *m = pp->m;
	uint32_t cs = m->h.chunk_size;
	const char *names[PULL_BATCH];
	void *gbufs[PULL_BATCH];
	unsigned g = 0;
	sl->first = first;
	sl->n = (unsigned)(m->h.nchunks - first < PULL_BATCH ? m->h.nchunks - first : PULL_BATCH);
	for (unsigned k = 0; k < sl->n; k++) {
		const struct chunk_hash *c = &m->chunks[first + k];
		if (chunk_is_zero(c))
			continue;
		chunk_name(c, sl->names[g]);
		names[g] = sl->names[g];
		gbufs[g] = sl->buf + (size_t)k * cs;
		g++;
	}
	sl->err = 0;
	if (store_get(pp->st, g, names, gbufs, cs, sl->lens) < 0) {
		sl->err = errno ? errno : EIO;
		snprintf(sl->msg, sizeof(sl->msg), "%s", ckpt_errormsg());
	}
}

/*
 * fetcher -- the fetch thread: batch after batch into the slots in turn,
 * so the store sends the next batch while the caller checks and writes
 * this one; ends after the last batch, a failed one, or stop
 */
static void *
fetcher(void *arg)
{
	struct pull_pipe *pp = arg;
	for (uint64_t b = 0; b * PULL_BATCH < pp->m->h.nchunks; b++) {
		struct pull_slot *sl = &pp->slot[b % PULL_SLOTS];
		pthread_mutex_lock(&pp->mu);
		while (sl->ready && !pp->stop)
			pthread_cond_wait(&pp->cv, &pp->mu);
		int stop = pp->stop;
		pthread_mutex_unlock(&pp->mu);
		if (stop)
			break;
		fetch_one(pp, sl, b * PULL_BATCH);
		pthread_mutex_lock(&pp->mu);
		sl->ready = 1;
		pthread_cond_broadcast(&pp->cv);
		pthread_mutex_unlock(&pp->mu);
		if (sl->err)
			break;
	}
	return NULL;
}

/*
 * take_batch -- check the fetched chunks of sl against their names, feed
 * the image checksum s in order (zero chunks included), write them
 */
static int
take_batch(const struct manifest *m, const char *mname, struct import *im,
		struct pull_slot *sl, struct sums *s, struct remote_stats *stats)
{
	if (sl->err)
		return ckpt_err_set(sl->err, "%s", sl->msg);
	uint32_t cs = m->h.chunk_size;
	unsigned g = 0;
	for (unsigned k = 0; k < sl->n; k++) {
		uint64_t i = sl->first + k, off = i * cs;
		size_t want = (size_t)(m->h.used - off < cs ? m->h.used - off : cs);
		char *b = sl->buf + (size_t)k * cs;
		const struct chunk_hash *c = &m->chunks[i];
		if (chunk_is_zero(c)) {
			memset(b, 0, want);
			sums_update(s, b, want);
			stats->zero_chunks++;
			continue;
		}
		size_t got = sl->lens[g];
		const char *nm = sl->names[g];
		g++;
		if (got == STORE_MISSING)
			return ckpt_err_set(ENOENT, "chunk %s (chunk %llu of manifest %s) is "
					"missing from the store", nm, (unsigned long long)i, mname);
		struct chunk_hash h = got == want ? chunk_hash_of(b, got) :
			(struct chunk_hash){ 0, 0 };
		if (got != want || h.hi != c->hi || h.lo != c->lo)
			return ckpt_err_set(EINVAL, "chunk %s (chunk %llu of manifest %s) is "
					"corrupted: %s", nm, (unsigned long long)i, mname,
					got != want ? "wrong size" :
					"its content does not match its name");
		sums_update(s, b, want);
		stats->sent_chunks++;
		stats->sent_bytes += want;
	}
	/* write each run of non-zero chunks (contiguous in buf) with one call */
	for (unsigned k = 0; k < sl->n;) {
		if (chunk_is_zero(&m->chunks[sl->first + k])) {
			k++;
			continue;
		}
		unsigned e = k;
		while (e < sl->n && !chunk_is_zero(&m->chunks[sl->first + e]))
			e++;
		uint64_t off = (sl->first + k) * cs;
		uint64_t end = (sl->first + e) * cs < m->h.used ? (sl->first + e) * cs : m->h.used;
		if (import_write(im, off, sl->buf + (size_t)k * cs, (size_t)(end - off)) < 0)
			return -1;
		k = e;
	}
	return 0;
}

/*
 * fetch_all -- every chunk of m fetched (by the fetch thread), checked and
 * written (here), the image checksum fed in order
 */
static int
fetch_all(struct store *st, const struct manifest *m, const char *mname, struct import *im,
		struct sums *s, struct remote_stats *stats)
{
	struct pull_pipe *pp = calloc(1, sizeof(*pp));
	if (!pp)
		return ckpt_err_set(ENOMEM, "out of memory");
	pp->st = st;
	pp->m = m;
	int ret = -1;
	for (unsigned i = 0; i < PULL_SLOTS; i++)
		if (!(pp->slot[i].buf = malloc((size_t)PULL_BATCH * m->h.chunk_size))) {
			ckpt_err_set(ENOMEM, "out of memory");
			goto out;
		}
	pthread_mutex_init(&pp->mu, NULL);
	pthread_cond_init(&pp->cv, NULL);
	pthread_t t;
	int rc = pthread_create(&t, NULL, fetcher, pp);
	if (rc != 0) {
		ckpt_err_set(rc, "cannot start the fetch thread: %s", strerror(rc));
		goto fini;
	}
	ret = 0;
	for (uint64_t b = 0; ret == 0 && b * PULL_BATCH < m->h.nchunks; b++) {
		struct pull_slot *sl = &pp->slot[b % PULL_SLOTS];
		pthread_mutex_lock(&pp->mu);
		while (!sl->ready)
			pthread_cond_wait(&pp->cv, &pp->mu);
		pthread_mutex_unlock(&pp->mu);
		ret = take_batch(m, mname, im, sl, s, stats);
		pthread_mutex_lock(&pp->mu);
		sl->ready = 0;
		pp->stop = ret < 0;
		pthread_cond_broadcast(&pp->cv);
		pthread_mutex_unlock(&pp->mu);
	}
	int e = errno;
	pthread_join(t, NULL);
	errno = e;
fini:
	pthread_cond_destroy(&pp->cv);
	pthread_mutex_destroy(&pp->mu);
out:
	for (unsigned i = 0; i < PULL_SLOTS; i++)
		free(pp->slot[i].buf);
	free(pp);
	return ret;
}

int
remote_pull(struct store *st, const char *mname, const char *path, struct remote_stats *stats)
{
	struct manifest m;
	memset(stats, 0, sizeof(*stats));
	if (remote_load_manifest(st, mname, &m) < 0)
		return -1;
	struct import_desc d;
	remote_desc_of(&d, &m.h);
	if (m.seal)
		sealed_desc(&d, &m);    /* a sealed pool, made and filled without the key */
	struct import im;
	int ret = -1;
	uint64_t *page_sums = NULL;
	if (import_begin(&im, path, &d) < 0)
		goto out;
	stats->image_bytes = m.h.used;
	stats->chunks = m.h.nchunks;
	stats->manifest_bytes = m.len;
	if (im.present) {
		ret = import_commit(&im, &d);
		goto out;
	}
	int paged = (m.h.flags & CAT_F_PAGE_SUMS) != 0;
	if (paged) {
		/* used is a whole number of pages here (manifest_decode) */
		page_sums = malloc((m.h.used / SUMS_PAGE + 1) * sizeof(*page_sums));
		if (!page_sums) {
			ckpt_err_set(ENOMEM, "out of memory");
			goto abort;
		}
	}
	struct sums s;
	sums_begin(&s, paged, page_sums);
	if (fetch_all(st, &m, mname, &im, &s, stats) < 0)
		goto abort;
	if (sums_end(&s) != m.h.checksum) {
		ckpt_err_set(EINVAL, "manifest %s: the image rebuilt from its chunks does not "
				"match the checkpoint's checksum", mname);
		goto abort;
	}
	if (paged && import_sums(&im, &d, page_sums, s.npages) < 0)
		goto abort;
	if (m.seal && sealed_import_record(&im, &m) < 0)
		goto abort;
	ret = import_commit(&im, &d);
	goto out;
abort:
	import_abort(&im);
out:
	free(page_sums);
	manifest_free(&m);
	return ret;
}
