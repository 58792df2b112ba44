/*
 * push.c -- copying one checkpoint of a pool file to a remote store.
 *
 * The checkpoint is read through the inspect layer (read-only, no pool
 * lock: a running program is never delayed), cut into chunk_size pieces
 * and named by content. Steps:
 *   1. take a push lease (lock.c), so no GC deletes a chunk this push
 *      counts on;
 *   2. the chunks of this pool's newest manifest in the store are known to
 *      be there (unless REMOTE_PUSH_CHECK_ALL: a store damaged behind our
 *      back is repaired by asking about every chunk); for each batch of
 *      chunks, the ones not known are asked for (a probe of a few first,
 *      "The probe" below, then one pipelined EXISTS / stat batch) and the
 *      missing ones written,
 *      by sender threads on connections of their own while this thread
 *      hashes the next batch ("The senders" below); zero chunks are never
 *      sent. Meanwhile the checkpoint's checksum is recomputed from the
 *      same bytes;
 *   3. the checksum must match the catalog's and the catalog entry must be
 *      unchanged (retention may free a checkpoint while it is read): else
 *      nothing references what was sent, and GC removes it later;
 *   4. if the lease lapsed (the push stalled over its ttl), take it again
 *      and check that every referenced chunk is still there;
 *   5. write the manifest, last, with one atomic put (test point
 *      "remote:before-manifest" stops here in the tests).
 * With 4 KiB chunks (the default, the engine's page) a checkpoint that
 * changed 1% of its pages sends 1% of its bytes plus its manifest.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspect.h"
#include "sums.h"
#include "testhook.h"
#include "config.h"
#include "remote/chunkset.h"
#include "remote/lock.h"
#include "remote/remote.h"
#include "remote/sealed.h"

#define PUSH_BATCH 1024u

/* newest_of -- store_list_fn: the manifest with the highest checkpoint id */
struct newest {
	char name[MANIFEST_NAME_MAX];
	unsigned long long id;
	size_t plen;
};

static int
newest_of(void *arg, const char *name)
{
	struct newest *n = arg;
	unsigned long long id = strtoull(name + n->plen, NULL, 10);
	if (id > n->id && strlen(name) < sizeof(n->name)) {
		n->id = id;
		snprintf(n->name, sizeof(n->name), "%s", name);
	}
	return 0;
}

/* known_from_previous -- add the chunks of the pool's newest manifest to known */
static void
known_from_previous(struct store *st, const uint8_t *uuid, struct chunkset *known)
{
	char prefix[MANIFEST_NAME_MAX];
	int k = snprintf(prefix, sizeof(prefix), "%s", MANIFEST_PREFIX);
	for (int i = 0; i < 16; i++)
		k += snprintf(prefix + k, sizeof(prefix) - (size_t)k, "%02x", uuid[i]);
	snprintf(prefix + k, sizeof(prefix) - (size_t)k, ".");
	struct newest n = { .plen = strlen(prefix) };
	struct manifest m;
	if (store_list(st, prefix, newest_of, &n) < 0 || !n.id ||
	    remote_load_manifest(st, n.name, &m) < 0) {
		ckpt_err_clear();
		return;                 /* an optimisation only: ask the store instead */
	}
	for (uint64_t i = 0; i < m.h.nchunks; i++)
		if (!chunk_is_zero(&m.chunks[i]) && chunkset_add(known, &m.chunks[i]) < 0)
			break;
	manifest_free(&m);
}

struct push_slot;
struct push_pipe;

/* push -- the state of one push */
struct push {
	struct store *st;
	const unsigned char *img;
	uint64_t used;
	uint32_t chunk;
	struct chunk_hash *hashes;  /* nchunks, into the manifest buffer */
	uint64_t nchunks;
	struct chunkset known;
	struct remote_stats *stats;
	struct push_pipe *pipe;     /* the senders, or NULL: send inline */
	struct push_slot *cur;      /* with senders: the slot being filled */
};

/* chunk_len -- bytes of chunk i */
static size_t
chunk_len(const struct push *ps, uint64_t i)
{
	uint64_t off = i * ps->chunk;
	return (size_t)(ps->used - off < ps->chunk ? ps->used - off : ps->chunk);
}

