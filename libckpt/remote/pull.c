/*
 * pull.c -- rebuilding a pushed checkpoint in a local pool (import.c
 * does the pool's side).
 *
 * The manifest is fetched and validated, the pool opened or created with
 * the manifest's uuid, base and heap size, and the chunks fetched in
 * pipelined batches. Every chunk is checked against its name (XXH3-128 of
 * its content) as it arrives, so a corrupted or truncated chunk is refused
 * naming it; the whole image is checked against the checkpoint's own
 * checksum before it is published. Zero chunks are not fetched: the
 * reserved segment was punched, so they read as zeros. The page sums the
 * paged checksum is made of are kept as they are computed and stored in
 * the segment's page-sum slot (import_sums), so the restart that follows
 * can be lazy, each page verified on first access.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sums.h"
#include "remote/import.h"
#include "remote/remote.h"

#define PULL_BATCH 256u

/* desc_of -- the import description of a manifest */
static void
desc_of(struct import_desc *d, const struct manifest_hdr *h)
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
 * fetch_batch -- chunks [first, first + n) into bufs, checked, written; the
 * image checksum s is fed in order (zero chunks included)
 */
static int
fetch_batch(struct store *st, const struct manifest *m, const char *mname, struct import *im,
		uint64_t first, unsigned n, void *const *bufs, struct sums *s,
		struct remote_stats *stats)
{
	const char *names[PULL_BATCH];
	char nbuf[PULL_BATCH][CHUNK_NAME_MAX];
	void *gbufs[PULL_BATCH];
	size_t lens[PULL_BATCH];
	unsigned g = 0;
	uint32_t cs = m->h.chunk_size;
	for (unsigned k = 0; k < n; k++) {
		const struct chunk_hash *c = &m->chunks[first + k];
		if (chunk_is_zero(c))
			continue;
		chunk_name(c, nbuf[g]);
		names[g] = nbuf[g];
		gbufs[g] = bufs[k];
		g++;
	}
	if (store_get(st, g, names, gbufs, cs, lens) < 0)
		return -1;
	g = 0;
	for (unsigned k = 0; k < n; k++) {
		uint64_t i = first + k, off = i * cs;
		size_t want = (size_t)(m->h.used - off < cs ? m->h.used - off : cs);
		const struct chunk_hash *c = &m->chunks[i];
		if (chunk_is_zero(c)) {
			memset(bufs[k], 0, want);
			sums_update(s, bufs[k], want);
			stats->zero_chunks++;
			continue;
		}
		size_t got = lens[g];
		const char *nm = names[g];
		g++;
		if (got == STORE_MISSING)
			return ckpt_err_set(ENOENT, "chunk %s (chunk %llu of manifest %s) is "
					"missing from the store", nm, (unsigned long long)i, mname);
		struct chunk_hash h = got == want ? chunk_hash_of(bufs[k], got) :
			(struct chunk_hash){ 0, 0 };
		if (got != want || h.hi != c->hi || h.lo != c->lo)
			return ckpt_err_set(EINVAL, "chunk %s (chunk %llu of manifest %s) is "
					"corrupted: %s", nm, (unsigned long long)i, mname,
					got != want ? "wrong size" :
					"its content does not match its name");
		sums_update(s, bufs[k], want);
		stats->sent_chunks++;
		stats->sent_bytes += want;
	}
	/* write each run of non-zero chunks (contiguous in bufs) with one call */
	for (unsigned k = 0; k < n;) {
		if (chunk_is_zero(&m->chunks[first + k])) {
			k++;
			continue;
		}
		unsigned e = k;
		while (e < n && !chunk_is_zero(&m->chunks[first + e]))
			e++;
		uint64_t off = (first + k) * cs;
		uint64_t end = (first + e) * cs < m->h.used ? (first + e) * cs : m->h.used;
		if (import_write(im, off, bufs[k], (size_t)(end - off)) < 0)
			return -1;
		k = e;
	}
	return 0;
}

int
remote_pull(struct store *st, const char *mname, const char *path, struct remote_stats *stats)
{
	struct manifest m;
	memset(stats, 0, sizeof(*stats));
	if (remote_load_manifest(st, mname, &m) < 0)
		return -1;
	struct import_desc d;
	desc_of(&d, &m.h);
	struct import im;
	int ret = -1;
	void *bufs[PULL_BATCH] = { 0 };
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
	/* one buffer: the chunks of a batch lie in it as in the image */
	bufs[0] = malloc((size_t)PULL_BATCH * m.h.chunk_size);
	if (!bufs[0]) {
		ckpt_err_set(ENOMEM, "out of memory");
		goto abort;
	}
	for (unsigned k = 1; k < PULL_BATCH; k++)
		bufs[k] = (char *)bufs[0] + (size_t)k * m.h.chunk_size;
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
	for (uint64_t i = 0; i < m.h.nchunks; i += PULL_BATCH) {
		unsigned n = (unsigned)(m.h.nchunks - i < PULL_BATCH ? m.h.nchunks - i : PULL_BATCH);
		if (fetch_batch(st, &m, mname, &im, i, n, bufs, &s, stats) < 0)
			goto abort;
	}
	if (sums_end(&s) != m.h.checksum) {
		ckpt_err_set(EINVAL, "manifest %s: the image rebuilt from its chunks does not "
				"match the checkpoint's checksum", mname);
		goto abort;
	}
	if (paged && import_sums(&im, &d, page_sums, s.npages) < 0)
		goto abort;
	ret = import_commit(&im, &d);
	goto out;
abort:
	import_abort(&im);
out:
	free(bufs[0]);
	free(page_sums);
	manifest_free(&m);
	return ret;
}
