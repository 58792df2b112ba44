/*
 * prune.c -- retention and garbage collection on a remote store.
 *
 * Pruning deletes manifests: beyond the newest keep of each pool (by
 * uuid), older than max_age, and damaged ones (they can restore nothing).
 * A manifest is deleted before any chunk it referenced, so no remaining
 * manifest ever points at a missing chunk. A manifest of a version newer
 * than this libckpt reads is not damaged: it is kept, and since the
 * chunks it references are unknown here, garbage collection refuses to
 * run (ENOTSUP) rather than delete them.
 *
 * Garbage collection then runs under a GC lease (lock.c), which no push
 * holds at the same time: it lists the manifests (after taking the lease,
 * so it sees every manifest of every push that finished), collects the
 * chunks they reference, lists the chunks and deletes the others. A chunk
 * a running push counts on is safe: that push holds a push lease, so the
 * GC waits (or gives up with EBUSY) instead.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "remote/chunkset.h"
#include "remote/lock.h"
#include "remote/remote.h"

#define GC_BATCH 512u

/* pool_seen -- manifests kept so far per pool uuid (a short list) */
struct kept {
	uint8_t uuid[16];
	unsigned n;
};

struct prune {
	struct store *st;
	unsigned keep;
	uint64_t min_time;          /* manifests taken before this go */
	struct kept *pools;
	size_t npools;
	char **doomed;
	size_t ndoomed;
	struct chunkset refs;
	int failed;
};

/* doom -- remember name for deletion */
static int
doom(struct prune *pr, const char *name)
{
	char **v = realloc(pr->doomed, (pr->ndoomed + 1) * sizeof(*v));
	if (!v)
		return ckpt_err_set(ENOMEM, "out of memory");
	pr->doomed = v;
	if (!(v[pr->ndoomed] = strdup(name)))
		return ckpt_err_set(ENOMEM, "out of memory");
	pr->ndoomed++;
	return 0;
}

/* count_kept -- the kept counter of m's pool */
static struct kept *
count_kept(struct prune *pr, const uint8_t *uuid)
{
	for (size_t i = 0; i < pr->npools; i++)
		if (memcmp(pr->pools[i].uuid, uuid, 16) == 0)
			return &pr->pools[i];
	struct kept *v = realloc(pr->pools, (pr->npools + 1) * sizeof(*v));
	if (!v)
		return NULL;
	pr->pools = v;
	memcpy(v[pr->npools].uuid, uuid, 16);
	v[pr->npools].n = 0;
	return &v[pr->npools++];
}

/* judged -- what retention needs of one listed manifest */
struct judged {
	char *name;
	int ok;
	int newer;                  /* of a version this libckpt does not read: kept */
	uint8_t uuid[16];
	uint64_t time_ns;
};
struct judge_list {
	struct judged *v;
	size_t n;
};

/* judge_collect -- remote_manifest_fn: remember the manifest */
static int
judge_collect(void *arg, const char *name, const struct manifest *m)
{
	struct judge_list *jl = arg;
	struct judged *v = realloc(jl->v, (jl->n + 1) * sizeof(*v));
	if (!v)
		return ckpt_err_set(ENOMEM, "out of memory");
	jl->v = v;
	v[jl->n].name = strdup(name);
	v[jl->n].ok = m != NULL;
	v[jl->n].newer = !m && errno == ENOTSUP;
	if (m) {
		memcpy(v[jl->n].uuid, m->h.uuid, 16);
		v[jl->n].time_ns = m->h.time_ns;
	}
	if (!v[jl->n].name)
		return ckpt_err_set(ENOMEM, "out of memory");
	jl->n++;
	return 0;
}

/* prune_manifests -- doom what retention drops, then delete it */
static int
prune_manifests(struct prune *pr, unsigned *deleted)
{
	struct judge_list jl = { 0 };
	int ret = remote_list(pr->st, judge_collect, &jl);
	/* the listing is oldest first: walk it newest first to count what is kept */
	for (size_t i = jl.n; ret == 0 && i-- > 0;) {
		struct judged *j = &jl.v[i];
		int drop = !j->ok && !j->newer;
		if (j->ok) {
			struct kept *k = count_kept(pr, j->uuid);
			if (!k) {
				ret = ckpt_err_set(ENOMEM, "out of memory");
				break;
			}
			if ((pr->keep && k->n >= pr->keep) || j->time_ns < pr->min_time)
				drop = 1;
			else
				k->n++;
		}
		if (drop)
			ret = doom(pr, j->name);
	}
	for (size_t i = 0; i < jl.n; i++)
		free(jl.v[i].name);
	free(jl.v);
	if (ret < 0)
		return -1;
	for (size_t i = 0; i < pr->ndoomed; i += GC_BATCH) {
		size_t n = pr->ndoomed - i < GC_BATCH ? pr->ndoomed - i : GC_BATCH;
		if (store_del(pr->st, (unsigned)n, (const char *const *)pr->doomed + i) < 0)
			return -1;
	}
	*deleted = (unsigned)pr->ndoomed;
	return 0;
}