/*
 * The probe. Asking the store whether a chunk exists costs it an operation
 * per chunk (a RADOS stat is an OSD operation nearly as dear as the 4 KiB
 * write it may save), so a first push that asks about every chunk pays
 * the store twice per chunk: it ran at 0.72x `rados bench write`. Chunks
 * are named by their content, so writing one the store has already is
 * harmless (the same bytes again), only wasted bandwidth. So a batch first
 * asks about PUSH_PROBE of its chunks, spread over it: if none is there,
 * the store has none of this batch's chunks as far as it can tell, and
 * all are written without asking further; if any is there, every chunk is
 * asked about as before. A first push (nothing there) then costs the
 * store about one operation per chunk; a push whose chunks are mostly
 * there (another pool's, a repair) asks about all of them; the case in
 * between, a few percent of a batch present, may rewrite those few.
 */
#define PUSH_PROBE 16u

/*
 * send_batch -- through st, of the n chunks want[] names (indices), write
 * those the store lacks; their count and bytes are added to *chunks, *bytes
 */
static int
send_batch(const struct push *ps, struct store *st, const uint64_t *want, unsigned n,
		uint64_t *chunks, uint64_t *bytes)
{
	const char *names[PUSH_BATCH] = { 0 };
	char nbuf[PUSH_BATCH][CHUNK_NAME_MAX];
	uint8_t have[PUSH_BATCH];
	const void *bufs[PUSH_BATCH];
	size_t lens[PUSH_BATCH];
	for (unsigned k = 0; k < n; k++) {
		chunk_name(&ps->hashes[want[k]], nbuf[k]);
		names[k] = nbuf[k];
	}
	int ask_all = n <= PUSH_PROBE;
	if (!ask_all) {
		const char *probe[PUSH_PROBE];
		for (unsigned j = 0; j < PUSH_PROBE; j++)
			probe[j] = names[(uint64_t)j * n / PUSH_PROBE];
		if (store_exists(st, PUSH_PROBE, probe, have) < 0)
			return -1;
		for (unsigned j = 0; j < PUSH_PROBE; j++)
			ask_all |= have[j];
	}
	if (ask_all) {
		if (store_exists(st, n, names, have) < 0)
			return -1;
	} else {
		memset(have, 0, n);
	}
	unsigned m = 0;
	for (unsigned k = 0; k < n; k++) {
		if (have[k])
			continue;
		names[m] = nbuf[k];
		bufs[m] = ps->img + want[k] * ps->chunk;
		lens[m] = chunk_len(ps, want[k]);
		*bytes += lens[m];
		m++;
	}
	*chunks += m;
	return store_put(st, m, names, bufs, lens);
}

/*
 * The senders. A batch costs the store a round trip for its EXISTS and the
 * time to take its writes, and this process the hashing of the next batch
 * and the formatting of the writes: done one after the other, each side
 * waits for the other (a first push to Redis ran at 0.64x redis-benchmark's
 * SET rate, our process busy a third of the time). So the caller's thread
 * hashes and picks the chunks to send, and PUSH_SENDERS threads, each with
 * a connection of its own, send the batches it hands over: while one
 * connection's batch is in the store, the next is being formatted.
 * Invariant: a slot is FREE (the caller may fill it), FULL (handed over,
 * in order) or SENDING (one sender's, no lock held); pending counts the
 * slots not FREE; the first failure stops every sender and is kept in
 * err/msg for the caller (ckpt_err is per thread).
 */
#define PUSH_SENDERS 2u
#define PUSH_SLOTS 4u

enum { SLOT_FREE, SLOT_FULL, SLOT_SENDING };

struct push_slot {
	uint64_t want[PUSH_BATCH];
	unsigned n;
	int state;
};

struct push_sender {
	struct push_pipe *pp;
	struct store *conn;             /* its own connection to the store */
	pthread_t th;
};

struct push_pipe {
	const struct push *ps;
	struct push_sender snd[PUSH_SENDERS];
	unsigned nth;                   /* senders started */
	struct push_slot slot[PUSH_SLOTS];
	unsigned fill, take;            /* the next slot to fill, to send */
	unsigned pending;
	uint64_t chunks, bytes;         /* sent, by every sender */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int err;
	char msg[CKPT_ERRMSG_MAX];
};

