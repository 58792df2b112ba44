/*
 * reseal.c -- ckpt_reseal: key rotation. A sealed pool's key is fixed in
 * its header; rotating it means re-sealing: a new pool, sealed with the new
 * key, that holds every checkpoint of the old one, each decrypted with the
 * old key (every chunk authenticated) and encrypted anew under the new one
 * (a fresh salt each). The same call seals a pool that was not sealed.
 *
 * The old pool is only read (inspect.c: no lock, nothing written). The new
 * one is written as a pull writes a pool (remote/import.c): created with
 * the old pool's geometry, base, retention and a new uuid, then each
 * checkpoint reserved, written, made durable and published with its id,
 * life, lineage, origin, label and time, in id order. Live and dead heaps
 * are in their processes' memory and are not carried over; the new pool
 * restarts from the checkpoints. A failure removes the new pool.
 *
 * A checkpoint that retention removes from the old pool while it is read
 * is skipped (the old pool may be in use); any other failure to read one
 * (a tampered chunk, a damaged image) fails the call, naming it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handle.h"
#include "inspect.h"
#include "layout.h"
#include "remote/import.h"
#include "seal/chunks.h"
#include "seal/cipher.h"
#include "seal/key.h"

/* src_key -- the old pool's key, checked (NULL, no error, for an unsealed pool) */
static int
src_key(struct inspect *in, const char *src, const char *key_file, struct seal_key **key)
{
	*key = NULL;
	if (!(in->hdr.flags & POOL_F_SEALED)) {
		if (key_file)
			return ckpt_err_set(EINVAL, "a key file was given for pool %s, which is "
					"not sealed", src);
		return 0;
	}
	if (!key_file)
		return ckpt_err_set(ENOKEY, "pool %s is sealed: its key is needed", src);
	*key = seal_key_open(key_file, "the old key", in->hdr.key_id, src);
	return *key ? 0 : -1;
}

/* next_ckpt -- the segment of the oldest checkpoint with an id above after, or -1 */
static int
next_ckpt(const struct inspect *in, uint64_t after)
{
	int best = -1;
	for (uint32_t i = 0; i < in->cat.n; i++) {
		const struct cat_entry *e = &in->cat.e[i];
		if (e->state == CAT_CKPT && e->ckpt_id > after &&
		    (best < 0 || e->ckpt_id < in->cat.e[best].ckpt_id))
			best = (int)i;
	}
	return best;
}

/* read_plain -- checkpoint seg's heap, checked: decrypted, or its checksum verified */
static int
read_plain(struct inspect *in, uint32_t seg, const struct cat_entry *e, void **buf,
		size_t *len)
{
	if (inspect_read_heap(in, seg, buf, len, NULL, NULL) < 0)
		return -1;
	uint64_t sum = e->checksum;
	if (*len != e->used ||
	    (!(e->flags & CAT_F_SEALED) &&
	     inspect_ckpt_checksum(in, seg, e->used, e->flags, &sum, NULL, NULL) < 0) ||
	    sum != e->checksum) {
		inspect_free_heap(*buf, *len);
		*buf = NULL;
		return ckpt_err_set(EINVAL, "checkpoint %llu (segment %u) is damaged or "
				"truncated", (unsigned long long)e->ckpt_id, seg);
	}
	return 0;
}

/* desc_of -- the import description of checkpoint e for the new pool */
static void
desc_of(struct import_desc *d, const struct inspect *in, const struct cat_entry *e,
		const uint8_t uuid[16], const char *new_key_file)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->uuid, uuid, sizeof(d->uuid));
	d->base = in->hdr.base;
	d->heap_size = in->hdr.heap_size;
	d->max_segments = in->hdr.max_segments;
	d->keep = in->hdr.keep_checkpoints;
	d->key_file = new_key_file;
	d->flags = CAT_F_SEALED | (e->flags & CAT_F_ORIGIN);
	d->ckpt_id = e->ckpt_id;
	d->used = e->used;
	d->in_use = e->in_use;
	d->time_ns = e->time_ns;
	d->life = e->life;
	d->lineage = e->lineage;
	d->restarted_from = e->restarted_from;
	memcpy(d->label, e->label, sizeof(d->label));
}

/* copy_one -- checkpoint seg of the old pool into the new one, re-sealed */
static int
copy_one(struct inspect *in, uint32_t seg, const char *dst, const uint8_t uuid[16],
		const char *new_key_file)
{
	struct cat_entry e = in->cat.e[seg];
	void *buf;
	size_t len;
	if (read_plain(in, seg, &e, &buf, &len) < 0) {
		if (inspect_refresh(in) == 0 && !inspect_entry_unchanged(in, seg, &e))
			return 0;           /* retention removed it meanwhile */
		return -1;
	}
	struct import_desc d;
	desc_of(&d, in, &e, uuid, new_key_file);
	struct import im;
	int rc = import_begin(&im, dst, &d);
	if (rc == 0 && !im.present) {
		rc = seal_write_image(im.p->fd, &im.p->hdr, im.seg, buf, e.used, e.ckpt_id,
				im.p->seal, &d.checksum);
		if (rc < 0)
			import_abort(&im);
	}
	if (rc == 0)
		rc = import_commit(&im, &d);
	inspect_free_heap(buf, len);
	if (rc < 0)
		ckpt_err_prefix("checkpoint %llu: ", (unsigned long long)e.ckpt_id);
	return rc;
}

CKPT_EXPORT int
ckpt_reseal(const char *src, const char *dst, const char *key_file, const char *new_key_file)
{
	if (!src || !*src || !dst || !*dst)
		return ckpt_err_set(EINVAL, "pool path is empty");
	if (!new_key_file || !*new_key_file)
		return ckpt_err_set(EINVAL, "re-sealing needs the new key's file");
	struct stat st;
	if (lstat(dst, &st) == 0)
		return ckpt_err_set(EEXIST, "%s exists: re-sealing makes a new pool", dst);
	struct seal_key *probe = seal_key_load(new_key_file, "the new key");
	if (!probe)
		return -1;
	seal_key_free(probe);
	struct inspect in;
	if (inspect_open(&in, src) < 0)
		return -1;
	struct seal_key *key = NULL;
	uint8_t uuid[16];
	int ret = -1, made = 0;
	if (src_key(&in, src, key_file, &key) < 0 || seal_random(uuid, sizeof(uuid)) < 0)
		goto out;
	in.key = key;
	int seg = next_ckpt(&in, 0);
	if (seg < 0) {
		ckpt_err_set(ENOENT, "pool %s has no checkpoint to re-seal", src);
		goto out;
	}
	for (; seg >= 0; seg = next_ckpt(&in, in.cat.e[seg].ckpt_id)) {
		if (copy_one(&in, (uint32_t)seg, dst, uuid, new_key_file) < 0)
			goto out;
		made = 1;
	}
	ret = 0;
out:
	if (ret < 0 && made) {
		int e = errno;
		unlink(dst);
		errno = e;
	}
	inspect_close(&in);
	seal_key_free(key);
	return ret;
}