/* refs_of -- remote_manifest_fn: every chunk of an intact manifest is referenced */
static int
refs_of(void *arg, const char *name, const struct manifest *m)
{
	struct prune *pr = arg;
	if (!m && errno == ENOTSUP)
		return ckpt_err_set(ENOTSUP, "%s: its chunks are unknown to this libckpt, so "
				"no chunk is collected (prune with a newer ckpt-remote)",
				ckpt_errormsg());
	if (!m)
		return 0;       /* damaged: pruning deleted it, or a writer's is torn */
	for (uint64_t i = 0; i < m->h.nchunks; i++)
		if (!chunk_is_zero(&m->chunks[i]) && chunkset_add(&pr->refs, &m->chunks[i]) < 0)
			return -1;
	return 0;
}

/* parse_chunk -- the hash a chunk name carries; -1 for a foreign name */
static int
parse_chunk(const char *name, struct chunk_hash *c)
{
	const char *h = name + strlen(CHUNK_PREFIX);
	if (strlen(h) != 32)
		return -1;
	char part[17];
	char *end;
	memcpy(part, h, 16);
	part[16] = 0;
	c->hi = strtoull(part, &end, 16);
	if (*end)
		return -1;
	c->lo = strtoull(h + 16, &end, 16);
	return *end ? -1 : 0;
}

/* sweep -- store_list_fn: doom an unreferenced chunk */
static int
sweep(void *arg, const char *name)
{
	struct prune *pr = arg;
	struct chunk_hash c;
	if (parse_chunk(name, &c) < 0 || chunkset_has(&pr->refs, &c))
		return 0;
	if (doom(pr, name) < 0) {
		pr->failed = 1;
		return 1;
	}
	return 0;
}

/* collect_garbage -- the GC proper, under a GC lease */
static int
collect_garbage(struct prune *pr, unsigned *deleted)
{
	struct lease l;
	if (lease_take(pr->st, LEASE_GC, config_remote_lock_wait(), &l) < 0)
		return -1;
	int ret = -1;
	for (size_t i = 0; i < pr->ndoomed; i++)
		free(pr->doomed[i]);
	pr->ndoomed = 0;
	if (remote_list(pr->st, refs_of, pr) < 0)
		goto out;
	if (store_list(pr->st, CHUNK_PREFIX, sweep, pr) < 0)
		goto out;
	if (pr->failed)
		goto out;
	for (size_t i = 0; i < pr->ndoomed; i += GC_BATCH) {
		size_t n = pr->ndoomed - i < GC_BATCH ? pr->ndoomed - i : GC_BATCH;
		if (lease_renew(pr->st, &l) < 0)
			goto out;
		if (l.lapsed) {
			ret = ckpt_err_set(ETIMEDOUT, "garbage collection stalled past its "
					"lease; stopped (run prune again)");
			goto out;
		}
		if (store_del(pr->st, (unsigned)n, (const char *const *)pr->doomed + i) < 0)
			goto out;
	}
	*deleted = (unsigned)pr->ndoomed;
	ret = 0;
out:
	lease_drop(pr->st, &l);
	return ret;
}

int
remote_prune(struct store *st, unsigned keep, uint64_t max_age_s, unsigned *deleted_m,
		unsigned *deleted_c)
{
	struct prune pr = { .st = st, .keep = keep };
	*deleted_m = *deleted_c = 0;
	if (max_age_s) {
		uint64_t age = max_age_s * 1000000000ull, now = now_ns();
		pr.min_time = now > age ? now - age : 0;
	}
	int ret = prune_manifests(&pr, deleted_m);
	if (ret == 0)
		ret = collect_garbage(&pr, deleted_c);
	for (size_t i = 0; i < pr.ndoomed; i++)
		free(pr.doomed[i]);
	free(pr.doomed);
	free(pr.pools);
	chunkset_free(&pr.refs);
	return ret;
}