/* sender -- one sender thread: the next FULL slot, through its own connection */
static void *
sender(void *arg)
{
	struct push_sender *me = arg;
	struct push_pipe *pp = me->pp;
	pthread_mutex_lock(&pp->mu);
	for (;;) {
		while (!pp->stop && pp->slot[pp->take % PUSH_SLOTS].state != SLOT_FULL)
			pthread_cond_wait(&pp->cv, &pp->mu);
		if (pp->stop)
			break;
		struct push_slot *sl = &pp->slot[pp->take++ % PUSH_SLOTS];
		sl->state = SLOT_SENDING;
		pthread_mutex_unlock(&pp->mu);
		uint64_t chunks = 0, bytes = 0;
		int rc = send_batch(pp->ps, me->conn, sl->want, sl->n, &chunks, &bytes);
		pthread_mutex_lock(&pp->mu);
		pp->chunks += chunks;
		pp->bytes += bytes;
		if (rc < 0 && !pp->err) {
			pp->err = errno ? errno : EIO;
			snprintf(pp->msg, sizeof(pp->msg), "%s", ckpt_errormsg());
			pp->stop = 1;
		}
		sl->state = SLOT_FREE;
		pp->pending--;
		pthread_cond_broadcast(&pp->cv);
	}
	pthread_mutex_unlock(&pp->mu);
	return NULL;
}

/*
 * pipe_start -- senders for ps, each on a new connection to ps's store;
 * NULL (with no error left) where none can be had: the caller sends inline
 */
static struct push_pipe *
pipe_start(struct push *ps)
{
	struct push_pipe *pp = calloc(1, sizeof(*pp));
	if (!pp)
		return NULL;
	pp->ps = ps;
	pthread_mutex_init(&pp->mu, NULL);
	pthread_cond_init(&pp->cv, NULL);
	for (unsigned i = 0; i < PUSH_SENDERS; i++) {
		struct push_sender *sd = &pp->snd[pp->nth];
		sd->pp = pp;
		sd->conn = store_open(ps->st->url);
		if (!sd->conn)
			break;
		if (pthread_create(&sd->th, NULL, sender, sd) != 0) {
			store_close(sd->conn);
			break;
		}
		pp->nth++;
	}
	ckpt_err_clear();
	if (pp->nth == 0) {
		pthread_mutex_destroy(&pp->mu);
		pthread_cond_destroy(&pp->cv);
		free(pp);
		return NULL;
	}
	return pp;
}

/* pipe_failed -- the senders' first failure as the caller's error */
static int
pipe_failed(struct push_pipe *pp)
{
	errno = pp->err;
	return ckpt_err_set(pp->err, "%s", pp->msg);
}

/* pipe_slot -- the next slot to fill, once it is FREE; NULL after a failure */
static struct push_slot *
pipe_slot(struct push_pipe *pp)
{
	struct push_slot *sl = &pp->slot[pp->fill % PUSH_SLOTS];
	pthread_mutex_lock(&pp->mu);
	while (!pp->err && sl->state != SLOT_FREE)
		pthread_cond_wait(&pp->cv, &pp->mu);
	int err = pp->err;
	pthread_mutex_unlock(&pp->mu);
	return err ? NULL : sl;
}

/* pipe_submit -- hand the filled slot over to the senders */
static void
pipe_submit(struct push_pipe *pp, struct push_slot *sl)
{
	pthread_mutex_lock(&pp->mu);
	sl->state = SLOT_FULL;
	pp->fill++;
	pp->pending++;
	pthread_cond_broadcast(&pp->cv);
	pthread_mutex_unlock(&pp->mu);
}

/* pipe_drain -- wait until every batch handed over is sent: 0, or the failure */
static int
pipe_drain(struct push_pipe *pp)
{
	pthread_mutex_lock(&pp->mu);
	while (pp->pending && !pp->err)
		pthread_cond_wait(&pp->cv, &pp->mu);
	int err = pp->err;
	pthread_mutex_unlock(&pp->mu);
	return err ? pipe_failed(pp) : 0;
}

/* pipe_stop -- end the senders (after pipe_drain, or on a failure) and free pp */
static void
pipe_stop(struct push_pipe *pp, struct remote_stats *stats)
{
	pthread_mutex_lock(&pp->mu);
	pp->stop = 1;
	pthread_cond_broadcast(&pp->cv);
	pthread_mutex_unlock(&pp->mu);
	for (unsigned i = 0; i < pp->nth; i++) {
		pthread_join(pp->snd[i].th, NULL);
		store_close(pp->snd[i].conn);
	}
	stats->sent_chunks += pp->chunks;
	stats->sent_bytes += pp->bytes;
	pthread_mutex_destroy(&pp->mu);
	pthread_cond_destroy(&pp->cv);
	free(pp);
}

/*
 * flush_batch -- the n chunks of want (ps->cur's, with senders) go to the
 * store: handed to the senders, or sent here
 */
static int
flush_batch(struct push *ps, uint64_t *want, unsigned n, struct lease *l)
{
	if (ps->pipe) {
		ps->cur->n = n;
		pipe_submit(ps->pipe, ps->cur);
	} else if (send_batch(ps, ps->st, want, n, &ps->stats->sent_chunks,
			&ps->stats->sent_bytes) < 0) {
		return -1;
	}
	return lease_renew(ps->st, l);
}

/* batch_room -- where the next batch's chunk indices go; NULL after a failure */
static uint64_t *
batch_room(struct push *ps, uint64_t *inline_want)
{
	if (!ps->pipe)
		return inline_want;
	ps->cur = pipe_slot(ps->pipe);
	if (!ps->cur) {
		pipe_failed(ps->pipe);
		return NULL;
	}
	return ps->cur->want;
}

/*
 * send_all -- step 2 (trust_known) or step 4 (every chunk asked for again):
 * hash (first pass only), checksum, send what is missing
 */
static int
send_all(struct push *ps, int first, int paged, uint64_t *sum, struct lease *l)
{
	struct sums s;
	if (first)
		sums_begin(&s, paged, NULL);
	uint64_t inline_want[PUSH_BATCH];
	uint64_t *want = batch_room(ps, inline_want);
	unsigned n = 0;
	for (uint64_t i = 0; want && i < ps->nchunks; i++) {
		const void *data = ps->img + i * ps->chunk;
		size_t len = chunk_len(ps, i);
		if (first) {
			ps->hashes[i] = chunk_hash_of(data, len);
			sums_update(&s, data, len);
			ps->stats->chunks++;
		}
		if (chunk_is_zero(&ps->hashes[i])) {
			ps->stats->zero_chunks += first;
			continue;
		}
		int fresh = chunkset_add(&ps->known, &ps->hashes[i]);
		if (fresh < 0)
			return -1;
		if (!fresh)
			continue;       /* in the previous manifest, or sent already */
		want[n++] = i;
		if (n == PUSH_BATCH) {
			if (flush_batch(ps, want, n, l) < 0)
				return -1;
			want = batch_room(ps, inline_want);
			n = 0;
		}
	}
	if (!want || (n && flush_batch(ps, want, n, l) < 0))
		return -1;
	if (ps->pipe && pipe_drain(ps->pipe) < 0)
		return -1;
	if (first)
		*sum = sums_end(&s);
	return 0;
}

/* header_of -- the manifest header for checkpoint entry e of the pool in */
static void
header_of(struct manifest_hdr *h, const struct inspect *in, const struct cat_entry *e,
		uint32_t chunk)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, MANIFEST_MAGIC, sizeof(h->magic));
	h->version = MANIFEST_VERSION;
	h->chunk_size = chunk;
	memcpy(h->uuid, in->hdr.uuid, sizeof(h->uuid));
	h->base = in->hdr.base;
	h->heap_size = in->hdr.heap_size;
	h->max_segments = in->hdr.max_segments;
	h->flags = e->flags & (CAT_F_PAGE_SUMS | CAT_F_ORIGIN | CAT_F_SEALED);
	if (h->flags & CAT_F_SEALED) {      /* remote/sealed.h */
		h->version = MANIFEST_VERSION_SEALED;
		memcpy(h->key_id, in->hdr.key_id, sizeof(h->key_id));
	}
	h->ckpt_id = e->ckpt_id;
	h->used = e->used;
	h->in_use = e->in_use;
	h->time_ns = e->time_ns;
	h->life = e->life;
	h->lineage = e->lineage;
	h->restarted_from = e->restarted_from;
	h->checksum = e->checksum;
	h->nchunks = (e->used + chunk - 1) / chunk;
	h->pushed_ns = now_ns();
	memcpy(h->label, e->label, sizeof(h->label));
	h->label[CAT_LABEL_MAX - 1] = 0;
}

int
remote_pushable(const char *path)
{
	struct inspect in;
	if (inspect_open_header(&in, path) < 0)
		return -1;
	inspect_close(&in);
	return 0;
}

int
remote_push(struct store *st, const char *path, const char *ref, uint32_t chunk,
		unsigned flags, char *name, struct remote_stats *stats)
{
	if (chunk < MANIFEST_MIN_CHUNK || chunk > MANIFEST_MAX_CHUNK || (chunk & (chunk - 1)))
		return ckpt_err_set(EINVAL, "chunk size %u is not a power of two in "
				"[4 KiB, 64 MiB]", chunk);
	struct inspect in;
	if (remote_pushable(path) < 0 || inspect_open(&in, path) < 0)
		return -1;
	int ret = -1;
	uint32_t seg;
	void *mbuf = NULL, *rec = NULL;
	const void *img = NULL;
	size_t maplen = 0;
	struct lease l;
	int leased = 0;
	struct push ps = { .st = st, .chunk = chunk, .stats = stats };
	memset(stats, 0, sizeof(*stats));
	if (inspect_resolve(&in, ref, &seg) < 0)
		goto out;
	struct cat_entry e = in.cat.e[seg];
	stats->ckpt_id = e.state == CAT_CKPT ? e.ckpt_id : 0;
	if (e.state != CAT_CKPT) {
		ckpt_err_set(EINVAL, "%s of pool %s is not a checkpoint", ref, path);
		goto out;
	}
	struct manifest_hdr h;
	header_of(&h, &in, &e, chunk);
	/* a sealed checkpoint's record travels after the chunk list */
	size_t rlen = (e.flags & CAT_F_SEALED) ? sealed_record_len(e.used) : 0;
	if (rlen && sealed_record_read(&in, seg, &e, &rec) < 0)
		goto out;
	size_t mlen = manifest_size(h.nchunks) + rlen;
	if (mlen > MANIFEST_MAX_BYTES) {
		ckpt_err_set(EFBIG, "checkpoint %llu needs a manifest over %zu bytes: use "
				"a larger chunk size", (unsigned long long)h.ckpt_id,
				MANIFEST_MAX_BYTES);
		goto out;
	}
	mbuf = calloc(1, mlen);
	if (!mbuf) {
		ckpt_err_set(ENOMEM, "out of memory for a manifest of %zu bytes", mlen);
		goto out;
	}
	img = inspect_map_segment(&in, seg, &maplen);
	if (!img)
		goto out;
	if (maplen < e.used) {
		ckpt_err_set(EIO, "pool %s ends inside checkpoint %llu", path,
				(unsigned long long)e.ckpt_id);
		goto out;
	}
	ps.img = img;
	ps.used = e.used;
	ps.hashes = (struct chunk_hash *)((char *)mbuf + sizeof(h));
	ps.nchunks = h.nchunks;
	stats->image_bytes = e.used;

	/* 1, 2 */
	if (lease_take(st, LEASE_PUSH, config_remote_lock_wait(), &l) < 0)
		goto out;
	leased = 1;
	if (!(flags & REMOTE_PUSH_CHECK_ALL))
		known_from_previous(st, h.uuid, &ps.known);
	ps.pipe = pipe_start(&ps);
	uint64_t sum = 0;
	if (send_all(&ps, 1, (e.flags & CAT_F_PAGE_SUMS) != 0, &sum, &l) < 0)
		goto out;

	/* 3 */
	if (sum != e.checksum) {
		ckpt_err_set(EINVAL, "checkpoint %llu of pool %s does not match its "
				"checksum: damaged, not pushed", (unsigned long long)e.ckpt_id,
				path);
		goto out;
	}
	if (inspect_refresh(&in) < 0 || !inspect_entry_unchanged(&in, seg, &e)) {
		ckpt_err_set(ESTALE, "checkpoint %llu of pool %s was freed while it was "
				"pushed (retention keeps too few?)", (unsigned long long)e.ckpt_id,
				path);
		goto out;
	}

	/* 4 */
	if (l.lapsed) {
		lease_drop(st, &l);
		leased = 0;
		if (lease_take(st, LEASE_PUSH, config_remote_lock_wait(), &l) < 0)
			goto out;
		leased = 1;
		chunkset_free(&ps.known);
		if (send_all(&ps, 0, 0, NULL, &l) < 0)
			goto out;
	}

	/* 5 */
	memcpy(mbuf, &h, sizeof(h));
	if (rlen)
		memcpy((char *)mbuf + mlen - rlen - sizeof(uint64_t), rec, rlen);
	manifest_seal(mbuf, mlen);
	manifest_name(&h, name);
	test_point("remote:before-manifest");
	const char *nm = name;
	const void *cb = mbuf;
	if (store_put(st, 1, &nm, &cb, &mlen) < 0)
		goto out;
	stats->manifest_bytes = mlen;
	ret = 0;
out:
	if (ps.pipe)
		pipe_stop(ps.pipe, stats);
	if (leased)
		lease_drop(st, &l);
	chunkset_free(&ps.known);
	if (img)
		inspect_unmap_segment(img, maplen);
	free(mbuf);
	free(rec);
	inspect_close(&in);
	return ret;
}
